"""Cross-checks against the OpenSSL CLI: d*G, ECDH and ECDSA on sect163k1 and sect283k1.

OpenSSL 3 (the ``openssl`` command) is the oracle; the tests fail, not skip, without it.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from tests.oracles import require
from zse.cbke import ecdsa
from zse.cbke.hazmat import SECT163K1, SECT283K1, Curve
from zse.cbke.suites import SUITE1, SUITE2, Suite

pytestmark = pytest.mark.oracle

#: SEC 2 object identifiers: 1.3.132.0.1 (sect163k1) and 1.3.132.0.16 (sect283k1), DER-encoded.
OIDS = {
    "sect163k1": bytes.fromhex("06052B81040001"),
    "sect283k1": bytes.fromhex("06052B81040010"),
}
CURVES = [SECT163K1, SECT283K1]


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    length = n.to_bytes((n.bit_length() + 7) // 8)
    return bytes((tag, 0x80 | len(length))) + length + body


def der_integer(value: int) -> bytes:
    """DER INTEGER of a non-negative int."""
    body = value.to_bytes(value.bit_length() // 8 + 1)
    return _der(0x02, body)


def ec_private_key_der(curve: Curve, d: int) -> bytes:
    """RFC 5915 ECPrivateKey without the public key (OpenSSL computes it)."""
    body = der_integer(1) + _der(0x04, d.to_bytes(curve.scalar_size)) + _der(0xA0, OIDS[curve.name])
    return _der(0x30, body)


def signature_to_der(r: int, s: int) -> bytes:
    """ECDSA-Sig-Value SEQUENCE { r INTEGER, s INTEGER }."""
    return _der(0x30, der_integer(r) + der_integer(s))


def signature_from_der(data: bytes) -> tuple[int, int]:
    """Parse ECDSA-Sig-Value (short-form lengths: both curves' signatures are < 128 bytes)."""
    assert data[0] == 0x30
    assert data[1] == len(data) - 2
    pos = 2
    values = []
    for _ in range(2):
        assert data[pos] == 0x02
        n = data[pos + 1]
        values.append(int.from_bytes(data[pos + 2 : pos + 2 + n]))
        pos += 2 + n
    assert pos == len(data)
    return values[0], values[1]


class OpenSSL:
    """Runs the openssl command in a temporary directory."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.dir = workdir
        self._count = 0

    def run(self, *args: str, stdin: bytes | None = None) -> bytes:
        result = subprocess.run(
            [self.binary, *args], input=stdin, capture_output=True, check=False, cwd=self.dir
        )
        if result.returncode != 0:
            raise AssertionError(f"openssl {' '.join(args)} failed: {result.stderr.decode()}")
        return result.stdout

    def path(self, suffix: str) -> str:
        self._count += 1
        return str(self.dir / f"f{self._count}{suffix}")

    def write(self, data: bytes, suffix: str = ".bin") -> str:
        name = self.path(suffix)
        Path(name).write_bytes(data)
        return name

    def key_from_scalar(self, curve: Curve, d: int) -> str:
        """A PEM private key file for ``d`` on ``curve``."""
        der = self.write(ec_private_key_der(curve, d), ".der")
        pem = self.path(".pem")
        self.run("ec", "-inform", "DER", "-in", der, "-out", pem)
        return pem

    def compressed_public_key(self, key_pem: str, curve: Curve) -> bytes:
        """OpenSSL's own d*G for the key, as a SEC 1 compressed point."""
        spki = self.run(
            "ec", "-in", key_pem, "-pubout", "-conv_form", "compressed", "-outform", "DER"
        )
        return spki[-curve.point_size :]

    def public_pem(self, key_pem: str) -> str:
        pem = self.path(".pem")
        self.run("ec", "-in", key_pem, "-pubout", "-out", pem)
        return pem


@pytest.fixture
def openssl(tmp_path: Path) -> OpenSSL:
    return OpenSSL(require("openssl"), tmp_path)


SUITES = [SUITE1, SUITE2]


def _scalars(curve: Curve, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [1, 2, curve.n - 1, *(rng.randrange(1, curve.n) for _ in range(4))]


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_mul_base_matches_openssl(openssl: OpenSSL, curve: Curve) -> None:
    for d in _scalars(curve, 1):
        key = openssl.key_from_scalar(curve, d)
        expected = openssl.compressed_public_key(key, curve)
        assert curve.encode_point(curve.mul_base(d)) == expected, hex(d)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_ecdh_matches_openssl_derive(openssl: OpenSSL, curve: Curve) -> None:
    rng = random.Random(2)
    for _ in range(3):
        d1, d2 = rng.randrange(1, curve.n), rng.randrange(1, curve.n)
        key1 = openssl.key_from_scalar(curve, d1)
        peer2 = openssl.public_pem(openssl.key_from_scalar(curve, d2))
        secret = openssl.run("pkeyutl", "-derive", "-inkey", key1, "-peerkey", peer2)
        # OpenSSL's plain ECDH (no cofactor option): x(d1 * Q2), field-element size.
        q2 = curve.decode_point(curve.encode_point(curve.mul_base(d2)))
        shared = curve.mul(d1, q2)
        assert secret == shared.x.to_bytes(curve.point_size - 1)


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.curve.name)
def test_openssl_signs_we_verify(openssl: OpenSSL, suite: Suite) -> None:
    curve = suite.curve
    rng = random.Random(3)
    size = suite.private_key_size
    for _ in range(3):
        d = rng.randrange(1, curve.n)
        key = openssl.key_from_scalar(curve, d)
        public = openssl.compressed_public_key(key, curve)
        digest = rng.randbytes(16)
        der = openssl.run("pkeyutl", "-sign", "-inkey", key, "-in", openssl.write(digest))
        r, s = signature_from_der(der)
        signature = r.to_bytes(size) + s.to_bytes(size)
        prepared = ecdsa.VerifyingKey(suite, public)
        tampered = bytes([digest[0] ^ 1]) + digest[1:]
        for key in (public, prepared):  # the key's bytes, or prepared once for many
            assert ecdsa.verify_digest(suite, key, digest, signature)
            assert not ecdsa.verify_digest(suite, key, tampered, signature)


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.curve.name)
def test_we_sign_openssl_verifies(openssl: OpenSSL, suite: Suite) -> None:
    curve = suite.curve
    rng = random.Random(4)
    size = suite.private_key_size
    for _ in range(3):
        d = rng.randrange(1, curve.n)
        key = openssl.key_from_scalar(curve, d)
        pub = openssl.public_pem(key)
        message = rng.randbytes(rng.randrange(0, 80))
        signature = ecdsa.sign(suite, d.to_bytes(size), message)
        assert len(signature) == suite.signature_size
        r, s = int.from_bytes(signature[:size]), int.from_bytes(signature[size:])
        digest = openssl.write(ecdsa.mmo_hash(message))
        sig = openssl.write(signature_to_der(r, s))
        out = openssl.run(
            "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", digest, "-sigfile", sig
        )
        assert b"Signature Verified Successfully" in out
