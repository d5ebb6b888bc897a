"""A prepay account on the meter's side (SE 1.2 D.7), sans-IO: credit, emergency credit,
top-ups, debts, logs and snapshots, fed ``now`` and consumption; nothing here reads a clock,
stores or sends.

Amounts are whole account units (``currency_digits`` digits after the point: 2, pence or
cents), as the Prepayment attributes carry them (int32 / uint32 on the wire).

- **Consumption** (:meth:`PrepayAccount.consume`): energy (kWh, exact) at a price (account
  units per kWh, exact) is charged to credit, then to emergency credit when it was selected;
  the fractions of a unit carry over, so the charge does not drift however often it is fed.
  What is used once both are gone drives credit below zero (energy taken while the supply is
  interrupted: the relay is not modelled, only the state).
- **Emergency credit** (D.7.2.2.1.8-9): offered once credit is at or under its threshold
  (``emergency_credit_threshold``) and selected by Select Available Emergency Credit; it
  gives ``emergency_credit_limit`` to use. A top-up first pays back what was used of it
  (of what was given: an Emergency Credit Setup meanwhile changes the next selection's).
- **Credit Status** (D.7.2.2.1.4, table D-131) from the state: Credit OK, Low Credit (at or
  under the low credit warning level), Emergency Credit Enabled / Available / Selected /
  In Use, Credit Exhausted. The supply is interrupted (:class:`SupplyInterrupted`) when credit
  and emergency credit are exhausted, restored (:class:`SupplyRestored`) when a top-up or an
  emergency credit selection brings credit back.
- **Consumer Top Up** (D.7.2.3.4): a code (UTRN) goes to the validator the application gives
  (code -> amount, or a :class:`~zse.prepayment.wire.TopUpResult` refusal); the default
  (:class:`RegisteredCodes`) accepts codes the operator registered, with their amounts. A code
  is applied at most once: the account keeps a digest of every code applied (SHA-256, never
  the code) and answers a repeat Rejected - Duplicate Top Up. The digest is of the code
  without spaces and dashes (and, all digits, without leading zeros), so the same code typed
  another way is the same code (:func:`canonical_code`). The caller persists
  :meth:`PrepayAccount.snapshot` before it answers (the service does, in one commit).
  Codes show in logs and errors masked (all but the last 4 characters).
- **Top-up log** (D.7.2.2.2, Get Top Up Log): the newest :data:`MAX_TOP_UP_LOG` top-ups,
  newest first. **Snapshots** (Get Prepay Snapshot): a Debt/Credit Status snapshot is taken at
  each top-up and credit or debt change, the newest :data:`MAX_SNAPSHOTS` kept.
- **Debts** 1-3 (D.7.2.2.3, Change Debt): recovered by time (a fixed amount each hour, day or
  week; month and quarter as 30 and 91 days) when the account is fed a later ``now``, or by
  percentage (whole percent of each top-up); each collection goes to the debt log
  (:data:`MAX_DEBT_LOG` newest). Catch-up recovery is not done (refused INVALID_FIELD by the
  protocol).
- **Historical cost consumption** (D.7.2.2.6): what consumption charged (account units) is
  counted by the meter's local day, week (from Monday) and month (``local``: UTC to local
  ZigBee time; from midnight, the Historical Freeze Time zse serves), the
  :data:`COST_DAYS`, :data:`COST_WEEKS` and :data:`COST_MONTHS` newest kept, and read by
  their distance from ``now`` (:meth:`PrepayAccount.cost_consumption`), so a day that turned
  while nothing was charged reads as it is, never stale.
- **Alarms** (D.7.2.2.5): :meth:`PrepayAccount.alarm_status` (table D-138) from the state
  at ``now``; the three alarm masks kept as written (zse sends no Alarms cluster alarm).
- **The utility's commands at their time** (:meth:`PrepayAccount.schedule`): Change Payment
  Mode, Set Maximum Credit Limit and Set Overall Debt Cap at their Implementation Date/Time,
  Emergency Credit Setup and Credit Adjustment at their Start Time: kept pending (bounded,
  :data:`MAX_PENDING` per kind, in :meth:`PrepayAccount.snapshot`) until the account is fed a
  ``now`` at or after it, then applied once. 0 is now; 0xFFFFFFFF cancels the pending one.
  :meth:`PrepayAccount.next_deadline` says when to feed it. Change Debt's amount applies when
  received; its recovery starts at its Debt Recovery Start Time.
- **Friendly credit** (D.7.2.2.1, Change Payment Mode Response D.7.2.4.2): with
  ``config.friendly_credit``, credit that runs out while the Friendly Credit calendar
  (SE 1.2 D.9, type 0x03) says friendly credit is on does not interrupt the supply
  (:class:`FriendlyCreditStarted`): the debt accrues as credit below zero; at the period's
  end (a deadline) the supply is interrupted if credit is still gone
  (:class:`FriendlyCreditEnded`, :class:`SupplyInterrupted`). Credit Status has no friendly
  credit bit in the sources used: it shows Credit Exhausted meanwhile. A supply interrupted
  before a friendly period is not restored by it.

The SE 1.2 text was out of reach: the behaviour follows the attribute and command
definitions as Wireshark 4.0, zsmartsystems' ``0705_Prepayment.xml`` and DSR ZBOSS's
Prepayment header describe them (see :mod:`zse.prepayment.wire`); the 0 / 0xFFFFFFFF
conventions of the Implementation Date/Time are those of Silicon Labs' prepayment modes
table, the friendly credit bitmap Exegin's and zsmartsystems' (facts only, nothing copied).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Final

from zse._words import quoted
from zse.errors import ZseError
from zse.metering.core import summation_advance
from zse.metering.formatting import bcd_to_int, scaled
from zse.records import (
    BOOL,
    INT,
    STR,
    U8,
    Fields,
    ListOf,
    MapOf,
    Mismatch,
    Opt,
    Shape,
    TupleOf,
    Type,
    check,
)
from zse.schedule import CANCEL, NOW, ScheduleFull, take_due
from zse.schedule import schedule as _schedule
from zse.se.ids import COST_CONSUMPTION_PERIODS
from zse.se.prepay import (
    CreditStatus,
    DebtCreditStatus,
    DebtRecoveryFrequency,
    DebtRecoveryMethod,
    PaymentControlConfiguration,
    PrepaymentAlarmStatus,
    SnapshotCause,
    TopUpResult,
    mask_code,
)
from zse.se.types import UNIT_OF_MEASURE_BCD
from zse.time.core import PERIOD_STEP, LocalTime, keep_near, local_period, utc_as_local

__all__ = [
    "ALARM_MASKS",
    "CANCEL",
    "MAX_ADJUSTED",
    "MAX_CODE_LENGTH",
    "MAX_DEBT_LOG",
    "MAX_PENDING",
    "MAX_SNAPSHOTS",
    "MAX_TOP_UP_LOG",
    "NOW",
    "SCHEDULED_KINDS",
    "SETTINGS",
    "CreditExhausted",
    "Debt",
    "DebtCollected",
    "EmergencyCreditAvailable",
    "EmergencyCreditSelected",
    "FriendlyCalendar",
    "FriendlyCredit",
    "FriendlyCreditEnded",
    "FriendlyCreditStarted",
    "LocalTime",
    "LowCredit",
    "PendingFull",
    "PrepayAccount",
    "PrepayConfig",
    "PrepayError",
    "PrepayEvent",
    "RegisteredCodes",
    "Scheduled",
    "Snapshot",
    "SupplyInterrupted",
    "SupplyRestored",
    "TopUp",
    "TopUpAccepted",
    "TopUpOutcome",
    "TopUpRefused",
    "Validator",
    "canonical_code",
    "code_digest",
    "event_from_record",
    "event_record",
    "unit_price",
]

#: The Alarms set's masks (D.7.2.2.5.2-4): generic, switch, event; every alarm enabled until
#: written (zse's choice: no source gives a default).
ALARM_MASKS: Final = ("generic", "switch", "event")
_ALL_ALARMS: Final = 0xFFFF
#: What Remaining Friendly Credit Time (uint16, minutes) and Next Friendly Credit Period
#: (UTCTime) say when no time is known (ZCL's invalid values).
_NO_MINUTES: Final = 0xFFFF
_NO_TIME: Final = 0xFFFFFFFF
#: Calendar changes :meth:`PrepayAccount.friendly_times` follows to find the next period.
_FRIENDLY_LOOK: Final = 16
_UINT48_MAX: Final = (1 << 48) - 1

#: Top-ups kept for Get Top Up Log and the Top-up attribute set, newest first.
MAX_TOP_UP_LOG: Final = 30
#: Snapshots kept for Get Prepay Snapshot, newest first.
MAX_SNAPSHOTS: Final = 16
#: Debt collections kept for Get Debt Repayment Log, newest first.
MAX_DEBT_LOG: Final = 30
#: The longest top-up code taken (GB UTRNs are 20 digits); a longer one is invalid.
MAX_CODE_LENGTH: Final = 40
#: Codes an operator may have registered and not yet used (RegisteredCodes).
MAX_REGISTERED: Final = 10_000
_INT32 = (-(1 << 31), (1 << 31) - 1)
_UINT32 = (0, (1 << 32) - 1)
_ACCEPTED = frozenset(
    {
        TopUpResult.Accepted,
        TopUpResult.Accepted_Supply_Enabled,
        TopUpResult.Accepted_Supply_Disabled,
        TopUpResult.Accepted_Supply_Armed,
    }
)
#: The settings the utility's commands change (Emergency Credit Setup, Set Maximum Credit
#: Limit, Set Overall Debt Cap, Change Payment Mode): kept with the account, over its
#: configuration, so that they outlive a restart.
SETTINGS: Final = frozenset(
    {
        "emergency_credit_limit",
        "emergency_credit_threshold",
        "max_credit_limit",
        "max_credit_per_top_up",
        "overall_debt_cap",
        "payment_control",
        "cut_off_value",
    }
)
#: Seconds of each time-based recovery period (table D-136; a month 30 days, a quarter 91).
RECOVERY_PERIOD: Final[dict[int, int]] = {
    DebtRecoveryFrequency.Per_Hour: 3600,
    DebtRecoveryFrequency.Per_Day: 86400,
    DebtRecoveryFrequency.Per_Week: 7 * 86400,
    DebtRecoveryFrequency.Per_Month: 30 * 86400,
    DebtRecoveryFrequency.Per_Quarter: 91 * 86400,
}


#: The utility's commands that wait for their time (Implementation Date/Time: Change Payment
#: Mode D.7.2.3.6, Set Maximum Credit Limit D.7.2.3.11, Set Overall Debt Cap D.7.2.3.12;
#: Start Time: Emergency Credit Setup D.7.2.3.3, Credit Adjustment D.7.2.3.5), by kind, with
#: the values each carries, in order.
SCHEDULED_KINDS: Final[dict[str, tuple[str, ...]]] = {
    "payment_mode": ("payment_control", "cut_off_value"),
    "max_credit": ("max_credit_limit", "max_credit_per_top_up"),
    "debt_cap": ("overall_debt_cap",),
    "emergency_credit": ("emergency_credit_limit", "emergency_credit_threshold"),
    "credit_adjustment": ("absolute", "value"),
}
#: Pending commands kept per kind; past it, a command that would wait is refused.
MAX_PENDING: Final = 8
#: Credit adjustments applied whose issue (provider id, issuer event id) is kept, the newest,
#: so that the utility sending one again (it missed the answer) does not add it twice.
MAX_ADJUSTED: Final = 32


class PrepayError(ZseError, ValueError):
    """A prepay setting or operation that cannot be done (the message never holds a code)."""


class PendingFull(PrepayError):
    """A utility command that would wait past :data:`MAX_PENDING` of its kind (answered
    INSUFFICIENT_SPACE): it takes no accepted command's place."""


