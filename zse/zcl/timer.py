"""One timer per asyncio shell, driven by its sans-IO cores' deadlines (issue #13.2).

A core says when it next has something to do, ``next_deadline()``, in its own time base (ZigBee
UTCTime from the shell's injected clock, or the loop's seconds), and does it when told,
``handle_timeout(now)``. :class:`Timer` keeps ONE ``loop.call_at`` armed at the earliest
deadline of the cores it drives (aioquic's ``get_timer()`` / ``handle_timer()``), converts a
core's time base to loop time in one place (:meth:`Timer._loop_time`), and at the deadline
hands what ``handle_timeout`` returned to the shell's callback. The shell calls
:meth:`Timer.update` after every input it feeds a core.

A clock of whole seconds (UTCTime) is converted when the core's deadline is new, after an input
(:meth:`Timer.update`) and after the core's own timeout, and not again when another core of the
shell fires: re-converting then would move the deadline by the fraction of a second the loop
clock has run past the shell clock's last tick.

It never sleeps, so it runs the same on the simulator's virtual-time loop
(:class:`zse.sim.VirtualClockLoop`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["Timed", "Timer", "wait_cancelled"]

LOGGER = logging.getLogger(__name__)

_R = TypeVar("_R")
#: What an ``on_timeout`` may give back: work to do once the source's lock is let go (telling
#: listeners whose own work may need that lock), in the timer's task, before the next source.
Afterwards = Callable[[], Awaitable[None]]
#: An ``on_timeout``: a function or a coroutine function, of the core's outcome.
OnTimeout = Callable[[_R], Awaitable[Afterwards | None] | Afterwards | None]
_R_co = TypeVar("_R_co", covariant=True)


class Timed(Protocol[_R_co]):
    """A sans-IO core with deadlines, in its own time base (``now`` is that base too)."""

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` next has something to do, or None."""

    def handle_timeout(self, now: Any) -> _R_co:
        """Do what is due at ``now``; the result goes to the shell's callback."""


@dataclass(eq=False)
class _Source(Generic[_R]):
    core: Timed[_R]
    on_timeout: OnTimeout[_R]
    clock: Callable[[], float] | None  # None: the core counts in loop seconds
    lock: asyncio.Lock | None
    retry: float | None = None  # seconds after which a failed deadline is tried again
    failed: float | None = None  # a deadline whose handling raised: left until the next input
    retry_at: float | None = None  # the loop time the failed deadline is tried again
    converted: tuple[float, float] | None = None  # (deadline, loop time) as last converted


