"""Inter-PAN frames checked against oracles nobody here wrote: tshark (Wireshark's 802.15.4,
ZigBee NWK/APS inter-PAN and SE ZCL dissectors) and scapy's ``ZigbeeNWKStub`` /
``ZigbeeAppDataPayloadStub`` layers."""

from __future__ import annotations

import json
import random
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from scapy.config import conf
from scapy.layers.dot15d4 import Dot15d4, Dot15d4Data
from scapy.layers.zigbee import ZigbeeAppDataPayloadStub, ZigbeeNWKStub
from zigpy.types import EUI64

from tests.interpan.test_interpan_codec import SRC, silicon_labs_first_fragment
from tests.interpan.tshark_json import dissect
from tests.oracles import require
from zse.interpan import BROADCAST_ADDRESS, DeliveryMode, InterPanFrame
from zse.pcap import PcapWriter

pytestmark = pytest.mark.oracle

PRICE, MESSAGING = 0x0700, 0x0703


def zcl(fc: int, tsn: int, cmd: int, body: bytes = b"") -> bytes:
    return bytes([fc, tsn, cmd]) + body


def publish_price(tsn: int) -> bytes:
    """SE D.4.2.4.1 Publish Price, SE 1.0 short form (server -> client)."""
    body = (
        struct.pack("<I", 0x1001)  # provider id
        + bytes([3])
        + b"abc"  # rate label
        + struct.pack("<II", 0x55, 0x20000000)  # issuer event id, current time
        + bytes([0x00])  # unit of measure: kWh
        + struct.pack("<H", 826)  # currency
        + bytes([0x21, 0x11])  # trailing digit / tier, number of tiers / register tier
        + struct.pack("<IHI", 0, 0xFFFF, 1234)  # start time, duration, price
    )
    return zcl(0x09, tsn, 0x00, body)


def display_message(tsn: int) -> bytes:
    body = struct.pack("<IBIH", 0x77, 0x00, 0, 30) + bytes([5]) + b"hello"
    return zcl(0x09, tsn, 0x00, body)


def random_frames(count: int, seed: int) -> list[tuple[InterPanFrame, int]]:
    """Frames of every delivery mode carrying whitelisted SE commands; (frame, ZCL command)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        mode = [DeliveryMode.UNICAST, DeliveryMode.BROADCAST, DeliveryMode.GROUP][i % 3]
        tsn = rng.randrange(256)
        cluster, payload, cmd = rng.choice(
            [
                (PRICE, zcl(0x01, tsn, 0x00, b"\x00"), 0x00),  # get current price
                (PRICE, publish_price(tsn), 0x00),
                (MESSAGING, display_message(tsn), 0x00),
                (MESSAGING, zcl(0x09, tsn, 0x01, struct.pack("<IB", 0x77, 0)), 0x01),
            ]
        )
        f = InterPanFrame(
            src_pan_id=rng.randrange(0x10000),
            src_ieee=EUI64(rng.randbytes(8)),
            dst_pan_id=rng.choice([0xFFFF, rng.randrange(0xFFFF)]),
            dst_address=EUI64(rng.randbytes(8)) if i % 3 == 0 else BROADCAST_ADDRESS,
            delivery_mode=mode,
            group_id=rng.randrange(0x10000) if mode is DeliveryMode.GROUP else None,
            cluster_id=cluster,
            payload=payload,
            sequence=rng.randrange(256),
        )
        out.append((f, cmd))
    return out


def tshark_json(pcap: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [require("tshark"), "-r", str(pcap), "-T", "json", "--no-duplicate-keys"],
        check=True,
        capture_output=True,
        text=True,
    )
    return [p["_source"]["layers"] for p in json.loads(result.stdout)]


def find(tree: Any, key: str) -> Any:
    """The value of ``key`` anywhere in a tshark JSON layer tree (first match, depth first)."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for value in tree.values():
            found = find(value, key)
            if found is not None:
                return found
    return None


def eui(value: EUI64) -> str:
    return str(value).lower()


