"""Service tests run on the simulator's virtual-time loop."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Run every async test here on the simulator's virtual-time event loop."""
    from zse.sim import VirtualClockLoop  # noqa: PLC0415

    return {"virtual": VirtualClockLoop}
