"""ZEP (ZigBee Encapsulation Protocol) over UDP and the IEEE 802.15.4 non-ASK PHY link type in
zse capture, against tshark on the same files.

The frames are the SE conversation of tests/capture/scapy_air.py (a Transport Key opened with
an install code's key, then NWK- and APS-secured Price, Time and ZDO frames) and the frames
zse.security secures (tests/security/test_security_tshark.py). They travel in ZEP versions 1
and 2, CRC and LQI (TI CC24xx metadata) modes, over UDP from or to port 17754, in IPv4 and
IPv6, in every carrier link type (Ethernet with and without an 802.1Q tag, Linux cooked v1
and v2, raw IP, IPv4, IPv6, BSD and OpenBSD loopback), in pcap and in one pcapng holding
several link types, interleaved with what a feed's capture also holds (ARP, TCP, DNS, IP
fragments, ZEP acks). tshark decodes and decrypts the same file: the frames with an 802.15.4
layer, their numbers, NWK/APS fields, decrypted payloads, channel, LQI, RSSI and FCS status
must be zse's.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.capture import carriers as c
from tests.capture import scapy_air as air
from tests.capture.tshark_view import (
    FIELDS,
    key_options,
    tshark_decrypted,
    tshark_fields,
    zse_row,
)
from tests.oracles import require
from tests.security.test_security_tshark import LINK_KEY, NWK_KEY, frames_to_check
from zse.capture import (
    CaptureDecoder,
    CaptureError,
    Decoded,
    Key,
    KeyRing,
    Record,
    SkippedRecord,
    decode_capture,
    read_records,
)
from zse.capture.link import LINKTYPES, Link, mac_frame
from zse.capture.zep import CARRIERS, ZEP_PORT, Zep, decode_zep, udp_payload
from zse.errors import InvalidFrame

#: The MAC frames (no FCS): the scapy conversation, then the frames zse.security secures.
MAC_FRAMES = [bytes(frame)[:-2] for frame in air.frames()] + list(frames_to_check().values())
TSHARK_KEYS = {"network": air.NETWORK_KEY, "link": air.LINK_KEY, "nwk": NWK_KEY, "lk": LINK_KEY}
#: tshark fields compared besides tshark_view.FIELDS
LINK_FIELDS = ("frame.protocols", "wpan.fcs_ok", "wpan.rssi", "zep.channel_id", "zep.lqi")


def _ring() -> KeyRing:
    """What zse is given: the install code (the network key is learned), the other keys."""
    ring = KeyRing([Key(NWK_KEY, "nwk"), Key(LINK_KEY, "lk")])
    ring.add_install_code(air.INSTALL_CODE)
    return ring


def _zep(index: int, mac: bytes) -> bytes:
    """ZEP v2 or v1 (by twos), CRC or LQI mode (alternately), channel and LQI by index."""
    crc = index % 2 == 0
    psdu = c.with_fcs(mac) if crc else c.cc24xx(mac, rssi=-30 - index, fcs_ok=True)
    channel, lqi = 11 + index % 16, 100 + index
    if index % 4 < 2:
        return c.zep_v2(psdu, crc=crc, channel=channel, lqi=lqi, sequence=1000 + index)
    return c.zep_v1(psdu, crc=crc, channel=channel, lqi=lqi)


def _datagram(linktype: int, index: int, mac: bytes) -> bytes:
    """The ZEP packet in UDP (to port 17754, or from it every third frame) in IPv4 or IPv6
    (every third frame; always IPv6 in link type 229, never in 228)."""
    inner = _zep(index, mac)
    sent = c.udp(inner, source=ZEP_PORT, destination=40000) if index % 3 == 1 else c.udp(inner)
    v6 = linktype == 229 or (linktype != 228 and index % 3 == 2)
    return c.ipv6(sent) if v6 else c.ipv4(sent)


def _records(linktype: int) -> list[bytes]:
    records = []
    for index, mac in enumerate(MAC_FRAMES):
        records.append(c.WRAP[linktype](_datagram(linktype, index, mac)))
        if index % 3 == 0:
            records += c.noise(linktype, index)
    return records


def _zse(capture: Path) -> list[Decoded]:
    with capture.open("rb") as file:
        return list(decode_capture(file, _ring()))


def _compare(capture: Path) -> list[Decoded]:
    """Assert zse and tshark see the same 802.15.4 frames (numbers, FIELDS, every
    decrypted payload, FCS status, channel, LQI where tshark shows it, RSSI); return zse's."""
    options = key_options(TSHARK_KEYS)
    rows = tshark_fields(capture, options, FIELDS + LINK_FIELDS)
    theirs = [row for row in rows if "wpan" in row["frame.protocols"]]  # wpan-nonask-phy too
    ours = _zse(capture)
    assert [frame.record.number for frame in ours] == [int(row["frame.number"]) for row in theirs]
    for frame, row in zip(ours, theirs, strict=True):
        number = frame.record.number
        assert zse_row(frame) == {name: row[name] for name in FIELDS}, number
        link = frame.link
        assert link.fcs_ok is not None, number
        assert row["wpan.fcs_ok"] == str(int(link.fcs_ok)), number
        assert row["wpan.rssi"] == ("" if link.rssi is None else f"{link.rssi:.0f}"), number
        if "zep" in row["frame.protocols"].split(":"):
            assert row["zep.channel_id"] == str(link.channel), number
            assert row["zep.lqi"] in ("", str(link.lqi)), number  # tshark: see the LQI test
    decrypted = tshark_decrypted(capture, options)
    for frame in ours:
        payloads = [s.payload for s in frame.security if s.payload is not None]
        assert payloads == decrypted[frame.record.number], frame.record.number
    return ours


