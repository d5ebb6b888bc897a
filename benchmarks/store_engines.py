"""The store on its two engines (issue #19.1): commits and loads per second, SQLite and
PostgreSQL, each against its raw driver doing the same inserts and selects in the same run.

A PostgreSQL server is started as the tests start it (``tests/postgres_server.py``: initdb in a
temporary directory, a free loopback port; here with ``fsync`` on, as SQLite's
``synchronous=FULL`` is durable too). Measured:

- **commits/s**: ``Store.commit`` of a batch of one record and one journal entry (what a
  service writes per transition: its state and the output it owes), N times; the reference is
  the raw driver (``sqlite3`` in WAL with ``synchronous=FULL``; asyncpg) running one
  transaction with the same two inserts into plain tables, N times;
- **loads/s**: ``Store.load`` of a namespace of 1,000 records (verified and decoded); the
  reference is the raw ``SELECT`` of the same 1,000 rows.

    .venv/bin/python benchmarks/store_engines.py [--commits 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' server: one way to start PostgreSQL

import asyncpg  # noqa: E402
from _tools import start_postgres  # noqa: E402

from zse.store import Batch, Store  # noqa: E402
from zse.store_postgres import parse_url  # noqa: E402

RECORDS = 1_000
LOADS = 50
VALUE = {"device": "00:0d:6f:00:0a:00:00:01", "status": 3, "time": 800_000_000, "signed": False}
TABLES = (
    "CREATE TABLE r (namespace TEXT, key TEXT, value TEXT, PRIMARY KEY (namespace, key))",
    "CREATE TABLE j (seq INTEGER PRIMARY KEY, namespace TEXT, kind TEXT, value TEXT)",
)


async def per_second(count: int, step: Callable[[int], Awaitable[object]]) -> float:
    begin = time.perf_counter()
    for i in range(count):
        await step(i)
    return count / (time.perf_counter() - begin)


async def store_figures(location: object, commits: int) -> tuple[float, float]:
    async with await Store.open(location) as store:  # type: ignore[arg-type]

        async def commit(i: int) -> None:
            await store.commit(Batch().put("ns", f"k{i:06}", VALUE).append("ns", "e", VALUE))

        rate = await per_second(commits, commit)
        batch = Batch()
        for i in range(RECORDS):
            batch.put("load", f"k{i:06}", VALUE)
        await store.commit(batch)
        loads = await per_second(LOADS, lambda _: store.load("load"))
    return rate, loads


async def sqlite_reference(path: Path, commits: int) -> tuple[float, float]:
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    for table in TABLES:
        raw.execute(table)
    text = '{"device":"00:0d:6f:00:0a:00:00:01","status":3,"time":800000000,"signed":false}'

    async def commit(i: int) -> None:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("INSERT INTO r VALUES ('ns', ?, ?)", (f"k{i:06}", text))
        raw.execute("INSERT INTO j (namespace, kind, value) VALUES ('ns', 'e', ?)", (text,))
        raw.execute("COMMIT")

    rate = await per_second(commits, commit)
    raw.executemany(
        "INSERT INTO r VALUES ('load', ?, ?)", [(f"k{i:06}", text) for i in range(RECORDS)]
    )

    async def load(_: int) -> None:
        raw.execute("SELECT key, value FROM r WHERE namespace = 'load' ORDER BY key").fetchall()

    loads = await per_second(LOADS, load)
    raw.close()
    return rate, loads


async def asyncpg_reference(url: str, commits: int) -> tuple[float, float]:
    parts = parse_url(url)
    raw = await asyncpg.connect(
        host=parts.host, port=parts.port, user=parts.user, password=parts.password,
        database=parts.database,
    )  # fmt: skip
    await raw.execute("CREATE SCHEMA ref; SET search_path = ref")
    for table in TABLES:
        await raw.execute(table.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY"))
    text = '{"device":"00:0d:6f:00:0a:00:00:01","status":3,"time":800000000,"signed":false}'

    async def commit(i: int) -> None:
        async with raw.transaction():
            await raw.execute("INSERT INTO r VALUES ('ns', $1, $2)", f"k{i:06}", text)
            await raw.execute("INSERT INTO j (namespace, kind, value) VALUES ('ns', 'e', $1)", text)

    rate = await per_second(commits, commit)
    await raw.executemany(
        "INSERT INTO r VALUES ('load', $1, $2)", [(f"k{i:06}", text) for i in range(RECORDS)]
    )
    loads = await per_second(
        LOADS, lambda _: raw.fetch("SELECT key, value FROM r WHERE namespace = 'load' ORDER BY key")
    )
    await raw.close()
    return rate, loads


async def measure(commits: int, folder: Path, url: str) -> list[tuple[str, float, float]]:
    rows = []
    rows.append(("SQLite: zse.store", *await store_figures(folder / "store.db", commits)))
    rows.append(("SQLite: sqlite3 raw", *await sqlite_reference(folder / "raw.db", commits)))
    rows.append(("PostgreSQL: zse.store", *await store_figures(f"{url}?schema=zse", commits)))
    rows.append(("PostgreSQL: asyncpg raw", *await asyncpg_reference(url, commits)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=2_000)
    args = parser.parse_args()
    server = start_postgres(durable=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = asyncio.run(measure(args.commits, Path(tmp), server.url))
    finally:
        server.stop()
    print(f"{args.commits:,} commits (1 record + 1 journal entry each); loads of {RECORDS:,}")
    print("| engine | commits/s | loads/s |")
    print("|---|---|---|")
    for name, rate, loads in rows:
        print(f"| {name} | {rate:,.0f} | {loads:,.1f} |")
    for engine, (store, raw) in {"SQLite": rows[0:2], "PostgreSQL": rows[2:4]}.items():
        print(
            f"{engine}: zse.store commits at {store[1] / raw[1]:.2f}x and loads at "
            f"{store[2] / raw[2]:.2f}x its raw driver's rate"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
