"""Provisioning over meter gateways, carried out through the work queue (docs/adr/0020).

When the headend's meters are gateways (``zse mqtt`` bridges, :mod:`zse.headend.gateway`), the
headend has no meter registry to ask: it keeps **its own record** of each device's lifecycle
(SE 5.4.8.1 provisioning; states as :class:`~zse.provisioning.LifecycleState`) in the table
``headend_lifecycle`` beside the work queue's (:mod:`zse.headend.queue`, same database, same
statements on SQLite and PostgreSQL), and sends the meters its **control commands** as jobs of
their own in ``headend_control``:

* ``provision`` (register and admit a device by MAC address and install code), ``deprovision``,
  ``cancel_message`` (SE D.5.2.3.2) and ``cancel_load_control`` (D.2.2.3.2) to one device,
  the bridge's commands of the same names (docs/mqtt.md);
* each job's key is its idempotency key (the MQTT correlation id): enqueuing it again adds
  nothing, and a worker that delivers it again after a crash or a timeout is answered from the
  gateway's record instead of the command being carried out twice;
* a gateway that does not answer keeps the job (same key) for a later try on the headend's
  back-off (:func:`~zse.headend.core.retry_delay`); an answer ends it (``done``, or ``failed``
  with the gateway's reason) and erases its payload, so an install code stays in the database
  only until its meter has it;
* a cancel whose device (or gateway) is not reached is given up as a delivery is, by the
  core's rule (:func:`~zse.headend.core.after_miss`), the headend's give-up time after the
  cancel (its payload's :data:`~zse.headend.queue.GIVE_UP_AT`).

The API writes a registration (the device's record, NEW, and its ``provision`` job) in one
transaction. The workers, which follow the gateways' ``<prefix>/<meter>/<device>/lifecycle``
events in persistent MQTT sessions, record each ``LifecycleChanged``: an event applies when it
starts where the record stands, or is later than the last one applied (several workers see
each event: a repeat changes nothing). Each change bumps the record's ``version``, so a reader
keeps the newest copy whatever order its reads come back in.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from zse.errors import StoreError
from zse.headend.core import (
    CANCEL_AGAIN,
    CANCEL_GONE,
    CANCEL_OVER,
    CANCEL_REFUSED,
    CANCEL_TOLD,
    GIVE_UP,
    Miss,
    Verdict,
    after_miss,
    given_up_detail,
    retry_delay,
)
from zse.headend.link import Lifecycle
from zse.headend.queue import (
    _OPEN_STATES,
    GIVE_UP_AFTER,
    GIVE_UP_AT,
    KEY_PREFIX,
    JobQueue,
    _as_number,
    _Damaged,
    _integer,
    _json_object,
    _member,
    _number,
    _shown,
    _text,
    first_time,
)
from zse.installcode import canonical_eui64
from zse.provisioning import LifecycleEvent, LifecycleState
from zse.store_engine import checksum

__all__ = [
    "UNTIL",
    "CancelJob",
    "Control",
    "ControlJob",
    "ControlKind",
    "DeviceLifecycle",
    "cancel_detail",
    "control_key",
    "control_sum",
    "joined_after",
    "refusal",
    "untold",
]

LOGGER = logging.getLogger(__name__)

#: History entries kept per device (the oldest go first).
HISTORY = 64

_TABLES = (
    "CREATE TABLE IF NOT EXISTS headend_control ("
    " key TEXT PRIMARY KEY, kind TEXT NOT NULL, meter TEXT NOT NULL, device TEXT NOT NULL,"
    " payload TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',"
    " failures INTEGER NOT NULL DEFAULT 0, not_before DOUBLE PRECISION NOT NULL,"
    " lease_owner TEXT, lease_until DOUBLE PRECISION, updated DOUBLE PRECISION NOT NULL,"
    " tries INTEGER NOT NULL DEFAULT 0, send BIGINT, checksum TEXT)",
    "CREATE INDEX IF NOT EXISTS headend_control_due ON headend_control (state, not_before)",
    "CREATE TABLE IF NOT EXISTS headend_lifecycle ("
    " device TEXT PRIMARY KEY, meter TEXT NOT NULL, state TEXT NOT NULL,"
    " joined INTEGER NOT NULL DEFAULT 0, generation INTEGER NOT NULL DEFAULT 1,"
    " time BIGINT NOT NULL, detail TEXT NOT NULL DEFAULT '', history TEXT NOT NULL,"
    " version INTEGER NOT NULL DEFAULT 1, updated DOUBLE PRECISION NOT NULL,"
    " deprovision_asked INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS headend_lifecycle_updated ON headend_lifecycle (updated)",
)
#: The columns added after the tables' first form: (table, name, SQL type), added when
#: missing; ``checksum`` (:func:`control_sum`) is NULL in a row written before it, which is
#: unchecked until its next change (which writes it).
_ADDED = (
    ("headend_control", "tries", "INTEGER NOT NULL DEFAULT 0"),
    ("headend_control", "send", "BIGINT"),
    ("headend_control", "checksum", "TEXT"),
    ("headend_lifecycle", "deprovision_asked", "INTEGER NOT NULL DEFAULT 0"),
)
#: A new job is due at once (``not_before`` 0: on any worker's clock, whatever the API's).
_ENQUEUE = (
    "INSERT INTO headend_control (key, kind, meter, device, payload, state, not_before,"
    " updated, send, checksum) VALUES (?, ?, ?, ?, ?, 'ready', 0, ?, ?, ?)"
    " ON CONFLICT (key) DO NOTHING"
)
#: Due jobs and expired leases, oldest first; a cancel only once no delivery of its send to
#: its device is leased (a delivery under way, or one whose worker died, goes first); a
#: ``deprovision`` only once the ``provision`` of the same registration (its key with the
#: other kind: :func:`control_key` of the device and its generation) is answered.
_CLAIM = (
    "UPDATE headend_control SET state = 'leased', lease_owner = ?, lease_until = ?"
    " WHERE key IN (SELECT key FROM headend_control"
    " WHERE ((state = 'ready' AND not_before <= ?) OR (state = 'leased' AND lease_until <= ?))"
    " AND NOT EXISTS (SELECT 1 FROM headend_jobs WHERE headend_jobs.send = headend_control.send"
    " AND headend_jobs.device = headend_control.device AND headend_jobs.state = 'leased')"
    " AND NOT (kind = 'deprovision' AND EXISTS (SELECT 1 FROM headend_control AS provision"
    " WHERE provision.key = replace(headend_control.key, ':deprovision:', ':provision:')"
    " AND provision.kind = 'provision'"
    " AND provision.state IN ('ready', 'leased')))"
    " ORDER BY not_before, updated, key LIMIT ?{lock})"
    " RETURNING key, kind, meter, device, payload, send, state, detail, failures, tries,"
    " not_before, updated, checksum"
)
_LIFE_COLUMNS = (
    "device, meter, state, joined, generation, time, detail, history, version, updated,"
    " deprovision_asked"
)
_LIFE_SELECT = "SELECT {columns} FROM headend_lifecycle{where}"
_LIFE_ROW = _LIFE_SELECT.format(columns=_LIFE_COLUMNS, where=" WHERE device = ?{lock}")
_LIFE_UPDATE = (
    "UPDATE headend_lifecycle SET meter = ?, state = ?, joined = ?, generation = ?, time = ?,"
    " detail = ?, history = ?, version = ?, updated = ?, deprovision_asked = ? WHERE device = ?"
)
_LIFE_INSERT = (
    "INSERT INTO headend_lifecycle (device, meter, state, joined, generation, time, detail,"
    " history, version, updated, deprovision_asked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: The API asked to de-provision a device's registration (:meth:`Control.deprovision`): its
#: record marked, in the statement that reads it back.
_LIFE_ASKED = (
    "UPDATE headend_lifecycle SET deprovision_asked = generation, version = version + 1,"
    " updated = ? WHERE device = ? AND meter = ? AND generation = ? RETURNING device, meter,"
    " state, joined, generation, time, detail, history, version, updated, deprovision_asked"
)
#: A damaged control job set aside (``{key}``: :meth:`~zse.headend.queue._Connection.key_match`):
#: never sent, purged or claimed again; its row kept (but ``detail``: why, and the lease).
_SET_ASIDE = (
    "UPDATE headend_control SET state = 'damaged', detail = ?, lease_owner = NULL,"
    " lease_until = NULL, updated = ? WHERE {key}"
)
#: Why a control job whose row does not match its :func:`control_sum` was set aside.
_NOT_MATCHING = "damaged control job row (checksum: the row does not match it): set aside"
#: A control job's row as :meth:`Control.complete` reads it: :func:`control_sum`'s columns,
#: the lease's owner, the sum.
_CONTROL_ROW = (
    "SELECT key, kind, meter, device, payload, send, state, detail, failures, tries,"
    " not_before, updated, lease_owner, checksum FROM headend_control WHERE key = ?{lock}"
)
#: The answered control jobs a purge deletes (:meth:`Control.purge`), with their sums.
_PURGED = (
    "SELECT key, kind, meter, device, payload, send, state, detail, failures, tries,"
    " not_before, updated, checksum FROM headend_control"
    " WHERE state IN ('done', 'failed') AND updated < ? ORDER BY key{lock}"
)
_DELETE = "DELETE FROM headend_control WHERE {key}"
#: A device's open cancel jobs (:meth:`Control.forsake`), with their sums.
_FORSAKEN = (
    "SELECT key, kind, meter, device, payload, send, state, detail, failures, tries,"
    " not_before, updated, checksum FROM headend_control WHERE device = ? AND kind IN (?, ?)"
    " AND state IN ('ready', 'leased') ORDER BY key{lock}"
)
#: A control job's row changed, with its :func:`control_sum`.
_UPDATE = (
    "UPDATE headend_control SET state = ?, payload = ?, detail = ?, failures = ?, tries = ?,"
    " not_before = ?, lease_owner = NULL, lease_until = NULL, updated = ?, checksum = ?"
    " WHERE key = ?"
)
#: Tries of a command its gateway stopped while carrying out, before it is given up.
CUT_SHORT_TRIES = 5
#: A cancel job's payload key, kept from the command: when the send is over (the workers'
#: clock), after which a Cancel its device has not acknowledged is no longer sent again.
UNTIL = "until"
#: A cancel job's payload keys that are the headend's, never sent: :data:`UNTIL`, and when
#: the cancel is given up and how long after it (:data:`~zse.headend.queue.GIVE_UP_AT`,
#: :data:`~zse.headend.queue.GIVE_UP_AFTER`, as a delivery job's). A cancel job queued
#: before those has none: its give-up time is counted from its first miss read after, with
#: the default span (:data:`~zse.headend.core.GIVE_UP`), and kept in its payload.
_OWN = frozenset({UNTIL, GIVE_UP_AT, GIVE_UP_AFTER})
#: Cancels: sent again (new correlation id) while the device has not acknowledged them.
_CANCELS = frozenset({"cancel_message", "cancel_load_control"})
#: A device skipped in one of these states is never told: its cancel ends.
_NEVER_TOLD = ("pending de-provisioning", "de-provision complete", "not registered")
#: A cancel job's ``detail`` when the send's window ended before its device was told (why).
_TOO_LATE = "not told before the send was over ({why})"
#: A given-up job's ``detail`` begins so (:func:`~zse.headend.core.given_up_detail`).
_GIVEN_UP_HEAD = "given up: "
#: A cancel job waiting to be sent again has a ``detail`` beginning so (its device did not
#: take it: :data:`~zse.headend.core.CANCEL_AGAIN`).
_AGAIN_HEAD = CANCEL_AGAIN.split("{why}", 1)[0]


class ControlKind(enum.Enum):
    """A control command: the bridge's command of that name (docs/mqtt.md)."""

    PROVISION = "provision"
    DEPROVISION = "deprovision"
    CANCEL_MESSAGE = "cancel_message"
    CANCEL_LOAD_CONTROL = "cancel_load_control"


