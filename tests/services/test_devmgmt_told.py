"""A HAN device's Device Management client tells what it applies at its time once: an event
configuration (or a change of tenancy / supplier) whose commit a stop cancelled during its
transaction, which the store carries out (:attr:`zse.store.Batch.landed`), is told then. It
was stored as applied and never told: the application never had it, before or after the
restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from tests.devmgmt.test_devmgmt_protocol import NOW
from tests.devmgmt.test_devmgmt_start_time import HOUR, DmPort, set_at
from tests.events.test_events_store_failure import CommitWaits, FailingStore
from tests.services.test_supply_told import (
    TransactionSlow,
    slow_next,
    stopped_in_its_transaction,
)
from zse.devmgmt.core import CustomerId, EventConfigurations, SiteId
from zse.devmgmt.protocol import EventConfigurationChanged
from zse.devmgmt.service import STEP_RETRY, DeviceManagementClient, DeviceManagementServer
from zse.se.ids import DEVICE_MANAGEMENT_CLUSTER
from zse.store import Store

SITE = SiteId(issuer_event_id=1, provider_id=5, site_id="2000012345678")
CIN = CustomerId(issuer_event_id=2, provider_id=5, cin="C-42")


class WaitingSlow(TransactionSlow):
    key = "event_configuration/waiting"


def client(
    store: Store, now: list[int], clock: Callable[[], int] | None = None
) -> DeviceManagementClient:
    """The IHD's client on ``store`` at ``now[0]`` (or on ``clock``)."""
    return DeviceManagementClient(
        DmPort(1),
        server_ep=1,
        clock=clock or (lambda: now[0]),
        configurations=EventConfigurations({0x0300: 0x00}),
        store=store,
    )


async def restarted_tells_nothing(
    path: Path, now: list[int], told: list[EventConfigurationChanged]
) -> None:
    """The client restarted on the store at ``path``: nothing waits, and it tells nothing
    more than ``told`` holds already (one configuration applied, told once)."""
    async with await Store.open(path) as store:
        last = client(store, now)
        last.on_event(told.append)
        await last.start()
        assert last.protocol.waiting == []
        await last.stop()
    assert len(told) == 1  # once


async def test_a_configuration_applied_as_a_stop_cancels_its_write_is_told(
    tmp_path: Path,
) -> None:
    path, now = tmp_path / "ihd.db", [NOW]
    async with await Store.open(path) as store:
        first = client(store, now)
        await first.start()
        await first.endpoint.handlers[DEVICE_MANAGEMENT_CLUSTER](set_at(NOW + HOUR, 7))
        await first.stop()
    now[0] = NOW + 2 * HOUR  # due at the next start
    told: list[EventConfigurationChanged] = []
    async with await WaitingSlow.open(path) as store:
        assert isinstance(store, WaitingSlow)
        again = client(store, now)
        again.on_event(told.append)
        slow_next(store)
        await again.start()
        await stopped_in_its_transaction(store, again.stop, armed=True)  # applied at start
    assert [(e.issuer_event_id, e.configuration) for e in told] == [(7, 0x13)]
    await restarted_tells_nothing(path, now, told)


async def test_a_configuration_due_whose_write_fails_is_put_back_and_applied_later(
    tmp_path: Path,
) -> None:
    """An event configuration due at its time whose write fails: put back as stored (still
    waiting, the table unchanged, nothing told) and applied STEP_RETRY seconds later, told
    once. It was kept applied in memory, never told nor stored, never taken again: the next
    restart applied and told it."""
    path, now = tmp_path / "ihd.db", [NOW]
    loop = asyncio.get_running_loop()
    began = loop.time()
    told: list[EventConfigurationChanged] = []
    async with await FailingStore.open(path) as store:
        assert isinstance(store, FailingStore)
        ihd = client(store, now, lambda: NOW + int(loop.time() - began))
        ihd.on_event(told.append)
        await ihd.start()
        await ihd.endpoint.handlers[DEVICE_MANAGEMENT_CLUSTER](set_at(NOW + HOUR, 7))
        store.fail_next = True
        await asyncio.sleep(HOUR + 1)  # due, its write failed
        waiting = [w.issuer_event_id for w in ihd.protocol.waiting]
        assert (told, waiting, ihd.protocol.configurations.get(0x0300)) == ([], [7], 0x00)
        await asyncio.sleep(STEP_RETRY)
        assert [(e.issuer_event_id, e.configuration) for e in told] == [(7, 0x13)]
        assert (ihd.protocol.waiting, ihd.protocol.configurations.get(0x0300)) == ([], 0x13)
        await ihd.stop()
    now[0] = NOW + 2 * HOUR
    await restarted_tells_nothing(path, now, told)


async def test_a_publication_whose_write_was_cancelled_is_written_with_the_next_commit(
    tmp_path: Path,
) -> None:
    """The ESI's Update SiteID, its write cancelled before it began (the caller's task, a
    stop): held and served, so written with the next commit (it was left out of every later
    one: a restart lost it), as for a write that fails."""
    path = tmp_path / "esi.db"
    async with await CommitWaits.open(path) as store:
        assert isinstance(store, CommitWaits)
        server = DeviceManagementServer(DmPort(1), clock=lambda: NOW, store=store)
        await server.start()
        store.wait_next = True
        publish = asyncio.ensure_future(server.publish(SITE))
        await asyncio.sleep(1)
        publish.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publish
        await server.publish(CIN)
        served = server.published.to_records()
        await server.stop()
    async with await Store.open(path) as store:
        again = DeviceManagementServer(DmPort(1), clock=lambda: NOW, store=store)
        await again.start()
        assert again.published.to_records() == served
        assert sorted(served) == ["cin", "site_id"]
        await again.stop()
