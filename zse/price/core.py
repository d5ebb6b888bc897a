"""Price essentials (SE D.4) as a sans-IO core: what an ESI publishes, what a client keeps.

:class:`PriceEvent` is one Publish Price (D.4.2.4.1) as plain values. :class:`PriceSchedule`
holds the prices a side knows and answers "what applies now" and "what is scheduled" with the
spec's rules: a price starts at its start time (0 = now) and lasts its duration (0xFFFF =
until changed); where two prices overlap, the one with the newer issuer event id wins
(D.4.4.2); an event id already known with the same start is a repeat, not a new price.
Time is always an argument: seconds since the ZigBee epoch (2000-01-01 00:00 UTC).

The SE 1.1/1.2 block-pricing essentials: :class:`BlockPeriod` (Publish Block Period,
D.4.2.4.2), :class:`ConversionFactor` and :class:`CalorificValue` (D.4.2.4.3-4), kept by
start time in a :class:`Published` timeline; :class:`PriceAttributes`, the server's block
tariff attributes (D.4.2.2); and :class:`Tariff`, the cost of a consumption under a flat,
TOU-tier or block tariff (D.4.2.2.2-5), with :func:`format_amount` for display.

The other SE 1.2 publications (D.4.2.4.8, 10-14): :class:`Co2Value`, :class:`BillingPeriod`,
:class:`ConsolidatedBill` and :class:`CppEvent`, each kept in a :class:`Published` timeline
per tariff type (:class:`ByTariffType`), :class:`CurrencyConversion` in one timeline, as the
block periods are, and :class:`CreditPayment`, kept by payment date in
:class:`CreditPayments`.

The SE 1.2 tariffs (D.4.2.4.5-7, 9, 15): :class:`TariffInformation` (Publish Tariff
Information), :class:`PriceMatrix`, :class:`BlockThresholds` and :class:`TierLabels`, each
tied to a tariff by its issuer tariff id, and :class:`Tariffs`, what one side holds: the
tariff information in a :class:`Published` timeline per tariff type (the block period rule),
and the matrix, thresholds and labels of each tariff held. A matrix, thresholds or labels
too long for one frame go in several commands (:meth:`PriceMatrix.parts`; the budget is one
unfragmented APS-encrypted unicast, :func:`zse.se.frames.max_zcl_payload`, as Get Profile's);
:class:`Tariffs` puts a receiver's parts back together (:meth:`Tariffs.add_part`): a matrix
with a part missing is not in force.
"""

from __future__ import annotations

import calendar
import dataclasses
import enum
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from zse.errors import InvalidFrame
from zse.se.frames import max_zcl_payload
from zse.se.ids import (
    CREDIT_PAYMENTS_NAMED,
    MAX_TIER,
    PriceAttribute,
    block_price_attribute,
    block_threshold_attribute,
    credit_payment_attributes,
    received_block_threshold_attribute,
    received_tier_label_attribute,
    tier_label_attribute,
)
from zse.se.types import BlockPeriodControl, BlockPeriodDurationType, PriceControl
from zse.time.core import from_zigbee, to_zigbee

__all__ = [
    "BLOCK_DURATION_UNTIL_CHANGED",
    "DURATION_UNTIL_CHANGED",
    "MAX_CREDIT_PAYMENT_REF",
    "MAX_OVERDUE_AMOUNT",
    "MAX_TARIFF_LABEL",
    "MAX_TIER",
    "MAX_TIER_LABEL",
    "PRICE_VALUE_KINDS",
    "STANDING_CHARGE_NOT_USED",
    "START_NOW",
    "TIER_BLOCK_MODE_NOT_USED",
    "TRAILERS_NOT_USED",
    "BillingPeriod",
    "BlockPeriod",
    "BlockPeriods",
    "BlockThresholds",
    "ByTariffType",
    "CalorificValue",
    "Co2Value",
    "ConsolidatedBill",
    "ConversionFactor",
    "CppEvent",
    "CreditPayment",
    "CreditPayments",
    "CurrencyConversion",
    "InForce",
    "PartOutcome",
    "PriceAttributes",
    "PriceEvent",
    "PriceMatrix",
    "PriceSchedule",
    "Published",
    "Tariff",
    "TariffCancellation",
    "TariffInformation",
    "TariffPart",
    "TariffValue",
    "Tariffs",
    "TierLabels",
    "add_timebase",
    "format_amount",
    "joined_tier",
    "split_tier",
]

#: Start time meaning "now" (D.4.2.4.1.1.9).
START_NOW = 0
#: Duration meaning "until changed" (D.4.2.4.1.1.10).
DURATION_UNTIL_CHANGED = 0xFFFF


@dataclass(frozen=True, kw_only=True)
class PriceEvent:
    """One price as Publish Price carries it (D.4.2.4.1); optional trailers may be None.

    The SE 1.2 trailers carry tiers above 15: ``price_tier`` 0xF with
    ``extended_price_tier`` 0x01-0x21 is tier 16-48 (:attr:`effective_price_tier`,
    :func:`split_tier`), and likewise the number of price tiers and the register tier;
    ``generation_tier`` (1-48) and ``number_of_generation_tiers`` are whole values."""

    provider_id: int
    rate_label: bytes
    issuer_event_id: int
    unit_of_measure: int
    currency: int
    price_trailing_digit: int
    price_tier: int
    number_of_price_tiers: int
    register_tier: int
    start_time: int
    duration_in_minutes: int
    price: int
    price_ratio: int | None = None
    generation_price: int | None = None
    generation_price_ratio: int | None = None
    alternate_cost_delivered: int | None = None
    alternate_cost_unit: int | None = None
    alternate_cost_trailing_digit: int | None = None
    number_of_block_thresholds: int | None = None
    price_control: int | None = None
    # SE 1.2 trailers (D.4.2.4.1.1.20-24)
    number_of_generation_tiers: int | None = None
    generation_tier: int | None = None
    extended_number_of_price_tiers: int | None = None
    extended_price_tier: int | None = None
    extended_register_tier: int | None = None

    def __post_init__(self) -> None:
        if len(self.rate_label) > 12:
            raise ValueError(f"rate label is {len(self.rate_label)} bytes; at most 12")
        for name, bits in _WIDTHS.items():
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1 << bits:
                raise ValueError(f"{name} must fit in {bits} bits, got {value}")
        given = [name for name in _TRAILERS if getattr(self, name) is not None]
        if given:
            missing = [n for n in _TRAILERS[: _TRAILERS.index(given[-1])] if n not in given]
            if missing:
                raise ValueError(
                    f"{given[-1]} is given but the earlier optional field {missing[0]} is not: "
                    "the optional fields of Publish Price are positional (D.4.2.4.1); give "
                    "the earlier ones their values or their 'not used' values"
                )

    def starts(self, received_at: int) -> int:
        """Absolute start: a start time of 0 means when it was received."""
        return received_at if self.start_time == START_NOW else self.start_time

    def ends(self, received_at: int) -> int | None:
        """Absolute end (exclusive), or None for "until changed"."""
        if self.duration_in_minutes == DURATION_UNTIL_CHANGED:
            return None
        return self.starts(received_at) + 60 * self.duration_in_minutes

    def ended(self, received_at: int) -> bool:
        """Whether this price, received at ``received_at``, had ended by then: its start
        (0 = now) plus its duration (D.4.2.4.1.1.9-10) is not after it."""
        end = self.ends(received_at)
        return end is not None and end <= received_at

    def resolved(self, received_at: int) -> PriceEvent:
        """This price with its absolute start (D.4.2.4.1.1.9): a start time of 0 ("now")
        replaced by ``received_at``, the duration as it is (0xFFFF stays "until changed").
        What a server re-sends later, since 0 would mean the receiver's "now"."""
        return dataclasses.replace(self, start_time=self.starts(received_at))

    @property
    def acknowledgement_required(self) -> bool:
        """Price Control bit 0: the client must send Price Acknowledgement (D.4.2.4.1.1.19)."""
        return bool((self.price_control or 0) & PriceControl.Price_Acknowledgement_Required)

    @property
    def effective_price_tier(self) -> int:
        """The tier in force, 0 (no tier) to 48: the Price Tier nibble, or with it 0xF the
        Extended Price Tier added to 15 (D.4.2.4.1.1.23: 0x01 is tier 16)."""
        return joined_tier(self.price_tier, self.extended_price_tier)

    @property
    def effective_number_of_price_tiers(self) -> int:
        """The number of price tiers, 0 to 48, joined the same way from the Number of
        Price Tiers nibble and Extended Number of Price Tiers (D.4.2.4.1.1.22)."""
        return joined_tier(self.number_of_price_tiers, self.extended_number_of_price_tiers)

    @property
    def effective_register_tier(self) -> int:
        """The Metering CurrentTierNSummationDelivered register in use, 0 to 48, joined the
        same way from the Register Tier nibble and Extended Register Tier (D.4.2.4.1.1.24)."""
        return joined_tier(self.register_tier, self.extended_register_tier)

    def tier_problem(self) -> str | None:
        """Why this price's tiers cannot be published as they are (an extended field beside
        a 4-bit field under 0xF, which a receiver would not count, or a tier above 48), or
        None. A received price is kept as it came; this is for a server's own."""
        for nibble, extended, name in (
            (self.price_tier, self.extended_price_tier, "price_tier"),
            (
                self.number_of_price_tiers,
                self.extended_number_of_price_tiers,
                "number_of_price_tiers",
            ),
            (self.register_tier, self.extended_register_tier, "register_tier"),
        ):
            if extended and nibble != _EXTENDED:
                return (
                    f"extended_{name} {extended} needs {name} 15 (0xF) to count, not {nibble} "
                    "(D.4.2.4.1.1.22-24)"
                )
            if (joined := joined_tier(nibble, extended)) > MAX_TIER:
                return f"{name} 15 + extended_{name} {extended} is {joined}, above {MAX_TIER}"
        if (self.generation_tier or 0) > MAX_TIER:
            return f"generation_tier {self.generation_tier} is above {MAX_TIER}"
        if (self.number_of_generation_tiers or 0) > MAX_TIER:
            return (
                f"number_of_generation_tiers {self.number_of_generation_tiers} is above {MAX_TIER}"
            )
        return None

    # -- the wire form (zse.price.wire.Price.publish_price fields) ---------------------------

    def to_fields(self, current_time: int) -> dict[str, Any]:
        """The Publish Price fields, with ``current_time`` (D.4.2.4.1.1.4)."""
        fields: dict[str, Any] = {
            "provider_id": self.provider_id,
            "rate_label": self.rate_label,
            "issuer_event_id": self.issuer_event_id,
            "current_time": current_time,
            "unit_of_measure": self.unit_of_measure,
            "currency": self.currency,
            "price_trailing_digit_and_price_tier": (self.price_trailing_digit << 4)
            | self.price_tier,
            "number_of_price_tiers_and_register_tier": (self.number_of_price_tiers << 4)
            | self.register_tier,
            "start_time": self.start_time,
            "duration_in_minutes": self.duration_in_minutes,
            "price": self.price,
        }
        for name in _TRAILERS:
            fields[name] = getattr(self, name)
        return fields

    @classmethod
    def from_fields(cls, command: Any) -> PriceEvent:
        """From a decoded Publish Price (any object with its field attributes), every
        trailer it carries kept; :class:`~zse.errors.InvalidFrame` for values no price has
        (a rate label over 12 bytes)."""
        digit_tier = int(command.price_trailing_digit_and_price_tier)
        tiers = int(command.number_of_price_tiers_and_register_tier)
        trailers = {
            name: None if getattr(command, name) is None else int(getattr(command, name))
            for name in _TRAILERS
        }
        try:
            return cls(
                provider_id=int(command.provider_id),
                rate_label=bytes(command.rate_label),
                issuer_event_id=int(command.issuer_event_id),
                unit_of_measure=int(command.unit_of_measure),
                currency=int(command.currency),
                price_trailing_digit=digit_tier >> 4,
                price_tier=digit_tier & 0x0F,
                number_of_price_tiers=tiers >> 4,
                register_tier=tiers & 0x0F,
                start_time=int(command.start_time),
                duration_in_minutes=int(command.duration_in_minutes),
                price=int(command.price),
                **trailers,
            )
        except ValueError as exc:
            raise InvalidFrame(str(exc)) from None


