"""Hostile review of the installer's signed commands: commands pipelined on one tunnel,
signatures that differ only by ECDSA's malleability, and hostile bytes on every decoder."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.installer.site import (
    HUB,
    OFFICE,
    bootstrap,
    build,
    establish_key,
    framed,
    service_request,
    terminal_client,
)
from zse.cbke import SUITE1
from zse.errors import DecodeError, InvalidFrame
from zse.installer.core import (
    CommandCode,
    CommandResponse,
    HubLedger,
    Outcome,
    SignedCommand,
    originators_of,
)
from zse.installer.service import (
    INSTALLER_PROTOCOL,
    ZSE_MANUFACTURER_CODE,
    InstallerHub,
    _decode_handover,
    _Framer,
)
from zse.tunneling.protocol import TunnelData, protocol_key


async def test_commands_pipelined_on_a_tunnel_run_in_the_order_sent():
    """A terminal may send its commands without waiting for each answer (a tunnel is a
    stream; with APS fragmentation one Transfer Data holds several). The Tunneling server
    hands each Transfer Data to the hub in a task of its own (``TunnelingServer._emit``), as
    here: the hub must run the commands in the order they came, so that none is refused as
    stale because a later one overtook it."""
    ran: list[int] = []

    async def read_status(body: bytes) -> bytes:
        await asyncio.sleep(1)  # a handler that takes its time (virtual)
        ran.append(len(ran))
        return b"ok"

    hub = InstallerHub(
        None,  # type: ignore[arg-type]  # its tunnel handler alone, fed as the server feeds it
        originators_of([OFFICE]),
        {CommandCode.READ_STATUS: read_status, CommandCode.SET_TIME: read_status},
        hub=HUB,
    )
    first, second, third = service_request(100)
    key = protocol_key(INSTALLER_PROTOCOL, ZSE_MANUFACTURER_CODE)

    def data(*commands: SignedCommand) -> TunnelData:
        octets = b"".join(framed(c.encode()) for c in commands)
        return TunnelData(tunnel_id=7, device="terminal", protocol=key, data=octets)

    together = asyncio.create_task(hub._on_data(data(first, second)))
    await asyncio.sleep(0.5)  # the next Transfer Data comes while the first command runs
    alone = asyncio.create_task(hub._on_data(data(third)))
    framer = _Framer()
    answers = [
        CommandResponse.decode(m)
        for reply in await asyncio.gather(together, alone)
        for m in framer.feed(reply or b"")
    ]
    assert [(a.counter, a.status) for a in answers] == [
        (first.counter, Outcome.EXECUTED),
        (second.counter, Outcome.EXECUTED),
        (third.counter, Outcome.EXECUTED),
    ]


async def test_a_command_cut_off_mid_transfer_is_forgotten_when_the_tunnel_is_renewed():
    """The link breaks after part of a command reached the hub; the terminal asks for its
    tunnel again (the server renews the same tunnel id, D.6.2.5.1) and sends the whole command
    again, as :class:`~zse.installer.service.InstallerTerminal` does. The part the hub held
    must not be glued in front of it: the command runs, once."""
    site = await build(82)
    await bootstrap(site)
    client = await terminal_client(site)
    first = service_request(200, target=site.target)[0]
    whole = framed(first.encode())
    tunnel = await client.open(INSTALLER_PROTOCOL, manufacturer_code=ZSE_MANUFACTURER_CODE)
    await client.send(tunnel, whole[:30])  # then the link broke
    again = await client.open(INSTALLER_PROTOCOL, manufacturer_code=ZSE_MANUFACTURER_CODE)
    assert again == tunnel  # renewed, the same id
    await client.send(again, whole)
    framer: _Framer = _Framer()
    answers: list[CommandResponse] = []
    with contextlib.suppress(TimeoutError):
        while not answers:
            answers += map(
                CommandResponse.decode, framer.feed(await client.read(again, timeout=20))
            )
    assert [(a.counter, a.status) for a in answers] == [(first.counter, Outcome.EXECUTED)]
    assert site.hub.executed == {(first.originator, first.counter): 1}
    await client.close(again)
    await client.stop()
    await site.stop()


def _malleated(command: SignedCommand) -> SignedCommand:
    """The same command with ECDSA's other valid signature, (r, n - s): anyone can make it."""
    size, n = SUITE1.private_key_size, SUITE1.curve.n
    r, s = command.signature[:size], int.from_bytes(command.signature[size:])
    return SignedCommand(
        originator=command.originator,
        target=command.target,
        counter=command.counter,
        code=command.code,
        body=command.body,
        signature=r + (n - s).to_bytes(size),
    )


