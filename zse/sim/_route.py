"""Multi-hop routing on the simulated air: route discovery, relaying and broadcast relaying.

When the air has a topology (:meth:`zse.sim.Medium.out_of_range`), a node that cannot reach a
unicast's destination itself needs a route (ZB 3.6.3). Routers (the coordinator and the
devices whose logical type is router, receiver on when idle) keep, each, bounded tables:

- a routing table (ZB 3.6.3.2): destination -> next hop and path cost, at most
  :data:`ROUTE_TABLE_SIZE` entries, the least recently used dropped for a new one (counted);
- a route discovery table (ZB 3.6.3.2): (originator, route request id) -> the neighbour the
  cheapest Route Request came from and its cost, :data:`DISCOVERY_TABLE_SIZE` entries living
  nwkcRouteDiscoveryTime (10 s), the router's own discoveries among them; a Route Request
  past that bound is dropped, and a discovery of its own is not started: the frame fails at
  once (``NWK_ROUTE_ERROR``), both counted in ``route_requests_dropped``;
- the frames awaiting a route, :data:`PENDING_FRAMES` at most (a frame past that is refused:
  ``NWK_FRAME_NOT_BUFFERED``);
- a broadcast transaction table (ZB 3.6.5): (NWK source, NWK sequence number) of each
  broadcast heard, for nwkBroadcastDeliveryTime (9 s), :data:`BROADCAST_TABLE_SIZE` entries.

A sender without a route holds the frame and broadcasts a Route Request (NWK command 0x01,
ZB 3.4.1, to 0xFFFC: routers only) with path cost 0. Each router adds the link cost (1 per
hop: the simulator's links are all alike, faults aside), notes the neighbour it came from and
a route back to the originator, and rebroadcasts it once per request (ZB 3.6.3.5.2); a
cheaper copy later moves the reverse route, without another rebroadcast. The destination, or
the parent of a sleepy end device (ZB 3.6.3.5.2: a parent answers for its end device
children), answers with a Route Reply (0x02, ZB 3.4.2) unicast back along the reverse path,
hop by hop, each hop learning the forward route. The originator then sends the frames it held;
none comes within nwkcRouteDiscoveryTime, they fail (zigpy's ``DeliveryError`` with
``NWKStatus.NWK_ROUTE_DISCOVERY_FAILED``, the NLDE-DATA.confirm status of ZB 3.2.1.2).

A router relays a NWK unicast for another node (ZB 3.6.3.3): the frame checked with the
network key (MIC, its last hop's frame counter), the NWK header kept but the radius, one less
(a frame whose radius is spent, or whose NWK source is the router's own address, is not
relayed: secured again, an insider's forgery would be the router's own frame), secured again
with the router's own frame counter and EUI-64 (NWK security is hop by hop, ZB 4.3.1), then
sent to the next hop (a
neighbour, a sleepy child: held for its poll, or a route). When the next hop does not
acknowledge it (or no route is found), the router tells the frame's source with a Network
Status (0x03, ZB 3.4.3): non-tree link failure (0x02) or no route available (0x00), the codes
of ZB Table 3.42 as Wireshark's dissector names them; the source drops its route and its next
attempt (an APS retry) discovers a new one. A sender whose own first hop fails drops the route
too.

Broadcasts: with a topology, each router rebroadcasts a NWK broadcast it had not heard before,
its radius one less (ZB 3.6.5), and each node delivers it once: a copy whose source and
sequence number are in the broadcast transaction table is dropped (counted). Passive
acknowledgements and broadcast retries (nwkMaxBroadcastRetries), broadcast jitter, Route
Request retries, many-to-one routes, source routing and Link Status are not modelled; with
everyone in range nothing here runs (every destination is a neighbour, every broadcast heard
first hand).

Sizes: the spec leaves the tables' sizes to the stack; EmberZNet's defaults are 16 route
entries and 8 discovery entries (EMBER_ROUTE_TABLE_SIZE, EMBER_DISCOVERY_TABLE_SIZE), used
here. The spec text was out of reach; the command formats and status codes follow Wireshark's
ZigBee NWK dissector (``tshark -G values``), the timing constants public stacks' headers
(nwkcRouteDiscoveryTime 0x2710 ms, nwkBroadcastDeliveryTime 9 s in the PRO PICS).
"""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import zigpy.exceptions
import zigpy.types as t
import zigpy.zdo.types as zdo_t

from zse.errors import DecodeError
from zse.sim import _frames as f

