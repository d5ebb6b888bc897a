"""Meters as gateways: the headend reaches each meter only through an MQTT broker, where the
meter's ESI runs the ``zse mqtt`` bridge (docs/mqtt.md, docs/adr/0018).

Meter ``M`` is the bridge whose base topic is ``<prefix>/M`` (``zse mqtt --base-topic``). A
:class:`~zse.headend.link.Delivery` becomes the bridge's ``display_message`` or ``load_control``
command to the one device (target ``device``), its correlation id the delivery's idempotency
key; the answer comes back on the bridge's response topic with the device's outcome. The bridge
records a correlation id *before* carrying the command out and answers a repeat from that
record (``"duplicate": true``), across its restarts (its store), so a command sent again after
a headend worker's crash, or after a timeout, is answered and not carried out twice.

The devices' reports come from the bridges' event topics (``<prefix>/+/+/drlc``:
``ReportReceived``; ``<prefix>/+/+/message``: ``MessageConfirmed``), their lifecycle changes
from ``<prefix>/+/+/lifecycle`` (``LifecycleChanged``); the control commands of
:mod:`zse.headend.control` (``provision``, ``deprovision``, the cancels) go out by
:meth:`GatewayLink.command`. The link's MQTT session is
persistent (clean session off, QoS 1): what arrives while it is away waits at the broker.
A meter that does not answer within ``timeout`` seconds is :class:`MeterUnreachable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiomqtt

from zse.headend.core import Outcome, SendKind, outcome_of_report
from zse.headend.link import (
    ESI_OUTCOMES,
    Answer,
    Delivery,
    Lifecycle,
    MeterLink,
    MeterUnreachable,
    Report,
)
from zse.mqtt.bridge import broker_time, mqtt_client
from zse.mqtt.core import MqttSettings
from zse.provisioning import LifecycleState

__all__ = ["DEFAULT_PREFIX", "GatewayLink"]

LOGGER = logging.getLogger(__name__)

#: The topic under which each meter's bridge has its base topic: ``zse/meters/<meter id>``.
DEFAULT_PREFIX = "zse/meters"
_COMMANDS = {SendKind.MESSAGE: "display_message", SendKind.LOAD_CONTROL: "load_control"}
#: Publications a worker may have awaiting their acknowledgement: one per delivery under way
#: (``zse headend worker --batch``, at most 1,000), not a sign of trouble to log.
_PENDING_EXPECTED = 1_000
#: The control commands (:mod:`zse.headend.control`) whose answers the link waits for.
_CONTROL = ("provision", "deprovision", "cancel_message", "cancel_load_control")


class GatewayLink(MeterLink):
    """Meters reached through the broker of ``settings`` (see the module notes).

    ``settings.client_id`` names this link's persistent session: give each headend worker its
    own. ``timeout``: seconds a meter has to answer a command.
    """

    def __init__(
        self, settings: MqttSettings, *, prefix: str = DEFAULT_PREFIX, timeout: float = 30.0
    ) -> None:
        super().__init__()
        self.settings = settings
        self.prefix = prefix.rstrip("/")
        self.timeout = timeout
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    def base(self, meter: str) -> str:
        """The base topic of ``meter``'s bridge."""
        return f"{self.prefix}/{meter}"

    async def start(self) -> None:
        """Connect in the background (and reconnect when the broker is lost)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            client = mqtt_client(self.settings)
            client.pending_calls_threshold = _PENDING_EXPECTED
            try:
                with broker_time():
                    await client.__aenter__()
                try:
                    with broker_time():
                        for name in (*_COMMANDS.values(), *_CONTROL):
                            await client.subscribe(f"{self.prefix}/+/bridge/response/{name}", qos=1)
                        for kind in ("drlc", "message", "lifecycle"):
                            await client.subscribe(f"{self.prefix}/+/+/{kind}", qos=1)
                    self._client = client
                    self.connected.set()
                    backoff = 1.0
                    async for message in client.messages:
                        self._received(str(message.topic), message.payload)
                finally:
                    self._client = None
                    self.connected.clear()
                    with broker_time(), contextlib.suppress(Exception):
                        await client.__aexit__(None, None, None)
            except aiomqtt.MqttError as exc:
                LOGGER.warning("headend MQTT link: %s", exc)
            with broker_time():
                await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.settings.max_backoff)

    def _received(self, topic: str, payload: Any) -> None:
        try:
            data = json.loads(bytes(payload))
        except (TypeError, ValueError):
            return
        if not isinstance(data, dict):
            return
        if "/bridge/response/" in topic:
            waiter = self._waiting.get(str(data.get("correlation_id")))
            if waiter is not None and not waiter.done():
                waiter.set_result(data)
            return
        with contextlib.suppress(KeyError, TypeError, ValueError):
            if topic.endswith("/lifecycle"):
                meter = topic[len(self.prefix) + 1 :].split("/", 1)[0]
                change = _lifecycle(meter, data)
                if change is not None:
                    self._changed(change)
                return
            report = _report(data)
            if report is not None:
                self._reported(report)

    async def deliver(self, delivery: Delivery) -> Answer:
        name = _COMMANDS[delivery.kind]
        field = "message" if delivery.kind is SendKind.MESSAGE else "event"
        request = {
            "correlation_id": delivery.key,
            "device": delivery.device,
            field: dict(delivery.payload),
        }
        return _answer(await self.command(delivery.meter, name, request))

    async def command(self, meter: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Publish the command on ``meter``'s request topic and wait for its response (by
        correlation id) at most ``timeout`` seconds."""
        key = str(body["correlation_id"])
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiting[key] = waiter
        try:
            with broker_time():
                async with asyncio.timeout(self.timeout):
                    await self.connected.wait()
                    client = self._client
                    assert client is not None
                    await client.publish(
                        f"{self.base(meter)}/bridge/request/{name}", json.dumps(body), qos=1
                    )
                    return await waiter
        except (TimeoutError, aiomqtt.MqttError) as exc:
            why = "did not answer" if isinstance(exc, TimeoutError) else f"unreachable: {exc}"
            raise MeterUnreachable(f"meter {meter} {why}") from None
        finally:
            self._waiting.pop(key, None)


