"""Issue #19's benchmark: a Load Control Event by group through the headend's path, every
device's report persisted in PostgreSQL.

For each size N (meters, 3 devices each: display, thermostat, load control device), in one run,
on one PostgreSQL (``tests/postgres_server.py``: initdb in a temporary directory, run as an
unprivileged user, fsync on) and one Mosquitto (``tests/mqtt/broker.py``), both on loopback:

1. ``zse sim utility --meters N --devices-per-meter 3 --no-send-events --event-batches``
   comes up (every device joined by install code and keyed by CBKE; each meter's ESI a
   gateway on the broker under ``<base>/<meter>``, which publishes its devices' reports but
   not the ESI's own sends, as a gateway that serves only a headend is configured, ADR 0023;
   ``--send-events on`` publishes them; and its devices' events in batches, ADR 0027;
   ``--event-batches off``: one message each);
2. W ``zse headend worker`` processes start on the queue (the size's own schema) and the broker;
3. the send is enqueued as the headend enqueues a by-group send (``JobQueue.enqueue``: one job
   per device, the call of ``zse.headend.service.Headend._enqueue``), the workers claim the jobs,
   deliver each through its meter's gateway (``load_control`` to the one device), record each
   device's answer, and record each device's Report Event Status as the gateways publish them;
4. the run ends when PostgreSQL holds every device's outcome ``started`` (the rows are counted
   in the database, not in any process's memory); wall time: from the enqueue to the last
   row's ``updated`` (the workers' wall clock).

Checked for every device (in PostgreSQL): outcome ``started``, delivered once (``attempts`` 1,
no retry: ``tries`` and ``failures`` 0), job ``sent``: nothing lost, nothing twice.

Before the sizes, in the same run: a warm-up size (``--warm-up``, 100 meters; left out of the
figures: the first size on a fresh PostgreSQL and broker ran high, docs/performance.md), and
the machine's floor for reading MQTT messages in Python (``mqtt_floor.py``: a bare paho
client, each message decoded and acknowledged; the median of five runs), against which the
headend workers' CPU per device is also given (in floor messages), so that machines can be
compared.

Figures, per size, with the ratio to the first size of the same run (flat: 1.0x):

- CPU time (``/proc/<pid>/stat``, user + system) during step 3, per device: the headend side
  (the workers, and PostgreSQL's processes that outlive the step: postmaster and the workers'
  server processes; the enqueue's and the benchmark's own connections end within the step and
  are left out), the meter side (the utility's workers: simulator, zigpy, zse, each meter's
  bridge and its MQTT client), the broker; the enqueue's wall time apart; the CPU the
  utility's and the headend's workers take doing nothing (10 s before the send: the MQTT
  clients' keepalive), and the meter side less that idle share;
- resident memory (``VmRSS``) of the utility's workers once up, per meter and per device, in
  total and at the margin between two sizes (which leaves the interpreters' own memory out);
  the headend workers' and PostgreSQL's (``VmRSS`` counts shared buffers in each process
  that touched them: an upper bound).

    .venv/bin/python benchmarks/utility_headend.py [--meters 1000,5000] [--headend-workers 2]
        [--warm-up 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mqtt_floor
from utility import DEVICES, children, cpu, rss, running_utility, stop

if TYPE_CHECKING:
    from tests.mqtt.broker import Broker
    from tests.postgres_server import Server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' servers: one way to start PostgreSQL and Mosquitto

#: The send's id (the Load Control Event's issuer event id).
SEND = 0x0B0B_0001
#: Real seconds the fan-out may take (a bound: the wait ends on the last report).
FAN_OUT_WITHIN = 3600
#: Real seconds between counts of the rows in PostgreSQL.
LOOK_EVERY = 1.0
#: What a headend worker says at its end: the MQTT messages it received, and the transactions
#: that recorded the answers and the reports.
RECEIVED = re.compile(r"received (\d+) responses, (\d+) events")
SENT = re.compile(r"sent (\d+) commands in (\d+) publications")
RECORDED = re.compile(r"recorded (\d+) answers in (\d+) transactions, (\d+) reports in (\d+)")
#: Runs of the MQTT floor (``mqtt_floor.py``), their median the figure.
FLOORS = 5
#: Real seconds the processes are watched doing nothing before the send.
IDLE_FOR = 10.0


@dataclass
class Figures:
    meters: int
    up: float = 0.0  # seconds to ready
    wall: float = 0.0  # seconds, enqueue to the last report persisted
    enqueue: float = 0.0  # seconds the enqueue took (one job per device, one transaction)
    headend: float = 0.0  # headend workers' CPU seconds during the fan-out
    postgres: float = 0.0  # PostgreSQL's CPU seconds during the fan-out
    meters_cpu: float = 0.0  # the utility's workers' CPU seconds during the fan-out
    broker: float = 0.0  # the broker's CPU seconds during the fan-out
    rss: int = 0  # bytes, the utility's workers, once up
    idle_meters: float = 0.0  # the utility's workers' CPU seconds per second when idle
    idle_headend: float = 0.0  # the headend workers' CPU seconds per second when idle
    headend_rss: int = 0  # bytes, the headend workers at the end
    postgres_rss: int = 0  # bytes, PostgreSQL's processes at the end (shared pages counted)
    received: list[int] = dataclasses.field(default_factory=list)  # MQTT messages, by worker
    linger: float = 0.0  # the headend workers' --linger
    combine: bool = True  # the headend workers' --combine (False: --no-combine)
    send_events: bool = False  # the utility's --send-events (False: --no-send-events)
    event_batches: bool = True  # the utility's --event-batches (False: --no-event-batches)
    sent: list[int] = dataclasses.field(default_factory=lambda: [0, 0])  # commands, publications
    #: answers, their transactions, reports, their transactions (all the workers)
    recorded: list[int] = dataclasses.field(default_factory=lambda: [0, 0, 0, 0])

    @property
    def devices(self) -> int:
        return self.meters * DEVICES


def tree(pid: int) -> list[int]:
    """``pid`` and its children."""
    return [pid, *children(pid)]


def total_cpu(pids: list[int]) -> float:
    found = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            found += cpu(pid)
    return found


def devices_of(meters: int) -> list[tuple[str, str]]:
    """Every (device, meter) of the utility, as the headend keys them (the jobs' rows)."""
    from zse.installcode import canonical_eui64  # noqa: PLC0415
    from zse.sim.utility import device_eui, meter_eui  # noqa: PLC0415

    return [
        (canonical_eui64(device_eui(index, device)), meter_eui(index).replace(":", ""))
        for index in range(meters)
        for device in range(DEVICES)
    ]


def payload() -> dict[str, int]:
    """The Load Control Event's fields as the headend enqueues them."""
    from zse.drlc import LoadControlEvent  # noqa: PLC0415

    event = LoadControlEvent(
        issuer_event_id=SEND,
        device_class=0x0FFF,
        duration_in_minutes=30,
        criticality_level=1,
        cooling_temperature_set_point=2700,
        duty_cycle=50,
    )
    return dataclasses.asdict(event)


@contextlib.contextmanager
def headend_workers(
    url: str, broker: str, base: str, count: int, batch: int, figures: Figures
) -> Iterator[list[subprocess.Popen[str]]]:
    """``count`` ``zse headend worker`` processes, each once connected to the broker; once
    they stopped, ``figures.received`` holds the MQTT messages each said it received
    (responses and events over its lifetime; none from a worker that does not say) and
    ``figures.recorded`` the transactions they said recorded them."""
    started: list[subprocess.Popen[str]] = []
    try:
        for number in range(count):
            argv = [sys.executable, "-m", "zse", "headend", "worker", "--database", url]
            argv += ["--broker", broker, "--topic-prefix", base, "--id", f"{base}-w{number}"]
            argv += ["--batch", str(batch), "--timeout", "120", "--lease", "300"]
            argv += ["--linger", str(figures.linger)]
            argv += ["--combine" if figures.combine else "--no-combine"]
            started.append(subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True))
        for process in started:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("worker "), f"a headend worker did not start: {line!r}"
        yield started
    finally:
        for process in started:
            process.send_signal(signal.SIGTERM)
            try:
                out, _ = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                stop(process, 0)
                continue
            for said in RECEIVED.finditer(out or ""):
                figures.received.append(int(said[1]) + int(said[2]))
            for said in SENT.finditer(out or ""):
                figures.sent = [
                    a + int(b) for a, b in zip(figures.sent, said.groups(), strict=True)
                ]
            for said in RECORDED.finditer(out or ""):
                figures.recorded = [
                    a + int(b) for a, b in zip(figures.recorded, said.groups(), strict=True)
                ]


