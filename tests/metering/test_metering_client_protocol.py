"""#14.4: the Metering client core (SE D.3.3) at the ZCL frame: formatting read once and applied
to reports and reads, reporting asked for, polling when the meter refuses it and back, and
garbage that never raises anything but the DecodeError the shell turns into MALFORMED."""

from __future__ import annotations

import dataclasses
import logging
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.services.test_delivery import REQUEST
from zse.errors import DecodeError, InvalidFrame
from zse.metering.formatting import Formatting, Reading
from zse.metering.protocol import (
    DEMAND,
    FORMATTING_ATTRIBUTES,
    SUMMATION,
    AttributeUnsupported,
    MeteringClientConfig,
    MeteringClientProtocol,
    MeterReading,
    Polling,
    decode_global,
    profile_answer,
)
from zse.se.ids import METERING
from zse.se.ids import MeteringAttribute as A
from zse.se.types import IntervalChannel, UnitOfMeasure
from zse.zcl.delivery import Destination
from zse.zcl.frame import ZclMessage
from zse.zcl.reporting import report_payload

NOW = 800_000_000
METER = Destination.device(0x0000, 9)
G = foundation.GeneralCommand
#: ZCL data types: uint48 summation, int24 demand, enum8 unit, uint24, bitmap8.
TYPES = {
    SUMMATION: 0x25,
    DEMAND: 0x2A,
    A.UNIT_OF_MEASURE: 0x30,
    A.MULTIPLIER: 0x22,
    A.DIVISOR: 0x22,
    A.SUMMATION_FORMATTING: 0x18,
    A.DEMAND_FORMATTING: 0x18,
    A.HISTORICAL_CONSUMPTION_FORMATTING: 0x18,
    A.METERING_DEVICE_TYPE: 0x18,
    A.SUPPLY_STATUS: 0x30,  # enum8 (SE 1.2)
}
FORMAT = {
    A.UNIT_OF_MEASURE: UnitOfMeasure.KWH,
    A.MULTIPLIER: 1,
    A.DIVISOR: 1000,
    A.SUMMATION_FORMATTING: 0xB3,
    A.DEMAND_FORMATTING: 0xAB,
}


def message(command_id: int, payload: bytes, *, from_server: bool = True) -> ZclMessage:
    """A global Metering command from the meter (0x0000 endpoint 9) to the display."""
    return dataclasses.replace(
        REQUEST,
        src_nwk=0x0000,
        src_ep=9,
        dst_ep=1,
        cluster_id=METERING,
        frame_control=0x08 if from_server else 0x00,
        command_id=command_id,
        payload=payload,
    )


def read_response(
    values: dict[int, int], unsupported: tuple[int, ...] = (), types: dict[int, int] = TYPES
) -> ZclMessage:
    out = b""
    for attr, value in values.items():
        out += attr.to_bytes(2, "little") + b"\x00" + report_payload([(attr, value)], types)[2:]
    for attr in unsupported:
        out += attr.to_bytes(2, "little") + bytes((foundation.Status.UNSUPPORTED_ATTRIBUTE,))
    return message(G.Read_Attributes_rsp, out)


def report(values: dict[int, int]) -> ZclMessage:
    return message(G.Report_Attributes, report_payload(values.items(), TYPES))


def feed(core: MeteringClientProtocol, msg: ZclMessage, now: int = NOW) -> tuple:
    return core.receive(msg, decode_global(msg), now).events


def test_start_reads_the_formatting_set_and_configures_reporting() -> None:
    core = MeteringClientProtocol(METER, MeteringClientConfig(min_interval=5, max_interval=120))
    read, configure = core.start(NOW).sends
    assert (read.command_id, read.cluster_specific, read.to) == (G.Read_Attributes, False, METER)
    ids = [int.from_bytes(read.payload[i : i + 2], "little") for i in range(0, 18, 2)]
    assert ids == [*range(0x0300, 0x0307), 0x0000, 0x0400]
    assert (configure.command_id, configure.cluster_specific) == (G.Configure_Reporting, False)
    schema = foundation.GENERAL_COMMANDS[G.Configure_Reporting].schema
    records, rest = schema.deserialize(configure.payload)
    assert rest == b""
    assert [
        (r.direction, r.attrid, r.datatype, r.min_interval, r.max_interval, r.reportable_change)
        for r in records.config_records
    ] == [(0, 0x0000, 0x25, 5, 120, 1), (0, 0x0400, 0x2A, 5, 120, 1)]


