"""`zse demo` ends cleanly however it is stopped (issue 12 items 2 and 6), as subprocesses with
a timeout: a hang fails the test instead of the suite."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from zse.cli.demo import story
from zse.sim import run

TIMEOUT = 120  # seconds of real time; the demo itself takes about two


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An empty TMPDIR for the demo's temporary directory (``zse-demo-*``) to be looked for."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return tmp, {**os.environ, "TMPDIR": str(tmp)}


def test_a_reader_that_goes_away_ends_the_demo_quietly_and_cleans_up(tmpdir_env):
    """`zse demo | head -1`: head exits after one line; the demo's next line raises
    BrokenPipeError. It used to hang for good (aiosqlite's thread never closed) and leave
    /tmp/zse-demo-*/han.db behind."""
    tmp, env = tmpdir_env
    demo = subprocess.Popen(
        [sys.executable, "-m", "zse", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert demo.stdout is not None
    head = subprocess.Popen(["head", "-1"], stdin=demo.stdout, stdout=subprocess.PIPE)
    demo.stdout.close()  # head holds the only read end: when it exits, the pipe is broken
    try:
        first, _ = head.communicate(timeout=TIMEOUT)
        _, errors = demo.communicate(timeout=TIMEOUT)
    finally:  # a hang fails the test and leaves no process behind
        for process in (demo, head):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert first.decode().startswith("zse demo (seed 1): a Smart Energy HAN on the simulator")
    assert first.count(b"\n") == 1
    assert errors == b""  # no traceback, no "Exception ignored" at the interpreter's exit
    assert demo.returncode == 1  # the Python docs' advice on SIGPIPE: quiet, status 1
    assert list(tmp.iterdir()) == []


# Delivers a real SIGINT (what Ctrl-C sends) in the middle of the story: when the "Price"
# chapter is told, so that the point is the same on every run. SIGINT's disposition is set
# as a terminal's shell leaves it: a suite started in the background by a non-interactive
# shell (make test runs two side by side) inherits SIGINT ignored, and so would the demo.
_CTRL_C_AT_PRICE = """
import signal, click
signal.signal(signal.SIGINT, signal.default_int_handler)
echo = click.echo
def echo_then_ctrl_c(message=None, **options):
    echo(message, **options)
    if str(message).startswith("\\n== Price"):
        signal.raise_signal(signal.SIGINT)
click.echo = echo_then_ctrl_c
from zse.cli import main
main(["demo"])
"""


def test_ctrl_c_during_the_demo_stops_it_and_cleans_up(tmpdir_env):
    tmp, env = tmpdir_env
    done = subprocess.run(
        [sys.executable, "-c", _CTRL_C_AT_PRICE],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.stderr == "error: interrupted\n"  # as every command: one line, no traceback
    assert done.returncode == 130  # 128 + SIGINT (it was click's "Aborted!" and 1)
    assert "== Price" in done.stdout
    assert "== A message" not in done.stdout  # it stopped there
    assert list(tmp.iterdir()) == []


def test_a_pcap_that_cannot_be_written_is_a_usage_error_before_the_demo(tmp_path, tmpdir_env):
    """`zse demo --pcap /nonexistent/x.pcap` used to run the simulator first, then print a
    FileNotFoundError traceback."""
    tmp, env = tmpdir_env
    target = tmp_path / "nonexistent" / "x.pcap"
    done = subprocess.run(
        [sys.executable, "-m", "zse", "demo", "--pcap", str(target)],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == f"error: cannot write {target}: No such file or directory\n"
    assert done.stdout == ""  # checked before the story starts
    assert list(tmp.iterdir()) == []


@pytest.mark.parametrize(
    "fails_at",
    [
        "zse demo (seed 1)",  # the first line, said by the story itself
        "[  0:00] ihd         joined as",  # said from inside a HAN device's event callback
        "[  0:00] ESI         CBKE with thermostat done",  # from inside the ESI's
        "Run `",  # the last line, after everything is closed
    ],
)
def test_wherever_the_reader_goes_away_the_story_stops_there_and_cleans_up(
    fails_at, tmp_path, monkeypatch
):
    """In-process: the error of the failing line comes out of story() (an event callback
    would otherwise swallow it or carry on telling), nothing more is said, nothing is left."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    told: list[str] = []

    def say(line: str) -> None:
        told.append(line)
        if line.startswith(fails_at):
            raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        run(story(1, say=say))
    assert told[-1].startswith(fails_at)
    assert list(tmp_path.iterdir()) == []
    assert [t.name for t in threading.enumerate() if not t.daemon] == ["MainThread"]


async def test_a_closing_step_that_never_ends_is_left_after_its_bound_and_the_rest_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """On the way out (Ctrl-C, an error) each closing step gets CLOSE_WITHIN virtual seconds:
    one waiting for what will not come is logged and left, the next ones still run."""
    import contextlib  # noqa: PLC0415

    from zse.cli.demo import CLOSE_WITHIN, _bounded  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    closed: list[str] = []

    async def stuck() -> None:
        await loop.create_future()  # never done

    async def fine() -> None:
        closed.append("fine")

    began = loop.time()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(_bounded, fine)
        stack.push_async_callback(_bounded, stuck)
    assert closed == ["fine"]
    assert loop.time() - began == pytest.approx(CLOSE_WITHIN)
    assert "did not finish while closing" in caplog.text
