"""Messaging over ZCL (SE D.5): the ESI's server and a HAN device's client, persisted.

The decisions are :mod:`zse.messaging.protocol`'s (:class:`~zse.messaging.protocol.
MessagingServerProtocol` on the ESI, :class:`~zse.messaging.protocol.MessagingClientProtocol` on
the device, at the ZCL frame, on a :class:`~zse.messaging.MessageStore` and a
:class:`~zse.messaging.MessageBoard`); this module decodes, moves the frames over a
:class:`~zse.zcl.endpoint.ZclPort` and keeps the state in a :class:`zse.store.Store` with the
write-ahead recipe of docs/persistence.md: the new state (and any output owed) is committed
before the Default Response, the application event or the frame that depends on it.
``clock()`` gives ZigBee time (seconds since 2000-01-01 UTC).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import zigpy.types as t
from zigpy.zcl import foundation

from zse.errors import InvalidFrame
from zse.messaging.core import (
    CONFIRMATION_SHAPE,
    BoardEvent,
    Confirmation,
    ConfirmationRefused,
    Message,
    MessageBoard,
    MessageError,
    MessageStore,
    StoredMessage,
    message_from_command,
)
from zse.messaging.protocol import (
    MessageConfirmed,
    MessagingClientProtocol,
    MessagingServerProtocol,
    cancel_payload,
    display_payload,
)
from zse.messaging.wire import Messaging
from zse.records import STR, U16, U32, Fields, Int, check
from zse.se.ids import MESSAGING
from zse.store import Batch, Store, write_at_stop
from zse.time.service import system_clock
from zse.zcl.codec import decode_command, refusal
from zse.zcl.delivery import Destination, delivery, device_names
from zse.zcl.endpoint import ZclPort, carry_out
from zse.zcl.events import STOP_WAIT, EventStream, Untold
from zse.zcl.frame import Send, Step, ZclMessage
from zse.zcl.timer import Timer
from zse.zcl.undo import PutBack

__all__ = [
    "MESSAGING",
    "STEP_RETRY",
    "DeviceAddress",
    "MessageConfirmed",
    "MessagingClient",
    "MessagingServer",
    "cancel_payload",
    "display_payload",
    "message_from_command",
]

LOGGER = logging.getLogger(__name__)

#: Seconds after which the client's board step due (a message starting or ending, a Cancel
#: All Messages at its time) whose store write failed is taken again (zse's choice, as the
#: meter's SUPPLY_RETRY; put back as stored, it waited for the next input).
STEP_RETRY: Final = 30

#: The statuses of a command the client's board acted on (stored before they are returned).
_ACTED = (foundation.Status.SUCCESS, foundation.Status.NOT_FOUND)


_TOLD_SHAPE = Fields({"device": STR, "nwk": U16, "message_id": U32, "received_at": Int(0)})


def _told(value: Any) -> dict[str, Any]:
    """A journalled "confirmed" entry of the server (a confirmation to tell), checked."""
    check(value, _TOLD_SHAPE)
    return dict(value)


def _owed(value: Any) -> dict[str, Any]:
    """A journalled "confirm" entry of the client (a confirmation owed to the ESI), checked."""
    check(value, CONFIRMATION_SHAPE)
    Confirmation.from_record(value)  # its own checks (the response's length)
    return dict(value)


# -- the ESI ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DeviceAddress:
    """Where a HAN device's Messaging client is: network address, EUI-64, endpoint."""

    nwk: int
    ieee: t.EUI64
    endpoint: int


