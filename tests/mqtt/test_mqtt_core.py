"""The MQTT bridge's sans-IO core (issue #17.2): settings, commands, payloads, the at-most-once
record and the outbox's bound; garbage in gets only the named errors."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zse.drlc import StopLoadControl
from zse.drlc.core import Status
from zse.messaging import Message
from zse.messaging.core import MessageCancelled, MessageDisplayed
from zse.mqtt.core import (
    BATCH,
    COMMANDS,
    HAN_COMMANDS,
    MAX_BATCH,
    MAX_BATCH_BYTES,
    CommandError,
    ConfirmMessage,
    DeviceView,
    Executed,
    LoadControl,
    MqttConfigError,
    OptOut,
    Outbox,
    Provision,
    Publication,
    Topics,
    parse_batch,
    parse_command,
    parse_han_command,
    parse_settings,
    response_topic_of,
    sent_publication,
)
from zse.price import PriceEvent
from zse.roles.esi import DeviceOutcome, LoadControlCancelSent, Outcome, PriceSent, SendResult
from zse.roles.han import LoadChanged
from zse.se.ids import IN_HOME_DISPLAY, LOAD_CONTROL_DEVICE

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CODE = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"
MAC = "00:0d:6f:00:0a:00:00:01"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
#: Objects with the commands' own field names, so the garbage reaches the field checks.
FIELDS = st.sampled_from(
    [
        "correlation_id",
        "device",
        "group",
        "zigbee_group",
        "enrollment_group",
        "broadcast",
        "message",
        "message_id",
        "price",
        "block_period",
        "event",
        "issuer_event_id",
        "cancel_control",
        "mac",
        "install_code",
        "label",
        "groups",
        "text",
        "duration_in_minutes",
        "criticality_level",
        "device_class",
        "rate_label",
        "answer",
        "response",
    ]
)
NEAR = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELDS, inner, max_size=6),
    max_leaves=25,
)


def lc(**event: object) -> bytes:
    body = {
        "issuer_event_id": 1,
        "device_class": 0x0FFF,
        "duration_in_minutes": 30,
        "criticality_level": 1,
        **event,
    }
    return json.dumps({"correlation_id": "c", "device": MAC, "event": body}).encode()


@PROPERTY
@given(name=st.sampled_from(sorted(COMMANDS)), payload=st.binary(max_size=200) | JSON | NEAR)
def test_garbage_commands_get_only_command_errors(name: str, payload: object) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    error: CommandError | None = None
    try:
        command = parse_command(name, data)
    except CommandError as exc:  # the one error allowed: checked below
        error = exc
    if error is None:
        assert command.correlation_id
    else:
        assert error.field
        assert str(error).startswith(f"{error.field}: ")


@PROPERTY
@given(
    payload=st.binary(max_size=200)
    | JSON
    | NEAR
    | st.lists(NEAR | JSON, max_size=4).map(lambda c: {"correlation_id": "b", "commands": c})
)
def test_garbage_batches_get_only_command_errors(payload: object) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    error: CommandError | None = None
    try:
        batch = parse_batch(data)
    except CommandError as exc:  # the one error allowed: checked below
        error = exc
    if error is not None:
        assert str(error).startswith(f"{error.field}: ")
        return
    assert 0 < len(batch.entries) <= MAX_BATCH
    for entry in batch.entries:  # each entry: a command to parse as if alone, or refused
        if entry.refused is None:
            assert entry.name not in ("", BATCH)
            assert "command" not in json.loads(entry.payload)
        else:
            assert entry.refused.field.startswith("commands[")


def test_a_batch_is_its_commands_each_as_if_alone_a_wrong_one_refused_in_its_place() -> None:
    good = {"command": "load_control", **json.loads(lc())}
    body = {
        "correlation_id": "b-1",
        "response_topic": "headend/w1/response",
        "commands": [
            good,
            {**good, "correlation_id": "d", "command": BATCH},
            {**good, "correlation_id": "e", "response_topic": "elsewhere"},
            7,
            {"correlation_id": "f"},
            {**good, "command": "no_such_command", "correlation_id": "g"},
        ],
    }
    batch = parse_batch(json.dumps(body).encode())
    assert (batch.correlation_id, batch.response_topic) == ("b-1", "headend/w1/response")
    first, nested, answer_elsewhere, number, nameless, unknown = batch.entries
    assert (first.refused, first.name) == (None, "load_control")
    assert parse_command(first.name, first.payload) == parse_command("load_control", lc())
    refusals = [(str(e.refused), e.correlation_id) for e in (nested, answer_elsewhere, number)]
    assert refusals == [
        ("commands[1].command: expected the name of a command other than batch", "d"),
        ("commands[2].response_topic: a batch's commands are answered in its response", "e"),
        ("commands[3]: expected an object", None),
    ]
    assert (str(nameless.refused).split(":")[0], nameless.correlation_id) == (
        "commands[4].command",
        "f",
    )
    assert unknown.refused is None  # the bridge refuses it as it would alone
    with pytest.raises(CommandError, match="unknown command"):
        parse_command(unknown.name, unknown.payload)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[", "payload"),
        (b"[]", "payload"),
        (b'{"commands": [{}]}', "correlation_id"),
        (b'{"correlation_id": "b"}', "commands"),
        (b'{"correlation_id": "b", "commands": []}', "commands"),
        (b'{"correlation_id": "b", "commands": {}}', "commands"),
        (b'{"correlation_id": "b", "commands": [{}], "extra": 1}', "extra"),
        (b'{"correlation_id": "b", "commands": [{}], "response_topic": "a/+"}', "response_topic"),
    ],
)
def test_a_wrong_batch_is_refused_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_batch(body)
    assert caught.value.field == field


def test_a_batch_is_bounded_in_commands_and_bytes() -> None:
    one = {"command": "load_control", **json.loads(lc())}
    many = {"correlation_id": "b", "commands": [one] * (MAX_BATCH + 1)}
    with pytest.raises(CommandError, match=f"1-{MAX_BATCH} commands"):
        parse_batch(json.dumps(many).encode())
    assert len(parse_batch(json.dumps({**many, "commands": [one] * MAX_BATCH}).encode()).entries)
    huge = json.dumps({"correlation_id": "b", "commands": [{"pad": "x" * MAX_BATCH_BYTES}]})
    with pytest.raises(CommandError, match=f"longer than {MAX_BATCH_BYTES} bytes"):
        parse_batch(huge.encode())


@PROPERTY
@given(name=st.sampled_from(sorted(HAN_COMMANDS)), payload=st.binary(max_size=200) | JSON | NEAR)
def test_garbage_device_commands_get_only_command_errors(name: str, payload: object) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    error: CommandError | None = None
    try:
        command = parse_han_command(name, data)
    except CommandError as exc:  # the one error allowed: checked below
        error = exc
    if error is None:
        assert command.correlation_id
        assert command.device.count(":") == 7
    else:
        assert str(error).startswith(f"{error.field}: ")


def test_device_commands_parse_and_name_the_field() -> None:
    body = {"correlation_id": "c", "device": "000D6F000A000001", "message_id": 5}
    confirm = parse_han_command("confirm_message", json.dumps({**body, "answer": True}).encode())
    assert confirm == ConfirmMessage(correlation_id="c", device=MAC, message_id=5, answer=True)
    body = {"correlation_id": "c", "device": MAC, "issuer_event_id": 7}
    assert parse_han_command("opt_out", json.dumps(body).encode()) == OptOut(
        correlation_id="c", device=MAC, issuer_event_id=7
    )
    for name, body, field in [
        ("opt_in", {"device": MAC}, "issuer_event_id"),
        ("opt_in", {"device": "nope", "issuer_event_id": 1}, "device"),
        ("confirm_message", {"device": MAC, "message_id": 1, "answer": "yes"}, "answer"),
        ("confirm_message", {"device": MAC, "message_id": 1, "response": "x" * 21}, "response"),
        ("display_message", {"device": MAC}, "command"),  # the ESI's, not a device's
    ]:
        with pytest.raises(CommandError) as caught:
            parse_han_command(name, json.dumps({"correlation_id": "c", **body}).encode())
        assert caught.value.field == field


def test_a_device_s_view_folds_its_events() -> None:
    display = DeviceView(IN_HOME_DISPLAY)
    assert display.payload["message"] is None  # every key there from the start
    hello = Message(message_id=3, text="hello")
    assert display.update(MessageDisplayed(message=hello, text="hello", ends=None))
    assert (display.payload["message_id"], display.payload["message"]) == (3, "hello")
    assert not display.update(MessageDisplayed(message=hello, text="hello", ends=None))
    other = Message(message_id=4, text="other")
    assert not display.update(MessageCancelled(message=other))  # not the one shown
    assert display.update(MessageCancelled(message=hello))
    assert display.payload["message"] is None
    switch = DeviceView(LOAD_CONTROL_DEVICE)
    assert "message" not in switch.payload
    assert switch.update(LoadChanged(device=MAC, on=True, duty_cycle=40, issuer_event_id=9))
    assert switch.payload["duty_cycle"] == 40
    assert not switch.update(StopLoadControl(issuer_event_id=9, status=Status.COMPLETED))


@PROPERTY
@given(table=st.dictionaries(st.text(max_size=16), JSON, max_size=5) | JSON)
def test_garbage_settings_get_only_config_errors(table: object) -> None:
    error = ""
    try:
        parse_settings(table)  # type: ignore[arg-type]
    except MqttConfigError as exc:  # the one error allowed: checked below
        error = str(exc)
    assert error == "" or error.startswith("mqtt")
    assert "\n" not in error  # the CLI's one line


@pytest.mark.parametrize(
    ("key", "said"),
    [("qoss", "qoss"), ("", "''"), ("a\nb", "'a\\nb'"), ("k" * 300, "'" + "k" * 35 + "...'")],
)
def test_an_unknown_settings_key_is_quoted_on_one_line(key: str, said: str) -> None:
    """``mqtt.{key}: unknown key`` was the key as it is: an empty one said "mqtt.:", one
    with a line break split ``zse mqtt``'s error line in two, a long one was echoed whole.
    One that would not show as it is is quoted (``zse._words.quoted``)."""
    with pytest.raises(MqttConfigError) as error:
        parse_settings({"url": "mqtt://h:1", key: 1})
    assert str(error.value).startswith(f"mqtt.{said}: unknown key (known: base_topic, ")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (lc(duration_in_minutes=2000), "event.duration_in_minutes"),
        (lc(criticality_level=0), "event.criticality_level"),
        (lc(duty_cycle=101), "event.duty_cycle"),
        (lc(device_class="all"), "event.device_class"),
        (lc(issuer_event_id=1 << 40), "event.issuer_event_id"),
        (lc(colour=1), "event.colour"),
        (b'{"device": "x"}', "correlation_id"),
        (b"[]", "payload"),
        (b"\xff", "payload"),
        (json.dumps({"correlation_id": "c", "event": {}}).encode(), "event.issuer_event_id"),
        (b'{"correlation_id": "c", "event": {"issuer_event_id": NaN}}', "payload"),
        (b'{"correlation_id": "c", "event": {"issuer_event_id": 1e999}}', "payload"),
        (b'{"correlation_id": "c", "event": ' + b"[" * 5000, "payload"),
        (b'{"correlation_id": "c", "event": {"issuer_event_id": ' + b"9" * 5000 + b"}}", "payload"),
        (b'{"correlation_id": "c\\ud800"}', "payload"),
    ],
)
def test_each_error_names_the_field(payload: bytes, field: str) -> None:
    with pytest.raises(CommandError) as error:
        parse_command("load_control", payload)
    assert error.value.field == field


def test_a_message_s_text_is_counted_in_octets_as_on_the_wire() -> None:
    def display(text: str) -> bytes:
        message = {"message_id": 1, "text": text}
        return json.dumps({"correlation_id": "c", "device": MAC, "message": message}).encode()

    assert parse_command("display_message", display("é" * 127)).message.text == "é" * 127
    # 256 octets; a lone surrogate, which JSON escapes and zse.jsontext refuses
    for text, field in (("é" * 128, "message.text"), ("a\ud800", "payload")):
        with pytest.raises(CommandError) as error:
            parse_command("display_message", display(text))
        assert error.value.field == field


@pytest.mark.parametrize(
    "topic",
    [
        "zse/+/response",
        "zse/#",
        "",
        7,
        "$SYS/broker/x",
        "$share/g/zse/x",
        "zse/meters/m-1/bridge/request/load_control",
        "bridge/request/provision",
        "zse/\x00/x",
        "zse/\n",
        "r" * 257,
        "é" * 129,  # 258 octets in UTF-8
    ],
)
def test_a_bad_response_topic_is_refused_by_name(topic: object) -> None:
    payload = json.dumps({**json.loads(lc()), "response_topic": topic}).encode()
    with pytest.raises(CommandError) as error:
        parse_command("load_control", payload)
    assert error.value.field == "response_topic"
    assert response_topic_of(payload) is None  # the refusal goes to the default topic


def test_a_response_topic_names_where_the_answer_goes_and_nothing_else() -> None:
    body = json.loads(lc())
    assert parse_command("load_control", lc()).response_topic is None
    unset = json.dumps({**body, "response_topic": None}).encode()  # null: the default topic
    assert parse_command("load_control", unset) == parse_command("load_control", lc())
    for topic in ("zse/headend/w-1/response", "r" * 256, "é/réponse", "a/bridge/requests/x"):
        payload = json.dumps({**body, "response_topic": topic}).encode()
        command = parse_command("load_control", payload)
        assert command.response_topic == topic
        assert command == replace(parse_command("load_control", lc()), response_topic=topic)
        assert response_topic_of(payload) == topic
    device = {"correlation_id": "c", "device": MAC, "issuer_event_id": 7, "response_topic": "a/b"}
    assert parse_han_command("opt_out", json.dumps(device).encode()) == OptOut(
        correlation_id="c", device=MAC, issuer_event_id=7, response_topic="a/b"
    )
    for garbage in (b"\xff", b"[]", b"{", json.dumps({"response_topic": "a/b"}).encode() * 2000):
        assert response_topic_of(garbage) is None


def test_a_target_is_exactly_one() -> None:
    body = json.loads(lc())
    for target in ({}, {"device": MAC, "group": "g"}, {"broadcast": "yes"}):
        data = {k: v for k, v in body.items() if k != "device"} | target
        with pytest.raises(CommandError) as error:
            parse_command("load_control", json.dumps(data).encode())
        assert error.value.field in ("target", "broadcast")
    command = parse_command("load_control", lc())
    assert isinstance(command, LoadControl)
    assert command.target.keywords() == {"device": MAC}


def test_an_install_code_is_never_repeated() -> None:
    good = {"correlation_id": "p", "mac": MAC, "install_code": CODE}
    command = parse_command("provision", json.dumps(good).encode())
    assert isinstance(command, Provision)
    assert "83FE" not in repr(command)
    bad = {**good, "install_code": CODE[:-1] + "6"}  # the CRC no longer matches
    with pytest.raises(CommandError) as error:
        parse_command("provision", json.dumps(bad).encode())
    assert error.value.field == "install_code"
    assert "C3B6" not in str(error.value)  # the CRC as typed
    assert "C3B5" not in str(error.value)  # nor the one it should be: the real code's end


@pytest.mark.parametrize(
    ("code", "says"),
    [
        # neither CRC (the one typed, C3B6, nor the one it should be, C3B5: the code's end)
        (
            CODE[:-1] + "6",
            "install code CRC mismatch: the last 4 digits are not the CRC of the digits before "
            "them (a digit is mistyped, or the code was read from the wrong label)",
        ),
        (CODE[:-5], "install code has 32 hex digits"),
        (CODE[:-1] + "z", "non-hex character 'z'"),
    ],
)
def test_a_bad_install_code_says_what_is_wrong_without_quoting_it(code: str, says: str) -> None:
    body = {"correlation_id": "p", "mac": MAC, "install_code": code}
    with pytest.raises(CommandError) as error:
        parse_command("provision", json.dumps(body).encode())
    assert error.value.field == "install_code"
    assert says in str(error.value)
    digits = code.replace(" ", "")
    for start in range(len(digits) - 3):  # no four digits of the code in a row
        assert digits[start : start + 4] not in str(error.value).replace(" ", "")


def test_settings_name_the_key_and_hide_the_password() -> None:
    found = parse_settings({"url": "mqtts://h:1", "username": "u", "password": "s3cret"})
    assert (found.host, found.port, found.tls) == ("h", 1, True)
    assert "s3cret" not in repr(found)
    assert parse_settings({"url": "mqtt://h"}).port == 1883
    assert parse_settings({"url": "mqtt://h"}).send_events is True
    assert parse_settings({"url": "mqtt://h", "send_events": False}).send_events is False
    for table, key in [
        ({"url": "http://h"}, "mqtt.url"),
        ({"url": "mqtt://h:99999"}, "mqtt.url"),
        ({"url": "mqtt://h:0"}, "mqtt.url"),
        ({"url": "mqtt://[::1"}, "mqtt.url"),
        ({"url": "mqtt://[zz]:1"}, "mqtt.url"),
        ({"url": "mqtt://h]"}, "mqtt.url"),
        ({"qos": 3}, "mqtt.qos"),
        ({"base_topic": "a/#"}, "mqtt.base_topic"),
        ({"cert_file": "c.pem"}, "mqtt.cert_file"),
        ({"password": "p"}, "mqtt.password"),
        ({"retain": 1}, "mqtt.retain"),
        ({"send_events": "no"}, "mqtt.send_events"),
        ({"nope": 1}, "mqtt.nope"),
    ]:
        with pytest.raises(MqttConfigError, match=key.replace(".", r"\.")):
            parse_settings(table)
    for url in ("mqtt://u:s3cret@h:99999", "ftp://u:s3cret@h", "mqtt://u:s3cret@h:x"):
        with pytest.raises(MqttConfigError) as error:
            parse_settings({"url": url})
        assert "s3cret" not in str(error.value)


@pytest.mark.parametrize("key", ["base_topic", "discovery_prefix"])
@pytest.mark.parametrize(
    ("value", "says"),
    [("a" * 1025, "longer than 1024 bytes"), ("\u00e9" * 513, "longer than 1024 bytes"),
     ("zse\udcff", "not UTF-8")],
)  # fmt: skip
def test_a_topic_prefix_too_long_or_not_utf8_is_refused(key: str, value: str, says: str) -> None:
    """A base topic or discovery prefix past MQTT's 65,535 bytes a topic (section 1.5.3), or
    not UTF-8 (a bad byte in argv), was taken: every publication of the bridge was then
    refused, raising in the ESI's event listeners (CBKE's handler failed at each join) and
    ending the connection at each try. Refused by name, the value cut short."""
    assert parse_settings({key: "a" * 1024})
    with pytest.raises(MqttConfigError) as refused:
        parse_settings({key: value})
    assert str(refused.value).startswith(f"mqtt.{key}: ")
    assert says in str(refused.value)
    assert len(str(refused.value)) < 200


def test_executed_is_bounded_and_restored_in_order() -> None:
    executed = Executed(limit=2)
    stored = {}
    for cid in ("a", "b", "c"):
        record, evicted = executed.record(cid, {"status": "ok", "id": cid})
        assert executed.get(cid) is None  # noted only once stored
        stored[cid] = record
        executed.note(cid, record)
        for key in evicted:
            del stored[key]
    assert executed.get("a") is None
    assert executed.get("c") == {"status": "ok", "id": "c"}
    assert sorted(stored) == ["b", "c"]
    again = Executed(limit=1)
    assert again.restore({**stored, "junk": 5}) == ["junk", "b"]
    assert again.get("c") is not None


def test_the_outbox_drops_the_oldest_when_full() -> None:
    outbox = Outbox(limit=2)
    topics = Topics()
    for seq in (1, 2):
        assert outbox.add(seq, Publication(topics.state, "x")) == []
    assert outbox.add(3, Publication(topics.state, "y")) == [1]
    assert outbox.dropped == 1
    head = outbox.head()
    assert head is not None
    assert head[0] == 2
    outbox.done(2)
    assert len(outbox) == 1
    with pytest.raises(ValueError, match="outbox record"):
        Publication.from_record({"topic": 1})


def test_the_esi_config_takes_an_mqtt_table() -> None:
    """One file for `zse esi` and `zse mqtt`: the ESI's parser leaves [mqtt] to the bridge."""
    from zse.config import ConfigError, parse_config  # noqa: PLC0415

    text = '[esi]\npermit_seconds = 60\n\n[mqtt]\nurl = "mqtt://broker"\n'
    assert parse_config(text).permit_seconds == 60
    with pytest.raises(ConfigError, match="unknown table or key 'mqtt2'"):
        parse_config(text.replace("[mqtt]", "[mqtt2]"))


