"""The Key Establishment state machines: suite 2, every terminate status produced and received,
timeouts on a virtual clock, retry policy, NO_RESOURCES, stale computations, garbage input."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zse.cbke import (
    SUITE1,
    SUITE2,
    ConfirmKeyDataRequest,
    ConfirmKeyDataResponse,
    EphemeralDataRequest,
    EphemeralDataResponse,
    Established,
    InitiateKeyEstablishmentRequest,
    InitiateKeyEstablishmentResponse,
    Initiator,
    KeyEstablishmentServer,
    Responder,
    State,
    Step,
    Terminated,
    TerminateKeyEstablishment,
    TerminateStatus,
    TestCA,
    run_inline,
)
from zse.cbke.machine import TRANSITIONS, Role
from zse.cbke.messages import Message

EUI_A = bytes.fromhex("0011223344556677")
EUI_B = bytes.fromhex("8899AABBCCDDEEFF")
EUI_C = bytes.fromhex("0102030405060708")
S = TerminateStatus


def sent_statuses(transcript: Any) -> list[tuple[str, TerminateStatus]]:
    return [
        (direction, m.status)
        for direction, m in transcript.log
        if isinstance(m, TerminateKeyEstablishment)
    ]


# -- success on suite 2 and suite negotiation ----------------------------------------------


def test_suite2_exchange_with_ca_certificates(suite2_pair: Any, relay: Any) -> None:
    a, b = suite2_pair
    initiator = Initiator(a, b.eui64, partner_suites=0x0003)
    responder = Responder(b, a.eui64)
    transcript = relay(initiator, responder, initiator.start(0.0))
    assert initiator.suite is SUITE2
    assert isinstance(transcript.u_events[0], Established)
    assert isinstance(transcript.v_events[0], Established)
    assert initiator.key_data == responder.key_data
    assert initiator.key_data is not None
    assert len(initiator.key_data) == 16
    sizes = [len(m.encode()) for _, m in transcript.log]
    assert sizes == [78, 78, 37, 37, 16, 16]


def test_highest_common_suite_is_chosen(suite1_pair: Any, suite2_pair: Any, relay: Any) -> None:
    (a1, b1), (a2, b2) = suite1_pair, suite2_pair
    both = Initiator([a1, a2], EUI_B, partner_suites=0x0003)
    assert both.start(0.0).send[0].suite == 2
    only_one = Initiator([a1, a2], EUI_B, partner_suites=0x0001)
    assert only_one.start(0.0).send[0].suite == 1
    responder = Responder([b1, b2], EUI_A)
    assert responder.supported_suites == 0x0003
    transcript = relay(only_one, responder, Step(send=()))
    assert transcript.log == []


def test_no_common_suite_ends_before_sending(suite2_pair: Any) -> None:
    initiator = Initiator(suite2_pair[0], EUI_B, partner_suites=0x0001)
    step = initiator.start(0.0)
    assert step.send == ()
    assert step.events == (
        Terminated(status=S.UNSUPPORTED_SUITE, wait_time=0, by_peer=False, may_retry=False),
    )
    assert initiator.retry_at is None


def test_responder_without_the_suite_answers_unsupported(
    suite1_pair: Any, suite2_pair: Any, relay: Any
) -> None:
    initiator = Initiator(suite2_pair[0], EUI_B, partner_suites=0x0002)
    responder = Responder(suite1_pair[1], EUI_A)
    transcript = relay(initiator, responder, initiator.start(0.0))
    assert sent_statuses(transcript) == [("V->U", S.UNSUPPORTED_SUITE)]
    terminate = transcript.log[-1][1]
    assert terminate.suite == 0x0001  # what the responder supports
    assert transcript.u_events[0].by_peer
    assert transcript.v_events[0].status is S.UNSUPPORTED_SUITE


def test_response_with_another_suite_is_unsupported(suite1_pair: Any, suite2_pair: Any) -> None:
    initiator = Initiator(suite1_pair[0], EUI_B)
    initiator.start(0.0)
    response = InitiateKeyEstablishmentResponse(
        suite=2, ephemeral_data_generate_time=1, confirm_key_generate_time=1,
        identity=suite2_pair[1].certificate.data,
    )  # fmt: skip
    step = initiator.receive(response, 1.0)
    assert [m.status for m in step.send] == [S.UNSUPPORTED_SUITE]


# -- statuses produced ----------------------------------------------------------------------


def test_unknown_issuer_both_sides(suite1_pair: Any, relay: Any) -> None:
    other = TestCA.generate(issuer=b"OTHER-CA")
    stranger = other.issue(EUI_A, SUITE1)
    initiator = Initiator(stranger, EUI_B)
    responder = Responder(suite1_pair[1], EUI_A)
    transcript = relay(initiator, responder, initiator.start(0.0))
    assert sent_statuses(transcript) == [("V->U", S.UNKNOWN_ISSUER)]
    assert transcript.u_events == [
        Terminated(status=S.UNKNOWN_ISSUER, wait_time=10, by_peer=True, may_retry=False)
    ]
    assert initiator.retry_at is None
    refused = initiator.start(1000.0)
    assert refused.send == ()
    assert refused.events[0].may_retry is False
    # and the initiator checks the responder's issuer too
    initiator = Initiator(suite1_pair[0], EUI_B)
    initiator.start(0.0)
    response = InitiateKeyEstablishmentResponse(
        suite=1, ephemeral_data_generate_time=1, confirm_key_generate_time=1,
        identity=other.issue(EUI_B, SUITE1).certificate.data,
    )  # fmt: skip
    assert [m.status for m in initiator.receive(response, 0.5).send] == [S.UNKNOWN_ISSUER]


def test_a_device_of_another_test_ca_is_an_unknown_issuer(relay: Any) -> None:
    """Every test CA had the issuer "ZSETSTCA", so a device certified by another test CA ran
    the whole exchange and failed BAD_KEY_CONFIRM. Each generated CA now has its own issuer
    (derived from its key): such a device is refused UNKNOWN_ISSUER at once."""
    ours, theirs = TestCA.generate(), TestCA.generate()
    assert ours.issuer != theirs.issuer
    for suite in (SUITE1, SUITE2):
        assert ours.authority(suite).issuer == ours.issuer
        initiator = Initiator(theirs.issue(EUI_A, suite), EUI_B, partner_suites=0x0003)
        responder = Responder(ours.issue(EUI_B, suite), EUI_A)
        transcript = relay(initiator, responder, initiator.start(0.0))
        assert sent_statuses(transcript) == [("V->U", S.UNKNOWN_ISSUER)]
    # a seeded CA is repeatable, issuer included
    assert (
        TestCA.generate(rng=random.Random(5)).issuer == TestCA.generate(rng=random.Random(5)).issuer
    )


def test_same_issuer_other_ca_key_fails_key_confirmation(suite1_pair: Any, relay: Any) -> None:
    """An impostor CA with the same issuer id: the MACs cannot match."""
    impostor = TestCA.generate(suite1_pair[1].certificate.issuer).issue(EUI_A, SUITE1)
    initiator = Initiator(impostor, EUI_B)
    responder = Responder(suite1_pair[1], EUI_A)
    transcript = relay(initiator, responder, initiator.start(0.0))
    assert sent_statuses(transcript) == [("V->U", S.BAD_KEY_CONFIRM)]
    assert transcript.u_events[0].may_retry is False
    assert transcript.v_events[0].status is S.BAD_KEY_CONFIRM
    assert responder.key_data is None


@pytest.mark.parametrize(
    ("direction", "kind", "producer"),
    [("U->V", ConfirmKeyDataRequest, "V"), ("V->U", ConfirmKeyDataResponse, "U")],
)
def test_tampered_mac_is_bad_key_confirm(
    suite1_pair: Any, relay: Any, direction: str, kind: type, producer: str
) -> None:
    def flip(where: str, message: Message) -> Message | None:
        if where == direction and isinstance(message, kind):
            return kind(mac=bytes([message.mac[0] ^ 1]) + message.mac[1:])
        return None

    initiator = Initiator(suite1_pair[0], EUI_B)
    responder = Responder(suite1_pair[1], EUI_A)
    transcript = relay(initiator, responder, initiator.start(0.0), tamper=flip)
    statuses = sent_statuses(transcript)
    assert statuses == [("U->V" if producer == "U" else "V->U", S.BAD_KEY_CONFIRM)]
    assert initiator.retry_at is None
    assert initiator.key_data is None


@pytest.mark.parametrize(
    ("what", "tamper"),
    [
        (
            "truncated ephemeral",
            lambda d, m: (
                m.encode()[:-1] if d == "U->V" and isinstance(m, EphemeralDataRequest) else None
            ),
        ),
        (
            "suite-2 sized ephemeral",
            lambda d, m: b"\x02" + bytes(36) if isinstance(m, EphemeralDataRequest) else None,
        ),
        (
            "point not on the curve",
            # an x of trace 1: no curve point has it
            lambda d, m: b"\x02" * 22 if isinstance(m, EphemeralDataRequest) else None,
        ),
        (
            "order-2 point",
            lambda d, m: b"\x02" + bytes(21) if isinstance(m, EphemeralDataRequest) else None,
        ),
        (
            "long confirm",
            lambda d, m: m.encode() + b"\x00" if isinstance(m, ConfirmKeyDataRequest) else None,
        ),
        (
            "out of sequence",
            lambda d, m: (
                ConfirmKeyDataRequest(mac=bytes(16))
                if isinstance(m, EphemeralDataRequest)
                else None
            ),
        ),
        (
            "bad certificate point",
            lambda d, m: (
                dataclasses.replace(m, identity=b"\x05" + m.identity[1:])
                if isinstance(m, InitiateKeyEstablishmentRequest)
                else None
            ),
        ),
        (
            "invalid certificate point",
            lambda d, m: (
                dataclasses.replace(m, identity=b"\x02" + bytes(21) + m.identity[22:])
                if isinstance(m, InitiateKeyEstablishmentRequest)
                else None
            ),
        ),
    ],
)
def test_bad_message_from_initiator(suite1_pair: Any, relay: Any, what: str, tamper: Any) -> None:
    initiator = Initiator(suite1_pair[0], EUI_B)
    responder = Responder(suite1_pair[1], EUI_A)
    transcript = relay(initiator, responder, initiator.start(0.0), tamper=tamper)
    assert sent_statuses(transcript) == [("V->U", S.BAD_MESSAGE)], what
    assert transcript.u_events == [
        Terminated(status=S.BAD_MESSAGE, wait_time=10, by_peer=True, may_retry=True)
    ]
    assert responder.state is State.TERMINATED


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d, m: m.encode()[:5] if isinstance(m, InitiateKeyEstablishmentResponse) else None,
        lambda d, m: b"\x03" + bytes(21) if isinstance(m, EphemeralDataResponse) else None,
        lambda d, m: (
            InitiateKeyEstablishmentResponse(
                suite=1,
                ephemeral_data_generate_time=1,
                confirm_key_generate_time=1,
                identity=bytes(48),
            )
            if isinstance(m, EphemeralDataResponse)
            else None
        ),
    ],
)
def test_bad_message_from_responder(suite1_pair: Any, relay: Any, tamper: Any) -> None:
    initiator = Initiator(suite1_pair[0], EUI_B)
    responder = Responder(suite1_pair[1], EUI_A)
    transcript = relay(initiator, responder, initiator.start(0.0), tamper=tamper)
    assert sent_statuses(transcript) == [("U->V", S.BAD_MESSAGE)]
    assert transcript.v_events[0].by_peer
    assert initiator.retry_at == 10.0


def test_subject_not_the_sender_is_bad_message(suite1_pair: Any, relay: Any) -> None:
    initiator = Initiator(suite1_pair[0], EUI_B)
    responder = Responder(suite1_pair[1], EUI_C)  # the APS source is not the subject
    transcript = relay(initiator, responder, initiator.start(0.0))
    assert sent_statuses(transcript) == [("V->U", S.BAD_MESSAGE)]


@pytest.mark.parametrize("case", ["no key agreement", "curve byte", "expired", "bad point"])
def test_invalid_certificate_suite2(
    test_ca: TestCA, suite2_pair: Any, relay: Any, case: str
) -> None:
    initiator_creds = suite2_pair[0]
    utc_now = None

    def patch(identity: bytes) -> bytes:
        if case == "curve byte":
            return identity[:9] + b"\x0e" + identity[10:]
        if case == "bad point":
            return identity[:37] + b"\x02" + b"\x01" * 36
        return identity

    if case == "no key agreement":
        initiator_creds = test_ca.issue(EUI_A, SUITE2, key_usage=0x80)
    if case == "expired":
        initiator_creds = test_ca.issue(EUI_A, SUITE2, valid_from=1_000, valid_to=500)
        utc_now = 2_000

    def tamper(direction: str, message: Message) -> Message | None:
        if isinstance(message, InitiateKeyEstablishmentRequest):
            return dataclasses.replace(message, identity=patch(message.identity))
        return None

    initiator = Initiator(initiator_creds, EUI_B, partner_suites=2)
    responder = Responder(suite2_pair[1], EUI_A, utc_now=utc_now)
    transcript = relay(initiator, responder, initiator.start(0.0), tamper=tamper)
    assert sent_statuses(transcript) == [("V->U", S.INVALID_CERTIFICATE)]
    assert transcript.log[-1][1].suite == 2


def test_valid_period_accepted(test_ca: TestCA, suite2_pair: Any, relay: Any) -> None:
    creds = test_ca.issue(EUI_A, SUITE2, valid_from=1_000, valid_to=500)
    initiator = Initiator(creds, EUI_B, partner_suites=2)
    responder = Responder(suite2_pair[1], EUI_A, utc_now=1_200)
    transcript = relay(initiator, responder, initiator.start(0.0))
    assert isinstance(transcript.v_events[0], Established)


def test_server_answers_no_resources_when_busy(suite1_pair: Any, test_ca: TestCA) -> None:
    server = KeyEstablishmentServer(suite1_pair[1], max_sessions=1, busy_wait_time=30)
    assert server.supported_suites == 0x0001
    first = Initiator(suite1_pair[0], EUI_B)
    step = server.receive(EUI_A, first.start(0.0).send[0], 0.0)
    assert step.compute is not None  # checking the first initiator's certificate
    second_creds = test_ca.issue(EUI_C, SUITE1)
    second = Initiator(second_creds, EUI_B)
    busy = server.receive(EUI_C, second.start(0.0).send[0], 0.1)
    assert busy.send == (TerminateKeyEstablishment(status=S.NO_RESOURCES, wait_time=30, suite=1),)
    got = second.receive(busy.send[0], 0.2)
    assert got.events == (
        Terminated(status=S.NO_RESOURCES, wait_time=30, by_peer=True, may_retry=True),
    )
    assert second.retry_at == pytest.approx(30.2)
    assert second.start(10.0).send == ()  # still waiting
    # the first exchange completes through the server
    step = server.run_inline(EUI_A, step, 0.0)
    queue = list(step.send)
    while queue:
        reply = run_inline(first, first.receive(queue.pop(0), 0.5), 0.5)
        for message in reply.send:
            answer = server.receive(EUI_A, message, 0.6)
            queue += server.run_inline(EUI_A, answer, 0.6).send
    assert first.state is State.ESTABLISHED
    assert server.session(EUI_A) is not None
    # once it is done, the second partner is served
    again = second.start(31.0)
    assert server.receive(EUI_C, again.send[0], 31.0).compute is not None


# -- statuses received ----------------------------------------------------------------------


@pytest.mark.parametrize("status", list(TerminateStatus))
def test_terminate_received_by_initiator(suite1_pair: Any, status: TerminateStatus) -> None:
    initiator = Initiator(suite1_pair[0], EUI_B)
    initiator.start(0.0)
    step = initiator.receive_payload(0x03, bytes((status, 20, 1, 0)), 2.0)
    no_retry = status in (S.UNKNOWN_ISSUER, S.BAD_KEY_CONFIRM)
    assert step.send == ()
    assert step.events == (
        Terminated(status=status, wait_time=20, by_peer=True, may_retry=not no_retry),
    )
    assert initiator.state is State.TERMINATED
    assert initiator.next_deadline() is None
    if no_retry:
        assert initiator.retry_at is None
        assert initiator.start(1e9).send == ()
    else:
        assert initiator.retry_at == 22.0
        early = initiator.start(21.0)
        assert early.send == ()
        assert early.events[0].wait_time == 1
        assert isinstance(initiator.start(22.0).send[0], InitiateKeyEstablishmentRequest)


@pytest.mark.parametrize("status", list(TerminateStatus))
def test_terminate_received_by_responder(suite1_pair: Any, status: TerminateStatus) -> None:
    initiator = Initiator(suite1_pair[0], EUI_B)
    responder = Responder(suite1_pair[1], EUI_A)
    run_inline(responder, responder.receive(initiator.start(0.0).send[0], 0.0), 0.0)
    assert responder.state is State.WAIT_EPHEMERAL_DATA
    message = TerminateKeyEstablishment(status=status, wait_time=5, suite=1)
    step = responder.receive_payload(0x03, message.encode(), 1.0)
    assert step.send == ()
    assert step.events[0].status is status
    assert step.events[0].by_peer
    assert responder.state is State.TERMINATED
    assert responder.receive(message, 2.0) == Step()  # finished: ignored


def test_garbled_terminate_ends_without_reply(suite1_pair: Any) -> None:
    initiator = Initiator(suite1_pair[0], EUI_B)
    initiator.start(0.0)
    step = initiator.receive_payload(0x03, b"\x09\x00\x01\x00", 1.0)
    assert step.send == ()
    assert step.events[0].status is S.BAD_MESSAGE
    assert initiator.state is State.TERMINATED


# -- time -----------------------------------------------------------------------------------


def test_timeouts_follow_the_advertised_times(suite1_pair: Any) -> None:
    initiator = Initiator(
        suite1_pair[0], EUI_B, ephemeral_data_generate_time=7, confirm_key_generate_time=9,
        response_time=4.0, timeout_margin=2.0,
    )  # fmt: skip
    responder = Responder(
        suite1_pair[1], EUI_A, ephemeral_data_generate_time=3, confirm_key_generate_time=11,
        timeout_margin=2.0,
    )  # fmt: skip
    request = initiator.start(100.0).send[0]
    assert initiator.next_deadline() == 106.0
    assert initiator.handle_timeout(105.9) == Step()
    step = responder.receive(request, 101.0)
    assert responder.next_deadline() is None  # computing: our own time
    step = run_inline(responder, step, 101.0)
    assert responder.next_deadline() == 101.0 + 7 + 2  # the initiator's ephemeral time
    step = run_inline(initiator, initiator.receive(step.send[0], 102.0), 102.0)
    assert initiator.next_deadline() == 102.0 + 3 + 2  # the responder's ephemeral time
    step = run_inline(responder, responder.receive(step.send[0], 103.0), 103.0)
    assert responder.next_deadline() == 103.0 + 9 + 2  # the initiator's confirm time
    step = run_inline(initiator, initiator.receive(step.send[0], 104.0), 104.0)
    assert initiator.next_deadline() == 104.0 + 11 + 2  # the responder's confirm time
    # the confirm request is lost: both sides time out
    timeout = responder.handle_timeout(114.0)
    assert timeout.send == ()
    assert timeout.events == (
        Terminated(status=None, wait_time=0, by_peer=False, may_retry=True, timed_out=True),
    )
    assert initiator.handle_timeout(116.9) == Step()
    assert initiator.handle_timeout(117.0).events[0].timed_out
    assert initiator.retry_at == 117.0
    assert initiator.state is State.TERMINATED


def test_no_response_times_out(suite1_pair: Any) -> None:
    initiator = Initiator(suite1_pair[0], EUI_B)
    initiator.start(0.0)
    deadline = initiator.next_deadline()
    assert deadline == 15.0
    assert initiator.handle_timeout(deadline).events[0].timed_out


def test_late_computation_result_is_ignored(suite1_pair: Any) -> None:
    initiator = Initiator(suite1_pair[0], EUI_B)
    responder = Responder(suite1_pair[1], EUI_A)
    step = responder.receive(initiator.start(0.0).send[0], 0.0)
    assert step.compute is not None
    assert responder.state is State.CHECKING_CERTIFICATE
    terminate = TerminateKeyEstablishment(status=S.NO_RESOURCES, wait_time=1, suite=1)
    assert responder.receive(terminate, 0.1).events[0].by_peer
    assert responder.complete(step.compute, step.compute.run(), 0.2) == Step()


def test_messages_while_computing_are_out_of_sequence(suite1_pair: Any) -> None:
    initiator = Initiator(suite1_pair[0], EUI_B)
    responder = Responder(suite1_pair[1], EUI_A)
    step = responder.receive(initiator.start(0.0).send[0], 0.0)
    bad = responder.receive(EphemeralDataRequest(ephemeral_data=b"\x02" + bytes(21)), 0.1)
    assert [m.status for m in bad.send] == [S.BAD_MESSAGE]
    assert step.compute is not None
    assert responder.complete(step.compute, step.compute.run(), 0.2) == Step()


async def test_computations_run_in_an_executor(suite2_pair: Any) -> None:
    """What an asyncio shell does: the arithmetic runs off the event loop."""
    loop = asyncio.get_running_loop()
    initiator = Initiator(suite2_pair[0], EUI_B, partner_suites=2)
    responder = Responder(suite2_pair[1], EUI_A)
    machines = {"U": initiator, "V": responder}
    queue: list[tuple[str, Message]] = [("V", m) for m in initiator.start(loop.time()).send]
    while queue:
        name, message = queue.pop(0)
        machine = machines[name]
        step = machine.receive(message, loop.time())
        while step.compute is not None:
            result = await loop.run_in_executor(None, step.compute.run)
            step = Step(send=step.send).then(machine.complete(step.compute, result, loop.time()))
        queue += [("U" if name == "V" else "V", m) for m in step.send]
    assert initiator.key_data == responder.key_data
    assert initiator.key_data is not None


def test_start_twice_is_a_programming_error(suite1_pair: Any) -> None:
    initiator = Initiator(suite1_pair[0], EUI_B)
    initiator.start(0.0)
    with pytest.raises(RuntimeError, match="cannot start"):
        initiator.start(1.0)


def test_transition_table_covers_both_roles() -> None:
    roles = {role for role, _, _ in TRANSITIONS}
    assert roles == {Role.INITIATOR, Role.RESPONDER}
    reached = set(TRANSITIONS.values())
    assert State.ESTABLISHED in reached
    assert State.TERMINATED not in reached  # only ever entered by terminating


# -- garbage --------------------------------------------------------------------------------


_SNAPSHOTS: dict[tuple[int, int], tuple[Initiator, Responder, str]] = {}


def _advance(pair: Any, steps: int) -> tuple[Initiator, Responder, str]:
    """A copy of both machines ``steps`` messages into a good exchange, and whose turn it is."""
    key = (id(pair), steps)
    if key not in _SNAPSHOTS:
        _SNAPSHOTS[key] = _run_to(pair, steps)
    return copy.deepcopy(_SNAPSHOTS[key])


def _run_to(pair: Any, steps: int) -> tuple[Initiator, Responder, str]:
    initiator = Initiator(pair[0], EUI_B, ephemeral_private_key=b"\x00" * 20 + b"\x07")
    responder = Responder(pair[1], EUI_A, ephemeral_private_key=b"\x00" * 20 + b"\x0b")
    queue: list[Message] = list(initiator.start(0.0).send)
    turn = "V"
    for _ in range(steps):
        machine = responder if turn == "V" else initiator
        step = run_inline(machine, machine.receive(queue.pop(0), 0.0), 0.0)  # type: ignore[attr-defined]
        queue = list(step.send)
        turn = "U" if turn == "V" else "V"
    return initiator, responder, turn


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.integers(min_value=0, max_value=5),
    command=st.integers(min_value=0, max_value=5),
    payload=st.binary(max_size=90),
)
def test_garbage_never_escapes(suite1_pair: Any, steps: int, command: int, payload: bytes) -> None:
    initiator, responder, turn = _advance(suite1_pair, steps)
    machine = responder if turn == "V" else initiator
    step = run_inline(machine, machine.receive_payload(command, payload, 1.0), 1.0)  # type: ignore[attr-defined]
    for message in step.send:
        if isinstance(message, TerminateKeyEstablishment):
            assert message.status in TerminateStatus
    for event in step.events:
        assert isinstance(event, Established | Terminated)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(command=st.integers(min_value=0, max_value=5), payload=st.binary(max_size=90))
def test_garbage_into_the_server(suite1_pair: Any, command: int, payload: bytes) -> None:
    server = KeyEstablishmentServer(suite1_pair[1])
    step = server.run_inline(EUI_A, server.receive_payload(EUI_A, command, payload, 0.0), 0.0)
    assert all(isinstance(m, Message.__args__) for m in step.send)  # type: ignore[attr-defined]


def test_abort_ends_an_exchange_at_once_and_allows_a_retry(suite1_pair: Any) -> None:
    initiator = Initiator(suite1_pair[0], EUI_B)
    assert initiator.abort(0.0) == Step()  # nothing started: nothing to end
    initiator.start(0.0)
    step = initiator.abort(1.0)  # long before the response deadline
    assert [(e.status, e.timed_out) for e in step.events] == [(None, True)]
    assert initiator.next_deadline() is None
    assert initiator.abort(2.0) == Step()  # already over
    assert initiator.start(3.0).send  # an unreachable partner may be tried again