if TYPE_CHECKING:
    from zse.security import Unsecured
    from zse.sim._air import Medium, Transmission

__all__ = [
    "BROADCAST_DELIVERY_TIME",
    "BROADCAST_TABLE_SIZE",
    "DISCOVERY_TABLE_SIZE",
    "PENDING_FRAMES",
    "ROUTE_DISCOVERY_TIME",
    "ROUTE_TABLE_SIZE",
    "Node",
    "Route",
    "RouteStats",
    "RoutingTables",
]

LOGGER = logging.getLogger(__name__)

ROUTE_TABLE_SIZE = 16
DISCOVERY_TABLE_SIZE = 8
#: frames a node holds awaiting a route, all destinations together
PENDING_FRAMES = 8
#: nwkcRouteDiscoveryTime (ZB Table 3.44: 0x2710 ms): how long a discovery, and the route
#: discovery table entries it makes, live
ROUTE_DISCOVERY_TIME = 10.0
#: nwkBroadcastDeliveryTime (ZB 3.5.2; 9 s in the ZigBee PRO PICS): how long a broadcast's
#: entry stays in the broadcast transaction table
BROADCAST_DELIVERY_TIME = 9.0
BROADCAST_TABLE_SIZE = 32
#: the cost of one link (ZB 3.6.3.1 lets a stack use a constant cost)
LINK_COST = 1
#: the radius of route commands: 2 x nwkMaxDepth (ZB 3.6.3.5.1)
MAX_RADIUS = 30

_ROUTING_COMMANDS = frozenset(
    (f.NWK_CMD_ROUTE_REQUEST, f.NWK_CMD_ROUTE_REPLY, f.NWK_CMD_NETWORK_STATUS)
)
_ROUTERS = (zdo_t.LogicalType.Coordinator, zdo_t.LogicalType.Router)

Build = Callable[[], bytes | None]


class Node(Protocol):
    """What routing needs of a node (:class:`zse.sim.Node` implements it; this module does not
    import the nodes, which call it)."""

    air: Medium
    ieee: t.EUI64
    logical_type: zdo_t.LogicalType
    rx_on_when_idle: bool
    stats: Any  # zse.sim.NodeStats: nwk_unsecured, malformed
    _routing: RoutingTables | None

    @property
    def _nwk_seq(self) -> Iterator[int]:
        """The node's NWK sequence numbers."""

    @property
    def nwk(self) -> int | None:
        """The node's short address."""

    def _put_nwk(
        self, nwk: f.NwkHeader, payload: bytes, *, secure: bool = True
    ) -> asyncio.Future[bool] | None:
        """Secure and send a NWK frame (routed if need be)."""

    def _nwk_frame(self, nwk: f.NwkHeader, payload: bytes, *, secure: bool = True) -> bytes | None:
        """The NWK frame secured with the node's frame counter."""

    def _mac_send(self, dst: int, frame: bytes, *, hop: int | None = None) -> asyncio.Future[bool]:
        """Send a NWK frame to its next hop."""

    def _unsecure_nwk(self, tx: Transmission) -> Unsecured | None:
        """The NWK frame checked and decrypted, or None (counted)."""

    def _parent_address(self) -> int | None:
        """An end device's parent."""

    def _answers_for(self, nwk: int) -> bool:
        """Whether it answers Route Requests for ``nwk``."""

    def _relay_broadcast(self, nwk: f.NwkHeader, payload: bytes) -> None:
        """A parent holds a broadcast for its sleepy children."""


@dataclasses.dataclass
class RouteStats:
    """A node's routing counters (``node.route_stats``): NWK unicasts relayed for other
    nodes, broadcasts rebroadcast, broadcast copies dropped as heard before (the broadcast
    transaction table) or because that table was full, Route Requests this node sent,
    discoveries that found no route, Route Requests dropped (or discoveries of its own not
    started) because the route discovery table was full, routes dropped to make room in the
    routing table, frames refused because too many awaited a route, Network Status commands
    sent and received."""

    relayed: int = 0
    rebroadcast: int = 0
    broadcast_repeats: int = 0
    broadcast_table_full: int = 0
    route_discoveries: int = 0
    route_discovery_failures: int = 0
    route_requests_dropped: int = 0
    routes_evicted: int = 0
    route_pending_overflow: int = 0
    network_status_sent: int = 0
    network_status_received: int = 0


@dataclasses.dataclass(slots=True)
class Route:
    """A routing table entry (ZB 3.6.3.2): the next hop towards a destination and the path
    cost through it."""

    next_hop: int
    cost: int


