"""The ESI's message store forgets messages once they have been over for a while
(zse.messaging.MessageStore.prune): it grew with every message ever sent, and Get Last Message
walked them all. Forgetting must not change any answer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zse.messaging import MESSAGE_RETENTION, Confirmation, Message, MessageStore

T0 = 800_000_000
DAY = 86_400
DEVICES = ["00:0d:6f:00:00:00:00:0a", "00:0d:6f:00:00:00:00:0b", "00:0d:6f:00:00:00:00:0c"]
A, B, _ = DEVICES
GROUPS = [1, 2]


def msg(mid: int, **kw: int) -> Message:
    return Message(message_id=mid, text=f"m{mid}", **kw)


def test_a_message_over_for_a_day_is_forgotten_with_its_confirmations() -> None:
    store = MessageStore()
    store.display(msg(1, duration_in_minutes=10), T0, device=A)
    assert store.confirm(A, Confirmation(message_id=1, confirmation_time=T0 + 5), T0 + 5)
    store.changes()
    store.display(msg(2, duration_in_minutes=10), T0 + 600 + MESSAGE_RETENTION - 1, device=B)
    assert set(store.messages) == {1, 2}  # over for a second short of a day: kept
    store.display(msg(3, duration_in_minutes=10), T0 + 600 + MESSAGE_RETENTION, device=B)
    assert set(store.messages) == {2, 3}
    assert 1 not in store.confirmations
    changes = store.changes()
    assert changes["msg/00000001"] is None
    assert changes[f"conf/00000001/{A}"] is None
    reloaded = MessageStore.from_records(store.to_records())
    assert set(reloaded.messages) == {2, 3}


def test_a_message_that_still_hides_an_older_one_is_kept() -> None:
    """A displayed "until changed" to everyone, replaced for device A by a message that then
    expired: A has no last message, and forgetting the expired one would bring it back."""
    store = MessageStore()
    store.display(msg(1, duration_in_minutes=0xFFFF), T0)
    store.display(msg(2, duration_in_minutes=1), T0 + 60, device=A)
    later = T0 + 10 * DAY
    store.display(msg(3, duration_in_minutes=1), later, device=B)
    assert 2 in store.messages
    assert store.last_message(A, later + 120) is None


def test_an_older_message_wholly_replaced_goes_with_the_one_that_replaced_it() -> None:
    """Messages "until changed" to one group, each replacing the last: the store does not keep
    every one of them because the first is still formally live."""
    store = MessageStore()
    for n in range(1, 6):
        store.display(msg(n, duration_in_minutes=0xFFFF if n == 1 else 10), T0 + n * DAY, group=1)
    assert set(store.messages) <= {3, 4, 5}
    assert store.last_message(A, T0 + 5 * DAY + 1) is not None
    assert store.last_message(A, T0 + 5 * DAY + 601) is None


def test_a_message_forgotten_as_replaced_and_sent_again_is_a_new_message() -> None:
    """As a message over is recorded afresh when sent again, so is one forgotten because a
    newer message had replaced it for every recipient: the device it is sent to gets it from
    Get Last Message (a store that forgot nothing counts it replaced still)."""
    store = MessageStore()
    store.set_members(1, [A])
    first = msg(1, duration_in_minutes=0xFFFF)
    store.display(first, T0, group=1)
    store.display(msg(2, duration_in_minutes=1), T0 + 10, group=1)
    store.display(first, T0 + 2 * DAY, device=A)
    assert store.last_message(A, T0 + 2 * DAY) == (
        msg(1, start_time=0, duration_in_minutes=0xFFFF),
        False,
    )
    assert store.messages[1].sent_at == T0 + 2 * DAY


def test_nothing_sent_this_instant_is_forgotten() -> None:
    """Messages sent at the same instant sort by id, so one recorded next may sort before one
    already over on arrival (its window long past): that one is kept until time moves on.
    Over on arrival, it was never on a display, so it hides nothing: the device shows the
    other, and Get Last Message answers it whether or not the store prunes."""
    answers = []
    for store in (MessageStore(), MessageStore(retention=None)):
        store.display(msg(2, start_time=T0 - 2 * DAY, duration_in_minutes=1), T0)
        store.display(msg(1, start_time=T0 - 2 * DAY, duration_in_minutes=0xFFFF), T0)
        answers.append(store.last_message(A, T0))
    shown = msg(1, start_time=T0 - 2 * DAY, duration_in_minutes=0xFFFF)
    assert answers == [(shown, False)] * 2


def test_a_reused_id_keeps_what_the_old_message_replaced() -> None:
    """New content under an id, sent elsewhere: the old message had replaced an older one on
    device A's display, so A's Get Last Message answers nothing, after a reload too. Before,
    the record was overwritten and the older message came back."""
    store = MessageStore()
    store.display(msg(1, duration_in_minutes=0xFFFF), T0)
    store.display(msg(2, duration_in_minutes=10), T0 + 60, device=A)
    store.display(Message(message_id=2, text="other"), T0 + 120, device=B)
    assert store.last_message(A, T0 + 120) is None
    reloaded = MessageStore.from_records(store.to_records())
    assert reloaded.last_message(A, T0 + 120) is None
    assert reloaded.last_message(B, T0 + 120) == (Message(message_id=2, text="other"), False)


def test_a_message_sent_afresh_once_over_keeps_what_it_replaced() -> None:
    store = MessageStore()
    store.display(msg(1, duration_in_minutes=0xFFFF), T0)
    store.display(msg(2, duration_in_minutes=1), T0 + 60, device=A)
    store.display(msg(2, duration_in_minutes=1), T0 + 600, device=B)  # over: a new send
    assert store.last_message(A, T0 + 600) is None


def test_a_cancel_all_is_forgotten_with_the_messages_it_ended() -> None:
    """Cancel-alls were kept for ever; one goes once it is over for the retention and no
    message kept was ended by it (Get Message Cancellation then answers NOT_FOUND)."""
    store = MessageStore()
    store.display(msg(1, duration_in_minutes=0xFFFF), T0, device=A)
    assert store.cancel_all(0, T0 + 10) == T0 + 10
    store.display(msg(2, duration_in_minutes=0xFFFF), T0 + 20, device=A)
    store.display(msg(3, duration_in_minutes=1), T0 + 10 + DAY - 1, device=B)
    assert store.cancel_alls == [T0 + 10]  # its message is kept: so is it
    store.display(msg(4, duration_in_minutes=1), T0 + 10 + DAY, device=B)
    assert 1 not in store.messages
    assert store.cancel_alls == []
    assert store.changes()["cancel_alls"] == []
    assert store.message_cancellation(0) is None


def test_retention_none_keeps_everything() -> None:
    store = MessageStore(retention=None)
    for n in range(1, 4):
        store.display(msg(n, duration_in_minutes=1), T0 + n * DAY, device=A)
    assert set(store.messages) == {1, 2, 3}


_STEP = st.one_of(
    st.tuples(
        st.just("display"),
        st.integers(1, 6),  # message id (repeats: a new content or one more recipient)
        st.sampled_from([0, 1, 30, 0xFFFF]),  # duration, minutes
        st.sampled_from([0, 1, 2]),  # start: now, in 30 min, or the past
        st.sampled_from([None, *DEVICES, *GROUPS]),  # recipient
        st.integers(0, 3),  # text variant
    ),
    st.tuples(st.just("cancel"), st.integers(1, 6)),
    st.tuples(st.just("cancel_all")),
    st.tuples(st.just("wait"), st.sampled_from([1, 59, 1800, DAY, 3 * DAY])),
)


@settings(max_examples=500, deadline=None)
@given(steps=st.lists(_STEP, max_size=30), known_members=st.booleans())
def test_forgetting_never_changes_what_get_last_message_answers(
    steps: list[tuple[object, ...]], known_members: bool
) -> None:
    pruned, kept = MessageStore(retention=0), MessageStore(retention=None)
    if known_members:
        for store in (pruned, kept):
            store.set_members(1, DEVICES[:2])
            store.set_members(2, DEVICES[1:])
    now, ids = (
        T0,
        dict[object, int](),
    )  # the step's message number -> the id its current message has
    for step in steps:
        kind = step[0]
        if kind == "wait":
            now += int(step[1])  # type: ignore[call-overload]
        elif kind == "cancel":
            for store in (pruned, kept):
                if int(step[1]) in store.messages:  # type: ignore[call-overload]
                    store.cancel(int(step[1]), now)  # type: ignore[call-overload]
        elif kind == "cancel_all":
            for store in (pruned, kept):
                store.cancel_all(0, now)
        else:
            _, mid, duration, start, to, variant = step
            pruned.prune(now, retention=0)  # as display() will, before it records
            current = ids.get(mid, -1)  # type: ignore[call-overload]
            stored = kept.messages.get(current)
            live = stored is not None and stored.live(now) and current in pruned.messages
            if live and not variant:
                message = stored.message  # type: ignore[union-attr]  # to one more recipient
            else:
                # The id reused: new content while live, or sent afresh once over (new content
                # or not). Live but forgotten as wholly replaced: a new id (sent again, it is a
                # new message: see above).
                if not live and (stored is None or stored.live(now)):
                    ids[mid] = max(ids.values(), default=0) + 1  # type: ignore[index]
                message = Message(
                    message_id=ids[mid],  # type: ignore[index]
                    text=f"new{variant}",
                    start_time={0: 0, 1: now + 1800, 2: now - 600}[int(start)],  # type: ignore[call-overload]
                    duration_in_minutes=int(duration),  # type: ignore[call-overload]
                )
            device = to if isinstance(to, str) else None
            group = to if isinstance(to, int) else None
            for store in (pruned, kept):
                store.display(message, now, device=device, group=group)
        for device in DEVICES:
            assert pruned.last_message(device, now) == kept.last_message(device, now)
        # a cancel-all is forgotten once over and no message kept was ended by it
        before = list(pruned.cancel_alls)
        pruned.prune(now, retention=0)
        ended = {s.cancelled_at for s in (*pruned.messages.values(), *pruned.superseded)}
        assert set(pruned.cancel_alls) <= set(before) <= set(kept.cancel_alls)
        assert {w for w in before if w > now or w in ended} == set(pruned.cancel_alls)
