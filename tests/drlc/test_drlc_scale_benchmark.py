"""``benchmarks/drlc_scale.py`` still runs: two devices, no goal, in a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "drlc_scale.py"


def test_the_drlc_scale_benchmark_runs_and_every_device_reports() -> None:
    """The benchmark crashed at any size: its helper gave the first device the all-zero
    EUI-64, which the DRLC server refuses as an expected device. Every device must now
    report Received, Started, Completed, else the script exits 1."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--devices", "2", "--seed", "1", "--no-goal"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 devices with Received, Started, Completed" in done.stdout
    assert re.search(r"library time: [\d.]+ s wall -> [\d.]+ ms per device", done.stdout)
    assert re.search(r"peak memory: [\d.]+ MB", done.stdout)
