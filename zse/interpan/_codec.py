"""Inter-PAN frames (SE 1.x Annex B, "Inter-PAN Communication"), sans-IO.

An inter-PAN frame is an IEEE 802.15.4 data frame whose payload is a *stub* NWK header and a
*stub* APS header followed by a ZCL frame (SE Annex B.4, figures B.2 to B.5):

- MAC header (802.15.4 clause 7.2.1): PAN-id compression off, so both PAN ids are present;
  the source address is always the sender's 64-bit IEEE address; the destination is a 64-bit
  address (unicast, MAC acknowledgement requested: frame control ``0xCC21``) or the broadcast
  short address ``0xFFFF`` (broadcast and group delivery, no acknowledgement: ``0xC801``);
- stub NWK header (SE B.4.2.1): a frame control only, ``0x000B`` (frame type 0b11 "inter-PAN",
  protocol version 2, every other sub-field zero);
- stub APS header (SE B.4.2.2): a frame control (frame type 0b11, delivery mode unicast 0b00,
  broadcast 0b10 or group 0b11; no security, no acknowledgement, no extended header), the group
  address for group delivery, then the cluster and profile identifiers. There are no endpoints.

SE B.3 gives inter-PAN no security, no APS acknowledgement and no fragmentation. Later stacks
add two things this codec carries (docs/interpan.md, "Secured inter-PAN"): an APS-secured
*unicast* frame (stub APS frame control security bit ``0x20``; :attr:`InterPanFrame.aps_security`,
the payload is then the auxiliary header, the encrypted ZCL frame and the MIC, see
:mod:`zse.interpan.secure`) and inter-PAN message fragments, which travel as ordinary payloads
(:mod:`zse.interpan.fragment`); a ZCL frame put together from fragments is an
:class:`InterPanFrame` with :attr:`~InterPanFrame.reassembled` set, never sent as one frame.

Lengths: one frame carries what fits a 127-octet PHY frame (802.15.4-2006 6.4.1
aMaxPHYPacketSize) after its FCS and its own headers, :func:`max_payload_length`: 95 octets
unicast (Silicon Labs' plugin fills unicast frames to that: ``EMBER_AF_MAXIMUM_INTERPAN_LENGTH``
125), 101 broadcast, 99 group. Decoding and construction accept up to that. What zse itself
puts in one frame is :data:`MAX_ZCL_LENGTH` (93): the PHY frame less the largest MAC header and
the largest stub APS header, a bound every delivery mode fits and the MTU Z-Stack's stub APS
gives (TI ``stub_aps.c``, ``INTERP_DataReqMTU``).

:meth:`InterPanFrame.to_bytes` gives the MAC frame *without* its FCS (what radios such as EZSP's
``sendRawMessage`` take and what :class:`zse.pcap.PcapWriter` writes);
:meth:`InterPanFrame.from_bytes` parses one and raises :class:`zse.errors.InvalidFrame` naming
the field and byte offset of the first thing that is not an Annex B frame.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from zigpy.types import EUI64

from zse.errors import InvalidFrame
from zse.se.ids import SE_PROFILE_ID

__all__ = [
    "APS_SECURITY",
    "BROADCAST_ADDRESS",
    "FC_BROADCAST",
    "FC_UNICAST",
    "MAX_MAC_FRAME_LENGTH",
    "MAX_REASSEMBLED_LENGTH",
    "MAX_ZCL_LENGTH",
    "MIN_PAYLOAD_LENGTH",
    "NWK_STUB_FRAME_CONTROL",
    "SE_PROFILE_ID",
    "DeliveryMode",
    "InterPanFrame",
    "max_payload_length",
]

BROADCAST_ADDRESS: Final = 0xFFFF
#: MAC frame control, unicast: data, ack request, dst 64-bit, src 64-bit, no PAN-id compression.
FC_UNICAST: Final = 0xCC21
#: MAC frame control, broadcast or group: data, dst 16-bit (0xFFFF), src 64-bit.
FC_BROADCAST: Final = 0xC801
#: Stub NWK frame control (SE B.4.2.1): frame type 0b11, protocol version 0x2.
NWK_STUB_FRAME_CONTROL: Final = 0x000B
#: Longest MAC frame without its FCS: aMaxPHYPacketSize 127 (802.15.4-2006 6.4.1) - 2 (FCS);
#: Silicon Labs' ``EMBER_AF_MAXIMUM_INTERPAN_LENGTH``.
MAX_MAC_FRAME_LENGTH: Final = 125
#: Longest ZCL frame zse puts in one inter-PAN frame (the send side): 127 - 25 (largest MAC
#: header, two 64-bit addresses, and FCS) - 2 (stub NWK) - 7 (largest stub APS header, with a
#: group address) = 93, which every delivery mode fits and Z-Stack's ``INTERP_DataReqMTU`` is.
#: A received frame may carry more: :func:`max_payload_length`.
MAX_ZCL_LENGTH: Final = 93
#: Shortest payload an inter-PAN frame carries: a ZCL header (frame control, sequence number,
#: command id) or a fragment's answer are 3 bytes; a fragment 4, a secured frame 9.
MIN_PAYLOAD_LENGTH: Final = 3
#: The stub APS frame control's security sub-field (ZB 2.2.5.1.1.4), set on an APS-secured
#: inter-PAN frame (Silicon Labs' inter-PAN plugin: ``INTERPAN_APS_FRAME_SECURITY``).
APS_SECURITY: Final = 0x20
#: The longest ZCL frame put together from inter-PAN fragments (Silicon Labs' plugin: 1500).
MAX_REASSEMBLED_LENGTH: Final = 1500

_APS_FRAME_TYPE_INTERPAN: Final = 0x03
_U16 = struct.Struct("<H")
_UNICAST_HDR = struct.Struct("<HBH8sH8sHB")  # fc seq dpan dst span src nwk aps
_BCAST_HDR = struct.Struct("<HBHHH8sHB")  # fc seq dpan 0xffff span src nwk aps
_CLUSTER_PROFILE = struct.Struct("<HH")


class DeliveryMode(enum.IntEnum):
    """APS delivery mode of an inter-PAN frame (SE B.4.2.2); the value is the 2-bit field."""

    UNICAST = 0b00
    BROADCAST = 0b10
    GROUP = 0b11


_APS_FC: Final = {mode: (mode << 2) | _APS_FRAME_TYPE_INTERPAN for mode in DeliveryMode}
_MODE_BY_APS_FC: Final = {fc: mode for mode, fc in _APS_FC.items()}
#: Octets before the payload (SE B.4, figures B.2 to B.5): MAC header (23 with a 64-bit
#: destination, 17 with 0xFFFF), stub NWK frame control (2), stub APS header (5; 7 with a group).
_HEADER_LENGTH: Final = {
    DeliveryMode.UNICAST: _UNICAST_HDR.size + _CLUSTER_PROFILE.size,
    DeliveryMode.BROADCAST: _BCAST_HDR.size + _CLUSTER_PROFILE.size,
    DeliveryMode.GROUP: _BCAST_HDR.size + _U16.size + _CLUSTER_PROFILE.size,
}


def max_payload_length(mode: DeliveryMode) -> int:
    """The most octets after the stub APS header one frame of ``mode`` legally carries: a
    127-octet PHY frame less FCS and headers (95 unicast, 101 broadcast, 99 group). A received
    frame is accepted up to it; zse sends at most :data:`MAX_ZCL_LENGTH`."""
    return MAX_MAC_FRAME_LENGTH - _HEADER_LENGTH[mode]


def _check_u16(name: str, value: object) -> None:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must be an integer 0..0xFFFF, got {value!r}")


def _is_eui64(value: object) -> bool:
    return isinstance(value, EUI64)


def _is_u8(value: object) -> bool:
    return isinstance(value, int) and 0 <= value <= 0xFF


@dataclass(frozen=True, slots=True, kw_only=True)
class InterPanFrame:
    """One inter-PAN frame (SE Annex B.4).

    ``dst_address`` is an :class:`~zigpy.types.EUI64` for unicast and :data:`BROADCAST_ADDRESS`
    (``0xFFFF``) for broadcast and group delivery; ``group_id`` is used (and required to be set,
    it may be 0) only with :attr:`DeliveryMode.GROUP`, and must be ``None`` otherwise.
    ``sequence`` is the MAC sequence number and ``payload`` the whole ZCL frame.
    Construction validates every field and raises :class:`ValueError` on a bad one.
    """

    src_pan_id: int
    src_ieee: EUI64
    dst_pan_id: int
    dst_address: EUI64 | int
    delivery_mode: DeliveryMode
    cluster_id: int
    payload: bytes
    profile_id: int = SE_PROFILE_ID
    group_id: int | None = None
    sequence: int = 0
    #: The payload is APS-secured (auxiliary header, encrypted ZCL frame, MIC); unicast only.
    aps_security: bool = False
    #: The payload was put together from inter-PAN fragments (up to MAX_REASSEMBLED_LENGTH).
    reassembled: bool = False
    #: The frame arrived APS-secured and its MIC verified with the sender's link key (set by
    #: :meth:`zse.interpan.secure.InterPanSecurity.open`, never by decoding).
    verified: bool = False

    def __post_init__(self) -> None:
        _check_u16("src_pan_id", self.src_pan_id)
        _check_u16("dst_pan_id", self.dst_pan_id)
        _check_u16("cluster_id", self.cluster_id)
        _check_u16("profile_id", self.profile_id)
        if not _is_eui64(self.src_ieee):
            raise ValueError(f"src_ieee must be a zigpy EUI64, got {type(self.src_ieee).__name__}")
        if not _is_u8(self.sequence):
            raise ValueError(f"sequence must be an integer 0..255, got {self.sequence!r}")
        mode = DeliveryMode(self.delivery_mode)
        if mode is not self.delivery_mode:
            object.__setattr__(self, "delivery_mode", mode)
        if mode is DeliveryMode.UNICAST:
            if not _is_eui64(self.dst_address):
                raise ValueError("unicast inter-PAN frames need a 64-bit (EUI64) dst_address")
        elif _is_eui64(self.dst_address) or self.dst_address != BROADCAST_ADDRESS:
            raise ValueError(f"{mode.name.lower()} inter-PAN frames go to dst_address 0xFFFF")
        if mode is DeliveryMode.GROUP:
            if self.group_id is None:
                raise ValueError("group delivery needs a group_id")
            _check_u16("group_id", self.group_id)
        elif self.group_id is not None:
            raise ValueError(f"group_id is only used with group delivery, not {mode.name}")
        if self.aps_security and mode is not DeliveryMode.UNICAST:
            raise ValueError("only unicast inter-PAN frames are APS-secured (a link key)")
        if type(self.payload) is not bytes:
            object.__setattr__(self, "payload", bytes(self.payload))
        self._check_length()

    def _check_length(self) -> None:
        if self.reassembled:
            if len(self.payload) > MAX_REASSEMBLED_LENGTH:
                raise ValueError(
                    f"reassembled ZCL frame of {len(self.payload)} bytes exceeds "
                    f"{MAX_REASSEMBLED_LENGTH}"
                )
        elif len(self.payload) > (limit := max_payload_length(self.delivery_mode)):
            raise ValueError(
                f"ZCL frame of {len(self.payload)} bytes exceeds the {limit} a "
                f"{self.delivery_mode.name.lower()} inter-PAN frame carries (a 127-octet PHY "
                "frame; SE Annex B: no fragmentation)"
            )

    def from_pan(self, pan_id: int) -> bool:
        """Whether this frame comes from PAN ``pan_id`` (0xFFFF, every PAN: the partner's PAN is
        not known, any will do): an answer is taken from the partner's PAN only."""
        return pan_id in (BROADCAST_ADDRESS, self.src_pan_id)

    def to_bytes(self) -> bytes:
        """The MAC frame without FCS (SE B.4, figures B.2 to B.5)."""
        if self.reassembled:
            raise ValueError("a reassembled frame is sent as fragments, not as one frame")
        mode = self.delivery_mode
        aps_fc = _APS_FC[mode] | (APS_SECURITY if self.aps_security else 0)
        if mode is DeliveryMode.UNICAST:
            header = _UNICAST_HDR.pack(
                FC_UNICAST,
                self.sequence,
                self.dst_pan_id,
                self.dst_address.serialize(),  # type: ignore[union-attr]
                self.src_pan_id,
                self.src_ieee.serialize(),
                NWK_STUB_FRAME_CONTROL,
                aps_fc,
            )
        else:
            header = _BCAST_HDR.pack(
                FC_BROADCAST,
                self.sequence,
                self.dst_pan_id,
                BROADCAST_ADDRESS,
                self.src_pan_id,
                self.src_ieee.serialize(),
                NWK_STUB_FRAME_CONTROL,
                aps_fc,
            )
            if mode is DeliveryMode.GROUP:
                header += _U16.pack(self.group_id)
        return header + _CLUSTER_PROFILE.pack(self.cluster_id, self.profile_id) + self.payload

    @classmethod
    def from_bytes(cls, data: bytes) -> InterPanFrame:
        """Parse a MAC frame without FCS; :class:`~zse.errors.InvalidFrame` if not Annex B."""
        data = bytes(data)
        size = len(data)
        if size < 2:
            raise InvalidFrame(f"truncated MAC frame control at byte offset 0: {size} byte(s)")
        (fc,) = _U16.unpack_from(data, 0)
        if fc == FC_UNICAST:
            hdr = _UNICAST_HDR
            mac_len = 23
        elif fc == FC_BROADCAST:
            hdr = _BCAST_HDR
            mac_len = 17
        else:
            raise InvalidFrame(_explain_mac_fc(fc))
        if size < hdr.size:
            _raise_truncated(data, fc)
        seq, dst_pan, dst, src_pan, src, nwk_fc, aps_fc = hdr.unpack_from(data, 0)[1:]
        if fc == FC_BROADCAST and dst != BROADCAST_ADDRESS:
            raise InvalidFrame(
                f"MAC destination address 0x{dst:04X} at byte offset 5 is not the broadcast "
                "address 0xFFFF (inter-PAN uses 16-bit addressing only for broadcast)"
            )
        if nwk_fc != NWK_STUB_FRAME_CONTROL:
            raise InvalidFrame(_explain_nwk_fc(nwk_fc, mac_len))
        aps_offset = mac_len + 2
        secured = fc == FC_UNICAST and aps_fc == _APS_FC[DeliveryMode.UNICAST] | APS_SECURITY
        if secured:
            aps_fc &= ~APS_SECURITY
        mode = _delivery_mode(aps_fc, aps_offset, fc == FC_UNICAST)
        offset = aps_offset + 1
        group: int | None = None
        if mode is DeliveryMode.GROUP:
            if size < offset + 2:
                raise InvalidFrame(f"truncated APS group address at byte offset {offset}")
            (group,) = _U16.unpack_from(data, offset)
            offset += 2
        if size < offset + 4:
            what = "cluster id" if size < offset + 2 else "profile id"
            at = offset if size < offset + 2 else offset + 2
            raise InvalidFrame(f"truncated APS {what} at byte offset {at}")
        cluster, profile = _CLUSTER_PROFILE.unpack_from(data, offset)
        offset += 4
        _check_payload_size(size - offset, offset, mode)
        return cls(
            src_pan_id=src_pan,
            src_ieee=EUI64(src),
            dst_pan_id=dst_pan,
            dst_address=EUI64(dst) if mode is DeliveryMode.UNICAST else BROADCAST_ADDRESS,
            delivery_mode=mode,
            group_id=group,
            cluster_id=cluster,
            profile_id=profile,
            payload=data[offset:],
            sequence=seq,
            aps_security=secured,
        )


