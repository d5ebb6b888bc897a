"""A tunnel protocol's handler tasks on stop and on failure (audit of asyncio, finding 6).

``stop()`` left a running handler behind, which then sent on the stopped service, and an error
after the handler returned (a ``str`` reply) ended its task with an exception nobody retrieved.
On the simulator's virtual-time loop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.tunneling.test_tunneling_closed_held import client_holding_three
from tests.tunneling.test_tunneling_service import ECHO, MFR, network
from zse.tunneling.protocol import TransferFailed, TunnelData


async def test_stop_cancels_and_awaits_the_running_handlers() -> None:
    """A handler still running when the server stops is cancelled and awaited: no task of
    the server is left, and the handler never goes on to reply."""
    _, _, server, client, _ = await network(70)
    started, never = asyncio.Event(), asyncio.Event()
    ends: list[str] = []

    async def slow(data: TunnelData) -> bytes:
        started.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            ends.append("cancelled")
            raise
        ends.append("went on")
        return b"late"

    server.serve(ECHO, slow, manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    await client.send(tunnel, b"x")
    async with asyncio.timeout(30):
        await started.wait()
    await server.stop()
    assert ends == ["cancelled"]
    assert server._tasks == set()
    left = [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "_Shell._run_handler"
    ]
    assert left == []
    await client.stop()


async def test_a_reply_that_is_not_octets_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A handler replying ``str`` is logged as failed (the peer cannot be told: Transfer Data
    Error has no status for it, D.6.2.4.4.1.2), nothing is sent, and the next data is served."""
    _, _, server, client, _ = await network(71)
    replies = iter(["not bytes but str", b"ok"])
    server.serve(ECHO, lambda data: next(replies), manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    with caplog.at_level(logging.ERROR, logger="zse.tunneling.service"):
        await client.send(tunnel, b"x")
        await client.send(tunnel, b"y")
        assert await client.read(tunnel, timeout=30) == b"ok"
    failed = [r for r in caplog.records if r.getMessage() == f"tunnel {tunnel} handler failed"]
    assert len(failed) == 1
    assert failed[0].exc_info is not None
    assert "returned str, not bytes" in str(failed[0].exc_info[1])
    await client.stop()
    await server.stop()


async def test_a_handler_ending_in_its_own_cancelled_error_still_releases_its_data() -> None:
    """A handler that awaited something cancelled under it (another task's future) ends with
    ``CancelledError`` though nobody cancelled its task: its data was never released, so each
    such frame held one of the tunnel's ``max_held_frames`` for good and the peer was refused
    DATA_OVERFLOW from then on. It is a failed handler, logged; the next data is served."""
    bounds = {"max_held_frames": 1}
    _, _, server, client, _ = await network(72, server_options=bounds)
    calls = iter(range(2))

    async def handler(data: TunnelData) -> bytes:
        if next(calls) == 0:
            gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            gone.cancel()
            await gone  # raises CancelledError in this task, which nobody cancelled
        return b"ok"

    server.serve(ECHO, handler, manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    await client.send(tunnel, b"x")
    await asyncio.sleep(5)
    await client.send(tunnel, b"y")
    assert await client.read(tunnel, timeout=30) == b"ok"
    await client.stop()
    await server.stop()


async def test_handlers_cancelled_by_stop_give_their_slots_back() -> None:
    """``stop()`` cancels the running handler and the one waiting behind it on its tunnel
    (review 2 of session 24): neither released its data, so the closed tunnel stayed in the
    core's closed-and-held tunnels for good, keeping its slot (``max_tunnels`` 1 here): the
    same server started again answered NO_MORE_TUNNEL_IDS to every Request Tunnel. The data
    of a handler cancelled by ``stop()`` is released (nothing sent: the service is stopping)."""
    _, _, server, client, _ = await network(73, server_options={"max_tunnels": 1})
    never = asyncio.Event()

    async def stuck(data: TunnelData) -> None:
        await never.wait()

    server.serve(ECHO, stuck, manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR, flow_control=False)
    await client.send(tunnel, b"x")  # its handler runs
    await client.send(tunnel, b"y")  # its handler waits for the first one
    await client.close(tunnel)
    await asyncio.sleep(5)
    await server.stop()
    await server.start()
    assert await client.open(ECHO, manufacturer_code=MFR, flow_control=False) >= 0
    await client.stop()
    await server.stop()


async def test_a_read_whose_release_stop_cancelled_gives_its_room_back() -> None:
    """A read hands its data over and releases it in a task waiting for the shell's lock;
    ``stop()`` cancelled that task, so the data stayed counted against the tunnel for good:
    the same client started again refused the server's third frame DATA_OVERFLOW (bound 3).
    ``stop()`` releases what the tasks it cancels had not."""
    server, client, at_server, tunnel = await client_holding_three(74)
    await asyncio.sleep(5)
    async with client._lock:  # as a send under way holds it
        assert await client.read(tunnel) == b"x"  # its release waits for the lock
        await client.stop()
    await client.start()
    assert [await client.read(tunnel, timeout=1) for _ in range(2)] == [b"x"] * 2
    [at_server_id] = server.core.tunnels
    for data in (b"a", b"b", b"c"):
        await server.send(at_server_id, data)
    await asyncio.sleep(5)
    assert [e for e in at_server if isinstance(e, TransferFailed)] == []
    await client.stop()
    await server.stop()
