"""ECDSA on the CBKE curves with the AES-MMO digest (SE 07-5356 C.2; SEC 1 v2 sections 4.1.3-4.1.4).

Signatures are ``r || s``, each half big-endian in ``suite.private_key_size`` bytes (21 + 21 on
sect163k1, 36 + 36 on sect283k1). The message digest is AES-MMO (``zse.installcode.mmo_hash``,
16 bytes), turned into an integer per SEC 1 4.1.3 step 5: its leftmost ``bitlen(n)`` bits (all
128 bits on both curves, since n has 163 / 281 bits).

The nonce is deterministic, per RFC 6979 section 3.2, computed by python-ecdsa's
``ecdsa.rfc6979.generate_k`` with **HMAC-SHA-256** as the HMAC_DRBG hash and the AES-MMO digest
as ``h1`` (AES-MMO is not a hashlib hash and RFC 6979 needs an HMAC). Signatures are therefore
reproducible; another RFC 6979 implementation agrees with zse only if it makes the same choice.
Any valid signature verifies, whatever its nonce.

The arithmetic underneath is :mod:`zse.cbke.hazmat`, which is not constant-time.
"""

from __future__ import annotations

import hashlib

from ecdsa.rfc6979 import generate_k

from zse.cbke.hazmat import Curve, StaticPoint
from zse.cbke.keys import private_scalar
from zse.cbke.suites import Suite
from zse.installcode import mmo_hash

__all__ = ["VerifyingKey", "digest_to_int", "sign", "sign_digest", "verify", "verify_digest"]

#: The hash RFC 6979's HMAC_DRBG runs with (see the module docstring).
NONCE_HASH = hashlib.sha256


def digest_to_int(curve: Curve, digest: bytes) -> int:
    """SEC 1 4.1.3 step 5: the leftmost ``bitlen(n)`` bits of the digest as an integer."""
    e = int.from_bytes(digest)
    excess = 8 * len(digest) - curve.n.bit_length()
    return e >> excess if excess > 0 else e


def _digest(digest: bytes) -> bytes:
    """``digest`` as bytes: any bytes-like object, not empty (:class:`TypeError`,
    :class:`ValueError`)."""
    if not isinstance(digest, bytes | bytearray | memoryview):
        raise TypeError(f"a digest is bytes, not {type(digest).__name__}")
    if not digest:
        raise ValueError("a digest is at least one byte (AES-MMO's has 16)")
    return bytes(digest)


def sign_digest(suite: Suite, private_key: bytes, digest: bytes) -> bytes:
    """ECDSA signature ``r || s`` of a precomputed digest (SEC 1 4.1.3, RFC 6979 nonce).
    A private key that is not a valid scalar raises :class:`~zse.errors.InvalidPoint`; a
    digest that is not bytes-like :class:`TypeError`, an empty one :class:`ValueError`."""
    curve = suite.curve
    n = curve.n
    d = private_scalar(suite, private_key)
    digest = _digest(digest)
    e = digest_to_int(curve, digest)
    size = suite.private_key_size
    retry = 0
    while True:
        k: int = generate_k(  # type: ignore[no-untyped-call]
            n, d, NONCE_HASH, digest, retry_gen=retry
        )
        r = curve.mul_base(k).x % n
        s = pow(k, -1, n) * (e + r * d) % n
        if r and s:
            return r.to_bytes(size) + s.to_bytes(size)
        retry += 1  # pragma: no cover - probability ~2^-160


def sign(suite: Suite, private_key: bytes, message: bytes) -> bytes:
    """ECDSA signature ``r || s`` of ``message`` hashed with AES-MMO (SE C.2)."""
    return sign_digest(suite, private_key, mmo_hash(message))


class VerifyingKey:
    """A public key of ``suite`` decoded and validated once (SEC 1 3.2.2.1), with the
    precomputation of its multiples, for the many signatures of one partner (a device's
    Report Event Status, SE D.2.3.3.1.1.10-11): pass it to :func:`verify` instead of the
    key's bytes (any bytes-like object). :class:`~zse.errors.InvalidPoint` if the key fails
    validation, or is not bytes at all. Holds a few kilobytes (32 points on sect163k1): keep
    one per partner, as long as its key."""

    __slots__ = ("public_key", "static", "suite")

    def __init__(self, suite: Suite, public_key: bytes) -> None:
        self.suite = suite
        point = suite.curve.decode_point(public_key)  # checks the type before bytes() may fail
        self.public_key = bytes(public_key)
        self.static: StaticPoint = suite.curve.prepare(point)

    def __repr__(self) -> str:
        return f"<VerifyingKey {self.suite.curve.name} {self.public_key.hex()}>"


def verify_digest(
    suite: Suite, public_key: bytes | VerifyingKey, digest: bytes, signature: bytes
) -> bool:
    """Whether ``signature`` (``r || s``) is valid for ``digest`` (SEC 1 4.1.4).

    A malformed signature (not bytes-like, wrong length, r or s outside [1, n-1]) is simply
    invalid: False. A public key that fails point validation (or is not bytes) raises
    :class:`~zse.errors.InvalidPoint`; a :class:`VerifyingKey` was validated when it was made
    (and must be of ``suite``). A digest as for :func:`sign_digest`.
    """
    curve = suite.curve
    if isinstance(public_key, VerifyingKey):
        if public_key.suite is not suite:
            raise ValueError(f"a {public_key.suite.curve.name} key for a {curve.name} signature")
        prepared: StaticPoint | None = public_key.static
        q = public_key.static.point
    else:
        prepared = None
        q = curve.decode_point(public_key)
    digest = _digest(digest)
    signature = bytes(signature) if isinstance(signature, bytes | bytearray | memoryview) else b""
    if len(signature) != suite.signature_size:  # not bytes-like either
        return False
    n = curve.n
    size = suite.private_key_size
    r = int.from_bytes(signature[:size])
    s = int.from_bytes(signature[size:])
    if not (0 < r < n and 0 < s < n):
        return False
    e = digest_to_int(curve, digest)
    w = pow(s, -1, n)
    if prepared is not None:
        point = curve.mul_base_add(e * w % n, r * w % n, prepared)
    else:
        point = curve.mul_add(e * w % n, curve.generator, r * w % n, q)
    if point.infinity:
        return False
    return point.x % n == r


def verify(
    suite: Suite, public_key: bytes | VerifyingKey, message: bytes, signature: bytes
) -> bool:
    """Whether ``signature`` is a valid ECDSA signature of ``message`` (AES-MMO digest)."""
    return verify_digest(suite, public_key, mmo_hash(message), signature)
