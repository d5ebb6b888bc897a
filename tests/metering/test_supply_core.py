"""SE 1.2 supply control on the meter (zse.metering.supply), sans-IO: one supply state shared
with the prepay account (Off wins), Change Supply at its time (applied once, bounded, the
newest issue wins, stored), Local Change Supply restoring an armed supply only, the
utility's commands from an authorised sender only, hostile frames answered with ZCL
statuses. No event loop."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.metering.test_meter_protocol import (
    ENUM8,
    FORMATTING,
    T0,
    UINT8,
    configure,
    frame,
    record,
)
from tests.metering.test_meter_protocol import meter as meter_without_supply
from zse.config import ConfigError, parse_config
from zse.metering.core import MeterCore
from zse.metering.protocol import MeterServerProtocol
from zse.metering.supply import (
    ARMED,
    CANCEL,
    MAX_PENDING,
    OFF,
    ON,
    FlowThreshold,
    LoadLimitCounterReset,
    SupplyChange,
    SupplyChanged,
    SupplyControl,
    SupplyRefused,
    SupplyServerProtocol,
    UncontrolledFlowThresholdSet,
)
from zse.metering.wire import Metering
from zse.mqtt.core import Topics, meter_event_publication
from zse.records import Mismatch
from zse.se.ids import MeteringAttribute as A
from zse.se.ids import MeteringClientCommand
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import ZclMessage

S = foundation.Status
SERVER = Metering.ServerCommandDefs
HOUR = 3600


def change(status: int, when: int = 0, issuer: int = 1, **kw: object) -> SupplyChange:
    return SupplyChange(status=status, when=when, provider_id=7, issuer_event_id=issuer, **kw)  # type: ignore[arg-type]


def meter(authorize: bool = True) -> MeterServerProtocol:
    core: MeterCore[Destination] = MeterCore(formatting=FORMATTING, now=T0)
    supply = SupplyServerProtocol(SupplyControl(), (lambda _msg: True) if authorize else None)
    return MeterServerProtocol(core, supply)


def command(name: str, **fields: object) -> ZclMessage:
    definition = getattr(SERVER, name)
    return frame(definition.id, encode_command(definition.schema(**fields)))


def change_supply(status: int, when: int, issuer: int = 1, ack: int = 1) -> ZclMessage:
    return command(
        "change_supply",
        provider_id=7,
        issuer_event_id=issuer,
        request_date_time=T0,
        implementation_date_time=when,
        proposed_supply_status=status,
        supply_control_bits=ack,
    )


def control(p: MeterServerProtocol) -> SupplyControl:
    assert p.supply is not None
    return p.supply.control


def test_a_change_supply_waits_for_its_time_applies_once_and_is_acknowledged_then() -> None:
    p = meter()
    step = p.handle(change_supply(OFF, T0 + HOUR), T0)
    assert step.sends == ()
    assert step.status == S.SUCCESS
    supply = control(p)
    assert supply.status == ON
    assert supply.read(A.PROPOSED_CHANGE_SUPPLY_IMPLEMENTATION_TIME) == T0 + HOUR
    assert supply.read(A.PROPOSED_CHANGE_SUPPLY_STATUS) == OFF
    assert p.supply is not None
    assert p.supply.next_deadline() == T0 + HOUR
    assert p.supply.handle_timeout(T0 + HOUR - 1).sends == ()
    step = p.supply.handle_timeout(T0 + HOUR)
    assert step.events == (
        SupplyChanged(status=OFF, before=ON, cause="change supply", time=T0 + HOUR),
    )
    (send,) = step.sends
    assert send.to == Destination.device(0x1234, 1)
    assert send.command_id == MeteringClientCommand.SUPPLY_STATUS_RESPONSE
    answer, _ = decode_command(Metering, send.command_id, send.payload, from_server=True)
    assert (answer.provider_id, answer.issuer_event_id) == (7, 1)
    assert (answer.implementation_date_time, answer.supply_status) == (T0 + HOUR, OFF)
    assert supply.status == OFF
    assert supply.read(A.PROPOSED_CHANGE_SUPPLY_IMPLEMENTATION_TIME) == 0xFFFFFFFF
    assert p.supply.handle_timeout(T0 + 2 * HOUR) == type(step)()  # applied once
    # now (0) with the acknowledge bit: the Supply Status Response answers it at once
    step = p.handle(change_supply(ARMED, 0, issuer=2), T0 + 2 * HOUR)
    (send,) = step.sends
    assert send.reply_to is not None
    answer, _ = decode_command(Metering, send.command_id, send.payload, from_server=True)
    assert (answer.issuer_event_id, answer.supply_status) == (2, ARMED)
    # without it: a Default Response (SUCCESS)
    step = p.handle(change_supply(ON, 0, issuer=3, ack=0), T0 + 2 * HOUR)
    assert step.sends == ()
    assert step.status == S.SUCCESS
    assert supply.status == ON


def test_pending_changes_are_bounded_cancelled_and_the_newest_issue_wins() -> None:
    supply = SupplyControl()
    for n in range(MAX_PENDING):
        supply.change_supply(change(OFF, T0 + (n + 1) * HOUR, issuer=10 + n), T0)
    with pytest.raises(SupplyRefused) as refused:
        supply.change_supply(change(OFF, T0 + 20 * HOUR, issuer=30), T0)
    assert refused.value.status == S.INSUFFICIENT_SPACE
    assert len(supply.pending) == MAX_PENDING  # none dropped for it
    # 0xFFFFFFFF cancels the waiting change of the same provider and issuer event id
    supply.change_supply(change(OFF, CANCEL, issuer=17), T0)
    assert [p.issuer_event_id for p in supply.pending] == list(range(10, 17))
    # an older issue arriving late, due after a newer one waiting: not kept
    supply.change_supply(change(ON, T0 + 9 * HOUR, issuer=5), T0)
    assert 5 not in [p.issuer_event_id for p in supply.pending]
    # a newer issue drops the older ones due at or after it
    supply.change_supply(change(ARMED, T0 + 3 * HOUR, issuer=40), T0)
    assert [p.issuer_event_id for p in supply.pending] == [10, 11, 40]
    # the same issue again replaces the one waiting
    supply.change_supply(change(ON, T0 + 3 * HOUR, issuer=40), T0)
    assert [(p.issuer_event_id, p.status) for p in supply.pending][-1] == (40, ON)
    # a time not after now is now
    events, applied = supply.change_supply(change(OFF, T0 - 5, issuer=50), T0)
    assert applied
    assert supply.status == OFF
    assert events


def test_local_change_supply_only_restores_an_armed_supply() -> None:
    supply = SupplyControl(status=ARMED)
    for status, refusal in (
        (ARMED, S.NOT_AUTHORIZED),
        (OFF, S.INVALID_VALUE),
        (3, S.INVALID_VALUE),
    ):
        with pytest.raises(SupplyRefused) as refused:
            supply.local_change_supply(status, T0)
        assert refused.value.status == refusal
    assert supply.local_change_supply(ON, T0) == [
        SupplyChanged(status=ON, before=ARMED, cause="local change supply", time=T0)
    ]
    assert supply.local_change_supply(ON, T0) == []  # on already: nothing changes
    supply.change_supply(change(OFF), T0)
    with pytest.raises(SupplyRefused) as refused:
        supply.local_change_supply(ON, T0)  # off, not armed: the consumer may not
    assert refused.value.status == S.NOT_AUTHORIZED
    assert supply.status == OFF


def test_a_supply_interrupted_for_credit_stays_off_whatever_else_asks() -> None:
    """Off wins: the credit's interruption holds against Local Change Supply and a Change
    Supply to On; when credit comes back the supply returns to the utility's state."""
    supply = SupplyControl(status=ARMED)
    assert supply.set_credit_interrupted(True, T0) == [
        SupplyChanged(status=OFF, before=ARMED, cause="credit", time=T0)
    ]
    with pytest.raises(SupplyRefused) as refused:
        supply.local_change_supply(ON, T0)
    assert refused.value.status == S.NOT_AUTHORIZED
    events, applied = supply.change_supply(change(ON), T0)
    assert applied
    assert events == []
    assert supply.status == OFF
    assert supply.read(A.SUPPLY_STATUS) == OFF
    assert supply.set_credit_interrupted(False, T0 + 1) == [
        SupplyChanged(status=ON, before=OFF, cause="credit", time=T0 + 1)
    ]
    supply.change_supply(change(OFF, issuer=2), T0 + 2)
    assert supply.set_credit_interrupted(True, T0 + 3) == []  # off already
    assert supply.set_credit_interrupted(False, T0 + 4) == []  # the utility's off stays


