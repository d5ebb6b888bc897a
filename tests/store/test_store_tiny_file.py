"""A store file of 1 to 99 bytes is refused, never replaced (found by a review): SQLite takes
any file shorter than its 100-byte header for an empty database, so ``Store.open`` made a new
store over it, and what the file held was gone. An empty file is still a new store (the
single-writer lock creates one so; test_store_damage.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zse.errors import StoreError
from zse.store import Store

#: the start of a real store file: SQLite's magic string and the rest of its header
HEADER_START = b"SQLite format 3\x00\x10\x00\x02\x02\x00\x40\x20\x20"


def refusal(path: Path, size: int) -> str:
    return (
        f"{path}: truncated or not a zse store: {size} bytes, shorter than an SQLite header "
        "(100 bytes); refused, not replaced: restore a backup, or move the file away to start "
        "afresh"
    )


@pytest.mark.parametrize(
    "content",
    [
        b"x",
        b"\n",
        b"S",  # one byte of SQLite's magic string
        b"todo: keys\n",
        HEADER_START[:16],  # the magic string alone
        HEADER_START + bytes(99 - len(HEADER_START)),  # a header cut one byte short
    ],
    ids=["x", "newline", "S", "text", "magic", "99-bytes"],
)
async def test_a_file_shorter_than_an_sqlite_header_is_refused_and_kept(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "zse.db"
    path.write_bytes(content)
    with pytest.raises(StoreError) as info:
        await Store.open(path)
    assert str(info.value) == refusal(path, len(content))  # the file named, not its content
    assert path.read_bytes() == content, "a refused file must be left untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zse.db"]  # no -wal, no -shm
    # refused again, the lock released: nothing of the first open stays behind
    with pytest.raises(StoreError, match="truncated or not a zse store"):
        await Store.open(path)


async def test_the_sizes_around_the_header(tmp_path: Path) -> None:
    """0 bytes: a new store (what ``touch`` or an interrupted first open leaves); 100 bytes
    of garbage: read by SQLite and refused as it always was."""
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    async with await Store.open(empty) as store:
        assert await store.load("ns") == {}
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"g" * 100)
    with pytest.raises(StoreError, match="not a zse store: not an SQLite database"):
        await Store.open(garbage)
    assert garbage.read_bytes() == b"g" * 100
