"""Calendar cluster, 0x0707 (SE 1.2 D.9): time-of-use calendars on the wire.

A calendar (Publish Calendar) names how many seasons, week profiles and day profiles it has;
each day profile (Publish Day Profile) is a list of schedule entries, each a start in minutes
after midnight and a value whose meaning the calendar type gives: a price tier (delivered,
received, delivered and received), Friendly Credit enable, or the auxiliary load switch state
(a bitmap of switches 1-8). A week profile (Publish Week Profile) gives a day profile per
weekday; seasons (Publish Seasons) give the week profile from a start date; special days
(Publish Special Days) replace the day profile of a date. Day profiles, seasons and special
days may take several commands (Command Index / Total Number of Commands).

The SE 1.2 text (07-5356-19) was out of reach: ids and layouts are those Wireshark 4.0's
Calendar dissector reads (``packet-zbee-zcl-se.c``, ``zbee_zcl_se.calendar.*``), the oracle
of the tests. Its repeating parts are :class:`ScheduleEntries` (3 octets each: uint16 start
time, uint8 value), :class:`SeasonEntries` and :class:`SpecialDayEntries` (5 octets each: a
ZCL Date, ZCL 2.6.2.19, then a week or day id), to the end of the payload.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final, Self

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import BaseAttributeDefs, BaseCommandDefs, ZCLAttributeDef

from zse.se.ids import (
    CALENDAR,
    CalendarClientCommand,
    CalendarServerCommand,
    aux_switch_label_attribute,
)
from zse.zcl._defs import attribute, cluster_id, command

__all__ = [
    "CALENDAR_ATTRIBUTES",
    "DATED_ENTRY_SIZE",
    "SCHEDULE_ENTRY_SIZE",
    "Calendar",
    "CalendarName",
    "ScheduleEntries",
    "SeasonEntries",
    "SpecialDayEntries",
]

#: Octets of one schedule entry: start time (uint16, minutes after midnight) and its value.
SCHEDULE_ENTRY_SIZE: Final = 3
#: Octets of one season or special day: a ZCL Date (year - 1900, month, day of month, day of
#: week; 0xFF each "any", ZCL 2.6.2.19) and a week or day id.
DATED_ENTRY_SIZE: Final = 5


class CalendarName(t.LVBytes):
    """Calendar Name, an octet string of up to 12 octets (D.9.2.4.1.1)."""


def _whole(data: bytes, size: int, what: str) -> None:
    if len(data) % size:
        raise ValueError(f"{len(data)} octets is not a whole number of {size}-octet {what}")


class ScheduleEntries(tuple[tuple[int, int], ...]):
    """The Day Schedule Entries of Publish Day Profile (D.9.2.4.2): (start time, value) pairs,
    3 octets each, to the end of the payload. The start is in minutes after midnight
    (0-1439); the value a price tier, Friendly Credit enable (0/1) or the auxiliary load
    switch state as the calendar type says."""

    #: each entry's fields, by position (``zse capture`` names them)
    ENTRY_FIELDS: ClassVar[tuple[str, ...]] = ("start_time", "value")

    def __new__(cls, entries: Any = ()) -> Self:
        pairs = tuple((int(start), int(value)) for start, value in entries)
        for start, value in pairs:
            if not 0 <= start <= 0xFFFF or not 0 <= value <= 0xFF:
                raise ValueError(f"schedule entry ({start}, {value}) does not fit")
        return super().__new__(cls, pairs)

    def serialize(self) -> bytes:
        """Each entry: its start little-endian, then its value."""
        return b"".join(start.to_bytes(2, "little") + bytes((value,)) for start, value in self)

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        """Every entry to the end; ValueError if the octets left are not whole entries."""
        _whole(data, SCHEDULE_ENTRY_SIZE, "schedule entries")
        return cls(
            (int.from_bytes(data[at : at + 2], "little"), data[at + 2])
            for at in range(0, len(data), SCHEDULE_ENTRY_SIZE)
        ), b""


class _DatedEntries(tuple[tuple[tuple[int, ...], int], ...]):
    """(ZCL Date as 4 octets, id) pairs, 5 octets each, to the end of the payload."""

    _WHAT: str = "entries"

    def __new__(cls, entries: Any = ()) -> Self:
        pairs = tuple((tuple(int(part) for part in date), int(ref)) for date, ref in entries)
        for date, ref in pairs:
            if len(date) != 4 or not all(0 <= part <= 0xFF for part in (*date, ref)):
                raise ValueError(f"{cls._WHAT} entry ({date}, {ref}) does not fit")
        return super().__new__(cls, pairs)

    def serialize(self) -> bytes:
        """Each entry: the date's four octets, then the id."""
        return b"".join(bytes((*date, ref)) for date, ref in self)

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        """Every entry to the end; ValueError if the octets left are not whole entries."""
        _whole(data, DATED_ENTRY_SIZE, cls._WHAT)
        return cls(
            (tuple(data[at : at + 4]), data[at + 4]) for at in range(0, len(data), DATED_ENTRY_SIZE)
        ), b""


class SeasonEntries(_DatedEntries):
    """The Season Entries of Publish Seasons (D.9.2.4.4): Season Start Date and Week ID Ref."""

    _WHAT = "season"
    #: each entry's fields, by position (``zse capture`` names them)
    ENTRY_FIELDS: ClassVar[tuple[str, ...]] = ("season_start_date", "week_id_ref")


class SpecialDayEntries(_DatedEntries):
    """The Special Day Entries of Publish Special Days (D.9.2.4.5): Special Day Date and Day
    ID Ref."""

    _WHAT = "special day"
    #: each entry's fields, by position (``zse capture`` names them)
    ENTRY_FIELDS: ClassVar[tuple[str, ...]] = ("special_day_date", "day_id_ref")


