"""Helpers of the store tests."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from typing import TypeVar

import pytest

from zse.store import Batch, Store

_T = TypeVar("_T")

#: A test about what happens while a transaction is under way: on the loop whose store works
#: on aiosqlite's thread (on the default virtual loop SQLite runs inline: a transaction never
#: yields, so nothing can happen during it).
UNDER_WAY = pytest.mark.asyncio(loop_factories=["threads"])


def count_transactions(store: Store) -> list[int]:
    """Count the transactions ``store`` begins from now on: ``[n]``, updated in place."""
    counted = [0]
    begin = store._engine.begin

    async def counting() -> None:
        counted[0] += 1
        await begin()

    store._engine.begin = counting  # type: ignore[method-assign]
    return counted


def hold_next_transaction(store: Store) -> tuple[asyncio.Event, asyncio.Event]:
    """``store``'s next transaction, its batches taken and the lock held, waits for ``go``
    (a slow disk) before it runs; ``begun`` is set once it got there. Returns ``(begun, go)``.
    What a test does meanwhile happens during that transaction, however busy the machine."""
    begun, go = asyncio.Event(), asyncio.Event()
    commit = store._commit_batches

    async def held(batches: list[Batch]) -> list[list[int]]:
        store._commit_batches = commit  # type: ignore[method-assign] # the next one only
        begun.set()
        await go.wait()
        return await commit(batches)

    store._commit_batches = held  # type: ignore[method-assign]
    return begun, go


async def one_transaction_busy(store: Store) -> asyncio.Task[list[int]]:
    """A commit under way (holding the store's lock), so that the next ones wait together."""
    first = asyncio.ensure_future(store.commit(Batch().put("busy", "k", 0)))
    for _ in range(10_000):
        if store._lock.locked():  # started: its transaction holds the lock
            return first
        await asyncio.sleep(0)
    await first
    pytest.fail("the commit never held the store's lock across a turn of the loop")


def run_python(script: str, *args: str) -> str:
    """Run ``script`` in a new interpreter (zse importable), with ``args``; its standard
    output (it must exit 0)."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    ).stdout


def killed_itself(script: str, *args: str) -> str:
    """Run ``script`` (zse importable) with ``args``, which kills itself with SIGKILL (after
    what is to survive returned); its standard output. Fails if it ended otherwise."""
    out = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        check=False,
        timeout=60,
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    return out.stdout


def kill_at(script: str, *args: str, count: int) -> int:
    """Run ``script`` (zse importable) with ``args``, which prints a number per step it saw
    acknowledged; SIGKILL it once it printed ``count`` or more; the last number printed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.stdout is not None
    acknowledged = -1
    try:
        while acknowledged < count:
            line = proc.stdout.readline()
            assert line, "the writer died"
            acknowledged = int(line)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    return acknowledged


def watch_fsync(monkeypatch: pytest.MonkeyPatch, probe: Callable[[], _T]) -> list[tuple[bool, _T]]:
    """Watch ``os.fsync`` (not replace it): each call appends (whether it synced a directory,
    ``probe()`` just after) to the list returned."""
    synced: list[tuple[bool, _T]] = []
    real = os.fsync

    def watched(fd: int) -> None:
        real(fd)
        synced.append((stat.S_ISDIR(os.fstat(fd).st_mode), probe()))

    monkeypatch.setattr(os, "fsync", watched)
    return synced
