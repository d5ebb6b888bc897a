"""A control job's answer is recorded only for the try it answers (found by a hostile review,
as for the delivery jobs in bc1ba6b): a worker that stalled past its lease (paused, cut off)
while the same ``--id`` started again elsewhere still "held" the job, and its late answer to
an older correlation id (``<key>``) was recorded on the newer try under way (``<key>:1``),
ending the job on the strength of a try that is over. The answer now counts only while the
job's ``tries`` (the correlation id's last part) are still those it answers."""

from __future__ import annotations

from pathlib import Path

from zse.headend.control import Control, ControlKind, control_key
from zse.headend.queue import open_queue

DEVICE = "000D6F0000000001"
BODY = {"mac": "00:0d:6f:00:00:00:00:01", "issuer_event_id": 4}


async def test_a_late_answer_to_an_older_try_is_not_recorded_on_a_newer_one(
    tmp_path: Path,
) -> None:
    queue = await open_queue(tmp_path / "queue.sqlite")
    control = await Control.open(queue)
    try:
        key = control_key(ControlKind.CANCEL_LOAD_CONTROL, 4, DEVICE)
        await control.enqueue([(key, ControlKind.CANCEL_LOAD_CONTROL, "m1", DEVICE, BODY)], now=0)
        (stalled,) = await control.claim("w1", now=0.0, lease=60.0)  # then paused, cut off
        # w1 started again elsewhere (the same --id): the lease ran out, it takes the job
        (again,) = await control.claim("w1", now=60.0, lease=60.0)
        assert again.correlation_id == stalled.correlation_id == key
        # its gateway stopped while carrying it out: tried again under a new id
        assert await control.complete(again, "w1", answered=True, cut_short=True, now=61.0)
        (newer,) = await control.claim("w1", now=1_000.0, lease=60.0)
        assert newer.correlation_id == f"{key}:1"
        # the stalled one wakes up with an answer to <key>: not the try under way
        assert not await control.complete(stalled, "w1", answered=True, now=1_001.0)
        assert await control.jobs() == [
            (key, "leased", "the gateway stopped while carrying it out")
        ]
        # the try under way is answered and recorded
        assert await control.complete(newer, "w1", answered=True, now=1_002.0)
        assert await control.jobs() == [(key, "done", "")]
    finally:
        await queue.close()