def _attributes() -> dict[str, ZCLAttributeDef]:
    """The Calendar server attributes (D.9.2.2): AuxSwitch1Label-AuxSwitch8Label."""
    return {
        f"aux_switch{switch}_label": attribute(aux_switch_label_attribute(switch), t.LVBytes, "r")
        for switch in range(1, 9)
    }


#: Every Calendar server attribute definition zse knows, by name (D.9.2.2).
CALENDAR_ATTRIBUTES: Final = _attributes()

#: The header the parts of one calendar share.
_CALENDAR_IDS: Final = {
    "provider_id": t.uint32_t,
    "issuer_event_id": t.uint32_t,
    "issuer_calendar_id": t.uint32_t,
}


class Calendar(Cluster):
    """Calendar (SE 1.2 D.9); attach explicitly, it is not in zigpy's registry."""

    cluster_id = cluster_id(CALENDAR)
    name = "Calendar"
    ep_attribute = "smartenergy_calendar"
    _skip_registry = True

    #: The server attributes (D.9.2.2), built from :data:`CALENDAR_ATTRIBUTES`.
    AttributeDefs = type("AttributeDefs", (BaseAttributeDefs,), dict(CALENDAR_ATTRIBUTES))  # type: ignore[assignment]

    class ServerCommandDefs(BaseCommandDefs):
        """Commands the server receives (D.9.2.3)."""

        get_calendar: Final = command(
            CalendarServerCommand.GET_CALENDAR,
            {
                "earliest_start_time": t.UTCTime,
                "min_issuer_event_id": t.uint32_t,
                "number_of_calendars": t.uint8_t,
                "calendar_type": t.uint8_t,
                "provider_id": t.uint32_t,
            },
        )
        get_day_profiles: Final = command(
            CalendarServerCommand.GET_DAY_PROFILES,
            {
                "provider_id": t.uint32_t,
                "issuer_calendar_id": t.uint32_t,
                "start_day_id": t.uint8_t,
                "number_of_days": t.uint8_t,
            },
        )
        get_week_profiles: Final = command(
            CalendarServerCommand.GET_WEEK_PROFILES,
            {
                "provider_id": t.uint32_t,
                "issuer_calendar_id": t.uint32_t,
                "start_week_id": t.uint8_t,
                "number_of_weeks": t.uint8_t,
            },
        )
        get_seasons: Final = command(
            CalendarServerCommand.GET_SEASONS,
            {"provider_id": t.uint32_t, "issuer_calendar_id": t.uint32_t},
        )
        get_special_days: Final = command(
            CalendarServerCommand.GET_SPECIAL_DAYS,
            {
                "start_time": t.UTCTime,
                "number_of_events": t.uint8_t,
                "calendar_type": t.uint8_t,
                "provider_id": t.uint32_t,
                "issuer_calendar_id": t.uint32_t,
            },
        )
        get_calendar_cancellation: Final = command(
            CalendarServerCommand.GET_CALENDAR_CANCELLATION, {}
        )

    class ClientCommandDefs(BaseCommandDefs):
        """Commands the server sends (D.9.2.4)."""

        publish_calendar: Final = command(
            CalendarClientCommand.PUBLISH_CALENDAR,
            {
                **_CALENDAR_IDS,
                "start_time": t.UTCTime,
                "calendar_type": t.uint8_t,
                "calendar_time_reference": t.uint8_t,
                "calendar_name": CalendarName,
                "number_of_seasons": t.uint8_t,
                "number_of_week_profiles": t.uint8_t,
                "number_of_day_profiles": t.uint8_t,
            },
        )
        publish_day_profile: Final = command(
            CalendarClientCommand.PUBLISH_DAY_PROFILE,
            {
                **_CALENDAR_IDS,
                "day_id": t.uint8_t,
                "total_number_of_schedule_entries": t.uint8_t,
                "command_index": t.uint8_t,
                "total_number_of_commands": t.uint8_t,
                "calendar_type": t.uint8_t,
                "entries": ScheduleEntries,
            },
        )
        publish_week_profile: Final = command(
            CalendarClientCommand.PUBLISH_WEEK_PROFILE,
            {
                **_CALENDAR_IDS,
                "week_id": t.uint8_t,
                "day_id_ref_monday": t.uint8_t,
                "day_id_ref_tuesday": t.uint8_t,
                "day_id_ref_wednesday": t.uint8_t,
                "day_id_ref_thursday": t.uint8_t,
                "day_id_ref_friday": t.uint8_t,
                "day_id_ref_saturday": t.uint8_t,
                "day_id_ref_sunday": t.uint8_t,
            },
        )
        publish_seasons: Final = command(
            CalendarClientCommand.PUBLISH_SEASONS,
            {
                **_CALENDAR_IDS,
                "command_index": t.uint8_t,
                "total_number_of_commands": t.uint8_t,
                "entries": SeasonEntries,
            },
        )
        publish_special_days: Final = command(
            CalendarClientCommand.PUBLISH_SPECIAL_DAYS,
            {
                **_CALENDAR_IDS,
                "start_time": t.UTCTime,
                "calendar_type": t.uint8_t,
                "total_number_of_special_days": t.uint8_t,
                "command_index": t.uint8_t,
                "total_number_of_commands": t.uint8_t,
                "entries": SpecialDayEntries,
            },
        )
        cancel_calendar: Final = command(
            CalendarClientCommand.CANCEL_CALENDAR,
            {
                "provider_id": t.uint32_t,
                "issuer_calendar_id": t.uint32_t,
                "calendar_type": t.uint8_t,
            },
        )
