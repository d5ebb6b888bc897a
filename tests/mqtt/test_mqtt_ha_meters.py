"""The meters' Home Assistant devices as Home Assistant reads them (the retained discovery
configs, read by a client that connects after they were published), on a real Mosquitto:
gateways of their own on one broker (their own coordinators on the simulator, each with a
Metering server), told apart by name, and a gateway that publishes no readings
(``reading_interval = 0``) announcing no meter sensors."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait, settings
from tests.mqtt.test_mqtt_ha_devices import _announced, _caught_up, _retained
from zse.cbke import SUITE1
from zse.cbke.ca import TestCA
from zse.cli.demo import meter_attributes
from zse.metering.core import Readings
from zse.mqtt.bridge import MqttBridge
from zse.mqtt.core import han_device, node_id
from zse.provisioning.registry import HanRegistry
from zse.roles.esi import EnergyServiceInterface
from zse.se.ids import IN_HOME_DISPLAY
from zse.sim import Air

START = 850_000_000  # ZigBee time


@contextlib.asynccontextmanager
async def gateway(
    broker: Broker, directory: Path, eui: str, **more: Any
) -> AsyncIterator[MqttBridge]:
    """A gateway: an ESI with a Metering server on a coordinator ``eui`` of its own air, fed
    one reading, its bridge (client id and base topic its own, ``more`` settings) connected."""
    air = Air(seed=int(eui[-5:].replace(":", ""), 16))
    ca = TestCA.generate(rng=random.Random(eui))
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(air.close)
        app = await air.coordinator(channel=15, ieee=eui)
        stack.push_async_callback(app.shutdown)
        directory.mkdir()
        registry = await HanRegistry.open(directory / "han.db")
        stack.push_async_callback(registry.close)
        esi = EnergyServiceInterface(
            app,
            credentials=ca.issue(eui, SUITE1),
            registry=registry,
            clock=lambda: START,
            meter={"formatting": meter_attributes()},
        )
        await esi.start()
        stack.push_async_callback(esi.stop)
        assert esi.meter is not None
        await esi.meter.feed(Readings(summation_delivered=1000, instantaneous_demand=500))
        node = node_id(eui)
        made = settings(broker, client_id=f"gateway-{node}", base_topic=f"meters/{node}", **more)
        bridge = MqttBridge(esi, made, store=registry.store)
        await bridge.start()
        stack.push_async_callback(bridge.stop)
        await real_wait(bridge.connected.wait())
        await real_wait(bridge.drained.wait())
        yield bridge


async def test_two_gateways_on_one_broker_name_their_meters_apart(
    broker: Broker, tmp_path: Path
) -> None:
    """Every gateway named its meter ``Smart Energy meter``: two on one broker gave Home
    Assistant two devices of one name (and entity names alike). Each is named by its
    EUI-64's last digits now (eight: four could collide); the ``unique_id`` s, already
    apart, are as they were."""
    euis = ("00:0d:6f:00:00:00:01:e5", "00:0d:6f:00:00:00:02:e5")
    async with (
        gateway(broker, tmp_path / "one", euis[0]),
        gateway(broker, tmp_path / "two", euis[1]),
    ):
        retained = await _retained(broker)
    names: dict[str, set[str]] = {}
    for eui in euis:
        node = node_id(eui)
        for sensor in ("energy", "power"):
            config = retained[node, sensor]
            assert config["unique_id"] == f"zse_{node}_{sensor}"
            names.setdefault(eui, set()).add(config["device"]["name"])
    assert names == {
        euis[0]: {"Smart Energy meter 000001e5"},
        euis[1]: {"Smart Energy meter 000002e5"},
    }


async def test_devices_whose_eui64s_end_alike_are_named_apart(
    broker: Broker, tmp_path: Path
) -> None:
    """Named by their EUI-64's last four digits, two meters (or HAN devices) ending alike
    got one name in Home Assistant. The last eight digits (the low 32 bits of the vendor's
    40-bit serial) tell them apart; identifiers and ``unique_id`` s are as they were."""
    euis = ("00:0d:6f:00:00:01:12:34", "00:0d:6f:00:00:02:12:34")
    async with (
        gateway(broker, tmp_path / "one", euis[0]),
        gateway(broker, tmp_path / "two", euis[1]),
    ):
        retained = await _retained(broker)
    names = {eui: retained[node_id(eui), "energy"]["device"]["name"] for eui in euis}
    assert names == {
        euis[0]: "Smart Energy meter 00011234",
        euis[1]: "Smart Energy meter 00021234",
    }
    for eui in euis:
        config = retained[node_id(eui), "energy"]
        assert config["unique_id"] == f"zse_{node_id(eui)}_energy"
        assert config["device"]["identifiers"] == [f"zse_{node_id(eui)}"]
    displays = [han_device(eui, IN_HOME_DISPLAY)["name"] for eui in euis]
    assert displays == ["In-home display 00011234", "In-home display 00021234"]


async def test_a_gateway_without_readings_announces_no_meter_sensors(
    broker: Broker, tmp_path: Path
) -> None:
    """With ``reading_interval = 0`` (no readings published: a gateway serving a headend)
    the meter's energy and power sensors were announced all the same, ``unknown`` for ever.
    Now they are removed (an empty retained config), those of an earlier run included."""
    eui = "00:0d:6f:00:00:00:03:e5"
    node = node_id(eui)
    sub = Subscriber(broker)
    await sub.connect()
    try:
        topic = f"homeassistant/sensor/{node}/energy/config"
        assert sub._client is not None
        stale = {"name": "Energy delivered", "unique_id": f"zse_{node}_energy"}
        await real_wait(sub._client.publish(topic, json.dumps(stale), qos=1, retain=True))
        await sub.until(lambda: sub.on(topic))
        async with gateway(broker, tmp_path / "quiet", eui, reading_interval=0) as bridge:
            await _caught_up(sub, "quiet")
            retained = await _retained(broker)
        announced = _announced(sub)
        readings = sub.on(f"{bridge.topics.base}/{node}/metering")
    finally:
        await sub.close()
    assert sub.on(topic)[-1] == ""  # removed
    assert not {(node, "energy"), (node, "power")} & (set(retained) | set(announced))
    assert readings == []
