"""The meter side's CPU per device for one Load Control Event (issue #19 goal: <= 1 ms),
measured over several fan-outs to the same meters, so that bring-up (joins, CBKE) is out.

On a real Mosquitto (loopback), ``zse sim utility --meters N --devices-per-meter 3
--workers 1`` comes up once; then ``--rounds R`` times a headend client (aiomqtt, in this
process) publishes one ``load_control`` (QoS 1, registry group ``utility``, a new issuer
event id each round) to every meter and waits for every meter's answer and every device's
first Report Event Status of that event. Per round: the worker's CPU time (``/proc``, user
+ system) from the first command to the last report, per device. The worker's idle CPU
(its MQTT clients' keep-alive wake-ups, the clock) is measured over ``--idle`` seconds before
the rounds and printed apart, per second, so a round's figure can be read with it.

``--py-spy FILE`` records the worker with py-spy (``py-spy`` on PATH or ``--py-spy-bin``)
during the rounds only (bring-up left out) to FILE.txt (collapsed stacks); ``--top
FILE.txt`` prints where the main thread's samples went (by part, then the top functions).
``--cprofile FILE`` runs cProfile in the worker during the rounds instead (FILE.<pid>,
pstats: call counts, with cProfile's overhead on the field arithmetic). ``--event-batches``:
the meters' gateways send their devices' events in batches (ADR 0027).

    .venv/bin/python benchmarks/meter_cpu.py [--meters 100] [--rounds 5] [--py-spy prof]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from utility import DEVICES, children, cpu, ready  # noqa: E402

#: Put on the worker's PYTHONPATH for ``--cprofile``: SIGUSR1 starts cProfile in the
#: process, SIGUSR2 stops it and writes ``$ZSE_BENCH_CPROFILE.<pid>`` (pstats).
_SITECUSTOMIZE = """
import os, signal
if os.environ.get("ZSE_BENCH_CPROFILE"):
    import cProfile
    _profile = cProfile.Profile()
    def _start(*_):
        _profile.enable()
    def _stop(*_):
        _profile.disable()
        _profile.dump_stats(os.environ["ZSE_BENCH_CPROFILE"] + "." + str(os.getpid()))
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
"""

#: Real seconds one round may take (a bound: the wait ends on the last report).
ROUND_WITHIN = 600


def threads_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of the worker's main thread and of all its other threads
    (the SQLite connections' threads, the loop's executor) together."""
    main = other = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            fields = (task / "stat").read_text().rpartition(")")[2].split()
            seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            if int(task.name) == pid:
                main += seconds
            else:
                other += seconds
    return main, other


def _command(event: int, correlation: str) -> str:
    return json.dumps(
        {
            "group": "utility",
            "correlation_id": correlation,
            "event": {
                "issuer_event_id": event,
                "device_class": 0x0FFF,
                "duration_in_minutes": 30,
                "criticality_level": 1,
                "cooling_temperature_set_point": 2700,
                "duty_cycle": 50,
            },
        }
    )


async def _round(client: Any, base: str, meters: int, event: int) -> None:
    """One load_control per meter; returns once every answer and every device's first
    report of ``event`` arrived (reports of earlier events, e.g. superseded, are ignored)."""
    from zse.sim.utility import meter_topic  # noqa: PLC0415

    for index in range(meters):
        await client.publish(
            f"{meter_topic(base, index)}/bridge/request/load_control",
            _command(event, f"lc-{event}-{index}"),
            qos=1,
        )
    answered: set[str] = set()
    reported: set[str] = set()
    async with asyncio.timeout(ROUND_WITHIN):
        async for message in client.messages:
            topic = str(message.topic)
            body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            if "/bridge/response/" in topic:
                if body.get("correlation_id", "").startswith(f"lc-{event}-"):
                    outcomes = body["result"]["outcomes"]
                    assert [o["outcome"] for o in outcomes] == ["delivered"] * DEVICES, body
                    answered.add(topic)
            else:  # a device's event, alone or in a batch (``--event-batches``)
                events = [e["payload"] for e in body["events"]] if "events" in body else [body]
                for told in events:
                    report = told.get("report") if told.get("event") == "ReportReceived" else None
                    if report is not None and report["issuer_event_id"] == event:
                        reported.add(told["device"])
            if len(answered) == meters and len(reported) == meters * DEVICES:
                return
    raise AssertionError("the broker went away")


async def _rounds(
    port: int, base: str, meters: int, rounds: int, pid: int, idle: float
) -> tuple[float, list[tuple[float, float, float]]]:
    import aiomqtt  # noqa: PLC0415

    out = []
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-cpu-{base}") as client:
        await client.subscribe(f"{base}/+/bridge/response/load_control", qos=1)
        await client.subscribe(f"{base}/+/+/drlc", qos=1)
        await client.subscribe(f"{base}/+/bridge/events", qos=1)
        before = cpu(pid)
        await asyncio.sleep(idle)  # a measured interval of real time, not a wait for a result
        idle_rate = (cpu(pid) - before) / idle
        for number in range(rounds):
            before, began = threads_cpu(pid), time.perf_counter()
            await _round(client, base, meters, 0x0C0C_0000 + number)
            after = threads_cpu(pid)
            wall = time.perf_counter() - began
            out.append((after[0] - before[0], after[1] - before[1], wall))
    return idle_rate, out


def _spy(binary: str, pid: int, prefix: str, rate: int) -> list[subprocess.Popen[bytes]]:
    common = ["record", "--pid", str(pid), "--rate", str(rate), "--nonblocking"]
    return [subprocess.Popen([binary, *common, "-f", "raw", "-o", f"{prefix}.txt"])]


