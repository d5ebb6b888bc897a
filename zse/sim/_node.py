"""A simulated ZigBee node: MAC association, NWK/APS data and security, and a ZDO server.

The same :class:`Node` is the radio under the zigpy coordinator (``SimControllerApplication``)
and the stack of every simulated HAN device (:class:`SimDevice`). Security is real
(:mod:`zse.security`): once joined, every NWK frame is secured with the network key (ZB 4.3.1),
frames sent "APS encrypted" are secured with the link key shared with the partner (ZB 4.4.1),
and the Transport Key bringing the network key to a joining device is secured with the
key-transport key of its install-code link key (ZB 4.5.3, 4.6.3.4). A frame with a bad MIC, a
stale frame counter or an unknown key is dropped and counted in :class:`NodeStats`.
"""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import logging
import os
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import zigpy.exceptions
import zigpy.types as t
import zigpy.zdo.types as zdo_t

from zse.errors import BadMic, DecodeError, SecurityFailure, StaleFrameCounter, UnknownKey
from zse.se.ids import SE_PROFILE_ID
from zse.security import (
    COUNTER_EXHAUSTED,
    AuxHeader,
    IncomingCounters,
    KeyId,
    Sealed,
    Unsecured,
    aps_header_length,
    nwk_header_length,
    secure_aps,
    secure_nwk,
    split_nwk,
    unsecure_aps,
)
from zse.sim import _frames as f
from zse.sim import _route
from zse.sim._air import ACK_WAIT
from zse.sim._binding import BindingTable
from zse.sim._fragment import (
    MAX_BLOCKS,
    Fragmentation,
    Outgoing,
    Reassembly,
    Received,
    block_header,
    payload_room,
)
from zse.sim._indirect import (
    DEFAULT_POLL_INTERVAL,
    FAST_POLL_INTERVAL,
    MAX_FRAME_TOTAL_WAIT,
    PollSchedule,
)
from zse.zcl.endpoint import ZclEndpointBase, ZclMessage, decode_zcl_header, simple_descriptor

if TYPE_CHECKING:
    from zse.sim._air import Medium, Transmission

__all__ = [
    "ApsIndication",
    "Beacon",
    "DeliveryError",
    "Endpoint",
    "JoinRefused",
    "Node",
    "NodeStats",
    "RawFrame",
    "SimDevice",
    "ZclMessage",
]

LOGGER = logging.getLogger(__name__)

DeliveryError = zigpy.exceptions.DeliveryError

SE_PROFILE = SE_PROFILE_ID
ZDO_PROFILE = 0x0000
ALL_CHANNELS = tuple(range(11, 27))
SCAN_DURATION = 0.138  # aBaseSuperframeDuration * (2^3 + 1) symbols at 2.4 GHz (ZB 3.2.2.4)
RESPONSE_WAIT = 0.5  # macResponseWaitTime, rounded (802.15.4-2006 7.4.2)
KEY_WAIT = 3.0  # how long a joining device waits for the Transport Key
BROADCAST_ADDRESSES = (0xFFFF, 0xFFFD, 0xFFFC, 0xFFFB)
DUPLICATE_TABLE = 64  # sources in the APS duplicate rejection table (ZB 2.2.8.4.2)
#: how long a source's duplicate rejection entry lives after its last frame, seconds: the spec
#: leaves it to the stack; TI Z-Stack keeps an entry DEFAULT_APS_DUP_REJ_TIMEOUT (10) x
#: DEFAULT_APS_DUP_REJ_TIMEOUT_INCREMENT (1000 ms), BitCloud CS_APS_DUPLICATE_ENTRY_LIFE_TIME 6.8 s
DUPLICATE_LIFETIME = 10.0
#: APS counters behind a source's newest one that its entry remembers (BitCloud keeps the
#: newest counter and a bit mask of the ones before it): a counter further behind, or ahead,
#: is a new frame, so the 8-bit counter wraps without a loss
DUPLICATE_WINDOW = 32
#: how long a receiver's MAC keeps the sequence number of a source's last frame that asked for an
#: acknowledgement, to drop that frame's retransmissions (802.15.4-2006 7.2.1.2, 7.5.6.2): the
#: standard leaves it to the radio; a retransmission follows its frame within macAckWaitDuration
#: and one frame's air time (under 6 ms at 2.4 GHz), and a sender cannot put 256 frames on the
#: air (wrapping its sequence number) in this time
MAC_DUPLICATE_LIFETIME = 0.02
#: apsAckWaitDuration (ZB 2.2.7.2, Table 2.24), virtual seconds: the spec's
#: 0.05 x (2 x nwkcMaxDepth) + the security delay, 0.05 x (2 x 15) + 0.1 = 1.6 s; EmberZNet's
#: default emberApsAckTimeoutMs is the same figure (EMBER_APSC_MAX_ACK_WAIT_HOPS_MULTIPLIER_MS
#: 50 x EMBER_MAX_HOPS 30 + EMBER_APSC_MAX_ACK_WAIT_TERMINAL_SECURITY_MS 100)
APS_ACK_WAIT = 1.6
#: apscMaxFrameRetries (ZB 2.2.7.1, Table 2.23): resends of a frame no APS ack answered
APS_MAX_FRAME_RETRIES = 3
#: devices that associated with a router and await their Transport Key through it
JOINING_CHILDREN = 8


class JoinRefused(Exception):
    """A simulated device could not join: no beacon, association refused or no network key."""


class _AwaitedAck:
    """A unicast awaiting its APS acknowledgement (ZB 2.2.8.4.1): what the ack must echo
    (``aps``: counter, cluster, profile, endpoints), the partner whose link key secured the
    frame (None: not APS-secured; the ack must be secured alike), the current attempt's
    wait, and for a fragmented transmission its window (``outgoing``, ZB 2.2.8.4.5)."""

    __slots__ = ("acked", "aps", "outgoing", "partner", "wait")

    def __init__(
        self, aps: f.ApsHeader, partner: t.EUI64 | None, outgoing: Outgoing | None = None
    ) -> None:
        self.aps = aps
        self.partner = partner
        self.outgoing = outgoing
        self.acked = False
        self.wait: asyncio.Future[bool] | None = None

    def answered_by(self, ack: f.ApsHeader, key_id: KeyId | None, source: t.EUI64 | None) -> bool:
        """Whether ``ack`` (opened with ``key_id`` from ``source``) acknowledges the frame."""
        aps = self.aps
        partner = self.partner
        if partner is None:
            secured_alike = key_id is None
        else:
            secured_alike = key_id == KeyId.DATA and source == partner
        return (
            not ack.command_ack
            and bool(ack.fragmentation) == (self.outgoing is not None)
            and ack.dst_ep == aps.src_ep
            and ack.src_ep == aps.dst_ep
            and ack.cluster == aps.cluster
            and ack.profile == aps.profile
            and secured_alike
        )

    def take(self, ack: f.ApsHeader, key_id: KeyId | None, source: t.EUI64 | None) -> bool:
        """Whether ``ack`` answers the frame, or the window of blocks being sent (ZB
        2.2.8.4.5.1), taking it if so."""
        if self.acked or not self.answered_by(ack, key_id, source):
            return False
        if self.outgoing is None:
            self.acked = True
            return True
        return self.outgoing.acknowledge(ack.block, ack.ack_bits)


@dataclass(frozen=True, kw_only=True)
class ApsIndication:
    """An APS data frame delivered to a node (APSDE-DATA.indication, ZB 2.2.4.1.3)."""

    src_nwk: int
    src_ieee: t.EUI64 | None
    dst_mode: t.AddrMode
    dst_addr: int
    dst_ep: int | None
    src_ep: int
    cluster_id: int
    profile_id: int
    payload: bytes
    aps_encrypted: bool
    timestamp: float
    lqi: int = 255
    rssi: int = -40


@dataclass(frozen=True, kw_only=True)
class RawFrame:
    """A raw 802.15.4 frame (e.g. inter-PAN) received by a node: MAC frame without FCS."""

    data: bytes
    channel: int
    timestamp: float
    lqi: int = 255
    rssi: int = -40


@dataclass(frozen=True, kw_only=True)
class Beacon:
    """A ZigBee beacon heard in an active scan (ZB 3.6.7): who offers which network."""

    channel: int
    pan_id: int
    extended_pan_id: t.ExtendedPanId
    permit_joining: bool
    source: int
    lqi: int
    rssi: int


@dataclass
class NodeStats:
    """Per-node counters of frames the stack dropped, by reason.

    Security failures (ZB 4.3.1.2, 4.4.1.2) are counted per layer: a MIC that does not verify
    (wrong key, altered frame), a stale frame counter (a replay) and an unknown key (a key
    sequence number or a partner the node holds no key for). ``nwk_unsecured`` counts NWK
    frames without security that a joined node refuses. ``aps_source_mismatch`` counts
    APS-secured frames whose link key is not that of the device the NWK source address
    belongs to (an insider's frame passed off as another device's); ``address_conflicts``
    counts Device_annce frames (and, at the coordinator, NWK_addr_rsp / IEEE_addr_rsp)
    contradicting what the node's own join records say, and at the Trust Center an APS
    Update Device telling an unsecured join of a device already on the network;
    ``nwk_source_mismatch`` counts NWK commands (Leave, Rejoin Request) whose claimed sender
    is not the device the node knows at the NWK source address (an insider's forgery), and
    frames a router was to relay whose NWK source is its own address;
    ``aps_key_misuse`` counts APS data frames secured with the key-transport or key-load key,
    which secure Transport Key commands only (ZB 4.5.3, 4.4.1.1); ``aps_acks_unmatched``
    counts APS acknowledgements (ZB 2.2.9) that acknowledge no frame the node awaits an
    acknowledgement for: another sender's, another counter's, cluster's or endpoints', one
    secured otherwise than the frame (a forgery, or an unsecured ack of an APS-secured frame),
    or one that came after its send was over. Blocks of fragmented transmissions (ZB
    2.2.8.4.5) that are garbage (a first block of no blocks, a block number past the count
    or outside the first window of a transfer not begun, a block again with other content,
    endpoints, cluster, profile or security other than its transfer's, a block not in an
    acknowledged unicast) count in ``aps_fragments_invalid``; those refused for want of room
    (the sender's or all senders' unfinished transfers at their bound, a transfer over its
    maximum size) in ``aps_fragments_refused``; transfers dropped unfinished after their
    timeout in ``aps_reassembly_timeouts``. A block received again counts in
    ``aps_duplicates``.
    """

    nwk_bad_mic: int = 0
    nwk_stale_counter: int = 0
    nwk_unknown_key: int = 0
    nwk_unsecured: int = 0
    aps_bad_mic: int = 0
    aps_stale_counter: int = 0
    aps_unknown_key: int = 0
    aps_duplicates: int = 0
    #: retransmissions of a frame already received (its acknowledgement was lost) that MAC
    #: duplicate detection dropped (802.15.4-2006 7.5.6.2)
    mac_duplicates: int = 0
    aps_source_mismatch: int = 0
    address_conflicts: int = 0
    nwk_source_mismatch: int = 0
    aps_key_misuse: int = 0
    aps_acks_unmatched: int = 0
    aps_fragments_invalid: int = 0
    aps_fragments_refused: int = 0
    aps_reassembly_timeouts: int = 0
    malformed: int = 0
    #: frames a parent held for a sleepy child and dropped (802.15.4-2006 7.5.6.3): not polled
    #: within macTransactionPersistenceTime (TRANSACTION_EXPIRED), refused because the queue
    #: was full (TRANSACTION_OVERFLOW), dropped because the child left
    indirect_expired: int = 0
    indirect_overflow: int = 0
    indirect_dropped: int = 0

    @property
    def nwk_key_mismatch(self) -> int:
        """NWK frames that no network key held decrypts (bad MIC or unknown key)."""
        return self.nwk_bad_mic + self.nwk_unknown_key

    @property
    def aps_decrypt_failures(self) -> int:
        """APS frames dropped by APS security, whatever the reason."""
        return self.aps_bad_mic + self.aps_stale_counter + self.aps_unknown_key

    def count(self, layer: str, failure: SecurityFailure) -> None:
        """Count a frame ``layer`` ("nwk" or "aps") security dropped with ``failure``."""
        reason = (
            "bad_mic"
            if isinstance(failure, BadMic)
            else "stale_counter"
            if isinstance(failure, StaleFrameCounter)
            else "unknown_key"
        )
        name = f"{layer}_{reason}"
        setattr(self, name, getattr(self, name) + 1)


def eui64_int(ieee: t.EUI64) -> int:
    """An EUI-64 as the ``int`` :mod:`zse.security` takes (``0x0011...``: the printed form)."""
    return int.from_bytes(bytes(ieee), "little")  # its 8 octets, least significant first


def int_eui64(value: int) -> t.EUI64:
    """The inverse of :func:`eui64_int`."""
    return f.Eui64(value.to_bytes(8, "little"))


