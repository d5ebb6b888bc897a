"""SE 07-5356 Annex C.5 (suite 1) test vectors: private key -> public key on sect163k1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zse.cbke.hazmat import SECT163K1

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "cbke-suite1.json").read_text())
KEYS = [
    (party, kind) for party in ("responder_V", "initiator_U") for kind in ("static", "ephemeral")
]


@pytest.mark.parametrize(("party", "kind"), KEYS)
def test_suite1_private_to_public(party: str, kind: str) -> None:
    entry = VECTORS[party]
    d = int(entry[f"{kind}_private"], 16)
    public = bytes.fromhex(entry[f"{kind}_public"])
    point = SECT163K1.mul_base(d)
    assert SECT163K1.encode_point(point) == public
    assert SECT163K1.mul(d, SECT163K1.generator) == point
    assert SECT163K1.mul_naive(d, SECT163K1.generator) == point
    assert SECT163K1.decode_point(public) == point


def test_suite1_ca_public_key_is_valid() -> None:
    ca = bytes.fromhex(VECTORS["ca_public_key"])
    assert SECT163K1.encode_point(SECT163K1.decode_point(ca)) == ca
