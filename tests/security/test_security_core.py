"""zse.security (#15.1): the auxiliary security header, the CCM* nonce, NWK and APS
secure/unsecure, the derived keys and the incoming frame counters.

The public vectors are frames real networks sent, published with their keys (sources named in
the files): a NWK-secured ZCL frame (tests/vectors/zigbee-nwk-secured.json), and an APS
Transport Key secured with the key-transport key and an APS Request Key secured with a link
key inside NWK security, with the key-transport and key-load keys of that link key
(tests/vectors/zigbee-aps-secured.json). zse decrypts each, and secures the plaintext back to
the same bytes.
"""

from __future__ import annotations

import pytest
import zigpy.types as t

from tests.conftest import load_vectors
from zse.errors import (
    BadMic,
    DecodeError,
    InvalidFrame,
    InvalidSecurityHeader,
    SecurityFailure,
    StaleFrameCounter,
    UnknownKey,
)
from zse.installcode import mmo_hash
from zse.pcap import fcs
from zse.security import (
    AuxHeader,
    IncomingCounters,
    KeyId,
    aps_header_length,
    key_load_key,
    key_transport_key,
    nonce,
    nwk_header_length,
    secure_aps,
    secure_nwk,
    unsecure_aps,
    unsecure_nwk,
)
from zse.security.ccm import ccm_decrypt
from zse.sim import _frames as frames

NWK_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
OTHER_KEY = bytes.fromhex("FFEEDDCCBBAA99887766554433221100")
LINK_KEY = bytes.fromhex("0102030405060708090A0B0C0D0E0F10")
TC = 0x00124B0001020304
DEVICE = 0x0011223344556677
PAYLOAD = bytes.fromhex("0001070901000101") + b"zse payload"
NWK_HEADER = frames.encode_nwk(frames.NwkHeader(dst=0x1234, src=0x0000, radius=30, seq=9), b"")
APS_HEADER = frames.encode_aps(
    frames.ApsHeader(frames.APS_DATA, 0, 5, dst_ep=1, cluster=0x0700, profile=0x0109, src_ep=1),
    b"",
)
APS_COMMAND_HEADER = frames.encode_aps(frames.ApsHeader(frames.APS_COMMAND, 0, 6), b"")


def unhex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.fixture(scope="module")
def public() -> dict[str, object]:
    return load_vectors("zigbee-nwk-secured.json")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def public_aps() -> dict[str, object]:
    return load_vectors("zigbee-aps-secured.json")  # type: ignore[no-any-return]


def secured_nwk(counter: int = 1, payload: bytes = PAYLOAD) -> bytes:
    return secure_nwk(NWK_HEADER, payload, key=NWK_KEY, key_seq=0, counter=counter, source=TC)


# -- a frame from a real network ---------------------------------------------------------------


def test_public_frame_decrypts_to_its_published_plaintext(public):
    mac = unhex(public["encrypted_mac_frame_with_fcs"])
    assert fcs(mac[:-2]).to_bytes(2, "little") == mac[-2:]  # the bytes were copied faithfully
    nwk = mac[public["mac_header_length"] : -2]
    key = unhex(public["network_key"])
    result = unsecure_nwk(nwk, {public["key_sequence_number"]: key})
    assert result.payload == unhex(public["decrypted_nwk_payload"])
    assert result.aux.counter == public["frame_counter"]
    assert result.source == int(public["source"], 16) == result.aux.source
    assert result.aux.level == 0  # sent as 000, computed with level 5 (ZB 4.3.1.1)
    assert result.header == nwk[: nwk_header_length(nwk)]


def test_securing_the_published_plaintext_gives_the_frame_the_device_sent(public):
    """Nonce, level patching, a-data and MIC agree bit for bit with a real stack."""
    mac = unhex(public["encrypted_mac_frame_with_fcs"])
    nwk = mac[public["mac_header_length"] : -2]
    header = nwk[: nwk_header_length(nwk)]
    cleared = header[:1] + bytes((header[1] & ~0x02,)) + header[2:]  # security bit off
    again = secure_nwk(
        cleared,
        unhex(public["decrypted_nwk_payload"]),
        key=unhex(public["network_key"]),
        key_seq=public["key_sequence_number"],
        counter=public["frame_counter"],
        source=int(public["source"], 16),
    )
    assert again == nwk


