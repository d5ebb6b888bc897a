"""``zse`` run as a subprocess (``python -m zse``) from the repository's root, its output as
text; a real-seconds bound on the run, never a pause; optionally with a file size limit."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
#: Real seconds a run may take (a bound, not a pause).
TIMEOUT = 60
#: Runs ``zse`` with files limited to argv[1] bytes: a write past it fails with EFBIG ("File
#: too large"; SIGXFSZ ignored), as one past a full disk's end fails with ENOSPC.
LIMITED = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
os.execv(sys.executable, [sys.executable, "-m", "zse", *sys.argv[2:]])
"""


def run_zse(
    *args: str,
    stdout: int | IO[Any] | None = subprocess.PIPE,
    limit: int | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``zse ARGS...``, standard error captured; ``stdout``: where standard output goes;
    ``limit``: the largest file it may write, in bytes; ``env``: its environment (default
    this process's)."""
    prefix = ["-m", "zse"] if limit is None else ["-c", LIMITED, str(limit)]
    return subprocess.run(
        [sys.executable, *prefix, *args],
        cwd=ROOT,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
    )
