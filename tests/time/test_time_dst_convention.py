"""F6: the DST attributes as another stack reads them, with ZCL 3.12.2.2.8's rule
"LocalTime = StandardTime + DstShift if DstStart <= Time <= DstEnd" (quoted by zigbee-herdsman's
timeService.ts and TI Z-Stack's zcl_general.h), checked against zoneinfo; and zse's own reading
of both that convention and the one zse published before."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.time.test_time_core import utc
from zse.se.ids import TimeAttribute
from zse.time.core import (
    INVALID_TIME,
    IanaZone,
    TimeCore,
    dst_in_effect,
    from_zigbee,
    local_time_from_attributes,
    to_zigbee,
)

A = TimeAttribute


def true_local(zone: str, time: int) -> int:
    """zoneinfo's wall clock at ``time``, as seconds since 2000-01-01 00:00 local."""
    wall = from_zigbee(time).astimezone(zoneinfo.ZoneInfo(zone))
    return to_zigbee(wall.replace(tzinfo=dt.UTC))


def zcl_client(values: dict[TimeAttribute, int]) -> int:
    """LocalTime as a stack that applies ZCL's rule literally computes it."""
    time, start, end = values[A.TIME], values[A.DST_START], values[A.DST_END]
    dst = INVALID_TIME not in (start, end) and start <= time <= end
    return time + values[A.TIME_ZONE] + (values[A.DST_SHIFT] if dst else 0)


ZONES = [
    "Europe/London",
    "America/New_York",
    "Australia/Sydney",  # DST over the new year
    "Pacific/Auckland",
    "Asia/Tokyo",  # no DST
    "Australia/Lord_Howe",  # a 30-minute shift
]
# Each zone's transitions in 2024-2026 (UTC), and the new years: instants a second either side.
EDGES = [
    *(utc(f"{year}-01-01 00:00:00") for year in (2024, 2025, 2026, 2027)),
    *map(
        utc,
        [
            "2024-03-31 01:00:00",  # London
            "2024-10-27 01:00:00",
            "2025-03-30 01:00:00",
            "2025-10-26 01:00:00",
            "2025-03-09 07:00:00",  # New York
            "2025-11-02 06:00:00",
            "2025-04-05 16:00:00",  # Sydney
            "2025-10-04 16:00:00",
            "2026-04-04 16:00:00",
            "2025-04-05 14:00:00",  # Auckland
            "2025-09-27 14:00:00",
            "2026-04-04 14:00:00",
            "2025-04-05 15:00:00",  # Lord Howe
            "2025-10-04 15:30:00",
        ],
    ),
]
INSTANTS = st.one_of(
    st.integers(utc("2000-01-01 00:00:00"), utc("2037-12-31 23:59:59")),
    st.sampled_from(EDGES).flatmap(lambda edge: st.integers(edge - 2, edge + 1)),
)


@settings(max_examples=400, deadline=None)
@given(zone=st.sampled_from(ZONES), time=INSTANTS)
def test_a_client_applying_zcls_rule_gets_the_true_local_time(zone, time):
    values = TimeCore(IanaZone(zone)).attributes(time)
    truth = true_local(zone, time)
    assert zcl_client(values) == truth
    assert values[A.LOCAL_TIME] == truth
    assert local_time_from_attributes(values) == truth
    if values[A.DST_START] != INVALID_TIME:  # the period in effect, or the next one
        assert values[A.DST_START] < values[A.DST_END]
        assert time <= values[A.DST_END]
        assert values[A.DST_END] % 60 == 59  # the last second of DST


@pytest.mark.parametrize(
    ("zone", "instant"),
    [
        ("Europe/London", "2025-10-26 00:59:59"),  # the last second of BST
        ("Europe/London", "2025-10-26 01:00:00"),  # the first of GMT: was off by an hour
        ("Australia/Sydney", "2025-02-01 00:00:00"),  # southern summer: no DST was seen
        ("Australia/Sydney", "2025-12-31 23:59:59"),
        ("Australia/Sydney", "2026-01-01 00:00:00"),
        ("Pacific/Auckland", "2025-01-01 00:00:00"),
    ],
)
def test_what_the_audit_found_wrong(zone, instant):
    values = TimeCore(IanaZone(zone)).attributes(utc(instant))
    assert zcl_client(values) == true_local(zone, utc(instant))


# What zse published before: the UTC year's two transition instants, DstEnd the first second
# of standard time (so DstStart after DstEnd in the south), with TimeZone and DstShift.
OLD_2025 = {
    "Europe/London": (0, "2025-03-30 01:00:00", "2025-10-26 01:00:00"),
    "America/New_York": (-18000, "2025-03-09 07:00:00", "2025-11-02 06:00:00"),
    "Australia/Sydney": (36000, "2025-10-04 16:00:00", "2025-04-05 16:00:00"),
    "Pacific/Auckland": (43200, "2025-09-27 14:00:00", "2025-04-05 14:00:00"),
}


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(sorted(OLD_2025)),
    time=st.one_of(
        st.integers(utc("2025-01-01 00:00:00"), utc("2025-12-31 23:59:59")),
        st.sampled_from([utc(t) for _, s, e in OLD_2025.values() for t in (s, e)]).flatmap(
            lambda edge: st.integers(edge - 2, edge + 1)
        ),
    ),
)
def test_zse_still_reads_what_it_published_before(zone, time):
    time_zone, start, end = OLD_2025[zone]
    values = {
        A.TIME: time,
        A.TIME_ZONE: time_zone,
        A.DST_START: utc(start),
        A.DST_END: utc(end),
        A.DST_SHIFT: 3600,
    }
    assert local_time_from_attributes(values) == true_local(zone, time)


@pytest.mark.parametrize(
    ("time", "start", "end", "expected"),
    [
        (99, 100, 199, False),  # ZCL: DstStart <= Time <= DstEnd
        (100, 100, 199, True),
        (199, 100, 199, True),
        (200, 100, 199, False),
        (119, 60, 120, True),  # a DstEnd on a whole minute: zse's old first standard second
        (120, 60, 120, False),
        (59, 120, 60, True),  # DstStart after DstEnd: zse's old southern values
        (60, 120, 60, False),
        (119, 120, 60, False),
        (120, 120, 60, True),
        (5, INVALID_TIME, 100, False),
        (5, 0, INVALID_TIME, False),
        (5, 5, 5, False),
    ],
)
def test_dst_in_effect_reads_both_conventions(time, start, end, expected):
    assert dst_in_effect(time, start, end) is expected
