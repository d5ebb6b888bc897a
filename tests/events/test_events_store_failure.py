"""The ESI's event logs (SE 1.2 D.11) when a store write fails: the log whose write failed is
written with the next commit, so that what a HAN device was served is what a restart finds.
Real components (the simulator's SE endpoint, a SQLite store), virtual time."""

from __future__ import annotations

import asyncio

import pytest

from tests.prepayment.test_prepayment_service import han
from zse.devmgmt.core import EventConfigurations
from zse.errors import StoreError
from zse.events.core import DEFAULT_CONFIGURATION, EventId
from zse.events.service import EventsServer
from zse.store import Batch, Store


class FailingStore(Store):
    """A store whose next commit fails (a full disk) when ``fail_next`` is set; after
    ``let_through`` more commits when that is set too (a store failing now and then: a
    database connection lost between two commits)."""

    fail_next = False
    let_through = 0

    async def commit(self, batch: Batch) -> list[int]:
        if self.fail_next and self.let_through:
            self.let_through -= 1
        elif self.fail_next:
            self.fail_next = False
            raise StoreError("disk full")
        return await super().commit(batch)


async def test_a_log_whose_write_failed_is_written_with_the_next_commit(tmp_path) -> None:
    se, _, clock, _ = await han(seed=31)
    store = await FailingStore.open(tmp_path / "esi.db")
    try:
        configured = EventConfigurations(DEFAULT_CONFIGURATION)
        server = EventsServer(se, clock=clock, store=store, configurations=configured)
        await server.start()
        await server.record(EventId.UPDATE_SITE_ID_ACTIONED)  # general event log
        store.fail_next = True
        with pytest.raises(StoreError):  # the caller is told; the event is in the HAN's log
            await server.record(EventId.UPDATE_CIN_ACTIONED)
        served = server.log.matching()
        assert [e.event_id for e in served] == [
            EventId.UPDATE_CIN_ACTIONED,
            EventId.UPDATE_SITE_ID_ACTIONED,
        ]
        await server.record(EventId.CHANGE_PASSWORD_ACTIONED)  # the next commit: another log
        served = server.log.matching()
        assert len(served) == 3
        restarted = EventsServer(se, clock=clock, store=store, configurations=configured)
        await restarted.start()
        assert restarted.log.matching() == served
    finally:
        await Store.close(store)


class CommitWaits(Store):
    """A store whose next commit waits (a slow disk, writers ahead of it) until its caller
    is cancelled, when ``wait_next`` is set: it is never begun."""

    wait_next = False

    def waits(self, batch: Batch) -> bool:
        """Whether ``batch`` is the one to wait (any, here)."""
        return True

    async def commit(self, batch: Batch) -> list[int]:
        if self.wait_next and self.waits(batch):
            self.wait_next = False
            await asyncio.get_running_loop().create_future()  # until cancelled
        return await super().commit(batch)


async def test_an_event_whose_write_was_cancelled_is_written_with_the_next_commit(
    tmp_path,
) -> None:
    """Logged, served, then its write cancelled before it began (the caller's task, a stop):
    it was left out of every later commit (the log's change forgotten), so a restart lost
    it. As for a write that fails, it is written with the next commit."""
    se, _, clock, _ = await han(seed=32)
    store = await CommitWaits.open(tmp_path / "esi.db")
    try:
        configured = EventConfigurations(DEFAULT_CONFIGURATION)
        server = EventsServer(se, clock=clock, store=store, configurations=configured)
        await server.start()
        store.wait_next = True
        logging = asyncio.ensure_future(server.record(EventId.UPDATE_SITE_ID_ACTIONED))
        await asyncio.sleep(1)
        logging.cancel()
        with pytest.raises(asyncio.CancelledError):
            await logging
        await server.record(EventId.CHANGE_PASSWORD_ACTIONED)  # another log's commit
        served = server.log.matching()
        assert len(served) == 2
        restarted = EventsServer(se, clock=clock, store=store, configurations=configured)
        await restarted.start()
        assert restarted.log.matching() == served
    finally:
        await Store.close(store)
