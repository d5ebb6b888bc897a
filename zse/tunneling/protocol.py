"""The sans-IO cores of Tunneling at the ZCL frame (SE 1.2 D.6), both sides.

:class:`TunnelServerProtocol` is the ESI's (or hub's) side: it answers Request Tunnel (D.6.2.4.1)
with a tunnel id or the status that refuses it (protocol not supported, flow control not supported,
no more ids when every tunnel is taken), closes a tunnel on Close Tunnel (D.6.2.4.2) from its owner
or after ``close_tunnel_timeout`` seconds without traffic (D.6.2.2.1; it then sends Tunnel Closure
Notification, D.6.2.5.6), and answers Get Supported Tunnel Protocols (D.6.2.4.7) with the protocols
it serves from the offset asked, at most :data:`PROTOCOLS_PER_RESPONSE` a response (D.6.2.5.5).
:class:`TunnelClientProtocol` is a device's side: it builds Request Tunnel and Get Supported Tunnel
Protocols, takes the responses, and forgets a tunnel on the notification or its own copy of the
timeout.

Both sides move data the same way (:class:`_TunnelEnds`):

- a Transfer Data (D.6.2.4.3 / D.6.2.5.2) is checked: an unknown tunnel id is answered Transfer
  Data Error NO_SUCH_TUNNEL, a tunnel of another device WRONG_DEVICE, data beyond the receiver's
  maximum incoming transfer size (or, with flow control, beyond the receive window left)
  DATA_OVERFLOW (D.6.2.4.4); so is, without flow control, data beyond ``max_queued`` octets
  held (not yet released by the application: zse's own bound, so that a peer cannot make a
  slow reader hold without end), and data beyond ``max_held_frames`` Transfer Data held (zse's
  own bound too: each is a handler's task or a read's item, and 1-octet frames would make
  ``max_queued`` of them); accepted data becomes a :class:`TunnelData` event;
- what a tunnel holds stays counted after it closes (Close Tunnel, the inactivity timeout, a
  loss), against its device, until the application has released it: closing a tunnel does not
  end a slow handler's tasks or empty a read queue. While a device's closed tunnels hold
  ``max_held_frames`` Transfer Data or ``max_queued`` octets, its Transfer Data are refused
  DATA_OVERFLOW on every tunnel and (on the server) its Request Tunnel is answered BUSY, so
  that a peer cannot pile up work by filling a tunnel, closing it and opening another (zse's
  own bound: data is taken only while the closed tunnels hold less, so a device holds less
  than one tunnel's bound more than its open tunnels may); not what a client leaves unread on
  a tunnel it closed itself (:meth:`TunnelClientProtocol.close`: nobody would read it down).
  On the server such a closed tunnel also keeps its slot, against ``max_tunnels`` and the
  device's ``max_per_device``, until its data is taken: the server holds at most
  ``max_tunnels`` tunnels' worth, open and closed together, however many devices close full
  tunnels. A device is its EUI-64: the server grants no tunnel to a sender whose EUI-64 its
  shell does not know (BUSY), so a device that moves keeps its bound and another at its old
  address is not held to it; a client names its server by EUI-64 when the response carried
  it, else by NWK address;
- with flow control on, the receiver answers each Transfer Data with Ack Transfer Data carrying
  the octets its receive buffer has left (D.6.2.4.5), 0 once it holds ``max_held_frames``
  Transfer Data; the data the application has not yet released (:meth:`_TunnelEnds.release`)
  occupies the buffer, and a receiver that had to say 0 sends Ready Data with the window once
  it has room again (D.6.2.4.6);
- a sender (:meth:`_TunnelEnds.send`) cuts the application's octets into Transfer Data of at
  most the peer's maximum incoming transfer size and the frame budget; with flow control it
  sends one at a time, no larger than the window the last Ack left, and the next only when the
  Ack (or, after an Ack of 0, the Ready Data) comes.

Every input refreshes the tunnel's inactivity deadline. Nothing here does I/O; the shells are
in :mod:`zse.tunneling.service`. ``now`` is seconds (the shell's loop clock).

Restarts. No tunnel survives a restart of either end: a tunnel is only the two ends' memory of
the Request Tunnel exchange (D.6.2.4.1 / D.6.2.5.1), and neither end stores it. So that a peer's
frames for a tunnel the server forgot are not taken for another tunnel, the server draws the
first tunnel id it hands out from its ``rng`` and counts on from there (ids are unique only
while open, D.6.2.5.1.1.1; zse also avoids reusing a recent one), and never hands out an id
still open. When the peer answers a Transfer Data with Transfer Data Error NO_SUCH_TUNNEL or
WRONG_DEVICE (D.6.2.4.4), it no longer has the tunnel: the tunnel is closed (``"lost"``), what
was queued on it is counted as dropped, and the application's later calls on it raise
:class:`TunnelLost` (those of the last :data:`MAX_LOST_TUNNELS` lost: zse's own bound). A
client granted an id it still holds for another tunnel (a server that restarted and counts
from the same point, D.6.2.5.1) closes the old tunnel (``"superseded"``) rather than let the
new one take its place unseen. Transfer Data has no sequence number
(D.6.2.4.3), so nothing here detects a frame delivered twice: an application resend after a
lost APS acknowledgement can deliver the same octets again.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final

import zigpy.types as t
from zigpy.zcl import foundation

from zse.se.ids import TUNNELING, TunnelingClientCommand, TunnelingServerCommand
from zse.se.types import (
    DEFAULT_CLOSE_TUNNEL_TIMEOUT,
    STANDARD_PROTOCOL_MANUFACTURER,
    TransferDataStatus,
    TunnelStatus,
)
from zse.tunneling.wire import SupportedProtocol, SupportedProtocolList, Tunneling
from zse.zcl.codec import encode_command
from zse.zcl.delivery import Destination, device_name
from zse.zcl.frame import Send, Step, ZclMessage

__all__ = [
    "NO_TUNNEL",
    "PROTOCOLS_PER_RESPONSE",
    "TransferFailed",
    "TunnelClientProtocol",
    "TunnelClosed",
    "TunnelData",
    "TunnelError",
    "TunnelLost",
    "TunnelOpened",
    "TunnelServerProtocol",
    "TunnelState",
    "protocol_key",
]

LOGGER = logging.getLogger(__name__)

#: The tunnel id of a refused Request Tunnel Response (no tunnel was made).
NO_TUNNEL: Final = 0xFFFF
#: The largest Transfer Data payload zse puts in one frame by default: an APS-secured unicast
#: carries 70 octets of ZCL payload (:func:`zse.se.frames.max_zcl_payload`; zse has no APS
#: fragmentation), the tunnel id takes 2 of them.
DEFAULT_CHUNK: Final = 64
#: The octets a tunnel may have queued (sent by the application, not yet taken by the peer)
#: before :meth:`_TunnelEnds.send` refuses more: a peer that never acknowledges (D.6.2.4.5),
#: or never reads, cannot make the queue grow without end.
DEFAULT_MAX_QUEUED: Final = 0x10000
#: The Transfer Data a tunnel may hold received and not yet released by the application (zse's
#: own bound, beyond which it answers DATA_OVERFLOW, or with flow control an Ack of 0): each is
#: a server handler's task or a client read's item. :data:`DEFAULT_MAX_QUEUED` octets in frames
#: of :data:`DEFAULT_CHUNK`, so that a peer sending as zse does meets both bounds together.
DEFAULT_MAX_HELD_FRAMES: Final = DEFAULT_MAX_QUEUED // DEFAULT_CHUNK
#: The lost tunnels one end remembers (so that calls on them raise :class:`TunnelLost`), the
#: oldest forgotten first: zse's own bound, so that a peer that opens tunnels and answers
#: NO_SUCH_TUNNEL again and again cannot fill the table with every id (a forgotten one's calls
#: raise :class:`TunnelError`, "no open tunnel"; its closure was told when it was lost).
MAX_LOST_TUNNELS: Final = 256
#: Protocols in one Supported Tunnel Protocols Response (3 octets each: 47 octets of payload,
#: within an APS-secured frame).
PROTOCOLS_PER_RESPONSE: Final = 15
#: The first manufacturer-defined tunnel protocol id (D.6.2.4.1.2): below it the manufacturer
#: code of Request Tunnel is ignored.
FIRST_MANUFACTURER_PROTOCOL: Final = 200

_S = Tunneling.ServerCommandDefs
_C = Tunneling.ClientCommandDefs

ProtocolKey = tuple[int, int]


def protocol_key(
    protocol_id: int, manufacturer_code: int = STANDARD_PROTOCOL_MANUFACTURER
) -> ProtocolKey:
    """How a tunnel protocol is named: its id and manufacturer code (0xFFFF: a standard one,
    D.6.2.4.1.2). The code is ignored for a standard protocol id (below
    :data:`FIRST_MANUFACTURER_PROTOCOL`, D.6.2.4.1.2): it is named with 0xFFFF whatever the code."""
    if not 0 <= protocol_id <= 0xFE:
        raise ValueError(f"tunnel protocol id {protocol_id} is out of range 0-254")
    if not 0 <= manufacturer_code <= 0xFFFF:
        raise ValueError(f"manufacturer code {manufacturer_code} is out of range")
    return _named(protocol_id, manufacturer_code)


def _named(protocol_id: int, manufacturer_code: int) -> ProtocolKey:
    """The protocol's name, its manufacturer code ignored below
    :data:`FIRST_MANUFACTURER_PROTOCOL` (D.6.2.4.1.2)."""
    if protocol_id < FIRST_MANUFACTURER_PROTOCOL:
        return (protocol_id, STANDARD_PROTOCOL_MANUFACTURER)
    return (protocol_id, manufacturer_code)


class TunnelError(Exception):
    """An application call that cannot be done: no such tunnel, or it is not open."""


class TunnelLost(TunnelError):
    """A tunnel the other end no longer has: it answered Transfer Data Error NO_SUCH_TUNNEL or
    WRONG_DEVICE (D.6.2.4.4), or (on a client) the server granted its id to a new tunnel
    (D.6.2.5.1): either way the other end restarted or forgot it; or the other end left the
    network (:meth:`_TunnelEnds.left`). Raised by every later call on the tunnel; ``dropped``
    is the octets queued on it that were never sent."""

    def __init__(self, closed: TunnelClosed, detail: str) -> None:
        self.tunnel_id = closed.tunnel_id
        self.device = closed.device
        self.reason = closed.reason
        self.dropped = closed.dropped
        super().__init__(
            f"tunnel {closed.tunnel_id} to {closed.device} lost ({detail}); "
            f"{closed.dropped} queued octets not sent"
        )


@dataclass(frozen=True, kw_only=True)
class TunnelOpened:
    """A tunnel was opened (the server granted it), or renewed: its device asked again for
    the protocol and got the same tunnel (D.6.2.5.1)."""

    tunnel_id: int
    device: str
    protocol: ProtocolKey
    flow_control: bool


@dataclass(frozen=True, kw_only=True)
class TunnelData:
    """Octets received on a tunnel (D.6.2.4.3 / D.6.2.5.2); with flow control they occupy the
    receive window until released."""

    tunnel_id: int
    device: str
    protocol: ProtocolKey
    data: bytes


@dataclass(frozen=True, kw_only=True)
class TunnelClosed:
    """A tunnel ended: ``reason`` is ``"closed"`` (Close Tunnel, D.6.2.4.2), ``"timeout"``
    (inactivity, D.6.2.2.1), ``"notified"`` (Tunnel Closure Notification, D.6.2.5.6),
    ``"lost"`` (the peer answered Transfer Data Error NO_SUCH_TUNNEL or WRONG_DEVICE,
    D.6.2.4.4: it restarted or forgot the tunnel), ``"superseded"`` (a client only: the server
    granted the same id to a new tunnel, D.6.2.5.1) or ``"left"`` (the peer left the network,
    ZB 3.4.4). ``dropped``: octets queued on the tunnel and never sent."""

    tunnel_id: int
    device: str
    reason: str
    dropped: int = 0


@dataclass(frozen=True, kw_only=True)
class TransferFailed:
    """The peer refused a Transfer Data (Transfer Data Error, D.6.2.4.4); what was queued on
    the tunnel is dropped (``dropped`` octets, besides the refused frame's own). After
    NO_SUCH_TUNNEL or WRONG_DEVICE a :class:`TunnelClosed` ``"lost"`` follows."""

    tunnel_id: int
    device: str
    status: TransferDataStatus
    dropped: int = 0


@dataclass(eq=False, kw_only=True)
class TunnelState:
    """One open tunnel as one end sees it."""

    tunnel_id: int
    peer: Destination
    peer_ieee: t.EUI64 | None
    protocol: ProtocolKey
    flow_control: bool
    #: The largest Transfer Data the peer takes, and the one this end takes.
    peer_max_incoming: int
    max_incoming: int
    deadline: float | None
    #: Receive side: octets held (not yet released by the application), in how many Transfer
    #: Data; 0 was announced.
    held: int = 0
    held_frames: int = 0
    stopped: bool = False
    #: Send side: octets the peer said it has room for, or None while waiting for its Ack.
    window: int | None = None
    #: The window the Transfer Data awaiting its Ack was sent in (back if it is not delivered).
    in_flight: int | None = None
    outbox: deque[bytes] = field(default_factory=deque)

    @property
    def device(self) -> str:
        """The peer's name (:func:`zse.zcl.delivery.device_name`)."""
        return device_name(self.peer_ieee, self.peer.address)


def _same_device(one: TunnelState, other: TunnelState) -> bool:
    """Whether two tunnels are of one device: its EUI-64 when both know it, else its NWK
    address (as :meth:`_TunnelEnds._is_peer` tells a frame's sender)."""
    if one.peer_ieee is not None and other.peer_ieee is not None:
        return bool(one.peer_ieee == other.peer_ieee)
    return one.peer.address == other.peer.address


def _queued(tunnel: TunnelState) -> int:
    """Octets queued on a tunnel and not yet sent."""
    return sum(len(chunk) for chunk in tunnel.outbox)


def _command(cmds: Any, name: str, **fields: Any) -> bytes:
    return encode_command(getattr(cmds, name).schema(**fields))


class _TunnelEnds:
    """Tunnels of one side and the data rules both sides share (see the module docstring)."""

    #: Commands this side sends, by name; the peer's are the other table.
    _OUT: Any
    _OUT_IDS: Any
    _PEER_IDS: Any

    def __init__(
        self,
        *,
        max_incoming: int,
        chunk: int,
        close_timeout: float | None,
        max_queued: int,
        max_held_frames: int,
    ) -> None:
        if not 1 <= max_incoming <= 0xFFFF:
            raise ValueError("maximum incoming transfer size must be 1-65535")
        if chunk < 1:
            raise ValueError("chunk must be at least 1 octet")
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1 octet")
        if max_held_frames < 1:
            raise ValueError("max_held_frames must be at least 1")
        self.max_incoming = max_incoming
        self.chunk = chunk
        self.max_queued = max_queued
        self.max_held_frames = max_held_frames
        self.close_timeout = close_timeout
        self.tunnels: dict[int, TunnelState] = {}
        #: Closed tunnels holding received data the application has not released, by id:
        #: what they hold counts against their device (:meth:`_closed_full`).
        self._draining: dict[int, TunnelState] = {}
        #: Tunnels the other end lost, until their id is granted again or the table holds
        #: :data:`MAX_LOST_TUNNELS` newer ones: why (for TunnelLost), oldest first.
        self._lost: dict[int, tuple[TunnelClosed, str]] = {}

    # -- the application ------------------------------------------------------------------

    def send(self, tunnel_id: int, data: bytes, now: float) -> Step:
        """Queue ``data`` on a tunnel and send what the peer has room for. :class:`TunnelError`,
        nothing queued, when the peer takes no data (its maximum incoming transfer size is 0,
        D.6.2.4.1 / D.6.2.5.1) or the tunnel already has :attr:`max_queued` octets queued (a
        peer that does not acknowledge, D.6.2.4.5, or does not read)."""
        tunnel = self._open(tunnel_id)
        if tunnel.peer_max_incoming == 0:
            raise TunnelError(
                f"tunnel {tunnel_id}: {tunnel.device} takes no data "
                "(its maximum incoming transfer size is 0)"
            )
        if (queued := _queued(tunnel)) >= self.max_queued:
            raise TunnelError(
                f"tunnel {tunnel_id}: {queued} octets already queued, "
                f"{tunnel.device} is not taking them"
            )
        size = max(1, min(self.chunk, tunnel.peer_max_incoming))
        for start in range(0, len(data), size):
            tunnel.outbox.append(bytes(data[start : start + size]))
        self._touch(tunnel, now)
        return Step(sends=tuple(self._flush(tunnel)))

    def release(self, tunnel_id: int, octets: int, frames: int = 1) -> Step:
        """The application consumed ``octets`` of received data, from ``frames`` Transfer
        Data (:class:`TunnelData` events): room to hold again (with flow control in the
        receive window, and Ready Data if the peer was told to stop, D.6.2.4.6)."""
        tunnel = self.tunnels.get(tunnel_id)
        if tunnel is None:
            return self._release_closed(tunnel_id, octets, frames)
        tunnel.held = max(0, tunnel.held - octets)
        tunnel.held_frames = max(0, tunnel.held_frames - frames)
        return Step(sends=tuple(self._ready([tunnel])))

    def _release_closed(self, tunnel_id: int, octets: int, frames: int) -> Step:
        """Data of a closed tunnel taken by the application: no longer counted against its
        device, whose stopped tunnels may have room again (Ready Data, D.6.2.4.6)."""
        closed = self._draining.get(tunnel_id)
        if closed is None:
            return Step()
        closed.held = max(0, closed.held - octets)
        closed.held_frames = max(0, closed.held_frames - frames)
        if not closed.held_frames:
            del self._draining[tunnel_id]
        kin = [t_ for t_ in self.tunnels.values() if _same_device(t_, closed)]
        return Step(sends=tuple(self._ready(kin)))

    def _ready(self, tunnels: list[TunnelState]) -> list[Send]:
        """Ready Data (D.6.2.4.6) for each of ``tunnels`` whose peer was told 0 octets left
        (flow control) and that has room again."""
        sends = []
        for tunnel in tunnels:
            if tunnel.flow_control and tunnel.stopped and (left := self._room(tunnel)) > 0:
                tunnel.stopped = False
                sends.append(self._to(tunnel, "ready_data", number_of_bytes_left=left))
        return sends

    def pending(self, tunnel_id: int) -> int:
        """Octets queued on a tunnel and not yet sent."""
        return _queued(self._open(tunnel_id))

    def undelivered(self, step: Step) -> None:
        """The radio could not deliver (all of) ``step``: no Ack comes for a Transfer Data the
        peer did not get (D.6.2.4.5), so a flow-controlled tunnel waiting for one gets back
        the window that frame went in, and later sends go instead of queueing for good. The
        frame's octets are not sent again (the application was told, or the tunnel's data
        was a reply)."""
        for send in step.sends:
            if send.command_id != self._OUT_IDS.TRANSFER_DATA or send.to is None:
                continue
            tunnel = self.tunnels.get(int.from_bytes(send.payload[:2], "little"))
            if tunnel is not None and tunnel.window is None and tunnel.in_flight is not None:
                tunnel.window, tunnel.in_flight = tunnel.in_flight, None

    def readdress(self, ieee: t.EUI64, nwk: int) -> None:
        """The device ``ieee`` is at ``nwk`` now (it rejoined, ZB 3.6.1.9): its tunnels' frames
        go there."""
        for tunnel in self.tunnels.values():
            if tunnel.peer_ieee == ieee and tunnel.peer.address != nwk:
                tunnel.peer = Destination.device(nwk, tunnel.peer.endpoint)

    def left(self, ieee: t.EUI64) -> Step:
        """The device ``ieee`` left the network (NWK Leave, ZB 3.4.4): its tunnels are closed,
        ``"left"``, with no frame to a device no longer there, rather than hold their slots
        until the inactivity timeout (D.6.2.2.1); later calls on them raise :class:`TunnelLost`."""
        events = []
        for tunnel in [t_ for t_ in self.tunnels.values() if t_.peer_ieee == ieee]:
            closed = self._closed(tunnel, "left")
            self._note_lost(closed, "it left the network")
            LOGGER.info("tunnel %d of %s closed: it left the network", tunnel.tunnel_id, ieee)
            events.append(closed)
        return Step(events=tuple(events))

    # -- timers ---------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest inactivity deadline of the open tunnels."""
        deadlines = [t_.deadline for t_ in self.tunnels.values() if t_.deadline is not None]
        return min(deadlines, default=None)

    def handle_timeout(self, now: float) -> Step:
        """Close the tunnels idle for their timeout (D.6.2.2.1)."""
        sends: list[Send] = []
        events: list[Any] = []
        for tunnel in list(self.tunnels.values()):
            if tunnel.deadline is not None and tunnel.deadline <= now:
                LOGGER.info(
                    "tunnel %d of %s closed after inactivity", tunnel.tunnel_id, tunnel.device
                )
                sends.extend(self._timed_out(tunnel))
                events.append(self._closed(tunnel, "timeout"))
        return Step(sends=tuple(sends), events=tuple(events))

    def _timed_out(self, tunnel: TunnelState) -> list[Send]:
        return []

    # -- received data commands -----------------------------------------------------------

    def _data_command(self, msg: ZclMessage, command: Any, now: float) -> Step | None:
        """Transfer Data, Transfer Data Error, Ack Transfer Data and Ready Data (both sides);
        None for another command."""
        cid = msg.command_id
        ids = self._PEER_IDS
        if cid not in (
            ids.TRANSFER_DATA,
            ids.TRANSFER_DATA_ERROR,
            ids.ACK_TRANSFER_DATA,
            ids.READY_DATA,
        ):
            return None
        if cid == ids.TRANSFER_DATA:
            return self._transfer_data(msg, int(command.tunnel_id), bytes(command.data), now)
        tunnel = self._owned(msg, int(command.tunnel_id))
        if tunnel is None:
            return Step(status=foundation.Status.NOT_FOUND)
        self._touch(tunnel, now)
        if cid == ids.TRANSFER_DATA_ERROR:
            return self._transfer_error(tunnel, command)
        # Ack Transfer Data / Ready Data: the peer's window (D.6.2.4.5-6)
        if not tunnel.flow_control:
            return Step()
        tunnel.window = int(command.number_of_bytes_left)
        tunnel.in_flight = None
        return Step(sends=tuple(self._flush(tunnel)))

    def _transfer_error(self, tunnel: TunnelState, command: Any) -> Step:
        """The peer refused our Transfer Data (D.6.2.4.4): what is queued is dropped. After
        DATA_OVERFLOW the tunnel stays open and no Ack comes for the refused frame: with flow
        control the window is the peer's maximum incoming transfer size again (its Ack to the
        next Transfer Data says what is left), so later sends go. After NO_SUCH_TUNNEL or
        WRONG_DEVICE the peer has no such tunnel of ours (it restarted, or its id is another
        device's now): the tunnel is closed ``"lost"``, and later calls on it raise
        :class:`TunnelLost`."""
        try:
            status = TransferDataStatus(int(command.transfer_data_status))
        except ValueError:
            return Step(status=foundation.Status.INVALID_VALUE)
        dropped = _queued(tunnel)
        tunnel.outbox.clear()
        if tunnel.flow_control:
            tunnel.window = tunnel.peer_max_incoming
            tunnel.in_flight = None
        event = TransferFailed(
            tunnel_id=tunnel.tunnel_id, device=tunnel.device, status=status, dropped=dropped
        )
        if status is TransferDataStatus.DATA_OVERFLOW:
            return Step(events=(event,))
        closed = replace(self._closed(tunnel, "lost"), dropped=dropped)  # queue cleared above
        self._note_lost(closed, f"the peer answered {status.name}")
        LOGGER.warning(
            "tunnel %d of %s lost: the peer answered %s; %d queued octets dropped",
            tunnel.tunnel_id,
            tunnel.device,
            status.name,
            dropped,
        )
        return Step(events=(event, closed))

    def _transfer_data(self, msg: ZclMessage, tunnel_id: int, data: bytes, now: float) -> Step:
        tunnel = self.tunnels.get(tunnel_id)
        status: TransferDataStatus | None = None
        if tunnel is None:
            status = TransferDataStatus.NO_SUCH_TUNNEL
        elif not self._is_peer(tunnel, msg):
            status = TransferDataStatus.WRONG_DEVICE
        elif len(data) > tunnel.max_incoming or len(data) > self._room(tunnel):
            status = TransferDataStatus.DATA_OVERFLOW
        if status is not None:
            LOGGER.info(
                "transfer data on tunnel %d from %s refused: %s",
                tunnel_id,
                device_name(msg.src_ieee, msg.src_nwk),
                status.name,
            )
            error = self._reply(
                msg, "transfer_data_error", tunnel_id=tunnel_id, transfer_data_status=status
            )
            return Step(sends=(error,))
        assert tunnel is not None
        self._follow(tunnel, msg)
        self._touch(tunnel, now)
        sends: list[Send] = []
        tunnel.held += len(data)
        tunnel.held_frames += bool(data)  # an empty one is not held (no event below)
        if tunnel.flow_control:
            left = self._room(tunnel)
            tunnel.stopped = left == 0
            sends.append(
                self._reply(
                    msg, "ack_transfer_data", tunnel_id=tunnel_id, number_of_bytes_left=left
                )
            )
        if not data:  # it keeps the tunnel open; no octets: nothing for a reader (b"" would
            # read as the end of a stream) or a handler
            return Step(sends=tuple(sends))
        event = TunnelData(
            tunnel_id=tunnel_id, device=tunnel.device, protocol=tunnel.protocol, data=data
        )
        return Step(sends=tuple(sends), events=(event,))

    # -- helpers --------------------------------------------------------------------------

    def _room(self, tunnel: TunnelState) -> int:
        """Octets the tunnel takes before the application releases what it holds: the window
        left with flow control (D.6.2.4.5); without it, :attr:`max_queued` less what is held
        (zse's own bound: nothing else stops the peer's data, D.6.2.4.3). No room once it
        holds :attr:`max_held_frames` Transfer Data (zse's own bound on their number), nor
        while its device's closed tunnels hold their bound (:meth:`_closed_full`)."""
        if tunnel.held_frames >= self.max_held_frames or self._closed_full(
            lambda closed: _same_device(closed, tunnel)
        ):
            return 0
        limit = tunnel.max_incoming if tunnel.flow_control else self.max_queued
        return limit - tunnel.held

    def _add(
        self,
        peer: ZclMessage,
        *,
        tunnel_id: int,
        protocol: ProtocolKey,
        flow_control: bool,
        command: Any,
        now: float,
    ) -> TunnelState:
        """A new open tunnel with the sender of ``peer``, whose request or response
        ``command`` gave its maximum incoming transfer size."""
        peer_max = int(command.maximum_incoming_transfer_size)
        tunnel = TunnelState(
            tunnel_id=tunnel_id,
            peer=Destination.device(peer.src_nwk, peer.src_ep),
            peer_ieee=peer.src_ieee,
            protocol=protocol,
            flow_control=flow_control,
            peer_max_incoming=peer_max,
            max_incoming=self.max_incoming,
            deadline=None,
            window=peer_max,
        )
        self._touch(tunnel, now)
        self.tunnels[tunnel_id] = tunnel
        self._lost.pop(tunnel_id, None)
        # a client granted the id of a closed tunnel again reads the new one (the server
        # never grants an id still draining, :meth:`TunnelServerProtocol._free_id`)
        self._draining.pop(tunnel_id, None)
        return tunnel

    def _closed_full(self, of_device: Callable[[TunnelState], bool]) -> bool:
        """Whether the closed tunnels ``of_device`` accepts hold :attr:`max_held_frames`
        Transfer Data or :attr:`max_queued` octets not yet released (zse's own bound)."""
        mine = [closed for closed in self._draining.values() if of_device(closed)]
        return (
            sum(closed.held_frames for closed in mine) >= self.max_held_frames
            or sum(closed.held for closed in mine) >= self.max_queued
        )

    def _renew(
        self,
        tunnel: TunnelState,
        peer: ZclMessage,
        *,
        flow_control: bool,
        command: Any,
        now: float,
    ) -> TunnelOpened:
        """An open tunnel granted again (D.6.2.5.1): the request's or response's flow control
        and maximum incoming transfer size; the send window is that maximum (the other end's
        tunnel state is new), what is queued stays queued."""
        self._follow(tunnel, peer)
        peer_max = int(command.maximum_incoming_transfer_size)
        tunnel.flow_control = flow_control
        tunnel.peer_max_incoming = peer_max
        tunnel.window, tunnel.in_flight = peer_max, None
        self._touch(tunnel, now)
        return TunnelOpened(
            tunnel_id=tunnel.tunnel_id,
            device=tunnel.device,
            protocol=tunnel.protocol,
            flow_control=flow_control,
        )

    def _flush(self, tunnel: TunnelState) -> list[Send]:
        """The Transfer Data the peer has room for now."""
        sends = []
        while tunnel.outbox:
            chunk = tunnel.outbox.popleft()
            if tunnel.flow_control:
                if not tunnel.window:  # waiting for an Ack, or told 0: wait for Ready Data
                    tunnel.outbox.appendleft(chunk)
                    break
                if len(chunk) > tunnel.window:  # what fits now; the rest after the Ack
                    tunnel.outbox.appendleft(chunk[tunnel.window :])
                    chunk = chunk[: tunnel.window]
                tunnel.in_flight = tunnel.window
                tunnel.window = None  # one at a time: wait for the Ack (D.6.2.4.5)
            sends.append(self._to(tunnel, "transfer_data", data=t.Bytes(chunk)))
        return sends

    def _open(self, tunnel_id: int) -> TunnelState:
        tunnel = self.tunnels.get(tunnel_id)
        if tunnel is None:
            self.check(tunnel_id)
            raise TunnelError(f"no open tunnel {tunnel_id}")
        return tunnel

    def _note_lost(self, closed: TunnelClosed, detail: str) -> None:
        """Remember a lost tunnel for :meth:`check`, the oldest forgotten beyond
        :data:`MAX_LOST_TUNNELS`."""
        self._lost.pop(closed.tunnel_id, None)
        self._lost[closed.tunnel_id] = (closed, detail)
        while len(self._lost) > MAX_LOST_TUNNELS:
            del self._lost[next(iter(self._lost))]

    def check(self, tunnel_id: int) -> None:
        """:class:`TunnelLost` if the other end lost this tunnel (it stays so until the id is
        granted again, or :data:`MAX_LOST_TUNNELS` tunnels were lost since); nothing
        otherwise."""
        lost = self._lost.get(tunnel_id)
        if lost is not None:
            raise TunnelLost(*lost)

    def _closed(self, tunnel: TunnelState, reason: str) -> TunnelClosed:
        """Forget an open tunnel; what it holds stays counted until released."""
        self.tunnels.pop(tunnel.tunnel_id, None)
        if tunnel.held_frames:
            self._draining[tunnel.tunnel_id] = tunnel
        return TunnelClosed(
            tunnel_id=tunnel.tunnel_id,
            device=tunnel.device,
            reason=reason,
            dropped=_queued(tunnel),
        )

    def _owned(self, msg: ZclMessage, tunnel_id: int) -> TunnelState | None:
        tunnel = self.tunnels.get(tunnel_id)
        if tunnel is None or not self._is_peer(tunnel, msg):
            return None
        self._follow(tunnel, msg)
        return tunnel

    def _follow(self, tunnel: TunnelState, msg: ZclMessage) -> None:
        """A frame of the tunnel's peer (by EUI-64) from another NWK address: it rejoined
        there, and the tunnel's frames go there from now on."""
        if msg.src_ieee is not None and tunnel.peer_ieee == msg.src_ieee:
            self.readdress(msg.src_ieee, msg.src_nwk)

    @staticmethod
    def _is_peer(tunnel: TunnelState, msg: ZclMessage) -> bool:
        if tunnel.peer_ieee is not None and msg.src_ieee is not None:
            return bool(tunnel.peer_ieee == msg.src_ieee)
        return tunnel.peer.address == msg.src_nwk

    def _touch(self, tunnel: TunnelState, now: float) -> None:
        if self.close_timeout is not None:
            tunnel.deadline = now + self.close_timeout

    def _to(self, tunnel: TunnelState, name: str, **fields: Any) -> Send:
        return Send(
            cluster_id=TUNNELING,
            command_id=getattr(self._OUT_IDS, name.upper()),
            payload=_command(self._OUT, name, tunnel_id=tunnel.tunnel_id, **fields),
            to=tunnel.peer,
            default_response=False,
        )

    def _reply(self, msg: ZclMessage, name: str, **fields: Any) -> Send:
        return Send(
            cluster_id=TUNNELING,
            command_id=getattr(self._OUT_IDS, name.upper()),
            payload=_command(self._OUT, name, **fields),
            reply_to=msg,
        )


class TunnelServerProtocol(_TunnelEnds):
    """The server's tunnels (D.6.2): grants, data, closing and the inactivity timeout.

    ``protocols`` are the protocols served (:func:`protocol_key`); ``max_tunnels`` how many
    slots there are: a tunnel takes one while open, and once closed until the application has
    taken its data (beyond: NO_MORE_TUNNEL_IDS, D.6.2.5.1.1.2, as Silicon Labs' Tunneling
    server answers when every tunnel slot is taken, a closed tunnel's slot staying taken
    until its clean-up); ``max_per_device`` how many of them one device may hold (beyond:
    NO_MORE_TUNNEL_IDS for it: one device asking from many endpoints or for many protocols, or
    closing tunnels that each hold a frame, cannot take every slot from the others). BUSY,
    the temporary refusal (Silicon Labs' server sends it while its application says busy, its
    address table is full or it cannot look up the requester's EUI-64), answers a sender
    whose EUI-64 the shell does not know (``src_ieee`` None: every tunnel is its device's by
    EUI-64) and a device whose closed tunnels still hold their bound for the application
    (see the module docstring);
    ``close_tunnel_timeout`` the CloseTunnelTimeout attribute, seconds (D.6.2.2.1,
    1-65535). ``rng`` draws where the tunnel ids start (D.6.2.5.1.1.1): ids then count up from
    there, skipping those still open, wrapping before :data:`NO_TUNNEL`. A restarted server
    thus does not hand out again the ids its previous run had open, whose devices may still use
    them (see the module docstring). ``max_queued``: the octets a tunnel may have queued before
    ``send()`` refuses more (:data:`DEFAULT_MAX_QUEUED`), and without flow control the octets
    received it may hold before the application releases them (beyond: DATA_OVERFLOW);
    ``max_held_frames`` the Transfer Data received it may hold so (beyond: DATA_OVERFLOW, or
    with flow control an Ack of 0; :data:`DEFAULT_MAX_HELD_FRAMES`). Both bounds are zse's own.
    """

    _OUT = _C
    _OUT_IDS = TunnelingClientCommand
    _PEER_IDS = TunnelingServerCommand

    def __init__(
        self,
        protocols: set[ProtocolKey],
        *,
        max_incoming: int = 1500,
        max_tunnels: int = 8,
        max_per_device: int = 2,
        flow_control: bool = True,
        close_tunnel_timeout: int = DEFAULT_CLOSE_TUNNEL_TIMEOUT,
        chunk: int = DEFAULT_CHUNK,
        rng: random.Random | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
        max_held_frames: int = DEFAULT_MAX_HELD_FRAMES,
    ) -> None:
        if not 1 <= close_tunnel_timeout <= 0xFFFF:
            raise ValueError("CloseTunnelTimeout must be 1-65535 seconds (D.6.2.2.1)")
        super().__init__(
            max_incoming=max_incoming,
            chunk=chunk,
            close_timeout=close_tunnel_timeout,
            max_queued=max_queued,
            max_held_frames=max_held_frames,
        )
        self.protocols = set(protocols)
        if max_per_device < 1:
            raise ValueError(f"a device may hold at least 1 tunnel, not {max_per_device}")
        self.max_tunnels = max_tunnels
        self.max_per_device = max_per_device
        self.flow_control = flow_control
        self.close_tunnel_timeout = close_tunnel_timeout
        rng = rng or random.Random()  # noqa: S311 -- spreading ids, not secrecy
        #: The next tunnel id to try.
        self._next_id = rng.randrange(NO_TUNNEL)

    def receive(self, msg: ZclMessage, command: Any, now: float) -> Step:
        """Act on a command a client sent."""
        if msg.command_id == TunnelingServerCommand.REQUEST_TUNNEL:
            return self._request(msg, command, now)
        if msg.command_id == TunnelingServerCommand.GET_SUPPORTED_TUNNEL_PROTOCOLS:
            return Step(sends=(self._supported(msg, int(command.protocol_offset)),))
        if msg.command_id == TunnelingServerCommand.CLOSE_TUNNEL:
            tunnel = self._owned(msg, int(command.tunnel_id))
            if tunnel is None:
                return Step(status=foundation.Status.NOT_FOUND)
            return Step(events=(self._closed(tunnel, "closed"),))
        step = self._data_command(msg, command, now)
        return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND) if step is None else step

    def _request(self, msg: ZclMessage, command: Any, now: float) -> Step:
        """Request Tunnel (D.6.2.4.1) -> Request Tunnel Response (D.6.2.5.1). A client that
        asks again for a protocol it has a tunnel of (it restarted, or its response was lost)
        gets that tunnel back, renewed (:meth:`_renew_request`), not a second one."""
        if int(command.flow_control_support) not in (0, 1):
            # a Boolean is 0x00 or 0x01 (0xFF: invalid); zigpy decodes another octet as an
            # undefined member, which is truthy: a field with an invalid value
            return Step(status=foundation.Status.INVALID_FIELD)
        key = _named(int(command.protocol_id), int(command.manufacturer_code))
        wants_flow = bool(command.flow_control_support)
        status = TunnelStatus.SUCCESS
        if key not in self.protocols:
            status = TunnelStatus.PROTOCOL_NOT_SUPPORTED
        elif wants_flow and not self.flow_control:
            status = TunnelStatus.FLOW_CONTROL_NOT_SUPPORTED
        elif msg.src_ieee is None:
            # the shell does not know the sender's EUI-64 (zigpy's device table has no device
            # at its NWK address): a tunnel, and what it holds once closed, is its device's by
            # EUI-64, so none is granted until it is known; BUSY, as Silicon Labs' server
            # answers when it cannot look up the requester's EUI-64: try again later
            status = TunnelStatus.BUSY
        elif (held := self._held(msg, key)) is not None:
            return self._renew_request(msg, held, command, now)
        elif (
            len(self.tunnels) + len(self._draining) >= self.max_tunnels
            or self._holds(msg) >= self.max_per_device
        ):
            # every slot is taken, by an open tunnel or a closed one whose data the
            # application has not taken (D.6.2.5.1.1.2), or every slot this device may hold:
            # no more tunnel ids (for it)
            status = TunnelStatus.NO_MORE_TUNNEL_IDS
        elif self._closed_full(lambda closed: self._is_peer(closed, msg)):
            # its closed tunnels' data is still with the application: try again later
            status = TunnelStatus.BUSY
        tunnel_id = NO_TUNNEL
        if status is TunnelStatus.SUCCESS:
            found = self._free_id()
            if found is None:
                status = TunnelStatus.NO_MORE_TUNNEL_IDS
            else:
                tunnel_id = found
        reply = self._reply(
            msg,
            "request_tunnel_response",
            tunnel_id=tunnel_id,
            tunnel_status=status,
            maximum_incoming_transfer_size=self.max_incoming,
        )
        if status is not TunnelStatus.SUCCESS:
            LOGGER.info(
                "tunnel request from %s refused: %s",
                device_name(msg.src_ieee, msg.src_nwk),
                status.name,
            )
            return Step(sends=(reply,))
        tunnel = self._add(
            msg,
            tunnel_id=tunnel_id,
            protocol=key,
            flow_control=wants_flow,
            command=command,
            now=now,
        )
        opened = TunnelOpened(
            tunnel_id=tunnel_id, device=tunnel.device, protocol=key, flow_control=wants_flow
        )
        return Step(sends=(reply,), events=(opened,))

    def _holds(self, msg: ZclMessage) -> int:
        """How many slots the requesting device holds (any endpoint, any protocol): its open
        tunnels and its closed ones whose data the application has not taken."""
        mine = [*self.tunnels.values(), *self._draining.values()]
        return sum(1 for tunnel in mine if self._is_peer(tunnel, msg))

    def _held(self, msg: ZclMessage, key: ProtocolKey) -> TunnelState | None:
        """The open tunnel of the requesting device (EUI-64, else NWK address), from the same
        endpoint, for the same protocol; None if it has none."""
        for tunnel in self.tunnels.values():
            if (
                tunnel.protocol == key
                and tunnel.peer.endpoint == msg.src_ep
                and self._is_peer(tunnel, msg)
            ):
                return tunnel
        return None

    def _renew_request(
        self, msg: ZclMessage, tunnel: TunnelState, command: Any, now: float
    ) -> Step:
        """Request Tunnel from a device for a protocol it has a tunnel of: answered SUCCESS
        with that tunnel's id and its inactivity timer restarted, as GBCS v2.0 10.2.2 (quoted
        by Silicon Labs' Tunneling server) asks, rather than a new tunnel each time, which
        would hold a slot for CloseTunnelTimeout (:meth:`_renew`)."""
        opened = self._renew(
            tunnel, msg, flow_control=bool(command.flow_control_support), command=command, now=now
        )
        LOGGER.info("tunnel %d of %s requested again: renewed", tunnel.tunnel_id, tunnel.device)
        reply = self._reply(
            msg,
            "request_tunnel_response",
            tunnel_id=tunnel.tunnel_id,
            tunnel_status=TunnelStatus.SUCCESS,
            maximum_incoming_transfer_size=self.max_incoming,
        )
        return Step(sends=(reply,), events=(opened,))

    def supported(self) -> list[ProtocolKey]:
        """The protocols served, in the order Supported Tunnel Protocols lists them: by
        protocol id, then manufacturer code."""
        return sorted(self.protocols)

    def _supported(self, msg: ZclMessage, offset: int) -> Send:
        """Supported Tunnel Protocols Response (D.6.2.5.5) from ``offset`` on."""
        every = self.supported()
        part = every[offset : offset + PROTOCOLS_PER_RESPONSE]
        return self._reply(
            msg,
            "supported_tunnel_protocols_response",
            protocol_list_complete=t.Bool(offset + len(part) >= len(every)),
            protocol_count=len(part),
            protocol_list=SupportedProtocolList(
                SupportedProtocol(manufacturer_code=code, protocol_id=pid) for pid, code in part
            ),
        )

    def _free_id(self) -> int | None:
        """The next id not open, counting on from the last one granted (0-0xFFFE: 0xFFFF is
        the id of a refusal, D.6.2.5.1.1.1)."""
        for _ in range(NO_TUNNEL):
            candidate = self._next_id
            self._next_id = (candidate + 1) % NO_TUNNEL
            if candidate not in self.tunnels and candidate not in self._draining:
                return candidate
        return None

    def _timed_out(self, tunnel: TunnelState) -> list[Send]:
        return [self._to(tunnel, "tunnel_closure_notification")]