def test_public_transport_key_decrypts_with_the_key_transport_key(public_aps):
    """A Trust Center's Transport Key, APS-secured with HMAC-MMO(link key, 0x00)."""
    frame = public_aps["transport_key"]
    mac = unhex(frame["mac_frame"])
    aps = mac[frame["mac_header_length"] + frame["nwk_header_length"] :]
    link_key = unhex(public_aps["trust_center_link_key"])
    result = unsecure_aps(aps, link_key)
    assert result.aux.key_id == KeyId.KEY_TRANSPORT
    assert result.source == int(frame["source"], 16)
    assert result.payload == unhex(frame["decrypted_aps_payload"])
    assert result.payload[2:18] == unhex(public_aps["network_key"])  # the key it carries
    header = aps[: aps_header_length(aps)]
    again = secure_aps(
        bytes((header[0] & ~0x20,)) + header[1:],
        result.payload,
        link_key=link_key,
        counter=result.aux.counter,
        source=result.source,
        key_id=KeyId.KEY_TRANSPORT,
    )
    assert again == aps


def test_public_request_key_decrypts_at_both_layers(public_aps):
    """A device's Request Key: NWK-secured (network key) around APS-secured (link key)."""
    frame = public_aps["request_key"]
    nwk = unhex(frame["mac_frame"])[frame["mac_header_length"] :]
    outer = unsecure_nwk(nwk, {0: unhex(public_aps["network_key"])})
    inner = unsecure_aps(outer.payload, unhex(public_aps["trust_center_link_key"]))
    assert outer.source == inner.source == int(frame["source"], 16)
    assert (outer.aux.counter, inner.aux.counter) == (33497, 33496)
    assert inner.payload == unhex(frame["decrypted_aps_payload"])


def test_published_key_transport_and_key_load_keys(public_aps):
    link_key = unhex(public_aps["trust_center_link_key"])
    assert key_transport_key(link_key) == unhex(public_aps["key_transport_key"])
    assert key_load_key(link_key) == unhex(public_aps["key_load_key"])


# -- auxiliary header and nonce ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "wire"),
    [
        (AuxHeader(KeyId.DATA, 0x04030201), "00 01 02 03 04"),
        (AuxHeader(KeyId.DATA, 1, TC), "20 01 00 00 00 04 03 02 01 00 4b 12 00"),
        (AuxHeader(KeyId.NETWORK, 2, TC, 7), "28 02 00 00 00 04 03 02 01 00 4b 12 00 07"),
        (AuxHeader(KeyId.NETWORK, 2, None, 7), "08 02 00 00 00 07"),
        (AuxHeader(KeyId.KEY_TRANSPORT, 3, TC), "30 03 00 00 00 04 03 02 01 00 4b 12 00"),
        (AuxHeader(KeyId.KEY_LOAD, 0xFFFFFFFE), "18 fe ff ff ff"),
    ],
)
def test_aux_header_layout(header, wire):
    """ZB 4.5.1: control (level 0-2, key id 3-4, extended nonce 5), counter, source, key seq."""
    data = unhex(wire)
    assert header.encode() == data
    assert header.length == len(data)
    assert AuxHeader.decode(data + b"rest") == (header, b"rest")


