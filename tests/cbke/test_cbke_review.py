"""Hostile review of the Key Establishment server's session handling (SE C.3.1, C.4.2).

Sans-IO, on the virtual clock ``now``: the attacker is a device on the network that speaks
the cluster's commands to the ESI, and the asyncio shell's order of events (a computation in
an executor finishing after its session ended) is replayed on the core directly.
"""

from __future__ import annotations

from typing import Any

from tests.cbke.conftest import EUI_A, EUI_B
from zse.cbke import SUITE1, Initiator, KeyEstablishmentServer, State, TestCA
from zse.cbke.machine import DEFAULT_WAIT_TIME, Step, Terminated
from zse.cbke.messages import (
    InitiateKeyEstablishmentRequest,
    InitiateKeyEstablishmentResponse,
    TerminateKeyEstablishment,
    TerminateStatus,
)

S = TerminateStatus


def _request(credentials: Any) -> InitiateKeyEstablishmentRequest:
    message = Initiator(credentials, EUI_B).start(0.0).send[0]
    assert isinstance(message, InitiateKeyEstablishmentRequest)
    return message


def _state(server: KeyEstablishmentServer) -> State | None:
    session = server.session(EUI_A)
    return None if session is None else session.state


def test_a_late_result_of_an_ended_session_is_not_taken_by_the_next(
    test_ca: TestCA, suite1_pair: Any
) -> None:
    """The shell runs each computation in an executor and hands it back with complete():
    one from an exchange that ended meanwhile must not be taken by the partner's next
    exchange (both sessions' first computation used to carry token 1), or the ESI answers
    the second Initiate from the first one's certificate and ephemeral key."""
    server = KeyEstablishmentServer(suite1_pair[1])
    first_certificate = test_ca.issue(EUI_A, SUITE1)  # another certificate for the same EUI
    first = server.receive(EUI_A, _request(first_certificate), 0.0).compute
    assert first is not None
    ended = server.receive(
        EUI_A, TerminateKeyEstablishment(status=S.BAD_MESSAGE, wait_time=0, suite=1), 0.1
    )
    assert [type(e) for e in ended.events] == [Terminated]
    second = server.receive(EUI_A, _request(suite1_pair[0]), 20.0).compute
    assert second is not None
    # the first computation finishes now, in the second session's time
    assert server.complete(EUI_A, first, first.run(), 20.1) == Step()
    assert _state(server) is State.CHECKING_CERTIFICATE
    answer = server.complete(EUI_A, second, second.run(), 20.2)
    assert [type(m) for m in answer.send] == [InitiateKeyEstablishmentResponse]
    assert _state(server) is State.WAIT_EPHEMERAL_DATA


def _computations(server: KeyEstablishmentServer, frames: list[tuple[float, Any]]) -> int:
    """Feed ``frames`` from EUI_A, running every computation at once; count them."""
    count = 0
    for now, message in frames:
        step = server.receive(EUI_A, message, now)
        count += step.compute is not None
        server.run_inline(EUI_A, step, now)
    return count


def test_restarting_an_exchange_does_not_buy_arithmetic_at_will(suite1_pair: Any) -> None:
    """Each Initiate the ESI accepts costs it an ECQV reconstruction and a key pair (about
    13 ms of pure Python on suite 2 on a desktop CPU, more on a small ESI). One partner that sends
    Initiate after Initiate (each second one ends the session BAD_MESSAGE, the next starts
    a new one) must not get one computation per two frames: the server keeps the wait time
    its Terminate told, answering NO_RESOURCES until then, without computing."""
    server = KeyEstablishmentServer(suite1_pair[1])
    request = _request(suite1_pair[0])
    frames = [(n * 0.1, request) for n in range(50)]  # 50 frames in 5 s
    assert _computations(server, frames) == 1
    busy = server.receive(EUI_A, request, 5.0)
    assert busy.compute is None
    assert [(m.status, m.wait_time) for m in busy.send] == [  # type: ignore[union-attr]
        (S.NO_RESOURCES, DEFAULT_WAIT_TIME - 5 + 1)
    ]
    assert busy.events == (
        Terminated(status=S.NO_RESOURCES, wait_time=DEFAULT_WAIT_TIME - 5 + 1, by_peer=False),
    )
    assert server.session(EUI_A) is None


def test_a_partner_that_terminates_its_own_exchanges_is_held_to_the_wait(
    suite1_pair: Any,
) -> None:
    server = KeyEstablishmentServer(suite1_pair[1])
    request = _request(suite1_pair[0])
    terminate = TerminateKeyEstablishment(status=S.BAD_MESSAGE, wait_time=0, suite=1)
    frames = [(n * 0.1, request if n % 2 == 0 else terminate) for n in range(50)]
    assert _computations(server, frames) == 1


def test_a_partner_that_waits_as_told_gets_its_exchange(suite1_pair: Any) -> None:
    server = KeyEstablishmentServer(suite1_pair[1])
    request = _request(suite1_pair[0])
    assert _computations(server, [(0.0, request)]) == 1
    told = server.receive(EUI_A, request, 1.0)  # a second Initiate: out of sequence
    assert [(m.status, m.wait_time) for m in told.send] == [  # type: ignore[union-attr]
        (S.BAD_MESSAGE, DEFAULT_WAIT_TIME)
    ]
    early = server.receive(EUI_A, request, 1.0 + DEFAULT_WAIT_TIME - 0.5)
    assert [(m.status, m.wait_time) for m in early.send] == [(S.NO_RESOURCES, 1)]  # type: ignore[union-attr]
    assert _computations(server, [(1.0 + DEFAULT_WAIT_TIME, request)]) == 1
    assert _state(server) is State.WAIT_EPHEMERAL_DATA


def test_the_wait_binds_only_the_partner_that_was_told(test_ca: TestCA, suite1_pair: Any) -> None:
    server = KeyEstablishmentServer(suite1_pair[1], max_sessions=2)
    request = _request(suite1_pair[0])
    assert _computations(server, [(0.0, request), (0.1, request)]) == 1
    other = bytes.fromhex("000D6F0000000042")
    step = server.receive(other, _request(test_ca.issue(other, SUITE1)), 0.2)
    assert step.compute is not None
    assert not step.send


def test_an_invalid_certificate_does_not_buy_arithmetic_at_will(suite1_pair: Any) -> None:
    """A certificate whose reconstruction point is not a curve point fails in the first
    computation (BAD_MESSAGE on suite 1): sent again and again, it is refused up front."""
    server = KeyEstablishmentServer(suite1_pair[1])
    good = _request(suite1_pair[0])
    bad = InitiateKeyEstablishmentRequest(
        suite=good.suite,
        ephemeral_data_generate_time=good.ephemeral_data_generate_time,
        confirm_key_generate_time=good.confirm_key_generate_time,
        identity=b"\x02" * 22 + good.identity[22:],  # an x of trace 1: no curve point
    )
    first = server.run_inline(EUI_A, server.receive(EUI_A, bad, 0.0), 0.0)
    assert [(m.status, m.wait_time) for m in first.send] == [  # type: ignore[union-attr]
        (S.BAD_MESSAGE, DEFAULT_WAIT_TIME)
    ]
    assert _computations(server, [(0.1 * n, bad) for n in range(1, 50)]) == 0
