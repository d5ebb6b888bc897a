"""A hostile review of the Messaging client (SE D.5.3): what a device does with a flood of
Cancel All Messages from the HAN."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.messaging.test_messaging_board import T0, kinds, msg
from zse.messaging import MessageBoard, core
from zse.messaging.core import IDLE_CANCEL_ALLS

DAY = 86_400


def pending(board: MessageBoard) -> list[list[int]]:
    """The pending Cancel All Messages as the board stores them."""
    cancel_alls: list[list[int]] = board.to_records()["board"]["cancel_alls"]
    return cancel_alls


def test_a_flood_of_future_cancel_alls_is_bounded():
    """20 000 Cancel All Messages with distinct future implementation times (a device on the
    HAN, or a looping ESI): the board keeps a bounded number (it kept all of them, rewrote
    them in its record at each command and took seconds per thousand), and the ones that can
    still remove a message still do."""
    board = MessageBoard(capacity=4)
    board.display(msg(1, start_time=T0 + 3 * DAY), T0)
    board.cancel_all(T0 + DAY, T0)  # removes message 1 tomorrow
    board.display(msg(2, start_time=T0 + 3 * DAY + 60), T0 + 1)
    board.cancel_all(T0 + DAY + 10, T0 + 1)  # removes message 2 ten seconds later
    started = time.process_time()
    for i in range(20_000):
        board.cancel_all(T0 + 2 * DAY + 10 * i, T0 + 2)
    assert time.process_time() - started < 5  # it took 18 s
    assert len(pending(board)) <= board.capacity + IDLE_CANCEL_ALLS
    board.display(msg(3), T0 + 3)  # after every Cancel All: spared
    assert kinds(board.handle_timeout(T0 + DAY)) == [("MessageCancelled", 1)]
    assert kinds(board.handle_timeout(T0 + DAY + 10)) == [("MessageCancelled", 2)]
    assert board.handle_timeout(T0 + 3 * DAY) == []
    assert board.current() == msg(3)


class _Unbounded(MessageBoard):
    """The board as it was: every pending Cancel All kept (the reference)."""

    def _bound_cancel_alls(self) -> None:
        pass


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("display"), st.integers(1, 6), st.integers(0, 3_000)),
        st.tuples(st.just("cancel_all"), st.integers(1, 3_000)),
        st.tuples(st.just("tick"), st.integers(0, 400)),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_bounding_the_pending_cancel_alls_changes_nothing_a_device_shows(ops):
    """Against a board keeping every pending Cancel All: the same events, step by step
    (implementation times distinct by more than the repeat skew, as a flood's are), with no
    idle Cancel All kept, so the bound bites at once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core, "IDLE_CANCEL_ALLS", 0)
        _same_as_unbounded(ops)


def _same_as_unbounded(ops) -> None:
    bounded, reference = MessageBoard(capacity=2), _Unbounded(capacity=2)
    now, used = T0, set()
    for op in ops:
        if op[0] == "display":
            _, mid, start = op
            events = [
                b.display(msg(mid, f"m{mid}-{start}", start_time=now + start,
                              duration_in_minutes=30), now)
                for b in (bounded, reference)
            ]  # fmt: skip
        elif op[0] == "cancel_all":
            when = now + 10 * op[1]
            if when in used:
                continue
            used.add(when)
            events = [b.cancel_all(when, now) for b in (bounded, reference)]
        else:
            now += op[1]
            events = [b.handle_timeout(now) for b in (bounded, reference)]
        assert kinds(events[0]) == kinds(events[1])
        assert len(pending(bounded)) <= bounded.capacity
