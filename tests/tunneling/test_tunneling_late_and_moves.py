"""Tunneling (SE D.6) robustness, the shells on the simulator's virtual clock and the client
core: a tunnel granted after the client's open() gave up, a client that moved to another NWK
address, and what a client that only listens learns of a restarted server."""

from __future__ import annotations

import asyncio
import random

import pytest
import zigpy.types as t

from tests.tunneling.test_tunneling_protocol import (
    CLOSE,
    GRANT_5,
    HUB,
    MFR_PROTOCOL,
    RESPONSE,
    frame,
)
from tests.tunneling.test_tunneling_service import ECHO, MFR, network, restart
from zse.tunneling.protocol import TunnelClientProtocol, TunnelClosed, TunnelError
from zse.tunneling.service import TunnelingClient
from zse.zcl.delivery import Destination
from zse.zcl.frame import Step
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

#: Request Tunnel Response: tunnel 6, SUCCESS, maximum incoming transfer size 100.
GRANT_6 = b"\x06\x00\x00" + (100).to_bytes(2, "little")


async def test_a_tunnel_granted_after_open_timed_out_is_closed():
    """The Request Tunnel Response came after open() timed out (D.6.2.5.1): the client sends
    Close Tunnel (D.6.2.4.2) for the tunnel it grants. Before, the client answered it with a
    Default Response UNSUP_CLUSTER_COMMAND and the server held the tunnel for nobody until its
    CloseTunnelTimeout (18 h by default)."""
    air, app, server, client, dev = await network(80)
    server.serve(ECHO, lambda data: None, manufacturer_code=MFR)
    await server.start()
    closed = []
    server.on_event(lambda e: closed.append(e) if isinstance(e, TunnelClosed) else None)
    air.set_link_faults(app.state.node_info.ieee, dev.ieee, delay=10, both_ways=False)
    dev.aps_ack = False  # the ESI's APS acks would come 10 s late too: the answer is late
    with pytest.raises(TimeoutError):
        await client.open(ECHO, manufacturer_code=MFR)
    assert len(server.core.tunnels) == 1  # granted; the response is still on its way
    await asyncio.sleep(10)
    assert server.core.tunnels == {}
    assert [e.reason for e in closed] == ["closed"]
    assert client.core.tunnels == {}
    await client.stop()
    await server.stop()


async def test_open_again_keeps_the_tunnel_a_late_answer_names():
    """open() timed out and was called again: the first answer arrives while the second waits,
    and the server gives the second the same tunnel (GBCS v2.0 10.2.2). The late answer's
    tunnel is the one the client now holds: it is not closed."""
    air, app, server, client, dev = await network(81)
    server.serve(ECHO, lambda data: data.data.upper(), manufacturer_code=MFR)
    await server.start()
    air.set_link_faults(app.state.node_info.ieee, dev.ieee, delay=10, both_ways=False)
    dev.aps_ack = False  # the ESI's APS acks would come 10 s late too: the answer is late
    with pytest.raises(TimeoutError):
        await client.open(ECHO, manufacturer_code=MFR)
    tunnel = await client.open(ECHO, manufacturer_code=MFR, timeout=30)
    await asyncio.sleep(30)
    assert list(server.core.tunnels) == [tunnel]
    air.set_link_faults(app.state.node_info.ieee, dev.ieee, both_ways=False)
    await client.send(tunnel, b"abc")
    assert await client.read(tunnel, timeout=30) == b"ABC"
    await client.stop()
    await server.stop()


async def test_server_on_a_zigpy_app_follows_a_client_to_its_new_address():
    """A client that rejoined at another NWK address (ZB 3.6.1.9; zigpy's device_joined on a
    Device_annce): the server's frames on its tunnels go to the new address. Before, readdress
    was wired to nothing, and the server sent to the old address until the client itself sent
    a frame from the new one."""
    _, app, server, client, dev = await network(82)
    server.serve(ECHO, lambda data: None, manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    moved = dev.nwk ^ 0x0101
    app.handle_join(t.NWK(moved), dev.ieee, t.NWK(0x0000))
    assert server.core.tunnels[tunnel].peer == Destination.device(moved, 1)
    await server.stop()
    app.handle_join(t.NWK(moved ^ 0x0202), dev.ieee, t.NWK(0x0000))
    assert server.core.tunnels[tunnel].peer.address == moved  # a stopped server is not told
    await client.stop()


def test_client_core_closes_a_late_grant_once_no_request_awaits():
    """The client core's rule for a Request Tunnel Response no request awaits (D.6.2.5.1):
    Close Tunnel (D.6.2.4.2) to its sender, held back while another request awaits its answer
    (the server may give that one the same tunnel), none for a tunnel it holds with that server
    or for a refusal, and no Default Response. Before, it answered UNSUP_CLUSTER_COMMAND and
    closed nothing."""
    client = TunnelClientProtocol()
    late = frame(RESPONSE, GRANT_5, ieee=HUB, nwk=0x0000, from_server=True)
    step = client.receive(*late, now=0)
    assert step.status is None
    [close] = step.sends
    assert (close.command_id, close.payload, close.to) == (
        CLOSE,
        b"\x05\x00",
        Destination.device(0x0000, 1),
    )
    refused = frame(RESPONSE, b"\xff\xff\x02\x64\x00", ieee=HUB, nwk=0x0000, from_server=True)
    assert client.receive(*refused, now=1) == Step()
    # a request awaits: the late grant waits for its answer, which is the same tunnel
    client.request(MFR_PROTOCOL, Destination.device(0x0000, 1), flow_control=True)
    assert client.receive(*late, now=2) == Step()
    client.opened(*late, protocol=MFR_PROTOCOL, flow_control=True, now=3)
    assert client.settled() == Step()
    assert client.receive(*late, now=4) == Step()  # a copy of the answer for tunnel 5
    # a late grant of another tunnel while a request awaits: closed once that one is answered
    client.request(MFR_PROTOCOL, Destination.device(0x0000, 1), flow_control=True)
    other = frame(RESPONSE, GRANT_6, ieee=HUB, nwk=0x0000, from_server=True)
    assert client.receive(*other, now=5) == Step()
    client.opened(*late, protocol=MFR_PROTOCOL, flow_control=True, now=6)
    [close] = client.settled().sends
    assert close.payload == b"\x06\x00"
    assert client.settled() == Step()  # nothing left to close
    assert list(client.tunnels) == [5]


async def test_a_listening_client_learns_a_restarted_server_by_its_own_timeout():
    """The limit of a client that only listens: Tunneling has no keep-alive (D.6) and a
    restarted server sends nothing on a tunnel it forgot, so the client learns of it by its
    copy of CloseTunnelTimeout (D.6.2.2.1), when a live server would have closed the idle
    tunnel too: the waiting read() ends then, not before. (A send learns it at once:
    test_tunneling_service.py::test_transfer_to_unknown_tunnel_is_an_error.)"""
    _, _, server, first, dev = await network(83, close_tunnel_timeout=60)
    server.serve(ECHO, lambda data: None, manufacturer_code=MFR)
    await server.start()
    await first.stop()
    hub = Destination.device(0x0000, SE_ENDPOINT_ID)
    client = TunnelingClient(dev.endpoints[1], hub, close_timeout=60)
    await client.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    server = await restart(server, random.Random(3))
    reader = asyncio.get_running_loop().create_task(client.read(tunnel))
    await asyncio.sleep(59)
    assert not reader.done()
    await asyncio.sleep(2)
    with pytest.raises(TunnelError, match="timeout"):
        reader.result()
    assert client.core.tunnels == {}
    await client.stop()
    await server.stop()
