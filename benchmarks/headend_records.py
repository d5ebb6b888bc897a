"""What a stored report costs an ESI as the number of devices grows (a headend's view).

A ``DrlcServer`` with a ``zse.store.Store`` (SQLite through aiosqlite) publishes one event to
N devices and then receives a Report Event Status from each, through the handler the endpoint
would call (decoding, recording, committing). Every report is committed before it is
acknowledged, so the floor is one SQLite transaction per report. Measured in the same run:

- zse: mean time per report while N devices report, for a small and a large N;
- reference: a bare aiosqlite ``INSERT`` + ``COMMIT`` of a row of a similar size, per row,
  with the durability ``zse.store`` asks for (WAL, ``synchronous=FULL``);
- for comparison, what one report would cost if the server rewrote its whole state as one
  record (how zse stored it before), at the large N.

Goals: a report costs at most 3x the bare insert, and the large N costs at most 1.5x per
report what the small N does (no growth with the number of devices). Exits 1 if one is missed
(``--no-goal``: report only, for a smoke run at a few devices, where fixed costs dominate).

    .venv/bin/python benchmarks/headend_records.py [--small 1000] [--large 20000] [--no-goal]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiosqlite

from zse.drlc import LoadControlEvent, Status
from zse.drlc.service import DRLC, DrlcServer
from zse.store import Batch, Store
from zse.zcl.endpoint import ZclMessage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' stand-in endpoint
from tests.services.test_server_records import Port, report_frame

START = 800_000_000
GOAL_VS_BARE = 3.0
GOAL_GROWTH = 1.5


def frame(device: int) -> ZclMessage:
    return report_frame(device, Status.RECEIVED, START + 1)


async def zse_per_report(path: Path, devices: int) -> tuple[float, DrlcServer]:
    async with await Store.open(path) as store:
        port = Port()
        server = DrlcServer(port, clock=lambda: START, store=store)
        await server.start()
        event = LoadControlEvent(
            issuer_event_id=1,
            device_class=0x0080,
            start_time=START + 60,
            duration_in_minutes=30,
            criticality_level=3,
        )
        await server.publish(event)
        handler = port.handlers[DRLC]
        frames = [frame(d) for d in range(devices)]
        began = time.perf_counter()
        for f in frames:
            await handler(f)
        elapsed = time.perf_counter() - began
        assert len(server.core.view(1)) == devices
    return elapsed / devices, server


async def bare_per_row(path: Path, rows: int, value: str) -> float:
    async with aiosqlite.connect(path) as db:
        # The durability zse.store asks for: write-ahead log, fsync at every commit.
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("CREATE TABLE r (namespace TEXT, key TEXT, value TEXT)")
        await db.commit()
        began = time.perf_counter()
        for i in range(rows):
            await db.execute("INSERT INTO r VALUES (?, ?, ?)", ("drlc.server/9", str(i), value))
            await db.commit()
        return (time.perf_counter() - began) / rows


async def whole_state_per_report(path: Path, server: DrlcServer, samples: int) -> float:
    snapshot = server.core.snapshot()
    async with await Store.open(path) as store:
        began = time.perf_counter()
        for _ in range(samples):
            await store.commit(Batch().put("drlc.server/9", "state", server.core.snapshot()))
        elapsed = time.perf_counter() - began
    assert snapshot == server.core.snapshot()
    return elapsed / samples


async def main(small: int, large: int, judge: bool = True) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        value = json.dumps({"device": "00:0d:6f:00:00:00:00:01", "report": {"x": 0}, "signed": 0})
        bare = await bare_per_row(root / "bare.db", small, value * 3)
        small_cost, _ = await zse_per_report(root / "small.db", small)
        large_cost, server = await zse_per_report(root / "large.db", large)
        whole = await whole_state_per_report(root / "whole.db", server, 20)
    vs_bare = small_cost / bare
    growth = large_cost / small_cost
    print(f"bare aiosqlite INSERT + COMMIT           {bare * 1e3:8.3f} ms/row")
    print(f"zse report, {small:>6} devices            {small_cost * 1e3:8.3f} ms/report")
    print(f"zse report, {large:>6} devices            {large_cost * 1e3:8.3f} ms/report")
    print(f"whole state rewritten, {large:>6} devices {whole * 1e3:8.3f} ms/report")
    print(f"zse / bare insert: {vs_bare:.2f}x (goal <= {GOAL_VS_BARE}x)")
    print(f"{large} / {small} devices, per report: {growth:.2f}x (goal <= {GOAL_GROWTH}x)")
    print(f"whole-state rewrite / zse at {large}: {whole / large_cost:.0f}x")
    return 0 if not judge or (vs_bare <= GOAL_VS_BARE and growth <= GOAL_GROWTH) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--no-goal", action="store_true", help="report only (smoke test)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.small, args.large, not args.no_goal)))
