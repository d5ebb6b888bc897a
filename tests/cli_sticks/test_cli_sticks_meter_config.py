"""#14.2: ``[meter]`` in the ``zse esi`` configuration: the ESI hosts the Metering server with the
table's Formatting attributes and update periods (defaults filled in); without the table it
hosts none; a wrong key or value is one line naming the file, table and key."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tests.cli_sticks.sticks_helpers import Operator, serving, sim_factory
from zse.cli._radio import RadioOptions, esi_descriptor
from zse.config import ConfigError, EsiConfig, parse_config
from zse.se.ids import METERING
from zse.se.ids import MeteringAttribute as A
from zse.sim import Air
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

DEFAULTS = {
    A.UNIT_OF_MEASURE: 0,
    A.MULTIPLIER: 1,
    A.DIVISOR: 1000,
    A.SUMMATION_FORMATTING: 0x33,
    A.DEMAND_FORMATTING: 0x33,
    A.HISTORICAL_CONSUMPTION_FORMATTING: 0x33,
    A.METERING_DEVICE_TYPE: 0,
    A.DEFAULT_UPDATE_PERIOD: 30,
    A.FAST_POLL_UPDATE_PERIOD: 5,
}


def test_the_meter_table() -> None:
    assert parse_config("").meter is None
    assert parse_config("[meter]\n").meter == DEFAULTS
    config = parse_config(
        "[meter]\nunit_of_measure = 1\ndivisor = 100\nfast_poll_update_period = 2\n"
    )
    assert config.meter == {
        **DEFAULTS,
        A.UNIT_OF_MEASURE: 1,
        A.DIVISOR: 100,
        A.FAST_POLL_UPDATE_PERIOD: 2,
    }


def test_the_demand_key() -> None:
    """``demand = false``: a meter without InstantaneousDemand (SE D.3.2.2.1.1), its
    attribute values as ever; the default, and ``demand = true``, one with it."""
    assert parse_config("").meter_demand
    assert parse_config("[meter]\n").meter_demand
    assert parse_config("[meter]\ndemand = true\n").meter_demand
    config = parse_config("[meter]\ndemand = false\ndivisor = 100\n")
    assert not config.meter_demand
    assert config.meter == {**DEFAULTS, A.DIVISOR: 100}


def test_the_historical_freeze_time() -> None:
    """``historical_freeze_time = "HH:MM"``: when the Historical Consumption set's local day
    begins (SE 1.2 D.3.2.2.5), held as the attribute holds it (hours << 8 | minutes); default
    midnight; anything else one line."""
    assert parse_config("").meter_freeze_time == 0
    assert parse_config("[meter]\n").meter_freeze_time == 0
    config = parse_config('[meter]\nhistorical_freeze_time = "06:30"\n')
    assert config.meter_freeze_time == 0x061E
    for wrong in ('"24:00"', '"6:60"', '"06:3"', '"noon"', "630"):
        with pytest.raises(ConfigError, match="historical_freeze_time") as caught:
            parse_config(f"[meter]\nhistorical_freeze_time = {wrong}\n")
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value", ["0", '"false"', "1500", "[]", "{}"])
def test_a_demand_that_is_not_a_boolean_is_one_line(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[meter]\ndemand = {value}\n")
    taken = "expected true or false (false: a meter without InstantaneousDemand), got "
    assert str(caught.value).startswith(f"config: [meter] demand: {taken}")
    assert "\n" not in str(caught.value)


def test_a_demand_value_for_a_meter_without_demand_is_a_config_error() -> None:
    """The attribute values given with ``meter_demand=False`` (a configuration built in
    code: the file has no key for a demand value) hold no InstantaneousDemand."""
    with pytest.raises(ConfigError) as caught:
        EsiConfig(meter={**DEFAULTS, A.INSTANTANEOUS_DEMAND: 1500}, meter_demand=False)
    assert str(caught.value) == (
        "command line: [meter] demand: false, yet an InstantaneousDemand value"
        " (attribute 0x0400) is given"
    )
    assert EsiConfig(meter={A.INSTANTANEOUS_DEMAND: 1500}).meter_demand
    config = parse_config("[meter]\ndemand = false\n")
    with pytest.raises(ConfigError, match="demand: false, yet"):
        dataclasses.replace(config, meter={**DEFAULTS, A.INSTANTANEOUS_DEMAND: 0})


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[meter]\ndivsor = 1\n", "config: [meter]: unknown key 'divsor'"),
        (
            "[meter]\ndivisor = 0x1000000\n",
            "config: [meter] divisor: 16777216 is outside 1..16777215",
        ),
        (  # a display divides by it: accepted before, and shown as if it were 1 by zse's
            "[meter]\ndivisor = 0\n",
            "config: [meter] divisor: 0 is outside 1..16777215",
        ),
        ("[meter]\nmultiplier = 0\n", "config: [meter] multiplier: 0 is outside 1..16777215"),
        (
            "[meter]\nunit_of_measure = true\n",
            "config: [meter] unit_of_measure: expected int, got a boolean",
        ),
        ("meter = 1\n", "config: [meter]: must be a table, got int"),
        (  # a period of 0 passed here and failed later, as the meter was built
            "[meter]\nfast_poll_update_period = 0\n",
            "config: [meter] fast_poll_update_period: 0 is outside 1..255",
        ),
    ],
)
def test_a_wrong_meter_table_is_one_line(text: str, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert str(caught.value).startswith(error)


def test_the_ezsp_descriptor_names_metering_only_with_a_meter() -> None:
    assert METERING in esi_descriptor(meter=True).input_clusters
    assert METERING not in esi_descriptor().input_clusters


async def test_zse_esi_serves_the_meter_of_its_configuration(tmp_path: Path) -> None:
    config = parse_config('[esi]\ndatabase = "han.db"\n[meter]\ndivisor = 100\n', base=tmp_path)
    seen: list[RadioOptions] = []
    apps: list[Any] = []
    air = Air(seed=6)
    factory = sim_factory(air, seen)

    async def recording(options: RadioOptions) -> Any:
        apps.append(await factory(options))
        return apps[-1]

    operator = Operator()
    stop = asyncio.Event()
    task = serving(config, operator, recording, lambda: 800_000_000, stop)
    await operator.sees("ESI running")
    assert seen[0].meter
    assert METERING in apps[0].radio.descriptors[SE_ENDPOINT_ID].input_clusters
    stop.set()
    assert await task == 0
