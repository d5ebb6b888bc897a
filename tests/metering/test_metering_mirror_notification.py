"""SE 1.2 mirror notifications at the frame (zse.metering.mirror, zse.metering.notification):
the meter configures its mirror, the ESI raises flags, the mirror answers the meter's report
with Mirror Report Attribute Response, Get Notified Message clears what it names."""

from __future__ import annotations

import dataclasses
import json

import pytest
import zigpy.types as t
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.metering.test_metering_mirror import GAS, NOW, SUMMATION, WATER, command, report
from zse.metering.mirror import MirrorPool, MirrorProtocol
from zse.metering.notification import (
    DEVICE_MANAGEMENT_FLAGS,
    FUNCTIONAL_FLAGS,
    PRICE_FLAGS,
    FlagCommands,
    FunctionalFlag,
    MirrorConfigured,
    MirrorNotifications,
    NotificationFlagsRaised,
    NotifiedMessageRequested,
    PriceFlag,
    flag_attributes,
    flag_names,
)
from zse.metering.wire import Metering
from zse.se.ids import METERING, MeteringClientCommand, MeteringServerCommand
from zse.zcl.codec import decode_command, encode_command

S = foundation.Status
C = Metering.ClientCommandDefs
REQUEST_MIRROR = MeteringClientCommand.REQUEST_MIRROR
MRAR = MeteringServerCommand.MIRROR_REPORT_ATTRIBUTE_RESPONSE


def frame(definition, device: t.EUI64 | None = GAS, endpoint: int = 10, **fields):
    """One of the meter's notification commands (server to client) to its mirror."""
    payload = encode_command(definition.schema(**fields))
    return dataclasses.replace(command(definition.id, device), dst_ep=endpoint, payload=payload)


def configure_mirror(scheme: int = 1, reporting: bool = True, **changes):
    fields = {
        "issuer_event_id": 1,
        "reporting_interval": 1800,
        "mirror_notification_reporting": reporting,
        "notification_scheme": scheme,
    }
    return frame(C.configure_mirror, **{**fields, **changes})


def get_notified(attribute: int, flags: int, scheme: int = 1, **changes):
    fields = {
        "notification_scheme": scheme,
        "notification_flag_attribute_id": attribute,
        "notification_flags": flags,
    }
    return frame(C.get_notified_message, **{**fields, **changes})


def mirrored() -> MirrorProtocol:
    core = MirrorProtocol(MirrorPool([10, 11]))
    core.receive(command(REQUEST_MIRROR), None, NOW)
    return core


def response(step) -> tuple[int, list[int]]:
    """The scheme and flags of the Mirror Report Attribute Response ``step`` sends."""
    (send,) = step.sends
    assert (send.cluster_id, send.command_id, send.cluster_specific) == (METERING, MRAR, True)
    assert send.reply_to is not None
    assert step.status is None  # no Default Response
    decoded, rest = decode_command(Metering, MRAR, send.payload, from_server=False)
    assert rest == b""
    return int(decoded.notification_scheme), [int(f) for f in decoded.notification_flags]


def test_without_configure_mirror_a_report_gets_a_default_response():
    core = mirrored()
    core.notify(GAS, FUNCTIONAL_FLAGS, FunctionalFlag.TIME_SYNC)
    step = core.report(report(SUMMATION), NOW)
    assert (step.status, step.sends) == (S.SUCCESS, ())


def test_scheme_a_answers_the_report_with_the_functional_flags():
    core = mirrored()
    step = core.configure(configure_mirror(scheme=1), NOW)
    assert step.status == S.SUCCESS
    assert step.events == (
        MirrorConfigured(
            device=GAS,
            endpoint=10,
            command_id=MeteringClientCommand.CONFIGURE_MIRROR,
            reporting=True,
            scheme=1,
            reporting_interval=1800,
        ),
    )
    assert response(core.report(report(SUMMATION), NOW)) == (1, [0])
    raised = core.notify(GAS, FUNCTIONAL_FLAGS, FunctionalFlag.STAY_AWAKE_REQUEST_HAN)
    assert raised == NotificationFlagsRaised(
        device=GAS, endpoint=10, attribute=FUNCTIONAL_FLAGS, flags=0x10
    )
    core.notify(GAS, PRICE_FLAGS, PriceFlag.PUBLISH_PRICE)  # not carried by scheme A
    step = core.report(report(SUMMATION), NOW)
    assert response(step) == (1, [0x10])
    assert step.events[0].attributes[0][1] == 123_456  # the report is still stored


