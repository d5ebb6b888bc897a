"""Supply control on the meter (SE 1.2 D.3, Metering): the sans-IO core and its frames.

:class:`SupplyControl` holds the meter's ONE supply state, the Supply Status attribute
(0x0014: Off 0, Off/Armed 1, On 2). Two owners feed it:

- the utility's state: what Change Supply (from the ESI's API or an authorised client) and
  Local Change Supply (a HAN device restoring an armed supply, Armed -> On) last set;
- the prepay account's credit (SE 1.2 D.7, :mod:`zse.prepayment`): the ESI tells
  :meth:`SupplyControl.set_credit_interrupted` at each ``SupplyInterrupted`` /
  ``SupplyRestored`` of its account, and once at start.

What wins: Off. While credit interrupts the supply, Supply Status is Off whatever the utility's
state; Local Change Supply cannot restore it (NOT_AUTHORIZED), and a Change Supply to On is
kept as the utility's state but takes effect only when credit comes back (a top-up, emergency
credit). When credit comes back the supply returns to the utility's state (On unless the
utility turned it off or armed it meanwhile). The credit's interruption is stored with the
supply (:meth:`SupplyControl.snapshot`), so the account's state told again at start (the ESI
does, the account being the owner) changes nothing and tells nothing when it is the same: a
cut-off is told once, not once more at each restart. A record from before it was stored (no
``credit_interrupted``) reads as not interrupted.

Change Supply (D.3.3.3.1.12 in SE 1.4's numbering, as other sources cite it) applies at its
Implementation Date/Time: 0 is now, 0xFFFFFFFF cancels the waiting one of the same provider and
issuer event id (Silicon Labs' metering server reads both so), a time not after ``now`` is
now. A change that waits is kept (bounded, :data:`MAX_PENDING`; a ninth is refused
INSUFFICIENT_SPACE, none dropped), in :meth:`SupplyControl.snapshot`, and applied once at its
time, by the rule of the utility's scheduled commands (:mod:`zse.schedule`, that of
:meth:`zse.prepayment.core.PrepayAccount.schedule`): the same issue again replaces the one
waiting; a newer issue drops older ones due at or after it; an older issue arriving while a
newer one waits to apply before it is not kept. Supply Control Bits bit 0 (Acknowledge
Required) asks for a Supply Status Response when the change is implemented (Silicon Labs;
Table D-66 as other sources cite it); ProposedChangeSupplyImplementationTime (0x0B00) and
ProposedChangeSupplyStatus (0x0B01) show the next change waiting, 0xFFFFFFFF when none
(Silicon Labs, quoting the SE text). A Change Supply that will never be implemented gets a
Default Response (SUCCESS) and no Supply Status Response, acknowledge bit or not: a cancel, as
Silicon Labs' metering server answers one (the acknowledgement it armed for the cancelled
change finds none waiting and sends nothing); an older issue not kept, zse's own choice, as
no source in reach says (Silicon Labs checks no issuer event id on Change Supply):
docs/metering.md gives the reasons.

Supply Status is reportable (ZCL 2.5.7-2.5.11) through the meter's reporting:
:meth:`SupplyControl.watch` tells the meter's core each value it may take, whatever changed
it (:meth:`zse.metering.core.MeterCore.set_supply_status`).

Set Supply Status sets the supply states the meter is to take after a tamper, a depletion,
an uncontrolled flow and in load limiting (0x0607, 0x0608, 0x0609, 0x0605; 3 leaves one
unchanged); zse detects none of these events: it stores and serves the states. Set
Uncontrolled Flow Threshold is stored and served (0x0B10-0x0B15). Reset Load Limit Counter sets
LoadLimitCounter (0x0606) to 0; the application counts with
:meth:`SupplyControl.count_load_limit` (zse does no load limiting of its own).

The SE 1.2 text (07-5356-19) was out of reach: the fields follow Wireshark master's
``packet-zbee-zcl-se.c`` (4.0 dissects all six commands), zigpy's and
zsmartsystems' definitions and Silicon Labs' metering server (the 0 / 0xFFFFFFFF times, the
acknowledge bit, Local Change Supply taking Off/Armed and On only); the attribute ids are
Wireshark's and Exegin's. Facts only, nothing copied.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from zigpy.zcl import foundation

from zse.errors import ZseError
from zse.metering.wire import Metering
from zse.records import (
    BOOL,
    STR,
    Fields,
    Int,
    ListOf,
    MapOf,
    Mismatch,
    Opt,
    TupleOf,
    Type,
    check,
)
from zse.schedule import CANCEL, NOW, ScheduleFull, schedule, take_due
from zse.se.ids import METERING, MeteringClientCommand, MeteringServerCommand
from zse.se.ids import MeteringAttribute as A
from zse.se.types import SUPPLY_STATUS_NAMES, SupplyStatus
from zse.zcl.codec import encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage

__all__ = [
    "ACKNOWLEDGE_REQUIRED",
    "ARMED",
    "CANCEL",
    "MAX_PENDING",
    "NOW",
    "NO_CHANGE",
    "OFF",
    "ON",
    "SUPPLY_EVENTS",
    "SUPPLY_STATUS_NAMES",
    "UNCHANGED",
    "UTILITY_COMMANDS",
    "ChangeOutcome",
    "FlowThreshold",
    "LoadLimitCounterReset",
    "SupplyChange",
    "SupplyChanged",
    "SupplyControl",
    "SupplyEvent",
    "SupplyRefused",
    "SupplyServerProtocol",
    "SupplyStatesSet",
    "UncontrolledFlowThresholdSet",
    "event_from_record",
    "event_record",
    "local_change_supply_request",
    "supply_status_name",
    "supply_status_read",
    "supply_status_read_request",
    "supply_status_response",
]

LOGGER = logging.getLogger(__name__)
_Status = foundation.Status
S = MeteringServerCommand

#: Supply Status values (Supply Status attribute 0x0014, Change Supply's Proposed Supply
#: Status; :class:`zse.se.types.SupplyStatus`): Off, Off/Armed, On.
OFF: Final = int(SupplyStatus.OFF)
ARMED: Final = int(SupplyStatus.ARMED)
ON: Final = int(SupplyStatus.ON)
#: Set Supply Status: leave this state as it is.
UNCHANGED: Final = 3
#: ProposedChangeSupplyImplementationTime when no change waits.
NO_CHANGE: Final = 0xFFFFFFFF
#: Supply Control Bits, bit 0: a Supply Status Response is wanted when the change is made.
ACKNOWLEDGE_REQUIRED: Final = 0x01
#: Change Supply commands kept waiting for their time; past it, one that would wait is refused.
MAX_PENDING: Final = 8
#: Set Supply Status fields -> the attribute each sets.
_STATE_ATTRIBUTES: Final = {
    "supply_tamper_state": A.SUPPLY_TAMPER_STATE,
    "supply_depletion_state": A.SUPPLY_DEPLETION_STATE,
    "supply_uncontrolled_flow_state": A.SUPPLY_UNCONTROLLED_FLOW_STATE,
    "load_limit_supply_state": A.LOAD_LIMIT_SUPPLY_STATE,
}
_UINT32 = 0xFFFFFFFF
_NAMES = SUPPLY_STATUS_NAMES  # Off, Off/Armed, On (zse.se.types)


def supply_status_name(status: int) -> str:
    """A Supply Status by name (:data:`SUPPLY_STATUS_NAMES`), ``status N`` for a reserved
    value."""
    return SUPPLY_STATUS_NAMES.get(status, f"status {status}")


class ChangeOutcome(enum.Enum):
    """What became of the application's Change Supply (:meth:`SupplyControl.take_change`):
    applied now, kept waiting for its time, not kept (an older issue arriving while a newer
    one waits to apply before it, :mod:`zse.schedule`), a waiting change cancelled, or a
    cancel that found none of its provider and issuer event id waiting."""

    APPLIED = "applied"
    WAITING = "waiting"
    NOT_KEPT = "not kept"
    CANCELLED = "cancelled"
    NOTHING_TO_CANCEL = "nothing to cancel"


class SupplyRefused(ZseError, ValueError):
    """A supply command not taken, with the ZCL status that answers it; nothing changed."""

    def __init__(self, status: _Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status


# -- what is kept -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SupplyChange:
    """A Change Supply: ``status`` at ``when`` (UTC; :data:`NOW`; :data:`CANCEL`).
    ``reply_to``: the (NWK address, endpoint) a Supply Status Response goes to when
    ``acknowledge``; None for a change the application made."""

    status: int
    when: int = NOW
    provider_id: int = 0
    issuer_event_id: int = 0
    request_time: int = 0
    acknowledge: bool = False
    reply_to: tuple[int, int] | None = None


@dataclass(frozen=True, kw_only=True)
class FlowThreshold:
    """Set Uncontrolled Flow Threshold's values (attributes 0x0B10-0x0B15)."""

    threshold: int
    unit_of_measure: int
    multiplier: int
    divisor: int
    stabilisation_period: int
    measurement_period: int
    provider_id: int = 0
    issuer_event_id: int = 0


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SupplyChanged:
    """The meter's Supply Status changed from ``before`` to ``status`` at ``time``;
    ``cause``: ``"change supply"``, ``"local change supply"`` or ``"credit"`` (the prepay
    account interrupted or gave back the supply)."""

    status: int
    before: int
    cause: str
    time: int


