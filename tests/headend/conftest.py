"""The headend's tests: a real HTTPS server with mutual TLS on a free loopback port, over meters
on the simulator's virtual-time loop (a client request holds the virtual clock while it waits
on the real socket)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.headend.helpers import Service, start_service
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories"]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    running = await start_service(tmp_path)
    try:
        yield running
    finally:
        await running.close()
