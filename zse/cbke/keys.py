"""CBKE key agreement and key confirmation (SE 07-5356 Annex C.4; SEC 1 v2 section 3.4).

The safe entry points over :mod:`zse.cbke.hazmat`: keys travel as bytes (private keys as
big-endian integers of the suite's scalar size, public keys as SEC1 compressed points), every
received point is fully validated, and bad input raises :class:`~zse.errors.InvalidPoint`
(a ``ValueError``).

- :func:`ecmqv`: SEC1 ECMQV with the cofactor; the shared secret Z is the x-coordinate of
  ``h*s*(QE' + avf(QE')*QS')`` as an octet string of ``ceil(m/8)`` bytes (21 / 36).
- :func:`derive_keys`: the SE key derivation, ``MacKey = MMO(Z || 00000001)``,
  ``KeyData = MMO(Z || 00000002)`` (C.4.1.4, the KDF with AES-MMO).
- :func:`confirmation_macs`: ``MACU = HMAC-MMO(MacKey, 02 || U || V || QEU || QEV)`` and
  ``MACV = HMAC-MMO(MacKey, 03 || V || U || QEV || QEU)`` (C.4.1.5), U being the initiator.
"""

from __future__ import annotations

import secrets

from zse.cbke.hazmat import Point
from zse.cbke.suites import SUITES, Suite
from zse.errors import InvalidEui64, InvalidPoint
from zse.installcode import hmac_mmo, mmo_hash

__all__ = [
    "confirmation_macs",
    "derive_keys",
    "ecmqv",
    "ecmqv_points",
    "generate_key_pair",
    "private_scalar",
    "public_key_from_private",
]