@dataclasses.dataclass(slots=True)
class _Discovery:
    """A route discovery table entry: the neighbour the cheapest Route Request came from,
    and the cost of the cheapest Route Reply passed on for it (its residual cost; None
    before the first)."""

    sender: int
    cost: int
    expires: float
    residual: int | None = None


@dataclasses.dataclass(slots=True)
class _Pending:
    build: Build
    future: asyncio.Future[bool]


class RoutingTables:
    """One node's routing state (ZB 3.6.3.2, 3.6.5), every table bounded."""

    def __init__(self, first_request_id: int) -> None:
        #: destination -> route, least recently used first
        self.routes: dict[int, Route] = {}
        self.discoveries: dict[tuple[int, int], _Discovery] = {}
        #: destination -> the frames awaiting a route to it
        self.pending: dict[int, list[_Pending]] = {}
        self.held = 0
        #: destinations being discovered -> the timer that ends the discovery
        self.searching: dict[int, asyncio.TimerHandle] = {}
        #: the broadcast transaction table: (source, sequence number) -> expiry
        self.broadcasts: dict[tuple[int, int], float] = {}
        self._request_ids = itertools.count(first_request_id)
        self.stats = RouteStats()

    def next_request_id(self) -> int:
        return next(self._request_ids) & 0xFF

    def expire(self, now: float) -> None:
        """Drop the discovery and broadcast entries whose time is over (oldest first)."""
        for table in (self.discoveries, self.broadcasts):
            for key in list(table):
                entry = table[key]
                if (entry.expires if isinstance(entry, _Discovery) else entry) > now:
                    break
                del table[key]


def tables(node: Node) -> RoutingTables:
    """``node``'s routing tables, made at first use (a node that never routes has none). The
    first route request id comes from the node's EUI-64, not the air's random stream, whose
    draws the tables' making would otherwise shift."""
    found = node._routing
    if found is None:
        found = node._routing = RoutingTables(bytes(node.ieee)[0])
    return found


def is_router(node: Node) -> bool:
    """Whether ``node`` routes: the coordinator and routers, their receiver on when idle."""
    return node.rx_on_when_idle and node.logical_type in _ROUTERS


def _now() -> float:
    return asyncio.get_running_loop().time()


# -- sending ----------------------------------------------------------------------------------


def send(node: Node, dst: int, build: Build) -> asyncio.Future[bool]:
    """Send the NWK unicast ``build()`` makes to ``dst``, which is not a neighbour: through its
    route, or once route discovery found one (the frame is made, and so secured, only then:
    its frame counter follows those sent meanwhile). An end device sends it to its parent.
    The future: True once the first hop acknowledged it."""
    routing = tables(node)
    route = routing.routes.get(dst)
    if route is not None:
        routing.routes[dst] = routing.routes.pop(dst)  # most recently used
        return _send_via(node, dst, route, build)
    if not is_router(node):
        parent = node._parent_address()
        if parent is None:
            raise zigpy.exceptions.DeliveryError(
                f"{node!r} has no route to 0x{dst:04X} and no parent",
                status=t.NWKStatus.NWK_ROUTE_ERROR,
            )
        return _send_via(node, dst, Route(parent, LINK_COST), build)
    if routing.held >= PENDING_FRAMES:
        tables(node).stats.route_pending_overflow += 1
        raise zigpy.exceptions.DeliveryError(
            f"{node!r}: {routing.held} frames already await a route; frame for 0x{dst:04X}"
            " refused (NWK FRAME_NOT_BUFFERED)",
            status=t.NWKStatus.NWK_FRAME_NOT_BUFFERED,
        )
    if dst not in routing.searching:
        routing.expire(_now())
        if len(routing.discoveries) >= DISCOVERY_TABLE_SIZE:
            # its own discovery takes an entry too (the request's own, ZB 3.6.3.5.1)
            tables(node).stats.route_requests_dropped += 1
            raise zigpy.exceptions.DeliveryError(
                f"{node!r}: the route discovery table is full ({DISCOVERY_TABLE_SIZE} entries);"
                f" no route discovery for 0x{dst:04X} (NWK ROUTE_ERROR)",
                status=t.NWKStatus.NWK_ROUTE_ERROR,
            )
    future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    routing.pending.setdefault(dst, []).append(_Pending(build, future))
    routing.held += 1
    if dst not in routing.searching:
        _discover(node, routing, dst)
    return future


