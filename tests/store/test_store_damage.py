"""zse.store refuses what is not a healthy zse store with StoreError, and never rewrites it.

SQLite only: these damage the file's bytes, pages and header, which a PostgreSQL store does
not have (its counterparts, a foreign or newer schema or a missing table, are in
test_store_postgres.py)."""

from __future__ import annotations

import sqlite3

import pytest

from zse.errors import StoreError, ZseError
from zse.store import APPLICATION_ID, Batch, Store


def test_store_error_is_a_zse_error_not_a_value_error():
    assert issubclass(StoreError, ZseError)
    assert not issubclass(StoreError, ValueError)


async def make_store(path):
    async with await Store.open(path) as store:
        batch = Batch()
        for i in range(200):
            batch.put("ns", f"k{i:03}", {"text": "x" * 200, "i": i}).append("ns", "k", i)
        await store.commit(batch)
    # Fold the WAL into the main file so the file alone holds the data.
    run_sql(path, "PRAGMA wal_checkpoint(TRUNCATE)", "PRAGMA journal_mode=DELETE")


def run_sql(path, *statements):
    raw = sqlite3.connect(path)
    for statement in statements:
        raw.execute(statement)
    raw.commit()
    raw.close()


async def expect_refused(path, pattern):
    before = path.read_bytes()
    with pytest.raises(StoreError, match=pattern):
        await Store.open(path)
    assert path.read_bytes() == before, "a refused file must be left untouched"


