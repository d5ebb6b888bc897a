"""A gateway answers only its own meter's commands (a hostile review of "exactly once", after
tests/fleet/test_fleet_answer_fits.py): the workers' response topic was one per worker,
``zse/headend/<client id>/response``, which every gateway had to be allowed to publish on, and
the keys are predictable (``zse-headend:<send>:<device>:<try>``), so meter-b's gateway
(misconfigured, or taken over) could answer meter-a's delivery with a well-formed answer, and
the headend recorded meter-a's device ``delivered`` though meter-a's gateway never had the
command. Now each command names a response topic under its meter's own base topic,
``<prefix>/<meter>/bridge/response/<client id>``, and an answer counts only for a command
published to the meter of the topic it came on; the broker's per-meter ACL (a gateway
publishes under its own base topic only) is what says which gateway answered, as for the
reports (tests/fleet/test_fleet_report_meter.py). ADR 0021's amendment."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.fleet.helpers import PREFIX, lce, real, run_out, until
from tests.fleet.test_fleet_answer_fits import _ok
from tests.mqtt.broker import Broker
from zse.headend.core import Outcome, SendKind
from zse.headend.gateway import GatewayLink
from zse.headend.link import Answer, Delivery, MeterUnreachable
from zse.mqtt.bridge import broker_time
from zse.mqtt.core import parse_settings

DEVICE_A1, DEVICE_A2 = "00:0d:6f:00:00:00:0a:01", "00:0d:6f:00:00:00:0a:02"
#: Each gateway (its client id its meter's id) publishes and reads under its own base topic
#: only; the workers publish commands and read their answers, each on its own topics.
ACL = """\
topic write gw/+/bridge/request/#
pattern read gw/+/bridge/response/%c
pattern readwrite gw/%c/#
"""


def _delivery(key: str, device: str) -> Delivery:
    return Delivery(key=key, meter="meter-a", device=device, kind=SendKind.LOAD_CONTROL,
                    payload=lce(9))  # fmt: skip


@asynccontextmanager
async def _gateway(
    broker: Broker, meter: str, reads: str, answer: Callable[[str, dict[str, Any]], Any]
) -> AsyncIterator[aiomqtt.Client]:
    """Meter ``meter``'s gateway (client id ``meter``), reading the requests of ``reads``;
    each request's ``answer(topic, body)``: (topic, response) pairs it publishes."""
    client = aiomqtt.Client("127.0.0.1", broker.port, identifier=meter)

    async def serve() -> None:
        async for message in client.messages:
            body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            for topic, response in answer(str(message.topic), body):
                await client.publish(topic, json.dumps(response), qos=1)

    with broker_time():
        await client.__aenter__()
        await client.subscribe(f"{PREFIX}/{reads}/bridge/request/+", qos=1)
    task = asyncio.get_running_loop().create_task(serve())
    try:
        yield client
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        with broker_time():
            await client.__aexit__(None, None, None)


def _answers(body: dict[str, Any]) -> dict[str, Any]:
    """The gateway's honest answer to ``body`` (one command, or a batch): each delivered."""
    if "commands" not in body:
        return _ok("load_control", body["correlation_id"], body["device"])
    responses = [_ok(c["command"], c["correlation_id"], c["device"]) for c in body["commands"]]
    return {"command": "batch", "correlation_id": body["correlation_id"], "status": "ok",
            "responses": responses}  # fmt: skip


