"""Where a headend's devices live: the seam between the headend's operations
(:mod:`zse.headend.service`) and its meters, next to :class:`~zse.headend.link.MeterLink`
(docs/adr/0020).

A :class:`MeterDirectory` knows which meters exist, each device's lifecycle state (SE 5.4.8.1),
and carries out registration, de-provisioning, group tags and cancels. Two directories:

* :class:`EsiMeters`: meters whose ESIs run in this process (``zse headend serve --sim N`` or
  ``--esi``): each device's record is its meter's :class:`~zse.provisioning.registry.HanRegistry`
  entry, and everything is done on the ESI at once, but a cancel over a work queue
  (:class:`~zse.headend.link.EsiLink` workers): a cancel job per device, as for gateways;
* :class:`GatewayMeters`: meters that are MQTT gateways (``zse headend serve --database ...
  --broker ...``): the headend's own record of each device (:mod:`zse.headend.control`), fed by
  the gateways' lifecycle events, and every command a control job of the work queue, carried
  out by the headend workers, retried while a gateway is offline, at most once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from zse.errors import DecodeError
from zse.headend.control import (
    UNTIL,
    CancelJob,
    Control,
    ControlKind,
    DeviceLifecycle,
    control_key,
)
from zse.headend.core import (
    GIVE_UP,
    HeadendError,
    SendKind,
    give_up_at,
    iso_unix,
    iso_zigbee,
    send_window_end,
    unix_of_zigbee,
)
from zse.headend.queue import GIVE_UP_AFTER, GIVE_UP_AT, JobQueue
from zse.headend.store import DeviceOwner, OutcomeRecord, SendRecord
from zse.installcode import canonical_eui64
from zse.provisioning import IllegalTransition, LifecycleState
from zse.provisioning.lifecycle import TRANSITIONS, LifecycleEvent
from zse.provisioning.registry import HanRegistry, InstallCodeInUse, RegistryError
from zse.roles.esi import EnergyServiceInterface

__all__ = ["DeviceStatus", "EsiMeters", "GatewayMeters", "Meter", "MeterDirectory"]

LOGGER = logging.getLogger(__name__)
#: Seconds of lifecycle records read again at each look (the workers' clocks differ).
_CLOCK_MARGIN = 10.0


@dataclass(frozen=True)
class Meter:
    """One meter: its id, its ESI and the ESI's registry."""

    id: str
    esi: EnergyServiceInterface
    registry: HanRegistry


@dataclass(frozen=True, kw_only=True)
class DeviceStatus:
    """A device's lifecycle state on its meter, whether it ever joined, its registry group
    tags, the last refusal of a command (empty if none) and whether its de-provisioning was
    asked for, its meter not having carried it out yet (``leaving``: over gateways, until
    the gateway's lifecycle event; in process the state changes at once)."""

    state: LifecycleState
    joined: bool
    groups: frozenset[str]
    detail: str = ""
    leaving: bool = False


