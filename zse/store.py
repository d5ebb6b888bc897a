"""Durable state for the SE services: records and a write-ahead journal (SQLite, PostgreSQL).

The sans-IO cores (:mod:`zse.messaging`, :mod:`zse.drlc`) know nothing of storage; the asyncio
services that bind them persist what the cores decide through one :class:`Store`. A store holds,
per *namespace* (one per service instance, e.g. ``"messaging.client/1"``):

* **records**: a key -> JSON value map, the core's snapshot (one row per message or event, or one
  row for the whole state, as the core prefers);
* **a journal**: numbered transitions, each with a ``reported`` flag. A service writes the
  transition *before* it tells anyone (write-ahead), sends it, then marks it reported. After a
  crash it replays the unreported entries in order. Sequence numbers are never reused, so they
  are stable idempotency keys.

A :class:`Batch` of record changes, journal appends and "mark reported" is committed in one
transaction: a process killed at any point leaves either all of it or none of it. The one window
no local store can close is between a send and its mark: a crash there resends the entry after
restart, so a receiver that must see each transition exactly once keys its view by the
transition's identity (docs/persistence.md says how the SE services do this).

A database that is not a zse store (not SQLite, another application's, a newer schema, or
structurally damaged: SQLite's ``PRAGMA integrity_check``) raises :class:`~zse.errors.StoreError` at
:meth:`Store.open` and is never rewritten. Every row carries a checksum, verified at open and
on every read: a row that fails it, or that does not decode, or that a service's loader
rejects (:mod:`zse.records`), is quarantined (moved aside, logged, listed by
:meth:`Store.quarantined`) and the rest stays usable. Nothing is dropped silently.
On :class:`zse.sim.VirtualClockLoop` every wait on the database holds the virtual clock
(``external_work``), transparently.

Two engines behind this one API (:mod:`zse.store_engine` is the seam): a path opens an SQLite
file (:mod:`zse.store_sqlite`, the default), a ``postgresql://`` URL a schema of a PostgreSQL
database (:mod:`zse.store_postgres`, the ``postgres`` extra). The tables, checksums, JSON
encoding, quarantine and messages are the same on both (docs/persistence.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from zse.errors import StoreError
from zse.records import RecordError, load_each
from zse.store_engine import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    TABLES,
    Engine,
    NotJson,
    Plan,
    dump,
    entry_sum,
    hold_virtual_clock,
    is_postgres,
    load,
    migration_1,
    record_sum,
    redact_location,
    schema,
    stored,
    undecoded,
)
from zse.store_sqlite import SqliteEngine

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "Batch",
    "JournalEntry",
    "Quarantined",
    "RecordError",
    "Store",
    "StoreView",
    "close_keeping",
    "hold_virtual_clock",
    "write_at_stop",
]

LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")
# The shared helpers, under the names this module has always had.
_dump, _load, _NotJson, _record_sum, _entry_sum = dump, load, NotJson, record_sum, entry_sum

_RECORD_ROWS = "SELECT namespace, key, value, checksum FROM records"
_ENTRY_ROWS = "SELECT seq, namespace, kind, value, reported, checksum FROM journal"
_LOAD = "SELECT key, value, checksum FROM records WHERE namespace = ? ORDER BY key"
_GET = "SELECT value, checksum FROM records WHERE namespace = ? AND key = ?"
_JOURNAL = (
    "SELECT seq, kind, value, reported, checksum FROM journal"
    " WHERE namespace = ? AND reported <= ? ORDER BY seq"
)
_QUARANTINED = "SELECT id, origin, namespace, key, kind, reason, value FROM quarantine"
_APPEND = "INSERT INTO journal (namespace, kind, value) VALUES (?, ?, ?) RETURNING seq"
_SEAL = "UPDATE journal SET checksum = ? WHERE seq = ?"
_ENTRY = "SELECT namespace, kind, value, reported, checksum FROM journal WHERE seq = ?"
#: Mark an entry reported if it is, column for column, the one this store appended (its
#: content and checksum as written, not reported yet): the check of :meth:`Store._plan_mark`
#: without reading the row back.
_MARK_KNOWN = (
    "UPDATE journal SET reported = 1, checksum = ? WHERE seq = ? AND reported = 0"
    " AND checksum = ? AND namespace = ? AND kind = ? AND value = ? RETURNING seq"
)
#: How many entries appended and not yet marked a store remembers (:meth:`Store._plan_mark`).
_REMEMBERED = 1024
_PUT = (
    "INSERT INTO records (namespace, key, value, checksum) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
    " checksum = excluded.checksum"
)


async def close_keeping(close: Callable[[], Awaitable[object]], where: str) -> None:
    """The clean-up of a start-up that failed (or was cancelled): ``close()``, an error of
    its own logged (``where``: what is closed, with no password) instead of raised, so that
    the caller re-raises the exception in flight, not the close's."""
    try:
        await close()
    except Exception as exc:  # the original is the one to see (a CancelledError at Ctrl-C)
        said = redact_location(str(exc) or type(exc).__name__)
        LOGGER.warning("%s: close after a failed start failed too: %s", where, said)