def _story(frames: list[Decoded]) -> None:
    """Every frame decoded as the conversation goes: the network key learned from the
    Transport Key, every frame but the broken one decrypted."""
    assert len(frames) == len(MAC_FRAMES)
    assert frames[0].learned == [f"network key from frame {frames[0].record.number}"]
    assert [frame.error for frame in frames] == [None] * len(MAC_FRAMES)
    assert [frame.decrypted for frame in frames] == [True] * 5 + [False] + [True] * 5
    assert frames[1].command is not None
    assert frames[1].command["command"] == "publish_price"


@pytest.mark.oracle
@pytest.mark.parametrize("linktype", c.CARRIER_LINKTYPES, ids=lambda t: f"{t}-{LINKTYPES[t]}")
def test_zep_in_each_carrier_agrees_with_tshark(tmp_path: Path, linktype: int):
    capture = c.write_pcap(tmp_path / "zep.pcap", linktype, _records(linktype))
    frames = _compare(capture)
    _story(frames)
    numbers = [frame.record.number for frame in frames]
    assert numbers[:3] == [1, 2 + len(c.noise(linktype, 0)), 3 + len(c.noise(linktype, 0))]
    assert {frame.link.channel for frame in frames} == {11 + i for i in range(len(MAC_FRAMES))}
    lqi_mode = frames[1::2]
    assert all(frame.link.rssi is not None and frame.link.fcs_ok for frame in lqi_mode)


@pytest.mark.oracle
def test_one_pcapng_of_every_link_type_agrees_with_tshark(tmp_path: Path):
    """One pcapng, an interface per link type (the carriers, 215, 195), records spread over
    them in turn with the noise of each."""
    linktypes = [*c.CARRIER_LINKTYPES, c.NONASK_PHY, 195]
    records: list[tuple[int, bytes]] = []
    for index, mac in enumerate(MAC_FRAMES):
        interface = index % len(linktypes)
        linktype = linktypes[interface]
        if linktype == c.NONASK_PHY:
            records.append((interface, c.nonask_phy(c.with_fcs(mac))))
        elif linktype == 195:
            records.append((interface, c.with_fcs(mac)))
        else:
            records.append((interface, c.WRAP[linktype](_datagram(linktype, index, mac))))
            records += [(interface, record) for record in c.noise(linktype, index)]
    capture = c.write_pcapng(tmp_path / "mixed.pcapng", linktypes, records)
    frames = _compare(capture)
    _story(frames)
    assert {frame.record.linktype for frame in frames} == set(linktypes)


