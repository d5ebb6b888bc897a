"""The Tunneling cores (SE D.6) at the ZCL frame: grants and refusals, data checks, flow
control windows, timeouts. Frames are written out as bytes (the layout of Wireshark's
Tunneling dissector), not built with zse's own encoder."""

from __future__ import annotations

import contextlib
import random

import pytest
import zigpy.types as t
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from zse.errors import InvalidFrame
from zse.se.types import TransferDataStatus
from zse.tunneling.protocol import (
    NO_TUNNEL,
    TransferFailed,
    TunnelClientProtocol,
    TunnelClosed,
    TunnelData,
    TunnelError,
    TunnelLost,
    TunnelOpened,
    TunnelServerProtocol,
    protocol_key,
)
from zse.tunneling.wire import Tunneling
from zse.zcl.codec import decode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Step, ZclMessage

IEEE = t.EUI64.convert("00:0d:6f:00:0a:00:00:01")
OTHER = t.EUI64.convert("00:0d:6f:00:0a:00:00:02")
HUB = t.EUI64.convert("00:0d:6f:00:0a:00:00:99")
TUNNELING = 0x0704
MFR_PROTOCOL = (200, 0x1234)
# Client-to-server ids (D.6.2.4) and server-to-client ids (D.6.2.5).
REQUEST, CLOSE, DATA, ERROR, ACK, READY = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05
RESPONSE, S_DATA, S_ERROR, S_ACK, S_READY, NOTIFY = 0x00, 0x01, 0x02, 0x03, 0x04, 0x06


def frame(command_id: int, payload: bytes, *, ieee=IEEE, nwk=0x1A2B, from_server=False):
    msg = ZclMessage(
        src_nwk=nwk,
        src_ieee=ieee,
        src_ep=1,
        dst_ep=9,
        cluster_id=TUNNELING,
        profile_id=0x0109,
        frame_control=0x01 | (0x08 if from_server else 0),
        manufacturer=None,
        tsn=7,
        command_id=command_id,
        payload=payload,
        aps_encrypted=True,
        group=None,
        broadcast=False,
        timestamp=0.0,
    )
    command, rest = decode_command(Tunneling, command_id, payload, from_server=from_server)
    assert rest == b""
    return msg, command


def request(flow: bool = True, max_in: int = 100, protocol=MFR_PROTOCOL) -> bytes:
    return (
        bytes([protocol[0]])
        + protocol[1].to_bytes(2, "little")
        + bytes([int(flow)])
        + max_in.to_bytes(2, "little")
    )


def server_open(core: TunnelServerProtocol, flow=True, max_in=100, ieee=IEEE) -> int:
    step = core.receive(*frame(REQUEST, request(flow, max_in), ieee=ieee), now=0)
    [reply] = step.sends
    assert reply.command_id == RESPONSE
    tunnel_id = int.from_bytes(reply.payload[:2], "little")
    assert reply.payload[2] == 0  # SUCCESS
    assert isinstance(step.events[0], TunnelOpened)
    return tunnel_id


def test_request_refusals_name_the_status():
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_tunnels=1, flow_control=False)
    # protocol 200 with the standard manufacturer code is not the manufacturer's protocol 200
    step = core.receive(*frame(REQUEST, request(protocol=(200, 0xFFFF))), now=0)
    assert step.sends[0].payload[:3] == NO_TUNNEL.to_bytes(2, "little") + b"\x03"
    step = core.receive(*frame(REQUEST, request(flow=True)), now=0)
    assert step.sends[0].payload[2] == 0x04  # FLOW_CONTROL_NOT_SUPPORTED
    server_open(core, flow=False)
    step = core.receive(*frame(REQUEST, request(flow=False), ieee=OTHER, nwk=0x3333), now=0)
    # every tunnel is taken: NO_MORE_TUNNEL_IDS, as Silicon Labs' Tunneling server answers
    # when it has no free tunnel slot (it keeps BUSY for a temporary refusal)
    assert step.sends[0].payload[:3] == NO_TUNNEL.to_bytes(2, "little") + b"\x02"
    # the response carries the server's maximum incoming transfer size (D.6.2.5.1)
    assert step.sends[0].payload[3:] == (1500).to_bytes(2, "little")