#: Unsigned field widths in bits (D.4.2.4.1).
_WIDTHS = {
    "provider_id": 32,
    "issuer_event_id": 32,
    "unit_of_measure": 8,
    "currency": 16,
    "price_trailing_digit": 4,
    "price_tier": 4,
    "number_of_price_tiers": 4,
    "register_tier": 4,
    "start_time": 32,
    "duration_in_minutes": 16,
    "price": 32,
    "price_ratio": 8,
    "generation_price": 32,
    "generation_price_ratio": 8,
    "alternate_cost_delivered": 32,
    "alternate_cost_unit": 8,
    "alternate_cost_trailing_digit": 8,
    "number_of_block_thresholds": 8,
    "price_control": 8,
    "number_of_generation_tiers": 8,
    "generation_tier": 8,
    "extended_number_of_price_tiers": 8,
    "extended_price_tier": 8,
    "extended_register_tier": 8,
}
_TRAILERS = tuple(f.name for f in dataclasses.fields(PriceEvent) if f.default is None)

#: The optional Publish Price fields before the SE 1.2 extended tiers, each "not used"
#: (D.4.2.4.1.1.12-21: 0xFF / 0xFFFFFFFF; Price Control 0 asks nothing; no generation
#: tiers): what a price carrying only a tier above 15 puts before its extended fields.
TRAILERS_NOT_USED: Mapping[str, int] = MappingProxyType(
    {
        "price_ratio": 0xFF,
        "generation_price": 0xFFFFFFFF,
        "generation_price_ratio": 0xFF,
        "alternate_cost_delivered": 0xFFFFFFFF,
        "alternate_cost_unit": 0xFF,
        "alternate_cost_trailing_digit": 0xFF,
        "number_of_block_thresholds": 0xFF,
        "price_control": 0x00,
        "number_of_generation_tiers": 0x00,
        "generation_tier": 0x00,
    }
)
#: The 4-bit tier value that defers to the extended field (D.4.2.4.1.1.7-8).
_EXTENDED = 0x0F


def joined_tier(nibble: int, extended: int | None) -> int:
    """A tier (or a number of tiers) from its 4-bit field and its SE 1.2 extended field
    (D.4.2.4.1.1.22-24): the nibble, or when it is 0xF ("see the extended field") 15 plus
    the extended value (0x00 "refer to the 4-bit field": tier 15; 0x01 tier 16 ... 0x21 tier
    48). An extended value beside a nibble under 0xF does not count. The rule as the SE 1.2
    enumerations read (zsmartsystems' and ZigbeeNet's generated ``ExtendedPriceTierEnum``,
    Exegin's ``ZCL_CAL_PRICE_TIER_EXT = 0xF``, zigpy's ``RegisteredTier.Extended_Tier``)."""
    if nibble != _EXTENDED or not extended:
        return nibble
    return _EXTENDED + extended


def split_tier(tier: int) -> tuple[int, int]:
    """The (4-bit field, extended field) pair that carries ``tier`` 0-48, the inverse of
    :func:`joined_tier`: tiers 0-14 in the nibble with the extended field 0, tiers 15-48 as
    0xF and ``tier - 15``."""
    if not 0 <= tier <= MAX_TIER:
        raise ValueError(f"tier {tier} is not 0-{MAX_TIER}")
    return (tier, 0) if tier < _EXTENDED else (_EXTENDED, tier - _EXTENDED)


@dataclass(frozen=True, slots=True)
class _Entry:
    event: PriceEvent
    received_at: int
    cut: int | None = None  # ends here: a newer price starts then (D.4.4 overlaps)
    # absolute start and end (None: until changed), worked out once: every frame reads them
    start: int = field(init=False, compare=False)
    end: int | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        end = self.event.ends(self.received_at)
        if self.cut is not None and (end is None or self.cut < end):
            end = self.cut
        object.__setattr__(self, "start", self.event.starts(self.received_at))
        object.__setattr__(self, "end", end)

    def overlaps(self, other: _Entry) -> bool:
        return (other.end is None or self.start < other.end) and (
            self.end is None or other.start < self.end
        )

    @property
    def resolved(self) -> PriceEvent:
        return self.event.resolved(self.received_at)

    def active(self, now: int) -> bool:
        return self.start <= now and (self.end is None or now < self.end)


class PriceSchedule:
    """The prices one side knows, with the overlap rules of SE D.4.4.2: nested and
    overlapping prices of one provider are not kept side by side. A newer price (larger
    issuer event id) replaces every older one it overlaps, except that a price in force when
    a newer one arrives for later ends when the newer one starts; an older price overlapping
    a newer one already held is not taken. What is over never comes back: after a newer price
    ends, the older one it overlapped is not in force again. (Silicon Labs' certified
    price client and Freescale's SE stack keep their tables by these rules.)

    ``limit``: at most that many prices are kept (None: no bound, a server's own schedule);
    a receiver's must be bounded, or a sender of ever more future prices makes it keep them
    all. Full, a price that starts after every one kept is not taken, and one that starts
    earlier takes the place of the latest, as Silicon Labs' certified price client does (its
    table: 2 to 255 prices, "the spec requires Price clients to save at least two")."""

    def __init__(self, *, limit: int | None = None) -> None:
        if limit is not None and limit < 2:
            raise ValueError(f"a price schedule keeps at least 2 prices, not {limit}")
        self.limit = limit
        self._entries: list[_Entry] = []

    def add(self, event: PriceEvent, now: int) -> bool:
        """Record ``event`` received (or published) at ``now``; False if it is a repeat: the
        same price, or the same price with its start "now" given as the absolute start it
        was received at (a server's answer to Get Current / Scheduled Prices), or if it is
        not taken: an older price overlapping a newer one held (the overlap rules above), or
        a price starting after every one kept when :attr:`limit` are kept (:meth:`full`).
        A price not taken changes nothing kept."""
        entries = list(self._entries)
        for entry in entries:
            if (
                entry.event.issuer_event_id == event.issuer_event_id
                and entry.event.provider_id == event.provider_id
            ):
                if entry.event == event or entry.resolved == event.resolved(now):
                    return False
                entries.remove(entry)  # same id, new content: the latest word counts
                break
        if self.superseded(event, now):
            return False  # an older price where a newer one is held: not taken
        new = _Entry(event, now)
        overlapped = [
            e for e in entries if e.event.provider_id == event.provider_id and e.overlaps(new)
        ]
        for entry in overlapped:
            index = entries.index(entry)
            if entry.active(now) and now < new.start:
                entries[index] = dataclasses.replace(entry, cut=new.start)
            else:
                del entries[index]
        entries = [e for e in entries if e.end is None or e.end > now]
        if self.limit is not None and len(entries) >= self.limit:
            latest = max(entries, key=lambda e: (e.start, e.event.issuer_event_id))
            if new.start >= latest.start:
                return False  # full, and it would be the latest: not taken
            entries.remove(latest)
        self._entries = [*entries, new]
        self._expire(now)
        return True

    def superseded(self, event: PriceEvent, now: int) -> bool:
        """Whether ``event``, received at ``now``, overlaps a newer price of its provider
        held (a larger issuer event id): what :meth:`add` does not take (D.4.4.2)."""
        new = _Entry(event, now)
        return any(
            e.event.provider_id == event.provider_id
            and e.event.issuer_event_id > event.issuer_event_id
            and e.overlaps(new)
            for e in self._entries
        )

    def full(self, event: PriceEvent, now: int) -> bool:
        """Whether :attr:`limit` prices are kept (those not ended at ``now``) and ``event``
        would start after all of them: what :meth:`add` refuses for want of space."""
        if self.limit is None:
            return False
        kept = [e for e in self._entries if e.end is None or e.end > now]
        start = event.starts(now)
        return len(kept) >= self.limit and all(start >= e.start for e in kept)

    def forget(self, provider_id: int, issuer_event_id: int) -> bool:
        """Drop the price with these ids (e.g. to bound what a receiver keeps); False if
        it is not known."""
        for entry in self._entries:
            event = entry.event
            if event.issuer_event_id == issuer_event_id and event.provider_id == provider_id:
                self._entries.remove(entry)
                return True
        return False

    def current(self, now: int, *, absolute: bool = False) -> PriceEvent | None:
        """The price in force at ``now``: among active prices, the newest issuer event id;
        as received, or with ``absolute`` its start "now" resolved to when it was received
        (:meth:`PriceEvent.resolved`: what a server answers Get Current Price with)."""
        active = [e for e in self._entries if e.active(now)]
        if not active:
            return None
        newest = max(active, key=lambda e: e.event.issuer_event_id)
        return newest.resolved if absolute else newest.event

    def scheduled(self, start: int, count: int, now: int) -> list[PriceEvent]:
        """What Get Scheduled Prices resends (D.4.2.3.2): prices still in force after
        ``start`` (0 = now), current and future, by start time; ``count`` 0 = all. The
        receiver resolves overlaps with the same rule, so nothing it needs is left out.
        Each has its absolute start (D.4.2.4.1.1.9: a start "now" re-sent as 0 would start
        again at the receiver's now and run its whole duration past the server's end)."""
        self._expire(now)
        since = now if start == 0 else start
        events = [e for e in self._entries if e.end is None or e.end > since]
        events.sort(key=lambda e: (e.start, e.event.issuer_event_id))
        chosen = [e.resolved for e in events]
        return chosen if count == 0 else chosen[:count]

    def kept(self, now: int) -> list[tuple[tuple[int, int], int, int | None]]:
        """The prices kept at ``now``, what is over forgotten first (as :meth:`scheduled`):
        each one's (provider id, issuer event id), absolute start and end (exclusive; None
        for "until changed"; a price cut short by a newer one ends when that one starts), in
        no particular order. Copies no price: for a receiver that checks what it keeps on
        every frame, where :meth:`scheduled` would resolve each one anew."""
        self._expire(now)
        return [
            ((e.event.provider_id, e.event.issuer_event_id), e.start, e.end) for e in self._entries
        ]

    def entries(self, now: int) -> list[tuple[PriceEvent, int, int | None]]:
        """What is kept at ``now``, what is over forgotten first: each price as given, when
        it was received (or published) and where a newer price cut it short (None: not
        cut), in the order kept; what :meth:`restore` takes back (a server's store)."""
        self._expire(now)
        return [(e.event, e.received_at, e.cut) for e in self._entries]

    def next_end(self) -> int | None:
        """The earliest time at which a price kept ends or is superseded for good, what
        :meth:`entries` then leaves out (None: none will): its end (its start plus its
        duration, D.4.2.4.1.1.9-10, or where a newer price cut it short), or for a price
        "until changed" the time a newer one "until changed" has started too (D.4.4.2).
        Possibly past: the prices are forgotten when next asked about."""
        ends = [e.end for e in self._entries if e.end is not None]
        open_ended = sorted(
            (e for e in self._entries if e.end is None), key=lambda e: -e.event.issuer_event_id
        )
        newer: int | None = None  # the earliest start of an open-ended price of a larger id
        for _, same_id in itertools.groupby(open_ended, key=lambda e: e.event.issuer_event_id):
            starts = [e.start for e in same_id]
            if newer is not None:
                ends.extend(max(start, newer) for start in starts)
            newer = min(starts if newer is None else [newer, *starts])
        return min(ends, default=None)

    def restore(self, event: PriceEvent, received_at: int, cut: int | None = None) -> None:
        """Keep a price as :meth:`entries` gave it (read back from a store): kept as it was,
        the rules of :meth:`add` applied when it was first kept; a price of the same ids
        is replaced."""
        self.forget(event.provider_id, event.issuer_event_id)
        self._entries.append(_Entry(event, received_at, cut))

    def _expire(self, now: int) -> None:
        """Forget prices that ended, and prices superseded for good by a newer one."""
        self._entries = [e for e in self._entries if e.end is None or e.end > now]
        open_ended = [e for e in self._entries if e.end is None and e.start <= now]
        if open_ended:
            newest = max(open_ended, key=lambda e: e.event.issuer_event_id)
            self._entries = [
                e
                for e in self._entries
                if not (
                    e.start <= now
                    and e.event.issuer_event_id < newest.event.issuer_event_id
                    and e.end is None
                )
            ]

    def __len__(self) -> int:
        return len(self._entries)


# --- Block pricing (SE 1.1/1.2) ------------------------------------------------------------


