"""Smart Energy over inter-PAN (SE Annex B.5): prices and messages for devices that never joined.

SE lets an ESI serve Price and Messaging to devices that are not on its network, over
inter-PAN frames with no security. Only these commands cross (Annex B.5, and the default
:data:`~zse.interpan.window.SE_INTERPAN_COMMANDS` whitelist):

- Price: Get Current Price (D.4.2.3.1, device to ESI) answered by Publish Price (D.4.2.4.1);
- Messaging: Display Message (D.5.2.3.1) and Cancel Message (D.5.2.3.2), ESI to device.

:class:`InterPanEsi` is the ESI side: it answers Get Current Price from a
:class:`zse.price.PriceSchedule` (give it ``PriceServer.schedule`` to serve the very prices the
ESI publishes on its network) and sends Display / Cancel Message to one device or to every device
on the channel. A display goes over inter-PAN only if its message control's transmission bits
say so (D.5.2.3.1.1.2: ``0b01`` normal and anonymous inter-PAN, ``0b10`` inter-PAN only).
:class:`InterPanSeClient` is the device side: it asks for the current price, keeps the prices it
hears in its own ``PriceSchedule``, and puts the messages it hears on a
:class:`zse.messaging.MessageBoard`, the very core a joined device's ``MessagingClient`` uses, so
scheduling, replacement, expiry and cancel follow the same rules with the same events (refusing
a display whose control says normal transmission only). A message asking for confirmation is
shown but cannot be confirmed: Message Confirmation is not an inter-PAN command.

Every frame is encoded and decoded with :mod:`zse.clusters`. Default responses are disabled: a
Default Response is not an inter-PAN command, so an ESI with no current price (where the network
answer would be Default Response NOT_FOUND, D.4.2.3.1) stays silent and the request times out;
Price Acknowledgement and Message Confirmation are not inter-PAN commands either. The window,
the whitelist and the rate limits of the :class:`~zse.interpan.service.InterPanService`
underneath apply to everything received and sent here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from zigpy.types import EUI64
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import CommandSchema, ZCLCommandDef

from zse.errors import InvalidFrame
from zse.interpan._codec import MAX_ZCL_LENGTH, InterPanFrame
from zse.interpan._zcl import Direction, FrameType, ZclHeader
from zse.interpan.service import InterPanService
from zse.interpan.window import SourceLimiter
from zse.messaging import BoardEvent, Message, MessageBoard, MessageDisplayed, MessageError
from zse.messaging.service import message_from_command
from zse.messaging.wire import Messaging
from zse.price import PriceEvent, PriceSchedule
from zse.price.wire import Price
from zse.se.ids import MESSAGING, PRICE
from zse.se.types import (
    GetCurrentPriceOptions,
    MessageControl,
    MessageImportance,
    MessageTransmission,
)
from zse.time.service import system_clock
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.events import EventStream

__all__ = [
    "INTERPAN_TRANSMISSIONS",
    "InterPanAllMessagesCancelled",
    "InterPanEsi",
    "InterPanMessage",
    "InterPanMessageCancelled",
    "InterPanPriceReceived",
    "InterPanSeClient",
    "PriceRequested",
    "SeCommand",
    "decode_se",
    "encode_se",
    "message_control",
    "reply_limiter",
]

LOGGER = logging.getLogger(__name__)

_CLUSTERS: Final[dict[int, type[Cluster]]] = {PRICE: Price, MESSAGING: Messaging}
_GET_CURRENT_PRICE = Price.ServerCommandDefs.get_current_price
_PUBLISH_PRICE = Price.ClientCommandDefs.publish_price
_DISPLAY_MESSAGE = Messaging.ClientCommandDefs.display_message
_CANCEL_MESSAGE = Messaging.ClientCommandDefs.cancel_message
_DISPLAY_PROTECTED = Messaging.ClientCommandDefs.display_protected_message
_CANCEL_ALL = Messaging.ClientCommandDefs.cancel_all_messages

#: Message control transmission values that allow inter-PAN (D.5.2.3.1.1.2).
INTERPAN_TRANSMISSIONS: Final = frozenset(
    {
        MessageTransmission.Normal_and_Anonymous_InterPAN,
        MessageTransmission.Anonymous_InterPAN_Only,
    }
)
#: Fixed Display Message bytes around the text: ZCL header 3, id 4, control 1, start 4,
#: duration 2, string length 1.
_DISPLAY_OVERHEAD: Final = 3 + 4 + 1 + 4 + 2 + 1


def message_control(
    transmission: MessageTransmission = MessageTransmission.Anonymous_InterPAN_Only,
    importance: MessageImportance = MessageImportance.Low,
    *,
    confirmation_required: bool = False,
    enhanced_confirmation_required: bool = False,
) -> MessageControl:
    """A message control field (D.5.2.3.1.1.2); by default inter-PAN only, low importance."""
    return MessageControl(
        transmission=transmission,
        importance=importance,
        reserved=0,
        enhanced_confirmation_required=int(enhanced_confirmation_required),
        reserved2=0,
        confirmation_required=int(confirmation_required),
    )


@dataclass(frozen=True, slots=True)
class SeCommand:
    """One SE command of an inter-PAN frame, decoded with :mod:`zse.clusters`."""

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


def _describe(frame: InterPanFrame) -> str:
    return f"inter-PAN frame from {frame.src_ieee} (PAN 0x{frame.src_pan_id:04X})"


def decode_se(frame: InterPanFrame) -> SeCommand:
    """Decode the Price or Messaging command ``frame`` carries.

    Raises :class:`~zse.errors.InvalidFrame` saying which frame and what is wrong: another
    cluster, a global or manufacturer-specific command, an unknown command, or a field that
    does not decode (named with its byte offset in the command payload).
    """
    cluster = _CLUSTERS.get(frame.cluster_id)
    if cluster is None:
        raise InvalidFrame(
            f"{_describe(frame)}: cluster 0x{frame.cluster_id:04X} is not Price or Messaging"
        )
    try:
        header = ZclHeader.from_bytes(frame.payload)
        if header.frame_type is not FrameType.CLUSTER_COMMAND:
            raise InvalidFrame("a global ZCL command (ZCL byte offset 0) is not an SE command")
        if header.manufacturer_code is not None:
            raise InvalidFrame(
                f"manufacturer-specific command (code 0x{header.manufacturer_code:04X} at ZCL "
                "byte offset 1) is not an SE command"
            )
        from_server = header.direction is Direction.Server_to_Client
        table = cluster.client_commands if from_server else cluster.server_commands
        definition = table.get(header.command_id)
        fields, trailing = decode_command(
            cluster, header.command_id, frame.payload[header.length :], from_server=from_server
        )
    except InvalidFrame as exc:
        raise InvalidFrame(f"{_describe(frame)}: {exc}") from None
    assert definition is not None  # decode_command refused unknown commands
    return SeCommand(frame, header, definition, fields, trailing)


def encode_se(
    definition: ZCLCommandDef, fields: dict[str, Any], *, tsn: int, from_server: bool
) -> bytes:
    """The ZCL frame of an SE command: zigpy's header (cluster-specific, default response
    disabled) and the payload from :func:`zse.clusters.encode_command`."""
    direction = Direction.Server_to_Client if from_server else Direction.Client_to_Server
    schema: type[CommandSchema] = definition.schema
    header = ZclHeader.cluster(direction, int(definition.id), tsn & 0xFF)
    return header.to_bytes() + encode_command(schema(**fields))


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
    """A device heard a Publish Price over inter-PAN; ``new`` is False for a repeat."""

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


class InterPanEsi:
    """The ESI's side of SE over inter-PAN: prices on request, messages to any device.

    ``service`` is the ESI's :class:`InterPanService` (its window and whitelist police what it
    hears and sends); ``schedule`` the prices to serve; ``clock()`` ZigBee UTCTime.
    ``limiter`` bounds the answers to Get Current Price, per requester and in all (default
    :func:`reply_limiter`); a request it refuses is not answered (:attr:`throttled` counts
    them), as if lost. Call :meth:`serve` (e.g. as a task) to answer requests; it ends when
    the service closes.
    """

    def __init__(
        self,
        service: InterPanService,
        *,
        schedule: PriceSchedule,
        clock: Callable[[], int] = system_clock,
        limiter: SourceLimiter | None = None,
    ) -> None:
        self.service = service
        self.schedule = schedule
        self.clock = clock
        self.limiter = limiter if limiter is not None else reply_limiter()
        self.malformed = 0
        self.throttled = 0
        self._inbox = service.subscribe([PRICE, MESSAGING])
        self._tsn = itertools.count()
        self._stream: EventStream[PriceRequested] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events

    async def serve(self) -> None:
        """Answer Get Current Price until the service closes."""
        async for frame in self._inbox:
            await self.handle(frame)

    async def handle(self, frame: InterPanFrame) -> None:
        """Act on one admitted frame (what :meth:`serve` does with each)."""
        try:
            command = decode_se(frame)
        except InvalidFrame as exc:
            self.malformed += 1
            LOGGER.warning("ignoring %s", exc)
            return
        if command.definition is not _GET_CURRENT_PRICE or command.from_server:
            LOGGER.debug("ESI ignores %s from %s over inter-PAN", command.name, frame.src_ieee)
            return
        now = self.clock()
        current = self.schedule.current(now)
        answered = throttled = False
        if current is not None and not self.limiter.allow(frame.src_ieee, self.service.now()):
            self.throttled += 1
            throttled = True
        elif current is not None:
            payload = encode_se(
                _PUBLISH_PRICE, current.to_fields(now), tsn=command.header.tsn, from_server=True
            )
            try:
                await self.service.reply(frame, cluster_id=PRICE, payload=payload)
                answered = True
            except OSError as exc:  # no MAC acknowledgement: the device will ask again
                LOGGER.debug("Publish Price to %s not delivered: %s", frame.src_ieee, exc)
        self._stream.emit(
            PriceRequested(
                source_ieee=frame.src_ieee,
                source_pan_id=frame.src_pan_id,
                answered=answered,
                throttled=throttled,
            )
        )

    async def publish_price(
        self, event: PriceEvent, *, dst: EUI64 | None = None, dst_pan_id: int = 0xFFFF
    ) -> None:
        """Record ``event`` and send it unsolicited (to ``dst``, else every device in range)."""
        now = self.clock()
        self.schedule.add(event, now)
        payload = encode_se(
            _PUBLISH_PRICE, event.to_fields(now), tsn=self._next_tsn(), from_server=True
        )
        await self._send(PRICE, payload, dst, dst_pan_id)

    async def display_message(
        self,
        message_id: int,
        message: str,
        *,
        control: MessageControl | None = None,
        start_time: int = 0,
        duration_in_minutes: int = 0xFFFF,
        dst: EUI64 | None = None,
        dst_pan_id: int = 0xFFFF,
    ) -> None:
        """Send Display Message (D.5.2.3.1) to ``dst`` or every device in range.

        ``control`` defaults to inter-PAN only, low importance. A control whose transmission
        bits do not allow inter-PAN, or a text that does not fit one inter-PAN frame, raises
        :class:`ValueError` (nothing is sent).
        """
        control = control if control is not None else message_control()
        if control.transmission not in INTERPAN_TRANSMISSIONS:
            raise ValueError(
                f"message {message_id}: message control transmission "
                f"{control.transmission.name} (D.5.2.3.1.1.2) does not allow inter-PAN"
            )
        size = len(message.encode("utf-8", "surrogateescape"))
        if size > MAX_ZCL_LENGTH - _DISPLAY_OVERHEAD:
            raise ValueError(
                f"message {message_id}: {size} bytes of text do not fit one inter-PAN frame "
                f"(at most {MAX_ZCL_LENGTH - _DISPLAY_OVERHEAD}; inter-PAN has no fragmentation)"
            )
        fields = {
            "message_id": message_id,
            "message_control": control,
            "start_time": start_time,
            "duration_in_minutes": duration_in_minutes,
            "message": message,
        }
        payload = encode_se(_DISPLAY_MESSAGE, fields, tsn=self._next_tsn(), from_server=True)
        await self._send(MESSAGING, payload, dst, dst_pan_id)

    async def cancel_message(
        self,
        message_id: int,
        *,
        control: MessageControl | None = None,
        dst: EUI64 | None = None,
        dst_pan_id: int = 0xFFFF,
    ) -> None:
        """Send Cancel Message (D.5.2.3.2) to ``dst`` or every device in range."""
        fields = {
            "message_id": message_id,
            "message_control": control if control is not None else message_control(),
        }
        payload = encode_se(_CANCEL_MESSAGE, fields, tsn=self._next_tsn(), from_server=True)
        await self._send(MESSAGING, payload, dst, dst_pan_id)

    def _next_tsn(self) -> int:
        return next(self._tsn) & 0xFF

    async def _send(self, cluster: int, payload: bytes, dst: EUI64 | None, pan: int) -> None:
        frame = self.service.frame(cluster_id=cluster, payload=payload, dst_pan_id=pan, dst=dst)
        await self.service.send(frame)


class InterPanSeClient:
    """A device's side of SE over inter-PAN: asks for the price, hears prices and messages.

    Call :meth:`start` to receive (events: :class:`InterPanPriceReceived`,
    :class:`InterPanMessage`, :class:`InterPanMessageCancelled`,
    :class:`InterPanAllMessagesCancelled`, then the :mod:`zse.messaging` board events
    ``MessageScheduled`` / ``MessageDisplayed`` / ``MessageReplaced`` / ``MessageExpired`` /
    ``MessageCancelled`` exactly as a joined ``MessagingClient`` emits them). Prices heard are
    kept in :attr:`schedule`, messages on :attr:`board` (``capacity`` messages, SE D.5.3 rules;
    its timers run while started). ``clock()`` gives ZigBee UTCTime; ``pin_check`` is the
    application's PIN hook for protected messages.

    Anyone can send a Publish Price over inter-PAN from any address, so the schedule keeps at
    most ``max_prices`` prices (by provider and issuer event id): past that, the price heard
    longest ago that was not the answer to one of this client's requests is forgotten (an
    answer only when every kept price is one), so each frame costs the same however many
    sources a flood uses.
    """

    def __init__(
        self,
        service: InterPanService,
        *,
        clock: Callable[[], int] = system_clock,
        capacity: int = 8,
        pin_check: Callable[[str], bool] | None = None,
        max_prices: int = 16,
    ) -> None:
        if max_prices < 1:
            raise ValueError("max_prices must be at least 1")
        self.service = service
        self.clock = clock
        self.schedule = PriceSchedule()
        self.max_prices = max_prices
        # (provider id, issuer event id) -> answered one of our requests, least recent first
        self._heard: OrderedDict[tuple[int, int], bool] = OrderedDict()
        self.board = MessageBoard(capacity=capacity)
        self.pin_check = pin_check
        self.malformed = 0
        self.refused = 0
        self._inbox = service.subscribe([PRICE, MESSAGING])
        self._tsn = itertools.count()
        self._pending: dict[int, tuple[EUI64 | None, asyncio.Future[PriceEvent]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stream: EventStream[ClientEvent] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events

    def start(self) -> None:
        """Start receiving, and the message board's timers."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run())
            self._timer = loop.create_task(self._timers())

    async def close(self) -> None:
        """Stop receiving (the service stays open)."""
        self.service.unsubscribe(self._inbox)
        if self._task is not None:
            await self._task
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer

    def current(self) -> PriceEvent | None:
        """The price in force now, among those heard."""
        return self.schedule.current(self.clock())

    def current_message(self) -> Message | None:
        """The message shown now (as of the board's last timer or command)."""
        return self.board.current()

    def showing(self) -> MessageDisplayed | None:
        """The shown message as the application should show it (text hidden while locked)."""
        return self.board.showing()

    def unlock(self, message_id: int, pin: str) -> str:
        """Reveal a protected message if the application's ``pin_check`` accepts ``pin``."""
        if self.pin_check is None:
            raise MessageError("no PIN hook: protected messages cannot be unlocked")
        if not self.pin_check(pin):
            raise MessageError(f"PIN refused for message {message_id}")
        displayed = self.board.unlock(message_id)
        self._stream.emit(displayed)
        assert displayed.text is not None
        return displayed.text

    def confirm(self, message_id: int) -> None:
        """Always raises :class:`~zse.messaging.MessageError`: Message Confirmation
        (D.5.2.4.2) is not an inter-PAN command (SE B.5), so a device that never joined cannot
        confirm. The message stays shown, unconfirmed, for its duration."""
        raise MessageError(
            f"message {message_id} was received over inter-PAN: Message Confirmation is not an "
            "inter-PAN command (SE B.5), so it cannot be confirmed"
        )

    async def get_current_price(
        self, *, dst: EUI64 | None = None, dst_pan_id: int = 0xFFFF, timeout: float = 2.0
    ) -> PriceEvent | None:
        """Ask for the current price (Get Current Price, D.4.2.3.1): of ``dst`` or of any ESI
        in range. ``None`` if no answer comes within ``timeout`` seconds (an ESI without a
        price stays silent); :class:`InvalidFrame` if the answer does not decode."""
        self.start()
        tsn = next(self._tsn) & 0xFF
        options = GetCurrentPriceOptions.Requestor_Rx_On_When_Idle
        payload = encode_se(
            _GET_CURRENT_PRICE, {"command_options": options}, tsn=tsn, from_server=False
        )
        future: asyncio.Future[PriceEvent] = asyncio.get_running_loop().create_future()
        self._pending[tsn] = (dst, future)
        try:
            await self.service.send(
                self.service.frame(
                    cluster_id=PRICE, payload=payload, dst_pan_id=dst_pan_id, dst=dst
                )
            )
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            del self._pending[tsn]

    async def _run(self) -> None:
        async for frame in self._inbox:
            self.handle(frame)

    async def _timers(self) -> None:
        """Wake at the board's next deadline (or a new command) and apply what is due."""
        while True:
            self._wake.clear()
            deadline = self.board.next_deadline()
            wait = None if deadline is None else max(0, deadline - self.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._emit_all(self.board.handle_timeout(self.clock()))

    def _emit_all(self, events: list[BoardEvent]) -> None:
        for event in events:
            self._stream.emit(event)

    def handle(self, frame: InterPanFrame) -> None:
        """Act on one admitted frame (what the receiving task does with each); the board's
        timers (expiry, scheduled starts) run only while started."""
        try:
            command = decode_se(frame)
        except InvalidFrame as exc:
            self.malformed += 1
            LOGGER.warning("ignoring %s", exc)
            self._fail_pending(frame, exc)
            return
        if not command.from_server:
            return  # another device's request
        src, src_pan = frame.src_ieee, frame.src_pan_id
        fields = command.fields
        if command.definition is _PUBLISH_PRICE:
            try:
                event = PriceEvent.from_fields(fields)
            except ValueError as exc:
                error = InvalidFrame(f"{_describe(frame)}: Publish Price: {exc}")
                self.malformed += 1
                LOGGER.warning("ignoring %s", error)
                self._fail_pending(frame, error)
                return
            pending = self._pending.get(command.header.tsn)
            answer = (
                pending is not None
                and pending[0] in (None, frame.src_ieee)
                and not pending[1].done()
            )
            new = self._keep(event, answered=answer)
            self._stream.emit(
                InterPanPriceReceived(price=event, new=new, source_ieee=src, source_pan_id=src_pan)
            )
            if answer:
                assert pending is not None
                pending[1].set_result(event)
        elif command.definition in (_DISPLAY_MESSAGE, _DISPLAY_PROTECTED):
            self._on_display(frame, command)
        elif command.definition is _CANCEL_MESSAGE:
            message_id = int(fields.message_id)
            self._stream.emit(
                InterPanMessageCancelled(
                    message_id=message_id,
                    message_control=fields.message_control,
                    source_ieee=src,
                    source_pan_id=src_pan,
                )
            )
            self._board(self.board.cancel(message_id, self.clock()))
        elif command.definition is _CANCEL_ALL:
            when = int(fields.implementation_date_time)
            self._stream.emit(
                InterPanAllMessagesCancelled(
                    implementation_time=when, source_ieee=src, source_pan_id=src_pan
                )
            )
            self._board(self.board.cancel_all(when, self.clock()))
        else:
            LOGGER.debug("device ignores %s over inter-PAN", command.name)

    def _keep(self, event: PriceEvent, *, answered: bool) -> bool:
        """Add a heard price to the schedule within ``max_prices`` (O(max_prices))."""
        key = (event.provider_id, event.issuer_event_id)
        answered = self._heard.pop(key, False) or answered
        self._heard[key] = answered
        new = self.schedule.add(event, self.clock())
        if len(self._heard) > self.max_prices:
            victim = next((k for k, a in self._heard.items() if not a), None)
            if victim is None:
                victim = next(iter(self._heard))
            del self._heard[victim]
            self.schedule.forget(*victim)
        return new

    def _on_display(self, frame: InterPanFrame, command: SeCommand) -> None:
        """Display (Protected) Message: refused if its transmission bits forbid inter-PAN
        (D.5.2.3.1.1.2), else reported and put on the board."""
        fields = command.fields
        control = fields.message_control
        protected = command.definition is _DISPLAY_PROTECTED
        if control.transmission not in INTERPAN_TRANSMISSIONS:
            self.refused += 1
            LOGGER.warning(
                "%s: %s %d refused: its transmission %s forbids inter-PAN",
                _describe(frame),
                command.name,
                fields.message_id,
                control.transmission.name,
            )
            return
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
        self._stream.emit(heard)
        if heard.confirmation_not_possible:
            LOGGER.info(
                "%s: message %d asks for a confirmation; shown, but Message Confirmation is "
                "not an inter-PAN command (SE B.5)",
                _describe(frame),
                heard.message_id,
            )
        message = message_from_command(fields, protected=protected)
        self._board(self.board.display(message, self.clock()))

    def _board(self, events: list[BoardEvent]) -> None:
        """Emit what the board did and let the timers re-read its next deadline."""
        self._emit_all(events)
        self._wake.set()

    def _fail_pending(self, frame: InterPanFrame, error: InvalidFrame) -> None:
        """A malformed answer to our request fails it with the decoding error."""
        if frame.cluster_id != PRICE:
            return
        try:
            header = ZclHeader.from_bytes(frame.payload)
        except InvalidFrame:
            return
        pending = self._pending.get(header.tsn)
        if (
            pending is not None
            and header.direction is Direction.Server_to_Client
            and pending[0] in (None, frame.src_ieee)
            and not pending[1].done()
        ):
            pending[1].set_exception(error)
