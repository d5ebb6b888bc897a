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

The decisions are made by the sans-IO cores of :mod:`zse.interpan.se_core`
(:class:`~zse.interpan.se_core.EsiCore`, :class:`~zse.interpan.se_core.SeClientCore`; the
events and :class:`SeCommand` are defined there and re-exported here): the classes below
decode, feed the core, send what it returns and emit its events.
Every frame is encoded and decoded with the features' wire modules (:mod:`zse.price.wire`,
:mod:`zse.messaging.wire`). Default responses are disabled: a
Default Response is not an inter-PAN command, so an ESI with no current price (where the network
answer would be Default Response NOT_FOUND, D.4.2.3.1) stays silent and the request times out;
Price Acknowledgement and Message Confirmation are not inter-PAN commands either. The window,
the whitelist and the rate limits of the :class:`~zse.interpan.service.InterPanService`
underneath apply to everything received and sent here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Final

from zigpy.types import EUI64
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import CommandSchema, ZCLCommandDef

from zse.errors import InvalidFrame
from zse.interpan._codec import InterPanFrame
from zse.interpan._zcl import Direction, FrameType, ZclHeader
from zse.interpan.se_core import (
    INTERPAN_TRANSMISSION_VALUES,
    ClientEvent,
    ClientStep,
    EsiCore,
    InterPanAllMessagesCancelled,
    InterPanMessage,
    InterPanMessageCancelled,
    InterPanPriceReceived,
    PriceRequested,
    SeClientCore,
    SeCommand,
    SeSend,
    describe,
    reply_limiter,
)
from zse.interpan.service import InterPanService
from zse.interpan.window import SourceLimiter
from zse.messaging import BoardEvent, Message, MessageBoard, MessageDisplayed, MessageError
from zse.messaging.wire import Messaging
from zse.price import PriceEvent, PriceSchedule
from zse.price.wire import Price
from zse.se.ids import MESSAGING, PRICE
from zse.se.types import (
    MessageControl,
    MessageImportance,
    MessageTransmission,
)
from zse.time.service import system_clock
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.events import EventStream
from zse.zcl.timer import Timer

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

#: Message control transmission values that allow inter-PAN (D.5.2.3.1.1.2).
INTERPAN_TRANSMISSIONS: Final = frozenset(
    value for value in MessageTransmission if value in INTERPAN_TRANSMISSION_VALUES
)


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


