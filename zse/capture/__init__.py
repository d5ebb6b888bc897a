"""``zse capture``: read, decrypt and decode IEEE 802.15.4 / ZigBee sniffer captures.

The pieces, lowest first: :mod:`~zse.capture.reader` (pcap and pcapng, streaming, sans-IO),
:mod:`~zse.capture.link` (link types 195, 230, 283 (the TAP) and 215 (the non-ASK PHY)),
:mod:`~zse.capture.zep` (ZEP over UDP in Ethernet, Linux cooked, raw IP and loopback records,
and raw 802.15.4 frames in Linux cooked and Ethernet records),
:mod:`~zse.capture.frames` (MAC, NWK and APS headers and commands), :mod:`~zse.capture.keys`
(the key ring and Wireshark's key table), :mod:`~zse.capture.app` (ZDO and ZCL with zse's SE
wire),
:mod:`~zse.capture.decode` (one record in, one decoded frame out) and
:mod:`~zse.capture.output` (timeline and JSON). :func:`decode_capture` strings them together::

    keys = KeyRing(read_key_file(open("han.keys")))
    with open("han.pcap", "rb") as capture:
        for frame in decode_capture(capture, keys):
            print(as_line(frame))

:class:`UnsecuredWriter` writes the frames with their NWK and APS security removed (see
docs/capture.md), so that Wireshark reads them without keys.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

from zse.capture.decode import CaptureDecoder, Decoded, Security
from zse.capture.keys import Key, KeyFileError, KeyRing, parse_key, read_key_file
from zse.capture.output import as_json, as_line, frame_fields
from zse.capture.reader import CaptureError, CaptureReader, Record, read_records
from zse.capture.zep import ZEP_PORT, SkippedRecord
from zse.pcap import PcapWriter

__all__ = [
    "CaptureDecoder",
    "CaptureError",
    "CaptureReader",
    "Decoded",
    "Key",
    "KeyFileError",
    "KeyRing",
    "Record",
    "Security",
    "SkippedRecord",
    "UnsecuredWriter",
    "as_json",
    "as_line",
    "decode_capture",
    "frame_fields",
    "parse_key",
    "read_key_file",
    "read_records",
]


def decode_capture(
    file: BinaryIO, keys: KeyRing | None = None, *, zep_port: int = ZEP_PORT
) -> Iterator[Decoded]:
    """Every frame of the capture in ``file``, decoded in order with ``keys`` (and the keys
    learned on the way), ZEP read from or to UDP port ``zep_port``; :class:`CaptureError` for
    a bad record, after the frames before it. Records that hold no 802.15.4 frame
    (:class:`SkippedRecord`: ARP, other UDP ports... in a ZEP capture) are skipped; a frame
    keeps its record's number."""
    decoder = CaptureDecoder(keys, zep_port=zep_port)
    for record in read_records(file):
        try:
            frame = decoder.decode(record)
        except SkippedRecord:
            continue
        yield frame


class UnsecuredWriter:
    """A pcap (link type 195, FCS recomputed) of the frames as decoded: a frame whose
    secured layers were decrypted is written with its security bits cleared, auxiliary
    headers and MICs removed and payloads in the clear; any other frame as captured."""

    def __init__(self, target: str | os.PathLike[str] | BinaryIO) -> None:
        self._pcap = PcapWriter(target)

    def write(self, frame: Decoded) -> None:
        """Append ``frame``."""
        data = frame.unsecured if frame.unsecured is not None else frame.link.frame
        try:
            self._pcap.write(data, frame.record.time_ns / 1e9)
        except (ValueError, OverflowError) as exc:
            raise CaptureError(f"record {frame.record.number}: cannot be written: {exc}") from None

    def close(self) -> None:
        """Flush and close."""
        self._pcap.close()