async def write_at_stop(write: Callable[[], Awaitable[object]], what: str) -> None:
    """At a service's stop: ``write()``, the one commit of the changes it holds for its next
    commit (those of a write that failed, or was cancelled before its transaction), which no
    later commit would carry now. A :class:`~zse.errors.StoreError` is logged as one line
    (``what``: the service; the error names the store without its password, and no value
    written) and the changes are left as a failed write leaves them: to the next commit of
    this object, none after a restart (zse's choice, as the meter's stop)."""
    try:
        await write()
    except StoreError as exc:
        LOGGER.warning("%s: the changes held for the next commit not stored at stop: %s", what, exc)


async def _connect(location: str | os.PathLike[str]) -> Engine:
    """The engine ``location`` names: a ``postgresql://`` URL, or else an SQLite file."""
    if not is_postgres(location):
        return await SqliteEngine.connect(Path(location))
    try:
        from zse.store_postgres import PostgresEngine, parse_url  # noqa: PLC0415 - optional
    except ImportError:
        raise StoreError(
            "a PostgreSQL store needs the asyncpg driver: pip install 'zigpy-se[postgres]'"
        ) from None
    return await PostgresEngine.connect(parse_url(str(location)))


# -- the public shapes ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class JournalEntry:
    """One journalled transition: its sequence number, namespace, kind, JSON value, flag."""

    seq: int
    namespace: str
    kind: str
    value: Any
    reported: bool


class Batch:
    """Changes committed together by :meth:`Store.commit` (one database transaction).

    Values are JSON: ``None``, bools, ints, floats, strings, lists, string-keyed dicts and
    ``bytes`` (stored tagged, read back as ``bytes``); tuples read back as lists. Operations apply
    in the order they were added. Every method returns the batch, so calls chain.
    """

    def __init__(self) -> None:
        self._ops: list[tuple[str, str, str, str]] = []
        self._appends = 0
        self._landed: list[int] | None = None

    def __len__(self) -> int:
        return len(self._ops)

    @property
    def landed(self) -> list[int] | None:
        """Its appends' sequence numbers once :meth:`Store.commit` committed it, else None:
        what a caller whose commit raised (cancelled during its transaction, which is carried
        out) reads to know whether the batch is stored."""
        return self._landed

    @property
    def appends(self) -> int:
        """How many journal entries this batch appends (the length of commit's result)."""
        return self._appends

    def put(self, namespace: str, key: str, value: Any) -> Batch:
        """Create or replace the record ``key`` of ``namespace``."""
        self._ops.append(("put", _name(namespace), _name(key, "key"), _dump(value)))
        return self

    def delete(self, namespace: str, key: str) -> Batch:
        """Remove the record ``key`` of ``namespace`` (absent is fine)."""
        self._ops.append(("delete", _name(namespace), _name(key, "key"), ""))
        return self

    def replace(self, namespace: str, records: Mapping[str, Any]) -> Batch:
        """Make ``records`` the whole record set of ``namespace`` (a snapshot)."""
        self._ops.append(("clear", _name(namespace), "", ""))
        for key, value in records.items():
            self.put(namespace, key, value)
        return self

    def append(self, namespace: str, kind: str, value: Any) -> Batch:
        """Journal an unreported transition; :meth:`Store.commit` returns its sequence number.

        Journal what will go on the wire (the exact fields), not the intent, so that a replay
        after a crash sends the very same thing.
        """
        self._ops.append(("append", _name(namespace), _name(kind, "kind"), _dump(value)))
        self._appends += 1
        return self

    def mark_reported(self, seq: int) -> Batch:
        """Flag journal entry ``seq`` as reported (e.g. together with the state it changes)."""
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 < seq < 2**63:
            raise StoreError(f"journal sequence numbers are 1..2**63-1, not {seq!r:.40}")
        self._ops.append(("mark", "", str(seq), ""))
        return self


