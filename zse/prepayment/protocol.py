"""Prepayment at the ZCL frame (SE 1.2 D.7): the sans-IO protocol cores of both sides.

:class:`PrepaymentServerProtocol` is the meter's side, over a
:class:`~zse.prepayment.core.PrepayAccount`:

- Select Available Emergency Credit (D.7.2.3.1): SUCCESS when it was available, else
  ACTION_DENIED (nothing changed);
- Consumer Top Up (D.7.2.3.4): answered with Consumer Top Up Response (D.7.2.4.3): the
  result, the value added, its source and the credit remaining;
- Get Prepay Snapshot (D.7.2.3.7): Publish Prepay Snapshot of the ``snapshot_offset``-th
  newest snapshot in the window and of the causes asked (Total Snapshots Found: how many
  matched), NOT_FOUND when none;
- Get Top Up Log / Get Debt Repayment Log (D.7.2.3.8, 10): Publish Top Up Log / Publish Debt
  Log, newest first, in as many commands as one frame each takes, NOT_FOUND when empty;
- the utility's commands (Change Debt, Emergency Credit Setup, Credit Adjustment, Change
  Payment Mode, Set Low Credit Warning Level, Set Maximum Credit Limit, Set Overall Debt Cap)
  change the account, so a HAN device may not send them: NOT_AUTHORIZED unless
  ``authorize(msg)`` says the sender may (docs/adr/0031). An accepted command is answered
  when received and takes effect at its Implementation Date/Time or Start Time
  (:func:`scheduled`, :meth:`~zse.prepayment.core.PrepayAccount.schedule`; the core's
  :meth:`~PrepaymentServerProtocol.next_deadline`). Catch-up debt recovery is refused
  INVALID_FIELD.

The core records that the account changed (:attr:`PrepaymentServerProtocol.changed`): its
shell stores the account before it sends the answer (a top-up applied is never answered
before it is stored). :meth:`PrepaymentServerProtocol.attribute_values` gives what Read
Attributes is answered from (D.7.2.2).

:class:`PrepaymentClientProtocol` is a display's side: it builds the requests (Select
Available Emergency Credit, Consumer Top Up, the Get commands) and reads what the meter sends
into events (:class:`SnapshotReceived`, :class:`TopUpLogReceived`,
:class:`DebtLogReceived`, :class:`TopUpAnswered`, :class:`PaymentModeAnswered`).

Nothing here reads a clock or does I/O; :mod:`zse.prepayment.service` is the asyncio shell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from zigpy.zcl import foundation

from zse.prepayment.core import (
    Debt,
    DebtCollected,
    PendingFull,
    PrepayAccount,
    PrepayError,
    Scheduled,
    Snapshot,
    TopUp,
)
from zse.prepayment.wire import (
    DebtCreditStatus,
    DebtLogEntries,
    FriendlyCreditBitmap,
    OriginatingDevice,
    Prepayment,
    SnapshotPayloadType,
    TopUpLogEntries,
    TopUpResult,
    mask_code,
)
from zse.se.frames import max_zcl_payload
from zse.se.ids import (
    PREPAYMENT,
    PrepaymentAttribute,
    PrepaymentClientCommand,
    PrepaymentServerCommand,
    cost_consumption_attribute,
    debt_attribute,
    top_up_attribute,
)
from zse.se.types import UnitOfMeasure
from zse.zcl.codec import encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage

__all__ = [
    "DebtLogReceived",
    "PaymentModeAnswered",
    "PrepaymentClientProtocol",
    "PrepaymentServerProtocol",
    "SnapshotReceived",
    "TopUpAnswered",
    "TopUpLogReceived",
    "attribute_type_id",
]

LOGGER = logging.getLogger(__name__)
S, C, A = PrepaymentServerCommand, PrepaymentClientCommand, PrepaymentAttribute
_Status = foundation.Status
_ANY_CAUSE: Final = 0xFFFFFFFF
#: Historical Cost Consumption Formatting (the Metering Formatting set's bitmap, D.3.2.2.4):
#: leading zeros suppressed, 8 digits left of the point (zse's choice), the account's right.
_SUPPRESS_ZEROS: Final = 0x80
_LEFT_DIGITS: Final = 8
#: Currency Scaling Factor x1 (table D-144, DSR ZBOSS: 0x00 is x0.000001, 0x06 x1).
_SCALE_ONE: Final = 0x06
#: The utility's commands, refused NOT_AUTHORIZED unless the sender is authorized.
OPERATOR_COMMANDS: Final = frozenset(
    {
        S.CHANGE_DEBT,
        S.EMERGENCY_CREDIT_SETUP,
        S.CREDIT_ADJUSTMENT,
        S.CHANGE_PAYMENT_MODE,
        S.SET_LOW_CREDIT_WARNING_LEVEL,
        S.SET_MAXIMUM_CREDIT_LIMIT,
        S.SET_OVERALL_DEBT_CAP,
    }
)
#: What a client takes from a server.
_CLIENT_RECEIVES: Final = frozenset(C)
#: Octets of a log command before its records: Command Index, Total Number of Commands.
_LOG_HEADER = 2


def attribute_type_id(attr_id: int) -> int:
    """The ZCL data type id of a Prepayment server attribute, from its wire definition."""
    python_type = Prepayment.attributes[attr_id].type
    return int(foundation.DataType.from_python_type(python_type).type_id)


def _deny(_msg: ZclMessage) -> bool:
    return False


def _split(records: Sequence[bytes], room: int) -> list[list[bytes]]:
    """``records`` (each encoded) in runs that fit ``room`` octets each."""
    runs: list[list[bytes]] = [[]]
    used = 0
    for record in records:
        if runs[-1] and used + len(record) > room:
            runs.append([])
            used = 0
        runs[-1].append(record)
        used += len(record)
    return runs


class PrepaymentServerProtocol:
    """The meter's Prepayment server core (SE 1.2 D.7.2) over ``account``.

    ``authorize(msg)``: whether the sender of a utility command may change the account
    (default: nobody over the air; the application changes it through the account).
    """

    def __init__(
        self,
        account: PrepayAccount,
        *,
        authorize: Callable[[ZclMessage], bool] = _deny,
    ) -> None:
        self.account = account
        self.authorize = authorize
        #: Set when a received command changed the account (the shell stores it, then
        #: clears this).
        self.changed = False

    def screen(self, msg: ZclMessage) -> Step | None:
        """A server's frame is left alone (no answer); anything else is decoded."""
        return Step() if msg.from_server else None

    def next_deadline(self) -> int | None:
        """When a pending utility command is due or the friendly credit period in use ends
        (:meth:`PrepayAccount.next_deadline`); debt recovery runs when the account is fed."""
        return self.account.next_deadline()

    def handle_timeout(self, now: int) -> Step:
        """Apply what is due at ``now`` (:meth:`PrepayAccount.tick`); :attr:`changed` says
        whether the shell must store the account."""
        account = self.account
        before = (len(account.pending), account.friendly_until)
        events = account.tick(now)
        self.changed |= bool(events) or before != (len(account.pending), account.friendly_until)
        return Step(events=tuple(events))

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Act on a client's command (see the module's docstring), after the utility's
        commands due by ``now`` (so that one due this second is not applied after it)."""
        screened = self.screen(msg)
        if screened is not None:
            return screened
        waiting = len(self.account.pending)
        due = self.account.apply_due(now)
        self.changed |= len(self.account.pending) != waiting
        step = self._receive(msg, command, now)
        return replace(step, events=(*due, *step.events)) if due else step

    def _receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        cid = msg.command_id
        if cid in OPERATOR_COMMANDS:
            if not self.authorize(msg):
                LOGGER.warning(
                    "Prepayment command 0x%02X from 0x%04X refused: not authorized",
                    cid,
                    msg.src_nwk,
                )
                return Step(status=_Status.NOT_AUTHORIZED)
            return self._operator(msg, command, now)
        handlers: dict[int, Callable[[ZclMessage, Any, int], Step]] = {
            S.SELECT_AVAILABLE_EMERGENCY_CREDIT: self._select,
            S.CONSUMER_TOP_UP: self._top_up,
            S.GET_PREPAY_SNAPSHOT: self._snapshot,
            S.GET_TOP_UP_LOG: self._top_up_log,
        }
        # Get Debt Repayment Log: the last command a client sends that decodes
        return handlers.get(cid, self._debt_log)(msg, command, now)

    def _select(self, msg: ZclMessage, command: Any, now: int) -> Step:
        selected, events = self.account.select_emergency_credit(
            now, int(command.originating_device)
        )
        self.changed |= selected
        return Step(
            events=tuple(events),
            status=_Status.SUCCESS if selected else _Status.ACTION_DENIED,
        )

    def _top_up_log(self, msg: ZclMessage, command: Any, now: int) -> Step:
        top_ups = self.account.top_up_log(
            int(command.latest_end_time), int(command.number_of_records)
        )
        return self._log(msg, C.PUBLISH_TOP_UP_LOG, [_top_up_record(u) for u in top_ups])

    def _debt_log(self, msg: ZclMessage, command: Any, now: int) -> Step:
        collected = self.account.debt_repayments(
            int(command.latest_end_time), int(command.number_of_records), int(command.debt_type)
        )
        return self._log(msg, C.PUBLISH_DEBT_LOG, [_debt_record(c) for c in collected])

    def top_up_response(self, msg: ZclMessage, result: TopUpResult, value: int = 0) -> Step:
        """A Consumer Top Up Response to ``msg`` (the shell's Rejected - Error when the
        account could not be stored)."""
        schema = Prepayment.ClientCommandDefs.consumer_top_up_response.schema
        payload = encode_command(
            schema(
                result_type=result,
                top_up_value=value,
                source_of_top_up=_origin(msg),
                credit_remaining=self.account.status().credit_remaining,
            )
        )
        send = Send(
            cluster_id=PREPAYMENT,
            command_id=C.CONSUMER_TOP_UP_RESPONSE,
            payload=payload,
            reply_to=msg,
        )
        return Step(sends=(send,))

    def _top_up(self, msg: ZclMessage, command: Any, now: int) -> Step:
        code = bytes(command.top_up_code)
        outcome = self.account.top_up(code, int(command.originating_device), now)
        self.changed |= outcome.accepted
        LOGGER.info(
            "top-up %s from 0x%04X: %s",
            mask_code(code),
            msg.src_nwk,
            outcome.result.name,
        )
        step = self.top_up_response(msg, outcome.result, outcome.value)
        return replace(step, events=outcome.events)

    def _snapshot(self, msg: ZclMessage, command: Any, now: int) -> Step:
        cause = int(command.snapshot_cause)
        found = self.account.find_snapshots(
            int(command.earliest_start_time),
            int(command.latest_end_time),
            _ANY_CAUSE if cause == 0 else cause,
        )
        offset = int(command.snapshot_offset)
        if offset >= len(found):
            return Step(status=_Status.NOT_FOUND)
        send = Send(
            cluster_id=PREPAYMENT,
            command_id=C.PUBLISH_PREPAY_SNAPSHOT,
            payload=snapshot_payload(found[offset], len(found)),
            reply_to=msg,
        )
        return Step(sends=(send,))

    def _log(self, msg: ZclMessage, command_id: int, records: list[bytes]) -> Step:
        if not records:
            return Step(status=_Status.NOT_FOUND)
        room = max_zcl_payload(group=False, aps_encrypted=msg.aps_encrypted) - _LOG_HEADER
        runs = _split(records, room)
        sends = tuple(
            Send(
                cluster_id=PREPAYMENT,
                command_id=command_id,
                payload=bytes((index, len(runs))) + b"".join(run),
                reply_to=msg,
            )
            for index, run in enumerate(runs)
        )
        return Step(sends=sends)

    def _operator(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """A utility command from an authorized sender."""
        account = self.account
        cid = msg.command_id
        try:
            if cid == S.CHANGE_DEBT:
                kind = int(command.debt_amount_type)
                debt = Debt(
                    label=bytes(command.debt_label),
                    amount=int(command.debt_amount),
                    method=int(command.debt_recovery_method),
                    start_time=int(command.debt_recovery_start_time),
                    collection_time=int(command.debt_recovery_collection_time),
                    frequency=int(command.debt_recovery_frequency),
                    recovery_amount=int(command.debt_recovery_amount),
                    percentage=int(command.debt_recovery_balance_percentage),
                )
                if kind > 5:
                    raise PrepayError(f"debt amount type {kind} is not 0-5")
                account.change_debt(kind // 2, debt, incremental=bool(kind % 2), now=now)
                events: list[Any] = []
            elif cid == S.SET_LOW_CREDIT_WARNING_LEVEL:
                events = account.set_low_credit_warning_level(
                    int(command.low_credit_warning_level), now
                )
            elif cid == S.CHANGE_PAYMENT_MODE:
                return self._payment_mode(msg, command, now)
            else:
                events = account.schedule(scheduled(cid, command), now)
        except PrepayError as exc:
            LOGGER.warning(
                "Prepayment command 0x%02X from 0x%04X refused: %s", cid, msg.src_nwk, exc
            )
            full = isinstance(exc, PendingFull)
            return Step(status=_Status.INSUFFICIENT_SPACE if full else _Status.INVALID_FIELD)
        self.changed = True
        return Step(events=tuple(events), status=_Status.SUCCESS)

    def _payment_mode(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Change Payment Mode: the configuration taken at its Implementation Date/Time,
        answered at once with Change Payment Mode Response: whether friendly credit is
        enabled and the Friendly Credit calendar's id (0: none), the emergency credit in
        force."""
        account = self.account
        try:
            events = account.schedule(scheduled(S.CHANGE_PAYMENT_MODE, command), now)
        except PendingFull:
            return Step(status=_Status.INSUFFICIENT_SPACE)
        except PrepayError:
            return Step(status=_Status.INVALID_FIELD)
        self.changed = True
        friendly = (
            None
            if not account.config.friendly_credit or account.friendly_calendar is None
            else account.friendly_calendar(now)
        )
        schema = Prepayment.ClientCommandDefs.change_payment_mode_response.schema
        payload = encode_command(
            schema(
                friendly_credit=(
                    FriendlyCreditBitmap.Friendly_Credit_Enabled
                    if account.config.friendly_credit
                    else 0
                ),
                friendly_credit_calendar_id=0 if friendly is None else friendly.calendar_id,
                emergency_credit_limit=account.emergency_credit_limit,
                emergency_credit_threshold=account.emergency_credit_threshold,
            )
        )
        send = Send(
            cluster_id=PREPAYMENT,
            command_id=C.CHANGE_PAYMENT_MODE_RESPONSE,
            payload=payload,
            reply_to=msg,
        )
        return Step(sends=(send,), events=tuple(events))

    def attribute_values(self, now: int) -> dict[int, tuple[int, Any]]:
        """Attribute id -> (ZCL type id, value) for Read Attributes (D.7.2.2): the
        Prepayment Information set, the top-ups held (#1 the newest), debts 1-3, the Alarms
        set and the Historical Cost Consumption set, each computed from ``now``."""
        account = self.account
        status = account.status()
        values: dict[int, Any] = {
            A.PAYMENT_CONTROL_CONFIGURATION: account.config.payment_control,
            A.CREDIT_REMAINING: status.credit_remaining,
            A.EMERGENCY_CREDIT_REMAINING: status.emergency_credit_remaining,
            A.CREDIT_STATUS: int(account.credit_status),
            A.CREDIT_REMAINING_TIMESTAMP: account.credit_time or now,
            A.ACCUMULATED_DEBT: status.accumulated_debt,
            A.OVERALL_DEBT_CAP: account.config.overall_debt_cap,
            A.EMERGENCY_CREDIT_LIMIT: account.emergency_credit_limit,
            A.EMERGENCY_CREDIT_THRESHOLD: account.emergency_credit_threshold,
            A.TOTAL_CREDIT_ADDED: min(account.total_added, (1 << 48) - 1),
            A.MAX_CREDIT_LIMIT: account.config.max_credit_limit,
            A.MAX_CREDIT_PER_TOP_UP: account.config.max_credit_per_top_up,
            A.LOW_CREDIT_WARNING_LEVEL: account.low_credit_warning_level,
            A.CUT_OFF_VALUE: account.config.cut_off_value,
        }
        values |= _alarms_and_friendly_credit(account, now)
        values |= _cost_consumption(account, now)
        for record, top_up in enumerate(account.top_ups[:5], start=1):
            values[top_up_attribute(A.TOP_UP_DATE_TIME_1, record)] = top_up.time
            values[top_up_attribute(A.TOP_UP_AMOUNT_1, record)] = top_up.amount
            values[top_up_attribute(A.TOP_UP_ORIGINATING_DEVICE_1, record)] = top_up.origin
            values[top_up_attribute(A.TOP_UP_CODE_1, record)] = top_up.code
        for number, debt in enumerate(account.debts, start=1):
            if debt == Debt():
                continue
            values[debt_attribute(A.DEBT_LABEL_1, number)] = debt.label
            values[debt_attribute(A.DEBT_AMOUNT_1, number)] = debt.amount
            values[debt_attribute(A.DEBT_RECOVERY_METHOD_1, number)] = debt.method
            values[debt_attribute(A.DEBT_RECOVERY_START_TIME_1, number)] = debt.start_time
            values[debt_attribute(A.DEBT_RECOVERY_COLLECTION_TIME_1, number)] = debt.collection_time
            values[debt_attribute(A.DEBT_RECOVERY_FREQUENCY_1, number)] = debt.frequency
            values[debt_attribute(A.DEBT_RECOVERY_AMOUNT_1, number)] = debt.recovery_amount
            values[debt_attribute(A.DEBT_RECOVERY_TOP_UP_PERCENTAGE_1, number)] = debt.percentage
        return {attr: (attribute_type_id(attr), value) for attr, value in values.items()}