class _PublishValues:
    """The plain values of one Publish command: each an unsigned field of the width
    ``_WIDTHS`` gives (checked), converted from and to the wire's fields."""

    _WIDTHS: ClassVar[Mapping[str, int]]
    #: The field holding the start time (0 = now).
    _START: ClassVar[str] = "start_time"

    def __post_init__(self) -> None:
        for name, bits in self._WIDTHS.items():
            value = getattr(self, name)
            if not 0 <= value < 1 << bits:
                raise ValueError(f"{name} must fit in {bits} bits, got {value}")

    def to_fields(self) -> dict[str, Any]:
        """The Publish command's fields."""
        return {name: getattr(self, name) for name in self._WIDTHS}

    def with_start(self, start: int) -> Self:
        """The same value starting at ``start``."""
        values = {name: getattr(self, name) for name in self._WIDTHS}
        values[self._START] = start
        return type(self)(**values)

    @classmethod
    def from_fields(cls, command: Any) -> Self:
        """From a decoded Publish command (any object with its field attributes)."""
        return cls(**{name: int(getattr(command, name)) for name in cls._WIDTHS})


#: Block Period Duration "until changed" (D.4.2.4.2.1.4: the 24-bit maximum, as the text
#: zsmartsystems' Price cluster XML carries has it).
BLOCK_DURATION_UNTIL_CHANGED = 0xFFFFFF
#: The last UTCTime (0xFFFFFFFF is "invalid", ZCL 3.12.2.2.4): an end after it is no end.
_LAST_UTC_TIME = 0xFFFFFFFE
_DAY = 86_400
#: Seconds in one unit of the fixed timebases (Duration Type bits 0-3: minutes, days, weeks).
_TIMEBASE_SECONDS: Mapping[int, int] = {0: 60, 1: _DAY, 2: 7 * _DAY}


def add_timebase(start: int, count: int, duration_type: int) -> int | None:
    """``start`` (UTCTime) plus ``count`` units of the timebase in bits 0-3 of a Block /
    Billing Period Duration Type (D.4.2.4.2.1.6: 0 minutes, 1 days, 2 weeks, 3 months);
    None for a reserved timebase (4-15: not known, so no end, zse's own reading) or a time
    after the last UTCTime. Months are calendar months in UTC: the same day ``count`` months
    on, the last day of a shorter month; with Duration Control "end of timebase" (bits 4-7 =
    1) a start on the last day of its month runs to the last day of the month reached. Why:
    the SE text (as zsmartsystems' XML carries it) has the duration run from the start or the
    end of the respective day, week or month, the start time given at 00:00:00 or 23:59:59 of
    the applicable date; Silicon Labs' price-common-time.c adds months to the date and puts
    "end of timebase" on the month's last day (it also moves the start to the first or last
    day of its month, which zse does not: the start is the publisher's)."""
    timebase = duration_type & 0x0F
    if timebase in _TIMEBASE_SECONDS:
        end = start + count * _TIMEBASE_SECONDS[timebase]
        return end if end <= _LAST_UTC_TIME else None
    if timebase != BlockPeriodDurationType.Months:
        return None
    base = from_zigbee(start)
    months = base.month - 1 + count
    year, month = base.year + months // 12, months % 12 + 1
    if year > from_zigbee(_LAST_UTC_TIME).year:
        return None
    last = calendar.monthrange(year, month)[1]
    month_end = base.day == calendar.monthrange(base.year, base.month)[1]
    at_end = duration_type & 0xF0 == BlockPeriodDurationType.End_Of_Timebase
    day = last if at_end and month_end else min(base.day, last)
    end = to_zigbee(base.replace(year=year, month=month, day=day))
    return end if end <= _LAST_UTC_TIME else None


@dataclass(frozen=True, kw_only=True)
class BlockPeriod(_PublishValues):
    """One Publish Block Period (D.4.2.4.2, SE 1.2 form): when block thresholds count from
    and for how long. ``block_period_start_time`` 0 means now; the duration is in the
    timebase of ``block_period_duration_type`` (bits 0-3: 0 minutes, 1 days, 2 weeks,
    3 months; :func:`add_timebase`), 0xFFFFFF "until changed". A period ends at its start
    plus its duration; one whose Block Period Control bit 1 is set (Repeating Block,
    D.4.2.4.2.1.5: "a block period repeats on expiry") starts again there with the same
    duration, as Silicon Labs' price server adds the next period at the end of the current
    one (price-server.c, sl_zigbee_af_price_server_refresh_block_period)."""

    _WIDTHS: ClassVar[Mapping[str, int]] = {
        "provider_id": 32,
        "issuer_event_id": 32,
        "block_period_start_time": 32,
        "block_period_duration": 24,
        "block_period_control": 8,
        "block_period_duration_type": 8,
        "tariff_type": 8,
        "tariff_resolution_period": 8,
    }
    _START: ClassVar[str] = "block_period_start_time"

    provider_id: int
    issuer_event_id: int
    block_period_start_time: int
    block_period_duration: int
    block_period_control: int = 0
    block_period_duration_type: int = 0
    tariff_type: int = 0
    tariff_resolution_period: int = 0

    @property
    def start_time(self) -> int:
        """The start time, as the timeline orders by."""
        return self.block_period_start_time

    @property
    def acknowledgement_required(self) -> bool:
        """Block Period Control bit 0 (D.4.2.4.2.1.5)."""
        return bool(self.block_period_control & BlockPeriodControl.Price_Acknowledgement_Required)

    @property
    def repeating(self) -> bool:
        """Block Period Control bit 1, Repeating Block (D.4.2.4.2.1.5)."""
        return bool(self.block_period_control & BlockPeriodControl.Repeating_Block)

    def end(self, start: int) -> int | None:
        """When the period kept from ``start`` (its absolute start) ends, the first second
        it is over: start plus duration in its timebase; None when it does not end (until
        changed, a reserved timebase, after the last UTCTime)."""
        if self.block_period_duration == BLOCK_DURATION_UNTIL_CHANGED:
            return None
        return add_timebase(start, self.block_period_duration, self.block_period_duration_type)

    def occurrence(self, start: int, now: int) -> tuple[int, int | None] | None:
        """The (start, end) of the period kept from ``start`` that is in force at ``now``
        (``start`` <= ``now``): itself until its end; past its end, a repeating period's
        repetition holding ``now`` (the k-th starts k durations after ``start``, counted
        from the start so that months keep their day), anything else None (over). A
        repeating period of no duration never repeats. The repetition is found in a few
        steps whatever the span (no stepping through the repetitions): exactly for the
        fixed timebases; for months from the months between ``start`` and ``now``, one
        less when the k-th starts later in ``now``'s month."""
        end = self.end(start)
        if end is None or now < end:
            return start, end
        if not self.repeating or end <= start:
            return None
        duration, kind = self.block_period_duration, self.block_period_duration_type
        if kind & 0x0F == BlockPeriodDurationType.Months:
            first, last = from_zigbee(start), from_zigbee(now)
            k = ((last.year - first.year) * 12 + last.month - first.month) // duration
        else:  # minutes, days, weeks: every repetition as long as the first
            k = (now - start) // (end - start)
        begin = add_timebase(start, k * duration, kind)
        if begin is None or begin > now:  # in now's month, after now: the one before holds it
            k -= 1
            begin = add_timebase(start, k * duration, kind)
        assert begin is not None  # k - 1 durations end at least a month before now's
        return begin, add_timebase(start, (k + 1) * duration, kind)


@dataclass(frozen=True, kw_only=True)
class ConversionFactor(_PublishValues):
    """One Publish Conversion Factor (D.4.2.4.3): m³ of gas to kWh; the trailing digit is in
    bits 4-7 of its octet."""

    _WIDTHS: ClassVar[Mapping[str, int]] = {
        "issuer_event_id": 32,
        "start_time": 32,
        "conversion_factor": 32,
        "conversion_factor_trailing_digit": 8,
    }

    issuer_event_id: int
    start_time: int
    conversion_factor: int
    conversion_factor_trailing_digit: int

    @property
    def value(self) -> Fraction:
        """The factor as a number."""
        return _scaled(self.conversion_factor, self.conversion_factor_trailing_digit >> 4)


@dataclass(frozen=True, kw_only=True)
class CalorificValue(_PublishValues):
    """One Publish Calorific Value (D.4.2.4.4): MJ per m³ or per kg (``calorific_value_unit``
    1 or 2); the trailing digit is in bits 4-7 of its octet."""

    _WIDTHS: ClassVar[Mapping[str, int]] = {
        "issuer_event_id": 32,
        "start_time": 32,
        "calorific_value": 32,
        "calorific_value_unit": 8,
        "calorific_value_trailing_digit": 8,
    }

    issuer_event_id: int
    start_time: int
    calorific_value: int
    calorific_value_unit: int
    calorific_value_trailing_digit: int

    @property
    def value(self) -> Fraction:
        """The calorific value as a number."""
        return _scaled(self.calorific_value, self.calorific_value_trailing_digit >> 4)


class _Timed(Protocol):
    @property
    def issuer_event_id(self) -> int: ...

    @property
    def start_time(self) -> int: ...

    def with_start(self, start: int) -> Self: ...


T = TypeVar("T", bound=_Timed)


