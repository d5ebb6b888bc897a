"""The HAN device's message board (zse.messaging.MessageBoard): one test per client rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.messaging import (
    Message,
    MessageBoard,
    MessageError,
)

T0 = 800_000_000


def msg(mid: int, text: str = "hello", **kw) -> Message:
    return Message(message_id=mid, text=text, **kw)


def kinds(events):
    return [(type(e).__name__, e.message.message_id) for e in events]


def test_start_now_displays_at_once_until_changed():
    board = MessageBoard()
    events = board.display(msg(1), T0)
    assert kinds(events) == [("MessageDisplayed", 1)]
    assert events[0].text == "hello"
    assert events[0].ends is None
    assert board.next_deadline() is None
    assert board.current() == msg(1)


def test_scheduled_message_starts_at_its_start_time():
    board = MessageBoard()
    m = msg(1, start_time=T0 + 100, duration_in_minutes=5)
    assert kinds(board.display(m, T0)) == [("MessageScheduled", 1)]
    assert board.current() is None
    assert board.next_deadline() == T0 + 100
    assert board.handle_timeout(T0 + 99) == []
    events = board.handle_timeout(T0 + 100)
    assert kinds(events) == [("MessageDisplayed", 1)]
    assert events[0].ends == T0 + 100 + 300


def test_expiry_after_duration():
    board = MessageBoard()
    board.display(msg(1, duration_in_minutes=2), T0)
    assert board.next_deadline() == T0 + 120
    assert board.handle_timeout(T0 + 119) == []
    assert kinds(board.handle_timeout(T0 + 120)) == [("MessageExpired", 1)]
    assert board.current() is None
    assert board.held() == []


def test_message_already_over_is_ignored():
    board = MessageBoard()
    assert board.display(msg(1, start_time=T0 - 600, duration_in_minutes=5), T0) == []
    assert board.held() == []


def test_started_in_the_past_shows_for_the_rest_of_its_window():
    board = MessageBoard()
    events = board.display(msg(1, start_time=T0 - 60, duration_in_minutes=5), T0)
    assert kinds(events) == [("MessageDisplayed", 1)]
    assert events[0].ends == T0 + 240


def test_newer_message_replaces_the_shown_one():
    board = MessageBoard()
    board.display(msg(1), T0)
    events = board.display(msg(2, "second"), T0 + 10)
    assert kinds(events) == [("MessageReplaced", 1), ("MessageDisplayed", 2)]
    assert events[0].by == msg(2, "second")
    assert board.held() == [msg(2, "second")]


def test_scheduled_message_replaces_the_shown_one_when_it_starts():
    board = MessageBoard()
    board.display(msg(1), T0)
    board.display(msg(2, start_time=T0 + 50), T0 + 10)
    assert board.current() == msg(1)
    assert kinds(board.handle_timeout(T0 + 50)) == [("MessageReplaced", 1), ("MessageDisplayed", 2)]


def test_same_id_new_content_replaces_identical_repeat_changes_nothing():
    board = MessageBoard()
    board.display(msg(1, "v1"), T0)
    assert board.display(msg(1, "v1"), T0 + 5) == []
    events = board.display(msg(1, "v2"), T0 + 6)
    assert kinds(events) == [("MessageReplaced", 1), ("MessageDisplayed", 1)]
    assert board.current().text == "v2"


def test_retimed_repeat_from_get_last_message_is_not_new():
    board = MessageBoard()
    board.display(msg(1, duration_in_minutes=10), T0)
    # The ESI answers Get Last Message at T0+130 with start now and 8 minutes (rounded up).
    assert board.display(msg(1, duration_in_minutes=8), T0 + 130) == []
    assert board.next_deadline() == T0 + 600


def test_cancel_removes_shown_or_scheduled_and_unknown_is_silent():
    board = MessageBoard()
    board.display(msg(1), T0)
    board.display(msg(2, start_time=T0 + 99), T0)
    assert kinds(board.cancel(2, T0 + 1)) == [("MessageCancelled", 2)]
    assert kinds(board.cancel(1, T0 + 2)) == [("MessageCancelled", 1)]
    assert board.cancel(3, T0 + 3) == []
    assert board.held() == []


def test_cancel_all_now_clears_everything_held():
    board = MessageBoard()
    board.display(msg(1), T0)
    board.display(msg(2, start_time=T0 + 99), T0)
    events = board.cancel_all(0, T0 + 5)
    assert sorted(kinds(events)) == [("MessageCancelled", 1), ("MessageCancelled", 2)]
    assert all(e.all for e in events)
    assert board.last_cancel_all == T0 + 5


def test_cancel_all_with_implementation_time_waits_and_spares_later_messages():
    board = MessageBoard()
    board.display(msg(1), T0)
    assert board.cancel_all(T0 + 100, T0 + 1) == []
    assert board.next_deadline() == T0 + 100
    board.display(msg(2, "after the cancel-all", start_time=T0 + 200), T0 + 2)
    assert board.current() == msg(1)
    assert kinds(board.handle_timeout(T0 + 100)) == [("MessageCancelled", 1)]
    assert board.held() == [msg(2, "after the cancel-all", start_time=T0 + 200)]
    # The same implementation time again (e.g. Get Message Cancellation) is a repeat.
    assert board.cancel_all(T0 + 100, T0 + 150) == []
    assert board.held() != []


def test_protected_message_text_hidden_until_unlocked():
    board = MessageBoard()
    events = board.display(msg(1, "secret", protected=True), T0)
    assert events[0].text is None
    assert board.showing().text is None
    shown = board.unlock(1)
    assert shown.text == "secret"
    assert board.showing().text == "secret"


def test_plain_confirmation_once():
    board = MessageBoard()
    board.display(msg(1, confirmation_required=True), T0)
    c = board.confirm(1, T0 + 3)
    assert (c.message_id, c.confirmation_time, c.answer, c.response) == (1, T0 + 3, None, None)
    with pytest.raises(MessageError, match="already confirmed"):
        board.confirm(1, T0 + 4)
    assert board.confirmation_of(1) == c


def test_enhanced_confirmation_needs_an_answer_and_takes_a_short_text():
    board = MessageBoard()
    board.display(msg(1, enhanced_confirmation_required=True), T0)
    with pytest.raises(MessageError, match="yes/no"):
        board.confirm(1, T0)
    with pytest.raises(MessageError, match="at most 20"):
        board.confirm(1, T0, answer=True, response=b"x" * 21)
    c = board.confirm(1, T0, answer=False, response=b"not home")
    assert (c.answer, c.response) == (False, b"not home")


def test_confirmation_refused_when_not_asked_not_shown_or_locked():
    board = MessageBoard()
    board.display(msg(1), T0)
    with pytest.raises(MessageError, match="does not ask"):
        board.confirm(1, T0)
    board.display(msg(2, confirmation_required=True, start_time=T0 + 50), T0)
    with pytest.raises(MessageError, match="not shown yet"):
        board.confirm(2, T0)
    board.display(msg(3, confirmation_required=True, protected=True), T0 + 60)
    with pytest.raises(MessageError, match="not unlocked"):
        board.confirm(3, T0 + 60)
    board.display(msg(4, confirmation_required=True), T0 + 61)
    with pytest.raises(MessageError, match="plain confirmation"):
        board.confirm(4, T0 + 61, answer=True)
    with pytest.raises(MessageError, match="no message with id 9"):
        board.confirm(9, T0)


def test_capacity_drops_the_message_that_would_start_last():
    board = MessageBoard(capacity=2)
    board.display(msg(1, start_time=T0 + 10), T0)
    board.display(msg(2, start_time=T0 + 30), T0)
    board.display(msg(3, start_time=T0 + 20), T0)
    assert [m.message_id for m in board.held()] == [1, 3]


def test_records_round_trip_keeps_everything():
    board = MessageBoard()
    board.display(msg(1, "é", protected=True, confirmation_required=True), T0)
    board.unlock(1)
    board.confirm(1, T0 + 1)
    board.display(msg(2, start_time=T0 + 500), T0 + 2)
    board.cancel_all(T0 + 400, T0 + 3)
    again = MessageBoard.from_records(board.to_records())
    assert again.to_records() == board.to_records()
    assert again.next_deadline() == T0 + 400
    assert kinds(again.handle_timeout(T0 + 400)) == [
        ("MessageCancelled", 1),
        ("MessageCancelled", 2),
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["display", "cancel", "cancel_all", "tick"]),
            st.integers(1, 4),
            st.integers(0, 900),
            st.integers(0, 20),
        ),
        max_size=25,
    )
)
def test_never_more_than_one_shown_and_every_shown_message_is_in_its_window(ops):
    board = MessageBoard(capacity=3)
    now = T0
    for op, mid, offset, minutes in ops:
        now += offset // 10
        if op == "display":
            start = 0 if offset % 3 == 0 else now + offset - 300
            board.display(msg(mid, start_time=max(start, 0), duration_in_minutes=minutes), now)
        elif op == "cancel":
            board.cancel(mid, now)
        elif op == "cancel_all":
            board.cancel_all(0 if offset % 2 else now + offset, now)
        else:
            board.handle_timeout(now)
        shown = [h for h in board._held.values() if h.shown]
        assert len(shown) <= 1
        for held in shown:
            assert held.starts <= now
            assert held.ends is None or now < held.ends
        assert len(board.held()) <= 3
        deadline = board.next_deadline()
        assert deadline is None or deadline > now  # everything due was applied


def test_a_message_received_already_over_still_applies_what_fell_due():
    """Found by the property test above: a display that returned early left a due expiry."""
    board = MessageBoard(capacity=3)
    board.display(msg(2, start_time=0, duration_in_minutes=1), T0)
    board.display(msg(1, start_time=0, duration_in_minutes=0), T0 + 3)  # no duration: over
    board.display(msg(1, start_time=0, duration_in_minutes=0), T0 + 60)  # message 2 ended at 60
    assert not [h for h in board._held.values() if h.shown]
    deadline = board.next_deadline()
    assert deadline is None or deadline > T0 + 60


# -- F1/F2: Cancel All Messages learnt late, and its repeats -----------------------------------


def test_a_cancel_all_learnt_late_spares_messages_received_after_its_time():
    """A Cancel All the device missed, learnt from Get Message Cancellation at start-up, clears
    only what was received before its implementation time (SE D.5.2.3.4, D.5.2.4.3)."""
    board = MessageBoard()
    board.display(msg(1, "before"), T0)
    board.display(msg(2, "after", confirmation_required=True), T0 + 65)
    board.display(msg(3, "scheduled after", start_time=T0 + 86_400), T0 + 70)
    board.confirm(2, T0 + 66)
    assert board.current().message_id == 2  # it replaced message 1
    assert board.cancel_all(T0 + 60, T0 + 500) == []  # the ESI's Cancel All at T0 + 60
    assert [m.message_id for m in board.held()] == [2, 3]
    assert board.current().message_id == 2
    assert board.confirmation_of(2) is not None
    assert board.last_cancel_all == T0 + 60


def test_a_cancel_all_learnt_late_clears_what_was_held_before_it():
    board = MessageBoard()
    board.display(msg(1, "before", start_time=T0 + 86_400), T0)
    board.display(msg(2, "after"), T0 + 100)
    assert kinds(board.cancel_all(T0 + 50, T0 + 200)) == [("MessageCancelled", 1)]
    assert [m.message_id for m in board.held()] == [2]


def test_a_cancel_all_within_the_clock_skew_of_the_last_is_a_repeat():
    """The device applied Cancel All "now" with its own clock, one second behind the ESI's; Get
    Message Cancellation then returns the ESI's time for it: the same Cancel All."""
    board = MessageBoard()
    board.display(msg(1, "old"), T0)
    board.cancel_all(0, T0 + 9)  # the ESI recorded T0 + 10
    assert board.last_cancel_all == T0 + 9
    board.display(msg(11, "kept"), T0 + 9)
    assert board.cancel_all(T0 + 10, T0 + 9 + 3600) == []
    assert [m.message_id for m in board.held()] == [11]
    assert board.last_cancel_all == T0 + 10  # asked after the ESI's time from now on
    # a pending one is recognised within the skew too
    board.cancel_all(T0 + 8000, T0 + 3700)
    assert board.cancel_all(T0 + 8003, T0 + 3710) == []
    assert [w for w, _ in board._cancel_alls] == [T0 + 8000]
    # the skew is 5 s: one 5 s after the last is a repeat, 6 s after another Cancel All (it
    # cancels the message received between the two)
    for gap, cancelled in ((5, []), (6, [("MessageCancelled", 12)])):
        board = MessageBoard()
        board.cancel_all(0, T0 + 9)
        board.display(msg(12, "between"), T0 + 12)
        assert kinds(board.cancel_all(T0 + 9 + gap, T0 + 20)) == cancelled, gap


