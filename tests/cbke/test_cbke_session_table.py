"""The Key Establishment server's session table against partners that stall (#12.25): four
Initiate requests advertising 255 s and then silence must not lock every other device out.
Sans-IO: ``now`` is the virtual clock."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cbke.conftest import EUI_B
from zse.cbke import SUITE1, Initiator, KeyEstablishmentServer, State, TestCA, run_inline
from zse.cbke.machine import (
    DEFAULT_MAX_PARTNER_TIME,
    DEFAULT_STALL_AFTER,
    DEFAULT_TIMEOUT_MARGIN,
    Terminated,
)
from zse.cbke.messages import TerminateKeyEstablishment, TerminateStatus

STALLERS = [bytes.fromhex(f"000D6F00000000{n:02X}") for n in range(1, 5)]
NEWCOMER = bytes.fromhex("000D6F0000000099")


def initiate(server: KeyEstablishmentServer, partner: bytes, initiator: Initiator, now: float):
    """Send the initiator's Initiate request; run the server's arithmetic at once."""
    step = server.receive(partner, initiator.start(now).send[0], now)
    return server.run_inline(partner, step, now)


def stalled_server(test_ca: TestCA, server_creds: Any) -> KeyEstablishmentServer:
    """A server with max_sessions=4, all four held by partners that advertised 255 s and
    went quiet after the server's Initiate Key Establishment Response (at t=0..3)."""
    server = KeyEstablishmentServer(server_creds, max_sessions=4)
    for n, eui in enumerate(STALLERS):
        staller = Initiator(
            test_ca.issue(eui, SUITE1),
            EUI_B,
            ephemeral_data_generate_time=255,
            confirm_key_generate_time=255,
        )
        step = initiate(server, eui, staller, float(n))
        assert [type(m).__name__ for m in step.send] == ["InitiateKeyEstablishmentResponse"]
    return server


def test_advertised_times_are_capped(test_ca: TestCA, suite1_pair: Any) -> None:
    server = stalled_server(test_ca, suite1_pair[1])
    # 255 s claimed, 60 s granted: the first staller's deadline is 60 + margin after t=0
    assert server.next_deadline() == DEFAULT_MAX_PARTNER_TIME + DEFAULT_TIMEOUT_MARGIN
    assert DEFAULT_MAX_PARTNER_TIME == 60


def test_a_newcomer_is_told_to_wait_until_a_stalled_slot_frees(
    test_ca: TestCA, suite1_pair: Any
) -> None:
    server = stalled_server(test_ca, suite1_pair[1])
    newcomer = Initiator(test_ca.issue(NEWCOMER, SUITE1), EUI_B)
    busy = server.receive(NEWCOMER, newcomer.start(4.0).send[0], 4.0)
    # the oldest staller has waited 4 s of its 15: 11 s to go (more than busy_wait_time 10)
    assert busy.send == (
        TerminateKeyEstablishment(status=TerminateStatus.NO_RESOURCES, wait_time=11, suite=1),
    )
    assert busy.events == (
        Terminated(status=TerminateStatus.NO_RESOURCES, wait_time=11, by_peer=False),
    )
    assert newcomer.receive(busy.send[0], 4.0).events[0].wait_time == 11  # type: ignore[union-attr]
    assert newcomer.retry_at == 15.0


def test_the_longest_stalled_session_gives_its_slot_and_is_reported(
    test_ca: TestCA, suite1_pair: Any
) -> None:
    server = stalled_server(test_ca, suite1_pair[1])
    newcomer = Initiator(test_ca.issue(NEWCOMER, SUITE1), EUI_B)
    now = DEFAULT_STALL_AFTER  # the first staller (t=0) has now waited 15 s
    step = initiate(server, NEWCOMER, newcomer, now)
    assert [type(m).__name__ for m in step.send] == ["InitiateKeyEstablishmentResponse"]
    assert server.session(STALLERS[0]) is None
    assert all(server.session(eui) is not None for eui in STALLERS[1:])
    # the eviction is due at once, and reported as the staller's outcome
    assert server.next_deadline() == now
    outcomes = server.handle_timeout(now)
    assert [partner for partner, _ in outcomes] == [STALLERS[0]]
    assert outcomes[0][1].events == (
        Terminated(status=None, wait_time=0, by_peer=False, timed_out=True),
    )
    assert server.handle_timeout(now) == []  # reported once
    # the newcomer completes its exchange in the freed slot
    queue = list(step.send)
    while queue:
        reply = run_inline(newcomer, newcomer.receive(queue.pop(0), now), now)
        for message in reply.send:
            answer = server.receive(NEWCOMER, message, now)
            queue += server.run_inline(NEWCOMER, answer, now).send
    assert newcomer.state is State.ESTABLISHED
    session = server.session(NEWCOMER)
    assert session is not None
    assert session.state is State.ESTABLISHED


def test_stallers_cannot_lock_everyone_out_for_long(test_ca: TestCA, suite1_pair: Any) -> None:
    """A newcomer retrying after the wait it is given gets in once the stall allowance is
    over (the report: NO_RESOURCES for 265 s, again and again)."""
    server = stalled_server(test_ca, suite1_pair[1])
    newcomer = Initiator(test_ca.issue(NEWCOMER, SUITE1), EUI_B)
    now, refusals = 3.5, 0
    while True:
        step = initiate(server, NEWCOMER, newcomer, now)
        if not step.events:
            break
        refusals += 1
        assert isinstance(step.events[0], Terminated)
        newcomer.receive(step.send[0], now)
        assert newcomer.retry_at is not None
        now = newcomer.retry_at
    assert refusals == 1
    assert now == 15.5  # told 12 s at 3.5 s (whole seconds, rounded up): in at 15.5 s, not 265


