"""SE Annex E (rules and guidelines for overlapping events): each figure as a test, and the
randomization bounds and table invariants as properties."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.drlc.test_drlc_client_core import HVAC, MIN, T0, WATER_HEATER, client, event, run
from zse.drlc import ApplyLoadControl, DrlcClientCore, Status, Step

TERMINAL = {
    Status.COMPLETED,
    Status.CANCELLED,
    Status.SUPERSEDED,
    Status.PARTIALLY_COMPLETED_OPT_OUT,
    Status.PARTIALLY_COMPLETED_OPT_IN,
    Status.COMPLETED_NO_PARTICIPATION,
}


def timeline(step: Step) -> list[tuple[int, int, int]]:
    """(time, event id, status) of each report."""
    return [
        (o.report.event_status_time, o.report.issuer_event_id, o.report.event_status)
        for o in step.reports
    ]


def test_figure_overlapping_events_for_different_device_classes_both_run():
    """Events for different device classes of one device overlap without conflict."""
    core = client(device_class=HVAC | WATER_HEATER)
    core.receive_event(event(1, T0, 120, device_class=HVAC), esi="a", now=T0 - MIN)
    core.receive_event(event(2, T0 + 60 * MIN, 120, device_class=WATER_HEATER), esi="a", now=T0 - 1)
    got = run(core, T0 + 180 * MIN)
    assert timeline(got) == [
        (T0, 1, Status.STARTED),
        (T0 + 60 * MIN, 2, Status.STARTED),
        (T0 + 120 * MIN, 1, Status.COMPLETED),
        (T0 + 180 * MIN, 2, Status.COMPLETED),
    ]


def test_figure_superseding_a_running_event_reports_it_when_the_new_one_starts():
    """A newer overlapping event supersedes the running one; the old keeps running and is
    reported superseded when the new event starts."""
    core = client()
    core.receive_event(event(1, T0, 120), esi="a", now=T0 - MIN)
    run(core, T0)
    got = core.receive_event(event(2, T0 + 60 * MIN, 90), esi="a", now=T0 + 30 * MIN)
    assert timeline(got) == [(T0 + 30 * MIN, 2, Status.RECEIVED)]  # no 0x07 yet
    assert core.active() == [1]
    switch = run(core, T0 + 60 * MIN)
    assert timeline(switch) == [
        (T0 + 60 * MIN, 1, Status.SUPERSEDED),
        (T0 + 60 * MIN, 2, Status.STARTED),
    ]
    assert [type(a).__name__ for a in switch.actions] == ["StopLoadControl", "ApplyLoadControl"]
    assert timeline(run(core, T0 + 150 * MIN)) == [(T0 + 150 * MIN, 2, Status.COMPLETED)]


def test_figure_superseding_a_scheduled_event_reports_it_at_once():
    core = client()
    core.receive_event(event(1, T0 + 60 * MIN, 60), esi="a", now=T0)
    got = core.receive_event(event(2, T0 + 30 * MIN, 60), esi="a", now=T0 + MIN)
    assert timeline(got) == [
        (T0 + MIN, 2, Status.RECEIVED),
        (T0 + MIN, 1, Status.SUPERSEDED),
    ]
    assert 1 not in core
    assert timeline(run(core, T0 + 90 * MIN)) == [
        (T0 + 30 * MIN, 2, Status.STARTED),
        (T0 + 90 * MIN, 2, Status.COMPLETED),
    ]


def test_figure_superseding_event_for_a_subset_of_device_classes():
    """A new event for one of the classes of an existing multi-class event supersedes it
    (they share a class), on a device of both classes."""
    core = client(device_class=HVAC | WATER_HEATER)
    core.receive_event(event(1, T0, 120, device_class=HVAC | WATER_HEATER), esi="a", now=T0 - 1)
    run(core, T0)
    core.receive_event(event(2, T0 + 60 * MIN, 60, device_class=HVAC), esi="a", now=T0 + 1)
    assert timeline(run(core, T0 + 60 * MIN)) == [
        (T0 + 60 * MIN, 1, Status.SUPERSEDED),
        (T0 + 60 * MIN, 2, Status.STARTED),
    ]


def test_figure_an_older_event_arriving_late_is_superseded_by_the_newer_one():
    """The newer issuer event id wins whatever the order of arrival (e.g. Get Scheduled
    Events answered by start time after a rejoin)."""
    core = client()
    core.receive_event(event(7, T0 + 30 * MIN, 60), esi="a", now=T0)
    got = core.receive_event(event(6, T0 + 60 * MIN, 60), esi="a", now=T0 + 1)
    assert timeline(got) == [(T0 + 1, 6, Status.RECEIVED), (T0 + 1, 6, Status.SUPERSEDED)]
    assert core.events() == [event(7, T0 + 30 * MIN, 60)]


def test_figure_back_to_back_events_do_not_supersede_each_other():
    core = client()
    core.receive_event(event(1, T0, 60), esi="a", now=T0 - 1)
    core.receive_event(event(2, T0 + 60 * MIN, 60), esi="a", now=T0 - 1)
    assert timeline(run(core, T0 + 120 * MIN)) == [
        (T0, 1, Status.STARTED),
        (T0 + 60 * MIN, 1, Status.COMPLETED),
        (T0 + 60 * MIN, 2, Status.STARTED),
        (T0 + 120 * MIN, 2, Status.COMPLETED),
    ]


def test_figure_ending_randomization_between_events_delays_the_next_without_overlap():
    """Randomization causes no conflict: the next event of the class waits for the
    randomized end of the running one, then runs its full duration."""
    core = client(duration_randomization_minutes=10, rng=random.Random(11))
    core.receive_event(event(1, T0, 60, event_control=0x02), esi="a", now=T0 - 1)
    core.receive_event(event(2, T0 + 60 * MIN, 60), esi="a", now=T0 - 1)
    end1 = core.window(1)[1]
    assert T0 + 60 * MIN < end1 <= T0 + 70 * MIN
    assert timeline(run(core, T0 + 200 * MIN)) == [
        (T0, 1, Status.STARTED),
        (end1, 1, Status.COMPLETED),
        (end1, 2, Status.STARTED),
        (end1 + 60 * MIN, 2, Status.COMPLETED),
    ]


def test_figure_acceptable_gap_from_start_randomization():
    """A randomized start may leave a gap after the previous event: nothing runs in it."""
    core = client(start_randomization_minutes=10, rng=random.Random(5))
    core.receive_event(event(1, T0, 60), esi="a", now=T0 - 1)
    core.receive_event(event(2, T0 + 60 * MIN, 60, event_control=0x01), esi="a", now=T0 - 1)
    start2 = core.window(2)[0]
    assert T0 + 60 * MIN < start2 <= T0 + 70 * MIN
    got = run(core, T0 + 200 * MIN)
    assert timeline(got) == [
        (T0, 1, Status.STARTED),
        (T0 + 60 * MIN, 1, Status.COMPLETED),
        (start2, 2, Status.STARTED),
        (start2 + 60 * MIN, 2, Status.COMPLETED),
    ]


def test_figure_superseded_running_event_with_randomized_start_of_the_new_one():
    """The superseded event runs until the new one's randomized start."""
    core = client(start_randomization_minutes=10, rng=random.Random(8))
    core.receive_event(event(1, T0, 120), esi="a", now=T0 - 1)
    run(core, T0)
    core.receive_event(event(2, T0 + 60 * MIN, 60, event_control=0x01), esi="a", now=T0 + 1)
    start2 = core.window(2)[0]
    assert timeline(run(core, start2)) == [
        (start2, 1, Status.SUPERSEDED),
        (start2, 2, Status.STARTED),
    ]


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    start_minutes=st.integers(0, 60),
    duration_minutes=st.integers(0, 60),
    control=st.integers(0, 3),
    seed=st.integers(0, 2**32),
    duration=st.integers(1, 1440),
)
def test_randomization_stays_within_the_attributes(
    start_minutes, duration_minutes, control, seed, duration
):
    core = client(
        start_randomization_minutes=start_minutes,
        duration_randomization_minutes=duration_minutes,
        rng=random.Random(seed),
    )
    scheduled = T0 + MIN
    core.receive_event(event(1, scheduled, duration, event_control=control), esi="a", now=T0)
    start, end = core.window(1)
    start_offset = start - scheduled
    end_offset = end - start - 60 * duration
    assert 0 <= start_offset <= (60 * start_minutes if control & 1 else 0)
    assert 0 <= end_offset <= (60 * duration_minutes if control & 2 else 0)