def _alarms_and_friendly_credit(account: PrepayAccount, now: int) -> dict[int, Any]:
    """The Alarms set (D.7.2.2.5) and, with friendly credit on, Friendly Credit Warning,
    Remaining Friendly Credit Time and Next Friendly Credit Period (D.7.2.2.1.13-17)."""
    masks = account.alarm_masks
    values: dict[int, Any] = {
        A.PREPAYMENT_ALARM_STATUS: int(account.alarm_status(now)),
        A.PREPAY_GENERIC_ALARM_MASK: masks["generic"],
        A.PREPAY_SWITCH_ALARM_MASK: masks["switch"],
        A.PREPAY_EVENT_ALARM_MASK: masks["event"],
    }
    if account.config.friendly_credit:
        remaining, next_period = account.friendly_times(now)
        values[A.FRIENDLY_CREDIT_WARNING] = account.config.friendly_credit_warning
        values[A.REMAINING_FRIENDLY_CREDIT_TIME] = remaining
        values[A.NEXT_FRIENDLY_CREDIT_PERIOD] = next_period
    return values


def _cost_consumption(account: PrepayAccount, now: int) -> dict[int, Any]:
    """The Historical Cost Consumption set (D.7.2.2.6): the cost delivered by day, week and
    month in account units, so formatted (``currency_digits`` right of the point, 8 left,
    leading zeros suppressed, the bitmap of the Metering Formatting set) and scaled (Currency
    Scaling Factor, table D-144: 0x06 is x1, each step a tenth); consumption in kWh
    (UnitOfMeasure 0x00: the account charges kWh); days from local midnight (Historical
    Freeze Time 0x0000). The Received attributes are not served: zse charges no export."""
    digits = account.config.currency_digits
    values: dict[int, Any] = {
        A.HISTORICAL_COST_CONSUMPTION_FORMATTING: _SUPPRESS_ZEROS | _LEFT_DIGITS << 3 | digits,
        A.CONSUMPTION_UNIT_OF_MEASUREMENT: int(UnitOfMeasure.KWH),
        A.CURRENCY_SCALING_FACTOR: _SCALE_ONE - digits,
        A.HISTORICAL_FREEZE_TIME: 0,
    }
    if account.config.currency:
        values[A.CURRENCY] = account.config.currency
    for period, costs in account.cost_consumption(now).items():
        for back, cost in enumerate(costs):
            values[cost_consumption_attribute(period, back)] = cost
    return values