def test_aux_header_carries_the_level_and_reserved_bits_it_was_sent_with():
    header, rest = AuxHeader.decode(unhex("ed 05 00 00 00") + bytes(8) + b"\x01")
    assert (header.level, header.key_id, header.reserved, header.key_seq) == (
        5,
        KeyId.NETWORK,
        3,
        1,
    )
    assert header.encode() == unhex("ed 05 00 00 00") + bytes(8) + b"\x01"
    assert header.encode(level=0)[0] == 0xE8
    assert rest == b""


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ("", "needs 5 bytes, got 0"),
        ("28 01 00 00", "needs 5 bytes, got 4"),
        ("20 01 00 00 00 04 03 02", "source address at offset 5 truncated"),
        ("08 01 00 00 00", "key sequence number at offset 5 missing"),
        ("28 01 00 00 00 04 03 02 01 00 4b 12 00", "key sequence number at offset 13 missing"),
    ],
)
def test_aux_header_errors_name_the_field_and_offset(data, where):
    with pytest.raises(InvalidSecurityHeader, match=where):
        AuxHeader.decode(unhex(data))


def test_nonce_is_source_counter_and_control_with_the_real_level():
    """ZB 4.5.2.2: EUI-64 and counter little-endian, then the control byte with level 5."""
    header = AuxHeader(KeyId.NETWORK, 0x11223344, TC, 0)
    assert nonce(header, TC) == unhex("04 03 02 01 00 4b 12 00 44 33 22 11 2d")
    assert nonce(header, TC, level=0)[-1] == 0x28


def test_aux_header_refuses_values_that_do_not_fit():
    for bad in (
        lambda: AuxHeader(KeyId.DATA, 1 << 32),
        lambda: AuxHeader(KeyId.DATA, 0, 1 << 64),
        lambda: AuxHeader(KeyId.NETWORK, 0),  # no key sequence number
        lambda: AuxHeader(KeyId.DATA, 0, None, 1),  # key sequence number without network key
        lambda: AuxHeader(KeyId.NETWORK, 0, None, 256),
        lambda: AuxHeader(KeyId.DATA, 0, level=8),
    ):
        with pytest.raises(ValueError, match=r"\w"):
            bad()


# -- derived keys (ZB 4.5.3) -------------------------------------------------------------------


def _hmac_by_hand(key: bytes, byte: int) -> bytes:
    """HMAC-MMO as Wireshark's zbee_sec_key_hash spells it: H((K^opad) || H((K^ipad) || x))."""
    inner = mmo_hash(bytes(k ^ 0x36 for k in key) + bytes((byte,)))
    return mmo_hash(bytes(k ^ 0x5C for k in key) + inner)


def test_key_transport_and_key_load_keys_are_hmac_mmo_over_0x00_and_0x02():
    assert key_transport_key(LINK_KEY) == _hmac_by_hand(LINK_KEY, 0x00)
    assert key_load_key(LINK_KEY) == _hmac_by_hand(LINK_KEY, 0x02)
    assert len({key_transport_key(LINK_KEY), key_load_key(LINK_KEY), LINK_KEY}) == 3
    with pytest.raises(ValueError, match="16 bytes"):
        key_transport_key(LINK_KEY[:15])


# -- NWK -----------------------------------------------------------------------------------------


def test_nwk_round_trip_sets_the_security_bit_and_sends_level_zero():
    frame = secured_nwk(counter=42)
    assert frame[:2] == bytes((NWK_HEADER[0], NWK_HEADER[1] | 0x02))
    assert frame[2 : len(NWK_HEADER)] == NWK_HEADER[2:]
    assert frame[len(NWK_HEADER)] == 0x28  # network key, extended nonce, level 0
    assert PAYLOAD not in frame
    result = unsecure_nwk(frame, {0: NWK_KEY})
    assert (result.payload, result.source, result.aux.counter) == (PAYLOAD, TC, 42)
    assert len(frame) == len(NWK_HEADER) + 14 + len(PAYLOAD) + 4


def test_nwk_empty_payload_round_trips():
    assert unsecure_nwk(secured_nwk(payload=b""), {0: NWK_KEY}).payload == b""


def test_wrong_network_key_is_bad_mic():
    with pytest.raises(BadMic, match="MIC does not verify") as caught:
        unsecure_nwk(secured_nwk(), {0: OTHER_KEY})
    assert caught.value.reason == "bad MIC"
    assert NWK_KEY.hex() not in str(caught.value).lower()
    assert OTHER_KEY.hex() not in str(caught.value).lower()