@dataclass(frozen=True, kw_only=True)
class ControlJob:
    """A claimed control job: send command ``kind`` with ``payload`` (its fields but the
    correlation id, :attr:`correlation_id`) to ``meter``'s gateway, about ``device``;
    ``tries``: the times its gateway stopped while carrying it out."""

    key: str
    kind: ControlKind
    meter: str
    device: str
    payload: dict[str, Any] = field(repr=False)  # a provision's holds the install code
    tries: int = 0

    @property
    def correlation_id(self) -> str:
        """This try's idempotency key: the job's key, then ``<key>:<try>`` once its gateway
        was cut short carrying it out (a repeat of the old id would only say so again)."""
        return self.key if not self.tries else f"{self.key}:{self.tries}"

    def command(self) -> dict[str, Any]:
        """The command's JSON body (without the headend's own :data:`UNTIL` and give-up
        time)."""
        fields = {k: v for k, v in self.payload.items() if k not in _OWN}
        return {"correlation_id": self.correlation_id, **fields}


@dataclass(frozen=True, kw_only=True)
class CancelJob:
    """Where the cancel job of ``send`` to ``device`` stands (:meth:`Control.cancels`): its
    state, detail and the time of its last change (the workers' clock)."""

    send: int
    device: str
    state: str
    detail: str
    updated: float

    def shown(self) -> str | None:
        """The detail of the device's cancelled copy (:func:`cancel_detail`)."""
        return cancel_detail(self.state, self.detail)

    @property
    def open(self) -> bool:
        """Whether the Cancel may still be sent (the job waits, or is being carried out):
        the send is not ``finished`` until it is over (done, given up, failed or set aside)."""
        return self.state in _OPEN_STATES