def scheduled(command_id: int, command: Any) -> Scheduled:
    """The :class:`~zse.prepayment.core.Scheduled` change a utility command makes: Change
    Payment Mode, Set Maximum Credit Limit and Set Overall Debt Cap at their Implementation
    Date/Time, Emergency Credit Setup and Credit Adjustment at their Start Time."""
    values: tuple[int, ...]
    if command_id == S.EMERGENCY_CREDIT_SETUP:
        kind = "emergency_credit"
        values = (int(command.emergency_credit_limit), int(command.emergency_credit_threshold))
    elif command_id == S.CREDIT_ADJUSTMENT:
        kind = "credit_adjustment"
        values = (int(command.credit_adjustment_type), int(command.credit_adjustment_value))
    elif command_id == S.CHANGE_PAYMENT_MODE:
        kind = "payment_mode"
        values = (
            int(command.proposed_payment_control_configuration),
            int(command.cut_off_value),
        )
    elif command_id == S.SET_MAXIMUM_CREDIT_LIMIT:
        kind = "max_credit"
        values = (int(command.maximum_credit_level), int(command.maximum_credit_per_top_up))
    else:  # Set Overall Debt Cap
        kind = "debt_cap"
        values = (int(command.overall_debt_cap),)
    when = getattr(command, "implementation_date_time", None)
    if when is None:
        when = command.start_time
    return Scheduled(
        kind,
        values,
        when=int(when),
        issuer_event_id=int(command.issuer_event_id),
        provider_id=int(getattr(command, "provider_id", 0)),
    )


