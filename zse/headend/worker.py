"""A headend worker: drains the work queue (:mod:`zse.headend.queue`) through a meter link
(:mod:`zse.headend.link`), one of any number sharing one database (docs/headend.md, "Utility
scale").

Each round it leases up to ``batch`` due jobs, delivers them concurrently (each with its
idempotency key), and records each device's answer with the job's completion in one
transaction while it still holds the lease. A device the meter did not reach (offline,
skipped) is tried again on the headend's back-off (:func:`zse.headend.core.retry_delay`) with
a new key; a meter that did not answer at all (its gateway offline, the broker away) is
recorded ``offline`` and asked again on the same back-off **with the same key**, so a command
the gateway received meanwhile is answered, not carried out twice. Reports from the devices
(Message Confirmation, Report Event Status) move the outcomes forward.

Given a :class:`~zse.headend.control.Control` (meters as gateways, docs/adr/0020), a worker
also sends the headend's control jobs (``provision``, ``deprovision``, the cancels) with their
keys, and records the gateways' lifecycle events in the headend's device records.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from zse.errors import StoreError
from zse.headend.control import Control, ControlJob, refusal
from zse.headend.core import Outcome
from zse.headend.link import Delivery, Lifecycle, MeterLink, MeterUnreachable, Report
from zse.headend.queue import Job, JobQueue
from zse.installcode import canonical_eui64
from zse.zcl._tasks import keep_task

__all__ = ["Worker"]

LOGGER = logging.getLogger(__name__)


def _colons(eui64: str) -> str:
    digits = canonical_eui64(eui64).lower()
    return ":".join(digits[i : i + 2] for i in range(0, 16, 2))


class Worker:
    """Delivers the queue's jobs through ``link`` (see the module notes).

    ``owner``: this worker's name in the leases (unique among the workers); ``clock()``: the
    seconds all workers of the queue share (wall-clock time); ``lease``: seconds a claimed job
    stays this worker's (more than the link's answer timeout); ``poll``: seconds between
    looks at an empty queue; ``control``: the control jobs and device records to serve
    too (meters as gateways); ``retention``: seconds a finished job is kept after its last
    change (None: for ever), purged every ``purge_every`` seconds.
    """

    def __init__(
        self,
        queue: JobQueue,
        link: MeterLink,
        *,
        owner: str,
        clock: Callable[[], float] = time.time,
        lease: float = 120.0,
        batch: int = 16,
        poll: float = 1.0,
        control: Control | None = None,
        retention: float | None = None,
        purge_every: float = 3600.0,
    ) -> None:
        self.queue, self.link, self.owner, self.control = queue, link, owner, control
        self.clock, self.lease, self.batch, self.poll = clock, lease, batch, poll
        self.retention, self.purge_every = retention, purge_every
        self._next_purge = 0.0
        #: Deliveries whose answer this worker recorded (a lease lost meanwhile: not counted).
        self.recorded = 0
        self._task: asyncio.Task[None] | None = None
        self._reports: set[asyncio.Task[Any]] = set()
        self._remove: Callable[[], None] | None = None
        self._unfollow: Callable[[], None] | None = None

    async def start(self) -> None:
        """Follow the devices' reports and drain the queue in the background."""
        self._remove = self.link.on_report(self._on_report)
        if self.control is not None:
            self._unfollow = self.link.on_lifecycle(self._on_lifecycle)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop taking jobs (a job leased and not recorded comes back at its lease's end)."""
        for remove in (self._remove, self._unfollow):
            if remove is not None:
                remove()
        self._remove = self._unfollow = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await asyncio.gather(*self._reports, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                done = await self.round()
                await self.purge()
            except StoreError as exc:
                LOGGER.warning("headend worker %s: %s", self.owner, exc)
                done = 0
            if not done:
                await asyncio.sleep(self.poll)

    async def purge(self) -> int:
        """Delete the finished jobs older than the retention, at most every ``purge_every``
        seconds; how many."""
        now = self.clock()
        if self.retention is None or now < self._next_purge:
            return 0
        self._next_purge = now + self.purge_every
        purged = await self.queue.purge(before=now - self.retention)
        if self.control is not None:
            purged += await self.control.purge(before=now - self.retention)
        if purged:
            LOGGER.info("headend worker %s: %d finished jobs purged", self.owner, purged)
        return purged

    async def round(self) -> int:
        """One round: lease due jobs, deliver them, record the answers; how many were
        claimed."""
        jobs = await self.queue.claim(
            self.owner, now=self.clock(), lease=self.lease, limit=self.batch
        )
        commands: list[ControlJob] = []
        if self.control is not None:
            commands = await self.control.claim(
                self.owner, now=self.clock(), lease=self.lease, limit=self.batch
            )
        await asyncio.gather(
            *(self._one(job) for job in jobs), *(self._command(c) for c in commands)
        )
        return len(jobs) + len(commands)

    async def _command(self, job: ControlJob) -> None:
        """Send a control job's command to its meter's gateway and record the answer."""
        assert self.control is not None
        try:
            response = await self.link.command(job.meter, job.kind.value, job.command())
        except MeterUnreachable as exc:
            recorded = await self.control.complete(
                job, self.owner, answered=False, refused=str(exc), now=self.clock()
            )
        else:
            recorded = await self.control.complete(
                job, self.owner, answered=True, refused=refusal(response), now=self.clock()
            )
        if recorded:
            self.recorded += 1

    async def _one(self, job: Job) -> None:
        delivery = Delivery(
            key=job.key,
            meter=job.meter,
            device=_colons(job.device),
            kind=job.kind,
            payload=job.payload,
        )
        try:
            answer = await self.link.deliver(delivery)
        except MeterUnreachable as exc:
            recorded = await self.queue.complete(
                job, self.owner, Outcome.OFFLINE, str(exc), now=self.clock(), answered=False
            )
        else:
            recorded = await self.queue.complete(
                job,
                self.owner,
                answer.outcome,
                answer.detail,
                now=self.clock(),
                answered=True,
                retry=not answer.final and "de-provision" not in answer.detail,
            )
        if recorded:
            self.recorded += 1
        else:
            LOGGER.info("headend worker %s: lease of %s lost", self.owner, job.key)

    def _on_lifecycle(self, change: Lifecycle) -> None:
        assert self.control is not None
        task = asyncio.get_running_loop().create_task(self.control.record(change, now=self.clock()))
        keep_task(self._reports, task, LOGGER, "headend worker: a lifecycle change not recorded")

    def _on_report(self, report: Report) -> None:
        task = asyncio.get_running_loop().create_task(self._report(report))
        keep_task(self._reports, task, LOGGER, "headend worker: a report not recorded")

    async def _report(self, report: Report) -> None:
        await self.queue.report(
            report.send,
            canonical_eui64(report.device),
            report.kind,
            report.outcome,
            now=self.clock(),
        )
