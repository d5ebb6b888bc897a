"""Price essentials (SE D.4) as a sans-IO core: what an ESI publishes, what a client keeps.

:class:`PriceEvent` is one Publish Price (D.4.2.4.1) as plain values. :class:`PriceSchedule`
holds the prices a side knows and answers "what applies now" and "what is scheduled" with the
spec's rules: a price starts at its start time (0 = now) and lasts its duration (0xFFFF =
until changed); where two prices overlap, the one with the newer issuer event id wins
(D.4.4.2); an event id already known with the same start is a repeat, not a new price.
Time is always an argument: seconds since the ZigBee epoch (2000-01-01 00:00 UTC).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from zse.se.types import PriceControl

__all__ = [
    "DURATION_UNTIL_CHANGED",
    "START_NOW",
    "PriceEvent",
    "PriceSchedule",
]

#: Start time meaning "now" (D.4.2.4.1.1.10).
START_NOW = 0
#: Duration meaning "until changed" (D.4.2.4.1.1.11).
DURATION_UNTIL_CHANGED = 0xFFFF


@dataclass(frozen=True, kw_only=True)
class PriceEvent:
    """One price as Publish Price carries it (D.4.2.4.1); optional trailers may be None."""

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

    def __post_init__(self) -> None:
        if len(self.rate_label) > 12:
            raise ValueError(f"rate label is {len(self.rate_label)} bytes; at most 12")
        for name, bits in _WIDTHS.items():
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1 << bits:
                raise ValueError(f"{name} must fit in {bits} bits, got {value}")

    def starts(self, received_at: int) -> int:
        """Absolute start: a start time of 0 means when it was received."""
        return received_at if self.start_time == START_NOW else self.start_time

    def ends(self, received_at: int) -> int | None:
        """Absolute end (exclusive), or None for "until changed"."""
        if self.duration_in_minutes == DURATION_UNTIL_CHANGED:
            return None
        return self.starts(received_at) + 60 * self.duration_in_minutes

    @property
    def acknowledgement_required(self) -> bool:
        """Price Control bit 0: the client must send Price Acknowledgement (D.4.2.4.1.1.19)."""
        return bool((self.price_control or 0) & PriceControl.Price_Acknowledgement_Required)

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
        """From a decoded Publish Price (any object with its field attributes)."""
        digit_tier = int(command.price_trailing_digit_and_price_tier)
        tiers = int(command.number_of_price_tiers_and_register_tier)
        trailers = {
            name: None if getattr(command, name) is None else int(getattr(command, name))
            for name in _TRAILERS
        }
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
}
_TRAILERS = tuple(f.name for f in dataclasses.fields(PriceEvent) if f.default is None)


@dataclass(frozen=True, slots=True)
class _Entry:
    event: PriceEvent
    received_at: int

    @property
    def start(self) -> int:
        return self.event.starts(self.received_at)

    @property
    def end(self) -> int | None:
        return self.event.ends(self.received_at)

    def active(self, now: int) -> bool:
        return self.start <= now and (self.end is None or now < self.end)


class PriceSchedule:
    """The prices one side knows, with the overlap rules of SE D.4.4.2."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []

    def add(self, event: PriceEvent, now: int) -> bool:
        """Record ``event`` received (or published) at ``now``; False if it is a repeat."""
        for entry in self._entries:
            if (
                entry.event.issuer_event_id == event.issuer_event_id
                and entry.event.provider_id == event.provider_id
            ):
                if entry.event == event:
                    return False
                self._entries.remove(entry)  # same id, new content: the latest word counts
                break
        self._entries.append(_Entry(event, now))
        self._expire(now)
        return True

    def forget(self, provider_id: int, issuer_event_id: int) -> bool:
        """Drop the price with these ids (e.g. to bound what a receiver keeps); False if
        it is not known."""
        for entry in self._entries:
            event = entry.event
            if event.issuer_event_id == issuer_event_id and event.provider_id == provider_id:
                self._entries.remove(entry)
                return True
        return False

    def current(self, now: int) -> PriceEvent | None:
        """The price in force at ``now``: among active prices, the newest issuer event id."""
        active = [e for e in self._entries if e.active(now)]
        if not active:
            return None
        return max(active, key=lambda e: e.event.issuer_event_id).event

    def scheduled(self, start: int, count: int, now: int) -> list[PriceEvent]:
        """What Get Scheduled Prices resends (D.4.2.3.2): prices still in force after
        ``start`` (0 = now), current and future, by start time; ``count`` 0 = all. The
        receiver resolves overlaps with the same rule, so nothing it needs is left out."""
        self._expire(now)
        since = now if start == 0 else start
        events = [e for e in self._entries if e.end is None or e.end > since]
        events.sort(key=lambda e: (e.start, e.event.issuer_event_id))
        chosen = [e.event for e in events]
        return chosen if count == 0 else chosen[:count]

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