def _origin(msg: ZclMessage) -> int:
    """The Source of Top Up a response names: the display (the top-up came over the HAN)."""
    del msg
    return OriginatingDevice.In_Home_Display


def _top_up_record(top_up: TopUp) -> bytes:
    return TopUpLogEntries([(top_up.code, top_up.amount, top_up.time)]).serialize()


def _debt_record(collected: DebtCollected) -> bytes:
    entry = (collected.time, collected.amount, collected.debt_type, collected.outstanding)
    return DebtLogEntries([entry]).serialize()


def snapshot_payload(snapshot: Snapshot, found: int) -> bytes:
    """Publish Prepay Snapshot's payload for ``snapshot``, one of ``found`` (D.7.2.4.1)."""
    schema = Prepayment.ClientCommandDefs.publish_prepay_snapshot.schema
    return encode_command(
        schema(
            snapshot_id=snapshot.snapshot_id,
            snapshot_time=snapshot.time,
            total_snapshots_found=min(found, 0xFF),
            command_index=0,
            total_number_of_commands=1,
            snapshot_cause=snapshot.cause,
            snapshot_payload_type=SnapshotPayloadType.Debt_Credit_Status,
            snapshot_payload=snapshot.status.encode(),
        )
    )


# -- the client ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotReceived:
    """A Publish Prepay Snapshot: ``status`` is its Debt/Credit Status (None for another
    payload type, whose octets are ``payload``)."""

    snapshot_id: int
    time: int
    cause: int
    total_found: int
    status: DebtCreditStatus | None
    payload: bytes