def _answer(response: Mapping[str, Any]) -> Answer:
    """The bridge's response to a command as the device's answer."""
    status = response.get("status")
    if status == "ok":
        outcomes = response.get("result", {}).get("outcomes", [])
        if len(outcomes) == 1 and outcomes[0].get("outcome") in ESI_OUTCOMES:
            return Answer(
                outcome=ESI_OUTCOMES[outcomes[0]["outcome"]],
                detail=str(outcomes[0].get("detail", "")),
            )
        return Answer(outcome=Outcome.SKIPPED, detail="no outcome for the device", final=True)
    if status == "started":  # a repeat of a command the gateway was cut short carrying out
        return Answer(outcome=Outcome.OFFLINE, detail="the gateway stopped while sending it")
    error = response.get("error") or {}
    detail = f"refused: {error.get('field')}: {error.get('message')}"
    return Answer(outcome=Outcome.SKIPPED, detail=detail[:200], final=True)


def _lifecycle(meter: str, data: Mapping[str, Any]) -> Lifecycle | None:
    """A device's lifecycle change from a bridge's ``lifecycle`` payload, or None (a
    refused event changes nothing)."""
    if data.get("event") != "LifecycleChanged":
        return None
    before = data.get("from_state")
    return Lifecycle(
        meter=meter,
        device=str(data["device"]),
        event=str(data["lifecycle_event"]),
        from_state=None if before is None else LifecycleState(before),
        to_state=LifecycleState(data["to_state"]),
        detail=str(data.get("detail", ""))[:200],
        time=int(data["time"]),
    )


def _report(data: Mapping[str, Any]) -> Report | None:
    """A device's report from a bridge's event payload (docs/mqtt.md), or None."""
    event = data.get("event")
    if event == "ReportReceived" and data.get("new", True):
        report = data["report"]
        return Report(
            device=str(data["device"]),
            send=int(report["issuer_event_id"]),
            kind=SendKind.LOAD_CONTROL,
            outcome=outcome_of_report(int(report["event_status"])),
        )
    if event == "MessageConfirmed":
        return Report(
            device=str(data["device"]),
            send=int(data["message"]["message_id"]),
            kind=SendKind.MESSAGE,
            outcome=Outcome.CONFIRMED,
        )
    return None
