"""The sans-IO protocol cores of Messaging at the ZCL frame (SE D.5, issue #13.2).

:class:`MessagingServerProtocol` is the ESI's side (D.5.2): the Display Message, Display
Protected Message, Cancel Message and Cancel All Messages it sends, its answers to Get Last
Message and Get Message Cancellation, and the Message Confirmations it collects, on a
:class:`~zse.messaging.MessageStore`. Each takes a received frame (:class:`~zse.zcl.frame.
ZclMessage`) with its decoded command and the time (ZigBee UTCTime), and returns a
:class:`~zse.zcl.frame.Step`: the frames to send, the events, the Default Response status.

:class:`MessagingClientProtocol` is a HAN device's side (D.5.3): Display (Protected) Message,
Cancel Message and Cancel All Messages put on its :class:`~zse.messaging.MessageBoard` (the
board's events, the Default Response status), the board's deadlines, and the requests it makes
of the ESI (Get Message Cancellation then Get Last Message at start, Message Confirmation).
Those requests wait for an answer, so they are handed to the shell as :class:`~zse.zcl.frame.
Send` values to the ESI for its request-and-outbox loop (a confirmation is re-sent until the
ESI answers it), not in a :class:`~zse.zcl.frame.Step`.

Nothing here does I/O; :mod:`zse.messaging.service` is the asyncio shell.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import zigpy.types as t
from zigpy.zcl import foundation

from zse.messaging.core import (
    MAX_RESPONSE_BYTES,
    BoardEvent,
    Confirmation,
    Message,
    MessageBoard,
    MessageDisplayed,
    MessageError,
    MessageStore,
    StoredMessage,
    confirmed_in_command,
    message_from_command,
)
from zse.messaging.wire import Messaging
from zse.se.ids import MESSAGING, MessagingClientCommand, MessagingServerCommand
from zse.se.types import (
    ExtendedMessageControl,
    MessageConfirmationControl,
    MessageControl,
    MessageImportance,
    MessageTransmission,
)
from zse.zcl.codec import encode_command
from zse.zcl.delivery import Destination, device_name
from zse.zcl.frame import Send, Step, ZclMessage

__all__ = [
    "MessageConfirmed",
    "MessagingClientProtocol",
    "MessagingServerProtocol",
    "cancel_all_payload",
    "cancel_payload",
    "confirmation_from",
    "confirmation_payload",
    "display_command",
    "display_payload",
]

LOGGER = logging.getLogger(__name__)

# Commands the server sends (D.5.2.3) and receives (D.5.2.4).
_DISPLAY = MessagingClientCommand.DISPLAY_MESSAGE
_CANCEL = MessagingClientCommand.CANCEL_MESSAGE
_DISPLAY_PROTECTED = MessagingClientCommand.DISPLAY_PROTECTED_MESSAGE
_CANCEL_ALL = MessagingClientCommand.CANCEL_ALL_MESSAGES
_GET_LAST = MessagingServerCommand.GET_LAST_MESSAGE
_CONFIRM = MessagingServerCommand.MESSAGE_CONFIRMATION
_GET_CANCELLATION = MessagingServerCommand.GET_MESSAGE_CANCELLATION
_SERVER_CMDS = Messaging.ServerCommandDefs
_CLIENT_CMDS = Messaging.ClientCommandDefs


# -- wire <-> core ----------------------------------------------------------------------------


def cancel_payload(message_id: int) -> bytes:
    """A Cancel Message command payload (D.5.2.3.2); the deprecated Message Control field is
    sent as 0x00 (SE 1.2 D.5.2.3.2.1.2)."""
    return encode_command(
        _CLIENT_CMDS.cancel_message.schema(
            message_id=message_id, message_control=MessageControl.deserialize(b"\x00")[0]
        )
    )


def cancel_all_payload(implementation_time: int) -> bytes:
    """A Cancel All Messages command payload (D.5.2.3.4); 0 means now."""
    schema = _CLIENT_CMDS.cancel_all_messages.schema
    return encode_command(schema(implementation_date_time=implementation_time))


def display_command(message: Message) -> int:
    """Display Message, or Display Protected Message for a protected ``message`` (D.5.2.3)."""
    return _DISPLAY_PROTECTED if message.protected else _DISPLAY


def display_payload(message: Message, *, confirmed: bool | None = None) -> bytes:
    """The Display Message (or Display Protected Message) payload for ``message``
    (SE D.5.2.3.1); ``confirmed`` sets the extended control's confirmed bit."""
    control = MessageControl(
        transmission=MessageTransmission(message.transmission),  # type: ignore[no-untyped-call]
        importance=MessageImportance(message.importance),  # type: ignore[no-untyped-call]
        reserved=0,
        enhanced_confirmation_required=int(message.enhanced_confirmation_required),
        reserved2=0,
        confirmation_required=int(message.confirmation_required),
    )
    schema = (_CLIENT_CMDS.display_protected_message if message.protected else
              _CLIENT_CMDS.display_message).schema  # fmt: skip
    extended = None
    if confirmed is not None:
        extended = ExtendedMessageControl(  # type: ignore[no-untyped-call]
            ExtendedMessageControl.Message_Confirmed if confirmed else 0
        )
    return encode_command(
        schema(
            message_id=message.message_id,
            message_control=control,
            start_time=message.start_time,
            duration_in_minutes=message.duration_in_minutes,
            message=message.text,
            extended_message_control=extended,
        )
    )