def test_the_credits_interruption_is_stored_with_the_supply() -> None:
    """The interruption changes the stored state (the meter writes it); the same state told
    again (the ESI does at start) changes and tells nothing; a record from before it was
    stored reads as not interrupted; a record whose interruption is not a boolean does not
    read."""
    supply = SupplyControl()
    assert supply.set_credit_interrupted(True, T0)
    assert supply.changed
    supply.changed = False
    again = SupplyControl()
    again.restore(supply.snapshot())
    assert again.status == OFF
    assert again.set_credit_interrupted(True, T0 + 1) == []
    assert not again.changed
    old = {k: v for k, v in supply.snapshot().items() if k != "credit_interrupted"}
    older = SupplyControl()
    older.restore(old)
    assert older.status == ON
    supply.change_supply(change(OFF), T0)
    assert supply.set_credit_interrupted(False, T0 + 2) == []  # the utility's Off stays
    assert supply.changed  # but the interruption's end is stored
    with pytest.raises(Mismatch):
        SupplyControl().restore({**supply.snapshot(), "credit_interrupted": 1})


def test_a_cancel_or_an_older_issue_not_kept_gets_a_default_response_even_asked_to_acknowledge():
    """A Change Supply that implements nothing answers SUCCESS in a Default Response and
    sends no Supply Status Response, then or later, though its acknowledge bit is set: a
    cancel (Silicon Labs' metering server answers it so), an older issue arriving while a
    newer one waits to apply before it (zse's choice, docs/metering.md)."""
    p = meter()
    assert p.supply is not None
    assert p.handle(change_supply(OFF, T0 + HOUR, issuer=5), T0).status == S.SUCCESS
    step = p.handle(change_supply(OFF, CANCEL, issuer=5), T0 + 1)
    assert (step.sends, step.status) == ((), S.SUCCESS)
    assert control(p).pending == []
    p.handle(change_supply(ARMED, T0 + HOUR, issuer=7), T0 + 2)
    step = p.handle(change_supply(ON, T0 + 2 * HOUR, issuer=6), T0 + 3)
    assert (step.sends, step.status) == ((), S.SUCCESS)
    assert [c.issuer_event_id for c in control(p).pending] == [7]
    acknowledged = [
        decode_command(Metering, send.command_id, send.payload, from_server=True)[0]
        for now in (T0 + HOUR, T0 + 2 * HOUR)
        for send in p.supply.handle_timeout(now).sends
    ]
    assert [(a.issuer_event_id, a.supply_status) for a in acknowledged] == [(7, ARMED)]


