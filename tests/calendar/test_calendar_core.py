"""The Calendar core (SE 1.2 D.9), sans-IO: what a calendar says at an instant (seasons, weeks,
days, special days; local time with DST), the parts a server sends (each within one frame), a
client putting them back together in any order, and the timeline rules shared with Price."""

from __future__ import annotations

import cProfile
import dataclasses
import pstats
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.calendar.test_calendar_wire import part_payload
from tests.calendar.tou import (
    HOURLY,
    LONDON_2026,
    OFF_PEAK,
    SUMMER_WEEKDAY,
    hostile_calendar,
    tou_calendar,
    utc,
)
from zse.calendar import (
    CalendarCancellation,
    CalendarOutcome,
    CalendarPart,
    Calendars,
    CalendarSchedule,
    CalendarType,
    DayProfile,
    PartKind,
    TimeReference,
    ZclDate,
)
from zse.calendar.core import HORIZON_DAYS, CalendarReading
from zse.calendar.wire import Calendar
from zse.se.frames import max_zcl_payload
from zse.time.core import ZoneYear
from zse.zcl.codec import decode_command

NOW = utc(2026, 1, 1)
ONE_FRAME = max_zcl_payload(group=False)


# --- at(): what is in force and when it changes --------------------------------------------


def test_a_winter_weekday_peak_and_when_it_ends() -> None:
    reading = tou_calendar().at(utc(2026, 1, 14, 17, 0), LONDON_2026)  # a Wednesday, GMT
    assert (reading.price_tier, reading.changes_at, reading.next_value) == (
        3,
        utc(2026, 1, 14, 19, 0),
        2,
    )
    assert reading.friendly_credit is None


def test_a_summer_weekday_in_local_time_is_an_hour_ahead_of_utc() -> None:
    """BST: 06:30 UTC is 07:30 local, the day rate; night comes at 23:00 BST = 22:00 UTC."""
    reading = tou_calendar().at(utc(2026, 7, 15, 6, 30), LONDON_2026)
    assert (reading.value, reading.changes_at, reading.next_value) == (2, utc(2026, 7, 15, 22), 1)
    assert tou_calendar().at(utc(2026, 7, 15, 5, 30), LONDON_2026).value == 1


def test_the_week_after_the_spring_dst_change_starts_an_hour_earlier_in_utc() -> None:
    """Sunday 29 March 2026 (DST from 01:00 UTC), off-peak; Monday's day rate starts at 07:00
    BST, 06:00 UTC (still the winter season: summer begins on 1 April)."""
    reading = tou_calendar().at(utc(2026, 3, 29, 0, 30), LONDON_2026)
    assert (reading.value, reading.changes_at, reading.next_value) == (1, utc(2026, 3, 30, 6), 2)


def test_across_the_autumn_dst_change_the_weekday_starts_at_0700_gmt() -> None:
    reading = tou_calendar().at(utc(2026, 10, 23, 22, 30), LONDON_2026)  # Friday 23:30 BST
    assert (reading.value, reading.changes_at, reading.next_value) == (1, utc(2026, 10, 26, 7), 2)


def test_special_days_replace_the_season_day() -> None:
    christmas = tou_calendar().at(utc(2026, 12, 25, 17, 0), LONDON_2026)  # a Friday
    assert christmas.value == 1
    assert christmas.changes_at == utc(2026, 12, 28, 7)  # weekend, then Monday's day rate
    hourly = tou_calendar().at(utc(2026, 6, 1, 9, 30), LONDON_2026)  # 10:30 BST, Monday
    assert (hourly.value, hourly.changes_at, hourly.next_value) == (3, utc(2026, 6, 1, 10), 4)
    assert tou_calendar(special_days=()).at(utc(2026, 6, 1, 9, 30), LONDON_2026).value == 2


def test_a_day_without_a_midnight_entry_runs_on_the_day_before_s_last_value() -> None:
    """An entry is in force until the next one, across midnight: on a day whose first entry
    is at 07:00, the small hours keep the day before's last value (docs/calendar.md)."""
    late = DayProfile(1, ((7 * 60, 2), (23 * 60, 1)))
    calendar = tou_calendar(days=(late, OFF_PEAK, SUMMER_WEEKDAY, HOURLY), special_days=())
    reading = calendar.at(utc(2026, 1, 14, 3, 0), LONDON_2026)  # a Wednesday, GMT
    assert (reading.value, reading.changes_at, reading.next_value) == (1, utc(2026, 1, 14, 7), 2)


