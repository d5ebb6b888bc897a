"""``zse headend serve --meter ... --database ... --broker ...`` (issue #19, ADR 0020): the
command in a process of its own, over an SQLite store and queue and a real Mosquitto, with a
headend worker inside, registers a device of a simulated gateway through the API until it is
METER_READY; killed with SIGKILL right after accepting a registration (PostgreSQL), it loses
nothing and provisions once; bad options, an unreachable database and an unreachable broker
are one line and a non-zero exit."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.fleet.helpers import ADMITTED, PREFIX, gateways, real, until, worker
from tests.headend.helpers import Reply, client_context, request
from tests.mqtt.broker import Broker, free_port
from zse.cli.headend import headend
from zse.headend.pki import init_directory
from zse.headend.sim import SimDevice
from zse.installcode import canonical_eui64


def config(tmp_path: Path) -> str:
    init_directory(tmp_path / "pki", port=0)
    return str(tmp_path / "pki" / "headend.toml")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--sim", "1", "--meter", "m1"], "give --sim N"),
        (["--meter", "m1", "--radio", "sim"], "--radio goes with --esi"),
        (["--sim", "1", "--database", "x.db"], "--database and --broker go with --meter"),
        (["--meter", "a/b"], "meter 'a/b': 1-64 printable characters, no / + #"),
        (["--meters", "{missing}"], "missing.txt: No such file or directory"),
        (["--meters", "{empty}"], "empty.txt: no meter ids"),
        (["--meter", "m1", "--broker", "http://h"], "error: mqtt.url:"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    (tmp_path / "empty.txt").write_text("# none yet\n\n")
    values = {"{missing}": str(tmp_path / "missing.txt"), "{empty}": str(tmp_path / "empty.txt")}
    argv = ["serve", "--config", config(tmp_path), *[values.get(a, a) for a in arguments]]
    result = CliRunner().invoke(headend, argv)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ")
    assert message in line


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://zse:s3cret@127.0.0.1:{free_port()}/db?connect_timeout=2"
    argv = ["serve", "--config", config(tmp_path), "--meter", "m1", "--database", url]
    result = CliRunner().invoke(headend, argv)
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: postgresql://zse@127.0.0.1:")
    assert "s3cret" not in result.output


def test_an_unreachable_broker_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    argv = [
        "serve",
        "--config",
        config(tmp_path),
        "--meter",
        "m1",
        "--database",
        str(tmp_path / "headend.sqlite"),
        "--broker",
        f"mqtt://127.0.0.1:{port}",
        "--broker-wait",
        "0.5",
        "--port",
        "0",
    ]
    result = CliRunner().invoke(headend, argv)
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    said = f"error: broker 127.0.0.1:{port} unreachable for 0.5 s: "  # not a class name
    assert line.startswith(said), line
    assert "Connection refused" in line  # why, the broker's client says


def test_an_unreachable_broker_is_one_line_after_its_retries(tmp_path: Path) -> None:
    """As a process, the link's retries inside --broker-wait (one a second at first) wrote a
    warning each before the error line."""
    port = free_port()
    command = [sys.executable, "-m", "zse", "headend", "serve", "--config", config(tmp_path)]
    command += ["--meter", "m1", "--database", str(tmp_path / "headend.sqlite")]
    command += ["--broker", f"mqtt://127.0.0.1:{port}", "--broker-wait", "2.5", "--port", "0"]
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 1, result.stderr
    refused = f"[Errno {errno.ECONNREFUSED}] {os.strerror(errno.ECONNREFUSED)}"  # the OS's words
    assert result.stderr.splitlines() == [
        f"error: broker 127.0.0.1:{port} unreachable for 2.5 s: {refused}"
    ]


async def serving(argv: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """``zse headend serve ...`` started, and the URL it serves at."""
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    command = [sys.executable, "-m", "zse", "headend", "serve", *argv]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdout is not None
    line = await real(asyncio.get_running_loop().run_in_executor(None, process.stdout.readline))
    assert line.startswith(b"serving https://"), line
    meters = argv.count("--meter")  # the meters it serves, counted in words a person reads
    said = "(1 gateway meter)" if meters == 1 else f"({meters} gateway meters)"
    assert line.decode().rstrip().endswith(said), line
    return process, line.split()[1].decode().rstrip("/")


@dataclass
class Client:
    """A retailer's client of the headend at ``base``."""

    base: str
    context: ssl.SSLContext

    async def register(self, device: SimDevice) -> Reply:
        body = {
            "mac": device.mac,
            "install_code": device.install_code,
            "meter": device.meter,
            "device_type": device.device_type,
        }
        return await request(self.base, self.context, "POST", "/api/v1/devices", body)

    async def state(self, device: SimDevice) -> str:
        path = f"/api/v1/devices/{device.mac}"
        return str((await request(self.base, self.context, "GET", path)).body["state"])

    async def until_meter_ready(self, device: SimDevice) -> None:
        """Until the gateway admitted it, then it joins (virtual time) and is METER_READY.
        The clock follows the real one while the state is polled, so the device may join
        between two looks: admitted is either state."""
        for wanted in (ADMITTED, frozenset({"meter ready"})):

            async def reached(wanted: frozenset[str] = wanted) -> bool:
                return await self.state(device) in wanted

            await until(reached)
            await asyncio.sleep(60)  # virtual: the device joins and runs CBKE