@pytest.mark.oracle
def test_zep_header_fields_as_tshark_reads_them(tmp_path: Path):
    """Every ZEP header field zse reads, against tshark's zep.* and wpan.* fields: both
    versions, both modes, the length's top bit ignored, the NTP time to the nanosecond (in
    either era of RFC 4330)."""
    mac = MAC_FRAMES[1]
    fcs_bad = mac + b"\x00\x00"
    packets = [
        c.zep_v1(c.with_fcs(mac), channel=11, device=0xBEEF, crc=True, lqi=201),
        c.zep_v1(c.cc24xx(mac, rssi=-42, fcs_ok=True, correlation=85), crc=False, lqi=77),
        c.zep_v2(c.with_fcs(mac), channel=26, device=1, crc=True, lqi=9, sequence=0xDEADBEEF,
                 time_ns=1_700_000_000_123_456_789),
        c.zep_v2(c.cc24xx(mac, rssi=20, fcs_ok=False, correlation=3), crc=False, lqi=250,
                 sequence=0, time_ns=1_600_000_000_000_000_001),
        c.zep_v2(c.with_fcs(mac), length=0x80 | len(mac) + 2),
        c.zep_v1(fcs_bad, crc=True),
        c.zep_v2(c.with_fcs(mac), crc=True, lqi=3)[:7] + b"\xff" + c.zep_v2(c.with_fcs(mac))[8:],
        c.zep_v2(c.with_fcs(mac), ntp=(5, 0x80000000)),  # era 1 (RFC 4330): 2036-02-07 06:28:21
    ]  # fmt: skip
    capture = c.write_pcap(
        tmp_path / "zep.pcap", 1, [c.ethernet(c.ipv4(c.udp(p)), c.ETHERTYPE_IPV4) for p in packets]
    )
    fields = ("zep.version", "zep.type", "zep.channel_id", "zep.device_id", "zep.lqi_mode",
              "zep.lqi", "zep.seqno", "zep.time", "zep.length", "wpan.fcs_ok", "wpan.rssi",
              "frame.protocols")  # fmt: skip
    command = [require("tshark"), "-r", str(capture), "-T", "json"]
    for name in fields:
        command += ["-e", name]
    env = {**os.environ, "TZ": "UTC"}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    theirs = [packet["_source"]["layers"] for packet in json.loads(out)]
    with capture.open("rb") as file:
        records = list(read_records(file))
    for record, their in zip(records, theirs, strict=True):
        zep = decode_zep(udp_payload(1, record.data))
        link = mac_frame(record)
        one = {name: values[0] for name, values in their.items()}
        assert one["zep.version"] == str(zep.version)
        assert one["zep.channel_id"] == str(zep.channel)
        assert one["zep.device_id"] == str(zep.device)
        assert one["zep.lqi_mode"] == str(int(zep.crc))  # True: CRC mode
        assert one["zep.length"] == str(len(zep.psdu))
        assert one.get("zep.lqi", str(zep.lqi)) == str(zep.lqi)
        assert link.lqi == zep.lqi
        assert link.channel == zep.channel
        assert one["wpan.fcs_ok"] == str(int(bool(link.fcs_ok)))
        assert one.get("wpan.rssi") == (None if link.rssi is None else f"{link.rssi:.0f}")
        if zep.version == 2:
            assert one["zep.seqno"] == str(zep.sequence)
            assert zep.time_ns == _utc_ns(one["zep.time"])
        else:
            assert zep.sequence is None
            assert "zep.seqno" not in one
    # what tshark shows of the LQI byte (Wireshark 4.0 packet-zep.c): version 1 in CRC
    # mode, version 2 in LQI mode; zse reads it in both modes of both versions
    shown = [
        ("zep.lqi" in their, decode_zep(udp_payload(1, r.data)))
        for r, their in zip(records, theirs, strict=True)
    ]
    assert [(lqi, zep.version, zep.crc) for lqi, zep in shown[:4]] == [
        (True, 1, True), (False, 1, False), (False, 2, True), (True, 2, False)
    ]  # fmt: skip
    assert [mac_frame(r).fcs_ok for r in records] == [True] * 3 + [False, True, False] + [True] * 2
    assert mac_frame(records[1]).rssi == -42.0
    assert mac_frame(records[3]).rssi == 20.0
    assert decode_zep(udp_payload(1, records[6].data)).crc  # any mode byte but 0 is CRC
    assert decode_zep(udp_payload(1, records[7].data)).time_ns == 2_085_978_501_500_000_000


