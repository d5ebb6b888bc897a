"""Catching up on messages on the simulator (SE D.5.2.4): the same message sent to devices one
by one reaches each with Get Last Message; a Cancel All the device missed clears only what came
before it; an undefined command is UNSUP_CLUSTER_COMMAND both ways; a confirmation the ESI
refuses is not reported as accepted."""

from __future__ import annotations

import asyncio

import pytest
from zigpy.exceptions import DeliveryError
from zigpy.zcl import foundation

from tests.roles.han_builder import EUIS, build, close
from tests.services.test_messaging_service import han
from zse.messaging import ConfirmationRefused, Message, MessageStore
from zse.messaging.service import MESSAGING, DeviceAddress, MessagingClient
from zse.roles.esi import Outcome
from zse.store import Store
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

DEVICES = ("ihd", "thermostat", "lcd")


async def test_the_same_message_to_each_device_one_by_one_is_caught_up_by_each() -> None:
    """MessagingServer.display of one message to three devices in turn, all off the air: back,
    each gets it with Get Last Message, with what is left of the window it was first sent in."""
    air, _, _, server, devices, clock = await han(43, names=DEVICES)
    clients = []
    for _, ep in devices:
        client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock)
        await client.start()
        clients.append(client)
    message = Message(message_id=0x100, text="Outage tonight", duration_in_minutes=30)
    first = clock()
    for dev, _ in devices:
        air.silence(dev)
        with pytest.raises(DeliveryError):  # stored all the same
            await server.display(message, device=DeviceAddress(nwk=dev.nwk, ieee=dev.ieee,
                                                               endpoint=1))  # fmt: skip
        await asyncio.sleep(60)
    for dev, _ in devices:
        air.restore(dev)
    await asyncio.sleep(600)
    for client in clients:
        await client.fetch()
        shown = client.board.showing()
        assert shown is not None
        assert shown.message.message_id == 0x100
        assert shown.ends is not None
        assert first + 1800 <= shown.ends < first + 1800 + 60  # the first window, rounded up
        await client.stop()


async def test_the_esi_sends_one_message_device_by_device_and_each_catches_up(tmp_path) -> None:
    """EnergyServiceInterface.send_message per device (the headend's fleet path, one job per
    device with one message id): two of the three are away; back, both get it."""
    built = await build(tmp_path)
    try:
        for name in DEVICES:
            await built.esi.provision(EUIS[name])
            await built.add(name).start()
        await asyncio.sleep(30)
        await built.esi.settle()
        away = [built.devices[name] for name in ("thermostat", "lcd")]
        for role in away:
            built.air.silence(role.device.ieee)
        message = Message(message_id=0x101, text="Street works", duration_in_minutes=60)
        outcomes = []
        for name in DEVICES:
            sent = await built.esi.send_message(message, device=EUIS[name])
            outcomes += [o.outcome for o in sent.outcomes]
        assert outcomes == [Outcome.DELIVERED, Outcome.OFFLINE, Outcome.OFFLINE]
        for role in away:
            built.air.restore(role.device.ieee)
        for role in away:
            await role.messaging.fetch()
        for name in DEVICES:
            current = built.devices[name].messaging.current()
            assert current is not None, name
            assert current.message_id == 0x101
    finally:
        await close(built)


async def test_a_cancel_all_missed_clears_only_what_came_before_it(tmp_path) -> None:
    """The device is off the air at a Cancel All Messages "now"; back, it gets a message asking
    for confirmation, then a broadcast scheduled one; restarted, Get Message Cancellation brings
    the Cancel All it missed, which leaves both (SE D.5.2.3.4, D.5.2.4.3)."""
    air, _, _, server, [(dev, ep)], clock = await han(44)
    store = await Store.open(tmp_path / "dev.db")
    try:
        client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, store=store)
        await client.start()
        air.silence(dev)
        await server.cancel_all(broadcast=True)  # missed
        await asyncio.sleep(5)
        air.restore(dev)
        await asyncio.sleep(60)
        bill = Message(message_id=2, text="Bill due", confirmation_required=True)
        await server.display(bill, device=DeviceAddress(nwk=dev.nwk, ieee=dev.ieee, endpoint=1))
        await asyncio.sleep(5)
        works = Message(message_id=3, text="Works tomorrow", start_time=clock() + 86_400)
        await server.display(works, broadcast=True)
        await asyncio.sleep(5)
        assert [m.message_id for m in client.held()] == [2, 3]
        await client.stop()

        client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, store=store)
        seen: list[object] = []
        client.on_event(seen.append)
        await client.start()
        await asyncio.sleep(5)
        assert [type(e).__name__ for e in seen] == ["MessageDisplayed"]
        assert [m.message_id for m in client.held()] == [2, 3]
        assert await client.confirm(2) is True
        assert list(server.confirmations(2)) == [str(dev.ieee)]
        await client.stop()
    finally:
        await store.close()


async def test_an_undefined_command_is_unsup_cluster_command_both_ways() -> None:
    """ZCL: 0x81 UNSUP_CLUSTER_COMMAND for a command id Messaging lacks; 0x80
    MALFORMED_COMMAND stays for a defined command with a bad payload."""
    _, _, se, _, [(dev, ep)], clock = await han(45)
    client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock)
    await client.start(fetch=False)
    try:
        reply = await ep.request(0x0000, SE_ENDPOINT_ID, MESSAGING, 0x07, b"", encrypt=True)
        assert reply.payload[1] == foundation.Status.UNSUP_CLUSTER_COMMAND
        reply = await ep.request(0x0000, SE_ENDPOINT_ID, MESSAGING, 0x01, b"\x01\x00",
                                 encrypt=True)  # fmt: skip
        assert reply.payload[1] == foundation.Status.MALFORMED_COMMAND
        reply = await se.request(dev.nwk, 1, MESSAGING, 0x09, b"", encrypt=True)
        assert reply.payload[1] == foundation.Status.UNSUP_CLUSTER_COMMAND
    finally:
        await client.stop()


async def test_a_confirmation_the_esi_refuses_raises_and_is_not_sent_again(tmp_path) -> None:
    """MessagingClient.confirm reported True for any answer; the ESI's NOT_FOUND (it lost the
    message) is now ConfirmationRefused, and the confirmation is not owed any more."""
    _, _, _, server, [(dev, ep)], clock = await han(46)
    store = await Store.open(tmp_path / "dev.db")
    try:
        client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, store=store,
                                 retry_interval=30)  # fmt: skip
        await client.start()
        asked = Message(message_id=8, text="Please confirm", confirmation_required=True)
        await server.display(asked, device=DeviceAddress(nwk=dev.nwk, ieee=dev.ieee, endpoint=1))
        await asyncio.sleep(1)
        server.messages = MessageStore()  # the ESI lost its messages
        with pytest.raises(ConfirmationRefused, match="NOT_FOUND") as refused:
            await client.confirm(8)
        assert refused.value.status == foundation.Status.NOT_FOUND
        assert client.board.confirmation_of(8) is not None  # the user did confirm
        confirmations = []
        server.endpoint.add_handler(MESSAGING, lambda msg: confirmations.append(msg) or None)
        await asyncio.sleep(120)
        assert confirmations == []  # not re-sent
        assert await store.unreported_with(client.namespace, dict) == []
        await client.stop()
    finally:
        await store.close()