def supply_report(status: int) -> bytes:
    """A Report Attributes payload (ZCL 2.5.11.1) of Supply Status alone: id, enum8, value."""
    return int(A.SUPPLY_STATUS).to_bytes(2, "little") + bytes((ENUM8, status))


def reported(p: MeterServerProtocol, now: int) -> list[bytes]:
    """The payloads of the Report Attributes due at ``now``."""
    return [send.payload for send in p.handle_timeout(now).sends]


def test_supply_status_is_reported_on_each_change_its_minimum_interval_respected() -> None:
    """Supply Status (0x0014, an enum8) is reportable once the meter has supply control: a
    discrete attribute (no reportable change, ZCL 2.5.7.1), so each change, from any cause,
    is reported once the minimum interval since the last report has passed; a change undone
    before then (a command answered FAILURE: its state put back) is not. A meter without
    supply control refuses it UNSUPPORTED_ATTRIBUTE."""
    refused = bytes((S.UNSUPPORTED_ATTRIBUTE, 0)) + int(A.SUPPLY_STATUS).to_bytes(2, "little")
    (send,) = (
        meter_without_supply().handle(configure(record(A.SUPPLY_STATUS, ENUM8, 0, 0)), T0).sends
    )
    assert send.payload == refused
    p = meter()
    (send,) = p.handle(configure(record(A.SUPPLY_STATUS, UINT8, 0, 0)), T0).sends
    assert send.payload[0] == S.INVALID_DATA_TYPE
    (send,) = p.handle(configure(record(A.SUPPLY_STATUS, ENUM8, 10, 0)), T0).sends
    assert send.payload == b"\x00"
    assert p.next_deadline() is None  # maximum 0: on a change only
    supply = control(p)
    # a Change Supply now, from the utility
    p.handle(change_supply(OFF, 0, issuer=1, ack=0), T0 + 20)
    assert p.next_deadline() == T0 + 10  # the minimum interval has passed: due at once
    assert reported(p, T0 + 20) == [supply_report(OFF)]
    # credit interrupting an Off supply, the utility's On held back by it: no change
    supply.set_credit_interrupted(True, T0 + 21)
    supply.change_supply(change(ARMED, issuer=2), T0 + 22)
    assert p.next_deadline() is None
    # credit back: Off/Armed, reported 10 s after the last report, not before
    supply.set_credit_interrupted(False, T0 + 23)
    assert p.next_deadline() == T0 + 30
    assert reported(p, T0 + 29) == []
    assert reported(p, T0 + 30) == [supply_report(ARMED)]
    # the consumer restores it, the utility arms it again within the minimum interval: the
    # value reported last, nothing to report
    p.handle(command("local_change_supply", proposed_supply_status=ON), T0 + 31)
    assert p.next_deadline() == T0 + 40
    supply.change_supply(change(ARMED, issuer=3), T0 + 32)
    assert p.next_deadline() is None
    # a change at its time, applied by the timer
    p.handle(change_supply(OFF, T0 + HOUR, issuer=4, ack=0), T0 + 33)
    assert p.next_deadline() is None
    assert p.supply is not None
    p.supply.handle_timeout(T0 + HOUR)
    assert reported(p, T0 + HOUR) == [supply_report(OFF)]
    # a change put back (its store write failed) is not reported
    held = supply.snapshot()
    p.handle(change_supply(ON, 0, issuer=5, ack=0), T0 + HOUR + 20)
    assert p.next_deadline() == T0 + HOUR + 10
    supply.restore(held)
    assert p.next_deadline() is None
    assert p.core.read(A.SUPPLY_STATUS) == supply.status == OFF


