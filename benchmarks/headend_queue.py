"""The headend's recording of answers and reports on PostgreSQL (issue #19): compare and set
(the default, ``JobQueue._write``: a read and one write) against the locking transaction it
replaced (``BEGIN``, the locked read, the write, ``COMMIT``: ``SWAP_ROUNDS = 0``), in the same
run, on one server (``tests/postgres_server.py``, fsync on).

Per mode, on a schema of its own: N jobs enqueued and claimed by one worker, then recorded as
a headend worker records them at a meter's pace with group commit: the answers in batches of
``--answers`` (18 a transaction in the utility benchmark), then two reports a device (received,
started) in batches of ``--reports`` (9). Figures per device: the client's CPU (this process:
the queue's code and asyncpg), the server's CPU (every process of the server:
``/proc/<pid>/stat``), the wall time. The modes alternate (transaction, swap, swap,
transaction) so that the machine's drift falls on both; the ratios are swap over transaction.

    .venv/bin/python benchmarks/headend_queue.py [--devices 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' server: one way to start PostgreSQL

from _tools import start_postgres  # noqa: E402

from tests.postgres_server import Server, unique_schema  # noqa: E402
from zse.headend import queue as queue_module  # noqa: E402
from zse.headend.core import Outcome, SendKind  # noqa: E402
from zse.headend.queue import Completion, ReportedOutcome, open_queue  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
EVENT = {"issuer_event_id": 4}


def server_cpu(server: Server) -> float:
    """CPU seconds (user + system) of the server's postmaster and its children."""
    pid = int((server.base / "data" / "postmaster.pid").read_text().split()[0])
    pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    total = 0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        total += int(fields[11]) + int(fields[12])
    return total / TICK


async def run(server: Server, mode: str, devices: int, answers: int, reports: int) -> list[float]:
    """One mode: client ms, server ms and wall ms per device."""
    queue_module.SWAP_ROUNDS = 3 if mode == "swap" else 0
    queue = await open_queue(server.store_url(unique_schema(mode)))
    try:
        jobs_of = [(f"000D6F00{n:08X}", f"m{n // 3}") for n in range(devices)]
        await queue.enqueue(1, SendKind.LOAD_CONTROL, EVENT, jobs_of, now=0.0)
        jobs = await queue.claim("a", now=0.0, lease=3600.0, limit=devices)
        told = [
            ReportedOutcome(send=1, device=d, kind=SendKind.LOAD_CONTROL, outcome=o)
            for d, _ in jobs_of
            for o in (Outcome.RECEIVED, Outcome.STARTED)
        ]
        # a first write of each: asyncpg prepares the statements and reads their types
        await queue.complete_many("a", [Completion(job=jobs[0], outcome=Outcome.DELIVERED)], now=1)
        await queue.report_many(told[:2], now=2.0)
        cpu, server_before, wall = time.process_time(), server_cpu(server), time.perf_counter()
        for start_at in range(1, len(jobs), answers):
            part = jobs[start_at : start_at + answers]
            done = [Completion(job=j, outcome=Outcome.DELIVERED) for j in part]
            assert all(await queue.complete_many("a", done, now=1.0))
        for start_at in range(2, len(told), reports):
            assert all(await queue.report_many(told[start_at : start_at + reports], now=2.0))
        figures = [
            time.process_time() - cpu,
            server_cpu(server) - server_before,
            time.perf_counter() - wall,
        ]
        rows = await queue.rows(1)
        assert {(r.outcome, r.attempts, r.state) for r in rows} == {(Outcome.STARTED, 1, "sent")}
    finally:
        await queue.close()
    return [1000 * value / (devices - 1) for value in figures]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=3000)
    parser.add_argument("--answers", type=int, default=18, help="answers a transaction")
    parser.add_argument("--reports", type=int, default=9, help="reports a transaction")
    args = parser.parse_args()
    server = start_postgres(durable=True)
    try:
        measured: dict[str, list[list[float]]] = {"transaction": [], "swap": []}
        for mode in ("transaction", "swap", "swap", "transaction"):
            figures = asyncio.run(run(server, mode, args.devices, args.answers, args.reports))
            measured[mode].append(figures)
    finally:
        server.stop()
    mean = {
        mode: [sum(column) / len(column) for column in zip(*runs, strict=True)]
        for mode, runs in measured.items()
    }
    print(f"{args.devices} devices, {args.answers} answers / {args.reports} reports a write")
    print(f"{'mode':>12} {'client ms/dev':>14} {'server ms/dev':>14} {'wall ms/dev':>12}")
    for mode, runs in measured.items():
        for figures in runs:
            print(
                f"{mode:>12} "
                + " ".join(f"{v:>14.3f}" for v in figures[:2])
                + f" {figures[2]:>12.3f}"
            )
    # "-" where the transaction's figure is 0: under /proc's clock tick, at a few devices
    pairs = zip(mean["swap"], mean["transaction"], strict=True)
    ratios = [f"{s / t:.2f}x" if t else "-" for s, t in pairs]
    print(f"{'swap / tx':>12} " + " ".join(f"{r:>14}" for r in ratios[:2]) + f" {ratios[2]:>12}")


if __name__ == "__main__":
    main()
