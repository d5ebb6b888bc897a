"""#12.17: nothing is lost silently. Structural damage (pages swapped) is refused at open by
``PRAGMA integrity_check``; a record whose bytes changed in place (a digit) fails its checksum
and is quarantined, named; schema-1 stores get their checksums at the first open.

The page swaps and in-place byte edits are SQLite only (they damage the file); the edits made
with SQL behind the store's back run on both engines (``place``)."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import pytest

from tests.postgres_server import raw_sql
from zse.errors import StoreError
from zse.store import SCHEMA_VERSION, Batch, Store, _record_sum

RECORDS = 180


async def healthy(path) -> bytes:
    """A store of 180 records and 180 journal entries, WAL folded in; its bytes."""
    async with await Store.open(path) as store:
        batch = Batch()
        for i in range(RECORDS):
            batch.put("ns", f"k{i:03}", {"text": "x" * 150, "i": 10_000 + i}).append("ns", "e", i)
        await store.commit(batch)
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.execute("PRAGMA journal_mode=DELETE")
    raw.close()
    return path.read_bytes()


def swapped(data: bytes, a: int, b: int, size: int) -> bytes:
    pages = [data[i : i + size] for i in range(0, len(data), size)]
    pages[a], pages[b] = pages[b], pages[a]
    return b"".join(pages)


def quick_check_misses_loss(path) -> bool:
    """What zse did before: quick_check passes, yet rows are gone."""
    raw = sqlite3.connect(path)
    try:
        if [r[0] for r in raw.execute("PRAGMA quick_check")] != ["ok"]:
            return False
        found = sum(
            raw.execute(
                "SELECT 1 FROM records WHERE namespace = 'ns' AND key = ?", (f"k{i:03}",)
            ).fetchone()
            is not None
            for i in range(RECORDS)
        )  # looked up by key, as Store.get does: a b-tree out of order hides rows from seeks
        entries = raw.execute("SELECT count(*) FROM journal").fetchone()[0]
        return found < RECORDS or entries < RECORDS
    except sqlite3.DatabaseError:
        return False
    finally:
        raw.close()


async def test_every_two_page_swap_is_refused_or_loses_nothing(tmp_path):
    path = tmp_path / "s.db"
    data = await healthy(path)
    size = int.from_bytes(data[16:18], "big")
    count = len(data) // size
    assert count >= 12
    silent_before = refused = 0
    reasons: set[str] = set()
    for a in range(1, count):  # page 1 holds the header: swapping it is another test's matter
        for b in range(a + 1, count):
            path.write_bytes(swapped(data, a, b, size))
            silent_before += quick_check_misses_loss(path)
            try:
                store = await Store.open(path)
            except StoreError as exc:
                reasons.add(str(exc).removeprefix(f"{path}: ").split(":")[0])
                refused += 1
                continue
            async with store:  # opened: then nothing may be missing
                assert len(await store.load("ns")) == RECORDS
                for i in range(RECORDS):
                    assert await store.get("ns", f"k{i:03}") is not None
                assert len(await store.journal("ns")) == RECORDS
                assert await store.quarantined() == []
    assert silent_before > 0, "the swaps must include the ones quick_check let through"
    assert refused >= silent_before
    assert reasons <= {"damaged zse store (PRAGMA integrity_check)", "cannot read"}


async def test_a_changed_digit_quarantines_that_record_and_keeps_the_rest(tmp_path, caplog):
    path = tmp_path / "s.db"
    data = await healthy(path)
    for i in range(0, RECORDS, 6):  # 30 records, one changed digit each, one at a time
        value = f'"i":{10_000 + i}'.encode()
        assert data.count(value) == 1
        path.write_bytes(data.replace(value, f'"i":{20_000 + i}'.encode()))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="zse.store"):
            async with await Store.open(path) as store:
                records = await store.load("ns")
                [bad] = await store.quarantined()
                assert len(records) == RECORDS - 1
                assert f"k{i:03}" not in records
                assert (bad.origin, bad.namespace, bad.key) == ("record", "ns", f"k{i:03}")
                assert bad.reason == "checksum mismatch: the stored record was altered"
                assert f'"i":{20_000 + i}' in str(bad.value)  # kept as found, for the operator
                assert str(20_000 + i) not in repr(bad)  # but never printed
        assert f"record ns/k{i:03} quarantined: checksum mismatch" in caplog.text
        assert str(20_000 + i) not in caplog.text


async def test_a_quarantined_record_stays_quarantined_after_reopening(tmp_path):
    path = tmp_path / "s.db"
    data = await healthy(path)
    path.write_bytes(data.replace(b'"i":10007', b'"i":10008'))
    async with await Store.open(path) as store:
        assert len(await store.quarantined("ns")) == 1
    async with await Store.open(path) as store:
        assert len(await store.load("ns")) == RECORDS - 1
        assert [q.key for q in await store.quarantined()] == ["k007"]


async def fill(location) -> None:
    async with await Store.open(location) as store:
        batch = Batch()
        for i in range(RECORDS):
            batch.put("ns", f"k{i:03}", {"text": "x" * 150, "i": 10_000 + i}).append("ns", "e", i)
        await store.commit(batch)


async def test_a_changed_journal_entry_is_quarantined(place):
    path = place("s.db")
    await fill(path)
    await raw_sql(path, "UPDATE journal SET reported = 1 WHERE seq = 5")  # silently "sent"
    async with await Store.open(path) as store:
        assert 5 not in [e.seq for e in await store.journal("ns")]
        [bad] = await store.quarantined()
        assert (bad.origin, bad.key, bad.kind) == ("journal", "5", "e")


async def test_a_record_changed_with_sql_is_quarantined_and_stays_so(place, caplog):
    """A row changed behind the store's back, through the database itself (no file damage)."""
    path = place("s.db")
    await fill(path)
    await raw_sql(path, "UPDATE records SET value = replace(value, '10007', '10008')")
    with caplog.at_level(logging.WARNING, logger="zse.store"):
        async with await Store.open(path) as store:
            [bad] = await store.quarantined("ns")
            assert (bad.origin, bad.key, bad.reason) == (
                "record",
                "k007",
                "checksum mismatch: the stored record was altered",
            )
            assert "10008" in str(bad.value)
            assert "10008" not in repr(bad)
    assert "record ns/k007 quarantined: checksum mismatch" in caplog.text
    assert "10008" not in caplog.text
    # Moved to another key, with its checksum: the key is part of the checksum.
    await raw_sql(path, "UPDATE records SET key = 'moved' WHERE key = 'k009'")
    async with await Store.open(path) as store:
        records = await store.load("ns")
        assert len(records) == RECORDS - 2
        assert [q.key for q in await store.quarantined()] == ["k007", "moved"]


