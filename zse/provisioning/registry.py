"""A headend's HAN provisioning registry, persisted (SQLite through :mod:`zse.store`).

Devices are registered by install code and MAC address (EUI-64), validated as
:mod:`zse.installcode` does, moved through the lifecycle of :mod:`zse.provisioning` by the
headend's requests and by what happens on the network (join, CBKE success, leave), and grouped
for by-group sends. Every change is written with its audit entry in one transaction, so the
registry and its audit trail never disagree, whatever happens to the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import zigpy.types as t

from zse.device_csv import DeviceCsvError, read_devices
from zse.errors import DecodeError, InvalidEui64, ZseError
from zse.headend.core import shown
from zse.installcode import InstallCode, canonical_eui64, format_eui64
from zse.provisioning.lifecycle import (
    DeviceRecord,
    LifecycleEvent,
    LifecycleState,
    Transition,
    decide,
    han_name_problem,
    next_record,
)
from zse.records import STR, Fields, Number, Opt, RecordError, check, load_each
from zse.store import Batch, Store, close_keeping

__all__ = [
    "AlreadyRegistered",
    "AuditEntry",
    "HanRegistry",
    "ImportReport",
    "InstallCodeInUse",
    "InvalidDeviceLabel",
    "InvalidGroups",
    "RegistryError",
    "group_names",
    "registry_key",
]

LOGGER = logging.getLogger(__name__)

_DEVICES = "registry.devices"
_AUDIT = "registry.audit"


class RegistryError(ZseError):
    """A registry request that cannot be done: unknown device, duplicate registration."""


class AlreadyRegistered(RegistryError):
    """The device is registered already and not de-provisioned (a second registration of one
    MAC, concurrent or not, is refused: the first install code stays)."""


class InstallCodeInUse(RegistryError):
    """The install code is already given for another device that is not de-provisioned: an
    install code is per device (SE 5.4.8.1: it derives that device's preconfigured link key),
    so a second device with it is almost always a code read from the wrong label."""


class InvalidGroups(RegistryError, TypeError):
    """Registry groups given as something other than a collection of group names: a bare
    string (which would be one group per character), a name that is not text, or a name
    :func:`~zse.provisioning.lifecycle.han_name_problem` refuses (a control character, too
    long...)."""


class InvalidDeviceLabel(RegistryError, ValueError):
    """A device label that is not text or that
    :func:`~zse.provisioning.lifecycle.han_name_problem` refuses: longer than
    :data:`~zse.provisioning.lifecycle.MAX_HAN_NAME` characters or with a control character."""


def _check_label(label: object) -> str:
    """``label`` if it may be a device's label (the rule of every way one comes in:
    :func:`~zse.provisioning.lifecycle.han_name_problem`), else :class:`InvalidDeviceLabel`;
    the message quotes it escaped and cut (:func:`~zse.headend.core.shown`)."""
    if not isinstance(label, str):
        raise InvalidDeviceLabel(f"a label must be text, not {type(label).__name__}")
    problem = han_name_problem(label)
    if problem is not None:
        raise InvalidDeviceLabel(f"label {shown(label)} {problem}")
    return label


def registry_key(eui64: object) -> str:
    """The registry's key of a device: its EUI-64 as 16 upper-case hex digits, from any
    printed spelling or a zigpy :class:`zigpy.types.EUI64`. Anything else (an int, bytes)
    raises :class:`~zse.errors.InvalidEui64`, as a malformed spelling does."""
    if isinstance(eui64, t.EUI64):
        return format_eui64(eui64)
    if not isinstance(eui64, str):
        raise InvalidEui64(
            f"EUI-64 must be given as text or a zigpy EUI64, not {type(eui64).__name__}"
        )
    return canonical_eui64(eui64)


def group_names(groups: Iterable[object]) -> frozenset[str]:
    """Registry group names given as a list, tuple, set... of names, as a frozenset.

    A bare ``str`` (``groups="street-7"`` would make the groups ``s``, ``t``, ``r``...) or
    ``bytes``, something that is not iterable, a name that is not text or one
    :func:`~zse.provisioning.lifecycle.han_name_problem` refuses raises :class:`InvalidGroups`."""
    if isinstance(groups, (str, bytes, bytearray)):
        raise InvalidGroups(
            f"groups must be a collection of group names, not a single "
            f"{type(groups).__name__}: write groups=[{groups!r}]"
        )
    try:
        names = list(groups)
    except TypeError:
        raise InvalidGroups(
            f"groups must be a collection of group names, not {type(groups).__name__}"
        ) from None
    texts: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise InvalidGroups(f"a group name must be text, not {type(name).__name__}")
        problem = han_name_problem(name, group=True)
        if problem is not None:
            raise InvalidGroups(f"group name {shown(name)} {problem}")
        texts.append(name)
    return frozenset(texts)


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One change to one device, in order (``seq``), with the wall-clock time it was made."""

    seq: int
    time: float
    eui64: str
    event: str
    from_state: str | None
    to_state: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class ImportReport:
    """What a bulk import did: devices registered, and one message per bad row."""

    registered: list[str]
    errors: list[str]


