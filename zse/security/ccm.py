"""AES-128 CCM* with a 4-byte MIC, and the keys ZigBee derives from a link key.

CCM* at security level ENC-MIC-32 is CCM (NIST SP 800-38C) with a 13-byte nonce (so a 2-byte
length field, L = 2) and a 4-byte tag (ZB A.1, A.2): ``cryptography``'s ``AESCCM`` with
``tag_length=4`` computes it. The ciphertext is the encrypted payload followed by the
encrypted MIC, which is what ZigBee sends.

The key-transport key and the key-load key are HMAC-MMO of the link key over one byte, 0x00
and 0x02 (ZB 4.5.3, the keyed hash function for message authentication); Wireshark's
packet-zbee-security.c (``zbee_sec_key_hash`` called with 0x00 and 0x02) derives them the same
way.
"""

from __future__ import annotations

import functools

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from zse.installcode._mmo import hmac_mmo

__all__ = ["KEY_LENGTH", "ccm_decrypt", "ccm_encrypt", "key_load_key", "key_transport_key"]

KEY_LENGTH = 16
_TAG_LENGTH = 4
_KEY_TRANSPORT_INPUT = b"\x00"
_KEY_LOAD_INPUT = b"\x02"


def _check_key(key: bytes) -> bytes:
    if len(key) != KEY_LENGTH:
        raise ValueError(f"a ZigBee key is 16 bytes, got {len(key)}")
    return bytes(key)


@functools.lru_cache(maxsize=256)
def _cipher(key: bytes) -> AESCCM:
    """One ``AESCCM`` per key (building one costs more than a frame's CCM*); the cache is
    bounded and holds keys only in this process's memory."""
    return AESCCM(key, tag_length=_TAG_LENGTH)


def ccm_encrypt(key: bytes, nonce: bytes, a: bytes, m: bytes) -> bytes:
    """CCM* encryption at ENC-MIC-32: ``m`` encrypted, then the encrypted 4-byte MIC over
    ``a`` (authenticated only) and ``m`` (ZB A.2)."""
    return _cipher(_check_key(key)).encrypt(nonce, m, a)


def ccm_decrypt(key: bytes, nonce: bytes, a: bytes, c: bytes) -> bytes | None:
    """The payload of ``c`` (ciphertext + MIC), or ``None`` if the MIC does not verify (ZB A.3)."""
    if len(c) < _TAG_LENGTH:
        return None
    try:
        return _cipher(_check_key(key)).decrypt(nonce, c, a)
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