class TunnelClientProtocol(_TunnelEnds):
    """A device's tunnels (D.6.3): the request, the response, data, closing.

    ``close_timeout`` is the device's copy of the server's CloseTunnelTimeout (None: the
    tunnel lives until closed or notified): Tunneling has no keep-alive, so a client that only
    listens learns by it alone of a server that restarted and forgot the tunnel. A tunnel
    granted after its request was given up is closed (:meth:`_late_grant`). ``max_queued`` and
    ``max_held_frames`` bound what a tunnel queues and holds, as the server's do
    (:class:`TunnelServerProtocol`).
    """

    _OUT = _S
    _OUT_IDS = TunnelingServerCommand
    _PEER_IDS = TunnelingClientCommand

    def __init__(
        self,
        *,
        max_incoming: int = 1500,
        chunk: int = DEFAULT_CHUNK,
        close_timeout: float | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
        max_held_frames: int = DEFAULT_MAX_HELD_FRAMES,
    ) -> None:
        super().__init__(
            max_incoming=max_incoming,
            chunk=chunk,
            close_timeout=close_timeout,
            max_queued=max_queued,
            max_held_frames=max_held_frames,
        )
        #: Request Tunnels sent whose answer is still awaited (until :meth:`settled`).
        self._asking = 0
        #: Tunnels granted by a Request Tunnel Response no request awaited, by id: the
        #: response, until they are closed (:meth:`_close_late`).
        self._late: dict[int, ZclMessage] = {}

    def request(self, protocol: ProtocolKey, server: Destination, *, flow_control: bool) -> Send:
        """The Request Tunnel to send to ``server`` (D.6.2.4.1); it awaits its answer until
        :meth:`settled` is called."""
        self._asking += 1
        return Send(
            cluster_id=TUNNELING,
            command_id=TunnelingServerCommand.REQUEST_TUNNEL,
            payload=_command(
                _S,
                "request_tunnel",
                protocol_id=protocol[0],
                manufacturer_code=protocol[1],
                flow_control_support=t.Bool(flow_control),
                maximum_incoming_transfer_size=self.max_incoming,
            ),
            to=server,
            default_response=False,
            # the server's own Transfer Data may carry our TSN: it is not the answer
            answers=frozenset({TunnelingClientCommand.REQUEST_TUNNEL_RESPONSE}),
        )

    def get_supported(self, server: Destination, offset: int = 0) -> Send:
        """The Get Supported Tunnel Protocols to send to ``server`` (D.6.2.4.7)."""
        if not 0 <= offset <= 0xFF:
            raise ValueError(f"protocol offset {offset} is not one octet")
        return Send(
            cluster_id=TUNNELING,
            command_id=TunnelingServerCommand.GET_SUPPORTED_TUNNEL_PROTOCOLS,
            payload=_command(_S, "get_supported_tunnel_protocols", protocol_offset=offset),
            to=server,
            default_response=False,
            answers=frozenset({TunnelingClientCommand.SUPPORTED_TUNNEL_PROTOCOLS_RESPONSE}),
        )

    @staticmethod
    def supported(command: Any) -> tuple[list[ProtocolKey], bool]:
        """The protocols of a Supported Tunnel Protocols Response (D.6.2.5.5) and whether the
        list is complete; :class:`TunnelError` when its count does not match its list."""
        listed = [(int(p.protocol_id), int(p.manufacturer_code)) for p in command.protocol_list]
        if len(listed) != int(command.protocol_count):
            raise TunnelError(
                f"Supported Tunnel Protocols Response: count {int(command.protocol_count)}, "
                f"{len(listed)} protocols listed"
            )
        return listed, bool(command.protocol_list_complete)

    def opened(
        self,
        response: ZclMessage,
        command: Any,
        *,
        protocol: ProtocolKey,
        flow_control: bool,
        now: float,
    ) -> Step:
        """Take a Request Tunnel Response (D.6.2.5.1): a :class:`TunnelOpened` event (the
        tunnel is then in :attr:`tunnels`), or :class:`TunnelError` naming the status that
        refused it.

        A granted id this end holds for the same protocol with the same server is that tunnel,
        renewed (the server gives a device asking again its open tunnel, GBCS v2.0 10.2.2): it
        stays open with what is queued and received on it, and takes the response's maximum
        incoming transfer size as its send window. A granted id this end still holds for
        another tunnel means that tunnel is gone at its server: the server restarted (or forgot
        it) and counted to the same id. The old tunnel is closed first, ``"superseded"`` (its
        queued octets dropped; later calls on the id are the new tunnel's). No Close Tunnel goes
        for it to the same server, which would close the new one; a tunnel of another server
        with the same id is closed there (D.6.2.4.2), as this end keeps one tunnel per id."""
        try:
            status = TunnelStatus(int(command.tunnel_status))
        except ValueError:
            raise TunnelError(
                f"tunnel refused with unknown status {int(command.tunnel_status)}"
            ) from None
        if status is not TunnelStatus.SUCCESS:
            raise TunnelError(f"tunnel refused: {status.name}")
        tunnel_id = int(command.tunnel_id)
        if tunnel_id == NO_TUNNEL:  # the id of a refusal (D.6.2.5.1.1.1) names no tunnel
            raise TunnelError(f"tunnel granted with id 0x{NO_TUNNEL:04X}, which names none")
        sends: list[Send] = []
        events: list[Any] = []
        held = self.tunnels.get(tunnel_id)
        if held is not None and held.protocol == protocol and self._is_peer(held, response):
            renewed = self._renew(
                held, response, flow_control=flow_control, command=command, now=now
            )
            return Step(events=(renewed,))
        old = self.tunnels.pop(tunnel_id, None)
        if old is not None:
            LOGGER.warning(
                "tunnel %d of %s superseded: the server granted its id again (it restarted)",
                tunnel_id,
                old.device,
            )
            events.append(self._closed(old, "superseded"))
            if not self._is_peer(old, response):
                sends.append(self._to(old, "close_tunnel"))
        tunnel = self._add(
            response,
            tunnel_id=tunnel_id,
            protocol=protocol,
            flow_control=flow_control,
            command=command,
            now=now,
        )
        events.append(
            TunnelOpened(
                tunnel_id=tunnel_id,
                device=tunnel.device,
                protocol=protocol,
                flow_control=flow_control,
            )
        )
        return Step(sends=tuple(sends), events=tuple(events))

    def settled(self) -> Step:
        """A request's wait ended (answered, refused, timed out or not delivered): once no
        request awaits its answer, Close Tunnel (D.6.2.4.2) for each tunnel granted late
        that this end does not hold (:meth:`_late_grant`)."""
        self._asking = max(0, self._asking - 1)
        return self._close_late()

    def _late_grant(self, msg: ZclMessage, command: Any) -> Step:
        """A Request Tunnel Response (D.6.2.5.1) no request awaits: it came after the request
        timed out. The server holds the tunnel it granted for nobody until its
        CloseTunnelTimeout (up to 18 h), so this end closes it, unless it holds that tunnel
        with that server (a copy of a renewal's answer). While another request awaits its
        answer the close waits: the server may give that request the same tunnel (GBCS v2.0
        10.2.2). A refusal granted nothing. Either way no Default Response."""
        if int(command.tunnel_status) != TunnelStatus.SUCCESS:
            return Step()
        tunnel_id = int(command.tunnel_id)
        held = self.tunnels.get(tunnel_id)
        if held is None or not self._is_peer(held, msg):
            self._late[tunnel_id] = msg
        return self._close_late()

    def _close_late(self) -> Step:
        """Close Tunnel for the tunnels granted late that this end does not hold, once no
        request awaits its answer."""
        if self._asking:
            return Step()
        sends: list[Send] = []
        for tunnel_id, msg in self._late.items():
            held = self.tunnels.get(tunnel_id)
            if held is not None and self._is_peer(held, msg):
                continue  # the tunnel a later request was given
            LOGGER.info(
                "tunnel %d granted by %s after its request timed out: closed",
                tunnel_id,
                device_name(msg.src_ieee, msg.src_nwk),
            )
            sends.append(
                Send(
                    cluster_id=TUNNELING,
                    command_id=TunnelingServerCommand.CLOSE_TUNNEL,
                    payload=_command(_S, "close_tunnel", tunnel_id=tunnel_id),
                    to=Destination.device(msg.src_nwk, msg.src_ep),
                    default_response=False,
                )
            )
        self._late.clear()
        return Step(sends=tuple(sends))

    def close(self, tunnel_id: int) -> Step:
        """Close a tunnel (D.6.2.4.2): forget it and tell the server. What the application
        leaves unread on it (it may still read it) is not counted against the server: its
        own choice, not the server's pile-up, which nobody would ever read down (zse's own)."""
        tunnel = self._open(tunnel_id)
        closed = self._closed(tunnel, "closed")
        self._draining.pop(tunnel_id, None)
        return Step(sends=(self._to(tunnel, "close_tunnel"),), events=(closed,))

    def receive(self, msg: ZclMessage, command: Any, now: float) -> Step:
        """Act on a command the server sent; a Request Tunnel Response here is one no request
        awaits (:meth:`_late_grant`), the awaited one goes to :meth:`opened`."""
        if msg.command_id == TunnelingClientCommand.REQUEST_TUNNEL_RESPONSE:
            return self._late_grant(msg, command)
        if msg.command_id == TunnelingClientCommand.TUNNEL_CLOSURE_NOTIFICATION:
            tunnel = self._owned(msg, int(command.tunnel_id))
            if tunnel is None:
                return Step(status=foundation.Status.NOT_FOUND)
            return Step(events=(self._closed(tunnel, "notified"),))
        step = self._data_command(msg, command, now)
        return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND) if step is None else step
