"""The Events server's logs and the cores at the ZCL frame (SE 1.2 D.11), with no event loop:
Device Management's configuration decides the log and the push; newest first; the filters;
bounded; Clear Event Log's bits; a long read split over several Publish Event Log and put
back together; a damaged stored log is not served."""

from __future__ import annotations

import dataclasses

import pytest
from zigpy.zcl import foundation

from tests.services.test_delivery import REQUEST
from zse.devmgmt.core import EventConfigurations
from zse.events.core import (
    DEFAULT_CONFIGURATION,
    LOG_SIZES,
    Event,
    EventId,
    EventLog,
    EventLogError,
)
from zse.events.protocol import (
    EventLogRead,
    EventPublished,
    EventsClientProtocol,
    EventsServerProtocol,
)
from zse.events.service import _step
from zse.events.wire import LogId
from zse.records import RecordError
from zse.zcl.delivery import Destination
from zse.zcl.frame import ZclMessage

NOW = 800_000_000
S = foundation.Status
ESI = Destination.device(0x0000, 1)


def request(send) -> ZclMessage:
    return dataclasses.replace(
        REQUEST, frame_control=0x01, command_id=send.command_id, payload=send.payload, tsn=9
    )


def response(send) -> ZclMessage:
    return dataclasses.replace(
        REQUEST, frame_control=0x09, command_id=send.command_id, payload=send.payload, tsn=9
    )


def filled() -> EventLog:
    log = EventLog(EventConfigurations(DEFAULT_CONFIGURATION))
    for i in range(10):
        log.record(EventId.PUBLISH_COT_ACTIONED, NOW + 10 * i, bytes((i,)))
    log.record(EventId.CHANGE_PASSWORD_ACTIONED, NOW + 5, b"\x01")
    return log


def test_the_configuration_decides_the_log_and_the_push() -> None:
    log = EventLog(EventConfigurations({0x0300: 0x03, 0x06C1: 0x13, 0x0700: 0x00}))
    assert log.record(0x0300, NOW).log_id == LogId.GENERAL
    assert log.record(0x06C1, NOW).push
    assert log.record(0x0700, NOW).event is None  # configured "do not log"
    assert log.record(0x0701, NOW).event is None  # not configured
    assert len(log) == 2
    # bits 0-2 the log, bit 3 the WAN, bit 4 the HAN (D.10.2.4.5.1.3)
    more = EventLog(EventConfigurations({1: 0x04, 2: 0x05, 3: 0x0B, 4: 0x10, 5: 0x01}))
    recorded = [more.record(event_id, NOW) for event_id in (1, 2, 3, 4, 5)]
    assert [r.log_id for r in recorded] == [
        LogId.SECURITY,
        LogId.NETWORK,
        LogId.GENERAL,
        None,
        LogId.TAMPER,
    ]
    assert [r.push for r in recorded] == [False, False, False, True, False]  # 0x0B: WAN only


def test_matching_is_newest_first_and_filtered() -> None:
    log = filled()
    everything = log.matching()
    assert [e.time for e in everything][:3] == [NOW + 90, NOW + 80, NOW + 70]
    assert len(everything) == 11
    assert [e.event_id for e in log.matching(LogId.SECURITY)] == [EventId.CHANGE_PASSWORD_ACTIONED]
    assert len(log.matching(event_id=EventId.PUBLISH_COT_ACTIONED)) == 10
    window = log.matching(start_time=NOW + 20, end_time=NOW + 40)
    assert [e.time for e in window] == [NOW + 40, NOW + 30, NOW + 20]
    assert [e.time for e in EventLog.page(everything, 2, 3)] == [NOW + 60, NOW + 50]


def test_each_log_is_bounded_oldest_dropped() -> None:
    log = EventLog(EventConfigurations({0x0300: 0x03}))
    for i in range(LOG_SIZES[LogId.GENERAL] + 5):
        log.record(0x0300, NOW + i)
    general = log.logs[LogId.GENERAL]
    assert len(general) == LOG_SIZES[LogId.GENERAL]
    assert general[0].time == NOW + LOG_SIZES[LogId.GENERAL] + 4
    with pytest.raises(EventLogError, match="at most"):
        log.record(0x0300, NOW, b"x" * 33)


def test_clear_answers_which_logs_it_cleared() -> None:
    log = filled()
    assert log.clear(LogId.SECURITY) == 0  # a meter keeps its security log
    assert log.clear(LogId.ALL) == (1 << LogId.FAULT) | (1 << LogId.GENERAL) | (1 << LogId.NETWORK)
    assert [e.event_id for e in log.matching()] == [EventId.CHANGE_PASSWORD_ACTIONED]
    everything = EventLog(clearable=frozenset(LOG_SIZES))
    assert everything.clear(LogId.ALL) == 0b111111


def test_a_long_read_is_split_and_put_back_together() -> None:
    server = EventsServerProtocol(filled())
    client = EventsClientProtocol()
    get = client.get_event_log(ESI, log_id=LogId.GENERAL)
    step = _step(server, request(get), NOW)
    assert len(step.sends) > 1  # 10 events of 9 octets, 64 octets a command
    reads = []
    for send in step.sends:
        answer = _step(client, response(send), NOW)
        assert answer.status == S.SUCCESS
        reads += [e for e in answer.events if isinstance(e, EventLogRead)]
    (read,) = reads
    assert read.total_matching == 10
    assert [e.data for e in read.events] == [bytes((i,)) for i in range(9, -1, -1)]
    minimal = _step(server, request(client.get_event_log(ESI, full=False, number_of_events=1)), NOW)
    (only,) = _step(client, response(minimal.sends[0]), NOW).events
    assert only.events[0].data == b""  # minimal information: no data
    assert only.total_matching == 11


def test_nothing_matching_is_not_found_and_a_publish_event_is_told() -> None:
    server = EventsServerProtocol(EventLog())
    client = EventsClientProtocol()
    assert _step(server, request(client.get_event_log(ESI)), NOW).status == S.NOT_FOUND
    event = Event(log_id=LogId.GENERAL, event_id=0x06C1, time=NOW, data=b"\x01")
    told = _step(client, response(server.publish_event(event, ESI)), NOW)
    assert told.events == (
        EventPublished(source_nwk=REQUEST.src_nwk, event=event, event_control=0),
    )
    assert _step(server, dataclasses.replace(REQUEST, command_id=0x05), NOW).status == (
        S.UNSUP_CLUSTER_COMMAND
    )


def test_a_damaged_stored_log_is_handed_over_and_not_served() -> None:
    log = filled()
    records = log.changes()
    records["log/3"]["events"][0][3] = "zz"
    records["log/9"] = {"events": []}
    loaded = EventLog()
    bad: list[RecordError] = []
    loaded.load(records, namespace="n", on_bad=bad.append)
    assert sorted(e.key for e in bad) == ["log/3", "log/9"]
    assert len(loaded.logs[LogId.GENERAL]) == 0
    assert len(loaded.logs[LogId.SECURITY]) == 1
