"""ECQV implicit certificates as Smart Energy uses them (SE 07-5356 Annex C.4.2; SEC 4).

Suite 1 (48 bytes, sect163k1)::

    public reconstruction point (22) | subject EUI-64 (8) | issuer (8) | profile data (10)

Suite 2 (74 bytes, sect283k1)::

    type (1) | serial (8) | curve (1) | hash (1) | issuer (8) | valid from (5) | valid to (4) |
    subject EUI-64 (8) | key usage (1) | public reconstruction point (37)

EUI-64s are the 8 octets as printed (most significant first). Suite 2's checks: the type is
0x00 (no extensions), the curve 0x0D (sect283k1), the hash 0x08 (AES-MMO); the key usage byte
must have the key-agreement bit (0x08) for CBKE (:attr:`Suite2Certificate.allows_key_agreement`).
``valid_from`` is a 40-bit count of UTC seconds; ``valid_to`` counts seconds after it, and
0xFFFFFFFF means the certificate does not expire.

The subject's public key is never carried: it is reconstructed (SEC 4 3.5) as
``Q = e * P + Q_CA`` where ``P`` is the reconstruction point and ``e`` the AES-MMO hash of the
whole certificate read as a big-endian integer (reduced mod n).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

from zse.cbke.hazmat import Point
from zse.cbke.suites import SUITE1, SUITE2, SUITES, Suite
from zse.errors import InvalidCertificate, InvalidPoint
from zse.installcode import mmo_hash

_SEPARATORS = frozenset(" \t\r\n:-")
_HEX = frozenset("0123456789abcdefABCDEF")


def hex_bytes(
    value: object, name: str, error: type[InvalidCertificate] = InvalidCertificate
) -> bytes:
    """Bytes from a hex string (spaces, ``:`` and ``-`` allowed), or ``error``.

    The message says where the first bad character is, never the value: a mistyped private key
    pasted where a certificate belongs must not be echoed into a log.
    """
    if not isinstance(value, str):
        raise error(f"{name} must be a hex string")
    cleaned = "".join(ch for ch in value if ch not in _SEPARATORS)
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        bad = next((i for i, ch in enumerate(value) if ch not in _HEX | _SEPARATORS), None)
        where = (
            "an odd number of hex digits" if bad is None else f"a non-hex character at {bad + 1}"
        )
        raise error(f"{name} is not valid hex ({where})") from None


__all__ = [
    "CURVE_SECT283K1",
    "HASH_AES_MMO",
    "KEY_USAGE_DIGITAL_SIGNATURE",
    "KEY_USAGE_KEY_AGREEMENT",
    "NO_EXPIRY",
    "TYPE_NO_EXTENSIONS",
    "ImplicitCertificate",
    "Suite1Certificate",
    "Suite2Certificate",
    "certificate_hash",
]

#: Suite-2 certificate field values (SE C.4.2.2).
TYPE_NO_EXTENSIONS = 0x00
CURVE_SECT283K1 = 0x0D
HASH_AES_MMO = 0x08
KEY_USAGE_KEY_AGREEMENT = 0x08
KEY_USAGE_DIGITAL_SIGNATURE = 0x80
#: ``valid_to`` value meaning "no expiry".
NO_EXPIRY = 0xFFFFFFFF
_POINT_PREFIXES = (0x02, 0x03)


@functools.lru_cache(maxsize=16)
def _ca_point(suite_id: int, ca_public_key: bytes) -> Point:
    """The CA key, validated once: devices use the same one for every exchange."""
    return SUITES[suite_id].curve.decode_point(ca_public_key)


def certificate_hash(certificate: bytes, suite: Suite) -> int:
    """``e``: the AES-MMO hash of the whole certificate as an integer mod n (SEC 4 3.5 step 5)."""
    return int.from_bytes(mmo_hash(certificate)) % suite.curve.n


@dataclass(frozen=True, kw_only=True, slots=True)
class ImplicitCertificate:
    """An implicit certificate of either suite; :meth:`from_bytes` picks the layout by length."""

    suite: ClassVar[Suite]
    data: bytes
    reconstruction_point: bytes
    subject: bytes
    issuer: bytes

    @staticmethod
    def from_bytes(data: bytes, suite: Suite | None = None) -> ImplicitCertificate:
        """Parse and check a certificate (48 bytes: suite 1, 74 bytes: suite 2).

        With ``suite`` given, a certificate of the other size is refused. Raises
        :class:`~zse.errors.InvalidCertificate` naming the field and its offset.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidCertificate(f"certificate must be bytes, not {type(data).__name__}")
        data = bytes(data)
        if suite is not None and len(data) != suite.certificate_size:
            raise InvalidCertificate(
                f"{suite.name} certificate must be {suite.certificate_size} bytes, got {len(data)}"
            )
        if len(data) == SUITE1.certificate_size:
            return Suite1Certificate._parse(data)
        if len(data) == SUITE2.certificate_size:
            return Suite2Certificate._parse(data)
        raise InvalidCertificate(
            f"certificate must be 48 bytes (suite 1) or 74 bytes (suite 2), got {len(data)}"
        )

    @staticmethod
    def from_hex(text: str, suite: Suite | None = None) -> ImplicitCertificate:
        """Parse a certificate written as hex (spaces, ``:`` and ``-`` allowed)."""
        return ImplicitCertificate.from_bytes(hex_bytes(text, "certificate"), suite)

    def __bytes__(self) -> bytes:
        return self.data

    def fields(self) -> dict[str, str | int | None]:
        """The fields for display: integers and upper-case hex strings."""
        raise NotImplementedError

    def hex(self) -> str:
        """The certificate as upper-case hex."""
        return self.data.hex().upper()

    @property
    def hash_value(self) -> int:
        """``e`` of SEC 4 3.5: the certificate's AES-MMO hash as an integer mod n."""
        return certificate_hash(self.data, self.suite)

    def reconstruct_public_key(self, ca_public_key: bytes) -> bytes:
        """The subject's static public key ``e * P + Q_CA``, SEC1 compressed (SEC 4 3.5).

        Raises :class:`~zse.errors.InvalidCertificate` if the reconstruction point is not a
        valid point and :class:`~zse.errors.InvalidPoint` if the CA key is not.
        """
        return self.suite.curve.encode_point(self.reconstruct_public_point(ca_public_key))

    def reconstruct_public_point(self, ca_public_key: bytes) -> Point:
        """:meth:`reconstruct_public_key` as a curve point (validated: in the subgroup)."""
        curve = self.suite.curve
        if not isinstance(ca_public_key, bytes | bytearray | memoryview):
            raise InvalidPoint(f"CA public key must be bytes, not {type(ca_public_key).__name__}")
        ca_point = _ca_point(self.suite.id, bytes(ca_public_key))
        try:
            point = curve.decode_point(self.reconstruction_point)
        except InvalidPoint as exc:
            raise InvalidCertificate(f"public reconstruction point: {exc}") from None
        public = curve.mul_add(self.hash_value, point, 1, ca_point)
        if public.infinity:  # pragma: no cover - needs a hash collision with the CA key
            raise InvalidCertificate("the reconstructed public key is the point at infinity")
        return public


