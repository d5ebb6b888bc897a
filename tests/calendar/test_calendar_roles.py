"""Time-of-use calendars from the ESI to an in-home display on the simulator (SE 1.2 D.9): the
ESI publishes a two-season TOU calendar with special days, the display puts it together, reads
the tier at several instants in London time (DST included) and is told when it changes; a
display that missed the calendar gets it by asking (Get Calendar, then the parts); Cancel
Calendar takes it away on both sides; the ESI's calendars survive a restart (Store), and a
damaged record is quarantined, never served. Real components, virtual time."""

from __future__ import annotations

import asyncio

from tests.calendar.tou import tou_calendar, utc
from tests.roles.han_builder import EUIS, close
from tests.roles.test_roles_esi_registry import joined_han
from zse.calendar import CalendarCancellation
from zse.calendar.protocol import CalendarCancelled, CalendarChanged, CalendarReceived
from zse.calendar.service import CalendarServer
from zse.roles.esi import CalendarCancelSent, CalendarSent
from zse.store import Batch, Store

#: The simulator starts on 2025-05-08 06:13:20 UTC (07:13 BST, a Thursday in the summer season).


def told(han, kind: type) -> list:
    return [e for e in han.device_events["ihd"] if isinstance(e, kind)]


async def test_the_esi_publishes_a_tou_calendar_the_display_reads_in_london_time(tmp_path) -> None:
    han = await joined_han(tmp_path, names=("ihd",), time_zone="Europe/London")
    esi, ihd = han.esi, han.devices["ihd"]
    ihd.use_time(await ihd.read_time())  # BST until 26 October 2025
    calendar = tou_calendar()
    result = await esi.publish_calendar(calendar, device=EUIS["ihd"])
    assert result.delivered == [EUIS["ihd"]]
    await asyncio.sleep(2)
    (received,) = told(han, CalendarReceived)
    assert received.calendar.days == calendar.days
    assert received.calendar.special_days == calendar.special_days
    assert any(isinstance(e, CalendarSent) for e in han.events)
    for instant, tier in (
        (utc(2025, 5, 9, 5, 30), 1),  # Friday 06:30 BST: night
        (utc(2025, 5, 9, 6, 30), 2),  # 07:30 BST: day (06:30 GMT would still be night)
        (utc(2025, 5, 10, 12), 1),  # Saturday
        (utc(2025, 11, 12, 17), 3),  # winter weekday peak, GMT
        (utc(2025, 12, 25, 17), 1),  # Christmas Day: off-peak all day
    ):
        reading = ihd.calendar_at(instant)
        assert reading is not None
        assert reading.price_tier == tier, instant
    reading = ihd.calendar_at(utc(2025, 5, 9, 5, 30))
    assert reading is not None
    assert reading.changes_at == utc(2025, 5, 9, 6)
    # the tier changes at 23:00 and 07:00 BST: the display is told, at those instants
    await asyncio.sleep(utc(2025, 5, 9, 6) - han.clock() + 1)
    changed = told(han, CalendarChanged)
    assert [(c.reading.price_tier, c.at) for c in changed[1:]] == [
        (1, utc(2025, 5, 8, 22)),  # 23:00 BST: night
        (2, utc(2025, 5, 9, 6)),  # 07:00 BST: day
    ]
    assert changed[0].reading.price_tier == 2  # as the calendar arrived, Thursday morning
    await close(han)


async def test_a_display_that_missed_the_calendar_asks_and_cancel_removes_it(tmp_path) -> None:
    han = await joined_han(tmp_path, names=("ihd",))
    esi, ihd = han.esi, han.devices["ihd"]
    await esi.calendar.publish(tou_calendar())  # recorded only: sent to nobody
    await ihd.resync()  # Get Calendar; the parts are asked for once the answers settle
    await asyncio.sleep(10)
    (received,) = told(han, CalendarReceived)
    assert received.calendar.special_days == tou_calendar().special_days
    assert ihd.calendar_at() is not None
    cancellation = CalendarCancellation(provider_id=5, issuer_calendar_id=40, calendar_type=0)
    result = await esi.cancel_calendar(cancellation, device=EUIS["ihd"])
    assert result.delivered == [EUIS["ihd"]]
    await asyncio.sleep(2)
    assert [e.held for e in told(han, CalendarCancelled)] == [True]
    assert ihd.calendar_at() is None
    assert esi.calendar.calendars.held(han.clock()) == []
    assert any(isinstance(e, CalendarCancelSent) for e in han.events)
    await close(han)


async def test_the_esi_keeps_its_calendars_across_a_restart(tmp_path) -> None:
    """Published, then read back from the database by a new server (what a restart after a
    kill -9 loads: the record is committed before the calendar is sent); a damaged record
    is quarantined and the rest served."""
    han = await joined_han(tmp_path, names=())
    esi = han.esi
    calendar = tou_calendar()
    await esi.publish_calendar(calendar, broadcast=True)
    credit = tou_calendar(calendar_type=3, issuer_calendar_id=41)
    await esi.calendar.publish(credit)
    namespace = esi.calendar.namespace
    await close(han)  # the ESI stops; its database file stays
    store = await Store.open(tmp_path / "han.db")
    try:
        damaged = {"provider_id": 5, "issuer_event_id": "three hundred"}
        await store.commit(Batch().put(namespace, "0/5/99", damaged))
        again = CalendarServer(esi.endpoint, clock=han.clock, store=store, namespace=namespace)
        await again.start()
        now = han.clock()
        held = again.calendars.held(now)
        assert [(c.calendar_type, c.issuer_calendar_id) for c in held] == [(0, 40), (3, 41)]
        assert held[0].days == calendar.days
        assert held[0].start_time > 0  # its start "now" kept as the instant it was published
        quarantined = await store.quarantined(namespace)
        assert [q.key for q in quarantined] == ["0/5/99"]
        assert len(again.calendars) == 2  # the damaged one is not served
    finally:
        await store.close()