class Published(Generic[T]):
    """Published values in force one after another by start time (block periods, conversion
    factors, calorific values). A start time of 0 means when it was published or received;
    an issuer event id already known is replaced (the latest word counts). The value in
    force is the one with the latest start not after ``now`` (the newer issuer event id on
    a tie); older ones are forgotten. At most ``limit`` are kept: the value in force and
    the earliest to come (the latest starts are dropped). A start of 0 is kept
    resolved: what a server re-sends (:meth:`since`) and its attributes (``absolute``)
    carry that absolute start (D.4.2.4.2.1.3: 0 would mean the receiver's now)."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._items: list[tuple[int, T]] = []

    def add(self, item: T, now: int) -> bool:
        """Keep ``item``; False if the very same item is already known (a repeat), or the
        same with its start "now" given as the absolute start it was kept with."""
        start = now if item.start_time == START_NOW else item.start_time
        for index, (known_start, known) in enumerate(self._items):
            if self.same(known, item):
                if known == item or known.with_start(known_start) == item.with_start(start):
                    return False
                del self._items[index]
                break
        self._items.append((start, item))
        self._items.sort(key=self.order)
        self._expire(now)
        # Full: the latest starts go, never the value in force (first once expired), as
        # Silicon Labs' price client drops its latest when its table is full.
        in_force = self.current(now)
        while len(self._items) > self.limit and self._items[-1][1] is not in_force:
            del self._items[-1]
        return True

    def order(self, entry: tuple[int, T]) -> tuple[int, ...]:
        """How kept values are ordered, the last started in force: by start, then issuer
        event id (the newer in force on a tie)."""
        start, item = entry
        return (start, item.issuer_event_id)

    def same(self, known: T, item: T) -> bool:
        """Whether ``item`` is a new word on ``known`` (it replaces it): here the same issuer
        event id; the Calendar cluster's timeline names a calendar by its provider and Issuer
        Calendar ID instead (:class:`zse.calendar.core.Calendars`)."""
        return known.issuer_event_id == item.issuer_event_id

    def current(self, now: int, *, absolute: bool = False) -> T | None:
        """The value in force at ``now``, or None; as received, or with ``absolute`` its
        start "now" resolved to when it was kept (a repeating block period's: the start of
        its repetition in force, :meth:`BlockPeriods.span`)."""
        found = self._in_force(now)
        if found is None:
            return None
        start, item = found
        return item.with_start(start) if absolute else item

    def _in_force(self, now: int) -> tuple[int, T] | None:
        """The value in force at ``now`` and the absolute start of its :meth:`span` there:
        the latest started, unless that one is over (what it superseded stays superseded)."""
        started = [(start, item) for start, item in self._items if start <= now]
        if not started:
            return None
        start, item = started[-1]
        span = self.span(start, item, now)
        return None if span is None else (span[0], item)

    def span(self, start: int, item: T, now: int) -> tuple[int, int | None] | None:
        """The (start, end) in force at ``now`` of ``item`` kept from ``start`` (``start``
        <= ``now``), or None when it is over by then: here (start, None), in force until the
        next one starts; :class:`BlockPeriods` ends a block period at its duration."""
        del now
        return start, None

    def since(self, earliest: int, min_issuer_event_id: int, count: int, now: int) -> list[T]:
        """What a Get command resends (D.4.2.3.4-6): the value in force at ``earliest`` (0 =
        now) and those after it, by start time, with an issuer event id of at least
        ``min_issuer_event_id`` (0xFFFFFFFF: any); ``count`` 0 = all. Each carries its
        absolute start, a start "now" resolved to when it was kept."""
        self._expire(now)
        since = now if earliest == 0 else earliest
        in_force = self._in_force(since)
        chosen = [
            item.with_start(in_force[0] if in_force and item is in_force[1] else start)
            for start, item in self._items
            if (start > since or (in_force is not None and item is in_force[1]))
            and (min_issuer_event_id == _ANY_EVENT or item.issuer_event_id >= min_issuer_event_id)
        ]
        return chosen if count == 0 else chosen[:count]

    def held(self, now: int, *, absolute: bool = False) -> list[T]:
        """What is kept at ``now`` (in force and to come), by start time, what is over
        forgotten first; with ``absolute`` a start "now" resolved to when it was kept."""
        self._expire(now)
        return [item.with_start(start) if absolute else item for start, item in self._items]

    def entries(self, now: int) -> list[tuple[int, T]]:
        """What is kept at ``now`` (as :meth:`held`), each value as given with the absolute
        start it was kept with; what :meth:`restore` takes back (a server's store)."""
        self._expire(now)
        return list(self._items)

    def next_end(self) -> int | None:
        """The earliest time at which a value kept is superseded or over, what
        :meth:`entries` then leaves out (None: none will): the start of the value after the
        first, at which the first is no longer in force, or the first's own end before that
        (:meth:`last_end`). Possibly past: forgotten when next asked about."""
        ends: list[int | None] = [self._items[1][0]] if len(self._items) > 1 else []
        if self._items:
            ends.append(self.last_end(*self._items[0]))
        return min((end for end in ends if end is not None), default=None)

    def last_end(self, start: int, item: T) -> int | None:
        """When ``item`` kept from ``start`` is over for good if nothing supersedes it
        (None: never); here never, :class:`BlockPeriods` at a block period's end."""
        del start, item
        return None

    def restore(self, start: int, item: T) -> None:
        """Keep ``item`` from ``start`` as :meth:`entries` gave it (read back from a store),
        a value of the same issuer event id replaced; the bound is :meth:`add`'s to keep."""
        self._items = [(s, i) for s, i in self._items if not self.same(i, item)]
        self._items.append((start, item))
        self._items.sort(key=self.order)

    def drop(self, unwanted: Callable[[T], bool]) -> int:
        """Forget every value ``unwanted`` picks (a cancelled tariff); how many went."""
        before = len(self._items)
        self._items = [(start, item) for start, item in self._items if not unwanted(item)]
        return before - len(self._items)

    def _expire(self, now: int) -> None:
        in_force = self.current(now)
        self._items = [
            (start, item) for start, item in self._items if start > now or item is in_force
        ]

    def __len__(self) -> int:
        return len(self._items)


class BlockPeriods(Published[BlockPeriod]):
    """The block periods of one tariff type: a :class:`Published` timeline whose period is
    in force from its start until the next one starts or its own end (start plus duration,
    :meth:`BlockPeriod.end`), whichever comes first; a repeating one
    (:attr:`BlockPeriod.repeating`) runs on in repetitions of its duration until the next
    starts. Past its end a period is no longer current: the attributes drop it and Get Block
    Periods leaves it out (the SE text of Get Block Period(s), as zsmartsystems' XML has it:
    its Start Time is the minimum ending time of the periods resent; Silicon Labs'
    price-server.c answers only periods ending after it, and takes the active period as the
    one started and not ended, price-common.c sl_zigbee_af_price_common_server_get_active_index).
    What an earlier period would have been is not in force again when a later one is over
    (it was superseded: zse's own, conservative reading)."""

    def span(self, start: int, item: BlockPeriod, now: int) -> tuple[int, int | None] | None:
        """:meth:`BlockPeriod.occurrence`."""
        return item.occurrence(start, now)

    def last_end(self, start: int, item: BlockPeriod) -> int | None:
        """A period's end; a repeating one does not end by itself (None)."""
        return None if item.repeating else item.end(start)


class _Typed(_Timed, Protocol):
    @property
    def tariff_type(self) -> int: ...


V = TypeVar("V", bound=_Typed)


class ByTariffType(Generic[V]):
    """One :class:`Published` timeline per tariff type (Tariff Type bits 0-3: 0 delivered,
    1 received, SE 1.2 D.4.2.4.2.1.7): a delivered and a received value are in force side
    by side, each with the timeline's rules and bound (``limit`` per type)."""

    def __init__(
        self, limit: int = 16, timeline: Callable[[int], Published[V]] = Published
    ) -> None:
        self.limit = limit
        #: What each type's timeline is (:class:`BlockPeriods` for block periods).
        self._make = timeline
        self._timelines: dict[int, Published[V]] = {}

    def add(self, item: V, now: int) -> bool:
        """Keep ``item`` in its type's timeline (:meth:`Published.add`)."""
        return self._timeline(item).add(item, now)

    def _timeline(self, item: V) -> Published[V]:
        kind = item.tariff_type & 0x0F
        timeline = self._timelines.get(kind)
        if timeline is None:
            timeline = self._timelines[kind] = self._make(self.limit)
        return timeline

    def current(self, now: int, tariff_type: int = 0, *, absolute: bool = False) -> V | None:
        """The value of ``tariff_type`` in force at ``now`` (:meth:`Published.current`)."""
        timeline = self._timelines.get(tariff_type & 0x0F)
        return None if timeline is None else timeline.current(now, absolute=absolute)

    def since(
        self, earliest: int, min_issuer_event_id: int, count: int, tariff_type: int, now: int
    ) -> list[V]:
        """What a Get command with a tariff type resends: :meth:`Published.since` of the
        values of ``tariff_type`` (bits 0-3)."""
        timeline = self._timelines.get(tariff_type & 0x0F)
        if timeline is None:
            return []
        return timeline.since(earliest, min_issuer_event_id, count, now)

    def held(self, now: int, *, absolute: bool = False) -> list[V]:
        """Every value kept at ``now``, by tariff type then start (:meth:`Published.held`)."""
        return [
            item
            for _, timeline in sorted(self._timelines.items())
            for item in timeline.held(now, absolute=absolute)
        ]

    def entries(self, now: int) -> list[tuple[int, V]]:
        """:meth:`Published.entries` of every tariff type, by type."""
        return [
            entry
            for _, timeline in sorted(self._timelines.items())
            for entry in timeline.entries(now)
        ]

    def next_end(self) -> int | None:
        """The earliest :meth:`Published.next_end` of every tariff type."""
        ends = [timeline.next_end() for timeline in self._timelines.values()]
        return min((end for end in ends if end is not None), default=None)

    def restore(self, start: int, item: V) -> None:
        """:meth:`Published.restore` into ``item``'s tariff type's timeline."""
        self._timeline(item).restore(start, item)

    def drop(self, tariff_type: int, unwanted: Callable[[V], bool]) -> int:
        """Forget the values of ``tariff_type`` that ``unwanted`` picks; how many went."""
        timeline = self._timelines.get(tariff_type & 0x0F)
        return 0 if timeline is None else timeline.drop(unwanted)

    def __len__(self) -> int:
        return sum(len(timeline) for timeline in self._timelines.values())


#: Min Issuer Event ID meaning "any" (D.4.2.3.5.1.2).
_ANY_EVENT = 0xFFFFFFFF


@dataclass
class PriceAttributes:
    """The Price server's block tariff attributes (D.4.2.2), as plain values: tier labels
    (tier 1-48), block thresholds (1-15, in the metering unit scaled by ``threshold_multiplier``
    / ``threshold_divisor``), block prices by (tier, block) with tier 0 = no tier, and the
    commodity's standing charge. The block period, conversion factor and calorific value
    attributes follow the published values in force (:meth:`values`)."""

    tier_labels: dict[int, bytes] = field(default_factory=dict)
    block_thresholds: tuple[int, ...] = ()
    threshold_multiplier: int | None = None
    threshold_divisor: int | None = None
    block_prices: dict[tuple[int, int], int] = field(default_factory=dict)
    commodity_type: int | None = None
    standing_charge: int | None = None

    def values(
        self,
        block_period: BlockPeriod | None = None,
        conversion_factor: ConversionFactor | None = None,
        calorific_value: CalorificValue | None = None,
        *,
        in_force: InForce | None = None,
    ) -> dict[int, Any]:
        """Every attribute with a value, by id (its type is the wire's, :mod:`zse.price.wire`);
        with ``in_force``, the SE 1.2 Tariff Information and Billing Information attributes
        of the delivered tariff, CO2 value, billing period and consolidated bill in force
        (:meth:`InForce.values`), and the tier labels that tariff published (Publish Tier
        Labels, D.4.2.4.9): a tier it labels shows its label, not :attr:`tier_labels`'s (the
        label a display got with the command is the one it reads), a tier it does not label
        keeps the application's."""
        labels = dict(self.tier_labels)
        if in_force is not None and in_force.labels is not None:
            labels.update(in_force.labels.labels)
        out: dict[int, Any] = {tier_label_attribute(t): v for t, v in labels.items()}
        for block, threshold in enumerate(self.block_thresholds, start=1):
            out[block_threshold_attribute(block)] = threshold
        if self.block_thresholds:
            out[PriceAttribute.BLOCK_THRESHOLD_COUNT] = len(self.block_thresholds)
        for (tier, block), price in self.block_prices.items():
            out[block_price_attribute(tier, block)] = price
        optional: dict[int, Any] = {
            PriceAttribute.THRESHOLD_MULTIPLIER: self.threshold_multiplier,
            PriceAttribute.THRESHOLD_DIVISOR: self.threshold_divisor,
            PriceAttribute.COMMODITY_TYPE: self.commodity_type,
            PriceAttribute.STANDING_CHARGE: self.standing_charge,
        }
        if block_period is not None:
            optional[PriceAttribute.START_OF_BLOCK_PERIOD] = block_period.start_time
            optional[PriceAttribute.BLOCK_PERIOD_DURATION] = block_period.block_period_duration
            optional[PriceAttribute.BLOCK_PERIOD_DURATION_TYPE] = (
                block_period.block_period_duration_type
            )
        if conversion_factor is not None:
            optional[PriceAttribute.CONVERSION_FACTOR] = conversion_factor.conversion_factor
            optional[PriceAttribute.CONVERSION_FACTOR_TRAILING_DIGIT] = (
                conversion_factor.conversion_factor_trailing_digit
            )
        if calorific_value is not None:
            optional[PriceAttribute.CALORIFIC_VALUE] = calorific_value.calorific_value
            optional[PriceAttribute.CALORIFIC_VALUE_UNIT] = calorific_value.calorific_value_unit
            optional[PriceAttribute.CALORIFIC_VALUE_TRAILING_DIGIT] = (
                calorific_value.calorific_value_trailing_digit
            )
        out.update((attr, value) for attr, value in optional.items() if value is not None)
        if in_force is not None:
            out.update(in_force.values(block_period))
        return out


@dataclass(frozen=True)
class InForce:
    """The SE 1.2 values in force a server's attributes follow (tariff type delivered): the
    tariff (Publish Tariff Information), CO2 value, billing period and consolidated bill,
    each with its start "now" resolved."""

    tariff: TariffInformation | None = None
    co2: Co2Value | None = None
    billing_period: BillingPeriod | None = None
    bill: ConsolidatedBill | None = None
    #: The tariff's tier labels and block thresholds (Publish Tier Labels / Block
    #: Thresholds of the same issuer tariff id), once whole.
    labels: TierLabels | None = None
    thresholds: BlockThresholds | None = None

    def values(self, block_period: BlockPeriod | None = None) -> dict[int, Any]:
        """The Tariff Information set (SE 1.2 D.4.2.2.7: TariffLabel, NumberOfPriceTiersInUse,
        NumberOfBlockThresholdsInUse, TierBlockMode, UnitOfMeasure, Currency,
        PriceTrailingDigit from the tariff, TariffResolutionPeriod from ``block_period``, CO2,
        CO2Unit, CO2TrailingDigit from the CO2 value) and the Billing Information set
        (D.4.2.2.8: CurrentBillingPeriodStart / Duration from the billing period,
        LastBillingPeriodStart / Duration / ConsolidatedBill from the consolidated bill), by
        id; what has no value in force is left out."""
        out: dict[int, Any] = {}
        tariff = self.tariff
        if tariff is not None:
            out.update(
                {
                    PriceAttribute.TARIFF_LABEL: tariff.tariff_label,
                    PriceAttribute.NUMBER_OF_PRICE_TIERS_IN_USE: (
                        tariff.number_of_price_tiers_in_use
                    ),
                    PriceAttribute.NUMBER_OF_BLOCK_THRESHOLDS_IN_USE: (
                        tariff.number_of_block_thresholds_in_use
                    ),
                    PriceAttribute.TIER_BLOCK_MODE: tariff.tier_block_mode,
                    PriceAttribute.UNIT_OF_MEASURE: tariff.unit_of_measure,
                    PriceAttribute.CURRENCY: tariff.currency,
                    PriceAttribute.PRICE_TRAILING_DIGIT: tariff.price_trailing_digit,
                }
            )
        if block_period is not None:
            out[PriceAttribute.TARIFF_RESOLUTION_PERIOD] = block_period.tariff_resolution_period
        if self.co2 is not None:
            out[PriceAttribute.CO2] = self.co2.co2_value
            out[PriceAttribute.CO2_UNIT] = self.co2.co2_value_unit
            out[PriceAttribute.CO2_TRAILING_DIGIT] = self.co2.co2_value_trailing_digit
        if self.billing_period is not None:
            period = self.billing_period
            out[PriceAttribute.CURRENT_BILLING_PERIOD_START] = period.billing_period_start_time
            out[PriceAttribute.CURRENT_BILLING_PERIOD_DURATION] = period.billing_period_duration
        if self.bill is not None:
            out[PriceAttribute.LAST_BILLING_PERIOD_START] = self.bill.billing_period_start_time
            out[PriceAttribute.LAST_BILLING_PERIOD_DURATION] = self.bill.billing_period_duration
            out[PriceAttribute.LAST_BILLING_PERIOD_CONSOLIDATED_BILL] = self.bill.consolidated_bill
        return out

    def received_values(self, block_period: BlockPeriod | None = None) -> dict[int, Any]:
        """The SE 1.2 received sets (0x8xxx, the tariff of what the premises exports), these
        values being the received tariff's (tariff type 1), by id: ReceivedTierNPriceLabel
        from its tier labels; ReceivedBlockNThreshold (1-15) from its thresholds that apply
        to every tier (tier 0); ReceivedThresholdMultiplier / Divisor,
        ReceivedTariffLabel, ReceivedNumberOfPriceTiersInUse,
        ReceivedNumberOfBlockThresholdsInUse and ReceivedTierBlockMode from the tariff;
        ReceivedStartOfBlockPeriod, ReceivedBlockPeriodDuration and
        ReceivedTariffResolutionPeriod from ``block_period``; ReceivedCO2 (+ unit, trailing
        digit); ReceivedCurrentBillingPeriodStart / Duration; ReceivedLastBillingPeriod
        Start / Duration / ConsolidatedBill. Ids as Wireshark names them (the SE 1.2 text
        was out of reach); what has no value in force is left out."""
        out: dict[int, Any] = {}
        if self.labels is not None:
            out.update(
                (received_tier_label_attribute(tier), label)
                for tier, label in self.labels.labels.items()
            )
        if self.thresholds is not None:
            every_tier = self.thresholds.thresholds.get(0, ())
            out.update(
                (received_block_threshold_attribute(block), threshold)
                for block, threshold in enumerate(every_tier, start=1)
            )
        tariff = self.tariff
        if tariff is not None:
            out.update(
                {
                    PriceAttribute.RECEIVED_THRESHOLD_MULTIPLIER: (
                        tariff.block_threshold_multiplier
                    ),
                    PriceAttribute.RECEIVED_THRESHOLD_DIVISOR: tariff.block_threshold_divisor,
                    PriceAttribute.RECEIVED_TARIFF_LABEL: tariff.tariff_label,
                    PriceAttribute.RECEIVED_NUMBER_OF_PRICE_TIERS_IN_USE: (
                        tariff.number_of_price_tiers_in_use
                    ),
                    PriceAttribute.RECEIVED_NUMBER_OF_BLOCK_THRESHOLDS_IN_USE: (
                        tariff.number_of_block_thresholds_in_use
                    ),
                    PriceAttribute.RECEIVED_TIER_BLOCK_MODE: tariff.tier_block_mode,
                }
            )
        if block_period is not None:
            out[PriceAttribute.RECEIVED_START_OF_BLOCK_PERIOD] = block_period.start_time
            out[PriceAttribute.RECEIVED_BLOCK_PERIOD_DURATION] = block_period.block_period_duration
            out[PriceAttribute.RECEIVED_TARIFF_RESOLUTION_PERIOD] = (
                block_period.tariff_resolution_period
            )
        if self.co2 is not None:
            out[PriceAttribute.RECEIVED_CO2] = self.co2.co2_value
            out[PriceAttribute.RECEIVED_CO2_UNIT] = self.co2.co2_value_unit
            out[PriceAttribute.RECEIVED_CO2_TRAILING_DIGIT] = self.co2.co2_value_trailing_digit
        if self.billing_period is not None:
            period = self.billing_period
            out[PriceAttribute.RECEIVED_CURRENT_BILLING_PERIOD_START] = (
                period.billing_period_start_time
            )
            out[PriceAttribute.RECEIVED_CURRENT_BILLING_PERIOD_DURATION] = (
                period.billing_period_duration
            )
        if self.bill is not None:
            bill = self.bill
            out[PriceAttribute.RECEIVED_LAST_BILLING_PERIOD_START] = bill.billing_period_start_time
            out[PriceAttribute.RECEIVED_LAST_BILLING_PERIOD_DURATION] = bill.billing_period_duration
            out[PriceAttribute.RECEIVED_LAST_BILLING_PERIOD_CONSOLIDATED_BILL] = (
                bill.consolidated_bill
            )
        return out


# --- Cost ----------------------------------------------------------------------------------


def _scaled(raw: int, trailing_digit: int) -> Fraction:
    """``raw`` with ``trailing_digit`` digits right of the decimal point."""
    return Fraction(raw, 10**trailing_digit)


@dataclass(frozen=True, kw_only=True)
class Tariff:
    """What a consumption costs (SE D.4.2.2): prices per unit of measure by (tier, block),
    tier 0 meaning "no tier" and block 1 the only block of a tariff without thresholds, with
    ``price_trailing_digit`` digits right of the decimal point (D.4.2.4.1.1.7). Block
    thresholds are cumulative consumption since the start of the block period; threshold *
    ``threshold_multiplier`` / ``threshold_divisor`` is in the raw units of the Metering
    cluster's CurrentBlockPeriodConsumptionDelivered (D.4.2.2.3.3-4), so it is worth that
    times ``metering_scale``, the meter's Multiplier / Divisor (D.3.2.2.4.2-3), in metered
    units; consumption above threshold N is priced at block N+1.

    A flat tariff is one price; a TOU tariff one price per tier; a block tariff one price per
    block (and tier)."""

    prices: Mapping[tuple[int, int], int]
    price_trailing_digit: int
    block_thresholds: Sequence[int] = ()
    threshold_multiplier: int = 1
    threshold_divisor: int = 1
    #: The meter's Multiplier / Divisor: one raw unit of consumption in metered units.
    metering_scale: Fraction = Fraction(1)

    def __post_init__(self) -> None:
        if self.threshold_divisor == 0:
            raise ValueError("threshold divisor 0: thresholds cannot be scaled")
        if self.metering_scale <= 0:
            raise ValueError(f"metering scale {self.metering_scale} is not positive")
        if list(self.block_thresholds) != sorted(self.block_thresholds):
            raise ValueError("block thresholds must not decrease")
        if not 0 <= self.price_trailing_digit <= 15:
            raise ValueError(f"price trailing digit {self.price_trailing_digit} is not 0-15")

    @classmethod
    def flat(cls, price: int, price_trailing_digit: int) -> Tariff:
        """One price for everything."""
        return cls(prices={(0, 1): price}, price_trailing_digit=price_trailing_digit)

    @classmethod
    def tou(cls, prices: Mapping[int, int], price_trailing_digit: int) -> Tariff:
        """A price per tier (time of use)."""
        return cls(
            prices={(tier, 1): price for tier, price in prices.items()},
            price_trailing_digit=price_trailing_digit,
        )

    @classmethod
    def from_attributes(
        cls,
        attributes: PriceAttributes,
        price_trailing_digit: int,
        metering_scale: Fraction = Fraction(1),
    ) -> Tariff:
        """The block tariff the server's attributes describe, for a meter whose Multiplier /
        Divisor is ``metering_scale``."""
        return cls(
            prices=dict(attributes.block_prices),
            price_trailing_digit=price_trailing_digit,
            block_thresholds=attributes.block_thresholds,
            threshold_multiplier=attributes.threshold_multiplier or 1,
            threshold_divisor=attributes.threshold_divisor or 1,
            metering_scale=metering_scale,
        )

    def thresholds(self) -> list[Fraction]:
        """The block thresholds in metered units (the units of the consumption priced)."""
        return [
            Fraction(threshold * self.threshold_multiplier, self.threshold_divisor)
            * self.metering_scale
            for threshold in self.block_thresholds
        ]

    def price(self, tier: int, block: int) -> Fraction:
        """The price per unit of ``tier`` (0: no tier) in ``block``."""
        try:
            raw = self.prices[tier, block]
        except KeyError:
            raise ValueError(f"the tariff has no price for tier {tier} block {block}") from None
        return _scaled(raw, self.price_trailing_digit)

    def cost(
        self,
        usage: Iterable[tuple[int, Fraction | Decimal | int]],
        consumed_before: Fraction = Fraction(0),
        priced_per_unit: Fraction = Fraction(1),
    ) -> Fraction:
        """The cost of ``usage``, (tier, consumption in metered units) in the order consumed,
        after ``consumed_before`` metered units in the block period. Each part is priced at
        its tier's price in the block its cumulative consumption falls in, split at
        thresholds; one metered unit is ``priced_per_unit`` units of the price (m³ of gas
        priced per kWh: the conversion factor x the calorific value / 3.6)."""
        thresholds = self.thresholds()
        total = Fraction(0)
        position = Fraction(consumed_before)
        for tier, amount in usage:
            remaining = Fraction(amount)
            if remaining < 0:
                raise ValueError(f"negative consumption {amount}")
            while remaining > 0:
                block = 1 + sum(1 for threshold in thresholds if position >= threshold)
                upper = thresholds[block - 1] if block <= len(thresholds) else None
                part = remaining if upper is None else min(remaining, upper - position)
                total += part * priced_per_unit * self.price(tier, block)
                position += part
                remaining -= part
        return total


def format_amount(amount: Fraction | Decimal | int, decimals: int = 2) -> str:
    """``amount`` with ``decimals`` digits right of the point, rounded half up (how a
    display shows a cost in the currency's minor unit)."""
    value = Fraction(amount)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))


