"""The sans-IO cores of SE over inter-PAN (SE Annex B.5): what an ESI and a device decide.

:class:`EsiCore` is the ESI's side: which Get Current Price and Get Scheduled Prices to answer
and with what (the prices, within the :func:`reply_limiter` budget), and the unsolicited
Publish Price, Display
Message and Cancel Message it sends. :class:`SeClientCore` is the device's side: it matches
Publish Price answers to its own requests, keeps the prices it hears in a bounded
:class:`~zse.price.PriceSchedule` until they end (one heard after its end is not kept, as the
network's price client refuses it), refuses a display whose message control forbids inter-PAN
(D.5.2.3.1.1.2) and puts the others on a :class:`~zse.messaging.MessageBoard` whose timers it
exposes as :meth:`SeClientCore.next_deadline` / :meth:`SeClientCore.handle_timeout`.

Both are fed a decoded command (:class:`SeCommand`: the inter-PAN frame, its ZCL header and
the command's fields) with the time, and hand back what to send (:class:`SeSend`: cluster,
command id, fields and addressing; the shell encodes it with the features' wire modules) and the
events. Nothing here reads a clock, sleeps or does I/O; :mod:`zse.interpan.se` is the asyncio
shell. Two time bases are used, as the shell has them: ``now`` is monotonic seconds (the
service's clock, for the reply limiter) and ``utc`` is ZigBee UTCTime (prices and messages).
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from zigpy.types import EUI64
from zigpy.zcl.foundation import ZCLCommandDef

from zse.errors import InvalidFrame
from zse.interpan._codec import MAX_ZCL_LENGTH, InterPanFrame
from zse.interpan._zcl import Direction, ZclHeader
from zse.interpan.window import SourceLimiter
from zse.messaging import (
    BoardEvent,
    MessageBoard,
    message_from_command,
)
from zse.price import PriceEvent, PriceSchedule
from zse.se.ids import (
    MESSAGING,
    PRICE,
    MessagingClientCommand,
    PriceClientCommand,
    PriceServerCommand,
)
from zse.se.types import GetCurrentPriceOptions, MessageControl

__all__ = [
    "INTERPAN_TRANSMISSION_VALUES",
    "MESSAGING",
    "PRICE",
    "ClientStep",
    "EsiCore",
    "InterPanAllMessagesCancelled",
    "InterPanMessage",
    "InterPanMessageCancelled",
    "InterPanPriceReceived",
    "PriceRequested",
    "SeClientCore",
    "SeCommand",
    "SeSend",
    "describe",
    "reply_limiter",
]

LOGGER = logging.getLogger(__name__)


def log_malformed(count: int, error: InvalidFrame) -> None:
    """Log the ``count``-th malformed frame: at WARNING for the 1st, 10th, 100th, ... (with
    the count), at DEBUG otherwise, so that a flood of garbage from anyone within radio range
    costs a few log lines, not one a frame."""
    if count == 10 ** (len(str(count)) - 1):
        LOGGER.warning("ignoring %s (%d malformed inter-PAN frames so far)", error, count)
    else:
        LOGGER.debug("ignoring %s", error)


# (cluster, command id) of the commands acted on; the direction is checked apart (D.4.2, D.5.2)
_GET_CURRENT_PRICE: Final = (PRICE, PriceServerCommand.GET_CURRENT_PRICE)  # client to server
_GET_SCHEDULED_PRICES: Final = (PRICE, PriceServerCommand.GET_SCHEDULED_PRICES)  # the same
_PUBLISH_PRICE: Final = (PRICE, PriceClientCommand.PUBLISH_PRICE)  # server to client
_DISPLAY_MESSAGE: Final = (MESSAGING, MessagingClientCommand.DISPLAY_MESSAGE)
_CANCEL_MESSAGE: Final = (MESSAGING, MessagingClientCommand.CANCEL_MESSAGE)
_DISPLAY_PROTECTED: Final = (MESSAGING, MessagingClientCommand.DISPLAY_PROTECTED_MESSAGE)
_CANCEL_ALL: Final = (MESSAGING, MessagingClientCommand.CANCEL_ALL_MESSAGES)
#: Get Current Price command options: Requestor Rx On When Idle (D.4.2.3.1.1, bit 0).
_RX_ON_WHEN_IDLE: Final = int(GetCurrentPriceOptions.Requestor_Rx_On_When_Idle)

#: Message control transmission values that allow inter-PAN (D.5.2.3.1.1.2): ``0b01`` normal
#: and anonymous inter-PAN, ``0b10`` anonymous inter-PAN only.
INTERPAN_TRANSMISSION_VALUES: Final = frozenset({0b01, 0b10})
#: Fixed Display Message bytes around the text: ZCL header 3, id 4, control 1, start 4,
#: duration 2, string length 1.
_DISPLAY_OVERHEAD: Final = 3 + 4 + 1 + 4 + 2 + 1
#: Longest message text (UTF-8 octets) one inter-PAN Display Message carries: 78.
MAX_MESSAGE_BYTES: Final = MAX_ZCL_LENGTH - _DISPLAY_OVERHEAD


def describe(frame: InterPanFrame) -> str:
    """How errors and logs name an inter-PAN frame: its source and PAN."""
    return f"inter-PAN frame from {frame.src_ieee} (PAN 0x{frame.src_pan_id:04X})"


@dataclass(frozen=True, slots=True)
class SeCommand:
    """One SE command of an inter-PAN frame, decoded (by :func:`zse.interpan.se.decode_se`)."""

    frame: InterPanFrame
    header: ZclHeader
    definition: ZCLCommandDef
    fields: Any  # the command's zigpy CommandSchema
    trailing: bytes  # bytes after the last known field (later SE revisions append fields)

    @property
    def name(self) -> str:
        return str(self.definition.name)

    @property
    def from_server(self) -> bool:
        return self.header.direction is Direction.Server_to_Client

    @property
    def key(self) -> tuple[int, int]:
        """(cluster id, command id); with :attr:`from_server` it names the command."""
        return (self.frame.cluster_id, self.header.command_id)


@dataclass(frozen=True, slots=True)
class SeSend:
    """One SE command to send over inter-PAN: the shell encodes ``fields`` as the command
    ``command_id`` of ``cluster_id`` (server to client if ``from_server``) with ZCL sequence
    ``tsn`` and default responses disabled, and sends it to ``dst`` on ``dst_pan_id`` (every
    device in range when ``dst`` is None). ``request`` is the event an answer reports once
    its delivery is known (see :meth:`EsiCore.delivered`)."""

    cluster_id: int
    command_id: int
    fields: dict[str, Any]
    tsn: int
    from_server: bool
    dst: EUI64 | None = None
    dst_pan_id: int = 0xFFFF
    request: PriceRequested | None = None


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PriceRequested:
    """The ESI got a Get Current Price over inter-PAN; ``answered`` is False when it had no
    price to give, the answer was not acknowledged, or (``throttled``) its reply limiter
    refused to answer."""

    source_ieee: EUI64
    source_pan_id: int
    answered: bool
    throttled: bool = False


@dataclass(frozen=True, kw_only=True)
class InterPanPriceReceived:
    """A device heard a Publish Price over inter-PAN; ``new`` is False for a repeat or a
    price not kept (one that had ended when it came, or older than a newer one kept)."""

    source_ieee: EUI64
    source_pan_id: int
    price: PriceEvent
    new: bool


@dataclass(frozen=True, kw_only=True)
class InterPanMessage:
    """A device received a Display Message over inter-PAN (D.5.2.3.1), or a Display Protected
    Message (D.5.2.3.3, ``protected``) where the deployment's whitelist lets it cross. What the
    device shows follows as :mod:`zse.messaging` board events."""

    source_ieee: EUI64
    source_pan_id: int
    message_id: int
    message_control: MessageControl
    start_time: int
    duration_in_minutes: int
    message: str
    protected: bool = False

    @property
    def confirmation_not_possible(self) -> bool:
        """The control asks for a confirmation (D.5.2.3.1.1.2 bit 7, or bit 5 enhanced) that
        cannot be given: Message Confirmation is not an inter-PAN command (SE B.5)."""
        control = self.message_control
        return bool(control.confirmation_required or control.enhanced_confirmation_required)


@dataclass(frozen=True, kw_only=True)
class InterPanMessageCancelled:
    """A device received a Cancel Message over inter-PAN (D.5.2.3.2)."""

    source_ieee: EUI64
    source_pan_id: int
    message_id: int
    message_control: MessageControl


@dataclass(frozen=True, kw_only=True)
class InterPanAllMessagesCancelled:
    """A device received Cancel All Messages (D.5.2.3.4) over inter-PAN, where the
    deployment's whitelist lets it cross; ``implementation_time`` 0 means now."""

    source_ieee: EUI64
    source_pan_id: int
    implementation_time: int


