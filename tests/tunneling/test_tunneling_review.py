"""Hostile review of Tunneling (SE D.6): what a peer that never takes data, a Request Tunnel
with an out-of-range Boolean, and a peer that takes no data at all did to the cores. Frames
are written out as bytes (Wireshark's Tunneling layout), as in ``test_tunneling_protocol``."""

from __future__ import annotations

import asyncio
import logging

import pytest
from zigpy.zcl import foundation

from tests.tunneling.test_tunneling_protocol import (
    DATA,
    HUB,
    IEEE,
    MFR_PROTOCOL,
    OTHER,
    REQUEST,
    RESPONSE,
    frame,
    request,
    server_open,
)
from tests.tunneling.test_tunneling_service import ECHO, MFR, joined_client, network
from zse.se.ids import TUNNELING
from zse.se.types import TunnelStatus
from zse.tunneling.protocol import (
    TunnelClientProtocol,
    TunnelClosed,
    TunnelError,
    TunnelLost,
    TunnelServerProtocol,
)
from zse.zcl.delivery import Destination
from zse.zcl.frame import Step

#: Far above what a tunnel may queue by default, far below what it queued before the cap.
BOUND = 0x20000


def test_a_peer_that_never_acks_cannot_make_the_queue_grow_for_good():
    """With flow control the sender waits for the Ack of each Transfer Data (D.6.2.4.5); a
    peer that never sends it used to let ``send()`` queue without end (1 MB here). Once the
    tunnel has its limit queued, ``send()`` raises and queues nothing."""
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_incoming=100)
    tid = server_open(core, flow=True, max_in=100)
    errors: list[str] = []
    for _ in range(1000):
        try:
            core.send(tid, b"x" * 1000, now=1)
        except TunnelError as exc:
            errors.append(str(exc))
    assert core.pending(tid) < BOUND
    assert errors
    assert all("octets already queued" in error for error in errors)
    # the queue drains as the peer takes data again, and sends go again
    core.max_queued = core.pending(tid) + 10
    core.send(tid, b"y", now=2)


