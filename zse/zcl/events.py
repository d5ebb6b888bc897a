"""Outcomes offered to applications both as callbacks and as an async iterator.

A listener may return an awaitable: what it still does with the event (journal it, record
it). :meth:`EventStream.emit` hands those back as one future, and a service that journals
what it has told (the ESI's Messaging and DRLC servers) marks an event told only once
:func:`in_hand` says every listener finished with it; one not in hand (a listener failed or
stopped first, the process killed meanwhile) is told again after the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, Generic, TypeVar

from zse.zcl._tasks import keep_task

__all__ = [
    "STOP_WAIT",
    "EventStream",
    "Untold",
    "collecting",
    "finish_telling",
    "in_hand",
    "tell_in_order",
]

LOGGER = logging.getLogger(__name__)

E = TypeVar("E")

#: A listener: called with each event; it returns None, or an awaitable of what it still
#: does with the event.
Listener = Callable[[E], Awaitable[Any] | None]


class EventStream(Generic[E]):
    """Fan one stream of events out to zigpy-style listeners and async iterators."""

    def __init__(self) -> None:
        self._listeners: list[Listener[E]] = []
        self._queues: list[asyncio.Queue[E]] = []

    def on_event(self, listener: Listener[E]) -> Callable[[], None]:
        """Call ``listener`` with every event; returns a function that removes it. The
        listener may return an awaitable of what it still does with the event (see the
        module)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def events(self) -> AsyncIterator[E]:
        """Async-iterate events from now on."""
        queue: asyncio.Queue[E] = asyncio.Queue()
        self._queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)

    def emit(self, event: E) -> asyncio.Future[Any] | None:
        """Deliver ``event`` to every listener and iterator; returns None, or a future done
        once the awaitables the listeners returned are (failed if one of them failed). It
        may be left alone: its failure is then only logged by whoever failed.

        A listener that raises (the application's fault) is logged, the event type named
        (never the event: it may hold a secret), and counts as a listener that failed with
        the event (the future fails: a journalled event is not marked told, and is told
        again after the next start); the other listeners still get it, and the stream goes
        on (the exception ended the emitting service's telling: every later event was held
        until a restart, unsaid)."""
        pending: list[Awaitable[Any]] = []
        for listener in list(self._listeners):
            try:
                result = listener(event)
            except Exception as exc:  # the application's fault: logged, the others told
                LOGGER.exception("a listener failed with a %s event", type(event).__name__)
                result = _failed(exc)
            if result is not None:
                pending.append(result)
        for queue in self._queues:
            queue.put_nowait(event)
        if not pending:
            return None
        if len(pending) == 1 and isinstance(pending[0], asyncio.Future):
            done = pending[0]
        else:
            done = asyncio.gather(*pending)
        done.add_done_callback(_retrieved)
        return done