#: What a display may put between a code's digits (a UTRN is printed in groups).
_SEPARATORS: Final = b" \t-"


def canonical_code(code: bytes) -> bytes:
    """The code that ``code`` spells: without spaces, tabs and dashes, and for a code of
    digits only, without leading zeros (``b"0"`` for zeros only). Two ways of typing one code
    are one code: applied once, found once among the registered codes."""
    bare = bytes(code).translate(None, _SEPARATORS)
    if bare.isdigit():
        return bare.lstrip(b"0") or b"0"
    return bare


def code_digest(code: bytes) -> str:
    """What the account keeps of a code: the SHA-256 digest of its :func:`canonical_code`,
    hex (the code is not kept)."""
    return hashlib.sha256(b"zse.prepayment.top-up-code\x00" + canonical_code(code)).hexdigest()


#: A top-up validator: the code as typed -> the amount to add (account units, > 0), or a
#: refusal (:class:`TopUpResult`, a Rejected one).
Validator = Callable[[bytes], "int | TopUpResult"]


class RegisteredCodes:
    """The default validator: accepts codes the operator registered, each with its amount.

    Only digests are held (:func:`code_digest`), so a snapshot or a repr never shows a code.
    A code is taken out once applied (:meth:`used`); an unknown code is Rejected - Invalid.
    """

    def __init__(self, codes: Mapping[bytes | str, int] | None = None) -> None:
        self._amounts: dict[str, int] = {}
        for code, amount in (codes or {}).items():
            self.register(code, amount)

    def __repr__(self) -> str:
        return f"RegisteredCodes({len(self._amounts)} codes)"

    def __len__(self) -> int:
        return len(self._amounts)

    def register(self, code: bytes | str, amount: int) -> None:
        """Accept ``code`` once, for ``amount`` account units (> 0)."""
        raw = code.encode("ascii") if isinstance(code, str) else bytes(code)
        if not raw.translate(None, _SEPARATORS) or len(raw) > MAX_CODE_LENGTH:
            raise PrepayError(f"a top-up code is 1-{MAX_CODE_LENGTH} characters")
        if not 0 < amount <= _INT32[1]:
            raise PrepayError(f"top-up {mask_code(raw)}: amount {amount} is not 1-{_INT32[1]}")
        digest = code_digest(raw)
        if digest not in self._amounts and len(self._amounts) >= MAX_REGISTERED:
            raise PrepayError(f"{MAX_REGISTERED} codes are registered and unused already")
        self._amounts[digest] = amount

    def __call__(self, code: bytes) -> int | TopUpResult:
        return self._amounts.get(code_digest(code), TopUpResult.Rejected_Invalid_Top_Up)

    def used(self, code: bytes) -> None:
        """Forget an applied code (the account refuses it as a duplicate from now on)."""
        self._amounts.pop(code_digest(code), None)

    def digests(self) -> dict[str, int]:
        """Digest -> amount, for a store."""
        return dict(self._amounts)

    def restore(self, digests: Mapping[str, int]) -> None:
        """Take stored digests (and amounts) back."""
        for digest, amount in digests.items():
            if not _is_digest(digest) or type(amount) is not int or not 0 < amount <= _INT32[1]:
                raise Mismatch("not a code digest and an amount")
        self._amounts.update(digests)

    def replace(self, digests: Mapping[str, int]) -> None:
        """Hold exactly ``digests`` (a change undone)."""
        self._amounts = dict(digests)


@dataclass(frozen=True)
class PrepayConfig:
    """The account's settings (the ESI's ``[prepayment]`` table): amounts in account units.

    ``initial_credit``: credit at the first start (a stored account wins after that).
    ``low_credit_warning_level`` (D.7.2.2.1.14), ``emergency_credit_limit`` and
    ``emergency_credit_threshold`` (D.7.2.2.1.8-9; a limit of 0: no emergency credit),
    ``max_credit_limit`` and ``max_credit_per_top_up`` (D.7.2.2.1.11-12; 0: no limit),
    ``overall_debt_cap`` (D.7.2.2.1.7; 0: no cap), ``cut_off_value`` (D.7.2.2.1.19, served
    only), ``currency_digits``: the digits after the point of an account unit.
    ``friendly_credit``: the supply is not interrupted while the Friendly Credit calendar
    says friendly credit is on (off by default; :class:`FriendlyCredit`).
    ``friendly_credit_warning``: Friendly Credit Warning (D.7.2.2.1.13), minutes before a
    friendly credit period's end when the Friendly Credit Period End Warning alarm is set
    (default 60, the hour DSR ZBOSS's Prepayment header gives). ``currency``: the ISO 4217
    code the Historical Cost Consumption set's Currency serves (0: not served).
    """

    initial_credit: int = 0
    low_credit_warning_level: int = 0
    emergency_credit_limit: int = 0
    emergency_credit_threshold: int = 0
    max_credit_limit: int = 0
    max_credit_per_top_up: int = 0
    overall_debt_cap: int = 0
    cut_off_value: int = 0
    currency_digits: int = 2
    payment_control: int = (
        PaymentControlConfiguration.Prepayment_Enabled
        | PaymentControlConfiguration.Credit_Display_Enabled
    )
    friendly_credit: bool = False
    friendly_credit_warning: int = 60
    currency: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.friendly_credit, bool):
            raise PrepayError(
                f"prepayment friendly_credit {self.friendly_credit!r} is not true/false"
            )
        for name, (low, high) in {
            "initial_credit": _INT32,
            "low_credit_warning_level": _UINT32,
            "emergency_credit_limit": (0, _INT32[1]),
            "emergency_credit_threshold": _UINT32,
            "max_credit_limit": _UINT32,
            "max_credit_per_top_up": _UINT32,
            "overall_debt_cap": (0, _INT32[1]),
            "cut_off_value": _INT32,
            "currency_digits": (0, 6),
            "payment_control": (0, 0xFFFF),
            "friendly_credit_warning": (0, 0xFF),
            "currency": (0, 0xFFFF),
        }.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise PrepayError(f"prepayment {name} {quoted(value)} is not {low}-{high}")


