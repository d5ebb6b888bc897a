"""The DRLC client core (SE D.2.3, Annex E): one test per rule, on plain integers for time."""

from __future__ import annotations

import random

import pytest

from zse.drlc import (
    ApplyLoadControl,
    DrlcClientCore,
    LoadControlEvent,
    OptOutRefused,
    Status,
    Step,
    StopLoadControl,
    UnknownEvent,
)

HVAC = 0x0001
WATER_HEATER = 0x0004
T0 = 800_000_000  # ZigBee time
MIN = 60


def event(issuer_event_id: int, start: int, minutes: int, **fields: int) -> LoadControlEvent:
    values = {"device_class": HVAC, "criticality_level": 0x03}
    values.update(fields)
    return LoadControlEvent(
        issuer_event_id=issuer_event_id, start_time=start, duration_in_minutes=minutes, **values
    )


def unchecked(issuer_event_id: int, start: int, minutes: int, **fields: int) -> LoadControlEvent:
    """An event as a frame may carry it, invalid fields and all (the decoder builds these)."""
    values = {"device_class": HVAC, "criticality_level": 0x03}
    values.update(fields)
    return LoadControlEvent.unchecked(
        issuer_event_id=issuer_event_id, start_time=start, duration_in_minutes=minutes, **values
    )


def client(**options) -> DrlcClientCore:
    options.setdefault("device_class", HVAC)
    options.setdefault("start_randomization_minutes", 0)
    options.setdefault("rng", random.Random(1))
    return DrlcClientCore(**options)


def statuses(step: Step) -> list[tuple[int, int]]:
    return [(o.report.issuer_event_id, o.report.event_status) for o in step.reports]


def actions(step: Step) -> list[tuple[str, int]]:
    return [
        ("apply" if isinstance(a, ApplyLoadControl) else "stop", a.issuer_event_id)
        for a in step.actions
    ]


def run(core: DrlcClientCore, until: int) -> Step:
    """Advance to ``until`` deadline by deadline, as a shell does."""
    step = Step()
    while (deadline := core.next_deadline()) is not None and deadline <= until:
        step.extend(core.handle_timeout(deadline))
    return step


# -- targeting and validation


def test_device_class_mismatch_is_silent():
    core = client()
    assert not core.receive_event(event(1, T0, 30, device_class=WATER_HEATER), esi="a", now=T0)
    assert len(core) == 0


def test_enrollment_group_targets_only_its_members():
    core = client(utility_enrollment_group=5)
    assert not core.receive_event(event(1, T0, 30, utility_enrollment_group=6), esi="a", now=T0)
    got = core.receive_event(event(2, T0 + MIN, 30, utility_enrollment_group=5), esi="a", now=T0)
    assert statuses(got) == [(2, Status.RECEIVED)]
    got = core.receive_event(event(3, T0 + 99 * MIN, 30), esi="a", now=T0)  # group 0 = all
    assert statuses(got) == [(3, Status.RECEIVED)]


def test_a_device_in_enrollment_group_0_is_a_member_of_every_group():
    """D.2.3.2.1: UtilityEnrollmentGroup 0x00, the default, is a member of all groups, so
    an event or a cancel addressed to any group reaches it."""
    core = client()  # utility_enrollment_group=0
    got = core.receive_event(event(1, T0 + MIN, 30, utility_enrollment_group=5), esi="a", now=T0)
    assert statuses(got) == [(1, Status.RECEIVED)]
    got = core.receive_cancel(
        1,
        device_class=HVAC,
        utility_enrollment_group=5,
        cancel_control=0,
        effective_time=0,
        esi="a",
        now=T0 + 1,
    )
    assert statuses(got) == [(1, Status.CANCELLED)]
    assert core.targets_me(HVAC, 0xFF)
    assert not core.targets_me(WATER_HEATER, 5)  # the device class still has to match