commands = st.lists(
    st.tuples(
        st.sampled_from(["event", "cancel", "opt_out", "opt_in", "tick"]),
        st.integers(1, 6),  # event id
        st.integers(0, 180),  # start, minutes after T0 (0 = now)
        st.integers(1, 90),  # duration
        st.integers(0, 3),  # event control / cancel control
        st.sampled_from([HVAC, WATER_HEATER, HVAC | WATER_HEATER]),
        st.integers(1, 40),  # minutes to advance
    ),
    max_size=25,
)


@settings(max_examples=80, deadline=None)
@given(commands=commands, seed=st.integers(0, 1000))
def test_table_invariants_hold_under_any_sequence(commands, seed):
    """One active event per device class, reports never at time 0 nor backwards in time,
    one terminal status per accepted event and nothing after it, table never over size."""
    core = DrlcClientCore(
        device_class=HVAC | WATER_HEATER,
        start_randomization_minutes=5,
        duration_randomization_minutes=5,
        table_size=3,
        rng=random.Random(seed),
    )
    now = T0
    log: list[tuple[int, int, int]] = []
    applied: dict[int, ApplyLoadControl] = {}
    for kind, eid, start, minutes, control, dc, advance in commands:
        step = Step()
        if kind == "event":
            when = 0 if start == 0 else now + start * MIN
            step = core.receive_event(
                event(eid, when, minutes, event_control=control, device_class=dc),
                esi="a",
                now=now,
            )
        elif kind == "cancel":
            step = core.receive_cancel(
                eid,
                device_class=dc,
                utility_enrollment_group=0,
                cancel_control=control & 1,
                effective_time=0,
                esi="a",
                now=now,
            )
        elif kind in ("opt_out", "opt_in") and eid in core:
            step = getattr(core, kind)(eid, now=now)
        else:
            target = now + advance * MIN
            while (deadline := core.next_deadline()) is not None and deadline <= target:
                now = max(now, deadline)
                step.extend(core.handle_timeout(now))
            now = target
        log += [
            (o.report.event_status_time, o.report.issuer_event_id, o.report.event_status)
            for o in step.reports
        ]
        for action in step.actions:
            if isinstance(action, ApplyLoadControl):
                applied[action.issuer_event_id] = action
            else:
                applied.pop(action.issuer_event_id, None)
        assert len(core) <= 3
        classes = [applied[i].device_class for i in applied]
        for i, a in enumerate(classes):
            for b in classes[i + 1 :]:
                assert not a & b, "two events of one device class applied at once"
        assert set(applied) <= set(core.active())
    times = [t for t, _, _ in log]
    assert all(t > 0 for t in times)
    assert times == sorted(times)
    ended: set[int] = set()
    for _, eid, status in log:
        if status in TERMINAL:
            assert eid not in ended
            ended.add(eid)
        elif status < 0xF0 and status != Status.RECEIVED:
            assert eid not in ended, f"status 0x{status:02X} of {eid} after its end"


