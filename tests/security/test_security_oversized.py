"""Frames longer than CCM* secures (its 2-octet length field, ZB A.1: 65535 payload bytes):
a receiver gets InvalidFrame, as for any frame that does not parse, never a ValueError from
the cipher; ccm_decrypt answers None and ccm_encrypt refuses with a clear message."""

from __future__ import annotations

import pytest

from zse.errors import InvalidFrame
from zse.security import (
    KeyId,
    secure_aps,
    secure_nwk,
    split_interpan_aps,
    unsecure_aps,
    unsecure_nwk,
)
from zse.security.ccm import MAX_MESSAGE_LENGTH, ccm_decrypt, ccm_encrypt

KEY = bytes(range(16))
SOURCE = 0x00124B0001020304
NWK_HEADER = bytes.fromhex("0800341200001e01")
APS_HEADER = bytes.fromhex("0001000709010105")
NONCE = bytes(13)


def _grown(frame: bytes, payload: int) -> bytes:
    """``frame`` (a secured one with a 1-byte payload) with a ``payload``-byte one instead."""
    return frame[:-5] + bytes(payload) + frame[-4:]


@pytest.mark.parametrize("payload", [MAX_MESSAGE_LENGTH + 1, 70_000])
def test_an_oversized_secured_frame_is_an_invalid_frame(payload):
    nwk = secure_nwk(NWK_HEADER, b"x", key=KEY, key_seq=0, counter=1, source=SOURCE)
    with pytest.raises(InvalidFrame, match="more than CCM\\* secures"):
        unsecure_nwk(_grown(nwk, payload), {0: KEY})
    aps = secure_aps(APS_HEADER, b"y", link_key=KEY, counter=1, source=SOURCE)
    with pytest.raises(InvalidFrame, match="more than CCM\\* secures"):
        unsecure_aps(_grown(aps, payload), KEY)
    interpan = bytes.fromhex("2300080901") + bytes.fromhex("0001000000") + bytes(payload + 4)
    with pytest.raises(InvalidFrame, match="more than CCM\\* secures"):
        split_interpan_aps(interpan)


def test_the_longest_payload_ccm_star_secures_still_opens():
    aps = secure_aps(
        APS_HEADER,
        bytes(MAX_MESSAGE_LENGTH),
        link_key=KEY,
        counter=1,
        source=SOURCE,
        key_id=KeyId.DATA,
    )
    assert unsecure_aps(aps, KEY).payload == bytes(MAX_MESSAGE_LENGTH)


@pytest.mark.parametrize("mic_length", [0, 4, 8, 16])
def test_ccm_star_refuses_what_it_cannot_carry(mic_length):
    longest = ccm_encrypt(KEY, NONCE, b"a", bytes(MAX_MESSAGE_LENGTH), mic_length=mic_length)
    assert ccm_decrypt(KEY, NONCE, b"a", longest, mic_length=mic_length) == bytes(
        MAX_MESSAGE_LENGTH
    )
    too_long = longest + b"\x00"
    assert ccm_decrypt(KEY, NONCE, b"a", too_long, mic_length=mic_length) is None
    with pytest.raises(ValueError, match=r"at most 65535 bytes \(L = 2\), got 65536"):
        ccm_encrypt(KEY, NONCE, b"a", bytes(MAX_MESSAGE_LENGTH + 1), mic_length=mic_length)


def test_a_bad_mic_length_is_refused_before_anything_else():
    with pytest.raises(ValueError, match="0, 4, 8 or 16"):
        ccm_decrypt(KEY, NONCE, b"", b"", mic_length=5)
