"""#19.1: the PostgreSQL engine's own cases, against a real server (tests/postgres_server.py).

The shared behaviour runs on both engines in the other store tests (``place``); here is what
only a server has: its URL, its identity row, a foreign or newer schema, a refused connection,
a wrong password, a connection lost or hung. Every failure is one StoreError line that never
shows the password. The SQLite-only tests (file bytes, pages, flock through links, aiosqlite's
thread) have these as their counterparts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from tests.postgres_server import raw_sql, unique_schema, wait_released
from zse.errors import StoreError
from zse.store import Batch, Store
from zse.store_engine import SCHEMA_VERSION, SQLITE, schema

#: What zse wrote before the engine seam: new SQLite files keep exactly this schema.
SQLITE_SCHEMA = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE records (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " checksum TEXT, PRIMARY KEY (namespace, key)) WITHOUT ROWID",
    "CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL,"
    " kind TEXT NOT NULL, value TEXT NOT NULL, reported INTEGER NOT NULL DEFAULT 0,"
    " checksum TEXT)",
    "CREATE INDEX journal_unreported ON journal (namespace, reported, seq)",
    "CREATE TABLE quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL,"
    " namespace, key, kind, value, reported, reason TEXT NOT NULL)",
]


async def test_sqlite_files_keep_the_schema_zse_always_wrote(tmp_path):
    assert list(schema(SQLITE)) == SQLITE_SCHEMA
    path = tmp_path / "s.db"
    async with await Store.open(path):
        pass
    raw = sqlite3.connect(path)
    found = [
        r[0]
        for r in raw.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name != 'sqlite_sequence'"
        )
    ]
    raw.close()
    assert found == SQLITE_SCHEMA


async def test_a_new_store_is_identified_in_its_meta_table(pg_place):
    path = pg_place("s")
    async with await Store.open(path) as store:
        assert store.path is None
        await store.commit(Batch().put("ns", "é", 1).put("ns", "Z", 2).put("ns", "a", 3))
        # Keys sort by code point, as SQLite's BINARY does, whatever the database's locale.
        assert list(await store.load("ns")) == ["Z", "a", "é"]
    assert sorted(await raw_sql(path, "SELECT key, value FROM meta")) == [
        ("application_id", "0x5A534531"),
        ("schema", str(SCHEMA_VERSION)),
    ]


async def test_several_stores_in_one_database_one_schema_each(postgres):
    first, second = (postgres.store_url(unique_schema(n)) for n in ("one", "two"))
    second = second.replace("postgresql://", "postgres://", 1)  # the other spelling
    async with await Store.open(first) as one, await Store.open(second) as two:
        await one.commit(Batch().put("ns", "k", 1).append("ns", "e", 1))
        await two.commit(Batch().put("ns", "k", 2))
        assert await one.get("ns", "k") == 1
        assert await two.get("ns", "k") == 2
        assert await two.journal("ns") == []


async def test_a_schema_of_another_application_is_refused_and_left_alone(pg_place):
    path = pg_place("foreign")
    await raw_sql(path, "CREATE TABLE invoices (id INTEGER)", "INSERT INTO invoices VALUES (7)")
    with pytest.raises(StoreError, match="not a zse store: a PostgreSQL schema of another"):
        await Store.open(path)
    await raw_sql(path, "CREATE TABLE meta (key TEXT, value TEXT)")  # another meta
    with pytest.raises(StoreError, match="not a zse store"):
        await Store.open(path)
    await raw_sql(path, "DROP TABLE meta", "CREATE TABLE meta (other INTEGER)")
    with pytest.raises(StoreError, match="not a zse store"):
        await Store.open(path)
    assert await raw_sql(path, "SELECT id FROM invoices") == [(7,)]


async def test_a_newer_schema_and_a_missing_table_are_refused(pg_place):
    path = pg_place("s")
    async with await Store.open(path):
        pass
    await raw_sql(path, "UPDATE meta SET value = '9' WHERE key = 'schema'")
    with pytest.raises(StoreError, match="schema version 9 is newer than this zse understands"):
        await Store.open(path)
    await raw_sql(path, "UPDATE meta SET value = '2' WHERE key = 'schema'", "DROP TABLE journal")
    with pytest.raises(StoreError, match=r"damaged zse store: schema version 2, tables \["):
        await Store.open(path)


def _one_line(exc: pytest.ExceptionInfo[StoreError], password: str) -> str:
    text = str(exc.value)
    assert "\n" not in text
    assert password not in text
    assert password not in repr(exc.value)
    return text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@127.0.0.1:99999/db", "invalid PostgreSQL URL: a bad port"),
        ("postgresql://u@127.0.0.1/db?schema=a-b", "schema must be a plain identifier"),
        ("postgresql://u@127.0.0.1/db?schema=Esi", "schema must be a plain identifier"),
        ("postgresql://u@127.0.0.1/db?sslmode=x", "unknown parameter"),
        ("postgresql://u@127.0.0.1/db?command_timeout=0", "command_timeout must be a positive"),
        ("postgresql://u@127.0.0.1/a/b", "the database is one name"),
        ("postgresql://u@[::1/db", "invalid PostgreSQL URL: a bad host"),
        ("postgresql://u:pw\n@h/db", "control characters"),
        # mistyped schemes were files to create, named with the password (found by an audit)
        ("postgresql+asyncpg://u:pw@h/db", "a URL of scheme 'postgresql\\+asyncpg'"),
        ("postgresq://u:pw@h/db", "a URL of scheme 'postgresq'"),
        ("mysql://u:pw@h/db", "a URL of scheme 'mysql'"),
        (" postgresql://u:pw@h/db", "a database URL with spaces before it"),
    ],
)
async def test_a_wrong_url_is_one_clear_line(url, expected):
    with pytest.raises(StoreError, match=expected) as refused:
        await Store.open(url)
    assert "pw" not in _one_line(refused, "pw")


async def test_refused_wrong_password_and_missing_database(postgres):
    with ClosedPort() as port:
        url = f"postgresql://zse:{postgres.password}@127.0.0.1:{port}/postgres"
        with pytest.raises(StoreError, match=r"cannot connect: .*onnect") as refused:
            await Store.open(url)
        assert _one_line(refused, postgres.password).startswith(
            f"postgresql://zse@127.0.0.1:{port}/postgres: cannot connect"
        )
    wrong = "not-" + postgres.password
    bad_password = f"postgresql://zse:{wrong}@127.0.0.1:{postgres.port}/postgres"
    with pytest.raises(StoreError, match="password authentication failed") as refused:
        await Store.open(bad_password)
    _one_line(refused, wrong)
    missing = f"postgresql://zse:{postgres.password}@127.0.0.1:{postgres.port}/nowhere"
    with pytest.raises(StoreError, match='database "nowhere" does not exist') as refused:
        await Store.open(missing)
    _one_line(refused, postgres.password)


class ClosedPort:
    """A loopback port nothing listens on (bound, not listening, for the test's duration)."""

    def __enter__(self) -> int:
        import socket  # noqa: PLC0415

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        return int(self._socket.getsockname()[1])

    def __exit__(self, *exc_info: object) -> None:
        self._socket.close()


async def test_no_password_in_repr_messages_or_logs(postgres, caplog):
    path = postgres.store_url(unique_schema("secret"))
    with caplog.at_level(logging.DEBUG):
        store = await Store.open(path)
        try:
            await store.commit(Batch().put("ns", "k", 1))
            await raw_sql(path, "UPDATE records SET value = '2'")
            assert await store.get("ns", "k") is None  # quarantined, logged with the URL
            with pytest.raises(StoreError, match="in use by another zse process") as twice:
                await Store.open(path)
            texts = [repr(store), str(store.where), str(twice.value)]
        finally:
            await store.close()
        with pytest.raises(StoreError, match="store is closed") as closed:
            await store.load("ns")
    texts.append(str(closed.value))
    assert f"postgresql://zse@127.0.0.1:{postgres.port}/postgres?schema=" in texts[0]
    assert "quarantined" in caplog.text
    for text in [*texts, caplog.text]:
        assert postgres.password not in text


async def test_a_lost_connection_is_a_store_error(pg_place):
    """The server ends the store's session (an administrator, a restart, a network cut)."""
    path = pg_place("s")
    async with await Store.open(path) as store:
        await store.commit(Batch().put("ns", "k", 1))
        [(pid,)] = await store._rows("SELECT pg_backend_pid()")
        await raw_sql(path, ("SELECT pg_terminate_backend(?)", (pid,)))
        with pytest.raises(StoreError, match="cannot commit: ") as lost:
            await store.commit(Batch().put("ns", "k", 2))
        assert "\n" not in str(lost.value)
        with pytest.raises(StoreError, match="cannot read: "):
            await store.load("ns")
    await wait_released(path)  # the lock goes with the session, once its process ends
    async with await Store.open(path) as store:
        assert await store.get("ns", "k") == 1


HUNG = """
import asyncio, sys, time
from zse.errors import StoreError
from zse.store import Batch, Store

async def main(url):
    store = await Store.open(url)
    [(pid,)] = await store._rows("SELECT pg_backend_pid()")
    print(pid, flush=True)
    sys.stdin.readline()  # the test stops that server process now
    began = time.monotonic()
    try:
        await store.commit(Batch().put("ns", "k", 1))
    except StoreError as exc:
        print(round(time.monotonic() - began), exc, flush=True)
    store._engine.abandon()

asyncio.run(main(sys.argv[1]))
"""


async def test_a_server_that_stops_answering_is_a_store_error_not_a_hang(pg_place):
    """Every statement is bounded (``command_timeout``): here 1 s against a server process
    stopped with SIGSTOP. Run in a child on a real-time loop (this test's clock is virtual)."""
    path = pg_place("hung")
    async with await Store.open(path):
        pass
    child = subprocess.Popen(
        [sys.executable, "-c", HUNG, f"{path}&command_timeout=1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert child.stdin is not None
    assert child.stdout is not None
    pid = int(child.stdout.readline())
    os.kill(pid, signal.SIGSTOP)  # the server process serving that child's connection
    try:
        child.stdin.write("go\n")
        child.stdin.flush()
        line = child.stdout.readline()
    finally:
        os.kill(pid, signal.SIGCONT)
        child.stdin.close()
        child.wait(timeout=30)
        child.stdout.close()
    seconds, message = line.split(" ", 1)
    assert int(seconds) <= 5
    assert ": cannot commit: " in message
    assert "\n" not in message.rstrip("\n")


@pytest.mark.parametrize("steps", [0, 2, 5, 10, 20, 40])
async def test_a_cancelled_open_leaves_no_lock_behind(pg_place, steps):
    """Cancelled anywhere in its open (connecting, locking, checking), a store leaves no
    session holding its lock: the next open works (SQLite's counterpart, with its thread, is
    in test_store_single_writer.py)."""
    path = pg_place("s")
    async with await Store.open(path):
        pass
    opening = asyncio.create_task(Store.open(path))
    for _ in range(steps):
        await asyncio.sleep(0)
    opening.cancel()
    await asyncio.wait({opening})
    if not opening.cancelled() and opening.exception() is None:
        await opening.result().close()
    await wait_released(path)
    async with await Store.open(path) as store:
        assert await store.load("ns") == {}
