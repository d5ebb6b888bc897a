"""Metering over ZCL (SE D.3): the asyncio shells of :mod:`zse.metering.protocol`.

:class:`MeteringServer` serves a :class:`~zse.metering.core.MeterCore` on an endpoint through
its :class:`~zse.metering.protocol.MeterServerProtocol`: Read Attributes from the core's
values, Configure Reporting / Read Reporting Configuration and Report Attributes (ZCL
2.5.7-2.5.11), Get Profile and fast poll. Readings come from the application (:meth:`feed`,
a real meter's register) or a :class:`~zse.metering.core.ReadingSource` polled every
DefaultUpdatePeriod seconds (the applied fast poll period while fast poll is granted). One
:class:`~zse.zcl.timer.Timer` drives the polls and the reports. With a store, the Get Profile
rings (with the open interval and the readings held) and the reporting records survive a
restart, written before anything that depends on them is sent (docs/persistence.md).

:class:`MeteringClient` is a HAN device's client: it finds the meter (ZDO Match_Desc_req for a
Metering server on the SE profile, :func:`find_meter`, as a device finds the ESI, SE 5.4.7.1),
or is given its NWK address and endpoint (a mirror endpoint, say); then its core reads the
formatting, asks for reports, and polls when the meter does not report. The shell sends the
core's requests and feeds the answers back, takes the meter's Report Attributes through
``endpoint.add_handler(METERING, ..., general=True)``, and runs the core's deadlines on one
:class:`~zse.zcl.timer.Timer`. ``clock()`` gives ZigBee time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, TypeVar

from zigpy.zcl import foundation

from zse.errors import DecodeError, InvalidFrame, StoreError, ZseError
from zse.metering import snapshot_client
from zse.metering.core import (
    MAX_PERIODS_DELIVERED,
    MeterCore,
    ProfileAnswer,
    Readings,
    ReadingSource,
)
from zse.metering.formatting import Reading
from zse.metering.protocol import (
    DEFAULT_UPDATE_PERIOD,
    FAST_POLL_UPDATE_PERIOD,
    AttributeUnsupported,
    FastPollGranted,
    MeteringClientConfig,
    MeteringClientProtocol,
    MeterReading,
    MeterServerProtocol,
    Polling,
    ReportingConfigured,
    SupplyStatusChanged,
    TierSummation,
    TodayConsumption,
    attribute_type_id,
    decode_global,
    profile_answer,
)
from zse.metering.snapshot_types import SampleType
from zse.metering.snapshots import (
    ANY_CAUSE,
    CHANGING,
    MAX_SNAPSHOTS,
    PublishedSnapshot,
    SampledData,
    Snapshot,
    SnapshotCore,
)
from zse.metering.supply import (
    NOW,
    OFF,
    ON,
    SUPPLY_EVENTS,
    ChangeOutcome,
    SupplyChange,
    SupplyControl,
    SupplyEvent,
    SupplyRefused,
    SupplyServerProtocol,
    event_from_record,
    event_record,
    local_change_supply_request,
    supply_status_read,
    supply_status_read_request,
)
from zse.records import Fields, Int, Mismatch, RecordError, check, load_each
from zse.se.ids import METERING, tier_summation_attribute
from zse.se.ids import MeteringAttribute as A
from zse.se.types import IntervalChannel
from zse.store import Batch, Store
from zse.time.core import ZoneYear, local_time_by
from zse.time.service import system_clock
from zse.zcl._tasks import keep_task
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import ZclPort, ZdoRequester, carry_out, match_servers, request
from zse.zcl.events import STOP_WAIT, EventStream, Untold
from zse.zcl.frame import Send, Step, ZclMessage
from zse.zcl.reporting import NO_REPORTING, ReportingConfig
from zse.zcl.timer import Afterwards, Timer

__all__ = [
    "METERING",
    "SNAPSHOTS_RETRY",
    "SUPPLY_RETRY",
    "AttributeUnsupported",
    "ClientEvent",
    "FastPollGranted",
    "MeterNotFound",
    "MeterReading",
    "MeteringClient",
    "MeteringClientConfig",
    "MeteringServer",
    "Polling",
    "ProfileRefused",
    "ReportingConfigured",
    "SupplyStatusChanged",
    "TierSummation",
    "TodayConsumption",
    "find_meter",
]

LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")


# -- the meter (Metering server, SE D.3.2) ------------------------------------------------------

_PROFILE_KEY = "profile"
_SUPPLY_KEY = "supply"
_SNAPSHOTS_KEY = "snapshots"
#: The journal kind of a supply event stored with the supply and not yet told.
_TOLD = "told"
#: A tier's two summations: delivered, received (D.3.2.2.2).
_BOTH = (False, True)
_MeterEvent = ReportingConfigured | FastPollGranted | SupplyEvent
_REPORT_SHAPE = Fields(
    {
        "nwk": Int(0, 0xFFF7),
        "endpoint": Int(1, 0xF0),
        "attribute": Int(0, 0xFFFF),
        "min": Int(0, 0xFFFF),
        "max": Int(0, 0xFFFE),
        "change": Int(0, (1 << 48) - 1),
    }
)


def _report_key(destination: Destination, attribute: int) -> str:
    return f"report/{destination.address:04x}/{destination.endpoint:02x}/{attribute:04x}"


def _record(destination: Destination, config: ReportingConfig) -> dict[str, int]:
    """A reporting record as stored (the shape ``_REPORT_SHAPE`` checks when loading)."""
    return {
        "nwk": destination.address,
        "endpoint": destination.endpoint,
        "attribute": config.attribute,
        "min": config.min_interval,
        "max": config.max_interval,
        "change": config.reportable_change or 0,
    }


#: Seconds after which a supply change due whose store write failed is tried again (zse's
#: choice: a disconnection or reconnection is late by at most this while the store recovers).
SUPPLY_RETRY: Final = 30
#: Seconds after which snapshots or samples taken at their time whose store write failed
#: are written again (zse's choice, as :data:`SUPPLY_RETRY`).
SNAPSHOTS_RETRY: Final = 30


@dataclass(eq=False)
class _SnapshotsDue:
    """The snapshots at their time as the timer drives them: those a write failed to store
    keep the failed deadline due (:attr:`unsaved`), so the timer's ``retry`` writes them
    again, however far the next snapshot is (they waited for the next write, in memory)."""

    snapshots: SnapshotCore
    #: The deadline whose snapshots are in memory only, their write failed.
    unsaved: int | None = None
    _last: int | None = None

    def next_deadline(self) -> int | None:
        if not self.snapshots.changed:
            self.unsaved = None  # another write stored them
        times = [t for t in (self.snapshots.next_deadline(), self.unsaved) if t is not None]
        return min(times, default=None)

    def handle_timeout(self, now: int) -> bool:
        self._last = self.next_deadline()
        return self.snapshots.handle_timeout(now) or self.unsaved is not None

    def failed(self) -> None:
        """The write of the last timeout's snapshots failed: they stay due."""
        self.unsaved = self._last


