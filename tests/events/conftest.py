"""The Events tests that run an ESI and a HAN do so on the simulator's virtual-time loop."""

from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories"]