def _utc_ns(text: str) -> int:
    """tshark's absolute time (``Nov 14, 2023 22:13:20.123456789 UTC``) in ns."""
    stamp, _, zone = text.rpartition(" ")
    assert zone == "UTC"
    whole, _, nanos = stamp.partition(".")
    moment = datetime.datetime.strptime(whole, "%b %d, %Y %H:%M:%S").replace(tzinfo=datetime.UTC)
    return int(moment.timestamp()) * 1_000_000_000 + int(nanos.ljust(9, "0"))


@pytest.mark.oracle
def test_zep_on_another_port_is_read_when_asked(tmp_path: Path):
    """``mac_frame(record, zep_port=N)`` reads ZEP on port N, as tshark with
    ``-d udp.port==N,zep``; on the default port the record holds no 802.15.4 frame."""
    mac = MAC_FRAMES[1]
    record = c.ethernet(
        c.ipv4(c.udp(c.zep_v2(c.with_fcs(mac)), destination=5000)), c.ETHERTYPE_IPV4
    )
    capture = c.write_pcap(tmp_path / "port.pcap", 1, [record])
    (row,) = tshark_fields(capture, ["-d", "udp.port==5000,zep"], ("wpan.seq_no", "wpan.fcs_ok"))
    (plain,) = tshark_fields(capture, [], ("frame.protocols",))
    assert "zep" not in plain["frame.protocols"]
    link = mac_frame(Record(1, 0, 1, record, len(record)), zep_port=5000)
    assert link.frame == mac
    assert row == {"wpan.seq_no": str(mac[2]), "wpan.fcs_ok": "1"}
    with pytest.raises(SkippedRecord, match=r"^record 1: UDP 49152 -> 5000, not ZEP's port 17754$"):
        mac_frame(Record(1, 0, 1, record, len(record)))
    with capture.open("rb") as file:  # the library's whole-file reader takes the port too
        assert [d.link.frame for d in decode_capture(file, zep_port=5000)] == [mac]
    with capture.open("rb") as file:
        assert list(decode_capture(file)) == []


