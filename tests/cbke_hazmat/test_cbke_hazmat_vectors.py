"""Published key material: private key -> public key on sect163k1 and sect283k1.

* SE 07-5356 Annex C.5 (suite 1), ``tests/vectors/cbke-suite1.json``.
* Suite-2 key establishment data (``tests/vectors/cbke-suite2.json``, see its ``source``).
* Certicom test-CA credentials for both suites (same file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zse.cbke.hazmat import SECT163K1, SECT283K1, Curve

VECTORS = Path(__file__).parents[1] / "vectors"
SUITE1 = json.loads((VECTORS / "cbke-suite1.json").read_text())
SUITE2 = json.loads((VECTORS / "cbke-suite2.json").read_text())
KEYS = [
    (party, kind) for party in ("responder_V", "initiator_U") for kind in ("static", "ephemeral")
]
CERTICOM = SUITE2["certicom_test_credentials"]


def _check_key_pair(curve: Curve, private_hex: str, public_hex: str) -> None:
    d = int(private_hex, 16)
    public = bytes.fromhex(public_hex)
    assert len(public) == curve.point_size
    point = curve.mul_base(d)
    assert curve.encode_point(point) == public
    assert curve.mul(d, curve.generator) == point
    assert curve.mul_naive(d, curve.generator) == point
    assert curve.decode_point(public) == point


@pytest.mark.parametrize(("party", "kind"), KEYS)
def test_suite1_private_to_public(party: str, kind: str) -> None:
    entry = SUITE1[party]
    _check_key_pair(SECT163K1, entry[f"{kind}_private"], entry[f"{kind}_public"])


@pytest.mark.parametrize(("party", "kind"), KEYS)
def test_suite2_private_to_public(party: str, kind: str) -> None:
    entry = SUITE2[party]
    _check_key_pair(SECT283K1, entry[f"{kind}_private"], entry[f"{kind}_public"])


@pytest.mark.parametrize(
    ("curve", "suite"), [(SECT163K1, "suite1"), (SECT283K1, "suite2")], ids=["suite1", "suite2"]
)
def test_certicom_test_credentials(curve: Curve, suite: str) -> None:
    entry = CERTICOM[suite]
    _check_key_pair(curve, entry["private_key"], entry["public_key"])
    ca = bytes.fromhex(entry["ca_public_key"])
    assert curve.encode_point(curve.decode_point(ca)) == ca


@pytest.mark.parametrize(
    ("curve", "vectors", "offset"),
    [(SECT163K1, SUITE1, 0), (SECT283K1, SUITE2, 37)],
    ids=["suite1", "suite2"],
)
def test_ca_keys_and_reconstruction_points_are_valid(
    curve: Curve, vectors: dict[str, dict[str, str]], offset: int
) -> None:
    """The CA key and each certificate's reconstruction point pass full validation
    (48-byte certificates start with the point, 74-byte ones carry it at offset 37)."""
    ca = bytes.fromhex(str(vectors["ca_public_key"]))
    assert curve.encode_point(curve.decode_point(ca)) == ca
    for party in ("responder_V", "initiator_U"):
        cert = bytes.fromhex(vectors[party]["certificate"])
        point = cert[offset : offset + curve.point_size]
        assert curve.encode_point(curve.decode_point(point)) == point