def test_an_event_superseded_on_arrival_supersedes_nothing():
    """The outcome depended on the table's order: with 3 then 7 in the table, a new 5
    overlapping both finished 3 before finding that 7 supersedes 5 itself, leaving 3's
    window empty. 5 loses to 7 and replaces nothing: 3 runs."""
    for order in ((3, 7), (7, 3)):
        core = client()
        windows = {3: (T0 + 60 * MIN, 60), 7: (T0 + 150 * MIN, 60)}
        for eid in order:
            core.receive_event(event(eid, *windows[eid]), esi="a", now=T0)
        got = core.receive_event(event(5, T0 + 90 * MIN, 90), esi="a", now=T0 + 1)
        assert [(o.report.issuer_event_id, o.report.event_status) for o in got.reports] == [
            (5, Status.RECEIVED),
            (5, Status.SUPERSEDED),
        ]
        assert sorted(e.issuer_event_id for e in core.events()) == [3, 7]


slots = st.lists(
    st.tuples(st.integers(1, 9), st.sampled_from([HVAC, WATER_HEATER, HVAC | WATER_HEATER])),
    min_size=1,
    max_size=4,
    unique_by=lambda t: t[0],
)


@settings(max_examples=80, deadline=None)
@given(
    table=slots,
    new_id=st.integers(1, 12),
    new_start=st.integers(0, 5),
    new_hours=st.integers(1, 4),
    order=st.randoms(use_true_random=False),
)
def test_supersession_does_not_depend_on_the_order_of_the_table(
    table, new_id, new_start, new_hours, order
):
    """Annex E: the same events in the table, in any order, and the same new event give the
    same reports and the same table afterwards."""
    if new_id in {eid for eid, _ in table}:
        return
    # back-to-back hours, so the events in the table never overlap one another
    events = [
        event(eid, T0 + (1 + slot) * 60 * MIN, 60, device_class=dc)
        for slot, (eid, dc) in enumerate(table)
    ]
    outcomes = []
    for arrival in (events, order.sample(events, len(events))):
        core = client(device_class=HVAC | WATER_HEATER, table_size=5)
        for item in arrival:
            core.receive_event(item, esi="a", now=T0)
        got = core.receive_event(
            event(new_id, T0 + (1 + new_start) * 60 * MIN - 30 * MIN, 60 * new_hours),
            esi="a",
            now=T0 + 1,
        )
        outcomes.append((sorted(timeline(got)), sorted(e.issuer_event_id for e in core.events())))
    assert outcomes[0] == outcomes[1]
