"""Hostile review of Tunneling (SE D.6), session 23: what a peer can make a receiver hold,
and a server's table of lost tunnels. Frames are written out as bytes (Wireshark's Tunneling
layout), as in ``test_tunneling_protocol``; the shells' tests run on the simulator's air
(``test_tunneling_service``'s network)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tunneling.test_tunneling_protocol import (
    DATA,
    ERROR,
    IEEE,
    MFR_PROTOCOL,
    OTHER,
    S_ACK,
    S_ERROR,
    S_READY,
    frame,
    server_open,
)
from tests.tunneling.test_tunneling_service import ECHO, MFR, network
from zse.errors import InvalidFrame
from zse.se.types import TransferDataStatus
from zse.tunneling import protocol
from zse.tunneling.protocol import (
    TransferFailed,
    TunnelClientProtocol,
    TunnelClosed,
    TunnelData,
    TunnelError,
    TunnelLost,
    TunnelServerProtocol,
)
from zse.zcl.frame import Step


def test_without_flow_control_a_peer_cannot_make_the_receiver_hold_without_end():
    """Without flow control nothing stops the peer's Transfer Data (D.6.2.4.3), and each one
    the application has not taken yet (a slow server handler, a client that does not read)
    was held with no limit: 1 MB here. Beyond ``max_queued`` octets held the receiver answers
    DATA_OVERFLOW (D.6.2.4.4) and holds nothing more; once released, data is taken again."""
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_incoming=1000, max_queued=0x4000)
    tid = server_open(core, flow=False)
    payload = tid.to_bytes(2, "little") + b"x" * 1000
    held = 0
    refused = []
    for _ in range(1000):
        step = core.receive(*frame(DATA, payload), now=1)
        held += sum(len(e.data) for e in step.events if isinstance(e, TunnelData))
        refused += [s.payload[2] for s in step.sends if s.command_id == S_ERROR]
    assert held <= 0x4000
    assert refused
    assert set(refused) == {TransferDataStatus.DATA_OVERFLOW}
    # the application takes what it holds: the peer's data is taken again
    core.release(tid, held, frames=held // 1000)
    step = core.receive(*frame(DATA, payload), now=2)
    assert [e.data for e in step.events if isinstance(e, TunnelData)] == [b"x" * 1000]


#: Who sends (the tunnel's device, another device, a device the radio knows only by address).
SOURCES = [(IEEE, 0x1A2B), (OTHER, 0x3333), (None, 0x1A2B)]


@settings(max_examples=150)
@given(
    inputs=st.lists(
        st.tuples(
            st.integers(0, 7),
            st.booleans(),
            st.sampled_from(SOURCES),
            st.binary(max_size=3),
            st.binary(max_size=40),
            st.integers(0, 4000),
        ),
        max_size=40,
    )
)
def test_garbage_frames_in_any_order_never_break_either_core(inputs) -> None:
    """Any command, well-formed or not, for an open tunnel or not, from its device or not, at
    any time, into either core: a status or a step, never an exception; the tunnels stay
    within their slots and what a tunnel holds within its bound."""
    server = TunnelServerProtocol({MFR_PROTOCOL}, max_incoming=20, max_tunnels=2, max_queued=64)
    client = TunnelClientProtocol(max_incoming=20, max_queued=64, close_timeout=300)
    server_open(server, flow=False)
    now = 0.0
    for command_id, from_server, (ieee, nwk), head, body, later in inputs:
        now += later / 10
        core = client if from_server else server
        ids = list(core.tunnels)
        payload = (ids[0].to_bytes(2, "little") if ids and head[:1] != b"\xff" else head) + body
        try:
            msg, command = frame(command_id, payload, ieee=ieee, nwk=nwk, from_server=from_server)
        except (InvalidFrame, AssertionError):
            continue  # not a command of this side, or bytes left over: not the cores' input
        step = core.receive(msg, command, now)
        assert isinstance(step, Step)
        for tunnel in list(core.tunnels.values()):
            core.release(tunnel.tunnel_id, 7)
        server.handle_timeout(now)
        client.handle_timeout(now)
        assert len(server.tunnels) <= 2
        for tunnel in (*server.tunnels.values(), *client.tunnels.values()):
            assert tunnel.held <= (tunnel.max_incoming if tunnel.flow_control else 64)
            assert tunnel.held_frames <= protocol.DEFAULT_MAX_HELD_FRAMES


@pytest.mark.parametrize("flow", [False, True], ids=["no_flow_control", "flow_control"])
def test_a_peer_sending_one_octet_at_a_time_cannot_make_the_receiver_hold_without_end(flow):
    """The octet bound let a peer send 1-octet Transfer Data (D.6.2.4.3): 4,000 held here
    (64 Ki fit in ``max_queued``), each a server handler's task or a client read's item.
    Beyond ``max_held_frames`` held the receiver answers DATA_OVERFLOW (D.6.2.4.4); with flow
    control its Ack says 0 octets left (D.6.2.4.5) and Ready Data follows a release
    (D.6.2.4.6). The octets are far within their bounds throughout."""
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_incoming=0xFFFF)
    tid = server_open(core, flow=flow, max_in=100)
    one_octet = tid.to_bytes(2, "little") + b"x"
    taken, refused, left = 0, [], []
    for _ in range(4000):
        step = core.receive(*frame(DATA, one_octet), now=1)
        taken += sum(isinstance(e, TunnelData) for e in step.events)
        refused += [s.payload[2] for s in step.sends if s.command_id == S_ERROR]
        left += [
            int.from_bytes(s.payload[2:4], "little") for s in step.sends if s.command_id == S_ACK
        ]
    assert taken < 4000
    assert refused == [TransferDataStatus.DATA_OVERFLOW] * (4000 - taken)
    assert taken == core.max_held_frames == protocol.DEFAULT_MAX_HELD_FRAMES
    if flow:  # the Ack of the last frame held says stop
        assert left[-1] == 0
        assert all(left[:-1])
    # the application takes one: one more is taken (after Ready Data with flow control)
    ready = core.release(tid, 1).sends
    assert [s.command_id for s in ready] == ([S_READY] if flow else [])
    step = core.receive(*frame(DATA, one_octet), now=2)
    assert [e.data for e in step.events if isinstance(e, TunnelData)] == [b"x"]


async def test_the_shells_take_their_bounds_and_a_slow_handler_holds_no_more():
    """``TunnelingServer`` and ``TunnelingClient`` take ``max_held_frames`` and ``max_queued``
    (they could not be set). A server handler that does not return holds the frames after it
    in their tasks: at most ``max_held_frames`` of them, the peer told DATA_OVERFLOW beyond;
    a client that does not read holds as few of the server's frames."""
    bounds = {"max_held_frames": 4, "max_queued": 100}
    _, _, server, client, _ = await network(82, server_options=bounds, client_options=bounds)
    gate = asyncio.Event()

    async def slow(data: TunnelData) -> bytes:
        await gate.wait()
        return b"r"

    server.serve(ECHO, slow, manufacturer_code=MFR)
    at_server: list[object] = []
    at_client: list[object] = []
    server.on_event(at_server.append)
    client.on_event(at_client.append)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR, flow_control=False)
    for _ in range(12):
        await client.send(tunnel, b"q")
    await asyncio.sleep(5)
    assert sum(isinstance(e, TunnelData) for e in at_server) == 4
    overflow = TransferDataStatus.DATA_OVERFLOW
    assert [e.status for e in at_client if isinstance(e, TransferFailed)] == [overflow] * 8
    gate.set()  # the handlers return, 4 replies to a client that does not read
    await asyncio.sleep(5)
    for _ in range(8):
        await client.send(tunnel, b"q")
    await asyncio.sleep(5)
    assert sum(isinstance(e, TunnelData) for e in at_client) == 4
    assert any(isinstance(e, TransferFailed) and e.status is overflow for e in at_server)
    assert [await client.read(tunnel, timeout=1) for _ in range(4)] == [b"r"] * 4
    await client.stop()
    await server.stop()


