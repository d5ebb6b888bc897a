"""The inter-PAN codec (SE Annex B.4): byte-exact encodings, round trips, validation, fuzzing."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.types import EUI64

from zse.errors import DecodeError, InvalidFrame
from zse.interpan import (
    BROADCAST_ADDRESS,
    MAX_MAC_FRAME_LENGTH,
    MAX_ZCL_LENGTH,
    MIN_PAYLOAD_LENGTH,
    SE_PROFILE_ID,
    DeliveryMode,
    InterPanFrame,
    max_payload_length,
    transports,
)
from zse.interpan.fragment import is_fragment
from zse.radios.ezsp import EzspTransport
from zse.radios.znp import ZnpTransport

SRC = EUI64.convert("00:0d:6f:00:0a:bc:de:f0")
DST = EUI64.convert("00:0d:6f:00:01:02:03:04")
GET_CURRENT_PRICE = bytes([0x01, 0x05, 0x00, 0x00])  # client->server, TSN 5, cmd 0, options 0


def frame(mode: DeliveryMode, **kw: object) -> InterPanFrame:
    args: dict[str, object] = {
        "src_pan_id": 0x1234,
        "src_ieee": SRC,
        "dst_pan_id": 0xABCD,
        "dst_address": DST if mode is DeliveryMode.UNICAST else BROADCAST_ADDRESS,
        "delivery_mode": mode,
        "group_id": 0x0102 if mode is DeliveryMode.GROUP else None,
        "cluster_id": 0x0700,
        "payload": GET_CURRENT_PRICE,
        "sequence": 7,
    }
    args.update(kw)
    return InterPanFrame(**args)  # type: ignore[arg-type]


# Hand-assembled from SE Annex B.4 / 802.15.4 clause 7.2 (every field little-endian).
UNICAST_BYTES = bytes.fromhex(
    "21cc"  # MAC FC: data, ack request, dst 64-bit, src 64-bit, no PAN-id compression
    "07"  # MAC sequence number
    "cdab"  # destination PAN id
    "04030201006f0d00"  # destination EUI-64
    "3412"  # source PAN id
    "f0debc0a006f0d00"  # source EUI-64
    "0b00"  # stub NWK FC: frame type inter-PAN, protocol version 2
    "03"  # stub APS FC: inter-PAN, unicast
    "0007"  # cluster Price
    "0901"  # profile SE
    "01050000"  # ZCL: Get Current Price
)
BROADCAST_BYTES = bytes.fromhex("01c807cdabffff3412f0debc0a006f0d000b000b0007090101050000")
GROUP_BYTES = bytes.fromhex("01c807cdabffff3412f0debc0a006f0d000b000f02010007090101050000")


@pytest.mark.parametrize(
    ("mode", "wire"),
    [
        (DeliveryMode.UNICAST, UNICAST_BYTES),
        (DeliveryMode.BROADCAST, BROADCAST_BYTES),
        (DeliveryMode.GROUP, GROUP_BYTES),
    ],
)
def test_byte_exact_encoding_and_decoding(mode: DeliveryMode, wire: bytes) -> None:
    f = frame(mode)
    assert f.to_bytes() == wire
    assert InterPanFrame.from_bytes(wire) == f
    assert InterPanFrame.from_bytes(bytearray(wire)) == f


def test_defaults_and_fields() -> None:
    f = frame(DeliveryMode.GROUP)
    assert f.profile_id == SE_PROFILE_ID == 0x0109
    assert f.group_id == 0x0102
    decoded = InterPanFrame.from_bytes(GROUP_BYTES)
    assert isinstance(decoded.src_ieee, EUI64)
    assert str(decoded.src_ieee) == "00:0d:6f:00:0a:bc:de:f0"
    assert decoded.delivery_mode is DeliveryMode.GROUP


def test_zcl_limit_is_93_bytes() -> None:
    """The send side: zse puts at most 93 octets in one frame (127 - 25 for the largest MAC
    header and FCS - 2 - 7 for the largest stub headers), which every delivery mode fits and
    Z-Stack's stub APS takes (INTERP_DataReqMTU); longer messages go as fragments."""
    assert MAX_ZCL_LENGTH == 127 - 25 - 2 - 7 == 93
    for mode in DeliveryMode:
        assert len(frame(mode, payload=bytes(MAX_ZCL_LENGTH)).to_bytes()) + 2 <= 127


