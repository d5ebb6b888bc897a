"""The utility's commands that wait for their time (SE 1.2), sans-IO: one rule for all.

Several SE 1.2 commands carry an Implementation Date/Time (or Start Time) and an issue
(Provider ID, Issuer Event ID): Prepayment's Change Payment Mode and its settings (D.7),
Metering's Change Supply. The meter answers them when received and applies them at their
time. :func:`schedule` is the rule for what waits; :func:`take_due` what applies at ``now``.

- 0 (:data:`NOW`) or a time not after ``now``: applied now.
- 0xFFFFFFFF (:data:`CANCEL`): the waiting command of the same kind and issue is dropped
  (Silicon Labs' prepayment and metering servers read it so; the SE 1.2 text was out of
  reach).
- The same issue again replaces the one waiting (a correction or a repeat).
- For a setting (each command sets a value: a later one overrides, unlike a credit
  adjustment, which adds up): a newer issue drops older ones of its kind due at or after it,
  which would undo it; an older issue arriving while a newer one of its kind waits to apply
  at or before its time is not kept (applied after the newer one, it would undo it).
- At most ``bound`` of a kind wait; one more that would wait is refused
  (:class:`ScheduleFull`), none dropped: each one waiting was answered and is a step of the
  utility's schedule.

Used by :mod:`zse.metering.supply` and the Prepayment account
(:meth:`zse.prepayment.core.PrepayAccount.schedule`, one kind per command).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Final, Protocol, TypeVar

from zse.errors import ZseError

__all__ = ["CANCEL", "NOW", "Issued", "ScheduleFull", "schedule", "take_due"]

#: Implementation Date/Time (or Start Time) 0: the command applies when received.
NOW: Final = 0
#: Implementation Date/Time 0xFFFFFFFF: cancel the waiting command of the same issue.
CANCEL: Final = 0xFFFFFFFF


class Issued(Protocol):
    """A command with its time and issue."""

    @property
    def when(self) -> int: ...

    @property
    def provider_id(self) -> int: ...

    @property
    def issuer_event_id(self) -> int: ...


T = TypeVar("T", bound=Issued)


class ScheduleFull(ZseError, ValueError):
    """One more command of a kind would wait past the bound (answered INSUFFICIENT_SPACE)."""


def _one_kind(_command: Issued) -> Hashable:
    return None


def _order(command: Issued) -> tuple[int, int]:
    return command.when, command.issuer_event_id


def schedule(
    pending: Sequence[T],
    command: T,
    now: int,
    *,
    bound: int,
    kind: Callable[[T], Hashable] = _one_kind,
    setting: bool = True,
) -> tuple[list[T], bool]:
    """``command`` taken into ``pending`` at ``now`` by the module's rule: the commands left
    waiting (by time, then issuer event id) and whether ``command`` applies now. A command
    cancelled, or an older setting arriving late, applies not and waits not.
    :class:`ScheduleFull` (nothing changed) past ``bound`` of its kind."""
    mine = kind(command)
    issue = (command.provider_id, command.issuer_event_id)

    def same_issue(other: T) -> bool:
        return kind(other) == mine and (other.provider_id, other.issuer_event_id) == issue

    if command.when == CANCEL:
        return [p for p in pending if not same_issue(p)], False
    if setting and any(
        kind(p) == mine and p.issuer_event_id > command.issuer_event_id and p.when <= command.when
        for p in pending
    ):
        return list(pending), False
    kept = [
        p
        for p in pending
        if not same_issue(p)
        and not (
            setting
            and kind(p) == mine
            and p.issuer_event_id < command.issuer_event_id
            and p.when >= command.when
        )
    ]
    if command.when == NOW or command.when <= now:
        return kept, True
    if sum(kind(p) == mine for p in kept) >= bound:
        raise ScheduleFull(f"{bound} commands of this kind wait already")
    return sorted([*kept, command], key=_order), False


def take_due(pending: Sequence[T], now: int) -> tuple[list[T], list[T]]:
    """(the commands due by ``now``, by time then issuer event id; those still waiting)."""
    due = sorted((p for p in pending if p.when <= now), key=_order)
    return due, [p for p in pending if p.when > now]