class Timer:
    """The one armed timer of a shell: :meth:`add` its cores, :meth:`start`, call
    :meth:`update` after each input fed to a core, :meth:`stop` (or :meth:`close`) to end.

    At a deadline the timer takes the source's ``lock`` (if given), checks the core is due by
    its own clock, calls ``handle_timeout(now)`` and passes the result to ``on_timeout`` (a
    function or a coroutine function), which may give back :data:`Afterwards`: run once the
    lock is let go; one timeout runs at a time, and the timer re-arms when it ends. An exception
    there is logged as one line ``"<what>: <error>"`` at ``level`` and the timer keeps running;
    a deadline whose ``handle_timeout`` (or ``on_timeout``) raised is not retried until the
    next :meth:`update` (no busy loop), or ``retry`` seconds later for a source added with one.
    """

    def __init__(
        self, what: str, *, logger: logging.Logger = LOGGER, level: int = logging.ERROR
    ) -> None:
        self.what = what
        self.logger = logger
        self.level = level
        self._sources: list[_Source[Any]] = []
        self._running = False
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._firing: asyncio.Task[None] | None = None
        self._after = False  # the running timeout is in a source's Afterwards

    def add(
        self,
        core: Timed[_R],
        on_timeout: OnTimeout[_R],
        *,
        clock: Callable[[], float] | None = None,
        lock: asyncio.Lock | None = None,
        retry: float | None = None,
    ) -> None:
        """Drive ``core``, whose time is ``clock()`` (None: the event loop's ``time()``);
        ``retry``: a deadline whose handling failed, the core still due then, is tried again
        that many seconds later (loop time) as well as at the next :meth:`update`."""
        self._sources.append(_Source(core, on_timeout, clock, lock, retry))

    @property
    def deadline(self) -> float | None:
        """The loop time the timer is armed for, or None."""
        return self._armed_at

    def start(self) -> None:
        """Arm the timer at the cores' earliest deadline (needs a running loop if any)."""
        self._running = True
        self.update()

    def update(self) -> None:
        """Re-read the deadlines and re-arm: call after every input fed to a core. A no-op
        before :meth:`start`; while a timeout runs, the timer re-arms when it ends."""
        for source in self._sources:
            source.failed = source.converted = source.retry_at = None
        self._arm()

    def close(self) -> None:
        """Disarm, and cancel a timeout that is running."""
        self._running = False
        self._disarm()
        firing = self._firing
        if firing is not None and firing is not asyncio.current_task():
            firing.cancel()

    async def stop(self) -> None:
        """:meth:`close`, then wait for a cancelled timeout to end; one running its
        :data:`Afterwards` (telling what was stored) is let finish that, not cancelled."""
        firing = self._firing
        current = asyncio.current_task()
        if firing is not None and firing is not current and self._after:
            self._running = False  # the timeout ends after this source
            self._disarm()
            await firing
            return
        self.close()
        if firing is None or firing is current:
            return
        await wait_cancelled(firing)

    def _loop_time(self, source: _Source[Any]) -> float | None:
        """The source's next deadline in loop time: the one conversion between time bases."""
        deadline = source.core.next_deadline()
        if deadline is None:
            return None
        if deadline == source.failed:
            return source.retry_at
        if source.clock is None:
            return deadline
        if source.converted is None or source.converted[0] != deadline:
            when = asyncio.get_running_loop().time() + max(0, deadline - source.clock())
            source.converted = (deadline, when)
        return source.converted[1]

    def _arm(self) -> None:
        if not self._running or self._firing is not None:
            return
        times = [when for s in self._sources if (when := self._loop_time(s)) is not None]
        when = min(times, default=None)
        if when is not None and when == self._armed_at:
            return
        self._disarm()
        if when is not None:
            self._handle = asyncio.get_running_loop().call_at(when, self._fire)
            self._armed_at = when

    def _disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._armed_at = None, None

    def _fire(self) -> None:
        fired_at = self._armed_at
        assert fired_at is not None
        self._handle, self._armed_at = None, None
        self._firing = asyncio.get_running_loop().create_task(self._timeout(fired_at))

    async def _timeout(self, fired_at: float) -> None:
        try:
            for source in list(self._sources):
                if not self._running:  # stopped while a source's Afterwards ran
                    break
                try:
                    if source.lock is None:
                        after = await self._handle_source(source, fired_at)
                    else:
                        async with source.lock:
                            after = await self._handle_source(source, fired_at)
                    if after is not None:  # the lock let go
                        self._after = True
                        try:
                            await after()
                        finally:
                            self._after = False
                except Exception as exc:  # the core itself failed: logged, never left to asyncio
                    self.logger.log(self.level, "%s: %s", self.what, exc)
        finally:
            self._firing = None
            try:
                self._arm()
            except Exception as exc:  # a core's next_deadline() or a clock failed
                self.logger.log(self.level, "%s: not re-armed: %s", self.what, exc)

    async def _handle_source(self, source: _Source[Any], fired_at: float) -> Afterwards | None:
        if source.converted is not None and source.converted[1] <= fired_at:
            source.converted = None  # its timer fired: converted again afterwards
        deadline = source.core.next_deadline()
        if deadline is None:
            return None
        if deadline == source.failed:
            if source.retry_at is None or fired_at < source.retry_at:
                return None
            source.failed = source.retry_at = None  # its time to try again
        # asyncio runs a timer up to its clock resolution early: a loop-time core is due at the
        # time it was armed for.
        loop_now = max(asyncio.get_running_loop().time(), fired_at)
        now = loop_now if source.clock is None else source.clock()
        if now < deadline:
            return None  # not due by the core's own clock (e.g. it lags the loop's): re-armed
        try:
            outcome = source.on_timeout(source.core.handle_timeout(now))
            if inspect.isawaitable(outcome):
                outcome = await outcome
        except Exception as exc:
            self.logger.log(self.level, "%s: %s", self.what, exc)
            if source.core.next_deadline() == deadline:
                source.failed = deadline
                if source.retry is not None:
                    source.retry_at = loop_now + source.retry
            return None
        return outcome


async def wait_cancelled(task: asyncio.Future[Any]) -> None:
    """Wait for ``task``, which the caller has cancelled, to end. Its own cancellation ends
    here; the caller's (its task cancelled while waiting) goes on up, so a stop() built on
    this never swallows a shutdown."""
    current = asyncio.current_task()
    cancelling = current.cancelling() if current is not None else 0
    try:
        await task
    except asyncio.CancelledError:
        if current is not None and current.cancelling() > cancelling:
            raise