async def test_a_client_that_never_reads_cannot_fill_the_servers_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that sends but never reads: its window closes (Ack 0, D.6.2.4.5), the server
    waits for its Ready Data (D.6.2.4.6), and every reply of the handler used to queue on the
    tunnel for good. The replies beyond the limit are logged and dropped."""
    _, _, server, client, _ = await network(80)
    server.serve(ECHO, lambda data: bytes(4096), manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    with caplog.at_level(logging.WARNING, logger="zse.tunneling.service"):
        for _ in range(24):  # 24 replies of 4 KiB: 96 KiB
            await client.send(tunnel, b"q")
        await asyncio.sleep(30)
    assert 0 < server.pending(tunnel) <= 0x10000 + 4096
    assert any("reply not sent" in r.getMessage() for r in caplog.records)
    await client.stop()
    await server.stop()


@pytest.mark.parametrize("flow", [0x02, 0xFF])
def test_request_tunnel_with_a_boolean_out_of_range_is_refused(flow):
    """Flow Control Support is a Boolean (D.6.2.4.1.1): 0x00 or 0x01, 0xFF its invalid value.
    zigpy decodes another octet as an undefined member, which was taken as "flow control on"
    and granted; it is a field with an invalid value: Default Response INVALID_FIELD."""
    core = TunnelServerProtocol({MFR_PROTOCOL})
    payload = bytearray(request(flow=True))
    payload[3] = flow
    step = core.receive(*frame(REQUEST, bytes(payload)), now=0)
    assert step.status == foundation.Status.INVALID_FIELD
    assert step.sends == ()
    assert step.events == ()
    assert core.tunnels == {}


@pytest.mark.parametrize("flow", [True, False])
def test_sending_to_a_server_side_peer_that_takes_no_data_raises(flow):
    """A client whose Maximum Incoming Transfer Size is 0 (D.6.2.4.1.1) takes no Transfer
    Data. ``send()`` queued for good with flow control (a window of 0 waits for a Ready Data
    that never comes) and sent 1-octet frames the peer refuses without it; it now says so."""
    core = TunnelServerProtocol({MFR_PROTOCOL})
    tid = server_open(core, flow=flow, max_in=0)
    with pytest.raises(TunnelError, match="takes no data"):
        core.send(tid, b"abc", now=1)
    assert core.pending(tid) == 0
    # what the peer sends is still taken
    step = core.receive(*frame(DATA, tid.to_bytes(2, "little") + b"up"), now=2)
    assert [type(e).__name__ for e in step.events] == ["TunnelData"]


def test_sending_to_a_server_that_takes_no_data_raises():
    """The same on the client side, for a Request Tunnel Response (D.6.2.5.1) of size 0."""
    client = TunnelClientProtocol()
    client.request(MFR_PROTOCOL, Destination.device(0x0000, 9), flow_control=True)
    msg, command = frame(RESPONSE, b"\x05\x00\x00\x00\x00", ieee=HUB, nwk=0, from_server=True)
    client.opened(msg, command, protocol=MFR_PROTOCOL, flow_control=True, now=0)
    with pytest.raises(TunnelError, match="takes no data"):
        client.send(5, b"abc", now=1)


async def _answered_after(seed: int, command_id: int, payload: bytes, ask: str) -> object:
    """The client asks (``open`` or ``supported_protocols``); the server end sends, with the
    request's TSN, a Tunneling command that is not the response (TSNs are each sender's own,
    ZCL 2.4.1.3: the server's own Transfer Data or Tunnel Closure Notification may carry it),
    then the response. What the asking returns."""
    _, _, server, client, _ = await network(seed)
    se = server.endpoint
    response = {
        "open": (0x00, b"\x07\x00\x00\x40\x00"),  # tunnel 7, success, 64 octets
        "supported": (0x05, b"\x01\x00"),  # complete, no protocols
    }[ask]

    async def answer(msg) -> None:
        if not msg.from_server:
            for command, body in ((command_id, payload), response):
                await se.send(
                    msg.src_nwk,
                    msg.src_ep,
                    TUNNELING,
                    command,
                    body,
                    direction=foundation.Direction.Server_to_Client,
                    tsn=msg.tsn,
                )

    remove = se.add_handler(TUNNELING, answer)
    asking = (
        client.open(ECHO, manufacturer_code=MFR) if ask == "open" else client.supported_protocols()
    )
    try:
        return await asking
    finally:
        remove()
        await client.stop()


@pytest.mark.parametrize(
    ("command_id", "payload"),
    [(0x01, b"\x07\x00data"), (0x06, b"\x07\x00"), (0x05, b"\x01\x00")],
    ids=["transfer_data", "closure_notification", "supported_protocols_response"],
)
async def test_open_is_answered_by_its_response_not_another_command_with_its_tsn(
    command_id, payload
):
    """``open()`` took any cluster command from the server with its TSN as the Request Tunnel
    Response (D.6.2.5.1): it read a field the command does not have (AttributeError), then,
    checked, failed with TunnelError while the response was still to come. The endpoint now
    matches the response's id (``Send.answers``): the other command goes its way."""
    assert await _answered_after(81, command_id, payload, "open") == 7


@pytest.mark.parametrize(
    ("command_id", "payload"),
    [(0x01, b"\x07\x00data"), (0x00, b"\x07\x00\x00\x40\x00")],
    ids=["transfer_data", "request_tunnel_response"],
)
async def test_supported_protocols_is_answered_by_its_response_not_another_command(
    command_id, payload
):
    """The same for Get Supported Tunnel Protocols (D.6.2.4.7 / D.6.2.5.5)."""
    assert await _answered_after(82, command_id, payload, "supported") == []