def test_expired_event_is_rejected_with_0xfb():
    core = client()
    got = core.receive_event(event(1, T0 - 31 * MIN, 30), esi="a", now=T0)
    assert statuses(got) == [(1, Status.REJECTED_EXPIRED)]
    assert got.reports[0].esis == ("a",)
    # expired means the current time is past start + duration: one second past it is
    got = core.receive_event(event(2, T0 - 30 * MIN - 1, 30), esi="a", now=T0)
    assert statuses(got) == [(2, Status.REJECTED_EXPIRED)]


@pytest.mark.parametrize(
    ("start", "minutes"),
    [
        pytest.param(T0 - 30 * MIN, 30, id="ends right now"),
        pytest.param(0, 0, id="now for 0 minutes"),
        pytest.param(T0, 0, id="at now for 0 minutes"),
    ],
)
def test_an_event_ending_right_now_is_not_expired_it_runs_its_empty_course(start, minutes):
    """D.2.3.3.1.1.2 0xFB is for an event already over: current time > start + duration.
    One whose end is the current time is received, started and completed at once."""
    core = client()
    got = core.receive_event(event(1, start, minutes), esi="a", now=T0)
    assert statuses(got) == [(1, Status.RECEIVED), (1, Status.STARTED), (1, Status.COMPLETED)]
    assert {o.report.event_status_time for o in got.reports} == {T0}
    assert actions(got) == [("apply", 1), ("stop", 1)]
    assert len(core) == 0
    assert core.next_deadline() is None


@pytest.mark.parametrize(
    "fields",
    [
        {"criticality_level": 0},
        {"criticality_level": 0x10},
        {"duty_cycle": 101},
        {"average_load_adjustment_percentage": 101},
        {"cooling_temperature_set_point": -30000},
    ],
)
def test_invalid_event_is_rejected_with_0xfe(fields):
    got = client().receive_event(unchecked(1, T0, 30, **fields), esi="a", now=T0)
    assert statuses(got) == [(1, Status.REJECTED)]


def test_duration_over_a_day_and_start_all_ones_are_invalid():
    core = client()
    assert statuses(core.receive_event(unchecked(1, T0, 1441), esi="a", now=T0)) == [(1, 0xFE)]
    got = core.receive_event(unchecked(2, 0xFFFFFFFF, 10), esi="a", now=T0)
    assert statuses(got) == [(2, 0xFE)]


def test_full_table_rejects_with_0xfe():
    core = client(table_size=2)
    for i in (1, 2):
        core.receive_event(event(i, T0 + i * 100 * MIN, 30), esi="a", now=T0)
    got = core.receive_event(event(3, T0 + 300 * MIN, 30), esi="a", now=T0)
    assert statuses(got) == [(3, Status.REJECTED)]
    assert len(core) == 2


def test_cancel_of_unknown_event_is_rejected_with_0xfd():
    got = client().receive_cancel(
        9,
        device_class=HVAC,
        utility_enrollment_group=0,
        cancel_control=0,
        effective_time=0,
        esi="a",
        now=T0,
    )
    assert statuses(got) == [(9, Status.REJECTED_UNDEFINED_EVENT)]
    assert got.reports[0].report.event_status_time == T0


def test_cancel_after_the_event_end_is_rejected_with_0xf9():
    core = client()
    core.receive_event(event(1, T0 + MIN, 30), esi="a", now=T0)
    for effective in (T0 + 31 * MIN + 1, T0 + 32 * MIN, 0xFFFFFFFF):  # the end is T0 + 31 min
        got = core.receive_cancel(
            1,
            device_class=HVAC,
            utility_enrollment_group=0,
            cancel_control=0,
            effective_time=effective,
            esi="a",
            now=T0,
        )
        assert statuses(got) == [(1, Status.REJECTED_INVALID_EFFECTIVE_TIME)]
    assert 1 in core
    # effective at the end itself: taken (no 0xF9), the event ends then
    assert cancel(core, 1, effective=T0 + 31 * MIN, now=T0).reports == []


def test_cancel_for_another_device_class_is_silent():
    core = client()
    core.receive_event(event(1, T0 + MIN, 30), esi="a", now=T0)
    got = core.receive_cancel(
        1,
        device_class=WATER_HEATER,
        utility_enrollment_group=0,
        cancel_control=0,
        effective_time=0,
        esi="a",
        now=T0,
    )
    assert not got
    assert 1 in core


