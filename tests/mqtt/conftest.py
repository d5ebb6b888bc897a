"""The MQTT bridge's tests run on the simulator's virtual-time loop, against a real Mosquitto
(``broker``: started on a free loopback port in a temporary directory, stopped at the end)."""

from __future__ import annotations

import pytest

from tests.mqtt.broker import running_broker
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories"]


broker = pytest.fixture(running_broker, name="broker")