_MACU_TAG = b"\x02"
_MACV_TAG = b"\x03"
#: Sizes of Z (a field element) and of compressed points, over the suites (C.4.1.3).
_Z_SIZES = frozenset((s.curve.m + 7) // 8 for s in SUITES.values())
_POINT_SIZES = frozenset(s.public_key_size for s in SUITES.values())
_MAC_KEY_SIZE = 16


def _octets(value: object, sizes: frozenset[int], what: str) -> bytes:
    """``value`` as bytes if it is bytes-like of one of ``sizes``; else InvalidPoint."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidPoint(f"{what} must be bytes, not {type(value).__name__}")
    data = bytes(value)
    if len(data) not in sizes:
        expected = " or ".join(str(size) for size in sorted(sizes))
        raise InvalidPoint(f"{what} must be {expected} bytes, got {len(data)}")
    return data


def private_scalar(suite: Suite, private_key: bytes, what: str = "private key") -> int:
    """The private key as an integer, checked: ``scalar_size`` bytes, in ``[1, n-1]``."""
    if not isinstance(private_key, bytes | bytearray | memoryview):
        raise InvalidPoint(f"{suite.name}: {what} must be bytes, not {type(private_key).__name__}")
    private_key = bytes(private_key)
    if len(private_key) != suite.private_key_size:
        raise InvalidPoint(
            f"{suite.name}: {what} must be {suite.private_key_size} bytes, got {len(private_key)}"
        )
    d = int.from_bytes(private_key)
    if not 0 < d < suite.curve.n:
        raise InvalidPoint(f"{suite.name}: {what} is not in [1, n-1]")
    return d


def public_key_from_private(suite: Suite, private_key: bytes) -> bytes:
    """``d*G`` SEC1-compressed, for a private key of the suite (SEC 1 3.2.1)."""
    curve = suite.curve
    return curve.encode_point(curve.mul_base(private_scalar(suite, private_key)))


def generate_key_pair(suite: Suite, private_key: bytes | None = None) -> tuple[bytes, bytes]:
    """A key pair ``(private, public)``; the private key from :mod:`secrets` unless given."""
    if private_key is None:
        d = 1 + secrets.randbelow(suite.curve.n - 1)
        private_key = d.to_bytes(suite.private_key_size)
    return bytes(private_key), public_key_from_private(suite, private_key)


def _avf(x: int, half: int) -> int:
    """SEC 1 3.4 associate value function: ``(x mod 2^half) + 2^half``."""
    return (x & ((1 << half) - 1)) | (1 << half)


def _decode(suite: Suite, public_key: bytes, what: str) -> Point:
    try:
        return suite.curve.decode_point(public_key)
    except InvalidPoint as exc:
        raise InvalidPoint(f"{what}: {exc}") from None


def ecmqv(
    suite: Suite,
    static_private: bytes,
    ephemeral_private: bytes,
    peer_static_public: bytes,
    peer_ephemeral_public: bytes,
) -> bytes:
    """The ECMQV shared secret Z (SEC 1 3.4 with the cofactor, SE C.4.1.3).

    ``s = d_e + avf(Q_e) * d_s mod n`` (our keys), ``P = h*s*(Q_e' + avf(Q_e')*Q_s')`` (the
    peer's), ``Z = x_P``. Both peer keys are validated; a result at infinity raises
    :class:`~zse.errors.InvalidPoint`.
    """
    ds = private_scalar(suite, static_private, "static private key")
    de = private_scalar(suite, ephemeral_private, "ephemeral private key")
    qs_peer = _decode(suite, peer_static_public, "peer static public key")
    qe_peer = _decode(suite, peer_ephemeral_public, "peer ephemeral public key")
    own_ephemeral_x = suite.curve.mul_base(de).x
    return ecmqv_points(
        suite, ds, de, own_ephemeral_x=own_ephemeral_x, qs_peer=qs_peer, qe_peer=qe_peer
    )


def ecmqv_points(
    suite: Suite, ds: int, de: int, *, own_ephemeral_x: int, qs_peer: Point, qe_peer: Point
) -> bytes:
    """:func:`ecmqv` on already validated inputs (our ephemeral key's x, peer points).

    For callers that hold these already (the state machine reconstructed the peer's static
    key itself and made our ephemeral pair), saving three scalar multiplications.
    """
    curve = suite.curve
    n = curve.n
    half = (n.bit_length() + 1) // 2
    s = (de + _avf(own_ephemeral_x, half) * ds) % n
    hs = curve.h * s % n
    p = curve.mul_add(hs, qe_peer, hs * _avf(qe_peer.x, half) % n, qs_peer)
    if p.infinity:
        raise InvalidPoint(f"{suite.name}: ECMQV produced the point at infinity")
    return p.x.to_bytes((curve.m + 7) // 8)


def derive_keys(z: bytes) -> tuple[bytes, bytes]:
    """``(MacKey, KeyData)``: ``MMO(Z || 00000001)`` and ``MMO(Z || 00000002)`` (SE C.4.1.4).

    ``z`` must be a suite's Z size (21 or 36 bytes), else :class:`~zse.errors.InvalidPoint`.
    """
    z = _octets(z, _Z_SIZES, "shared secret Z")
    return mmo_hash(z + b"\x00\x00\x00\x01"), mmo_hash(z + b"\x00\x00\x00\x02")


def _eui64(value: bytes, what: str) -> bytes:
    octets = bytes(value) if isinstance(value, bytes | bytearray | memoryview) else None
    if octets is None or len(octets) != 8:
        raise InvalidEui64(f"{what} must be the 8 EUI-64 octets as in certificates")
    return octets


def confirmation_macs(
    mac_key: bytes,
    initiator_eui64: bytes,
    responder_eui64: bytes,
    initiator_ephemeral_public: bytes,
    responder_ephemeral_public: bytes,
) -> tuple[bytes, bytes]:
    """``(MACU, MACV)`` of SE C.4.1.5: HMAC-MMO with the MacKey over the tagged identities.

    EUI-64s are the 8 octets that appear in certificates (most significant first). The MacKey
    must be 16 bytes and both ephemeral keys compressed points of one suite (22 or 37 bytes,
    not decoded here): else :class:`~zse.errors.InvalidPoint` (bad EUI-64s:
    :class:`~zse.errors.InvalidEui64`).
    """
    mac_key = _octets(mac_key, frozenset((_MAC_KEY_SIZE,)), "MacKey")
    u = _eui64(initiator_eui64, "initiator EUI-64")
    v = _eui64(responder_eui64, "responder EUI-64")
    qeu = _octets(initiator_ephemeral_public, _POINT_SIZES, "initiator ephemeral public key")
    qev = _octets(responder_ephemeral_public, _POINT_SIZES, "responder ephemeral public key")
    if len(qeu) != len(qev):
        raise InvalidPoint(
            f"ephemeral public keys of different suites ({len(qeu)} and {len(qev)} bytes)"
        )
    macu = hmac_mmo(mac_key, _MACU_TAG + u + v + qeu + qev)
    macv = hmac_mmo(mac_key, _MACV_TAG + v + u + qev + qeu)
    return macu, macv
