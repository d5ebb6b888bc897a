"""The test broker itself (issue #17.6): a real Mosquitto on a free loopback port, stopped and
restarted on the same port with its retained messages kept."""

from __future__ import annotations

import subprocess

from tests.mqtt.broker import Broker
from tests.oracles import require


def _sub(broker: Broker, topic: str) -> str:
    """One retained message of ``topic`` through mosquitto_sub (-C 1 -W: bounded)."""
    result = subprocess.run(
        [require("mosquitto_sub"), *broker.client_args(), "-t", topic, "-C", "1", "-W", "5"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return result.stdout.strip()


def test_the_broker_starts_and_stops(broker: Broker) -> None:
    assert broker.process is not None
    assert broker.process.poll() is None
    pub = require("mosquitto_pub")
    subprocess.run(
        [
            pub,
            "-p",
            str(broker.port),
            "-h",
            "127.0.0.1",
            "-t",
            "t/1",
            "-m",
            "kept",
            "-r",
            "-q",
            "1",
        ],
        timeout=10,
        check=True,
    )
    assert _sub(broker, "t/1") == "kept"
    broker.restart()  # SIGTERM saves the persistence file; the port stays the same
    assert _sub(broker, "t/1") == "kept"
    broker.stop()
    assert broker.process is None
