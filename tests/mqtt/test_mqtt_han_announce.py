"""When the HAN bridge announces a display's sensors to Home Assistant (``zse han watch``, which
gives it no unit), on a real Mosquitto over the simulated HAN: it announced the energy and power
sensors without a unit or class, and the price sensor without a unit, until the first reading
and price, on every start, so each restart replaced the retained configs in kWh and GBP/kWh
with unit-less ones (Home Assistant takes a unit only from a discovery message). Each sensor is
now announced once its unit is known, never without it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait, settings
from tests.mqtt.test_mqtt_han import PRICE
from zse.cli.mqtt import simulated_esi
from zse.mqtt.core import node_id
from zse.mqtt.han import HanBridge

UNITS = {"energy": "kWh", "power": "kW", "price": "GBP/kWh"}


async def test_a_display_s_sensors_are_announced_in_their_units_only(
    broker: Broker, tmp_path: Path
) -> None:
    async with simulated_esi(tmp_path) as sim:
        await asyncio.sleep(30)  # virtual: the devices join and run CBKE
        display = sim.devices["InHomeDisplay"]
        roles = [device.role for device in sim.han.devices if device.role.name == display]
        node = node_id(display)
        sub = Subscriber(broker)
        await sub.connect()

        def configs(what: str) -> list[Any]:
            return sub.on(f"homeassistant/sensor/{node}/{what}/config")

        def announced() -> bool:
            return all(configs(what) for what in UNITS)

        try:
            for run in range(2):  # a restart announces nothing without its unit either
                bridge = HanBridge(roles, settings(broker), store=sim.registry.store)
                await bridge.start()
                try:
                    await real_wait(bridge.connected.wait())
                    await real_wait(bridge.drained.wait())
                    if run == 0:  # the others at once, these once known
                        await sub.until(lambda: configs("message"))
                        assert not any(configs(what) for what in UNITS)
                        await sim.esi.publish_price(PRICE, group="sim")
                    # virtual: the display's next readings (its demand's within 300 s)
                    await asyncio.sleep(330)
                    await sub.until(announced)
                    await real_wait(bridge.drained.wait())
                finally:
                    await bridge.stop()
            for what, unit in UNITS.items():
                assert {c["unit_of_measurement"] for c in configs(what)} == {unit}, what
            assert {c["device_class"] for c in configs("energy")} == {"energy"}
        finally:
            await sub.close()
