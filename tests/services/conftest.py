"""Service tests run on the simulator's virtual-time loop; those that take ``place`` run on
both store engines (tests/postgres_server.py)."""

from tests.postgres_server import place, postgres
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["place", "postgres", "pytest_asyncio_loop_factories"]
