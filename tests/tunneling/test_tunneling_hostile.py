"""Hostile review of Tunneling (SE D.6), session 23: what a peer can make a receiver hold.
Frames are written out as bytes (Wireshark's Tunneling layout), as in
``test_tunneling_protocol``."""

from __future__ import annotations

from tests.tunneling.test_tunneling_protocol import DATA, MFR_PROTOCOL, S_ERROR, frame, server_open
from zse.se.types import TransferDataStatus
from zse.tunneling.protocol import TunnelData, TunnelServerProtocol


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
