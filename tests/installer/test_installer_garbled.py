"""The terminal and the hub on a tunnel whose octets go wrong: a garbled answer (the command
may have run) is retried with the same signed command and answered from the hub's ledger, so
the command runs once; an over-long framed message is skipped whole and answered once."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.installer.site import (
    OFFICE,
    InstallerTerminal,
    Site,
    bootstrap,
    build,
    framed,
    service_request,
    terminal_client,
)
from zse.installer.core import CommandCode, CommandResponse, Outcome, SignedCommand
from zse.installer.service import (
    INSTALLER_PROTOCOL,
    ZSE_MANUFACTURER_CODE,
    CommandUnanswered,
    _Framer,
)
from zse.tunneling.protocol import TunnelData

#: Ways an answer (one framed CommandResponse) arrives garbled: its status octet (after the
#: 2-octet frame length and the u64 counter) not an Outcome, or its frame length over the limit.
GARBLE: dict[str, Callable[[bytes], bytes]] = {
    "status": lambda reply: reply[:10] + b"\xee" + reply[11:],
    "frame length": lambda reply: b"\xff\xff" + reply[2:],
}


def _garble_answers(site: Site, command: SignedCommand, how: str, times: int) -> list[bytes]:
    """The hub's first ``times`` answers to ``command`` garbled on their way to the terminal:
    its tunnel handler served again, wrapped; returns the answers as sent."""
    sent: list[bytes] = []

    async def garbling(event: TunnelData) -> bytes | None:
        reply = await site.hub._on_data(event)
        if reply is not None and reply[2:10] == command.counter.to_bytes(8, "big"):
            if len(sent) < times:
                reply = GARBLE[how](reply)
            sent.append(reply)
        return reply

    site.tunnels.serve(INSTALLER_PROTOCOL, garbling, manufacturer_code=ZSE_MANUFACTURER_CODE)
    return sent


@pytest.mark.parametrize("how", list(GARBLE))
async def test_a_garbled_answer_is_retried_and_the_command_runs_once(how):
    """The hub ran the set-time command and its answer came back garbled: the terminal cannot
    tell what happened, so it sends the very same signed command again; the hub answers it
    DUPLICATE from its ledger and the clock is set once."""
    site = await build(90)
    await bootstrap(site)
    client = await terminal_client(site)
    commands = service_request(target=site.target)
    sent = _garble_answers(site, commands[1], how, times=1)
    terminal = InstallerTerminal(client, commands, timeout=5, attempts=3)
    responses = await terminal.run()
    assert [(r.counter, r.status) for r in responses] == [
        (commands[0].counter, Outcome.EXECUTED),
        (commands[1].counter, Outcome.DUPLICATE),
        (commands[2].counter, Outcome.EXECUTED),
    ]
    assert len(sent) == 2  # the garbled answer and the ledger's
    assert site.clock_set == [820_000_000]  # run once
    assert site.hub.executed == {(c.originator, c.counter): 1 for c in commands}
    await terminal.close()
    await client.stop()
    await site.stop()


async def test_answers_garbled_every_time_end_in_an_error_naming_the_attempts():
    """A hub whose answers are always garbled: the terminal gives up after its attempts with
    an error naming each (a ``TimeoutError``, as a silent hub's), the command run once."""
    site = await build(91)
    await bootstrap(site)
    client = await terminal_client(site)
    command = service_request(target=site.target)[1]
    _garble_answers(site, command, "status", times=99)
    terminal = InstallerTerminal(client, [command], timeout=5, attempts=3)
    with pytest.raises(CommandUnanswered) as caught:
        await terminal.run()
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.counter == command.counter
    assert (
        caught.value.failures == ("garbled answer (command response status 0xEE at offset 8)",) * 3
    )
    assert str(caught.value).startswith(f"no usable answer for command {command.counter} after 3")
    assert site.clock_set == [820_000_000]
    assert terminal.position == 0  # run() again later resumes at it
    await client.stop()
    await site.stop()


async def test_an_over_long_message_is_skipped_whole_and_answered_once():
    """A framed message longer than the hub's limit (4096), carried by many Transfer Data, then
    a command: the hub skips the long one up to the boundary its length names, answers it
    MALFORMED once, and runs the command (its rest read as new frames was answered MALFORMED
    frame after frame)."""
    site = await build(92)
    await bootstrap(site)
    client = await terminal_client(site)
    label = OFFICE.sign(CommandCode.SET_TARIFF_LABEL, bytes(5000), target=site.target, counter=7)
    status = service_request(8, target=site.target)[0]
    tunnel = await client.open(INSTALLER_PROTOCOL, manufacturer_code=ZSE_MANUFACTURER_CODE)
    await client.send(tunnel, framed(label.encode()) + framed(status.encode()))
    framer = _Framer()
    answers: list[CommandResponse] = []
    with contextlib.suppress(TimeoutError):
        while status.counter not in {a.counter for a in answers}:
            for message in framer.feed(await client.read(tunnel, timeout=20)):
                assert isinstance(message, bytes)
                answers.append(CommandResponse.decode(message))
    assert [(a.counter, a.status) for a in answers] == [
        (0, Outcome.MALFORMED),
        (status.counter, Outcome.EXECUTED),
    ]
    assert site.hub.ledger.refused == {Outcome.MALFORMED: 1}
    await client.close(tunnel)
    await client.stop()
    await site.stop()


def _framed_out(framer: _Framer, data: bytes) -> list[bytes | str]:
    return [m if isinstance(m, bytes) else str(m) for m in framer.feed(data)]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300)), st.integers(0, 60))
