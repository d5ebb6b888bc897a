"""#14.5: the in-home display's energy page, sans-IO: consumption counted by tier and block
period, priced by flat, TOU and block tariffs, gas converted; the worked example of
docs/metering.md read from the page and checked number by number."""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zse.metering.display import (
    LEDGER_RUNS,
    EnergyLedger,
    TierPrice,
    block_attribute_ids,
    block_attributes,
    energy_screen,
    interval_text,
    priced_units,
    tariff_of,
)
from zse.metering.formatting import Formatting
from zse.price.core import CalorificValue, ConversionFactor, PriceAttributes, Tariff
from zse.se.ids import PriceAttribute, block_price_attribute, block_threshold_attribute
from zse.se.types import UnitOfMeasure

DOC = Path(__file__).resolve().parents[2] / "docs" / "metering.md"
KWH_FORMAT = Formatting(divisor=1000, summation_formatting=0xB3)
GAS_FORMAT = Formatting(UnitOfMeasure.CUBIC_METER, divisor=1000, summation_formatting=0xB3)
#: The worked example's gas: ConversionFactor 1.02264, CalorificValue 39.2 MJ/m³.
FACTOR = ConversionFactor(
    issuer_event_id=1, start_time=0, conversion_factor=102264, conversion_factor_trailing_digit=0x50
)
CALORIFIC = CalorificValue(
    issuer_event_id=1,
    start_time=0,
    calorific_value=392,
    calorific_value_unit=1,
    calorific_value_trailing_digit=0x10,
)
#: The block tariff's thresholds as the Price server serves them (10 and 30 kWh).
#: docs/metering.md's block tariff: 1,000,000 and 3,000,000 / ThresholdDivisor 100 = 10,000 and
#: 30,000 raw units of the meter (Wh: Divisor 1000) = 10 and 30 kWh (SE D.4.2.2.3.3).
THRESHOLDS = {
    "threshold_multiplier": 1,
    "threshold_divisor": 100,
    "block_thresholds": (1_000_000, 3_000_000),
}


def worked_rows() -> list[dict[str, str]]:
    """The worked example table of docs/metering.md, one dict per row."""
    text = DOC.read_text()
    table = text[text.index("| tariff | prices per kWh |") :].split("\n\n")[0].splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    return [
        dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
        for line in table[2:]
    ]


def test_the_worked_example() -> None:
    rows = worked_rows()
    assert [row["tariff"] for row in rows] == ["flat", "TOU", "block", "gas"]
    for row in rows:
        gas = row["tariff"] == "gas"
        formatting = GAS_FORMAT if gas else KWH_FORMAT
        cell = row["prices per kWh"]
        prices = {n: v for _, n, v in re.findall(r"(tier|block) (\d+): ([\d.]+)", cell)}
        kind = cell.split()[0]
        blocks: PriceAttributes | None = None
        tier_prices = {int(tier): Fraction(value) for tier, value in prices.items()}
        if kind == "block":
            blocks = PriceAttributes(
                block_prices={(0, b): int(p * 10**4) for b, p in tier_prices.items()},
                **THRESHOLDS,  # type: ignore[arg-type]
            )
            tier_prices = {1: Fraction(0)}  # the Publish Price in force (tier 1)
        ledger = EnergyLedger()
        raw = 0
        for shown, tier in re.findall(r"([\d.]+) \((\d+)\)", row["summations seen (tier)"]):
            raw = int(Fraction(shown) * 1000)
            price = TierPrice(
                tier=int(tier),
                price=int(tier_prices[int(tier)] * 10**4),
                trailing_digit=4,
                unit_of_measure=UnitOfMeasure.KWH,
            )
            ledger.add(formatting.summation(raw).value, price)
        per_unit = priced_units(formatting.unit_of_measure, UnitOfMeasure.KWH, FACTOR, CALORIFIC)
        screen = energy_screen(
            formatting.summation(raw),
            None,
            ledger,
            tariff_of(ledger, blocks, Fraction(formatting.multiplier, formatting.divisor)),
            meter_unit=formatting.unit_of_measure,
            priced_per_unit=per_unit,
        )
        assert screen.used == row["used"], row
        assert screen.cost == row["cost shown"], row


