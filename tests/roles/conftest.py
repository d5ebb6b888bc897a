"""Role tests run on the simulator's virtual-time loop."""

from collections.abc import AsyncIterator

import pytest

from tests.roles.han_builder import OPEN, close
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories"]


@pytest.fixture(autouse=True)
async def close_what_a_failed_test_left() -> AsyncIterator[None]:
    """A test that fails before its own ``close(han)`` would leave the registry's aiosqlite
    thread (not a daemon) running, and pytest would never exit: close it here."""
    yield
    while OPEN:
        await close(OPEN[-1])
