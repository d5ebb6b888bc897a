"""What the MQTT bridge's tests share: bounded real-time waits on the virtual-time loop, a
subscriber on the real broker, and the simulated ESI of ``zse mqtt --sim`` with its bridge."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt

from tests.mqtt.broker import Broker
from zse.cli.mqtt import SimulatedEsi, simulated_esi
from zse.mqtt.bridge import MqttBridge
from zse.mqtt.core import parse_settings
from zse.provisioning import LifecycleState

T = TypeVar("T")
#: Real seconds any one wait for the broker may take (a bound; the waits end on an event).
REAL_TIMEOUT = 20.0


async def real_wait(awaitable: Awaitable[T], seconds: float = REAL_TIMEOUT) -> T:
    """Await real I/O (the broker) with the virtual clock held, at most ``seconds`` real
    seconds (a watchdog thread cancels it; then the test fails)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(awaitable)
    watchdog = threading.Timer(seconds, loop.call_soon_threadsafe, (task.cancel,))
    watchdog.start()
    try:
        with loop.external_work():  # type: ignore[attr-defined]
            return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
        raise AssertionError(f"nothing within {seconds} real seconds") from None
    finally:
        watchdog.cancel()


class Subscriber:
    """A client of the test's own on the broker, subscribed to everything (QoS 1, a
    persistent session: what arrives while it reconnects waits at the broker)."""

    def __init__(self, broker: Broker, name: str = "test-subscriber") -> None:
        self.broker = broker
        self.name = name
        self.received: list[tuple[str, Any, bool]] = []
        self._arrived = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self._client = aiomqtt.Client(
            "127.0.0.1",
            self.broker.port,
            identifier=self.name,
            clean_session=False,
            protocol=aiomqtt.ProtocolVersion.V311,
        )
        await real_wait(self._client.__aenter__())
        await real_wait(self._client.subscribe("#", qos=1))
        self._task = asyncio.get_running_loop().create_task(self._receive(self._client))

    async def _receive(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in client.messages:
                payload = bytes(message.payload)  # type: ignore[arg-type]
                try:
                    value: Any = json.loads(payload)
                except ValueError:
                    value = payload.decode()
                self.received.append((str(message.topic), value, message.retain))
                self._arrived.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await real_wait(self._client.__aexit__(None, None, None))
        self._client = self._task = None

    async def publish(self, topic: str, payload: Any, qos: int = 1) -> None:
        assert self._client is not None
        data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        await real_wait(self._client.publish(topic, data, qos=qos))

    def on(self, topic: str) -> list[Any]:
        """The payloads received on ``topic``, in order."""
        return [value for t, value, _ in self.received if t == topic]

    async def until(self, done: Callable[[], T], seconds: float = REAL_TIMEOUT) -> T:
        """Wait (bounded, real time) until ``done()`` is true; returns it."""

        async def check() -> T:
            while not (result := done()):
                self._arrived.clear()
                await self._arrived.wait()
            return result

        return await real_wait(check(), seconds)


def settings(broker: Broker, **more: Any) -> Any:
    return parse_settings({"url": broker.url, "client_id": "zse-bridge", **more})


@contextlib.asynccontextmanager
async def running(
    broker: Broker,
    directory: Path,
    *,
    bridge: type[MqttBridge] = MqttBridge,
    supply: bool = False,
    **more: Any,
) -> AsyncIterator[tuple[SimulatedEsi, MqttBridge, Subscriber]]:
    """The simulated ESI (its meter with supply control if ``supply``), its HAN METER_READY,
    a subscriber, and the bridge (of class ``bridge``) connected."""
    async with simulated_esi(directory, supply=supply) as sim:
        await asyncio.sleep(30)  # virtual: the devices join and run CBKE
        states = {r.state for r in sim.registry.devices()}
        assert states == {LifecycleState.METER_READY}
        subscriber = Subscriber(broker)
        await subscriber.connect()
        made = bridge(
            sim.esi, settings(broker, **more), store=sim.registry.store, displays=sim.displays
        )
        await made.start()
        try:
            await real_wait(made.connected.wait())
            yield sim, made, subscriber
        finally:
            await made.stop()
            await subscriber.close()


async def handled_by_a_started_bridge(
    esi: Any, broker: Broker, store: Any, name: str, payload: bytes
) -> dict[str, Any]:
    """``name``'s answer to ``payload`` from a new bridge on ``store``, started (its records
    read back, as after a restart) and stopped again."""
    bridge = MqttBridge(esi, settings(broker), store=store)
    await bridge.start()
    try:
        return await bridge.handle_command(name, payload)
    finally:
        await bridge.stop()