def confirmation_payload(confirmation: Confirmation) -> bytes:
    """A Message Confirmation payload (D.5.2.4.2); the enhanced fields only with an answer."""
    schema = _SERVER_CMDS.message_confirmation.schema
    control = None
    response = None
    if confirmation.answer is not None:
        control = MessageConfirmationControl(  # type: ignore[no-untyped-call]
            MessageConfirmationControl.Yes_Returned
            if confirmation.answer
            else MessageConfirmationControl.No_Returned
        )
        response = t.LVBytes(confirmation.response or b"")
    return encode_command(
        schema(
            message_id=confirmation.message_id,
            confirmation_time=confirmation.confirmation_time,
            message_confirmation_control=control,
            message_confirmation_response=response,
        )
    )


def confirmation_from(command: Any) -> Confirmation:
    """The :class:`~zse.messaging.Confirmation` a decoded Message Confirmation carries;
    :class:`~zse.messaging.MessageError` for a bad one: both "yes" and "no" returned
    (D.5.2.4.2.1.3; its reserved bits are ignored). A response text over 20 octets is cut to
    20 (logged), the answer kept."""
    control = command.message_confirmation_control
    answer: bool | None = None
    if control is not None:
        both = MessageConfirmationControl.Yes_Returned | MessageConfirmationControl.No_Returned
        if control & both == both:
            raise MessageError(
                f"Message Confirmation of message {int(command.message_id)} answers both yes "
                "and no (Message Confirmation Control 0x03, D.5.2.4.2.1.3)"
            )
        if control & MessageConfirmationControl.Yes_Returned:
            answer = True
        elif control & MessageConfirmationControl.No_Returned:
            answer = False
    response = command.message_confirmation_response
    text = None if response is None or answer is None else bytes(response)
    if text is not None and len(text) > MAX_RESPONSE_BYTES:
        # The yes/no is what the user answered: kept, with the first 20 octets of the text
        # (D.5.2.4.2.1.4 allows 20; Exegin's stack takes 32), rather than refused whole.
        LOGGER.warning(
            "Message Confirmation of message %d: response of %d octets cut to %d",
            int(command.message_id),
            len(text),
            MAX_RESPONSE_BYTES,
        )
        text = text[:MAX_RESPONSE_BYTES]
    return Confirmation(
        message_id=int(command.message_id),
        confirmation_time=int(command.confirmation_time),
        answer=answer,
        response=text,
    )


def _command(command_id: int, payload: bytes, to: Destination | None) -> Step:
    """A Step sending one Messaging command to ``to`` (nothing when ``to`` is None)."""
    if to is None:
        return Step()
    return Step(sends=(Send(cluster_id=MESSAGING, command_id=command_id, payload=payload, to=to),))


def _reply(msg: ZclMessage, command_id: int, payload: bytes) -> Step:
    return Step(
        sends=(Send(cluster_id=MESSAGING, command_id=command_id, payload=payload, reply_to=msg),)
    )


