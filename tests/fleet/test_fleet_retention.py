"""Finished jobs are not kept for ever (#19 leftovers): a worker with a retention deletes the
send jobs and control jobs finished and unchanged for longer, at most every ``purge_every``
seconds; jobs still to deliver, and the devices' lifecycle records, stay. Both engines."""

from __future__ import annotations

from typing import Any

from zse.headend.control import Control, ControlKind
from zse.headend.core import Outcome, SendKind
from zse.headend.link import Answer, Delivery, MeterLink
from zse.headend.queue import open_queue
from zse.headend.worker import Worker

DEVICES = [("000D6F0000000001", "m1"), ("000D6F0000000002", "m1")]
DAY = 86400.0


class Silent(MeterLink):
    """A link the purge never uses (no job is due in these tests)."""

    async def deliver(self, delivery: Delivery) -> Answer:
        raise AssertionError(f"nothing is delivered here: {delivery.key}")


async def test_finished_jobs_older_than_the_retention_are_purged(place: Any) -> None:
    queue = await open_queue(place("queue"))
    control = await Control.open(queue)
    try:
        await queue.enqueue(1, SendKind.LOAD_CONTROL, {"issuer_event_id": 1}, DEVICES, now=0.0)
        first, second = await queue.claim("w", now=0.0, lease=60.0)
        await queue.complete(first, "w", Outcome.DELIVERED, "", now=10.0, answered=True)
        await queue.complete(second, "w", Outcome.OFFLINE, "", now=10.0, answered=True)
        await control.register("000D6F0000000001", "m1", {"install_code": "x"}, time=0, now=0.0)
        (job,) = await control.claim("w", now=0.0, lease=60.0)
        assert job.kind is ControlKind.PROVISION
        await control.complete(job, "w", answered=True, now=20.0)
        clock = [7 * DAY]
        worker = Worker(
            queue, Silent(), owner="w", clock=lambda: clock[0], control=control, retention=7 * DAY
        )
        assert await worker.purge() == 0  # nothing older than a week yet
        clock[0] = 7 * DAY + 15.0
        assert await worker.purge() == 0  # not again before purge_every
        clock[0] = 7 * DAY + 3600.0
        assert await worker.purge() == 2  # the delivered job and the answered provision
        rows = await queue.rows(1)
        assert [(r.device, r.state) for r in rows] == [("000D6F0000000002", "ready")]
        assert await control.jobs() == []
        assert [d.device for d in await control.devices()] == ["000D6F0000000001"]
        keep = Worker(queue, Silent(), owner="w", clock=lambda: 1e9, control=control)
        assert await keep.purge() == 0  # no retention: kept for ever
        assert len(await queue.rows(1)) == 1
    finally:
        await queue.close()


async def test_the_purge_keeps_what_the_api_has_not_read(place: Any) -> None:
    """An API away for longer than the retention loses no outcome: the purge keeps the jobs
    updated at or after the reader's mark, whatever the retention says."""
    queue = await open_queue(place("queue"))
    try:
        await queue.enqueue(1, SendKind.LOAD_CONTROL, {"issuer_event_id": 1}, DEVICES, now=0.0)
        first, second = await queue.claim("w", now=0.0, lease=60.0)
        await queue.complete(first, "w", Outcome.DELIVERED, "", now=10.0, answered=True)
        await queue.complete(second, "w", Outcome.DELIVERED, "", now=20.0, answered=True)
        await queue.mark_read("api", 5.0)  # the API took in what changed before t = 5 only
        assert await queue.purge(before=30 * DAY) == 0
        await queue.mark_read("api", 15.0)
        assert await queue.purge(before=30 * DAY) == 1  # the first; the second not read yet
        assert [r.device for r in await queue.rows(1)] == [second.device]
        await queue.mark_read("other", 0.0)  # every reader must have read it
        await queue.mark_read("api", 25.0)
        assert await queue.purge(before=30 * DAY) == 0
        await queue.forget_reader("other")
        assert await queue.purge(before=15.0) == 0  # the retention still counts
        assert await queue.purge(before=30 * DAY) == 1
        assert await queue.rows(1) == []
    finally:
        await queue.close()
