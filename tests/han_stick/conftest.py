"""HAN-stick tests: bellows over the fake serial link to a fake NCP on the simulated air, all
on the virtual-time loop."""

from tests.interpan.conftest import serial_link
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories", "serial_link"]