# -- life of an event


def test_start_now_runs_at_once_and_completes_after_its_duration():
    core = client()
    got = core.receive_event(event(1, 0, 30, cooling_temperature_set_point=2600), esi="a", now=T0)
    assert statuses(got) == [(1, Status.RECEIVED), (1, Status.STARTED)]
    assert actions(got) == [("apply", 1)]
    apply = got.actions[0]
    assert isinstance(apply, ApplyLoadControl)
    assert (apply.start, apply.end) == (T0, T0 + 30 * MIN)
    assert core.next_deadline() == T0 + 30 * MIN
    done = run(core, T0 + 30 * MIN)
    assert statuses(done) == [(1, Status.COMPLETED)]
    assert actions(done) == [("stop", 1)]
    report = done.reports[0].report
    assert report.cooling_temperature_set_point_applied == 2600
    assert report.event_status_time == T0 + 30 * MIN
    assert len(core) == 0


def test_reports_carry_the_values_applied_and_sentinels_for_unused_fields():
    core = client(applies={"duty_cycle"})
    got = core.receive_event(
        event(1, 0, 30, duty_cycle=40, cooling_temperature_set_point=2600, event_control=0),
        esi="a",
        now=T0,
    )
    report = got.reports[1].report
    assert report.event_status == Status.STARTED
    assert report.duty_cycle_applied == 40
    assert report.cooling_temperature_set_point_applied == -0x8000
    assert report.average_load_adjustment_percentage_applied == -0x80
    assert report.criticality_level_applied == 0x03


def test_status_time_is_never_zero():
    core = client()
    got = core.receive_event(event(1, 0, 30), esi="a", now=0)
    assert all(o.report.event_status_time != 0 for o in got.reports)


def test_start_randomization_shifts_start_and_end():
    core = client(start_randomization_minutes=10, rng=random.Random(7))
    core.receive_event(event(1, T0 + MIN, 30, event_control=0x01), esi="a", now=T0)
    start, end = core.window(1)
    offset = start - (T0 + MIN)
    assert 0 < offset <= 10 * MIN
    assert end == start + 30 * MIN


def test_end_randomization_applies_only_when_requested():
    core = client(duration_randomization_minutes=5, rng=random.Random(3))
    core.receive_event(event(1, T0 + MIN, 30), esi="a", now=T0)
    core.receive_event(event(2, T0 + 100 * MIN, 30, event_control=0x02), esi="a", now=T0)
    assert core.window(1) == (T0 + MIN, T0 + 31 * MIN)
    start, end = core.window(2)
    assert start == T0 + 100 * MIN
    assert 30 * MIN < end - start <= 35 * MIN


def test_randomization_is_drawn_from_the_injected_rng():
    def window(seed: int) -> tuple[int, int]:
        core = client(
            start_randomization_minutes=30,
            duration_randomization_minutes=30,
            rng=random.Random(seed),
        )
        core.receive_event(event(1, T0 + MIN, 30, event_control=0x03), esi="a", now=T0)
        return core.window(1)

    assert window(5) == window(5)
    assert len({window(seed) for seed in range(8)}) > 1


# -- duplicates


def test_duplicate_from_the_same_esi_is_answered_once():
    core = client()
    first = core.receive_event(event(1, T0 + MIN, 30), esi="a", now=T0)
    again = core.receive_event(event(1, T0 + MIN, 30), esi="a", now=T0 + 5)
    assert statuses(first) == [(1, Status.RECEIVED)]
    assert not again


def test_duplicate_from_a_second_esi_is_answered_to_it_and_later_reports_go_to_both():
    core = client()
    core.receive_event(event(1, T0 + MIN, 30), esi="a", now=T0)
    second = core.receive_event(event(1, T0 + MIN, 30), esi="b", now=T0 + 5)
    assert statuses(second) == [(1, Status.RECEIVED)]
    assert second.reports[0].esis == ("b",)
    assert not core.receive_event(event(1, T0 + MIN, 30), esi="b", now=T0 + 6)
    started = run(core, T0 + MIN)
    assert started.reports[0].esis == ("a", "b")