#: Malformed headers: (what, record of link type 1, zse's error, what tshark does with it:
#: "no zep" it is not ZEP to tshark, "flagged" tshark dissects it with an expert warning,
#: "reads" tshark reads it where zse refuses it)
_GOOD = c.with_fcs(MAC_FRAMES[1])
MALFORMED = [
    ("ZEP header cut", c.zep_v2(_GOOD)[:20], "ZEP version 2 header truncated: 20 of 32 bytes",
     "no zep"),
    ("ZEP v1 header cut", c.zep_v1(_GOOD)[:12], "ZEP version 1 header truncated: 12 of 16 bytes",
     "no zep"),
    ("7 bytes", b"EX\x02\x01\x0b\x00\x01", "ZEP header truncated: 7 bytes", "no zep"),
    ("preamble", b"EY" + c.zep_v2(_GOOD)[2:], 'ZEP preamble 0x4559, not "EX"', "no zep"),
    ("length short", c.zep_v2(_GOOD, length=10),
     f"ZEP length 10, but {len(_GOOD)} bytes follow the 32-byte header", "no zep"),
    ("length long", c.zep_v2(_GOOD, length=120),
     f"ZEP length 120, but {len(_GOOD)} bytes follow the 32-byte header", "flagged"),
    ("ack with a frame", c.zep_ack(5) + _GOOD, f"ZEP ack of {8 + len(_GOOD)} bytes, not 8",
     "no zep"),
    ("version 3", c.zep_v2(_GOOD, version=3), "ZEP version 3, not 1 or 2", "reads"),
    ("version 0", c.zep_v2(_GOOD, version=0), "ZEP version 0, not 1 or 2", "reads"),
    ("type 5", c.zep_v2(_GOOD, kind=5), "ZEP type 5, neither data (1) nor ack (2)", "reads"),
    ("no metadata", c.zep_v2(b"\x02", crc=False),
     "1-byte frame, shorter than its 2-byte CC24xx metadata", "flagged"),
]  # fmt: skip
MALFORMED_RECORDS = [
    (what, c.ethernet(c.ipv4(c.udp(zep)), c.ETHERTYPE_IPV4), error, tshark)
    for what, zep, error, tshark in MALFORMED
] + [
    ("UDP length", c.ethernet(c.ipv4(c.udp(c.zep_v2(_GOOD), length=200)), c.ETHERTYPE_IPV4),
     f"UDP length 200 exceeds the {8 + 32 + len(_GOOD)}-byte IP payload", "flagged"),
    ("UDP length 7", c.ethernet(c.ipv4(c.udp(c.zep_v2(_GOOD), length=7)), c.ETHERTYPE_IPV4),
     "UDP length 7, less than its 8-byte header", "flagged"),
    ("IPv4 total", c.ethernet(c.ipv4(c.udp(c.zep_v2(_GOOD)), total=200), c.ETHERTYPE_IPV4),
     f"IPv4 total length 200 exceeds the {20 + 8 + 32 + len(_GOOD)} bytes captured", "flagged"),
    ("IPv4 total short", c.ethernet(c.ipv4(c.udp(c.zep_v2(_GOOD)), total=19), c.ETHERTYPE_IPV4),
     "IPv4 total length 19, less than its 20-byte header", "flagged"),
    ("IPv4 version", c.ethernet(c.ipv4(c.udp(c.zep_v2(_GOOD)), version=5), c.ETHERTYPE_IPV4),
     "IP version 5, neither 4 nor 6", "flagged"),
    ("IPv4 header length",
     c.ethernet(b"\x44" + c.ipv4(c.udp(c.zep_v2(_GOOD)))[1:], c.ETHERTYPE_IPV4),
     "IPv4 header length 16, less than 20", "flagged"),
    ("IPv6 in 0x86dd", c.ethernet(c.ipv4(c.udp(c.zep_v2(_GOOD))), c.ETHERTYPE_IPV6),
     "IPv6 header: version 4, not 6", "flagged"),
    ("Ethernet cut", bytes.fromhex("02000000000a0200000000"),
     "Ethernet header truncated: 11 of 14 bytes", "flagged"),
    ("802.1Q tag cut", bytes.fromhex("02000000000a02000000001481000005"),
     "802.1Q tag at offset 14 truncated: 2 of 4 bytes", "flagged"),
    ("UDP cut", bytes.fromhex("02000000000a0200000000140800") + c.ipv4(c.udp(b""))[:26],
     "IPv4 total length 28 exceeds the 26 bytes captured", "flagged"),
]  # fmt: skip


