"""Home Assistant discovery, response topics and retained prices in the MQTT bridge's sans-IO
core (audit mqtt-ha-tls, findings 2, 3, 6, 7, 11 and 13).

Home Assistant's device classes and units are those of its sensor integration
(https://www.home-assistant.io/integrations/sensor/#device-class; ``DEVICE_CLASS_UNITS`` and
``DEVICE_CLASS_STATE_CLASSES`` in ``homeassistant/components/sensor/const.py``): the subset
that every release since 2023 takes, below."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.config import ConfigError, load_config
from zse.metering.formatting import unit_text
from zse.mqtt.core import (
    CommandError,
    Topics,
    correlation_id_of,
    device_discovery,
    discovery,
    han_device,
    han_discovery,
    meter_sensors,
    parse_command,
    price_unit,
    registry_publication,
    removal,
    sent_publication,
    unit_of_text,
)
from zse.price import PriceEvent
from zse.price.core import BlockPeriod, ConversionFactor
from zse.provisioning import LifecycleState
from zse.roles.esi import PriceSent, SendResult
from zse.se.ids import IN_HOME_DISPLAY, PROGRAMMABLE_THERMOSTAT
from zse.se.types import UnitOfMeasure

METER = "00:0d:6f:00:00:00:00:e5"
IHD = "00:0d:6f:00:0a:00:00:01"
#: Home Assistant's units per device class (the classes zse announces).
HA_UNITS = {
    "energy": {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh"},
    "power": {"W", "kW", "MW", "GW", "TW"},
    "gas": {"m³", "ft³", "CCF"},
    "water": {"m³", "ft³", "CCF", "gal", "L"},
    "volume": {"m³", "ft³", "CCF", "gal", "L", "mL", "fl. oz."},
    "volume_flow_rate": {"m³/h", "ft³/min", "L/min", "gal/min"},
}
#: The state classes Home Assistant takes for each.
HA_STATE_CLASSES = {
    "energy": {"total", "total_increasing"},
    "gas": {"total", "total_increasing"},
    "water": {"total", "total_increasing"},
    "volume": {"total", "total_increasing"},
    "power": {"measurement"},
    "volume_flow_rate": {"measurement"},
}


def _configs(unit: int | None, device_type: int = 0) -> dict[str, dict[str, object]]:
    found = discovery(Topics(), METER, unit_of_measure=unit, device_type=device_type)
    return {p.topic.split("/")[-2]: p.payload for p in found}


@pytest.mark.parametrize(
    ("unit", "device_type", "energy", "power"),
    [
        (0x00, 0, ("energy", "kWh"), ("power", "kW")),
        (0x01, 1, ("gas", "m³"), ("volume_flow_rate", "m³/h")),
        (0x81, 1, ("gas", "m³"), ("volume_flow_rate", "m³/h")),  # BCD
        (0x02, 1, ("gas", "ft³"), (None, "ft³/h")),
        (0x03, 1, ("gas", "CCF"), (None, "ccf/h")),
        (0x01, 2, ("water", "m³"), ("volume_flow_rate", "m³/h")),
        (0x04, 2, ("water", "gal"), (None, "US gal/h")),
        (0x07, 2, ("water", "L"), (None, "l/h")),
        (0x0C, 1, ("energy", "MJ"), ("power", "MW")),  # MJ/s is MW
        (0x05, 2, (None, "imp gal"), (None, "imp gal/h")),
        (0x08, 4, (None, "kPa (gauge)"), (None, "kPa (gauge)")),
        (0x0D, 0, (None, "kVArh"), (None, "kVAr")),
    ],
)
def test_the_meter_is_announced_in_its_unit_of_measure(
    unit: int, device_type: int, energy: tuple[str | None, str], power: tuple[str | None, str]
) -> None:
    """A gas meter was announced as an ``energy`` sensor in kWh, its flow as ``power`` in
    m³/h: the class and unit now follow UnitOfMeasure (SE D.3.2.2.4.1) and MeteringDeviceType;
    a unit Home Assistant has no class for gets none, and no ``total_increasing``."""
    configs = _configs(unit, device_type)
    for config, (kind, text) in ((configs["energy"], energy), (configs["power"], power)):
        assert (config.get("device_class"), config["unit_of_measurement"]) == (kind, text)
    assert configs["power"]["state_class"] == "measurement"
    if energy[0] is None:
        assert "state_class" not in configs["energy"]
    else:
        assert configs["energy"]["state_class"] == "total_increasing"


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 0xFF), st.integers(0, 0xFF))
def test_every_unit_is_announced_as_home_assistant_takes_it(unit: int, device_type: int) -> None:
    """Whatever the meter's UnitOfMeasure (a reserved one included, which raised DecodeError
    and cost the bridge its connection), the discovery is made and each class has a unit and
    a state class Home Assistant takes with it."""
    for fields in meter_sensors(unit, device_type):
        kind = fields.get("device_class")
        if kind is not None:
            assert fields["unit_of_measurement"] in HA_UNITS[kind]
            assert fields["state_class"] in HA_STATE_CLASSES[kind]
    assert set(_configs(unit, device_type)) == {"energy", "power"}


def test_a_reserved_unit_is_announced_without_a_unit() -> None:
    """UnitOfMeasure 0x0E is reserved (table D.21): no unit, no class; nothing raised."""
    configs = _configs(0x0E)
    assert "unit_of_measurement" not in configs["energy"]
    assert "device_class" not in configs["energy"]
    assert "device_class" not in configs["power"]


def test_an_esi_without_a_meter_announces_no_meter_sensors_and_removal_clears_them() -> None:
    """No Metering server: no energy or power sensor; a removal is an empty retained payload
    on each config topic (Home Assistant's removal)."""
    assert discovery(Topics(), METER, unit_of_measure=None) == []
    cleared = removal(discovery(Topics(), METER))
    assert [(p.topic, p.payload, p.retain) for p in cleared] == [
        ("homeassistant/sensor/000d6f00000000e5/energy/config", "", True),
        ("homeassistant/sensor/000d6f00000000e5/power/config", "", True),
    ]
    assert [p.encode() for p in cleared] == [b"", b""]


def test_the_lifecycle_sensor_reads_a_retained_state_topic() -> None:
    """The display's "Lifecycle state" read ``to_state`` of the lifecycle events, which a
    LifecycleRefused lacks and which are not retained: it reads ``<device>/registry`` now,
    retained, a state always."""
    (lifecycle,) = [p for p in discovery(Topics(), METER, [IHD]) if "/lifecycle/" in p.topic]
    assert lifecycle.payload["state_topic"] == "zse/000d6f000a000001/registry"
    assert lifecycle.payload["value_template"] == "{{ value_json.state }}"
    state = registry_publication(Topics(), IHD, LifecycleState.METER_READY, 7)
    assert (state.topic, state.retain) == ("zse/000d6f000a000001/registry", True)
    assert state.payload == {"device": IHD, "state": "meter ready", "time": 7}


@pytest.mark.parametrize(
    "topic",
    [
        "homeassistant/sensor/000d6f00000000e5/energy/config",
        "homeassistant",
        "zse/bridge/state",
        "zse/bridge/outbox",
        "zse/bridge/request/x",
        "zse/000d6f00000000e5/metering",
        "zse/000D6F00000000E5/price",
    ],
)
def test_a_response_topic_among_the_bridge_s_own_is_refused(topic: str) -> None:
    """A command could have the bridge answer onto Home Assistant's discovery configs, its
    own ``bridge/state`` or a meter's readings (its ACL allows it those): refused."""
    with pytest.raises(CommandError) as refused:
        Topics().check_response_topic(topic)
    assert refused.value.field == "response_topic"


@pytest.mark.parametrize(
    "topic",
    [None, "zse/bridge/response/mine", "zse/apps/one/response", "zse/headend/w1/response", "a/b"],
)
def test_a_response_topic_elsewhere_is_taken(topic: str | None) -> None:
    """The bridge's answers tree, another application's topics and another tree are taken."""
    Topics().check_response_topic(topic)
    Topics("zse/meters/m1").check_response_topic("zse/headend/w1/response")


@pytest.mark.parametrize("cid", ["a\x00b", "line\nbreak", "\x1b[31m", "del\x7f", "c1\x85"])
def test_a_correlation_id_with_a_control_character_is_refused(cid: str) -> None:
    """A NUL or another control character was accepted in ``correlation_id``."""
    payload = json.dumps({"correlation_id": cid, "mac": IHD}).encode()
    with pytest.raises(CommandError) as refused:
        parse_command("deprovision", payload)
    assert refused.value.field == "correlation_id"
    assert correlation_id_of(payload) is None


def _sent(price: object) -> tuple[str, bool, str]:
    result = SendResult(what="x", target="broadcast", outcomes=())
    sent = sent_publication(Topics(), METER, PriceSent(price=price, result=result), 5)  # type: ignore[arg-type]
    assert sent is not None
    return sent.topic, sent.retain, sent.payload["event"]


def test_the_retained_price_is_always_a_price() -> None:
    """A block period (or conversion factor) was retained on ``<meter>/price``, taking the
    place of the last price: each kind has its own retained topic now."""
    price = PriceEvent(
        provider_id=1, rate_label=b"PEAK", issuer_event_id=1, unit_of_measure=0, currency=826,
        price_trailing_digit=4, price_tier=2, number_of_price_tiers=2, register_tier=2,
        start_time=0, duration_in_minutes=60, price=2450,
    )  # fmt: skip
    period = BlockPeriod(
        provider_id=1, issuer_event_id=2, block_period_start_time=0, block_period_duration=60
    )
    factor = ConversionFactor(
        issuer_event_id=3, start_time=0, conversion_factor=1, conversion_factor_trailing_digit=0
    )
    assert _sent(price) == ("zse/000d6f00000000e5/price", True, "PriceEvent")
    assert _sent(period) == ("zse/000d6f00000000e5/price/block_period", True, "BlockPeriod")
    assert _sent(factor) == (
        "zse/000d6f00000000e5/price/conversion_factor",
        True,
        "ConversionFactor",
    )


def test_the_display_s_price_sensor_has_a_currency_per_unit() -> None:
    """The HAN bridge's price sensor had no unit: Home Assistant's energy dashboard takes a
    price entity in a currency per kWh (or per m³ for gas)."""
    assert price_unit(826, 0) == "GBP/kWh"
    assert price_unit(978, 1) == "EUR/m³"
    assert price_unit(998, 0) == "998/kWh"  # not an ISO 4217 code: shown as its number
    assert price_unit(826, 0x0B) is None  # unitless
    found = han_discovery(
        Topics(), [(IHD, IN_HOME_DISPLAY)], unit_of_measure=1, price_units={IHD: "EUR/m³"}
    )
    configs = {p.topic.split("/")[-2]: p.payload for p in found}
    assert configs["price"]["unit_of_measurement"] == "EUR/m³"
    assert (configs["energy"]["device_class"], configs["energy"]["unit_of_measurement"]) == (
        "gas",
        "m³",
    )
    assert configs["power"]["device_class"] == "volume_flow_rate"
    unknown = han_discovery(Topics(), [(IHD, IN_HOME_DISPLAY)], unit_of_measure=None)
    assert "device_class" not in {p.topic.split("/")[-2]: p.payload for p in unknown}["energy"]


def test_a_reading_s_unit_text_names_its_unit_of_measure() -> None:
    """The HAN bridge learns the meter's unit from the display's own readings."""
    for unit in UnitOfMeasure:
        if unit is not UnitOfMeasure.UNITLESS:
            assert unit_of_text(unit_text(unit)) == unit
            assert unit_of_text(unit_text(unit, demand=True), demand=True) == unit
    assert unit_of_text("furlongs") is None


@pytest.mark.parametrize("unit", [0x0E, 0x7F, 0x8E, 0xFF])
def test_a_reserved_unit_of_measure_is_a_config_error(tmp_path: Path, unit: int) -> None:
    """``[meter] unit_of_measure`` took any of 0-255; a reserved one (SE table D.21) then
    failed the discovery on every connection: it is refused at load, naming the key."""
    path = tmp_path / "esi.toml"
    path.write_text(f"[meter]\nunit_of_measure = {unit}\n")
    with pytest.raises(ConfigError, match=f"unit_of_measure: 0x{unit:02X} is reserved"):
        load_config(path)
    path.write_text("[meter]\nunit_of_measure = 0x81\n")  # m³, BCD
    assert load_config(path).meter is not None


def test_both_bridges_describe_a_device_of_a_known_kind_alike() -> None:
    """The ESI's bridge described a thermostat as ``HAN device`` through the meter, the HAN
    devices' bridge as ``PCT`` on its own: one Home Assistant device (one ``identifiers``)
    whose model went by the config read last. Given the kind and the meter, both give it the
    one description; without the kind, the registry label names it."""
    pct = "00:0d:6f:00:0a:00:00:02"
    esi = device_discovery(Topics(), METER, pct, device_type=PROGRAMMABLE_THERMOSTAT)
    han = han_discovery(Topics("zse/han"), [(pct, PROGRAMMABLE_THERMOSTAT)], meter=METER)
    described = {json.dumps(p.payload["device"], sort_keys=True) for p in [*esi, *han] if p.payload}
    assert [json.loads(d) for d in described] == [
        {
            "identifiers": ["zse_000d6f000a000002"],
            "connections": [["zigbee", pct]],
            "name": "Thermostat 0a000002",
            "manufacturer": "zse",
            "model": "PCT",
            "via_device": "zse_000d6f00000000e5",
        }
    ]
    (labelled,) = [
        p.payload["device"]
        for p in device_discovery(Topics(), METER, pct, label="kitchen")
        if p.payload
    ]
    assert (labelled["name"], labelled["model"]) == ("kitchen 0a000002", "HAN device")


def test_every_se_device_kind_has_one_name_and_model() -> None:
    """Every SE device id of a HAN device (SE 5.7 table 5.13) names and models it, whatever
    the registry label, so that the ESI's bridge, which learns a kind from zigpy, and the
    device's own bridge describe it alike: a smart appliance was ``kitchen 0004``, model
    ``HAN device``, to the one and ``Smart appliance`` to the other. An id of another
    profile is named by the label."""
    kinds = {
        0x0500: ("Energy service interface", "ESI"),
        0x0501: ("Metering device", "Metering device"),
        0x0502: ("In-home display", "IHD"),
        0x0503: ("Thermostat", "PCT"),
        0x0504: ("Load control device", "LCD"),
        0x0505: ("Smart appliance", "Smart appliance"),
        0x0506: ("Prepayment terminal", "Prepayment terminal"),
        0x0507: ("Device management", "Device management"),
    }
    device = "00:0d:6f:00:0a:00:00:04"
    for kind, (title, model) in kinds.items():
        described = han_device(device, kind, label="kitchen")
        assert (described["name"], described["model"]) == (f"{title} 0a000004", model)
    other = han_device(device, 0x0008, label="kitchen")  # a range extender: not SE's own
    assert (other["name"], other["model"]) == ("kitchen 0a000004", "HAN device")


def test_a_display_s_power_sensor_removed_is_an_empty_retained_config() -> None:
    """The power sensor named ``removed`` (a meter that refuses InstantaneousDemand) is an
    empty retained config, withheld or not, the others announced as ever."""
    for withheld in ((), ("power",), ("energy", "power")):
        found = {
            p.topic.split("/")[-2]: p
            for p in han_discovery(
                Topics(), [(IHD, IN_HOME_DISPLAY)], withheld=withheld, removed=("power",)
            )
        }
        assert (found["power"].payload, found["power"].retain) == ("", True)
        assert ("energy" in found) is ("energy" not in withheld)
        assert found["message"].payload["unique_id"] == "zse_000d6f000a000001_message"


def test_a_meter_without_demand_has_its_power_sensor_removed() -> None:
    """A meter without InstantaneousDemand: its power sensor's config is an empty retained
    payload (removed), its energy sensor announced."""
    found = {p.topic.split("/")[-2]: p for p in discovery(Topics(), METER, demand=False)}
    assert found["power"].payload == ""
    assert found["power"].retain
    assert found["energy"].payload["value_template"] == "{{ value_json.summation_delivered }}"


def test_a_device_of_a_known_other_kind_has_its_message_confirmed_removed_unknown_kept() -> None:
    """The "Message confirmed" event config: announced for a display, removed (an empty
    retained payload) for a device known to be of another kind, left alone (nothing
    published on its topic) for a device whose kind is not known."""
    device = "00:0d:6f:00:0a:00:00:02"
    topic = "homeassistant/event/000d6f000a000002/confirmed/config"

    def on_topic(device_type: int | None) -> list[tuple[object, bool]]:
        found = device_discovery(Topics(), METER, device, device_type=device_type)
        return [
            (p.payload if p.payload == "" else "config", p.retain)
            for p in found
            if p.topic == topic
        ]

    assert on_topic(IN_HOME_DISPLAY) == [("config", True)]
    assert on_topic(PROGRAMMABLE_THERMOSTAT) == [("", True)]
    assert on_topic(None) == []
