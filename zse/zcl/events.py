"""Outcomes offered to applications both as callbacks and as an async iterator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

__all__ = ["EventStream"]

E = TypeVar("E")


class EventStream(Generic[E]):
    """Fan one stream of events out to zigpy-style listeners and async iterators."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[E], None]] = []
        self._queues: list[asyncio.Queue[E]] = []

    def on_event(self, listener: Callable[[E], None]) -> Callable[[], None]:
        """Call ``listener`` with every event; returns a function that removes it."""
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

    def emit(self, event: E) -> None:
        """Deliver ``event`` to every listener and iterator."""
        for listener in list(self._listeners):
            listener(event)
        for queue in self._queues:
            queue.put_nowait(event)
