"""A simulated HAN for the role tests: an ESI facade with a registry and three HAN roles."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zse.cbke import SUITE1
from zse.cbke.ca import TestCA
from zse.cbke.service import eui64_bytes
from zse.installcode import InstallCode
from zse.provisioning.registry import HanRegistry
from zse.roles.esi import EnergyServiceInterface
from zse.roles.han import HanDevice, InHomeDisplay, LoadControlDevice, ProgrammableThermostat
from zse.sim import Air
from zse.store import Store

START = 800_000_000
CA = TestCA.generate(rng=random.Random(7))
EUIS = {
    "ihd": "00:0d:6f:00:0e:00:00:01",
    "thermostat": "00:0d:6f:00:0e:00:00:02",
    "lcd": "00:0d:6f:00:0e:00:00:03",
}
ROLES: dict[str, type[HanDevice]] = {
    "ihd": InHomeDisplay,
    "thermostat": ProgrammableThermostat,
    "lcd": LoadControlDevice,
}


@dataclass
class Han:
    air: Air
    app: Any
    esi: EnergyServiceInterface
    registry: HanRegistry
    codes: dict[str, InstallCode]
    devices: dict[str, HanDevice] = field(default_factory=dict)
    events: list[Any] = field(default_factory=list)
    device_events: dict[str, list[Any]] = field(default_factory=dict)

    def clock(self) -> int:
        return START + int(asyncio.get_running_loop().time())

    def add(self, name: str, **options: Any) -> HanDevice:
        sim = self.air.device(EUIS[name], install_code=self.codes[name], channel=15)
        role = ROLES[name](
            sim,
            credentials=CA.issue(eui64_bytes(sim.ieee), SUITE1, rng=random.Random(name)),
            clock=self.clock,
            rng=random.Random(name),
            **options,
        )
        self.devices[name] = role
        self.device_events[name] = []
        role.on_event(self.device_events[name].append)
        return role


async def build(
    tmp_path: Path,
    *,
    seed: int = 1,
    groups: tuple[str, ...] = ("street",),
    capture: Path | None = None,
    store_class: type[Store] = Store,
    **esi_options: Any,
) -> Han:
    """A HAN whose registry (and ESI, unless ``store=`` is given) keeps to ``han.db``, opened
    as ``store_class``."""
    air = Air(seed=seed, capture=capture)
    app = await air.coordinator(channel=15)
    store = await store_class.open(tmp_path / "han.db")
    registry = await HanRegistry.attach(store, clock=lambda: 1_700_000_000.0)
    loop = asyncio.get_running_loop()
    esi = EnergyServiceInterface(
        app,
        credentials=[
            CA.issue(eui64_bytes(app.state.node_info.ieee), suite)
            for suite in esi_options.pop("suites", (SUITE1,))
        ],
        registry=registry,
        clock=lambda: START + int(loop.time()),
        **esi_options,
    )
    await esi.start()
    # seeded apart from the codes tests draw with random.Random(n) for their own devices: an
    # install code is per device, and the registry refuses one given twice
    rng = random.Random(f"han {seed}")
    codes = {name: InstallCode.generate(rng=rng) for name in EUIS}
    han = Han(air=air, app=app, esi=esi, registry=registry, codes=codes)
    esi.on_event(han.events.append)
    for name, eui in EUIS.items():
        await registry.register(eui, str(codes[name]), label=name, groups=groups)
    OPEN.append(han)
    return han


#: HANs built and not closed yet: tests/roles/conftest.py closes what a failed test left, so
#: the registry's database thread cannot keep pytest from exiting.
OPEN: list[Han] = []


async def restarted(
    han: Han,
    *,
    down_until: int | None = None,
    listener: Callable[[Any], object] | None = None,
    **esi_options: Any,
) -> EnergyServiceInterface:
    """The ESI stopped and a new one started with ``esi_options`` on the same radio, registry
    and store, as after a restart of its process: what it holds is read back. ``down_until``:
    the ZigBee time it stays down until; ``listener``: attached before it starts (it hears
    what the start tells)."""
    await han.esi.stop()
    if down_until is not None:
        await asyncio.sleep(down_until - han.clock())
    loop = asyncio.get_running_loop()
    again = EnergyServiceInterface(
        han.app,
        credentials=[CA.issue(eui64_bytes(han.app.state.node_info.ieee), SUITE1)],
        registry=han.registry,
        clock=lambda: START + int(loop.time()),
        **esi_options,
    )
    if listener is not None:
        again.on_event(listener)
    han.esi = again
    await again.start()
    return again


async def close(han: Han) -> None:
    if han in OPEN:
        OPEN.remove(han)
    for role in han.devices.values():
        await role.stop()
    await han.esi.stop()
    await han.registry.close()
    han.air.close()
