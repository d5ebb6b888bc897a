"""The DRLC server core (SE D.2.2): event store, Get Scheduled Events, re-publishing, reports."""

from __future__ import annotations

import pytest

from tests.drlc.test_drlc_client_core import MIN, T0, event
from zse.drlc import DrlcServerCore, EventIdInUse, Status, StatusReport, UnknownEvent


def report(event_id: int, status: int, at: int) -> StatusReport:
    return StatusReport(
        issuer_event_id=event_id,
        event_status=status,
        event_status_time=at,
        criticality_level_applied=3,
    )


def test_scheduled_events_in_start_time_then_issuer_id_order():
    server = DrlcServerCore()
    server.publish(event(5, T0 + 60 * MIN, 30), now=T0)
    server.publish(event(3, T0 + 60 * MIN, 30), now=T0)
    server.publish(event(9, T0 + 10 * MIN, 30), now=T0)
    server.publish(event(1, T0 - 60 * MIN, 30), now=T0 - 61 * MIN)  # over
    ids = [e.issuer_event_id for e in server.scheduled(start_time=0, number_of_events=0, now=T0)]
    assert ids == [9, 3, 5]
    first = server.scheduled(start_time=0, number_of_events=2, now=T0)
    assert [e.issuer_event_id for e in first] == [9, 3]
    later = server.scheduled(start_time=T0 + 45 * MIN, number_of_events=0, now=T0)
    assert [e.issuer_event_id for e in later] == [3, 5]
    newer = server.scheduled(
        start_time=T0 + 60 * MIN, number_of_events=0, issuer_event_id=5, now=T0
    )
    assert [e.issuer_event_id for e in newer] == [5]  # 3 starts then too, with a smaller id


def test_scheduled_events_include_the_running_one_and_not_cancelled_ones():
    server = DrlcServerCore()
    server.publish(event(1, 0, 60), now=T0)
    server.publish(event(2, T0 + 90 * MIN, 60), now=T0)
    server.cancel(2, effective_time=0, now=T0 + MIN)
    got = server.scheduled(start_time=0, number_of_events=0, now=T0 + 30 * MIN)
    assert [e.issuer_event_id for e in got] == [1]
    assert server.scheduled(start_time=0, number_of_events=0, now=T0 + 60 * MIN) == []


def test_scheduled_gives_an_event_issued_for_now_its_absolute_start():
    """D.2.2.3.1.1.4: 0 is "now" to whoever receives it; Get Scheduled Events 30 minutes
    into a 60-minute event issued for now answers the start it was given and its duration,
    the same window as at the ESI. A start given as a time is sent as given."""
    server = DrlcServerCore()
    server.publish(event(1, 0, 60), now=T0)
    server.publish(event(2, T0 + 90 * MIN, 60), now=T0)
    got = server.scheduled(start_time=0, number_of_events=0, now=T0 + 30 * MIN)
    assert got == [event(1, T0, 60), event(2, T0 + 90 * MIN, 60)]
    assert server.event(1) == event(1, 0, 60)  # the store keeps the event as issued


def test_republish_starts_now_with_the_remaining_duration_rounded_up():
    server = DrlcServerCore()
    server.publish(event(1, T0, 60), now=T0 - MIN)
    assert server.republished(1, now=T0 - 30) == event(1, T0, 60)  # not started: as issued
    again = server.republished(1, now=T0 + 20 * MIN + 30)
    assert (again.start_time, again.duration_in_minutes) == (0, 40)
    with pytest.raises(ValueError, match="over"):
        server.republished(1, now=T0 + 60 * MIN)


def test_publish_refuses_an_invalid_event():
    with pytest.raises(ValueError, match="criticality"):
        DrlcServerCore().publish(event(1, 0, 30, criticality_level=0), now=T0)


def test_reports_are_collected_per_device_and_event_once_each():
    server = DrlcServerCore()
    server.publish(event(1, T0, 30), now=T0 - MIN, expected=["thermostat", "lcd", "ihd"])
    assert server.record("thermostat", report(1, Status.RECEIVED, T0 - MIN))
    assert not server.record("thermostat", report(1, Status.RECEIVED, T0 - MIN))  # resent
    server.record("thermostat", report(1, Status.STARTED, T0))
    server.record("lcd", report(1, Status.RECEIVED, T0 - MIN))
    server.record("lcd", report(1, Status.OPTED_OUT, T0 - 30))
    view = server.view(1)
    assert list(view) == ["lcd", "thermostat"]
    assert view["thermostat"].statuses == ((Status.RECEIVED, T0 - MIN), (Status.STARTED, T0))
    assert view["thermostat"].status == Status.STARTED
    assert server.started(1) == ["thermostat"]
    assert server.opted_out(1) == ["lcd"]
    assert server.never_answered(1) == ["ihd"]


