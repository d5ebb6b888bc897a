"""The headend at utility scale: meters as MQTT gateways (a real Mosquitto), the work queue
in a real PostgreSQL (and SQLite), workers in this process on the simulator's virtual-time
loop or in subprocesses killed with SIGKILL."""

from __future__ import annotations

import pytest

from tests.mqtt.broker import running_broker
from tests.postgres_server import pg_place, place, postgres
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pg_place", "place", "postgres", "pytest_asyncio_loop_factories"]

broker = pytest.fixture(running_broker, name="broker")