def decode_se(frame: InterPanFrame) -> SeCommand:
    """Decode the Price or Messaging command ``frame`` carries.

    Raises :class:`~zse.errors.InvalidFrame` saying which frame and what is wrong: another
    cluster, a global or manufacturer-specific command, an unknown command, or a field that
    does not decode (named with its byte offset in the command payload).
    """
    cluster = _CLUSTERS.get(frame.cluster_id)
    if cluster is None:
        raise InvalidFrame(
            f"{describe(frame)}: cluster 0x{frame.cluster_id:04X} is not Price or Messaging"
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
        raise InvalidFrame(f"{describe(frame)}: {exc}") from None
    assert definition is not None  # decode_command refused unknown commands
    return SeCommand(frame, header, definition, fields, trailing)


def encode_se(
    definition: ZCLCommandDef, fields: dict[str, Any], *, tsn: int, from_server: bool
) -> bytes:
    """The ZCL frame of an SE command: zigpy's header (cluster-specific, default response
    disabled) and the payload from :func:`zse.zcl.codec.encode_command`."""
    direction = Direction.Server_to_Client if from_server else Direction.Client_to_Server
    schema: type[CommandSchema] = definition.schema
    header = ZclHeader.cluster(direction, int(definition.id), tsn & 0xFF)
    return header.to_bytes() + encode_command(schema(**fields))


def _frame_of(service: InterPanService, send: SeSend) -> InterPanFrame:
    """The inter-PAN frame that carries what a core decided to send."""
    cluster = _CLUSTERS[send.cluster_id]
    table = cluster.client_commands if send.from_server else cluster.server_commands
    payload = encode_se(
        table[send.command_id], send.fields, tsn=send.tsn, from_server=send.from_server
    )
    return service.frame(
        cluster_id=send.cluster_id, payload=payload, dst_pan_id=send.dst_pan_id, dst=send.dst
    )


class _Shell:
    """What both shells show of their core: the prices kept, the frames that did not decode."""

    core: EsiCore | SeClientCore

    @property
    def schedule(self) -> PriceSchedule:
        return self.core.schedule

    @property
    def malformed(self) -> int:
        return self.core.malformed


class InterPanEsi(_Shell):
    """The ESI's side of SE over inter-PAN: prices on request, messages to any device.

    ``service`` is the ESI's :class:`InterPanService` (its window and whitelist police what it
    hears and sends); ``schedule`` the prices to serve; ``clock()`` ZigBee UTCTime.
    ``limiter`` bounds the answers to Get Current Price, per requester and in all (default
    :func:`reply_limiter`); a request it refuses is not answered (:attr:`throttled` counts
    them), as if lost. Call :meth:`serve` (e.g. as a task) to answer requests; it ends when
    the service closes. The decisions are :class:`~zse.interpan.se_core.EsiCore`'s
    (:attr:`core`); this class decodes, sends what the core returns and emits its events.
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
        self.clock = clock
        self.core: EsiCore = EsiCore(schedule=schedule, limiter=limiter)
        self._inbox = service.subscribe([PRICE, MESSAGING])
        self._stream: EventStream[PriceRequested] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events

    @property
    def limiter(self) -> SourceLimiter:
        return self.core.limiter

    @property
    def throttled(self) -> int:
        return self.core.throttled

    async def serve(self) -> None:
        """Answer Get Current Price until the service closes."""
        async for frame in self._inbox:
            await self.handle(frame)

    async def handle(self, frame: InterPanFrame) -> None:
        """Act on one admitted frame (what :meth:`serve` does with each)."""
        try:
            command = decode_se(frame)
        except InvalidFrame as exc:
            self.core.malformed_frame(exc)
            return
        sends, events = self.core.receive(command, now=self.service.now(), utc=self.clock())
        for event in events:
            self._stream.emit(event)
        for send in sends:
            try:
                await self.service.send(_frame_of(self.service, send))
                ok = True
            except OSError as exc:  # no MAC acknowledgement: the device will ask again
                LOGGER.debug("answer to %s not delivered: %s", send.dst, exc)
                ok = False
            for event in self.core.delivered(send, ok=ok):
                self._stream.emit(event)

    async def publish_price(
        self, event: PriceEvent, *, dst: EUI64 | None = None, dst_pan_id: int = 0xFFFF
    ) -> None:
        """Record ``event`` and send it unsolicited (to ``dst``, else every device in range)."""
        await self._send(
            self.core.publish_price(event, utc=self.clock(), dst=dst, dst_pan_id=dst_pan_id)
        )

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
        send = self.core.display_message(
            message_id,
            message,
            control=control if control is not None else message_control(),
            start_time=start_time,
            duration_in_minutes=duration_in_minutes,
            dst=dst,
            dst_pan_id=dst_pan_id,
        )
        await self._send(send)

    async def cancel_message(
        self,
        message_id: int,
        *,
        control: MessageControl | None = None,
        dst: EUI64 | None = None,
        dst_pan_id: int = 0xFFFF,
    ) -> None:
        """Send Cancel Message (D.5.2.3.2) to ``dst`` or every device in range."""
        control = control if control is not None else message_control()
        await self._send(
            self.core.cancel_message(message_id, control=control, dst=dst, dst_pan_id=dst_pan_id)
        )

    async def _send(self, send: SeSend) -> None:
        await self.service.send(_frame_of(self.service, send))


class InterPanSeClient(_Shell):
    """A device's side of SE over inter-PAN: asks for the price, hears prices and messages.

    Call :meth:`start` to receive (events: :class:`InterPanPriceReceived`,
    :class:`InterPanMessage`, :class:`InterPanMessageCancelled`,
    :class:`InterPanAllMessagesCancelled`, then the :mod:`zse.messaging` board events
    ``MessageScheduled`` / ``MessageDisplayed`` / ``MessageReplaced`` / ``MessageExpired`` /
    ``MessageCancelled`` exactly as a joined ``MessagingClient`` emits them). Prices heard are
    kept in :attr:`schedule` until they end (one heard after its end is not kept), messages on
    :attr:`board` (``capacity`` messages, SE D.5.3 rules); the timers (message starts and
    expiries, price ends) run while started. ``clock()`` gives ZigBee UTCTime; ``pin_check`` is the
    application's PIN hook for protected messages.

    Anyone can send a Publish Price over inter-PAN from any address, so the schedule keeps at
    most ``max_prices`` prices (by provider and issuer event id): past that, the price heard
    longest ago that was not the answer to one of this client's requests is forgotten (an
    answer only when every kept price is one), so each frame costs the same however many
    sources a flood uses. The decisions are :class:`~zse.interpan.se_core.SeClientCore`'s
    (:attr:`core`); this class decodes, sends, emits, and runs one timer from the core's
    :meth:`~zse.interpan.se_core.SeClientCore.next_deadline`.
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
        self.core: SeClientCore = SeClientCore(capacity=capacity, max_prices=max_prices)
        self.service = service
        self.clock = clock
        self.pin_check = pin_check
        self._inbox = service.subscribe([PRICE, MESSAGING])
        self._pending: dict[int, asyncio.Future[PriceEvent | None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._timer = Timer("inter-PAN client timer (messages, price ends)", logger=LOGGER)
        self._timer.add(self.core, self._emit_all, clock=self.clock)
        self._stream: EventStream[ClientEvent] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events

    @property
    def board(self) -> MessageBoard:
        return self.core.board

    @property
    def max_prices(self) -> int:
        return self.core.max_prices

    @property
    def refused(self) -> int:
        return self.core.refused

    def start(self) -> None:
        """Start receiving, and the message board's timers."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run())
            self._timer.start()

    async def close(self) -> None:
        """Stop receiving (the service stays open)."""
        self.service.unsubscribe(self._inbox)
        if self._task is not None:
            await self._task
        await self._timer.stop()

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
        price stays silent) or the answer had ended when it came (not kept either);
        :class:`InvalidFrame` if the answer does not decode."""
        self.start()
        send = self.core.request_price(dst=dst, dst_pan_id=dst_pan_id)
        future: asyncio.Future[PriceEvent | None] = asyncio.get_running_loop().create_future()
        self._pending[send.tsn] = future
        try:
            await self.service.send(_frame_of(self.service, send))
            async with asyncio.timeout(timeout):  # not wait_for (3.11, gh-86296)
                return await future
        except TimeoutError:
            return None
        finally:
            del self._pending[send.tsn]
            self.core.forget_request(send.tsn)

    async def _run(self) -> None:
        async for frame in self._inbox:
            self.handle(frame)

    def _emit_all(self, events: Iterable[BoardEvent]) -> None:
        for event in events:
            self._stream.emit(event)

    def handle(self, frame: InterPanFrame) -> None:
        """Act on one admitted frame (what the receiving task does with each); the board's
        timers (expiry, scheduled starts) run only while started."""
        try:
            command = decode_se(frame)
        except InvalidFrame as exc:
            step = self.core.malformed_frame(frame, exc)
        else:
            step = self.core.receive(command, utc=self.clock())
        self._apply(step)

    def _apply(self, step: ClientStep) -> None:
        """Emit the step's events, settle the requests it answers, and let the timer re-read
        the core's next deadline if the board changed."""
        for event in step.events:
            self._stream.emit(event)
        for tsn, answer in step.answers:
            future = self._pending.get(tsn)
            if future is None or future.done():
                continue
            if isinstance(answer, InvalidFrame):
                future.set_exception(answer)
            else:
                future.set_result(answer)
        if step.board:
            self._timer.update()
