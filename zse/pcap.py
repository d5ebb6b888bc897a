"""A small, standalone pcap writer for IEEE 802.15.4 captures.

Writes the classic libpcap format (magic ``0xA1B2C3D4``, version 2.4, microsecond timestamps,
little-endian) with link type 195, ``LINKTYPE_IEEE802_15_4_WITHFCS``: every record is a MAC
frame followed by its 2-byte frame check sequence. :meth:`PcapWriter.write` takes the MAC frame
*without* the FCS and appends it (IEEE 802.15.4-2006 clause 7.2.1.9: ITU-T CRC-16,
x^16 + x^12 + x^5 + 1, reflected, initial value 0, transmitted least significant byte first;
the "CRC-16/KERMIT" of CRC catalogues).

The file opens in Wireshark and ``tshark``; nothing here depends on the rest of zse::

    with PcapWriter("han.pcap") as pcap:
        pcap.write(mac_frame, timestamp=0.0)
"""

from __future__ import annotations

import binascii
import os
import struct
from types import TracebackType
from typing import BinaryIO

__all__ = [
    "LINKTYPE_IEEE802_15_4_NOFCS",
    "LINKTYPE_IEEE802_15_4_WITHFCS",
    "PcapWriter",
    "fcs",
]

LINKTYPE_IEEE802_15_4_WITHFCS = 195
LINKTYPE_IEEE802_15_4_NOFCS = 230

_SNAPLEN = 65535
_GLOBAL_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")


#: Each byte with its bits reversed: CRC-16/KERMIT is the reflected CRC-16/XMODEM, which
#: binascii computes in C (crc_hqx), so the FCS is crc_hqx of the bit-reversed bytes,
#: bit-reversed.
_REVERSED = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def fcs(frame: bytes) -> int:
    """The 802.15.4 FCS of ``frame`` (IEEE 802.15.4-2006 7.2.1.9): CRC-16/KERMIT as an int.

    On the air it is sent least significant byte first: ``fcs(f).to_bytes(2, "little")``.
    """
    crc = binascii.crc_hqx(bytes(frame).translate(_REVERSED), 0)
    return _REVERSED[crc & 0xFF] << 8 | _REVERSED[crc >> 8]  # the 16 bits reversed


class PcapWriter:
    """Writes 802.15.4 frames to a classic pcap file or binary file object.

    ``target`` is a path (opened, and closed by :meth:`close`) or an open binary file object
    (left open). ``linktype`` is 195 (frames with FCS; :meth:`write` appends it) or 230 (no FCS;
    frames are written as given).
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | BinaryIO,
        linktype: int = LINKTYPE_IEEE802_15_4_WITHFCS,
    ) -> None:
        if linktype not in (LINKTYPE_IEEE802_15_4_WITHFCS, LINKTYPE_IEEE802_15_4_NOFCS):
            raise ValueError(f"unsupported pcap link type {linktype}: use 195 or 230")
        self.linktype = linktype
        self._owned = isinstance(target, str | os.PathLike)
        self._file: BinaryIO = (
            open(target, "wb")  # noqa: SIM115 - closed by close()
            if isinstance(target, str | os.PathLike)
            else target
        )
        self._file.write(_GLOBAL_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, _SNAPLEN, linktype))
        self._file.flush()  # a file that takes no bytes (a full disk) fails here, not mid-run
        self.frames = 0

    def write(self, frame: bytes, timestamp: float) -> None:
        """Append one record: ``frame`` (a MAC frame without FCS) at ``timestamp`` seconds."""
        if not 0 <= timestamp < 2**32 - 1:  # NaN fails too; u32 seconds after rounding
            raise ValueError(
                f"pcap timestamp must be 0 .. 2^32-1 s (1970 .. 2106), not {float(timestamp):.6g}"
            )
        data = bytes(frame)
        if self.linktype == LINKTYPE_IEEE802_15_4_WITHFCS:
            data += fcs(data).to_bytes(2, "little")
        micros = round(timestamp * 1_000_000)
        sec, usec = divmod(micros, 1_000_000)
        self._file.write(_RECORD_HEADER.pack(sec, usec, len(data), len(data)))
        self._file.write(data)
        self.frames += 1

    def flush(self) -> None:
        """Flush the underlying file."""
        self._file.flush()

    def close(self) -> None:
        """Flush, and close the file if this writer opened it."""
        self._file.flush()
        if self._owned:
            self._file.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
