"""A gateway's answer counts only for the commands it was sent (found by a hostile review of
"exactly once"): the link handed each response of a ``batch``'s answer to whatever delivery
waited on its correlation id, so a gateway (misconfigured, or taken over) that put another
meter's key in its batch's answer recorded that meter's device as reached, "delivered",
though its gateway never had the command; the device was then never sent it. Now a batch's
answer answers only the commands of that batch, and an answer that names another device, or
another command, than the one asked answers nothing: the delivery keeps waiting for its own
(and, without it, is tried again with the same key)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt
import pytest

from tests.fleet.helpers import PREFIX, lce, real, run_out, until
from tests.mqtt.broker import Broker
from zse.headend.core import Outcome, SendKind
from zse.headend.gateway import GatewayLink
from zse.headend.link import Answer, Delivery, MeterUnreachable
from zse.mqtt.bridge import broker_time
from zse.mqtt.core import parse_settings

DEVICE_A = "00:0d:6f:00:00:00:0a:01"
DEVICE_B1, DEVICE_B2 = "00:0d:6f:00:00:00:0b:01", "00:0d:6f:00:00:00:0b:02"


def _ok(command: str, key: str, device: str) -> dict[str, Any]:
    """The bridge's answer to a delivery that reached ``device``."""
    outcome = {"device": device, "outcome": "delivered", "detail": ""}
    result = {"target": {"device": device}, "outcomes": [outcome]}
    return {"command": command, "correlation_id": key, "status": "ok", "result": result}


def _delivery(key: str, meter: str, device: str) -> Delivery:
    return Delivery(key=key, meter=meter, device=device, kind=SendKind.LOAD_CONTROL, payload=lce(9))


async def _answered_by(broker: Broker, client_id: str, answer: Any) -> list[Any]:
    """Deliveries to meter-a (no gateway: nobody may answer them) and meter-b, whose
    gateway answers each publication with ``answer(topic, body)`` (its responses); what each
    delivery came to: its :class:`Answer`, or :class:`MeterUnreachable`."""
    gateway = aiomqtt.Client("127.0.0.1", broker.port, identifier=f"{client_id}-gw")
    settings = parse_settings({"url": broker.url, "client_id": client_id})
    link = GatewayLink(settings, prefix=PREFIX, timeout=3.0)

    async def serve() -> None:
        async for message in gateway.messages:
            body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            for response in answer(str(message.topic), body):
                await gateway.publish(body["response_topic"], json.dumps(response), qos=1)

    with broker_time():
        await gateway.__aenter__()
        await gateway.subscribe(f"{PREFIX}/meter-b/bridge/request/+", qos=1)
    task = asyncio.get_running_loop().create_task(serve())
    await link.start()
    try:
        await real(link.connected.wait())
        deliveries = [
            _delivery("key-a", "meter-a", DEVICE_A),
            _delivery("key-b1", "meter-b", DEVICE_B1),
            _delivery("key-b2", "meter-b", DEVICE_B2),
        ]
        waiting = asyncio.gather(*map(link.deliver, deliveries), return_exceptions=True)
        # the fence: meter-b's one batch answered, and that answer taken in by the link; what
        # it did not answer then, nothing will: its timeout may run out at once
        await until(lambda: asyncio.sleep(0, link.responses == 1))
        return await run_out(waiting)
    finally:
        await link.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        with broker_time():
            await gateway.__aexit__(None, None, None)


async def test_a_batch_answer_answers_only_the_batch_s_own_commands(broker: Broker) -> None:
    """meter-b's gateway answers its batch of two, and adds an answer for meter-a's key:
    meter-a's delivery is not answered by it (meter-a's gateway never had the command)."""

    def answer(topic: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        assert topic.endswith("/batch")
        responses = [_ok(c["command"], c["correlation_id"], c["device"]) for c in body["commands"]]
        responses.append(_ok("load_control", "key-a", DEVICE_A))  # not its own to answer
        return [{"command": "batch", "correlation_id": body["correlation_id"],
                 "status": "ok", "responses": responses}]  # fmt: skip

    a, b1, b2 = await _answered_by(broker, "headend-x-batch", answer)
    assert isinstance(a, MeterUnreachable), a
    assert [b1, b2] == [Answer(outcome=Outcome.DELIVERED)] * 2


@pytest.mark.parametrize("wrong", ["device", "command"])
async def test_an_answer_for_another_device_or_command_answers_nothing(
    broker: Broker, wrong: str
) -> None:
    """An answer by the right key whose outcome names another device, or which is another
    command's, is not the delivery's answer: it waits for its own (none here: unreachable,
    tried again later with the same key), while the batch's other command is answered."""

    def answer(topic: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        responses = []
        for c in body["commands"]:
            command, device = c["command"], c["device"]
            if c["correlation_id"] == "key-b1":
                device = DEVICE_A if wrong == "device" else device
                command = "display_message" if wrong == "command" else command
            responses.append(_ok(command, c["correlation_id"], device))
        return [{"command": "batch", "correlation_id": body["correlation_id"],
                 "status": "ok", "responses": responses}]  # fmt: skip

    a, b1, b2 = await _answered_by(broker, f"headend-x-{wrong}", answer)
    assert isinstance(a, MeterUnreachable)
    assert isinstance(b1, MeterUnreachable), b1
    assert b2 == Answer(outcome=Outcome.DELIVERED)