def _check_payload_size(size: int, offset: int, mode: DeliveryMode) -> None:
    """:class:`InvalidFrame` for a payload shorter than any inter-PAN payload or longer than
    a frame of ``mode`` carries (:func:`max_payload_length`)."""
    if size < MIN_PAYLOAD_LENGTH:
        raise InvalidFrame(
            f"payload at byte offset {offset} is {size} bytes, fewer than the "
            f"{MIN_PAYLOAD_LENGTH} of the shortest (a ZCL header, a fragment's answer)"
        )
    if size > (limit := max_payload_length(mode)):
        raise InvalidFrame(
            f"payload at byte offset {offset} is {size} bytes, more than the {limit} a "
            f"{mode.name.lower()} inter-PAN frame carries (the frame is "
            f"{offset + size} bytes, more than the {MAX_MAC_FRAME_LENGTH} of a 127-octet PHY "
            "frame with its FCS)"
        )


def _delivery_mode(aps_fc: int, offset: int, unicast_mac: bool) -> DeliveryMode:
    mode = _MODE_BY_APS_FC.get(aps_fc)
    if mode is None:
        raise InvalidFrame(_explain_aps_fc(aps_fc, offset))
    if (mode is DeliveryMode.UNICAST) != unicast_mac:
        raise InvalidFrame(
            f"APS delivery mode {mode.name} at byte offset {offset} does not match the "
            f"MAC destination ({'64-bit' if unicast_mac else 'broadcast 0xFFFF'}): "
            "unicast goes to a 64-bit address, broadcast and group to 0xFFFF"
        )
    return mode


