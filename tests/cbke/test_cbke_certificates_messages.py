"""Certificate layouts and checks, message codecs, credentials and the test CA; garbage fuzzing."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.cbke import (
    SUITE1,
    SUITE2,
    ConfirmKeyDataRequest,
    Credentials,
    EphemeralDataResponse,
    ImplicitCertificate,
    InitiateKeyEstablishmentRequest,
    InitiateKeyEstablishmentResponse,
    InvalidCredentials,
    Suite1Certificate,
    Suite2Certificate,
    TerminateKeyEstablishment,
    TerminateStatus,
    TestCA,
    public_key_from_private,
)
from zse.cbke.messages import (
    CLIENT_COMMANDS,
    SERVER_COMMANDS,
    decode_client_command,
    decode_server_command,
)
from zse.errors import DecodeError, InvalidCertificate, InvalidFrame, InvalidPoint

h = bytes.fromhex
EUI = h("0011223344556677")


# -- certificates ---------------------------------------------------------------------------


def test_suite1_layout(c5: Any) -> None:
    data = h(c5["responder_V"]["certificate"])
    cert = ImplicitCertificate.from_bytes(data)
    assert isinstance(cert, Suite1Certificate)
    assert cert.reconstruction_point == data[:22]
    assert cert.subject == data[22:30] == h("0000000000000001")
    assert cert.issuer == data[30:38]
    assert cert.profile_data == h("01090006000000000000")
    assert bytes(cert) == data
    assert cert.hex() == c5["responder_V"]["certificate"]
    assert ImplicitCertificate.from_hex(" ".join(c5["responder_V"]["certificate"])) == cert


def test_suite2_layout(suite2_pair: Any) -> None:
    cert = suite2_pair[0].certificate
    data = cert.data
    assert isinstance(cert, Suite2Certificate)
    assert len(data) == 74
    assert data[0] == 0x00
    assert cert.serial == data[1:9]
    assert (data[9], data[10]) == (0x0D, 0x08)
    assert cert.issuer == data[11:19] != b"ZSETSTCA"  # derived from the CA's key
    assert cert.valid_from == int.from_bytes(data[19:24]) == 0
    assert cert.valid_to == int.from_bytes(data[24:28]) == 0xFFFFFFFF
    assert cert.expires is None
    assert cert.subject == data[28:36] == EUI
    assert cert.key_usage == data[36] == 0x08
    assert cert.allows_key_agreement
    assert cert.reconstruction_point == data[37:]
    assert ImplicitCertificate.from_bytes(data, SUITE2) == cert


def test_suite2_validity(test_ca: TestCA) -> None:
    cert = test_ca.issue(EUI, SUITE2, valid_from=1_000, valid_to=100, serial=b"S" * 8).certificate
    assert isinstance(cert, Suite2Certificate)
    assert cert.serial == b"S" * 8
    assert cert.expires == 1_100
    assert not cert.is_valid_at(999)
    assert cert.is_valid_at(1_000)
    assert cert.is_valid_at(1_100)
    assert not cert.is_valid_at(1_101)


def test_suite2_key_usage_needs_the_key_agreement_bit(test_ca: TestCA) -> None:
    """Key usage 0x08 is key agreement (SE C.4.2.2): without it CBKE refuses the certificate."""
    for key_usage, agrees in ((0x80, False), (0x88, True), (0xF7, False)):
        cert = test_ca.issue(EUI, SUITE2, key_usage=key_usage).certificate
        assert isinstance(cert, Suite2Certificate)
        assert (cert.key_usage, cert.allows_key_agreement) == (key_usage, agrees)


@pytest.mark.parametrize(
    ("offset", "value", "field"),
    [(0, 0x01, "type"), (9, 0x0E, "curve"), (10, 0x09, "hash"), (37, 0x04, "point")],
)
def test_suite2_field_checks(suite2_pair: Any, offset: int, value: int, field: str) -> None:
    data = bytearray(suite2_pair[0].certificate.data)
    data[offset] = value
    with pytest.raises(InvalidCertificate, match=f"offset {offset}") as info:
        ImplicitCertificate.from_bytes(bytes(data))
    assert field in str(info.value)


@pytest.mark.parametrize("length", [0, 47, 49, 73, 75])
def test_wrong_lengths(length: int) -> None:
    with pytest.raises(InvalidCertificate, match="48 bytes"):
        ImplicitCertificate.from_bytes(b"\x02" * length)


def test_suite_mismatch_and_bad_hex(c5: Any) -> None:
    with pytest.raises(InvalidCertificate, match="74 bytes"):
        ImplicitCertificate.from_bytes(h(c5["responder_V"]["certificate"]), SUITE2)
    with pytest.raises(InvalidCertificate, match="hex"):
        ImplicitCertificate.from_hex("zz")
    with pytest.raises(InvalidCertificate, match="bytes"):
        ImplicitCertificate.from_bytes("03" * 48)  # type: ignore[arg-type]


def test_corrupted_certificate_changes_the_key(c5: Any) -> None:
    """Any flipped bit (here in the subject) reconstructs another key: credentials refuse it."""
    data = bytearray(h(c5["responder_V"]["certificate"]))
    data[29] ^= 0x01
    with pytest.raises(InvalidCredentials, match="does not match"):
        Credentials(
            ca_public_key=h(c5["ca_public_key"]),
            certificate=ImplicitCertificate.from_bytes(bytes(data)),
            private_key=h(c5["responder_V"]["static_private"]),
        )


def test_invalid_reconstruction_point(c5: Any) -> None:
    data = h(c5["responder_V"]["certificate"])
    bad = ImplicitCertificate.from_bytes(b"\x02" * 22 + data[22:])  # x of trace 1
    with pytest.raises(InvalidCertificate, match="reconstruction point"):
        bad.reconstruct_public_key(h(c5["ca_public_key"]))
    with pytest.raises(InvalidPoint):
        ImplicitCertificate.from_bytes(data).reconstruct_public_key(b"\x02" * 22)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_garbage_certificates(data: bytes) -> None:
    try:
        cert = ImplicitCertificate.from_bytes(data)
    except InvalidCertificate:
        return
    assert len(data) == {Suite1Certificate: 48, Suite2Certificate: 74}[type(cert)]
    assert cert.data == data


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=48, max_size=48))
def test_garbage_suite1_reconstruction(data: bytes) -> None:
    try:
        cert = ImplicitCertificate.from_bytes(data)
        public = cert.reconstruct_public_key(h("0200FDE8A7F3D1084224962A4E7C54E69AC3F04DA6B8"))
    except DecodeError:
        return
    assert len(public) == 22


# -- messages -------------------------------------------------------------------------------


def test_message_round_trips(cred_u: Credentials) -> None:
    messages = [
        InitiateKeyEstablishmentRequest(
            suite=1,
            ephemeral_data_generate_time=3,
            confirm_key_generate_time=6,
            identity=cred_u.certificate.data,
        ),
        InitiateKeyEstablishmentResponse(
            suite=0x0080,
            ephemeral_data_generate_time=0,
            confirm_key_generate_time=255,
            identity=b"\x01\x02",
        ),
        EphemeralDataResponse(ephemeral_data=b"\x03" * 37),
        ConfirmKeyDataRequest(mac=bytes(range(16))),
        TerminateKeyEstablishment(status=TerminateStatus.INVALID_CERTIFICATE, wait_time=9, suite=2),
    ]
    for message in messages:
        assert type(message).decode(message.encode()) == message
    assert messages[-1].encode() == h("06090200")


@pytest.mark.parametrize(
    ("command", "payload", "where"),
    [
        (0x00, h("0100"), "at least 4"),
        (0x00, h("01000306") + bytes(47), "48-byte identity"),
        (0x00, h("02000306") + bytes(48), "74-byte identity"),
        (0x01, bytes(21), "22 or 37"),
        (0x02, bytes(17), "16 bytes"),
        (0x03, h("010001"), "4 bytes"),
        (0x03, h("07000100"), "unknown status 0x07"),
        (0x04, b"", "no client command"),
    ],
)
def test_decode_errors(command: int, payload: bytes, where: str) -> None:
    with pytest.raises(InvalidFrame, match=where):
        decode_client_command(command, payload)


def test_encode_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="8 bits"):
        TerminateKeyEstablishment(status=TerminateStatus.BAD_MESSAGE, wait_time=256, suite=1)
    with pytest.raises(ValueError, match="48 bytes"):
        InitiateKeyEstablishmentRequest(
            suite=1, ephemeral_data_generate_time=1, confirm_key_generate_time=1, identity=b""
        )
    with pytest.raises(ValueError, match="16 bytes"):
        ConfirmKeyDataRequest(mac=b"")


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=255), st.binary(max_size=100))
def test_garbage_into_every_decoder(command: int, payload: bytes) -> None:
    for decode, table in (
        (decode_client_command, CLIENT_COMMANDS),
        (decode_server_command, SERVER_COMMANDS),
    ):
        try:
            message = decode(command, payload)
        except InvalidFrame:
            continue
        assert type(message) is table[command]
        assert message.encode() == payload


# -- credentials and the CA -----------------------------------------------------------------


def test_credentials_json_round_trip(cred_v: Credentials, tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text(cred_v.to_json())
    loaded = Credentials.load(path)
    assert loaded == cred_v
    assert loaded.public_key == h("030290A1F5C08DAD5F2945E335620C7A98FAC46666A1")
    assert loaded.eui64 == h("0000000000000001")
    assert "private_key" not in repr(loaded)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("[]", "must be an object"),
        ("{", "not JSON"),
        ("[" * 100_000, "not JSON: arrays or objects nested too deep"),
        ('{"suite": NaN}', "not JSON: NaN is not a JSON number"),
        ('{"suite": 1e999}', "not JSON: a number too large"),
        ('{"private_key": "\\ud800"}', "not JSON: a string with an unpaired surrogate"),
        ('{"certificate": "00"}', "lacks ca_public_key, private_key"),
        ('{"suite": 3, "ca_public_key": "", "certificate": "", "private_key": ""}', "suite 3"),
        ('{"suite": "1", "ca_public_key": "", "certificate": "", "private_key": ""}', "suite"),
    ],
)
def test_credentials_json_errors(document: str, message: str) -> None:
    with pytest.raises(InvalidCredentials, match=message):
        Credentials.from_json(document)


def test_mismatched_private_key_is_a_clear_error(c5: Any) -> None:
    with pytest.raises(InvalidCredentials, match="does not match the certificate"):
        Credentials.from_hex(
            ca_public_key=c5["ca_public_key"],
            certificate=c5["responder_V"]["certificate"],
            private_key=c5["initiator_U"]["static_private"],
        )
    with pytest.raises(InvalidCredentials, match="private key"):
        Credentials.from_hex(
            ca_public_key=c5["ca_public_key"],
            certificate=c5["responder_V"]["certificate"],
            private_key="00",
        )
    with pytest.raises(InvalidCredentials, match="CA public key"):
        Credentials.from_hex(
            ca_public_key="0400",
            certificate=c5["responder_V"]["certificate"],
            private_key=c5["responder_V"]["static_private"],
        )


def test_missing_file() -> None:
    with pytest.raises(InvalidCredentials, match="cannot read"):
        Credentials.load("/nonexistent/creds.json")


@pytest.mark.parametrize("suite", [SUITE1, SUITE2])
def test_ca_issues_consistent_credentials(test_ca: TestCA, suite: Any) -> None:
    creds = test_ca.issue(EUI, suite)
    assert creds.suite is suite
    assert creds.eui64 == EUI
    assert creds.issuer == test_ca.issuer
    assert creds.public_key == public_key_from_private(suite, creds.private_key)
    assert creds.public_key == creds.certificate.reconstruct_public_key(
        test_ca.authority(suite).public_key
    )


def test_ca_json_round_trip_and_checks(test_ca: TestCA) -> None:
    text = test_ca.to_json()
    assert TestCA.from_json(text) == test_ca
    document = json.loads(text)
    document["suite1"]["public_key"] = document["suite2"]["public_key"]
    with pytest.raises(InvalidCredentials, match="does not match"):
        TestCA.from_json(json.dumps(document))
    with pytest.raises(InvalidCredentials, match="no suite1 or suite2"):
        TestCA.from_json('{"issuer": "0011223344556677"}')
    with pytest.raises(InvalidCredentials, match="8 bytes"):
        TestCA.from_json('{"issuer": "00", "suite1": {"private_key": "01"}}')
    for garbage in ("[" * 100_000, b'{"issuer": ' + b"9" * 5000 + b"}", '{"issuer": NaN}'):
        with pytest.raises(InvalidCredentials, match="CA file is not JSON: "):
            TestCA.from_json(garbage)
    original = json.loads(text)
    only_suite1 = TestCA.from_json(
        json.dumps({"issuer": original["issuer"], "suite1": original["suite1"]})
    )
    with pytest.raises(InvalidCredentials, match="no key for suite 2"):
        only_suite1.issue(EUI, SUITE2)


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(
        st.sampled_from(["issuer", "suite", "suite1", "suite2", "private_key", "public_key",
                         "certificate", "ca_public_key"]) | st.text(max_size=6),
        inner,
        max_size=5,
    ),
    max_leaves=10,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    _JSONISH.map(lambda v: json.dumps(v, allow_nan=True))
    | st.binary(max_size=80)
    | st.text(max_size=80)
)
def test_credential_and_ca_files_of_garbage_are_invalid_credentials(text: str | bytes) -> None:
    """Whatever a file holds: credentials, a CA, or InvalidCredentials (never a RecursionError,
    an OverflowError or another exception of the standard library's)."""
    for load in (Credentials.from_json, TestCA.from_json):
        with contextlib.suppress(InvalidCredentials):
            load(text)
