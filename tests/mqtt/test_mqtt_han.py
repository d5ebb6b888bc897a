"""The HAN devices' bridge (issue #17.1) against a real Mosquitto over the simulated HAN, with
the ESI's bridge beside it (``zse mqtt --sim --role both``): what each device sees (readings,
price with tiers and a block period, a message displayed and confirmed, a load control event
and every report the device sent), Home Assistant discovery of the display's sensors, the
device commands (opt out, opt in, confirm) with errors naming the field; and the ESI's sends
made through the library, not MQTT, on the ESI's topics once each."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait, settings
from tests.mqtt.test_mqtt_bridge import (
    HA_DEVICE_KEYS,
    HA_ENERGY_UNITS,
    HA_POWER_UNITS,
    HA_SENSOR_KEYS,
    TEMPLATE,
)
from zse.cli.mqtt import SimulatedEsi, sim_bridges, simulated_esi
from zse.drlc import LoadControlEvent
from zse.messaging import Message
from zse.mqtt.core import node_id
from zse.price import PriceEvent
from zse.price.core import BlockPeriod

HAN = "zse/han"
DISCOVERY = re.compile(r"homeassistant/sensor/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config")
PRICE = PriceEvent(
    provider_id=0x2A2A,
    rate_label=b"PEAK",
    issuer_event_id=1001,
    unit_of_measure=0,
    currency=826,
    price_trailing_digit=4,
    price_tier=2,
    number_of_price_tiers=2,
    register_tier=2,
    start_time=0,
    duration_in_minutes=0xFFFF,
    price=2450,
)
PERIOD = BlockPeriod(
    provider_id=0x2A2A,
    issuer_event_id=2001,
    block_period_start_time=0,
    block_period_duration=24 * 60,
)


@contextlib.asynccontextmanager
async def both(broker: Broker, directory: Path) -> AsyncIterator[tuple[SimulatedEsi, Subscriber]]:
    """The simulated HAN keyed, a subscriber, and the bridges of ``--role both`` connected."""
    async with simulated_esi(directory) as sim:
        await asyncio.sleep(30)  # virtual: the devices join and run CBKE
        subscriber = Subscriber(broker)
        await subscriber.connect()
        bridges = sim_bridges(sim, settings(broker), "both")
        assert [b.topics.base for b in bridges] == ["zse", HAN]
        assert bridges[1].settings.client_id == "zse-bridge-han"
        for bridge in bridges:
            await bridge.start()
        try:
            for bridge in bridges:
                await real_wait(bridge.connected.wait())
            yield sim, subscriber
        finally:
            for bridge in reversed(bridges):
                await bridge.stop()
            await subscriber.close()


def _events(sub: Subscriber, topic: str) -> list[str]:
    return [v["event"] for v in sub.on(topic)]


async def test_what_the_devices_see_and_do_on_mqtt(broker: Broker, tmp_path: Path) -> None:
    async with both(broker, tmp_path) as (sim, sub):
        esi = sim.esi
        meter = node_id(esi.app.state.node_info.ieee)
        display = sim.devices["InHomeDisplay"]
        thermostat = sim.devices["ProgrammableThermostat"]
        heater = sim.devices["LoadControlDevice"]
        ihd, pct, lcd = (node_id(d) for d in (display, thermostat, heater))

        # Home Assistant discovery of the devices' sensors, key by key (the display's power
        # once it heard a demand: the meter reports it at least every 300 s)
        await asyncio.sleep(330)  # virtual
        configs = await sub.until(
            lambda: (
                (found := {m.groups(): v for t, v, _ in sub.received if (m := DISCOVERY.match(t))})
                # the ESI's: the meter's two and each device's lifecycle (an earlier version's
                # "Message confirmed" sensor removed: empty); display (its price once a price
                # came), thermostat, heater
                and len(found := {key: v for key, v in found.items() if v}) == 2 + 3 + 4 + 3 + 2
                and found
            )
        )
        ids = set()
        for (node, _), config in configs.items():
            assert set(config) <= HA_SENSOR_KEYS, set(config) - HA_SENSOR_KEYS
            assert set(config["device"]) <= HA_DEVICE_KEYS
            assert config["device"]["identifiers"] == [f"zse_{node}"]
            assert TEMPLATE.fullmatch(config["value_template"]), config["value_template"]
            ids.add(config["unique_id"])
        assert len(ids) == len(configs)
        energy, power = configs[ihd, "energy"], configs[ihd, "power"]
        assert (energy["device_class"], energy["state_class"]) == ("energy", "total_increasing")
        assert energy["unit_of_measurement"] in HA_ENERGY_UNITS
        assert (power["device_class"], power["state_class"]) == ("power", "measurement")
        assert power["unit_of_measurement"] in HA_POWER_UNITS
        assert energy["state_topic"] == f"{HAN}/{ihd}/metering"
        assert energy["availability_topic"] == f"{HAN}/bridge/state"
        assert configs[ihd, "message"]["state_topic"] == f"{HAN}/{ihd}/state"
        assert configs[pct, "cooling"]["unit_of_measurement"] == "°C"
        assert configs[lcd, "duty_cycle"]["unit_of_measurement"] == "%"
        assert await sub.until(lambda: sub.on(f"{HAN}/bridge/state")) == ["online"]

        # the ESI sends through the library (not MQTT): a price in tier 2, a block period, a
        # message asking for a confirmation, a load control event of criticality 1
        await esi.publish_price(PRICE, group="sim")
        await esi.publish_price(PERIOD, group="sim")
        confirm = Message(message_id=5, text="Peak from 17:00", confirmation_required=True)
        await esi.send_message(confirm, device=display)
        event = LoadControlEvent(
            issuer_event_id=0x77,
            device_class=0x0FFF,
            duration_in_minutes=5,
            criticality_level=1,
            cooling_temperature_set_point=2700,
            duty_cycle=40,
        )
        await esi.send_load_control(event, group="sim")
        await asyncio.sleep(20)  # virtual: the simulated user confirms after 10 s

        # the user opts the thermostat out by MQTT, and back in; bad commands get errors
        request = f"{HAN}/bridge/request"
        await sub.publish(
            f"{request}/opt_out",
            {"correlation_id": "o-1", "device": thermostat, "issuer_event_id": 0x77},
        )
        (out,) = await sub.until(lambda: sub.on(f"{HAN}/bridge/response/opt_out"))
        assert out == {
            "command": "opt_out",
            "correlation_id": "o-1",
            "status": "ok",
            "result": {"device": thermostat, "issuer_event_id": 0x77},
        }
        # sent again (a retry, a redelivery): answered again, not carried out again
        await sub.publish(
            f"{request}/opt_out",
            {"correlation_id": "o-1", "device": thermostat, "issuer_event_id": 0x77},
        )
        (_, again) = await sub.until(
            lambda: (
                len(sub.on(f"{HAN}/bridge/response/opt_out")) == 2
                and sub.on(f"{HAN}/bridge/response/opt_out")
            )
        )
        assert again == {**out, "duplicate": True}
        await asyncio.sleep(30)  # virtual
        await sub.publish(
            f"{request}/opt_in",
            {"correlation_id": "o-2", "device": thermostat, "issuer_event_id": 0x77},
        )
        bad = [
            ("confirm_message", {"device": thermostat, "message_id": 5}, "device"),
            ("confirm_message", {"device": display, "message_id": 5}, "message_id"),
            ("opt_out", {"device": heater, "issuer_event_id": 0x99}, "issuer_event_id"),
            ("opt_in", {"device": display, "issuer_event_id": "x"}, "issuer_event_id"),
            ("opt_out", {"device": "00:00:00:00:00:00:00:99", "issuer_event_id": 1}, "device"),
            ("confirm_message", {"device": display, "message_id": 5, "colour": 1}, "colour"),
        ]
        for i, (name, body, _) in enumerate(bad):
            await sub.publish(f"{request}/{name}", {"correlation_id": f"bad-{i}", **body})

        def answers() -> list[dict[str, Any]]:
            found = [
                v
                for t, v, _ in sub.received
                if t.startswith(f"{HAN}/bridge/response/") and v["correlation_id"] != "o-1"
            ]
            return found if len(found) == 1 + len(bad) else []

        (opted_in, *errors) = await sub.until(answers)
        assert opted_in["status"] == "ok"
        assert [(e["status"], e["error"]["field"]) for e in errors] == [
            ("error", field) for _, _, field in bad
        ]
        await asyncio.sleep(6 * 60)  # virtual: the five-minute event ends

        # what each device saw and did, on its own topics
        ihd_price = await sub.until(lambda: sub.on(f"{HAN}/{ihd}/price"))
        prices = [v for v in ihd_price if v["event"] == "PriceReceived"]
        assert prices[0]["price"]["price_tier"] == 2
        assert prices[0]["price_per_unit"] == 0.245
        assert prices[0]["price"]["rate_label"] == "PEAK"
        periods = [v for v in ihd_price if v["event"] == "PriceValueReceived"]
        assert periods[0]["value"]["issuer_event_id"] == 2001
        messages = _events(sub, f"{HAN}/{ihd}/message")
        assert "MessageDisplayed" in messages
        assert "ConfirmationSent" in messages
        (confirmed,) = [
            v for v in sub.on(f"{HAN}/{ihd}/message") if v["event"] == "ConfirmationSent"
        ]
        assert (confirmed["message_id"], confirmed["acknowledged"]) == (5, True)
        readings = sub.on(f"{HAN}/{ihd}/metering")
        assert readings
        assert readings[-1]["summation_delivered_unit"] == "kWh"
        sums = [r["summation_delivered_raw"] for r in readings if "summation_delivered_raw" in r]
        assert sums == sorted(sums)
        state = sub.on(f"{HAN}/{ihd}/state")[-1]
        assert state["price_per_unit"] == 0.245
        assert (state["message_id"], state["message"]) == (5, "Peak from 17:00")
        # retained: a subscriber that comes later sees each device's state at once
        late = Subscriber(broker, "late-subscriber")
        await late.connect()
        try:
            kept = await late.until(
                lambda: [(v, r) for t, v, r in late.received if t == f"{HAN}/{ihd}/state"]
            )
        finally:
            await late.close()
        assert kept == [(state, True)]
        pct_state = [v for v in sub.on(f"{HAN}/{pct}/state") if v["cooling_set_point"] == 27.0]
        assert pct_state
        assert pct_state[0]["load_control_event"] == 0x77
        assert sub.on(f"{HAN}/{pct}/state")[-1]["load_control_event"] is None
        assert any(v["duty_cycle"] == 40 for v in sub.on(f"{HAN}/{lcd}/state"))

        # every Report Event Status a device sent is on its drlc topic, and the ESI got each
        def sent_reports(node: str) -> list[tuple[int, str]]:
            return [
                (v["report"]["issuer_event_id"], v["status"])
                for v in sub.on(f"{HAN}/{node}/drlc")
                if v["event"] == "ReportSent"
            ]

        # opted out and back in: it took part for some of the event (SE D.2.3.3.1.1.2)
        assert [s for _, s in sent_reports(pct)] == [
            "received",
            "started",
            "opted_out",
            "opted_in",
            "partially_completed_opt_in",
        ]
        assert [s for _, s in sent_reports(lcd)] == ["received", "started", "completed"]
        # applied at the start, and again when the user opted back in
        (applied, _again) = [
            v for v in sub.on(f"{HAN}/{pct}/drlc") if v["event"] == "ApplyLoadControl"
        ]
        assert applied["load_control_event"]["cooling_temperature_set_point"] == 2700
        assert applied["applied"]["cooling_temperature_set_point"] == 2700
        assert "StopLoadControl" in _events(sub, f"{HAN}/{pct}/drlc")
        received = [
            (v["report"]["issuer_event_id"], v["status"])
            for v in sub.on(f"zse/{pct}/drlc")
            if v["event"] == "ReportReceived"
        ]
        assert received == sent_reports(pct)

        # the display's price sensor in the price's currency per kWh, announced once a price
        # came (it had no unit): what Home Assistant's energy dashboard takes for the price
        price = f"homeassistant/sensor/{ihd}/price/config"
        await sub.until(lambda: sub.on(price))
        assert {c["unit_of_measurement"] for c in sub.on(price)} == {"GBP/kWh"}

        # the ESI's sends made through the library are on the meter's topics, once each
        assert _events(sub, f"zse/{meter}/price") == ["PriceEvent"]
        assert _events(sub, f"zse/{meter}/price/block_period") == ["BlockPeriod"]
        assert _events(sub, f"zse/{meter}/message") == ["MessageSent"]
        assert _events(sub, f"zse/{meter}/drlc") == ["LoadControlSent"]
        (lc,) = sub.on(f"zse/{meter}/drlc")
        assert {o["device"] for o in lc["outcomes"]} == set(sim.devices.values())
