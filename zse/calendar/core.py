"""Calendar (SE 1.2 D.9), sans-IO: time-of-use calendars kept, split, put back together and read.

A :class:`CalendarSchedule` is one whole calendar: seasons -> week profiles -> day profiles ->
schedule entries, and the special days that replace a date's day profile. :meth:`CalendarSchedule.
at` answers what a display or load controller asks: the value in force at an instant (a price
tier, Friendly Credit on or off, the auxiliary load switches) and when it next changes.

:class:`Calendars` keeps calendars by calendar type, each type in Price's
:class:`~zse.price.core.Published` timeline (the same rule for "in force": the latest start
not after now, a start 0 meaning "now", the newer issuer event id on a tie; the same bound):
one rule for both clusters; a calendar is named by its provider and Issuer Calendar ID,
and a newer one supersedes the older ones it overlaps (:class:`_Timeline`).
A server publishes a calendar as :meth:`CalendarSchedule.parts`,
each command within one frame (:func:`zse.se.frames.max_zcl_payload`, the APS-encrypted
unicast budget Price uses). A client puts the parts back together with
:meth:`Calendars.add_header` and :meth:`Calendars.add_part`, in any order: a calendar is in
force only once every season, week profile and day profile it announced has arrived.

The SE 1.2 text (07-5356-19) was out of reach: field meanings are those Wireshark 4.0's
Calendar dissector names (calendar types, time references, ZCL Date) and the SE 1.2 command
descriptions as other projects' definitions summarise them (facts only). Where a rule is
zse's own reading it says so.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as _dt
import enum
import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from zse.errors import InvalidFrame
from zse.price.core import START_NOW, Published
from zse.records import STR, U8, U16, U32, Fields, ListOf, Opt, TupleOf, check
from zse.se.frames import max_zcl_payload
from zse.time.core import ZoneYear, from_zigbee

__all__ = [
    "ANY_CALENDAR_TYPE",
    "ANY_PROVIDER",
    "MAX_CALENDAR_NAME",
    "CalendarCancellation",
    "CalendarHeader",
    "CalendarOutcome",
    "CalendarPart",
    "CalendarReading",
    "CalendarSchedule",
    "CalendarType",
    "Calendars",
    "DayProfile",
    "PartKind",
    "TimeReference",
    "WeekProfile",
    "ZclDate",
    "calendar_from_record",
    "calendar_record",
]

#: Calendar Type "any" in Get Calendar / Get Special Days (zse's reading: 0xFF, as the other
#: SE "all types" values).
ANY_CALENDAR_TYPE: Final = 0xFF
#: Provider ID "any" in Get Calendar / Get Special Days (zse's reading).
ANY_PROVIDER: Final = 0xFFFFFFFF
#: Calendar Name: up to 12 octets (D.9.2.4.1.1).
MAX_CALENDAR_NAME: Final = 12
#: Min Issuer Event ID "any" (as Price's, D.4.2.3.5.1.2).
_ANY_EVENT: Final = 0xFFFFFFFF
#: Minutes in a day: a schedule entry starts at 0-1439.
_DAY_MINUTES: Final = 24 * 60
_ANY: Final = 0xFF

#: The ZCL payload one frame carries: an APS-encrypted unicast (Price's budget).
_ONE_FRAME: Final = max_zcl_payload(group=False, aps_encrypted=True)
#: Publish Day Profile before its entries: provider, issuer event, issuer calendar ids, day
#: id, total entries, command index, total commands, calendar type.
_DAY_FIXED: Final = 3 * 4 + 5
#: Publish Seasons before its entries: the three ids, command index, total commands.
_SEASONS_FIXED: Final = 3 * 4 + 2
#: Publish Special Days before its entries: the three ids, start time, calendar type, total
#: special days, command index, total commands.
_SPECIAL_FIXED: Final = 4 * 4 + 4
_ENTRY: Final = 3
_DATED: Final = 5


class CalendarType(enum.IntEnum):
    """Calendar Type (D.9.2.4.1.1), as Wireshark names them; a day profile's entry values are
    price tiers for the first three, else Friendly Credit enable or the auxiliary load switch
    state."""

    DELIVERED = 0x00
    RECEIVED = 0x01
    DELIVERED_AND_RECEIVED = 0x02
    FRIENDLY_CREDIT = 0x03
    AUXILIARY_LOAD_SWITCH = 0x04


class TimeReference(enum.IntEnum):
    """Calendar Time Reference (D.9.2.4.1.1): the clock schedule entries, season starts and
    special days are read in."""

    UTC = 0x00
    STANDARD = 0x01
    LOCAL = 0x02


_KNOWN_TYPES: Final = frozenset(CalendarType)
_KNOWN_REFERENCES: Final = frozenset(TimeReference)


@dataclass(frozen=True)
class ZclDate:
    """A ZCL Date (ZCL 2.6.2.19): year - 1900, month 1-12, day of month 1-31, day of week
    1 (Monday) - 7; 0xFF in a field: any."""

    year: int = _ANY
    month: int = _ANY
    day: int = _ANY
    weekday: int = _ANY

    @classmethod
    def of(cls, date: _dt.date, *, weekday: bool = False) -> ZclDate:
        """``date`` as a ZCL Date (its day of week only when asked)."""
        return cls(date.year - 1900, date.month, date.day, date.isoweekday() if weekday else _ANY)

    @classmethod
    def from_octets(cls, octets: Sequence[int]) -> ZclDate:
        """From the four octets on the wire."""
        return cls(*octets)

    def octets(self) -> tuple[int, int, int, int]:
        """The four octets on the wire."""
        return (self.year, self.month, self.day, self.weekday)

    def matches(self, date: _dt.date) -> bool:
        """Whether ``date`` is this date (each 0xFF field matching any value)."""
        wanted = (date.year - 1900, date.month, date.day, date.isoweekday())
        return all(
            mine in (_ANY, theirs) for mine, theirs in zip(self.octets(), wanted, strict=True)
        )

    def in_year(self, year: int) -> _dt.date | None:
        """The date it names in ``year`` (its own year if it has one), or None (another
        year, no month or day, or no such date)."""
        if self.year != _ANY and self.year + 1900 != year:
            return None
        try:
            return _dt.date(year, self.month, self.day)
        except ValueError:
            return None


@dataclass(frozen=True)
class DayProfile:
    """One day profile (D.9.2.4.2): its Day ID (1-255) and schedule entries, (start in minutes
    after midnight, value), by start."""

    day_id: int
    entries: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple((int(s), int(v)) for s, v in self.entries))
        if not 1 <= self.day_id <= 0xFF:
            raise ValueError(f"day id {self.day_id} is not 1-255")
        if not self.entries or len(self.entries) > 0xFF:
            raise ValueError(f"day {self.day_id}: 1-255 schedule entries, not {len(self.entries)}")
        starts = [start for start, _ in self.entries]
        if starts != sorted(set(starts)) or not starts[0] >= 0 or starts[-1] >= _DAY_MINUTES:
            raise ValueError(f"day {self.day_id}: starts must rise within 0-1439 minutes")
        if any(not 0 <= value <= 0xFF for _, value in self.entries):
            raise ValueError(f"day {self.day_id}: a value does not fit one octet")


@dataclass(frozen=True)
class WeekProfile:
    """One week profile (D.9.2.4.3): its Week ID (1-255) and the day id of Monday-Sunday."""

    week_id: int
    days: tuple[int, int, int, int, int, int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", tuple(int(day) for day in self.days))
        if not 1 <= self.week_id <= 0xFF or len(self.days) != 7:
            raise ValueError(f"week {self.week_id}: an id 1-255 and 7 day ids")


@dataclass(frozen=True, kw_only=True)
class CalendarHeader:
    """Publish Calendar (D.9.2.4.1): a calendar's ids, start, type, time reference, name and
    how many seasons, week profiles and day profiles it has."""

    provider_id: int
    issuer_event_id: int
    issuer_calendar_id: int
    start_time: int = 0
    calendar_type: int = CalendarType.DELIVERED
    calendar_time_reference: int = TimeReference.LOCAL
    calendar_name: bytes = b""
    number_of_seasons: int = 0
    number_of_week_profiles: int = 0
    number_of_day_profiles: int = 0

    def __post_init__(self) -> None:
        if len(self.calendar_name) > MAX_CALENDAR_NAME:
            raise ValueError(f"calendar name longer than {MAX_CALENDAR_NAME} octets")
        for name in ("provider_id", "issuer_event_id", "issuer_calendar_id", "start_time"):
            if not 0 <= getattr(self, name) <= 0xFFFFFFFF:
                raise ValueError(f"{name} does not fit 32 bits")
        for name in ("number_of_seasons", "number_of_week_profiles", "number_of_day_profiles"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"{name} does not fit one octet")

    def to_fields(self) -> dict[str, Any]:
        """Publish Calendar's fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_fields(cls, command: Any) -> CalendarHeader:
        """From a decoded Publish Calendar."""
        try:
            return cls(
                provider_id=int(command.provider_id),
                issuer_event_id=int(command.issuer_event_id),
                issuer_calendar_id=int(command.issuer_calendar_id),
                start_time=int(command.start_time),
                calendar_type=int(command.calendar_type),
                calendar_time_reference=int(command.calendar_time_reference),
                calendar_name=bytes(command.calendar_name),
                number_of_seasons=int(command.number_of_seasons),
                number_of_week_profiles=int(command.number_of_week_profiles),
                number_of_day_profiles=int(command.number_of_day_profiles),
            )
        except ValueError as exc:
            raise InvalidFrame(f"Publish Calendar: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class CalendarCancellation:
    """Cancel Calendar (D.9.2.4.6): the calendar of this provider, issuer calendar id and
    type is void."""

    provider_id: int
    issuer_calendar_id: int
    calendar_type: int

    def to_fields(self) -> dict[str, Any]:
        """Cancel Calendar's fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_fields(cls, command: Any) -> CalendarCancellation:
        """From a decoded Cancel Calendar."""
        return cls(
            provider_id=int(command.provider_id),
            issuer_calendar_id=int(command.issuer_calendar_id),
            calendar_type=int(command.calendar_type),
        )


class PartKind(enum.Enum):
    """What a :class:`CalendarPart` carries."""

    DAY_PROFILE = "day profile"
    WEEK_PROFILE = "week profile"
    SEASONS = "seasons"
    SPECIAL_DAYS = "special days"


@dataclass(frozen=True, kw_only=True)
class CalendarPart:
    """One Publish Day Profile, Week Profile, Seasons or Special Days command (D.9.2.4.2-5):
    Command Index ``command_index`` of ``total_number_of_commands``, its items as the wire
    has them ((start, value) schedule entries; a week's 7 day ids; (date octets, id) seasons
    or special days), and the header every part of one set shares: ``key`` is the day or
    week id (0 for seasons and special days), ``total`` the Total Number of Schedule Entries
    or Special Days, ``calendar_type`` and ``start_time`` as the command has them (0
    otherwise)."""

    kind: PartKind
    provider_id: int
    issuer_event_id: int
    issuer_calendar_id: int
    key: int = 0
    total: int = 0
    calendar_type: int = 0
    start_time: int = 0
    command_index: int = 0
    total_number_of_commands: int = 1
    items: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.command_index < self.total_number_of_commands:
            raise ValueError(
                f"command index {self.command_index} of {self.total_number_of_commands} commands"
            )

    def same_set(self, other: CalendarPart) -> bool:
        """Whether ``other`` belongs to the same set of commands: the same header but the
        index and items."""
        mine = dataclasses.replace(self, command_index=0, items=())
        return mine == dataclasses.replace(other, command_index=0, items=())

    def to_fields(self) -> dict[str, Any]:
        """The fields of its Publish command."""
        fields: dict[str, Any] = {
            "provider_id": self.provider_id,
            "issuer_event_id": self.issuer_event_id,
            "issuer_calendar_id": self.issuer_calendar_id,
        }
        if self.kind is PartKind.WEEK_PROFILE:
            fields["week_id"] = self.key
            fields.update(zip(_WEEKDAY_FIELDS, self.items, strict=True))
            return fields
        if self.kind is PartKind.DAY_PROFILE:
            fields["day_id"] = self.key
            fields["total_number_of_schedule_entries"] = self.total
        elif self.kind is PartKind.SPECIAL_DAYS:
            fields["start_time"] = self.start_time
            fields["calendar_type"] = self.calendar_type
            fields["total_number_of_special_days"] = self.total
        fields["command_index"] = self.command_index
        fields["total_number_of_commands"] = self.total_number_of_commands
        if self.kind is PartKind.DAY_PROFILE:
            fields["calendar_type"] = self.calendar_type
        fields["entries"] = self.items
        return fields

    @classmethod
    def from_fields(cls, kind: PartKind, command: Any) -> CalendarPart:
        """From a decoded Publish Day Profile, Week Profile, Seasons or Special Days;
        InvalidFrame for a Command Index not below the Total Number of Commands."""
        ids: dict[str, Any] = {
            "provider_id": int(command.provider_id),
            "issuer_event_id": int(command.issuer_event_id),
            "issuer_calendar_id": int(command.issuer_calendar_id),
        }
        more: dict[str, Any] = {}
        if kind is PartKind.WEEK_PROFILE:
            more = {
                "key": int(command.week_id),
                "items": tuple(int(getattr(command, name)) for name in _WEEKDAY_FIELDS),
            }
        else:
            more = {
                "command_index": int(command.command_index),
                "total_number_of_commands": int(command.total_number_of_commands),
                "items": tuple(command.entries),
            }
            if kind is PartKind.DAY_PROFILE:
                more["key"] = int(command.day_id)
                more["total"] = int(command.total_number_of_schedule_entries)
                more["calendar_type"] = int(command.calendar_type)
            elif kind is PartKind.SPECIAL_DAYS:
                more["start_time"] = int(command.start_time)
                more["calendar_type"] = int(command.calendar_type)
                more["total"] = int(command.total_number_of_special_days)
        try:
            return cls(kind=kind, **ids, **more)
        except ValueError as exc:
            raise InvalidFrame(f"{kind.value} part: {exc}") from None


_WEEKDAY_FIELDS: Final = tuple(
    f"day_id_ref_{day}"
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
)


@dataclass(frozen=True)
class CalendarReading:
    """What a calendar says at an instant: the ``value`` in force (a price tier, Friendly
    Credit 0/1, or the auxiliary load switch bitmap, as ``calendar_type`` says; None when
    no season or day covers the instant), and when it next changes (``changes_at``, UTC
    seconds since 2000, None if not within the horizon looked at) to ``next_value``."""

    calendar_type: int
    value: int | None
    changes_at: int | None = None
    next_value: int | None = None

    @property
    def price_tier(self) -> int | None:
        """The price tier in force (delivered / received calendars), else None."""
        priced = self.calendar_type <= CalendarType.DELIVERED_AND_RECEIVED
        return self.value if priced else None

    @property
    def friendly_credit(self) -> bool | None:
        """Whether Friendly Credit is enabled (a Friendly Credit calendar), else None."""
        if self.calendar_type != CalendarType.FRIENDLY_CREDIT or self.value is None:
            return None
        return bool(self.value)

    def aux_switch(self, switch: int) -> bool | None:
        """Whether auxiliary switch 1-8 is on (an Auxiliary Load Switch calendar), else None."""
        if self.calendar_type != CalendarType.AUXILIARY_LOAD_SWITCH or self.value is None:
            return None
        return bool(self.value >> (switch - 1) & 1)


#: How far ahead :meth:`CalendarSchedule.at` looks for the next change (days).
HORIZON_DAYS: Final = 400


@dataclass(frozen=True, kw_only=True)
class CalendarSchedule:
    """A whole calendar (D.9): its :class:`CalendarHeader` values, seasons ((start date, week
    id), by start), week and day profiles, and special days ((date, day id)). The
    special days carry their own issuer event id and start (Publish Special Days); by
    default the calendar's."""

    provider_id: int
    issuer_event_id: int
    issuer_calendar_id: int
    start_time: int = 0
    calendar_type: int = CalendarType.DELIVERED
    calendar_time_reference: int = TimeReference.LOCAL
    calendar_name: bytes = b""
    seasons: tuple[tuple[ZclDate, int], ...] = ()
    weeks: tuple[WeekProfile, ...] = ()
    days: tuple[DayProfile, ...] = ()
    special_days: tuple[tuple[ZclDate, int], ...] = ()
    special_days_event_id: int | None = None
    special_days_start: int | None = None
    _by_day: dict[int, DayProfile] = field(init=False, repr=False, compare=False)
    _by_week: dict[int, WeekProfile] = field(init=False, repr=False, compare=False)
    #: What its readings share (:meth:`at`), shared with its copies of another start.
    _memo: _Memo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.header()  # the header's checks
        object.__setattr__(self, "_memo", _Memo())
        object.__setattr__(self, "_by_day", {day.day_id: day for day in self.days})
        object.__setattr__(self, "_by_week", {week.week_id: week for week in self.weeks})
        if len(self._by_day) != len(self.days) or len(self._by_week) != len(self.weeks):
            raise ValueError("a day or week id given twice")
        if len(self.special_days) > 0xFF:
            raise ValueError("more than 255 special days")
        for week in self.weeks:
            if any(day not in self._by_day for day in week.days):
                raise ValueError(f"week {week.week_id} names a day profile not given")
        for _, week_id in self.seasons:
            if week_id not in self._by_week:
                raise ValueError(f"a season names week {week_id}, not given")
        for _, day_id in self.special_days:
            if day_id not in self._by_day:
                raise ValueError(f"a special day names day profile {day_id}, not given")

    @property
    def special_issue(self) -> int:
        """The issuer event id of its special days (the calendar's unless published apart)."""
        event = self.special_days_event_id
        return self.issuer_event_id if event is None else event

    def with_start(self, start: int) -> CalendarSchedule:
        """The same calendar starting at ``start`` (a start "now" resolved); its readings
        are the same (:meth:`at` does not look at the start): it shares what they keep."""
        moved = dataclasses.replace(self, start_time=start)
        object.__setattr__(moved, "_memo", self._memo)
        return moved

    def header(self) -> CalendarHeader:
        """Its Publish Calendar."""
        return CalendarHeader(
            provider_id=self.provider_id,
            issuer_event_id=self.issuer_event_id,
            issuer_calendar_id=self.issuer_calendar_id,
            start_time=self.start_time,
            calendar_type=self.calendar_type,
            calendar_time_reference=self.calendar_time_reference,
            calendar_name=self.calendar_name,
            number_of_seasons=len(self.seasons),
            number_of_week_profiles=len(self.weeks),
            number_of_day_profiles=len(self.days),
        )

    # --- the parts on the wire ---

    def _part(self, kind: PartKind, **more: Any) -> CalendarPart:
        return CalendarPart(
            kind=kind,
            provider_id=self.provider_id,
            issuer_event_id=self.issuer_event_id,
            issuer_calendar_id=self.issuer_calendar_id,
            **more,
        )

    def day_parts(self, first: int = 1, count: int = 0) -> list[CalendarPart]:
        """Publish Day Profile commands (D.9.2.4.2) of day ids ``first`` on (``count`` days;
        0: all, as Get Day Profiles asks, D.9.2.3.2), each within one frame."""
        days = [day for day in self.days if day.day_id >= first]
        days.sort(key=lambda day: day.day_id)
        chosen = days if count == 0 else days[:count]
        return [
            part
            for day in chosen
            for part in _split(
                day.entries,
                (_ONE_FRAME - _DAY_FIXED) // _ENTRY,
                lambda index, total, run, day=day: self._part(
                    PartKind.DAY_PROFILE,
                    key=day.day_id,
                    total=len(day.entries),
                    calendar_type=self.calendar_type,
                    command_index=index,
                    total_number_of_commands=total,
                    items=run,
                ),
            )
        ]

    def week_parts(self, first: int = 1, count: int = 0) -> list[CalendarPart]:
        """Publish Week Profile commands of week ids ``first`` on (``count``; 0: all)."""
        weeks = sorted((w for w in self.weeks if w.week_id >= first), key=lambda w: w.week_id)
        chosen = weeks if count == 0 else weeks[:count]
        return [
            self._part(PartKind.WEEK_PROFILE, key=week.week_id, items=week.days) for week in chosen
        ]

    def season_parts(self) -> list[CalendarPart]:
        """Publish Seasons commands (D.9.2.4.4, the answer to Get Seasons, D.9.2.3.4), each
        within one frame."""
        items = tuple((date.octets(), week) for date, week in self.seasons)
        return _split(
            items,
            (_ONE_FRAME - _SEASONS_FIXED) // _DATED,
            lambda index, total, run: self._part(
                PartKind.SEASONS, command_index=index, total_number_of_commands=total, items=run
            ),
        )

    def special_day_parts(self) -> list[CalendarPart]:
        """Publish Special Days commands (D.9.2.4.5, the answer to Get Special Days,
        D.9.2.3.5), each within one frame; none without special days."""
        if not self.special_days:
            return []
        items = tuple((date.octets(), day) for date, day in self.special_days)
        event = self.special_days_event_id
        return [
            dataclasses.replace(
                part, issuer_event_id=self.issuer_event_id if event is None else event
            )
            for part in _split(
                items,
                (_ONE_FRAME - _SPECIAL_FIXED) // _DATED,
                lambda index, total, run: self._part(
                    PartKind.SPECIAL_DAYS,
                    start_time=(
                        self.start_time
                        if self.special_days_start is None
                        else self.special_days_start
                    ),
                    calendar_type=self.calendar_type,
                    total=len(items),
                    command_index=index,
                    total_number_of_commands=total,
                    items=run,
                ),
            )
        ]

    def parts(self) -> list[CalendarPart]:
        """Every command after Publish Calendar that carries it: day profiles, week profiles,
        special days, then seasons (a receiver has the calendar whole, special days
        included, with the last)."""
        return [
            *self.day_parts(),
            *self.week_parts(),
            *self.special_day_parts(),
            *self.season_parts(),
        ]

    # --- reading it ---

    def _reference(self, utc: int, zone: ZoneYear | None) -> int:
        """``utc`` on the calendar's clock (D.9.2.4.1.1 Calendar Time Reference)."""
        if self.calendar_time_reference == TimeReference.UTC or zone is None:
            return utc
        if self.calendar_time_reference == TimeReference.STANDARD:
            return utc + zone.time_zone
        return zone.local_time(utc)

    def day_profile(self, date: _dt.date) -> DayProfile | None:
        """The day profile of ``date`` (on the calendar's clock): a special day's if one
        matches (the first listed), else the season's week profile's for its weekday."""
        for special, day_id in self.special_days:
            if special.matches(date):
                return self._by_day[day_id]
        week_id = self._season_week(date)
        if week_id is None:
            return None
        return self._by_day[self._by_week[week_id].days[date.weekday()]]

    def _season_week(self, date: _dt.date) -> int | None:
        """The week id of the season ``date`` falls in: the latest season start not after it
        (a season without a year recurs yearly, so the last of the year before runs on)."""
        best: tuple[_dt.date, int] | None = None
        for start, week_id in self.seasons:
            for year in (date.year, date.year - 1):
                begins = start.in_year(year)
                if begins is not None and begins <= date and (best is None or begins > best[0]):
                    best = (begins, week_id)
        return None if best is None else best[1]

    def _changes(self, date: _dt.date) -> list[tuple[int, int]]:
        """The entries of ``date`` as (minutes since 2000-01-01 00:00 on the calendar's
        clock, value)."""
        profile = self.day_profile(date)
        if profile is None:
            return []
        base = (date - _EPOCH).days * _DAY_MINUTES
        return [(base + start, value) for start, value in profile.entries]

    def value_at_reference(
        self,
        reference: int,
        changes: Callable[[_dt.date], list[tuple[int, int]]] | None = None,
    ) -> int | None:
        """The value in force at ``reference`` seconds since 2000 on the calendar's clock:
        the last entry started, looking back a day for one started before midnight.
        ``changes``: :meth:`_changes`, or a cache of it (:meth:`_next_change`); each day's
        entries rise (:class:`DayProfile`), so the last started is found by bisection."""
        changes = self._changes if changes is None else changes
        date = from_zigbee(reference).date()
        minute = reference // 60
        for day in (date, date - _dt.timedelta(days=1)):
            entries = changes(day)
            started = bisect.bisect_right(entries, minute, key=operator.itemgetter(0))
            if started:
                return entries[started - 1][1]
        return None

    def at(
        self, utc: int, zone: ZoneYear | None = None, *, horizon_days: int = HORIZON_DAYS
    ) -> CalendarReading:
        """The value in force at ``utc`` (seconds since 2000, UTC) and when it next changes
        (within ``horizon_days``). ``zone``: TimeZone and DST as the Time cluster gives them
        (:class:`zse.time.core.ZoneYear`), for a calendar on standard or local time; without
        it such a calendar is read as UTC. Special days replace the seasons' day profiles.
        The start of the calendar is not looked at here (:meth:`Calendars.at` is).

        The reading's day (its entries and the day before's) and look ahead are kept until
        the day, the zone or the value changes, or the change found is reached (zse's own):
        a look ahead from the same day, zone and offset tries the same instants in the same
        order, those after a later ``utc`` among them, which all read the value before the
        change found. A calendar's later readings that day cost a day's lookup, not the look
        ahead (a publisher's worst calendar: 0.5 s of CPU each, docs/performance.md)."""
        memo = self._memo
        reference = self._reference(utc, zone)
        day = from_zigbee(reference).date()
        known = {d: memo.days[d] for d in (day, day - _ONE_DAY) if d in memo.days}
        changes = functools.partial(_known_changes, self._changes, known)
        value = self.value_at_reference(reference, changes)
        look = (zone, day, reference - utc, horizon_days)
        last = memo.last
        if last is not None and last.still(look, utc, value):
            changes_at, next_value = last.changes_at, last.next_value
        else:
            changes_at, next_value = self._next_change(utc, zone, value, horizon_days, changes)
            memo.last = _LookAhead(look, utc, value, changes_at, next_value)
        memo.days = {d: changes(d) for d in (day, day - _ONE_DAY)}
        return CalendarReading(self.calendar_type, value, changes_at, next_value)

    def _next_change(
        self,
        utc: int,
        zone: ZoneYear | None,
        value: int | None,
        horizon_days: int,
        changes: Callable[[_dt.date], list[tuple[int, int]]],
    ) -> tuple[int | None, int | None]:
        """The first instant after ``utc`` with another value: each entry's start on the
        calendar's clock is tried as UTC with the offsets in effect before and after it
        (a DST change moves a local start), and DST's own changes too. Each day's entries
        are worked out once (``changes`` keeps them: special days and seasons looked
        through once a day, not once a candidate)."""
        here = self._reference(utc, zone) - utc
        offsets = {here}
        if zone is not None:
            offsets |= {zone.time_zone, zone.local_time(zone.dst_start) - zone.dst_start}
        date = from_zigbee(self._reference(utc, zone)).date()
        shifts = () if zone is None else (zone.dst_start, zone.dst_end + 1)
        for step in range(horizon_days + 1):
            day = date + _dt.timedelta(days=step)
            candidates = {at * 60 - offset for at, _ in changes(day) for offset in offsets}
            candidates |= {shift for shift in shifts if from_zigbee(shift).date() == day}
            for candidate in sorted(candidates):
                if candidate <= utc:
                    continue
                now_value = self.value_at_reference(self._reference(candidate, zone), changes)
                if now_value != value:
                    return candidate, now_value
        return None, None


_EPOCH: Final = _dt.date(2000, 1, 1)
_ONE_DAY: Final = _dt.timedelta(days=1)


def _known_changes(
    work_out: Callable[[_dt.date], list[tuple[int, int]]],
    known: dict[_dt.date, list[tuple[int, int]]],
    date: _dt.date,
) -> list[tuple[int, int]]:
    """``date``'s entries from ``known``, worked out (and kept there) the first time."""
    entries = known.get(date)
    if entries is None:
        entries = known[date] = work_out(date)
    return entries


@dataclass(frozen=True)
class _LookAhead:
    """A reading's look ahead: from where (zone, day on the calendar's clock, its offset,
    horizon), at which instant, the value then and the change it found."""

    look: tuple[ZoneYear | None, _dt.date, int, int]
    utc: int
    value: int | None
    changes_at: int | None
    next_value: int | None

    def still(self, look: tuple[ZoneYear | None, _dt.date, int, int], utc: int, value: Any) -> bool:
        """Whether a reading at ``utc`` reading ``value`` from ``look`` finds the same
        change: the same start, not earlier, the same value, the change not reached."""
        return (
            look == self.look
            and self.utc <= utc
            and value == self.value
            and (self.changes_at is None or utc < self.changes_at)
        )


@dataclass
class _Memo:
    """What a calendar's readings keep (:meth:`CalendarSchedule.at`): the last reading's
    day and the day before's entries, and its look ahead."""

    days: dict[_dt.date, list[tuple[int, int]]] = field(default_factory=dict)
    last: _LookAhead | None = None


def _split(items: Sequence[Any], per: int, make: Any) -> list[CalendarPart]:
    """``items`` in runs of at most ``per`` (at least one run), each made a part by
    ``make(index, total, run)``."""
    runs = [tuple(items[at : at + per]) for at in range(0, len(items), per)] or [()]
    return [make(index, len(runs), run) for index, run in enumerate(runs)]


class CalendarOutcome(enum.Enum):
    """What :meth:`Calendars.add_header` / :meth:`Calendars.add_part` did (Price's
    :class:`~zse.price.core.PartOutcome` cases, the same statuses)."""

    #: Kept; parts are missing still (not in force).
    KEPT = "kept"
    #: The last part: the whole calendar is in force (or its special days replaced).
    COMPLETE = "complete"
    #: Held already.
    REPEAT = "repeat"
    #: No calendar of that provider and issuer calendar id is held or being put together.
    UNKNOWN_CALENDAR = "unknown calendar"
    #: Older than the calendar held (a smaller issuer event id).
    OLDER = "older"
    #: Disagrees with its calendar or the other parts of its set: refused, the set dropped.
    INCONSISTENT = "inconsistent"
    #: Too much waits already: refused (counted in :attr:`Calendars.refused_full`).
    FULL = "full"


@dataclass
class _Building:
    """A calendar being put together: its header and what has arrived."""

    header: CalendarHeader
    days: dict[int, DayProfile] = field(default_factory=dict)
    weeks: dict[int, WeekProfile] = field(default_factory=dict)
    seasons: tuple[tuple[ZclDate, int], ...] | None = None
    special: CalendarPart | None = None
    special_days: tuple[tuple[ZclDate, int], ...] = ()
    #: (kind, key) -> command index -> part, for sets not whole yet.
    sets: dict[tuple[PartKind, int], dict[int, CalendarPart]] = field(default_factory=dict)
    #: Special days for this whole calendar, held already.
    update_of: CalendarSchedule | None = None

    def size(self) -> int:
        """Items held (entries, weeks, seasons, parts waiting): what the bound counts."""
        waiting = sum(len(p.items) for parts in self.sets.values() for p in parts.values())
        entries = sum(len(day.entries) for day in self.days.values())
        return waiting + entries + len(self.weeks) + len(self.seasons or ()) + 1


def _identity(calendar: CalendarSchedule | CalendarHeader) -> tuple[int, int]:
    """What names a calendar: its Provider ID and Issuer Calendar ID (Silicon Labs'
    calendar-common, calendar-client and calendar-server plugins find a calendar, and
    Get Day Profiles / Week Profiles / Seasons name one, by these two)."""
    return (calendar.provider_id, calendar.issuer_calendar_id)


def _named(calendar: CalendarSchedule) -> tuple[int, int, int, int]:
    """A calendar's type, provider, Issuer Calendar ID and issuer event id."""
    return (calendar.calendar_type, *_identity(calendar), calendar.issuer_event_id)


class _Timeline(Published[CalendarSchedule]):
    """One calendar type's calendars: Price's timeline, but a calendar is named by its
    provider and Issuer Calendar ID, not by its issuer event id (two calendars may share
    one: neither is lost), and a newer issue replaces the calendar whole, as Silicon Labs'
    calendar-common overwrites the entry of the same provider and calendar id.

    Nested and overlapping calendars of one type are not allowed (SE 1.2 Publish Calendar,
    as Silicon Labs' calendar-client.c sums it up): the newer issuer event id wins. A
    calendar is refused when a calendar with a newer issuer event id starts at or before its
    start (it would lie within it); one kept drops the older calendars starting at or after
    its start, and the one in force before it ends at its start. zse's reading: Silicon Labs'
    client refuses a calendar older than any one of its type, zse only one it would overlap
    (an older calendar before a newer one's start still runs until then)."""

    def same(self, known: CalendarSchedule, item: CalendarSchedule) -> bool:
        return _identity(known) == _identity(item)

    def order(self, entry: tuple[int, CalendarSchedule]) -> tuple[int, ...]:
        """By start and issuer event id, then provider and Issuer Calendar ID: two calendars
        sharing a start and an issuer event id are in force in one order, whatever order
        they came in (zse's own reading)."""
        start, item = entry
        return (start, item.issuer_event_id, *_identity(item))

    def add(self, item: CalendarSchedule, now: int) -> bool:
        """Keep ``item`` (:meth:`Published.add`) unless a newer calendar overlaps it or it
        is an older issue of a calendar held; False then and for a repeat."""
        start = now if item.start_time == START_NOW else item.start_time
        if self.overlapped(item, now):
            return False
        self._items = [
            (known_start, known)
            for known_start, known in self._items
            if self.same(known, item)
            or known_start < start
            or known.issuer_event_id >= item.issuer_event_id
        ]
        return super().add(item, now)

    def overlapped(self, item: CalendarSchedule | CalendarHeader, now: int) -> bool:
        """Whether ``item`` is an older issue of a calendar held, or a calendar with a newer
        issuer event id starts at or before ``item``'s start."""
        start = now if item.start_time == START_NOW else item.start_time
        return any(
            known.issuer_event_id > item.issuer_event_id
            and (_identity(known) == _identity(item) or known_start <= start)
            for known_start, known in self._items
        )


class Calendars:
    """The calendars one side holds (SE 1.2 D.9): whole calendars in one Price
    :class:`~zse.price.core.Published` timeline per calendar type (at most ``limit`` each),
    and on a client the calendars being put together from their parts. At most
    ``pending_limit`` items (schedule entries, weeks, seasons, parts waiting) are held for
    calendars not whole yet, so a sender announcing 255 day profiles of 255 entries for
    calendar after calendar costs bounded memory. To make room, the calendars not whole yet
    heard of first are given up (counted in :attr:`given_up`), so that calendars a peer never
    finishes cannot keep the next one out; a part that does not fit even then (its own
    calendar past the bound) is refused (FULL)."""

    def __init__(self, limit: int = 16, pending_limit: int = 4096) -> None:
        self.limit = limit
        self.pending_limit = pending_limit
        #: parts refused because ``pending_limit`` items waited already
        self.refused_full = 0
        #: calendars not whole yet given up to make room for a newer one
        self.given_up = 0
        self._timelines: dict[int, _Timeline] = {}
        self._building: dict[tuple[int, int], _Building] = {}

    # --- whole calendars ---

    def put(self, calendar: CalendarSchedule, now: int) -> bool:
        """Keep a whole calendar (a server's own, or one put together), in place of the
        calendar of its provider and Issuer Calendar ID (of any type); False for a repeat, an
        older issue of a calendar held (of any type), or one a newer calendar of its type
        overlaps (:class:`_Timeline`)."""
        timeline = self._timelines.get(calendar.calendar_type)
        if timeline is None:
            timeline = self._timelines[calendar.calendar_type] = _Timeline(self.limit)
        held = self.calendar(*_identity(calendar), now)  # of any type, as add_header asks
        if timeline.overlapped(calendar, now) or (
            held is not None and held.issuer_event_id > calendar.issuer_event_id
        ):
            return False
        for kind, other in self._timelines.items():
            if kind != calendar.calendar_type:
                other.drop(lambda c: _identity(c) == _identity(calendar))
        return timeline.add(calendar, now)

    def displaced(
        self, calendar: CalendarSchedule, now: int
    ) -> tuple[bool, list[CalendarSchedule]]:
        """What :meth:`put` would do, nothing changed: whether ``calendar`` would be held
        afterwards, and the calendars held now that would not be (superseded, overlapped, past
        the bound); what a server's store deletes with it."""
        trial = Calendars(self.limit, self.pending_limit)
        for kind, timeline in self._timelines.items():
            copy = trial._timelines[kind] = _Timeline(self.limit)
            for start, item in timeline.entries(now):
                copy.restore(start, item)
        before = self.held(now, absolute=True)
        trial.put(calendar, now)
        after = trial.held(now, absolute=True)
        named = {_named(c) for c in after}
        gone = [c for c in before if _named(c) not in named]
        resolved = calendar.with_start(now) if calendar.start_time == START_NOW else calendar
        return resolved in after, gone  # as given: not another issue's start held instead

    def held(self, now: int, *, absolute: bool = False) -> list[CalendarSchedule]:
        """Every calendar kept at ``now`` (in force and to come), by type then start."""
        return [
            calendar
            for _, timeline in sorted(self._timelines.items())
            for calendar in timeline.held(now, absolute=absolute)
        ]

    def current(
        self, now: int, calendar_type: int = CalendarType.DELIVERED, *, absolute: bool = False
    ) -> CalendarSchedule | None:
        """The calendar of ``calendar_type`` in force at ``now``."""
        timeline = self._timelines.get(calendar_type)
        return None if timeline is None else timeline.current(now, absolute=absolute)

    def calendar(
        self, provider_id: int, issuer_calendar_id: int, now: int, *, absolute: bool = False
    ) -> CalendarSchedule | None:
        """The held calendar with these ids (the newest issue if several)."""
        found = [
            c
            for c in self.held(now, absolute=absolute)
            if (c.provider_id, c.issuer_calendar_id) == (provider_id, issuer_calendar_id)
        ]
        return max(found, key=lambda c: c.issuer_event_id, default=None)

    def since(  # noqa: PLR0917 - Get Calendar's fields
        self,
        earliest: int,
        min_issuer_event_id: int,
        count: int,
        calendar_type: int,
        provider_id: int,
        now: int,
    ) -> list[CalendarSchedule]:
        """What Get Calendar resends (D.9.2.3.1): the calendars in force at ``earliest`` (0:
        now) and after, by start, of ``calendar_type`` (0xFF: any) and ``provider_id``, with
        an issuer event id of at least ``min_issuer_event_id`` (0xFFFFFFFF: any; provider
        0xFFFFFFFF: any, zse's reading); ``count``
        0 = all. Each with its absolute start (Price's :meth:`Published.since`)."""
        found = [
            calendar
            for kind, timeline in sorted(self._timelines.items())
            if calendar_type in (ANY_CALENDAR_TYPE, kind)
            for calendar in timeline.since(earliest, min_issuer_event_id, 0, now)
            if provider_id in (ANY_PROVIDER, calendar.provider_id)
        ]
        found.sort(key=lambda c: (c.start_time, c.issuer_event_id))
        return found if count == 0 else found[:count]

    def clear(self) -> int:
        """Forget every calendar and every part waiting (a display at a change of tenancy that
        clears the tariff plan); returns how many calendars, whole or not, were dropped."""
        dropped = sum(len(t.held(0, absolute=True)) for t in self._timelines.values())
        dropped += len(self._building)
        self._timelines.clear()
        self._building.clear()
        return dropped

    def cancel(self, cancellation: CalendarCancellation, now: int) -> bool:
        """Forget the calendar (and its parts) ``cancellation`` names (D.9.2.4.6); False if
        none was held."""
        timeline = self._timelines.get(cancellation.calendar_type)
        ids = (cancellation.provider_id, cancellation.issuer_calendar_id)
        dropped = 0
        if timeline is not None:
            dropped = timeline.drop(lambda c: (c.provider_id, c.issuer_calendar_id) == ids)
        building = self._building.get(ids)
        if building is not None and building.header.calendar_type == cancellation.calendar_type:
            del self._building[ids]
            dropped += 1
        return dropped > 0

    def at(
        self, utc: int, zone: ZoneYear | None = None, calendar_type: int = CalendarType.DELIVERED
    ) -> CalendarReading | None:
        """What the calendar of ``calendar_type`` in force at ``utc`` says
        (:meth:`CalendarSchedule.at`), None without one; a calendar starting later ends
        the reading's look ahead: the change is then at its start, to its value."""
        calendar = self.current(utc, calendar_type, absolute=True)
        if calendar is None:
            return None
        reading = calendar.at(utc, zone)
        following = [
            c
            for c in (self._timelines[calendar_type].held(utc, absolute=True))
            if c.start_time > utc
        ]
        if following and (
            reading.changes_at is None or following[0].start_time <= reading.changes_at
        ):
            successor = following[0]
            after = successor.at(successor.start_time, zone)
            return dataclasses.replace(
                reading, changes_at=successor.start_time, next_value=after.value
            )
        return reading

    # --- a client putting calendars together ---

    def add_header(  # noqa: PLR0911 - one return per outcome
        self, header: CalendarHeader, now: int
    ) -> tuple[CalendarOutcome, CalendarSchedule | None]:
        """Take a Publish Calendar: a calendar to put together (COMPLETE at once for one
        without seasons, weeks and days... which has none: kept); an older issue of a
        calendar held is refused, the same one a REPEAT; so is one a newer calendar of its
        type overlaps (:class:`_Timeline`), OLDER. A Calendar Type or Time Reference zse does
        not know is INCONSISTENT (INVALID_FIELD, as Silicon Labs' calendar-client answers a
        type past the auxiliary load switch calendar): so a server cannot make a client hold
        more than :attr:`limit` calendars for each of the five types."""
        refused = self._header_refusal(header, now)
        if refused is not None:
            return refused, None
        ids = (header.provider_id, header.issuer_calendar_id)
        held = self.calendar(*ids, now, absolute=False)
        if held is not None and held.issuer_event_id >= header.issuer_event_id:
            if held.issuer_event_id > header.issuer_event_id:
                return CalendarOutcome.OLDER, None
            same = dataclasses.replace(held.header(), start_time=header.start_time)
            return (
                CalendarOutcome.REPEAT if same == header else CalendarOutcome.INCONSISTENT
            ), None
        building = self._building.get(ids)
        if building is not None:
            if building.header == header:
                return CalendarOutcome.REPEAT, None
            if building.header.issuer_event_id > header.issuer_event_id:
                return CalendarOutcome.OLDER, None
        if building is None and not self._make_room(1, ids):
            self.refused_full += 1
            return CalendarOutcome.FULL, None
        self._building.pop(ids, None)  # a newer issue is heard of now: it goes last
        self._building[ids] = _Building(header)
        return self._maybe_whole(ids, now)

    def _header_refusal(self, header: CalendarHeader, now: int) -> CalendarOutcome | None:
        """INCONSISTENT for a type or time reference zse does not know, OLDER for a calendar
        a newer one of its type overlaps, else None."""
        if header.calendar_type not in _KNOWN_TYPES or (
            header.calendar_time_reference not in _KNOWN_REFERENCES
        ):
            return CalendarOutcome.INCONSISTENT
        timeline = self._timelines.get(header.calendar_type)
        if timeline is not None and timeline.overlapped(header, now):
            return CalendarOutcome.OLDER
        return None

    def add_part(  # noqa: PLR0911 - one return per outcome
        self, part: CalendarPart, now: int
    ) -> tuple[CalendarOutcome, CalendarSchedule | None]:
        """Put a received part with its calendar; the whole calendar with COMPLETE. Special
        days for a calendar held replace its special days (a newer or equal issue)."""
        ids = (part.provider_id, part.issuer_calendar_id)
        building = self._building.get(ids)
        if building is None:
            held = self.calendar(*ids, now)
            if held is None:
                return CalendarOutcome.UNKNOWN_CALENDAR, None
            if part.kind is not PartKind.SPECIAL_DAYS:
                if part.issuer_event_id < held.issuer_event_id:
                    return CalendarOutcome.OLDER, None
                repeat = _has(held, part)
                return CalendarOutcome.REPEAT if repeat else CalendarOutcome.INCONSISTENT, None
            if part.issuer_event_id < held.special_issue:
                return CalendarOutcome.OLDER, None
            if not self._make_room(len(part.items) + 1, ids):
                self.refused_full += 1
                return CalendarOutcome.FULL, None
            building = self._building[ids] = _Building(
                held.header(),
                dict(held._by_day),
                dict(held._by_week),
                held.seasons,
                update_of=held,
            )
        refusal = self._refusal(building, part)
        if refusal is not None:
            if building.update_of is not None and not building.sets:
                del self._building[ids]
            return refusal, None
        key = (part.kind, part.key)
        pending = {**building.sets.get(key, {}), part.command_index: part}
        if len(pending) < part.total_number_of_commands:
            if not self._make_room(len(part.items) + 1, ids):
                self.refused_full += 1
                return CalendarOutcome.FULL, None
            building.sets[key] = pending
            return CalendarOutcome.KEPT, None
        building.sets.pop(key, None)
        if not self._take(building, [pending[index] for index in sorted(pending)]):
            del self._building[ids]
            return CalendarOutcome.INCONSISTENT, None
        if not self._make_room(0, ids):
            del self._building[ids]
            self.refused_full += 1
            return CalendarOutcome.FULL, None
        return self._maybe_whole(ids, now)

    def _refusal(  # noqa: PLR0911 - one return per outcome
        self, building: _Building, part: CalendarPart
    ) -> CalendarOutcome | None:
        """Why ``part`` does not fit the calendar being put together, or None."""
        header = building.header
        key = (part.kind, part.key)
        other_issue = _other_issue(header, part)
        if other_issue is not None:
            return other_issue
        if part.kind is PartKind.DAY_PROFILE and (
            not 1 <= part.key <= header.number_of_day_profiles
            or part.calendar_type != header.calendar_type
        ):
            return CalendarOutcome.INCONSISTENT
        if (
            part.kind is PartKind.WEEK_PROFILE
            and not 1 <= part.key <= header.number_of_week_profiles
        ):
            return CalendarOutcome.INCONSISTENT
        if part.kind is PartKind.SPECIAL_DAYS and part.calendar_type != header.calendar_type:
            return CalendarOutcome.INCONSISTENT
        pending = building.sets.get(key, {})
        sample = next(iter(pending.values()), None)
        known = pending.get(part.command_index)
        if known == part or _done(building, part):
            return CalendarOutcome.REPEAT
        if known is not None or (sample is not None and not sample.same_set(part)):
            building.sets.pop(key, None)
            return CalendarOutcome.INCONSISTENT
        return None

    @staticmethod
    def _take(building: _Building, parts: list[CalendarPart]) -> bool:
        """Put a whole set into ``building``; False if it does not make what it says."""
        first = parts[0]
        items = tuple(item for part in parts for item in part.items)
        try:
            if first.kind is PartKind.DAY_PROFILE:
                if len(items) != first.total:
                    return False
                building.days[first.key] = DayProfile(first.key, items)
            elif first.kind is PartKind.WEEK_PROFILE:
                building.weeks[first.key] = WeekProfile(first.key, items)
            elif first.kind is PartKind.SEASONS:
                building.seasons = tuple((ZclDate.from_octets(d), int(w)) for d, w in items)
            else:
                if len(items) != first.total:
                    return False
                building.special = first
                building.special_days = tuple((ZclDate.from_octets(d), int(i)) for d, i in items)
        except (ValueError, TypeError):
            return False
        return True

    def _maybe_whole(  # noqa: PLR0911 - one return per outcome
        self, ids: tuple[int, int], now: int
    ) -> tuple[CalendarOutcome, CalendarSchedule | None]:
        """The calendar once all it announced is in; KEPT until then."""
        building = self._building[ids]
        header = building.header
        special = building.special
        if building.update_of is not None:  # special days for a calendar held
            if special is None:
                return CalendarOutcome.KEPT, None
            del self._building[ids]
            held = building.update_of
            updated = dataclasses.replace(
                held,
                special_days=building.special_days,
                special_days_event_id=_apart(special.issuer_event_id, held.issuer_event_id),
                special_days_start=_apart(special.start_time, held.start_time),
            )
            if updated == building.update_of:
                return CalendarOutcome.REPEAT, None
            try:
                CalendarSchedule(**_init_fields(updated))  # its special days name its days
            except ValueError:
                return CalendarOutcome.INCONSISTENT, None
            self.put(updated, now)
            return CalendarOutcome.COMPLETE, updated
        if (
            len(building.days) < header.number_of_day_profiles
            or len(building.weeks) < header.number_of_week_profiles
            or (building.seasons is None and header.number_of_seasons > 0)
        ):
            return CalendarOutcome.KEPT, None
        del self._building[ids]
        fields = {k: v for k, v in header.to_fields().items() if not k.startswith("number_of")}
        try:
            if len(building.seasons or ()) != header.number_of_seasons:
                raise ValueError("not the number of seasons announced")
            calendar = CalendarSchedule(
                **fields,
                seasons=tuple(sorted(building.seasons or (), key=lambda s: _season_key(s[0]))),
                weeks=tuple(building.weeks[k] for k in sorted(building.weeks)),
                days=tuple(building.days[k] for k in sorted(building.days)),
                special_days=building.special_days,
                special_days_event_id=(
                    None
                    if special is None
                    else _apart(special.issuer_event_id, header.issuer_event_id)
                ),
                special_days_start=(
                    None if special is None else _apart(special.start_time, header.start_time)
                ),
            )
        except ValueError:
            return CalendarOutcome.INCONSISTENT, None
        if not self.put(calendar, now):  # a newer calendar overlapping it came meanwhile
            return CalendarOutcome.OLDER, None
        return CalendarOutcome.COMPLETE, calendar

    def _pending(self) -> int:
        return sum(building.size() for building in self._building.values())

    def _make_room(self, more: int, keep: tuple[int, int]) -> bool:
        """Give up the calendars not whole yet heard of first (not ``keep``'s) until ``more``
        items fit the bound; False when they do not fit even then."""
        while self._pending() + more > self.pending_limit:
            oldest = next((ids for ids in self._building if ids != keep), None)
            if oldest is None:
                return False
            del self._building[oldest]
            self.given_up += 1
        return True

    def pending(self) -> int:
        """How many items wait in calendars not whole yet (the bound's count)."""
        return self._pending()

    def missing(self, now: int) -> list[tuple[CalendarHeader, PartKind, int]]:
        """What the calendars being put together still lack, as (header, kind, id): a day or
        week id, or 0 for the seasons: what a client asks for again (Get Day Profiles, Get
        Week Profiles, Get Seasons)."""
        lacking: list[tuple[CalendarHeader, PartKind, int]] = []
        for building in self._building.values():
            header = building.header
            lacking += [
                (header, PartKind.DAY_PROFILE, day)
                for day in range(1, header.number_of_day_profiles + 1)
                if day not in building.days
            ]
            lacking += [
                (header, PartKind.WEEK_PROFILE, week)
                for week in range(1, header.number_of_week_profiles + 1)
                if week not in building.weeks
            ]
            if header.number_of_seasons and building.seasons is None:
                lacking.append((header, PartKind.SEASONS, 0))
        return lacking

    def __len__(self) -> int:
        return sum(len(timeline) for timeline in self._timelines.values())


def _other_issue(header: CalendarHeader, part: CalendarPart) -> CalendarOutcome | None:
    """A part of another issue of the calendar being put together (the same provider and
    Issuer Calendar ID, another issuer event id) is never mixed into it: OLDER for an older
    issue's, INCONSISTENT for a newer one's; special days may carry their own issuer event
    id (Publish Special Days), None for them."""
    if part.kind is PartKind.SPECIAL_DAYS or part.issuer_event_id == header.issuer_event_id:
        return None
    if part.issuer_event_id < header.issuer_event_id:
        return CalendarOutcome.OLDER
    return CalendarOutcome.INCONSISTENT


def _apart(value: int, calendars: int) -> int | None:
    """A special days' issuer event id or start: None when the calendar's own."""
    return None if value == calendars else value


def _init_fields(calendar: CalendarSchedule) -> dict[str, Any]:
    return {f.name: getattr(calendar, f.name) for f in dataclasses.fields(calendar) if f.init}


def _season_key(date: ZclDate) -> tuple[int, int, int]:
    return (date.year, date.month, date.day)


def _done(building: _Building, part: CalendarPart) -> bool:
    """Whether ``part``'s set is already whole in ``building`` and ``part`` is one of it."""
    if part.kind is PartKind.DAY_PROFILE and part.key in building.days:
        return set(part.items) <= set(building.days[part.key].entries)
    if part.kind is PartKind.WEEK_PROFILE and part.key in building.weeks:
        return building.weeks[part.key].days == part.items
    if part.kind is PartKind.SEASONS and building.seasons is not None:
        return {(d.octets(), w) for d, w in building.seasons} >= set(part.items)
    return False


def _has(held: CalendarSchedule, part: CalendarPart) -> bool:
    """Whether a whole calendar already has what ``part`` carries (a late repeat)."""
    probe = _Building(held.header(), dict(held._by_day), dict(held._by_week), held.seasons)
    return part.issuer_event_id == held.issuer_event_id and _done(probe, part)


# --- persistence -----------------------------------------------------------------------------

_DATED_RECORD = TupleOf(U8, U8, U8, U8, U8)
#: The shape of a stored calendar (checked before anything is built from it).
CALENDAR_RECORD: Final = Fields(
    {
        "provider_id": U32,
        "issuer_event_id": U32,
        "issuer_calendar_id": U32,
        "start_time": U32,
        "calendar_type": U8,
        "calendar_time_reference": U8,
        "calendar_name": STR,
        "seasons": ListOf(_DATED_RECORD),
        "weeks": ListOf(TupleOf(U8, U8, U8, U8, U8, U8, U8, U8)),
        "days": ListOf(TupleOf(U8, ListOf(TupleOf(U16, U8)))),
        "special_days": ListOf(_DATED_RECORD),
        "special_days_event_id": Opt(U32),
        "special_days_start": Opt(U32),
    }
)


def calendar_record(calendar: CalendarSchedule) -> dict[str, Any]:
    """A calendar as a JSON-ready record (:func:`calendar_from_record` reads it back)."""
    return {
        "provider_id": calendar.provider_id,
        "issuer_event_id": calendar.issuer_event_id,
        "issuer_calendar_id": calendar.issuer_calendar_id,
        "start_time": calendar.start_time,
        "calendar_type": calendar.calendar_type,
        "calendar_time_reference": calendar.calendar_time_reference,
        "calendar_name": calendar.calendar_name.hex(),
        "seasons": [[*date.octets(), week] for date, week in calendar.seasons],
        "weeks": [[week.week_id, *week.days] for week in calendar.weeks],
        "days": [[day.day_id, [list(entry) for entry in day.entries]] for day in calendar.days],
        "special_days": [[*date.octets(), day] for date, day in calendar.special_days],
        "special_days_event_id": calendar.special_days_event_id,
        "special_days_start": calendar.special_days_start,
    }


def calendar_from_record(value: Any) -> CalendarSchedule:
    """A calendar from its stored record: :class:`zse.records.Mismatch` for a record of
    another shape, ValueError for values no calendar has (both quarantined by the loader)."""
    check(value, CALENDAR_RECORD)
    return CalendarSchedule(
        provider_id=value["provider_id"],
        issuer_event_id=value["issuer_event_id"],
        issuer_calendar_id=value["issuer_calendar_id"],
        start_time=value["start_time"],
        calendar_type=value["calendar_type"],
        calendar_time_reference=value["calendar_time_reference"],
        calendar_name=bytes.fromhex(value["calendar_name"]),
        seasons=tuple((ZclDate(*row[:4]), row[4]) for row in value["seasons"]),
        weeks=tuple(WeekProfile(row[0], tuple(row[1:])) for row in value["weeks"]),
        days=tuple(DayProfile(day, tuple(map(tuple, entries))) for day, entries in value["days"]),
        special_days=tuple((ZclDate(*row[:4]), row[4]) for row in value["special_days"]),
        special_days_event_id=value["special_days_event_id"],
        special_days_start=value["special_days_start"],
    )