def test_the_utilitys_supply_commands_need_an_authorised_sender() -> None:
    p = meter(authorize=False)
    utility = [
        change_supply(OFF, 0),
        command("reset_load_limit_counter", provider_id=7, issuer_event_id=1),
        command(
            "set_supply_status",
            issuer_event_id=1,
            supply_tamper_state=0,
            supply_depletion_state=0,
            supply_uncontrolled_flow_state=0,
            load_limit_supply_state=0,
        ),
        command(
            "set_uncontrolled_flow_threshold",
            provider_id=7,
            issuer_event_id=1,
            uncontrolled_flow_threshold=9,
            unit_of_measure=1,
            multiplier=1,
            divisor=1,
            stabilisation_period=1,
            measurement_period=1,
        ),
    ]
    before = control(p).snapshot()
    for msg in utility:
        assert p.handle(msg, T0).status == S.NOT_AUTHORIZED
    assert control(p).snapshot() == before
    # Local Change Supply is the consumer's: from any HAN device
    control(p).utility = ARMED
    assert (
        p.handle(command("local_change_supply", proposed_supply_status=ON), T0).status == S.SUCCESS
    )
    assert control(p).status == ON


def test_set_supply_status_threshold_and_load_limit_counter_are_kept_and_served() -> None:
    p = meter()
    supply = control(p)
    step = p.handle(
        command(
            "set_supply_status",
            issuer_event_id=4,
            supply_tamper_state=OFF,
            supply_depletion_state=3,  # unchanged: not held
            supply_uncontrolled_flow_state=ARMED,
            load_limit_supply_state=ON,
        ),
        T0,
    )
    assert step.status == S.SUCCESS
    assert supply.read(A.SUPPLY_TAMPER_STATE) == OFF
    assert supply.read(A.SUPPLY_DEPLETION_STATE) is None
    assert supply.read(A.SUPPLY_UNCONTROLLED_FLOW_STATE) == ARMED
    assert supply.read(A.LOAD_LIMIT_SUPPLY_STATE) == ON
    fields = {"provider_id": 7, "issuer_event_id": 5, "uncontrolled_flow_threshold": 250,
              "unit_of_measure": 1, "multiplier": 3, "divisor": 10, "stabilisation_period": 20,
              "measurement_period": 30}  # fmt: skip
    (event,) = p.handle(command("set_uncontrolled_flow_threshold", **fields), T0).events
    assert isinstance(event, UncontrolledFlowThresholdSet)
    assert supply.read(A.UNCONTROLLED_FLOW_THRESHOLD) == 250
    assert supply.read(A.UNCONTROLLED_FLOW_DIVISOR) == 10
    assert supply.read(A.FLOW_MEASUREMENT_PERIOD) == 30
    assert supply.count_load_limit() == 1
    assert supply.count_load_limit() == 2
    step = p.handle(command("reset_load_limit_counter", provider_id=7, issuer_event_id=6), T0)
    assert step.events == (LoadLimitCounterReset(before=2, provider_id=7, issuer_event_id=6),)
    assert supply.read(A.LOAD_LIMIT_COUNTER) == 0
    # all of it outlives a restart; a damaged record does not read
    again = SupplyControl()
    again.restore(supply.snapshot())
    assert again.snapshot() == supply.snapshot()
    assert again.attributes() == supply.attributes()
    damaged = {**supply.snapshot(), "utility": 9}
    with pytest.raises(Mismatch):
        SupplyControl().restore(damaged)


