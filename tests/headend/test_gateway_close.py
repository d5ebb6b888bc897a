"""A gateway link closed while deliveries wait for the broker (away): no publication task is
left behind, and no delivery is lost (its job is tried again with the same key)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.mqtt.broker import free_port
from zse.headend.core import Outcome, SendKind
from zse.headend.gateway import GatewayLink
from zse.headend.link import Delivery, MeterUnreachable
from zse.headend.queue import open_queue
from zse.headend.worker import Worker
from zse.mqtt.core import parse_settings

DEVICE, METER = "000D6F0000000002", "00:0d:6f:00:00:00:00:01"
PAYLOAD = {"message_id": 1, "message": "hi"}


def _away(timeout: float) -> GatewayLink:
    """A link to a broker that is not there (nothing listens on its port)."""
    settings = parse_settings({"url": f"mqtt://127.0.0.1:{free_port()}", "client_id": "w1"})
    return GatewayLink(settings, timeout=timeout)


def _others() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


async def _turns(count: int = 5) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_close_ends_the_publications_and_answers_their_callers() -> None:
    """Was: each delivery made while the broker was away (one per turn of the loop) left a
    publication task waiting for the connection that ``close()`` did not cancel, and its
    caller waited for its timeout. Now none is left and the callers are answered at once."""
    link = _away(timeout=5.0)
    await link.start()
    deliveries = []
    for key in range(3):  # three claims: three publications
        delivery = Delivery(
            key=f"k{key}", meter=METER, device=DEVICE, kind=SendKind.MESSAGE, payload=PAYLOAD
        )
        deliveries.append(asyncio.get_running_loop().create_task(link.deliver(delivery)))
        await _turns()
    loop = asyncio.get_running_loop()
    closed = loop.time()
    await link.close()
    answers = await asyncio.gather(*deliveries, return_exceptions=True)
    assert loop.time() - closed < 1.0  # not their timeout
    assert all(isinstance(a, MeterUnreachable) and "link closed" in str(a) for a in answers)
    assert _others() == set()


async def test_worker_stop_and_close_leave_no_task_and_lose_no_job(tmp_path: Path) -> None:
    """Was: a worker stopped, and its link closed, while a delivery waited for the broker
    left the link's publication task pending. Now nothing is left, and the job comes back
    at its lease's end with the same idempotency key (not lost, not sent twice)."""
    queue = await open_queue(tmp_path / "queue.sqlite")
    try:
        link = _away(timeout=5.0)
        worker = Worker(queue, link, owner="w1", poll=0.05, lease=30.0)
        await link.start()
        await queue.enqueue(1, SendKind.MESSAGE, PAYLOAD, [(DEVICE, METER)], now=0.0)
        await worker.start()
        async with asyncio.timeout(10):
            while [row.state for row in await queue.rows()] != ["leased"]:
                await asyncio.sleep(0.01)
        await _turns()
        await worker.stop()
        await link.close()
        assert _others() == set()
        [row] = await queue.rows()
        assert (row.outcome, row.state) == (Outcome.PENDING, "leased")
        [job] = await queue.claim("w2", now=worker.now() + 31.0, lease=30.0, limit=5)
        assert job.key == f"zse-headend:1:{DEVICE}:0"
    finally:
        await queue.close()
