"""The meter's Historical Consumption set (SE 1.2 D.3.2.2.5) as a sans-IO core.

:class:`History` counts what the meter's summations advance by (raw units, the summations'
Multiplier and Divisor, shown with HistoricalConsumptionFormatting, D.3.2.2.4.6) in the local
day, week and month of the reading that carries the advance, and the highest demand fed in
each local day:

- **periods** start at the Historical Freeze Time (HFT, uint16: hours in the high octet,
  minutes in the low one, as DailyFreezeTime's, D.3.2.2.1; ZBOSS's ``zb_zcl_metering.h``
  gives it "the time of day, in Local Time, when Historical Consumption attributes ... are
  captured (hour and minutes)"); a day from the HFT, a week from the HFT on Monday and a
  month from the HFT on the 1st (ZBOSS: "since the Historical Freeze Time (HFT) on Monday",
  "on the 1st of the month"); local time is the ESI's Time server's
  (:func:`zse.time.core.local_time_by`), the same periods as the prepay account's cost
  consumption (:func:`zse.time.core.local_period`);
- **values** are read by their distance from the time of the read (:meth:`History.value`):
  a day that turned with no reading reads as a new day at 0 and the day before as the
  previous one, never stale;
- **advance** since the previous reading counts in the period of the reading that carries
  it (zse's choice, as the tier summations and the load profile count it: what was used
  across a freeze time before its first reading counts in the new period); the first
  reading and a register going back add nothing;
- **ranges**: days and weeks are uint24, months uint32 (D.3.2.2.5, Wireshark 4.0's types);
  a count that would reach the type's all-ones value (ZCL's non-value for an unsigned
  integer) stays one below it (zse's choice);
- CurrentDayMaxDemand / PreviousDayMaxDemand (0x040D / 0x040E, int24, the SE 1.2 ids
  zigpy and zsmartsystems declare): the highest InstantaneousDemand fed in the day, 0 when
  none was (zse's choice). SE 1.2 gives them no time; the time comes with SE 1.4's
  CurrentDayMaxDemandDelivered / ...Time pair (0x045D / 0x045E in ZBOSS), which zse does
  not serve.

The counts are kept with the load profile (:meth:`History.record`, in
:meth:`MeterCore.snapshot <zse.metering.core.MeterCore.snapshot>`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from zse.records import Fields, Int, ListOf, Mismatch, TupleOf, check
from zse.se.ids import CONSUMPTION_PERIODS, consumption_attribute
from zse.se.ids import MeteringAttribute as A
from zse.time.core import PERIOD_STEP, LocalTime, keep_near, local_period, utc_as_local

__all__ = ["HISTORY_SHAPE", "History", "freeze_seconds"]

_DAY: Final = 86_400
#: The largest count each period's type holds below its all-ones non-value (ZCL 2.6.2).
_TOP: Final = {"day": 0xFFFFFE, "week": 0xFFFFFE, "month": 0xFFFF_FFFE}
_DEMAND: Final = (-(1 << 23), (1 << 23) - 1)
_COUNTS = Fields(
    {period: ListOf(TupleOf(Int(0, 1 << 32), Int(0, 1 << 48))) for period in CONSUMPTION_PERIODS}
)
#: A :meth:`History.record` as stored (in the profile record's ``history``).
HISTORY_SHAPE = Fields(
    {"delivered": _COUNTS, "max_demand": ListOf(TupleOf(Int(0, 1 << 32), Int(*_DEMAND)))},
    optional={"received": _COUNTS},
)


def freeze_seconds(freeze_time: int) -> int:
    """Seconds after local midnight of a HistoricalFreezeTime (hours in the high octet, 0-23;
    minutes in the low one, 0-59); ``ValueError`` otherwise."""
    hours, minutes = divmod(freeze_time, 0x100)
    if not (0 <= freeze_time <= 0xFFFF and hours < 24 and minutes < 60):
        raise ValueError(
            f"HistoricalFreezeTime 0x{freeze_time:04X} is not hours 0-23 and minutes 0-59"
        )
    return hours * 3600 + minutes * 60


class History:
    """A meter's day / week / month consumption and day's highest demand (module docstring).

    ``received``: the meter is two-way (CurrentSummationReceived): the Received attributes
    too; ``demand``: it has InstantaneousDemand: the day's highest demand too; ``local``: its
    local time at a UTC instant (default UTC); ``freeze_time``: HistoricalFreezeTime
    (default 0, midnight)."""

    def __init__(
        self,
        *,
        received: bool,
        demand: bool,
        local: LocalTime | None = None,
        freeze_time: int = 0,
    ) -> None:
        self._offset = freeze_seconds(freeze_time)
        self.freeze_time = freeze_time
        self.local: LocalTime = local if local is not None else utc_as_local
        self.demand = demand
        ways = (False, True) if received else (False,)
        #: By way (received?) and period: local period key -> advance counted.
        self._counts: dict[bool, dict[str, dict[int, int]]] = {
            way: {period: {} for period in CONSUMPTION_PERIODS} for way in ways
        }
        #: Local day key -> the highest demand fed that day.
        self._max_demand: dict[int, int] = {}
        #: The local day (days since the epoch, from the freeze time) last asked and its
        #: periods' keys (:meth:`_key`).
        self._day: int | None = None
        self._keys: dict[str, int] = {}
        self._ids: dict[int, tuple[bool, str, int]] = {
            consumption_attribute(period, back, received=way): (way, period, back)
            for way in ways
            for period, most in CONSUMPTION_PERIODS.items()
            for back in range(most + 1)
        }

    def attributes(self) -> tuple[int, ...]:
        """The attributes served: the consumption (Received too on a two-way meter), the
        day's highest demand (with a demand), HistoricalFreezeTime."""
        demand = (A.CURRENT_DAY_MAX_DEMAND, A.PREVIOUS_DAY_MAX_DEMAND) if self.demand else ()
        return (*self._ids, *demand, A.HISTORICAL_FREEZE_TIME)

    def _key(self, period: str, now: int) -> int:
        """The key of ``period`` holding ``now`` (the local day's keys worked out once a
        day: each reading asks for them)."""
        day = (self.local(now) - self._offset) // _DAY
        if day != self._day:
            self._day = day
            self._keys = {p: local_period(p, day * _DAY) for p in CONSUMPTION_PERIODS}
        return self._keys[period]

    def add(self, advance: int, now: int, *, received: bool = False) -> None:
        """Count a summation's ``advance`` read at ``now`` in its day, week and month (a
        register going back, ``advance`` <= 0, counts nothing); those served kept
        (:func:`~zse.time.core.keep_near`)."""
        if advance <= 0:
            return
        for period, most in CONSUMPTION_PERIODS.items():
            held = self._counts[received][period]
            key = self._key(period, now)
            if key not in held:  # a new period: the ones out of reach go (once a period)
                keep_near(held, key, period, most)
            held[key] = held.get(key, 0) + advance

    def add_demand(self, demand: int, now: int) -> None:
        """An InstantaneousDemand fed at ``now``: the day's highest if above it."""
        day = self._key("day", now)
        held = self._max_demand.get(day)
        if held is None:  # a new day: today's and yesterday's kept
            keep_near(self._max_demand, day, "day", 1)
        self._max_demand[day] = demand if held is None else max(held, demand)

    def value(self, attribute: int, now: int) -> int | None:
        """``attribute``'s value at ``now`` (None: not one of the set served here)."""
        if attribute == A.HISTORICAL_FREEZE_TIME:
            return self.freeze_time
        if self.demand and attribute in (A.CURRENT_DAY_MAX_DEMAND, A.PREVIOUS_DAY_MAX_DEMAND):
            back = int(attribute == A.PREVIOUS_DAY_MAX_DEMAND)
            return self._max_demand.get(self._key("day", now) - back, 0)
        held = self._ids.get(attribute)
        if held is None:
            return None
        way, period, back = held
        key = self._key(period, now) - PERIOD_STEP[period] * back
        return min(self._counts[way][period].get(key, 0), _TOP[period])

    def values(self, now: int) -> dict[int, int]:
        """Every attribute served and its value at ``now`` (as :meth:`value`, each period's
        key found once)."""
        keys = {period: self._key(period, now) for period in CONSUMPTION_PERIODS}
        out = {
            attribute: min(
                self._counts[way][period].get(keys[period] - PERIOD_STEP[period] * back, 0),
                _TOP[period],
            )
            for attribute, (way, period, back) in self._ids.items()
        }
        if self.demand:
            out[A.CURRENT_DAY_MAX_DEMAND] = self._max_demand.get(keys["day"], 0)
            out[A.PREVIOUS_DAY_MAX_DEMAND] = self._max_demand.get(keys["day"] - 1, 0)
        out[A.HISTORICAL_FREEZE_TIME] = self.freeze_time
        return out

    def _into_day(self, time: int) -> int:
        """Seconds since the local day holding ``time`` began (at the freeze time)."""
        return (self.local(time) - self._offset) % _DAY

    def next_turn(self, now: int) -> int:
        """When the local day next turns after ``now`` (the freeze time), a daylight saving
        change before it taken into account (the day is then 23 or 25 hours long)."""
        turn = now + _DAY - self._into_day(now)
        off = self._into_day(turn)  # 0 unless the local clock moved on the way
        moved = turn - off if off < _DAY // 2 else turn + _DAY - off
        return moved if moved > now else turn

    def record(self) -> dict[str, Any]:
        """The counts as JSON-able data (:meth:`restore` reads them back)."""
        record: dict[str, Any] = {
            ("received" if way else "delivered"): {
                period: sorted([key, count] for key, count in held.items())
                for period, held in periods.items()
            }
            for way, periods in self._counts.items()
        }
        record["max_demand"] = sorted([key, value] for key, value in self._max_demand.items())
        return record

    def restore(self, record: Any) -> None:
        """Take back a :meth:`record`: ``Mismatch`` (nothing changed) when it is not the
        shape or not this meter's (Received counts on a delivered-only meter)."""
        check(record, HISTORY_SHAPE)
        if ("received" in record) != (True in self._counts):
            raise Mismatch(".history: the received counts are not this meter's")
        self._counts = {
            way: {period: _pairs(stored[period]) for period in CONSUMPTION_PERIODS}
            for way, stored in _ways(record).items()
        }
        self._max_demand = _pairs(record["max_demand"])


def _pairs(stored: list[list[int]]) -> dict[int, int]:
    return {pair[0]: pair[1] for pair in stored}


def _ways(record: Mapping[str, Any]) -> dict[bool, Any]:
    """A record's counts by way (received?)."""
    names = ((False, "delivered"), (True, "received"))
    return {way: record[name] for way, name in names if name in record}
