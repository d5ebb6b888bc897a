"""``zse`` run as a subprocess (``python -m zse``) from the repository's root, its output as
text; a real-seconds bound on the run, never a pause; optionally with a file size limit."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
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


def invoke_zse(*args: str) -> subprocess.CompletedProcess[str]:
    """``zse ARGS...`` in this process (click's runner), its status and its two streams as
    :func:`run_zse` gives them, without a new interpreter's start (about 1 s of CPU each); an
    exception the command lets out is raised here. For what a command says and its status;
    where the point is the process (signals, a fresh interpreter, what a shell sees) a test
    runs it with :func:`run_zse`."""
    from click.testing import CliRunner  # noqa: PLC0415 - most users run it as a process

    from zse.cli import main  # noqa: PLC0415

    result = CliRunner().invoke(main, list(args), prog_name="zse", catch_exceptions=False)
    return subprocess.CompletedProcess(
        ["zse", *args], result.exit_code, result.stdout, result.stderr
    )


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, theirs, ...), from Linux's ``/proc``: a child
    is listed under the thread that started it, so every thread's list is read."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def still_running(pids: list[int], seconds: float) -> list[int]:
    """Those of ``pids`` still running after ``seconds`` real seconds (a bound, not a pause:
    it waits on each process's pidfd, Linux 5.3+, and returns once all have ended)."""
    waits: dict[int, int] = {}
    for pid in pids:
        try:
            waits[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + seconds
    try:
        while waits and (left := deadline - time.monotonic()) > 0:
            ended, _, _ = select.select(list(waits), [], [], left)
            for fd in ended:
                os.close(fd)
                del waits[fd]
        return sorted(waits.values())
    finally:
        for fd in waits:
            os.close(fd)