def _name(text: str, what: str = "namespace") -> str:
    """``text`` if a store can hold it as a name (UTF-8 text), else :class:`StoreError`."""
    if not isinstance(text, str):
        raise StoreError(f"a {what} is text, not {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise StoreError(f"a {what} with an unpaired surrogate cannot be stored") from None
    return text


@dataclass(frozen=True, kw_only=True)
class Quarantined:
    """A record or journal entry set aside (moved to the ``quarantine`` table), and why.

    ``origin`` is ``"record"`` (``key`` is its key) or ``"journal"`` (``key`` is the entry's
    sequence number, ``kind`` its kind). ``value`` is the raw stored text, kept for the operator
    and left out of the repr (a record may hold an install code).
    """

    id: int
    origin: str
    namespace: str
    key: str
    kind: str | None
    reason: str
    value: object = field(repr=False, compare=False)

    @property
    def where(self) -> str:
        """``record <namespace>/<key>`` or ``journal entry <seq> of <namespace>``."""
        if self.origin == "journal":
            return f"journal entry {self.key} of {self.namespace}"
        return f"record {self.namespace}/{self.key}"


def _settle(
    done: asyncio.Future[list[int]],
    seqs: list[int] | None = None,
    *,
    error: Exception | None = None,
) -> None:
    """Tell a batch's caller its sequence numbers or its error, unless it was cancelled."""
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
        done.exception()  # retrieved here: the caller re-raises it, nobody else need log it
    else:
        done.set_result(seqs if seqs is not None else [])


class Store:
    """A zse state database. Use :meth:`open` (or ``async with await Store.open(location)``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        #: The SQLite file (None for a PostgreSQL store: see :attr:`where`).
        self.path: Path | None = getattr(engine, "path", None)
        #: What messages and logs name: the file, or the URL without its password.
        self.where = engine.where
        self._lock = asyncio.Lock()
        #: Batches whose commit waits for the lock: the next transaction takes them all.
        self._waiting: list[tuple[Batch, asyncio.Future[list[int]]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._closed = False
        self._closing: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[Quarantined], None]] = []
        self._prefixes: set[str] = set()  # of its views
        #: Journal entries appended by this store and not marked yet, as written: seq ->
        #: (namespace, kind, value, checksum), the oldest dropped beyond :data:`_REMEMBERED`.
        self._appended: dict[int, tuple[str, str, str, str]] = {}

    def __repr__(self) -> str:
        return f"<Store {self.where}>"

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    async def open(cls, location: str | os.PathLike[str]) -> Store:
        """Open or create the store at ``location``: an SQLite file's path, or a
        ``postgresql://user@host:port/database?schema=name`` URL (docs/persistence.md).

        A missing or empty file (an empty or missing schema) becomes a new store. A database
        that is not a zse store, or whose structure is damaged (SQLite: ``PRAGMA
        integrity_check``), raises :class:`~zse.errors.StoreError` and is left untouched. A
        store of schema 1 gets its checksums (one transaction). Then every row's checksum is
        verified: a record or journal entry whose content no longer matches it is quarantined
        (:meth:`quarantined`, logged). A second open of a store that is open (in this process
        or another) raises :class:`~zse.errors.StoreError`: a store has one writer.
        """
        with hold_virtual_clock():
            engine = await _connect(location)
        store = cls(engine)
        try:
            await store._check_or_create()
        except Exception:
            with contextlib.suppress(*engine.errors), hold_virtual_clock():
                await engine.close()
            raise
        except BaseException:  # cancelled: end the connection without waiting
            engine.abandon()
            raise
        return store

    async def close(self) -> None:
        """Close the database (pending commits finish first). Closing twice is fine.

        The close runs in its own task: a caller cancelled while it waits (a shutdown's own
        cancellation) gets its CancelledError, and the close still happens once the work in
        progress ends. If that task is cancelled too (the loop is shutting down), the
        connection is ended without waiting (SQLite: its worker thread is told to stop after
        the work already queued), so that the interpreter does not wait for it at exit.
        """
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
            self._closing.add_done_callback(self._close_ended)
        elif self._closing.done():
            return
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        async with self._lock:
            if self._closed:
                return
            group = self._take_waiting()
            if group:  # commits called before the close, waiting for the committer's turn
                await self._commit_group(group)
            self._closed = True
            with hold_virtual_clock():
                await self._engine.close()

    def _close_ended(self, task: asyncio.Task[None]) -> None:
        """A close task that did not end normally (cancelled, even before it started, or
        failed) still ends the connection, without waiting."""
        if not task.cancelled() and task.exception() is None:
            return
        self._closed = True
        self._engine.abandon()

    def view(self, prefix: str) -> StoreView:
        """Part of this store for one owner among several (one simulated meter of many in
        a process): every namespace it is given is ``prefix`` + namespace, out of sight of
        the other views; its commits join this store's group commit. ``prefix`` must not
        begin another view's (nor be begun by one): :class:`ValueError`. Closing a view
        closes nothing; close this store once its views are done."""
        taken = self._prefixes
        if not prefix or any(p.startswith(prefix) or prefix.startswith(p) for p in taken):
            raise ValueError(f"{self.where}: view prefix {prefix!r} overlaps another view's")
        taken.add(prefix)
        return StoreView(self, prefix)

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _check_or_create(self) -> None:
        engine = self._engine
        version, tables = await self._guarded(engine.identify, "read the header")
        if version == 0:
            await self._install(schema(engine.dialect), what="create the schema")
            await self._guarded(engine.opened, "open")
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.where}: zse store schema version {version} is newer than this zse "
                f"understands ({SCHEMA_VERSION}); upgrade zse"
            )
        expected = TABLES.get(version, TABLES[SCHEMA_VERSION])
        if version < 1 or not tables >= expected:
            raise StoreError(
                f"{self.where}: damaged zse store: schema version {version}, "
                f"tables {sorted(tables & expected)} of {sorted(expected)}"
            )
        await self._guarded(engine.check_integrity, "read")
        await self._guarded(engine.opened, "open")
        if version == 1:
            await self._migrate_1()
        await self._verify_all()

    async def _guarded(self, step: Callable[[], Awaitable[_T]], what: str) -> _T:
        async with self._lock:
            return await self._guard(step(), what)

    async def _migrate_1(self) -> None:
        """Schema 1 -> 2: every row gets its checksum, in one transaction."""

        async def checksums() -> None:
            db = self._engine
            for namespace, key, value in await db.fetch(
                "SELECT namespace, key, value FROM records"
            ):
                await db.execute(
                    "UPDATE records SET checksum = ? WHERE namespace = ? AND key = ?",
                    (_record_sum(namespace, key, value), namespace, key),
                )
            for seq, namespace, kind, value, reported in await db.fetch(
                "SELECT seq, namespace, kind, value, reported FROM journal"
            ):
                await db.execute(
                    "UPDATE journal SET checksum = ? WHERE seq = ?",
                    (_entry_sum(seq, namespace, kind, value, reported), seq),
                )

        what = "add checksums (schema 1 -> 2)"
        await self._install(migration_1(self._engine.dialect), what=what, then=checksums)
        counts = await self._rows(
            "SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM journal)"
        )
        LOGGER.info(
            "%s: zse store upgraded to schema %d: %d records and %d journal entries got a checksum",
            self.where,
            SCHEMA_VERSION,
            *counts[0],
        )

    async def _verify_all(self) -> None:
        """Quarantine every row whose content does not match its checksum."""
        bad: list[tuple[str, Any, Any, str]] = [
            ("record", namespace, key, "checksum mismatch: the stored record was altered")
            for namespace, key, value, sum_ in await self._rows(_RECORD_ROWS, what="verify")
            if sum_ != _record_sum(namespace, key, value)
        ]
        for row in await self._rows(_ENTRY_ROWS, what="verify"):
            if row[5] != _entry_sum(*row[:5]):
                bad.append(
                    ("journal", None, row[0], "checksum mismatch: the stored entry was altered")
                )
            elif row[4] not in (0, 1):  # written behind the store's back, checksum and all
                bad.append(("journal", None, row[0], "reported flag is neither 0 nor 1"))
        await self._set_aside(bad)

    async def _install(
        self,
        statements: Iterable[str],
        *,
        what: str,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Run schema statements (and ``then``) and stamp the current schema version, in one
        transaction."""

        async def work() -> None:
            for statement in statements:
                await self._engine.execute(statement)
            if then is not None:
                await then()
            await self._engine.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
            await self._engine.stamp()

        await self._transaction(work, what=what)

    # -- low level -------------------------------------------------------------------------

    async def _guard(self, awaitable: Awaitable[_T], what: str) -> _T:
        try:
            with hold_virtual_clock():
                return await awaitable
        except StoreError:
            raise
        except self._engine.errors as exc:
            if self._closed and self._engine.closed_error(exc):
                raise StoreError(f"{self.where}: store is closed (cannot {what})") from exc
            raise StoreError(f"{self.where}: cannot {what}: {self._engine.describe(exc)}") from exc
        except ValueError as exc:  # aiosqlite's "Connection closed": stopped by a cancelled close
            if self._closed and self._engine.closed_error(exc):
                raise StoreError(f"{self.where}: store is closed (cannot {what})") from exc
            raise

    async def _rows(
        self, sql: str, params: Iterable[Any] = (), *, what: str = "read"
    ) -> list[tuple[Any, ...]]:
        async with self._lock:
            self._check_open(what)
            return await self._guard(self._engine.fetch(sql, tuple(params)), what)

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise StoreError(f"{self.where}: store is closed (cannot {what})")

    async def _transaction(self, work: Callable[[], Awaitable[_T]], *, what: str) -> _T:
        async with self._lock:
            return await self._locked_transaction(work, what=what)

    async def _locked_transaction(
        self, work: Callable[[], Awaitable[_T]], *, what: str, commits: bool = False
    ) -> _T:
        """:meth:`_transaction` with the lock held already (``commits``: ``work`` ends with
        the COMMIT itself, :meth:`Engine.finish`)."""
        self._check_open(what)
        await self._guard(self._engine.begin(), what)
        try:
            result = await self._guard(work(), what)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._guard(self._engine.execute("ROLLBACK"), what)
            raise
        if not commits:
            await self._guard(self._engine.execute("COMMIT"), what)
        return result

    # -- the API ---------------------------------------------------------------------------

    async def commit(self, batch: Batch) -> list[int]:
        """Apply ``batch`` atomically; return the sequence numbers of its appends, in order.

        Group commit: batches whose commits wait while a transaction runs are applied
        together, in the order of their calls, in the next one (one transaction, one sync to
        disk); each call returns once its batch is committed, as before. Should that shared
        transaction fail, each batch is tried again in a transaction of its own, so that an
        error is raised only to the call whose batch caused it. A commit cancelled before its
        transaction begins is not carried out; one cancelled during it is (the transaction
        holds other callers' batches too), as one cancelled just after its COMMIT always was:
        the call then waits for the transaction's end before it raises its CancelledError
        (however often it is cancelled meanwhile: a transaction's time is bounded, by the disk
        or PostgreSQL's ``command_timeout``), so that :attr:`Batch.landed` says whether the
        batch is stored.
        """
        if not batch._ops:
            batch._landed = []
            return []
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[int]] = loop.create_future()
        self._waiting.append((batch, done))
        if self._committer is None or self._committer.done():
            self._committer = loop.create_task(self._commit_waiting())
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            begun = all(waiting is not batch for waiting, _ in self._waiting)  # taken
            while begun and not done.done():  # under way: carried out, its end awaited,
                try:  # however often the caller is cancelled meanwhile (its time is bounded)
                    await asyncio.shield(done)
                except asyncio.CancelledError:
                    continue  # again (or the loop ends: ``done`` settled, cancelled)
                except Exception:  # failed: landed stays None
                    break
            done.cancel()  # not begun: skipped (_take_waiting)
            raise

    async def _commit_waiting(self) -> None:
        """The waiting batches, a transaction at a time, each taking all that wait (a task of
        its own, so that cancelling one caller never cuts the others' transaction)."""
        try:
            while self._waiting:
                async with self._lock:
                    group = self._take_waiting()
                    if group:
                        await self._commit_group(group)
        except BaseException:  # the loop is shutting down: nobody is told the batches landed
            for _, done in self._waiting:
                done.cancel()
            self._waiting = []
            raise

    def _take_waiting(self) -> list[tuple[Batch, asyncio.Future[list[int]]]]:
        """The batches waiting to be committed (those whose callers are still waiting)."""
        group = [(batch, done) for batch, done in self._waiting if not done.done()]
        self._waiting = []
        return group

    async def _commit_group(self, group: list[tuple[Batch, asyncio.Future[list[int]]]]) -> None:
        """With the lock held: the batches of ``group`` in one transaction, else (it failed)
        one by one; each future gets its batch's sequence numbers or its error (a caller
        that was cancelled meanwhile gets nothing: its future is cancelled already)."""
        try:
            try:
                results = await self._commit_batches([batch for batch, _ in group])
            except Exception as exc:
                if len(group) == 1:
                    _settle(group[0][1], error=exc)
                    return
                for batch, done in group:  # whose batch failed: each alone
                    if done.done():  # cancelled by its caller: not carried out
                        continue
                    try:
                        (seqs,) = await self._commit_batches([batch])
                    except Exception as alone:
                        _settle(done, error=alone)
                    else:
                        batch._landed = seqs
                        _settle(done, seqs)
                return
        except BaseException:  # cancelled (the loop ends), retries too: every call ends
            for _, done in group:
                done.cancel()
            raise
        for (batch, done), seqs in zip(group, results, strict=True):
            batch._landed = seqs
            _settle(done, seqs)

    async def _commit_batches(self, batches: list[Batch]) -> list[list[int]]:
        """With the lock held: ``batches`` in one transaction (:meth:`Engine.finish`: on
        SQLite one trip to the connection's thread); each batch's sequence numbers. The
        entries appended are remembered once committed, those marked forgotten."""
        known = {
            int(key): self._appended[int(key)]
            for batch in batches
            for op, _, key, _ in batch._ops
            if op == "mark" and int(key) in self._appended
        }
        written: list[tuple[int, tuple[str, str, str, str]]] = []
        # Marks alone need not wait for the disk: one a power cut loses leaves its entry
        # unreported, told again (at least once, as every journal reader takes it).
        durable = any(op != "mark" for batch in batches for op, _, _, _ in batch._ops)
        results = await self._locked_transaction(
            lambda: self._engine.finish(self._plan_all(batches, known, written), durable=durable),
            what="commit",
            commits=True,
        )
        remembered = self._appended
        for batch in batches:
            for op, _, key, _ in batch._ops:
                if op == "mark":
                    remembered.pop(int(key), None)
        for seq, entry in written:
            remembered[seq] = entry
        while len(remembered) > _REMEMBERED:
            del remembered[next(iter(remembered))]
        return results

    @staticmethod
    def _plan_all(
        batches: list[Batch],
        known: Mapping[int, tuple[str, str, str, str]],
        written: list[tuple[int, tuple[str, str, str, str]]],
    ) -> Plan[list[list[int]]]:
        """The statements of every operation of ``batches``, in order (inside a
        transaction); each batch's sequence numbers. ``known``: entries to mark as this store
        appended them; ``written`` gets each entry appended. Pure: no I/O, no state of the
        store's (it may run on the connection's thread)."""
        out: list[list[int]] = []
        for batch in batches:
            seqs: list[int] = []
            for op, namespace, key, value in batch._ops:
                if op == "put":
                    yield _PUT, (namespace, key, value, _record_sum(namespace, key, value))
                elif op == "delete":
                    yield (
                        "DELETE FROM records WHERE namespace = ? AND key = ?",
                        (namespace, key),
                    )
                elif op == "clear":
                    yield "DELETE FROM records WHERE namespace = ?", (namespace,)
                elif op == "append":
                    [(seq,)] = yield _APPEND, (namespace, key, value)
                    sum_ = _entry_sum(seq, namespace, key, value, 0)
                    yield _SEAL, (sum_, seq)
                    seqs.append(int(seq))
                    written.append((int(seq), (namespace, key, value, sum_)))
                else:
                    yield from Store._plan_mark(int(key), known.get(int(key)))
            out.append(seqs)
        return out

    @staticmethod
    def _plan_mark(seq: int, known: tuple[str, str, str, str] | None) -> Plan[None]:
        """Mark entry ``seq`` reported, only if it is intact (a damaged one keeps its
        mismatch). An entry ``known`` as this store appended it is marked in one statement
        that checks it is still so; otherwise (or if that finds it changed) it is read back
        and verified first."""
        if known is not None:
            namespace, kind, value, sum_ = known
            marked = yield (
                _MARK_KNOWN,
                (_entry_sum(seq, namespace, kind, value, 1), seq, sum_, namespace, kind, value),
            )
            if marked:
                return
        rows = yield _ENTRY, (seq,)
        if not rows:
            return
        namespace, kind, value, reported, sum_ = rows[0]
        if reported != 0 or sum_ != _entry_sum(seq, namespace, kind, value, reported):
            return
        yield (
            "UPDATE journal SET reported = 1, checksum = ? WHERE seq = ?",
            (_entry_sum(seq, namespace, kind, value, 1), seq),
        )

    async def load(self, namespace: str) -> dict[str, Any]:
        """The records of ``namespace`` (the core's snapshot), key -> value, keys sorted.

        Each is verified against its checksum and decoded; one that fails is quarantined
        (:meth:`quarantined`) and left out.
        """
        rows = await self._rows(_LOAD, (namespace,))
        found, bad = {}, []
        for key, text, sum_ in rows:
            try:
                found[key] = self._decode(text, sum_ == _record_sum(namespace, key, text))
            except _NotJson as exc:
                bad.append(("record", namespace, key, str(exc)))
        await self._set_aside(bad)
        return found

    async def get(self, namespace: str, key: str, default: Any = None) -> Any:
        """One record of ``namespace``, or ``default`` (also when it fails its checksum or
        does not decode: it is then quarantined)."""
        rows = await self._rows(_GET, (namespace, key))
        if not rows:
            return default
        text, sum_ = rows[0]
        try:
            return self._decode(text, sum_ == _record_sum(namespace, key, text))
        except _NotJson as exc:
            await self._set_aside([("record", namespace, key, str(exc))])
            return default

    @staticmethod
    def _decode(text: object, ok: object) -> Any:
        if not ok:
            raise _NotJson("checksum mismatch: the stored value was altered")
        return _load(text)

    async def unreported(self, namespace: str) -> list[JournalEntry]:
        """The journal entries of ``namespace`` not yet marked reported, oldest first."""
        return await self._journal(namespace, only_unreported=True)

    async def journal(self, namespace: str) -> list[JournalEntry]:
        """Every journal entry of ``namespace`` still kept, oldest first (verified and decoded
        as :meth:`load` does: one that fails is quarantined and left out)."""
        return await self._journal(namespace, only_unreported=False)

    async def _journal(self, namespace: str, *, only_unreported: bool) -> list[JournalEntry]:
        rows = await self._rows(_JOURNAL, (namespace, 0 if only_unreported else 1))
        entries, bad = [], []
        for seq, kind, text, reported, sum_ in rows:
            try:
                value = self._decode(text, sum_ == _entry_sum(seq, namespace, kind, text, reported))
            except _NotJson as exc:
                bad.append(("journal", namespace, seq, str(exc)))
                continue
            entries.append(
                JournalEntry(
                    seq=int(seq),
                    namespace=namespace,
                    kind=str(kind),
                    value=value,
                    reported=bool(reported),
                )
            )
        await self._set_aside(bad)
        return entries

    async def mark_reported(self, *seqs: int) -> None:
        """Flag journal entries as reported (idempotent). A commit of marks alone (this, or
        a :class:`Batch` of :meth:`Batch.mark_reported` only) does not wait for the disk
        (:attr:`~zse.store_engine.Dialect.lazy`): a killed process keeps it, a power cut may
        lose it, and the entry is then reported again; any other write in the same
        transaction makes it wait, as every commit does."""
        batch = Batch()
        for seq in seqs:
            batch.mark_reported(seq)
        await self.commit(batch)

    async def prune(self, namespace: str, *, keep: int = 0) -> int:
        """Delete reported entries of ``namespace`` but the newest ``keep``; return how many."""

        async def work() -> int:
            return await self._engine.execute(
                "DELETE FROM journal WHERE namespace = ? AND reported = 1 AND seq NOT IN "
                "(SELECT seq FROM journal WHERE namespace = ? AND reported = 1 "
                "ORDER BY seq DESC LIMIT ?)",
                (namespace, namespace, max(0, keep)),
            )

        return await self._transaction(work, what="prune")

    async def namespaces(self) -> list[str]:
        """Every namespace with records or journal entries."""
        rows = await self._rows(
            "SELECT namespace FROM records UNION SELECT namespace FROM journal ORDER BY 1"
        )
        return [str(row[0]) for row in rows]

    # -- loading through a loader, bad records quarantined ---------------------------------

    async def load_with(
        self, namespace: str, build: Callable[[dict[str, Any], Callable[[RecordError], None]], _T]
    ) -> _T:
        """``build(records, on_bad)`` over :meth:`load`; every :class:`RecordError` the loader
        hands to ``on_bad`` is quarantined (:meth:`quarantine`) once it returns."""
        bad: list[RecordError] = []
        built = build(await self.load(namespace), bad.append)
        await self.quarantine(*bad)
        return built

    async def unreported_with(
        self, namespace: str, build: Callable[[Any], _T]
    ) -> list[tuple[int, _T]]:
        """The unreported entries of ``namespace`` as (seq, ``build(value)``); an entry
        ``build`` rejects (as :func:`zse.records.load_each` counts it) is quarantined and
        skipped."""
        return await self._entries_with(namespace, build, only_unreported=True)

    async def journal_with(
        self, namespace: str, build: Callable[[Any], _T]
    ) -> list[tuple[int, _T]]:
        """:meth:`unreported_with` over every entry still kept (:meth:`journal`)."""
        return await self._entries_with(namespace, build, only_unreported=False)

    async def _entries_with(
        self, namespace: str, build: Callable[[Any], _T], *, only_unreported: bool
    ) -> list[tuple[int, _T]]:
        built: list[tuple[int, _T]] = []
        bad: list[RecordError] = []
        load_each(
            [
                (str(e.seq), e.value)
                for e in await self._journal(namespace, only_unreported=only_unreported)
            ],
            lambda seq, value: built.append((int(seq), build(value))),
            namespace=namespace,
            on_bad=bad.append,
            journal=True,
        )
        await self.quarantine(*bad)
        return built

    # -- quarantine ------------------------------------------------------------------------

    async def quarantine(self, *errors: RecordError) -> None:
        """Set aside the records (or journal entries, ``seq`` given) that these loader errors
        name: each is moved, as stored, to the ``quarantine`` table, logged (a warning naming
        it and the reason, never its content) and told to :meth:`on_quarantine` listeners."""
        await self._set_aside(
            [
                ("journal", e.namespace, e.seq, e.reason)
                if e.seq is not None
                else ("record", e.namespace, e.key, e.reason)
                for e in errors
            ]
        )

    async def quarantined(self, namespace: str | None = None) -> list[Quarantined]:
        """Everything set aside so far (of one namespace, or all), oldest first."""
        if namespace is None:
            rows = await self._rows(f"{_QUARANTINED} ORDER BY id")
        else:
            rows = await self._rows(f"{_QUARANTINED} WHERE namespace = ? ORDER BY id", (namespace,))
        return [_quarantined(row) for row in rows]

    def on_quarantine(self, listener: Callable[[Quarantined], None]) -> Callable[[], None]:
        """Call ``listener`` with each record set aside from now on; returns its remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def _set_aside(self, items: list[tuple[str, Any, Any, str]]) -> None:
        """Move rows to the quarantine table: (origin, namespace, key or seq, reason)."""
        if not items:
            return

        async def work() -> list[Quarantined]:
            moved = []
            for origin, namespace, key, reason in items:
                params: tuple[Any, ...]
                if origin == "record":
                    where, params = "FROM records WHERE namespace = ? AND key = ?", (namespace, key)
                    if undecoded(namespace) or undecoded(key):  # damaged bytes: by bytes
                        raw = self._engine.dialect.raw_text
                        where = f"FROM records WHERE {raw % 'namespace'} = ? AND {raw % 'key'} = ?"
                        params = (stored(namespace), stored(key))
                    columns = "'record', namespace, key, NULL, value, CAST(NULL AS INTEGER)"
                else:
                    where, params = "FROM journal WHERE seq = ?", (int(key),)
                    seq = self._engine.dialect.seq_text
                    columns = f"'journal', namespace, {seq}, kind, value, reported"
                rows = await self._engine.fetch(
                    "INSERT INTO quarantine (origin, namespace, key, kind, value, reported, reason)"
                    f" SELECT {columns}, CAST(? AS TEXT) {where}"
                    " RETURNING id, origin, namespace, key, kind, reason, value",
                    (reason, *params),
                )
                if not rows:
                    continue  # already gone
                await self._engine.execute(f"DELETE {where}", params)
                moved.append(_quarantined(rows[0]))
            return moved

        for item in await self._transaction(work, what="quarantine damaged records"):
            # a damaged name is read with surrogate escapes: logged escaped, so that a log
            # written as UTF-8 takes the line
            LOGGER.warning(
                "%s: %s quarantined: %s", self.where, _escaped(item.where), _escaped(item.reason)
            )
            for listener in list(self._listeners):
                listener(item)


class StoreView(Store):
    """A view of a :class:`Store` (:meth:`Store.view`): the same API on the namespaces that
    begin with :attr:`prefix`, which it adds and takes off; durability, checksums,
    quarantine and group commit are the store's. Many owners' small transactions become one
    (one sync to disk) where each in its own file would be its own."""

    def __init__(self, store: Store, prefix: str) -> None:  # the store's state, not its own
        self._store, self.prefix = store, prefix
        self.path = store.path
        self.where = f"{store.where} [{prefix}]"

    def __repr__(self) -> str:
        return f"<StoreView {self.where}>"

    def _in(self, namespace: str) -> str:
        return self.prefix + namespace

    def _out(self, namespace: str) -> str:
        return namespace[len(self.prefix) :]

    async def close(self) -> None:
        """Nothing: the store stays open for its other views."""

    def view(self, prefix: str) -> StoreView:
        """Views of a view: none (:class:`ValueError`); take them of the store."""
        raise ValueError(f"{self.where}: a view has no views of its own")

    async def commit(self, batch: Batch) -> list[int]:
        moved = Batch()
        moved._ops = [
            (op, ns if op == "mark" else self._in(ns), k, v) for op, ns, k, v in batch._ops
        ]
        moved._appends = batch._appends
        try:
            return await self._store.commit(moved)
        finally:
            batch._landed = moved._landed

    async def load(self, namespace: str) -> dict[str, Any]:
        return await self._store.load(self._in(namespace))

    async def get(self, namespace: str, key: str, default: Any = None) -> Any:
        return await self._store.get(self._in(namespace), key, default)

    async def _journal(self, namespace: str, *, only_unreported: bool) -> list[JournalEntry]:
        entries = await self._store._journal(self._in(namespace), only_unreported=only_unreported)
        return [replace(entry, namespace=namespace) for entry in entries]

    async def prune(self, namespace: str, *, keep: int = 0) -> int:
        return await self._store.prune(self._in(namespace), keep=keep)

    async def namespaces(self) -> list[str]:
        mine = [n for n in await self._store.namespaces() if n.startswith(self.prefix)]
        return [self._out(n) for n in mine]

    async def quarantine(self, *errors: RecordError) -> None:
        await self._store.quarantine(
            *(RecordError(self._in(e.namespace), e.key, e.reason, seq=e.seq) for e in errors)
        )

    async def quarantined(self, namespace: str | None = None) -> list[Quarantined]:
        if namespace is None:
            found = [
                q for q in await self._store.quarantined() if q.namespace.startswith(self.prefix)
            ]
        else:
            found = await self._store.quarantined(self._in(namespace))
        return [replace(q, namespace=self._out(q.namespace)) for q in found]

    def on_quarantine(self, listener: Callable[[Quarantined], None]) -> Callable[[], None]:
        def mine(item: Quarantined) -> None:
            if item.namespace.startswith(self.prefix):
                listener(replace(item, namespace=self._out(item.namespace)))

        return self._store.on_quarantine(mine)


def _escaped(text: str) -> str:
    """``text`` with lone surrogates (the damaged octets of a name read with surrogate
    escapes) written as ``\\udcXX``: encodable as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _quarantined(row: tuple[Any, ...]) -> Quarantined:
    id_, origin, namespace, key, kind, reason, value = row
    return Quarantined(
        id=int(str(id_)),
        origin=str(origin),
        namespace=str(namespace),
        key=str(key),
        kind=None if kind is None else str(kind),
        reason=str(reason),
        value=value,
    )
