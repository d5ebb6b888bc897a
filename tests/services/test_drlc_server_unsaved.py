"""The ESI's DRLC server: a device's report whose write fails or is cancelled before its
transaction (the handler's task, a stop) is written with the next commit and told then, once
(zse.drlc.service ``DrlcServer._save``). It was left out of every later commit: held in
memory, its device's repeat a duplicate (neither stored nor told), it was lost at the
restart, never told."""

from __future__ import annotations

import asyncio

import pytest

from tests.events.test_events_store_failure import CommitWaits, FailingStore
from tests.services.test_drlc_told import LCD, START, report_frame
from tests.services.test_server_records import event
from tests.services.test_start_order import Port
from tests.services.test_told_in_hand import drlc
from zse.drlc.service import DrlcServer, ReportReceived
from zse.errors import StoreError
from zse.se.ids import DRLC
from zse.store import Store


class ReportWrites(FailingStore, CommitWaits):
    """The DRLC server's store: its next commit fails, or waits until cancelled."""


async def report_not_written(store: ReportWrites, port: Port, how: str) -> None:
    """The device's report "received" (0x01), its write failed or cancelled before its
    transaction."""
    if how == "fails":
        store.fail_next = True
        with pytest.raises(StoreError):
            await port.handlers[DRLC](report_frame(0x01))
        return
    store.wait_next = True
    taking = asyncio.ensure_future(port.handlers[DRLC](report_frame(0x01)))
    await asyncio.sleep(1)
    taking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await taking


@pytest.mark.parametrize("then", ["the device repeats it", "the application publishes"])
@pytest.mark.parametrize("how", ["fails", "cancelled before its transaction"])
async def test_a_report_not_written_is_written_and_told_with_the_next_commit(
    tmp_path, how: str, then: str
) -> None:
    path = tmp_path / "esi.db"
    told: list[ReportReceived] = []
    async with await ReportWrites.open(path) as store:
        assert isinstance(store, ReportWrites)
        port, server = await drlc(store, told.append)
        await report_not_written(store, port, how)
        assert told == []
        expected = [(LCD, 0x01, True)]  # new: told once stored
        if then == "the device repeats it":
            await port.handlers[DRLC](report_frame(0x01))
            expected.append((LCD, 0x01, False))  # a duplicate, told as every one is
        else:
            await server.publish(event(8, START + 120, 30))
        await asyncio.sleep(1)
        assert [(r.device, r.report.event_status, r.new) for r in told] == expected
        assert await store.unreported(server.namespace) == []
        await server.stop()
    async with await Store.open(path) as store:
        again = DrlcServer(Port(9), clock=lambda: START, store=store)
        again.on_event(told.append)
        await again.start()
        assert again.core.view(7)[LCD].status == 0x01
        assert sum(r.new for r in told) == 1  # told once
        await again.stop()
