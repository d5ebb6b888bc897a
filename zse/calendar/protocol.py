"""Calendar at the ZCL frame (SE 1.2 D.9): the sans-IO protocol cores of the server and client.

:class:`CalendarServerProtocol` is the ESI's side: it publishes a calendar (Publish Calendar,
then its day profiles, week profiles, seasons and special days, each command within one frame),
cancels one (Cancel Calendar) and answers Get Calendar, Get Day Profiles, Get Week Profiles,
Get Seasons, Get Special Days and Get Calendar Cancellation (D.9.2.3), or NOT_FOUND.
:class:`CalendarClientProtocol` is a device's side: it puts calendars back together
(:class:`~zse.calendar.Calendars`), tells :class:`CalendarReceived` once one is whole and
:class:`CalendarCancelled`, and, with a timer, :class:`CalendarChanged` when the value in force
(a tier, Friendly Credit, the aux switches) changes as the calendar says. It builds the Get
requests, and those that ask again for the parts it lacks (:meth:`CalendarClientProtocol.
ask_missing`).

A part not kept is answered with the Default Response status Price gives the same case:
NOT_FOUND (no such calendar), INVALID_FIELD (disagrees with its calendar), FAILURE (older),
DUPLICATE_EXISTS (a repeat), INSUFFICIENT_SPACE (too much waits); a payload that does not
decode MALFORMED_COMMAND; a command the side does not take UNSUP_CLUSTER_COMMAND.
Nothing here reads a clock or does I/O; :mod:`zse.calendar.service` is the asyncio shell.

zse's readings where the SE 1.2 text was out of reach: Get Calendar's Calendar Type 0xFF and
Provider ID 0xFFFFFFFF ask for any; Number of Calendars / Days / Weeks / Events 0 asks for
all; Get Special Days' Issuer Calendar ID 0 asks for every calendar's, and its Number of
Events counts calendars' sets of special days.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from zigpy.zcl import foundation

from zse.calendar.core import (
    ANY_CALENDAR_TYPE,
    ANY_PROVIDER,
    CalendarCancellation,
    CalendarHeader,
    CalendarOutcome,
    CalendarPart,
    CalendarReading,
    Calendars,
    CalendarSchedule,
    PartKind,
)
from zse.calendar.wire import Calendar
from zse.errors import InvalidFrame
from zse.se.ids import CALENDAR, CalendarClientCommand, CalendarServerCommand
from zse.time.core import ZoneYear
from zse.zcl.codec import encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage

__all__ = [
    "ANY_PROVIDER",
    "ASKS",
    "SETTLE_SECONDS",
    "CalendarCancelled",
    "CalendarChanged",
    "CalendarClientProtocol",
    "CalendarReceived",
    "CalendarServerProtocol",
    "header_payload",
    "part_payload",
]

LOGGER = logging.getLogger(__name__)

_ANY_EVENT: Final = 0xFFFFFFFF

_PUBLISH_CALENDAR: Final = CalendarClientCommand.PUBLISH_CALENDAR
_CANCEL_CALENDAR: Final = CalendarClientCommand.CANCEL_CALENDAR
_PART_COMMANDS: Final[dict[PartKind, int]] = {
    PartKind.DAY_PROFILE: CalendarClientCommand.PUBLISH_DAY_PROFILE,
    PartKind.WEEK_PROFILE: CalendarClientCommand.PUBLISH_WEEK_PROFILE,
    PartKind.SEASONS: CalendarClientCommand.PUBLISH_SEASONS,
    PartKind.SPECIAL_DAYS: CalendarClientCommand.PUBLISH_SPECIAL_DAYS,
}
_PART_KINDS: Final[dict[int, PartKind]] = {
    command: kind for kind, command in _PART_COMMANDS.items()
}
_PUBLISHED: Final = frozenset(CalendarClientCommand)

#: Seconds after the last part kept before a client asks for what is still missing.
SETTLE_SECONDS: Final = 5
#: Rounds of asking for missing parts after a calendar is heard of.
ASKS: Final = 3

#: What each refusal is answered with: Price's statuses for the same cases.
_STATUS: Final = {
    CalendarOutcome.REPEAT: foundation.Status.DUPLICATE_EXISTS,
    CalendarOutcome.UNKNOWN_CALENDAR: foundation.Status.NOT_FOUND,
    CalendarOutcome.OLDER: foundation.Status.FAILURE,
    CalendarOutcome.INCONSISTENT: foundation.Status.INVALID_FIELD,
    CalendarOutcome.FULL: foundation.Status.INSUFFICIENT_SPACE,
}


@dataclass(frozen=True)
class CalendarReceived:
    """A client holds a whole calendar (a new one, or new special days for one held)."""

    source_nwk: int
    calendar: CalendarSchedule


@dataclass(frozen=True)
class CalendarCancelled:
    """A client received Cancel Calendar (D.9.2.4.6); ``held``: it held that calendar, now
    forgotten."""

    source_nwk: int
    cancellation: CalendarCancellation
    held: bool


@dataclass(frozen=True)
class CalendarChanged:
    """The value a calendar type says changed (a new tier, Friendly Credit on/off, the aux
    switches): ``reading`` is what is in force now and when it next changes."""

    at: int
    reading: CalendarReading


def header_payload(header: CalendarHeader) -> bytes:
    """Publish Calendar's payload (D.9.2.4.1)."""
    return encode_command(Calendar.ClientCommandDefs.publish_calendar.schema(**header.to_fields()))


