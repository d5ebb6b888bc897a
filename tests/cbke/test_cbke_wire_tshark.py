"""Key Establishment's hand-coded wire (:mod:`zse.cbke.messages`) as Wireshark reads it.

Every command zse encodes, both directions, in suite 1 (the SE C.5 certificates, points and
MACs) and suite 2 (the C.6 certificates and points, and a certificate zse's test CA issued with
an expiry), and Terminate Key Establishment with each status both ways, goes on the air in a
ZCL frame inside a pcap (:mod:`zse.pcap`). tshark (Wireshark's packet-zbee-zcl-se.c) must show
exactly the Key Establishment fields zse's values give, no more and no fewer, the certificate's
own fields as :mod:`zse.cbke.certificate` parses them, and nothing malformed.
"""

from __future__ import annotations

import datetime
import random

import pytest

from tests.clusters.se_frames import Dissected, air_frame, dissect, zcl_frame
from tests.conftest import load_vectors
from zse.cbke import SUITE2
from zse.cbke import messages as m
from zse.cbke.ca import TestCA
from zse.cbke.certificate import ImplicitCertificate, Suite1Certificate, Suite2Certificate
from zse.se.ids import KEY_ESTABLISHMENT

SUITE1_VECTORS = load_vectors("cbke-suite1.json")
SUITE2_VECTORS = load_vectors("cbke-suite2.json")
#: A suite-2 certificate that expires (valid to = seconds after valid from, SE C.4.2.2), key
#: agreement only: the C.6 ones never expire and allow signing too.
EXPIRING = (
    TestCA.generate(rng=random.Random(24))
    .issue("00:0d:6f:00:0c:00:00:07", SUITE2, valid_from=0x5F5E1000, valid_to=86_400 * 365)
    .certificate
)


def _octets(vectors: dict, party: str, name: str) -> bytes:
    return bytes.fromhex(vectors[party][name])


MACU = bytes.fromhex(SUITE1_VECTORS["MACU"])
MACV = bytes.fromhex(SUITE1_VECTORS["MACV"])
#: Per suite: (initiator's certificate, responder's, QEU, QEV, MACU, MACV). Suite 2's source
#: gives no MACs: a MAC is 16 octets in both suites, so the C.5 ones serve.
MATERIAL = {
    1: (
        _octets(SUITE1_VECTORS, "initiator_U", "certificate"),
        _octets(SUITE1_VECTORS, "responder_V", "certificate"),
        _octets(SUITE1_VECTORS, "initiator_U", "ephemeral_public"),
        _octets(SUITE1_VECTORS, "responder_V", "ephemeral_public"),
        MACU,
        MACV,
    ),
    2: (
        _octets(SUITE2_VECTORS, "initiator_U", "certificate"),
        bytes(EXPIRING),
        _octets(SUITE2_VECTORS, "initiator_U", "ephemeral_public"),
        _octets(SUITE2_VECTORS, "responder_V", "ephemeral_public"),
        MACU,
        MACV,
    ),
}


def _exchange(suite: int) -> list[tuple[int, m.Message, bool]]:
    """One exchange's six messages in ``suite``: (suite, message, whether the server sends it)."""
    cert_u, cert_v, qeu, qev, macu, macv = MATERIAL[suite]
    messages: list[tuple[m.Message, bool]] = [
        (
            m.InitiateKeyEstablishmentRequest(
                suite=suite,
                ephemeral_data_generate_time=3,
                confirm_key_generate_time=6,
                identity=cert_u,
            ),
            False,
        ),
        (
            m.InitiateKeyEstablishmentResponse(
                suite=suite,
                ephemeral_data_generate_time=11,
                confirm_key_generate_time=25,
                identity=cert_v,
            ),
            True,
        ),
        (m.EphemeralDataRequest(ephemeral_data=qeu), False),
        (m.EphemeralDataResponse(ephemeral_data=qev), True),
        (m.ConfirmKeyDataRequest(mac=macu), False),
        (m.ConfirmKeyDataResponse(mac=macv), True),
    ]
    return [(suite, message, from_server) for message, from_server in messages]


CASES: list[tuple[int, m.Message, bool]] = [
    *_exchange(1),
    *_exchange(2),
    *(
        (
            suite,
            m.TerminateKeyEstablishment(status=status, wait_time=wait, suite=suite),
            from_server,
        )
        for from_server in (False, True)
        for suite in (1, 2)
        for wait, status in enumerate(m.TerminateStatus, start=from_server * 10 + suite)
    ),
]


def _colons(octets: bytes) -> str:
    return ":".join(f"{b:02x}" for b in octets)


def _utc(seconds: int) -> str:
    """An absolute time as tshark shows it."""
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return f"{when:%b} {when.day:2}, {when:%Y %H:%M:%S}.000000000 UTC"


