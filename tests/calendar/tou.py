"""A two-season time-of-use calendar for the Calendar tests (GB-style, local time)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from zse.calendar import CalendarSchedule, DayProfile, WeekProfile, ZclDate
from zse.time.core import ZoneYear, to_zigbee

#: Winter weekday: night 1, day 2, peak 3 from 16:00, day 2 from 19:00, night 1 from 23:00.
WINTER_WEEKDAY = DayProfile(1, ((0, 1), (7 * 60, 2), (16 * 60, 3), (19 * 60, 2), (23 * 60, 1)))
#: Weekend and special days: night all day.
OFF_PEAK = DayProfile(2, ((0, 1),))
#: Summer weekday: night 1, day 2 from 07:00, night from 23:00.
SUMMER_WEEKDAY = DayProfile(3, ((0, 1), (7 * 60, 2), (23 * 60, 1)))
#: A busy day of 24 hourly entries (two Publish Day Profile commands).
HOURLY = DayProfile(4, tuple((hour * 60, 1 + hour % 4) for hour in range(24)))


def tou_calendar(**more: Any) -> CalendarSchedule:
    """Winter from 1 October, summer from 1 April (every year); Christmas Day off-peak."""
    fields: dict[str, Any] = {
        "provider_id": 5,
        "issuer_event_id": 300,
        "issuer_calendar_id": 40,
        "start_time": 0,
        "calendar_type": 0,
        "calendar_time_reference": 2,
        "calendar_name": b"GB TOU",
        "seasons": ((ZclDate(month=4, day=1), 2), (ZclDate(month=10, day=1), 1)),
        "weeks": (WeekProfile(1, (1, 1, 1, 1, 1, 2, 2)), WeekProfile(2, (3, 3, 3, 3, 3, 2, 2))),
        "days": (WINTER_WEEKDAY, OFF_PEAK, SUMMER_WEEKDAY, HOURLY),
        "special_days": ((ZclDate(month=12, day=25), 2), (ZclDate(2026 - 1900, 6, 1), 4)),
    }
    return CalendarSchedule(**(fields | more))


def utc(*args: int) -> int:
    """A UTC instant as ZigBee seconds."""
    return to_zigbee(dt.datetime(*args, tzinfo=dt.UTC))


#: London in 2026: GMT, BST from 29 March 01:00 UTC to 25 October 01:00 UTC.
LONDON_2026 = ZoneYear(
    time_zone=0, dst_start=utc(2026, 3, 29, 1), dst_end=utc(2026, 10, 25, 1) - 1, dst_shift=3600
)


def hostile_calendar() -> CalendarSchedule:
    """The worst calendar a publisher can send (8-bit counts: Publish Day Profile's Total
    Number of Schedule Entries, D.9.2.4.2, a uint8 in Silicon Labs' calendar plugins; 255
    special days, as :class:`CalendarSchedule` takes): 255 schedule entries a day, 255
    seasons and 255 special days, all saying the same value, so the look ahead for a change
    runs its whole horizon."""
    same = DayProfile(1, tuple((minute, 1) for minute in range(0, 255 * 5, 5)))
    return CalendarSchedule(
        provider_id=1,
        issuer_event_id=1,
        issuer_calendar_id=1,
        calendar_time_reference=2,
        seasons=tuple((ZclDate(0xFF, 1 + i % 12, 1 + i // 12), 1) for i in range(255)),
        weeks=(WeekProfile(1, (1,) * 7),),
        days=(same,),
        special_days=tuple((ZclDate(0xFF, 2, 30), 1) for _ in range(255)),
    )