@dataclass(frozen=True, kw_only=True)
class DeviceLifecycle:
    """The headend's record of a device on a gateway meter: its state, whether it ever
    joined, its registration number, the meter time of the last event applied, the last
    refusal of a command (``detail``), its history (oldest first), the record's version and
    the registration whose de-provisioning the API asked for (0: none; :attr:`leaving`)."""

    device: str
    meter: str
    state: LifecycleState
    joined: bool
    generation: int
    time: int
    detail: str
    history: tuple[dict[str, Any], ...]
    version: int
    updated: float
    deprovision_asked: int = 0

    @property
    def leaving(self) -> bool:
        """Whether the API asked to de-provision this registration (SE 5.4.8.1), its
        gateway maybe not yet told (its ``deprovision`` job queued): the device is sent
        nothing more, as in process, where its state changes at once. Not a state of its
        own: until its gateway's event it stays where it is (a MAC is not free before)."""
        return self.deprovision_asked == self.generation

    def _values(self) -> tuple[Any, ...]:
        return (
            self.meter,
            self.state.value,
            int(self.joined),
            self.generation,
            self.time,
            self.detail,
            json.dumps(list(self.history[-HISTORY:])),
            self.version,
            self.updated,
            self.deprovision_asked,
            self.device,
        )


def _lifecycle(row: Sequence[Any]) -> DeviceLifecycle:
    """The record of a ``headend_lifecycle`` row; :class:`StoreError` (naming the device,
    cut short, and the column) if the row is damaged."""
    try:
        return _read_lifecycle(row)
    except _Damaged as exc:
        raise StoreError(
            f"device {_shown(row[0])}: damaged lifecycle record ({exc}); move the row "
            "away or register the device again"
        ) from None


def _read_lifecycle(row: Sequence[Any]) -> DeviceLifecycle:
    try:
        state = LifecycleState(_text(row[2], "state"))
    except _Damaged:
        raise
    except ValueError:
        raise _Damaged("state: not a lifecycle state") from None
    try:
        history = json.loads(_text(row[7], "history"))
    except _Damaged:
        raise
    except (ValueError, RecursionError):
        raise _Damaged("history: not JSON") from None
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise _Damaged("history: not a list of entries")
    return DeviceLifecycle(
        device=_text(row[0], "device"),
        meter=_text(row[1], "meter"),
        state=state,
        joined=bool(_integer(row[3], "joined")),
        generation=_integer(row[4], "generation"),
        time=_integer(row[5], "time"),
        detail=_text(row[6], "detail"),
        history=tuple(history),
        version=_integer(row[8], "version"),
        updated=_number(row[9], "updated"),
        deprovision_asked=_integer(row[10], "deprovision_asked"),
    )


def _control_job(r: Sequence[Any]) -> ControlJob:
    """The :class:`ControlJob` of a row of :data:`_CLAIM`; :class:`_Damaged` naming the
    column that does not read back, or if the row does not match its :func:`control_sum`
    (a row written before it, NULL, is not checked)."""
    kind = _member(ControlKind, r[1], "kind", "a control command")
    payload = _json_object(r[4], "payload")
    job = ControlJob(
        key=_text(r[0], "key"),
        kind=kind,
        meter=_text(r[2], "meter"),
        device=_text(r[3], "device"),
        payload=payload,
        tries=_integer(r[9], "tries"),
    )
    if not _sum_matches(r):
        raise _Damaged("checksum: the row does not match it")
    return job


