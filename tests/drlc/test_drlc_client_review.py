"""A hostile review of the DRLC client (SE D.2.3, Annex E): what a device does with what it
receives, from a firmware team's reference tests and from an attacker on the HAN."""

from __future__ import annotations

from tests.drlc.test_drlc_client_core import HVAC, MIN, T0, client, event, statuses
from zse.drlc import MAX_ESIS, Status
from zse.drlc.core import DrlcClientCore

WATER_HEATER = 0x0004


def cancel(core: DrlcClientCore, issuer_event_id: int, *, esi: str, now: int, at: int = 0):
    return core.receive_cancel(
        issuer_event_id,
        device_class=HVAC,
        utility_enrollment_group=0,
        cancel_control=0,
        effective_time=at,
        esi=esi,
        now=now,
    )


# -- a full table and Annex E ------------------------------------------------------------------


def test_a_full_table_takes_the_event_that_supersedes_a_scheduled_one():
    """The ESI corrects a scheduled event with a larger id over the same window: the old one
    is superseded at once (0x07) and frees its slot, so the correction fits a full table and
    the device does not run the outdated event (it was answered 0xFE)."""
    core = client(table_size=1)
    core.receive_event(event(1, T0 + 3600, 30), esi="a", now=T0)
    step = core.receive_event(event(2, T0 + 3600, 30, criticality_level=5), esi="a", now=T0)
    assert statuses(step) == [(2, Status.RECEIVED), (1, Status.SUPERSEDED)]
    assert [e.issuer_event_id for e in core.events()] == [2]
    started = core.handle_timeout(T0 + 3600)
    assert statuses(started) == [(2, Status.STARTED)]


def test_a_full_table_takes_an_event_superseding_several_scheduled_ones():
    core = client(table_size=2)
    core.receive_event(event(1, T0 + 3600, 30), esi="a", now=T0)
    core.receive_event(event(2, T0 + 3600 + 30 * MIN, 30), esi="a", now=T0)
    step = core.receive_event(event(3, T0 + 3600, 60), esi="a", now=T0)
    assert statuses(step) == [
        (3, Status.RECEIVED),
        (1, Status.SUPERSEDED),
        (2, Status.SUPERSEDED),
    ]
    assert [e.issuer_event_id for e in core.events()] == [3]


def test_a_full_table_answers_an_event_a_newer_one_supersedes_with_0x07():
    """An older event arriving late (a replay) is superseded on arrival by the newer event
    held: it never takes a slot, so a full table reports it superseded, not rejected."""
    core = client(table_size=1)
    core.receive_event(event(5, T0 + 3600, 30), esi="a", now=T0)
    step = core.receive_event(event(4, T0 + 3600, 30), esi="a", now=T0)
    assert statuses(step) == [(4, Status.RECEIVED), (4, Status.SUPERSEDED)]
    assert [e.issuer_event_id for e in core.events()] == [5]


def test_a_full_table_still_rejects_what_needs_a_slot():
    """Still 0xFE: an event overlapping nothing, one for another class, and one superseding a
    running event (that keeps its slot until the new one starts)."""
    core = client(device_class=HVAC | WATER_HEATER, table_size=1)
    core.receive_event(event(1, T0 + 3600, 30), esi="a", now=T0)
    later = core.receive_event(event(2, T0 + 7200, 30), esi="a", now=T0)
    other = core.receive_event(event(3, T0 + 3600, 30, device_class=WATER_HEATER), esi="a", now=T0)
    assert statuses(later) == [(2, Status.REJECTED)]
    assert statuses(other) == [(3, Status.REJECTED)]
    core.handle_timeout(T0 + 3600)  # 1 runs
    step = core.receive_event(event(4, T0 + 3660, 30), esi="a", now=T0 + 3600)
    assert statuses(step) == [(4, Status.REJECTED)]
    assert core.active() == [1]


# -- many ESIs: a spoofed source cannot multiply the reports -----------------------------------


def test_duplicates_from_many_sources_reach_at_most_max_esis():
    """SE 5.7.3.5: a duplicate is answered once per ESI. From a flood of sources (a device on
    the HAN sending the event again from each spoofed address), only the first MAX_ESIS are
    answered and hear the event's reports; one transition is not a report to every address."""
    core = client()
    core.receive_event(event(1, T0 + 3600, 30), esi="0:9", now=T0)
    answered = []
    for nwk in range(1, 1001):
        answered += core.receive_event(event(1, T0 + 3600, 30), esi=f"{nwk}:9", now=T0).reports
    assert len(answered) == MAX_ESIS - 1
    [report] = core.handle_timeout(T0 + 3600).reports
    assert report.esis == ("0:9", *(f"{n}:9" for n in range(1, MAX_ESIS)))


def test_cancels_from_many_sources_do_not_grow_an_events_esis():
    """A Cancel Load Control Event effective later, from a flood of sources: the cancellation
    is reported to the event's ESIs and at most MAX_ESIS of them."""
    core = client()
    core.receive_event(event(1, T0 + 3600, 30), esi="0:9", now=T0)
    for nwk in range(1, 1001):
        cancel(core, 1, esi=f"{nwk}:9", now=T0, at=T0 + 3700)
    *_, last = core.handle_timeout(T0 + 3700).reports
    assert last.report.event_status == Status.CANCELLED
    assert last.esis == ("0:9", *(f"{n}:9" for n in range(1, MAX_ESIS)))