def test_hostile_supply_frames_get_zcl_statuses() -> None:
    p = meter()
    whole = change_supply(OFF, 0)
    for cut in range(len(whole.payload)):
        short = dataclasses.replace(whole, payload=whole.payload[:cut])
        assert p.handle(short, T0).status == S.MALFORMED_COMMAND
    assert p.handle(change_supply(7, 0), T0).status == S.INVALID_VALUE
    bad_state = command(
        "set_supply_status",
        issuer_event_id=1,
        supply_tamper_state=4,
        supply_depletion_state=0,
        supply_uncontrolled_flow_state=0,
        load_limit_supply_state=0,
    )
    assert p.handle(bad_state, T0).status == S.INVALID_VALUE
    assert control(p).states == {}  # nothing taken from a refused frame
    assert control(p).status == ON


@given(payload=st.binary(max_size=24), command_id=st.integers(0x0A, 0x0E))
def test_garbage_supply_frames_never_raise(payload: bytes, command_id: int) -> None:
    p = meter()
    step = p.handle(frame(command_id, payload), T0)
    assert step.status in (S.SUCCESS, S.MALFORMED_COMMAND, S.INVALID_VALUE, S.NOT_AUTHORIZED)
    assert control(p).status in (OFF, ARMED, ON)


def test_the_meter_table_turns_supply_control_on() -> None:
    """``[meter] supply = true``: the ESI's meter has supply control; off by default; a value
    that is not a boolean is a one-line config error."""
    assert not parse_config("[meter]\n").meter_supply
    assert parse_config("[meter]\nsupply = true\n").meter_supply
    with pytest.raises(ConfigError, match=r"\[meter\] supply: expected true or false"):
        parse_config("[meter]\nsupply = 1\n")


def test_supply_events_go_to_the_meters_supply_topic_on_mqtt() -> None:
    """The ESI's supply events on ``<base>/<meter>/supply`` (ADR 0030's rule for a later
    cluster; not ``metering``, the readings' topic), as plain JSON, not retained."""
    topics, meter_eui = Topics("zse"), "00:0d:6f:00:00:00:00:01"
    supply = SupplyControl(status=ARMED)
    events = [
        *supply.local_change_supply(ON, T0),
        *supply.set_supply_states({"supply_tamper_state": OFF, "load_limit_supply_state": 3}, 4),
        *supply.set_threshold(FlowThreshold(threshold=250, unit_of_measure=1, multiplier=1,
                                            divisor=10, stabilisation_period=20,
                                            measurement_period=30)),
        *supply.reset_load_limit_counter(7, 5),
    ]  # fmt: skip
    published = [meter_event_publication(topics, meter_eui, e, T0) for e in events]
    assert all(p is not None and not p.retain for p in published)
    assert {p.topic for p in published if p} == {topics.device(meter_eui, "supply")}
    changed, states, threshold, reset = (json.loads(p.encode()) for p in published if p)
    assert (changed["event"], changed["status"], changed["cause"]) == (
        "SupplyChanged",
        ON,
        "local change supply",
    )
    assert states["states"] == {"supply_tamper_state": OFF}
    assert threshold["threshold"]["divisor"] == 10
    assert (reset["event"], reset["before"]) == ("LoadLimitCounterReset", 0)
