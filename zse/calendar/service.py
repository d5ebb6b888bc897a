"""Calendar over ZCL (SE 1.2 D.9): the ESI publishes and answers, a device puts together and reads.

The asyncio shells of :mod:`zse.calendar.protocol`: they decode a Calendar frame with
:mod:`zse.calendar.wire`, hand it to the protocol core with the time and carry out the
:class:`~zse.zcl.frame.Step` it returns. With a ``store`` the server keeps its calendars and
its last Cancel Calendar across a restart (a record that does not load is quarantined, never
served); each change it stores is told to its listeners (:class:`CalendarStored`: the ESI's
Prepayment server follows the Friendly Credit calendar). The client's timer tells
:class:`~zse.calendar.protocol.CalendarChanged` when the value in force changes.
``clock()`` gives ZigBee time (seconds since 2000-01-01 UTC).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import zigpy.types as t
from zigpy.zcl import foundation

from zse.calendar.core import (
    CalendarCancellation,
    CalendarReading,
    Calendars,
    CalendarSchedule,
    calendar_from_record,
    calendar_record,
)
from zse.calendar.protocol import (
    CalendarCancelled,
    CalendarChanged,
    CalendarClientProtocol,
    CalendarReceived,
    CalendarServerProtocol,
)
from zse.calendar.wire import Calendar
from zse.errors import InvalidFrame
from zse.records import U8, U32, Fields, RecordError, check, load_each
from zse.se.ids import CALENDAR
from zse.store import Batch, Store
from zse.time.core import ZoneYear
from zse.time.service import system_clock
from zse.zcl.codec import decode_command, refusal
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import ZclPort, carry_out
from zse.zcl.events import EventStream, in_hand
from zse.zcl.frame import Send, Step, ZclMessage
from zse.zcl.timer import Timer

__all__ = [
    "CALENDAR",
    "CalendarCancelled",
    "CalendarChanged",
    "CalendarClient",
    "CalendarReceived",
    "CalendarServer",
    "CalendarStored",
]

LOGGER = logging.getLogger(__name__)

_CANCELLATION_KEY = "cancellation"
_CANCELLATION = Fields({"provider_id": U32, "issuer_calendar_id": U32, "calendar_type": U8})


def _step(
    protocol: CalendarServerProtocol | CalendarClientProtocol,
    msg: ZclMessage,
    now: Callable[[], int],
) -> Step:
    """Screened, else decoded and received (a payload that does not decode:
    MALFORMED_COMMAND; a command Calendar does not define: UNSUP_CLUSTER_COMMAND)."""
    screened = protocol.screen(msg)
    if screened is not None:
        return screened
    try:
        command, _ = decode_command(
            Calendar, msg.command_id, msg.payload, from_server=msg.from_server
        )
    except InvalidFrame as exc:
        LOGGER.warning("bad Calendar command from 0x%04X: %s", msg.src_nwk, exc)
        return Step(status=refusal(exc))
    return protocol.receive(msg, command, now())


@dataclass(frozen=True)
class CalendarStored:
    """The ESI's calendars changed (SE 1.2 D.9.2): a calendar of ``calendar_type`` recorded
    (published) or forgotten (``cancelled``), committed to the store first."""

    calendar_type: int
    provider_id: int
    issuer_calendar_id: int
    cancelled: bool = False


def _key(calendar: CalendarSchedule) -> str:
    return f"{calendar.calendar_type}/{calendar.provider_id}/{calendar.issuer_calendar_id}"


class CalendarServer:
    """The ESI's Calendar server (SE 1.2 D.9.2): publishes calendars, answers requests.

    With a ``store`` each calendar published and the last Cancel Calendar are committed
    before they are sent, and :meth:`start` loads them back (a damaged record is
    quarantined and skipped). It holds at most 16 calendars per calendar type (the
    timeline's bound; the latest starts go first)."""

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
        self.namespace = namespace or f"calendar.server/{endpoint.endpoint_id}"
        self.protocol = CalendarServerProtocol()
        self.calendars: Calendars = self.protocol.calendars
        self._stream: EventStream[CalendarStored] = EventStream()
        #: one publication at a time, from what it displaces to its commit and keeping
        self._changing = asyncio.Lock()
        #: the keys of the calendar records the store may hold (never fewer than it holds)
        self._records: set[str] = set()

    def on_event(
        self, listener: Callable[[CalendarStored], Awaitable[Any] | None]
    ) -> Callable[[], None]:
        """Call ``listener`` with each change of the calendars (:class:`CalendarStored`), once
        stored and before anything is sent; :meth:`publish` and :meth:`cancel` return once
        what the listener returned is done. Returns a function that removes it."""
        return self._stream.on_event(listener)

    async def _stored(self, change: CalendarStored) -> None:
        await in_hand([self._stream.emit(change)])

    async def start(self) -> None:
        """Load the stored calendars, then serve the cluster. The records of calendars not
        held once all are loaded (superseded or overlapped by a newer one, over, past the
        bound: as a store written before each publication deleted them has) are deleted."""
        if self.store is not None:
            stale = set(await self.store.load_with(self.namespace, self._load))
            if stale:
                await self.store.commit(_deleting(self.namespace, stale))
            self._records -= stale
        self.endpoint.add_handler(CALENDAR, self._on_message)

    def _load(self, records: dict[str, Any], on_bad: Callable[[RecordError], None]) -> list[str]:
        """Put the stored calendars back; the keys of those loaded but not held."""
        now = self.clock()
        loaded: list[str] = []

        def load(key: str, value: Any) -> None:
            if key == _CANCELLATION_KEY:
                check(value, _CANCELLATION)
                self.protocol.last_cancellation = CalendarCancellation(**value)
                return
            calendar = calendar_from_record(value)
            if _key(calendar) != key:
                raise ValueError("stored under another calendar's key")
            self.calendars.put(calendar, now)
            loaded.append(key)

        load_each(sorted(records.items()), load, namespace=self.namespace, on_bad=on_bad)
        self._records = set(loaded)
        held = {_key(calendar) for calendar in self.calendars.held(now)}
        return [key for key in loaded if key not in held]

    async def publish(
        self,
        calendar: CalendarSchedule,
        *,
        dst: int | None = None,
        dst_ep: int = 0xFF,
        dst_mode: t.AddrMode = t.AddrMode.NWK,
    ) -> None:
        """Record a calendar (stored first, with its start "now" resolved) and, if ``dst``
        is given, send it there: Publish Calendar, then its parts. Held once stored
        (:meth:`_commit`). :class:`ValueError`, nothing stored or sent, for a calendar that
        would not be held (:meth:`~zse.calendar.core.Calendars.put`)."""
        async with self._changing:  # what displaced() saw is what put() then holds
            step, change = await self._publish(calendar, _to(dst, dst_ep, dst_mode))
        await self._stored(change)
        await carry_out(self.endpoint, step, lambda _: None)

    async def _publish(
        self, calendar: CalendarSchedule, to: Destination | None
    ) -> tuple[Step, CalendarStored]:
        """Check, store and keep ``calendar``: what :meth:`publish` sends and tells."""
        now = self.clock()
        resolved = calendar.with_start(now) if calendar.start_time == 0 else calendar
        self.protocol.check(resolved)
        kept, gone = self.calendars.displaced(resolved, now)
        if not kept:  # sent, it would be a calendar the server does not answer for
            raise ValueError(
                f"calendar {_key(resolved)} issue {resolved.issuer_event_id} would not be "
                "held: an older issue of a calendar held, or a newer calendar of its type "
                "overlaps it (SE 1.2 D.9.2.4.1)"
            )
        keep = {_key(c) for c in self.calendars.held(now)} - {_key(c) for c in gone}
        keep.add(_key(resolved))
        dropped = self._records - keep  # superseded, overlapped, over: their records go
        batch = _deleting(self.namespace, dropped)
        batch.put(self.namespace, _key(resolved), calendar_record(resolved))
        change = CalendarStored(
            resolved.calendar_type, resolved.provider_id, resolved.issuer_calendar_id
        )
        self._records |= keep
        await self._commit(batch, lambda: self.protocol.publish(resolved, now, to), change)
        self._records -= dropped
        return self.protocol.publish(resolved, now, to), change

    async def cancel(
        self,
        cancellation: CalendarCancellation,
        *,
        dst: int | None = None,
        dst_ep: int = 0xFF,
        dst_mode: t.AddrMode = t.AddrMode.NWK,
    ) -> None:
        """Forget a calendar (in the store too: :meth:`_commit`) and, if ``dst`` is given,
        send Cancel Calendar there."""
        now, to = self.clock(), _to(dst, dst_ep, dst_mode)
        key = (
            f"{cancellation.calendar_type}/{cancellation.provider_id}/"
            f"{cancellation.issuer_calendar_id}"
        )
        record = {
            "provider_id": cancellation.provider_id,
            "issuer_calendar_id": cancellation.issuer_calendar_id,
            "calendar_type": cancellation.calendar_type,
        }
        change = CalendarStored(
            cancellation.calendar_type,
            cancellation.provider_id,
            cancellation.issuer_calendar_id,
            cancelled=True,
        )
        async with self._changing:
            kept = {_key(c) for c in self.calendars.held(now)} - {key}
            dropped = (self._records - kept) | {key}  # and those over: as publish()
            batch = _deleting(self.namespace, dropped).put(
                self.namespace, _CANCELLATION_KEY, record
            )
            await self._commit(batch, lambda: self.protocol.cancel(cancellation, now, to), change)
            self._records -= dropped
            step = self.protocol.cancel(cancellation, now, to)
        await self._stored(change)
        await carry_out(self.endpoint, step, lambda _: None)

    async def _commit(
        self, batch: Batch, make: Callable[[], object], change: CalendarStored
    ) -> None:
        """Commit ``batch`` (with a store) before the change is made: a commit that fails,
        or is cancelled before its transaction, changes nothing (the change was made first:
        served, and followed by the prepay account, though a restart did not have it); one
        cancelled during its transaction, which the store carries out (:attr:`Batch.landed
        <zse.store.Batch.landed>`), is made (``make``) and told (``change``, its listeners'
        work awaited) before it raises, as stored: the prepay account followed such a
        calendar only after a restart."""
        if self.store is None:
            return
        try:
            await self.store.commit(batch)
        except BaseException:
            if batch.landed is not None:
                make()
                await self._stored(change)
            raise

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        return await carry_out(self.endpoint, _step(self.protocol, msg, self.clock), lambda _: None)


def _deleting(namespace: str, keys: set[str]) -> Batch:
    """A batch deleting ``keys``: the records of calendars no longer held (one over, then
    left alone by the calendar that ended it, cancelled or moved to another type, would
    otherwise come back in force at a restart)."""
    batch = Batch()
    for key in sorted(keys):
        batch.delete(namespace, key)
    return batch


def _to(dst: int | None, dst_ep: int, dst_mode: t.AddrMode) -> Destination | None:
    return None if dst is None else Destination.of(dst, dst_ep, dst_mode)


class CalendarClient:
    """A HAN device's Calendar client (SE 1.2 D.9.3): puts calendars together and reads them.

    ``on_event`` hears :class:`CalendarReceived`, :class:`CalendarCancelled` and
    :class:`CalendarChanged` (the value in force changed: at a calendar's entry or when a
    calendar arrives). :meth:`sync` asks the server for its calendars and the parts missing;
    :meth:`at` answers what is in force."""

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        server_nwk: int = 0x0000,
        server_ep: int,
        clock: Callable[[], int] = system_clock,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.protocol = CalendarClientProtocol(server=Destination.device(server_nwk, server_ep))
        self.calendars: Calendars = self.protocol.calendars
        self._stream: EventStream[CalendarReceived | CalendarCancelled | CalendarChanged] = (
            EventStream()
        )
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._timer = Timer("Calendar client timer", logger=LOGGER)
        self._timer.add(self.protocol, self._timed, clock=self.clock)

    @property
    def server(self) -> Destination:
        """The Calendar server asked (the ESI's endpoint)."""
        assert self.protocol.server is not None
        return self.protocol.server

    @server.setter
    def server(self, server: Destination) -> None:
        self.protocol.server = server

    @property
    def zone(self) -> ZoneYear | None:
        """TimeZone and DST for calendars on standard or local time (from the Time cluster)."""
        return self.protocol.zone

    @zone.setter
    def zone(self, zone: ZoneYear | None) -> None:
        """Set the zone; what is in force is told again if it now reads otherwise."""
        self.protocol.zone = zone
        for event in self.protocol.changes(self.clock()):
            self._stream.emit(event)
        self._timer.update()

    def start(self) -> None:
        """Take Calendar commands arriving on the endpoint; arm the timer."""
        self.endpoint.add_handler(CALENDAR, self._on_message)
        self._timer.start()

    async def stop(self) -> None:
        """Stop the timer."""
        await self._timer.stop()

    def at(self, utc: int | None = None, calendar_type: int = 0) -> CalendarReading | None:
        """What the calendar of ``calendar_type`` says at ``utc`` (default now), or None."""
        return self.protocol.at(self.clock() if utc is None else utc, calendar_type)

    def clear(self) -> int:
        """Forget every calendar (:meth:`CalendarClientProtocol.clear`); returns how many."""
        dropped = self.protocol.clear()
        self._timer.update()
        return dropped

    async def sync(self) -> None:
        """Send Get Calendar (every calendar from the one in force now); the answers are put
        together as they arrive, and what they lack is asked for once the frames settle
        (:data:`~zse.calendar.protocol.SETTLE_SECONDS`)."""
        await self._ask(self.protocol.get_calendar(self.server))

    async def ask_missing(self) -> None:
        """Ask for every part missing (Get Day Profiles, Get Week Profiles, Get Seasons) and
        the special days of each calendar heard of since the last call."""
        for send in self.protocol.ask_missing(self.server, self.clock()):
            await self._ask(send)

    async def ask_cancellation(self) -> None:
        """Send Get Calendar Cancellation; a Cancel Calendar answer is acted on."""
        await self._ask(self.protocol.get_calendar_cancellation(self.server))

    async def _ask(self, request: Send) -> None:
        await carry_out(self.endpoint, Step(sends=(request,)), self._stream.emit)

    async def _timed(self, step: Step) -> None:
        """A timeout's step: its events told, its Get commands (parts missing) sent."""
        await carry_out(self.endpoint, step, self._stream.emit)

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        step = _step(self.protocol, msg, self.clock)
        self._timer.update()
        return await carry_out(self.endpoint, step, self._stream.emit)
