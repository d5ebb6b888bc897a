"""SE Annex C.5 (suite 1) vectors: every intermediate value, and the state machine end to end."""

from __future__ import annotations

import doctest
from typing import Any

import pytest

import zse.cbke
from tests.cbke.conftest import ecmqv_both_sides
from zse.cbke import (
    SUITE1,
    Credentials,
    Established,
    ImplicitCertificate,
    InitiateKeyEstablishmentRequest,
    Initiator,
    Responder,
    confirmation_macs,
    derive_keys,
    public_key_from_private,
)

h = bytes.fromhex
PINNED_API = [
    "SUITE1", "SUITE2", "CertificateAuthority", "Computation", "ComputeResult",
    "ConfirmKeyDataRequest", "ConfirmKeyDataResponse", "Credentials", "EphemeralDataRequest",
    "EphemeralDataResponse", "Established", "Event", "ImplicitCertificate",
    "InitiateKeyEstablishmentRequest", "InitiateKeyEstablishmentResponse", "Initiator",
    "InvalidCertificate", "InvalidCredentials", "InvalidPoint", "KeyEstablishmentServer",
    "Message", "Responder", "State", "Step", "Suite", "Suite1Certificate", "Suite2Certificate",
    "TerminateKeyEstablishment", "TerminateStatus", "Terminated", "TestCA", "confirmation_macs",
    "derive_keys", "ecmqv", "eui64_bytes", "generate_key_pair", "public_key_from_private",
    "run_inline", "sign",
    "supported_suites", "verify",
]  # fmt: skip
PARTIES = ("initiator_U", "responder_V")


@pytest.mark.parametrize("party", PARTIES)
def test_certificate_reconstructs_static_public_key(c5: Any, party: str) -> None:
    cert = ImplicitCertificate.from_bytes(h(c5[party]["certificate"]))
    assert cert.suite is SUITE1
    assert cert.subject == h(c5[party]["ieee"])
    assert cert.issuer == b"TESTSECA"
    public = cert.reconstruct_public_key(h(c5["ca_public_key"]))
    assert public.hex().upper() == c5[party]["static_public"]


@pytest.mark.parametrize("party", PARTIES)
@pytest.mark.parametrize("key", ["static", "ephemeral"])
def test_private_to_public(c5: Any, party: str, key: str) -> None:
    public = public_key_from_private(SUITE1, h(c5[party][f"{key}_private"]))
    assert public.hex().upper() == c5[party][f"{key}_public"]


def test_z_from_both_sides(c5: Any) -> None:
    u, v = c5["initiator_U"], c5["responder_V"]
    z_u, z_v = ecmqv_both_sides(
        SUITE1, u, v, u_ephemeral=h(u["ephemeral_private"]), v_ephemeral=h(v["ephemeral_private"])
    )
    assert len(z_u) == 21
    assert z_u.hex().upper() == c5["shared_secret_Z"]
    assert z_v == z_u


def test_mac_key_and_key_data(c5: Any) -> None:
    mac_key, key_data = derive_keys(h(c5["shared_secret_Z"]))
    assert mac_key.hex().upper() == c5["mac_key"]
    assert key_data.hex().upper() == c5["key_data"]


def test_confirmation_macs(c5: Any) -> None:
    u, v = c5["initiator_U"], c5["responder_V"]
    macu, macv = confirmation_macs(
        h(c5["mac_key"]),
        h(u["ieee"]),
        h(v["ieee"]),
        h(u["ephemeral_public"]),
        h(v["ephemeral_public"]),
    )
    assert macu.hex().upper() == c5["MACU"]
    assert macv.hex().upper() == c5["MACV"]


def test_initiate_request_prefix(cred_u: Credentials) -> None:
    """C.5's Initiate Key Establishment Request: suite 1, 3 s and 6 s, then the certificate."""
    message = InitiateKeyEstablishmentRequest(
        suite=1,
        ephemeral_data_generate_time=3,
        confirm_key_generate_time=6,
        identity=cred_u.certificate.data,
    )
    payload = message.encode()
    assert payload[:4] == h("01000306")
    assert payload[4:] == cred_u.certificate.data
    assert len(payload) == 52


def test_machine_run_with_vector_ephemeral_keys(
    c5: Any, cred_u: Credentials, cred_v: Credentials, relay: Any
) -> None:
    """The whole exchange over encoded payloads; both sides end with C.5's KeyData."""
    initiator = Initiator(
        cred_u, cred_v.eui64, ephemeral_private_key=h(c5["initiator_U"]["ephemeral_private"])
    )
    responder = Responder(
        cred_v, cred_u.eui64, ephemeral_private_key=h(c5["responder_V"]["ephemeral_private"])
    )
    transcript = relay(initiator, responder, initiator.start(now=100.0), now=100.0)
    sent = transcript.full_exchange()
    ephemeral_u = sent["U->V", "EphemeralDataRequest"]
    ephemeral_v = sent["V->U", "EphemeralDataResponse"]
    assert ephemeral_u.ephemeral_data.hex().upper() == c5["initiator_U"]["ephemeral_public"]
    assert ephemeral_v.ephemeral_data.hex().upper() == c5["responder_V"]["ephemeral_public"]
    assert sent["U->V", "ConfirmKeyDataRequest"].mac.hex().upper() == c5["MACU"]
    assert sent["V->U", "ConfirmKeyDataResponse"].mac.hex().upper() == c5["MACV"]
    key_data = h("86D58AAA998E2FAEFAF9FEF49606543A")
    assert transcript.u_events == [
        Established(key_data=key_data, partner_eui64=h("0000000000000001"), suite=SUITE1)
    ]
    assert transcript.v_events == [
        Established(key_data=key_data, partner_eui64=h("0000000000000002"), suite=SUITE1)
    ]
    assert initiator.key_data == responder.key_data == key_data
    assert initiator.next_deadline() is None
    assert responder.next_deadline() is None


def test_public_api_is_pinned_and_documented() -> None:
    assert zse.cbke.__all__ == PINNED_API
    assert all(hasattr(zse.cbke, name) for name in zse.cbke.__all__)
    assert doctest.testmod(zse.cbke).failed == 0