def control_sum(columns: Sequence[object]) -> str:
    """The checksum of a control job's row (what its command is, and its progress), written
    with every change of it and checked wherever the job is acted on (claimed, answered,
    purged): a flipped bit in a payload's text (still JSON), in its state, counts (``tries``
    makes the correlation id) or times would otherwise send another command, resume a
    cancel that is over, or purge an answered one early (queued again by the API, it is
    carried out twice). As :func:`~zse.headend.queue.state_sum`, ``ready`` and ``leased``
    are one state here and the lease (owner and expiry) is not covered: a claim changes only
    those. ``columns``: ``(key, kind, meter, device, payload, send, state, detail, failures,
    tries, not_before, updated)``, as every statement reading a job's row names them (then
    ``checksum``)."""
    key, kind, meter, device, payload, send, state, detail, failures, tries = columns[:10]
    not_before, updated = (_as_number(c) for c in columns[10:12])
    phase = "open" if state in _OPEN_STATES else state
    return checksum(
        "headend control", key, kind, meter, device, payload, send, phase, detail, failures,
        tries, not_before, updated,
    )  # fmt: skip


def _sum_matches(row: Sequence[Any]) -> bool:
    """Whether ``row`` (:func:`control_sum`'s columns, then the stored sum) matches its
    :func:`control_sum` (no sum, a row written before it: not checked)."""
    stored = row[12]
    return stored is None or control_sum(row[:12]) == stored


def _changed(  # noqa: PLR0917 - a job's changing columns
    row: Sequence[Any],
    state: str,
    payload: object,
    detail: str,
    failures: object,
    tries: object,
    not_before: object,
    updated: float,
) -> tuple[Any, ...]:
    """:data:`_UPDATE`'s parameters: the job of ``row`` (:func:`control_sum`'s columns, as
    read) with these columns, its lease ended, and its :func:`control_sum`."""
    key, kind, meter, device, _, send = row[:6]
    summed = (key, kind, meter, device, payload, send, state, detail, failures, tries)
    total = control_sum((*summed, not_before, updated))
    return (state, payload, detail, failures, tries, not_before, updated, total, key)


async def _counts(db: Any, job: ControlJob, row: Sequence[Any]) -> tuple[int, int]:
    """The failures and tries of ``job``'s ``row`` (:data:`_CONTROL_ROW`), about to change;
    a cancel job's change is notified with the commit: the API shows how it went
    (:func:`cancel_detail`)."""
    if job.kind.value in _CANCELS:
        await db.notify()
    return int(row[8]), int(row[9])


def _float(value: object) -> float | None:
    """A payload's number, or None if it is none."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _cancel_miss(job: ControlJob, payload: str, failures: int, now: float) -> tuple[Miss, str]:
    """The core's decision (:func:`~zse.headend.core.after_miss`) after a try of the cancel
    ``job`` that did not reach its device or gateway at ``now``, and its payload's text to
    keep: a job queued before give-up times (no :data:`~zse.headend.queue.GIVE_UP_AT`) gets
    one from now, the default span after (:data:`~zse.headend.core.GIVE_UP`)."""
    deadline = _float(job.payload.get(GIVE_UP_AT))
    if deadline is None:
        deadline = now + GIVE_UP
        given = {**job.payload, GIVE_UP_AT: deadline, GIVE_UP_AFTER: GIVE_UP}
        payload = json.dumps(given, sort_keys=True)
    miss = after_miss(
        failures,
        now=now,
        give_up_at=deadline,
        window_end=_float(job.payload.get(UNTIL)),
        cancel=True,
    )
    return miss, payload


def control_key(kind: ControlKind, *parts: object) -> str:
    """A control job's key: ``zse-headend:<kind>:<parts...>``."""
    return ":".join((KEY_PREFIX, kind.value, *(str(p) for p in parts)))


