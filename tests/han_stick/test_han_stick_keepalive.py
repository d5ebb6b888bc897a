"""Trust Center Keep-Alive (0x0025) from the stick: reads at the meter's Base + Jitter (served by
zse's ESI), a rejoin after three unanswered reads, and nothing at all when the meter does not
offer the cluster."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.han_stick.stick_builder import close_stick, meter_and_stick, open_ihd
from zse.roles.keepalive import KEEP_ALIVE, KeepAlive, KeepAliveClient, KeepAliveServer


async def test_keep_alive_follows_the_meter_and_rejoins_when_it_goes_silent(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link, keep_alive=(2, 0))
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
    sh.han.esi.endpoint.descriptor.input_clusters.remove(KEEP_ALIVE)  # another maker's meter
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


async def test_zses_meter_serves_ten_minutes_and_300_seconds_by_default(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    ihd = await open_ihd(sh)
    client: KeepAliveClient | None = None
    try:
        await ihd.start()
        client = KeepAliveClient(ihd.endpoint, sh.device, rng=random.Random(1))
        client.core.base_minutes, client.core.jitter_seconds = 1, 0  # so a change shows
        assert await client.start()
        assert (client.core.base_minutes, client.core.jitter_seconds) == (10, 300)
        assert client.reads == 1
    finally:
        if client is not None:
            await client.stop()
        await close_stick(sh)


@pytest.mark.parametrize(
    ("base", "jitter", "error"),
    [
        (0, 300, "keep-alive base must be 1-255 minutes, not 0"),
        (256, 300, "keep-alive base must be 1-255 minutes, not 256"),
        (10, 513, "keep-alive jitter must be 0-512 seconds, not 513"),
        (10, -1, "keep-alive jitter must be 0-512 seconds, not -1"),
    ],
)
def test_the_server_refuses_values_outside_the_attributes_ranges(
    base: int, jitter: int, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        KeepAliveServer(object(), base_minutes=base, jitter_seconds=jitter)  # type: ignore[arg-type]
