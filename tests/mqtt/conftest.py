"""The MQTT bridge's tests run on the simulator's virtual-time loop, against a real Mosquitto
(``broker``: started on a free loopback port in a temporary directory, stopped at the end)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt.broker import Broker
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories"]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    directory = tmp_path / "mosquitto"
    directory.mkdir()
    running = Broker(directory)
    running.start()
    try:
        yield running
    finally:
        running.stop()
