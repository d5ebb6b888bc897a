"""Meter gateways for the fleet tests: simulated meters (:class:`zse.headend.sim.SimMeters`,
each an ESI on its own PAN with three HAN devices), their devices registered and METER_READY,
each ESI running the ``zse mqtt`` bridge under ``gw/<meter>`` on a real Mosquitto; and what
each gateway carried out, counted at its ESI."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.mqtt.broker import Broker
from zse.headend.control import Control
from zse.headend.core import Outcome, SendKind
from zse.headend.gateway import GatewayLink
from zse.headend.queue import JobQueue, JobRow, open_queue
from zse.headend.sim import SimMeters
from zse.headend.worker import Worker
from zse.installcode import canonical_eui64
from zse.mqtt.bridge import MqttBridge, broker_time
from zse.mqtt.core import parse_settings
from zse.provisioning import LifecycleEvent, LifecycleState
from zse.roles.esi import (
    LifecycleChanged,
    LoadControlCancelSent,
    LoadControlSent,
    MessageCancelSent,
    MessageSent,
)

T = TypeVar("T")
PREFIX = "gw"
#: Real seconds a wait for a condition may take (a bound: the waits end on the condition).
REAL_BOUND = 40.0
#: A device the gateway admitted, as the headend shows it: pending provisioning, or already
#: meter ready where it joined between two looks (the clock follows the real one meanwhile).
ADMITTED = frozenset({"pending provisioning", "meter ready"})
LCE = {
    "device_class": 0x0FFF,
    "utility_enrollment_group": 0,
    "start_time": 0,
    "duration_in_minutes": 1,
    "criticality_level": 3,
    "cooling_temperature_offset": 0xFF,
    "heating_temperature_offset": 0xFF,
    "cooling_temperature_set_point": -0x8000,
    "heating_temperature_set_point": -0x8000,
    "average_load_adjustment_percentage": -128,
    "duty_cycle": 50,
    "event_control": 0,
}


def lce(send: int) -> dict[str, Any]:
    """A Load Control Event's fields as a job carries them (issuer event id = the send)."""
    return {"issuer_event_id": send, **LCE}


@dataclass
class Gateways:
    """The meters, their bridges (by meter id) and the sends each ESI carried out, counted
    per (device, send id)."""

    sims: SimMeters
    broker: Broker
    #: The bridges' ``[mqtt] event_batches`` (ADR 0027).
    event_batches: bool = False
    bridges: dict[str, MqttBridge] = field(default_factory=dict)
    executed: Counter[tuple[str, int]] = field(default_factory=Counter)
    #: PROVISION carried out, per device; cancels sent, per (device, send id).
    provisioned: Counter[str] = field(default_factory=Counter)
    cancelled: Counter[tuple[str, int]] = field(default_factory=Counter)
    #: Sends and cancels in the order the ESIs carried them out: ("send"|"cancel", device, id).
    log: list[tuple[str, str, int]] = field(default_factory=list)

    def devices(self) -> list[tuple[str, str]]:
        """Every (device, meter), devices as the headend keys them."""
        return [(canonical_eui64(d.mac), d.meter) for d in self.sims.devices]

    def bridge(self, meter: str) -> MqttBridge:
        esi = next(m.esi for m in self.sims.meters if m.id == meter)
        settings = parse_settings(
            {
                "url": self.broker.url,
                "client_id": f"gw-{meter}",
                "base_topic": f"{PREFIX}/{meter}",
                "event_batches": self.event_batches,
            }
        )
        registry = next(m.registry for m in self.sims.meters if m.id == meter)
        return MqttBridge(esi, settings, store=registry.store)

    async def online(self, meter: str) -> None:
        """Start ``meter``'s bridge (again) and wait until it is connected."""
        bridge = self.bridges[meter] = self.bridge(meter)
        await bridge.start()
        await real(bridge.connected.wait())

    async def offline(self, meter: str) -> None:
        """Stop ``meter``'s bridge (its session stays at the broker: commands wait there)."""
        await self.bridges.pop(meter).stop()

    def _count(self, event: Any) -> None:
        if isinstance(event, LifecycleChanged) and event.event is LifecycleEvent.PROVISION:
            self.provisioned[canonical_eui64(event.device)] += 1
        if isinstance(event, MessageCancelSent | LoadControlCancelSent):
            send = (
                event.message_id if isinstance(event, MessageCancelSent) else event.issuer_event_id
            )
            for outcome in event.result.outcomes:
                self.cancelled[(canonical_eui64(outcome.device), send)] += 1
                self.log.append(("cancel", canonical_eui64(outcome.device), send))
        if isinstance(event, MessageSent | LoadControlSent):
            send = (
                event.message.message_id
                if isinstance(event, MessageSent)
                else event.event.issuer_event_id
            )
            for outcome in event.result.outcomes:
                self.executed[(canonical_eui64(outcome.device), send)] += 1
                self.log.append(("send", canonical_eui64(outcome.device), send))


async def real(awaitable: Awaitable[T], seconds: float = REAL_BOUND) -> T:
    """Await with the virtual clock following the real one (the broker, PostgreSQL and other
    processes work in real time), at most ``seconds``."""
    with broker_time():
        return await asyncio.wait_for(awaitable, seconds)