def test_duplicate_of_a_finished_event_is_not_run_again():
    core = client()
    core.receive_event(event(1, 0, 1), esi="a", now=T0)
    run(core, T0 + MIN)
    assert not core.receive_event(event(1, 0, 1), esi="a", now=T0 + MIN + 1)
    assert len(core) == 0


# -- opt-out and opt-in ----------------------------------------------------------------------------


def test_opt_out_before_the_start_then_completed_without_participation():
    core = client()
    core.receive_event(event(1, T0 + MIN, 30), esi="a", now=T0)
    out = core.opt_out(1, now=T0 + 10)
    assert statuses(out) == [(1, Status.OPTED_OUT)]
    assert out.reports[0].report.cooling_temperature_set_point_applied == -0x8000
    rest = run(core, T0 + 31 * MIN)
    # At the start the opt-out is reported again (in place of "started"), at the end 0x0A.
    assert statuses(rest) == [(1, Status.OPTED_OUT), (1, Status.COMPLETED_NO_PARTICIPATION)]
    assert rest.reports[0].report.event_status_time == T0 + MIN
    assert rest.reports[0].report.duty_cycle_applied == 0xFF  # nothing applied
    assert rest.reports[0].report.cooling_temperature_set_point_applied == -0x8000
    assert not rest.actions  # nothing was ever applied


def test_opt_out_during_the_event_stops_it_and_ends_partially_completed():
    core = client()
    core.receive_event(event(1, 0, 30), esi="a", now=T0)
    out = core.opt_out(1, now=T0 + 10 * MIN)
    assert statuses(out) == [(1, Status.OPTED_OUT)]
    assert actions(out) == [("stop", 1)]
    assert statuses(run(core, T0 + 30 * MIN)) == [(1, Status.PARTIALLY_COMPLETED_OPT_OUT)]


def test_opt_in_again_during_the_event_resumes_it_and_ends_partially_completed_opt_in():
    core = client()
    core.receive_event(event(1, T0 + MIN, 30), esi="a", now=T0)
    core.opt_out(1, now=T0)
    started = run(core, T0 + 2 * MIN)
    assert statuses(started) == [(1, Status.OPTED_OUT)]  # the start, not taken part in
    assert not started.actions
    back = core.opt_in(1, now=T0 + 5 * MIN)
    assert statuses(back) == [(1, Status.OPTED_IN)]
    assert actions(back) == [("apply", 1)]
    assert statuses(run(core, T0 + 31 * MIN)) == [(1, Status.PARTIALLY_COMPLETED_OPT_IN)]


def test_opt_out_and_in_before_the_start_completes_normally():
    core = client()
    core.receive_event(event(1, T0 + MIN, 30), esi="a", now=T0)
    core.opt_out(1, now=T0)
    assert statuses(core.opt_in(1, now=T0 + 1)) == [(1, Status.OPTED_IN)]
    assert statuses(run(core, T0 + 31 * MIN)) == [(1, Status.STARTED), (1, Status.COMPLETED)]


def test_repeated_opt_out_reports_once():
    core = client()
    core.receive_event(event(1, T0 + MIN, 30), esi="a", now=T0)
    core.opt_out(1, now=T0)
    assert not core.opt_out(1, now=T0 + 1)


@pytest.mark.parametrize("level", [0x07, 0x08, 0x09])
def test_mandatory_levels_cannot_be_opted_out_of(level):
    core = client()
    core.receive_event(event(1, 0, 30, criticality_level=level), esi="a", now=T0)
    with pytest.raises(OptOutRefused):
        core.opt_out(1, now=T0 + 1)
    assert statuses(run(core, T0 + 30 * MIN)) == [(1, Status.COMPLETED)]


@pytest.mark.parametrize("level", [0x01, 0x06, 0x0A, 0x0F])
def test_voluntary_levels_can_be_opted_out_of(level):
    core = client()
    core.receive_event(event(1, 0, 30, criticality_level=level), esi="a", now=T0)
    assert statuses(core.opt_out(1, now=T0 + 1)) == [(1, Status.OPTED_OUT)]


