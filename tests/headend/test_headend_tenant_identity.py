"""Tenant boundary, identity: what the mutual-TLS listener refuses in the handshake is
refused on the signed-request listener too, and a certificate names only its own CA's
retailer."""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from zse.headend.pki import identify, init_directory, issue, load_config, new_ca
from zse.headend.signatures import RequestVerifier, SignedRequestError, sign_request

NOW = datetime.datetime.now(datetime.UTC)


def _test_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / "ca-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def _pem(directory: Path, name: str, pair: tuple[x509.Certificate, object]) -> None:
    (directory / f"{name}.pem").write_bytes(pair[0].public_bytes(serialization.Encoding.PEM))


def _signed(
    key: ec.EllipticCurvePrivateKey, key_id: str
) -> tuple[str, str, list[tuple[str, str]], bytes]:
    url = "https://127.0.0.1:8444/api/v1/devices"
    headers = sign_request("GET", url, {}, b"", key_id=key_id, key=key, nonce=uuid.uuid4().hex)
    return "GET", url, list(headers.items()), b""


@pytest.mark.parametrize(
    ("case", "valid"),
    [
        ("expired", (NOW - datetime.timedelta(days=30), NOW - datetime.timedelta(days=29))),
        ("not yet valid", (NOW + datetime.timedelta(days=1), NOW + datetime.timedelta(days=30))),
    ],
)
def test_a_signing_certificate_out_of_its_validity_is_refused(
    tmp_path: Path, case: str, valid: tuple[datetime.datetime, datetime.datetime]
) -> None:
    """An expired client certificate is refused in the TLS handshake; registered as a
    signing certificate it signed requests for as long as the server ran, and was taken
    at start (its dates were never read). A signed request is refused 401 with it now,
    and the retailer's other requests (a current certificate) are served."""
    init_directory(tmp_path)
    pair = issue(_test_ca(tmp_path), "retailer-a", not_before=valid[0], not_after=valid[1])
    _pem(tmp_path, "old-a", pair)
    toml = tmp_path / "headend.toml"
    toml.write_text(
        toml.read_text().replace(
            'signing_certificate = "retailer-a.pem"', 'signing_certificate = "old-a.pem"'
        )
    )
    verifier = RequestVerifier(load_config(toml).retailers)
    with pytest.raises(SignedRequestError, match="the signing certificate is not valid now"):
        verifier.verify(*_signed(pair[1], "retailer-a"), now=NOW.timestamp())
    key = serialization.load_pem_private_key((tmp_path / "retailer-b-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert verifier.verify(*_signed(key, "retailer-b"), now=NOW.timestamp()).id == "retailer-b"


def test_a_certificate_naming_another_retailer_is_its_own_ca_s_or_no_one_s(
    tmp_path: Path,
) -> None:
    """Retailers with CAs of their own: a certificate of A's CA carrying B's common name is
    neither B's (not B's CA) nor A's (not A's name)."""
    init_directory(tmp_path)
    ca_b = new_ca("retailer B CA")
    _pem(tmp_path, "ca-b", ca_b)
    toml = tmp_path / "headend.toml"
    text = toml.read_text()
    head, _, tail = text.partition('id = "retailer-b"')
    toml.write_text(
        head
        + 'id = "retailer-b"'
        + tail.replace('ca = "ca.pem"', 'ca = "ca-b.pem"', 1).replace(
            'signing_certificate = "retailer-b.pem"\n', "", 1
        )
    )
    retailers = load_config(toml).retailers
    der = serialization.Encoding.DER
    forged = issue(_test_ca(tmp_path), "retailer-b")[0].public_bytes(der)
    assert identify(forged, retailers) is None
    own = issue(ca_b, "retailer-b")[0].public_bytes(der)
    found = identify(own, retailers)
    assert found is not None
    assert found.id == "retailer-b"