class Control:
    """The control jobs and the devices' lifecycle records of a work queue's database (see
    the module notes); :meth:`open` creates the tables if missing."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self._unreadable: set[str] = set()  # damaged records :meth:`devices` said
        self._unknown: set[tuple[str, str]] = set()  # unknown devices :meth:`record` said
        self._foreign: set[tuple[str, str]] = set()  # other meters' devices it said

    @classmethod
    async def open(cls, queue: JobQueue) -> Control:
        """The tables in ``queue``'s database, created once whichever process comes first."""
        async with queue.transaction("create the control tables") as db:
            if queue.locking:
                await db.execute("SELECT pg_advisory_xact_lock(hashtext('zse.headend_control'))")
            for sql in _TABLES:
                await db.execute(sql)
            await _add_columns(db, postgres=queue.locking)
        return cls(queue)

    def _lock(self) -> str:
        return " FOR UPDATE" if self.queue.locking else ""

    # -- the API's side --------------------------------------------------------------------------

    async def register(
        self, device: str, meter: str, payload: dict[str, Any], *, time: int, now: float
    ) -> DeviceLifecycle:
        """Record ``device`` on ``meter`` as NEW (a new registration: its number goes up) and
        queue its ``provision`` command with ``payload`` (MAC, install code, label), in one
        transaction; the new record."""
        async with self.queue.transaction("register a device") as db:
            rows = await db.fetch(_LIFE_ROW.format(lock=self._lock()), (device,))
            entry = _entry(time, "register", None, LifecycleState.NEW, "registered by headend")
            if rows:
                old = _lifecycle(rows[0])
                record = replace(
                    old,
                    meter=meter,
                    state=LifecycleState.NEW,
                    joined=False,
                    generation=old.generation + 1,
                    time=time,
                    detail="",
                    history=(*old.history, {**entry, "from_state": old.state.value}),
                    version=old.version + 1,
                    updated=now,
                    deprovision_asked=0,
                )
                await db.execute(_LIFE_UPDATE, record._values())
            else:
                record = DeviceLifecycle(
                    device=device,
                    meter=meter,
                    state=LifecycleState.NEW,
                    joined=False,
                    generation=1,
                    time=time,
                    detail="",
                    history=(entry,),
                    version=1,
                    updated=now,
                )
                values = record._values()
                await db.execute(_LIFE_INSERT, (values[-1], *values[:-1]))
            key = control_key(ControlKind.PROVISION, device, record.generation)
            await _enqueue(db, key, ControlKind.PROVISION, meter, device, payload, now)
        return record

    async def deprovision(
        self, device: str, meter: str, generation: int, payload: dict[str, Any], *, now: float
    ) -> DeviceLifecycle | None:
        """Queue the ``deprovision`` command (``payload``: the MAC) of ``device``'s
        registration ``generation`` on ``meter`` (queued once however often it is asked for)
        and mark its record asked (:attr:`DeviceLifecycle.leaving`: sent nothing more, by
        this API process, another or the next, before its gateway's event), in one
        transaction; the record marked, or None (nothing done) if it is no longer that
        registration on that meter (registered again meanwhile)."""
        async with self.queue.transaction("de-provision a device") as db:
            rows = await db.fetch(_LIFE_ASKED, (now, device, meter, generation))
            if not rows:
                return None
            record = _lifecycle(rows[0])
            key = control_key(ControlKind.DEPROVISION, device, generation)
            await _enqueue(db, key, ControlKind.DEPROVISION, meter, device, payload, now)
            await db.notify()  # the other API processes' records: sent nothing more there
        return record

    async def enqueue(
        self,
        jobs: Sequence[tuple[str, ControlKind, str, str, dict[str, Any]]],
        *,
        now: float,
    ) -> None:
        """Queue control jobs ``(key, kind, meter, device, payload)`` in one transaction (a
        key already queued is kept as it is)."""
        async with self.queue.transaction("queue control commands") as db:
            for key, kind, meter, device, payload in jobs:
                await _enqueue(db, key, kind, meter, device, payload, now)

    async def devices(self, *, since: float | None = None) -> list[DeviceLifecycle]:
        """The lifecycle records, only those updated at ``since`` or later if given."""
        where, params = ("", ()) if since is None else (" WHERE updated >= ?", (since,))
        sql = _LIFE_SELECT.format(columns=_LIFE_COLUMNS, where=where + " ORDER BY device")
        async with self.queue.transaction("read the devices' lifecycle") as db:
            rows = await db.fetch(sql, params)
        found: list[DeviceLifecycle] = []
        for r in rows:
            try:
                found.append(_read_lifecycle(r))
            except _Damaged as exc:  # left out (kept in the table), said once per device
                said = _shown(r[0])
                if said not in self._unreadable:
                    self._unreadable.add(said)
                    LOGGER.warning(
                        "%s: device %s: damaged lifecycle record (%s): left out",
                        self.queue.where,
                        said,
                        exc,
                    )
        return found

    async def cancels(
        self, *, since: float | None = None, send: int | None = None
    ) -> list[CancelJob]:
        """The cancel jobs (``cancel_message``, ``cancel_load_control``), only those changed
        at ``since`` or later, of ``send``, if given: the API shows how each went
        (:func:`cancel_detail`) until the workers' purge deletes it. A job without its send
        (written before the column was kept) is left out."""
        sql = (
            "SELECT send, device, state, detail, updated FROM headend_control WHERE kind IN (?, ?)"
        )
        params: tuple[Any, ...] = tuple(sorted(_CANCELS))
        if since is not None:
            sql, params = sql + " AND updated >= ?", (*params, since)
        if send is not None:
            sql, params = sql + " AND send = ?", (*params, send)
        async with self.queue.transaction("read the cancel jobs") as db:
            rows = await db.fetch(sql + " ORDER BY key", params)
        found: list[CancelJob] = []
        for r in rows:
            with contextlib.suppress(_Damaged):  # a damaged row is the claim's to set aside
                found.append(
                    CancelJob(
                        send=_integer(r[0], "send"),
                        device=_text(r[1], "device"),
                        state=_text(r[2], "state"),
                        detail=_text(r[3], "detail"),
                        updated=_number(r[4], "updated"),
                    )
                )
        return found

    async def forsake(self, device: str, *, now: float) -> None:
        """Send ``device`` no more Cancels (de-provisioned: it may come back as another
        retailer's, :meth:`zse.headend.queue.JobQueue.forsake`): its cancel jobs still open
        end ``done``, never told (:data:`~zse.headend.core.CANCEL_GONE`); one being sent now
        is its worker's to send, its answer no longer recorded (:meth:`complete`). A damaged
        job is left to the claim, which sets it aside."""
        async with self.queue.transaction("end a device's cancels") as db:
            rows = await db.fetch(_FORSAKEN.format(lock=self._lock()), (device, *sorted(_CANCELS)))
            ended = [
                _changed(r, "done", "{}", CANCEL_GONE, r[8], r[9], now, now)
                for r in rows
                if _sum_matches(r)
            ]
            if ended:
                await db.execute_many(_UPDATE, ended)
                await db.notify()

    async def jobs(self) -> list[tuple[str, str, str]]:
        """Every control job as ``(key, state, detail)`` (for tests and operators)."""
        async with self.queue.transaction("read control jobs") as db:
            rows = await db.fetch("SELECT key, state, detail FROM headend_control ORDER BY key")
        return [(r[0], r[1], r[2]) for r in rows]

    # -- the workers' side -----------------------------------------------------------------------

    async def purge(self, *, before: float) -> int:
        """Delete the answered control jobs last updated before ``before``; how many (the
        devices' records stay). A job whose row does not match its :func:`control_sum` is
        set aside (:data:`~zse.headend.queue.DAMAGED`) instead."""
        async with self.queue.transaction("purge answered control jobs") as db:
            rows = await db.fetch(_PURGED.format(lock=self._lock()), (before,))
            gone: list[tuple[Any, ...]] = []
            aside: list[tuple[Any, ...]] = []
            for r in rows:
                if _sum_matches(r):
                    gone.append((db.key_param(r[0]),))
                else:  # its state or time may not be what was written: kept, set aside
                    aside.append((_NOT_MATCHING, before, db.key_param(r[0])))
                    LOGGER.warning(
                        "%s: control job %s: %s", self.queue.where, _shown(r[0]), _NOT_MATCHING
                    )
            if gone:
                await db.execute_many(_DELETE.format(key=db.key_match("key")), gone)
            if aside:
                await db.execute_many(_SET_ASIDE.format(key=db.key_match("key")), aside)
        return len(gone)

    async def claim(
        self, owner: str, *, now: float, lease: float, limit: int = 16
    ) -> list[ControlJob]:
        """Lease up to ``limit`` due control jobs to ``owner`` until ``now + lease``; a job
        whose row is damaged is set aside in the same transaction (state
        :data:`~zse.headend.queue.DAMAGED`, ``detail`` naming the column, logged once as a
        warning without its content: a provision's payload holds an install code) and the
        others are claimed."""
        sql = _CLAIM.format(lock=" FOR UPDATE SKIP LOCKED" if self.queue.locking else "")
        jobs: list[ControlJob] = []
        async with self.queue.transaction("claim control jobs") as db:
            rows = await db.fetch(sql, (owner, now + lease, now, now, limit))
            aside: list[tuple[Any, ...]] = []
            for r in rows:
                try:
                    jobs.append(_control_job(r))
                except _Damaged as exc:
                    reason = f"damaged control job row ({exc}): set aside, not sent"
                    aside.append((reason, now, db.key_param(r[0])))
                    LOGGER.warning("%s: control job %s: %s", self.queue.where, _shown(r[0]), reason)
            if aside:
                await db.execute_many(_SET_ASIDE.format(key=db.key_match("key")), aside)
        return jobs

    async def complete(
        self,
        job: ControlJob,
        owner: str,
        *,
        answered: bool,
        refused: str = "",
        cut_short: bool = False,
        untold: str = "",
        now: float,
    ) -> bool:
        """Record the gateway's answer to ``job`` while ``owner`` holds its lease and the
        job is still the try answered (False: it does not, or its ``tries``, the correlation
        id's last part, moved on since: a copy of ``owner`` that stalled past its lease
        answering an older id while the same name sends a newer one; nothing written): not
        ``answered``, it is tried again later with the same correlation id; ``cut_short``
        (the gateway answered ``started``: it stopped while carrying the command out), again
        later with a new one (:attr:`ControlJob.tries` + 1; the gateway's commands are safe
        to carry out again), up to :data:`CUT_SHORT_TRIES` times; a cancel the device did
        not acknowledge (``untold``: why, :func:`untold`) is sent again on the back-off with a
        new one, and one not answered with the same, until
        the send is over (its payload's :data:`UNTIL`) or the cancel's give-up time has
        passed (:func:`~zse.headend.core.after_miss`; its payload's
        :data:`~zse.headend.queue.GIVE_UP_AT`: ``done``, or ``failed`` if its gateway never
        answered, its ``detail`` saying why); otherwise it ends (``refused``: why the gateway
        refused it, also the device record's ``detail`` for a provision or de-provision) and
        its payload is erased; a cancel job's change is notified (PostgreSQL), so that the API
        shows it at once (:func:`cancel_detail`). A job whose row does not match its
        :func:`control_sum` is set aside
        (:data:`~zse.headend.queue.DAMAGED`: nothing recorded, False)."""
        async with self.queue.transaction("record a control answer") as db:
            rows = await db.fetch(_CONTROL_ROW.format(lock=self._lock()), (job.key,))
            # not its lease, or a stalled copy of ``owner`` answering an older try (tries)
            if (
                not rows
                or rows[0][6] != "leased"
                or rows[0][12] != owner
                or rows[0][9] != job.tries
            ):
                return False
            row = (*rows[0][:12], rows[0][13])  # control_sum's columns, the sum
            if not _sum_matches(row):
                aside = (_NOT_MATCHING, now, db.key_param(row[0]))
                await db.execute(_SET_ASIDE.format(key=db.key_match("key")), aside)
                LOGGER.warning("%s: control job %s: %s", self.queue.where, job.key, _NOT_MATCHING)
                return False
            failures, tries = await _counts(db, job, row)
            if cut_short:
                tries += 1
                refused = refused or "the gateway stopped while carrying it out"
                if tries >= CUT_SHORT_TRIES:
                    refused = f"{refused} ({tries} times)"
            again = bool(untold) and not refused and job.kind.value in _CANCELS
            if job.kind.value in _CANCELS and (again or not answered):
                # its device (or its gateway) not reached: the core's rule, as a delivery's
                miss, payload = _cancel_miss(job, row[4], failures, now)
                why = untold if again else refused
                if miss.verdict is Verdict.AGAIN:
                    if again:
                        tries += 1
                        refused = CANCEL_AGAIN.format(why=why)
                    later = now + miss.delay
                    retried = _changed(
                        row, "ready", payload, refused[:200], miss.failures, tries, later, now
                    )
                    await db.execute(_UPDATE, retried)
                    return True
                if miss.verdict is Verdict.OVER:
                    ending = _TOO_LATE.format(why=why)
                else:
                    span = _float(job.payload.get(GIVE_UP_AFTER)) or GIVE_UP
                    ending = given_up_detail(span, why, cancel=True)
                state = "done" if again else "failed"  # failed: its gateway never answered
                ended = _changed(row, state, "{}", ending[:200], miss.failures, tries, now, now)
                await db.execute(_UPDATE, ended)
                return True
            if not answered or (cut_short and tries < CUT_SHORT_TRIES):
                later = now + retry_delay(failures + 1)
                retried = _changed(row, "ready", row[4], refused, failures + 1, tries, later, now)
                await db.execute(_UPDATE, retried)
                return True
            state, detail = ("failed" if refused else "done"), refused or untold[:200]
            ended = _changed(row, state, "{}", detail, row[8], row[9], row[10], now)
            await db.execute(_UPDATE, ended)
            if refused and job.kind in (ControlKind.PROVISION, ControlKind.DEPROVISION):
                await self._refused(db, job, refused, now)
        return True

    async def _refused(self, db: Any, job: ControlJob, refused: str, now: float) -> None:
        """The device's record says its gateway refused ``job`` (a provision or de-provision)
        and why (``detail``); a refused de-provisioning of its registration is no longer
        asked (:attr:`DeviceLifecycle.leaving`): the device stays, sent the sends again."""
        found = await db.fetch(_LIFE_ROW.format(lock=self._lock()), (job.device,))
        if not found:
            return
        old = _lifecycle(found[0])
        detail = f"{job.kind.value} refused: {refused}"[:200]
        new = replace(old, detail=detail, version=old.version + 1, updated=now)
        if job.key == control_key(ControlKind.DEPROVISION, job.device, old.deprovision_asked):
            new = replace(new, deprovision_asked=0)
        await db.execute(_LIFE_UPDATE, new._values())
        await db.notify()

    async def record(self, event: Lifecycle, *, now: float) -> bool:
        """A gateway's ``LifecycleChanged`` for a device of this headend on that meter (True:
        recorded), else (a repeat, a stale copy that changes nothing, another meter's device,
        a device this headend has no record of) nothing changes (False).

        Its state applies when it starts where the record stands or is later than the last
        one applied (several workers see each event, and one device's events may reach
        different workers: an earlier one can come last). Its ``joined`` part
        (:func:`joined_after`, the in-process headend's rule) applies even when its state is
        stale, unless a later ``joined``, ``left``, ``reregister`` or registration is
        recorded: the event goes into the history then, at its time, the state unchanged.
        A device without a record is logged once per (meter, device) as a warning: another
        headend sharing the broker and topic prefix may have taken this headend's event
        (docs/headend.md, "One headend per broker and topic prefix")."""
        key = canonical_eui64(event.device)
        async with self.queue.transaction("record a lifecycle event") as db:
            rows = await db.fetch(_LIFE_ROW.format(lock=self._lock()), (key,))
            if not rows:
                self._said(self._unknown, event.meter, key, _NO_RECORD)
                return False
            old = _lifecycle(rows[0])
            entry = _entry(event.time, event.event, event.from_state, event.to_state, event.detail)
            if old.meter != event.meter:  # a meter reports only on its own devices
                self._said(self._foreign, event.meter, key, _ANOTHER_METERS.format(old.meter))
                return False
            if entry in old.history:
                return False
            joined = joined_after(old.joined, event.event)
            if (event.from_state is not old.state) and event.time <= old.time:
                # stale: its state is not applied; its joined part unless a later one is kept
                if joined == old.joined or event.time < _last_joined_change(old.history):
                    return False
                new = replace(
                    old,
                    joined=joined,
                    history=_placed(old.history, entry),
                    version=old.version + 1,
                    updated=now,
                )
            else:
                new = replace(
                    old,
                    state=event.to_state,
                    joined=joined,
                    time=max(old.time, event.time),
                    detail="",
                    history=(*old.history, entry),
                    version=old.version + 1,
                    updated=now,
                )
            await db.execute(_LIFE_UPDATE, new._values())
            await db.notify()
        return True

    def _said(self, said: set[tuple[str, str]], meter: str, device: str, why: str) -> None:
        """Warn, once per (meter, device) in ``said`` (:func:`~zse.headend.queue.first_time`),
        of a lifecycle event not recorded (``why``: no record of the device, or another
        meter's device)."""
        if not first_time(said, (meter, device)):
            return
        LOGGER.warning(
            "%s: a lifecycle event from meter %s on device %s, %s",
            self.queue.where,
            _shown(meter),
            _shown(device),
            why,
        )