def _send_via(node: Node, dst: int, route: Route, build: Build) -> asyncio.Future[bool]:
    """Make the frame and send it to the route's next hop; a next hop that does not
    acknowledge it loses its route (the next send discovers another)."""
    frame = build()
    if frame is None:  # the frame counter is exhausted: nothing sent
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        done.set_result(False)
        return done
    sent = node._mac_send(dst, frame, hop=route.next_hop)
    sent.add_done_callback(functools.partial(_hop_done, node, dst, route))
    return sent


def _hop_done(node: Node, dst: int, route: Route, sent: asyncio.Future[bool]) -> None:
    if sent.cancelled() or sent.exception() is not None or sent.result():
        return
    routing = tables(node)
    if routing.routes.get(dst) is route:
        del routing.routes[dst]
        LOGGER.debug(
            "%r: next hop 0x%04X to 0x%04X failed; route dropped", node, route.next_hop, dst
        )


def _discover(node: Node, routing: RoutingTables, dst: int) -> None:
    """Broadcast a Route Request for ``dst`` (ZB 3.6.3.5.1) and give it
    nwkcRouteDiscoveryTime."""
    assert node.nwk is not None
    loop = asyncio.get_running_loop()
    request_id = routing.next_request_id()
    routing.searching[dst] = loop.call_later(ROUTE_DISCOVERY_TIME, _not_found, node, dst)
    # its own request, rebroadcast back to it, is not a new one
    routing.discoveries[node.nwk, request_id] = _Discovery(
        node.nwk, 0, _now() + ROUTE_DISCOVERY_TIME
    )
    tables(node).stats.route_discoveries += 1
    hdr = f.NwkHeader(
        0xFFFC,
        node.nwk,
        MAX_RADIUS,
        next(node._nwk_seq) & 0xFF,
        frame_type=f.NWK_COMMAND,
        discover_route=0,
    )
    _put(node, hdr, f.RouteRequest(request_id, dst, 0).encode())


def _not_found(node: Node, dst: int) -> None:
    """nwkcRouteDiscoveryTime passed without a Route Reply: the frames held for ``dst``
    fail."""
    routing = tables(node)
    routing.searching.pop(dst, None)
    waiting = routing.pending.pop(dst, [])
    routing.held -= len(waiting)
    tables(node).stats.route_discovery_failures += 1
    for held in waiting:
        if not held.future.done():
            held.future.set_exception(
                zigpy.exceptions.DeliveryError(
                    f"no route to 0x{dst:04X}: route discovery found none within"
                    f" nwkcRouteDiscoveryTime ({ROUTE_DISCOVERY_TIME:.0f} s)"
                    " (NWK ROUTE_DISCOVERY_FAILED)",
                    status=t.NWKStatus.NWK_ROUTE_DISCOVERY_FAILED,
                )
            )


def _found(node: Node, routing: RoutingTables, dst: int, route: Route) -> None:
    """A Route Reply for ``dst`` reached its originator: send what waited for it."""
    timer = routing.searching.pop(dst, None)
    if timer is not None:
        timer.cancel()
    waiting = routing.pending.pop(dst, [])
    routing.held -= len(waiting)
    for held in waiting:
        if held.future.done():
            continue
        try:
            sent = _send_via(node, dst, route, held.build)
        except zigpy.exceptions.DeliveryError as refused:
            held.future.set_exception(refused)
            continue
        sent.add_done_callback(functools.partial(_settle, held.future))


def _settle(future: asyncio.Future[bool], sent: asyncio.Future[bool]) -> None:
    if future.done():
        _consume(sent)
    elif sent.cancelled():
        future.cancel()
    elif sent.exception() is not None:
        future.set_exception(sent.exception())  # type: ignore[arg-type]
    else:
        future.set_result(sent.result())


def _consume(sent: asyncio.Future[bool]) -> None:
    """Retrieve the outcome of a frame nobody awaits."""
    if not sent.cancelled():
        sent.exception()


def _put(node: Node, hdr: f.NwkHeader, payload: bytes) -> None:
    """Send a NWK frame of the routing's own, nobody awaiting it."""
    try:
        sent = node._put_nwk(hdr, payload)
    except zigpy.exceptions.DeliveryError as refused:
        LOGGER.debug("%r: NWK command to 0x%04X not sent: %s", node, hdr.dst, refused)
        return
    if sent is not None:
        sent.add_done_callback(_consume)


