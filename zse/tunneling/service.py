"""Tunneling over ZCL (SE 1.2 D.6): the server's and a client's asyncio shells.

The decisions are :mod:`zse.tunneling.protocol`'s; these shells decode, feed the core under
one lock, send what it returns through the endpoint (:func:`zse.zcl.endpoint.carry_out`, the
one delivery rule: APS-encrypted unicast), arm one timer for the tunnels' inactivity deadlines
(:class:`zse.zcl.timer.Timer`) and tell the application.

A *tunnel protocol* is what the application plugs in: :meth:`TunnelingServer.serve` registers a
handler for a protocol id and manufacturer code (a manufacturer-defined protocol is id
200-254 with the manufacturer's code, D.6.2.4.1). The handler gets the octets received on a
tunnel and may return octets to send back on it; the received octets are released from the
flow-control window when it returns. A client reads what arrives with
:meth:`TunnelingClient.read`.

Tunnels do not survive a restart of either end (see :mod:`zse.tunneling.protocol`): once the
other end has lost a tunnel (Transfer Data Error NO_SUCH_TUNNEL or WRONG_DEVICE, D.6.2.4.4, or
on a client its id granted again, D.6.2.5.1) :meth:`TunnelingClient.send`,
:meth:`TunnelingClient.read` and a waiting read raise :class:`TunnelLost`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import zigpy.types as t
from zigpy.exceptions import DeliveryError
from zigpy.zcl import foundation

from zse.errors import InvalidFrame
from zse.se.ids import TUNNELING, TunnelingAttribute, TunnelingClientCommand
from zse.se.types import STANDARD_PROTOCOL_MANUFACTURER
from zse.tunneling.protocol import (
    DEFAULT_MAX_HELD_FRAMES,
    DEFAULT_MAX_QUEUED,
    ProtocolKey,
    TransferFailed,
    TunnelClientProtocol,
    TunnelClosed,
    TunnelData,
    TunnelError,
    TunnelLost,
    TunnelOpened,
    TunnelServerProtocol,
    protocol_key,
)
from zse.tunneling.wire import Tunneling
from zse.zcl._tasks import keep_task
from zse.zcl.codec import decode_command, refusal
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import ZclPort, carry_out, request
from zse.zcl.events import EventStream
from zse.zcl.frame import Send, Step, ZclMessage
from zse.zcl.se_endpoint import SeEndpoint
from zse.zcl.timer import Timer

__all__ = [
    "TunnelEvent",
    "TunnelHandler",
    "TunnelingClient",
    "TunnelingServer",
]

LOGGER = logging.getLogger(__name__)

#: The closures that mean the other end lost the tunnel, and how :class:`TunnelLost` says so.
_LOST = {
    "lost": "the peer answered Transfer Data Error: it no longer has the tunnel",
    "superseded": "the server granted its id to a new tunnel",
    "left": "it left the network",
}

TunnelEvent = TunnelOpened | TunnelData | TunnelClosed | TransferFailed

TunnelHandler = Callable[[TunnelData], "Awaitable[bytes | None] | bytes | None"]
"""A tunnel protocol's handler: the octets received on a tunnel in, octets to send back out."""


class _Moves:
    """zigpy's listener on the endpoint's application: a device that joined again at another
    NWK address, or announced it (Device_annce, ZB 3.6.1.9; zigpy's ``device_joined`` when a
    known device's address changed), has its tunnels' frames sent there; a device that left
    (NWK Leave, ZB 3.4.4; zigpy's ``device_left``) has its tunnels closed."""

    def __init__(self, shell: _Shell) -> None:
        self._shell = shell

    def device_joined(self, device: Any) -> None:
        # one synchronous change of the tunnels' destination: nothing awaits in between
        self._shell.core.readdress(t.EUI64(device.ieee), int(device.nwk))

    def device_left(self, device: Any) -> None:
        # as synchronous: the tunnels go, their closures reach the application and the readers
        step = self._shell.core.left(t.EUI64(device.ieee))
        for event in step.events:
            self._shell._emit(event)
        self._shell._timer.update()


