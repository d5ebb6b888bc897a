"""``benchmarks/meter_reports.py`` still runs: tiny counts, no goal, in a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "meter_reports.py"


def test_the_meter_reports_benchmark_runs_and_its_runs_agree() -> None:
    """Every frame decodes (zigpy) to the meter's values and the indexed and scanning engines
    send the same frames, else the script exits 1."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--displays", "12", "--minutes", "2", "--no-goal"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sent = re.search(r"(\d+) reports \((\d+) frames checked", done.stdout)
    assert sent is not None, done.stdout
    assert int(sent[1]) == int(sent[2]) > 12
    assert re.search(r"library time per report: [\d.]+ ms", done.stdout)
    assert re.search(r"zigpy decode of the same frame: [\d.]+ ms; ratio", done.stdout)
    assert re.search(r"peak memory: [\d.]+ MB", done.stdout)
