"""The give-up and back-off rule, once, in the core (:func:`zse.headend.core.after_miss`):
what follows a try that did not reach a device, for a send's copy and for its Cancel, fed the
time; used by the in-process headend (:class:`~zse.headend.service.Headend`), the queue's
delivery jobs (:mod:`zse.headend.queue`) and its cancel jobs (:mod:`zse.headend.control`)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zse.headend.core import (
    GIVE_UP,
    RETRY_SCHEDULE,
    Verdict,
    after_miss,
    give_up_at,
    given_up_detail,
)

HOUR = 3600.0


def test_the_next_try_follows_the_schedule_and_stops_at_the_give_up_time() -> None:
    delays = []
    failures, now = 0, 0.0
    while (miss := after_miss(failures, now=now, give_up_at=2 * HOUR)).verdict is Verdict.AGAIN:
        delays.append(miss.delay)
        failures, now = miss.failures, now + miss.delay
    assert delays[:5] == [30.0, 60.0, 120.0, 300.0, 900.0]
    assert now == 2 * HOUR + 1.0  # the last try just after the give-up time decides
    assert miss.verdict is Verdict.GIVEN_UP
    assert miss.failures == len(delays) + 1


def test_a_copy_without_a_give_up_time_is_tried_for_ever() -> None:
    """A job enqueued before give-up times: the back-off alone."""
    miss = after_miss(40, now=1e9, give_up_at=None)
    assert (miss.verdict, miss.delay, miss.failures) == (Verdict.AGAIN, 900.0, 41)


def test_the_window_caps_a_copy_and_ends_a_cancel() -> None:
    """A send's copy is tried once more just after its window (the ESI finds what is left of
    it), then, past it, on the back-off; a Cancel after the window has nothing to take
    back."""
    copy = after_miss(4, now=1000.0, give_up_at=1e6, window_end=1100.0)
    assert (copy.verdict, copy.delay) == (Verdict.AGAIN, 101.0)
    past = after_miss(5, now=1101.0, give_up_at=1e6, window_end=1100.0)
    assert (past.verdict, past.delay) == (Verdict.AGAIN, 900.0)
    cancel = after_miss(4, now=1100.0, give_up_at=1e6, window_end=1100.0, cancel=True)
    assert cancel.verdict is Verdict.OVER
    # the window first: over, though the give-up time has passed too
    assert after_miss(0, now=5.0, give_up_at=1.0, window_end=2.0, cancel=True).verdict is (
        Verdict.OVER
    )


def test_a_cancel_counts_its_give_up_time_from_the_cancel() -> None:
    assert give_up_at(GIVE_UP, created=100.0) == 100.0 + GIVE_UP
    assert give_up_at(GIVE_UP, created=100.0, cancelled_at=5000.0) == 5000.0 + GIVE_UP
    assert given_up_detail(7200.0, "offline") == (
        "given up: not reached within 2 hours of the send (last try: offline)"
    )
    assert given_up_detail(3 * 86_400.0, "offline", cancel=True) == (
        "given up: the device was not told of the cancel within 3 days of it (last try: offline)"
    )


@settings(max_examples=300, deadline=None)
@given(
    span=st.floats(1.0, 30 * 86_400.0, allow_nan=False),
    start=st.floats(0.0, 1e9, allow_nan=False),
    window=st.one_of(st.none(), st.floats(0.0, 60 * 86_400.0, allow_nan=False)),
    cancel=st.booleans(),
    late=st.lists(st.floats(0.0, 2000.0, allow_nan=False), max_size=400),
)
def test_a_device_never_reached_is_tried_a_bounded_number_of_times(
    span: float, start: float, window: float | None, cancel: bool, late: list[float]
) -> None:
    """Tried at most ``len(RETRY_SCHEDULE) + span / 900 + 2`` times (the window's end may
    add one; a worker may take a due try ``late`` seconds after it is due: fewer tries then),
    and it always ends: given up (or, a Cancel, over) by the give-up time plus one retry
    interval. Was: a send's copy past its window was tried every second until then."""
    deadline = start + span
    end = None if window is None else start + window
    now, failures, tries = start, 0, 1  # the first try, at the send (or the cancel)
    lateness = iter(late)
    while True:
        miss = after_miss(failures, now=now, give_up_at=deadline, window_end=end, cancel=cancel)
        assert miss.failures == failures + 1
        if miss.verdict is not Verdict.AGAIN:
            break
        assert 0.0 < miss.delay <= RETRY_SCHEDULE[-1]
        failures, now, tries = miss.failures, now + miss.delay + next(lateness, 0.0), tries + 1
        assert tries <= len(RETRY_SCHEDULE) + span / RETRY_SCHEDULE[-1] + 2
    if miss.verdict is Verdict.OVER:
        assert cancel
        assert end is not None
        assert now >= end
    else:
        assert now >= deadline
    assert now <= deadline + RETRY_SCHEDULE[-1] + max(late, default=0.0)
