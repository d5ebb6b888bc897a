"""AES-MMO and HMAC-MMO against the ZigBee specification's vectors (05-3474 Annex C)."""

from __future__ import annotations

import pytest
import zigpy.util
from hypothesis import given
from hypothesis import strategies as st

from zse.installcode import MmoHash, hmac_mmo, mmo_hash


def seq(n: int) -> bytes:
    return bytes(i & 0xFF for i in range(n))


def message_of(name: str) -> bytes:
    if name.startswith("seq("):
        return seq(int(name[4:-1]))
    return bytes.fromhex(name)


def test_vector_file_covers_both_padding_forms(mmo_vectors):
    lengths = {len(message_of(name)) for name in mmo_vectors["mmo_hash"]}
    # 8191 bytes is the last 16-bit-length message, 8192 the first 32-bit one.
    assert {1, 16, 8191, 8192, 8201, 8202} <= lengths


def test_mmo_hash_vectors(mmo_vectors):
    for name, expected in mmo_vectors["mmo_hash"].items():
        assert mmo_hash(message_of(name)).hex().upper() == expected, name


@pytest.mark.parametrize("chunk", [1, 7, 16, 17, 1000, 9000])
def test_incremental_hash_vectors(mmo_vectors, chunk):
    for name, expected in mmo_vectors["mmo_hash"].items():
        data = message_of(name)
        h = MmoHash()
        for i in range(0, len(data), chunk):
            h.update(data[i : i + chunk])
        assert h.hexdigest().upper() == expected, (name, chunk)


def test_digest_does_not_consume_state(mmo_vectors):
    expected = mmo_vectors["mmo_hash"]
    h = MmoHash(bytes.fromhex("C0"))
    assert h.digest().hex().upper() == expected["C0"]
    copy = h.copy()
    h.update(bytes.fromhex("C1C2C3C4C5C6C7C8C9CACBCCCDCECF"))
    assert h.digest().hex().upper() == expected["C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF"]
    assert copy.digest().hex().upper() == expected["C0"]
    assert MmoHash.digest_size == 16


def test_zigpy_hash_is_wrong_from_8192_bytes(mmo_vectors):
    """The reason zse carries its own MMO: zigpy lacks the 32-bit length form."""
    expected = mmo_vectors["mmo_hash"]["seq(8192)"]
    assert bytes(zigpy.util.aes_mmo_hash(seq(8192))).hex().upper() != expected
    assert mmo_hash(seq(8192)).hex().upper() == expected


@given(st.binary(max_size=600))
def test_agrees_with_zigpy_below_8192_bytes(data):
    assert mmo_hash(data) == bytes(zigpy.util.aes_mmo_hash(data))


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=6))
def test_incremental_equals_one_shot(data, cuts):
    h = MmoHash()
    start = 0
    for cut in sorted(cuts):
        h.update(data[start:cut])
        start = max(start, cut)
    h.update(data[start:])
    assert h.digest() == mmo_hash(data)


def test_message_too_long_is_a_value_error():
    h = MmoHash()
    h._length = (1 << 29) - 1  # one byte short of 2**32 bits
    with pytest.raises(ValueError, match="2\\*\\*32 bits"):
        h.update(b"\x00")
    assert h._length == (1 << 29) - 1  # state unchanged by the refused update


def test_hmac_mmo_vectors(mmo_vectors):
    for vector in mmo_vectors["hmac_mmo"]:
        mac = hmac_mmo(bytes.fromhex(vector["key"]), bytes.fromhex(vector["message"]))
        assert mac.hex().upper() == vector["mac"]


def test_hmac_long_key_is_hashed_first():
    key = bytes(range(32))
    assert hmac_mmo(key, b"m") == hmac_mmo(mmo_hash(key), b"m")
    assert hmac_mmo(key, b"m") != hmac_mmo(key[:16], b"m")
