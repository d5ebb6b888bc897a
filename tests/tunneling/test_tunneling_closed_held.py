"""Hostile review of Tunneling (SE D.6), session 23: what a closed tunnel still holds. Closing a
tunnel (Close Tunnel D.6.2.4.2, the inactivity timeout D.6.2.2.1) does not end a server
handler's task or empty a client's read queue, so what it holds stays counted against its device
until the application has taken it. The shells run on the simulator's air
(``test_tunneling_service``'s network, virtual time); the core's frames are written out as
bytes (``test_tunneling_protocol``)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import zigpy.types as t

from tests.tunneling.test_tunneling_protocol import (
    CLOSE,
    DATA,
    IEEE,
    MFR_PROTOCOL,
    OTHER,
    PROTOCOL_B,
    REQUEST,
    RESPONSE,
    S_ACK,
    S_ERROR,
    S_READY,
    frame,
    request,
    server_open,
)
from tests.tunneling.test_tunneling_service import ECHO, MFR, network, restart
from zse.se.types import TransferDataStatus, TunnelStatus
from zse.tunneling.protocol import (
    TransferFailed,
    TunnelData,
    TunnelError,
    TunnelServerProtocol,
)
from zse.tunneling.service import TunnelingClient, TunnelingServer

OVERFLOW = TransferDataStatus.DATA_OVERFLOW


async def client_holding_three(
    seed: int, **options: Any
) -> tuple[TunnelingServer, TunnelingClient, list[object], int]:
    """A started server (``options`` to :func:`network`) that has sent three Transfer Data on
    a tunnel without flow control to a client holding at most three: the server, the client,
    the server's events and the tunnel."""
    _, _, server, client, _ = await network(seed, client_options={"max_held_frames": 3}, **options)
    server.serve(ECHO, lambda data: None, manufacturer_code=MFR)
    at_server: list[object] = []
    server.on_event(at_server.append)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR, flow_control=False)
    [at_server_id] = server.core.tunnels
    for _ in range(3):
        await server.send(at_server_id, b"x")
    return server, client, at_server, tunnel


async def test_a_peer_that_closes_and_reopens_cannot_pile_up_handler_tasks():
    """A handler task waits for each Transfer Data held (its tunnel's data in order). They were
    counted per open tunnel only: a device that filled a tunnel for a slow handler, closed it,
    opened another and filled that made ``max_held_frames`` more tasks each time (20 here,
    without end). A closed tunnel's data counts against its device until the handler took it:
    meanwhile its Request Tunnel is answered BUSY (D.6.2.5.1, a temporary refusal), and once
    the handlers have returned it gets its tunnel and its data is taken again."""
    bounds = {"max_held_frames": 4, "max_queued": 100}
    _, _, server, client, _ = await network(84, server_options=bounds)
    gate = asyncio.Event()

    async def slow(data: TunnelData) -> None:
        await gate.wait()

    server.serve(ECHO, slow, manufacturer_code=MFR)
    at_server: list[object] = []
    server.on_event(at_server.append)
    await server.start()
    refused = []
    for _ in range(5):
        try:
            tunnel = await client.open(ECHO, manufacturer_code=MFR, flow_control=False)
        except TunnelError as exc:
            refused.append(str(exc))
            continue
        for _ in range(6):
            await client.send(tunnel, b"q")
        await client.close(tunnel)
        await asyncio.sleep(5)
    assert sum(isinstance(e, TunnelData) for e in at_server) == 4
    assert refused == ["tunnel refused: BUSY"] * 4
    gate.set()  # the handlers take the data
    await asyncio.sleep(5)
    tunnel = await client.open(ECHO, manufacturer_code=MFR, flow_control=False)
    await client.send(tunnel, b"q")
    await asyncio.sleep(5)
    assert sum(isinstance(e, TunnelData) for e in at_server) == 5
    await client.stop()
    await server.stop()