def _certificate_fields(identity: bytes) -> dict[str, str]:
    cert = ImplicitCertificate.from_bytes(identity)
    ke = "zbee_zcl_se.ke.cert."
    if isinstance(cert, Suite1Certificate):
        return {
            ke + "reconst": _colons(cert.reconstruction_point),
            ke + "subject": _colons(cert.subject),
            ke + "issuer": _colons(cert.issuer),
            ke + "profile": _colons(cert.profile_data),
        }
    assert isinstance(cert, Suite2Certificate)
    expires = cert.expires
    return {
        ke + "type": f"0x{cert.certificate_type:02x}",
        ke + "serialno": f"0x{cert.serial.hex()}",
        ke + "curve": f"0x{cert.curve_id:02x}",
        ke + "hash": f"0x{cert.hash_id:02x}",
        ke + "issuer": _colons(cert.issuer),
        ke + "valid.from": _utc(cert.valid_from),
        # tshark labels 0xFFFFFFFF 'does not expire' (its shown time is then left unset)
        ke + "valid.to": "does not expire" if expires is None else _utc(expires),
        ke + "subject": _colons(cert.subject),
        ke + "key.usage.agreement": str(int(cert.allows_key_agreement)),
        ke + "key.usage.signature": str(int(bool(cert.key_usage & 0x80))),
        ke + "reconst": _colons(cert.reconstruction_point),
    }


def expected(message: m.Message, from_server: bool) -> dict[str, str]:
    """Every Key Establishment field tshark should show for ``message``, from zse's values."""
    ke = "zbee_zcl_se.ke."
    fields = {
        ke + ("cmd.srv_tx.id" if from_server else "cmd.srv_rx.id"): f"0x{message.command_id:02x}"
    }
    match message:
        case m.InitiateKeyEstablishmentRequest() | m.InitiateKeyEstablishmentResponse():
            fields[ke + "attr.suite"] = f"0x{message.suite:04x}"
            fields[ke + "init.ephemeral.time"] = str(message.ephemeral_data_generate_time)
            fields[ke + "init.confirm.time"] = str(message.confirm_key_generate_time)
            fields.update(_certificate_fields(message.identity))
        case m.EphemeralDataRequest() | m.EphemeralDataResponse():
            fields[ke + ("qev" if from_server else "qeu")] = _colons(message.ephemeral_data)
        case m.ConfirmKeyDataRequest() | m.ConfirmKeyDataResponse():
            fields[ke + ("macv" if from_server else "macu")] = _colons(message.mac)
        case m.TerminateKeyEstablishment():
            fields[ke + "terminate.status"] = f"0x{message.status:02x}"
            fields[ke + "terminate.wait.time"] = str(message.wait_time)
            fields[ke + "attr.suite"] = f"0x{message.suite:04x}"
    return fields


def shown(packet: Dissected) -> dict[str, str]:
    """Every Key Establishment field tshark shows in ``packet`` (each once)."""
    names = [name for name, _, _ in packet.fields if name.startswith("zbee_zcl_se.ke.")]
    assert len(names) == len(set(names)), names
    fields = {name: packet.show(name)[0] for name in names}
    valid_to = "zbee_zcl_se.ke.cert.valid.to"
    if valid_to in fields and "does not expire" in packet.label(valid_to)[0]:
        fields[valid_to] = "does not expire"
    return fields


@pytest.fixture(scope="module")
def dissected(tmp_path_factory: pytest.TempPathFactory) -> list[Dissected]:
    frames = [
        air_frame(
            KEY_ESTABLISHMENT,
            zcl_frame(message.command_id, message.encode(), from_server=from_server, tsn=seq),
            seq,
        )
        for seq, (_, message, from_server) in enumerate(CASES)
    ]
    return dissect(frames, tmp_path_factory.mktemp("ke"))


def test_every_command_both_suites_and_every_terminate_status_both_ways():
    """The cases cover what zse decodes in each direction, in both suites."""
    covered = {(type(message), from_server, suite) for suite, message, from_server in CASES}
    for from_server, table in ((False, m.CLIENT_COMMANDS), (True, m.SERVER_COMMANDS)):
        for cls in table.values():
            for suite in (1, 2):
                assert (cls, from_server, suite) in covered
    terminates = {
        (message.status, from_server)
        for _, message, from_server in CASES
        if isinstance(message, m.TerminateKeyEstablishment)
    }
    assert terminates == {(s, d) for s in m.TerminateStatus for d in (False, True)}


@pytest.mark.oracle
@pytest.mark.parametrize(
    "index",
    range(len(CASES)),
    ids=[
        f"{type(message).__name__}-suite{suite}-{'server' if from_server else 'client'}-{i}"
        for i, (suite, message, from_server) in enumerate(CASES)
    ],
)
def test_tshark_shows_every_field_with_zses_value(dissected, index):
    _, message, from_server = CASES[index]
    packet = dissected[index]
    assert not packet.malformed, [f for f in packet.fields if f[0].startswith("_ws")]
    assert packet.show("zbee_zcl.dir") == [str(int(from_server))]
    assert shown(packet) == expected(message, from_server)