def test_opt_out_of_an_unknown_event_raises():
    with pytest.raises(UnknownEvent):
        client().opt_out(4, now=T0)


# -- cancel


def cancel(core, event_id, *, control=0, effective=0, now, esi="a"):
    return core.receive_cancel(
        event_id,
        device_class=HVAC,
        utility_enrollment_group=0,
        cancel_control=control,
        effective_time=effective,
        esi=esi,
        now=now,
    )


def test_cancel_without_randomization_ends_at_the_effective_time():
    core = client(duration_randomization_minutes=10, rng=random.Random(2))
    core.receive_event(event(1, 0, 30, event_control=0x02), esi="a", now=T0)
    assert not cancel(core, 1, effective=T0 + 10 * MIN, now=T0 + MIN)
    got = run(core, T0 + 10 * MIN)
    assert statuses(got) == [(1, Status.CANCELLED)]
    assert actions(got) == [("stop", 1)]
    assert got.reports[0].report.event_status_time == T0 + 10 * MIN


def test_cancel_with_randomization_ends_after_the_drawn_end_randomization():
    core = client(duration_randomization_minutes=10, rng=random.Random(2))
    core.receive_event(event(1, 0, 30, event_control=0x02), esi="a", now=T0)
    draw = core.window(1)[1] - (T0 + 30 * MIN)
    assert 0 < draw <= 10 * MIN
    cancel(core, 1, control=0x01, effective=T0 + 10 * MIN, now=T0 + MIN)
    assert core.next_deadline() == T0 + 10 * MIN + draw
    assert statuses(run(core, T0 + 10 * MIN + draw)) == [(1, Status.CANCELLED)]


def test_cancel_with_randomization_and_no_duration_randomization_uses_the_start_draw():
    """CCB 1513: with DurationRandomizationMinutes 0 the randomized cancel waits the
    event's start randomization instead."""
    core = client(start_randomization_minutes=10, rng=random.Random(5))
    scheduled = T0 + MIN
    core.receive_event(event(1, scheduled, 30, event_control=0x01), esi="a", now=T0)
    start_draw = core.window(1)[0] - scheduled
    assert 0 < start_draw <= 10 * MIN
    assert statuses(run(core, scheduled + start_draw)) == [(1, Status.STARTED)]
    cancel(core, 1, control=0x01, effective=T0 + 20 * MIN, now=T0 + 12 * MIN)
    assert core.next_deadline() == T0 + 20 * MIN + start_draw


def test_cancel_with_randomization_of_an_event_without_randomized_end_ends_on_time():
    """D.2.2.3.2.1.3: bit 0 ends the event "using randomization settings in the original
    event"; an event whose Event Control asked for no randomized end (nor start) has none
    to use, whatever the device's DurationRandomizationMinutes."""
    core = client(duration_randomization_minutes=30, rng=random.Random(7))
    core.receive_event(event(1, 0, 60), esi="a", now=T0)
    got = cancel(core, 1, control=0x01, effective=0, now=T0 + MIN)
    assert statuses(got) == [(1, Status.CANCELLED)]
    assert got.reports[0].report.event_status_time == T0 + MIN


def test_cancel_with_randomization_and_no_randomization_at_all_ends_on_time():
    core = client()
    core.receive_event(event(1, 0, 30), esi="a", now=T0)
    cancel(core, 1, control=0x01, effective=T0 + 20 * MIN, now=T0 + MIN)
    assert core.next_deadline() == T0 + 20 * MIN


def test_cancel_now_of_a_scheduled_event_reports_at_once_and_it_never_starts():
    core = client()
    core.receive_event(event(1, T0 + 60 * MIN, 30), esi="a", now=T0)
    got = cancel(core, 1, now=T0 + MIN)
    assert statuses(got) == [(1, Status.CANCELLED)]
    assert not got.actions
    assert core.next_deadline() is None


