"""Hostile review of Tunneling (SE D.6), session 23: what a peer can make a receiver hold.
Frames are written out as bytes (Wireshark's Tunneling layout), as in
``test_tunneling_protocol``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tunneling.test_tunneling_protocol import (
    DATA,
    IEEE,
    MFR_PROTOCOL,
    OTHER,
    S_ERROR,
    frame,
    server_open,
)
from zse.errors import InvalidFrame
from zse.se.types import TransferDataStatus
from zse.tunneling.protocol import (
    TunnelClientProtocol,
    TunnelData,
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
    core.release(tid, held)
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
