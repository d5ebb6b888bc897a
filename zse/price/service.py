"""Price over ZCL (SE D.4): the ESI publishes and answers, a client keeps and acknowledges.

The decisions (what applies now, what is scheduled, overlaps) are :class:`zse.price.
PriceSchedule`'s; this module moves Publish Price, Get Current Price, Get Scheduled Prices and
Price Acknowledgement over an endpoint. ``clock()`` gives ZigBee time (seconds since
2000-01-01 UTC); see :mod:`zse.time.service`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zigpy.types as t
from zigpy.zcl import foundation

from zse.errors import InvalidFrame
from zse.price.core import PriceEvent, PriceSchedule
from zse.price.wire import Price
from zse.se.ids import PRICE, PriceClientCommand, PriceServerCommand
from zse.se.types import PriceAcknowledgementControl
from zse.time.service import system_clock
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.delivery import Destination, deliver
from zse.zcl.endpoint import ZclPort
from zse.zcl.events import EventStream

__all__ = [
    "PRICE",
    "PriceAcknowledged",
    "PriceClient",
    "PriceReceived",
    "PriceServer",
]

LOGGER = logging.getLogger(__name__)

_PUBLISH_PRICE = PriceClientCommand.PUBLISH_PRICE
_GET_CURRENT_PRICE = PriceServerCommand.GET_CURRENT_PRICE
_GET_SCHEDULED_PRICES = PriceServerCommand.GET_SCHEDULED_PRICES
_PRICE_ACKNOWLEDGEMENT = PriceServerCommand.PRICE_ACKNOWLEDGEMENT


@dataclass(frozen=True, kw_only=True)
class PriceAcknowledged:
    """A client acknowledged a price (Price Acknowledgement, D.4.2.3.3)."""

    source_nwk: int
    source_ieee: t.EUI64 | None
    provider_id: int
    issuer_event_id: int
    ack_time: int


@dataclass(frozen=True, kw_only=True)
class PriceReceived:
    """A client received a Publish Price; ``new`` is False for a repeat."""

    source_nwk: int
    price: PriceEvent
    new: bool


def _publish_payload(event: PriceEvent, now: int) -> bytes:
    schema = Price.ClientCommandDefs.publish_price.schema
    return encode_command(schema(**event.to_fields(now)))


class PriceServer:
    """The ESI's Price server (SE D.4.2): publishes prices and answers requests for them."""

    def __init__(self, endpoint: ZclPort, *, clock: Callable[[], int] = system_clock) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.schedule = PriceSchedule()
        self._stream: EventStream[PriceAcknowledged] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events

    def start(self) -> None:
        """Serve the Price cluster on the endpoint."""
        self.endpoint.add_handler(PRICE, self._on_message)

    async def publish(
        self,
        event: PriceEvent,
        *,
        dst: int | None = None,
        dst_ep: int = 0xFF,
        dst_mode: t.AddrMode = t.AddrMode.NWK,
    ) -> None:
        """Record ``event`` and, if ``dst`` is given, send it to a device, group or broadcast."""
        now = self.clock()
        self.schedule.add(event, now)
        if dst is not None:
            await deliver(
                self.endpoint,
                Destination.of(dst, dst_ep, dst_mode),
                PRICE,
                _PUBLISH_PRICE,
                _publish_payload(event, now),
            )

    async def _on_message(self, msg: Any) -> foundation.Status | None:
        if msg.from_server:
            return None
        try:
            command, _ = decode_command(Price, msg.command_id, msg.payload, from_server=False)
        except InvalidFrame as exc:
            LOGGER.warning("bad Price command from 0x%04X: %s", msg.src_nwk, exc)
            return foundation.Status.MALFORMED_COMMAND
        if msg.command_id == _GET_CURRENT_PRICE:
            return await self._current(msg)
        if msg.command_id == _GET_SCHEDULED_PRICES:
            return await self._scheduled(msg, command)
        self._stream.emit(
            PriceAcknowledged(
                source_nwk=msg.src_nwk,
                source_ieee=msg.src_ieee,
                provider_id=int(command.provider_id),
                issuer_event_id=int(command.issuer_event_id),
                ack_time=int(command.price_ack_time),
            )
        )
        return foundation.Status.SUCCESS

    async def _current(self, msg: Any) -> foundation.Status | None:
        now = self.clock()
        current = self.schedule.current(now)
        if current is None:
            return foundation.Status.NOT_FOUND
        await self.endpoint.reply(msg, _PUBLISH_PRICE, _publish_payload(current, now))
        return None

    async def _scheduled(self, msg: Any, command: Any) -> foundation.Status | None:
        now = self.clock()
        events = self.schedule.scheduled(
            int(command.start_time), int(command.number_of_events), now
        )
        if not events:
            return foundation.Status.NOT_FOUND
        for event in events:
            await self.endpoint.reply(msg, _PUBLISH_PRICE, _publish_payload(event, now))
        return None


class PriceClient:
    """A HAN device's Price client (SE D.4.3): keeps current and scheduled prices.

    Publish Price from the server is recorded (the newer issuer event id wins overlaps) and
    acknowledged when its Price Control asks for it.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        server_nwk: int = 0x0000,
        server_ep: int,
        clock: Callable[[], int] = system_clock,
    ) -> None:
        self.endpoint = endpoint
        self.server_nwk = server_nwk
        self.server_ep = server_ep
        self.clock = clock
        self.schedule = PriceSchedule()
        self._stream: EventStream[PriceReceived] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events

    def start(self) -> None:
        """Take Publish Price commands arriving on the endpoint."""
        self.endpoint.add_handler(PRICE, self._on_message)

    def current(self) -> PriceEvent | None:
        """The price in force now."""
        return self.schedule.current(self.clock())

    async def get_current_price(self) -> PriceEvent | None:
        """Ask the server (Get Current Price, D.4.2.3.1); None if it has no price."""
        reply = await self.endpoint.request(
            self.server_nwk,
            self.server_ep,
            PRICE,
            _GET_CURRENT_PRICE,
            b"\x01",  # the requestor is rx-on-when-idle
            encrypt=True,
        )
        if not reply.is_cluster_command:
            return None  # Default Response NOT_FOUND
        await self._on_message(reply)
        return self.current()

    async def _on_message(self, msg: Any) -> foundation.Status | None:
        if not msg.from_server or msg.command_id != _PUBLISH_PRICE:
            return foundation.Status.UNSUP_CLUSTER_COMMAND
        try:
            command, _ = decode_command(Price, _PUBLISH_PRICE, msg.payload, from_server=True)
            event = PriceEvent.from_fields(command)
        except (InvalidFrame, ValueError) as exc:
            LOGGER.warning("bad Publish Price from 0x%04X: %s", msg.src_nwk, exc)
            return foundation.Status.MALFORMED_COMMAND
        now = self.clock()
        new = self.schedule.add(event, now)
        self._stream.emit(PriceReceived(source_nwk=msg.src_nwk, price=event, new=new))
        if event.acknowledgement_required and msg.group is None and not msg.broadcast:
            schema = Price.ServerCommandDefs.price_acknowledgement.schema
            ack = schema(
                provider_id=event.provider_id,
                issuer_event_id=event.issuer_event_id,
                price_ack_time=now,
                control=PriceAcknowledgementControl.Price_Acknowledgement,
            )
            await deliver(
                self.endpoint,
                Destination.device(msg.src_nwk, msg.src_ep),
                PRICE,
                _PRICE_ACKNOWLEDGEMENT,
                encode_command(ack),
            )
        return None