@dataclass(frozen=True, kw_only=True)
class SupplyStatesSet:
    """Set Supply Status took the states it did not leave unchanged: field name
    (``supply_tamper_state``...) -> Supply Status."""

    states: dict[str, int]
    issuer_event_id: int


@dataclass(frozen=True, kw_only=True)
class UncontrolledFlowThresholdSet:
    """Set Uncontrolled Flow Threshold was stored."""

    threshold: FlowThreshold


@dataclass(frozen=True, kw_only=True)
class LoadLimitCounterReset:
    """Reset Load Limit Counter set LoadLimitCounter to 0 (it was ``before``)."""

    before: int
    provider_id: int
    issuer_event_id: int


SupplyEvent = SupplyChanged | SupplyStatesSet | UncontrolledFlowThresholdSet | LoadLimitCounterReset
#: The supply control's event classes (an ``isinstance`` check).
SUPPLY_EVENTS: Final = (
    SupplyChanged,
    SupplyStatesSet,
    UncontrolledFlowThresholdSet,
    LoadLimitCounterReset,
)

_U32 = Int(0, _UINT32)
_STATE = Int(OFF, ON)
_THRESHOLD = TupleOf(
    Int(0, 0xFFFF),
    Int(0, 0xFF),
    Int(0, 0xFFFF),
    Int(0, 0xFFFF),
    Int(0, 0xFF),
    Int(0, 0xFFFF),
    _U32,
    _U32,
)
_SHAPE = Fields(
    {
        "utility": _STATE,
        "pending": ListOf(
            TupleOf(
                _U32, _U32, _U32, _U32, _STATE, Int(0, 1), Opt(Int(0, 0xFFF7)), Opt(Int(0, 0xFF))
            )
        ),
        "states": MapOf(_STATE, key=int),
        "load_limit_counter": Int(0, 0xFF),
        "threshold": Opt(_THRESHOLD),
    },
    {"credit_interrupted": BOOL},  # stored since 2026-12-07: older records have none
)