def _failed(exc: Exception) -> asyncio.Future[Any] | None:
    """A future failed with ``exc`` (None outside a running loop: nothing awaits it)."""
    try:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    except RuntimeError:
        return None
    future.set_exception(exc)
    return future


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a failure as seen: the caller of ``emit`` may leave the future alone."""
    if not future.cancelled():
        future.exception()


def collecting(
    emit: Callable[[E], asyncio.Future[Any] | None], into: list[asyncio.Future[Any]]
) -> Callable[[E], None]:
    """``emit``, keeping in ``into`` what the listeners still do with each event."""

    def emit_and_keep(event: E) -> None:
        done = emit(event)
        if done is not None:
            into.append(done)

    return emit_and_keep


async def in_hand(pending: Iterable[asyncio.Future[Any] | None]) -> bool:
    """Wait for what the listeners still do with events (futures from
    :meth:`EventStream.emit`); True if all of it finished, False if a part failed or was
    cancelled (the events are then not in every listener's hand)."""
    futures = [future for future in pending if future is not None]
    if not futures:
        return True
    await asyncio.wait(futures)
    failed = [f for f in futures if f.cancelled() or f.exception() is not None]
    for future in failed:
        LOGGER.debug(
            "a listener did not finish with an event: %s",
            "cancelled" if future.cancelled() else type(future.exception()).__name__,
        )
    return not failed


#: Seconds a service's stop waits for the events it is telling (:meth:`Untold.stop`) before
#: it cancels what is left, unmarked: told again after the next start (zse's choice: the
#: listeners' work and one mark, a store write bounded by the ``command_timeout`` of zse's
#: PostgreSQL store, 30 s unless its URL says otherwise (:mod:`zse.store_postgres`; neither
#: PostgreSQL nor asyncpg bounds a command by default), end well within it; a listener that
#: never ends must not hang the stop).
STOP_WAIT: Final = 60.0

_Held = list[tuple[int | None, E | None]]
_Emitted = list[tuple[int | None, asyncio.Future[Any] | None]]


def _emit_until(
    stream: EventStream[E], held: _Held[E], paused: Callable[[], bool]
) -> tuple[_Emitted, _Held[E]]:
    """Emit the ``held`` events in order until ``paused()`` (checked before each: a
    listener called with one may let the last listener go); what the listeners still do with
    each one emitted, and the events not emitted."""
    emitted: _Emitted = []
    for index, (seq, event) in enumerate(held):
        if paused():
            return emitted, held[index:]
        emitted.append((seq, None if event is None else stream.emit(event)))
    return emitted, []


async def _mark_in_hand(emitted: _Emitted, mark: Callable[[int], Awaitable[None]]) -> None:
    """``mark`` each seq once its event is in every listener's hand (:func:`in_hand`)."""
    for seq, done in emitted:
        if seq is not None and await in_hand([done]):
            await mark(seq)


async def tell_in_order(
    stream: EventStream[E],
    held: list[tuple[int | None, E | None]],
    mark: Callable[[int], Awaitable[None]],
) -> None:
    """Emit the ``held`` events (journal seq, event; None: only to be marked) in order, then
    ``mark`` each seq once its event is in every listener's hand (:func:`in_hand`): one not
    marked is told again after the next start."""
    emitted, _ = _emit_until(stream, held, lambda: False)
    await _mark_in_hand(emitted, mark)


async def finish_telling(tasks: set[asyncio.Task[Any]], bound: float = STOP_WAIT) -> None:
    """At a stop: wait for the telling ``tasks`` (those started meanwhile too) to end, each
    event told marked; those still running after ``bound`` seconds (a listener that does not
    finish) are cancelled, logged: what they had not marked is told after the next start."""
    try:
        async with asyncio.timeout(bound):
            while running := [task for task in tasks if not task.done()]:
                await asyncio.wait(running)
    except TimeoutError:
        LOGGER.warning(
            "events still being told when the stop's wait (%g s) ran out: told after the next"
            " start",
            bound,
        )
        left = list(tasks)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)


