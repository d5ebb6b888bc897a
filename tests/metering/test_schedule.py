"""zse.schedule: the one rule for the utility's commands that wait for their time (SE 1.2
Change Supply, Prepayment's settings): kinds kept apart, a command that adds up (not a
setting) never drops another, the bound per kind, due ones taken once in order."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from zse.schedule import CANCEL, NOW, ScheduleFull, schedule, take_due


@dataclass(frozen=True)
class Cmd:
    kind: str
    when: int
    issuer_event_id: int
    provider_id: int = 1


def kind(c: Cmd) -> str:
    return c.kind


def test_kinds_are_kept_apart_and_bounded_each() -> None:
    pending: list[Cmd] = []
    for n in range(3):
        pending, now = schedule(pending, Cmd("a", 100 + n, n), 0, bound=3, kind=kind)
        assert not now
    with pytest.raises(ScheduleFull):
        schedule(pending, Cmd("a", 200, 9), 0, bound=3, kind=kind)
    pending, _ = schedule(pending, Cmd("b", 150, 0), 0, bound=3, kind=kind)  # another kind
    # a newer "b" setting drops no "a" due after it
    pending, _ = schedule(pending, Cmd("b", 90, 5), 0, bound=3, kind=kind)
    assert [(c.kind, c.issuer_event_id) for c in pending] == [
        ("b", 5),
        ("a", 0),
        ("a", 1),
        ("a", 2),
    ]
    # cancel: the same kind and issue only
    pending, now = schedule(pending, Cmd("b", CANCEL, 5), 0, bound=3, kind=kind)
    assert not now
    assert [c.kind for c in pending] == ["a", "a", "a"]


def test_a_command_that_adds_up_drops_nothing_and_is_not_dropped() -> None:
    pending, _ = schedule([], Cmd("a", 100, 5), 0, bound=8, setting=False)
    pending, _ = schedule(pending, Cmd("a", 200, 3), 0, bound=8, setting=False)  # older, later
    pending, _ = schedule(pending, Cmd("a", 50, 9), 0, bound=8, setting=False)  # newer, sooner
    assert [c.issuer_event_id for c in pending] == [9, 5, 3]


def test_now_and_a_past_time_apply_now_and_due_ones_are_taken_once_in_order() -> None:
    assert schedule([], Cmd("a", NOW, 1), 500, bound=1) == ([], True)
    assert schedule([], Cmd("a", 499, 1), 500, bound=1) == ([], True)
    pending = [Cmd("a", 300, 2), Cmd("a", 100, 7), Cmd("a", 100, 4), Cmd("a", 900, 1)]
    due, rest = take_due(pending, 300)
    assert [c.issuer_event_id for c in due] == [4, 7, 2]
    assert rest == [Cmd("a", 900, 1)]
    assert take_due(rest, 300) == ([], rest)