class MeterDirectory(ABC):
    """A headend's meters and devices (see the module notes)."""

    #: The in-process meters by id (empty for gateways).
    esis: dict[str, Meter]

    @property
    @abstractmethod
    def ids(self) -> tuple[str, ...]:
        """The meter ids, sorted."""

    @abstractmethod
    def status(self, owner: DeviceOwner, tags: frozenset[str]) -> DeviceStatus | None:
        """The device's status (``tags``: the groups its retailer's groups give it), or None
        if its meter has no record of it."""

    @abstractmethod
    async def history(self, owner: DeviceOwner) -> list[dict[str, Any]]:
        """Its lifecycle history, oldest first: each entry's ``time`` Unix time (seconds
        since 1970-01-01 UTC, whichever directory), ``time_iso`` the same instant."""

    @abstractmethod
    def taken(self, eui64: str) -> bool:
        """Whether a meter has the device and it is not de-provisioned."""

    @abstractmethod
    async def register(
        self,
        owner: DeviceOwner,
        install_code: str,
        tags: frozenset[str],
        previous: DeviceOwner | None,
    ) -> Callable[[], Awaitable[None]] | None:
        """Register the device and have its meter admit it; what to run next in the
        background, if anything. :class:`HeadendError` 409 if the meter refuses it."""

    @abstractmethod
    async def deprovision(self, owner: DeviceOwner) -> None:
        """De-provision it (:class:`HeadendError` 409 if its state does not allow it)."""

    async def retag(self, owner: DeviceOwner, tags: frozenset[str]) -> None:  # noqa: B027
        """Its registry groups are now ``tags`` (nothing to do where groups are computed)."""

    async def forsake(self, device: str) -> None:  # noqa: B027 - optional
        """Send ``device`` (de-provisioned) no more Cancels (its cancel jobs, over a work
        queue; without one the headend sends them itself and stops)."""

    @abstractmethod
    async def cancel(
        self, send: SendRecord, records: Iterable[OutcomeRecord], *, give_up: float = GIVE_UP
    ) -> list[CancelJob]:
        """Cancel ``send`` on the devices of ``records`` (SE D.5.2.3.2 / D.2.2.3.2); a Cancel
        not acknowledged is given up ``give_up`` seconds after the cancel. Returns the send's
        cancel jobs as they stand now (one queued before, after a crash, may be over)."""

    async def start(self) -> None:  # noqa: B027 - optional
        """Load what it needs."""

    async def refresh(self) -> None:  # noqa: B027 - optional
        """Read what changed (called every few seconds by a headend over a queue)."""

    async def cancels(self) -> list[CancelJob]:
        """The cancel jobs (over a work queue) changed since the last look, every one at the
        first look: how each device's Cancel goes (:meth:`CancelJob.shown
        <zse.headend.control.CancelJob.shown>`, the in-process headend's words) and whether
        it is still under way (:attr:`~zse.headend.control.CancelJob.open`). None without a
        queue: the headend sends the Cancels itself."""
        return []

    def queue_time(self, meter_time: int) -> float | None:
        """The work queue's time (the workers' seconds) at ZigBee UTCTime ``meter_time``;
        None where the workers' clock is not known here."""
        return None

    def state(self, eui64: str, meter: str) -> LifecycleState | None:
        """A device's state on ``meter``, or None if unknown there."""
        status = self._bare_status(eui64, meter)
        return None if status is None else status.state

    def leaving(self, eui64: str, meter: str) -> bool:
        """Whether the device's de-provisioning on ``meter`` was asked for and its meter has
        not carried it out yet (:attr:`DeviceStatus.leaving`)."""
        status = self._bare_status(eui64, meter)
        return status is not None and status.leaving

    def _bare_status(self, eui64: str, meter: str) -> DeviceStatus | None:
        owner = DeviceOwner(eui64=eui64, retailer="", meter=meter, device_type="")
        return self.status(owner, frozenset())


