"""``zse headend``: ``init`` writes the PKI and configuration (never over an existing one) and
errors are one line with exit status 2 (through click's CliRunner); ``serve --sim`` as a
subprocess answers curl with a retailer's certificate until SIGTERM (issue #18 item 6)."""

from __future__ import annotations

import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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


@pytest.mark.skipif(shutil.which("curl") is None, reason="the system curl is not installed")
def test_serve_answers_curl_until_sigterm(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    assert zse("init", str(directory), "--port", "0").returncode == 0
    process = subprocess.Popen(
        [*ZSE, "serve", "--config", str(directory / "headend.toml"), "--sim", "1", "--speed", "20"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = ""
        deadline = time.monotonic() + TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while not line.startswith("serving "):
                assert time.monotonic() < deadline, "the server did not start"
                if selector.select(deadline - time.monotonic()):
                    line = process.stdout.readline()
                    assert line, process.stderr.read() if process.stderr else ""
        url = line.split()[1]
        done = subprocess.run(
            [
                "curl", "--silent", "--show-error", "--cacert", str(directory / "ca.pem"),
                "--cert", str(directory / "retailer-b.pem"),
                "--key", str(directory / "retailer-b-key.pem"), f"{url}api/v1/meters",
            ],
            capture_output=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == b'{"meters": ["meter-1"]}'
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, err
        assert "00:0d:6f:00:0b:01:00:01  in-home display" in out
        assert out.rstrip().endswith("stopping")
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
