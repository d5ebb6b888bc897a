"""The simulated 802.15.4 air: channels, delivery, faults, air time and capture.

Every node on a channel hears every other unless the air's topology says otherwise
(:meth:`Medium.out_of_range`): then a frame reaches only the nodes in range of its sender, and
routers relay what others cannot reach (ZB 3.6.3, :mod:`zse.sim._route`). The MAC
address filter of IEEE 802.15.4-2006 7.5.6.2 decides which nodes accept a frame. Unicast
frames that request an acknowledgement are retried up to ``mac_retries`` times (macMaxFrameRetries,
7.4.2), each attempt on the air; the receiver of an attempt that arrives answers with a MAC
acknowledgement frame (7.2.2.3), on the air and in the capture, aTurnaroundTime after the frame
when air time is modelled. A lost attempt is retried; so is a received one whose acknowledgement
is lost (the ``ack_loss`` fault): the receiver's MAC then gets the same frame again and drops it
(duplicate detection, see ``zse.sim._node``), and when every acknowledgement is lost the send
fails although the frame arrived.

A sleepy end device (receiver off when idle, :mod:`zse.sim._indirect`) hears a frame only in
the windows its MAC opens (a poll, its own send): the air neither delivers nor acknowledges a
frame it sends while the device sleeps (:attr:`AirStats.asleep`). The acknowledgement of a
Data Request carries the frame-pending bit its receiver (the parent) sets (7.2.1.1.3).

A radio sends its frames one after the other, so frames from one sender arrive in the order
sent, also when sent at one virtual instant (the air without air time): asyncio runs timers due
at one time in no set order, so each delivery's timer hands over the oldest frame its sender
has due at that instant, not its own (:meth:`Medium._deliver_next`). The timers themselves,
and so the order of deliveries against MAC confirmations and other timers, are as before.
"""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import asyncio
import bisect
import collections
import itertools
import math
import os
import random
import stat
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

import zigpy.exceptions
import zigpy.types as t

from zse.pcap import PcapWriter
from zse.security.keytable import KeyTableEntry, format_key_table
from zse.sim._draws import ACK_LOSS, DUPLICATE, LOSS, REORDER, FaultDraws, chance
from zse.sim._frames import (
    BROADCAST_PAN,
    BROADCAST_SHORT,
    MAC_CMD_DATA_REQUEST,
    MAC_COMMAND,
    MAC_DATA,
    MacHeader,
    decode_mac,
)

__all__ = ["AirStats", "Faults", "Medium", "Station", "Transmission"]

# 250 kbit/s O-QPSK PHY (802.15.4-2006 6.5): 32 us per octet; SHR (5) + PHR (1) precede the PSDU.
OCTET_TIME = 32e-6
PHY_OVERHEAD_OCTETS = 6
ACK_WAIT = 864e-6  # macAckWaitDuration at 2.4 GHz (54 symbols)
TURNAROUND = 192e-6  # aTurnaroundTime (12 symbols), from a frame to its acknowledgement
#: how long after a delivery the ``duplicate`` fault's copy arrives: later than the receiver's
#: MAC keeps the frame's sequence number for duplicate detection (``MAC_DUPLICATE_LIFETIME`` of
#: ``zse.sim._node``), so the copy is one its MAC cannot tell from a new frame
DUPLICATE_GAP = 0.05
MAX_PHY_PACKET = 127  # aMaxPHYPacketSize (802.15.4-2006 6.4.1): the largest PSDU, FCS included
FCS_OCTETS = 2


@dataclass(frozen=True, kw_only=True)
class Faults:
    """Fault settings for a link (or the whole air). All default to a perfect link.

    ``loss``: probability that one transmission attempt is lost. ``duplicate``: probability
    that a delivered frame is delivered (and captured) a second time. ``delay``: seconds added
    to every delivery. ``reorder``: each delivery is delayed by a further uniform 0..reorder
    seconds, so frames sent close together overtake each other. Delay and reorder are latency
    above the MAC (a multi-hop path, a busy stack): the receiver's MAC acknowledges the frame
    when it ends, so the sender's send completes then; only the hand-over to its NWK layer
    waits. ``ack_loss``: probability that the MAC acknowledgement of an attempt that arrived
    is lost (802.15.4-2006 7.5.6.4.3): the frame is delivered but the sender retries it, and
    reports the send failed when every attempt's acknowledgement is lost.
    """

    loss: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    reorder: float = 0.0
    ack_loss: float = 0.0

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "ack_loss"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be a probability in [0, 1], got {value}")
        for name in ("delay", "reorder"):
            if getattr(self, name) < 0:
                raise ValueError(f"Faults.{name} must be non-negative seconds")


