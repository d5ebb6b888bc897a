"""A parent of sleepy end devices: indirect transmission (IEEE 802.15.4-2006 7.5.6.3).

The coordinator is every sleepy device's parent (routers take always-listening children
only). A child that associated (or rejoined) with its MAC capability "receiver on when idle"
clear (7.3.1.2) is sleepy: every frame for it waits in the parent's
:class:`~zse.sim._indirect.IndirectQueue` until the child polls. The sender of a held
unicast learns how it went when it went: the send completes when the child acknowledged the
frame, and fails with zigpy's ``DeliveryError`` (``MAC_TRANSACTION_EXPIRED``) when the child
did not poll within macTransactionPersistenceTime (7.68 s), at once with
``MAC_TRANSACTION_OVERFLOW`` when the queue is full, and when the child leaves.

Frames for a sleepy child from another node reach the parent (their MAC destination is the
parent, :meth:`zse.sim.Medium.next_hop`); the parent relays them as any router relays
(ZB 3.6.3.3, :func:`zse.sim._route.relay`: checked with the network key, secured again with
the parent's own frame counter, the radius one less), and its :meth:`ParentNode._mac_send`
holds them for the child. A parent answers Route Requests for its sleepy children
(ZB 3.6.3.5). A NWK broadcast to 0xFFFF (all devices) is held
for every sleepy child too, as ZigBee parents do (ZB 3.6.5; the spec text was out of reach
here: XBee's and zigbee-herdsman's documentation of the broadcast addresses say so: 0xFFFF
reaches sleepy end devices through their parents, 0xFFFD only devices whose receiver is on
when idle), so a child gets it at its next poll; a broadcast to 0xFFFD or 0xFFFC never
reaches a sleepy child.
"""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

import zigpy.exceptions
import zigpy.types as t
import zigpy.zdo.types as zdo_t

from zse.sim import _frames as f
from zse.sim._air import FCS_OCTETS, MAX_PHY_PACKET
from zse.sim._indirect import TRANSACTION_PERSISTENCE_TIME, Held, IndirectQueue, QueueFull
from zse.sim._node import Node

if TYPE_CHECKING:
    from zse.sim._air import Medium, Transmission

__all__ = ["ParentNode"]

LOGGER = logging.getLogger(__name__)

_RX_ON_WHEN_IDLE = int(zdo_t.MACCapabilityFlags.RxOnWhenIdle)