def test_sessions_still_computing_are_never_evicted(test_ca: TestCA, suite1_pair: Any) -> None:
    server = KeyEstablishmentServer(suite1_pair[1], max_sessions=1, busy_wait_time=30)
    first = Initiator(test_ca.issue(STALLERS[0], SUITE1), EUI_B)
    step = server.receive(STALLERS[0], first.start(0.0).send[0], 0.0)
    assert step.compute is not None  # not yet run: the session is the server's own work
    newcomer = Initiator(test_ca.issue(NEWCOMER, SUITE1), EUI_B)
    busy = server.receive(NEWCOMER, newcomer.start(100.0).send[0], 100.0)
    assert busy.send[0].status is TerminateStatus.NO_RESOURCES  # type: ignore[attr-defined]
    assert busy.send[0].wait_time == 30  # type: ignore[attr-defined]


def test_an_honest_exchange_is_not_cut_short_by_the_cap(test_ca: TestCA, suite1_pair: Any) -> None:
    server = KeyEstablishmentServer(suite1_pair[1], max_sessions=1)
    # its own wait for the response is as long: a message after a deadline ends the exchange
    slow = Initiator(
        test_ca.issue(STALLERS[0], SUITE1),
        EUI_B,
        ephemeral_data_generate_time=40,
        response_time=40,
    )
    step = initiate(server, STALLERS[0], slow, 0.0)
    assert server.next_deadline() == 40 + DEFAULT_TIMEOUT_MARGIN
    now = 45.0  # slow, but within what it advertised
    queue = list(step.send)
    while queue:
        reply = run_inline(slow, slow.receive(queue.pop(0), now), now)
        for message in reply.send:
            answer = server.receive(STALLERS[0], message, now)
            queue += server.run_inline(STALLERS[0], answer, now).send
    assert slow.state is State.ESTABLISHED


@pytest.mark.parametrize("sessions", [0, -1])
def test_a_server_needs_a_session(suite1_pair: Any, sessions: int) -> None:
    with pytest.raises(ValueError, match="at least one session"):
        KeyEstablishmentServer(suite1_pair[1], max_sessions=sessions)


def test_abort_ends_one_session(test_ca: TestCA, suite1_pair: Any) -> None:
    server = stalled_server(test_ca, suite1_pair[1])
    step = server.abort(STALLERS[2], 5.0)
    assert step.events == (Terminated(status=None, wait_time=0, by_peer=False, timed_out=True),)
    assert server.session(STALLERS[2]) is None
    assert server.abort(STALLERS[2], 5.0).events == ()


def _try(server: KeyEstablishmentServer, test_ca: TestCA, eui: bytes, now: float) -> str:
    """One Initiate from ``eui`` at ``now``: 'in' (answered) or 'busy' (NO_RESOURCES)."""
    step = initiate(server, eui, Initiator(test_ca.issue(eui, SUITE1), EUI_B), now)
    names = [type(m).__name__ for m in step.send]
    if names == ["InitiateKeyEstablishmentResponse"]:
        return "in"
    assert step.send[0].status is TerminateStatus.NO_RESOURCES  # type: ignore[attr-defined]
    return "busy"


def test_a_stalled_slot_goes_to_the_partner_told_to_wait_first(
    test_ca: TestCA, suite1_pair: Any
) -> None:
    """Issue #20.4: partners told NO_RESOURCES keep their turn; a newcomer that never waited
    does not take the slot from under them."""
    server = stalled_server(test_ca, suite1_pair[1])
    first, second = NEWCOMER, bytes.fromhex("000D6F00000000AA")
    assert _try(server, test_ca, first, 4.0) == "busy"  # told to wait 11 s: its turn
    assert _try(server, test_ca, second, 15.0) == "busy"  # a slot is due, but first waits
    assert _try(server, test_ca, first, 15.2) == "in"  # first comes back: the slot is its
    assert _try(server, test_ca, second, 16.0) == "in"  # then second's turn, next slot


def test_a_turn_lapses_when_its_partner_does_not_come_back(
    test_ca: TestCA, suite1_pair: Any
) -> None:
    server = KeyEstablishmentServer(suite1_pair[1], max_sessions=1)
    assert _try(server, test_ca, STALLERS[0], 0.0) == "in"  # then silent
    absent, patient = NEWCOMER, bytes.fromhex("000D6F00000000AA")
    assert _try(server, test_ca, absent, 1.0) == "busy"  # wait 14 s: its turn until 45 s
    assert _try(server, test_ca, patient, 20.0) == "busy"  # the slot is due, absent's turn
    assert _try(server, test_ca, patient, 46.0) == "in"  # absent never came back


def test_a_partner_that_stalled_cannot_evict_others(test_ca: TestCA, suite1_pair: Any) -> None:
    """A partner whose session was evicted for stalling may take a free slot but not evict
    another's session for stall_memory seconds; others may (issue #20.4)."""
    server = stalled_server(test_ca, suite1_pair[1])
    assert _try(server, test_ca, NEWCOMER, 15.0) == "in"  # evicts STALLERS[0]
    assert _try(server, test_ca, STALLERS[0], 16.5) == "busy"  # STALLERS[1] is due, but no
    fresh = bytes.fromhex("000D6F00000000DD")
    assert _try(server, test_ca, fresh, 16.6) == "in"  # a partner with no stall may
    assert server.session(STALLERS[1]) is None
    # after stall_memory (600 s) the record is forgotten
    assert _try(server, test_ca, STALLERS[0], 700.0) == "in"
