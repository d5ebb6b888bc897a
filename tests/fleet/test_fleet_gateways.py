"""Meters as gateways (issue #19 item 2): a headend worker reaches each meter only through
the broker, where the meter's ESI runs the ``zse mqtt`` bridge; faults with real servers
(Mosquitto, PostgreSQL): a gateway offline for a while, the broker restarted mid-run, two
workers draining one queue. Every device's outcome is recorded once, and each gateway carries
each device's send out once (counted at its ESI)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiomqtt

from tests.fleet.helpers import (
    PREFIX,
    enqueue_lce,
    gateways,
    lce,
    real,
    run_out_until,
    settled,
    until,
)
from tests.mqtt.broker import Broker
from zse.headend.core import Outcome, SendKind
from zse.headend.gateway import GatewayLink
from zse.headend.link import Answer, Delivery, MeterUnreachable
from zse.headend.queue import JobQueue, open_queue
from zse.headend.worker import Worker
from zse.mqtt.bridge import broker_time
from zse.mqtt.core import parse_settings

#: A Load Control Event's outcomes once a device acted on it (it runs one minute).
ACTED = {Outcome.RECEIVED, Outcome.STARTED, Outcome.COMPLETED}
DONE = {Outcome.COMPLETED}
#: A device's outcomes once its gateway answered the delivery.
ANSWERED = {Outcome.DELIVERED, *ACTED}


def worker(queue: JobQueue, broker: Broker, name: str, **options: Any) -> Worker:
    loop = asyncio.get_running_loop()
    settings = parse_settings({"url": broker.url, "client_id": f"headend-{name}"})
    link = GatewayLink(settings, prefix=PREFIX, timeout=options.pop("timeout", 2.0))
    return Worker(queue, link, owner=name, clock=loop.time, **options)


async def run(*workers: Worker) -> None:
    for w in workers:
        await w.link.start()
        await w.start()


async def stop(*workers: Worker) -> None:
    for w in workers:
        await w.stop()
        await w.link.close()


async def test_a_load_control_event_reaches_every_device_through_its_gateway(
    broker: Broker, tmp_path: Path, place: Any
) -> None:
    queue = await open_queue(place("queue"))
    async with gateways(broker, tmp_path / "meters") as gw:
        one = worker(queue, broker, "w1")
        await run(one)
        try:
            await enqueue_lce(queue, 1, gw.devices())
            rows = await settled(queue, DONE)
        finally:
            await stop(one)
        assert {(r.device, r.meter) for r in rows} == set(gw.devices())
        assert all(r.attempts == 1 and r.state == "sent" for r in rows)
        assert gw.executed == {(device, 1): 1 for device, _ in gw.devices()}
        assert one.recorded == len(rows) == 6
    await queue.close()


async def test_a_gateway_offline_for_a_while_gets_its_sends_once_when_back(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    queue = await open_queue(postgres.store_url("offline_gateway"))
    async with gateways(broker, tmp_path / "meters") as gw:
        await gw.offline("meter-2")
        one = worker(queue, broker, "w1")
        await run(one)
        try:
            await enqueue_lce(queue, 7, gw.devices())

            async def recorded_offline() -> bool:
                rows = await queue.rows(7)
                away = [r for r in rows if r.meter == "meter-2"]
                return bool(away) and all(r.outcome is Outcome.OFFLINE for r in away)

            link = one.link
            assert isinstance(link, GatewayLink)

            async def meter_1_answered() -> bool:  # the fence: only meter-2's waits are left
                rows = await queue.rows(7)
                here = [r for r in rows if r.meter == "meter-1"]
                return link.commands == len(rows) and all(r.outcome in ANSWERED for r in here)

            await until(meter_1_answered)
            await run_out_until(recorded_offline)  # meter-2's link timeout, at once
            rows = {r.device: r for r in await queue.rows(7)}
            away = [r for r in rows.values() if r.meter == "meter-2"]
            assert all(r.detail == "meter meter-2 did not answer" for r in away), away
            assert all(r.attempts == 0 and r.tries == 0 for r in away), away
            assert not [d for d, _ in gw.executed if rows[d].meter == "meter-2"]
            # back: the commands that waited at the broker are carried out once; the
            # worker's next try (same key) is answered from the gateway's record
            await gw.online("meter-2")
            rows_after = await settled(queue, DONE)
        finally:
            await stop(one)
        assert gw.executed == {(device, 7): 1 for device, _ in gw.devices()}
        # meter-1 answered at once; meter-2's devices reported before its next try, or
        # answered it from the gateway's record: one answer at most, never two
        assert {r.attempts for r in rows_after if r.meter == "meter-1"} == {1}
        assert {r.attempts for r in rows_after if r.meter == "meter-2"} <= {0, 1}
        assert {r.tries for r in rows_after} == {0}
    await queue.close()


async def test_the_broker_restarted_mid_run_loses_nothing_and_doubles_nothing(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    queue = await open_queue(postgres.store_url("broker_restart"))
    async with gateways(broker, tmp_path / "meters") as gw:
        one = worker(queue, broker, "w1", batch=1)
        await run(one)
        try:
            await enqueue_lce(queue, 3, gw.devices())

            async def some_sent() -> bool:
                return len([r for r in await queue.rows(3) if r.state == "sent"]) >= 2

            await until(some_sent)
            broker.restart()  # SIGTERM: Mosquitto keeps its sessions and queued messages
            rows = await settled(queue, DONE)
        finally:
            await stop(one)
        assert {r.device for r in rows} == {device for device, _ in gw.devices()}
        assert gw.executed == {(device, 3): 1 for device, _ in gw.devices()}
        assert all(r.attempts <= 1 for r in rows)
    await queue.close()


async def test_two_workers_drain_one_queue_and_no_job_is_done_twice(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    queue = await open_queue(postgres.store_url("two_workers"))
    async with gateways(broker, tmp_path / "meters") as gw:
        workers = [worker(queue, broker, f"w{n}", batch=2) for n in (1, 2)]
        for send in (11, 12):
            await enqueue_lce(queue, send, gw.devices())
        await run(*workers)
        try:
            # the second event supersedes the first where they overlap (SE D.2.2.3.1)
            rows = await settled(queue, {Outcome.COMPLETED, Outcome.CANCELLED})
        finally:
            await stop(*workers)
        assert len(rows) == 12
        assert {r.outcome for r in rows if r.send == 12} == {Outcome.COMPLETED}
        assert sum(w.recorded for w in workers) == 12  # each job's answer recorded once
        expected = {(device, send): 1 for device, _ in gw.devices() for send in (11, 12)}
        assert gw.executed == expected
        assert all(r.attempts == 1 for r in rows)
    await queue.close()


async def test_a_repeated_key_is_answered_not_carried_out_again_after_a_gateway_restart(
    broker: Broker, tmp_path: Path
) -> None:
    async with gateways(broker, tmp_path / "meters", meters=1) as gw:
        settings = parse_settings({"url": broker.url, "client_id": "headend-link"})
        link = GatewayLink(settings, prefix=PREFIX, timeout=5.0)
        await link.start()
        try:
            device, meter = gw.devices()[0]
            delivery = Delivery(
                key=f"zse-headend:9:{device}:0",
                meter=meter,
                device=device,
                kind=SendKind.LOAD_CONTROL,
                payload=lce(9),
            )
            first = await real(link.deliver(delivery))
            await gw.offline(meter)
            await gw.online(meter)  # a new bridge: its record of keys comes from its store
            again = await real(link.deliver(delivery))
            fresh = await real(link.deliver(replace(delivery, key=f"zse-headend:9:{device}:1")))
        finally:
            await link.close()
        assert first == again == fresh == Answer(outcome=Outcome.DELIVERED)
        assert gw.executed == {(device, 9): 2}  # the first key once, the next try once


def deliveries(gw: Any, send: int) -> list[Delivery]:
    return [
        Delivery(
            key=f"zse-headend:{send}:{device}:0",
            meter=meter,
            device=device,
            kind=SendKind.LOAD_CONTROL,
            payload=lce(send),
        )
        for device, meter in gw.devices()
    ]


async def test_a_meter_s_deliveries_started_together_go_as_one_batch_each_answered(
    broker: Broker, tmp_path: Path
) -> None:
    """``GatewayLink(combine=True)``: what a worker's claim starts together for one meter is
    one ``batch`` publication, each delivery answered by its own key (carried out once);
    one past its ``send_by`` is not sent; ``combine=False``: one publication each."""
    async with gateways(broker, tmp_path / "meters", meters=2) as gw:
        settings = parse_settings({"url": broker.url, "client_id": "headend-batches"})
        link = GatewayLink(settings, prefix=PREFIX, timeout=5.0)
        alone = replace(settings, client_id="headend-apart")
        apart = GatewayLink(alone, prefix=PREFIX, timeout=5.0, combine=False)
        await link.start()
        await apart.start()
        try:
            await real(link.connected.wait())
            await real(apart.connected.wait())
            batched = deliveries(gw, 4)
            late = replace(batched[0], key="late", send_by=asyncio.get_running_loop().time())
            answers = await real(
                asyncio.gather(*map(link.deliver, [*batched, late]), return_exceptions=True)
            )
            one_each = await real(asyncio.gather(*map(apart.deliver, deliveries(gw, 5))))
        finally:
            await link.close()
            await apart.close()
        *delivered, not_sent = answers
        assert delivered == [Answer(outcome=Outcome.DELIVERED)] * 6
        assert isinstance(not_sent, MeterUnreachable)
        assert "lease was ending" in str(not_sent)
        assert (link.commands, link.publications, link.responses) == (6, 2, 2)
        assert one_each == [Answer(outcome=Outcome.DELIVERED)] * 6
        assert (apart.commands, apart.publications, apart.responses) == (6, 6, 6)
        assert gw.executed == {(device, send): 1 for device, _ in gw.devices() for send in (4, 5)}


async def test_a_batch_refused_as_a_whole_is_each_delivery_s_answer(broker: Broker) -> None:
    """A gateway that refuses the batch itself (here one without batches: "unknown command")
    answers each of its deliveries so: skipped, final, the refusal in the detail."""
    older = aiomqtt.Client("127.0.0.1", broker.port, identifier="gw-older")
    settings = parse_settings({"url": broker.url, "client_id": "headend-refused"})
    link = GatewayLink(settings, prefix=PREFIX, timeout=5.0)

    async def refuse() -> None:
        async for message in older.messages:
            body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            name = str(message.topic).rsplit("/", 1)[1]
            error = {"field": "command", "message": f"unknown command {name!r}"}
            answer = {"command": name, "correlation_id": body["correlation_id"]}
            answer |= {"status": "error", "error": error}
            await older.publish(body["response_topic"], json.dumps(answer), qos=1)

    with broker_time():
        await older.__aenter__()
        await older.subscribe(f"{PREFIX}/old-meter/bridge/request/+", qos=1)
    task = asyncio.get_running_loop().create_task(refuse())
    await link.start()
    try:
        await real(link.connected.wait())
        two = [
            Delivery(
                key=f"k{n}",
                meter="old-meter",
                device=f"00:0d:6f:00:00:00:00:0{n}",
                kind=SendKind.LOAD_CONTROL,
                payload=lce(6),
            )
            for n in (1, 2)
        ]
        answers = await real(asyncio.gather(*map(link.deliver, two)))
    finally:
        await link.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        with broker_time():
            await older.__aexit__(None, None, None)
    refused = "refused: command: unknown command 'batch'"
    assert answers == [Answer(outcome=Outcome.SKIPPED, detail=refused, final=True)] * 2
    assert (link.publications, link.responses, link._batches) == (1, 1, {})
