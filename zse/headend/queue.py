"""The headend's work queue in the database: one job per (send, device) (docs/adr/0019).

A by-group send (SE D.5.2.3.1, D.2.2.3.1) becomes one row of ``headend_jobs`` per device: what
to deliver on which meter, the device's outcome, and the job's state (``ready`` to deliver at
``not_before``, ``leased`` to one worker until ``lease_until``, ``sent``: nothing more to
deliver). Any number of workers claim ready jobs and expired leases:

* **PostgreSQL**: ``SELECT ... FOR UPDATE SKIP LOCKED`` inside the claiming ``UPDATE``, so two
  workers never claim the same row and never wait on each other; each worker has its own
  connection and no single-writer lock (the API's :class:`~zse.store.Store` keeps its lock: the
  queue's table is beside the store's tables, in the same schema, never touched by the store);
* **SQLite** (the single-process default): the same statements in a ``BEGIN IMMEDIATE``
  transaction, SQLite's one writer at a time being the lock.

A worker records a device's outcome and completes (or reschedules) its job in **one
transaction**, and only while it still holds the lease: a worker killed mid-delivery loses its
lease at ``lease_until``, another claims the job and delivers it again **with the same
idempotency key** (:attr:`Job.key`), which the meter's gateway answers from its record instead
of carrying it out twice. Outcomes only move forward (:func:`zse.headend.core.advance`), so a
report seen twice, or by two workers, is recorded once.

Times are seconds given by the caller (``now``). A :class:`~zse.headend.worker.Worker` on
PostgreSQL passes the database's clock (:meth:`JobQueue.database_time`, measured when it
starts) plus the time its own clock has run since, so workers whose clocks disagree share
one; on SQLite (one machine) its own clock. A job enqueued is due at once whatever the API's
clock says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from zse.errors import StoreError
from zse.headend.core import (
    RANK,
    Outcome,
    SendKind,
    Verdict,
    advance,
    after_miss,
    given_up_detail,
    moved_detail,
)
from zse.se.types import EventStatus
from zse.store_engine import APPLICATION_ID, checksum, hold_virtual_clock, is_postgres
from zse.store_sqlite import (
    WalCheck,
    cannot_open,
    claim_shared,
    header_application_id,
    refuse_odd_neighbours,
    release,
    share,
)

__all__ = [
    "DAMAGED",
    "GIVE_UP_AFTER",
    "GIVE_UP_AT",
    "QUEUE_APPLICATION_ID",
    "Completion",
    "Job",
    "JobQueue",
    "JobRow",
    "ReportedOutcome",
    "open_queue",
]

_E = TypeVar("_E")

LOGGER = logging.getLogger(__name__)

#: The identity of an SQLite work queue file: its header ``application_id`` (ASCII "ZSEQ");
#: a zse store's is :data:`zse.store_engine.APPLICATION_ID`.
QUEUE_APPLICATION_ID = 0x5A534551
#: Where an idempotency key starts (then send, device, try: ``zse-headend:7:000D...:0``).
KEY_PREFIX = "zse-headend"
#: The PostgreSQL notification channel of the queue's changes (the payload: the schema).
CHANNEL = "zse_headend"

_TABLE = (
    "CREATE TABLE IF NOT EXISTS headend_jobs ("
    " send BIGINT NOT NULL, device TEXT NOT NULL, meter TEXT NOT NULL,"
    " kind TEXT NOT NULL, payload TEXT NOT NULL, state TEXT NOT NULL,"
    " outcome TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',"
    " attempts INTEGER NOT NULL DEFAULT 0, tries INTEGER NOT NULL DEFAULT 0,"
    " failures INTEGER NOT NULL DEFAULT 0, not_before DOUBLE PRECISION NOT NULL,"
    " lease_owner TEXT, lease_until DOUBLE PRECISION, updated DOUBLE PRECISION NOT NULL,"
    " checksum TEXT, state_sum TEXT, PRIMARY KEY (send, device))"
)
#: The columns a table made by an earlier version lacks: ``checksum`` (:func:`job_sum`) and
#: ``state_sum`` (:func:`state_sum`), NULL in a row written before them, which is unchecked
#: (``state_sum``: until its next change, which writes it).
_ADDED = (("checksum", "TEXT"), ("state_sum", "TEXT"))
_INDEX = "CREATE INDEX IF NOT EXISTS headend_jobs_due ON headend_jobs (state, not_before)"
#: The jobs not yet sent, in the claim's order: a claim reads these, not the jobs already done
#: (with only the primary key a claim skipped every sent row: quadratic in a send's devices);
#: a meter's devices next to each other, so that a claim takes them together and the
#: gateway link sends them in one publication (ADR 0022).
_OPEN = (
    "CREATE INDEX IF NOT EXISTS headend_jobs_claim ON headend_jobs (send, meter, device)"
    " WHERE state IN ('ready', 'leased')"
)
#: The index of the claim's earlier order (send, device), replaced by :data:`_OPEN`.
_OPEN_BEFORE = "DROP INDEX IF EXISTS headend_jobs_open"
#: Tries at creating the tables: the schema's creation can race the store's (at most once).
_CREATE_ATTEMPTS = 3
#: How far each reader of the outcomes (the headend's API) has read: the purge keeps what a
#: reader has not (``since``: every job updated before it was read).
_READERS = (
    "CREATE TABLE IF NOT EXISTS headend_readers ("
    " reader TEXT PRIMARY KEY, since DOUBLE PRECISION NOT NULL)"
)
#: A new job is due at once (``not_before`` 0: on any worker's clock, whatever the API's).
_INSERT = (
    "INSERT INTO headend_jobs (send, device, meter, kind, payload, state, outcome,"
    " not_before, updated, checksum, state_sum)"
    " VALUES (?, ?, ?, ?, ?, 'ready', 'pending', 0, ?, ?, ?)"
    " ON CONFLICT (send, device) DO NOTHING"
)
#: The jobs a cancel of a send changes (a device, or every device: NULL), but a load control
#: event's over (completed, opted out, rejected: outcomes move forward only) and those set
#: aside: those waiting (new, or a retry's back-off) end unsent; the others' outcome becomes
#: CANCELLED (:meth:`JobQueue.cancel`).
_CANCEL = (
    " WHERE send = ? AND device = COALESCE(?, device) AND state <> 'damaged'"
    " AND NOT (kind = 'load-control' AND outcome IN ('completed', 'opted out', 'rejected'))"
)
#: The jobs of a device that a de-provisioning ends or marks (:meth:`JobQueue.forsake`).
_FORSAKE = " WHERE device = ? AND state IN ('ready', 'leased')"
#: A job deleted (``{device}``: :meth:`_Connection.key_match`).
_DELETE = "DELETE FROM headend_jobs WHERE send = ? AND {device}"
#: The finished jobs a purge deletes (:meth:`JobQueue.purge`).
_PURGED = (
    " WHERE state = 'sent' AND updated < ? AND NOT EXISTS"
    " (SELECT 1 FROM headend_readers WHERE since <= headend_jobs.updated)"
)
#: What a delivery that a cancel overtook says (its outcome: CANCELLED).
NOT_SENT = "cancelled before it was sent"
#: What a delivery whose worker died, of a send cancelled meanwhile, says.
NOT_SENT_AGAIN = "cancelled: a delivery cut short is not sent again"
#: What a job ended unsent because its device was de-provisioned says.
NOT_SENT_DEPROVISIONED = "de-provisioned before it was sent"
#: What a job says that its device reported cancelled (Report Event Status 0x06, SE
#: D.2.3.3.1.1.2 Table D-5), not superseded (0x07): a report's row with no detail is 0x07,
#: or written by a zse that did not tell them apart (the row as it always was: no new column,
#: rows and processes of either version read each other's).
REPORTED_CANCELLED = "cancelled on the device (Report Event Status 0x06)"
#: The (meter, device) pairs of reports refused that a queue remembers having said, of each
#: kind (another meter's device: :meth:`JobQueue._said_foreign`; a job never handed out:
#: :meth:`JobQueue._said_unsent`); past them it forgets and says them again (a gateway's
#: topics are not its memory to fill).
_FOREIGN_SAID = 4096
#: The payload's field of the queue's time (a worker's :meth:`~zse.headend.worker.Worker.now`)
#: after which a device not reached is given up (its outcome ``expired``), and of the
#: seconds after the send that it is (for the detail, :data:`~zse.headend.core.GIVEN_UP`):
#: the headend's, not delivered (:attr:`Job.payload` is without them). A job enqueued before
#: them has neither: never given up. A cancel job carries them too, counted from the cancel
#: (:mod:`zse.headend.control`).
GIVE_UP_AT = "give_up_at"
GIVE_UP_AFTER = "give_up_after"
_CLAIM = (
    "UPDATE headend_jobs SET state = 'leased', lease_owner = ?, lease_until = ?"
    " WHERE (send, device) IN (SELECT send, device FROM headend_jobs"
    " WHERE state IN ('ready', 'leased')"
    " AND ((state = 'ready' AND not_before <= ?) OR (state = 'leased' AND lease_until <= ?))"
    " ORDER BY send, meter, device LIMIT ?{lock})"
    " RETURNING send, device, meter, kind, payload, outcome, tries, checksum,"
    " detail, attempts, failures, not_before, updated, state_sum"
)
#: The rows of several jobs (``{keys}``: one ``(send = ? AND device = ?)`` per job, OR'ed),
#: locked in key order (PostgreSQL) so that two transactions never wait on each other in a
#: circle; the job's meter last (a report moves only its meter's jobs).
_ROWS_OF = (
    "SELECT send, device, outcome, state, lease_owner, attempts, tries, failures,"
    " lease_until, kind, detail, not_before, updated, state_sum, meter"
    " FROM headend_jobs WHERE {keys} ORDER BY send, device{lock}"
)
#: A job's row changed (``{device}``: :meth:`_Connection.key_match`), with its
#: :func:`state_sum`.
_UPDATE_AT = (
    "UPDATE headend_jobs SET state = ?, outcome = ?, detail = ?, attempts = ?, tries = ?,"
    " failures = ?, not_before = ?, lease_owner = ?, lease_until = ?, updated = ?,"
    " state_sum = ? WHERE send = ? AND {device}"
)
_UPDATE = _UPDATE_AT.format(device="device = ?")
#: PostgreSQL: ``_UPDATE`` for many jobs in one statement, each only if its row is still as
#: it was read (outcome, state, lease, counts, detail: compare and set; the detail, which a
#: de-provisioning marks, :meth:`JobQueue.forsake`), the jobs in key order; the keys updated,
#: with a notification (:data:`CHANNEL`) of the change if any.
_SWAP = (
    "WITH v AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[],"
    " $5::text[], $6::integer[], $7::integer[], $8::integer[], $9::float8[], $10::text[],"
    " $11::float8[], $12::float8[], $13::text[], $14::text[], $15::text[], $16::integer[],"
    " $17::integer[], $18::integer[], $19::float8[], $22::text[], $23::text[]) AS v(send,"
    " device, state, outcome, detail, attempts, tries, failures, not_before, lease_owner,"
    " lease_until, updated, was_outcome, was_state, was_owner, was_attempts, was_tries,"
    " was_failures, was_until, state_sum, was_detail) ORDER BY send, device),"
    " u AS (UPDATE headend_jobs AS j SET state = v.state, outcome = v.outcome,"
    " detail = v.detail, attempts = v.attempts, tries = v.tries, failures = v.failures,"
    " not_before = v.not_before, lease_owner = v.lease_owner, lease_until = v.lease_until,"
    " updated = v.updated, state_sum = v.state_sum"
    " FROM v WHERE j.send = v.send AND j.device = v.device"
    " AND j.outcome = v.was_outcome AND j.state = v.was_state"
    " AND j.lease_owner IS NOT DISTINCT FROM v.was_owner AND j.attempts = v.was_attempts"
    " AND j.tries = v.was_tries AND j.failures = v.was_failures"
    " AND j.lease_until IS NOT DISTINCT FROM v.was_until AND j.detail = v.was_detail"
    " RETURNING j.send, j.device)"
    " SELECT send, device, pg_notify($20, $21) FROM u"
)
#: PostgreSQL's errors of a statement that lost a race with another transaction
#: (deadlock_detected, serialization_failure): undone whole, to be read and tried again.
_RACES = ("40P01", "40001")
#: Rounds of :meth:`JobQueue._write` by compare and set before the rows still changing under
#: it (other workers writing the same jobs) are written in a locking transaction instead.
SWAP_ROUNDS = 3
#: The state of a job whose row is damaged (a column unreadable, or the row not matching its
#: checksum, :func:`job_sum`: one byte of the file changed): set aside at its claim, never
#: delivered, purged or claimed again; its row kept as it is (but ``detail``, which says why,
#: and the lease) for an operator to look at.
DAMAGED = "damaged"
#: A damaged job set aside (``{device}``: how the engine matches its key, see
#: :meth:`_Connection.key_match`).
_SET_ASIDE = (
    "UPDATE headend_jobs SET state = 'damaged', detail = ?, lease_owner = NULL,"
    " lease_until = NULL, updated = ? WHERE send = ? AND {device}"
)
_ROWS = (
    "SELECT send, device, meter, outcome, detail, attempts, tries, state, updated,"
    " failures, not_before, state_sum FROM headend_jobs{where} ORDER BY send, device"
)
#: What :meth:`JobQueue._rewrite` reads of a job: the key, then :func:`state_sum`'s columns
#: but the lease, the lease, the sum.
_REWRITE = (
    "SELECT send, device, state, outcome, detail, attempts, tries, failures, not_before,"
    " updated, lease_owner, lease_until, state_sum FROM headend_jobs{where}"
    " ORDER BY send, device{lock}"
)


@dataclass(frozen=True, kw_only=True)
class Job:
    """A claimed job: deliver ``payload`` (the message or event fields, JSON) of ``send`` to
    ``device`` on ``meter``; ``tries`` deliberate deliveries before this one; given up at
    ``give_up_at`` (the queue's time; None: never), ``give_up_after`` seconds after the
    send."""

    send: int
    device: str
    meter: str
    kind: SendKind
    payload: dict[str, Any]
    outcome: Outcome
    tries: int
    give_up_at: float | None = None
    give_up_after: float = 0.0
    #: Its device was de-provisioned while the job was leased (to a worker that died since,
    #: if another claimed it): not to be delivered, ended unsent (:meth:`JobQueue.forsake`).
    forsaken: bool = False

    @property
    def key(self) -> str:
        """The idempotency key of this delivery: the same for every worker and every crash
        until the meter has answered it (only a definite "not reached" answer moves to the
        next try)."""
        return f"{KEY_PREFIX}:{self.send}:{self.device}:{self.tries}"


@dataclass(frozen=True, kw_only=True)
class Completion:
    """The meter's answer to a claimed ``job`` (see :meth:`JobQueue.complete`, whose
    arguments these are), to record with others in one transaction
    (:meth:`JobQueue.complete_many`)."""

    job: Job
    outcome: Outcome
    detail: str = ""
    answered: bool = True
    retry: bool = True


@dataclass(frozen=True, kw_only=True)
class ReportedOutcome:
    """A device's report on a send (see :meth:`JobQueue.report`, whose arguments these are),
    to record with others in one transaction (:meth:`JobQueue.report_many`); ``meter``: the
    meter that told it, which must be the job's (None: not known, not checked);
    ``event_status``: the Report Event Status value (None: a Message Confirmation, or not
    known), kept in the job's detail when it tells a cancel on the device from a superseded
    event (:data:`REPORTED_CANCELLED`)."""

    send: int
    device: str
    kind: SendKind
    outcome: Outcome
    meter: str | None = None
    event_status: int | None = None


@dataclass(frozen=True, kw_only=True)
class JobRow:
    """A job as stored: a device's outcome of a send and how many answers and tries so far."""

    send: int
    device: str
    meter: str
    outcome: Outcome
    detail: str
    attempts: int
    tries: int
    state: str
    updated: float


