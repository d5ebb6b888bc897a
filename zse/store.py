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
damaged) raises :class:`~zse.errors.StoreError` at :meth:`Store.open` and is never rewritten.
On :class:`zse.sim.VirtualClockLoop` every wait on the SQLite thread holds the virtual clock
(``external_work``), transparently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from zse.errors import StoreError

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "Batch",
    "JournalEntry",
    "Store",
    "hold_virtual_clock",
]

#: SQLite header ``application_id`` of a zse store: ASCII "ZSE1".
APPLICATION_ID = 0x5A534531
#: SQLite header ``user_version``: the schema version this module writes and reads.
SCHEMA_VERSION = 1

_T = TypeVar("_T")

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE records (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (namespace, key)) WITHOUT ROWID",
    "CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL,"
    " kind TEXT NOT NULL, value TEXT NOT NULL, reported INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX journal_unreported ON journal (namespace, reported, seq)",
)
_TABLES = {"meta", "records", "journal"}


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


def _load(text: str, where: str) -> Any:
    try:
        return json.loads(text, object_hook=_object_hook)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{where}: stored value is not valid JSON: {exc}") from exc


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


def _claim(path: Path) -> int | None:
    """Take the store's single-writer lock (``<path>.lock``, an advisory ``flock``).

    The exactly-once bookkeeping of a store assumes one process at a time: a second process
    (or a second open in this one) gets :class:`~zse.errors.StoreError` instead of silently
    interleaving its journal with the first one's. Returns the lock's file descriptor; None
    where ``fcntl`` does not exist (Windows), where nothing is enforced.
    """
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows
        return None
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the lock file {lock}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreError(
            f"{path} is in use by another zse process (or already open in this one); "
            "a store has one writer at a time"
        ) from None
    return fd


def _release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


class Store:
    """A zse state database. Use :meth:`open` (or ``async with await Store.open(path)``)."""

    def __init__(self, path: Path, connection: aiosqlite.Connection) -> None:
        self.path = path
        self._db = connection
        self._lock = asyncio.Lock()
        self._closed = False
        self._owner: int | None = None

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Store:
        """Open or create the store at ``path``.

        A missing or empty file becomes a new store. Anything else that is not a healthy zse
        store raises :class:`~zse.errors.StoreError` and is left untouched.
        """
        where = Path(path)
        owner = _claim(where)
        try:
            with hold_virtual_clock():
                connection = await aiosqlite.connect(where, isolation_level=None)
        except sqlite3.Error as exc:
            _release(owner)
            raise StoreError(f"{where}: cannot open: {exc}") from exc
        store = cls(where, connection)
        store._owner = owner
        try:
            await store._check_or_create()
        except BaseException:
            with hold_virtual_clock():
                await connection.close()
            _release(owner)
            raise
        return store

    async def close(self) -> None:
        """Close the database (pending commits finish first). Closing twice is fine."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            with hold_virtual_clock():
                await self._db.close()
            _release(self._owner)

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
        elif app_id != APPLICATION_ID:
            owner = f"application id 0x{app_id & 0xFFFFFFFF:08X}" if app_id else "no application id"
            raise StoreError(
                f"{self.path}: not a zse store: an SQLite database of another application "
                f"({owner}, user_version {version}, {len(tables)} schema objects)"
            )
        elif version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: zse store schema version {version} is newer than this zse "
                f"understands ({SCHEMA_VERSION}); upgrade zse"
            )
        elif version < 1 or not tables >= _TABLES:
            raise StoreError(
                f"{self.path}: damaged zse store: schema version {version}, "
                f"tables {sorted(tables & _TABLES)} of {sorted(_TABLES)}"
            )
        problems = [str(row[0]) for row in await self._rows("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise StoreError(f"{self.path}: damaged zse store: {'; '.join(problems[:3])}")
        await self._rows("PRAGMA journal_mode=WAL")
        await self._rows("PRAGMA synchronous=FULL")

    async def _create(self) -> None:
        async def work() -> None:
            for statement in _SCHEMA:
                await self._db.execute(statement)
            await self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
            )
            await self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            await self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        await self._transaction(work, what="create the schema")

    # -- low level -------------------------------------------------------------------------

    async def _guard(self, awaitable: Awaitable[_T], what: str) -> _T:
        try:
            with hold_virtual_clock():
                return await awaitable
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot {what}: {exc}") from exc

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
                        "INSERT OR REPLACE INTO records (namespace, key, value) VALUES (?, ?, ?)",
                        (namespace, key, value),
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
                    seqs.append(int(cursor.lastrowid))
                else:  # mark
                    await self._db.execute(
                        "UPDATE journal SET reported = 1 WHERE seq = ?", (int(key),)
                    )
            return seqs

        return await self._transaction(work, what="commit")

    async def load(self, namespace: str) -> dict[str, Any]:
        """The records of ``namespace`` (the core's snapshot), key -> value, keys sorted."""
        rows = await self._rows(
            "SELECT key, value FROM records WHERE namespace = ? ORDER BY key", (namespace,)
        )
        return {key: _load(value, f"{self.path}: record {namespace}/{key}") for key, value in rows}

    async def get(self, namespace: str, key: str, default: Any = None) -> Any:
        """One record of ``namespace``, or ``default``."""
        rows = await self._rows(
            "SELECT value FROM records WHERE namespace = ? AND key = ?", (namespace, key)
        )
        if not rows:
            return default
        return _load(rows[0][0], f"{self.path}: record {namespace}/{key}")

    async def unreported(self, namespace: str) -> list[JournalEntry]:
        """The journal entries of ``namespace`` not yet marked reported, oldest first."""
        return await self._journal(namespace, only_unreported=True)

    async def journal(self, namespace: str) -> list[JournalEntry]:
        """Every journal entry of ``namespace`` still kept, oldest first."""
        return await self._journal(namespace, only_unreported=False)

    async def _journal(self, namespace: str, *, only_unreported: bool) -> list[JournalEntry]:
        rows = await self._rows(
            "SELECT seq, kind, value, reported FROM journal WHERE namespace = ? "
            "AND reported <= ? ORDER BY seq",
            (namespace, 0 if only_unreported else 1),
        )
        return [
            JournalEntry(
                seq=int(seq),
                namespace=namespace,
                kind=str(kind),
                value=_load(value, f"{self.path}: journal entry {seq}"),
                reported=bool(reported),
            )
            for seq, kind, value, reported in rows
        ]

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
