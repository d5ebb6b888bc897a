"""An answer is recorded only for the delivery it answers (found by a hostile review of
"exactly once"): a lease names its worker (``--id``, kept across restarts), so a worker that
stalled past its lease (paused, cut off) while the same id started again elsewhere still
"held" the job, and its late answer to an older delivery (key ``...:0``) was recorded on the
newer one (``...:1``) under way: a "not reached" moved the job to a third key, the newer
delivery's answer was refused, and the device was sent the event once more. The answer now
counts only while the job's key is still the one it answers (the job's ``tries``, its
fencing token): a late answer to the same key is still recorded (the same delivery)."""

from __future__ import annotations

from typing import Any

from zse.headend.core import Outcome, SendKind
from zse.headend.queue import open_queue

DEVICE = "000D6F0000000001"
EVENT = {"issuer_event_id": 4}


async def test_a_late_answer_to_an_older_key_is_not_recorded_on_a_newer_one(place: Any) -> None:
    queue = await open_queue(place("queue"))
    try:
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, [(DEVICE, "m1")], now=0.0)
        (stalled,) = await queue.claim("w1", now=0.0, lease=60.0)  # then paused, cut off
        # w1 started again elsewhere (the same --id): the lease ran out, it takes the job
        (again,) = await queue.claim("w1", now=60.0, lease=60.0)
        assert again.key == stalled.key  # the same delivery: its gateway answers once
        assert await queue.complete(again, "w1", Outcome.OFFLINE, "no ack", now=61.0,
                                    answered=True)  # fmt: skip
        (newer,) = await queue.claim("w1", now=91.0, lease=60.0)
        assert newer.key.endswith(":1")  # a definite "not reached": a new delivery
        # the stalled one wakes up and records its answer to the key :0 (its gateway's
        # record: not reached): not the delivery under way, so not recorded
        assert not await queue.complete(stalled, "w1", Outcome.OFFLINE, "no ack", now=92.0,
                                        answered=True)  # fmt: skip
        assert await queue.complete(newer, "w1", Outcome.DELIVERED, "", now=93.0, answered=True)
        (row,) = await queue.rows(4)
        assert (row.outcome, row.tries, row.attempts, row.state) == (
            Outcome.DELIVERED,
            1,
            2,
            "sent",
        )
        # the same key answered late by the stalled copy, while its successor holds it:
        # the same delivery, recorded once
        await queue.enqueue(5, SendKind.LOAD_CONTROL, EVENT, [(DEVICE, "m1")], now=100.0)
        (first,) = await queue.claim("w1", now=100.0, lease=60.0)
        (second,) = await queue.claim("w1", now=160.0, lease=60.0)
        assert await queue.complete(first, "w1", Outcome.DELIVERED, "", now=161.0, answered=True)
        assert not await queue.complete(second, "w1", Outcome.DELIVERED, "", now=162.0,
                                        answered=True)  # fmt: skip
    finally:
        await queue.close()