PERFECT = Faults()


@dataclass
class AirStats:
    """Counters of what happened on the air (every attempt counts as a transmission; the MAC
    acknowledgements are counted apart)."""

    transmitted: int = 0
    acknowledgements: int = 0
    delivered: int = 0
    lost: int = 0
    #: MAC acknowledgements sent (on the air, in :attr:`acknowledgements`) that the sender
    #: missed (the ``ack_loss`` fault)
    acks_lost: int = 0
    duplicated: int = 0
    #: not delivered because of a partition, a silent node or a receiver out of the sender's
    #: range (:meth:`Medium.out_of_range`)
    blocked: int = 0
    #: frames refused before the air: the PSDU would exceed aMaxPHYPacketSize (127 octets)
    too_long: int = 0
    #: frames a sleepy end device did not hear: sent while its receiver was off (per attempt)
    asleep: int = 0
    bytes: int = 0
    #: NWK frames parsed and NWK frames decrypted (MIC checked): once per frame on the air and
    #: network key, however many nodes hear it (the nodes share the result)
    nwk_decodes: int = 0
    nwk_decrypts: int = 0

    @property
    def frames(self) -> int:
        """Every frame on the air (and in a capture): transmissions and acknowledgements."""
        return self.transmitted + self.acknowledgements


class Station(Protocol):
    """What the medium needs of a node on it (the simulator's nodes implement it): the medium
    never imports the nodes, so the modules stack medium <- node <- application <- HAN."""

    ieee: t.EUI64
    channel: int | None
    pan_id: int | None
    nwk: int | None

    @property
    def is_coordinator(self) -> bool:
        """Whether the node is a PAN coordinator (accepts frames with no destination)."""

    def _receive(self, tx: Transmission) -> None:
        """Take a frame the medium delivers to this node."""

    def _hears(self, tx: Transmission) -> bool:
        """Whether the node's stack has any use for a frame its MAC accepts (False only for
        frames it would drop unread: a beacon to a node not scanning, say)."""

    def _mac_receives(self, tx: Transmission) -> bool:
        """Whether the receiver of a node that sleeps between polls is on for ``tx`` now (its
        MAC takes the frame and may turn the receiver off after it)."""

    def _frame_pending(self, tx: Transmission) -> bool:
        """Whether the node's acknowledgement of a Data Request sets the frame-pending bit
        (it holds a frame for the poll's sender, 802.15.4-2006 7.2.1.1.3)."""


@dataclass(slots=True)
class Transmission:
    """One frame on the air: its bytes (without FCS) and what the simulator models about it."""

    data: bytes
    sender: Station
    channel: int
    mac: MacHeader
    payload: bytes
    raw: bool = False  # injected with send_interpan (or send_raw): not parsed by the stack
    #: the acknowledgement the sender received had its frame-pending bit set (a poll answered
    #: "a frame follows", 802.15.4-2006 7.5.6.3)
    ack_pending: bool = False
    #: what the receivers' stacks decoded from the frame, shared by all of them (see
    #: :meth:`shared`): a broadcast is parsed and decrypted once, not once per node. Not in
    #: the repr: it holds decrypted payloads (and its keys name keys by a token, never the
    #: key itself)
    decoded: dict[Any, Any] = field(default_factory=dict, repr=False)

    def shared(self, key: Any, decode: Any, *args: Any) -> Any:
        """``decode(*args)``, computed once per frame and ``key`` and shared by every node
        that hears it (an exception it raises is shared too)."""
        try:
            found = self.decoded[key]
        except KeyError:
            try:
                found = (True, decode(*args))
            except Exception as exc:  # re-raised to every caller below
                found = (False, exc)
            self.decoded[key] = found
        ok, value = found
        if not ok:
            raise value.with_traceback(None)
        return value