def test_transfer_data_checks_tunnel_device_and_size():
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_incoming=10)
    tid = server_open(core)
    tid_le = tid.to_bytes(2, "little")
    step = core.receive(*frame(DATA, (tid + 1).to_bytes(2, "little") + b"x"), now=1)
    assert step.sends[0].command_id == S_ERROR
    assert step.sends[0].payload[2] == 0x00
    step = core.receive(*frame(DATA, tid_le + b"x", ieee=OTHER, nwk=0x3333), now=1)
    assert step.sends[0].payload[2] == 0x01  # WRONG_DEVICE
    step = core.receive(*frame(DATA, tid_le + b"x" * 11), now=1)
    assert step.sends[0].payload[2] == 0x02  # DATA_OVERFLOW
    assert not any(isinstance(e, TunnelData) for e in step.events)
    # a good one: the data event, and Ack Transfer Data with the window left (D.6.2.4.5)
    step = core.receive(*frame(DATA, tid_le + b"abcd"), now=1)
    assert step.events == (
        TunnelData(tunnel_id=tid, device=str(IEEE), protocol=MFR_PROTOCOL, data=b"abcd"),
    )
    assert (step.sends[0].command_id, step.sends[0].payload) == (S_ACK, tid_le + b"\x06\x00")
    # beyond the window left is an overflow too, until the application releases
    step = core.receive(*frame(DATA, tid_le + b"1234567"), now=2)
    assert step.sends[0].payload[2] == 0x02
    # another device cannot close it
    assert core.receive(*frame(CLOSE, tid_le, ieee=OTHER, nwk=9), now=3).status == (
        foundation.Status.NOT_FOUND
    )
    assert tid in core.tunnels


def test_receiver_stops_the_flow_and_restarts_it_with_ready_data():
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_incoming=8)
    tid = server_open(core)
    tid_le = tid.to_bytes(2, "little")
    step = core.receive(*frame(DATA, tid_le + b"12345678"), now=1)
    assert step.sends[0].payload == tid_le + b"\x00\x00"  # Ack 0: stop
    assert core.release(tid, 3).sends[0].command_id == S_READY
    assert core.release(tid, 3).sends == ()  # already told


def test_sender_honours_the_window():
    client = TunnelClientProtocol(chunk=4)
    hub = Destination.device(0x0000, 9)
    client.request(MFR_PROTOCOL, hub, flow_control=True)
    msg, command = frame(
        RESPONSE, b"\x05\x00\x00" + (6).to_bytes(2, "little"), ieee=HUB, nwk=0, from_server=True
    )
    step = client.opened(msg, command, protocol=MFR_PROTOCOL, flow_control=True, now=0)
    assert step.events == (
        TunnelOpened(tunnel_id=5, device=str(HUB), protocol=MFR_PROTOCOL, flow_control=True),
    )
    assert step.sends == ()
    step = client.send(5, b"abcdefghij", now=1)  # chunks of 4; one in flight at a time
    assert [s.payload for s in step.sends] == [b"\x05\x00abcd"]
    # Ack: 2 octets left; only 2 go
    step = client.receive(*frame(S_ACK, b"\x05\x00\x02\x00", ieee=HUB, nwk=0, from_server=True), 2)
    assert [s.payload for s in step.sends] == [b"\x05\x00ef"]
    # Ack 0: wait for Ready Data
    step = client.receive(*frame(S_ACK, b"\x05\x00\x00\x00", ieee=HUB, nwk=0, from_server=True), 3)
    assert step.sends == ()
    assert client.pending(5) == 4
    step = client.receive(
        *frame(S_READY, b"\x05\x00\x08\x00", ieee=HUB, nwk=0, from_server=True), 4
    )
    assert [s.payload for s in step.sends] == [b"\x05\x00gh"]  # the rest of a cut chunk
    # a stranger's Ready Data changes nothing
    step = client.receive(
        *frame(S_READY, b"\x05\x00\x08\x00", ieee=OTHER, nwk=7, from_server=True), 5
    )
    assert step.status == foundation.Status.NOT_FOUND
    # Transfer Data Error drops what is queued ("ij" and "zz") and tells
    client.send(5, b"zz", now=6)
    step = client.receive(*frame(S_ERROR, b"\x05\x00\x02", ieee=HUB, nwk=0, from_server=True), 7)
    assert step.events == (
        TransferFailed(
            tunnel_id=5, device=str(HUB), status=TransferDataStatus.DATA_OVERFLOW, dropped=4
        ),
    )
    assert client.pending(5) == 0  # DATA_OVERFLOW: the tunnel stays open
    with pytest.raises(TunnelError):
        client.send(6, b"x", now=8)


