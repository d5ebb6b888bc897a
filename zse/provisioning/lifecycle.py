"""The HAN provisioning lifecycle a utility moves each device through, as a sans-IO core.

A headend registers a device by install code and MAC address (EUI-64); the device then moves
through the utility's lifecycle, driven by what actually happens on the network::

    NEW --provision--> PENDING_PROVISIONING --key_established--> METER_READY
    METER_READY --deprovision--> PENDING_DEPROVISIONING --left / timed_out--> DEPROVISION_COMPLETE

plus the paths a real HAN takes: a device that leaves on its own while METER_READY goes back to
PENDING_PROVISIONING (its link key is still registered; it can rejoin and run CBKE again), a
provisioning can be withdrawn before the device ever joined (PENDING_PROVISIONING
--deprovision--> DEPROVISION_COMPLETE), and a de-provisioned device can be registered again
(``reregister``, with a new install code). A device being removed that is never seen leaving
is recorded removed when its time is up (``timed_out``: its keys were erased at the Trust Center
at DEPROVISION, so it can no longer get back in); a device still pending provisioning when its
time is up gets a ``timed_out`` entry (state unchanged), so it is reported rather than pending
silently. De-provisioning a device already being removed or removed changes nothing and is not
refused (a repeated request). The table below is the whole lifecycle; anything else
raises :class:`IllegalTransition`.

The policy of what a shell does on each transition is decided here too (:func:`decide`, from
:data:`ACTIONS`): ask a de-provisioned device to leave (:class:`SendLeave`), open joining for a
device being admitted or one that left on its own while METER_READY (:class:`OpenJoining`),
erase its keys at the Trust Center (:class:`RemoveKeys`); and what a shell does about a refused
event (:func:`refusal`): a de-provisioned device seen joining or keyed is removed again.
The shells (:class:`~zse.roles.esi.EnergyServiceInterface`, the registry) only carry them out.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any

from zse.errors import ZseError
from zse.installcode import InstallCode, canonical_eui64
from zse.records import BOOL, STR, Fields, ListOf, Mismatch, check, load_one

__all__ = [
    "ACTIONS",
    "DEPROVISION_TIMEOUT",
    "LEAVE_RETRY_DELAYS",
    "MAX_HAN_NAME",
    "PROVISION_TIMEOUT",
    "REFUSALS",
    "TRANSITIONS",
    "UNCHANGED",
    "DeviceRecord",
    "Due",
    "IllegalTransition",
    "LifecycleAction",
    "LifecycleEvent",
    "LifecycleState",
    "OpenJoining",
    "PendingWatch",
    "RemoveKeys",
    "SendLeave",
    "Transition",
    "decide",
    "han_name_problem",
    "next_record",
    "next_state",
    "refusal",
    "unprintable_character",
]


#: Longest HAN device label and registry group name (characters).
MAX_HAN_NAME = 64
#: What the devices CSV's ``groups`` cell separates names with (:mod:`zse.device_csv`).
_GROUP_SEPARATOR = ";"


def han_name_problem(text: str, *, group: bool = False) -> str | None:
    """Why ``text`` cannot be a HAN device's label (``group``: a registry group name), or None.

    The one rule of every way a label or group name comes in (the registry, the headend's API, the
    ESI's ``[[devices]]`` and ``[groups]``, MQTT ``provision``, the devices CSV through the
    registry): at most :data:`MAX_HAN_NAME` characters, all printable (no control character: an
    operator's terminal prints them, and no invisible one: a zero-width space or a bidi
    override makes two labels look alike). A group name is also not empty, has no ``;`` (the
    devices CSV's separator) and no space at either end (the CSV strips it)."""
    if len(text) > MAX_HAN_NAME:
        return f"is {len(text)} characters; at most {MAX_HAN_NAME}"
    unprintable = unprintable_character(text)
    if unprintable is not None:
        return f"has {unprintable}"
    if group and (not text or text.strip() != text or _GROUP_SEPARATOR in text):
        return "must be 1 or more characters, without ';' or a space at either end"
    return None


#: What :func:`unprintable_character` calls a character of each Unicode general category that
#: :meth:`str.isprintable` refuses (Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs but the ASCII space).
_UNPRINTABLE_KINDS = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Cs": "a surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned character",
    "Zs": "a space other than the plain one",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


def unprintable_character(text: str) -> str | None:
    """The first character of ``text`` that :meth:`str.isprintable` refuses, as an operator
    reads it (its kind, code point, Unicode name where it has one, and position counted from
    1: ``an invisible format character U+200B ZERO WIDTH SPACE at position 5``), or None.
    The character itself is never echoed: it would not show."""
    if text.isprintable():
        return None
    position, char = next((i, c) for i, c in enumerate(text) if not c.isprintable())
    kind = _UNPRINTABLE_KINDS.get(unicodedata.category(char), "a character not printable")
    name = unicodedata.name(char, "")
    return f"{kind} U+{ord(char):04X}{' ' + name if name else ''} at position {position + 1}"


class LifecycleState(enum.Enum):
    """Where a HAN device stands with the utility."""

    NEW = "new"
    PENDING_PROVISIONING = "pending provisioning"
    METER_READY = "meter ready"
    PENDING_DEPROVISIONING = "pending de-provisioning"
    DEPROVISION_COMPLETE = "de-provision complete"


class LifecycleEvent(enum.Enum):
    """What moves a device: a headend request or something seen on the network."""

    PROVISION = "provision"  # the headend gives the meter the device's link key
    JOINED = "joined"  # the device joined the meter's network
    KEY_ESTABLISHED = "key_established"  # CBKE succeeded: the device is on the HAN for real
    DEPROVISION = "deprovision"  # the headend asks for the device to be removed
    LEFT = "left"  # the device left the network (asked to, or on its own)
    REREGISTER = "reregister"  # a de-provisioned device registered again
    TIMED_OUT = "timed_out"  # a device's pending time ran out (never joined, never seen leaving)


_S, _E = LifecycleState, LifecycleEvent

#: The lifecycle: (state, event) -> next state.
TRANSITIONS: dict[tuple[LifecycleState, LifecycleEvent], LifecycleState] = {
    (_S.NEW, _E.PROVISION): _S.PENDING_PROVISIONING,
    (_S.PENDING_PROVISIONING, _E.JOINED): _S.PENDING_PROVISIONING,
    (_S.PENDING_PROVISIONING, _E.KEY_ESTABLISHED): _S.METER_READY,
    (_S.PENDING_PROVISIONING, _E.LEFT): _S.PENDING_PROVISIONING,
    (_S.PENDING_PROVISIONING, _E.DEPROVISION): _S.DEPROVISION_COMPLETE,
    (_S.METER_READY, _E.JOINED): _S.METER_READY,  # a rejoin
    (_S.METER_READY, _E.KEY_ESTABLISHED): _S.METER_READY,  # a re-key
    (_S.METER_READY, _E.LEFT): _S.PENDING_PROVISIONING,
    (_S.METER_READY, _E.DEPROVISION): _S.PENDING_DEPROVISIONING,
    (_S.PENDING_PROVISIONING, _E.TIMED_OUT): _S.PENDING_PROVISIONING,  # reported, still admitted
    (_S.PENDING_DEPROVISIONING, _E.LEFT): _S.DEPROVISION_COMPLETE,
    (_S.PENDING_DEPROVISIONING, _E.TIMED_OUT): _S.DEPROVISION_COMPLETE,  # keys erased: out
    (_S.PENDING_DEPROVISIONING, _E.DEPROVISION): _S.PENDING_DEPROVISIONING,  # asked again
    (_S.DEPROVISION_COMPLETE, _E.DEPROVISION): _S.DEPROVISION_COMPLETE,  # asked again
    (_S.DEPROVISION_COMPLETE, _E.REREGISTER): _S.NEW,
}


class IllegalTransition(ZseError):
    """A lifecycle event that the device's current state does not allow."""

    def __init__(self, eui64: str, state: LifecycleState, event: LifecycleEvent) -> None:
        allowed = sorted(s.value for (s, e) in TRANSITIONS if e is event)
        super().__init__(
            f"device {eui64} is {state.value!r}: {event.value!r} is allowed only from "
            + " or ".join(repr(a) for a in allowed)
        )
        self.eui64, self.state, self.event = eui64, state, event


def next_state(eui64: str, state: LifecycleState, event: LifecycleEvent) -> LifecycleState:
    """The state ``event`` leads to, or :class:`IllegalTransition`."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(eui64, state, event) from None


@dataclass(frozen=True, kw_only=True)
class DeviceRecord:
    """A registered HAN device: its identity, install code, state and groups."""

    eui64: str  # canonical printed form, 16 upper-case hex digits
    install_code: str = field(repr=False)  # canonical printed form; a secret: not in reprs
    state: LifecycleState = LifecycleState.NEW
    label: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)
    joined: bool = False

    def to_json(self) -> dict[str, object]:
        """The stored form."""
        return {
            "eui64": self.eui64,
            "install_code": self.install_code,
            "state": self.state.value,
            "label": self.label,
            "groups": sorted(self.groups),
            "joined": self.joined,
        }

    @classmethod
    def from_json(
        cls, value: object, *, namespace: str = "registry.devices", key: str = "?"
    ) -> DeviceRecord:
        """From the stored form; anything else raises :class:`~zse.records.RecordError`
        naming ``namespace`` and ``key`` (never the install code)."""
        return load_one(key, value, cls._build, namespace=namespace)

    @classmethod
    def _build(cls, value: Any) -> DeviceRecord:
        check(value, _DEVICE_SHAPE)
        eui64, code = value["eui64"], value["install_code"]
        if canonical_eui64(eui64) != eui64:
            raise Mismatch(".eui64: not the canonical form")
        InstallCode.parse(code)  # its own error (InvalidInstallCode) is reported by type only
        return cls(
            eui64=eui64,
            install_code=code,
            state=LifecycleState(value["state"]),
            label=value.get("label", ""),
            groups=frozenset(value.get("groups", [])),
            joined=value.get("joined", False),
        )


_DEVICE_SHAPE = Fields(
    {"eui64": STR, "install_code": STR, "state": STR},
    {"label": STR, "groups": ListOf(STR), "joined": BOOL},
)


# -- the policy: what a shell does on each transition -------------------------------------------


@dataclass(frozen=True)
class SendLeave:
    """Ask the device to leave the network for good (ZDO Mgmt_Leave_req, rejoin off)."""


@dataclass(frozen=True)
class OpenJoining:
    """Open joining for the device with its install-code link key (SE 5.4.8.1), for the
    shell's admission window."""


@dataclass(frozen=True)
class RemoveKeys:
    """Erase the device's link keys at the Trust Center (its install-code key and the key CBKE
    gave it), so that it can neither join, Trust-Center-rejoin nor use APS security again."""


#: What a shell carries out after a transition.
LifecycleAction = SendLeave | OpenJoining | RemoveKeys

_LEAVE, _JOIN, _KEYS = SendLeave(), OpenJoining(), RemoveKeys()

#: (state before, event) -> the actions a shell carries out, ``None`` standing for a device the
#: shell has no record of (an ESI without a registry). ``(_JOIN,)`` on a METER_READY device
#: that left is carried out only with re-admission on (``decide(readmit=True)``).
ACTIONS: dict[tuple[LifecycleState | None, LifecycleEvent], tuple[LifecycleAction, ...]] = {
    (None, _E.PROVISION): (_JOIN,),
    (_S.NEW, _E.PROVISION): (_JOIN,),
    (_S.PENDING_PROVISIONING, _E.PROVISION): (_JOIN,),  # a new admission window, same state
    (_S.METER_READY, _E.LEFT): (_JOIN,),  # it may rejoin and run CBKE again (readmit)
    # admission withdrawn at once: keys erased first, then the leave (which may not arrive)
    (None, _E.DEPROVISION): (_KEYS, _LEAVE),
    (_S.PENDING_PROVISIONING, _E.DEPROVISION): (_KEYS, _LEAVE),  # in case it joined unseen
    (_S.METER_READY, _E.DEPROVISION): (_KEYS, _LEAVE),
    (_S.PENDING_DEPROVISIONING, _E.DEPROVISION): (_KEYS, _LEAVE),  # asked again: leave again
    (_S.DEPROVISION_COMPLETE, _E.DEPROVISION): (_KEYS,),  # asked again: nothing left to ask
    (_S.PENDING_DEPROVISIONING, _E.TIMED_OUT): (_KEYS,),
}

#: (state, event) -> what a shell does about a refused event: a device being removed or
#: removed that is seen joining or keyed on the network gets its keys erased and is asked to
#: leave again (its join is refused; the event is recorded in the audit trail as refused).
REFUSALS: dict[tuple[LifecycleState, LifecycleEvent], tuple[LifecycleAction, ...]] = {
    (state, event): (_KEYS, _LEAVE)
    for state in (_S.PENDING_DEPROVISIONING, _S.DEPROVISION_COMPLETE)
    for event in (_E.JOINED, _E.KEY_ESTABLISHED)
}

#: (state, event) pairs that change nothing and are not refused either.
UNCHANGED: frozenset[tuple[LifecycleState, LifecycleEvent]] = frozenset(
    {
        # withdrawn before it ever got on the HAN: its leave changes nothing
        (_S.DEPROVISION_COMPLETE, _E.LEFT),
        # already admitted: the headend opens a new joining window
        (_S.PENDING_PROVISIONING, _E.PROVISION),
        # a removal asked for again: the keys are erased (and the leave sent) again
        (_S.PENDING_DEPROVISIONING, _E.DEPROVISION),
        (_S.DEPROVISION_COMPLETE, _E.DEPROVISION),
    }
)


def refusal(state: LifecycleState | None, event: LifecycleEvent) -> tuple[LifecycleAction, ...]:
    """What a shell carries out about ``event`` refused in ``state`` (:data:`REFUSALS`)."""
    return () if state is None else REFUSALS.get((state, event), ())


@dataclass(frozen=True, kw_only=True)
class Transition:
    """What an event does to a device: its record before and after (None: a device without
    a record), whether the change is to be written (and reported: the state may stay the
    same, as on a rejoin), and the actions to carry out."""

    event: LifecycleEvent
    before: DeviceRecord | None
    after: DeviceRecord | None
    write: bool = False
    actions: tuple[LifecycleAction, ...] = ()


def next_record(record: DeviceRecord, event: LifecycleEvent) -> DeviceRecord:
    """The record ``event`` leads to (state and joined flag), or :class:`IllegalTransition`."""
    state = next_state(record.eui64, record.state, event)
    joined = record.joined
    if event is LifecycleEvent.JOINED:
        joined = True
    elif event in (LifecycleEvent.LEFT, LifecycleEvent.REREGISTER):
        joined = False
    return replace(record, state=state, joined=joined)


def decide(
    record: DeviceRecord | None, event: LifecycleEvent, *, readmit: bool = True
) -> Transition:
    """What ``event`` does to a device with ``record`` (None: one the shell keeps no record
    of): the record after it and the actions to carry out. ``readmit``: re-open joining for
    a METER_READY device that left on its own. :class:`IllegalTransition` when the state
    does not allow the event (nothing is to be written then)."""
    state = None if record is None else record.state
    actions = ACTIONS.get((state, event), ())
    if event is LifecycleEvent.LEFT and not readmit:
        actions = ()
    if record is None or (record.state, event) in UNCHANGED:
        return Transition(event=event, before=record, after=record, actions=actions)
    after = next_record(record, event)
    return Transition(event=event, before=record, after=after, write=True, actions=actions)


# -- the deadlines of pending devices -----------------------------------------------------------

#: Seconds after its admission that a device still PENDING_PROVISIONING is reported
#: (``timed_out``, state unchanged): a device that never joined is not pending silently.
PROVISION_TIMEOUT = 86_400.0
#: Seconds after DEPROVISION that a device never seen leaving is recorded removed
#: (``timed_out`` -> DEPROVISION_COMPLETE): its keys were erased at DEPROVISION, so it cannot
#: get back in.
DEPROVISION_TIMEOUT = 86_400.0
#: Seconds between leave requests to a device being removed, the last repeated.
LEAVE_RETRY_DELAYS: tuple[float, ...] = (30.0, 60.0, 120.0, 300.0, 900.0)


@dataclass(frozen=True)
class Due:
    """A device whose time came: ``event`` TIMED_OUT to apply (``detail`` says why), or None:
    ask it to leave again."""

    eui64: str
    event: LifecycleEvent | None
    detail: str = ""


@dataclass
class _Watched:
    state: LifecycleState
    ends: float
    next_leave: float | None = None
    asked: float | None = None  # when it was last asked to leave
    leaves: int = 0
    reported: bool = False  # timed out while pending provisioning: told once per admission


class PendingWatch:
    """When devices pending in the lifecycle are due (sans-IO; times are the shell's seconds):
    a device PENDING_DEPROVISIONING is asked to leave again on :data:`LEAVE_RETRY_DELAYS` and
    timed out after ``deprovision_timeout``; one PENDING_PROVISIONING is timed out (reported)
    after ``provision_timeout`` (None: never). Feed it every record written (:meth:`watch`)."""

    def __init__(
        self,
        *,
        provision_timeout: float | None = PROVISION_TIMEOUT,
        deprovision_timeout: float = DEPROVISION_TIMEOUT,
    ) -> None:
        self.provision_timeout = provision_timeout
        self.deprovision_timeout = deprovision_timeout
        self._watched: dict[str, _Watched] = {}

    def watch(self, record: DeviceRecord, now: float) -> None:
        """``record`` was written at ``now``: the deadlines of a state it enters start; those
        of a state it stays in go on (a new admission restarts them: :meth:`admitted`)."""
        key = record.eui64
        current = self._watched.get(key)
        same = current is not None and current.state is record.state
        if record.state is LifecycleState.PENDING_DEPROVISIONING:
            if not same:
                ends = now + self.deprovision_timeout
                first = now + LEAVE_RETRY_DELAYS[0]
                self._watched[key] = _Watched(record.state, ends, next_leave=first, asked=now)
        elif record.state is LifecycleState.PENDING_PROVISIONING and not record.joined:
            if not same and self.provision_timeout is not None:
                self._watched[key] = _Watched(record.state, now + self.provision_timeout)
        else:
            self._watched.pop(key, None)

    def again(self, eui64: str, state: LifecycleState, at: float) -> None:
        """The time-out of ``eui64`` (in ``state``, as the registry holds it) could not be
        written: due again at ``at``. A state that is not pending is not watched."""
        current = self._watched.get(eui64)
        if current is not None and current.state is state:
            current.ends, current.reported = at, False
        elif current is None and state in (
            LifecycleState.PENDING_PROVISIONING,
            LifecycleState.PENDING_DEPROVISIONING,
        ):
            self._watched[eui64] = _Watched(state, at)

    def admitted(self, eui64: str, now: float) -> None:
        """A new admission window for a device pending provisioning: its time starts again."""
        current = self._watched.get(eui64)
        if current is not None and current.state is LifecycleState.PENDING_PROVISIONING:
            assert self.provision_timeout is not None
            current.ends, current.reported = now + self.provision_timeout, False

    def heard(self, eui64: str, now: float) -> bool:
        """The device was heard from at ``now``: whether to ask it to leave now (it is being
        removed, and was not asked in the last :data:`LEAVE_RETRY_DELAYS` ``[0]`` seconds)."""
        current = self._watched.get(eui64)
        if current is None or current.state is not LifecycleState.PENDING_DEPROVISIONING:
            return False
        if current.asked is not None and now - current.asked < LEAVE_RETRY_DELAYS[0]:
            return False  # asked less than the shortest delay ago
        self._asked(current, now)
        return True

    def _asked(self, current: _Watched, now: float) -> None:
        current.leaves += 1
        current.asked = now
        delay = LEAVE_RETRY_DELAYS[min(current.leaves, len(LEAVE_RETRY_DELAYS) - 1)]
        current.next_leave = now + delay

    def next_deadline(self) -> float | None:
        """The earliest time something is due, or None."""
        times = [w.ends for w in self._watched.values() if not w.reported]
        times += [w.next_leave for w in self._watched.values() if w.next_leave is not None]
        return min(times, default=None)

    def handle_timeout(self, now: float) -> list[Due]:
        """What is due at ``now``, by EUI-64. A device timed out while being removed is no
        longer watched; one pending provisioning is told once per admission."""
        due: list[Due] = []
        for key, current in sorted(self._watched.items()):
            if current.ends <= now and not current.reported:
                if current.state is LifecycleState.PENDING_DEPROVISIONING:
                    del self._watched[key]
                    why = (
                        f"not seen leaving within {self.deprovision_timeout:g} s "
                        f"({current.leaves + 1} leave request(s)); its keys were erased: removed"
                    )
                else:
                    current.reported = True
                    why = f"not joined within {self.provision_timeout:g} s of its admission"
                due.append(Due(key, LifecycleEvent.TIMED_OUT, why))
            elif current.next_leave is not None and current.next_leave <= now:
                self._asked(current, now)
                due.append(Due(key, None))
        return due