def _state_name(name: str) -> str:
    if name not in _STATE_ATTRIBUTES:
        raise ValueError(name)
    return name


_CAUSES: Final = frozenset({"change supply", "local change supply", "credit"})
_EVENT_RECORD = Fields({"event": STR, "fields": Type(dict)})
#: Each event's fields as its journal record holds them (:func:`event_record`).
_EVENT_SHAPES: Final = {
    "SupplyChanged": Fields({"status": _STATE, "before": _STATE, "cause": STR, "time": _U32}),
    "SupplyStatesSet": Fields({"states": MapOf(_STATE, key=_state_name), "issuer_event_id": _U32}),
    "UncontrolledFlowThresholdSet": Fields({"threshold": _THRESHOLD}),
    "LoadLimitCounterReset": Fields(
        {"before": Int(0, 0xFF), "provider_id": _U32, "issuer_event_id": _U32}
    ),
}


def event_record(event: SupplyEvent) -> dict[str, Any]:
    """``event`` as a JSON record, ``{"event": its class name, "fields": {...}}``: the
    meter journals it with the supply's store write and tells it from the journal after a
    restart."""
    fields: dict[str, Any]
    if isinstance(event, UncontrolledFlowThresholdSet):
        fields = {"threshold": _threshold_values(event.threshold)}
    elif isinstance(event, SupplyStatesSet):
        fields = {"states": dict(event.states), "issuer_event_id": event.issuer_event_id}
    else:
        fields = dict(vars(event))
    return {"event": type(event).__name__, "fields": fields}