async def run_out(awaitable: Awaitable[T], speed: float = 20.0) -> T:
    """Await, the clock following the real one ``speed`` times as fast, what only timeouts
    still end: a link's waits (on the broker's real time) for answers that a fence proved
    will not come (every answer its gateways will give consumed: the link's counts, the
    queue's rows; or the gateway stopped). What still takes real time meanwhile (the
    database, the broker) takes ``speed`` times as much of the clock's: far less than a
    worker's back-off. Bounded by :data:`REAL_BOUND` real seconds."""
    loop = asyncio.get_running_loop()
    faster = getattr(loop, "real_time", None)
    if faster is None:  # an ordinary loop: its clock is the real one already
        return await real(awaitable)
    with broker_time(), faster(speed):
        return await asyncio.wait_for(awaitable, REAL_BOUND * speed)


async def run_out_until(check: Callable[[], Awaitable[bool]], speed: float = 20.0) -> None:
    """:func:`until` ``check()``, under :func:`run_out` (bounded by :data:`REAL_BOUND` real
    seconds)."""
    await run_out(until(check, REAL_BOUND * speed), speed)


async def until(check: Callable[[], Awaitable[bool]], seconds: float = REAL_BOUND) -> None:
    """Wait until ``check()`` is true, looking again every 0.1 s of real time (bounded)."""

    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.1)

    await real(poll(), seconds)


@contextlib.asynccontextmanager
async def gateways(
    broker: Broker,
    directory: Path,
    meters: int = 2,
    *,
    provisioned: bool = True,
    event_batches: bool = False,
) -> AsyncIterator[Gateways]:
    """``meters`` simulated meters, every device registered and METER_READY (unless not
    ``provisioned``: none registered), each meter's ESI a gateway on ``broker`` (bridge base
    topic ``gw/<meter>``; its devices' events in batches if ``event_batches``)."""
    loop = asyncio.get_running_loop()
    sims = SimMeters(meters, directory, clock=lambda: 800_000_000 + int(loop.time()))
    await sims.start()
    found = Gateways(sims, broker, event_batches)
    try:
        for device in sims.devices if provisioned else ():
            meter = next(m for m in sims.meters if m.id == device.meter)
            await meter.registry.register(device.mac, device.install_code)
            await meter.esi.provision(device.mac)
        if provisioned:
            await asyncio.sleep(60)  # virtual: the devices join (every 5 s) and run CBKE
        for meter in sims.meters:
            if provisioned:
                assert {r.state for r in meter.registry.devices()} == {LifecycleState.METER_READY}
            meter.esi.on_event(found._count)
        for meter in sims.meters:
            await found.online(meter.id)
        yield found
    finally:
        for bridge in found.bridges.values():
            await bridge.stop()
        await sims.close()


async def settled(queue: JobQueue, final: set[Outcome]) -> list[JobRow]:
    """The queue's rows once every one has an outcome in ``final``; when that is COMPLETED,
    first every device has the event, then the event's minute runs (virtual time)."""
    if Outcome.COMPLETED in final and Outcome.STARTED not in final:
        # every device has the event (a report seen only by a killed worker's session may be
        # missing: the device's later report, after the minute, moves it on)
        await settled(queue, {Outcome.DELIVERED, Outcome.RECEIVED, Outcome.STARTED, *final})
        await asyncio.sleep(90)
    rows: list[JobRow] = []

    async def check() -> bool:
        nonlocal rows
        rows = await queue.rows()
        return bool(rows) and all(r.outcome in final for r in rows)

    try:
        await until(check)
    except TimeoutError:
        raise AssertionError(f"not settled: {rows}") from None
    return rows


async def enqueue_lce(queue: JobQueue, send: int, devices: list[tuple[str, str]]) -> None:
    """What the API does for a Load Control Event by group: one job per device."""
    await queue.enqueue(send, SendKind.LOAD_CONTROL, lce(send), devices, now=0.0)


@contextlib.asynccontextmanager
async def worker(
    broker: Broker, database: str, name: str, clock: Callable[[], float] | None = None
) -> AsyncIterator[Worker]:
    """``zse headend worker --database ... --broker ...`` in this process: its own queue
    connection and MQTT session, control jobs and lifecycle events included; ``clock``: the
    seconds it shares with the API (default the loop's, as an API in this process uses)."""
    loop = asyncio.get_running_loop()
    queue: JobQueue = await open_queue(database)
    control = await Control.open(queue)
    settings = parse_settings({"url": broker.url, "client_id": f"headend-{name}"})
    link = GatewayLink(settings, prefix=PREFIX, timeout=2.0)
    # on the virtual clock the worker's seconds run ahead of the database's: reading that
    # clock again (resync) would, rightly, pull the worker back onto the database's
    work = Worker(
        queue,
        link,
        owner=name,
        clock=clock or loop.time,
        poll=0.1,
        control=control,
        resync=math.inf,
    )
    await link.start()
    await work.start()
    try:
        await real(link.connected.wait())
        yield work
    finally:
        await work.stop()
        await link.close()
        await queue.close()
