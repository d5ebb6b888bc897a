"""Raw IEEE 802.15.4 frames in Linux cooked and Ethernet records, against tshark.

``tcpdump -i any`` on a Linux machine with a native 802.15.4 interface (a wpan node or its
monitor: the linux-wpan tools, an ATUSB, an nRF52840 with the kernel driver) writes Linux
cooked records (link types 113 and 276) of protocol ETH_P_IEEE802154 (0x00F6) that hold the
MAC frame itself. Wireshark 4.0 hands them (sll.ltype 0x00F6) and Ethernet or cooked records
of ethertype 0x809A (its wpan.802154_ethertype preference) to its ``wpan`` dissector, which
takes the last two bytes for the FCS (wpan.fcs_format, ITU-T CRC-16 by default) whatever the
ARPHRD type says; tshark decodes the same files here and zse must see what it sees.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.capture import carriers as c
from tests.capture.test_capture_zep import (
    MAC_FRAMES,
    _compare,
    _datagram,
    _garbled,
    _story,
    _zse,
    skip_reasons,
    survives_garbage,
)
from tests.capture.tshark_view import tshark_fields
from zse.capture import Record, SkippedRecord
from zse.capture.link import mac_frame
from zse.capture.zep import carried, udp_payload
from zse.errors import InvalidFrame

COOKED = (113, 276)


def _cooked(linktype: int, packet: bytes, protocol: int, hatype: int) -> bytes:
    wrap = c.sll if linktype == 113 else c.sll2
    return wrap(packet, protocol, hatype=hatype)


def _raw(linktype: int, index: int, mac: bytes) -> bytes:
    """The frame and its FCS as Linux writes it (protocol 0x00F6, from the node or the
    monitor interface by turns; ethertype 0x809A every third frame) or, in Ethernet,
    behind ethertype 0x809A (802.1Q-tagged every other frame)."""
    psdu = c.with_fcs(mac)
    if linktype == 1:
        return c.ethernet(psdu, c.ETHERTYPE_IEEE802154, vlan=None if index % 2 else 5)
    if index % 3 == 2:
        return _cooked(linktype, psdu, c.ETHERTYPE_IEEE802154, 1)
    hatype = c.ARPHRD_IEEE802154 if index % 2 else c.ARPHRD_IEEE802154_MONITOR
    return _cooked(linktype, psdu, c.ETH_P_IEEE802154, hatype)


def _records(linktype: int) -> list[bytes]:
    """The conversation, raw frames and (every fourth frame) ZEP packets, with a ZEP
    feed's noise: the cooked capture of a host that has both a wpan interface and a ZEP
    sniffer on the LAN."""
    records = []
    for index, mac in enumerate(MAC_FRAMES):
        if index % 4 == 3:
            records.append(c.WRAP[linktype](_datagram(linktype, index, mac)))
        else:
            records.append(_raw(linktype, index, mac))
        if index % 3 == 0:
            records += c.noise(linktype, index)
    return records


@pytest.mark.oracle
@pytest.mark.parametrize("linktype", [*COOKED, 1], ids=lambda t: f"linktype-{t}")
def test_raw_frames_in_cooked_and_ethernet_records_agree_with_tshark(tmp_path: Path, linktype: int):
    capture = c.write_pcap(tmp_path / "wpan.pcap", linktype, _records(linktype))
    frames = _compare(capture)
    _story(frames)
    raw = [frame for index, frame in enumerate(frames) if index % 4 != 3]
    assert all(frame.link.zep is None and frame.link.channel is None for frame in raw)
    assert all(frame.link.fcs_ok for frame in frames)
    assert all(frames[index].link.zep is not None for index in range(3, len(frames), 4))


@pytest.mark.oracle
def test_raw_frames_in_a_pcapng_of_cooked_and_ethernet_interfaces_agree_with_tshark(
    tmp_path: Path,
):
    """One pcapng, interfaces of link types 113, 276 and 1 (tcpdump -i any, then a LAN
    capture), the frames spread over them in turn."""
    linktypes = [*COOKED, 1]
    records = []
    for index, mac in enumerate(MAC_FRAMES):
        interface = index % len(linktypes)
        records.append((interface, _raw(linktypes[interface], index, mac)))
    capture = c.write_pcapng(tmp_path / "wpan.pcapng", linktypes, records)
    frames = _compare(capture)
    _story(frames)
    assert [frame.record.linktype for frame in frames[:3]] == linktypes


_GOOD = c.with_fcs(MAC_FRAMES[1])
_SHORT_MAC = bytes.fromhex("4188015634ffff0000")  # a 9-byte data frame: padded in Ethernet
_ZEP, _ZEP6 = c.ipv4(c.udp(c.zep_v2(_GOOD))), c.ipv6(c.udp(c.zep_v2(_GOOD)))
#: (what, link type, record, zse's error or None, skipped by zse (no 802.15.4 for tshark))
EDGES = [
    ("good, node interface", 113, c.sll(_GOOD, 0xF6, hatype=804), None, False),
    ("without its FCS (a node's own frame)", 113, c.sll(MAC_FRAMES[1], 0xF6, hatype=804),
     None, False),
    ("bad FCS", 113, c.sll(MAC_FRAMES[1] + b"\x00\x00", 0xF6, hatype=805), None, False),
    ("1 byte", 113, c.sll(b"\x41", 0xF6, hatype=805),
     "1-byte frame, shorter than its 2-byte FCS", False),
    ("no byte", 276, c.sll2(b"", 0xF6, hatype=805),
     "0-byte frame, shorter than its 2-byte FCS", False),
    ("cooked header cut", 113, c.sll(_GOOD, 0xF6)[:10],
     "Linux cooked header truncated: 10 of 16 bytes", False),
    ("cooked v2 header cut", 276, c.sll2(_GOOD, 0xF6)[:19],
     "Linux cooked v2 header truncated: 19 of 20 bytes", False),
    ("ARPHRD type of another link", 113, c.sll(_GOOD, 0xF6, hatype=778), None, False),
    ("0x809a in a cooked v2 record", 276, c.sll2(_GOOD, 0x809A), None, False),
    ("802.1Q tag, then 0x809a", 1, c.ethernet(_GOOD, 0x809A, vlan=7), None, False),
    ("a short frame and Ethernet's padding", 1, c.ethernet(c.with_fcs(_SHORT_MAC), 0x809A),
     None, False),
    ("a short frame, unpadded", 1, c.ethernet(c.with_fcs(_SHORT_MAC), 0x809A, pad=False),
     None, False),
    ("1 byte in Ethernet", 1, c.ethernet(b"\x41", 0x809A, pad=False),
     "1-byte frame, shorter than its 2-byte FCS", False),
    ("a netlink message", 113, c.sll(_GOOD, 0xF6, hatype=824), None, True),
    ("a netlink message, v2", 276, c.sll2(_GOOD, 0xF6, hatype=824), None, True),
    ("another Linux protocol (802.2 LLC)", 113, c.sll(_GOOD, 0x0004), None, True),
    *[
        (what, linktype, _cooked(linktype, packet, protocol, hatype), error, skipped)
        for linktype in COOKED
        for what, packet, protocol, hatype, error, skipped in [
            # a Linux protocol number (up to 0x0600) is read by the ARPHRD type first
            ("radiotap, protocol 0x00F6", _GOOD, 0xF6, c.ARPHRD_RADIOTAP, None, True),
            ("Frame Relay, protocol 0x00F6", _GOOD, 0xF6, c.ARPHRD_FRAD, None, True),
            ("radiotap, ETH_P_ALL", c.ethernet(_ZEP, 0x0800), 3, c.ARPHRD_RADIOTAP, None, True),
            ("protocol 0x0600, a Linux protocol", _GOOD, 0x0600, 1, None, True),
            # ... an ethertype is not
            ("radiotap, ethertype 0x809a", _GOOD, 0x809A, c.ARPHRD_RADIOTAP, None, False),
            ("Frame Relay, IPv4 ZEP", _ZEP, 0x0800, c.ARPHRD_FRAD, None, False),
            # ETH_P_ALL: an Ethernet frame, its padding read as Ethernet's
            ("ETH_P_ALL, ZEP", c.ethernet(_ZEP, 0x0800), c.ETH_P_ALL, 1, None, False),
            ("ETH_P_ALL, 802.1Q and 0x809a", c.ethernet(_GOOD, 0x809A, vlan=4), c.ETH_P_ALL,
             1, None, False),
            ("ETH_P_ALL, a short frame padded", c.ethernet(c.with_fcs(_SHORT_MAC), 0x809A),
             c.ETH_P_ALL, 1, None, False),
            ("ETH_P_ALL, Ethernet header cut", c.ethernet(_ZEP, 0x0800)[:10], c.ETH_P_ALL, 1,
             "Ethernet header truncated: 10 of 14 bytes", False),
            # a GRE tunnel's protocol is GRE's
            ("GRE, IPv4 ZEP", _ZEP, 0x0800, c.ARPHRD_IPGRE, None, False),
            ("GRE, WCCP's IPv4 ZEP", _ZEP, 0x883E, c.ARPHRD_IPGRE, None, False),
            ("GRE, IPv6 ZEP", _ZEP6, 0x86DD, c.ARPHRD_IPGRE, None, False),
            ("GRE, bridged Ethernet", c.ethernet(_GOOD, 0x809A), 0x6558, c.ARPHRD_IPGRE,
             None, False),
            ("GRE, Ethernet 0x6400", c.ethernet(_ZEP, 0x0800), 0x6400, c.ARPHRD_IPGRE,
             None, False),
            ("GRE, 0x809a not read", _GOOD, 0x809A, c.ARPHRD_IPGRE, None, True),
            ("GRE, 802.1Q not read", b"\x00\x04\x80\x9a" + _GOOD, 0x8100, c.ARPHRD_IPGRE,
             None, True),
            ("GRE, protocol 0x00F6", _GOOD, 0xF6, c.ARPHRD_IPGRE, None, False),
        ]
    ],
]  # fmt: skip


@pytest.mark.oracle
@pytest.mark.parametrize("linktype", [1, 113, 276])
def test_edges_and_malformed_records_as_tshark_reads_them(tmp_path: Path, linktype: int):
    """Frames with and without a good FCS (a node interface's own frames have none: both
    tools call the FCS bad), records too short for their FCS or header (one malformed
    frame each, tshark: malformed), Ethernet's padding read as part of the frame (as tshark
    does), and records that hold no 802.15.4 frame: netlink (tshark
    dissects the ARPHRD type first), radiotap and Frame Relay records of a Linux protocol
    number, Linux protocols other than 0x00F6 and ETH_P_ALL (an Ethernet frame), GRE
    protocols other than IP and Ethernet, skipped."""
    edges = [edge for edge in EDGES if edge[1] == linktype]
    capture = c.write_pcap(tmp_path / "edges.pcap", linktype, [edge[2] for edge in edges])
    fields = ("frame.protocols", "wpan.fcs_ok", "wpan.frame_length", "wpan.seq_no",
              "_ws.malformed", "_ws.expert.message")  # fmt: skip
    theirs = tshark_fields(capture, [], fields)
    frames = {frame.record.number: frame for frame in _zse(capture)}
    for number, ((what, _, _, error, skipped), row) in enumerate(
        zip(edges, theirs, strict=True), 1
    ):
        layers = row["frame.protocols"].split(":")
        if skipped:
            assert number not in frames, what
            assert "wpan" not in layers, what
            continue
        frame = frames[number]
        assert frame.error == error, what
        if error is not None:  # tshark: a malformed 802.15.4 frame, or cooked header
            assert frame.link.frame == b"", what
            assert row["_ws.malformed"], what
            assert ("wpan" in layers) == ("FCS" in error), what
            continue
        assert "wpan" in layers, what
        assert frame.link.fcs_ok is not None, what
        assert row["wpan.fcs_ok"] == str(int(frame.link.fcs_ok)), what
        assert row["wpan.frame_length"] == str(len(frame.link.frame)), what
        assert frame.mac is not None, what
        assert row["wpan.seq_no"] == str(frame.mac.seq), what
    fcs = {edge[0]: frames[n].link.fcs_ok for n, edge in enumerate(edges, 1) if n in frames}
    cooked = {
        "radiotap, ethertype 0x809a": True, "Frame Relay, IPv4 ZEP": True, "ETH_P_ALL, ZEP": True,
        "ETH_P_ALL, 802.1Q and 0x809a": True, "ETH_P_ALL, a short frame padded": True,
        "ETH_P_ALL, Ethernet header cut": None, "GRE, IPv4 ZEP": True,
        "GRE, WCCP's IPv4 ZEP": True, "GRE, IPv6 ZEP": True, "GRE, bridged Ethernet": True,
        "GRE, Ethernet 0x6400": True, "GRE, protocol 0x00F6": True,
    }  # fmt: skip
    expected = {
        # the padding is read as frame (both tools' frame_length counts it); zero bytes after
        # a frame and its FCS leave the CRC-16 (initial value 0) at 0: the "FCS" still checks
        1: {"802.1Q tag, then 0x809a": True, "a short frame and Ethernet's padding": True,
            "a short frame, unpadded": True, "1 byte in Ethernet": False},
        113: {"good, node interface": True, "without its FCS (a node's own frame)": False,
              "bad FCS": False, "1 byte": False, "cooked header cut": None,
              "ARPHRD type of another link": True, **cooked},
        276: {"no byte": False, "cooked v2 header cut": None, "0x809a in a cooked v2 record": True,
              **cooked},
    }  # fmt: skip
    assert fcs == expected[linktype]


def test_what_a_record_carries_and_why_one_is_skipped():
    """``carried`` hands back a raw frame flagged as such; ``udp_payload`` has no datagram
    to give for it; the records skipped say why, naming the record."""
    raw = c.sll(_GOOD, 0xF6, hatype=805)
    assert carried(113, raw) == (_GOOD, None)
    assert carried(276, c.sll2(_GOOD, 0x809A)) == (_GOOD, None)
    assert carried(1, c.ethernet(_GOOD, 0x809A, vlan=3)) == (_GOOD, None)
    zep = c.zep_v2(_GOOD)
    # a datagram's source: IP source address, then UDP source port (49152)
    source = bytes((192, 168, 1, 20)) + b"\xc0\x00"
    assert carried(113, c.sll(c.ipv4(c.udp(zep)), c.ETHERTYPE_IPV4)) == (zep, source)
    assert carried(113, c.sll(c.ethernet(_ZEP, 0x0800), c.ETH_P_ALL)) == (zep, source)
    assert carried(276, c.sll2(_ZEP6, 0x86DD, hatype=778)) == (zep, c.IPV6_SOURCE + b"\xc0\x00")
    with pytest.raises(SkippedRecord, match=r"^a raw IEEE 802\.15\.4 frame, not a UDP datagram$"):
        udp_payload(113, raw)
    reasons = skip_reasons({
        1: (113, c.sll(_GOOD, 0xF6, hatype=824)), 2: (113, c.sll(_GOOD, 0x0004)),
        3: (276, c.sll2(_GOOD, 0x0806)), 4: (1, c.ethernet(_GOOD, 0x809B)),
        5: (113, c.sll(_GOOD, 0xF6, hatype=803)), 6: (276, c.sll2(_GOOD, 3, hatype=770)),
        7: (113, c.sll(_GOOD, 0x809A, hatype=778)),
    })  # fmt: skip
    assert reasons == {
        1: "record 1: a Linux netlink message",
        2: "record 2: Linux protocol 0x0004, neither Ethernet, IP nor IEEE 802.15.4",
        3: "record 3: ethertype 0x0806, neither IP nor IEEE 802.15.4",
        4: "record 4: ethertype 0x809b, neither IP nor IEEE 802.15.4",
        5: "record 5: ARPHRD type 803 (802.11 radiotap)",
        6: "record 6: ARPHRD type 770 (Frame Relay)",
        7: "record 7: GRE protocol 0x809a, neither Ethernet nor IP",
    }
    link = mac_frame(Record(9, 0, 113, raw, len(raw)))
    assert (link.frame, link.fcs_ok, link.zep, link.error) == (MAC_FRAMES[1], True, None, None)


REAL = [(t, r) for t in (*COOKED, 1) for r in _records(t)[:8]] + [
    (edge[1], edge[2]) for edge in EDGES
]


@settings(max_examples=400, deadline=None)
@given(
    record=st.builds(
        _garbled, st.sampled_from(REAL), st.integers(0, 40), st.integers(0, 255),
        st.integers(0, 100),
    )
)  # fmt: skip
def test_raw_records_meet_garbage(record: tuple[int, bytes]):
    """Raw-frame records with a header byte changed or cut short: a Link (malformed with
    its error and no frame) or a SkippedRecord naming the record, never another exception;
    ``carried`` raises InvalidFrame or SkippedRecord only."""
    linktype, data = record
    with contextlib.suppress(InvalidFrame, SkippedRecord):
        payload, source = carried(linktype, data)
        assert isinstance(payload, bytes)
        assert source is None or len(source) in {6, 18}
    survives_garbage(linktype, data)