# -- F4: a copy of a held message with another start encoding ---------------------------------


def test_a_copy_with_another_start_encoding_is_the_same_message_and_keeps_its_confirmation():
    board = MessageBoard()
    # received 3 s late (a retry, a sleepy device): the ESI counts from its own send time
    board.display(msg(9, confirmation_required=True, duration_in_minutes=10), T0 + 3)
    board.confirm(9, T0 + 10)
    # Get Last Message at T0 + 300 (ESI's count): 5 minutes left; the end moves 3 s earlier
    assert board.display(msg(9, confirmation_required=True, duration_in_minutes=5), T0 + 300) == []
    # the absolute start the ESI sent it with (as zse's DRLC and Price servers re-send)
    copy = msg(9, confirmation_required=True, start_time=T0, duration_in_minutes=10)
    assert board.display(copy, T0 + 320) == []
    assert board.confirmation_of(9) is not None
    with pytest.raises(MessageError, match="already confirmed"):
        board.confirm(9, T0 + 330)
    assert board.next_deadline() == T0 + 603  # within the tolerance: not re-timed


def test_a_copy_moved_beyond_the_tolerance_is_retimed_keeping_confirmation_and_unlock():
    board = MessageBoard()
    secret = msg(4, "secret", protected=True, confirmation_required=True, duration_in_minutes=10)
    board.display(secret, T0)
    board.unlock(4)
    board.confirm(4, T0 + 5)
    # the ESI now says 30 minutes from T0 + 60: re-timed, nothing told, confirmation kept
    later = msg(4, "secret", protected=True, confirmation_required=True, duration_in_minutes=30)
    assert board.display(later, T0 + 60) == []
    assert board.next_deadline() == T0 + 60 + 1800
    assert board.showing().text == "secret"
    assert board.confirmation_of(4) is not None
    # moved to the future: off the display until then, and back on at its start
    future = msg(4, "secret", protected=True, confirmation_required=True,
                 start_time=T0 + 3600, duration_in_minutes=10)  # fmt: skip
    assert kinds(board.display(future, T0 + 70)) == [("MessageReplaced", 4),
                                                     ("MessageScheduled", 4)]  # fmt: skip
    assert kinds(board.handle_timeout(T0 + 3600)) == [("MessageDisplayed", 4)]
    assert board.showing().text == "secret"  # still unlocked
    # ended by the copy: expired
    ended = msg(4, "secret", protected=True, confirmation_required=True,
                start_time=T0, duration_in_minutes=1)  # fmt: skip
    assert kinds(board.display(ended, T0 + 3700)) == [("MessageExpired", 4)]
    # the tolerance is 120 s: an end moved by 120 s is the same window, by 180 s re-timed
    for minutes, end in ((12, T0 + 600), (13, T0 + 780)):
        board = MessageBoard()
        board.display(msg(5, duration_in_minutes=10), T0)
        assert board.display(msg(5, duration_in_minutes=minutes), T0) == []
        assert board.next_deadline() == end, minutes


