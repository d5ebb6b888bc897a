"""Real ``zse installcode --csv`` runs: a devices file of many chunks, its complete output, and
``zse`` started in a session of its own (the fixtures the tests of interrupted, killed and
failing runs share; ``conftest.py`` offers them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.zse_cli import ROOT, TIMEOUT, run_zse
from zse.installcode import InstallCode

#: 8 chunks of 4096 rows (the last of 1328): more than the pipes and the workers' backlog hold.
ROWS = 30_000
#: Rows a chunk holds (zse.device_csv): the last chunk of :data:`ROWS` starts after 7 of them.
CHUNK_ROWS = 4096

#: Starts ``zse ARGS`` (standard output and error piped; more Popen options by name).
Start = Callable[..., "subprocess.Popen[bytes]"]


def device_rows(path: Path, rows: int) -> Path:
    """A devices CSV of ``rows`` valid rows at ``path``."""
    with path.open("w", encoding="utf-8") as out:
        out.write("eui64,install_code,label\n")
        for i in range(rows):
            out.write(f"001BC5{i:010X},{InstallCode.from_data(i.to_bytes(16, 'big'))},row {i}\n")
    return path


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return device_rows(tmp_path_factory.mktemp("devices") / "devices.csv", ROWS)


@pytest.fixture(scope="module")
def complete(devices: Path) -> bytes:
    """The output of a run to its end."""
    done = run_zse("installcode", "--csv", str(devices), "-j", "1")
    assert done.returncode == 0, done.stderr
    return done.stdout.encode()


def _interruptible() -> None:
    """In the child: SIGINT as a terminal's Ctrl-C (a background job starts with it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def start() -> Iterator[Start]:
    """``zse ARGS`` in a session of its own; what is left of the session (workers too) is
    killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def run(*args: str, **options: Any) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "zse", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_interruptible,  # noqa: PLW1509 - before exec, no threads in the child yet
            **options,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            if process.poll() is None:
                process.kill()
        process.wait(TIMEOUT)