def test_reports_are_shown_as_the_formatting_says() -> None:
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    events = feed(core, read_response({**FORMAT, SUMMATION: 0, DEMAND: 0}))
    assert core.formatting == Formatting(UnitOfMeasure.KWH, 1, 1000, 0xB3, 0xAB)
    assert [e.reading for e in events] == [
        Reading(Fraction(0), "0.000", "kWh"),
        Reading(Fraction(0), "0.000", "kW"),
    ]
    (summation, demand) = feed(core, report({SUMMATION: 123456, DEMAND: -1500}), NOW + 10)
    assert str(summation.reading) == "123.456 kWh"
    assert summation.reported
    assert str(demand.reading) == "-1.500 kW"
    assert demand.at == NOW + 10


def test_values_before_the_formatting_are_kept_and_shown_once_it_is_known() -> None:
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    assert feed(core, report({SUMMATION: 2500})) == ()
    (shown,) = feed(core, read_response(FORMAT))
    assert isinstance(shown, MeterReading)
    assert (shown.attribute, shown.raw, str(shown.reading)) == (SUMMATION, 2500, "2.500 kWh")


def test_a_meter_without_formatting_attributes_gets_the_defaults() -> None:
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    (shown,) = feed(core, read_response({SUMMATION: 42}, unsupported=FORMATTING_ATTRIBUTES))
    assert core.formatting == Formatting()
    assert str(shown.reading) == "42 kWh"


def configured(status_payload: bytes) -> ZclMessage:
    return message(G.Configure_Reporting_rsp, status_payload)


def test_reporting_accepted_no_polling() -> None:
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    feed(core, read_response(FORMAT))
    assert feed(core, configured(b"\x00")) == ()
    assert core.reporting is True
    assert not core.polling
    assert core.next_deadline() == NOW + 600  # a report is expected within 2 x 300 s


def test_reports_that_stop_mean_polling_until_they_come_back() -> None:
    core = MeteringClientProtocol(METER, MeteringClientConfig(max_interval=60, poll_interval=30))
    core.start(NOW)
    feed(core, read_response(FORMAT))
    feed(core, configured(b"\x00"), NOW)
    feed(core, report({SUMMATION: 1}), NOW + 50)
    assert core.next_deadline() == NOW + 170
    assert core.handle_timeout(NOW + 169) == core.handle_timeout(NOW + 100)  # nothing due
    step = core.handle_timeout(NOW + 170)
    assert step.events == (
        Polling(active=True, reason="no report within twice the maximum interval"),
    )
    assert [s.command_id for s in step.sends] == [G.Read_Attributes]
    assert core.next_deadline() == NOW + 200
    events = feed(core, report({SUMMATION: 2}), NOW + 180)
    assert events[0] == Polling(active=False, reason="the meter reports")
    assert core.next_deadline() == NOW + 300


def test_a_reported_formatting_change_shows_the_kept_values_again() -> None:
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    feed(core, read_response({**FORMAT, SUMMATION: 123456, DEMAND: 1500}))
    events = feed(core, report({A.DIVISOR: 100}))
    assert [str(e.reading) for e in events] == ["1234.560 kWh", "15.000 kW"]
    assert core.formatting is not None
    assert core.formatting.summation_formatting == 0xB3  # the rest of the set is kept
    assert feed(core, report({A.DIVISOR: 100})) == ()  # no change, nothing shown again


def refused_record(attr: int) -> bytes:
    return bytes((foundation.Status.UNREPORTABLE_ATTRIBUTE, 0)) + attr.to_bytes(2, "little")