def test_gas_conversion_factor_and_calorific_value() -> None:
    per_unit = priced_units(UnitOfMeasure.CUBIC_METER, UnitOfMeasure.KWH, FACTOR, CALORIFIC)
    assert per_unit == Fraction(102264, 100000) * Fraction(392, 10) / Fraction(36, 10)
    assert priced_units(UnitOfMeasure.KWH | 0x80, UnitOfMeasure.KWH) == 1  # BCD kWh is kWh
    with pytest.raises(ValueError, match="conversion factor and a calorific value"):
        priced_units(UnitOfMeasure.CUBIC_METER, UnitOfMeasure.KWH, FACTOR)
    per_kg = dataclasses.replace(CALORIFIC, calorific_value_unit=2)
    with pytest.raises(ValueError, match="in MJ/m³"):
        priced_units(UnitOfMeasure.CUBIC_METER, UnitOfMeasure.KWH, FACTOR, per_kg)
    with pytest.raises(ValueError, match="does not apply"):
        priced_units(UnitOfMeasure.KWH, UnitOfMeasure.CUBIC_METER)


def kwh(tier: int, price: int) -> TierPrice:
    return TierPrice(tier=tier, price=price, trailing_digit=4)


def test_a_new_block_period_starts_the_count_again() -> None:
    ledger = EnergyLedger()
    ledger.add(Fraction(100), kwh(1, 2450), period=7)
    ledger.add(Fraction(105), kwh(1, 2450), period=7)
    assert ledger.consumed == 5
    # the next period: what its first reading brings counts in it, the old period's is gone
    ledger.add(Fraction(108), kwh(1, 2450), period=8)
    assert ledger.consumed == 3
    ledger.add(Fraction(110), kwh(1, 2450), period=8)
    assert ledger.usage == [(1, Fraction(5))]


def test_a_lower_summation_is_a_new_baseline_not_consumption() -> None:
    ledger = EnergyLedger()
    for summation in (100, 104, 3, 5):  # the meter was replaced after 104
        ledger.add(Fraction(summation), kwh(1, 1000))
    assert ledger.consumed == 6


def test_no_price_no_cost_and_a_tier_without_price_no_cost() -> None:
    ledger = EnergyLedger()
    ledger.add(Fraction(1), None)
    ledger.add(Fraction(2), None)
    screen = energy_screen(None, None, ledger, tariff_of(ledger))
    assert (screen.used, screen.price, screen.cost) == ("1.000 kWh", None, None)
    blocks = PriceAttributes(block_prices={(3, 1): 100})  # a tier-3 price only
    ledger.add(Fraction(3), kwh(1, 1000))
    assert energy_screen(None, None, ledger, tariff_of(ledger, blocks)).cost is None


def test_thresholds_that_decrease_show_no_cost_not_an_error() -> None:
    """An ESI's block thresholds that decrease (faulty or hostile) make no tariff: the
    energy page shows the use and no cost (it raised ValueError)."""
    ledger = EnergyLedger()
    ledger.add(Fraction(1), kwh(1, 1000))
    ledger.add(Fraction(50), kwh(1, 1000))
    blocks = PriceAttributes(block_thresholds=(30, 10), block_prices={(0, 1): 100, (0, 2): 200})
    assert tariff_of(ledger, blocks) is None
    screen = energy_screen(None, None, ledger, tariff_of(ledger, blocks))
    assert (screen.used, screen.cost) == ("49.000 kWh", None)


