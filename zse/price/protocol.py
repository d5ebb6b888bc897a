"""Price at the ZCL frame (SE D.4): the sans-IO protocol cores of the server and the client.

:class:`PriceServerProtocol` is the ESI's side: it publishes prices (Publish Price to a device,
a group or a broadcast, D.4.2.4.1), answers Get Current Price (the price in force, or
NOT_FOUND, D.4.2.3.1) and Get Scheduled Prices (D.4.2.3.2), and takes Price Acknowledgement
(D.4.2.3.3). :class:`PriceClientProtocol` is a device's side: it records Publish Price into
its :class:`~zse.price.PriceSchedule` and acknowledges a unicast one whose Price Control asks
for it (D.4.2.4.1.1.19); it builds the Get Current Price request its shell sends.

Both satisfy :class:`zse.zcl.frame.FrameCore`: ``receive(msg, command, now)`` takes a frame
whose payload the shell decoded with :mod:`zse.price.wire` and returns a
:class:`~zse.zcl.frame.Step` (frames to send, events, Default Response status).
:meth:`~PriceServerProtocol.screen` says which frames are refused before their payload is
decoded. Price has nothing timed, so ``next_deadline()`` is always None. ``now`` is ZigBee
UTCTime (seconds since 2000-01-01 UTC). Nothing here reads a clock or does I/O;
:mod:`zse.price.service` is the asyncio shell.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

import zigpy.types as t
from zigpy.zcl import foundation

from zse.price.core import PriceEvent, PriceSchedule
from zse.price.wire import Price
from zse.se.ids import PRICE, PriceClientCommand, PriceServerCommand
from zse.se.types import GetCurrentPriceOptions, PriceAcknowledgementControl
from zse.zcl.codec import encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage

__all__ = [
    "PriceAcknowledged",
    "PriceClientProtocol",
    "PriceReceived",
    "PriceServerProtocol",
    "publish_price_payload",
]

LOGGER = logging.getLogger(__name__)

_PUBLISH_PRICE: Final = PriceClientCommand.PUBLISH_PRICE
_GET_CURRENT_PRICE: Final = PriceServerCommand.GET_CURRENT_PRICE
_GET_SCHEDULED_PRICES: Final = PriceServerCommand.GET_SCHEDULED_PRICES
_PRICE_ACKNOWLEDGEMENT: Final = PriceServerCommand.PRICE_ACKNOWLEDGEMENT
#: Get Current Price command options: the requestor's receiver is on when idle (D.4.2.3.1.1).
_RX_ON_WHEN_IDLE: Final = bytes((GetCurrentPriceOptions.Requestor_Rx_On_When_Idle,))


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


def publish_price_payload(event: PriceEvent, now: int) -> bytes:
    """Publish Price's payload for ``event``, its Current Time ``now`` (D.4.2.4.1.1.4)."""
    schema = Price.ClientCommandDefs.publish_price.schema
    return encode_command(schema(**event.to_fields(now)))


def _publish(event: PriceEvent, now: int, **where: Any) -> Send:
    return Send(
        cluster_id=PRICE,
        command_id=_PUBLISH_PRICE,
        payload=publish_price_payload(event, now),
        **where,
    )


class _NothingTimed:
    """Price keeps no timer: prices start and end by the clock the schedule is asked at."""

    def next_deadline(self) -> int | None:
        """Always None."""
        return None

    def handle_timeout(self, now: int) -> Step:
        """Nothing is ever due."""
        return Step()


class PriceServerProtocol(_NothingTimed):
    """The ESI's Price server (SE D.4.2) at the ZCL frame; ``schedule`` is what it knows."""

    def __init__(self, schedule: PriceSchedule | None = None) -> None:
        self.schedule = PriceSchedule() if schedule is None else schedule

    def publish(self, event: PriceEvent, now: int, to: Destination | None = None) -> Step:
        """Record ``event`` and, with ``to``, send it there (a device, group or broadcast)."""
        self.schedule.add(event, now)
        if to is None:
            return Step()
        return Step(sends=(_publish(event, now, to=to),))

    def screen(self, msg: ZclMessage) -> Step | None:
        """A frame left alone before decoding (a server's frame: no answer), or None."""
        return Step() if msg.from_server else None

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Answer Get Current Price or Get Scheduled Prices (with Publish Price, or
        NOT_FOUND); take Price Acknowledgement (an event, SUCCESS)."""
        screened = self.screen(msg)
        if screened is not None:
            return screened
        if msg.command_id == _GET_CURRENT_PRICE:
            current = self.schedule.current(now)
            events = [] if current is None else [current]
        elif msg.command_id == _GET_SCHEDULED_PRICES:
            start, count = int(command.start_time), int(command.number_of_events)
            events = self.schedule.scheduled(start, count, now)
        elif msg.command_id == _PRICE_ACKNOWLEDGEMENT:
            acknowledged = PriceAcknowledged(
                source_nwk=msg.src_nwk,
                source_ieee=msg.src_ieee,
                provider_id=int(command.provider_id),
                issuer_event_id=int(command.issuer_event_id),
                ack_time=int(command.price_ack_time),
            )
            return Step(events=(acknowledged,), status=foundation.Status.SUCCESS)
        else:
            return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)
        if not events:
            return Step(status=foundation.Status.NOT_FOUND)
        return Step(sends=tuple(_publish(event, now, reply_to=msg) for event in events))


class PriceClientProtocol(_NothingTimed):
    """A device's Price client (SE D.4.3) at the ZCL frame; ``schedule`` is what it knows."""

    def __init__(self, schedule: PriceSchedule | None = None) -> None:
        self.schedule = PriceSchedule() if schedule is None else schedule

    def get_current_price(self, server: Destination) -> Send:
        """The Get Current Price request (D.4.2.3.1) to ``server``, for the shell to send and
        await: its answer is a Publish Price (give it to :meth:`receive`) or a Default
        Response."""
        return Send(
            cluster_id=PRICE, command_id=_GET_CURRENT_PRICE, payload=_RX_ON_WHEN_IDLE, to=server
        )

    def screen(self, msg: ZclMessage) -> Step | None:
        """UNSUP_CLUSTER_COMMAND for all but a server's Publish Price, before decoding."""
        if msg.from_server and msg.command_id == _PUBLISH_PRICE:
            return None
        return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Record a Publish Price (a :class:`PriceReceived` event) and, sent to this device
        alone with Price Control bit 0 set, acknowledge it (D.4.2.4.1.1.19)."""
        screened = self.screen(msg)
        if screened is not None:
            return screened
        try:
            event = PriceEvent.from_fields(command)
        except ValueError as exc:
            LOGGER.warning("bad Publish Price from 0x%04X: %s", msg.src_nwk, exc)
            return Step(status=foundation.Status.MALFORMED_COMMAND)
        new = self.schedule.add(event, now)
        received = PriceReceived(source_nwk=msg.src_nwk, price=event, new=new)
        if not (event.acknowledgement_required and msg.group is None and not msg.broadcast):
            return Step(events=(received,))
        schema = Price.ServerCommandDefs.price_acknowledgement.schema
        ack = schema(
            provider_id=event.provider_id,
            issuer_event_id=event.issuer_event_id,
            price_ack_time=now,
            control=PriceAcknowledgementControl.Price_Acknowledgement,
        )
        send = Send(
            cluster_id=PRICE,
            command_id=_PRICE_ACKNOWLEDGEMENT,
            payload=encode_command(ack),
            to=Destination.device(msg.src_nwk, msg.src_ep),
        )
        return Step(sends=(send,), events=(received,))