#: Why :meth:`Control.record` left an event on a device it has no record of.
_NO_RECORD = (
    "which this headend has no record of: not recorded (registered elsewhere; or another "
    "headend shares the broker and topic prefix, and its workers take this headend's "
    "events: one headend per broker and prefix, docs/headend.md)"
)
#: Why it left one from a meter on another meter's device (``{}``: that meter, quoted).
_ANOTHER_METERS = "a device of meter {!r}: not recorded (a meter reports only on its own devices)"


#: The lifecycle events that move the ``joined`` flag (:func:`joined_after`), and the
#: headend's own registration entry, which clears it (:meth:`Control.register`).
_JOINED_EVENTS = frozenset({"joined", "left", "reregister", "register"})


def joined_after(joined: bool, event: str) -> bool:
    """Whether a device is on its meter's network after lifecycle ``event`` (its
    :class:`~zse.provisioning.LifecycleEvent` value), ``joined`` before: the in-process
    headend's rule (:func:`zse.provisioning.lifecycle.next_record`), so that both ways of
    serving meters show the same: true once it joined, false once it left or registered
    again; other events leave it."""
    if event == LifecycleEvent.JOINED.value:
        return True
    if event in (LifecycleEvent.LEFT.value, LifecycleEvent.REREGISTER.value):
        return False
    return joined


