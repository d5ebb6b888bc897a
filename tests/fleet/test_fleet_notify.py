"""The API learns the workers' changes without polling on PostgreSQL (LISTEN/NOTIFY, #19
leftovers): a worker's committed outcome or device record wakes the listener; the headend,
polling only every hour here, shows a device's new state at once. SQLite has no
notifications: the headend polls."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.fleet.helpers import until
from zse.headend.control import Control
from zse.headend.core import Outcome, SendKind
from zse.headend.directory import GatewayMeters
from zse.headend.link import Lifecycle
from zse.headend.queue import open_queue
from zse.headend.service import Headend
from zse.headend.store import HeadendStore
from zse.provisioning import LifecycleState
from zse.store import Store

DEVICES = [("000D6F0000000001", "m1")]
REGISTRATION = {
    "mac": "00:0d:6f:00:00:00:00:01",
    "install_code": "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5",
    "meter": "m1",
    "device_type": "in-home display",
}


async def test_a_workers_outcome_wakes_the_listener(pg_place: Any) -> None:
    api = await open_queue(pg_place("queue"))
    worker = await open_queue(pg_place("queue"))
    woken = asyncio.Event()
    close = await api.listen(woken.set)
    assert close is not None
    try:
        await api.enqueue(1, SendKind.LOAD_CONTROL, {"issuer_event_id": 1}, DEVICES, now=0.0)
        (job,) = await worker.claim("w", now=0.0, lease=60.0)
        assert not woken.is_set()  # a claim changes no outcome
        await worker.complete(job, "w", Outcome.DELIVERED, "", now=1.0, answered=True)

        async def heard() -> bool:
            return woken.is_set()

        await until(heard, 10.0)
    finally:
        await close()
        await worker.close()
        await api.close()


async def test_sqlite_has_no_notifications(tmp_path: Path) -> None:
    queue = await open_queue(tmp_path / "queue.sqlite")
    try:
        assert await queue.listen(lambda: None) is None
    finally:
        await queue.close()


async def test_the_headend_shows_a_recorded_state_without_polling(pg_place: Any) -> None:
    database = pg_place("headend")
    store = await Store.open(database)  # first: the schema becomes a zse store
    queue = await open_queue(database)
    others = await open_queue(database)  # a worker's own connection
    control = await Control.open(queue)
    loop = asyncio.get_running_loop()
    directory = GatewayMeters(["m1"], control, meter_time=lambda: 100, clock=loop.time)
    headend = Headend(
        directory, await HeadendStore.open(store), clock=lambda: 100, queue=queue, sync=3600.0
    )
    await headend.start()
    try:
        view = await headend.register("retailer-a", REGISTRATION)
        assert view["state"] == "new"
        await asyncio.sleep(0)  # the follow loop now waits (an hour, or a notification)
        change = Lifecycle(
            meter="m1",
            device=REGISTRATION["mac"],
            event="provision",
            from_state=LifecycleState.NEW,
            to_state=LifecycleState.PENDING_PROVISIONING,
            detail="",
            time=100,
        )
        assert await Control(others).record(change, now=loop.time())

        async def shown() -> bool:
            state = headend.device("retailer-a", REGISTRATION["mac"])["state"]
            return bool(state == "pending provisioning")

        await until(shown, 10.0)
    finally:
        await headend.close()
        await others.close()
        await queue.close()
        await store.close()
