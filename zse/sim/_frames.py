"""802.15.4 MAC, ZigBee NWK and APS headers as the simulator puts them on the air.

Only what the simulated HAN needs: MAC data, beacon and command frames (IEEE 802.15.4-2006
7.2.1-7.3), the ZigBee NWK header (ZB 3.3.1) and the APS header (ZB 2.2.5.1) of data, command
and acknowledgement frames (ZB 2.2.5.2), with the extended header of fragmented
transmissions (ZB 2.2.5.1.8). NWK and APS
security (the auxiliary header, CCM* and the MIC) is applied by :mod:`zse.security` on top
of these headers; here a header only says whether its frame is secured (docs/simulator.md).
"""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

import zigpy.types as t

from zse.errors import InvalidFrame

# MAC frame types (802.15.4-2006 7.2.1.1.1)
MAC_BEACON = 0
MAC_DATA = 1
MAC_ACK = 2
MAC_COMMAND = 3

# MAC commands (7.3)
MAC_CMD_ASSOCIATION_REQUEST = 0x01
MAC_CMD_ASSOCIATION_RESPONSE = 0x02
MAC_CMD_DATA_REQUEST = 0x04  # the poll of a device whose receiver is off when idle (7.3.4)
MAC_CMD_BEACON_REQUEST = 0x07

ASSOC_SUCCESS = 0x00
ASSOC_PAN_AT_CAPACITY = 0x01
ASSOC_PAN_ACCESS_DENIED = 0x02

BROADCAST_PAN = 0xFFFF
BROADCAST_SHORT = 0xFFFF

# NWK (ZB 3.3.1.1) and APS (ZB 2.2.5.1.1)
NWK_DATA = 0
NWK_PROTOCOL_VERSION = 2
APS_DATA = 0
APS_COMMAND = 1
APS_ACK = 2
APS_DELIVERY_UNICAST = 0
APS_DELIVERY_BROADCAST = 2
APS_DELIVERY_GROUP = 3
APS_CMD_TRANSPORT_KEY = 0x05
APS_CMD_UPDATE_DEVICE = 0x06  # a router tells the Trust Center of a device joining it (ZB 4.4.3)
APS_CMD_SWITCH_KEY = 0x09
APS_CMD_TUNNEL = 0x0E  # the Trust Center's frame for a joining device, through its parent
#: Update Device status (ZB 4.4.3.3; as Wireshark's dissector names it): standard security,
#: unsecured join
UPDATE_DEVICE_UNSECURED_JOIN = 0x01
KEY_TYPE_STANDARD_NETWORK = 0x01  # Transport Key key type (ZB Table 4.12)

MacAddress = int | t.EUI64 | None


class Eui64(t.EUI64):
    """A zigpy ``EUI64`` that computes its hash once. zigpy's hashes its printed form
    (``repr``) at every dict lookup, and the simulator looks EUI-64s up several times per
    frame (address maps, link keys, frame counters, duplicate tables): a few percent of a
    frame's cost at scale (``benchmarks/drlc_scale.py``). Equal to, and hashed as, zigpy's
    (which it is an instance of); pickled without the cached hash, since ``str`` hashes
    differ between processes. Never mutated, as no EUI-64 is."""

    def __hash__(self) -> int:  # type: ignore[override]  # zigpy's EUI64 hashes, as here
        try:
            return self._hash
        except AttributeError:
            self._hash: int = t.EUI64.__hash__(self)
            return self._hash

    def __reduce__(self) -> tuple[type[Eui64], tuple[bytes]]:
        return type(self), (bytes(self),)


def eui64(value: t.EUI64 | bytes) -> Eui64:
    """``value`` as an :class:`Eui64` (itself when it is one already)."""
    return value if isinstance(value, Eui64) else Eui64(value)


@dataclass(frozen=True, slots=True)
class MacHeader:
    """The MAC header fields the simulator uses (802.15.4-2006 7.2.1)."""

    frame_type: int
    seq: int
    dst_pan: int | None
    dst: MacAddress
    src_pan: int | None
    src: MacAddress
    ack_request: bool = False
    #: the sender holds more frames for the recipient (7.2.1.1.3): set by a parent in the
    #: indirect frames it sends a sleepy child (and, by the air, in its MAC acknowledgements)
    frame_pending: bool = False


