"""The lifecycle core's removal policy: keys erased at once, a repeated removal accepted, a
removed device seen on the network removed again, and the deadlines of pending devices."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zse.provisioning import (
    LEAVE_RETRY_DELAYS,
    DeviceRecord,
    Due,
    IllegalTransition,
    LifecycleEvent,
    LifecycleState,
    PendingWatch,
    RemoveKeys,
    SendLeave,
    decide,
    refusal,
)

S, E = LifecycleState, LifecycleEvent
CODE = "83FED3407A939723A5C639B26916D505C3B5"
KEY = "000D6F000A000001"


def record(state: LifecycleState, *, joined: bool = False) -> DeviceRecord:
    return DeviceRecord(eui64=KEY, install_code=CODE, state=state, joined=joined)


@pytest.mark.parametrize(
    ("state", "after", "actions"),
    [
        (S.PENDING_PROVISIONING, S.DEPROVISION_COMPLETE, (RemoveKeys(), SendLeave())),
        (S.METER_READY, S.PENDING_DEPROVISIONING, (RemoveKeys(), SendLeave())),
        (S.PENDING_DEPROVISIONING, S.PENDING_DEPROVISIONING, (RemoveKeys(), SendLeave())),
        (S.DEPROVISION_COMPLETE, S.DEPROVISION_COMPLETE, (RemoveKeys(),)),
    ],
)
def test_deprovision_erases_the_keys_first_and_a_repeat_is_accepted(state, after, actions):
    """DEPROVISION only asked the device to leave (its keys stayed at the Trust Center), and a
    repeat was refused; the keys are erased first now, and a repeat changes nothing."""
    step = decide(record(state), E.DEPROVISION)
    assert step.after is not None
    assert step.after.state is after
    assert step.actions == actions
    assert step.write is (state is not after)


def test_timed_out_removes_a_device_being_removed_and_reports_a_pending_one():
    step = decide(record(S.PENDING_DEPROVISIONING), E.TIMED_OUT)
    assert step.after is not None
    assert step.after.state is S.DEPROVISION_COMPLETE
    assert step.write
    assert step.actions == (RemoveKeys(),)
    step = decide(record(S.PENDING_PROVISIONING), E.TIMED_OUT)
    assert step.after == record(S.PENDING_PROVISIONING)
    assert step.write  # audited and reported, state unchanged
    for state in (S.NEW, S.METER_READY, S.DEPROVISION_COMPLETE):
        with pytest.raises(IllegalTransition):
            decide(record(state), E.TIMED_OUT)


@pytest.mark.parametrize("state", [S.PENDING_DEPROVISIONING, S.DEPROVISION_COMPLETE])
@pytest.mark.parametrize("event", [E.JOINED, E.KEY_ESTABLISHED])
def test_a_removed_device_seen_on_the_network_is_removed_again(state, event):
    """A removed device seen joining or keyed was only logged; it is refused (nothing
    written) and its keys are erased and it is asked to leave."""
    with pytest.raises(IllegalTransition):
        decide(record(state), event)
    assert refusal(state, event) == (RemoveKeys(), SendLeave())


def test_other_refusals_carry_nothing_out():
    assert refusal(S.NEW, E.JOINED) == ()
    assert refusal(None, E.JOINED) == ()


def test_a_device_being_removed_is_asked_again_on_a_back_off_then_timed_out():
    """The leave was sent once; now again at 30, 60, 120, 300 s after each try, then every
    900 s, until the removal times out."""
    watch = PendingWatch(deprovision_timeout=3000)
    watch.watch(record(S.PENDING_DEPROVISIONING), 0.0)
    tries = []
    while (when := watch.next_deadline()) is not None:
        due = watch.handle_timeout(when)
        tries.append((when, due))
    leaves = [when for when, due in tries if due == [Due(KEY, None)]]
    assert leaves == [30.0, 90.0, 210.0, 510.0, 1410.0, 2310.0]
    when, due = tries[-1]
    assert when == 3000.0
    assert len(due) == 1
    assert due[0].event is E.TIMED_OUT
    assert "not seen leaving within 3000 s (7 leave request(s))" in due[0].detail


def test_a_device_heard_from_is_asked_at_most_once_per_shortest_gap():
    watch = PendingWatch()
    watch.watch(record(S.PENDING_DEPROVISIONING), 0.0)
    assert not watch.heard(KEY, 10.0)  # asked at 0
    assert watch.heard(KEY, 31.0)
    assert not watch.heard(KEY, 40.0)
    assert watch.next_deadline() == 31.0 + LEAVE_RETRY_DELAYS[1]
    watch.watch(record(S.DEPROVISION_COMPLETE), 50.0)  # it left
    assert not watch.heard(KEY, 100.0)
    assert watch.next_deadline() is None


@given(st.lists(st.floats(min_value=0, max_value=5000, allow_nan=False), max_size=8))
def test_a_pending_device_is_told_once_per_admission(admissions):
    """A device that never joins is reported once its time is up, once per admission
    window, never while a new admission restarted its time."""
    watch = PendingWatch(provision_timeout=600)
    watch.watch(record(S.PENDING_PROVISIONING), 0.0)
    told, start = [], 0.0
    for at in sorted(admissions):
        while (when := watch.next_deadline()) is not None and when <= at:
            told.append((start, watch.handle_timeout(when)))
        watch.admitted(KEY, at)
        start = at
    while (when := watch.next_deadline()) is not None:
        told.append((start, watch.handle_timeout(when)))
    assert told[-1][0] == start
    assert len(told) == len({s for s, _ in told})  # one report per admission window
    assert all(due[0].event is E.TIMED_OUT for _, due in told)
    watch.watch(dataclasses.replace(record(S.PENDING_PROVISIONING), joined=True), 9999.0)
    assert watch.next_deadline() is None
