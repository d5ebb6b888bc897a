"""A start-up's clean-up never replaces the exception in flight (audit asyncio robustness #1).

``HanRegistry.attach`` and the headend's start-ups (zse/headend/run.py) closed what they had
opened with ``await close(); raise``: a close that failed raised its own error instead, and the
CancelledError of a Ctrl-C (or the real start-up error) was lost. They now clean up with
:func:`~zse.store.close_keeping`, tested here with a real close that fails: an
SQLite connection made on another thread, which refuses to be closed from the loop's.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from zse.errors import StoreError
from zse.store import close_keeping
from zse.store_engine import hold_virtual_clock

Close = Callable[[], Coroutine[Any, Any, None]]


@pytest.fixture
async def failing_close(tmp_path: Path) -> AsyncIterator[Close]:
    """A close that raises sqlite3.ProgrammingError (the connection is another thread's)."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1) as thread:
        with hold_virtual_clock():
            connection = await loop.run_in_executor(thread, sqlite3.connect, tmp_path / "x.db")

        async def close() -> None:
            connection.close()

        with pytest.raises(sqlite3.ProgrammingError):
            await close()  # the failure is real
        try:
            yield close
        finally:
            with hold_virtual_clock():
                await loop.run_in_executor(thread, connection.close)


async def test_a_cancelled_start_up_stays_cancelled_when_its_close_fails(
    failing_close: Close, caplog: pytest.LogCaptureFixture
) -> None:
    """Was: the start-up cancelled (Ctrl-C) raised the close's ProgrammingError instead."""
    started = asyncio.Event()

    async def start_up() -> None:
        try:
            started.set()
            await asyncio.Event().wait()  # the start-up's wait, where the cancel lands
        except BaseException:
            await close_keeping(failing_close, "/srv/han.sqlite")
            raise

    task = asyncio.create_task(start_up())
    await started.wait()
    task.cancel()
    with (
        caplog.at_level(logging.WARNING, "zse.provisioning.registry"),
        pytest.raises(asyncio.CancelledError),
    ):
        await task
    [record] = caplog.records
    assert record.getMessage().startswith("/srv/han.sqlite: close after a failed start failed")
    assert "thread" in record.getMessage()  # the close's own error, said


async def test_a_failed_start_up_raises_its_own_error_when_its_close_fails(
    failing_close: Close, caplog: pytest.LogCaptureFixture
) -> None:
    """Was: the start-up's StoreError was replaced by the close's ProgrammingError."""

    async def start_up() -> None:
        try:
            raise StoreError("the real start-up error")
        except BaseException:
            await close_keeping(failing_close, "/srv/han.sqlite")
            raise

    with (
        caplog.at_level(logging.WARNING, "zse.provisioning.registry"),
        pytest.raises(StoreError, match="the real start-up error"),
    ):
        await start_up()
    assert len(caplog.records) == 1
