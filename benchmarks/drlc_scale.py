"""DRLC at scale: one Load Control Event sent by ZigBee group to N simulated HAN devices.

A zigpy ESI (``SeEndpoint`` + ``DrlcServer``) and N devices joined with their install codes,
each running a ``DrlcClient`` on its endpoint, on virtual time. The ESI publishes one event
(randomized start and end, 30 minutes) to a ZigBee group every device belongs to; each device
reports Received, Started and Completed, and the ESI acknowledges each report. Measured from
publishing to the last report recorded:

- library time per device: wall time / N, from a run without tracemalloc or a profiler;
- where that time goes (cProfile, self time by package, from a second run): zse's own code,
  the simulator (``zse.sim``, the stand-in for a radio), zigpy, and Python (asyncio, stdlib);
- frames on the air, and peak memory: tracemalloc's peak over a third, whole run (joins
  included; the goal applies to it), and for information the process's peak resident set
  size after the untraced run and after the imports alone (interpreter, zigpy, zse).

Goals (issue 8): <= 1 ms per device, <= 200 MB (10^6 bytes). Exits 1 if one is missed
(``--no-goal``: report only), or if a device misses one of its three reports.

    .venv/bin/python benchmarks/drlc_scale.py [--devices 1000] [--seed 1] [--no-goal]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import logging
import pstats
import random
import resource
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass

import zigpy.types as t
from _han import join_devices

from zse.drlc import LoadControlEvent, Status
from zse.drlc.service import DRLC, DrlcClient, DrlcServer, ReportReceived
from zse.sim import Air, SimDevice, run
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

GROUP = 0x0E01
START = 800_000_000  # ZigBee UTCTime at virtual time 0
SIMPLE_MISC_LOADS = 0x0080
GOAL_MS_PER_DEVICE = 1.0
GOAL_MB = 200.0
REPORTS = (Status.RECEIVED, Status.STARTED, Status.COMPLETED)


@dataclass
class Result:
    devices: int
    wall: float  # seconds, publish -> last report
    frames: int
    simulated: float  # virtual seconds of the event phase
    reports: Counter[int]
    complete: int  # devices whose reports are exactly Received, Started, Completed
    setup: float  # wall seconds for joins and clients


async def scenario(devices: int, seed: int, profiler: cProfile.Profile | None) -> Result:
    air = Air(seed=seed)
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    wall0 = time.perf_counter()
    esi = await air.coordinator(channel=15)
    se = SeEndpoint(esi, in_clusters=[DRLC])
    await se.start()
    server = DrlcServer(se, clock=clock)
    await server.start()

    def load_control_device(device: SimDevice, _: int) -> None:
        device.add_endpoint(1, device_type=0x0504, out_clusters=[DRLC]).add_group(GROUP)

    sims = await join_devices(air, esi, devices, load_control_device)
    for i, device in enumerate(sims):
        client = DrlcClient(
            device.endpoints[1],
            server_ep=SE_ENDPOINT_ID,
            device_class=SIMPLE_MISC_LOADS,
            start_randomization_minutes=5,
            duration_randomization_minutes=5,
            clock=clock,
            rng=random.Random(seed * 1_000_003 + i),
        )
        await client.start(get_scheduled_events=False)
    setup = time.perf_counter() - wall0

    received: list[ReportReceived] = []
    server.on_event(received.append)
    all_done = loop.create_future()

    def count(report: ReportReceived) -> None:
        if len(received) == len(REPORTS) * devices and not all_done.done():
            all_done.set_result(None)

    server.on_event(count)
    event = LoadControlEvent(
        issuer_event_id=1,
        device_class=SIMPLE_MISC_LOADS,
        start_time=clock() + 60,
        duration_in_minutes=30,
        criticality_level=0x04,
        duty_cycle=50,
        event_control=0x03,  # randomized start and end
    )
    names = [str(device.ieee) for device in sims]
    frames0, sim0 = air.stats.transmitted, loop.time()
    # The 1,000-device network built above is long-lived: collect it once and move it out of
    # the collector's generations (as a long-running headend would after start-up), so that
    # the measured phase is not charged for re-scanning setup objects at random moments.
    gc.collect()
    gc.freeze()
    if profiler is not None:
        profiler.enable()
    wall0 = time.perf_counter()
    await server.publish(event, dst=GROUP, dst_mode=t.AddrMode.Group, expected=names)
    async with asyncio.timeout(4 * 3600):
        await all_done
    wall = time.perf_counter() - wall0
    if profiler is not None:
        profiler.disable()
    view = server.core.view(1)
    complete = sum(
        1 for name in names if name in view and [s for s, _ in view[name].statuses] == list(REPORTS)
    )
    return Result(
        devices=devices,
        wall=wall,
        frames=air.stats.transmitted - frames0,
        simulated=loop.time() - sim0,
        reports=Counter(r.report.event_status for r in received),
        complete=complete,
        setup=setup,
    )


def _package(filename: str) -> str:
    path = filename.replace("\\", "/")
    if "/zse/sim/" in path:
        return "zse.sim (simulated radio and air)"
    if "/zse/" in path:
        return "zse (library)"
    if "/zigpy/" in path:
        return "zigpy"
    if "/asyncio/" in path:
        return "asyncio (event loop, tasks)"
    return ""  # builtins and the rest of the stdlib: charged to whoever called them


def shares(profiler: cProfile.Profile) -> dict[str, float]:
    """Self time by package, as fractions of the profiled total. Built-in and stdlib
    functions (``inspect`` under zigpy's structs, ``dataclasses`` under zse...) count for
    the packages that called them, in proportion, going up the callers until one is known."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def owners(func: tuple[str, int, str], depth: int = 0) -> Counter[str]:
        package = _package(func[0])
        if package or depth > 8 or func not in stats:
            return Counter({package or "Python stdlib": 1.0})
        callers = stats[func][4]
        weights = {caller: edge[3] for caller, edge in callers.items()}  # cumulative per edge
        total = sum(weights.values())
        if not total:
            return Counter({"Python stdlib": 1.0})
        found: Counter[str] = Counter()
        for caller, weight in weights.items():
            for name, part in owners(caller, depth + 1).items():
                found[name] += part * weight / total
        return found

    by: Counter[str] = Counter()
    for func, (_, _, tottime, _, _) in stats.items():
        for name, part in owners(func).items():
            by[name] += tottime * part
    total = sum(by.values())
    return {name: value / total for name, value in by.most_common()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-goal", action="store_true", help="report only (smoke test)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    n = args.devices
    rss_start_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB

    timed = run(scenario(n, args.seed, None))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    per_device_ms = timed.wall / n * 1000
    print(f"devices: {n}; setup (joins, zigpy interviews, clients): {timed.setup:.1f} s wall")
    print(
        f"event phase: {timed.simulated / 60:.0f} simulated minutes, {timed.frames} frames on"
        f" the air, reports {dict(sorted(timed.reports.items()))},"
        f" {timed.complete} devices with Received, Started, Completed"
    )
    print(f"library time: {timed.wall:.3f} s wall -> {per_device_ms:.3f} ms per device")

    profiler = cProfile.Profile()
    profiled = run(scenario(n, args.seed, profiler))
    print(f"where it goes (cProfile self time, {profiled.wall:.2f} s profiled):")
    for name, share in shares(profiler).items():
        print(f"  {share:6.1%}  {name}")

    tracemalloc.start()
    traced = run(scenario(n, args.seed, None))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_mb = peak / 1e6
    print(
        f"peak memory: {peak_mb:.1f} MB (tracemalloc, whole run); process peak RSS"
        f" {rss_mb:.1f} MB after the untraced run, {rss_start_mb:.1f} MB after the imports"
    )

    failures = []
    for result in (timed, profiled, traced):
        if result.complete != n:
            failures.append(f"only {result.complete} of {n} devices reported all three statuses")
    if per_device_ms > GOAL_MS_PER_DEVICE and not args.no_goal:
        failures.append(f"{per_device_ms:.3f} ms per device > {GOAL_MS_PER_DEVICE} ms")
    if peak_mb > GOAL_MB and not args.no_goal:
        failures.append(f"{peak_mb:.1f} MB > {GOAL_MB:.0f} MB")
    for failure in failures:
        print(f"GOAL MISSED: {failure}")
    if not failures and not args.no_goal:
        print(f"goals met: <= {GOAL_MS_PER_DEVICE} ms per device, <= {GOAL_MB:.0f} MB")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