def test_a_peer_that_loses_tunnel_after_tunnel_cannot_grow_the_lost_table_without_end():
    """A tunnel whose peer answers NO_SUCH_TUNNEL (D.6.2.4.4) is remembered as lost, so that
    the application's calls on it raise ``TunnelLost``; a peer that opens tunnels and answers
    so every time grew the table by one id each (up to 65,535). The newest
    ``MAX_LOST_TUNNELS`` stay remembered; an older one's calls say "no open tunnel"."""
    core = TunnelServerProtocol({MFR_PROTOCOL})
    lost: list[int] = []
    for _ in range(1000):
        tid = server_open(core, flow=False)
        core.send(tid, b"x", now=1)
        no_such_tunnel = tid.to_bytes(2, "little") + bytes([TransferDataStatus.NO_SUCH_TUNNEL])
        step = core.receive(*frame(ERROR, no_such_tunnel), now=1)
        assert [e.reason for e in step.events if isinstance(e, TunnelClosed)] == ["lost"]
        lost.append(tid)
    remembered = []
    for tid in lost:
        try:
            core.check(tid)
        except TunnelLost:
            remembered.append(tid)
    assert len(remembered) < len(lost)
    assert remembered == lost[-protocol.MAX_LOST_TUNNELS :]  # the newest
    assert protocol.MAX_LOST_TUNNELS == 256  # the bound docs/tunneling.md gives
    with pytest.raises(TunnelLost):
        core.send(lost[-1], b"x", now=2)
    with pytest.raises(TunnelError, match="no open tunnel"):
        core.send(lost[0], b"x", now=2)