@pytest.mark.oracle
def test_malformed_headers_are_one_malformed_frame_each(tmp_path: Path):
    """A broken ZEP, UDP, IP or Ethernet header is one malformed frame naming what is wrong
    (the capture goes on: a good frame follows each); tshark reads it as no ZEP, flags it,
    or (versions other than 1 and 2, reserved types: zse refuses to guess) reads it."""
    good = c.ethernet(c.ipv4(c.udp(c.zep_v2(_GOOD))), c.ETHERTYPE_IPV4)
    records = [record for _, bad, _, _ in MALFORMED_RECORDS for record in (bad, good)]
    capture = c.write_pcap(tmp_path / "bad.pcap", 1, records)
    fields = ("frame.protocols", "_ws.expert.message", "_ws.malformed", "zbee_nwk.src")
    theirs = tshark_fields(capture, [], fields)
    frames = _zse(capture)
    assert len(frames) == len(records)
    for index, (what, _, error, tshark) in enumerate(MALFORMED_RECORDS):
        bad, after = frames[2 * index], frames[2 * index + 1]
        assert bad.error == error, what
        assert bad.record.number == 2 * index + 1
        assert after.error is None, what
        assert after.nwk is not None, what
        row = theirs[2 * index]
        layers = row["frame.protocols"].split(":")
        if tshark == "no zep":
            assert "zep" not in layers, what
        elif tshark == "flagged":
            assert row["_ws.expert.message"] or row["_ws.malformed"], what
        else:
            assert row["zbee_nwk.src"] == "0x0000", what
        assert theirs[2 * index + 1]["zbee_nwk.src"] == "0x0000", what


def skip_reasons(records: dict[int, tuple[int, bytes]]) -> dict[int, str]:
    """Why each record (number -> link type, bytes) is skipped: its SkippedRecord's text."""
    reasons = {}
    for number, (linktype, data) in records.items():
        with pytest.raises(SkippedRecord) as caught:
            mac_frame(Record(number, 0, linktype, data, len(data)))
        reasons[number] = str(caught.value)
    return reasons


def test_records_without_a_frame_are_skipped_and_keep_the_numbering():
    """ARP, TCP, DNS, an IPv4 or IPv6 fragment, a ZEP ack, an 802.3 frame, another loopback
    family: SkippedRecord naming the record and why; decode_capture goes past them."""
    skipped = {
        1: c.ethernet(c.ARP, c.ETHERTYPE_ARP),
        2: c.ethernet(c.ipv4(c.TCP, protocol=6), c.ETHERTYPE_IPV4),
        3: c.ethernet(c.ipv4(c.udp(c.DNS, source=53000, destination=53)), c.ETHERTYPE_IPV4),
        4: c.ethernet(c.ipv4(c.udp(c.zep_v2(_GOOD)), fragment=0x2000), c.ETHERTYPE_IPV4),
        5: c.ethernet(c.ipv4(c.udp(c.zep_v2(_GOOD)), fragment=0x0003), c.ETHERTYPE_IPV4),
        6: c.ethernet(c.ipv6(c.udp(c.zep_v2(_GOOD)), next_header=44,
                             extensions=c.fragment_header(17, offset=8)), c.ETHERTYPE_IPV6),
        7: c.ethernet(c.ipv4(c.udp(c.zep_ack(77))), c.ETHERTYPE_IPV4),
        8: c.ethernet(b"\xaa\xaa\x03" + bytes(40), 46),
        9: b"\x07\x00\x00\x00" + c.ipv4(c.udp(c.zep_v2(_GOOD))),
    }  # fmt: skip
    reasons = skip_reasons({n: (0 if n == 9 else 1, data) for n, data in skipped.items()})
    assert reasons == {
        1: "record 1: ethertype 0x0806, neither IP nor IEEE 802.15.4",
        2: "record 2: IP protocol 6, not UDP",
        3: "record 3: UDP 53000 -> 53, not ZEP's port 17754",
        4: "record 4: IPv4 fragment",
        5: "record 5: IPv4 fragment",
        6: "record 6: IPv6 fragment",
        7: "record 7: ZEP ack, sequence number 77",
        8: "record 8: ethertype 0x002e, neither IP nor IEEE 802.15.4",
        9: "record 9: address family 7, not IP",
    }
    assert isinstance(SkippedRecord("x"), CaptureError)  # callers that stop on it still may


