"""Metering over ZCL (SE D.3): the asyncio shells of :mod:`zse.metering.protocol`.

``clock()`` gives ZigBee time (seconds since 2000-01-01 UTC); see :mod:`zse.time.service`.
"""

from __future__ import annotations

# -- the meter (Metering server, SE D.3.2) ------------------------------------------------------
#
# :class:`MeteringServer` serves a :class:`~zse.metering.core.MeterCore` on an endpoint through
# its :class:`~zse.metering.protocol.MeterServerProtocol`: Read Attributes from the core's
# values, Configure Reporting / Read Reporting Configuration and Report Attributes (ZCL
# 2.5.7-2.5.11), Get Profile and fast poll. Readings come from the application (:meth:`feed`,
# a real meter's register) or a :class:`~zse.metering.core.ReadingSource` polled every
# DefaultUpdatePeriod seconds (the applied fast poll period while fast poll is granted). One
# :class:`~zse.zcl.timer.Timer` drives the polls and the reports. With a store, the Get Profile
# rings (with the open interval and the readings held) and the reporting records survive a
# restart, written before anything that depends on them is sent (docs/persistence.md).
import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from zigpy.zcl import foundation

from zse.metering.core import MeterCore, Readings, ReadingSource
from zse.metering.protocol import (
    DEFAULT_UPDATE_PERIOD,
    FAST_POLL_UPDATE_PERIOD,
    FastPollGranted,
    MeterServerProtocol,
    ReportingConfigured,
    attribute_type_id,
)
from zse.records import Fields, Int, Mismatch, RecordError, check, load_each
from zse.se.ids import METERING
from zse.se.ids import MeteringAttribute as A
from zse.store import Batch, Store
from zse.time.service import system_clock
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import ZclPort, carry_out
from zse.zcl.events import EventStream
from zse.zcl.frame import Step, ZclMessage
from zse.zcl.reporting import NO_REPORTING, ReportingConfig
from zse.zcl.timer import Timer

__all__ = ["METERING", "FastPollGranted", "MeteringServer", "ReportingConfigured"]

LOGGER = logging.getLogger(__name__)

#: The store key of the profile snapshot; reporting records are ``report/<nwk>/<ep>/<attr>``.
_PROFILE_KEY = "profile"
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
    :meth:`feed`). ``delivered_only``, ``profile_period``, ``max_periods``,
    ``profile_capacity``: as :class:`~zse.metering.core.MeterCore` takes them. ``store``:
    persistence under ``namespace`` (default ``metering.server/<endpoint id>``).
    Events (:class:`ReportingConfigured`, :class:`FastPollGranted`) go to ``on_event``.
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
        profile_period: int = 2,
        max_periods: int = 24,
        profile_capacity: int = 96,
    ) -> None:
        self.endpoint = endpoint
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
            profile_period=profile_period,
            max_periods=max_periods,
            profile_capacity=profile_capacity,
        )
        self.protocol = MeterServerProtocol(self.core)
        self._stream: EventStream[ReportingConfigured | FastPollGranted] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._lock = asyncio.Lock()
        self._served: set[int] = set()
        self._removers: list[Callable[[], None]] = []
        self._poller = _Poller(self)
        self._timer = Timer("Metering server timer", logger=LOGGER)
        self._timer.add(self._poller, self._polled, clock=clock, lock=self._lock)
        self._timer.add(self.protocol, self._report, clock=clock, lock=self._lock)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the stored profile and reporting records, serve the cluster and its attributes,
        and start polling the source (at once) and reporting."""
        if self.store is not None:
            await self.store.load_with(self.namespace, self._load)
        self._serve_attributes()
        self._removers = [
            self.endpoint.add_handler(METERING, self._on_message),
            self.endpoint.add_handler(METERING, self._on_message, general=True),
        ]
        if self.source is not None:
            self._poller.due = self.clock()
        self._timer.start()

    async def stop(self) -> None:
        """Stop serving, polling and reporting (the stored state stays)."""
        for remove in self._removers:
            remove()
        self._removers = []
        await self._timer.stop()

    def _load(self, records: dict[str, Any], on_bad: Callable[[RecordError], None]) -> None:
        """The profile snapshot and the reporting records, checked; a bad one is handed to
        ``on_bad`` (quarantined by the store) and the others load."""
        now = self.clock()

        def load(key: str, value: Any) -> None:
            if key == _PROFILE_KEY:
                self.core.restore(value)
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

        load_each(sorted(records.items()), load, namespace=self.namespace, on_bad=on_bad)

    # -- readings -------------------------------------------------------------------------------

    async def feed(self, readings: Readings) -> None:
        """Take a real meter's readings now (``SummationDecreased`` / ``ValueError``: refused,
        nothing changed); the profile interval they close is stored before any report."""
        async with self._lock:
            await self._apply(readings, self.clock())
        self._timer.update()

    #: :meth:`feed` by the core's name.
    update = feed

    async def _polled(self, polled: tuple[int, Readings]) -> None:
        await self._apply(polled[1], polled[0])

    async def _apply(self, readings: Readings, now: int) -> None:
        before = self.core.interval_end
        self.core.update(readings, now)
        if self.store is not None and self.core.interval_end != before:
            await self.store.commit(Batch().put(self.namespace, _PROFILE_KEY, self.core.snapshot()))
        self._serve_attributes()

    def _serve_attributes(self) -> None:
        """Answer Read Attributes for every attribute the core holds a value for."""
        for attribute in sorted(A):
            if attribute not in self._served and self.core.read(attribute) is not None:
                self._served.add(attribute)
                self.endpoint.set_attribute_source(
                    METERING,
                    attribute,
                    attribute_type_id(attribute),
                    functools.partial(self.core.read, attribute),
                )

    # -- frames ---------------------------------------------------------------------------------

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        async with self._lock:
            now = self.clock()
            step = self.protocol.handle(msg, now)
            await self._record(step, now)
        self._timer.update()
        return await carry_out(self.endpoint, step, self._stream.emit)

    async def _record(self, step: Step, now: int) -> None:
        """Store the reporting records a step changed (before its response is sent), and
        poll sooner when fast poll was granted."""
        batch = Batch()
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
                    batch.put(
                        self.namespace,
                        key,
                        {
                            "nwk": event.destination.address,
                            "endpoint": event.destination.endpoint,
                            "attribute": config.attribute,
                            "min": config.min_interval,
                            "max": config.max_interval,
                            "change": config.reportable_change or 0,
                        },
                    )
        if self.store is not None and len(batch):
            await self.store.commit(batch)

    async def _report(self, step: Step) -> None:
        """Send the Report Attributes due, each on its own: one device that cannot be reached
        does not keep the others' reports back."""
        for send in step.sends:
            try:
                await carry_out(self.endpoint, Step(sends=(send,)), self._stream.emit)
            except Exception as exc:  # the radio could not deliver: the next report goes
                LOGGER.info("Report Attributes to %s not sent: %s", send.to, exc)
