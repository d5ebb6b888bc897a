"""What an in-home display shows of energy: consumption, demand and cost (sans-IO, #14.5).

A display follows the meter's summation (:mod:`zse.metering.protocol`) and the price in force
(:mod:`zse.price.protocol`). :class:`EnergyLedger` counts the consumption it sees, each part at
the price tier in force when it was used, within the block period in force (a new block period
starts the count again: block thresholds count from its start, SE D.4.2.2.3; so does a period's
end, its duration over, and each repetition of a repeating one, D.4.2.4.2.1.4-5:
:class:`~zse.price.core.BlockPeriods`). :func:`tariff_of`
makes the :class:`~zse.price.core.Tariff` that prices it: flat (one price), TOU (a price per
tier, as the Publish Price commands of each tier said) or block (the Price server's block
thresholds and block prices, D.4.2.2.3-5). :func:`energy_screen` puts the texts together.

Gas: a meter counting m³ under a price per kWh is converted with the Publish Conversion Factor
(the volume correction, D.4.2.4.3) and Publish Calorific Value (MJ/m³, D.4.2.4.4):
kWh = m³ x ConversionFactor x CalorificValue / 3.6.

The display counts only what it saw: consumption before its first reading in a block period
is not known to it, so a display started mid-period places its consumption from the first
block (documented in docs/metering.md).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from zse.metering.core import INTERVAL_NOT_CAPTURED
from zse.metering.formatting import Formatting, Reading, unit_text
from zse.price.core import (
    CalorificValue,
    ConversionFactor,
    PriceAttributes,
    PriceEvent,
    Tariff,
    format_amount,
)
from zse.se.ids import PriceAttribute, block_price_attribute, block_threshold_attribute
from zse.se.types import UNIT_OF_MEASURE_BCD, CalorificValueUnit, UnitOfMeasure

__all__ = [
    "LEDGER_RUNS",
    "EnergyLedger",
    "EnergyScreen",
    "TierPrice",
    "block_attribute_ids",
    "block_attributes",
    "energy_screen",
    "interval_text",
    "priced_units",
    "tariff_of",
]

#: MJ in one kWh.
_MJ_PER_KWH = Fraction(36, 10)


@dataclass(frozen=True, kw_only=True)
class TierPrice:
    """A price in force (from Publish Price, D.4.2.4.1): its tier, raw price, trailing digit
    and unit of measure."""

    tier: int
    price: int
    trailing_digit: int
    unit_of_measure: int = UnitOfMeasure.KWH

    @property
    def value(self) -> Fraction:
        """The price per unit as a number."""
        return Fraction(self.price, 10**self.trailing_digit)

    @classmethod
    def of(cls, price: PriceEvent) -> TierPrice:
        """The price in force as a display keeps it, in its effective tier: 0-48, tiers
        above 15 from Price Tier 0xF and the Extended Price Tier (SE D.4.2.4.1.1.23)."""
        return cls(
            tier=price.effective_price_tier,
            price=price.price,
            trailing_digit=price.price_trailing_digit,
            unit_of_measure=price.unit_of_measure,
        )


#: Runs an :class:`EnergyLedger` keeps in the order used before it folds them (zse's own).
LEDGER_RUNS = 64
#: Lossy ranges kept apart before they are taken as one (their hull: sound, only coarser).
_LOSSY_RANGES = 32


@dataclass
class EnergyLedger:
    """The consumption a display saw, in the order used, as (tier, metered units), within the
    block period ``period`` (what names the period in force, the display's issuer event id
    and start of it; None: no block period in force). The last price seen for each tier is
    kept for a TOU tariff.

    Bounded: the order of use matters only where a block threshold falls (a part is priced
    in the block its cumulative consumption since the start of the period falls in, SE
    D.4.2.2.3; TOU tiers priced per part, D.4.2.4.1). Past ``limit`` runs (and twice the
    size of its last fold) the ledger folds what lies between two of ``thresholds`` (the
    block thresholds the display knows, metered units) into one run per tier: exactly the
    same cost for those thresholds and any of them, and at most (thresholds + 1) x tiers
    runs after a fold (16 x 49 at worst: 15 thresholds, D.4.2.2.2; effective tiers 0-48,
    D.4.2.4.1.1.23). Where a fold reordered tiers it keeps the range (:meth:`exact_for`):
    priced with a threshold inside it, the ledger no longer knows the cost (zse's own
    choice: the block tariff changed mid-period after a fold; no wrong number shown)."""

    usage: list[tuple[int, Fraction]] = field(default_factory=list)
    period: Hashable | None = None
    tier_prices: dict[int, TierPrice] = field(default_factory=dict)
    #: The price in force at the last reading.
    current: TierPrice | None = None
    #: The block thresholds the display knows, in metered units: where a fold keeps order.
    thresholds: Sequence[Fraction] = ()
    #: Runs kept before the first fold (None: never fold).
    limit: int | None = LEDGER_RUNS
    _last: Fraction | None = None
    #: The ranges of consumption (from, to) whose order of tiers a fold dropped.
    _lossy: list[tuple[Fraction, Fraction]] = field(default_factory=list)
    _fold_above: int = 0
    #: The summation before it fell (None: it has not fallen since the last rise).
    _fell_from: Fraction | None = None

    def add(
        self, summation: Fraction, price: TierPrice | None, period: Hashable | None = None
    ) -> None:
        """A new summation reading (metered units), with the price and block period in force.
        A new block period starts the count again; a summation lower than the last (a meter
        replaced or rolled over) is a new baseline, not consumption, unless the next rise
        reaches the value before the fall: then the fall was a glitch (a real meter's summation
        falls to 0 between good readings, tests/vectors/real-meters.json) and only what lies
        above that value is counted (zse's own rule)."""
        if period != self.period:
            self.usage, self.period, self._lossy, self._fold_above = [], period, [], 0
        tier = 0 if price is None else price.tier
        self.current = price
        if price is not None:
            self.tier_prices[tier] = price
        last, self._last = self._last, summation
        if last is not None and summation < last and self._fell_from is None:
            self._fell_from = last
        if last is None or summation <= last:
            return
        fell_from, self._fell_from = self._fell_from, None
        came_back = fell_from is not None and summation >= fell_from
        used = summation - (fell_from if came_back and fell_from is not None else last)
        if used <= 0:
            return
        if self.usage and self.usage[-1][0] == tier:
            self.usage[-1] = (tier, self.usage[-1][1] + used)
        else:
            self.usage.append((tier, used))
            if self.limit is not None and len(self.usage) > max(self.limit, self._fold_above):
                self._fold()

    def _fold(self) -> None:
        """One run per tier between two thresholds, in the order each tier came first."""
        cuts = sorted({Fraction(cut) for cut in self.thresholds if cut > 0})
        spans: dict[int, dict[int, Fraction]] = {}
        position = Fraction(0)
        for tier, used in self.usage:
            left = used
            while left > 0:
                span = bisect_right(cuts, position)
                part = left if span == len(cuts) else min(left, cuts[span] - position)
                runs = spans.setdefault(span, {})
                runs[tier] = runs.get(tier, Fraction(0)) + part
                position += part
                left -= part
        folded: list[tuple[int, Fraction]] = []
        for span, runs in sorted(spans.items()):
            if len(runs) > 1:
                upper = position if span == len(cuts) else cuts[span]
                self._lose(cuts[span - 1] if span else Fraction(0), upper)
            for tier, amount in runs.items():
                if folded and folded[-1][0] == tier:
                    folded[-1] = (tier, folded[-1][1] + amount)
                else:
                    folded.append((tier, amount))
        self.usage = folded
        self._fold_above = 2 * len(folded)

    def _lose(self, low: Fraction, high: Fraction) -> None:
        """Keep (low, high) among the lossy ranges, overlapping ones merged; past
        :data:`_LOSSY_RANGES` all of them as their hull."""
        ranges = sorted([*self._lossy, (low, high)])
        merged = [ranges[0]]
        for start, end in ranges[1:]:
            if start < merged[-1][1]:  # ranges meeting at a threshold stay apart
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        if len(merged) > _LOSSY_RANGES:
            merged = [(merged[0][0], max(end for _, end in merged))]
        self._lossy = merged

    def exact_for(self, thresholds: Iterable[Fraction]) -> bool:
        """Whether the ledger prices exactly as the consumption in the order used would be
        under these block thresholds (metered units): none falls inside a range a fold
        reordered."""
        return not any(low < cut < high for cut in thresholds for low, high in self._lossy)

    @property
    def consumed(self) -> Fraction:
        """Everything counted in the period."""
        return sum((used for _, used in self.usage), Fraction(0))


def priced_units(
    meter_unit: int,
    price_unit: int,
    conversion_factor: ConversionFactor | None = None,
    calorific_value: CalorificValue | None = None,
) -> Fraction:
    """How many priced units one metered unit is: 1, or for m³ priced per kWh the conversion
    factor x the calorific value (MJ/m³) / 3.6 (ValueError when either is missing)."""
    meter = UnitOfMeasure(meter_unit & ~UNIT_OF_MEASURE_BCD)
    price = UnitOfMeasure(price_unit & ~UNIT_OF_MEASURE_BCD)
    if price in (meter, UnitOfMeasure.UNITLESS):
        return Fraction(1)
    if (meter, price) == (UnitOfMeasure.CUBIC_METER, UnitOfMeasure.KWH):
        if conversion_factor is None or calorific_value is None:
            raise ValueError("m³ priced per kWh needs a conversion factor and a calorific value")
        if calorific_value.calorific_value_unit != CalorificValueUnit.MJ_per_m3:
            raise ValueError("m³ priced per kWh needs a calorific value in MJ/m³")
        return conversion_factor.value * calorific_value.value / _MJ_PER_KWH
    raise ValueError(f"a price per {price.name} does not apply to a meter in {meter.name}")


def block_attribute_ids(threshold_count: int, tiers: tuple[int, ...] = (0,)) -> list[int]:
    """The Price attributes a display reads for a block tariff of ``threshold_count``
    thresholds: the thresholds and each tier's block prices (blocks 1 to count + 1)."""
    ids = [block_threshold_attribute(block) for block in range(1, threshold_count + 1)]
    for tier in tiers:
        ids += [block_price_attribute(tier, block) for block in range(1, threshold_count + 2)]
    return ids


def block_attributes(values: Mapping[int, int]) -> PriceAttributes:
    """The block tariff in a Price server's attributes read by id (absent ones left out)."""
    count = values.get(PriceAttribute.BLOCK_THRESHOLD_COUNT, 0)
    thresholds = []
    for block in range(1, min(count, 15) + 1):
        threshold = values.get(block_threshold_attribute(block))
        if threshold is None:
            break
        thresholds.append(threshold)
    prices = {
        (tier, block): values[attr]
        for tier in range(16)
        for block in range(1, 17)
        if (attr := block_price_attribute(tier, block)) in values
    }
    return PriceAttributes(
        block_thresholds=tuple(thresholds),
        threshold_multiplier=values.get(PriceAttribute.THRESHOLD_MULTIPLIER),
        threshold_divisor=values.get(PriceAttribute.THRESHOLD_DIVISOR),
        block_prices=prices,
    )


def tariff_of(
    ledger: EnergyLedger,
    blocks: PriceAttributes | None = None,
    metering_scale: Fraction = Fraction(1),
) -> Tariff | None:
    """The tariff pricing ``ledger``: the block tariff of ``blocks`` when it has block prices
    (its thresholds in the raw units of a meter whose Multiplier / Divisor is
    ``metering_scale``, SE D.4.2.2.3.3), else a price per tier from the prices seen (one
    tier: flat; several: TOU). None when no price is known, or when ``blocks`` do not make a
    tariff (thresholds that decrease, read from a faulty or hostile ESI: no cost shown)."""
    prices = ledger.tier_prices.values()
    if not prices:
        return None
    digit = max(price.trailing_digit for price in prices)
    if blocks is not None and blocks.block_prices:
        try:
            return Tariff.from_attributes(blocks, digit, metering_scale)
        except ValueError:
            return None
    return Tariff.tou(
        {price.tier: price.price * 10 ** (digit - price.trailing_digit) for price in prices},
        digit,
    )


@dataclass(frozen=True, kw_only=True)
class EnergyScreen:
    """The energy page of a display: each a text as printed (None: not known yet)."""

    consumption: str | None
    demand: str | None
    used: str | None
    price: str | None
    cost: str | None
    #: The tier in force, ``tier 1`` to ``tier 48`` (None: no price, or no tier).
    tier: str | None = None


def energy_screen(
    summation: Reading | None,
    demand: Reading | None,
    ledger: EnergyLedger,
    tariff: Tariff | None,
    *,
    meter_unit: int = UnitOfMeasure.KWH,
    priced_per_unit: Fraction = Fraction(1),
    decimals: int = 2,
) -> EnergyScreen:
    """The texts a display prints: the meter's summation and demand as formatted, what was
    used in the period, the price in force per unit and its tier, and the period's cost
    (rounded half up to ``decimals``). A usage the tariff has no price for leaves the cost
    unknown, and so do thresholds the ledger cannot price exactly
    (:meth:`EnergyLedger.exact_for`)."""
    used = ledger.consumed
    unit = unit_text(meter_unit)
    current = ledger.current
    cost: str | None = None
    price: str | None = None
    if tariff is not None:
        block_tiers = {tier for tier, _ in tariff.prices}
        usage = [(tier if tier in block_tiers else 0, amount) for tier, amount in ledger.usage]
        try:
            if ledger.exact_for(tariff.thresholds()):
                cost = format_amount(tariff.cost(usage, priced_per_unit=priced_per_unit), decimals)
        except ValueError:
            cost = None
        if current is not None:
            price_unit = unit_text(current.unit_of_measure)
            price = f"{format_amount(current.value, current.trailing_digit)}/{price_unit}"
    return EnergyScreen(
        consumption=None if summation is None else str(summation),
        demand=None if demand is None else str(demand),
        used=f"{format_amount(used, 3)} {unit}".rstrip(),
        price=price,
        cost=cost,
        tier=f"tier {current.tier}" if current is not None and current.tier else None,
    )


def interval_text(formatting: Formatting, raw: int) -> str:
    """A Get Profile Response interval as a display shows it: its consumption under the
    HistoricalConsumptionFormatting (D.3.2.2.4.6), or ``not captured`` for the value that
    says so (D.3.2.3.1.1.5), which is no consumption."""
    if raw == INTERVAL_NOT_CAPTURED:
        return "not captured"
    return str(formatting.historical(raw))
