"""What names a calendar (SE 1.2 D.9): its Provider ID and Issuer Calendar ID, as Silicon Labs'
calendar plugins find one (calendar-common.c, calendar-client.c) and as Get Day Profiles, Get
Week Profiles and Get Seasons ask for one. The issuer event id orders the issues: a newer
issue replaces its calendar whole, and a newer calendar of a type supersedes the older ones it
overlaps (calendar-client.c's summary of Publish Calendar). Two calendars sharing an issuer
event id are both kept, on both sides and across a restart."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tests.calendar.test_calendar_core import decoded
from tests.calendar.test_calendar_protocol import NOW, SERVER, ask, deliver, display, get
from tests.calendar.tou import tou_calendar
from tests.services.test_start_order import Port
from zse.calendar import CalendarCancellation, CalendarOutcome, Calendars, CalendarSchedule
from zse.calendar.core import calendar_record
from zse.calendar.protocol import CalendarServerProtocol
from zse.calendar.service import CalendarServer, _step
from zse.calendar.wire import Calendar
from zse.store import Batch, Store
from zse.zcl.codec import decode_command

HOUR = 3600
#: Two calendars of one type, one issuer event id, two Issuer Calendar IDs.
FIRST = tou_calendar(issuer_calendar_id=40, issuer_event_id=300, start_time=NOW)
SECOND = tou_calendar(
    issuer_calendar_id=41, issuer_event_id=300, start_time=NOW + HOUR, calendar_name=b"second"
)


def named(calendars: Calendars, now: int = NOW) -> list[tuple[int, int]]:
    """(Issuer Calendar ID, issuer event id) of each calendar held, by type then start."""
    return [(c.issuer_calendar_id, c.issuer_event_id) for c in calendars.held(now)]


def holding(*calendars: CalendarSchedule) -> Calendars:
    held = Calendars()
    for calendar in calendars:
        held.put(calendar, NOW)
    return held


def test_two_calendars_sharing_an_issuer_event_id_are_both_kept() -> None:
    assert named(holding(FIRST, SECOND)) == [(40, 300), (41, 300)]


def test_two_calendars_sharing_a_start_and_an_event_id_are_in_force_in_one_order() -> None:
    """Which of two calendars of one type with the same start and issuer event id is in force
    does not hang on the order they came in (a restart loads by key, a display as they
    arrive): the greater provider and Issuer Calendar ID (zse's own reading)."""
    second = dataclasses.replace(SECOND, start_time=NOW)
    assert holding(FIRST, second).current(NOW) == second
    assert holding(second, FIRST).current(NOW) == second


def test_a_newer_issue_replaces_its_calendar_whole_and_an_older_one_is_refused() -> None:
    to_come = tou_calendar(issuer_event_id=300, start_time=NOW + HOUR)
    newer = tou_calendar(issuer_event_id=301, start_time=NOW + 2 * HOUR)
    held = holding(to_come, newer)
    assert named(held) == [(40, 301)]  # not the older issue from NOW + 1 h to NOW + 2 h
    assert held.current(NOW + HOUR) is None
    assert not held.put(to_come, NOW)
    assert named(held) == [(40, 301)]


def test_an_older_issue_of_another_type_is_refused_as_a_display_refuses_it() -> None:
    """A calendar is named by provider and Issuer Calendar ID whatever its type: an older
    issue under another type does not replace the newer one (a display refuses its header
    OLDER, so the server would serve a calendar its displays never take)."""
    newer = tou_calendar(issuer_event_id=301, start_time=NOW)
    older = tou_calendar(issuer_event_id=300, start_time=NOW, calendar_type=1)
    held = holding(newer)
    assert held.displaced(older, NOW) == (False, [])
    assert not held.put(older, NOW)
    assert held.held(NOW) == [newer]
    assert held.add_header(older.header(), NOW)[0] is CalendarOutcome.OLDER


def test_a_newer_calendar_supersedes_the_older_ones_it_overlaps() -> None:
    """An older calendar to come that starts within a newer one is dropped; an older one in
    force runs until the newer one starts; an older one arriving within a newer one is
    refused."""
    older_to_come = tou_calendar(issuer_calendar_id=40, issuer_event_id=300, start_time=NOW + HOUR)
    newer_now = tou_calendar(issuer_calendar_id=41, issuer_event_id=400, start_time=NOW)
    held = holding(older_to_come, newer_now)
    assert named(held) == [(41, 400)]
    assert held.current(NOW + 2 * HOUR) == newer_now
    assert not held.put(older_to_come, NOW)
    older_now = tou_calendar(issuer_calendar_id=42, issuer_event_id=200, start_time=NOW)
    newer_later = tou_calendar(issuer_calendar_id=43, issuer_event_id=500, start_time=NOW + HOUR)
    held = holding(older_now, newer_later)
    assert held.current(NOW) == older_now
    assert held.current(NOW + HOUR) == newer_later


def test_a_client_refuses_a_calendar_a_newer_one_overlaps() -> None:
    client = holding(tou_calendar(issuer_calendar_id=41, issuer_event_id=400, start_time=NOW))
    older = tou_calendar(issuer_calendar_id=40, issuer_event_id=300, start_time=NOW + HOUR)
    assert client.add_header(older.header(), NOW)[0] is CalendarOutcome.OLDER
    assert client.pending() == 0


def test_a_part_of_another_issue_with_the_same_ids_is_not_mixed_in() -> None:
    """Day, week and season parts are placed by provider and Issuer Calendar ID: one from
    another issue of that calendar is refused, not taken into the one being put together."""
    older, newer = tou_calendar(issuer_event_id=300), tou_calendar(issuer_event_id=301)
    client = Calendars()
    client.add_header(newer.header(), NOW)
    stray = [decoded(p) for p in older.parts()]
    assert [
        client.add_part(part, NOW)[0] for part in stray if part.kind.name != "SPECIAL_DAYS"
    ] == [CalendarOutcome.OLDER] * (len(stray) - 1)
    assert client.current(NOW) is None
    newest = dataclasses.replace(decoded(older.week_parts()[0]), issuer_event_id=302)
    assert client.add_part(newest, NOW)[0] is CalendarOutcome.INCONSISTENT
    outcomes = [client.add_part(decoded(part), NOW)[0] for part in newer.parts()]
    assert outcomes[-1] is CalendarOutcome.COMPLETE


def test_parts_of_two_calendars_with_the_same_day_and_week_ids_stay_apart() -> None:
    client = Calendars()
    other_days = tuple(
        dataclasses.replace(day, entries=tuple((at, 9) for at, _ in day.entries))
        for day in FIRST.days
    )
    second = dataclasses.replace(SECOND, days=other_days)
    for calendar in (FIRST, second):
        client.add_header(calendar.header(), NOW)
    parts = [decoded(p) for pair in zip(FIRST.parts(), second.parts(), strict=True) for p in pair]
    assert [client.add_part(part, NOW)[0] for part in parts][-2:] == [CalendarOutcome.COMPLETE] * 2
    assert client.current(NOW) == FIRST
    assert client.current(NOW + HOUR) == second


def test_a_server_publishing_calendars_of_every_type_cannot_grow_a_display_without_bound() -> None:
    """Five calendar types (Wireshark's, Silicon Labs' calendar-client refuses a type past the
    auxiliary load switch calendar INVALID_FIELD) of 16 calendars each (zse's timeline bound;
    Silicon Labs' calendar-client holds 2 by default)."""
    client = Calendars()
    for number in range(1000):
        header = dataclasses.replace(
            tou_calendar(issuer_calendar_id=number, issuer_event_id=number).header(),
            start_time=NOW + number,
            calendar_type=number % 256,
            number_of_seasons=0,
            number_of_week_profiles=0,
            number_of_day_profiles=0,
        )
        client.add_header(header, NOW)
    assert len(client) <= 5 * 16
    assert client.pending() <= client.pending_limit
    unknown = dataclasses.replace(FIRST.header(), calendar_type=5)
    assert client.add_header(unknown, NOW)[0] is CalendarOutcome.INCONSISTENT
    unknown = dataclasses.replace(FIRST.header(), calendar_time_reference=3)
    assert client.add_header(unknown, NOW)[0] is CalendarOutcome.INCONSISTENT


def _ids(sends: Any) -> list[tuple[int, int]]:
    """(Issuer Calendar ID, command id) of each send, decoded."""
    found = []
    for send in sends:
        command, _ = decode_command(Calendar, send.command_id, send.payload, from_server=True)
        found.append((int(command.issuer_calendar_id), send.command_id))
    return found


def test_get_calendar_and_get_day_profiles_answer_both_calendars_sharing_an_event_id() -> None:
    server = CalendarServerProtocol()
    for calendar in (FIRST, SECOND):
        server.publish(calendar, NOW)
    every = get(
        "get_calendar",
        earliest_start_time=0,
        min_issuer_event_id=300,
        number_of_calendars=0,
        calendar_type=0,
        provider_id=5,
    )
    assert [ids for ids, _ in _ids(ask_frame(server, every))] == [40, 41]
    for calendar_id in (40, 41):
        days = get(
            "get_day_profiles",
            provider_id=5,
            issuer_calendar_id=calendar_id,
            start_day_id=1,
            number_of_days=0,
        )
        assert {ids for ids, _ in _ids(ask_frame(server, days))} == {calendar_id}
    client = display()
    deliver(client, ask_frame(server, every))
    for _ in range(2):
        deliver(
            client, tuple(s for a in client.ask_missing(SERVER, NOW) for s in ask(server, a).sends)
        )
    assert named(client.calendars) == [(40, 300), (41, 300)]


# --- the server's store ---------------------------------------------------------------------

START = NOW


async def _server(store: Store) -> CalendarServer:
    server = CalendarServer(Port(9), clock=lambda: START, store=store)
    await server.start()
    return server


async def _after_restart(path: Path) -> tuple[list[tuple[int, int]], list[str]]:
    """What a new server holds from the store at ``path``, and the keys its store then has."""
    async with await Store.open(path) as store:
        server = await _server(store)
        return named(server.calendars), sorted(await store.load(server.namespace))


async def test_the_store_keeps_each_calendar_once_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "esi.db"
    newer_issue = tou_calendar(issuer_event_id=301, start_time=NOW + 2 * HOUR)
    async with await Store.open(path) as store:
        server = await _server(store)
        overlapped = tou_calendar(issuer_calendar_id=39, issuer_event_id=100, start_time=NOW + HOUR)
        for calendar in (overlapped, SECOND, FIRST, newer_issue):
            await server.publish(calendar)
        served = named(server.calendars)
        stored = sorted(await store.load(server.namespace))
    # SECOND not replaced by FIRST (one event id), FIRST by its newer issue (one record); the
    # overlapped calendar's record deleted with the publication that superseded it
    assert served == [(41, 300), (40, 301)]
    assert stored == ["0/5/40", "0/5/41"]
    assert await _after_restart(path) == (served, ["0/5/40", "0/5/41"])


async def test_records_stored_before_the_fix_load_and_the_superseded_one_is_deleted(
    tmp_path: Path,
) -> None:
    """Records as zse stored them before (one per type, provider and Issuer Calendar ID, the
    record's shape unchanged): both calendars sharing an event id load (one was lost), and
    the record of a calendar a newer one overlaps is deleted at the start (it was loaded
    and served from its start on)."""
    path = tmp_path / "esi.db"
    overlapped = tou_calendar(issuer_calendar_id=39, issuer_event_id=100, start_time=NOW + HOUR)
    async with await Store.open(path) as store:
        batch = Batch()
        for calendar in (overlapped, FIRST, SECOND):
            key = f"0/5/{calendar.issuer_calendar_id}"
            batch.put("calendar.server/9", key, calendar_record(calendar))
        await store.commit(batch)
    assert await _after_restart(path) == ([(40, 300), (41, 300)], ["0/5/40", "0/5/41"])


def ask_frame(server: CalendarServerProtocol, message: Any) -> tuple[Any, ...]:
    """The sends answering ``message``."""
    return _step(server, message, lambda: NOW).sends


async def test_a_calendar_the_server_would_not_hold_is_refused_before_anything(
    tmp_path: Path,
) -> None:
    """An application publishing an older issue of a calendar held, or a calendar a newer one
    of its type overlaps: ValueError, nothing stored or sent (it was sent, to displays, as a
    calendar the server then did not answer Get Calendar with)."""
    async with await Store.open(tmp_path / "esi.db") as store:
        server = await _server(store)
        newer = tou_calendar(issuer_event_id=301, start_time=NOW + HOUR)
        await server.publish(newer, dst=0xFFFF)
        sent = list(server.endpoint.sent)
        older_issue = tou_calendar(issuer_event_id=300, start_time=NOW + HOUR)
        overlapped = tou_calendar(issuer_calendar_id=39, issuer_event_id=100, start_time=NOW + HOUR)
        for refused in (older_issue, overlapped):
            with pytest.raises(ValueError, match=r"would not be held"):
                await server.publish(refused, dst=0xFFFF)
        assert server.endpoint.sent == sent
        assert named(server.calendars) == [(40, 301)]
        assert sorted(await store.load(server.namespace)) == ["0/5/40"]


async def test_two_publications_at_once_send_only_what_the_server_holds(tmp_path: Path) -> None:
    """A calendar published while a newer one that overlaps it is being stored is refused as
    it would be after (it was stored and sent to displays, the server not holding it)."""
    async with await Store.open(tmp_path / "esi.db") as store:
        server = await _server(store)
        newer = tou_calendar(issuer_calendar_id=41, issuer_event_id=400, start_time=NOW)
        older = tou_calendar(issuer_calendar_id=40, issuer_event_id=300, start_time=NOW + HOUR)
        outcomes = await asyncio.gather(
            server.publish(newer, dst=0xFFFF),
            server.publish(older, dst=0xFFFF),
            return_exceptions=True,
        )
        assert outcomes[0] is None
        assert isinstance(outcomes[1], ValueError)
        sent = {
            int(decode_command(Calendar, command, payload, from_server=True)[0].issuer_calendar_id)
            for _, command, payload in server.endpoint.sent
        }
        assert sent == {41}
        assert named(server.calendars) == [(41, 400)]
        assert sorted(await store.load(server.namespace)) == ["0/5/41"]


async def test_a_calendar_superseded_then_left_alone_does_not_come_back_at_a_restart(
    tmp_path: Path,
) -> None:
    """A calendar over (the next of its type began) stays over when that next one is
    cancelled, or moves to another calendar type: its record goes too (it came back in force
    at the restart)."""
    clock = [NOW]
    path = tmp_path / "esi.db"
    over = tou_calendar(issuer_calendar_id=41, issuer_event_id=300, start_time=NOW)
    following = tou_calendar(issuer_calendar_id=40, issuer_event_id=300, start_time=NOW + HOUR)
    for change in ("cancel", "retype"):
        path.unlink(missing_ok=True)
        clock[0] = NOW
        async with await Store.open(path) as store:
            server = CalendarServer(Port(9), clock=lambda: clock[0], store=store)
            await server.start()
            for calendar in (over, following):
                await server.publish(calendar)
            clock[0] = NOW + 2 * HOUR
            assert server.calendars.held(clock[0]) == [following]  # the first is over
            if change == "cancel":
                await server.cancel(CalendarCancellation(**CANCEL_40))
            else:
                await server.publish(dataclasses.replace(following, calendar_type=1))
            held = server.calendars.held(clock[0])
        async with await Store.open(path) as store:
            again = CalendarServer(Port(9), clock=lambda: clock[0], store=store)
            await again.start()
            assert again.calendars.held(clock[0]) == held, change


CANCEL_40 = {"provider_id": 5, "issuer_calendar_id": 40, "calendar_type": 0}


async def test_a_changed_issue_the_server_would_not_hold_is_refused(tmp_path: Path) -> None:
    """The same issue of a held calendar moved to a start a newer calendar overlaps: not held
    (the one held stays), so refused; it was stored over the held one's record, which was
    then lost at the restart."""
    first = tou_calendar(issuer_event_id=300, start_time=NOW)
    moved = tou_calendar(issuer_event_id=300, start_time=NOW + HOUR)
    newer = tou_calendar(issuer_calendar_id=41, issuer_event_id=301, start_time=NOW + HOUR)
    assert holding(first, newer).displaced(moved, NOW) == (False, [])
    path = tmp_path / "esi.db"
    async with await Store.open(path) as store:
        server = await _server(store)
        for calendar in (first, newer):
            await server.publish(calendar)
        with pytest.raises(ValueError, match=r"would not be held"):
            await server.publish(moved)
    assert await _after_restart(path) == ([(40, 300), (41, 301)], ["0/5/40", "0/5/41"])
