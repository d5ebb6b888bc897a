"""The "Message confirmed" entity of the ESI's bridge, read as Home Assistant reads it (the
discovery configs, retained and live), on a real Mosquitto over the simulated HAN: only a
display has one (a thermostat or a load control device confirms no message), known by the
kind its Simple Descriptor gave when it joined, and it is an MQTT event entity fed by the
confirmations, which are not retained."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait, running, settings
from tests.mqtt.test_mqtt_ha_devices import _caught_up
from zse.cli.mqtt import simulated_esi
from zse.messaging import Message
from zse.mqtt.bridge import MqttBridge
from zse.mqtt.core import CONFIRMED_TEMPLATE, node_id
from zse.se.ids import IN_HOME_DISPLAY, PROGRAMMABLE_THERMOSTAT

KINDS = ("InHomeDisplay", "ProgrammableThermostat", "LoadControlDevice")


def _event(sub: Subscriber, node: str) -> list[Any]:
    return sub.on(f"homeassistant/event/{node}/confirmed/config")


def _sensor(sub: Subscriber, node: str) -> list[Any]:
    return sub.on(f"homeassistant/sensor/{node}/confirmed/config")


async def _retained(
    broker: Broker, topics: list[str], name: str = "home-assistant"
) -> dict[str, Any]:
    """The retained message of each of ``topics`` (absent: none), as a client that
    subscribes now, Home Assistant starting, receives them (``name``: a client id not used
    before, whose session has nothing queued)."""
    late = Subscriber(broker, name)
    await late.connect()
    try:
        await _caught_up(late, "retained")
        return {t: late.on(t)[-1] for t in topics if late.on(t)}
    finally:
        await late.close()


async def test_only_a_display_has_a_message_confirmed_entity(
    broker: Broker, tmp_path: Path
) -> None:
    """Every HAN device had a "Message confirmed" sensor, the thermostat's and the load
    control device's ``unknown`` for ever (they confirm no message). Only the display has
    the entity now, known as one by its Simple Descriptor (device type 0x0502) once zigpy
    interviewed it, though the bridge was told no kind and started before the devices
    joined; the sensor of an earlier version is removed for every device, and the event of
    a device known to be of another kind."""
    async with simulated_esi(tmp_path) as sim:
        nodes = {kind: node_id(sim.devices[kind]) for kind in KINDS}
        sub = Subscriber(broker)
        await sub.connect()
        assert sub._client is not None
        for node in nodes.values():  # an earlier version's, retained at the broker
            topic = f"homeassistant/sensor/{node}/confirmed/config"
            stale = {"name": "Message confirmed", "unique_id": f"zse_{node}_confirmed"}
            await real_wait(sub._client.publish(topic, json.dumps(stale), qos=1, retain=True))
        bridge = MqttBridge(sim.esi, settings(broker), store=sim.registry.store)
        await bridge.start()
        try:
            await real_wait(bridge.connected.wait())
            await real_wait(bridge.drained.wait())
            await _caught_up(sub, "connected")
            before = {kind: list(_event(sub, node)) for kind, node in nodes.items()}
            await asyncio.sleep(30)  # virtual: the devices join, zigpy interviews them
            await real_wait(bridge.drained.wait())
            await _caught_up(sub, "joined")
            topics = [
                f"homeassistant/{component}/{node}/confirmed/config"
                for node in nodes.values()
                for component in ("event", "sensor")
            ]
            retained = await _retained(broker, topics)
        finally:
            await bridge.stop()
            await sub.close()
    assert not any(before.values())  # kinds not known before they joined
    display = nodes["InHomeDisplay"]
    (config,) = _event(sub, display)
    assert retained == {f"homeassistant/event/{display}/confirmed/config": config}
    assert config["unique_id"] == f"zse_{display}_confirmed"
    assert config["event_types"] == ["confirmed"]
    for kind in ("ProgrammableThermostat", "LoadControlDevice"):
        # none announced; removed once the interview told a kind that confirms none (an
        # entity retained from when the device was a display would go)
        assert _event(sub, nodes[kind]) == [""]
    for node in nodes.values():
        assert _sensor(sub, node)[-1] == ""  # removed


async def test_a_confirmation_is_an_event_the_entity_reads(broker: Broker, tmp_path: Path) -> None:
    """The display's "Message confirmed" read a topic that is not retained as a sensor, so
    Home Assistant showed it ``unknown`` after each restart. It is an MQTT event entity now
    (Home Assistant restores an event entity's last event itself), fed by each
    ``MessageConfirmed``, which stays unretained (a late subscriber must not take an old
    confirmation for a new one); its template reads fields the payload has."""
    async with running(broker, tmp_path) as (sim, _bridge, sub):
        display = sim.devices["InHomeDisplay"]
        node = node_id(display)
        message = Message(message_id=7, text="Peak at 17:00", confirmation_required=True)
        await sim.esi.send_message(message, device=display)
        await asyncio.sleep(30)  # virtual: the display's user confirms after 10 s
        topic = f"zse/{node}/message"
        (confirmed,) = await sub.until(lambda: sub.on(topic))
        (retain,) = [r for t, _, r in sub.received if t == topic]
        (config,) = await sub.until(lambda: _event(sub, node))
        retained = await _retained(broker, [topic])
    assert confirmed["event"] == "MessageConfirmed"
    assert not retain
    assert retained == {}
    assert config["state_topic"] == topic
    assert config["value_template"] == CONFIRMED_TEMPLATE
    paths = re.findall(r"value_json\.([a-z_.]+)", CONFIRMED_TEMPLATE)
    assert paths == ["message.message_id", "confirmation.answer", "confirmation.response"]
    values = []
    for path in paths:
        value = confirmed
        for key in path.split("."):
            value = value[key]
        values.append(value)
    assert values == [7, None, None]


async def test_a_display_of_another_kind_now_loses_its_entity_one_not_interviewed_keeps_it(
    broker: Broker, tmp_path: Path
) -> None:
    """A first run told the display's kind (as ``--sim`` does) announced its "Message
    confirmed". The next run is told nothing (``zse mqtt --config``): until zigpy interviews
    the device its kind is unknown, and the retained entity is kept (it is most likely still
    a display: a restart must not delete the entity and its settings in Home Assistant). The
    interview then reads another kind from its Simple Descriptor (a thermostat, as after a
    firmware change): the entity's config is removed (an empty retained payload), and only
    that one; its lifecycle sensor stays. Before, the stale entity stayed for ever."""
    async with simulated_esi(tmp_path) as sim:  # the devices provisioned, not joined yet
        display = sim.devices["InHomeDisplay"]
        node = node_id(display)
        event = f"homeassistant/event/{node}/confirmed/config"
        lifecycle = f"homeassistant/sensor/{node}/lifecycle/config"
        sub = Subscriber(broker)
        await sub.connect()
        first = MqttBridge(
            sim.esi, settings(broker), store=sim.registry.store, kinds={display: IN_HOME_DISPLAY}
        )
        await first.start()
        try:
            await real_wait(first.connected.wait())
            await real_wait(first.drained.wait())
        finally:
            await first.stop()
        announced = await _retained(broker, [event, lifecycle], "ha-1")
        # the device now says it is a thermostat (its SE endpoint's device id, ZDP 2.3.2.5)
        (role,) = [d.role for d in sim.han.devices if str(d.role.device.ieee) == display]
        role.endpoint.descriptor.device_type = PROGRAMMABLE_THERMOSTAT
        second = MqttBridge(sim.esi, settings(broker), store=sim.registry.store)
        await second.start()
        try:
            await real_wait(second.connected.wait())
            await real_wait(second.drained.wait())
            await _caught_up(sub, "unknown")
            before = len(_event(sub, node))
            unknown = await _retained(broker, [event, lifecycle], "ha-2")
            await asyncio.sleep(30)  # virtual: the devices join, zigpy interviews them
            await real_wait(second.drained.wait())
            await _caught_up(sub, "interviewed")
            after = _event(sub, node)[before:]
            interviewed = await _retained(broker, [event, lifecycle], "ha-3")
            removals = [t for t, v, _ in sub.received if v == "" and t.startswith("homeassistant/")]
        finally:
            await second.stop()
            await sub.close()
    assert set(announced) == {event, lifecycle}
    assert announced[event]["unique_id"] == f"zse_{node}_confirmed"
    assert set(unknown) == {event, lifecycle}
    assert unknown[event] == announced[event]  # not known yet: kept as it was
    assert after == [""]  # removed once the interview told another kind
    assert set(interviewed) == {lifecycle}  # only that one
    assert interviewed[lifecycle]["device"]["model"] == "PCT"
    # no other config was removed: only "Message confirmed" events (of the devices known to
    # confirm none) and the sensor of that name of earlier versions
    assert {t.split("/")[-2] for t in removals} == {"confirmed"}
