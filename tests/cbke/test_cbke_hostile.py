"""Hostile review of Key Establishment (SE C.3), session 23: what a peer's Terminate with a
status C.3.1.3.4 does not define does to a responder that has no exchange with it.
Sans-IO: ``now`` is the virtual clock."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.cbke.conftest import EUI_A
from zse.cbke import Initiator, KeyEstablishmentServer, State, run_inline
from zse.cbke.machine import Responder, Terminated
from zse.cbke.messages import TerminateKeyEstablishment

TERMINATE = TerminateKeyEstablishment.command_id


@pytest.mark.parametrize("status", [0x00, 0x09, 0xFF])
def test_a_terminate_with_no_exchange_is_ignored_whatever_its_status(
    suite1_pair: Any, status: int
) -> None:
    """A Terminate from a partner with no exchange under way ends nothing: a well-formed one
    was ignored, but one whose status is not a C.3.1.3.4 status (undecodable) made an
    exchange that never was end "by the peer" (an event the service tells its listeners)
    and had the partner's next Initiate answered NO_RESOURCES for the wait time."""
    cred_u, cred_v = suite1_pair
    server = KeyEstablishmentServer(cred_v)
    step = server.receive_payload(EUI_A, TERMINATE, bytes((status, 0xFF, 0x01, 0x00)), 0.0)
    assert (step.send, step.events) == ((), ())
    responder = Responder(cred_v, EUI_A)
    step = responder.receive_payload(TERMINATE, bytes((status, 0xFF, 0x01, 0x00)), 0.0)
    assert (step.send, step.events) == ((), ())
    # the partner's Initiate right after is served, not told to wait
    request = Initiator(cred_u, cred_v.eui64).start(1.0).send[0]
    step = server.run_inline(EUI_A, server.receive(EUI_A, request, 1.0), 1.0)
    assert [type(m).__name__ for m in step.send] == ["InitiateKeyEstablishmentResponse"]


def test_a_message_after_the_deadline_does_not_revive_the_exchange(suite1_pair: Any) -> None:
    """The exchange ends at its deadline, the partner's generate time plus the margin (SE
    C.3.1.3.1): a message that comes later, before the shell's timer had ``handle_timeout``
    run (a busy loop, an inter-PAN server serving a flood), carried the exchange on, key
    and all. The machine is fed ``now``: it times the exchange out instead, sending nothing."""
    cred_u, cred_v = suite1_pair
    initiator = Initiator(cred_u, cred_v.eui64)
    responder = Responder(cred_v, EUI_A)
    step = run_inline(responder, responder.receive(initiator.start(0.0).send[0], 0.0), 0.0)
    step = run_inline(initiator, initiator.receive(step.send[0], 0.0), 0.0)
    [ephemeral] = step.send
    deadline = responder.next_deadline()
    assert deadline is not None
    late = responder.receive(ephemeral, deadline + 1)
    assert late.send == ()
    assert [(e.timed_out, e.status) for e in late.events if isinstance(e, Terminated)] == [
        (True, None)
    ]
    assert responder.state is State.TERMINATED
    # the initiator's side as well: the responder's answer after its deadline ends nothing more
    late = initiator.receive_payload(0x03, bytes((0x03, 0x0A, 0x01, 0x00)), 1000.0)
    assert [(e.timed_out, e.by_peer) for e in late.events if isinstance(e, Terminated)] == [
        (True, False)
    ]


#: What a hostile network does to one message in flight (SE C.3.1's order is U, V, U, V, ...).
MUTATIONS = st.one_of(
    st.just(("as sent", 0)),
    st.tuples(st.just("cut"), st.integers(0, 90)),
    st.tuples(st.just("flip"), st.integers(0, 8 * 90 - 1)),
    st.tuples(st.just("other command"), st.integers(0, 5)),
    st.tuples(st.just("replay"), st.integers(0, 20)),
    st.tuples(st.just("late"), st.integers(1, 600)),
)