def _over_the_network(message: Message) -> None:
    """Refuse to send ``message`` over the network when its Message Control says anonymous
    inter-PAN only (D.5.2.3.1.1.2; zse.interpan sends those)."""
    if message.transmission == _INTERPAN_ONLY:
        raise MessageError(
            f"message {message.message_id}: its transmission is anonymous inter-PAN only "
            "(D.5.2.3.1.1.2): send it with zse.interpan, or with transmission 0 or 1"
        )


#: Message Control transmission "anonymous inter-PAN only" (D.5.2.3.1.1.2).
_INTERPAN_ONLY = int(MessageTransmission.Anonymous_InterPAN_Only)


# -- the ESI ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MessageConfirmed:
    """A device confirmed a message (Message Confirmation, D.5.2.4.2), told once.

    ``confirmation.answer`` is None for a plain confirmation, True / False for an enhanced
    yes / no, with ``confirmation.response`` the optional text (up to 20 octets).
    """

    device: str
    source_nwk: int | None
    message: Message
    confirmation: Confirmation
    received_at: int

    def told(self) -> dict[str, Any]:
        """The journal record that says this confirmation is to be told (kind
        ``"confirmed"``): the shell commits it before the event is emitted."""
        return {
            "device": self.device,
            "nwk": self.source_nwk,
            "message_id": self.message.message_id,
            "received_at": self.received_at,
        }


