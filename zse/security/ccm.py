"""AES-128 CCM*, and the keys ZigBee derives from a link key.

CCM* is CCM (NIST SP 800-38C) with a 13-byte nonce (so a 2-byte length field, L = 2) and a
MIC of 4, 8 or 16 bytes, or none (ZB A.1, A.2; the MIC length of each security level is
:data:`MIC_LENGTHS`): ``cryptography``'s ``AESCCM`` computes it, and AES-CTR from counter 1
the encryption without a MIC. The ciphertext is the encrypted payload followed by the
encrypted MIC, which is what ZigBee sends. L = 2 bounds the payload to
:data:`MAX_MESSAGE_LENGTH` (65535) bytes: :func:`ccm_encrypt` refuses a longer one with a
:class:`ValueError`, and :func:`ccm_decrypt` answers ``None`` for a longer ciphertext, which no
CCM* sender can have made. ZigBee frame security uses level 5, ENC-MIC-32
(:mod:`zse.security.frames`); the other lengths are for the spec's vectors and other users.

The key-transport key and the key-load key are HMAC-MMO of the link key over one byte, 0x00
and 0x02 (ZB 4.5.3, the keyed hash function for message authentication); Wireshark's
packet-zbee-security.c (``zbee_sec_key_hash`` called with 0x00 and 0x02) derives them the same
way.
"""

from __future__ import annotations

import functools

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from zse.installcode._mmo import hmac_mmo

__all__ = [
    "KEY_LENGTH",
    "MAX_MESSAGE_LENGTH",
    "MIC_LENGTHS",
    "ccm_decrypt",
    "ccm_encrypt",
    "key_load_key",
    "key_transport_key",
]

KEY_LENGTH = 16
#: The longest payload CCM* secures: its length field is L = 2 octets (ZB A.1, A.2.1).
MAX_MESSAGE_LENGTH = 0xFFFF
#: The MIC length in bytes of each security level 0-7 (ZB Table 4.38 / 4.6)
MIC_LENGTHS = (0, 4, 8, 16, 0, 4, 8, 16)
_TAG_LENGTH = 4  # ENC-MIC-32, the level of ZigBee frame security
_NONCE_LENGTH = 13
_CTR_FLAGS = b"\x01"  # L - 1 = 1: the flags octet of the counter blocks (ZB A.2.3)
_KEY_TRANSPORT_INPUT = b"\x00"
_KEY_LOAD_INPUT = b"\x02"


def _check_key(key: bytes) -> bytes:
    if len(key) != KEY_LENGTH:
        raise ValueError(f"a ZigBee key is 16 bytes, got {len(key)}")
    return bytes(key)


@functools.lru_cache(maxsize=256)
def _cipher(key: bytes, mic_length: int = _TAG_LENGTH) -> AESCCM:
    """One ``AESCCM`` per key and MIC length (building one costs more than a frame's CCM*);
    the cache is bounded and holds keys only in this process's memory."""
    return AESCCM(key, tag_length=mic_length)


def _check_mic_length(mic_length: int) -> int:
    if mic_length not in (0, 4, 8, 16):
        raise ValueError(f"a CCM* MIC is 0, 4, 8 or 16 bytes, not {mic_length}")
    return mic_length


def _ctr(key: bytes, nonce: bytes, data: bytes) -> bytes:
    """CCM* encryption without a MIC (levels 0 and 4): AES-CTR from counter block A_1."""
    if len(nonce) != _NONCE_LENGTH:
        raise ValueError(f"a CCM* nonce is 13 bytes, got {len(nonce)}")
    counter = _CTR_FLAGS + bytes(nonce) + b"\x00\x01"
    encryptor = Cipher(algorithms.AES(key), modes.CTR(counter)).encryptor()
    return encryptor.update(bytes(data)) + encryptor.finalize()


def ccm_encrypt(key: bytes, nonce: bytes, a: bytes, m: bytes, *, mic_length: int = 4) -> bytes:
    """CCM* encryption (ZB A.2): ``m`` encrypted, then the encrypted ``mic_length``-byte MIC
    over ``a`` (authenticated only) and ``m``; 4 bytes (ENC-MIC-32) unless told."""
    key = _check_key(key)
    if len(m) > MAX_MESSAGE_LENGTH:
        raise ValueError(
            f"CCM* secures at most {MAX_MESSAGE_LENGTH} bytes (L = 2), got {len(m)} bytes"
        )
    if _check_mic_length(mic_length) == 0:
        return _ctr(key, nonce, m)
    return _cipher(key, mic_length).encrypt(nonce, m, a)


def ccm_decrypt(
    key: bytes, nonce: bytes, a: bytes, c: bytes, *, mic_length: int = 4
) -> bytes | None:
    """The payload of ``c`` (ciphertext + ``mic_length``-byte MIC), or ``None`` if the MIC
    does not verify (ZB A.3) or ``c`` is longer than CCM* makes. With no MIC nothing is
    verified: ``c`` is decrypted."""
    key = _check_key(key)
    mic_length = _check_mic_length(mic_length)
    if not mic_length <= len(c) <= MAX_MESSAGE_LENGTH + mic_length:
        return None
    if mic_length == 0:
        return _ctr(key, nonce, c)
    try:
        return _cipher(key, mic_length).decrypt(nonce, c, a)
    except InvalidTag:
        return None


def key_transport_key(link_key: bytes) -> bytes:
    """The key-transport key of ``link_key``: HMAC-MMO(link key, 0x00) (ZB 4.5.3)."""
    return _derived(_check_key(link_key), _KEY_TRANSPORT_INPUT)


def key_load_key(link_key: bytes) -> bytes:
    """The key-load key of ``link_key``: HMAC-MMO(link key, 0x02) (ZB 4.5.3)."""
    return _derived(_check_key(link_key), _KEY_LOAD_INPUT)


@functools.lru_cache(maxsize=256)
def _derived(link_key: bytes, data: bytes) -> bytes:
    """HMAC-MMO(link key, data), kept per link key (a capture derives it for every frame)."""
    return hmac_mmo(link_key, data)
