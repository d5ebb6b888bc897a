"""The jobs a de-provisioning or a cancel ends over a work queue are stamped with the queue's
time (found by a hostile review): the API called ``queue.forsake(key, now=0.0)`` and
``queue.cancel(send, now=0.0)``, so the jobs they ended unsent had ``updated`` 0, older than
any retention: the workers' next purge deleted them at once, and a reader of the outcomes
changed since its last look never saw them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.headend.helpers import queued_headend, registration
from zse.headend.core import Outcome
from zse.headend.queue import NOT_SENT, NOT_SENT_DEPROVISIONED
from zse.installcode import canonical_eui64

RETAILER = "retailer-a"


async def test_jobs_ended_by_the_api_carry_the_queues_time(tmp_path: Path) -> None:
    def place(name: str) -> Any:
        return tmp_path / name

    async with queued_headend(tmp_path, place) as served:  # no worker: the jobs wait
        headend, queue = served.headend, served.queue
        ihd, thermostat, *_ = served.sims.devices
        for device in (ihd, thermostat):
            await headend.register(RETAILER, registration(device))
        await headend.put_group(RETAILER, {"name": "g", "meters": [ihd.meter]})
        sent = await headend.send_message(RETAILER, {"group": "g", "text": "Hi"})
        await asyncio.sleep(100)
        gone, kept = canonical_eui64(thermostat.mac), canonical_eui64(ihd.mac)
        await headend.deprovision(RETAILER, gone)
        forsaken = served.worker.now()
        await asyncio.sleep(100)
        await headend.cancel(RETAILER, sent["id"])
        cancelled = served.worker.now()
        rows = {r.device: r for r in await queue.rows(sent["id"])}
        assert (rows[gone].outcome, rows[gone].detail) == (Outcome.SKIPPED, NOT_SENT_DEPROVISIONED)
        assert (rows[kept].outcome, rows[kept].detail) == (Outcome.CANCELLED, NOT_SENT)
        assert {r.state for r in rows.values()} == {"sent"}
        assert abs(rows[gone].updated - forsaken) < 1.0
        assert abs(rows[kept].updated - cancelled) < 1.0
        assert len(await queue.rows(since=forsaken - 1.0)) == 2  # a reader sees them
        assert await queue.purge(before=forsaken - 1.0) == 0  # kept for their retention
