"""The hub's ledger of signed commands (sans-IO): forged, replayed, stale and interrupted
commands refused, nothing run twice, and the records it persists reload after a restart."""

from __future__ import annotations

import contextlib
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from zse.cbke import SUITE1
from zse.cbke.keys import generate_key_pair
from zse.errors import InvalidFrame
from zse.installer.core import (
    BackOffice,
    CommandCode,
    CommandResponse,
    HubLedger,
    Outcome,
    SignedCommand,
    originators_of,
)

OFFICE = BackOffice(b"BACKOFF1", generate_key_pair(SUITE1)[0])
#: The terminal's own key pair: it can sign, but it is not an originator the hub knows.
TERMINAL_KEY = generate_key_pair(SUITE1)[0]


def ledger(**options) -> HubLedger:
    return HubLedger(originators_of([OFFICE]), **options)


def run(hub: HubLedger, command: SignedCommand, result: bytes = b"ok") -> CommandResponse:
    decided, decision = hub.decide(command.encode())
    if not decision.run:
        assert decision.response is not None
        return decision.response
    assert decided is not None
    hub.begin(decided)
    return hub.done(decided, Outcome.EXECUTED, result)


def test_forged_and_foreign_commands_are_refused():
    hub = ledger()
    good = OFFICE.sign(CommandCode.SET_TIME, (800_000_000).to_bytes(4, "big"), counter=10)
    unsigned = replace(good, signature=bytes(42))
    assert run(hub, unsigned).status is Outcome.BAD_SIGNATURE
    altered = replace(good, body=(1).to_bytes(4, "big"))  # the terminal changes the time
    assert run(hub, altered).status is Outcome.BAD_SIGNATURE
    forger = BackOffice(OFFICE.originator, TERMINAL_KEY)  # right name, wrong key
    assert run(hub, forger.sign(CommandCode.SET_TIME, counter=11)).status is (Outcome.BAD_SIGNATURE)
    stranger = BackOffice(b"STRANGER", TERMINAL_KEY)
    assert run(hub, stranger.sign(CommandCode.READ_STATUS)).status is Outcome.UNKNOWN_ORIGINATOR
    assert run(hub, good).status is Outcome.EXECUTED
    assert hub.refused == {Outcome.BAD_SIGNATURE: 3, Outcome.UNKNOWN_ORIGINATOR: 1}


def test_replays_and_old_counters():
    hub = ledger()
    first = OFFICE.sign(CommandCode.READ_STATUS, counter=5)
    assert run(hub, first, b"one").status is Outcome.EXECUTED
    again = run(hub, first)  # a resend (or a replay): the stored outcome, not run
    assert (again.status, again.result) == (Outcome.DUPLICATE, b"one")
    older = OFFICE.sign(CommandCode.SET_TARIFF_LABEL, b"x", counter=4)
    assert run(hub, older).status is Outcome.STALE_COUNTER
    same_counter_other_body = OFFICE.sign(CommandCode.SET_TARIFF_LABEL, b"y", counter=5)
    assert run(hub, same_counter_other_body).status is Outcome.STALE_COUNTER
    assert run(hub, OFFICE.sign(CommandCode.READ_STATUS, counter=6)).status is Outcome.EXECUTED


def test_restart_keeps_counters_and_interrupts_what_was_begun():
    hub = ledger(keep=2)
    records: dict = {}

    def persist() -> None:
        for key, value in hub.changes().items():
            if value is None:
                records.pop(key, None)
            else:
                records[key] = value

    for counter in (1, 2, 3):
        run(hub, OFFICE.sign(CommandCode.READ_STATUS, counter=counter))
        persist()
    assert len([k for k in records if not k.endswith(":last")]) == 2  # keep=2: 1 forgotten
    begun = OFFICE.sign(CommandCode.SET_TIME, b"\x00\x00\x00\x01", counter=4)
    decided, _ = hub.decide(begun.encode())
    assert decided is not None
    hub.begin(decided)
    persist()  # ... and the hub loses power while it runs
    restarted = HubLedger.from_records(records, originators_of([OFFICE]))
    assert restarted.last_counter(OFFICE.originator) == 4
    assert run(restarted, begun).status is Outcome.INTERRUPTED  # never run again
    assert run(restarted, OFFICE.sign(CommandCode.READ_STATUS, counter=1)).status is (
        Outcome.STALE_COUNTER  # from before the restart, forgotten outcome: still refused
    )
    assert run(restarted, OFFICE.sign(CommandCode.READ_STATUS, counter=3)).status is (
        Outcome.DUPLICATE
    )
    assert run(restarted, OFFICE.sign(CommandCode.READ_STATUS, counter=5)).status is (
        Outcome.EXECUTED
    )


def test_signed_command_and_response_round_trip():
    command = OFFICE.sign(CommandCode.SET_TARIFF_LABEL, b"Economy 7", counter=99)
    assert SignedCommand.decode(command.encode()) == command
    response = CommandResponse(counter=99, status=Outcome.DUPLICATE, result=b"r")
    assert CommandResponse.decode(response.encode()) == response
    assert "signature" not in repr(command)


@given(st.binary(max_size=120))
def test_garbage_commands_are_refused_not_raised(data):
    hub = ledger()
    _, decision = hub.decide(data)
    assert not decision.run
    with contextlib.suppress(InvalidFrame):
        CommandResponse.decode(data)


@given(st.binary(max_size=40))
def test_garbage_handovers_raise_decode_errors(data):
    from zse.errors import DecodeError  # noqa: PLC0415
    from zse.installer.service import _decode_handover  # noqa: PLC0415

    with contextlib.suppress(DecodeError):
        handover = _decode_handover(data)
        assert str(handover.terminal) in repr(handover)
        assert handover.install_code.fingerprint not in repr(handover)
