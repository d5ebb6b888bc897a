"""Inter-PAN message fragments (sans-IO): a ZCL frame longer than one inter-PAN frame.

Inter-PAN has no APS fragmentation (SE B.3). The format here is the one of Silicon Labs'
inter-PAN plugin ("IPMF", inter-PAN message fragment; read for facts in its ``interpan.h``): the
payload of a unicast inter-PAN frame, after the stub APS header (and inside APS security when
the frame is secured), is

- a fragment: control ``0x00``, index (u8, from 0), count (u8), length (u8), then ``length``
  octets of the message;
- a fragment response: control ``0x80``, index (u8), status (``0x00`` success, ``0x01``
  failure).

A ZCL frame can start with ``0x00`` as well (a global command, client to server), so a payload
is a fragment only if its length octet matches (Silicon Labs checks the same way), and a
response only if it is exactly 3 octets. The sender sends one fragment at a time and the next
when its response comes (there is no APS acknowledgement on inter-PAN): :class:`FragmentSender`.
The receiver (:class:`Reassembler`) keeps at most one message per partner and
``max_partners`` partners, at most ``max_length`` octets each, and forgets a message whose next
fragment does not come within ``timeout`` seconds; what it refuses it answers with a failure
response and counts in :attr:`Reassembler.counts`. A fragment sent again because its response
was lost is answered success and not taken twice, the last one of a message included: the
receiver remembers each partner's last completed fragment for ``timeout`` seconds (at most
``max_partners`` of them), so a sender whose final response was lost does not see its
delivered message refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final

from zse.interpan._codec import MAX_REASSEMBLED_LENGTH

__all__ = [
    "FRAGMENT_OVERHEAD",
    "FragmentFailed",
    "FragmentSender",
    "Reassembler",
    "fragment_response",
    "is_fragment",
    "is_fragment_response",
    "split",
]

LOGGER = logging.getLogger(__name__)

_FRAGMENT: Final = 0x00
_RESPONSE: Final = 0x80
SUCCESS: Final = 0x00
FAILURE: Final = 0x01
#: Control, index, count, length.
FRAGMENT_OVERHEAD: Final = 4
_RESPONSE_LENGTH: Final = 3


def is_fragment(payload: bytes) -> bool:
    """Whether ``payload`` is a fragment (its length octet matches)."""
    return (
        len(payload) >= FRAGMENT_OVERHEAD
        and payload[0] == _FRAGMENT
        and payload[3] == len(payload) - FRAGMENT_OVERHEAD
    )


def is_fragment_response(payload: bytes) -> bool:
    """Whether ``payload`` is a fragment response."""
    return len(payload) == _RESPONSE_LENGTH and payload[0] == _RESPONSE


def fragment_response(index: int, ok: bool) -> bytes:
    """The response to fragment ``index``."""
    return bytes((_RESPONSE, index, SUCCESS if ok else FAILURE))


def split(message: bytes, size: int) -> list[bytes]:
    """``message`` as fragments of at most ``size`` octets of message each."""
    if not 1 <= size <= 0xFF:
        raise ValueError("a fragment carries 1-255 octets")
    count = -(-len(message) // size)
    if not message or count > 0xFF:
        raise ValueError(f"a message of {len(message)} octets cannot be cut into 1-255 fragments")
    return [
        bytes((_FRAGMENT, index, count, len(chunk))) + chunk
        for index, chunk in enumerate(message[i : i + size] for i in range(0, len(message), size))
    ]


class FragmentFailed(OSError):
    """A fragmented message was not delivered: ``reason`` is ``"refused"`` (a failure
    response) or ``"no response"``; ``index`` the fragment it stopped at."""

    def __init__(self, reason: str, index: int) -> None:
        super().__init__(f"inter-PAN fragment {index}: {reason}")
        self.reason = reason
        self.index = index


class FragmentSender:
    """One fragmented message to one partner: one fragment in flight, each sent at most
    ``attempts`` times, ``timeout`` seconds apart."""

    def __init__(
        self, message: bytes, *, size: int, timeout: float = 2.0, attempts: int = 3
    ) -> None:
        self.fragments = split(message, size)
        self.timeout = timeout
        self.attempts = attempts
        self.index = 0
        self.done = False
        self._sent = 0
        self._deadline: float | None = None

    def start(self, now: float) -> bytes:
        """The first fragment."""
        return self._send(now)

    def _send(self, now: float) -> bytes:
        self._sent += 1
        self._deadline = now + self.timeout
        return self.fragments[self.index]

    def next_deadline(self) -> float | None:
        """When to send the fragment in flight again (None when done)."""
        return None if self.done else self._deadline

    def receive(self, response: bytes, now: float) -> bytes | None:
        """A fragment response: the next fragment, or None (done, or not ours: an old index).
        :class:`FragmentFailed` on a failure response."""
        index, status = response[1], response[2]
        if self.done or index != self.index:
            return None
        if status != SUCCESS:
            self.done = True
            raise FragmentFailed("refused", index)
        self.index += 1
        self._sent = 0
        if self.index == len(self.fragments):
            self.done = True
            self._deadline = None
            return None
        return self._send(now)

    def handle_timeout(self, now: float) -> bytes:
        """The fragment to send again; :class:`FragmentFailed` after ``attempts`` sends."""
        if self._sent >= self.attempts:
            self.done = True
            raise FragmentFailed("no response", self.index)
        return self._send(now)


@dataclass
class _Partial:
    count: int
    data: bytearray
    next_index: int
    deadline: float


@dataclass
class Reassembler:
    """Puts fragmented messages together, one per partner (see the module docstring)."""

    max_partners: int = 4
    max_length: int = MAX_REASSEMBLED_LENGTH
    timeout: float = 5.0
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("completed", "expired", "refused_full", "refused_length", "out_of_order"), 0
        )
    )
    _partials: dict[bytes, _Partial] = field(default_factory=dict)
    #: Per source, the last fragment of its last completed message and until when a repeat
    #: of it is answered success (oldest first, at most ``max_partners``).
    _completed: dict[bytes, tuple[bytes, float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._partials)

    def next_deadline(self) -> float | None:
        """When the oldest unfinished message expires."""
        return min((p.deadline for p in self._partials.values()), default=None)

    def holds(self, source: bytes, now: float) -> bool:
        """Whether a message from ``source`` is being put together (and not overdue)."""
        self.handle_timeout(now)
        return source in self._partials

    def handle_timeout(self, now: float) -> int:
        """Forget the messages whose next fragment is overdue; how many."""
        late = [src for src, p in self._partials.items() if p.deadline <= now]
        for src in late:
            del self._partials[src]
        self.counts["expired"] += len(late)
        for src in [s for s, (_, until) in self._completed.items() if until <= now]:
            del self._completed[src]
        return len(late)

    def receive(self, source: bytes, fragment: bytes, now: float) -> tuple[bytes, bytes | None]:
        """A fragment from ``source``: the response to send, and the whole message once its
        last fragment came (else None)."""
        self.handle_timeout(now)
        index, count, chunk = fragment[1], fragment[2], fragment[FRAGMENT_OVERHEAD:]
        if count == 0 or index >= count:
            return self._refuse(source, index, "out_of_order")
        partial = self._partial(source, fragment, now)
        if isinstance(partial, tuple):
            return partial
        if len(partial.data) + len(chunk) > self.max_length:
            return self._refuse(source, index, "refused_length")
        partial.data += chunk
        partial.next_index += 1
        partial.deadline = now + self.timeout
        if partial.next_index < partial.count:
            return fragment_response(index, ok=True), None
        del self._partials[source]
        self.counts["completed"] += 1
        self._completed.pop(source, None)
        self._completed[source] = (bytes(fragment), now + self.timeout)
        while len(self._completed) > self.max_partners:
            del self._completed[next(iter(self._completed))]
        return fragment_response(index, ok=True), bytes(partial.data)

    def _partial(self, source: bytes, fragment: bytes, now: float) -> _Partial | tuple[bytes, None]:
        """The message fragment ``index`` continues, or the response that refuses it (or
        answers a repeat)."""
        index, count = fragment[1], fragment[2]
        partial = self._partials.get(source)
        if index == 0:
            if partial is None and len(self._partials) >= self.max_partners:
                self.counts["refused_full"] += 1
                return fragment_response(index, ok=False), None
            partial = _Partial(count, bytearray(), 0, now + self.timeout)
            self._partials[source] = partial
            return partial
        if self._repeated(source, partial, fragment):
            return fragment_response(index, ok=True), None  # our response was lost
        if partial is None or count != partial.count or index != partial.next_index:
            return self._refuse(source, index, "out_of_order")
        return partial

    def _repeated(self, source: bytes, partial: _Partial | None, fragment: bytes) -> bool:
        """Whether ``fragment`` is one already taken: the last one taken of the message in
        progress, or the last one of the message ``source`` completed last."""
        if partial is None:
            return self._completed.get(source, (b"",))[0] == fragment
        return fragment[2] == partial.count and fragment[1] == partial.next_index - 1

    def _refuse(self, source: bytes, index: int, reason: str) -> tuple[bytes, None]:
        self._partials.pop(source, None)
        self.counts[reason] += 1
        LOGGER.debug("inter-PAN fragment %d refused: %s", index, reason)
        return fragment_response(index, ok=False), None
