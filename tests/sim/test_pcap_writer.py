"""zse.pcap: the classic pcap format and the 802.15.4 FCS, checked by tshark."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zse.pcap import LINKTYPE_IEEE802_15_4_NOFCS, PcapWriter, fcs

# MAC data frame (intra-PAN, short addresses) + ZigBee NWK + APS + ZCL Read Attributes.
MAC = struct.pack("<HBHHH", 0x8841, 7, 0x1A62, 0x0000, 0x1234)
NWK = struct.pack("<HHHBB", 0x0008, 0x0000, 0x1234, 30, 1)
APS = struct.pack("<BBHHBB", 0x00, 1, 0x0000, 0x0104, 1, 5)
ZCL = bytes([0x00, 0x11, 0x00, 0x04, 0x00])
DATA_FRAME = MAC + NWK + APS + ZCL
BEACON_REQUEST = bytes([0x03, 0x08, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x07])


def test_fcs_check_value() -> None:
    # CRC-16/KERMIT catalogue check value (tshark's verdict below is the real oracle).
    assert fcs(b"123456789") == 0x2189
    assert fcs(b"") == 0


def test_global_and_record_headers() -> None:
    buf = io.BytesIO()
    writer = PcapWriter(buf)
    writer.write(BEACON_REQUEST, timestamp=2.25)
    raw = buf.getvalue()
    magic, major, minor, zone, sigfigs, snaplen, linktype = struct.unpack_from("<IHHiIII", raw)
    assert (magic, major, minor, zone, sigfigs, snaplen, linktype) == (
        0xA1B2C3D4,
        2,
        4,
        0,
        0,
        65535,
        195,
    )
    sec, usec, incl, orig = struct.unpack_from("<IIII", raw, 24)
    assert (sec, usec, incl, orig) == (2, 250000, len(BEACON_REQUEST) + 2, len(BEACON_REQUEST) + 2)
    assert raw[40:] == BEACON_REQUEST + fcs(BEACON_REQUEST).to_bytes(2, "little")
    assert writer.frames == 1


def test_nofcs_linktype_writes_frames_verbatim() -> None:
    buf = io.BytesIO()
    PcapWriter(buf, linktype=LINKTYPE_IEEE802_15_4_NOFCS).write(BEACON_REQUEST, 0.0)
    assert struct.unpack_from("<I", buf.getvalue(), 20)[0] == 230
    assert buf.getvalue()[40:] == BEACON_REQUEST


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="link type"):
        PcapWriter(io.BytesIO(), linktype=1)
    with pytest.raises(ValueError, match="timestamp"):
        PcapWriter(io.BytesIO()).write(BEACON_REQUEST, -1.0)


@pytest.mark.oracle
def test_tshark_accepts_fcs_and_dissects(
    tmp_path: Path,
    tshark_json: Callable[[Path], list[dict[str, Any]]],
    tshark_malformed: Callable[[Path], str],
) -> None:
    path = tmp_path / "ok.pcap"
    with PcapWriter(path) as writer:
        writer.write(DATA_FRAME, timestamp=1.5)
        writer.write(BEACON_REQUEST, timestamp=2.0)
    packets = tshark_json(path)
    assert len(packets) == 2
    for layers in packets:
        assert layers["wpan"]["wpan.fcs_ok"] == "1"
    assert packets[0]["frame"]["frame.protocols"] == "wpan:zbee_nwk:zbee_aps:zbee_zcl"
    assert packets[0]["frame"]["frame.time_relative"] == "0.000000000"
    assert packets[1]["frame"]["frame.time_relative"] == "0.500000000"
    assert packets[0]["zbee_zcl"]["zbee_zcl.cmd.tsn"] == "17"
    assert tshark_malformed(path) == ""


@pytest.mark.oracle
def test_tshark_flags_a_corrupted_fcs(
    tmp_path: Path,
    tshark_json: Callable[[Path], list[dict[str, Any]]],
    tshark_malformed: Callable[[Path], str],
) -> None:
    # Negative control: the oracle really checks the FCS we append.
    buf = io.BytesIO()
    PcapWriter(buf).write(BEACON_REQUEST, 0.0)
    raw = bytearray(buf.getvalue())
    raw[-1] ^= 0x01
    path = tmp_path / "bad.pcap"
    path.write_bytes(bytes(raw))
    assert tshark_json(path)[0]["wpan"]["wpan.fcs_ok"] == "0"
    assert tshark_malformed(path) != ""
