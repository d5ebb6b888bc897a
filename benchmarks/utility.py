"""The simulated utility at scale (issue #19): a Load Control Event to every meter through the
broker, and every device's report back.

For each size N (meters, 3 devices each: display, thermostat, load control device), on a real
Mosquitto on a free loopback port (as the tests start it), in one run:

1. ``zse sim utility --meters N --devices-per-meter 3 --workers W --speed 1`` comes up
   (every device joined by install code and keyed by CBKE; the time to ``ready`` is printed,
   not a goal: it is CBKE's arithmetic, ``benchmarks/cbke.py``);
2. a headend client (aiomqtt, in this process) subscribed to the meters' answers and the
   devices' reports publishes one ``load_control`` command (QoS 1, registry group
   ``utility``) to each meter's ``<base>/<meter>/bridge/request/load_control`` and waits
   for N answers (with each device's outcome) and the first Report Event Status of every
   device (3N); wall time from the first command to the last report;
3. the workers' CPU time (``/proc/<pid>/stat``, user + system) spent during step 2, per
   device: the library's time (simulator, zigpy, zse, the bridge, its MQTT client) for one
   event out and one report back; their resident memory (``VmRSS``) once up, per meter and
   per device, in total and at the margin between two sizes (which leaves the interpreters'
   own memory out).

Every figure is printed with its ratio to the smallest size of the same run (the reference):
flat is 1.0x.

    .venv/bin/python benchmarks/utility.py [--meters 100,1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' broker: one way to start Mosquitto

DEVICES = 3
EVENT = 0x0B0B_0001
#: Real seconds a size may take to come up (a bound: the wait ends on ``ready``).
UP_WITHIN = 4 * 3600
#: Real seconds the fan-out may take (a bound: the wait ends on the last report).
FAN_OUT_WITHIN = 1800


@dataclass
class Figures:
    meters: int
    up: float = 0.0  # seconds to ready
    wall: float = 0.0  # seconds, first command to last report
    cpu: float = 0.0  # workers' CPU seconds during the fan-out
    rss: int = 0  # bytes, all workers, once up

    @property
    def devices(self) -> int:
        return self.meters * DEVICES


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def fan_out(port: int, base: str, meters: int) -> float:
    """One load_control per meter; seconds until every answer and every device's report."""
    import aiomqtt  # noqa: PLC0415

    from zse.sim.utility import meter_topic  # noqa: PLC0415

    command = {
        "group": "utility",
        "event": {
            "issuer_event_id": EVENT,
            "device_class": 0x0FFF,
            "duration_in_minutes": 30,
            "criticality_level": 1,
            "cooling_temperature_set_point": 2700,
            "duty_cycle": 50,
        },
    }
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-headend-{base}") as client:
        await client.subscribe(f"{base}/+/bridge/response/load_control", qos=1)
        await client.subscribe(f"{base}/+/+/drlc", qos=1)
        began = time.perf_counter()
        for index in range(meters):
            payload = json.dumps({**command, "correlation_id": f"lc-{index}"})
            await client.publish(
                f"{meter_topic(base, index)}/bridge/request/load_control", payload, qos=1
            )
        answered: set[str] = set()
        reported: set[str] = set()
        try:
            async with asyncio.timeout(FAN_OUT_WITHIN):
                return await _collect(client, meters, began, answered, reported)
        except TimeoutError:
            raise AssertionError(
                f"after {FAN_OUT_WITHIN} s: {len(answered)} of {meters} answers, "
                f"{len(reported)} of {meters * DEVICES} devices reported"
            ) from None


async def _collect(
    client: Any, meters: int, began: float, answered: set[str], reported: set[str]
) -> float:
    async for message in client.messages:
        topic = str(message.topic)
        body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
        if "/bridge/response/" in topic:
            outcomes = body["result"]["outcomes"]
            assert [o["outcome"] for o in outcomes] == ["delivered"] * DEVICES, body
            answered.add(topic)
        elif body.get("event") == "ReportReceived":
            assert body["report"]["issuer_event_id"] == EVENT
            reported.add(body["device"])
        if len(answered) == meters and len(reported) == meters * DEVICES:
            return time.perf_counter() - began
    raise AssertionError("the broker went away")