def _mutate(
    command: int, payload: bytes, how: tuple[str, int], seen: list[tuple[int, bytes]]
) -> tuple[int, bytes, float]:
    """One message as the partner receives it, and the seconds it took."""
    kind, n = how
    if kind == "cut":
        return command, payload[: n % (len(payload) + 1)], 0.0
    if kind == "flip" and payload:
        flipped = bytearray(payload)
        flipped[(n // 8) % len(flipped)] ^= 1 << (n % 8)
        return command, bytes(flipped), 0.0
    if kind == "other command":
        return n, payload, 0.0
    if kind == "replay" and seen:
        return *seen[n % len(seen)], 0.0
    return command, payload, float(n) if kind == "late" else 0.0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutations=st.lists(MUTATIONS, min_size=1, max_size=8))
@example(mutations=[("as sent", 0)] * 6)
def test_an_exchange_through_a_hostile_network_ends_cleanly(
    suite1_pair: Any, mutations: list[tuple[str, int]]
) -> None:
    """Every message of an exchange cut, flipped, replaced by another command, a replay or
    late: neither side raises, neither waits without a deadline, and sides that both end with
    a key end with the same one."""
    cred_u, cred_v = suite1_pair
    initiator = Initiator(cred_u, cred_v.eui64)
    server = KeyEstablishmentServer(cred_v)
    now = 0.0
    outgoing = [(m.command_id, m.encode()) for m in initiator.start(now).send]
    seen: list[tuple[int, bytes]] = []
    to_server = True
    for how in mutations:
        if not outgoing:
            break
        received = []
        for sent in outgoing:
            command, payload, took = _mutate(*sent, how, seen)
            seen.append((command, payload))
            now += took
            if to_server:
                step = server.receive_payload(EUI_A, command, payload, now)
                step = server.run_inline(EUI_A, step, now)
            else:
                step = run_inline(initiator, initiator.receive_payload(command, payload, now), now)
            received += [(m.command_id, m.encode()) for m in step.send]
        outgoing, to_server = received, not to_server
    responder = server.session(EUI_A)
    if len(mutations) >= 6 and all(kind == "as sent" for kind, _ in mutations[:6]):
        assert responder is not None
        assert initiator.state is State.ESTABLISHED is responder.state
    now += 1000.0
    for machine in [initiator] + ([] if responder is None else [responder]):
        assert machine.state in {State.IDLE, State.ESTABLISHED, State.TERMINATED} or (
            machine.next_deadline() is not None
        )
    server.handle_timeout(now)
    initiator.handle_timeout(now)
    if responder is not None and State.ESTABLISHED is initiator.state is responder.state:
        assert initiator.key_data == responder.key_data


def test_an_initiate_after_the_deadline_starts_the_new_exchange(suite1_pair: Any) -> None:
    """The partner's exchange went quiet (its Ephemeral Data lost), the partner timed out
    and starts again. Its new Initiate, reaching the server after the old session's deadline
    but before the shell's timer ran ``handle_timeout`` (an inter-PAN hub reading a queued
    frame, a busy loop), ends the old session as its timeout does and is served: the timer
    first, it was; the message first, it was dropped unanswered (timed out as the old
    session's), and the partner waited in vain for an answer."""
    cred_u, cred_v = suite1_pair
    server = KeyEstablishmentServer(cred_v)
    first = Initiator(cred_u, cred_v.eui64).start(0.0).send[0]
    step = server.run_inline(EUI_A, server.receive(EUI_A, first, 0.0), 0.0)
    assert [type(m).__name__ for m in step.send] == ["InitiateKeyEstablishmentResponse"]
    deadline = server.next_deadline()
    assert deadline is not None
    again = Initiator(cred_u, cred_v.eui64).start(deadline + 1).send[0]
    step = server.run_inline(EUI_A, server.receive(EUI_A, again, deadline + 1), deadline + 1)
    assert [type(m).__name__ for m in step.send] == ["InitiateKeyEstablishmentResponse"]
    assert [(e.timed_out, e.by_peer) for e in step.events if isinstance(e, Terminated)] == [
        (True, False)
    ]
    session = server.session(EUI_A)
    assert session is not None
    assert session.state is not State.TERMINATED
