"""Published CBKE implicit certificates (tests/vectors/cbke-public-certificates.json: TI Z-Stack's
zcl_cert_data.c and zsmartsystems' CerticomCbkeCertificateTest.java, sources and commits in the
file): each certificate parses, and the public key it reconstructs with its CA key (SEC 4 3.5)
is its private key times G, and the public key the source states, for suite 1 and suite 2.

(It belongs with tests/cbke; it sits here because that directory was not this change's.)
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import load_vectors
from zse.cbke import SUITE1, SUITE2, Credentials, ImplicitCertificate, public_key_from_private

VECTORS: dict[str, Any] = load_vectors("cbke-public-certificates.json")
CERTIFICATES: list[dict[str, Any]] = VECTORS["certificates"]


@pytest.mark.parametrize("entry", CERTIFICATES, ids=[c["name"] for c in CERTIFICATES])
def test_certificate_reconstructs_its_private_keys_public_key(entry: dict[str, Any]) -> None:
    suite = SUITE1 if entry["suite"] == 1 else SUITE2
    ca = bytes.fromhex(VECTORS[f"suite{entry['suite']}_ca_public_key"])
    certificate = ImplicitCertificate.from_hex(entry["certificate"], suite)
    assert certificate.subject.hex().upper() == entry["ieee"]
    reconstructed = certificate.reconstruct_public_key(ca)
    assert reconstructed == public_key_from_private(suite, bytes.fromhex(entry["private_key"]))
    if "public_key" in entry:
        assert reconstructed.hex().upper() == entry["public_key"]
    credentials = Credentials.from_hex(
        ca_public_key=ca.hex(),
        certificate=entry["certificate"],
        private_key=entry["private_key"],
        suite=entry["suite"],
    )
    assert credentials.public_key == reconstructed


def test_both_suites_are_covered() -> None:
    assert {c["suite"] for c in CERTIFICATES} == {1, 2}
