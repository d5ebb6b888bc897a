"""Trust Center Keep-Alive (0x0025) from the stick: reads at the meter's Base + Jitter, a rejoin
after three unanswered reads, and nothing at all when the meter does not offer the cluster."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

from tests.han_stick.stick_builder import close_stick, meter_and_stick, open_ihd
from zse.roles.keepalive import KEEP_ALIVE, KeepAlive, KeepAliveClient

UINT8, UINT16 = 0x20, 0x21


def serve_keep_alive(han: object, base: int, jitter: int) -> None:
    endpoint = han.esi.endpoint  # type: ignore[attr-defined]
    endpoint.descriptor.input_clusters.append(KEEP_ALIVE)
    endpoint.set_attribute(KEEP_ALIVE, 0x0000, base, UINT8)
    endpoint.set_attribute(KEEP_ALIVE, 0x0001, jitter, UINT16)


async def test_keep_alive_follows_the_meter_and_rejoins_when_it_goes_silent(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    serve_keep_alive(sh.han, base=2, jitter=0)
    ihd = await open_ihd(sh)
    sh.ncp.report_parent_loss = False  # only the keep-alive may notice the meter is gone
    client: KeepAliveClient | None = None
    try:
        await ihd.start()
        client = KeepAliveClient(ihd.endpoint, sh.device, rng=random.Random(1))
        assert await client.start()
        assert client.core.base_minutes == 2
        await asyncio.sleep(6 * 60 + 1)  # reads at 0, 2, 4 and 6 minutes
        assert client.reads == 4
        meter = sh.han.app.state.node_info.ieee
        sh.han.air.silence(meter)
        await asyncio.sleep(3 * 2 * 60 + 30)  # three reads unanswered: rejoin (fails: silent)
        assert client.rejoins == 1
        assert sh.ncp.rejoin_requests == [True, False]
    finally:
        if client is not None:
            await client.stop()
        await close_stick(sh)


async def test_a_meter_without_keep_alive_is_left_alone(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    ihd = await open_ihd(sh)
    try:
        await ihd.start()
        client = KeepAliveClient(ihd.endpoint, sh.device)
        assert not await client.start()
        assert client.core.next_deadline() is None
    finally:
        await close_stick(sh)


def test_out_of_range_values_keep_the_last_good_ones() -> None:
    core = KeepAlive(random.Random(1))
    core.answered(0.0, 0, 9999)  # Base 0 and Jitter > 512 are not valid
    assert (core.base_minutes, core.jitter_seconds) == (10, 300)
    core.answered(0.0, 1, 0)
    assert core.next_deadline() == 60.0
    assert [core.missed(60.0), core.missed(120.0), core.missed(180.0)] == [False, False, True]
