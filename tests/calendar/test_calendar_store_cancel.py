"""The ESI's Calendar server holds what its store holds when a write is cancelled (the
caller's task, a stop): a calendar published or cancelled is made once stored, so a write
cancelled before its transaction changes nothing, and one cancelled during it, which the store
carries out (:attr:`zse.store.Batch.landed`), is made. The change was made first: a calendar
whose write was cancelled was served (and followed by the prepay account), and a cancelled
one forgotten, though the restart found the store as it was."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from tests.calendar.tou import tou_calendar
from tests.events.test_events_store_failure import CommitWaits
from tests.services.test_start_order import Port
from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from zse.calendar import CalendarCancellation
from zse.calendar.service import CalendarServer, CalendarStored
from zse.store import Store

START = 800_000_000
CANCELLATION = CalendarCancellation(provider_id=5, issuer_calendar_id=40, calendar_type=0)


class CalendarSlow(TransactionSlow):
    key = "0/5/40"


async def started(store: Store) -> CalendarServer:
    server = CalendarServer(Port(9), clock=lambda: START, store=store)
    await server.start()
    return server


async def held(path: Path) -> list[int]:
    """The issuer calendar ids a new server loads from the store at ``path``."""
    async with await Store.open(path) as store:
        server = await started(store)
        return [c.issuer_calendar_id for c in server.calendars.held(START)]


async def cancelled_while_it_waits(store: CommitWaits, change: asyncio.Future[None]) -> None:
    """``change``, cancelled while its write waits (never begun)."""
    store.wait_next = True
    await asyncio.sleep(1)
    change.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await change


@pytest.mark.parametrize("cancel", [False, True], ids=["publish", "cancel"])
@pytest.mark.parametrize("during", [False, True], ids=["before-its-transaction", "during-it"])
async def test_a_change_whose_write_is_cancelled_is_made_only_as_stored(
    tmp_path: Path, cancel: bool, during: bool
) -> None:
    """Cancelled before its transaction: not made; during it (carried out): made, and told
    to the listeners (the prepay account followed it only after a restart)."""
    path = tmp_path / "esi.db"
    async with await (CalendarSlow if during else CommitWaits).open(path) as store:
        server = await started(store)
        if cancel:
            await server.publish(tou_calendar())
        told: list[CalendarStored] = []
        server.on_event(told.append)
        change = server.cancel(CANCELLATION) if cancel else server.publish(tou_calendar())
        if isinstance(store, CalendarSlow):
            await cancelled_in_its_transaction(store, change)
        else:
            assert isinstance(store, CommitWaits)
            await cancelled_while_it_waits(store, asyncio.ensure_future(change))
        served = [c.issuer_calendar_id for c in server.calendars.held(START)]
    assert served == await held(path) == ([40] if cancel != during else [])
    assert told == ([CalendarStored(0, 5, 40, cancelled=cancel)] if during else [])