async def fan_out(url: str, meters: int) -> tuple[float, float, float]:
    """Enqueue the send and wait until PostgreSQL holds every device's report; (when the
    enqueue began, when it ended, when the last report was recorded), wall-clock seconds."""
    from zse.headend.core import Outcome, SendKind  # noqa: PLC0415
    from zse.headend.queue import open_queue  # noqa: PLC0415

    queue = await open_queue(url)
    counter = await connect(url)
    try:
        began = time.time()
        await queue.enqueue(SEND, SendKind.LOAD_CONTROL, payload(), devices_of(meters), now=0.0)
        enqueued = time.time()
        deadline = time.monotonic() + FAN_OUT_WITHIN
        done = 0
        while time.monotonic() < deadline:
            done = await counter.fetchval(
                "SELECT count(*) FROM headend_jobs WHERE send = $1 AND outcome = 'started'"
                " AND state = 'sent'",
                SEND,
            )
            if done == meters * DEVICES:
                break
            await asyncio.sleep(LOOK_EVERY)
        rows = await queue.rows(SEND)
    finally:
        await counter.close()
        await queue.close()
    assert done == meters * DEVICES, (
        f"after {FAN_OUT_WITHIN} s: {done} of {meters * DEVICES} devices reported"
    )
    assert {device for device, _ in devices_of(meters)} == {r.device for r in rows}
    wrong = [
        r
        for r in rows
        if (r.outcome, r.attempts, r.tries, r.state) != (Outcome.STARTED, 1, 0, "sent")
    ]
    assert not wrong, f"{len(wrong)} devices not delivered exactly once: {wrong[:3]}"
    return began, enqueued, max(r.updated for r in rows)