def test_a_special_day_by_weekday_is_that_weekday_only() -> None:
    """A special day's Date with only its day of week (1 Monday - 7 Sunday, ZCL's Date) given
    replaces that weekday's day profile and no other."""
    sundays = tou_calendar(special_days=((ZclDate(weekday=7), 4),))
    assert sundays.at(utc(2026, 1, 18, 10, 30), LONDON_2026).value == 3  # Sunday: HOURLY
    assert sundays.at(utc(2026, 1, 17, 10, 30), LONDON_2026).value == 1  # Saturday: off-peak
    assert sundays.at(utc(2026, 1, 19, 10, 30), LONDON_2026).value == 2  # Monday: day rate


def test_the_time_reference_picks_the_clock() -> None:
    """07:30 UTC in July: UTC and standard (GMT) read 07:30, local 08:30; at 06:30 UTC only
    local time is past 07:00."""
    at = utc(2026, 7, 15, 6, 30)
    for reference, tier in (
        (TimeReference.UTC, 1),
        (TimeReference.STANDARD, 1),
        (TimeReference.LOCAL, 2),
    ):
        calendar = tou_calendar(calendar_time_reference=reference)
        assert calendar.at(at, LONDON_2026).value == tier
    paris = ZoneYear(time_zone=3600)
    standard = tou_calendar(calendar_time_reference=TimeReference.STANDARD)
    assert standard.at(utc(2026, 1, 14, 6, 30), paris).value == 2


def test_friendly_credit_and_aux_switch_readings() -> None:
    credit = tou_calendar(calendar_type=CalendarType.FRIENDLY_CREDIT)
    reading = credit.at(utc(2026, 1, 14, 17), LONDON_2026)
    assert (reading.friendly_credit, reading.price_tier) == (True, None)
    aux = tou_calendar(calendar_type=CalendarType.AUXILIARY_LOAD_SWITCH)
    switches = aux.at(utc(2026, 1, 14, 17), LONDON_2026)  # state 3: switches 1 and 2
    assert [switches.aux_switch(n) for n in (1, 2, 3)] == [True, True, False]


def test_a_calendar_that_does_not_say_reads_none() -> None:
    only_from_june = tou_calendar(seasons=((ZclDate(2026 - 1900, 6, 1), 1),), special_days=())
    assert only_from_june.at(utc(2026, 3, 1, 12), LONDON_2026).value is None
    later = only_from_june.at(utc(2026, 3, 1, 12), LONDON_2026)
    assert later.changes_at == utc(2026, 5, 31, 23)  # 1 June 00:00 BST
    flat = tou_calendar(days=(OFF_PEAK, *tou_calendar().days[:1], *tou_calendar().days[2:]))
    assert flat.at(utc(2026, 1, 14, 17), LONDON_2026).value == 3


def calls(read: Callable[[], object], *names: str) -> list[int]:
    """How many times ``read()`` called each of ``names`` (functions of zse.calendar.core),
    counted by cProfile: work, not time."""
    profile = cProfile.Profile()
    profile.runcall(read)
    counts = {
        function: stats[1]
        for (path, _, function), stats in pstats.Stats(profile).stats.items()  # type: ignore[attr-defined]
        if path.endswith(str(Path("zse", "calendar", "core.py")))
    }
    return [counts.get(name, 0) for name in names]


def test_a_hostile_calendar_whose_value_never_changes_is_read_at_once() -> None:
    """The worst calendar a publisher can send: 255 entries a day, 255 seasons and 255
    special days, all saying the same value, so the look ahead for a change runs its whole
    horizon (400 days). Each day's entries are worked out once: it took 76 s for one reading
    (every candidate instant looked through every special day and season again, some
    100,000 day profiles a reading)."""
    calendar = hostile_calendar()
    reading: list[CalendarReading] = []
    (days,) = calls(
        lambda: reading.append(calendar.at(utc(2026, 1, 14, 17), LONDON_2026)), "day_profile"
    )
    assert days <= HORIZON_DAYS + 2  # each day of the look ahead and the day before, once
    assert (reading[0].value, reading[0].changes_at) == (1, None)


