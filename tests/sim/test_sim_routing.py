"""Multi-hop routing on the simulated air (ZB 3.6.3, 3.6.5): a topology (who hears whom), route
discovery (Route Request, Route Reply), relaying re-secured hop by hop, Network Status back to
the source when a router goes, broadcasts relayed and delivered once, and bounded tables under
a flood. All on the virtual clock; tshark reads the 3-hop capture."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
import zigpy.types as t
from zigpy.exceptions import DeliveryError

from tests.interpan.tshark_json import dissect
from tests.oracles import zigbee_key_options
from tests.sim.test_sim_faults_capture import (
    DISPLAY_MESSAGE,
    MESSAGING,
    PRICE,
    esi_send,
    han,
    inbox,
)
from zse.installcode import InstallCode
from zse.security import KeyId
from zse.sim import SE_PROFILE, Air, JoinRefused, SimControllerApplication, SimDevice, _route
from zse.sim import _frames as f

ALL = [PRICE, MESSAGING]


async def chain(
    seed: int, n: int = 3, *, capture: Path | None = None
) -> tuple[Air, SimControllerApplication, list[SimDevice]]:
    """The ESI and ``n`` routers joined, then moved into a line: each hears only the node
    before it and the node after it (ESI - r1 - r2 - ...)."""
    air, esi, devices = await han(seed, capture=capture, n=n)
    line = [esi.radio, *devices]
    for i, node in enumerate(line):
        far = line[i + 2 :]
        if far:
            air.out_of_range(node, *far)
    return air, esi, devices


def relayed(*nodes: SimDevice) -> list[int]:
    return [node.route_stats.relayed for node in nodes]


async def test_the_topology_says_who_hears_whom() -> None:
    """Default: everyone hears everyone. Out of range, a frame does not reach the other node
    (counted in ``blocked``), either way; with no router between, route discovery finds no
    route: a clear DeliveryError (NWK ROUTE_DISCOVERY_FAILED) after nwkcRouteDiscoveryTime.
    In range again, the frame goes directly."""
    air, esi, (display,) = await han(90, n=1)
    box = inbox(display, MESSAGING)
    assert air.hears(esi.radio, display)
    assert not air.multihop
    air.out_of_range(esi.radio, display)
    assert not air.hears(display, esi.radio)
    assert air.multihop
    blocked = air.stats.blocked
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(DeliveryError, match="no route to 0x") as failed:
        await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 1)
    assert failed.value.status == t.NWKStatus.NWK_ROUTE_DISCOVERY_FAILED
    assert loop.time() - began == pytest.approx(_route.ROUTE_DISCOVERY_TIME)
    assert air.stats.blocked > blocked  # the Route Request did not reach the display
    assert esi.radio.route_stats.route_discovery_failures == 1
    air.in_range(esi.radio, display)
    assert not air.multihop
    await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 2)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [2]
    with pytest.raises(ValueError, match="own range"):
        air.out_of_range(display, display)


async def test_an_acknowledged_unicast_over_three_hops_is_delivered_once() -> None:
    """ESI - r1 - r2 - display: the ESI discovers the route (one Route Request, answered along
    the reverse path), each router relays the frame, the display sees it once and its APS
    acknowledgement comes back over the route the Route Request left behind (no discovery
    of its own); its answer to the ESI too. A second send uses the route found."""
    _air, esi, (r1, r2, display) = await chain(91)
    box = inbox(display, MESSAGING)
    await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 1, ack=True)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [1]
    assert display.stats.aps_duplicates == 0
    assert esi.radio.route_stats.route_discoveries == 1
    assert display.route_stats.route_discoveries == 0
    assert relayed(r1, r2) == [2, 2]  # the frame one way, the APS ack the other
    # the display answers the ESI (an APS-acknowledged unicast: it would raise without the ack)
    await display.endpoints[1].send(0x0000, 9, PRICE, 0x00)
    assert relayed(r1, r2) == [4, 4]
    await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 2, ack=True)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [1, 2]
    assert esi.radio.route_stats.route_discoveries == 1
    assert esi.radio._routing is not None
    assert esi.radio._routing.routes[display.nwk or 0] == _route.Route(r1.nwk or 0, 3)


async def test_a_silenced_router_is_routed_around() -> None:
    """ESI and display out of range, two routers between: the route takes one; silenced, the
    ESI's next send to it is not acknowledged, the route goes, the APS retry discovers the
    route through the other router and the display gets the message, once."""
    air, esi, (a, b, display) = await han(92, n=3)
    air.out_of_range(esi.radio, display)
    box = inbox(display, MESSAGING)
    await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 1, ack=True)
    used, other = (a, b) if a.route_stats.relayed else (b, a)
    assert (used.route_stats.relayed, other.route_stats.relayed) == (2, 0)
    air.silence(used)
    await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 2, ack=True)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [1, 2]
    assert other.route_stats.relayed == 2
    assert esi.radio.route_stats.route_discoveries == 2


async def test_a_relaying_router_reports_a_broken_link_and_the_source_rediscovers() -> None:
    """ESI - r1 - {r2, r3} - display: the route goes through r2 or r3; that one silenced,
    r1's relay is not acknowledged, r1 sends the ESI a Network Status (non-tree link failure
    for the display), the ESI drops its route and its APS retry finds the other way."""
    air, esi, (r1, r2, r3, display) = await han(93, n=4)
    air.out_of_range(esi.radio, r2, r3, display)
    air.out_of_range(r1, display)
    box = inbox(display, MESSAGING)
    await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 1, ack=True)
    used, other = (r2, r3) if r2.route_stats.relayed else (r3, r2)
    air.silence(used)
    await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 2, ack=True)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [1, 2]
    assert r1.route_stats.network_status_sent == 1
    assert esi.radio.route_stats.network_status_received == 1
    assert esi.radio.route_stats.route_discoveries == 2
    assert other.route_stats.relayed == 2


async def test_every_router_gone_is_a_clear_failure() -> None:
    """The only router silenced: the send fails saying no route was found."""
    air, esi, (r1, display) = await chain(94, n=2)
    await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 1, ack=True)
    air.silence(r1)
    with pytest.raises(DeliveryError, match="no route to 0x") as failed:
        await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 2, ack=True)
    assert failed.value.status == t.NWKStatus.NWK_ROUTE_DISCOVERY_FAILED


async def test_a_broadcast_reaches_every_node_once() -> None:
    """A broadcast from the ESI along ESI - r1 - r2 - r3: each router rebroadcasts it once
    (four frames on the air in all), every node delivers it once (the broadcast transaction
    table drops the copies, before APS duplicate rejection sees them)."""
    air, esi, devices = await chain(95)
    boxes = [inbox(device, MESSAGING) for device in devices]
    before = air.stats.transmitted
    await esi.send_packet(
        t.ZigbeePacket(
            src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=0x0000),
            src_ep=9,
            dst=t.AddrModeAddress(addr_mode=t.AddrMode.Broadcast, address=0xFFFF),
            dst_ep=1,
            profile_id=SE_PROFILE,
            cluster_id=MESSAGING,
            data=t.SerializableBytes(bytes((0x19, 7, 0x00)) + DISPLAY_MESSAGE),
            radius=30,
        )
    )
    await asyncio.sleep(1)
    assert [[m.tsn for m in box] for box in boxes] == [[7], [7], [7]]
    assert air.stats.transmitted - before == 4
    assert [d.route_stats.rebroadcast for d in devices] == [1, 1, 1]
    nodes = [esi.radio, *devices]
    assert sum(node.route_stats.broadcast_repeats for node in nodes) == 3  # one per router heard
    assert all(d.stats.aps_duplicates == 0 for d in devices)


async def test_the_broadcast_transaction_table_is_bounded_and_its_entries_last_9_s() -> None:
    """ZB 3.6.5: a router notes each broadcast (source, NWK sequence number) for
    nwkBroadcastDeliveryTime (9 s), 32 entries at most: a hostile insider's 40 broadcasts
    back to back fill it (the 8 more dropped, counted), a copy within the 9 s is a repeat;
    once the entries are over, the same broadcasts are new again."""
    air, esi, (router, hostile) = await han(97, n=2)
    air.out_of_range(esi.radio, hostile)  # a topology: the broadcast table on
    assert hostile.nwk is not None

    async def flood(count: int) -> None:
        for seq in range(count):
            hdr = f.NwkHeader(0xFFFF, hostile.nwk, 1, seq)  # radius 1: not rebroadcast
            frame = hostile._nwk_frame(hdr, b"\x00" * 8)
            assert frame is not None
            hostile._mac_send(0xFFFF, frame)
        await asyncio.sleep(0.1)

    stats = router.route_stats
    await flood(40)
    routing = router._routing
    assert routing is not None
    assert len(routing.broadcasts) == _route.BROADCAST_TABLE_SIZE == 32
    assert stats.broadcast_table_full == 8
    repeats = stats.broadcast_repeats
    await asyncio.sleep(8.5)  # within nwkBroadcastDeliveryTime of the first: copies
    await flood(1)
    assert stats.broadcast_repeats == repeats + 1
    await asyncio.sleep(0.5)  # 9 s after: the entries are over, the same broadcast is new
    await flood(1)
    assert stats.broadcast_repeats == repeats + 1
    assert stats.broadcast_table_full == 8
    assert list(routing.broadcasts) == [(hostile.nwk, 0)]


async def test_a_route_request_flood_keeps_the_tables_bounded() -> None:
    """A hostile insider (it holds the network key) floods a router with Route Requests
    from forged originators and with frames for unknown destinations: the route discovery
    table, the routing table and the frames awaiting a route stay bounded, what they refuse
    is counted, and the held frames fail after nwkcRouteDiscoveryTime, each reported."""
    air, esi, (router, hostile) = await han(96, n=2)
    air.out_of_range(esi.radio, hostile)  # a topology: routing on
    assert hostile.nwk is not None
    assert router.nwk is not None
    for i in range(200):
        hdr = f.NwkHeader(0xFFFC, 0x4000 + i, 30, i, frame_type=f.NWK_COMMAND, discover_route=0)
        frame = hostile._nwk_frame(hdr, f.RouteRequest(i, 0x7000 + i, 0).encode())
        assert frame is not None
        hostile._mac_send(0xFFFC, frame)  # back to back: the air keeps their order
    await asyncio.sleep(0.1)
    routing = router._routing
    assert routing is not None
    assert len(routing.discoveries) == _route.DISCOVERY_TABLE_SIZE
    assert router.route_stats.route_requests_dropped == 200 - _route.DISCOVERY_TABLE_SIZE
    assert len(routing.routes) <= _route.ROUTE_TABLE_SIZE
    # over time: the discovery entries expire, new requests get in, the oldest routes go
    for burst in range(3):
        await asyncio.sleep(_route.ROUTE_DISCOVERY_TIME + 1)
        for i in range(20):
            hdr = f.NwkHeader(
                0xFFFC, 0x5000 + 20 * burst + i, 30, i, frame_type=f.NWK_COMMAND, discover_route=0
            )
            frame = hostile._nwk_frame(hdr, f.RouteRequest(i, 0x7000, 0).encode())
            assert frame is not None
            hostile._mac_send(0xFFFC, frame)
        await asyncio.sleep(0.1)
    assert len(routing.routes) == _route.ROUTE_TABLE_SIZE
    assert router.route_stats.routes_evicted > 0
    # frames for destinations nobody has, through the router: held up to the bound (once the
    # hostile's discovery entries are gone: the router's own discoveries take entries too)
    await asyncio.sleep(_route.ROUTE_DISCOVERY_TIME + 1)
    sends = []
    for i in range(30):
        hdr = f.NwkHeader(0x6000 + i, hostile.nwk, 30, i)
        frame = hostile._nwk_frame(hdr, b"\x00" * 8)
        assert frame is not None
        sends.append(hostile._mac_send(0x6000 + i, frame, hop=router.nwk))
    assert all(await asyncio.gather(*sends))  # the router's MAC took each
    assert routing.held == _route.PENDING_FRAMES
    assert router.route_stats.route_pending_overflow == 30 - _route.PENDING_FRAMES
    await asyncio.sleep(_route.ROUTE_DISCOVERY_TIME + 1)
    assert routing.held == 0
    assert not routing.pending
    assert not routing.searching
    assert router.route_stats.route_discovery_failures == _route.PENDING_FRAMES
    assert hostile.route_stats.network_status_received == _route.PENDING_FRAMES  # no route, told


async def test_a_forged_route_reply_loop_ends_at_once() -> None:
    """A hostile insider makes two routers' route discovery entries point at each other (a
    Route Request, then a cheaper copy that claims the other router as its MAC source), then
    sends one Route Reply for it: each router passes a reply on only when it is cheaper than
    the last it passed for that request (ZB 3.6.3.5.3), so the reply goes round once. It went
    round until the entries expired: 4,000 frames in 10 s with air time, and with none (every
    frame at the same instant) the virtual clock never moved again."""
    air, esi, (a, b, hostile) = await han(96, n=3, airtime=True)
    air.out_of_range(hostile, b, esi.radio)  # the hostile node hears A only; A hears B
    assert a.nwk is not None
    assert b.nwk is not None
    assert hostile.nwk is not None
    originator, request = 0x1234, 7
    hdr = f.NwkHeader(0xFFFC, originator, 30, 1, frame_type=f.NWK_COMMAND, discover_route=0)
    frame = hostile._nwk_frame(hdr, f.RouteRequest(request, 0x7777, 100).encode())
    assert frame is not None
    await hostile._mac_send(0xFFFC, frame)  # A notes the hostile node, B notes A
    await asyncio.sleep(0.5)
    hdr = dataclasses.replace(hdr, seq=2)
    frame = hostile._nwk_frame(hdr, f.RouteRequest(request, 0x7777, 0).encode())
    assert frame is not None
    forged = f.MacHeader(f.MAC_DATA, 99, hostile.pan_id, 0xFFFF, hostile.pan_id, b.nwk, False)
    await air.transmit(air.frame(hostile, f.encode_mac(forged, frame)))  # "from B"
    await asyncio.sleep(0.5)
    assert a._routing is not None
    assert b._routing is not None
    assert a._routing.discoveries[originator, request].sender == b.nwk
    assert b._routing.discoveries[originator, request].sender == a.nwk
    before = air.stats.transmitted
    hdr = f.NwkHeader(a.nwk, hostile.nwk, 30, 3, frame_type=f.NWK_COMMAND, discover_route=0)
    frame = hostile._nwk_frame(hdr, f.RouteReply(request, originator, 0x7777, 0).encode())
    assert frame is not None
    await hostile._mac_send(a.nwk, frame)
    await asyncio.sleep(_route.ROUTE_DISCOVERY_TIME)
    assert air.stats.transmitted - before <= 4  # the reply, A to B, B to A: dropped there


@pytest.mark.oracle
async def test_tshark_reads_route_discovery_and_each_relayed_hop(tmp_path: Path) -> None:
    """The 3-hop capture: tshark reads the Route Request (with its path cost growing hop by
    hop), the Route Reply coming back, and decrypts the Display Message on each of its three
    hops (each secured by the hop's sender, its NWK source the ESI's throughout, its radius
    one less per hop); no malformed packet."""
    path = tmp_path / "route.pcap"
    air, esi, (r1, r2, display) = await chain(97, capture=path)
    await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 1, ack=True)
    await asyncio.sleep(0.1)
    air.close()
    keys = zigbee_key_options(entry.line() for entry in air.keys)
    packets = dissect(path, keys)
    requests = [p for p in packets if p.get("zbee_nwk.cmd.id") == ["0x01"]]
    assert {
        (p["wpan.src16"][0], p["zbee_nwk.cmd.route.cost"][0])
        for p in requests
        if p["zbee_nwk.cmd.route.dest"] == [f"0x{display.nwk:04x}"]
    } >= {("0x0000", "0"), (f"0x{r1.nwk:04x}", "1"), (f"0x{r2.nwk:04x}", "2")}
    replies = [
        (p["wpan.src16"][0], p["wpan.dst16"][0])
        for p in packets
        if p.get("zbee_nwk.cmd.id") == ["0x02"]
    ]
    hops = [(display.nwk, r2.nwk), (r2.nwk, r1.nwk), (r1.nwk, 0x0000)]
    assert replies == [(f"0x{a:04x}", f"0x{b:04x}") for a, b in hops]
    shown = [
        (p["wpan.src16"][0], p["wpan.dst16"][0], p["zbee_nwk.src"][0], p["zbee_nwk.radius"][0])
        for p in packets
        if p.get("zbee_zcl_se.msg.message") == ["Peak price now"]
    ]
    path_hops = [(0x0000, r1.nwk), (r1.nwk, r2.nwk), (r2.nwk, display.nwk)]
    assert shown == [
        (f"0x{a:04x}", f"0x{b:04x}", "0x0000", str(30 - i)) for i, (a, b) in enumerate(path_hops)
    ]


async def far_device(
    air: Air, esi: SimControllerApplication, eui: str, *, rx_on_when_idle: bool = True
) -> tuple[SimDevice, InstallCode]:
    """A display out of the ESI's range, its install code registered and joining open on
    every router (zigpy's Mgmt_Permit_Joining_req broadcast)."""
    code = InstallCode.generate(rng=air.rng)
    device = air.device(eui, install_code=code, channel=20, rx_on_when_idle=rx_on_when_idle)
    device.add_endpoint(1, device_type=0x0502, in_clusters=[0x0800], out_clusters=ALL)
    air.out_of_range(esi.radio, device)
    return device, code


async def test_a_device_out_of_the_coordinators_range_joins_through_a_router() -> None:
    """The display hears only the router: it associates with it, the router tells the Trust
    Center (APS Update Device), the Trust Center sends the Transport Key in an APS Tunnel to
    the router, which passes it on. The display is then on the network: zigpy interviews it
    over the router, and an APS-encrypted, acknowledged Display Message (its install-code link
    key, end to end) reaches it, once."""
    air, esi, (router,) = await han(98, n=1)
    display, code = await far_device(air, esi, "00:0d:6f:00:0c:00:00:09")
    await esi.permit_with_link_key(display.ieee, t.KeyData(code.link_key), 60)
    await esi.permit(60)
    await display.join()
    assert display.joined
    assert display.tc_ieee == esi.state.node_info.ieee
    assert display._parent == router.nwk
    assert esi.radio.children[display.ieee] == display.nwk
    await asyncio.sleep(30)  # Device_annce relayed; zigpy interviews it through the router
    assert esi.get_device(ieee=display.ieee).is_initialized
    box = inbox(display, MESSAGING)
    await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 3, encrypt=True, ack=True)
    await asyncio.sleep(0.1)
    assert [(m.tsn, m.aps_encrypted) for m in box] == [(3, True)]
    assert router.route_stats.relayed > 0