@dataclass(frozen=True, slots=True)
class NwkHeader:
    """A ZigBee NWK header (ZB 3.3.1) without multicast control or source route."""

    dst: int
    src: int
    radius: int
    seq: int
    frame_type: int = NWK_DATA
    discover_route: int = 1
    dst_ieee: t.EUI64 | None = None
    src_ieee: t.EUI64 | None = None
    security: bool = False


@dataclass(frozen=True, slots=True)
class ApsHeader:
    """A ZigBee APS header (ZB 2.2.5.1); data frames carry endpoints, cluster and profile."""

    frame_type: int
    delivery: int
    counter: int
    dst_ep: int | None = None
    group: int | None = None
    cluster: int | None = None
    profile: int | None = None
    src_ep: int | None = None
    ack_request: bool = False
    security: bool = False
    #: an acknowledgement of an APS command (ack format bit, ZB 2.2.5.1.1.3): no endpoints,
    #: cluster or profile, the counter only
    command_ack: bool = False
    #: the extended header's fragmentation sub-field (ZB 2.2.5.1.8.1): :data:`NOT_FRAGMENTED`
    #: (no extended header is sent), :data:`FIRST_BLOCK` or :data:`OTHER_BLOCK`
    fragmentation: int = 0
    #: the block number field (ZB 2.2.5.1.8.2): a first block carries the number of blocks,
    #: another block its own number; an acknowledgement, the first block of its window
    block: int = 0
    #: an acknowledgement's ack bitfield (ZB 2.2.5.1.8.3): bit ``i`` set when block
    #: ``block + i`` was received (bits past the window or the last block set too)
    ack_bits: int = 0


#: the fragmentation sub-field of the extended frame control (ZB 2.2.5.1.8.1): not fragmented,
#: the first block of a fragmented transmission, another block (0b11 is reserved)
NOT_FRAGMENTED, FIRST_BLOCK, OTHER_BLOCK = 0, 1, 2


#: APS frame control bits (ZB 2.2.5.1.1): ack format (4), security (5), ack request (6)
_APS_ACK_FORMAT = 0x10
_APS_SECURITY = 0x20
_APS_ACK_REQUEST = 0x40
_APS_EXTENDED = 0x80  # extended header present (ZB 2.2.5.1.1.7)
_APS_FRAGMENTATION = 0x03  # extended frame control: the fragmentation sub-field


def aps_ack(data: ApsHeader) -> ApsHeader:
    """The header of the APS acknowledgement of the unicast data frame ``data`` (ZB 2.2.5.2.2,
    Figure 2.11; sent as ZB 2.2.8.4.2 says): unicast, ``data``'s APS counter, cluster and
    profile, its source endpoint as the destination endpoint and its destination endpoint as
    the source. Secured (``security``) when ``data`` was, with the same link key (ZB 4.4.1.1);
    the caller secures it. The endpoint swap as zigbee-on-host and Wireshark's dissector
    read it (the spec's field text was out of reach)."""
    return ApsHeader(
        APS_ACK,
        APS_DELIVERY_UNICAST,
        data.counter,
        data.src_ep,
        None,
        data.cluster,
        data.profile,
        data.dst_ep,
        security=data.security,
    )


def aps_block_ack(data: ApsHeader, first: int, bits: int) -> ApsHeader:
    """The acknowledgement of the window starting at block ``first`` of the fragmented
    transmission ``data`` is a block of (ZB 2.2.8.4.5.2): :func:`aps_ack`'s header with the
    extended header's block number ``first`` and ack bitfield ``bits`` (ZB 2.2.5.1.8.2-3).
    Its fragmentation sub-field says first block for the first window, another block after
    it, as Wireshark reads an ack (block number and bitfield are present only when the
    sub-field is not 0b00); the spec's text for it was out of reach."""
    fragmentation = FIRST_BLOCK if first == 0 else OTHER_BLOCK
    return replace(aps_ack(data), fragmentation=fragmentation, block=first, ack_bits=bits)


def _addr_mode(addr: MacAddress) -> int:
    if addr is None:
        return 0
    if isinstance(addr, t.EUI64):
        return 3
    return 2


