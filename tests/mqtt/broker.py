"""A real Mosquitto broker for the MQTT bridge's tests (issue #17): started on a free loopback
port with a config file in a temporary directory, stopped (or killed and restarted) by the test.
A missing ``mosquitto`` fails the test with the message of :func:`tests.oracles.missing`."""

from __future__ import annotations

import contextlib
import getpass
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.oracles import require

#: Real seconds the broker may take to start listening (a bound, not a pause).
START_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Broker:
    """One Mosquitto on 127.0.0.1:``port``, persistence in ``directory`` (so a restart after
    SIGTERM keeps retained messages, sessions and their queued QoS 1 messages)."""

    def __init__(self, directory: Path, *, listener: str = "allow_anonymous true\n") -> None:
        """``listener``: the listener's options (default: anyone may connect, no TLS)."""
        self.binary = require("mosquitto")
        self.directory = directory
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{listener}"
            "persistence true\n"
            f"persistence_location {directory}/\n"
            "log_dest stderr\n"
            "log_type all\n"
            "max_queued_messages 100000\n"
            # started as root it would switch to the user mosquitto, who cannot write here
            f"user {getpass.getuser()}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self.log: list[str] = []

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def client_args(self) -> list[str]:
        """mosquitto_pub / mosquitto_sub's arguments for this broker."""
        return ["-h", "127.0.0.1", "-p", str(self.port)]

    def start(self) -> None:
        """Start it and wait (bounded) until it says it is listening."""
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,  # unbuffered: the log line saying it runs comes at once
            cwd=self.directory,
        )
        assert self.process.stderr is not None
        deadline = time.monotonic() + START_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stderr, selectors.EVENT_READ)
            buffered = b""
            while b"running" not in buffered:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    self.stop()
                    raise AssertionError(f"mosquitto did not start: {buffered.decode()!r}")
                chunk = os.read(self.process.stderr.fileno(), 4096)
                if not chunk:
                    raise AssertionError(f"mosquitto exited: {buffered.decode()!r}")
                buffered += chunk
        self.log.append(buffered.decode(errors="replace"))
        # from now on a thread keeps reading the log: a full pipe would stall the broker
        self._reader = threading.Thread(target=self._read_log, args=(self.process,), daemon=True)
        self._reader.start()

    def _read_log(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.log.append(line.decode(errors="replace"))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop it (SIGTERM: it saves its persistence file first; SIGKILL: nothing saved)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        self.process.wait(timeout=START_TIMEOUT)
        if self._reader is not None:
            self._reader.join(timeout=START_TIMEOUT)
            self._reader = None
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def running_broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto of the test's own in ``tmp_path`` (the ``broker`` fixture's body)."""
    directory = tmp_path / "mosquitto"
    directory.mkdir()
    running = Broker(directory)
    running.start()
    try:
        yield running
    finally:
        running.stop()
