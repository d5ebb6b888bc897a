"""The random draws of the air's faults, one stream per directed link: the same seed gives
the same frames lost, whatever order independent senders put their frames on the air in.

A fault's fate is a function of the air's seed, the sender's and the receiver's EUI-64, the
kind of fault and the frame's place in the link's own history, never of what other nodes
sent in between:

- a frame addressed to one node (a unicast, with or without a MAC acknowledgement): its
  ``n``-th transmission attempt from A to B (retries count; frames A sends to other nodes do
  not);
- a broadcast (destination 0xFFFF, or none): the ``n``-th broadcast A sends, drawn apart for
  each receiver, so that a broadcast still meets each receiver's fate on its own.

Each attempt gives one 64-bit value per receiver, and each kind of fault (loss, lost
acknowledgement, reorder delay, duplicate) its own uniform number from that value: which
faults were drawn for an attempt does not shift the others. The streams are SplitMix64
(Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014):
a 64-bit state stepped by a fixed odd constant and scrambled by a bijective mixer, seeded
from a BLAKE2b digest of (seed, EUI-64s) rather than Python's ``hash`` (salted per process).
A stream is one integer, made the first time its link draws: a perfect air keeps none, and a
broadcast costs one per sender, not one per sender and receiver.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import zigpy.types as t

__all__ = ["ACK_LOSS", "DUPLICATE", "LOSS", "REORDER", "FaultDraws", "chance"]

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's step: 2^64 / golden ratio, odd
_UNIT = 1.0 / (1 << 53)

#: what each kind of fault mixes into an attempt's value (fixed odd 64-bit constants: the
#: first 64 bits of the fractional parts of the square roots of 2, 3, 5 and 7)
LOSS = 0x6A09E667F3BCC909
ACK_LOSS = 0xBB67AE8584CAA73B
REORDER = 0x3C6EF372FE94F82B
DUPLICATE = 0xA54FF53A5F1D36F1


class _Node(Protocol):
    ieee: t.EUI64


def _mix(z: int) -> int:
    """SplitMix64's output function: a bijection of 64-bit integers whose every output bit
    depends on every input bit."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def chance(value: int, kind: int) -> float:
    """The uniform number in [0, 1) that an attempt's ``value`` gives the fault ``kind``."""
    return (_mix(value ^ kind) >> 11) * _UNIT


class FaultDraws:
    """The fault streams of one air, from its seed (see the module's docstring)."""

    __slots__ = ("_broadcasts", "_ids", "_links", "_seed")

    def __init__(self, seed: object) -> None:
        self._seed = str(seed).encode()
        self._links: dict[tuple[_Node, _Node], int] = {}
        self._broadcasts: dict[_Node, int] = {}
        self._ids: dict[_Node, int] = {}

    def _digest(self, tag: bytes, *nodes: _Node) -> int:
        data = b"\0".join((b"zse.sim faults", self._seed, tag, *(bytes(n.ieee) for n in nodes)))
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")

    def unicast(self, sender: _Node, receiver: _Node) -> int:
        """The value of the next attempt of a frame from ``sender`` addressed to ``receiver``."""
        key = (sender, receiver)
        state = self._links.get(key)
        if state is None:
            state = self._digest(b"link", sender, receiver)
        state = self._links[key] = (state + _GAMMA) & _MASK
        return _mix(state)

    def broadcast(self, sender: _Node) -> int:
        """The value of ``sender``'s next broadcast, to give each receiver with :meth:`to`."""
        state = self._broadcasts.get(sender)
        if state is None:
            state = self._digest(b"broadcast", sender)
        state = self._broadcasts[sender] = (state + _GAMMA) & _MASK
        return _mix(state)

    def to(self, value: int, receiver: _Node) -> int:
        """A broadcast's :meth:`broadcast` value as ``receiver`` meets it."""
        ident = self._ids.get(receiver)
        if ident is None:
            ident = self._ids[receiver] = self._digest(b"receiver", receiver)
        return _mix(value ^ ident)
