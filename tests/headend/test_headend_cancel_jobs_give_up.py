"""Cancel jobs over gateways that never end (found by the last session): a ``cancel_*`` job
whose device never takes the Cancel (or whose gateway never answers) was sent again on the
back-off for ever, an "until changed" message (SE D.5.2.3.1.1.4) having no end. Now each is
given up the headend's give-up time after the cancel (its payload carries it, as a delivery
job's, never sent to the gateway), by the core's rule (:func:`zse.headend.core.after_miss`);
a job queued before that time was kept gets one at its first miss after. Both engines."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.postgres_server import place, postgres, raw_sql
from zse.headend.control import UNTIL, Control, ControlKind, control_key
from zse.headend.core import GIVE_UP, Outcome, SendKind
from zse.headend.directory import GatewayMeters
from zse.headend.queue import GIVE_UP_AFTER, GIVE_UP_AT, open_queue
from zse.headend.store import OutcomeRecord, SendRecord

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

DEVICE = "000D6F000A000001"
KIND = ControlKind.CANCEL_MESSAGE
KEY = control_key(KIND, 1, DEVICE)


@pytest.fixture
async def control(place: Any) -> AsyncIterator[Control]:
    """The control jobs of a work queue on ``place``'s engine."""
    queue = await open_queue(place("queue"))
    try:
        yield await Control.open(queue)
    finally:
        await queue.close()


def _cancel(key: str, **payload: Any) -> list[tuple[str, ControlKind, str, str, dict[str, Any]]]:
    return [(key, KIND, "m1", DEVICE, {"device": DEVICE, "message_id": 1, **payload})]


async def test_a_cancel_job_its_device_never_takes_is_given_up(control: Control) -> None:
    await control.enqueue(_cancel(KEY, **{GIVE_UP_AT: 7200.0, GIVE_UP_AFTER: 7200.0}), now=0.0)
    now, sent = 0.0, 0
    for _ in range(100):  # was: for ever
        (job,) = await control.claim("w1", now=now, lease=60.0)
        assert set(job.command()) == {"correlation_id", "device", "message_id"}
        sent += 1
        assert await control.complete(job, "w1", answered=True, untold="offline: x", now=now)
        ((_, state, detail),) = await control.jobs()
        if state != "ready":
            break
        async with control.queue.transaction("look") as db:
            ((now,),) = await db.fetch("SELECT not_before FROM headend_control")
    assert (state, detail) == (
        "done",
        "given up: the device was not told of the cancel within 2 hours of it"
        " (last try: offline: x)",
    )
    assert now == 7201.0  # the last try just after the give-up time
    assert sent == 13  # at 0, 30, 90, 210, 510, 1410 ... 6810 and 7201 s
    assert await control.claim("w1", now=1e9, lease=60.0) == []  # sent no more


async def test_a_cancel_job_its_gateway_never_answers_is_given_up(control: Control) -> None:
    await control.enqueue(_cancel(KEY, **{GIVE_UP_AT: 100.0, GIVE_UP_AFTER: 3600.0}), now=0.0)
    (job,) = await control.claim("w1", now=0.0, lease=60.0)
    assert await control.complete(job, "w1", answered=False, refused="m1: no answer", now=1.0)
    (job,) = await control.claim("w1", now=100.0, lease=60.0)
    assert job.correlation_id == KEY  # not answered: the same id
    assert await control.complete(job, "w1", answered=False, refused="m1: no answer", now=100.0)
    assert await control.jobs() == [
        (
            KEY,
            "failed",
            "given up: the device was not told of the cancel within 1 hours of it"
            " (last try: m1: no answer)",
        )
    ]


async def test_a_cancel_job_past_its_window_is_over_before_given_up(control: Control) -> None:
    """Both passed: the window's end says more (nothing left on the device to take back)."""
    await control.enqueue(_cancel(KEY, **{UNTIL: 50.0, GIVE_UP_AT: 40.0}), now=0.0)
    (job,) = await control.claim("w1", now=0.0, lease=60.0)
    assert await control.complete(job, "w1", answered=True, untold="offline: x", now=60.0)
    assert await control.jobs() == [(KEY, "done", "not told before the send was over (offline: x)")]


async def test_a_cancel_job_queued_before_give_up_times_is_given_up_from_its_next_miss(
    control: Control, place: Any
) -> None:
    """No give-up time in its payload: the first miss read after keeps one, the default
    span after it, covered by the row's checksum (its next claim reads it back)."""
    await control.enqueue(_cancel(KEY), now=0.0)
    (job,) = await control.claim("w1", now=1e6, lease=60.0)
    assert await control.complete(job, "w1", answered=True, untold="offline: x", now=1e6)
    ((payload,),) = await raw_sql(place("queue"), "SELECT payload FROM headend_control")
    assert json.loads(payload)[GIVE_UP_AT] == 1e6 + GIVE_UP
    (job,) = await control.claim("w1", now=1e6 + GIVE_UP - 1, lease=60.0)
    assert job.payload[GIVE_UP_AT] == 1e6 + GIVE_UP
    assert "give_up_at" not in job.command()
    assert await control.complete(
        job, "w1", answered=True, untold="offline: x", now=1e6 + GIVE_UP - 1
    )
    ((_, state, _),) = await control.jobs()
    assert state == "ready"  # before it: sent again
    (job,) = await control.claim("w1", now=1e6 + GIVE_UP + 1, lease=60.0)
    done = 1e6 + GIVE_UP + 1
    assert await control.complete(job, "w1", answered=True, untold="offline: x", now=done)
    ((_, state, detail),) = await control.jobs()
    assert (state, detail) == (
        "done",
        "given up: the device was not told of the cancel within 3 days of it"
        " (last try: offline: x)",
    )


@pytest.mark.parametrize("cancelled_at", [900, None])
async def test_a_gateway_cancel_job_carries_its_give_up_time(
    tmp_path: Any, cancelled_at: int | None
) -> None:
    """Counted from the cancel on the workers' clock (from now for a send whose cancel time
    was not recorded), never sent to the gateway."""
    queue = await open_queue(tmp_path / "queue.sqlite")
    try:
        control = await Control.open(queue)
        directory = GatewayMeters(["m1"], control, meter_time=lambda: 1000, clock=lambda: 50.0)
        send = SendRecord(
            id=1,
            retailer="r",
            kind=SendKind.MESSAGE,
            group="g",
            request={"text": "Hi", "duration_minutes": 0xFFFF},
            created=0,
            cancelled=True,
            cancelled_at=cancelled_at,
        )
        copy = OutcomeRecord(send=1, device=DEVICE, meter="m1", outcome=Outcome.CANCELLED)
        await directory.cancel(send, [copy], give_up=7200.0)
        (job,) = await control.claim("w1", now=0.0, lease=60.0)
        since = 1000 if cancelled_at is None else cancelled_at
        assert job.payload[GIVE_UP_AT] == 50.0 + (since + 7200 - 1000)
        assert job.payload[GIVE_UP_AFTER] == 7200.0
        assert UNTIL not in job.payload  # until changed: no window end
        assert set(job.command()) == {"correlation_id", "device", "message_id"}
    finally:
        await queue.close()