def test_block_attributes_read_back() -> None:
    ids = block_attribute_ids(2, (0, 1))
    assert ids == [
        block_threshold_attribute(1),
        block_threshold_attribute(2),
        *(block_price_attribute(0, b) for b in (1, 2, 3)),
        *(block_price_attribute(1, b) for b in (1, 2, 3)),
    ]
    values = {
        PriceAttribute.BLOCK_THRESHOLD_COUNT: 2,
        PriceAttribute.THRESHOLD_DIVISOR: 100,
        block_threshold_attribute(1): 1000,
        block_threshold_attribute(2): 3000,
        block_price_attribute(0, 1): 1500,
        block_price_attribute(1, 3): 2500,
    }
    assert block_attributes(values) == PriceAttributes(
        block_thresholds=(1000, 3000),
        threshold_divisor=100,
        block_prices={(0, 1): 1500, (1, 3): 2500},
    )


@given(
    raws=st.lists(st.integers(0, 2**48 - 1), min_size=1, max_size=5).map(sorted),
    multiplier=st.integers(0, 2**24 - 1),
    divisor=st.integers(0, 2**24 - 1),
)
def test_the_screen_shows_multiplier_times_raw_over_divisor(
    raws: list[int], multiplier: int, divisor: int
) -> None:
    formatting = Formatting(multiplier=multiplier, divisor=divisor, summation_formatting=0xB3)
    ledger = EnergyLedger()
    for raw in raws:
        ledger.add(formatting.summation(raw).value, kwh(1, 2450))
    screen = energy_screen(formatting.summation(raws[-1]), None, ledger, tariff_of(ledger))
    scale = Fraction(multiplier or 1, divisor or 1)
    assert screen.consumption == f"{formatting.summation(raws[-1]).text} kWh"
    assert Fraction(screen.consumption.split()[0]) == int(raws[-1] * scale * 1000) / Fraction(1000)
    used = (raws[-1] - raws[0]) * scale
    assert ledger.consumed == used
    assert screen.cost is not None
    assert abs(Fraction(screen.cost) - used * Fraction(2450, 10**4)) <= Fraction(1, 200)


def test_block_thresholds_are_in_the_meter_s_raw_units() -> None:
    """ThresholdMultiplier / ThresholdDivisor make a threshold comparable with Metering's
    CurrentBlockPeriodConsumptionDelivered (SE D.4.2.2.3.3, as ZBOSS quotes it), a raw value:
    the meter's Multiplier / Divisor still apply. zse took the scaled threshold as kWh, so on
    a meter counting Wh (Divisor 1000) every block was 1000 times too large."""
    ledger = EnergyLedger()
    price = TierPrice(tier=0, price=1000, trailing_digit=4)
    ledger.add(Fraction(0), price)
    ledger.add(Fraction(3), price)  # 3 kWh used
    blocks = PriceAttributes(
        block_thresholds=(1000, 2000),  # raw Wh: 1 kWh and 2 kWh on this meter
        threshold_multiplier=1,
        threshold_divisor=1,
        block_prices={(0, 1): 1000, (0, 2): 2000, (0, 3): 4000},
    )
    tariff = tariff_of(ledger, blocks, Fraction(1, KWH_FORMAT.divisor))
    assert tariff is not None
    assert tariff.thresholds() == [1, 2]
    # 1 kWh x 0.10 + 1 kWh x 0.20 + 1 kWh x 0.40 = 0.70
    assert energy_screen(None, None, ledger, tariff).cost == "0.70"


def test_an_interval_not_captured_is_shown_as_such_not_as_consumption():
    """0xFFFFFF in a Get Profile Response is an interval not captured (D.3.2.3.1.1.5): the
    demo showed it as 16777.215 kWh under a divisor of 1000."""
    formatting = Formatting(
        UnitOfMeasure.KWH, divisor=1000, historical_consumption_formatting=0x9B
    )  # 3 left (suppressed), 3 right
    assert interval_text(formatting, 512) == "0.512 kWh"
    assert interval_text(formatting, 0xFFFFFE) == "16777.214 kWh"  # the largest captured
    assert interval_text(formatting, 0xFFFFFF) == "not captured"


