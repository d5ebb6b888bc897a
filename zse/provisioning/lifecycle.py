"""The HAN provisioning lifecycle a utility moves each device through, as a sans-IO core.

A headend registers a device by install code and MAC address (EUI-64); the device then moves
through the utility's lifecycle, driven by what actually happens on the network::

    NEW --provision--> PENDING_PROVISIONING --key_established--> METER_READY
    METER_READY --deprovision--> PENDING_DEPROVISIONING --left--> DEPROVISION_COMPLETE

plus the paths a real HAN takes: a device that leaves on its own while METER_READY goes back to
PENDING_PROVISIONING (its link key is still registered; it can rejoin and run CBKE again), a
provisioning can be withdrawn before the device ever joined (PENDING_PROVISIONING
--deprovision--> DEPROVISION_COMPLETE), and a de-provisioned device can be registered again
(``reregister``, with a new install code). The table below is the whole lifecycle; anything else
raises :class:`IllegalTransition`.

The policy of what a shell does on each transition is decided here too (:func:`decide`, from
:data:`ACTIONS`): ask a de-provisioned device to leave (:class:`SendLeave`), open joining for a
device being admitted or one that left on its own while METER_READY (:class:`OpenJoining`).
The shells (:class:`~zse.roles.esi.EnergyServiceInterface`, the registry) only carry them out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

from zse.errors import ZseError
from zse.installcode import InstallCode, canonical_eui64
from zse.records import BOOL, STR, Fields, ListOf, Mismatch, check, load_one

__all__ = [
    "ACTIONS",
    "TRANSITIONS",
    "UNCHANGED",
    "DeviceRecord",
    "IllegalTransition",
    "LifecycleAction",
    "LifecycleEvent",
    "LifecycleState",
    "OpenJoining",
    "SendLeave",
    "Transition",
    "decide",
    "next_record",
    "next_state",
]


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
    (_S.PENDING_DEPROVISIONING, _E.LEFT): _S.DEPROVISION_COMPLETE,
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


#: What a shell carries out after a transition.
LifecycleAction = SendLeave | OpenJoining

_LEAVE, _JOIN = SendLeave(), OpenJoining()

#: (state before, event) -> the actions a shell carries out, ``None`` standing for a device the
#: shell has no record of (an ESI without a registry). ``(_JOIN,)`` on a METER_READY device
#: that left is carried out only with re-admission on (``decide(readmit=True)``).
ACTIONS: dict[tuple[LifecycleState | None, LifecycleEvent], tuple[LifecycleAction, ...]] = {
    (None, _E.PROVISION): (_JOIN,),
    (_S.NEW, _E.PROVISION): (_JOIN,),
    (_S.PENDING_PROVISIONING, _E.PROVISION): (_JOIN,),  # a new admission window, same state
    (_S.METER_READY, _E.LEFT): (_JOIN,),  # it may rejoin and run CBKE again (readmit)
    (None, _E.DEPROVISION): (_LEAVE,),
    (_S.PENDING_PROVISIONING, _E.DEPROVISION): (_LEAVE,),  # in case it joined unseen
    (_S.METER_READY, _E.DEPROVISION): (_LEAVE,),
}

#: (state, event) pairs that change nothing and are not refused either.
UNCHANGED: frozenset[tuple[LifecycleState, LifecycleEvent]] = frozenset(
    {
        # withdrawn before it ever got on the HAN: its leave changes nothing
        (_S.DEPROVISION_COMPLETE, _E.LEFT),
        # already admitted: the headend opens a new joining window
        (_S.PENDING_PROVISIONING, _E.PROVISION),
    }
)


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
