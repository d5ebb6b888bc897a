"""A tunnel reader cancelled in the loop turn data arrives is cancelled.

``TunnelingClient.read`` waited with ``asyncio.wait_for``, which on Python 3.11 returns the
data instead of raising when the cancel lands after the data came but before the reader
resumed (CPython gh-86296): the cancel was lost and a reader loop cancelled at close went
on."""

from __future__ import annotations

import random

from tests.cancel_race import cancel_as_it_completes
from tests.tunneling.test_tunneling_service import ECHO, MFR, network
from zse.tunneling.protocol import TunnelData


async def test_a_cancel_as_data_arrives_is_not_lost():
    _, _, server, client, _ = await network(73, rng=random.Random(1))
    server.serve(ECHO, lambda data: None, manufacturer_code=MFR)
    await server.start()
    tunnel = await client.open(ECHO, manufacturer_code=MFR)
    data = TunnelData(tunnel_id=tunnel, device="server", protocol=ECHO, data=b"data")
    accepted, cancelled = await cancel_as_it_completes(
        client.read(tunnel, timeout=5),
        lambda: client._inbox[tunnel].put_nowait(data),  # as a Transfer Data received is
    )
    assert cancelled or not accepted