async def test_joining_through_a_router_still_needs_the_trust_centers_consent() -> None:
    """No link key registered: the Trust Center ignores the Update Device, no key comes, the
    join fails. A sleepy device cannot join through a router (it keeps no indirect queue)."""
    air, esi, _ = await han(99, n=1)
    display, _ = await far_device(air, esi, "00:0d:6f:00:0c:00:00:0a")
    await esi.permit(60)
    with pytest.raises(JoinRefused, match="no Transport Key"):
        await display.join()
    assert display.ieee not in esi.radio.children
    sleepy, code = await far_device(air, esi, "00:0d:6f:00:0c:00:00:0b", rx_on_when_idle=False)
    await esi.permit_with_link_key(sleepy.ieee, t.KeyData(code.link_key), 60)
    with pytest.raises(JoinRefused, match="PAN at capacity"):
        await sleepy.join()


@pytest.mark.oracle
async def test_tshark_reads_update_device_and_tunnel(tmp_path: Path) -> None:
    """tshark reads the router's Update Device (APS-decrypted with its link key: the display's
    EUI-64, address and "unsecured join") and the Trust Center's Tunnel to the router (the
    display's EUI-64), then the Transport Key the router passes on; nothing malformed."""
    path = tmp_path / "tunnel.pcap"
    air, esi, (router,) = await han(100, n=1, capture=path)
    display, code = await far_device(air, esi, "00:0d:6f:00:0c:00:00:0c")
    await esi.permit_with_link_key(display.ieee, t.KeyData(code.link_key), 60)
    await esi.permit(60)
    await display.join()
    air.close()
    packets = dissect(path, zigbee_key_options(entry.line() for entry in air.keys))
    update = next(p for p in packets if p.get("zbee_aps.cmd.id") == ["0x06"])
    assert update["zbee_aps.cmd.device"] == [str(display.ieee)]
    assert update["zbee_aps.cmd.addr"] == [f"0x{display.nwk:04x}"]
    assert update["zbee_aps.cmd.update_status"] == ["0x01"]
    assert update["wpan.src16"] == [f"0x{router.nwk:04x}"]
    tunnel = next(p for p in packets if p.get("zbee_aps.cmd.id", [""])[0] == "0x0e")
    assert tunnel["zbee_aps.cmd.dst"][0] == str(display.ieee)  # then the key's own field
    assert tunnel["wpan.dst16"] == [f"0x{router.nwk:04x}"]
    key = next(
        p
        for p in packets
        if p.get("zbee_aps.cmd.id") == ["0x05"] and p.get("wpan.dst16") == [f"0x{display.nwk:04x}"]
    )
    assert key["wpan.src16"] == [f"0x{router.nwk:04x}"]


