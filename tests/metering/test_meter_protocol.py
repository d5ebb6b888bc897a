"""#14.2: the meter's protocol core at the ZCL frame (zse.metering.protocol.MeterServerProtocol),
with no event loop: Configure Reporting / Read Reporting Configuration (ZCL 2.5.7-2.5.10),
Report Attributes at exact times (2.5.11), Get Profile (D.3.2.3.1.1) and fast poll
(D.3.3.3.1.4, D.3.2.3.1.4); garbage gets statuses, never an exception."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.services.test_delivery import REQUEST
from zse.metering.core import MeterCore, Readings
from zse.metering.protocol import (
    FAST_POLL_MAX_MINUTES,
    FastPollGranted,
    MeterServerProtocol,
    ReportingConfigured,
)
from zse.metering.wire import Metering
from zse.se.ids import METERING, MeteringClientCommand, MeteringServerCommand
from zse.se.ids import MeteringAttribute as A
from zse.se.types import GetProfileStatus, IntervalChannel
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import ZclMessage

T0 = 1800 * 1000  # on a 30-minute boundary
G = foundation.GeneralCommand
S = foundation.Status
UINT48, INT24, UINT8, ENUM8 = 0x25, 0x2A, 0x20, 0x30
DEVICE = Destination.device(REQUEST.src_nwk, REQUEST.src_ep)
FORMATTING = {
    A.UNIT_OF_MEASURE: 0,
    A.DIVISOR: 1000,
    A.DEFAULT_UPDATE_PERIOD: 30,
    A.FAST_POLL_UPDATE_PERIOD: 4,
}


def meter(**kwargs: int | bool) -> MeterServerProtocol:
    core: MeterCore[Destination] = MeterCore(formatting=FORMATTING, now=T0, **kwargs)  # type: ignore[arg-type]
    return MeterServerProtocol(core)


def frame(
    command_id: int, payload: bytes, *, cluster: bool = True, from_server: bool = False
) -> ZclMessage:
    """A Metering frame from 0x1234 endpoint 1, client to server unless ``from_server``."""
    return dataclasses.replace(
        REQUEST,
        cluster_id=METERING,
        frame_control=(0x01 if cluster else 0x00) | (0x08 if from_server else 0x00),
        command_id=command_id,
        payload=payload,
    )


def record(attr: int, type_id: int, lo: int, hi: int, change: int | None = None) -> bytes:
    """One Configure Reporting record (ZCL 2.5.7.1), direction "send reports"."""
    config = foundation.AttributeReportingConfig()
    config.direction = foundation.ReportingDirection.SendReports
    config.attrid = attr
    config.datatype = foundation.DataTypeId(type_id)
    config.min_interval, config.max_interval = lo, hi
    config.reportable_change = change or 0
    return config.serialize()


def configure(*records: bytes) -> ZclMessage:
    return frame(G.Configure_Reporting, b"".join(records), cluster=False)


def test_configure_reporting_success_is_one_status_and_reports_come_at_exact_times() -> None:
    p = meter()
    p.core.update(Readings(summation_delivered=1000, instantaneous_demand=-5), T0)
    step = p.handle(configure(record(0, UINT48, 10, 60, 5), record(0x0400, INT24, 1, 300, 100)), T0)
    (send,) = step.sends
    assert (send.command_id, send.payload, send.cluster_specific) == (
        G.Configure_Reporting_rsp,
        b"\x00",
        False,
    )
    assert send.reply_to is not None
    assert [type(e) for e in step.events] == [ReportingConfigured, ReportingConfigured]
    assert p.next_deadline() == T0 + 60
    p.core.update(Readings(summation_delivered=1003, instantaneous_demand=-300), T0 + 5)
    assert p.next_deadline() == T0 + 1  # the demand changed by 295 >= 100, min 1 s
    (report,) = p.handle_timeout(T0 + 5).sends
    assert report.to == DEVICE
    assert report.command_id == G.Report_Attributes
    assert not report.cluster_specific
    assert report.payload == bytes.fromhex("0004") + bytes((INT24,)) + (-300).to_bytes(
        3, "little", signed=True
    )
    assert p.next_deadline() == T0 + 60  # summation: +3 < 5 waits for its max
    (report,) = p.handle_timeout(T0 + 60).sends
    assert report.payload == b"\x00\x00" + bytes((UINT48,)) + (1003).to_bytes(6, "little")


def test_configure_reporting_refused_records_get_their_status() -> None:
    p = meter()
    p.core.update(Readings(instantaneous_demand=5), T0)
    msg = configure(
        record(0, UINT48, 10, 60, 5),
        record(0x0001, UINT48, 1, 2, 1),  # received: a delivered-only meter has none
        record(0x0400, UINT48, 1, 2, 1),  # wrong type
        record(0x0000, UINT48, 90, 60, 1),  # min > max
    )
    (send,) = p.handle(msg, T0).sends
    assert send.payload == bytes.fromhex("86 00 01008d 00 000487 00 0000".replace(" ", ""))


def test_read_reporting_configuration() -> None:
    p = meter()
    p.core.update(Readings(instantaneous_demand=5), T0)
    p.handle(configure(record(0x0400, INT24, 2, 90, 7)), T0)
    ask = bytes.fromhex("000004000000000200010004")
    (send,) = p.handle(frame(G.Read_Reporting_Configuration, ask, cluster=False), T0).sends
    assert send.command_id == G.Read_Reporting_Configuration_rsp
    assert not send.cluster_specific
    schema = foundation.GENERAL_COMMANDS[G.Read_Reporting_Configuration_rsp].schema
    answer, rest = schema.deserialize(send.payload)
    assert rest == b""
    got = [(int(r.status), int(r.config.attrid)) for r in answer.attribute_configs]
    assert got[0] == (S.SUCCESS, 0x0400)
    first = answer.attribute_configs[0].config
    assert (first.datatype, first.min_interval, first.max_interval, first.reportable_change) == (
        INT24,
        2,
        90,
        7,
    )
    assert got[1:] == [
        (S.NOT_FOUND, 0x0000),
        (S.UNSUPPORTED_ATTRIBUTE, 0x0002),
        (S.UNSUPPORTED_ATTRIBUTE, 0x0400),
    ]


def get_profile(channel: int, end_time: int, periods: int) -> ZclMessage:
    definition = Metering.ServerCommandDefs.get_profile
    payload = encode_command(
        definition.schema(interval_channel=channel, end_time=end_time, number_of_periods=periods)
    )
    return frame(MeteringServerCommand.GET_PROFILE, payload)


def test_get_profile_answered_with_the_ring() -> None:
    p = meter()
    for minute in range(0, 91, 15):
        p.core.update(Readings(summation_delivered=minute * 10), T0 + minute * 60)
    (send,) = p.handle(get_profile(IntervalChannel.Consumption_Delivered, 0, 2), T0 + 5400).sends
    assert send.command_id == MeteringClientCommand.GET_PROFILE_RESPONSE
    assert send.reply_to
    answer, _ = decode_command(Metering, send.command_id, send.payload, from_server=True)
    assert answer.end_time == T0 + 5400
    assert answer.status == GetProfileStatus.Success
    assert list(answer.intervals) == [300, 300]
    (send,) = p.handle(get_profile(1, 0, 2), T0 + 5400).sends
    answer, _ = decode_command(Metering, send.command_id, send.payload, from_server=True)
    assert answer.status == GetProfileStatus.Interval_Channel_Not_Supported
    assert answer.number_of_periods_delivered == 0


def fast_poll(period: int, minutes: int) -> ZclMessage:
    definition = Metering.ServerCommandDefs.request_fast_poll_mode
    payload = encode_command(definition.schema(fast_poll_update_period=period, duration=minutes))
    return frame(MeteringServerCommand.REQUEST_FAST_POLL_MODE, payload)


def granted(p: MeterServerProtocol, period: int, minutes: int, now: int) -> tuple[int, int]:
    step = p.handle(fast_poll(period, minutes), now)
    (send,) = step.sends
    answer, _ = decode_command(Metering, send.command_id, send.payload, from_server=True)
    (event,) = step.events
    assert isinstance(event, FastPollGranted)
    assert (event.period, event.end_time) == (
        answer.applied_update_period,
        answer.fast_poll_mode_end_time,
    )
    return int(answer.applied_update_period), int(answer.fast_poll_mode_end_time)


def test_fast_poll_within_the_spec_limits() -> None:
    p = meter()
    assert p.update_period(T0) == 30
    # faster than FastPollUpdatePeriod (4 s): 4 s; 60 minutes asked: 15 (D.3.3.3.1.4)
    assert granted(p, 1, 60, T0) == (4, T0 + FAST_POLL_MAX_MINUTES * 60)
    assert p.update_period(T0 + 899) == 4
    # a repeat while in fast poll: the end time in force, not extended (D.3.2.3.1.4)
    assert granted(p, 10, 15, T0 + 600) == (4, T0 + 900)
    assert p.update_period(T0 + 900) == 30
    # after the end, a new request is granted anew: a slower period is kept as asked
    assert granted(p, 10, 5, T0 + 1000) == (10, T0 + 1300)


def test_a_faster_request_during_fast_poll_shortens_the_period() -> None:
    """D.3.2.3.1.4: the Applied Update Period is no longer than the requested rate (when that
    is at least FastPollUpdatePeriod), and the end time is not extended. Before, a request
    during fast poll got the period in force: 60 s for a client that asked 6 s."""
    p = meter()
    assert granted(p, 60, 15, T0) == (60, T0 + 900)
    step = p.handle(fast_poll(6, 15), T0 + 10)
    (send,) = step.sends
    answer, _ = decode_command(Metering, send.command_id, send.payload, from_server=True)
    assert (answer.applied_update_period, answer.fast_poll_mode_end_time) == (6, T0 + 900)
    assert step.events == (
        FastPollGranted(source_nwk=0x1234, period=6, end_time=T0 + 900, new=True),
    )
    assert p.update_period(T0 + 20) == 6
    # a slower repeat keeps the 6 s in force (no longer than its 30 s), not new
    step = p.handle(fast_poll(30, 15), T0 + 30)
    assert step.events == (
        FastPollGranted(source_nwk=0x1234, period=6, end_time=T0 + 900, new=False),
    )
    assert p.update_period(T0 + 900) == 30


def test_a_groupcast_configures_without_a_response() -> None:
    p = meter()
    msg = dataclasses.replace(configure(record(0, UINT48, 10, 60, 5)), group=0x0E00)
    step = p.handle(msg, T0)
    assert step.sends == ()
    assert [type(e) for e in step.events] == [ReportingConfigured]
    assert p.next_deadline() == T0 + 60


def test_other_frames() -> None:
    p = meter()
    assert (
        p.handle(frame(MeteringServerCommand.MIRROR_REMOVED, b"\x01\x00"), T0).status
        == S.UNSUP_CLUSTER_COMMAND
    )
    assert (
        p.handle(frame(G.Discover_Commands_Received, b"\x00\x10", cluster=False), T0).status
        == S.UNSUP_GENERAL_COMMAND
    )
    assert p.handle(frame(0x00, b"", from_server=True), T0).sends == ()  # a server's frame
    assert p.handle(configure(), T0).status == S.MALFORMED_COMMAND
    assert p.handle(configure(record(0, UINT48, 1, 2, 3)[:-2]), T0).status == S.MALFORMED_COMMAND


@settings(max_examples=300, deadline=None)
@given(
    cluster=st.booleans(),
    command_id=st.sampled_from(
        [0, 1, 2, 3, 4, G.Configure_Reporting, G.Read_Reporting_Configuration]
    ),
    payload=st.binary(max_size=40),
    from_server=st.booleans(),
)
def test_garbage_gets_statuses_never_an_exception(
    cluster: bool, command_id: int, payload: bytes, from_server: bool
) -> None:
    p = meter()
    step = p.handle(frame(command_id, payload, cluster=cluster, from_server=from_server), T0)
    if step.status is not None:
        assert step.status in (
            S.MALFORMED_COMMAND,
            S.UNSUP_CLUSTER_COMMAND,
            S.UNSUP_GENERAL_COMMAND,
        )
    p.handle_timeout(T0 + 3600)


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(
        st.tuples(
            st.sampled_from([0x0000, 0x0001, 0x0200, 0x0300, 0x0400, 0x0500, 0x0700]),
            st.sampled_from([UINT48, INT24, UINT8, 0x18, ENUM8]),
            st.integers(0, 0xFFFF),
            st.integers(0, 0xFFFF),
            st.integers(0, 100),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_configure_reporting_is_answered_record_by_record(records: list) -> None:
    """Every well-formed Configure Reporting gets a response: SUCCESS alone, or one status
    record (ZCL 2.5.8.1) per record refused, each for an attribute it named."""
    p = meter()
    p.core.update(Readings(summation_delivered=1, instantaneous_demand=1), T0)
    (send,) = p.handle(configure(*(record(*r) for r in records)), T0).sends
    schema = foundation.GENERAL_COMMANDS[G.Configure_Reporting_rsp].schema
    answer, rest = schema.deserialize(send.payload)
    assert rest == b""
    statuses = answer.status_records
    if statuses[0].status == S.SUCCESS:
        assert len(statuses) == 1
    else:
        assert {int(s.attrid) for s in statuses} <= {r[0] for r in records}
        assert all(s.status != S.SUCCESS for s in statuses)
    p.handle_timeout(T0 + 0xFFFF)