@dataclass(eq=False)
class _SupplyDue:
    """The supply's changes at their time as the timer drives them, each with the supply as
    it was before it (:meth:`MeteringServer._supply_due` puts it back when the write fails)."""

    protocol: SupplyServerProtocol

    def next_deadline(self) -> int | None:
        return self.protocol.next_deadline()

    def handle_timeout(self, now: int) -> tuple[tuple[dict[str, Any], bool], Step]:
        held = self.protocol.control.hold()
        return held, self.protocol.handle_timeout(now)


@dataclass(eq=False)
class _Poller:
    """The reading source's poll as a timed core: due every update period (ZigBee time)."""

    server: MeteringServer
    due: int | None = None

    def next_deadline(self) -> int | None:
        return self.due

    def handle_timeout(self, now: int) -> tuple[int, Readings]:
        self.due = now + self.server.protocol.update_period(now)
        assert self.server.source is not None
        return now, self.server.source.readings(now)


class MeteringServer:
    """The meter's Metering server (SE D.3.2) on an endpoint.

    ``formatting``: the Formatting attributes and MeteringDeviceType by attribute id (D.3.2.2.4);
    ``default_update_period`` / ``fast_poll_update_period``: DefaultUpdatePeriod and
    FastPollUpdatePeriod (D.3.2.2.1), seconds. ``source``: polled for readings (None: only
    :meth:`feed`). The first reading taken (polled or fed) is the register the load profile
    counts from (:meth:`MeterCore.begin <zse.metering.core.MeterCore.begin>`), unless a stored
    profile was loaded. ``delivered_only``, ``demand``, ``profile_period``, ``max_periods``,
    ``profile_capacity``: as :class:`~zse.metering.core.MeterCore` takes them. ``store``:
    persistence under ``namespace`` (default ``metering.server/<endpoint id>``).
    Events (:class:`ReportingConfigured`, :class:`FastPollGranted`) go to ``on_event``.
    ``supply``: the meter has supply control (SE 1.2, :mod:`zse.metering.supply`): its
    state, stored, the commands answered (the utility's from senders ``authorize(msg)``
    accepts only), its events (:class:`~zse.metering.supply.SupplyChanged`...) to ``on_event``.
    With a store, each supply event is journalled in the commit of the change that caused it
    and marked once the listeners have it in hand (:class:`~zse.zcl.events.Untold`): one not
    marked (the process killed in between, a listener failed) is told after the next start.
    Supply Status (0x0014) is then reportable like the other attributes, on each change
    whatever its cause; its records are stored with the others, and after a restart the
    Supply Status stored counts as reported.
    ``tier``: the price tier in force at a time (1-48, 0 none), asked at each reading taken:
    the reading's advance goes to that tier's CurrentTierNSummationDelivered / Received
    (D.3.2.2.2, :meth:`MeterCore.set_tier <zse.metering.core.MeterCore.set_tier>`), stored
    with the profile; None: the meter keeps no tier summations.
    ``zone``: the ESI's Time server's zone at an instant (:meth:`TimeServer.zone_at
    <zse.time.service.TimeServer.zone_at>`; None: UTC) and ``freeze_time`` the
    HistoricalFreezeTime (hours << 8 | minutes): the Historical Consumption set's local days
    (SE 1.2 D.3.2.2.5, :mod:`zse.metering.history`), stored with the profile, each value
    read as it is at the time of the read.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        formatting: Mapping[int, int] | None = None,
        default_update_period: int = DEFAULT_UPDATE_PERIOD,
        fast_poll_update_period: int = FAST_POLL_UPDATE_PERIOD,
        source: ReadingSource | None = None,
        clock: Callable[[], int] = system_clock,
        store: Store | None = None,
        namespace: str | None = None,
        delivered_only: bool = True,
        demand: bool = True,
        profile_period: int = 2,
        max_periods: int = MAX_PERIODS_DELIVERED,
        profile_capacity: int = 96,
        supply: bool = False,
        authorize: Callable[[ZclMessage], bool] | None = None,
        snapshot_capacity: int = MAX_SNAPSHOTS,
        tier: Callable[[int], int] | None = None,
        zone: Callable[[int], ZoneYear | None] | None = None,
        freeze_time: int = 0,
    ) -> None:
        self.endpoint = endpoint
        #: The price tier in force at a time (0 none; the ESI's, from its Price server):
        #: asked at each reading, which adds its advance to that tier's summations.
        self.tier = tier
        self.clock = clock
        self.source = source
        self.store = store
        self.namespace = namespace or f"metering.server/{endpoint.endpoint_id}"
        self.core: MeterCore[Destination] = MeterCore(
            formatting={
                A.DEFAULT_UPDATE_PERIOD: default_update_period,
                A.FAST_POLL_UPDATE_PERIOD: fast_poll_update_period,
                **(formatting or {}),
            },
            now=clock(),
            delivered_only=delivered_only,
            demand=demand,
            profile_period=profile_period,
            max_periods=max_periods,
            profile_capacity=profile_capacity,
            local=None if zone is None else functools.partial(local_time_by, zone),
            freeze_time=freeze_time,
        )
        #: Supply control (SE 1.2), when ``supply``.
        self.supply: SupplyControl | None = SupplyControl() if supply else None
        supply_protocol = (
            None if self.supply is None else SupplyServerProtocol(self.supply, authorize)
        )
        self.protocol = MeterServerProtocol(self.core, supply_protocol)
        #: Snapshots and sampling (SE 1.2), stored as the record ``snapshots``.
        self.snapshots = SnapshotCore(self.core, capacity=snapshot_capacity)
        self.protocol.snapshots = self.snapshots
        self._stream: EventStream[_MeterEvent] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._lock = asyncio.Lock()
        #: A reading was taken or a stored profile loaded: later readings are updates.
        self._begun = False
        #: The profile's last write failed: written with the next reading.
        self._unsaved = False
        self._served: set[int] = set()
        self._removers: list[Callable[[], None]] = []
        #: Told the time of each reading taken (polled or fed), once the core has it.
        self._readings_listeners: list[Callable[[int], Awaitable[None]]] = []
        self._reading_order = asyncio.Lock()
        self._poller = _Poller(self)
        self._timer = Timer("Metering server timer", logger=LOGGER)
        self._timer.add(self._poller, self._polled, clock=clock, lock=self._lock)
        self._timer.add(self.protocol, self._report, clock=clock, lock=self._lock)
        if supply_protocol is not None:
            self._timer.add(
                _SupplyDue(supply_protocol),
                self._supply_due,
                clock=clock,
                lock=self._lock,
                retry=SUPPLY_RETRY,
            )
        self._snapshots_timed = _SnapshotsDue(self.snapshots)
        self._timer.add(
            self._snapshots_timed,
            self._snapshots_due,
            clock=clock,
            lock=self._lock,
            retry=SNAPSHOTS_RETRY,
        )
        self._untold: Untold[_MeterEvent] = Untold(self._stream, self._mark_told)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, *, tell: bool = True) -> None:
        """Load the stored profile and reporting records, serve the cluster and its attributes,
        and start polling the source (at once) and reporting; tell the supply events stored
        but not told before a restart, then those from now on, in the order they came.

        ``tell=False`` holds them until :meth:`tell_untold` (the ESI tells once its first
        listener is attached)."""
        untold: list[tuple[int, SupplyEvent]] = []
        if self.store is not None:
            await self.store.load_with(self.namespace, self._load)
            await self.store.prune(self.namespace)  # the supply events told before
            untold = await self.store.unreported_with(self.namespace, event_from_record)
        self._untold.hold(untold)
        self._serve_attributes()
        self._removers = [
            self.endpoint.add_handler(METERING, self._on_message),
            self.endpoint.add_handler(METERING, self._on_message, general=True),
        ]
        if self.source is not None:
            self._poller.due = self.clock()
        self._timer.start()
        if tell:
            await self.tell_untold()

    def hold_untold(self) -> None:
        """Hold the events from now on until :meth:`tell_untold` (:meth:`Untold.pause
        <zse.zcl.events.Untold.pause>`: the ESI has no listener, or stops)."""
        self._untold.pause()

    async def tell_untold(self) -> None:
        """Tell the supply events stored but not yet told, oldest first, each marked told once
        its listeners have it in hand (:mod:`zse.zcl.events`); from then on each is told as it
        comes."""
        await self._untold.tell_untold()

    async def _mark_told(self, *seqs: int) -> None:
        if self.store is not None:
            await self.store.mark_reported(*seqs)

    async def stop(self, *, bound: float = STOP_WAIT) -> None:
        """Stop serving, polling and reporting; the readings held are stored with the profile
        (otherwise they are stored when an interval closes: a restart would show the register
        as it was then, up to a profile interval old, until the source is read again), and the
        snapshots, samples and supply state a failed write left to store (a scheduled snapshot
        was lost at a clean stop). A store that fails here is logged: what was stored before
        stays.
        ``bound``: the longest wait for them (the ESI's stop shares one STOP_WAIT)."""
        for remove in self._removers:
            remove()
        self._removers = []
        # the events of a write this stop cancels (its timer's) are left to the next start
        # (the ESI has let its listeners go: told now, they would be marked told to no one)
        self._untold.close()
        await self._timer.stop()
        try:
            async with self._lock:
                await self._record(Step(), self.clock(), self._kept(None))  # the supply too
                self.snapshots.changed = False
        except StoreError as exc:
            LOGGER.warning("the meter's readings not stored at stop: %s", exc)
        await self._untold.stop(bound)  # the events a cancelled write stored: told and marked

    def _load(self, records: dict[str, Any], on_bad: Callable[[RecordError], None]) -> None:
        """The profile snapshot and the reporting records, checked; a bad one is handed to
        ``on_bad`` (quarantined by the store) and the others load."""
        now = self.clock()

        def load(key: str, value: Any) -> None:
            if key == _PROFILE_KEY:
                self.core.restore(value, now)
                self._begun = True
                return
            if key == _SUPPLY_KEY:
                if self.supply is not None:
                    self.supply.restore(value)
                return  # kept for a meter given supply control again
            if key == _SNAPSHOTS_KEY:
                self.snapshots.restore(value)
                return
            check(value, _REPORT_SHAPE)
            destination = Destination.device(value["nwk"], value["endpoint"])
            if key != _report_key(destination, value["attribute"]):
                raise Mismatch("the key does not match the record")
            config = ReportingConfig(
                attribute=value["attribute"],
                min_interval=value["min"],
                max_interval=value["max"],
                reportable_change=value["change"],
            )
            if self.core.configure_reporting(destination, config, now):
                raise Mismatch(f"attribute 0x{value['attribute']:04X} is not reportable here")

        # supply control before the reporting records: their baseline (the value counted as
        # reported, ZCL 2.5.7) is the Supply Status stored, as the summation's is the reading
        # stored with the profile, so a restart reports no change that was not one
        ordered = sorted(records.items(), key=lambda item: (item[0] != _SUPPLY_KEY, item[0]))
        load_each(ordered, load, namespace=self.namespace, on_bad=on_bad)

    # -- destinations ---------------------------------------------------------------------------

    async def readdress(self, old_nwk: int, new_nwk: int) -> int:
        """A device that configured reporting now has another NWK address (it rejoined and got
        a new one, ZB 3.6.1.9): its records follow it, in memory and in the store, so reports
        reach it and not whichever device takes the old address. The number of records moved."""
        if old_nwk == new_nwk:
            return 0
        return await self._move(old_nwk, new_nwk)

    async def forget(self, nwk: int) -> int:
        """Drop the reporting records of the device at ``nwk`` (it was de-provisioned): nothing
        is reported to that address again. The number of records dropped."""
        return await self._move(nwk, None)

    async def _move(self, old_nwk: int, new_nwk: int | None) -> int:
        """Move (``new_nwk`` None: drop) the records of ``old_nwk``: stored first, then made
        in memory and timed, so a write that fails (:class:`~zse.errors.StoreError` raised)
        or is cancelled before its transaction changes nothing, and one cancelled during it,
        which the store carries out (:attr:`Batch.landed <zse.store.Batch.landed>`), is made
        before it raises, as stored. (Made first, memory reported to the new address while
        the store, and so a restart, kept the old one.)"""
        async with self._lock:
            moving = [
                (destination, config)
                for destination, config in self.core.reporting.configurations()
                if destination.unicast and destination.address == old_nwk
            ]
            batch = Batch()
            for destination, config in moving:
                batch.delete(self.namespace, _report_key(destination, config.attribute))
                if new_nwk is not None:
                    there = Destination.device(new_nwk, destination.endpoint)
                    record = _record(there, config)
                    batch.put(self.namespace, _report_key(there, config.attribute), record)
            try:
                if self.store is not None and moving:
                    await self.store.commit(batch)
            except BaseException:
                if batch.landed is not None:  # cancelled during its transaction: carried out
                    self._moved(moving, new_nwk)
                raise
            self._moved(moving, new_nwk)
        if moving:
            LOGGER.info(
                "%d reporting record(s) of 0x%04X %s",
                len(moving),
                old_nwk,
                "dropped" if new_nwk is None else f"moved to 0x{new_nwk:04X}",
            )
        return len(moving)

    def _moved(
        self, moving: list[tuple[Destination, ReportingConfig]], new_nwk: int | None
    ) -> None:
        """The records ``moving`` to ``new_nwk`` (None: dropped) in memory, their reports
        timed (:meth:`_move` has stored them)."""
        now = self.clock()
        for destination, config in moving:
            stop = replace(config, max_interval=NO_REPORTING)
            self.core.configure_reporting(destination, stop, now)
            if new_nwk is not None:
                there = Destination.device(new_nwk, destination.endpoint)
                self.core.configure_reporting(there, config, now)
        self._timer.update()

    # -- readings -------------------------------------------------------------------------------

    async def feed(self, readings: Readings) -> None:
        """Take a real meter's readings now (``SummationDecreased`` / ``ValueError``: refused,
        nothing changed); the profile interval they close is stored before any report. The
        readings listeners (:meth:`on_readings`) have it before this returns."""
        async with self._lock:
            now = self.clock()
            await self._apply(readings, now)
        self._timer.update()
        await self._tell_reading(now)

    #: :meth:`feed` by the core's name.
    update = feed

    async def _polled(self, polled: tuple[int, Readings]) -> Afterwards:
        await self._apply(polled[1], polled[0])
        return functools.partial(self._tell_reading, polled[0])

    async def _tell_reading(self, now: int) -> None:
        """Tell the readings listeners of the reading taken at ``now``, the meter's lock let go
        (a listener's work may need it: the prepay account a reading charges may turn the
        supply off, :meth:`set_credit_interrupted`), one reading at a time in the order they
        were taken (their own lock, taken as the meter's is let go)."""
        async with self._reading_order:
            for listener in list(self._readings_listeners):
                await listener(now)

    def on_readings(self, listener: Callable[[int], Awaitable[None]]) -> Callable[[], None]:
        """Have ``await listener(now)`` run after each reading the meter takes (polled or
        fed), the core's values updated (a prepay account charges what was used: the ESI's
        Prepayment server). The returned callable detaches it."""
        self._readings_listeners.append(listener)
        return lambda: self._readings_listeners.remove(listener)

    async def _apply(self, readings: Readings, now: int) -> None:
        before = self.core.interval_end
        if self.tier is not None:
            self.core.set_tier(self.tier(now))
        if self._begun:
            self.core.update(readings, now)
        else:  # the meter's register when first read: the profile counts from it
            self.core.begin(readings, now)
            self._begun = (readings.summation_delivered, readings.summation_received) != (None,) * 2
        await self._keep_profile(before)
        self._serve_attributes()

    async def _keep_profile(self, before: int) -> None:
        """Store the profile when intervals closed since the open one ended at ``before``
        (a reading or a Get Profile closes them), before anything depending on them is sent;
        or when its last write failed (written with the next reading, a poll at the latest
        one update period later: it waited for the next interval to close, in memory)."""
        if self.store is not None and (self.core.interval_end != before or self._unsaved):
            self._unsaved = True
            await self._store_profile()

    async def _store_profile(self) -> None:
        """Store the profile and the readings held (the record ``profile``)."""
        assert self.store is not None
        await self.store.commit(Batch().put(self.namespace, _PROFILE_KEY, self.core.snapshot()))
        self._unsaved = False

    def _serve_attributes(self) -> None:
        """Answer Read Attributes for every attribute the core (or supply control) holds a
        value for."""
        tiers = (tier_summation_attribute(n, received=r) for n in self.core.tiers() for r in _BOTH)
        for attribute in sorted({*A, *tiers}):
            if attribute not in self._served and self.core.read(attribute) is not None:
                self._served.add(attribute)
                self.endpoint.set_attribute_source(
                    METERING,
                    attribute,
                    attribute_type_id(attribute),
                    functools.partial(self._read, attribute),
                )
        if self.supply is not None:
            for held in sorted(self.supply.attributes().keys() - self._served):
                self._served.add(held)
                self.endpoint.set_attribute_source(
                    METERING,
                    held,
                    attribute_type_id(held),
                    functools.partial(_held, self.supply, held),
                )

    def _read(self, attribute: int) -> int | None:
        """An attribute's value at the time of the read (the Historical Consumption set's
        as it is then: a day that turned with no reading reads as a new day at 0)."""
        return self.core.read_at(attribute, self.clock())

    # -- frames ---------------------------------------------------------------------------------

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        async with self._lock:
            now = self.clock()
            before = self.core.interval_end
            supply = self.supply
            held = None if supply is None else supply.hold()
            kept = self._snapshots_before(msg)
            reporting = self._reporting_before(msg)
            step = self.protocol.handle(msg, now)
            batch = self._kept(before)
            try:  # all the command changed in one commit: none of it stored if it fails
                told = await self._record(step, now, batch)
                self.snapshots.changed = False
            except BaseException:  # failed (answered FAILURE) or cancelled (a stop): as they were
                if batch.landed is not None:  # cancelled, its transaction carried out: as stored
                    self._stored_anyway()
                    raise
                if supply is not None and held is not None:
                    supply.put_back(held)
                if kept is not None:
                    self._put_back_snapshots(kept)
                self._put_back_reporting(step, reporting)
                raise
        self._serve_attributes()
        self._timer.update()
        others = tuple(e for e in step.events if not isinstance(e, SUPPLY_EVENTS))
        try:
            return await carry_out(self.endpoint, replace(step, events=others), self._stream.emit)
        finally:  # stored: told even when the answer could not be sent
            await self._untold.tell(told)

    def _reporting_before(self, msg: ZclMessage) -> dict[int, ReportingConfig]:
        """The sender's reporting records by attribute before ``msg``, when it is a Configure
        Reporting (ZCL 2.5.7): put back if it cannot be stored (it is answered FAILURE)."""
        if (
            msg.is_cluster_command
            or msg.command_id != foundation.GeneralCommand.Configure_Reporting
        ):
            return {}
        here = Destination.device(msg.src_nwk, msg.src_ep)
        return {c.attribute: c for d, c in self.core.reporting.configurations() if d == here}

    def _put_back_reporting(self, step: Step, held: dict[int, ReportingConfig]) -> None:
        """The records a Configure Reporting answered FAILURE configured, as they were
        (:meth:`_reporting_before`; none: no record). They were kept: the meter reported to
        the device as it asked, while the store, and so a restart, did not have it."""
        now = self.clock()
        for event in step.events:
            if isinstance(event, ReportingConfigured):
                config = event.config
                stop = replace(config, max_interval=NO_REPORTING)
                before = held.get(config.attribute, stop)
                self.core.configure_reporting(event.destination, before, now)

    def _stored_anyway(self, *, snapshots: bool = True) -> None:
        """A write cancelled during its transaction, which the store carried out
        (:attr:`Batch.landed <zse.store.Batch.landed>`): the change stays, as stored; its
        events told at once (:meth:`_record`); served and timed as a stored
        change is (a Change Supply or a snapshot for later is made at its time). ``snapshots``:
        the commit held them (a supply change's does not: snapshots a failed write left to
        store still wait for the next)."""
        if self.supply is not None:
            self.supply.changed = False
        if snapshots:
            self.snapshots.changed = False
        self._serve_attributes()
        self._timer.update()

    def _kept(self, before: int | None) -> Batch:
        """What a command changed besides :meth:`_record`'s, to store in the same commit:
        the profile when intervals closed since the open one ended at ``before`` (None: at
        stop, with the readings held, once a reading was taken), the snapshots, schedules
        and samples when they changed. In commits of their own, the
        snapshot of a command whose next commit failed was answered FAILURE, put back in
        memory, and kept in the store (a restart brought it back)."""
        batch = Batch()
        closed = self._begun if before is None else self.core.interval_end != before
        if self.store is not None and closed:
            batch.put(self.namespace, _PROFILE_KEY, self.core.snapshot())
        if self.snapshots.changed:
            batch.put(self.namespace, _SNAPSHOTS_KEY, self.snapshots.record())
        return batch

    async def _record(
        self, step: Step, now: int, batch: Batch | None = None
    ) -> list[tuple[int | None, SupplyEvent]]:
        """Store the reporting records and the supply a step changed (with ``batch``, in one
        commit), with a ``"told"`` journal entry per supply event (before its response is
        sent), and poll sooner when fast poll was granted; the supply events with their
        journal seqs (None: no store). A commit cancelled during its transaction, which the
        store carries out (:attr:`Batch.landed <zse.store.Batch.landed>`), has its events
        told in a task (:meth:`Untold.tell_soon <zse.zcl.events.Untold.tell_soon>`) before
        it raises: they were told only after the next restart."""
        batch = Batch() if batch is None else batch
        supply_events = [e for e in step.events if isinstance(e, SUPPLY_EVENTS)]
        for event in step.events:
            if isinstance(event, FastPollGranted) and event.new and self.source is not None:
                due = self._poller.due
                self._poller.due = min(due, now + event.period) if due else now + event.period
            if isinstance(event, ReportingConfigured):
                config = event.config
                key = _report_key(event.destination, config.attribute)
                if config.max_interval == NO_REPORTING:
                    batch.delete(self.namespace, key)
                else:
                    batch.put(self.namespace, key, _record(event.destination, config))
        if self.supply is not None and self.supply.changed:
            batch.put(self.namespace, _SUPPLY_KEY, self.supply.snapshot())
        for event in supply_events:
            batch.append(self.namespace, _TOLD, event_record(event))
        seqs: list[int | None] = [None] * len(supply_events)
        if self.store is not None and len(batch):
            try:
                seqs = [*await self.store.commit(batch)]
            except asyncio.CancelledError:  # stored all the same (during its transaction):
                if batch.landed is not None:  # its events told now, as a stored change's are
                    self._untold.tell_soon(zip(batch.landed, supply_events, strict=True))
                raise
        if self.supply is not None:
            self.supply.changed = False
        return [*zip(seqs, supply_events, strict=True)]

    # -- snapshots and sampling (SE 1.2) --------------------------------------------------------

    async def take_snapshot(self, cause: int) -> Snapshot:
        """Take a snapshot now for ``cause`` (a :class:`~zse.metering.snapshot_types.
        MeterSnapshotCause`), stored before this returns; :class:`~zse.errors.StoreError`
        when it cannot be (none taken)."""
        return await self._snapshots_change(lambda now: self.snapshots.take(now, cause))

    async def plan_snapshot(
        self, key: str, at: int, cause: int, change: str | None = None
    ) -> Snapshot | None:
        """A snapshot for ``cause`` at ``at``, the implementation time of the change ``key``
        names (a tariff, a tenancy, a supplier the ESI published): taken now (and returned)
        when ``at`` is not in the future, else taken by the meter's timer at ``at``
        (:meth:`SnapshotCore.plan <zse.metering.snapshots.SnapshotCore.plan>`); stored before
        this returns (:class:`~zse.errors.StoreError`: nothing changed)."""
        snapshot = await self._snapshots_change(
            lambda now: self.snapshots.plan(key, at, cause, now, change)
        )
        self._timer.update()
        return snapshot

    def snapshot_room(self, key: str, at: int) -> None:
        """:class:`~zse.metering.snapshots.SnapshotsFull` when :meth:`plan_snapshot` would
        refuse ``key`` at ``at`` now (:meth:`SnapshotCore.room
        <zse.metering.snapshots.SnapshotCore.room>`): checked before the change it is of is
        made."""
        self.snapshots.room(key, at, self.clock())

    async def unplan_snapshot(self, key: str) -> bool:
        """Drop the snapshot planned for the change ``key`` (cancelled), stored before this
        returns; whether one was planned."""
        dropped = await self._snapshots_change(lambda _now: self.snapshots.unplan(key))
        self._timer.update()
        return dropped

    async def _snapshots_change(self, change: Callable[[int], _T]) -> _T:
        """Make ``change(now)`` to the snapshots and store it, under the meter's lock; put
        back as it was when the write fails (:class:`~zse.errors.StoreError` raised) or is
        cancelled."""
        async with self._lock:
            kept = (self.snapshots.record(), self.snapshots.changed)
            done = change(self.clock())
            batch = Batch()
            try:
                await self._keep_snapshots(batch)
            except BaseException:
                if batch.landed is not None:  # cancelled during its transaction: carried out
                    self._stored_anyway()
                else:
                    self._put_back_snapshots(kept)
                raise
        return done

    def _snapshots_before(self, msg: ZclMessage) -> tuple[dict[str, Any], bool] | None:
        """What the snapshots and sampling sessions are before ``msg``, when it is a command
        that changes them (:data:`~zse.metering.snapshots.CHANGING`): put back if it cannot
        be stored (it is answered FAILURE)."""
        if msg.is_cluster_command and not msg.from_server and msg.command_id in CHANGING:
            return self.snapshots.record(), self.snapshots.changed
        return None

    def _put_back_snapshots(self, kept: tuple[dict[str, Any], bool]) -> None:
        """Snapshots and sessions as they were (:meth:`_snapshots_before`): a snapshot taken,
        a schedule or a session started by a command answered FAILURE is not kept, nor
        written with the next commit."""
        self.snapshots.restore(kept[0])
        self.snapshots.changed = kept[1]

    async def _snapshots_due(self, changed: bool) -> None:
        """Store the snapshots and samples taken at their time. A write that fails leaves
        them due (:class:`_SnapshotsDue`): written again :data:`SNAPSHOTS_RETRY` seconds
        later (they were served from memory, unstored until some later write: lost by a
        restart meanwhile)."""
        if changed:
            try:
                await self._keep_snapshots()
            except Exception:
                self._snapshots_timed.failed()
                raise

    async def _keep_snapshots(self, batch: Batch | None = None) -> None:
        """Store the snapshots, schedules and samples when they changed (in ``batch``),
        before anything depending on them is sent."""
        if self.snapshots.changed and self.store is not None:
            batch = Batch() if batch is None else batch
            await self.store.commit(
                batch.put(self.namespace, _SNAPSHOTS_KEY, self.snapshots.record())
            )
        self.snapshots.changed = False

    async def _report(self, step: Step) -> None:
        """Send the Report Attributes due, each on its own: one device that cannot be reached
        does not keep the others' reports back."""
        for send in step.sends:
            try:
                await carry_out(self.endpoint, Step(sends=(send,)), self._stream.emit)
            except Exception as exc:  # the radio could not deliver: the next report goes
                LOGGER.info("Report Attributes to %s not sent: %s", send.to, exc)

    # -- supply control (SE 1.2, zse.metering.supply) -------------------------------------------

    async def _supply_due(self, due: tuple[tuple[dict[str, Any], bool], Step]) -> Afterwards:
        """Changes of supply applied at their time: stored with their events, then
        acknowledged, and told once the timer lets the meter's lock go (a listener's work may
        need it). A write that fails puts the supply back as it was, the changes still
        waiting, and raises: the timer logs it and tries again :data:`SUPPLY_RETRY` seconds
        later (or at the next input), so each change is applied, stored, acknowledged and
        told once it can be stored, never kept unstored and untold. A stop that cancels the
        write puts it back too (the stop would otherwise store the change made in memory
        without its journal entry: applied, never told nor acknowledged): the store then
        holds it waiting, applied after the restart. A write cancelled once its transaction
        began is carried out (:mod:`zse.store`): the change stays applied, as stored, and is
        told at once, in a task the meter's stop awaits (it was told after the restart)."""
        held, step = due
        batch = Batch()
        try:
            told = await self._record(step, self.clock(), batch)
        except BaseException:  # a write that failed, or was cancelled by stop()
            if batch.landed is not None:  # cancelled during its transaction: carried out
                self._stored_anyway(snapshots=False)
                raise
            assert self.supply is not None
            self.supply.put_back(held)
            raise
        self._serve_attributes()
        await self._report(step)  # a send that fails is logged there
        return functools.partial(self._untold.tell, told)

    def _supply_control(self) -> SupplyControl:
        if self.supply is None:
            raise SupplyRefused(foundation.Status.UNSUP_CLUSTER_COMMAND, "no supply control")
        return self.supply

    async def _supply_step(
        self, events: list[SupplyEvent], batch: Batch | None = None
    ) -> list[tuple[int | None, SupplyEvent]]:
        """Store what supply control changed with its events (in ``batch``): the events to
        tell (by ``self._untold.tell``, outside the lock)."""
        told = await self._record(Step(events=tuple(events)), self.clock(), batch)
        self._serve_attributes()
        return told

    async def _supply_change(
        self, change: Callable[[SupplyControl], list[SupplyEvent]]
    ) -> list[tuple[int | None, SupplyEvent]]:
        """Make the application's ``change`` to supply control and store it with its events
        (:meth:`_supply_step`; the caller holds the lock). A store that fails puts the supply
        back as it was and raises :class:`~zse.errors.StoreError` (the change was kept in
        memory, served and written with the next commit, its events never told); so does a
        write cancelled (the caller's task, a stop) before its transaction began; one
        cancelled during it is carried out (:mod:`zse.store`): the change stays, as stored,
        its events told at once, in a task the meter's stop awaits (:meth:`_record`)."""
        supply = self._supply_control()
        held = supply.hold()
        events = change(supply)
        batch = Batch()
        try:
            return await self._supply_step(events, batch)
        except BaseException:
            if batch.landed is not None:
                self._stored_anyway(snapshots=False)
            else:
                supply.put_back(held)
            raise

    async def change_supply(
        self,
        status: int,
        *,
        at: int = NOW,
        provider_id: int = 0,
        issuer_event_id: int = 0,
    ) -> ChangeOutcome:
        """The ESI's Change Supply: the supply to ``status`` (Off 0, Off/Armed 1, On 2) at
        ``at`` (UTC; 0 now, 0xFFFFFFFF cancels the waiting change of the same provider and
        issuer event id); stored before this returns (:class:`~zse.errors.StoreError`: not
        made). Returns what became of it (:meth:`SupplyControl.take_change`).
        :class:`SupplyRefused` as :meth:`SupplyControl.change_supply`."""
        self._supply_control()
        change = SupplyChange(
            status=status,
            when=at,
            provider_id=provider_id,
            issuer_event_id=issuer_event_id,
            request_time=self.clock(),
        )
        outcomes: list[ChangeOutcome] = []

        def take(supply: SupplyControl) -> list[SupplyEvent]:
            events, outcome = supply.take_change(change, self.clock())
            outcomes.append(outcome)
            return events

        async with self._lock:
            told = await self._supply_change(take)
        self._timer.update()
        await self._untold.tell(told)
        return outcomes[0]

    async def set_credit_interrupted(self, interrupted: bool) -> None:
        """The prepay account interrupted (True) or gave back (False) the supply: Supply
        Status follows (Off wins, :mod:`zse.metering.supply`), stored before this returns
        (:class:`~zse.errors.StoreError`: not made, the account's event not taken). The ESI
        calls it."""
        async with self._lock:
            told = await self._supply_change(
                lambda supply: supply.set_credit_interrupted(interrupted, self.clock())
            )
        self._timer.update()  # Supply Status reported to the devices that asked
        await self._untold.tell(told)

    async def count_load_limit(self) -> int:
        """The application's load limiting acted once more: LoadLimitCounter + 1 (stored
        before this returns; :class:`~zse.errors.StoreError`: not counted)."""
        counted: list[int] = []

        def count(supply: SupplyControl) -> list[SupplyEvent]:
            counted.append(supply.count_load_limit())
            return []

        async with self._lock:
            await self._supply_change(count)
        return counted[0]


def _held(supply: SupplyControl, attribute: int) -> int:
    """A supply attribute served: its value, or its "none" value once no longer held (the
    proposed change's status after it applied: Off, as ProposedChangeSupplyImplementationTime
    then says no change waits)."""
    value = supply.read(attribute)
    return OFF if value is None else value


# -- the client (SE D.3.3) --------------------------------------------------------------------


class MeterNotFound(ZseError):
    """No device answered for a Metering server on the SE profile (Match_Desc_req)."""


async def find_meter(device: ZdoRequester, nwk: int = 0x0000) -> tuple[int, int]:
    """The (NWK address, endpoint) of the Metering server on the device at ``nwk``, found with
    ZDO Match_Desc_req on the SE profile (SE 5.4.7.1); :class:`MeterNotFound` if none or if
    the answer does not decode."""
    try:
        address, endpoints = await match_servers(device, METERING, nwk)
    except DecodeError as exc:
        raise MeterNotFound(f"0x{nwk:04X}'s Match_Desc_rsp does not decode ({exc})") from exc
    if not endpoints:
        raise MeterNotFound(f"no Metering server on 0x{nwk:04X}")
    return address, endpoints[0]


class ProfileRefused(ZseError):
    """The meter did not answer Get Profile with a Get Profile Response."""


def _status_of(reply: ZclMessage) -> str:
    """A Default Response's status, by name, for an error message."""
    if reply.command_id == foundation.GeneralCommand.Default_Response and len(reply.payload) >= 2:
        try:
            return foundation.Status(reply.payload[1]).name
        except ValueError:
            return f"status 0x{reply.payload[1]:02X}"
    return f"global command 0x{reply.command_id:02X}"


#: What a :class:`MeteringClient` tells its listeners.
ClientEvent = MeterReading | Polling | AttributeUnsupported | SupplyStatusChanged | TodayConsumption


class MeteringClient:
    """A HAN device's Metering client (SE D.3.3) for the meter at ``meter_nwk`` /
    ``meter_ep``: summation and demand as the meter's formatting shows them.

    :meth:`current` gives the latest :class:`~zse.metering.formatting.Reading` of each;
    ``on_event`` / ``events()`` hear every :class:`MeterReading` and :class:`Polling` change,
    and each :class:`AttributeUnsupported`: the meter answered summation or demand
    ``UNSUPPORTED_ATTRIBUTE`` (a meter without InstantaneousDemand). With
    ``MeteringClientConfig(supply_status=True)`` the client follows the meter's Supply Status
    (SE 1.2) too: each new value heard, reported or read (:meth:`read_supply_status` as well),
    is a :class:`SupplyStatusChanged`, and :attr:`supply_status` holds it.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        meter_nwk: int = 0x0000,
        meter_ep: int,
        config: MeteringClientConfig | None = None,
        clock: Callable[[], int] = system_clock,
        request_timeout: float = 8.0,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.request_timeout = request_timeout
        self.protocol = MeteringClientProtocol(Destination.device(meter_nwk, meter_ep), config)
        self._stream: EventStream[ClientEvent] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._timer = Timer("metering client", logger=LOGGER, level=logging.WARNING)
        self._timer.add(self.protocol, self._fire, clock=clock)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._remove: Callable[[], None] | None = None

    @property
    def meter(self) -> Destination:
        """The meter's endpoint."""
        return self.protocol.meter

    def start(self) -> None:
        """Take the meter's reports, read the formatting and ask for reports."""
        if self._remove is None:
            self._remove = self.endpoint.add_handler(METERING, self._on_message, general=True)
        step = self.protocol.start(self.clock())
        self._timer.start()
        self._fire(step)

    async def stop(self) -> None:
        """Stop polling and taking reports."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        await self._timer.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def supply_status(self) -> int | None:
        """The meter's Supply Status as last heard (Off 0, Off/Armed 1, On 2), reported or
        read; None: not heard yet (not followed, or the meter has none)."""
        return self.protocol.supply_status

    @property
    def today(self) -> Reading | None:
        """What the meter says was used today (CurrentDayConsumptionDelivered, SE 1.2
        D.3.2.2.5) as shown (HistoricalConsumptionFormatting), followed with
        ``MeteringClientConfig(today=True)``; None when not known (the meter does not serve
        it: many real meters do not)."""
        return self.protocol.today

    def current(self) -> tuple[Reading | None, Reading | None]:
        """The latest summation and demand as shown (None: not known yet)."""
        readings = self.protocol.readings
        summation = readings.get(A.CURRENT_SUMM_DELIVERED)
        demand = readings.get(A.INSTANTANEOUS_DEMAND)
        return (
            None if summation is None else summation.reading,
            None if demand is None else demand.reading,
        )

    async def get_profile(
        self,
        channel: int = IntervalChannel.Consumption_Delivered,
        *,
        end_time: int = 0,
        number_of_periods: int = 24,
    ) -> ProfileAnswer:
        """Ask the meter for its load profile (Get Profile, D.3.3.3.1.1) and return its Get
        Profile Response (D.3.2.3.1.1): the status, the end time of the newest interval and
        the intervals, most recent first, in the meter's HistoricalConsumptionFormatting.
        :class:`ProfileRefused` when the meter answers with a Default Response instead (it
        has no Get Profile), ``TimeoutError`` when it does not answer."""
        send = self.protocol.get_profile_request(channel, end_time, number_of_periods)
        reply = await request(self.endpoint, send, timeout=self.request_timeout)
        if not reply.is_cluster_command:
            raise ProfileRefused(f"the meter answered Get Profile with {_status_of(reply)}")
        try:
            return profile_answer(reply)
        except InvalidFrame as exc:
            raise ProfileRefused(f"the meter's answer to Get Profile: {exc}") from None

    async def read_tier_summations(self, tiers: Iterable[int]) -> dict[int, TierSummation]:
        """Read ``tiers``' CurrentTierNSummationDelivered / Received now (D.3.2.2.2, tiers
        1-48), shown as the summation is (the Formatting set, read first when not known yet);
        None for one the meter does not hold (a tier never in force). ``TimeoutError`` when
        the meter does not answer, :class:`~zse.errors.DecodeError` when its answer is not a
        Read Attributes Response that decodes."""
        tiers = tuple(tiers)
        if self.protocol.formatting is None:
            await self._request(self.protocol.read_request())
        replies = [
            await request(self.endpoint, send, timeout=self.request_timeout)
            for send in self.protocol.tier_requests(tiers)
        ]
        return self.protocol.tier_summations(tiers, replies)

    async def local_change_supply(self, status: int = ON) -> foundation.Status:
        """Ask the meter to restore its armed supply (Local Change Supply, SE 1.2; the
        consumer's button): the status of its Default Response, SUCCESS when restored (or
        already on), NOT_AUTHORIZED when the supply is off (not armed) or interrupted for
        credit; ``TimeoutError`` when it does not answer."""
        send = local_change_supply_request(self.meter, status)
        reply = await request(self.endpoint, send, timeout=self.request_timeout)
        if reply.command_id != foundation.GeneralCommand.Default_Response or len(reply.payload) < 2:
            return foundation.Status.FAILURE
        try:
            return foundation.Status(reply.payload[1])
        except ValueError:
            return foundation.Status.FAILURE

    async def read_supply_status(self) -> int:
        """The meter's Supply Status (0x0014: Off 0, Off/Armed 1, On 2), read now;
        :class:`~zse.metering.supply.SupplyRefused` when the meter does not hold it,
        ``TimeoutError`` when it does not answer. The answer goes to the core as any read:
        a new value is a :class:`SupplyStatusChanged` too."""
        send = supply_status_read_request(self.meter)
        reply = await request(self.endpoint, send, timeout=self.request_timeout)
        await self._on_message(reply)
        return supply_status_read(reply)

    # -- snapshots and sampling (SE 1.2, zse.metering.snapshot_client) --------------------------

    async def take_snapshot(self, cause: int = 1) -> int:
        """Take Snapshot (cause General by default); the snapshot's id."""
        return await snapshot_client.take_snapshot(
            self.endpoint, self.meter, cause, timeout=self.request_timeout
        )

    async def get_snapshot(
        self,
        *,
        earliest: int = 0,
        latest: int = 0xFFFFFFFF,
        offset: int = 0,
        cause: int = ANY_CAUSE,
    ) -> PublishedSnapshot | None:
        """Get Snapshot: the ``offset``-th newest snapshot in [earliest, latest] of ``cause``,
        its Publish Snapshot commands joined; None when none matches."""
        return await snapshot_client.get_snapshot(
            self.endpoint,
            self.meter,
            earliest=earliest,
            latest=latest,
            offset=offset,
            cause=cause,
            timeout=self.request_timeout,
        )

    async def start_sampling(
        self,
        issuer_event_id: int,
        *,
        sample_type: int = SampleType.Instantaneous_Demand,
        interval: int = 60,
        count: int = 10,
        start: int = 0,
    ) -> int:
        """Start Sampling; the Sample ID (0xFFFF: refused)."""
        return await snapshot_client.start_sampling(
            self.endpoint,
            self.meter,
            issuer_event_id,
            sample_type=sample_type,
            interval=interval,
            count=count,
            start=start,
            timeout=self.request_timeout,
        )

    async def get_sampled_data(
        self,
        sample_id: int,
        *,
        sample_type: int = SampleType.Instantaneous_Demand,
        earliest: int = 0,
        count: int = 19,
    ) -> SampledData | None:
        """Get Sampled Data; None when the meter has none (NOT_FOUND)."""
        return await snapshot_client.get_sampled_data(
            self.endpoint,
            self.meter,
            sample_id,
            sample_type=sample_type,
            earliest=earliest,
            count=count,
            timeout=self.request_timeout,
        )

    def _fire(self, step: Step) -> None:
        """Carry out ``step`` in the background (its requests wait for their answers)."""
        task = asyncio.get_running_loop().create_task(self._carry_out(step))
        keep_task(self._tasks, task, LOGGER, "metering client request failed")

    async def _carry_out(self, step: Step) -> None:
        for event in step.events:
            self._stream.emit(event)
        for send in step.sends:
            await self._request(send)

    async def _request(self, send: Send) -> None:
        """Send one request and give its answer (a response or a Default Response) to the
        core; no answer is the core's business (its deadline)."""
        try:
            reply = await request(self.endpoint, send, timeout=self.request_timeout)
        except TimeoutError:
            LOGGER.info("no answer from the meter to global command 0x%02X", send.command_id)
            return
        await self._on_message(reply)

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        if not self.protocol.screen(msg):
            return None
        try:
            command = decode_global(msg)
        except DecodeError as exc:
            LOGGER.warning("bad Metering frame from 0x%04X: %s", msg.src_nwk, exc)
            return foundation.Status.MALFORMED_COMMAND
        step = self.protocol.receive(msg, command, self.clock())
        self._timer.update()
        await self._carry_out(step)
        if msg.command_id == foundation.GeneralCommand.Report_Attributes:
            return foundation.Status.SUCCESS  # the Default Response it is owed (ZCL 2.5.12.2)
        return None
