"""zse capture on the cases the audit of other projects' captures found (findings 1-5), each
frame built here from the public capture it was seen in (cited per test; no third-party
capture is kept), with tshark as the oracle:

1. the APS Tunnel command (a Transport Key relayed through a router) was shown as a name only;
2. a record shorter than its FCS stopped the capture;
3. APS delivery mode 0b01 (reserved) was decoded as unicast;
4. a MAC command without its fixed payload (Association Request's capability) was shown as
   normal;
5. Thread (6LoWPAN, MLE) and MAC-secured frames were called malformed ZigBee.

Secured frames are encrypted with ``cryptography``'s AES-CCM from the nonce laid out by hand
(ZB 4.5.2.2, 4.3.1.1), not with zse.security.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from tests.capture.tshark_view import compare, key_options, tshark_fields, zse_frames
from zse.capture import Key, KeyRing, UnsecuredWriter, as_json, as_line
from zse.capture.frames import decode_aps
from zse.errors import InvalidFrame
from zse.installcode import InstallCode, hmac_mmo
from zse.pcap import PcapWriter, fcs

pytestmark = pytest.mark.oracle

# zigator (akestoridis/zigator) tests/data/04-aps-testing.pcap and test_integration.py: the
# network key, two joining devices' install codes, the Trust Center and the devices
NETWORK_KEY = bytes.fromhex("11" * 16)
NEW_NETWORK_KEY = bytes.fromhex("22" * 16)
INSTALL_CODE = "55555555555555555555555555555555A9D1"
OTHER_INSTALL_CODE = "66666666666666666666666666666666A603"
LINK_KEY = InstallCode.parse(INSTALL_CODE).link_key
OTHER_LINK_KEY = InstallCode.parse(OTHER_INSTALL_CODE).link_key
TC = 0x7777770000000001
JOINER = 0x7777770000000005
OTHER_JOINER = 0x7777770000000006
PAN = b"\xdd\xdd"
ROUTER = 0x1102
KEY_TRANSPORT = 0x30  # security control: key-transport key, extended nonce (level 0 on air)
NETWORK = 0x28  # security control: network key, extended nonce


def _secure(
    header: bytes, control: int, counter: int, key: bytes, payload: bytes, key_seq: int | None
) -> bytes:
    """``header`` + auxiliary header (sent with level 0) + ``payload`` encrypted with MIC-32,
    the Trust Center as sender (ZB 4.3.1.1)."""
    tail = struct.pack("<IQ", counter, TC) + (b"" if key_seq is None else bytes((key_seq,)))
    real = bytes((control | 5,))
    nonce = TC.to_bytes(8, "little") + counter.to_bytes(4, "little") + real
    sealed = AESCCM(key, tag_length=4).encrypt(nonce, payload, header + real + tail)
    return header + bytes((control,)) + tail + sealed


def tunnel(
    mac_seq: int,
    nwk_seq: int,
    nwk_counter: int,
    aps_counter: int,
    inner_counter: int,
    dst: int,
    link_key: bytes,
    key: bytes,
    key_seq: int,
) -> bytes:
    """The Trust Center's Transport Key of network ``key`` to ``dst``, through the router:
    MAC and NWK (secured with the network key) to the router, an APS Tunnel command to
    ``dst`` carrying the APS Transport Key secured with the key-transport key of ``dst``'s
    ``link_key`` (ZB 4.4.9.8, 4.6.3.2). With zigator's numbers (:func:`_tunnels`) these are
    04-aps-testing.pcap frames 5 and 10 byte for byte (checked against the capture when
    written; the capture is not kept)."""
    transport = b"\x05\x01" + key + bytes((key_seq,)) + struct.pack("<QQ", dst, TC)
    inner = _secure(
        bytes((0x21, aps_counter + 1)), KEY_TRANSPORT, inner_counter,
        hmac_mmo(link_key, b"\x00"), transport, None,
    )  # fmt: skip
    command = bytes((0x01, aps_counter, 0x0E)) + dst.to_bytes(8, "little") + inner
    nwk = struct.pack("<HHHBB", 0x0208, ROUTER, 0x0000, 30, nwk_seq)
    mac = struct.pack("<HB", 0x8861, mac_seq) + PAN + struct.pack("<HH", ROUTER, 0x0000)
    return mac + _secure(nwk, NETWORK, nwk_counter, NETWORK_KEY, command, 0)


def _pcap(path: Path, frames: list[bytes]) -> Path:
    with PcapWriter(path) as pcap:
        for index, frame in enumerate(frames):
            pcap.write(frame, 1_599_996_933 + index)
    return path


def _tunnels(path: Path) -> Path:
    frames = [  # MAC seq, NWK seq, NWK counter, APS counter, tunnelled frame's counter, ...
        # zigator frame 5: the network key to a device whose install code is held
        (4, 244, 10246, 103, 10245, JOINER, LINK_KEY, NETWORK_KEY, 0),
        # zigator frame 10: to a device whose install code is not held
        (9, 249, 10254, 109, 10253, OTHER_JOINER, OTHER_LINK_KEY, NETWORK_KEY, 0),
        # the same tunnel carrying a new network key: learned
        (10, 250, 10260, 111, 10259, JOINER, LINK_KEY, NEW_NETWORK_KEY, 1),
    ]
    return _pcap(path, [tunnel(*numbers) for numbers in frames])


def _ring() -> KeyRing:
    ring = KeyRing([Key(NETWORK_KEY, "network key")])
    ring.add_install_code(INSTALL_CODE, "joiner")
    return ring


TUNNEL_FIELDS = ("zbee_aps.cmd.id", "zbee_aps.cmd.dst", "zbee_aps.cmd.key", "zbee_aps.cmd.seqno")


def test_tunnelled_transport_key_is_decrypted_shown_and_learned_as_tshark_does(tmp_path: Path):
    """Finding 1: the APS Tunnel command (0x0E) was shown as ``APS tunnel`` only; now its
    destination, the tunnelled APS frame, its security header (key-transport key of the
    install code's link key) and the Transport Key inside are decoded, frame by frame as
    tshark does, and the network key it carries is learned (zigator 04-aps frames 5, 10)."""
    capture = _tunnels(tmp_path / "tunnel.pcap")
    keys = {"network key": NETWORK_KEY, "joiner": LINK_KEY}
    held, other, rekey = compare(capture, _ring(), keys)
    theirs = tshark_fields(capture, key_options(keys), TUNNEL_FIELDS)
    for frame, row in zip((held, other, rekey), theirs, strict=True):
        assert frame.tunnel is not None
        assert frame.tunnelled is not None
        command = frame.command or {}
        ids = ["0x0e"] + (["0x05"] if command.get("command") == "transport key" else [])
        assert row["zbee_aps.cmd.id"] == ",".join(ids)
        dsts = [frame.tunnel["dst"]] + ([command["dst"]] if command else [])
        assert row["zbee_aps.cmd.dst"] == ",".join(dsts)
        assert row["zbee_aps.cmd.key"] == (command["key"].hex() if command else "")
        assert row["zbee_aps.cmd.seqno"] == (str(command["key_seq"]) if command else "")
    assert [s.key for s in held.security] == ["network key", "joiner"]
    assert held.security[1].aux.key_id == 2  # the key-transport key
    assert held.command is not None
    assert held.command["key"] == NETWORK_KEY
    assert held.error is None
    assert other.command is None
    assert other.security[1].failure == "MIC fails with every key"
    assert rekey.learned == ["network key from frame 3"]


def test_tunnel_on_the_timeline_and_in_json_keeps_the_key_hidden(tmp_path: Path):
    """Finding 1: the tunnel's destination and the tunnelled frame's security are shown; the
    transported key stays hidden as any Transport Key's."""
    held, other, _ = zse_frames(_tunnels(tmp_path / "tunnel.pcap"), _ring())
    line = as_line(held)
    assert (
        "| APS command #103 | APS tunnel dst=77:77:77:00:00:00:00:05 | "
        "APS command #104 secured #10245 [joiner] | APS transport key" in line
    )
    assert "key=(hidden)" in line
    assert NETWORK_KEY.hex() not in line + as_json(held)
    assert "APS command #110 secured #10253 NOT DECRYPTED (MIC fails with every key)" in (
        as_line(other)
    )
    assert NETWORK_KEY.hex() in as_line(held, show_keys=True)


def test_tunnel_written_without_security_reads_in_tshark_without_keys(tmp_path: Path):
    """Finding 1: ``--write`` writes a decrypted tunnel with both layers in the clear; a
    tunnel whose tunnelled frame was not decrypted is written as captured."""
    frames = zse_frames(_tunnels(tmp_path / "tunnel.pcap"), _ring())
    out = tmp_path / "clear.pcap"
    writer = UnsecuredWriter(out)
    for frame in frames:
        writer.write(frame)
    writer.close()
    rows = tshark_fields(out, [], ("zbee_aps.cmd.id", "zbee_aps.cmd.key", "zbee.sec.counter"))
    assert rows[0] == {
        "zbee_aps.cmd.id": "0x0e,0x05",
        "zbee_aps.cmd.key": NETWORK_KEY.hex(),
        "zbee.sec.counter": "",
    }
    # as captured: tshark opens the NWK layer with the key it learned from frame 1
    assert rows[1]["zbee.sec.counter"] == "10254,10253"
    assert rows[1]["zbee_aps.cmd.id"] == "0x0e"
    assert frames[1].unsecured is None


def test_tunnel_without_its_frame_is_malformed(tmp_path: Path):
    """Finding 1: a Tunnel command that ends after its destination says so."""
    command = bytes((0x01, 7, 0x0E)) + JOINER.to_bytes(8, "little")
    nwk = struct.pack("<HHHBB", 0x0008, ROUTER, 0x0000, 30, 1)
    mac = struct.pack("<HB", 0x8861, 1) + PAN + struct.pack("<HH", ROUTER, 0x0000)
    (frame,) = zse_frames(_pcap(tmp_path / "t.pcap", [mac + nwk + command]), KeyRing())
    assert frame.error == "APS command tunnel: 8 bytes after the command id, too short"


BEACON_REQUEST = bytes.fromhex("0308c2ffffffff07")


def _raw_pcap(path: Path, linktype: int, records: list[bytes]) -> Path:
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for index, record in enumerate(records):
        data += struct.pack("<IIII", index + 1, 0, len(record), len(record)) + record
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("short", [b"", b"\x00"])
def test_record_shorter_than_its_fcs_is_one_malformed_frame(tmp_path: Path, short: bytes):
    """Finding 2: a record shorter than its FCS raised CaptureError and the capture stopped
    (exit 1), losing the frames after it (zigator 01-phy-testing.pcap frame 3, 1 byte); now
    it is one malformed frame with a bad FCS and the capture goes on, as in tshark."""
    good = BEACON_REQUEST + fcs(BEACON_REQUEST).to_bytes(2, "little")
    capture = _raw_pcap(tmp_path / "short.pcap", 195, [good, short, good])
    frames = zse_frames(capture, KeyRing())
    assert [frame.error for frame in frames] == [
        None,
        f"{len(short)}-byte frame, shorter than its 2-byte FCS",
        None,
    ]
    assert frames[1].link.fcs_ok is False
    assert frames[2].mac_fields == {"command": "beacon request"}
    theirs = tshark_fields(capture, [], ("frame.number", "_ws.malformed"))
    assert [bool(row["_ws.malformed"]) for row in theirs] == [False, True, False]
    result = subprocess.run(
        [sys.executable, "-m", "zse", "capture", str(capture)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[1].endswith("MALFORMED: " + frames[1].error + " | BAD FCS")


@pytest.mark.parametrize("fcs_type", [1, 2])
def test_tap_record_shorter_than_its_fcs_is_one_malformed_frame(tmp_path: Path, fcs_type: int):
    """Finding 2, the TAP link type: a PSDU shorter than the FCS its TLV names."""
    tap = struct.pack("<BBHHHB3x", 0, 0, 12, 0, 1, fcs_type)
    capture = _raw_pcap(tmp_path / "tap.pcap", 283, [tap + b"\x00", tap + BEACON_REQUEST])
    short, beacon = zse_frames(capture, KeyRing())
    assert short.error == f"1-byte frame, shorter than its {2 * fcs_type}-byte FCS"
    assert beacon.record.number == 2


def _mac_data(payload: bytes) -> bytes:
    """A MAC data frame 0x182b -> 0x0001 (short addresses, PAN ID compression)."""
    return struct.pack("<HB", 0x8841, 0x11) + PAN + struct.pack("<HH", 0x0001, 0x182B) + payload


def test_reserved_aps_delivery_mode_is_malformed_as_in_tshark(tmp_path: Path):
    """Finding 3: APS frame control 0x04 (data, delivery mode 0b01, "indirect" in ZigBee 2006,
    reserved since) was decoded as unicast into an invented ZCL command (KillerBee
    sample/zigbee-network-key-ota.dcf frame 4); now it is malformed, and tshark warns
    "Invalid Delivery Mode" and stops at the APS header too."""
    nwk = struct.pack("<HHHBB", 0x0008, 0x0001, 0x182B, 30, 14)
    aps = bytes.fromhex("0401640b010002000c0b01")
    capture = _pcap(tmp_path / "indirect.pcap", [_mac_data(nwk + aps)])
    (frame,) = compare(capture, KeyRing(), {})
    assert frame.error == (
        "APS frame control 0x04 at offset 0: delivery mode 0b01 is reserved (invalid delivery mode)"
    )
    assert frame.aps is None
    assert frame.command is None
    (row,) = tshark_fields(capture, [], ("_ws.expert.message", "zbee_zcl.cmd.id"))
    assert row == {"_ws.expert.message": "Invalid Delivery Mode", "zbee_zcl.cmd.id": ""}


def test_reserved_delivery_mode_of_a_command_frame_is_no_address():
    """Finding 3: only data and acknowledgement frames are addressed by delivery mode; a
    command frame's delivery bits are shown ("reserved"), not refused."""
    with pytest.raises(InvalidFrame, match="delivery mode 0b01 is reserved"):
        decode_aps(bytes.fromhex("0601640b01000207"))  # an addressed acknowledgement
    aps, payload = decode_aps(bytes.fromhex("05070e"))
    assert (aps.fields()["delivery"], aps.counter, payload) == ("reserved", 7, b"\x0e")


_TO_COORDINATOR = struct.pack("<HB", 0xC823, 0x0D) + PAN + b"\x00\x00" + b"\xff\xff"
_TO_COORDINATOR += JOINER.to_bytes(8, "little")  # short destination, EUI-64 source
_FROM_COORDINATOR = struct.pack("<HB", 0xCC63, 0x0E) + PAN + JOINER.to_bytes(8, "little")
_FROM_COORDINATOR += TC.to_bytes(8, "little")  # EUI-64 to EUI-64, PAN ID compression
_GTS = struct.pack("<HB", 0x8023, 0x10) + PAN + struct.pack("<H", 0xFE7A)  # short source only


@pytest.mark.parametrize(
    ("header", "command", "size"),
    [
        (_TO_COORDINATOR, 0x01, 1),  # association request: capability information
        (_FROM_COORDINATOR, 0x02, 3),  # association response: short address, status
        (_FROM_COORDINATOR, 0x03, 1),  # disassociation notification: reason
        (_GTS, 0x09, 1),  # GTS request: GTS characteristics
    ],
)
def test_mac_command_without_its_payload_is_malformed_as_in_tshark(
    tmp_path: Path, header: bytes, command: int, size: int
):
    """Finding 4: an Association Request without its capability octet was shown as normal
    (zigator 02-mac-testing.pcap frame 13); it and the other fixed-size MAC command payloads
    (802.15.4-2006 7.3) one byte short are malformed, as tshark marks them; whole, neither
    tool complains."""
    whole = header + bytes((command,)) + bytes(range(0x41, 0x41 + size))
    capture = _pcap(tmp_path / "mac.pcap", [whole[:-1], whole])
    short, full = zse_frames(capture, KeyRing())
    assert short.error is not None
    assert short.error.endswith(
        f": {size - 1} bytes after the command id at offset {len(header)}, needs {size}"
    )
    assert full.error is None
    theirs = tshark_fields(capture, [], ("frame.number", "_ws.malformed"))
    assert [bool(row["_ws.malformed"]) for row in theirs] == [True, False]


# zigator 09-mle-testing.pcap frame 1: Thread MLE, from an EUI-64 to 0xffff, 6LoWPAN IPHC
_MLE = struct.pack("<HB", 0xD801, 0x80) + b"\xff\xff\xff\xff" + b"\xef\xdb"
_MLE += JOINER.to_bytes(8, "little") + bytes.fromhex("7f3b02f04d4c4d4c61f9ff101a04800238001f")
# zigator 08-thr-testing.pcap frame 1: a 6LoWPAN first fragment between EUI-64s
_LONG = struct.pack("<HB", 0xDC61, 0x04) + PAN + struct.pack("<QQ", OTHER_JOINER, JOINER)
_FRAGMENT = _LONG + bytes.fromhex("c2c8f0017f33f04d4c4d4cb000") + b"FRAGMENT" * 4
# zigator 02-mac-testing.pcap frames 16, 18: 802.15.4 MAC security (auxiliary header 0x0d)
_MAC_SECURED = struct.pack("<HB", 0x9869, 0x91) + PAN + struct.pack("<HH", 0x8400, 0x8401)
_MAC_SECURED += bytes.fromhex("0d0600000001") + bytes(range(16))
# a ZigBee-looking NWK data frame (protocol version 2) between EUI-64s: not ZigBee's
_LONG_NWK = _LONG + struct.pack("<HHHBB", 0x0008, 0x0001, 0x182B, 30, 14) + b"\x00\x01"
#: an inter-PAN stub (0x000b) from a short MAC source: Wireshark's heuristic wants an EUI-64
_SHORT_INTER_PAN = struct.pack("<HB", 0x8841, 0x05) + PAN + struct.pack("<HH", 0xFFFF, 0x1234)
_SHORT_INTER_PAN += b"\x0b\x00" + bytes.fromhex("030007090101010000")  # Get Current Price
#: NWK frame type 2 (reserved), version 2, between short addresses
_RESERVED_NWK = struct.pack("<HB", 0x8841, 0x06) + PAN + struct.pack("<HH", 0x0000, 0x1234)
_RESERVED_NWK += struct.pack("<HHHBB", 0x000A, 0x0000, 0x1234, 30, 15) + b"\x00\x01"


@pytest.mark.parametrize(
    ("frame", "why", "protocol"),
    [
        (_MLE, "6LoWPAN (dispatch 0x7f)", "6lowpan"),
        (_FRAGMENT, "6LoWPAN (dispatch 0xc2)", "6lowpan"),
        (_MAC_SECURED, "802.15.4 MAC security, not decrypted", None),
        (_LONG_NWK, "NWK frame not between short MAC addresses", None),
        (_SHORT_INTER_PAN, "inter-PAN frame not from an EUI-64", None),
        (_RESERVED_NWK, "NWK frame type 2 (reserved)", None),
    ],
    ids=[
        "mle",
        "6lowpan-fragment",
        "mac-secured",
        "long-addresses",
        "short-inter-pan",
        "reserved-nwk-type",
    ],
)
def test_frames_that_are_not_zigbee_are_labelled_not_malformed(
    tmp_path: Path, frame: bytes, why: str, protocol: str | None
):
    """Finding 5: Thread frames were "MALFORMED: NWK frame control ... protocol version 8"
    or "NWK inter-PAN | MALFORMED: APS frame control" (the MLE frame, whose first octet has
    frame type 3), MAC-secured frames "MALFORMED: MAC-layer security is not ZigBee's"; now
    they are labelled not ZigBee, as Wireshark's ZigBee heuristic leaves them to others."""
    capture = _pcap(tmp_path / "other.pcap", [frame])
    ((decoded,), (row,)) = (
        zse_frames(capture, KeyRing([Key(NETWORK_KEY, "n")])),
        tshark_fields(capture, [], ("frame.protocols", "_ws.malformed")),
    )
    assert decoded.error is None
    assert decoded.not_zigbee == why
    assert decoded.nwk is None
    assert "zbee" not in row["frame.protocols"]
    if protocol is not None:
        assert protocol in row["frame.protocols"].split(":")
    assert f"not ZigBee: {why}" in as_line(decoded)
    assert "MALFORMED" not in as_line(decoded)
    assert f'"not_zigbee":"{why}"' in as_json(decoded)


@pytest.mark.parametrize(
    ("stub", "error"),
    [
        (0x0007, "inter-PAN stub of protocol version 1, not 2"),
        (0x020B, "inter-PAN stub 0x020b, sub-fields other than frame type and protocol"),
    ],
)
def test_inter_pan_stub_is_checked(tmp_path: Path, stub: int, error: str):
    """Finding 5: the inter-PAN stub NWK header was taken whatever its protocol version and
    sub-fields, and the error then blamed on the APS header; the stub is 0x000b (SE B.4.2.1)."""
    mac = struct.pack("<HB", 0xC801, 1) + b"\xff\xff\xff\xff" + PAN + TC.to_bytes(8, "little")
    payload = struct.pack("<H", stub) + bytes.fromhex("0300070901") + b"\x11\x00\x00"
    (decoded,) = zse_frames(_pcap(tmp_path / "ip.pcap", [mac + payload]), KeyRing())
    assert decoded.error is not None
    assert decoded.error.startswith(f"NWK frame control at offset 0: {error}")
    assert decoded.aps is None