class EsiMeters(MeterDirectory):
    """Meters whose ESIs and registries run in this process; served over the work queue
    ``queue`` (:class:`~zse.headend.link.EsiLink` workers), ``clock()`` is the queue's time
    (the workers', wall-clock time by default) and ``meter_time()`` ZigBee UTCTime, which
    :meth:`queue_time` needs (None without it: the queue's jobs are never given up), and a
    cancel is a cancel job per device, as over gateways (:meth:`cancel`)."""

    def __init__(
        self,
        meters: Iterable[Meter],
        *,
        clock: Callable[[], float] = time.time,
        meter_time: Callable[[], int] | None = None,
        queue: JobQueue | None = None,
    ) -> None:
        self.esis = {m.id: m for m in meters}
        self.clock, self.meter_time = clock, meter_time
        self.queue = queue
        self._cancels: _CancelJobs | None = None

    async def start(self) -> None:
        """Over a work queue: its control jobs' tables (:class:`~zse.headend.control.Control`),
        where the cancels go."""
        if self.queue is not None and self._cancels is None:
            self._cancels = _CancelJobs(await Control.open(self.queue), self.clock)

    async def cancels(self) -> list[CancelJob]:
        return [] if self._cancels is None else await self._cancels.read()

    async def forsake(self, device: str) -> None:
        if self._cancels is not None:
            await self._cancels.control.forsake(device, now=self.clock())

    def queue_time(self, meter_time: int) -> float | None:
        if self.meter_time is None:
            return None
        return self.clock() + (meter_time - self.meter_time())

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(sorted(self.esis))

    def status(self, owner: DeviceOwner, tags: frozenset[str]) -> DeviceStatus | None:
        meter = self.esis.get(owner.meter)
        if meter is None:
            return None
        try:
            record = meter.registry.get(owner.eui64)
        except RegistryError:
            return None
        return DeviceStatus(state=record.state, joined=record.joined, groups=record.groups)

    async def history(self, owner: DeviceOwner) -> list[dict[str, Any]]:
        entries = await self.esis[owner.meter].registry.audit(owner.eui64)
        return [
            {
                "time": e.time,
                "time_iso": iso_unix(e.time),
                "event": e.event,
                "from_state": e.from_state,
                "to_state": e.to_state,
                "detail": e.detail if e.event != "groups" else "",
            }
            for e in entries
        ]

    def taken(self, eui64: str) -> bool:
        for meter in self.esis.values():
            try:
                record = meter.registry.get(eui64)
            except RegistryError:
                continue
            if record.state is not LifecycleState.DEPROVISION_COMPLETE:
                return True
        return False

    async def register(
        self,
        owner: DeviceOwner,
        install_code: str,
        tags: frozenset[str],
        previous: DeviceOwner | None,
    ) -> Callable[[], Awaitable[None]] | None:
        meter = self.esis[owner.meter]
        try:
            if previous is not None and previous.meter != owner.meter:
                await self.esis[previous.meter].registry.set_groups(owner.eui64, ())
            await meter.registry.register(owner.eui64, install_code, label=owner.label, groups=tags)
        except InstallCodeInUse:  # the registry's message names the other device: not shown
            raise HeadendError(
                409,
                "install_code: the install code is already given for another device that is"
                " not de-provisioned (an install code is per device, SE 5.4.8.1)",
                field="install_code",
            ) from None
        except (RegistryError, DecodeError) as exc:
            raise HeadendError(409, f"mac: {exc}", field="mac") from None

        async def admit() -> None:  # open joining for the device with its install code
            await meter.esi.provision(owner.eui64)

        return admit

    async def deprovision(self, owner: DeviceOwner) -> None:
        try:
            await self.esis[owner.meter].esi.deprovision(owner.eui64)
        except IllegalTransition as exc:
            raise HeadendError(409, f"state: {exc}", field="state") from None

    async def retag(self, owner: DeviceOwner, tags: frozenset[str]) -> None:
        registry = self.esis[owner.meter].registry
        if set(registry.get(owner.eui64).groups) != tags:
            await registry.set_groups(owner.eui64, tags)

    async def cancel(
        self, send: SendRecord, records: Iterable[OutcomeRecord], *, give_up: float = GIVE_UP
    ) -> list[CancelJob]:
        """A cancel job per device of ``records`` (Cancel Message / Cancel Load Control Event,
        D.5.2.3.2 / D.2.2.3.2), carried out by the queue's
        :class:`~zse.headend.link.EsiLink` workers on the device's ESI, sent again, given up
        and read back as a gateway's (:class:`GatewayMeters`): before, each Cancel was sent
        once from here, a device offline then kept the send. (A headend without a work queue
        sends its cancels itself: :meth:`zse.headend.service.Headend.cancel`.)"""
        if self._cancels is None:
            raise ValueError("in-process meters over a work queue: start() with its queue")
        when = None if self.meter_time is None else self.meter_time()
        return await self._cancels.queue(
            send, records, give_up=give_up, now=when, at=self.queue_time
        )