def encode_mac(hdr: MacHeader, payload: bytes) -> bytes:
    """Encode a MAC header (frame version 0, no security) followed by ``payload``."""
    dst_mode, src_mode = _addr_mode(hdr.dst), _addr_mode(hdr.src)
    compress = dst_mode != 0 and src_mode != 0 and hdr.dst_pan == hdr.src_pan
    fc = hdr.frame_type | (hdr.frame_pending << 4) | (hdr.ack_request << 5) | (compress << 6)
    fc |= (dst_mode << 10) | (src_mode << 14)
    out = bytearray(struct.pack("<HB", fc, hdr.seq & 0xFF))
    if dst_mode:
        out += struct.pack("<H", hdr.dst_pan if hdr.dst_pan is not None else BROADCAST_PAN)
        out += _encode_addr(hdr.dst)
    if src_mode:
        if not compress:
            out += struct.pack("<H", hdr.src_pan if hdr.src_pan is not None else BROADCAST_PAN)
        out += _encode_addr(hdr.src)
    return bytes(out) + payload


def _encode_addr(addr: MacAddress) -> bytes:
    if isinstance(addr, t.EUI64):
        return bytes(addr.serialize())
    assert addr is not None
    return struct.pack("<H", addr)


def decode_mac(data: bytes) -> tuple[MacHeader, bytes]:
    """Decode the MAC header of a frame without FCS; returns the header and the payload."""
    if len(data) < 3:
        raise InvalidFrame(f"MAC frame of {len(data)} bytes is shorter than its 3-byte header")
    fc, seq = struct.unpack_from("<HB", data)
    frame_type = fc & 0x7
    if fc & 0x08:
        raise InvalidFrame("MAC frame control at offset 0: secured MAC frames are not supported")
    compress = bool(fc & 0x40)
    dst_mode, src_mode = (fc >> 10) & 3, (fc >> 14) & 3
    if dst_mode == 1 or src_mode == 1:
        raise InvalidFrame("MAC frame control at offset 0: reserved addressing mode 1")
    pos = 3
    dst_pan: int | None = None
    dst: MacAddress = None
    src_pan: int | None = None
    src: MacAddress = None
    try:
        if dst_mode:
            (dst_pan,) = struct.unpack_from("<H", data, pos)
            dst, pos = _decode_addr(data, pos + 2, dst_mode)
        if src_mode:
            if compress:
                src_pan = dst_pan
            else:
                (src_pan,) = struct.unpack_from("<H", data, pos)
                pos += 2
            src, pos = _decode_addr(data, pos, src_mode)
    except struct.error as exc:
        raise InvalidFrame(f"MAC header truncated at offset {pos} of {len(data)}") from exc
    hdr = MacHeader(frame_type, seq, dst_pan, dst, src_pan, src, bool(fc & 0x20), bool(fc & 0x10))
    return hdr, data[pos:]


def _decode_addr(data: bytes, pos: int, mode: int) -> tuple[MacAddress, int]:
    if mode == 2:
        return struct.unpack_from("<H", data, pos)[0], pos + 2
    if len(data) < pos + 8:
        raise struct.error("short")
    return Eui64(data[pos : pos + 8]), pos + 8


def encode_nwk(hdr: NwkHeader, payload: bytes) -> bytes:
    """Encode a NWK header (ZB 3.3.1.1) and ``payload``; :func:`zse.security.secure_nwk`
    secures it."""
    fc = hdr.frame_type | (NWK_PROTOCOL_VERSION << 2) | (hdr.discover_route << 6)
    fc |= hdr.security << 9
    fc |= ((hdr.dst_ieee is not None) << 11) | ((hdr.src_ieee is not None) << 12)
    out = struct.pack("<HHHBB", fc, hdr.dst, hdr.src, hdr.radius, hdr.seq & 0xFF)
    if hdr.dst_ieee is not None:
        out += hdr.dst_ieee.serialize()
    if hdr.src_ieee is not None:
        out += hdr.src_ieee.serialize()
    return out + payload


#: NWK frame control bits (ZB 3.3.1.1): multicast (8), security (9), source route (10), then
#: the destination and source IEEE address flags (11, 12).
_NWK_MULTICAST_SOURCE_ROUTE = 0b101 << 8
_NWK_SECURITY = 1 << 9
_NWK_DST_IEEE = 1 << 11
_NWK_SRC_IEEE = 1 << 12


