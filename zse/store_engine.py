"""What the two engines of :mod:`zse.store` share, and the seam between them.

:class:`zse.store.Store` speaks to its database only through an :class:`Engine`:
:mod:`zse.store_sqlite` (a file, aiosqlite) or :mod:`zse.store_postgres` (a PostgreSQL schema,
asyncpg). Everything that is the same on both lives here, once: the JSON encoding of values,
the BLAKE2b row checksums, the table declarations (one template, the dialect differences in
one :class:`Dialect` each) and the SQL the store runs (written with ``?`` placeholders; an
engine that numbers its parameters translates them).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from zse.errors import StoreError

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "Dialect",
    "Engine",
    "Plan",
    "Statements",
    "hold_virtual_clock",
    "is_postgres",
    "redact_location",
    "schema",
]

#: The identity of a zse store: the SQLite header ``application_id`` (ASCII "ZSE1"), and the
#: ``application_id`` row of the ``meta`` table in a PostgreSQL schema.
APPLICATION_ID = 0x5A534531
#: The schema version this module writes and reads (SQLite header ``user_version`` and the
#: ``schema`` row of ``meta``; 2: a checksum per record and journal entry, and the quarantine).
SCHEMA_VERSION = 2
#: The tables a store of each schema version has.
TABLES = {1: {"meta", "records", "journal"}, 2: {"meta", "records", "journal", "quarantine"}}


#: The URL schemes of a PostgreSQL location.
POSTGRES_SCHEMES = ("postgresql", "postgres")
_URL = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*)://")


#: A Windows drive (``C:\\``, ``C:/``): its colon is no ``user:password@``'s.
_DRIVE = re.compile(r"[A-Za-z]:(?=[\\/])")


def redact_location(text: str) -> str:
    """``text`` with everything from its first ``:`` to its last ``@`` put as ``***``: the
    password of a ``user:password@host`` (a URL's, however mistyped), never printed."""
    start, end = text.find(":"), text.rfind("@")
    if 0 <= start < end:
        return f"{text[: start + 1]}***{text[end:]}"
    return text


def _not_a_url(text: str) -> bool:
    """Whether ``text``, with no ``scheme://``, still looks like a database URL: it starts
    with ``postgres`` or ``postgresql`` followed by ``//``, ``:`` or ``@``
    (``postgresql//u@h/db``, a colon missing, or ``postgres@ql://``), or it holds a
    ``user:password@`` (a ``:`` before an ``@``, a drive's aside)."""
    text = text.strip()
    head = re.match(r"postgres(?:ql)?(?://|:|@)", text, re.IGNORECASE)
    rest = text[2:] if _DRIVE.match(text) else text
    return head is not None or re.search(r":[^@]*@", rest) is not None


def is_postgres(location: object) -> bool:
    """Whether ``location`` is a PostgreSQL URL (else a file path); a URL of another scheme,
    a mistyped one (``postgresql+asyncpg://``, ``postgresq://``, ``postgresql//``), or a file
    path that looks like one (a ``user:password@`` in it) is a :class:`~zse.errors.StoreError`
    that does not repeat its password (:func:`redact_location`), not a file to create under
    that name."""
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
        if isinstance(location, str) and _not_a_url(location):
            raise _looks_like_a_url(location)
        return False
    if not isinstance(location, str):
        return False
    found = _URL.match(location)
    if found is None:
        if location.split(":", 1)[0].lower() in POSTGRES_SCHEMES:
            return True  # postgresql:... without the //: parse_url says what is wrong
        if _not_a_url(location):
            raise _looks_like_a_url(location)
        return False
    scheme = found.group(1).lower()
    if scheme in POSTGRES_SCHEMES:
        if not location[: found.start(1)]:
            return True
        raise StoreError("a database URL with spaces before it: give it without them")
    raise StoreError(
        f"a database given as a URL of scheme {found.group(1)[:20]!r}: give "
        "postgresql://USER@HOST/DATABASE or a file's path"
    )


def _looks_like_a_url(location: str) -> StoreError:
    shown = redact_location(location.strip())
    shown = shown if len(shown) <= 80 else f"{shown[:77]}..."
    return StoreError(
        f"{shown}: looks like a database URL but is not one: give "
        "postgresql://USER@HOST/DATABASE (the :// in full), or a file's path"
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


#: The tag of a stored ``bytes`` value (``{"$bytes": "<hex>"}``). A dict of the caller's whose
#: only key is the tag with one or more ``$`` before it is stored with one ``$`` more and given
#: back as it was: no value of the caller's reads back as another, whatever its keys.
_BYTES = "$bytes"


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {_BYTES: bytes(value).hex()}
    raise TypeError(f"cannot store a {type(value).__name__}")


def _tag_like(obj: dict[Any, Any]) -> bool:
    """Whether ``obj`` is a dict whose one key is ``$bytes``, ``$$bytes``... (escaped when
    stored: read back, it would be taken for a tag)."""
    if len(obj) != 1:
        return False
    (key,) = obj
    return isinstance(key, str) and key.endswith(_BYTES) and not key[: -len(_BYTES)].strip("$")


def _has_tag_like(value: Any) -> bool:
    if isinstance(value, dict):
        return _tag_like(value) or any(_has_tag_like(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_tag_like(v) for v in value)
    return False


def _escaped(value: Any) -> Any:
    """``value`` with each tag-like dict's key given one ``$`` more (:func:`_object_hook`
    takes it off)."""
    if isinstance(value, dict):
        if _tag_like(value):
            ((key, inner),) = value.items()
            return {"$" + key: _escaped(inner)}
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escaped(v) for v in value]
    return value


def _object_hook(obj: dict[str, Any]) -> Any:
    if len(obj) != 1:
        return obj
    ((key, value),) = obj.items()
    if key == _BYTES:
        if not isinstance(value, str):
            raise ValueError("a $bytes tag holds no hex text")
        return bytes.fromhex(value)
    if _tag_like(obj):  # a caller's dict, escaped by dump
        return {key[1:]: value}
    return obj


def dump(value: Any) -> str:
    """``value`` as the JSON text a row holds (``bytes`` tagged, a dict of the caller's that
    looks like a tag escaped: :func:`load` gives back an equal value); :class:`StoreError` if
    it cannot be stored."""
    try:
        text = json.dumps(value, default=_default, separators=(",", ":"), allow_nan=False)
        if _BYTES + '":' in text and _has_tag_like(value):  # rare: walk only then
            text = json.dumps(
                _escaped(value), default=_default, separators=(",", ":"), allow_nan=False
            )
    except (TypeError, ValueError) as exc:
        raise StoreError(f"value cannot be stored: {exc}") from exc
    except RecursionError:
        raise StoreError("value cannot be stored: nested too deeply") from None
    return text


#: A text column's value as read (SQLite's ``text_factory``): UTF-8, with bytes that are not
#: (only damage to the file makes those) kept as lone surrogates, so that the row fails its
#: checksum and is quarantined instead of the read failing (and quoting the row). A partial
#: of ``str``: no Python frame per value.
read_text: Callable[[bytes], str] = functools.partial(
    str, encoding="utf-8", errors="surrogateescape"
)


def undecoded(text: object) -> bool:
    """Whether ``text`` was read from bytes that are not UTF-8 (:func:`read_text`)."""
    if not isinstance(text, str) or text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def stored(text: str) -> bytes:
    """The bytes :func:`read_text` read ``text`` from."""
    return text.encode("utf-8", "surrogateescape")


class NotJson(Exception):
    """A stored value that does not decode (the row is quarantined)."""


def load(text: object) -> Any:
    """The value a row's text holds; :class:`NotJson` (without the content) if it does not
    decode."""
    if not isinstance(text, str):
        raise NotJson(f"stored value is not text ({type(text).__name__})")
    try:
        return json.loads(text, object_hook=_object_hook)
    except ValueError as exc:  # JSONDecodeError, or a bad $bytes hex; the message has no content
        raise NotJson(f"stored value is not valid JSON ({type(exc).__name__})") from None
    except RecursionError:
        raise NotJson("stored value is not valid JSON (nested too deeply)") from None


def checksum(*parts: object) -> str:
    """BLAKE2b-128 of the typed, length-prefixed parts of a row (what ``checksum`` holds).

    Plain, not keyed: it detects damage (a flipped bit, a changed digit, a row's value moved to
    another key), not a forger who can rewrite the database (they could recompute any key kept
    in it). It never raises, whatever a damaged row's column types are.
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


def record_sum(namespace: object, key: object, value: object) -> str:
    """The checksum of a record row."""
    return checksum("record", namespace, key, value)


def entry_sum(seq: object, namespace: object, kind: object, value: object, reported: object) -> str:
    """The checksum of a journal row."""
    return checksum("journal", seq, namespace, kind, value, reported)


# -- the tables, declared once ----------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """How one engine spells the few column declarations that differ.

    ``name_text`` types the namespace and key columns (PostgreSQL: byte order, ``COLLATE "C"``,
    so that keys sort as SQLite's BINARY sorts them, whatever the database's locale);
    ``serial`` declares the never-reused journal sequence number and quarantine id; ``loose``
    types the quarantine's columns (SQLite keeps them untyped: a damaged row is moved as found);
    ``seq_text`` turns a sequence number into a quarantine key; ``raw_text`` (a ``%``
    template) gives a text column's stored bytes, to find a row whose name is damaged.
    """

    name_text: str
    serial: str
    without_rowid: str
    loose: dict[str, str]
    seq_text: str
    raw_text: str


SQLITE = Dialect(
    name_text="TEXT",
    serial="INTEGER PRIMARY KEY AUTOINCREMENT",
    without_rowid=" WITHOUT ROWID",
    loose={"namespace": "", "key": "", "kind": "", "value": "", "reported": ""},
    seq_text="seq",
    raw_text="CAST(%s AS BLOB)",
)
POSTGRES = Dialect(
    name_text='TEXT COLLATE "C"',
    serial="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    without_rowid="",
    loose={
        "namespace": ' TEXT COLLATE "C"',
        "key": ' TEXT COLLATE "C"',
        "kind": " TEXT",
        "value": " TEXT",
        "reported": " INTEGER",
    },
    seq_text="CAST(seq AS TEXT)",
    raw_text="convert_to(%s, 'UTF8')",
)


def _quarantine(d: Dialect) -> str:
    columns = ", ".join(f"{name}{kind}" for name, kind in d.loose.items())
    return (
        f"CREATE TABLE quarantine (id {d.serial}, origin TEXT NOT NULL,"
        f" {columns}, reason TEXT NOT NULL)"
    )


def schema(d: Dialect) -> tuple[str, ...]:
    """The statements that create a store of :data:`SCHEMA_VERSION` (SQLite: exactly the text
    zse has always written, so that files stay byte-compatible)."""
    return (
        f"CREATE TABLE meta (key {d.name_text} PRIMARY KEY, value TEXT NOT NULL)",
        f"CREATE TABLE records (namespace {d.name_text} NOT NULL, key {d.name_text} NOT NULL,"
        f" value TEXT NOT NULL, checksum TEXT, PRIMARY KEY (namespace, key)){d.without_rowid}",
        f"CREATE TABLE journal (seq {d.serial}, namespace {d.name_text} NOT NULL,"
        " kind TEXT NOT NULL, value TEXT NOT NULL, reported INTEGER NOT NULL DEFAULT 0,"
        " checksum TEXT)",
        "CREATE INDEX journal_unreported ON journal (namespace, reported, seq)",
        _quarantine(d),
    )


def migration_1(d: Dialect) -> tuple[str, ...]:
    """Schema 1 -> 2, the statements (the store then computes every row's checksum)."""
    return (
        "ALTER TABLE records ADD COLUMN checksum TEXT",
        "ALTER TABLE journal ADD COLUMN checksum TEXT",
        _quarantine(d),
    )


# -- the engine seam --------------------------------------------------------------------------

_T = TypeVar("_T")

#: A transaction's statements (:meth:`Engine.finish`): a generator that yields ``(sql,
#: params)``, is sent each statement's rows, and returns the transaction's result. It does no
#: I/O of its own (an engine may run it on its connection's thread).
Plan = Generator[tuple[str, tuple[Any, ...]], list[tuple[Any, ...]], _T]


class Statements(Generic[_T]):
    """A :data:`Plan` driven a statement at a time: iterate for its ``(sql, params)``, set
    :attr:`rows` to each statement's rows before the next; :attr:`result` once done."""

    def __init__(self, plan: Plan[_T]) -> None:
        self._plan = plan
        self.rows: list[tuple[Any, ...]] = []
        self._started = False
        self._result: tuple[_T] | None = None

    def __iter__(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        return self

    def __next__(self) -> tuple[str, tuple[Any, ...]]:
        try:
            if not self._started:
                self._started = True
                return next(self._plan)
            return self._plan.send(self.rows)
        except StopIteration as done:
            self._result = (done.value,)
            raise StopIteration from None

    @property
    def result(self) -> _T:
        """The plan's result (once its statements are all run)."""
        if self._result is None:
            raise RuntimeError("the plan has statements left")
        return self._result[0]


class Engine(ABC):
    """One open connection to a store's database, as :class:`zse.store.Store` uses it.

    The store serialises every call (one at a time, its own lock) and wraps each in
    :func:`hold_virtual_clock`; it turns the exceptions in :attr:`errors` into
    :class:`StoreError` naming :attr:`where` and the operation.
    """

    #: What every message names: the file's path, or the URL without its password.
    where: str
    dialect: Dialect
    #: The driver's exceptions a store reports as :class:`StoreError`.
    errors: tuple[type[BaseException], ...]
    #: Run first in a transaction whose COMMIT need not wait for the disk (:meth:`finish`
    #: with ``durable`` False); empty: it waits all the same.
    lazy: str = ""

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one query; its rows."""

    @abstractmethod
    async def begin(self) -> None:
        """Start a write transaction."""

    @abstractmethod
    async def identify(self) -> tuple[int, set[str]]:
        """The store's schema version (0: an empty database, to create) and its tables;
        :class:`StoreError` (``not a zse store: ...``) if it is something else."""

    @abstractmethod
    async def check_integrity(self) -> None:
        """Refuse a structurally damaged database (:class:`StoreError`)."""

    @abstractmethod
    async def stamp(self) -> None:
        """Mark the database as a zse store of :data:`SCHEMA_VERSION` (in the transaction that
        creates or migrates it)."""

    async def finish(self, plan: Plan[_T], *, durable: bool = True) -> _T:
        """Run ``plan``'s statements in the transaction :meth:`begin` began, then COMMIT;
        its result. A statement that fails raises, the transaction left for the caller to roll
        back. ``durable`` False: the COMMIT may return before the disk has it (:attr:`lazy`;
        a power cut may lose it, a killed process does not). This one takes a trip to the
        driver per statement; an engine may run the whole where its connection lives
        (SQLite: one trip to aiosqlite's thread)."""
        statements = Statements(plan)
        if not durable and self.lazy:
            await self.execute(self.lazy)
        for sql, params in statements:
            statements.rows = await self.fetch(sql, params)
        await self.execute("COMMIT")
        return statements.result

    async def opened(self) -> None:  # noqa: B027 - optional
        """Set the connection up once the store is known good (SQLite: WAL, full sync)."""

    @abstractmethod
    async def close(self) -> None:
        """Close the connection and release the single-writer lock."""

    @abstractmethod
    def abandon(self) -> None:
        """End the connection without waiting (a cancelled open or close)."""

    def describe(self, exc: BaseException) -> str:
        """A driver exception as the end of a :class:`StoreError` message."""
        return str(exc) or type(exc).__name__

    def closed_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the connection was closed under the store (by its close)."""
        return False