async def connect(url: str) -> Any:
    """A connection of the benchmark's own (one for the whole run: a new one each second
    would cost PostgreSQL a process each time) in the queue's schema."""
    from zse.store_postgres import connect, parse_url  # noqa: PLC0415

    return await connect(parse_url(url), application="zse-benchmark")


def measure(
    postgres: Server,
    broker: Broker,
    meters: int,
    sim_workers: int,
    workers: int,
    batch: int,
    linger: float,
    combine: bool,
    send_events: bool,
    event_batches: bool,
) -> Figures:
    from tests.postgres_server import unique_schema  # noqa: PLC0415

    assert broker.process is not None
    figures = Figures(
        meters, linger=linger, combine=combine, send_events=send_events, event_batches=event_batches
    )
    base = f"bench{meters}"
    url = postgres.store_url(unique_schema(base))
    events = "--send-events" if send_events else "--no-send-events"
    batches = "--event-batches" if event_batches else "--no-event-batches"
    with running_utility(broker.url, base, meters, sim_workers, events, batches) as (sims, up):
        figures.up = up
        figures.rss = sum(rss(pid) for pid in sims)
        with headend_workers(url, broker.url, base, workers, batch, figures) as running:
            heads = [p.pid for p in running]
            pg = tree(postmaster(postgres))
            idle_from = (total_cpu(sims), total_cpu(heads))
            time.sleep(IDLE_FOR)  # nothing to do: what the processes cost doing nothing
            figures.idle_meters = (total_cpu(sims) - idle_from[0]) / IDLE_FOR
            figures.idle_headend = (total_cpu(heads) - idle_from[1]) / IDLE_FOR
            spies = [spy(pid, f"{SPY[0]}.{meters}.w{n}") for n, pid in enumerate(heads) if SPY]
            before = [total_cpu(heads), total_cpu(pg), total_cpu(sims), cpu(broker.process.pid)]
            began, enqueued, last = asyncio.run(fan_out(url, meters))
            after = [total_cpu(heads), total_cpu(pg), total_cpu(sims), cpu(broker.process.pid)]
            for each in spies:
                each.send_signal(signal.SIGINT)
                each.wait()
            figures.wall = last - began
            figures.enqueue = enqueued - began
            spent = [b - a for a, b in zip(before, after, strict=True)]
            figures.headend, figures.postgres, figures.meters_cpu, figures.broker = spent
            figures.headend_rss = sum(rss(pid) for pid in heads)
            figures.postgres_rss = sum(rss(pid) for pid in tree(postmaster(postgres)))
    return figures


