"""Events at the ZCL frame (SE 1.2 D.11): the server core (the ESI's logs) and the client core
(a HAN device reading them), sans-IO.

Server (:class:`EventsServerProtocol`): Get Event Log is answered with as many Publish Event
Log as the matching events take (at most :data:`EVENTS_PER_COMMAND` events and
:data:`MAX_LOG_PAYLOAD` octets of events each, the request's TSN on each; NOT_FOUND when
nothing matches); Clear Event Log Request with Clear Event Log Response (the bits of the logs
cleared); :meth:`EventsServerProtocol.record` logs an event as Device Management's
configuration says and returns the Publish Event to push when it says so.

Client (:class:`EventsClientProtocol`): puts a log read in several Publish Event Log back
together (:class:`EventLogRead`; at most :data:`MAX_READS` reads in flight, the oldest given up
for a new one), tells each Publish Event (:class:`EventPublished`) and each Clear Event Log
Response (:class:`EventLogCleared`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from zigpy.zcl import foundation

from zse.events.core import Event, EventLog, Recorded
from zse.events.wire import (
    ALL_EVENT_IDS,
    FULL_INFORMATION,
    NO_END_TIME,
    Events,
    LoggedEvent,
    LogId,
)
from zse.se.ids import EVENTS
from zse.se.ids import EventsClientCommand as ToClient
from zse.se.ids import EventsServerCommand as ToServer
from zse.zcl.codec import encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage

__all__ = [
    "EVENTS_PER_COMMAND",
    "MAX_LOG_PAYLOAD",
    "MAX_READS",
    "EventLogClearRequested",
    "EventLogCleared",
    "EventLogRead",
    "EventPublished",
    "EventsClientProtocol",
    "EventsServerProtocol",
]

#: Events in one Publish Event Log at most (its 4-bit count).
EVENTS_PER_COMMAND: Final = 15
#: Octets of events in one Publish Event Log at most (after its 5-octet header): a frame.
MAX_LOG_PAYLOAD: Final = 64
#: Event log reads a client puts together at once.
MAX_READS: Final = 4
#: Events one read may bring, at most (every log full).
_MAX_READ_EVENTS = 256

_C = Events.ClientCommandDefs
_S = Events.ServerCommandDefs


@dataclass(frozen=True, kw_only=True)
class EventLogClearRequested:
    """A device asked the server to clear a log (D.11.2.3.2); ``cleared``: the bits sent back."""

    source_nwk: int
    source_ieee: Any
    log_id: int
    cleared: int


@dataclass(frozen=True, kw_only=True)
class EventLogRead:
    """A log read put back together: ``events`` newest first, of ``total_matching``."""

    source_nwk: int
    total_matching: int
    events: tuple[Event, ...]


@dataclass(frozen=True, kw_only=True)
class EventPublished:
    """Publish Event (D.11.2.4.1): an event the server pushed."""

    source_nwk: int
    event: Event
    event_control: int


@dataclass(frozen=True, kw_only=True)
class EventLogCleared:
    """Clear Event Log Response (D.11.2.4.3): the logs cleared, bit by log id."""

    source_nwk: int
    cleared: int


def _size(event: LoggedEvent) -> int:
    return 8 + len(event.event_data)


def _logged(event: Event, full: bool) -> LoggedEvent:
    return LoggedEvent(
        log_id=event.log_id,
        event_id=event.event_id,
        event_time=event.time,
        event_data=event.data if full else b"",
    )


class EventsServerProtocol:
    """The Events server at the ZCL frame; :attr:`log` holds the events."""

    def __init__(self, log: EventLog | None = None) -> None:
        self.log = EventLog() if log is None else log

    def next_deadline(self) -> int | None:
        return None

    def handle_timeout(self, now: int) -> Step:
        return Step()

    def record(
        self, event_id: int, now: int, data: bytes = b"", to: Destination | None = None
    ) -> tuple[Recorded, Step]:
        """Log an event as configured; with ``to``, the Publish Event its push asks for."""
        recorded = self.log.record(event_id, now, data)
        if not recorded.push or to is None:
            return recorded, Step()
        event = recorded.event or Event(
            log_id=LogId.GENERAL, event_id=event_id, time=now, data=bytes(data)
        )
        return recorded, Step(sends=(self.publish_event(event, to),))

    @staticmethod
    def publish_event(event: Event, to: Destination, event_control: int = 0) -> Send:
        payload = encode_command(
            _C.publish_event.schema(
                log_id=event.log_id,
                event_id=event.event_id,
                event_time=event.time,
                event_control=event_control,
                event_data=event.data,
            )
        )
        return Send(cluster_id=EVENTS, command_id=ToClient.PUBLISH_EVENT, payload=payload, to=to)

    def screen(self, msg: ZclMessage) -> Step | None:
        return Step() if msg.from_server else None

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Answer Get Event Log and Clear Event Log Request."""
        screened = self.screen(msg)
        if screened is not None:
            return screened
        if msg.command_id == ToServer.CLEAR_EVENT_LOG_REQUEST:
            log_id = int(command.log_id)
            cleared = self.log.clear(log_id)
            reply = Send(
                cluster_id=EVENTS,
                command_id=ToClient.CLEAR_EVENT_LOG_RESPONSE,
                payload=encode_command(
                    _C.clear_event_log_response.schema(cleared_event_logs=cleared)
                ),
                reply_to=msg,
            )
            asked = EventLogClearRequested(
                source_nwk=msg.src_nwk, source_ieee=msg.src_ieee, log_id=log_id, cleared=cleared
            )
            return Step(sends=(reply,), events=(asked,))
        if msg.command_id != ToServer.GET_EVENT_LOG:
            return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)
        control_log = int(command.event_control_log_id)
        matching = self.log.matching(
            control_log & 0x0F,
            int(command.event_id),
            int(command.start_time),
            int(command.end_time),
        )
        page = EventLog.page(matching, int(command.number_of_events), int(command.event_offset))
        if not page:
            return Step(status=foundation.Status.NOT_FOUND)
        full = bool(control_log & FULL_INFORMATION)
        chunks: list[list[LoggedEvent]] = [[]]
        for event in (_logged(e, full) for e in page):
            chunk = chunks[-1]
            if chunk and (
                len(chunk) == EVENTS_PER_COMMAND
                or sum(map(_size, chunk)) + _size(event) > MAX_LOG_PAYLOAD
            ):
                chunks.append(chunk := [])
            chunk.append(event)
        total = min(len(matching), 0xFFFF)
        sends = tuple(
            Send(
                cluster_id=EVENTS,
                command_id=ToClient.PUBLISH_EVENT_LOG,
                payload=encode_command(
                    _C.publish_event_log.schema(
                        total_number_of_matching_events=total,
                        command_index=index,
                        total_commands=len(chunks),
                        number_of_events_log_payload_control=len(chunk) << 4,
                        events=chunk,
                    )
                ),
                reply_to=msg,
            )
            for index, chunk in enumerate(chunks)
        )
        return Step(sends=sends)


