"""One writer per store: a second open, in this process or another, is refused clearly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from zse.errors import StoreError
from zse.store import Batch, Store


async def test_a_second_open_is_refused_until_the_first_closes(tmp_path):
    path = tmp_path / "state.db"
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


async def test_another_process_is_refused(tmp_path):
    path = tmp_path / "state.db"
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


async def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(tmp_path):
    """A holder killed with SIGKILL leaves no stale lock: the kernel drops it."""
    path = tmp_path / "state.db"
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
    async with await Store.open(path) as store:
        assert await store.get("ns", "k") == "held"
