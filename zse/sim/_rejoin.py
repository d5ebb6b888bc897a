"""The Trust Center's pending rejoin claims (ZB 3.6.1.4.2, 4.6.3.6), sans-IO.

A rejoin from a new short address proves nothing about its sender (a Trust Center rejoin is
unsecured; a secured one only shows the network key, which every insider holds), so the Trust
Center notes it as a *claim* and moves the device once a frame its link key secures arrives
from that address. Claims compete: several devices may be claimed at one address (an insider
may claim the address first, as itself or as its victim), and the proof, not the order of
the claims, decides among them. Memory stays bounded: at most :data:`REJOIN_CLAIMS_PER_DEVICE`
addresses per claimed device (the oldest claim dropped), and only devices the Trust Center
shares a link key with are claimed, so at most that many per such device in all.
"""

from __future__ import annotations

import zigpy.types as t

__all__ = ["REJOIN_CLAIMS_PER_DEVICE", "REJOIN_PROOF_WINDOW", "RejoinClaims"]

#: How long (virtual seconds) a Trust Center rejoin from a new short address waits for the
#: device's proof (a frame secured with its link key from there) before it is forgotten.
REJOIN_PROOF_WINDOW = 600.0
#: The most addresses one device is claimed at, pending; a further claim drops the oldest.
REJOIN_CLAIMS_PER_DEVICE = 4


class RejoinClaims:
    """Rejoin claims awaiting their device's proof: (address, EUI-64) -> when the claim lapses,
    oldest first. Time is an argument (``now``, virtual seconds)."""

    __slots__ = ("_lapse", "per_device", "window")

    def __init__(
        self, *, window: float = REJOIN_PROOF_WINDOW, per_device: int = REJOIN_CLAIMS_PER_DEVICE
    ) -> None:
        if per_device < 1:
            raise ValueError(f"per_device must be at least 1, not {per_device}")
        self.window = window
        self.per_device = per_device
        self._lapse: dict[tuple[int, t.EUI64], float] = {}

    def note(self, nwk: int, ieee: t.EUI64, now: float) -> None:
        """Claim ``ieee`` at ``nwk`` until ``now`` + :attr:`window` (a claim made again is
        renewed, and becomes the newest). Lapsed claims are forgotten, and the oldest of
        ``ieee``'s claims beyond :attr:`per_device`."""
        self._lapse = {claim: until for claim, until in self._lapse.items() if until > now}
        self._lapse.pop((nwk, ieee), None)
        self._lapse[nwk, ieee] = now + self.window
        mine = [claim for claim in self._lapse if claim[1] == ieee]
        for claim in mine[: max(0, len(mine) - self.per_device)]:
            del self._lapse[claim]

    def claimants(self, nwk: int, now: float) -> tuple[t.EUI64, ...]:
        """The devices claimed at ``nwk`` whose claims have not lapsed, oldest claim first."""
        return tuple(ieee for (at, ieee), until in self._lapse.items() if at == nwk and until > now)

    def settle(self, nwk: int, ieee: t.EUI64) -> None:
        """``ieee`` is now at ``nwk`` (it proved its claim, or rejoined where it was): every
        other claim of that address, and of ``ieee`` anywhere, is void."""
        self._lapse = {
            (at, who): until
            for (at, who), until in self._lapse.items()
            if at != nwk and who != ieee
        }

    def forget(self, ieee: t.EUI64) -> None:
        """Drop ``ieee``'s claims (the Trust Center forgot the device)."""
        self._lapse = {claim: until for claim, until in self._lapse.items() if claim[1] != ieee}

    def clear(self) -> None:
        """Drop every claim."""
        self._lapse.clear()

    def at(self, nwk: int) -> tuple[t.EUI64, ...]:
        """The devices claimed at ``nwk``, lapsed or not, oldest claim first."""
        return tuple(ieee for at, ieee in self._lapse if at == nwk)

    def __len__(self) -> int:
        """The claims held (a lapsed one until the next :meth:`note` drops it)."""
        return len(self._lapse)

    def __repr__(self) -> str:
        return f"RejoinClaims({len(self._lapse)} claims)"
