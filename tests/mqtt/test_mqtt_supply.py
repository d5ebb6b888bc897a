"""The utility operates the ESI meter's supply and takes its snapshots over MQTT
(``change_supply``, ``take_snapshot``), against a real Mosquitto over the simulated HAN:
answered with the supply as it then is, at most once by correlation id across a restart of
the bridge, a refusal of the meter and a meter without supply control answered as errors,
and hostile payloads answered with the field at fault."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, handled_by_a_started_bridge, running, settings
from zse.cli.mqtt import simulated_esi
from zse.metering.supply import ARMED, MAX_PENDING, OFF, ON
from zse.mqtt.bridge import MqttBridge

REQUEST = "zse/bridge/request/"
RESPONSE = "zse/bridge/response/"


def supply(cid: str, status: Any = "off", **more: Any) -> dict[str, Any]:
    """A ``change_supply`` command (provider 1, issuer event 10 unless ``more`` says)."""
    return {
        "correlation_id": cid,
        "status": status,
        "provider_id": 1,
        "issuer_event_id": 10,
        **more,
    }


async def answers(sub: Subscriber, name: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` answers on ``name``'s response topic."""
    topic = RESPONSE + name
    found: list[dict[str, Any]] = await sub.until(
        lambda: len(sub.on(topic)) >= count and sub.on(topic)[:count]
    )
    return found


async def test_the_utility_switches_the_supply_and_takes_a_snapshot_over_mqtt(
    broker: Broker, tmp_path: Path
) -> None:
    async with running(broker, tmp_path, supply=True) as (sim, _bridge, sub):
        meter = sim.esi.meter
        assert meter is not None
        assert meter.supply is not None
        later = sim.esi.clock() + 3600
        await sub.publish(REQUEST + "change_supply", supply("s-1"))
        await sub.publish(
            REQUEST + "change_supply", supply("s-2", "armed", at=later, issuer_event_id=11)
        )
        await sub.publish(
            REQUEST + "change_supply", supply("s-3", at=0xFFFFFFFF, issuer_event_id=11, status=None)
        )
        await sub.publish(
            REQUEST + "take_snapshot",
            {"correlation_id": "t-1", "cause": "Manually_Triggered_From_Client"},
        )
        first = await answers(sub, "change_supply", 3)
        assert [a["status"] for a in first] == ["ok"] * 3, first
        assert first[0]["result"] == {
            "outcome": "applied",
            "supply_status": "off",
            "utility": "off",
            "credit_interrupted": False,
            "waiting": [],
        }
        assert first[1]["result"]["outcome"] == "waiting"
        assert first[1]["result"]["waiting"] == [
            {"status": "armed", "at": later, "provider_id": 1, "issuer_event_id": 11}
        ]
        assert first[2]["result"]["outcome"] == "cancelled"
        assert first[2]["result"]["waiting"] == []
        assert meter.supply.status == OFF
        (snapshot,) = await answers(sub, "take_snapshot", 1)
        assert snapshot["status"] == "ok", snapshot
        assert snapshot["result"]["cause"] == "Manually_Triggered_From_Client"
        assert meter.snapshots.snapshots[0].snapshot_id == snapshot["result"]["snapshot_id"]

        # a change for later applies at its time; a ninth waiting is refused, naming "at"
        for n in range(MAX_PENDING + 1):
            command = supply(f"w-{n}", "on", at=later + n, issuer_event_id=20 + n)
            await sub.publish(REQUEST + "change_supply", command)
        waited = (await answers(sub, "change_supply", 3 + MAX_PENDING + 1))[3:]
        assert [a["status"] for a in waited] == ["ok"] * MAX_PENDING + ["error"]
        assert waited[-1]["error"] == {"field": "at", "message": "8 supply changes wait already"}
        assert len(meter.supply.pending) == MAX_PENDING
        await asyncio.sleep(3600 + 10)  # virtual
        assert meter.supply.status == ON
        assert meter.supply.pending == []