def test_a_calendar_read_again_the_same_day_does_not_look_ahead_again() -> None:
    """A display or prepay meter reads the calendar at each meter reading: the worst calendar
    cost its whole 400-day look ahead (0.5 s of CPU) each time. Read again the same day with
    the value unchanged, the look ahead kept is the answer (the day's entries kept too);
    the answers are those of a calendar never read."""
    calendar = hostile_calendar()
    first = calendar.at(utc(2026, 1, 14, 0, 5), LONDON_2026)
    instants = [utc(2026, 1, 14, 0, 5) + quarter * 15 * 60 for quarter in range(1, 96)]
    readings: list[CalendarReading] = []
    looks, days = calls(
        lambda: readings.extend(calendar.at(at, LONDON_2026) for at in instants),
        "_next_change",
        "day_profile",
    )
    assert (looks, days) == (0, 0)  # was 95 look aheads and 95 x 402 day profiles
    assert set(readings) == {first}
    assert readings[-1] == dataclasses.replace(calendar).at(instants[-1], LONDON_2026)
    # the next day looks ahead again, from there
    (looks,) = calls(lambda: calendar.at(utc(2026, 1, 15, 0, 5), LONDON_2026), "_next_change")
    assert looks == 1


@given(
    reference=st.sampled_from(TimeReference),
    zoned=st.booleans(),
    day=st.sampled_from([utc(2026, 1, 14), utc(2026, 3, 28), utc(2026, 10, 24), utc(2026, 12, 24)]),
    steps=st.lists(
        st.one_of(st.integers(-900, 3600), st.integers(-6 * 3600, 30 * 3600)),
        min_size=1,
        max_size=12,
    ),
    moved=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_readings_kept_are_those_of_a_calendar_never_read(
    reference: TimeReference, zoned: bool, day: int, steps: list[int], moved: list[bool]
) -> None:
    """Instants here and there around a day (the DST changes' included, some earlier than
    the last): each reading of a calendar read before (or of its copy of another start, as
    Calendars.at reads it) is that of an equal calendar never read."""
    calendar = tou_calendar(calendar_time_reference=reference)
    zone = LONDON_2026 if zoned else None
    at = day
    for step, move in zip(steps, moved, strict=False):
        at += step
        read = calendar.with_start(at) if move else calendar
        assert read.at(at, zone) == dataclasses.replace(calendar).at(at, zone), at


def test_a_calendar_refuses_what_it_cannot_mean() -> None:
    with pytest.raises(ValueError, match="names a day profile not given"):
        tou_calendar(days=tou_calendar().days[1:])
    with pytest.raises(ValueError, match="names week 9"):
        tou_calendar(seasons=((ZclDate(month=1, day=1), 9),))
    with pytest.raises(ValueError, match="starts must rise"):
        DayProfile(1, ((60, 1), (0, 2)))
    with pytest.raises(ValueError, match="longer than 12"):
        tou_calendar(calendar_name=b"x" * 13)


# --- parts: each within one frame --------------------------------------------------------------


def test_every_part_fits_one_frame_and_a_long_day_takes_two() -> None:
    calendar = tou_calendar(
        special_days=tuple((ZclDate(126, 1 + n % 12, 1 + n // 12), 2) for n in range(25))
    )
    parts = calendar.parts()
    assert all(len(part_payload(part)[1]) <= ONE_FRAME for part in parts)
    hourly = [p for p in parts if p.kind is PartKind.DAY_PROFILE and p.key == HOURLY.day_id]
    assert [(p.command_index, p.total_number_of_commands, len(p.items)) for p in hourly] == [
        (0, 2, 17),
        (1, 2, 7),
    ]
    special = [p for p in parts if p.kind is PartKind.SPECIAL_DAYS]
    assert [len(p.items) for p in special] == [10, 10, 5]
    assert {p.total for p in special} == {25}


# --- a client putting a calendar back together --------------------------------------------


def decoded(part: CalendarPart) -> CalendarPart:
    """A part as the client gets it: encoded, then decoded."""
    command_id, payload = part_payload(part)
    command, _ = decode_command(Calendar, command_id, payload, from_server=True)
    return CalendarPart.from_fields(part.kind, command)


def test_a_client_puts_a_calendar_together_in_any_order() -> None:
    calendar = tou_calendar()
    for seed in range(5):
        parts = [decoded(p) for p in calendar.parts()]
        random.Random(seed).shuffle(parts)
        client = Calendars()
        assert client.add_header(calendar.header(), NOW)[0] is CalendarOutcome.KEPT
        outcomes = [client.add_part(part, NOW)[0] for part in parts]
        assert outcomes[:-1] == [CalendarOutcome.KEPT] * (len(parts) - 1)
        assert outcomes[-1] is CalendarOutcome.COMPLETE
        assert client.current(NOW) == calendar
        assert client.pending() == 0


def test_a_missing_part_keeps_the_calendar_out_of_force_until_it_is_asked_for_again() -> None:
    calendar = tou_calendar()
    client = Calendars()
    client.add_header(calendar.header(), NOW)
    parts = calendar.parts()
    lost = next(p for p in parts if p.kind is PartKind.DAY_PROFILE and p.command_index == 1)
    for part in parts:
        if part is not lost:
            client.add_part(decoded(part), NOW)
    assert client.current(NOW) is None
    assert client.at(NOW) is None
    assert [(kind, key) for _, kind, key in client.missing(NOW)] == [(PartKind.DAY_PROFILE, 4)]
    again = calendar.day_parts(first=4, count=1)  # what Get Day Profiles (4, 1) answers
    outcomes = [client.add_part(decoded(part), NOW)[0] for part in again]
    assert outcomes == [CalendarOutcome.REPEAT, CalendarOutcome.COMPLETE]
    assert client.current(NOW) == calendar


def test_parts_the_client_cannot_place_are_refused() -> None:
    calendar = tou_calendar()
    client = Calendars()
    day = decoded(calendar.day_parts()[0])
    assert client.add_part(day, NOW)[0] is CalendarOutcome.UNKNOWN_CALENDAR
    client.add_header(calendar.header(), NOW)
    stray = dataclasses.replace(day, key=9)
    assert client.add_part(stray, NOW)[0] is CalendarOutcome.INCONSISTENT
    wrong_type = dataclasses.replace(day, calendar_type=1)
    assert client.add_part(wrong_type, NOW)[0] is CalendarOutcome.INCONSISTENT
    (special,) = (decoded(p) for p in calendar.special_day_parts())
    special_of_another_type = dataclasses.replace(special, calendar_type=1)
    assert client.add_part(special_of_another_type, NOW)[0] is CalendarOutcome.INCONSISTENT
    first, second = (decoded(p) for p in calendar.day_parts(first=4, count=1))
    assert client.add_part(first, NOW)[0] is CalendarOutcome.KEPT
    assert client.add_part(first, NOW)[0] is CalendarOutcome.REPEAT
    other = dataclasses.replace(second, total=30)
    assert client.add_part(other, NOW)[0] is CalendarOutcome.INCONSISTENT
    short = dataclasses.replace(second, items=second.items[:-1])
    assert client.add_part(first, NOW)[0] is CalendarOutcome.KEPT
    assert client.add_part(short, NOW)[0] is CalendarOutcome.INCONSISTENT  # 23 of 24 entries


def test_an_older_issue_is_refused_and_a_newer_header_starts_afresh() -> None:
    calendar = tou_calendar()
    client = _whole(calendar)
    older = dataclasses.replace(calendar.header(), issuer_event_id=299)
    assert client.add_header(older, NOW)[0] is CalendarOutcome.OLDER
    older_day = dataclasses.replace(decoded(calendar.day_parts()[0]), issuer_event_id=299)
    assert client.add_part(older_day, NOW)[0] is CalendarOutcome.OLDER  # not a repeat
    assert client.add_header(calendar.header(), NOW)[0] is CalendarOutcome.REPEAT
    newest = tou_calendar(issuer_event_id=302, calendar_name=b"GB TOU 3")
    assert client.add_header(newest.header(), NOW)[0] is CalendarOutcome.KEPT
    newer = tou_calendar(issuer_event_id=301, calendar_name=b"GB TOU 2")
    # older than the one being put together, newer than the one held: refused all the same
    assert client.add_header(newer.header(), NOW)[0] is CalendarOutcome.OLDER
    client = _whole(calendar)
    assert client.add_header(newer.header(), NOW)[0] is CalendarOutcome.KEPT
    assert client.current(NOW) == calendar  # in force until the newer one is whole
    for part in newer.parts():
        client.add_part(decoded(part), NOW)
    assert client.current(NOW) == newer


def test_special_days_published_later_replace_those_of_a_held_calendar() -> None:
    calendar = tou_calendar(special_days=())
    client = _whole(calendar)
    updated = tou_calendar(special_days_event_id=310, special_days_start=NOW)
    parts = [decoded(p) for p in updated.special_day_parts()]
    outcome, value = client.add_part(parts[0], NOW)
    assert outcome is CalendarOutcome.COMPLETE
    assert value is not None
    assert value.special_days == updated.special_days
    assert client.at(utc(2026, 12, 25, 17), LONDON_2026).value == 1  # type: ignore[union-attr]
    assert client.add_part(parts[0], NOW)[0] is CalendarOutcome.REPEAT
    stale = dataclasses.replace(parts[0], issuer_event_id=305)
    assert client.add_part(stale, NOW)[0] is CalendarOutcome.OLDER


def test_what_waits_for_its_calendar_is_bounded() -> None:
    """A sender announcing 255 day profiles, never finishing: parts past the bound are
    refused FULL and counted; the memory held stays under the bound (4096 items by default,
    as docs/conformance.md says; 200 here)."""
    assert Calendars().pending_limit == 4096
    client = Calendars(pending_limit=200)
    header = dataclasses.replace(tou_calendar().header(), number_of_day_profiles=255)
    client.add_header(header, NOW)
    outcomes = []
    for day in range(1, 40):
        entries = tuple((minute, 1) for minute in range(17))
        part = CalendarPart(
            kind=PartKind.DAY_PROFILE,
            provider_id=5,
            issuer_event_id=300,
            issuer_calendar_id=40,
            key=day,
            total=34,
            command_index=0,
            total_number_of_commands=2,
            items=entries,
        )
        outcomes.append(client.add_part(part, NOW)[0])
    assert CalendarOutcome.FULL in outcomes
    assert client.pending() <= 200
    assert client.refused_full == outcomes.count(CalendarOutcome.FULL)


def test_calendars_that_never_finish_do_not_lock_the_next_one_out() -> None:
    """A peer announcing calendar after calendar it never finishes fills the bound; the
    calendars not whole yet that came first are given up for a new one, so the ESI's next
    calendar is still put together (it was refused FULL for as long as the device ran)."""
    client = Calendars(pending_limit=60)
    stray = dataclasses.replace(tou_calendar().header(), number_of_day_profiles=255)
    for n in range(200):
        client.add_header(dataclasses.replace(stray, issuer_calendar_id=1000 + n), NOW)
    assert client.pending() <= 60
    calendar = tou_calendar()
    outcomes = [client.add_header(calendar.header(), NOW)[0]]
    outcomes += [client.add_part(part, NOW)[0] for part in calendar.parts()]
    assert outcomes[-1] is CalendarOutcome.COMPLETE, outcomes
    assert CalendarOutcome.FULL not in outcomes
    assert client.pending() <= 60
    assert client.given_up > 0


@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5), st.binary(max_size=60)), max_size=30)
)
def test_garbage_parts_in_any_order_never_crash_the_client(
    parts: list[tuple[int, int, bytes]],
) -> None:
    """Valid headers with random items: every part gets an outcome, nothing else."""
    calendar = tou_calendar()
    client = Calendars()
    client.add_header(calendar.header(), NOW)
    kinds = list(PartKind)
    for kind_index, key, data in parts:
        kind = kinds[kind_index]
        items: tuple[object, ...]
        if kind is PartKind.WEEK_PROFILE:
            items = tuple(data[:7].ljust(7, b"\x01"))
        elif kind is PartKind.DAY_PROFILE:
            items = tuple((data[i] * 7, data[i + 1]) for i in range(0, len(data) - 1, 2))
        else:
            items = tuple((tuple(data[i : i + 4]), data[i + 4]) for i in range(0, len(data) - 4, 5))
        part = CalendarPart(
            kind=kind,
            provider_id=5,
            issuer_event_id=300,
            issuer_calendar_id=40,
            key=key,
            total=len(items),
            command_index=0,
            total_number_of_commands=1,
            items=items,
        )
        outcome, _ = client.add_part(part, NOW)
        assert isinstance(outcome, CalendarOutcome)
        held = client.current(NOW)
        if held is not None:
            held.at(NOW, LONDON_2026)