class EventsClientProtocol:
    """A HAN device's Events client at the ZCL frame."""

    def __init__(self) -> None:
        #: Reads being put together: (server, TSN) -> (total commands, parts by index).
        self._reads: OrderedDict[tuple[int, int], tuple[int, dict[int, tuple[Event, ...]]]] = (
            OrderedDict()
        )

    def next_deadline(self) -> int | None:
        return None

    def handle_timeout(self, now: int) -> Step:
        return Step()

    @staticmethod
    def get_event_log(
        server: Destination,
        *,
        log_id: int = LogId.ALL,
        event_id: int = ALL_EVENT_IDS,
        start_time: int = 0,
        end_time: int = NO_END_TIME,
        number_of_events: int = 0,
        event_offset: int = 0,
        full: bool = True,
    ) -> Send:
        payload = encode_command(
            _S.get_event_log.schema(
                event_control_log_id=(FULL_INFORMATION if full else 0) | (log_id & 0x0F),
                event_id=event_id,
                start_time=start_time,
                end_time=end_time,
                number_of_events=number_of_events,
                event_offset=event_offset,
            )
        )
        return Send(
            cluster_id=EVENTS,
            command_id=ToServer.GET_EVENT_LOG,
            payload=payload,
            to=server,
            answers=frozenset({ToClient.PUBLISH_EVENT_LOG}),
        )

    @staticmethod
    def clear_event_log(server: Destination, log_id: int = LogId.ALL) -> Send:
        return Send(
            cluster_id=EVENTS,
            command_id=ToServer.CLEAR_EVENT_LOG_REQUEST,
            payload=encode_command(_S.clear_event_log_request.schema(log_id=log_id)),
            to=server,
            answers=frozenset({ToClient.CLEAR_EVENT_LOG_RESPONSE}),
        )

    def screen(self, msg: ZclMessage) -> Step | None:
        return None if msg.from_server else Step()

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        screened = self.screen(msg)
        if screened is not None:
            return screened
        cid = msg.command_id
        try:
            if cid == ToClient.PUBLISH_EVENT:
                event = Event(
                    log_id=int(command.log_id),
                    event_id=int(command.event_id),
                    time=int(command.event_time),
                    data=bytes(command.event_data),
                )
                published = EventPublished(
                    source_nwk=msg.src_nwk, event=event, event_control=int(command.event_control)
                )
                return Step(events=(published,), status=foundation.Status.SUCCESS)
            if cid == ToClient.PUBLISH_EVENT_LOG:
                return self._take_part(msg, command)
        except ValueError:  # an event no log can hold (EventLogError)
            return Step(status=foundation.Status.INVALID_FIELD)
        if cid == ToClient.CLEAR_EVENT_LOG_RESPONSE:
            cleared = EventLogCleared(
                source_nwk=msg.src_nwk, cleared=int(command.cleared_event_logs)
            )
            return Step(events=(cleared,), status=foundation.Status.SUCCESS)
        return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)

    def _take_part(self, msg: ZclMessage, command: Any) -> Step:
        total, index = int(command.total_commands), int(command.command_index)
        events = tuple(
            Event(
                log_id=int(e.log_id),
                event_id=int(e.event_id),
                time=int(e.event_time),
                data=bytes(e.event_data),
            )
            for e in command.events
        )
        if index >= total or int(command.number_of_events_log_payload_control) >> 4 != len(events):
            return Step(status=foundation.Status.MALFORMED_COMMAND)
        key = (msg.src_nwk, msg.tsn)
        held_total, parts = self._reads.get(key, (total, {}))
        if held_total != total:
            return Step(status=foundation.Status.INVALID_FIELD)
        parts[index] = events
        if sum(len(p) for p in parts.values()) > _MAX_READ_EVENTS:
            del self._reads[key]
            return Step(status=foundation.Status.INSUFFICIENT_SPACE)
        self._reads[key] = (total, parts)
        self._reads.move_to_end(key)
        while len(self._reads) > MAX_READS:
            self._reads.popitem(last=False)
        if len(parts) < total:
            return Step(status=foundation.Status.SUCCESS)
        del self._reads[key]
        read = EventLogRead(
            source_nwk=msg.src_nwk,
            total_matching=int(command.total_number_of_matching_events),
            events=tuple(e for i in range(total) for e in parts[i]),
        )
        return Step(events=(read,), status=foundation.Status.SUCCESS)
