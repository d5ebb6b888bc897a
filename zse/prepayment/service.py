"""Prepayment over ZCL (SE 1.2 D.7): the asyncio shells of :mod:`zse.prepayment.protocol`.

:class:`PrepaymentServer` is the meter's side (served by the ESI): it decodes a Prepayment
frame, hands it to :class:`~zse.prepayment.protocol.PrepaymentServerProtocol` with the time,
stores the account when the frame changed it and only then sends the answer, and serves the
attributes. With a store, the account (credit, emergency credit, debts, the logs) survives a
restart (kill -9 included): it is the record ``account``, and each code applied
(``used/<digest>``) and registered (``registered/<digest>``) is a record of its own, all
written in the one commit of the change. A record that does not load is quarantined: a
damaged account starts from its configuration, yet every code applied stays refused. A
commit that fails undoes the change in memory and the top-up is answered Rejected - Error.
Each event the change caused is journalled in that same commit (kind ``"told"``) and marked
once the listeners have it in hand (:class:`~zse.zcl.events.Untold`): one not marked (the
process killed in between, a listener failed) is told after the next start, so a supply
interrupted is never stored without being told.

:class:`PrepaymentClient` is a display's side: :meth:`~PrepaymentClient.top_up`,
:meth:`~PrepaymentClient.select_emergency_credit`, the Get commands, and Read Attributes of the
Prepayment Information set (:meth:`~PrepaymentClient.read_status`); what the meter sends comes
as events.

``clock()`` gives ZigBee time. The account is fed by the meter's readings
(:meth:`PrepaymentServer.consume`, the ESI does it at each reading), and by one timer
(:class:`~zse.zcl.timer.Timer`) at the account's next deadline: a utility command's
Implementation Date/Time or Start Time, the end of a friendly credit period in use. What the
deadline applies is stored in one commit with the account (undone if the commit fails, and
then applied by the next reading or input); a deadline passed while the ESI was down is
applied once at :meth:`PrepaymentServer.start`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Final

from zigpy.zcl import foundation

from zse.calendar.core import Calendars, CalendarType
from zse.calendar.service import CalendarStored
from zse.errors import InvalidFrame, StoreError, ZseError
from zse.prepayment.core import (
    CreditExhausted,
    Debt,
    EmergencyCreditSelected,
    FriendlyCalendar,
    FriendlyCredit,
    LowCredit,
    PrepayAccount,
    PrepayConfig,
    PrepayEvent,
    TopUpAccepted,
    TopUpRefused,
    Validator,
    event_from_record,
    event_record,
)
from zse.prepayment.protocol import (
    DebtLogReceived,
    PaymentModeAnswered,
    PrepaymentClientProtocol,
    PrepaymentServerProtocol,
    SnapshotReceived,
    TopUpAnswered,
    TopUpLogReceived,
)
from zse.prepayment.wire import (
    CreditStatus,
    Prepayment,
    PrepaymentAlarmStatus,
    TopUpResult,
    mask_code,
)
from zse.records import Mismatch, RecordError, load_each
from zse.se.ids import (
    COST_CONSUMPTION_PERIODS,
    PREPAYMENT,
    PrepaymentAttribute,
    PrepaymentServerCommand,
    cost_consumption_attribute,
)
from zse.store import Batch, Store
from zse.time.core import ZoneYear, local_time_by
from zse.time.service import system_clock
from zse.zcl.codec import decode_command, refusal
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import ZclPort, carry_out, request
from zse.zcl.events import STOP_WAIT, EventStream, Untold
from zse.zcl.frame import Step, ZclMessage
from zse.zcl.timer import Timer

__all__ = [
    "PREPAYMENT",
    "READ_AT_ONCE",
    "TICK_RETRY",
    "CostConsumption",
    "FriendlyCreditTimes",
    "PrepayAlarms",
    "PrepayStatus",
    "PrepaymentClient",
    "PrepaymentServer",
    "TopUpFailed",
    "friendly_credit_calendar",
]

LOGGER = logging.getLogger(__name__)
_ACCOUNT_KEY: Final = "account"
_USED: Final = "used"
_REGISTERED: Final = "registered"
#: The journal kind of an event stored with the account and not yet told.
_TOLD: Final = "told"
#: Seconds after which the account's step due (a command at its time, a debt recovery, the
#: end of a friendly credit period) whose store write failed is taken again (zse's choice, as
#: the meter's SUPPLY_RETRY: undone, it waited for the next input, which may never come).
TICK_RETRY: Final = 30
#: Attributes a display asks for in one Read Attributes (a uint48 record is 9 octets: 6 of
#: them fit any SE frame).
READ_AT_ONCE: Final = 6
_READ_ATTRIBUTES_RSP = foundation.GeneralCommand.Read_Attributes_rsp
A = PrepaymentAttribute
_ALARM_ATTRIBUTES: Final = (
    A.PREPAYMENT_ALARM_STATUS,
    A.PREPAY_GENERIC_ALARM_MASK,
    A.PREPAY_SWITCH_ALARM_MASK,
    A.PREPAY_EVENT_ALARM_MASK,
)


def _step(
    protocol: PrepaymentServerProtocol | PrepaymentClientProtocol,
    msg: ZclMessage,
    now: int,
) -> Step:
    """Screened, else decoded (MALFORMED_COMMAND / UNSUP_CLUSTER_COMMAND when it does not,
    ZCL 2.5.12) and received."""
    screened = protocol.screen(msg)
    if screened is not None:
        return screened
    try:
        command, _ = decode_command(
            Prepayment, msg.command_id, msg.payload, from_server=msg.from_server
        )
    except InvalidFrame as exc:  # the message names fields and offsets, never their values
        LOGGER.warning(
            "bad Prepayment command 0x%02X from 0x%04X: %s",
            msg.command_id,
            msg.src_nwk,
            type(exc).__name__,
        )
        return Step(status=refusal(exc))
    return protocol.receive(msg, command, now)


class PrepaymentServer:
    """The meter's Prepayment server (SE 1.2 D.7.2) on an endpoint.

    ``config``: the account's settings; ``codes``: top-up codes the operator registers with
    their amounts (the default validator's); ``validator``: the application's own check of a
    code instead; ``authorize(msg)``: who may send the utility's commands (nobody by default);
    ``store``: persistence under ``namespace`` (default ``prepayment.server/<endpoint id>``);
    ``friendly_calendar``: what the Friendly Credit calendar says (the ESI's, from its
    Calendar store: :func:`friendly_credit_calendar`), used when ``config.friendly_credit``;
    ``zone``: TimeZone and DST at an instant (the ESI's Time server's), whose local
    midnights bound the Historical Cost Consumption set's days (default: UTC).
    The account's events (:mod:`zse.prepayment.core`: low credit, emergency credit, supply,
    top-ups, debt collections) go to ``on_event``.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        config: PrepayConfig | None = None,
        codes: Mapping[str | bytes, int] | None = None,
        validator: Validator | None = None,
        authorize: Callable[[ZclMessage], bool] | None = None,
        clock: Callable[[], int] = system_clock,
        store: Store | None = None,
        namespace: str | None = None,
        friendly_calendar: FriendlyCalendar | None = None,
        zone: Callable[[int], ZoneYear | None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.store = store
        self.namespace = namespace or f"prepayment.server/{endpoint.endpoint_id}"
        self.account = PrepayAccount(
            config or PrepayConfig(),
            validator=validator,
            friendly_calendar=friendly_calendar,
            local=None if zone is None else functools.partial(local_time_by, zone),
        )
        for code, amount in (codes or {}).items():
            self.account.registered.register(code, amount)
        options = {} if authorize is None else {"authorize": authorize}
        self.protocol = PrepaymentServerProtocol(self.account, **options)
        self._stream: EventStream[PrepayEvent] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._lock = asyncio.Lock()
        self._served: set[int] = set()
        self._remove: Callable[[], None] | None = None
        #: What the store holds of the codes (so that a commit writes only what changed).
        self._stored_used: set[str] = set()
        self._stored_registered: dict[str, int] = {}
        self._timer = Timer("Prepayment server timer", logger=LOGGER)
        self._timer.add(_Deadlines(self.account), self._due, clock=self.clock, retry=TICK_RETRY)
        self._untold: Untold[PrepayEvent] = Untold(self._stream, self._mark_told)

    async def start(self, *, tell: bool = True) -> None:
        """Load the stored account, apply what fell due while stopped (once), serve the
        cluster and its attributes, run the timer, and tell the events stored but not told
        before a restart (then those of the start), in the order they came.

        ``tell=False`` holds them, and the events from now on, until :meth:`tell_untold`:
        for an application whose listeners are attached after the start (the ESI tells once
        its first listener is attached)."""
        untold: list[tuple[int, PrepayEvent]] = []
        if self.store is not None:
            await self.store.load_with(self.namespace, self._load)
            await self.store.prune(self.namespace)  # the events told before
            untold = await self.store.unreported_with(self.namespace, event_from_record)
        self._untold.hold(untold)
        deadline = self.account.next_deadline()
        if deadline is not None and deadline <= self.clock():
            try:
                await self.tick()
            except StoreError as exc:  # left pending: the timer tries again
                LOGGER.error("the prepay account could not be stored: %s", exc)
        self.serve_attributes()
        self._remove = self.endpoint.add_handler(PREPAYMENT, self._on_message)
        self._timer.start()
        if tell:
            await self.tell_untold()

    def hold_untold(self) -> None:
        """Hold the events from now on until :meth:`tell_untold` (:meth:`Untold.pause
        <zse.zcl.events.Untold.pause>`: the ESI has no listener, or stops)."""
        self._untold.pause()

    async def tell_untold(self) -> None:
        """Tell the application the events stored but not yet told, oldest first, each
        marked told once its listeners have it in hand (:mod:`zse.zcl.events`); from then on
        each event is told as it comes."""
        await self._untold.tell_untold()

    async def _mark_told(self, *seqs: int) -> None:
        if self.store is not None:
            await self.store.mark_reported(*seqs)

    async def stop(self, *, bound: float = STOP_WAIT) -> None:
        """Stop serving and the timer (the stored account stays); the events a write
        cancelled before stored are told and marked, those of a write this stop cancels (its
        timer's) left to the next start (told now, to no one once the ESI has let its
        listeners go, they would be marked).
        ``bound``: the longest wait for them (the ESI's stop shares one STOP_WAIT)."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        self._untold.close()
        await self._timer.stop()
        await self._untold.stop(bound)

    async def _due(self, _now: int) -> None:
        """The account's deadline: :meth:`tick` (stored; undone if the store fails, then
        taken again :data:`TICK_RETRY` seconds later)."""
        await self.tick()

    def _load(self, records: dict[str, Any], on_bad: Callable[[RecordError], None]) -> None:
        """The account, each code applied (``used/<digest>``) and each code registered
        (``registered/<digest>``), checked; a bad record is quarantined, the others load."""

        def load(key: str, value: Any) -> None:
            kind, _, digest = key.partition("/")
            if key == _ACCOUNT_KEY:
                self.account.restore(value)
            elif kind == _USED and value == 1 and type(value) is int:
                self.account.mark_used(digest)
                self._stored_used.add(digest)
            elif kind == _REGISTERED:
                self.account.registered.restore({digest: value})
                self._stored_registered[digest] = value
            else:
                raise Mismatch("not a prepayment record")

        load_each(sorted(records.items()), load, namespace=self.namespace, on_bad=on_bad)

    def serve_attributes(self) -> None:
        """Answer Read Attributes for every Prepayment attribute with a value now (D.7.2.2);
        Write Attributes for the alarm masks (D.7.2.2.5.2-4), stored with the account."""
        for attr, (type_id, _) in self.protocol.attribute_values(self.clock()).items():
            if attr not in self._served:
                self._served.add(attr)
                self.endpoint.set_attribute_source(
                    PREPAYMENT, attr, type_id, functools.partial(self._attribute, attr)
                )
                mask = _MASKS.get(attr)
                if mask is not None:
                    self.endpoint.set_writable(
                        PREPAYMENT, attr, on_write=functools.partial(self._write_mask, mask)
                    )

    async def _write_mask(self, which: str, value: Any) -> foundation.Status:
        """An alarm mask written (Write Attributes): kept with the account, stored before
        the write is answered SUCCESS; FAILURE (nothing kept) when the store fails."""

        def write(_now: int) -> list[PrepayEvent]:
            self.account.set_alarm_mask(which, int(value))
            return []

        try:
            await self._change(write)
        except StoreError as exc:
            LOGGER.error("the prepay account could not be stored: %s", exc)
            return foundation.Status.FAILURE
        return foundation.Status.SUCCESS

    def _attribute(self, attr: int) -> Any:
        values = self.protocol.attribute_values(self.clock())
        return values[attr][1] if attr in values else None

    # -- what the application does ---------------------------------------------------------------

    async def consume(self, energy: Fraction, price: Fraction) -> list[PrepayEvent]:
        """Charge ``energy`` (kWh) at ``price`` (account units per kWh) now, and collect the
        debt recovery due; stored, then the events told."""
        return await self._change(lambda now: self.account.consume(energy, price, now))

    async def consume_reading(
        self,
        summation: int,
        *,
        price: Fraction | None,
        multiplier: int = 1,
        divisor: int = 1,
        unit_of_measure: int = 0,
    ) -> list[PrepayEvent]:
        """The meter's summation (raw) now: what was used since the last one is charged at
        ``price`` (:meth:`PrepayAccount.consume_reading
        <zse.prepayment.core.PrepayAccount.consume_reading>`); stored, then told."""
        return await self._change(
            lambda now: self.account.consume_reading(
                summation,
                now,
                price=price,
                multiplier=multiplier,
                divisor=divisor,
                unit_of_measure=unit_of_measure,
            )
        )

    async def tick(self) -> list[PrepayEvent]:
        """Apply the utility's commands due now, collect the time-based debt recovery due,
        end a friendly credit period that is over (:meth:`PrepayAccount.tick
        <zse.prepayment.core.PrepayAccount.tick>`)."""
        return await self._change(self.account.tick)

    async def calendar_changed(self, change: CalendarStored) -> list[PrepayEvent]:
        """The ESI's calendars changed (:meth:`CalendarServer.on_event
        <zse.calendar.service.CalendarServer.on_event>`): for a Friendly Credit calendar
        published or cancelled, read it again now (:meth:`tick`), so that a friendly period
        cancelled or shortened ends as the calendar now says: credit exhausted outside it
        interrupts the supply at once, and the period's end is the new one. A store that
        fails is logged (the account is undone; the next reading reads the calendar again)."""
        if change.calendar_type != CalendarType.FRIENDLY_CREDIT:
            return []
        if not self.account.config.friendly_credit:
            return []
        try:
            return await self.tick()
        except StoreError as exc:
            LOGGER.error("the prepay account could not be stored: %s", exc)
            return []

    async def register_code(self, code: str | bytes, amount: int) -> None:
        """Register a top-up code the default validator accepts once, for ``amount``
        (only its digest is kept and stored)."""

        def register(now: int) -> list[PrepayEvent]:
            self.account.registered.register(code, amount)
            return []

        await self._change(register)

    async def adjust_credit(self, value: int, *, absolute: bool = False) -> list[PrepayEvent]:
        """Credit Adjustment by the operator (D.7.2.3.5)."""
        return await self._change(
            lambda now: self.account.adjust_credit(value, absolute=absolute, now=now)
        )

    async def change_debt(self, index: int, debt: Debt, *, incremental: bool = False) -> None:
        """Change Debt by the operator (D.7.2.3.2): debt ``index`` 0-2."""

        def change(now: int) -> list[PrepayEvent]:
            self.account.change_debt(index, debt, incremental=incremental, now=now)
            return []

        await self._change(change)

    async def setup_emergency_credit(self, limit: int, threshold: int) -> list[PrepayEvent]:
        """Emergency Credit Setup by the operator (D.7.2.3.3)."""
        return await self._change(
            lambda now: self.account.setup_emergency_credit(limit, threshold, now)
        )

    async def _change(self, change: Callable[[int], list[PrepayEvent]]) -> list[PrepayEvent]:
        """Apply ``change`` to the account, store it with its events (undone if the store
        fails: the error is raised; or if the write is cancelled before its transaction, as
        a stop does: else the next commit stored it without its events, never told), serve
        new attributes and tell the events."""
        async with self._lock:
            before = self._state()
            events = change(self.clock())
            batch = Batch()
            try:
                seqs = await self._store(events, batch)
            except BaseException:
                self._undo_unless_stored(batch, before)
                raise
            finally:
                self._timer.update()
        self.serve_attributes()
        await self._untold.tell(_journalled(seqs, events))
        return events

    def _state(self) -> tuple[dict[str, Any], frozenset[str], dict[str, int]]:
        account = self.account
        return account.snapshot(), account.used_digests(), account.registered.digests()

    def _undo(self, state: tuple[dict[str, Any], frozenset[str], dict[str, int]]) -> None:
        """Put the account back as it was before a change that could not be stored."""
        snapshot, used, registered = state
        self.account.restore(snapshot)
        self.account.forget_used(self.account.used_digests() - used)
        self.account.registered.replace(registered)

    def _undo_unless_stored(
        self, batch: Batch, state: tuple[dict[str, Any], frozenset[str], dict[str, int]]
    ) -> None:
        """:meth:`_undo` a change whose write raised (failed, or cancelled), unless the store
        carried it out (:attr:`Batch.landed <zse.store.Batch.landed>`: cancelled during its
        transaction): then it stays, as stored, its events told at once (:meth:`_store`),
        and the attributes it gave a value are served (a debt, a top-up: answered
        UNSUPPORTED_ATTRIBUTE until the account's next change, before)."""
        if batch.landed is None:
            self._undo(state)
            return
        self.serve_attributes()  # the codes counted stored by :meth:`_store`

    async def _store(
        self, events: tuple[PrepayEvent, ...] | list[PrepayEvent] = (), batch: Batch | None = None
    ) -> list[int]:
        """One commit (``batch``): the account, the codes applied since the last (a record
        each), the registered codes that changed (a record each) and a ``"told"`` journal
        entry per event; the entries' sequence numbers (none without a store). A commit
        cancelled during its transaction, which the store carries out (:attr:`Batch.landed
        <zse.store.Batch.landed>`), has its events told in a task (:meth:`Untold.tell_soon
        <zse.zcl.events.Untold.tell_soon>`) before it raises: they were told only after the
        next restart."""
        if self.store is None:
            return []
        ns = self.namespace
        used = self.account.used_digests()
        registered = self.account.registered.digests()
        batch = (Batch() if batch is None else batch).put(ns, _ACCOUNT_KEY, self.account.snapshot())
        for digest in sorted(used - self._stored_used):
            batch.put(ns, f"{_USED}/{digest}", 1)
        for digest in sorted(self._stored_registered.keys() - registered.keys()):
            batch.delete(ns, f"{_REGISTERED}/{digest}")
        for digest, amount in sorted(registered.items()):
            if self._stored_registered.get(digest) != amount:
                batch.put(ns, f"{_REGISTERED}/{digest}", amount)
        for event in events:
            batch.append(ns, _TOLD, event_record(event))
        try:
            seqs = await self.store.commit(batch)
        except asyncio.CancelledError:  # stored all the same (during its transaction):
            if batch.landed is not None:  # as stored; its events told now, not at a restart
                self._stored_used, self._stored_registered = set(used), registered
                self._untold.tell_soon(_journalled(batch.landed, events))
            raise
        self._stored_used = set(used)
        self._stored_registered = registered
        return seqs

    # -- frames ------------------------------------------------------------------------------

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        async with self._lock:
            before = self._state()
            self.protocol.changed = False
            step = _step(self.protocol, msg, self.clock())
            seqs: list[int] = []
            if self.protocol.changed or step.events:  # a refused top-up is told once too
                batch = Batch()
                try:
                    seqs = await self._store(step.events, batch)
                except StoreError as exc:
                    LOGGER.error("the prepay account could not be stored: %s", exc)
                    self._undo(before)
                    step = self._failed(msg)
                except BaseException:  # cancelled (a stop): undone, as a failed write
                    self._undo_unless_stored(batch, before)
                    self._timer.update()  # kept as stored: a command for later is timed
                    raise
                self.protocol.changed = False
            self._timer.update()
        self.serve_attributes()
        told = _journalled(seqs, step.events)
        try:
            return await carry_out(self.endpoint, replace(step, events=()), self._stream.emit)
        finally:  # stored: told even when the answer could not be sent
            await self._untold.tell(told)

    def _failed(self, msg: ZclMessage) -> Step:
        """The answer to a command whose change could not be stored: a top-up is answered
        Rejected - Error, anything else FAILURE."""
        if msg.command_id == PrepaymentServerCommand.CONSUMER_TOP_UP:
            return self.protocol.top_up_response(msg, TopUpResult.Rejected_Error)
        return Step(status=foundation.Status.FAILURE)


def _journalled(
    seqs: list[int], events: tuple[PrepayEvent, ...] | list[PrepayEvent]
) -> list[tuple[int | None, PrepayEvent]]:
    """Each event with its journal seq (None: stored nowhere, nothing to mark)."""
    if not seqs:
        return [(None, event) for event in events]
    return [*zip(seqs, events, strict=True)]


class _Deadlines:
    """The account's deadlines for the shell's :class:`~zse.zcl.timer.Timer`; what is due is
    applied by :meth:`PrepaymentServer.tick`, which stores it (and undoes it if the store
    fails)."""

    def __init__(self, account: PrepayAccount) -> None:
        self.account = account

    def next_deadline(self) -> int | None:
        return self.account.next_deadline()

    def handle_timeout(self, now: int) -> int:
        return now


#: The Alarms set's writable masks by attribute (D.7.2.2.5.2-4; writable as zsmartsystems'
#: ``0705_Prepayment.xml`` marks them).
_MASKS: Final[dict[int, str]] = {
    A.PREPAY_GENERIC_ALARM_MASK: "generic",
    A.PREPAY_SWITCH_ALARM_MASK: "switch",
    A.PREPAY_EVENT_ALARM_MASK: "event",
}


def friendly_credit_calendar(
    calendars: Calendars, zone: Callable[[int], ZoneYear | None] | None = None
) -> FriendlyCalendar:
    """What ``calendars`` (the ESI's Calendar store) say of friendly credit at an instant:
    the Friendly Credit calendar in force (SE 1.2 D.9, calendar type 0x03), its value and
    when it next changes (:meth:`Calendars.at <zse.calendar.core.Calendars.at>`), read in
    ``zone(now)`` (TimeZone and DST) for a calendar on standard or local time."""

    def reading(now: int) -> FriendlyCredit | None:
        calendar = calendars.current(now, CalendarType.FRIENDLY_CREDIT, absolute=True)
        if calendar is None:
            return None
        said = calendars.at(now, None if zone is None else zone(now), CalendarType.FRIENDLY_CREDIT)
        if said is None or said.value is None:
            return None
        return FriendlyCredit(calendar.issuer_calendar_id, bool(said.value), said.changes_at)

    return reading


# -- the display's side --------------------------------------------------------------------------


class TopUpFailed(ZseError):
    """Consumer Top Up got no Consumer Top Up Response (a Default Response, e.g.
    UNSUP_CLUSTER_COMMAND from a credit meter). The code is never in the message."""


@dataclass(frozen=True)
class PrepayStatus:
    """The Prepayment Information a display read (D.7.2.2.1); None: not answered."""

    credit_remaining: int | None
    emergency_credit_remaining: int | None
    credit_status: int | None
    low_credit_warning_level: int | None


@dataclass(frozen=True)
class PrepayAlarms:
    """The Alarms set a display read (D.7.2.2.5); None: not answered."""

    status: PrepaymentAlarmStatus | None
    generic_mask: int | None
    switch_mask: int | None
    event_mask: int | None


@dataclass(frozen=True)
class FriendlyCreditTimes:
    """Friendly Credit Warning (minutes), Remaining Friendly Credit Time (minutes) and Next
    Friendly Credit Period (UTC; 0xFFFFFFFF: none known) a display read; None: not
    answered (the meter takes no friendly credit)."""

    warning: int | None
    remaining_minutes: int | None
    next_period: int | None


@dataclass(frozen=True)
class CostConsumption:
    """The Historical Cost Consumption set a display read (D.7.2.2.6): the raw costs
    delivered, current first, by ``days`` (9), ``weeks`` (6) and ``months`` (14), read with
    ``formatting`` (the Metering Formatting bitmap), ``currency_scaling_factor`` (table
    D-144) and ``currency`` (ISO 4217); None: not answered."""

    formatting: int | None
    unit_of_measurement: int | None
    currency_scaling_factor: int | None
    currency: int | None
    days: tuple[int | None, ...]
    weeks: tuple[int | None, ...]
    months: tuple[int | None, ...]


ClientEvent = (
    PrepayStatus
    | SnapshotReceived
    | TopUpLogReceived
    | DebtLogReceived
    | TopUpAnswered
    | PaymentModeAnswered
    | TopUpAccepted
    | TopUpRefused
    | LowCredit
    | CreditExhausted
    | EmergencyCreditSelected
)


class PrepaymentClient:
    """A display's Prepayment client (SE 1.2 D.7.3). What the meter sends and what the
    display learns comes through ``on_event``: the meter's commands
    (:class:`~zse.prepayment.protocol.SnapshotReceived`...), each top-up's
    :class:`~zse.prepayment.core.TopUpAccepted` / :class:`~zse.prepayment.core.TopUpRefused`
    (the code masked), the :class:`PrepayStatus` read when it is not the last one read, and,
    from the Credit Status read (:meth:`read_status`, after a top-up or a selection, or when
    the application asks), :class:`~zse.prepayment.core.LowCredit`,
    :class:`~zse.prepayment.core.CreditExhausted` and
    :class:`~zse.prepayment.core.EmergencyCreditSelected` as they become true."""

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
        self.protocol = PrepaymentClientProtocol()
        self._stream: EventStream[ClientEvent] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        #: The last status read.
        self.status: PrepayStatus | None = None
        self._remove: Callable[[], None] | None = None

    @property
    def server(self) -> Destination:
        """The meter's Prepayment server."""
        return Destination.device(self.server_nwk, self.server_ep)

    def start(self) -> None:
        """Take what the meter sends."""
        self._remove = self.endpoint.add_handler(PREPAYMENT, self._on_message)

    def stop(self) -> None:
        """Stop taking what the meter sends."""
        if self._remove is not None:
            self._remove()
            self._remove = None

    async def top_up(self, code: str | bytes) -> TopUpAnswered:
        """Send Consumer Top Up with ``code`` as typed (D.7.2.3.4) and return the meter's
        Consumer Top Up Response; :class:`TopUpFailed` for a Default Response instead,
        ``TimeoutError`` for none. The application hears :class:`TopUpAccepted` or
        :class:`TopUpRefused` (the code masked), and the status is read again."""
        raw = code.encode("ascii") if isinstance(code, str) else bytes(code)
        masked = mask_code(raw)
        reply = await request(self.endpoint, self.protocol.top_up(self.server, raw))
        if not reply.is_cluster_command:
            status = reply.payload[1] if len(reply.payload) > 1 else None
            raise TopUpFailed(f"top-up {masked}: the meter answered status {status}")
        step = _step(self.protocol, reply, self.clock())
        answers = [e for e in step.events if isinstance(e, TopUpAnswered)]
        if not answers:
            raise TopUpFailed(f"top-up {masked}: the meter's response does not decode")
        answer = answers[0]
        self._stream.emit(answer)
        if answer.result in (
            TopUpResult.Accepted,
            TopUpResult.Accepted_Supply_Enabled,
            TopUpResult.Accepted_Supply_Disabled,
            TopUpResult.Accepted_Supply_Armed,
        ):
            self._stream.emit(
                TopUpAccepted(
                    answer.value, answer.credit_remaining, answer.source, masked, answer.result
                )
            )
        else:
            self._stream.emit(TopUpRefused(answer.result, answer.source, masked))
        await self._reread()
        return answer

    async def select_emergency_credit(self) -> bool:
        """Send Select Available Emergency Credit (D.7.2.3.1); True when the meter took it
        (Default Response SUCCESS), False when it refused (none was available)."""
        send = self.protocol.select_emergency_credit(self.server, self.clock())
        reply = await request(self.endpoint, send)
        ok = (
            not reply.is_cluster_command
            and len(reply.payload) > 1
            and reply.payload[1] == foundation.Status.SUCCESS
        )
        await self._reread()
        return ok

    async def get_prepay_snapshot(self, offset: int = 0) -> SnapshotReceived | None:
        """Ask for the ``offset``-th newest snapshot (Get Prepay Snapshot); None when the
        meter has none (NOT_FOUND)."""
        reply = await request(
            self.endpoint, self.protocol.get_prepay_snapshot(self.server, offset=offset)
        )
        if not reply.is_cluster_command:
            return None
        step = _step(self.protocol, reply, self.clock())
        for event in step.events:
            self._stream.emit(event)
        found = [e for e in step.events if isinstance(e, SnapshotReceived)]
        return found[0] if found else None

    async def ask_top_up_log(self, count: int = 0) -> None:
        """Send Get Top Up Log (D.7.2.3.8); each Publish Top Up Log comes as an event."""
        await carry_out(
            self.endpoint,
            Step(sends=(self.protocol.get_top_up_log(self.server, count=count),)),
            self._stream.emit,
        )

    async def ask_debt_log(self, count: int = 0, debt_type: int = 0xFF) -> None:
        """Send Get Debt Repayment Log (D.7.2.3.10); each Publish Debt Log comes as an
        event."""
        send = self.protocol.get_debt_repayment_log(self.server, count=count, debt_type=debt_type)
        await carry_out(self.endpoint, Step(sends=(send,)), self._stream.emit)

    async def read_status(self) -> PrepayStatus:
        """Read Credit Remaining, Emergency Credit Remaining, Credit Status and Low Credit
        Warning Level (D.7.2.2.1), and tell what became true since the last read, and the
        status itself when it is not the one last read."""
        values = await self._read(
            [
                A.CREDIT_REMAINING,
                A.EMERGENCY_CREDIT_REMAINING,
                A.CREDIT_STATUS,
                A.LOW_CREDIT_WARNING_LEVEL,
            ]
        )
        status = PrepayStatus(
            values.get(A.CREDIT_REMAINING),
            values.get(A.EMERGENCY_CREDIT_REMAINING),
            values.get(A.CREDIT_STATUS),
            values.get(A.LOW_CREDIT_WARNING_LEVEL),
        )
        before = self.status
        self._tell_changes(before, status)
        self.status = status
        if status != before:  # the status itself, as a display shows it (read only when new)
            self._stream.emit(status)
        return status

    async def _read(self, ids: list[int]) -> dict[int, int]:
        """Read Attributes of ``ids`` (:data:`READ_AT_ONCE` a frame): attribute id -> the
        integer value of each the meter answered SUCCESS; a frame that does not decode is a
        warning and gives none of its values."""
        values: dict[int, int] = {}
        for first in range(0, len(ids), READ_AT_ONCE):
            reply = await self.endpoint.request(
                self.server_nwk,
                self.server_ep,
                PREPAYMENT,
                foundation.GeneralCommand.Read_Attributes,
                b"".join(int(a).to_bytes(2, "little") for a in ids[first : first + READ_AT_ONCE]),
                cluster_specific=False,
                encrypt=True,
            )
            if reply.is_cluster_command or reply.command_id != _READ_ATTRIBUTES_RSP:
                continue
            schema = foundation.GENERAL_COMMANDS[_READ_ATTRIBUTES_RSP].schema
            records: Any
            try:
                records, _ = schema.deserialize(reply.payload)
            except (ValueError, KeyError) as exc:
                LOGGER.warning("bad Prepayment attributes: %s", type(exc).__name__)
                continue
            values |= {
                int(r.attrid): int(r.value.value)
                for r in records.status_records
                if r.status == foundation.Status.SUCCESS and isinstance(r.value.value, int)
            }
        return values

    async def read_alarms(self) -> PrepayAlarms:
        """Read the Alarms set (D.7.2.2.5): Prepayment Alarm Status and the three masks."""
        values = await self._read(list(_ALARM_ATTRIBUTES))
        status = values.get(A.PREPAYMENT_ALARM_STATUS)
        return PrepayAlarms(
            None if status is None else PrepaymentAlarmStatus(status),  # type: ignore[no-untyped-call]
            values.get(A.PREPAY_GENERIC_ALARM_MASK),
            values.get(A.PREPAY_SWITCH_ALARM_MASK),
            values.get(A.PREPAY_EVENT_ALARM_MASK),
        )

    async def read_friendly_credit(self) -> FriendlyCreditTimes:
        """Read Friendly Credit Warning, Remaining Friendly Credit Time and Next Friendly
        Credit Period (D.7.2.2.1.13, 16, 17)."""
        values = await self._read(
            [
                A.FRIENDLY_CREDIT_WARNING,
                A.REMAINING_FRIENDLY_CREDIT_TIME,
                A.NEXT_FRIENDLY_CREDIT_PERIOD,
            ]
        )
        return FriendlyCreditTimes(
            values.get(A.FRIENDLY_CREDIT_WARNING),
            values.get(A.REMAINING_FRIENDLY_CREDIT_TIME),
            values.get(A.NEXT_FRIENDLY_CREDIT_PERIOD),
        )

    async def read_cost_consumption(self) -> CostConsumption:
        """Read the Historical Cost Consumption set (D.7.2.2.6): its formatting, unit,
        scaling and currency, and the cost delivered by day (current, previous 1-8), week
        (current, previous 1-5) and month (current, previous 1-13); None where not
        answered."""
        costs = {
            period: [cost_consumption_attribute(period, back) for back in range(most + 1)]
            for period, most in COST_CONSUMPTION_PERIODS.items()
        }
        head = [
            A.HISTORICAL_COST_CONSUMPTION_FORMATTING,
            A.CONSUMPTION_UNIT_OF_MEASUREMENT,
            A.CURRENCY_SCALING_FACTOR,
            A.CURRENCY,
        ]
        values = await self._read([*head, *(a for ids in costs.values() for a in ids)])
        held = {period: tuple(values.get(attr) for attr in ids) for period, ids in costs.items()}
        return CostConsumption(
            formatting=values.get(A.HISTORICAL_COST_CONSUMPTION_FORMATTING),
            unit_of_measurement=values.get(A.CONSUMPTION_UNIT_OF_MEASUREMENT),
            currency_scaling_factor=values.get(A.CURRENCY_SCALING_FACTOR),
            currency=values.get(A.CURRENCY),
            days=held["day"],
            weeks=held["week"],
            months=held["month"],
        )

    def _tell_changes(self, before: PrepayStatus | None, now: PrepayStatus) -> None:
        if now.credit_status is None:
            return
        was = 0 if before is None or before.credit_status is None else before.credit_status
        rose = now.credit_status & ~was
        credit = now.credit_remaining or 0
        if rose & CreditStatus.Low_Credit:
            self._stream.emit(LowCredit(credit, now.low_credit_warning_level or 0))
        if rose & CreditStatus.Credit_Exhausted:
            self._stream.emit(CreditExhausted(credit))
        if rose & CreditStatus.Emergency_Credit_Selected:
            self._stream.emit(EmergencyCreditSelected(now.emergency_credit_remaining or 0, 2))

    async def _reread(self) -> None:
        try:
            await self.read_status()
        except (TimeoutError, OSError) as exc:
            LOGGER.info("the Prepayment status could not be read: %s", exc)

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        step = _step(self.protocol, msg, self.clock())
        return await carry_out(self.endpoint, step, self._stream.emit)