class Untold(Generic[E]):
    """A service's events journalled with the store write of the change that caused them
    (journal seq; None without a store), told once: live, each marked once in every
    listener's hand (:func:`tell_in_order`), or held from :meth:`hold` (at start, the entries
    not yet marked) until :meth:`tell_untold`, then told in the order they came."""

    def __init__(self, stream: EventStream[E], mark: Callable[[int], Awaitable[None]]) -> None:
        self.stream = stream
        self._mark = mark
        self._held: list[tuple[int | None, E | None]] = []
        self._telling = True
        #: :meth:`tell_soon`'s tasks, until they end or the service stops.
        self._soon: set[asyncio.Task[None]] = set()
        self._stopped = False
        #: :meth:`pause` since the last :meth:`tell_untold` began.
        self._paused = False
        #: How many :meth:`pause` calls so far: a batch being told stops at the next one.
        self._pauses = 0

    def hold(self, untold: Iterable[tuple[int | None, E | None]]) -> None:
        """Hold ``untold`` (read before the service takes any command) and every event
        :meth:`tell` is given until :meth:`tell_untold`. Events still held from before that
        no store keeps (seq None: a service without a store, stopped and started again) stay
        held, first; those with a seq are in ``untold`` again, read back from the store."""
        self._held = [held for held in self._held if held[0] is None] + list(untold)
        self._telling = False
        self._stopped = False

    def pause(self) -> None:
        """Hold every event :meth:`tell` is given from now on, unmarked, until
        :meth:`tell_untold`: there is no one to tell (the application let its last listener
        go, or the service's owner is stopping), and told to no one it would be marked told,
        lost. It takes effect between the events of a batch being told, too (a listener
        called with one lets the last listener go): the rest are held, first, for the next
        :meth:`tell_untold`. What is still held at a stop is told after the next start (its
        journal entry unmarked); without a store, it is gone with the process."""
        self._telling, self._paused = False, True
        self._pauses += 1

    async def tell_untold(self) -> None:
        """Tell what is held, oldest first; from then on each event is told as it comes
        (unless :meth:`pause` comes meanwhile: then what is left stays held)."""
        self._paused = False
        while self._held and not self._paused:
            held, self._held = self._held, []
            await self._tell(held)
        self._telling = not self._paused

    async def _tell(self, batch: list[tuple[int | None, E | None]]) -> None:
        """Tell ``batch`` in order and mark what the listeners have in hand; from a
        :meth:`pause` on, the events not emitted yet are held, before those held since (they
        came later)."""
        pauses = self._pauses
        emitted, rest = _emit_until(self.stream, batch, lambda: self._pauses != pauses)
        self._held[:0] = rest
        await _mark_in_hand(emitted, self._mark)

    async def tell(self, told: Sequence[tuple[int | None, E]]) -> None:
        """Tell ``told`` (journal seq, event) now, or hold it until :meth:`tell_untold`."""
        if not self._telling:
            self._held += told
        elif told:
            await self._tell(list(told))

    def tell_soon(self, told: Iterable[tuple[int | None, E]]) -> None:
        """:meth:`tell` ``told`` in a task of the service's own: the events a write stored
        after its caller was cancelled (:attr:`Batch.landed <zse.store.Batch.landed>`), told
        at once (they waited, unmarked, for the next restart: days for a meter that keeps
        running), or those a handler tells without holding its answer back (the mirrors' Get
        Notified Message). The service's stop awaits the task (:meth:`stop`); after
        :meth:`close`, nothing is started: the journal, unmarked, tells them after the next
        start, once, and those no journal keeps (seq None) are held for it."""
        told = list(told)
        if self._stopped:
            self._held += [(seq, event) for seq, event in told if seq is None]
            return
        if not told:
            return
        task = asyncio.get_running_loop().create_task(self.tell(told))
        keep_task(self._soon, task, LOGGER, "events told in a task: telling or marking failed")

    def close(self) -> None:
        """At the start of the service's stop: :meth:`tell_soon` starts nothing from now on
        (what a write the stop itself cancels stored is told after the next start: told
        during the stop, it may reach no listener, and be marked); :meth:`stop` then waits
        for the tasks started before."""
        self._stopped = True

    async def stop(self, bound: float = STOP_WAIT) -> None:
        """At the service's stop: wait for :meth:`tell_soon`'s tasks (each event told is
        marked, never told again after the restart); none started from now on. Those still
        running after ``bound`` seconds (a listener that does not finish) are cancelled:
        what they had not marked is told after the next start."""
        self._stopped = True
        await finish_telling(self._soon, bound)

    def cancel(self) -> None:
        """Cancel :meth:`tell_soon`'s tasks (:meth:`stop` past its bound); what was not
        marked yet is told after the next start."""
        self._stopped = True
        for task in list(self._soon):
            task.cancel()