async def test_a_closed_tunnels_unread_data_counts_against_its_server_until_read():
    """The same on a client: a tunnel the server closed (here by its inactivity timeout,
    Tunnel Closure Notification) keeps its read queue until the application reads it; the
    server's data on the next tunnel is refused DATA_OVERFLOW (D.6.2.4.4) while that queue
    holds ``max_held_frames``, and taken again once it is read."""
    server, client, at_server, first = await client_holding_three(85, close_tunnel_timeout=60)
    await asyncio.sleep(61)  # idle: the server closes it and tells the client
    assert client.core.tunnels == {}
    second = await client.open(ECHO, manufacturer_code=MFR, flow_control=False)
    [second_at_server] = server.core.tunnels
    await server.send(second_at_server, b"y")
    await asyncio.sleep(5)
    assert [e.status for e in at_server if isinstance(e, TransferFailed)] == [OVERFLOW]
    assert [await client.read(first, timeout=1) for _ in range(3)] == [b"x"] * 3
    with pytest.raises(TunnelError, match="notified"):
        await client.read(first, timeout=1)
    await server.send(second_at_server, b"z")
    assert await client.read(second, timeout=5) == b"z"
    await client.stop()
    await server.stop()


async def test_a_new_tunnel_with_a_closed_ones_id_reads_its_own_data():
    """A restarted server may grant the id of a tunnel the client had closed (D.6.2.5.1.1.1:
    ids are unique only while open). The client took the new tunnel for the old one renewed
    and kept its read queue: the new tunnel read the old one's data, then its closure."""
    _, _, server, client, _ = await network(86, close_tunnel_timeout=60, rng=random.Random(5))
    server.serve(ECHO, lambda data: None, manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR, flow_control=False)
    await server.send(tunnel, b"old")
    await asyncio.sleep(61)  # closed by the server's timeout, its data left unread
    server = await restart(server, random.Random(5))
    assert await client.open(ECHO, manufacturer_code=MFR, flow_control=False) == tunnel
    await client.send(tunnel, b"new")
    assert await client.read(tunnel, timeout=5) == b"NEW"
    await client.stop()
    await server.stop()


def test_a_closed_tunnels_data_keeps_its_device_busy_and_its_release_restarts_the_flow():
    """The core: a device whose closed tunnel holds ``max_held_frames`` gets BUSY for a new
    tunnel (another device does not), DATA_OVERFLOW on the tunnel it still has open (with flow
    control an empty Transfer Data's Ack says 0, D.6.2.4.5), and Ready Data (D.6.2.4.6) on it
    once the application takes the closed tunnel's data; the closed tunnel's id is not granted
    while its data is held, so its release is not taken for another tunnel's."""
    core = TunnelServerProtocol({MFR_PROTOCOL, PROTOCOL_B}, max_held_frames=2, max_per_device=3)
    closing = server_open(core, flow=False)
    [grant] = core.receive(*frame(REQUEST, request(protocol=PROTOCOL_B)), now=0).sends
    still_open = int.from_bytes(grant.payload[:2], "little")  # flow control on
    for _ in range(2):
        core.receive(*frame(DATA, closing.to_bytes(2, "little") + b"x"), now=1)
    core.receive(*frame(CLOSE, closing.to_bytes(2, "little")), now=2)
    [refusal] = core.receive(*frame(REQUEST, request(flow=False)), now=3).sends
    assert (refusal.command_id, refusal.payload[2]) == (RESPONSE, TunnelStatus.BUSY)
    server_open(core, flow=False, ieee=OTHER)  # another device is not held up
    open_le = still_open.to_bytes(2, "little")
    [overflow] = core.receive(*frame(DATA, open_le + b"y"), now=4).sends
    assert (overflow.command_id, overflow.payload[2]) == (S_ERROR, OVERFLOW)
    [ack] = core.receive(*frame(DATA, open_le), now=4).sends
    assert (ack.command_id, ack.payload) == (S_ACK, open_le + b"\x00\x00")
    core._next_id = closing  # the next id to try is the closed tunnel's: it is skipped
    assert server_open(core, flow=False, ieee=OTHER) != closing
    [ready] = core.release(closing, 1).sends  # below the bound again
    assert (ready.command_id, ready.payload) == (S_READY, open_le + (1500).to_bytes(2, "little"))
    step = core.receive(*frame(DATA, open_le + b"y"), now=5)
    assert [e.data for e in step.events if isinstance(e, TunnelData)] == [b"y"]


