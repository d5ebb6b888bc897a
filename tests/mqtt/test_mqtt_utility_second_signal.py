"""A ``zse sim utility`` worker whose stop is held ends at once on a second SIGTERM or SIGINT,
with the exit status a shell gives a process that signal ended and one line on standard error;
it ignored the second signal and ended only once its stop did. A real worker process, spawned
as the utility spawns it (its spec on standard input), on a real Mosquitto that the test
freezes (SIGSTOP): the worker's bridge then waits for the acknowledgement of its ``offline``
(up to aiomqtt's 10 s) and the stop is held. Bounded waits, no pauses."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import settings
from tests.mqtt.test_mqtt_cli import TIMEOUT
from tests.mqtt.test_mqtt_utility import UP_WITHIN
from tests.mqtt.test_mqtt_utility_workers import worker_process
from zse.sim.utility import UtilityPlan

#: Real seconds a worker has to end on the second signal: far less than its held stop lasts.
AT_ONCE = 5
#: The worker's log: its own INFO lines (the first signal's says the stop began), to stderr.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {"zse.sim.utility": {"level": "INFO"}},
}


def _worker(broker: Broker, directory: Path) -> subprocess.Popen[str]:
    """A worker of one meter with one device, at a hundredth of real time, given its spec
    (its standard input left open, as the utility leaves it)."""
    plan = UtilityPlan(meters=1, devices_per_meter=1, workers=1, speed=0.01)
    spec = {
        "plan": dataclasses.asdict(plan),
        "settings": dataclasses.asdict(settings(broker, client_id="zse-second-signal")),
        "indices": [0],
        "directory": str(directory),
        "logging": LOGGING,
    }
    worker = worker_process(subprocess.PIPE)
    assert worker.stdin is not None
    worker.stdin.write(json.dumps(spec) + "\n")
    worker.stdin.flush()
    return worker


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_second_signal_while_the_stop_is_held_ends_the_worker_at_once(
    broker: Broker, tmp_path: Path, second: signal.Signals
) -> None:
    assert broker.process is not None
    worker: subprocess.Popen[str] | None = None
    watchdog: threading.Timer | None = None
    try:
        worker = _worker(broker, tmp_path)
        assert worker.stdout is not None
        assert worker.stderr is not None
        watchdog = threading.Timer(UP_WITHIN, worker.kill)  # a bound: the waits end on lines
        watchdog.start()
        assert (line := worker.stdout.readline()).startswith("ready "), line
        broker.process.send_signal(signal.SIGSTOP)
        worker.send_signal(signal.SIGTERM)
        while "SIGTERM: stopping" not in (line := worker.stderr.readline()):
            assert line, "the worker ended before it said it was stopping"
        worker.send_signal(second)
        _, err = worker.communicate(timeout=AT_ONCE)
    finally:
        broker.process.send_signal(signal.SIGCONT)
        if watchdog is not None:
            watchdog.cancel()
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.communicate(timeout=TIMEOUT)
    status = 128 + second
    assert (worker.returncode, err) == (
        status,
        f"worker {worker.pid}: a second {second.name} while stopping: ended at once, "
        f"exit status {status}\n",
    )
