"""Messaging between a zigpy ESI (SeEndpoint + MessagingServer) and simulated HAN devices."""

from __future__ import annotations

import asyncio

import zigpy.types as t

from zse.installcode import InstallCode
from zse.messaging import (
    Message,
    MessageCancelled,
    MessageDisplayed,
    MessageExpired,
)
from zse.services.endpoint import SE_ENDPOINT_ID, SeEndpoint
from zse.services.messaging import (
    MESSAGING,
    DeviceAddress,
    MessageConfirmed,
    MessagingClient,
    MessagingServer,
)
from zse.sim import Air

START = 800_000_000


async def han(seed: int, names=("ihd",)):
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    se = SeEndpoint(app, in_clusters=[MESSAGING])
    await se.start()
    server = MessagingServer(se, clock=clock)
    await server.start()
    devices = []
    for i, _name in enumerate(names):
        code = InstallCode.generate(rng=air.rng)
        dev = air.device(f"00:0d:6f:00:0e:00:00:{i + 1:02x}", install_code=code, channel=15)
        ep = dev.add_endpoint(1, device_type=0x0507, out_clusters=[MESSAGING])
        await app.permit_with_link_key(dev.ieee, t.KeyData(code.link_key), 60)
        await dev.join()
        devices.append((dev, ep))
    await asyncio.sleep(30)
    return air, app, se, server, devices, clock


async def test_unicast_display_confirm_and_expire():
    _, _, _, server, [(dev, ep)], clock = await han(40)
    client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock)
    seen = []
    client.on_event(seen.append)
    confirmed: list[MessageConfirmed] = []
    server.on_event(confirmed.append)
    await client.start()
    msg = Message(message_id=7, text="Peak price at 5pm", duration_in_minutes=10,
                  confirmation_required=True)  # fmt: skip
    await server.display(msg, device=DeviceAddress(nwk=dev.nwk, ieee=dev.ieee, endpoint=1))
    await asyncio.sleep(1)
    assert client.current() == msg
    assert isinstance(seen[-1], MessageDisplayed)
    assert await client.confirm(7) is True
    assert [c.message.message_id for c in confirmed] == [7]
    assert confirmed[0].device == str(dev.ieee)
    await asyncio.sleep(600)
    assert client.current() is None
    assert isinstance(seen[-1], MessageExpired)
