"""The hub's ledger of signed commands (sans-IO): forged, replayed, stale and interrupted
commands refused, nothing run twice, and the records it persists reload after a restart."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
import zigpy.types as t
from hypothesis import given
from hypothesis import strategies as st

from tests.installer.site import HUB, OTHER_HUB
from zse.cbke import SUITE1, ecdsa
from zse.cbke.keys import generate_key_pair
from zse.errors import InvalidFrame
from zse.installer.core import (
    VERSION,
    BackOffice,
    CommandCode,
    CommandResponse,
    Decision,
    HubLedger,
    Outcome,
    SignedCommand,
    originators_of,
)
from zse.installer.service import InstallerHub
from zse.store import Store

OFFICE_KEY = generate_key_pair(SUITE1)[0]
OFFICE = BackOffice(b"BACKOFF1", OFFICE_KEY)
#: The terminal's own key pair: it can sign, but it is not an originator the hub knows.
TERMINAL_KEY = generate_key_pair(SUITE1)[0]


def ledger(hub: bytes = HUB, **options) -> HubLedger:
    return HubLedger(originators_of([OFFICE]), hub=hub, **options)


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
    good = OFFICE.sign(
        CommandCode.SET_TIME, (800_000_000).to_bytes(4, "big"), counter=10, target=HUB
    )
    unsigned = replace(good, signature=bytes(42))
    assert run(hub, unsigned).status is Outcome.BAD_SIGNATURE
    altered = replace(good, body=(1).to_bytes(4, "big"))  # the terminal changes the time
    assert run(hub, altered).status is Outcome.BAD_SIGNATURE
    forger = BackOffice(OFFICE.originator, TERMINAL_KEY)  # right name, wrong key
    assert run(hub, forger.sign(CommandCode.SET_TIME, counter=11, target=HUB)).status is (
        Outcome.BAD_SIGNATURE
    )
    stranger = BackOffice(b"STRANGER", TERMINAL_KEY)
    assert (
        run(hub, stranger.sign(CommandCode.READ_STATUS, target=HUB)).status
        is Outcome.UNKNOWN_ORIGINATOR
    )
    assert run(hub, good).status is Outcome.EXECUTED
    assert hub.refused == {Outcome.BAD_SIGNATURE: 3, Outcome.UNKNOWN_ORIGINATOR: 1}


def test_replays_and_old_counters():
    hub = ledger()
    first = OFFICE.sign(CommandCode.READ_STATUS, counter=5, target=HUB)
    assert run(hub, first, b"one").status is Outcome.EXECUTED
    again = run(hub, first)  # a resend (or a replay): the stored outcome, not run
    assert (again.status, again.result) == (Outcome.DUPLICATE, b"one")
    older = OFFICE.sign(CommandCode.SET_TARIFF_LABEL, b"x", counter=4, target=HUB)
    assert run(hub, older).status is Outcome.STALE_COUNTER
    same_counter_other_body = OFFICE.sign(CommandCode.SET_TARIFF_LABEL, b"y", counter=5, target=HUB)
    assert run(hub, same_counter_other_body).status is Outcome.STALE_COUNTER
    assert (
        run(hub, OFFICE.sign(CommandCode.READ_STATUS, counter=6, target=HUB)).status
        is Outcome.EXECUTED
    )


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
        run(hub, OFFICE.sign(CommandCode.READ_STATUS, counter=counter, target=HUB))
        persist()
    assert len([k for k in records if not k.endswith(":last")]) == 2  # keep=2: 1 forgotten
    begun = OFFICE.sign(CommandCode.SET_TIME, b"\x00\x00\x00\x01", counter=4, target=HUB)
    decided, _ = hub.decide(begun.encode())
    assert decided is not None
    hub.begin(decided)
    persist()  # ... and the hub loses power while it runs
    restarted = HubLedger.from_records(records, originators_of([OFFICE]), hub=HUB)
    assert restarted.last_counter(OFFICE.originator) == 4
    assert run(restarted, begun).status is Outcome.INTERRUPTED  # never run again
    assert run(restarted, OFFICE.sign(CommandCode.READ_STATUS, counter=1, target=HUB)).status is (
        Outcome.STALE_COUNTER  # from before the restart, forgotten outcome: still refused
    )
    assert run(restarted, OFFICE.sign(CommandCode.READ_STATUS, counter=3, target=HUB)).status is (
        Outcome.DUPLICATE
    )
    assert run(restarted, OFFICE.sign(CommandCode.READ_STATUS, counter=5, target=HUB)).status is (
        Outcome.EXECUTED
    )


def test_signed_command_and_response_round_trip():
    command = OFFICE.sign(CommandCode.SET_TARIFF_LABEL, b"Economy 7", counter=99, target=HUB)
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


def test_a_command_signed_for_one_hub_runs_there_and_on_no_other():
    """The back office signs for hub A; the terminal (or anyone who heard it) carries the very
    octets to hub B, which trusts the same back office. Each hub keeps its own counters, so
    before commands named their hub B ran it too (run=True on both ledgers). B refuses it
    WRONG_TARGET, told like the other refusals: not run, its counter and records untouched,
    and B's own command with that counter still runs."""
    command = OFFICE.sign(CommandCode.SET_TARIFF_LABEL, b"Economy 7", counter=7, target=HUB)
    hub_a, hub_b = ledger(), ledger(hub=OTHER_HUB)
    _, decision = hub_b.decide(command.encode())
    assert decision == Decision(
        run=False, response=CommandResponse(counter=7, status=Outcome.WRONG_TARGET)
    )
    assert hub_b.last_counter(OFFICE.originator) == 0
    assert hub_b.changes() == {}
    assert hub_b.refused == {Outcome.WRONG_TARGET: 1}
    assert run(hub_a, command).status is Outcome.EXECUTED
    own = OFFICE.sign(CommandCode.SET_TARIFF_LABEL, b"Economy 7", counter=7, target=OTHER_HUB)
    assert run(hub_b, own).status is Outcome.EXECUTED
    assert run(hub_b, command).status is Outcome.WRONG_TARGET  # and again, never run


