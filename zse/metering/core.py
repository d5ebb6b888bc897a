"""The meter (Metering server, SE D.3) as a sans-IO core: values, reporting and Get Profile.

:class:`MeterCore` holds the meter's attribute values, fed by a source of readings through
:meth:`MeterCore.update` with the time (seconds since the ZigBee epoch). A delivered-only
meter refuses a summation that goes down (:class:`SummationDecreased`). Changes go to a
:class:`zse.zcl.reporting.ReportingEngine` (ZCL 2.5.7-2.5.11), and whole profile intervals
to a bounded ring per interval channel (:class:`ProfileRing`) that answers Get Profile
(D.3.2.3.1.1). Consumption read within an interval counts in that interval; an interval with
no reading at all, and the one in which readings come back after such a gap (what was used
during the gap cannot be told apart from it), are not captured (:data:`INTERVAL_NOT_CAPTURED`,
D.3.2.3.1.1.5). Encoding the answers is the protocol's job.

The summations are 48-bit registers (uint48, D.3.2.2.1.1) that roll over in the field: a
summation at or above 2^48 is taken modulo 2^48, and a value below the one held is a
rollover, not a decrease, when going forward across 2^48 is the shorter way (less than half
the register, 2^47: serial number arithmetic as RFC 1982 section 3.2 defines it); the
interval it falls in counts the consumption across the wrap.

Tier summations (the TOU Information set, D.3.2.2.2): the shell tells the core the price tier
in force (:meth:`MeterCore.set_tier`, 1-48 as Publish Price's tier fields joined number them,
D.4.2.4.1; 0 no tier); each reading's advance since the previous one (delivered, and received
on a two-way meter) is added to the tier in force when it is taken, into
CurrentTierNSummationDelivered / Received (uint48, rolling over as the summations do). What is
read while no tier is in force, and a register that goes back, count in no tier (zse's
choice: the tiers then sum to less than the summation, never more). The registers of tiers
1 to the highest in force so far exist (at 0 until used); the others are UNSUPPORTED_ATTRIBUTE,
as any attribute a meter does not hold. They are kept with the profile
(:meth:`MeterCore.snapshot`).

The Historical Consumption set (SE 1.2 D.3.2.2.5: day / week / month consumption, the day's
highest demand, HistoricalFreezeTime) is counted from the same readings by
:class:`~zse.metering.history.History` and kept with the profile too; its values are those at
the time they are read (:meth:`MeterCore.read_at`), and the reporting engine is given them at
each reading and when the local day turns (:meth:`MeterCore.next_deadline`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from zse.errors import ZseError
from zse.metering.history import HISTORY_SHAPE, History
from zse.records import Fields, Int, ListOf, MapOf, Mismatch, Opt, TupleOf, check
from zse.se.frames import max_zcl_payload
from zse.se.ids import MAX_TIER, tier_summation_attribute
from zse.se.ids import MeteringAttribute as A
from zse.se.types import GetProfileStatus, IntervalChannel
from zse.time.core import LocalTime
from zse.zcl.reporting import NO_REPORTING, Report, ReportingConfig, ReportingEngine

__all__ = [
    "FAST_POLL_UPDATE_PERIOD_RANGE",
    "INTERVAL_NOT_CAPTURED",
    "MAX_PERIODS_DELIVERED",
    "PROFILE_INTERVAL_SECONDS",
    "MeterCore",
    "ProfileAnswer",
    "ProfileRing",
    "ReadingSource",
    "Readings",
    "SummationDecreased",
    "summation_advance",
]

#: An interval not captured (D.3.2.3.1.1.5).
INTERVAL_NOT_CAPTURED = 0xFFFFFF
#: A Get Profile Response's fixed fields (D.3.2.3.1.1): EndTime 4, Status 1,
#: ProfileIntervalPeriod 1, NumberOfPeriodsDelivered 1; each interval takes 3 more.
_PROFILE_FIXED, _INTERVAL = 7, 3
_ONE_FRAME = max_zcl_payload(group=False, aps_encrypted=True)
#: The most MaxNumberOfPeriodsDelivered may be (D.3.2.2.6: "the maximum number of intervals
#: the device is capable of returning in one Get Profile Response"): 21, what one unfragmented
#: APS-encrypted unicast frame holds (:func:`zse.se.frames.max_zcl_payload`: 70 octets, 7 + 3
#: x 21 = 70). D.3.2.2.6 bounds it by the 128-octet default fragmentation ASDU too (39), but
#: zse has no APS fragmentation: a response of 22 or more intervals could not be sent.
MAX_PERIODS_DELIVERED = (_ONE_FRAME - _PROFILE_FIXED) // _INTERVAL
#: FastPollUpdatePeriod's range here, seconds (D.3.2.2.1): the meter refreshes its readings
#: at most once a second (ZigBee UTCTime counts whole seconds), so 0 is not a period it keeps;
#: an Applied Update Period of 0 would promise updates it cannot make.
FAST_POLL_UPDATE_PERIOD_RANGE = (1, 0xFF)
#: ProfileIntervalPeriod (D.3.2.3.1.1.3) -> seconds: daily, 60, 30, 15, 10, 7.5, 5, 2.5 minutes.
PROFILE_INTERVAL_SECONDS: Mapping[int, int] = {
    0: 86400,
    1: 3600,
    2: 1800,
    3: 900,
    4: 600,
    5: 450,
    6: 300,
    7: 150,
    8: 60,  # one minute: a later SE revision's (zigpy's ProfileIntervalPeriod.Minutes_1)
}
_UINT48 = (1 << 48) - 1
_UINT24 = (1 << 24) - 1
_REGISTER = 1 << 48
_HALF_REGISTER = 1 << 47


def summation_advance(before: int, after: int) -> int:
    """How far a 48-bit summation register went from ``before`` to ``after`` (both
    0..2^48-1): ``after - before`` when it did not go down; across a rollover
    (``after + 2^48 - before``) when that is less than half the register (RFC 1982 section
    3.2); otherwise the decrease, negative."""
    if after >= before:
        return after - before
    forward = after + _REGISTER - before
    return forward if forward < _HALF_REGISTER else after - before


#: Attribute -> analog (a reportable change applies) for what the core may hold: a meter
#: supports those it is given a value for at construction, and InstantaneousDemand unless
#: built without it (``demand=False``; optional, SE D.3.2.2.1.1), its value not known until
#: the first reading that carries it.
_ATTRIBUTES: Mapping[int, bool] = {
    A.CURRENT_SUMM_DELIVERED: True,
    A.CURRENT_SUMM_RECEIVED: True,
    A.INSTANTANEOUS_DEMAND: True,
    A.STATUS: False,
    A.UNIT_OF_MEASURE: False,
    A.MULTIPLIER: False,
    A.DIVISOR: False,
    A.SUMMATION_FORMATTING: False,
    A.DEMAND_FORMATTING: False,
    A.HISTORICAL_CONSUMPTION_FORMATTING: False,
    A.METERING_DEVICE_TYPE: False,
    A.MAX_NUMBER_OF_PERIODS_DELIVERED: False,
    A.DEFAULT_UPDATE_PERIOD: False,
    A.FAST_POLL_UPDATE_PERIOD: False,
}

D = TypeVar("D", bound=Hashable)

#: The readings a profile snapshot keeps (the open interval is counted from them): range.
_RANGES: Mapping[int, tuple[int, int]] = {
    A.CURRENT_SUMM_DELIVERED: (0, _UINT48),
    A.CURRENT_SUMM_RECEIVED: (0, _UINT48),
    A.INSTANTANEOUS_DEMAND: (-(1 << 23), (1 << 23) - 1),
    A.STATUS: (0, 0xFF),
}
#: Every attribute the core holds -> the range of its wire type (D.3.2.2): a value given at
#: construction outside it would fail only when a frame carrying it is encoded.
_VALUE_RANGES: Mapping[int, tuple[int, int]] = {
    **_RANGES,
    **dict.fromkeys((A.MULTIPLIER, A.DIVISOR), (0, _UINT24)),
    **dict.fromkeys(
        (
            A.UNIT_OF_MEASURE,
            A.SUMMATION_FORMATTING,
            A.DEMAND_FORMATTING,
            A.HISTORICAL_CONSUMPTION_FORMATTING,
            A.METERING_DEVICE_TYPE,
            A.MAX_NUMBER_OF_PERIODS_DELIVERED,
            A.DEFAULT_UPDATE_PERIOD,
        ),
        (0, 0xFF),
    ),
    A.FAST_POLL_UPDATE_PERIOD: FAST_POLL_UPDATE_PERIOD_RANGE,
}
_PROFILE_SHAPE = Fields(
    {
        "period": Int(0, max(PROFILE_INTERVAL_SECONDS)),
        "interval_end": Int(0, 0xFFFFFFFF),
        "channels": MapOf(
            Fields(
                {
                    "start": Opt(Int(0, _UINT48)),
                    "intervals": ListOf(TupleOf(Int(0, 0xFFFFFFFF), Int(0, _UINT24))),
                }
            ),
            key=int,
        ),
        "values": MapOf(Int(-(1 << 23), _UINT48), key=int),
    },
    # absent from the records of releases before tier summations / historical consumption
    optional={
        "tiers": MapOf(TupleOf(Int(0, _UINT48), Opt(Int(0, _UINT48))), key=int),
        "history": HISTORY_SHAPE,
    },
)


class SummationDecreased(ZseError, ValueError):
    """A delivered-only meter was fed a summation lower than the one it holds (and not a
    rollover of the 48-bit register, :func:`summation_advance`)."""


@dataclass(frozen=True, kw_only=True)
class Readings:
    """What a reading source knows now; None leaves a value as it is."""

    summation_delivered: int | None = None
    summation_received: int | None = None
    instantaneous_demand: int | None = None
    status: int | None = None


class ReadingSource(Protocol):
    """Where a meter's readings come from (the simulator's load model, a real meter's
    register): asked at ``now`` (ZigBee time) by the meter's service, which feeds
    :meth:`MeterCore.update` with the answer."""

    def readings(self, now: int) -> Readings:
        """What the source knows at ``now``."""


@dataclass(frozen=True, kw_only=True)
class ProfileAnswer:
    """The fields of a Get Profile Response (D.3.2.3.1.1)."""

    end_time: int
    status: GetProfileStatus
    profile_interval_period: int
    intervals: tuple[int, ...]

    @property
    def number_of_periods_delivered(self) -> int:
        """NumberOfPeriodsDelivered (D.3.2.3.1.1.4)."""
        return len(self.intervals)


class ProfileRing:
    """The last ``capacity`` whole intervals of one channel, each as (end time, value)."""

    def __init__(self, capacity: int) -> None:
        self._ring: deque[tuple[int, int]] = deque(maxlen=capacity)

    def append(self, end_time: int, value: int) -> None:
        """Record a closed interval (kept within 0..0xFFFFFE; :data:`INTERVAL_NOT_CAPTURED`
        is kept as it is)."""
        if value != INTERVAL_NOT_CAPTURED:
            value = max(0, min(value, _UINT24 - 1))
        self._ring.append((end_time, value))

    @property
    def capacity(self) -> int:
        """How many intervals the ring keeps."""
        return self._ring.maxlen or 0

    def items(self) -> tuple[tuple[int, int], ...]:
        """Every (end time, value) kept, oldest first."""
        return tuple(self._ring)

    def clear(self) -> None:
        """Forget every interval."""
        self._ring.clear()

    def latest(self, end_time: int, count: int) -> tuple[int, tuple[int, ...]]:
        """The end time of the newest interval ending at or before ``end_time`` and up to
        ``count`` values from it, most recent first ((0, ()) when there is none)."""
        chosen = [item for item in self._ring if item[0] <= end_time]
        if not chosen:
            return 0, ()
        newest = chosen[-1][0]
        return newest, tuple(value for _, value in reversed(chosen[-count:] if count else []))

    def __len__(self) -> int:
        return len(self._ring)


class MeterCore(Generic[D]):
    """A meter's attributes, reporting and load profile (SE D.3, server side).

    ``formatting`` holds the Formatting attributes (D.3.2.2.4), the MeteringDeviceType and
    DefaultUpdatePeriod / FastPollUpdatePeriod (D.3.2.2.1) by attribute id, each within its
    wire type (``ValueError`` otherwise: a uint8 FastPollUpdatePeriod of 300 could never be
    sent in a Request Fast Poll Mode Response), FastPollUpdatePeriod at least 1 s
    (:data:`FAST_POLL_UPDATE_PERIOD_RANGE`); ``profile_period`` is a ProfileIntervalPeriod
    code; ``max_periods`` is MaxNumberOfPeriodsDelivered (D.3.2.2.6, 1 to
    :data:`MAX_PERIODS_DELIVERED`), ``profile_capacity`` the intervals kept per
    channel. ``initial``: the meter's readings at ``now``, the registers the first profile
    interval counts from (:meth:`begin`); None: registers at 0. ``demand``: whether the meter
    has InstantaneousDemand (optional, SE D.3.2.2.1.1); without it a reading of a demand is a
    ``ValueError``, and it is refused UNSUPPORTED_ATTRIBUTE (ZCL 2.5.7.3) however it is asked.
    ``local``: the meter's local time at a UTC instant (default UTC) and ``freeze_time`` its
    HistoricalFreezeTime (hours << 8 | minutes, default 0), which bound the Historical
    Consumption set's days (:class:`~zse.metering.history.History`).
    """

    def __init__(
        self,
        *,
        formatting: Mapping[int, int],
        now: int,
        delivered_only: bool = True,
        demand: bool = True,
        profile_period: int = 2,
        max_periods: int = MAX_PERIODS_DELIVERED,
        profile_capacity: int = 96,
        initial: Readings | None = None,
        local: LocalTime | None = None,
        freeze_time: int = 0,
    ) -> None:
        if profile_period not in PROFILE_INTERVAL_SECONDS:
            raise ValueError(f"unknown profile interval period {profile_period}")
        if not 1 <= max_periods <= MAX_PERIODS_DELIVERED:
            raise ValueError(
                f"MaxNumberOfPeriodsDelivered {max_periods} is outside 1-{MAX_PERIODS_DELIVERED}"
            )
        unknown = set(formatting) - set(_ATTRIBUTES)
        if unknown:
            raise ValueError(f"not a formatting attribute: {sorted(unknown)}")
        for attribute, value in formatting.items():
            low, high = _VALUE_RANGES[attribute]
            if not low <= value <= high:
                raise ValueError(f"attribute 0x{attribute:04X} = {value} is outside {low}-{high}")
        self.delivered_only = delivered_only
        self.demand = demand
        self.profile_period = profile_period
        self.max_periods = max_periods
        values = {
            A.CURRENT_SUMM_DELIVERED: 0,
            A.STATUS: 0,
            A.MAX_NUMBER_OF_PERIODS_DELIVERED: max_periods,
            **formatting,
        }
        if not delivered_only:
            values[A.CURRENT_SUMM_RECEIVED] = 0
        supported = {*values, *((A.INSTANTANEOUS_DEMAND,) if demand else ())}
        #: The Historical Consumption set (D.3.2.2.5), counted from the readings.
        self.history = History(
            received=not delivered_only, demand=demand, local=local, freeze_time=freeze_time
        )
        self.reporting: ReportingEngine[D] = ReportingEngine(
            {
                **{attribute: _ATTRIBUTES[attribute] for attribute in supported},
                **{a: a != A.HISTORICAL_FREEZE_TIME for a in self.history.attributes()},
            }
        )
        for attribute, value in values.items():
            self.reporting.update(attribute, value)
        #: When the local day next turns (the history's values change with no reading).
        self._turn = 0
        #: The reporting records (destination, attribute) held for the history's attributes.
        self._history_records: set[tuple[D, int]] = set()
        self._refresh_history(now)
        seconds = PROFILE_INTERVAL_SECONDS[profile_period]
        self._period = seconds
        self._interval_end = (now // seconds + 1) * seconds
        self._channels = {IntervalChannel.Consumption_Delivered: A.CURRENT_SUMM_DELIVERED}
        if not delivered_only:
            self._channels[IntervalChannel.Consumption_Received] = A.CURRENT_SUMM_RECEIVED
        self._rings = {channel: ProfileRing(profile_capacity) for channel in self._channels}
        #: Each channel's summation at the open interval's start; None: no reading there
        #: (readings came back after a gap), the interval is not captured.
        self._start: dict[IntervalChannel, int | None] = {
            channel: self._summation(channel) for channel in self._channels
        }
        #: The price tier in force (:meth:`set_tier`), 0 none.
        self._tier = 0
        if initial is not None:
            self.begin(initial, now)

    def read(self, attribute: int) -> int | None:
        """An attribute's value (None: the meter does not have it), as last updated: for
        the Historical Consumption set use :meth:`read_at` (the reporting engine is given
        its values only while one of them is reported: a reading's cost stays the meter's)."""
        return self.reporting.value(attribute)

    def read_at(self, attribute: int, now: int) -> int | None:
        """An attribute's value at ``now``: the Historical Consumption set's from the counts
        at ``now`` (a day that turned with no reading is a new day at 0), others as
        :meth:`read`."""
        value = self.history.value(attribute, now)
        return self.read(attribute) if value is None else value

    def _refresh_history(self, now: int) -> None:
        """Give the reporting engine the Historical Consumption set's values at ``now``."""
        for attribute, value in self.history.values(now).items():
            self.reporting.update(attribute, value)
        self._turn = self.history.next_turn(now)

    def supports(self, attribute: int) -> bool:
        """True for an attribute the meter has, with a value yet or not (its InstantaneousDemand
        before the first reading of it); not a Multiplier not configured, nor the demand of a
        meter built without it."""
        return self.reporting.supports(attribute)

    @property
    def tier(self) -> int:
        """The price tier in force (:meth:`set_tier`): 1-48, 0 none."""
        return self._tier

    def set_tier(self, tier: int) -> None:
        """The price tier now in force (D.3.2.2.2): 1-48 as Publish Price's Price Tier and
        Extended Price Tier fields joined number them (D.4.2.4.1; 0 no tier, the Price Tier
        field's "no tier"), ``ValueError`` otherwise. Readings taken from now on add their
        advance to its CurrentTierNSummationDelivered (and Received on a two-way meter).
        The meter holds the registers of tiers 1 to the highest in force so far, each at 0
        until used (zse's choice: as a meter's tiers in use are numbered from 1, what a
        snapshot's TOU sub-payload counts, :mod:`zse.metering.snapshots`)."""
        if not 0 <= tier <= MAX_TIER:
            raise ValueError(f"price tier {tier} is outside 0-{MAX_TIER}")
        self._tier = tier
        for held in range(1, tier + 1):
            self._hold_tier(held, 0, None if self.delivered_only else 0, keep=True)

    def _hold_tier(self, tier: int, delivered: int, received: int | None, *, keep: bool) -> None:
        """Hold tier ``tier``'s registers (``keep``: as they are when already held)."""
        for attribute, value in (
            (tier_summation_attribute(tier), delivered),
            (tier_summation_attribute(tier, received=True), received),
        ):
            if value is None or (keep and self.reporting.value(attribute) is not None):
                continue
            self.reporting.add_attribute(attribute, analog=True)
            self.reporting.update(attribute, value)

    def tiers(self) -> dict[int, tuple[int, int | None]]:
        """Each tier held: (CurrentTierNSummationDelivered, Received; None on a
        delivered-only meter)."""
        held: dict[int, tuple[int, int | None]] = {}
        for tier in range(1, MAX_TIER + 1):
            delivered = self.read(tier_summation_attribute(tier))
            if delivered is not None:
                held[tier] = (delivered, self.read(tier_summation_attribute(tier, received=True)))
        return held

    def set_supply_status(self, status: int) -> None:
        """The meter's Supply Status (SE 1.2, 0x0014) is now ``status``, as its supply control
        (:mod:`zse.metering.supply`) holds it. From the first call the meter has the
        attribute: read, and reportable as a discrete one (an enum8, zigpy's declaration
        that :mod:`zse.metering.wire` takes: any change is reported, ZCL 2.5.7.1); a meter
        without supply control never calls it and refuses the attribute. ``ValueError`` for
        a value that is not an enum8."""
        if not 0 <= status <= 0xFF:
            raise ValueError(f"supply status {status} is not an enum8")
        self.reporting.add_attribute(A.SUPPLY_STATUS, analog=False)
        self.reporting.update(A.SUPPLY_STATUS, status)

    @property
    def interval_end(self) -> int:
        """When the profile interval now open ends (it changes when intervals close)."""
        return self._interval_end

    def snapshot(self) -> dict[str, Any]:
        """The profile rings, the open interval and the readings held, as JSON-able data
        (:meth:`restore` reads it back)."""
        return {
            "period": self.profile_period,
            "interval_end": self._interval_end,
            "channels": {
                str(int(channel)): {
                    "start": self._start[channel],
                    "intervals": [list(item) for item in ring.items()],
                }
                for channel, ring in self._rings.items()
            },
            "values": {str(int(a)): value for a in _RANGES if (value := self.read(a)) is not None},
            "tiers": {str(tier): list(held) for tier, held in self.tiers().items()},
            "history": self.history.record(),
        }

    def restore(self, record: Any, now: int | None = None) -> None:
        """Take back a :meth:`snapshot`; ``Mismatch`` (nothing changed) when it is not the
        shape, or is another meter's (other interval period or channels). A record without
        the historical consumption (earlier releases) counts it from here. ``now``: the
        reporting engine is given the Historical Consumption set's values then."""
        check(record, _PROFILE_SHAPE)
        if record["period"] != self.profile_period:
            raise Mismatch(f".period: {record['period']}, this meter's is {self.profile_period}")
        mine = {str(int(channel)) for channel in self._rings}
        if set(record["channels"]) != mine:
            raise Mismatch(f".channels: not this meter's ({sorted(mine)})")
        values = {int(a): v for a, v in record["values"].items()}
        for attribute, value in values.items():
            low, high = _RANGES.get(attribute, (1, 0))
            if not low <= value <= high:
                raise Mismatch(f".values: not a reading of attribute 0x{attribute:04X}")
        if self.delivered_only and A.CURRENT_SUMM_RECEIVED in values:
            raise Mismatch(".values: a delivered-only meter has no summation received")
        if not self.demand:  # stored while it had one: not a reading it has now
            values.pop(A.INSTANTANEOUS_DEMAND, None)
        tiers = self._stored_tiers(record.get("tiers", {}))
        if "history" in record:  # checked before anything changes; changes only the history
            self.history.restore(record["history"])
        self._interval_end = record["interval_end"]
        for channel, ring in self._rings.items():
            stored = record["channels"][str(int(channel))]
            ring.clear()
            for end, value in stored["intervals"][-ring.capacity :]:
                ring.append(end, value)
            self._start[channel] = stored["start"]
        for attribute, value in values.items():
            self.reporting.update(attribute, value)
        for tier, (delivered, received) in tiers.items():
            self._hold_tier(tier, delivered, received, keep=False)
        if now is not None:
            self._refresh_history(now)

    def _stored_tiers(self, stored: Mapping[str, Any]) -> dict[int, tuple[int, int | None]]:
        """A snapshot's tier summations (shape checked), this meter's or ``Mismatch``: tiers
        1-48, a summation received exactly when the meter is two-way."""
        tiers: dict[int, tuple[int, int | None]] = {}
        for key, (delivered, received) in stored.items():
            tier = int(key)
            if not 1 <= tier <= MAX_TIER:
                raise Mismatch(f".tiers: {tier} is not a tier (1-{MAX_TIER})")
            if (received is None) != self.delivered_only:
                raise Mismatch(f".tiers: tier {tier}'s summation received is not this meter's")
            tiers[tier] = (delivered, received)
        return tiers

    def _summation(self, channel: IntervalChannel) -> int:
        return self.reporting.value(self._channels[channel]) or 0

    def begin(self, readings: Readings, now: int) -> None:
        """Take the first readings at ``now``, the registers the meter is at when it is first
        read (a real meter does not start from 0): held (never a decrease), and the interval
        open at ``now`` counts from their summations (D.3.2.3.1.1.5: an interval holds the
        change since the previous one); intervals ended before, without a reading, are not
        captured."""
        if now >= self._interval_end:
            self._start = dict.fromkeys(self._channels)
            self._close_intervals(now)
        self._take(readings, now, first=True)
        self._start = {channel: self._summation(channel) for channel in self._channels}

    def update(self, readings: Readings, now: int) -> None:
        """Take new readings at ``now``: close the profile intervals that ended, then hold the
        values (SummationDecreased, nothing changed, when a delivered-only meter goes back).

        Summations are 48-bit registers: one at or above 2^48 is taken modulo 2^48, and a
        delivered summation below the one held is a rollover when it is less than 2^47 ahead
        across 2^48 (:func:`summation_advance`); a negative one is out of range."""
        self._take(readings, now, first=False)

    def _take(self, readings: Readings, now: int, *, first: bool) -> None:
        """:meth:`update`; the ``first`` readings (:meth:`begin`) are never a decrease."""
        for name, value, top in (
            ("summation delivered", readings.summation_delivered, None),
            ("summation received", readings.summation_received, None),
            ("status", readings.status, 0xFF),
        ):
            if value is not None and (value < 0 or (top is not None and value > top)):
                raise ValueError(f"{name} {value} out of range")
        delivered = readings.summation_delivered
        if delivered is not None:
            delivered %= _REGISTER
        received = readings.summation_received
        if received is not None:
            received %= _REGISTER
        held = self.reporting.value(A.CURRENT_SUMM_DELIVERED) or 0
        if (
            not first
            and self.delivered_only
            and delivered is not None
            and summation_advance(held, delivered) < 0
        ):
            raise SummationDecreased(f"summation delivered {delivered} is below {held}")
        if self.delivered_only and received is not None:
            raise ValueError("a delivered-only meter has no summation received")
        demand = readings.instantaneous_demand
        if demand is not None and not -(1 << 23) <= demand < 1 << 23:
            raise ValueError(f"instantaneous demand {demand} out of range")
        if demand is not None and not self.demand:
            raise ValueError("a meter without InstantaneousDemand has no demand")
        if now >= self._interval_end:
            self._close_intervals(now)
        self._count(delivered, received, demand, now, first=first)
        for attribute, value in (
            (A.CURRENT_SUMM_DELIVERED, delivered),
            (A.CURRENT_SUMM_RECEIVED, received),
            (A.INSTANTANEOUS_DEMAND, demand),
            (A.STATUS, readings.status),
        ):
            if value is not None:
                self.reporting.update(attribute, value)
        if self._history_records:  # else read at the time of each read (read_at): not here
            self._refresh_history(now)

    def _count(
        self,
        delivered: int | None,
        received: int | None,
        demand: int | None,
        now: int,
        *,
        first: bool,
    ) -> None:
        """Count a reading's advance (not the ``first``'s) in the tier in force and the
        local day, week and month, and its demand in the day's highest."""
        if not first:
            if self._tier:
                self._add_to_tier(delivered, received)
            self._add_to_history(delivered, received, now)
        if demand is not None:
            self.history.add_demand(demand, now)

    def _add_to_history(self, delivered: int | None, received: int | None, now: int) -> None:
        """Count the summations' advance since the readings held (across a rollover; a
        register that went back counts nothing) in the local day, week and month of ``now``."""
        for summation, value, was_received in (
            (A.CURRENT_SUMM_DELIVERED, delivered, False),
            (A.CURRENT_SUMM_RECEIVED, received, True),
        ):
            held = self.reporting.value(summation)
            if value is not None and held is not None:
                self.history.add(summation_advance(held, value), now, received=was_received)

    def _add_to_tier(self, delivered: int | None, received: int | None) -> None:
        """Add the summations' advance since the readings held (across a rollover,
        :func:`summation_advance`; a register that went back adds nothing) to the tier in
        force, its registers rolling over at 2^48 as the summations do."""
        for summation, value, was_received in (
            (A.CURRENT_SUMM_DELIVERED, delivered, False),
            (A.CURRENT_SUMM_RECEIVED, received, True),
        ):
            held = self.reporting.value(summation)
            if value is None or held is None:
                continue
            advance = summation_advance(held, value)
            register = tier_summation_attribute(self._tier, received=was_received)
            if advance > 0:
                total = (self.reporting.value(register) or 0) + advance
                self.reporting.update(register, total % _REGISTER)

    def _close_intervals(self, now: int) -> None:
        """Append every interval ended by ``now``: the first holds what was read since the
        last boundary (across a register rollover: :func:`summation_advance`), the others,
        without a reading, are not captured (D.3.2.3.1.1.5), and so is the interval open now
        when there were such (what it will read includes the gap's consumption); after a
        long gap only as many as a ring keeps."""
        ended = (now - self._interval_end) // self._period + 1
        for channel, ring in self._rings.items():
            summation = self._summation(channel)
            start = self._start[channel]
            first = self._interval_end
            skipped = max(0, ended - ring.capacity)
            for index in range(skipped, ended):
                used = INTERVAL_NOT_CAPTURED
                if index == 0 and start is not None:
                    used = summation_advance(start, summation)
                ring.append(first + index * self._period, used)
            self._start[channel] = summation if ended == 1 else None
        self._interval_end += ended * self._period

    def configure_reporting(self, destination: D, config: ReportingConfig, now: int) -> int:
        """Configure Reporting (ZCL 2.5.7) for one attribute: the record's status (an
        attribute not supported: UNSUPPORTED_ATTRIBUTE; one without a value yet reports once
        it comes)."""
        history = config.attribute in self.history.attributes()
        if history:  # the engine holds the set's values only while one of them is reported
            self._refresh_history(now)
        status = self.reporting.configure(destination, config, now)
        if status == 0 and history:
            record = (destination, config.attribute)
            if config.max_interval == NO_REPORTING:
                self._history_records.discard(record)
            else:
                self._history_records.add(record)
        return int(status)

    def next_deadline(self) -> int | None:
        """When :meth:`handle_timeout` next has a report to send, or the local day turns
        while an attribute of the Historical Consumption set is reported (its values change
        then; otherwise they are only read, each at the time of the read)."""
        reporting = self.reporting.next_deadline()
        if not self._history_reported():
            return reporting
        return self._turn if reporting is None else min(reporting, self._turn)

    def _history_reported(self) -> bool:
        """Whether a reporting record is held for an attribute of the Historical
        Consumption set (:meth:`configure_reporting` keeps them)."""
        return bool(self._history_records)

    def handle_timeout(self, now: int) -> tuple[Report[D], ...]:
        """The Report Attributes due at ``now``, one per destination (the Historical
        Consumption set's values at ``now`` given first, once the day turned)."""
        if now >= self._turn:
            self._refresh_history(now)
        return self.reporting.handle_timeout(now)

    def get_profile(
        self, channel: int, end_time: int, number_of_periods: int, now: int
    ) -> ProfileAnswer:
        """Answer Get Profile (D.3.3.3.1.1) with a Get Profile Response (D.3.2.3.1.1).

        ``end_time`` 0 asks for the most recent intervals; a later time than ``now`` is an
        invalid end time; more periods than MaxNumberOfPeriodsDelivered are answered with
        that many and status 0x04. The intervals ended by ``now`` are closed first (as
        :meth:`update` with no new reading would), so the answer does not wait for the next
        reading to include them."""

        def refuse(status: GetProfileStatus) -> ProfileAnswer:
            return ProfileAnswer(
                end_time=end_time,
                status=status,
                profile_interval_period=self.profile_period,
                intervals=(),
            )

        if now >= self._interval_end:
            self._close_intervals(now)
        known = {int(c): c for c in IntervalChannel}
        if channel not in known:
            return refuse(GetProfileStatus.Undefined_Interval_Channel_Requested)
        ring = self._rings.get(known[channel])
        if ring is None:
            return refuse(GetProfileStatus.Interval_Channel_Not_Supported)
        if end_time > now:
            return refuse(GetProfileStatus.Invalid_End_Time)
        status = GetProfileStatus.Success
        count = number_of_periods
        if count > self.max_periods:
            status = GetProfileStatus.More_Periods_Requested_Than_Can_Be_Returned
            count = self.max_periods
        newest, intervals = ring.latest(end_time or now, count)
        if not newest:
            return refuse(GetProfileStatus.No_Intervals_Available_For_The_Requested_Time)
        return ProfileAnswer(
            end_time=newest,
            status=status,
            profile_interval_period=self.profile_period,
            intervals=intervals,
        )