def _stopping() -> bool:
    """Whether the running task was cancelled (:meth:`_Shell.stop`), rather than a
    ``CancelledError`` coming from something it awaited (Python 3.11's ``cancelling``)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


class _Shell:
    """What both sides' shells share: decode, feed the core under the lock, carry out."""

    core: TunnelServerProtocol | TunnelClientProtocol

    def __init__(self, endpoint: ZclPort, what: str) -> None:
        self.endpoint = endpoint
        self._lock = asyncio.Lock()
        self._stream: EventStream[TunnelEvent] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._remove: Callable[[], None] | None = None
        self._timer = Timer(what, logger=LOGGER)
        self._handlers: dict[ProtocolKey, TunnelHandler] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Each tunnel's last handler task: the next of its data waits for it (in order).
        self._chains: dict[int, asyncio.Task[None]] = {}
        #: The tasks (handlers, a read's release) that have not yet released their data:
        #: tunnel id and octets (:meth:`stop` releases it for those it cancels).
        self._unreleased: dict[asyncio.Task[None], tuple[int, int]] = {}
        self._moves: _Moves | None = None

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _start(self) -> None:
        self._timer.add(self.core, self._after_timeout, lock=self._lock)
        self._timer.start()
        self._remove = self.endpoint.add_handler(TUNNELING, self._on_message)
        if isinstance(self.endpoint, SeEndpoint) and self._moves is None:
            self._moves = _Moves(self)
            self.endpoint.app.add_listener(self._moves)

    async def stop(self) -> None:
        """Stop serving the cluster and the timer; the handlers still running, or waiting for
        their tunnel's earlier data, are cancelled and awaited (none sends on a stopped
        service), their data released: a closed tunnel's slot is not kept for good."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        if self._moves is not None and isinstance(self.endpoint, SeEndpoint):
            self.endpoint.app.remove_listener(self._moves)
            self._moves = None
        running = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for task in running:  # their data: released, no Ready Data sent (the service stops)
            if (held := self._unreleased.pop(task, None)) is not None:
                self.core.release(*held)
        await self._timer.stop()

    async def send(self, tunnel_id: int, data: bytes) -> None:
        """Send ``data`` on a tunnel; with flow control what the peer has no room for yet is
        sent as its Acks and Ready Data come. :class:`TunnelError` for no such tunnel,
        :class:`TunnelLost` for one the other end lost.

        Returning means the frames sent so far were acknowledged, not that the peer's
        application took them; Transfer Data has no sequence number (D.6.2.4.3), so a resend
        after :class:`TunnelError` "not delivered" (a lost APS acknowledgement) may deliver the
        same octets twice."""
        async with self._lock:
            step = self.core.send(tunnel_id, data, self._now())
            try:
                await carry_out(self.endpoint, step, self._stream.emit)
            except DeliveryError as exc:  # no Ack comes: what is queued goes with the next send
                self.core.undelivered(step)
                raise TunnelError(f"tunnel {tunnel_id}: not delivered ({exc})") from exc
            finally:
                self._timer.update()

    def pending(self, tunnel_id: int) -> int:
        """Octets queued on a tunnel, not yet sent."""
        return self.core.pending(tunnel_id)

    async def readdress(self, ieee: t.EUI64, nwk: int) -> None:
        """The device ``ieee`` rejoined at ``nwk`` (ZB 3.6.1.9): its tunnels' frames go there
        (a frame from it at its new address does the same). On a zigpy application's endpoint
        (:class:`~zse.zcl.se_endpoint.SeEndpoint`) the shell does this itself when zigpy
        reports the device's new address (``device_joined``)."""
        async with self._lock:
            self.core.readdress(ieee, nwk)

    async def _after_timeout(self, step: Step) -> None:
        await self._carry(step)

    async def _carry(self, step: Step) -> foundation.Status | None:
        try:
            return await carry_out(self.endpoint, step, self._emit)
        except Exception as exc:  # a frame the radio could not deliver: the peer retries
            LOGGER.warning("tunneling frame not delivered: %s", exc)
            self.core.undelivered(step)
            return None

    def _emit(self, event: Any) -> None:
        self._stream.emit(event)
        if isinstance(event, TunnelData):
            handler = self._handlers.get(event.protocol)
            if handler is not None:
                self._chain(handler, event)

    def _chain(self, handler: TunnelHandler, event: TunnelData) -> None:
        """Run ``handler`` on ``event`` once the handler has run on the tunnel's data before
        it: a tunnel is a byte stream (D.6.2.4.3), so its replies go in the order its data
        came; other tunnels' data is not held up."""
        tunnel = event.tunnel_id
        before = self._chains.get(tunnel)

        async def run() -> None:
            if before is not None:  # done first, whatever its end
                await asyncio.wait([before])
            await self._run_handler(handler, event)

        task = asyncio.get_running_loop().create_task(run())
        self._chains[tunnel] = task
        self._unreleased[task] = (event.tunnel_id, len(event.data))

        def done(task: asyncio.Task[None]) -> None:
            if self._chains.get(tunnel) is task:  # the tunnel's last: nothing waits on it
                del self._chains[tunnel]

        task.add_done_callback(done)
        keep_task(self._tasks, task, LOGGER, "tunnel handler failed", logging.ERROR)

    def _released(self) -> None:
        """The running task releases its data now: :meth:`stop` has nothing to release."""
        if (task := asyncio.current_task()) is not None:
            self._unreleased.pop(task, None)

    async def _run_handler(self, handler: TunnelHandler, event: TunnelData) -> None:
        """Hand ``event`` to ``handler`` and send its reply. A failing handler, or one whose
        reply is not octets, is logged and nothing is sent: D.6.2.4.4's Transfer Data Error
        has no status for it, so the peer cannot be told; so is one ending in a
        ``CancelledError`` of its own (a cancelled future it awaited) while its task was not
        cancelled. A reply the tunnel cannot queue (its limit reached, or a peer that takes
        no data) is logged and dropped. The octets are released either way."""
        try:
            reply = handler(event)
            if inspect.isawaitable(reply):
                reply = await reply
            if reply is not None and not isinstance(reply, bytes | bytearray | memoryview):
                raise TypeError(f"the handler returned {type(reply).__name__}, not bytes")
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and _stopping():
                raise
            LOGGER.exception("tunnel %d handler failed", event.tunnel_id)
            reply = None
        async with self._lock:
            self._released()
            steps = [self.core.release(event.tunnel_id, len(event.data))]
            if reply and event.tunnel_id in self.core.tunnels:
                try:
                    steps.append(self.core.send(event.tunnel_id, bytes(reply), self._now()))
                except TunnelError as exc:  # the peer takes no data, or is not taking it
                    LOGGER.warning("tunnel %d: reply not sent: %s", event.tunnel_id, exc)
            for step in steps:
                await self._carry(step)
            self._timer.update()

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        if msg.from_server == isinstance(self.core, TunnelServerProtocol):
            return None  # the other side's command, not ours to take
        try:
            command, _ = decode_command(
                Tunneling, msg.command_id, msg.payload, from_server=msg.from_server
            )
        except InvalidFrame as exc:
            LOGGER.warning("bad Tunneling command from 0x%04X: %s", msg.src_nwk, exc)
            return refusal(exc)
        async with self._lock:
            status = await self._receive(msg, command)
            self._timer.update()
        return status

    async def _receive(self, msg: ZclMessage, command: Any) -> foundation.Status | None:
        return await self._carry(self.core.receive(msg, command, self._now()))


