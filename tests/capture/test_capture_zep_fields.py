"""ZEP's own fields in zse capture's output (the sniffer's device id, the sequence number, the
time of reception), against tshark's zep.* fields on the same file.

A user comparing two sniffers, or looking for frames a sniffer dropped, reads them from the
``"zep"`` object of ``--json``; the timeline says only where a sequence number does not follow
the last one from the same sniffer. The NTP timestamp is read as Wireshark reads it (RFC 4330
eras: seconds with the top bit clear are after 2036; all zeros is "not known").
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.capture import carriers as c
from tests.capture.test_capture_zep import MAC_FRAMES, _utc_ns
from tests.oracles import require
from zse.capture import CaptureDecoder, Record, as_json, as_line
from zse.capture import decode as decode_module
from zse.capture.link import mac_frame
from zse.capture.output import iso_time
from zse.capture.zep import decode_zep

_GOOD = c.with_fcs(MAC_FRAMES[1])
_NTP_2023 = (1_700_000_000 + c.NTP_EPOCH, 0x20000000)  # 2023-11-14 22:13:20.125
#: (ZEP packet, what zse shows: ZEP fields in JSON, the timeline's ZEP part or "")
PACKETS = [
    (c.zep_v1(_GOOD, device=0xBEEF),
     {"version": 1, "device_id": 0xBEEF, "mode": "crc"}, ""),
    (c.zep_v2(_GOOD, device=1, sequence=1000, ntp=_NTP_2023),
     {"version": 2, "device_id": 1, "mode": "crc", "sequence": 1000,
      "time": "2023-11-14T22:13:20.125000000Z"}, ""),
    # era 1: seconds with the top bit clear count from 2036-02-07 06:28:16
    (c.zep_v2(_GOOD, device=1, sequence=1001, ntp=(5, 0x80000000)),
     {"version": 2, "device_id": 1, "mode": "crc", "sequence": 1001,
      "time": "2036-02-07T06:28:21.500000000Z"}, ""),
    # two packets lost; no timestamp (zero: "not known")
    (c.zep_v2(_GOOD, device=1, sequence=1004, ntp=(0, 0)),
     {"version": 2, "device_id": 1, "mode": "crc", "sequence": 1004,
      "previous_sequence": 1001}, "ZEP #1004 after #1001"),
    # another sniffer: its own sequence; the first second of era 0's second half
    (c.zep_v2(_GOOD, device=2, sequence=0xFFFFFFFF, ntp=(0x80000000, 0)),
     {"version": 2, "device_id": 2, "mode": "crc", "sequence": 0xFFFFFFFF,
      "time": "1968-01-20T03:14:08.000000000Z"}, ""),
    # the counter wraps: 0 follows 2^32 - 1; a fraction of 5 is 1.16 ns, rounded down
    (c.zep_v2(_GOOD, device=2, sequence=0, ntp=(_NTP_2023[0], 5)),
     {"version": 2, "device_id": 2, "mode": "crc", "sequence": 0,
      "time": "2023-11-14T22:13:20.000000001Z"}, ""),
    # the same packet again (a repeat is no follow-on either)
    (c.zep_v2(_GOOD, device=1, sequence=1004, ntp=(0xFFFFFFFF, 0xFFFFFFFF)),
     {"version": 2, "device_id": 1, "mode": "crc", "sequence": 1004,
      "previous_sequence": 1004, "time": "2036-02-07T06:28:15.999999999Z"},
     "ZEP #1004 after #1004"),
    (c.zep_v2(c.cc24xx(MAC_FRAMES[1], rssi=-40, fcs_ok=True), crc=False, device=1,
              sequence=1005, ntp=(0x7FFFFFFF, 0xFFFFFFFF)),
     {"version": 2, "device_id": 1, "mode": "lqi", "sequence": 1005,
      "time": "2104-02-26T09:42:23.999999999Z"}, ""),
]  # fmt: skip


def _capture(tmp_path: Path) -> Path:
    records = [c.ethernet(c.ipv4(c.udp(packet)), c.ETHERTYPE_IPV4) for packet, _, _ in PACKETS]
    return c.write_pcap(tmp_path / "zep.pcap", 1, records)


def _zse(capture: Path, *options: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "zse", "capture", str(capture), *options],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.splitlines()


def _iso(tshark_time: str) -> str:
    """tshark's absolute time, written ISO 8601 here (not by zse's code)."""
    ns = _utc_ns(tshark_time)
    moment = datetime.datetime.fromtimestamp(ns // 10**9, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}Z"


@pytest.mark.oracle
def test_zep_fields_in_json_and_timeline_agree_with_tshark(tmp_path: Path):
    """``--json`` has each frame's ZEP header (version, device id, mode, sequence number,
    the sniffer's time in ISO 8601 to the nanosecond and in ns): tshark's zep.version,
    zep.device_id, zep.seqno and zep.time, the time rounded down from the NTP fraction as
    tshark's; a zero timestamp (tshark: 1970-01-01) is not shown. The timeline shows ZEP
    only where a sniffer's sequence number does not follow its last one."""
    capture = _capture(tmp_path)
    fields = ("zep.version", "zep.device_id", "zep.seqno", "zep.time", "zep.lqi_mode")
    command = [require("tshark"), "-r", str(capture), "-T", "json"]
    for name in fields:
        command += ["-e", name]
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, env={**os.environ, "TZ": "UTC"}
    ).stdout
    theirs = [
        {name: values[0] for name, values in packet["_source"]["layers"].items()}
        for packet in json.loads(out)
    ]
    lines = [json.loads(line) for line in _zse(capture, "--json")]
    timeline = _zse(capture)
    assert len(lines) == len(timeline) == len(theirs) == len(PACKETS)
    for (_, expected, shown), line, text, their in zip(
        PACKETS, lines, timeline, theirs, strict=True
    ):
        zep = line["zep"]
        assert {k: v for k, v in zep.items() if k != "time_ns"} == expected
        assert str(zep["version"]) == their["zep.version"]
        assert str(zep["device_id"]) == their["zep.device_id"]
        assert zep["mode"] == ("crc" if their["zep.lqi_mode"] == "1" else "lqi")
        assert str(zep.get("sequence")) == their.get("zep.seqno", "None")
        if "time" in zep:
            assert zep["time"] == _iso(their["zep.time"])
            assert zep["time_ns"] == _utc_ns(their["zep.time"])
        elif zep["version"] == 2:
            assert their["zep.time"] == "Jan  1, 1970 00:00:00.000000000 UTC"
        assert ("ZEP #" in text) == bool(shown)
        if shown:
            assert f"  {shown} | NWK data" in text
        assert line["time_ns"] != zep.get("time_ns")  # the record keeps its capture time


