"""``zse`` run as a subprocess (``python -m zse``) from the repository's root, its output as
text; a real-seconds bound on the run, never a pause."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
#: Real seconds a run may take (a bound, not a pause).
TIMEOUT = 60


def run_zse(
    *args: str, stdout: int | IO[Any] | None = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    """``zse ARGS...``, standard error captured; ``stdout``: where standard output goes."""
    return subprocess.run(
        [sys.executable, "-m", "zse", *args],
        cwd=ROOT,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
