"""A timed core whose last timeout can be put back, for a shell whose write of it failed.

A shell's ``on_timeout`` commits what the core's ``handle_timeout`` changed; when that write
does not land (a failed write, or one cancelled before its transaction), the core is put back
as it was before the timeout, so memory is what the store holds and the core's deadline is the
one that failed: a :class:`~zse.zcl.timer.Timer` source added with ``retry=`` takes it again
then (zse's own shape, as the meter's supply changes and the DRLC client's table are put back).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from zse.zcl.timer import Timed

__all__ = ["PutBack"]

_R = TypeVar("_R")
_S = TypeVar("_S")


class PutBack(Generic[_R, _S]):
    """``core`` as a timer drives it, ``save()`` taken before each of its timeouts;
    :meth:`put_back` hands the last one taken to ``restore``."""

    def __init__(
        self, core: Timed[_R], save: Callable[[], _S], restore: Callable[[_S], None]
    ) -> None:
        self.core = core
        self._save = save
        self._restore = restore
        self._saved: list[_S] = []

    def next_deadline(self) -> float | None:
        return self.core.next_deadline()

    def handle_timeout(self, now: Any) -> _R:
        self._saved[:] = [self._save()]
        return self.core.handle_timeout(now)

    def put_back(self) -> None:
        """The core as it was before its last timeout (once: a second call does nothing)."""
        if self._saved:
            self._restore(self._saved.pop())

    def write_raised(
        self,
        landed: Sequence[int] | None,
        exc: BaseException,
        events: Iterable[Any],
        emit: Callable[[Any], object],
    ) -> None:
        """The write of the last timeout's change raised ``exc``: carried out all the same
        (``landed``: :attr:`Batch.landed <zse.store.Batch.landed>`, cancelled during its
        transaction) -> its ``events`` each handed to ``emit``, as stored; failed, or cancelled
        before its transaction -> :meth:`put_back` (the timer's ``retry`` takes it again);
        anything else (a process dying) is left as it is."""
        if landed is not None:
            for event in events:
                emit(event)
        elif isinstance(exc, Exception | asyncio.CancelledError):
            self.put_back()
