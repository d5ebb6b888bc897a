"""A sans-IO, streaming reader of pcap and pcapng captures.

:class:`CaptureReader` is fed bytes as they come (:meth:`~CaptureReader.feed`) and hands back
every complete record; :meth:`~CaptureReader.close` says whether the file ended cleanly. It
keeps at most one unfinished block, so memory stays flat however long the capture.
:func:`read_records` drives it over a binary file.

Formats (both byte orders):

* pcap (``pcap-savefile(5)``): a 24-byte file header (magic ``0xA1B2C3D4`` for microsecond
  timestamps, ``0xA1B23C4D`` for nanoseconds; version; snapshot length; link type), then
  records of a 16-byte header (seconds, fraction, captured length, original length) and the
  captured bytes.
* pcapng (IETF draft-ietf-opsawg-pcapng): blocks of type, total length, body, total length
  again. A Section Header Block (``0x0A0D0D0A``, byte-order magic ``0x1A2B3C4D``) starts each
  section; Interface Description Blocks (1) give each interface's link type and timestamp
  resolution (option ``if_tsresol``, 9) and offset (``if_tsoffset``, 14); Enhanced (6),
  Simple (3) and the obsolete Packet (2) blocks carry packets. Other blocks are skipped.

Anything else raises :class:`CaptureError` naming the record (or block) and its byte offset.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from zse.errors import DecodeError

__all__ = ["MAX_RECORD", "CaptureError", "CaptureReader", "Record", "read_records"]

#: The largest record or block accepted; an 802.15.4 frame is at most 127 bytes, so a larger
#: length is garbage, refused before any buffering.
MAX_RECORD = 1 << 18

_PCAP_MICRO = 0xA1B2C3D4
_PCAP_NANO = 0xA1B23C4D
_PCAPNG_SHB = 0x0A0D0D0A
#: The first four bytes of a capture, either byte order.
_MAGICS = (_PCAP_MICRO, _PCAP_NANO, _PCAPNG_SHB)
_PCAPNG_BYTE_ORDER = 0x1A2B3C4D
_IDB, _PACKET_OBSOLETE, _SPB, _EPB = 1, 2, 3, 6
_OPT_TSRESOL, _OPT_TSOFFSET = 9, 14


#: a record's time must be before this (pcap holds seconds in 32 bits: 2106-02-07)
_LATEST_NS = 2**32 * 1_000_000_000


class CaptureError(DecodeError):
    """A capture file that cannot be read: not pcap/pcapng, or a truncated or malformed
    record; the message names the record and its byte offset."""


# not frozen (its per-field setattr costs a capture ~7 %): read-only by convention
@dataclass(slots=True, unsafe_hash=True)
class Record:
    """One captured packet: its number in the file (from 1), time in nanoseconds since the
    Unix epoch, link type, captured bytes and original length."""

    number: int
    time_ns: int
    linktype: int
    data: bytes
    original_length: int
    interface: int = 0

    def __repr__(self) -> str:
        return (
            f"Record(number={self.number}, time_ns={self.time_ns}, linktype={self.linktype}, "
            f"{len(self.data)} bytes)"
        )


@dataclass(slots=True)
class _Interface:
    linktype: int
    snaplen: int
    units_per_second: int = 1_000_000
    offset_s: int = 0


class CaptureReader:
    """Push parser: :meth:`feed` bytes, get complete records; :meth:`close` at end of file."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0  # file offset of self._buffer[0]
        self._format: str | None = None
        self._endian = "<"
        self._pcap_linktype = 0
        self._pcap_units = 1_000_000
        self._interfaces: list[_Interface] = []
        self._records = 0
        self._blocks = 0

    @property
    def format(self) -> str | None:
        """``"pcap"``, ``"pcapng"`` or None before the file header has been read."""
        return self._format

    def feed(self, data: bytes) -> list[Record]:
        """Add ``data`` (the next bytes of the file); return the records it completes."""
        self._buffer += data
        out: list[Record] = []
        if self._format is None and not self._start():
            return out
        parse = self._pcap_record if self._format == "pcap" else self._pcapng_block
        while True:
            record = parse()
            if record is None:
                break
            if record is not _SKIPPED:
                out.append(record)
        return out

    def close(self) -> None:
        """The file has ended: raise :class:`CaptureError` if it ends inside a header or a
        record (a truncated capture) or holds no capture header at all."""
        if self._format is None:
            if not self._buffer:
                raise CaptureError("empty file: no capture")
            if self._known_magic():
                raise CaptureError(
                    f"capture header truncated: the file ends {len(self._buffer)} bytes into it"
                )
            raise CaptureError(self._not_a_capture())
        if self._buffer:
            what = (
                f"record {self._records + 1}"
                if self._format == "pcap"
                else f"block {self._blocks + 1}"
            )
            raise CaptureError(
                f"{what} at byte offset {self._offset} truncated: the file ends "
                f"{len(self._buffer)} bytes into it"
            )

    # -- file header -----------------------------------------------------------------------

    def _known_magic(self) -> bool:
        """Whether the bytes so far begin as a pcap or pcapng file does (its magic)."""
        head = bytes(self._buffer[:4])
        return len(head) == 4 and (
            int.from_bytes(head, "little") in _MAGICS or int.from_bytes(head, "big") in _MAGICS
        )

    def _not_a_capture(self) -> str:
        head = bytes(self._buffer[:4]).hex()
        return f"not a pcap or pcapng capture: the file starts with {head or 'nothing'}"

    def _start(self) -> bool:
        buf = self._buffer
        if len(buf) < 4:
            return False
        magic_le = int.from_bytes(buf[:4], "little")
        if magic_le == _PCAPNG_SHB:
            self._format = "pcapng"
            return True
        for endian in ("<", ">"):
            (magic,) = struct.unpack_from(endian + "I", buf)
            if magic in (_PCAP_MICRO, _PCAP_NANO):
                if len(buf) < 24:
                    return False
                self._endian = endian
                self._pcap_units = 1_000_000 if magic == _PCAP_MICRO else 1_000_000_000
                major, _minor, _zone, _sigfigs, _snaplen, network = struct.unpack_from(
                    endian + "HHiIII", buf, 4
                )
                if major != 2:
                    raise CaptureError(f"pcap file header: version {major}, not 2")
                self._pcap_linktype = network & 0xFFFF  # upper bits: FCS length hints
                self._format = "pcap"
                self._consume(24)
                return True
        raise CaptureError(self._not_a_capture())

    def _consume(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._offset += size
        return data

    # -- pcap --------------------------------------------------------------------------------

    def _pcap_record(self) -> Record | None:
        buf = self._buffer
        if len(buf) < 16:
            return None
        seconds, fraction, captured, original = struct.unpack_from(self._endian + "IIII", buf)
        number = self._records + 1
        if captured > MAX_RECORD:
            raise CaptureError(
                f"record {number} at byte offset {self._offset}: captured length {captured} "
                f"is not plausible (garbage or a corrupt file)"
            )
        if fraction >= self._pcap_units:
            raise CaptureError(
                f"record {number} at byte offset {self._offset}: timestamp fraction {fraction} "
                "out of range"
            )
        if len(buf) < 16 + captured:
            return None
        self._records = number
        data = self._consume(16 + captured)[16:]
        time_ns = seconds * 1_000_000_000 + fraction * (1_000_000_000 // self._pcap_units)
        return Record(number, time_ns, self._pcap_linktype, data, original)

    # -- pcapng ------------------------------------------------------------------------------

    def _pcapng_block(self) -> Record | None:
        buf = self._buffer
        if len(buf) < 12:
            return None
        block_type = int.from_bytes(buf[:4], "little")  # the SHB type is a palindrome
        where = f"block {self._blocks + 1} at byte offset {self._offset}"
        if block_type == _PCAPNG_SHB:
            (magic,) = struct.unpack_from("<I", buf, 8)
            if magic == _PCAPNG_BYTE_ORDER:
                self._endian = "<"
            elif magic == int.from_bytes(_PCAPNG_BYTE_ORDER.to_bytes(4, "little"), "big"):
                self._endian = ">"
            else:
                raise CaptureError(f"{where}: section header with a bad byte-order magic")
        endian = self._endian
        block_type, length = struct.unpack_from(endian + "II", buf)
        if length < 12 or length % 4 or length > MAX_RECORD:
            raise CaptureError(f"{where}: block length {length} is not plausible")
        if len(buf) < length:
            return None
        (trailer,) = struct.unpack_from(endian + "I", buf, length - 4)
        if trailer != length:
            raise CaptureError(
                f"{where}: block length {length} and trailing length {trailer} differ"
            )
        self._blocks += 1
        block = self._consume(length)
        body = block[8:-4]
        return self._pcapng_body(block_type, body, where)

    def _pcapng_body(self, block_type: int, body: bytes, where: str) -> Record | None:
        endian = self._endian
        try:
            if block_type == _PCAPNG_SHB:
                major, _minor = struct.unpack_from(endian + "HH", body, 4)
                if major != 1:
                    raise CaptureError(f"{where}: pcapng version {major}, not 1")
                self._interfaces = []
                return _SKIPPED
            if block_type == _IDB:
                linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", body)
                self._interfaces.append(self._interface(linktype, snaplen, body[8:], where))
                return _SKIPPED
            if block_type == _EPB:
                iface, high, low, captured, original = struct.unpack_from(endian + "IIIII", body)
                data = body[20 : 20 + captured]
                return self._packet(iface, (high << 32) | low, data, captured, original, where)
            if block_type == _PACKET_OBSOLETE:
                iface, _drops, high, low, captured, original = struct.unpack_from(
                    endian + "HHIIII", body
                )
                data = body[20 : 20 + captured]
                return self._packet(iface, (high << 32) | low, data, captured, original, where)
            if block_type == _SPB:
                (original,) = struct.unpack_from(endian + "I", body)
                interface = self._interface_of(0, where)
                captured = min(original, len(body) - 4, interface.snaplen or MAX_RECORD)
                return self._packet(0, None, body[4 : 4 + captured], captured, original, where)
        except struct.error:
            raise CaptureError(f"{where}: block body of {len(body)} bytes truncated") from None
        return _SKIPPED

    def _interface(self, linktype: int, snaplen: int, options: bytes, where: str) -> _Interface:
        interface = _Interface(linktype, snaplen)
        for code, value in _options(options, self._endian, where):
            if code == _OPT_TSRESOL and len(value) == 1:
                exponent = value[0] & 0x7F
                if exponent > 30:
                    raise CaptureError(f"{where}: timestamp resolution 2^-/10^-{exponent}")
                base = 2 if value[0] & 0x80 else 10
                interface.units_per_second = base**exponent
            elif code == _OPT_TSOFFSET and len(value) == 8:
                (interface.offset_s,) = struct.unpack(self._endian + "q", value)
        return interface

    def _interface_of(self, index: int, where: str) -> _Interface:
        if index >= len(self._interfaces):
            raise CaptureError(
                f"{where}: packet on interface {index}, but the section describes "
                f"{len(self._interfaces)}"
            )
        return self._interfaces[index]

    def _packet(  # noqa: PLR0917 - the fields of a packet block
        self, iface: int, stamp: int | None, data: bytes, captured: int, original: int, where: str
    ) -> Record:
        interface = self._interface_of(iface, where)
        if len(data) != captured:
            raise CaptureError(f"{where}: captured length {captured} exceeds the block")
        self._records += 1
        time_ns = 0
        if stamp is not None:
            units = interface.units_per_second
            seconds, fraction = divmod(stamp, units)
            time_ns = (seconds + interface.offset_s) * 1_000_000_000
            time_ns += fraction * 1_000_000_000 // units
            if not 0 <= time_ns < _LATEST_NS:
                raise CaptureError(
                    f"{where}: record {self._records} has a timestamp of {time_ns // 10**9} s, "
                    "outside 1970-01-01 .. 2106-02-07 (what pcap can hold)"[:200]
                )
        return Record(self._records, time_ns, interface.linktype, data, original, iface)


def _options(data: bytes, endian: str, where: str) -> Iterator[tuple[int, bytes]]:
    """The (code, value) options of a pcapng block, up to opt_endofopt."""
    pos = 0
    while pos + 4 <= len(data):
        code, length = struct.unpack_from(endian + "HH", data, pos)
        if code == 0:
            return
        pos += 4
        if pos + length > len(data):
            raise CaptureError(f"{where}: option {code} of {length} bytes overruns the block")
        yield code, data[pos : pos + length]
        pos += (length + 3) & ~3


#: A block parsed that holds no packet (stands in for a Record in the parse loop).
_SKIPPED: Record = Record(0, 0, 0, b"", 0)

_CHUNK = 1 << 16


def read_records(file: BinaryIO, chunk: int = _CHUNK) -> Iterator[Record]:
    """Every record of the capture in ``file``, read ``chunk`` bytes at a time; raises
    :class:`CaptureError` (after the good records before it) for a bad or truncated one."""
    reader = CaptureReader()
    while data := file.read(chunk):
        yield from reader.feed(data)
    reader.close()