async def test_marking_and_rewriting_keep_checksums_valid(place):
    path = place("s.db")
    async with await Store.open(path) as store:
        [seq] = await store.commit(Batch().put("ns", "k", 1).append("ns", "e", {"x": b"\x01"}))
        await store.mark_reported(seq)
        await store.commit(Batch().put("ns", "k", 2).replace("other", {"a": [1, None]}))
    async with await Store.open(path) as store:
        assert await store.quarantined() == []
        assert await store.load("ns") == {"k": 2}
        assert [(e.seq, e.reported) for e in await store.journal("ns")] == [(seq, True)]


def v1_store(path) -> None:
    """A store as zse wrote it before the checksums (schema 1)."""
    raw = sqlite3.connect(path)
    for statement in (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE records (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
        " PRIMARY KEY (namespace, key)) WITHOUT ROWID",
        "CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL,"
        " kind TEXT NOT NULL, value TEXT NOT NULL, reported INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX journal_unreported ON journal (namespace, reported, seq)",
        "INSERT INTO meta VALUES ('schema', '1')",
        "INSERT INTO records VALUES ('ns', 'a', '{\"v\":1}'), ('ns', 'b', '[2]')",
        "INSERT INTO journal (namespace, kind, value, reported) VALUES ('ns', 'e', '3', 1),"
        " ('ns', 'e', '4', 0)",
        "PRAGMA application_id = 0x5A534531",
        "PRAGMA user_version = 1",
    ):
        raw.execute(statement)
    raw.commit()
    raw.close()


async def test_a_schema_1_store_gets_its_checksums_at_the_first_open(tmp_path, caplog):
    path = tmp_path / "old.db"
    v1_store(path)
    with caplog.at_level(logging.INFO, logger="zse.store"):
        async with await Store.open(path) as store:
            assert await store.load("ns") == {"a": {"v": 1}, "b": [2]}
            assert [e.value for e in await store.unreported("ns")] == [4]
    assert "upgraded to schema 2: 2 records and 2 journal entries got a checksum" in caplog.text
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("SELECT count(*) FROM records WHERE checksum IS NULL").fetchone() == (0,)
    raw.execute("UPDATE records SET value = '[3]' WHERE key = 'b'")  # now it is noticed
    raw.commit()
    raw.close()
    async with await Store.open(path) as store:
        assert await store.load("ns") == {"a": {"v": 1}}


async def test_a_schema_1_store_on_postgresql_gets_its_checksums(pg_place, caplog):
    """The same migration on the other engine (a schema-1 PostgreSQL store is built by hand:
    zse never wrote one, the migration is declared once for both)."""
    path = pg_place("old")
    await raw_sql(
        path,
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        'CREATE TABLE records (namespace TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL,'
        " value TEXT NOT NULL, PRIMARY KEY (namespace, key))",
        "CREATE TABLE journal (seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " namespace TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,"
        " reported INTEGER NOT NULL DEFAULT 0)",
        "INSERT INTO meta VALUES ('schema', '1'), ('application_id', '0x5A534531')",
        "INSERT INTO records VALUES ('ns', 'a', '{\"v\":1}'), ('ns', 'b', '[2]')",
        "INSERT INTO journal (namespace, kind, value, reported) VALUES ('ns', 'e', '3', 1),"
        " ('ns', 'e', '4', 0)",
    )
    with caplog.at_level(logging.INFO, logger="zse.store"):
        async with await Store.open(path) as store:
            assert await store.load("ns") == {"a": {"v": 1}, "b": [2]}
            assert [e.value for e in await store.unreported("ns")] == [4]
    assert "upgraded to schema 2: 2 records and 2 journal entries got a checksum" in caplog.text
    assert await raw_sql(path, "SELECT value FROM meta WHERE key = 'schema'") == [("2",)]
    await raw_sql(path, "UPDATE records SET value = '[3]' WHERE key = 'b'")
    async with await Store.open(path) as store:
        assert await store.load("ns") == {"a": {"v": 1}}


async def test_deeply_nested_values(tmp_path):
    deep: Any = 0
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(StoreError, match="value cannot be stored: nested too deeply"):
        Batch().put("ns", "k", deep)
    path = tmp_path / "s.db"
    async with await Store.open(path):
        pass
    text = "[" * 100_000 + "]" * 100_000  # written by something else, with a valid checksum
    raw = sqlite3.connect(path)
    raw.execute(
        "INSERT INTO records VALUES ('ns', 'deep', ?, ?)", (text, _record_sum("ns", "deep", text))
    )
    raw.execute("INSERT INTO records VALUES ('ns', 'ok', '1', ?)", (_record_sum("ns", "ok", "1"),))
    raw.commit()
    raw.close()
    async with await Store.open(path) as store:
        assert await store.load("ns") == {"ok": 1}
        [bad] = await store.quarantined()
        assert bad.reason == "stored value is not valid JSON (nested too deeply)"
