"""Tunneling (SE D.6) between a zigpy ESI (SeEndpoint + TunnelingServer) and a simulated device
(TunnelingClient) on the simulator's virtual-time loop."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import zigpy.types as t

from zse.installcode import InstallCode
from zse.se.ids import TUNNELING
from zse.se.types import TransferDataStatus, TunnelProtocol
from zse.sim import Air
from zse.tunneling.protocol import (
    TransferFailed,
    TunnelClosed,
    TunnelData,
    TunnelError,
    TunnelLost,
    TunnelOpened,
)
from zse.tunneling.service import TunnelingClient, TunnelingServer
from zse.zcl.delivery import Destination
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

MFR = 0x1234  # a manufacturer code for the manufacturer-defined protocol 200
ECHO = 200


async def network(
    seed: int,
    *,
    close_tunnel_timeout: int = 0xFFFF,
    max_incoming: int = 1500,
    rng: random.Random | None = None,
    server_options: dict[str, Any] | None = None,
    client_options: dict[str, Any] | None = None,
):
    """A coordinator with a Tunneling server (not started) and a joined device's started
    client; ``server_options`` and ``client_options`` go to their constructors."""
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    se = SeEndpoint(app, in_clusters=[TUNNELING])
    await se.start()
    server = TunnelingServer(
        se,
        close_tunnel_timeout=close_tunnel_timeout,
        max_incoming=max_incoming,
        rng=rng,
        **(server_options or {}),
    )
    client, dev = await joined_client(air, app, "00:0d:6f:00:0e:00:00:01", **(client_options or {}))
    return air, app, server, client, dev


async def joined_client(air, app, eui64: str, **client_options: Any):
    """A device ``eui64`` joined to ``app``'s network with a started Tunneling client to
    the coordinator's SE endpoint (``client_options`` to its constructor), and the device."""
    code = InstallCode.generate(rng=air.rng)
    dev = air.device(eui64, install_code=code, channel=15)
    ep = dev.add_endpoint(1, device_type=0x0502, out_clusters=[TUNNELING])
    await app.permit_with_link_key(dev.ieee, t.KeyData(code.link_key), 60)
    await dev.join()
    await asyncio.sleep(30)
    client = TunnelingClient(
        ep, Destination.device(0x0000, SE_ENDPOINT_ID), max_incoming=100, **client_options
    )
    await client.start()
    return client, dev


