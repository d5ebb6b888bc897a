"""Indirect transmission to sleepy end devices (IEEE 802.15.4-2006 7.5.6.3), sans-IO.

A device whose receiver is off when idle (MAC capability bit 3 clear, 7.3.1.2; a ZigBee
sleepy end device) hears nothing between its polls. Its parent holds the frames for it in a
transaction queue (:class:`IndirectQueue`) until it polls with a MAC Data Request command
(7.3.4): the parent's acknowledgement of the poll carries the frame-pending bit (7.2.1.1.3)
when it holds a frame, and it then sends the oldest one, its own frame-pending bit set when
more follow. A frame not polled within macTransactionPersistenceTime is dropped
(TRANSACTION_EXPIRED, 7.1.1.1.3). The device's side is :class:`PollSchedule`: when its next
poll is due. Time is always an argument (``now``, virtual seconds); the asyncio shells are
``zse.sim._parent`` (the parent) and ``zse.sim._node`` (the device).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "FAST_POLL_INTERVAL",
    "FAST_POLL_TIMEOUT",
    "INDIRECT_PER_CHILD",
    "INDIRECT_TOTAL",
    "MAX_FRAME_TOTAL_WAIT",
    "TRANSACTION_PERSISTENCE_TIME",
    "Held",
    "IndirectQueue",
    "PollSchedule",
    "QueueFull",
]

#: One symbol of the 2.4 GHz O-QPSK PHY (62.5 ksymbol/s, 802.15.4-2006 6.5.1), seconds.
SYMBOL = 16e-6
#: macTransactionPersistenceTime (802.15.4-2006 Table 86, default 0x01F4 unit periods; a unit
#: period in a nonbeacon PAN is aBaseSuperframeDuration, 960 symbols): 7.68 s at 2.4 GHz.
TRANSACTION_PERSISTENCE_TIME = 0x01F4 * 960 * SYMBOL
#: macMaxFrameTotalWaitTime (802.15.4-2006 7.4.2, the formula of Table 86 with the PIB
#: defaults macMinBE 3, macMaxBE 5, macMaxCSMABackoffs 4, and phyMaxFrameDuration 266
#: symbols): (8 + 16 + 31 x 2) x 20 + 266 = 1986 symbols, how long a device that polled keeps
#: its receiver on for the frame its parent announced.
MAX_FRAME_TOTAL_WAIT = 1986 * SYMBOL
#: Frames a parent holds for one child, and for all its children: TI Z-Stack holds
#: NWK_INDIRECT_MSG_MAX_PER (3) per device (nwk_globals.h); the total is the simulator's own.
INDIRECT_PER_CHILD = 3
INDIRECT_TOTAL = 16
#: A sleepy device's poll interval by default, seconds: the Poll Control cluster's default
#: LongPollInterval (ZCL r7 3.16, the server's attributes: 0x14 quarter-seconds). Below the
#: 7.68 s a parent holds a frame, so every frame sent to the device reaches it (TI Z-Stack's
#: POLL_RATE is 1 s; EmberZNet's long poll is longer, its short poll the one that must beat
#: 7.68 s).
DEFAULT_POLL_INTERVAL = 5.0
#: The fast ("short") poll after the device sent a frame, while an answer may come: every
#: FAST_POLL_INTERVAL (the Poll Control cluster's default ShortPollInterval, 2 quarter-seconds)
#: for FAST_POLL_TIMEOUT seconds (EmberZNet's end-device-support wake timeout, 3 s; TI
#: Z-Stack waits APSC_ACK_WAIT_DURATION_POLLED, 3 s, for a polled device's answer).
FAST_POLL_INTERVAL = 0.5
FAST_POLL_TIMEOUT = 3.0


class QueueFull(Exception):
    """No room for one more transaction (TRANSACTION_OVERFLOW, 802.15.4-2006 7.1.1.1.3)."""


@dataclass(eq=False)
class Held:
    """One frame held for a child: the MAC payload (a secured NWK frame), when it expires, the
    MAC sequence number of its first transmission (kept for a retransmission, 7.5.6.4.3) and
    whatever the shell attaches (its sender's future, its expiry timer)."""

    frame: bytes = field(repr=False)
    expires: float
    seq: int | None = None
    in_flight: bool = False
    waiter: Any = field(default=None, repr=False)
    timer: Any = field(default=None, repr=False)


class IndirectQueue:
    """A parent's transaction queue: frames held per child short address, oldest first,
    at most ``per_child`` for one child and ``total`` in all."""

    __slots__ = ("_held", "_size", "per_child", "total")

    def __init__(self, *, per_child: int = INDIRECT_PER_CHILD, total: int = INDIRECT_TOTAL) -> None:
        if per_child < 1 or total < 1:
            raise ValueError(f"queue bounds must be at least 1, not {per_child} and {total}")
        self.per_child = per_child
        self.total = total
        self._held: dict[int, deque[Held]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def held_for(self, child: int) -> int:
        """How many frames are held for ``child``."""
        queue = self._held.get(child)
        return 0 if queue is None else len(queue)

    def children(self) -> list[int]:
        """The children frames are held for."""
        return list(self._held)

    def hold(self, child: int, held: Held) -> None:
        """Queue ``held`` for ``child``; :class:`QueueFull` (nothing queued) past a bound."""
        count = self.held_for(child)
        if count >= self.per_child:
            raise QueueFull(f"{count} frames held for 0x{child:04X}, at most {self.per_child}")
        if self._size >= self.total:
            raise QueueFull(f"{self._size} frames held in all, at most {self.total}")
        self._held.setdefault(child, deque()).append(held)
        self._size += 1

    def pending(self, child: int) -> bool:
        """Whether a frame is held for ``child`` (the acknowledgement's frame-pending bit)."""
        return child in self._held

    def first(self, child: int) -> Held | None:
        """The oldest frame held for ``child`` (left in the queue until it is delivered)."""
        queue = self._held.get(child)
        return None if queue is None else queue[0]

    def more_after(self, child: int, held: Held) -> bool:
        """Whether frames other than ``held`` are held for ``child`` (its frame-pending bit)."""
        queue = self._held.get(child)
        return queue is not None and any(other is not held for other in queue)

    def remove(self, child: int, held: Held) -> bool:
        """Take ``held`` out of ``child``'s queue (delivered or expired); False if not there."""
        queue = self._held.get(child)
        if queue is None or held not in queue:
            return False
        queue.remove(held)
        self._size -= 1
        if not queue:
            del self._held[child]
        return True

    def drop(self, child: int) -> list[Held]:
        """Every frame held for ``child``, taken out (the child left)."""
        queue = self._held.pop(child, None)
        if queue is None:
            return []
        self._size -= len(queue)
        return list(queue)


class PollSchedule:
    """When a sleepy device polls next: every ``interval`` seconds, every ``fast_interval``
    for ``fast_timeout`` seconds after it sent a frame, and at once while its parent says more
    frames are pending."""

    __slots__ = ("fast_interval", "fast_timeout", "fast_until", "interval", "next_at")

    def __init__(
        self,
        now: float,
        *,
        interval: float = DEFAULT_POLL_INTERVAL,
        fast_interval: float = FAST_POLL_INTERVAL,
        fast_timeout: float = FAST_POLL_TIMEOUT,
    ) -> None:
        self.interval = interval
        self.fast_interval = fast_interval
        self.fast_timeout = fast_timeout
        self.fast_until = now
        self.next_at = now + interval

    def polled(self, now: float) -> None:
        """A poll goes now: the next one after the interval in force."""
        fast = now < self.fast_until
        self.next_at = now + (self.fast_interval if fast else self.interval)

    def sent(self, now: float) -> None:
        """The device sent a frame now: fast poll for a while, the next poll soon."""
        self.fast_until = now + self.fast_timeout
        self.next_at = min(self.next_at, now + self.fast_interval)

    def more(self, now: float) -> None:
        """The frame just received had its frame-pending bit set: poll again at once."""
        self.next_at = min(self.next_at, now)
