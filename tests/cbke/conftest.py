"""Fixtures for the CBKE protocol tests: SE Annex C.5 credentials, a test CA, a message relay."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from zse.cbke import (
    SUITE1,
    SUITE2,
    Credentials,
    Event,
    Initiator,
    Responder,
    Step,
    Suite,
    TestCA,
    ecmqv,
    run_inline,
)
from zse.cbke.messages import Message

VECTOR_FILE = Path(__file__).parent.parent / "vectors" / "cbke-suite1.json"
EUI_A = bytes.fromhex("0011223344556677")
EUI_B = bytes.fromhex("8899AABBCCDDEEFF")


@pytest.fixture(scope="session")
def c5() -> Any:
    """SE Annex C.5 (suite 1) vectors."""
    return json.loads(VECTOR_FILE.read_text())


def _credentials(vector: Any, party: str) -> Credentials:
    return Credentials.from_hex(
        ca_public_key=vector["ca_public_key"],
        certificate=vector[party]["certificate"],
        private_key=vector[party]["static_private"],
    )


@pytest.fixture(scope="session")
def cred_u(c5: Any) -> Credentials:
    """The initiator U (device 2) of C.5."""
    return _credentials(c5, "initiator_U")


@pytest.fixture(scope="session")
def cred_v(c5: Any) -> Credentials:
    """The responder V (device 1) of C.5."""
    return _credentials(c5, "responder_V")


@pytest.fixture(scope="session")
def test_ca() -> TestCA:
    return TestCA.generate()


@pytest.fixture(scope="session")
def suite2_pair(test_ca: TestCA) -> tuple[Credentials, Credentials]:
    """Suite-2 credentials for EUI_A (initiator) and EUI_B (responder)."""
    return test_ca.issue(EUI_A, SUITE2), test_ca.issue(EUI_B, SUITE2)


@pytest.fixture(scope="session")
def suite1_pair(test_ca: TestCA) -> tuple[Credentials, Credentials]:
    """Suite-1 credentials for EUI_A (initiator) and EUI_B (responder), from the test CA."""
    return test_ca.issue(EUI_A, SUITE1), test_ca.issue(EUI_B, SUITE1)


#: The six messages of a successful exchange, in order (SE C.3.1, Figure C-2).
FULL_EXCHANGE = [
    ("U->V", "InitiateKeyEstablishmentRequest"),
    ("V->U", "InitiateKeyEstablishmentResponse"),
    ("U->V", "EphemeralDataRequest"),
    ("V->U", "EphemeralDataResponse"),
    ("U->V", "ConfirmKeyDataRequest"),
    ("V->U", "ConfirmKeyDataResponse"),
]


def ecmqv_both_sides(
    suite: Suite, u: dict[str, str], v: dict[str, str], *, u_ephemeral: bytes, v_ephemeral: bytes
) -> tuple[bytes, bytes]:
    """Z as U computes it and as V does, from a vector file's parties (hex members)."""
    h = bytes.fromhex
    z_u = ecmqv(
        suite, h(u["static_private"]), u_ephemeral, h(v["static_public"]), h(v["ephemeral_public"])
    )
    z_v = ecmqv(
        suite, h(v["static_private"]), v_ephemeral, h(u["static_public"]), h(u["ephemeral_public"])
    )
    return z_u, z_v


@dataclass
class Transcript:
    """What a relayed exchange did: the messages sent and each side's events."""

    log: list[tuple[str, Message | bytes]] = field(default_factory=list)
    u_events: list[Event] = field(default_factory=list)
    v_events: list[Event] = field(default_factory=list)

    def full_exchange(self) -> dict[tuple[str, str], Any]:
        """Assert the log is one complete exchange; its messages by (direction, name)."""
        assert [(d, type(m).__name__) for d, m in self.log] == FULL_EXCHANGE
        return {(d, type(m).__name__): m for d, m in self.log}


def relay_messages(
    initiator: Initiator,
    responder: Responder,
    first: Step,
    now: float = 0.0,
    tamper: Callable[[str, Message], Message | bytes | None] | None = None,
) -> Transcript:
    """Carry messages both ways as encoded payloads until both sides are quiet.

    Computations run inline. ``tamper(direction, message)`` may return a replacement message,
    raw payload bytes, or None to leave it.
    """
    transcript = Transcript(u_events=list(first.events))
    log = transcript.log
    queue: list[tuple[str, Message]] = [("U->V", m) for m in first.send]
    while queue:
        direction, message = queue.pop(0)
        sent: Message | bytes = message
        if tamper is not None:
            replaced = tamper(direction, message)
            if replaced is not None:
                sent = replaced
        log.append((direction, sent))
        payload = sent if isinstance(sent, bytes) else sent.encode()
        command = message.command_id
        if direction == "U->V":
            step = run_inline(responder, responder.receive_payload(command, payload, now), now)
            queue += [("V->U", m) for m in step.send]
            transcript.v_events += step.events
        else:
            step = run_inline(initiator, initiator.receive_payload(command, payload, now), now)
            queue += [("U->V", m) for m in step.send]
            transcript.u_events += step.events
    return transcript


@pytest.fixture
def relay() -> Callable[..., Transcript]:
    return relay_messages
