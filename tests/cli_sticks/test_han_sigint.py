"""Ctrl-C (SIGINT) during ``zse han join`` ended it with status 0 and nothing said, as if the
stick had joined: an interrupted join now exits 130 (128 + SIGINT, as ``zse capture`` does)
with one line. ``zse han watch`` keeps status 0: Ctrl-C is how a watch ends
(tests/cli_sim/test_cli_walk2.py). The signal comes while the command opens a stick that
never answers (:func:`tests.cli_sticks.sticks_helpers.han_signalled`)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from tests.cli_sticks.sticks_helpers import AS_TYPED, han_signalled
from zse.cli._signals import run_until_ctrl_c


def test_ctrl_c_while_joining_exits_130_with_one_line(tmp_path: Path) -> None:
    status, stdout, stderr = han_signalled(
        "join", signal.SIGINT, tmp_path, "--state", str(tmp_path / "han.db")
    )
    assert (status, stdout) == (130, ""), stderr
    assert stderr.splitlines() == ["error: interrupted: the join was not finished"]


def test_ctrl_c_is_taken_between_the_loops_callbacks_never_inside_one() -> None:
    """The cause of a second line after that one, now and then: asyncio.run's own SIGINT
    handler cancelled the join in the middle of asyncio's connect callback, which then set a
    result on its cancelled future (InvalidStateError, logged with a traceback). Here the
    signal comes in the middle of the command's own step: the task is cancelled only after
    it, at its next wait."""
    cancelling: list[int] = []

    async def command() -> int:
        task = asyncio.current_task()
        assert task is not None
        signal.raise_signal(signal.SIGINT)
        cancelling.append(task.cancelling())  # still in this step: not cancelled yet
        await asyncio.get_running_loop().create_future()  # cancelled here
        return 0

    with pytest.raises(KeyboardInterrupt):
        run_until_ctrl_c(command())
    assert cancelling == [0]


def test_a_command_run_until_ctrl_c_ends_as_under_asyncio_run() -> None:
    """Without SIGINT: its result, its error, and a cancellation of its own (not Ctrl-C)
    raised as such."""

    async def answer() -> int:
        return 7

    async def failing() -> int:
        raise ValueError("no stick")

    async def cancelled() -> int:
        raise asyncio.CancelledError

    assert run_until_ctrl_c(answer()) == 7
    with pytest.raises(ValueError, match="no stick"):
        run_until_ctrl_c(failing())
    with pytest.raises(asyncio.CancelledError):
        run_until_ctrl_c(cancelled())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # left as found


def test_ctrl_c_while_a_command_reads_its_config_is_one_line_and_130(tmp_path: Path) -> None:
    """A Ctrl-C the command does not handle itself (here ``zse esi`` reading ``--config``
    from a FIFO nobody writes yet) was click's blank line, ``Aborted!`` and status 1; it is
    one line and 130, as for the commands that handle it."""
    fifo = tmp_path / "esi.toml"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [*AS_TYPED, "esi", "--config", str(fifo)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writers: list[int] = []  # held open: the command's read waits for more
    opened = threading.Thread(
        target=lambda: writers.append(os.open(fifo, os.O_WRONLY)), daemon=True
    )
    try:
        opened.start()  # the open returns once the command has opened the FIFO to read it
        opened.join(60)  # real seconds: a command that never opens it is a failure
        assert writers, "zse esi never opened its --config"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        for writer in writers:
            os.close(writer)
        if process.poll() is None:
            process.kill()
            process.communicate()
        if opened.is_alive():
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # lets its open return
    assert (process.returncode, stdout, stderr) == (130, "", "error: interrupted\n")