class TunnelingServer(_Shell):
    """The server side of Tunneling (SE D.6.2) on an endpoint (the ESI's, the hub's).

    ``close_tunnel_timeout`` (seconds) is also published as the CloseTunnelTimeout attribute.
    ``rng`` draws where the tunnel ids start (D.6.2.5.1.1.1), so that a restart does not hand
    out again ids the devices may still use. ``max_queued`` and ``max_held_frames`` bound
    what a tunnel queues to send and holds received for the handlers (zse's own bounds, see
    :class:`~zse.tunneling.protocol.TunnelServerProtocol`).
    """

    core: TunnelServerProtocol

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        max_incoming: int = 1500,
        max_tunnels: int = 8,
        max_per_device: int = 2,
        flow_control: bool = True,
        close_tunnel_timeout: int = 0xFFFF,
        rng: random.Random | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
        max_held_frames: int = DEFAULT_MAX_HELD_FRAMES,
    ) -> None:
        super().__init__(endpoint, "Tunneling server timer")
        self.core = TunnelServerProtocol(
            set(),
            max_incoming=max_incoming,
            max_tunnels=max_tunnels,
            max_per_device=max_per_device,
            flow_control=flow_control,
            close_tunnel_timeout=close_tunnel_timeout,
            rng=rng,
            max_queued=max_queued,
            max_held_frames=max_held_frames,
        )

    def serve(
        self,
        protocol_id: int,
        handler: TunnelHandler,
        *,
        manufacturer_code: int = STANDARD_PROTOCOL_MANUFACTURER,
    ) -> None:
        """Accept tunnels of a protocol and hand their data to ``handler``."""
        key = protocol_key(protocol_id, manufacturer_code)
        self.core.protocols.add(key)
        self._handlers[key] = handler

    async def start(self) -> None:
        """Publish CloseTunnelTimeout and serve the cluster."""
        self.endpoint.set_attribute(
            TUNNELING,
            TunnelingAttribute.CLOSE_TUNNEL_TIMEOUT,
            t.uint16_t(self.core.close_tunnel_timeout),
        )
        self._start()


