"""Garbage to the capture entry points no other property test reached: ``decode_capture``
over a whole pcap of any link type (802.15.4 with or without FCS, TAP, Ethernet/UDP carrying
ZEP), the key parser of ``--key`` and the application decoder (ZDO and every zigpy cluster
as well as SE's): only CaptureError / KeyFileError / InvalidFrame, and what decodes is JSON."""

from __future__ import annotations

import io
import json
import struct

import zigpy.zcl
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.capture import CaptureError, KeyFileError, KeyRing, decode_capture, parse_key
from zse.capture.app import decode_application
from zse.capture.frames import decode_aps
from zse.cli.capture import load_keys
from zse.errors import InvalidFrame
from zse.se.ids import DRLC, KEY_ESTABLISHMENT, MESSAGING, METERING, PRICE, TUNNELING

LINK_TYPES = [195, 215, 230, 283, 1, 0, 147]  # 15.4 +FCS, no FCS, no FCS (TI), TAP, Ethernet
ZEP_PORT = 17754


def _pcap(link_type: int, frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, link_type)
    for number, frame in enumerate(frames):
        out += struct.pack("<IIII", number, 0, len(frame), len(frame)) + frame
    return out


def _over_udp(body: bytes) -> bytes:
    """An Ethernet/IPv4/UDP frame to the ZEP port carrying ``body``."""
    udp = struct.pack(">HHHH", ZEP_PORT, ZEP_PORT, 8 + len(body), 0)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 28 + len(body), 0, 0, 64, 17, 0, bytes(4), bytes(4))
    return bytes(12) + b"\x08\x00" + ip + udp + body


MAC = st.binary(max_size=90) | st.sampled_from(
    [bytes.fromhex("4188"), bytes.fromhex("6188"), bytes.fromhex("0108")]
).flatmap(lambda fc: st.binary(max_size=70).map(lambda rest: fc + rest))
FRAME = (
    MAC
    | MAC.map(lambda mac: _over_udp(b"EX\x02" + bytes(29) + mac))
    | MAC.map(lambda mac: _over_udp(b"EX" + mac))
)


@settings(max_examples=150, deadline=None)
@given(link_type=st.sampled_from(LINK_TYPES), frames=st.lists(FRAME, max_size=4))
def test_whole_captures_of_garbage_decode_or_raise_capture_error(link_type, frames):
    decoded, message = [], ""
    try:
        decoded.extend(decode_capture(io.BytesIO(_pcap(link_type, frames)), KeyRing()))
    except CaptureError as exc:
        message = str(exc)
    assert "\n" not in message
    assert len(decoded) <= len(frames)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(max_size=60)
    | st.binary(min_size=16, max_size=16).map(lambda key: key.hex(":"))
    | st.binary(min_size=15, max_size=17).map(lambda key: "0x" + key.hex())
)
def test_key_text_is_16_bytes_or_key_file_error(text):
    message = ""
    try:
        assert len(parse_key(text)) == 16
    except KeyFileError as exc:
        message = str(exc)
    assert len(text.strip()) < 8 or text.strip() not in message  # a key is never echoed


CLUSTERS = sorted(
    {*zigpy.zcl.Cluster._registry, PRICE, DRLC, METERING, MESSAGING, TUNNELING, KEY_ESTABLISHMENT}
)
ZCL_HEADER = st.tuples(
    st.sampled_from([0x00, 0x01, 0x08, 0x09, 0x10, 0x19, 0x04]),
    st.integers(0, 255),
    st.integers(0, 0x20) | st.integers(0, 255),
).map(lambda h: bytes((h[0], h[1], h[2])))


@settings(max_examples=120, deadline=None)
@given(
    cluster=st.sampled_from(CLUSTERS) | st.integers(0, 0xFFFF),
    profile=st.sampled_from([0x0000, 0x0104, 0x0109, 0xC05E]),
    dst_ep=st.sampled_from([0, 1, 0xFF]),
    payload=st.binary(max_size=80)
    | ZCL_HEADER.flatmap(lambda h: st.binary(max_size=60).map(h.__add__)),
)
def test_application_payloads_of_garbage_decode_to_json_or_raise_invalid_frame(
    cluster, profile, dst_ep, payload
):
    header = struct.pack("<BBHHBB", 0x00, dst_ep, cluster, profile, 1, 0)  # unicast data
    aps, _ = decode_aps(header)
    try:
        fields = decode_application(aps, payload)
    except InvalidFrame:
        return
    json.dumps(fields, allow_nan=False)


CODE = "83FED3407A939723A5C639B26916D505C3B5"  # tests/vectors/installcode-interop.json
NEAR_CODE = st.builds(
    lambda eui, sep, cut, flip: (eui + sep if eui else "") + (CODE[:cut] + flip + CODE[cut:]),
    st.sampled_from(["", "000D6F000A000001", "00:0d:6f:00:0a:00:00:01", "0D6F", "zz", "=", " "]),
    st.sampled_from(["=", "==", "= "]),
    st.integers(0, len(CODE)),
    st.sampled_from(["", "0", "g", " ", "-", "=", "\u0660", "\udcff"]),
)


@settings(max_examples=150, deadline=None)
@given(
    install_codes=st.lists(NEAR_CODE | st.text(max_size=50), max_size=3),
    keys=st.lists(st.text(max_size=50), max_size=2),
)
def test_zse_capture_key_options_give_a_key_ring_or_key_file_error(install_codes, keys):
    """``zse capture``'s --install-code EUI=CODE, --network-key and --link-key (the key
    ring's loader, ``zse.cli.capture.load_keys``): a ring, or one KeyFileError line."""
    message = ""
    try:
        load_keys((), tuple(keys), tuple(reversed(keys)), tuple(install_codes))
    except KeyFileError as exc:
        message = str(exc)
    assert "\n" not in message
    assert CODE not in message  # an install code is a secret: never echoed