def test_refused_response_raises():
    client = TunnelClientProtocol()
    msg, command = frame(RESPONSE, b"\xff\xff\x03\x00\x01", ieee=HUB, nwk=0, from_server=True)
    with pytest.raises(TunnelError, match="PROTOCOL_NOT_SUPPORTED"):
        client.opened(msg, command, protocol=MFR_PROTOCOL, flow_control=True, now=0)


def test_inactivity_timeout_notifies():
    core = TunnelServerProtocol({MFR_PROTOCOL}, close_tunnel_timeout=30)
    tid = server_open(core)
    assert core.next_deadline() == 30
    core.receive(*frame(DATA, tid.to_bytes(2, "little") + b"x"), now=20)
    assert core.next_deadline() == 50
    assert core.handle_timeout(49).events == ()
    step = core.handle_timeout(50)
    assert step.events == (TunnelClosed(tunnel_id=tid, device=str(IEEE), reason="timeout"),)
    assert (step.sends[0].command_id, step.sends[0].payload) == (NOTIFY, tid.to_bytes(2, "little"))
    assert core.tunnels == {}
    assert core.next_deadline() is None


@given(st.integers(0, 6), st.binary(max_size=12), st.booleans())
def test_garbage_decodes_or_raises_invalid_frame(command_id, payload, from_server):
    with contextlib.suppress(InvalidFrame):
        decode_command(Tunneling, command_id, payload, from_server=from_server)


GET_SUPPORTED, SUPPORTED_RESPONSE = 0x06, 0x05


def test_supported_tunnel_protocols_from_an_offset():
    """Get Supported Tunnel Protocols (D.6.2.4.7): one octet of offset; the response (D.6.2.5.5)
    is list complete, count, then (manufacturer code, protocol id) pairs, 15 at most."""
    core = TunnelServerProtocol({(6, 0xFFFF)} | {(pid, 0x1234) for pid in range(200, 216)})
    [first] = core.receive(*frame(GET_SUPPORTED, bytes([0])), now=0).sends
    assert first.command_id == SUPPORTED_RESPONSE
    assert first.payload[:2] == bytes([0x00, 15])  # not complete, 15 listed
    assert first.payload[2:5] == bytes.fromhex("ffff06")
    assert first.payload[5:8] == bytes.fromhex("3412c8")
    assert len(first.payload) == 2 + 15 * 3
    [rest] = core.receive(*frame(GET_SUPPORTED, bytes([15])), now=0).sends
    assert rest.payload == bytes([0x01, 2]) + bytes.fromhex("3412d63412d7")
    [beyond] = core.receive(*frame(GET_SUPPORTED, bytes([200])), now=0).sends
    assert beyond.payload == bytes([0x01, 0])
    client = TunnelClientProtocol()
    send = client.get_supported(Destination.device(0x0000, 1), 15)
    assert (send.command_id, send.payload) == (GET_SUPPORTED, bytes([15]))
    _, command = frame(SUPPORTED_RESPONSE, rest.payload, from_server=True)
    assert client.supported(command) == ([(214, 0x1234), (215, 0x1234)], True)
    _, lying = frame(
        SUPPORTED_RESPONSE, bytes([0x01, 3]) + bytes.fromhex("3412ce"), from_server=True
    )
    with pytest.raises(TunnelError, match="count 3"):
        client.supported(lying)
    with pytest.raises(ValueError, match="one octet"):
        client.get_supported(Destination.device(0x0000, 1), 256)


# -- restarts: tunnels do not survive either end (see docs/tunneling.md) -----------------------

PROTOCOL_B = (201, 0x1234)


