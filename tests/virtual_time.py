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


def both_loops() -> dict[str, Any]:
    """The virtual-time loop with stores on its own thread (``inline``, its default) and on
    aiosqlite's (``threads``)."""
    from zse.sim import VirtualClockLoop  # noqa: PLC0415

    return {
        "inline": VirtualClockLoop,
        "threads": functools.partial(VirtualClockLoop, inline_io=False),
    }


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """pytest-asyncio hook: the loop factory for the tests of this directory."""
    loops = both_loops()
    if item.get_closest_marker("store_thread"):
        return {"threads": loops["threads"]}
    return {"virtual": loops["inline"]}
