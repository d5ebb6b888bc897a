"""CBKE exchanges over the simulated air, on the virtual-time loop."""

from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories"]
