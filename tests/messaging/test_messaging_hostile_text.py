"""Display-message text with control characters (a hostile review, defect 3).

NUL, ESC and BEL in a message's text reached the HAN (and any terminal that prints it) from the
headend API, MQTT ``display_message`` and ``zse esi message``. SE D.5.2.3.1.1.5 gives the text
as a UTF-8 ZCL character string and leaves the layout to the device, so a line break may stay
(a multi-line display honours it); every other control character (Unicode Cc) is refused where
a message is built (:class:`zse.messaging.Message`), so every way in shares the rule. A message
from the air (or an older store) is shown with U+FFFD in their place, never refused or crashed on.
"""

from __future__ import annotations

import json

import pytest

from tests.messaging.test_messaging_protocol import T0, client_with, esi_frame
from zse.headend.core import HeadendError, SendKind, parse_message
from zse.headend.link import Delivery
from zse.messaging import InvalidMessage, Message
from zse.messaging.core import message_from_command
from zse.messaging.protocol import display_payload
from zse.mqtt.core import CommandError, parse_command

HOSTILE = ["a\x00b", "\x1b[2J", "ring\x07", "tab\there", "cr\r", "del\x7f", "csi\x9b2J"]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_message_with_a_control_character_is_refused(text: str) -> None:
    with pytest.raises(InvalidMessage, match=r"^text has a control character \(U\+00"):
        Message(message_id=1, text=text)


def test_a_line_break_and_printable_text_stay() -> None:
    assert Message(message_id=1, text="Peak 17:00\nCafé ☕").text == "Peak 17:00\nCafé ☕"


@pytest.mark.parametrize("text", HOSTILE)
def test_the_headend_answers_422_naming_the_text(text: str) -> None:
    with pytest.raises(HeadendError) as caught:
        parse_message({"group": "street-7", "text": text})
    assert (caught.value.status, caught.value.field) == (422, "text")
    assert "control character" in caught.value.message
    assert parse_message({"group": "street-7", "text": "two\nlines"}).text == "two\nlines"


def test_mqtt_display_message_is_a_command_error_on_the_text() -> None:
    body = {"correlation_id": "c", "broadcast": True, "message": {"message_id": 1}}
    body["message"]["text"] = "a\x1b]0;pwned\x07"
    with pytest.raises(CommandError) as caught:
        parse_command("display_message", json.dumps(body).encode())
    assert caught.value.field == "message.text"
    assert "control character" in str(caught.value)


def test_a_received_message_is_shown_with_its_control_characters_replaced() -> None:
    """From the air a control character is not refused (the ZCL string allows it) and not
    passed on: each is U+FFFD, the line break kept."""
    sent = Message(message_id=7, text="ok")
    payload = display_payload(sent).replace(b"\x02ok", b"\x05\x1bA\nB\x00")
    msg, command = esi_frame(0x00, payload)
    assert message_from_command(command, protected=False).text == "\ufffdA\nB\ufffd"
    client = client_with()
    (shown,) = client.receive(msg, command, T0).events
    assert shown.text == "\ufffdA\nB\ufffd"


def test_a_stored_message_from_before_the_rule_loads_displayable() -> None:
    record = Message(message_id=3, text="x").to_record() | {"text": "old\x07"}
    assert Message.from_record(record).text == "old\ufffd"


def test_a_delivery_queued_before_the_rule_sends_its_message_displayable() -> None:
    """A gateway or EsiLink job written to the work queue before control characters were
    refused is sent with U+FFFD in their place, not failed at every try."""
    payload = Message(message_id=4, text="x").to_record() | {"text": "old\x1b[2J"}
    delivery = Delivery(key="k", meter="m", device="d", kind=SendKind.MESSAGE, payload=payload)
    assert delivery.message().text == "old\ufffd[2J"
