"""One device-naming helper (#13.2): the DRLC and Messaging servers name a device they know
only by NWK address the same way (``nwk:0x1A2B``, the form the DRLC server has always stored),
and records stored under the Messaging server's earlier form (``nwk:1a2b``) still load."""

from __future__ import annotations

import dataclasses

from tests.drlc.test_drlc_client_core import MIN, T0, event
from tests.services.test_server_records import Port, report_frame
from zse.drlc import Status
from zse.drlc.service import DrlcServer, ReportReceived
from zse.messaging import Confirmation, Message
from zse.messaging.protocol import confirmation_payload
from zse.messaging.service import MESSAGING, MessageConfirmed, MessagingServer
from zse.se.ids import MessagingServerCommand
from zse.store import Store

UNKNOWN_NWK = 0x1A2B


async def test_both_servers_name_an_unknown_device_alike(tmp_path) -> None:
    clock = iter(range(T0, T0 + 10**6)).__next__
    async with await Store.open(tmp_path / "esi.db") as store:
        port = Port()
        drlc = DrlcServer(port, clock=clock, store=store)
        messaging = MessagingServer(port, clock=clock, store=store)
        await drlc.start()
        await messaging.start()
        reports: list[ReportReceived] = []
        confirmed: list[MessageConfirmed] = []
        drlc.on_event(reports.append)
        messaging.on_event(confirmed.append)

        await drlc.publish(event(1, T0 + MIN, 30))
        frame = dataclasses.replace(
            report_frame(1, Status.RECEIVED, T0 + 1), src_ieee=None, src_nwk=UNKNOWN_NWK
        )
        await port.handlers[0x0701](frame)

        await messaging.record(Message(message_id=7, text="hi", start_time=0))
        confirmation = Confirmation(message_id=7, confirmation_time=T0 + 2)
        await port.handlers[MESSAGING](
            dataclasses.replace(
                frame,
                cluster_id=MESSAGING,
                command_id=MessagingServerCommand.MESSAGE_CONFIRMATION,
                payload=confirmation_payload(confirmation),
            )
        )

        assert [r.device for r in reports] == ["nwk:0x1A2B"]
        assert [c.device for c in confirmed] == ["nwk:0x1A2B"]
        assert list(drlc.view(1)) == ["nwk:0x1A2B"]
        assert list(messaging.confirmations(7)) == ["nwk:0x1A2B"]


async def test_a_confirmation_stored_under_the_earlier_messaging_name_still_loads(
    tmp_path,
) -> None:
    clock = iter(range(T0, T0 + 10**6)).__next__
    async with await Store.open(tmp_path / "esi.db") as store:
        server = MessagingServer(Port(), clock=clock, store=store)
        await server.start()
        await server.record(Message(message_id=7, text="hi", start_time=0))
        server.messages.confirm(
            "nwk:1a2b", Confirmation(message_id=7, confirmation_time=T0 + 2), T0 + 3
        )
        await server.save()
    async with await Store.open(tmp_path / "esi.db") as store:
        assert await store.quarantined() == []
        again = MessagingServer(Port(), clock=clock, store=store)
        await again.start()
        assert list(again.confirmations(7)) == ["nwk:1a2b"]
