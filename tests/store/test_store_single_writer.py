"""One writer per store: a second open, in this process or another, is refused clearly.

The tests taking ``place`` run on both engines. The others are SQLite only: the lock through
another name of the same file (symlink, hard link) and aiosqlite's worker thread after a
cancelled open or close have no PostgreSQL counterpart (a store there has one name, its URL,
and asyncpg has no thread)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading

import pytest

from tests.postgres_server import wait_released
from zse.errors import StoreError
from zse.store import Batch, Store


async def test_a_second_open_is_refused_until_the_first_closes(place):
    path = place("state.db")
    first = await Store.open(path)
    try:
        with pytest.raises(StoreError, match="in use by another zse process"):
            await Store.open(path)
        await first.commit(Batch().put("ns", "k", 1))  # the first writer is unaffected
    finally:
        await first.close()
    again = await Store.open(path)
    try:
        assert await again.get("ns", "k") == 1
    finally:
        await again.close()


async def test_another_process_is_refused(place):
    path = place("state.db")
    store = await Store.open(path)
    try:
        script = textwrap.dedent(
            f"""
            import asyncio, sys
            from zse.errors import StoreError
            from zse.store import Store
            async def main():
                try:
                    await Store.open({str(path)!r})
                except StoreError as exc:
                    print(exc)
                    sys.exit(3)
            asyncio.run(main())
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=False
        )
        assert done.returncode == 3, done.stderr
        assert "in use by another zse process" in done.stdout
    finally:
        await store.close()


@pytest.mark.parametrize("link", ["symlink", "hard link"])
async def test_a_second_open_through_another_name_is_refused(tmp_path, link):
    """#12.18: the lock is on the file, not on its name."""
    path = tmp_path / "state.db"
    other = tmp_path / "elsewhere" / "alias.db"
    other.parent.mkdir()
    first = await Store.open(path)
    try:
        if link == "symlink":
            other.symlink_to(path)
        else:
            os.link(path, other)
        with pytest.raises(StoreError, match="in use by another zse process") as refused:
            await Store.open(other)
        assert str(refused.value).startswith(f"{other} is in use by another zse process")
        await first.commit(Batch().put("ns", "k", 1))
    finally:
        await first.close()
    async with await Store.open(other) as again:  # released when the first closed
        assert await again.get("ns", "k") == 1
        with pytest.raises(StoreError, match="in use by another zse process"):
            await Store.open(path)


async def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(place):
    """A holder killed with SIGKILL leaves no stale lock: the kernel drops it (PostgreSQL: the
    session-level advisory lock ends with the server process serving the dead client)."""
    path = place("state.db")
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from zse.store import Batch, Store
        async def main():
            store = await Store.open({str(path)!r})
            await store.commit(Batch().put("ns", "k", "held"))
            print("holding", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        asyncio.run(main())
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "holding\n"
        with pytest.raises(StoreError, match="in use by another zse process"):
            await Store.open(path)
    finally:
        holder.kill()  # SIGKILL
        holder.wait(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    await wait_released(path)
    async with await Store.open(path) as store:
        assert await store.get("ns", "k") == "held"


def _workers() -> list[threading.Thread]:
    """aiosqlite's connection threads (not daemons: one left running blocks the exit)."""
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


async def _settled(path) -> Store:
    """Reopen ``path`` once the abandoned connections' threads are gone (bounded), the loop
    running meanwhile (a join on the loop's thread would stop the close it waits for)."""
    loop = asyncio.get_running_loop()
    for thread in _workers():
        await loop.run_in_executor(None, thread.join, 10)
    assert _workers() == [], "an aiosqlite worker thread outlived its store"
    for _ in range(10):  # the lock is released by a callback the finished thread scheduled
        await asyncio.sleep(0)
        with contextlib.suppress(StoreError):
            return await Store.open(path)
    return await Store.open(path)


async def test_a_cancelled_close_still_closes_after_the_work_in_progress(tmp_path):
    """A shutdown cancels close() while a commit holds the store: the caller is cancelled, the
    commit lands, then the store closes (its worker thread would otherwise block the exit)."""
    path = tmp_path / "state.db"
    store = await Store.open(path)
    commit = asyncio.create_task(store.commit(Batch().put("ns", "k", 1)))
    close = asyncio.create_task(store.close())
    await asyncio.sleep(0)
    close.cancel()
    await asyncio.wait({close, commit})
    assert close.cancelled()
    assert commit.result() == []
    await store.close()  # a second close waits for the first to end
    again = await _settled(path)
    try:
        assert await again.get("ns", "k") == 1
    finally:
        await again.close()


async def test_a_close_cut_short_by_the_loop_shutting_down_stops_the_thread(tmp_path):
    """asyncio.run cancels every task at its end, the close's own task too: the worker thread is
    told to stop after the queued work, and whatever the commit meets is a StoreError."""
    path = tmp_path / "state.db"
    store = await Store.open(path)
    commit = asyncio.create_task(store.commit(Batch().put("ns", "k", 1)))
    close = asyncio.create_task(store.close())
    await asyncio.sleep(0)
    assert store._closing is not None
    close.cancel()
    store._closing.cancel()
    await asyncio.wait({close, commit, store._closing})
    assert (
        commit.cancelled()
        or commit.exception() is None
        or isinstance(commit.exception(), StoreError)
    )
    again = await _settled(path)
    await again.close()


@pytest.mark.parametrize("steps", range(0, 24, 3))
async def test_a_cancelled_open_leaves_no_thread_and_no_lock(tmp_path, steps):
    path = tmp_path / "state.db"
    opening = asyncio.create_task(Store.open(path))
    for _ in range(steps):
        await asyncio.sleep(0)
    opening.cancel()
    await asyncio.wait({opening})
    if not opening.cancelled():  # it finished first: an open store, closed normally
        await opening.result().close()
    again = await _settled(path)
    await again.close()


async def test_a_new_store_and_its_side_files_are_its_owner_s_alone(tmp_path):
    """A store holds install codes and journals: created 0600 (was 0644, the umask's), and
    SQLite gives the -wal and -shm files the database file's mode. An existing file keeps
    the mode its owner gave it."""
    path = tmp_path / "state.db"
    async with await Store.open(path) as store:
        await store.commit(Batch().put("a", "k", 1))
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    path.chmod(0o640)
    async with await Store.open(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