# -- what the account keeps ----------------------------------------------------------------------


@dataclass(frozen=True)
class TopUp:
    """One applied top-up (D.7.2.2.2): when, how much, from where, and the code as received
    (the code is spent; a repr shows it masked)."""

    time: int
    amount: int
    origin: int
    code: bytes = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"TopUp(time={self.time}, amount={self.amount}, origin={self.origin}, "
            f"code={mask_code(self.code)!r})"
        )


@dataclass(frozen=True)
class Debt:
    """One of debts 1-3 (D.7.2.2.3, Change Debt D.7.2.3.2): what is owed and how it is
    recovered. ``next_collection``: when the next time-based collection is due."""

    label: bytes = b""
    amount: int = 0
    method: int = DebtRecoveryMethod.Time_Based
    start_time: int = 0
    collection_time: int = 0
    frequency: int = DebtRecoveryFrequency.Per_Day
    recovery_amount: int = 0
    percentage: int = 0
    next_collection: int = 0


@dataclass(frozen=True)
class DebtCollected:
    """A collection towards a debt (the debt log, D.7.2.4.5; an event too)."""

    time: int
    amount: int
    debt_type: int
    outstanding: int


@dataclass(frozen=True)
class Snapshot:
    """A prepay snapshot (Publish Prepay Snapshot, type Debt/Credit Status)."""

    snapshot_id: int
    time: int
    cause: int
    status: DebtCreditStatus


@dataclass(frozen=True)
class Scheduled:
    """A utility command that takes effect at ``when`` (its Implementation Date/Time or
    Start Time, UTC; :data:`NOW`: when received; :data:`CANCEL`: cancel the pending one of
    the same kind, provider and issuer event id). ``values``: as :data:`SCHEDULED_KINDS`
    names them for ``kind``."""

    kind: str
    values: tuple[int, ...]
    when: int = NOW
    issuer_event_id: int = 0
    provider_id: int = 0


@dataclass(frozen=True)
class FriendlyCredit:
    """What the Friendly Credit calendar (SE 1.2 D.9, calendar type 0x03) in force says at an
    instant: its Issuer Calendar ID, whether friendly credit is on, and when that next
    changes (UTC; None: not within the calendar's look ahead)."""

    calendar_id: int
    enabled: bool
    changes_at: int | None = None


#: The account's view of the Friendly Credit calendar: ``now`` -> what it says (None: no
#: such calendar in force). The shell builds it from the ESI's Calendar store.
FriendlyCalendar = Callable[[int], FriendlyCredit | None]


# -- events --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LowCredit:
    """Credit fell to or under the low credit warning level."""

    credit_remaining: int
    level: int


@dataclass(frozen=True)
class EmergencyCreditAvailable:
    """Credit fell to or under the emergency credit threshold: emergency credit may be
    selected."""

    credit_remaining: int


@dataclass(frozen=True)
class EmergencyCreditSelected:
    """Emergency credit was selected (Select Available Emergency Credit, from ``origin``)."""

    emergency_credit: int
    origin: int


@dataclass(frozen=True)
class CreditExhausted:
    """Credit and emergency credit are gone."""

    credit_remaining: int


@dataclass(frozen=True)
class SupplyInterrupted:
    """The supply is interrupted for want of credit (a state; zse does not drive a relay)."""

    time: int


@dataclass(frozen=True)
class SupplyRestored:
    """The supply is back: credit returned (a top-up, emergency credit)."""

    time: int


@dataclass(frozen=True)
class FriendlyCreditStarted:
    """Credit ran out in a friendly credit period: the supply stays on (the debt accrues as
    credit below zero) until ``until`` (UTC; None: no end known), when it is interrupted if
    credit is still gone."""

    time: int
    until: int | None


@dataclass(frozen=True)
class FriendlyCreditEnded:
    """Friendly credit is no longer in use: the period ended (``SupplyInterrupted`` follows
    when credit is still gone) or credit came back."""

    time: int


@dataclass(frozen=True)
class TopUpAccepted:
    """A top-up was applied. ``code`` is masked."""

    amount: int
    credit_remaining: int
    origin: int
    code: str
    result: TopUpResult


@dataclass(frozen=True)
class TopUpRefused:
    """A top-up was refused (``result``: why). ``code`` is masked."""

    result: TopUpResult
    origin: int
    code: str


PrepayEvent = (
    LowCredit
    | EmergencyCreditAvailable
    | EmergencyCreditSelected
    | CreditExhausted
    | SupplyInterrupted
    | SupplyRestored
    | FriendlyCreditStarted
    | FriendlyCreditEnded
    | TopUpAccepted
    | TopUpRefused
    | DebtCollected
)

#: Each event's fields as a record holds them (:func:`event_record`): the account's events
#: are journalled with the account's store write and told from the journal after a restart.
_EVENT_FIELDS: Final[Mapping[type, Mapping[str, Shape]]] = {
    LowCredit: {"credit_remaining": INT, "level": INT},
    EmergencyCreditAvailable: {"credit_remaining": INT},
    EmergencyCreditSelected: {"emergency_credit": INT, "origin": INT},
    CreditExhausted: {"credit_remaining": INT},
    SupplyInterrupted: {"time": INT},
    SupplyRestored: {"time": INT},
    FriendlyCreditStarted: {"time": INT, "until": Opt(INT)},
    FriendlyCreditEnded: {"time": INT},
    TopUpAccepted: {
        "amount": INT,
        "credit_remaining": INT,
        "origin": INT,
        "code": STR,
        "result": U8,
    },
    TopUpRefused: {"result": U8, "origin": INT, "code": STR},
    DebtCollected: {"time": INT, "amount": INT, "debt_type": INT, "outstanding": INT},
}
_EVENT_SHAPES: Final = {kind.__name__: (kind, Fields(f)) for kind, f in _EVENT_FIELDS.items()}
_EVENT_RECORD: Final = Fields({"event": STR, "fields": Type(dict)})


def event_record(event: PrepayEvent) -> dict[str, Any]:
    """``event`` as a JSON record: ``{"event": its class name, "fields": {...}}`` (a
    top-up's code is the masked one the event carries)."""
    fields = {name: getattr(event, name) for name in _EVENT_FIELDS[type(event)]}
    if "result" in fields:
        fields["result"] = int(fields["result"])
    return {"event": type(event).__name__, "fields": fields}


def event_from_record(value: Any) -> PrepayEvent:
    """The event of a record :func:`event_record` made, checked (:class:`Mismatch`, or
    ``ValueError`` for a top-up result SE does not define)."""
    check(value, _EVENT_RECORD)
    kind, shape = _EVENT_SHAPES.get(value["event"], (None, None))
    if kind is None or shape is None:
        raise Mismatch("not a prepayment event")
    check(value["fields"], shape)
    fields = dict(value["fields"])
    if "result" in fields:
        fields["result"] = TopUpResult(fields["result"])  # type: ignore[no-untyped-call]
    event: PrepayEvent = kind(**fields)
    return event


@dataclass(frozen=True)
class TopUpOutcome:
    """What Consumer Top Up decided: the response's fields, and the events."""

    result: TopUpResult
    value: int
    origin: int
    credit_remaining: int
    events: tuple[PrepayEvent, ...]

    @property
    def accepted(self) -> bool:
        """True when credit was added."""
        return self.result in _ACCEPTED


# -- the account ---------------------------------------------------------------------------------

