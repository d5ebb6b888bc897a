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

from tests.mqtt.broker import Broker
from tests.oracles import require
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


# -- the workers' broker: --mqtt-config (audit mqtt-ha-tls, finding 1) -----------------------


@pytest.mark.parametrize("command", [["worker", "--database", "{db}"], ["serve", "--meter", "m1"]])
def test_a_user_in_the_broker_url_points_to_mqtt_config(tmp_path: Path, command: list[str]) -> None:
    """``--broker`` was the workers' only broker setting, and a user in its URL was refused
    with "use mqtt.username", a key these commands had no way to take: the error names
    ``--mqtt-config`` now, and never repeats the password."""
    directory = tmp_path / "pki"
    assert zse("init", str(directory), "--port", "0").returncode == 0
    config = ["--config", str(directory / "headend.toml")] if command[0] == "serve" else []
    args = [a.replace("{db}", str(tmp_path / "q.db")) for a in command]
    done = zse(*args, *config, "--broker", "mqtts://meter:s3cret@127.0.0.1:8883")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "[mqtt] table of --mqtt-config FILE" in done.stderr
    assert "s3cret" not in done.stderr


def test_mqtt_config_s_files_are_checked_by_name(tmp_path: Path) -> None:
    """The [mqtt] table of ``--mqtt-config`` is checked as ``zse mqtt`` checks it: a CA file
    that is missing is a configuration error naming the key."""
    table = tmp_path / "broker.toml"
    table.write_text(
        '[mqtt]\nurl = "mqtts://127.0.0.1:8883"\nusername = "headend"\npassword = "s3cret"\n'
        f'ca_file = "{tmp_path / "missing.pem"}"\n'
    )
    done = zse("worker", "--database", str(tmp_path / "q.db"), "--mqtt-config", str(table))
    assert done.returncode == 2
    assert done.stderr.startswith("error: mqtt.ca_file: ")
    assert "s3cret" not in done.stderr


def test_a_worker_logs_in_with_the_user_of_its_mqtt_config(tmp_path: Path) -> None:
    """The worker connects to a broker that takes no anonymous client, as the user and
    password of its ``--mqtt-config`` (the password never on its command line)."""
    passwords = tmp_path / "passwords"
    subprocess.run(
        [require("mosquitto_passwd"), "-c", "-b", str(passwords), "headend", "s3cret"],
        check=True,
        capture_output=True,
    )
    (tmp_path / "broker").mkdir()
    broker = Broker(
        tmp_path / "broker", listener=f"allow_anonymous false\npassword_file {passwords}\n"
    )
    broker.start()
    table = tmp_path / "broker.toml"
    table.write_text(f'[mqtt]\nurl = "{broker.url}"\nusername = "headend"\npassword = "s3cret"\n')
    argv = ["worker", "--database", str(tmp_path / "q.db"), "--mqtt-config", str(table)]
    process = subprocess.Popen([*ZSE, *argv, "--id", "w1"], cwd=ROOT, stdout=PIPE, stderr=PIPE)
    assert process.stdout is not None
    printed = b""
    try:
        deadline = time.monotonic() + TIMEOUT
        with selectors.DefaultSelector() as selector:  # it says so once connected
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"worker w1: queue" not in printed:
                assert time.monotonic() < deadline, broker.log
                if selector.select(deadline - time.monotonic()):
                    chunk = os.read(process.stdout.fileno(), 65536)
                    assert chunk, process.communicate()
                    printed += chunk
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, err
        assert b"s3cret" not in printed + out + err
        assert any("zse-headend-w1" in line and "u'headend'" in line for line in broker.log)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        broker.stop()