def _last_joined_change(history: Sequence[dict[str, Any]]) -> int:
    """The time of the last entry of ``history`` that set the ``joined`` flag (0: none)."""
    return max((_time_of(e) for e in history if e.get("event") in _JOINED_EVENTS), default=0)


def _time_of(entry: dict[str, Any]) -> int:
    """A history entry's time (0 if it has none that reads: an entry is not checked)."""
    time = entry.get("time")
    return time if isinstance(time, int) and not isinstance(time, bool) else 0


def _placed(history: tuple[dict[str, Any], ...], entry: dict[str, Any]) -> tuple[Any, ...]:
    """``history`` with a stale ``entry`` at its time: after the entries before it and, of
    those of the same second, after the last one that led to its ``from_state`` (before
    all of that second if none did)."""
    at = len(history)
    while at > 0 and _time_of(history[at - 1]) > entry["time"]:
        at -= 1
    while at > 0 and _time_of(history[at - 1]) == entry["time"]:
        if history[at - 1].get("to_state") == entry["from_state"]:
            break
        at -= 1
    return (*history[:at], entry, *history[at:])


def _entry(
    time: int,
    event: str,
    from_state: LifecycleState | None,
    to_state: LifecycleState,
    detail: str,
) -> dict[str, Any]:
    return {
        "time": time,
        "event": event,
        "from_state": None if from_state is None else from_state.value,
        "to_state": to_state.value,
        "detail": detail,
    }


