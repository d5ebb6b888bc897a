"""Messaging between a zigpy ESI (SeEndpoint + MessagingServer) and simulated HAN devices."""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t

from zse.installcode import InstallCode
from zse.messaging import (
    Message,
    MessageCancelled,
    MessageDisplayed,
    MessageError,
    MessageExpired,
    MessageTooLong,
)
from zse.messaging.service import (
    MESSAGING,
    DeviceAddress,
    MessageConfirmed,
    MessagingClient,
    MessagingServer,
)
from zse.sim import Air
from zse.store import Store
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

START = 800_000_000


@pytest.fixture
async def stores(tmp_path):
    """Open stores on demand and always close them (aiosqlite threads keep a process alive)."""
    opened: list[Store] = []

    async def open_store(name: str) -> Store:
        store = await Store.open(tmp_path / f"{name}.db")
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


async def han(seed: int, names=("ihd",), *, serve: bool = True, capture=None):
    """A zigpy ESI with an SE endpoint (and, if ``serve``, a MessagingServer without a store)
    and joined HAN devices, each with a Messaging client endpoint 1."""
    air = Air(seed=seed, capture=capture)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    se = SeEndpoint(app, in_clusters=[MESSAGING])
    await se.start()
    server = MessagingServer(se, clock=clock)
    if serve:
        await server.start()
    devices = []
    for i, _name in enumerate(names):
        code = InstallCode.generate(rng=air.rng)
        dev = air.device(f"00:0d:6f:00:0e:00:00:{i + 1:02x}", install_code=code, channel=15)
        ep = dev.add_endpoint(1, device_type=0x0502, out_clusters=[MESSAGING])
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
    await client.stop()


async def test_group_message_to_three_devices_one_offline_esi_view_matches(stores):
    """An in-home display, a thermostat and a load controller in group 0x0E01; the thermostat
    is off the air when the message goes out, catches up with Get Last Message when back."""
    air, _, _, server, devices, clock = await han(41, names=("ihd", "thermostat", "lcd"))
    opened = [await stores(f"dev{i}") for i in range(3)]
    clients = []
    shown: list[list[int]] = [[], [], []]
    for i, (_dev, ep) in enumerate(devices):
        ep.add_group(0x0E01)
        client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, store=opened[i])
        client.on_event(
            lambda e, i=i: (
                shown[i].append(e.message.message_id) if isinstance(e, MessageDisplayed) else None
            )
        )
        await client.start()
        clients.append(client)
    server.set_group_members(0x0E01, [dev.ieee for dev, _ in devices])
    confirmed: list[MessageConfirmed] = []
    server.on_event(confirmed.append)

    thermostat, _ = devices[1]
    air.silence(thermostat)
    m = Message(message_id=0x100, text="Critical peak 17:00-19:00", duration_in_minutes=120,
                importance=3, confirmation_required=True)  # fmt: skip
    await server.display(m, group=0x0E01)
    await asyncio.sleep(5)
    assert [c.current() for c in clients] == [m, None, m]
    assert await clients[0].confirm(0x100) is True
    assert await clients[2].confirm(0x100) is True

    await asyncio.sleep(600)  # ten minutes later the thermostat is back and restarts
    air.restore(thermostat)
    await clients[1].stop()
    clients[1] = MessagingClient(
        devices[1][1], server_ep=SE_ENDPOINT_ID, clock=clock, store=opened[1]
    )
    clients[1].on_event(
        lambda e: shown[1].append(e.message.message_id) if isinstance(e, MessageDisplayed) else None
    )
    await clients[1].start()  # Get Message Cancellation, then Get Last Message
    current = clients[1].current()
    assert current is not None
    assert (current.message_id, current.text, current.start_time) == (0x100, m.text, 0)
    assert current.duration_in_minutes == 110  # the remaining duration
    assert await clients[1].confirm(0x100) is True

    ieees = [str(dev.ieee) for dev, _ in devices]
    assert sorted(c.device for c in confirmed) == sorted(ieees)
    assert set(server.confirmations(0x100)) == set(ieees)
    assert server.unconfirmed(0x100, [dev.ieee for dev, _ in devices]) == []
    assert shown == [[0x100], [0x100], [0x100]]
    # The message ends for every device 120 minutes after it was sent; the thermostat's
    # remaining duration was rounded up to whole minutes, so it may end up to 59 s later.
    ends = [c.board.showing().ends for c in clients]
    assert ends[0] == ends[2]
    assert 0 <= ends[1] - ends[0] < 60
    await asyncio.sleep(ends[1] - clock())
    await asyncio.sleep(0)  # a device timer due at this very instant runs first (a tie otherwise)
    assert [c.current() for c in clients] == [None, None, None]
    for client in clients:
        await client.stop()


