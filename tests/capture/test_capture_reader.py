"""The capture reader (#15.3): pcap in both byte orders and both timestamp resolutions, pcapng
(SHB, IDB with if_tsresol, EPB, SPB, obsolete Packet Block, several sections, both byte orders),
the IEEE 802.15.4 TAP link type; files written by Wireshark's editcap and read back by tshark
as the oracles; streaming (any chunking gives the same records); and every bad file giving
one CaptureError that names the record or block."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from tests.capture.tshark_view import tshark_fields
from tests.oracles import require
from zse.capture import CaptureError, CaptureReader, read_records
from zse.capture.link import mac_frame
from zse.pcap import PcapWriter, fcs

#: three MAC frames: a beacon request, a data frame, an ack
FRAMES = [
    bytes.fromhex("0308c2ffffffff07"),
    bytes.fromhex("4188056266341200000812341200001e0501020304"),
    bytes.fromhex("020005"),
]
TIMES_NS = [1_700_000_000_000_000_000, 1_700_000_000_250_000_000, 1_700_000_001_000_001_000]


def _pcap(path: Path) -> Path:
    with PcapWriter(path) as pcap:
        for frame, time_ns in zip(FRAMES, TIMES_NS, strict=True):
            pcap.write(frame, time_ns / 1e9)
    return path


def _records(path: Path) -> list[tuple[int, bytes]]:
    with path.open("rb") as file:
        return [(r.time_ns, mac_frame(r).frame) for r in read_records(file)]


def _editcap(source: Path, target: Path, file_format: str) -> Path:
    subprocess.run(
        [require("tshark").replace("tshark", "editcap"), "-F", file_format, source, target],
        check=True,
        capture_output=True,
    )
    return target


def test_classic_pcap_microseconds(tmp_path: Path):
    assert _records(_pcap(tmp_path / "a.pcap")) == list(zip(TIMES_NS, FRAMES, strict=True))


@pytest.mark.oracle
@pytest.mark.parametrize("file_format", ["pcapng", "nsecpcap"])
def test_files_written_by_editcap(tmp_path: Path, file_format: str):
    converted = _editcap(_pcap(tmp_path / "a.pcap"), tmp_path / "b", file_format)
    assert _records(converted) == list(zip(TIMES_NS, FRAMES, strict=True))


def _be_pcap(nanos: bool) -> bytes:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = struct.pack(">IHHiIII", magic, 2, 4, 0, 0, 65535, 195)
    for frame, time_ns in zip(FRAMES, TIMES_NS, strict=True):
        data = frame + fcs(frame).to_bytes(2, "little")
        seconds, rest = divmod(time_ns, 1_000_000_000)
        fraction = rest if nanos else rest // 1000
        out += struct.pack(">IIII", seconds, fraction, len(data), len(data)) + data
    return out


def _block(endian: str, kind: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(endian + "II", kind, length) + body + struct.pack(endian + "I", length)


def _pcapng(endian: str) -> bytes:
    """Two sections: one with a nanosecond interface (EPB, obsolete Packet Block), one with
    the default microsecond resolution and Simple Packet Blocks (no timestamp)."""
    shb = _block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    option = struct.pack(endian + "HH", 9, 1) + b"\x09\x00\x00\x00" + b"\x00" * 4
    idb_ns = _block(endian, 1, struct.pack(endian + "HHI", 195, 0, 0) + option)
    out = shb + idb_ns
    for index, (frame, time_ns) in enumerate(zip(FRAMES[:2], TIMES_NS[:2], strict=True)):
        data = frame + fcs(frame).to_bytes(2, "little")
        high, low = time_ns >> 32, time_ns & 0xFFFFFFFF
        if index == 0:
            body = struct.pack(endian + "IIIII", 0, high, low, len(data), len(data)) + data
            out += _block(endian, 6, body)
        else:
            body = struct.pack(endian + "HHIIII", 0, 0, high, low, len(data), len(data)) + data
            out += _block(endian, 2, body)
    out += _block(endian, 5, struct.pack(endian + "III", 0, 0, 0))  # statistics: skipped
    idb_us = _block(endian, 1, struct.pack(endian + "HHI", 230, 0, 0))
    out += shb + idb_us + _block(endian, 3, struct.pack(endian + "I", 3) + FRAMES[2])
    return out


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("be-us.pcap", _be_pcap(nanos=False)),
        ("be-ns.pcap", _be_pcap(nanos=True)),
        ("le.pcapng", _pcapng("<")),
        ("be.pcapng", _pcapng(">")),
    ],
)
def test_byte_orders_and_pcapng_blocks(tmp_path: Path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    records = _records(path)
    assert [frame for _, frame in records] == FRAMES
    if name.endswith("pcapng"):
        assert [t for t, _ in records] == [*TIMES_NS[:2], 0]  # an SPB has no timestamp
    else:
        assert [t for t, _ in records] == TIMES_NS
    # tshark reads the same file the same way
    seen = tshark_fields(path, (), ("frame.number", "wpan.seq_no"))
    assert [row["wpan.seq_no"] for row in seen] == [str(frame[2]) for frame in FRAMES]


def _tap_record(frame: bytes, fcs_type: int) -> bytes:
    tlvs = struct.pack("<HHB3x", 0, 1, fcs_type)  # FCS type
    tlvs += struct.pack("<HHf", 1, 4, -61.5)  # RSS
    tlvs += struct.pack("<HHHBx", 3, 3, 15, 0)  # channel 15, page 0
    tlvs += struct.pack("<HHB3x", 10, 1, 200)  # LQI
    tlvs += struct.pack("<HH", 99, 0)  # an unknown, empty TLV
    header = struct.pack("<BBH", 0, 0, 4 + len(tlvs)) + tlvs
    trailer = fcs(frame).to_bytes(2, "little") if fcs_type == 1 else b""
    return header + frame + trailer


@pytest.mark.oracle
def test_ieee802154_tap_link_type(tmp_path: Path):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 283)
    for index, frame in enumerate(FRAMES):
        data = _tap_record(frame, fcs_type=1 if index != 1 else 0)
        out += struct.pack("<IIII", 1_700_000_000 + index, 0, len(data), len(data)) + data
    path = tmp_path / "tap.pcap"
    path.write_bytes(out)
    with path.open("rb") as file:
        links = [mac_frame(record) for record in read_records(file)]
    assert [link.frame for link in links] == FRAMES
    assert [link.fcs_ok for link in links] == [True, None, True]
    assert {(link.channel, link.rssi, link.lqi) for link in links} == {(15, -61.5, 200)}
    seen = tshark_fields(
        path, (), ("wpan.seq_no", "wpan-tap.ch_num", "wpan-tap.rss", "wpan-tap.fcs_type")
    )
    assert [row["wpan.seq_no"] for row in seen] == [str(frame[2]) for frame in FRAMES]
    assert {row["wpan-tap.ch_num"] for row in seen} == {"15"}
    assert [row["wpan-tap.fcs_type"] for row in seen] == ["1", "0", "1"]


def test_any_chunking_gives_the_same_records(tmp_path: Path):
    content = _pcapng(">") + b""
    whole = CaptureReader().feed(content)
    reader = CaptureReader()
    trickled = [
        record for byte in range(len(content)) for record in reader.feed(content[byte : byte + 1])
    ]
    reader.close()
    assert trickled == whole
    assert len(whole) == 3


def _read_all(content: bytes) -> None:
    reader = CaptureReader()
    for record in reader.feed(content):
        mac_frame(record)
    reader.close()


def _error(content: bytes) -> str:
    with pytest.raises(CaptureError) as caught:
        _read_all(content)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_bad_files_name_the_record(tmp_path: Path):
    good = _pcap(tmp_path / "a.pcap").read_bytes()
    assert _error(b"") == "empty file: no capture"
    assert _error(b"root:x:0:0\n") == (
        "not a pcap or pcapng capture: the file starts with 726f6f74"
    )
    assert _error(good[:30]) == (
        "record 1 at byte offset 24 truncated: the file ends 6 bytes into it"
    )
    for cut in range(4, 24):  # a pcap's header cut short: its magic is right, the rest missing
        assert _error(good[:cut]) == f"capture header truncated: the file ends {cut} bytes into it"
    assert _error(good[:-3]).startswith("record 3 at byte offset")
    wifi = good[:20] + struct.pack("<I", 105) + good[24:]  # 802.11
    assert _error(wifi) == (
        "record 1: link type 105 is not IEEE 802.15.4 (zse capture reads link types 195, 230, "
        "283 and 215, and ZEP over UDP in 0, 1, 101, 108, 113, 228, 229 and 276)"
    )
    huge = good[:24] + struct.pack("<IIII", 0, 0, 1 << 30, 1 << 30)
    assert "record 1 at byte offset 24: captured length 1073741824 is not plausible" in _error(huge)
    block = _pcapng("<")
    assert _error(block[:-1]).startswith("block 8 at byte offset")
    broken_trailer = block[:24] + b"\xff" + block[25:]
    assert "trailing length" in _error(broken_trailer)


def test_truncation_anywhere_is_one_capture_error():
    """Cut anywhere but between two blocks, a file gives one CaptureError; cut between two
    blocks it is a shorter, valid capture."""
    content = _pcapng("<")
    boundaries, offset = {}, 0
    while offset < len(content):
        boundaries[offset] = len(CaptureReader().feed(content[:offset]))
        offset += struct.unpack_from("<I", content, offset + 4)[0]
    for size in range(1, len(content)):
        reader = CaptureReader()
        if size in boundaries:
            assert len(reader.feed(content[:size])) == boundaries[size]
            reader.close()
            continue
        with pytest.raises(CaptureError):
            _read_all(content[:size])
