"""#14.6: Time with daylight saving (ZCL 3.12.2.2), checked against zoneinfo's own answers."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.se.ids import TimeAttribute
from zse.time.core import (
    INVALID_TIME,
    FixedZone,
    IanaZone,
    TimeCore,
    TimeZoneError,
    ZoneYear,
    from_zigbee,
    local_time,
    local_time_from_attributes,
    to_zigbee,
)

A = TimeAttribute


def utc(text: str) -> int:
    """ZigBee UTCTime of an ISO UTC time."""
    return to_zigbee(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC))


def wall(local: int) -> str:
    """A LocalTime (seconds since 2000-01-01 00:00 local) as the wall clock reads it."""
    return from_zigbee(local).strftime("%Y-%m-%d %H:%M:%S")


def zoneinfo_wall(zone: str, time: int) -> str:
    return from_zigbee(time).astimezone(zoneinfo.ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


# (zone, UTC instant, the local wall clock): seconds before, at and after each transition,
# through the skipped spring hour and twice through the repeated autumn hour.
TRANSITIONS = [
    ("Europe/London", "2024-03-31 00:59:59", "2024-03-31 00:59:59"),  # last second of GMT
    ("Europe/London", "2024-03-31 01:00:00", "2024-03-31 02:00:00"),  # 01:00-02:00 skipped
    ("Europe/London", "2024-03-31 01:00:01", "2024-03-31 02:00:01"),
    ("Europe/London", "2024-10-27 00:00:00", "2024-10-27 01:00:00"),  # first 01:00 (BST)
    ("Europe/London", "2024-10-27 00:59:59", "2024-10-27 01:59:59"),  # last second of BST
    ("Europe/London", "2024-10-27 01:00:00", "2024-10-27 01:00:00"),  # second 01:00 (GMT)
    ("Europe/London", "2024-10-27 01:00:01", "2024-10-27 01:00:01"),
    ("America/New_York", "2024-03-10 06:59:59", "2024-03-10 01:59:59"),  # EST
    ("America/New_York", "2024-03-10 07:00:00", "2024-03-10 03:00:00"),  # 02:00-03:00 skipped
    ("America/New_York", "2024-03-10 07:00:01", "2024-03-10 03:00:01"),
    ("America/New_York", "2024-11-03 05:00:00", "2024-11-03 01:00:00"),  # first 01:00 (EDT)
    ("America/New_York", "2024-11-03 05:59:59", "2024-11-03 01:59:59"),
    ("America/New_York", "2024-11-03 06:00:00", "2024-11-03 01:00:00"),  # second 01:00 (EST)
    ("America/New_York", "2024-11-03 06:00:01", "2024-11-03 01:00:01"),
    ("Australia/Sydney", "2024-04-06 15:59:59", "2024-04-07 02:59:59"),  # AEDT ends
    ("Australia/Sydney", "2024-04-06 16:00:00", "2024-04-07 02:00:00"),
    ("Australia/Sydney", "2024-10-05 15:59:59", "2024-10-06 01:59:59"),  # AEDT starts
    ("Australia/Sydney", "2024-10-05 16:00:00", "2024-10-06 03:00:00"),
    ("Australia/Sydney", "2024-12-31 23:00:00", "2025-01-01 10:00:00"),  # DST over new year
]


@pytest.mark.parametrize(("zone", "instant", "expected"), TRANSITIONS)
def test_local_time_at_and_around_the_transitions(zone, instant, expected):
    time = utc(instant)
    local = TimeCore(IanaZone(zone)).attributes(time)[A.LOCAL_TIME]
    assert wall(local) == expected == zoneinfo_wall(zone, time)


#: TimeZone and DstShift of the zones below.
OFFSETS = {
    "Europe/London": (0, 3600),
    "Europe/Dublin": (0, 3600),
    "America/New_York": (-18000, 3600),
    "Australia/Sydney": (36000, 3600),
    "Pacific/Auckland": (43200, 3600),
}


@pytest.mark.parametrize(
    ("zone", "instant", "start", "end"),
    [  # the DST period in effect, else the next one; DstEnd its last second (ZCL 3.12.2.2.5)
        ("Europe/London", "2024-01-15", "2024-03-31 01:00", "2024-10-27 00:59:59"),
        ("Europe/London", "2025-07-01", "2025-03-30 01:00", "2025-10-26 00:59:59"),
        ("Europe/London", "2025-10-26 01:00", "2026-03-29 01:00", "2026-10-25 00:59:59"),
        ("America/New_York", "2024-03-10 07:00", "2024-03-10 07:00", "2024-11-03 05:59:59"),
        ("America/New_York", "2024-12-31 23:59:59", "2025-03-09 07:00", "2025-11-02 05:59:59"),
        ("Australia/Sydney", "2025-02-01", "2024-10-05 16:00", "2025-04-05 15:59:59"),
        ("Australia/Sydney", "2025-07-01", "2025-10-04 16:00", "2026-04-04 15:59:59"),
        ("Australia/Sydney", "2025-11-15", "2025-10-04 16:00", "2026-04-04 15:59:59"),
        ("Pacific/Auckland", "2025-01-01", "2024-09-28 14:00", "2025-04-05 13:59:59"),
        ("Europe/Dublin", "2024-06-01", "2024-03-31 01:00", "2024-10-27 00:59:59"),
    ],
)
def test_dst_start_end_and_shift_for_a_year(zone, instant, start, end):
    """F6: DstStart <= DstEnd always, across the new year in the south (as zigpy publishes
    them), DstEnd = the transition - 1 (ZCL's rule is inclusive)."""
    time_zone, shift = OFFSETS[zone]
    assert IanaZone(zone).values_at(utc(instant)) == ZoneYear(
        time_zone=time_zone, dst_start=utc(start), dst_end=utc(end), dst_shift=shift
    )


def test_a_zone_without_dst_has_invalid_start_and_end():
    assert IanaZone("Asia/Tokyo").values_at(utc("2024-07-01 00:00:00")) == ZoneYear(
        time_zone=9 * 3600
    )
    values = TimeCore(IanaZone("Asia/Tokyo")).attributes(utc("2024-07-01 00:00:00"))
    assert (values[A.DST_START], values[A.DST_END], values[A.DST_SHIFT]) == (
        INVALID_TIME,
        INVALID_TIME,
        0,
    )
    assert wall(values[A.LOCAL_TIME]) == "2024-07-01 09:00:00"


def test_every_attribute_and_the_year_rolling_over():
    core = TimeCore(IanaZone("Europe/London"))
    core.set_time(utc("2024-12-31 23:00:00"), valid_for=86_400)
    before = core.attributes(utc("2024-12-31 23:59:59"))
    assert before == {
        A.TIME: utc("2024-12-31 23:59:59"),
        A.TIME_ZONE: 0,
        A.DST_START: utc("2025-03-30 01:00:00"),  # the next period, already in December
        A.DST_END: utc("2025-10-26 00:59:59"),
        A.DST_SHIFT: 3600,
        A.STANDARD_TIME: utc("2024-12-31 23:59:59"),
        A.LOCAL_TIME: utc("2024-12-31 23:59:59"),
        A.LAST_SET_TIME: utc("2024-12-31 23:00:00"),
        A.VALID_UNTIL_TIME: utc("2025-01-01 23:00:00"),
    }
    after = core.attributes(utc("2025-01-01 00:00:00"))
    assert (after[A.DST_START], after[A.DST_END]) == (before[A.DST_START], before[A.DST_END])
    summer = core.attributes(utc("2025-07-01 12:00:00"))
    assert summer[A.STANDARD_TIME] == utc("2025-07-01 12:00:00")
    assert wall(summer[A.LOCAL_TIME]) == "2025-07-01 13:00:00"


def test_explicit_offsets():
    """Explicit values are published as given: DstEnd is DST's last second."""
    zone = FixedZone(ZoneYear(time_zone=3600, dst_start=100, dst_end=199, dst_shift=1800))
    core = TimeCore(zone)
    assert [core.attributes(t)[A.LOCAL_TIME] - t for t in (99, 100, 199, 200)] == [
        3600,
        5400,
        5400,
        3600,
    ]
    assert TimeCore(FixedZone(ZoneYear(time_zone=-3600))).attributes(0)[A.LAST_SET_TIME] == (
        INVALID_TIME
    )


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../etc/passwd", ""])
def test_unknown_zone_is_a_named_error(name):
    with pytest.raises(TimeZoneError, match="unknown time zone"):
        IanaZone(name)


@pytest.mark.parametrize("field", ["time_zone", "dst_shift"])
def test_offsets_beyond_a_day_are_refused(field):
    with pytest.raises(TimeZoneError, match=r"86400"):
        ZoneYear(**{"time_zone": 0, field: 86_401})


def test_an_instant_the_rule_cannot_express_keeps_the_standard_offset():
    class TwoPeriods:
        def values_at(self, time: int) -> ZoneYear:
            if time >= utc("2025-01-01 00:00:00"):
                raise TimeZoneError("2025 has more than one DST period")
            return ZoneYear(time_zone=7200, dst_start=0, dst_end=INVALID_TIME - 1, dst_shift=60)

    core = TimeCore(TwoPeriods())
    assert core.attributes(utc("2024-06-01 00:00:00"))[A.DST_SHIFT] == 60
    later = core.attributes(utc("2025-06-01 00:00:00"))
    assert (later[A.TIME_ZONE], later[A.DST_SHIFT], later[A.DST_START]) == (7200, 0, INVALID_TIME)
    with pytest.raises(TimeZoneError):
        TimeCore(TwoPeriods()).attributes(utc("2025-06-01 00:00:00"))


ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Europe/Dublin"]


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    time=st.integers(utc("2000-01-01 00:00:00"), utc("2037-12-31 23:59:59")),
)
def test_local_time_is_what_zoneinfo_gives_for_the_same_instant(zone, time):
    values = TimeCore(IanaZone(zone)).attributes(time)
    assert wall(values[A.LOCAL_TIME]) == zoneinfo_wall(zone, time)
    # a client computes the same from the attributes it read, with the same function
    assert local_time_from_attributes(values) == values[A.LOCAL_TIME]
    assert (
        local_time(
            time, values[A.TIME_ZONE], values[A.DST_START], values[A.DST_END], values[A.DST_SHIFT]
        )
        == (values[A.LOCAL_TIME])
    )


def test_a_client_needs_only_time_and_takes_a_missing_time_zone_as_utc():
    """F8: only Time and TimeStatus are mandatory (ZCL 3.12.2.2)."""
    assert local_time_from_attributes({A.TIME: 5, A.TIME_STATUS: 1}) == 5
    with pytest.raises(TimeZoneError, match="0x0000"):
        local_time_from_attributes({A.TIME_ZONE: 3600})