async def test_serve_registers_a_gateway_device_until_it_is_meter_ready(
    broker: Broker, tmp_path: Path
) -> None:
    argv = ["--config", config(tmp_path), "--port", "0", "--meter", "meter-1"]
    argv += ["--database", str(tmp_path / "headend.sqlite"), "--broker", broker.url]
    argv += ["--topic-prefix", PREFIX, "--worker-id", "serve-1"]
    async with gateways(broker, tmp_path / "meters", meters=1, provisioned=False) as gw:
        process, base = await serving(argv)
        assert process.stdout is not None
        try:
            loop = asyncio.get_running_loop()
            queue_line = b""
            while not queue_line.startswith(b"work queue"):  # after the signed-request line
                queue_line = await real(loop.run_in_executor(None, process.stdout.readline))
                assert queue_line, process.stderr
            assert queue_line.decode().strip() == (
                f"work queue: {tmp_path / 'headend-queue.sqlite'} (for zse headend worker "
                "--database)"
            )
            client = Client(base, client_context(tmp_path / "pki", "retailer-a"))
            device = gw.sims.devices[0]
            reply = await client.register(device)
            assert reply.status == 201, reply
            await client.until_meter_ready(device)
            assert gw.provisioned == {canonical_eui64(device.mac): 1}
            process.send_signal(signal.SIGTERM)
            out, err = await real(loop.run_in_executor(None, process.communicate))
            assert process.returncode == 0, err
            assert out.decode().strip().endswith("stopping")
            assert device.install_code.encode() not in out + err
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate()


async def test_serve_killed_after_accepting_a_registration_loses_nothing(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    database = postgres.store_url("serve_sigkill")
    argv = ["--config", config(tmp_path), "--port", "0", "--meter", "meter-1"]
    argv += ["--database", database]  # no --broker: the API only queues
    context = client_context(tmp_path / "pki", "retailer-a")
    async with gateways(broker, tmp_path / "meters", meters=1, provisioned=False) as gw:
        device = gw.sims.devices[0]
        first, base = await serving(argv)
        try:
            reply = await Client(base, context).register(device)
            assert reply.status == 201, reply
        finally:
            first.kill()  # SIGKILL: no goodbye, its store lock dies with its connection
            first.communicate()
        assert gw.provisioned == {}
        second, base = await serving(argv)
        client = Client(base, context)
        try:
            assert await client.state(device) == "new"
            async with worker(broker, database, "w1", time.time):  # the API's clock
                await client.until_meter_ready(device)
            assert gw.provisioned == {canonical_eui64(device.mac): 1}
            again = await client.register(device)
            assert again.status == 409, again  # registered once, not twice
        finally:
            second.send_signal(signal.SIGTERM)
            second.communicate()