class GatewayMeters(MeterDirectory):
    """Meters that are MQTT gateways, named by ``meters`` (see the module notes): the
    devices' records and the control jobs in ``control``'s database. ``clock()``: the
    seconds the workers share (wall-clock time); ``meter_time()``: ZigBee UTCTime."""

    def __init__(
        self,
        meters: Iterable[str],
        control: Control,
        *,
        meter_time: Callable[[], int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.esis = {}
        self._ids = tuple(sorted(set(meters)))
        self.control = control
        self.clock, self.meter_time = clock, meter_time
        self.records: dict[str, DeviceLifecycle] = {}
        self._since: float | None = None
        self._cancels = _CancelJobs(control, clock)
        self._lock = asyncio.Lock()

    @property
    def ids(self) -> tuple[str, ...]:
        return self._ids

    async def start(self) -> None:
        await self.refresh()

    async def refresh(self) -> None:
        """Read the records changed since the last look (again a margin); the newest version
        of each is kept. On PostgreSQL the next look starts no later than the database's
        clock before this one (the workers write on it; a registration carries this API's
        clock, which may be ahead)."""
        async with self._lock:
            database = await self.control.queue.database_time()
            rows = await self.control.devices(since=self._since)
            self._since = _next_look(self._since, [r.updated for r in rows], database)
            for row in rows:
                self._keep(row)

    async def cancels(self) -> list[CancelJob]:
        return await self._cancels.read()

    async def forsake(self, device: str) -> None:
        await self.control.forsake(device, now=self.clock())

    def _keep(self, row: DeviceLifecycle) -> None:
        old = self.records.get(row.device)
        if old is None or row.version > old.version:
            self.records[row.device] = row

    def status(self, owner: DeviceOwner, tags: frozenset[str]) -> DeviceStatus | None:
        record = self.records.get(owner.eui64)
        if record is None or record.meter != owner.meter:
            return None
        return DeviceStatus(
            state=record.state,
            joined=record.joined,
            groups=tags,
            detail=record.detail,
            leaving=record.leaving,
        )

    async def history(self, owner: DeviceOwner) -> list[dict[str, Any]]:
        await self.refresh()
        record = self.records.get(owner.eui64)
        if record is None:
            return []
        return [_unix_entry(entry) for entry in record.history]

    def taken(self, eui64: str) -> bool:
        record = self.records.get(eui64)
        return record is not None and record.state is not LifecycleState.DEPROVISION_COMPLETE

    async def register(
        self,
        owner: DeviceOwner,
        install_code: str,
        tags: frozenset[str],
        previous: DeviceOwner | None,
    ) -> Callable[[], Awaitable[None]] | None:
        """The device's record (NEW) and its ``provision`` job (MAC, install code, label) in
        one transaction: a worker sends it to the meter's gateway."""
        payload = {"mac": _colons(owner.eui64), "install_code": install_code}
        if owner.label:
            payload["label"] = owner.label
        record = await self.control.register(
            owner.eui64, owner.meter, payload, time=self.meter_time(), now=self.clock()
        )
        self._keep(record)
        return None

    async def deprovision(self, owner: DeviceOwner) -> None:
        """A ``deprovision`` job for the device's registration (queued once however often it
        is asked for), its record marked at once (:attr:`DeviceStatus.leaving`: sent nothing
        more, as in process, before the gateway's event says it is being de-provisioned)."""
        record = self.records.get(owner.eui64)
        if record is None or record.meter != owner.meter:
            raise HeadendError(409, "state: the device is not on its meter", field="state")
        if (record.state, LifecycleEvent.DEPROVISION) not in TRANSITIONS:
            exc = IllegalTransition(owner.eui64, record.state, LifecycleEvent.DEPROVISION)
            raise HeadendError(409, f"state: {exc}", field="state")
        payload = {"mac": _colons(owner.eui64)}
        marked = await self.control.deprovision(
            owner.eui64, owner.meter, record.generation, payload, now=self.clock()
        )
        if marked is None:  # registered again since this process read it
            raise HeadendError(409, "state: the device's registration changed", field="state")
        self._keep(marked)

    def queue_time(self, meter_time: int) -> float:
        return self.clock() + (meter_time - self.meter_time())

    async def cancel(
        self, send: SendRecord, records: Iterable[OutcomeRecord], *, give_up: float = GIVE_UP
    ) -> list[CancelJob]:
        """A cancel job per device of the send (:class:`_CancelJobs`; the gateways know no
        retailer groups: each targets its device)."""
        return await self._cancels.queue(
            send, records, give_up=give_up, now=self.meter_time(), at=self.queue_time
        )


class _CancelJobs:
    """The cancels over a work queue, whichever way its meters are reached: queued as control
    jobs (``control``; ``clock()``: the queue's time) and read back."""

    def __init__(self, control: Control, clock: Callable[[], float]) -> None:
        self.control, self.clock = control, clock
        self._since: float | None = None
        self._lock = asyncio.Lock()

    async def queue(
        self,
        send: SendRecord,
        records: Iterable[OutcomeRecord],
        *,
        give_up: float,
        now: int | None,
        at: Callable[[int], float | None],
    ) -> list[CancelJob]:
        """A cancel job per device of ``records`` (Cancel Message D.5.2.3.2 / Cancel Load
        Control Event D.2.2.3.2, to the device); one its device does not acknowledge is sent
        again until the send's window is over (:data:`~zse.headend.control.UNTIL`) or
        ``give_up`` seconds after the cancel (:data:`~zse.headend.queue.GIVE_UP_AT`: a
        message "until changed" has no end), on the queue's time ``at(meter_time)`` (None:
        not known, the control jobs' default); ``now``: the meters' time (ZigBee UTCTime),
        the cancel's if the send has none recorded. Returns the send's cancel jobs as they
        stand now: one queued before (the cancel carried out again after a crash) is kept as
        it is, maybe over."""
        if send.kind is SendKind.MESSAGE:
            kind, field = ControlKind.CANCEL_MESSAGE, "message_id"
        else:
            kind, field = ControlKind.CANCEL_LOAD_CONTROL, "issuer_event_id"
        payload: dict[str, Any] = {field: send.id}
        end = send_window_end(send.kind, send.request, send.created)
        if end is not None and (until := at(end)) is not None:
            payload[UNTIL] = until  # a Cancel not acknowledged is sent again until then
        cancelled = now if send.cancelled_at is None else send.cancelled_at
        if cancelled is not None:
            deadline = give_up_at(give_up, created=send.created, cancelled_at=cancelled)
            if (due := at(int(deadline))) is not None:
                payload[GIVE_UP_AT], payload[GIVE_UP_AFTER] = due, give_up
        jobs = [
            (
                control_key(kind, send.id, r.device),
                kind,
                r.meter,
                r.device,
                {"device": _colons(r.device), **payload},
            )
            for r in sorted(records, key=lambda r: r.device)
        ]
        if jobs:
            await self.control.enqueue(jobs, now=self.clock())
        return await self.control.cancels(send=send.id)

    async def read(self) -> list[CancelJob]:
        """The cancel jobs changed since the last look (again a margin, as
        :meth:`GatewayMeters.refresh`), every one at the first."""
        async with self._lock:
            database = await self.control.queue.database_time()
            jobs = await self.control.cancels(since=self._since)
            self._since = _next_look(self._since, [j.updated for j in jobs], database)
        return jobs


def _next_look(since: float | None, updated: list[float], database: float | None) -> float | None:
    """Where the next look at rows changed ``since`` starts, having read rows last changed at
    ``updated``: a margin before the newest (the workers' clocks differ), and on PostgreSQL no
    later than the database's clock before this look."""
    if not updated:
        return since
    since = max(updated) - _CLOCK_MARGIN
    return since if database is None else min(since, database - _CLOCK_MARGIN)


def _unix_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A gateway device's history entry as the API shows it: its ``time`` (ZigBee UTCTime,
    as the gateway's lifecycle event and the headend's record carry it) in Unix time, as
    in-process meters' entries are, and ``time_iso``, the same instant."""
    zigbee = int(entry["time"])
    # a time past UTCTime's 32 bits (stored before gateways' times were bounded) has no
    # date to show: its time_iso is null rather than the whole history an error
    iso = iso_zigbee(zigbee) if 0 <= zigbee <= 0xFFFFFFFF else None
    return {**entry, "time": unix_of_zigbee(zigbee), "time_iso": iso}


def _colons(eui64: str) -> str:
    digits = canonical_eui64(eui64).lower()
    return ":".join(digits[i : i + 2] for i in range(0, 16, 2))