async def test_hostile_change_supply_and_take_snapshot_are_answered_with_the_field(
    broker: Broker, tmp_path: Path
) -> None:
    huge = int("9" * 4000)
    bad = [
        (supply("h-1", "of"), "status"),
        (supply("h-2", 2), "status"),
        ({k: v for k, v in supply("h-3").items() if k != "status"}, "status"),
        (supply("h-4", at="soon"), "at"),
        (supply("h-5", at=huge), "at"),
        (supply("h-6", at=-1), "at"),
        (supply("h-7", at=1.5), "at"),
        (supply("h-8", provider_id=True), "provider_id"),
        ({k: v for k, v in supply("h-9").items() if k != "provider_id"}, "provider_id"),
        (supply("h-10", issuer_event_id=2**32), "issuer_event_id"),
        (supply("h-11", device="00:0d:6f:00:0a:00:00:01"), "device"),
        (supply("h-12", colour=1), "colour"),
        (supply("h-13", response_topic="zse/bridge/request/x"), "response_topic"),
    ]
    snapshots = [
        ({"correlation_id": "c-1", "cause": "Nope"}, "cause"),
        ({"correlation_id": "c-2", "cause": 5}, "cause"),
        ({"correlation_id": "c-3", "cause": "x" * 100}, "cause"),
        ({"correlation_id": "c-4", "when": 0}, "when"),
    ]
    async with running(broker, tmp_path, supply=True) as (sim, _bridge, sub):
        meter = sim.esi.meter
        assert meter is not None
        assert meter.supply is not None
        for payload, _ in bad:
            await sub.publish(REQUEST + "change_supply", payload)
        for payload, _ in snapshots:
            await sub.publish(REQUEST + "take_snapshot", payload)
        refused = await answers(sub, "change_supply", len(bad))
        taken = await answers(sub, "take_snapshot", len(snapshots))
        for answer, (payload, field) in zip([*refused, *taken], [*bad, *snapshots], strict=True):
            assert answer["status"] == "error", answer
            assert answer["correlation_id"] == payload["correlation_id"]
            assert answer["error"]["field"] == field, answer
            assert len(json.dumps(answer)) < 400  # the huge integer described, not echoed
        assert meter.supply.status == ON  # nothing was carried out
        assert meter.snapshots.snapshots == []


async def test_a_meter_without_supply_control_answers_change_supply_with_an_error(
    broker: Broker, tmp_path: Path
) -> None:
    async with running(broker, tmp_path) as (sim, _bridge, sub):
        assert sim.esi.meter is not None
        assert sim.esi.meter.supply is None
        await sub.publish(REQUEST + "change_supply", supply("n-1"))
        (answer,) = await answers(sub, "change_supply", 1)
        assert answer["status"] == "error"
        assert answer["error"] == {
            "field": "command",
            "message": "the meter has no supply control ([meter] supply)",
        }


async def test_change_supply_is_carried_out_at_most_once_across_a_restart_of_the_bridge(
    broker: Broker, tmp_path: Path
) -> None:
    """The id is stored before the change is made: the same command again after a restart
    is answered from the record, the supply not switched off again after the utility
    switched it back on."""
    async with simulated_esi(tmp_path, supply=True) as sim:
        await asyncio.sleep(30)  # virtual: the HAN joins
        meter = sim.esi.meter
        assert meter is not None
        assert meter.supply is not None
        store = sim.registry.store
        payload = json.dumps(supply("once-1")).encode()
        first = MqttBridge(sim.esi, settings(broker), store=store)
        answer = await first.handle_command("change_supply", payload)
        assert answer["status"] == "ok", answer
        assert meter.supply.status == OFF
        await meter.change_supply(ARMED, provider_id=1, issuer_event_id=12)
        again = await handled_by_a_started_bridge(sim.esi, broker, store, "change_supply", payload)
        assert again == {**answer, "duplicate": True}
        assert meter.supply.status == ARMED  # not switched off a second time