async def _enqueue(  # noqa: PLR0917 - a job's columns
    db: Any,
    key: str,
    kind: ControlKind,
    meter: str,
    device: str,
    payload: dict[str, Any],
    now: float,
) -> None:
    text = json.dumps(payload, sort_keys=True)
    send = payload.get("message_id", payload.get("issuer_event_id"))  # a cancel's send
    summed = control_sum((key, kind.value, meter, device, text, send, "ready", "", 0, 0, 0, now))
    await db.execute(_ENQUEUE, (key, kind.value, meter, device, text, now, send, summed))


async def _add_columns(db: Any, *, postgres: bool) -> None:
    """Add the columns a table made by an earlier version lacks (:data:`_ADDED`)."""
    if postgres:
        for table, name, kind in _ADDED:
            await db.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {kind}")
        return
    have = {
        (table, row[1])
        for table in sorted({t for t, _, _ in _ADDED})
        for row in await db.fetch(f"PRAGMA table_info({table})")
    }
    for table, name, kind in _ADDED:
        if (table, name) not in have:
            await db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def untold(response: dict[str, Any]) -> str:
    """Why the device of a cancel answered ``ok`` was not told ('' if it acknowledged the
    Cancel, or will never be told: it is being or was de-provisioned)."""
    if response.get("status") != "ok":
        return ""
    for outcome in (response.get("result") or {}).get("outcomes") or ():
        if not isinstance(outcome, dict) or outcome.get("outcome") == "delivered":
            continue
        detail = str(outcome.get("detail") or "")
        if outcome.get("outcome") == "skipped" and detail in _NEVER_TOLD:
            continue
        return f"{outcome.get('outcome')}: {detail}"[:160]
    return ""


def cancel_detail(state: str, detail: str) -> str | None:
    """The ``detail`` the API shows for a device's cancelled copy whose cancel job is in
    ``state`` with ``detail``: the in-process headend's words for the same case
    (:mod:`zse.headend.core`), so that both ways of serving meters say the same; None while
    the job has not been tried (the copy's detail stays).

    - waiting to be sent again: :data:`~zse.headend.core.CANCEL_AGAIN` (the device did not
      take it, or its gateway did not answer: why);
    - ``done``: acknowledged (:data:`~zse.headend.core.CANCEL_TOLD`), the send over first
      (:data:`~zse.headend.core.CANCEL_OVER`) or given up
      (:data:`~zse.headend.core.CANCEL_GIVEN_UP`, the job's words already);
    - ``failed``: given up, its gateway never answering, or refused by the gateway
      (:data:`~zse.headend.core.CANCEL_REFUSED`, also a damaged job set aside)."""
    if state in _OPEN_STATES:
        if not detail or detail.startswith(_AGAIN_HEAD):  # the job's words are the core's
            return detail or None
        return CANCEL_AGAIN.format(why=detail)  # its gateway did not answer (why)
    head, tail = _TOO_LATE.split("{why}")
    if state == "done" and detail.startswith(head) and detail.endswith(tail):
        return CANCEL_OVER.format(why=detail[len(head) : len(detail) - len(tail)])
    if state == "done" or detail.startswith(_GIVEN_UP_HEAD):  # given up: the core's words
        return detail or CANCEL_TOLD
    return CANCEL_REFUSED.format(why=detail)


def refusal(response: dict[str, Any]) -> str:
    """Why a gateway refused a command ('' if it carried it out, or was cut short carrying
    it out: ``started``, tried again, see :meth:`Control.complete`)."""
    status = response.get("status")
    if status in ("ok", "started"):
        return ""
    error = response.get("error") or {}
    return f"{error.get('field')}: {error.get('message')}"[:200]