# --- SE 1.2 tariffs (D.4.2.4.5-7, 9, 15) ---------------------------------------------------

#: The ZCL payload one frame carries: an APS-encrypted unicast, as Get Profile Response's
#: budget (zse sends no APS fragments: real sticks do not reassemble them).
_ONE_FRAME = max_zcl_payload(group=False, aps_encrypted=True)
#: Publish Price Matrix / Block Thresholds before the sub-payload: provider id, issuer event
#: id, start time, issuer tariff id (4 octets each), command index, total, sub-payload control.
_MULTIPART_FIXED = 4 * 4 + 3
#: Publish Tier Labels before its labels: provider id, issuer event id, issuer tariff id,
#: command index, total, number of labels.
_LABELS_FIXED = 3 * 4 + 3
_MATRIX_ENTRY = 5
_THRESHOLD = 6
#: Block thresholds per tier (D.4.2.2.2), blocks (D.4.2.2.5), tiers with blocks (0-15).
_MAX_THRESHOLDS = 15
_MAX_BLOCKS = 16
_MAX_BLOCK_TIER = 15
#: TariffLabel (D.4.2.2, SE 1.2 Tariff Information set): up to 24 octets; a tier label 12.
MAX_TARIFF_LABEL = 24
MAX_TIER_LABEL = 12
#: Tier Block Mode and Standing Charge "not used" (D.4.2.4.5.1).
TIER_BLOCK_MODE_NOT_USED = 0xFF
STANDING_CHARGE_NOT_USED = 0xFFFFFFFF


def _check_widths(value: object, widths: Mapping[str, int]) -> None:
    for name, bits in widths.items():
        got = getattr(value, name)
        if not 0 <= got < 1 << bits:
            raise ValueError(f"{name} must fit in {bits} bits, got {got}")


