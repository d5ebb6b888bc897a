"""The MQTT bridge's throughput (issue #17): ESI events through the bridge to a subscriber.

A real Mosquitto on a free loopback port (as the tests start it). A subscriber process
(aiomqtt, this file with ``--subscribe``) says when it is subscribed and how long N messages
took from the first to the last. Measured in the same run, on the same broker:

- **zse**: N Report Event Status events (``zse.roles.esi.ReportReceived``, as a load control
  device's report reaches the ESI) emitted on the event stream of the ESI of ``zse mqtt
  --sim`` (the simulator, on that command's loop at ``--speed 1``): each becomes a JSON
  payload, is journalled in the outbox (SQLite, ``zse.store``) and published at QoS 1 (up
  to 100 awaiting their PUBACK), marked done once acknowledged;
  events per second from the first emitted to the N-th received by the subscriber;
- **reference**: ``mosquitto_pub -l -q 1`` publishing N lines of the same size (the first
  payload the bridge sent) to the same subscriber: the broker and client alone;
- peak memory of the zse process: tracemalloc's peak during the zse run, and the process's
  maximum resident set size.

    .venv/bin/python benchmarks/mqtt_bridge.py [--events 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' broker: one way to start Mosquitto

TOPIC_REF = "bench/ref"


async def subscribe(port: int, topic: str, count: int) -> None:
    """Print ``ready`` once subscribed, then the seconds from the first to the last message."""
    import aiomqtt  # noqa: PLC0415

    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic, qos=1)
        print("ready", flush=True)
        seen = 0
        first = 0.0
        async for _message in client.messages:
            if seen == 0:
                first = time.perf_counter()
            seen += 1
            if seen == count:
                break
        print(f"done {time.perf_counter() - first:.6f}", flush=True)


def start_subscriber(port: int, topic: str, count: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--subscribe", str(port), topic, str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def finished(process: subprocess.Popen[str]) -> float:
    out, _ = process.communicate(timeout=600)
    word, _, seconds = out.strip().partition(" ")
    assert word == "done", out
    return float(seconds)


async def run_zse(port: int, count: int, directory: Path) -> tuple[float, str, int]:
    """Events/s through the bridge, the first payload, tracemalloc's peak (bytes)."""
    from zse.cli.mqtt import simulated_esi  # noqa: PLC0415
    from zse.drlc import StatusReport  # noqa: PLC0415
    from zse.mqtt.bridge import MqttBridge  # noqa: PLC0415
    from zse.mqtt.core import event_publication, parse_settings  # noqa: PLC0415
    from zse.roles.esi import ReportReceived  # noqa: PLC0415

    settings = parse_settings(
        {"url": f"mqtt://127.0.0.1:{port}", "client_id": "bench", "reading_interval": 0}
    )
    async with simulated_esi(directory) as sim:
        bridge = MqttBridge(sim.esi, settings, store=sim.registry.store)
        await bridge.start()
        loop = asyncio.get_running_loop()
        await bridge.connected.wait()
        await bridge.drained.wait()
        device = next(iter(sim.devices.values()))
        topic = bridge.topics.device(device, "drlc")
        subscriber = start_subscriber(port, topic, count)
        tracemalloc.start()
        began = time.perf_counter()
        for i in range(count):
            report = StatusReport(
                issuer_event_id=i, event_status=1, event_status_time=i, criticality_level_applied=1
            )
            sim.esi._stream.emit(  # the ESI's own event stream, as its DRLC server emits
                ReportReceived(device=device, source_nwk=1, report=report, signed=True, new=True)
            )
            if i % 100 == 99:
                await asyncio.sleep(0)
        await bridge.drained.wait()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        seconds = await loop.run_in_executor(None, finished, subscriber)
        elapsed = max(seconds, time.perf_counter() - began)
        await bridge.stop()
    report = StatusReport(
        issuer_event_id=0, event_status=1, event_status_time=0, criticality_level_applied=1
    )
    first = ReportReceived(device=device, source_nwk=1, report=report, signed=True, new=True)
    publication = event_publication(bridge.topics, first, sim.esi.clock())
    assert publication is not None
    return count / elapsed, publication.encode().decode(), peak


def run_reference(port: int, count: int, payload: str) -> float:
    subscriber = start_subscriber(port, TOPIC_REF, count)
    lines = "\n".join([payload] * count) + "\n"
    began = time.perf_counter()
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", TOPIC_REF, "-q", "1", "-l"],
        input=lines,
        text=True,
        check=True,
        timeout=600,
    )
    seconds = finished(subscriber)
    return count / max(seconds, time.perf_counter() - began)


def main() -> int:
    from _tools import start_broker  # noqa: PLC0415

    from zse.sim import PacedLoop  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zse-bench-mqtt-") as work:
        (Path(work) / "esi").mkdir()
        broker = start_broker(Path(work))
        try:
            with asyncio.Runner(loop_factory=PacedLoop) as runner:  # `zse mqtt --sim`'s loop
                rate, payload, peak = runner.run(
                    run_zse(broker.port, options.events, Path(work) / "esi")
                )
            reference = run_reference(broker.port, options.events, payload)
        finally:
            broker.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"events: {options.events}, payload {len(payload)} bytes, QoS 1")
    print(f"zse: ESI event -> bridge (outbox, QoS 1) -> subscriber: {rate:,.0f} events/s")
    print(f"reference: mosquitto_pub -l -q 1 -> subscriber: {reference:,.0f} messages/s")
    print(f"ratio: zse at {rate / reference:.2f}x the reference")
    print(f"peak memory (tracemalloc, zse run): {peak / 2**20:.1f} MiB; max RSS {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--subscribe":
        asyncio.run(subscribe(int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
        sys.exit(0)
    sys.exit(main())