def test_payload_limits_follow_the_127_octet_phy_frame() -> None:
    """A frame carries what fits a 127-octet PHY frame after its FCS and its own headers: 95
    unicast, 101 broadcast, 99 group (the 93 zse sends fits every mode); one octet more is
    refused on construction and on decoding."""
    assert MAX_MAC_FRAME_LENGTH == 125
    limits = {mode: max_payload_length(mode) for mode in DeliveryMode}
    assert limits == {DeliveryMode.UNICAST: 95, DeliveryMode.BROADCAST: 101, DeliveryMode.GROUP: 99}
    assert MAX_ZCL_LENGTH == 93 == min(limits.values()) - 2
    for mode, limit in limits.items():
        longest = frame(mode, payload=bytes(limit))
        assert len(longest.to_bytes()) == 125  # + 2 FCS = the 127-octet PHY frame
        assert InterPanFrame.from_bytes(longest.to_bytes()) == longest
        with pytest.raises(ValueError, match=f"{limit + 1} bytes exceeds the {limit} a"):
            frame(mode, payload=bytes(limit + 1))
        too_long = longest.to_bytes() + b"\x00"
        with pytest.raises(InvalidFrame, match=f"is {limit + 1} bytes, more than the {limit}"):
            InterPanFrame.from_bytes(too_long)
    with pytest.raises(InvalidFrame, match="byte offset 30 is 96 bytes"):
        InterPanFrame.from_bytes(UNICAST_BYTES[:-4] + bytes(96))


def silicon_labs_first_fragment() -> bytes:
    """The first fragment of a long message as Silicon Labs' inter-PAN plugin sends it
    (``interpan.c``: ``maxFragLen = EMBER_AF_MAXIMUM_INTERPAN_LENGTH (125) - 30 - 4`` = 91
    octets of message): a 125-octet MAC frame, 127 with its FCS, 95 octets of payload."""
    header = struct.pack(
        "<HBH8sH8sHBHH",
        0xCC21,  # LONG_DEST_FRAME_CONTROL | MAC_ACK_REQUIRED
        1,
        0x1234,
        DST.serialize(),
        0x1234,
        SRC.serialize(),
        0x000B,  # STUB_NWK_FRAME_CONTROL
        0x03,  # unicast
        0xFC5F,
        SE_PROFILE_ID,
    )
    chunk = bytes(range(91))
    return header + bytes((0x00, 0, 3, len(chunk))) + chunk  # IPMF fragment 0 of 3


