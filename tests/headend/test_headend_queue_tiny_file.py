"""The headend's work queue on a file of 1 to 99 bytes is refused, never replaced (as the store
is, tests/store/test_store_tiny_file.py): SQLite takes any file shorter than its header for an
empty database, and the queue's first write replaced what the file held (a 1-byte file grew to
4,096 bytes). An empty file is still a new queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.test_store_tiny_file import refusal
from zse.errors import StoreError
from zse.headend.queue import open_queue


@pytest.mark.parametrize("content", [b"x", b"\n", b"SQLite format 3\x00"], ids=repr)
async def test_a_queue_file_shorter_than_an_sqlite_header_is_refused_and_kept(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "queue.sqlite"
    path.write_bytes(content)
    with pytest.raises(StoreError) as caught:
        await open_queue(path)
    assert str(caught.value) == refusal(path, len(content))  # the store's words
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["queue.sqlite"]


async def test_an_empty_queue_file_is_a_new_queue(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite"
    path.touch()
    queue = await open_queue(path)
    try:
        assert await queue.rows(1) == []
    finally:
        await queue.close()
    assert path.stat().st_size >= 4096