async def test_a_tunnel_the_client_closed_itself_does_not_hold_its_server_off():
    """The application closes its own tunnel before reading all the server sent (it had what
    it wanted): that unread data stayed counted against the server for as long as nobody read
    a tunnel the application had closed, i.e. for good: every later Transfer Data of the
    server, on every tunnel, was refused DATA_OVERFLOW. What the client's own Close Tunnel
    leaves unread is no peer's pile-up: it is not counted (it can still be read)."""
    server, client, at_server, first = await client_holding_three(87)
    await asyncio.sleep(5)
    await client.close(first)  # its data left unread, by the application's choice
    await asyncio.sleep(5)
    second = await client.open(ECHO, manufacturer_code=MFR, flow_control=False)
    [second_at_server] = server.core.tunnels
    for _ in range(2):
        await server.send(second_at_server, b"y")
    await asyncio.sleep(5)
    assert [e for e in at_server if isinstance(e, TransferFailed)] == []
    assert [await client.read(second, timeout=5) for _ in range(2)] == [b"y"] * 2
    await client.stop()
    await server.stop()


async def test_a_read_cancelled_while_it_waits_to_release_still_releases():
    """A read that has taken its data waits for the shell's lock to release it (a send may
    hold it for seconds, awaiting APS acknowledgements); cancelled there, the data's count
    was never released: with ``max_held_frames`` of them, the server's data was refused
    DATA_OVERFLOW for good. The release goes on whatever becomes of the read, and the read
    does not wait for it: once it has taken its data it returns it (cancelled while it waited
    for the release, the data was lost for the application)."""
    server, client, at_server, tunnel = await client_holding_three(88)
    await asyncio.sleep(5)
    async with client._lock:  # as a send under way holds it
        reading = asyncio.ensure_future(client.read(tunnel))
        await asyncio.sleep(1)  # it has its data, and waits for the lock
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        assert reading.result() == b"x"  # its data, not lost
    [at_server_id] = server.core.tunnels
    await server.send(at_server_id, b"y")
    await asyncio.sleep(5)
    assert [e for e in at_server if isinstance(e, TransferFailed)] == []
    assert [await client.read(tunnel, timeout=1) for _ in range(3)] == [b"x", b"x", b"y"]
    await client.stop()
    await server.stop()


#: A third device's EUI-64, and NWK addresses for devices that move.
THIRD = t.EUI64.convert("00:0d:6f:00:0a:00:00:03")
HOME, MOVED = 0x1A2B, 0x4444


def asked(core: TunnelServerProtocol, ieee: t.EUI64 | None, nwk: int = HOME) -> TunnelStatus:
    """The status of a Request Tunnel (MFR_PROTOCOL, no flow control) from ``ieee`` at
    ``nwk``."""
    [reply] = core.receive(*frame(REQUEST, request(flow=False), ieee=ieee, nwk=nwk), now=3).sends
    assert reply.command_id == RESPONSE
    return TunnelStatus(reply.payload[2])


def filled_and_closed(core: TunnelServerProtocol, ieee: t.EUI64, frames: int = 1) -> int:
    """A tunnel of ``ieee`` that took ``frames`` Transfer Data the application still holds,
    then closed by its device (Close Tunnel, D.6.2.4.2)."""
    tunnel = server_open(core, flow=False, ieee=ieee)
    for _ in range(frames):
        core.receive(*frame(DATA, tunnel.to_bytes(2, "little") + b"x", ieee=ieee), now=1)
    core.receive(*frame(CLOSE, tunnel.to_bytes(2, "little"), ieee=ieee), now=2)
    return tunnel