ClientEvent = (
    InterPanPriceReceived
    | InterPanMessage
    | InterPanMessageCancelled
    | InterPanAllMessagesCancelled
    | BoardEvent
)


@dataclass(frozen=True, slots=True)
class ClientStep:
    """What one input did to a :class:`SeClientCore`: the ``events`` to emit, in order, and
    the ``answers`` to its pending requests (ZCL sequence number -> the price, ``None`` for a
    price that had ended when it came, or the decoding error of a malformed answer);
    ``board`` when the message board or the kept prices changed (the core's next deadline
    may have moved)."""

    events: tuple[ClientEvent, ...] = ()
    answers: tuple[tuple[int, PriceEvent | InvalidFrame | None], ...] = ()
    board: bool = False


# -- the ESI --------------------------------------------------------------------------------


def reply_limiter() -> SourceLimiter:
    """The default limit on the ESI's inter-PAN answers (a :class:`SourceLimiter` over the
    requesters, on the service's clock).

    Source addresses cost a spoofer nothing, while every answer is a unicast with MAC retries
    to an address that may not exist. A display asking every few seconds is *established*
    by its third request within about 10 s and then has its own budget (1 answer/s, burst 3);
    everyone else shares 2 answers/s (burst 4); and at most 10 answers/s (burst 20) leave in
    all. The table holds 1,024 requesters: a display keeps its slot while a flood of up to
    about 200 new addresses per second (``max_sources / min_age``) passes through.
    """
    return SourceLimiter(
        rate=1.0,
        burst=3.0,
        newcomer_rate=2.0,
        newcomer_burst=4.0,
        max_sources=1024,
        min_age=5.0,
        half_life=10.0,
        establish_score=3.0,
        total_rate=10.0,
        total_burst=20.0,
    )


