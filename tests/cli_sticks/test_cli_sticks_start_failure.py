"""Issue #12.1: a radio that does not start ends ``zse esi`` (and examples/esi_on_stick.py) at
once with status 1 and one error line, and leaves no ``han-zigpy.db*`` behind (zigpy's
database used to stay open, its aiosqlite thread keeping the process alive for good).

Each case is a subprocess with a timeout, for both radio libraries: a serial port that does not
exist, a ``socket://`` port on loopback that refuses the connection, and a silent stick (a
loopback listener that accepts and never answers) cut short by ``--start-timeout``. The
processes run side by side, so the cases cost about one start-up."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_sticks.sticks_helpers import ESI_CREDENTIALS

EXAMPLE = Path(__file__).parents[2] / "examples" / "esi_on_stick.py"
#: Far above a failing start (a few seconds); a hang is what this bound catches.
HANG = 60
ZSE_ESI = (sys.executable, "-m", "zse", "esi")
#: The case run where zigpy's database exists already (from an earlier session).
KEEPS = "znp no such port"


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting is refused (and nobody takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback listener: the kernel accepts connections, nothing ever answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_a_radio_that_does_not_start_ends_zse_esi(
    tmp_path: Path, refused_port: int, silent_port: int
) -> None:
    credentials = tmp_path / "esi.json"
    credentials.write_text(ESI_CREDENTIALS.to_json())
    cases = {
        f"{radio} {name}": (
            [
                *ZSE_ESI,
                "--credentials",
                str(credentials),
                "--radio",
                radio,
                "--device",
                device,
                *extra,
            ],
            expected.format(radio=radio, device=device),
        )
        for radio in ("ezsp", "znp")
        for name, device, extra, expected in (
            (
                "no such port",
                str(tmp_path / "ttyNOPE"),
                [],
                "error: {radio} radio on {device}: cannot open the port (No such file or "
                "directory)",
            ),
            (
                "refused",
                f"socket://127.0.0.1:{refused_port}",
                [],
                "error: {radio} radio on {device}: connection refused",
            ),
            (
                "silent",
                f"socket://127.0.0.1:{silent_port}",
                ["--start-timeout", "0.5"],
                "error: {radio} radio on {device} did not start within 0.5 s (wrong port, baud "
                "rate or firmware? --start-timeout waits longer)",
            ),
        )
    }
    cases["example, no such port"] = (
        [
            sys.executable,
            str(EXAMPLE),
            "--radio",
            "ezsp",
            "--device",
            str(tmp_path / "ttyNOPE"),
            "--credentials",
            str(credentials),
        ],
        f"error: ezsp radio on {tmp_path / 'ttyNOPE'}: cannot open the port (No such file or "
        "directory)",
    )
    running = {}
    try:
        for name, (command, _) in cases.items():
            workdir = tmp_path / name.replace(" ", "-").replace(",", "")
            workdir.mkdir()
            if name == KEEPS:
                (workdir / "han-zigpy.db").touch()
            running[name] = (
                workdir,
                subprocess.Popen(
                    command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                ),
            )
        for name, (workdir, process) in running.items():
            try:
                stdout, stderr = process.communicate(timeout=HANG)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name}: still running after {HANG} s")
            assert process.returncode == 1, (name, stdout, stderr)
            assert stderr.decode().splitlines() == [cases[name][1]], name  # errors on stderr
            assert "error" not in stdout.decode(), name
            # what the failed start created is gone; an earlier zigpy database is kept
            left = ["han-zigpy.db"] if name == KEEPS else []
            assert sorted(p.name for p in workdir.iterdir()) == left, name
    finally:
        for _, process in running.values():
            if process.poll() is None:
                process.kill()
                process.communicate()


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A loopback listener whose backlog is full: a TCP connect to it never completes, so the
    start timeout expires while bellows is still opening the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        port = sock.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                fillers.append(filler)
                filler.connect_ex(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()


@pytest.mark.parametrize(
    "command",
    [
        ["interpan", "listen", "--radio", "ezsp"],
        ["han", "join", "--radio", "ezsp", "--install-code", "83FED3407A932B70"],
    ],
)
def test_a_start_timeout_while_the_port_opens_exits(
    tmp_path: Path, unanswered_port: int, command: list[str]
) -> None:
    """bellows' serial thread (``use_thread``, its default) was left running when the start
    timeout cancelled the port's opening: the error was printed and the process never
    exited. zse now runs bellows on its own loop."""
    device = f"socket://127.0.0.1:{unanswered_port}"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "zse", *command, "--device", device, "--start-timeout", "0.5"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=HANG,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"zse {command[0]}: still running {HANG} s after its start timed out")
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ")
    assert "0.5 s" in line