class _StartAt(random.Random):
    """An rng whose draw of the first tunnel id is ``start``."""

    def __init__(self, start: int) -> None:
        super().__init__(0)
        self.start = start

    def randrange(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self.start


def test_restarted_server_does_not_hand_a_live_id_to_another_tunnel():
    """D.6.2.5.1.1.1: the server draws where its ids start. Before, ids restarted at 0, so a
    device's frame for its protocol-A tunnel from before the restart went to the protocol-B
    tunnel it opened after it."""
    before = TunnelServerProtocol({MFR_PROTOCOL, PROTOCOL_B}, rng=random.Random(1))
    tunnel_a = server_open(before)
    assert tunnel_a == random.Random(1).randrange(NO_TUNNEL)
    after = TunnelServerProtocol({MFR_PROTOCOL, PROTOCOL_B}, rng=random.Random(2))
    step = after.receive(*frame(REQUEST, request(protocol=PROTOCOL_B)), now=0)
    tunnel_b = int.from_bytes(step.sends[0].payload[:2], "little")
    assert tunnel_b != tunnel_a
    step = after.receive(*frame(DATA, tunnel_a.to_bytes(2, "little") + b"A-frame"), now=1)
    assert step.events == ()
    assert (step.sends[0].command_id, step.sends[0].payload[2]) == (S_ERROR, 0x00)


def test_server_ids_count_on_wrap_before_0xffff_and_skip_open_ones():
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_tunnels=10, rng=_StartAt(0xFFFD))
    devices = [t.EUI64(bytes([n, 0, 0, 0, 0, 0, 0, 0])) for n in range(4)]
    assert [server_open(core, ieee=ieee) for ieee in devices[:3]] == [0xFFFD, 0xFFFE, 0]
    core._next_id = 0xFFFE  # the count comes round again: the open ones are skipped
    assert server_open(core, ieee=devices[3]) == 1


@pytest.mark.parametrize(
    "status", [TransferDataStatus.NO_SUCH_TUNNEL, TransferDataStatus.WRONG_DEVICE]
)
def test_client_tunnel_is_lost_when_the_server_no_longer_has_it(status):
    """D.6.2.4.4: NO_SUCH_TUNNEL / WRONG_DEVICE mean the server restarted or gave the id to
    another device. The tunnel closes "lost", the queued octets are counted, and later calls
    raise TunnelLost (before, only TransferFailed came and the tunnel stayed open)."""
    client = TunnelClientProtocol(chunk=4)
    msg, command = frame(
        RESPONSE, b"\x05\x00\x00" + (100).to_bytes(2, "little"), ieee=HUB, nwk=0, from_server=True
    )
    client.opened(msg, command, protocol=MFR_PROTOCOL, flow_control=True, now=0)
    assert len(client.send(5, b"abcdefghij", now=1).sends) == 1  # one in flight, 6 queued
    error = b"\x05\x00" + bytes([status])
    step = client.receive(*frame(S_ERROR, error, ieee=HUB, nwk=0, from_server=True), 2)
    assert step.events == (
        TransferFailed(tunnel_id=5, device=str(HUB), status=status, dropped=6),
        TunnelClosed(tunnel_id=5, device=str(HUB), reason="lost", dropped=6),
    )
    assert client.tunnels == {}
    with pytest.raises(TunnelLost, match=f"{status.name}.*6 queued octets") as lost:
        client.send(5, b"more", now=3)
    assert (lost.value.tunnel_id, lost.value.reason, lost.value.dropped) == (5, "lost", 6)
    with pytest.raises(TunnelLost):
        client.pending(5)
    # the id granted again is a new tunnel, not a lost one
    client.opened(msg, command, protocol=MFR_PROTOCOL, flow_control=True, now=4)
    assert client.pending(5) == 0


#: Request Tunnel Response: tunnel 5, SUCCESS, maximum incoming transfer size 100.
GRANT_5 = b"\x05\x00\x00" + (100).to_bytes(2, "little")


def client_granted_tunnel_5_with_data_queued() -> tuple[TunnelClientProtocol, object, object]:
    """A client granted tunnel 5 (MFR_PROTOCOL, flow control) by HUB, 4 octets in flight and
    2 queued; and the Request Tunnel Response that granted it."""
    client = TunnelClientProtocol(chunk=4)
    msg, command = frame(RESPONSE, GRANT_5, ieee=HUB, nwk=0, from_server=True)
    client.opened(msg, command, protocol=MFR_PROTOCOL, flow_control=True, now=0)
    client.send(5, b"abcdef", now=1)  # 4 in flight, 2 queued
    return client, msg, command


