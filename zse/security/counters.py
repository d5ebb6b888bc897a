"""Incoming frame counters per sender: replay rejection (ZB 4.3.1.2 steps 5 and 8, 4.4.1.2).

A receiver keeps, for each key (the network key of one key sequence number, or one link key),
the next frame counter it accepts from each sender. A frame whose counter is below it is
stale: a replay, dropped before any decryption. The counter moves on only after the frame's
MIC has verified, so a forged frame cannot push a sender's counter forward.
"""

from __future__ import annotations

from zse.errors import StaleFrameCounter

__all__ = ["IncomingCounters"]


class IncomingCounters:
    """The next acceptable frame counter from each sender (by EUI-64), for one key."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def check(self, source: int, counter: int) -> None:
        """Raise :class:`~zse.errors.StaleFrameCounter` if ``counter`` from ``source`` is
        below the next one expected (ZB 4.3.1.2 step 5)."""
        expected = self._next.get(source)
        if expected is not None and counter < expected:
            raise StaleFrameCounter(
                f"frame counter {counter} from {source:016x} is stale: {expected} or above expected"
            )

    def accept(self, source: int, counter: int) -> None:
        """Record a verified frame: the next acceptable counter is ``counter + 1`` (step 8).

        Raises :class:`~zse.errors.StaleFrameCounter` like :meth:`check`.
        """
        self.check(source, counter)
        self._next[source] = counter + 1

    def expected(self, source: int) -> int | None:
        """The lowest counter accepted next from ``source``, or ``None`` (never heard)."""
        return self._next.get(source)

    def __len__(self) -> int:
        return len(self._next)

    def __repr__(self) -> str:
        return f"IncomingCounters({len(self._next)} senders)"
