"""Opt a test directory into the simulator's virtual-time loop.

A ``conftest.py`` that does ``from tests.virtual_time import pytest_asyncio_loop_factories``
runs every async test below it on :class:`zse.sim.VirtualClockLoop`: sleeps and timeouts take
no real time, and nothing in those tests may wait on real-time I/O. A test marked
``store_thread`` gets the loop with ``inline_io=False``: its stores use aiosqlite's thread.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """pytest-asyncio hook: the loop factory for the tests of this directory."""
    from zse.sim import VirtualClockLoop  # noqa: PLC0415

    if item.get_closest_marker("store_thread"):
        return {"threads": functools.partial(VirtualClockLoop, inline_io=False)}
    return {"virtual": VirtualClockLoop}
