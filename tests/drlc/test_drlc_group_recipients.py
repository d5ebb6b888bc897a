"""Get Scheduled Events answers an event sent to a ZigBee group only to the group's members.

The ESI answered every device that asked with every event sent to a ZigBee group, members of
the group or not (audit drlc-price, finding 2's remainder), and the others ran it. The ESI
now records whom each send reaches: a group's members when they are known (the application
says, or zigpy's group table), everyone for a broadcast or a group of unknown members.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest
import zigpy.types as t
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from zse.drlc import DrlcServerCore, LoadControlEvent
from zse.drlc.protocol import DrlcServerProtocol, event_payload
from zse.drlc.service import DRLC, DrlcClient, DrlcServer
from zse.installcode import InstallCode
from zse.se.ids import DrlcServerCommand
from zse.sim import Air, SimDevice
from zse.zcl.delivery import Destination, device_name
from zse.zcl.frame import Step, ZclMessage
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

T0 = 800_000_000
GROUP = 0x0E01
MEMBER = t.EUI64.convert("00:0d:6f:00:0a:00:00:02")
OTHER = t.EUI64.convert("00:0d:6f:00:0a:00:00:03")
UNICAST = Destination.device(0x1234, 1)


def lce(issuer_event_id: int = 7, start: int = T0 + 600) -> LoadControlEvent:
    return LoadControlEvent(
        issuer_event_id=issuer_event_id,
        device_class=0x0FFF,
        start_time=start,
        duration_in_minutes=30,
        criticality_level=8,
        duty_cycle=0,
    )


def asking(ieee: t.EUI64) -> ZclMessage:
    """Get Scheduled Events (start 0 = now, all) from the device ``ieee``."""
    return ZclMessage(
        src_nwk=0x1234,
        src_ieee=ieee,
        src_ep=1,
        dst_ep=9,
        cluster_id=DRLC,
        profile_id=0x0109,
        frame_control=0x01,
        manufacturer=None,
        tsn=5,
        command_id=DrlcServerCommand.GET_SCHEDULED_EVENTS,
        payload=bytes(5),
        aps_encrypted=True,
        group=None,
        broadcast=False,
        timestamp=0.0,
    )


def answered(server: DrlcServerProtocol, ieee: t.EUI64) -> list[bytes]:
    msg = asking(ieee)
    step = server.receive(msg, server.decode(msg), T0)
    return [send.payload for send in step.sends]


def test_an_event_sent_to_a_group_of_known_members_is_answered_to_them_only() -> None:
    """Sent to a ZigBee group whose members are known, the event is answered to a member
    and not to another device (NOT_FOUND), which would have run it."""
    server = DrlcServerProtocol()
    server.publish(lce(), now=T0, to=Destination.group(GROUP), recipients=[device_name(MEMBER)])
    assert answered(server, MEMBER) == [event_payload(lce())]
    msg = asking(OTHER)
    assert server.receive(msg, server.decode(msg), T0) == Step(status=foundation.Status.NOT_FOUND)


def test_a_stored_event_sent_later_to_a_group_is_answered_to_its_members_only() -> None:
    """The ESI facade stores an event, then sends it (``send_event``)."""
    server = DrlcServerProtocol()
    server.publish(lce(), now=T0)
    assert answered(server, OTHER) != []  # stored, sent nowhere yet: anyone may ask
    server.send_event(7, Destination.group(GROUP), recipients=[device_name(MEMBER)])
    assert answered(server, MEMBER) != []
    assert answered(server, OTHER) == []


def test_a_broadcast_or_a_group_of_unknown_members_reaches_everyone() -> None:
    for to, recipients in (
        (Destination.broadcast(), None),
        (Destination.group(GROUP), None),
    ):
        server = DrlcServerProtocol()
        server.publish(lce(), now=T0, to=Destination.group(1), recipients=[device_name(MEMBER)])
        server.send_event(7, to, recipients=recipients)
        assert answered(server, OTHER) == [event_payload(lce())], to


@given(
    sends=st.lists(
        st.tuples(
            st.sampled_from(["device", "group", "broadcast", "unknown group"]),
            st.sets(st.sampled_from([MEMBER, OTHER])),
        ),
        max_size=4,
    ),
    expected=st.sets(st.sampled_from([MEMBER, OTHER])),
)
def test_a_device_is_answered_exactly_when_a_send_or_the_expected_list_reaches_it(
    sends: list[tuple[str, set[t.EUI64]]], expected: set[t.EUI64]
) -> None:
    """Whatever the sends, a device is answered iff it is expected, a send reached it (a
    broadcast, a group of unknown members, a group it is a member of, itself), or nothing
    names any recipient (a group said to have no members names them: none); the records a
    restart loads answer the same."""
    server = DrlcServerProtocol()
    server.publish(lce(), now=T0, expected=[device_name(d) for d in expected])
    everyone, named, addressed = False, set(expected), False
    for kind, devices in sends:
        names = [device_name(d) for d in devices]
        if kind == "device":  # a unicast names one device, or none when not known
            one = sorted(devices, key=str)[:1]
            server.send_event(7, UNICAST, recipients=[device_name(d) for d in one] or None)
            named |= set(one)
        elif kind == "group":  # a group of known members (perhaps none: no one)
            server.send_event(7, Destination.group(GROUP), recipients=names)
            named |= devices
            addressed = True
        else:
            to = Destination.broadcast() if kind == "broadcast" else Destination.group(GROUP)
            server.send_event(7, to)
            everyone = True
    restored = DrlcServerProtocol(DrlcServerCore())
    restored.core.load_records(server.core.records())
    for device in (MEMBER, OTHER):
        want = everyone or device in named or not (named or addressed)
        assert bool(answered(server, device)) is want
        assert bool(answered(restored, device)) is want


async def drlc_han(
    seed: int, devices: tuple[t.EUI64, ...]
) -> tuple[Any, SeEndpoint, Callable[[], int], dict[t.EUI64, SimDevice]]:
    """A coordinator with an ESI endpoint serving DRLC (not started), its clock, and
    ``devices`` joined with their install codes, each a DRLC client endpoint 1."""
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return T0 + int(loop.time())

    se = SeEndpoint(app, in_clusters=[DRLC])
    await se.start()
    nodes = {}
    for ieee in devices:
        code = InstallCode.generate(rng=air.rng)
        node = air.device(str(ieee), install_code=code, channel=15)
        node.add_endpoint(1, device_type=0x0502, out_clusters=[DRLC])
        await app.permit_with_link_key(node.ieee, t.KeyData(code.link_key), 60)
        await node.join()
        nodes[ieee] = node
    await asyncio.sleep(30)
    return app, se, clock, nodes


@pytest.mark.parametrize("told_by", ["zigpy's group table", "the application"])
async def test_a_non_member_that_asks_does_not_run_an_event_sent_to_a_zigbee_group(
    told_by: str,
) -> None:
    """On the simulator: the ESI knows the group's member (from zigpy's group table, or
    the application says, ``set_group_members``); it sends a Planned Outage to the group; a
    device outside it asks Get Scheduled Events (as at start-up and after every rejoin) and
    gets nothing, the member gets and runs it."""
    app, se, clock, nodes = await drlc_han(71, (MEMBER, OTHER))
    nodes[MEMBER].endpoints[1].add_group(GROUP)
    server = DrlcServer(se, clock=clock)
    if told_by == "the application":
        server.set_group_members(GROUP, [str(MEMBER)])
    else:
        app.groups.add_group(GROUP).add_member(app.get_device(ieee=MEMBER).add_endpoint(1))
    await server.start()
    await server.publish(lce(start=clock() + 60), dst=GROUP, dst_mode=t.AddrMode.Group)
    runs = {}
    for ieee, node in nodes.items():
        client = DrlcClient(
            node.endpoints[1],
            server_ep=SE_ENDPOINT_ID,
            device_class=0x0FFF,
            start_randomization_minutes=0,
            clock=clock,
            rng=random.Random(str(ieee)),
        )
        runs[ieee] = []
        client.on_event(runs[ieee].append)
        await client.start()  # asks Get Scheduled Events
    await asyncio.sleep(120)
    assert [type(a).__name__ for a in runs[MEMBER]] == ["ApplyLoadControl"]
    assert runs[OTHER] == []
