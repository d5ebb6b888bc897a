"""The IEEE 802.15.4 TAP link type (LINKTYPE 283) with a whole 32-bit FCS (FCS type TLV 2,
IEEE 802.15.4-2015 7.2.10): zse's reader and ``zse capture`` agree with tshark, record by
record, on which FCS checks."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.capture.tshark_view import tshark_fields
from zse.capture import read_records
from zse.capture.link import mac_frame

# Beacon Request (IEEE 802.15.4-2006 7.3.7): frame control 0x0803, sequence 0x2A, broadcast
BEACON_REQUEST = bytes.fromhex("03082affffffff07")
# Data Request (0x04) from short address 0x1234 to the coordinator on PAN 0x1A2C
DATA_REQUEST = bytes.fromhex("6388072c1a00003412" + "04")


def _crc32(frame: bytes) -> int:
    """The 32-bit FCS written independently of zse: CRC-32 of ANSI X3.66 (as Ethernet's)."""
    return zlib.crc32(frame) & 0xFFFFFFFF


def _tap(psdu: bytes, *, channel: int = 20) -> bytes:
    """A TAP record (TAP 1.1: version 0, length, TLVs padded to 4) with FCS type 2 (CRC32)."""
    tlvs = struct.pack("<HHB3x", 0, 1, 2)  # FCS type: 32-bit
    tlvs += struct.pack("<HHHBx", 3, 3, channel, 0)  # channel, page 0
    return struct.pack("<BBH", 0, 0, 4 + len(tlvs)) + tlvs + psdu


#: (MAC frame, its trailer in the record, whether that trailer is its 32-bit FCS)
RECORDS = [
    (BEACON_REQUEST, _crc32(BEACON_REQUEST).to_bytes(4, "little"), True),
    (BEACON_REQUEST, (_crc32(BEACON_REQUEST) ^ 0x80000000).to_bytes(4, "little"), False),
    (DATA_REQUEST, _crc32(DATA_REQUEST).to_bytes(4, "little"), True),
    (DATA_REQUEST, (_crc32(DATA_REQUEST) ^ 0x00010000).to_bytes(4, "little"), False),
]


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 283)
    for i, (frame, trailer, _) in enumerate(RECORDS):
        data = _tap(frame + trailer)
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(data), len(data)) + data
    path = tmp_path / "tap-fcs32.pcap"
    path.write_bytes(out)
    return path


def test_zse_reads_the_32_bit_fcs(capture: Path) -> None:
    with capture.open("rb") as file:
        links = [mac_frame(record) for record in read_records(file)]
    assert [link.frame for link in links] == [frame for frame, _, _ in RECORDS]
    assert [link.fcs_ok for link in links] == [ok for _, _, ok in RECORDS]
    assert {link.channel for link in links} == {20}
    assert all(link.error is None for link in links)


def test_zse_capture_shows_the_bad_fcs(capture: Path) -> None:
    def run(*args: str) -> list[str]:
        result = subprocess.run(
            [sys.executable, "-m", "zse", "capture", str(capture), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return result.stdout.splitlines()

    frames = [json.loads(line) for line in run("--json")]
    assert [f["fcs_ok"] for f in frames] == [ok for _, _, ok in RECORDS]
    assert [f["length"] for f in frames] == [len(frame) for frame, _, _ in RECORDS]
    timeline = run()
    assert ["BAD FCS" in line for line in timeline] == [not ok for _, _, ok in RECORDS]


@pytest.mark.oracle
def test_tshark_agrees_on_the_32_bit_fcs(capture: Path) -> None:
    seen = tshark_fields(
        capture,
        (),
        ("wpan-tap.fcs_type", "wpan.fcs32", "wpan.fcs_ok", "wpan.cmd", "_ws.malformed"),
    )
    assert [row["wpan-tap.fcs_type"] for row in seen] == ["2"] * len(RECORDS)
    assert [row["wpan.fcs32"] for row in seen] == [
        f"0x{int.from_bytes(trailer[-4:], 'little'):08x}" for _, trailer, _ in RECORDS
    ]
    assert [row["wpan.fcs_ok"] for row in seen] == ["1" if ok else "0" for _, _, ok in RECORDS]
    assert [row["wpan.cmd"] for row in seen] == ["0x07", "0x07", "0x04", "0x04"]
    assert all(row["_ws.malformed"] == "" for row in seen)
    with capture.open("rb") as file:  # record by record, zse says what tshark says
        ours = ["1" if mac_frame(record).fcs_ok else "0" for record in read_records(file)]
    assert ours == [row["wpan.fcs_ok"] for row in seen]
