"""A hostile review of the ESI's Messaging server (SE D.5.2.4.2, Message Confirmation): what a
device may confirm, and a confirmation that answers both yes and no."""

from __future__ import annotations

import dataclasses
import types

import zigpy.types as t
from zigpy.zcl import foundation

from tests.messaging.test_messaging_protocol import frame
from zse.messaging import Confirmation, Message, MessageStore
from zse.messaging.protocol import MessagingServerProtocol, confirmation_payload
from zse.zcl.frame import Step, ZclMessage

T0 = 800_000_000
CONFIRM = 0x01  # Message Confirmation (D.5.2.4.2)
GET_LAST = 0x00  # Get Last Message (D.5.2.4.1)
ALICE = t.EUI64.convert("00:0d:6f:00:0a:00:00:01")
BOB = t.EUI64.convert("00:0d:6f:00:0a:00:00:02")
SUCCESS = foundation.Status.SUCCESS
NOT_FOUND = foundation.Status.NOT_FOUND
INVALID_FIELD = foundation.Status.INVALID_FIELD


def received(payload: bytes, ieee: t.EUI64, command_id: int = CONFIRM) -> ZclMessage:
    """A client-to-server Messaging frame from ``ieee``."""
    msg, _ = frame(command_id, payload, ieee=ieee)
    return msg


def confirm(server: MessagingServerProtocol, payload: bytes, ieee: t.EUI64, now: int) -> Step:
    msg, command = frame(CONFIRM, payload, ieee=ieee)
    return server.receive(msg, command, now)


def plain(message_id: int) -> bytes:
    return confirmation_payload(Confirmation(message_id=message_id, confirmation_time=T0 + 5))


def test_a_device_the_message_was_not_sent_to_cannot_confirm_it() -> None:
    """Message 7 went to Alice only. Bob's Message Confirmation of it was taken (SUCCESS, a
    MessageConfirmed event naming Bob), so the utility saw a device confirm a message it was
    never sent and Get Last Message would not give it (D.5.2.4.1): the ESI holds no message
    7 for Bob, NOT_FOUND, as for an id it does not hold at all."""
    server = MessagingServerProtocol()
    server.display(
        Message(message_id=7, text="read me", confirmation_required=True), T0, device=str(ALICE)
    )
    step = confirm(server, plain(7), BOB, T0 + 10)
    assert (step.status, step.events) == (NOT_FOUND, ())
    assert server.messages.confirmations.get(7, {}) == {}
    # Alice, who was sent it, confirms it.
    step = confirm(server, plain(7), ALICE, T0 + 11)
    assert step.status == SUCCESS
    assert [e.device for e in step.events] == [str(ALICE)]


def test_a_message_for_everyone_or_a_group_of_unknown_members_is_confirmed_by_anyone() -> None:
    server = MessagingServerProtocol()
    server.display(Message(message_id=1, text="all", confirmation_required=True), T0)
    server.display(
        Message(message_id=2, text="group", confirmation_required=True), T0, group=0x0042
    )
    for message_id in (1, 2):
        step = confirm(server, plain(message_id), BOB, T0 + 10)
        assert step.status == SUCCESS
        assert len(step.events) == 1


def test_a_group_message_is_confirmed_only_by_its_known_members() -> None:
    server = MessagingServerProtocol()
    server.record(
        Message(message_id=3, text="group", confirmation_required=True),
        T0,
        group=0x0042,
        members=[ALICE],
    )
    assert confirm(server, plain(3), BOB, T0 + 10).status == NOT_FOUND
    assert confirm(server, plain(3), ALICE, T0 + 10).status == SUCCESS


def test_a_device_that_saw_only_the_replaced_content_does_not_confirm_the_new_one() -> None:
    """Alice was sent message 9; new content under id 9 then went to Bob only. Alice's
    confirmation of 9 (the text she saw) was recorded as confirming Bob's new text."""
    server = MessagingServerProtocol()
    server.display(
        Message(message_id=9, text="old", confirmation_required=True), T0, device=str(ALICE)
    )
    server.display(
        Message(message_id=9, text="new", confirmation_required=True), T0 + 60, device=str(BOB)
    )
    step = confirm(server, plain(9), ALICE, T0 + 70)
    assert (step.status, step.events) == (NOT_FOUND, ())
    assert MessageStore.from_records(server.messages.to_records()).confirmations == {}


