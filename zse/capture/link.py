"""From a captured record to the IEEE 802.15.4 MAC frame, by link type.

* 195, ``LINKTYPE_IEEE802_15_4_WITHFCS``: the MAC frame and its 2-byte FCS (checked here).
* 230, ``LINKTYPE_IEEE802_15_4_NOFCS``: the MAC frame alone.
* 283, ``LINKTYPE_IEEE802_15_4_TAP``: Exegin's IEEE 802.15.4 TAP (the layout of
  github.com/jkcko/ieee802.15.4-tap, "IEEE 802.15.4 TAP Link Type Specification" 1.1, which
  Wireshark's packet-ieee802154.c dissects): a header of version (0), reserved (0) and
  length (16 bits, header and TLVs, a multiple of 4), then TLVs of type (16 bits), length
  (16 bits, value without padding) and value zero-padded to 4 bytes, all little-endian, then
  the PSDU with the FCS the FCS-type TLV (0) names: 0 none (also when absent), 1 16-bit CRC,
  2 32-bit CRC. Also read: RSS (1, float dBm), channel (3: channel, page) and LQI (10).
* 215, ``LINKTYPE_IEEE802_15_4_NONASK_PHY``: the PHY's 4-byte preamble, SFD and PHR (frame
  length in its low 7 bits), then the PSDU, the MAC frame and its 2-byte FCS (IEEE
  802.15.4-2006 6.3, the PPDU; Wireshark's packet-ieee802154.c reads neither preamble nor
  SFD, and neither does zse; bytes after the PSDU are ignored).
* ZEP over UDP (:mod:`~zse.capture.zep`) in the link types of
  :data:`~zse.capture.zep.CARRIERS` (Ethernet, Linux cooked, raw IP, loopback): the channel
  and LQI go to the :class:`Link`, and the ZEP header itself (``Link.zep``); a record
  without ZEP raises :class:`~zse.capture.zep.SkippedRecord`.
* Raw IEEE 802.15.4 frames in Linux cooked records (protocol ``ETH_P_IEEE802154``, 0x00F6:
  ``tcpdump -i any`` on a Linux wpan or monitor interface) and Ethernet or Linux cooked
  records of ethertype 0x809A: the MAC frame and its 2-byte FCS, as Wireshark reads both
  (its ``wpan`` dissector, FCS format ITU-T CRC-16 by default).

A record whose link-layer header does not hold a frame (shorter than its FCS, a broken PHY,
ZEP, IP or UDP header) is one malformed frame (``Link.error``), and the capture goes on; only a
link type zse does not read and a broken TAP header raise
:class:`~zse.capture.reader.CaptureError`.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from zse.capture.reader import CaptureError, Record
from zse.capture.zep import CARRIERS, ZEP_PORT, SkippedRecord, Zep, carried, decode_zep
from zse.errors import InvalidFrame
from zse.pcap import LINKTYPE_IEEE802_15_4_NOFCS, LINKTYPE_IEEE802_15_4_WITHFCS, fcs

__all__ = [
    "LINKTYPES",
    "LINKTYPE_IEEE802_15_4_NONASK_PHY",
    "LINKTYPE_IEEE802_15_4_TAP",
    "Link",
    "mac_frame",
]

LINKTYPE_IEEE802_15_4_TAP = 283
LINKTYPE_IEEE802_15_4_NONASK_PHY = 215
#: The link types zse capture reads, with their names: 802.15.4 ones, then ZEP's carriers.
LINKTYPES = {
    LINKTYPE_IEEE802_15_4_WITHFCS: "IEEE802_15_4_WITHFCS",
    LINKTYPE_IEEE802_15_4_NOFCS: "IEEE802_15_4_NOFCS",
    LINKTYPE_IEEE802_15_4_TAP: "IEEE802_15_4_TAP",
    LINKTYPE_IEEE802_15_4_NONASK_PHY: "IEEE802_15_4_NONASK_PHY",
    **{linktype: name for linktype, (name, _) in sorted(CARRIERS.items())},
}
_READS = (
    "zse capture reads link types 195, 230, 283 and 215, and ZEP over UDP in "
    + ", ".join(map(str, sorted(CARRIERS)[:-1]))
    + f" and {max(CARRIERS)}"
)
_PHY_HEADER = 6  # preamble (4), SFD, PHR
_TLV_FCS_TYPE, _TLV_RSS, _TLV_CHANNEL, _TLV_LQI = 0, 1, 3, 10


# not frozen (its per-field setattr costs a capture ~7 %): read-only by convention
@dataclass(slots=True, unsafe_hash=True)
class Link:
    """A record's MAC frame (without FCS) and what the link layer says about it: whether
    the FCS checks (None: no FCS captured), the TAP's (or ZEP's) channel, RSS (dBm) and LQI,
    why the record holds no MAC frame (``error``: shorter than its FCS; ``frame`` is then
    empty), and the ZEP header the frame came in (None for any other link layer)."""

    frame: bytes
    fcs_ok: bool | None = None
    channel: int | None = None
    rssi: float | None = None
    lqi: int | None = None
    error: str | None = None
    zep: Zep | None = None

    def __repr__(self) -> str:
        return f"Link({len(self.frame)} bytes, fcs_ok={self.fcs_ok}, channel={self.channel})"


def _crc32(frame: bytes) -> int:
    """The 32-bit FCS of IEEE 802.15.4-2015 7.2.10 (ANSI X3.66, as Ethernet's)."""
    return zlib.crc32(frame)


def _with_fcs(data: bytes, size: int) -> tuple[bytes, bool, str | None]:
    """The frame before the ``size``-byte FCS, whether the FCS checks, and why there is no
    frame: a record shorter than its FCS is one malformed frame, not a broken capture (as
    Wireshark shows it); the records after it are read."""
    if len(data) < size:
        return b"", False, f"{len(data)}-byte frame, shorter than its {size}-byte FCS"
    frame, sent = data[:-size], int.from_bytes(data[-size:], "little")
    return frame, (fcs(frame) if size == 2 else _crc32(frame)) == sent, None


def mac_frame(record: Record, zep_port: int = ZEP_PORT) -> Link:
    """The MAC frame of ``record`` (ZEP read from or to UDP port ``zep_port``);
    :class:`~zse.capture.reader.CaptureError` names the record for a link type zse does
    not read or a malformed TAP header, :class:`~zse.capture.zep.SkippedRecord` for a
    record of a ZEP carrier that holds no 802.15.4 frame."""
    data = record.data
    if record.linktype == LINKTYPE_IEEE802_15_4_WITHFCS:
        if record.original_length > len(data):  # cut by the snapshot length: no FCS captured
            return Link(data)
        frame, ok, error = _with_fcs(data, 2)
        return Link(frame, ok, error=error)
    if record.linktype == LINKTYPE_IEEE802_15_4_NOFCS:
        return Link(data)
    if record.linktype == LINKTYPE_IEEE802_15_4_TAP:
        return _tap(record)
    if record.linktype == LINKTYPE_IEEE802_15_4_NONASK_PHY:
        return _nonask_phy(data, cut=record.original_length > len(data))
    if record.linktype in CARRIERS:
        return _carried(record, zep_port)
    raise CaptureError(
        f"record {record.number}: link type {record.linktype} is not IEEE 802.15.4 ({_READS})"
    )


def _nonask_phy(data: bytes, *, cut: bool = False) -> Link:
    if len(data) < _PHY_HEADER:
        return Link(b"", None, error=f"non-ASK PHY header truncated: {len(data)} of 6 bytes")
    length = data[5] & 0x7F  # the PHR's frame length; its top bit is reserved
    if cut and len(data) - _PHY_HEADER < length + 2:  # the snapshot length cut the FCS off
        return Link(data[_PHY_HEADER : _PHY_HEADER + length])
    if len(data) - _PHY_HEADER < length:
        return Link(
            b"",
            None,
            error=f"PHR frame length {length}, but {len(data) - _PHY_HEADER} bytes follow",
        )
    frame, ok, error = _with_fcs(data[_PHY_HEADER : _PHY_HEADER + length], 2)
    return Link(frame, ok, error=error)


def _carried(record: Record, port: int) -> Link:
    """The frame a ZEP packet carries: in CRC mode with its FCS, in LQI mode with TI CC24xx
    metadata (RSSI, FCS-OK bit), as Wireshark's wpan and wpan_cc24xx dissectors read them;
    or the raw 802.15.4 frame (with its FCS) the record holds."""
    try:
        payload, source = carried(record.linktype, record.data, port)
        if source is None:
            if record.original_length > len(record.data):  # cut: no FCS captured
                return Link(payload)
            frame, ok, error = _with_fcs(payload, 2)
            return Link(frame, ok, error=error)
        zep = decode_zep(payload, source)
    except InvalidFrame as exc:
        return Link(b"", None, error=str(exc))
    except SkippedRecord as exc:
        raise SkippedRecord(f"record {record.number}: {exc}") from None
    psdu = zep.psdu
    if zep.crc:
        frame, ok, error = _with_fcs(psdu, 2)
        return Link(frame, ok, zep.channel, None, zep.lqi, error, zep)
    if len(psdu) < 2:
        error = f"{len(psdu)}-byte frame, shorter than its 2-byte CC24xx metadata"
        return Link(b"", False, zep.channel, None, zep.lqi, error, zep)
    rssi = psdu[-2] - 256 if psdu[-2] & 0x80 else psdu[-2]
    return Link(psdu[:-2], bool(psdu[-1] & 0x80), zep.channel, float(rssi), zep.lqi, None, zep)


def _tap(record: Record) -> Link:
    data = record.data
    where = f"record {record.number}: IEEE 802.15.4 TAP header"
    if len(data) < 4:
        raise CaptureError(f"{where} truncated ({len(data)} bytes)")
    version, _reserved, length = struct.unpack_from("<BBH", data)
    if version != 0:
        raise CaptureError(f"{where}: version {version}, not 0")
    if length < 4 or length % 4 or length > len(data):
        raise CaptureError(f"{where}: length {length} does not fit the {len(data)}-byte record")
    fcs_type, channel, rssi, lqi = 0, None, None, None
    pos = 4
    while pos < length:
        if pos + 4 > length:
            raise CaptureError(f"{where}: TLV at offset {pos} truncated")
        kind, size = struct.unpack_from("<HH", data, pos)
        value = data[pos + 4 : pos + 4 + size]
        if pos + 4 + size > length:
            raise CaptureError(f"{where}: TLV {kind} at offset {pos} overruns the header")
        if kind == _TLV_FCS_TYPE and size == 1:
            fcs_type = value[0]
        elif kind == _TLV_RSS and size == 4:
            (rssi,) = struct.unpack("<f", value)
        elif kind == _TLV_CHANNEL and size == 3:
            channel = value[0] | value[1] << 8
        elif kind == _TLV_LQI and size == 1:
            lqi = value[0]
        pos += 4 + ((size + 3) & ~3)
    psdu = data[length:]
    if fcs_type == 0 or record.original_length > len(data):  # no FCS, or not captured
        return Link(psdu, None, channel, rssi, lqi)
    if fcs_type not in (1, 2):
        raise CaptureError(f"{where}: FCS type {fcs_type} is not 0, 1 or 2")
    frame, ok, error = _with_fcs(psdu, 2 * fcs_type)
    return Link(frame, ok, channel, rssi, lqi, error)
