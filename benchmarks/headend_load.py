"""Load on the retailer headend over loopback mutual TLS: requests per second and p99 latency of
device status reads and of by-group sends, with concurrent retailers.

The service runs as ``zse headend serve --sim 2`` does (two simulated meters, their HAN devices
registered and METER READY, the simulator's clock paced at 20x); two retailers, each with
``--clients`` concurrent keep-alive HTTPS connections presenting its certificate, run for
``--seconds`` per phase. Measured in the same run, as the reference: a bare aiohttp handler
returning a small JSON document over the same TLS context and client (the floor of the stack).

    .venv/bin/python benchmarks/headend_load.py [--seconds 3] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.headend.helpers import client_context, start_service
from zse.sim import PacedLoop


async def _phase(
    name: str,
    seconds: float,
    sessions: list[tuple[aiohttp.ClientSession, Callable[[aiohttp.ClientSession], Awaitable[int]]]],
) -> tuple[float, float, int]:
    """Run every session's request in a loop for ``seconds`` (real time); (req/s, p99 ms)."""
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds

    async def worker(
        session: aiohttp.ClientSession, call: Callable[[aiohttp.ClientSession], Awaitable[int]]
    ) -> None:
        nonlocal errors
        while time.perf_counter() < end:
            began = time.perf_counter()
            status = await call(session)
            latencies.append(time.perf_counter() - began)
            errors += status >= 400

    began = time.perf_counter()
    await asyncio.gather(*(worker(s, c) for s, c in sessions))
    elapsed = time.perf_counter() - began
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 1 else 0.0
    rate = len(latencies) / elapsed
    count = len(latencies)
    print(f"{name:<28} {rate:8.0f} req/s  p99 {p99:6.2f} ms  ({count} requests, {errors} errors)")
    return rate, p99, errors


async def main(seconds: float, clients: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        service = await start_service(Path(tmp), rate=1e9)
        try:
            macs: dict[str, list[str]] = {"retailer-a": [], "retailer-b": []}
            for index, device in enumerate(service.sims.devices):
                retailer = "retailer-a" if index % 2 == 0 else "retailer-b"
                body = {
                    "mac": device.mac,
                    "install_code": device.install_code,
                    "meter": device.meter,
                    "device_type": device.device_type,
                }
                await service.call(retailer, "POST", "/api/v1/devices", body)
                macs[retailer].append(device.mac.replace(":", "").upper())
            for retailer in macs:
                group = {"name": "all", "meters": ["meter-1", "meter-2"]}
                await service.call(retailer, "POST", "/api/v1/groups", group)
            while len(service.headend.devices("retailer-a", state="meter ready")) < 3:
                await asyncio.sleep(1)

            # the reference: a bare aiohttp handler over the same TLS
            async def hello(request: web.Request) -> web.Response:
                return web.json_response({"hello": "world"})

            bare = web.Application()
            bare.router.add_get("/hello", hello)
            runner = web.AppRunner(bare, access_log=None)
            await runner.setup()
            from zse.headend.pki import server_context  # noqa: PLC0415

            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(service.config))
            await site.start()
            bare_port = int(runner.addresses[0][1])

            def opened(retailer: str) -> aiohttp.ClientSession:
                context: ssl.SSLContext = client_context(service.directory, retailer)
                return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=1))

            sessions = {r: [opened(r) for _ in range(clients)] for r in macs}
            every = [(r, s) for r, ss in sessions.items() for s in ss]

            def read(retailer: str, i: int) -> Callable[[aiohttp.ClientSession], Awaitable[int]]:
                url = f"{service.base}/api/v1/devices/{macs[retailer][i % len(macs[retailer])]}"

                async def call(session: aiohttp.ClientSession) -> int:
                    async with session.get(url) as response:
                        await response.read()
                        return response.status

                return call

            def send(retailer: str) -> Callable[[aiohttp.ClientSession], Awaitable[int]]:
                url = f"{service.base}/api/v1/sends/message"

                async def call(session: aiohttp.ClientSession) -> int:
                    async with session.post(
                        url, json={"group": "all", "text": "load test"}
                    ) as response:
                        await response.read()
                        return response.status

                return call

            async def reference(session: aiohttp.ClientSession) -> int:
                async with session.get(f"https://127.0.0.1:{bare_port}/hello") as response:
                    await response.read()
                    return response.status

            print(
                f"{2 * clients} concurrent clients (2 retailers x {clients}), {seconds:g} s a phase"
            )
            ref_rate, ref_p99, _ = await _phase(
                "reference (bare aiohttp)", seconds, [(s, reference) for _, s in every]
            )
            read_rate, read_p99, read_errors = await _phase(
                "status reads", seconds, [(s, read(r, i)) for i, (r, s) in enumerate(every)]
            )
            send_rate, send_p99, send_errors = await _phase(
                "by-group sends", seconds, [(s, send(r)) for r, s in every]
            )
            for what, rate, p99 in (
                ("status reads", read_rate, read_p99),
                ("by-group sends", send_rate, send_p99),
            ):
                print(
                    f"ratio {what} / reference: {rate / ref_rate:.2f} of the rate, "
                    f"p99 x{p99 / ref_p99:.1f}"
                )
            for group in sessions.values():
                for session in group:
                    await session.close()
            await runner.cleanup()
            return 1 if read_errors or send_errors else 0
        finally:
            await service.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=lambda: PacedLoop(20.0)) as runner:
        sys.exit(runner.run(main(args.seconds, args.clients)))