_SHAPE = Fields(
    {
        "credit": INT,
        "emergency_remaining": INT,
        "selected": BOOL,
        "interrupted": BOOL,
        "low": BOOL,
        "offered": BOOL,
        "carry": TupleOf(INT, INT),
        "credit_time": INT,
        "total_added": INT,
        "top_ups": ListOf(TupleOf(INT, INT, INT, STR)),
        "debts": ListOf(TupleOf(STR, INT, INT, INT, INT, INT, INT, INT, INT)),
        "debt_log": ListOf(TupleOf(INT, INT, INT, INT)),
        "snapshots": ListOf(TupleOf(INT, INT, INT, ListOf(INT))),
        "next_snapshot": INT,
        "low_level": INT,
        "summation": Opt(INT),
    },
    {
        "settings": MapOf(INT),
        "emergency_granted": INT,
        "pending": ListOf(TupleOf(STR, INT, INT, INT, ListOf(INT))),
        "friendly": TupleOf(BOOL, Opt(INT)),
        "adjusted": ListOf(TupleOf(INT, INT)),
        "adjusted_floor": ListOf(TupleOf(INT, INT)),
        "alarm_masks": ListOf(INT),
        "top_up_alarm": INT,
        "cost": MapOf(ListOf(TupleOf(INT, INT))),
    },
)


def unit_price(price: int, trailing_digit: int, currency_digits: int) -> Fraction:
    """A Publish Price price (D.4.2.4.1.1.11: currency per unit of measure, ``trailing_digit``
    digits after the point) in account units (``currency_digits`` after the point)."""
    return Fraction(price * 10**currency_digits, 10**trailing_digit)


