"""The headend's own records in a zse store (SQLite): who owns which device, retailers' groups,
sends and their per-device outcomes.

The lifecycle of each device (state, install code, audit trail) stays in its meter's
:class:`~zse.provisioning.registry.HanRegistry`; this store says which retailer registered it, on
which meter, as what. Every change is one :class:`~zse.store.Batch` (one SQLite transaction), so
a process killed at any point leaves each record whole; records that fail their checks at load are
quarantined by the store and the rest load (:mod:`zse.records`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from zse.headend.core import Outcome, SendKind
from zse.records import (
    BOOL,
    INT,
    STR,
    Fields,
    Int,
    ListOf,
    MapOf,
    Mismatch,
    Number,
    RecordError,
    Shape,
    check,
    load_each,
)
from zse.store import Batch, Store

__all__ = ["DeviceOwner", "Group", "HeadendStore", "OutcomeRecord", "SendRecord"]

_DEVICES = "headend.devices"
_GROUPS = "headend.groups"
_SENDS = "headend.sends"
_OUTCOMES = "headend.outcomes"


@dataclass(frozen=True, kw_only=True)
class DeviceOwner:
    """A device as the headend knows it: the retailer that registered it, its meter, type
    and label (its lifecycle is in the meter's registry)."""

    eui64: str
    retailer: str
    meter: str
    device_type: str
    label: str = ""


@dataclass(frozen=True, kw_only=True)
class Group:
    """A retailer's group: a name and the meters it covers."""

    retailer: str
    name: str
    meters: tuple[str, ...]

    @property
    def key(self) -> str:
        """The record key, also the registry group tag of the group's devices."""
        return f"{self.retailer}/{self.name}"


@dataclass(frozen=True, kw_only=True)
class SendRecord:
    """A by-group send: its id (also the message id or issuer event id on the air), who sent
    what to which group, when (ZigBee UTCTime), whether it was cancelled and when
    (``cancelled_at``, ZigBee UTCTime: its Cancels' give-up time counts from it; None in a
    record written before it was kept, until the headend's next start sets it)."""

    id: int
    retailer: str
    kind: SendKind
    group: str
    request: dict[str, Any]
    created: int
    cancelled: bool = False
    cancelled_at: int | None = None


@dataclass(frozen=True, kw_only=True)
class OutcomeRecord:
    """One device's outcome of a send, with the delivery attempts so far and when the next is
    due (virtual/loop seconds; 0: none)."""

    send: int
    device: str
    meter: str
    outcome: Outcome
    detail: str = ""
    attempts: int = 0
    next_try: float = 0.0
    updated: int = 0

    @property
    def key(self) -> str:
        """The record key."""
        return f"{self.send}/{self.device}"

    def to_json(self) -> dict[str, Any]:
        """The stored (and API) form."""
        return {
            "send": self.send,
            "device": self.device,
            "meter": self.meter,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "attempts": self.attempts,
            "next_try": self.next_try,
            "updated": self.updated,
        }


class _Scalar(Shape):
    """A JSON string, integer or boolean (a request's field)."""

    def check(self, value: object, path: str) -> None:
        if not isinstance(value, str | int | bool):
            raise Mismatch(f"{path or 'value'}: expected a string, integer or boolean")


_DEVICE_SHAPE = Fields(
    {"eui64": STR, "retailer": STR, "meter": STR, "device_type": STR}, {"label": STR}
)
_GROUP_SHAPE = Fields({"retailer": STR, "name": STR, "meters": ListOf(STR)})
_SEND_SHAPE = Fields(
    {
        "id": Int(1, 0xFFFFFFFF),
        "retailer": STR,
        "kind": STR,
        "group": STR,
        "request": MapOf(_Scalar()),
        "created": INT,
        "cancelled": BOOL,
    },
    {"cancelled_at": INT},  # a record written before it was kept has none
)
_OUTCOME_SHAPE = Fields(
    {
        "send": INT,
        "device": STR,
        "meter": STR,
        "outcome": STR,
        "detail": STR,
        "attempts": INT,
        "next_try": Number(),
        "updated": INT,
    }
)


class HeadendStore:
    """The headend's records (:mod:`zse.headend.store`), in memory and in ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.devices: dict[str, DeviceOwner] = {}
        self.groups: dict[str, Group] = {}
        self.sends: dict[int, SendRecord] = {}
        self.outcomes: dict[int, dict[str, OutcomeRecord]] = {}
        self._last_id = 0

    @classmethod
    async def open(cls, store: Store) -> HeadendStore:
        """Load every record from ``store`` (bad ones are quarantined by the store)."""
        self = cls(store)
        for namespace, shape, build in (
            (_DEVICES, _DEVICE_SHAPE, self._device),
            (_GROUPS, _GROUP_SHAPE, self._group),
            (_SENDS, _SEND_SHAPE, self._send),
            (_OUTCOMES, _OUTCOME_SHAPE, self._outcome),
        ):
            await store.load_with(namespace, _loader(namespace, shape, build))
        return self

    def _device(self, key: str, value: Any) -> None:
        if value["eui64"] != key:
            raise Mismatch("the key is not the device's EUI-64")
        self.devices[key] = DeviceOwner(**value)

    def _group(self, key: str, value: Any) -> None:
        group = Group(retailer=value["retailer"], name=value["name"], meters=tuple(value["meters"]))
        if group.key != key:
            raise Mismatch("the key is not the group's")
        self.groups[key] = group

    def _send(self, key: str, value: Any) -> None:
        if str(value["id"]) != key:
            raise Mismatch("the key is not the send's id")
        self.sends[value["id"]] = SendRecord(**{**value, "kind": SendKind(value["kind"])})
        self._last_id = max(self._last_id, value["id"])

    def _outcome(self, key: str, value: Any) -> None:
        record = OutcomeRecord(**{**value, "outcome": Outcome(value["outcome"])})
        if record.key != key:
            raise Mismatch("the key is not the outcome's")
        self.outcomes.setdefault(record.send, {})[record.device] = record

    # -- changes ---------------------------------------------------------------------------------

    async def _commit(self, batch: Batch, hold: Callable[[], object]) -> None:
        """Commit ``batch``, then ``hold`` what it changed in memory: a commit cancelled
        during its transaction, which the store carries out (:attr:`Batch.landed
        <zse.store.Batch.landed>`), is held too (else a send's id, stored, was given again)."""
        try:
            await self.store.commit(batch)
        finally:
            if batch.landed is not None:
                hold()

    async def put_device(self, owner: DeviceOwner) -> None:
        """Record a device's owner (before its meter's registry registers it)."""
        batch = Batch().put(_DEVICES, owner.eui64, _plain(owner))
        await self._commit(batch, lambda: self.devices.__setitem__(owner.eui64, owner))

    async def forget_device(self, eui64: str) -> None:
        """Remove a device's owner (a registration that did not complete)."""
        await self._commit(Batch().delete(_DEVICES, eui64), lambda: self.devices.pop(eui64, None))

    async def put_group(self, group: Group) -> None:
        """Create or replace a group."""
        value = {"retailer": group.retailer, "name": group.name, "meters": list(group.meters)}
        batch = Batch().put(_GROUPS, group.key, value)
        await self._commit(batch, lambda: self.groups.__setitem__(group.key, group))

    async def delete_group(self, group: Group) -> None:
        """Delete a group."""
        batch = Batch().delete(_GROUPS, group.key)
        await self._commit(batch, lambda: self.groups.pop(group.key, None))

    def next_send_id(self) -> int:
        """The next send id (ids are never reused: they are message ids and issuer event ids
        on the air)."""
        return self._last_id + 1

    async def put_send(self, send: SendRecord, outcomes: Iterable[OutcomeRecord] = ()) -> None:
        """Record a send and (optionally) its devices' outcomes, in one transaction."""
        batch = Batch().put(_SENDS, str(send.id), _send_json(send))
        outcomes = list(outcomes)
        for record in outcomes:
            batch.put(_OUTCOMES, record.key, record.to_json())

        def hold() -> None:
            self.sends[send.id] = send
            self._last_id = max(self._last_id, send.id)
            self._hold_outcomes(outcomes)

        await self._commit(batch, hold)

    async def cancel_send(self, send: SendRecord, *, at: int | None = None) -> SendRecord:
        """Mark a send cancelled at ``at`` (ZigBee UTCTime; None: not known, the headend's
        next start counts from then)."""
        cancelled = replace(send, cancelled=True, cancelled_at=at)
        await self.put_send(cancelled)
        return cancelled

    async def put_outcomes(self, records: Iterable[OutcomeRecord]) -> None:
        """Write outcomes (one transaction)."""
        records = list(records)
        if not records:
            return
        batch = Batch()
        for record in records:
            batch.put(_OUTCOMES, record.key, record.to_json())
        await self._commit(batch, lambda: self._hold_outcomes(records))

    def _hold_outcomes(self, records: Iterable[OutcomeRecord]) -> None:
        for record in records:
            self.outcomes.setdefault(record.send, {})[record.device] = record


def _plain(owner: DeviceOwner) -> dict[str, Any]:
    return {
        "eui64": owner.eui64,
        "retailer": owner.retailer,
        "meter": owner.meter,
        "device_type": owner.device_type,
        "label": owner.label,
    }


def _send_json(send: SendRecord) -> dict[str, Any]:
    value = {
        "id": send.id,
        "retailer": send.retailer,
        "kind": send.kind.value,
        "group": send.group,
        "request": dict(send.request),
        "created": send.created,
        "cancelled": send.cancelled,
    }
    if send.cancelled_at is not None:
        value["cancelled_at"] = send.cancelled_at
    return value


def _loader(
    namespace: str, shape: Shape, build: Callable[[str, Any], None]
) -> Callable[[dict[str, Any], Callable[[RecordError], None]], None]:
    """A store loader: each record checked against ``shape``, then built; a bad one is handed
    to ``on_bad`` (quarantined) and the others load."""

    def load(records: dict[str, Any], on_bad: Callable[[RecordError], None]) -> None:
        def one(key: str, value: Any) -> None:
            check(value, shape)
            build(key, value)

        load_each(records.items(), one, namespace=namespace, on_bad=on_bad)

    return load