def test_client_granted_an_id_it_holds_closes_the_old_tunnel():
    """D.6.2.5.1: a server that restarted may grant again an id this client holds; the old
    tunnel is closed "superseded" (before, the new one silently took its place)."""
    client, msg, command = client_granted_tunnel_5_with_data_queued()
    step = client.opened(msg, command, protocol=PROTOCOL_B, flow_control=True, now=2)
    assert step.events == (
        TunnelClosed(tunnel_id=5, device=str(HUB), reason="superseded", dropped=2),
        TunnelOpened(tunnel_id=5, device=str(HUB), protocol=PROTOCOL_B, flow_control=True),
    )
    assert step.sends == ()  # a Close Tunnel of id 5 would close the new tunnel
    assert client.tunnels[5].protocol == PROTOCOL_B
    assert client.pending(5) == 0
    # the same id from another server: the old tunnel is closed there (one tunnel per id)
    other, other_command = frame(RESPONSE, GRANT_5, ieee=OTHER, nwk=0x4444, from_server=True)
    step = client.opened(other, other_command, protocol=MFR_PROTOCOL, flow_control=True, now=3)
    assert [e.reason for e in step.events if isinstance(e, TunnelClosed)] == ["superseded"]
    [close] = step.sends
    assert (close.command_id, close.payload, close.to) == (
        CLOSE,
        b"\x05\x00",
        Destination.device(0x0000, 1),
    )


def test_server_tunnel_is_lost_when_the_client_no_longer_has_it():
    """The client restarted: it answers the server's Transfer Data NO_SUCH_TUNNEL (D.6.2.4.4);
    the server closes the tunnel "lost" and frees its slot rather than hold it until
    CloseTunnelTimeout."""
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_tunnels=1, chunk=4)
    tid = server_open(core, flow=False)
    tid_le = tid.to_bytes(2, "little")
    assert len(core.send(tid, b"abcdefgh", now=1).sends) == 2  # no flow control: all sent
    step = core.receive(*frame(ERROR, tid_le + b"\x00"), now=2)
    assert step.events == (
        TransferFailed(
            tunnel_id=tid, device=str(IEEE), status=TransferDataStatus.NO_SUCH_TUNNEL, dropped=0
        ),
        TunnelClosed(tunnel_id=tid, device=str(IEEE), reason="lost", dropped=0),
    )
    with pytest.raises(TunnelLost):
        core.send(tid, b"x", now=3)
    server_open(core, flow=False)  # the slot is free again


# -- audit fixes: repeated requests, flow-control recovery, standard protocols, rejoin ---------


def test_a_client_asking_again_gets_its_open_tunnel_back():
    """GBCS v2.0 10.2.2 (as Silicon Labs' Tunneling server): a device asking again for a
    protocol it has a tunnel of gets that tunnel, its timer restarted. Before, each request
    opened another tunnel, so a device retrying took every slot for CloseTunnelTimeout."""
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_tunnels=8, close_tunnel_timeout=60)
    first = server_open(core)
    for n in range(1, 9):
        step = core.receive(*frame(REQUEST, request()), now=10 * n)
        assert step.sends[0].payload[:3] == first.to_bytes(2, "little") + b"\x00"
        assert step.events == (
            TunnelOpened(
                tunnel_id=first, device=str(IEEE), protocol=MFR_PROTOCOL, flow_control=True
            ),
        )
    assert list(core.tunnels) == [first]
    assert core.next_deadline() == 80 + 60
    # another device, or another protocol, is another tunnel
    assert server_open(core, ieee=OTHER) != first
    core.protocols.add(PROTOCOL_B)
    step = core.receive(*frame(REQUEST, request(protocol=PROTOCOL_B)), now=90)
    assert step.sends[0].payload[2] == 0
    assert len(core.tunnels) == 3


def test_a_renewed_tunnel_sends_again_with_the_new_window():
    """A client that restarted asks again while the server waits for the Ack of a Transfer
    Data it never got: the renewed tunnel takes the request's size as its window, so the
    server's next send goes (before, it waited for that Ack for ever)."""
    core = TunnelServerProtocol({MFR_PROTOCOL}, chunk=4)
    tid = server_open(core, max_in=50)
    assert len(core.send(tid, b"abcd", now=1).sends) == 1  # in flight, no Ack comes
    assert core.send(tid, b"efgh", now=2).sends == ()
    core.receive(*frame(REQUEST, request(max_in=3)), now=3)
    step = core.send(tid, b"ij", now=4)
    assert [s.payload for s in step.sends] == [tid.to_bytes(2, "little") + b"efg"]


