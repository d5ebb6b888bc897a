"""Time with daylight saving, sans-IO (ZCL 3.12.2.2): the attribute set and local time.

All times are ZigBee UTCTime (seconds since 2000-01-01 00:00:00 UTC); ``now`` is always an
argument. ZCL 3.12.2.2 gives a time server TimeZone (the standard offset from UTC, int32 s),
DstStart / DstEnd (when daylight saving starts and ends, in UTC), DstShift (what DST adds,
int32 s), StandardTime = Time + TimeZone and LocalTime = StandardTime + DstShift "if DstStart
<= Time <= DstEnd" (ZCL 3.12.2.2.6-3.12.2.2.8). :func:`local_time` is that rule; the server
(:mod:`zse.time.service`) and a client reading the attributes both use it.

The server publishes the DST period in effect, or the next one when DST is not in effect, so
DstStart <= DstEnd always, even when the period spans the new year (the southern
hemisphere), and DstEnd is DST's last second (the transition back, minus one), as ZCL's
inclusive rule needs. :func:`dst_in_effect` also reads what zse published before (the UTC
year's two transition instants: DstStart after DstEnd in the south, DstEnd the first second
of standard time). 0xFFFFFFFF is the spec's invalid DstStart / DstEnd: no DST.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as _dt
import functools
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from zse.errors import ZseError
from zse.se.ids import TimeAttribute

__all__ = [
    "ATTRIBUTE_TYPES",
    "INVALID_TIME",
    "PERIOD_STEP",
    "ZIGBEE_EPOCH",
    "FixedZone",
    "IanaZone",
    "LocalTime",
    "TimeCore",
    "TimeZoneError",
    "ZoneRule",
    "ZoneYear",
    "from_zigbee",
    "keep_near",
    "local_period",
    "local_time",
    "local_time_by",
    "standard_time",
    "to_zigbee",
    "utc_as_local",
    "utc_year",
    "zone_from_attributes",
]

#: A meter's local time (ZigBee seconds) at a UTC instant (ZigBee seconds).
LocalTime = Callable[[int], int]


def utc_as_local(time: int) -> int:
    """The :data:`LocalTime` of a meter that knows no zone: UTC."""
    return time


#: The invalid UTCTime, DstStart and DstEnd (ZCL 3.12.2.2.4, 3.12.2.2.5).
INVALID_TIME: Final = 0xFFFFFFFF
#: The bound on TimeZone and DstShift (ZCL 3.12.2.2.3, 3.12.2.2.6: -86400 to +86400 s).
_MAX_OFFSET: Final = 86_400
_EPOCH: Final = _dt.datetime(2000, 1, 1, tzinfo=_dt.UTC)
#: The ZigBee epoch (UTCTime 0, 2000-01-01 00:00:00 UTC) as a Unix timestamp.
ZIGBEE_EPOCH: Final = 946_684_800
_UTC_TIME: Final = 0xE2
_BITMAP8: Final = 0x18
_INT32: Final = 0x2B
_UINT32: Final = 0x23
#: Each attribute's ZCL data type (ZCL 3.12.2.2, Table 3-69), declared once for both sides.
ATTRIBUTE_TYPES: Final[Mapping[TimeAttribute, int]] = {
    TimeAttribute.TIME: _UTC_TIME,
    TimeAttribute.TIME_STATUS: _BITMAP8,
    TimeAttribute.TIME_ZONE: _INT32,
    TimeAttribute.DST_START: _UINT32,
    TimeAttribute.DST_END: _UINT32,
    TimeAttribute.DST_SHIFT: _INT32,
    TimeAttribute.STANDARD_TIME: _UINT32,
    TimeAttribute.LOCAL_TIME: _UINT32,
    TimeAttribute.LAST_SET_TIME: _UTC_TIME,
    TimeAttribute.VALID_UNTIL_TIME: _UTC_TIME,
}


class TimeZoneError(ZseError, ValueError):
    """A zone the Time attributes cannot express (unknown name, offsets out of range, or a
    year with more than one DST period)."""


def to_zigbee(moment: _dt.datetime) -> int:
    """ZigBee UTCTime for an aware datetime."""
    return int((moment - _EPOCH).total_seconds())


def from_zigbee(time: int) -> _dt.datetime:
    """The aware UTC datetime of a ZigBee UTCTime."""
    return _EPOCH + _dt.timedelta(seconds=time)


def utc_year(time: int) -> int:
    """The UTC calendar year a ZigBee UTCTime falls in."""
    return from_zigbee(time).year


def standard_time(time: int, time_zone: int) -> int:
    """StandardTime = Time + TimeZone (ZCL 3.12.2.2.7)."""
    return time + time_zone


def dst_in_effect(time: int, dst_start: int, dst_end: int) -> bool:
    """Whether DST applies at ``time``: ZCL 3.12.2.2.8's ``DstStart <= Time <= DstEnd``.

    Also right for the values zse published before, told apart by their form: a DstEnd on a
    whole minute is a transition instant, the first second of standard time (tz transitions
    since 2000 all fall on whole minutes, so ZCL's DstEnd, one second earlier, never does),
    and a DstStart after DstEnd (the UTC year's transitions in the south) means DST outside
    the standard-time gap between them.
    """
    if INVALID_TIME in (dst_start, dst_end) or dst_start == dst_end:
        return False
    last = dst_end - 1 if dst_end % 60 == 0 else dst_end  # DST's last second
    if dst_start <= last:
        return dst_start <= time <= last
    return time >= dst_start or time <= last


def local_time(time: int, time_zone: int, dst_start: int, dst_end: int, dst_shift: int) -> int:
    """LocalTime (ZCL 3.12.2.2.8): StandardTime, plus DstShift while DST is in effect."""
    shift = dst_shift if dst_in_effect(time, dst_start, dst_end) else 0
    return standard_time(time, time_zone) + shift


#: The ZigBee epoch's date: a day's key is its ordinal, local days since the epoch added.
_EPOCH_ORDINAL: Final = _dt.date(2000, 1, 1).toordinal()


def local_period(period: str, local: int) -> int:
    """The key of the local ``period`` ("day", "week" or "month") holding local ZigBee time
    ``local``: a day's date ordinal, its week's Monday's (weeks from Monday: ZBOSS's
    ``zb_zcl_metering.h`` and ``zb_zcl_prepayment.h``, "from the Historical Freeze Time on
    Monday"), a month's year * 12 + month - 1 (months from the 1st). Consecutive days and
    months have consecutive keys; weeks' keys are 7 apart. The Historical Consumption sets
    of the meter and of the prepay account (SE 1.2 D.3.2.2.5, D.7.2.2.6) are kept by them."""
    day = _EPOCH_ORDINAL + local // 86400
    if period == "day":
        return day
    date = _dt.date.fromordinal(day)
    if period == "week":
        return day - date.weekday()
    if period == "month":
        return date.year * 12 + date.month - 1
    raise ValueError(f"no local period {period!r} (day, week or month)")


#: How far apart the keys of consecutive local periods are (:func:`local_period`).
PERIOD_STEP: Final = {"day": 1, "week": 7, "month": 1}


def keep_near(held: dict[int, int], key: int, period: str, most: int) -> None:
    """Forget the counts of ``held`` (local ``period`` key -> count) more than ``most``
    periods from ``key``, either side: those a Historical Consumption set no longer serves.
    By distance, not by rank: a clock set ahead, then back, leaves no future period
    outranking the real ones (every later count was dropped as it was made)."""
    reach = most * PERIOD_STEP[period]
    for other in [other for other in held if abs(other - key) > reach]:
        del held[other]


def local_time_by(zone: Callable[[int], ZoneYear | None], time: int) -> int:
    """LocalTime at ``time`` by ``zone`` (a time server's :meth:`zone_at
    <zse.time.service.TimeServer.zone_at>`), UTC when it cannot say."""
    values = zone(time)
    return time if values is None else values.local_time(time)


@dataclass(frozen=True, kw_only=True)
class ZoneYear:
    """TimeZone, DstStart, DstEnd and DstShift as a time server publishes them: what a zone
    rule gives for an instant. ``dst_start`` is DST's first second and ``dst_end`` its last
    (ZCL 3.12.2.2.4-3.12.2.2.5; see :func:`dst_in_effect`), INVALID_TIME both without DST."""

    time_zone: int
    dst_start: int = INVALID_TIME
    dst_end: int = INVALID_TIME
    dst_shift: int = 0

    def __post_init__(self) -> None:
        for name in ("time_zone", "dst_shift"):
            if not -_MAX_OFFSET <= getattr(self, name) <= _MAX_OFFSET:
                raise TimeZoneError(f"{name} must be within +-86400 s (ZCL 3.12.2.2)")

    def local_time(self, time: int) -> int:
        """LocalTime at ``time`` (:func:`local_time`)."""
        return local_time(time, self.time_zone, self.dst_start, self.dst_end, self.dst_shift)


class ZoneRule(Protocol):
    """Where TimeZone and DST come from."""

    def values_at(self, time: int) -> ZoneYear:
        """The values to publish at ``time``: the DST period in effect, else the next one."""
        ...


@dataclass(frozen=True)
class FixedZone:
    """Explicit values, published as given whatever the time: a standard offset, and a DST
    period if given (DstEnd its last second, ZCL 3.12.2.2.5)."""

    year_values: ZoneYear

    def values_at(self, time: int) -> ZoneYear:
        """The configured values."""
        return self.year_values


@dataclass(frozen=True)
class IanaZone:
    """An IANA tz database zone (``Europe/London``) read through :mod:`zoneinfo`.

    DST is a period whose UTC offset is higher than the periods on both sides of it: DstShift
    is what it adds to the standard offset it falls back to, and DstStart / DstEnd are its
    first and last seconds (so Europe/Dublin's "negative DST" reads as London's). Outside DST,
    TimeZone is the offset now and the values describe the next DST period, or none when the
    next change is not one into DST (a zone dropping DST, or changing its standard offset).
    """

    name: str
    _zone: zoneinfo.ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = zoneinfo.ZoneInfo(self.name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
            # OSError: a tzdata directory ("Europe"), or a name too long for a file name
            name = self.name
            shown = repr(name) if len(name) <= 64 else f"{name[:64]!r}... ({len(name)} characters)"
            raise TimeZoneError(f"unknown time zone {shown}") from exc
        object.__setattr__(self, "_zone", zone)

    def values_at(self, time: int) -> ZoneYear:
        """The DST period in effect at ``time``, or the next one (ZCL 3.12.2.2.3-3.12.2.2.6)."""
        starts, offsets = _periods(self._zone, utc_year(time))
        here = bisect.bisect_right(starts, time) - 1

        def is_dst(index: int) -> bool:  # the window's first start and last end are unknown
            return 0 < index < len(offsets) - 1 and offsets[index] > max(
                offsets[index - 1], offsets[index + 1]
            )

        if is_dst(here):  # in effect: TimeZone is the offset DST falls back to
            period, time_zone = here, offsets[here + 1]
        elif is_dst(here + 1):  # the next change starts DST
            period, time_zone = here + 1, offsets[here]
        else:
            return ZoneYear(time_zone=offsets[here])
        return ZoneYear(
            time_zone=time_zone,
            dst_start=max(starts[period], 0),  # a uint32: a period begun before 2000 from 0
            dst_end=starts[period + 1] - 1,
            dst_shift=offsets[period] - time_zone,
        )

    def offset(self, time: int) -> int:
        """zoneinfo's UTC offset at a ZigBee UTCTime, in seconds."""
        return _offset(self._zone, time)


#: The probe step when looking for a zone's changes: shorter than any two tz changes apart.
_PROBE: Final = 6 * 3600


def _offset(zone: zoneinfo.ZoneInfo, time: int) -> int:
    value = from_zigbee(time).astimezone(zone).utcoffset()
    assert value is not None
    return int(value.total_seconds())


def _year_start(year: int) -> int:
    return to_zigbee(_dt.datetime(year, 1, 1, tzinfo=_dt.UTC))


@functools.lru_cache(maxsize=256)
def _changes(zone: zoneinfo.ZoneInfo, year: int) -> tuple[tuple[int, int], ...]:
    """The instants in the UTC year ``year`` at which the zone's offset changes, each with the
    offset from then on."""
    end = _year_start(year + 1) - 1
    low = _year_start(year) - 1
    previous = _offset(zone, low)
    changes: list[tuple[int, int]] = []
    while low < end:
        high = min(low + _PROBE, end)
        if _offset(zone, high) != previous:
            while high - low > 1:  # offset(low) == previous != offset(high)
                middle = (low + high) // 2
                if _offset(zone, middle) == previous:
                    low = middle
                else:
                    high = middle
            previous = _offset(zone, high)
            changes.append((high, previous))
        low = high
    return tuple(changes)


@functools.lru_cache(maxsize=64)
def _periods(zone: zoneinfo.ZoneInfo, year: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The zone's periods of one offset from the UTC year before ``year`` to the one after:
    their starts (the first from before the window; a last one starting at its end) and
    offsets (the last the window end's, a sentinel). Any instant of ``year`` then has its
    period, its neighbours and the next period complete."""
    begin, end = _year_start(year - 1), _year_start(year + 2)
    changes = [c for y in (year - 1, year, year + 1) for c in _changes(zone, y)]
    starts = [begin - 1, *(at for at, _ in changes), end]
    offsets = [_offset(zone, begin - 1), *(value for _, value in changes), _offset(zone, end)]
    return tuple(starts), tuple(offsets)


@dataclass
class TimeCore:
    """The time master's attribute set (ZCL 3.12.2.2), computed for ``now``.

    ``rule`` gives TimeZone and DST at ``now`` (:meth:`ZoneRule.values_at`).
    ``last_set_time`` / ``valid_until_time`` are INVALID_TIME until set (:meth:`set_time`);
    ``on_set()`` is told after each :meth:`set_time` (the server republishes ValidUntilTime).
    """

    rule: ZoneRule
    last_set_time: int = INVALID_TIME
    valid_until_time: int = INVALID_TIME
    on_set: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    _values: ZoneYear | None = field(default=None, init=False, repr=False)

    def values(self, now: int) -> ZoneYear:
        """TimeZone and DST at ``now``. When the rule cannot express them (TimeZoneError), the
        standard offset last served, without DST; raises if nothing was served yet."""
        self._values = self._zone_at(now)
        return self._values

    def _zone_at(self, time: int) -> ZoneYear:
        """:meth:`values` at ``time``, without recording them as served."""
        try:
            return self.rule.values_at(time)
        except TimeZoneError:
            if self._values is None:
                raise
            return ZoneYear(time_zone=self._values.time_zone)  # no DST rather than none

    def range_refusal(self, attribute: TimeAttribute, value: int, now: int) -> int | None:
        """INVALID_VALUE (ZCL 2.5.3.3) when writing ``value`` to ``attribute`` at ``now``
        would put Time, StandardTime or LocalTime out of range (:func:`range_refusal`) with
        the zone and DST in force: a Time with the zone at that Time, a TimeZone or DST value
        with the others at ``now``; None when they stay in range."""
        try:
            if attribute == TimeAttribute.TIME:
                return range_refusal(value, self._zone_at(value))
            if attribute in _ZONE_ATTRIBUTES:
                return range_refusal(now, written_zone(self._zone_at(now), attribute, value))
        except TimeZoneError:  # an offset out of +-86400 s (write_refusal refuses it first)
            return _INVALID_VALUE
        return None

    def set_time(self, now: int, *, valid_for: int | None = None) -> None:
        """Record that the clock was set at ``now`` (LastSetTime, ZCL 3.12.2.2.9) and until
        when it is trusted (ValidUntilTime, 3.12.2.2.10; INVALID_TIME when not given)."""
        self.last_set_time = now
        self.valid_until_time = INVALID_TIME if valid_for is None else now + valid_for
        if self.on_set is not None:
            self.on_set()

    def attributes(self, now: int) -> dict[TimeAttribute, int]:
        """Every attribute but TimeStatus, as Read Attributes answers them at ``now``: one
        instant for all, so StandardTime - Time == TimeZone."""
        zone = self.values(now)
        return {
            TimeAttribute.TIME: now,
            TimeAttribute.TIME_ZONE: zone.time_zone,
            TimeAttribute.DST_START: zone.dst_start,
            TimeAttribute.DST_END: zone.dst_end,
            TimeAttribute.DST_SHIFT: zone.dst_shift,
            TimeAttribute.STANDARD_TIME: standard_time(now, zone.time_zone),
            TimeAttribute.LOCAL_TIME: zone.local_time(now),
            TimeAttribute.LAST_SET_TIME: self.last_set_time,
            TimeAttribute.VALID_UNTIL_TIME: self.valid_until_time,
        }


def local_time_from_attributes(values: Mapping[TimeAttribute, int]) -> int:
    """A client's LocalTime from the Time, TimeZone, DstStart, DstEnd and DstShift it read
    (the rule the server uses). Only Time is needed: the others are optional (ZCL 3.12.2.2),
    a missing TimeZone counts as 0 (local time is UTC) and missing DST ones as no DST;
    TimeZoneError for a TimeZone or DstShift out of +-86400 s (3.12.2.2.3, 3.12.2.2.6)."""
    try:
        time = values[TimeAttribute.TIME]
    except KeyError:
        raise TimeZoneError(f"Time attribute {TimeAttribute.TIME:#06x} was not read") from None
    return zone_from_attributes(values).local_time(time)


def zone_from_attributes(values: Mapping[TimeAttribute, int]) -> ZoneYear:
    """TimeZone and DST as a client read them (:func:`local_time_from_attributes`' rule:
    a missing TimeZone is 0, missing DST ones no DST); TimeZoneError for an offset out of
    +-86400 s."""
    return ZoneYear(  # checks the offsets
        time_zone=values.get(TimeAttribute.TIME_ZONE, 0),
        dst_start=values.get(TimeAttribute.DST_START, INVALID_TIME),
        dst_end=values.get(TimeAttribute.DST_END, INVALID_TIME),
        dst_shift=values.get(TimeAttribute.DST_SHIFT, 0),
    )


#: TimeStatus bits (ZCL 3.12.2.2.2).
STATUS_MASTER: Final = 0x01
STATUS_SYNCHRONIZED: Final = 0x02
STATUS_MASTER_ZONE_DST: Final = 0x04
#: ZCL status values a refused write answers with (ZCL 2.5.5).
_INVALID_VALUE: Final = 0x87
_READ_ONLY: Final = 0x88
#: Each ZCL data type's range and the invalid value served for a value outside it.
_TYPE_RANGES: Final[Mapping[int, tuple[int, int, int]]] = {
    _UTC_TIME: (0, INVALID_TIME, INVALID_TIME),
    _UINT32: (0, 0xFFFFFFFF, 0xFFFFFFFF),
    _INT32: (-0x80000000, 0x7FFFFFFF, -0x80000000),
    _BITMAP8: (0, 0xFF, 0),
}
_ZONE_ATTRIBUTES: Final = (
    TimeAttribute.TIME_ZONE,
    TimeAttribute.DST_START,
    TimeAttribute.DST_END,
    TimeAttribute.DST_SHIFT,
)


def write_refusal(attribute: TimeAttribute, value: int, status: int) -> int | None:
    """Why Write Attributes (ZCL 2.5.3) may not write ``value`` to ``attribute`` of a time
    server whose TimeStatus is ``status``: the ZCL status (READ_ONLY, INVALID_VALUE), or None
    when it may (ZCL 3.12.2.2, Table 3-69: Time and TimeStatus are read/write).

    Time and TimeStatus are written only on a server that is not a Master (3.12.2.2.1-2: a
    master's clock is set internally to the time standard), and only TimeStatus's Synchronized
    bit (:func:`written_status`); TimeZone, DstStart, DstEnd and DstShift only without
    MasterZoneDst (3.12.2.2.2: then they are "set over the network") and, stricter than ZCL,
    not on a Master either (an ESI takes its zone from its configuration), TimeZone and
    DstShift within +-86400 s (3.12.2.2.3, 3.12.2.2.6). Time 0xFFFFFFFF, the invalid
    UTCTime, is INVALID_VALUE (ZCL 2.5.3.3); what a value does to the times served is
    :meth:`TimeCore.range_refusal`'s. StandardTime, LocalTime and LastSetTime are read only;
    ValidUntilTime is the server's own rule.
    """
    if attribute in (TimeAttribute.TIME, TimeAttribute.TIME_STATUS):
        if status & STATUS_MASTER:
            return _READ_ONLY
        return _INVALID_VALUE if attribute == TimeAttribute.TIME and value == INVALID_TIME else None
    if attribute in _ZONE_ATTRIBUTES:
        if status & (STATUS_MASTER | STATUS_MASTER_ZONE_DST):
            return _READ_ONLY
        offset = attribute in (TimeAttribute.TIME_ZONE, TimeAttribute.DST_SHIFT)
        if offset and not -_MAX_OFFSET <= value <= _MAX_OFFSET:
            return _INVALID_VALUE
        return None
    return _READ_ONLY


def range_refusal(time: int, zone: ZoneYear) -> int | None:
    """INVALID_VALUE (ZCL 2.5.3.3) when Time, StandardTime or LocalTime at ``time`` with
    ``zone`` would leave 0 to 0xFFFFFFFE (0xFFFFFFFF is the invalid UTCTime, ZCL 3.12.2.2.1,
    and their uint32 type holds nothing past it), None when all three fit."""
    times = (time, standard_time(time, zone.time_zone), zone.local_time(time))
    return None if all(0 <= value < INVALID_TIME for value in times) else _INVALID_VALUE


def out_of_type(attribute: TimeAttribute, value: int) -> int | None:
    """The invalid value to serve in place of ``value`` when it does not fit ``attribute``'s
    ZCL data type (ATTRIBUTE_TYPES), or None when it fits: 0xFFFFFFFF for the times, the
    int32 non-value 0x80000000 (ZCL 2.6.2) for TimeZone and DstShift."""
    low, high, invalid = _TYPE_RANGES[ATTRIBUTE_TYPES[attribute]]
    return None if low <= value <= high else invalid


def written_status(status: int, value: int) -> int:
    """TimeStatus after ``value`` was written to it: only Synchronized is taken; Master and
    MasterZoneDst are not writable and Superseding stays (ZCL 3.12.2.2.2)."""
    return (status & ~STATUS_SYNCHRONIZED) | (value & STATUS_SYNCHRONIZED)


def written_zone(zone: ZoneYear, attribute: TimeAttribute, value: int) -> ZoneYear:
    """The zone values after ``value`` was written to ``attribute`` (one of TimeZone,
    DstStart, DstEnd, DstShift; :func:`write_refusal` allowed it)."""
    name = {
        TimeAttribute.TIME_ZONE: "time_zone",
        TimeAttribute.DST_START: "dst_start",
        TimeAttribute.DST_END: "dst_end",
        TimeAttribute.DST_SHIFT: "dst_shift",
    }[attribute]
    return dataclasses.replace(zone, **{name: value})


__all__ += [
    "STATUS_MASTER",
    "STATUS_MASTER_ZONE_DST",
    "STATUS_SYNCHRONIZED",
    "dst_in_effect",
    "local_time_from_attributes",
    "out_of_type",
    "range_refusal",
    "write_refusal",
    "written_status",
    "written_zone",
]
