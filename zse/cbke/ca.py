"""A test certificate authority: ECQV issuance of SE implicit certificates (SEC 4 v1.0 s. 3).

For simulators, demos, tests and benches: it issues suite-1 and suite-2 certificates and their
private keys for any EUI-64, so two zse endpoints (or zse and a device loaded with the same CA's
credentials) can run CBKE. Real devices trust Certicom's CA and need Certicom's certificates.

Issuance follows SEC 4's three steps, all run here (the CA plays the requester too):

1. request (3.3): the requester picks ``k_U`` and sends ``R_U = k_U * G``;
2. generation (3.4): the CA picks ``k``, sets the reconstruction point ``P_U = R_U + k * G``,
   encodes the certificate, hashes it (``e``, AES-MMO as a big-endian integer mod n) and
   computes the private-key reconstruction data ``r = e * k + d_CA mod n``;
3. reception (3.5): the requester's private key is ``d_U = e * k_U + r mod n``, and
   ``Q_U = e * P_U + Q_CA`` must equal ``d_U * G``.

A CA file (JSON) holds one key pair per suite and the 8-byte issuer identifier. Unless given
one, a new CA's issuer is derived from its own public key (:func:`derived_issuer`), so two test
CAs have different issuers and a device of the other answers UNKNOWN_ISSUER (SE C.3.1.3.4),
not BAD_KEY_CONFIRM at the very end of the exchange.
"""

from __future__ import annotations

import json
import os
import random
import secrets
from dataclasses import dataclass, field
from typing import Any

import zigpy.types as t

from zse import jsontext
from zse.cbke.certificate import (
    KEY_USAGE_KEY_AGREEMENT,
    NO_EXPIRY,
    ImplicitCertificate,
    Suite1Certificate,
    Suite2Certificate,
    certificate_hash,
)
from zse.cbke.credentials import (
    Credentials,
    InvalidCredentials,
    hex_field,
    load_file,
)
from zse.cbke.keys import private_scalar, public_key_from_private
from zse.cbke.suites import SUITE1, SUITE2, SUITES, Suite
from zse.errors import DecodeError, InvalidEui64, InvalidJson
from zse.installcode import mmo_hash, parse_eui64

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_PROFILE_DATA",
    "CertificateAuthority",
    "TestCA",
    "derived_issuer",
    "eui64_bytes",
]

#: "ZSETSTCA", the issuer identifier every test CA once shared by default; a new CA now gets
#: :func:`derived_issuer` unless given one (give this one to share it on purpose).
DEFAULT_ISSUER = b"ZSETSTCA"
#: Suite-1 profile attribute data: the SE profile id 0x0109 then 0x0006 and zeros, as the
#: Certicom test certificates of SE Annex C.5 carry.
DEFAULT_PROFILE_DATA = bytes.fromhex("01090006000000000000")


def derived_issuer(public_key: bytes) -> bytes:
    """A test CA's default issuer identifier, derived from its (suite-1) public key so CAs
    with different keys have different issuers: "ZS" and the first 3 octets of the key's
    AES-MMO hash in upper-case hex (8 printable octets, as "ZSETSTCA" was)."""
    return b"ZS" + mmo_hash(bytes(public_key))[:3].hex().upper().encode()


def _random_scalar(suite: Suite, rng: random.Random | None = None) -> int:
    if rng is not None:
        return 1 + rng.randrange(suite.curve.n - 1)
    return 1 + secrets.randbelow(suite.curve.n - 1)


#: What :func:`eui64_bytes` takes, for its error message.
_EUI64_FORMS = (
    "8 bytes most significant octet first, a printed EUI-64 such as "
    "'00:1B:C5:00:07:00:05:2B', or a zigpy EUI64"
)