class EsiCore:
    """The ESI's decisions for SE over inter-PAN (sans-IO).

    ``schedule`` holds the prices to serve; ``limiter`` bounds the answers to Get Current
    Price per requester and in all (default :func:`reply_limiter`): a request it refuses is
    not answered (:attr:`throttled` counts them), as if lost. An ESI with no current price
    stays silent (a Default Response is not an inter-PAN command, SE B.5). The ESI has no
    timers.
    """

    def __init__(self, *, schedule: PriceSchedule, limiter: SourceLimiter | None = None) -> None:
        self.schedule = schedule
        self.limiter = limiter if limiter is not None else reply_limiter()
        self.malformed = 0
        self.throttled = 0
        self._tsn = itertools.count()

    def malformed_frame(self, error: InvalidFrame) -> None:
        """A frame that did not decode: counted and ignored (logged: :func:`log_malformed`)."""
        self.malformed += 1
        log_malformed(self.malformed, error)

    def receive(
        self, command: SeCommand, *, now: float, utc: int
    ) -> tuple[tuple[SeSend, ...], tuple[PriceRequested, ...]]:
        """Act on one admitted command: ``(frames to send, events)``.

        Get Current Price (D.4.2.3.1) is answered by a Publish Price unicast to the requester
        with the request's sequence number (its :class:`PriceRequested` then waits on
        :meth:`delivered`), or reported unanswered at once; Get Scheduled Prices as
        :meth:`scheduled_prices` says. Nothing else is acted on.
        """
        frame = command.frame
        if command.key == _GET_SCHEDULED_PRICES and not command.from_server:
            return self.scheduled_prices(command, now=now, utc=utc), ()
        if command.key != _GET_CURRENT_PRICE or command.from_server:
            LOGGER.debug("ESI ignores %s from %s over inter-PAN", command.name, frame.src_ieee)
            return (), ()
        current = self.schedule.current(utc, absolute=True)  # a price for "now": its start
        throttled = False
        if current is not None and not self.limiter.allow(frame.src_ieee, now):
            self.throttled += 1
            throttled = True
        request = PriceRequested(
            source_ieee=frame.src_ieee,
            source_pan_id=frame.src_pan_id,
            answered=False,
            throttled=throttled,
        )
        if current is None or throttled:
            return (), (request,)
        answer = SeSend(
            *_PUBLISH_PRICE,
            current.to_fields(utc),
            tsn=command.header.tsn,
            from_server=True,
            dst=frame.src_ieee,
            dst_pan_id=frame.src_pan_id,
            request=request,
        )
        return (answer,), ()

    def scheduled_prices(self, command: SeCommand, *, now: float, utc: int) -> tuple[SeSend, ...]:
        """The answers to a Get Scheduled Prices (D.4.2.3.2; Silicon Labs' inter-PAN plugin
        lists it with Get Current Price among the messages a Price server must take): a
        Publish Price per price still in force after its start time (0 = now), up to its
        count (0 = all), unicast to the requester with the request's sequence number, as the
        network's Price server answers (:meth:`zse.price.PriceSchedule.scheduled`). Each
        answer takes a :attr:`limiter` token, so a spoofed request costs no more than as many
        Get Current Price; the answers past the budget are not sent (:attr:`throttled`)."""
        frame, fields = command.frame, command.fields
        events = self.schedule.scheduled(int(fields.start_time), int(fields.number_of_events), utc)
        sends: list[SeSend] = []
        for event in events:
            if not self.limiter.allow(frame.src_ieee, now):
                self.throttled += 1
                break
            sends.append(
                SeSend(
                    *_PUBLISH_PRICE,
                    event.to_fields(utc),
                    tsn=command.header.tsn,
                    from_server=True,
                    dst=frame.src_ieee,
                    dst_pan_id=frame.src_pan_id,
                )
            )
        return tuple(sends)

    def delivered(self, send: SeSend, *, ok: bool) -> tuple[PriceRequested, ...]:
        """The events owed once ``send`` was delivered (``ok``) or not (no MAC
        acknowledgement: the device will ask again)."""
        if send.request is None:
            return ()
        return (
            PriceRequested(
                source_ieee=send.request.source_ieee,
                source_pan_id=send.request.source_pan_id,
                answered=ok,
            ),
        )

    def publish_price(
        self, event: PriceEvent, *, utc: int, dst: EUI64 | None = None, dst_pan_id: int = 0xFFFF
    ) -> SeSend:
        """Record ``event`` and the Publish Price that sends it unsolicited."""
        self.schedule.add(event, utc)
        return SeSend(
            *_PUBLISH_PRICE, event.to_fields(utc), self._next_tsn(), True, dst, dst_pan_id
        )

    def display_message(
        self,
        message_id: int,
        message: str,
        *,
        control: Any,
        start_time: int = 0,
        duration_in_minutes: int = 0xFFFF,
        dst: EUI64 | None = None,
        dst_pan_id: int = 0xFFFF,
    ) -> SeSend:
        """Display Message (D.5.2.3.1). A ``control`` (a MessageControl) whose transmission
        bits do not allow inter-PAN, or a text that does not fit one inter-PAN frame, raises
        :class:`ValueError`."""
        if int(control.transmission) not in INTERPAN_TRANSMISSION_VALUES:
            raise ValueError(
                f"message {message_id}: message control transmission "
                f"{control.transmission.name} (D.5.2.3.1.1.2) does not allow inter-PAN"
            )
        size = len(message.encode("utf-8", "surrogateescape"))
        if size > MAX_MESSAGE_BYTES:
            raise ValueError(
                f"message {message_id}: {size} bytes of text do not fit one inter-PAN frame "
                f"(at most {MAX_MESSAGE_BYTES}; inter-PAN has no fragmentation)"
            )
        fields = {
            "message_id": message_id,
            "message_control": control,
            "start_time": start_time,
            "duration_in_minutes": duration_in_minutes,
            "message": message,
        }
        return SeSend(*_DISPLAY_MESSAGE, fields, self._next_tsn(), True, dst, dst_pan_id)

    def cancel_message(
        self, message_id: int, *, control: Any, dst: EUI64 | None = None, dst_pan_id: int = 0xFFFF
    ) -> SeSend:
        """Cancel Message (D.5.2.3.2)."""
        fields = {"message_id": message_id, "message_control": control}
        return SeSend(*_CANCEL_MESSAGE, fields, self._next_tsn(), True, dst, dst_pan_id)

    def _next_tsn(self) -> int:
        return next(self._tsn) & 0xFF


