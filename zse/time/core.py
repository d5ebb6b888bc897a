"""Time with daylight saving, sans-IO (ZCL 3.12.2.2): the attribute set and local time.

All times are ZigBee UTCTime (seconds since 2000-01-01 00:00:00 UTC); ``now`` is always an
argument. ZCL 3.12.2.2 gives a time server TimeZone (the standard offset from UTC, int32 s),
DstStart / DstEnd (when daylight saving starts and ends this year, in UTC), DstShift (what
DST adds, int32 s), StandardTime = Time + TimeZone and LocalTime = StandardTime + DstShift
while DST is in effect (ZCL 3.12.2.2.6-3.12.2.2.8). :func:`local_time` is that rule; the
server (:mod:`zse.time.service`) and a client reading the attributes both use it.

DST is in effect for ``DstStart <= Time < DstEnd``: at DstEnd the clocks already show standard
time (as IANA's tz database and every clock on the wall do). When DstStart is after DstEnd in
a year (the southern hemisphere: DST ends in April and starts again in October), DST is in
effect outside ``[DstEnd, DstStart)``. 0xFFFFFFFF is the spec's invalid DstStart / DstEnd: no
DST.
"""

from __future__ import annotations

import datetime as _dt
import functools
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from zse.errors import ZseError
from zse.se.ids import TimeAttribute

__all__ = [
    "ATTRIBUTE_TYPES",
    "INVALID_TIME",
    "FixedZone",
    "IanaZone",
    "TimeCore",
    "TimeZoneError",
    "ZoneRule",
    "ZoneYear",
    "from_zigbee",
    "local_time",
    "standard_time",
    "to_zigbee",
    "utc_year",
]

#: The invalid UTCTime, DstStart and DstEnd (ZCL 3.12.2.2.4, 3.12.2.2.5).
INVALID_TIME: Final = 0xFFFFFFFF
#: The bound on TimeZone and DstShift (ZCL 3.12.2.2.3, 3.12.2.2.6: -86400 to +86400 s).
_MAX_OFFSET: Final = 86_400
_EPOCH: Final = _dt.datetime(2000, 1, 1, tzinfo=_dt.UTC)
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
    """Whether DST applies at ``time`` given this year's DstStart and DstEnd (see module)."""
    if INVALID_TIME in (dst_start, dst_end) or dst_start == dst_end:
        return False
    if dst_start < dst_end:
        return dst_start <= time < dst_end
    return time >= dst_start or time < dst_end


def local_time(time: int, time_zone: int, dst_start: int, dst_end: int, dst_shift: int) -> int:
    """LocalTime (ZCL 3.12.2.2.8): StandardTime, plus DstShift while DST is in effect."""
    shift = dst_shift if dst_in_effect(time, dst_start, dst_end) else 0
    return standard_time(time, time_zone) + shift


@dataclass(frozen=True, kw_only=True)
class ZoneYear:
    """TimeZone, DstStart, DstEnd and DstShift for one year: what a zone rule gives."""

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
    """Where a year's TimeZone and DST come from."""

    def for_year(self, year: int) -> ZoneYear:
        """The attribute values for a UTC calendar year."""
        ...


@dataclass(frozen=True)
class FixedZone:
    """Explicit values: a standard offset, and a DST period if given (the same every year)."""

    year_values: ZoneYear

    def for_year(self, year: int) -> ZoneYear:
        """The configured values, whatever the year."""
        return self.year_values


