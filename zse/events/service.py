"""Events over ZCL (SE 1.2 D.11): the ESI's event logs (server) and a HAN device reading them
(client). Thin asyncio shells of :mod:`zse.events.protocol`; a frame that does not decode is
refused MALFORMED_COMMAND, a command Events does not define UNSUP_CLUSTER_COMMAND (ZCL 2.5.12).

The server keeps its logs in a :class:`zse.store.Store` (one record per log, committed before
the event is pushed or told; a damaged record is quarantined and not served), and logs a
cleared log itself (Event Log Cleared, 0x0604). A Clear Event Log Request whose store write
fails clears nothing: the logs are put back and the device is answered FAILURE. Each clear
asked (:class:`~zse.events.protocol.EventLogClearRequested`) is journalled with the cleared
logs and told once (:class:`~zse.zcl.events.Untold`): after a restart if the process was
killed before its listeners had it; at once, in a task of the server's, if its write was
carried out after its handler was cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, Final

from zigpy.zcl import foundation

from zse.devmgmt.core import EventConfigurations
from zse.errors import InvalidFrame, StoreError
from zse.events.core import Event, EventId, EventLog, Recorded
from zse.events.protocol import (
    EventLogClearRequested,
    EventLogRead,
    EventsClientProtocol,
    EventsServerProtocol,
)
from zse.events.wire import ALL_EVENT_IDS, NO_END_TIME, Events, LogId
from zse.installcode import parse_eui64
from zse.records import STR, U8, U16, Fields, Opt, check
from zse.se.ids import EVENTS
from zse.store import Batch, Store, write_at_stop
from zse.time.service import system_clock
from zse.zcl.codec import decode_command, refusal
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import ZclPort, carry_out, request
from zse.zcl.events import STOP_WAIT, EventStream, Untold
from zse.zcl.frame import Step, ZclMessage

__all__ = ["EVENTS", "EventsClient", "EventsServer"]

LOGGER = logging.getLogger(__name__)

#: The journal kind of a Clear Event Log Request stored with the logs and not yet told.
_TOLD: Final = "told"
_TOLD_SHAPE: Final = Fields({"nwk": U16, "ieee": Opt(STR), "log_id": U8, "cleared": U8})


def _told_record(asked: EventLogClearRequested) -> dict[str, Any]:
    """The ``"told"`` journal entry of a clear asked: committed with the cleared logs."""
    ieee = None if asked.source_ieee is None else str(asked.source_ieee)
    return {"nwk": asked.source_nwk, "ieee": ieee, "log_id": asked.log_id, "cleared": asked.cleared}


def _clear_requested(value: Any) -> EventLogClearRequested:
    """A journalled ``"told"`` entry (:func:`_told_record`), checked: the event to tell."""
    check(value, _TOLD_SHAPE)
    ieee = None if value["ieee"] is None else parse_eui64(value["ieee"])
    return EventLogClearRequested(
        source_nwk=value["nwk"], source_ieee=ieee, log_id=value["log_id"], cleared=value["cleared"]
    )


def _step(protocol: EventsServerProtocol | EventsClientProtocol, msg: ZclMessage, now: int) -> Step:
    screened = protocol.screen(msg)
    if screened is not None:
        return screened
    try:
        command, _ = decode_command(
            Events, msg.command_id, msg.payload, from_server=msg.from_server
        )
    except InvalidFrame as exc:
        LOGGER.warning("bad Events command from 0x%04X: %s", msg.src_nwk, exc)
        return Step(status=refusal(exc))
    return protocol.receive(msg, command, now)


class EventsServer:
    """The ESI's Events server (SE 1.2 D.11.2): its logs, read and cleared by HAN devices.

    ``configurations``: Device Management's event configuration (which log each event goes
    to, which are pushed). ``on_event`` hears :class:`~zse.events.protocol.
    EventLogClearRequested`."""

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        clock: Callable[[], int] = system_clock,
        store: Store | None = None,
        namespace: str | None = None,
        configurations: EventConfigurations | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.store = store
        self.namespace = namespace or f"events.server/{endpoint.endpoint_id}"
        self.protocol = EventsServerProtocol(EventLog(configurations))
        self._stream: EventStream[Any] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._remove: Callable[[], None] | None = None
        self._lock = asyncio.Lock()
        self._untold: Untold[Any] = Untold(self._stream, self._mark_told)

    @property
    def log(self) -> EventLog:
        return self.protocol.log

    async def start(self, *, tell: bool = True) -> None:
        """Load the logs kept before a restart, serve the cluster, and tell the clears asked
        and stored but not told before it.

        ``tell=False`` holds them, and those asked from now on, until :meth:`tell_untold`
        (the ESI tells once its first listener is attached)."""
        untold: list[tuple[int, EventLogClearRequested]] = []
        if self.store is not None:
            records = await self.store.load(self.namespace)
            bad: list[Any] = []
            self.log.load(records, namespace=self.namespace, on_bad=bad.append)
            await self.store.quarantine(*bad)
            await self.store.prune(self.namespace)  # the clears told before
            untold = await self.store.unreported_with(self.namespace, _clear_requested)
        self._untold.hold(untold)
        self._remove = self.endpoint.add_handler(EVENTS, self._on_message)
        if tell:
            await self.tell_untold()

    def hold_untold(self) -> None:
        """Hold the events from now on until :meth:`tell_untold` (:meth:`Untold.pause
        <zse.zcl.events.Untold.pause>`: the ESI has no listener, or stops)."""
        self._untold.pause()

    async def tell_untold(self) -> None:
        """Tell the clears asked and not yet told, oldest first, each marked told once its
        listeners have it in hand (:mod:`zse.zcl.events`); from then on each as it comes."""
        await self._untold.tell_untold()

    async def _mark_told(self, *seqs: int) -> None:
        if self.store is not None:
            await self.store.mark_reported(*seqs)

    async def stop(self, *, bound: float = STOP_WAIT) -> None:
        """Stop serving; commit the logs a write that failed or was cancelled before its
        transaction left (:func:`~zse.store.write_at_stop`: one commit, a failure logged),
        and wait for the clears a write stored after its caller was cancelled and that are
        being told (:meth:`Untold.stop <zse.zcl.events.Untold.stop>`: each marked, not told
        again after the restart). Again: nothing more.
        ``bound``: the longest wait for them (the ESI's stop shares one STOP_WAIT)."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        self._untold.close()
        async with self._lock:
            await write_at_stop(self._save, "the event logs")
        await self._untold.stop(bound)

    async def record(
        self, event_id: int, data: bytes = b"", *, push_to: Iterable[Destination] = ()
    ) -> Recorded:
        """Log an event as configured (committed first) and, when its configuration pushes it
        to the HAN, send Publish Event to each of ``push_to``. A push that cannot be
        delivered is logged, not raised: the event is in the log for the device to read."""
        async with self._lock:
            recorded, _ = self.protocol.record(event_id, self.clock(), data)
            await self._save()
        if recorded.push:
            event = recorded.event or Event(
                log_id=LogId.GENERAL, event_id=event_id, time=self.clock(), data=bytes(data)
            )
            for to in push_to:
                step = Step(sends=(self.protocol.publish_event(event, to),))
                try:
                    await carry_out(self.endpoint, step, self._stream.emit)
                except Exception as exc:  # an offline device reads the log later
                    LOGGER.info("Publish Event 0x%04X not delivered: %s", event_id, exc)
        return recorded

    async def _save(
        self, told: Iterable[EventLogClearRequested] = (), batch: Batch | None = None
    ) -> list[int]:
        """Commit the logs changed and a ``"told"`` journal entry per clear in ``told``, in
        one transaction (``batch``); the entries' sequence numbers (none without a store)."""
        changes = self.log.changes()
        if self.store is None:
            return []
        batch = Batch() if batch is None else batch
        for key, value in changes.items():
            batch.put(self.namespace, key, value)
        for asked in told:
            batch.append(self.namespace, _TOLD, _told_record(asked))
        if not len(batch):
            return []
        try:
            return await self.store.commit(batch)
        except BaseException:  # failed or cancelled: served already, written with the next
            if batch.landed is None:  # commit (unless the transaction carried it out)
                self.log.unsaved(changes)
            raise

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        async with self._lock:
            before = self.log.copy()
            step = _step(self.protocol, msg, self.clock())
            cleared = [e for e in step.events if isinstance(e, EventLogClearRequested)]
            if cleared and cleared[0].cleared:  # logged after the clear, as a meter does
                data = bytes((cleared[0].log_id,))
                self.protocol.record(EventId.EVENT_LOG_CLEARED, self.clock(), data)
            batch = Batch()
            try:
                seqs = await self._save(cleared, batch)
            except StoreError as exc:  # nothing cleared: what the store holds is served
                LOGGER.error("Clear Event Log not stored, so not done: %s", exc)
                self.log.put_back(before)
                step, cleared, seqs = Step(status=foundation.Status.FAILURE), [], []
            except BaseException as exc:  # cancelled (a stop): not cleared, unless stored
                if batch.landed is None:
                    self.log.put_back(before)
                elif cleared and isinstance(exc, asyncio.CancelledError):  # stored: told now
                    self._untold.tell_soon(zip(batch.landed, cleared, strict=True))
                raise
        told = [*zip(seqs, cleared, strict=True)] if seqs else [(None, e) for e in cleared]
        rest = tuple(e for e in step.events if not isinstance(e, EventLogClearRequested))
        try:
            return await carry_out(self.endpoint, replace(step, events=rest), self._stream.emit)
        finally:  # stored: told even when the answer could not be sent
            await self._untold.tell(told)


class EventsClient:
    """A HAN device's Events client (SE 1.2 D.11.3): reads and clears the ESI's logs and is
    told of Publish Event (``on_event``: :class:`~zse.events.protocol.EventPublished`,
    :class:`~zse.events.protocol.EventLogRead`, :class:`~zse.events.protocol.
    EventLogCleared`). :attr:`last_read` keeps the last log read (a change of tenancy drops
    it: :meth:`forget`)."""

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        server_nwk: int = 0x0000,
        server_ep: int,
        clock: Callable[[], int] = system_clock,
        request_timeout: float = 8.0,
    ) -> None:
        self.endpoint = endpoint
        self.server_nwk = server_nwk
        self.server_ep = server_ep
        self.clock = clock
        self.request_timeout = request_timeout
        self.protocol = EventsClientProtocol()
        self.last_read: EventLogRead | None = None
        self._stream: EventStream[Any] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._remove: Callable[[], None] | None = None
        #: Reads completed, by (server, TSN), for the request waiting on them (bounded).
        self._done: OrderedDict[tuple[int, int], EventLogRead] = OrderedDict()
        self._waiting: dict[tuple[int, int], asyncio.Future[EventLogRead]] = {}

    def start(self) -> None:
        self._remove = self.endpoint.add_handler(EVENTS, self._on_message)

    def stop(self) -> None:
        if self._remove is not None:
            self._remove()
            self._remove = None

    def forget(self) -> bool:
        """Drop the last log read; True when there was one."""
        had, self.last_read = self.last_read is not None, None
        return had

    def _server(self) -> Destination:
        return Destination.device(self.server_nwk, self.server_ep)

    async def get_event_log(
        self,
        *,
        log_id: int = LogId.ALL,
        event_id: int = ALL_EVENT_IDS,
        start_time: int = 0,
        end_time: int = NO_END_TIME,
        number_of_events: int = 0,
        event_offset: int = 0,
        full: bool = True,
    ) -> EventLogRead | None:
        """Get Event Log (D.11.2.3.1) with its filters; the events read (newest first), or
        None when nothing matched (NOT_FOUND) or the ESI did not answer."""
        send = self.protocol.get_event_log(
            self._server(),
            log_id=log_id,
            event_id=event_id,
            start_time=start_time,
            end_time=end_time,
            number_of_events=number_of_events,
            event_offset=event_offset,
            full=full,
        )
        try:
            reply = await request(self.endpoint, send, timeout=self.request_timeout)
        except (TimeoutError, OSError) as exc:
            LOGGER.info("Get Event Log failed: %s", exc)
            return None
        if not reply.is_cluster_command:
            return None
        key = (reply.src_nwk, reply.tsn)
        waiting: asyncio.Future[EventLogRead] = asyncio.get_running_loop().create_future()
        self._waiting[key] = waiting
        try:
            await self._on_message(reply)
            if key in self._done:
                return self._done.pop(key)
            return await asyncio.wait_for(waiting, self.request_timeout)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(key, None)
            self._done.pop(key, None)

    async def clear_event_log(self, log_id: int = LogId.ALL) -> int | None:
        """Clear Event Log Request (D.11.2.3.2): the Cleared Event Logs bits, None unanswered."""
        try:
            reply = await request(
                self.endpoint,
                self.protocol.clear_event_log(self._server(), log_id),
                timeout=self.request_timeout,
            )
        except (TimeoutError, OSError) as exc:
            LOGGER.info("Clear Event Log failed: %s", exc)
            return None
        if not reply.is_cluster_command:
            return None
        step = _step(self.protocol, reply, self.clock())
        await carry_out(self.endpoint, Step(events=step.events), self._stream.emit)
        return next((int(e.cleared) for e in step.events if hasattr(e, "cleared")), None)

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        step = _step(self.protocol, msg, self.clock())
        for event in step.events:
            if isinstance(event, EventLogRead):
                self.last_read = event
                key = (msg.src_nwk, msg.tsn)
                waiting = self._waiting.get(key)
                if waiting is not None and not waiting.done():
                    waiting.set_result(event)
                self._done[key] = event
                while len(self._done) > 4:
                    self._done.popitem(last=False)
        return await carry_out(self.endpoint, step, self._stream.emit)
