"""The ESI's cores drop a de-provisioned device (SE 5.4.8.1) from what they hold for it:
:meth:`DrlcServerCore.forget` (Get Scheduled Events, SE D.2.2.4.1) and
:meth:`MessageStore.forget` (Get Last Message, D.5.2.4.1), as records that load again."""

from __future__ import annotations

from zse.drlc import DrlcServerCore, LoadControlEvent
from zse.messaging import Confirmation, Message, MessageStore

A, B, C = "00:0d:6f:00:0e:00:00:0a", "00:0d:6f:00:0e:00:00:0b", "00:0d:6f:00:0e:00:00:0c"
NOW = 1_000


def _event(issuer_event_id: int) -> LoadControlEvent:
    return LoadControlEvent(
        issuer_event_id=issuer_event_id, device_class=0x0FFF, duration_in_minutes=60,
        criticality_level=3,
    )  # fmt: skip


def _ids(core: DrlcServerCore, device: str) -> list[int]:
    events = core.scheduled(start_time=0, number_of_events=0, now=NOW, device=device)
    return [e.issuer_event_id for e in events]


def _reloaded(core: DrlcServerCore) -> DrlcServerCore:
    """A core loaded from ``core``'s records as its store holds them (changes applied)."""
    records = core.records()
    again = DrlcServerCore()
    again.load_records(records)
    return again


def test_an_event_of_one_device_becomes_no_one_s_not_everyone_s() -> None:
    core = DrlcServerCore()
    core.publish(_event(1), now=NOW, expected=[A])  # the headend's per-device send
    core.publish(_event(2), now=NOW)
    core.sent(2, [A, B])  # a ZigBee group of known members
    core.publish(_event(3), now=NOW, expected=[A])
    core.sent(3, None)  # and a broadcast: everyone's
    core.changes()
    assert core.forget(A) == [1, 2, 3]
    assert set(core.changes()) == {"event/00000001", "event/00000002", "event/00000003"}
    assert core.forget(A) == []  # once
    for loaded in (core, _reloaded(core)):
        assert _ids(loaded, A) == [3]
        assert _ids(loaded, B) == [2, 3]
        assert _ids(loaded, C) == [3]
        assert loaded.never_answered(1) == []


def test_a_stored_event_for_anyone_is_left_alone() -> None:
    core = DrlcServerCore()
    core.publish(_event(1), now=NOW)  # names no recipient
    core.changes()
    assert core.forget(A) == []
    assert core.changes() == {}
    assert _ids(core, A) == [1]


def _store() -> MessageStore:
    store = MessageStore()
    store.display(Message(message_id=1, text="A only"), NOW, device=A)
    store.display(Message(message_id=2, text="A and B"), NOW + 1, device=A)
    store.display(Message(message_id=2, text="A and B"), NOW + 1, device=B)
    store.set_members(7, [A, C])
    store.display(Message(message_id=3, text="group 7"), NOW + 2, group=7)
    store.display(Message(message_id=4, text="everyone"), NOW - 5)
    for message_id in (1, 2, 3):
        store.confirm(A, Confirmation(message_id=message_id, confirmation_time=NOW + 3), NOW + 3)
    store.confirm(B, Confirmation(message_id=2, confirmation_time=NOW + 3), NOW + 3)
    store.changes()
    return store


def test_a_message_of_one_device_is_dropped_and_the_others_keep_theirs() -> None:
    store = _store()
    assert store.forget(A) == [1, 2, 3]
    changed = store.changes()
    assert changed["msg/00000001"] is None  # for no one now: dropped, not a broadcast
    assert {k for k, v in changed.items() if k.startswith("conf/") and v is None} == {
        f"conf/0000000{n}/{A}" for n in (1, 2, 3)
    }
    assert store.forget(A) == []
    loaded = MessageStore.from_records(store.to_records())
    for kept in (store, loaded):
        assert kept.last_message(A, NOW + 10) == (Message(message_id=4, text="everyone"), False)
        assert kept.last_message(B, NOW + 10) is not None
        assert kept.last_message(B, NOW + 10)[0].message_id == 2
        assert kept.last_message(C, NOW + 10)[0].message_id == 3
        assert sorted(kept.messages) == [2, 3, 4]
        assert kept.messages[2].devices == {B}
        assert kept.members == {7: {C}}
        assert kept.unconfirmed(2, [A, B]) == [A]


def test_a_superseded_message_of_one_device_goes_too() -> None:
    store = MessageStore()
    store.display(Message(message_id=1, text="old"), NOW, device=A)
    store.display(Message(message_id=1, text="new"), NOW + 5, device=A)  # replaces it
    store.display(Message(message_id=5, text="B's"), NOW, device=B)
    assert len(store.superseded) == 1
    store.changes()
    store.forget(A)
    assert store.superseded == []
    assert store.changes()["superseded"] is None
    assert store.last_message(B, NOW + 10) is not None
