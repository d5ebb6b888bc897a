"""Events cluster, 0x0709 (SE 1.2 D.11), declared once on zigpy's ZCL.

A client (a HAN device, a head end through the ESI) reads a server's event logs (Get Event Log,
answered by one or more Publish Event Log) and asks it to clear them (Clear Event Log Request /
Response); the server pushes single events as they happen (Publish Event). The SE 1.2/1.4
text was out of reach: ids, field order and sizes follow Wireshark 4.0's ``packet-zbee-zcl-se.c``
Events dissector (``zbee_zcl_se.events.*``, with the SE 1.4 protocol version its preferences
default to: the Log ID fields present); the meaning of the nibbles (Get Event Log's event
control / log id, Publish Event Log's number of events / log payload control) and of the
cleared-logs bitmap follows Silicon Labs' public Events server (facts only). The tests dissect
every command with tshark.
"""

from __future__ import annotations

from typing import Final

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import BaseCommandDefs

from zse.events.core import ALL_EVENT_IDS, FULL_INFORMATION, NO_END_TIME, ClearedLogs, LogId
from zse.se.ids import EVENTS, EventsClientCommand, EventsServerCommand
from zse.zcl._defs import cluster_id, command

__all__ = [
    "ALL_EVENT_IDS",
    "FULL_INFORMATION",
    "NO_END_TIME",
    "ClearedLogs",
    "Events",
    "LogId",
    "LoggedEvent",
    "LoggedEvents",
]


class LoggedEvent(t.Struct):
    """One event of Publish Event Log (D.11.2.4.2): log id, event id, time, data."""

    log_id: t.uint8_t
    event_id: t.uint16_t
    event_time: t.UTCTime
    event_data: t.LVBytes


class LoggedEvents(t.List[LoggedEvent]):
    """The events of one Publish Event Log, to the end of the payload."""


class Events(Cluster):
    """Events (SE 1.2 D.11); attach explicitly, it is not in zigpy's registry."""

    cluster_id = cluster_id(EVENTS)
    name = "Events"
    ep_attribute = "smartenergy_events"
    _skip_registry = True

    class ServerCommandDefs(BaseCommandDefs):
        """Commands the server receives (D.11.2.3)."""

        get_event_log: Final = command(
            EventsServerCommand.GET_EVENT_LOG,
            {
                "event_control_log_id": t.uint8_t,
                "event_id": t.uint16_t,
                "start_time": t.UTCTime,
                "end_time": t.UTCTime,
                "number_of_events": t.uint8_t,
                "event_offset": t.uint16_t,
            },
        )
        clear_event_log_request: Final = command(
            EventsServerCommand.CLEAR_EVENT_LOG_REQUEST, {"log_id": t.uint8_t}
        )

    class ClientCommandDefs(BaseCommandDefs):
        """Commands the server sends (D.11.2.4)."""

        publish_event: Final = command(
            EventsClientCommand.PUBLISH_EVENT,
            {
                "log_id": t.uint8_t,
                "event_id": t.uint16_t,
                "event_time": t.UTCTime,
                "event_control": t.uint8_t,
                "event_data": t.LVBytes,
            },
        )
        publish_event_log: Final = command(
            EventsClientCommand.PUBLISH_EVENT_LOG,
            {
                "total_number_of_matching_events": t.uint16_t,
                "command_index": t.uint8_t,
                "total_commands": t.uint8_t,
                # bits 4-7: the events in this command; bits 0-3: log payload control
                "number_of_events_log_payload_control": t.uint8_t,
                "events": LoggedEvents,
            },
        )
        clear_event_log_response: Final = command(
            EventsClientCommand.CLEAR_EVENT_LOG_RESPONSE, {"cleared_event_logs": ClearedLogs}
        )