#: Readings as (metered units used since the last, tier in force); a negative step is a
#: meter replaced (a lower summation: a new baseline).
READINGS = st.lists(st.tuples(st.integers(-3, 40), st.integers(0, 3)), max_size=60)
THRESHOLD_SETS = st.lists(st.integers(1, 400), max_size=4, unique=True).map(sorted)


def fed(readings: list[tuple[int, int]], thresholds: list[int], limit: int | None) -> EnergyLedger:
    """A ledger told ``thresholds`` (metered units) fed ``readings`` from summation 1000."""
    ledger = EnergyLedger(thresholds=[Fraction(t) for t in thresholds], limit=limit)
    summation = Fraction(1000)
    ledger.add(summation, kwh(0, 1000))
    for step, tier in readings:
        summation = summation + step if step >= 0 else Fraction(-step)
        ledger.add(summation, kwh(tier, 1000 + tier))
    return ledger


def block_tariff(thresholds: list[int], prices: list[int]) -> Tariff:
    """Tiers 0-3, a price for each block (``prices`` taken in turn), thresholds in metered
    units."""
    blocks = range(1, len(thresholds) + 2)
    return Tariff(
        prices={
            (tier, block): prices[(tier * 16 + block) % len(prices)]
            for tier in range(4)
            for block in blocks
        },
        price_trailing_digit=4,
        block_thresholds=thresholds,
    )


@given(
    readings=READINGS,
    told=THRESHOLD_SETS,
    other=THRESHOLD_SETS,
    limit=st.integers(1, 6),
    prices=st.lists(st.integers(0, 9999), min_size=20, max_size=20),
    data=st.data(),
)
def test_a_bounded_ledger_prices_as_the_unbounded_one(
    readings: list[tuple[int, int]],
    told: list[int],
    other: list[int],
    limit: int,
    prices: list[int],
    data: st.DataObject,
) -> None:
    """Folded down to ``limit`` runs, the ledger costs exactly what the ledger keeping every
    run costs under the thresholds it was told and any of them (SE D.4.2.2.3: blocks by
    cumulative consumption); under thresholds it was not told, either the same or it says
    it cannot (no wrong number on the screen)."""
    bounded, unbounded = fed(readings, told, limit), fed(readings, told, None)
    assert bounded.consumed == unbounded.consumed
    some = sorted(data.draw(st.sets(st.sampled_from(told)) if told else st.just(set())))
    for thresholds in (told, some, []):
        tariff = block_tariff(thresholds, prices)
        assert bounded.exact_for(tariff.thresholds())
        assert tariff.cost(bounded.usage) == tariff.cost(unbounded.usage)
        screens = [energy_screen(None, None, ledger, tariff) for ledger in (bounded, unbounded)]
        assert screens[0] == screens[1]
    tariff = block_tariff(other, prices)
    if bounded.exact_for(tariff.thresholds()):
        assert tariff.cost(bounded.usage) == tariff.cost(unbounded.usage)
    else:
        assert energy_screen(None, None, bounded, tariff).cost is None


@pytest.mark.parametrize("thresholds", [(), (10, 30), tuple(range(10, 160, 10))])
def test_the_ledger_stays_bounded_over_10000_tier_flips(thresholds: tuple[int, ...]) -> None:
    """Two TOU tiers flipping at each reading under no block period ("until changed"): the
    ledger was one run per flip (10,000); it stays within LEDGER_RUNS (15 thresholds, two
    tiers: 16 x 2 runs after a fold) and costs the same."""
    told = [Fraction(t) for t in thresholds]
    bounded, unbounded = EnergyLedger(thresholds=told), EnergyLedger(thresholds=told, limit=None)
    largest = 0
    for reading in range(10_001):
        for ledger in (bounded, unbounded):
            ledger.add(Fraction(reading, 100), kwh(1 + reading % 2, 1000 + 500 * (reading % 2)))
        largest = max(largest, len(bounded.usage))
    assert len(unbounded.usage) == 10_000
    assert largest <= LEDGER_RUNS
    tariff = block_tariff(list(thresholds), list(range(100, 2100, 100)))
    assert tariff.cost(bounded.usage) == tariff.cost(unbounded.usage)


