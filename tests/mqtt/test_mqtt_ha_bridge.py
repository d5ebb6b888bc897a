"""Home Assistant discovery as the bridge publishes it, on a real Mosquitto over the simulated
HAN (audit mqtt-ha-tls, findings 2-7): a gas meter, a reserved unit, an ESI without a meter,
devices announced and removed with their provisioning, and response topics among the
bridge's own refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait, running, settings
from zse.cli._sim import SimulatedHan
from zse.cli.demo import meter_attributes
from zse.cli.mqtt import simulated_esi
from zse.metering.core import Readings
from zse.mqtt.bridge import MqttBridge
from zse.mqtt.core import node_id
from zse.mqtt.han import HanBridge
from zse.provisioning import LifecycleState
from zse.provisioning.registry import HanRegistry
from zse.roles.esi import EnergyServiceInterface
from zse.se.ids import MeteringAttribute

CODE = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"  # the simulated display's


@contextlib.asynccontextmanager
async def bridged(
    broker: Broker, directory: Path, meter: Mapping[int, int] | None
) -> AsyncIterator[tuple[EnergyServiceInterface, MqttBridge, Subscriber]]:
    """An ESI on the simulator with the Metering attributes ``meter`` (None: no Metering
    server), nothing provisioned, its bridge connected and a subscriber."""
    han = SimulatedHan(lambda _text: None, seed=1)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(han.close)
        network = SimpleNamespace(channel=None, pan_id=None)
        app = await han.factory(SimpleNamespace(network=network, meter=meter))
        stack.push_async_callback(app.shutdown)
        registry = await HanRegistry.open(directory / "han.db")
        stack.push_async_callback(registry.close)
        esi = EnergyServiceInterface(
            app,
            credentials=han.credentials,
            registry=registry,
            clock=han.clock,
            meter=False if meter is None else {"formatting": dict(meter)},
        )
        await esi.start()
        stack.push_async_callback(esi.stop)
        subscriber = Subscriber(broker)
        await subscriber.connect()
        stack.push_async_callback(subscriber.close)
        bridge = MqttBridge(esi, settings(broker), store=registry.store)
        await bridge.start()
        stack.push_async_callback(bridge.stop)
        await real_wait(bridge.connected.wait())
        yield esi, bridge, subscriber


def _config(sub: Subscriber, node: str, what: str) -> list[Any]:
    return sub.on(f"homeassistant/sensor/{node}/{what}/config")


async def test_a_gas_meter_is_announced_as_gas_in_cubic_metres(
    broker: Broker, tmp_path: Path
) -> None:
    """UnitOfMeasure 1 (m³) was announced as an ``energy`` sensor in kWh and a ``power`` one
    in m³/h (which Home Assistant refuses): now ``gas`` in m³, and ``volume_flow_rate``."""
    gas = {**meter_attributes(), MeteringAttribute.UNIT_OF_MEASURE: 0x01}
    gas[MeteringAttribute.METERING_DEVICE_TYPE] = 0x01
    async with bridged(broker, tmp_path, gas) as (esi, bridge, sub):
        node = node_id(bridge.meter)
        assert esi.meter is not None
        await esi.meter.feed(Readings(summation_delivered=10, instantaneous_demand=5))
        await asyncio.sleep(bridge.settings.reading_interval)  # virtual: its power announced
        energy = (await sub.until(lambda: _config(sub, node, "energy")))[-1]
        power = (await sub.until(lambda: [c for c in _config(sub, node, "power") if c]))[-1]
    assert (energy["device_class"], energy["unit_of_measurement"]) == ("gas", "m³")
    assert energy["state_class"] == "total_increasing"
    assert (power["device_class"], power["unit_of_measurement"]) == ("volume_flow_rate", "m³/h")


async def test_a_reserved_unit_does_not_cost_the_bridge_its_commands(
    broker: Broker, tmp_path: Path
) -> None:
    """A reserved UnitOfMeasure (0x0E) raised in the discovery on every connection: the
    bridge said ``online`` and reconnected for ever, never subscribed. Now its meter is
    announced without a unit and commands are answered."""
    reserved = {**meter_attributes(), MeteringAttribute.UNIT_OF_MEASURE: 0x0E}
    async with bridged(broker, tmp_path, reserved) as (_esi, bridge, sub):
        node = node_id(bridge.meter)
        energy = (await sub.until(lambda: _config(sub, node, "energy")))[-1]
        assert "unit_of_measurement" not in energy
        assert "device_class" not in energy
        await sub.publish("zse/bridge/request/deprovision", {"correlation_id": "d-1", "mac": "1"})
        (answer,) = await sub.until(lambda: sub.on("zse/bridge/response/deprovision"))
        assert (answer["correlation_id"], answer["error"]["field"]) == ("d-1", "mac")
        assert bridge.connections == 1


async def test_an_esi_without_a_meter_announces_no_meter_sensors(
    broker: Broker, tmp_path: Path
) -> None:
    """Without a Metering server the energy and power sensors were announced all the same
    (``unknown`` for ever): now none, and any announced before are removed (an empty retained
    config, Home Assistant's removal)."""
    async with bridged(broker, tmp_path, None) as (_esi, bridge, sub):
        node = node_id(bridge.meter)
        assert await sub.until(lambda: _config(sub, node, "energy")) == [""]
        assert await sub.until(lambda: _config(sub, node, "power")) == [""]
    late = Subscriber(broker, "late-subscriber")
    await late.connect()
    try:
        await late.until(lambda: late.on("zse/bridge/state"))
        assert not [t for t, _, _ in late.received if t.startswith("homeassistant/")]
    finally:
        await late.close()


async def test_a_device_is_announced_while_provisioned_and_removed_after(
    broker: Broker, tmp_path: Path
) -> None:
    """Discovery was fixed at start (the displays given, on ``--sim`` only) and never
    removed: a device is announced from its provisioning, with its lifecycle state retained
    on ``<device>/registry``, and its sensors removed (empty retained configs) once it is
    de-provisioned; provisioned again, it is announced again."""
    async with running(broker, tmp_path) as (sim, bridge, sub):
        display = sim.devices["InHomeDisplay"]
        thermostat = sim.devices["ProgrammableThermostat"]
        ihd, pct = node_id(display), node_id(thermostat)
        # every provisioned device, not only the display
        (announced,) = await sub.until(lambda: _config(sub, pct, "lifecycle"))
        assert announced["state_topic"] == f"zse/{pct}/registry"
        assert await sub.until(lambda: sub.on(f"zse/{pct}/registry"))
        await sim.esi.deprovision(display)
        await asyncio.sleep(30)  # virtual: the display leaves
        assert sim.registry.get(display).state is LifecycleState.DEPROVISION_COMPLETE
        assert (await sub.until(lambda: _config(sub, ihd, "lifecycle")))[-1] == ""
        assert (await sub.until(lambda: _config(sub, ihd, "confirmed")))[-1] == ""
        states = await sub.until(
            lambda: (
                (found := [v["state"] for v in sub.on(f"zse/{ihd}/registry")])
                and found[-1] == "de-provision complete"
                and found
            )
        )
        assert "pending de-provisioning" in states

        late = Subscriber(broker, "late-subscriber")
        await late.connect()
        try:
            kept = await late.until(
                lambda: (
                    late.on(f"zse/{pct}/registry")
                    and _config(late, pct, "lifecycle")
                    and late.on(f"zse/{ihd}/registry")
                )
            )
            assert kept[-1]["state"] == "de-provision complete"
            assert late.on(f"zse/{pct}/registry")[-1]["state"] == "meter ready"
            topics = {t for t, _, _ in late.received}
            assert f"homeassistant/sensor/{pct}/lifecycle/config" in topics
            assert f"homeassistant/sensor/{ihd}/lifecycle/config" not in topics
        finally:
            await late.close()

        await sim.esi.provision(display, CODE)
        again = await sub.until(
            lambda: (found := _config(sub, ihd, "lifecycle")) and found[-1] != "" and found
        )
        assert again[-1]["unique_id"] == f"zse_{ihd}_lifecycle"
        assert bridge.connections == 1


async def test_a_response_topic_among_the_bridge_s_own_is_refused_not_carried_out(
    broker: Broker, tmp_path: Path
) -> None:
    """A command could name Home Assistant's discovery config, ``bridge/state`` or the
    meter's readings as its response topic, and the bridge published its answer there: it
    is refused on the default topic, as a malformed ``response_topic`` is, and not carried
    out."""
    async with running(broker, tmp_path) as (_sim, bridge, sub):
        meter = node_id(bridge.meter)
        own = [
            f"homeassistant/sensor/{meter}/energy/config",
            "zse/bridge/state",
            f"zse/{meter}/metering",
        ]
        for n, topic in enumerate(own):
            request = {"correlation_id": f"x-{n}", "group": "sim", "message_id": 7}
            await sub.publish(
                "zse/bridge/request/cancel_message", {**request, "response_topic": topic}
            )
        answers = await sub.until(
            lambda: len(found := sub.on("zse/bridge/response/cancel_message")) == 3 and found
        )
        assert [(a["correlation_id"], a["error"]["field"]) for a in answers] == [
            (f"x-{n}", "response_topic") for n in range(3)
        ]
        assert not [
            v for t, v, _ in sub.received if t in own and isinstance(v, dict) and "command" in v
        ]
        assert not sub.on(f"zse/{meter}/message")  # no MessageCancelSent: not carried out
        assert bridge.executed.get("x-0") is None


async def test_the_han_bridge_announces_the_unit_of_the_display_s_readings(
    broker: Broker, tmp_path: Path
) -> None:
    """The HAN bridge announced the display's energy in kWh and its power in kW whatever the
    meter's unit (``zse han watch`` gives it none): without a unit given, it is announced in
    the unit of the display's own readings, once the first one came (never without a class:
    tests/mqtt/test_mqtt_han_announce.py)."""
    async with simulated_esi(tmp_path) as sim:
        await asyncio.sleep(30)  # virtual: the devices join and run CBKE
        display = sim.devices["InHomeDisplay"]
        roles = [device.role for device in sim.han.devices if device.role.name == display]
        sub = Subscriber(broker)
        await sub.connect()
        bridge = HanBridge(roles, settings(broker), store=sim.registry.store)
        await bridge.start()
        try:
            await real_wait(bridge.connected.wait())
            node = node_id(display)
            await asyncio.sleep(330)  # virtual: the display's next readings, demand's within 300 s
            await sub.until(lambda: _config(sub, node, "energy") and _config(sub, node, "power"))
            energy, power = _config(sub, node, "energy")[-1], _config(sub, node, "power")[-1]
        finally:
            await bridge.stop()
            await sub.close()
    assert (energy["device_class"], energy["unit_of_measurement"]) == ("energy", "kWh")
    assert (power["device_class"], power["unit_of_measurement"]) == ("power", "kW")
