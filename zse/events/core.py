"""The Events server's logs (SE 1.2 D.11), sans-IO: bounded, newest first, read with Get Event
Log's filters, cleared with Clear Event Log's result bits. Fed ``now`` (ZigBee UTCTime).

Which events go to which log, and which are pushed to the HAN (Publish Event), is Device
Management's event configuration (D.10.2.4.5, :class:`~zse.devmgmt.core.EventConfigurations`):
:meth:`EventLog.record` looks the event id up there. An event id with no configuration, or
configured "do not log", is not logged.

The log ids, the cleared-logs bits and Get Event Log's sentinels are declared here, in the
sans-IO layer, and used by the wire (:mod:`zse.events.wire`).

Bounds: each log keeps its newest :data:`LOG_SIZES` events (the oldest goes first), an event's
data at most :data:`MAX_EVENT_DATA` octets: at most 224 events whatever the HAN sends (the HAN
adds none; it only reads and clears).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

import zigpy.types as t

from zse.devmgmt.core import EventConfigurations, logged_in, pushed_to_han
from zse.errors import ZseError
from zse.records import STR, U8, U16, U32, Fields, ListOf, RecordError, TupleOf, check, load_each

__all__ = [
    "ALL_EVENT_IDS",
    "DEFAULT_CONFIGURATION",
    "FULL_INFORMATION",
    "LOG_SIZES",
    "MAX_EVENT_DATA",
    "NO_END_TIME",
    "ClearedLogs",
    "Event",
    "EventId",
    "EventLog",
    "EventLogError",
    "LogId",
    "Recorded",
]

#: Get Event Log's Event ID that matches every event.
ALL_EVENT_IDS: Final = 0x0000
#: The event control bit (bits 4-7 of Get Event Log's first octet) asking for each event's
#: data; without it the events come with empty data.
FULL_INFORMATION: Final = 0x10
#: An End Time with no end.
NO_END_TIME: Final = 0xFFFFFFFF


class LogId(enum.IntEnum):
    """Log ids (D.11.2.3.1): 0 all logs (Get / Clear), then each log; the same values as
    Device Management's event configuration logging (Wireshark's names)."""

    ALL = 0
    TAMPER = 1
    FAULT = 2
    GENERAL = 3
    SECURITY = 4
    NETWORK = 5


class ClearedLogs(t.bitmap8):
    """Clear Event Log Response's Cleared Event Logs: bit N set, log id N cleared (bit 0: all
    logs)."""

    All_Logs = 1 << 0
    Tamper_Log = 1 << 1
    Fault_Log = 1 << 2
    General_Event_Log = 1 << 3
    Security_Event_Log = 1 << 4
    Network_Event_Log = 1 << 5


#: Events each log keeps (newest first; the oldest is dropped for a new one).
LOG_SIZES: Final[Mapping[LogId, int]] = {
    LogId.TAMPER: 32,
    LogId.FAULT: 32,
    LogId.GENERAL: 64,
    LogId.SECURITY: 64,
    LogId.NETWORK: 32,
}
#: Octets of an event's data at most (Publish Event's octet string; kept small so that a log
#: entry fits a frame).
MAX_EVENT_DATA: Final = 32


class EventId(IntEnum):
    """The event ids zse's ESI logs, as Wireshark 4.0's table of SE event ids names them (the
    Device Management client's event configuration attributes, SE 1.2 D.10.3.2; the SE
    table itself was out of reach). A device joining and a load control event starting have
    no id in that table: zse logs neither by itself (:meth:`zse.roles.esi.
    EnergyServiceInterface.log_event` is the hook for an application's own ids); a top-up is
    the Prepayment cluster's (not zse's yet)."""

    MESSAGE_CONFIRMATION_SENT = 0x0300
    EVENT_LOG_CLEARED = 0x0604
    PUBLISH_COT_ACTIONED = 0x06C1
    PUBLISH_COS_ACTIONED = 0x06C5
    CHANGE_PASSWORD_ACTIONED = 0x06C9
    UPDATE_SITE_ID_ACTIONED = 0x06D1
    UPDATE_CIN_ACTIONED = 0x06D5


#: The ESI's event configuration unless told otherwise (D.10.2.4.5.1.3): a change of tenancy
#: or supplier goes to the general log and is pushed to the HAN (0x13); the site id, CIN and
#: message confirmations to the general log (0x03); a password change and a cleared log to
#: the security log (0x04).
DEFAULT_CONFIGURATION: Final[Mapping[int, int]] = {
    EventId.MESSAGE_CONFIRMATION_SENT: 0x03,
    EventId.EVENT_LOG_CLEARED: 0x04,
    EventId.PUBLISH_COT_ACTIONED: 0x13,
    EventId.PUBLISH_COS_ACTIONED: 0x13,
    EventId.CHANGE_PASSWORD_ACTIONED: 0x04,
    EventId.UPDATE_SITE_ID_ACTIONED: 0x03,
    EventId.UPDATE_CIN_ACTIONED: 0x03,
}


class EventLogError(ZseError, ValueError):
    """An event that cannot be logged (its data too long, an id out of range)."""


@dataclass(frozen=True, kw_only=True)
class Event:
    """One logged event: its log, id, time and data."""

    log_id: int
    event_id: int
    time: int
    data: bytes = field(default=b"")

    def __post_init__(self) -> None:
        if self.log_id not in LOG_SIZES:
            raise EventLogError(f"log id {self.log_id} is not a log (1-5)")
        if not 0 < self.event_id <= 0xFFFF:
            raise EventLogError(f"event id {self.event_id} is not 0x0001-0xFFFF")
        if not 0 <= self.time <= 0xFFFFFFFF:
            raise EventLogError(f"event time {self.time} is not a UTCTime")
        if len(self.data) > MAX_EVENT_DATA:
            raise EventLogError(f"event data of {len(self.data)} octets (at most {MAX_EVENT_DATA})")

    def to_record(self) -> list[Any]:
        return [self.log_id, self.event_id, self.time, self.data.hex()]


_ENTRY = Fields({"events": ListOf(TupleOf(U8, U16, U32, STR))})


@dataclass(frozen=True, kw_only=True)
class Recorded:
    """What :meth:`EventLog.record` did: the event logged (None: not logged) and whether its
    configuration pushes it to the HAN."""

    event: Event | None
    push: bool
    log_id: int | None


class EventLog:
    """The Events server's logs: one bounded deque per log id, newest first.

    ``configurations``: Device Management's event configuration, which decides the log and the
    push of each event id. ``clearable``: the logs a Clear Event Log Request may clear (by
    default the fault, general and network logs; a meter keeps its tamper and security logs
    from a HAN device's request)."""

    def __init__(
        self,
        configurations: EventConfigurations | None = None,
        *,
        clearable: frozenset[int] = frozenset({LogId.FAULT, LogId.GENERAL, LogId.NETWORK}),
    ) -> None:
        self.configurations = EventConfigurations() if configurations is None else configurations
        self.clearable = clearable
        self.logs: dict[int, deque[Event]] = {
            log: deque(maxlen=size) for log, size in LOG_SIZES.items()
        }
        self._changed: set[int] = set()

    def record(self, event_id: int, now: int, data: bytes = b"") -> Recorded:
        """Log an event as its configuration says (not at all when it has none)."""
        configuration = self.configurations.get(event_id)
        if configuration is None:
            return Recorded(event=None, push=False, log_id=None)
        log = logged_in(configuration)
        push = pushed_to_han(configuration)
        event = None
        if log is not None:
            event = Event(log_id=int(log), event_id=event_id, time=now, data=bytes(data))
            self.logs[int(log)].appendleft(event)
            self._changed.add(int(log))
        elif push:  # pushed, not kept: checked all the same
            Event(log_id=int(LogId.GENERAL), event_id=event_id, time=now, data=bytes(data))
        return Recorded(event=event, push=push, log_id=None if log is None else int(log))

    def matching(
        self,
        log_id: int = LogId.ALL,
        event_id: int = ALL_EVENT_IDS,
        start_time: int = 0,
        end_time: int = NO_END_TIME,
    ) -> list[Event]:
        """Get Event Log's filters (D.11.2.3.1): one log (0: every log), one event id (0:
        every event), events from ``start_time`` to ``end_time`` (both included;
        0xFFFFFFFF: no end); newest first (events of the same second in different logs: by
        log id)."""
        logs = list(self.logs) if log_id == LogId.ALL else [log_id]
        found = [
            event
            for log in logs
            for event in self.logs.get(log, ())
            if event_id in (ALL_EVENT_IDS, event.event_id)
            and start_time <= event.time
            and (end_time == NO_END_TIME or event.time <= end_time)
        ]
        found.sort(key=lambda e: e.time, reverse=True)  # newest first across logs (stable)
        return found

    @staticmethod
    def page(events: list[Event], number_of_events: int, offset: int) -> list[Event]:
        """Skip ``offset`` events, then at most ``number_of_events`` (0: all the rest)."""
        rest = events[offset:]
        return rest if number_of_events == 0 else rest[:number_of_events]

    def clear(self, log_id: int) -> int:
        """Clear Event Log Request (D.11.2.3.2): the Cleared Event Logs bits (bit N: log N
        cleared; bit 0 with every clearable log cleared, for log id 0)."""
        logs = list(self.logs) if log_id == LogId.ALL else [log_id]
        bits = 0
        for log in logs:
            if log in self.logs and log in self.clearable:
                self.logs[log].clear()
                self._changed.add(log)
                bits |= 1 << log
        if log_id == LogId.ALL and all(log in self.clearable for log in self.logs):
            bits |= 1
        return bits

    def __len__(self) -> int:
        return sum(len(log) for log in self.logs.values())

    def copy(self) -> dict[int, tuple[Event, ...]]:
        """What each log holds now, for :meth:`put_back`."""
        return {log: tuple(events) for log, events in self.logs.items()}

    def put_back(self, copy: Mapping[int, tuple[Event, ...]]) -> None:
        """Make each log what :meth:`copy` held: a clear whose store write failed is
        undone (the logs it touched stay marked changed, harmlessly written again)."""
        for log, events in copy.items():
            self.logs[log] = deque(events, maxlen=LOG_SIZES[LogId(log)])

    def changes(self) -> dict[str, Any]:
        """The logs changed since the last call, as records (key ``log/N``)."""
        out = {
            f"log/{log}": {"events": [e.to_record() for e in self.logs[log]]}
            for log in self._changed
        }
        self._changed.clear()
        return out

    def unsaved(self, changes: Mapping[str, Any]) -> None:
        """``changes`` (from :meth:`changes`) could not be written: the next call gives those
        logs again."""
        self._changed.update(int(key[4:]) for key in changes if key.startswith("log/"))

    def load(
        self,
        records: Mapping[str, Any],
        *,
        namespace: str,
        on_bad: Callable[[RecordError], None] | None = None,
    ) -> None:
        """Put back stored logs; a damaged record is handed to ``on_bad`` and not loaded."""

        def one(key: str, value: Any) -> None:
            if not key.startswith("log/") or not key[4:].isdigit() or int(key[4:]) not in LOG_SIZES:
                raise EventLogError("not an event log record")
            check(value, _ENTRY)
            events = [_event(item) for item in value["events"]]
            log = int(key[4:])
            if any(e.log_id != log for e in events) or len(events) > LOG_SIZES[LogId(log)]:
                raise EventLogError("a log record that is not that log's")
            self.logs[log] = deque(events, maxlen=LOG_SIZES[LogId(log)])

        load_each(records.items(), one, namespace=namespace, on_bad=on_bad)


def _event(item: list[Any]) -> Event:
    try:
        data = bytes.fromhex(item[3])
    except ValueError:
        raise EventLogError("event data that is not hex") from None
    return Event(log_id=item[0], event_id=item[1], time=item[2], data=data)
