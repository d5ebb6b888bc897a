"""CCM* with every MIC length (zse.security.ccm), against the ZigBee specification's vector and
a from-the-definition CCM* written here (ZB Annex A.2: CBC-MAC over B_0, the length of ``a``,
``a`` and ``m``; CTR with counter blocks A_i), over AES-ECB only.

The vector: ZigBee specification 05-3474 Annex C ("C.3 CCM* Mode Encryption and Authentication
Transformation" in the revision cited there; C.2 in older ones), ENC-MIC-64, as carried by
geoffrey-vl/c-crumbs, tests/aes-ccm.c, commit f0a67acecbb51b3591223a32f01ff311344295be
(public domain, Unlicense); the numbers only. ``cryptography``'s AESCCM gives the same.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.security import ENC_MIC_32, MIC_LENGTH
from zse.security.ccm import MIC_LENGTHS, ccm_decrypt, ccm_encrypt

KEY = bytes(range(0xC0, 0xD0))
NONCE = bytes.fromhex("A0A1A2A3A4A5A6A70302010006")
A = bytes(range(0x08))
M = bytes(range(0x08, 0x1F))
CIPHERTEXT = bytes.fromhex("1A55A36ABB6C610D066B3375649CEF10D4664ECAD854A8")
MIC = bytes.fromhex("0A895CC1D8FF9469")


def _ecb(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def reference_ccm_star(key: bytes, nonce: bytes, a: bytes, m: bytes, mic_length: int) -> bytes:
    """CCM* encryption as ZB A.2 defines it, block by block (L = 2)."""
    tag = b""
    if mic_length:
        flags = (0x40 if a else 0) | ((mic_length - 2) // 2) << 3 | 1
        blocks = bytes((flags,)) + nonce + len(m).to_bytes(2, "big")
        if a:
            added = len(a).to_bytes(2, "big") + a
            blocks += added + bytes(-len(added) % 16)
        blocks += m + bytes(-len(m) % 16)
        x = bytes(16)
        for i in range(0, len(blocks), 16):
            x = _ecb(key, bytes(p ^ q for p, q in zip(x, blocks[i : i + 16], strict=True)))
        tag = x[:mic_length]
    stream = b"".join(
        _ecb(key, b"\x01" + nonce + i.to_bytes(2, "big")) for i in range(len(m) // 16 + 2)
    )
    encrypted = bytes(p ^ q for p, q in zip(m, stream[16:], strict=False))
    return encrypted + bytes(p ^ q for p, q in zip(tag, stream[:16], strict=False))


def test_the_spec_vector_enc_mic_64() -> None:
    sealed = ccm_encrypt(KEY, NONCE, A, M, mic_length=8)
    assert sealed == CIPHERTEXT + MIC
    assert reference_ccm_star(KEY, NONCE, A, M, 8) == sealed
    assert AESCCM(KEY, tag_length=8).encrypt(NONCE, M, A) == sealed
    assert ccm_decrypt(KEY, NONCE, A, sealed, mic_length=8) == M
    assert ccm_decrypt(KEY, NONCE, A, sealed[:-1] + b"\x00", mic_length=8) is None
    assert ccm_decrypt(KEY, NONCE, A, sealed, mic_length=4) is None


def test_mic_lengths_of_the_levels() -> None:
    assert MIC_LENGTHS == (0, 4, 8, 16, 0, 4, 8, 16)


@pytest.mark.parametrize("mic_length", [0, 4, 8, 16])
def test_every_mic_length_against_the_reference(mic_length: int) -> None:
    sealed = ccm_encrypt(KEY, NONCE, A, M, mic_length=mic_length)
    assert sealed == reference_ccm_star(KEY, NONCE, A, M, mic_length)
    assert len(sealed) == len(M) + mic_length
    assert ccm_decrypt(KEY, NONCE, A, sealed, mic_length=mic_length) == M
    if mic_length:
        assert AESCCM(KEY, tag_length=mic_length).encrypt(NONCE, M, A) == sealed
    else:  # encryption only (level 4): the CCM ciphertext without its MIC
        assert sealed == CIPHERTEXT


def test_default_is_enc_mic_32_and_frame_security_stays_there() -> None:
    assert ccm_encrypt(KEY, NONCE, A, M) == ccm_encrypt(KEY, NONCE, A, M, mic_length=4)
    assert ENC_MIC_32 == 5
    assert MIC_LENGTHS[ENC_MIC_32] == MIC_LENGTH == 4


@pytest.mark.parametrize("mic_length", [1, 2, 6, 32, -4])
def test_other_lengths_are_refused(mic_length: int) -> None:
    with pytest.raises(ValueError, match="0, 4, 8 or 16 bytes"):
        ccm_encrypt(KEY, NONCE, A, M, mic_length=mic_length)
    with pytest.raises(ValueError, match="0, 4, 8 or 16 bytes"):
        ccm_decrypt(KEY, NONCE, A, M, mic_length=mic_length)


def test_short_input() -> None:
    assert ccm_decrypt(KEY, NONCE, A, b"\x00" * 7, mic_length=8) is None
    with pytest.raises(ValueError, match="13 bytes"):
        ccm_encrypt(KEY, NONCE[:-1], A, M, mic_length=0)


@settings(max_examples=60)
@given(
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=13, max_size=13),
    st.binary(max_size=40),
    st.binary(max_size=60),
    st.sampled_from([0, 4, 8, 16]),
)
def test_random_inputs_match_the_reference(
    key: bytes, nonce: bytes, a: bytes, m: bytes, mic_length: int
) -> None:
    sealed = ccm_encrypt(key, nonce, a, m, mic_length=mic_length)
    assert sealed == reference_ccm_star(key, nonce, a, m, mic_length)
    assert ccm_decrypt(key, nonce, a, sealed, mic_length=mic_length) == m


@settings(max_examples=60)
@given(st.binary(max_size=40), st.sampled_from([4, 8, 16]))
def test_garbage_ciphertext_fails_the_mic(c: bytes, mic_length: int) -> None:
    assert ccm_decrypt(KEY, NONCE, A, c, mic_length=mic_length) in (None, c[:-mic_length])
