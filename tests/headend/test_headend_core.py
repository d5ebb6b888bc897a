"""The headend's sans-IO decisions: outcomes only move forward, the retry book, the token
bucket (fed the time; nothing waits)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zse.headend.core import (
    RANK,
    Outcome,
    RateLimiter,
    RetryBook,
    advance,
    outcome_of_report,
    parse_state,
    retry_delay,
)
from zse.provisioning.lifecycle import LifecycleState


@given(st.lists(st.sampled_from(list(Outcome)), max_size=12))
def test_an_outcome_never_goes_back(reports: list[Outcome]) -> None:
    current = Outcome.PENDING
    for reported in reports:
        after = advance(current, reported)
        if after is not None:
            assert RANK[after] >= RANK[current]
            assert after is not current
            current = after


def test_report_event_status_values_map_to_outcomes() -> None:
    assert [outcome_of_report(v) for v in (1, 2, 3, 4, 6)] == [
        Outcome.RECEIVED,
        Outcome.STARTED,
        Outcome.COMPLETED,
        Outcome.OPTED_OUT,
        Outcome.CANCELLED,
    ]
    assert outcome_of_report(0xFB) is Outcome.REJECTED
    assert advance(Outcome.STARTED, Outcome.DELIVERED) is None  # a late ack changes nothing
    assert advance(Outcome.SKIPPED, Outcome.OFFLINE) is Outcome.OFFLINE


def test_the_retry_book() -> None:
    book = RetryBook()
    book.schedule(1, "a", 30.0)
    book.schedule(1, "a", 40.0)  # the earlier stays
    book.schedule(2, "b", 10.0)
    assert book.next_deadline() == 10.0
    assert book.handle_timeout(20.0) == [(2, "b")]
    book.drop(1)
    assert book.next_deadline() is None
    assert [retry_delay(n) for n in (1, 2, 5, 9)] == [30.0, 60.0, 900.0, 900.0]


def test_the_token_bucket_per_retailer() -> None:
    limiter = RateLimiter(rate=2.0, burst=2)
    assert limiter.take("a", 0.0) is None
    assert limiter.take("a", 0.0) is None
    assert limiter.take("a", 0.0) == 0.5
    assert limiter.take("b", 0.0) is None  # each retailer its own bucket
    assert limiter.take("a", 0.5) is None


def test_states_by_any_spelling() -> None:
    assert parse_state("pending-de-provisioning") is LifecycleState.PENDING_DEPROVISIONING
    assert parse_state("Meter_Ready") is LifecycleState.METER_READY