def test_a_confirmation_answering_both_yes_and_no_is_refused() -> None:
    """D.5.2.4.2.1.3: Message Confirmation Control bit 0 "No returned", bit 1 "Yes returned".
    With both set zse recorded a "yes" (the bit it looked at first): a user's contradictory
    answer to, say, a tariff change was told to the utility as consent. Refused with
    INVALID_FIELD, nothing recorded; one bit still gives its answer."""
    server = MessagingServerProtocol()
    server.display(Message(message_id=8, text="accept?", enhanced_confirmation_required=True), T0)
    both = (8).to_bytes(4, "little") + (T0 + 5).to_bytes(4, "little") + b"\x03\x02ok"
    step = confirm(server, both, ALICE, T0 + 10)
    assert (step.status, step.events) == (INVALID_FIELD, ())
    assert server.messages.confirmations.get(8, {}) == {}
    for answer in (False, True):
        payload = confirmation_payload(
            Confirmation(message_id=8, confirmation_time=T0 + 5, answer=answer, response=b"ok")
        )
        step = confirm(server, payload, ALICE if answer else BOB, T0 + 10)
        assert step.status == SUCCESS
        (event,) = step.events
        assert event.confirmation.answer is answer


def test_the_reserved_bits_of_the_confirmation_control_are_ignored() -> None:
    server = MessagingServerProtocol()
    server.display(Message(message_id=8, text="accept?", enhanced_confirmation_required=True), T0)
    payload = (8).to_bytes(4, "little") + (T0 + 5).to_bytes(4, "little") + b"\xfe\x00"
    step = confirm(server, payload, ALICE, T0 + 10)
    assert step.status == SUCCESS
    (event,) = step.events
    assert event.confirmation.answer is True


def test_get_last_message_with_nothing_for_the_device_is_not_found() -> None:
    server = MessagingServerProtocol()
    server.display(Message(message_id=7, text="for alice"), T0, device=str(ALICE))
    step = server.receive(received(b"", BOB, GET_LAST), types.SimpleNamespace(), T0 + 1)
    assert (step.status, step.sends) == (NOT_FOUND, ())


def test_a_message_already_over_when_sent_does_not_hide_the_one_shown() -> None:
    """Message 1 (until changed) is on Alice's display. The ESI then sends message 2 whose
    window (start an hour ago, 30 minutes) was over before it was sent: the device ignores it
    and keeps showing message 1, but Get Last Message answered NOT_FOUND, as if message 2
    had replaced message 1 on the display, so a device that restarts lost message 1. A
    message never on a display (its window over before it was sent) replaces nothing."""
    server = MessagingServerProtocol()
    shown = Message(message_id=1, text="shown")
    server.display(shown, T0, device=str(ALICE))
    late = Message(message_id=2, text="late", start_time=T0 + 3600, duration_in_minutes=30)
    server.display(late, T0 + 7200, device=str(ALICE))
    step = server.receive(received(b"", ALICE, GET_LAST), types.SimpleNamespace(), T0 + 7201)
    assert step.status is None
    ((_, command_id, payload),) = [(s.to, s.command_id, s.payload) for s in step.sends]
    assert (command_id, payload[:4]) == (0x00, (1).to_bytes(4, "little"))
    # Replaced under its id, it is not kept as superseded either (it was never shown).
    server.display(dataclasses.replace(late, text="later"), T0 + 7300, device=str(ALICE))
    assert server.messages.superseded == []


def test_a_message_sent_with_its_window_under_way_still_replaces_the_one_shown() -> None:
    server = MessagingServerProtocol()
    server.display(Message(message_id=1, text="old"), T0, device=str(ALICE))
    under_way = Message(message_id=2, text="new", start_time=T0 + 3600, duration_in_minutes=180)
    server.display(under_way, T0 + 7200, device=str(ALICE))
    server.cancel(2, T0 + 7260)
    step = server.receive(received(b"", ALICE, GET_LAST), types.SimpleNamespace(), T0 + 7300)
    assert (step.status, step.sends) == (NOT_FOUND, ())
