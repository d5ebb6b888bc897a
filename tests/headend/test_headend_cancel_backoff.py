"""A late cancel's back-off (found by the lead): in process, a Cancel not acknowledged went on
from the send's misses, so a device offline for an hour had its first Cancel tried again 900 s
later, while over gateways a cancel job, a new job, starts the schedule again (30 s, 60 s ...).
A Cancel is a new thing to deliver, and the device may be back any minute: both start it
again now."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.headend.helpers import Service
from tests.headend.test_headend_cancel_give_up import _copy, _offline_and_cancelled
from zse.headend.control import Control, ControlKind, control_key
from zse.headend.core import RETRY_SCHEDULE
from zse.headend.queue import GIVE_UP_AFTER, GIVE_UP_AT, open_queue

DEVICE = "000D6F000A000001"
#: How long the ESI's Cancel to a switched-off device takes to fail: four attempts, each
#: waiting apsAckWaitDuration, 1.6 s (ZB 2.2.8.4.1, Table 2.24).
NO_APS_ACK = 4 * 1.6


async def test_a_late_cancel_is_tried_again_from_the_schedule_start(service: Service) -> None:
    """An hour offline (the send's back-off at 900 s), then cancelled: the Cancel missed is
    sent again after 30 s, then 60 s."""
    _, send_id, cancels = await _offline_and_cancelled(service)
    loop = asyncio.get_running_loop()
    copy = _copy(service, send_id)
    assert copy["detail"].startswith("cancel not acknowledged by the device (")
    record = service.headend.records.outcomes[send_id][copy["mac"]]
    assert record.next_try - loop.time() == RETRY_SCHEDULE[0]  # was: 900 s
    sent = len(cancels)
    await asyncio.sleep(RETRY_SCHEDULE[0] + 1 + NO_APS_ACK)
    assert len(cancels) == sent + 1
    record = service.headend.records.outcomes[send_id][copy["mac"]]
    # the Cancel failed 6.4 s after it began: float seconds now (0.1 is not exact)
    assert record.next_try - loop.time() == pytest.approx(RETRY_SCHEDULE[1] - 1)


async def test_a_gateway_cancel_job_starts_its_schedule_too(tmp_path: Path) -> None:
    """The same first steps for a cancel job (its own row: no failures before it)."""
    queue = await open_queue(tmp_path / "queue.sqlite")
    try:
        control = await Control.open(queue)
        kind = ControlKind.CANCEL_MESSAGE
        key = control_key(kind, 1, DEVICE)
        payload = {"device": DEVICE, "message_id": 1, GIVE_UP_AT: 1e6, GIVE_UP_AFTER: 1e6}
        await control.enqueue([(key, kind, "m1", DEVICE, payload)], now=0.0)
        now = 3600.0
        for step in RETRY_SCHEDULE[:2]:
            (job,) = await control.claim("w1", now=now, lease=60.0)
            assert await control.complete(job, "w1", answered=True, untold="offline: x", now=now)
            assert await control.claim("w1", now=now + step - 1, lease=60.0) == []
            now += step
    finally:
        await queue.close()
