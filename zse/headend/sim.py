"""Meters with HAN devices on the simulator, for ``zse headend serve --sim N`` and the tests.

Each meter is an ESI (:class:`~zse.roles.esi.EnergyServiceInterface`) on its own simulated air
and PAN, with its registry in ``directory/meter-K.sqlite``; beside it stand three HAN devices
(an in-home display, a thermostat and a load control device, :mod:`zse.roles.han`) whose MAC
addresses and install codes are printed as on their labels (:attr:`SimMeters.labels`). As a real
device does, each tries to join every :data:`JOIN_RETRY` seconds and gets in once a retailer has
registered it with its install code; it then runs CBKE and the headend sees it METER_READY.
Everything is seeded: the same seed gives the same keys and the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zse.cbke import SUITE1
from zse.cbke.ca import TestCA
from zse.cbke.service import eui64_bytes
from zse.headend.pki import HeadendConfig
from zse.headend.run import RunningHeadend, start_headend
from zse.headend.service import Meter
from zse.installcode import InstallCode, parse_eui64
from zse.provisioning.registry import HanRegistry
from zse.roles import han
from zse.roles.esi import EnergyServiceInterface
from zse.sim import Air, JoinRefused
from zse.time.service import system_clock

__all__ = ["JOIN_RETRY", "SimDevice", "SimMeters", "SimulatedHeadend", "simulated_headend"]

#: Seconds between a device's attempts to join.
JOIN_RETRY = 5.0
#: The devices beside each meter: role class name, device type (as the API names it).
_KINDS = (
    ("InHomeDisplay", "in-home display"),
    ("ProgrammableThermostat", "programmable thermostat"),
    ("LoadControlDevice", "load control device"),
)


@dataclass
class SimDevice:
    """A simulated HAN device beside a meter: its label data and its role."""

    meter: str
    mac: str
    install_code: str = field(repr=False)  # a secret in logs, as every record keeps it
    device_type: str
    role: Any
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class SimMeters:
    """``count`` simulated meters, their ESIs and HAN devices (see the module notes)."""

    def __init__(
        self, count: int, directory: Path, *, seed: int = 1, clock: Callable[[], int]
    ) -> None:
        self.count, self.directory, self.clock = count, directory, clock
        self.rng = random.Random(seed)  # noqa: S311 - simulation only: test keys
        self.ca = TestCA.generate(rng=self._seeded())
        self.airs: list[Air] = []
        self.meters: list[Meter] = []
        self.devices: list[SimDevice] = []

    def _seeded(self) -> random.Random:
        return random.Random(self.rng.getrandbits(64))  # noqa: S311 - simulation: test keys

    async def start(self) -> list[Meter]:
        """Start the meters (their ESIs) and power on their devices."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for index in range(1, self.count + 1):
            meter_id = f"meter-{index}"
            air = Air(seed=self.rng.getrandbits(32))
            self.airs.append(air)
            esi_eui = f"00:0d:6f:00:00:00:{index:02x}:e5"
            app = await air.coordinator(channel=15, ieee=esi_eui)
            registry = await HanRegistry.open(self.directory / f"{meter_id}.sqlite")
            esi = EnergyServiceInterface(
                app,
                credentials=self.ca.issue(
                    eui64_bytes(parse_eui64(esi_eui)), SUITE1, rng=self._seeded()
                ),
                registry=registry,
                clock=self.clock,
                rng=self._seeded(),
            )
            await esi.start()
            self.meters.append(Meter(meter_id, esi, registry))
            for number, (kind, device_type) in enumerate(_KINDS, start=1):
                mac = f"00:0d:6f:00:0b:{index:02x}:00:{number:02x}"
                code = InstallCode.generate(rng=self._seeded())
                sim = air.device(mac, install_code=code, channel=15)
                role = getattr(han, kind)(
                    sim,
                    credentials=self.ca.issue(eui64_bytes(sim.ieee), SUITE1, rng=self._seeded()),
                    clock=self.clock,
                    rng=self._seeded(),
                )
                self.devices.append(SimDevice(meter_id, mac, str(code), device_type, role))
        for device in self.devices:
            device.task = asyncio.get_running_loop().create_task(self._power_on(device))
        return self.meters

    def device(self, mac: str) -> SimDevice:
        """The simulated device with this MAC address."""
        return next(d for d in self.devices if d.mac == mac)

    def air_of(self, device: SimDevice) -> Air:
        """The air a device is on (its meter's)."""
        return self.airs[int(device.meter.removeprefix("meter-")) - 1]

    def labels(self) -> list[str]:
        """One line per device, as on its label: meter, MAC, type, install code."""
        return [
            f"{d.meter}  {d.mac}  {d.device_type:<24}  install code {d.install_code}"
            for d in self.devices
        ]

    async def _power_on(self, device: SimDevice) -> None:
        """Try to join (and run CBKE) until it works, as a device just switched on."""
        while True:
            try:
                await device.role.start()
            except JoinRefused:
                pass
            except Exception:
                with contextlib.suppress(Exception):
                    await device.role.stop()
            else:
                return
            await asyncio.sleep(JOIN_RETRY)

    async def close(self) -> None:
        """Switch the devices off, stop the ESIs, close the registries and the airs."""
        tasks = [d.task for d in self.devices if d.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for device in self.devices:
            with contextlib.suppress(Exception):
                await device.role.stop()
        for meter in self.meters:
            await meter.esi.stop()
            await meter.registry.close()
        for air in self.airs:
            air.close()


@contextlib.asynccontextmanager
async def simulated_headend(
    config: HeadendConfig,
    *,
    meters: int = 1,
    seed: int = 1,
    port: int | None = None,
    clock: Callable[[], int] | None = None,
) -> AsyncIterator[SimulatedHeadend]:
    """``zse headend serve --sim N`` as a library: ``meters`` simulated meters with their HAN
    devices, and the headend over them (:func:`zse.headend.run.start_headend`: records in
    ``config.database``, served at ``port``, default the configured one, 0 a free port).
    Stopped on the way out; ``.meters`` is the :class:`SimMeters`."""
    loop = asyncio.get_running_loop()
    if clock is None:
        base = system_clock() - int(loop.time())

        def clock() -> int:
            return base + int(loop.time())

    sims = SimMeters(meters, config.meters, seed=seed, clock=clock)
    try:
        running = await start_headend(config, await sims.start(), clock=clock, port=port)
        try:
            yield SimulatedHeadend(running, sims)
        finally:
            await running.close()
    finally:
        await sims.close()


@dataclass
class SimulatedHeadend:
    """A running headend (:class:`~zse.headend.run.RunningHeadend`) and its simulated
    meters."""

    running: RunningHeadend
    meters: SimMeters

    @property
    def port(self) -> int:
        """The mutual-TLS port."""
        return self.running.port

    @property
    def signed_port(self) -> int | None:
        """The signed-request port, if configured."""
        return self.running.signed_port
