"""A DRLC client's change whose commit is cancelled once its transaction has begun (the
caller's task, a stop), which the store carries out (:attr:`zse.store.Batch.landed`), is
settled as stored: its reports, journaled, are queued and sent, its actions told, the timer
re-armed. The reports waited for a restart (not in the outbox); the actions were not told
(a device opted out of a running event went on shedding its load)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.events.test_events_store_failure import CommitWaits
from tests.services.test_drlc_client_attributes import publisher, setup
from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from zse.drlc import Status
from zse.drlc.core import ApplyLoadControl, StopLoadControl
from zse.drlc.service import ReportReceived


class TableSlow(TransactionSlow):
    key = "table"


async def test_an_opt_out_cancelled_during_its_transaction_is_reported_and_made(
    tmp_path: Path,
) -> None:
    async with await TableSlow.open(tmp_path / "lcd.db") as store:
        assert isinstance(store, TableSlow)
        _, server, lcd, clock, boot, _, _ = await setup(
            83, store=store, start_randomization_minutes=0
        )
        client = await boot()
        told: list[object] = []
        client.on_event(told.append)
        assert await publisher(server, lcd, clock)(1, 0) == [Status.RECEIVED]
        await asyncio.sleep(1200)  # the event runs
        received: list[ReportReceived] = []
        server.on_event(received.append)
        await cancelled_in_its_transaction(store, client.opt_out(1))
        assert [type(action) for action in told] == [ApplyLoadControl, StopLoadControl]
        await asyncio.sleep(60)
        assert [r.report.event_status for r in received] == [Status.OPTED_OUT]
        await client.stop()


async def test_an_opt_out_cancelled_before_its_transaction_is_undone(tmp_path: Path) -> None:
    """The opt-out's write is cancelled while it waits (a slow disk, the caller's task): the
    store never has it, nor has the client now, so the opt-out taken again is reported and
    made once (before, it stayed made in memory, its report neither sent nor kept: the next
    commit wrote the table without it, and the load stayed shed)."""
    async with await CommitWaits.open(tmp_path / "lcd.db") as store:
        assert isinstance(store, CommitWaits)
        _, server, lcd, clock, boot, _, _ = await setup(
            84, store=store, start_randomization_minutes=0
        )
        client = await boot()
        told: list[object] = []
        client.on_event(told.append)
        assert await publisher(server, lcd, clock)(1, 0) == [Status.RECEIVED]
        await asyncio.sleep(1200)  # the event runs
        received: list[ReportReceived] = []
        server.on_event(received.append)
        store.wait_next = True
        opting = asyncio.ensure_future(client.opt_out(1))
        await asyncio.sleep(1)
        opting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opting
        assert client.core.snapshot() == await store.get(client.namespace, "table")
        await client.opt_out(1)
        assert [type(action) for action in told] == [ApplyLoadControl, StopLoadControl]
        await asyncio.sleep(60)
        assert [r.report.event_status for r in received] == [Status.OPTED_OUT]
        await client.stop()