def test_tshark_dissects_every_field(tmp_path: Path) -> None:
    cases = random_frames(60, seed=7)
    pcap = tmp_path / "interpan.pcap"
    with PcapWriter(pcap, linktype=195) as writer:
        for i, (f, _) in enumerate(cases):
            writer.write(f.to_bytes(), float(i))
    packets = tshark_json(pcap)
    assert len(packets) == len(cases)
    for layers, (f, cmd) in zip(packets, cases, strict=True):
        assert "_ws.malformed" not in json.dumps(layers)
        assert "_ws.expert" not in layers
        assert layers["frame"]["frame.protocols"].startswith("wpan:zbee_nwk:zbee_aps:zbee_zcl")
        wpan = layers["wpan"]
        assert wpan["wpan.fcs_ok"] == "1"
        tree = wpan["wpan.fcf_tree"]
        assert tree["wpan.frame_type"] == "0x0001"
        assert tree["wpan.security"] == "0"
        assert tree["wpan.pan_id_compression"] == "0"
        assert tree["wpan.src_addr_mode"] == "0x0003"
        assert int(wpan["wpan.seq_no"]) == f.sequence
        assert int(wpan["wpan.dst_pan"], 16) == f.dst_pan_id
        assert int(wpan["wpan.src_pan"], 16) == f.src_pan_id
        assert wpan["wpan.src64"] == eui(f.src_ieee)
        if f.delivery_mode is DeliveryMode.UNICAST:
            assert wpan["wpan.fcf"] == "0xcc21"
            assert tree["wpan.ack_request"] == "1"
            assert tree["wpan.dst_addr_mode"] == "0x0003"
            assert isinstance(f.dst_address, EUI64)
            assert wpan["wpan.dst64"] == eui(f.dst_address)
        else:
            assert wpan["wpan.fcf"] == "0xc801"
            assert tree["wpan.ack_request"] == "0"
            assert tree["wpan.dst_addr_mode"] == "0x0002"
            assert wpan["wpan.dst16"] == "0xffff"
        nwk = layers["zbee_nwk"]
        assert nwk["zbee_nwk.fcf"] == "0x000b"
        assert nwk["zbee_nwk.fcf_tree"]["zbee_nwk.frame_type"] == "0x0003"
        assert nwk["zbee_nwk.fcf_tree"]["zbee_nwk.proto_version"] == "2"
        aps = layers["zbee_aps"]
        assert find(aps, "zbee_aps.type") == "0x03"
        assert int(find(aps, "zbee_aps.delivery"), 16) == int(f.delivery_mode)
        assert find(aps, "zbee_aps.security") == "0"
        assert find(aps, "zbee_aps.ack_req") == "0"
        assert int(aps["zbee_aps.cluster"], 16) == f.cluster_id
        assert int(aps["zbee_aps.profile"], 16) == f.profile_id == 0x0109
        if f.delivery_mode is DeliveryMode.GROUP:
            assert int(aps["zbee_aps.group"], 16) == f.group_id
        else:
            assert "zbee_aps.group" not in aps
        zcl_layer = layers["zbee_zcl"]
        assert int(zcl_layer["zbee_zcl.cmd.tsn"]) == f.payload[1]
        suffixes = (".cmd.srv_rx.id", ".cmd.srv_tx.id")
        cmd_ids = [v for k, v in zcl_layer.items() if k.endswith(suffixes)]
        assert [int(c, 16) for c in cmd_ids] == [cmd]


def test_tshark_sees_our_decoder_reject_what_it_calls_non_interpan(tmp_path: Path) -> None:
    """NWK frame type "data" with no NWK header behind it: tshark finds no ZigBee in it, we
    refuse it with the offset of the NWK frame control."""
    f, _ = random_frames(1, seed=1)[0]
    wire = bytearray(f.to_bytes())
    wire[23] = 0x08  # NWK frame type data
    pcap = tmp_path / "nwk.pcap"
    with PcapWriter(pcap, linktype=195) as writer:
        writer.write(bytes(wire), 0.0)
    (layers,) = tshark_json(pcap)
    assert layers["frame"]["frame.protocols"] == "wpan:data"
    with pytest.raises(ValueError, match="at byte offset 23: NWK frame type 0 is not inter-PAN"):
        InterPanFrame.from_bytes(bytes(wire))