def decode_nwk(data: bytes) -> tuple[NwkHeader, bytes]:
    """Decode a NWK header; raise :class:`InvalidFrame` for what the simulator never sends.
    The payload of a secured frame (``security`` set) starts with its auxiliary header."""
    if len(data) < 8:
        raise InvalidFrame(f"NWK header needs 8 bytes, got {len(data)}")
    fc, dst, src, radius, seq = struct.unpack_from("<HHHBB", data)
    if fc & _NWK_MULTICAST_SOURCE_ROUTE:
        raise InvalidFrame(f"NWK frame control 0x{fc:04x}: multicast/source route")
    pos = 8 + 8 * bool(fc & _NWK_DST_IEEE) + 8 * bool(fc & _NWK_SRC_IEEE)
    if len(data) < pos:
        raise InvalidFrame(f"NWK header truncated: needs {pos} bytes, got {len(data)}")
    dst_ieee = src_ieee = None
    at = 8
    if fc & _NWK_DST_IEEE:
        dst_ieee = Eui64(data[at : at + 8])
        at += 8
    if fc & _NWK_SRC_IEEE:
        src_ieee = Eui64(data[at : at + 8])
    hdr = NwkHeader(
        dst, src, radius, seq, fc & 3, (fc >> 6) & 3, dst_ieee, src_ieee, bool(fc & _NWK_SECURITY)
    )
    return hdr, data[pos:]


def encode_aps(hdr: ApsHeader, payload: bytes) -> bytes:
    """Encode an APS header (ZB 2.2.5.1; the extended header of a fragmented transmission,
    ZB 2.2.5.1.8) and ``payload``; :func:`zse.security.secure_aps` secures it."""
    fc = hdr.frame_type | (hdr.delivery << 2) | (hdr.security << 5) | (hdr.ack_request << 6)
    fc |= (hdr.command_ack << 4) | (bool(hdr.fragmentation) << 7)
    out = bytearray((fc,))
    if hdr.frame_type == APS_DATA or (hdr.frame_type == APS_ACK and not hdr.command_ack):
        if hdr.delivery == APS_DELIVERY_GROUP and hdr.frame_type == APS_DATA:
            assert hdr.group is not None
            out += struct.pack("<H", hdr.group)
        else:
            assert hdr.dst_ep is not None
            out.append(hdr.dst_ep)
        assert hdr.cluster is not None
        assert hdr.profile is not None
        assert hdr.src_ep is not None
        out += struct.pack("<HHB", hdr.cluster, hdr.profile, hdr.src_ep)
    out.append(hdr.counter & 0xFF)
    if hdr.fragmentation:
        assert hdr.fragmentation in (FIRST_BLOCK, OTHER_BLOCK)
        assert hdr.frame_type == APS_DATA or (hdr.frame_type == APS_ACK and not hdr.command_ack)
        out += bytes((hdr.fragmentation, hdr.block))
        if hdr.frame_type == APS_ACK:
            out.append(hdr.ack_bits)
    return bytes(out) + payload


def decode_aps(data: bytes) -> tuple[ApsHeader, bytes]:
    """Decode an APS data, command or acknowledgement header, with the extended header of a
    fragmented transmission (ZB 2.2.5.1.8); the payload of a secured frame (``security``
    set) starts with its auxiliary header. An extended header on an APS command, or with
    the reserved fragmentation value 0b11, is an :class:`InvalidFrame`; one whose
    fragmentation sub-field is 0b00 is read as not fragmented."""
    if not data:
        raise InvalidFrame("APS header missing")
    fc = data[0]
    frame_type, delivery = fc & 3, (fc >> 2) & 3
    try:
        if frame_type == APS_COMMAND or (frame_type == APS_ACK and fc & _APS_ACK_FORMAT):
            if fc & _APS_EXTENDED:
                raise InvalidFrame(f"APS frame control 0x{fc:02x}: extended header on a command")
            hdr = ApsHeader(
                frame_type,
                delivery,
                data[1],
                security=bool(fc & _APS_SECURITY),
                command_ack=frame_type == APS_ACK,
            )
            return hdr, data[2:]
        if frame_type == APS_DATA:
            hdr, pos = _decode_data(data, fc, delivery)
        elif frame_type == APS_ACK:  # ZB 2.2.5.2.2: a data frame's acknowledgement
            dst_ep, cluster, profile, src_ep, counter = struct.unpack_from("<BHHBB", data, 1)
            security = bool(fc & _APS_SECURITY)
            hdr = ApsHeader(APS_ACK, delivery, counter, dst_ep, None, cluster, profile, src_ep)
            hdr, pos = replace(hdr, security=security), 8
        else:
            raise InvalidFrame(f"APS frame type {frame_type} not supported by the simulator")
        if fc & _APS_EXTENDED:
            hdr, pos = _decode_extended(data, pos, hdr)
        return hdr, data[pos:]
    except (struct.error, IndexError) as exc:
        raise InvalidFrame(f"APS header truncated ({len(data)} bytes)") from exc