def test_the_esis_confirmed_bit_marks_a_held_message_confirmed():
    """Extended Message Control bit 0 (SE 1.2): the ESI has this device's confirmation."""
    board = MessageBoard()
    board.display(msg(5, confirmation_required=True), T0, confirmed=True)
    assert board.is_confirmed(5)
    with pytest.raises(MessageError, match="already confirmed"):
        board.confirm(5, T0 + 1)
    # a held message learns it from a copy; a copy without it never takes it away
    board.display(msg(6, confirmation_required=True), T0 + 2)
    assert not board.is_confirmed(6)
    board.display(msg(6, confirmation_required=True), T0 + 3, confirmed=True)
    assert board.is_confirmed(6)
    board.display(msg(6, confirmation_required=True), T0 + 4)
    assert board.is_confirmed(6)
    records = board.to_records()
    assert records["msg/00000006"]["esi_confirmed"] is True
    assert MessageBoard.from_records(records).is_confirmed(6)
    # a record written before the field loads as not confirmed by the ESI
    board.display(msg(7, confirmation_required=True), T0 + 5)
    old = board.to_records()
    assert "esi_confirmed" not in old["msg/00000007"]
    assert not MessageBoard.from_records(old).is_confirmed(7)


def test_a_repeated_cancel_all_still_applies_what_is_due() -> None:
    """Found by the property test above: a Cancel All taken as a repeat (within the clock
    skew of a pending one) returned at once, leaving a pending Cancel All due at that very
    second unapplied (its deadline already past)."""
    board = MessageBoard(capacity=3)
    board.display(msg(1, start_time=0, duration_in_minutes=30), T0)
    board.cancel_all(T0 + 44, T0 + 4)  # pending
    board.cancel_all(T0 + 77, T0 + 17)  # pending
    events = board.cancel_all(T0 + 72, T0 + 44)  # a repeat of the one at +77, at +44
    assert [type(e).__name__ for e in events] == ["MessageCancelled"]
    deadline = board.next_deadline()
    assert deadline is None or deadline > T0 + 44
