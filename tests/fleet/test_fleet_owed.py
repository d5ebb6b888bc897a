"""What the headend's API owes after a stop, on both engines (audit: persistence #1, #2).

A cancel is recorded in the API's store before the queue's jobs are cancelled and the Cancel
commands queued: an API stopped in between delivered the cancelled send, never queued a
Cancel, and refused a repeated cancel (409, "already cancelled"). A de-provisioned device's
outcome stayed ``pending`` in the API's records: once the worker's purge had deleted its
job, the next start enqueued it again and a worker delivered the old send to the device.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from zse.headend.control import Control
from zse.headend.core import Outcome
from zse.headend.directory import GatewayMeters
from zse.headend.link import Lifecycle
from zse.headend.queue import NOT_SENT_DEPROVISIONED, JobQueue, open_queue
from zse.headend.run import queue_location
from zse.headend.service import QUEUE_READER, Headend
from zse.headend.store import HeadendStore
from zse.provisioning import LifecycleState
from zse.store import Store

A = "retailer-a"
MAC = "000D6F0000000001"
REGISTRATION = {
    "mac": "00:0d:6f:00:00:00:00:01",
    "install_code": "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5",
    "meter": "m1",
    "device_type": "in-home display",
}


@asynccontextmanager
async def _api(database: Any) -> AsyncIterator[Headend]:
    """The headend's API over gateway ``m1`` (no worker: the jobs stay in the queue)."""
    store = await Store.open(database)
    queue = await open_queue(queue_location(database))
    control = await Control.open(queue)
    loop = asyncio.get_running_loop()
    directory = GatewayMeters(["m1"], control, meter_time=lambda: 100, clock=loop.time)
    headend = Headend(directory, await HeadendStore.open(store), clock=lambda: 100, queue=queue)
    await headend.start()
    try:
        yield headend
    finally:
        await headend.close()
        await queue.close()
        await store.close()


async def _message(headend: Headend) -> int:
    await headend.put_group(A, {"name": "g", "meters": ["m1"]})
    await headend.register(A, REGISTRATION)
    sent = await headend.send_message(A, {"group": "g", "text": "cancel me"})
    return int(sent["id"])


async def _control_kinds(queue: JobQueue) -> list[str]:
    async with queue.transaction("look") as db:
        rows = await db.fetch("SELECT kind FROM headend_control ORDER BY kind")
    return [str(r[0]) for r in rows]


async def _cancel_cut_short(headend: Headend, send_id: int) -> None:
    """What a cancel leaves when the API stops right after its first step."""
    await headend.records.cancel_send(headend.records.sends[send_id])


async def test_a_cancel_cut_short_is_carried_out_at_the_next_start(place: Any) -> None:
    database = place("headend.sqlite")
    async with _api(database) as headend:
        send_id = await _message(headend)
        await _cancel_cut_short(headend, send_id)
    async with _api(database) as headend:
        assert headend.queue is not None
        (row,) = await headend.queue.rows(send_id)
        assert (row.outcome, row.state) == (Outcome.CANCELLED, "sent")  # not delivered
        # never sent: withdrawn, no Cancel on the air
        assert await _control_kinds(headend.queue) == ["provision"]
        view = headend.send(A, send_id)
        assert view["outcomes"][0]["detail"] == "cancelled before it was sent"
        assert view["cancelled"]
        assert [o["outcome"] for o in view["outcomes"]] == ["cancelled"]


async def test_a_cancel_cut_short_asked_again_is_carried_out(place: Any) -> None:
    database = place("headend.sqlite")
    async with _api(database) as headend:
        send_id = await _message(headend)
        await _cancel_cut_short(headend, send_id)
        assert headend.queue is not None
        view = await headend.cancel(A, send_id)  # not 409: the cancel is still owed
        assert [o["outcome"] for o in view["outcomes"]] == ["cancelled"]
        (row,) = await headend.queue.rows(send_id)
        assert (row.outcome, row.state) == (Outcome.CANCELLED, "sent")
        # never sent: withdrawn, no Cancel on the air
        assert await _control_kinds(headend.queue) == ["provision"]
        assert view["outcomes"][0]["detail"] == "cancelled before it was sent"


async def test_a_deprovisioned_device_gets_no_old_send_after_a_purge_and_a_restart(
    place: Any,
) -> None:
    database = place("headend.sqlite")
    async with _api(database) as headend:
        send_id = await _message(headend)
        assert headend.queue is not None
        change = Lifecycle(
            meter="m1",
            device=REGISTRATION["mac"],
            event="provision",
            from_state=LifecycleState.NEW,
            to_state=LifecycleState.PENDING_PROVISIONING,
            detail="",
            time=100,
        )
        assert await Control(headend.queue).record(change, now=1.0)
        await headend.directory.refresh()
        await headend.deprovision(A, MAC)
        (outcome,) = headend.send(A, send_id)["outcomes"]
        assert (outcome["outcome"], outcome["detail"]) == ("skipped", NOT_SENT_DEPROVISIONED)
    # the worker's purge, once the API has read everything (the API stopped: its reads, woken
    # by the de-provisioning's notification on PostgreSQL, would otherwise mark where it read)
    queue = await open_queue(queue_location(database))
    try:
        await queue.mark_read(QUEUE_READER, 10.0**9)
        assert await queue.purge(before=10.0**9) == 1
    finally:
        await queue.close()
    async with _api(database) as headend:
        assert headend.queue is not None
        assert await headend.queue.rows(send_id) == []  # not enqueued again
        assert await headend.queue.claim("w", now=10.0**9, lease=60.0) == []