def _learn(node: Node, routing: RoutingTables, dst: int, hop: int, cost: int) -> None:
    """Record the route to ``dst`` through the neighbour ``hop``, the least recently used
    route dropped (counted) when the table is full."""
    if dst == node.nwk:
        return
    if routing.routes.pop(dst, None) is None and len(routing.routes) >= ROUTE_TABLE_SIZE:
        del routing.routes[next(iter(routing.routes))]
        tables(node).stats.routes_evicted += 1
    routing.routes[dst] = Route(hop, cost)


# -- relaying ---------------------------------------------------------------------------------


def relay(node: Node, tx: Transmission, nwk: f.NwkHeader) -> None:
    """A NWK unicast for another node, sent to this router (ZB 3.6.3.3): checked, secured
    again with the radius one less, sent on; its source told if it cannot go further."""
    if not is_router(node) or tx.mac.dst != node.nwk or nwk.radius < 1 or node.nwk is None:
        return
    if not nwk.security:
        node.stats.nwk_unsecured += 1  # every NWK frame is secured (ZB 4.3.1.2)
        return
    unsecured = node._unsecure_nwk(tx)
    if unsecured is None:
        return
    if nwk.src == node.nwk:
        # its own address: a loop, or an insider's forgery, which secured again here would
        # reach a neighbour as this router's own frame (a Leave "from" the parent)
        node.stats.nwk_source_mismatch += 1
        return
    relayed = dataclasses.replace(nwk, radius=nwk.radius - 1, security=False)
    tables(node).stats.relayed += 1
    try:
        sent = node._put_nwk(relayed, unsecured.payload)
    except zigpy.exceptions.DeliveryError as refused:
        LOGGER.debug("%r: frame for 0x%04X not relayed: %s", node, nwk.dst, refused)
        return
    if sent is not None:
        sent.add_done_callback(functools.partial(_relay_done, node, nwk, unsecured.payload))


def _relay_done(node: Node, nwk: f.NwkHeader, payload: bytes, sent: asyncio.Future[bool]) -> None:
    """A relayed frame's outcome: a failed next hop (or no route) is reported to its source
    with a Network Status (ZB 3.6.3.3: route error), unless the frame was itself one. A frame
    held for a sleepy child that expired is not reported."""
    if sent.cancelled():
        return
    failure = sent.exception()
    if failure is None and sent.result():
        return
    if failure is not None:
        status = getattr(failure, "status", None)
        if status != t.NWKStatus.NWK_ROUTE_DISCOVERY_FAILED:
            return
        code = f.NWK_STATUS_NO_ROUTE_AVAILABLE
    else:
        code = f.NWK_STATUS_NON_TREE_LINK_FAILURE
    if nwk.src == node.nwk or node.nwk is None:
        return
    if nwk.frame_type == f.NWK_COMMAND and payload[:1] == bytes((f.NWK_CMD_NETWORK_STATUS,)):
        return
    tables(node).stats.network_status_sent += 1
    hdr = f.NwkHeader(
        nwk.src,
        node.nwk,
        MAX_RADIUS,
        next(node._nwk_seq) & 0xFF,
        frame_type=f.NWK_COMMAND,
        discover_route=0,
    )
    _put(node, hdr, f.NetworkStatus(code, nwk.dst).encode())


def broadcast(node: Node, nwk: f.NwkHeader, payload: bytes) -> bool:
    """A NWK broadcast heard (decrypted) on an air with a topology (ZB 3.6.5): True when it is
    a copy already heard (or this node's own, come back), dropped; else it is recorded in the
    broadcast transaction table and a router rebroadcasts it, its radius one less (a parent
    also holds it for its sleepy children when it goes to 0xFFFF)."""
    if nwk.src == node.nwk:
        tables(node).stats.broadcast_repeats += 1
        return True
    routing = tables(node)
    now = _now()
    routing.expire(now)
    key = (nwk.src, nwk.seq)
    if key in routing.broadcasts:
        tables(node).stats.broadcast_repeats += 1
        return True
    if len(routing.broadcasts) >= BROADCAST_TABLE_SIZE:
        tables(node).stats.broadcast_table_full += 1
        return True
    routing.broadcasts[key] = now + BROADCAST_DELIVERY_TIME
    if is_router(node) and nwk.radius > 1:
        tables(node).stats.rebroadcast += 1
        _put(node, dataclasses.replace(nwk, radius=nwk.radius - 1, security=False), payload)
    elif nwk.dst == 0xFFFF:
        node._relay_broadcast(nwk, payload)
    return False


