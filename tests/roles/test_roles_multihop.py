"""The ESI reaching HAN devices two and three hops away through routers (ZB 3.6.3): the
thermostat hears the ESI, the load control device hears the thermostat, the display hears only
the load control device (ESI - thermostat - lcd - ihd). A Display Message and a Load Control
Event arrive once and the reports come back; with the routers gone, sends fail saying no route
was found; back, the next gets through. Virtual time."""

from __future__ import annotations

import asyncio
import re

from tests.roles.han_builder import EUIS, Han, close
from tests.roles.test_roles_ack_loss import of, reports
from tests.roles.test_roles_esi_registry import joined_han, transitions
from zse.drlc import LoadControlEvent, Status
from zse.drlc.core import ApplyLoadControl
from zse.messaging import Message, MessageDisplayed
from zse.roles.esi import Outcome


async def multihop_han(tmp_path) -> Han:
    """The three roles joined near the ESI, then placed in a line: ESI - thermostat - lcd -
    ihd, each hearing only its neighbours in the line."""
    han = await joined_han(tmp_path)
    esi, thermostat, lcd, ihd = (
        han.app.radio,
        *(han.devices[name].device for name in ("thermostat", "lcd", "ihd")),
    )
    han.air.out_of_range(esi, lcd, ihd)
    han.air.out_of_range(thermostat, ihd)
    return han


def event(issuer_event_id: int) -> LoadControlEvent:
    return LoadControlEvent(
        issuer_event_id=issuer_event_id, device_class=0x0FFF, duration_in_minutes=30,
        criticality_level=3, duty_cycle=40,
    )  # fmt: skip


async def test_the_esi_reaches_a_display_three_hops_away_and_a_load_controller_two(
    tmp_path,
) -> None:
    han = await multihop_han(tmp_path)
    shown = await han.esi.send_message(
        Message(message_id=61, text="Peak at 5pm", duration_in_minutes=60), device=EUIS["ihd"]
    )
    assert shown.delivered == [EUIS["ihd"]]
    sent = await han.esi.send_load_control(event(62), device=EUIS["lcd"])
    assert sent.delivered == [EUIS["lcd"]]
    await asyncio.sleep(60)
    assert [e.message.message_id for e in of(han, "ihd", MessageDisplayed)] == [61]
    assert [a.issuer_event_id for a in of(han, "lcd", ApplyLoadControl)] == [62]
    # the load controller's reports came back over two hops, each recorded once
    assert reports(han, "lcd", 62) == {Status.RECEIVED: 1, Status.STARTED: 1}
    thermostat, lcd = (han.devices[name].device for name in ("thermostat", "lcd"))
    assert thermostat.route_stats.relayed > 0
    assert lcd.route_stats.relayed > 0  # the display's frames
    assert han.devices["ihd"].device.stats.aps_duplicates == 0
    await close(han)


async def test_the_router_silenced_the_esi_says_no_route(tmp_path) -> None:
    """The thermostat (the only way to the others) switched off: a message to the display
    is OFFLINE, its detail saying route discovery found no route (after the MAC failure of
    the old route and nwkcRouteDiscoveryTime); back on, the next message gets through."""
    han = await multihop_han(tmp_path)
    first = await han.esi.send_message(Message(message_id=63, text="one"), device=EUIS["ihd"])
    assert first.delivered == [EUIS["ihd"]]
    thermostat = han.devices["thermostat"].device
    han.air.silence(thermostat)
    lost = await han.esi.send_message(Message(message_id=64, text="two"), device=EUIS["ihd"])
    (outcome,) = lost.outcomes
    assert outcome.outcome is Outcome.OFFLINE
    assert re.match(r"no route to 0x[0-9A-F]{4}: route discovery found none", outcome.detail)
    han.air.restore(thermostat)
    again = await han.esi.send_message(Message(message_id=65, text="three"), device=EUIS["ihd"])
    assert again.delivered == [EUIS["ihd"]]
    await asyncio.sleep(5)
    assert [e.message.message_id for e in of(han, "ihd", MessageDisplayed)] == [63, 65]
    await close(han)


async def test_a_display_out_of_the_esis_range_joins_through_a_router_and_runs_cbke(
    tmp_path,
) -> None:
    """The display never hears the ESI: it joins through the thermostat (Update Device,
    Tunnel), then its install-code key, CBKE and the ESI's messages work over that hop."""
    han = await joined_han(tmp_path, names=("thermostat",))
    ihd = han.add("ihd")
    han.air.out_of_range(han.app.radio, ihd.device)
    await han.esi.provision(EUIS["ihd"])
    await han.app.permit(60)  # the routers open too (Mgmt_Permit_Joining_req)
    await ihd.start()
    await asyncio.sleep(30)
    await han.esi.settle()
    assert transitions(han, "ihd")[-1] == ("key_established", "meter ready")
    assert ihd.device._parent == han.devices["thermostat"].device.nwk
    shown = await han.esi.send_message(Message(message_id=66, text="hello"), device=EUIS["ihd"])
    assert shown.delivered == [EUIS["ihd"]]
    await asyncio.sleep(5)
    assert [e.message.message_id for e in of(han, "ihd", MessageDisplayed)] == [66]
    await close(han)
