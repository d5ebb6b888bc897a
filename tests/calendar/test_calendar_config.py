"""``[[calendars]]`` in the ESI's configuration (SE 1.2 D.9): named day profiles, week
profiles, seasons and special days in a readable form, published at start; every mistake is
one ConfigError line naming the table and key."""

from __future__ import annotations

import asyncio

import pytest

from tests.calendar.tou import tou_calendar
from tests.roles.han_builder import EUIS, build, close
from zse.calendar.protocol import CalendarReceived
from zse.cli.esi import Session
from zse.config import ConfigError, parse_config

#: Day profile 4 of the test calendar: 24 hourly entries, tiers 1-4 in turn.
HOURLY = "days.hourly = { " + ", ".join(f'"{h:02}:00" = {1 + h % 4}' for h in range(24)) + " }"

TOU = """
[[calendars]]
issuer_calendar_id = 40
issuer_event_id = 300
provider_id = 5
name = "GB TOU"
days.weekday = { "00:00" = 1, "07:00" = 2, "16:00" = 3, "19:00" = 2, "23:00" = 1 }
days.night = { "00:00" = 1 }
days.summer = { "07:00" = 2, "00:00" = 1, "23:00" = 1 }
{HOURLY}
weeks.winter = ["weekday", "weekday", "weekday", "weekday", "weekday", "night", "night"]
weeks.summer = ["summer", "summer", "summer", "summer", "summer", "night", "night"]
seasons = [{ start = "04-01", week = "summer" }, { start = "10-01", week = "winter" }]
special_days = [{ date = "12-25", day = "night" }, { date = "2026-06-01", day = "hourly" }]
device = "00:0d:6f:00:0e:00:00:01"
""".replace("{HOURLY}", HOURLY)


def test_a_readable_calendar_is_the_calendar_it_says() -> None:
    (entry,) = parse_config(TOU).calendars
    assert entry.calendar == tou_calendar()
    assert entry.target.kind == "device"
    assert not entry.auto_id


def test_the_defaults_and_a_friendly_credit_calendar() -> None:
    text = """
[[calendars]]
issuer_calendar_id = 2
type = "friendly_credit"
time_reference = "utc"
days.on = { "00:00" = 1 }
weeks.all = ["on", "on", "on", "on", "on", "on", "on"]
seasons = [{ start = "01-01", week = "all" }]
"""
    (entry,) = parse_config(text).calendars
    assert (entry.calendar.calendar_type, entry.calendar.calendar_time_reference) == (3, 0)
    assert (entry.calendar.provider_id, entry.calendar.start_time) == (1, 0)
    assert entry.auto_id
    assert entry.target.kind == "broadcast"


def test_start_times_keep_their_minutes() -> None:
    """A start "HH:MM" is minutes after midnight, the minutes counted (D.9.2.4.2 Start Time)."""
    days = 'days.d = { "00:00" = 1, "06:30" = 2, "23:59" = 3 }'
    (entry,) = parse_config(_with(days=days)).calendars
    (day,) = entry.calendar.days
    assert day.entries == ((0, 1), (6 * 60 + 30, 2), (23 * 60 + 59, 3))


_GOOD = {
    "days": 'days.d = { "00:00" = 1 }',
    "weeks": 'weeks.w = ["d", "d", "d", "d", "d", "d", "d"]',
    "seasons": 'seasons = [{ start = "01-01", week = "w" }]',
}


def _with(**changed: str) -> str:
    lines = ["[[calendars]]", "issuer_calendar_id = 1"]
    lines += [changed.pop(key, line) for key, line in _GOOD.items()]
    return "\n".join([*lines, *changed.values(), ""])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_with(seasons=""), "[[calendars]] #1: needs seasons"),
        (_with(extra='colour = "red"'), "[[calendars]] #1: unknown key 'colour'"),
        (_with(extra='type = "gas"'), "[[calendars]] #1 type: 'gas' is not one of delivered"),
        (
            _with(extra='time_reference = "mars"'),
            "[[calendars]] #1 time_reference: 'mars' is not one of utc",
        ),
        (_with(extra='name = "thirteen octet"'), "[[calendars]] #1 name: is longer than 12"),
        (_with(days='days.d = { "25:00" = 1 }'), "#1 days.d: '25:00' is not a time of day"),
        (_with(days='days.d = { "7am" = 1 }'), "#1 days.d: '7am' is not a time HH:MM"),
        (_with(days='days.d = { "00:00" = 256 }'), "#1 days.d: the value at 00:00 must be"),
        (_with(days='days.d = { "00:00" = "1" }'), "#1 days.d: the value at 00:00 must be"),
        (_with(days="days.d = {}"), "#1 days.d: needs at least one start time"),
        (_with(days="days = {}"), "#1 days: needs 1-255 named entries"),
        (_with(days='days.d = ["00:00"]'), "#1 days.d: expected a table"),
        (_with(weeks='weeks.w = ["d", "d"]'), "#1 weeks.w: needs 7 day names"),
        (
            _with(weeks='weeks.w = ["d", "d", "d", "d", "d", "d", "x"]'),
            "#1 weeks.w: 'x' is not one of the days given (d)",
        ),
        (
            _with(seasons='seasons = [{ start = "01-01", week = "v" }]'),
            "#1 seasons: 'v' is not one of the weeks given (w)",
        ),
        (
            _with(seasons='seasons = [{ start = "02-30", week = "w" }]'),
            "#1 seasons: '02-30' is not a date",
        ),
        (
            _with(seasons='seasons = [{ start = "1st May", week = "w" }]'),
            "#1 seasons: '1st May' is not a date MM-DD or YYYY-MM-DD",
        ),
        (
            _with(seasons='seasons = [{ start = "01-01" }]'),
            "#1 seasons: each entry is a table of start and week",
        ),
        (
            _with(extra='special_days = [{ date = "12-25", day = "y" }]'),
            "#1 special_days: 'y' is not one of the days given (d)",
        ),
        (
            _with(extra='special_days = [{ date = "2200-12-25", day = "d" }]'),
            "#1 special_days: '2200-12-25': a year 1900-2154",
        ),
        (_with(extra="broadcast = false"), "[[calendars]] #1: broadcast = false"),
    ],
)
def test_a_wrong_calendar_is_one_config_error_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    shown = str(caught.value)
    assert message in shown, shown
    assert "\n" not in shown
    assert shown.count("[[calendars]]") == 1


async def test_the_esi_publishes_the_configured_calendar_and_a_display_takes_it(
    tmp_path,
) -> None:
    han = await build(tmp_path)
    out: list[str] = []
    session = Session(han.esi, parse_config(TOU), out.append, han.clock)
    try:
        await han.esi.provision(EUIS["ihd"])
        ihd = han.add("ihd")
        await ihd.start()
        await asyncio.sleep(5)
        assert await session.apply_config()
        await asyncio.sleep(2)
        (received,) = [e for e in han.device_events["ihd"] if isinstance(e, CalendarReceived)]
        assert received.calendar.days == tou_calendar().days
        assert any(line.startswith("calendar 40 to ") and "1 delivered" in line for line in out), (
            out
        )
    finally:
        await close(han)