@dataclass(frozen=True, kw_only=True)
class TariffInformation:
    """One Publish Tariff Information (D.4.2.4.5): a tariff, named by its issuer tariff id,
    in force from its start time (0 = now) until a later one of its tariff type starts.
    ``tariff_type_charging_scheme``: the tariff type in bits 0-3 (0 delivered, 1 received)
    and the charging scheme in bits 4-7 (0 TOU, 1 block, 2 and 3 block/TOU with common or
    individual thresholds); ``price_trailing_digit`` has the digits in bits 4-7 (as
    Wireshark reads it); ``standing_charge`` 0xFFFFFFFF and ``tier_block_mode`` 0xFF are
    "not used"."""

    _WIDTHS: ClassVar[Mapping[str, int]] = {
        "provider_id": 32,
        "issuer_event_id": 32,
        "issuer_tariff_id": 32,
        "start_time": 32,
        "tariff_type_charging_scheme": 8,
        "number_of_price_tiers_in_use": 8,
        "number_of_block_thresholds_in_use": 8,
        "unit_of_measure": 8,
        "currency": 16,
        "price_trailing_digit": 8,
        "standing_charge": 32,
        "tier_block_mode": 8,
        "block_threshold_multiplier": 24,
        "block_threshold_divisor": 24,
    }

    provider_id: int
    issuer_event_id: int
    issuer_tariff_id: int
    start_time: int
    tariff_type_charging_scheme: int = 0
    tariff_label: bytes = b""
    number_of_price_tiers_in_use: int = 1
    number_of_block_thresholds_in_use: int = 0
    unit_of_measure: int = 0
    currency: int
    price_trailing_digit: int = 0
    standing_charge: int = STANDING_CHARGE_NOT_USED
    tier_block_mode: int = TIER_BLOCK_MODE_NOT_USED
    block_threshold_multiplier: int = 1
    block_threshold_divisor: int = 1

    def __post_init__(self) -> None:
        _check_widths(self, self._WIDTHS)
        if len(self.tariff_label) > MAX_TARIFF_LABEL:
            raise ValueError(
                f"tariff label is {len(self.tariff_label)} octets; at most {MAX_TARIFF_LABEL}"
            )

    @property
    def tariff_type(self) -> int:
        """Bits 0-3: 0 delivered, 1 received (D.4.2.4.5.1.5)."""
        return self.tariff_type_charging_scheme & 0x0F

    @property
    def charging_scheme(self) -> int:
        """Bits 4-7: 0 TOU, 1 block, 2-3 block/TOU (D.4.2.4.5.1.5)."""
        return self.tariff_type_charging_scheme >> 4

    @property
    def digits(self) -> int:
        """Digits right of the decimal point of the tariff's prices (bits 4-7)."""
        return self.price_trailing_digit >> 4

    def with_start(self, start: int) -> TariffInformation:
        """The same tariff starting at ``start``."""
        return dataclasses.replace(self, start_time=start)

    def to_fields(self) -> dict[str, Any]:
        """The Publish Tariff Information fields."""
        fields = {name: getattr(self, name) for name in self._WIDTHS}
        fields["tariff_label"] = self.tariff_label
        return fields

    @classmethod
    def from_fields(cls, command: Any) -> TariffInformation:
        """From a decoded Publish Tariff Information; InvalidFrame for a label too long."""
        values = {name: int(getattr(command, name)) for name in cls._WIDTHS}
        try:
            return cls(tariff_label=bytes(command.tariff_label), **values)
        except ValueError as exc:
            raise InvalidFrame(f"Publish Tariff Information: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class TariffCancellation:
    """One Cancel Tariff (D.4.2.4.15): every part of the tariff is to be discarded."""

    provider_id: int
    issuer_tariff_id: int
    tariff_type: int = 0

    def __post_init__(self) -> None:
        _check_widths(self, {"provider_id": 32, "issuer_tariff_id": 32, "tariff_type": 8})

    def to_fields(self) -> dict[str, Any]:
        """The Cancel Tariff fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_fields(cls, command: Any) -> TariffCancellation:
        """From a decoded Cancel Tariff."""
        return cls(
            provider_id=int(command.provider_id),
            issuer_tariff_id=int(command.issuer_tariff_id),
            tariff_type=int(command.tariff_type),
        )


def _chunks(items: Sequence[tuple[Any, int]], room: int) -> list[list[Any]]:
    """``items`` (each with its size in octets) in order, as few runs as fit ``room`` each;
    at least one run, empty for no items (a command says "nothing")."""
    runs: list[list[Any]] = [[]]
    used = 0
    for item, size in items:
        if runs[-1] and used + size > room:
            runs.append([])
            used = 0
        runs[-1].append(item)
        used += size
    return runs


@dataclass(frozen=True, kw_only=True)
class TariffPart:
    """One command of a matrix, thresholds or labels sent in several (D.4.2.4.6-7, 9):
    Command Index ``command_index`` of ``total_number_of_commands``, its repeating items as
    the wire has them, and the header every part of one issue shares."""

    kind: type[PriceMatrix | BlockThresholds | TierLabels]
    provider_id: int
    issuer_event_id: int
    issuer_tariff_id: int
    start_time: int = 0
    command_index: int = 0
    total_number_of_commands: int = 1
    sub_payload_control: int = 0
    items: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.command_index < self.total_number_of_commands:
            raise ValueError(
                f"command index {self.command_index} of {self.total_number_of_commands} commands"
            )

    def same_issue(self, other: TariffPart) -> bool:
        """Whether ``other`` is a part of the same issue: same header but the index."""
        return (
            self.kind,
            self.provider_id,
            self.issuer_event_id,
            self.issuer_tariff_id,
            self.start_time,
            self.total_number_of_commands,
            self.sub_payload_control,
        ) == (
            other.kind,
            other.provider_id,
            other.issuer_event_id,
            other.issuer_tariff_id,
            other.start_time,
            other.total_number_of_commands,
            other.sub_payload_control,
        )

    def to_fields(self) -> dict[str, Any]:
        """The fields of its Publish command."""
        fields: dict[str, Any] = {
            "provider_id": self.provider_id,
            "issuer_event_id": self.issuer_event_id,
            "issuer_tariff_id": self.issuer_tariff_id,
            "command_index": self.command_index,
            "total_number_of_commands": self.total_number_of_commands,
        }
        if self.kind is TierLabels:
            fields["number_of_labels"] = len(self.items)
            fields["tier_labels"] = list(self.items)
            return fields
        fields["start_time"] = self.start_time
        fields["sub_payload_control"] = self.sub_payload_control
        fields["entries" if self.kind is PriceMatrix else "threshold_sets"] = self.items
        return fields

    @classmethod
    def from_fields(
        cls, kind: type[PriceMatrix | BlockThresholds | TierLabels], command: Any
    ) -> TariffPart:
        """From a decoded Publish Price Matrix, Block Thresholds or Tier Labels;
        InvalidFrame for a Command Index not below the Total Number of Commands."""
        items: tuple[Any, ...]
        extra: dict[str, int] = {}
        if kind is TierLabels:
            items = tuple(
                (int(label.tier_id), bytes(label.tier_label)) for label in command.tier_labels
            )
        else:
            items = tuple(command.entries if kind is PriceMatrix else command.threshold_sets)
            extra = {
                "start_time": int(command.start_time),
                "sub_payload_control": int(command.sub_payload_control),
            }
        try:
            return cls(
                kind=kind,
                provider_id=int(command.provider_id),
                issuer_event_id=int(command.issuer_event_id),
                issuer_tariff_id=int(command.issuer_tariff_id),
                command_index=int(command.command_index),
                total_number_of_commands=int(command.total_number_of_commands),
                items=items,
                **extra,
            )
        except ValueError as exc:
            raise InvalidFrame(f"{kind.__name__} part: {exc}") from None


class _TariffValue:
    """What a matrix, thresholds and labels share: their parts."""

    provider_id: int
    issuer_event_id: int
    issuer_tariff_id: int
    #: Octets before the repeating items in each command.
    _FIXED: ClassVar[int] = _MULTIPART_FIXED

    @property
    def start(self) -> int:
        return getattr(self, "start_time", 0)

    def _items(self) -> list[tuple[Any, int]]:
        raise NotImplementedError

    def _control(self) -> int:
        return 0

    def parts(self, start: int | None = None) -> list[TariffPart]:
        """The commands that carry it, each within one frame (``start``: the start time
        they carry, by default its own)."""
        runs = _chunks(self._items(), _ONE_FRAME - self._FIXED)
        return [
            TariffPart(
                kind=type(self),  # type: ignore[arg-type]
                provider_id=self.provider_id,
                issuer_event_id=self.issuer_event_id,
                issuer_tariff_id=self.issuer_tariff_id,
                start_time=self.start if start is None else start,
                command_index=index,
                total_number_of_commands=len(runs),
                sub_payload_control=self._control(),
                items=tuple(run),
            )
            for index, run in enumerate(runs)
        ]


#: Price Matrix sub-payload control bit 0: the ids are TOU tiers (D.4.2.4.6.2).
_TOU_BASED = 0x01
#: Block Thresholds sub-payload control bit 0: the thresholds apply to every tier.
_ALL_TIERS = 0x01


@dataclass(frozen=True, kw_only=True)
class PriceMatrix(_TariffValue):
    """Publish Price Matrix (D.4.2.4.6): the prices of a tariff by (tier, block). TOU-based
    (``tou``, sub-payload control bit 0): tiers 1-48, block 1 only, the Tier/Block ID the
    tier. Block-based: tiers 0 (no tier) to 15 and blocks 1-16, the Tier/Block ID the tier in
    bits 4-7 and the block less one in bits 0-3 (as Silicon Labs' price server numbers them,
    NoTierBlock1Price to Tier15Block16Price of D.4.2.2.5)."""

    provider_id: int
    issuer_event_id: int
    issuer_tariff_id: int
    start_time: int = 0
    prices: Mapping[tuple[int, int], int]
    tou: bool = False

    def __post_init__(self) -> None:
        _check_widths(
            self,
            {"provider_id": 32, "issuer_event_id": 32, "issuer_tariff_id": 32, "start_time": 32},
        )
        for (tier, block), price in self.prices.items():
            if self.tou and not (1 <= tier <= MAX_TIER and block == 1):
                raise ValueError(
                    f"a TOU price matrix has tiers 1-{MAX_TIER}, block 1: not {tier}, {block}"
                )
            if not self.tou and not (0 <= tier <= _MAX_BLOCK_TIER and 1 <= block <= _MAX_BLOCKS):
                raise ValueError(
                    f"a block price matrix has tiers 0-15, blocks 1-16: not {tier}, {block}"
                )
            if not 0 <= price <= 0xFFFFFFFF:
                raise ValueError(f"price {price} of tier {tier} block {block} does not fit 32 bits")

    def _control(self) -> int:
        return _TOU_BASED if self.tou else 0

    def _items(self) -> list[tuple[Any, int]]:
        return [
            ((tier if self.tou else (tier << 4) | (block - 1), price), _MATRIX_ENTRY)
            for (tier, block), price in sorted(self.prices.items())
        ]

    @classmethod
    def assemble(cls, parts: Sequence[TariffPart]) -> PriceMatrix:
        """The matrix its parts (in Command Index order) carry; ValueError for an id or price
        no matrix has, or a price given twice."""
        first = parts[0]
        tou = bool(first.sub_payload_control & _TOU_BASED)
        prices: dict[tuple[int, int], int] = {}
        for part in parts:
            for tier_block, price in part.items:
                key = (tier_block, 1) if tou else (tier_block >> 4, (tier_block & 0x0F) + 1)
                if key in prices:
                    raise ValueError(f"tier {key[0]} block {key[1]} is priced twice")
                prices[key] = int(price)
        return cls(
            provider_id=first.provider_id,
            issuer_event_id=first.issuer_event_id,
            issuer_tariff_id=first.issuer_tariff_id,
            start_time=first.start_time,
            prices=prices,
            tou=tou,
        )


@dataclass(frozen=True, kw_only=True)
class BlockThresholds(_TariffValue):
    """Publish Block Thresholds (D.4.2.4.7): each tier's block thresholds (up to 15, in the
    Threshold Multiplier / Divisor units of the tariff), tier 0 (no tier) to 15. With
    ``all_tiers`` (sub-payload control bit 0) one set, under tier 0, applies to every tier."""

    provider_id: int
    issuer_event_id: int
    issuer_tariff_id: int
    start_time: int = 0
    thresholds: Mapping[int, tuple[int, ...]]
    all_tiers: bool = True

    def __post_init__(self) -> None:
        _check_widths(
            self,
            {"provider_id": 32, "issuer_event_id": 32, "issuer_tariff_id": 32, "start_time": 32},
        )
        if self.all_tiers and set(self.thresholds) - {0}:
            raise ValueError("thresholds for every tier are given under tier 0 only")
        for tier, values in self.thresholds.items():
            if not 0 <= tier <= _MAX_BLOCK_TIER:
                raise ValueError(f"tier {tier} has no block thresholds (0-{_MAX_BLOCK_TIER})")
            if len(values) > _MAX_THRESHOLDS:
                raise ValueError(f"tier {tier} has {len(values)} thresholds; at most 15")
            if any(not 0 <= value < 1 << 48 for value in values):
                raise ValueError(f"a threshold of tier {tier} does not fit 48 bits")

    def _control(self) -> int:
        return _ALL_TIERS if self.all_tiers else 0

    def _items(self) -> list[tuple[Any, int]]:
        most = (_ONE_FRAME - self._FIXED - 1) // _THRESHOLD  # a tier's set split if longer
        items: list[tuple[Any, int]] = []
        for tier, values in sorted(self.thresholds.items()):
            for at in range(0, max(len(values), 1), most):
                run = tuple(values[at : at + most])
                items.append(((tier, run), 1 + _THRESHOLD * len(run)))
        return items

    @classmethod
    def assemble(cls, parts: Sequence[TariffPart]) -> BlockThresholds:
        """The thresholds the parts carry, a tier's sets joined in order; ValueError for
        more than 15 in a tier, or a tier but 0 when they apply to every tier."""
        first = parts[0]
        joined: dict[int, tuple[int, ...]] = {}
        for part in parts:
            for tier, values in part.items:
                joined[tier] = joined.get(tier, ()) + tuple(values)
        return cls(
            provider_id=first.provider_id,
            issuer_event_id=first.issuer_event_id,
            issuer_tariff_id=first.issuer_tariff_id,
            start_time=first.start_time,
            thresholds=joined,
            all_tiers=bool(first.sub_payload_control & _ALL_TIERS),
        )


@dataclass(frozen=True, kw_only=True)
class TierLabels(_TariffValue):
    """Publish Tier Labels (D.4.2.4.9): the tariff's tier labels, tier 1-48, up to 12
    octets each (a display shows them as the TierNPriceLabel attributes, D.4.2.2, which
    exist for tiers 1-48 only). The Tier ID field is 8 bits on the wire (Wireshark's
    dissector reads it as a plain uint8); a tier outside 1-48 is refused: ValueError here,
    INVALID_FIELD from a client (the spec text was out of reach: the attribute range is
    what labels a tier)."""

    _FIXED: ClassVar[int] = _LABELS_FIXED

    provider_id: int
    issuer_event_id: int
    issuer_tariff_id: int
    labels: Mapping[int, bytes]

    def __post_init__(self) -> None:
        _check_widths(self, {"provider_id": 32, "issuer_event_id": 32, "issuer_tariff_id": 32})
        for tier, label in self.labels.items():
            problem = _no_tier(tier)
            if problem is not None:
                raise ValueError(problem)
            if len(label) > MAX_TIER_LABEL:
                raise ValueError(f"tier {tier}'s label is {len(label)} octets; at most 12")

    def _items(self) -> list[tuple[Any, int]]:
        return [((tier, label), 2 + len(label)) for tier, label in sorted(self.labels.items())]

    @classmethod
    def invalid(cls, items: Sequence[Any]) -> str | None:
        """Why a part's labels are for no tier (one outside 1-48), or None."""
        return next(filter(None, (_no_tier(tier) for tier, _ in items)), None)

    @classmethod
    def assemble(cls, parts: Sequence[TariffPart]) -> TierLabels:
        """The labels the parts carry; ValueError for a tier labelled twice."""
        first = parts[0]
        labels: dict[int, bytes] = {}
        for part in parts:
            for tier, label in part.items:
                if tier in labels:
                    raise ValueError(f"tier {tier} is labelled twice")
                labels[tier] = bytes(label)
        return cls(
            provider_id=first.provider_id,
            issuer_event_id=first.issuer_event_id,
            issuer_tariff_id=first.issuer_tariff_id,
            labels=labels,
        )


