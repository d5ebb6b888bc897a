"""The Home Assistant devices the bridges describe, read as Home Assistant reads them (the
retained discovery configs, by a client that connects after they were published), on a real
Mosquitto over the simulated HAN: with ``--role both`` each device is described once (Home
Assistant merges the ``device`` of every config with its identifiers, the last one read
winning key by key), and a meter without InstantaneousDemand gets no power sensor, on the
meter or on the display that follows it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from zigpy.zcl import foundation

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait, settings
from tests.mqtt.test_mqtt_han import DISCOVERY
from zse.cli.mqtt import SimulatedEsi, sim_bridges, simulated_esi
from zse.metering.core import Readings
from zse.metering.protocol import DEMAND, decode_global, read_attributes_payload
from zse.mqtt.core import node_id
from zse.se.ids import METERING
from zse.zcl.endpoint import request
from zse.zcl.frame import Send

#: Virtual seconds within which the display hears the meter's demand: its reports come at
#: least every MeteringClientConfig.max_interval (300 s).
REPORTS = 330


def _announced(sub: Subscriber) -> dict[tuple[str, str], Any]:
    """The configs on the discovery topics, the last of each, by (node, object); a topic
    whose last config is empty (removed) is not there."""
    found = {m.groups(): v for t, v, _ in sub.received if (m := DISCOVERY.fullmatch(t))}
    return {key: config for key, config in found.items() if config != ""}


async def _caught_up(sub: Subscriber, name: str) -> None:
    """Wait until ``sub`` has what the broker routed to it before now: a message of its own,
    published now, comes after it."""
    marker = f"test/marker/{name}"
    await sub.publish(marker, name)
    await sub.until(lambda: sub.on(marker))


async def _retained(broker: Broker) -> dict[tuple[str, str], Any]:
    """What Home Assistant reads when it starts: the retained discovery configs, as a client
    that subscribes now receives them."""
    late = Subscriber(broker, "home-assistant")
    await late.connect()
    try:
        await _caught_up(late, "retained")
        return _announced(late)
    finally:
        await late.close()


@contextlib.asynccontextmanager
async def both(
    broker: Broker, directory: Path, *, demand: bool | Literal["later"] = True, before: Any = None
) -> AsyncIterator[tuple[SimulatedEsi, list[Any], Subscriber]]:
    """``zse mqtt --sim --role both`` over a meter with or without InstantaneousDemand (or
    with one fed later: :func:`~zse.cli.mqtt.simulated_esi`), its
    devices keyed, the bridges connected; ``before(sim, subscriber)`` runs before they start."""
    async with simulated_esi(directory, demand=demand) as sim:
        await asyncio.sleep(30)  # virtual: the devices join and run CBKE
        subscriber = Subscriber(broker)
        await subscriber.connect()
        if before is not None:
            await before(sim, subscriber)
        bridges = sim_bridges(sim, settings(broker), "both")
        for bridge in bridges:
            await bridge.start()
        try:
            for bridge in bridges:
                await real_wait(bridge.connected.wait())
            yield sim, bridges, subscriber
        finally:
            for bridge in reversed(bridges):
                await bridge.stop()
            await subscriber.close()


async def _settled(bridges: list[Any], sub: Subscriber, seconds: float) -> None:
    """``seconds`` of virtual time, then everything the bridges published acknowledged by
    the broker and received by ``sub``."""
    await asyncio.sleep(seconds)
    for bridge in bridges:
        await real_wait(bridge.drained.wait())
    await _caught_up(sub, f"settled-{seconds}")


async def test_with_role_both_each_device_is_described_once(broker: Broker, tmp_path: Path) -> None:
    """The ESI's bridge described the thermostat as model ``HAN device`` joined through the
    meter, the HAN devices' bridge as model ``PCT`` on its own: one Home Assistant device
    (the same identifiers), whose model and parent went by the config read last. Now both
    bridges give each device the one description: its kind's name and model, through the
    meter."""
    async with both(broker, tmp_path) as (sim, bridges, sub):
        await _settled(bridges, sub, REPORTS)  # virtual: the display's power comes with demand
        retained = await _retained(broker)
        assert retained == _announced(sub)
        meter = node_id(sim.esi.app.state.node_info.ieee)
    described: dict[str, set[str]] = {}
    for config in retained.values():
        device = config["device"]
        (identifier,) = device["identifiers"]
        described.setdefault(identifier, set()).add(json.dumps(device, sort_keys=True))
    assert len(described) == 4  # the meter and its three devices
    twice = {key: sorted(seen) for key, seen in described.items() if len(seen) > 1}
    assert not twice
    kinds = {
        "InHomeDisplay": ("In-home display", "IHD"),
        "ProgrammableThermostat": ("Thermostat", "PCT"),
        "LoadControlDevice": ("Load control device", "LCD"),
    }
    for kind, (title, model) in kinds.items():
        node = node_id(sim.devices[kind])
        (seen,) = described[f"zse_{node}"]
        device = json.loads(seen)
        assert (device["name"], device["model"]) == (f"{title} {node[-8:]}", model)
        assert device["via_device"] == f"zse_{meter}"


async def _demand_status(sim: SimulatedEsi) -> foundation.Status:
    """The status the meter answers the display's Read Attributes of InstantaneousDemand with,
    over the simulated network."""
    (display,) = [d.role for d in sim.han.devices if d.role.name == sim.devices["InHomeDisplay"]]
    client = display.metering
    assert client is not None
    send = Send(
        cluster_id=METERING,
        command_id=foundation.GeneralCommand.Read_Attributes,
        payload=read_attributes_payload([DEMAND]),
        to=client.meter,
        cluster_specific=False,
        from_server=False,
    )
    reply = await request(client.endpoint, send)
    (record,) = decode_global(reply).status_records
    return foundation.Status(record.status)


async def test_a_meter_without_instantaneous_demand_has_no_power_sensor(
    broker: Broker, tmp_path: Path
) -> None:
    """A meter without InstantaneousDemand (a read of it answered UNSUPPORTED_ATTRIBUTE):
    its ``Power`` sensor was announced all the same, and the display's, both ``unknown`` for
    ever (its readings never carry a demand). Now neither is announced, and the meter's
    config left by an earlier run is removed (an empty retained config)."""
    stale: dict[str, Any] = {}

    async def earlier_run(sim: SimulatedEsi, sub: Subscriber) -> None:
        meter = node_id(sim.esi.app.state.node_info.ieee)
        topic = f"homeassistant/sensor/{meter}/power/config"
        stale[topic] = {"name": "Power", "unique_id": f"zse_{meter}_power", "state_topic": "x"}
        assert sub._client is not None
        await real_wait(sub._client.publish(topic, json.dumps(stale[topic]), qos=1, retain=True))
        await sub.until(lambda: sub.on(topic))

    async with both(broker, tmp_path, demand=False, before=earlier_run) as (sim, bridges, sub):
        assert await _demand_status(sim) == foundation.Status.UNSUPPORTED_ATTRIBUTE
        await _settled(bridges, sub, REPORTS)  # virtual: readings, reports
        retained = await _retained(broker)
        meter = node_id(sim.esi.app.state.node_info.ieee)
        ihd = node_id(sim.devices["InHomeDisplay"])
        readings = sub.on(f"zse/{meter}/metering")
        shown = sub.on(f"zse/han/{ihd}/metering")
    assert readings
    assert shown
    assert not [r for r in readings + shown if "demand" in r]
    assert (meter, "energy") in retained
    assert (ihd, "energy") in retained
    assert (meter, "power") not in retained  # removed
    assert (ihd, "power") not in retained  # never announced


async def test_a_demand_that_comes_later_is_announced_then(broker: Broker, tmp_path: Path) -> None:
    """A meter that is fed its demand after the bridges started (``zse esi``'s ``meter set
    --demand``, a gateway told its meter's demand): the power sensors come with it."""
    async with both(broker, tmp_path, demand="later") as (sim, bridges, sub):
        node = node_id(sim.esi.app.state.node_info.ieee)
        ihd = node_id(sim.devices["InHomeDisplay"])
        meter = sim.esi.meter
        assert meter is not None
        await _settled(bridges, sub, 60)
        assert not {(node, "power"), (ihd, "power")} & set(_announced(sub))
        await meter.feed(Readings(instantaneous_demand=1500))
        await _settled(bridges, sub, REPORTS)  # the next reading, the display's next report
        announced = _announced(sub)
        shown = sub.on(f"zse/han/{ihd}/metering")
    assert announced[node, "power"]["value_template"] == "{{ value_json.demand }}"
    assert announced[ihd, "power"]["unit_of_measurement"] == "kW"
    assert shown[-1]["demand"] == 1.5