class Node:
    """A node of the simulated network (coordinator or device). Use the subclasses."""

    is_coordinator = False
    #: the MAC capability "receiver on when idle" (802.15.4-2006 7.3.1.2): False for a sleepy
    #: end device (:class:`SimDevice`), which is battery powered too
    rx_on_when_idle = True
    #: the routing tables, made when the node first routes (:mod:`zse.sim._route`): a class
    #: default, so a node that never routes carries no attribute for them
    _routing: _route.RoutingTables | None = None

    def __init__(
        self,
        air: Medium,
        ieee: t.EUI64,
        *,
        logical_type: zdo_t.LogicalType = zdo_t.LogicalType.Router,
        manufacturer_code: int = 0x0000,
    ) -> None:
        self.air = air
        self.ieee: t.EUI64 = f.eui64(ieee)
        self.logical_type = logical_type
        self.manufacturer_code = manufacturer_code
        self.channel: int | None = None
        self._pan_id: int | None = None
        self._nwk: int | None = None
        self.extended_pan_id: t.ExtendedPanId | None = None
        self.network_key: bytes | None = None
        self.network_key_seq = 0
        #: a network key received ahead of a Switch Key (ZB 4.6.3.5): (sequence number, key)
        self.alternate_network_key: tuple[int, bytes] | None = None
        #: outgoing NWK frame counter of the active network key (ZB 4.3.1.1)
        self.nwk_frame_counter = 0
        self.tc_ieee: t.EUI64 | None = None
        self.link_keys: dict[t.EUI64, bytes] = {}
        self._counted_key: bytes | None = None  # the network key nwk_frame_counter counts for
        # the next outgoing NWK frame counter of each network key used before: a key used
        # again goes on counting, never reusing a CCM* nonce (ZB 4.3.1.1, 4.5.2.2)
        self._nwk_out: dict[bytes, int] = {}
        self._nwk_in: dict[int, IncomingCounters] = {}
        # APS frame counters belong to a link key (ZB 4.4.1, apsDeviceKeyPairSet): kept per
        # (partner, key), so a new key starts at 0 and a key used again goes on counting
        self._aps_out: dict[tuple[t.EUI64, bytes], int] = {}
        self._aps_in: dict[tuple[t.EUI64, bytes], IncomingCounters] = {}
        self.descriptors: dict[int, zdo_t.SimpleDescriptor] = {}
        self.groups: dict[int, set[int]] = {}
        #: the binding table (ZB 2.2.8.2.1) Bind_req and Unbind_req change and Mgmt_Bind_req
        #: reports; kept, not used to address the node's own sends
        self.bindings = BindingTable()
        #: NWK address -> EUI-64 (nwkAddressMap), learnt only from joins and rejoins through
        #: the Trust Center, kept up to date by Device_annce (which adds no entry, see
        #: :meth:`_announced`), never from a data frame's claimed source; change it through
        #: :meth:`_learn_address`
        self.address_map: dict[int, t.EUI64] = {}
        self._nwk_by_ieee: dict[t.EUI64, int] = {}
        self.stats = NodeStats()
        self._mac_seq = itertools.count(air.rng.randrange(256))
        self._nwk_seq = itertools.count(air.rng.randrange(256))
        self._aps_counter = itertools.count(air.rng.randrange(256))
        self._zdo_tsn = itertools.count(air.rng.randrange(256))
        # APS duplicate rejection: source -> (newest APS counter, mask of the counters seen
        # behind it (bit 0: the newest), virtual time of the last frame), oldest first
        self._seen: dict[t.EUI64 | int, tuple[int, int, float]] = {}
        # MAC duplicate detection: (source PAN, source address) -> (the sequence number and
        # bytes of its last frame that asked for an acknowledgement, virtual time received)
        self._mac_last: dict[tuple[int | None, t.EUI64 | int], tuple[int, bytes, float]] = {}
        # unicasts awaiting their APS acknowledgement: (destination NWK address, APS counter)
        self._awaited_acks: dict[tuple[int, int], _AwaitedAck] = {}
        #: APS fragmentation settings (ZB 2.2.8.4.5; :class:`zse.sim.Fragmentation`)
        self.fragmentation = Fragmentation()
        self._reassembly = Reassembly()
        self._reassembly_timer: asyncio.TimerHandle | None = None
        self._raw_callbacks: list[Callable[[RawFrame], None]] = []
        self._raw_queues: list[asyncio.Queue[RawFrame]] = []
        self._zdo_waiters: dict[tuple[int, int], asyncio.Future[list[Any]]] = {}
        self._mac_waiters: list[tuple[Callable[[Transmission], bool], asyncio.Future[Any]]] = []
        air._attach(self)
        self._listening()

    # -- addressing and identity ---------------------------------------------------------------

    @property
    def nwk(self) -> int | None:
        """The node's NWK (short) address, None when not on a network."""
        return self._nwk

    @nwk.setter
    def nwk(self, value: int | None) -> None:
        self._nwk = value
        self.air._readdress(self)

    @property
    def pan_id(self) -> int | None:
        """The PAN identifier of the node's network, None when not on one."""
        return self._pan_id

    @pan_id.setter
    def pan_id(self, value: int | None) -> None:
        self._pan_id = value
        self.air._readdress(self)

    def __repr__(self) -> str:
        nwk = "----" if self.nwk is None else f"{self.nwk:04X}"
        return f"<{type(self).__name__} {self.ieee} nwk=0x{nwk}>"

    @property
    def route_stats(self) -> _route.RouteStats:
        """The node's routing counters (:class:`zse.sim.RouteStats`: relays, rebroadcasts,
        route discoveries, what the bounded routing tables refused)."""
        return _route.tables(self).stats

    @property
    def reassembly(self) -> Reassembly:
        """The fragmented transfers being put together (ZB 2.2.8.4.5.2): ``len()`` of them,
        and the ``octets`` they hold; for inspection."""
        return self._reassembly

    @property
    def joined(self) -> bool:
        """Whether the node is on a network (has a NWK address and the network key)."""
        return self.nwk is not None and self.network_key is not None

    def _tune(self, channel: int | None) -> None:
        self.air._tune(self, self.channel, channel)
        self.channel = channel

    def set_link_key(self, partner: t.EUI64, key: bytes) -> None:
        """Install (or replace) the APS link key shared with ``partner`` (ZB 4.4.1); a new
        key starts its frame counters at 0, both ways."""
        key = bytes(key)
        self.link_keys[partner] = key
        self.air._learn_key(key, _pair_label(self.ieee, partner))

    def use_network_key(self, key: bytes, seq: int) -> None:
        """Make ``key`` (sequence number ``seq``) the active network key, and forget the keys
        it replaces (ZB 4.6.3.5). A new key's outgoing frame counter starts at 0; a key used
        before (a rejoin, or a Trust Center rotating back to an old key) goes on counting
        where it stopped, so that no (sender, frame counter) nonce repeats under one key
        (ZB 4.3.1.1, 4.5.2.2)."""
        self.network_key, self.network_key_seq = bytes(key), seq & 0xFF
        self.alternate_network_key = None
        if self._counted_key != self.network_key:
            if self._counted_key is not None:
                self._nwk_out[self._counted_key] = self.nwk_frame_counter
            self._counted_key = self.network_key
            self.nwk_frame_counter = self._nwk_out.get(self.network_key, 0)
        self._nwk_in = {seq: self._nwk_in.get(seq, IncomingCounters())}
        self.air._learn_key(self.network_key, f"network key {seq & 0xFF}")

    def _forget_keys(self) -> None:
        self.network_key = None
        self.alternate_network_key = None
        self.link_keys.clear()
        self._nwk_in.clear()

    def node_descriptor(self) -> zdo_t.NodeDescriptor:
        """The ZDO node descriptor (ZB 2.3.2.3) of this node."""
        caps = zdo_t.MACCapabilityFlags.AllocateAddress
        if self.rx_on_when_idle:
            caps |= zdo_t.MACCapabilityFlags.MainsPowered | zdo_t.MACCapabilityFlags.RxOnWhenIdle
        if self.logical_type != zdo_t.LogicalType.EndDevice:
            caps |= zdo_t.MACCapabilityFlags.FullFunctionDevice
        if self.is_coordinator:
            caps |= zdo_t.MACCapabilityFlags.AlternatePanCoordinator
        # Server mask (ZB 2.3.2.3.10): stack compliance revision 21 in bits 9-15; the
        # coordinator is the primary Trust Center (bit 0) and the Network Manager (bit 6)
        server_mask = (21 << 9) | (0x0041 if self.is_coordinator else 0)
        return zdo_t.NodeDescriptor(
            logical_type=self.logical_type,
            complex_descriptor_available=0,
            user_descriptor_available=0,
            reserved=0,
            aps_flags=0,
            frequency_band=zdo_t.NodeDescriptor.FrequencyBand.Freq2400MHz,
            mac_capability_flags=caps,
            manufacturer_code=self.manufacturer_code,
            maximum_buffer_size=82,
            # with APS fragmentation (ZB 2.3.2.3.8, 2.3.2.3.11): the largest ASDU reassembled
            maximum_incoming_transfer_size=self.fragmentation.max_transfer,
            server_mask=server_mask,
            maximum_outgoing_transfer_size=self.fragmentation.max_transfer,
            descriptor_capability_field=zdo_t.NodeDescriptor.DescriptorCapability.NONE,
        )

    def _capability(self) -> int:
        return int(self.node_descriptor().mac_capability_flags)

    # -- raw frames (inter-PAN) --------------------------------------------------------------

    async def send_interpan(self, mac_frame: bytes) -> bool:
        """Put a complete MAC frame (without FCS), e.g. an inter-PAN frame, on the air.

        Returns True when a unicast requesting an acknowledgement reached its destination
        (always True for broadcasts once sent).
        """
        if self.channel is None:
            raise DeliveryError(f"{self!r} is not on any channel")
        try:
            tx = self.air.frame(self, bytes(mac_frame), raw=True)
        except DecodeError as exc:
            raise DeliveryError(f"cannot send a malformed MAC frame: {exc}") from exc
        return await self.air.transmit(tx)

    send_raw = send_interpan

    def on_interpan(self, callback: Callable[[RawFrame], None]) -> Callable[[], None]:
        """Call ``callback`` with every raw frame this node's MAC accepts; returns an
        unsubscribe function."""
        self._raw_callbacks.append(callback)
        self._listening()

        def unsubscribe() -> None:
            self._raw_callbacks.remove(callback)
            self._listening()

        return unsubscribe

    async def interpan_frames(self) -> AsyncIterator[RawFrame]:
        """Async-iterate the raw (inter-PAN) frames this node's MAC accepts from now on."""
        queue: asyncio.Queue[RawFrame] = asyncio.Queue()
        self._raw_queues.append(queue)
        self._listening()
        try:
            while True:
                yield await queue.get()
        finally:
            self._raw_queues.remove(queue)
            self._listening()

    # -- transmission --------------------------------------------------------------------------

    def _mac_data(
        self, dst: int, payload: bytes, *, ack: bool, seq: int | None = None, pending: bool = False
    ) -> bytes:
        """A MAC data frame from this node to ``dst`` (802.15.4-2006 7.2.2.2): its next
        sequence number unless ``seq`` is given (an indirect frame sent again keeps its own,
        7.5.6.4.3), the frame-pending bit when ``pending``."""
        seq = next(self._mac_seq) if seq is None else seq
        hdr = f.MacHeader(
            f.MAC_DATA, seq, self.pan_id, dst, self.pan_id, self.nwk, ack, frame_pending=pending
        )
        return f.encode_mac(hdr, payload)

    async def send_aps(  # noqa: PLR0912
        self,
        *,
        dst_mode: t.AddrMode,
        dst_addr: int | t.EUI64,
        dst_ep: int | None,
        src_ep: int,
        cluster_id: int,
        profile_id: int,
        payload: bytes,
        encrypt: bool = False,
        radius: int = 30,
        ack: bool = False,
    ) -> None:
        """APSDE-DATA.request (ZB 2.2.4.1.1): send an APS data frame; raise
        :class:`DeliveryError` when a unicast is not acknowledged.

        A unicast sent with ``ack`` asks for an APS acknowledgement (ZB 2.2.8.4.1,
        acknowledged transmission) and is sent again, up to :data:`APS_MAX_FRAME_RETRIES`
        times, when none comes within :data:`APS_ACK_WAIT`; it fails with no APS
        acknowledgement after the last. One whose payload does not fit one frame is
        fragmented (ZB 2.2.8.4.5, :meth:`_send_window`). Without ``ack`` (and for broadcasts
        and group frames, which never ask) the MAC acknowledgement of the frame's one hop ends
        the send, and a frame too long for the MAC is refused (``MAC_FRAME_TOO_LONG``)."""
        if not self.joined:
            raise DeliveryError(f"{self!r} is not on a network")
        assert self.nwk is not None
        counter = next(self._aps_counter) & 0xFF
        dst_ieee: t.EUI64 | None = None
        partner: t.EUI64 | None = None
        if dst_mode == t.AddrMode.IEEE:
            if not isinstance(dst_addr, t.EUI64):
                raise DeliveryError(f"IEEE addressing needs an EUI64, got {dst_addr!r}")
            dst_ieee = dst_addr
            found = self._nwk_of(dst_ieee)
            if found is None:
                raise DeliveryError(f"no NWK address known for {dst_ieee}")
            dst_mode, dst_addr = t.AddrMode.NWK, found
        if isinstance(dst_addr, t.EUI64):
            raise DeliveryError("an EUI64 destination needs IEEE addressing")
        if dst_mode == t.AddrMode.NWK:
            ack = ack and dst_addr not in BROADCAST_ADDRESSES and dst_addr != self.nwk
            aps = f.ApsHeader(
                f.APS_DATA,
                f.APS_DELIVERY_UNICAST,
                counter,
                dst_ep,
                None,
                cluster_id,
                profile_id,
                src_ep,
                ack_request=ack,
            )
            dst_ieee = dst_ieee or self.address_map.get(dst_addr)
            if encrypt:
                if dst_ieee is None or dst_ieee not in self.link_keys:
                    raise DeliveryError(f"no APS link key shared with 0x{dst_addr:04X}")
                partner = dst_ieee
            nwk_dst = dst_addr
        elif encrypt:
            raise DeliveryError("APS encryption needs a unicast destination (ZB 4.4.1.1)")
        elif dst_mode == t.AddrMode.Group:
            ack = False  # broadcasts and group frames are never acknowledged (ZB 2.2.8.4.1)
            aps = f.ApsHeader(
                f.APS_DATA,
                f.APS_DELIVERY_GROUP,
                counter,
                None,
                dst_addr,
                cluster_id,
                profile_id,
                src_ep,
            )
            nwk_dst = 0xFFFD
        else:
            ack = False
            aps = f.ApsHeader(
                f.APS_DATA,
                f.APS_DELIVERY_BROADCAST,
                counter,
                dst_ep if dst_ep is not None else 0xFF,
                None,
                cluster_id,
                profile_id,
                src_ep,
            )
            nwk_dst = dst_addr
        # No NWK extended source (optional, ZB 3.3.1.1): the receiver knows the sender from
        # its address map; SE D.5.2.3.1.1.5's frame budget counts an 8-octet NWK header
        nwk = f.NwkHeader(nwk_dst, self.nwk, radius or 30, next(self._nwk_seq) & 0xFF)
        if nwk_dst == self.nwk:
            # Loopback: the stack hands frames for itself straight back up (no air).
            ind = self._indication(nwk, aps, payload, partner is not None, self.ieee)
            asyncio.get_running_loop().call_soon(self._deliver, ind)
            return
        if ack:
            await self._send_acknowledged(nwk, aps, payload, partner)
            return
        aps_frame = (
            f.encode_aps(aps, payload)
            if partner is None
            else self._secure_aps(aps, payload, partner, KeyId.DATA)
        )
        if not await self._send_unacknowledged(nwk, aps_frame):
            self._counter_exhausted()
            raise DeliveryError(
                f"no MAC acknowledgement from 0x{nwk_dst:04X}"
                f" after {1 + self.air.mac_retries} attempts",
                status=t.MACStatus.MAC_NO_ACK,
            )

    def _counter_exhausted(self) -> None:
        if self.nwk_frame_counter >= COUNTER_EXHAUSTED:
            raise DeliveryError(f"{self!r}: outgoing NWK frame counter exhausted")

    async def _send_unacknowledged(self, nwk: f.NwkHeader, frame: bytes) -> bool:
        """:meth:`_send_nwk` of a frame that asks for no APS acknowledgement: one too long
        for the MAC is refused (``MAC_FRAME_TOO_LONG``) saying that only an acknowledged
        unicast is fragmented (ZB 2.2.8.4.5)."""
        try:
            return await self._send_nwk(nwk, frame)
        except DeliveryError as exc:
            if exc.status != t.MACStatus.MAC_FRAME_TOO_LONG:
                raise
            raise DeliveryError(
                f"{exc}: only an acknowledged unicast is fragmented (ZB 2.2.8.4.5)",
                status=exc.status,
            ) from exc

    async def _send_acknowledged(
        self, nwk: f.NwkHeader, aps: f.ApsHeader, payload: bytes, partner: t.EUI64 | None
    ) -> None:
        """Acknowledged transmission (ZB 2.2.8.4.1): the frame, then up to
        :data:`APS_MAX_FRAME_RETRIES` resends, each :data:`APS_ACK_WAIT` after the one before
        while no APS acknowledgement came; the first ack ends the send. Every attempt waits
        its whole time, even one the MAC did not see acknowledged: its frame may have
        arrived (a lost MAC acknowledgement), and then its APS ack comes all the same.

        A resend is the same APS frame (the same APS counter, which the receiver's duplicate
        rejection knows) in a new NWK frame (its own sequence number and frame counter). An
        APS-secured frame is secured again with the link key's next frame counter: the
        receiver's replay check (ZB 4.4.1.2) comes before duplicate rejection and would drop a
        frame counter it has seen before unacknowledged. A payload that does not fit one
        frame goes in blocks (:meth:`_send_window`)."""
        outgoing = self._split(nwk, aps, payload, secured=partner is not None)
        key = (nwk.dst, aps.counter)
        if key in self._awaited_acks:  # 256 sends to one node in flight: the counter wrapped
            raise DeliveryError(
                f"APS counter {aps.counter} is still awaiting its acknowledgement from "
                f"0x{nwk.dst:04X}"
            )
        awaited = self._awaited_acks[key] = _AwaitedAck(aps, partner, outgoing)
        try:
            if outgoing is None:
                await self._send_attempts(nwk, aps, payload, awaited)
            else:
                while not outgoing.done:
                    await self._send_window(nwk, aps, awaited, outgoing)
                    outgoing.advance()
        finally:
            del self._awaited_acks[key]

    async def _send_attempts(
        self, nwk: f.NwkHeader, aps: f.ApsHeader, payload: bytes, awaited: _AwaitedAck
    ) -> None:
        """The attempts of an unfragmented acknowledged transmission."""
        loop = asyncio.get_running_loop()
        partner = awaited.partner
        attempts = 1 + APS_MAX_FRAME_RETRIES
        for attempt in range(attempts):
            if attempt:
                nwk = self._renewed(nwk)
            frame = (
                f.encode_aps(aps, payload)
                if partner is None
                else self._secure_aps(aps, payload, partner, KeyId.DATA)
            )
            wait = awaited.wait = loop.create_future()
            if not await self._send_nwk(nwk, frame):
                self._counter_exhausted()
            if awaited.acked:
                return
            timer = loop.call_later(APS_ACK_WAIT, _expire, wait)
            try:
                if await wait:
                    return
            finally:
                timer.cancel()
        raise _no_aps_ack(nwk.dst, attempts)

    def _split(
        self, nwk: f.NwkHeader, aps: f.ApsHeader, payload: bytes, *, secured: bool
    ) -> Outgoing | None:
        """The blocks of an acknowledged unicast whose payload does not fit one frame after
        the MAC, NWK and APS headers and security (ZB 2.2.8.4.5), or None when it fits. A
        block is as long as one frame holds with the extended header, or
        ``fragmentation.block_size`` if shorter. A payload over ``fragmentation.max_transfer``
        or needing more than 255 blocks (the count is one octet, ZB 2.2.5.1.8.2) is refused
        before anything is sent (``APS_ASDU_TOO_LONG``)."""
        mac = f.MacHeader(f.MAC_DATA, 0, self.pan_id, nwk.dst, self.pan_id, self.nwk, True)
        octets = len(f.encode_mac(mac, b""))
        if len(payload) <= payload_room(octets, nwk, aps, secured=secured):
            return None
        config = self.fragmentation
        size = payload_room(octets, nwk, block_header(aps, 0, 1), secured=secured)
        size = min(size, config.block_size or size)
        blocks = -(-len(payload) // size)
        if len(payload) > config.max_transfer or blocks > MAX_BLOCKS:
            raise DeliveryError(
                f"APS payload of {len(payload)} octets is too long even for fragmentation: "
                f"{blocks} blocks of {size} octets (at most {MAX_BLOCKS}), at most "
                f"{config.max_transfer} octets",
                status=t.APSStatus.APS_ASDU_TOO_LONG,
            )
        return Outgoing(payload, size, config.window)

    async def _send_window(
        self, nwk: f.NwkHeader, aps: f.ApsHeader, awaited: _AwaitedAck, outgoing: Outgoing
    ) -> None:
        """One window of a fragmented transmission (ZB 2.2.8.4.5.1): its blocks not yet
        acknowledged, :attr:`Fragmentation.interframe_delay` apart, then the window's ack
        awaited :data:`APS_ACK_WAIT`; blocks an ack says are missing, or all of them when no
        ack came, are sent again, up to :data:`APS_MAX_FRAME_RETRIES` times, then the send
        fails with no APS acknowledgement."""
        loop = asyncio.get_running_loop()
        attempts = 1 + APS_MAX_FRAME_RETRIES
        for _ in range(attempts):
            wait = awaited.wait = loop.create_future()
            await self._send_blocks(nwk, aps, awaited.partner, outgoing)
            if not outgoing.pending():
                return
            timer = loop.call_later(APS_ACK_WAIT, _expire, wait)
            try:
                await wait
            finally:
                timer.cancel()
            if not outgoing.pending():
                return
        raise _no_aps_ack(nwk.dst, attempts)

    async def _send_blocks(
        self, nwk: f.NwkHeader, aps: f.ApsHeader, partner: t.EUI64 | None, outgoing: Outgoing
    ) -> None:
        """The window's blocks not acknowledged yet, each a frame of its own: its own NWK
        frame, and APS-secured on its own (its own frame counter) when the ASDU is."""
        delay = self.fragmentation.interframe_delay
        count = len(outgoing.blocks)
        for index, number in enumerate(outgoing.pending()):
            if index and delay:
                await asyncio.sleep(delay)
            header, block = block_header(aps, number, count), outgoing.blocks[number]
            frame = (
                f.encode_aps(header, block)
                if partner is None
                else self._secure_aps(header, block, partner, KeyId.DATA)
            )
            if not await self._send_nwk(self._renewed(nwk), frame):
                self._counter_exhausted()

    def _renewed(self, nwk: f.NwkHeader) -> f.NwkHeader:
        """A new NWK frame to ``nwk``'s destination (its own sequence number), for a resend
        or a block; refused once the node left the network."""
        if not self.joined:
            raise DeliveryError(f"{self!r} left the network before an APS ack came")
        assert self.nwk is not None
        return f.NwkHeader(nwk.dst, self.nwk, nwk.radius, next(self._nwk_seq) & 0xFF)

    def _secure_aps(
        self, aps: f.ApsHeader, payload: bytes, partner: t.EUI64, key_id: KeyId
    ) -> bytes:
        """The APS frame secured (ZB 4.4.1.1) with the link key shared with ``partner``, or
        the key ``key_id`` names derived from it, and that key's next outgoing counter. Data
        frames carry no extended nonce (the receiver takes the sender's EUI-64 from its address
        map), as SE D.5.2.3.1.1.5's frame budget assumes; key transport carries it. Raises
        :class:`DeliveryError` once that counter is exhausted (ZB 4.4.1.1: it never wraps)."""
        link_key = self.link_keys[partner]
        counter = self._aps_out.get((partner, link_key), 0)
        if counter >= COUNTER_EXHAUSTED:
            raise DeliveryError(
                f"outgoing APS frame counter of the link key with {partner} exhausted"
            )
        self._aps_out[partner, link_key] = counter + 1
        return secure_aps(
            f.encode_aps(aps, b""),
            payload,
            link_key=link_key,
            counter=counter,
            source=eui64_int(self.ieee),
            key_id=key_id,
            extended_nonce=key_id != KeyId.DATA,
        )

    async def _send_nwk(self, nwk: f.NwkHeader, payload: bytes, *, secure: bool = True) -> bool:
        """Put a NWK frame on the air, secured with the active network key unless ``secure``
        is False (ZB 4.3.1.1); unicasts ask for a MAC acknowledgement. True once sent, and
        for a unicast once acknowledged; False without sending once the outgoing frame
        counter is exhausted (ZB 4.3.1.1 step 1: it never wraps; only a new key resets it)."""
        sent = self._put_nwk(nwk, payload, secure=secure)
        return sent is not None and await sent

    def _put_nwk(
        self, nwk: f.NwkHeader, payload: bytes, *, secure: bool = True
    ) -> asyncio.Future[bool] | None:
        """:meth:`_send_nwk` without waiting: the frame is on the air (or held for a sleepy
        child) at once, the future tells how its MAC confirmation went; None (nothing sent)
        once the outgoing frame counter is exhausted. A unicast to a node out of range goes
        by a route (:func:`zse.sim._route.send`: the frame is secured when it leaves, after a
        route discovery)."""
        if (
            self.air.multihop
            and nwk.dst not in BROADCAST_ADDRESSES
            and self.air.next_hop(self, nwk.dst) is None
        ):
            build = functools.partial(self._nwk_frame, nwk, payload, secure=secure)
            return _route.send(self, nwk.dst, build)
        frame = self._nwk_frame(nwk, payload, secure=secure)
        if frame is None:
            return None
        return self._mac_send(nwk.dst, frame)

    def _nwk_frame(self, nwk: f.NwkHeader, payload: bytes, *, secure: bool = True) -> bytes | None:
        """The NWK frame of ``nwk`` and ``payload``, secured with the active network key and
        the next outgoing frame counter unless ``secure`` is False; None once the counter is
        exhausted."""
        if secure:
            assert self.network_key is not None
            counter = self.nwk_frame_counter
            if counter >= COUNTER_EXHAUSTED:
                LOGGER.warning("%r: outgoing NWK frame counter exhausted; frame not sent", self)
                return None
            self.nwk_frame_counter += 1
            frame = secure_nwk(
                f.encode_nwk(nwk, b""),
                payload,
                key=self.network_key,
                key_seq=self.network_key_seq,
                counter=counter,
                source=eui64_int(self.ieee),
            )
        else:
            frame = f.encode_nwk(nwk, payload)
        return frame

    def _mac_send(self, dst: int, frame: bytes, *, hop: int | None = None) -> asyncio.Future[bool]:
        """MCPS-DATA.request of the NWK ``frame`` for ``dst``: a unicast to its next hop
        (``hop``, a route's; else the destination itself, or a sleepy end device's parent:
        :meth:`Medium.next_hop`) asking for an acknowledgement, a broadcast to 0xFFFF. The
        future: True once sent (a unicast: once acknowledged). On the air at once, without
        waiting (an APS ack is sent from the receive path before the application sees the
        frame it acknowledges)."""
        unicast = dst not in BROADCAST_ADDRESSES
        if not unicast:
            hop = 0xFFFF
        elif hop is None:
            hop = self.air.next_hop(self, dst)
            if hop is None:
                hop = dst
        data = self._mac_data(hop, frame, ack=unicast)
        return self.air.transmit(self.air.frame(self, data))

    def _nwk_of(self, ieee: t.EUI64) -> int | None:
        return self._nwk_by_ieee.get(ieee)

    def _learn_address(self, nwk: int, ieee: t.EUI64) -> None:
        """Record that ``ieee`` now has the short address ``nwk``, forgetting the one it had
        (ZB 2.4.3.1.11: the EUI-64 is the device's identity, the short address follows it)."""
        if self.address_map.get(nwk) == ieee:
            return
        ieee = f.eui64(ieee)
        old = self._nwk_by_ieee.pop(ieee, None)
        if old is not None and self.address_map.get(old) == ieee:
            del self.address_map[old]
        displaced = self.address_map.get(nwk)
        if displaced is not None and self._nwk_by_ieee.get(displaced) == nwk:
            del self._nwk_by_ieee[displaced]
        self.address_map[nwk] = ieee
        self._nwk_by_ieee[ieee] = nwk

    def _forget_addresses(self) -> None:
        self.address_map.clear()
        self._nwk_by_ieee.clear()

    def _joined_as(self, nwk: int) -> t.EUI64 | None:
        """The EUI-64 this node's own join records give ``nwk`` (its own address; a device:
        its Trust Center's; the Trust Center: the devices it admitted), which a Device_annce
        may not contradict."""
        return self.ieee if nwk == self.nwk else None

    def _joined_at(self, ieee: t.EUI64) -> int | None:
        """The short address this node's own join records give ``ieee``, if any."""
        return self.nwk if ieee == self.ieee else None

    def _contradicts(self, nwk: int, ieee: t.EUI64, what: str) -> bool:
        """Whether pairing ``nwk`` with ``ieee`` contradicts the node's own join records (an
        address the Trust Center gave another device, or another address for a device it
        admitted); such a claim (``what``) is counted in ``address_conflicts``."""
        held, at = self._joined_as(nwk), self._joined_at(ieee)
        if (held is None or held == ieee) and (at is None or at == nwk):
            return False
        self.stats.address_conflicts += 1
        LOGGER.debug("%r: %s of 0x%04X as %s conflicts; ignored", self, what, nwk, ieee)
        return True

    def _announced(self, nwk: int, ieee: t.EUI64) -> bool:
        """Device_annce (ZB 2.4.3.1.11.2, effect on receipt): the references the node already
        holds are brought up to date, and no entry is added for a device it never heard of:
        a node that holds the announced EUI-64 (in its address map, or as the partner of an
        APS link key) takes the announced address for it, and one that holds the announced
        address for another EUI-64 forgets that pairing. Each node's
        address map so holds the devices it deals with, not the whole network (which, heard
        by every node, grew as the square of the network). A device whose address a node
        needs learns it the spec's way: a join or rejoin through it, or address discovery.

        Refused (False) when the announce contradicts the node's own join records
        (:meth:`_contradicts`). Any NWK-key holder can send a Device_annce, so it may not
        redirect the APS link key of a device the node admitted or joined through; a device
        that really moved rejoins and proves its link key (ZB 4.6.3.6)."""
        if self._contradicts(nwk, ieee, "Device_annce"):
            return False
        if ieee in self._nwk_by_ieee or ieee in self.link_keys:
            self._learn_address(nwk, ieee)
        else:
            displaced = self.address_map.get(nwk)
            if displaced is not None:
                del self.address_map[nwk]
                if self._nwk_by_ieee.get(displaced) == nwk:
                    del self._nwk_by_ieee[displaced]
        return True

    # -- reception -----------------------------------------------------------------------------

    def _receive(self, tx: Transmission) -> None:  # noqa: PLR0911, PLR0912, PLR0915
        """Called by the air for every frame this node's MAC accepts."""
        if tx.mac.ack_request and tx.mac.src is not None and self._mac_duplicate(tx):
            return
        if tx.raw:
            self._receive_raw(tx)
            return
        if self._mac_waiters:
            for matcher, future in list(self._mac_waiters):
                if not future.done() and matcher(tx):
                    future.set_result(tx)
        if tx.mac.frame_type == f.MAC_COMMAND:
            self._mac_command(tx)
            return
        if tx.mac.frame_type != f.MAC_DATA or self.nwk is None:
            return
        try:
            nwk, payload = tx.shared("nwk", _decode_nwk, self.air, tx.payload)
        except DecodeError:
            self.stats.malformed += 1
            return
        if nwk.dst not in BROADCAST_ADDRESSES and nwk.dst != self.nwk:
            self._relay(tx, nwk)
            return
        if nwk.dst == 0xFFFC and self.logical_type == zdo_t.LogicalType.EndDevice:
            return
        rejoin_frame = False  # an unsecured frame of a Trust Center rejoin (ZB 4.6.3.6)
        aux_source: int | None = None  # the EUI-64 whose frame counter the NWK frame passed
        if nwk.security:
            unsecured = self._unsecure_nwk(tx)
            if unsecured is None:
                return
            payload, aux_source = unsecured.payload, unsecured.source
            if nwk.frame_type != f.NWK_DATA and _route.is_routing_command(nwk, payload):
                _route.command(self, tx, nwk, payload)
                return
            if nwk.dst in BROADCAST_ADDRESSES and self.air.multihop:
                if _route.broadcast(self, nwk, payload):
                    return
            elif nwk.dst == 0xFFFF:
                self._relay_broadcast(nwk, payload)
            # The auxiliary header's source is the sender's claim: it is the nonce, never a
            # reason to learn an address (only joins, rejoins and Device_annce are).
        elif self.network_key is not None:
            # Once joined, every NWK frame must be secured (ZB 4.3.1.2, nwkSecureAllFrames),
            # but those of a Trust Center rejoin
            rejoin_frame = self._rejoin_unsecured(nwk, payload)
            if not rejoin_frame:
                self.stats.nwk_unsecured += 1
                return
        if nwk.frame_type != f.NWK_DATA:
            if (nwk.security or rejoin_frame) and self._sender_bound(tx, nwk, aux_source, payload):
                self._nwk_command(nwk, payload)
            return
        try:
            # the payload is the frame's shared NWK payload (a shared object): parsed once
            aps, body = tx.shared(("aps", id(payload)), f.decode_aps, payload)
        except DecodeError:
            self.stats.malformed += 1
            return
        key_id: KeyId | None = None
        source = nwk.src_ieee or self.address_map.get(nwk.src)
        if aps.security:
            opened = self._unsecure_aps(nwk, payload)
            if opened is None:
                return
            key_id, body, source = opened
        if aps.frame_type == f.APS_COMMAND:
            self._aps_command(nwk, key_id, source, body)
            return
        if not nwk.security:
            self.stats.nwk_unsecured += 1  # APS data is NWK-secured, even to a joining device
            return
        if aps.frame_type == f.APS_ACK:
            self._ack_received(nwk, aps, key_id, source)
            return
        if key_id not in (None, KeyId.DATA):
            # the key-transport and key-load keys secure Transport Key commands only (ZB 4.5.3)
            self.stats.aps_key_misuse += 1
            return
        if aps.fragmentation:
            self._block_received(nwk, aps, body, key_id, source)
            return
        if self._duplicate_acknowledged(nwk, aps, key_id, source):
            return
        encrypted = key_id == KeyId.DATA
        # the same indication for every node hearing the frame at the same time (immutable)
        now = asyncio.get_running_loop().time()
        self._deliver(
            tx.shared(
                ("indication", id(body), encrypted, source, now),
                self._indication,
                nwk,
                aps,
                body,
                encrypted,
                source,
            )
        )

    def _sender_bound(
        self, tx: Transmission, nwk: f.NwkHeader, aux_source: int | None, payload: bytes
    ) -> bool:
        """Whether a NWK command comes from the device it claims to (ZB 3.4, 4.3.1.2): any
        holder of the network key can write a NWK header, so the EUI-64s it claims (the NWK
        extended source, the auxiliary header's source, whose frame counter was checked) must
        agree with each other and with the device this node's records give the NWK source
        (joins, rejoins, Device_annce), and the MAC source must be the NWK source (a Leave or
        Rejoin is taken from a neighbour only: relayed, its security header would name the
        relaying router, not its sender). A short address the node does not know may not claim an
        EUI-64 it knows at another address, but for a Rejoin Request: the device moved (an
        address conflict, ZB 3.6.1.9) and rejoins from its new address (ZB 3.6.1.4.2), secured
        (the auxiliary header names it, its own frame counter checked) or in clear (a Trust
        Center rejoin); either moves nothing until the device proves its link key (ZB 4.6.3.6).
        Else the frame is dropped and counted (``nwk_source_mismatch``): an insider forging
        its neighbour's Leave or Rejoin."""
        claims = {nwk.src_ieee, None if aux_source is None else int_eui64(aux_source)} - {None}
        known = self.address_map.get(nwk.src)
        moved = payload[:1] == bytes((f.NWK_CMD_REJOIN_REQUEST,)) and known is None
        bound = (
            tx.mac.src == nwk.src
            and len(claims) <= 1
            and all(
                claim == known if known is not None else moved or self._nwk_of(claim) is None
                for claim in claims
                if claim is not None
            )
        )
        if not bound:
            self.stats.nwk_source_mismatch += 1
            LOGGER.debug(
                "%r: NWK command from 0x%04X claiming %s is not from the device at that "
                "address; dropped",
                self,
                nwk.src,
                sorted(map(str, claims)),
            )
        return bound

    def _duplicate_acknowledged(
        self, nwk: f.NwkHeader, aps: f.ApsHeader, key_id: KeyId | None, source: t.EUI64 | None
    ) -> bool:
        """APS duplicate rejection (:meth:`_seen_before`), then the APS acknowledgement of a
        unicast that asks for one, a duplicate too: its first ack may be the one that was
        lost (ZB 2.2.8.4.2). True for a duplicate, which goes no further."""
        duplicate = self._seen_before(source if source is not None else nwk.src, aps.counter)
        if aps.ack_request and aps.delivery == f.APS_DELIVERY_UNICAST and nwk.dst == self.nwk:
            self._acknowledge(nwk, f.aps_ack(aps), source if key_id is not None else None)
        return duplicate

    def _block_received(
        self,
        nwk: f.NwkHeader,
        aps: f.ApsHeader,
        block: bytes,
        key_id: KeyId | None,
        source: t.EUI64 | None,
    ) -> None:
        """A block of a fragmented transmission (ZB 2.2.8.4.5.2), which only an acknowledged
        unicast may be: put together per (sender, APS counter) by the bounded
        :class:`~zse.sim._fragment.Reassembly`, each window acknowledged (APS-secured as the
        block was), a block received again acknowledged again, and the whole delivered once,
        as one indication, after the last ack went out. Garbage and blocks refused for want
        of room are dropped and counted (:class:`NodeStats`)."""
        if aps.delivery != f.APS_DELIVERY_UNICAST or nwk.dst != self.nwk or not aps.ack_request:
            self.stats.aps_fragments_invalid += 1
            return
        encrypted = key_id == KeyId.DATA
        got = self._reassembly.receive(
            (source if source is not None else nwk.src, aps.counter),
            aps,
            block,
            encrypted=encrypted,
            now=asyncio.get_running_loop().time(),
            config=self.fragmentation,
        )
        self._count_block(nwk, aps, got)
        if got.ack is not None:
            ack = f.aps_block_ack(aps, *got.ack)
            self._acknowledge(nwk, ack, source if encrypted else None)
        if got.message is not None:
            self._deliver(self._indication(nwk, aps, got.message, encrypted, source))
        self._watch_reassembly()

    def _count_block(self, nwk: f.NwkHeader, aps: f.ApsHeader, got: Received) -> None:
        if got.duplicate:
            self.stats.aps_duplicates += 1
        elif got.dropped is not None:
            if got.dropped == "refused":
                self.stats.aps_fragments_refused += 1
            else:
                self.stats.aps_fragments_invalid += 1
            LOGGER.debug(
                "%r: block %d of APS counter %d from 0x%04X %s; dropped",
                self,
                aps.block,
                aps.counter,
                nwk.src,
                got.dropped,
            )

    def _watch_reassembly(self) -> None:
        """Have the transfers being put together dropped when due (their timeout)."""
        if self._reassembly_timer is None:
            deadline = self._reassembly.next_deadline()
            if deadline is not None:
                loop = asyncio.get_running_loop()
                self._reassembly_timer = loop.call_at(deadline, self._reassembly_due, deadline)

    def _reassembly_due(self, deadline: float) -> None:
        # asyncio may run a timer up to its clock resolution early: what was due then goes
        self._reassembly_timer = None
        now = max(asyncio.get_running_loop().time(), deadline)
        self.stats.aps_reassembly_timeouts += self._reassembly.expire(now)
        self._watch_reassembly()

    def _acknowledge(self, nwk: f.NwkHeader, ack: f.ApsHeader, partner: t.EUI64 | None) -> None:
        """Answer a unicast data frame asking for it with the APS acknowledgement ``ack`` (ZB
        2.2.8.4.2, frame ZB 2.2.5.2.2; a window of blocks, ZB 2.2.8.4.5.2): to the frame's NWK
        source, NWK-secured, and APS-secured with the link key shared with ``partner`` when
        the frame was (ZB 4.4.1.1). Put on the air at once, before the application sees the
        frame (and answers it)."""
        assert self.nwk is not None
        if partner is None:
            frame = f.encode_aps(ack, b"")
        elif partner not in self.link_keys:
            return
        else:
            try:
                frame = self._secure_aps(ack, b"", partner, KeyId.DATA)
            except DeliveryError as exc:
                LOGGER.warning("%r: APS ack to 0x%04X not sent: %s", self, nwk.src, exc)
                return
        hdr = f.NwkHeader(nwk.src, self.nwk, 30, next(self._nwk_seq) & 0xFF)
        try:  # a parent holds the ack for a sleepy child; its queue may be full
            sent = self._put_nwk(hdr, frame)
        except DeliveryError as exc:
            LOGGER.debug("%r: APS ack to 0x%04X not sent: %s", self, nwk.src, exc)
            return
        if sent is not None:  # nobody awaits an ack's MAC outcome (a held one may expire)
            sent.add_done_callback(_outcome_retrieved)

    def _ack_received(
        self, nwk: f.NwkHeader, ack: f.ApsHeader, key_id: KeyId | None, source: t.EUI64 | None
    ) -> None:
        """An APS acknowledgement (ZB 2.2.8.4.1) ends the wait of the unicast it answers: one
        from that unicast's destination (its NWK source; for an APS-secured frame, also the
        partner whose link key opened the ack), with its APS counter, cluster, profile and
        endpoints, secured as the frame was. Any other is dropped and counted
        (``aps_acks_unmatched``). Without APS security, only the network key vouches for an
        ack, as for the data frame it answers. A fragmented transmission's ack (with the
        extended header) answers the window it names and no unfragmented frame, nor the
        reverse (ZB 2.2.8.4.5.1)."""
        awaited = self._awaited_acks.get((nwk.src, ack.counter)) if nwk.dst == self.nwk else None
        if awaited is None or not awaited.take(ack, key_id, source):
            self.stats.aps_acks_unmatched += 1
            LOGGER.debug(
                "%r: APS ack of counter %d from 0x%04X answers no frame awaiting one; dropped",
                self,
                ack.counter,
                nwk.src,
            )
            return
        wait = awaited.wait
        if wait is not None and not wait.done():
            wait.set_result(True)

    def _mac_duplicate(self, tx: Transmission) -> bool:
        """MAC duplicate detection (802.15.4-2006 7.2.1.2, 7.5.6.2): True (and counted) for
        a frame asking for an acknowledgement with the source and sequence number of the last
        such frame from that source, received within :data:`MAC_DUPLICATE_LIFETIME`: the
        sender's retransmission after a lost acknowledgement (acknowledged again, not passed
        up). Its bytes must match too: without air time, a sender can wrap its sequence
        number in no time at all."""
        assert tx.mac.src is not None
        now = asyncio.get_running_loop().time()
        source = (tx.mac.src_pan, tx.mac.src)
        last = self._mac_last.pop(source, None)
        seq = tx.mac.seq & 0xFF
        # oldest first: what is past the lifetime can never match again, and goes (a flood of
        # spoofed sources kept each one's last frame for good)
        for oldest, (_, _, heard) in list(itertools.islice(self._mac_last.items(), 8)):
            if now - heard < MAC_DUPLICATE_LIFETIME:
                break
            del self._mac_last[oldest]
        self._mac_last[source] = (seq, tx.data, now)
        if (
            last is not None
            and last[0] == seq
            and now - last[2] < MAC_DUPLICATE_LIFETIME
            and last[1] == tx.data
        ):
            self.stats.mac_duplicates += 1
            return True
        return False

    def _seen_before(self, source: t.EUI64 | int, counter: int) -> bool:
        """APS duplicate rejection (ZB 2.2.8.4.2): True (and counted) for an APS counter
        ``source`` sent within the last :data:`DUPLICATE_WINDOW` counters and already seen,
        while the source's entry lives (:data:`DUPLICATE_LIFETIME` after its last frame);
        else it is recorded. The table keeps :data:`DUPLICATE_TABLE` sources, the one heard
        from longest ago dropped first."""
        now = asyncio.get_running_loop().time()
        entry = self._seen.pop(source, None)
        if entry is None or now - entry[2] >= DUPLICATE_LIFETIME:
            newest, mask = counter, 1
        else:
            newest, mask, _ = entry
            behind, ahead = (newest - counter) & 0xFF, (counter - newest) & 0xFF
            if 0 < ahead < 0x80:  # a newer frame: the window moves on
                newest, mask = counter, (mask << ahead | 1) & ((1 << DUPLICATE_WINDOW) - 1)
            elif behind < DUPLICATE_WINDOW:
                if mask >> behind & 1:
                    self._seen[source] = entry
                    self.stats.aps_duplicates += 1
                    return True
                mask |= 1 << behind
            else:  # too far behind to tell: taken as new, the window stays
                self._seen[source] = entry
                return False
        if len(self._seen) >= DUPLICATE_TABLE:
            del self._seen[next(iter(self._seen))]
        self._seen[source] = (newest, mask, now)
        return False

    def _unsecure_nwk(self, tx: Transmission) -> Unsecured | None:
        """The NWK frame checked and decrypted (ZB 4.3.1.2) with the network key its key
        sequence number names, or None (dropped and counted). The parse and the decryption
        under a given key are shared by every node hearing the frame; the frame counter
        check is the node's own."""
        frame = tx.payload
        try:
            aux = tx.shared("nwk-aux", _nwk_aux, frame)
            counters = self._nwk_in.setdefault(aux.key_seq or 0, IncomingCounters())
            sealed = tx.shared("nwk-sealed", split_nwk, frame)
            aux = sealed.aux
            assert aux.key_seq is not None
            assert aux.source is not None
            key = self.network_key if aux.key_seq == self.network_key_seq else None
            if self.alternate_network_key is not None:
                seq, alternate = self.alternate_network_key
                if seq == aux.key_seq:
                    key = alternate
            if key is None:
                raise UnknownKey(f"no network key with sequence number {aux.key_seq}")
            counters.check(aux.source, aux.counter)
            opened: Unsecured | None = tx.shared(
                ("nwk-open", _key_token(key)), _open_nwk, self.air, sealed, key
            )
            if opened is None:
                raise BadMic(
                    f"MIC does not verify (frame counter {aux.counter} from {aux.source:016x}, "
                    f"key {aux.key_id.name.lower()})"
                )
            counters.accept(aux.source, aux.counter)
            return opened
        except SecurityFailure as failure:
            self.stats.count("nwk", failure)
        except DecodeError:
            self.stats.malformed += 1
        return None

    def _unsecure_aps(self, nwk: f.NwkHeader, frame: bytes) -> tuple[KeyId, bytes, t.EUI64] | None:
        """The APS frame checked and decrypted (ZB 4.4.1.2) with the link key shared with its
        sender (or a key derived from it): its key identifier, payload and sender, or None
        (dropped and counted).

        The sender is the device whose link key opened the frame, and it must be the device
        the NWK source address belongs to (as this node's address map knows it, and as the
        NWK header's extended source says when present): otherwise a joined device could
        secure a frame with its own link key and pass it off as another's. Such a frame,
        though it decrypts, is dropped and counted as ``aps_source_mismatch``. At an address
        the map does not know, the devices whose rejoins from there are pending
        (:meth:`_rejoin_claimants`) may each be the sender: the one whose link key opens the
        frame proves its claim (:meth:`_rejoin_proven`), whichever claimed the address first."""
        mapped = self.address_map.get(nwk.src)
        claimants = (mapped,) if mapped is not None else self._rejoin_claimants(nwk.src)
        try:
            aux, _ = AuxHeader.decode(frame[aps_header_length(frame) :])
            named = None if aux.source is None else (int_eui64(aux.source),)
            opened, partner = self._open_aps(frame, named or claimants or (None,))
        except SecurityFailure as failure:
            self.stats.count("aps", failure)
            LOGGER.debug("%r: APS frame from 0x%04X dropped: %s", self, nwk.src, failure)
            return None
        except DecodeError:
            self.stats.malformed += 1
            return None
        unclaimed = partner not in claimants and not self._takes_key_from(opened.aux.key_id)
        if unclaimed or nwk.src_ieee not in (None, partner):
            self.stats.aps_source_mismatch += 1
            LOGGER.debug(
                "%r: APS frame from 0x%04X secured by %s, not the device at that address; dropped",
                self,
                nwk.src,
                partner,
            )
            return None
        if mapped is None and partner in claimants:
            self._rejoin_proven(nwk.src, partner)
        return opened.aux.key_id, opened.payload, partner

    def _takes_key_from(self, key_id: KeyId | None) -> bool:
        """Whether a frame secured with ``key_id`` is taken from whichever device its link
        key names, not the one at its NWK source: only a device joining through a router
        takes its Transport Key so (:class:`SimDevice`)."""
        return False

    def _open_aps(
        self, frame: bytes, senders: tuple[t.EUI64 | None, ...]
    ) -> tuple[Unsecured, t.EUI64]:
        """``frame`` opened with the link key of the first of ``senders`` whose key verifies
        it (its frame counter checked against that key's), and that sender. If none does,
        the most telling failure is raised: a stale counter (a replay) before a bad MIC, a
        bad MIC before an unknown key."""
        failures: list[SecurityFailure] = []
        for partner in senders:
            link_key = None if partner is None else self._link_key_for(partner)
            counters = (
                None
                if partner is None or link_key is None
                else self._aps_in.setdefault((partner, link_key), IncomingCounters())
            )
            source = None if partner is None else eui64_int(partner)
            try:
                opened = unsecure_aps(frame, link_key, source=source, counters=counters)
            except SecurityFailure as failed:
                failures.append(failed)
                continue
            assert partner is not None  # unsecure_aps raises UnknownKey without a key
            return opened, partner
        for kind in (StaleFrameCounter, BadMic):
            for telling in failures:
                if isinstance(telling, kind):
                    raise telling
        raise failures[0]

    def _rejoin_claimants(self, nwk: int) -> tuple[t.EUI64, ...]:
        """The devices whose rejoins from ``nwk`` await their proof (the coordinator's
        records; other nodes have none)."""
        return ()

    def _rejoin_proven(self, nwk: int, ieee: t.EUI64) -> None:
        """``ieee``'s link key opened a frame from ``nwk``, where its rejoin was pending."""

    def _link_key_for(self, partner: t.EUI64) -> bytes | None:
        """The link key shared with ``partner`` (a joining device: its preconfigured key)."""
        return self.link_keys.get(partner)

    def _indication(
        self,
        nwk: f.NwkHeader,
        aps: f.ApsHeader,
        payload: bytes,
        encrypted: bool,
        src_ieee: t.EUI64 | None,
    ) -> ApsIndication:
        if aps.delivery == f.APS_DELIVERY_GROUP:
            mode, addr = t.AddrMode.Group, aps.group or 0
        elif aps.delivery == f.APS_DELIVERY_BROADCAST:
            mode, addr = t.AddrMode.Broadcast, nwk.dst
        else:
            mode, addr = t.AddrMode.NWK, nwk.dst
        assert aps.src_ep is not None
        assert aps.cluster is not None
        assert aps.profile is not None
        return ApsIndication(
            src_nwk=nwk.src,
            src_ieee=src_ieee,
            dst_mode=mode,
            dst_addr=addr,
            dst_ep=aps.dst_ep,
            src_ep=aps.src_ep,
            cluster_id=aps.cluster,
            profile_id=aps.profile,
            payload=payload,
            aps_encrypted=encrypted,
            timestamp=asyncio.get_running_loop().time(),
        )

    def _receive_raw(self, tx: Transmission) -> None:
        frame = RawFrame(
            data=tx.data, channel=tx.channel, timestamp=asyncio.get_running_loop().time()
        )
        for callback in list(self._raw_callbacks):
            try:
                callback(frame)
            except Exception:
                LOGGER.exception("inter-PAN callback %r failed", callback)
        for queue in self._raw_queues:
            queue.put_nowait(frame)

    def _deliver(self, ind: ApsIndication) -> None:
        """Hand an APS indication to ZDO or the application."""
        if ind.profile_id == ZDO_PROFILE and ind.dst_ep == 0:
            self._zdo_indication(ind)
        else:
            self._deliver_app(ind)

    def _deliver_app(self, ind: ApsIndication) -> None:
        raise NotImplementedError

    def _mac_command(self, tx: Transmission) -> None:
        """MAC commands: subclasses handle association."""

    def _relay(self, tx: Transmission, nwk: f.NwkHeader) -> None:
        """A NWK unicast for another node reached this node's MAC: a router relays it
        (:func:`zse.sim._route.relay`; a parent holds it for its sleepy child)."""
        _route.relay(self, tx, nwk)

    def _answers_for(self, nwk: int) -> bool:
        """Whether this router answers a Route Request for ``nwk``, not itself: a parent does
        for its sleepy end device children (ZB 3.6.3.5.2)."""
        return False

    def _parent_address(self) -> int | None:
        """The parent an end device sends its unicasts to (ZB 3.6.2), if it has one."""
        return None

    def _relay_broadcast(self, nwk: f.NwkHeader, payload: bytes) -> None:
        """A secured NWK broadcast to 0xFFFF received (``payload`` decrypted): a parent holds
        a data frame for its sleepy children (``zse.sim._parent``)."""

    def _mac_receives(self, tx: Transmission) -> bool:
        """Whether the node's receiver is on for ``tx`` (only a sleepy device's is ever off,
        and the air asks only those)."""
        return True

    def _frame_pending(self, tx: Transmission) -> bool:
        """Whether this node's acknowledgement of the Data Request ``tx`` says it holds a
        frame for its sender (802.15.4-2006 7.2.1.1.3): only a parent does."""
        return False

    def _listening(self) -> None:
        """Tell the medium whether the node now has a use for beacons, MAC commands or raw
        frames (what :meth:`_hears` may accept), so that it indexes the node as a listener."""
        self.air._listen(
            self,
            bool(self._mac_waiters or self._raw_callbacks or self._raw_queues)
            or self._wants_mac_commands(),
        )

    def _wants_mac_commands(self) -> bool:
        """Whether :meth:`_mac_command` does anything now (a coordinator, a router open to
        joins)."""
        return type(self)._mac_command is not Node._mac_command

    def _hears(self, tx: Transmission) -> bool:
        """Whether :meth:`_receive` would do anything with a raw frame or a MAC frame other
        than data: the medium hands such frames only to nodes that use them (a scanning
        device, a coordinator, an inter-PAN listener), so a beacon costs nothing per idle
        node however many there are."""
        if tx.raw:
            return bool(self._raw_callbacks or self._raw_queues)
        if self._mac_waiters:
            return True
        return tx.mac.frame_type == f.MAC_COMMAND and self._wants_mac_commands()

    def _aps_command(
        self, nwk: f.NwkHeader, key_id: KeyId | None, source: t.EUI64 | None, payload: bytes
    ) -> None:
        """APS commands (``key_id``: the APS key that secured it, None if unsecured): devices
        handle Transport Key and Switch Key."""

    def _nwk_command(self, nwk: f.NwkHeader, payload: bytes) -> None:
        """NWK commands (ZB 3.4): Leave and Rejoin are handled by the subclasses."""

    def _rejoin_unsecured(self, nwk: f.NwkHeader, payload: bytes) -> bool:
        """Whether a joined node takes this NWK-unsecured frame: only the frames of a Trust
        Center rejoin (ZB 4.6.3.6), which the subclasses know."""
        return False

    async def _wait_mac(
        self, matcher: Callable[[Transmission], bool], timeout: float
    ) -> Transmission | None:
        future: asyncio.Future[Transmission] = asyncio.get_running_loop().create_future()
        entry = (matcher, future)
        self._mac_waiters.append(entry)
        self._listening()
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return None
        finally:
            self._mac_waiters.remove(entry)
            self._listening()

    # -- ZDO server (ZB 2.4.3) -----------------------------------------------------------------

    def _zdo_indication(self, ind: ApsIndication) -> None:
        cluster = ind.cluster_id
        if cluster & 0x8000:
            if ind.payload:
                future = self._zdo_waiters.get((ind.src_nwk, ind.payload[0]))
                if future is not None and not future.done():
                    try:
                        cmd = zdo_t.ZDOCmd(cluster)
                        _, types = zdo_t.CLUSTERS[cmd]
                        args, _ = t.deserialize(ind.payload[1:], types)
                    except (ValueError, KeyError) as exc:
                        future.set_exception(DecodeError(f"bad ZDO response: {exc}"))
                    else:
                        future.set_result(list(args))
            self._zdo_up(ind)
            return
        if not self._zdo_serve(ind):
            self._zdo_up(ind)

    def _zdo_up(self, ind: ApsIndication) -> None:
        """ZDO frames the node's own ZDO does not consume (devices: ignored)."""

    def _zdo_serve(self, ind: ApsIndication) -> bool:  # noqa: PLR0912, PLR0915
        """Answer a ZDO request; True when consumed (the coordinator passes the rest up)."""
        if not ind.payload:
            return True
        tsn, data = ind.payload[0], ind.payload[1:]
        unicast = ind.dst_mode == t.AddrMode.NWK
        if ind.cluster_id == zdo_t.ZDOCmd.Device_annce and len(data) >= 10:
            # Fast path for the broadcast every node hears at every join. An announce the
            # node refused is consumed: the coordinator does not pass it up to zigpy either.
            return not self._announced(int.from_bytes(data[:2], "little"), f.Eui64(data[2:10]))
        try:
            cmd = zdo_t.ZDOCmd(ind.cluster_id)
            _, types = zdo_t.CLUSTERS[cmd]
            args, _ = t.deserialize(data, types)
        except (ValueError, KeyError):
            if unicast:
                self._zdo_reply(
                    ind, ind.cluster_id | 0x8000, tsn, [zdo_t.Status.NOT_SUPPORTED], [zdo_t.Status]
                )
            return True
        assert self.nwk is not None
        nwk = t.NWK(self.nwk)
        status = zdo_t.Status
        rsp: tuple[int, list[Any], list[Any]] | None = None
        if cmd == zdo_t.ZDOCmd.NWK_addr_req:
            if args[0] == self.ieee:
                rsp = (0x8000, [status.SUCCESS, self.ieee, nwk], [status, t.EUI64, t.NWK])
        elif cmd == zdo_t.ZDOCmd.IEEE_addr_req:
            if args[0] == self.nwk or args[0] in BROADCAST_ADDRESSES:
                rsp = (0x8001, [status.SUCCESS, self.ieee, nwk], [status, t.EUI64, t.NWK])
        elif cmd == zdo_t.ZDOCmd.Node_Desc_req:
            rsp = (
                0x8002,
                [status.SUCCESS, nwk, self.node_descriptor()],
                [status, t.NWK, zdo_t.NodeDescriptor],
            )
        elif cmd == zdo_t.ZDOCmd.Active_EP_req:
            eps = t.LVList[t.uint8_t, t.uint8_t](sorted(self.descriptors))
            rsp = (
                0x8005,
                [status.SUCCESS, nwk, eps],
                [status, t.NWK, t.LVList[t.uint8_t, t.uint8_t]],
            )
        elif cmd == zdo_t.ZDOCmd.Simple_Desc_req:
            desc = self.descriptors.get(int(args[1]))
            if desc is None:
                rsp = (0x8004, [status.NOT_ACTIVE, nwk], [status, t.NWK])
            else:
                sized = zdo_t.SizePrefixedSimpleDescriptor(**desc.as_dict())
                rsp = (
                    0x8004,
                    [status.SUCCESS, nwk, sized],
                    [status, t.NWK, zdo_t.SizePrefixedSimpleDescriptor],
                )
        elif cmd == zdo_t.ZDOCmd.Match_Desc_req:
            matches = self.match_endpoints(int(args[1]), list(args[2]), list(args[3]))
            if matches or unicast:
                eps = t.LVList[t.uint8_t, t.uint8_t](matches)
                rsp = (
                    0x8006,
                    [status.SUCCESS, nwk, eps],
                    [status, t.NWK, t.LVList[t.uint8_t, t.uint8_t]],
                )
        elif cmd in (zdo_t.ZDOCmd.Bind_req, zdo_t.ZDOCmd.Unbind_req):
            entry = zdo_t.Binding(
                SrcAddress=args[0], SrcEndpoint=args[1], ClusterId=args[2], DstAddress=args[3]
            )
            answer = self.bindings.request(cmd, self.ieee, self.descriptors, entry)
            rsp = (cmd | 0x8000, [answer], [status])
        elif cmd == zdo_t.ZDOCmd.Mgmt_Bind_req:
            rsp = self._mgmt_bind_rsp(int(args[0]))
        elif cmd == zdo_t.ZDOCmd.Mgmt_Permit_Joining_req:
            self._permit_request(int(args[0]))
            if unicast:
                rsp = (0x8036, [status.SUCCESS], [status])
        elif cmd == zdo_t.ZDOCmd.Mgmt_Leave_req:
            rsp = (0x8034, [status.SUCCESS], [status])
            asyncio.get_running_loop().call_later(0.01, self._leave_requested)
        elif cmd == zdo_t.ZDOCmd.Device_annce:
            return not self._announced(int(args[0]), args[1])
        elif unicast:
            rsp = (cmd | 0x8000, [status.NOT_SUPPORTED], [status])
        if rsp is not None and (unicast or rsp[0] in (0x8000, 0x8001, 0x8006)):
            self._zdo_reply(ind, rsp[0], tsn, rsp[1], rsp[2])
        return True

    def _mgmt_bind_rsp(self, start: int) -> tuple[int, list[Any], list[Any]]:
        """Mgmt_Bind_rsp (ZB 2.4.4.3.4): the table's size, ``start`` and the entries from
        ``start`` that fit in one frame, in zigpy's own ZDO types."""
        rsp = zdo_t.ZDOCmd.Mgmt_Bind_rsp
        _, types = zdo_t.CLUSTERS[rsp]
        listed = t.LVList[zdo_t.Binding, t.uint8_t](self.bindings.page(start))
        return (rsp, [zdo_t.Status.SUCCESS, len(self.bindings), start, listed], list(types))

    def match_endpoints(
        self, profile: int, in_clusters: list[int], out_clusters: list[int]
    ) -> list[int]:
        """Endpoints matching a Match_Desc_req (ZB 2.4.3.1.7)."""
        out = []
        for ep, desc in sorted(self.descriptors.items()):
            if profile not in (desc.profile, 0xFFFF):
                continue
            if set(in_clusters) & set(desc.input_clusters) or set(out_clusters) & set(
                desc.output_clusters
            ):
                out.append(ep)
        return out

    def _zdo_reply(
        self, ind: ApsIndication, cluster: int, tsn: int, args: list[Any], types: list[Any]
    ) -> None:
        payload = bytes((tsn,)) + t.serialize(args, types)
        self._spawn(
            self.send_aps(
                dst_mode=t.AddrMode.NWK,
                dst_addr=ind.src_nwk,
                dst_ep=0,
                src_ep=0,
                cluster_id=cluster,
                profile_id=ZDO_PROFILE,
                payload=payload,
            )
        )

    def _permit_request(self, seconds: int) -> None:
        """Mgmt_Permit_Joining_req: only the coordinator admits devices."""

    def _leave_requested(self) -> None:
        """Mgmt_Leave_req: devices leave."""

    async def zdo_request(
        self, dst_nwk: int, command: zdo_t.ZDOCmd, *args: Any, timeout: float = 5.0
    ) -> list[Any]:
        """Send a ZDO request to ``dst_nwk`` and return the response's fields."""
        _, types = zdo_t.CLUSTERS[command]
        tsn = next(self._zdo_tsn) & 0xFF
        payload = bytes((tsn,)) + t.serialize(args, types)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._zdo_waiters[(dst_nwk, tsn)] = future
        try:
            await self.send_aps(
                dst_mode=t.AddrMode.NWK,
                dst_addr=dst_nwk,
                dst_ep=0,
                src_ep=0,
                cluster_id=command,
                profile_id=ZDO_PROFILE,
                payload=payload,
            )
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._zdo_waiters.pop((dst_nwk, tsn), None)

    _tasks: set[asyncio.Task[Any]]

    def _spawn(self, coro: Any) -> None:
        if not hasattr(self, "_tasks"):
            self._tasks = set()
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOGGER.debug("%r: background send failed: %r", self, task.exception())


# ---------------------------------------------------------------------------------------------
# Device side
# ---------------------------------------------------------------------------------------------


class Endpoint(ZclEndpointBase):
    """An application endpoint of a simulated device, sending and receiving ZCL.

    The ZCL behaviour (handlers, attributes, replies, Default Responses, request matching) is
    :class:`~zse.zcl.endpoint.ZclEndpointBase`, shared with the ESI's endpoint on zigpy; this
    class only puts frames on the simulated air and takes them off it.
    """

    def __init__(self, device: SimDevice, descriptor: zdo_t.SimpleDescriptor) -> None:
        super().__init__(descriptor, device.air.rng.randrange(256))
        self.device = device

    def __repr__(self) -> str:
        return f"<Endpoint {self.endpoint_id} of {self.device!r}>"

    def add_group(self, group_id: int) -> None:
        """Make this endpoint a member of a ZigBee group (APS group table, ZB 2.2.8.3)."""
        self.device.groups.setdefault(group_id, set()).add(self.endpoint_id)

    def remove_group(self, group_id: int) -> None:
        """Leave a ZigBee group."""
        self.device.groups.get(group_id, set()).discard(self.endpoint_id)

    async def _transmit(
        self,
        *,
        dst_mode: t.AddrMode,
        dst: int,
        dst_ep: int,
        cluster_id: int,
        tsn: int,
        data: bytes,
        encrypt: bool | None,
    ) -> None:
        await self.device.send_aps(
            dst_mode=dst_mode,
            dst_addr=dst,
            dst_ep=dst_ep,
            src_ep=self.endpoint_id,
            cluster_id=cluster_id,
            profile_id=self.profile_id,
            payload=data,
            encrypt=bool(encrypt),
            ack=self.device.aps_ack,
        )

    def _receive(self, ind: ApsIndication) -> None:
        try:
            frame_control, manufacturer, tsn, command_id, length = decode_zcl_header(ind.payload)
        except ValueError:
            self.device.stats.malformed += 1
            return
        self._accept(
            ZclMessage(
                src_nwk=ind.src_nwk,
                src_ieee=ind.src_ieee,
                src_ep=ind.src_ep,
                dst_ep=self.endpoint_id,
                cluster_id=ind.cluster_id,
                profile_id=ind.profile_id,
                frame_control=frame_control,
                manufacturer=manufacturer,
                tsn=tsn,
                command_id=command_id,
                payload=bytes(ind.payload[length:]),
                aps_encrypted=ind.aps_encrypted,
                group=ind.dst_addr if ind.dst_mode == t.AddrMode.Group else None,
                broadcast=ind.dst_mode == t.AddrMode.Broadcast,
                timestamp=ind.timestamp,
            )
        )


class SimDevice(Node):
    """A simulated HAN device (router or end device) with its own endpoints.

    Its preconfigured Trust Center link key is ``link_key`` (usually
    ``InstallCode(...).link_key``); without one the device refuses networks that need it.

    ``aps_ack`` (default True): its endpoints' ZCL unicasts ask for an APS acknowledgement
    and are resent without one (ZB 2.2.8.4.1), as EmberZNet's application framework sends
    them (EMBER_AF_DEFAULT_APS_OPTIONS has EMBER_APS_OPTION_RETRY); False: the MAC
    acknowledgement ends a send. Its ZDO requests and answers never ask, as zigpy's and
    Z-Stack's (ZDP_TxOptions) do not. It can be changed at any time.

    With ``rx_on_when_idle=False`` it is a sleepy end device (the default ``logical_type``
    then): its receiver is off but when it polls its parent, every ``poll_interval`` seconds
    (802.15.4-2006 7.5.6.3, :mod:`zse.sim._indirect`).
    """

    # A router open to joins until then (Mgmt_Permit_Joining_req), and the devices that
    # associated with it awaiting their Transport Key (bounded): class defaults, so a device
    # that never lets others join carries no attribute for them.
    _permit_until = 0.0
    _permit_timer: asyncio.TimerHandle | None = None
    _join_children: dict[t.EUI64, int] | None = None
    _beacon_epid: bytes | None = None

    def __init__(
        self,
        air: Medium,
        ieee: t.EUI64,
        *,
        link_key: bytes | None = None,
        channels: tuple[int, ...] = ALL_CHANNELS,
        logical_type: zdo_t.LogicalType | None = None,
        manufacturer_code: int = 0x0000,
        aps_ack: bool = True,
        rx_on_when_idle: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        logical_type = _sleepy_type(logical_type, rx_on_when_idle, poll_interval)
        self.rx_on_when_idle = rx_on_when_idle
        #: seconds between two polls of a sleepy device when it expects nothing
        self.poll_interval = float(poll_interval)
        #: Data Requests sent, and the virtual time of the last one (None: never polled)
        self.polls = 0
        self.last_poll: float | None = None
        self._parent = 0x0000
        self._schedule: PollSchedule | None = None
        self._poller: asyncio.Task[None] | None = None
        self._poll_due: asyncio.Event | None = None
        self._rx_until = 0.0  # a sleepy device's receiver is on until then
        super().__init__(air, ieee, logical_type=logical_type, manufacturer_code=manufacturer_code)
        #: whether the endpoints' ZCL unicasts ask for an APS acknowledgement (ZB 2.2.8.4.1)
        self.aps_ack = aps_ack
        self.preconfigured_key = bytes(link_key) if link_key is not None else None
        if self.preconfigured_key is not None:
            air._learn_key(self.preconfigured_key, f"install-code link key {ieee}")
        self.channels = channels
        self.endpoints: dict[int, Endpoint] = {}
        # the Transport Key's network key, its sequence number and sender, at a join
        self._key_future: asyncio.Future[tuple[bytes, int, t.EUI64 | None]] | None = None
        #: a rejoin under way: the Rejoin Response's status, and (Trust Center rejoin) the key
        self._rejoin_status: asyncio.Future[int] | None = None
        self._rejoin_key: asyncio.Future[tuple[bytes, int]] | None = None
        #: held by the rejoin under way: one Rejoin Request in flight at a time
        self._rejoining = asyncio.Lock()
        self._left_callbacks: list[Callable[[], None]] = []

    # -- sleeping between polls (802.15.4-2006 7.5.6.3; ZB 3.6.2) ------------------------------

    @property
    def sleepy(self) -> bool:
        """Whether the device now sleeps between polls (a sleepy end device on a network)."""
        return self._schedule is not None

    def _doze(self, parent: int) -> None:
        """On a network, a child of ``parent``; with the receiver off when idle, poll it from
        now on, fast at first (the device expects an answer: a Transport Key, say)."""
        self._parent = parent
        if self.rx_on_when_idle or self._schedule is not None:
            return
        loop = asyncio.get_running_loop()
        self._schedule = PollSchedule(
            loop.time(), interval=self.poll_interval, fast_interval=FAST_POLL_INTERVAL
        )
        self._schedule.sent(loop.time())
        self._poll_due = asyncio.Event()
        self._rx_until = 0.0
        self.air._doze(self, self._parent)
        self._poller = loop.create_task(self._polling())

    def _wake(self) -> None:
        """Off the network: no more polls, the receiver on (scanning, associating)."""
        if self._poller is not None:
            self._poller.cancel()
        self._poller = self._schedule = self._poll_due = None
        self.air._doze(self, None)

    async def _polling(self) -> None:
        """Poll when :class:`PollSchedule` says, waking early when it moves the poll nearer."""
        loop = asyncio.get_running_loop()
        while self._schedule is not None and self._poll_due is not None:
            wait = self._schedule.next_at - loop.time()
            if wait > 0:
                self._poll_due.clear()
                try:
                    async with asyncio.timeout(wait):
                        await self._poll_due.wait()
                except TimeoutError:
                    pass
                continue
            await self.poll()

    async def poll(self) -> bool:
        """MLME-POLL (802.15.4-2006 7.1.16, 7.5.6.3): a Data Request command (7.3.4) to the
        parent. The receiver is on for the acknowledgement and, when its frame-pending bit is
        set (True is returned), for macMaxFrameTotalWaitTime more, until the frame comes."""
        if self.nwk is None or self.pan_id is None:
            return False
        now = asyncio.get_running_loop().time()
        if self._schedule is not None:
            self._schedule.polled(now)
        self.polls += 1
        self.last_poll = now
        self._rx_until = now + ACK_WAIT + MAX_FRAME_TOTAL_WAIT
        hdr = f.MacHeader(
            f.MAC_COMMAND,
            next(self._mac_seq),
            self.pan_id,
            self._parent,
            self.pan_id,
            self.nwk,
            True,
        )
        tx = self.air.frame(self, f.encode_mac(hdr, bytes((f.MAC_CMD_DATA_REQUEST,))))
        pending = await self.air.transmit(tx) and tx.ack_pending
        if not pending:
            self._rx_until = min(self._rx_until, asyncio.get_running_loop().time())
        return pending

    def _mac_receives(self, tx: Transmission) -> bool:
        """The receiver is on only in the windows a poll or a send opened (and while the MAC
        waits for beacons: a scan); the frame a poll announced closes it, or makes the device
        poll again at once when its frame-pending bit says more follow (7.5.6.3)."""
        now = asyncio.get_running_loop().time()
        if now >= self._rx_until:
            return bool(self._mac_waiters)  # on while it scans
        mac = tx.mac
        if mac.frame_type == f.MAC_DATA and mac.dst == self.nwk and mac.src == self._parent:
            self._indirect_received(mac.frame_pending, now)
        return True

    def _parent_address(self) -> int | None:
        return self._parent if self.nwk is not None else None

    def _mac_send(self, dst: int, frame: bytes, *, hop: int | None = None) -> asyncio.Future[bool]:
        """A sleepy device's receiver is on for the acknowledgement of what it sends
        (macAckWaitDuration), and it polls fast for a while: an answer may come."""
        if self._schedule is not None and self._poll_due is not None:
            now = asyncio.get_running_loop().time()
            self._rx_until = max(self._rx_until, now + ACK_WAIT)
            self._schedule.sent(now)
            self._poll_due.set()
        return super()._mac_send(dst, frame, hop=hop)

    def _indirect_received(self, more: bool, now: float) -> None:
        """The frame a poll announced came: poll again at once if its frame-pending bit says
        more follow, else the receiver goes off."""
        if more and self._schedule is not None and self._poll_due is not None:
            self._schedule.more(now)
            self._poll_due.set()
        else:
            self._rx_until = min(self._rx_until, now)

    def add_endpoint(
        self,
        endpoint_id: int,
        *,
        profile_id: int = SE_PROFILE,
        device_type: int = 0,
        device_version: int = 0,
        in_clusters: list[int] | tuple[int, ...] = (),
        out_clusters: list[int] | tuple[int, ...] = (),
    ) -> Endpoint:
        """Add an application endpoint (1-240) hosting server (in) and client (out) clusters."""
        desc = simple_descriptor(
            endpoint_id,
            self.endpoints,
            profile_id=profile_id,
            device_type=device_type,
            device_version=device_version,
            in_clusters=in_clusters,
            out_clusters=out_clusters,
        )
        self.descriptors[endpoint_id] = desc
        ep = Endpoint(self, desc)
        self.endpoints[endpoint_id] = ep
        return ep

    def listen(self, channel: int | None = None) -> None:
        """Tune the radio to ``channel`` without joining any network, e.g. to send and hear
        inter-PAN frames as a device that never joined (SE Annex B).

        ``channel`` defaults to the device's only channel (``air.device(..., channel=N)``).
        Such a device has no PAN (its MAC accepts destination PAN 0xFFFF only) and no short
        address; :meth:`join` later tunes the radio as it scans.
        """
        if self.joined:
            raise ValueError(f"{self!r} has joined a network; it listens on its channel")
        if channel is None:
            if len(self.channels) != 1:
                raise ValueError("give the channel: the device may use several")
            channel = self.channels[0]
        if not 11 <= channel <= 26:
            raise ValueError(f"channel {channel} is not a 2.4 GHz channel (11-26)")
        self._tune(channel)

    # -- joining (ZB 3.6.1.4, 4.6.3) -----------------------------------------------------------

    async def join(  # noqa: PLR0915
        self,
        *,
        pan_id: int | None = None,
        extended_pan_id: t.ExtendedPanId | None = None,
        key_timeout: float = KEY_WAIT,
    ) -> None:
        """Scan, associate and wait for the network key; raise :class:`JoinRefused` on failure."""
        if self.joined:
            return
        loop = asyncio.get_running_loop()
        beacon: Transmission | None = None
        for channel in self.channels:
            for candidate in await self._beacons_on(channel):
                fields = _parse_beacon(candidate.payload)
                if fields is None or not fields[0]:
                    continue
                if pan_id is not None and candidate.mac.src_pan != pan_id:
                    continue
                if extended_pan_id is not None and fields[1] != extended_pan_id:
                    continue
                beacon = candidate
                break
            if beacon is not None:
                break
        if beacon is None:
            self._tune(None)
            raise JoinRefused(
                f"{self.ieee}: no network permitting joins on channels {list(self.channels)}"
            )
        assert isinstance(beacon.mac.src, int)
        parent_pan, parent = beacon.mac.src_pan, beacon.mac.src
        # the extended PAN id, for this device's own beacons should it let others join: its 8
        # octets (a zigpy ExtendedPanId is a list of 8 ints, ten times the memory)
        self._beacon_epid = bytes(beacon.payload[7:15])
        self.pan_id = parent_pan
        self._key_future = loop.create_future()
        request = f.encode_mac(
            f.MacHeader(
                f.MAC_COMMAND, next(self._mac_seq), parent_pan, parent, 0xFFFF, self.ieee, True
            ),
            bytes((f.MAC_CMD_ASSOCIATION_REQUEST, self._capability())),
        )
        waiter = self._wait_mac(
            lambda tx: (
                tx.mac.frame_type == f.MAC_COMMAND
                and tx.payload[:1] == bytes((f.MAC_CMD_ASSOCIATION_RESPONSE,))
            ),
            RESPONSE_WAIT,
        )
        wait_task = loop.create_task(waiter)
        sent = await self.air.transmit(self.air.frame(self, request))
        response = await wait_task
        if not sent or response is None or len(response.payload) < 4:
            self._reset()
            raise JoinRefused(f"{self.ieee}: no association response from 0x{parent:04X}")
        nwk, status = struct.unpack_from("<HB", response.payload, 1)
        if status != f.ASSOC_SUCCESS:
            self._reset()
            reason = {1: "PAN at capacity", 2: "PAN access denied"}.get(
                status, f"status 0x{status:02x}"
            )
            raise JoinRefused(f"{self.ieee}: association refused ({reason})")
        self.nwk = nwk
        assert isinstance(response.mac.src, t.EUI64)
        tc = response.mac.src
        self._learn_address(parent, tc)
        self._doze(parent)  # a sleepy device polls for its Transport Key
        try:
            async with asyncio.timeout(key_timeout):
                network_key, seq, source = await self._key_future
        except TimeoutError:
            self._reset()
            raise JoinRefused(
                f"{self.ieee}: no Transport Key it could decrypt with its preconfigured link key"
            ) from None
        self.use_network_key(network_key, seq)
        # through a router, the Transport Key names the Trust Center (its APS source)
        tc = source or tc
        self._learn_address(0x0000, tc)
        self.tc_ieee = tc
        assert self.preconfigured_key is not None
        self.set_link_key(tc, self.preconfigured_key)
        await self.announce()

    def resume(
        self,
        *,
        channel: int,
        pan_id: int,
        extended_pan_id: t.ExtendedPanId,
        nwk: int,
        network_key: bytes,
        network_key_seq: int,
        tc_ieee: t.EUI64,
        link_key: bytes,
        frame_counter: int = 0,
    ) -> None:
        """Power up on the network the device had joined: what it kept in non-volatile memory
        over a power cycle (its NIB and AIB: channel, PAN, address, the network key and its
        outgoing frame counter, the Trust Center and their link key: ZB 3.5, 4.4)
        restored. It is then on the network without a word on the air; a :meth:`rejoin`
        (ZB 3.6.1.4.2) and :meth:`announce` tell its parent and the network it is back.
        ``frame_counter`` never goes back for a key (ZB 4.3.1.1): give the last one stored
        plus what may have been sent since."""
        if self.joined:
            raise ValueError(f"{self!r} is on a network already")
        self._tune(channel)
        self.pan_id = pan_id
        self.extended_pan_id = extended_pan_id
        self.nwk = nwk
        self.use_network_key(network_key, network_key_seq)
        self.nwk_frame_counter = max(self.nwk_frame_counter, frame_counter)
        self.tc_ieee = tc_ieee
        self.set_link_key(tc_ieee, link_key)
        self._learn_address(0x0000, tc_ieee)
        self._doze(0x0000)

    async def rejoin(self, *, secure: bool, key_timeout: float = KEY_WAIT) -> bool:
        """NWK rejoin with the parent (the coordinator), keeping the address (ZB 3.6.1.4.2):
        a Rejoin Request NWK-secured with the network key the device holds (``secure``), or,
        for a Trust Center rejoin, unsecured (ZB 4.6.3.6); then the Rejoin Response, and for a
        Trust Center rejoin the Transport Key of the current network key, APS-secured with
        the Trust Center link key. True when back on the network with the current key.

        One rejoin at a time, as a stack keeps one Rejoin Request in flight: a second call
        waits for the first to end, then sends its own. The answer is taken for the request
        in flight: two at once were told each other's answers (a secured request under an
        old key, never answered, was told True on the Trust Center rejoin's), or lost them."""
        async with self._rejoining:
            return await self._rejoin_once(secure=secure, key_timeout=key_timeout)

    async def _rejoin_once(self, *, secure: bool, key_timeout: float) -> bool:
        if self.nwk is None or self.network_key is None or self.tc_ieee is None:
            return False
        loop = asyncio.get_running_loop()
        status = self._rejoin_status = loop.create_future()
        rejoin_key = self._rejoin_key = None if secure else loop.create_future()
        hdr = f.NwkHeader(
            0x0000,
            self.nwk,
            1,
            next(self._nwk_seq) & 0xFF,
            frame_type=f.NWK_COMMAND,
            discover_route=0,
            src_ieee=self.ieee,
        )
        request = bytes((f.NWK_CMD_REJOIN_REQUEST, self._capability()))
        try:
            if not await self._send_nwk(hdr, request, secure=secure):
                return False
            async with asyncio.timeout(key_timeout):
                if await status != f.ASSOC_SUCCESS:
                    return False
                if rejoin_key is not None:
                    key, seq = await rejoin_key
                    self.use_network_key(key, seq)
        except TimeoutError:
            return False
        finally:
            self._rejoin_status = self._rejoin_key = None
        return True

    def _rejoin_unsecured(self, nwk: f.NwkHeader, payload: bytes) -> bool:
        """During a Trust Center rejoin: the parent's unsecured Rejoin Response and the
        Transport Key frame (NWK-unsecured, APS-secured; ZB 4.6.3.6)."""
        return self._rejoin_key is not None and nwk.src == 0x0000

    async def scan(self, channels: tuple[int, ...] | None = None) -> list[Beacon]:
        """Active scan (ZB 3.2.2.1, MLME-SCAN): a Beacon Request on each channel, and the
        ZigBee beacons heard, in order. A joined device stays on its channel afterwards."""
        home = self.channel if self.joined else None
        found: list[Beacon] = []
        for channel in channels if channels is not None else self.channels:
            for tx in await self._beacons_on(channel):
                fields = _parse_beacon(tx.payload)
                if fields is None or not isinstance(tx.mac.src, int) or tx.mac.src_pan is None:
                    continue
                found.append(
                    Beacon(
                        channel=channel,
                        pan_id=tx.mac.src_pan,
                        extended_pan_id=fields[1],
                        permit_joining=fields[0],
                        source=tx.mac.src,
                        lqi=255,
                        rssi=-40,
                    )
                )
        self._tune(home)
        return found

    async def _beacons_on(self, channel: int) -> list[Transmission]:
        """Tune to ``channel``, send a Beacon Request and collect the beacons heard."""
        self._tune(channel)
        beacons: list[Transmission] = []
        remove = self._collect_beacons(beacons)
        try:
            await self.air.transmit(
                self.air.frame(
                    self,
                    f.encode_mac(
                        f.MacHeader(f.MAC_COMMAND, next(self._mac_seq), 0xFFFF, 0xFFFF, None, None),
                        bytes((f.MAC_CMD_BEACON_REQUEST,)),
                    ),
                )
            )
            await asyncio.sleep(SCAN_DURATION)
        finally:
            remove()
        return beacons

    def _collect_beacons(self, into: list[Transmission]) -> Callable[[], None]:
        def matcher(tx: Transmission) -> bool:
            if tx.mac.frame_type == f.MAC_BEACON:
                into.append(tx)
            return False

        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = (matcher, future)
        self._mac_waiters.append(entry)
        self._listening()

        def remove() -> None:
            self._mac_waiters.remove(entry)
            self._listening()

        return remove

    def _joined_as(self, nwk: int) -> t.EUI64 | None:
        if self.tc_ieee is not None and self._nwk_by_ieee.get(self.tc_ieee) == nwk:
            return self.tc_ieee  # the parent it joined through, the Trust Center
        return super()._joined_as(nwk)

    def _joined_at(self, ieee: t.EUI64) -> int | None:
        if self.tc_ieee is not None and ieee == self.tc_ieee:
            return self._nwk_by_ieee.get(ieee)
        return super()._joined_at(ieee)

    def _link_key_for(self, partner: t.EUI64) -> bytes | None:
        key = self.link_keys.get(partner)
        if key is None and self.network_key is None:
            return self.preconfigured_key  # joining: the Trust Center's key is the install code's
        return key

    def _takes_key_from(self, key_id: KeyId | None) -> bool:
        """Joining through a router: the Transport Key comes from the router (its NWK source)
        but is secured by the Trust Center, whom the device does not know yet; the key that
        opens it, the device's own preconfigured one, names the sender (ZB 4.6.3.2)."""
        future = self._key_future
        return (
            key_id == KeyId.KEY_TRANSPORT
            and self.network_key is None
            and future is not None
            and not future.done()
        )

    def _aps_command(
        self, nwk: f.NwkHeader, key_id: KeyId | None, source: t.EUI64 | None, payload: bytes
    ) -> None:
        """Transport Key of the standard network key (ZB 4.4.9.2.3), accepted only secured
        with the key-transport key of the Trust Center link key (ZB 4.6.3.4.1): at a join it
        brings the network key; once joined, the next one (kept until Switch Key). Switch Key
        (ZB 4.4.9.5) from the Trust Center makes that one active (ZB 4.6.3.5)."""
        if not payload:
            return
        if payload[0] == f.APS_CMD_TUNNEL:
            self._tunnelled(nwk, key_id, source, payload)
            return
        joined = self.network_key is not None
        rejoin_key = self._rejoin_key
        if (
            rejoin_key is not None
            and not rejoin_key.done()
            and payload[0] == f.APS_CMD_TRANSPORT_KEY
            and len(payload) >= 35
            and payload[1] == f.KEY_TYPE_STANDARD_NETWORK
            and key_id == KeyId.KEY_TRANSPORT
            and source == self.tc_ieee
        ):
            rejoin_key.set_result((payload[2:18], payload[18]))  # Trust Center rejoin
            return
        if (
            payload[0] == f.APS_CMD_TRANSPORT_KEY
            and len(payload) >= 35
            and payload[1] == f.KEY_TYPE_STANDARD_NETWORK
            and key_id == KeyId.KEY_TRANSPORT
        ):
            key, seq = payload[2:18], payload[18]
            future = self._key_future
            if not joined and future is not None and not future.done():
                future.set_result((key, seq, source))
            elif joined and source == self.tc_ieee and seq != self.network_key_seq:
                self.alternate_network_key = (seq, key)
        elif (
            payload[0] == f.APS_CMD_SWITCH_KEY
            and len(payload) >= 2
            and joined
            and nwk.security
            and source == self.tc_ieee
            and self.alternate_network_key is not None
            and self.alternate_network_key[0] == payload[1]
        ):
            self.use_network_key(self.alternate_network_key[1], payload[1])

    # -- a router that devices join through (ZB 3.6.1.4.1, 4.6.3.2.2) -------------------------

    def _permit_request(self, seconds: int) -> None:
        """Mgmt_Permit_Joining_req (ZB 2.4.3.3.7): a router lets devices associate with it
        for ``seconds``; it is a listener for Beacon and Association Requests meanwhile."""
        if not _route.is_router(self):
            return
        loop = asyncio.get_running_loop()
        self._permit_until = loop.time() + max(0, seconds)
        if self._permit_timer is not None:
            self._permit_timer.cancel()
        self._permit_timer = loop.call_at(self._permit_until, self._listening)
        self._listening()

    def _permitting(self) -> bool:
        return (
            self._permit_until > 0.0
            and self.joined
            and asyncio.get_running_loop().time() < self._permit_until
            and _route.is_router(self)
        )

    def _wants_mac_commands(self) -> bool:
        return self._permit_until > 0.0 and self._permitting()

    def _mac_command(self, tx: Transmission) -> None:
        """While open to joins: a Beacon Request is answered with a beacon (association
        permitted), an Association Request from an always-listening device admitted."""
        if not tx.payload or not self._permitting():
            return
        command = tx.payload[0]
        if command == f.MAC_CMD_BEACON_REQUEST:
            self._spawn(self._send_beacon())
        elif command == f.MAC_CMD_ASSOCIATION_REQUEST and isinstance(tx.mac.src, t.EUI64):
            capability = tx.payload[1] if len(tx.payload) > 1 else 0
            self._spawn(self._associate_child(tx.mac.src, capability))

    async def _send_beacon(self) -> None:
        epid = self.extended_pan_id
        if epid is None and self._beacon_epid is not None:
            epid, _ = t.ExtendedPanId.deserialize(self._beacon_epid)
        if epid is None:
            return
        fields, zigbee = f.beacon_payload(epid, permit=True, depth=1)
        hdr = f.MacHeader(f.MAC_BEACON, next(self._mac_seq), None, None, self.pan_id, self.nwk)
        await self.air.transmit(self.air.frame(self, f.encode_mac(hdr, fields + zigbee)))

    async def _associate_child(self, ieee: t.EUI64, capability: int) -> None:
        """Association (802.15.4-2006 7.5.3.1) with this router: an address drawn at random
        (stochastic addressing, ZB 3.6.1.7), then the Trust Center told with an APS Update
        Device (ZB 4.4.3; status "standard security, unsecured join"), APS-secured with this
        router's link key; the Trust Center decides. A sleepy device is refused (PAN at
        capacity): the simulator's routers keep no indirect queue."""
        if self.nwk is None or self.tc_ieee is None:
            return
        sleepy = not capability & int(zdo_t.MACCapabilityFlags.RxOnWhenIdle)
        nwk = 0xFFFF if sleepy else self.air.rng.randrange(0x0001, 0xFFF8)
        status = f.ASSOC_PAN_AT_CAPACITY if sleepy else f.ASSOC_SUCCESS
        hdr = f.MacHeader(
            f.MAC_COMMAND, next(self._mac_seq), self.pan_id, ieee, self.pan_id, self.ieee, True
        )
        payload = bytes((f.MAC_CMD_ASSOCIATION_RESPONSE,)) + struct.pack("<HB", nwk, status)
        if not await self.air.transmit(self.air.frame(self, f.encode_mac(hdr, payload))):
            return
        if sleepy:
            return
        ieee = f.eui64(ieee)
        children = self._join_children = self._join_children or {}
        children.pop(ieee, None)
        if len(children) >= JOINING_CHILDREN:
            del children[next(iter(children))]
        children[ieee] = nwk
        aps = f.ApsHeader(f.APS_COMMAND, f.APS_DELIVERY_UNICAST, next(self._aps_counter) & 0xFF)
        update = f.update_device_payload(ieee, nwk, f.UPDATE_DEVICE_UNSECURED_JOIN)
        try:
            secured = self._secure_aps(aps, update, self.tc_ieee, KeyId.DATA)
            sent = await self._send_nwk(
                f.NwkHeader(0x0000, self.nwk, 30, next(self._nwk_seq) & 0xFF), secured
            )
        except DeliveryError as failed:
            sent = False
            LOGGER.info("%r: Update Device for %s not delivered: %s", self, ieee, failed)
        if not sent:
            children.pop(ieee, None)

    def _tunnelled(
        self, nwk: f.NwkHeader, key_id: KeyId | None, source: t.EUI64 | None, payload: bytes
    ) -> None:
        """An APS Tunnel command (ZB 4.4.3) from the Trust Center: the APS frame in it (a
        Transport Key) goes to the device that joined through this router, in a NWK frame
        without NWK security (the device holds no network key yet)."""
        if (
            len(payload) <= 9
            or not nwk.security
            or key_id is not None
            or source is None
            or source != self.tc_ieee
            or self.nwk is None
        ):
            return
        children = self._join_children or {}
        child = children.pop(f.eui64(payload[1:9]), None)
        if child is None:
            return
        hdr = f.NwkHeader(child, self.nwk, 1, next(self._nwk_seq) & 0xFF, discover_route=0)
        sent = self._put_nwk(hdr, payload[9:], secure=False)
        if sent is not None:
            sent.add_done_callback(_outcome_retrieved)

    def on_left(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` whenever the device leaves the network (asked to or on its own);
        returns a function that removes it."""
        self._left_callbacks.append(callback)
        return lambda: self._left_callbacks.remove(callback)

    async def announce(self) -> None:
        """Broadcast Device_annce (ZB 2.4.3.1.11)."""
        assert self.nwk is not None
        payload = bytes((next(self._zdo_tsn) & 0xFF,)) + t.serialize(
            [t.NWK(self.nwk), self.ieee, t.uint8_t(self._capability())],
            [t.NWK, t.EUI64, t.uint8_t],
        )
        await self.send_aps(
            dst_mode=t.AddrMode.Broadcast,
            dst_addr=0xFFFD,
            dst_ep=0,
            src_ep=0,
            cluster_id=zdo_t.ZDOCmd.Device_annce,
            profile_id=ZDO_PROFILE,
            payload=payload,
        )

    async def leave(self) -> None:
        """Leave the network: broadcast a NWK Leave command (ZB 3.4.4) and forget it."""
        if self.joined:
            assert self.nwk is not None
            cmd = bytes((0x04, 0x00))
            nwk = f.NwkHeader(
                0xFFFD,
                self.nwk,
                1,
                next(self._nwk_seq) & 0xFF,
                frame_type=1,
                discover_route=0,
                src_ieee=self.ieee,
            )
            await self._send_nwk(nwk, cmd)
        self._reset()

    def _leave_requested(self) -> None:
        self._spawn(self.leave())

    def _nwk_command(self, nwk: f.NwkHeader, payload: bytes) -> None:
        # NWK Leave with the request bit from our parent: leave (ZB 3.4.4.3.1).
        if payload[:1] == b"\x04" and len(payload) > 1 and payload[1] & 0x40 and nwk.src == 0x0000:
            self._leave_requested()
        # Rejoin Response (ZB 3.4.7): short address, status
        status = self._rejoin_status
        if (
            payload[:1] == bytes((f.NWK_CMD_REJOIN_RESPONSE,))
            and len(payload) >= 4
            and nwk.src == 0x0000
            and status is not None
            and not status.done()
        ):
            status.set_result(payload[3])

    def _reset(self) -> None:
        self._wake()
        self.nwk = None
        self.pan_id = None
        self._forget_keys()
        self.tc_ieee = None
        self._forget_addresses()
        self._key_future = None
        self._tune(None)
        if self._permit_until:
            self._permit_until = 0.0
            self._join_children = None
            self._listening()
        for callback in list(self._left_callbacks):
            callback()

    def _deliver_app(self, ind: ApsIndication) -> None:
        if ind.dst_mode == t.AddrMode.Group:
            targets = [
                self.endpoints[ep]
                for ep in sorted(self.groups.get(ind.dst_addr, ()))
                if ep in self.endpoints
            ]
        elif ind.dst_ep == 0xFF:
            targets = [
                ep
                for ep in self.endpoints.values()
                if ep.profile_id == ind.profile_id
                and ep.takes_all_endpoints_frame(ind.cluster_id, ind.payload)
            ]
        else:
            ep = self.endpoints.get(ind.dst_ep or 0)
            targets = [ep] if ep is not None else []
        for ep in targets:
            ep._receive(ind)

    async def zcl_request(
        self, *args: Any, endpoint: int | None = None, **kwargs: Any
    ) -> ZclMessage:
        """Shortcut for ``device.endpoints[endpoint or first].request(...)``."""
        ep = self.endpoints[endpoint if endpoint is not None else min(self.endpoints)]
        return await ep.request(*args, **kwargs)


def _outcome_retrieved(sent: asyncio.Future[bool]) -> None:
    """Retrieve the MAC outcome of a frame nobody awaits (no 'exception never retrieved')."""
    if not sent.cancelled():
        sent.exception()


def _no_aps_ack(dst: int, attempts: int) -> DeliveryError:
    return DeliveryError(
        f"no APS acknowledgement from 0x{dst:04X} after {attempts} attempts",
        status=t.APSStatus.APS_NO_ACK,
    )


def _expire(wait: asyncio.Future[bool]) -> None:
    """An attempt's apsAckWaitDuration is over without its ack."""
    if not wait.done():
        wait.set_result(False)


def _sleepy_type(
    logical_type: zdo_t.LogicalType | None, rx_on_when_idle: bool, poll_interval: float
) -> zdo_t.LogicalType:
    """The logical type of a device: a router unless its receiver is off when idle, then an
    end device (only an end device may sleep, ZB 2.3.2.3: the node descriptor)."""
    if rx_on_when_idle:
        return zdo_t.LogicalType.Router if logical_type is None else logical_type
    if logical_type not in (None, zdo_t.LogicalType.EndDevice):
        raise ValueError(f"a {logical_type.name} keeps its receiver on; only an end device sleeps")
    if not 0 < poll_interval < float("inf"):
        raise ValueError(f"poll_interval must be a positive number of seconds, got {poll_interval}")
    return zdo_t.LogicalType.EndDevice


def _decode_nwk(air: Medium, data: bytes) -> tuple[f.NwkHeader, bytes]:
    air.stats.nwk_decodes += 1
    return f.decode_nwk(data)


def _nwk_aux(frame: bytes) -> AuxHeader:
    aux, _ = AuxHeader.decode(frame[nwk_header_length(frame) :])
    return aux


#: This process's secret for :func:`_key_token`.
_TOKEN_SALT = os.urandom(16)


def _key_token(key: bytes) -> bytes:
    """What a frame's shared decodings are keyed by for ``key``, never the key itself: they
    are a :class:`~zse.sim._air.Transmission`'s, which a test's assertion or a debug print
    may show. A keyed BLAKE2b digest under a per-process secret: the same key gives the same
    token in every node (one decryption per frame and key), and the token tells nothing of
    the key, not even a way to check a guess."""
    return hashlib.blake2b(key, digest_size=16, key=_TOKEN_SALT).digest()


def _open_nwk(air: Medium, sealed: Sealed, key: bytes) -> Unsecured | None:
    """A secured NWK frame decrypted with ``key`` (ZB 4.3.1.2), None if its MIC fails."""
    air.stats.nwk_decrypts += 1
    assert sealed.aux.source is not None
    payload = sealed.open(key, sealed.aux.source)
    return (
        None
        if payload is None
        else Unsecured(sealed.header, sealed.aux, sealed.aux.source, payload)
    )


def _pair_label(a: t.EUI64, b: t.EUI64) -> str:
    """The key table label of the link key shared by ``a`` and ``b`` (either way round)."""
    first, second = sorted((str(a), str(b)))
    return f"link key {first} {second}"


def _parse_beacon(payload: bytes) -> tuple[bool, t.ExtendedPanId] | None:
    """(association permit, extended PAN id) from a ZigBee beacon (ZB 3.6.7)."""
    if len(payload) < 4 + 15:
        return None
    (superframe,) = struct.unpack_from("<H", payload)
    epid, _ = t.ExtendedPanId.deserialize(payload[4 + 3 : 4 + 11])
    return bool(superframe & 0x8000), epid