def event_from_record(value: Any) -> SupplyEvent:
    """The event of a record :func:`event_record` made, checked (:class:`Mismatch`)."""
    check(value, _EVENT_RECORD)
    shape = _EVENT_SHAPES.get(value["event"])
    if shape is None:
        raise Mismatch("not a supply control event")
    fields = value["fields"]
    check(fields, shape)
    match value["event"]:
        case "SupplyChanged":
            if fields["cause"] not in _CAUSES:
                raise Mismatch("a supply change of an unknown cause")
            return SupplyChanged(**fields)
        case "SupplyStatesSet":
            return SupplyStatesSet(**fields)
        case "UncontrolledFlowThresholdSet":
            return UncontrolledFlowThresholdSet(threshold=_threshold(fields["threshold"]))
    return LoadLimitCounterReset(**fields)


def _check_status(status: int) -> None:
    if status not in _NAMES:
        raise SupplyRefused(_Status.INVALID_VALUE, f"supply status {status} is not 0-2")


class SupplyControl:
    """The meter's supply state (see the module): the utility's state, the credit's
    interruption, the Change Supply commands waiting, the Set Supply Status states, the
    uncontrolled flow threshold and the load limit counter. :attr:`changed` says the state
    changed since the shell last stored :meth:`snapshot`."""

    def __init__(self, status: int = ON) -> None:
        _check_status(status)
        #: The utility's state: what Change Supply / Local Change Supply last set.
        self.utility = status
        #: The prepay account has interrupted the supply for want of credit.
        self.credit_interrupted = False
        #: Change Supply commands waiting for their time, by time then issuer event id.
        self.pending: list[SupplyChange] = []
        #: Set Supply Status states held: attribute id -> Supply Status.
        self.states: dict[int, int] = {}
        self.load_limit_counter = 0
        self.threshold: FlowThreshold | None = None
        self.changed = False
        self._watcher: Callable[[int], None] | None = None

    def __repr__(self) -> str:
        return f"SupplyControl(status={_NAMES[self.status]}, pending={len(self.pending)})"

    @property
    def status(self) -> int:
        """Supply Status (0x0014): Off while credit interrupts the supply, else the
        utility's state."""
        return OFF if self.credit_interrupted else self.utility

    def watch(self, listener: Callable[[int], None]) -> None:
        """Have ``listener(status)`` called with Supply Status now and whenever it may have
        changed, from any cause (a Change Supply now or at its time, Local Change Supply, the
        credit, :meth:`restore`): the meter's reporting holds the value it reports
        (:meth:`zse.metering.core.MeterCore.set_supply_status`). One listener; a new one
        replaces it."""
        self._watcher = listener
        listener(self.status)

    def _tell(self) -> None:
        if self._watcher is not None:
            self._watcher(self.status)

    def _set(self, utility: int, cause: str, now: int, events: list[SupplyEvent]) -> None:
        before = self.status
        self.utility = utility
        self.changed = True
        self._tell()
        if self.status != before:
            events.append(SupplyChanged(status=self.status, before=before, cause=cause, time=now))

    # -- the credit (the prepay account) --------------------------------------------------------

    def set_credit_interrupted(self, interrupted: bool, now: int) -> list[SupplyEvent]:
        """The prepay account interrupted (True) or gave back (False) the supply; the same
        state again changes nothing."""
        before = self.status
        if interrupted == self.credit_interrupted:
            return []
        self.credit_interrupted = interrupted
        self.changed = True
        self._tell()
        if self.status == before:
            return []
        return [SupplyChanged(status=self.status, before=before, cause="credit", time=now)]

    # -- Change Supply ---------------------------------------------------------------------------

    def change_supply(self, change: SupplyChange, now: int) -> tuple[list[SupplyEvent], bool]:
        """A Change Supply: applied now when its time is :data:`NOW` or not after ``now``,
        else kept until :meth:`apply_due`. Returns the events and whether it was applied
        now. :class:`SupplyRefused` (nothing changed) for a status not 0-2 (INVALID_VALUE) or
        one more waiting past :data:`MAX_PENDING` (INSUFFICIENT_SPACE)."""
        if change.when != CANCEL:
            _check_status(change.status)
        try:
            pending, now_applied = schedule(self.pending, change, now, bound=MAX_PENDING)
        except ScheduleFull:
            raise SupplyRefused(
                _Status.INSUFFICIENT_SPACE, f"{MAX_PENDING} supply changes wait already"
            ) from None
        self.changed |= pending != self.pending
        self.pending = pending
        events: list[SupplyEvent] = []
        if now_applied:
            self._set(change.status, "change supply", now, events)
        return events, now_applied

    def take_change(
        self, change: SupplyChange, now: int
    ) -> tuple[list[SupplyEvent], ChangeOutcome]:
        """:meth:`change_supply` for the application, which is told what became of it (a
        HAN device's Change Supply is answered by the rule alone): the events and the
        :class:`ChangeOutcome`."""
        had = self.waiting(change.provider_id, change.issuer_event_id) is not None
        events, applied = self.change_supply(change, now)
        if change.when == CANCEL:
            return events, ChangeOutcome.CANCELLED if had else ChangeOutcome.NOTHING_TO_CANCEL
        if applied:
            return events, ChangeOutcome.APPLIED
        if change in self.pending:
            return events, ChangeOutcome.WAITING
        return events, ChangeOutcome.NOT_KEPT

    def waiting(self, provider_id: int, issuer_event_id: int) -> SupplyChange | None:
        """The Change Supply of that provider and issuer event id waiting, if any."""
        issue = (provider_id, issuer_event_id)
        return next((p for p in self.pending if (p.provider_id, p.issuer_event_id) == issue), None)

    def next_deadline(self) -> int | None:
        """When the next waiting Change Supply is due."""
        return self.pending[0].when if self.pending else None

    def apply_due(self, now: int) -> tuple[list[SupplyEvent], list[SupplyChange]]:
        """Apply the Change Supply commands due by ``now``, each once, by time then issuer
        event id: the events, and the changes applied (those to acknowledge among them)."""
        due, self.pending = take_due(self.pending, now)
        if not due:
            return [], []
        self.changed = True
        events: list[SupplyEvent] = []
        for change in due:
            self._set(change.status, "change supply", now, events)
        return events, due

    # -- Local Change Supply ----------------------------------------------------------------------

    def local_change_supply(self, status: int, now: int) -> list[SupplyEvent]:
        """A HAN device's Local Change Supply: it may only restore an armed supply (Off/Armed
        -> On); On while On changes nothing. Refused NOT_AUTHORIZED otherwise (the supply Off,
        interrupted for credit, or Off/Armed asked), INVALID_VALUE for a status not 1-2
        (Silicon Labs takes 1 and 2 only)."""
        if status not in (ARMED, ON):
            raise SupplyRefused(_Status.INVALID_VALUE, f"Local Change Supply to {status}")
        if status == ARMED:
            raise SupplyRefused(_Status.NOT_AUTHORIZED, "a HAN device may not arm the supply")
        if self.credit_interrupted:
            raise SupplyRefused(_Status.NOT_AUTHORIZED, "the supply is interrupted for credit")
        if self.utility == ON:
            return []
        if self.utility != ARMED:
            raise SupplyRefused(_Status.NOT_AUTHORIZED, "the supply is off, not armed")
        events: list[SupplyEvent] = []
        self._set(ON, "local change supply", now, events)
        return events

    # -- Set Supply Status, the threshold, the load limit counter --------------------------------

    def set_supply_states(self, states: dict[str, int], issuer_event_id: int) -> list[SupplyEvent]:
        """Set Supply Status: each state 0-2 is kept, 3 leaves it; INVALID_VALUE (nothing
        changed) for another value."""
        taken: dict[str, int] = {}
        for name, value in states.items():
            if value == UNCHANGED:
                continue
            if value not in _NAMES:
                raise SupplyRefused(_Status.INVALID_VALUE, f"{name} {value} is not 0-3")
            taken[name] = value
        self.states.update({_STATE_ATTRIBUTES[name]: value for name, value in taken.items()})
        self.changed = True
        return [SupplyStatesSet(states=taken, issuer_event_id=issuer_event_id)]

    def set_threshold(self, threshold: FlowThreshold) -> list[SupplyEvent]:
        """Set Uncontrolled Flow Threshold: stored as it came."""
        self.threshold = threshold
        self.changed = True
        return [UncontrolledFlowThresholdSet(threshold=threshold)]

    def reset_load_limit_counter(self, provider_id: int, issuer_event_id: int) -> list[SupplyEvent]:
        """Reset Load Limit Counter: LoadLimitCounter back to 0."""
        before, self.load_limit_counter = self.load_limit_counter, 0
        self.changed = True
        return [
            LoadLimitCounterReset(
                before=before, provider_id=provider_id, issuer_event_id=issuer_event_id
            )
        ]

    def count_load_limit(self) -> int:
        """The application's load limiting acted once more: LoadLimitCounter + 1 (at most
        0xFF)."""
        self.load_limit_counter = min(self.load_limit_counter + 1, 0xFF)
        self.changed = True
        return self.load_limit_counter

    # -- attributes -------------------------------------------------------------------------------

    def attributes(self) -> dict[int, int]:
        """The supply attributes the meter holds a value for, by id."""
        values = {
            A.SUPPLY_STATUS: self.status,
            A.LOAD_LIMIT_COUNTER: self.load_limit_counter,
            A.PROPOSED_CHANGE_SUPPLY_IMPLEMENTATION_TIME: (
                self.pending[0].when if self.pending else NO_CHANGE
            ),
            **self.states,
        }
        if self.pending:
            values[A.PROPOSED_CHANGE_SUPPLY_STATUS] = self.pending[0].status
        if self.threshold is not None:
            th = self.threshold
            values |= {
                A.UNCONTROLLED_FLOW_THRESHOLD: th.threshold,
                A.UNCONTROLLED_FLOW_THRESHOLD_UNIT_OF_MEASURE: th.unit_of_measure,
                A.UNCONTROLLED_FLOW_MULTIPLIER: th.multiplier,
                A.UNCONTROLLED_FLOW_DIVISOR: th.divisor,
                A.FLOW_STABILISATION_PERIOD: th.stabilisation_period,
                A.FLOW_MEASUREMENT_PERIOD: th.measurement_period,
            }
        return values

    def read(self, attribute: int) -> int | None:
        """One supply attribute's value, None when not held now."""
        return self.attributes().get(attribute)

    # -- persistence ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What a restart keeps."""
        th = self.threshold
        return {
            "utility": self.utility,
            "credit_interrupted": self.credit_interrupted,
            "pending": [
                [
                    p.provider_id,
                    p.issuer_event_id,
                    p.request_time,
                    p.when,
                    p.status,
                    int(p.acknowledge),
                    None if p.reply_to is None else p.reply_to[0],
                    None if p.reply_to is None else p.reply_to[1],
                ]
                for p in self.pending
            ],
            "states": {str(k): v for k, v in self.states.items()},
            "load_limit_counter": self.load_limit_counter,
            "threshold": None if th is None else _threshold_values(th),
        }

    def hold(self) -> tuple[dict[str, Any], bool]:
        """The state as it is (and whether it is to be stored), to :meth:`put_back` when what
        changes it next cannot be stored."""
        return self.snapshot(), self.changed

    def put_back(self, held: tuple[dict[str, Any], bool]) -> None:
        """The state :meth:`hold` gave, as it was (a change not stored is not kept, nor
        written with the next commit)."""
        self.restore(held[0])
        self.changed = held[1]

    def restore(self, record: Any) -> None:
        """Take a :meth:`snapshot` back; :class:`~zse.records.Mismatch` (nothing changed) for
        one that does not read."""
        check(record, _SHAPE)
        states = {int(k): v for k, v in record["states"].items()}
        if not set(states) <= set(_STATE_ATTRIBUTES.values()):
            raise Mismatch("a supply state of an unknown attribute")
        pending = []
        for provider, issuer, requested, when, status, ack, nwk, ep in record["pending"]:
            if when in (NOW, CANCEL) or (nwk is None) != (ep is None):
                raise Mismatch("a waiting supply change does not read")
            reply_to = None if nwk is None else (nwk, ep)
            pending.append(
                SupplyChange(
                    status=status,
                    when=when,
                    provider_id=provider,
                    issuer_event_id=issuer,
                    request_time=requested,
                    acknowledge=bool(ack),
                    reply_to=reply_to,
                )
            )
        threshold = record["threshold"]
        self.utility = record["utility"]
        self.credit_interrupted = record.get("credit_interrupted", False)
        self.pending = sorted(pending, key=lambda p: (p.when, p.issuer_event_id))[:MAX_PENDING]
        self.states = states
        self.load_limit_counter = record["load_limit_counter"]
        self.threshold = None if threshold is None else _threshold(threshold)
        self.changed = False
        self._tell()


