"""CLI stick tests: the fake serial link of tests/interpan, on the virtual-time loop."""

from tests.interpan.conftest import serial_link
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories", "serial_link"]
