"""``zse headend worker`` processes on one PostgreSQL queue: one SIGKILLed mid-fan-out while
it holds a lease on a job whose command waits at the broker for a gateway that is offline.
The other worker takes the job over when the lease ends and sends it again with the same key;
the gateway, back, carries the waiting command out once and answers the repeat from its
record. And the command's one-line errors."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.fleet.helpers import PREFIX, enqueue_lce, gateways, real, settled, until
from tests.mqtt.broker import Broker, free_port
from zse.cli.headend import headend
from zse.headend.core import Outcome
from zse.headend.queue import open_queue


@contextmanager
def worker_process(database: str, broker: Broker, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """``zse headend worker`` in a process of its own (killed at the end if still running)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zse",
            "headend",
            "worker",
            "--database",
            database,
            "--broker",
            broker.url,
            "--topic-prefix",
            PREFIX,
            "--id",
            name,
            "--lease",
            "4",
            "--timeout",
            "2.5",
            "--batch",
            "1",
            "--poll",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


async def ready(process: subprocess.Popen[bytes]) -> None:
    """Wait (bounded) for the worker's line saying it is connected to the broker."""
    assert process.stdout is not None
    line = await real(asyncio.get_running_loop().run_in_executor(None, process.stdout.readline))
    assert line.startswith(b"worker "), line


async def test_a_worker_killed_mid_fan_out_loses_nothing_and_sends_nothing_twice(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    database = postgres.store_url("killed_worker")
    queue = await open_queue(database)
    async with gateways(broker, tmp_path / "meters") as gw:
        await gw.offline("meter-2")
        await enqueue_lce(queue, 5, gw.devices())
        with worker_process(database, broker, "w1") as first:

            async def stuck_on_meter_2() -> bool:
                rows = await queue.rows(5)
                return all(r.state == "sent" for r in rows if r.meter == "meter-1") and any(
                    r.state == "leased" for r in rows if r.meter == "meter-2"
                )

            await until(stuck_on_meter_2)
            first.send_signal(signal.SIGKILL)  # mid-delivery: leased, its command at the broker
            await asyncio.get_running_loop().run_in_executor(None, first.wait)
        leased = [r for r in await queue.rows(5) if r.state == "leased"]
        assert len(leased) == 1
        assert leased[0].attempts == 0
        with worker_process(database, broker, "w2") as second:
            await ready(second)  # subscribed: the gateway's reports reach it
            await gw.online("meter-2")  # carries out what waited for it at the broker
            rows = await settled(queue, {Outcome.COMPLETED})
        assert {r.device for r in rows} == {device for device, _ in gw.devices()}
        assert gw.executed == {(device, 5): 1 for device, _ in gw.devices()}
        assert all(r.attempts <= 1 and r.tries == 0 for r in rows)
    await queue.close()


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--broker", "mqtt://127.0.0.1"], 2, "Missing option '--database'"),
        (["--database", "x.db", "--broker", "http://h"], 2, "error: mqtt.url:"),
        (
            ["--database", "x.db", "--broker", "mqtt://h", "--lease", "5", "--timeout", "9"],
            2,
            "error: --lease must be longer than --timeout",
        ),
        (
            ["--database", "x.db", "--broker", "mqtt://h", "--lease", "5", "--timeout", "4"],
            2,
            "error: --lease must be longer than --timeout by more than 1 s",
        ),
    ],
)
def test_bad_options_are_one_line_and_exit_2(arguments: list[str], code: int, message: str) -> None:
    result = CliRunner().invoke(headend, ["worker", *arguments])
    assert result.exit_code == code
    assert message in result.output
    if message.startswith("error:"):  # ours: one line (click's usage errors are its own)
        assert result.output.strip() == result.output.strip().splitlines()[0]


def test_an_unreachable_database_is_one_line_without_the_password() -> None:
    url = f"postgresql://zse:s3cret@127.0.0.1:{free_port()}/db?connect_timeout=2"
    result = CliRunner().invoke(
        headend, ["worker", "--database", url, "--broker", "mqtt://127.0.0.1:1"]
    )
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: postgresql://zse@127.0.0.1:")
    assert "cannot open the work queue" in line
    assert "s3cret" not in result.output