def _decode_data(data: bytes, fc: int, delivery: int) -> tuple[ApsHeader, int]:
    if delivery == APS_DELIVERY_GROUP:
        (group,) = struct.unpack_from("<H", data, 1)
        dst_ep, pos = None, 3
    else:
        group, dst_ep, pos = None, data[1], 2
    cluster, profile, src_ep, counter = struct.unpack_from("<HHBB", data, pos)
    hdr = ApsHeader(
        APS_DATA,
        delivery,
        counter,
        dst_ep,
        group,
        cluster,
        profile,
        src_ep,
        bool(fc & _APS_ACK_REQUEST),
        bool(fc & _APS_SECURITY),
    )
    return hdr, pos + 6


def _decode_extended(data: bytes, pos: int, hdr: ApsHeader) -> tuple[ApsHeader, int]:
    """The extended header at ``pos`` (ZB 2.2.5.1.8): extended frame control, then, when
    fragmented, the block number and (acknowledgements) the ack bitfield; reserved bits of
    the extended frame control are ignored."""
    fragmentation = data[pos] & _APS_FRAGMENTATION
    if fragmentation == NOT_FRAGMENTED:
        return hdr, pos + 1
    if fragmentation not in (FIRST_BLOCK, OTHER_BLOCK):
        raise InvalidFrame(
            f"APS extended frame control 0x{data[pos]:02x} at offset {pos}: reserved "
            "fragmentation value 0b11"
        )
    bits = data[pos + 2] if hdr.frame_type == APS_ACK else 0
    end = pos + 2 + (hdr.frame_type == APS_ACK)
    return replace(hdr, fragmentation=fragmentation, block=data[pos + 1], ack_bits=bits), end


def beacon_payload(
    extended_pan_id: t.ExtendedPanId, *, permit: bool, update_id: int = 0, depth: int = 0
) -> tuple[bytes, bytes]:
    """Superframe/GTS/pending fields and the ZigBee beacon payload (ZB 3.6.7, Table 3.56);
    ``depth`` 0 is the PAN coordinator's (the superframe's PAN coordinator bit set), a router
    sends its own depth."""
    superframe = 0x0FFF | (0x4000 if depth == 0 else 0)  # BO=SO=15, final CAP 15
    superframe |= 0x8000 if permit else 0
    mac_fields = struct.pack("<HBB", superframe, 0, 0)
    # router and end device capacity, and the device depth (bits 3-6)
    capacity = 0x84 | (min(depth, 15) << 3)
    zb = bytes((0x00, 0x22, capacity)) + bytes(extended_pan_id.serialize()) + b"\xff\xff\xff"
    return mac_fields, zb + bytes((update_id & 0xFF,))


def transport_key_payload(network_key: bytes, key_seq: int, dst: t.EUI64, src: t.EUI64) -> bytes:
    """APS Transport Key command carrying the standard network key (ZB 4.4.9.2.3)."""
    return (
        bytes((APS_CMD_TRANSPORT_KEY, KEY_TYPE_STANDARD_NETWORK))
        + network_key
        + bytes((key_seq & 0xFF,))
        + bytes(dst.serialize())
        + bytes(src.serialize())
    )


#: NWK command frame type and the Rejoin Request / Response command ids (ZB 3.4.6, 3.4.7).
NWK_COMMAND = 1
NWK_CMD_REJOIN_REQUEST, NWK_CMD_REJOIN_RESPONSE = 0x06, 0x07


def update_device_payload(ieee: t.EUI64, nwk: int, status: int) -> bytes:
    """APS Update Device command (ZB 4.4.3.3): the device's EUI-64 and short address, and
    what happened (:data:`UPDATE_DEVICE_UNSECURED_JOIN`)."""
    return (
        bytes((APS_CMD_UPDATE_DEVICE,))
        + bytes(ieee.serialize())
        + struct.pack("<HB", nwk, status & 0xFF)
    )


def decode_update_device(payload: bytes) -> tuple[Eui64, int, int]:
    """(EUI-64, short address, status) of an Update Device command; a short one is an
    :class:`InvalidFrame`."""
    if len(payload) < 12 or payload[0] != APS_CMD_UPDATE_DEVICE:
        raise InvalidFrame(f"Update Device needs 12 octets, got {len(payload)}")
    nwk, status = struct.unpack_from("<HB", payload, 9)
    return Eui64(payload[1:9]), nwk, status