_AUDIT_SHAPE = Fields(
    {
        "time": Number(),
        "eui64": STR,
        "event": STR,
        "from_state": Opt(STR),
        "to_state": STR,
        "detail": STR,
    }
)


def _audit_value(value: Any) -> dict[str, Any]:
    """A stored audit entry, checked."""
    check(value, _AUDIT_SHAPE)
    return dict(value)


class HanRegistry:
    """The devices a headend provisions, their lifecycle state, groups and audit trail."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._devices: dict[str, DeviceRecord] = {}
        #: Orders every read-decide-write: two changes of one device never interleave.
        self._lock = asyncio.Lock()
        #: Install code (canonical) -> the device last given it.
        self._by_code: dict[str, str] = {}

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time
    ) -> HanRegistry:
        """Open (or create) a registry file; a file that is not one raises ``StoreError``."""
        return await cls.attach(await Store.open(path), clock=clock)

    @classmethod
    async def attach(cls, store: Store, *, clock: Callable[[], float] = time.time) -> HanRegistry:
        """The registry kept in ``store`` (a file of its own, or a view of a shared store:
        :meth:`zse.store.Store.view`); :meth:`close` closes ``store``."""
        registry = cls(store, clock=clock)
        try:
            await store.load_with(_DEVICES, registry._load)
        except BaseException:
            await close_keeping(store.close, store.where)
            raise
        return registry

    def _load(self, records: dict[str, Any], on_bad: Callable[[RecordError], None]) -> None:
        """The stored devices; a wrong-shaped one is handed to ``on_bad`` (quarantined)."""

        def load(key: str, value: Any) -> None:
            record = DeviceRecord.from_json(value, namespace=_DEVICES, key=key)
            if record.eui64 != key:
                raise RecordError(_DEVICES, key, "the key is not the device's EUI-64")
            self._devices[record.eui64] = record
            self._by_code[record.install_code] = record.eui64

        load_each(records.items(), load, namespace=_DEVICES, on_bad=on_bad)

    async def close(self) -> None:
        """Close the file."""
        await self.store.close()

    # -- queries ---------------------------------------------------------------------------

    def get(self, eui64: str | t.EUI64) -> DeviceRecord:
        """The device with this EUI-64 (any printed spelling, or a zigpy EUI64)."""
        key = registry_key(eui64)
        try:
            return self._devices[key]
        except KeyError:
            raise RegistryError(f"device {key} is not registered") from None

    def devices(
        self, *, state: LifecycleState | None = None, group: str | None = None
    ) -> list[DeviceRecord]:
        """Registered devices, optionally in one state and/or one group, by EUI-64."""
        return [
            d
            for _, d in sorted(self._devices.items())
            if (state is None or d.state is state) and (group is None or group in d.groups)
        ]

    def link_key(self, eui64: str | t.EUI64) -> bytes:
        """The preconfigured link key of a registered device (from its install code)."""
        return InstallCode.parse(self.get(eui64).install_code).link_key

    async def audit(self, eui64: str | t.EUI64 | None = None) -> list[AuditEntry]:
        """The audit trail, oldest first, of one device or of all."""
        key = None if eui64 is None else registry_key(eui64)
        entries = await self.store.journal_with(_AUDIT, _audit_value)  # bad ones quarantined
        return [
            AuditEntry(seq=seq, **value)
            for seq, value in entries
            if key is None or value["eui64"] == key
        ]

    # -- changes ---------------------------------------------------------------------------

    async def register(
        self,
        eui64: str | t.EUI64,
        install_code: str,
        *,
        label: str = "",
        groups: Iterable[str] = (),
    ) -> DeviceRecord:
        """Register a device by MAC address and install code (both as printed; the MAC may
        also be a zigpy EUI64). ``groups``: a list of group names (a bare string is refused).

        Raises :class:`~zse.errors.InvalidEui64` / :class:`~zse.errors.InvalidInstallCode` /
        :class:`InvalidDeviceLabel` / :class:`InvalidGroups` for bad input,
        :class:`AlreadyRegistered` if the device is already registered and not de-provisioned
        (a de-provisioned device is registered again, with the new code; of two registrations
        at once, the second is refused) and :class:`InstallCodeInUse` if another device not
        de-provisioned has the install code.
        """
        key = registry_key(eui64)
        code = str(InstallCode.parse(install_code))
        label = _check_label(label)
        names = group_names(groups)
        async with self._lock:
            return await self._register(key, code, label, names)

    async def _register(
        self, key: str, code: str, label: str, names: frozenset[str]
    ) -> DeviceRecord:
        existing = self._devices.get(key)
        other = self._devices.get(self._by_code.get(code, key))
        if (
            other is not None
            and other.eui64 != key
            and other.install_code == code
            and other.state is not LifecycleState.DEPROVISION_COMPLETE
        ):
            raise InstallCodeInUse(
                f"device {key}: its install code is already given for device "
                f"{other.eui64} ({other.state.value}); an install code is per device"
            )
        if existing is None:
            record = DeviceRecord(eui64=key, install_code=code, label=label, groups=names)
            await self._commit(record, "register", None, "")
            return record
        if existing.state is not LifecycleState.DEPROVISION_COMPLETE:
            raise AlreadyRegistered(
                f"device {key} is already registered ({existing.state.value}); "
                "de-provision it before registering it again"
            )
        record = replace(
            next_record(existing, LifecycleEvent.REREGISTER),
            install_code=code,
            label=label or existing.label,
            groups=names,
        )
        await self._commit(record, LifecycleEvent.REREGISTER.value, existing.state, "")
        return record

    async def apply(
        self, eui64: str | t.EUI64, event: LifecycleEvent, detail: str = ""
    ) -> DeviceRecord:
        """Move a device by ``event``; :class:`~zse.provisioning.IllegalTransition` if not
        allowed from its state. Nothing is written for a refused event."""
        async with self._lock:
            current = self.get(eui64)
            record = next_record(current, event)
            await self._commit(record, event.value, current.state, detail)
            return record

    async def transition(
        self,
        eui64: str | t.EUI64,
        event: LifecycleEvent,
        detail: str = "",
        *,
        readmit: bool = True,
        batch: Batch | None = None,
    ) -> Transition:
        """Move a device by ``event`` as :func:`~zse.provisioning.decide` says, writing the
        change if there is one; returns the transition with the actions for the caller to
        carry out. :class:`~zse.provisioning.IllegalTransition` if the state does not allow
        the event (nothing written). ``batch``: the caller's changes to this registry's
        store, committed with the change (one transaction), or alone when there is none."""
        async with self._lock:
            current = self.get(eui64)
            step = decide(current, event, readmit=readmit)
            if step.write and step.after is not None:
                await self._commit(step.after, event.value, current.state, detail, batch)
            elif batch is not None:
                await self.store.commit(batch)
            return step

    async def refused(
        self,
        eui64: str | t.EUI64,
        event: LifecycleEvent,
        detail: str,
        *,
        batch: Batch | None = None,
    ) -> None:
        """Write an audit entry (event ``refused``, the state unchanged) for ``event`` seen
        on the network but refused in the device's state, e.g. a de-provisioned device seen
        joining or running key establishment; the record itself is not changed. ``batch``:
        the caller's changes to this registry's store, committed with it."""
        async with self._lock:
            current = self.get(eui64)
            text = f"{event.value} refused: {detail}" if detail else f"{event.value} refused"
            await self._commit(current, "refused", current.state, text, batch)

    async def set_groups(self, eui64: str | t.EUI64, groups: Iterable[str]) -> DeviceRecord:
        """Replace a device's groups (a list of group names; a bare string is refused with
        :class:`InvalidGroups`)."""
        names = group_names(groups)
        async with self._lock:
            current = self.get(eui64)
            record = replace(current, groups=names)
            detail = ",".join(sorted(record.groups))
            await self._commit(record, "groups", current.state, detail)
            return record

    async def import_csv(self, lines: Iterable[str]) -> ImportReport:
        """Register the devices of a devices CSV given as text lines (:mod:`zse.device_csv`:
        a header naming the columns ``eui64``, ``install_code`` and optionally ``label``,
        ``groups`` and ``link_key`` — ``zse installcode``'s output imports unchanged).

        Each bad row (bad EUI-64 or install code, a link key that is not the code's, too many
        cells, a device already registered, a duplicate in the file) is reported with its line
        number and not registered; the good rows are. A file that is not a devices CSV (no
        header, no device row) raises :class:`~zse.device_csv.DeviceCsvError`.
        """
        registered: list[str] = []
        errors: list[str] = []
        for row in read_devices(lines):
            if isinstance(row, DeviceCsvError):
                errors.append(str(row))
                continue
            try:
                record = await self.register(
                    row.eui64, row.install_code, label=row.label, groups=row.groups
                )
            except (DecodeError, RegistryError) as exc:
                errors.append(f"line {row.line}: {exc}")
                continue
            registered.append(record.eui64)
        return ImportReport(registered=registered, errors=errors)

    async def _commit(
        self,
        record: DeviceRecord,
        event: str,
        from_state: LifecycleState | None,
        detail: str,
        batch: Batch | None = None,
    ) -> None:
        audit = {
            "time": self.clock(),
            "eui64": record.eui64,
            "event": event,
            "from_state": None if from_state is None else from_state.value,
            "to_state": record.state.value,
            "detail": detail,
        }
        batch = Batch() if batch is None else batch
        batch.put(_DEVICES, record.eui64, record.to_json()).append(_AUDIT, event, audit)
        try:
            await self.store.commit(batch)  # the audit trail is a record, not an outbox to report
        except BaseException:
            if batch.landed is not None:  # cancelled during its transaction: stored
                self._hold(record)
            raise
        self._hold(record)

    def _hold(self, record: DeviceRecord) -> None:
        """Hold ``record`` as stored (a commit cancelled during its transaction too, which
        the store carries out, :attr:`Batch.landed <zse.store.Batch.landed>`: else the
        device was not registered until a restart, and registering it again was written
        twice)."""
        self._devices[record.eui64] = record
        self._by_code[record.install_code] = record.eui64