class _Connection(ABC):
    """One database connection of the queue (SQL with ``?`` placeholders)."""

    lock_clause = ""
    where = ""

    def key_match(self, column: str) -> str:
        """How a row's text key ``column`` is matched as the driver returned it (SQLite: its
        bytes, which match whatever a damaged row holds; the parameter: :meth:`key_param`)."""
        return f"{column} = ?"

    def key_param(self, value: Any) -> Any:
        """The parameter of :meth:`key_match` for ``value`` as read."""
        return value

    async def notify(self) -> None:  # noqa: B027 - optional: SQLite has no notifications
        """Tell the listeners (:meth:`JobQueue.listen`) of a change, when this transaction
        commits."""

    async def commit(self) -> None:
        """End the transaction, its changes kept."""
        await self.execute("COMMIT")

    async def rollback(self) -> None:
        """End the transaction, its changes undone."""
        await self.execute("ROLLBACK")

    async def end_open(self) -> None:
        """End the transaction still open after a failed :meth:`rollback` or a :meth:`begin`
        cut short, its changes undone (PostgreSQL: a ROLLBACK outside a transaction only
        warns)."""
        await self.rollback()

    async def listen(self, wake: Callable[[], None]) -> Callable[[], Awaitable[None]] | None:
        """Call ``wake()`` on each change another connection notifies; the closer (None: no
        notifications on this engine)."""
        return None

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """``sql`` once per row of parameters (PostgreSQL: pipelined, one round trip)."""

    @abstractmethod
    async def begin(self) -> None: ...

    #: Whether :meth:`swap` is there (PostgreSQL): rows updated only if still as read.
    swaps = False

    async def swap(
        self,
        updates: Mapping[tuple[int, str], tuple[Any, ...]],
        expected: Mapping[tuple[int, str], tuple[Any, ...]],
    ) -> set[tuple[int, str]]:
        """Apply each of ``updates`` (``_UPDATE``'s parameters, by key) in one statement,
        outside any transaction of the caller's, to the rows still as ``expected`` says
        (:meth:`JobQueue._rows_of`'s rows); the keys updated, and the listeners notified if
        any."""
        raise NotImplementedError

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def connect(self) -> None: ...

    async def ensure(self) -> None:  # noqa: B027 - optional: SQLite has nothing to do
        """Connect again if the connection was lost (a database restarted)."""

    def open_error(self, exc: Exception) -> StoreError | None:
        """A :class:`StoreError` of its own for ``exc``, an error of :meth:`connect` or
        :meth:`create`; None: said as "cannot open the work queue"."""
        return None

    @abstractmethod
    async def create(self) -> None: ...


