"""#14.2: ``[meter]`` in the ``zse esi`` configuration: the ESI hosts the Metering server with the
table's Formatting attributes and update periods (defaults filled in); without the table it
hosts none; a wrong key or value is one line naming the file, table and key."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.cli_sticks.sticks_helpers import Operator, serving, sim_factory
from zse.cli._radio import RadioOptions, esi_descriptor
from zse.config import ConfigError, parse_config
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


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[meter]\ndivsor = 1\n", "config: [meter]: unknown key 'divsor'"),
        (
            "[meter]\ndivisor = 0x1000000\n",
            "config: [meter] divisor: 16777216 is outside 0..16777215",
        ),
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
