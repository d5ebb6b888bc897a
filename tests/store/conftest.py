"""Store tests run on the simulator's virtual-time loop (the store must hold its clock), twice:
SQLite on the loop's own thread (``inline``, the loop's default) and on aiosqlite's
(``threads``, as on any other loop); and on both engines where they take ``place``
(tests/postgres_server.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.postgres_server import pg_place, place, postgres
from tests.virtual_time import both_loops

__all__ = ["pg_place", "place", "postgres", "pytest_asyncio_loop_factories"]


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """pytest-asyncio hook: both ways of running SQLite on the virtual-time loop."""
    return both_loops()