async def device_client(seed: int, **kw):
    air, _, _, server, [(dev, ep)], clock = await han(seed)
    client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, **kw)
    seen: list = []
    client.on_event(seen.append)
    address = DeviceAddress(nwk=dev.nwk, ieee=dev.ieee, endpoint=1)
    return air, server, dev, client, seen, address, clock


async def test_protected_message_behind_the_pin_hook_then_confirmed():
    _, server, _, client, seen, address, _ = await device_client(
        42, pin_check=lambda p: p == "1234"
    )
    await client.start()
    m = Message(message_id=9, text="Account 55-1: balance low", protected=True,
                confirmation_required=True)  # fmt: skip
    await server.display(m, device=address)
    await asyncio.sleep(1)
    assert isinstance(seen[-1], MessageDisplayed)
    assert seen[-1].text is None  # nothing shown before the PIN
    with pytest.raises(MessageError, match="not unlocked"):
        await client.confirm(9)
    with pytest.raises(MessageError, match="PIN refused"):
        await client.unlock(9, "0000")
    assert await client.unlock(9, "1234") == m.text
    assert seen[-1].text == m.text
    assert await client.confirm(9) is True
    assert server.confirmations(9) == {str(address.ieee): client.board.confirmation_of(9)}
    await client.stop()


async def test_enhanced_confirmation_yes_no_with_text_reaches_the_application():
    _, server, _, client, _, address, _ = await device_client(43)
    confirmed: list[MessageConfirmed] = []
    server.on_event(confirmed.append)
    await client.start()
    m = Message(message_id=10, text="Allow the utility to cycle your AC?",
                enhanced_confirmation_required=True)  # fmt: skip
    await server.display(m, device=address)
    await asyncio.sleep(1)
    assert await client.confirm(10, answer=False, response="not today") is True
    (event,) = confirmed
    assert (event.message, event.confirmation.answer, event.confirmation.response) == (
        m,
        False,
        b"not today",
    )
    await client.stop()


async def test_cancel_and_cancel_all_with_implementation_time_over_the_air():
    _, server, _, client, seen, address, clock = await device_client(44)
    await client.start()
    await server.display(Message(message_id=1, text="one"), device=address)
    await asyncio.sleep(1)
    await server.cancel(1, device=address)
    await asyncio.sleep(1)
    assert isinstance(seen[-1], MessageCancelled)
    assert client.current() is None
    await server.display(Message(message_id=2, text="two"), device=address)
    when = clock() + 300
    await server.cancel_all(when, device=address)
    await asyncio.sleep(1)
    assert client.current().message_id == 2  # not yet
    await asyncio.sleep(when - clock())
    assert client.current() is None
    assert isinstance(seen[-1], MessageCancelled)
    assert seen[-1].all
    await client.stop()


async def test_start_up_fetches_cancellations_then_the_last_message():
    air, server, dev, client, seen, address, clock = await device_client(45)
    await client.start()
    await server.display(Message(message_id=1, text="old"), device=address)
    await asyncio.sleep(1)
    await client.stop()  # the device is off while the ESI cancels all and sends a new one
    air.silence(dev)
    await server.cancel_all(0, group=0x0E02)
    await server.display(Message(message_id=2, text="new"), group=0x0E02)
    await asyncio.sleep(60)
    air.restore(dev)
    client2 = MessagingClient(client.endpoint, server_ep=SE_ENDPOINT_ID, clock=clock, store=None)
    client2.board = client.board  # the same memory, as a device that kept its RAM
    client2.on_event(seen.append)
    await client2.start()
    assert client2.current() == Message(message_id=2, text="new")
    assert [type(e).__name__ for e in seen[-2:]] == ["MessageCancelled", "MessageDisplayed"]
    await client2.stop()


async def test_confirmation_owed_while_the_esi_is_unreachable_is_sent_later():
    air, server, dev, client, _, address, _ = await device_client(46, retry_interval=30)
    confirmed: list[MessageConfirmed] = []
    server.on_event(confirmed.append)
    await client.start()
    await server.display(Message(message_id=5, text="ack me", confirmation_required=True),
                         device=address)  # fmt: skip
    await asyncio.sleep(1)
    air.silence(dev)
    assert await client.confirm(5) is False  # owed
    await asyncio.sleep(100)
    assert confirmed == []
    air.restore(dev)
    await asyncio.sleep(31)
    assert [c.message.message_id for c in confirmed] == [5]
    await client.stop()


async def test_too_long_message_is_refused_before_anything_is_sent():
    _, server, _, client, _, address, _ = await device_client(47)
    await client.start()
    with pytest.raises(MessageTooLong):
        await server.display(Message(message_id=1, text="x" * 58), device=address)
    await server.display(Message(message_id=2, text="y" * 57), device=address)
    await asyncio.sleep(1)
    assert client.current().text == "y" * 57  # whole, not truncated
    assert server.messages.messages.keys() == {2}
    await client.stop()