def test_thresholds_changed_after_a_fold_show_no_cost_not_a_wrong_one() -> None:
    """A block tariff read again mid-period with a threshold inside what a fold reordered:
    the cost is not known (before any fold, every threshold prices exactly)."""
    readings = [(1, 1), (1, 2)] * 40  # 80 runs over 80 units, no thresholds told
    few = fed(readings[:10], [], LEDGER_RUNS)
    tariff = block_tariff([5], list(range(100, 2100, 100)))
    assert few.exact_for(tariff.thresholds())
    assert tariff.cost(few.usage) == tariff.cost(fed(readings[:10], [], None).usage)
    folded = fed(readings, [], LEDGER_RUNS)
    assert len(folded.usage) < LEDGER_RUNS
    assert not folded.exact_for(tariff.thresholds())
    assert energy_screen(None, None, folded, tariff).cost is None
    assert energy_screen(None, None, folded, block_tariff([], [1] * 20)).cost == "0.01"


#: Readings as (metered units used since the last, tier, 0: the next block period, the
#: thresholds told from then on or None: those before); a negative step is a meter replaced.
CHANGING = st.lists(
    st.tuples(
        st.integers(-2, 12),
        st.integers(0, 3),
        st.integers(0, 15),
        st.none() | st.lists(st.integers(1, 120), max_size=4, unique=True).map(sorted),
    ),
    min_size=10,
    max_size=80,
)


@given(
    readings=CHANGING,
    limit=st.integers(1, 6),
    prices=st.lists(st.integers(0, 9999), min_size=20, max_size=20),
    data=st.data(),
)
def test_a_bounded_ledger_told_other_thresholds_prices_as_the_unbounded_one(
    readings: list[tuple[int, int, int, list[int] | None]],
    limit: int,
    prices: list[int],
    data: st.DataObject,
) -> None:
    """As :func:`test_a_bounded_ledger_prices_as_the_unbounded_one`, with the thresholds
    told changing between readings (the block tariff read again), block periods changing
    and meters replaced: under thresholds told since the period began, the same cost;
    under any thresholds, the same cost or none shown (never a wrong one)."""
    bounded, unbounded = EnergyLedger(limit=limit), EnergyLedger(limit=None)
    told: list[int] = []
    summation, steady, period = Fraction(1000), True, 0
    for step, tier, stays, thresholds in readings:
        summation = summation + step if step >= 0 else Fraction(-step)
        if not stays:  # told before any use in the new period
            period, steady = period + 1, True
        elif thresholds is not None and thresholds != told:
            steady = False
        told = told if thresholds is None else thresholds
        for ledger in (bounded, unbounded):
            ledger.thresholds = [Fraction(t) for t in told]
            ledger.add(summation, kwh(tier, 1000 + tier), period)
    assert bounded.consumed == unbounded.consumed
    within = st.integers(1, max(1, int(bounded.consumed)))  # where a threshold moves a cost
    other = sorted(data.draw(st.sets(within, max_size=4)))
    for thresholds in (told, other, []):
        tariff = block_tariff(thresholds, prices)
        if thresholds is told and steady:
            assert bounded.exact_for(tariff.thresholds())
        if bounded.exact_for(tariff.thresholds()):
            assert tariff.cost(bounded.usage) == tariff.cost(unbounded.usage)
            screens = [energy_screen(None, None, ledger, tariff) for ledger in (bounded, unbounded)]
            assert screens[0] == screens[1]
        else:
            assert energy_screen(None, None, bounded, tariff).cost is None
