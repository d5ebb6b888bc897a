"""A device de-provisioned while its delivery is leased to a worker that then dies gets
nothing (found by a hostile review of "exactly once"): de-provisioning ended the device's
waiting jobs unsent and left a leased one to its worker, but when that worker was dead the
next one to claim the job after the lease delivered it, to a device that may by then be
another retailer's. Now the job leased at the de-provisioning is marked so, and a worker that
takes it over ends it unsent (``skipped``, "de-provisioned before it was sent"), as it ends a
delivery of a send cancelled meanwhile; its own worker, alive, still delivers it."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.fleet.helpers import enqueue_lce, real, until, worker
from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber
from zse.headend.core import Outcome
from zse.headend.queue import NOT_SENT_DEPROVISIONED, Completion, open_queue

GONE, KEPT = "000D6F0000000001", "000D6F0000000002"


async def test_a_forsaken_delivery_whose_worker_died_is_not_sent(
    broker: Broker, place: Any
) -> None:
    observer = Subscriber(broker, "observer-forsaken")
    await observer.connect()
    queue = await open_queue(place("queue"))
    loop = asyncio.get_running_loop()
    try:
        await enqueue_lce(queue, 31, [(GONE, "m1"), (KEPT, "m2")])
        held = await queue.claim("dead", now=loop.time(), lease=1.0)  # then killed
        assert [j.device for j in held] == [GONE, KEPT]
        await queue.forsake(GONE, now=0.0)  # as the API does on a de-provisioning

        async def taken_over() -> bool:
            rows = {r.device: r for r in await queue.rows(31)}
            sent = [t for t, _, _ in observer.received if "/bridge/request/" in t]
            return rows[GONE].state != "leased" and bool(sent)

        async with worker(broker, place("queue"), "b"):
            await until(taken_over)
        rows = {r.device: r for r in await queue.rows(31)}
        assert (rows[GONE].outcome, rows[GONE].state, rows[GONE].detail) == (
            Outcome.SKIPPED,
            "sent",
            NOT_SENT_DEPROVISIONED,
        )
        requests = [t for t, _, _ in observer.received if "/bridge/request/" in t]
        assert requests == ["gw/m2/bridge/request/load_control"]  # the other device's only
    finally:
        await real(observer.close())
        await queue.close()


async def test_a_forsaken_delivery_its_worker_still_answers_is_not_tried_again(
    place: Any,
) -> None:
    """A worker alive delivers the job it held at the de-provisioning (its answer is
    recorded), but a device it did not reach is not tried again: it is another's now."""
    queue = await open_queue(place("queue"))
    try:
        await enqueue_lce(queue, 32, [(GONE, "m1"), (KEPT, "m1")])
        missed, reached = await queue.claim("a", now=0.0, lease=60.0)
        await queue.forsake(GONE, now=0.0)
        await queue.forsake(KEPT, now=0.0)
        assert not missed.forsaken  # claimed before: its holder's to end
        assert not reached.forsaken
        assert await queue.complete(missed, "a", Outcome.OFFLINE, "meter m1 did not answer",
                                    now=1.0, answered=False)  # fmt: skip
        assert await queue.complete(reached, "a", Outcome.DELIVERED, "", now=1.0, answered=True)
        rows = {r.device: (r.outcome, r.state) for r in await queue.rows(32)}
        assert rows == {GONE: (Outcome.OFFLINE, "sent"), KEPT: (Outcome.DELIVERED, "sent")}
        assert await queue.claim("b", now=10_000.0, lease=60.0) == []  # never again
    finally:
        await queue.close()


async def test_a_de_provisioning_between_the_read_and_the_write_is_seen(pg_place: Any) -> None:
    """PostgreSQL's compare and set: the holder's answer (not reached) was computed from the
    row before the de-provisioning marked it; the write finds the row changed, reads it
    again, and does not put the job back on the back-off."""
    url = pg_place("queue")
    holder, api = await open_queue(url), await open_queue(url)
    try:
        await enqueue_lce(holder, 33, [(GONE, "m1")])
        (job,) = await holder.claim("a", now=0.0, lease=60.0)
        swap = holder._db.swap
        swaps: list[int] = []

        async def racing(updates: Any, expected: Any) -> set[tuple[int, str]]:
            swaps.append(len(updates))
            if len(swaps) == 1:  # the API de-provisions the device in between
                await api.forsake(GONE, now=0.0)
            return await swap(updates, expected)

        holder._db.swap = racing  # type: ignore[method-assign]
        missed = Completion(job=job, outcome=Outcome.OFFLINE, detail="no answer", answered=False)
        assert await holder.complete_many("a", [missed], now=1.0) == [True]
        assert swaps == [1, 1]  # written the second time, from the row as it is now
        ((state, detail),) = [(r.state, r.detail) for r in await holder.rows(33)]
        assert (state, detail) == ("sent", "no answer")
        assert await holder.claim("b", now=10_000.0, lease=60.0) == []
    finally:
        await holder.close()
        await api.close()