def test_scheme_b_carries_five_flags_and_reporting_off_carries_none():
    core = mirrored()
    core.configure(configure_mirror(scheme=2), NOW)
    core.notify(GAS, FUNCTIONAL_FLAGS, FunctionalFlag.TIME_SYNC | FunctionalFlag.DISPLAY_MESSAGE)
    core.notify(GAS, PRICE_FLAGS, PriceFlag.PUBLISH_PRICE)
    core.notify(GAS, DEVICE_MANAGEMENT_FLAGS, 0x80)
    assert response(core.report(report(SUMMATION), NOW)) == (2, [0x10004, 1, 0, 0, 0x80])
    core.configure(configure_mirror(scheme=2, reporting=False), NOW)
    assert core.report(report(SUMMATION), NOW).status == S.SUCCESS


def test_another_scheme_carries_the_flags_its_order_names():
    core = mirrored()
    order = frame(
        C.configure_notification_scheme,
        issuer_event_id=2,
        notification_scheme=3,
        notification_flag_order=0x21,  # Functional, then Notification Flags 2
    )
    assert core.configure(order, NOW).status == S.SUCCESS
    core.configure(configure_mirror(scheme=3), NOW)
    core.notify(GAS, PRICE_FLAGS, PriceFlag.CANCEL_TARIFF)
    assert response(core.report(report(SUMMATION), NOW)) == (3, [0, 0x8000])
    # a scheme no Configure Notification Scheme defined: no response, as Silicon Labs' plugin
    core.configure(configure_mirror(scheme=4), NOW)
    assert core.report(report(SUMMATION), NOW).status == S.SUCCESS


def test_get_notified_message_clears_the_bits_it_names_and_tells_the_application():
    core = mirrored()
    core.configure(configure_mirror(scheme=1), NOW)
    flag = frame(
        C.configure_notification_flag,
        issuer_event_id=3,
        notification_scheme=1,
        notification_flag_attribute_id=FUNCTIONAL_FLAGS,
        cluster_id=0x0703,
        manufacturer_code=0,
        number_of_commands=1,
        command_ids=[0x00],
    )
    assert core.configure(flag, NOW).status == S.SUCCESS
    core.notify(GAS, FUNCTIONAL_FLAGS, FunctionalFlag.DISPLAY_MESSAGE | FunctionalFlag.TIME_SYNC)
    step = core.configure(get_notified(FUNCTIONAL_FLAGS, FunctionalFlag.DISPLAY_MESSAGE | 1), NOW)
    assert step.status == S.SUCCESS
    assert step.events == (
        NotifiedMessageRequested(
            device=GAS,
            endpoint=10,
            scheme=1,
            attribute=FUNCTIONAL_FLAGS,
            flags=FunctionalFlag.DISPLAY_MESSAGE,  # bit 0 was not raised
            commands=FlagCommands(0x0703, 0, (0x00,)),
        ),
    )
    assert response(core.report(report(SUMMATION), NOW)) == (1, [FunctionalFlag.TIME_SYNC])
    core.notify(GAS, FUNCTIONAL_FLAGS, FunctionalFlag.TIME_SYNC, clear=True)
    assert response(core.report(report(SUMMATION), NOW)) == (1, [0])


@pytest.mark.parametrize(
    ("msg", "status"),
    [
        (configure_mirror(device=WATER), S.NOT_AUTHORIZED),  # not the mirror's owner
        (configure_mirror(endpoint=11), S.NOT_AUTHORIZED),  # a free mirror
        (dataclasses.replace(configure_mirror(), payload=b"\x01\x00"), S.MALFORMED_COMMAND),
        (dataclasses.replace(configure_mirror(), frame_control=0x01), S.UNSUP_CLUSTER_COMMAND),
        (dataclasses.replace(configure_mirror(), command_id=0x0C), S.UNSUP_CLUSTER_COMMAND),
        (get_notified(0x0008, 1), S.INVALID_VALUE),
    ],
)
def test_notification_commands_refused(msg, status):
    core = mirrored()
    step = core.configure(msg, NOW)
    assert (step.status, step.events, step.sends) == (status, (), ())
    assert core.pool.notifications(10) == MirrorNotifications()


def test_a_group_or_broadcast_configure_mirror_is_ignored():
    core = mirrored()
    for changes in ({"group": 0x0001}, {"broadcast": True}):
        step = core.configure(dataclasses.replace(configure_mirror(), **changes), NOW)
        assert (step.status, step.events, step.sends) == (None, (), ())
    assert core.pool.notifications(10) == MirrorNotifications()


