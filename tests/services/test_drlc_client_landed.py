"""A DRLC client's change whose commit is cancelled once its transaction has begun (the
caller's task, a stop), which the store carries out (:attr:`zse.store.Batch.landed`), is
settled as stored: its reports, journaled, are queued and sent, its actions told, the timer
re-armed. The reports waited for a restart (not in the outbox); the actions were not told
(a device opted out of a running event went on shedding its load). One cancelled before its
transaction began is undone, so it is taken again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.calendar.test_calendar_store_cancel import cancelled_while_it_waits
from tests.events.test_events_store_failure import CommitWaits, FailingStore
from tests.services.test_drlc_client_attributes import publisher, setup
from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from zse.drlc import Status
from zse.drlc.core import ApplyLoadControl, StopLoadControl
from zse.drlc.service import STEP_RETRY, DrlcClient, ReportReceived
from zse.store import Store


class TableSlow(TransactionSlow):
    key = "table"


async def published(
    store: Store, seed: int
) -> tuple[DrlcClient, list[object], list[ReportReceived]]:
    """A device's client on ``store`` that received event 1 (starting in 20 minutes, no
    randomization): the client, the actions it tells and the reports the ESI receives from
    now on."""
    _, server, lcd, clock, boot, _, _ = await setup(
        seed, store=store, start_randomization_minutes=0
    )
    client = await boot()
    told: list[object] = []
    client.on_event(told.append)
    assert await publisher(server, lcd, clock)(1, 0) == [Status.RECEIVED]
    received: list[ReportReceived] = []
    server.on_event(received.append)
    return client, told, received


@pytest.mark.parametrize("during", [True, False], ids=["during-its-transaction", "before-it"])
async def test_an_opt_out_whose_write_is_cancelled_is_reported_and_made_once(
    tmp_path: Path, during: bool
) -> None:
    """Cancelled during its transaction (carried out): reported and made, as stored.
    Cancelled while its write waits (never begun): the store never has it, nor has the
    client now, so the opt-out taken again is reported and made once (before, it stayed
    made in memory, its report neither sent nor kept: the next commit wrote the table
    without it, and the load stayed shed)."""
    async with await (TableSlow if during else CommitWaits).open(tmp_path / "lcd.db") as store:
        client, told, received = await published(store, 83)
        await asyncio.sleep(1200)  # the event runs
        received.clear()
        if isinstance(store, TableSlow):
            await cancelled_in_its_transaction(store, client.opt_out(1))
        else:
            assert isinstance(store, CommitWaits)
            await cancelled_while_it_waits(store, asyncio.ensure_future(client.opt_out(1)))
            assert client.core.snapshot() == await store.get(client.namespace, "table")
            await client.opt_out(1)
        assert [type(action) for action in told] == [ApplyLoadControl, StopLoadControl]
        await asyncio.sleep(60)
        assert [r.report.event_status for r in received] == [Status.OPTED_OUT]
        await client.stop()


async def test_an_event_start_whose_write_fails_is_tried_again_and_made(tmp_path: Path) -> None:
    """The event's start is undone when its write fails (the table as stored), and tried
    again a while later: the load is shed and Event Started reported once the store takes
    it. Undone without a retry, the event waited for the device's next input, which may
    never come: the load never shed."""
    async with await FailingStore.open(tmp_path / "lcd.db") as store:
        client, told, received = await published(store, 84)
        store.fail_next = True
        await asyncio.sleep(1200)  # the start, its write failed
        assert (told, received) == ([], [])
        await asyncio.sleep(STEP_RETRY)
        assert [type(action) for action in told] == [ApplyLoadControl]
        assert [r.report.event_status for r in received] == [Status.STARTED]
        await client.stop()