@dataclass(frozen=True)
class TopUpLogReceived:
    """One Publish Top Up Log command: (code, amount, time) records, newest first. The repr
    masks the codes."""

    command_index: int
    total_commands: int
    entries: TopUpLogEntries


@dataclass(frozen=True)
class DebtLogReceived:
    """One Publish Debt Log command: (time, amount collected, debt type, outstanding)."""

    command_index: int
    total_commands: int
    entries: tuple[tuple[int, int, int, int], ...]


@dataclass(frozen=True)
class TopUpAnswered:
    """A Consumer Top Up Response."""

    result: TopUpResult
    value: int
    source: int
    credit_remaining: int


@dataclass(frozen=True)
class PaymentModeAnswered:
    """A Change Payment Mode Response."""

    friendly_credit: int
    friendly_credit_calendar_id: int
    emergency_credit_limit: int
    emergency_credit_threshold: int


ClientEvent = (
    SnapshotReceived | TopUpLogReceived | DebtLogReceived | TopUpAnswered | PaymentModeAnswered
)


class PrepaymentClientProtocol:
    """A display's Prepayment client core (SE 1.2 D.7.3)."""

    def screen(self, msg: ZclMessage) -> Step | None:
        """UNSUP_CLUSTER_COMMAND for anything but a server's command, before decoding."""
        if msg.from_server and msg.command_id in _CLIENT_RECEIVES:
            return None
        return Step(status=_Status.UNSUP_CLUSTER_COMMAND)

    def next_deadline(self) -> int | None:
        """Nothing timed."""
        return None

    def handle_timeout(self, now: int) -> Step:
        """Nothing timed."""
        return Step()

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """What the meter sent, as an event."""
        screened = self.screen(msg)
        if screened is not None:
            return screened
        cid = msg.command_id
        event: ClientEvent
        if cid == C.PUBLISH_PREPAY_SNAPSHOT:
            payload = bytes(command.snapshot_payload)
            status = None
            if int(command.snapshot_payload_type) == SnapshotPayloadType.Debt_Credit_Status:
                try:
                    status = DebtCreditStatus.decode(payload)
                except ValueError:
                    return Step(status=_Status.MALFORMED_COMMAND)
            event = SnapshotReceived(
                int(command.snapshot_id),
                int(command.snapshot_time),
                int(command.snapshot_cause),
                int(command.total_snapshots_found),
                status,
                payload,
            )
        elif cid == C.CONSUMER_TOP_UP_RESPONSE:
            event = TopUpAnswered(
                command.result_type,
                int(command.top_up_value),
                int(command.source_of_top_up),
                int(command.credit_remaining),
            )
        elif cid == C.PUBLISH_TOP_UP_LOG:
            event = TopUpLogReceived(
                int(command.command_index),
                int(command.total_number_of_commands),
                command.entries,
            )
        elif cid == C.PUBLISH_DEBT_LOG:
            event = DebtLogReceived(
                int(command.command_index),
                int(command.total_number_of_commands),
                tuple(command.entries),
            )
        else:
            event = PaymentModeAnswered(
                int(command.friendly_credit),
                int(command.friendly_credit_calendar_id),
                int(command.emergency_credit_limit),
                int(command.emergency_credit_threshold),
            )
        return Step(events=(event,))

    # -- requests ------------------------------------------------------------------------------

    @staticmethod
    def select_emergency_credit(server: Destination, now: int) -> Send:
        """Select Available Emergency Credit from this display (D.7.2.3.1)."""
        schema = Prepayment.ServerCommandDefs.select_available_emergency_credit.schema
        payload = encode_command(
            schema(
                command_issue_date_time=now, originating_device=OriginatingDevice.In_Home_Display
            )
        )
        return Send(
            cluster_id=PREPAYMENT,
            command_id=S.SELECT_AVAILABLE_EMERGENCY_CREDIT,
            payload=payload,
            to=server,
        )

    @staticmethod
    def top_up(server: Destination, code: bytes) -> Send:
        """Consumer Top Up with ``code`` as typed at this display (D.7.2.3.4)."""
        schema = Prepayment.ServerCommandDefs.consumer_top_up.schema
        payload = encode_command(
            schema(originating_device=OriginatingDevice.In_Home_Display, top_up_code=code)
        )
        return Send(
            cluster_id=PREPAYMENT,
            command_id=S.CONSUMER_TOP_UP,
            payload=payload,
            to=server,
            answers=frozenset({C.CONSUMER_TOP_UP_RESPONSE}),
        )

    @staticmethod
    def get_prepay_snapshot(
        server: Destination, earliest: int = 0, latest: int = 0xFFFFFFFF, offset: int = 0,
        cause: int = _ANY_CAUSE,
    ) -> Send:  # fmt: skip
        """Get Prepay Snapshot (D.7.2.3.7)."""
        schema = Prepayment.ServerCommandDefs.get_prepay_snapshot.schema
        payload = encode_command(
            schema(
                earliest_start_time=earliest,
                latest_end_time=latest,
                snapshot_offset=offset,
                snapshot_cause=cause,
            )
        )
        return Send(
            cluster_id=PREPAYMENT,
            command_id=S.GET_PREPAY_SNAPSHOT,
            payload=payload,
            to=server,
            answers=frozenset({C.PUBLISH_PREPAY_SNAPSHOT}),
        )

    @staticmethod
    def get_top_up_log(server: Destination, latest: int = 0xFFFFFFFF, count: int = 0) -> Send:
        """Get Top Up Log (D.7.2.3.8)."""
        schema = Prepayment.ServerCommandDefs.get_top_up_log.schema
        payload = encode_command(schema(latest_end_time=latest, number_of_records=count))
        return Send(cluster_id=PREPAYMENT, command_id=S.GET_TOP_UP_LOG, payload=payload, to=server)

    @staticmethod
    def get_debt_repayment_log(
        server: Destination, latest: int = 0xFFFFFFFF, count: int = 0, debt_type: int = 0xFF
    ) -> Send:
        """Get Debt Repayment Log (D.7.2.3.10)."""
        schema = Prepayment.ServerCommandDefs.get_debt_repayment_log.schema
        payload = encode_command(
            schema(latest_end_time=latest, number_of_records=count, debt_type=debt_type)
        )
        return Send(
            cluster_id=PREPAYMENT, command_id=S.GET_DEBT_REPAYMENT_LOG, payload=payload, to=server
        )
