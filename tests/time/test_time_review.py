"""Hostile review of the Time client side (ZCL 3.12.2.2): when a reading may set a clock."""

from __future__ import annotations

import pytest

from zse.errors import InvalidFrame
from zse.se.ids import TimeAttribute
from zse.time.core import INVALID_TIME
from zse.time.service import TimeReading, time_reading_from_response

A = TimeAttribute
NOW = 800_000_000
MASTER = 0b1001  # Master and Superseding, as an ESI serves it


def reading(**values: int) -> TimeReading:
    read = {A.TIME: NOW, A.TIME_STATUS: MASTER}
    read.update({A[name.upper()]: value for name, value in values.items()})
    return TimeReading(values=read, local_time=read[A.TIME])


@pytest.mark.parametrize("valid_until", [NOW - 1, NOW - 86_400])
def test_a_time_past_its_valid_until_time_is_not_trusted(valid_until: int) -> None:
    """ZCL 3.12.2.2.10: ValidUntilTime is "a time, later than LastSetTime, up to which the
    Time attribute MAY be trusted" (quoted in TI Z-Stack's zcl_general.h and NXP's JN-UG-3132
    Time cluster chapter); past it, the server's own word is that its Time is not to be
    trusted, Master or not."""
    why = reading(last_set_time=NOW - 90_000, valid_until_time=valid_until).untrusted
    assert why is not None
    assert "ValidUntilTime" in why


@pytest.mark.parametrize(
    "values",
    [
        {"valid_until_time": NOW},  # up to it, inclusive
        {"valid_until_time": NOW + 3600},
        {"valid_until_time": INVALID_TIME},  # not set: no bound
        {},  # not supported: optional
    ],
)
def test_a_time_within_its_valid_until_time_is_trusted(values: dict[str, int]) -> None:
    assert reading(**values).untrusted is None


def record(attribute: int, type_id: int, value: bytes) -> bytes:
    """One Read Attributes status record (ZCL 2.5.2): id, SUCCESS, data type, value."""
    return attribute.to_bytes(2, "little") + bytes((0x00, type_id)) + value


MASTER_RECORD = record(A.TIME_STATUS, 0x18, bytes((MASTER,)))


@pytest.mark.parametrize(
    "payload",
    [
        record(A.TIME, 0x2B, (-5).to_bytes(4, "little", signed=True)) + MASTER_RECORD,
        record(A.TIME, 0x25, (1 << 40).to_bytes(6, "little")) + MASTER_RECORD,
        record(A.TIME, 0xE2, NOW.to_bytes(4, "little"))
        + record(A.TIME_STATUS, 0x21, (0x0101).to_bytes(2, "little")),
    ],
    ids=["time-int32-negative", "time-uint48-past-uint32", "status-uint16"],
)
def test_a_value_its_attribute_cannot_hold_is_refused(payload: bytes) -> None:
    """A hostile or broken server answering Time with another data type (a negative int32,
    a 48-bit number) must not set a client's clock to a time UTCTime cannot hold (a negative
    clock then fails every UTCTime the device encodes): InvalidFrame, as for a record that
    does not decode."""
    with pytest.raises(InvalidFrame, match="out of"):
        time_reading_from_response(payload)


@pytest.mark.parametrize("attribute", [A.TIME_ZONE, A.DST_SHIFT])
def test_an_offset_out_of_a_day_is_refused(attribute: TimeAttribute) -> None:
    """TimeZone and DstShift are within +-86400 s (ZCL 3.12.2.2.3, 3.12.2.2.6), as the server
    side refuses to write them; a reading with one out of it gives no local time."""
    payload = (
        record(A.TIME, 0xE2, NOW.to_bytes(4, "little"))
        + MASTER_RECORD
        + record(attribute, 0x2B, (0x7FFFFFFF).to_bytes(4, "little"))
    )
    with pytest.raises(InvalidFrame, match="86400"):
        time_reading_from_response(payload)


def test_a_day_either_way_is_a_time_zone() -> None:
    payload = (
        record(A.TIME, 0xE2, NOW.to_bytes(4, "little"))
        + MASTER_RECORD
        + record(A.TIME_ZONE, 0x2B, (-86_400).to_bytes(4, "little", signed=True))
    )
    assert time_reading_from_response(payload).local_time == NOW - 86_400
