"""``zse sim utility``'s workers log at the level the command was given (``-v``, ``-vv``,
``--log-level``), to the standard error they share with it, each line naming its worker, keys
hidden as on the rest of the command line. They logged errors only, whatever was asked."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.test_mqtt_cli import ROOT, TIMEOUT
from tests.mqtt.test_mqtt_utility import UP_WITHIN, _children

#: zigpy's print of a key (16 colon-separated octets), as zse.cli._logging hides it.
ZIGPY_KEY = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){15}(?![0-9A-Fa-f:])")


@pytest.mark.parametrize(
    ("before", "after", "debug"),
    [
        ([], ["-vv"], True),
        (["--log-level", "INFO"], [], False),
    ],
    ids=["-vv after", "--log-level before"],
)
def test_the_workers_log_at_the_commands_level_each_line_naming_its_worker(
    broker: Broker, tmp_path: Path, before: list[str], after: list[str], debug: bool
) -> None:
    """One meter with one device on one worker: its bridge's INFO line ("MQTT bridge online",
    which only a worker says) and, at ``-vv``, its DEBUG lines reach the command's standard
    error, every line of the worker's starting ``worker PID:``; no key is printed."""
    argv = [sys.executable, "-m", "zse", *before, "sim", "utility", *after]
    argv += ["--meters", "1", "--devices-per-meter", "1", "--workers", "1", "--broker", broker.url]
    log = tmp_path / "stderr"  # a file, not a pipe nobody reads until the end: -vv fills one
    with log.open("w") as stderr:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
    watchdog = threading.Timer(UP_WITHIN, process.kill)  # a bound: the wait ends on "ready"
    watchdog.start()
    try:
        assert process.stdout is not None
        while not (line := process.stdout.readline()).startswith("ready:"):
            assert line, "the utility ended before it was ready"
        (worker,) = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIMEOUT)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.communicate()
    err = log.read_text()
    assert process.returncode == 0, err[-2000:]
    prefix = f"worker {worker}: "
    said = [line for line in err.splitlines() if line.startswith(prefix)]
    online = [line for line in err.splitlines() if "MQTT bridge online" in line]
    assert online, err[-2000:]
    assert all(line.startswith(prefix) and " INFO zse.mqtt.bridge: " in line for line in online)
    assert any(" DEBUG " in line for line in said) == debug
    assert not ZIGPY_KEY.search(err)