# --- the timeline: Price's rules ---------------------------------------------------------------


def _whole(*calendars: CalendarSchedule) -> Calendars:
    client = Calendars()
    for calendar in calendars:
        client.add_header(calendar.header(), NOW)
        for part in calendar.parts():
            client.add_part(decoded(part), NOW)
    return client


def test_sixteen_calendars_are_kept_per_type_the_latest_starts_dropped_first() -> None:
    """D.9 timeline (Price's rule, docs/calendar.md): 16 calendars per calendar type; a 17th
    drops the one starting last; another type keeps its own 16."""
    store = Calendars()
    for i in range(17):
        start = NOW + 3600 * (i + 1)
        ids = {"issuer_event_id": 300 + i, "start_time": start}
        store.put(tou_calendar(issuer_calendar_id=100 + i, **ids), NOW)
        store.put(tou_calendar(issuer_calendar_id=200 + i, calendar_type=1, **ids), NOW)
    for kind, first in ((0, 100), (1, 200)):
        held = [c.issuer_calendar_id for c in store.held(NOW) if c.calendar_type == kind]
        assert held == list(range(first, first + 16))  # the 17th, starting last, dropped


def test_a_calendar_starting_later_takes_over_at_its_start() -> None:
    first = tou_calendar()
    second = tou_calendar(
        issuer_calendar_id=41, issuer_event_id=400, start_time=utc(2026, 1, 14, 18), special_days=()
    )
    second = dataclasses.replace(second, days=(DayProfile(1, ((0, 5),)), *second.days[1:]))
    store = Calendars()
    store.put(first, NOW)
    store.put(second, NOW)
    reading = store.at(utc(2026, 1, 14, 17), LONDON_2026)
    assert reading is not None
    assert (reading.value, reading.changes_at, reading.next_value) == (3, utc(2026, 1, 14, 18), 5)
    assert store.current(utc(2026, 1, 14, 18)) == second
    assert store.since(0, 0xFFFFFFFF, 0, 0xFF, 5, NOW) == [first.with_start(NOW), second]
    assert store.since(0, 0xFFFFFFFF, 1, 0, 5, NOW) == [first.with_start(NOW)]
    assert store.since(0, 350, 0, 0xFF, 5, NOW) == [second]
    assert store.since(0, 0xFFFFFFFF, 0, 3, 5, NOW) == []
    assert store.since(0, 0xFFFFFFFF, 0, 0, 6, NOW) == []


def test_on_the_same_start_the_newer_issuer_event_id_is_in_force() -> None:
    store = Calendars()
    older = tou_calendar(issuer_calendar_id=41, issuer_event_id=10, start_time=NOW)
    newer = tou_calendar(issuer_calendar_id=42, issuer_event_id=11, start_time=NOW)
    store.put(newer, NOW)
    store.put(older, NOW)
    assert store.current(NOW) == newer


def test_cancel_calendar_removes_it() -> None:
    calendar = tou_calendar()
    client = _whole(calendar)
    wrong_type = CalendarCancellation(provider_id=5, issuer_calendar_id=40, calendar_type=1)
    assert not client.cancel(wrong_type, NOW)
    cancel = CalendarCancellation(provider_id=5, issuer_calendar_id=40, calendar_type=0)
    assert client.cancel(cancel, NOW)
    assert client.current(NOW) is None
    assert not client.cancel(cancel, NOW)
    building = Calendars()
    building.add_header(calendar.header(), NOW)
    assert building.cancel(cancel, NOW)
    assert building.pending() == 0
