"""Certificate-based key establishment (SE 07-5356 Annex C): the safe entry points.

Implicit certificates (ECQV), ECMQV key agreement with key confirmation, ECDSA, credentials,
the Key Establishment cluster's sans-IO state machines and a test CA. The curve arithmetic
underneath lives in :mod:`zse.cbke.hazmat` and is not constant-time (see ``docs/security.md``).

>>> from zse.cbke import SUITE1, TestCA, Initiator, Responder, run_inline
>>> ca = TestCA.generate()
>>> meter = ca.issue(bytes.fromhex("0011223344556677"), SUITE1)
>>> ihd = ca.issue(bytes.fromhex("8899AABBCCDDEEFF"), SUITE1)
>>> initiator, responder = Initiator(ihd, meter.eui64), Responder(meter, ihd.eui64)
>>> outbox = [(responder, m) for m in initiator.start(now=0.0).send]
>>> while outbox:
...     machine, message = outbox.pop(0)
...     step = run_inline(machine, machine.receive(message, now=0.0), now=0.0)
...     peer = initiator if machine is responder else responder
...     outbox += [(peer, m) for m in step.send]
>>> initiator.key_data == responder.key_data != None
True
"""

from zse.cbke.ca import CertificateAuthority, TestCA, eui64_bytes
from zse.cbke.certificate import ImplicitCertificate, Suite1Certificate, Suite2Certificate
from zse.cbke.credentials import Credentials, InvalidCredentials
from zse.cbke.ecdsa import sign, verify
from zse.cbke.keys import (
    confirmation_macs,
    derive_keys,
    ecmqv,
    generate_key_pair,
    public_key_from_private,
)
from zse.cbke.machine import (
    Computation,
    ComputeResult,
    Established,
    Event,
    Initiator,
    KeyEstablishmentServer,
    Responder,
    State,
    Step,
    Terminated,
    run_inline,
    supported_suites,
)
from zse.cbke.messages import (
    ConfirmKeyDataRequest,
    ConfirmKeyDataResponse,
    EphemeralDataRequest,
    EphemeralDataResponse,
    InitiateKeyEstablishmentRequest,
    InitiateKeyEstablishmentResponse,
    Message,
    TerminateKeyEstablishment,
    TerminateStatus,
)
from zse.cbke.suites import SUITE1, SUITE2, Suite
from zse.errors import InvalidCertificate, InvalidPoint

__all__ = [
    "SUITE1",
    "SUITE2",
    "CertificateAuthority",
    "Computation",
    "ComputeResult",
    "ConfirmKeyDataRequest",
    "ConfirmKeyDataResponse",
    "Credentials",
    "EphemeralDataRequest",
    "EphemeralDataResponse",
    "Established",
    "Event",
    "ImplicitCertificate",
    "InitiateKeyEstablishmentRequest",
    "InitiateKeyEstablishmentResponse",
    "Initiator",
    "InvalidCertificate",
    "InvalidCredentials",
    "InvalidPoint",
    "KeyEstablishmentServer",
    "Message",
    "Responder",
    "State",
    "Step",
    "Suite",
    "Suite1Certificate",
    "Suite2Certificate",
    "TerminateKeyEstablishment",
    "TerminateStatus",
    "Terminated",
    "TestCA",
    "confirmation_macs",
    "derive_keys",
    "ecmqv",
    "eui64_bytes",
    "generate_key_pair",
    "public_key_from_private",
    "run_inline",
    "sign",
    "supported_suites",
    "verify",
]