def test_unknown_key_sequence_number_is_unknown_key():
    with pytest.raises(UnknownKey, match="sequence number 0") as caught:
        unsecure_nwk(secured_nwk(), {1: NWK_KEY})
    assert caught.value.reason == "unknown key"


def _flip(frame: bytes, bit: int) -> bytes:
    out = bytearray(frame)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_every_flipped_bit_is_refused_except_the_level_the_receiver_overwrites():
    """ZB 4.3.1.2 step 2: the receiver writes its own level over the received one, so the
    three level bits are not protected (Wireshark does the same); any other flipped bit is
    refused with a documented error, a flip in the payload or MIC with BadMic."""
    frame = secured_nwk()
    control = len(NWK_HEADER)
    level_bits = {control * 8 + bit for bit in range(3)}
    for bit in range(len(frame) * 8):
        flipped = _flip(frame, bit)
        if bit in level_bits:
            assert unsecure_nwk(flipped, {0: NWK_KEY}).payload == PAYLOAD
            continue
        with pytest.raises((SecurityFailure, InvalidFrame)):
            unsecure_nwk(flipped, {0: NWK_KEY})
        if bit >= (control + 14) * 8:
            with pytest.raises(BadMic):
                unsecure_nwk(flipped, {0: NWK_KEY})


def test_replayed_and_older_counters_are_stale_and_a_forgery_does_not_move_the_counter():
    counters = IncomingCounters()
    keys = {0: NWK_KEY}
    assert unsecure_nwk(secured_nwk(5), keys, counters=counters).aux.counter == 5
    assert counters.expected(TC) == 6
    for stale in (5, 4, 0):
        with pytest.raises(StaleFrameCounter, match=f"frame counter {stale} from") as caught:
            unsecure_nwk(secured_nwk(stale), keys, counters=counters)
        assert caught.value.reason == "stale frame counter"
    forged = _flip(secured_nwk(1000), -1)
    with pytest.raises(BadMic):
        unsecure_nwk(forged, keys, counters=counters)
    assert counters.expected(TC) == 6  # the forgery did not advance it
    assert unsecure_nwk(secured_nwk(9), keys, counters=counters).aux.counter == 9
    assert (counters.expected(TC), counters.expected(DEVICE), len(counters)) == (10, None, 1)


def test_incoming_counters_check_and_accept():
    counters = IncomingCounters()
    counters.check(DEVICE, 0)
    counters.accept(DEVICE, 0xFFFFFFFF)
    with pytest.raises(StaleFrameCounter):
        counters.check(DEVICE, 0xFFFFFFFF)
    with pytest.raises(StaleFrameCounter):
        counters.accept(DEVICE, 3)
    assert repr(counters) == "IncomingCounters(1 senders)"


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (NWK_HEADER + bytes(20), "security bit not set"),
        (secured_nwk()[: len(NWK_HEADER) + 14 + 3], "fewer than the 4-byte MIC"),
        (
            bytes((NWK_HEADER[0], NWK_HEADER[1] | 0x02))
            + NWK_HEADER[2:]
            + AuxHeader(KeyId.DATA, 1, TC).encode()
            + bytes(8),
            "key data; NWK security uses the network key",
        ),
        (
            bytes((NWK_HEADER[0], NWK_HEADER[1] | 0x02))
            + NWK_HEADER[2:]
            + AuxHeader(KeyId.NETWORK, 1, None, 0).encode()
            + bytes(8),
            "without the extended nonce",
        ),
    ],
)
def test_nwk_frames_that_cannot_be_processed_are_invalid_frame(frame, error):
    with pytest.raises(InvalidFrame, match=error):
        unsecure_nwk(frame, {0: NWK_KEY})


