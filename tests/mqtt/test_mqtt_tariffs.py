"""SE 1.2 Price on MQTT against a real Mosquitto over the simulated HAN (ADR 0030): a headend
publishes a tariff, cancels it and publishes a CPP event through the broker, each carried out
once though its command comes twice, each on the meter's retained topic of its kind with the
per-device outcomes, a mistake answered with the field; a late subscriber gets the last of
each."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, running
from tests.mqtt.test_mqtt_tariffs_core import TARIFF
from zse.metering.snapshots import MAX_PLANNED
from zse.mqtt.core import node_id
from zse.price import TierLabels

CPP = {
    "provider_id": 5,
    "issuer_event_id": 4,
    "start_time": 0,
    "duration_in_minutes": 120,
    "cpp_price_tier": 1,
    "cpp_auth": 0,
}


def _role(sim: Any, kind: str) -> Any:
    (role,) = [d.role for d in sim.han.devices if d.role.name == sim.devices[kind]]
    return role


async def test_a_headend_publishes_and_cancels_a_tariff_through_the_broker(
    broker: Broker, tmp_path: Path
) -> None:
    async with running(broker, tmp_path, reading_interval=0) as (sim, bridge, sub):
        display = sim.devices["InHomeDisplay"]
        meter = node_id(bridge.meter)
        topic = f"zse/{meter}/price"
        publish = {
            "correlation_id": "tariff-1",
            "group": "sim",
            "tariff": TARIFF,
            "price_matrix": {"prices": [{"tier": 1, "price": 1500}, {"tier": 2, "price": 2500}]},
            "tier_labels": {"labels": {"1": "Night", "2": "Day"}},
        }
        wrong = {**publish, "correlation_id": "tariff-2", "tier_labels": {"labels": {"0": "x"}}}
        cancel = {
            "correlation_id": "cancel-1",
            "device": display,
            "provider_id": 5,
            "issuer_tariff_id": 7,
        }
        cpp = {"correlation_id": "cpp-1", "device": display, "cpp_event": CPP}
        for name, command in [
            ("publish_tariff", publish),
            ("publish_tariff", publish),  # a redelivery, or the headend's retry
            ("publish_tariff", wrong),
            ("publish_price", cpp),
        ]:
            await sub.publish(f"zse/bridge/request/{name}", command)
        answers = await sub.until(
            lambda: (got := sub.on("zse/bridge/response/publish_tariff")) and len(got) == 3 and got
        )
        first, again, refused = answers
        assert first["status"] == "ok", first
        assert {o["outcome"] for o in first["result"]["outcomes"]} == {"delivered"}
        assert len(first["result"]["outcomes"]) == 3  # the simulated HAN's three devices
        assert again == {**first, "duplicate": True}
        assert refused["status"] == "error"
        assert refused["error"]["field"] == "tier_labels.labels.0"
        (sent,) = await sub.until(lambda: sub.on(f"{topic}/tariff"))  # once
        assert sent["tariff_label"] == "Economy 7"
        assert sent["tier_labels"]["labels"] == {"1": "Night", "2": "Day"}
        assert sent["price_matrix"]["prices"][0]["price_per_unit"] == 0.15
        assert sent["outcomes"] == first["result"]["outcomes"]
        assert sent["target"] == first["result"]["target"]
        (cpp_answer,) = await sub.until(lambda: sub.on("zse/bridge/response/publish_price"))
        assert cpp_answer["status"] == "ok", cpp_answer
        (cpp_sent,) = await sub.until(lambda: sub.on(f"{topic}/cpp_event"))
        assert (cpp_sent["event"], cpp_sent["issuer_event_id"]) == ("CppEvent", 4)
        assert sub.on(topic) == []  # the retained price stays a price

        await asyncio.sleep(5)  # virtual: the display puts the tariff together
        ihd = _role(sim, "InHomeDisplay")
        now = ihd.clock()
        assert ihd.price.tariffs.tariff(7, now) is not None
        assert ihd.price.tariffs.value(TierLabels, 7, now).labels == {1: b"Night", 2: b"Day"}

        await sub.publish("zse/bridge/request/cancel_tariff", cancel)
        (cancelled,) = await sub.until(lambda: sub.on("zse/bridge/response/cancel_tariff"))
        assert cancelled["status"] == "ok", cancelled
        (gone,) = await sub.until(lambda: sub.on(f"{topic}/tariff_cancelled"))
        assert (gone["event"], gone["issuer_tariff_id"]) == ("TariffCancellation", 7)
        await asyncio.sleep(5)
        assert ihd.price.tariffs.tariff(7, ihd.clock()) is None

        late = Subscriber(broker, "late-subscriber")
        await late.connect()
        try:
            kept = await late.until(
                lambda: (
                    (found := {t: (json.dumps(v), r) for t, v, r in late.received})
                    and all(f"{topic}/{k}" in found for k in ("tariff", "tariff_cancelled"))
                    and f"{topic}/cpp_event" in found
                    and found
                )
            )
        finally:
            await late.close()
        for kind in ("tariff", "tariff_cancelled", "cpp_event"):
            _payload, retained = kept[f"{topic}/{kind}"]
            assert retained, kind
        assert json.loads(kept[f"{topic}/tariff"][0]) == sent


async def test_a_tariff_whose_snapshot_has_no_room_names_its_start_time(
    broker: Broker, tmp_path: Path
) -> None:
    """The meter has 16 snapshots planned for later changes already: a tariff starting later
    is refused before anything is kept (its snapshot cannot be planned), and the answer
    named the field ``target``, which was not at fault."""
    async with running(broker, tmp_path, reading_interval=0) as (sim, _bridge, sub):
        meter = sim.esi.meter
        assert meter is not None
        now = meter.clock()
        for n in range(MAX_PLANNED):
            await meter.plan_snapshot(f"tariff/9/{n}", now + 3600, 0x40)
        later = {**TARIFF, "start_time": now + 7200}
        command = {"correlation_id": "tariff-17", "group": "sim", "tariff": later}
        await sub.publish("zse/bridge/request/publish_tariff", command)
        (answer,) = await sub.until(lambda: sub.on("zse/bridge/response/publish_tariff"))
        assert answer["status"] == "error", answer
        assert answer["error"]["field"] == "tariff.start_time"
