"""The PostgreSQL engine of :mod:`zse.store`: a store in a schema of a PostgreSQL database,
through asyncpg (the ``postgres`` extra; docs/adr/0017).

``Store.open("postgresql://user@host:port/database?schema=name")`` (``postgres://`` too) opens
or creates the store held by the tables of schema ``name`` (default ``public``), so one
database can hold several stores. The tables, their checksums and the SQL are those of the
SQLite engine (:mod:`zse.store_engine`); what differs is here:

* identity: the ``meta`` row ``application_id`` = ``0x5A534531`` (SQLite keeps it in the file
  header); a schema with other tables, or none of them, is refused, except the headend's
  work queue's (:data:`QUEUE_TABLES`: a schema holding only those is a new store);
* one writer per store: a session-level advisory lock keyed on the schema, taken at open
  (``pg_try_advisory_lock``); the server drops it when the connection ends, even when the
  process holding it is killed with SIGKILL;
* bounded waits: connecting (``connect_timeout``, default 10 s) and every statement
  (``command_timeout``, default 30 s) end in :class:`~zse.errors.StoreError`, never a hang;
* no message, repr or log carries the password (give it in ``~/.pgpass`` or ``PGPASSWORD``
  rather than in the URL where you can).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import asyncpg

from zse.errors import StoreError
from zse.store_engine import APPLICATION_ID, POSTGRES, Engine

__all__ = ["QUEUE_TABLES", "PostgresEngine", "PostgresUrl", "connect", "create_schema", "parse_url"]

_SCHEMES = ("postgresql", "postgres")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DEFAULT_TIMEOUTS = {"connect_timeout": 10.0, "command_timeout": 30.0}
#: The ``meta`` row that says a schema is a zse store.
IDENTITY = f"0x{APPLICATION_ID:08X}"
#: The tables of the headend's work queue (:mod:`zse.headend.queue`, ``control``, ``roster``),
#: which live in the store's schema (docs/adr/0019) and are created by whichever of the API
#: and its workers starts first: zse's own, not another application's.
QUEUE_TABLES = frozenset(
    {"headend_jobs", "headend_readers", "headend_control", "headend_lifecycle", "headend_workers"}
)


@dataclass(frozen=True, kw_only=True)
class PostgresUrl:
    """A parsed store URL; its repr and :attr:`where` leave the password out."""

    host: str | None
    port: int | None
    user: str | None
    password: str | None = None
    database: str | None
    schema: str
    connect_timeout: float
    command_timeout: float

    def __repr__(self) -> str:
        return f"PostgresUrl({self.where!r})"

    @property
    def where(self) -> str:
        """The URL as messages name it: no password."""
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        schema = f"?schema={self.schema}" if self.schema != "public" else ""
        return f"postgresql://{user}{self.host or ''}{port}/{self.database or ''}{schema}"

    @property
    def lock_key(self) -> int:
        """The advisory lock of this store (per database, as PostgreSQL scopes them): a signed
        64-bit number derived from the schema's name."""
        digest = hashlib.blake2b(f"zse.store/{self.schema}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)


def _bad(reason: str) -> StoreError:
    return StoreError(f"invalid PostgreSQL URL: {reason}")


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"{name} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise _bad(f"{name} must be a positive number of seconds")
    return value


def parse_url(url: str) -> PostgresUrl:
    """Parse ``postgresql://[user[:password]@][host][:port][/database][?schema=&...]``.

    The parameters are ``schema`` (a plain identifier, default ``public``),
    ``connect_timeout`` and ``command_timeout`` (seconds). Anything else is a
    :class:`~zse.errors.StoreError` whose message never repeats the URL (it may hold a
    password).
    """
    if _CONTROL.search(url):
        raise _bad("control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        host, user, password = parts.hostname, parts.username, parts.password
    except ValueError as exc:  # a bad port, a bad IPv6 address
        reason = "a bad port" if "port" in str(exc).lower() else "a bad host"
        raise _bad(reason) from None
    if parts.scheme.lower() not in _SCHEMES:
        raise _bad("the scheme must be postgresql:// or postgres://")
    if parts.fragment:
        raise _bad("a #fragment")
    if "@" in parts.path or "@" in parts.query:  # a user or password with an unquoted / or ?
        raise _bad("an @ after the host (percent-encode / ? # @ in a user name or password)")
    database = unquote(parts.path[1:]) if parts.path.startswith("/") else parts.path
    if "/" in database or (parts.path and not parts.path.startswith("/")):
        raise _bad("the database is one name after the host: /database")
    options = dict(_DEFAULT_TIMEOUTS)
    schema = "public"
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise _bad("a malformed ?parameter list") from None
    for name, value in query:
        if name == "schema":
            if not _SCHEMA_NAME.fullmatch(value):
                raise _bad("schema must be a plain identifier (a-z, 0-9, _; at most 63)")
            schema = value
        elif name in options:
            options[name] = _seconds(name, value)
        else:
            raise _bad("unknown parameter (known: schema, connect_timeout, command_timeout)")
    return PostgresUrl(
        host=unquote(host) if host else None,
        port=port,
        user=unquote(user) if user else None,
        password=unquote(password) if password is not None else None,
        database=database or None,
        schema=schema,
        **options,
    )


_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
    UnicodeError,
)

#: What connecting may raise besides (asyncpg's own checks of its arguments).
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (*_ERRORS, ValueError)


def _numbered(sql: str) -> str:
    """``?`` placeholders (the store's SQL) as PostgreSQL's ``$1``, ``$2``, ..."""
    count = 0

    def number(_: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f"${count}"

    return re.sub(r"\?", number, sql)


async def connect(url: PostgresUrl, *, application: str = "zse") -> asyncpg.Connection:
    """A connection to ``url``'s database with its schema first on the search path, its
    connect and statement timeouts, named ``application`` in ``pg_stat_activity``."""
    return await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.user,
        password=url.password,
        database=url.database,
        timeout=url.connect_timeout,
        command_timeout=url.command_timeout,
        server_settings={"search_path": url.schema, "application_name": application},
    )


class PostgresEngine(Engine):
    """A store in a PostgreSQL schema, opened with :meth:`connect`."""

    dialect = POSTGRES
    errors = _ERRORS
    # asynchronous commit, for this transaction only (PostgreSQL's "Asynchronous Commit")
    lazy = "SET LOCAL synchronous_commit TO OFF"

    def __init__(self, url: PostgresUrl, connection: asyncpg.Connection) -> None:
        self.url = url
        self.where = url.where
        self._db = connection
        self._sql: dict[str, str] = {}

    @classmethod
    async def connect(cls, url: PostgresUrl) -> PostgresEngine:
        """Connect and take the store's advisory lock (the caller holds the virtual clock)."""
        try:
            connection = await connect(url)
        except _CONNECT_ERRORS as exc:
            raise StoreError(f"{url.where}: cannot connect: {_scrub(url, exc)}") from None
        engine = cls(url, connection)
        try:
            held = await connection.fetchval("SELECT pg_try_advisory_lock($1)", url.lock_key)
        except _ERRORS as exc:
            connection.terminate()
            raise StoreError(f"{url.where}: cannot open: {_scrub(url, exc)}") from None
        except BaseException:
            connection.terminate()
            raise
        if not held:
            connection.terminate()
            raise StoreError(
                f"{url.where} is in use by another zse process (or already open in this one); "
                "a store has one writer at a time"
            )
        return engine

    def describe(self, exc: BaseException) -> str:
        return _scrub(self.url, exc)

    def _numbered(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            found = self._sql[sql] = _numbered(sql)
        return found

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        status = await self._db.execute(self._numbered(sql), *params)
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._db.fetch(self._numbered(sql), *params)]

    async def begin(self) -> None:
        await self._db.execute("BEGIN")

    async def identify(self) -> tuple[int, set[str]]:
        schema = self.url.schema
        tables = {
            str(row[0])
            for row in await self.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = ?", (schema,)
            )
        }
        if not tables - QUEUE_TABLES:  # an empty or missing schema is a new store, as an
            # empty file is (the headend's queue may have come first: its tables are zse's)
            if not await self.fetch("SELECT 1 FROM pg_namespace WHERE nspname = ?", (schema,)):
                await create_schema(self._db, schema)
            return 0, tables
        foreign = StoreError(
            f"{self.where}: not a zse store: a PostgreSQL schema of another application "
            f"(schema {schema}, {len(tables)} tables)"
        )
        if "meta" not in tables:
            raise foreign
        try:
            meta = dict(
                await self.fetch(
                    "SELECT key, value FROM meta WHERE key IN ('application_id', 'schema')"
                )
            )
        except asyncpg.PostgresError:  # a meta table of another shape
            raise foreign from None
        if meta.get("application_id") != IDENTITY:
            raise foreign
        version = str(meta.get("schema"))
        if not version.isdigit():
            raise StoreError(f"{self.where}: damaged zse store: no schema version in meta")
        return int(version), tables

    async def check_integrity(self) -> None:
        """Nothing to add: PostgreSQL checks its own pages (``initdb --data-checksums``) and
        the rows' checksums are verified at every open."""

    async def stamp(self) -> None:
        await self.execute(
            "INSERT INTO meta (key, value) VALUES ('application_id', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (IDENTITY,),
        )

    async def close(self) -> None:
        """Release the lock (so that a next open never races the session's end), close."""
        with contextlib.suppress(*_ERRORS):
            await self._db.execute("SELECT pg_advisory_unlock_all()")
        await self._db.close(timeout=self.url.command_timeout)

    def abandon(self) -> None:
        self._db.terminate()

    def closed_error(self, exc: BaseException) -> bool:
        return bool(self._db.is_closed())


async def create_schema(connection: asyncpg.Connection, schema: str) -> None:
    """Create ``schema`` unless it exists, also when another connection creates it at the
    same time (``IF NOT EXISTS`` alone then fails on the catalog's unique index: the store
    and the headend's queue, opened at once, both create it)."""
    try:
        await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')  # an identifier
    except (asyncpg.UniqueViolationError, asyncpg.DuplicateSchemaError):
        if connection.is_in_transaction():
            raise  # the transaction is lost: its owner tries it again
        # the other one's, committed meanwhile: there it is


def _scrub(url: PostgresUrl, exc: BaseException) -> str:
    """A driver message, with the password blotted out should the driver ever repeat it."""
    text = str(exc) or type(exc).__name__
    if url.password:
        text = text.replace(url.password, "***")
    return text