@pytest.fixture(autouse=True)
def _scapy_zigbee() -> None:
    conf.dot15d4_protocol = "zigbee"


def test_scapy_dissects_our_frames() -> None:
    for f, _ in random_frames(60, seed=11):
        pkt = Dot15d4(f.to_bytes())
        assert pkt.fcf_frametype == 1
        assert pkt.fcf_panidcompress == 0
        assert pkt.fcf_ackreq == (f.delivery_mode is DeliveryMode.UNICAST)
        assert pkt.seqnum == f.sequence
        data = pkt[Dot15d4Data]
        assert data.dest_panid == f.dst_pan_id
        assert data.src_panid == f.src_pan_id
        assert data.src_addr == int.from_bytes(f.src_ieee.serialize(), "little")
        if f.delivery_mode is DeliveryMode.UNICAST:
            assert isinstance(f.dst_address, EUI64)
            assert data.dest_addr == int.from_bytes(f.dst_address.serialize(), "little")
        else:
            assert data.dest_addr == 0xFFFF
        nwk = pkt[ZigbeeNWKStub]
        assert (nwk.frametype, nwk.proto_version) == (3, 2)
        aps = pkt[ZigbeeAppDataPayloadStub]
        assert aps.frametype == 3
        assert aps.delivery_mode == int(f.delivery_mode)
        assert int(aps.frame_control) == 0
        if f.delivery_mode is DeliveryMode.GROUP:
            assert aps.group_addr == f.group_id
        assert aps.cluster == f.cluster_id
        assert aps.profile == f.profile_id
        assert aps.data == f.payload


def test_scapy_built_frames_equal_ours_byte_for_byte() -> None:
    for f, _ in random_frames(60, seed=13):
        unicast = f.delivery_mode is DeliveryMode.UNICAST
        dst = (
            int.from_bytes(f.dst_address.serialize(), "little")
            if isinstance(f.dst_address, EUI64)
            else 0xFFFF
        )
        aps_kw: dict[str, Any] = {}
        if f.delivery_mode is DeliveryMode.GROUP:
            aps_kw["group_addr"] = f.group_id
        pkt = (
            Dot15d4(
                fcf_frametype=1,
                fcf_ackreq=int(unicast),
                fcf_panidcompress=0,
                fcf_destaddrmode=3 if unicast else 2,
                fcf_srcaddrmode=3,
                seqnum=f.sequence,
            )
            / Dot15d4Data(
                dest_panid=f.dst_pan_id,
                dest_addr=dst,
                src_panid=f.src_pan_id,
                src_addr=int.from_bytes(f.src_ieee.serialize(), "little"),
            )
            / ZigbeeNWKStub()
            / ZigbeeAppDataPayloadStub(
                delivery_mode=int(f.delivery_mode),
                cluster=f.cluster_id,
                profile=f.profile_id,
                data=f.payload,
                **aps_kw,
            )
        )
        assert bytes(pkt) == f.to_bytes()
        assert InterPanFrame.from_bytes(bytes(pkt)) == f


def test_tshark_reads_a_full_silicon_labs_fragment_as_zse_does(tmp_path: Path) -> None:
    """Audit finding 1: the 127-octet frame (95 octets of payload) Silicon Labs sends as the
    first fragment of a long message is a well-formed frame to tshark, as to zse."""
    wire = silicon_labs_first_fragment()
    decoded = InterPanFrame.from_bytes(wire)
    capture = tmp_path / "sl.pcap"
    with PcapWriter(capture) as pcap:
        pcap.write(wire, 0.0)
    (packet,) = dissect(capture)  # asserts no malformed packet
    assert packet["frame.len"] == ["127"]
    assert packet["wpan.fcs_ok"] == ["1"]
    assert packet["zbee_nwk.frame_type"] == ["0x0003"]
    assert packet["zbee_aps.type"] == ["0x03"]
    assert packet["zbee_aps.cluster"] == [f"0x{decoded.cluster_id:04x}"]
    assert packet["zbee_aps.profile"] == ["0x0109"]
    assert packet["wpan.src64"] == [str(SRC)] == [str(decoded.src_ieee)]