@pytest.mark.parametrize("devices", [[DEVICE_A1], [DEVICE_A1, DEVICE_A2]], ids=["one", "batch"])
async def test_an_answer_on_another_meter_s_topic_answers_nothing(
    broker: Broker, devices: list[str]
) -> None:
    """meter-b's gateway, reading meter-a's commands (a broker without per-meter read ACLs),
    answers them (a single command, or a batch) on the response topic of its own meter, the
    one the broker lets it publish on: the deliveries to meter-a are not answered by it, and
    without meter-a's gateway they end unreachable (tried again later with the same key).
    Before, the answer was taken: meter-a's devices recorded ``delivered``."""

    def forge(topic: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
        own = body["response_topic"].replace(f"{PREFIX}/meter-a/", f"{PREFIX}/meter-b/")
        return [(own, _answers(body))]

    settings = parse_settings({"url": broker.url, "client_id": f"headend-{len(devices)}"})
    link = GatewayLink(settings, prefix=PREFIX, timeout=3.0)
    async with _gateway(broker, "meter-b", "meter-a", forge):
        await link.start()
        try:
            await real(link.connected.wait())
            keys = [f"zse-headend:9:{d.replace(':', '').upper()}:0" for d in devices]
            deliveries = [_delivery(k, d) for k, d in zip(keys, devices, strict=True)]
            waiting = asyncio.gather(*map(link.deliver, deliveries), return_exceptions=True)
            await until(lambda: asyncio.sleep(0, link.responses == 1))  # the forged answer in
            answers = await run_out(waiting)  # nothing more comes: the timeout, at once
        finally:
            await link.close()
    assert link.responses == 1  # the forged answer came, on meter-b's topic
    assert all(isinstance(answer, MeterUnreachable) for answer in answers), answers
    assert link.response_topic("meter-a") == f"{PREFIX}/meter-a/bridge/response/{link.session}"


async def test_a_batch_answered_on_another_meter_s_topic_still_waits_for_its_own(
    broker: Broker,
) -> None:
    """A batch's answer on meter-b's topic leaves the batch waiting: meter-a's answer to it,
    coming after (here the same client's, on a broker without ACLs, for their order), is
    taken and each delivery is ``delivered``."""

    def both(topic: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
        own = body["response_topic"]
        return [(own.replace("/meter-a/", "/meter-b/"), _answers(body)), (own, _answers(body))]

    settings = parse_settings({"url": broker.url, "client_id": "headend-kept"})
    link = GatewayLink(settings, prefix=PREFIX, timeout=3.0)
    async with _gateway(broker, "meter-b", "meter-a", both):
        await link.start()
        try:
            await real(link.connected.wait())
            keys = ["zse-headend:9:000D6F0000000A01:0", "zse-headend:9:000D6F0000000A02:0"]
            deliveries = [_delivery(keys[0], DEVICE_A1), _delivery(keys[1], DEVICE_A2)]
            answers = await real(asyncio.gather(*map(link.deliver, deliveries)))
        finally:
            await link.close()
    assert answers == [Answer(outcome=Outcome.DELIVERED)] * 2
    assert (link.publications, link.responses) == (1, 2)


async def test_with_per_meter_acls_only_the_meter_s_own_gateway_answers(tmp_path: Path) -> None:
    """On a Mosquitto whose ACL lets each gateway publish under its own base topic only (no
    grant on any worker's topic): meter-a's gateway answers on the topic its command names,
    and the delivery is ``delivered`` (before, that topic was the worker's own, outside the
    gateway's base: the broker dropped the answer, the meter was unreachable); meter-b's
    gateway, which knows the worker's name from its own commands, is refused by the broker on
    meter-a's response topic, and its answer on its own topic is not meter-a's: meter-a's
    next delivery, its gateway gone, ends unreachable."""
    directory = tmp_path / "mosquitto"
    directory.mkdir()
    (directory / "acl").write_text(ACL)
    broker = Broker(directory, listener=f"allow_anonymous true\nacl_file {directory / 'acl'}\n")
    broker.start()
    settings = parse_settings({"url": broker.url, "client_id": "headend-acl"})
    link = GatewayLink(settings, prefix=PREFIX, timeout=3.0)
    await link.start()
    try:
        await real(link.connected.wait())

        def honest(topic: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
            return [(body["response_topic"], _answers(body))]

        async with _gateway(broker, "meter-a", "meter-a", honest):
            first = await real(link.deliver(_delivery("zse-headend:9:000D6F0000000A01:0",
                                                      DEVICE_A1)))  # fmt: skip
        assert first == Answer(outcome=Outcome.DELIVERED)
        key = "zse-headend:9:000D6F0000000A02:0"
        waiting = asyncio.ensure_future(link.deliver(_delivery(key, DEVICE_A2)))
        await until(lambda: asyncio.sleep(0, link.commands == 2))  # published to meter-a
        async with _gateway(broker, "meter-b", "meter-b", honest) as forger:
            forged = json.dumps(_ok("load_control", key, DEVICE_A2))
            with broker_time():
                await forger.publish(link.response_topic("meter-a"), forged, qos=1)  # refused
                await forger.publish(link.response_topic("meter-b"), forged, qos=1)  # after it
            await until(lambda: asyncio.sleep(0, link.responses == 2))
        (second,) = await run_out(asyncio.gather(waiting, return_exceptions=True))
        assert isinstance(second, MeterUnreachable), second
        assert link.responses == 2  # meter-a's answer, and meter-b's on its own topic only
    finally:
        await link.close()
        broker.stop()


async def test_an_upgraded_worker_leaves_its_old_response_topic(broker: Broker) -> None:
    """A worker's session from before subscribed to ``<prefix's parent>/headend/<client
    id>/response``, where every gateway could publish: the upgraded worker leaves it on
    connecting, so an answer there (meter-b's gateway's, for meter-a's delivery) reaches
    nothing; one on meter-b's topic, published after it, does come (and is not meter-a's)."""
    old = "headend/headend-old/response"  # PREFIX ``gw`` has no parent
    session = aiomqtt.Client("127.0.0.1", broker.port, identifier="headend-old",
                             clean_session=False)  # fmt: skip
    with broker_time():
        await session.__aenter__()
        await session.subscribe(old, qos=1)
        await session.__aexit__(None, None, None)
    settings = parse_settings({"url": broker.url, "client_id": "headend-old"})
    link = GatewayLink(settings, prefix=PREFIX, timeout=3.0)
    await link.start()
    try:
        await real(link.connected.wait())
        key = "zse-headend:9:000D6F0000000A01:0"
        waiting = asyncio.ensure_future(link.deliver(_delivery(key, DEVICE_A1)))
        await until(lambda: asyncio.sleep(0, link.commands == 1))
        async with _gateway(broker, "meter-b", "meter-b", lambda *_: []) as forger:
            forged = json.dumps(_ok("load_control", key, DEVICE_A1))
            with broker_time():
                await forger.publish(old, forged, qos=1)
                await forger.publish(f"{PREFIX}/meter-b/bridge/response/headend-old", forged)
            await until(lambda: asyncio.sleep(0, link.responses == 1 or waiting.done()))
        assert not waiting.done(), waiting  # the answer on the old topic was not taken
        (answer,) = await run_out(asyncio.gather(waiting, return_exceptions=True))
        assert isinstance(answer, MeterUnreachable), answer
        assert (link.responses, link.events) == (1, 0)
    finally:
        await link.close()