class MessagingServer:
    """The ESI's Messaging server (SE D.5.2): sends, cancels, answers, collects confirmations.

    The decisions are its :class:`~zse.messaging.protocol.MessagingServerProtocol`'s
    (:attr:`protocol`); this shell decodes, stores, sends and tells. With a ``store`` the
    messages, cancel-alls and confirmations survive a restart, and each confirmation is told to
    the application once (journal kind ``"confirmed"``, committed with the confirmation and
    marked once the listeners were called; one not marked is told after the next start).
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        clock: Callable[[], int] = system_clock,
        store: Store | None = None,
        namespace: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.store = store
        self.namespace = namespace or f"messaging.server/{endpoint.endpoint_id}"
        self.protocol = MessagingServerProtocol()
        self._stream: EventStream[MessageConfirmed] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._remove: Callable[[], None] | None = None
        #: Confirmations not yet told (journal seq, None without a store; None for an
        #: entry whose message is gone: only marked), oldest first; held until
        #: :meth:`tell_untold` when :meth:`start` was asked not to tell.
        self._untold: Untold[MessageConfirmed] = Untold(self._stream, self._mark_told)

    @property
    def messages(self) -> MessageStore:
        """The messages sent, their cancellations and confirmations (the protocol core's)."""
        return self.protocol.messages

    @messages.setter
    def messages(self, messages: MessageStore) -> None:
        self.protocol.messages = messages

    async def start(self, *, tell: bool = True) -> None:
        """Load the stored state, serve the cluster, and tell confirmations not yet told.

        ``tell=False`` holds them, and the confirmations received from now on, until
        :meth:`tell_untold`: for an application whose listeners are attached after the start
        (the ESI tells once its first listener is attached)."""
        untold: list[tuple[int | None, MessageConfirmed | None]] = []
        if self.store is not None:
            self.messages = await self.store.load_with(
                self.namespace,
                lambda records, on_bad: MessageStore.from_records(
                    records, namespace=self.namespace, on_bad=on_bad
                ),
            )
            # Read before the cluster is served: a confirmation taken from now on is
            # journalled after this read, and told once, live or in order after these.
            untold = [
                (seq, event)
                for seq, told in await self.store.unreported_with(self.namespace, _told)
                for event in self.protocol.told(told).events or (None,)
            ]
        self._untold.hold(untold)
        self._remove = self.endpoint.add_handler(MESSAGING, self._on_message)
        if tell:
            await self.tell_untold()

    def hold_untold(self) -> None:
        """Hold the events from now on until :meth:`tell_untold` (:meth:`Untold.pause
        <zse.zcl.events.Untold.pause>`: the ESI has no listener, or stops)."""
        self._untold.pause()

    async def tell_untold(self) -> None:
        """Tell the application the confirmations not yet told, oldest first, each marked
        told once its listeners have it in hand (:mod:`zse.zcl.events`); from then on each is
        told as it comes. One told and then not marked (a listener failed, the process killed
        in between) is told again after the next start."""
        await self._untold.tell_untold()

    async def _mark_told(self, *seqs: int) -> None:
        if self.store is not None:
            await self.store.mark_reported(*seqs)

    async def stop(self, *, bound: float = STOP_WAIT) -> None:
        """Stop serving the cluster; commit the changes a write that failed or was cancelled
        before its transaction left (:func:`~zse.store.write_at_stop`: one commit, a failure
        logged), and wait for the confirmations a write stored after its handler was
        cancelled and that are being told (:meth:`Untold.stop <zse.zcl.events.Untold.stop>`:
        each marked, not told again after the restart). Again: nothing more.
        ``bound``: the longest wait for them (the ESI's stop shares one STOP_WAIT)."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        self._untold.close()
        await write_at_stop(self._save, "the Messaging server")
        await self._untold.stop(bound)

    async def save(self) -> None:
        """Commit what changed in :attr:`messages` (for callers that change it directly,
        like the ESI facade); the server's own methods save as they go."""
        await self._save()

    async def _save(self, *appends: tuple[str, Any], batch: Batch | None = None) -> list[int]:
        changes = self.messages.changes()
        if self.store is None:
            return []
        batch = Batch() if batch is None else batch
        for key, value in changes.items():
            if value is None:
                batch.delete(self.namespace, key)
            else:
                batch.put(self.namespace, key, value)
        for kind, value in appends:
            batch.append(self.namespace, kind, value)
        if not len(batch):
            return []
        try:
            return await self.store.commit(batch)
        finally:  # not stored (failed, or cancelled before its transaction): served already,
            if batch.landed is None:  # so written with the next commit
                self.messages.unsaved(changes)

    # -- application API ------------------------------------------------------------------

    def set_group_members(self, group: int, members: Iterable[t.EUI64 | str]) -> None:
        """Which devices are in ``group`` (for Get Last Message; EUI-64s as zigpy EUI64s or in
        any printed spelling); unknown groups reach all."""
        self.messages.set_members(group, device_names(members))

    async def display(
        self,
        message: Message,
        *,
        device: DeviceAddress | None = None,
        group: int | None = None,
        broadcast: bool = False,
    ) -> StoredMessage:
        """Store ``message`` and send it to a device, a group, or (``broadcast``) everyone.

        Raises :class:`~zse.messaging.MessageTooLong` beyond one unfragmented frame. The message
        is stored before it is sent: a device that misses it gets it with Get Last Message.
        A unicast that cannot be delivered raises zigpy's DeliveryError after storing.
        """
        stored, step = self.protocol.display(
            message,
            self.clock(),
            to=_destination(device, group, broadcast),
            device=None if device is None else str(device.ieee),
            group=group,
        )
        await self._save()
        await carry_out(self.endpoint, step, self._stream.emit)
        return stored

    async def cancel(
        self,
        message_id: int,
        *,
        device: DeviceAddress | None = None,
        group: int | None = None,
        broadcast: bool = False,
    ) -> None:
        """Cancel a message (D.5.2.3.2) for a device, a group or everyone.

        The deprecated Message Control field is sent as 0x00 (SE 1.2 D.5.2.3.2.1.2).
        """
        step = self.protocol.cancel(
            message_id, self.clock(), to=_destination(device, group, broadcast)
        )
        await self._save()
        await carry_out(self.endpoint, step, self._stream.emit)

    async def cancel_all(
        self,
        implementation_time: int = 0,
        *,
        device: DeviceAddress | None = None,
        group: int | None = None,
        broadcast: bool = False,
    ) -> int:
        """Cancel all messages at ``implementation_time`` (0 = now) (D.5.2.3.4); returns the
        absolute time, which Get Message Cancellation reports."""
        when, step = self.protocol.cancel_all(
            implementation_time, self.clock(), to=_destination(device, group, broadcast)
        )
        await self._save()
        await carry_out(self.endpoint, step, self._stream.emit)
        return when

    def confirmations(self, message_id: int) -> dict[str, Confirmation]:
        """Who confirmed ``message_id``, and how."""
        return {
            device: record.confirmation
            for device, record in self.messages.confirmations.get(message_id, {}).items()
        }

    def unconfirmed(self, message_id: int, devices: Iterable[t.EUI64 | str]) -> list[str]:
        """Which of ``devices`` (zigpy EUI64s or EUI-64s in any printed spelling) never
        confirmed ``message_id``, named as confirmations name them
        (``00:0d:6f:00:0a:00:00:01``)."""
        return self.messages.unconfirmed(message_id, device_names(devices))

    async def record(
        self,
        message: Message,
        *,
        device: t.EUI64 | str | None = None,
        group: int | None = None,
        members: Iterable[t.EUI64 | str] | None = None,
        devices: Iterable[t.EUI64 | str] = (),
    ) -> StoredMessage:
        """Store ``message`` for Get Last Message (D.5.2.4.1) without sending it: for one
        device (a zigpy EUI64 or any printed spelling, named as
        :func:`~zse.zcl.delivery.device_name` does), several ``devices`` (e.g. a registry
        group's members at the send), a group (with its ``members`` when they are known), or
        everyone. Send it with :meth:`send_display`."""
        name = None if device is None else device_names([device])[0]
        known = None if members is None else device_names(members)
        stored = self.protocol.record(
            message,
            self.clock(),
            device=name,
            group=group,
            members=known,
            devices=device_names(devices),
        )
        await self._save()
        return stored

    async def forget(self, device: t.EUI64 | str) -> list[int]:
        """Drop a de-provisioned ``device`` (a zigpy EUI64 or any printed spelling) from every
        message held, committed before it returns: Get Last Message (D.5.2.4.1) no longer
        answers it those messages (:meth:`MessageStore.forget`: a message left for no one
        is dropped). Returns the ids of the messages changed."""
        changed = self.messages.forget(device_names([device])[0])
        await self._save()
        return changed

    def stored(self, message_id: int) -> StoredMessage | None:
        """The record of message ``message_id`` as sent: to whom, when, cancelled when."""
        return self.messages.messages.get(message_id)

    def retimed(self, message_id: int) -> Message | None:
        """The stored message ``message_id`` as it is sent now: what Get Last Message answers
        for it (SE D.5.2.4.1: a started message as start time 0 with the remaining minutes, a
        future start kept); None if it is unknown or over (its duration ran out, or it was
        cancelled)."""
        return self.messages.retimed(message_id, self.clock())

    async def send_display(self, message: Message, to: Destination) -> None:
        """Send Display Message (or Display Protected Message, D.5.2.3.1) to ``to``, as
        given (:meth:`retimed` gives a stored message's timing now)."""
        await carry_out(self.endpoint, self.protocol.send_display(message, to), self._stream.emit)

    async def send_cancel(self, message_id: int, to: Destination) -> None:
        """Send Cancel Message (D.5.2.3.2) to ``to``, without recording it (:meth:`cancel`
        records it)."""
        await carry_out(self.endpoint, self.protocol.send_cancel(message_id, to), self._stream.emit)

    # -- requests from devices ------------------------------------------------------------

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        if msg.from_server:
            return None
        try:
            command, _ = decode_command(Messaging, msg.command_id, msg.payload, from_server=False)
        except InvalidFrame as exc:  # UNSUP_CLUSTER_COMMAND for a command D.5.2.4 lacks
            LOGGER.warning("bad Messaging command from 0x%04X: %s", msg.src_nwk, exc)
            return refusal(exc)
        step = self.protocol.receive(msg, command, self.clock())
        if not step.events:
            return await carry_out(self.endpoint, step, self._stream.emit)
        # A new confirmation: journalled with the state before it is told (told once).
        batch = Batch()
        try:
            seqs = await self._save(*(("confirmed", e.told()) for e in step.events), batch=batch)
        except asyncio.CancelledError:  # stored all the same (during its transaction):
            if batch.landed:  # told now (it was told only after the next restart)
                self._untold.tell_soon(zip(batch.landed, step.events, strict=True))
            raise
        return await self._tell(step, seqs)

    async def _tell(self, step: Step, seqs: list[int]) -> foundation.Status | None:
        """Carry out ``step`` (its events are confirmations journalled as ``seqs``), then
        tell them, each marked once the listeners have it in hand (:meth:`Untold.tell
        <zse.zcl.events.Untold.tell>`: held instead before :meth:`tell_untold`, or from a
        pause that came while the answer was sent; stored, they are told even when it could
        not be)."""
        told = [*zip(seqs, step.events, strict=True)] if seqs else [(None, e) for e in step.events]
        try:
            return await carry_out(
                self.endpoint, dataclasses.replace(step, events=()), self._stream.emit
            )
        finally:
            await self._untold.tell(told)


def _destination(
    device: DeviceAddress | None, group: int | None, broadcast: bool
) -> Destination | None:
    """Where the application's ``device`` / ``group`` / ``broadcast`` arguments send a command
    (None: nowhere, it is only recorded)."""
    if device is not None:
        return Destination.device(device.nwk, device.endpoint)
    if group is not None:
        return Destination.group(group)
    if broadcast:
        return Destination.broadcast()
    return None


# -- the HAN device ---------------------------------------------------------------------------


class MessagingClient:
    """A HAN device's Messaging client (SE D.5.3): shows, schedules, expires, confirms.

    The decisions are its :class:`~zse.messaging.protocol.MessagingClientProtocol`'s
    (:attr:`protocol`); this shell decodes, stores, sends, re-sends and tells. Events
    (:mod:`zse.messaging` ``Message*`` dataclasses) go to ``on_event`` callbacks and
    ``events()`` iterators. With a ``store`` the board and the confirmations owed survive a
    restart; a confirmation is journalled (kind ``"confirm"``, the exact wire fields) before it
    is sent and re-sent after a restart until the ESI answers it. ``pin_check(pin)`` is the
    application's PIN hook for protected messages.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        server_nwk: int = 0x0000,
        server_ep: int,
        clock: Callable[[], int] = system_clock,
        store: Store | None = None,
        namespace: str | None = None,
        pin_check: Callable[[str], bool] | None = None,
        capacity: int = 8,
        retry_interval: float = 60.0,
        request_timeout: float = 8.0,
    ) -> None:
        self.endpoint = endpoint
        self.protocol = MessagingClientProtocol(
            Destination.device(server_nwk, server_ep), MessageBoard(capacity=capacity)
        )
        self.clock = clock
        self.store = store
        self.namespace = namespace or f"messaging.client/{endpoint.endpoint_id}"
        self.pin_check = pin_check
        self.capacity = capacity
        self.retry_interval = retry_interval
        self.request_timeout = request_timeout
        self._stream: EventStream[BoardEvent] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._remove: Callable[[], None] | None = None
        self._lock = asyncio.Lock()
        self._pending: dict[int, dict[str, Any]] = {}  # journal seq -> confirmation record
        self._unstored = 0  # negative keys for confirmations owed without a store
        self._retry = _Retry(retry_interval)
        self._board_due = PutBack(self.protocol, self._board_records, self._put_board)
        self._timer = self._new_timer()

    @property
    def server_nwk(self) -> int:
        """The ESI's network address (the protocol core's requests go there)."""
        return self.protocol.server.address

    @server_nwk.setter
    def server_nwk(self, nwk: int) -> None:
        self.protocol.server = Destination.device(nwk, self.server_ep)

    @property
    def server_ep(self) -> int:
        """The ESI's Messaging server endpoint."""
        return self.protocol.server.endpoint

    @server_ep.setter
    def server_ep(self, endpoint: int) -> None:
        self.protocol.server = Destination.device(self.server_nwk, endpoint)

    @property
    def board(self) -> MessageBoard:
        """The messages held and what is shown when (the protocol core's)."""
        return self.protocol.board

    @board.setter
    def board(self, board: MessageBoard) -> None:
        self.protocol.board = board

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, *, fetch: bool = True) -> None:
        """Load the stored board, take commands, tell the application what is shown now,
        re-send confirmations owed, and (``fetch``) ask the ESI for cancellations and the
        last message (Get Message Cancellation, then Get Last Message, D.5.2.4)."""
        if self.store is not None:
            self.board = await self.store.load_with(
                self.namespace,
                lambda records, on_bad: MessageBoard.from_records(
                    records, capacity=self.capacity, namespace=self.namespace, on_bad=on_bad
                ),
            )
            for seq, record in await self.store.unreported_with(self.namespace, _owed):
                self._pending[seq] = record
        self._remove = self.endpoint.add_handler(MESSAGING, self._on_message)
        async with self._lock:
            step = self.protocol.resume(self.clock())
            await self._save()
        await carry_out(self.endpoint, step, self._stream.emit)
        self._timer = self._new_timer()  # on the board just loaded
        self._rearm()
        self._timer.start()
        if fetch:
            await self.fetch()
        for seq in sorted(self._pending):  # confirmations owed from before a restart
            if await self._deliver(seq) is None:
                break

    async def stop(self) -> None:
        """Stop taking commands and running timers (the stored state stays)."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        await self._timer.stop()

    async def fetch(self) -> None:
        """Ask the ESI for Cancel All Messages not yet seen, then for the last message."""
        earliest = None
        for _ in range(16):  # bounded: one Cancel All per answer
            reply = await self._request(self.protocol.get_message_cancellation(earliest))
            if reply is None or not reply.is_cluster_command:
                break
            command = await self._take(reply)
            earliest = None if command is None else self.protocol.next_cancellation(reply, command)
            if earliest is None:
                break
        reply = await self._request(self.protocol.get_last_message())
        if reply is not None and reply.is_cluster_command:
            await self._take(reply)

    async def _request(self, send: Send) -> Any:
        """Send a request the protocol core built, to the ESI, and wait for its answer (None
        when none came)."""
        assert send.to is not None
        try:
            return await self.endpoint.request(
                send.to.address,
                send.to.endpoint,
                send.cluster_id,
                send.command_id,
                send.payload,
                encrypt=delivery(send.to).encrypt,
                timeout=self.request_timeout,
            )
        except Exception as exc:  # offline ESI: the device works on what it has
            LOGGER.info("Messaging request 0x%02X to the ESI failed: %s", send.command_id, exc)
            return None

    # -- application API ------------------------------------------------------------------

    def current(self) -> Message | None:
        """The message shown now."""
        return self.board.current()

    async def clear_before(self, when: int) -> list[BoardEvent]:
        """Drop the messages received before ``when`` (a change of tenancy at that time, SE
        1.2 D.10.2.4.1), as a Cancel All Messages implemented then (D.5.2.3.4): stored, then
        told. A repeat drops nothing more."""
        async with self._lock:
            events = self.protocol.board.cancel_all(when, self.clock())
            await self._save()
        self._rearm()
        for event in events:
            self._stream.emit(event)
        return events

    def held(self) -> list[Message]:
        """Every message held (shown or scheduled)."""
        return self.board.held()

    async def unlock(self, message_id: int, pin: str) -> str:
        """Reveal a protected message if the application's ``pin_check`` accepts ``pin``."""
        if self.pin_check is None:
            raise MessageError("no PIN hook: protected messages cannot be unlocked")
        if not self.pin_check(pin):
            raise MessageError(f"PIN refused for message {message_id}")
        async with self._lock:
            step = self.protocol.unlock(message_id)
            await self._save()
        await carry_out(self.endpoint, step, self._stream.emit)
        (displayed,) = step.events
        assert displayed.text is not None
        return str(displayed.text)

    async def confirm(
        self,
        message_id: int,
        *,
        answer: bool | None = None,
        response: bytes | str | None = None,
    ) -> bool:
        """Confirm a message (plain, or enhanced with a yes/no ``answer`` and ``response``).

        The confirmation is stored before it is sent; returns True once the ESI accepted it
        (Default Response SUCCESS, D.5.2.4.2), False if it is still owed (no answer: it is
        re-sent every ``retry_interval`` and after restarts). The ESI answering with a failure
        status (NOT_FOUND: it does not hold the message; INVALID_FIELD...) raises
        :class:`~zse.messaging.ConfirmationRefused` (a :class:`~zse.messaging.MessageError`),
        and the confirmation is not sent again.
        """
        if isinstance(response, str):
            response = response.encode("utf-8")
        async with self._lock:
            confirmation = self.board.confirm(
                message_id, self.clock(), answer=answer, response=response
            )
            record = confirmation.to_record()
            batch = Batch()
            try:
                seqs = await self._save(("confirm", record), batch=batch)
            except BaseException:
                if batch.landed:  # cancelled during its transaction: stored, so owed
                    self._pending[batch.landed[0]] = record
                    self._rearm()
                raise
        if seqs:
            seq = seqs[0]
        else:
            self._unstored -= 1
            seq = self._unstored
        self._pending[seq] = record
        status = await self._deliver(seq)
        if status is None:
            return False
        if status != foundation.Status.SUCCESS:
            raise ConfirmationRefused(message_id, status, _status_name(status))
        return True

    # -- internals ------------------------------------------------------------------------

    async def _save(self, *appends: tuple[str, Any], batch: Batch | None = None) -> list[int]:
        """Commit the board and ``appends`` (in ``batch``: a confirmation whose commit was
        cancelled during its transaction, which the store carries out, :attr:`Batch.landed
        <zse.store.Batch.landed>`, is owed, re-sent by the timer; it was only after a
        restart)."""
        if self.store is None:
            return []
        batch = (Batch() if batch is None else batch).replace(
            self.namespace, self.board.to_records()
        )
        for kind, value in appends:
            batch.append(self.namespace, kind, value)
        return await self.store.commit(batch)

    async def _deliver(self, seq: int) -> int | None:
        """Send the confirmation owed as ``seq`` (the outbox): the ESI's status once it
        answered (then it is no longer owed, refused or not), None while it is still owed."""
        record = self._pending.get(seq)
        if record is None:
            return foundation.Status.SUCCESS
        send = self.protocol.confirmation(Confirmation.from_record(record))
        reply = await self._request(send)
        if reply is None:
            self._rearm()  # the timer retries it
            return None
        status = _answer_status(reply)
        if status != foundation.Status.SUCCESS:  # sending it again would be refused again
            LOGGER.warning(
                "the ESI refused the confirmation of message %d: %s",
                record["message_id"],
                _status_name(status),
            )
        self._pending.pop(seq, None)
        if self.store is not None and seq >= 0:
            await self.store.mark_reported(seq)
        return status

    def _new_timer(self) -> Timer:
        """The client's one timer: the board's deadlines (ZigBee time) and the re-sends."""
        timer = Timer("Messaging client timer", logger=LOGGER)
        timer.add(
            self._board_due, self._expired, clock=self.clock, lock=self._lock, retry=STEP_RETRY
        )
        timer.add(self._retry, self._resend)
        return timer

    def _rearm(self) -> None:
        """After an input: a retry is due ``retry_interval`` after confirmations were first seen
        owed; the timer re-reads the deadlines."""
        self._retry.owed(bool(self._pending), asyncio.get_running_loop().time())
        self._timer.update()

    def _board_records(self) -> dict[str, Any]:
        return self.board.to_records()

    def _put_board(self, records: dict[str, Any]) -> None:
        """The board as ``records`` hold it (as :meth:`start` loads it)."""
        self.board = MessageBoard.from_records(
            records, capacity=self.capacity, namespace=self.namespace
        )

    async def _expired(self, step: Step) -> None:
        """The board's timeout (lock held): store what changed, then tell the application.
        A write cancelled during its transaction (a stop), which the store carries out
        (:attr:`Batch.landed <zse.store.Batch.landed>`), tells the step's events before it
        raises: stored, they were never told (a restart tells only what is shown, not a
        message's end). A write that fails (or is cancelled before its transaction) puts the
        board back as stored and raises: the timer takes the step again :data:`STEP_RETRY`
        seconds later (it was kept in memory, never told: the next commit stored it, a
        restart told it)."""
        if step.events:
            batch = Batch()
            try:
                await self._save(batch=batch)
            except BaseException as exc:
                self._board_due.write_raised(batch.landed, exc, step.events, self._stream.emit)
                raise
        await carry_out(self.endpoint, step, self._stream.emit)

    async def _resend(self, _: None) -> None:
        """Re-send the confirmations owed, oldest first, until one fails."""
        for seq in sorted(self._pending):
            if await self._deliver(seq) is None:
                break
        self._retry.owed(bool(self._pending), asyncio.get_running_loop().time())

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        return (await self._receive(msg))[0]

    async def _take(self, reply: ZclMessage) -> Any:
        """Act on an answer from the ESI as on any command; its decoded command (None if
        it was refused)."""
        return (await self._receive(reply))[1]

    async def _receive(self, msg: ZclMessage) -> tuple[foundation.Status | None, Any]:
        """Decode, feed the protocol core, store (accepted only once stored: the Default
        Response comes after), tell; the status owed and the decoded command."""
        command = None
        if msg.from_server:
            try:
                command, _ = decode_command(
                    Messaging, msg.command_id, msg.payload, from_server=True
                )
            except InvalidFrame as exc:  # UNSUP_CLUSTER_COMMAND for one D.5.2.3 lacks
                LOGGER.warning("bad Messaging command from 0x%04X: %s", msg.src_nwk, exc)
                return refusal(exc), None
        async with self._lock:
            step = self.protocol.receive(msg, command, self.clock())
            if step.status not in _ACTED:
                return step.status, None
            await self._save()
        await carry_out(self.endpoint, step, self._stream.emit)
        self._rearm()
        return step.status, command


def _answer_status(reply: ZclMessage) -> int:
    """The status the ESI answered a request with: a Default Response's (ZCL 2.5.12), SUCCESS
    for any other answer."""
    if (
        not reply.is_cluster_command
        and reply.command_id == foundation.GeneralCommand.Default_Response
        and len(reply.payload) >= 2
    ):
        return reply.payload[1]
    return foundation.Status.SUCCESS


def _status_name(status: int) -> str:
    try:
        return foundation.Status(status).name
    except ValueError:
        return f"status 0x{status:02X}"


class _Retry:
    """When owed confirmations are re-sent, in loop time (a source of the client's timer):
    ``interval`` seconds after they were first seen owed, then again after each attempt."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.at: float | None = None

    def owed(self, owed: bool, now: float) -> None:
        """Confirmations are (still) owed, or not, at ``now``."""
        if not owed:
            self.at = None
        elif self.at is None:
            self.at = now + self.interval

    def next_deadline(self) -> float | None:
        """When the next re-send is due."""
        return self.at

    def handle_timeout(self, now: float) -> None:
        """The re-send is due: the next one is set after it (:meth:`owed`)."""
        if self.at is not None and now >= self.at:
            self.at = None