def _no_tier(tier: int) -> str | None:
    """Why ``tier`` is no tier a label is for (tiers 1-48), or None."""
    if not 1 <= tier <= MAX_TIER:
        return f"tier id {tier} is not a tier (1 to {MAX_TIER})"
    return None


#: What a tariff carries besides its information.
TariffValue = PriceMatrix | BlockThresholds | TierLabels


class PartOutcome(enum.Enum):
    """What :meth:`Tariffs.add_part` did with a part."""

    #: Kept; parts are missing still (not in force).
    KEPT = "kept"
    #: The last part: the whole value is in force.
    COMPLETE = "complete"
    #: Held already (the same issue, the same part).
    REPEAT = "repeat"
    #: No tariff of that provider and issuer tariff id is held.
    UNKNOWN_TARIFF = "unknown tariff"
    #: Older than the issue held or being put together (a smaller issuer event id).
    OLDER = "older"
    #: Disagrees with the parts of its issue (header, a part given twice otherwise, or the
    #: whole does not make a value): refused, and the issue's parts dropped.
    INCONSISTENT = "inconsistent"
    #: A field no value of its kind has (a tier label for no tier: tier 0, or above 48):
    #: refused, the issue's other parts kept.
    INVALID = "invalid"
    #: Not the last of its issue, and :attr:`Tariffs.pending_limit` parts wait already:
    #: refused (counted in :attr:`Tariffs.refused_full`).
    FULL = "full"


class Tariffs:
    """The tariffs one side holds (SE 1.2 D.4.2.4.5-7, 9, 15): the tariff information in a
    :class:`Published` timeline per tariff type (in force by start time, the same rule and
    bound as block periods: at most ``limit`` per type), and each held tariff's price
    matrix, block thresholds and tier labels, by provider and issuer tariff id. What belongs
    to a tariff no longer held is forgotten with it. A receiver puts parts together with
    :meth:`add_part`: a value is in force only once every part of its issue arrived. At most
    ``pending_limit`` parts wait for the rest of their issue (all tariffs together: a whole
    16 x 16 matrix is 26 parts); a part past that which would not complete its issue is
    refused, so that issues a sender never finishes (255 parts announced each, for every
    tariff held) cost bounded memory."""

    def __init__(self, limit: int = 16, pending_limit: int = 256) -> None:
        self.limit = limit
        self.pending_limit = pending_limit
        #: parts refused because ``pending_limit`` parts waited already
        self.refused_full = 0
        self._information: ByTariffType[TariffInformation] = ByTariffType(limit)
        self._values: dict[tuple[type[Any], int, int], TariffValue] = {}
        self._pending: dict[tuple[type[Any], int, int], dict[int, TariffPart]] = {}

    def add(self, information: TariffInformation, now: int) -> bool:
        """Keep a tariff's information; False for a repeat (:meth:`Published.add`)."""
        new = self._information.add(information, now)
        self._prune(now)
        return new

    def current(
        self, now: int, tariff_type: int = 0, *, absolute: bool = False
    ) -> TariffInformation | None:
        """The tariff of ``tariff_type`` (bits 0-3) in force at ``now``."""
        return self._information.current(now, tariff_type, absolute=absolute)

    def since(
        self, earliest: int, min_issuer_event_id: int, count: int, tariff_type: int, now: int
    ) -> list[TariffInformation]:
        """What Get Tariff Information resends (D.4.2.3.7): :meth:`Published.since` of the
        tariffs of ``tariff_type`` (bits 0-3)."""
        return self._information.since(earliest, min_issuer_event_id, count, tariff_type, now)

    def held(self, now: int, *, absolute: bool = False) -> list[TariffInformation]:
        """Every tariff kept at ``now`` (in force and to come), by tariff type then start;
        with ``absolute`` each start "now" resolved (:meth:`Published.held`)."""
        return self._information.held(now, absolute=absolute)

    def tariff(
        self,
        issuer_tariff_id: int,
        now: int,
        provider_id: int | None = None,
        *,
        absolute: bool = False,
    ) -> TariffInformation | None:
        """The held tariff with this issuer tariff id (and provider, if given); the newest
        issue if several; with ``absolute`` its start "now" resolved."""
        found = [
            info
            for info in self.held(now, absolute=absolute)
            if info.issuer_tariff_id == issuer_tariff_id
            and (provider_id is None or info.provider_id == provider_id)
        ]
        return max(found, key=lambda info: info.issuer_event_id, default=None)

    def value(
        self, kind: type[Any], issuer_tariff_id: int, now: int, provider_id: int | None = None
    ) -> Any:
        """The complete price matrix, block thresholds or tier labels (``kind``) of a
        tariff held at ``now``, or None (not known, parts missing, or its tariff over)."""
        self._prune(now)
        for (known_kind, provider, tariff_id), value in self._values.items():
            if (
                known_kind is kind
                and tariff_id == issuer_tariff_id
                and (provider_id is None or provider == provider_id)
            ):
                return value
        return None

    def entries(self, now: int) -> tuple[list[tuple[int, TariffInformation]], list[TariffValue]]:
        """What is held at ``now``: each tariff's information with the absolute start it was
        kept with (:meth:`Published.entries`) and every whole matrix, thresholds and labels
        of a tariff held; what :meth:`restore` and :meth:`put` take back (a server's
        store). Parts waiting for the rest of their issue are not in it."""
        self._prune(now)
        return self._information.entries(now), list(self._values.values())

    def next_end(self) -> int | None:
        """When a tariff held is next superseded (:meth:`ByTariffType.next_end`); its
        matrix, thresholds and labels go with it."""
        return self._information.next_end()

    def restore(self, start: int, information: TariffInformation) -> None:
        """Keep a tariff's information as :meth:`entries` gave it (read back from a store)."""
        self._information.restore(start, information)

    def put(self, value: TariffValue, now: int) -> None:
        """Keep a matrix, thresholds or labels of a held tariff whole (a server's own);
        ValueError when no such tariff is held."""
        if self.tariff(value.issuer_tariff_id, now, value.provider_id) is None:
            raise ValueError(
                f"no tariff {value.issuer_tariff_id} of provider {value.provider_id} is held: "
                "publish its tariff information first (D.4.2.4.6.1.4: the ids must match)"
            )
        key = (type(value), value.provider_id, value.issuer_tariff_id)
        self._values[key] = value
        self._pending.pop(key, None)

    def add_part(self, part: TariffPart, now: int) -> tuple[PartOutcome, TariffValue | None]:
        """Put a received part with the others of its issue; the whole value with
        COMPLETE. A newer issue (larger issuer event id) starts afresh; the value held stays
        in force until the newer one is whole."""
        key = (part.kind, part.provider_id, part.issuer_tariff_id)
        if part.kind is TierLabels and TierLabels.invalid(part.items) is not None:
            return PartOutcome.INVALID, None
        refused = self._refusal(key, part, now)
        if refused is not None:
            return refused, None
        pending = {**self._pending.get(key, {}), part.command_index: part}
        if len(pending) < part.total_number_of_commands:
            if self.pending() >= self.pending_limit:
                self._prune(now)  # the parts of a tariff over since take no room
            if self.pending() >= self.pending_limit:
                self.refused_full += 1
                return PartOutcome.FULL, None
            self._pending[key] = pending
            return PartOutcome.KEPT, None
        self._pending.pop(key, None)
        try:
            value = part.kind.assemble([pending[index] for index in sorted(pending)])
        except ValueError:
            return PartOutcome.INCONSISTENT, None
        self._values[key] = value
        return PartOutcome.COMPLETE, value

    def _refusal(
        self, key: tuple[type[Any], int, int], part: TariffPart, now: int
    ) -> PartOutcome | None:
        """Why ``part`` is not kept, or None; drops the parts of an older issue (a newer one
        starts) and of its own issue when it disagrees with them."""
        if self.tariff(part.issuer_tariff_id, now, part.provider_id) is None:
            return PartOutcome.UNKNOWN_TARIFF
        done = self._values.get(key)
        if done is not None and done.issuer_event_id >= part.issuer_event_id:
            older = done.issuer_event_id > part.issuer_event_id
            return PartOutcome.OLDER if older else PartOutcome.REPEAT
        pending = self._pending.get(key, {})
        sample = next(iter(pending.values()), None)
        if sample is None or sample.issuer_event_id < part.issuer_event_id:
            self._pending.pop(key, None)  # a newer issue: the older one's parts go
            return None
        if sample.issuer_event_id > part.issuer_event_id:
            return PartOutcome.OLDER
        return self._against_issue(key, pending, sample, part)

    def _against_issue(
        self,
        key: tuple[type[Any], int, int],
        pending: dict[int, TariffPart],
        sample: TariffPart,
        part: TariffPart,
    ) -> PartOutcome | None:
        """A part of the issue being put together: a repeat, or one that disagrees with it
        (its parts dropped), or None."""
        known = pending.get(part.command_index)
        if known == part:
            return PartOutcome.REPEAT
        if known is not None or not sample.same_issue(part):
            del self._pending[key]
            return PartOutcome.INCONSISTENT
        return None

    def cancel(self, cancellation: TariffCancellation, now: int) -> bool:
        """Forget the tariff (information, matrix, thresholds, labels and parts) that
        ``cancellation`` names (D.4.2.4.15); False if none was held."""
        dropped = self._information.drop(
            cancellation.tariff_type,
            lambda info: (
                info.provider_id == cancellation.provider_id
                and info.issuer_tariff_id == cancellation.issuer_tariff_id
            ),
        )
        self._prune(now)
        return dropped > 0

    def _prune(self, now: int) -> None:
        """Forget what belongs to no tariff held."""
        held = {(info.provider_id, info.issuer_tariff_id) for info in self.held(now)}
        for table in (self._values, self._pending):
            for key in [key for key in table if key[1:] not in held]:
                del table[key]

    def pending(self) -> int:
        """How many parts wait for the rest of their issue."""
        return sum(len(parts) for parts in self._pending.values())