def eui64_bytes(eui64: bytes | str | t.EUI64) -> bytes:
    """An EUI-64 as certificates carry it (the subject, SE C.4.2.1-2): 8 octets, most
    significant first. Takes those 8 bytes as they are, a printed EUI-64 (``str``, any case
    and separators, :func:`zse.installcode.parse_eui64`) or zigpy's ``t.EUI64`` (which holds
    its octets least significant first). :class:`~zse.errors.InvalidEui64` for anything else."""
    if isinstance(eui64, t.EUI64):
        return bytes(eui64)[::-1]
    if isinstance(eui64, str):
        return bytes(parse_eui64(eui64))[::-1]
    if isinstance(eui64, bytes | bytearray):
        if len(eui64) != 8:
            raise InvalidEui64(f"EUI-64 of {len(eui64)} bytes; give {_EUI64_FORMS}")
        return bytes(eui64)
    raise InvalidEui64(f"EUI-64 as {type(eui64).__name__}; give {_EUI64_FORMS}")


def _subject(eui64: bytes | str | t.EUI64) -> bytes:
    try:
        return eui64_bytes(eui64)
    except InvalidEui64 as exc:
        raise InvalidEui64(f"subject {exc}") from None


@dataclass(frozen=True, kw_only=True)
class CertificateAuthority:
    """One suite's CA key pair and issuer id; issues certificates with :meth:`issue`."""

    suite: Suite
    private_key: bytes = field(repr=False)
    issuer: bytes
    public_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        if len(self.issuer) != 8:
            raise InvalidCredentials(f"issuer must be 8 bytes, got {len(self.issuer)}")
        object.__setattr__(
            self, "public_key", public_key_from_private(self.suite, self.private_key)
        )

    @classmethod
    def generate(
        cls, suite: Suite, issuer: bytes | None = None, *, rng: random.Random | None = None
    ) -> CertificateAuthority:
        """A new CA with a random key (from :mod:`secrets`, or from a seeded ``rng`` for
        repeatable test runs); ``issuer`` defaults to :func:`derived_issuer` of its key."""
        key = _random_scalar(suite, rng).to_bytes(suite.private_key_size)
        if issuer is None:
            issuer = derived_issuer(public_key_from_private(suite, key))
        return cls(suite=suite, private_key=key, issuer=issuer)

    def issue(
        self,
        eui64: bytes | str | t.EUI64,
        *,
        valid_from: int = 0,
        valid_to: int = NO_EXPIRY,
        key_usage: int = KEY_USAGE_KEY_AGREEMENT,
        serial: bytes | None = None,
        profile_data: bytes = DEFAULT_PROFILE_DATA,
        rng: random.Random | None = None,
    ) -> Credentials:
        """Issue a certificate and private key for ``eui64``: 8 octets as in certificates, a
        printed EUI-64 or zigpy's ``t.EUI64`` (:func:`eui64_bytes`).

        ``valid_from`` (UTC seconds), ``valid_to`` (seconds after it, or no expiry),
        ``key_usage`` and ``serial`` (random when omitted) apply to suite 2, ``profile_data``
        to suite 1. ``rng`` (a seeded ``random.Random``) replaces :mod:`secrets` for
        repeatable test runs such as ``zse demo --seed``.
        """
        subject = _subject(eui64)
        suite = self.suite
        curve = suite.curve
        n = curve.n
        d_ca = private_scalar(suite, self.private_key, "CA private key")
        if serial is None:
            serial = rng.randbytes(8) if rng is not None else secrets.token_bytes(8)
        while True:
            # SEC 4 3.3: the certificate request.
            k_u = _random_scalar(suite, rng)
            r_u = curve.mul_base(k_u)
            # SEC 4 3.4: certificate generation.
            k = _random_scalar(suite, rng)
            p_u = curve.add(r_u, curve.mul_base(k))
            if p_u.infinity:  # pragma: no cover - probability ~1/n
                continue
            point = curve.encode_point(p_u)
            cert: ImplicitCertificate
            if suite is SUITE1:
                cert = Suite1Certificate.build(
                    reconstruction_point=point,
                    subject=subject,
                    issuer=self.issuer,
                    profile_data=profile_data,
                )
            else:
                cert = Suite2Certificate.build(
                    serial=serial,
                    issuer=self.issuer,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    subject=subject,
                    key_usage=key_usage,
                    reconstruction_point=point,
                )
            e = certificate_hash(cert.data, suite)
            r = (e * k + d_ca) % n
            # SEC 4 3.5: certificate reception.
            d_u = (e * k_u + r) % n
            if d_u == 0:  # pragma: no cover - probability ~1/n
                continue
            # Credentials() checks d_U * G == e * P_U + Q_CA.
            return Credentials(
                ca_public_key=self.public_key,
                certificate=cert,
                private_key=d_u.to_bytes(suite.private_key_size),
            )

    def to_dict(self) -> dict[str, str]:
        """This CA as JSON members (includes the private key)."""
        return {
            "private_key": self.private_key.hex().upper(),
            "public_key": self.public_key.hex().upper(),
        }


