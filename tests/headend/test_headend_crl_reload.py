"""Retailers' CRLs are read again when their file changes (at the next TLS handshake, at the
next signed request), and a signed request's signing certificate is checked against them: the
CRLs were read at start only (a certificate revoked later was taken until a restart), and a
revoked signing certificate was never refused."""

from __future__ import annotations

import datetime
import logging
import os
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.headend.helpers import Service
from tests.headend.test_headend_retailer_pki import _serve, _status
from zse.headend.pki import HeadendConfig, init_directory, load_config
from zse.headend.signatures import RequestVerifier, SignedRequestError, sign_request

NOW = datetime.datetime.now(datetime.UTC)


def _write_crl(directory: Path, revoked: tuple[str, ...], *, age: datetime.timedelta) -> None:
    """The test CA's CRL ``ca-crl.pem``, issued ``age`` ago, listing the certificates
    ``revoked`` (by name); written as a new file put in place (as a CRL is published)."""
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / "ca-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    issued = NOW - age
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(issued)
        .next_update(issued + datetime.timedelta(days=30))
    )
    for name in revoked:
        cert = x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(issued)
            .build()
        )
    crl = builder.sign(key, hashes.SHA256())
    (directory / "new-crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    os.replace(directory / "new-crl.pem", directory / "ca-crl.pem")


def _config(directory: Path) -> HeadendConfig:
    """Retailers A and B of ``zse headend init``'s CA, each with the CA's CRL."""
    text = '[server]\ncertificate = "server.pem"\nkey = "server-key.pem"\n'
    for name in ("retailer-a", "retailer-b"):
        text += (
            f'[[retailers]]\nid = "{name}"\nca = "ca.pem"\ncommon_name = "{name}"\n'
            f'signing_certificate = "{name}.pem"\ncrl = "ca-crl.pem"\n'
        )
    (directory / "crl.toml").write_text(text)
    return load_config(directory / "crl.toml")


async def test_a_crl_published_while_serving_refuses_the_next_handshake(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """A certificate revoked in a CRL file written while the server runs is refused at its
    next handshake (it was taken until a restart); a file that is no CRL keeps the old ones."""
    _write_crl(service.directory, (), age=datetime.timedelta(hours=1))
    config = _config(service.directory)
    await _serve(service, config)
    assert await _status(service, "retailer-a", chain=False) == 200
    _write_crl(service.directory, ("retailer-a",), age=datetime.timedelta(minutes=1))
    assert await _status(service, "retailer-a", chain=False) is None
    assert await _status(service, "retailer-b", chain=False) == 200
    with caplog.at_level(logging.WARNING, logger="zse.headend.pki"):
        (service.directory / "ca-crl.pem").write_text("not a CRL\n")
        assert await _status(service, "retailer-b", chain=False) == 200
        assert await _status(service, "retailer-a", chain=False) is None
    assert "not a PEM certificate revocation list; the CRLs read before are kept" in caplog.text


def _signed(directory: Path, name: str) -> tuple[str, str, list[tuple[str, str]], bytes]:
    key = serialization.load_pem_private_key((directory / f"{name}-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    url = "https://localhost:8444/api/v1/meters"
    headers = sign_request("GET", url, {}, b"", key_id=name, key=key, nonce=uuid.uuid4().hex)
    return "GET", url, list(headers.items()), b""


def test_a_revoked_signing_certificate_is_refused(tmp_path: Path) -> None:
    """A signed request's signing certificate is checked against its CA's CRL, read again
    when the file changes: a revoked one is refused (it was never checked)."""
    init_directory(tmp_path)
    _write_crl(tmp_path, (), age=datetime.timedelta(hours=1))
    verifier = RequestVerifier(_config(tmp_path).retailers)
    now = NOW.timestamp()
    assert verifier.verify(*_signed(tmp_path, "retailer-a"), now=now).id == "retailer-a"
    _write_crl(tmp_path, ("retailer-a",), age=datetime.timedelta(minutes=1))
    with pytest.raises(SignedRequestError, match="the signing certificate is revoked"):
        verifier.verify(*_signed(tmp_path, "retailer-a"), now=now)
    assert verifier.verify(*_signed(tmp_path, "retailer-b"), now=now).id == "retailer-b"


def test_a_signing_certificate_revoked_at_start_is_refused(tmp_path: Path) -> None:
    """A signing certificate already on the CRL at start is refused too."""
    init_directory(tmp_path)
    _write_crl(tmp_path, ("retailer-b",), age=datetime.timedelta(hours=1))
    verifier = RequestVerifier(_config(tmp_path).retailers)
    with pytest.raises(SignedRequestError, match="revoked"):
        verifier.verify(*_signed(tmp_path, "retailer-b"), now=NOW.timestamp())