def _threshold_values(th: FlowThreshold) -> list[int]:
    return [
        th.threshold,
        th.unit_of_measure,
        th.multiplier,
        th.divisor,
        th.stabilisation_period,
        th.measurement_period,
        th.provider_id,
        th.issuer_event_id,
    ]


def _threshold(values: list[int]) -> FlowThreshold:
    names = ("threshold", "unit_of_measure", "multiplier", "divisor", "stabilisation_period")
    rest = ("measurement_period", "provider_id", "issuer_event_id")
    return FlowThreshold(**dict(zip((*names, *rest), values, strict=True)))


# -- frames ---------------------------------------------------------------------------------------


def _deny(_msg: ZclMessage) -> bool:
    return False


#: The utility's supply commands: NOT_AUTHORIZED unless ``authorize(msg)`` says the sender may.
UTILITY_COMMANDS: Final = frozenset(
    {
        S.RESET_LOAD_LIMIT_COUNTER,
        S.CHANGE_SUPPLY,
        S.SET_SUPPLY_STATUS,
        S.SET_UNCONTROLLED_FLOW_THRESHOLD,
    }
)


def supply_status_response(
    change: SupplyChange, status: int, implemented: int, **where: Any
) -> Send:
    """A Supply Status Response (SE 1.2 D.3.2.3.1, command 0x0C) for ``change``: its provider
    and issuer event id, when it was implemented, the Supply Status after it. ``where``:
    ``reply_to=msg`` or ``to=destination``."""
    schema = Metering.ClientCommandDefs.supply_status_response.schema
    payload = encode_command(
        schema(
            provider_id=change.provider_id,
            issuer_event_id=change.issuer_event_id,
            implementation_date_time=implemented,
            supply_status=status,
        )
    )
    return Send(
        cluster_id=METERING,
        command_id=MeteringClientCommand.SUPPLY_STATUS_RESPONSE,
        payload=payload,
        from_server=True,
        **where,
    )