#: ``--py-spy PREFIX`` and ``--py-spy-bin``: record each headend worker during the fan-out.
SPY: list[str] = []


def spy(pid: int, out: str) -> subprocess.Popen[bytes]:
    """py-spy recording ``pid`` to ``out``.txt (collapsed stacks) until SIGINT."""
    argv = [SPY[1], "record", "--pid", str(pid), "--rate", "100", "--nonblocking"]
    return subprocess.Popen([*argv, "-f", "raw", "-o", f"{out}.txt"])


def postmaster(postgres: Server) -> int:
    """The server's postmaster process (the first line of its ``postmaster.pid``)."""
    return int((postgres.base / "data" / "postmaster.pid").read_text().split()[0])


def report(runs: list[Figures], floor: float) -> None:
    """Print the figures of ``runs`` (ratios to the first), ``floor`` the seconds of CPU a
    message of :mod:`mqtt_floor` (measured in the same run)."""
    ref = runs[0]

    def ms(seconds: float, f: Figures) -> float:
        return 1000 * seconds / f.devices

    def ratio(value: float, reference: float) -> str:
        return f"{value / reference:5.2f}x" if reference else "   - "

    print(
        f"{'meters':>7} {'linger':>6} {'comb':>4} {'sent':>4} {'evb':>4} {'devices':>8} "
        f"{'up s':>7} "
        f"{'wall s':>8} {'dev/s':>7} "
        f"{'headend ms/dev':>16} {'pg ms/dev':>15} {'meters ms/dev':>16} {'broker ms/dev':>14} "
        f"{'RSS MB/meter':>16}"
    )
    for f in runs:
        columns = [
            (ms(f.headend, f), ms(ref.headend, ref)),
            (ms(f.postgres, f), ms(ref.postgres, ref)),
            (ms(f.meters_cpu, f), ms(ref.meters_cpu, ref)),
        ]
        cells = " ".join(f"{v:>9.3f} {ratio(v, r)}" for v, r in columns)
        per_meter = f.rss / f.meters / 2**20
        print(
            f"{f.meters:>7} {f.linger:>6} {'on' if f.combine else 'off':>4} "
            f"{'on' if f.send_events else 'off':>4} "
            f"{'on' if f.event_batches else 'off':>4} {f.devices:>8} "
            f"{f.up:>7.0f} {f.wall:>8.1f} "
            f"{f.devices / f.wall:>7.1f} "
            f"{cells} {ms(f.broker, f):>14.3f} "
            f"{per_meter:>9.2f} {ratio(per_meter, ref.rss / ref.meters / 2**20)}"
        )

    def busy(f: Figures) -> float:  # the meters' CPU less what they take doing nothing
        return ms(f.meters_cpu - f.idle_meters * f.wall, f)

    for f in runs:
        print(
            f"{f.meters} meters: idle, the utility's workers take {f.idle_meters:.3f} CPU s/s "
            f"and the headend workers {f.idle_headend:.3f}: meters' CPU less that idle share "
            f"{busy(f):.3f} ms/device ({ratio(busy(f), busy(ref))})"
        )
    for f in runs:
        print(
            f"{f.meters} meters: enqueue {f.enqueue:.2f} s; "
            f"headend workers {f.headend_rss / 2**20:.0f} MB, "
            f"PostgreSQL {f.postgres_rss / 2**20:.0f} MB (RSS, shared pages in each process)"
        )
    for f in runs:
        answers, answer_writes, reports, report_writes = f.recorded
        if answer_writes and report_writes:
            print(
                f"{f.meters} meters, linger {f.linger} s: {answers} answers in {answer_writes} "
                f"transactions ({answers / answer_writes:.1f} each), {reports} reports in "
                f"{report_writes} ({reports / report_writes:.1f} each)"
            )
    for f in runs:
        commands, publications = f.sent
        if publications:
            print(
                f"{f.meters} meters, combine {'on' if f.combine else 'off'}: {commands} commands"
                f" in {publications} publications ({commands / publications:.2f} each)"
            )
    for f in runs:
        if f.received:
            each = ", ".join(f"{n / f.devices:.2f}" for n in f.received)
            print(
                f"{f.meters} meters: MQTT messages received per device by each headend worker "
                f"{each} (all {sum(f.received) / f.devices:.2f})"
            )
    print(
        f"floor (benchmarks/mqtt_floor.py, same broker): {floor * 1e6:.1f} µs CPU a message "
        f"(a bare paho client: decoded, acknowledged; the median of {FLOORS} runs)"
    )
    for f in runs:
        print(
            f"{f.meters} meters: headend workers' CPU per device "
            f"{f.headend / f.devices / floor:.1f} floor messages"
            + (f" ({sum(f.received) / f.devices:.2f} received)" if f.received else "")
        )
    for low, high in itertools.pairwise(runs):
        if low.meters == high.meters:
            continue
        margin = (high.rss - low.rss) / (high.meters - low.meters) / 2**20
        wall = (high.wall / high.devices) / (low.wall / low.devices)
        print(
            f"{low.meters} -> {high.meters}: RSS at the margin {margin:.3f} MB/meter "
            f"({margin / DEVICES:.3f} MB/device); wall time per device {wall:.2f}x"
        )


