"""The standard-output wrapper (:func:`zse.cli._files.named_stdout`) under the outputs it was
not first tried with: a terminal (its lines arrive while the command runs, an interactive
``zse esi`` answers what is typed), worker processes behind ``installcode --csv -j 2`` (every
row once and whole), Ctrl-C while output waits in the buffer (the command's status, no
traceback, no "Exception ignored") and bytes written to ``sys.stdout.buffer`` between text
(in order, unchanged). Each is a real ``zse`` process; a read waits for a marker, never a
pause."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.zse_cli import ROOT, TIMEOUT, run_zse
from zse.installcode import InstallCode

CODE = "83FED3407A939723A5C639B26916D505C3B5"
ROWS = 10_000  # over two 4096-row chunks: both workers have some
#: A command registered in this process's ``zse``: text, bytes on ``sys.stdout.buffer``
#: (not UTF-8), ``click.echo`` of bytes, text again; then ``zse`` runs it.
BYTES_COMMAND = """
import sys
import click
import zse.cli

@click.command()
def raw() -> None:
    sys.stdout.write("text one\\n")
    sys.stdout.flush()
    sys.stdout.buffer.write(bytes(range(256)) * 64)
    sys.stdout.buffer.flush()
    click.echo(b"\\xff\\xfe echoed bytes")
    print("text two \\u00e9")

