"""Opt a test directory into the simulator's virtual-time loop.

A ``conftest.py`` that does ``from tests.virtual_time import pytest_asyncio_loop_factories``
runs every async test below it on :class:`zse.sim.VirtualClockLoop`: sleeps and timeouts take
no real time, and nothing in those tests may wait on real-time I/O.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """pytest-asyncio hook: the loop factory for the tests of this directory."""
    from zse.sim import VirtualClockLoop  # noqa: PLC0415

    return {"virtual": VirtualClockLoop}