def test_refused_reporting_falls_back_to_polling_and_stops_when_reports_arrive() -> None:
    config = MeteringClientConfig(poll_interval=60)
    core = MeteringClientProtocol(METER, config)
    core.start(NOW)
    feed(core, read_response(FORMAT))
    step = core.receive(
        msg := configured(refused_record(0x0000) + refused_record(0x0400)),
        decode_global(msg),
        NOW + 1,
    )
    assert step.events == (
        Polling(active=True, reason="Configure Reporting refused: UNREPORTABLE_ATTRIBUTE"),
    )
    (read,) = step.sends
    assert read.payload == bytes.fromhex("00000004")  # summation and demand only
    assert core.next_deadline() == NOW + 61
    assert core.handle_timeout(NOW + 60).sends == ()  # not due yet
    (again,) = core.handle_timeout(NOW + 61).sends
    assert again.command_id == G.Read_Attributes
    (polled,) = feed(core, read_response({SUMMATION: 7000}), NOW + 62)
    assert not polled.reported
    assert str(polled.reading) == "7.000 kWh"
    # the meter starts reporting after all: polling stops
    events = feed(core, report({SUMMATION: 7100}), NOW + 70)
    assert events[0] == Polling(active=False, reason="the meter reports")
    assert str(events[1].reading) == "7.100 kWh"
    assert core.next_deadline() == NOW + 70 + 600  # the next report is expected


def test_a_meter_without_demand_reports_its_summation_no_polling() -> None:
    """A meter without InstantaneousDemand refuses the demand's record UNSUPPORTED_ATTRIBUTE
    (ZCL 2.5.7.3) and takes the summation's: the display follows its reports instead of
    polling both (any refused record meant polling); the summation refused still does."""
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    feed(core, read_response({**FORMAT, SUMMATION: 5}, unsupported=(DEMAND,)))
    unsupported = bytes((foundation.Status.UNSUPPORTED_ATTRIBUTE, 0)) + DEMAND.to_bytes(2, "little")
    refusal = AttributeUnsupported(attribute=DEMAND, at=NOW)  # said, as a read of it was
    assert feed(core, configured(unsupported)) == (refusal,)
    assert (core.reporting, core.polling) == (True, False)
    # asked again every maximum interval (the demand may come: a gateway told it later)
    assert core.next_deadline() == NOW + 300
    (again,) = core.handle_timeout(NOW + 300).sends
    schema = foundation.GENERAL_COMMANDS[G.Configure_Reporting].schema
    records, _ = schema.deserialize(again.payload)
    assert [r.attrid for r in records.config_records] == [DEMAND]
    assert core.next_deadline() == NOW + 600
    step = core.receive(msg := configured(b"\x00"), decode_global(msg), NOW + 301)
    assert [s.command_id for s in step.sends] == [G.Read_Attributes]  # taken: read it now
    assert core.next_deadline() == NOW + 301 + 600  # a report expected within 2 x 300 s
    other = MeteringClientProtocol(METER)
    other.start(NOW)
    refused = unsupported[:2] + SUMMATION.to_bytes(2, "little") + unsupported
    *refusals, polling = feed(other, configured(refused))
    assert refusals == [AttributeUnsupported(attribute=a, at=NOW) for a in (SUMMATION, DEMAND)]
    assert polling == Polling(
        active=True, reason="Configure Reporting refused: UNSUPPORTED_ATTRIBUTE"
    )


def test_each_refusal_of_the_demand_is_said_until_a_demand_comes() -> None:
    """A meter without InstantaneousDemand answers a read of it UNSUPPORTED_ATTRIBUTE: the
    client said nothing of it, so a display bridged to Home Assistant kept the power sensor
    an earlier run announced. Each such answer is an :class:`AttributeUnsupported` now (the
    read at start, each poll), and a demand that comes later a reading as ever."""
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    events = feed(core, read_response({**FORMAT, SUMMATION: 5}, unsupported=(DEMAND,)))
    assert events[0] == AttributeUnsupported(attribute=DEMAND, at=NOW)
    assert [type(e) for e in events[1:]] == [MeterReading]  # the summation
    again = feed(core, read_response({SUMMATION: 6}, unsupported=(DEMAND,)), NOW + 60)
    assert again[0] == AttributeUnsupported(attribute=DEMAND, at=NOW + 60)
    (demand,) = feed(core, report({DEMAND: 1500}), NOW + 90)
    assert (demand.attribute, str(demand.reading)) == (DEMAND, "1.500 kW")
    held = feed(core, read_response({SUMMATION: 7, DEMAND: 1400}), NOW + 120)
    assert [type(e) for e in held] == [MeterReading, MeterReading]


