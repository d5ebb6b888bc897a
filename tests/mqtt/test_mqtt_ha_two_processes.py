"""One Home Assistant device from two processes on one broker: the ESI's bridge (``zse mqtt
--config esi.toml``, told no kinds) and a HAN device's own bridge (``zse han watch --broker``,
its own client id, base topic and store, not told the meter), as objects on one real
Mosquitto over the simulated HAN. Home Assistant merges the ``device`` of every config with
the same identifiers, key by key, the config read last winning a key it gives, a key it
leaves out kept: the merged device is read here the same way, from the configs as they
arrived and as a Home Assistant starting now reads the retained ones. Also the display's
bridge and a meter without InstantaneousDemand: a power sensor retained from an earlier run
is removed when the meter refuses the attribute, and announced again once a demand comes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait, settings
from tests.mqtt.test_mqtt_ha_devices import REPORTS, _caught_up
from zse.cli.mqtt import SimulatedEsi, simulated_esi
from zse.metering.core import Readings
from zse.mqtt.bridge import MqttBridge
from zse.mqtt.core import node_id
from zse.mqtt.han import HanBridge
from zse.store import Store

#: Each simulated device's name and model in Home Assistant, by its kind.
KINDS = {
    "InHomeDisplay": ("In-home display", "IHD"),
    "ProgrammableThermostat": ("Thermostat", "PCT"),
    "LoadControlDevice": ("Load control device", "LCD"),
}
#: The HAN devices' process's base topic (two bridges on one broker need their own).
HAN_BASE = "ihd"


def _configs(received: Iterable[tuple[str, Any, bool]]) -> list[tuple[str, Any]]:
    """The discovery configs among ``received``, in order, removals (empty) included."""
    return [(t, v) for t, v, _ in received if t.startswith("homeassistant/")]


def _merged(configs: Iterable[tuple[str, Any]]) -> dict[str, dict[str, Any]]:
    """Home Assistant's devices after reading ``configs`` in order (its device registry's
    ``async_get_or_create``: each key a config's ``device`` gives replaces the one held, a key
    it leaves out is kept), by identifier."""
    devices: dict[str, dict[str, Any]] = {}
    for _topic, config in configs:
        if isinstance(config, dict) and "device" in config:
            (identifier,) = config["device"]["identifiers"]
            devices.setdefault(identifier, {}).update(config["device"])
    return devices


async def _retained(broker: Broker) -> list[tuple[str, Any]]:
    """The retained discovery configs, as Home Assistant starting now receives them."""
    late = Subscriber(broker, "home-assistant")
    await late.connect()
    try:
        await _caught_up(late, "retained")
        return _configs(late.received)
    finally:
        await late.close()


async def _settled(bridges: Iterable[Any], sub: Subscriber, name: str) -> None:
    for bridge in bridges:
        await real_wait(bridge.connected.wait())
        await real_wait(bridge.drained.wait())
    await _caught_up(sub, name)


@contextlib.asynccontextmanager
async def _han_process(
    sim: SimulatedEsi, broker: Broker, directory: Path, kinds: Iterable[str]
) -> AsyncIterator[HanBridge]:
    """The HAN devices' bridge as ``zse han watch --broker`` makes it: its own store, client
    id and base topic, the unit of the readings and the meter not told."""
    roles = [d.role for d in sim.han.devices if d.role.name in {sim.devices[k] for k in kinds}]
    store = await Store.open(directory / "zse-han.db")
    own = settings(broker, client_id="zse-han", base_topic=HAN_BASE)
    bridge = HanBridge(roles, own, store=store)
    try:
        await bridge.start()
        yield bridge
    finally:
        await bridge.stop()
        await store.close()


@pytest.mark.parametrize("first", ["esi", "han"])
async def test_two_processes_describe_each_device_alike_in_either_order(
    broker: Broker, tmp_path: Path, first: str
) -> None:
    """``zse mqtt --config`` described the display by its registry label, model ``HAN
    device``, and ``zse han watch`` as ``In-home display``, ``IHD``: one Home Assistant
    device whose name and model went by the config read last. The ESI's bridge takes the
    kind from the device type zigpy read from the Simple Descriptor, announcing the device
    again when the interview comes after its first announcement; ``via_device`` is the ESI's
    alone. Either process first (the ESI's before the devices joined: announced by label,
    then again by kind), the merged device is the same, live and for a Home Assistant that
    starts afterwards."""
    async with simulated_esi(tmp_path) as sim:  # the devices provisioned, not joined yet
        sub = Subscriber(broker)
        await sub.connect()
        esi = MqttBridge(sim.esi, settings(broker), store=sim.registry.store)
        try:
            if first == "esi":
                await esi.start()
                await _settled([esi], sub, "esi")
            async with _han_process(sim, broker, tmp_path, KINDS) as han:
                await _settled([han], sub, "han")
                await asyncio.sleep(30)  # virtual: the devices join, zigpy interviews them
                if first == "han":
                    await esi.start()
                await _settled([esi, han], sub, "joined")
                live = _configs(sub.received)
                retained = await _retained(broker)
        finally:
            await esi.stop()
            await sub.close()
        meter = node_id(sim.esi.app.state.node_info.ieee)
        devices = dict(sim.devices)
    for kind, (title, model) in KINDS.items():
        node = node_id(devices[kind])
        expected = {
            "identifiers": [f"zse_{node}"],
            "connections": [["zigbee", devices[kind]]],
            "name": f"{title} {node[-8:]}",
            "manufacturer": "zse",
            "model": model,
            "via_device": f"zse_{meter}",
        }
        assert _merged(live)[f"zse_{node}"] == expected, kind
        assert _merged(retained)[f"zse_{node}"] == expected, kind
        # what each side owns: the retained configs agree on name and model; the parent is
        # the ESI's bridge's alone (the display's process does not know the meter)
        sides: dict[str, list[dict[str, Any]]] = {}
        for _topic, config in retained:
            if isinstance(config, dict) and config["device"]["identifiers"] == [f"zse_{node}"]:
                side = config["availability_topic"].split("/", 1)[0]
                sides.setdefault(side, []).append(config["device"])
        assert set(sides) == {"zse", HAN_BASE}
        for described in sides["zse"]:
            assert described == expected
        for described in sides[HAN_BASE]:
            assert described == {k: v for k, v in expected.items() if k != "via_device"}
    display = node_id(devices["InHomeDisplay"])
    confirmed = f"homeassistant/event/{display}/confirmed/config"
    assert json.dumps(dict(retained)[confirmed]["event_types"]) == '["confirmed"]'


async def test_a_display_s_stale_power_sensor_goes_when_its_meter_refuses_the_demand(
    broker: Broker, tmp_path: Path
) -> None:
    """A display's power sensor retained from an earlier run stayed (``unknown`` for ever)
    when the meter now answers InstantaneousDemand ``UNSUPPORTED_ATTRIBUTE``: the display's
    bridge only withheld what it had not heard. The metering client says each refusal now,
    and the bridge removes the config (an empty retained payload); the demand fed to the
    meter later, the sensor is announced again with the reading that brings it."""
    async with simulated_esi(tmp_path, demand="later") as sim:
        display = sim.devices["InHomeDisplay"]
        node = node_id(display)
        topic = f"homeassistant/sensor/{node}/power/config"
        sub = Subscriber(broker)
        await sub.connect()
        earlier = {
            "name": "Power",
            "unique_id": f"zse_{node}_power",
            "state_topic": f"{HAN_BASE}/{node}/metering",
            "value_template": "{{ value_json.demand }}",
            "unit_of_measurement": "kW",
        }
        assert sub._client is not None
        await real_wait(sub._client.publish(topic, json.dumps(earlier), qos=1, retain=True))
        await sub.until(lambda: sub.on(topic))
        async with _han_process(sim, broker, tmp_path, ["InHomeDisplay"]) as han:
            await _settled([han], sub, "started")
            assert sub.on(topic) == [earlier]  # nothing said of it: not known yet
            await asyncio.sleep(30)  # virtual: the display joins, reads the meter
            await _settled([han], sub, "refused")
            refused = dict(await _retained(broker))
            removed = list(sub.on(topic))
            meter = sim.esi.meter
            assert meter is not None
            await meter.feed(Readings(instantaneous_demand=1500))
            await asyncio.sleep(REPORTS)  # the display asks for the demand's reports again
            await _settled([han], sub, "demand")
            again = dict(await _retained(broker))
            shown = sub.on(f"{HAN_BASE}/{node}/metering")
    assert removed[0] == earlier
    assert set(removed[1:]) == {""}  # removed (again with each announcement)
    assert topic not in refused
    assert again[topic]["unit_of_measurement"] == "kW"
    assert again[topic]["unique_id"] == f"zse_{node}_power"
    assert shown[-1]["demand"] == 1.5