def test_a_full_silicon_labs_fragment_is_received() -> None:
    """Audit finding 1: Silicon Labs fills unicast frames to 95 octets of payload; zse decodes
    them (on EZSP and the simulator, through the receive queue). tshark reads the same frame:
    tests/interpan/test_interpan_oracles.py."""
    wire = silicon_labs_first_fragment()
    assert len(wire) == MAX_MAC_FRAME_LENGTH
    decoded = InterPanFrame.from_bytes(wire)
    assert len(decoded.payload) == 95
    assert is_fragment(decoded.payload)
    assert decoded.to_bytes() == wire
    queue = transports.ReceiveQueue()
    queue.deliver_bytes(wire)
    assert queue.invalid == 0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"src_pan_id": 0x10000}, "src_pan_id must be"),
        ({"dst_pan_id": -1}, "dst_pan_id must be"),
        ({"cluster_id": "x"}, "cluster_id must be"),
        ({"profile_id": 1 << 16}, "profile_id must be"),
        ({"sequence": 256}, "sequence must be"),
        ({"src_ieee": b"\x00" * 8}, "src_ieee must be a zigpy EUI64"),
        ({"dst_address": 0xFFFF}, "unicast inter-PAN frames need a 64-bit"),
        ({"group_id": 5}, "group_id is only used with group delivery"),
    ],
)
def test_unicast_validation(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        frame(DeliveryMode.UNICAST, **kw)


def test_broadcast_and_group_validation() -> None:
    with pytest.raises(ValueError, match="broadcast inter-PAN frames go to dst_address 0xFFFF"):
        frame(DeliveryMode.BROADCAST, dst_address=DST)
    with pytest.raises(ValueError, match="group inter-PAN frames go to dst_address 0xFFFF"):
        frame(DeliveryMode.GROUP, dst_address=0x1234)
    with pytest.raises(ValueError, match="group delivery needs a group_id"):
        frame(DeliveryMode.GROUP, group_id=None)
    with pytest.raises(ValueError, match="group_id must be"):
        frame(DeliveryMode.GROUP, group_id=0x10000)
    # an int delivery mode is normalised to the enum; bytearray payloads become bytes
    f = frame(DeliveryMode.BROADCAST, delivery_mode=2, payload=bytearray(b"\x01\x02\x03"))
    assert f.delivery_mode is DeliveryMode.BROADCAST
    assert type(f.payload) is bytes


def patched(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated MAC frame control at byte offset 0"),
        (b"\x21", "truncated MAC frame control at byte offset 0"),
        (patched(UNICAST_BYTES, 0, b"\x23\xcc"), "frame type 3 is not a data frame"),
        (patched(UNICAST_BYTES, 0, b"\x29\xcc"), "security enabled"),
        (patched(UNICAST_BYTES, 0, b"\x61\xcc"), "PAN-id compression is set"),
        (patched(UNICAST_BYTES, 0, b"\x21\x8c"), "source addressing mode 2 is not 64-bit"),
        (patched(UNICAST_BYTES, 0, b"\x21\xc0"), "destination addressing mode 0"),
        (patched(UNICAST_BYTES, 0, b"\x01\xcc"), r"unicast \(64-bit destination\) without ack"),
        (patched(BROADCAST_BYTES, 0, b"\x21\xc8"), "a unicast to a short address"),
        (patched(UNICAST_BYTES, 0, b"\x31\xcc"), "frame pending, frame version or reserved"),
        (patched(BROADCAST_BYTES, 0, b"\x01\xd8"), "frame pending, frame version or reserved"),
        (UNICAST_BYTES[:2], "truncated sequence number at byte offset 2"),
        (UNICAST_BYTES[:4], "truncated destination PAN id at byte offset 3"),
        (UNICAST_BYTES[:12], "truncated destination address at byte offset 5"),
        (UNICAST_BYTES[:14], "truncated source PAN id at byte offset 13"),
        (UNICAST_BYTES[:20], "truncated source address at byte offset 15"),
        (UNICAST_BYTES[:24], "truncated stub NWK frame control at byte offset 23"),
        (UNICAST_BYTES[:25], "truncated stub APS frame control at byte offset 25"),
        (BROADCAST_BYTES[:6], "truncated destination address at byte offset 5"),
        (BROADCAST_BYTES[:19], "truncated stub APS frame control at byte offset 19"),
        (UNICAST_BYTES[:27], "truncated APS cluster id at byte offset 26"),
        (UNICAST_BYTES[:29], "truncated APS profile id at byte offset 28"),
        (GROUP_BYTES[:21], "truncated APS group address at byte offset 20"),
        (patched(BROADCAST_BYTES, 5, b"\x34\x12"), "MAC destination address 0x1234 at byte"),
        (patched(UNICAST_BYTES, 23, b"\x08\x00"), "NWK frame type 0 is not inter-PAN"),
        (patched(UNICAST_BYTES, 23, b"\x07\x00"), "protocol version 1 is not 2"),
        (patched(UNICAST_BYTES, 23, b"\x0b\x02"), "must be 0 \\(0x000B\\)"),
        (patched(UNICAST_BYTES, 25, b"\x00"), "APS frame type 0 is not inter-PAN"),
        (patched(UNICAST_BYTES, 25, b"\x07"), "delivery mode 0b01 \\(indirect\\)"),
        (patched(UNICAST_BYTES, 25, b"\x43"), "acknowledgement and extended header"),
        (patched(UNICAST_BYTES, 25, b"\x0b"), "delivery mode BROADCAST at byte offset 25"),
        (patched(BROADCAST_BYTES, 19, b"\x03"), "delivery mode UNICAST at byte offset 19"),
    ],
)
def test_decode_errors_say_what_and_where(data: bytes, message: str) -> None:
    with pytest.raises(InvalidFrame, match=message) as info:
        InterPanFrame.from_bytes(data)
    assert isinstance(info.value, DecodeError)
    assert isinstance(info.value, ValueError)


