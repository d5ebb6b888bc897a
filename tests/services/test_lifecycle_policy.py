"""The lifecycle policy lives in the provisioning core (#13.3): :func:`zse.provisioning.decide`
says, sans-IO, what each event does to a device's record and what the shell carries out
(ask it to leave, open joining); the ESI and the registry only carry it out."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from zse.provisioning import (
    ACTIONS,
    TRANSITIONS,
    UNCHANGED,
    DeviceRecord,
    IllegalTransition,
    LifecycleEvent,
    LifecycleState,
    OpenJoining,
    RemoveKeys,
    SendLeave,
    decide,
)
from zse.provisioning.registry import HanRegistry

S, E = LifecycleState, LifecycleEvent
LEAVE, JOIN = (SendLeave(),), (OpenJoining(),)
#: De-provisioning: the Trust Center forgets the device's keys first, then asks it to leave.
REMOVE = (RemoveKeys(), SendLeave())
CODE = "83FED3407A939723A5C639B26916D505C3B5"


def record(state: LifecycleState, *, joined: bool = False) -> DeviceRecord:
    return DeviceRecord(eui64="000D6F000A000001", install_code=CODE, state=state, joined=joined)


# (state before or None for a device without a record, event, readmit) ->
# (state after, written, joined after, actions)
TABLE = [
    (None, E.PROVISION, True, None, False, None, JOIN),
    (None, E.DEPROVISION, True, None, False, None, REMOVE),
    (None, E.LEFT, True, None, False, None, ()),
    (S.NEW, E.PROVISION, True, S.PENDING_PROVISIONING, True, False, JOIN),
    (S.PENDING_PROVISIONING, E.PROVISION, True, S.PENDING_PROVISIONING, False, False, JOIN),
    (S.PENDING_PROVISIONING, E.JOINED, True, S.PENDING_PROVISIONING, True, True, ()),
    (S.PENDING_PROVISIONING, E.KEY_ESTABLISHED, True, S.METER_READY, True, False, ()),
    (S.PENDING_PROVISIONING, E.LEFT, True, S.PENDING_PROVISIONING, True, False, ()),
    (S.PENDING_PROVISIONING, E.DEPROVISION, True, S.DEPROVISION_COMPLETE, True, False, REMOVE),
    (S.PENDING_PROVISIONING, E.TIMED_OUT, True, S.PENDING_PROVISIONING, True, False, ()),
    (S.METER_READY, E.JOINED, True, S.METER_READY, True, True, ()),
    (S.METER_READY, E.KEY_ESTABLISHED, True, S.METER_READY, True, False, ()),
    (S.METER_READY, E.LEFT, True, S.PENDING_PROVISIONING, True, False, JOIN),
    (S.METER_READY, E.LEFT, False, S.PENDING_PROVISIONING, True, False, ()),
    (S.METER_READY, E.DEPROVISION, True, S.PENDING_DEPROVISIONING, True, False, REMOVE),
    (S.PENDING_DEPROVISIONING, E.LEFT, True, S.DEPROVISION_COMPLETE, True, False, ()),
    (
        S.PENDING_DEPROVISIONING,
        E.TIMED_OUT,
        True,
        S.DEPROVISION_COMPLETE,
        True,
        False,
        (RemoveKeys(),),
    ),
    (S.PENDING_DEPROVISIONING, E.DEPROVISION, True, S.PENDING_DEPROVISIONING, False, False, REMOVE),
    (S.DEPROVISION_COMPLETE, E.LEFT, True, S.DEPROVISION_COMPLETE, False, False, ()),
    (
        S.DEPROVISION_COMPLETE,
        E.DEPROVISION,
        True,
        S.DEPROVISION_COMPLETE,
        False,
        False,
        (RemoveKeys(),),
    ),
    (S.DEPROVISION_COMPLETE, E.REREGISTER, True, S.NEW, True, False, ()),
]


@pytest.mark.parametrize(
    ("before", "event", "readmit", "after", "written", "joined", "actions"), TABLE
)
def test_decide(before, event, readmit, after, written, joined, actions) -> None:
    current = None if before is None else record(before)
    step = decide(current, event, readmit=readmit)
    assert step.event is event
    assert step.before == current
    assert step.write is written
    assert step.actions == actions
    if after is None:
        assert step.after is None
    else:
        assert step.after == dataclasses.replace(current, state=after, joined=joined)


def test_a_rejoin_is_written_although_nothing_changes_in_the_record() -> None:
    current = record(S.METER_READY, joined=True)
    step = decide(current, E.JOINED)
    assert step.after == current
    assert step.write  # audited and reported as a rejoin


def test_every_pair_the_core_allows_is_in_the_table_and_every_other_is_refused() -> None:
    allowed = set(TRANSITIONS) | set(UNCHANGED)
    covered = {(before, event) for before, event, *_ in TABLE if before is not None}
    assert covered == allowed
    for state, event in itertools.product(S, E):
        if (state, event) in allowed:
            continue
        with pytest.raises(IllegalTransition):
            decide(record(state), event)


def test_every_action_is_on_a_pair_the_core_allows() -> None:
    for state, event in ACTIONS:
        assert state is None or (state, event) in set(TRANSITIONS) | set(UNCHANGED)


# -- the registry carries the decision out: it writes what the core says, nothing else ----------


async def test_the_registry_writes_a_transition_and_hands_back_its_actions(tmp_path) -> None:
    clock = itertools.count(1_700_000_000)
    registry = await HanRegistry.open(tmp_path / "han.db", clock=lambda: float(next(clock)))
    try:
        await registry.register("000D6F000A000001", CODE)
        step = await registry.transition("000D6F000A000001", E.PROVISION, "admitted")
        assert step.actions == JOIN
        assert registry.get("000D6F000A000001").state is S.PENDING_PROVISIONING
        again = await registry.transition("000D6F000A000001", E.PROVISION, "again")
        assert again.actions == JOIN
        assert not again.write
        assert [a.event for a in await registry.audit()] == ["register", "provision"]
        with pytest.raises(IllegalTransition):
            await registry.transition("000D6F000A000001", E.REREGISTER)
        assert len(await registry.audit()) == 2
    finally:
        await registry.close()
