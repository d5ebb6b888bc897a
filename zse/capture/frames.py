"""IEEE 802.15.4 MAC, ZigBee NWK and APS headers and commands as a sniffer sees them, sans-IO.

Unlike the simulator's own frames (:mod:`zse.sim._frames`), these decoders take whatever is on
the air: any addressing mode, PAN ID compression, MAC commands and beacons (IEEE 802.15.4-2006
7.2, 7.3), NWK headers with IEEE addresses, multicast control and source routes and NWK
commands (ZB 3.3.1, 3.4), the inter-PAN stub (SE Annex B.4), APS data, command and
acknowledgement headers with the extended header of fragmented transfers (ZB 2.2.5.1.8: block
number, an ack's block bitfield) and the APS security commands
(ZB 4.4.9). The security bits are reported; the auxiliary header and decryption are
:mod:`zse.security`'s. Every decoder raises :class:`~zse.errors.InvalidFrame` naming the
field and byte offset, and nothing else, whatever the bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from zse.errors import InvalidFrame
from zse.security import aps_header_length, nwk_header_length

__all__ = [
    "APS_COMMANDS",
    "APS_TUNNEL",
    "APS_TUNNEL_HEADER",
    "GP_COMMANDS",
    "MAC_COMMANDS",
    "NWK_COMMANDS",
    "Aps",
    "GreenPower",
    "Mac",
    "Nwk",
    "decode_aps",
    "decode_aps_command",
    "decode_gp",
    "decode_mac",
    "decode_mac_by_field",
    "decode_mac_payload",
    "decode_nwk",
    "eui64_text",
    "is_gp",
    "not_zigbee",
]

MAC_FRAME_TYPES = {0: "beacon", 1: "data", 2: "ack", 3: "command"}
MAC_COMMANDS = {
    0x01: "association request",
    0x02: "association response",
    0x03: "disassociation notification",
    0x04: "data request",
    0x05: "PAN ID conflict notification",
    0x06: "orphan notification",
    0x07: "beacon request",
    0x08: "coordinator realignment",
    0x09: "GTS request",
}
NWK_FRAME_TYPES = {0: "data", 1: "command", 3: "inter-PAN"}
NWK_COMMANDS = {
    0x01: "route request",
    0x02: "route reply",
    0x03: "network status",
    0x04: "leave",
    0x05: "route record",
    0x06: "rejoin request",
    0x07: "rejoin response",
    0x08: "link status",
    0x09: "network report",
    0x0A: "network update",
    0x0B: "end device timeout request",
    0x0C: "end device timeout response",
}
APS_FRAME_TYPES = {0: "data", 1: "command", 2: "ack", 3: "inter-PAN"}
APS_DELIVERY = {0: "unicast", 1: "reserved", 2: "broadcast", 3: "group"}
_APS_RESERVED_DELIVERY = 1  # "indirect" in ZigBee 2006, reserved since 2007 (ZB 2.2.5.1.1.2)
#: The APS Tunnel command (ZB 4.4.9.8): the destination's EUI-64, then a whole APS frame
APS_TUNNEL = 0x0E
APS_TUNNEL_HEADER = 9  # command id and destination EUI-64
APS_COMMANDS = {
    0x05: "transport key",
    0x06: "update device",
    0x07: "remove device",
    0x08: "request key",
    0x09: "switch key",
    0x0E: "tunnel",
    0x0F: "verify key",
    0x10: "confirm key",
}
#: The GP stub NWK header's protocol version (Green Power 14-0563 A.1.4.1)
GP_PROTOCOL_VERSION = 3
GP_FRAME_TYPES = {0: "data", 1: "maintenance"}
GP_APPLICATIONS = {0: "source id", 1: "LPED", 2: "IEEE"}
#: GPD command ids (Green Power 14-0563 Table 49), the common ones
GP_COMMANDS = {
    **{0x10 + n: f"recall scene {n}" for n in range(8)},
    **{0x18 + n: f"store scene {n}" for n in range(8)},
    0x20: "off",
    0x21: "on",
    0x22: "toggle",
    0xE0: "commissioning",
    0xE1: "decommissioning",
    0xE2: "success",
    0xE3: "channel request",
    0xF0: "commissioning reply",
    0xF3: "channel configuration",
}
_GP_CHANNEL_CONFIGURATION = b"\xf3"  # a maintenance frame's command without a source id
_GP_SOURCE_ID_APP = 0
_GP_IEEE_APP = 2
_GP_FULL_SECURITY = 2  # 4-byte frame counter and MIC; 3 also encrypts the payload
_GP_ENCRYPTED = 3
#: Transport Key key types (ZB 4.4.10.1 / Table 4.12 as ZigBee PRO uses them)
KEY_TYPES = {
    0x00: "trust center master key",
    0x01: "standard network key",
    0x02: "application master key",
    0x03: "application link key",
    0x04: "trust center link key",
    0x05: "high-security network key",
}
NETWORK_KEY_TYPES = (0x01, 0x05)
#: MAC command payloads' least sizes after the command id (802.15.4-2006 7.3): capability
#: information, association response, disassociation reason, coordinator realignment, GTS
#: characteristics
_MAC_COMMAND_SIZES = {0x01: 1, 0x02: 3, 0x03: 1, 0x08: 7, 0x09: 1}
#: The NWK protocol versions Wireshark's heuristic takes for ZigBee (2004, 2006/PRO)
_ZIGBEE_VERSIONS = (1, 2)
_INTER_PAN_STUB = 0x000B  # the stub NWK frame control, every other sub-field 0 (SE B.4.2.1)
_NWK_PRO_VERSION = 2

# NWK frame control bits (ZB 3.3.1.1)
_NWK_MULTICAST = 1 << 8
_NWK_SECURITY = 1 << 9
_NWK_SOURCE_ROUTE = 1 << 10
_NWK_DST_IEEE = 1 << 11
_NWK_SRC_IEEE = 1 << 12


def eui64_text(value: int) -> str:
    """An EUI-64 as Wireshark prints it: ``00:0d:6f:00:0a:00:00:01``."""
    return value.to_bytes(8, "big").hex(":")


def _eui(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 8], "little")


# not frozen (its per-field setattr costs a capture ~7 %): read-only by convention
@dataclass(slots=True, unsafe_hash=True)
class Mac:
    """An IEEE 802.15.4 MAC header (802.15.4-2006 7.2.1). Addresses are ints; ``*_long``
    says an address is an EUI-64 (mode 3) rather than a short address (mode 2)."""

    frame_type: int
    security: bool
    pending: bool
    ack_request: bool
    version: int
    seq: int
    dst_pan: int | None
    dst: int | None
    dst_long: bool
    src_pan: int | None
    src: int | None
    src_long: bool
    length: int

    def address(self, which: str) -> str | None:
        """``dst`` or ``src`` as printed: ``0x1234`` or an EUI-64, None when absent."""
        value, long = (self.dst, self.dst_long) if which == "dst" else (self.src, self.src_long)
        if value is None:
            return None
        return eui64_text(value) if long else f"0x{value:04x}"

    def fields(self) -> dict[str, Any]:
        """The header as JSON-ready fields."""
        dst_pan, src_pan = self.dst_pan, self.src_pan
        return {
            "type": MAC_FRAME_TYPES.get(self.frame_type, f"reserved {self.frame_type}"),
            "seq": self.seq,
            "security": self.security,
            "ack_request": self.ack_request,
            "dst_pan": None if dst_pan is None else f"0x{dst_pan:04x}",
            "dst": None if self.dst is None else self.address("dst"),
            "src_pan": None if src_pan is None else f"0x{src_pan:04x}",
            "src": None if self.src is None else self.address("src"),
        }


def decode_mac(frame: bytes) -> tuple[Mac, bytes]:
    """The MAC header of ``frame`` (without FCS) and the MAC payload after it.

    A frame whose header is all there is read with one precompiled layout per frame
    control value (:func:`_mac_plan`); any other goes field by field
    (:func:`decode_mac_by_field`, which words the error). A test holds the two equal.
    """
    if len(frame) >= 3:
        fc = frame[0] | frame[1] << 8
        plan = _MAC_PLANS.get(fc)
        if plan is None:
            plan = _MAC_PLANS[fc] = _mac_plan(fc)
        if plan and len(frame) >= plan[0].size:
            layout, dst_mode, src_mode, compress = plan[:4]
            values = layout.unpack_from(frame)
            dst_pan = dst = src_pan = src = None
            if dst_mode:
                dst_pan, dst = values[2], values[3]
            if src_mode:
                src = values[-1]
                src_pan = dst_pan if compress and dst_mode else values[-2]
            frame_type, security, pending, ack_request, version = plan[4:]
            mac = Mac(
                frame_type, security, pending, ack_request, version, values[1], dst_pan, dst,
                dst_mode == 3, src_pan, src, src_mode == 3, layout.size,
            )  # fmt: skip
            return mac, frame[layout.size :]
    return decode_mac_by_field(frame)


#: Frame control value -> its plan (see :func:`_mac_plan`); at most 65,536 small entries.
_MAC_PLANS: dict[int, tuple[Any, ...]] = {}


def _mac_plan(fc: int) -> tuple[Any, ...]:
    """The header layout of frame control ``fc`` (802.15.4-2006 7.2.1) as a struct, the
    addressing modes, PAN ID compression and the flags; () for a frame control that
    :func:`decode_mac_by_field` refuses."""
    frame_type, version = fc & 0x7, (fc >> 12) & 0x3
    compress = bool(fc & 0x40)
    dst_mode, src_mode = (fc >> 10) & 3, (fc >> 14) & 3
    if dst_mode == 1 or src_mode == 1 or version > 1:
        return ()
    layout = "<HB"
    if dst_mode:
        layout += "H" + ("H" if dst_mode == 2 else "Q")
    if src_mode:
        layout += ("" if compress and dst_mode else "H") + ("H" if src_mode == 2 else "Q")
    flags = (frame_type, bool(fc & 0x08), bool(fc & 0x10), bool(fc & 0x20), version)
    return (struct.Struct(layout), dst_mode, src_mode, compress, *flags)


def decode_mac_by_field(frame: bytes) -> tuple[Mac, bytes]:
    """:func:`decode_mac` field by field: the reference, and the path of bad headers."""
    if len(frame) < 3:
        raise InvalidFrame(f"MAC frame of {len(frame)} bytes: shorter than a 3-byte header")
    fc, seq = struct.unpack_from("<HB", frame)
    frame_type, version = fc & 0x7, (fc >> 12) & 0x3
    compress = bool(fc & 0x40)
    dst_mode, src_mode = (fc >> 10) & 3, (fc >> 14) & 3
    if dst_mode == 1 or src_mode == 1:
        raise InvalidFrame("MAC frame control at offset 0: reserved addressing mode 1")
    if version > 1:
        raise InvalidFrame(
            f"MAC frame control at offset 0: frame version {version} (not 2003/2006)"
        )
    pos = 3
    dst_pan = dst = src_pan = src = None
    try:
        if dst_mode:
            (dst_pan,) = struct.unpack_from("<H", frame, pos)
            dst, pos = _address(frame, pos + 2, dst_mode)
        if src_mode:
            if compress and dst_mode:
                src_pan = dst_pan
            else:
                (src_pan,) = struct.unpack_from("<H", frame, pos)
                pos += 2
            src, pos = _address(frame, pos, src_mode)
    except struct.error:
        raise InvalidFrame(f"MAC header truncated at offset {pos} of {len(frame)}") from None
    mac = Mac(
        frame_type,
        bool(fc & 0x08),
        bool(fc & 0x10),
        bool(fc & 0x20),
        version,
        seq,
        dst_pan,
        dst,
        dst_mode == 3,
        src_pan,
        src,
        src_mode == 3,
        pos,
    )
    return mac, frame[pos:]


def _address(frame: bytes, pos: int, mode: int) -> tuple[int, int]:
    size = 2 if mode == 2 else 8
    if len(frame) < pos + size:
        raise struct.error("short")
    return int.from_bytes(frame[pos : pos + size], "little"), pos + size


def decode_mac_payload(mac: Mac, payload: bytes) -> dict[str, Any]:
    """The fields of a MAC command or beacon (7.3, 7.2.2.1); {} for other frames."""
    if mac.frame_type == 3:
        if not payload:
            raise InvalidFrame(f"MAC command frame: no command id at offset {mac.length}")
        command = payload[0]
        out: dict[str, Any] = {"command": MAC_COMMANDS.get(command, f"0x{command:02x}")}
        body = payload[1:]
        size = _MAC_COMMAND_SIZES.get(command, 0)
        if len(body) < size:
            raise InvalidFrame(
                f"MAC {out['command']}: {len(body)} bytes after the command id at offset "
                f"{mac.length}, needs {size}"
            )
        if command == 0x01:
            out["capability"] = f"0x{body[0]:02x}"
        elif command == 0x02:
            out["short_address"] = f"0x{body[0] | body[1] << 8:04x}"
            out["status"] = body[2]
        return out
    if mac.frame_type == 0:
        if len(payload) < 4:
            raise InvalidFrame(f"MAC beacon: {len(payload)} bytes, fewer than 4")
        superframe = payload[0] | payload[1] << 8
        pos = 2
        gts = payload[pos]
        pos += 1 + (1 + 3 * (gts & 7) if gts & 7 else 0)
        if pos >= len(payload):
            raise InvalidFrame(f"MAC beacon: pending address fields at offset {pos} missing")
        pending = payload[pos]
        pos += 1 + 2 * (pending & 7) + 8 * ((pending >> 4) & 7)
        beacon = payload[pos:]
        out = {"association_permit": bool(superframe & 0x8000)}
        if len(beacon) >= 11 and beacon[0] == 0:  # ZigBee beacon payload (ZB 3.6.7)
            out["stack_profile"] = beacon[1] & 0x0F
            out["extended_pan_id"] = eui64_text(_eui(beacon, 3))
        return out
    return {}


# not frozen (its per-field setattr costs a capture ~7 %): read-only by convention
@dataclass(slots=True, unsafe_hash=True)
class Nwk:
    """A ZigBee NWK header (ZB 3.3.1), or the inter-PAN stub (``frame_type`` 3)."""

    frame_type: int
    version: int
    security: bool
    dst: int | None
    src: int | None
    radius: int | None
    seq: int | None
    dst_ieee: int | None
    src_ieee: int | None
    relays: tuple[int, ...]
    length: int

    def fields(self) -> dict[str, Any]:
        """The header as JSON-ready fields."""
        out: dict[str, Any] = {
            "type": NWK_FRAME_TYPES.get(self.frame_type, f"reserved {self.frame_type}")
        }
        if self.frame_type == 3:
            return out
        assert self.dst is not None
        assert self.src is not None
        out["dst"] = f"0x{self.dst:04x}"
        out["src"] = f"0x{self.src:04x}"
        out["radius"] = self.radius
        out["seq"] = self.seq
        out["security"] = self.security
        if self.dst_ieee is not None:
            out["dst_ieee"] = eui64_text(self.dst_ieee)
        if self.src_ieee is not None:
            out["src_ieee"] = eui64_text(self.src_ieee)
        if self.relays:
            out["relays"] = [f"0x{relay:04x}" for relay in self.relays]
        return out


def decode_nwk(data: bytes) -> tuple[Nwk, bytes]:
    """The NWK header at the start of ``data`` and the bytes after it (the auxiliary
    security header first, if the security bit is set)."""
    if len(data) < 2:
        raise InvalidFrame(f"NWK header needs 2 bytes, got {len(data)}")
    fc = data[0] | data[1] << 8
    frame_type, version = fc & 3, (fc >> 2) & 0xF
    if frame_type == 3:  # inter-PAN: the stub NWK header is the frame control (SE B.4)
        if version != _NWK_PRO_VERSION:
            raise InvalidFrame(
                f"NWK frame control at offset 0: inter-PAN stub of protocol version {version}, "
                "not 2"
            )
        if fc != _INTER_PAN_STUB:
            raise InvalidFrame(
                f"NWK frame control at offset 0: inter-PAN stub 0x{fc:04x}, sub-fields other "
                "than frame type and protocol version set (SE B.4.2.1: 0x000b)"
            )
        return Nwk(3, version, False, None, None, None, None, None, None, (), 2), data[2:]
    length = nwk_header_length(data)
    dst, src, radius, seq = struct.unpack_from("<HHBB", data, 2)
    pos = 8
    dst_ieee = src_ieee = None
    if fc & _NWK_DST_IEEE:
        dst_ieee, pos = _eui(data, pos), pos + 8
    if fc & _NWK_SRC_IEEE:
        src_ieee, pos = _eui(data, pos), pos + 8
    pos += bool(fc & _NWK_MULTICAST)  # multicast control
    relays: tuple[int, ...] = ()
    if fc & _NWK_SOURCE_ROUTE:
        count = data[pos]
        relays = struct.unpack_from(f"<{count}H", data, pos + 2)
    nwk = Nwk(
        frame_type, version, bool(fc & _NWK_SECURITY), dst, src, radius, seq, dst_ieee, src_ieee,
        relays, length,
    )  # fmt: skip
    return nwk, data[length:]


def not_zigbee(mac: Mac, payload: bytes) -> str | None:
    """Why the payload of MAC data frame ``mac`` is no ZigBee NWK frame, or None when it may
    be one. As Wireshark's heuristic (packet-zbee-nwk.c): NWK protocol version 1 or 2, frame
    type data, command or inter-PAN, an inter-PAN frame from an EUI-64, the others between
    short addresses. A first octet of ``01xxxxxx`` or ``1xxxxxxx`` that fails is named a
    6LoWPAN dispatch (RFC 4944 5.1: Thread's frames)."""
    fc = payload[0]
    frame_type, version = fc & 3, (fc >> 2) & 0xF
    if version not in _ZIGBEE_VERSIONS:
        why = f"NWK protocol version {version}"
    elif frame_type == 2:
        why = "NWK frame type 2 (reserved)"
    elif frame_type == 3 and not mac.src_long:
        why = "inter-PAN frame not from an EUI-64"
    elif frame_type != 3 and (mac.dst is None or mac.dst_long or mac.src is None or mac.src_long):
        why = "NWK frame not between short MAC addresses"
    else:
        return None
    return f"6LoWPAN (dispatch 0x{fc:02x})" if fc >= 0x40 else why


def is_gp(data: bytes) -> bool:
    """Whether the NWK payload of a MAC data frame is a Green Power stub NWK frame (its frame
    control's protocol version is 3, Green Power 14-0563 A.1.4.1)."""
    return bool(data) and (data[0] >> 2) & 0xF == GP_PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class GreenPower:
    """A Green Power stub NWK header (Green Power 14-0563 A.1.4.1): not decoded further than
    its GPD command id, which an encrypted frame (security level 3) hides."""

    frame_type: int
    auto_commissioning: bool
    application: int
    security_level: int
    src_id: int | None
    counter: int | None
    command: int | None

    def fields(self) -> dict[str, Any]:
        """The header as JSON-ready fields."""
        out: dict[str, Any] = {
            "type": GP_FRAME_TYPES.get(self.frame_type, f"reserved {self.frame_type}"),
            "auto_commissioning": self.auto_commissioning,
            "application": GP_APPLICATIONS.get(self.application, f"reserved {self.application}"),
            "security_level": self.security_level,
        }
        if self.src_id is not None:
            out["src_id"] = f"0x{self.src_id:08x}"
        if self.counter is not None:
            out["counter"] = self.counter
        if self.command is not None:
            out["command"] = GP_COMMANDS.get(self.command, f"0x{self.command:02x}")
        return out


def decode_gp(data: bytes) -> GreenPower:
    """The Green Power stub NWK header at the start of ``data`` (see :func:`is_gp`): frame
    control, extended frame control, GPD source id and security frame counter, and the GPD
    command id when the payload is not encrypted."""
    if not is_gp(data):
        raise InvalidFrame("GP frame control at offset 0: protocol version is not 3")
    fc = data[0]
    frame_type, auto = fc & 3, bool(fc & 0x40)
    application = level = 0
    pos = 1
    if fc & 0x80:
        if len(data) < 2:
            raise InvalidFrame("GP extended frame control at offset 1 missing")
        application, level = data[1] & 0b111, (data[1] >> 3) & 0b11
        pos = 2
    if application != _GP_SOURCE_ID_APP:  # addressed by IEEE address (or LPED): no further
        return GreenPower(frame_type, auto, application, level, None, None, None)
    src_id = counter = None
    if frame_type == 0 or (
        frame_type == 1 and fc & 0x80 and data[pos : pos + 1] != _GP_CHANNEL_CONFIGURATION
    ):
        if len(data) < pos + 4:
            raise InvalidFrame(f"GP source id at offset {pos} truncated")
        (src_id,) = struct.unpack_from("<I", data, pos)
        pos += 4
    if level >= _GP_FULL_SECURITY:
        if len(data) < pos + 4:
            raise InvalidFrame(f"GP security frame counter at offset {pos} truncated")
        (counter,) = struct.unpack_from("<I", data, pos)
        pos += 4
    if len(data) <= pos:
        raise InvalidFrame(f"GP frame: no GPD command id at offset {pos}")
    command = None if level == _GP_ENCRYPTED else data[pos]
    return GreenPower(frame_type, auto, application, level, src_id, counter, command)


# not frozen (its per-field setattr costs a capture ~7 %): read-only by convention
@dataclass(slots=True, unsafe_hash=True)
class Aps:
    """A ZigBee APS header (ZB 2.2.5.1) or the inter-PAN APS header (SE B.4)."""

    frame_type: int
    delivery: int
    security: bool
    ack_request: bool
    dst_ep: int | None
    group: int | None
    cluster: int | None
    profile: int | None
    src_ep: int | None
    counter: int | None
    length: int
    #: the extended header's fragmentation sub-field (ZB 2.2.5.1.8): 0 none, 1 the first block
    #: (or an ack's first window), 2 a later one, 3 reserved (read as 2, as Wireshark does)
    fragmentation: int = 0
    #: the block number octet: a first block's count of blocks, another's number, an ack's
    #: first block of the window it acknowledges
    block: int | None = None
    block_acks: int | None = None  #: an ack's bitfield of the window's blocks received

    def fields(self) -> dict[str, Any]:
        """The header as JSON-ready fields."""
        out: dict[str, Any] = {
            "type": APS_FRAME_TYPES[self.frame_type],
            "delivery": APS_DELIVERY[self.delivery],
        }
        if self.fragmentation:
            out.update(self.fragment_fields())
        if self.dst_ep is not None:
            out["dst_ep"] = self.dst_ep
        if self.group is not None:
            out["group"] = f"0x{self.group:04x}"
        if self.cluster is not None:
            out["cluster"] = f"0x{self.cluster:04x}"
        if self.profile is not None:
            out["profile"] = f"0x{self.profile:04x}"
        if self.src_ep is not None:
            out["src_ep"] = self.src_ep
        if self.counter is not None:
            out["counter"] = self.counter
        out["security"] = self.security
        return out

    def fragment_fields(self) -> dict[str, Any]:
        """A block's or a block ack's extended header (ZB 2.2.5.1.8) as JSON-ready fields:
        ``block`` (0 for the first, which carries ``blocks``, the count), an ack's
        ``block_acks``."""
        kind = _FRAGMENTATION.get(self.fragmentation, f"reserved {self.fragmentation}")
        first = self.fragmentation == 1 and self.frame_type != 2
        out: dict[str, Any] = {"fragmentation": kind, "block": 0 if first else self.block}
        if first:
            out["blocks"] = self.block
        if self.block_acks is not None:
            out["block_acks"] = f"0x{self.block_acks:02x}"
        return out


_FRAGMENTATION = {1: "first block", 2: "later block"}
_APS_EXTENDED = 0x80


def _extended(aps: Aps, data: bytes, pos: int) -> None:
    """Read the extended header at ``pos`` into ``aps`` (ZB 2.2.5.1.8: the extended frame
    control, then a block number when fragmented, then an ack's bitfield); its length was
    checked."""
    fragmentation = data[pos] & 0b11
    if fragmentation:
        aps.fragmentation, aps.block = fragmentation, data[pos + 1]
        if aps.frame_type == 2:
            aps.block_acks = data[pos + 2]


def decode_aps(data: bytes, *, inter_pan: bool = False) -> tuple[Aps, bytes]:
    """The APS header at the start of ``data`` and the bytes after it."""
    if not data:
        raise InvalidFrame("APS header missing")
    fc = data[0]
    frame_type, delivery = fc & 3, (fc >> 2) & 3
    if frame_type == 3 or inter_pan:
        if frame_type != 3:
            raise InvalidFrame(
                f"APS frame control 0x{fc:02x}: not inter-PAN after an inter-PAN NWK"
            )
        size = 7 if delivery == 3 else 5
        if len(data) < size:
            raise InvalidFrame(f"inter-PAN APS header truncated: needs {size}, got {len(data)}")
        group = struct.unpack_from("<H", data, 1)[0] if delivery == 3 else None
        cluster, profile = struct.unpack_from("<HH", data, size - 4)
        # the security sub-field on any delivery mode, as Wireshark reads it (packet-zbee-aps.c);
        # zse and Silicon Labs secure unicasts only, so the decoder opens only those
        secured = bool(fc & 0x20)
        aps = Aps(3, delivery, secured, False, None, group, cluster, profile, None, None, size)
        return aps, data[size:]
    length = aps_header_length(data)
    pos = 1
    dst_ep = group = cluster = profile = src_ep = None
    if frame_type == 0 or (frame_type == 2 and not fc & 0x10):
        if delivery == _APS_RESERVED_DELIVERY:
            raise InvalidFrame(
                f"APS frame control 0x{fc:02x} at offset 0: delivery mode 0b01 is reserved "
                "(invalid delivery mode)"
            )
        if delivery == 3 and frame_type == 0:
            (group,) = struct.unpack_from("<H", data, pos)
            pos += 2
        else:
            dst_ep = data[pos]
            pos += 1
        cluster, profile, src_ep = struct.unpack_from("<HHB", data, pos)
        pos += 5
    aps = Aps(
        frame_type, delivery, bool(fc & 0x20), bool(fc & 0x40), dst_ep, group, cluster,
        profile, src_ep, data[pos], length,
    )  # fmt: skip
    if fc & _APS_EXTENDED:
        _extended(aps, data, pos + 1)
    return aps, data[length:]


def decode_aps_command(payload: bytes) -> dict[str, Any]:  # noqa: PLR0912 - one per command
    """An APS command (ZB 4.4.9): its name and fields. A Transport Key's key is returned as
    ``bytes`` under ``"key"`` (the caller decides whether to show it); a Tunnel's tunnelled
    APS frame, the payload from :data:`APS_TUNNEL_HEADER` on, is the caller's to decode."""
    if not payload:
        raise InvalidFrame("APS command frame: no command id")
    command, body = payload[0], payload[1:]
    out: dict[str, Any] = {"command": APS_COMMANDS.get(command, f"0x{command:02x}")}
    try:
        if command == 0x05:
            key_type = body[0]
            out["key_type"] = KEY_TYPES.get(key_type, f"0x{key_type:02x}")
            key = body[1:17]
            if len(key) != 16:
                raise IndexError
            out["key"] = bytes(key)
            rest = body[17:]
            if key_type in NETWORK_KEY_TYPES:
                out["key_seq"] = rest[0]
                out["dst"] = eui64_text(_eui8(rest, 1))
                out["src"] = eui64_text(_eui8(rest, 9))
            elif key_type == 0x03:
                out["partner"] = eui64_text(_eui8(rest, 0))
                out["initiator"] = bool(rest[8])
            else:
                out["dst"] = eui64_text(_eui8(rest, 0))
                out["src"] = eui64_text(_eui8(rest, 8))
        elif command == 0x06:
            out["device"] = eui64_text(_eui8(body, 0))
            out["short_address"] = f"0x{body[8] | body[9] << 8:04x}"
            out["status"] = body[10]
        elif command == 0x07:
            out["target"] = eui64_text(_eui8(body, 0))
        elif command == 0x08:
            out["key_type"] = KEY_TYPES.get(body[0], f"0x{body[0]:02x}")
            if body[0] == 0x02 or body[0] == 0x03:
                out["partner"] = eui64_text(_eui8(body, 1))
        elif command == 0x09:
            out["key_seq"] = body[0]
        elif command == APS_TUNNEL:
            out["dst"] = eui64_text(_eui8(body, 0))
            if len(body) == 8:
                raise IndexError  # no tunnelled frame
    except IndexError:
        raise InvalidFrame(
            f"APS command {out['command']}: {len(body)} bytes after the command id, too short"
        ) from None
    return out


def _eui8(data: bytes, pos: int) -> int:
    if len(data) < pos + 8:
        raise IndexError(pos)
    return _eui(data, pos)