class ParentNode(Node):
    """A node whose sleepy end device children poll it for their frames."""

    def __init__(
        self,
        air: Medium,
        ieee: t.EUI64,
        *,
        logical_type: zdo_t.LogicalType = zdo_t.LogicalType.Router,
        manufacturer_code: int = 0x0000,
    ) -> None:
        super().__init__(air, ieee, logical_type=logical_type, manufacturer_code=manufacturer_code)
        #: the frames held for sleepy children (802.15.4-2006 7.5.6.3); its bounds can be set
        self.indirect = IndirectQueue()
        #: the devices that said "receiver off when idle" when they associated or rejoined
        self.rx_off: set[t.EUI64] = set()

    @property
    def sleepy_children(self) -> dict[int, t.EUI64]:
        """The children that sleep between polls, by short address."""
        found = {}
        for ieee in self.rx_off:
            nwk = self._nwk_of(ieee)
            if nwk is not None and self._sleepy_child(nwk):
                found[nwk] = ieee
        return found

    def _sleepy_child(self, nwk: int) -> bool:
        """Whether frames for ``nwk`` are held: the device this node knows there sleeps."""
        ieee = self.address_map.get(nwk)
        return ieee is not None and ieee in self.rx_off

    # -- the children's records --------------------------------------------------------------

    def _adopt(self, ieee: t.EUI64, capability: int) -> None:
        """``ieee`` associated or rejoined with this MAC ``capability``: a sleepy child when
        "receiver on when idle" is clear (7.3.1.2)."""
        if capability & _RX_ON_WHEN_IDLE:
            self.rx_off.discard(ieee)
        else:
            self.rx_off.add(f.eui64(ieee))

    def _orphan(self, ieee: t.EUI64, nwk: int) -> None:
        """``ieee`` (at ``nwk``) left or was removed: the frames held for it are dropped."""
        self.rx_off.discard(ieee)
        self._drop(nwk, "left the network")

    def _orphan_all(self) -> None:
        """The node left its network: no children, every held frame dropped."""
        self.rx_off.clear()
        for child in self.indirect.children():
            self._drop(child, "is off the parent's network")

    # -- holding ------------------------------------------------------------------------------

    def _mac_send(self, dst: int, frame: bytes, *, hop: int | None = None) -> asyncio.Future[bool]:
        """A frame for a sleepy child is held until it polls (True once it acknowledged it;
        zigpy's ``DeliveryError`` when it expires, the queue is full or the child leaves); a
        broadcast to 0xFFFF is sent and held for every sleepy child."""
        if hop is None and self.rx_off and self._sleepy_child(dst):
            return self._hold(dst, frame)
        if dst == 0xFFFF:
            self._hold_broadcast(frame, None)
        return super()._mac_send(dst, frame, hop=hop)

    def _answers_for(self, nwk: int) -> bool:
        return self._sleepy_child(nwk)

    def _hold(self, child: int, frame: bytes) -> asyncio.Future[bool]:
        """Queue ``frame`` for ``child``; the future is its sender's. A frame too long for
        the MAC (FRAME_TOO_LONG, 802.15.4-2006 7.1.1.1.3) and a full queue
        (TRANSACTION_OVERFLOW) refuse it at once, counted."""
        psdu = len(self._mac_data(child, frame, ack=True, seq=0)) + FCS_OCTETS
        if psdu > MAX_PHY_PACKET:
            self.air.stats.too_long += 1
            raise zigpy.exceptions.DeliveryError(
                f"frame of {psdu} octets exceeds aMaxPHYPacketSize ({MAX_PHY_PACKET})",
                status=t.MACStatus.MAC_FRAME_TOO_LONG,
            )
        loop = asyncio.get_running_loop()
        held = Held(frame, loop.time() + TRANSACTION_PERSISTENCE_TIME)
        try:
            self.indirect.hold(child, held)
        except QueueFull as full:
            self.stats.indirect_overflow += 1
            raise zigpy.exceptions.DeliveryError(
                f"indirect queue full, frame for sleepy 0x{child:04X} refused: {full}"
                " (MAC TRANSACTION_OVERFLOW)",
                status=t.MACStatus.MAC_TRANSACTION_OVERFLOW,
            ) from None
        waiter: asyncio.Future[bool] = loop.create_future()
        held.waiter = waiter
        held.timer = loop.call_at(held.expires, self._expire, child, held)
        return waiter

    def _hold_quietly(self, child: int, frame: bytes) -> None:
        """Hold a frame nobody waits for (a relayed or broadcast one): its failure is
        counted only."""
        try:
            waiter = self._hold(child, frame)
        except zigpy.exceptions.DeliveryError as refused:
            LOGGER.debug("%r: %s", self, refused)
            return
        waiter.add_done_callback(_consume)

    def _hold_broadcast(self, frame: bytes, source: int | None) -> None:
        """Hold a NWK broadcast to 0xFFFF for every sleepy child but its ``source``."""
        for child in self.sleepy_children:
            if child != source:
                self._hold_quietly(child, frame)

    def _expire(self, child: int, held: Held) -> None:
        """macTransactionPersistenceTime passed: the frame goes (TRANSACTION_EXPIRED), unless
        it is on the air now (then its acknowledgement decides)."""
        if held.in_flight or not self.indirect.remove(child, held):
            return
        self.stats.indirect_expired += 1
        _fail(
            held,
            f"frame for sleepy 0x{child:04X} expired: not polled within"
            f" macTransactionPersistenceTime ({TRANSACTION_PERSISTENCE_TIME:.2f} s)"
            " (MAC TRANSACTION_EXPIRED)",
            t.MACStatus.MAC_TRANSACTION_EXPIRED,
        )

    def _drop(self, child: int, why: str) -> None:
        """Every frame held for ``child`` fails now (the child left)."""
        for held in self.indirect.drop(child):
            self.stats.indirect_dropped += 1
            _fail(held, f"0x{child:04X} {why}: the frame held for it was dropped", None)

    # -- polls --------------------------------------------------------------------------------

    def _frame_pending(self, tx: Transmission) -> bool:
        return isinstance(tx.mac.src, int) and self.indirect.pending(tx.mac.src)

    def _mac_command(self, tx: Transmission) -> None:
        """A Data Request (7.3.4) from a child: send it the oldest frame held for it."""
        if tx.payload[:1] == bytes((f.MAC_CMD_DATA_REQUEST,)) and isinstance(tx.mac.src, int):
            self._polled(tx.mac.src)

    def _polled(self, child: int) -> None:
        """Send ``child`` its oldest held frame, once (no retry, 7.5.6.4.3), the frame-pending
        bit set when more are held; it stays held until acknowledged."""
        held = self.indirect.first(child)
        if held is None or held.in_flight:
            return
        more = self.indirect.more_after(child, held)
        if held.seq is None:
            held.seq = next(self._mac_seq) & 0xFF
        data = self._mac_data(child, held.frame, ack=True, seq=held.seq, pending=more)
        held.in_flight = True
        sent = self.air.transmit(self.air.frame(self, data), retries=0)
        sent.add_done_callback(lambda done: self._delivered(child, held, done.result()))

    def _delivered(self, child: int, held: Held, acked: bool) -> None:
        """The child acknowledged the frame (its sender told), or it stays held for the next
        poll, with its sequence number (7.5.6.4.3), if it has not expired meanwhile."""
        held.in_flight = False
        if acked:
            if self.indirect.remove(child, held):
                held.timer.cancel()
                if not held.waiter.done():
                    held.waiter.set_result(True)
        elif asyncio.get_running_loop().time() >= held.expires:
            self._expire(child, held)

    # -- broadcasts (ZB 3.6.5) ----------------------------------------------------------------

    def _relay_broadcast(self, nwk: f.NwkHeader, payload: bytes) -> None:
        """Another node's broadcast to 0xFFFF, decrypted: held for every sleepy child but its
        sender, secured again, its radius one less."""
        if self.rx_off and nwk.frame_type == f.NWK_DATA and nwk.radius >= 1:
            relayed = dataclasses.replace(nwk, radius=nwk.radius - 1, security=False)
            frame = self._nwk_frame(relayed, payload)
            if frame is not None:
                self._hold_broadcast(frame, nwk.src)


def _fail(held: Held, message: str, status: t.MACStatus | None) -> None:
    if held.timer is not None:
        held.timer.cancel()
    waiter = held.waiter
    if waiter is not None and not waiter.done():
        waiter.set_exception(zigpy.exceptions.DeliveryError(message, status=status))


def _consume(waiter: asyncio.Future[bool]) -> None:
    """Retrieve a held frame's outcome nobody awaits (no 'exception never retrieved')."""
    if not waiter.cancelled():
        waiter.exception()