async def test_request_echo_and_close():
    _, _, server, client, _ = await network(70)
    seen = []
    server.on_event(seen.append)
    server.serve(ECHO, lambda data: data.data.upper(), manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    await client.send(tunnel, b"hello tunnel " * 20)  # 260 octets: 5 transfers, acked one by one
    received = b""
    while len(received) < 260:
        received += await client.read(tunnel, timeout=30)
    assert received == b"HELLO TUNNEL " * 20
    assert client.pending(tunnel) == 0
    await client.close(tunnel)
    await asyncio.sleep(5)
    assert [type(e) for e in seen if not isinstance(e, TunnelData)] == [TunnelOpened, TunnelClosed]
    assert seen[-1].reason == "closed"
    assert server.core.tunnels == {}
    assert b"".join(e.data for e in seen if isinstance(e, TunnelData)) == b"hello tunnel " * 20
    await client.stop()
    await server.stop()


async def test_refusals_and_timeout():
    _, _, server, client, _ = await network(71, close_tunnel_timeout=60)
    server.serve(ECHO, lambda data: None, manufacturer_code=MFR)
    await server.start()
    with pytest.raises(TunnelError, match="PROTOCOL_NOT_SUPPORTED"):
        await client.open(TunnelProtocol.DLMS_COSEM)
    with pytest.raises(TunnelError, match="PROTOCOL_NOT_SUPPORTED"):
        await client.open(ECHO)  # the standard manufacturer code is another protocol
    closed = []
    server.on_event(lambda e: closed.append(e) if isinstance(e, TunnelClosed) else None)
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    await asyncio.sleep(30)
    await client.send(tunnel, b"x")  # activity restarts the 60 s
    await asyncio.sleep(50)
    assert closed == []
    await asyncio.sleep(20)
    assert [e.reason for e in closed] == ["timeout"]
    with pytest.raises(TunnelError, match="notified"):
        await client.read(tunnel, timeout=1)
    assert client.core.tunnels == {}
    await client.stop()
    await server.stop()


async def restart(server: TunnelingServer, rng: random.Random) -> TunnelingServer:
    """The server's process restarts: a new server on the same endpoint, no tunnels."""
    await server.stop()
    again = TunnelingServer(server.endpoint, rng=rng)
    again.serve(ECHO, lambda data: data.data.upper(), manufacturer_code=MFR)
    again.serve(ECHO + 1, lambda data: data.data[::-1], manufacturer_code=MFR)
    await again.start()
    return again


async def test_transfer_to_unknown_tunnel_is_an_error():
    """The server restarted and has no tunnel of that id: it answers Transfer Data Error
    NO_SUCH_TUNNEL (D.6.2.4.4). The client closes the tunnel: the waiting read() raises
    TunnelLost, so does every later send() and read(), and the queued octets are counted.
    Before, only TransferFailed came: the tunnel stayed open and read() waited for ever."""
    _, _, server, client, _ = await network(72, rng=random.Random(1))
    server.serve(ECHO, lambda data: None, manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    server = await restart(server, random.Random(2))
    events = []
    client.on_event(events.append)
    reader = asyncio.get_running_loop().create_task(client.read(tunnel))
    await client.send(tunnel, b"x" * 200)  # flow control: 64 go, 136 wait for the Ack
    await asyncio.sleep(5)
    assert [(type(e), getattr(e, "dropped", None)) for e in events] == [
        (TransferFailed, 136),
        (TunnelClosed, 136),
    ]
    assert events[0].status == TransferDataStatus.NO_SUCH_TUNNEL
    assert reader.done()
    with pytest.raises(TunnelLost, match="136 queued octets"):
        reader.result()
    with pytest.raises(TunnelLost, match="NO_SUCH_TUNNEL"):
        await client.send(tunnel, b"again")
    with pytest.raises(TunnelLost):
        await client.read(tunnel, timeout=1)
    assert server.core.tunnels == {}
    await client.stop()
    await server.stop()


async def test_id_granted_again_after_a_server_restart_supersedes_the_old_tunnel():
    """A server that restarts counting from the same point (same rng here; other stacks
    restart at 0) grants the client an id it still holds (D.6.2.5.1). The old tunnel is
    closed "superseded": its waiting reader gets TunnelLost, and the id is the new tunnel's.
    Before, the new tunnel silently replaced the old one and the reader got the new
    protocol's data."""
    _, _, server, client, _ = await network(73, rng=random.Random(5))
    server.serve(ECHO, lambda data: data.data.upper(), manufacturer_code=MFR)
    await server.start()
    old = await client.open(ECHO, manufacturer_code=MFR)
    reader = asyncio.get_running_loop().create_task(client.read(old))
    await asyncio.sleep(1)
    server = await restart(server, random.Random(5))
    closed = []
    client.on_event(lambda e: closed.append(e) if isinstance(e, TunnelClosed) else None)
    new = await client.open(ECHO + 1, manufacturer_code=MFR)
    assert new == old
    assert [(e.tunnel_id, e.reason) for e in closed] == [(old, "superseded")]
    await asyncio.sleep(0)
    assert reader.done()
    with pytest.raises(TunnelLost, match="granted its id to a new tunnel"):
        reader.result()
    await client.send(new, b"abc")
    assert await client.read(new, timeout=30) == b"cba"  # the new protocol's handler
    await client.stop()
    await server.stop()


async def test_get_supported_tunnel_protocols_pages_through_the_list():
    """Get Supported Tunnel Protocols (D.6.2.4.7) and its response (D.6.2.5.5): 20 protocols
    served come back in two responses (15, then 5 with the list complete), in order."""
    _, _, server, client, _ = await network(74)
    await server.start()
    assert await client.supported_protocols() == []
    for protocol in (TunnelProtocol.GB_HRGP, TunnelProtocol.DLMS_COSEM):
        server.serve(protocol, lambda data: None)
    for pid in range(200, 218):
        server.serve(pid, lambda data: None, manufacturer_code=MFR)
    protocols = await client.supported_protocols()
    assert protocols == [(0, 0xFFFF), (6, 0xFFFF)] + [(pid, MFR) for pid in range(200, 218)]


async def test_opening_again_gives_the_same_tunnel_and_keeps_its_reader():
    """A client asking again for the protocol it has a tunnel of (it did not get the answer,
    or restarted) gets the same tunnel: one slot on the server, the waiting read still served.
    Before, each open() took another of the server's tunnels until CloseTunnelTimeout."""
    _, _, server, client, _ = await network(75)
    server.serve(ECHO, lambda data: data.data.upper(), manufacturer_code=MFR)
    await server.start()
    first = await client.open(ECHO, manufacturer_code=MFR)
    reader = asyncio.get_running_loop().create_task(client.read(first, timeout=30))
    for _ in range(3):
        assert await client.open(ECHO, manufacturer_code=MFR) == first
    assert list(server.core.tunnels) == [first]
    await client.send(first, b"abc")
    assert await reader == b"ABC"
    await client.stop()
    await server.stop()


async def test_flow_control_sends_again_after_a_transfer_data_not_delivered():
    """A Transfer Data the radio could not deliver gets no Ack (D.6.2.4.5): send() raises,
    and the next send() goes. Before, every later send() queued for good without an error."""
    air, _, server, client, dev = await network(76)
    server.serve(ECHO, lambda data: None, manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    air.silence(dev)
    with pytest.raises(TunnelError, match="not delivered"):
        await server.send(tunnel, b"lost")
    air.restore(dev)
    await server.send(tunnel, b"after")
    assert server.pending(tunnel) == 0
    assert await client.read(tunnel, timeout=30) == b"after"
    await client.stop()
    await server.stop()
