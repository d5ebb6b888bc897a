"""SE 1.2 Price on a HAN device's MQTT topics (ADR 0030): what a display holds (its tariff,
the price tier's label from the tier labels or ``Tier N``, CO2, billing period, last bill,
the CPP event and its answer) on its retained ``state`` and ``price/tariff``; its events on
``price``; Home Assistant's sensors of them, valid; and ``respond_cpp_event`` answered by a
real CPP Event Response the ESI hears, against a real Mosquitto over the simulated HAN."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait, settings
from tests.mqtt.test_mqtt_bridge import HA_DEVICE_KEYS, HA_SENSOR_KEYS, TEMPLATE
from tests.mqtt.test_mqtt_han import HAN, PRICE, both
from tests.mqtt.test_mqtt_tariffs_core import MATRIX
from tests.price.test_price_se12_values import bill, billing, co2, cpp
from tests.price.test_price_tariffs import information, labels, thresholds
from tests.roles.han_builder import EUIS, build, close
from zse.mqtt.core import (
    CommandError,
    DeviceView,
    RespondCppEvent,
    Topics,
    han_discovery,
    han_event_publication,
    node_id,
    parse_han_command,
)
from zse.mqtt.han import HanBridge
from zse.price import TariffCancellation
from zse.price.service import PriceReceived, PriceValueReceived, TariffCancelled, TariffReceived
from zse.se.ids import IN_HOME_DISPLAY
from zse.se.types import CppAuth

IHD = "00:0d:6f:00:0a:00:00:01"
NOW = 849_000_000


def _got(value: object) -> TariffReceived:
    return TariffReceived(source_nwk=0, value=value, new=True)  # type: ignore[arg-type]


def _price(tier: int) -> PriceReceived:
    return PriceReceived(source_nwk=0, price=dataclasses.replace(PRICE, price_tier=tier), new=True)


def test_a_display_shows_the_tariff_and_the_label_of_its_price_tier() -> None:
    view = DeviceView(IN_HOME_DISPLAY)
    assert view.tariff == {}
    assert view.update(_price(2))
    assert view.payload["tier_label"] == "Tier 2"  # no labels: the tier's number
    assert view.update(_got(information()))
    assert view.payload["tariff_label"] == "Economy 7"
    assert not view.update(_got(MATRIX))  # the matrix is on price/tariff, not the state
    assert view.tariff["price_matrix"]["prices"][0]["price_per_unit"] == 0.15
    assert view.update(_got(thresholds()))
    assert view.payload["block_thresholds"] == {"0": [2000, 5000]}
    assert view.update(_got(labels()))
    assert view.payload["tier_labels"] == {"1": "Night", "2": "Day"}
    assert view.payload["tier_label"] == "Day"
    assert view.update(_price(1))
    assert view.payload["tier_label"] == "Night"
    assert not view.update(_got(labels(tariff_id=8)))  # not the tariff held: ignored
    assert view.tariff["tier_labels"]["labels"] == {"1": "Night", "2": "Day"}
    # another tariff cancelled: nothing; this one: gone, the tier's number again
    other = TariffCancellation(provider_id=5, issuer_tariff_id=8)
    assert not view.update(TariffCancelled(source_nwk=0, cancellation=other, held=False))
    this = TariffCancellation(provider_id=5, issuer_tariff_id=7)
    assert view.update(TariffCancelled(source_nwk=0, cancellation=this, held=True))
    assert view.tariff == {}
    assert (view.payload["tariff_label"], view.payload["tier_label"]) == (None, "Tier 1")
    assert view.payload["tier_labels"] is None


def test_a_display_shows_co2_billing_bill_and_the_cpp_event() -> None:
    view = DeviceView(IN_HOME_DISPLAY)
    for value in (co2(), billing(start=0), bill(), cpp()):
        assert view.update(PriceValueReceived(source_nwk=0, value=value, new=True), NOW)
    state = view.payload
    assert (state["carbon_intensity"], state["carbon_intensity_unit"]) == (0.185, "kg/kWh")
    assert state["billing_period_start"] == "2026-11-26T09:20:00+00:00"  # 0: when it came
    assert (state["billing_period_duration"], state["billing_period_duration_unit"]) == (
        1,
        "months",
    )
    assert (state["consolidated_bill"], state["bill_currency"]) == (84.12, "GBP")
    assert (state["cpp_event"], state["cpp_auth"], state["cpp_price_tier"]) == (4, "pending", 1)
    assert not view.responded(5, True)  # not the CPP event shown
    assert view.responded(4, False)
    assert view.payload["cpp_auth"] == "rejected"
    forced = cpp(event_id=6, auth=CppAuth.Forced)
    assert view.update(PriceValueReceived(source_nwk=0, value=forced, new=True), NOW)
    assert (view.payload["cpp_event"], view.payload["cpp_auth"]) == (6, "forced")


def test_a_tariff_received_is_an_event_on_the_price_topic_readable() -> None:
    publication = han_event_publication(Topics(), IHD, _got(MATRIX), 9)
    assert publication is not None
    assert publication.topic == "zse/000d6f000a000001/price"
    assert not publication.retain
    assert publication.payload["value_kind"] == "price_matrix"
    assert publication.payload["value"]["prices"][0] == {"tier": 1, "block": 1, "price": 1500}
    json.dumps(publication.payload)
    information_event = han_event_publication(Topics(), IHD, _got(information()), 9)
    assert information_event is not None
    assert information_event.payload["value"]["tariff_label"] == "Economy 7"
    cancel = TariffCancellation(provider_id=5, issuer_tariff_id=7)
    cancelled = han_event_publication(
        Topics(), IHD, TariffCancelled(source_nwk=0, cancellation=cancel, held=True), 9
    )
    assert cancelled is not None
    assert (cancelled.payload["event"], cancelled.payload["held"]) == ("TariffCancelled", True)


def test_the_display_s_se12_sensors_are_home_assistant_s_schema() -> None:
    configs = {
        p.topic.split("/")[-2]: p.payload
        for p in han_discovery(
            Topics(),
            [(IHD, IN_HOME_DISPLAY)],
            value_units={IHD: {"co2": "kg/kWh", "bill": "GBP"}},
        )
    }
    for config in configs.values():
        assert set(config) <= HA_SENSOR_KEYS, set(config) - HA_SENSOR_KEYS
        assert set(config["device"]) <= HA_DEVICE_KEYS
        assert TEMPLATE.fullmatch(config["value_template"]), config["value_template"]
    tariff, tier = configs["tariff"], configs["tier"]
    assert tariff["json_attributes_topic"] == tariff["state_topic"] == "zse/000d6f000a000001/state"
    assert "value_json.tier_labels" in tariff["json_attributes_template"]
    assert tier["value_template"] == "{{ value_json.tier_label }}"
    assert configs["co2"]["unit_of_measurement"] == "kg/kWh"
    assert (configs["bill"]["device_class"], configs["bill"]["unit_of_measurement"]) == (
        "monetary",
        "GBP",
    )
    assert "state_class" not in configs["bill"]  # monetary takes only total
    assert configs["billing"]["device_class"] == "timestamp"
    assert configs["cpp"]["value_template"] == "{{ value_json.cpp_auth }}"
    unknown = han_discovery(Topics(), [(IHD, IN_HOME_DISPLAY)])
    bill_config = {p.topic.split("/")[-2]: p.payload for p in unknown}["bill"]
    assert "device_class" not in bill_config  # monetary needs its currency


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"issuer_event_id": 4}, "accept"),
        ({"issuer_event_id": 4, "accept": "yes"}, "accept"),
        ({"accept": True}, "issuer_event_id"),
        ({"issuer_event_id": 4, "accept": True, "auth": 1}, "auth"),
    ],
)
def test_respond_cpp_event_names_each_mistake(fields: dict[str, object], field: str) -> None:
    payload = json.dumps({"correlation_id": "c", "device": IHD, **fields}).encode()
    with pytest.raises(CommandError) as refused:
        parse_han_command("respond_cpp_event", payload)
    assert refused.value.field == field


def test_respond_cpp_event_parses() -> None:
    body = {"correlation_id": "c", "device": IHD, "issuer_event_id": 4, "accept": False}
    command = parse_han_command("respond_cpp_event", json.dumps(body).encode())
    assert command == RespondCppEvent(
        correlation_id="c", device=IHD, issuer_event_id=4, accept=False
    )


async def test_a_display_s_tariff_and_cpp_event_on_mqtt(broker: Broker, tmp_path: Path) -> None:
    async with both(broker, tmp_path) as (sim, sub):
        esi = sim.esi
        display = sim.devices["InHomeDisplay"]
        ihd = node_id(display)
        await esi.publish_tariff(information(), MATRIX, thresholds(), labels(), device=display)
        await esi.publish_price(PRICE, device=display)  # tier 2: "Day"
        pending = cpp(event_id=44)
        for value in (co2(start=0), billing(start=0), pending.with_start(0)):
            await esi.publish_price(value, device=display)
        await asyncio.sleep(5)  # virtual

        state = await sub.until(
            lambda: (
                (got := sub.on(f"{HAN}/{ihd}/state"))
                and got[-1]["cpp_event"] == 44
                and got[-1]["tier_label"] == "Day"
                and got[-1]
            )
        )
        assert (state["tariff_label"], state["tier_labels"]) == (
            "Economy 7",
            {"1": "Night", "2": "Day"},
        )
        assert (state["carbon_intensity"], state["cpp_auth"]) == (0.185, "pending")
        assert state["billing_period_duration_unit"] == "months"
        held = await sub.until(
            lambda: (got := sub.on(f"{HAN}/{ihd}/price/tariff")) and got[-1]["tier_labels"] and got
        )
        assert held[-1]["price_matrix"]["prices"][0]["price_per_unit"] == 0.15
        kinds = [v.get("value_kind") for v in sub.on(f"{HAN}/{ihd}/price")]
        assert {"tariff", "price_matrix", "block_thresholds", "tier_labels"} <= set(kinds)

        # Home Assistant's sensors of what the display now knows, valid
        configs = await sub.until(
            lambda: (
                (found := {
                    t.split("/")[-2]: v
                    for t, v, _ in sub.received
                    if t.startswith(f"homeassistant/sensor/{ihd}/") and v
                })
                and {"tariff", "tier", "co2", "billing", "cpp"} <= set(found)
                and found
            )
        )  # fmt: skip
        for config in configs.values():
            assert set(config) <= HA_SENSOR_KEYS, set(config) - HA_SENSOR_KEYS
            assert TEMPLATE.fullmatch(config["value_template"])
        assert configs["co2"]["unit_of_measurement"] == "kg/kWh"

        # the user accepts the CPP event: a real CPP Event Response the ESI hears, once
        request = {
            "correlation_id": "cpp-yes",
            "device": display,
            "issuer_event_id": 44,
            "accept": True,
        }
        await sub.publish(f"{HAN}/bridge/request/respond_cpp_event", request)
        await sub.publish(f"{HAN}/bridge/request/respond_cpp_event", request)
        answers = await sub.until(
            lambda: (
                (got := sub.on(f"{HAN}/bridge/response/respond_cpp_event"))
                and len(got) == 2
                and got
            )
        )
        assert answers[0]["status"] == "ok", answers
        assert answers[0]["result"]["accepted"] is True
        assert answers[1]["duplicate"] is True
        await asyncio.sleep(2)  # virtual
        heard = await sub.until(
            lambda: [v for v in sub.on(f"zse/{ihd}/price") if v["event"] == "CppEventResponded"]
        )
        assert [(v["issuer_event_id"], v["cpp_auth"]) for v in heard] == [(44, "accepted")]
        assert (await sub.until(lambda: sub.on(f"{HAN}/{ihd}/state")))[-1]["cpp_auth"] == (
            "accepted"
        )
        thermostat = sim.devices["ProgrammableThermostat"]
        wrong = {**request, "correlation_id": "cpp-2", "device": thermostat, "accept": "no"}
        await sub.publish(f"{HAN}/bridge/request/respond_cpp_event", wrong)
        refused = await sub.until(
            lambda: [
                v for v in sub.on(f"{HAN}/bridge/response/respond_cpp_event")
                if v["correlation_id"] == "cpp-2"
            ]
        )  # fmt: skip
        assert refused[0]["error"]["field"] == "accept"

        # cancelled: the held tariff is {} and the state shows no tariff, a late subscriber
        # gets both retained
        await esi.cancel_tariff(
            TariffCancellation(provider_id=5, issuer_tariff_id=7), device=display
        )
        await asyncio.sleep(2)
        await sub.until(lambda: sub.on(f"{HAN}/{ihd}/price/tariff")[-1] == {})
        late = Subscriber(broker, "late-subscriber")
        await late.connect()
        try:
            kept = await late.until(
                lambda: [(v, r) for t, v, r in late.received if t == f"{HAN}/{ihd}/price/tariff"]
            )
            last_state = await late.until(
                lambda: [v for t, v, _ in late.received if t == f"{HAN}/{ihd}/state"]
            )
        finally:
            await late.close()
        assert kept == [({}, True)]
        assert (last_state[-1]["tariff_label"], last_state[-1]["tier_label"]) == (None, "Tier 2")


async def _retained(broker: Broker, name: str, node: str) -> tuple[Any, Any]:
    """What a client subscribing now gets of the display's ``state`` and ``price/tariff``:
    the retained messages."""
    reader = Subscriber(broker, name)
    await reader.connect()
    try:
        state, tariff = f"zse/{node}/state", f"zse/{node}/price/tariff"
        await reader.until(lambda: reader.on(state) and reader.on(tariff))
        return reader.on(state)[-1], reader.on(tariff)[-1]
    finally:
        await reader.close()


async def test_a_restarted_bridge_s_tariff_and_state_agree(broker: Broker, tmp_path: Path) -> None:
    """The retained ``price/tariff`` outlives the bridge; ``state`` starts anew with it. At
    start the bridge shows the tariff the display holds on both (a restart of the bridge
    alone), and clears the retained tariff (``{}``) when the display holds none (a restart
    of ``zse han watch``, whose display starts empty): the two agree, not only after the
    next tariff."""
    han = await build(tmp_path)
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd")
    node = node_id(ihd.name)
    store = han.registry.store
    bridge = HanBridge([ihd], settings(broker), store=store)
    await bridge.start()
    try:
        await real_wait(bridge.connected.wait())
        await ihd.start()
        await han.esi.publish_tariff(information(), labels(), device=EUIS["ihd"])
        await asyncio.sleep(5)  # virtual
        await real_wait(bridge.drained.wait())
        state, tariff = await _retained(broker, "reader-1", node)
        assert (state["tariff_label"], tariff["tariff_label"]) == ("Economy 7", "Economy 7")
        await bridge.stop()

        bridge = HanBridge([ihd], settings(broker), store=store)  # the display holds it
        await bridge.start()
        await real_wait(bridge.connected.wait())
        await real_wait(bridge.drained.wait())
        state, tariff = await _retained(broker, "reader-2", node)
        assert (state["tariff_label"], tariff["tariff_label"]) == ("Economy 7", "Economy 7")
        assert state["tier_labels"] == tariff["tier_labels"]["labels"] == {"1": "Night", "2": "Day"}
        await bridge.stop()

        ihd.price.clear()  # a display that starts with no tariff
        bridge = HanBridge([ihd], settings(broker), store=store)
        await bridge.start()
        await real_wait(bridge.connected.wait())
        await real_wait(bridge.drained.wait())
        state, tariff = await _retained(broker, "reader-3", node)
        assert (state["tariff_label"], tariff) == (None, {})
    finally:
        await bridge.stop()
        await close(han)