async def test_missing_and_empty_files_become_new_stores(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    for path in (tmp_path / "new.db", empty):
        async with await Store.open(path) as store:
            assert await store.load("ns") == {}


async def test_random_bytes(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(bytes(range(256)) * 16)
    await expect_refused(path, "not a zse store: not an SQLite database")


async def test_text_file(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 20)
    await expect_refused(path, "not an SQLite database")


async def test_foreign_sqlite_database(tmp_path):
    path = tmp_path / "zigbee.db"
    run_sql(
        path,
        "CREATE TABLE devices (ieee TEXT PRIMARY KEY, nwk INTEGER)",
        "INSERT INTO devices VALUES ('00:11:22:33:44:55:66:77', 1234)",
        "PRAGMA user_version = 13",
    )
    await expect_refused(path, r"another application \(no application id, user_version 13")


async def test_other_application_id(tmp_path):
    path = tmp_path / "other.db"
    run_sql(path, "PRAGMA application_id = 0x0F055112", "CREATE TABLE t (x)")
    await expect_refused(path, "application id 0x0F055112")


async def test_newer_schema(tmp_path):
    path = tmp_path / "s.db"
    await make_store(path)
    run_sql(path, "PRAGMA user_version = 99")
    await expect_refused(path, "schema version 99 is newer")


async def test_missing_table(tmp_path):
    path = tmp_path / "s.db"
    await make_store(path)
    run_sql(path, "DROP TABLE journal")
    await expect_refused(
        path, r"damaged zse store: schema version 2, tables \['meta', 'quarantine', 'records'\]"
    )


async def test_overwritten_pages(tmp_path):
    path = tmp_path / "s.db"
    await make_store(path)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    assert len(data) > 6 * page
    for offset in range(2 * page, 5 * page, 7):
        data[offset] ^= 0xA5
    path.write_bytes(bytes(data))
    await expect_refused(path, "damaged zse store|malformed")


async def test_truncated_file(tmp_path):
    path = tmp_path / "s.db"
    await make_store(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    await expect_refused(path, "damaged zse store|malformed")


async def test_header_only_damage(tmp_path):
    """The zse application id with a mangled schema page."""
    path = tmp_path / "s.db"
    await make_store(path)
    data = bytearray(path.read_bytes())
    assert int.from_bytes(data[68:72], "big") == APPLICATION_ID
    data[100:400] = b"\xff" * 300  # the schema table's b-tree page header and cells
    path.write_bytes(bytes(data))
    await expect_refused(path, "malformed|damaged")


async def test_tampered_rows_are_quarantined_by_name_and_the_rest_stay(tmp_path, caplog):
    """#12.17: a row edited behind zse's back fails its checksum at open: it is moved, as
    stored, to the quarantine table and reported (log and quarantined()); the rest load."""
    path = tmp_path / "s.db"
    await make_store(path)
    run_sql(
        path,
        "UPDATE records SET value = '{broken' WHERE key = 'k007'",
        "UPDATE journal SET value = '[' WHERE seq = 3",
    )
    async with await Store.open(path) as store:
        records = await store.load("ns")
        assert len(records) == 199
        assert "k007" not in records
        assert (await store.get("ns", "k006"))["i"] == 6
        assert [e.seq for e in await store.unreported("ns")][:3] == [1, 2, 4]
        found = await store.quarantined()
        assert [(q.origin, q.namespace, q.key, q.value) for q in found] == [
            ("record", "ns", "k007", "{broken"),
            ("journal", "ns", "3", "["),
        ]
        assert all(
            q.reason == "checksum mismatch: the stored record was altered" for q in found[:1]
        )
    assert "record ns/k007 quarantined: checksum mismatch" in caplog.text
    assert "journal entry 3 of ns quarantined: checksum mismatch" in caplog.text


async def test_unwritable_location(tmp_path):
    with pytest.raises(StoreError, match="cannot"):
        await Store.open(tmp_path / "no" / "such" / "dir" / "s.db")


def flip_into_invalid_utf8(path, needle: bytes, at: int) -> None:
    """Damage one byte of ``needle`` in the file into 0xFF (never valid in UTF-8)."""
    data = bytearray(path.read_bytes())
    offset = data.find(needle)
    assert offset >= 0
    data[offset + at] = 0xFF
    path.write_bytes(bytes(data))


SECRET = "83FED3407A939723A5C639B26916D505C3B5"


@pytest.mark.parametrize("damaged", ["value", "key", "namespace", "journal kind"])
async def test_a_byte_damaged_into_invalid_utf8_is_quarantined_not_a_locked_store(
    tmp_path, damaged, caplog
):
    """One byte of a row turned into invalid UTF-8 (integrity_check passes: the pages are
    sound) made every open fail, quoting the row (an install code) in the error."""
    path = tmp_path / "s.db"
    async with await Store.open(path) as store:
        await store.commit(
            Batch()
            .put("registry", "dev-damaged", {"install_code": SECRET})
            .put("registry", "dev-kept", {"ok": 1})
            .append("events", "kind-damaged", {"n": 1})
            .append("events", "kept", {"n": 2})
        )
    run_sql(path, "PRAGMA wal_checkpoint(TRUNCATE)", "PRAGMA journal_mode=DELETE")
    needle, at = {
        "value": (SECRET.encode(), 5),
        "key": (b"dev-damaged", 6),
        # the last row's cell (namespace then key): made greater, it stays in b-tree order
        "namespace": (b"registrydev-kept", 3),
        "journal kind": (b"kind-damaged", 2),
    }[damaged]
    flip_into_invalid_utf8(path, needle, at)
    async with await Store.open(path) as store:
        found = await store.quarantined()
        assert len(found) == 1
        # the warning names the damaged row in text a UTF-8 log file takes (a lone surrogate
        # made logging's file handlers fail on the line)
        (warning,) = [r for r in caplog.records if "quarantined" in r.getMessage()]
        assert warning.getMessage().encode("utf-8")
        assert found[0].reason.startswith("checksum mismatch")
        assert SECRET not in repr(found)
        kept = {"dev-damaged": {"install_code": SECRET}, "dev-kept": {"ok": 1}}
        lost = {"value": "dev-damaged", "key": "dev-damaged", "namespace": "dev-kept"}
        kept.pop(lost.get(damaged, ""), None)
        assert await store.load("registry") == kept
        kinds = [entry.kind for entry in await store.journal("events")]
        assert kinds == (["kept"] if damaged == "journal kind" else ["kind-damaged", "kept"])
    async with await Store.open(path) as store:  # and the next open is clean
        assert len(await store.quarantined()) == 1


async def test_integrity_problems_are_said_in_one_bounded_line(tmp_path):
    path = tmp_path / "s.db"
    await make_store(path)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[3 * page : 4 * page] = bytes(page)  # a page of zeros
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as refused:
        await Store.open(path)
    assert "\n" not in str(refused.value)
    assert len(str(refused.value)) < 300 + 200 + len(str(path))


async def test_a_store_cut_short_is_damaged_not_foreign(tmp_path):
    """A store holding only its first pages was called "not an SQLite database"."""
    path = tmp_path / "s.db"
    await make_store(path)
    data = path.read_bytes()
    page = int.from_bytes(data[16:18], "big")
    path.write_bytes(data[:page])
    await expect_refused(path, "damaged")
    with pytest.raises(StoreError) as refused:
        await Store.open(path)
    assert "not an SQLite database" not in str(refused.value)


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.put("ns", "k\ud800", 1),
        lambda b: b.put("ns\udcff", "k", 1),
        lambda b: b.append("ns", "kind\ud800", 1),
        lambda b: b.delete("ns", 7),
        lambda b: b.mark_reported(2**64),
        lambda b: b.mark_reported(0),
        lambda b: b.mark_reported(True),
    ],
)
def test_what_a_store_cannot_hold_is_a_store_error_when_batched(change):
    """A name with a lone surrogate raised UnicodeEncodeError out of commit, a sequence
    number past 64 bits OverflowError."""
    with pytest.raises(StoreError):
        change(Batch())


@pytest.mark.parametrize(
    ("anchor", "at"),
    [
        (b"tablejournaljournal", len(b"tablej")),  # sqlite_master.name of table journal
        (b"CREATE TABLE records", len(b"CREATE TABLE rec")),  # its SQL text
    ],
)
async def test_a_schema_byte_damaged_into_invalid_utf8_is_a_store_error(tmp_path, anchor, at):
    """SQLite's "malformed database schema" quotes the damaged bytes, which sqlite3 cannot
    decode: UnicodeDecodeError came out of Store.open instead of a StoreError."""
    path = tmp_path / "s.db"
    await make_store(path)
    data = bytearray(path.read_bytes())
    data[data.index(anchor) + at] = 0x94  # a byte that is not UTF-8
    path.write_bytes(bytes(data))
    await expect_refused(path, "damaged")
    with pytest.raises(StoreError) as refused:
        await Store.open(path)
    said = str(refused.value)
    assert str(path) in said
    assert "\n" not in said
    assert len(said) < 200 + len(str(path))