def test_any_cut_of_a_stream_gives_the_same_messages(stream, cuts, limit):
    """Fed whole or cut anywhere (Transfer Data split a stream where they will), the framer
    gives the same messages and over-long reports in the same order, and is left in the
    same state (what it gives for what comes next)."""
    whole = _Framer(limit=limit)
    expected = _framed_out(whole, stream)
    cut = _Framer(limit=limit)
    bounds = [0, *sorted({c for c in cuts if c <= len(stream)}), len(stream)]
    got = [m for a, b in itertools.pairwise(bounds) for m in _framed_out(cut, stream[a:b])]
    assert got == expected
    assert _framed_out(cut, bytes(2)) == _framed_out(whole, bytes(2))  # the same state


@pytest.mark.parametrize("chunk", [1, 7, 4098, 10_000])
def test_the_framer_resynchronises_after_an_over_long_message(chunk):
    """However the stream is cut, an over-long message is reported once, in its place, and the
    messages after it come out whole."""
    stream = framed(b"a") + framed(bytes(300)) + framed(b"bc") + framed(b"")
    framer = _Framer(limit=100)
    out = [m for at in range(0, len(stream), chunk) for m in framer.feed(stream[at : at + chunk])]
    assert [m if isinstance(m, bytes) else str(m) for m in out] == [
        b"a",
        "framed message of 300 octets exceeds 100: skipped",
        b"bc",
        b"",
    ]


async def test_the_rest_of_a_garbled_answer_is_not_read_as_the_next_tries_answers():
    """An answer carried by several Transfer Data (a long status text) whose frame length came
    garbled (over the limit): the terminal gave up on it at once and retried on the same
    tunnel renewed (its reads kept) with its framing restarted, so the answer's remaining
    Transfer Data were read as new frames: the status text's octets named an over-long frame
    again, try after try, and the terminal gave up on a hub that answered every try. Each
    retry after a garbled answer now takes a new tunnel: the ledger's DUPLICATE is read."""
    site = await build(93)
    await bootstrap(site)
    client = await terminal_client(site)
    site.hub.handlers[CommandCode.READ_STATUS] = lambda _: b"s" * 300  # several Transfer Data
    command = service_request(target=site.target)[0]
    _garble_answers(site, command, "frame length", times=1)
    terminal = InstallerTerminal(client, [command], timeout=5, attempts=3)
    [response] = await terminal.run()
    assert (response.status, response.result) == (Outcome.DUPLICATE, b"s" * 300)
    assert site.hub.executed == {(command.originator, command.counter): 1}
    await terminal.close()
    await client.stop()
    await site.stop()