def test_a_default_response_refusing_configure_reporting_means_polling() -> None:
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    feed(core, read_response(FORMAT))
    refusal = message(
        G.Default_Response, bytes((G.Configure_Reporting, foundation.Status.UNSUP_GENERAL_COMMAND))
    )
    (event,) = feed(core, refusal)
    reason = "Configure Reporting refused: UNSUP_GENERAL_COMMAND"
    assert event == Polling(active=True, reason=reason)
    assert core.polling


def test_no_answer_to_configure_reporting_means_polling() -> None:
    core = MeteringClientProtocol(METER, MeteringClientConfig(answer_timeout=30, poll_interval=60))
    core.start(NOW)
    feed(core, read_response(FORMAT))
    assert core.next_deadline() == NOW + 30
    step = core.handle_timeout(NOW + 30)
    assert step.events == (Polling(active=True, reason="no answer to Configure Reporting"),)
    assert [s.command_id for s in step.sends] == [G.Read_Attributes]
    assert core.next_deadline() == NOW + 90


def test_an_unanswered_formatting_read_is_retried() -> None:
    core = MeteringClientProtocol(METER, MeteringClientConfig(poll_interval=60))
    core.start(NOW)
    feed(core, configured(b"\x00"))
    assert core.next_deadline() == NOW + 60
    (read,) = core.handle_timeout(NOW + 60).sends
    assert len(read.payload) == 18  # the formatting set again, with the values
    feed(core, read_response(FORMAT))
    assert core.next_deadline() == NOW + 600  # only the next report is expected


def test_frames_not_from_the_meter_side_are_ignored() -> None:
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    msg = message(G.Report_Attributes, report_payload([(SUMMATION, 5)], TYPES), from_server=False)
    assert core.receive(msg, decode_global(msg), NOW).events == ()
    assert core.raw == {}


def test_a_value_the_formatting_cannot_show_is_dropped_not_raised() -> None:
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    feed(core, read_response({A.UNIT_OF_MEASURE: 0x80}))  # kWh, BCD
    assert feed(core, report({SUMMATION: 0x1A})) == ()  # nibble A is not BCD
    (shown,) = feed(core, report({SUMMATION: 0x12}))
    assert shown.reading.value == 12


@given(st.integers(0, 0x50), st.binary(max_size=40))
def test_garbage_is_a_decode_error_or_taken_without_exception(command: int, payload: bytes) -> None:
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    msg = message(command, payload)
    try:
        decoded = decode_global(msg)
    except DecodeError:
        return
    core.receive(msg, decoded, NOW)
    core.handle_timeout(NOW + 10_000)


@given(
    raw=st.integers(0, 2**48 - 2),  # all ones is the non-value: shown as unknown (real meters)
    multiplier=st.integers(0, 2**24 - 1),
    divisor=st.integers(0, 2**24 - 1),
    bitmap=st.integers(0, 0xFF),
)
def test_what_is_shown_is_multiplier_times_raw_over_divisor(
    raw: int, multiplier: int, divisor: int, bitmap: int
) -> None:
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    feed(
        core,
        read_response(
            {
                A.UNIT_OF_MEASURE: 0,
                A.MULTIPLIER: multiplier,
                A.DIVISOR: divisor,
                A.SUMMATION_FORMATTING: bitmap,
            }
        ),
    )
    (shown,) = feed(core, report({SUMMATION: raw}))
    exact = Fraction(raw * (multiplier or 1), divisor or 1)
    assert shown.reading.value == exact
    right = bitmap & 0x07
    whole, fraction = divmod(int(exact * 10**right), 10**right)
    text = shown.reading.text
    assert int(text.split(".")[0]) == whole
    if right:
        assert text.split(".")[1] == f"{fraction:0{right}d}"