@pytest.mark.oracle
def test_command_line_skips_records_without_a_frame_and_says_how_many(tmp_path: Path):
    """The timeline and JSON number frames as the file (and tshark) does; the summary counts
    the records skipped."""
    capture = c.write_pcap(tmp_path / "feed.pcap", 113, _records(113))
    result = subprocess.run(
        [sys.executable, "-m", "zse", "capture", str(capture), "--json",
         "--install-code", air.INSTALL_CODE, "--network-key", NWK_KEY.hex(),
         "--link-key", LINK_KEY.hex()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    rows = tshark_fields(capture, [], ("frame.number", "frame.protocols"))
    wpan = [int(row["frame.number"]) for row in rows if "wpan" in row["frame.protocols"]]
    assert [line["frame"] for line in lines] == wpan
    assert all(line["channel"] == 11 + index for index, line in enumerate(lines))
    noise = len(_records(113)) - len(MAC_FRAMES)
    assert result.stderr == (
        f"{len(MAC_FRAMES)} frames, 10 decrypted, 1 not decrypted; 1 keys learned; "
        f"{noise} records without an 802.15.4 frame skipped\n"
    )


def test_command_line_reads_zep_on_the_port_it_is_given(tmp_path: Path):
    """``--zep-port N`` reads ZEP sent to port N (tshark's ``-d udp.port==N,zep``); without
    it the same records hold no 802.15.4 frame and are skipped."""
    mac = MAC_FRAMES[1]
    records = [
        c.ethernet(c.ipv4(c.udp(c.zep_v2(c.with_fcs(mac)), destination=5000)), c.ETHERTYPE_IPV4)
    ]
    capture = c.write_pcap(tmp_path / "port.pcap", 1, records)

    def run(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "zse", "capture", str(capture), "--json", *options],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    (row,) = tshark_fields(capture, ["-d", "udp.port==5000,zep"], ("wpan.seq_no",))
    given, default = run("--zep-port", "5000"), run()
    assert given.returncode == default.returncode == 0, (given.stderr, default.stderr)
    (line,) = [json.loads(text) for text in given.stdout.splitlines()]
    assert (line["frame"], line["mac"]["seq"]) == (1, int(row["wpan.seq_no"]))
    assert default.stdout == ""
    assert default.stderr.endswith("; 1 records without an 802.15.4 frame skipped\n")
    refused = run("--zep-port", "0")
    assert refused.returncode == 2
    assert "--zep-port" in refused.stderr


#: non-ASK PHY records: (what, record, zse's error or None)
_PHY = [
    ("good", c.nonask_phy(_GOOD), None),
    ("bad FCS", c.nonask_phy(MAC_FRAMES[1] + b"\x00\x00"), None),
    ("PHR top bit", c.nonask_phy(_GOOD, length=0x80 | len(_GOOD)), None),
    ("bytes after the PSDU", c.nonask_phy(_GOOD) + b"\x01\x02\x03", None),
    ("SFD and preamble", b"abcd\x12" + c.nonask_phy(_GOOD)[5:], None),
    ("5 bytes", bytes(4) + b"\xa7", "non-ASK PHY header truncated: 5 of 6 bytes"),
    ("PHR long", c.nonask_phy(_GOOD, length=len(_GOOD) + 3),
     f"PHR frame length {len(_GOOD) + 3}, but {len(_GOOD)} bytes follow"),
    ("PHR 1", c.nonask_phy(b"\x41"), "1-byte frame, shorter than its 2-byte FCS"),
]  # fmt: skip


@pytest.mark.oracle
def test_nonask_phy_agrees_with_tshark(tmp_path: Path):
    """Link type 215: the PHR's low 7 bits give the PSDU (MAC frame and FCS); preamble, SFD
    and bytes after the PSDU are not read, as in tshark; a header cut short or a PHR longer
    than the record is one malformed frame (tshark: malformed)."""
    capture = c.write_pcap(tmp_path / "phy.pcap", 215, [record for _, record, _ in _PHY])
    fields = ("wpan-nonask-phy.frame_length", "wpan.fcs_ok", "wpan.seq_no", "zbee_nwk.src",
              "_ws.malformed", "_ws.expert.message")  # fmt: skip
    theirs = tshark_fields(capture, [], fields)
    frames = _zse(capture)
    for (what, _, error), frame, row in zip(_PHY, frames, theirs, strict=True):
        assert frame.error == error, what
        if error is None:
            assert row["wpan.fcs_ok"] == str(int(bool(frame.link.fcs_ok))), what
            assert frame.mac is not None
            assert row["wpan.seq_no"] == str(frame.mac.seq), what
            assert row["zbee_nwk.src"] == ("0x0000" if frame.link.fcs_ok else ""), what
        else:
            assert row["_ws.malformed"] or row["_ws.expert.message"], what
    assert [f.link.fcs_ok for f in frames[:5]] == [True, False, True, True, True]


def test_link_types_not_read_are_refused_naming_what_is_read():
    data = bytes(40)
    with pytest.raises(CaptureError) as caught:
        mac_frame(Record(3, 0, 105, data, len(data)))
    assert not isinstance(caught.value, SkippedRecord)
    assert str(caught.value) == (
        "record 3: link type 105 is not IEEE 802.15.4 (zse capture reads link types 195, 230, "
        "283 and 215, and ZEP over UDP in 0, 1, 101, 108, 113, 228, 229 and 276)"
    )
    assert sorted(CARRIERS) == [0, 1, 101, 108, 113, 228, 229, 276]
    assert repr(decode_zep(c.zep_v2(_GOOD))) == f"Zep(v2, channel=15, {len(_GOOD)} bytes)"


# -- garbage ---------------------------------------------------------------------------------

#: real records of every carrier and of link type 215, to be cut and flipped
REAL = [(t, r) for t in c.CARRIER_LINKTYPES for r in _records(t)[:6]] + [
    (215, record) for _, record, _ in _PHY
]
KEYS = _ring()


def _garbled(base: tuple[int, bytes], position: int, byte: int, cut: int) -> tuple[int, bytes]:
    linktype, data = base
    data = data[:position] + bytes((byte,)) + data[position + 1 :]
    return linktype, data[: len(data) - cut]


RECORDS = st.builds(
    _garbled, st.sampled_from(REAL), st.integers(0, 120), st.integers(0, 255), st.integers(0, 60)
) | st.tuples(st.sampled_from([*c.CARRIER_LINKTYPES, 215]), st.binary(max_size=120))


@settings(max_examples=600, deadline=None)
@given(record=RECORDS)
def test_carriers_meet_garbage(record: tuple[int, bytes]):
    """Real ZEP records with a byte changed or cut short, and random bytes, in every carrier
    and in link type 215: a Link (a malformed one with its error and no frame) or a
    SkippedRecord, never another exception; the decoder keeps going likewise."""
    survives_garbage(*record)


def survives_garbage(linktype: int, data: bytes) -> None:
    """Assert the record ``data`` of ``linktype`` gives a Link (a malformed one with its
    error and no frame) or a SkippedRecord naming it, and a decoded frame."""
    try:
        link = mac_frame(Record(1, 0, linktype, data, len(data)))
    except SkippedRecord as exc:
        skipped = str(exc)
    else:
        skipped = ""
    if skipped:
        assert skipped.startswith("record 1: ")
        return
    assert isinstance(link, Link)
    if link.error is not None:
        assert link.frame == b""
        assert "\n" not in link.error
    decoded = CaptureDecoder(KEYS).decode(Record(1, 0, linktype, data, len(data)))
    assert decoded.error is None or "\n" not in decoded.error


@settings(max_examples=500, deadline=None)
@given(
    data=st.binary(max_size=80)
    | st.builds(
        lambda d, n: d[:n],
        st.sampled_from([c.zep_v1(_GOOD), c.zep_v2(_GOOD), c.zep_ack(1)]),
        st.integers(0, 80),
    ),
    linktype=st.sampled_from(sorted(CARRIERS)),
)  # fmt: skip
def test_header_parsers_meet_garbage(data: bytes, linktype: int):
    """decode_zep and udp_payload raise InvalidFrame or SkippedRecord only."""
    with contextlib.suppress(InvalidFrame, SkippedRecord):
        assert isinstance(decode_zep(data), Zep)
    with contextlib.suppress(InvalidFrame, SkippedRecord):
        assert isinstance(udp_payload(linktype, data), bytes)
