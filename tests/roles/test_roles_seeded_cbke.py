"""What the roles need from zse.cbke: the partner's public key in Established, and seeded
randomness (test CA, certificates, ephemeral keys) so that a simulation is repeatable."""

from __future__ import annotations

import random

from zse.cbke import SUITE1, SUITE2
from zse.cbke.ca import TestCA
from zse.cbke.machine import Established, Initiator, Responder, run_inline

U, V = bytes.fromhex("000D6F0000000001"), bytes.fromhex("000D6F00000000E5")


def exchange(ca: TestCA, suite, seed: int | None) -> tuple[list, list, list]:
    """A full exchange run inline; returns (initiator events, responder events, messages)."""
    rng_u = None if seed is None else random.Random(seed)
    rng_v = None if seed is None else random.Random(seed + 1)
    cred_u, cred_v = ca.issue(U, suite), ca.issue(V, suite)
    initiator = Initiator(cred_u, V, partner_suites=1 << (suite.id - 1), rng=rng_u)
    responder = Responder(cred_v, U, rng=rng_v)
    sent: list = []
    u_events: list = []
    v_events: list = []
    step = run_inline(initiator, initiator.start(0.0), 0.0)
    while step.send:
        sent += step.send
        u_events += step.events
        v_step = run_inline(responder, _feed(responder, step.send), 0.0)
        v_events += v_step.events
        sent += v_step.send
        if not v_step.send:
            break
        step = run_inline(initiator, _feed(initiator, v_step.send), 0.0)
    u_events += step.events
    return u_events, v_events, [cred_u.public_key, cred_v.public_key, sent]


def _feed(machine, messages):
    from zse.cbke.machine import Step  # noqa: PLC0415

    step = Step()
    for message in messages:
        step = step.then(machine.receive(message, 0.0))
    return step


def test_established_carries_the_partners_public_key_on_both_sides():
    ca = TestCA.generate()
    for suite in (SUITE1, SUITE2):
        u_events, v_events, (key_u, key_v, _) = exchange(ca, suite, None)
        (u_done,) = [e for e in u_events if isinstance(e, Established)]
        (v_done,) = [e for e in v_events if isinstance(e, Established)]
        assert u_done.key_data == v_done.key_data
        assert u_done.partner_public_key == key_v
        assert v_done.partner_public_key == key_u


def test_seeded_randomness_repeats_certificates_and_exchanges_and_unseeded_does_not():
    ca_a, ca_b = TestCA.generate(rng=random.Random(3)), TestCA.generate(rng=random.Random(3))
    assert ca_a.to_json() == ca_b.to_json()
    assert ca_a.to_json() != TestCA.generate(rng=random.Random(4)).to_json()
    for suite in (SUITE1, SUITE2):
        one = ca_a.issue(U, suite, rng=random.Random(9))
        two = ca_b.issue(U, suite, rng=random.Random(9))
        assert one.certificate.data == two.certificate.data
        assert one.private_key == two.private_key
        assert ca_a.issue(U, suite).certificate.data != one.certificate.data
    _, _, (_, _, seeded) = exchange(ca_a, SUITE1, 11)
    _, _, (_, _, again) = exchange(ca_a, SUITE1, 11)
    _, _, (_, _, unseeded) = exchange(ca_a, SUITE1, None)
    ephemeral = [m for m in seeded if type(m).__name__.startswith("EphemeralData")]
    assert len(ephemeral) == 2
    assert [m.encode() for m in ephemeral] == [
        m.encode() for m in again if type(m).__name__.startswith("EphemeralData")
    ]
    assert [m.encode() for m in ephemeral] != [
        m.encode() for m in unseeded if type(m).__name__.startswith("EphemeralData")
    ]