async def test_a_routers_own_route_discoveries_count_against_the_discovery_table() -> None:
    """The route discovery table holds 8 entries, the router's own discoveries among them: a
    hostile insider's Route Requests fill it, then the router's own send to a node it has no
    route to cannot start a discovery: it fails at once (NWK ROUTE_ERROR), counted, and the
    table stays at its bound. Once the entries expire, the router discovers again."""
    air, esi, (router, hostile) = await han(102, n=2)
    air.out_of_range(esi.radio, hostile)  # a topology: routing on
    for i in range(_route.DISCOVERY_TABLE_SIZE):
        hdr = f.NwkHeader(0xFFFC, 0x4000 + i, 30, i, frame_type=f.NWK_COMMAND, discover_route=0)
        frame = hostile._nwk_frame(hdr, f.RouteRequest(i, 0x7000 + i, 0).encode())
        assert frame is not None
        hostile._mac_send(0xFFFC, frame)  # back to back: the air keeps their order
    await asyncio.sleep(0.1)
    routing = router._routing
    assert routing is not None
    assert len(routing.discoveries) == _route.DISCOVERY_TABLE_SIZE
    dropped = router.route_stats.route_requests_dropped

    async def send_from_router() -> None:
        await router.send_aps(
            dst_mode=t.AddrMode.NWK,
            dst_addr=0x7777,
            dst_ep=1,
            src_ep=1,
            cluster_id=MESSAGING,
            profile_id=SE_PROFILE,
            payload=bytes((0x19, 1, 0x00)) + DISPLAY_MESSAGE,
        )

    with pytest.raises(DeliveryError, match="route discovery table") as refused:
        await send_from_router()
    assert refused.value.status == t.NWKStatus.NWK_ROUTE_ERROR
    assert len(routing.discoveries) == _route.DISCOVERY_TABLE_SIZE
    assert router.route_stats.route_requests_dropped == dropped + 1
    assert router.route_stats.route_discoveries == 0
    assert not routing.pending
    await asyncio.sleep(_route.ROUTE_DISCOVERY_TIME + 1)
    with pytest.raises(DeliveryError, match="no route to 0x7777"):
        await send_from_router()  # a discovery of its own, which finds nobody
    assert router.route_stats.route_discoveries == 1


