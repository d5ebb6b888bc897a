"""The SQLite engine of :mod:`zse.store` (the default): one file, through aiosqlite.

A store is recognised by its SQLite header (``application_id`` "ZSE1", ``user_version`` the
schema version), checked whole with ``PRAGMA integrity_check`` at every open, written in WAL
mode with ``synchronous=FULL``, and held by one process at a time through an ``flock`` on the
file (:func:`_claim`). A file that several processes share (the headend's work queue) is
held with :func:`claim_shared` instead, its write-ahead log checked by an opener alone with it.

On a loop that asks for it (``inline_io``: :class:`zse.sim.VirtualClockLoop` by default) the
statements run on the loop's own thread instead of aiosqlite's: a thread's answer lands
wherever the loop happens to be in its work when the thread finishes, so with a thread the
order of a simulation's events (and its capture) would depend on the machine's timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import stat
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from zse.errors import StoreError
from zse.store_engine import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    SQLITE,
    Engine,
    Plan,
    Statements,
    read_text,
)

__all__ = [
    "SHARED_WAIT",
    "SqliteEngine",
    "WalCheck",
    "cannot_open",
    "claim_shared",
    "create_owner_only",
    "header_application_id",
    "refuse_odd_neighbours",
    "release",
    "share",
]

LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

#: The -wal file's magic numbers (https://sqlite.org/fileformat2.html#walformat).
_WAL_MAGIC = (0x377F0682, 0x377F0683)
#: The wal-index header's version in the -shm file (its first field, native byte order).
_WAL_INDEX_VERSION = 3007000
#: The byte of ``<file>-shm`` on which every SQLite connection to a database in WAL mode
#: holds a shared lock while it is open (the unix VFS's ``UNIX_SHM_DMS``, src/os_unix.c).
_SHM_DMS = 128
#: Seconds an opener of a shared file (the headend's work queue) waits for another process's
#: exclusive lock on it (held while that one checks the write-ahead log) before giving up.
SHARED_WAIT = 10.0
#: Seconds between two tries of that lock.
_POLL = 0.05
#: Bytes of the header at the start of every SQLite database file.
_SQLITE_HEADER = 100


def header_application_id(path: Path) -> int | None:
    """The ``application_id`` in the header of the SQLite database ``path``, read without
    SQLite nor a lock (https://sqlite.org/fileformat2.html#database_header); None if the file
    is missing, empty or not an SQLite database. A change not checkpointed yet is in the log,
    not here: for a hint before anything that can wait, not for a decision."""
    try:
        with path.open("rb") as data:
            header = data.read(_SQLITE_HEADER)
    except OSError:
        return None
    if len(header) < _SQLITE_HEADER or not header.startswith(b"SQLite format 3\x00"):
        return None
    return int(struct.unpack_from(">i", header, 68)[0])


def _refuse_truncated(path: Path) -> None:
    """Refuse a file of 1 to 99 bytes, shorter than an SQLite header
    (https://sqlite.org/fileformat2.html#database_header): SQLite takes any file shorter than
    its header for an empty database, and its first write would replace what the file held.
    SQLite never writes one (a database is whole pages). An empty file is a new store: the
    single-writer lock creates it so on a first open, and an open interrupted before SQLite's
    first write leaves it so; refused, it would be a store that never opens again."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise StoreError(f"{path}: cannot open: {exc}") from exc
    if 0 < size < _SQLITE_HEADER:
        raise StoreError(
            f"{path}: truncated or not a zse store: {size} bytes, shorter than an SQLite "
            f"header ({_SQLITE_HEADER} bytes); refused, not replaced: restore a backup, or "
            "move the file away to start afresh"
        )


#: The files SQLite keeps beside a database, and what it keeps in each
#: (https://sqlite.org/tempfiles.html).
_BESIDE = {
    "-wal": "write-ahead log",
    "-shm": "write-ahead log index",
    "-journal": "rollback journal",
}
#: SQLite's result codes (``sqlite_errorname``, extended ones included) that say a file could
#: not be opened, read or written, not that a database is damaged
#: (https://sqlite.org/rescode.html): a file beside it or its directory, not the store.
_CANNOT = ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_FULL")


def refuse_odd_neighbours(path: Path, what: str = "store") -> None:
    """:class:`StoreError` naming it if SQLite's ``-wal``, ``-shm`` or ``-journal`` beside the
    database ``path`` (a ``what``: the store, the headend's work queue) is not a regular file
    (a directory, a FIFO), before SQLite opens ``path``: SQLite then fails with "disk I/O
    error" or "unable to open database file" (read as damage, whose advice would throw a
    healthy file away), or, for ``-shm``, opens the file read-only and fails at the first
    commit (https://sqlite.org/tempfiles.html)."""
    for suffix, role in _BESIDE.items():
        side = Path(f"{path}{suffix}")
        try:
            mode = side.stat().st_mode
        except FileNotFoundError:
            continue  # none there (or a dangling link: SQLite's open says so)
        except OSError as exc:
            raise StoreError(f"{path}: cannot open {side.name}: {exc.strerror}") from None
        if not stat.S_ISREG(mode):
            odd = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise StoreError(
                f"{path}: cannot open {side.name}: {odd}, where SQLite keeps the {what}'s "
                f"{role}; refused, the {what} left as it is: move {side.name} away"
            )


def cannot_open(path: Path, exc: sqlite3.Error) -> StoreError | None:
    """The :class:`StoreError` for ``exc``, SQLite's error opening or first reading the
    database ``path`` (a store, the headend's work queue), if its cause is outside the
    database file (:data:`_CANNOT`: its directory not writable, a file beside it, a full
    disk), said as such, not as damage; else None (the caller says what it is)."""
    if not str(getattr(exc, "sqlite_errorname", "")).startswith(_CANNOT):
        return None
    return StoreError(
        f"{path}: cannot open: {exc}; the file is not damaged by this: check that this user "
        f"may write its directory and {path.name}-wal and {path.name}-shm beside it, and that "
        "the disk has room"
    )


def create_owner_only(path: str | os.PathLike[str]) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist, before SQLite (or a library
    over it) opens it: SQLite gives a database's -wal and -shm files the database's mode,
    which would otherwise be the umask's (0644), and these files hold install codes and keys.
    An existing file keeps the mode its owner gave it."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class WalCheck:
    """Acknowledged commits that SQLite would drop from a damaged write-ahead log.

    After a crash the newest commits live only in ``<file>-wal`` (until a checkpoint). SQLite
    keeps its frames up to the first one whose cumulative checksum fails and drops the rest
    without an error: a flipped bit in the log would open the file with older data. Read
    before SQLite connects (:meth:`before`, cheap: each frame's 24-byte header), the log's
    commit frames that carry the salts of its header are what was written; compared after
    SQLite's recovery (:meth:`after`: ``mxFrame``, the valid frames, from the wal-index
    header in ``<file>-shm``), a commit beyond them was dropped. Two or more dropped: the
    earlier of them was acknowledged before the next began (``synchronous=FULL``), so the
    file is **refused** (the log copied to ``<file>-wal.damaged`` first, and refused while
    that copy is there: SQLite's close would otherwise checkpoint what it kept and delete the
    log); one: the last transaction, which a power cut may have cut short before it was
    acknowledged, or an acknowledged one damaged: a warning. A log cut short (its tail gone)
    is not detected."""

    def __init__(self, path: Path, what: str) -> None:
        self.path, self.what = path, what
        self.wal = Path(f"{path}-wal")
        self.aside = Path(f"{path}-wal.damaged")
        self.commits: list[int] = []

    def before(self, *, read: bool = True) -> None:
        """Refuse a file whose damaged log was set aside; read the log's commit frames
        (unless not ``read``: another process has the file open, :func:`claim_shared`)."""
        if self.aside.exists():
            raise StoreError(
                f"{self.path}: a damaged write-ahead log was set aside as {self.aside.name} "
                f"(committed transactions it held were lost); refused while it is there: "
                f"restore a backup, or remove it to go on with the {self.what} as it is"
            )
        self.commits = _wal_commits(self.wal) if read else []

    def after(self) -> None:
        """Once SQLite has read the file (its recovery done): compare."""
        if not self.commits:
            return
        valid = _wal_valid_frames(Path(f"{self.path}-shm"))
        if valid is None:
            return
        dropped = [n for n in self.commits if n > valid]
        if len(dropped) >= 2:
            with contextlib.suppress(OSError):
                _copy_owner_only(self.wal, self.aside)
            raise StoreError(
                f"{self.path}: damaged write-ahead log: {len(dropped)} committed transactions "
                f"after frame {valid} fail SQLite's checksums and would be dropped; refused, "
                f"the log kept as {self.aside.name}: restore a backup, or remove that file to "
                f"go on with the {self.what} as SQLite recovers it"
            )
        if dropped:
            LOGGER.warning(
                "%s: the last transaction in the write-ahead log fails SQLite's checksums "
                "and is dropped (cut short by a power loss, or damaged)",
                self.path,
            )


def _wal_commits(wal: Path) -> list[int]:
    """The numbers (from 1) of the commit frames of ``wal`` that carry its header's salts."""
    try:
        with wal.open("rb") as log:
            header = log.read(32)
            if len(header) < 32:
                return []
            magic, _, size, _, salt1, salt2 = struct.unpack(">6I", header[:24])
            if magic not in _WAL_MAGIC or size < 512 or size > 65536 or size & (size - 1):
                return []
            frames = (os.fstat(log.fileno()).st_size - 32) // (24 + size)
            commits = []
            for n in range(1, frames + 1):
                log.seek(32 + (n - 1) * (24 + size))
                _, commit, first, second = struct.unpack(">4I", log.read(16))
                if commit and (first, second) == (salt1, salt2):
                    commits.append(n)
            return commits
    except (OSError, struct.error):
        return []


def _wal_valid_frames(shm: Path) -> int | None:
    """``mxFrame`` of the wal-index header in ``shm``: the frames SQLite's recovery kept."""
    try:
        with shm.open("rb") as index:
            header = index.read(20)
    except OSError:
        return None
    if len(header) < 20:
        return None
    order = "<" if sys.byteorder == "little" else ">"
    version, _, _, initialised = struct.unpack(order + "3IB", header[:13])
    if version != _WAL_INDEX_VERSION or not initialised:
        return None
    return int(struct.unpack_from(order + "I", header, 16)[0])


def _copy_owner_only(source: Path, target: Path) -> None:
    """``source`` copied to a new ``target`` of mode 0600 (a log holds install codes)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, source.open("rb") as data:
        while chunk := data.read(1 << 20):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


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
        # a new empty file is a new store; its owner's alone (0600: a store holds install codes
        # and keys; SQLite gives its -wal and -shm files the database file's mode)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
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


async def claim_shared(path: Path, *, wait: float = SHARED_WAIT) -> tuple[int | None, bool]:
    """The lock of a file that several processes share (the headend's work queue), and
    whether this opener has the file to itself, so that its write-ahead log can be checked
    (:class:`WalCheck`: with another process writing, the log and its index change under the
    check, which would then see commits "dropped" that a checkpoint only moved).

    Each opener holds a shared ``flock`` on the file while its connection is open (the
    descriptor returned, closed by :func:`release` after the connection, as for
    :func:`_claim`). An opener that gets it exclusive, and finds no SQLite connection of any
    program on the file (none holds the lock byte every connection holds in ``<file>-shm``),
    is alone (True): it keeps it exclusive, other openers waiting, until :func:`share`. An
    opener that finds it held exclusive waits for it up to ``wait`` seconds (real time,
    :data:`SHARED_WAIT`), then gets :class:`~zse.errors.StoreError`. None and False where
    ``fcntl`` does not exist (Windows): the log is not checked."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows
        return None, False
    create_owner_only(path)
    _refuse_truncated(path)  # SQLite never writes one: not one of this queue's openers' files
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise StoreError(f"{path}: cannot open: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # open elsewhere (in this process too): wait for its check, if any
            await _shared(fd, path, wait)
            return fd, False
        if _shm_in_use(Path(f"{path}-shm")):  # a program other than zse has it open
            await share(fd, path, wait=wait)
            return fd, False
    except BaseException:
        os.close(fd)
        raise
    return fd, True


async def _shared(fd: int, path: Path, wait: float) -> None:
    """Take the shared ``flock`` on ``fd``, waiting for an exclusive holder up to ``wait``
    seconds of real time: tried every :data:`_POLL` seconds on the loop itself (no thread
    blocked in ``flock``, which a cancel, Ctrl-C, could not end: the process would wait for
    it at exit)."""
    import fcntl  # noqa: PLC0415 - POSIX only

    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pass
        else:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise StoreError(
                f"{path}: in use exclusively by another process for {wait:g} s (a zse store "
                "open in a running program, or another opener checking the file's write-ahead "
                "log); refused"
            )
        if not said:
            said = True
            LOGGER.warning(
                "%s: held exclusively by another process; waiting up to %g s for it", path, wait
            )
        await _real_sleep(min(_POLL, left))


async def _real_sleep(seconds: float) -> None:
    """Sleep ``seconds`` of real time, also on a virtual-time loop (whose clock stands still
    while a store's work holds it: :func:`zse.store_engine.hold_virtual_clock`)."""
    loop = asyncio.get_running_loop()
    later = getattr(loop, "call_real_later", None)
    if later is None:
        await asyncio.sleep(seconds)
        return
    done: asyncio.Future[None] = loop.create_future()
    handle = later(seconds, _wake, done)
    try:
        await done
    finally:
        handle.cancel()


def _wake(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _shm_in_use(shm: Path) -> bool:
    """Whether an SQLite connection of another process has the database of ``shm`` open.

    Called only under :func:`claim_shared`'s exclusive lock, so no connection of this
    process has it open either: closing the descriptor drops no lock of SQLite's."""
    import fcntl  # noqa: PLC0415 - POSIX only

    try:
        fd = os.open(shm, os.O_RDWR)
    except FileNotFoundError:
        return False  # a connection in WAL mode keeps its -shm
    except OSError:
        return True  # cannot tell: not checked
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _SHM_DMS)
        return False
    finally:
        os.close(fd)


async def share(fd: int | None, path: Path, *, wait: float = SHARED_WAIT) -> None:
    """Turn :func:`claim_shared`'s exclusive lock shared (waiting up to ``wait`` seconds if
    another opener took it exclusive meanwhile: ``flock`` converts by releasing first)."""
    if fd is not None:
        await _shared(fd, path, wait)


def release(fd: int | None) -> None:
    """Release :func:`claim_shared`'s lock (after the connection is closed)."""
    _release(fd)


class _Inline:
    """An SQLite connection used on the event loop's own thread, behind the few methods of
    :class:`aiosqlite.Connection` the engine calls: each await completes without yielding."""

    __slots__ = ("_connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self._connection.execute(sql, parameters)

    async def execute_fetchall(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        return self._connection.execute(sql, parameters).fetchall()

    async def close(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        """Close at once (nothing runs elsewhere to wait for)."""
        self._connection.close()


# WAL with synchronous=NORMAL: a COMMIT is written to the log but not synced; the next synced
# COMMIT (or checkpoint) syncs it with the log, and a killed process never loses it (the OS
# has the pages). SQLite documents both levels under PRAGMA synchronous.
_LAZY = "PRAGMA synchronous=NORMAL"
_DURABLE = "PRAGMA synchronous=FULL"


def _finish(
    connection: sqlite3.Connection, plan: Plan[_T], *, begin: bool, durable: bool = True
) -> _T:
    """:meth:`SqliteEngine.finish` where the connection lives. Not ``durable``: the sync
    level is lowered before the transaction and restored after it (SQLite refuses to change
    it inside one), on failure once this has rolled it back (the caller's ROLLBACK then
    finds none, which it ignores)."""
    if durable:
        return _run(connection, plan, begin=begin)
    connection.execute(_LAZY)
    try:
        return _run(connection, plan, begin=begin)
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    finally:
        connection.execute(_DURABLE)


def _run(connection: sqlite3.Connection, plan: Plan[_T], *, begin: bool) -> _T:
    if begin:
        connection.execute("BEGIN IMMEDIATE")
    statements = Statements(plan)
    for sql, params in statements:
        statements.rows = connection.execute(sql, params).fetchall()
    connection.execute("COMMIT")
    return statements.result


def runs_inline() -> bool:
    """Whether the running loop asks for database work on its own thread (``inline_io``)."""
    return bool(getattr(asyncio.get_running_loop(), "inline_io", False))


class SqliteEngine(Engine):
    """A store file, opened with :meth:`connect`."""

    dialect = SQLITE
    errors = (sqlite3.Error,)

    def __init__(
        self, path: Path, connection: aiosqlite.Connection | _Inline, owner: int | None
    ) -> None:
        self.path = path
        self.where = str(path)
        self._db = connection
        self._owner = owner
        self._stopping = False
        #: BEGIN IMMEDIATE asked for (:meth:`begin`) and not sent yet.
        self._begin_owed = False
        self.wal = WalCheck(path, "store")

    @classmethod
    async def connect(cls, path: Path) -> SqliteEngine:
        """Take the file's lock and connect (the caller holds the virtual clock); on the
        loop's own thread if it asks for that (:func:`runs_inline`)."""
        owner = _claim(path)
        wal = WalCheck(path, "store")
        try:
            _refuse_truncated(path)  # under the lock, before SQLite would take it for empty
            refuse_odd_neighbours(path)
            wal.before()  # under the lock, before SQLite reads (and recovers) the log
        except BaseException:
            _release(owner)
            raise
        connection: aiosqlite.Connection | _Inline
        try:
            # text_factory: a row damaged into bytes that are not UTF-8 is quarantined by its
            # checksum instead of failing every read of it (and quoting it)
            if runs_inline():
                inline = sqlite3.connect(path, isolation_level=None)
                inline.text_factory = read_text
                connection = _Inline(inline)
            else:
                connection = await aiosqlite.connect(path, isolation_level=None)
                connection.text_factory = read_text
        except sqlite3.Error as exc:
            _release(owner)
            raise StoreError(f"{path}: cannot open: {exc}") from exc
        except BaseException:  # cancelled: aiosqlite stops its thread; SQLite holds no lock yet
            _release(owner)
            raise
        engine = cls(path, connection, owner)
        engine.wal = wal
        return engine

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        if self._begin_owed:
            if sql == "ROLLBACK":  # nothing sent: nothing to roll back
                self._begin_owed = False
                return 0
            await self._send_begin()
        try:
            cursor = await self._db.execute(sql, tuple(params))
        except UnicodeDecodeError as exc:
            raise self._undecodable(exc) from exc
        return int(cursor.rowcount)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self._begin_owed:
            await self._send_begin()
        try:
            rows = await self._db.execute_fetchall(sql, tuple(params))
        except UnicodeDecodeError as exc:
            raise self._undecodable(exc) from exc
        return [tuple(row) for row in rows]

    async def begin(self) -> None:
        """Begin a write transaction: ``BEGIN IMMEDIATE``, sent with the transaction's first
        statement (with the whole of it by :meth:`finish`: no trip of its own to aiosqlite's
        thread). The store's single-writer lock leaves no other writer to wait for."""
        self._begin_owed = True

    async def _send_begin(self) -> None:
        self._begin_owed = False
        await self._db.execute("BEGIN IMMEDIATE")

    async def finish(self, plan: Plan[_T], *, durable: bool = True) -> _T:
        """The transaction's BEGIN, the plan's statements and the COMMIT in one trip to
        aiosqlite's thread (which runs one function at a time, in order), instead of one trip
        each: the loop waits for the thread once. Inline (:func:`runs_inline`) they run at
        once, as every statement does. Once there, they run to their end even if the caller
        is cancelled meanwhile. Without aiosqlite's ``_execute`` and ``_conn`` (its private way
        to run a function there, and the connection it runs on), a trip each, always synced.
        ``durable`` False: ``synchronous=NORMAL`` for this transaction (:func:`_finish`)."""
        db = self._db
        begin, self._begin_owed = self._begin_owed, False
        try:
            if isinstance(db, _Inline):
                return _finish(db._connection, plan, begin=begin, durable=durable)
            run = getattr(db, "_execute", None)
            connection = getattr(db, "_conn", None)
            if run is None or connection is None:  # pragma: no cover - another aiosqlite
                self._begin_owed = begin  # (the sync level cannot change once begun: full)
                return await super().finish(plan)
            result: _T = await run(lambda: _finish(connection, plan, begin=begin, durable=durable))
        except UnicodeDecodeError as exc:
            raise self._undecodable(exc) from exc
        return result

    def _undecodable(self, exc: UnicodeDecodeError) -> StoreError:
        """SQLite's error about a damaged schema quotes the damaged bytes, which sqlite3
        cannot decode (the text factory reads rows, not messages): a damaged database."""
        return StoreError(
            f"{self.where}: a damaged SQLite database (malformed schema: SQLite's report of it "
            f"is not UTF-8: byte 0x{exc.object[exc.start]:02X} at {exc.start}): restore a "
            "backup, or move the file away to start afresh"
        )

    async def identify(self) -> tuple[int, set[str]]:
        try:
            [(app_id,)] = await self.fetch("PRAGMA application_id")  # the log recovered
        except sqlite3.DatabaseError as exc:
            cannot = cannot_open(self.path, exc)
            if cannot is not None:
                raise cannot from exc
            if "not a database" in str(exc):
                raise StoreError(
                    f"{self.where}: not a zse store: not an SQLite database ({exc})"
                ) from exc
            raise StoreError(  # its header is SQLite's, the rest cut short or damaged
                f"{self.where}: a damaged SQLite database ({exc}): restore a backup, or move "
                "the file away to start afresh"
            ) from exc
        self.wal.after()  # before anything is judged from the file's content
        [(version,)] = await self.fetch("PRAGMA user_version")
        tables = {str(row[0]) for row in await self.fetch("SELECT name FROM sqlite_master")}
        if app_id == 0 and version == 0 and not tables:
            return 0, tables
        if app_id != APPLICATION_ID:
            owner = f"application id 0x{app_id & 0xFFFFFFFF:08X}" if app_id else "no application id"
            raise StoreError(
                f"{self.where}: not a zse store: an SQLite database of another application "
                f"({owner}, user_version {version}, {len(tables)} schema objects)"
            )
        return int(version), tables

    async def check_integrity(self) -> None:
        # integrity_check, not quick_check: only it verifies that the b-trees are in order
        # and that indexes match their tables (two swapped pages pass quick_check with rows
        # silently missing). It reads the whole file: see docs/performance.md for its cost.
        problems = [str(row[0]) for row in await self.fetch("PRAGMA integrity_check(20)")]
        if problems != ["ok"]:
            said = " ".join("; ".join(problems[:3]).split())[:300]  # one line, bounded
            raise StoreError(
                f"{self.where}: damaged zse store (PRAGMA integrity_check): {said}; refused, "
                "as records may be missing: restore a backup, or move the file away to start "
                "afresh"
            )

    async def stamp(self) -> None:
        if self._begin_owed:
            await self._send_begin()
        await self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        await self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    async def opened(self) -> None:
        await self.fetch("PRAGMA journal_mode=WAL")
        await self.fetch("PRAGMA synchronous=FULL")

    async def close(self) -> None:
        self._stopping = True  # aiosqlite's close stops its thread, even if cancelled
        await self._db.close()
        owner, self._owner = self._owner, None
        _release(owner)

    def abandon(self) -> None:
        """Stop the connection's worker thread without waiting (a cancelled open or close).

        aiosqlite's thread is not a daemon: left running, it keeps the interpreter from
        exiting. The stop runs after the work already queued; the single-writer lock is
        released when the connection is closed (see :func:`_claim`), or by the process's exit
        if the loop is gone.
        """
        owner, self._owner = self._owner, None
        if self._stopping:  # the thread is told to stop already: its future is aiosqlite's
            _release(owner)
            return
        self._stopping = True
        if isinstance(self._db, _Inline):  # no thread: closed at once
            self._db.close_now()
            _release(owner)
            return
        done = self._db.stop()
        if done is None:  # no event loop any more: the process's exit releases the lock
            return
        done.add_done_callback(lambda _: _release(owner))

    def closed_error(self, exc: BaseException) -> bool:
        # aiosqlite's "Connection closed": stopped by a cancelled close
        return isinstance(exc, ValueError)
