"""Simulator benchmark: N simulated HAN devices join a zigpy ESI (install-code keys, zigpy
interview) and each answers one ZCL request (Read Attributes -> Read Attributes Response).

Prints frames on the air per wall-clock second, simulated seconds per wall-clock second (the
ratio to real time) and peak Python memory (tracemalloc).

    .venv/bin/python benchmarks/sim.py [--devices 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
import tracemalloc

from _han import join_devices, metering_endpoint, read_summations

from zse.sim import Air, run


async def main(devices: int, seed: int) -> None:
    air = Air(seed=seed)
    loop = asyncio.get_running_loop()
    esi = await air.coordinator(channel=15)
    wall0, sim0, frames0 = time.perf_counter(), loop.time(), air.stats.transmitted

    sims = await join_devices(air, esi, devices, metering_endpoint)  # zigpy interviews every device
    joined = loop.time()
    responses = await read_summations(esi, sims)  # each device answers its Read Attributes
    await asyncio.sleep(1)
    wall = time.perf_counter() - wall0
    frames = air.stats.transmitted - frames0
    zigpy_ok = sum(1 for d in sims if esi.get_device(ieee=d.ieee).is_initialized)
    print(f"devices: {devices}, interviewed by zigpy: {zigpy_ok}, ZCL responses: {len(responses)}")
    print(f"frames on the air: {frames} in {wall:.2f} s wall -> {frames / wall:,.0f} frames/s")
    print(
        f"simulated time: {loop.time() - sim0:.1f} s (joins {joined - sim0:.1f} s);"
        f" ratio to real time: {(loop.time() - sim0) / wall:,.1f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    tracemalloc.start()
    run(main(args.devices, args.seed))
    _, peak = tracemalloc.get_traced_memory()
    print(f"peak memory (tracemalloc): {peak / 2**20:.1f} MiB")