# -- the device -----------------------------------------------------------------------------


#: What :meth:`PriceSchedule.kept` gives: (provider id, issuer event id), start, end.
_Kept = list[tuple[tuple[int, int], int, int | None]]


class SeClientCore:
    """A device's decisions for SE over inter-PAN (sans-IO).

    Prices heard are kept in :attr:`schedule`, at most ``max_prices`` of them (by provider and
    issuer event id): anyone can send a Publish Price over inter-PAN from any address, so past
    that the price heard longest ago that was not the answer to one of this device's requests
    is forgotten (an answer only when every kept price is one), and each frame costs the same
    however many sources a flood uses. A price is kept until it ends (its start plus its
    duration, D.4.2.4.1.1.9-10) or a newer one replaces it (D.4.4.2); one that had ended when
    it came is neither kept nor current, and touches nothing kept, as the network's price
    client (:class:`zse.price.protocol.PriceClientProtocol`) refuses it; it cannot be refused over
    inter-PAN, where a Default Response is not an inter-PAN command (SE B.5). Messages go on
    :attr:`board` (``capacity`` messages, SE D.5.3 rules); :meth:`next_deadline` and
    :meth:`handle_timeout` run its timers and the kept prices' ends, in ZigBee UTCTime.
    """

    def __init__(self, *, capacity: int = 8, max_prices: int = 16) -> None:
        if max_prices < 1:
            raise ValueError("max_prices must be at least 1")
        self.schedule = PriceSchedule()
        self.max_prices = max_prices
        self.board = MessageBoard(capacity=capacity)
        self.malformed = 0
        self.refused = 0
        # (provider id, issuer event id) -> answered one of our requests, least recent first;
        # the prices the schedule holds, no others
        self._heard: OrderedDict[tuple[int, int], bool] = OrderedDict()
        # the next time (UTCTime) a kept price ends or starts (ending one it cuts short)
        self._price_deadline: int | None = None
        self._tsn = itertools.count()
        # ZCL sequence number -> (the ESI asked, or None for any; its PAN, 0xFFFF for any;
        # answered already)
        self._pending: dict[int, tuple[EUI64 | None, int, bool]] = {}

    # -- requests -------------------------------------------------------------------------

    def request_price(self, *, dst: EUI64 | None = None, dst_pan_id: int = 0xFFFF) -> SeSend:
        """Get Current Price (D.4.2.3.1) to ``dst`` or any ESI in range; its answer comes back
        in :attr:`ClientStep.answers` under the send's ``tsn`` until :meth:`forget_request`."""
        tsn = next(self._tsn) & 0xFF
        self._pending[tsn] = (dst, dst_pan_id, False)
        fields = {"command_options": _RX_ON_WHEN_IDLE}
        return SeSend(*_GET_CURRENT_PRICE, fields, tsn, False, dst, dst_pan_id)

    def forget_request(self, tsn: int) -> None:
        """The request ``tsn`` is over (answered or timed out): later answers are not its."""
        self._pending.pop(tsn, None)

    def _answers(self, frame: InterPanFrame, tsn: int) -> bool:
        """Whether a Publish Price from ``frame`` with ``tsn`` answers a pending request
        (once: a second ESI's answer to a broadcast request is just a price heard)."""
        pending = self._pending.get(tsn)
        if pending is None:
            return False
        asked, pan, answered = pending
        if answered or asked not in (None, frame.src_ieee) or not frame.from_pan(pan):
            return False
        self._pending[tsn] = (asked, pan, True)
        return True

    # -- input ----------------------------------------------------------------------------

    def malformed_frame(self, frame: InterPanFrame, error: InvalidFrame) -> ClientStep:
        """A frame that did not decode: counted; if it is a Publish Price answering a pending
        request (by its ZCL header), the request fails with ``error``."""
        self.malformed += 1
        log_malformed(self.malformed, error)
        if frame.cluster_id != PRICE:
            return ClientStep()
        try:
            header = ZclHeader.from_bytes(frame.payload)
        except InvalidFrame:
            return ClientStep()
        if header.direction is not Direction.Server_to_Client:
            return ClientStep()
        if not self._answers(frame, header.tsn):
            return ClientStep()
        return ClientStep(answers=((header.tsn, error),))

    def receive(self, command: SeCommand, *, utc: int) -> ClientStep:
        """Act on one admitted command: a price heard (an answer or not), a message displayed
        or refused, a cancel; another device's request is ignored."""
        if not command.from_server:
            return ClientStep()
        frame, fields, key = command.frame, command.fields, command.key
        src, src_pan = frame.src_ieee, frame.src_pan_id
        if key == _PUBLISH_PRICE:
            return self._on_price(command, utc)
        if key in (_DISPLAY_MESSAGE, _DISPLAY_PROTECTED):
            return self._on_display(command, utc)
        if key == _CANCEL_MESSAGE:
            message_id = int(fields.message_id)
            cancelled = InterPanMessageCancelled(
                message_id=message_id,
                message_control=fields.message_control,
                source_ieee=src,
                source_pan_id=src_pan,
            )
            return ClientStep((cancelled, *self.board.cancel(message_id, utc)), board=True)
        if key == _CANCEL_ALL:
            when = int(fields.implementation_date_time)
            all_cancelled = InterPanAllMessagesCancelled(
                implementation_time=when, source_ieee=src, source_pan_id=src_pan
            )
            return ClientStep((all_cancelled, *self.board.cancel_all(when, utc)), board=True)
        LOGGER.debug("device ignores %s over inter-PAN", command.name)
        return ClientStep()

    def _on_price(self, command: SeCommand, utc: int) -> ClientStep:
        frame, tsn = command.frame, command.header.tsn
        self._expire_prices(utc)
        try:
            event = PriceEvent.from_fields(command.fields)
        except ValueError as exc:
            return self.malformed_frame(
                frame, InvalidFrame(f"{describe(frame)}: Publish Price: {exc}")
            )
        answer = self._answers(frame, tsn)
        # ended before it came: refused, as the network's price client (zse.price.protocol)
        over = event.ended(utc)
        new = not over and self._keep(event, answered=answer, utc=utc)
        heard = InterPanPriceReceived(
            price=event, new=new, source_ieee=frame.src_ieee, source_pan_id=frame.src_pan_id
        )
        if over:  # ended before it came: not kept, and no answer to a request for "now"
            LOGGER.debug(
                "%s: price %d ended before it came", describe(frame), event.issuer_event_id
            )
        answers = ((tsn, None if over else event),) if answer else ()
        return ClientStep((heard,), answers, board=True)

    def _keep(self, event: PriceEvent, *, answered: bool, utc: int) -> bool:
        """Add a heard price (not ended) to the schedule within ``max_prices``
        (O(max_prices))."""
        key = (event.provider_id, event.issuer_event_id)
        answered = self._heard.pop(key, False) or answered
        self._heard[key] = answered
        new = self.schedule.add(event, utc)
        kept = self._expire_prices(utc)  # the schedule may not have taken it, or dropped others
        if len(self._heard) > self.max_prices:
            victim = next((k for k, a in self._heard.items() if not a), None)
            if victim is None:
                victim = next(iter(self._heard))
            del self._heard[victim]
            self.schedule.forget(*victim)
            # forgetting one ends no other: what is kept is the rest, as it was
            self._note_deadline([k for k in kept if k[0] != victim], utc)
        return new

    def _expire_prices(self, utc: int) -> _Kept:
        """Forget the prices that ended by ``utc`` or that a newer price replaced (the
        schedule's rules), here too, and note when the next kept price ends or starts; what
        is kept (:meth:`PriceSchedule.kept`: no price copied, as each frame comes here)."""
        kept = self.schedule.kept(utc)  # drops what is over first
        keys = {key for key, _, _ in kept}
        for key in [k for k in self._heard if k not in keys]:
            del self._heard[key]
        self._note_deadline(kept, utc)
        return kept

    def _note_deadline(self, kept: _Kept, utc: int) -> None:
        """The next time a kept price starts (maybe cutting another short) or ends."""
        deadline = None
        for _, start, end in kept:
            change = start if start > utc else end
            if change is not None and (deadline is None or change < deadline):
                deadline = change
        self._price_deadline = deadline

    def _on_display(self, command: SeCommand, utc: int) -> ClientStep:
        """Display (Protected) Message: refused if its transmission bits forbid inter-PAN
        (D.5.2.3.1.1.2), else reported and put on the board."""
        frame, fields = command.frame, command.fields
        control = fields.message_control
        protected = command.key == _DISPLAY_PROTECTED
        if int(control.transmission) not in INTERPAN_TRANSMISSION_VALUES:
            self.refused += 1
            LOGGER.warning(
                "%s: %s %d refused: its transmission %s forbids inter-PAN",
                describe(frame),
                command.name,
                fields.message_id,
                control.transmission.name,
            )
            return ClientStep()
        heard = InterPanMessage(
            message_id=int(fields.message_id),
            message_control=control,
            start_time=int(fields.start_time),
            duration_in_minutes=int(fields.duration_in_minutes),
            message=str(fields.message),
            protected=protected,
            source_ieee=frame.src_ieee,
            source_pan_id=frame.src_pan_id,
        )
        if heard.confirmation_not_possible:
            LOGGER.info(
                "%s: message %d asks for a confirmation; shown, but Message Confirmation is "
                "not an inter-PAN command (SE B.5)",
                describe(frame),
                heard.message_id,
            )
        message = message_from_command(fields, protected=protected)
        return ClientStep((heard, *self.board.display(message, utc)), board=True)

    # -- timers ---------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """When (ZigBee UTCTime) :meth:`handle_timeout` has something to do: the board's next
        scheduled start or expiry, or a kept price's end (or the start of one that cuts
        another short), or None."""
        deadlines = (self.board.next_deadline(), self._price_deadline)
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timeout(self, utc: int) -> tuple[BoardEvent, ...]:
        """Apply what is due at ``utc``: the board's timers, and the kept prices that ended
        are forgotten."""
        self._expire_prices(utc)
        return tuple(self.board.handle_timeout(utc))