class TunnelingClient(_Shell):
    """A device's side of Tunneling (SE D.6.3) towards the server at ``server``.
    ``max_queued`` and ``max_held_frames`` bound what a tunnel queues to send and holds
    received for :meth:`read` (zse's own bounds, see
    :class:`~zse.tunneling.protocol.TunnelServerProtocol`)."""

    core: TunnelClientProtocol

    def __init__(
        self,
        endpoint: ZclPort,
        server: Destination,
        *,
        max_incoming: int = 1500,
        close_timeout: float | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
        max_held_frames: int = DEFAULT_MAX_HELD_FRAMES,
    ) -> None:
        super().__init__(endpoint, "Tunneling client timer")
        self.server = server
        self.core = TunnelClientProtocol(
            max_incoming=max_incoming,
            close_timeout=close_timeout,
            max_queued=max_queued,
            max_held_frames=max_held_frames,
        )
        self._inbox: dict[int, asyncio.Queue[TunnelData | TunnelClosed]] = {}
        #: The data closed tunnels' read queues held when their id was granted again, with
        #: that id, oldest first (:meth:`unread`).
        self._unread: deque[tuple[int, bytes]] = deque()
        self._stream.on_event(self._queue)

    async def start(self) -> None:
        """Take the server's commands."""
        self._start()

    async def open(
        self,
        protocol_id: int,
        *,
        manufacturer_code: int = STANDARD_PROTOCOL_MANUFACTURER,
        flow_control: bool = True,
        timeout: float = 8.0,
    ) -> int:
        """Request a tunnel (D.6.2.4.1) and return its id; :class:`TunnelError` with the
        status that refused it, ``TimeoutError`` when the server does not answer.

        Asked again for a protocol it has a tunnel of, the server gives back that tunnel
        (renewed, its reads and queue kept). An id this client still held for another tunnel
        (the server restarted) closes that one first, ``"superseded"``: its waiting reader gets
        :class:`TunnelLost`, and what it had received and not read is kept for
        :meth:`unread` (so is a closed tunnel's of the same id). A tunnel granted after
        ``timeout`` is closed (Close Tunnel, D.6.2.4.2) rather than left to hold a slot on the
        server."""
        key = protocol_key(protocol_id, manufacturer_code)
        send = self.core.request(key, self.server, flow_control=flow_control)
        try:
            return await self._open(send, key, flow_control=flow_control, timeout=timeout)
        finally:  # a response coming after this (the timeout's) closes the tunnel it grants
            async with self._lock:
                await self._carry(self.core.settled())

    async def _open(
        self, send: Send, key: ProtocolKey, *, flow_control: bool, timeout: float
    ) -> int:
        """Send the Request Tunnel and take its response (:meth:`open`)."""
        reply, command = await self._ask(
            send, TunnelingClientCommand.REQUEST_TUNNEL_RESPONSE, "Request Tunnel", timeout
        )
        async with self._lock:
            tunnel_id = int(command.tunnel_id)
            before = self.core.tunnels.get(tunnel_id)
            step = self.core.opened(
                reply, command, protocol=key, flow_control=flow_control, now=self._now()
            )
            # the superseded tunnel's closure reaches its own queue before the new one's is made
            await self._carry(step)
            renewed = before is not None and self.core.tunnels.get(tunnel_id) is before
            if not renewed or tunnel_id not in self._inbox:  # a renewed tunnel keeps its reads
                # a new tunnel: not the queue of a closed one of the same id (its closure
                # would end the new one's reads; the core no longer counts its data), whose
                # unread data is kept for unread()
                old = self._inbox.get(tunnel_id)
                if not renewed and old is not None:
                    self._keep_unread(tunnel_id, old)
                self._inbox[tunnel_id] = asyncio.Queue()
            self._timer.update()
        return tunnel_id

    def unread(self, tunnel_id: int) -> list[bytes]:
        """The data received on earlier tunnels of this id that :meth:`read` had not returned
        when the id was granted to a new tunnel (a restarted server counting to the same id,
        D.6.2.5.1; ids are unique only while open, D.6.2.5.1.1.1), oldest first, each taken
        once. The server was told it was delivered (APS acknowledgement, with flow control
        Ack Transfer Data, D.6.2.4.5), so it stays the application's; :meth:`read` of the id
        reads the new tunnel. At most ``max_held_frames`` of them are kept, over every id,
        the oldest dropped (logged) beyond: zse's own bound."""
        mine = [data for owner, data in self._unread if owner == tunnel_id]
        if mine:
            self._unread = deque(item for item in self._unread if item[0] != tunnel_id)
        return mine

    def _keep_unread(self, tunnel_id: int, old: asyncio.Queue[TunnelData | TunnelClosed]) -> None:
        """Keep the data left in a closed tunnel's read queue for :meth:`unread`; its closure
        stays, for a read waiting on it."""
        left = [old.get_nowait() for _ in range(old.qsize())]
        for item in left:
            if isinstance(item, TunnelData):
                self._unread.append((tunnel_id, item.data))
            else:
                old.put_nowait(item)
        dropped = 0
        while len(self._unread) > self.core.max_held_frames:
            self._unread.popleft()
            dropped += 1
        if dropped:
            LOGGER.warning(
                "tunnel %d granted again: %d unread items of closed tunnels dropped (the "
                "application did not take them with unread())",
                tunnel_id,
                dropped,
            )

    async def supported_protocols(self, *, timeout: float = 8.0) -> list[ProtocolKey]:
        """The protocols the server serves, as (protocol id, manufacturer code), asked with
        Get Supported Tunnel Protocols (D.6.2.4.7) from offset 0 until the server says the list
        is complete; :class:`TunnelError` for an answer that is not one, ``TimeoutError`` when
        the server does not answer."""
        protocols: list[ProtocolKey] = []
        while True:
            send = self.core.get_supported(self.server, len(protocols))
            _, command = await self._ask(
                send,
                TunnelingClientCommand.SUPPORTED_TUNNEL_PROTOCOLS_RESPONSE,
                "Get Supported Tunnel Protocols",
                timeout,
            )
            part, complete = self.core.supported(command)
            protocols += part
            if complete or not part or len(protocols) > 0xFF:
                return protocols

    async def _ask(
        self, send: Send, answer: TunnelingClientCommand, what: str, timeout: float
    ) -> tuple[ZclMessage, Any]:
        """Send a request to the server and decode its response, the command ``answer`` (the
        request's :attr:`~zse.zcl.frame.Send.answers`: the endpoint takes no other command with
        its TSN for it); :class:`TunnelError` when it is not delivered or is answered
        otherwise: a Default Response (no Tunneling server there) or a bad frame."""
        name = answer.name.replace("_", " ").title()
        try:
            reply = await request(self.endpoint, send, timeout=timeout)
        except DeliveryError as exc:
            raise TunnelError(f"{what} not delivered: {exc}") from exc
        if not reply.is_cluster_command:
            status = reply.payload[1] if len(reply.payload) > 1 else None
            raise TunnelError(f"{what} answered with Default Response status {status}")
        try:
            command, _ = decode_command(
                Tunneling, reply.command_id, reply.payload, from_server=True
            )
        except InvalidFrame as exc:
            raise TunnelError(f"bad {name}: {exc}") from None
        return reply, command

    async def close(self, tunnel_id: int) -> None:
        """Close a tunnel (D.6.2.4.2)."""
        async with self._lock:
            step = self.core.close(tunnel_id)
            self._timer.update()
        await self._carry(step)

    async def read(self, tunnel_id: int, *, timeout: float | None = None) -> bytes:
        """The next octets received on a tunnel (released from the window as they are read);
        :class:`TunnelError` once the tunnel is closed, :class:`TunnelLost` once the other end
        lost it (data received before is read first)."""
        queue = self._inbox.get(tunnel_id)
        if queue is None:
            self.core.check(tunnel_id)
            raise TunnelError(f"no open tunnel {tunnel_id}")
        async with asyncio.timeout(timeout):  # not wait_for (Python 3.11, gh-86296)
            item = await queue.get()
        if isinstance(item, TunnelClosed):
            if self._inbox.get(tunnel_id) is queue:  # not a new tunnel's of the same id
                del self._inbox[tunnel_id]
            if item.reason in _LOST:
                raise TunnelLost(item, _LOST[item.reason])
            raise TunnelError(f"tunnel {tunnel_id} closed ({item.reason})")
        if self._inbox.get(tunnel_id) is queue:  # a superseded tunnel's window is gone
            # released in a task of the shell's, not awaited: the item is taken, and a read
            # cancelled from here on would lose its data for the application (a count never
            # released would hold the server's data off for good)
            release = asyncio.get_running_loop().create_task(
                self._release(tunnel_id, len(item.data))
            )
            self._unreleased[release] = (tunnel_id, len(item.data))
            keep_task(self._tasks, release, LOGGER, "tunnel release failed")
        return item.data

    async def _release(self, tunnel_id: int, octets: int) -> None:
        async with self._lock:
            self._released()
            await self._carry(self.core.release(tunnel_id, octets))

    def _queue(self, event: TunnelEvent) -> None:
        if isinstance(event, TunnelData | TunnelClosed):
            queue = self._inbox.get(event.tunnel_id)
            if queue is not None:
                queue.put_nowait(event)