def _run(ledger: HubLedger, command: SignedCommand) -> CommandResponse:
    decided, decision = ledger.decide(command.encode())
    if decision.response is not None:
        return decision.response
    assert decided is not None
    ledger.begin(decided)
    return ledger.done(decided, Outcome.EXECUTED, b"result")


def test_a_resend_with_the_other_valid_signature_is_the_same_command():
    """ECDSA signatures are malleable: (r, n - s) verifies as (r, s) does. Someone who saw the
    command (a relay, the terminal's maker) sends it first with the other signature: the hub
    runs it. The terminal's own copy must then be answered DUPLICATE with the stored result,
    the very command having run, not STALE_COUNTER (a refusal the back office would read as
    "not run")."""
    genuine = OFFICE.sign(CommandCode.READ_STATUS, counter=9, target=HUB)
    other = _malleated(genuine)
    ledger = HubLedger(originators_of([OFFICE]), hub=HUB)
    assert ledger.verify(other.encode()).refused is None  # it verifies
    assert _run(ledger, other).status is Outcome.EXECUTED
    again = _run(ledger, genuine)
    assert (again.status, again.result) == (Outcome.DUPLICATE, b"result")
    # and the other way round, also across a restart (the records as persisted)
    ledger = HubLedger(originators_of([OFFICE]), hub=HUB)
    _run(ledger, genuine)
    restarted = HubLedger.from_records(
        {k: v for k, v in ledger.changes().items() if v is not None},
        originators_of([OFFICE]),
        hub=HUB,
    )
    assert _run(restarted, other).status is Outcome.DUPLICATE


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200))
def test_installer_decoders_raise_decode_errors_only(data):
    for decoder in (SignedCommand.decode, CommandResponse.decode, _decode_handover):
        with contextlib.suppress(DecodeError):
            decoder(data)
    _, decision = HubLedger(originators_of([OFFICE]), hub=HUB).decide(data)
    assert decision.response is not None  # refused and told, never run, never raised


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.binary(max_size=90), max_size=30))
def test_tunnel_framer_takes_any_stream(chunks):
    """Never raises: an over-long message is reported in place (an ``InvalidFrame``)."""
    framer = _Framer(limit=300)
    for chunk in chunks:
        for message in framer.feed(chunk):
            assert isinstance(message, InvalidFrame) or len(message) <= 300
        assert len(framer._buffer) <= 302 + 90


async def test_a_terminal_whose_key_the_hub_lost_establishes_a_new_one():
    """The terminal established its key, then the hub restarted (its inter-PAN link keys live
    in memory: all gone) before the handover. The terminal's key now opens nothing on the
    hub, which drops its secured handovers unanswered (``no_key``); calling
    :meth:`TerminalBootstrap.run` again, as a terminal does after a failure, must get it
    through (a new key establishment), not time out on the dead key for ever."""
    site = await build(83)
    boot = site.bootstrap()
    await establish_key(boot)
    assert site.interpan.security is not None
    site.interpan.security.remove_key(site.terminal.ieee)  # the hub restarted
    outcome: list[str] = []
    for _ in range(3):
        try:
            await boot.run()
        except TimeoutError:
            outcome.append("timeout")
            continue
        outcome.append("done")
        break
    assert outcome[-1] == "done", outcome
    assert site.device_log == [site.terminal.ieee]
    assert site.interpan.security.dropped["no_key"] >= 1
    await site.stop()