def tunnel_payload(dst: t.EUI64, frame: bytes) -> bytes:
    """APS Tunnel command (ZB 4.4.3, 4.6.3.7): the joining device's EUI-64, then the APS
    frame (header, auxiliary header, payload, MIC) its parent passes on to it."""
    return bytes((APS_CMD_TUNNEL,)) + bytes(dst.serialize()) + frame


def switch_key_payload(key_seq: int) -> bytes:
    """APS Switch Key command: make the network key ``key_seq`` the active one (ZB 4.4.9.5)."""
    return bytes((APS_CMD_SWITCH_KEY, key_seq & 0xFF))


#: The NWK routing commands (ZB 3.4.1-3.4.3): Route Request, Route Reply, Network Status.
NWK_CMD_ROUTE_REQUEST, NWK_CMD_ROUTE_REPLY, NWK_CMD_NETWORK_STATUS = 0x01, 0x02, 0x03
#: Network Status codes (ZB 3.4.3.3.1, Table 3.42; the values as Wireshark's ZigBee NWK
#: dissector names them): no route available, and a link to the next hop that failed
#: (a non-tree link: the simulator's routes are mesh routes, not tree routes)
NWK_STATUS_NO_ROUTE_AVAILABLE = 0x00
NWK_STATUS_NON_TREE_LINK_FAILURE = 0x02


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """A Route Request's payload (ZB 3.4.1.3): command options, route request identifier,
    destination address and the path cost so far (no destination IEEE address)."""

    request_id: int
    dst: int
    cost: int
    options: int = 0

    def encode(self) -> bytes:
        return struct.pack(
            "<BBBHB",
            NWK_CMD_ROUTE_REQUEST,
            self.options & 0xFF,
            self.request_id & 0xFF,
            self.dst,
            min(self.cost, 0xFF),
        )

    @classmethod
    def decode(cls, payload: bytes) -> RouteRequest:
        """The command from its payload (command identifier first); a short one is an
        :class:`InvalidFrame`."""
        if len(payload) < 6 or payload[0] != NWK_CMD_ROUTE_REQUEST:
            raise InvalidFrame(f"Route Request needs 6 octets, got {len(payload)}")
        _, options, request_id, dst, cost = struct.unpack_from("<BBBHB", payload)
        return cls(request_id, dst, cost, options)


@dataclass(frozen=True, slots=True)
class RouteReply:
    """A Route Reply's payload (ZB 3.4.2.3): command options, the route request identifier
    it answers, originator and responder addresses and the path cost (no IEEE addresses)."""

    request_id: int
    originator: int
    responder: int
    cost: int
    options: int = 0

    def encode(self) -> bytes:
        return struct.pack(
            "<BBBHHB",
            NWK_CMD_ROUTE_REPLY,
            self.options & 0xFF,
            self.request_id & 0xFF,
            self.originator,
            self.responder,
            min(self.cost, 0xFF),
        )

    @classmethod
    def decode(cls, payload: bytes) -> RouteReply:
        """The command from its payload; a short one is an :class:`InvalidFrame`."""
        if len(payload) < 8 or payload[0] != NWK_CMD_ROUTE_REPLY:
            raise InvalidFrame(f"Route Reply needs 8 octets, got {len(payload)}")
        _, options, request_id, originator, responder, cost = struct.unpack_from("<BBBHHB", payload)
        return cls(request_id, originator, responder, cost, options)


@dataclass(frozen=True, slots=True)
class NetworkStatus:
    """A Network Status command's payload (ZB 3.4.3.3): the status code and the destination
    address of the frame it is about."""

    status: int
    dst: int

    def encode(self) -> bytes:
        return struct.pack("<BBH", NWK_CMD_NETWORK_STATUS, self.status & 0xFF, self.dst)

    @classmethod
    def decode(cls, payload: bytes) -> NetworkStatus:
        """The command from its payload; a short one is an :class:`InvalidFrame`."""
        if len(payload) < 4 or payload[0] != NWK_CMD_NETWORK_STATUS:
            raise InvalidFrame(f"Network Status needs 4 octets, got {len(payload)}")
        _, status, dst = struct.unpack_from("<BBH", payload)
        return cls(status, dst)
