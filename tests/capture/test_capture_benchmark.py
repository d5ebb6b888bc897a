"""``benchmarks/capture_decode.py`` still runs: tiny counts, no goal, in a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.oracles import require

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "capture_decode.py"


@pytest.mark.oracle
def test_the_capture_benchmark_runs_and_agrees_with_tshark() -> None:
    """zse and tshark decrypt the same frames of the benchmark capture, else the script
    exits 1; every figure is printed."""
    require("tshark")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--frames", "150", "--no-goal", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "capture: 150 frames (" in out
    assert re.search(r"zse capture library \(decode \+ JSON\): [\d,]+ frames/s", out)
    assert re.search(r"zse capture --json: [\d,]+ frames/s .* frames per CPU second", out)
    assert re.search(r"tshark -T json: [\d,]+ frames/s", out)
    assert re.search(r"peak memory zse capture --json: N [\d.]+ MB, 4N [\d.]+ MB", out)
    decrypted = re.search(r"frames decrypted: zse (\d+), tshark (\d+)", out)
    assert decrypted is not None
    assert 0 < int(decrypted[1]) == int(decrypted[2])
