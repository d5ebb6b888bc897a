"""A hostile review of a client reading the ESI's Time cluster (ZCL 3.12.2.2): the data type a
Read Attributes Response record says its value is (ZCL 2.5.2, 2.6.2)."""

from __future__ import annotations

import struct

import pytest

from zse.errors import DecodeError
from zse.time.service import time_reading_from_response

TIME = 700_000_000
UTC_TIME, UINT32, UINT8, BITMAP8 = 0xE2, 0x23, 0x20, 0x18


def record(attribute: int, type_id: int, value: bytes) -> bytes:
    """One Read Attributes status record (ZCL 2.5.2): id, SUCCESS, data type, value."""
    return struct.pack("<HBB", attribute, 0, type_id) + value


MASTER = record(0x0001, BITMAP8, b"\x01")
TEXT = str(TIME).encode()


@pytest.mark.parametrize(
    "records",
    [
        record(0x0000, 0x42, bytes((len(TEXT),)) + TEXT) + MASTER,  # character string
        record(0x0000, 0x41, bytes((len(TEXT),)) + TEXT) + MASTER,  # octet string
        record(0x0000, 0x39, struct.pack("<f", TIME)) + MASTER,  # single precision float
        record(0x0000, 0x3A, struct.pack("<d", TIME)) + MASTER,  # double precision float
        record(0x0000, UTC_TIME, struct.pack("<I", TIME)) + record(0x0001, 0x10, b"\x01"),
        record(0x0000, UTC_TIME, struct.pack("<I", TIME))
        + MASTER
        + record(0x0002, 0x42, b"\x043600"),  # TimeZone as text
    ],
    ids=[
        "time-char-string",
        "time-octet-string",
        "time-float",
        "time-double",
        "status-boolean",
        "time-zone-char-string",
    ],
)
def test_a_value_of_a_type_that_is_not_an_integer_is_refused(records: bytes) -> None:
    """ZCL 3.12.2.2 gives each Time attribute an integer type (UTCTime, map8, int32,
    uint32). A record saying Time is the character string "700000000", or the float 7e8,
    or TimeStatus the boolean TRUE, was read as that number (``int()`` of whatever zigpy
    decoded): a reading that sets a display's clock, taken from text. Such a record is
    InvalidFrame (a DecodeError), as a value out of range already was."""
    with pytest.raises(DecodeError, match="data type"):
        time_reading_from_response(records)


@pytest.mark.parametrize(
    ("time_type", "status_type", "time_bytes"),
    [
        (UTC_TIME, BITMAP8, struct.pack("<I", TIME)),  # as ZCL 3.12.2.2 declares them
        (UINT32, BITMAP8, struct.pack("<I", TIME)),  # Time as uint32, as some meters send it
        (UINT32, UINT8, struct.pack("<I", TIME)),  # TimeStatus as uint8
        (UTC_TIME, 0x30, struct.pack("<I", TIME)),  # TimeStatus as enum8: an integer too
    ],
    ids=["declared", "time-uint32", "status-uint8", "status-enum8"],
)
def test_an_integer_of_another_integer_type_is_still_read(
    time_type: int, status_type: int, time_bytes: bytes
) -> None:
    reading = time_reading_from_response(
        record(0x0000, time_type, time_bytes) + record(0x0001, status_type, b"\x01")
    )
    assert reading.values[0x0000] == TIME
    assert reading.untrusted is None
    assert reading.local_time == TIME


def test_an_attribute_answered_twice_is_refused() -> None:
    """A response giving Time twice, with two values, says two clocks: ``read_time`` already
    refused it (its records must answer what was asked, in order), the decoder took the last
    one silently. Both refuse it now, whichever the statuses."""
    first = record(0x0000, UTC_TIME, struct.pack("<I", TIME))
    again = record(0x0000, UTC_TIME, struct.pack("<I", TIME + 3600))
    with pytest.raises(DecodeError, match="0x0000 answered twice"):
        time_reading_from_response(first + MASTER + again)
    unsupported = struct.pack("<HB", 0x0000, 0x86)  # UNSUPPORTED_ATTRIBUTE, then a value
    with pytest.raises(DecodeError, match="0x0000 answered twice"):
        time_reading_from_response(unsupported + first + MASTER)
