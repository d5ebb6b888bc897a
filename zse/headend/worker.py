"""A headend worker: drains the work queue (:mod:`zse.headend.queue`) through a meter link
(:mod:`zse.headend.link`), one of any number sharing one database (docs/headend.md, "Utility
scale").

It keeps up to ``batch`` jobs under way: it leases due jobs as slots free up, delivers them
concurrently (each with its idempotency key), and records each device's answer with the job's
completion while it still holds the lease, the answers that arrived meanwhile together in one
transaction (:meth:`~zse.headend.queue.JobQueue.complete_many`). A device the meter did not
reach (offline, skipped) is tried again on the headend's back-off
(:func:`zse.headend.core.retry_delay`) with a new key; a meter that did not answer at all (its
gateway offline, the broker away) is recorded ``offline`` and asked again on the same back-off
**with the same key**, so a command the gateway received meanwhile is answered, not carried out
twice. Reports from the devices (Message Confirmation, Report Event Status) move the outcomes
forward, of the reporting meter's devices only, those that arrived meanwhile recorded together
in one transaction (:meth:`~zse.headend.queue.JobQueue.report_many`).

Given a :class:`~zse.headend.control.Control` (meters as gateways, docs/adr/0020), a worker
also sends the headend's control jobs (``provision``, ``deprovision``, the cancels) with their
keys, and records the gateways' lifecycle events in the headend's device records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from zse.errors import StoreError
from zse.headend.control import Control, ControlJob, refusal, untold
from zse.headend.core import Outcome
from zse.headend.link import Delivery, Lifecycle, MeterLink, MeterUnreachable, Report
from zse.headend.queue import (
    NOT_SENT_AGAIN,
    NOT_SENT_DEPROVISIONED,
    Completion,
    Job,
    JobQueue,
    ReportedOutcome,
)
from zse.headend.roster import Roster
from zse.installcode import canonical_eui64
from zse.zcl._tasks import keep_task

__all__ = ["LINGER", "REPORTS_AT_ONCE", "RESYNC", "SEND_MARGIN", "Worker"]

LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Seconds an answer or a report waits for others to be recorded with (group commit): at a
#: meter's pace one transaction each would cost the worker and the database most of their
#: time per device (docs/performance.md, "The headend at utility scale").
LINGER = 0.25
#: Reports written at once without waiting: each is acknowledged to the broker only once
#: written, and a broker sends a client a bounded window of unacknowledged messages
#: (Mosquitto's ``max_inflight_messages``, 20 by default): half of it, the responses beside.
REPORTS_AT_ONCE = 10
#: Seconds between a worker's reads of the database's clock.
RESYNC = 60.0
#: Seconds before its lease ends after which a worker no longer sends a job (one that
#: stalled that long leaves it to the worker that takes the lease over: never both).
SEND_MARGIN = 1.0


def _device_key(device: str) -> str:
    """``device`` as the records key it (as given if it is no EUI-64: its record's write
    says so)."""
    try:
        return canonical_eui64(device)
    except ValueError:
        return device


def _colons(eui64: str) -> str:
    digits = canonical_eui64(eui64).lower()
    return ":".join(digits[i : i + 2] for i in range(0, 16, 2))


class Worker:
    """Delivers the queue's jobs through ``link`` (see the module notes).

    ``owner``: this worker's name in the leases (unique among the workers); ``clock()``: this
    worker's seconds (wall-clock time): on SQLite the queue's times, on PostgreSQL how far
    the database's clock has run since :meth:`sync_clock` read it (:meth:`now`); ``lease``:
    seconds a claimed job stays this worker's (more than the link's answer timeout);
    ``batch``: jobs under way at once; ``poll``: seconds between looks at an empty queue;
    ``control``: the control jobs and device records to serve too (meters as gateways;
    over a link whose meters are in this process, :attr:`~zse.headend.link.MeterLink.cancels_here`,
    the cancel jobs are served without it, their tables opened at :meth:`start`);
    ``retention``: seconds a finished job is kept after its last change (None: for ever),
    purged every ``purge_every`` seconds; ``roster``: where the workers say they are alive
    (every quarter lease), and a worker silent for a lease has its broker session taken over
    (:mod:`zse.headend.roster`); ``linger``: seconds the answers and the reports wait for
    others to be recorded with (group commit: a transaction for many devices, not for each),
    unless half the batch's answers, or :data:`REPORTS_AT_ONCE` reports, are waiting;
    ``resync``: seconds between reads of the database's clock (:meth:`sync_clock`), so that
    a worker whose own clock drifts or is stepped meanwhile stays on the database's.
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
        roster: Roster | None = None,
        linger: float = LINGER,
        resync: float = RESYNC,
    ) -> None:
        self.queue, self.link, self.owner, self.control = queue, link, owner, control
        self.roster = roster
        self._next_beat = 0.0
        self.clock, self.lease, self.batch, self.poll = clock, lease, batch, poll
        self.retention, self.purge_every = retention, purge_every
        self._next_purge = 0.0
        #: The database's clock less this worker's (PostgreSQL; None: not read yet).
        self.offset: float | None = None
        self.resync = resync
        self._next_sync = 0.0  # the event loop's (monotonic) time of the next read
        #: Deliveries whose answer this worker recorded (a lease lost meanwhile: not counted).
        self.recorded = 0
        self._task: asyncio.Task[None] | None = None
        self._remove: Callable[[], None] | None = None
        self._unfollow: Callable[[], None] | None = None
        #: Free slots worth a claim (half the batch): a claim is a transaction that reads the
        #: due jobs' index, not to be made for each job that ends.
        self._claim_at = max(1, batch // 2)
        self._answers = _Batcher(
            self._record_answers, "answers", owner=owner, linger=linger, most=self._claim_at
        )
        self._reported = _Batcher(
            self._record_reports,
            "reports",
            owner=owner,
            retry=True,
            linger=linger,
            most=REPORTS_AT_ONCE,
        )
        self._stopping = asyncio.Event()
        self._pending: set[asyncio.Task[Any]] = set()
        #: The last lifecycle change of each (meter, device) being recorded: the next one
        #: waits for it (a device's changes are written in the order they came).
        self._lifecycles: dict[tuple[str, str], asyncio.Task[Any]] = {}

    def writes(self) -> str:
        """How the answers and the reports were recorded: items and transactions."""
        a, r = self._answers, self._reported
        return f"{a.written} answers in {a.writes} transactions, {r.written} reports in {r.writes}"

    def now(self) -> float:
        """The queue's time: this worker's clock, on PostgreSQL moved onto the database's
        (:meth:`sync_clock`)."""
        return self.clock() + (self.offset or 0.0)

    async def sync_clock(self) -> None:
        """Read the database's clock (PostgreSQL) and keep its difference from this worker's,
        so that lease ends and due times compare on one clock whatever this machine's says
        (SQLite: one machine, its clock). A :class:`StoreError` if the database is away."""
        before = self.clock()
        found = await self.queue.database_time()
        after = self.clock()
        self.offset = 0.0 if found is None else found - (before + after) / 2
        self._next_sync = asyncio.get_running_loop().time() + self.resync

    async def keep_in_sync(self) -> None:
        """:meth:`sync_clock` if it was never read or ``resync`` seconds have passed (on the
        event loop's monotonic clock, which no step of the wall clock moves)."""
        if self.offset is None or asyncio.get_running_loop().time() >= self._next_sync:
            await self.sync_clock()

    async def start(self) -> None:
        """Read the database's clock (:meth:`sync_clock`: a :class:`StoreError` if the
        database is away), follow the devices' reports and drain the queue in the
        background."""
        await self.sync_clock()
        if self.control is None and self.link.cancels_here:  # the headend's cancel jobs
            self.control = await Control.open(self.queue)
        self._remove = self.link.on_report(self._on_report)
        if self.control is not None:
            self._unfollow = self.link.on_lifecycle(self._on_lifecycle)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop taking jobs (a job leased and not recorded comes back at its lease's end);
        the reports received so far are recorded first (one the database refuses now is
        left to the link: unacknowledged, the broker sends it again)."""
        self._stopping.set()
        for remove in (self._remove, self._unfollow):
            if remove is not None:
                remove()
        self._remove = self._unfollow = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self._answers.close()
        await self._reported.close()

    async def _run(self) -> None:
        """Keep up to ``batch`` jobs under way, leasing more as slots free up."""
        under_way: set[asyncio.Task[None]] = set()
        failed: tuple[type[BaseException], str] | None = None  # the error last logged
        try:
            while not self._stopping.is_set():
                jobs: list[Job] = []
                commands: list[ControlJob] = []
                send_by = 0.0
                room = self.batch - len(under_way)
                if room >= self._claim_at or not under_way:  # claims of several jobs, not one
                    try:
                        await self.keep_in_sync()
                        jobs, commands, send_by = await self._claim(room)
                        await self.purge()
                        await self.beat()
                        failed = None
                    except StoreError as exc:
                        LOGGER.warning("headend worker %s: %s", self.owner, exc)
                    except Exception as exc:  # the loop goes on: said once, tried again
                        said = (type(exc), str(exc)[:200])
                        if said != failed:
                            LOGGER.error(
                                "headend worker %s: taking jobs failed (tried again every "
                                "%g s): %s",
                                self.owner,
                                self.poll,
                                type(exc).__name__,
                                exc_info=True,
                            )
                        failed = said
                    _cancel_kept()
                loop = asyncio.get_running_loop()
                works = [
                    *(self._one(job, send_by) for job in jobs),
                    *(self._command(command, send_by) for command in commands),
                ]
                for work in works:
                    task = loop.create_task(work)
                    keep_task(under_way, task, LOGGER, "headend worker: a delivery failed")
                if (jobs or commands) and len(under_way) < self.batch:
                    continue  # more may be due: look again at once
                if under_way:  # a slot frees up, or the poll's time passes
                    await asyncio.wait(
                        under_way, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED
                    )
                else:
                    await asyncio.sleep(self.poll)
        finally:
            for task in under_way:
                task.cancel()
            await asyncio.gather(*under_way, return_exceptions=True)

    async def _claim(self, room: int) -> tuple[list[Job], list[ControlJob], float]:
        """Lease up to ``room`` due jobs: deliveries first, then control jobs; and the event
        loop's time by which they must be sent (:data:`SEND_MARGIN` before the leases end,
        from before they were taken: never later than the database's lease ends)."""
        send_by = asyncio.get_running_loop().time() + self.lease - SEND_MARGIN
        jobs = await self.queue.claim(self.owner, now=self.now(), lease=self.lease, limit=room)
        commands: list[ControlJob] = []
        if self.control is not None and len(jobs) < room:
            commands = await self.control.claim(
                self.owner, now=self.now(), lease=self.lease, limit=room - len(jobs)
            )
        return jobs, commands, send_by

    async def purge(self) -> int:
        """Delete the finished jobs older than the retention, at most every ``purge_every``
        seconds; how many."""
        now = self.now()
        if self.retention is None or now < self._next_purge:
            return 0
        self._next_purge = now + self.purge_every
        purged = await self.queue.purge(before=now - self.retention)
        if self.control is not None:
            purged += await self.control.purge(before=now - self.retention)
        if purged:
            LOGGER.info("headend worker %s: %d finished jobs purged", self.owner, purged)
        return purged

    async def beat(self) -> None:
        """Say this worker is alive, at most every quarter lease, and take over the broker
        sessions of those silent for a lease (in the background)."""
        now = self.now()
        if self.roster is None or now < self._next_beat:
            return
        self._next_beat = now + self.lease / 4
        await self.roster.beat(self.owner, self.link.session or "", now=now)
        for owner, session in await self.roster.gone(before=now - self.lease, keep=self.owner):
            if session and session != self.link.session:
                task = asyncio.get_running_loop().create_task(self._adopt(owner, session))
                keep_task(self._pending, task, LOGGER, "headend worker: a session not taken over")

    async def _adopt(self, owner: str, session: str) -> None:
        assert self.roster is not None
        try:
            handed = await self.link.adopt(session)
        except BaseException:
            with contextlib.suppress(StoreError):  # on the roster again, to be taken later
                await self.roster.beat(owner, session, now=0.0)
            raise
        LOGGER.info("headend worker %s: %s gone, %d events taken over", self.owner, owner, handed)

    async def round(self) -> int:
        """One round: lease due jobs, deliver them, record the answers; how many were
        claimed."""
        await self.keep_in_sync()
        jobs, commands, send_by = await self._claim(self.batch)
        await asyncio.gather(
            *(self._one(job, send_by) for job in jobs),
            *(self._command(command, send_by) for command in commands),
        )
        await self.purge()
        return len(jobs) + len(commands)

    async def _command(self, job: ControlJob, send_by: float) -> None:
        """Send a control job's command to its meter's gateway, not after ``send_by`` (the
        loop's time), and record the answer."""
        assert self.control is not None
        try:
            response = await self.link.command(
                job.meter, job.kind.value, job.command(), send_by=send_by
            )
        except MeterUnreachable as exc:
            recorded = await self.control.complete(
                job, self.owner, answered=False, refused=str(exc), now=self.now()
            )
        else:
            recorded = await self.control.complete(
                job,
                self.owner,
                answered=True,
                refused=refusal(response),
                cut_short=response.get("status") == "started",
                untold=untold(response),
                now=self.now(),
            )
        if recorded:
            self.recorded += 1

    async def _one(self, job: Job, send_by: float) -> None:
        # its worker died, and the send was cancelled or the device de-provisioned since
        unsent = {Outcome.CANCELLED: NOT_SENT_AGAIN}.get(job.outcome)
        if unsent is None and job.forsaken:
            unsent = NOT_SENT_DEPROVISIONED
        if unsent is not None:  # ended unsent (a pending outcome: skipped, not tried again)
            outcome = Outcome.CANCELLED if job.outcome is Outcome.CANCELLED else Outcome.SKIPPED
            ended = Completion(job=job, outcome=outcome, detail=unsent, answered=False, retry=False)
            await self._answers.add(ended)
            return
        delivery = Delivery(
            key=job.key,
            meter=job.meter,
            device=_colons(job.device),
            kind=job.kind,
            payload=job.payload,
            send_by=send_by,
        )
        try:
            answer = await self.link.deliver(delivery)
        except MeterUnreachable as exc:
            completion = Completion(
                job=job, outcome=Outcome.OFFLINE, detail=str(exc), answered=False
            )
        else:
            completion = Completion(
                job=job,
                outcome=answer.outcome,
                detail=answer.detail,
                retry=not answer.final and "de-provision" not in answer.detail,
            )
        if not await self._answers.add(completion):
            LOGGER.info("headend worker %s: lease of %s lost", self.owner, job.key)

    async def _record_answers(self, answers: list[Completion]) -> list[bool]:
        recorded = await self.queue.complete_many(self.owner, answers, now=self.now())
        self.recorded += sum(recorded)
        return recorded

    async def _record_reports(self, reports: list[ReportedOutcome]) -> list[bool]:
        return await self.queue.report_many(reports, now=self.now())

    def _on_lifecycle(self, change: Lifecycle) -> asyncio.Task[Any]:
        """Record ``change`` once the device's changes that came before it are (in the
        order they arrived: one device's events are not raced against each other, another
        device's are not held up); the task ends once it is recorded (the link acknowledges
        the event then)."""
        control = self.control
        assert control is not None
        key = (change.meter, _device_key(change.device))
        before = self._lifecycles.get(key)

        async def record() -> bool:
            if before is not None:  # written (or given up) first, whatever its end
                await asyncio.wait([before])
            return await self._until_written(lambda: control.record(change, now=self.now()))

        task = asyncio.get_running_loop().create_task(record())
        self._lifecycles[key] = task

        def done(task: asyncio.Task[Any]) -> None:
            if self._lifecycles.get(key) is task:  # the device's last: nothing waits on it
                del self._lifecycles[key]

        task.add_done_callback(done)
        keep_task(self._pending, task, LOGGER, "headend worker: a lifecycle change not recorded")
        return task

    def _on_report(self, report: Report) -> asyncio.Future[bool]:
        """Record ``report`` with the others arriving meanwhile, again on the headend's
        back-off while the database is away; the future is done once it is recorded (the
        link acknowledges the report then), or the worker stopped without (its
        :class:`StoreError`: not acknowledged, the broker sends it again). It moves only a
        job of the meter that told it (:attr:`~zse.headend.link.Report.meter`, if known):
        one on another meter's device is refused by the queue, and acknowledged."""
        reported = ReportedOutcome(
            send=report.send,
            device=canonical_eui64(report.device),
            kind=report.kind,
            outcome=report.outcome,
            meter=report.meter,
            event_status=report.event_status,
        )
        return self._reported.submit(reported)

    async def _until_written(self, write: Callable[[], Awaitable[_T]]) -> _T:
        """``write()``, again on the headend's back-off while the database is away, until
        it succeeds or the worker stops (then the :class:`StoreError`: not written)."""
        delay = 1.0
        while True:
            try:
                return await write()
            except StoreError as exc:
                if self._stopping.is_set():
                    raise
                LOGGER.warning("headend worker %s: %s (again in %.0f s)", self.owner, exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, 30.0)


def _cancel_kept() -> None:
    """Raise the current task's cancellation if an error replaced it (a rollback that failed
    once the claim was cancelled): ``cancelling()`` still counts it, but no other
    :class:`asyncio.CancelledError` comes."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class _Batcher(Generic[_T]):
    """Items recorded together (group commit): a write waits up to ``linger`` seconds after
    its first item for others, unless ``most`` are waiting, and those added while a write is
    under way go in the next one (``write(items)``: for each item, whether it was written).
    A write that fails (the database away) is logged; its items count as not written, or,
    ``retry``: are written again, before those added since, on the headend's back-off until
    the write succeeds or the batcher closes (then their :class:`StoreError`)."""

    def __init__(
        self,
        write: Callable[[list[_T]], Awaitable[list[bool]]],
        what: str,
        *,
        owner: str = "",
        retry: bool = False,
        linger: float = 0.0,
        most: int = 64,
    ) -> None:
        self._write, self._what, self._owner, self._retry = write, what, owner, retry
        self._linger, self._most = linger, max(1, most)
        self._items: list[tuple[_T, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._delay = 1.0  # seconds before a failed write is made again (retry)
        #: Writes made, and the items they carried.
        self.writes = self.written = 0

    def submit(self, item: _T) -> asyncio.Future[bool]:
        """Record ``item`` with the others waiting; the future of whether it was written
        (:meth:`add` without a task of its own: a report's acknowledgement hangs on it)."""
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = loop.create_task(self._run())
        done: asyncio.Future[bool] = loop.create_future()
        self._items.append((item, done))
        self._wake.set()
        if len(self._items) >= self._most:
            self._full.set()
        return done

    async def add(self, item: _T) -> bool:
        """Record ``item`` with the others waiting; whether it was written."""
        return await self.submit(item)

    async def _run(self) -> None:
        # ends on its own once closing: a cancel that meets an event being set is lost by
        # Python 3.11's wait_for, which returns the event's result instead
        while not self._closing.is_set():
            await self._wake.wait()
            self._wake.clear()
            if self._linger > 0 and len(self._items) < self._most:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._linger)
            self._full.clear()
            if not await self._flush():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self._delay)
                self._delay = min(self._delay * 2, 30.0)
                self._wake.set()

    async def _flush(self, *, last: bool = False) -> bool:
        """Write what waits; False if it failed and is to be written again (``retry``, not
        the ``last`` write)."""
        taken, self._items = self._items, []
        if not taken:
            return True
        self.writes += 1
        self.written += len(taken)
        try:
            written = await self._write([item for item, _ in taken])
        except asyncio.CancelledError:  # the batcher closing: written by its last flush
            self._items[:0] = taken
            self.written -= len(taken)
            raise
        except StoreError as exc:
            return self._refused(taken, exc, last=last)
        except Exception as exc:  # a fault of the write itself: its items fail with it
            LOGGER.exception("headend worker %s: %d %s failed", self._owner, len(taken), self._what)
            _settle(taken, exc)
            return True
        self._delay = 1.0
        for (_, done), ok in zip(taken, written, strict=True):
            if not done.done():
                done.set_result(ok)
        return True

    def _refused(
        self, taken: list[tuple[_T, asyncio.Future[bool]]], exc: StoreError, *, last: bool
    ) -> bool:
        """The database refused ``taken``'s write: back in the queue to be written again
        (``retry``, not the ``last`` write: False), or each not written."""
        again = self._retry and not last
        LOGGER.warning(
            "headend worker %s: %d %s not recorded: %s%s",
            self._owner,
            len(taken),
            self._what,
            exc,
            f" (again in {self._delay:.0f} s)" if again else "",
        )
        if again:
            self._items[:0] = [each for each in taken if not each[1].done()]
            self.written -= len(taken)
            return False
        _settle(taken, exc if self._retry else False)
        return True

    async def close(self) -> None:
        """Write what is waiting (once: what it fails to write is not written), then stop."""
        self._closing.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._flush(last=True)


def _settle(taken: list[tuple[Any, asyncio.Future[bool]]], result: bool | BaseException) -> None:
    """Each of ``taken``'s futures not done yet: ``result``, or its exception."""
    for _, done in taken:
        if done.done():
            continue
        if isinstance(result, BaseException):
            done.set_exception(result)
            done.exception()  # logged already: not again as never retrieved
        else:
            done.set_result(result)