async def test_a_device_that_left_the_network_frees_its_tunnels():
    """A device that leaves (NWK Leave, ZB 3.4.4; zigpy's ``device_left``) held its tunnels,
    and their slots (``max_tunnels``), until CloseTunnelTimeout: 18 h by default (D.6.2.2.1).
    They are closed when it leaves, ``"left"``, with no Tunnel Closure Notification to a
    device no longer there."""
    _, _, server, client, dev = await network(83)
    seen: list[object] = []
    server.on_event(seen.append)
    server.serve(ECHO, lambda data: None, manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    await dev.leave()
    await asyncio.sleep(5)
    assert server.core.tunnels == {}
    assert seen[-1] == TunnelClosed(tunnel_id=tunnel, device=str(dev.ieee), reason="left")
    with pytest.raises(TunnelLost, match="left the network"):
        await server.send(tunnel, b"x")
    await client.stop()
    await server.stop()


def test_core_closes_the_tunnels_of_a_device_that_left():
    """The core's side of it: only that device's tunnels, events and no frame."""
    core = TunnelServerProtocol({MFR_PROTOCOL})
    mine, other = server_open(core), server_open(core, ieee=OTHER)
    step = core.left(IEEE)
    assert step.sends == ()
    assert step.events == (TunnelClosed(tunnel_id=mine, device=str(IEEE), reason="left"),)
    assert list(core.tunnels) == [other]
    assert core.left(IEEE) == Step()


async def test_handler_replies_on_one_tunnel_go_in_the_order_the_data_came():
    """A tunnel is a byte stream (D.6.2.4.3): each Transfer Data started its own handler task
    and the replies went as the tasks ended, so a slow answer to A came after the answer to
    B sent after it. One tunnel's data is now handed to the handler in order."""
    _, _, server, client, _ = await network(90)
    started: list[bytes] = []

    async def handler(data):
        started.append(data.data)
        if data.data == b"A":
            await asyncio.sleep(5)
        return data.data

    server.serve(ECHO, handler, manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    await client.send(tunnel, b"A")
    await client.send(tunnel, b"B")
    first = await client.read(tunnel, timeout=30)
    second = await client.read(tunnel, timeout=30)
    assert (first, second) == (b"A", b"B")
    assert started == [b"A", b"B"]
    await client.stop()
    await server.stop()


async def test_a_slow_handler_on_one_tunnel_does_not_hold_up_another():
    """In order within a tunnel, not across tunnels: another device's data is not held up."""
    air, app, server, client, _ = await network(92)
    gate = asyncio.Event()

    async def handler(data):
        if data.data == b"slow":
            await gate.wait()
        return data.data

    server.serve(ECHO, handler, manufacturer_code=MFR)
    await server.start()
    slow = await client.open(ECHO, manufacturer_code=MFR)
    other, _ = await joined_client(air, app, "00:0d:6f:00:0e:00:00:02")
    fast = await other.open(ECHO, manufacturer_code=MFR)
    await client.send(slow, b"slow")
    await other.send(fast, b"fast")
    assert await other.read(fast, timeout=30) == b"fast"
    gate.set()
    assert await client.read(slow, timeout=30) == b"slow"
    await other.stop()
    await client.stop()
    await server.stop()


def test_one_device_cannot_take_every_tunnel_slot():
    """Asking for many protocols (or from many endpoints), one device took all ``max_tunnels``
    slots, and every other device was answered NO_MORE_TUNNEL_IDS for CloseTunnelTimeout (18 h
    by default). It may hold ``max_per_device`` now; the others still get theirs."""
    protocols = [(200 + n, 0x1234) for n in range(8)]
    core = TunnelServerProtocol(set(protocols), max_tunnels=8, max_per_device=2)
    answers = []
    for protocol in protocols:
        step = core.receive(*frame(REQUEST, request(protocol=protocol)), now=0)
        answers.append(step.sends[0].payload[2])
    assert answers == [0, 0] + [TunnelStatus.NO_MORE_TUNNEL_IDS] * 6
    assert len(core.tunnels) == 2
    other = core.receive(*frame(REQUEST, request(), ieee=OTHER, nwk=0x3C4D), now=0)
    assert other.sends[0].payload[2] == 0  # another device is served
    with pytest.raises(ValueError, match="at least 1 tunnel"):
        TunnelServerProtocol(set(protocols), max_per_device=0)


def test_a_transfer_data_of_no_octets_keeps_the_tunnel_open_and_reads_as_nothing():
    """A Transfer Data with no data was handed on as ``TunnelData(data=b"")``: a reader's
    ``read()`` returned ``b""``, which stream code takes for the end of the stream, so a peer
    could make it stop reading. It restarts the inactivity timer (and is acknowledged under
    flow control) and hands on nothing."""
    core = TunnelServerProtocol({MFR_PROTOCOL}, close_tunnel_timeout=60)
    tunnel = server_open(core)
    empty = tunnel.to_bytes(2, "little")
    step = core.receive(*frame(DATA, empty), now=50)
    assert step.events == ()
    assert [send.command_id for send in step.sends] == [0x03]  # Ack Transfer Data
    assert core.tunnels[tunnel].deadline == 50 + 60
    data = core.receive(*frame(DATA, empty + b"x"), now=51)
    assert [event.data for event in data.events] == [b"x"]


def test_a_tunnel_granted_with_the_refusal_id_is_refused():
    """A Request Tunnel Response of SUCCESS with tunnel id 0xFFFF, the id a refusal carries
    (D.6.2.5.1.1.1), opened a tunnel 0xFFFF; it names no tunnel: a TunnelError now."""
    client = TunnelClientProtocol()
    client.request(MFR_PROTOCOL, Destination.device(0x0000, 9), flow_control=True)
    msg, command = frame(RESPONSE, b"\xff\xff\x00\x40\x00", ieee=HUB, nwk=0, from_server=True)
    with pytest.raises(TunnelError, match="0xFFFF, which names none"):
        client.opened(msg, command, protocol=MFR_PROTOCOL, flow_control=True, now=0)
    assert client.tunnels == {}
