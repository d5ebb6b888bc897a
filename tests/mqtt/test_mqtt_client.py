"""zse's MQTT client (``zse.mqtt.bridge.mqtt_client``) against a real Mosquitto: its reads
are buffered (one system call serves paho's few-bytes reads of many packets), and every
message of a burst still arrives, in order, whole, a message larger than the buffer too."""

from __future__ import annotations

import json
from typing import Any

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait, settings
from zse.mqtt.bridge import mqtt_client

COUNT = 300
LARGE = 150_000  # bytes: more than one buffer (zse.mqtt.bridge._ReadBuffer.SIZE)


async def test_a_burst_is_read_a_buffer_at_a_time_and_every_message_arrives(
    broker: Broker,
) -> None:
    receiver: Any = mqtt_client(settings(broker, client_id="burst-in"), clean=True)
    await real_wait(receiver.__aenter__())
    sender = Subscriber(broker, "burst-out")
    try:
        await real_wait(receiver.subscribe("burst/#", qos=1))
        await sender.connect()
        assert sender._client is not None
        client = sender._client

        async def send() -> None:
            for n in range(COUNT):
                body = {"n": n, "pad": "x" * (LARGE if n == COUNT // 2 else 200)}
                await client.publish(f"burst/{n % 7}", json.dumps(body), qos=n % 2)

        await real_wait(send())

        async def receive() -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = []
            async for message in receiver.messages:
                got.append(json.loads(bytes(message.payload)))
                if len(got) == COUNT:
                    return got
            raise AssertionError("the connection ended")

        got = await real_wait(receive())
        assert [body["n"] for body in got] == list(range(COUNT))
        assert len(got[COUNT // 2]["pad"]) == LARGE
        reads = receiver.reads
        # unbuffered, paho's 3 or 4 reads a packet were each a system call
        assert reads.served >= 3 * reads.reads, (reads.served, reads.reads)
    finally:
        await sender.close()
        await real_wait(receiver.__aexit__(None, None, None))