class SupplyServerProtocol:
    """The meter's supply commands at the ZCL frame, over ``control``.

    The utility's commands (Change Supply, Set Supply Status, Set Uncontrolled Flow Threshold,
    Reset Load Limit Counter) change the supply, so a HAN device may not send them:
    NOT_AUTHORIZED unless ``authorize(msg)`` says the sender may (nobody by default: the ESI's
    application changes the supply through its API), the rule of the Prepayment server's
    utility commands (docs/adr/0031). Local Change Supply comes from any HAN device and may only
    restore an armed supply (:meth:`SupplyControl.local_change_supply`). A refusal answers with
    its status (Default Response); nothing changed. :meth:`answers` gives the handlers
    :class:`~zse.metering.protocol.MeterServerProtocol` dispatches to.
    """

    def __init__(
        self, control: SupplyControl, authorize: Callable[[ZclMessage], bool] | None = None
    ) -> None:
        self.control = control
        self.authorize = _deny if authorize is None else authorize

    def answers(self) -> dict[tuple[bool, int], Callable[[ZclMessage, Any, int], Step]]:
        """(cluster command?, command id) -> the handler of each supply command."""
        return {
            (True, S.RESET_LOAD_LIMIT_COUNTER): self._guarded(self._reset_counter),
            (True, S.CHANGE_SUPPLY): self._guarded(self._change_supply),
            (True, S.LOCAL_CHANGE_SUPPLY): self._guarded(self._local_change),
            (True, S.SET_SUPPLY_STATUS): self._guarded(self._set_states),
            (True, S.SET_UNCONTROLLED_FLOW_THRESHOLD): self._guarded(self._set_threshold),
        }

    def _guarded(
        self, handler: Callable[[ZclMessage, Any, int], Step]
    ) -> Callable[[ZclMessage, Any, int], Step]:
        def answer(msg: ZclMessage, command: Any, now: int) -> Step:
            if msg.command_id in UTILITY_COMMANDS and not self.authorize(msg):
                LOGGER.info(
                    "Metering supply command 0x%02X from 0x%04X refused: not authorised",
                    msg.command_id,
                    msg.src_nwk,
                )
                return Step(status=_Status.NOT_AUTHORIZED)
            try:
                return handler(msg, command, now)
            except SupplyRefused as exc:
                LOGGER.info("Metering supply command from 0x%04X refused: %s", msg.src_nwk, exc)
                return Step(status=exc.status)

        return answer

    def _change_supply(self, msg: ZclMessage, command: Any, now: int) -> Step:
        change = SupplyChange(
            status=int(command.proposed_supply_status),
            when=int(command.implementation_date_time),
            provider_id=int(command.provider_id),
            issuer_event_id=int(command.issuer_event_id),
            request_time=int(command.request_date_time),
            acknowledge=bool(int(command.supply_control_bits) & ACKNOWLEDGE_REQUIRED),
            reply_to=(msg.src_nwk, msg.src_ep),
        )
        events, applied = self.control.change_supply(change, now)
        if applied and change.acknowledge:
            send = supply_status_response(change, self.control.status, now, reply_to=msg)
            return Step(sends=(send,), events=tuple(events))
        return Step(events=tuple(events), status=_Status.SUCCESS)

    def _local_change(self, msg: ZclMessage, command: Any, now: int) -> Step:
        events = self.control.local_change_supply(int(command.proposed_supply_status), now)
        return Step(events=tuple(events), status=_Status.SUCCESS)

    def _set_states(self, msg: ZclMessage, command: Any, now: int) -> Step:
        states = {name: int(getattr(command, name)) for name in _STATE_ATTRIBUTES}
        events = self.control.set_supply_states(states, int(command.issuer_event_id))
        return Step(events=tuple(events), status=_Status.SUCCESS)

    def _set_threshold(self, msg: ZclMessage, command: Any, now: int) -> Step:
        threshold = FlowThreshold(
            threshold=int(command.uncontrolled_flow_threshold),
            unit_of_measure=int(command.unit_of_measure),
            multiplier=int(command.multiplier),
            divisor=int(command.divisor),
            stabilisation_period=int(command.stabilisation_period),
            measurement_period=int(command.measurement_period),
            provider_id=int(command.provider_id),
            issuer_event_id=int(command.issuer_event_id),
        )
        events = self.control.set_threshold(threshold)
        return Step(events=tuple(events), status=_Status.SUCCESS)

    def _reset_counter(self, msg: ZclMessage, command: Any, now: int) -> Step:
        events = self.control.reset_load_limit_counter(
            int(command.provider_id), int(command.issuer_event_id)
        )
        return Step(events=tuple(events), status=_Status.SUCCESS)

    # -- changes at their time --------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """When the next waiting Change Supply is due."""
        return self.control.next_deadline()

    def handle_timeout(self, now: int) -> Step:
        """Apply the changes due; a Supply Status Response to each requester that asked."""
        events, applied = self.control.apply_due(now)
        sends = tuple(
            supply_status_response(
                change, self.control.status, now, to=Destination.device(*change.reply_to)
            )
            for change in applied
            if change.acknowledge and change.reply_to is not None
        )
        return Step(sends=sends, events=tuple(events))