def test_secure_refuses_an_exhausted_counter_and_a_header_of_the_wrong_length():
    """ZB 4.3.1.1 step 1: a counter of 0xFFFFFFFF secures nothing more."""
    with pytest.raises(ValueError, match="exhausted"):
        secured_nwk(counter=0xFFFFFFFF)
    with pytest.raises(ValueError, match="not exactly one NWK header"):
        secure_nwk(NWK_HEADER + b"\x00", b"", key=NWK_KEY, key_seq=0, counter=1, source=TC)
    with pytest.raises(ValueError, match="not exactly one APS header"):
        secure_aps(APS_HEADER + b"\x00", b"", link_key=LINK_KEY, counter=1, source=TC)
    with pytest.raises(ValueError, match="network key"):
        secure_aps(APS_HEADER, b"", link_key=LINK_KEY, counter=1, source=TC, key_id=KeyId.NETWORK)


# -- APS -----------------------------------------------------------------------------------------


def secured_command(key_id: KeyId, *, extended_nonce: bool = True) -> bytes:
    """An APS command frame from the Trust Center, counter 7, secured with ``key_id``."""
    return secure_aps(
        APS_COMMAND_HEADER,
        PAYLOAD,
        link_key=LINK_KEY,
        counter=7,
        source=TC,
        key_id=key_id,
        extended_nonce=extended_nonce,
    )


@pytest.mark.parametrize("key_id", [KeyId.DATA, KeyId.KEY_TRANSPORT, KeyId.KEY_LOAD])
@pytest.mark.parametrize("extended_nonce", [True, False])
def test_aps_round_trip_with_each_key(key_id, extended_nonce):
    secured = secured_command(key_id, extended_nonce=extended_nonce)
    assert secured[0] == APS_COMMAND_HEADER[0] | 0x20
    assert AuxHeader.decode(secured[2:])[0].key_id == key_id
    given = None if extended_nonce else TC
    result = unsecure_aps(secured, LINK_KEY, source=given)
    assert (result.payload, result.source, result.aux.key_id) == (PAYLOAD, TC, key_id)
    with pytest.raises(BadMic):
        unsecure_aps(secured, OTHER_KEY, source=given)


def test_transport_key_command_decrypts_by_hand_with_the_derived_key():
    """Take apart a frame secured with the key-transport key and run CCM* on it directly:
    key = HMAC-MMO(link key, 0x00), nonce = source, counter, control 0x35 (level 5 patched in),
    a = APS header + auxiliary header with that control byte."""
    secured = secured_command(KeyId.KEY_TRANSPORT)
    aux = unhex("30 07 00 00 00 04 03 02 01 00 4b 12 00")  # as sent: level 0
    assert secured[2:15] == aux
    patched = bytes((0x35,)) + aux[1:]
    plain = ccm_decrypt(
        _hmac_by_hand(LINK_KEY, 0x00),
        TC.to_bytes(8, "little") + (7).to_bytes(4, "little") + b"\x35",
        bytes((APS_COMMAND_HEADER[0] | 0x20,)) + APS_COMMAND_HEADER[1:] + patched,
        secured[15:],
    )
    assert plain == PAYLOAD


def test_aps_without_a_key_or_a_source_is_unknown_key():
    secured = secure_aps(
        APS_HEADER, PAYLOAD, link_key=LINK_KEY, counter=1, source=TC, extended_nonce=False
    )
    with pytest.raises(UnknownKey, match="no sender given"):
        unsecure_aps(secured, LINK_KEY)
    with pytest.raises(UnknownKey, match="no link key shared with 00124b0001020304"):
        unsecure_aps(secured, None, source=TC)
    with pytest.raises(BadMic):  # a wrong sender gives a wrong nonce
        unsecure_aps(secured, LINK_KEY, source=DEVICE)
    network_secured = (
        bytes((APS_HEADER[0] | 0x20,))
        + APS_HEADER[1:]
        + AuxHeader(KeyId.NETWORK, 1, TC, 0).encode()
        + bytes(8)
    )
    with pytest.raises(UnknownKey, match="network key"):
        unsecure_aps(network_secured, LINK_KEY)


def test_aps_replay_is_stale():
    counters = IncomingCounters()
    secured = secure_aps(APS_HEADER, PAYLOAD, link_key=LINK_KEY, counter=3, source=TC)
    unsecure_aps(secured, LINK_KEY, counters=counters)
    with pytest.raises(StaleFrameCounter):
        unsecure_aps(secured, LINK_KEY, counters=counters)


