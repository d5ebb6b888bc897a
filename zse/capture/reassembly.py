"""APS fragments put back together as a sniffer sees them (ZB 2.2.8.4.5), sans-IO.

An acknowledged unicast too long for one frame goes as blocks: the first block's extended
header carries the number of blocks, each other its block number, all under the frame's one
APS counter (ZB 2.2.5.1.8). As Wireshark (packet-zbee-aps.c: its reassembly table is keyed on
the packet's addresses, which the NWK layer sets, and on the NWK source and APS counter; newer
versions add the source PAN ID), a transfer here is its PAN ID, NWK source and destination and
APS counter. A block already held is kept as first seen, its resends noted (Wireshark lists
them among the transfer's frames); the block that completes a transfer gets the payloads
joined in block order, and the transfer is done with (a block seen after that starts a new
one, as in Wireshark).

Wireshark keeps what never completes for the whole capture; here memory is bounded: at most
:data:`MAX_TRANSFERS` transfers and :data:`MAX_OCTETS` octets (a resend noted counts as 8) are
held, the oldest going first, and a transfer whose last block is :data:`MAX_AGE_NS` of capture
time or :data:`MAX_FRAMES` frames behind is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_AGE_NS", "MAX_FRAMES", "MAX_OCTETS", "MAX_TRANSFERS", "Reassembled", "Reassembly"]

MAX_TRANSFERS = 64
#: 64 transfers of 255 blocks of a full frame's payload would be ~2 MB; a hostile capture's
#: oversized records are bounded by this instead
MAX_OCTETS = 1 << 20
MAX_AGE_NS = 60 * 1_000_000_000  # apsFragmentationReassemblyTimeout is seconds, not a minute
MAX_FRAMES = 10_000
_FIRST = 1
_NOTED = 8

#: (source PAN ID, NWK source, NWK destination, APS counter)
TransferKey = tuple[int | None, int | None, int | None, int | None]


@dataclass(slots=True)
class Reassembled:
    """A transfer put back together: its blocks' payloads in block order."""

    blocks: int
    #: the frames that carried a block, in block order (a block's resends after it)
    frames: tuple[int, ...]
    payload: bytes = field(repr=False)

    def fields(self) -> dict[str, Any]:
        """JSON-ready fields: length, number of blocks, the frames that carried them."""
        return {"length": len(self.payload), "blocks": self.blocks, "frames": list(self.frames)}


@dataclass(slots=True)
class _Transfer:
    count: int | None = None  #: the number of blocks, once the first block is seen
    blocks: dict[int, bytes] = field(default_factory=dict)  #: number -> payload
    frames: dict[int, list[int]] = field(default_factory=dict)  #: number -> the frames
    octets: int = 0
    last_ns: int = 0
    last_frame: int = 0


class Reassembly:
    """The transfers under way, in the order their last block was seen."""

    def __init__(self) -> None:
        self._transfers: dict[TransferKey, _Transfer] = {}
        self.octets = 0  #: payload octets held

    def __len__(self) -> int:
        return len(self._transfers)

    def add(  # noqa: PLR0917 - one block's facts
        self,
        key: TransferKey,
        fragmentation: int,
        block: int,
        payload: bytes,
        frame: int,
        time_ns: int,
    ) -> Reassembled | None:
        """Add the block of ``key`` whose extended header has ``fragmentation`` and block
        number octet ``block``, seen in ``frame`` at ``time_ns``: the whole once this block
        completes the transfer, else None."""
        self._forget(frame, time_ns)
        transfers = self._transfers
        transfer = transfers.pop(key, None)  # back in as the newest
        if transfer is None:
            transfer = _Transfer()
        number = 0 if fragmentation == _FIRST else block
        if fragmentation == _FIRST:
            transfer.count = block
        held = transfer.frames.get(number)
        if held is None:
            transfer.blocks[number] = payload
            transfer.frames[number] = [frame]
            size = len(payload)
        else:
            held.append(frame)
            size = _NOTED
        transfer.octets += size
        self.octets += size
        transfer.last_ns, transfer.last_frame = time_ns, frame
        count = transfer.count
        blocks = transfer.blocks
        if count is not None and count > 1 and all(n in blocks for n in range(count)):
            self.octets -= transfer.octets
            frames = tuple(f for n in range(count) for f in transfer.frames[n])
            return Reassembled(count, frames, b"".join(blocks[n] for n in range(count)))
        transfers[key] = transfer
        while len(transfers) > MAX_TRANSFERS or self.octets > MAX_OCTETS:
            self._drop(next(iter(transfers)))
        return None

    def _forget(self, frame: int, time_ns: int) -> None:
        """Drop the transfers whose last block is too far behind (capture time may go back:
        each is looked at)."""
        stale = [
            key
            for key, transfer in self._transfers.items()
            if time_ns - transfer.last_ns > MAX_AGE_NS or frame - transfer.last_frame > MAX_FRAMES
        ]
        for key in stale:
            self._drop(key)

    def _drop(self, key: TransferKey) -> None:
        self.octets -= self._transfers.pop(key).octets
