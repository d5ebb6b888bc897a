"""No private key in reprs or error messages (#12.23): a typo in a key file must not print the
key, and credentials, CAs and outcomes show public values only."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.cbke import SUITE1, SUITE2, Credentials, ImplicitCertificate, TestCA
from zse.cbke.credentials import InvalidCredentials
from zse.cbke.machine import Established, KeysComputed
from zse.errors import InvalidCertificate

CA = TestCA.generate(rng=random.Random(12))
EUI = bytes.fromhex("000D6F000A000001")
ISSUED = {suite.id: CA.issue(EUI, suite, rng=random.Random(suite.id)) for suite in (SUITE1, SUITE2)}
SUITES = st.sampled_from([SUITE1, SUITE2])


def assert_hidden(secret: bytes, text: str) -> None:
    assert secret.hex() not in text.lower()


def typos(text: str, at: int) -> list[str]:
    """The text with a non-hex character put in, a digit dropped, and a digit doubled."""
    return [text[:at] + "g" + text[at:], text[:at] + text[at + 1 :], text + text[at]]


@settings(max_examples=60, deadline=None)
@given(SUITES, st.data())
def test_a_private_key_with_a_typo_is_not_echoed(suite, data) -> None:
    key = data.draw(st.binary(min_size=suite.private_key_size, max_size=suite.private_key_size))
    issued = ISSUED[suite.id]
    text = data.draw(st.sampled_from([key.hex(), key.hex().upper()]))
    at = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    for typo in typos(text, at):
        document = {**issued.to_dict(), "private_key": typo}
        with pytest.raises(InvalidCredentials) as info:
            Credentials.from_json(json.dumps(document))
        assert_hidden(key, str(info.value))
        assert "private_key is not valid hex (" in str(info.value) or "private key" in str(
            info.value
        )
        ca = json.loads(CA.to_json())
        ca[f"suite{suite.id}"]["private_key"] = typo
        with pytest.raises(InvalidCredentials) as info:
            TestCA.from_json(json.dumps(ca))
        assert_hidden(key, str(info.value))


@settings(max_examples=20, deadline=None)
@given(SUITES, st.randoms(use_true_random=False))
def test_a_private_key_of_another_certificate_is_not_echoed(suite, rng) -> None:
    issued = ISSUED[suite.id]
    other = CA.issue(EUI, suite, rng=rng)
    with pytest.raises(InvalidCredentials, match="does not match the certificate") as info:
        Credentials.from_hex(
            ca_public_key=issued.ca_public_key.hex(),
            certificate=issued.certificate.hex(),
            private_key=other.private_key.hex(),
        )
    assert_hidden(other.private_key, str(info.value))
    assert_hidden(issued.private_key, str(info.value))


@given(st.binary(min_size=16, max_size=64))
def test_files_that_are_not_utf8_json_do_not_echo_their_bytes(junk: bytes) -> None:
    data = ISSUED[1].to_json().encode() + b"\xff" + junk
    for load in (Credentials.from_json, TestCA.from_json):
        with pytest.raises(InvalidCredentials) as info:
            load(data)
        assert "0xff" not in str(info.value).lower()
        assert_hidden(junk, str(info.value))


def test_not_valid_hex_says_where() -> None:
    document = {**ISSUED[1].to_dict(), "private_key": "00 112G"}
    with pytest.raises(InvalidCredentials) as info:
        Credentials.from_json(json.dumps(document))
    assert str(info.value) == "private_key is not valid hex (a non-hex character at 7)"
    document["private_key"] = "00112"
    with pytest.raises(InvalidCredentials) as info:
        Credentials.from_json(json.dumps(document))
    assert str(info.value) == "private_key is not valid hex (an odd number of hex digits)"
    ca = json.loads(CA.to_json())
    ca["suite2"]["private_key"] = "00 112G"
    with pytest.raises(InvalidCredentials) as info:
        TestCA.from_json(json.dumps(ca))
    assert str(info.value) == "suite2.private_key is not valid hex (a non-hex character at 7)"


def test_reprs_show_no_private_key_or_key_data() -> None:
    for issued in ISSUED.values():
        assert_hidden(issued.private_key, repr(issued))
        assert_hidden(issued.private_key, str(issued))
    for suite_id, authority in CA.authorities.items():
        assert_hidden(authority.private_key, repr(authority))
        assert_hidden(authority.private_key, repr(CA))
        assert suite_id in (1, 2)
    key = bytes(range(16))
    established = Established(key_data=key, partner_eui64=EUI, suite=SUITE1)
    assert_hidden(key, repr(established))
    computed = KeysComputed(mac_key=key, key_data=key[::-1], macu=b"u", macv=b"v")
    assert_hidden(key, repr(computed))
    assert_hidden(key[::-1], repr(computed))


def test_a_private_key_pasted_as_a_certificate_is_not_echoed() -> None:
    """``zse cert inspect`` parses its argument as a certificate: a key with a typo stays out."""
    key = ISSUED[SUITE1.id].private_key.hex()
    with pytest.raises(InvalidCertificate) as info:
        ImplicitCertificate.from_hex(key[:10] + "z" + key[10:])
    assert str(info.value) == "certificate is not valid hex (a non-hex character at 11)"
    assert key[:10] not in str(info.value)