class _Sqlite(_Connection):
    def key_match(self, column: str) -> str:
        return f"CAST({column} AS BLOB) = ?"

    def key_param(self, value: Any) -> Any:
        if isinstance(value, str):  # text of a damaged row read as surrogates: its bytes
            return value.encode("utf-8", "surrogateescape")
        return value

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        self.path = path
        self._db: Any = None
        self._lock: int | None = None
        self._alone = False
        self._wal = WalCheck(path, "work queue")

    async def connect(self) -> None:
        """Connect, holding :func:`~zse.store_sqlite.claim_shared`'s lock (the file created
        0600: the provision commands hold install codes); alone with the file, its
        write-ahead log read first (:class:`~zse.store_sqlite.WalCheck`, compared in
        :meth:`create`). A file whose header says it is not a queue is refused first,
        before the lock (a running headend holds its store's exclusive), and so is one
        beside which SQLite's ``-wal``, ``-shm`` or ``-journal`` is not a file
        (:func:`~zse.store_sqlite.refuse_odd_neighbours`)."""
        import aiosqlite  # noqa: PLC0415 - engines are imported when used

        self._refuse_id(header_application_id(self.path), [])
        refuse_odd_neighbours(self.path, "work queue")
        self._lock, self._alone = await claim_shared(self.path)
        self._wal.before(read=self._alone)  # a damaged log set aside: refused by every opener
        self._db = await aiosqlite.connect(self.path, isolation_level=None, timeout=30)
        # each commit on disk before it returns (as the store, zse.store_sqlite), whatever
        # this SQLite's compiled default for WAL (NORMAL: a power cut loses the newest)
        await self._db.execute("PRAGMA synchronous=FULL")
        # text that is not UTF-8 (a damaged row) read as surrogates: the row is refused by
        # its converter (:func:`_text`) instead of the whole read failing
        self._db.text_factory = _lenient_text

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._db.execute(sql, tuple(params))

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._db.execute(sql, tuple(params)) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._db.executemany(sql, [tuple(row) for row in rows])

    async def begin(self) -> None:
        await self._db.execute("BEGIN IMMEDIATE")

    async def end_open(self) -> None:
        # after what aiosqlite's thread still has to run: a BEGIN whose await was cancelled
        # while it waited for the write lock may open its transaction yet
        await self._db.execute("SELECT 1")
        if self._db.in_transaction:  # SQLite refuses a ROLLBACK outside a transaction
            await self.rollback()

    async def create(self) -> None:
        fresh = await self._refuse_foreign()  # before anything is changed (WAL: the header)
        self._wal.after()  # the log recovered by the read: acknowledged commits dropped?
        if self._alone:  # checked: other openers may come in (the rest needs no exclusivity)
            self._alone = False
            await share(self._lock, self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._check_integrity()
        for sql in (_TABLE, _INDEX, _OPEN, _OPEN_BEFORE, _READERS):
            await self._db.execute(sql)
        have = {row[1] for row in await self.fetch("PRAGMA table_info(headend_jobs)")}
        for name, kind in _ADDED:
            if name not in have:
                await self._db.execute(f"ALTER TABLE headend_jobs ADD COLUMN {name} {kind}")
        if fresh:  # a file of ours from now on (one written before the stamp: stamped now)
            await self._db.execute(f"PRAGMA application_id = {QUEUE_APPLICATION_ID}")

    async def _refuse_foreign(self) -> bool:
        """:class:`StoreError` for an SQLite database that is not a headend work queue: a
        zse store (the headend's own: its queue is the file beside it), or another
        application's (its application id, or tables of its own): the queue's tables are
        not added to it. True if the file is not stamped as a queue yet."""
        [(app_id,)] = await self.fetch("PRAGMA application_id")
        names = [str(row[0]) for row in await self.fetch("SELECT name FROM sqlite_master")]
        self._refuse_id(app_id, names)
        return bool(app_id == 0)

    def _refuse_id(self, app_id: int | None, names: list[str]) -> None:
        """:meth:`_refuse_foreign` of an ``application_id`` and schema objects' ``names``
        (None: not known yet)."""
        others = [n for n in names if not n.startswith(("headend_", "sqlite_"))]
        if app_id == APPLICATION_ID:
            raise StoreError(
                f"{self.where}: not a work queue: a zse store (the headend's work queue is "
                f"the file beside its store, {self.path.stem}-queue.sqlite for "
                f"{self.path.name}); give the queue's file"
            )
        if app_id not in (None, 0, QUEUE_APPLICATION_ID) or (app_id == 0 and others):
            objects = f" ({len(names)} schema objects)" if names else ""
            raise StoreError(
                f"{self.where}: not a headend database: an SQLite database of another "
                f"application{objects}; give the headend its own file"
            )

    async def _check_integrity(self) -> None:
        """The whole file checked at open (as a store is): pages swapped or lost by a
        damaged disk otherwise hide jobs (a claim finds fewer, with no error)."""
        problems = [str(row[0]) for row in await self.fetch("PRAGMA integrity_check(20)")]
        if problems != ["ok"]:
            said = " ".join("; ".join(problems[:3]).split())[:300]
            raise StoreError(
                f"{self.where}: damaged work queue (PRAGMA integrity_check): {said}; refused, "
                "as jobs may be missing: restore a backup, or move the file away to start "
                "afresh (sends not finished are then lost)"
            )

    def open_error(self, exc: Exception) -> StoreError | None:
        """SQLite's error at open as what it is when its cause is outside the file (its
        directory read-only, a file beside it, a full disk:
        :func:`~zse.store_sqlite.cannot_open`), not a bare "disk I/O error"."""
        return cannot_open(self.path, exc) if isinstance(exc, sqlite3.Error) else None

    async def close(self) -> None:
        try:
            if self._db is not None:
                await self._db.close()
        finally:  # after the connection: closing the descriptor would drop SQLite's locks
            lock, self._lock = self._lock, None
            release(lock)


class _Postgres(_Connection):
    lock_clause = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str) -> None:
        from zse.store_postgres import parse_url  # noqa: PLC0415

        self.url = parse_url(url)
        self.where = self.url.where
        self._db: Any = None
        self._sql: dict[str, str] = {}
        self._notify = False

    async def connect(self) -> None:
        from zse.store_postgres import connect  # noqa: PLC0415

        self._db = await connect(self.url, application="zse-headend")

    async def create(self) -> None:
        """Create the table once, whichever worker comes first (a transaction-level advisory
        lock orders concurrent creators); the schema too, unless the store (opened at the
        same time elsewhere) created it meanwhile: then again, in it."""
        import asyncpg  # noqa: PLC0415

        from zse.store_postgres import create_schema  # noqa: PLC0415

        for attempt in range(_CREATE_ATTEMPTS):
            try:
                async with self._db.transaction():
                    await self._db.execute(
                        "SELECT pg_advisory_xact_lock(hashtext('zse.headend_jobs'))"
                    )
                    await create_schema(self._db, self.url.schema)
                    for sql in (_TABLE, _INDEX, _OPEN, _OPEN_BEFORE, _READERS):
                        await self._db.execute(sql)
                    for name, kind in _ADDED:
                        await self._db.execute(
                            f"ALTER TABLE headend_jobs ADD COLUMN IF NOT EXISTS {name} {kind}"
                        )
                return
            except (asyncpg.UniqueViolationError, asyncpg.DuplicateSchemaError):
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise

    async def ensure(self) -> None:
        if self._db is None or self._db.is_closed():
            await self.connect()

    def _numbered(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            from zse.store_postgres import _numbered  # noqa: PLC0415

            found = self._sql[sql] = _numbered(sql)
        return found

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._db.execute(self._numbered(sql), *params)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self._db.fetch(self._numbered(sql), *params)]

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._db.executemany(self._numbered(sql), rows)

    async def begin(self) -> None:
        self._notify = False
        await self._db.execute("BEGIN")

    swaps = True

    async def swap(
        self,
        updates: Mapping[tuple[int, str], tuple[Any, ...]],
        expected: Mapping[tuple[int, str], tuple[Any, ...]],
    ) -> set[tuple[int, str]]:
        keys = sorted(updates)
        columns: list[list[Any]] = [[] for _ in range(19)]
        for key in keys:
            state, outcome, detail, attempts, tries, failures, not_before, owner, until, now = (
                updates[key][:10]
            )
            was = expected[key][:7]  # outcome, state, owner, attempts, tries, failures, until
            values = (*key, state, outcome, detail, attempts, tries, failures, not_before)
            for column, value in zip(columns, (*values, owner, until, now, *was), strict=True):
                column.append(value)
        sums = [updates[key][10] for key in keys]  # :func:`state_sum`, after the key's columns
        details = [expected[key][9] for key in keys]  # the detail as read
        try:
            rows = await self._db.fetch(_SWAP, *columns, CHANNEL, self.url.schema, sums, details)
        except Exception as exc:
            if getattr(exc, "sqlstate", None) in _RACES:
                return set()  # the statement undone whole: read again
            raise
        return {(int(r[0]), r[1]) for r in rows}

    async def close(self) -> None:
        await self._db.close(timeout=self.url.command_timeout)

    async def notify(self) -> None:
        """Notified with the commit, in its round trip (the schema is a plain identifier:
        safe as a literal)."""
        self._notify = True

    async def commit(self) -> None:
        if self._notify:
            self._notify = False
            # one simple-protocol message, two statements: one round trip, not two
            await self._db.execute(f"SELECT pg_notify('{CHANNEL}', '{self.url.schema}'); COMMIT")
        else:
            await self._db.execute("COMMIT")

    async def rollback(self) -> None:
        self._notify = False
        await self._db.execute("ROLLBACK")

    async def listen(self, wake: Callable[[], None]) -> Callable[[], Awaitable[None]] | None:
        """A connection of its own LISTENing on :data:`CHANNEL` for this schema's changes."""
        from zse.store_postgres import connect  # noqa: PLC0415

        listener = await connect(self.url, application="zse-headend-listen")
        schema = self.url.schema

        def heard(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
            if payload == schema:
                wake()

        await listener.add_listener(CHANNEL, heard)

        async def close() -> None:
            await listener.close(timeout=self.url.command_timeout)

        return close


def _password_free(connection: _Connection, exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    password = getattr(getattr(connection, "url", None), "password", None)
    return text.replace(password, "***") if password else text


class JobQueue:
    """The work queue (see the module notes); open it with :func:`open_queue`."""

    def __init__(self, connection: _Connection) -> None:
        self._db = connection
        self._lock = asyncio.Lock()
        self.where = connection.where
        self._unreadable: set[tuple[str, str]] = set()  # damaged rows :meth:`rows` said
        self._foreign: set[tuple[str, str]] = set()  # other meters' reports said
        self._unsent: set[tuple[str, str]] = set()  # reports on jobs never handed out said
        self._rollback_owed = False  # a rollback failed, a begin cut short: maybe still open

    async def close(self) -> None:
        """Close the connection (a lease held stays until it expires)."""
        with hold_virtual_clock():
            await self._db.close()

    @property
    def locking(self) -> bool:
        """Whether claims lock rows (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: no)."""
        return bool(self._db.lock_clause)

    def transaction(self, what: str) -> AbstractAsyncContextManager[_Connection]:
        """One transaction on the queue's connection (tables beside the jobs', such as
        :mod:`zse.headend.control`'s): committed at the end, rolled back on an error, a
        database error as :class:`StoreError` saying it could not ``what``."""
        return self._transaction(what)

    async def create(self, what: str, *statements: str) -> None:
        """Run ``statements`` (``CREATE ... IF NOT EXISTS`` of tables beside the jobs') in one
        transaction, ordered among concurrent creators by an advisory lock named ``what``
        on PostgreSQL."""
        async with self.transaction(f"create {what}") as db:
            if self.locking:
                await db.execute(f"SELECT pg_advisory_xact_lock(hashtext('zse.{what}'))")
            for sql in statements:
                await db.execute(sql)

    @asynccontextmanager
    async def _statements(self, what: str) -> AsyncIterator[_Connection]:
        """The queue's connection, to one user at a time (statements outside a transaction
        are each their own): a database error as :class:`StoreError` saying it could not
        ``what``."""
        async with self._lock:
            with hold_virtual_clock():
                try:
                    await self._db.ensure()
                    if self._rollback_owed:  # a transaction a failed rollback left open
                        await self._db.end_open()
                        self._rollback_owed = False
                    yield self._db
                except StoreError:
                    raise
                except Exception as exc:
                    message = _password_free(self._db, exc)
                    raise StoreError(f"{self.where}: cannot {what}: {message}") from None

    @asynccontextmanager
    async def _transaction(self, what: str) -> AsyncIterator[_Connection]:
        """:meth:`_statements` in one transaction: committed at the end, rolled back on an
        error."""
        async with self._statements(what) as db:
            try:
                await db.begin()
            except BaseException:
                # cut short (a cancellation while SQLite's BEGIN IMMEDIATE waits for another
                # writer): the driver's thread may still open the transaction, so it is owed
                self._rollback_owed = True
                raise
            try:
                yield db
            except BaseException:
                # the error in flight (a cancellation too) is raised, not the rollback's
                # (the database away): the rollback is then owed, made before the next use
                try:
                    await db.rollback()
                except Exception as exc:
                    self._rollback_owed = True
                    LOGGER.warning(
                        "headend work queue %s: rollback failed: %s",
                        self.where,
                        _password_free(db, exc),
                    )
                raise
            await db.commit()

    async def enqueue(
        self,
        send: int,
        kind: SendKind,
        payload: dict[str, Any],
        devices: Iterable[tuple[str, str]],
        *,
        now: float,
        give_up_at: float | None = None,
        give_up_after: float = 0.0,
    ) -> None:
        """One ready job per (device, meter) of ``send``, due at once (``now``: its
        ``updated``); a job already there is kept (enqueuing again after a crash adds
        nothing). A device not reached by ``give_up_at`` (the queue's time, the workers'),
        ``give_up_after`` seconds after the send, is given up (:data:`GIVE_UP_AT`)."""
        if give_up_at is not None:
            payload = {**payload, GIVE_UP_AT: give_up_at, GIVE_UP_AFTER: give_up_after}
        text = json.dumps(payload, sort_keys=True)
        rows = [
            (
                send,
                device,
                meter,
                kind.value,
                text,
                now,
                job_sum(send, device, meter, kind.value, text),
                state_sum(("ready", "pending", "", 0, 0, 0, 0.0, now)),
            )
            for device, meter in devices
        ]
        async with self._transaction("enqueue") as db:
            if rows:
                await db.execute_many(_INSERT, rows)

    async def claim(self, owner: str, *, now: float, lease: float, limit: int = 16) -> list[Job]:
        """Lease up to ``limit`` due jobs (ready ones due at ``now``, and expired leases) to
        ``owner`` until ``now + lease``.

        A job whose row is damaged (a column that does not read back as written) is set
        aside in the same transaction (state :data:`DAMAGED`, ``detail`` naming the column,
        logged once as a warning without its content) and the others are claimed."""
        sql = _CLAIM.format(lock=self._db.lock_clause)
        jobs: list[Job] = []
        async with self._transaction("claim jobs") as db:
            rows = await db.fetch(sql, (owner, now + lease, now, now, limit))
            aside: list[tuple[Any, ...]] = []
            for r in rows:
                try:
                    jobs.append(_job(r))
                except _Damaged as exc:
                    reason = f"damaged job row ({exc}): set aside, not delivered"
                    aside.append((reason, now, r[0], db.key_param(r[1])))
                    LOGGER.warning(
                        "%s: job of send %s to device %s: %s",
                        self.where,
                        _shown(r[0]),
                        _shown(r[1]),
                        reason,
                    )
            if aside:
                await db.execute_many(_SET_ASIDE.format(device=db.key_match("device")), aside)
                await db.notify()
        return sorted(jobs, key=lambda j: (j.send, j.device))

    async def complete(
        self,
        job: Job,
        owner: str,
        outcome: Outcome,
        detail: str,
        *,
        now: float,
        answered: bool,
        retry: bool = True,
    ) -> bool:
        """Record the meter's answer to ``job`` and complete or reschedule it, in one
        transaction, if ``owner`` still holds its lease (False: it does not; nothing written).

        ``answered``: the meter answered (``outcome`` DELIVERED, OFFLINE or SKIPPED);
        otherwise it could not be reached (``outcome`` OFFLINE) and the job is delivered again
        later with the same key. A device not reached is tried again after
        :func:`~zse.headend.core.retry_delay` unless ``retry`` is false."""
        answer = Completion(job=job, outcome=outcome, detail=detail, answered=answered, retry=retry)
        (recorded,) = await self.complete_many(owner, [answer], now=now)
        return recorded

    async def complete_many(
        self, owner: str, answers: Sequence[Completion], *, now: float
    ) -> list[bool]:
        """:meth:`complete` for each of ``answers``, all at once: for each, whether it was
        recorded (``owner`` still held the lease, the answer was for the job's delivery). Two
        answers of one job (a redelivered answer, a late one) are recorded as one after the
        other would be: in a write of their own, in order."""
        keys = [(a.job.send, a.job.device) for a in answers]
        rounds: list[dict[tuple[int, str], int]] = []  # each job once a round: its answer
        for index, key in enumerate(keys):
            free = next((taken for taken in rounds if key not in taken), None)
            if free is None:
                rounds.append(free := {})
            free[key] = index
        recorded = [False] * len(answers)
        for taken in rounds:

            def compute(
                key: tuple[int, str],
                row: tuple[Any, ...] | None,
                taken: dict[tuple[int, str], int] = taken,
            ) -> tuple[Any, ...] | None:
                update = _completed(row, owner, answers[taken[key]], now) if row else None
                recorded[taken[key]] = update is not None
                return update

            await self._write("record outcomes", list(taken), compute)
        return recorded

    async def _write(
        self,
        what: str,
        keys: Sequence[tuple[int, str]],
        compute: Callable[[tuple[int, str], tuple[Any, ...] | None], tuple[Any, ...] | None],
    ) -> None:
        """Read the rows of the jobs ``keys`` and write what ``compute(key, row)`` makes of
        each (``_UPDATE``'s parameters, or None: nothing), each job's change made from its
        row as it is when written, never from an older one.

        SQLite: in one transaction, the rows read locked. PostgreSQL: the rows read, then
        written in one statement only where they are still as read (:data:`_SWAP`, compare
        and set), no transaction of their own: two round trips instead of four (``BEGIN``,
        read locked, write, ``COMMIT``); a job another worker changed in between is read
        and computed again, and after :data:`SWAP_ROUNDS` rounds what is left is written
        in a locking transaction."""
        todo = sorted(set(keys))
        if self._db.swaps:
            for _ in range(SWAP_ROUNDS):
                async with self._statements(what) as db:
                    found = await self._rows_of(db, todo, lock=False)
                    updates = {k: u for k in todo if (u := compute(k, found.get(k))) is not None}
                    if not updates:
                        return
                    done = await db.swap(
                        {key: _summed(u) for key, u in updates.items()},
                        {key: found[key] for key in updates},
                    )
                todo = [key for key in updates if key not in done]
                if not todo:
                    return
        async with self._transaction(what) as db:
            found = await self._rows_of(db, todo)
            updates = {k: u for k in todo if (u := compute(k, found.get(k))) is not None}
            if updates:
                await db.execute_many(_UPDATE, [_summed(u) for u in updates.values()])
                await db.notify()

    async def _rows_of(
        self, db: _Connection, keys: Sequence[tuple[int, str]], *, lock: bool = True
    ) -> dict[tuple[int, str], tuple[Any, ...]]:
        """The rows of the jobs ``keys`` (locked on PostgreSQL, unless not ``lock``), by
        key (``_ROWS_OF`` from ``outcome`` to ``kind``, then ``meter`` and ``detail``: read
        with them, no query more); a job whose row does not match its :func:`state_sum` is left out
        (nothing is recorded on it: a claim sets it aside)."""
        found: dict[tuple[int, str], tuple[Any, ...]] = {}
        for start in range(0, len(keys), _ROWS_AT_ONCE):
            part = sorted(set(keys[start : start + _ROWS_AT_ONCE]))
            sql = _ROWS_OF.format(
                keys=" OR ".join(["(send = ? AND device = ?)"] * len(part)),
                lock=" FOR UPDATE" if db.lock_clause and lock else "",
            )
            params = [value for key in part for value in key]
            for row in await db.fetch(sql, params):
                outcome, state, _, attempts, tries, failures, _, _, detail, not_before = row[2:12]
                summed = (state, outcome, detail, attempts, tries, failures, not_before, row[12])
                if state != DAMAGED and not _state_matches(summed, row[13]):
                    self._said_damaged(row[0], row[1], "its state does not match its checksum")
                    continue
                found[int(row[0]), row[1]] = (*row[2:10], row[14], detail)
        return found

    def _said_foreign(self, report: ReportedOutcome, meter: Any) -> None:
        """Warn, once per (meter, device), of a meter's report on a device of ``meter``
        (another's): nothing of the report's content, which its gateway chose."""
        if not first_time(self._foreign, (str(report.meter), report.device)):
            return
        LOGGER.warning(
            "%s: a report from meter %s on device %s of meter %s: not recorded (a meter "
            "reports only on its own devices)",
            self.where,
            _shown(report.meter),
            _shown(report.device),
            _shown(meter),
        )

    def _said_unsent(self, report: ReportedOutcome) -> None:
        """Warn, once per (meter, device), of a report on a job no worker has handed out
        (:func:`_never_handed_out`): the device reports on an event or message of the same
        id from another source (a Home Assistant user of its gateway, the ESI's own
        configuration), not on the headend's, which it never had."""
        if not first_time(self._unsent, (str(report.meter), report.device)):
            return
        LOGGER.warning(
            "%s: a report from meter %s on device %s on send %s, never handed to its "
            "gateway yet: not recorded (the device's event or message of that id is "
            "another source's)",
            self.where,
            _shown(report.meter),
            _shown(report.device),
            report.send,
        )

    def _said_damaged(self, send: Any, device: Any, why: str) -> None:
        """Warn, once per job, of a damaged job row left out."""
        said = (_shown(send), _shown(device))
        if said not in self._unreadable:
            self._unreadable.add(said)
            LOGGER.warning(
                "%s: job of send %s to device %s: damaged job row (%s): left out",
                self.where,
                *said,
                why,
            )

    async def _rewrite(
        self,
        db: _Connection,
        where: str,
        params: Sequence[Any],
        change: Callable[[str, tuple[Any, ...]], tuple[Any, ...] | None],
        *,
        now: float,
    ) -> list[tuple[Any, ...]]:
        """Change the jobs ``where`` selects (locked on PostgreSQL): ``change`` gets each
        one's device and ``(state, outcome, detail, attempts, tries, failures, not_before,
        updated, lease_owner, lease_until)`` and returns them changed (None: kept), written
        with their :func:`state_sum`. A job whose row does not match its sum is set aside
        (:data:`DAMAGED`) instead. Returns the rows (``_REWRITE``'s) of the jobs ``change``
        kept as they were."""
        lock = " FOR UPDATE" if db.lock_clause else ""
        rows = await db.fetch(_REWRITE.format(where=where, lock=lock), params)
        writes: list[tuple[Any, ...]] = []
        aside: list[tuple[Any, ...]] = []
        kept: list[tuple[Any, ...]] = []
        for row in rows:
            key = (row[0], db.key_param(row[1]))
            if row[2] != DAMAGED and not _state_matches(row[2:10], row[12]):
                reason = "damaged job row (checksum: its state does not match it): set aside"
                aside.append((reason, now, *key))
                self._said_damaged(row[0], row[1], "its state does not match its checksum")
                continue
            changed = change(row[1], tuple(row[2:12]))
            if changed is None:
                kept.append(row)
                continue
            *summed, owner, until = changed  # _UPDATE_AT's order: the lease before updated
            writes.append((*summed[:7], owner, until, summed[7], state_sum(summed), *key))
        if writes:
            await db.execute_many(_UPDATE_AT.format(device=db.key_match("device")), writes)
        if aside:
            await db.execute_many(_SET_ASIDE.format(device=db.key_match("device")), aside)
        return kept

    async def report(
        self,
        send: int,
        device: str,
        kind: SendKind,
        outcome: Outcome,
        *,
        now: float,
        meter: str | None = None,
        event_status: int | None = None,
    ) -> bool:
        """A device's report on a send of ``kind`` (a Message Confirmation, a Report Event
        Status: its ``event_status``), told by ``meter`` (its gateway; None: not known): its
        outcome moves forward
        if it is later than the one recorded (True), else nothing changes. A meter moves only
        its own devices' jobs: a report of another meter's device changes nothing (False),
        and is logged once per (meter, device) as a warning. Nor does a report on a job no
        worker has ever handed to its gateway (:func:`_never_handed_out`): the device cannot
        have the headend's send, so it reports on another source's event or message of the
        same id (False; logged once per (meter, device) too)."""
        reported = ReportedOutcome(
            send=send,
            device=device,
            kind=kind,
            outcome=outcome,
            meter=meter,
            event_status=event_status,
        )
        (moved,) = await self.report_many([reported], now=now)
        return moved

    async def report_many(self, reports: Sequence[ReportedOutcome], *, now: float) -> list[bool]:
        """:meth:`report` for each of ``reports``, in their order, all at once: for each,
        whether it moved its device's outcome forward (one whose ``meter`` is not the job's
        never does, nor one on a job never handed out)."""
        keys = [(r.send, r.device) for r in reports]
        by_key: dict[tuple[int, str], list[int]] = {}
        for index, key in enumerate(keys):
            by_key.setdefault(key, []).append(index)
        moved = [False] * len(reports)

        def compute(key: tuple[int, str], row: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
            last = None
            for index in by_key[key]:  # in their order: a later report sees the earlier
                told = reports[index]
                if row is not None and told.meter is not None and told.meter != row[8]:
                    self._said_foreign(told, row[8])  # another meter's device: not its to move
                    moved[index] = False
                    continue
                if row is not None and _never_handed_out(row[1], row[0], *row[3:6]):
                    self._said_unsent(told)  # the device has another source's send of the id
                    moved[index] = False
                    continue
                update = _reported(row, told, now) if row else None
                moved[index] = update is not None
                if row is not None and update is not None:
                    state, outcome, _, _, _, _, _, holder, lease_until = update[:9]
                    row = (outcome, state, holder, *row[3:6], lease_until, *row[7:])
                    last = update
            return last

        await self._write("record reports", keys, compute)
        return moved

    async def cancel(
        self, send: int, *, now: float, devices: Collection[str] | None = None
    ) -> set[str]:
        """Deliver nothing more of ``send`` (to ``devices``, or every device): its jobs waiting
        (new, or a retry's back-off) end unsent (detail :data:`NOT_SENT`); a job leased now is
        still delivered by its worker (a worker that claims it after its holder died ends it
        unsent, :data:`NOT_SENT_AGAIN`), and the send's cancel commands wait for it
        (:mod:`zse.headend.control`); every outcome becomes CANCELLED but a load control
        event's that is over (completed, opted out, rejected: outcomes move forward only).

        Returns the devices whose copy was **never sent** and is now withdrawn: a job still
        ``pending`` and waiting (never claimed), or one this cancel withdrew so before (the
        same call again after a crash answers the same). They need no Cancel on the air. The
        decision is made on the rows locked in this transaction, which a worker's claim
        (``ready`` to ``leased``) also takes: a job is either withdrawn before any worker has
        it, or claimed first and then not withdrawn (its Cancel follows its delivery)."""
        chosen: list[str | None] = [None] if devices is None else [*sorted(set(devices))]
        unsent: set[str] = set()

        def cancelled(device: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
            state, outcome, detail, attempts, tries, failures, not_before, _, owner, until = row
            if _never_sent(state, outcome, detail, attempts, tries, failures):
                unsent.add(str(device))
            if state == "ready":
                return ("sent", "cancelled", NOT_SENT, attempts, tries, failures, not_before,
                        now, None, None)  # fmt: skip
            return (state, "cancelled", detail, attempts, tries, failures, not_before, now,
                    owner, until)  # fmt: skip

        async with self._transaction("cancel a send") as db:
            for device in chosen:
                await self._rewrite(db, _CANCEL, (send, device), cancelled, now=now)
        return unsent

    async def forsake(self, device: str, *, now: float) -> None:
        """Deliver nothing more to ``device`` (de-provisioned: it may come back as another
        retailer's): its jobs waiting (new, or a retry's back-off) end unsent, a pending
        outcome ``skipped`` (final: the headend's records say so too), the others as they
        were (detail :data:`NOT_SENT_DEPROVISIONED`); a job leased now is still delivered by
        its worker, but not tried again if not reached, and a worker that takes it over
        after its lease (its worker died) ends it unsent (:attr:`Job.forsaken`: its detail
        says so meanwhile)."""

        def forsaken(_: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
            state, outcome, _, attempts, tries, failures, not_before, updated, owner, until = row
            if state == "leased":  # marked: its holder's to end (:func:`_completed`)
                return (state, outcome, NOT_SENT_DEPROVISIONED, attempts, tries, failures,
                        not_before, updated, owner, until)  # fmt: skip
            outcome = "skipped" if outcome == "pending" else outcome
            return ("sent", outcome, NOT_SENT_DEPROVISIONED, attempts, tries, failures,
                    not_before, now, None, None)  # fmt: skip

        async with self._transaction("forsake a device") as db:
            await self._rewrite(db, _FORSAKE, (device,), forsaken, now=now)

    async def database_time(self) -> float | None:
        """PostgreSQL: the database's clock (``clock_timestamp()``, epoch seconds), which
        workers on several machines share; SQLite (one machine): None."""
        if not self.locking:
            return None
        async with self._transaction("read the database's clock") as db:
            rows = await db.fetch("SELECT extract(epoch FROM clock_timestamp())::float8")
        return float(rows[0][0])

    async def listen(self, wake: Callable[[], None]) -> Callable[[], Awaitable[None]] | None:
        """PostgreSQL: call ``wake()`` each time a worker commits an outcome or a report (or
        :mod:`zse.headend.control` a device's record), through LISTEN/NOTIFY on a connection
        of its own; returns the function that closes it. SQLite: None (poll instead)."""
        try:
            with hold_virtual_clock():
                close = await self._db.listen(wake)
        except Exception as exc:
            message = _password_free(self._db, exc)
            raise StoreError(f"{self.where}: cannot listen for changes: {message}") from None
        if close is None:
            return None

        async def closed() -> None:
            with hold_virtual_clock():
                await close()

        return closed

    async def purge(self, *, before: float) -> int:
        """Delete the finished jobs (``sent``: nothing more to deliver) last updated before
        ``before`` (the retention of ``zse headend worker --retention-days``) and before
        what every reader has read (:meth:`mark_read`); how many. A report on a purged job is
        no longer recorded."""
        async with self._transaction("purge finished jobs") as db:
            rows = await self._rewrite(db, _PURGED, (before,), lambda *_: None, now=before)
            await db.execute_many(
                _DELETE.format(device=db.key_match("device")),
                [(r[0], db.key_param(r[1])) for r in rows],
            )
        return len(rows)

    async def mark_read(self, reader: str, since: float) -> None:
        """``reader`` (the headend's API) has taken in every job updated before ``since``:
        until it says so, :meth:`purge` keeps them, however long it is away. A reader gone
        for good is forgotten with :meth:`forget_reader`."""
        async with self._transaction("record how far the outcomes were read") as db:
            await db.execute(
                "INSERT INTO headend_readers (reader, since) VALUES (?, ?) ON CONFLICT (reader)"
                " DO UPDATE SET since = excluded.since",
                (reader, since),
            )

    async def forget_reader(self, reader: str) -> None:
        """Stop keeping finished jobs for ``reader``."""
        async with self._transaction("forget a reader") as db:
            await db.execute("DELETE FROM headend_readers WHERE reader = ?", (reader,))

    async def rows(self, send: int | None = None, *, since: float | None = None) -> list[JobRow]:
        """The jobs (every device's outcome) of ``send``, or of every send; only those
        updated at ``since`` or later if given."""
        found = [("send = ?", send), ("updated >= ?", since)]
        given = [(clause, value) for clause, value in found if value is not None]
        where = " WHERE " + " AND ".join(c for c, _ in given) if given else ""
        params = tuple(v for _, v in given)
        async with self._transaction("read outcomes") as db:
            rows = await db.fetch(_ROWS.format(where=where), params)
        result: list[JobRow] = []
        for r in rows:
            try:
                result.append(_job_row(r))
            except _Damaged as exc:  # left out (kept in the table), said once per job
                self._said_damaged(r[0], r[1], str(exc))
        return result


def _never_sent(  # noqa: PLR0917 - a job's columns
    state: object,
    outcome: object,
    detail: object,
    attempts: object,
    tries: object,
    failures: object,
) -> bool:
    """Whether a job's copy was never sent and a cancel withdraws it (or withdrew it): waiting
    and ``pending`` (never claimed: a claimed one is ``leased``, and one answered or missed
    has another outcome, or counts a failure), or ended so by a cancel (:data:`NOT_SENT`,
    nothing counted)."""
    if state == "ready":
        return outcome == "pending"
    counted = (attempts, tries, failures) == (0, 0, 0)
    return state == "sent" and outcome == "cancelled" and detail == NOT_SENT and counted


def _never_handed_out(
    state: object, outcome: object, attempts: object, tries: object, failures: object
) -> bool:
    """Whether no copy of a job can have reached its device: nothing counted (no answer, new
    try or miss) and either waiting (``ready``: never claimed) or ended ``skipped`` (refused
    by its meter at its first try, e.g. its issuer event id in use there by another event,
    or ended unsent by a de-provisioning). A claim makes a job ``leased`` (its worker may
    have published it and died: still leased); the only way back to ``ready`` is a try that
    did not reach the device (:func:`_completed`), which counts a failure
    (:func:`~zse.headend.core.after_miss`), and no count ever goes down. A job on a retry's
    back-off was handed out: its device may have the send (its gateway's answer was lost)
    and its report counts."""
    if (attempts, tries, failures) != (0, 0, 0):
        return False
    return state == "ready" or (state == "sent" and outcome == "skipped")


def first_time(said: set[tuple[str, str]], pair: tuple[str, str]) -> bool:
    """Whether ``pair`` (a meter and a device) is not in ``said`` (now added): a warning of
    it is due, once per pair; past :data:`_FOREIGN_SAID` pairs ``said`` is emptied first (a
    gateway's topics are not a headend's memory to fill)."""
    if pair in said:
        return False
    if len(said) >= _FOREIGN_SAID:
        said.clear()
    said.add(pair)
    return True


#: Jobs whose rows one statement reads (SQLite allows 32,766 parameters).
_ROWS_AT_ONCE = 500


def _completed(
    row: tuple[Any, ...], owner: str, answer: Completion, now: float
) -> tuple[Any, ...] | None:
    """The ``_UPDATE`` parameters that record ``answer`` on a job at ``row`` (``_ROWS_OF``
    less the key: :meth:`JobQueue._rows_of`), or None if ``owner`` no longer holds its
    lease, or the job is no longer the delivery answered: its ``tries`` (the key's last
    part) moved on since (a copy of ``owner`` that stalled past its lease, answering an
    older key while the same name delivers a newer one)."""
    current, state, holder, attempts, tries, failures, _, _ = row[:8]
    before = _outcome(current)
    if state != "leased" or holder != owner or before is None or tries != answer.job.tries:
        return None
    # its device de-provisioned while it was under way: not tried again (JobQueue.forsake);
    # the detail is the row's tenth column (a row of its first eight: not so marked)
    retry = answer.retry and row[9:10] != (NOT_SENT_DEPROVISIONED,)
    after = advance(before, answer.outcome) or before
    if answer.answered and answer.outcome is not Outcome.SKIPPED:
        attempts += 1
    job = answer.job
    # an answer behind the job (its device's report came meanwhile) only counts a try
    detail = moved_detail(
        before, str(row[9]) if len(row) > 9 else "", answer.outcome, answer.detail
    )
    state, not_before = "sent", now
    if RANK[after] < RANK[Outcome.DELIVERED] and retry:
        # not reached: the core's rule, as in process (Headend._record)
        miss = after_miss(failures, now=now, give_up_at=job.give_up_at)
        failures = miss.failures
        if miss.verdict is Verdict.AGAIN:  # the last try just after the give-up time
            state, not_before = "ready", now + miss.delay
            if answer.answered:
                tries += 1  # a definite "not reached": the next delivery is a new one
        else:  # given up: not tried again
            after = advance(after, Outcome.EXPIRED) or after
            detail = given_up_detail(job.give_up_after, answer.detail or answer.outcome.value)
    return (
        state,
        after.value,
        detail,
        attempts,
        tries,
        failures,
        not_before,
        None,
        None,
        now,
        job.send,
        job.device,
    )


def _reported(row: tuple[Any, ...], report: ReportedOutcome, now: float) -> tuple[Any, ...] | None:
    """The ``_UPDATE`` parameters that record ``report`` on a job at ``row``, or None if it
    moves nothing (not later than the outcome recorded, or a report on another kind; its
    meter is checked by :meth:`JobQueue.report_many`)."""
    current, state, holder, attempts, tries, failures, lease_until, sent = row[:8]
    before = _outcome(current)
    after = None if before is None else advance(before, report.outcome)
    if after is None or sent != report.kind.value or state == DAMAGED:
        return None
    if state == "ready":
        state = "sent"  # the device has the send: nothing more to deliver
    if state != "leased":  # a leased job stays its holder's to complete
        holder = lease_until = None
    status = report.event_status
    on_device = (
        after is Outcome.CANCELLED and status is not None and status != EventStatus.SUPERSEDED
    )
    return (
        state,
        after.value,
        REPORTED_CANCELLED if on_device else "",
        attempts,
        tries,
        failures,
        now,
        holder,
        lease_until,
        now,
        report.send,
        report.device,
    )


class _Damaged(ValueError):
    """A row's column that does not read back as written (the message: which one)."""


def _lenient_text(data: bytes) -> str:
    """SQLite's text as str; bytes that are not UTF-8 as surrogates (:func:`_text` refuses
    them)."""
    return data.decode("utf-8", "surrogateescape")


def _shown(value: Any, limit: int = 40) -> str:
    """``value`` for a message: its repr cut to ``limit`` characters (a damaged or hostile
    value may be any length)."""
    text = repr(value) if not isinstance(value, int) or isinstance(value, bool) else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _text(value: Any, column: str) -> str:
    """``value`` of ``column`` as text, :class:`_Damaged` if it is not (UTF-8) text."""
    if not isinstance(value, str):
        raise _Damaged(f"{column}: not text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Damaged(f"{column}: not UTF-8") from None
    return value


def _integer(value: Any, column: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Damaged(f"{column}: not an integer")
    return value


def _number(value: Any, column: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _Damaged(f"{column}: not a number")
    return float(value)


def _outcome(value: Any) -> Outcome | None:
    """The outcome stored as ``value``; None if it is none (a damaged row)."""
    try:
        return Outcome(value)
    except ValueError:
        return None


def _member(kind: Callable[[str], _E], value: Any, column: str, what: str) -> _E:
    """``value`` of ``column`` as a member of ``kind``; :class:`_Damaged` if it is not one."""
    text = _text(value, column)
    try:
        return kind(text)
    except ValueError:
        raise _Damaged(f"{column}: not {what}") from None


def _json_object(value: Any, column: str) -> dict[str, Any]:
    """``value`` of ``column`` as a JSON object; :class:`_Damaged` if it is not one."""
    text = _text(value, column)
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise _Damaged(f"{column}: not JSON") from None
    if not isinstance(payload, dict):
        raise _Damaged(f"{column}: not a JSON object")
    return payload


def _job_outcome(value: Any) -> Outcome:
    outcome = _outcome(_text(value, "outcome"))
    if outcome is None:
        raise _Damaged("outcome: not an outcome")
    return outcome


def job_sum(send: object, device: object, meter: object, kind: object, payload: object) -> str:
    """The checksum of a job's row: what its delivery depends on (the send, device, meter,
    kind and payload, which never change once enqueued), written with the row and checked at
    its claim (a flipped bit in a payload's text is still JSON)."""
    return checksum("headend job", send, device, meter, kind, payload)


#: The states of a job that :func:`state_sum` does not tell apart: a claim leases a ready job,
#: or a job whose lease ran out, without writing the sum again.
_OPEN_STATES = ("ready", "leased")


def _as_number(value: object) -> object:
    """A number column as a float (SQLite and PostgreSQL read ``0`` back as ``0.0``); any
    other value as it is (a damaged row's, which then fails its sum)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def state_sum(columns: Sequence[object]) -> str:
    """The checksum of what a job's row says of its progress, written with every change of it
    and checked wherever a job is acted on (claimed, answered, reported, cancelled, purged,
    read): a flipped bit in its state, outcome, counts (``tries`` makes the idempotency key)
    or times would otherwise hand a job out again, resume a cancelled one, change its key or
    purge it unread. ``ready`` and ``leased`` are one state here, and the lease (owner and
    expiry) is not covered: a claim changes only those, in one statement; a damaged lease
    ends early (the job delivered again with the same key, which the gateway answers from its
    record) or late (the job waits for it). ``columns``: ``(state, outcome, detail,
    attempts, tries, failures, not_before, updated)``."""
    state, outcome, detail, attempts, tries, failures, not_before, updated = columns
    phase = "open" if state in _OPEN_STATES else state
    times = (_as_number(not_before), _as_number(updated))
    return checksum("headend job state", phase, outcome, detail, attempts, tries, failures, *times)


def _state_matches(columns: Sequence[Any], stored: object) -> bool:
    """Whether :func:`state_sum` of ``columns`` is ``stored`` (None, a row written before the
    sum: not checked)."""
    return stored is None or state_sum(columns) == stored


def _summed(update: tuple[Any, ...]) -> tuple[Any, ...]:
    """``_UPDATE``'s parameters with the row's :func:`state_sum` put in (before the key)."""
    state, outcome, detail, attempts, tries, failures, not_before, _, _, updated = update[:10]
    summed = state_sum((state, outcome, detail, attempts, tries, failures, not_before, updated))
    return (*update[:10], summed, *update[10:])


def _job(r: Sequence[Any]) -> Job:
    """The :class:`Job` of a row of :data:`_CLAIM`; :class:`_Damaged` naming the column that
    does not read back, or if the row does not match its checksums (:func:`job_sum`,
    :func:`state_sum`; a row written before them, NULL, is not checked)."""
    payload = _json_object(r[4], "payload")
    give_up_at = payload.pop(GIVE_UP_AT, None)
    give_up_after = payload.pop(GIVE_UP_AFTER, 0.0)
    job = Job(
        send=_integer(r[0], "send"),
        device=_text(r[1], "device"),
        meter=_text(r[2], "meter"),
        kind=_member(SendKind, r[3], "kind", "a send kind"),
        payload=payload,
        outcome=_job_outcome(r[5]),
        tries=_integer(r[6], "tries"),
        give_up_at=None if give_up_at is None else _number(give_up_at, f"payload {GIVE_UP_AT}"),
        give_up_after=_number(give_up_after, f"payload {GIVE_UP_AFTER}"),
        forsaken=r[8] == NOT_SENT_DEPROVISIONED,
    )
    if r[7] is not None and r[7] != job_sum(*r[:5]):
        raise _Damaged("checksum: the row does not match it")
    detail, attempts, failures, not_before, updated, stored = r[8:14]
    if not _state_matches(
        ("leased", r[5], detail, attempts, r[6], failures, not_before, updated), stored
    ):
        raise _Damaged("checksum: its state does not match it")
    return job


def _job_row(r: Sequence[Any]) -> JobRow:
    """The :class:`JobRow` of a row of :data:`_ROWS`; :class:`_Damaged` as :func:`_job` (a
    job set aside as damaged is shown as it is)."""
    state, failures, not_before = r[7], r[9], r[10]
    summed = (state, r[3], r[4], r[5], r[6], failures, not_before, r[8])
    if state != DAMAGED and not _state_matches(summed, r[11]):
        raise _Damaged("checksum: its state does not match it")
    outcome = _job_outcome(r[3])
    return JobRow(
        send=_integer(r[0], "send"),
        device=_text(r[1], "device"),
        meter=_text(r[2], "meter"),
        outcome=outcome,
        detail=_text(r[4], "detail"),
        attempts=_integer(r[5], "attempts"),
        tries=_integer(r[6], "tries"),
        state=_text(r[7], "state"),
        updated=_number(r[8], "updated"),
    )


async def open_queue(location: str | Path) -> JobQueue:
    """The queue at ``location``: a ``postgresql://`` URL (the store's URL: the table goes in
    its schema) or an SQLite file; its table is created if missing. :class:`StoreError` (one
    line, no password) if it cannot be opened."""
    text = str(location)
    connection: _Sqlite | _Postgres
    if is_postgres(text):
        try:
            connection = _Postgres(text)
        except ImportError:
            raise StoreError(
                "a PostgreSQL queue needs the asyncpg driver: pip install 'zigpy-se[postgres]'"
            ) from None
    else:
        connection = _Sqlite(Path(location))
    try:
        with hold_virtual_clock():
            try:
                await connection.connect()
                await connection.create()
            except BaseException:  # whatever was opened closed again (aiosqlite's thread is
                with contextlib.suppress(Exception):  # no daemon: left, the process never ends)
                    await connection.close()
                raise
    except StoreError:
        raise
    except Exception as exc:
        said = connection.open_error(exc)
        if said is not None:
            raise said from None
        raise StoreError(
            f"{connection.where}: cannot open the work queue: {_password_free(connection, exc)}"
        ) from None
    return JobQueue(connection)