class MessagingServerProtocol:
    """The ESI's Messaging server at the ZCL frame (SE D.5.2), on :attr:`messages`.

    The application's calls (:meth:`display`, :meth:`cancel`, :meth:`cancel_all`) record in
    :attr:`messages` what is sent and return the frame to send; :meth:`receive` answers Get
    Last Message (D.5.2.4.1) and Get Message Cancellation (D.5.2.4.3) and records Message
    Confirmations (D.5.2.4.2), a new one as a :class:`MessageConfirmed` event. It has no
    deadline. ``now`` is ZigBee UTCTime.
    """

    def __init__(self, messages: MessageStore | None = None) -> None:
        self.messages = MessageStore() if messages is None else messages

    # -- the application ------------------------------------------------------------------

    def display(
        self,
        message: Message,
        now: int,
        *,
        to: Destination | None = None,
        device: str | None = None,
        group: int | None = None,
    ) -> tuple[StoredMessage, Step]:
        """Record ``message`` for ``device`` (its name), ``group`` or everyone, and send it
        to ``to`` (D.5.2.3.1 / D.5.2.3.3); :class:`~zse.messaging.MessageTooLong` beyond one
        unfragmented frame. The same message already sent (and still live) is sent as Get Last
        Message answers it (D.5.2.4.1: its remaining duration), in the window it was first
        sent with."""
        if to is not None:
            _over_the_network(message)
        stored = self.messages.display(message, now, device=device, group=group)
        return stored, self.send_display(stored.at(now) or message, to)

    def record(
        self,
        message: Message,
        now: int,
        *,
        device: str | None = None,
        group: int | None = None,
        members: Any = None,
        devices: Iterable[str] = (),
    ) -> StoredMessage:
        """Record ``message`` for Get Last Message without sending it; ``members`` (EUI-64s in
        any spelling) are the group's when they are known; ``devices`` more devices it goes
        to (:meth:`MessageStore.display`)."""
        if members is not None and group is not None:
            self.messages.set_members(group, (device_name(m) for m in members))
        return self.messages.display(message, now, device=device, group=group, devices=devices)

    def send_display(self, message: Message, to: Destination | None) -> Step:
        """Send Display (Protected) Message to ``to`` without recording it."""
        if to is not None:
            _over_the_network(message)
        return _command(display_command(message), display_payload(message), to)

    def cancel(self, message_id: int, now: int, *, to: Destination | None = None) -> Step:
        """Record Cancel Message (D.5.2.3.2) and send it to ``to``."""
        self.messages.cancel(message_id, now)
        return self.send_cancel(message_id, to)

    def send_cancel(self, message_id: int, to: Destination | None) -> Step:
        """Send Cancel Message to ``to`` without recording it."""
        return _command(_CANCEL, cancel_payload(message_id), to)

    def cancel_all(
        self, implementation_time: int, now: int, *, to: Destination | None = None
    ) -> tuple[int, Step]:
        """Record Cancel All Messages (D.5.2.3.4) at ``implementation_time`` (0 = now) and send
        it to ``to``; returns the absolute time Get Message Cancellation reports."""
        when = self.messages.cancel_all(implementation_time, now)
        return when, _command(_CANCEL_ALL, cancel_all_payload(implementation_time), to)

    def told(self, record: dict[str, Any]) -> Step:
        """The :class:`MessageConfirmed` event of a journalled ``"confirmed"`` record (one not
        yet told before a restart); no event if the message or confirmation is gone."""
        confirmation = self.messages.confirmations.get(record["message_id"], {})
        found = confirmation.get(record["device"])
        stored = self.messages.messages.get(record["message_id"])
        if found is None or stored is None:
            return Step()
        return Step(
            events=(
                MessageConfirmed(
                    device=record["device"],
                    source_nwk=record["nwk"],
                    message=stored.message,
                    confirmation=found.confirmation,
                    received_at=record["received_at"],
                ),
            )
        )

    # -- frames from devices --------------------------------------------------------------

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Act on a client-to-server Messaging command (a frame from a server is not ours:
        no status)."""
        if msg.from_server:
            return Step()
        device = device_name(msg.src_ieee, msg.src_nwk)
        if msg.command_id == _GET_LAST:
            return self._last_message(msg, device, now)
        if msg.command_id == _GET_CANCELLATION:
            when = self.messages.message_cancellation(int(command.earliest_implementation_time))
            if when is None:
                return Step(status=foundation.Status.NOT_FOUND)
            return _reply(msg, _CANCEL_ALL, cancel_all_payload(when))
        if msg.command_id == _CONFIRM:
            return self._confirmation(msg, command, device, now)
        return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)  # not a D.5.2.4 command

    def _last_message(self, msg: ZclMessage, device: str, now: int) -> Step:
        answer = self.messages.last_message(device, now)
        if answer is None:
            return Step(status=foundation.Status.NOT_FOUND)
        message, confirmed = answer
        return _reply(msg, display_command(message), display_payload(message, confirmed=confirmed))

    def _confirmation(self, msg: ZclMessage, command: Any, device: str, now: int) -> Step:
        try:
            confirmation = confirmation_from(command)
        except MessageError as exc:
            LOGGER.warning("bad Message Confirmation from 0x%04X: %s", msg.src_nwk, exc)
            return Step(status=foundation.Status.INVALID_FIELD)
        if not self.messages.sent_to(confirmation.message_id, device):
            # No such message for this device (D.5.2.4.2): never sent to it, or the id now
            # holds content sent to others only. NOT_FOUND, as Get Last Message answers it.
            return Step(status=foundation.Status.NOT_FOUND)
        if not self.messages.confirm(device, confirmation, now):
            return Step(status=foundation.Status.SUCCESS)
        event = MessageConfirmed(
            device=device,
            source_nwk=msg.src_nwk,
            message=self.messages.messages[confirmation.message_id].message,
            confirmation=confirmation,
            received_at=now,
        )
        return Step(events=(event,), status=foundation.Status.SUCCESS)

    # -- timers ---------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """The server has no deadline."""
        return None

    def handle_timeout(self, now: int) -> Step:
        """Nothing is ever due."""
        return Step()


# -- the HAN device ---------------------------------------------------------------------------


class MessagingClientProtocol:
    """A HAN device's Messaging client at the ZCL frame (SE D.5.3), on :attr:`board`.

    :meth:`receive` puts the ESI's commands on the board; :meth:`next_deadline` /
    :meth:`handle_timeout` are the board's (messages starting, ending, cancel-alls due). The
    requests to the ESI at ``server`` are built by :meth:`get_message_cancellation`,
    :meth:`get_last_message` and :meth:`confirmation` (of what the board's
    :meth:`~zse.messaging.MessageBoard.confirm` recorded). ``now`` is ZigBee UTCTime.
    """

    def __init__(self, server: Destination, board: MessageBoard | None = None) -> None:
        self.server = server
        self.board = MessageBoard() if board is None else board

    # -- frames from the ESI --------------------------------------------------------------

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Act on a server-to-client Messaging command: its board events, and NOT_FOUND for
        a Cancel Message of a message not held; a client-to-server frame is not ours, nor a
        command D.5.2.3 does not define (UNSUP_CLUSTER_COMMAND)."""
        if not msg.from_server:
            return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)
        if msg.command_id in (_DISPLAY, _DISPLAY_PROTECTED):
            return self._display(msg, command, now)
        if msg.command_id == _CANCEL:
            message_id = int(command.message_id)
            known = message_id in {m.message_id for m in self.board.held()}
            events = self.board.cancel(message_id, now)
            return _board(
                events, foundation.Status.SUCCESS if known else foundation.Status.NOT_FOUND
            )
        if msg.command_id == _CANCEL_ALL:
            return _board(self.board.cancel_all(int(command.implementation_date_time), now))
        return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)

    def _display(self, msg: ZclMessage, command: Any, now: int) -> Step:
        try:
            message = message_from_command(command, protected=msg.command_id == _DISPLAY_PROTECTED)
        except MessageError as exc:
            LOGGER.warning("bad Messaging command from 0x%04X: %s", msg.src_nwk, exc)
            return Step(status=foundation.Status.MALFORMED_COMMAND)
        if message.transmission == _INTERPAN_ONLY:
            # Received over the network while marked inter-PAN only: not shown, as
            # EmberZNet's Messaging client answers it (D.5.2.3.1.1.2).
            LOGGER.info(
                "Display Message %d over the network marked inter-PAN only: refused",
                message.message_id,
            )
            return Step(status=foundation.Status.INVALID_FIELD)
        confirmed = confirmed_in_command(command)
        sender = (msg.src_nwk, msg.src_ep)
        return _board(self.board.display(message, now, confirmed=confirmed, sender=sender))

    # -- the application ------------------------------------------------------------------

    def resume(self, now: int) -> Step:
        """At start (the board just loaded): what is due, and what is shown now told first
        unless a due event already shows it."""
        events = self.board.handle_timeout(now)
        showing = self.board.showing()
        if showing is not None and not any(isinstance(e, MessageDisplayed) for e in events):
            events = [showing, *events]
        return Step(events=tuple(events))

    def unlock(self, message_id: int) -> Step:
        """Reveal a protected message (the PIN was accepted): its :class:`~zse.messaging.
        MessageDisplayed` with the text."""
        return Step(events=(self.board.unlock(message_id),))

    # -- requests to the ESI --------------------------------------------------------------

    def confirmation(self, confirmation: Confirmation) -> Send:
        """Message Confirmation (D.5.2.4.2) of ``confirmation`` to the server that sent the
        message (the ESI at ``server`` when the board does not know, e.g. no longer holds it)."""
        sender = self.board.sender_of(confirmation.message_id)
        to = self.server if sender is None else Destination.device(*sender)
        payload = confirmation_payload(confirmation)
        return Send(cluster_id=MESSAGING, command_id=_CONFIRM, payload=payload, to=to)

    def get_message_cancellation(self, earliest: int | None = None) -> Send:
        """Get Message Cancellation (D.5.2.4.3) for Cancel All Messages from ``earliest`` on
        (None: after the last one the board applied)."""
        if earliest is None:
            last = self.board.last_cancel_all
            earliest = 0 if last is None else last + 1
        schema = _SERVER_CMDS.get_message_cancellation.schema
        return self._request(
            _GET_CANCELLATION, encode_command(schema(earliest_implementation_time=earliest))
        )

    def get_last_message(self) -> Send:
        """Get Last Message (D.5.2.4.1) to the ESI."""
        return self._request(_GET_LAST, b"")

    @staticmethod
    def next_cancellation(msg: ZclMessage, command: Any) -> int | None:
        """After the answer ``msg`` to Get Message Cancellation: the earliest time to ask
        for next, or None when it was not a Cancel All Messages (the ESI has no more)."""
        if msg.command_id != _CANCEL_ALL or not msg.is_cluster_command:
            return None
        return int(command.implementation_date_time) + 1

    def _request(self, command_id: int, payload: bytes) -> Send:
        return Send(cluster_id=MESSAGING, command_id=command_id, payload=payload, to=self.server)

    # -- timers ---------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """The board's next deadline (ZigBee UTCTime)."""
        return self.board.next_deadline()

    def handle_timeout(self, now: int) -> Step:
        """What the board does at ``now``: its events."""
        return Step(events=tuple(self.board.handle_timeout(now)))


def _board(events: list[BoardEvent], status: foundation.Status = foundation.Status.SUCCESS) -> Step:
    return Step(events=tuple(events), status=status)
