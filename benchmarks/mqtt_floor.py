"""A machine's floor for reading MQTT messages in Python: the reference of the utility
benchmarks' per-device CPU (``utility_headend.py``), measured in the same run on the same
broker, so that figures from different machines can be compared.

A subscriber process with nothing of zse in it (paho-mqtt's own client and loop, the library
under aiomqtt, MQTT 3.1.1) subscribes at QoS 1 with manual acknowledgements and, for each of
N messages, decodes the JSON payload and acknowledges it: the least a headend worker does
for a report it receives. ``mosquitto_pub -l -q 1`` publishes the N payloads (each of the
size of a gateway's Report Event Status). The figure: the subscriber's CPU time (user +
system, its own ``time.process_time``) from the first message to the last, per message.

    .venv/bin/python benchmarks/mqtt_floor.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' broker: one way to start Mosquitto

TOPIC = "bench/floor/00:00:00:00:00:00:00:01/drlc"
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


def measure(port: int, count: int) -> float:
    """CPU seconds per message of the floor's subscriber on the broker at ``port``."""
    subscriber = subprocess.Popen(
        [sys.executable, __file__, "--subscribe", str(port), str(count)],
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
    from tests.mqtt.broker import Broker  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--subscribe", nargs=2, type=int, metavar=("PORT", "COUNT"))
    args = parser.parse_args()
    if args.subscribe:
        subscribe(*args.subscribe)
        return
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp))
        broker.start()
        try:
            for _ in range(3):
                print(f"floor: {measure(broker.port, args.messages) * 1e6:.1f} µs CPU a message")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