# --- SE 1.2: CO2, billing, CPP, credit payment, currency (D.4.2.4.8, 10-14) ---------------


@dataclass(frozen=True, kw_only=True)
class Co2Value(_PublishValues):
    """One Publish CO2 Value (D.4.2.4.8): the CO2 emitted per unit of the commodity from
    ``start_time`` (0 = now); ``co2_value_unit`` 1 kg per kWh...; the trailing digit in
    bits 4-7 of its octet; ``tariff_type`` bits 0-3 (0 delivered, 1 received)."""

    _WIDTHS: ClassVar[Mapping[str, int]] = {
        "provider_id": 32,
        "issuer_event_id": 32,
        "start_time": 32,
        "tariff_type": 8,
        "co2_value": 32,
        "co2_value_unit": 8,
        "co2_value_trailing_digit": 8,
    }

    provider_id: int
    issuer_event_id: int
    start_time: int
    tariff_type: int = 0
    co2_value: int
    co2_value_unit: int = 1
    co2_value_trailing_digit: int = 0

    @property
    def value(self) -> Fraction:
        """The CO2 value as a number."""
        return _scaled(self.co2_value, self.co2_value_trailing_digit >> 4)


_BILLING_WIDTHS: Mapping[str, int] = {
    "provider_id": 32,
    "issuer_event_id": 32,
    "billing_period_start_time": 32,
    "billing_period_duration": 24,
    "billing_period_duration_type": 8,
    "tariff_type": 8,
}


@dataclass(frozen=True, kw_only=True)
class BillingPeriod(_PublishValues):
    """One Publish Billing Period (D.4.2.4.10): a billing period from its start (0 = now),
    its duration in the timebase of ``billing_period_duration_type`` (bits 0-3: 0 minutes,
    1 days, 2 weeks, 3 months; as the block period's)."""

    _WIDTHS: ClassVar[Mapping[str, int]] = _BILLING_WIDTHS
    _START: ClassVar[str] = "billing_period_start_time"

    provider_id: int
    issuer_event_id: int
    billing_period_start_time: int
    billing_period_duration: int
    billing_period_duration_type: int = 0
    tariff_type: int = 0

    @property
    def start_time(self) -> int:
        """The start time, as the timeline orders by."""
        return self.billing_period_start_time


@dataclass(frozen=True, kw_only=True)
class ConsolidatedBill(_PublishValues):
    """One Publish Consolidated Bill (D.4.2.4.11): the bill of a billing period, in
    ``currency`` with the trailing digit in bits 4-7 of ``bill_trailing_digit``."""

    _WIDTHS: ClassVar[Mapping[str, int]] = {
        **_BILLING_WIDTHS,
        "consolidated_bill": 32,
        "currency": 16,
        "bill_trailing_digit": 8,
    }
    _START: ClassVar[str] = "billing_period_start_time"

    provider_id: int
    issuer_event_id: int
    billing_period_start_time: int
    billing_period_duration: int
    billing_period_duration_type: int = 0
    tariff_type: int = 0
    consolidated_bill: int
    currency: int
    bill_trailing_digit: int = 0

    @property
    def start_time(self) -> int:
        """The start of the billing period billed, as the timeline orders by."""
        return self.billing_period_start_time

    @property
    def amount(self) -> Fraction:
        """The bill as a number in the currency."""
        return _scaled(self.consolidated_bill, self.bill_trailing_digit >> 4)


@dataclass(frozen=True, kw_only=True)
class CppEvent(_PublishValues):
    """One Publish CPP Event (D.4.2.4.12): critical peak pricing from ``start_time`` (0 = now)
    for ``duration_in_minutes`` at ``cpp_price_tier`` (1 CPP1, 2 CPP2); ``cpp_auth``
    (:class:`zse.se.types.CppAuth`) Pending asks the client to answer Accepted or Rejected
    (CPP Event Response), Forced is not to be refused."""

    _WIDTHS: ClassVar[Mapping[str, int]] = {
        "provider_id": 32,
        "issuer_event_id": 32,
        "start_time": 32,
        "duration_in_minutes": 16,
        "tariff_type": 8,
        "cpp_price_tier": 8,
        "cpp_auth": 8,
    }

    provider_id: int
    issuer_event_id: int
    start_time: int
    duration_in_minutes: int
    tariff_type: int = 0
    cpp_price_tier: int = 1
    cpp_auth: int = 0


@dataclass(frozen=True, kw_only=True)
class CurrencyConversion(_PublishValues):
    """One Publish Currency Conversion (D.4.2.4.14): from ``start_time`` (0 = now) prices are
    in ``new_currency``; ``conversion_factor`` (trailing digit in bits 4-7) converts the old
    currency's amounts; ``currency_change_control_flags`` says what the client is to do."""

    _WIDTHS: ClassVar[Mapping[str, int]] = {
        "provider_id": 32,
        "issuer_event_id": 32,
        "start_time": 32,
        "old_currency": 16,
        "new_currency": 16,
        "conversion_factor": 32,
        "conversion_factor_trailing_digit": 8,
        "currency_change_control_flags": 32,
    }

    provider_id: int
    issuer_event_id: int
    start_time: int
    old_currency: int
    new_currency: int
    conversion_factor: int
    conversion_factor_trailing_digit: int = 0
    currency_change_control_flags: int = 0

    @property
    def value(self) -> Fraction:
        """The conversion factor as a number."""
        return _scaled(self.conversion_factor, self.conversion_factor_trailing_digit >> 4)


#: Credit Payment Ref: an octet string of up to 20 octets (D.4.2.4.13.1.8).
MAX_CREDIT_PAYMENT_REF = 20
#: The CreditPaymentOverDueAmount attribute is a signed 32-bit integer (zsmartsystems'
#: ``0700_Price.xml``): the largest overdue amount a server's payment may carry.
MAX_OVERDUE_AMOUNT = 0x7FFFFFFF
#: Latest End Time meaning "any payment date".
_ANY_TIME = 0xFFFFFFFF


@dataclass(frozen=True, kw_only=True)
class CreditPayment:
    """One Publish Credit Payment (D.4.2.4.13): a payment due (and any overdue amount, its
    status) and the payment made, on ``credit_payment_date``, with its reference (up to 20
    octets)."""

    _WIDTHS: ClassVar[Mapping[str, int]] = {
        "provider_id": 32,
        "issuer_event_id": 32,
        "credit_payment_due_date": 32,
        "credit_payment_overdue_amount": 32,
        "credit_payment_status": 8,
        "credit_payment": 32,
        "credit_payment_date": 32,
    }

    provider_id: int
    issuer_event_id: int
    credit_payment_due_date: int
    credit_payment_overdue_amount: int = 0
    credit_payment_status: int = 0
    credit_payment: int = 0
    credit_payment_date: int = 0
    credit_payment_ref: bytes = b""

    def __post_init__(self) -> None:
        _check_widths(self, self._WIDTHS)
        if len(self.credit_payment_ref) > MAX_CREDIT_PAYMENT_REF:
            raise ValueError(
                f"credit payment ref is {len(self.credit_payment_ref)} octets; at most 20"
            )

    def to_fields(self) -> dict[str, Any]:
        """The Publish Credit Payment fields."""
        return {
            **{name: getattr(self, name) for name in self._WIDTHS},
            "credit_payment_ref": self.credit_payment_ref,
        }

    @classmethod
    def from_fields(cls, command: Any) -> CreditPayment:
        """From a decoded Publish Credit Payment; InvalidFrame for a ref too long."""
        values = {name: int(getattr(command, name)) for name in cls._WIDTHS}
        try:
            return cls(credit_payment_ref=bytes(command.credit_payment_ref), **values)
        except ValueError as exc:
            raise InvalidFrame(f"Publish Credit Payment: {exc}") from None


class CreditPayments:
    """The credit payments one side holds, by issuer event id (a known id is replaced; the
    very same payment again is a repeat); at most ``limit``, the latest payment dates kept."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._items: dict[int, CreditPayment] = {}

    def add(self, payment: CreditPayment, now: int) -> bool:
        """Keep ``payment``; False for a repeat. ``now`` is unused (the payments' dates are
        their own); it is there as :meth:`Published.add` has it."""
        del now
        if self._items.get(payment.issuer_event_id) == payment:
            return False
        self._items[payment.issuer_event_id] = payment
        while len(self._items) > self.limit:
            oldest = min(
                self._items.values(), key=lambda p: (p.credit_payment_date, p.issuer_event_id)
            )
            del self._items[oldest.issuer_event_id]
        return True

    def held(self) -> list[CreditPayment]:
        """Every payment kept, by issuer event id (what a server's store keeps)."""
        return [self._items[key] for key in sorted(self._items)]

    def upto(self, latest_end_time: int, count: int) -> list[CreditPayment]:
        """What Get Credit Payment resends (D.4.2.3.15): payments dated no later than
        ``latest_end_time``, the most recent first; ``count`` 0 = all."""
        chosen = sorted(
            (p for p in self._items.values() if p.credit_payment_date <= latest_end_time),
            key=lambda p: (p.credit_payment_date, p.issuer_event_id),
            reverse=True,
        )
        return chosen if count == 0 else chosen[:count]

    def values(self) -> dict[int, Any]:
        """The SE 1.2 Credit Payment set, by id: CreditPaymentDueDate, CreditPaymentStatus
        and CreditPaymentOverDueAmount from the latest payment published (the largest
        issuer event id: the utility's latest word), and CreditPayment#N, Date#N and Ref#N
        (N 1-5) from the payments made, the most recent first (as Get Credit Payment sends
        them, D.4.2.3.15); a publication with no payment date (0) announces a payment due,
        not one made, and takes no #N. Nothing held: nothing served."""
        if not self._items:
            return {}
        latest = max(self._items.values(), key=lambda p: p.issuer_event_id)
        out: dict[int, Any] = {
            PriceAttribute.CREDIT_PAYMENT_DUE_DATE: latest.credit_payment_due_date,
            PriceAttribute.CREDIT_PAYMENT_STATUS: latest.credit_payment_status,
            PriceAttribute.CREDIT_PAYMENT_OVERDUE_AMOUNT: latest.credit_payment_overdue_amount,
        }
        made = [p for p in self.upto(_ANY_TIME, 0) if p.credit_payment_date != 0]
        for number, made_payment in enumerate(made[:CREDIT_PAYMENTS_NAMED], start=1):
            amount, date, ref = credit_payment_attributes(number)
            out[amount] = made_payment.credit_payment
            out[date] = made_payment.credit_payment_date
            out[ref] = made_payment.credit_payment_ref
        return out

    def __len__(self) -> int:
        return len(self._items)


#: Each value a server publishes besides prices and tariffs, by the name it goes by (the MQTT
#: bridge's ``publish_price`` keys, the Price server's store records; SE D.4.2.4.2-4, 8, 10-14).
PRICE_VALUE_KINDS: Mapping[str, type[Any]] = MappingProxyType(
    {
        "block_period": BlockPeriod,
        "conversion_factor": ConversionFactor,
        "calorific_value": CalorificValue,
        "co2_value": Co2Value,
        "billing_period": BillingPeriod,
        "consolidated_bill": ConsolidatedBill,
        "cpp_event": CppEvent,
        "credit_payment": CreditPayment,
        "currency_conversion": CurrencyConversion,
    }
)
