"""A display that follows its meter's supply (SE 1.2 Supply Status, reported) on MQTT: the
state's ``supply_status`` by name, each change on ``<device>/supply``, Home Assistant's enum
sensor announced once a Supply Status is heard, never for a meter without supply control.
Against a real Mosquitto over the simulated HAN, on the virtual clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait, settings
from tests.mqtt.test_mqtt_bridge import HA_SENSOR_KEYS, TEMPLATE
from tests.roles.han_builder import EUIS, Han, build, close
from tests.roles.test_roles_esi_registry import price
from tests.roles.test_roles_prepayment import METER
from tests.roles.test_roles_supply_display import FOLLOW
from zse.metering.protocol import SupplyStatusChanged
from zse.metering.supply import ARMED, OFF, ON
from zse.mqtt.core import DeviceView, Topics, han_discovery, han_event_publication, node_id
from zse.mqtt.han import HanBridge
from zse.roles.han import InHomeDisplay
from zse.se.ids import IN_HOME_DISPLAY

IHD = "00:0d:6f:00:0a:00:00:01"
#: A display following the meter and its supply.
FOLLOWING = {"metering": True, **FOLLOW}


def test_the_supply_is_shown_by_name_and_its_sensor_is_an_enum() -> None:
    view = DeviceView(IN_HOME_DISPLAY)
    assert view.payload["supply_status"] is None
    names = []
    for status in (ON, ARMED, OFF, 7):  # 7: reserved, shown as unknown
        event = SupplyStatusChanged(status=status, before=None, reported=True, at=0)
        view.update(event, 0)
        names.append(view.payload["supply_status"])
    assert names == ["On", "Off/Armed", "Off", None]
    (config,) = [
        p.payload
        for p in han_discovery(Topics(), [(IHD, IN_HOME_DISPLAY)])
        if p.topic.endswith("/supply/config")
    ]
    assert set(config) <= HA_SENSOR_KEYS
    assert TEMPLATE.fullmatch(config["value_template"])
    assert (config["device_class"], config["options"]) == ("enum", ["Off", "Off/Armed", "On"])
    event = SupplyStatusChanged(status=OFF, before=ON, reported=True, at=5)
    published = han_event_publication(Topics(), IHD, event, 5)
    assert published is not None
    assert published.topic == "zse/000d6f000a000001/supply"
    assert published.payload == {
        "event": "SupplyStatusChanged",
        "status": OFF,
        "before": ON,
        "reported": True,
        "at": 5,
        "time": 5,
        "device": IHD,
    }


@contextlib.asynccontextmanager
async def bridged(
    broker: Broker, tmp_path: Path, esi: dict[str, Any], **display: Any
) -> AsyncIterator[tuple[Han, InHomeDisplay, Subscriber, HanBridge]]:
    """The ESI with the options ``esi``, a display (``display``: its options) started under
    a HAN bridge on ``broker``, and a subscriber: (han, display, subscriber, bridge); all
    closed after the block."""
    han = await build(tmp_path, **esi)
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd", **display)
    assert isinstance(ihd, InHomeDisplay)
    sub = Subscriber(broker)
    await sub.connect()
    bridge = HanBridge([ihd], settings(broker), store=han.registry.store)
    await bridge.start()
    try:
        await real_wait(bridge.connected.wait())
        await ihd.start()
        yield han, ihd, sub, bridge
    finally:
        await bridge.stop()
        await sub.close()
        await close(han)


async def test_the_utility_turning_the_supply_off_shows_on_the_display_s_sensor(
    broker: Broker, tmp_path: Path
) -> None:
    esi = {"meter": {**METER, "supply": True}}
    async with bridged(broker, tmp_path, esi, **FOLLOWING) as (han, ihd, sub, _):
        node = node_id(ihd.name)
        state, config = f"zse/{node}/state", f"homeassistant/sensor/{node}/supply/config"
        await asyncio.sleep(30)  # virtual: the display read the supply
        await sub.until(lambda: (s := sub.on(state)) and s[-1]["supply_status"] == "On")
        announced = await sub.until(lambda: sub.on(config))
        assert announced[-1]["device_class"] == "enum"
        assert han.esi.meter is not None
        await han.esi.meter.change_supply(OFF)
        await asyncio.sleep(2)  # virtual: reported
        await sub.until(lambda: (s := sub.on(state)) and s[-1]["supply_status"] == "Off")
        supply = f"zse/{node}/supply"
        await sub.until(lambda: len(sub.on(supply)) == 2)
        heard = [(v["status"], v["before"], v["reported"]) for v in sub.on(supply)]
        assert heard == [(ON, None, False), (OFF, ON, True)]


async def test_a_meter_without_supply_control_gets_no_supply_sensor(
    broker: Broker, tmp_path: Path
) -> None:
    async with bridged(broker, tmp_path, {"meter": METER}, **FOLLOWING) as (han, ihd, sub, bridge):
        node = node_id(ihd.name)
        await han.esi.publish_price(price(1), device=EUIS["ihd"])
        await asyncio.sleep(330)  # virtual: the display's readings
        await real_wait(bridge.drained.wait())
        state = f"zse/{node}/state"
        got = await sub.until(lambda: (s := sub.on(state)) and s[-1]["currency"] and s[-1])
        assert got["supply_status"] is None
        topics = {t for t, _, _ in sub.received}
        assert f"homeassistant/sensor/{node}/supply/config" not in topics
        assert f"zse/{node}/supply" not in topics