def main() -> None:
    from _tools import start_broker, start_postgres  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", default="1000,5000", help="sizes, comma-separated")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="utility's")
    parser.add_argument("--headend-workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16, help="jobs a headend worker claims")
    parser.add_argument(
        "--linger", default="0.25", help="the headend workers' --linger: values, comma-separated"
    )
    parser.add_argument(
        "--combine", default="on", help="the headend workers' --combine: on, off or on,off"
    )
    parser.add_argument(
        "--send-events",
        default="off",
        help="the utility's --send-events (the ESI's own sends published): off, on or off,on",
    )
    parser.add_argument(
        "--warm-up",
        type=int,
        default=100,
        help="meters of a first run left out of the figures (0: none): the first size of a "
        "run on a fresh PostgreSQL and broker runs high",
    )
    parser.add_argument(
        "--event-batches",
        default="on",
        help="the utility's --event-batches (its devices' events in batches, ADR 0027): on, "
        "off or on,off",
    )
    parser.add_argument("--floor-messages", type=int, default=20_000, help="mqtt_floor.py's")
    parser.add_argument(
        "--py-spy", help="record each headend worker during the fan-out: PREFIX.N.wK.txt"
    )
    parser.add_argument("--py-spy-bin", default=shutil.which("py-spy") or "py-spy")
    args = parser.parse_args()
    if args.py_spy:
        SPY[:] = [args.py_spy, args.py_spy_bin]
    sizes = [int(size) for size in args.meters.split(",")]
    lingers = [float(value) for value in args.linger.split(",")]
    combines = [value.strip() == "on" for value in args.combine.split(",")]
    sends = [value.strip() == "on" for value in args.send_events.split(",")]
    batched = [value.strip() == "on" for value in args.event_batches.split(",")]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        broker = start_broker(Path(tmp))
        stack.callback(broker.stop)
        postgres = start_postgres(durable=True)
        stack.callback(postgres.stop)
        floors = [mqtt_floor.measure(broker.port, args.floor_messages) for _ in range(FLOORS)]
        floor = statistics.median(floors)  # one run of it moves by half on a shared VM
        said = ", ".join(f"{each * 1e6:.1f}" for each in floors)
        print(f"# floor: {said} µs a message", file=sys.stderr, flush=True)
        if args.warm_up:
            options = (args.workers, args.headend_workers, args.batch, lingers[0], combines[0])
            warm = measure(postgres, broker, args.warm_up, *options, sends[0], batched[0])
            print(f"# warm-up, left out: {warm}", file=sys.stderr, flush=True)
        runs = []
        product = itertools.product(sizes, lingers, combines, sends, batched)
        for meters, linger, combine, send, batches in product:
            options = (args.workers, args.headend_workers, args.batch, linger, combine, send)
            runs.append(measure(postgres, broker, meters, *options, batches))
            print(f"# {meters} meters measured: {runs[-1]}", file=sys.stderr, flush=True)
        report(runs, floor)


if __name__ == "__main__":
    main()
