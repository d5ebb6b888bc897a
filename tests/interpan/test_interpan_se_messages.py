"""Messages over inter-PAN go on the same zse.messaging.MessageBoard a joined device uses.

On the simulator, in virtual time, one ESI sends the same messages to a joined in-home display
(MessagingServer -> MessagingClient, over the network) and to one that never joined
(InterPanEsi -> InterPanSeClient): both show, replace, expire, schedule and cancel them with the
same events. A message asking for confirmation is shown on both; only the joined display can
confirm it. Display Protected Message and Cancel All Messages (with a future implementation
time) are not in the default inter-PAN whitelist: they are dropped unless a deployment's
whitelist admits them, and then they follow the board's rules too.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
import zigpy.types as t

from zse.installcode import InstallCode
from zse.interpan._zcl import Direction
from zse.interpan.se import (
    InterPanAllMessagesCancelled,
    InterPanEsi,
    InterPanMessage,
    InterPanSeClient,
    encode_se,
    message_control,
)
from zse.interpan.service import InterPanService
from zse.interpan.transports.sim import SimTransport
from zse.interpan.window import SE_INTERPAN_COMMANDS, AllowedCommand, CommandWhitelist
from zse.messaging import (
    Message,
    MessageCancelled,
    MessageDisplayed,
    MessageError,
    MessageExpired,
    MessageReplaced,
    MessageScheduled,
)
from zse.messaging.service import MESSAGING, DeviceAddress, MessagingClient, MessagingServer
from zse.messaging.wire import Messaging
from zse.price import PriceSchedule
from zse.se.types import MessageImportance, MessageTransmission
from zse.sim import Air, run
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

START = 800_000_000
ESI_PAN = 0x1A2B
_DISPLAY_PROTECTED = Messaging.ClientCommandDefs.display_protected_message
_CANCEL_ALL = Messaging.ClientCommandDefs.cancel_all_messages
_DISPLAY = Messaging.ClientCommandDefs.display_message
#: The default whitelist plus Display Protected Message and Cancel All Messages (ESI to device).
WIDER = CommandWhitelist(
    [
        *SE_INTERPAN_COMMANDS,
        AllowedCommand(0x0703, Direction.Server_to_Client, 0x02, "messaging.display_protected"),
        AllowedCommand(0x0703, Direction.Server_to_Client, 0x03, "messaging.cancel_all_messages"),
    ]
)


def board_events(events: list[Any]) -> list[Any]:
    """The board events, with the transmission bits (network vs inter-PAN) set aside."""
    kinds = (MessageScheduled, MessageDisplayed, MessageReplaced, MessageExpired, MessageCancelled)
    out = []
    for event in events:
        if not isinstance(event, kinds):
            continue
        same = dataclasses.replace(
            event, message=dataclasses.replace(event.message, transmission=0)
        )
        if isinstance(same, MessageReplaced):
            same = dataclasses.replace(same, by=dataclasses.replace(same.by, transmission=0))
        out.append(same)
    return out


def test_a_device_that_never_joined_shows_messages_like_a_joined_one() -> None:
    async def main() -> dict[str, Any]:
        air = Air(seed=31)
        loop = asyncio.get_running_loop()

        def clock() -> int:
            return START + int(loop.time())

        app = await air.coordinator(channel=15, pan_id=ESI_PAN)
        se = SeEndpoint(app, in_clusters=[MESSAGING])
        await se.start()
        server = MessagingServer(se, clock=clock)
        await server.start()
        code = InstallCode.generate(rng=air.rng)
        joined = air.device("00:0d:6f:00:0e:00:00:01", install_code=code, channel=15)
        endpoint = joined.add_endpoint(1, device_type=0x0502, out_clusters=[MESSAGING])
        await app.permit_with_link_key(joined.ieee, t.KeyData(code.link_key), 60)
        await joined.join()
        network = MessagingClient(endpoint, server_ep=SE_ENDPOINT_ID, clock=clock)
        await network.start()
        address = DeviceAddress(nwk=joined.nwk, ieee=joined.ieee, endpoint=1)

        esi_service = InterPanService(
            SimTransport(app), ieee=app.state.node_info.ieee, pan_id=ESI_PAN
        )
        esi = InterPanEsi(esi_service, schedule=PriceSchedule(), clock=clock)
        ihd = air.device("00:0d:6f:00:0e:00:00:02", channel=15)
        ihd.listen()
        ihd_service = InterPanService(SimTransport(ihd), ieee=ihd.ieee, pan_id=0xFFFF)
        inter_pan = InterPanSeClient(ihd_service, clock=clock)
        inter_pan.start()

        joined_heard: list[Any] = []
        network.on_event(joined_heard.append)
        heard: list[Any] = []
        inter_pan.on_event(heard.append)
        await asyncio.sleep(10 - loop.time() % 10)  # both sends land in the same second
        out: dict[str, Any] = {"shown": []}

        async def display(message: Message) -> None:
            await server.display(message, device=address)
            control = message_control(
                importance=MessageImportance(message.importance),
                confirmation_required=message.confirmation_required,
            )
            await esi.display_message(
                message.message_id,
                message.text,
                control=control,
                start_time=message.start_time,
                duration_in_minutes=message.duration_in_minutes,
                dst=ihd.ieee,
            )
            await asyncio.sleep(1)
            out["shown"].append((network.current(), inter_pan.current_message()))

        # display, replace by a newer message, replace by new content under the same id
        await display(Message(message_id=1, text="Peak 17:00-19:00", duration_in_minutes=10))
        await display(Message(message_id=2, text="Peak now", duration_in_minutes=5))
        await display(Message(message_id=2, text="Peak now, 3 kWh", duration_in_minutes=5))
        # expire after its five minutes
        await asyncio.sleep(5 * 60)
        out["shown"].append((network.current(), inter_pan.current_message()))
        # scheduled two minutes ahead, shown then, cancelled
        await display(
            Message(message_id=3, text="Tariff change", start_time=clock() + 120, importance=1)
        )
        await asyncio.sleep(120)
        out["shown"].append((network.current(), inter_pan.current_message()))
        await server.cancel(3, device=address)
        await esi.cancel_message(3, dst=ihd.ieee)
        await asyncio.sleep(1)
        out["shown"].append((network.current(), inter_pan.current_message()))
        # a message asking for confirmation: shown on both, confirmed only on the network
        await display(
            Message(
                message_id=4,
                text="Confirm your visit",
                duration_in_minutes=2,
                importance=3,
                confirmation_required=True,
            )
        )
        out["joined_confirmed"] = await network.confirm(4)
        with pytest.raises(MessageError, match="not an inter-PAN command"):
            inter_pan.confirm(4)
        out["inter_pan_confirmation"] = inter_pan.board.confirmation_of(4)
        out["esi_confirmations"] = set(server.confirmations(4))
        await asyncio.sleep(2 * 60)
        out["shown"].append((network.current(), inter_pan.current_message()))

        out["joined_heard"], out["heard"], out["refused"] = joined_heard, heard, inter_pan.refused
        out["joined_ieee"] = str(joined.ieee)
        await network.stop()
        await inter_pan.close()
        await ihd_service.close()
        await esi_service.close()
        await app.shutdown()
        air.close()
        return out

    out = run(main())
    events = board_events(out["heard"])
    assert events == board_events(out["joined_heard"])
    assert [(type(e).__name__, e.message.message_id) for e in events] == [
        ("MessageDisplayed", 1),
        ("MessageReplaced", 1),
        ("MessageDisplayed", 2),
        ("MessageReplaced", 2),
        ("MessageDisplayed", 2),
        ("MessageExpired", 2),
        ("MessageScheduled", 3),
        ("MessageDisplayed", 3),
        ("MessageCancelled", 3),
        ("MessageDisplayed", 4),
        ("MessageExpired", 4),
    ]
    replaced = [e for e in events if isinstance(e, MessageReplaced)]
    assert [(e.by.message_id, e.by.text) for e in replaced] == [
        (2, "Peak now"),
        (2, "Peak now, 3 kWh"),
    ]
    shown = [
        (None if n is None else n.message_id, None if i is None else i.message_id)
        for n, i in out["shown"]
    ]
    assert shown == [(1, 1), (2, 2), (2, 2), (None, None), (None, None), (3, 3), (None, None),
                     (4, 4), (None, None)]  # fmt: skip
    # transmission bits: inter-PAN only on the inter-PAN side, what the ESI sent
    (first, *_) = [e for e in out["heard"] if isinstance(e, MessageDisplayed)]
    assert first.message.transmission == MessageTransmission.Anonymous_InterPAN_Only
    confirm = [e for e in out["heard"] if isinstance(e, InterPanMessage) and e.message_id == 4]
    assert [e.confirmation_not_possible for e in confirm] == [True]
    others = [e for e in out["heard"] if isinstance(e, InterPanMessage) and e.message_id != 4]
    assert not any(e.confirmation_not_possible for e in others)
    assert out["joined_confirmed"] is True
    assert out["esi_confirmations"] == {out["joined_ieee"]}
    assert out["inter_pan_confirmation"] is None
    assert out["refused"] == 0


def test_protected_message_and_cancel_all_only_where_the_whitelist_admits_them() -> None:
    """Outside the default whitelist, Display Protected Message and Cancel All Messages are
    dropped before the client; admitted, they follow the board (PIN, implementation time);
    and a protected display forbidding inter-PAN is refused like a plain one."""

    async def main() -> dict[str, Any]:
        air = Air(seed=32)
        loop = asyncio.get_running_loop()

        def clock() -> int:
            return START + int(loop.time())

        sender = air.device("00:0d:6f:00:0e:00:00:10", channel=20)
        sender.listen()
        esi = InterPanService(
            SimTransport(sender), ieee=sender.ieee, pan_id=ESI_PAN, whitelist=WIDER
        )
        plain = air.device("00:0d:6f:00:0e:00:00:11", channel=20)
        plain.listen()
        plain_service = InterPanService(SimTransport(plain), ieee=plain.ieee, pan_id=0xFFFF)
        wide = air.device("00:0d:6f:00:0e:00:00:12", channel=20)
        wide.listen()
        wide_service = InterPanService(
            SimTransport(wide), ieee=wide.ieee, pan_id=0xFFFF, whitelist=WIDER
        )
        default_client = InterPanSeClient(plain_service, clock=clock)
        client = InterPanSeClient(wide_service, clock=clock, pin_check=lambda pin: pin == "2468")
        default_heard: list[Any] = []
        heard: list[Any] = []
        default_client.on_event(default_heard.append)
        client.on_event(heard.append)
        default_client.start()
        client.start()
        tsn = iter(range(256))

        async def send(definition: Any, fields: dict[str, Any]) -> None:
            payload = encode_se(definition, fields, tsn=next(tsn), from_server=True)
            await esi.send(esi.frame(cluster_id=0x0703, payload=payload))
            await asyncio.sleep(1)

        def display(message_id: int, text: str, start: int = 0, **control: Any) -> dict[str, Any]:
            return {
                "message_id": message_id,
                "message_control": message_control(**control),
                "start_time": start,
                "duration_in_minutes": 0xFFFF,
                "message": text,
            }

        out: dict[str, Any] = {}
        normal = MessageTransmission.Normal
        await send(_DISPLAY_PROTECTED, display(7, "Meter 12: code 5531", transmission=normal))
        out["refused"] = client.refused
        await send(_DISPLAY_PROTECTED, display(7, "Meter 12: code 5531"))
        out["locked"] = client.showing()
        with pytest.raises(MessageError, match="PIN refused"):
            client.unlock(7, "0000")
        out["unlocked"] = client.unlock(7, "2468")
        # Cancel All in five minutes; a message received after it (starting later) is spared
        out["cancel_at"] = clock() + 300
        await send(_CANCEL_ALL, {"implementation_date_time": out["cancel_at"]})
        await send(_DISPLAY, display(8, "New tariff", start=out["cancel_at"] + 60))
        await asyncio.sleep(out["cancel_at"] - clock() - 1)
        out["just_before"] = client.current_message()
        await asyncio.sleep(2)
        out["after"] = (client.current_message(), [m.message_id for m in client.board.held()])
        await asyncio.sleep(60)
        out["later"] = client.current_message()
        out["heard"], out["default_heard"] = heard, default_heard
        out["default_held"] = [m.message_id for m in default_client.board.held()]
        for c in (client, default_client):
            await c.close()
        for s in (esi, plain_service, wide_service):
            await s.close()
        air.close()
        return out

    out = run(main())
    assert out["refused"] == 1
    assert out["locked"].message.protected
    assert out["locked"].text is None
    assert out["unlocked"] == "Meter 12: code 5531"
    assert out["just_before"].message_id == 7
    assert out["after"] == (None, [8])
    assert out["later"].message_id == 8
    (cancel_all,) = [e for e in out["heard"] if isinstance(e, InterPanAllMessagesCancelled)]
    assert cancel_all.implementation_time == out["cancel_at"]
    events = board_events(out["heard"])
    assert [(type(e).__name__, e.message.message_id) for e in events] == [
        ("MessageDisplayed", 7),
        ("MessageDisplayed", 7),
        ("MessageScheduled", 8),
        ("MessageCancelled", 7),
        ("MessageDisplayed", 8),
    ]
    assert (events[0].text, events[1].text) == (None, "Meter 12: code 5531")
    assert events[3].all is True
    # the default whitelist let through only the plain display
    assert [e.message_id for e in out["default_heard"] if isinstance(e, InterPanMessage)] == [8]
    assert out["default_held"] == [8]
