"""An event sent to a ZigBee group said to have no members is answered to no one.

``DrlcServer.set_group_members(group, [])`` was taken as "members not known", so Get
Scheduled Events answered an event sent to that group to every device that asked, and each
ran it (audit today, finding 7). An explicitly empty list now means the event reached no
one; zigpy's group table is used only when it has the group with members (it knows only the
memberships zigpy made or scanned), else the members are not known: everyone.
"""

from __future__ import annotations

import asyncio
import random

import pytest
import zigpy.types as t

from tests.drlc.test_drlc_group_recipients import (
    GROUP,
    MEMBER,
    OTHER,
    answered,
    drlc_han,
    lce,
)
from zse.drlc import DrlcServerCore
from zse.drlc.protocol import DrlcServerProtocol, event_payload
from zse.drlc.service import DrlcClient, DrlcServer
from zse.zcl.delivery import Destination, device_name
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

T0 = 800_000_000


def test_a_group_of_no_members_reaches_no_one_but_the_expected() -> None:
    """Sent to a group of no members, the event is answered to its expected devices only,
    and so after a restart; a record of a group of members keeps its earlier form."""
    server = DrlcServerProtocol()
    server.publish(lce(), now=T0, to=Destination.group(GROUP), recipients=[])
    assert (answered(server, OTHER), answered(server, MEMBER)) == ([], [])
    restored = DrlcServerProtocol(DrlcServerCore())
    restored.core.load_records(server.core.records())
    assert (answered(restored, OTHER), answered(restored, MEMBER)) == ([], [])
    server.core.expect(7, [device_name(MEMBER)])
    assert (answered(server, OTHER), answered(server, MEMBER)) == ([], [event_payload(lce())])

    members = DrlcServerProtocol()
    members.publish(lce(), now=T0, to=Destination.group(GROUP), recipients=[device_name(MEMBER)])
    (record,) = members.core.records().values()
    assert "addressed" not in record


@pytest.mark.parametrize(
    ("told", "runs"),
    [
        ("the application: no members", []),
        ("zigpy: the group, no members", ["ApplyLoadControl"]),  # not known: everyone
    ],
)
async def test_a_device_asking_for_events_of_an_empty_group(told: str, runs: list[str]) -> None:
    """On the simulator: a device asks Get Scheduled Events after an event was sent to a
    group. Said by the application to be empty, the group reached no one: nothing to run.
    zigpy's table having the group with no member says nothing of who is in it."""
    app, se, clock, nodes = await drlc_han(72, (OTHER,))
    node = nodes[OTHER]
    server = DrlcServer(se, clock=clock)
    if told.startswith("the application"):
        server.set_group_members(GROUP, [])
    else:
        app.groups.add_group(GROUP)
    await server.start()
    await server.publish(lce(start=clock() + 60), dst=GROUP, dst_mode=t.AddrMode.Group)
    client = DrlcClient(
        node.endpoints[1],
        server_ep=SE_ENDPOINT_ID,
        device_class=0x0FFF,
        start_randomization_minutes=0,
        clock=clock,
        rng=random.Random(1),
    )
    ran: list[object] = []
    client.on_event(ran.append)
    await client.start()  # asks Get Scheduled Events
    await asyncio.sleep(120)
    assert [type(a).__name__ for a in ran] == runs
