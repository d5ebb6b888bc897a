"""``[[tariffs]]`` in the ESI's configuration (SE 1.2 D.4.2.4.5-7, 9): a TOU or block tariff,
its tier labels and standing charge, published at start with its price matrix, block
thresholds and labels; every mistake is one ConfigError line naming the table and key."""

from __future__ import annotations

import asyncio

import pytest

from tests.roles.han_builder import EUIS, build, close
from zse.cli.esi import Session
from zse.config import ConfigError, parse_config
from zse.price import (
    STANDING_CHARGE_NOT_USED,
    BlockThresholds,
    PriceMatrix,
    TierLabels,
)
from zse.price.service import TariffReceived

TOU = """
[[tariffs]]
issuer_tariff_id = 7
label = "Economy 7"
prices = ["0.15", "0.2980"]
tier_labels = ["Night", "Day"]
standing_charge = "0.25"
device = "00:0d:6f:00:0e:00:00:01"
"""

BLOCK = """
[[tariffs]]
issuer_tariff_id = 8
issuer_event_id = 100
block_prices = [["0.10", "0.15", "0.20"], ["0.12", "0.17", "0.22"]]
block_thresholds = [2000, 5000]
threshold_divisor = 1000
tariff_type = 1
"""


def test_a_tou_tariff_is_its_information_matrix_and_labels() -> None:
    (entry,) = parse_config(TOU).tariffs
    tariff = entry.tariff
    assert (tariff.issuer_tariff_id, tariff.tariff_label) == (7, b"Economy 7")
    assert (tariff.charging_scheme, tariff.tariff_type, tariff.digits) == (0, 0, 4)
    assert tariff.number_of_price_tiers_in_use == 2
    assert tariff.standing_charge == 2500  # scaled to the four decimals of the prices
    matrix, labels = entry.values
    assert matrix == PriceMatrix(
        provider_id=1,
        issuer_event_id=1,
        issuer_tariff_id=7,
        prices={(1, 1): 1500, (2, 1): 2980},
        tou=True,
    )
    assert isinstance(labels, TierLabels)
    assert labels.labels == {1: b"Night", 2: b"Day"}
    assert entry.auto_id
    assert entry.target.kind == "device"


def test_a_block_tariff_has_tiers_blocks_and_common_thresholds() -> None:
    (entry,) = parse_config(BLOCK).tariffs
    tariff = entry.tariff
    assert (tariff.charging_scheme, tariff.tariff_type, tariff.tier_block_mode) == (2, 1, 1)
    assert (tariff.number_of_price_tiers_in_use, tariff.number_of_block_thresholds_in_use) == (2, 2)
    assert tariff.block_threshold_divisor == 1000
    assert tariff.standing_charge == STANDING_CHARGE_NOT_USED
    matrix, thresholds = entry.values
    assert matrix.prices[(2, 3)] == 22
    assert matrix.prices[(1, 1)] == 10
    assert isinstance(thresholds, BlockThresholds)
    assert thresholds.thresholds == {0: (2000, 5000)}
    assert [v.issuer_event_id for v in entry.values] == [101, 102]
    assert not entry.auto_id
    one_row = parse_config(BLOCK.replace(', ["0.12", "0.17", "0.22"]', "")).tariffs[0]
    assert one_row.tariff.charging_scheme == 1
    assert set(one_row.values[0].prices) == {(0, 1), (0, 2), (0, 3)}  # no tier


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[tariffs]]\nprices = [1]\n", "[[tariffs]] #1: needs issuer_tariff_id"),
        (
            '[[tariffs]]\nissuer_tariff_id = 1\nprices = [1]\nblock_prices = [["1"]]\n',
            "[[tariffs]] #1: give prices (a TOU tariff) or block_prices",
        ),
        (
            '[[tariffs]]\nissuer_tariff_id = 1\nblock_prices = [["1", "2"]]\n'
            "block_thresholds = [5, 9]\n",
            "[[tariffs]] #1 block_prices: each block_prices row needs 3 prices",
        ),
        (
            '[[tariffs]]\nissuer_tariff_id = 1\nblock_prices = [["1"]]\n',
            "[[tariffs]] #1 block_prices: a block tariff needs block_thresholds",
        ),
        (
            f'[[tariffs]]\nissuer_tariff_id = 1\nprices = [1]\nlabel = "{"x" * 25}"\n',
            "[[tariffs]] #1 label: is 25 octets in UTF-8; at most 24",
        ),
        (
            '[[tariffs]]\nissuer_tariff_id = 1\nprices = [1]\ntier_labels = ["Thirteen char"]\n',
            "[[tariffs]] #1 tier_labels: tier 1 is 13 octets; at most 12",
        ),
        (
            '[[tariffs]]\nissuer_tariff_id = 1\nprices = ["429496730", "0.1"]\n',
            "[[tariffs]] #1 prices: price '429496730' with 1 decimals is too large (Uint32)",
        ),
        (
            '[[tariffs]]\nissuer_tariff_id = 1\nprices = ["0.1"]\nstanding_charge = "1e99"\n',
            "[[tariffs]] #1 standing_charge: price '1e99' is too large",
        ),
    ],
)
def test_a_wrong_tariff_is_one_config_error_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    shown = str(caught.value)
    assert message in shown, shown
    assert "\n" not in shown
    assert shown.count("[[tariffs]]") == 1


async def test_the_esi_publishes_the_configured_tariff_and_a_display_takes_it(tmp_path) -> None:
    han = await build(tmp_path)
    out: list[str] = []
    session = Session(han.esi, parse_config(TOU), out.append, han.clock)
    try:
        await han.esi.provision(EUIS["ihd"])
        ihd = han.add("ihd")
        await ihd.start()
        await asyncio.sleep(5)
        assert await session.apply_config()
        await asyncio.sleep(2)
        values = [e.value for e in han.device_events["ihd"] if isinstance(e, TariffReceived)]
        assert [type(v).__name__ for v in values] == [
            "TariffInformation",
            "PriceMatrix",
            "TierLabels",
        ]
        assert values[1].prices == {(1, 1): 1500, (2, 1): 2980}
        assert ihd.price.tariffs.current(han.clock()).tariff_label == b"Economy 7"
        assert any(line.startswith("tariff 7 to ") and "1 delivered" in line for line in out), out
    finally:
        await close(han)