def test_schemes_and_flag_configurations_are_bounded():
    core = mirrored()
    for scheme in range(3, 11):
        order = frame(
            C.configure_notification_scheme,
            issuer_event_id=scheme,
            notification_scheme=scheme,
            notification_flag_order=1,
        )
        assert core.configure(order, NOW).status == S.SUCCESS
    ninth = dataclasses.replace(order, payload=order.payload[:4] + b"\x0b" + order.payload[5:])
    assert core.configure(ninth, NOW).status == S.INSUFFICIENT_SPACE
    assert core.configure(order, NOW).status == S.SUCCESS  # a known scheme is replaced
    for index in range(16):
        flag = frame(
            C.configure_notification_flag,
            issuer_event_id=index,
            notification_scheme=index // 8,
            notification_flag_attribute_id=index % 8,
            cluster_id=0x0700,
            manufacturer_code=0,
            number_of_commands=0,
            command_ids=[],
        )
        assert core.configure(flag, NOW).status == S.SUCCESS
    more = dataclasses.replace(flag, payload=flag.payload[:4] + b"\x05" + flag.payload[5:])
    assert core.configure(more, NOW).status == S.INSUFFICIENT_SPACE


def test_the_esi_endpoint_does_not_take_them():
    # they go to the mirror endpoint (Silicon Labs' meter-mirror plugin takes Configure
    # Mirror there); on the ESI's own endpoint they stay unsupported
    core = mirrored()
    msg = dataclasses.replace(configure_mirror(), dst_ep=9)
    assert core.receive(msg, None, NOW).status == S.UNSUP_CLUSTER_COMMAND


def test_the_notifications_persist_with_the_mirror_record():
    core = mirrored()
    core.configure(configure_mirror(scheme=2), NOW)
    core.configure(
        frame(
            C.configure_notification_flag,
            issuer_event_id=3,
            notification_scheme=2,
            notification_flag_attribute_id=PRICE_FLAGS,
            cluster_id=0x0700,
            manufacturer_code=0x1234,
            number_of_commands=2,
            command_ids=[0x00, 0x01],
        ),
        NOW,
    )
    core.notify(GAS, PRICE_FLAGS, PriceFlag.PUBLISH_PRICE)
    record = json.loads(json.dumps(core.pool.record(10)))
    again = MirrorPool([10, 11])
    again.restore(10, record)
    assert again.notifications(10) == core.pool.notifications(10)
    # a record of an SE 1.1 mirror has none; a damaged one is refused whole
    assert "notify" not in mirrored().pool.record(10)
    for bad in ({"flags": {"0009": 1}}, {"reporting": 1}, {"scheme": 256}, {"commands": [[1]]}):
        broken = {**record, "notify": {**record["notify"], **bad}}
        fresh = MirrorPool([10])
        with pytest.raises(ValueError, match="not a mirror record"):
            fresh.restore(10, broken)
        assert fresh.owner(10) is None


def test_flag_helpers():
    assert flag_attributes(1) == (0x0000,)
    assert flag_attributes(2) == (0, 1, 2, 3, 4)
    assert flag_attributes(7, 0x0F21) == (0, 1)  # a nibble out of 1-8 ends the order
    assert flag_attributes(7) == ()
    assert flag_names(FUNCTIONAL_FLAGS, 0x10014) == (
        "TIME_SYNC",
        "STAY_AWAKE_REQUEST_HAN",
        "DISPLAY_MESSAGE",
    )
    assert flag_names(FUNCTIONAL_FLAGS, 0x40) == ("PUSH_HISTORICAL_METERING_DATA_ATTRIBUTE_SET",)
    assert flag_names(0x0007, 0x3) == ("bit0", "bit1")
    notes = MirrorNotifications()
    with pytest.raises(ValueError, match="not a notification flag attribute"):
        notes.raise_flags(0x0008, 1)
    with pytest.raises(ValueError, match="out of range"):
        notes.raise_flags(0x0000, 1 << 32)
    with pytest.raises(KeyError):
        mirrored().notify(WATER, 0, 1)


NOTIFY_COMMANDS = sorted(int(c) for c in MeteringClientCommand if 0x08 <= c <= 0x0B)


@given(
    st.sampled_from(NOTIFY_COMMANDS),
    st.binary(max_size=40),
    st.sampled_from([GAS, WATER, None]),
)
def test_garbage_notification_commands_give_statuses_only(command_id, payload, device):
    core = mirrored()
    msg = dataclasses.replace(command(command_id, device), dst_ep=10, payload=payload)
    step = core.configure(msg, NOW)
    assert step.sends == ()
    assert isinstance(step.status, S)
    if step.status != S.SUCCESS:
        assert core.pool.notifications(10) == MirrorNotifications()
    json.dumps(core.pool.record(10))  # what persists stays JSON