def test_get_profile_request_and_answer_round_trip() -> None:
    """The client's Get Profile (D.3.3.3.1.1) carries its fields; a Get Profile Response
    (D.3.2.3.1.1) decodes to the meter's answer."""
    client = MeteringClientProtocol(METER)
    send = client.get_profile_request(IntervalChannel.Consumption_Delivered, NOW, 3)
    assert (send.to, send.cluster_specific, send.command_id) == (METER, True, 0x00)
    assert send.payload == bytes((0x00,)) + NOW.to_bytes(4, "little") + bytes((3,))
    body = (
        NOW.to_bytes(4, "little")
        + bytes((0x00, 0x03, 2))
        + (900).to_bytes(3, "little")
        + (870).to_bytes(3, "little")
    )
    answer = profile_answer(_from_meter(0x00, body))
    assert (answer.end_time, answer.status, answer.profile_interval_period) == (NOW, 0, 3)
    assert answer.intervals == (900, 870)


def _from_meter(command: int, payload: bytes) -> ZclMessage:
    return dataclasses.replace(
        REQUEST, cluster_id=METERING, frame_control=0x09, command_id=command, payload=payload
    )


@given(st.integers(0, 0xFF), st.binary(max_size=40))
def test_a_garbage_profile_answer_is_invalid_frame_only(command: int, payload: bytes) -> None:
    try:
        answer = profile_answer(_from_meter(command, payload))
    except InvalidFrame:
        return
    assert command == 0x00
    assert len(answer.intervals) == payload[6]


def test_each_client_takes_only_its_own_meters_frames() -> None:
    """A display following the electricity meter (0x0000 ep 9) and a gas mirror (0x0000 ep
    10) on one endpoint: each client screens in its own meter's frames only."""
    electricity = MeteringClientProtocol(METER)
    gas = MeteringClientProtocol(Destination.device(0x0000, 10))
    from_meter = report({SUMMATION: 1})
    from_mirror = dataclasses.replace(from_meter, src_ep=10)
    from_elsewhere = dataclasses.replace(from_meter, src_nwk=0x1234)
    assert [electricity.screen(m) for m in (from_meter, from_mirror, from_elsewhere)] == [
        True,
        False,
        False,
    ]
    assert [gas.screen(m) for m in (from_meter, from_mirror, from_elsewhere)] == [
        False,
        True,
        False,
    ]


def test_the_demand_refused_is_asked_for_again_once_reports_come_back() -> None:
    """The demand refused (a meter holding none yet), then the reports stopped for a while:
    the display polled (each poll reads the demand), and once the summation's reports came
    back it stopped polling, so the demand was neither read nor asked for again, its
    subscription never taken (the display showed the demand it last polled, for ever)."""
    core = MeteringClientProtocol(METER, MeteringClientConfig(max_interval=300, poll_interval=60))
    core.start(NOW)
    feed(core, read_response({**FORMAT, SUMMATION: 5}, unsupported=(DEMAND,)))
    unsupported = bytes((foundation.Status.UNSUPPORTED_ATTRIBUTE, 0)) + DEMAND.to_bytes(2, "little")
    feed(core, configured(unsupported))
    core.handle_timeout(NOW + 300)  # asked again: no answer, the meter is silent
    (polling,) = core.handle_timeout(NOW + 600).events  # no report within 2 x 300 s
    assert polling.active
    events = feed(core, report({SUMMATION: 6}), NOW + 630)  # the summation reports again
    assert events[0] == Polling(active=False, reason="the meter reports")
    assert core.next_deadline() == NOW + 630 + 300  # the demand asked for again, as before
    (again,) = core.handle_timeout(NOW + 930).sends
    schema = foundation.GENERAL_COMMANDS[G.Configure_Reporting].schema
    records, _ = schema.deserialize(again.payload)
    assert [r.attrid for r in records.config_records] == [DEMAND]


def test_a_summation_without_value_is_logged_once_until_a_value_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A meter reporting its summation as the non-value for hours (real meters do:
    tests/vectors/real-meters.json) logged a warning at every report; once until the meter
    gives a value again."""
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    feed(core, read_response({A.UNIT_OF_MEASURE: 0, A.MULTIPLIER: 1, A.DIVISOR: 1}))
    with caplog.at_level(logging.WARNING, logger="zse.metering"):
        for value in (2**48 - 1, 2**48 - 1, 2**48 - 1, 1000, 2**48 - 1, 2**48 - 1):
            feed(core, report({SUMMATION: value}))
    said = [r.getMessage() for r in caplog.records if "no value" in r.getMessage()]
    assert len(said) == 2
    assert SUMMATION not in core.raw  # unknown again