#: Where a main-thread sample goes: the first category (in this order) one of whose markers
#: is in a frame of its stack.
BUCKETS = (
    ("ECDSA verify (ESI: Report Event Status)", ("verify_digest (zse/cbke/ecdsa.py",)),
    ("ECDSA sign (simulated devices)", ("sign_digest (zse/cbke/ecdsa.py",)),
    ("stores (zse.store, aiosqlite)", ("zse/store.py", "aiosqlite/", "zse/store_sqlite.py")),
    ("MQTT client (paho, aiomqtt)", ("paho/", "aiomqtt/")),
    ("MQTT bridge (zse.mqtt)", ("zse/mqtt/",)),
    ("simulated air and nodes (zse.sim)", ("zse/sim/_air.py", "zse/sim/_node.py")),
    ("DRLC cores and services", ("zse/drlc/",)),
    ("ZCL endpoints, delivery, codecs", ("zse/zcl/",)),
    ("zigpy", ("zigpy/",)),
    ("ESI, registry, other zse (and zigpy-side decoding)", ("zse/",)),
    ("event loop (asyncio, selectors)", ("asyncio/", "selectors.py")),
)


def top(collapsed: Path, count: int = 20) -> None:
    """The top functions of py-spy's collapsed stacks of the worker's main thread (the
    loop: stacks through ``_worker_main``), own share and total (inclusive); then the share
    of the samples in which the SQLite connections' threads were running a statement."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = sqlite = waiting = 0
    buckets: collections.Counter[str] = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():  # a line py-spy cut short (a sample it could not finish)
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        weight = int(n)
        if any("_connection_worker_thread" in f for f in frames):
            if frames[-1].startswith("_connection_worker_thread"):
                waiting += weight  # SimpleQueue.get: waiting for work (py-spy counts it)
            else:
                sqlite += weight
            continue
        if not any(f.startswith("_worker_main ") for f in frames):
            continue
        samples += weight
        inner = [f for f in frames if "zse/sim/utility.py" not in f]  # every stack's root
        bucket = next(
            (name for name, marks in BUCKETS if any(m in f for f in inner for m in marks)),
            "other",
        )
        buckets[bucket] += weight
        own[frames[-1]] += weight
        for frame in set(frames):
            total[frame] += weight
    print(f"main thread: {samples} samples; SQLite threads busy in {sqlite} more")
    for name, n in buckets.most_common():
        print(f"  {100 * n / samples:5.1f}%  {name}")
    print("own time (main thread):")
    for frame, n in own.most_common(count):
        print(f"  {100 * n / samples:5.1f}%  {frame}")
    print("inclusive:")
    for frame, n in total.most_common(count * 2):
        print(f"  {100 * n / samples:5.1f}%  {frame}")


def main() -> None:
    from _tools import start_broker  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle measured")
    parser.add_argument("--py-spy", dest="spy", help="record the worker to FILE.txt")
    parser.add_argument("--py-spy-bin", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--cprofile", help="cProfile the worker's rounds to FILE.<pid>")
    parser.add_argument("--top", type=Path, help="print the top of collapsed stacks; no run")
    parser.add_argument(
        "--event-batches",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="the gateways' devices' events in batches (zse sim utility's, ADR 0027)",
    )
    args = parser.parse_args()
    if args.top:
        top(args.top)
        return
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        broker = start_broker(Path(tmp))
        stack.callback(broker.stop)
        base = f"cpu{args.meters}"
        argv = [sys.executable, "-m", "zse", "sim", "utility", "--meters", str(args.meters)]
        argv += ["--devices-per-meter", str(DEVICES), "--workers", "1"]
        argv += ["--broker", broker.url, "--base-topic", base, "--speed", "1"]
        argv += ["--event-batches" if args.event_batches else "--no-event-batches"]
        began = time.perf_counter()
        env = dict(os.environ)
        if args.cprofile:
            Path(tmp, "sitecustomize.py").write_text(_SITECUSTOMIZE)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, (tmp, env.get("PYTHONPATH"))))
            env["ZSE_BENCH_CPROFILE"] = str(Path(args.cprofile).resolve())
        process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
        spies: list[subprocess.Popen[bytes]] = []
        try:
            ready(process)
            up = time.perf_counter() - began
            (pid,) = children(process.pid)
            if args.spy:
                spies = _spy(args.py_spy_bin, pid, args.spy, args.rate)
            if args.cprofile:
                os.kill(pid, signal.SIGUSR1)
            idle, rounds = asyncio.run(
                _rounds(broker.port, base, args.meters, args.rounds, pid, args.idle)
            )
            if args.cprofile:
                os.kill(pid, signal.SIGUSR2)
                print(f"cProfile: {args.cprofile}.{pid}", file=sys.stderr)
        finally:
            for spy in spies:
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                spy.wait()
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=120)
    devices = args.meters * DEVICES
    print(f"{args.meters} meters, {devices} devices, up in {up:.1f} s (pid {os.getpid()})")
    print(f"idle: {1000 * idle:.1f} ms CPU per second ({1000 * idle / devices:.3f} per device)")
    per_device = [1000 * (main + other) / devices for main, other, _ in rounds]
    for number, ((main, other, wall), ms) in enumerate(zip(rounds, per_device, strict=True)):
        print(
            f"round {number}: {wall:6.2f} s wall, CPU {main:6.2f} s main thread + "
            f"{other:6.2f} s other threads: {ms:7.3f} ms CPU/device"
        )
    print(
        f"CPU per device: median {statistics.median(per_device):.3f} ms, "
        f"best {min(per_device):.3f} ms (round 0 included)"
    )


if __name__ == "__main__":
    main()
