"""Wireshark decrypts what zse.security secures (#15.1): NWK-secured ZCL, an APS-secured
(link key) frame inside a NWK-secured one, and APS Transport Key commands secured with the
key-transport and key-load keys derived from a link key. tshark is given the keys as lines of
its ZigBee key table (``-o uat:zigbee_pc_keys:...``) and must show the decryption key used,
the decrypted fields and no malformed packet; an altered frame must not decrypt."""

from __future__ import annotations

from pathlib import Path

import pytest
import zigpy.types as t

from tests.clusters.se_frames import Dissected, dissect, zcl_frame
from zse.security import KeyId, secure_aps, secure_nwk
from zse.sim import _frames as frames

pytestmark = pytest.mark.oracle

NWK_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
LINK_KEY = bytes.fromhex("0102030405060708090A0B0C0D0E0F10")
TC = 0x00124B0001020304
DEVICE = 0x0011223344556677
PAN = 0x1A62
PRICE = 0x0700
SE_PROFILE = 0x0109
KEYS = (
    "-o",
    f'uat:zigbee_pc_keys:"{NWK_KEY.hex().upper()}","Normal","network key"',
    "-o",
    f'uat:zigbee_pc_keys:"{LINK_KEY.hex().upper()}","Normal","link key"',
)
#: Get Current Price (SE D.4.2.3.1), command options 0x01, ZCL sequence number 7
GET_CURRENT_PRICE = zcl_frame(0x00, b"\x01", from_server=False, tsn=7)


def eui64(value: int) -> t.EUI64:
    return t.EUI64(value.to_bytes(8, "little"))


def on_air(nwk: bytes, seq: int) -> bytes:
    header = frames.MacHeader(frames.MAC_DATA, seq, PAN, 0x1234, PAN, 0x0000, True)
    return frames.encode_mac(header, nwk)


def nwk_header(seq: int, radius: int = 30) -> bytes:
    return frames.encode_nwk(frames.NwkHeader(dst=0x1234, src=0x0000, radius=radius, seq=seq), b"")


APS_DATA_HEADER = frames.encode_aps(
    frames.ApsHeader(frames.APS_DATA, 0, 5, dst_ep=1, cluster=PRICE, profile=SE_PROFILE, src_ep=1),
    b"",
)
APS_COMMAND_HEADER = frames.encode_aps(frames.ApsHeader(frames.APS_COMMAND, 0, 6), b"")


def nwk_secured(payload: bytes, counter: int) -> bytes:
    secured = secure_nwk(
        nwk_header(counter), payload, key=NWK_KEY, key_seq=0, counter=counter, source=TC
    )
    return on_air(secured, counter)


def transport_key(key_id: KeyId, counter: int) -> bytes:
    """A Transport Key (standard network key) from the Trust Center, NWK in the clear as to
    a joining device, APS-secured with a key derived from the device's link key."""
    command = frames.transport_key_payload(NWK_KEY, 0, eui64(DEVICE), eui64(TC))
    aps = secure_aps(
        APS_COMMAND_HEADER, command, link_key=LINK_KEY, counter=counter, source=TC, key_id=key_id
    )
    return on_air(frames.encode_nwk(frames.NwkHeader(0x1234, 0, 1, counter), aps), counter)


def frames_to_check() -> dict[str, bytes]:
    aps_data = secure_aps(
        APS_DATA_HEADER, GET_CURRENT_PRICE, link_key=LINK_KEY, counter=3, source=TC
    )
    aps_implicit = secure_aps(
        APS_DATA_HEADER,
        GET_CURRENT_PRICE,
        link_key=LINK_KEY,
        counter=4,
        source=TC,
        extended_nonce=False,
    )
    return {
        "nwk": nwk_secured(APS_DATA_HEADER + GET_CURRENT_PRICE, 1),
        "nwk+aps": nwk_secured(aps_data, 2),
        "nwk+aps without extended nonce": nwk_secured(aps_implicit, 3),
        "transport key (key-transport key)": transport_key(KeyId.KEY_TRANSPORT, 5),
        "transport key (key-load key)": transport_key(KeyId.KEY_LOAD, 6),
    }


def _security_headers(packet: Dissected) -> list[tuple[str, str]]:
    return list(
        zip(packet.show("zbee.sec.key_id"), packet.show("zbee.sec.decryption_key"), strict=True)
    )


def test_tshark_decrypts_every_frame_zse_secures(tmp_path: Path):
    built = frames_to_check()
    packets = dict(zip(built, dissect(list(built.values()), tmp_path, KEYS), strict=True))
    for name, packet in packets.items():
        assert not packet.malformed, name
        assert packet.show("wpan.security") == ["0"], name
    for name in ("nwk", "nwk+aps", "nwk+aps without extended nonce"):
        packet = packets[name]
        assert packet.show("zbee_zcl_se.price.cmd.srv_rx.id") == ["0x00"], name
        assert packet.show("zbee_zcl_se.price.command_options") == ["0x01"], name
        assert packet.show("zbee_zcl.cmd.tsn") == ["7"], name
        assert packet.show("zbee.sec.src64")[0] == "00:12:4b:00:01:02:03:04", name
    assert _security_headers(packets["nwk"]) == [("0x01", "network key")]
    for name in ("nwk+aps", "nwk+aps without extended nonce"):
        assert _security_headers(packets[name]) == [("0x01", "network key"), ("0x00", "link key")]
    assert packets["nwk"].show("zbee_aps.security") == ["0"]
    assert packets["nwk+aps"].show("zbee_aps.security") == ["1"]
    assert packets["nwk+aps"].show("zbee.sec.counter") == ["2", "3"]
    assert packets["nwk+aps without extended nonce"].show("zbee.sec.ext_nonce") == ["1", "0"]
    for name, key_id in (
        ("transport key (key-transport key)", "0x02"),
        ("transport key (key-load key)", "0x03"),
    ):
        packet = packets[name]
        assert packet.show("zbee_nwk.security") == ["0"], name
        assert _security_headers(packet) == [(key_id, "link key")], name
        assert packet.show("zbee_aps.cmd.id") == ["0x05"], name
        assert packet.raw("zbee_aps.cmd.key") == [NWK_KEY.hex()], name
        assert packet.show("zbee.sec.field")[0] == f"0x{0x20 | int(key_id, 16) << 3:02x}"


def test_tshark_refuses_altered_frames_and_frames_without_the_key(tmp_path: Path):
    """The oracle can fail: a flipped payload bit or a missing key leaves the payload
    encrypted (no decryption key, no ZCL fields, no key in the Transport Key)."""
    built = frames_to_check()
    tampered = bytearray(built["nwk"])
    tampered[-3] ^= 0x01
    altered_key = bytearray(built["transport key (key-transport key)"])
    altered_key[-1] ^= 0x80
    packets = dissect([bytes(tampered), bytes(altered_key)], tmp_path, KEYS)
    keyless = dissect([built["nwk"], built["transport key (key-transport key)"]], tmp_path)
    for packet in (*packets, *keyless):
        assert packet.show("zbee.sec.decryption_key") == []
        assert packet.show("zbee_zcl.cmd.tsn") == []
        assert packet.raw("zbee_aps.cmd.key") == []