def test_same_second_statuses_are_ordered_by_the_life_of_an_event():
    server = DrlcServerCore()
    server.publish(event(1, 0, 30), now=T0)
    server.record("d", report(1, Status.STARTED, T0))
    server.record("d", report(1, Status.RECEIVED, T0))
    assert [s for s, _ in server.view(1)["d"].statuses] == [Status.RECEIVED, Status.STARTED]


def test_unknown_event_queries_raise():
    with pytest.raises(UnknownEvent):
        DrlcServerCore().never_answered(4)


def test_server_snapshot_round_trip():
    server = DrlcServerCore()
    server.publish(event(1, T0, 30), now=T0 - MIN, expected=["a", "b"])
    server.cancel(1, effective_time=T0 + 10 * MIN, now=T0)
    server.record("a", report(1, Status.RECEIVED, T0 - MIN), signed=True)
    again = DrlcServerCore()
    again.restore(server.snapshot())
    assert again.snapshot() == server.snapshot()
    assert again.view(1)["a"].signed
    assert again.never_answered(1) == ["b"]


def test_get_scheduled_events_applies_the_1_2_issuer_id_only_at_the_same_start_time():
    """SE 1.2 (CCB 1297): the Issuer Event ID bounds only the events starting at the given
    Start Time (the paging key is (start, id)); it dropped every event with a smaller id,
    whatever its start, so a client paging lost later events with smaller ids, and got the
    running one again."""
    server = DrlcServerCore()
    server.publish(event(500, T0, 60), now=T0)
    server.publish(event(100, T0 + 120 * MIN, 30), now=T0)
    server.publish(event(200, T0 + 180 * MIN, 30), now=T0)
    server.publish(event(150, T0 + 240 * MIN, 30), now=T0)
    page = server.scheduled(
        start_time=T0, number_of_events=0, issuer_event_id=500, now=T0 + 30 * MIN
    )
    assert [e.issuer_event_id for e in page] == [500, 100, 200, 150]
    after = server.scheduled(
        start_time=T0 + 180 * MIN, number_of_events=0, issuer_event_id=201, now=T0 + 30 * MIN
    )
    assert [e.issuer_event_id for e in after] == [150]  # not the running 500 again


def test_publishing_a_held_id_with_other_content_is_refused():
    """A known id published again with other content silently replaced the ESI's record
    while every device ignored the repeat: the ESI described an event no device ran."""
    server = DrlcServerCore()
    server.publish(event(1, 0, 60, duty_cycle=50), now=T0, expected=["a"])
    with pytest.raises(EventIdInUse, match="issuer event id 1"):
        server.publish(event(1, T0 + 30 * MIN, 120, duty_cycle=10), now=T0 + MIN)
    server.publish(event(1, 0, 60, duty_cycle=50), now=T0 + 5 * MIN, expected=["b"])  # same
    assert server.scheduled(start_time=0, number_of_events=0, now=T0 + 5 * MIN) == [
        event(1, T0, 60, duty_cycle=50)  # the start first resolved, not moved
    ]
    assert server.never_answered(1) == ["a", "b"]


def test_0xfd_after_the_device_ended_the_event_is_not_news():
    """A device answers a cancel resent after a lost acknowledgement with Rejected - Undefined
    Event (0xFD: it ended and forgot the event, as Silicon Labs' client does); the ESI
    recorded it as a new status after Cancelled. After a status that ended the event there it
    is not recorded; before one (an event the device never had) it is."""
    server = DrlcServerCore()
    server.publish(event(1, T0 + MIN, 30), now=T0)
    server.publish(event(2, T0 + MIN, 30), now=T0)
    for status in (Status.RECEIVED, Status.STARTED, Status.CANCELLED):
        assert server.record("d", report(1, status, T0 + status))
    assert not server.record("d", report(1, Status.REJECTED_UNDEFINED_EVENT, T0 + 100))
    assert [s for s, _ in server.view(1)["d"].statuses] == [
        Status.RECEIVED,
        Status.STARTED,
        Status.CANCELLED,
    ]
    assert server.record("d", report(2, Status.REJECTED_UNDEFINED_EVENT, T0 + 100))