def test_zep_header_and_gaps_in_the_library():
    """``Link.zep`` is the packet's header and its datagram's source (None for other link
    layers), the decoder notes a sequence number that does not follow (per source and device
    id) in ``Decoded.zep_previous``;
    frames of other link types have neither, nor a "zep" object in JSON."""
    decoder = CaptureDecoder()
    frames = []
    for number, (packet, _, _) in enumerate(PACKETS, 1):
        data = c.ethernet(c.ipv4(c.udp(packet)), c.ETHERTYPE_IPV4)
        frames.append(decoder.decode(Record(number, 0, 1, data, len(data))))
    previous = [None, None, None, 1001, None, None, 1004, None]
    assert [frame.zep_previous for frame in frames] == previous
    source = bytes((192, 168, 1, 20)) + (49152).to_bytes(2, "big")  # IP address, UDP port
    assert frames[0].link.zep == decode_zep(PACKETS[0][0], source)
    assert frames[0].link.zep.source == source
    assert frames[3].link.zep is not None
    assert frames[3].link.zep.time_ns is None
    plain = Record(1, 0, 195, _GOOD, len(_GOOD))
    assert mac_frame(plain).zep is None
    frame = decoder.decode(plain)
    assert frame.zep_previous is None
    assert "zep" not in json.loads(as_json(frame))
    assert "ZEP" not in as_line(frame)
    assert iso_time(-1) == "1969-12-31T23:59:59.999999999Z"


def _from(host: int, port: int, device: int, sequence: int) -> bytes:
    """A ZEP packet from sniffer ``device`` at 192.168.1.``host`` (or fe80::``host`` when
    ``host`` is above 255), UDP port ``port``, in an Ethernet record."""
    datagram = c.udp(c.zep_v2(_GOOD, device=device, sequence=sequence), source=port)
    if host > 255:
        return c.ethernet(c.ipv6(datagram, source=c.IPV6_SOURCE[:-2] + host.to_bytes(2)), 0x86DD)
    return c.ethernet(c.ipv4(datagram, source=bytes((192, 168, 1, host))), 0x0800)


def _previous(decoder: CaptureDecoder, records: list[bytes]) -> list[int | None]:
    frames = [decoder.decode(Record(n, 0, 1, data, len(data))) for n, data in enumerate(records, 1)]
    return [frame.zep_previous for frame in frames]


def test_sequence_numbers_are_followed_per_source_and_device_id():
    """Sniffers that share a device id (a tool's default) on other hosts, or on other UDP
    ports of one host, each count their own packets: interleaved, in order, none is a
    break; a packet one of them lost still is, and a device id of its own keeps its own
    count on one source."""
    senders = [(20, 49152), (21, 49152), (20, 49153), (0x1234, 49152)]
    records = [
        _from(host, port, 1, 100 * index + step)
        for step in range(3)
        for index, (host, port) in enumerate(senders)
    ]
    records += [_from(21, 49152, 1, 105), _from(20, 49152, 1, 3), _from(20, 49152, 2, 7)]
    records += [_from(20, 49152, 2, 8), _from(0x1234, 49152, 1, 303)]
    assert _previous(CaptureDecoder(), records) == [None] * 12 + [102, None, None, None, None]


def test_sniffers_followed_are_bounded(monkeypatch: pytest.MonkeyPatch):
    """A capture of ever new sources does not grow the table without end: past the bound
    it starts afresh (a sniffer's next packet is then no break: nothing to follow)."""
    monkeypatch.setattr(decode_module, "_ZEP_SNIFFERS", 3)
    decoder = CaptureDecoder()
    records = [_from(host, 49152, 1, 10) for host in (1, 2, 3)]
    records += [_from(1, 49152, 1, 12), _from(4, 49152, 1, 10), _from(1, 49152, 1, 14)]
    records += [_from(1, 49152, 1, 16)]
    assert _previous(decoder, records) == [None, None, None, 10, None, None, 14]
    assert len(decoder._zep_sequence) == 2  # the bound is the point
