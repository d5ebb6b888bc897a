"""Store tests run on the simulator's virtual-time loop (the store must hold its clock), and
on both engines where they take ``place`` (tests/postgres_server.py)."""

from tests.postgres_server import pg_place, place, postgres
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pg_place", "place", "postgres", "pytest_asyncio_loop_factories"]
