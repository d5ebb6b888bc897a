"""Durable state for the SE services: records and a write-ahead journal in SQLite (aiosqlite).

The sans-IO cores (:mod:`zse.messaging`, :mod:`zse.drlc`) know nothing of storage; the asyncio
services that bind them persist what the cores decide through one :class:`Store`. A store holds,
per *namespace* (one per service instance, e.g. ``"messaging.client/1"``):

* **records**: a key -> JSON value map, the core's snapshot (one row per message or event, or one
  row for the whole state, as the core prefers);
* **a journal**: numbered transitions, each with a ``reported`` flag. A service writes the
  transition *before* it tells anyone (write-ahead), sends it, then marks it reported. After a
  crash it replays the unreported entries in order. Sequence numbers are never reused, so they
  are stable idempotency keys.

A :class:`Batch` of record changes, journal appends and "mark reported" is committed in one SQLite
transaction: a process killed at any point leaves either all of it or none of it. The one window
no local store can close is between a send and its mark: a crash there resends the entry after
restart, so a receiver that must see each transition exactly once keys its view by the
transition's identity (docs/persistence.md says how the SE services do this).

A database that is not a zse store (not SQLite, another application's, a newer schema, or
structurally damaged: ``PRAGMA integrity_check``) raises :class:`~zse.errors.StoreError` at
:meth:`Store.open` and is never rewritten. Every row carries a checksum, verified at open and
on every read: a row that fails it, or that does not decode, or that a service's loader
rejects (:mod:`zse.records`), is quarantined (moved aside, logged, listed by
:meth:`Store.quarantined`) and the rest stays usable. Nothing is dropped silently.
On :class:`zse.sim.VirtualClockLoop` every wait on the SQLite thread holds the virtual clock
(``external_work``), transparently.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from zse.errors import StoreError
from zse.records import RecordError, load_each

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "Batch",
    "JournalEntry",
    "Quarantined",
    "RecordError",
    "Store",
    "hold_virtual_clock",
]

#: SQLite header ``application_id`` of a zse store: ASCII "ZSE1".
APPLICATION_ID = 0x5A534531
#: SQLite header ``user_version``: the schema version this module writes and reads
#: (2: a checksum per record and journal entry, and the quarantine table).
SCHEMA_VERSION = 2

LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

_QUARANTINE = (
    "CREATE TABLE quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL,"
    " namespace, key, kind, value, reported, reason TEXT NOT NULL)"
)
_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE records (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " checksum TEXT, PRIMARY KEY (namespace, key)) WITHOUT ROWID",
    "CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL,"
    " kind TEXT NOT NULL, value TEXT NOT NULL, reported INTEGER NOT NULL DEFAULT 0,"
    " checksum TEXT)",
    "CREATE INDEX journal_unreported ON journal (namespace, reported, seq)",
    _QUARANTINE,
)
#: Schema version 1 (zse before the checksums) -> 2, in one transaction at the first open.
_MIGRATE_1 = (
    "ALTER TABLE records ADD COLUMN checksum TEXT",
    "ALTER TABLE journal ADD COLUMN checksum TEXT",
    _QUARANTINE,
    "UPDATE records SET checksum = zse_record_sum(namespace, key, value)",
    "UPDATE journal SET checksum = zse_entry_sum(seq, namespace, kind, value, reported)",
)
_TABLES = {1: {"meta", "records", "journal"}, 2: {"meta", "records", "journal", "quarantine"}}
#: ``checksum IS zse_record_sum(...)`` / ``zse_entry_sum(...)``: the row is as it was written.
_BAD_RECORDS = (
    "SELECT namespace, key FROM records WHERE checksum IS NOT zse_record_sum(namespace, key, value)"
)
_BAD_ENTRIES = (
    "SELECT seq FROM journal"
    " WHERE checksum IS NOT zse_entry_sum(seq, namespace, kind, value, reported)"
)
_LOAD = (
    "SELECT key, value, checksum IS zse_record_sum(namespace, key, value) FROM records"
    " WHERE namespace = ? ORDER BY key"
)
_GET = (
    "SELECT value, checksum IS zse_record_sum(namespace, key, value) FROM records"
    " WHERE namespace = ? AND key = ?"
)
_JOURNAL = (
    "SELECT seq, kind, value, reported,"
    " checksum IS zse_entry_sum(seq, namespace, kind, value, reported)"
    " FROM journal WHERE namespace = ? AND reported <= ? ORDER BY seq"
)
#: Mark an entry reported, only if it is intact (a damaged one keeps its mismatch).
_MARK = (
    "UPDATE journal SET reported = 1, checksum = zse_entry_sum(seq, namespace, kind, value, 1)"
    " WHERE seq = ? AND reported = 0"
    " AND checksum IS zse_entry_sum(seq, namespace, kind, value, reported)"
)


@contextlib.contextmanager
def hold_virtual_clock() -> Iterator[None]:
    """Hold a virtual clock while awaiting real-time work; a no-op on an ordinary event loop.

    Any asyncio loop with an ``external_work()`` context manager (:class:`zse.sim.VirtualClockLoop`)
    gets it; the store wraps all its awaits in this, so callers never need to.
    """
    external = getattr(asyncio.get_running_loop(), "external_work", None)
    if external is None:
        yield
        return
    with external():
        yield


# -- values ---------------------------------------------------------------------------------


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"$bytes": bytes(value).hex()}
    raise TypeError(f"cannot store a {type(value).__name__}")


def _object_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$bytes" in obj:
        return bytes.fromhex(obj["$bytes"])
    return obj


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, default=_default, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"value cannot be stored: {exc}") from exc
    except RecursionError:
        raise StoreError("value cannot be stored: nested too deeply") from None


class _NotJson(Exception):
    """A stored value that does not decode (the row is quarantined)."""


def _load(text: object) -> Any:
    if not isinstance(text, str):
        raise _NotJson(f"stored value is not text ({type(text).__name__})")
    try:
        return json.loads(text, object_hook=_object_hook)
    except ValueError as exc:  # JSONDecodeError, or a bad $bytes hex; the message has no content
        raise _NotJson(f"stored value is not valid JSON ({type(exc).__name__})") from None
    except RecursionError:
        raise _NotJson("stored value is not valid JSON (nested too deeply)") from None


def _checksum(*parts: object) -> str:
    """BLAKE2b-128 of the typed, length-prefixed parts of a row (what ``checksum`` holds).

    Plain, not keyed: it detects damage (a flipped bit, a changed digit, a row's value moved to
    another key), not a forger who can rewrite the file (they could recompute any key kept in
    it). It never raises, whatever a damaged row's column types are.
    """
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, str):
            tag, data = b"s", part.encode("utf-8", "surrogatepass")
        elif isinstance(part, bytes):
            tag, data = b"b", part
        elif part is None:
            tag, data = b"n", b""
        else:  # int or float
            tag, data = b"i" if isinstance(part, int) else b"f", repr(part).encode()
        digest.update(tag + len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def _record_sum(namespace: object, key: object, value: object) -> str:
    return _checksum("record", namespace, key, value)


def _entry_sum(
    seq: object, namespace: object, kind: object, value: object, reported: object
) -> str:
    return _checksum("journal", seq, namespace, kind, value, reported)


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
    """Changes committed together by :meth:`Store.commit` (one SQLite transaction).

    Values are JSON: ``None``, bools, ints, floats, strings, lists, string-keyed dicts and
    ``bytes`` (stored tagged, read back as ``bytes``); tuples read back as lists. Operations apply
    in the order they were added. Every method returns the batch, so calls chain.
    """

    def __init__(self) -> None:
        self._ops: list[tuple[str, str, str, str]] = []
        self._appends = 0

    def __len__(self) -> int:
        return len(self._ops)

    @property
    def appends(self) -> int:
        """How many journal entries this batch appends (the length of commit's result)."""
        return self._appends

    def put(self, namespace: str, key: str, value: Any) -> Batch:
        """Create or replace the record ``key`` of ``namespace``."""
        self._ops.append(("put", namespace, key, _dump(value)))
        return self

    def delete(self, namespace: str, key: str) -> Batch:
        """Remove the record ``key`` of ``namespace`` (absent is fine)."""
        self._ops.append(("delete", namespace, key, ""))
        return self

    def replace(self, namespace: str, records: Mapping[str, Any]) -> Batch:
        """Make ``records`` the whole record set of ``namespace`` (a snapshot)."""
        self._ops.append(("clear", namespace, "", ""))
        for key, value in records.items():
            self.put(namespace, key, value)
        return self

    def append(self, namespace: str, kind: str, value: Any) -> Batch:
        """Journal an unreported transition; :meth:`Store.commit` returns its sequence number.

        Journal what will go on the wire (the exact fields), not the intent, so that a replay
        after a crash sends the very same thing.
        """
        self._ops.append(("append", namespace, kind, _dump(value)))
        self._appends += 1
        return self

    def mark_reported(self, seq: int) -> Batch:
        """Flag journal entry ``seq`` as reported (e.g. together with the state it changes)."""
        self._ops.append(("mark", "", str(int(seq)), ""))
        return self


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


def _claim(path: Path) -> int | None:
    """Take the store's single-writer lock: an advisory ``flock`` on the database file itself.

    The exactly-once bookkeeping of a store assumes one process at a time: a second process
    (or a second open in this one) gets :class:`~zse.errors.StoreError` instead of silently
    interleaving its journal with the first one's. The lock is on the *file* (its inode), not
    on a name: a second open through a symlink or a hard link opens the same inode and is
    refused too (a lock file named after the path, as zse had before, was not: and two hard
    links would even keep two separate ``-wal`` files). On Linux ``flock`` and SQLite's own
    POSIX (``fcntl``) byte-range locks are independent, so this lock never blocks SQLite. The
    descriptor is closed only after SQLite's connection is closed: closing any descriptor of a
    file drops the process's POSIX locks on it, which must not happen while SQLite holds some.
    The kernel drops the lock when the process dies, even by SIGKILL. Returns the descriptor;
    None where ``fcntl`` does not exist (Windows), where nothing is enforced.
    """
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # a new empty file is a new store
    except OSError as exc:
        raise StoreError(f"{path}: cannot open: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreError(
            f"{path} is in use by another zse process (or already open in this one, by this "
            "or another path to the same file); a store has one writer at a time"
        ) from None
    return fd


def _release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


def _abandon(connection: aiosqlite.Connection, owner: int | None) -> None:
    """Stop ``connection``'s worker thread without waiting (a cancelled open or close).

    aiosqlite's thread is not a daemon: left running, it keeps the interpreter from exiting.
    The stop runs after the work already queued; the single-writer lock is released when the
    connection is closed (see :func:`_claim`), or by the process's exit if the loop is gone.
    """
    done = connection.stop()
    if done is None:
        return
    done.add_done_callback(lambda _: _release(owner))


class Store:
    """A zse state database. Use :meth:`open` (or ``async with await Store.open(path)``)."""

    def __init__(self, path: Path, connection: aiosqlite.Connection) -> None:
        self.path = path
        self._db = connection
        self._lock = asyncio.Lock()
        self._closed = False
        self._owner: int | None = None
        self._closing: asyncio.Task[None] | None = None
        self._stopping = False
        self._listeners: list[Callable[[Quarantined], None]] = []

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Store:
        """Open or create the store at ``path``.

        A missing or empty file becomes a new store. A file that is not a zse store, or whose
        structure is damaged (``PRAGMA integrity_check``), raises
        :class:`~zse.errors.StoreError` and is left untouched. A store of schema 1 gets its
        checksums (one transaction). Then every row's checksum is verified: a record or journal
        entry whose content no longer matches it is quarantined (:meth:`quarantined`, logged).
        """
        where = Path(path)
        owner = _claim(where)
        try:
            with hold_virtual_clock():
                connection = await aiosqlite.connect(where, isolation_level=None)
        except sqlite3.Error as exc:
            _release(owner)
            raise StoreError(f"{where}: cannot open: {exc}") from exc
        except BaseException:  # cancelled: aiosqlite stops its thread; SQLite holds no lock yet
            _release(owner)
            raise
        try:
            with hold_virtual_clock():
                await connection.create_function(
                    "zse_record_sum", 3, _record_sum, deterministic=True
                )
                await connection.create_function("zse_entry_sum", 5, _entry_sum, deterministic=True)
        except sqlite3.Error as exc:
            with hold_virtual_clock():
                await connection.close()
            _release(owner)
            raise StoreError(f"{where}: cannot open: {exc}") from exc
        except BaseException:  # cancelled: its worker thread is not a daemon and would hang exit
            _abandon(connection, owner)
            raise
        store = cls(where, connection)
        store._owner = owner
        try:
            await store._check_or_create()
        except Exception:
            with hold_virtual_clock():
                await connection.close()
            _release(owner)
            raise
        except BaseException:
            _abandon(connection, owner)
            raise
        return store

    async def close(self) -> None:
        """Close the database (pending commits finish first). Closing twice is fine.

        The close runs in its own task: a caller cancelled while it waits (a shutdown's own
        cancellation) gets its CancelledError, and the close still happens once the work in
        progress ends. If that task is cancelled too (the loop is shutting down), the
        connection's worker thread is told to stop after the work already queued, so that the
        interpreter does not wait for it at exit.
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
            self._closed = True
            self._stopping = True  # aiosqlite's close stops its thread, even if cancelled
            with hold_virtual_clock():
                await self._db.close()
            owner, self._owner = self._owner, None
            _release(owner)

    def _close_ended(self, task: asyncio.Task[None]) -> None:
        """A close task that did not end normally (cancelled, even before it started, or
        failed) still ends the connection, without waiting."""
        if not task.cancelled() and task.exception() is None:
            return
        self._closed = True
        owner, self._owner = self._owner, None
        if self._stopping:  # the thread is told to stop already: its future is aiosqlite's
            _release(owner)
        else:
            self._stopping = True
            _abandon(self._db, owner)

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _check_or_create(self) -> None:
        try:
            app_id = await self._scalar("PRAGMA application_id", what="read the header")
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.DatabaseError):
                raise StoreError(
                    f"{self.path}: not a zse store: not an SQLite database ({exc.__cause__})"
                ) from exc.__cause__
            raise
        version = await self._scalar("PRAGMA user_version", what="read the header")
        tables = {str(row[0]) for row in await self._rows("SELECT name FROM sqlite_master")}
        if app_id == 0 and version == 0 and not tables:
            await self._create()
            await self._rows("PRAGMA journal_mode=WAL")
            await self._rows("PRAGMA synchronous=FULL")
            return
        if app_id != APPLICATION_ID:
            owner = f"application id 0x{app_id & 0xFFFFFFFF:08X}" if app_id else "no application id"
            raise StoreError(
                f"{self.path}: not a zse store: an SQLite database of another application "
                f"({owner}, user_version {version}, {len(tables)} schema objects)"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: zse store schema version {version} is newer than this zse "
                f"understands ({SCHEMA_VERSION}); upgrade zse"
            )
        expected = _TABLES.get(version, _TABLES[SCHEMA_VERSION])
        if version < 1 or not tables >= expected:
            raise StoreError(
                f"{self.path}: damaged zse store: schema version {version}, "
                f"tables {sorted(tables & expected)} of {sorted(expected)}"
            )
        # integrity_check, not quick_check: only it verifies that the b-trees are in order
        # and that indexes match their tables (two swapped pages pass quick_check with rows
        # silently missing). It reads the whole file: see docs/performance.md for its cost.
        problems = [str(row[0]) for row in await self._rows("PRAGMA integrity_check(20)")]
        if problems != ["ok"]:
            raise StoreError(
                f"{self.path}: damaged zse store (PRAGMA integrity_check): "
                f"{'; '.join(problems[:3])}; refused, as records may be missing: restore a "
                "backup, or move the file away to start afresh"
            )
        await self._rows("PRAGMA journal_mode=WAL")
        await self._rows("PRAGMA synchronous=FULL")
        if version == 1:
            await self._migrate_1()
        await self._verify_all()

    async def _migrate_1(self) -> None:
        """Schema 1 -> 2: every row gets its checksum, in one transaction."""
        await self._install(_MIGRATE_1, what="add checksums (schema 1 -> 2)")
        counts = await self._rows(
            "SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM journal)"
        )
        LOGGER.info(
            "%s: zse store upgraded to schema %d: %d records and %d journal entries got a checksum",
            self.path,
            SCHEMA_VERSION,
            *counts[0],
        )

    async def _verify_all(self) -> None:
        """Quarantine every row whose content does not match its checksum."""
        bad: list[tuple[str, Any, Any, str]] = [
            ("record", namespace, key, "checksum mismatch: the stored record was altered")
            for namespace, key in await self._rows(_BAD_RECORDS, what="verify")
        ]
        bad += [
            ("journal", None, seq, "checksum mismatch: the stored entry was altered")
            for (seq,) in await self._rows(_BAD_ENTRIES, what="verify")
        ]
        await self._set_aside(bad)

    async def _create(self) -> None:
        await self._install(_SCHEMA, what="create the schema")

    async def _install(self, statements: Iterable[str], *, what: str) -> None:
        """Run schema statements and stamp the current schema version, in one transaction."""

        async def work() -> None:
            for statement in statements:
                await self._db.execute(statement)
            await self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )
            await self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            await self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        await self._transaction(work, what=what)

    # -- low level -------------------------------------------------------------------------

    async def _guard(self, awaitable: Awaitable[_T], what: str) -> _T:
        try:
            with hold_virtual_clock():
                return await awaitable
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot {what}: {exc}") from exc
        except ValueError as exc:  # aiosqlite's "Connection closed": stopped by a cancelled close
            if self._closed:
                raise StoreError(f"{self.path}: store is closed (cannot {what})") from exc
            raise

    async def _rows(
        self, sql: str, params: Iterable[Any] = (), *, what: str = "read"
    ) -> list[tuple[Any, ...]]:
        async with self._lock:
            self._check_open(what)
            rows = await self._guard(self._db.execute_fetchall(sql, tuple(params)), what)
        return [tuple(row) for row in rows]

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise StoreError(f"{self.path}: store is closed (cannot {what})")

    async def _scalar(self, sql: str, *, what: str) -> int:
        rows = await self._rows(sql, what=what)
        return int(rows[0][0])

    async def _transaction(self, work: Callable[[], Awaitable[_T]], *, what: str) -> _T:
        async with self._lock:
            self._check_open(what)
            await self._guard(self._db.execute("BEGIN IMMEDIATE"), what)
            try:
                result = await self._guard(work(), what)
            except BaseException:
                with contextlib.suppress(Exception):
                    await self._guard(self._db.execute("ROLLBACK"), what)
                raise
            await self._guard(self._db.execute("COMMIT"), what)
            return result

    # -- the API ---------------------------------------------------------------------------

    async def commit(self, batch: Batch) -> list[int]:
        """Apply ``batch`` atomically; return the sequence numbers of its appends, in order."""
        if not batch._ops:
            return []

        async def work() -> list[int]:
            seqs: list[int] = []
            for op, namespace, key, value in batch._ops:
                if op == "put":
                    await self._db.execute(
                        "INSERT OR REPLACE INTO records (namespace, key, value, checksum)"
                        " VALUES (?, ?, ?, ?)",
                        (namespace, key, value, _record_sum(namespace, key, value)),
                    )
                elif op == "delete":
                    await self._db.execute(
                        "DELETE FROM records WHERE namespace = ? AND key = ?", (namespace, key)
                    )
                elif op == "clear":
                    await self._db.execute("DELETE FROM records WHERE namespace = ?", (namespace,))
                elif op == "append":
                    cursor = await self._db.execute(
                        "INSERT INTO journal (namespace, kind, value) VALUES (?, ?, ?)",
                        (namespace, key, value),
                    )
                    assert cursor.lastrowid is not None
                    seq = int(cursor.lastrowid)
                    await self._db.execute(
                        "UPDATE journal SET checksum = ? WHERE seq = ?",
                        (_entry_sum(seq, namespace, key, value, 0), seq),
                    )
                    seqs.append(seq)
                else:  # mark (an entry damaged since it was read keeps its mismatch)
                    await self._db.execute(_MARK, (int(key),))
            return seqs

        return await self._transaction(work, what="commit")

    async def load(self, namespace: str) -> dict[str, Any]:
        """The records of ``namespace`` (the core's snapshot), key -> value, keys sorted.

        Each is verified against its checksum and decoded; one that fails is quarantined
        (:meth:`quarantined`) and left out.
        """
        rows = await self._rows(_LOAD, (namespace,))
        found, bad = {}, []
        for key, text, ok in rows:
            try:
                found[key] = self._decode(text, ok)
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
        try:
            return self._decode(*rows[0])
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
        for seq, kind, text, reported, ok in rows:
            try:
                value = self._decode(text, ok)
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
        """Flag journal entries as reported (idempotent)."""
        batch = Batch()
        for seq in seqs:
            batch.mark_reported(seq)
        await self.commit(batch)

    async def prune(self, namespace: str, *, keep: int = 0) -> int:
        """Delete reported entries of ``namespace`` but the newest ``keep``; return how many."""

        async def work() -> int:
            cursor = await self._db.execute(
                "DELETE FROM journal WHERE namespace = ? AND reported = 1 AND seq NOT IN "
                "(SELECT seq FROM journal WHERE namespace = ? AND reported = 1 "
                "ORDER BY seq DESC LIMIT ?)",
                (namespace, namespace, max(0, keep)),
            )
            return int(cursor.rowcount)

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
        rows = await self._rows(
            "SELECT id, origin, namespace, key, kind, reason, value FROM quarantine"
            " WHERE ? IS NULL OR namespace = ? ORDER BY id",
            (namespace, namespace),
        )
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
                    columns = "'record', namespace, key, NULL, value, NULL"
                else:
                    where, params = "FROM journal WHERE seq = ?", (key,)
                    columns = "'journal', namespace, seq, kind, value, reported"
                cursor = await self._db.execute(
                    "INSERT INTO quarantine (origin, namespace, key, kind, value, reported, reason)"
                    f" SELECT {columns}, ? {where}",
                    (reason, *params),
                )
                if not cursor.rowcount:
                    continue  # already gone
                await self._db.execute(f"DELETE {where}", params)
                rows = await self._db.execute_fetchall(
                    "SELECT id, origin, namespace, key, kind, reason, value FROM quarantine"
                    " WHERE id = ?",
                    (cursor.lastrowid,),
                )
                moved.append(_quarantined(tuple(next(iter(rows)))))
            return moved

        for item in await self._transaction(work, what="quarantine damaged records"):
            LOGGER.warning("%s: %s quarantined: %s", self.path, item.where, item.reason)
            for listener in list(self._listeners):
                listener(item)


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
