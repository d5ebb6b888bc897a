"""``zse headend``: ``init`` writes the PKI and configuration (never over an existing one) and
errors are one line with exit status 2 (through click's CliRunner); ``serve --sim`` as a
subprocess answers curl with a retailer's certificate until SIGTERM (issue #18 item 6)."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE

import pytest
from click.testing import CliRunner

from zse.cli import main

ROOT = Path(__file__).resolve().parents[2]
ZSE = [sys.executable, "-m", "zse", "headend"]
#: Real seconds a subprocess may take (a bound, not a pause: each wait ends on its output).
TIMEOUT = 60


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def zse(*args: str) -> Done:
    result = CliRunner().invoke(main, ["headend", *args])
    return Done(result.exit_code, result.stdout, result.stderr)


def test_init_writes_the_pki_once(tmp_path: Path) -> None:
    done = zse("init", str(tmp_path / "pki"))
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "pki").iterdir())
    assert names == sorted(
        [
            "ca.pem",
            "ca-key.pem",
            "server.pem",
            "server-key.pem",
            "retailer-a.pem",
            "retailer-a-key.pem",
            "retailer-b.pem",
            "retailer-b-key.pem",
            "headend.toml",
        ]
    )
    assert (tmp_path / "pki" / "retailer-a-key.pem").stat().st_mode & 0o077 == 0
    again = zse("init", str(tmp_path / "pki"))
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1
    assert "not overwriting" in again.stderr


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["serve", "--config", "missing.toml", "--sim", "1"], "missing.toml"),
        (["serve", "--config", "{config}"], "give --sim N"),
        (["serve", "--config", "{bad}", "--sim", "1"], "not TOML"),
    ],
)
def test_serve_errors_are_one_line(tmp_path: Path, args: list[str], text: str) -> None:
    zse("init", str(tmp_path / "pki"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    values = {"{config}": str(tmp_path / "pki" / "headend.toml"), "{bad}": str(bad)}
    done = zse(*[values.get(a, a) for a in args])
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert done.stderr.count("\n") == 1
    assert text in done.stderr


class Served:
    """A ``zse headend serve`` process, the URL it serves at, and what it printed so far."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, printed: bytes) -> None:
        self.process, self.url, self.printed = process, url, printed


def _serving(argv: list[str]) -> Served:
    """``zse headend serve ...`` started and past its ``serving URL`` line. The pipe is read
    raw (os.read): a buffered readline would keep the lines after it where communicate() does
    not look."""
    process = subprocess.Popen([*ZSE, "serve", *argv], cwd=ROOT, stdout=PIPE, stderr=PIPE)
    assert process.stdout is not None
    printed = b""
    deadline = time.monotonic() + TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in printed.partition(b"serving ")[2]:
            assert time.monotonic() < deadline, "the server did not start"
            if selector.select(deadline - time.monotonic()):
                chunk = os.read(process.stdout.fileno(), 65536)
                assert chunk, process.stderr.read() if process.stderr else b""
                printed += chunk
    url = printed.partition(b"serving ")[2].split()[0].decode()
    return Served(process, url, printed)


def _curl(directory: Path, url: str, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            "curl", "--silent", "--show-error", "--cacert", str(directory / "ca.pem"),
            "--cert", str(directory / "retailer-b.pem"),
            "--key", str(directory / "retailer-b-key.pem"), *extra, url,
        ],
        capture_output=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip


def _stopped(served: Served) -> str:
    """Everything ``served`` printed after its ``serving`` line, once SIGTERM stopped it."""
    served.process.send_signal(signal.SIGTERM)
    out, err = served.process.communicate(timeout=TIMEOUT)
    assert served.process.returncode == 0, err
    return (served.printed + out).decode().partition("serving ")[2].partition("\n")[2]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the system curl is not installed")
def test_serve_answers_curl_until_sigterm(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    assert zse("init", str(directory), "--port", "0").returncode == 0
    config = str(directory / "headend.toml")
    served = _serving(["--config", config, "--sim", "1", "--speed", "20"])
    url = served.url
    try:
        done = _curl(directory, f"{url}api/v1/meters")
        assert done.returncode == 0, done.stderr
        assert done.stdout == b'{"meters": ["meter-1"]}'
        out = _stopped(served)
        assert "00:0d:6f:00:0b:01:00:01  in-home display" in out
        assert out.rstrip().endswith("stopping")
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.communicate()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the system curl is not installed")
def test_serve_over_the_esi_of_a_zse_esi_config(tmp_path: Path) -> None:
    """``--esi esi.toml --radio sim``: the ESI of ``zse esi --radio sim`` is the one meter,
    named by its EUI-64; a device registered by API is admitted by it."""
    directory = tmp_path / "pki"
    assert zse("init", str(directory), "--port", "0").returncode == 0
    esi = tmp_path / "esi.toml"
    esi.write_text("[esi]\npermit_seconds = 60\n")
    argv = ["--config", str(directory / "headend.toml"), "--esi", str(esi), "--radio", "sim"]
    served = _serving(argv)
    url = served.url
    try:
        meter = "00:0d:6f:00:00:00:00:e5"
        done = _curl(directory, f"{url}api/v1/meters")
        assert done.stdout.decode() == f'{{"meters": ["{meter}"]}}'
        body = (
            '{"mac": "00:0d:6f:00:0a:00:00:01", "meter": "' + meter + '", '
            '"install_code": "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5", '
            '"device_type": "in-home display"}'
        )
        registered = _curl(
            directory, f"{url}api/v1/devices", "-H", "Content-Type: application/json", "-d", body
        )
        assert b'"mac": "000D6F000A000001"' in registered.stdout, registered.stdout
        deadline = time.monotonic() + TIMEOUT
        while b'"state": "new"' in _curl(directory, f"{url}api/v1/devices/000D6F000A000001").stdout:
            assert time.monotonic() < deadline, "never admitted"  # each curl is the wait
        out = _stopped(served)
        assert "new -> pending provisioning (provision)" in out
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.communicate()