_MAC_FIELDS_UNICAST: Final = (
    (3, "sequence number"),
    (5, "destination PAN id"),
    (13, "destination address"),
    (15, "source PAN id"),
    (23, "source address"),
    (25, "stub NWK frame control"),
    (26, "stub APS frame control"),
)
_MAC_FIELDS_BCAST: Final = (
    (3, "sequence number"),
    (5, "destination PAN id"),
    (7, "destination address"),
    (9, "source PAN id"),
    (17, "source address"),
    (19, "stub NWK frame control"),
    (20, "stub APS frame control"),
)


def _raise_truncated(data: bytes, fc: int) -> None:
    fields = _MAC_FIELDS_UNICAST if fc == FC_UNICAST else _MAC_FIELDS_BCAST
    start = 2
    for end, name in fields:
        if len(data) < end:
            raise InvalidFrame(
                f"truncated {name} at byte offset {start}: frame is {len(data)} bytes"
            )
        start = end
    raise AssertionError("unreachable")  # pragma: no cover


def _explain_mac_fc(fc: int) -> str:
    """Say which frame-control sub-field (802.15.4 clause 7.2.1.1) is not Annex B's."""
    where = f"MAC frame control 0x{fc:04X} at byte offset 0"
    frame_type = fc & 0x7
    dst_mode = (fc >> 10) & 0x3
    src_mode = (fc >> 14) & 0x3
    if frame_type != 1:
        reason = f"frame type {frame_type} is not a data frame (1)"
    elif fc & 0x0008:
        reason = "security enabled: inter-PAN frames are never MAC-secured"
    elif fc & 0x0040:
        reason = "PAN-id compression is set: inter-PAN frames carry both PAN ids"
    elif src_mode != 3:
        reason = f"source addressing mode {src_mode} is not 64-bit (3)"
    elif dst_mode not in (2, 3):
        reason = f"destination addressing mode {dst_mode} is neither 16-bit nor 64-bit"
    elif dst_mode == 3 and not fc & 0x0020:
        reason = "unicast (64-bit destination) without acknowledgement request"
    elif dst_mode == 2 and fc & 0x0020:
        reason = (
            "16-bit destination with acknowledgement request, a unicast to a short address "
            "(inter-PAN unicasts go to a 64-bit address; 16-bit is for broadcast 0xFFFF, "
            "unacknowledged)"
        )
    else:
        reason = "frame pending, frame version or reserved bits set"
    return f"{where}: {reason} (expected 0xCC21 unicast or 0xC801 broadcast/group)"


def _explain_nwk_fc(nwk_fc: int, offset: int) -> str:
    where = f"NWK frame control 0x{nwk_fc:04X} at byte offset {offset}"
    if nwk_fc & 0x3 != 0x3:
        return (
            f"{where}: NWK frame type {nwk_fc & 0x3} is not inter-PAN (3): not an inter-PAN frame"
        )
    if (nwk_fc >> 2) & 0xF != 2:
        return f"{where}: protocol version {(nwk_fc >> 2) & 0xF} is not 2"
    return f"{where}: stub NWK sub-fields other than frame type and version must be 0 (0x000B)"


def _explain_aps_fc(aps_fc: int, offset: int) -> str:
    where = f"APS frame control 0x{aps_fc:02X} at byte offset {offset}"
    if aps_fc & 0x3 != 0x3:
        return f"{where}: APS frame type {aps_fc & 0x3} is not inter-PAN (3)"
    if (aps_fc >> 2) & 0x3 == 1:
        return f"{where}: delivery mode 0b01 (indirect) is not allowed on inter-PAN"
    return (
        f"{where}: acknowledgement and extended header sub-fields must be 0, security only on "
        "unicast (expected 0x03 or secured 0x23 unicast, 0x0B broadcast or 0x0F group)"
    )
