"""Tunneling (SE D.6) between a zigpy ESI (SeEndpoint + TunnelingServer) and a simulated device
(TunnelingClient) on the simulator's virtual-time loop."""

from __future__ import annotations

import asyncio

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
    TunnelOpened,
)
from zse.tunneling.service import TunnelingClient, TunnelingServer
from zse.zcl.delivery import Destination
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

MFR = 0x1234  # a manufacturer code for the manufacturer-defined protocol 200
ECHO = 200


async def network(seed: int, *, close_tunnel_timeout: int = 0xFFFF, max_incoming: int = 1500):
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    se = SeEndpoint(app, in_clusters=[TUNNELING])
    await se.start()
    server = TunnelingServer(
        se, close_tunnel_timeout=close_tunnel_timeout, max_incoming=max_incoming
    )
    code = InstallCode.generate(rng=air.rng)
    dev = air.device("00:0d:6f:00:0e:00:00:01", install_code=code, channel=15)
    ep = dev.add_endpoint(1, device_type=0x0502, out_clusters=[TUNNELING])
    await app.permit_with_link_key(dev.ieee, t.KeyData(code.link_key), 60)
    await dev.join()
    await asyncio.sleep(30)
    client = TunnelingClient(ep, Destination.device(0x0000, SE_ENDPOINT_ID), max_incoming=100)
    await client.start()
    return air, app, server, client, dev


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


async def test_transfer_to_unknown_tunnel_is_an_error():
    _, _, server, client, _ = await network(72)
    server.serve(ECHO, lambda data: None, manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    server.core.tunnels.clear()  # the server forgot it (a restart)
    failed = []
    client.on_event(lambda e: failed.append(e) if isinstance(e, TransferFailed) else None)
    await client.send(tunnel, b"lost")
    await asyncio.sleep(5)
    assert [e.status for e in failed] == [TransferDataStatus.NO_SUCH_TUNNEL]
    assert client.pending(tunnel) == 0
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
