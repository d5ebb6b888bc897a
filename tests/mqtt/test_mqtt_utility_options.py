"""``zse sim utility``'s option bounds: ``--workers 0`` is refused like ``--meters 0``, and
``--help`` gives the bounds of ``--devices-per-meter``."""

from __future__ import annotations

import subprocess
import sys

from tests.mqtt.test_mqtt_cli import ROOT, TIMEOUT
from tests.zse_cli import invoke_zse
from zse.sim.utility import MAX_DEVICES_PER_METER

UTILITY = [sys.executable, "-m", "zse", "sim", "utility"]


def test_workers_0_is_a_usage_error() -> None:
    """``--workers 0`` was taken silently as "the cores" (and the broker then tried)."""
    args = ["--meters", "2", "--workers", "0", "--broker", "mqtt://127.0.0.1:1"]
    done = invoke_zse("sim", "utility", *args)  # what it says: in this process
    assert done.returncode == 2, done.stderr
    assert done.stderr == "error: --workers must be 1 or more, not 0\n"


def test_help_gives_the_bounds_of_devices_per_meter() -> None:
    """``--devices-per-meter`` is refused outside 1-32, which ``--help`` did not say."""
    done = subprocess.run(
        [*UTILITY, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    line = next(x for x in done.stdout.splitlines() if "--devices-per-meter" in x)
    assert f"1-{MAX_DEVICES_PER_METER}." in line
