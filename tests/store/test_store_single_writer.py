"""One writer per store: a second open, in this process or another, is refused clearly."""

from __future__ import annotations

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