def test_closed_tunnels_holding_data_take_their_servers_slots():
    """``max_tunnels`` bounded the open tunnels only: devices that each filled a tunnel for a
    slow handler and closed it left their data held beyond it (three tunnels' worth here for
    a server of two), without end as more devices came. A closed tunnel whose data the
    application has not taken keeps its slot, as Silicon Labs' server keeps a closed tunnel's
    slot until its clean-up: NO_MORE_TUNNEL_IDS (D.6.2.5.1.1.2) until the data is taken; so
    does a device's own, against ``max_per_device`` (one device cannot take every slot by
    closing tunnels that each hold one frame)."""
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_tunnels=2, max_held_frames=4)
    first = filled_and_closed(core, IEEE)
    filled_and_closed(core, OTHER)
    assert core.tunnels == {}
    assert asked(core, THIRD) is TunnelStatus.NO_MORE_TUNNEL_IDS
    core.release(first, 1)  # the application took the first one's data: its slot is free
    assert asked(core, THIRD) is TunnelStatus.SUCCESS
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_tunnels=8, max_held_frames=4)
    for _ in range(2):  # one frame each: well below the closed tunnels' bound of 4
        filled_and_closed(core, IEEE)
    assert asked(core, IEEE) is TunnelStatus.NO_MORE_TUNNEL_IDS  # max_per_device is 2
    assert asked(core, OTHER) is TunnelStatus.SUCCESS


def test_a_closed_tunnels_data_counts_against_its_device_by_eui64():
    """What a device's closed tunnels hold is counted by its EUI-64. A tunnel granted to a
    sender whose EUI-64 the shell did not know was its NWK address's: the device, once known
    or at another address, escaped what that tunnel held, and a device later at that address
    was answered for it (BUSY) or, asking for the same protocol, given that tunnel. Such a
    request is answered BUSY now (Silicon Labs' server answers so when it cannot look up the
    requester's EUI-64), so every tunnel of the server is its device's by EUI-64: a device
    that moved is held to its closed tunnels' bound, one at its old address is not."""
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_held_frames=2, max_per_device=3)
    assert asked(core, None) is TunnelStatus.BUSY
    assert core.tunnels == {}
    server_open(core, flow=False, ieee=OTHER)  # at HOME, as every frame() is
    assert asked(core, None) is TunnelStatus.BUSY  # not OTHER's tunnel renewed
    core = TunnelServerProtocol({MFR_PROTOCOL}, max_held_frames=2, max_per_device=3)
    filled_and_closed(core, IEEE, frames=2)  # at HOME
    assert asked(core, None, MOVED) is TunnelStatus.BUSY  # moved, not yet known there
    assert asked(core, IEEE, MOVED) is TunnelStatus.BUSY  # moved, known
    assert asked(core, OTHER, HOME) is TunnelStatus.SUCCESS  # another device at its old address


async def test_a_superseded_tunnels_unread_data_is_kept_for_the_application():
    """A server that restarts counting from the same point grants the client an id it still
    holds (D.6.2.5.1): the old tunnel is superseded, and what its read queue held, data the
    server was told was delivered (its APS acknowledgement), was dropped with a warning. It
    is kept for ``unread()`` now, at most ``max_held_frames`` items over every id (the oldest
    dropped beyond), each taken once; ``read()`` of the id reads the new tunnel."""
    _, _, server, client, _ = await network(
        89, rng=random.Random(5), client_options={"max_held_frames": 3}
    )
    server.serve(ECHO, lambda data: None, manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR, flow_control=False)
    for data in (b"a", b"b", b"c"):
        await server.send(tunnel, data)
    server = await restart(server, random.Random(5))  # serves ECHO + 1 too
    assert await client.open(ECHO + 1, manufacturer_code=MFR, flow_control=False) == tunnel
    for data in (b"d", b"e"):
        await server.send(tunnel, data)
    server = await restart(server, random.Random(5))
    assert await client.open(ECHO, manufacturer_code=MFR, flow_control=False) == tunnel
    assert client.unread(tunnel) == [b"c", b"d", b"e"]  # a and b beyond the bound of 3
    assert client.unread(tunnel) == []
    await client.send(tunnel, b"xy")
    assert await client.read(tunnel, timeout=5) == b"XY"  # the newest tunnel's own
    await client.stop()
    await server.stop()