def test_aps_frame_without_security_is_invalid():
    with pytest.raises(InvalidFrame, match="security bit not set"):
        unsecure_aps(APS_HEADER + bytes(20), LINK_KEY, source=TC)


# -- header lengths ------------------------------------------------------------------------------


def _nwk(dst_ieee: t.EUI64 | None = None, src_ieee: t.EUI64 | None = None) -> bytes:
    header = frames.NwkHeader(0x1234, 0x0000, 30, 1, dst_ieee=dst_ieee, src_ieee=src_ieee)
    return frames.encode_nwk(header, b"")


@pytest.mark.parametrize(
    ("header", "length"),
    [
        (_nwk(), 8),
        (_nwk(src_ieee=t.EUI64(bytes(range(8)))), 16),
        (_nwk(dst_ieee=t.EUI64(bytes(8)), src_ieee=t.EUI64(bytes(8))), 24),
        (unhex("09 01 34 12 00 00 1e 01") + b"\x05", 9),  # multicast control
        (unhex("09 04 34 12 00 00 1e 01") + unhex("02 00 11 11 22 22"), 14),  # source route
    ],
)
def test_nwk_header_length(header, length):
    assert nwk_header_length(header + b"payload") == length


@pytest.mark.parametrize(
    ("header", "length"),
    [
        (APS_HEADER, 8),
        (APS_COMMAND_HEADER, 2),
        (unhex("0c 01 00 00 07 09 01 01 05"), 9),  # group address 0x0001, no endpoint
        (unhex("02 01 00 07 09 01 01 05"), 8),  # acknowledgement of a data frame
        (unhex("12 05"), 2),  # acknowledgement of a command
        (unhex("80 01 00 07 09 01 01 05 00"), 9),  # extended header, not fragmented
        (unhex("80 01 00 07 09 01 01 05 01 03"), 10),  # first fragment with block number
        (unhex("82 01 00 07 09 01 01 05 02 03 ff"), 11),  # fragment ack with bitfield
    ],
)
def test_aps_header_length(header, length):
    assert aps_header_length(header + b"payload") == length


@pytest.mark.parametrize(
    ("length_of", "data", "error"),
    [
        (nwk_header_length, "08 02 34 12", "needs 8 bytes, got 4"),
        (nwk_header_length, "0b 00 34 12 00 00 1e 01", "inter-PAN"),
        (nwk_header_length, "04 00 34 12 00 00 1e 01", "protocol version 1"),
        (nwk_header_length, "08 10 34 12 00 00 1e 01 00 00", "needs 16 bytes, got 10"),
        (nwk_header_length, "08 04 34 12 00 00 1e 01", "source route subframe at offset 8"),
        (aps_header_length, "", "APS header missing"),
        (aps_header_length, "03 00", "inter-PAN"),
        (aps_header_length, "00 01 00 07", "needs 8 bytes, got 4"),
        (aps_header_length, "81 05", "extended frame control at offset 2 missing"),
    ],
)
def test_header_length_errors(length_of, data, error):
    with pytest.raises(InvalidFrame, match=error):
        length_of(unhex(data))


def test_errors_are_the_decode_error_family():
    for cls in (BadMic, StaleFrameCounter, UnknownKey, InvalidSecurityHeader):
        assert issubclass(cls, DecodeError)
    assert issubclass(InvalidSecurityHeader, InvalidFrame)
    assert issubclass(BadMic, SecurityFailure)


def test_reprs_show_no_payload_and_no_key():
    result = unsecure_nwk(secured_nwk(), {0: NWK_KEY})
    text = repr(result)
    assert "00124b0001020304" in text
    assert f"payload={len(PAYLOAD)} bytes" in text
    assert PAYLOAD.hex() not in text
    assert NWK_KEY.hex() not in text.lower()
    assert repr(result.aux) == (
        "AuxHeader(key_id=NETWORK, counter=1, source=00124b0001020304, key_seq=0, level=0)"
    )