zse.cli.COMMANDS["raw"] = "__main__:raw"
zse.cli.main(["raw"], prog_name="zse")
"""
BYTES_EXPECTED = (
    b"text one\n" + bytes(range(256)) * 64 + b"\xff\xfe echoed bytes\ntext two \xc3\xa9\n"
)


def _environ(buffering: str = "buffered") -> dict[str, str]:
    """This process's environment without the radio's variables (``ZSE_RADIO``...), standard
    output ``buffered`` or ``unbuffered`` (``PYTHONUNBUFFERED``)."""
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("ZSE_") and k != "PYTHONUNBUFFERED"
    }
    unbuffered = {"PYTHONUNBUFFERED": "1"} if buffering == "unbuffered" else {}
    return environ | {"PYTHONIOENCODING": "utf-8"} | unbuffered


def _interruptible() -> None:
    """In the child: SIGINT as a terminal's Ctrl-C (a background job starts with it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Terminal:
    """A process whose standard input, output and error are a pseudo-terminal."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zse", *args],
            cwd=ROOT,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=_environ(),
            start_new_session=True,
        )
        os.close(slave)
        self.seen = b""

    def read_until(self, marker: bytes) -> bytes:
        """What the terminal showed up to and including ``marker`` (a bound of ``TIMEOUT``
        real seconds, not a pause)."""
        deadline = time.monotonic() + TIMEOUT
        while marker not in self.seen:
            ready, _, _ = select.select([self.master], [], [], deadline - time.monotonic())
            if not ready:
                pytest.fail(f"{marker!r} not shown; the terminal showed {self.seen!r}")
            if not self._read():
                pytest.fail(f"ended before {marker!r}; the terminal showed {self.seen!r}")
        end = self.seen.index(marker) + len(marker)
        shown, self.seen = self.seen[:end], self.seen[end:]
        return shown

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self) -> tuple[int, bytes]:
        """The exit status and what the terminal showed until it was closed."""
        while self._read():
            pass
        status = self.process.wait(TIMEOUT)
        os.close(self.master)
        return status, self.seen

    def _read(self) -> bool:
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: every holder of the terminal's other end is gone
            return False
        self.seen += chunk
        return bool(chunk)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT)
        with contextlib.suppress(OSError):  # closed already by finish()
            os.close(self.master)


@pytest.fixture
def terminal() -> Iterator[type[_Terminal]]:
    started: list[_Terminal] = []

    class Started(_Terminal):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Started
    for each in started:
        each.close()


def test_esi_on_a_terminal_shows_each_line_while_it_runs(terminal: type[_Terminal]) -> None:
    """The starting lines and the prompt arrive while it waits for a command; ``help``
    typed is answered before the next prompt (it was prompted again at once, the answer
    after it), then ``quit`` ends it with status 0."""
    esi = terminal("esi", "--radio", "sim")
    started = esi.read_until(b"zse-esi> ")
    assert esi.process.poll() is None  # shown while it runs, not at its end
    assert b"ESI running (type help for the commands)\r\n" in started
    assert b"Traceback" not in started
    esi.type("help")
    answer = esi.read_until(b"zse-esi> ")  # the next prompt comes after the answer
    assert esi.process.poll() is None
    assert b"Commands:\r\n" in answer
    assert b"provision" in answer
    assert b"  quit" in answer
    esi.type("quit")
    status, rest = esi.finish()
    assert status == 0, rest
    assert b"ESI stopped\r\n" in rest
    assert b"Traceback" not in rest


@pytest.mark.parametrize("form", [[], ["--json"]], ids=["table", "json"])
def test_installcode_on_a_terminal_shows_what_a_pipe_gets(
    terminal: type[_Terminal], form: list[str]
) -> None:
    """The same text (the terminal turns each newline into CR LF), status 0."""
    piped = run_zse("installcode", *form, CODE, env=_environ())
    assert piped.returncode == 0
    status, shown = terminal("installcode", *form, CODE).finish()
    assert status == 0, shown
    assert shown == piped.stdout.replace("\n", "\r\n").encode()


def _devices(path: Path, rows: int) -> list[str]:
    """A devices CSV of ``rows`` valid rows; the EUI-64s in order."""
    euis = [f"001BC5{i:010X}" for i in range(rows)]
    with path.open("w", encoding="utf-8") as out:
        out.write("eui64,install_code,label\n")
        for i, eui in enumerate(euis):
            code = InstallCode.from_data(hashlib.sha256(i.to_bytes(4, "big")).digest()[:16])
            out.write(f"{eui},{code},row {i}\n")
    return euis


@pytest.mark.parametrize("buffering", ["buffered", "unbuffered"])
def test_two_workers_write_every_row_once_and_whole(tmp_path: Path, buffering: str) -> None:
    """``-j 2`` into a pipe: every row, in order, once, whole; the bytes of ``-j 1``."""
    source = tmp_path / "devices.csv"
    euis = _devices(source, ROWS)
    runs = {
        jobs: run_zse("installcode", "--csv", str(source), "-j", jobs, env=_environ(buffering))
        for jobs in ("2", "1")
    }
    done = runs["2"]
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"{ROWS} rows: {ROWS} valid, 0 invalid\n"
    lines = done.stdout.split("\n")
    assert lines[0] == "eui64,install_code,label,link_key"
    assert lines[-1] == ""  # ends with a whole row
    rows = [line.split(",") for line in lines[1:-1]]
    assert [row[0] for row in rows] == euis
    assert all(len(row) == 4 and len(row[3]) == 32 for row in rows)
    assert [row[2] for row in rows] == [f"row {i}" for i in range(ROWS)]
    assert done.stdout == runs["1"].stdout


def _interrupted(args: list[str], group: bool) -> tuple[int, bytes, str]:
    """``zse ARGS`` into a pipe read slowly: the pipe full, SIGINT (to its process group,
    as a terminal's Ctrl-C, with ``group``), then the rest read; status, output, errors."""
    process = subprocess.Popen(
        [sys.executable, "-m", "zse", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environ(),
        start_new_session=True,
        preexec_fn=_interruptible,  # noqa: PLW1509 - before exec, no threads in the child yet
    )
    assert process.stdout is not None
    try:
        first = process.stdout.read(1 << 16)  # it writes; the pipe's 64 KiB fill up behind
        assert len(first) == 1 << 16
        if group:
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
    return process.returncode, first + rest, errors.decode()


@pytest.fixture(scope="module")
def large_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published Control4 sample's records, 200 times over (about 10 MB of lines)."""
    sample = (ROOT / "tests/capture/published/killerbee-control4-sample.pcap").read_bytes()
    path = tmp_path_factory.mktemp("capture") / "large.pcap"
    path.write_bytes(sample[:24] + sample[24:] * 200)
    return path


@pytest.mark.parametrize("group", [False, True], ids=["process", "group"])
def test_ctrl_c_while_capture_output_waits_is_interrupted_130(
    large_capture: Path, group: bool
) -> None:
    """docs/capture.md: 130 and ``error: interrupted``; the lines written are whole."""
    status, output, errors = _interrupted(["capture", str(large_capture)], group)
    assert status == 130, errors
    assert errors == "error: interrupted\n"
    assert output.endswith(b"\n")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_while_csv_output_waits_is_interrupted_130(tmp_path: Path, jobs: str) -> None:
    """docs/installcode.md: 130 and one ``error: interrupted`` line (it was click's "Aborted!"
    and 1), the output ending with a whole row; with two workers the Ctrl-C reaches them too
    (the process group) and none of them says anything (each printed "Process
    ForkServerProcess-N: Traceback ... KeyboardInterrupt" in most runs: the workers now ignore
    SIGINT)."""
    source = tmp_path / "devices.csv"
    _devices(source, 3 * ROWS)
    status, output, errors = _interrupted(["installcode", "--csv", str(source), "-j", jobs], True)
    assert status == 130, errors
    rows = output.count(b"\n") - 1  # the header aside: the count said is the output's
    said = (
        "error: interrupted: standard output ends early, "
        f"after {rows} valid rows, at a row boundary\n"
    )
    assert errors == said
    assert len(output) < source.stat().st_size  # it did stop midway
    assert output.endswith(b"\n")


@pytest.mark.parametrize("buffering", ["buffered", "unbuffered"])
def test_bytes_on_stdout_buffer_arrive_in_order_and_unchanged(buffering: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BYTES_COMMAND],
        cwd=ROOT,
        capture_output=True,
        env=_environ(buffering),
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert done.stdout == BYTES_EXPECTED
