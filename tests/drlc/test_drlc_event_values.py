"""LoadControlEvent checks itself when built (SE D.2.2.3.1.1) with a ZseError; a received
event is built unchecked so the client core answers an invalid one 0xFE; UnknownEvent reads
as a sentence."""

from __future__ import annotations

import pickle
import struct

import pytest

from zse.drlc import (
    DrlcClientCore,
    DrlcServerCore,
    InvalidEvent,
    LoadControlEvent,
    Status,
    UnknownEvent,
)
from zse.drlc.protocol import DrlcClientProtocol
from zse.errors import DecodeError, ZseError
from zse.se.ids import DRLC, DrlcClientCommand
from zse.zcl.frame import ZclMessage

T0 = 800_000_000
VALID = {
    "issuer_event_id": 3,
    "device_class": 0x0FFF,
    "duration_in_minutes": 1,
    "criticality_level": 1,
}


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"duration_in_minutes": 1.5}, "duration_in_minutes", "must be an integer, got float"),
        ({"criticality_level": True}, "criticality_level", "must be an integer, got bool"),
        ({"device_class": "0x0FFF"}, "device_class", "must be an integer, got str"),
        ({"criticality_level": 0}, "criticality_level", "criticality level 0x00 is reserved"),
        ({"criticality_level": 0x10}, "criticality_level", "is reserved"),
        ({"duration_in_minutes": 5000}, "duration_in_minutes", "outside 0-1440"),
        ({"duration_in_minutes": -5}, "duration_in_minutes", "duration -5 min is outside 0-1440"),
        ({"start_time": 0xFFFFFFFF}, "start_time", "start time 0xFFFFFFFF"),
        ({"duty_cycle": 101}, "duty_cycle", "outside 0-100%"),
        ({"average_load_adjustment_percentage": -101}, "average_load_adjustment", "-100..100"),
        ({"cooling_temperature_set_point": -30000}, "cooling_temperature_set_point", "zero"),
        ({"heating_temperature_set_point": 0x8000}, "heating_temperature_set_point", "wire"),
        ({"issuer_event_id": 1 << 32}, "issuer_event_id", "outside its wire range"),
        ({"event_control": -1}, "event_control", "outside its wire range"),
    ],
)
def test_an_invalid_event_is_refused_when_built(fields: dict, field: str, words: str) -> None:
    with pytest.raises(InvalidEvent) as error:
        LoadControlEvent(**{**VALID, **fields})
    assert isinstance(error.value, DecodeError | ZseError | ValueError)
    assert field in str(error.value)
    assert words in str(error.value)
    assert "\n" not in str(error.value)
    assert error.value.fields[0].startswith(field)


def test_the_duration_bounds_are_0_and_one_day() -> None:
    """D.2.2.3.1.1.5: a day (1440 minutes) at most, the bounds themselves taken."""
    for minutes in (0, 1440):
        assert LoadControlEvent(**{**VALID, "duration_in_minutes": minutes}).problems() == []
    with pytest.raises(InvalidEvent, match="duration 1441 min is outside 0-1440"):
        LoadControlEvent(**{**VALID, "duration_in_minutes": 1441})


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(InvalidEvent) as error:
        LoadControlEvent(**{**VALID, "criticality_level": 0, "duty_cycle": 101})
    assert error.value.fields == ("criticality_level", "duty_cycle")


def test_sentinels_enums_and_zigpy_integers_are_accepted() -> None:
    event = LoadControlEvent(**{**VALID, "criticality_level": Status.STARTED})  # an IntEnum
    assert event.problems() == []


def test_a_received_invalid_event_is_unchecked_and_rejected_0xfe() -> None:
    """The frame decodes (no exception on the receive path) and the device answers 0xFE."""
    payload = struct.pack(
        "<IHBIHBBBhhbBB", 0x1234, 0x0FFF, 0, 0, 30, 0x00, 0xFF, 0xFF, -32768, -32768, -128, 50, 0
    )
    msg = ZclMessage(
        src_nwk=0,
        src_ieee=None,
        src_ep=1,
        dst_ep=9,
        cluster_id=DRLC,
        profile_id=0x0109,
        frame_control=0x09,
        manufacturer=None,
        tsn=1,
        command_id=DrlcClientCommand.LOAD_CONTROL_EVENT,
        payload=payload,
        aps_encrypted=True,
        group=None,
        broadcast=False,
        timestamp=0.0,
    )
    protocol = DrlcClientProtocol(DrlcClientCore(device_class=0x0001))
    step = protocol.receive(msg, protocol.decode(msg), T0)
    assert [(o.report.issuer_event_id, o.report.event_status) for o in step.reports] == [
        (0x1234, Status.REJECTED)
    ]


def test_unchecked_takes_defaults_and_refuses_unknown_or_missing_fields() -> None:
    event = LoadControlEvent.unchecked(**{**VALID, "criticality_level": 0})
    assert event.problems() == ["criticality level 0x00 is reserved"]
    assert event.duty_cycle == LoadControlEvent(**VALID).duty_cycle
    with pytest.raises(TypeError, match="colour"):
        LoadControlEvent.unchecked(**VALID, colour=1)
    with pytest.raises(TypeError, match="criticality_level"):
        LoadControlEvent.unchecked(issuer_event_id=1, device_class=1, duration_in_minutes=1)


def test_unknown_event_says_what_is_missing() -> None:
    error = UnknownEvent(4660)
    assert isinstance(error, KeyError)
    assert isinstance(error, ZseError)
    assert str(error) == (
        "no load control event with issuer event id 4660 (0x00001234): "
        "never received or issued here, or already over"
    )
    assert error.issuer_event_id == 4660
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    with pytest.raises(UnknownEvent, match="issuer event id 1 "):
        DrlcServerCore().cancel(1, effective_time=0, now=T0)
    with pytest.raises(UnknownEvent, match="issuer event id 9 "):
        DrlcClientCore(device_class=1).opt_out(9, now=T0)
