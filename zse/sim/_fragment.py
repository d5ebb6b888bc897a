"""APS fragmentation and reassembly (ZB 2.2.8.4.5) as the simulator's nodes do it, sans-IO.

An acknowledged unicast whose ASDU does not fit one frame is split into blocks; the first
block's extended header carries the number of blocks, every other block its own number
(ZB 2.2.5.1.8). Blocks go out in windows of apsMaxWindowSize; the receiver answers a window
with an APS acknowledgement whose extended header names the window's first block and has one
bit per block received (ZB 2.2.5.1.8.3), and the sender resends what is missing. Every block is
a frame of its own, NWK- and (when the ASDU is) APS-secured on its own (ZB 4.4.1.1 secures a
frame, not an ASDU; Wireshark decrypts each fragment before it reassembles them).

Here are the sender's window (:class:`Outgoing`) and the receiver's bounded reassembly table
(:class:`Reassembly`), fed decoded headers and the virtual time ``now``; the node
(:mod:`zse.sim._node`) puts frames on the air and keeps the timers.

The spec's SE 5.3.8 ("Fragmentation") text was out of reach. The defaults follow Silicon
Labs' EmberZNet fragmentation plugin and stack configuration, read for facts only: a window of
1 (``EMBER_AF_PLUGIN_FRAGMENTATION_RX_WINDOW_SIZE``, ``SL_ZIGBEE_FRAGMENT_WINDOW_SIZE``; at most
8, ``SL_ZIGBEE_FRAGMENT_MAX_WINDOW_SIZE``, the width of the ack bitfield), no delay between the
blocks of a window (``SL_ZIGBEE_FRAGMENT_DELAY_MS`` 0), blocks as long as one frame holds
(the plugin's ``fragmentLen`` is the stack's maximum APS payload), at most 255 blocks and a
1500-octet transfer (``EMBER_AF_PLUGIN_FRAGMENTATION_BUFFER_SIZE``), a reception abandoned
apsAckWaitDuration x 3 retries (4.8 s) after its last progress, and unused ack bits set to 1
(its ``setFragmentMask``; the ZigBee PRO certification test TP/PRO/BV-43 expects 0xFF and
0xFD). EmberZNet holds 2 incoming transfers (``..._MAX_INCOMING_PACKETS``, at most 10): here
2 per sender and 10 in all.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from zse.security import MIC_LENGTH
from zse.sim import _frames as f
from zse.sim._air import FCS_OCTETS, MAX_PHY_PACKET

__all__ = ["Fragmentation", "Outgoing", "Reassembly", "Received", "payload_room"]

#: blocks a fragmented transmission can have: the first block's block number carries the
#: count in one octet (ZB 2.2.5.1.8.2)
MAX_BLOCKS = 255
#: the ack bitfield's width (ZB 2.2.5.1.8.3), so the largest window
MAX_WINDOW = 8
#: NWK security on every data frame (ZB 4.3.1.1): the auxiliary header with the extended
#: nonce (security control, frame counter, source EUI-64, key sequence number) and the MIC
NWK_SECURITY_OCTETS = 1 + 4 + 8 + 1 + MIC_LENGTH
#: APS security of a data frame or its ack as the simulator sends it (ZB 4.4.1.1): no extended
#: nonce, the 4-octet MIC
APS_SECURITY_OCTETS = 1 + 4 + MIC_LENGTH
#: how long a delivered transfer's last window is remembered, so that a block of it sent again
#: (its ack was lost) is acknowledged again and not delivered again: the APS duplicate
#: rejection's lifetime (TI Z-Stack's 10 s, see :data:`zse.sim._node.DUPLICATE_LIFETIME`), for
#: at most 64 transfers. Any other block with its APS counter begins a new transfer: the
#: sender's 8-bit counter may come round within that time (ZB 2.2.5.1.5)
REMEMBERED_FOR, REMEMBERED = 10.0, 64


@dataclass(frozen=True, slots=True)
class Fragmentation:
    """A node's fragmentation settings (``node.fragmentation``; the defaults are EmberZNet's,
    see the module). ``block_size`` caps a block's octets (None: as many as one frame
    holds); ``window`` is apsMaxWindowSize, which both ends must share (SE uses 1);
    ``interframe_delay`` is apsInterframeDelay, seconds between the blocks of a window;
    ``max_transfer`` bounds an ASDU sent or reassembled; a receiver holds at most
    ``per_source`` unfinished transfers of one sender and ``in_flight`` in all, each dropped
    ``timeout`` seconds after its last new block."""

    block_size: int | None = None
    window: int = 1
    interframe_delay: float = 0.0
    max_transfer: int = 1500
    per_source: int = 2
    in_flight: int = 10
    timeout: float = 4.8

    def __post_init__(self) -> None:
        if self.block_size is not None and self.block_size < 1:
            raise ValueError(f"block_size must be at least 1 octet, not {self.block_size}")
        if not 1 <= self.window <= MAX_WINDOW:
            raise ValueError(f"window must be 1-{MAX_WINDOW} blocks, not {self.window}")
        if self.interframe_delay < 0 or self.timeout <= 0:
            raise ValueError("interframe_delay must be >= 0 and timeout > 0 seconds")
        if self.max_transfer < 1 or self.per_source < 1 or self.in_flight < 1:
            raise ValueError("max_transfer, per_source and in_flight must be at least 1")


def payload_room(mac_header: int, nwk: f.NwkHeader, aps: f.ApsHeader, *, secured: bool) -> int:
    """The ASDU octets one NWK-secured frame holds (aMaxPHYPacketSize, 802.15.4-2006 6.4.1)
    after a MAC header of ``mac_header`` octets and the FCS, ``nwk`` and its security, ``aps``
    (its extended header included) and, when ``secured``, APS security."""
    headers = len(f.encode_nwk(nwk, b"")) + len(f.encode_aps(aps, b""))
    security = NWK_SECURITY_OCTETS + (APS_SECURITY_OCTETS if secured else 0)
    return MAX_PHY_PACKET - FCS_OCTETS - mac_header - headers - security


def block_header(aps: f.ApsHeader, number: int, count: int) -> f.ApsHeader:
    """The header of block ``number`` of ``count`` (ZB 2.2.5.1.8): the first carries the
    number of blocks, the others their own number; all ask for an acknowledgement."""
    if number == 0:
        return replace(aps, ack_request=True, fragmentation=f.FIRST_BLOCK, block=count)
    return replace(aps, ack_request=True, fragmentation=f.OTHER_BLOCK, block=number)


class Outgoing:
    """The sender's side of one fragmented transmission (ZB 2.2.8.4.5.1): the blocks, the
    window being sent (its first block) and which of its blocks were acknowledged."""

    __slots__ = ("acked", "blocks", "first", "window")

    def __init__(self, payload: bytes, block_size: int, window: int) -> None:
        self.blocks = [payload[at : at + block_size] for at in range(0, len(payload), block_size)]
        self.window = window
        self.first = 0
        self.acked = 0

    @property
    def done(self) -> bool:
        """Whether every window was acknowledged."""
        return self.first >= len(self.blocks)

    def pending(self) -> list[int]:
        """The blocks of the current window not acknowledged yet."""
        end = min(self.first + self.window, len(self.blocks))
        return [n for n in range(self.first, end) if not self.acked >> (n - self.first) & 1]

    def acknowledge(self, first: int, bits: int) -> bool:
        """Take an ack of the window starting at block ``first``; False (ignored) if that is
        not the current window."""
        if self.done or first != self.first:
            return False
        self.acked |= bits
        return True

    def advance(self) -> None:
        """On to the next window, once this one is acknowledged."""
        self.first += self.window
        self.acked = 0


@dataclass(frozen=True, slots=True)
class Received:
    """What a block received asks of the node: the window to acknowledge (its first block and
    ack bitfield), the whole ASDU once complete, and why a block was dropped (``invalid``:
    garbage; ``refused``: no room) or that it was a ``duplicate``."""

    ack: tuple[int, int] | None = None
    message: bytes | None = None
    dropped: str | None = None
    duplicate: bool = False


#: what every block of a transfer must share with its first: endpoints, cluster, profile and
#: whether it was APS-encrypted (an insider may not slip a block in clear into a secured ASDU)
Signature = tuple[int | None, int | None, int | None, int | None, bool]
Key = tuple[object, int]  # (sender: EUI-64 or NWK address, APS counter)


@dataclass(slots=True)
class _Transfer:
    signature: Signature
    deadline: float
    count: int | None = None
    blocks: dict[int, bytes] = field(default_factory=dict)
    octets: int = 0


_INVALID, _REFUSED = Received(dropped="invalid"), Received(dropped="refused")


@dataclass(frozen=True, slots=True)
class _Block:
    number: int
    count: int | None  # a first block's count of blocks
    payload: bytes


class Reassembly:
    """A receiver's transfers being put together (ZB 2.2.8.4.5.2), per (sender, APS counter),
    bounded by :class:`Fragmentation`: at most ``per_source`` and ``in_flight`` transfers of
    at most ``max_transfer`` octets, each dropped ``timeout`` after its last new block."""

    def __init__(self) -> None:
        self._transfers: dict[Key, _Transfer] = {}
        # until when remembered, and the blocks of the last window (which may come again)
        self._delivered: OrderedDict[Key, tuple[float, list[_Block]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._transfers)

    @property
    def octets(self) -> int:
        """The octets of blocks held."""
        return sum(transfer.octets for transfer in self._transfers.values())

    def next_deadline(self) -> float | None:
        """When the oldest unfinished transfer is due to be dropped, if any."""
        return min((x.deadline for x in self._transfers.values()), default=None)

    def expire(self, now: float) -> int:
        """Drop the transfers due by ``now``; how many."""
        due = [key for key, transfer in self._transfers.items() if transfer.deadline <= now]
        for key in due:
            del self._transfers[key]
        return len(due)

    def receive(
        self,
        key: Key,
        aps: f.ApsHeader,
        payload: bytes,
        *,
        encrypted: bool,
        now: float,
        config: Fragmentation,
    ) -> Received:
        """Take block ``aps`` (fragmentation sub-field set) of the transfer ``key``."""
        first = aps.fragmentation == f.FIRST_BLOCK
        block = _Block(0, aps.block, payload) if first else _Block(aps.block, None, payload)
        if block.count == 0 or (not first and block.number == 0):
            return _INVALID  # a first block of no blocks; block 0 that is not the first
        transfer = self._transfers.get(key)
        if transfer is None:
            return self._start(key, _signature(aps, encrypted), block, now=now, config=config)
        held = transfer.blocks.get(block.number)  # a block again: other content is garbage
        if (
            transfer.signature != _signature(aps, encrypted)
            or not _fits(transfer, block)
            or held not in (None, payload)
        ):
            return _INVALID
        if held is not None:  # the same again: its ack may have been lost
            return Received(_window_ack(transfer, block.number, config.window), duplicate=True)
        if transfer.octets + len(payload) > config.max_transfer:
            del self._transfers[key]
            return _REFUSED
        return self._store(key, transfer, block, now=now, config=config)

    def _start(
        self, key: Key, signature: Signature, block: _Block, *, now: float, config: Fragmentation
    ) -> Received:
        """The first block heard of a transfer: a block of the last window of one delivered
        lately is acknowledged again; else it must be in the first window (a later one
        belongs to a transfer never begun or dropped), and there must be room."""
        self._forget(now)
        delivered = self._delivered.get(key)
        if delivered is not None:
            if block in delivered[1]:
                return Received((block.number - block.number % config.window, 0xFF), duplicate=True)
            del self._delivered[key]  # the sender's APS counter came round: a new transfer
        if block.number >= config.window:
            return _INVALID
        sender_has = sum(1 for sender, _ in self._transfers if sender == key[0])
        if sender_has >= config.per_source or len(self._transfers) >= config.in_flight:
            return _REFUSED
        if len(block.payload) > config.max_transfer:
            return _REFUSED
        transfer = self._transfers[key] = _Transfer(signature, now + config.timeout)
        return self._store(key, transfer, block, now=now, config=config)

    def _store(
        self, key: Key, transfer: _Transfer, block: _Block, *, now: float, config: Fragmentation
    ) -> Received:
        """Hold a new block; the window's ack once it is whole or its last block came (a
        missing block shows in the bitfield), and the ASDU once every block is held."""
        if block.count is not None:
            transfer.count = block.count
        transfer.blocks[block.number] = block.payload
        transfer.octets += len(block.payload)
        transfer.deadline = now + config.timeout
        ack = _window_ack(transfer, block.number, config.window)
        if len(transfer.blocks) != transfer.count:
            last = min(ack[0] + config.window, transfer.count or MAX_BLOCKS + 1) - 1
            return Received(ack if ack[1] == 0xFF or block.number == last else None)
        del self._transfers[key]
        count = len(transfer.blocks)
        final = [
            _Block(n, count if n == 0 else None, transfer.blocks[n])
            for n in range(count - 1 - (count - 1) % config.window, count)
        ]
        self._delivered[key] = (now + REMEMBERED_FOR, final)
        if len(self._delivered) > REMEMBERED:
            self._delivered.popitem(last=False)
        held = transfer.blocks
        return Received(ack, message=b"".join(held[n] for n in range(len(held))))

    def _forget(self, now: float) -> None:
        """Forget the delivered transfers remembered long enough (oldest first)."""
        for key, (until, _) in list(itertools.islice(self._delivered.items(), REMEMBERED)):
            if until > now:
                break
            del self._delivered[key]


def _signature(aps: f.ApsHeader, encrypted: bool) -> Signature:
    return aps.dst_ep, aps.cluster, aps.profile, aps.src_ep, encrypted


def _fits(transfer: _Transfer, block: _Block) -> bool:
    """Whether ``block`` (a first block: announcing its count) fits what the transfer knows:
    one count, every block below it."""
    count = block.count
    if count is not None:
        if transfer.count not in (None, count):
            return False
        return all(held < count for held in transfer.blocks)
    return transfer.count is None or block.number < transfer.count


def _window_ack(transfer: _Transfer, number: int, window: int) -> tuple[int, int]:
    """The ack of the window block ``number`` is in (ZB 2.2.8.4.5.2): its first block and the
    bitfield, a bit set per block held and for every bit past the window or the last block
    (EmberZNet's rule; TP/PRO/BV-43)."""
    first = number - number % window
    bits = 0
    for offset in range(MAX_WINDOW):
        block = first + offset
        past = offset >= window or (transfer.count is not None and block >= transfer.count)
        if past or block in transfer.blocks:
            bits |= 1 << offset
    return first, bits
