"""The retailer headend's operations over the ESIs of its meters (an asyncio shell).

:class:`Headend` carries out what :mod:`zse.headend.core` decides: it registers devices in
their meter's :class:`~zse.provisioning.registry.HanRegistry` and has the meter's
:class:`~zse.roles.esi.EnergyServiceInterface` admit them (SE 5.4.8.1), de-provisions them,
keeps retailers' groups as registry groups of their devices (tag ``retailer/group``), and runs
Send Display Message by Group (SE D.5.2.3.1) and Send Load Control Event by Group (D.2.2.3.1)
on every meter of the group, recording one outcome per device (:mod:`zse.headend.store`).
Devices offline at a send are tried again on a back-off schedule and as soon as they are
METER_READY again; confirmations and Report Event Status update the outcomes.

Every operation is scoped to a retailer: another retailer's device, group or send is "not
found" (:class:`~zse.headend.core.HeadendError` 404), so nothing of it is shown. Registering a
MAC that is provisioned is refused 409 alike whoever holds it (a refusal cannot hide that the
MAC is taken; it names neither the retailer nor the meter). Sends return at once with their
id; they run in the background, and :meth:`Headend.watch` streams their outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import io
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from zse.device_csv import DeviceCsvError, read_devices
from zse.drlc.core import EventIdInUse, UnknownEvent
from zse.errors import DecodeError, StoreError, ZseError
from zse.headend.control import CancelJob
from zse.headend.core import (
    CANCEL_AGAIN,
    CANCEL_GONE,
    CANCEL_OVER,
    CANCEL_TOLD,
    CANCEL_UNSENT,
    DEVICE_TYPES,
    GIVE_UP,
    REFUSED_IN_USE,
    RETRY_SCHEDULE,
    HeadendError,
    LoadControlRequest,
    MessageRequest,
    Miss,
    Outcome,
    Registration,
    RetryBook,
    SendKind,
    Verdict,
    advance,
    after_miss,
    give_up_at,
    given_up_detail,
    iso_zigbee,
    moved_detail,
    outcome_of_report,
    parse_group,
    parse_load_control,
    parse_message,
    parse_registration,
    parse_state,
    refused,
    send_window_end,
    shown,
    superseded_by,
)
from zse.headend.directory import DeviceStatus, EsiMeters, Meter, MeterDirectory
from zse.headend.queue import NOT_SENT_DEPROVISIONED, REPORTED_CANCELLED, JobQueue, JobRow
from zse.headend.store import DeviceOwner, Group, HeadendStore, OutcomeRecord, SendRecord
from zse.installcode import canonical_eui64
from zse.messaging import Message
from zse.messaging.core import MessageError
from zse.provisioning import LifecycleState
from zse.roles.esi import (
    DeviceOutcome,
    DeviceRemoved,
    EsiEvent,
    LifecycleChanged,
    MessageConfirmed,
    ReportReceived,
)
from zse.roles.esi import Outcome as EsiOutcome
from zse.se.types import EventStatus
from zse.zcl._tasks import keep_task
from zse.zcl.timer import Timer

__all__ = ["Headend", "Meter"]  # Meter: zse.headend.directory's, here where it always was

LOGGER = logging.getLogger(__name__)

_FROM_ESI = {
    EsiOutcome.DELIVERED: Outcome.DELIVERED,
    EsiOutcome.OFFLINE: Outcome.OFFLINE,
    EsiOutcome.SKIPPED: Outcome.SKIPPED,
    # A retry of a message that is over by then (its duration ran out, or the ESI cancelled
    # it; SE D.5.2.4.1 would not answer it): not sent, final, never retried again; the ESI's
    # detail says why.
    EsiOutcome.ENDED: Outcome.CANCELLED,
}
#: Seconds of outcomes read again from the queue at each look (workers' clocks differ).
_CLOCK_MARGIN = 10.0
#: The headend API's name among the readers of the work queue's outcomes
#: (:meth:`~zse.headend.queue.JobQueue.mark_read`).
QUEUE_READER = "api"
#: Outcomes after which a device's copy of a send needs nothing more.
_MESSAGE_DONE = frozenset(
    {Outcome.DELIVERED, Outcome.CONFIRMED, Outcome.CANCELLED, Outcome.EXPIRED}
)
_LCE_DONE = frozenset(
    {Outcome.COMPLETED, Outcome.OPTED_OUT, Outcome.REJECTED, Outcome.CANCELLED, Outcome.EXPIRED}
)
#: Outcomes after which a device's copy of a send is over: a cancel leaves them as they are.
#: Not EXPIRED: the headend stopped trying, but the ESI still holds the send for the device.
_CANCEL_ENDS = frozenset({Outcome.CANCELLED})
_LCE_ENDS = _LCE_DONE - {Outcome.EXPIRED}
#: Unicasts of one fan-out to a send's devices (a cancel's Cancels) under way at once on one
#: meter's ESI: half zigpy's default concurrent request slots (``max_concurrent_requests``, 8;
#: bellows sets 8 or 32 by the chip, zigpy-znp 16 or 4, and zigpy queues what does not fit),
#: the rest left to the ESI's other traffic (its answers to the devices, CBKE, retries). A
#: device that is off holds its slot for the radio's whole APS retry time (ZB 2.2.8.4.1).
UNICASTS_PER_METER = 4
#: Why a send has nothing left to cancel, by kind (the 409's message).
_ENDED_WHY = {
    SendKind.MESSAGE: "each device's copy is cancelled or its device is being de-provisioned",
    SendKind.LOAD_CONTROL: "each device's event is completed, opted out of, rejected or"
    " cancelled, or its device is being de-provisioned",
}


class Headend:
    """The retailer HAN service's operations (see the module notes).

    ``meters``: the in-process meters, or a :class:`~zse.headend.directory.MeterDirectory`
    (meters as gateways: :class:`~zse.headend.directory.GatewayMeters`, which needs a
    ``queue``); ``records``: the headend's store; ``clock()``: ZigBee UTCTime (for load
    control start times and record times).

    ``queue`` (utility scale, docs/headend.md): by-group sends fan out as one job per device
    in this work queue, which headend workers (:mod:`zse.headend.worker`) drain, in this
    process or others; their outcomes are read back from it every ``sync`` seconds into the
    headend's records (and its watchers). Without it the sends run here, over the meters'
    ESIs.

    ``give_up``: seconds after a send is made that a device not reached yet (offline, or
    not METER READY) is given up, its outcome ``expired`` (default
    :data:`~zse.headend.core.GIVE_UP`), and after a cancel is made that a device not told
    of it is (its copy stays ``cancelled``, :data:`~zse.headend.core.CANCEL_GIVEN_UP`): in
    process, and by the workers over a queue (the deadline in each job,
    :data:`~zse.headend.queue.GIVE_UP_AT`). ``queue_clock()``: the queue's time, which the
    workers' deadlines are on (:meth:`~zse.headend.worker.Worker.now`: wall-clock time by
    default, as a worker's), for in-process meters served over a queue
    (:class:`~zse.headend.link.EsiLink`); meters as gateways have theirs
    (:class:`~zse.headend.directory.GatewayMeters`).
    """

    def __init__(
        self,
        meters: Iterable[Meter] | MeterDirectory,
        records: HeadendStore,
        *,
        clock: Callable[[], int],
        queue: JobQueue | None = None,
        sync: float = 1.0,
        give_up: float = GIVE_UP,
        queue_clock: Callable[[], float] = time.time,
    ) -> None:
        self.give_up = give_up
        self.directory = (
            meters
            if isinstance(meters, MeterDirectory)
            else EsiMeters(meters, clock=queue_clock, meter_time=clock, queue=queue)
        )
        #: The in-process meters by id (none when the meters are gateways).
        self.meters: dict[str, Meter] = self.directory.esis
        self.records = records
        self.clock = clock
        self.retries = RetryBook()
        self._timer = Timer("headend retries", logger=LOGGER)
        self._timer.add(self.retries, self._retry)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchers: dict[int, set[asyncio.Queue[OutcomeRecord]]] = {}
        self._detach: list[Callable[[], None]] = []
        self._lock = asyncio.Lock()
        #: (send, device) copies being sent, or their Cancel being sent, now, until the
        #: answer is recorded (in process).
        self._busy: set[tuple[int, str]] = set()
        #: Set when a copy of :attr:`_busy` is no longer (a report on it waits till then).
        self._freed: dict[tuple[int, str], asyncio.Event] = {}
        #: (send, device) -> tries in a row that did not reach the device (the back-off's).
        self._failures: dict[tuple[int, str], int] = {}
        #: (send, device) whose cancel job is under way (over a queue; in process a Cancel
        #: to send again has its ``next_try``): the send is not finished before it is over.
        self._cancelling: set[tuple[int, str]] = set()
        #: Held from a read of the cancel jobs until it is taken in (:meth:`_take_told`; a
        #: cancel's, once its copies are written): the reads are taken in in the order they
        #: were made, an older one never after a newer.
        self._told_order = asyncio.Lock()
        #: Held by each writer of copies already recorded (an answer, a report, a cancel, a
        #: de-provisioning, in process as over a queue) from working out its change (from the
        #: copies in memory) until it has landed (:meth:`_change`): the store updates memory
        #: only once a write is on disk, so a change worked out while another write of the
        #: copy was under way undid it, the later to land winning.
        self._copies = asyncio.Lock()
        self.queue = queue
        self.sync = sync
        #: Seconds between looks at the queue when PostgreSQL notifies its changes (the
        #: fallback poll); ``sync`` without notifications (SQLite).
        self.fallback = max(sync, 30.0)
        self._woken = asyncio.Event()
        self._unlisten: Callable[[], Awaitable[None]] | None = None

    async def start(self) -> None:
        """Follow the meters' events, finish what a restart interrupted: registrations whose
        registry entry is missing are dropped (the client never got a 201), a cancel recorded
        but not carried out is carried out, a de-provisioned device's copies left pending end
        unsent, sends left pending are run, offline devices are tried again now. Records of
        devices on a meter this run does not serve (in process): :class:`StoreError`, nothing
        changed (serve it again)."""
        if self.queue is None and not isinstance(self.directory, EsiMeters):
            raise ValueError("meters as gateways need a work queue")
        self._refuse_unserved()
        for meter in self.meters.values():
            self._detach.append(meter.esi.on_event(self._listener(meter)))
        await self.directory.start()
        async with self._told_order:  # every one, at first
            await self._take_told(await self.directory.cancels())
        for eui64, owner in list(self.records.devices.items()):
            if self.directory.status(owner, frozenset()) is None:
                LOGGER.warning("dropping %s: its registration did not complete", eui64)
                await self.records.forget_device(eui64)
        now = asyncio.get_running_loop().time()
        for send in list(self.records.sends.values()):
            if send.cancelled:
                await self._resume_cancel(await self._timed(send), now)
                continue
            await self._change(functools.partial(self._gone_unsent, send))
            if self.queue is not None:  # enqueuing again adds nothing already there
                await self._enqueue(send)
                continue
            for record in self.records.outcomes.get(send.id, {}).values():
                if record.outcome is Outcome.PENDING:
                    self._spawn(self._run(send))
                    break
                if record.outcome in (Outcome.OFFLINE, Outcome.SKIPPED) and not _in_use(record):
                    self.retries.schedule(send.id, record.device, now)
        self._timer.start()
        self._timer.update()
        if self.queue is not None:
            self._unlisten = await self.queue.listen(self._woken.set)
            self._spawn(self._follow_queue())

    def _refuse_unserved(self) -> None:
        """:class:`StoreError` when the records have devices on a meter this run does not
        serve in process (``--sim 1`` after ``--sim 2``): their registry entries are not
        missing, only not here, and dropping them as registrations cut short lost them for
        good (a 409 at registering one again)."""
        if not isinstance(self.directory, EsiMeters):
            return
        unserved = sorted({o.meter for o in self.records.devices.values()} - set(self.meters))
        if unserved:
            raise StoreError(
                f"the headend's records have devices on {', '.join(map(shown, unserved))},"
                " which this run does not serve: serve those meters again (the same --sim N"
                " or --esi files), nothing was changed"
            )

    async def _timed(self, send: SendRecord) -> SendRecord:
        """A cancelled send with the time of its cancel: one recorded before that time was
        kept, and whose cancel is still under way (a copy not over, or a Cancel to be sent
        again), has its Cancels' give-up time counted from now (its first read again). A
        finished one is left as it was written, so that the zse that wrote it still reads
        it (its record shape has no ``cancelled_at``)."""
        if send.cancelled_at is not None:
            return send
        outcomes = self.records.outcomes.get(send.id, {}).values()
        if not any(r.next_try or not self._ended(send, r) for r in outcomes):
            return send
        send = replace(send, cancelled_at=self.clock())
        await self.records.put_send(send)
        return send

    async def _resume_cancel(self, send: SendRecord, now: float) -> None:
        """At start: a cancel cut short (a copy not over) is carried out now, and (in
        process) a Cancel not acknowledged yet is sent again now."""
        outcomes = list(self.records.outcomes.get(send.id, {}).values())
        going = [r for r in outcomes if not self._ended(send, r) and self._theirs(send, r.device)]
        if going:
            await self._cancel_going(send, going)
        for record in outcomes:
            if self.queue is None and record.outcome is Outcome.CANCELLED and record.next_try:
                self.retries.schedule(send.id, record.device, now)

    async def close(self) -> None:
        """Stop following the meters and cancel background work (the stores stay open)."""
        for detach in self._detach:
            detach()
        self._detach.clear()
        await self._timer.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._unlisten is not None:
            await self._unlisten()
            self._unlisten = None

    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work)
        keep_task(self._tasks, task, LOGGER, "headend work failed", logging.ERROR)
        return task

    # -- devices -----------------------------------------------------------------------------

    def _owned(self, retailer: str, eui64: str) -> DeviceOwner:
        try:
            key = canonical_eui64(eui64)
        except DecodeError:
            raise HeadendError(404, "no such device", field="mac") from None
        owner = self.records.devices.get(key)
        if owner is None or owner.retailer != retailer:
            raise HeadendError(404, f"no device {key}", field="mac")
        return owner

    def device(self, retailer: str, eui64: str) -> dict[str, Any]:
        """A device's view: identity, meter, type, label, lifecycle state, groups."""
        return self._view(self._owned(retailer, eui64))

    @property
    def meter_ids(self) -> tuple[str, ...]:
        """The meters devices can be registered on, sorted."""
        return self.directory.ids

    def _status(self, owner: DeviceOwner) -> DeviceStatus:
        status = self.directory.status(owner, frozenset(self._tags(owner.retailer, owner.meter)))
        if status is None:  # its meter lost it: shown as not (yet) registered there
            return DeviceStatus(state=LifecycleState.NEW, joined=False, groups=frozenset())
        return status

    def _view(self, owner: DeviceOwner) -> dict[str, Any]:
        status = self._status(owner)
        prefix = owner.retailer + "/"
        view = {
            "mac": owner.eui64,
            "meter": owner.meter,
            "device_type": owner.device_type,
            "label": owner.label,
            "state": status.state.value,
            "joined": status.joined,
            "groups": sorted(g.removeprefix(prefix) for g in status.groups if g.startswith(prefix)),
        }
        if status.detail:
            view["detail"] = status.detail
        return view

    async def history(self, retailer: str, eui64: str) -> list[dict[str, Any]]:
        """A device's lifecycle history, oldest first (its meter registry's audit trail, or
        the headend's own record for a gateway's device), since its registration by the
        retailer that holds it now: what came before was another registration's, maybe
        another retailer's."""
        entries = await self.directory.history(self._owned(retailer, eui64))
        ended = [  # a registration ends at DE-PROVISION COMPLETE; what follows is the next's
            i
            for i, e in enumerate(entries[:-1])
            if e.get("to_state") == LifecycleState.DEPROVISION_COMPLETE.value
        ]
        return entries[ended[-1] + 1 :] if ended else entries

    def devices(
        self,
        retailer: str,
        *,
        meter: str | None = None,
        group: str | None = None,
        state: str | None = None,
    ) -> list[dict[str, Any]]:
        """A retailer's devices, by MAC, optionally on one meter, in one group, in one state."""
        wanted = parse_state(state) if state is not None else None
        meters = None
        if group is not None:
            meters = set(self._group(retailer, group).meters)
        views = []
        for owner in sorted(self.records.devices.values(), key=lambda o: o.eui64):
            if owner.retailer != retailer or (meter is not None and owner.meter != meter):
                continue
            if meters is not None and owner.meter not in meters:
                continue
            view = self._view(owner)
            if wanted is not None and view["state"] != wanted.value:
                continue
            views.append(view)
        return views

    def _tags(self, retailer: str, meter: str) -> set[str]:
        """The registry groups of a retailer's device on ``meter``: its groups covering it."""
        return {
            g.key
            for g in self.records.groups.values()
            if g.retailer == retailer and meter in g.meters
        }

    async def register(self, retailer: str, body: object) -> dict[str, Any]:
        """Register a HAN device and have its meter admit it (NEW -> PENDING_PROVISIONING;
        METER_READY once it joins and runs CBKE). Returns the device's view."""
        registration = parse_registration(body, meters=self.meter_ids)
        async with self._lock:
            return await self._register(retailer, registration)

    async def _register(self, retailer: str, registration: Registration) -> dict[str, Any]:
        if self.directory.taken(registration.eui64):
            message = f"mac: device {registration.eui64} is already provisioned"
            raise HeadendError(409, message, field="mac")
        previous = self.records.devices.get(registration.eui64)
        owner = DeviceOwner(
            eui64=registration.eui64,
            retailer=retailer,
            meter=registration.meter,
            device_type=registration.device_type,
            label=registration.label,
        )
        await self.records.put_device(owner)  # first: a crash after it is undone at start()
        try:
            then = await self.directory.register(
                owner,
                registration.install_code,
                frozenset(self._tags(retailer, registration.meter)),
                previous,
            )
        except HeadendError:
            await self.records.forget_device(owner.eui64)
            raise
        if then is not None:
            self._spawn(then())
        return self._view(owner)

    async def import_csv(
        self, retailer: str, text: str, *, meter: str, device_type: str
    ) -> dict[str, Any]:
        """Register the devices of a devices CSV (:mod:`zse.device_csv`, as ``zse
        installcode --csv`` writes) on ``meter`` as ``device_type``; each bad row is reported
        with its line and not registered, the good ones are."""
        registered: list[str] = []
        errors: list[dict[str, Any]] = []
        base = {"meter": meter, "device_type": device_type}
        if meter not in self.meter_ids:
            raise HeadendError(404, f"meter: no meter {shown(meter)}", field="meter")
        if device_type not in DEVICE_TYPES:
            raise HeadendError(
                422, "device_type: one of " + ", ".join(DEVICE_TYPES), field="device_type"
            )
        try:
            # lines end at \n, \r\n or \r only, as zse installcode --csv reads them (ends
            # kept): str.splitlines also ends one inside a label, at U+2028, NEL, a form feed
            rows = list(read_devices(io.StringIO(text, newline="")))
        except DeviceCsvError as exc:
            raise HeadendError(422, f"csv: {exc}", field="csv") from None
        for row in rows:  # the lock row by row: another retailer's request waits for one row,
            async with self._lock:  # not for the whole file (12,000 rows took 24 s)
                if isinstance(row, DeviceCsvError):
                    errors.append({"line": row.line, "error": str(row)})
                    continue
                body = {
                    **base,
                    "mac": row.eui64,
                    "install_code": row.install_code,
                    "label": row.label,
                }
                try:
                    view = await self._register(
                        retailer, parse_registration(body, meters=self.meter_ids)
                    )
                except HeadendError as exc:
                    if exc.field in ("meter", "device_type"):
                        raise
                    errors.append({"line": row.line, "error": exc.message})
                    continue
                registered.append(view["mac"])
        return {"registered": registered, "errors": errors}

    async def deprovision(self, retailer: str, eui64: str) -> dict[str, Any]:
        """De-provision a device: METER_READY -> PENDING_DE-PROVISIONING (-> DE-PROVISION
        COMPLETE when it leaves), or straight to complete if it never joined."""
        owner = self._owned(retailer, eui64)
        await self.directory.deprovision(owner)
        async with self._lock:  # after a send being made: its jobs are queued, then ended
            await self._forsake(owner.eui64)
        return self._view(owner)

    async def _forsake(self, key: str) -> None:
        """A device de-provisioned: its sends not delivered yet, and the Cancels it has not
        taken yet, are not tried again (the device may come back registered by another
        retailer, whose device it then is)."""
        for send_id, outcomes in self.records.outcomes.items():
            if key in outcomes:
                self.retries.drop(send_id, key)
        self._timer.update()
        if self.queue is not None:  # at the queue's time: a purge keeps them for their while
            await self.queue.forsake(key, now=self._queue_now())
            await self.directory.forsake(key)  # nor its Cancels sent again
        # final in the records too: start() enqueues again only what is pending there
        await self._change(
            lambda: self._unsent(
                r
                for outcomes in self.records.outcomes.values()
                if (r := outcomes.get(key)) is not None and r.outcome is Outcome.PENDING
            )
        )

    def _queue_now(self) -> float:
        """The work queue's time now (the workers' clock, as the jobs' ``updated`` and the
        purge's retention count it); wall-clock time where the directory does not know it."""
        now = self.directory.queue_time(self.clock())
        return time.time() if now is None else now

    def _gone(self, send: SendRecord, record: OutcomeRecord) -> bool:
        """Whether a device's copy of ``send`` goes to nobody: the device is no longer the
        send's retailer's, or is being (or was) de-provisioned (:meth:`_forsake` cut short),
        or its de-provisioning was asked for (over gateways, before the gateway's event)."""
        state = self.directory.state(record.device, record.meter)
        return (
            not self._theirs(send, record.device)
            or state in (LifecycleState.PENDING_DEPROVISIONING, LifecycleState.DEPROVISION_COMPLETE)
            or self.directory.leaving(record.device, record.meter)
        )

    def _free(self, key: tuple[int, str]) -> None:
        """A copy is no longer being sent (or its Cancel): the reports on it that came
        meanwhile are recorded now, on what its answer left."""
        self._busy.discard(key)
        freed = self._freed.pop(key, None)
        if freed is not None:
            freed.set()

    def _unsent(self, records: Iterable[OutcomeRecord]) -> list[OutcomeRecord]:
        """``records`` ended unsent, their device de-provisioned: ``skipped``, not tried
        again, never enqueued again."""
        return [
            replace(
                r,
                outcome=Outcome.SKIPPED,
                detail=NOT_SENT_DEPROVISIONED,
                next_try=0.0,
                updated=self.clock(),
            )
            for r in records
        ]

    def _gone_unsent(self, send: SendRecord) -> list[OutcomeRecord]:
        """``send``'s copies left pending to a device gone (:meth:`_gone`) ended unsent
        (:meth:`_unsent`), as they stand: at start, over a work queue, a report the meter's
        ESI tells meanwhile moves a pending copy on (:meth:`_report_change`), and the unsent
        write, worked out while the report's was under way, landed last over it."""
        outcomes = self.records.outcomes.get(send.id, {}).values()
        return self._unsent(
            r for r in outcomes if r.outcome is Outcome.PENDING and self._gone(send, r)
        )

    def _pending_unsent(self, send_id: int, device: str) -> list[OutcomeRecord]:
        """``device``'s copy of the send ended unsent (:meth:`_unsent`) if it is pending
        still: once its de-provisioning's write of it has landed, it is not written twice."""
        record = self.records.outcomes.get(send_id, {}).get(device)
        if record is None or record.outcome is not Outcome.PENDING:
            return []
        return self._unsent([record])

    def _theirs(self, send: SendRecord, key: str) -> bool:
        """Whether the device ``key`` is still registered to the retailer of ``send``."""
        owner = self.records.devices.get(key)
        return owner is not None and owner.retailer == send.retailer

    # -- groups ------------------------------------------------------------------------------

    def _group(self, retailer: str, name: str) -> Group:
        group = self.records.groups.get(f"{retailer}/{name}")
        if group is None:
            raise HeadendError(404, f"group: no group {shown(name)}", field="group")
        return group

    def groups(self, retailer: str) -> list[dict[str, Any]]:
        """A retailer's groups."""
        return [
            _group_view(g) for _, g in sorted(self.records.groups.items()) if g.retailer == retailer
        ]

    def group(self, retailer: str, name: str) -> dict[str, Any]:
        """One of a retailer's groups."""
        return _group_view(self._group(retailer, name))

    async def put_group(self, retailer: str, body: object) -> dict[str, Any]:
        """Create or replace a group (a name and its meters); its devices' registry groups
        follow."""
        request = parse_group(body, meters=self.meter_ids)
        group = Group(retailer=retailer, name=request.name, meters=request.meters)
        async with self._lock:
            await self.records.put_group(group)
            await self._retag(retailer)
        return _group_view(group)

    async def delete_group(self, retailer: str, name: str) -> None:
        """Delete a group (its sends and outcomes stay)."""
        group = self._group(retailer, name)
        async with self._lock:
            await self.records.delete_group(group)
            await self._retag(retailer)

    async def _retag(self, retailer: str) -> None:
        for owner in self.records.devices.values():
            if owner.retailer != retailer:
                continue
            await self.directory.retag(owner, frozenset(self._tags(retailer, owner.meter)))

    # -- sends -------------------------------------------------------------------------------

    async def send_message(self, retailer: str, body: object) -> dict[str, Any]:
        """Send Display Message by Group (SE D.5.2.3.1): returns the send with its id."""
        request = parse_message(body)
        return await self._send(retailer, SendKind.MESSAGE, request.group, _request(request))

    async def send_load_control(self, retailer: str, body: object) -> dict[str, Any]:
        """Send Load Control Event by Group (SE D.2.2.3.1): returns the send with its id."""
        request = parse_load_control(body)
        return await self._send(retailer, SendKind.LOAD_CONTROL, request.group, _request(request))

    async def _send(
        self, retailer: str, kind: SendKind, group_name: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        group = self._group(retailer, group_name)
        async with self._lock:
            send = SendRecord(
                id=self.records.next_send_id(),
                retailer=retailer,
                kind=kind,
                group=group.name,
                request=request,
                created=self.clock(),
            )
            outcomes = [
                OutcomeRecord(
                    send=send.id,
                    device=o.eui64,
                    meter=o.meter,
                    outcome=Outcome.PENDING,
                    updated=send.created,
                )
                for o in sorted(self.records.devices.values(), key=lambda o: o.eui64)
                if o.retailer == retailer and o.meter in group.meters and self._chosen(o, group)
            ]
            # a device being de-provisioned is sent nothing (over a queue nothing checks it
            # again before its job is carried out, maybe once it is another retailer's)
            outcomes = [self._unsent([r])[0] if self._gone(send, r) else r for r in outcomes]
            await self.records.put_send(send, outcomes)
            if self.queue is not None:  # in the lock: a de-provisioning ends what it queues
                await self._enqueue(send)
        if self.queue is None:
            self._spawn(self._run(send))
        return self.send(retailer, send.id)

    def _chosen(self, owner: DeviceOwner, group: Group) -> bool:
        """Whether a device of the group's meters gets the group's send: in the group and
        not de-provisioned."""
        status = self._status(owner)
        ended = status.state is LifecycleState.DEPROVISION_COMPLETE
        return group.key in status.groups and not ended

    async def _enqueue(self, send: SendRecord) -> None:
        """The send's jobs in the queue: one per device still pending (D.5.2.3.1, D.2.2.3.1:
        the message id or issuer event id is the send id)."""
        assert self.queue is not None
        if send.kind is SendKind.MESSAGE:
            # its window from the send's creation (D.5.2.3.1.1.3): a job carried out late, or
            # again after the device was offline, shows what is left of it, nothing once over
            message = dataclasses.replace(self._message(send), start_time=send.created)
            payload = dataclasses.asdict(message)
        else:
            payload = dataclasses.asdict(_lce_request(send).event(send.id, send.created))
        devices = [
            (r.device, r.meter)
            for r in self.records.outcomes.get(send.id, {}).values()
            if r.outcome is Outcome.PENDING
        ]
        # a device not reached by then is given up by the workers (on their clock)
        give_up_at = self.directory.queue_time(send.created + int(self.give_up))
        await self.queue.enqueue(
            send.id,
            send.kind,
            payload,
            devices,
            now=0.0,
            give_up_at=give_up_at,
            give_up_after=self.give_up,
        )

    async def _follow_queue(self) -> None:
        """Read the workers' outcomes back from the queue into the records, forward only: when
        a worker notifies a change (PostgreSQL LISTEN/NOTIFY), else every ``sync`` seconds
        (and every ``fallback`` seconds with notifications, in case one was missed). What is
        saved is marked read, so the workers' purge never deletes an outcome this API has
        not taken in, however long it was away."""
        assert self.queue is not None
        since: float | None = None
        while True:
            rows = await self.queue.rows(since=since)
            if rows:  # the workers' clocks may differ a little: read a margin again
                since = max(r.updated for r in rows) - _CLOCK_MARGIN
            await self._change(functools.partial(self._from_queue, rows))
            if rows and since is not None:  # saved: the workers' purge may have these now
                await self.queue.mark_read(QUEUE_READER, since)
            await self.directory.refresh()
            async with self._told_order:
                await self._take_told(await self.directory.cancels())
            # woken by a worker's notification (PostgreSQL), else the next poll
            wait = self.sync if self._unlisten is None else self.fallback
            with contextlib.suppress(TimeoutError):  # not wait_for: 3.11 loses a cancel (gh-86296)
                async with asyncio.timeout(wait):
                    await self._woken.wait()
            self._woken.clear()

    def _from_queue(self, rows: Iterable[JobRow]) -> list[OutcomeRecord]:
        """The copies as the workers' ``rows`` move them on, from the copies in memory."""
        changed = []
        for row in rows:
            before = self.records.outcomes.get(row.send, {}).get(row.device)
            send = self.records.sends.get(row.send)
            if before is None or send is None or not self._theirs(send, row.device):
                continue  # a device now another retailer's: its reports are not the send's
            after = advance(before.outcome, row.outcome)
            if after is None and before.attempts == row.attempts:
                continue
            detail = row.detail
            if before.outcome is Outcome.CANCELLED:
                # final (nothing moves it on): a later row only counts a try (a delivery
                # answered after the copy was cancelled), its detail the delivery's; the
                # copy keeps its own: its Cancel's (:meth:`_told`; as it was at the
                # cancel until the Cancel is tried), "superseded by send N" (0x07), why
                # it was over
                detail = before.detail
            elif detail == REPORTED_CANCELLED:
                # cancelled on the device (Report Event Status 0x06): the copy keeps its
                # own detail, as in process (:meth:`_report_change`), none if it had not
                # reached the device ("no APS acknowledgement", "given up")
                detail = moved_detail(before.outcome, before.detail, Outcome.CANCELLED)
            elif after is Outcome.CANCELLED and not detail and not send.cancelled:
                # a load control event the retailer did not cancel, reported superseded
                # (0x07; or by a zse that kept no status: as it always read)
                detail = self._superseded(send, row.device)
            else:  # the row's, but one behind the copy (its device's confirmation, heard
                # here meanwhile) only counts a try, and a report clears why it was not reached
                detail = moved_detail(before.outcome, before.detail, row.outcome, row.detail)
            changed.append(
                replace(
                    before,
                    outcome=after or before.outcome,
                    detail=detail,
                    attempts=row.attempts,
                    updated=self.clock(),
                )
            )
        return changed

    async def _take_told(self, jobs: Iterable[CancelJob]) -> None:
        """Take in how the cancel jobs stand (:meth:`_told`): the copies' details written
        first, their jobs marked over only then, so that a send reads ``finished`` once its
        copies say how their Cancels went, never before (a reader in between, an API client
        or a watcher, saw it finished with the details of before)."""
        over: set[tuple[int, str]] = set()

        def told() -> list[OutcomeRecord]:
            changed, ended = self._told(jobs)
            over.update(ended)
            return changed

        await self._change(told)
        self._cancelling.difference_update(over)

    def _told(self, jobs: Iterable[CancelJob]) -> tuple[list[OutcomeRecord], set[tuple[int, str]]]:
        """The cancelled copies whose Cancel goes on elsewhere (their cancel jobs, over a
        queue), with how it went, in the words of the in-process headend (given up,
        acknowledged, sent again...; a job not tried yet leaves the detail as it was), and
        whether it is under way still (:attr:`_cancelling`: the send is not finished until
        it is over; a job under way is marked so at once, the (send, device) of those over
        are returned, to be marked once the copies are written: :meth:`_take_told`); a copy
        not cancelled by its retailer (superseded, over) keeps its own."""
        changed = []
        over: set[tuple[int, str]] = set()
        for job in jobs:
            key = (job.send, job.device)
            was = key in self._cancelling
            if job.open:
                self._cancelling.add(key)
            else:
                over.add(key)
            send = self.records.sends.get(job.send)
            record = self.records.outcomes.get(job.send, {}).get(job.device)
            if send is None or record is None or not send.cancelled:
                continue
            detail = job.shown() or record.detail
            if detail == CANCEL_TOLD and self._gone(send, record):
                # the gateway's "never told" (de-provisioned) ends its job as a Cancel taken
                detail = CANCEL_GONE
            moved = record.detail != detail or was != job.open  # a watcher sees it end
            if record.outcome is Outcome.CANCELLED and moved:
                changed.append(replace(record, detail=detail, updated=self.clock()))
        return changed, over

    def _message(self, send: SendRecord) -> Message:
        return _message_request(send).message(send.id)

    async def _run(self, send: SendRecord) -> None:
        """Send to each device of the send's outcome list, one unicast each, the devices
        together as a cancel's Cancels (:func:`_fan_out`: every meter at once, a few devices
        at a time on each), and record each device's outcome (the list is the group's members
        when the send was accepted: a device that joins the group later is not sent it, one
        whose meter leaves the group still is). Devices that are off cost one APS retry time,
        not one each. A device reached after the send was cancelled is not sent it."""

        async def deliver(record: OutcomeRecord) -> None:
            if self.records.outcomes[send.id][record.device].outcome is Outcome.PENDING:
                await self._deliver(send.id, record.device)

        await _fan_out(list(self.records.outcomes.get(send.id, {}).values()), deliver)

    async def _deliver(self, send_id: int, device: str) -> None:
        """Send (or send again) ``device``'s copy of a send and record its outcome, unless the
        send is cancelled (its cancel takes care of the copy). A cancel that came while the
        copy was under way follows it here (SE D.5.2.3.2 / D.2.2.3.2)."""
        send = self.records.sends[send_id]
        record = self.records.outcomes.get(send_id, {}).get(device)
        key = (send_id, device)
        if send.cancelled or record is None or key in self._busy:
            return
        if record.outcome not in _SENT_HERE or _in_use(record):
            return  # over; or refused, the ESI's send of that id another source's: not resent
        if record.outcome is Outcome.PENDING and self._gone(send, record):
            await self._change(functools.partial(self._pending_unsent, send_id, device))
            return
        if not self._theirs(send, device):
            return
        esi = self.meters[record.meter].esi
        self._busy.add(key)
        try:
            result: DeviceOutcome
            if record.outcome is Outcome.PENDING:
                try:
                    if send.kind is SendKind.MESSAGE:
                        sent = await esi.send_message(self._message(send), device=device)
                    else:
                        event = _lce_request(send).event(send.id, send.created)
                        sent = await esi.send_load_control(event, device=device)
                except (EventIdInUse, DeviceRemoved) as exc:  # refused, as a bridge answers
                    await self._refused_by_esi(send, device, exc)
                    return
                (result,) = sent.outcomes
            elif send.kind is SendKind.MESSAGE:
                result = await esi.resend_message(self._message(send), device)
            else:
                result = await esi.resend_load_control(send.id, device)
            await self._record(send, [result])
        finally:
            self._free(key)
        if self.records.sends[send_id].cancelled:  # cancelled meanwhile: the cancel follows
            await self._cancel_device(self.records.sends[send_id], device)

    async def _refused_by_esi(self, send: SendRecord, device: str, exc: Exception) -> None:
        """``device``'s copy of ``send`` refused by its ESI, which holds the id from another
        source with other content: ``skipped``, final (:func:`_in_use`), whatever a report
        on the id (the other source's event) moved it to while it was being sent. A device
        de-provisioned meanwhile (:class:`DeviceRemoved`) ends unsent, as :meth:`_unsent`.
        Worked out once no other write of the copy is under way (:meth:`_change`: a
        de-provisioning's ``skipped``, worked out meanwhile from ``pending``, landed last
        over the refusal)."""
        if isinstance(exc, DeviceRemoved):
            await self._change(functools.partial(self._pending_unsent, send.id, device))
            return
        self.retries.drop(send.id, device)
        self._failures.pop((send.id, device), None)

        def ended() -> list[OutcomeRecord]:
            record = self.records.outcomes[send.id][device]
            detail = refused("issuer_event_id", exc)
            return [
                replace(
                    record,
                    outcome=Outcome.SKIPPED,
                    detail=detail,
                    next_try=0.0,
                    updated=self.clock(),
                )
            ]

        await self._change(ended)

    async def _record(self, send: SendRecord, outcomes: Iterable[DeviceOutcome]) -> None:
        """The ESI's answers recorded on the copies as they stand once no other write of
        them is under way (:meth:`_change`: a de-provisioning's ``skipped``, worked out
        meanwhile from ``pending``, landed last over a delivery)."""
        await self._change(functools.partial(self._recorded, send, list(outcomes)))

    def _recorded(self, send: SendRecord, outcomes: list[DeviceOutcome]) -> list[OutcomeRecord]:
        now = asyncio.get_running_loop().time()
        changed = []
        current = self.records.outcomes.get(send.id, {})
        for result in outcomes:
            key = canonical_eui64(result.device)
            before = current.get(key)
            if before is None:
                continue
            reported = _FROM_ESI[result.outcome]
            after = advance(before.outcome, reported)
            attempts = before.attempts + (
                result.outcome in (EsiOutcome.DELIVERED, EsiOutcome.OFFLINE)
            )
            if after is None:
                after = before.outcome
            record = replace(
                before,
                outcome=after,
                # an answer behind the copy (its device's confirmation came meanwhile) only
                # counts a try: "no APS acknowledgement" is not the confirmed copy's detail
                detail=moved_detail(before.outcome, before.detail, reported, result.detail),
                attempts=attempts,
                updated=self.clock(),
                next_try=0.0,
            )
            retry = after in (Outcome.OFFLINE, Outcome.SKIPPED) and self._retryable(send, record)
            miss = self._miss(send, key) if retry else None
            if miss is not None and miss.verdict is Verdict.AGAIN:
                record = replace(record, next_try=now + miss.delay)
                self.retries.schedule(send.id, key, record.next_try)
            else:
                self._failures.pop((send.id, key), None)
            if miss is not None and miss.verdict is Verdict.GIVEN_UP:
                detail = given_up_detail(self.give_up, result.detail or after.value)
                record = replace(record, outcome=Outcome.EXPIRED, detail=detail)
            changed.append(record)
        return changed

    def _miss(self, send: SendRecord, device: str) -> Miss:
        """The core's decision (:func:`~zse.headend.core.after_miss`) after a try of
        ``device``'s copy of ``send``, or of its Cancel once the send is cancelled, that did
        not reach it, now: its tries in a row that did not (skipped ones too, kept in
        memory: a restart begins the back-off again; a Cancel's counted from the cancel, not
        continuing the send's), the send's window (ZigBee UTCTime) and
        its give-up time, counted from the send or from the cancel."""
        key = (send.id, device)
        cancelled_at = None
        if send.cancelled:  # its time is set at the cancel, or at start (:meth:`_timed`)
            cancelled_at = self.clock() if send.cancelled_at is None else send.cancelled_at
        miss = after_miss(
            self._failures.get(key, 0),
            now=self.clock(),
            give_up_at=give_up_at(self.give_up, created=send.created, cancelled_at=cancelled_at),
            window_end=send_window_end(send.kind, send.request, send.created),
            cancel=send.cancelled,
        )
        self._failures[key] = miss.failures
        return miss

    def _retryable(self, send: SendRecord, record: OutcomeRecord) -> bool:
        """Whether a device not reached is tried again: not for a cancelled send, nor for a
        device being or already de-provisioned (its outcome stays "skipped"), nor one whose
        ESI refused the send's id, in use there by another source (:func:`_in_use`)."""
        if send.cancelled or _in_use(record):
            return False
        state = self.directory.state(record.device, record.meter)
        return state is not None and state not in (
            LifecycleState.PENDING_DEPROVISIONING,
            LifecycleState.DEPROVISION_COMPLETE,
        )

    async def _change(self, compute: Callable[[], list[OutcomeRecord]]) -> None:
        """Write the copies ``compute()`` works out from those in memory, once no other
        such change is under way, and hold the others back until it has landed (the store
        updates memory after the disk): worked out meanwhile, from what memory still
        showed, one undid the other, the later to land winning (a cancelled copy read
        ``delivered`` again, a delivered one ``skipped``)."""
        async with self._copies:
            await self._save(compute())

    async def _save(self, changed: list[OutcomeRecord]) -> None:
        await self.records.put_outcomes(changed)
        self._timer.update()
        for record in changed:
            for queue in self._watchers.get(record.send, ()):
                queue.put_nowait(record)

    async def _retry(self, due: list[tuple[int, str]]) -> None:
        """Try the due devices again, one unicast each, together (:func:`_fan_out`): the
        devices still off cost one retry time, not one each, before the first device back
        is reached. A message is sent as the ESI holds it now (its remaining duration); one
        over by then is not sent, and the device's outcome becomes ``cancelled`` (final: not
        tried again) with the ESI's reason as its detail. A cancelled send's Cancel not
        acknowledged yet is sent again, the due Cancels together too, once the copies were
        tried. A delivery that fails (a store write) keeps none of the round's Cancels from
        going out; its error is raised after them, and its copy is tried again after the
        back-off's first step (:data:`~zse.headend.core.RETRY_SCHEDULE`): taken from the
        retries, its outcome not written, it was tried again only after a restart (a copy
        delivered stayed ``offline`` meanwhile)."""
        cancels: list[OutcomeRecord] = []
        deliveries: list[OutcomeRecord] = []
        for send_id, device in due:
            send = self.records.sends.get(send_id)
            record = self.records.outcomes.get(send_id, {}).get(device)
            if send is None or record is None:
                continue
            if send.cancelled:
                if record.outcome is Outcome.CANCELLED and record.next_try:
                    cancels.append(record)
                continue
            deliveries.append(record)

        async def deliver(record: OutcomeRecord) -> None:
            try:
                await self._deliver(record.send, record.device)
            except Exception:
                again = asyncio.get_running_loop().time() + RETRY_SCHEDULE[0]
                self.retries.schedule(record.send, record.device, again)
                raise

        failure: Exception | None = None
        try:
            await _fan_out(deliveries, deliver)
        except Exception as exc:  # raised once the Cancels are out (a cancel of the round: at once)
            failure = exc
        await _fan_out(cancels, self._cancel_again)
        if failure is not None:
            raise failure

    async def _cancel_again(self, record: OutcomeRecord) -> None:
        """Send ``record``'s Cancel again, its send as it stands now."""
        send = self.records.sends.get(record.send)
        if send is not None:
            await self._cancel_device(send, record.device)

    async def cancel(self, retailer: str, send_id: int) -> dict[str, Any]:
        """Cancel a send where it is still under way (Cancel Message D.5.2.3.2 / Cancel Load
        Control Event D.2.2.3.2): the devices whose copy has not ended become cancelled; the
        others keep their outcome and are sent nothing (outcomes move forward only). A send
        already cancelled, or whose every copy has ended (:meth:`_ended`), is refused (409); a
        cancel recorded but cut short (the API stopped) is carried out, not refused."""
        send = self._owned_send(retailer, send_id)
        async with self._lock:
            send = self._owned_send(retailer, send_id)
            going = [
                r
                for r in self.records.outcomes.get(send.id, {}).values()
                if not self._ended(send, r)
            ]
            if send.cancelled and not going:
                raise HeadendError(409, f"send {send_id} is already cancelled", field="id")
            if not going:
                raise HeadendError(
                    409,
                    f"send {send_id} has finished: no device's copy is still under way"
                    f" ({_ENDED_WHY[send.kind]}), so there is nothing to cancel",
                    field="id",
                )
            if not send.cancelled or send.cancelled_at is None:
                send = await self.records.cancel_send(send, at=self.clock())
        await self._cancel_going(send, going)
        return self.send(retailer, send.id)

    async def _cancel_going(self, send: SendRecord, going: list[OutcomeRecord]) -> None:
        """Carry out the cancel of ``send`` (recorded) on the devices of ``going``: its jobs
        cancelled, the Cancel commands sent or queued, the outcomes cancelled last, so that a
        cancel cut short is carried out again (at start, or when asked again): each step
        may run twice (the queue's cancel is conditional, the control jobs' keys the same).
        In process, each device's Cancel is sent and followed as a send is
        (:meth:`_cancel_device`), on a back-off of its own from the schedule's start, the
        devices' Cancels at once (:func:`_fan_out`): a device that is off costs one APS
        retry time, not one each."""
        self.retries.drop(send.id)
        if self.queue is None:

            async def tell(record: OutcomeRecord) -> None:
                # a Cancel is a new thing to deliver: its back-off starts again (30 s, 60 s
                # ...), not where the send's misses left it, as a gateway's cancel job's does
                self._failures.pop((send.id, record.device), None)
                await self._cancel_device(send, record.device)

            await _fan_out(going, tell)
            return
        # a copy never sent is withdrawn, atomically with the workers' claims: no Cancel
        devices = [r.device for r in going]
        unsent = await self.queue.cancel(send.id, now=self._queue_now(), devices=devices)
        # a device no longer the send's retailer's (or being de-provisioned) is sent no
        # Cancel, as in process (:meth:`_untold`): it may be another retailer's device now
        gone = {r.device for r in going if r.device not in unsent and self._gone(send, r)}
        told = [r for r in going if r.device not in unsent and r.device not in gone]
        said = dict.fromkeys(gone, CANCEL_GONE) | dict.fromkeys(unsent, CANCEL_UNSENT)
        self._cancelling.update((send.id, r.device) for r in told)  # read back when over
        async with self._told_order:  # the jobs read here taken in before a later read
            jobs = await self.directory.cancel(send, told, give_up=self.give_up)

            def cancelled() -> list[OutcomeRecord]:
                current = self.records.outcomes.get(send.id, {})
                return [
                    replace(
                        r,
                        outcome=Outcome.CANCELLED,
                        detail=said.get(r.device, r.detail),
                        next_try=0.0,
                        updated=self.clock(),
                    )
                    for r in (current[g.device] for g in going)
                    # a report may have ended it meanwhile; a look at the queue may have
                    # taken in its job cancelled (its words the queue's): told why nonetheless
                    if not self._ended(send, r)
                    or (r.outcome is Outcome.CANCELLED and said.get(r.device, r.detail) != r.detail)
                ]

            await self._change(cancelled)
            # as they stand: a job queued before (a cancel carried out again) may be over
            await self._take_told(jobs)

    async def _cancel_device(self, send: SendRecord, device: str) -> None:
        """Take ``send`` back from one device (in process): a copy never given to the ESI is
        cancelled at once (nothing to take back); otherwise Cancel Message / Cancel Load
        Control Event is unicast to it, and its outcome is ``cancelled`` with ``detail``
        saying whether it acknowledged it (a copy skipped, the device still not METER READY:
        withdrawn at the ESI, "cancelled before it was sent"). One it did not is sent again
        on the back-off and when the device is METER READY again, until it does, the send's
        window is over, the device is de-provisioned or the cancel's give-up time has passed
        (:meth:`_miss`: then not sent again, :data:`~zse.headend.core.CANCEL_GIVEN_UP`). A
        copy being sent now is left to its delivery, which sends the Cancel after it."""
        key = (send.id, device)
        record = self.records.outcomes.get(send.id, {}).get(device)
        if record is None or key in self._busy or not self._to_cancel(send, record):
            return
        self.retries.drop(send.id, device)
        untold = self._untold(send, record)
        if untold is not None:
            await self._cancelled(send, device, untold)
            return
        # skipped: never sent to the device, but recorded for it at the ESI, which withdraws it
        unsent = record.outcome is Outcome.SKIPPED
        esi = self.meters[record.meter].esi
        self._busy.add(key)
        try:  # a report on the copy meanwhile is recorded once the Cancel's answer is
            try:
                if send.kind is SendKind.MESSAGE:
                    result = await esi.cancel_message(send.id, device=device)
                else:
                    result = await esi.cancel_load_control(send.id, device=device)
            except (MessageError, UnknownEvent):  # the ESI never held it: nothing to cancel
                await self._cancelled(send, device, CANCEL_UNSENT)
                return
            except ZseError as exc:  # the ESI stopped, say: tried again on the back-off
                told = DeviceOutcome(device=device, outcome=EsiOutcome.OFFLINE, detail=str(exc))
            else:
                (told,) = result.outcomes
            if told.outcome is EsiOutcome.DELIVERED or (
                unsent and told.outcome is EsiOutcome.SKIPPED
            ):
                self._failures.pop(key, None)
                done = CANCEL_TOLD if told.outcome is EsiOutcome.DELIVERED else CANCEL_UNSENT
                await self._cancelled(send, device, done)
                return
            await self._cancel_missed(send, device, told.detail or told.outcome.value)
        finally:
            self._free(key)

    async def _cancel_missed(self, send: SendRecord, device: str, why: str) -> None:
        """``device`` did not take its Cancel (``why``): sent again on the back-off, or, the
        send's window over or the cancel's give-up time passed (:meth:`_miss`), not sent
        again, so that the send can finish."""
        miss = self._miss(send, device)
        if miss.verdict is Verdict.AGAIN:
            at = asyncio.get_running_loop().time() + miss.delay
            self.retries.schedule(send.id, device, at)
            await self._cancelled(send, device, CANCEL_AGAIN.format(why=why), next_try=at)
            return
        self._failures.pop((send.id, device), None)
        if miss.verdict is Verdict.OVER:  # the last try's answer, as over gateways
            await self._cancelled(send, device, CANCEL_OVER.format(why=why))
        else:
            await self._cancelled(send, device, given_up_detail(self.give_up, why, cancel=True))

    def _untold(self, send: SendRecord, record: OutcomeRecord) -> str | None:
        """Why ``record``'s device is sent no Cancel (the final detail), or None to send it:
        the ESI never had the send for it (pending), the send's window is over, it is
        de-provisioned. A skipped copy is cancelled at the ESI, which recorded the send for
        the device all the same (Get Last Message D.5.2.4.1, Get Scheduled Events D.2.2.4.1
        would hand it out once the device is METER READY)."""
        if record.outcome is Outcome.PENDING:  # never sent to the ESI
            return CANCEL_UNSENT
        end = send_window_end(send.kind, send.request, send.created)
        if end is not None and end <= self.clock():
            return CANCEL_OVER.format(why="its window ended")
        if self._gone(send, record):
            return CANCEL_GONE
        return None

    async def _cancelled(
        self, send: SendRecord, device: str, detail: str, *, next_try: float = 0.0
    ) -> None:
        """``device``'s copy of ``send`` cancelled, ``detail`` saying how its Cancel went,
        worked out once no other write of the copy is under way (:meth:`_change`): one that
        has ended on its own meanwhile (a report landed, its de-provisioning's ``skipped``)
        is left as :meth:`_cancel_device` leaves it (a write worked out from the copy before
        landed last: an outcome went back, or the cancel's detail was lost)."""

        def change() -> list[OutcomeRecord]:
            record = self.records.outcomes.get(send.id, {}).get(device)
            if record is None or not self._to_cancel(send, record):
                return []
            return [
                replace(
                    record,
                    outcome=Outcome.CANCELLED,
                    detail=detail,
                    next_try=next_try,
                    updated=self.clock(),
                )
            ]

        await self._change(change)

    def _to_cancel(self, send: SendRecord, record: OutcomeRecord) -> bool:
        """Whether ``record``'s copy of a cancelled ``send`` has its cancel still to carry
        out: not over on its own (completed...), nor told already (or with nothing to tell:
        cancelled with no Cancel to send again)."""
        if record.outcome is Outcome.CANCELLED:
            return bool(record.next_try)
        return not self._ended(send, record)

    def _ended(self, send: SendRecord, record: OutcomeRecord) -> bool:
        """Whether a device's copy of a send is over, so that a cancel leaves it as it is: a
        load control event completed, opted out of or rejected; cancelled; a device skipped
        and not tried again (being de-provisioned). A message delivered or confirmed is not
        over: it is on the display until its duration ends, and Cancel Message takes it off.
        Nor is an expired copy: the ESI still holds it for the device (SE D.5.2.4.1,
        D.2.2.4.1), which may fetch it when back."""
        if record.outcome is Outcome.SKIPPED:
            return not self._retryable(dataclasses.replace(send, cancelled=False), record)
        return record.outcome in (_CANCEL_ENDS if send.kind is SendKind.MESSAGE else _LCE_ENDS)

    def _owned_send(self, retailer: str, send_id: int) -> SendRecord:
        send = self.records.sends.get(send_id)
        if send is None or send.retailer != retailer:
            raise HeadendError(404, f"no send {send_id}", field="id")
        return send

    def sends(self, retailer: str) -> list[dict[str, Any]]:
        """A retailer's sends, newest first."""
        return [
            self.send(retailer, s.id)
            for s in sorted(self.records.sends.values(), key=lambda s: -s.id)
            if s.retailer == retailer
        ]

    def send(self, retailer: str, send_id: int) -> dict[str, Any]:
        """A send with its per-device outcomes."""
        send = self._owned_send(retailer, send_id)
        outcomes = self.records.outcomes.get(send.id, {})
        return {
            "id": send.id,
            "kind": send.kind.value,
            "group": send.group,
            "request": dict(send.request),
            "created": send.created,
            "created_iso": iso_zigbee(send.created),
            "cancelled": send.cancelled,
            "finished": self._finished(send),
            "outcomes": [_outcome_view(r) for _, r in sorted(outcomes.items())],
        }

    def _finished(self, send: SendRecord) -> bool:
        outcomes = self.records.outcomes.get(send.id, {}).values()
        if send.cancelled:  # every copy cancelled (its Cancel no longer sent) or over
            return all(
                not r.next_try  # in process: its Cancel to be sent again
                and (send.id, r.device) not in self._cancelling  # over a queue: its job
                and r.outcome is not Outcome.PENDING
                and (r.outcome is Outcome.CANCELLED or self._ended(send, r))
                for r in outcomes
            )
        done = _MESSAGE_DONE if send.kind is SendKind.MESSAGE else _LCE_DONE
        if send.kind is SendKind.MESSAGE and send.request.get("confirmation_required"):
            done = frozenset({Outcome.CONFIRMED, Outcome.CANCELLED, Outcome.EXPIRED})
        return all(
            r.outcome in done or (r.outcome is Outcome.SKIPPED and not r.next_try) for r in outcomes
        )

    async def watch(self, retailer: str, send_id: int) -> AsyncIterator[dict[str, Any]]:
        """Every outcome of a send now, then each change, until the send is finished."""
        send = self._owned_send(retailer, send_id)
        queue: asyncio.Queue[OutcomeRecord] = asyncio.Queue()
        self._watchers.setdefault(send_id, set()).add(queue)
        try:
            for _, record in sorted(self.records.outcomes.get(send_id, {}).items()):
                yield _outcome_view(record)
            while not self._finished(self.records.sends[send.id]):
                yield _outcome_view(await queue.get())
        finally:
            self._watchers[send_id].discard(queue)

    # -- what the meters report --------------------------------------------------------------

    def _listener(self, meter: Meter) -> Callable[[EsiEvent], Awaitable[None] | None]:
        """The listener of ``meter``'s ESI: a confirmation or a report is recorded in a task,
        returned so that the ESI marks it told only once it is recorded."""

        def on_event(event: EsiEvent) -> Awaitable[None] | None:
            if isinstance(event, MessageConfirmed):
                return self._spawn(
                    self._reported(event.device, event.message.message_id, Outcome.CONFIRMED)
                )
            if isinstance(event, ReportReceived):  # a repeat too: outcomes move forward only
                status = event.report.event_status
                return self._spawn(
                    self._reported(
                        event.device,
                        event.report.issuer_event_id,
                        outcome_of_report(status),
                        superseded=status == EventStatus.SUPERSEDED,
                    )
                )
            if isinstance(event, LifecycleChanged) and event.to_state is LifecycleState.METER_READY:
                self._back(event.device)
            return None

        return on_event

    async def _reported(
        self, device: str, send_id: int, outcome: Outcome, *, superseded: bool = False
    ) -> None:
        key = canonical_eui64(device)
        while (send_id, key) in self._busy:  # its send's answer first: recorded on top of it
            await self._freed.setdefault((send_id, key), asyncio.Event()).wait()
        # on the copy as it stands once no other write of it is under way (:meth:`_change`),
        # in process too: a resend's answer, worked out while the report's write was under
        # way, landed last (a confirmed copy read ``delivered`` again)
        await self._change(
            functools.partial(self._report_change, send_id, key, outcome, superseded)
        )

    def _report_change(
        self, send_id: int, key: str, outcome: Outcome, superseded: bool
    ) -> list[OutcomeRecord]:
        """The copy as a device's report moves it on (none: it moves nothing)."""
        send = self.records.sends.get(send_id)
        record = self.records.outcomes.get(send_id, {}).get(key)
        if send is None or record is None or not self._theirs(send, key):
            return []  # a device now another retailer's: what it reports is not the send's
        if _in_use(record):  # its ESI refused the id: the report is on the other source's
            return []
        if record.outcome is Outcome.PENDING and self.queue is None:
            # never sent (in process a send's answer is recorded as it comes, and a report
            # during the send waits for it): the device reports on another source's event or
            # message of the same id, and the headend's copy is still to go (as the queue's
            # rule for a job never handed out, JobQueue.report_many)
            return []
        wanted = SendKind.MESSAGE if outcome is Outcome.CONFIRMED else SendKind.LOAD_CONTROL
        if send.kind is not wanted:
            return []
        after = advance(record.outcome, outcome)
        if after is None:
            return []
        self.retries.drop(send_id, key)
        # reached after all: why it was not ("no APS acknowledgement", "given up") is cleared
        detail = (
            self._superseded(send, key)
            if superseded
            else moved_detail(record.outcome, record.detail, outcome)
        )
        return [replace(record, outcome=after, detail=detail, next_try=0.0, updated=self.clock())]

    def _superseded(self, send: SendRecord, device: str) -> str:
        """The detail of ``send``'s event superseded on ``device`` (Report Event Status
        0x07): the retailer's newer load control send to it whose window overlaps."""
        newer = [
            (other.id, other.created, other.request)
            for other in self.records.sends.values()
            if other.kind is SendKind.LOAD_CONTROL
            and other.retailer == send.retailer
            and other.id > send.id
            and device in self.records.outcomes.get(other.id, {})
        ]
        return superseded_by(send.id, send.created, send.request, newer)

    def _back(self, device: str) -> None:
        """A device is METER_READY (again): its offline copies, and the Cancels it did not
        acknowledge, are tried now."""
        if self.queue is not None:  # the workers retry on the queue's back-off
            return
        key = canonical_eui64(device)
        now = asyncio.get_running_loop().time()
        for send_id, outcomes in self.records.outcomes.items():
            record = outcomes.get(key)
            send = self.records.sends.get(send_id)
            if record is None or send is None or not self._theirs(send, key):
                continue
            if send.cancelled:  # a Cancel it has not acknowledged yet
                if record.outcome is Outcome.CANCELLED and record.next_try:
                    self.retries.schedule(send_id, key, now)
                continue
            if record.outcome in (Outcome.OFFLINE, Outcome.SKIPPED):
                self.retries.schedule(send_id, key, now)
        self._timer.update()


#: The outcomes of a copy that :meth:`Headend._deliver` sends (again).
_SENT_HERE = frozenset({Outcome.PENDING, Outcome.OFFLINE, Outcome.SKIPPED})


def _in_use(record: OutcomeRecord) -> bool:
    """Whether ``record``'s copy was refused for its id in use at the ESI: final, never
    sent again (a resend would send the ESI's event of that id: the other source's)."""
    return record.outcome is Outcome.SKIPPED and record.detail.startswith(REFUSED_IN_USE)


def _group_view(group: Group) -> dict[str, Any]:
    return {"name": group.name, "meters": list(group.meters)}


def _outcome_view(record: OutcomeRecord) -> dict[str, Any]:
    return {
        "send": record.send,
        "mac": record.device,
        "meter": record.meter,
        "outcome": record.outcome.value,
        "detail": record.detail,
        "attempts": record.attempts,
        "updated": record.updated,
        "updated_iso": iso_zigbee(record.updated),
    }


def _request(request: MessageRequest | LoadControlRequest) -> dict[str, Any]:
    if isinstance(request, MessageRequest):
        return {
            "text": request.text,
            "duration_minutes": request.duration_minutes,
            "importance": request.importance,
            "confirmation_required": request.confirmation_required,
        }
    return dict(request.fields)


def _message_request(send: SendRecord) -> MessageRequest:
    return MessageRequest(group=send.group, **send.request)


def _lce_request(send: SendRecord) -> LoadControlRequest:
    return LoadControlRequest(group=send.group, fields=dict(send.request))


async def _fan_out(
    records: Iterable[OutcomeRecord], act: Callable[[OutcomeRecord], Awaitable[None]]
) -> None:
    """``act(record)`` for each of ``records``: the meters at once, each meter's in order,
    :data:`UNICASTS_PER_METER` of them under way at a time. After the first failure no lane
    takes another record, but each finishes the one under way (a device told is recorded
    told: cut short, it was told again when the work resumed), then the first failure is
    raised as it was; the records not taken are carried out again
    (:meth:`Headend._resume_cancel`, the back-off). The fan-out cancelled (its caller is),
    the lanes are cancelled at once."""
    by_meter: dict[str, list[OutcomeRecord]] = {}
    for record in sorted(records, key=lambda r: (r.meter, r.device, r.send)):
        by_meter.setdefault(record.meter, []).append(record)
    failures: list[BaseException] = []

    async def lane(queued: Iterator[OutcomeRecord]) -> None:
        for record in queued:  # shared by the meter's lanes: each record taken once
            if failures:
                return
            try:
                await act(record)
            except BaseException as exc:  # the first is raised once every lane is done
                failures.append(exc)
                raise

    loop = asyncio.get_running_loop()
    lanes = []
    for meter_records in by_meter.values():
        shared = iter(meter_records)
        lanes += [
            loop.create_task(lane(shared))
            for _ in range(min(UNICASTS_PER_METER, len(meter_records)))
        ]
    try:
        await asyncio.gather(*lanes, return_exceptions=True)
    finally:
        for task in lanes:
            task.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
    if failures:
        raise failures[0]