eui64s = st.binary(min_size=8, max_size=8).map(EUI64)
u16 = st.integers(0, 0xFFFF)


@st.composite
def frames(draw: st.DrawFn) -> InterPanFrame:
    mode = draw(st.sampled_from(DeliveryMode))
    return InterPanFrame(
        src_pan_id=draw(u16),
        src_ieee=draw(eui64s),
        dst_pan_id=draw(u16),
        dst_address=draw(eui64s) if mode is DeliveryMode.UNICAST else BROADCAST_ADDRESS,
        delivery_mode=mode,
        group_id=draw(u16) if mode is DeliveryMode.GROUP else None,
        cluster_id=draw(u16),
        profile_id=draw(u16),
        payload=draw(st.binary(min_size=MIN_PAYLOAD_LENGTH, max_size=max_payload_length(mode))),
        sequence=draw(st.integers(0, 255)),
    )


@settings(max_examples=300, deadline=None)
@given(frames())
def test_round_trip(f: InterPanFrame) -> None:
    wire = f.to_bytes()
    assert InterPanFrame.from_bytes(wire) == f
    assert InterPanFrame.from_bytes(wire).to_bytes() == wire
    assert len(wire) + 2 <= 127


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=140))
def test_garbage_raises_only_invalid_frame(data: bytes) -> None:
    try:
        f = InterPanFrame.from_bytes(data)
    except InvalidFrame as exc:
        message = str(exc)
    else:
        assert f.to_bytes() == data  # whatever decodes re-encodes to the same bytes
        return
    assert "byte offset" in message


@settings(max_examples=500, deadline=None)
@given(frames(), st.data())
def test_mutated_frames_raise_only_invalid_frame(f: InterPanFrame, data: st.DataObject) -> None:
    wire = bytearray(f.to_bytes())
    index = data.draw(st.integers(0, len(wire) - 1))
    wire[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    try:
        g = InterPanFrame.from_bytes(bytes(wire[:cut]))
    except InvalidFrame as exc:
        message = str(exc)
    else:
        assert g.to_bytes() == bytes(wire[:cut])
        return
    assert "byte offset" in message


def test_importing_interpan_loads_no_radio_library() -> None:
    """interpan never imports the radios: bellows / zigpy-znp load only from zse.radios."""
    code = (
        "import sys, zse.interpan, zse.interpan.transports, zse.interpan.service, zse.interpan.se\n"
        "loaded = [m for m in ('bellows', 'zigpy_znp', 'scapy', 'zse.sim', 'zse.radios')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "from zse.radios.ezsp import EzspTransport\n"
        "from zse.radios.znp import ZnpTransport\n"
        "assert 'bellows' in sys.modules and 'zigpy_znp' in sys.modules\n"
        "assert 'zse.sim' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_radio_transports_from_interpan_are_deprecated_aliases() -> None:
    """#13.4: the old path ``from zse.interpan.transports import EzspTransport`` still gives the
    radio module's class, with a DeprecationWarning naming the new home (found through the
    distribution's entry points, so interpan has no import of zse.radios)."""
    for name, cls, home in (
        ("EzspTransport", EzspTransport, "zse.radios.ezsp"),
        ("ZnpTransport", ZnpTransport, "zse.radios.znp"),
    ):
        with pytest.warns(DeprecationWarning, match=f"import it from {home}"):
            assert getattr(transports, name) is cls
    with pytest.raises(AttributeError, match="NoSuchTransport"):
        transports.NoSuchTransport  # noqa: B018
    assert "EzspTransport" not in transports.__all__


def test_a_payload_shorter_than_any_is_refused() -> None:
    """A frame cut anywhere after its profile id decoded with a 0-2 byte payload (queued, then
    dropped as not whitelisted); no inter-PAN payload is under 3 bytes."""
    whole = frame(DeliveryMode.UNICAST, payload=GET_CURRENT_PRICE).to_bytes()
    for cut in range(1, 4):
        with pytest.raises(InvalidFrame, match="fewer than the 3 of the shortest"):
            InterPanFrame.from_bytes(whole[: len(whole) - len(GET_CURRENT_PRICE) + 3 - cut])
    assert (
        InterPanFrame.from_bytes(whole[: len(whole) - len(GET_CURRENT_PRICE) + 3]).payload
        == (GET_CURRENT_PRICE[:3])
    )