def part_payload(part: CalendarPart) -> bytes:
    """The payload of a Publish Day Profile, Week Profile, Seasons or Special Days."""
    definition = Calendar.client_commands[_PART_COMMANDS[part.kind]]
    return encode_command(definition.schema(**part.to_fields()))


def _sends(
    headers: list[CalendarHeader], parts: list[CalendarPart], **where: Any
) -> tuple[Send, ...]:
    return tuple(
        Send(cluster_id=CALENDAR, command_id=_PUBLISH_CALENDAR, payload=header_payload(h), **where)
        for h in headers
    ) + tuple(
        Send(
            cluster_id=CALENDAR,
            command_id=_PART_COMMANDS[part.kind],
            payload=part_payload(part),
            **where,
        )
        for part in parts
    )


def _cancel_send(cancellation: CalendarCancellation, **where: Any) -> Send:
    schema = Calendar.ClientCommandDefs.cancel_calendar.schema
    payload = encode_command(schema(**cancellation.to_fields()))
    return Send(cluster_id=CALENDAR, command_id=_CANCEL_CALENDAR, payload=payload, **where)


class CalendarServerProtocol:
    """The ESI's Calendar server (SE 1.2 D.9.2) at the ZCL frame."""

    def __init__(self, calendars: Calendars | None = None) -> None:
        #: The calendars published (at most 16 per calendar type).
        self.calendars = Calendars() if calendars is None else calendars
        #: The last Cancel Calendar sent, what Get Calendar Cancellation resends.
        self.last_cancellation: CalendarCancellation | None = None

    def next_deadline(self) -> int | None:
        """Nothing timed on the server."""
        return None

    def handle_timeout(self, now: int) -> Step:
        """Nothing is ever due."""
        return Step()

    def publish(self, calendar: CalendarSchedule, now: int, to: Destination | None = None) -> Step:
        """Record a calendar and, with ``to``, publish it there: Publish Calendar, then its
        parts (each within one frame), with the absolute start it was kept with (a start
        "now" resolved), as Get Calendar answers it."""
        self.check(calendar)  # first: a calendar that cannot go is not kept
        self.calendars.put(calendar, now)
        if to is None:
            return Step()
        held = self.calendars.calendar(
            calendar.provider_id, calendar.issuer_calendar_id, now, absolute=True
        )
        sent = calendar if held is None else held
        return Step(sends=_sends([sent.header()], sent.parts(), to=to))

    @staticmethod
    def check(calendar: CalendarSchedule) -> None:
        """Raise if ``calendar`` cannot go: its header or a part that fits no frame."""
        for part in calendar.parts():
            part_payload(part)
        header_payload(calendar.header())

    def cancel(
        self, cancellation: CalendarCancellation, now: int, to: Destination | None = None
    ) -> Step:
        """Forget a calendar and, with ``to``, send Cancel Calendar there (D.9.2.4.6); Get
        Calendar Cancellation is answered with it from now on."""
        self.calendars.cancel(cancellation, now)
        self.last_cancellation = cancellation
        if to is None:
            return Step()
        return Step(sends=(_cancel_send(cancellation, to=to),))

    def screen(self, msg: ZclMessage) -> Step | None:
        """A server's frame is left alone (no answer); None for a client's."""
        return Step() if msg.from_server else None

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Answer a Get command with the Publish commands asked for, or NOT_FOUND."""
        screened = self.screen(msg)
        if screened is not None:
            return screened
        found = self._answer(msg, command, now)
        if found is None:
            return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)
        if not found:
            return Step(status=foundation.Status.NOT_FOUND)
        return Step(sends=found)

    def _answer(self, msg: ZclMessage, command: Any, now: int) -> tuple[Send, ...] | None:
        """The sends answering a Get command (none found: empty), None for another command."""
        command_id = msg.command_id
        if command_id == CalendarServerCommand.GET_CALENDAR_CANCELLATION:
            last = self.last_cancellation
            return () if last is None else (_cancel_send(last, reply_to=msg),)
        if command_id == CalendarServerCommand.GET_CALENDAR:
            found = self.calendars.since(
                int(command.earliest_start_time),
                int(command.min_issuer_event_id),
                int(command.number_of_calendars),
                int(command.calendar_type),
                int(command.provider_id),
                now,
            )
            return _sends([calendar.header() for calendar in found], [], reply_to=msg)
        if command_id == CalendarServerCommand.GET_SPECIAL_DAYS:
            return self._special_days(msg, command, now)
        if command_id not in (
            CalendarServerCommand.GET_DAY_PROFILES,
            CalendarServerCommand.GET_WEEK_PROFILES,
            CalendarServerCommand.GET_SEASONS,
        ):
            return None
        calendar = self.calendars.calendar(
            int(command.provider_id), int(command.issuer_calendar_id), now, absolute=True
        )
        if calendar is None:
            return ()
        if command_id == CalendarServerCommand.GET_DAY_PROFILES:
            parts = calendar.day_parts(int(command.start_day_id), int(command.number_of_days))
        elif command_id == CalendarServerCommand.GET_WEEK_PROFILES:
            parts = calendar.week_parts(int(command.start_week_id), int(command.number_of_weeks))
        else:
            parts = calendar.season_parts()
        return _sends([], parts, reply_to=msg)

    def _special_days(self, msg: ZclMessage, command: Any, now: int) -> tuple[Send, ...]:
        """Get Special Days: the special days of the calendars in force from its Start Time
        (0: now), of its type (0xFF: any), provider (0xFFFFFFFF: any) and Issuer Calendar ID
        (0: any); Number of Events sets of them (0: all)."""
        provider, calendar_id = int(command.provider_id), int(command.issuer_calendar_id)
        found = [
            calendar
            for calendar in self.calendars.since(
                int(command.start_time),
                _ANY_EVENT,
                0,
                int(command.calendar_type),
                provider,
                now,
            )
            if calendar_id in (0, calendar.issuer_calendar_id) and calendar.special_days
        ]
        count = int(command.number_of_events)
        chosen = found if count == 0 else found[:count]
        parts = [part for calendar in chosen for part in calendar.special_day_parts()]
        return _sends([], parts, reply_to=msg)


class CalendarClientProtocol:
    """A device's Calendar client (SE 1.2 D.9.3) at the ZCL frame.

    ``zone``: TimeZone and DST as the device knows them from the Time cluster (set it after
    reading the time), for calendars on standard or local time. With a timer it tells
    :class:`CalendarChanged` at each change of what a calendar type says."""

    def __init__(
        self,
        calendars: Calendars | None = None,
        *,
        server: Destination | None = None,
        settle: int = SETTLE_SECONDS,
    ) -> None:
        #: The calendars received (at most 16 per type; what waits for its parts bounded).
        self.calendars = Calendars() if calendars is None else calendars
        self.zone: ZoneYear | None = None
        #: Where parts missing are asked for, ``settle`` seconds after the last part kept
        #: (None: never asked by the timer; :meth:`ask_missing` still builds the requests).
        self.server = server
        self.settle = settle
        self._told: dict[int, int | None] = {}
        self._deadline: int | None = None
        self._ask_at: int | None = None
        self._asks_left = 0
        #: Calendars headed since the last :meth:`ask_missing` (their special days asked).
        self._headed: list[CalendarHeader] = []

    # --- what is in force ---

    def at(self, now: int, calendar_type: int = 0) -> CalendarReading | None:
        """What the calendar of ``calendar_type`` in force at ``now`` says, or None."""
        return self.calendars.at(now, self.zone, calendar_type)

    def next_deadline(self) -> int | None:
        """When the value a calendar says next changes, or parts missing are to be asked
        for (after a receive or timeout)."""
        due = [d for d in (self._deadline, self._ask_at) if d is not None]
        return min(due, default=None)

    def handle_timeout(self, now: int) -> Step:
        """A :class:`CalendarChanged` for each calendar type whose value changed; once the
        parts have settled, the Get commands for what is still missing (at most
        :data:`ASKS` rounds after a new calendar is heard of)."""
        sends: tuple[Send, ...] = ()
        if self._ask_at is not None and now >= self._ask_at:
            self._ask_at = None
            if self.server is not None and self._asks_left > 0:
                self._asks_left -= 1
                sends = self.ask_missing(self.server, now)
        return Step(sends=sends, events=self.changes(now))

    def changes(self, now: int) -> tuple[CalendarChanged, ...]:
        """A :class:`CalendarChanged` for each calendar type whose value at ``now`` is not the
        one last told (call after setting :attr:`zone`); re-reads the next change."""
        changed = []
        deadlines = []
        for calendar_type in sorted({c.calendar_type for c in self.calendars.held(now)}):
            reading = self.at(now, calendar_type)
            if reading is None:
                continue
            if self._told.get(calendar_type, -1) != reading.value:
                self._told[calendar_type] = reading.value
                changed.append(CalendarChanged(at=now, reading=reading))
            if reading.changes_at is not None:
                deadlines.append(reading.changes_at)
        for gone in set(self._told) - {c.calendar_type for c in self.calendars.held(now)}:
            del self._told[gone]
        self._deadline = min(deadlines, default=None)
        return tuple(changed)

    def clear(self) -> int:
        """Forget every calendar held or being put together, and what was told of them (a
        change of tenancy clearing the tariff plan, SE 1.2 D.10.2.4.1.1.5); the next calendar
        received is told afresh. Returns how many were dropped."""
        dropped = self.calendars.clear()
        self._told.clear()
        self._headed.clear()
        self._deadline = self._ask_at = None
        self._asks_left = 0
        return dropped

    # --- frames ---

    def screen(self, msg: ZclMessage) -> Step | None:
        """UNSUP_CLUSTER_COMMAND for all but a server's Calendar commands, before decoding."""
        if msg.from_server and msg.command_id in _PUBLISHED:
            return None
        return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Take a Publish Calendar, a part, or Cancel Calendar, as the module says."""
        screened = self.screen(msg)
        if screened is not None:
            return screened
        try:
            step = self._take(msg, command, now)
        except InvalidFrame as exc:
            LOGGER.warning("bad Calendar command from 0x%04X: %s", msg.src_nwk, exc)
            return Step(status=foundation.Status.MALFORMED_COMMAND)
        changes = self.changes(now)
        return Step(sends=step.sends, events=step.events + changes, status=step.status)

    def _take(self, msg: ZclMessage, command: Any, now: int) -> Step:
        if msg.command_id == _CANCEL_CALENDAR:
            cancellation = CalendarCancellation.from_fields(command)
            held = self.calendars.cancel(cancellation, now)
            event = CalendarCancelled(msg.src_nwk, cancellation, held)
            return Step(events=(event,), status=None if held else foundation.Status.NOT_FOUND)
        if msg.command_id == _PUBLISH_CALENDAR:
            header = CalendarHeader.from_fields(command)
            outcome, calendar = self.calendars.add_header(header, now)
            if outcome is CalendarOutcome.KEPT:
                self._headed.append(header)
                # no more calendars wait than the bound has items: the first were given up
                excess = len(self._headed) - self.calendars.pending_limit
                if excess > 0:
                    del self._headed[:excess]
                self._asks_left = ASKS
        else:
            part = CalendarPart.from_fields(_PART_KINDS[msg.command_id], command)
            outcome, calendar = self.calendars.add_part(part, now)
        if outcome is CalendarOutcome.KEPT and self.server is not None:
            self._ask_at = now + self.settle
        if outcome is CalendarOutcome.COMPLETE and calendar is not None:
            return Step(events=(CalendarReceived(msg.src_nwk, calendar),))
        if outcome is CalendarOutcome.KEPT:
            return Step()
        LOGGER.info(
            "Calendar command 0x%02X from 0x%04X not kept: %s",
            msg.command_id,
            msg.src_nwk,
            outcome.value,
        )
        return Step(status=_STATUS[outcome])

    # --- requests ---

    @staticmethod
    def _get(name: str, server: Destination, **fields: Any) -> Send:
        definition = getattr(Calendar.ServerCommandDefs, name)
        payload = encode_command(definition.schema(**fields))
        return Send(cluster_id=CALENDAR, command_id=definition.id, payload=payload, to=server)

    def get_calendar(
        self,
        server: Destination,
        earliest_start_time: int = 0,
        number_of_calendars: int = 0,
        calendar_type: int = ANY_CALENDAR_TYPE,
        provider_id: int = ANY_PROVIDER,
    ) -> Send:
        """Get Calendar (D.9.2.3.1): the calendars from the one in force at
        ``earliest_start_time`` (0 = now), any issuer event id."""
        return self._get(
            "get_calendar",
            server,
            earliest_start_time=earliest_start_time,
            min_issuer_event_id=_ANY_EVENT,
            number_of_calendars=number_of_calendars,
            calendar_type=calendar_type,
            provider_id=provider_id,
        )

    def get_day_profiles(
        self, server: Destination, header: CalendarHeader, start_day_id: int = 1, count: int = 0
    ) -> Send:
        """Get Day Profiles (D.9.2.3.2) of a calendar."""
        return self._get(
            "get_day_profiles",
            server,
            provider_id=header.provider_id,
            issuer_calendar_id=header.issuer_calendar_id,
            start_day_id=start_day_id,
            number_of_days=count,
        )

    def get_week_profiles(
        self, server: Destination, header: CalendarHeader, start_week_id: int = 1, count: int = 0
    ) -> Send:
        """Get Week Profiles (D.9.2.3.3) of a calendar."""
        return self._get(
            "get_week_profiles",
            server,
            provider_id=header.provider_id,
            issuer_calendar_id=header.issuer_calendar_id,
            start_week_id=start_week_id,
            number_of_weeks=count,
        )

    def get_seasons(self, server: Destination, header: CalendarHeader) -> Send:
        """Get Seasons (D.9.2.3.4) of a calendar."""
        return self._get(
            "get_seasons",
            server,
            provider_id=header.provider_id,
            issuer_calendar_id=header.issuer_calendar_id,
        )

    def get_special_days(
        self,
        server: Destination,
        header: CalendarHeader | None = None,
        start_time: int = 0,
        number_of_events: int = 0,
    ) -> Send:
        """Get Special Days (D.9.2.3.5): of a calendar, or (None) of every calendar."""
        return self._get(
            "get_special_days",
            server,
            start_time=start_time,
            number_of_events=number_of_events,
            calendar_type=ANY_CALENDAR_TYPE if header is None else header.calendar_type,
            provider_id=ANY_PROVIDER if header is None else header.provider_id,
            issuer_calendar_id=0 if header is None else header.issuer_calendar_id,
        )

    def get_calendar_cancellation(self, server: Destination) -> Send:
        """Get Calendar Cancellation (D.9.2.3.6)."""
        return Send(
            cluster_id=CALENDAR,
            command_id=CalendarServerCommand.GET_CALENDAR_CANCELLATION,
            to=server,
        )

    def ask_missing(self, server: Destination, now: int) -> tuple[Send, ...]:
        """The Get commands for every part the calendars being put together lack (one Get
        Day / Week Profiles per run of missing ids, Get Seasons), and Get Special Days for
        each calendar headed since the last call."""
        sends: list[Send] = []
        runs: dict[tuple[CalendarHeader, PartKind], list[int]] = {}
        for header, kind, key in self.calendars.missing(now):
            if kind is PartKind.SEASONS:
                sends.append(self.get_seasons(server, header))
            else:
                runs.setdefault((header, kind), []).append(key)
        for (header, kind), keys in runs.items():
            start, count = keys[0], keys[-1] - keys[0] + 1
            if kind is PartKind.DAY_PROFILE:
                sends.append(self.get_day_profiles(server, header, start, count))
            else:
                sends.append(self.get_week_profiles(server, header, start, count))
        headed, self._headed = self._headed, []
        # special days are optional: asked for a calendar still lacking parts (one that came
        # whole has them, or has none), not after every publication a display heard whole
        waiting = {header for header, _, _ in self.calendars.missing(now)}
        sends += [self.get_special_days(server, h) for h in headed if h in waiting]
        return tuple(sends)