def test_the_target_is_signed():
    """A command for hub A with its target rewritten to hub B's EUI-64 is not signed by the
    back office: B refuses it BAD_SIGNATURE."""
    command = OFFICE.sign(CommandCode.READ_STATUS, counter=3, target=HUB)
    assert run(ledger(hub=OTHER_HUB), replace(command, target=OTHER_HUB)).status is (
        Outcome.BAD_SIGNATURE
    )


def test_a_version_1_command_is_refused_malformed():
    """Format 0x01 named no target hub (pre-1.0 change to 0x02): a genuinely signed one is
    refused MALFORMED, never guessed to be for this hub."""
    head = bytes((0x01,)) + OFFICE.originator + (5).to_bytes(8, "big")
    unsigned = head + bytes((CommandCode.READ_STATUS,)) + (0).to_bytes(2, "big")
    v1 = unsigned + ecdsa.sign(SUITE1, OFFICE_KEY, unsigned)
    with pytest.raises(InvalidFrame, match=f"version 1 at offset 0 is not {VERSION}"):
        SignedCommand.decode(v1)
    hub = ledger()
    command, decision = hub.decide(v1)
    assert command is None
    assert decision.response == CommandResponse(counter=0, status=Outcome.MALFORMED)
    assert hub.last_counter(OFFICE.originator) == 0


def test_an_eui64_of_the_wrong_shape_is_refused_at_once():
    """A target or hub that is not 8 octets, or a zigpy EUI64 (its octets least significant
    first), is a clear error, not a hub that refuses every command."""
    with pytest.raises(ValueError, match="target is an EUI-64 of 8 octets, not 7"):
        OFFICE.sign(CommandCode.READ_STATUS, target=HUB[:7])
    with pytest.raises(TypeError, match="hub is an EUI-64 as bytes"):
        ledger(hub=t.EUI64(HUB[::-1]))


async def test_the_installer_hub_refuses_another_hubs_command_and_records_nothing(tmp_path):
    """The shell passes its EUI-64 to its ledger: the command is answered WRONG_TARGET, its
    handler never runs and nothing is committed."""
    runs: list[bytes] = []
    store = await Store.open(tmp_path / "hub.db")
    try:
        handlers = {CommandCode.SET_TARIFF_LABEL: lambda body: runs.append(body) or b""}
        hub = InstallerHub(None, originators_of([OFFICE]), handlers, hub=OTHER_HUB, store=store)  # type: ignore[arg-type]
        command = OFFICE.sign(CommandCode.SET_TARIFF_LABEL, b"E7", counter=1, target=HUB)
        assert (await hub.execute(command.encode())).status is Outcome.WRONG_TARGET
        assert (runs, hub.executed) == ([], {})
        assert await store.load(hub.namespace) == {}
    finally:
        await store.close()