@dataclass(frozen=True)
class IanaZone:
    """An IANA tz database zone (``Europe/London``) read through :mod:`zoneinfo`.

    For each year it finds the instants the zone's UTC offset changes: TimeZone is the lower
    offset of the year, DstShift what the higher one adds, DstStart the change to the higher
    and DstEnd the change back (so Europe/Dublin's "negative DST" reads as London's).
    """

    name: str
    _zone: zoneinfo.ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = zoneinfo.ZoneInfo(self.name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise TimeZoneError(f"unknown time zone {self.name!r}") from exc
        object.__setattr__(self, "_zone", zone)

    def for_year(self, year: int) -> ZoneYear:
        """The attribute values for ``year`` (cached)."""
        return _iana_year(self._zone, self.name, year)

    def offset(self, time: int) -> int:
        """zoneinfo's UTC offset at a ZigBee UTCTime, in seconds."""
        offset = from_zigbee(time).astimezone(self._zone).utcoffset()
        assert offset is not None
        return int(offset.total_seconds())


@functools.lru_cache(maxsize=64)
def _iana_year(zone: zoneinfo.ZoneInfo, name: str, year: int) -> ZoneYear:
    def offset(time: int) -> int:
        value = from_zigbee(time).astimezone(zone).utcoffset()
        assert value is not None
        return int(value.total_seconds())

    begin = to_zigbee(_dt.datetime(year, 1, 1, tzinfo=_dt.UTC))
    end = to_zigbee(_dt.datetime(year + 1, 1, 1, tzinfo=_dt.UTC))
    changes: list[tuple[int, int]] = []  # (instant, offset from then on)
    day = 86_400
    previous = offset(begin)
    for days in range(1, 367):
        probe = min(begin + days * day, end - 1)
        current = offset(probe)
        if current != previous:
            low, high = probe - day, probe  # offset(low) == previous, offset(high) == current
            while high - low > 1:
                middle = (low + high) // 2
                if offset(middle) == previous:
                    low = middle
                else:
                    high = middle
            changes.append((high, current))
            previous = current
    offsets = {offset(begin), *(value for _, value in changes)}
    if not changes:
        return ZoneYear(time_zone=offset(begin))
    if len(offsets) != 2 or len(changes) > 2:
        raise TimeZoneError(f"{name}: {year} has more than one DST period")
    standard, daylight = min(offsets), max(offsets)
    starts = [at for at, value in changes if value == daylight]
    ends = [at for at, value in changes if value == standard]
    return ZoneYear(  # a year with one change: DST from the year's start, or to its end
        time_zone=standard,
        dst_start=starts[0] if starts else begin,
        dst_end=ends[0] if ends else end,
        dst_shift=daylight - standard,
    )


@dataclass
class TimeCore:
    """The time master's attribute set (ZCL 3.12.2.2), computed for ``now``.

    ``rule`` gives TimeZone and DST for the year ``now`` falls in, looked up again when the
    year rolls over. ``last_set_time`` / ``valid_until_time`` are INVALID_TIME until set
    (:meth:`set_time`).
    """

    rule: ZoneRule
    last_set_time: int = INVALID_TIME
    valid_until_time: int = INVALID_TIME
    _year: int | None = field(default=None, init=False, repr=False)
    _values: ZoneYear | None = field(default=None, init=False, repr=False)

    def year(self, now: int) -> ZoneYear:
        """This year's TimeZone and DST (refreshed when the UTC year changes). A later year
        the rule cannot express keeps the standard offset without DST; the first raises."""
        year = utc_year(now)
        if self._values is None or year != self._year:
            try:
                values = self.rule.for_year(year)
            except TimeZoneError:
                if self._values is None:
                    raise
                values = ZoneYear(time_zone=self._values.time_zone)  # no DST rather than none
            self._values, self._year = values, year
        return self._values

    def set_time(self, now: int, *, valid_for: int | None = None) -> None:
        """Record that the clock was set at ``now`` (LastSetTime, ZCL 3.12.2.2.9) and until
        when it is trusted (ValidUntilTime, 3.12.2.2.10; INVALID_TIME when not given)."""
        self.last_set_time = now
        self.valid_until_time = INVALID_TIME if valid_for is None else now + valid_for

    def attributes(self, now: int) -> dict[TimeAttribute, int]:
        """Every attribute but TimeStatus, as Read Attributes answers them at ``now``."""
        zone = self.year(now)
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
    (the rule the server uses; missing DST attributes mean no DST)."""
    try:
        time = values[TimeAttribute.TIME]
        time_zone = values[TimeAttribute.TIME_ZONE]
    except KeyError as exc:
        raise TimeZoneError(f"Time attribute {exc.args[0]:#06x} was not read") from None
    return local_time(
        time,
        time_zone,
        values.get(TimeAttribute.DST_START, INVALID_TIME),
        values.get(TimeAttribute.DST_END, INVALID_TIME),
        values.get(TimeAttribute.DST_SHIFT, 0),
    )


__all__ += ["dst_in_effect", "local_time_from_attributes"]
