"""Time tests that talk over the simulated air run on the simulator's virtual-time loop; the
HAN-stick fixture (``serial_link``) is tests/han_stick's."""

from tests.han_stick.conftest import serial_link
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories", "serial_link"]