def ready(process: subprocess.Popen[str]) -> None:
    """Wait (bounded) for the utility's ``ready`` line."""
    assert process.stdout is not None
    deadline = time.monotonic() + UP_WITHIN
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "not up in time"
            assert selector.select(left), "not up in time"
            line = process.stdout.readline()
            assert line, f"the utility ended: {process.wait()}"
            if line.startswith("ready:"):
                return


@contextlib.contextmanager
def running_utility(
    broker_url: str, base: str, meters: int, workers: int, *options: str
) -> Iterator[tuple[list[int], float]]:
    """``zse sim utility`` with ``meters`` meters of 3 devices under ``base`` (and
    ``options``), once ready: its workers' pids and the seconds it took to come up; stopped
    on the way out."""
    argv = [sys.executable, "-m", "zse", "sim", "utility", "--meters", str(meters)]
    argv += ["--devices-per-meter", str(DEVICES), "--workers", str(workers)]
    argv += ["--broker", broker_url, "--base-topic", base, "--speed", "1", *options]
    began = time.perf_counter()
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        ready(process)
        yield children(process.pid), time.perf_counter() - began
    finally:
        stop(process, 300)


def measure(broker_url: str, port: int, meters: int, workers: int) -> Figures:
    figures = Figures(meters)
    base = f"bench{meters}"
    with running_utility(broker_url, base, meters, workers) as (pids, up):
        figures.up = up
        figures.rss = sum(rss(pid) for pid in pids)
        before = sum(cpu(pid) for pid in pids)
        figures.wall = asyncio.run(fan_out(port, base, meters))
        figures.cpu = sum(cpu(pid) for pid in pids) - before
    return figures


def stop(process: subprocess.Popen[str], within: float) -> None:
    """SIGTERM, and SIGKILL if it has not ended ``within`` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def report(runs: list[Figures]) -> None:
    ref = runs[0]

    def ratio(value: float, reference: float) -> str:
        return f"{value / reference:5.2f}x" if reference else "   - "

    print(
        f"{'meters':>7} {'devices':>8} {'up s':>8} {'fan-out s':>10} "
        f"{'CPU ms/device':>18} {'RSS MB/meter':>18} {'RSS MB/device':>14}"
    )
    for f in runs:
        per_device = 1000 * f.cpu / f.devices
        per_meter = f.rss / f.meters / 2**20
        print(
            f"{f.meters:>7} {f.devices:>8} {f.up:>8.1f} {f.wall:>10.2f} "
            f"{per_device:>10.3f} {ratio(per_device, 1000 * ref.cpu / ref.devices)} "
            f"{per_meter:>10.2f} {ratio(per_meter, ref.rss / ref.meters / 2**20)} "
            f"{per_meter / DEVICES:>14.3f}"
        )
    for low, high in itertools.pairwise(runs):
        margin = (high.rss - low.rss) / (high.meters - low.meters) / 2**20
        growth = (high.cpu / high.devices) / (low.cpu / low.devices) if low.cpu else 0.0
        print(
            f"{low.meters} -> {high.meters}: RSS at the margin {margin:.3f} MB/meter "
            f"({margin / DEVICES:.3f} MB/device); CPU per device {growth:.2f}x; "
            f"fan-out wall per device {(high.wall / high.devices) / (low.wall / low.devices):.2f}x"
        )


def main() -> None:
    from _tools import start_broker  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", default="100,1000", help="sizes, comma-separated")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    sizes = [int(size) for size in args.meters.split(",")]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        broker = start_broker(Path(tmp))
        stack.callback(broker.stop)
        runs = []
        for meters in sizes:
            runs.append(measure(broker.url, broker.port, meters, args.workers))
            print(f"# {meters} meters measured", file=sys.stderr, flush=True)
        report(runs)


if __name__ == "__main__":
    main()
