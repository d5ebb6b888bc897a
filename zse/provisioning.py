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
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from zse.errors import ZseError
from zse.installcode import InstallCode, canonical_eui64
from zse.records import BOOL, STR, Fields, ListOf, Mismatch, check, load_one

__all__ = [
    "TRANSITIONS",
    "DeviceRecord",
    "IllegalTransition",
    "LifecycleEvent",
    "LifecycleState",
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