class PrepayAccount:
    """The meter's prepay account. ``validator``: the application's check of a top-up code
    (default: :attr:`registered`, codes the operator registered); ``friendly_calendar``:
    what the Friendly Credit calendar says (used when ``config.friendly_credit``);
    ``local``: the meter's local time at an instant (default: UTC), whose midnights bound the
    historical cost consumption's days."""

    def __init__(
        self,
        config: PrepayConfig,
        *,
        validator: Validator | None = None,
        friendly_calendar: FriendlyCalendar | None = None,
        local: LocalTime | None = None,
    ) -> None:
        self.config = config
        self.friendly_calendar = friendly_calendar
        #: The meter's local time at a UTC instant (the historical cost consumption's days).
        self.local: LocalTime = local if local is not None else utc_as_local
        #: The Alarms set's masks by :data:`ALARM_MASKS` name, as written.
        self.alarm_masks: dict[str, int] = dict.fromkeys(ALARM_MASKS, _ALL_ALARMS)
        #: The top-up code alarms (table D-138 bits 1-3) of the last top-up refused; an
        #: accepted top-up clears them.
        self.top_up_alarm = 0
        #: Cost of consumption charged by period ("day", "week", "month") and local period
        #: key (:func:`~zse.time.core.local_period`), the newest of each kept.
        self.cost: dict[str, dict[int, int]] = {period: {} for period in COST_CONSUMPTION_PERIODS}
        #: The utility's commands waiting for their time, by time then issuer event id.
        self.pending: list[Scheduled] = []
        #: The issues (provider id, issuer event id) of the credit adjustments applied, the
        #: :data:`MAX_ADJUSTED` newest: one of them again is a repeat.
        self.adjusted: list[tuple[int, int]] = []
        #: Provider id -> the highest issuer event id of an applied credit adjustment that
        #: left :attr:`adjusted`: one at or below it cannot be told from a repeat.
        self.adjusted_floor: dict[int, int] = {}
        #: Credit ran out in a friendly credit period: the supply is on until
        #: :attr:`friendly_until`.
        self.friendly_in_use = False
        self.friendly_until: int | None = None
        #: The configuration the account started from; :attr:`config` is it with the
        #: utility's settings (:meth:`change_settings`) over it.
        self.base_config = config
        self._settings: dict[str, int] = {}
        self.registered = RegisteredCodes()
        self.validator: Validator = validator if validator is not None else self.registered
        self.credit = config.initial_credit
        self.emergency_credit_limit = config.emergency_credit_limit
        self.emergency_credit_threshold = config.emergency_credit_threshold
        self.low_credit_warning_level = config.low_credit_warning_level
        self.emergency_remaining = 0
        #: The emergency credit given when it was selected: what a top-up pays back is this
        #: less :attr:`emergency_remaining` (an Emergency Credit Setup meanwhile changes
        #: neither, so it neither takes a top-up nor gives credit).
        self.emergency_granted = 0
        self.selected = False
        self.interrupted = False
        self._low = False
        self._offered = False
        self._carry = Fraction(0)
        self.credit_time = 0
        self.total_added = 0
        self._used: set[str] = set()
        #: Applied top-ups, newest first.
        self.top_ups: list[TopUp] = []
        self.debts: list[Debt] = [Debt(), Debt(), Debt()]
        #: Debt collections, newest first.
        self.debt_log: list[DebtCollected] = []
        #: Snapshots, newest first.
        self.snapshots: list[Snapshot] = []
        self._next_snapshot = 1
        #: The meter's summation last charged (raw), for :meth:`consume_reading`.
        self.summation: int | None = None
        self._update_flags(0, [])  # the state a start begins in, told by nothing

    def __repr__(self) -> str:
        return (
            f"PrepayAccount(credit={self.credit}, emergency={self.emergency_remaining}, "
            f"status={self.credit_status!r})"
        )

    # -- the state ---------------------------------------------------------------------------

    @property
    def accumulated_debt(self) -> int:
        """Accumulated Debt (D.7.2.2.1.6): what is owed on debts 1-3."""
        return sum(debt.amount for debt in self.debts)

    @property
    def exhausted(self) -> bool:
        """Credit and (selected) emergency credit are gone."""
        return self.credit <= 0 and not (self.selected and self.emergency_remaining > 0)

    @property
    def emergency_available(self) -> bool:
        """Emergency credit may be selected now."""
        return (
            self.emergency_credit_limit > 0
            and not self.selected
            and self.credit <= self.emergency_credit_threshold
        )

    @property
    def credit_status(self) -> CreditStatus:
        """The Credit Status attribute (table D-131)."""
        bits = 0
        if self.exhausted:
            bits |= CreditStatus.Credit_Exhausted
        elif self.credit <= self.low_credit_warning_level:
            bits |= CreditStatus.Low_Credit
        else:
            bits |= CreditStatus.Credit_OK
        if self.emergency_credit_limit > 0:
            bits |= CreditStatus.Emergency_Credit_Enabled
        if self.emergency_available:
            bits |= CreditStatus.Emergency_Credit_Available
        if self.selected:
            bits |= CreditStatus.Emergency_Credit_Selected
            if self.credit <= 0 and self.emergency_remaining > 0:
                bits |= CreditStatus.Emergency_Credit_In_Use
        return CreditStatus(bits)  # type: ignore[no-untyped-call]

    def status(self) -> DebtCreditStatus:
        """The Debt/Credit Status a snapshot carries."""
        return DebtCreditStatus(
            accumulated_debt=_clamp(self.accumulated_debt, _INT32),
            type1_debt_remaining=_clamp(self.debts[0].amount, _UINT32),
            type2_debt_remaining=_clamp(self.debts[1].amount, _UINT32),
            type3_debt_remaining=_clamp(self.debts[2].amount, _UINT32),
            emergency_credit_remaining=_clamp(self.emergency_remaining, _INT32),
            credit_remaining=_clamp(self.credit, _INT32),
        )

    def _update_flags(self, now: int, events: list[PrepayEvent]) -> None:
        """Tell the edges of low credit, emergency credit offered, exhaustion and the supply."""
        low = self.credit <= self.low_credit_warning_level
        if low and not self._low:
            events.append(LowCredit(self.credit, self.low_credit_warning_level))
        self._low = low
        offered = self.emergency_available
        if offered and not self._offered:
            events.append(EmergencyCreditAvailable(self.credit))
        self._offered = offered
        if self.exhausted and not self.interrupted:
            friendly = self.friendly_credit(now)
            if friendly is not None:  # a friendly credit period: the supply stays on
                if not self.friendly_in_use:
                    self.friendly_in_use = True
                    events += [
                        CreditExhausted(self.credit),
                        FriendlyCreditStarted(now, friendly.changes_at),
                    ]
                self.friendly_until = friendly.changes_at
                return
            if self.friendly_in_use:  # the period is over, credit is still gone
                events.append(FriendlyCreditEnded(now))
            else:
                events.append(CreditExhausted(self.credit))
            self.friendly_in_use, self.friendly_until = False, None
            self.interrupted = True
            events.append(SupplyInterrupted(now))
        elif not self.exhausted:
            if self.friendly_in_use:
                self.friendly_in_use, self.friendly_until = False, None
                events.append(FriendlyCreditEnded(now))
            if self.interrupted:
                self.interrupted = False
                events.append(SupplyRestored(now))

    def friendly_credit(self, now: int) -> FriendlyCredit | None:
        """The Friendly Credit calendar's reading when friendly credit is on at ``now`` and
        the account takes it (``config.friendly_credit``), else None."""
        if not self.config.friendly_credit or self.friendly_calendar is None:
            return None
        reading = self.friendly_calendar(now)
        return reading if reading is not None and reading.enabled else None

    def next_deadline(self) -> int | None:
        """When the account next has something to do by itself: a pending utility command's
        time, or the end of the friendly credit period in use."""
        times = [change.when for change in self.pending]
        if self.friendly_in_use and self.friendly_until is not None:
            times.append(self.friendly_until)
        return min(times, default=None)

    # -- the Alarms set and the friendly credit attributes (D.7.2.2.5, D.7.2.2.1.13-17) --------

    def friendly_times(self, now: int) -> tuple[int, int]:
        """Remaining Friendly Credit Time (minutes left, rounded up, of the friendly credit
        period the calendar says is on at ``now``; 0 outside one; 0xFFFF: no end known) and
        Next Friendly Credit Period (when the next period after ``now`` starts, UTC;
        0xFFFFFFFF: none known), read from the calendar at ``now``."""
        reading = self.friendly_calendar(now) if self.friendly_calendar is not None else None
        if reading is None:
            return 0, _NO_TIME
        remaining = 0
        if reading.enabled:
            left = None if reading.changes_at is None else reading.changes_at - now
            remaining = _NO_MINUTES if left is None else min(-(-left // 60), _NO_MINUTES - 1)
        at = reading.changes_at
        for _ in range(_FRIENDLY_LOOK):  # the next change to "on" after this period
            if at is None or self.friendly_calendar is None:
                break
            later = self.friendly_calendar(at)
            if later is None:
                break
            if later.enabled:
                return remaining, at
            at = later.changes_at
        return remaining, _NO_TIME

    def alarm_status(self, now: int) -> PrepaymentAlarmStatus:
        """Prepayment Alarm Status (table D-138) at ``now``: Low Credit Warning (credit at or
        under the low credit warning level), the top-up code alarms of the last top-up
        refused, Friendly Credit In Use and its Period End Warning (within
        ``friendly_credit_warning`` minutes of the period's end), Emergency Credit Available
        and Disconnected Supply Due To Credit. The bits zse cannot know (tamper, attacks,
        the HES, a valve or contactor fault) are never set."""
        bits = self.top_up_alarm
        if self.credit <= self.low_credit_warning_level:
            bits |= PrepaymentAlarmStatus.Low_Credit_Warning
        if self.friendly_in_use:
            bits |= PrepaymentAlarmStatus.Friendly_Credit_In_Use
            remaining, _ = self.friendly_times(now)
            if remaining <= self.config.friendly_credit_warning:
                bits |= PrepaymentAlarmStatus.Friendly_Credit_Period_End_Warning
        if self.emergency_available:
            bits |= PrepaymentAlarmStatus.Emergency_Credit_Available
        if self.interrupted:
            bits |= PrepaymentAlarmStatus.Disconnected_Supply_Due_To_Credit
        return PrepaymentAlarmStatus(bits)  # type: ignore[no-untyped-call]

    def set_alarm_mask(self, which: str, value: int) -> None:
        """Keep a written alarm mask (``which``: one of :data:`ALARM_MASKS`)."""
        if which not in self.alarm_masks or not 0 <= value <= _ALL_ALARMS:
            raise PrepayError(f"no {which} alarm mask of {quoted(value)}")
        self.alarm_masks[which] = value

    # -- the Historical Cost Consumption set (D.7.2.2.6) -------------------------------------

    def _count_cost(self, amount: int, now: int) -> None:
        """Count ``amount`` charged at ``now`` in its local day, week and month. Kept: the
        periods within those served of it, either side (a clock set ahead then back leaves
        no future period outranking the real ones; a small step back keeps the one it left)."""
        if amount <= 0:
            return
        local = self.local(now)
        for period, most in COST_CONSUMPTION_PERIODS.items():
            held = self.cost[period]
            key = local_period(period, local)
            if key not in held:  # a new period: the ones out of reach go (once a period)
                keep_near(held, key, period, most)
            held[key] = held.get(key, 0) + amount

    def cost_consumption(self, now: int) -> dict[str, list[int]]:
        """By period ("day", "week", "month"): the cost of consumption charged in the current
        one at ``now`` (local time), then in each previous one (days 1-8, weeks 1-5, months
        1-13), in account units, within what uint48 holds."""
        local = self.local(now)
        out: dict[str, list[int]] = {}
        for period, most in COST_CONSUMPTION_PERIODS.items():
            current = local_period(period, local)
            step = PERIOD_STEP[period]
            held = self.cost[period]
            out[period] = [
                min(held.get(current - step * back, 0), _UINT48_MAX) for back in range(most + 1)
            ]
        return out

    # -- consumption and debt recovery -------------------------------------------------------

    def consume(self, energy: Fraction, price: Fraction, now: int) -> list[PrepayEvent]:
        """Charge ``energy`` (kWh) at ``price`` (account units per kWh), then collect the
        time-based debt recovery due by ``now``. Negative amounts are refused."""
        if energy < 0 or price < 0:
            raise PrepayError(f"consumption {energy} kWh at {price} cannot be negative")
        events = self.apply_due(now)
        self._carry += energy * price
        whole = int(self._carry)  # floor: the carry stays in [0, 1)
        self._carry -= whole
        self._charge(whole)
        self._count_cost(whole, now)
        self.credit_time = max(self.credit_time, now)
        self._recover_by_time(now, events)
        self._update_flags(now, events)
        return events

    def consume_reading(
        self,
        summation: int,
        now: int,
        *,
        price: Fraction | None,
        multiplier: int = 1,
        divisor: int = 1,
        unit_of_measure: int = 0,
    ) -> list[PrepayEvent]:
        """The meter's CurrentSummationDelivered (raw, SE D.3.2.2.1.1) read at ``now``:
        charge what was used since the reading last charged, scaled by the meter's
        Formatting (D.3.2.2.4) to kWh, at ``price`` (account units per kWh). The first
        reading, one that went down (a replaced meter) or one with no price in force only
        sets the point the next charge counts from; time-based debt recovery still runs."""
        if unit_of_measure & UNIT_OF_MEASURE_BCD:  # a BCD register counts in decimal digits
            summation, unit_of_measure = (
                bcd_to_int(summation),
                unit_of_measure & ~UNIT_OF_MEASURE_BCD,
            )
        before, self.summation = self.summation, summation
        if before is None or price is None:
            return self.tick(now)
        used = summation_advance(before, summation)
        if used <= 0:
            return self.tick(now)
        energy = scaled(
            used, unit_of_measure=unit_of_measure, multiplier=multiplier, divisor=divisor
        )
        return self.consume(energy, price, now)

    def tick(self, now: int) -> list[PrepayEvent]:
        """Apply the utility's commands due by ``now``, collect the time-based debt
        recovery due, and end a friendly credit period that is over."""
        events = self.apply_due(now)
        self._recover_by_time(now, events)
        self._update_flags(now, events)
        return events

    def _charge(self, amount: int) -> None:
        """Take ``amount`` from credit, then from selected emergency credit, then credit
        goes below zero."""
        from_credit = min(amount, max(self.credit, 0))
        self.credit -= from_credit
        rest = amount - from_credit
        if self.selected and rest:
            from_emergency = min(rest, max(self.emergency_remaining, 0))
            self.emergency_remaining -= from_emergency
            rest -= from_emergency
        self.credit -= rest

    def _recover_by_time(self, now: int, events: list[PrepayEvent]) -> None:
        for index, debt in enumerate(self.debts):
            if debt.method != DebtRecoveryMethod.Time_Based or debt.amount <= 0:
                continue
            period = RECOVERY_PERIOD.get(debt.frequency)
            if period is None or debt.recovery_amount <= 0:
                continue
            due, owed = debt.next_collection, debt.amount
            while owed > 0 and due <= now:
                taken = min(debt.recovery_amount, owed)
                owed -= taken
                self._charge(taken)
                self._log_debt(DebtCollected(due, taken, index, owed), events)
                due += period
            self.debts[index] = replace(debt, amount=owed, next_collection=due)

    def _log_debt(self, collected: DebtCollected, events: list[PrepayEvent]) -> None:
        """Log a collection, newest first by time (the last logged first among equals)."""
        self.debt_log.insert(0, collected)
        self.debt_log.sort(key=lambda c: c.time, reverse=True)
        del self.debt_log[MAX_DEBT_LOG:]
        events.append(collected)

    # -- emergency credit --------------------------------------------------------------------

    def select_emergency_credit(self, now: int, origin: int) -> tuple[bool, list[PrepayEvent]]:
        """Select Available Emergency Credit (D.7.2.3.1): True and the events when it was
        available; False (nothing changed) when it was not."""
        if not self.emergency_available:
            return False, []
        self.selected = True
        self.emergency_granted = self.emergency_remaining = self.emergency_credit_limit
        events: list[PrepayEvent] = [EmergencyCreditSelected(self.emergency_remaining, origin)]
        self._update_flags(now, events)
        self._snapshot(now, SnapshotCause.Debt_Credit_Addition)
        return True, events

    # -- top-ups -----------------------------------------------------------------------------

    def top_up(self, code: bytes, origin: int, now: int) -> TopUpOutcome:
        """Consumer Top Up (D.7.2.3.4): check ``code`` (at most once), add its amount."""
        code = bytes(code)
        masked = mask_code(code)

        def refuse(result: TopUpResult) -> TopUpOutcome:
            event = TopUpRefused(result, origin, masked)
            return TopUpOutcome(result, 0, origin, self.credit, (event,))

        verdict = self._verdict(code)
        if isinstance(verdict, TopUpResult):
            self.top_up_alarm = _top_up_alarm(code, verdict)
            return refuse(verdict)
        self.top_up_alarm = 0
        amount = verdict
        was_interrupted = self.interrupted
        events: list[PrepayEvent] = []
        self._used.add(code_digest(code))
        if isinstance(self.validator, RegisteredCodes):
            self.validator.used(code)
        self.total_added += amount
        self.top_ups.insert(0, TopUp(now, amount, origin, code))
        del self.top_ups[MAX_TOP_UP_LOG:]
        self._apply_credit(amount, now, events)
        if not was_interrupted:
            result = TopUpResult.Accepted
        elif self.interrupted:
            result = TopUpResult.Accepted_Supply_Disabled
        else:
            result = TopUpResult.Accepted_Supply_Enabled
        events.insert(0, TopUpAccepted(amount, self.credit, origin, masked, result))
        self._snapshot(now, SnapshotCause.Top_Up_Addition)
        return TopUpOutcome(result, amount, origin, self.credit, tuple(events))

    def _verdict(self, code: bytes) -> int | TopUpResult:
        """The amount ``code`` adds, or why it is refused."""
        if not code.translate(None, _SEPARATORS) or len(code) > MAX_CODE_LENGTH:
            return TopUpResult.Rejected_Invalid_Top_Up
        if code_digest(code) in self._used:
            return TopUpResult.Rejected_Duplicate_Top_Up
        try:
            verdict = self.validator(code)
        except Exception:  # the application's validator failed: the top-up is refused
            return TopUpResult.Rejected_Error
        return self._checked(verdict)

    def _checked(self, verdict: object) -> int | TopUpResult:
        """The validator's answer within the account's limits (D.7.2.2.1.11-12) and what
        Credit Remaining (int32, D.7.2.2.1.2) holds."""
        if isinstance(verdict, TopUpResult):
            return TopUpResult.Rejected_Error if verdict in _ACCEPTED else verdict
        if (
            isinstance(verdict, bool)
            or not isinstance(verdict, int)
            or not 0 < verdict <= _INT32[1]
        ):
            return TopUpResult.Rejected_Error
        limit, ceiling = self.config.max_credit_per_top_up, self.config.max_credit_limit
        if limit and verdict > limit:
            return TopUpResult.Rejected_Top_Up_Value_Too_Large
        if ceiling and self.credit + verdict > ceiling:
            return TopUpResult.Rejected_Max_Credit_Reached
        if self.credit + verdict > _INT32[1]:  # past what Credit Remaining (int32) holds
            return TopUpResult.Rejected_Max_Credit_Reached
        return verdict

    def _apply_credit(self, amount: int, now: int, events: list[PrepayEvent]) -> None:
        """Add ``amount``: percentage debt recovery first, then pay back emergency credit
        used, then credit."""
        rest = amount
        for index, debt in enumerate(self.debts):
            if debt.method != DebtRecoveryMethod.Percentage_Based or debt.amount <= 0:
                continue
            taken = min(amount * debt.percentage // 100, debt.amount, rest)
            if taken <= 0:
                continue
            rest -= taken
            self.debts[index] = replace(debt, amount=debt.amount - taken)
            self._log_debt(DebtCollected(now, taken, index, debt.amount - taken), events)
        if self.credit < 0:  # energy taken while exhausted is paid first
            paid = min(rest, -self.credit)
            self.credit += paid
            rest -= paid
        if self.selected:
            owed = max(self.emergency_granted - self.emergency_remaining, 0)
            paid = min(rest, owed)
            rest -= paid
            if paid == owed:  # paid back: emergency credit is off until offered again
                self.selected = False
                self.emergency_remaining = self.emergency_granted = 0
            else:
                self.emergency_remaining += paid
        self.credit += rest
        self.credit_time = max(self.credit_time, now)
        self._update_flags(now, events)

    # -- the operator's commands -------------------------------------------------------------

    def adjust_credit(self, value: int, *, absolute: bool, now: int) -> list[PrepayEvent]:
        """Credit Adjustment (D.7.2.3.5): add ``value`` (or set credit to it)."""
        self.credit = value if absolute else self.credit + value
        self.credit_time = max(self.credit_time, now)
        events: list[PrepayEvent] = []
        self._update_flags(now, events)
        self._snapshot(now, SnapshotCause.Debt_Credit_Addition)
        return events

    def setup_emergency_credit(self, limit: int, threshold: int, now: int) -> list[PrepayEvent]:
        """Emergency Credit Setup (D.7.2.3.3)."""
        if not 0 <= limit <= _INT32[1] or not 0 <= threshold <= _UINT32[1]:
            raise PrepayError(f"emergency credit limit {limit} / threshold {threshold}")
        self.change_settings(emergency_credit_limit=limit, emergency_credit_threshold=threshold)
        events: list[PrepayEvent] = []
        self._update_flags(now, events)
        return events

    def change_settings(self, **values: int) -> None:
        """Take settings a utility command gives (names in :data:`SETTINGS`) over the
        configuration; kept in :meth:`snapshot`. :class:`PrepayError` (nothing changed) for
        a value out of range."""
        unknown = set(values) - SETTINGS
        if unknown:
            raise PrepayError(f"not a prepayment setting: {', '.join(sorted(unknown))}")
        fields: dict[str, Any] = dict(values)  # ints only: the settings are int fields
        self.config = replace(self.config, **fields)
        self._settings.update(values)
        self.emergency_credit_limit = self.config.emergency_credit_limit
        self.emergency_credit_threshold = self.config.emergency_credit_threshold

    def set_low_credit_warning_level(self, level: int, now: int) -> list[PrepayEvent]:
        """Set Low Credit Warning Level (D.7.2.3.9)."""
        if not 0 <= level <= _UINT32[1]:
            raise PrepayError(f"low credit warning level {level} is not a uint32")
        self.low_credit_warning_level = level
        events: list[PrepayEvent] = []
        self._update_flags(now, events)
        return events

    def change_debt(self, index: int, debt: Debt, *, incremental: bool, now: int) -> None:
        """Change Debt (D.7.2.3.2): debt ``index`` (0-2) becomes ``debt`` (its amount added
        to what is owed when ``incremental``). A total over the overall debt cap, a
        percentage over 100, a total past what Accumulated Debt (int32) holds or catch-up
        recovery raise :class:`PrepayError`."""
        if not 0 <= index < len(self.debts):
            raise PrepayError(f"debt {index + 1} does not exist (1-3)")
        if debt.method not in (DebtRecoveryMethod.Time_Based, DebtRecoveryMethod.Percentage_Based):
            raise PrepayError(f"debt recovery method {debt.method} is not supported")
        if debt.method == DebtRecoveryMethod.Time_Based and (debt.frequency not in RECOVERY_PERIOD):
            raise PrepayError(f"debt recovery frequency {debt.frequency} is not known")
        if not 0 <= debt.percentage <= 100:
            raise PrepayError(f"debt recovery percentage {debt.percentage} is over 100")
        amount = debt.amount + (self.debts[index].amount if incremental else 0)
        if amount < 0:
            raise PrepayError(f"debt {index + 1} would be negative ({amount})")
        others = self.accumulated_debt - self.debts[index].amount
        if others + amount > _INT32[1]:  # Accumulated Debt: int32 (D.7.2.2.1.6, the wire)
            raise PrepayError(f"debts of {others + amount} would pass {_INT32[1]}")
        cap = self.config.overall_debt_cap
        if cap and others + amount > cap:
            raise PrepayError(f"debts of {others + amount} would pass the cap of {cap}")
        start = max(debt.start_time, now)
        self.debts[index] = replace(debt, amount=amount, next_collection=start)
        self._snapshot(now, SnapshotCause.Debt_Credit_Addition)

    # -- the utility's commands at their time --------------------------------------------------

    def schedule(self, change: Scheduled, now: int) -> list[PrepayEvent]:
        """A utility command with its Implementation Date/Time or Start Time: applied now
        when that is :data:`NOW` or not after ``now``, else kept until :meth:`apply_due` is
        fed a ``now`` at or after it. :class:`PrepayError` (nothing changed) for values out
        of range, checked when received.

        What is kept is bounded: :data:`CANCEL` drops the pending command of the same kind,
        provider and issuer event id; a command replaces the pending one of the same kind,
        provider and issuer event id (a correction or a repeat); a setting (every kind but a
        credit adjustment, which adds up) drops the pending ones of its kind with a lower
        issuer event id due at or after it, which would undo the newer issue, and is not
        kept itself when a newer issue of its kind waits to apply before it; one that would
        wait past :data:`MAX_PENDING` of its kind is refused (:class:`PendingFull`, nothing
        changed): each one waiting was accepted and is a step of the utility's schedule
        (a credit adjustment adds money), so none is dropped for it. A credit
        adjustment already applied (:attr:`adjusted`: the same provider and issuer event id)
        is a repeat: nothing is done; one whose issuer event id is at or below one applied
        and no longer remembered (:attr:`adjusted_floor`) may be a repeat (a replay of an
        old frame): refused, as it cannot be told from one (issuer event ids grow with each
        issue; zse's choice)."""
        self._check_scheduled(change)
        adjustment = change.kind == "credit_adjustment"
        if adjustment and change.when != CANCEL and _issue(change) in self.adjusted:
            return []
        floor = self.adjusted_floor.get(change.provider_id, -1)
        if adjustment and change.when != CANCEL and change.issuer_event_id <= floor:
            raise PrepayError(
                f"credit adjustment {change.issuer_event_id} of provider "
                f"{change.provider_id} is not above {floor}, applied and forgotten"
            )
        try:
            self.pending, now_applied = _schedule(
                self.pending,
                change,
                now,
                bound=MAX_PENDING,
                kind=_kind,
                setting=not adjustment,
            )
        except ScheduleFull:
            raise PendingFull(
                f"{MAX_PENDING} commands of kind {change.kind} wait already"
            ) from None
        events: list[PrepayEvent] = []
        if now_applied:
            self._apply_scheduled(change, now, events)
        return events

    def apply_due(self, now: int) -> list[PrepayEvent]:
        """Apply the pending commands due by ``now`` (each once: it leaves :attr:`pending`),
        by time then issuer event id."""
        due, self.pending = take_due(self.pending, now)
        events: list[PrepayEvent] = []
        for change in due:
            self._apply_scheduled(change, now, events)
        return events

    def _check_scheduled(self, change: Scheduled) -> None:
        names = SCHEDULED_KINDS.get(change.kind)
        if names is None or len(change.values) != len(names):
            raise PrepayError(f"not a scheduled prepayment command: {change.kind}")
        if not (0 <= change.when <= _UINT32[1] and 0 <= change.issuer_event_id <= _UINT32[1]):
            raise PrepayError("a time or issuer event id is not a uint32")
        if not 0 <= change.provider_id <= _UINT32[1]:
            raise PrepayError("a provider id is not a uint32")
        if change.kind == "credit_adjustment":
            absolute, value = change.values
            if absolute not in (0, 1) or not _INT32[0] <= value <= _INT32[1]:
                raise PrepayError(f"credit adjustment {value} (type {absolute})")
        else:
            fields: dict[str, Any] = dict(zip(names, change.values, strict=True))
            replace(self.config, **fields)  # PrepayError when out of range

    def _apply_scheduled(self, change: Scheduled, now: int, events: list[PrepayEvent]) -> None:
        values = dict(zip(SCHEDULED_KINDS[change.kind], change.values, strict=True))
        if change.kind == "credit_adjustment":
            events += self.adjust_credit(
                values["value"], absolute=bool(values["absolute"]), now=now
            )
            self._remember_adjusted([*self.adjusted, _issue(change)])
        else:
            self.change_settings(**values)
            self._update_flags(now, events)

    def _remember_adjusted(self, adjusted: list[tuple[int, int]]) -> None:
        """Keep the :data:`MAX_ADJUSTED` newest issues; those dropped raise the floor."""
        for provider, issuer in adjusted[:-MAX_ADJUSTED]:
            self.adjusted_floor[provider] = max(issuer, self.adjusted_floor.get(provider, 0))
        self.adjusted = adjusted[-MAX_ADJUSTED:]

    # -- logs and snapshots ------------------------------------------------------------------

    def _snapshot(self, now: int, cause: int) -> None:
        self.snapshots.insert(0, Snapshot(self._next_snapshot, now, cause, self.status()))
        del self.snapshots[MAX_SNAPSHOTS:]
        self._next_snapshot = self._next_snapshot % 0xFFFFFFFF + 1

    def find_snapshots(self, earliest: int, latest: int, cause: int) -> list[Snapshot]:
        """Snapshots taken in [earliest, latest] with a cause in ``cause`` (0xFFFFFFFF: any),
        newest first (Get Prepay Snapshot, D.7.2.3.7)."""
        return [
            s
            for s in self.snapshots
            if earliest <= s.time <= latest and (cause == 0xFFFFFFFF or s.cause & cause)
        ]

    def top_up_log(self, latest: int, count: int) -> list[TopUp]:
        """Top-ups at or before ``latest``, newest first, at most ``count`` (0: all)."""
        found = [top_up for top_up in self.top_ups if top_up.time <= latest]
        return found[:count] if count else found

    def debt_repayments(self, latest: int, count: int, debt_type: int) -> list[DebtCollected]:
        """Collections at or before ``latest`` of debt ``debt_type`` (0-2, 0xFF: all), newest
        first, at most ``count`` (0: all) (Get Debt Repayment Log, D.7.2.3.10)."""
        found = [c for c in self.debt_log if c.time <= latest and debt_type in (0xFF, c.debt_type)]
        return found[:count] if count else found

    # -- persistence -------------------------------------------------------------------------

    def used_digests(self) -> frozenset[str]:
        """The digests of every code applied (:func:`code_digest`)."""
        return frozenset(self._used)

    def mark_used(self, digest: str) -> None:
        """A code applied before (its digest, from a store): refused as a duplicate."""
        if not _is_digest(digest):
            raise Mismatch("not a code digest")
        self._used.add(digest)

    def forget_used(self, digests: Iterable[str]) -> None:
        """Undo :meth:`mark_used` (a change that could not be stored)."""
        self._used.difference_update(digests)

    def snapshot(self) -> dict[str, Any]:
        """The account as JSON-able data (:meth:`restore` reads it back), without the codes
        applied and registered (:meth:`used_digests`, :attr:`registered`: a store keeps
        each as a record of its own, so that one damaged record loses no other). Codes appear
        only in the top-up log (spent codes, as received)."""
        return {
            "credit": self.credit,
            "emergency_remaining": self.emergency_remaining,
            "emergency_granted": self.emergency_granted,
            "selected": self.selected,
            "interrupted": self.interrupted,
            "low": self._low,
            "offered": self._offered,
            "carry": [self._carry.numerator, self._carry.denominator],
            "credit_time": self.credit_time,
            "total_added": self.total_added,
            "top_ups": [[u.time, u.amount, u.origin, u.code.hex()] for u in self.top_ups],
            "debts": [
                [
                    d.label.hex(),
                    d.amount,
                    d.method,
                    d.start_time,
                    d.collection_time,
                    d.frequency,
                    d.recovery_amount,
                    d.percentage,
                    d.next_collection,
                ]
                for d in self.debts
            ],
            "debt_log": [[c.time, c.amount, c.debt_type, c.outstanding] for c in self.debt_log],
            "snapshots": [
                [
                    s.snapshot_id,
                    s.time,
                    s.cause,
                    [
                        s.status.accumulated_debt,
                        s.status.type1_debt_remaining,
                        s.status.type2_debt_remaining,
                        s.status.type3_debt_remaining,
                        s.status.emergency_credit_remaining,
                        s.status.credit_remaining,
                    ],
                ]
                for s in self.snapshots
            ],
            "next_snapshot": self._next_snapshot,
            "low_level": self.low_credit_warning_level,
            "summation": self.summation,
            "settings": dict(self._settings),
            "pending": [
                [p.kind, p.provider_id, p.issuer_event_id, p.when, list(p.values)]
                for p in self.pending
            ],
            "friendly": [self.friendly_in_use, self.friendly_until],
            "adjusted": [list(issue) for issue in self.adjusted],
            "adjusted_floor": [list(item) for item in sorted(self.adjusted_floor.items())],
            "alarm_masks": [self.alarm_masks[name] for name in ALARM_MASKS],
            "top_up_alarm": self.top_up_alarm,
            "cost": {
                period: [list(item) for item in sorted(held.items())]
                for period, held in self.cost.items()
            },
        }

    def restore(self, record: Any) -> None:  # noqa: PLR0915 - a statement per field read
        """Take a stored :meth:`snapshot` back; :class:`~zse.records.Mismatch` (nothing
        changed) for one of the wrong shape."""
        check(record, _SHAPE)
        numerator, denominator = record["carry"]
        if denominator <= 0 or not 0 <= numerator < denominator:
            raise Mismatch("carry is not a fraction in [0, 1)")
        if len(record["debts"]) != len(self.debts):
            raise Mismatch("debts is not three debts")
        settings = dict(record.get("settings", {}))
        if not set(settings) <= SETTINGS:
            raise Mismatch("settings holds a name that is not a prepayment setting")
        try:
            config = replace(self.base_config, **settings)
        except PrepayError:
            raise Mismatch("a setting is out of range") from None
        pending = [
            Scheduled(kind, tuple(values), when, issuer, provider)
            for kind, provider, issuer, when, values in record.get("pending", [])
        ]
        for change in pending:
            try:
                self._check_scheduled(change)
            except PrepayError:
                raise Mismatch("a pending command does not read") from None
            if change.when in (NOW, CANCEL):
                raise Mismatch("a pending command has no time")
        # a record from before emergency_granted was kept: what was selected was the limit
        granted = record.get(
            "emergency_granted",
            max(config.emergency_credit_limit, record["emergency_remaining"])
            if record["selected"]
            else 0,
        )
        if record["selected"] and not 0 <= record["emergency_remaining"] <= granted:
            raise Mismatch("emergency credit remaining is not within what was granted")
        friendly_in_use, friendly_until = record.get("friendly", (False, None))
        adjusted = [(provider, issuer) for provider, issuer in record.get("adjusted", [])]
        floors = [(provider, issuer) for provider, issuer in record.get("adjusted_floor", [])]
        if not all(0 <= n <= _UINT32[1] for issue in adjusted + floors for n in issue):
            raise Mismatch("an adjustment applied is not a provider and issuer event id")
        masks, top_up_alarm, cost = _alarms_and_cost(record)
        try:
            top_ups = [TopUp(a, b, c, bytes.fromhex(d)) for a, b, c, d in record["top_ups"]]
            debts = [Debt(bytes.fromhex(label), *rest) for label, *rest in record["debts"]]
            snapshots = [
                Snapshot(i, w, c, DebtCreditStatus(*values))
                for i, w, c, values in record["snapshots"]
            ]
        except (ValueError, TypeError) as exc:
            raise Mismatch(
                f"a top-up, debt or snapshot does not read: {type(exc).__name__}"
            ) from None
        self.credit = record["credit"]
        self.emergency_remaining = record["emergency_remaining"]
        self.emergency_granted = granted
        self.selected = record["selected"]
        self.interrupted = record["interrupted"]
        self._low = record["low"]
        self._offered = record["offered"]
        self._carry = Fraction(numerator, denominator)
        self.credit_time = record["credit_time"]
        self.total_added = record["total_added"]
        self.top_ups = top_ups[:MAX_TOP_UP_LOG]
        self.debts = debts
        self.debt_log = [DebtCollected(*entry) for entry in record["debt_log"]][:MAX_DEBT_LOG]
        self.snapshots = snapshots[:MAX_SNAPSHOTS]
        self._next_snapshot = record["next_snapshot"]
        self.low_credit_warning_level = record["low_level"]
        self.summation = record["summation"]
        self.config, self._settings = config, settings
        self.emergency_credit_limit = config.emergency_credit_limit
        self.emergency_credit_threshold = config.emergency_credit_threshold
        self.pending = sorted(pending, key=lambda p: (p.when, p.issuer_event_id))
        self.friendly_in_use, self.friendly_until = friendly_in_use, friendly_until
        self.adjusted_floor = dict(floors)
        self._remember_adjusted(adjusted)
        self.alarm_masks = dict(zip(ALARM_MASKS, masks, strict=True))
        self.top_up_alarm = top_up_alarm
        self.cost = cost

    @staticmethod
    def registered_codes(codes: Iterable[tuple[bytes | str, int]]) -> RegisteredCodes:
        """A :class:`RegisteredCodes` of (code, amount) pairs."""
        return RegisteredCodes(dict(codes))


#: Table D-138's top-up code alarms (bits 1-3).
_TOP_UP_ALARMS: Final = (
    PrepaymentAlarmStatus.Top_Up_Code_Error
    | PrepaymentAlarmStatus.Top_Up_Code_Already_Used
    | PrepaymentAlarmStatus.Top_Up_Code_Invalid
)


def _alarms_and_cost(record: Any) -> tuple[list[int], int, dict[str, dict[int, int]]]:
    """A stored account's alarm masks, top-up code alarms and cost consumption, checked
    (:class:`Mismatch`); a record from before they were kept has the defaults."""
    masks = record.get("alarm_masks", [_ALL_ALARMS] * len(ALARM_MASKS))
    if len(masks) != len(ALARM_MASKS) or not all(0 <= m <= _ALL_ALARMS for m in masks):
        raise Mismatch("alarm_masks is not three 16-bit masks")
    top_up_alarm = record.get("top_up_alarm", 0)
    if top_up_alarm & ~_TOP_UP_ALARMS:
        raise Mismatch("top_up_alarm is not top-up code alarm bits")
    stored = record.get("cost", {})
    cost = {period: dict(stored.get(period, [])) for period in COST_CONSUMPTION_PERIODS}
    if not set(stored) <= set(COST_CONSUMPTION_PERIODS) or any(
        amount < 0 for held in cost.values() for amount in held.values()
    ):
        raise Mismatch("cost is not the cost consumption of days, weeks and months")
    return masks, top_up_alarm, cost


def _top_up_alarm(code: bytes, refused: TopUpResult) -> int:
    """Table D-138's alarm for a top-up refused: a code of the wrong length is a Top Up
    Code Error, a duplicate Already Used, any other invalid code Invalid; a refusal for
    another reason (a limit, the validator failing) sets none."""
    if refused == TopUpResult.Rejected_Duplicate_Top_Up:
        return int(PrepaymentAlarmStatus.Top_Up_Code_Already_Used)
    if refused != TopUpResult.Rejected_Invalid_Top_Up:
        return 0
    if not code.translate(None, _SEPARATORS) or len(code) > MAX_CODE_LENGTH:
        return int(PrepaymentAlarmStatus.Top_Up_Code_Error)
    return int(PrepaymentAlarmStatus.Top_Up_Code_Invalid)


def _issue(change: Scheduled) -> tuple[int, int]:
    return change.provider_id, change.issuer_event_id


def _kind(change: Scheduled) -> str:
    return change.kind


def _is_digest(text: object) -> bool:
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _clamp(value: int, bounds: tuple[int, int]) -> int:
    return min(max(value, bounds[0]), bounds[1])
