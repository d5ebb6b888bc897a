"""The work queue's give-up (meters as gateways, ``[sends] give_up_days``): a delivery job to
a device never reached was retried on the back-off for ever (in process the copy was given
up, ``expired``). Now each job carries its deadline in its payload (covered by the job's
checksum; a job enqueued before has none and is never given up), and a try that does not
reach the device after it ends the job ``expired``, on both engines."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.postgres_server import place, postgres
from zse.headend.core import RETRY_SCHEDULE, Outcome, SendKind
from zse.headend.queue import Completion, Job, _completed, open_queue

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

DEVICE = ("000D6F000A000001", "meter-1")
MESSAGE = {"message_id": 7, "text": "hi"}


async def test_a_job_not_reached_by_its_deadline_is_expired(place: Any) -> None:
    """Tried on the back-off until its deadline (the last try at it), then ``expired`` with
    the reason, its job sent (not claimed again); a later report still moves it on."""
    queue = await open_queue(place("queue"))
    try:
        await queue.enqueue(
            7, SendKind.MESSAGE, MESSAGE, [DEVICE], now=0.0, give_up_at=100.0, give_up_after=7200
        )
        (job,) = await queue.claim("w", now=10.0, lease=30.0)
        assert job.payload == MESSAGE  # the deadline is the headend's: not delivered
        assert (job.give_up_at, job.give_up_after) == (100.0, 7200.0)
        skipped = Outcome.SKIPPED
        assert await queue.complete(
            job, "w", skipped, "pending provisioning", now=11.0, answered=True
        )
        (row,) = await queue.rows(7)
        assert (row.outcome, row.state) == (Outcome.SKIPPED, "ready")
        assert await queue.claim("w", now=40.0, lease=30.0) == []  # 30 s back-off
        (job,) = await queue.claim("w", now=41.0, lease=30.0)
        assert await queue.complete(
            job, "w", skipped, "pending provisioning", now=42.0, answered=True
        )
        # the next back-off (60 s) would pass the deadline: the last try is just after it
        assert await queue.claim("w", now=100.5, lease=30.0) == []
        (job,) = await queue.claim("w", now=101.0, lease=30.0)
        assert await queue.complete(
            job, "w", Outcome.OFFLINE, "meter-1: no answer", now=101.5, answered=False
        )
        (row,) = await queue.rows(7)
        assert (row.outcome, row.state) == (Outcome.EXPIRED, "sent")
        assert row.detail == (
            "given up: not reached within 2 hours of the send (last try: meter-1: no answer)"
        )
        assert await queue.claim("w", now=10_000.0, lease=30.0) == []  # never tried again
        assert await queue.report(7, DEVICE[0], SendKind.MESSAGE, Outcome.CONFIRMED, now=10_001.0)
        (row,) = await queue.rows(7)
        assert (row.outcome, row.detail) == (Outcome.CONFIRMED, "")
    finally:
        await queue.close()


async def test_a_job_without_a_deadline_is_never_given_up(place: Any) -> None:
    """A job enqueued before the deadline existed (no payload field) reads back as always."""
    queue = await open_queue(place("queue"))
    try:
        await queue.enqueue(8, SendKind.MESSAGE, MESSAGE, [DEVICE], now=0.0)
        (job,) = await queue.claim("w", now=1e9, lease=30.0)
        assert (job.payload, job.give_up_at) == (MESSAGE, None)
        assert await queue.complete(job, "w", Outcome.OFFLINE, "x", now=1e9, answered=False)
        (row,) = await queue.rows(8)
        assert (row.outcome, row.state) == (Outcome.OFFLINE, "ready")
    finally:
        await queue.close()


@settings(max_examples=200, deadline=None)
@given(
    give_up=st.floats(0, 1e6, allow_nan=False),
    now=st.floats(0, 1e6, allow_nan=False),
    failures=st.integers(0, 10),
    answered=st.booleans(),
)
def test_the_next_try_is_never_after_the_deadline_and_past_it_is_expired(
    give_up: float, now: float, failures: int, answered: bool
) -> None:
    """A failed try before the deadline is tried again no later than just after it; one at
    or after it is expired (never ``ready`` again)."""
    job = Job(
        send=1,
        device=DEVICE[0],
        meter=DEVICE[1],
        kind=SendKind.MESSAGE,
        payload={},
        outcome=Outcome.OFFLINE,
        tries=0,
        give_up_at=give_up,
        give_up_after=3600.0,
    )
    answer = Completion(job=job, outcome=Outcome.OFFLINE, detail="", answered=answered)
    row = ("offline", "leased", "w", 0, 0, failures, None, None)
    update = _completed(row, "w", answer, now)
    assert update is not None
    state, outcome, detail, *_, not_before = update[:7]
    if now >= give_up:
        assert (state, outcome, not_before) == ("sent", "expired", now)
        assert detail.startswith("given up: not reached within 1 hours of the send")
    else:
        assert (state, outcome) == ("ready", "offline")
        bound = min(now + RETRY_SCHEDULE[-1], max(give_up, now) + 1.0)
        # now + (give_up - now + 1) may round one ulp past give_up + 1 in binary floating point
        assert now < not_before <= bound + 1e-9 * max(1.0, bound)