def test_client_granted_its_own_tunnel_again_keeps_it():
    """The same server granting the same id for the same protocol is the tunnel renewed (the
    server's answer to a repeated request), not a new one: it stays open with what is queued.
    Before, the client closed it "superseded" and its reader got TunnelLost."""
    client, msg, command = client_granted_tunnel_5_with_data_queued()
    step = client.opened(msg, command, protocol=MFR_PROTOCOL, flow_control=True, now=2)
    assert step.events == (
        TunnelOpened(tunnel_id=5, device=str(HUB), protocol=MFR_PROTOCOL, flow_control=True),
    )
    assert step.sends == ()
    assert client.pending(5) == 2
    assert [s.payload for s in client.send(5, b"", now=3).sends] == [b"\x05\x00ef"]


def test_flow_control_sends_again_after_data_overflow():
    """D.6.2.4.4: DATA_OVERFLOW refuses one Transfer Data and no Ack comes for it. Before, the
    sender kept waiting for that Ack and queued every later send for good."""
    client = TunnelClientProtocol(chunk=4)
    msg, command = frame(
        RESPONSE, b"\x05\x00\x00" + (100).to_bytes(2, "little"), ieee=HUB, nwk=0, from_server=True
    )
    client.opened(msg, command, protocol=MFR_PROTOCOL, flow_control=True, now=0)
    client.send(5, b"abcd", now=1)
    step = client.receive(*frame(S_ERROR, b"\x05\x00\x02", ieee=HUB, nwk=0, from_server=True), 2)
    assert [type(e) for e in step.events] == [TransferFailed]
    step = client.send(5, b"wxyz", now=3)
    assert [s.payload for s in step.sends] == [b"\x05\x00wxyz"]
    assert client.pending(5) == 0


def test_an_undelivered_transfer_data_gives_its_window_back():
    """A Transfer Data the radio could not deliver gets no Ack (D.6.2.4.5): the shell hands
    the step back (undelivered) and the window it went in is usable again. Before, every later
    send queued for good."""
    client = TunnelClientProtocol(chunk=4)
    msg, command = frame(
        RESPONSE, b"\x05\x00\x00" + (100).to_bytes(2, "little"), ieee=HUB, nwk=0, from_server=True
    )
    client.opened(msg, command, protocol=MFR_PROTOCOL, flow_control=True, now=0)
    client.receive(*frame(S_ACK, b"\x05\x00\x06\x00", ieee=HUB, nwk=0, from_server=True), 1)
    lost = client.send(5, b"abcd", now=1)
    assert client.send(5, b"wxyz", now=2).sends == ()  # waiting for the Ack
    client.undelivered(lost)
    step = client.send(5, b"", now=3)
    assert [s.payload for s in step.sends] == [b"\x05\x00wxyz"]
    client.undelivered(Step())  # nothing in flight: no change
    assert client.tunnels[5].window is None


def test_standard_protocol_ignores_the_manufacturer_code():
    """D.6.2.4.1.2: the manufacturer code is ignored for a protocol id below 200. Before, ANSI
    C12.22 (2) with a device's own code was refused PROTOCOL_NOT_SUPPORTED."""
    core = TunnelServerProtocol({protocol_key(2)}, flow_control=False)
    step = core.receive(*frame(REQUEST, request(flow=False, protocol=(2, 0x1002))), now=0)
    assert step.sends[0].payload[2] == 0  # SUCCESS
    assert step.events[0].protocol == (2, 0xFFFF)
    assert protocol_key(2, 0x1002) == (2, 0xFFFF)
    assert protocol_key(200, 0x1002) == (200, 0x1002)


def test_server_follows_the_client_to_its_new_address():
    """A client that rejoined at another NWK address (same EUI-64): the server's frames go
    there once a frame of it comes from there, or once told (readdress). Before, they kept
    going to the old address."""
    core = TunnelServerProtocol({MFR_PROTOCOL}, flow_control=False)
    tid = server_open(core, flow=False)
    tid_le = tid.to_bytes(2, "little")
    core.receive(*frame(DATA, tid_le + b"hello", nwk=0x5555), now=1)
    assert core.send(tid, b"answer", now=2).sends[0].to == Destination.device(0x5555, 1)
    core.readdress(IEEE, 0x6666)
    assert core.send(tid, b"again", now=3).sends[0].to == Destination.device(0x6666, 1)
    core.readdress(OTHER, 0x7777)  # another device's address changes nothing here
    assert core.tunnels[tid].peer.address == 0x6666