class Medium:
    """Simulated 802.15.4 medium shared by every node; deterministic from ``seed``. The
    :class:`~zse.sim.Air` users build a HAN on is this medium with node factories.

    ``capture`` (a path, a binary file or a :class:`~zse.pcap.PcapWriter`) receives every
    frame as it is transmitted, time-stamped on the virtual clock from ``epoch``: the Unix
    time at which the air is created (default: now, by the wall clock; give one for captures
    identical byte for byte). ``airtime=True`` serialises each
    channel at 250 kbit/s so that throughput figures mean something. The air records every
    key its nodes install (network keys, install-code and CBKE link keys): :attr:`keys` and
    :meth:`write_keys` give what Wireshark needs to decrypt the capture.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        capture: str | os.PathLike[str] | BinaryIO | PcapWriter | None = None,
        airtime: bool = False,
        mac_retries: int = 3,
        epoch: float | None = None,
    ) -> None:
        if epoch is not None and not (math.isfinite(epoch) and epoch >= 0):
            raise ValueError(f"epoch must be a Unix time (seconds, 0 or more), got {epoch}")
        #: the Unix time of the air's creation in its capture's timestamps
        self.epoch = time.time() if epoch is None else float(epoch)
        self.seed = seed
        self._keys: dict[bytes, str] = {}
        #: the air's draws other than the faults' (addresses, EUI-64s, keys, sequence
        #: numbers): taken in the order the program asks for them
        self.rng = random.Random(seed)  # noqa: S311 - simulation, deterministic by design
        # the faults' draws: a stream per link, whatever the order of independent senders
        # (made at the first draw: a perfect air, most of a utility's, never needs them)
        self._draws: FaultDraws | None = None
        self.airtime = airtime
        self.mac_retries = mac_retries
        self.faults: Faults = PERFECT
        self.stats = AirStats()
        self._link_faults: dict[tuple[t.EUI64, t.EUI64], Faults] = {}
        self._partition: dict[t.EUI64, int] | None = None
        self._silent: set[t.EUI64] = set()
        # the topology: each node -> the nodes out of its radio range (kept both ways); empty
        # when everyone hears everyone
        self._apart: dict[t.EUI64, set[t.EUI64]] = {}
        self._nodes: dict[t.EUI64, Station] = {}
        # Indexes, so that who hears a frame is a lookup, not a scan of every node: nodes by
        # channel (in tuning order: the order of delivery), by (channel, PAN) and, per
        # channel, the nodes that use beacons, MAC commands or raw frames (see _hears),
        # the last two sorted by tuning order as (sequence, node).
        self._by_channel: dict[int, dict[Station, None]] = defaultdict(dict)
        self._tuned = itertools.count()
        self._tune_seq: dict[Station, int] = {}
        self._by_pan: dict[tuple[int, int | None], list[tuple[int, Station]]] = defaultdict(list)
        self._pan_key: dict[Station, tuple[int, int | None]] = {}
        self._pan_seq: dict[Station, int] = {}
        self._ears: set[Station] = set()
        self._ears_on: dict[int, list[tuple[int, Station]]] = defaultdict(list)
        self._busy_until: dict[int, float] = defaultdict(float)
        # each sender's deliveries due at one instant, oldest first, with their loop (see
        # _deliver_next)
        self._due: dict[
            tuple[Station, float],
            tuple[asyncio.AbstractEventLoop, collections.deque[tuple[Transmission, list[Station]]]],
        ] = {}
        self._short_index: dict[tuple[int, int | None, int], Station] = {}
        self._short_key: dict[Station, tuple[int, int | None, int]] = {}
        # sleepy end devices (receiver off when idle) -> their parent's short address
        self._sleepers: dict[Station, int] = {}
        self._owns_capture = not isinstance(capture, PcapWriter)
        try:
            self._t0 = asyncio.get_running_loop().time()
        except RuntimeError:
            self._t0 = 0.0
        self.capture: PcapWriter | None
        if capture is None or isinstance(capture, PcapWriter):
            self.capture = capture
        else:
            self.capture = PcapWriter(capture)

    # -- nodes -------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """The current (virtual) time of the running loop."""
        return asyncio.get_running_loop().time()

    @property
    def nodes(self) -> list[Station]:
        """Every node on the air, in the order they were added."""
        return list(self._nodes.values())

    def _attach(self, node: Station) -> None:
        if node.ieee in self._nodes:
            raise ValueError(f"a node with EUI-64 {node.ieee} is already on the air")
        self._nodes[node.ieee] = node

    def _tune(self, node: Station, old: int | None, new: int | None) -> None:
        if old is not None:
            self._by_channel[old].pop(node, None)
            seq = self._tune_seq.pop(node, None)
            if seq is not None and node in self._ears:
                _unlist(self._ears_on[old], seq)
        if new is not None:
            seq = self._tune_seq[node] = next(self._tuned)
            self._by_channel[new][node] = None
            if node in self._ears:
                bisect.insort(self._ears_on[new], (seq, node))
        self._index(node, new)

    def _readdress(self, node: Station) -> None:
        """``node`` changed PAN or NWK address: keep the indexes up to date."""
        self._index(node, node.channel)

    def _listen(self, node: Station, on: bool) -> None:
        """``node`` starts (or stops) having a use for beacons, MAC commands or raw frames."""
        if on == (node in self._ears):
            return
        seq = self._tune_seq.get(node)
        if on:
            self._ears.add(node)
            if seq is not None and node.channel is not None:
                bisect.insort(self._ears_on[node.channel], (seq, node))
        else:
            self._ears.discard(node)
            if seq is not None and node.channel is not None:
                _unlist(self._ears_on[node.channel], seq)

    def _index(self, node: Station, channel: int | None) -> None:
        old = self._short_key.pop(node, None)
        if old is not None and self._short_index.get(old) is node:
            del self._short_index[old]
        if channel is not None and node.nwk is not None:
            key = (channel, node.pan_id, node.nwk)
            self._short_index[key] = node
            self._short_key[node] = key
        pan = self._pan_key.pop(node, None)
        if pan is not None:
            _unlist(self._by_pan[pan], self._pan_seq.pop(node))
        seq = self._tune_seq.get(node)
        if channel is not None and seq is not None:
            pan = self._pan_key[node] = (channel, node.pan_id)
            self._pan_seq[node] = seq
            bisect.insort(self._by_pan[pan], (seq, node))

    def _doze(self, node: Station, parent: int | None) -> None:
        """``node`` sleeps between polls from now on, a child of ``parent`` (its short address),
        or (``None``) keeps its receiver on again."""
        if parent is None:
            self._sleepers.pop(node, None)
        else:
            self._sleepers[node] = parent

    def next_hop(self, sender: Station, dst: int) -> int | None:
        """Where ``sender``'s MAC sends a NWK unicast to ``dst`` when it is a neighbour: ``dst``
        itself, but for a sleepy end device, which hears only its parent, its parent (route
        discovery finds that route on a real network: a parent answers Route Requests for its
        end device children, ZB 3.6.3.5). None when the air has a topology
        (:meth:`out_of_range`) and that node is out of ``sender``'s range or unknown: the
        sender needs a route (:mod:`zse.sim._route`). The neighbour table a real node fills
        from the frames and Link Status commands it hears (ZB 3.6.1.5, 3.6.3.4) is the air's
        topology here."""
        if not self._apart:
            if not self._sleepers or sender.channel is None:
                return dst
            node = self._short_index.get((sender.channel, sender.pan_id, dst))
            parent = None if node is None else self._sleepers.get(node)
            return dst if parent is None or parent == sender.nwk else parent
        if sender.channel is None:
            return dst
        node = self._short_index.get((sender.channel, sender.pan_id, dst))
        parent = None if node is None else self._sleepers.get(node)
        if parent is not None and parent != sender.nwk:
            dst, node = parent, self._short_index.get((sender.channel, sender.pan_id, parent))
        if node is None or not self.hears(sender, node):
            return None
        return dst

    def _asleep(self, node: Station, tx: Transmission) -> bool:
        """Whether ``node`` sleeps between polls and its receiver is off for ``tx`` (counted)."""
        if node in self._sleepers and not node._mac_receives(tx):
            self.stats.asleep += 1
            return True
        return False

    def node(self, ieee: t.EUI64 | str) -> Station:
        """The node with this EUI-64."""
        return self._nodes[t.EUI64.convert(ieee) if isinstance(ieee, str) else ieee]

    # -- keys --------------------------------------------------------------------------------

    def _learn_key(self, key: bytes, label: str) -> None:
        """A node installed ``key``: remember it (the first label wins)."""
        self._keys.setdefault(bytes(key), label)

    @property
    def keys(self) -> tuple[KeyTableEntry, ...]:
        """Every key installed on this air so far, in order (reprs show labels only)."""
        return tuple(KeyTableEntry(key, label) for key, label in self._keys.items())

    def write_keys(self, path: str | os.PathLike[str]) -> int:
        """Write :attr:`keys` as Wireshark's ZigBee key table to ``path``, readable by its
        owner only (mode 0600); returns how many keys were written."""
        keys = self.keys
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="ascii") as out:
            if stat.S_ISREG(os.fstat(fd).st_mode):  # not a device's or a FIFO's mode
                os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
            out.write(format_key_table(keys))
        return len(keys)

    # -- faults ------------------------------------------------------------------------------

    def set_faults(self, faults: Faults | None = None, **kwargs: float) -> None:
        """Set the faults of every link without its own (``air.set_faults(loss=0.2)``)."""
        self.faults = faults if faults is not None else Faults(**kwargs)

    def set_link_faults(
        self,
        a: Station | t.EUI64,
        b: Station | t.EUI64,
        faults: Faults | None = None,
        *,
        both_ways: bool = True,
        **kwargs: float,
    ) -> None:
        """Set the faults of the link a -> b (and b -> a); ``faults=None`` with no keyword
        arguments removes the link's own settings."""
        ia, ib = _eui(a), _eui(b)
        pairs = [(ia, ib), (ib, ia)] if both_ways else [(ia, ib)]
        value = faults if faults is not None else (Faults(**kwargs) if kwargs else None)
        for pair in pairs:
            if value is None:
                self._link_faults.pop(pair, None)
            else:
                self._link_faults[pair] = value

    def link_faults(self, a: Station | t.EUI64, b: Station | t.EUI64) -> Faults:
        """The faults in force on the link a -> b."""
        return self._link_faults.get((_eui(a), _eui(b)), self.faults)

    def partition(self, *groups: Iterable[Station | t.EUI64]) -> None:
        """Split the air: nodes hear only nodes of their own group. Nodes in no group form
        one more group together."""
        mapping: dict[t.EUI64, int] = {}
        for index, group in enumerate(groups, start=1):
            for member in group:
                mapping[_eui(member)] = index
        self._partition = mapping

    def heal(self) -> None:
        """Remove the partition."""
        self._partition = None

    def silence(self, node: Station | t.EUI64) -> None:
        """The node goes silent (powered off / out of range): it neither sends nor hears."""
        self._silent.add(_eui(node))

    def restore(self, node: Station | t.EUI64) -> None:
        """The node is back on the air."""
        self._silent.discard(_eui(node))

    def is_silent(self, node: Station | t.EUI64) -> bool:
        """Whether the node is silent."""
        return _eui(node) in self._silent

    # -- topology ----------------------------------------------------------------------------

    def out_of_range(self, node: Station | t.EUI64, *others: Station | t.EUI64) -> None:
        """``node`` and each of ``others`` no longer hear each other (both ways): a frame one
        sends does not reach the other, and routers relay between them (ZB 3.6.3). By default
        every node hears every other."""
        first = _eui(node)
        for other in map(_eui, others):
            if other == first:
                raise ValueError(f"a node is always in its own range: {first}")
            self._apart.setdefault(first, set()).add(other)
            self._apart.setdefault(other, set()).add(first)

    def in_range(self, node: Station | t.EUI64, *others: Station | t.EUI64) -> None:
        """``node`` and each of ``others`` hear each other again (the default)."""
        first = _eui(node)
        for other in map(_eui, others):
            for a, b in ((first, other), (other, first)):
                apart = self._apart.get(a)
                if apart is not None:
                    apart.discard(b)
                    if not apart:
                        del self._apart[a]

    def hears(self, a: Station | t.EUI64, b: Station | t.EUI64) -> bool:
        """Whether ``a`` and ``b`` are in each other's range (the topology only: a silent node
        or a partition is not asked)."""
        if not self._apart:
            return True
        return _eui(b) not in self._apart.get(_eui(a), ())

    @property
    def multihop(self) -> bool:
        """Whether some nodes are out of each other's range: routers then rebroadcast NWK
        broadcasts and find routes (ZB 3.6.3, 3.6.5); with everyone in range they need not
        (every node heard every broadcast first hand, every destination is a neighbour)."""
        return bool(self._apart)

    def _perfect(self) -> bool:
        """No fault, link fault, partition, silent node or node out of range on the air."""
        return (
            self.faults == PERFECT
            and not self._link_faults
            and self._partition is None
            and not self._silent
            and not self._apart
        )

    def _fault_draws(self) -> FaultDraws:
        """The streams the faults are drawn from (:mod:`zse.sim._draws`)."""
        if self._draws is None:
            self._draws = FaultDraws(self.seed)
        return self._draws

    def _reachable(self, a: t.EUI64, b: t.EUI64) -> bool:
        if a in self._silent or b in self._silent:
            return False
        if self._apart and b in self._apart.get(a, ()):
            return False
        if self._partition is None:
            return True
        return self._partition.get(a, 0) == self._partition.get(b, 0)

    # -- transmission ------------------------------------------------------------------------

    def _occupy(self, channel: int, octets: int, now: float) -> tuple[float, float]:
        """Start and end time of a transmission of ``octets`` PSDU octets on ``channel``."""
        if not self.airtime:
            return now, now
        start = max(now, self._busy_until[channel])
        end = start + (PHY_OVERHEAD_OCTETS + octets) * OCTET_TIME
        self._busy_until[channel] = end
        return start, end

    def _record(self, data: bytes, when: float) -> None:
        self.stats.transmitted += 1
        self._write(data, when)

    def _write(self, data: bytes, when: float) -> None:
        self.stats.bytes += len(data) + 2
        if self.capture is not None:
            self.capture.write(data, self.epoch + max(0.0, when - self._t0))

    def _acknowledge(
        self, tx: Transmission, received: float, faults: Faults, draw: int, pending: bool = False
    ) -> bool:
        """The receiver's MAC acknowledgement of ``tx`` (802.15.4-2006 7.2.2.3: frame type 2,
        the frame-pending bit when ``pending``, the frame's sequence number), sent ``received``
        plus aTurnaroundTime; False when the sender misses it (``faults.ack_loss``, drawn from
        the attempt's ``draw``, counted) and so retries the frame."""
        turnaround = TURNAROUND if self.airtime else 0.0
        start, _ = self._occupy(tx.channel, len(_ACK_HEADER) + 1 + 2, received + turnaround)
        self.stats.acknowledgements += 1
        header = _ACK_PENDING_HEADER if pending else _ACK_HEADER
        self._write(header + bytes((tx.mac.seq & 0xFF,)), start)
        if faults.ack_loss and chance(draw, ACK_LOSS) < faults.ack_loss:
            self.stats.acks_lost += 1
            return False
        if pending:
            tx.ack_pending = True
        return True

    def transmit(  # noqa: PLR0912, PLR0915
        self, tx: Transmission, *, retries: int | None = None
    ) -> asyncio.Future[bool]:
        """Put a frame on the air; the future tells whether an addressed unicast was
        acknowledged (always True for broadcasts once sent). A unicast is retried
        ``retries`` times (default :attr:`mac_retries`; a parent's indirect frame is sent
        once, 7.5.6.4.3). A frame whose PSDU (FCS
        included) exceeds aMaxPHYPacketSize is refused, as a radio's MAC refuses it
        (MCPS-DATA.confirm FRAME_TOO_LONG, 802.15.4-2006 7.1.1.1.3): zigpy's
        ``DeliveryError`` with ``MACStatus.MAC_FRAME_TOO_LONG``, counted in
        :attr:`AirStats.too_long`, nothing on the air."""
        psdu = len(tx.data) + FCS_OCTETS
        if psdu > MAX_PHY_PACKET:
            self.stats.too_long += 1
            raise zigpy.exceptions.DeliveryError(
                f"frame of {psdu} octets exceeds aMaxPHYPacketSize ({MAX_PHY_PACKET})",
                status=t.MACStatus.MAC_FRAME_TOO_LONG,
            )
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        sender = tx.sender
        if self._silent and sender.ieee in self._silent:
            done.set_result(False)
            return done
        receivers = self._receivers(tx)
        mac = tx.mac
        unicast = mac.ack_request and not _is_broadcast(mac)
        attempts = 1 + (self.mac_retries if retries is None else retries) if unicast else 1
        # a Data Request's acknowledgement tells the poller whether a frame follows
        polled = mac.frame_type == MAC_COMMAND and tx.payload[:1] == _DATA_REQUEST
        sleepers = self._sleepers
        addressed = not _is_broadcast(mac)
        # a broadcast takes its sender's next draw whoever hears it, so that the frames on
        # the channel at the time do not shift the sender's later broadcasts
        drawn = not addressed and (self.faults is not PERFECT or bool(self._link_faults))
        now = loop.time()
        schedule: dict[float, list[Station]] = defaultdict(list)
        acked_at: float | None = None
        for _attempt in range(attempts):
            start, end = self._occupy(tx.channel, len(tx.data) + 2, now)
            self._record(tx.data, start)
            acked = False
            constrained = bool(self._silent or self._partition is not None or self._apart)
            shared = self._fault_draws().broadcast(sender) if drawn else 0
            for node in receivers:
                faults = (
                    self._link_faults.get((sender.ieee, node.ieee), self.faults)
                    if self._link_faults
                    else self.faults
                )
                if constrained and not self._reachable(sender.ieee, node.ieee):
                    self.stats.blocked += 1
                    continue
                draw = 0
                if faults is not PERFECT and (
                    faults.loss or faults.ack_loss or faults.reorder or faults.duplicate
                ):
                    # the faults of this attempt on the link sender -> node (see _draws)
                    draws = self._fault_draws()
                    draw = draws.unicast(sender, node) if addressed else draws.to(shared, node)
                if faults.loss and chance(draw, LOSS) < faults.loss:
                    self.stats.lost += 1
                    continue
                if sleepers and self._asleep(node, tx):
                    continue
                # delay and reorder are latency above the MAC: the receiver's MAC takes the
                # frame and acknowledges it at once (802.15.4-2006 7.5.6.4.2, within
                # macAckWaitDuration); only the hand-over to its NWK layer waits
                when = end + faults.delay
                if faults.reorder:
                    when += chance(draw, REORDER) * faults.reorder
                schedule[when].append(node)
                if unicast:
                    pending = polled and node._frame_pending(tx)
                    acked = self._acknowledge(tx, end, faults, draw, pending) or acked
                if faults.duplicate and chance(draw, DUPLICATE) < faults.duplicate:
                    self.stats.duplicated += 1
                    loop.call_at(when + DUPLICATE_GAP, self._duplicate, tx, node)
            if acked or not unicast:
                acked_at = end
                break
            now = end + (ACK_WAIT if self.airtime else 0.0)
        for when, nodes in sorted(schedule.items()):
            key = (sender, when)
            due = self._due.get(key)
            if due is None or due[0] is not loop:  # none, or left by a loop closed since
                due = self._due[key] = (loop, collections.deque())
            due[1].append((tx, nodes))
            loop.call_at(when, self._deliver_next, key)
        if unicast:
            if acked_at is None:
                loop.call_at(now, _resolve, done, False)
            else:
                loop.call_at(acked_at, _resolve, done, True)
        else:
            loop.call_at(acked_at if acked_at is not None else now, _resolve, done, True)
        return done

    def _duplicate(self, tx: Transmission, node: Station) -> None:
        # on the air again: booked on the channel, so the capture's timestamps never go back
        start, _ = self._occupy(tx.channel, len(tx.data) + FCS_OCTETS, self.now)
        self._record(tx.data, start)
        if not (self._sleepers and self._asleep(node, tx)):
            self._deliver(tx, [node])

    def _deliver_next(self, key: tuple[Station, float]) -> None:
        """A delivery's timer: deliver the oldest frame its sender has due at this instant.
        asyncio's timer heap runs timers due at one time in no set order, which let a later
        frame overtake an earlier one (its receiver then dropped the earlier one as a stale
        NWK or APS frame counter, ZB 4.3.1.2, 4.4.1.2); a radio sends its frames one after the
        other (802.15.4-2006 7.5.6.1). Each timer still runs where it did among the others."""
        queue = self._due[key][1]
        tx, nodes = queue.popleft()
        if not queue:
            del self._due[key]
        self._deliver(tx, nodes)

    def _deliver(self, tx: Transmission, nodes: list[Station]) -> None:
        silent = self._silent
        for node in nodes:
            if (silent and node.ieee in silent) or node.channel != tx.channel:
                self.stats.blocked += 1
                continue
            self.stats.delivered += 1
            node._receive(tx)

    def _receivers(self, tx: Transmission) -> list[Station]:  # noqa: PLR0912
        """Nodes on the channel whose MAC accepts the frame (802.15.4-2006 7.5.6.2), in
        tuning order. On a perfect air (no fault draws a random number per receiver), nodes
        with no use for a beacon, a MAC command or a raw frame are not handed it, and the
        candidates come from the indexes rather than from a scan of the channel."""
        mac = tx.mac
        if isinstance(mac.dst, int) and mac.dst != BROADCAST_SHORT and mac.dst_pan != BROADCAST_PAN:
            key = (tx.channel, mac.dst_pan, mac.dst)
            found = self._short_index.get(key)
            if found is None or (found.channel, found.pan_id, found.nwk) != key:
                # not indexed (two nodes once shared the address): the last on the channel
                found = None
                for n in self._by_channel.get(tx.channel, ()):
                    if (n.pan_id, n.nwk) == key[1:]:
                        found = n
            return [] if found is None or found is tx.sender else [found]
        perfect = self._perfect()
        listeners = tx.raw or mac.frame_type != MAC_DATA
        out = []
        for node in self._candidates(tx, perfect and listeners):
            if node is tx.sender:
                continue
            if mac.dst is None:
                # No destination address: only a PAN coordinator accepts (data/command frames).
                if mac.frame_type == 0 or (node.is_coordinator and mac.src_pan == node.pan_id):
                    out.append(node)
                continue
            if mac.dst_pan not in (BROADCAST_PAN, node.pan_id):
                continue
            if isinstance(mac.dst, t.EUI64):
                if mac.dst == node.ieee:
                    out.append(node)
            elif mac.dst == BROADCAST_SHORT or (node.nwk is not None and mac.dst == node.nwk):
                out.append(node)
        if perfect and listeners:
            return [node for node in out if node._hears(tx)]
        return out

    def _candidates(self, tx: Transmission, listeners: bool) -> Iterable[Station]:
        """The nodes that may accept a frame not addressed to one short address, from the
        indexes: the listeners (``listeners``), the node of an EUI-64, the nodes of a PAN,
        else every node on the channel."""
        mac = tx.mac
        if listeners:
            return [node for _, node in self._ears_on.get(tx.channel, ())]
        if isinstance(mac.dst, t.EUI64):
            node = self._nodes.get(mac.dst)
            return () if node is None or node.channel != tx.channel else (node,)
        if mac.dst is not None and mac.dst_pan != BROADCAST_PAN:
            return [node for _, node in self._by_pan.get((tx.channel, mac.dst_pan), ())]
        return self._by_channel.get(tx.channel, ())

    def close(self) -> None:
        """Flush the capture (and close it if the air opened it)."""
        if self.capture is not None:
            if self._owns_capture:
                self.capture.close()
            else:
                self.capture.flush()

    def frame(self, sender: Station, data: bytes, **kwargs: Any) -> Transmission:
        """Build a :class:`Transmission` of ``data`` from ``sender`` on its channel."""
        mac, payload = decode_mac(data)
        assert sender.channel is not None
        return Transmission(data, sender, sender.channel, mac, payload, **kwargs)


#: A MAC acknowledgement's frame control (802.15.4-2006 7.2.2.3): frame type 2, nothing else;
#: and with the frame-pending bit (7.2.1.1.3), a parent's answer to a poll it holds a frame for.
_ACK_HEADER = bytes((0x02, 0x00))
_ACK_PENDING_HEADER = bytes((0x12, 0x00))
_DATA_REQUEST = bytes((MAC_CMD_DATA_REQUEST,))


def _unlist(entries: list[tuple[int, Station]], seq: int) -> None:
    """Remove the entry of tuning sequence ``seq`` from a list sorted by it."""
    index = bisect.bisect_left(entries, (seq,))
    if index < len(entries) and entries[index][0] == seq:
        del entries[index]


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


def _is_broadcast(mac: MacHeader) -> bool:
    return mac.dst is None or mac.dst == BROADCAST_SHORT


def _eui(node: Station | t.EUI64) -> t.EUI64:
    return node if isinstance(node, t.EUI64) else node.ieee