def _check_point_prefix(point: bytes, offset: int) -> None:
    if point[0] not in _POINT_PREFIXES:
        raise InvalidCertificate(
            f"public reconstruction point at offset {offset} must start with 02 or 03, "
            f"got {point[0]:02X}"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Suite1Certificate(ImplicitCertificate):
    """A 48-byte suite-1 certificate (SE C.4.2.1)."""

    suite: ClassVar[Suite] = SUITE1
    profile_data: bytes

    @classmethod
    def _parse(cls, data: bytes) -> Suite1Certificate:
        point = data[0:22]
        _check_point_prefix(point, 0)
        return cls(
            data=data,
            reconstruction_point=point,
            subject=data[22:30],
            issuer=data[30:38],
            profile_data=data[38:48],
        )

    @classmethod
    def build(
        cls, *, reconstruction_point: bytes, subject: bytes, issuer: bytes, profile_data: bytes
    ) -> Suite1Certificate:
        """Assemble a certificate from its fields (the CA's side)."""
        _check_lengths(
            ("reconstruction_point", reconstruction_point, 22),
            ("subject", subject, 8),
            ("issuer", issuer, 8),
            ("profile_data", profile_data, 10),
        )
        return cls._parse(reconstruction_point + subject + issuer + profile_data)

    def fields(self) -> dict[str, str | int | None]:
        """The fields for display: hex strings."""
        return {
            "suite": self.suite.id,
            "public_reconstruction_point": self.reconstruction_point.hex().upper(),
            "subject": self.subject.hex().upper(),
            "issuer": self.issuer.hex().upper(),
            "profile_data": self.profile_data.hex().upper(),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Suite2Certificate(ImplicitCertificate):
    """A 74-byte suite-2 certificate (SE C.4.2.2)."""

    suite: ClassVar[Suite] = SUITE2
    certificate_type: int
    serial: bytes
    curve_id: int
    hash_id: int
    valid_from: int
    valid_to: int
    key_usage: int

    @classmethod
    def _parse(cls, data: bytes) -> Suite2Certificate:
        checks = (
            ("type", 0, TYPE_NO_EXTENSIONS),
            ("curve", 9, CURVE_SECT283K1),
            ("hash", 10, HASH_AES_MMO),
        )
        for name, offset, expected in checks:
            if data[offset] != expected:
                raise InvalidCertificate(
                    f"suite 2 certificate {name} at offset {offset} must be "
                    f"{expected:02X}, got {data[offset]:02X}"
                )
        point = data[37:74]
        _check_point_prefix(point, 37)
        return cls(
            data=data,
            certificate_type=data[0],
            serial=data[1:9],
            curve_id=data[9],
            hash_id=data[10],
            issuer=data[11:19],
            valid_from=int.from_bytes(data[19:24]),
            valid_to=int.from_bytes(data[24:28]),
            subject=data[28:36],
            key_usage=data[36],
            reconstruction_point=point,
        )

    @classmethod
    def build(
        cls,
        *,
        serial: bytes,
        issuer: bytes,
        valid_from: int,
        valid_to: int,
        subject: bytes,
        key_usage: int,
        reconstruction_point: bytes,
    ) -> Suite2Certificate:
        """Assemble a certificate from its fields (the CA's side)."""
        _check_lengths(
            ("serial", serial, 8),
            ("issuer", issuer, 8),
            ("subject", subject, 8),
            ("reconstruction_point", reconstruction_point, 37),
        )
        if not 0 <= valid_from < 1 << 40:
            raise InvalidCertificate(f"valid_from must fit in 40 bits, got {valid_from}")
        if not 0 <= valid_to <= NO_EXPIRY:
            raise InvalidCertificate(f"valid_to must fit in 32 bits, got {valid_to}")
        if not 0 <= key_usage <= 0xFF:
            raise InvalidCertificate(f"key_usage must fit in 8 bits, got {key_usage}")
        data = (
            bytes((TYPE_NO_EXTENSIONS,))
            + serial
            + bytes((CURVE_SECT283K1, HASH_AES_MMO))
            + issuer
            + valid_from.to_bytes(5)
            + valid_to.to_bytes(4)
            + subject
            + bytes((key_usage,))
            + reconstruction_point
        )
        return cls._parse(data)

    @property
    def allows_key_agreement(self) -> bool:
        """Whether the key usage byte has the key-agreement bit CBKE requires."""
        return bool(self.key_usage & KEY_USAGE_KEY_AGREEMENT)

    @property
    def expires(self) -> int | None:
        """The UTC second after which the certificate is invalid, or None (no expiry)."""
        if self.valid_to == NO_EXPIRY:
            return None
        return self.valid_from + self.valid_to

    def is_valid_at(self, utc_seconds: int) -> bool:
        """Whether ``utc_seconds`` lies in the validity period."""
        expires = self.expires
        return self.valid_from <= utc_seconds and (expires is None or utc_seconds <= expires)

    def fields(self) -> dict[str, str | int | None]:
        """The fields for display: integers and hex strings."""
        return {
            "suite": self.suite.id,
            "type": self.certificate_type,
            "serial": self.serial.hex().upper(),
            "curve": self.curve_id,
            "hash": self.hash_id,
            "issuer": self.issuer.hex().upper(),
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
            "expires": self.expires,
            "subject": self.subject.hex().upper(),
            "key_usage": self.key_usage,
            "public_reconstruction_point": self.reconstruction_point.hex().upper(),
        }


def _check_lengths(*fields: tuple[str, bytes, int]) -> None:
    for name, value, size in fields:
        if not isinstance(value, bytes) or len(value) != size:
            raise InvalidCertificate(f"{name} must be {size} bytes")