def test_cancel_all_cancels_every_event_honouring_randomization():
    core = client(duration_randomization_minutes=5, rng=random.Random(4))
    core.receive_event(event(1, 0, 30), esi="a", now=T0)
    core.receive_event(event(2, T0 + 60 * MIN, 30, device_class=HVAC), esi="a", now=T0)
    got = core.receive_cancel_all(cancel_control=0x00, esi="a", now=T0 + MIN)
    assert sorted(statuses(got)) == [(1, Status.CANCELLED), (2, Status.CANCELLED)]
    assert len(core) == 0
    core.receive_event(event(3, 0, 30, event_control=0x02), esi="a", now=T0 + 2 * MIN)
    randomized = core.receive_cancel_all(cancel_control=0x01, esi="a", now=T0 + 3 * MIN)
    assert not randomized  # ends after the drawn end randomization
    later = run(core, T0 + 9 * MIN)
    assert statuses(later) == [(3, Status.CANCELLED)]
    assert later.reports[0].report.event_status_time > T0 + 3 * MIN


def test_cancel_all_with_an_empty_table_does_nothing():
    assert not client().receive_cancel_all(cancel_control=0, esi="a", now=T0)


# -- apply / stop for the application


def test_application_actions_follow_the_event():
    core = client()
    got = core.receive_event(event(1, T0 + MIN, 30), esi="a", now=T0)
    assert not got.actions
    started = run(core, T0 + MIN)
    [apply] = started.actions
    assert isinstance(apply, ApplyLoadControl)
    assert apply.device_class == HVAC
    [stop] = run(core, T0 + 31 * MIN).actions
    assert isinstance(stop, StopLoadControl)
    assert stop.status == Status.COMPLETED


def test_snapshot_round_trip_keeps_the_table_and_resumes_active_events():
    core = client(start_randomization_minutes=5, rng=random.Random(9))
    core.receive_event(event(1, 0, 30), esi="a", now=T0)
    core.receive_event(event(2, T0 + 60 * MIN, 30, event_control=0x01), esi="b", now=T0)
    core.opt_out(2, now=T0 + 1)
    snap = core.snapshot()
    again = client(start_randomization_minutes=5, rng=random.Random(0))
    again.restore(snap)
    assert again.snapshot() == snap
    assert again.window(2) == core.window(2)
    assert [a.issuer_event_id for a in again.resume()] == [1]
    assert all(a.resumed for a in again.resume())
    assert statuses(run(again, T0 + 200 * MIN)) == statuses(run(core, T0 + 200 * MIN))


def test_configuration_is_checked():
    with pytest.raises(ValueError, match=r"0\.\.60"):
        DrlcClientCore(device_class=HVAC, start_randomization_minutes=61)
    with pytest.raises(ValueError, match="at least one"):
        DrlcClientCore(device_class=HVAC, table_size=0)
    with pytest.raises(ValueError, match="unknown"):
        DrlcClientCore(device_class=HVAC, applies={"price"})


@pytest.mark.parametrize(
    ("control", "options", "scheduled", "cancelled"),
    [
        pytest.param(0x02, {"duration_randomization_minutes": 30}, 5, 1, id="randomized end"),
        pytest.param(0x01, {"start_randomization_minutes": 30}, 0, 2, id="randomized start"),
    ],
)
def test_cancel_with_randomization_before_the_start_means_the_event_never_starts(
    control: int, options: dict[str, int], scheduled: int, cancelled: int
):
    """A randomized cancel received before the (randomized) start added the event's draw
    to the cancel time, so the event started, applied load control, then stopped; an event
    not started has no end to randomize: it is cancelled at once and never starts."""
    core = client(rng=random.Random(4), **options)
    core.receive_event(
        event(1, T0 + scheduled * MIN, 60, event_control=control), esi="a", now=T0 - MIN
    )
    assert core.window(1)[0] > T0 + cancelled * MIN  # not started when cancelled
    got = cancel(core, 1, control=0x01, now=T0 + cancelled * MIN)
    assert statuses(got) == [(1, Status.CANCELLED)]
    assert not got.actions
    assert core.next_deadline() is None
