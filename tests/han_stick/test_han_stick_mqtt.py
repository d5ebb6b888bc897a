"""``zse han watch --broker``: what the display on the stick sees, on a real Mosquitto, and a
message confirmed by an MQTT command (issue #17 item 1: the bridge for the HAN-device role of
``zse han``; issue #16's stick through bellows' EZSP/ASH code and the fake NCP)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.han_stick.stick_builder import STICK, meter_and_stick
from tests.han_stick.test_han_stick_cli import options
from tests.mqtt.broker import Broker, running_broker
from tests.mqtt.helpers import Subscriber, settings
from tests.roles.han_builder import close
from tests.roles.test_roles_ihd_energy import FLAT, serve_meter
from zse.cli.han import run_han
from zse.messaging import Message
from zse.mqtt.core import node_id

broker = pytest.fixture(running_broker, name="broker")


async def test_watch_puts_the_display_on_mqtt_and_takes_its_confirmation(
    tmp_path: Path, serial_link: Callable[..., None], broker: Broker
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    serve_meter(sh.han, 1_000_000, 1500)
    await sh.han.esi.price.publish(FLAT)
    subscriber = Subscriber(broker)
    await subscriber.connect()
    lines: list[str] = []
    stop = asyncio.Event()
    mqtt = settings(broker, client_id="zse-han-test")
    watching = asyncio.ensure_future(
        run_han(options(tmp_path, sh, mqtt=mqtt), watch=True, out=lines.append, stop=stop)
    )
    device = node_id(STICK)
    try:
        await asyncio.sleep(20)  # virtual: the stick joins, the display reads the meter
        await subscriber.until(lambda: subscriber.on("zse/bridge/state")[-1:] == ["online"])
        await asyncio.sleep(30)  # virtual: a reading is published (every 30 s)
        readings = await subscriber.until(lambda: subscriber.on(f"zse/{device}/metering"))
        assert readings[-1]["summation_delivered_raw"] == 1_000_000
        discovery = [t for t, _, _ in subscriber.received if t.startswith("homeassistant/")]
        assert any(device in topic for topic in discovery)
        await sh.han.esi.send_message(
            Message(message_id=9, text="Peak 5-7 pm", confirmation_required=True),
            device=str(STICK),
        )
        await asyncio.sleep(5)
        await subscriber.until(lambda: subscriber.on(f"zse/{device}/message"))
        request = {"correlation_id": "c-1", "device": str(STICK), "message_id": 9}
        await subscriber.publish("zse/bridge/request/confirm_message", request)
        answer = await subscriber.until(
            lambda: subscriber.on("zse/bridge/response/confirm_message")
        )
        assert answer[-1]["correlation_id"] == "c-1"
        assert answer[-1].get("error") is None, answer
        await asyncio.sleep(5)  # the confirmation crosses the air to the ESI
        assert list(sh.han.esi.messaging.confirmations(9)) == [str(STICK)]
        stop.set()
        assert await watching == 0
        assert any(line.startswith("mqtt ") for line in lines), lines
        await subscriber.until(lambda: subscriber.on("zse/bridge/state")[-1:] == ["offline"])
    finally:
        stop.set()
        await asyncio.wait({watching}, timeout=120)  # virtual seconds
        watching.cancel()
        await subscriber.close()
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)