# -- the display's side (the Metering client) -----------------------------------------------------


def local_change_supply_request(meter: Destination, status: int = ON) -> Send:
    """Local Change Supply (SE 1.2 D.3.3.3.1, command 0x0C) to ``meter``: the consumer
    restores an armed supply (``status`` On; Off/Armed is what the meter refuses from a HAN
    device)."""
    schema = Metering.ServerCommandDefs.local_change_supply.schema
    return Send(
        cluster_id=METERING,
        command_id=S.LOCAL_CHANGE_SUPPLY,
        payload=encode_command(schema(proposed_supply_status=status)),
        to=meter,
        from_server=False,
    )


def supply_status_read_request(meter: Destination) -> Send:
    """Read Attributes (ZCL 2.5.1) of the meter's Supply Status (0x0014)."""
    return Send(
        cluster_id=METERING,
        command_id=foundation.GeneralCommand.Read_Attributes,
        payload=int(A.SUPPLY_STATUS).to_bytes(2, "little"),
        to=meter,
        cluster_specific=False,
        from_server=False,
    )


def supply_status_read(reply: ZclMessage) -> int:
    """The Supply Status a Read Attributes Response carries; :class:`SupplyRefused` with the
    meter's status when it does not hold it (UNSUPPORTED_ATTRIBUTE: no supply control), or
    when the answer is not one."""
    if (
        reply.is_cluster_command
        or reply.command_id != foundation.GeneralCommand.Read_Attributes_rsp
    ):
        raise SupplyRefused(_Status.FAILURE, f"the meter answered 0x{reply.command_id:02X}")
    try:
        response: Any
        response, _ = foundation.GENERAL_COMMANDS[
            foundation.GeneralCommand.Read_Attributes_rsp
        ].schema.deserialize(reply.payload)
        (record,) = [r for r in response.status_records if r.attrid == A.SUPPLY_STATUS]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise SupplyRefused(_Status.MALFORMED_COMMAND, f"the meter's answer: {exc}") from None
    if record.status != _Status.SUCCESS or record.value is None:
        raise SupplyRefused(_Status(record.status), "the meter has no Supply Status")
    return int(record.value.value)
