"""A busy simulator keeps its MQTT clients on the broker (issue #19, the 5,000-meter stall):
the keepalive follows the real clock, which the broker's is, not the virtual one, which
stands still while the loop is busy."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.mqtt.broker import Broker
from zse.mqtt.bridge import broker_time, mqtt_client
from zse.mqtt.core import parse_settings

#: Seconds of the clients' keepalive: the broker drops one silent for 1.5 of them. Not 1:
#: the keepalive is serviced on whole seconds, so a PINGREQ may go up to a keepalive and a
#: second after the last packet, while Mosquitto 2.0 counts 1.5 keepalives in whole seconds
#: (1 for a keepalive of 1): with 1 a ping a few milliseconds late under load was dropped.
#: With 2 the ping goes within 3 s and the broker waits at least 3 s, up to 4.
KEEPALIVE = 2
#: Real seconds the loop is kept busy: longer than the broker waits (at most 4 s).
BUSY = 3.0 * KEEPALIVE


async def test_a_client_keeps_its_connection_while_the_loop_is_busy(broker: Broker) -> None:
    loop: Any = asyncio.get_running_loop()
    settings = parse_settings({"url": broker.url, "client_id": "busy-loop"})
    client = mqtt_client(settings, keepalive=KEEPALIVE)
    with broker_time():
        await client.__aenter__()
    try:
        with loop.real_time():  # as a simulated utility's worker serves its meters
            virtual, real = loop.time(), time.monotonic()
            while time.monotonic() - real < BUSY:  # work, never idle: the virtual clock stands
                await asyncio.sleep(0)
            assert loop.time() == virtual
        with broker_time():
            await client.publish("busy/still", "here", qos=1, timeout=10)
    finally:
        with broker_time():
            await client.__aexit__(None, None, None)
    log = "".join(broker.log)
    assert "Client busy-loop has exceeded timeout" not in log
    assert "Received PINGREQ from busy-loop" in log  # the keepalive went out on real time


async def test_real_time_callbacks_run_on_a_busy_and_on_an_idle_loop() -> None:
    loop = asyncio.get_running_loop()
    fired: list[str] = []
    began = time.monotonic()
    loop.call_real_later(0.05, fired.append, "busy")  # type: ignore[attr-defined]
    cancelled = loop.call_real_later(0.05, fired.append, "cancelled")  # type: ignore[attr-defined]
    cancelled.cancel()
    while not fired:
        await asyncio.sleep(0)
    assert fired == ["busy"]
    assert time.monotonic() - began >= 0.05
    done = loop.create_future()
    loop.call_real_later(0.05, done.set_result, "idle")  # type: ignore[attr-defined]
    virtual = loop.time()
    assert await done == "idle"  # nothing else scheduled: the loop waited in real time
    assert loop.time() == virtual
    later = loop.create_future()
    loop.call_real_later(0.05, later.set_result, None)  # type: ignore[attr-defined]
    await asyncio.sleep(3600)  # virtual: no real hour
    await later
    assert time.monotonic() - began < 60
    assert fired == ["busy"]