# -- route commands -----------------------------------------------------------------------------


def is_routing_command(nwk: f.NwkHeader, payload: bytes) -> bool:
    """Whether a (decrypted) NWK frame is a Route Request, Route Reply or Network Status."""
    return nwk.frame_type == f.NWK_COMMAND and bool(payload) and payload[0] in _ROUTING_COMMANDS


def command(node: Node, tx: Transmission, nwk: f.NwkHeader, payload: bytes) -> None:
    """A routing command (NWK-secured, decrypted) for this node or broadcast; a malformed one
    is dropped and counted."""
    if not isinstance(tx.mac.src, int):
        return
    try:
        if payload[0] == f.NWK_CMD_ROUTE_REQUEST:
            _route_request(node, tx.mac.src, nwk, f.RouteRequest.decode(payload))
        elif payload[0] == f.NWK_CMD_ROUTE_REPLY:
            if nwk.dst == node.nwk:
                _route_reply(node, tx.mac.src, f.RouteReply.decode(payload))
        elif nwk.dst == node.nwk:
            status = f.NetworkStatus.decode(payload)
            tables(node).stats.network_status_received += 1
            routing = tables(node)
            if routing.routes.pop(status.dst, None) is not None:
                LOGGER.debug(
                    "%r: route to 0x%04X failed (status 0x%02X)", node, status.dst, status.status
                )
    except DecodeError:
        node.stats.malformed += 1


def _route_request(node: Node, sender: int, nwk: f.NwkHeader, request: f.RouteRequest) -> None:
    """ZB 3.6.3.5.2: note the request (once per originator and id, bounded), learn the
    route back to its originator, answer it when it seeks this node (or a sleepy child of
    it), else rebroadcast it once."""
    if not is_router(node) or node.nwk is None or nwk.src == node.nwk:
        return
    routing = tables(node)
    now = _now()
    routing.expire(now)
    cost = request.cost + LINK_COST
    key = (nwk.src, request.request_id)
    entry = routing.discoveries.get(key)
    if entry is not None:
        if cost < entry.cost:  # a cheaper path back to the originator
            entry.sender, entry.cost = sender, cost
            _learn(node, routing, nwk.src, sender, cost)
        return
    if len(routing.discoveries) >= DISCOVERY_TABLE_SIZE:
        tables(node).stats.route_requests_dropped += 1
        return
    routing.discoveries[key] = _Discovery(sender, cost, now + ROUTE_DISCOVERY_TIME)
    _learn(node, routing, nwk.src, sender, cost)
    if request.dst == node.nwk or node._answers_for(request.dst):
        reply = f.RouteReply(request.request_id, nwk.src, request.dst, 0)
        _send_reply(node, sender, reply)
    elif nwk.radius > 1:
        relayed = dataclasses.replace(nwk, radius=nwk.radius - 1, security=False)
        _put(node, relayed, dataclasses.replace(request, cost=cost).encode())


def _route_reply(node: Node, sender: int, reply: f.RouteReply) -> None:
    """ZB 3.6.3.5.3: learn the route to the responder through the neighbour the reply came
    from; the originator sends what it held, another router passes the reply on towards it,
    only a reply cheaper than the last it passed on for that request: route discovery
    entries an insider made point at each other (a forged MAC source) do not pass one reply
    round for as long as they live."""
    if not is_router(node) or node.nwk is None:
        return
    routing = tables(node)
    cost = reply.cost + LINK_COST
    route = Route(sender, cost)
    if reply.originator == node.nwk:
        if reply.responder in routing.searching:
            _learn(node, routing, reply.responder, sender, cost)
            _found(node, routing, reply.responder, routing.routes[reply.responder])
        return
    routing.expire(_now())
    entry = routing.discoveries.get((reply.originator, reply.request_id))
    if entry is None:
        return  # no request of that id passed here (or it expired)
    if entry.residual is not None and cost >= entry.residual:
        return  # no better than the reply passed on already
    entry.residual = cost
    _learn(node, routing, reply.responder, route.next_hop, route.cost)
    _send_reply(node, entry.sender, dataclasses.replace(reply, cost=cost))


def _send_reply(node: Node, to: int, reply: f.RouteReply) -> None:
    assert node.nwk is not None
    hdr = f.NwkHeader(
        to,
        node.nwk,
        MAX_RADIUS,
        next(node._nwk_seq) & 0xFF,
        frame_type=f.NWK_COMMAND,
        discover_route=0,
    )
    _put(node, hdr, reply.encode())
