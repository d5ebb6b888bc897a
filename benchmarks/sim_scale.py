"""Simulator scale benchmark: is the simulator's cost per device flat as the device count grows?

Two shapes, each at several sizes in one run, every figure printed with its ratio to the
smallest size measured in the same run (flat = 1.0x):

- ``meters``: N independent HANs in one process on one virtual clock, as a utility's meters
  are: each its own air (homes are out of each other's radio range), PAN and zigpy ESI, with K
  devices (default 3) joining it with their install codes (Beacon Request, beacon,
  association, Transport Key, Device_annce, zigpy's interview), then one ZCL Read Attributes
  from the ESI answered by each device;
- ``han``: one HAN of N devices joining one ESI, the same steps (``benchmarks/sim.py``).

Per device: library time (CPU seconds of the process, simulator + zigpy + zse, per joined
device), wall time, frames on the air. Memory (tracemalloc, in a second pass of the same
sizes, as it slows allocation): what stays allocated per meter (its ESI, air and devices)
and per device once every device has joined and answered.

    .venv/bin/python benchmarks/sim_scale.py [--meters 100,250,500,1000] [--han 250,500,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import time
import tracemalloc
from dataclasses import dataclass

from _han import INTERVIEW_TIME, join_devices, metering_endpoint, read_summations

from zse.sim import Air, SimControllerApplication, run


@dataclass
class Figures:
    """One size's measurements."""

    size: int
    devices: int
    cpu: float = 0.0  # the whole run
    wall: float = 0.0
    join_cpu: float = 0.0  # ESIs up, devices joined and interviewed
    read_cpu: float = 0.0  # one ZCL request to every device and its answer
    frames: int = 0
    memory: float = 0.0  # bytes still allocated once everything has joined and answered
    answered: int = 0


def air_channel(esi: SimControllerApplication) -> int:
    """The ESI's channel."""
    channel = esi.radio.channel
    assert channel is not None
    return channel


async def meters(
    count: int, per_meter: int, seed: int, figures: Figures
) -> tuple[int, int, list[object]]:
    """``count`` HANs of ``per_meter`` devices; frames, answered reads and what to keep alive."""
    cpu0 = time.process_time()
    hans: list[tuple[Air, SimControllerApplication]] = []
    for index in range(count):
        air = Air(seed=seed + index, epoch=0.0)
        esi = await air.coordinator(channel=11 + index % 16)
        hans.append((air, esi))
    joined = await asyncio.gather(
        *(
            join_devices(
                air,
                esi,
                per_meter,
                metering_endpoint,
                channel=air_channel(esi),
                first=index * 16 + 1,
                interview=False,
            )
            for index, (air, esi) in enumerate(hans)
        )
    )
    await asyncio.sleep(INTERVIEW_TIME)
    cpu1 = time.process_time()
    answers = await asyncio.gather(
        *(read_summations(esi, devs) for (_, esi), devs in zip(hans, joined, strict=True))
    )
    await asyncio.sleep(1)
    figures.join_cpu, figures.read_cpu = cpu1 - cpu0, time.process_time() - cpu1
    frames = sum(air.stats.frames for air, _ in hans)
    return frames, sum(len(a) for a in answers), [hans, joined]


async def one_han(count: int, seed: int, figures: Figures) -> tuple[int, int, list[object]]:
    """One HAN of ``count`` devices; frames, answered reads and what to keep alive."""
    cpu0 = time.process_time()
    air = Air(seed=seed, epoch=0.0)
    esi = await air.coordinator(channel=15)
    devices = await join_devices(air, esi, count, metering_endpoint, first=1)
    cpu1 = time.process_time()
    answered = await read_summations(esi, devices)
    await asyncio.sleep(1)
    figures.join_cpu, figures.read_cpu = cpu1 - cpu0, time.process_time() - cpu1
    return air.stats.frames, len(answered), [air, esi, devices]


def measure(shape: str, size: int, per_meter: int, seed: int, *, memory: bool) -> Figures:
    """Run one size; with ``memory`` under tracemalloc, else timed."""
    devices = size * per_meter if shape == "meters" else size
    figures = Figures(size, devices)
    kept: list[object] = []

    async def main() -> None:
        if shape == "meters":
            frames, answered, keep = await meters(size, per_meter, seed, figures)
        else:
            frames, answered, keep = await one_han(size, seed, figures)
        figures.frames, figures.answered = frames, answered
        if memory:
            gc.collect()
            figures.memory = tracemalloc.get_traced_memory()[0] - base
        kept.append(keep)

    gc.collect()
    if memory:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run(main())
    figures.cpu, figures.wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if memory:
        tracemalloc.stop()
    kept.clear()
    return figures


def report(shape: str, rows: list[Figures]) -> None:
    """Print one shape's table, ratios against the first (smallest) row."""
    ref = rows[0]

    def cell(row: Figures, value: float, ref_value: float, scale: float = 1e3) -> str:
        mine, theirs = value / row.devices * scale, ref_value / ref.devices * scale
        return f"{mine:7.2f} ({mine / theirs if theirs else 0.0:4.2f}x)"

    unit = "meters" if shape == "meters" else "devices"
    print(
        f"\n{shape}: {unit} | devices | CPU ms/device: all | join+interview | read round"
        " | wall ms/device | frames/device | memory KiB/device"
        + (" | memory MiB/meter" if shape == "meters" else "")
    )
    for row in rows:
        line = (
            f"{row.size:>7,} | {row.devices:>7,} | {cell(row, row.cpu, ref.cpu)}"
            f" | {cell(row, row.join_cpu, ref.join_cpu)} | {cell(row, row.read_cpu, ref.read_cpu)}"
            f" | {row.wall / row.devices * 1e3:7.2f} | {row.frames / row.devices:6.1f}"
            f" | {cell(row, row.memory, ref.memory, 1 / 1024)}"
        )
        if shape == "meters":
            line += f" | {row.memory / row.size / 2**20:6.3f}"
        if row.answered != row.devices:
            line += f"  ({row.answered} of {row.devices} answered)"
        print(line, flush=True)


def main() -> None:
    """Parse the sizes, measure each shape (timed pass, then memory pass) and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", default="100,250,500,1000", help="meter counts, or ''")
    parser.add_argument("--devices-per-meter", type=int, default=3)
    parser.add_argument("--han", default="250,500,1000", help="single-HAN sizes, or ''")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for shape, sizes in (("meters", args.meters), ("han", args.han)):
        counts = [int(n) for n in sizes.split(",") if n.strip()]
        if not counts:
            continue
        rows = []
        for size in counts:
            timed = measure(shape, size, args.devices_per_meter, args.seed, memory=False)
            timed.memory = measure(
                shape, size, args.devices_per_meter, args.seed, memory=True
            ).memory
            rows.append(timed)
        report(shape, rows)


if __name__ == "__main__":
    main()