@dataclass(frozen=True, kw_only=True)
class TestCA:
    """A test CA for both suites, sharing one issuer id; saved and loaded as JSON::

    {"issuer": "5A5345...", "suite1": {"private_key": ..., "public_key": ...},
     "suite2": {...}}
    """

    __test__ = False  # not a pytest test class

    issuer: bytes
    authorities: dict[int, CertificateAuthority]

    @classmethod
    def generate(cls, issuer: bytes | None = None, *, rng: random.Random | None = None) -> TestCA:
        """A new CA with fresh keys for suites 1 and 2 (from a seeded ``rng`` if given:
        repeatable test runs only). ``issuer`` defaults to :func:`derived_issuer` of the
        suite-1 public key: each generated CA has its own."""
        keys = {
            suite.id: _random_scalar(suite, rng).to_bytes(suite.private_key_size)
            for suite in (SUITE1, SUITE2)
        }
        if issuer is None:
            issuer = derived_issuer(public_key_from_private(SUITE1, keys[SUITE1.id]))
        return cls(
            issuer=issuer,
            authorities={
                suite.id: CertificateAuthority(
                    suite=suite, private_key=keys[suite.id], issuer=issuer
                )
                for suite in (SUITE1, SUITE2)
            },
        )

    def authority(self, suite: Suite | int) -> CertificateAuthority:
        """The CA of one suite; :class:`InvalidCredentials` if this CA has none."""
        suite_id = suite if isinstance(suite, int) else suite.id
        try:
            return self.authorities[suite_id]
        except KeyError:
            raise InvalidCredentials(f"this CA has no key for suite {suite_id}") from None

    def issue(
        self, eui64: bytes | str | t.EUI64, suite: Suite | int = SUITE1, **options: Any
    ) -> Credentials:
        """Issue credentials for ``eui64`` (8 octets most significant first, a printed EUI-64
        or zigpy's ``t.EUI64``; options: :meth:`CertificateAuthority.issue`)."""
        return self.authority(suite).issue(eui64, **options)

    def to_json(self) -> str:
        """The CA as JSON (includes the private keys: keep the file secret)."""
        document: dict[str, object] = {"issuer": self.issuer.hex().upper()}
        for suite_id, authority in sorted(self.authorities.items()):
            document[f"suite{suite_id}"] = authority.to_dict()
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> TestCA:
        """Load a CA; checks every public key against its private key."""
        try:
            document: Any = jsontext.loads(text)
        except InvalidJson as exc:
            raise InvalidCredentials(f"CA file is not JSON: {exc}") from None
        if not isinstance(document, dict) or "issuer" not in document:
            raise InvalidCredentials("CA JSON must be an object with an issuer")
        issuer = hex_field(document["issuer"], "issuer")
        authorities: dict[int, CertificateAuthority] = {}
        for suite_id, suite in SUITES.items():
            member = document.get(f"suite{suite_id}")
            if member is None:
                continue
            if not isinstance(member, dict) or "private_key" not in member:
                raise InvalidCredentials(f"suite{suite_id} must be an object with a private_key")
            private_key = hex_field(member["private_key"], f"suite{suite_id}.private_key")
            try:
                authority = CertificateAuthority(
                    suite=suite, private_key=private_key, issuer=issuer
                )
            except DecodeError as exc:
                raise InvalidCredentials(f"suite{suite_id}: {exc}") from None
            stated = member.get("public_key")
            if stated is not None and hex_field(stated, "public_key") != authority.public_key:
                raise InvalidCredentials(
                    f"suite{suite_id}: public_key does not match the private key"
                )
            authorities[suite_id] = authority
        if not authorities:
            raise InvalidCredentials("CA JSON has no suite1 or suite2 key")
        return cls(issuer=issuer, authorities=authorities)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TestCA:
        """Load a CA file."""
        return load_file(path, cls.from_json)
