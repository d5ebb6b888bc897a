"""Garbage to the wire decoders no other property test reached (the project rule: bad input
gets the documented DecodeError family, never a crash): ZCL character strings and the DRLC
signature block (zigpy's ``ValueError``, which ``decode_command`` turns into InvalidFrame),
the NWK/APS header measures of ZB 3.3.1 / 2.2.5.1, certificates and credentials written as
hex, and ECMQV's peer public keys (SE C.4.1.3). What decodes re-encodes to the same bytes."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import load_vectors
from zse.cbke.certificate import ImplicitCertificate
from zse.cbke.credentials import Credentials
from zse.cbke.keys import ecmqv, generate_key_pair
from zse.cbke.suites import SUITE1, SUITE2
from zse.drlc.wire import Signature
from zse.errors import DecodeError, InvalidCertificate, InvalidFrame, InvalidPoint
from zse.se.types import CharacterString
from zse.security.frames import aps_header_length, nwk_header_length

CERTIFICATES = load_vectors("cbke-public-certificates.json")["certificates"]
SEPARATORS = st.sampled_from(["", " ", ":", "-", "\t", "\n", "g", "0x", "\u0660", "\udcff"])


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_character_strings_and_signatures_decode_losslessly_or_raise_value_error(data):
    for kind in (CharacterString, Signature):
        try:
            value, rest = kind.deserialize(data)
        except ValueError:
            continue
        assert value.serialize() + rest == data


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=48))
def test_nwk_and_aps_header_lengths_raise_only_invalid_frame(data):
    for measure in (nwk_header_length, aps_header_length):
        try:
            length = measure(data)
        except InvalidFrame:
            continue
        assert 0 < length <= len(data)


def _text(entry: dict[str, str], cut: int, separator: str, flip: int | None) -> str:
    digits = entry["certificate"]
    if flip is not None:
        index = flip % len(digits)
        digits = digits[:index] + "0123456789ABCDEFx"[flip % 17] + digits[index + 1 :]
    cut %= len(digits) + 1
    return digits[:cut] + separator + digits[cut:]


@settings(max_examples=120, deadline=None)
@given(
    entry=st.sampled_from(CERTIFICATES),
    cut=st.integers(0, 200),
    separator=SEPARATORS,
    flip=st.none() | st.integers(0, 10_000),
    suite=st.sampled_from([None, SUITE1, SUITE2]),
    other=st.text(max_size=160),
)
def test_certificates_in_hex_parse_and_reprint_or_raise_invalid_certificate(
    entry, cut, separator, flip, suite, other
):
    for text in (_text(entry, cut, separator, flip), other):
        try:
            cert = ImplicitCertificate.from_hex(text, suite)
        except InvalidCertificate as exc:
            message = str(exc)
            if len(text) >= 8 and text in message:  # the value is never echoed
                raise AssertionError(message) from None
            continue
        digits = "".join(ch for ch in text if ch not in " :-\t\r\n")
        assert cert.hex() == digits.upper()
        assert ImplicitCertificate.from_bytes(bytes(cert)).data == cert.data


@settings(max_examples=100, deadline=None)
@given(
    entry=st.sampled_from(CERTIFICATES),
    ca=st.text(max_size=70) | st.sampled_from(["", "02" * 22, "03" + "00" * 21]),
    private=st.text(max_size=60),
    suite=st.none() | st.integers(-1, 3),
)
def test_credentials_from_hex_raise_only_decode_errors(entry, ca, private, suite):
    for key in (private, entry["private_key"]):
        with contextlib.suppress(DecodeError):
            Credentials.from_hex(
                ca_public_key=ca, certificate=entry["certificate"], private_key=key, suite=suite
            )


PEER_KEYS = st.binary(max_size=40) | st.sampled_from([SUITE1, SUITE2]).flatmap(
    lambda suite: st.tuples(
        st.sampled_from([b"\x02", b"\x03", b"\x04", b"\x00"]),
        st.binary(min_size=suite.public_key_size - 1, max_size=suite.public_key_size - 1),
    ).map(b"".join)
)
OWN = {s: generate_key_pair(s, bytes(s.private_key_size - 1) + b"\x07") for s in (SUITE1, SUITE2)}


@settings(max_examples=40, deadline=None)
@given(suite=st.sampled_from([SUITE1, SUITE2]), static=PEER_KEYS, ephemeral=PEER_KEYS)
def test_ecmqv_peer_keys_of_garbage_raise_only_invalid_point(suite, static, ephemeral):
    private, public = OWN[suite]
    for peer_static, peer_ephemeral in ((static, public), (public, ephemeral)):
        try:
            z = ecmqv(suite, private, private, peer_static, peer_ephemeral)
        except InvalidPoint:
            continue
        assert len(z) == (suite.curve.m + 7) // 8
