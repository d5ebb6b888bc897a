"""``zse capture`` on APS-secured inter-PAN frames, next to tshark (audit of inter-PAN,
findings 6 and 7): Silicon Labs' 5-octet auxiliary header, whose nonce source is the MAC
source, and the security bit on a broadcast frame."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from zigpy.types import EUI64

from tests.capture.tshark_view import key_options, tshark_fields
from zse.capture import CaptureDecoder, Decoded, Key, KeyRing, read_records
from zse.interpan import DeliveryMode, InterPanFrame
from zse.interpan.secure import seal_frame
from zse.pcap import PcapWriter

pytestmark = pytest.mark.oracle

KEY = bytes(range(16))
HHT = EUI64.convert("00:0d:6f:00:0a:bc:de:f0")
HUB = EUI64.convert("00:11:22:33:44:55:66:77")
GET_CURRENT_PRICE = bytes((0x01, 0x05, 0x00, 0x00))


def decode(frames: list[bytes], tmp_path: Path, ring: KeyRing) -> tuple[Path, list[Decoded]]:
    capture = tmp_path / "interpan.pcap"
    with PcapWriter(capture) as pcap:
        for index, frame in enumerate(frames):
            pcap.write(frame, float(index))
    decoder = CaptureDecoder(ring)
    with capture.open("rb") as stream:
        return capture, [decoder.decode(record) for record in read_records(stream)]


def test_the_silicon_labs_short_header_form_is_decrypted(tmp_path: Path) -> None:
    """Finding 6: without the extended nonce the sender's EUI-64 is the MAC source (as
    ``zse.interpan.secure.open_frame`` takes it); zse capture decrypts that form to the ZCL
    frame tshark shows for the 13-octet form of the same frame (tshark itself cannot decrypt
    the 5-octet one, docs/adr/0015)."""
    plain = InterPanFrame(
        src_pan_id=0xFFFF,
        src_ieee=HHT,
        dst_pan_id=0x1234,
        dst_address=HUB,
        delivery_mode=DeliveryMode.UNICAST,
        cluster_id=0x0700,
        payload=GET_CURRENT_PRICE,
    )
    short = seal_frame(plain, link_key=KEY, counter=7, extended_nonce=False)
    long = seal_frame(plain, link_key=KEY, counter=8)
    capture, (s, lo) = decode(
        [short.to_bytes(), long.to_bytes()], tmp_path, KeyRing([Key(KEY, "hht")])
    )
    for decoded in (s, lo):
        assert decoded.error is None
        (security,) = decoded.security
        assert (security.key, security.failure) == ("hht", None)
        assert security.source == int.from_bytes(bytes(HHT.serialize()), "little")
        assert security.payload == GET_CURRENT_PRICE
        assert decoded.command is not None
        assert decoded.command["command"] == "get_current_price"
    assert s.security[0].aux.source is None  # carried by the MAC header only
    fields = ("zbee.sec.counter", "zbee_zcl.cmd.tsn", "zbee_zcl_se.price.cmd.srv_rx.id")
    short_seen, long_seen = tshark_fields(capture, key_options({"hht": KEY}), fields)
    assert long_seen == {
        "zbee.sec.counter": "8",
        "zbee_zcl.cmd.tsn": "5",
        "zbee_zcl_se.price.cmd.srv_rx.id": "0x00",
    }
    assert short_seen["zbee_zcl.cmd.tsn"] == ""  # left encrypted by tshark


def test_the_security_bit_on_a_broadcast_is_read_as_tshark_reads_it(tmp_path: Path) -> None:
    """Finding 7: a broadcast inter-PAN frame with the stub APS security bit (0x2B) has an
    auxiliary header after the stub APS header, as tshark reads it; zse capture shows its
    counter and source and does not read the ciphertext as ZCL (no stack zse knows secures a
    broadcast: a link key is a pair's)."""
    header = struct.pack(
        "<HBHHH8sHBHH", 0xC801, 1, 0xFFFF, 0xFFFF, 0x1234, HHT.serialize(), 0x000B, 0x2B,
        0x0700, 0x0109,
    )  # fmt: skip
    aux = bytes((0x20,)) + struct.pack("<I", 5) + HHT.serialize()
    frame = header + aux + GET_CURRENT_PRICE + b"MICX"
    capture, (decoded,) = decode([frame], tmp_path, KeyRing([Key(KEY, "hht")]))
    assert decoded.aps is not None
    assert decoded.aps.security
    assert decoded.command is None  # the ciphertext is not read as a ZCL frame
    (security,) = decoded.security
    assert security.aux.counter == 5
    assert security.source == int.from_bytes(bytes(HHT.serialize()), "little")
    assert security.failure is not None
    assert "broadcast or group" in security.failure
    fields = ("zbee_aps.security", "zbee.sec.counter", "zbee.sec.src64", "zbee_zcl.cmd.tsn")
    (seen,) = tshark_fields(capture, [], fields)
    assert seen == {
        "zbee_aps.security": "1",
        "zbee.sec.counter": "5",
        "zbee.sec.src64": str(HHT),
        "zbee_zcl.cmd.tsn": "",
    }
