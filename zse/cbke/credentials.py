"""A device's CBKE credentials: CA public key, implicit certificate and private key (SE C.4.2).

Loaded from hex or a JSON file and always checked for consistency: the private key must be the
one whose public key the certificate reconstructs (``d*G == e*P + Q_CA``), otherwise key
establishment would fail at key confirmation with nothing telling why. The JSON form::

    {"suite": 1, "ca_public_key": "02...", "certificate": "03...", "private_key": "00..."}

(hex, any case; ``suite`` optional, taken from the certificate's size when absent; any other
member such as ``eui64`` is ignored).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from zse import jsontext
from zse._files import read_bounded
from zse.cbke.certificate import ImplicitCertificate, hex_bytes
from zse.cbke.keys import public_key_from_private
from zse.cbke.suites import SUITES, Suite
from zse.errors import DecodeError, InvalidCertificate, InvalidJson, InvalidPoint

__all__ = [
    "Credentials",
    "HeldCredentials",
    "InvalidCredentials",
    "hex_field",
    "load_file",
]

T = TypeVar("T")


class InvalidCredentials(InvalidCertificate):
    """Credentials that are malformed or do not belong together."""


def hex_field(value: object, name: str) -> bytes:
    """Bytes from a hex string (spaces, ``:`` and ``-`` allowed), or InvalidCredentials."""
    return hex_bytes(value, name, InvalidCredentials)


def load_file(path: str | os.PathLike[str], parse: Callable[[bytes], T]) -> T:
    """Read ``path`` and parse it; unreadable or bad files raise InvalidCredentials."""
    try:
        text = read_bounded(path, error=InvalidCredentials)
    except OSError as exc:
        raise InvalidCredentials(f"cannot read {os.fspath(path)}: {exc.strerror}") from None
    try:
        return parse(text)
    except DecodeError as exc:
        raise InvalidCredentials(f"{os.fspath(path)}: {exc}") from None


class _Certified:
    """What a certificate says of its holder, for either kind of credentials."""

    certificate: ImplicitCertificate

    @property
    def suite(self) -> Suite:
        """The suite, from the certificate."""
        return self.certificate.suite

    @property
    def eui64(self) -> bytes:
        """The subject EUI-64 (8 octets, most significant first)."""
        return self.certificate.subject

    @property
    def issuer(self) -> bytes:
        """The issuer of the certificate (the CA's 8-byte identifier)."""
        return self.certificate.issuer


@dataclass(frozen=True, kw_only=True)
class Credentials(_Certified):
    """A checked set of credentials for one suite. Build with :meth:`from_hex` / :meth:`load`."""

    ca_public_key: bytes
    certificate: ImplicitCertificate
    private_key: bytes = field(repr=False)
    #: The static public key, reconstructed from the certificate (checked against the key).
    public_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        suite = self.suite
        try:
            reconstructed = self.certificate.reconstruct_public_key(self.ca_public_key)
        except InvalidPoint as exc:
            raise InvalidCredentials(f"CA public key: {exc}") from None
        except InvalidCertificate as exc:
            raise InvalidCredentials(f"certificate: {exc}") from None
        try:
            derived = public_key_from_private(suite, self.private_key)
        except InvalidPoint as exc:
            raise InvalidCredentials(f"private key: {exc}") from None
        if derived != reconstructed:
            raise InvalidCredentials(
                "the private key does not match the certificate: the certificate reconstructs "
                f"public key {reconstructed.hex().upper()} with this CA key, the private key's "
                f"is {derived.hex().upper()} (wrong CA key, or a key from another certificate?)"
            )
        object.__setattr__(self, "public_key", reconstructed)

    @classmethod
    def from_hex(
        cls, *, ca_public_key: str, certificate: str, private_key: str, suite: int | None = None
    ) -> Credentials:
        """Credentials from three hex strings; raises :class:`InvalidCredentials`."""
        expected: Suite | None = None
        if suite is not None:
            expected = SUITES.get(suite)
            if expected is None:
                raise InvalidCredentials(f"unknown suite {suite!r} (zse knows 1 and 2)")
        try:
            cert = ImplicitCertificate.from_bytes(hex_field(certificate, "certificate"), expected)
        except InvalidCredentials:
            raise
        except InvalidCertificate as exc:
            raise InvalidCredentials(f"certificate: {exc}") from None
        return cls(
            ca_public_key=hex_field(ca_public_key, "ca_public_key"),
            certificate=cert,
            private_key=hex_field(private_key, "private_key"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Credentials:
        """Credentials from the JSON form (see the module docstring)."""
        try:
            document: Any = jsontext.loads(text)
        except InvalidJson as exc:
            raise InvalidCredentials(f"not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise InvalidCredentials("credentials JSON must be an object")
        missing = [k for k in ("ca_public_key", "certificate", "private_key") if k not in document]
        if missing:
            raise InvalidCredentials(f"credentials JSON lacks {', '.join(missing)}")
        suite = document.get("suite")
        if suite is not None and (isinstance(suite, bool) or not isinstance(suite, int)):
            raise InvalidCredentials(f"suite must be 1 or 2, got {suite!r}")
        return cls.from_hex(
            ca_public_key=document["ca_public_key"],
            certificate=document["certificate"],
            private_key=document["private_key"],
            suite=suite,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Credentials:
        """Credentials from a JSON file."""
        return load_file(path, cls.from_json)

    def to_dict(self) -> dict[str, object]:
        """The JSON form as a dict (includes the private key: keep it secret)."""
        return {
            "suite": self.suite.id,
            "eui64": self.eui64.hex().upper(),
            "ca_public_key": self.ca_public_key.hex().upper(),
            "certificate": self.certificate.hex(),
            "private_key": self.private_key.hex().upper(),
        }

    def to_json(self) -> str:
        """The JSON form (includes the private key: keep it secret)."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


@dataclass(frozen=True)
class HeldCredentials(_Certified):
    """A certificate whose private key (and CA public key) a radio holds and never gives out:
    an EmberZNet NCP with CBKE data in its manufacturing tokens (EZSP ``getCertificate``).
    Key establishment with these hands the arithmetic to the holder
    (:class:`zse.cbke.machine.HeldWork`); what it cannot do without the private key (sign) it
    does not offer."""

    certificate: ImplicitCertificate
