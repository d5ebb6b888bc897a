"""ECDSA with the AES-MMO digest (SE C.2, SEC 1 4.1.3-4.1.4): nonce choice, malformed inputs.

The OpenSSL cross-checks (both directions) are in ``test_cbke_hazmat_openssl.py``.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from ecdsa.rfc6979 import generate_k
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.cbke import ecdsa
from zse.cbke.suites import SUITE1, SUITE2, Suite
from zse.errors import InvalidPoint
from zse.installcode import mmo_hash

SUITES = [SUITE1, SUITE2]
ids = pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.curve.name)


def _key(suite: Suite, seed: int) -> tuple[bytes, bytes]:
    curve = suite.curve
    d = random.Random(seed).randrange(1, curve.n)
    return d.to_bytes(suite.private_key_size), curve.encode_point(curve.mul_base(d))


def test_suite_constants() -> None:
    assert (SUITE1.id, SUITE1.certificate_size, SUITE1.public_key_size) == (1, 48, 22)
    assert (SUITE1.private_key_size, SUITE1.signature_size) == (21, 42)
    assert (SUITE2.id, SUITE2.certificate_size, SUITE2.public_key_size) == (2, 74, 37)
    assert (SUITE2.private_key_size, SUITE2.signature_size) == (36, 72)
    assert SUITE1.curve.name == "sect163k1"
    assert SUITE2.curve.name == "sect283k1"


@ids
def test_nonce_is_rfc6979_with_hmac_sha256_over_the_mmo_digest(suite: Suite) -> None:
    """Documented choice: r = x(k*G) mod n with k = RFC 6979 (SHA-256, h1 = AES-MMO digest)."""
    private, public = _key(suite, 1)
    message = b"Smart Energy DRLC event"
    signature = ecdsa.sign(suite, private, message)
    assert signature == ecdsa.sign(suite, private, message)  # deterministic
    curve = suite.curve
    k = generate_k(curve.n, int.from_bytes(private), hashlib.sha256, mmo_hash(message))
    r = int.from_bytes(signature[: suite.private_key_size])
    assert r == curve.mul_base(k).x % curve.n
    assert ecdsa.verify(suite, public, message, signature)
    assert not ecdsa.verify(suite, public, message + b"!", signature)


@ids
def test_digest_integer_is_the_whole_128_bit_digest(suite: Suite) -> None:
    digest = bytes(range(16))
    assert ecdsa.digest_to_int(suite.curve, digest) == int.from_bytes(digest)
    # SEC 1 4.1.3 step 5: a digest longer than n keeps its leftmost bitlen(n) bits
    long = bytes(range(64))
    excess = 8 * 64 - suite.curve.n.bit_length()
    assert ecdsa.digest_to_int(suite.curve, long) == int.from_bytes(long) >> excess


@ids
def test_malformed_signatures_are_invalid_not_errors(suite: Suite) -> None:
    private, public = _key(suite, 2)
    good = ecdsa.sign(suite, private, b"m")
    size = suite.private_key_size
    n = suite.curve.n
    r, s = good[:size], good[size:]
    zero = bytes(size)
    too_big = n.to_bytes(size)
    for bad in (
        b"",
        good[:-1],
        good + b"\x00",
        zero + s,
        r + zero,
        too_big + s,
        r + too_big,
        s + r,
    ):
        assert ecdsa.verify(suite, public, b"m", bad) is False
    assert ecdsa.verify(suite, public, b"m", good) is True


@ids
def test_bad_public_key_raises_invalid_point(suite: Suite) -> None:
    private, public = _key(suite, 3)
    signature = ecdsa.sign(suite, private, b"m")
    with pytest.raises(InvalidPoint, match="prefix"):
        ecdsa.verify(suite, b"\x05" + public[1:], b"m", signature)
    with pytest.raises(InvalidPoint, match="bytes"):
        ecdsa.verify(suite, public[:-1], b"m", signature)
    with pytest.raises(InvalidPoint, match="prefix"):  # validated when prepared
        ecdsa.VerifyingKey(suite, b"\x05" + public[1:])


def test_a_verifying_key_is_for_its_own_suite() -> None:
    private, public = _key(SUITE1, 5)
    key = ecdsa.VerifyingKey(SUITE1, public)
    signature = ecdsa.sign(SUITE1, private, b"m")
    assert ecdsa.verify(SUITE1, key, b"m", signature)
    assert public.hex() in repr(key)
    with pytest.raises(ValueError, match="a sect163k1 key for a sect283k1 signature"):
        ecdsa.verify(SUITE2, key, b"m", bytes(SUITE2.signature_size))


@ids
def test_bad_private_key_raises_invalid_point(suite: Suite) -> None:
    size = suite.private_key_size
    for bad in (bytes(size), suite.curve.n.to_bytes(size), b"\x01" * (size + 1), b""):
        with pytest.raises(InvalidPoint, match="private key"):
            ecdsa.sign(suite, bad, b"m")
    with pytest.raises(InvalidPoint, match="private key must be bytes, not str"):
        ecdsa.sign(suite, "01" * size, b"m")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(suite=st.sampled_from(SUITES), signature=st.binary(max_size=80), message=st.binary())
def test_garbage_signatures_never_raise(suite: Suite, signature: bytes, message: bytes) -> None:
    _, public = _key(suite, 4)
    assert ecdsa.verify(suite, public, message, signature) is False


def test_the_docstring_gives_the_curve_orders_bit_lengths() -> None:
    """zse.cbke.ecdsa said sect283k1's n has 282 bits; it has 281 (sect163k1's: 163)."""
    from zse.cbke import ecdsa  # noqa: PLC0415
    from zse.cbke.suites import SUITE1, SUITE2  # noqa: PLC0415

    lengths = f"{SUITE1.curve.n.bit_length()} / {SUITE2.curve.n.bit_length()} bits"
    assert lengths == "163 / 281 bits"
    assert ecdsa.__doc__ is not None
    assert lengths in " ".join(ecdsa.__doc__.split())
