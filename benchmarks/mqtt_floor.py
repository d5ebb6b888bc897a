"""A machine's floor for reading MQTT messages in Python: the reference of the utility
benchmarks' per-device CPU (``utility_headend.py``), measured in the same run on the same
broker, so that figures from different machines can be compared.

A subscriber process with nothing of zse in it (paho-mqtt's own client and loop, the library
under aiomqtt, MQTT 3.1.1) subscribes at QoS 1 with manual acknowledgements and, for each of
N messages, decodes the JSON payload and acknowledges it: the least a headend worker does
for a report it receives. ``mosquitto_pub -l -q 1`` publishes the N payloads (each of the
size of a gateway's Report Event Status). The figure: the subscriber's CPU time (user +
system, its own ``time.process_time``) from the first message to the last, per message.

Run alone, it also measures, against that floor and in the same run, what zse's headend adds
per report received (``--layers``): ``aiomqtt`` (the same with aiomqtt's client as zse
sets it up: its message queue on the event loop), ``link`` (a headend worker's
:class:`~zse.headend.gateway.GatewayLink`: its shared subscription, the report parsed and
handed to a listener that has it recorded at once) and ``worker`` (the worker's report path
behind the link: each report grouped with others for one write, acknowledged once written;
the write itself a stand-in that records nothing, so no database in the figure).

    .venv/bin/python benchmarks/mqtt_floor.py [--messages 20000] [--layers]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' broker: one way to start Mosquitto

#: A gateway's event topic (``zse/meters/<meter>/<device>/drlc``, a headend's default prefix).
TOPIC = "zse/meters/m1/00:0d:6f:00:00:00:00:01/drlc"
LAYERS = ("floor", "aiomqtt", "link", "worker")
#: A gateway's Report Event Status as ``zse mqtt`` publishes it (the fields, their sizes).
PAYLOAD = {
    "event": "ReportReceived",
    "device": "00:0d:6f:00:00:00:00:01",
    "new": True,
    "report": {
        "issuer_event_id": 185270273,
        "event_status": 2,
        "event_status_time": 817000000,
        "criticality_level_applied": 1,
        "cooling_temperature_set_point_applied": 2700,
        "heating_temperature_set_point_applied": 32768,
        "average_load_adjustment_percentage_applied": -128,
        "duty_cycle_applied": 50,
        "event_control": 0,
        "signature_type": 1,
        "signature": "00" * 42,
    },
    "time": 817000000,
}


def subscribe(port: int, count: int) -> None:
    """Print ``ready`` once subscribed, then the CPU seconds from the first message to the
    ``count``-th (each decoded and acknowledged)."""
    import paho.mqtt.client as mqtt  # noqa: PLC0415

    state = {"seen": 0, "first": 0.0}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="floor", manual_ack=True)

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe(TOPIC, qos=1)

    def on_subscribe(*_: object) -> None:
        print("ready", flush=True)

    def on_message(client: mqtt.Client, _: object, message: mqtt.MQTTMessage) -> None:
        if state["seen"] == 0:
            state["first"] = time.process_time()
        json.loads(message.payload)
        client.ack(message.mid, message.qos)
        state["seen"] += 1
        if state["seen"] == count:
            print(f"done {time.process_time() - state['first']:.6f}", flush=True)
            client.disconnect()

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect("127.0.0.1", port)
    client.loop_forever()


async def subscribe_zse(port: int, count: int, layer: str) -> None:
    """:func:`subscribe` with zse's layers (``aiomqtt``, ``link`` or ``worker``)."""
    from zse.headend.gateway import GatewayLink  # noqa: PLC0415
    from zse.headend.worker import Worker  # noqa: PLC0415
    from zse.mqtt.bridge import ack, mqtt_client  # noqa: PLC0415
    from zse.mqtt.core import MqttSettings  # noqa: PLC0415

    seen = 0
    first = 0.0
    finished = asyncio.Event()

    def counted() -> None:
        nonlocal seen, first
        if seen == 0:
            first = time.process_time()
        seen += 1
        if seen == count:
            print(f"done {time.process_time() - first:.6f}", flush=True)
            finished.set()

    if layer == "aiomqtt":
        settings = MqttSettings(host="127.0.0.1", port=port, client_id="floor")
        async with mqtt_client(settings, manual_ack=True, clean=True) as client:
            await client.subscribe(TOPIC, qos=1)
            print("ready", flush=True)
            async for message in client.messages:
                json.loads(bytes(message.payload))  # type: ignore[arg-type]
                ack(client, message)
                counted()
                if finished.is_set():
                    return
    settings = MqttSettings(host="127.0.0.1", port=port, client_id="floor")
    link = GatewayLink(settings)
    await link.start()
    await link.connected.wait()
    if layer == "link":

        def listener(_: object) -> asyncio.Future[bool]:
            done = asyncio.get_running_loop().create_future()
            done.set_result(True)
            counted()
            return done

        link.on_report(listener)
    else:

        class Recorded:  # stands in for the queue: no jobs, each report written at once
            async def claim(self, *_: object, **__: object) -> list[object]:
                return []

            async def report_many(self, reports: list[object], **_: object) -> list[bool]:
                for _report in reports:
                    counted()
                return [True] * len(reports)

            async def database_time(self) -> None:
                return None

        worker = Worker(Recorded(), link, owner="floor", poll=3600.0)  # type: ignore[arg-type]
        await worker.start()
    print("ready", flush=True)
    await finished.wait()
    if layer == "worker":
        await worker.stop()
    await link.close()


def measure(port: int, count: int, layer: str = "floor") -> float:
    """CPU seconds per message of ``layer``'s subscriber on the broker at ``port``."""
    subscriber = subprocess.Popen(
        [sys.executable, __file__, "--subscribe", str(port), str(count), "--layer", layer],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert subscriber.stdout is not None
        assert subscriber.stdout.readline().strip() == "ready", "the subscriber did not start"
        line = json.dumps(PAYLOAD, separators=(",", ":")) + "\n"
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", TOPIC, "-l"],
            input=line * count,
            text=True,
            check=True,
            timeout=600,
        )
        said = subscriber.stdout.readline().split()
        assert said[:1] == ["done"], f"the subscriber said {said!r}"
        subscriber.wait(timeout=60)
        return float(said[1]) / (count - 1)
    finally:
        if subscriber.poll() is None:
            subscriber.kill()
            subscriber.wait()


def main() -> None:
    from _tools import start_broker  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--layers", action="store_true", help="zse's layers too")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--subscribe", nargs=2, type=int, metavar=("PORT", "COUNT"))
    parser.add_argument("--layer", choices=LAYERS, default="floor")
    args = parser.parse_args()
    if args.subscribe:
        if args.layer == "floor":
            subscribe(*args.subscribe)
        else:
            asyncio.run(subscribe_zse(*args.subscribe, args.layer))
        return
    layers = LAYERS if args.layers else LAYERS[:1]
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_broker(Path(tmp))
        try:
            figures: dict[str, list[float]] = {layer: [] for layer in layers}
            for _ in range(args.rounds):  # the layers in turn, each round
                for layer in layers:
                    figures[layer].append(measure(broker.port, args.messages, layer))
            floor = min(figures["floor"])
            for layer, found in figures.items():
                best = min(found)
                print(
                    f"{layer:>8}: {best * 1e6:6.1f} µs CPU a message (best of {len(found)}: "
                    + ", ".join(f"{each * 1e6:.1f}" for each in found)
                    + f"), {best / floor:4.1f}x the floor"
                )
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