def test_the_esi_s_sends_are_publications_on_the_meter_s_topics() -> None:
    """Each send event of the ESI (whoever started it) on the meter's topic; a price retained
    only under the retain policy."""
    result = SendResult(
        what="price 1",
        target="device 00:0d:6f:00:0a:00:00:01",
        outcomes=(DeviceOutcome(device=MAC, outcome=Outcome.DELIVERED),),
    )
    price = PriceEvent(
        provider_id=1,
        rate_label=b"PEAK",
        issuer_event_id=1,
        unit_of_measure=0,
        currency=826,
        price_trailing_digit=4,
        price_tier=2,
        number_of_price_tiers=2,
        register_tier=2,
        start_time=0,
        duration_in_minutes=60,
        price=2450,
    )
    topics = Topics()
    meter = "00:0d:6f:00:00:00:00:e5"
    sent = sent_publication(topics, meter, PriceSent(price=price, result=result), 5)
    assert sent is not None
    assert (sent.topic, sent.retain) == ("zse/000d6f00000000e5/price", True)
    assert sent.payload["price_per_unit"] == 0.245
    assert sent.payload["outcomes"] == [{"device": MAC, "outcome": "delivered", "detail": ""}]
    kept = sent_publication(topics, meter, PriceSent(price=price, result=result), 5, retain=False)
    assert kept is not None
    assert kept.retain is False
    cancel = sent_publication(
        topics,
        meter,
        LoadControlCancelSent(issuer_event_id=9, cancel_control=0, effective_time=0, result=result),
        5,
    )
    assert cancel is not None
    assert cancel.topic == "zse/000d6f00000000e5/drlc"
    assert not cancel.retain
    assert (cancel.payload["event"], cancel.payload["issuer_event_id"]) == (
        "LoadControlCancelSent",
        9,
    )
    assert sent_publication(topics, meter, object(), 5) is None


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ({"reading_interval": -1}, "mqtt.reading_interval: expected 0 (no readings) or more"),
        ({"max_backoff": 0}, "mqtt.max_backoff: expected 1 second or more"),
    ],
)
def test_an_interval_out_of_range_names_its_own_key(table: dict, said: str) -> None:
    """One message named both keys ("mqtt.reading_interval / mqtt.max_backoff: must be
    positive") whichever was wrong, and 0, allowed for reading_interval, is not positive."""
    with pytest.raises(MqttConfigError) as error:
        parse_settings(table)
    assert str(error.value).startswith(said)
    assert parse_settings({"reading_interval": 0}).reading_interval == 0