async def test_a_hostile_routers_update_device_cannot_move_a_joined_device() -> None:
    """Joining open and no install code required: a hostile router (it holds the network
    key and its own link key) tells the Trust Center, in an APS Update Device of status
    "standard device unsecured join" (an association), that a device already on the network
    joined it at another address. That is a new join, not a rejoin (a rejoin through a
    router says "secured rejoin" or "unsecured rejoin", ZB Table 4.40): the Trust Center
    refuses it, counted; the device keeps its address and its install-code link key, and the
    ESI still reaches it APS-encrypted. A device not yet on the network still joins so."""
    _air, esi, (display, hostile) = await han(103, n=2)
    await asyncio.sleep(60)  # the install codes registered for their joins expire
    esi.require_install_code = False
    await esi.permit(60)
    tc = esi.radio
    assert hostile.tc_ieee is not None
    address, key = tc.children[display.ieee], tc.link_keys[display.ieee]
    conflicts = tc.stats.address_conflicts

    async def update_device(ieee: t.EUI64, nwk: int) -> None:
        assert hostile.tc_ieee is not None
        assert hostile.nwk is not None
        aps = f.ApsHeader(f.APS_COMMAND, f.APS_DELIVERY_UNICAST, next(hostile._aps_counter) & 0xFF)
        update = f.update_device_payload(ieee, nwk, f.UPDATE_DEVICE_UNSECURED_JOIN)
        secured = hostile._secure_aps(aps, update, hostile.tc_ieee, KeyId.DATA)
        hdr = f.NwkHeader(0x0000, hostile.nwk, 30, next(hostile._nwk_seq) & 0xFF)
        assert await hostile._send_nwk(hdr, secured)
        await asyncio.sleep(1)

    await update_device(display.ieee, 0x1234)
    assert tc.children[display.ieee] == address
    assert 0x1234 not in tc.address_map
    await update_device(display.ieee, address)  # the same address: its link key would go
    assert tc.children[display.ieee] == address
    assert tc.link_keys[display.ieee] == key
    assert tc.stats.address_conflicts == conflicts + 2
    box = inbox(display, MESSAGING)
    await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 4, encrypt=True, ack=True)
    await asyncio.sleep(0.1)
    assert [(m.tsn, m.aps_encrypted) for m in box] == [(4, True)]
    newcomer = t.EUI64.convert("00:0d:6f:00:0c:00:00:42")
    await update_device(newcomer, 0x2345)
    assert tc.children[newcomer] == 0x2345


async def test_frames_sent_back_to_back_over_two_hops_arrive_in_order() -> None:
    """ESI - r1 - display: 200 frames sent at one virtual instant reach the display in the
    order sent, none dropped as a stale NWK or APS frame counter: a radio sends its frames
    in order and a router relays them in order (the air keeps each sender's order)."""
    _air, esi, (r1, display) = await chain(101, n=2)
    box = inbox(display, MESSAGING)
    await esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, 0)  # the route found
    await asyncio.sleep(0.1)
    await asyncio.gather(
        *(esi_send(esi, display, MESSAGING, 0x00, DISPLAY_MESSAGE, tsn) for tsn in range(1, 201))
    )
    await asyncio.sleep(0.1)
    assert display.stats.nwk_stale_counter == 0
    assert display.stats.aps_stale_counter == 0
    assert [m.tsn for m in box] == list(range(201))
    assert r1.route_stats.relayed == 201
