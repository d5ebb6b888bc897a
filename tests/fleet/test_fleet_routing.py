"""The headend's MQTT routing (issue #19, ADR 0021), on a real Mosquitto: each worker reads
only the responses to its own commands (the commands name its response topic) and a share
of the devices' events (a shared subscription); an event reaches the worker the broker gave
it even when that worker was away, and one a worker did not record is sent again when its
session returns. An observer subscribed to everything counts what was published."""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.helpers import PREFIX, enqueue_lce, gateways, real, settled, until
from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber
from zse.errors import StoreError
from zse.headend.core import Outcome
from zse.headend.gateway import GatewayLink
from zse.headend.link import Report
from zse.headend.queue import JobQueue, open_queue
from zse.headend.roster import Roster
from zse.headend.worker import SEND_MARGIN, Worker
from zse.installcode import canonical_eui64
from zse.mqtt.core import MqttConfigError, parse_settings

#: A device event's topic under the prefix: ``gw/<meter>/<device>/<kind>``.
EVENT = re.compile(rf"{PREFIX}/[^/]+/[^/]+/(drlc|message|lifecycle)")
MAC = "00:0d:6f:00:0a:00:00:01"


def worker(queue: JobQueue, broker: Broker, name: str, **options: Any) -> Worker:
    settings = parse_settings({"url": broker.url, "client_id": f"headend-{name}"})
    link = GatewayLink(settings, prefix=PREFIX, timeout=2.0)
    clock = asyncio.get_running_loop().time
    # the virtual clock runs ahead of the database's: no resync (it would pull the worker back)
    return Worker(queue, link, owner=name, clock=clock, batch=2, resync=math.inf, **options)


async def run(*workers: Worker) -> None:
    for w in workers:
        await w.link.start()
        await w.start()
        assert isinstance(w.link, GatewayLink)
        await real(w.link.connected.wait())


async def stop(*workers: Worker) -> None:
    for w in workers:
        await w.stop()
        await w.link.close()


def link(w: Worker) -> GatewayLink:
    assert isinstance(w.link, GatewayLink)
    return w.link


def events(observer: Subscriber) -> list[Any]:
    return [value for topic, value, _ in observer.received if EVENT.fullmatch(topic)]


async def test_each_worker_reads_its_own_responses_and_a_share_of_the_events(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    observer = Subscriber(broker, "observer")
    await observer.connect()
    queue = await open_queue(postgres.store_url("routing_share"))
    async with gateways(broker, tmp_path / "meters") as gw:
        workers = [worker(queue, broker, f"w{n}") for n in (1, 2)]
        await run(*workers)
        meters = {meter: {device for device, m in gw.devices() if m == meter}
                  for _, meter in gw.devices()}  # fmt: skip
        try:
            await enqueue_lce(queue, 21, gw.devices())
            await settled(queue, {Outcome.COMPLETED})

            async def all_read() -> bool:
                return sum(link(w).events for w in workers) >= len(events(observer))

            await until(all_read)
        finally:
            await stop(*workers)
        await observer.close()
    await queue.close()
    # each worker's answers come under each meter's base topic (ADR 0021's amendment)
    topics = [{link(w).response_topic(meter) for meter in meters} for w in workers]
    assert topics[0] == {f"{PREFIX}/{meter}/bridge/response/headend-w1" for meter in meters}
    answered = [sum(len(observer.on(topic)) for topic in mine) for mine in topics]
    assert [link(w).responses for w in workers] == answered  # its own, and only its own
    assert sum(link(w).commands for w in workers) == sum(w.recorded for w in workers) == 6
    assert sum(answered) == sum(link(w).publications for w in workers)  # a batch: one answer
    responses = [(t, v) for t, v, _ in observer.received if "/bridge/response/" in t]
    assert {t for t, _ in responses} <= topics[0] | topics[1]  # none on a default topic
    for topic, value in responses:  # each on the topic of the meter whose devices it gives
        given = [r.get("result", {}).get("outcomes", []) for r in value.get("responses", [value])]
        devices = {canonical_eui64(o["device"]) for outcomes in given for o in outcomes}
        assert devices, value
        assert devices <= meters[topic.split("/")[1]], (topic, value)
    published = events(observer)  # each device's reports and each send's LoadControlSent
    assert len(published) > 6
    assert sum(link(w).events for w in workers) == len(published)  # each event read once
    assert all(0 < link(w).events < len(published) for w in workers)  # shared, not copied
    assert gw.executed == {(device, 21): 1 for device, _ in gw.devices()}


async def test_events_given_to_a_worker_away_wait_for_it_and_are_recorded_when_it_returns(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    observer = Subscriber(broker, "observer")
    await observer.connect()
    queue = await open_queue(postgres.store_url("routing_away"))
    async with gateways(broker, tmp_path / "meters") as gw:
        one, two = worker(queue, broker, "w1"), worker(queue, broker, "w2")
        await run(one, two)
        try:
            await enqueue_lce(queue, 22, gw.devices())
            await settled(queue, {Outcome.STARTED})
            await stop(two)  # its persistent session stays at the broker, subscribed
            await asyncio.sleep(90)  # virtual: the event's minute runs; the devices report

            def completed() -> list[Any]:
                done = [e for e in events(observer) if e.get("status") == "completed"]
                return done if len(done) == 6 else []

            await observer.until(completed)
            again = worker(queue, broker, "w2")  # the same id: the same session
            await run(again)
            rows = await settled(queue, {Outcome.COMPLETED})
        finally:
            await stop(one, again)
        await observer.close()
    await queue.close()
    assert len(rows) == 6
    assert link(again).events > 0  # what the broker kept for it while it was away
    assert link(one).events + link(two).events + link(again).events == len(events(observer))
    assert gw.executed == {(device, 22): 1 for device, _ in gw.devices()}


async def test_a_worker_gone_for_good_has_its_share_taken_over_by_one_alive(
    broker: Broker, tmp_path: Path, postgres: Any
) -> None:
    observer = Subscriber(broker, "observer")
    await observer.connect()
    queue = await open_queue(postgres.store_url("routing_gone"))
    roster = await Roster.open(queue)
    async with gateways(broker, tmp_path / "meters") as gw:
        one, two = (worker(queue, broker, f"w{n}", lease=100, roster=roster) for n in (1, 2))
        await run(one, two)
        try:
            await enqueue_lce(queue, 23, gw.devices())
            await settled(queue, {Outcome.STARTED})
            await stop(two)  # for good: its session stays at the broker, subscribed
            await asyncio.sleep(90)  # virtual: the event's minute runs; the devices report

            def completed() -> list[Any]:
                done = [e for e in events(observer) if e.get("status") == "completed"]
                return done if len(done) == 6 else []

            await observer.until(completed)  # the silent one's share waits in its session
            before = link(one).events
            await asyncio.sleep(100)  # virtual: a lease without a word from w2
            rows = await settled(queue, {Outcome.COMPLETED})
        finally:
            await stop(one)
        await observer.close()
    gone = await roster.gone(before=float("inf"), keep="")
    await queue.close()
    assert len(rows) == 6
    assert link(one).events > before  # w2's share, taken over
    assert link(one).events + link(two).events == len(events(observer))
    assert [owner for owner, _ in gone] == ["w1"]  # w2 is off the roster
    assert gw.executed == {(device, 23): 1 for device, _ in gw.devices()}


async def test_an_event_not_recorded_is_sent_again_when_the_session_returns(
    broker: Broker,
) -> None:
    publisher = Subscriber(broker, "publisher")
    await publisher.connect()
    settings = parse_settings({"url": broker.url, "client_id": "headend-acks"})
    loop = asyncio.get_running_loop()

    def report(send: int) -> dict[str, Any]:
        status = {"issuer_event_id": send, "event_status": 2}
        return {"event": "ReportReceived", "device": MAC, "time": 1, "report": status}

    async def session(listener: Any, sends: list[int], got: list[Report], count: int) -> None:
        """A session of the link's client id: publish ``sends``, wait until ``got`` holds
        ``count`` reports."""
        link = GatewayLink(settings, prefix=PREFIX)
        link.on_report(listener)
        await link.start()
        try:
            await real(link.connected.wait())
            for send in sends:
                await publisher.publish(f"{PREFIX}/meter-1/000d6f000a000001/drlc", report(send))
            await until(lambda: asyncio.sleep(0, len(got) >= count))
        finally:
            await link.close()

    failed: list[Report] = []
    seen: list[Report] = []

    def fail(got: Report) -> Any:
        failed.append(got)
        refused: asyncio.Future[None] = loop.create_future()
        refused.set_exception(StoreError("the database is away"))
        return refused

    await session(fail, [5], failed, 1)
    assert [r.send for r in failed] == [5]
    await session(seen.append, [6], seen, 2)  # 5 again (never acknowledged), then 6
    assert [r.send for r in seen] == [5, 6]
    assert seen[0] == failed[0]
    seen.clear()
    await session(seen.append, [7], seen, 1)  # 5 and 6 were acknowledged once handled: not again
    assert [r.send for r in seen] == [7]

    def broken(got: Report) -> Any:  # not the database: it would fail again, so not kept
        failed.append(got)
        wrong: asyncio.Future[None] = loop.create_future()
        wrong.set_exception(ValueError("not a report this worker can record"))
        return wrong

    await session(broken, [8], failed, 2)
    seen.clear()
    await session(seen.append, [9], seen, 1)
    assert [r.send for r in seen] == [9]
    await publisher.close()


async def test_events_that_come_before_a_listener_wait_for_one(broker: Broker) -> None:
    """A worker starts its link, then (a database round trip later) listens: the events its
    session kept while it was away come in between, and wait, unacknowledged, for the
    listener (they were acknowledged and dropped: the rare loss of
    test_events_given_to_a_worker_away_wait_for_it_and_are_recorded_when_it_returns). Held
    ones a link closes with, no listener having come, are the session's next connection's."""
    publisher = Subscriber(broker, "publisher")
    await publisher.connect()
    settings = parse_settings({"url": broker.url, "client_id": "headend-early"})
    topic = f"{PREFIX}/meter-1/000d6f000a000001/drlc"

    def report(send: int) -> dict[str, Any]:
        status = {"issuer_event_id": send, "event_status": 2}
        return {"event": "ReportReceived", "device": MAC, "time": 1, "report": status}

    async def connected(link: GatewayLink, events: int) -> None:
        await link.start()
        await real(link.connected.wait())
        await until(lambda: asyncio.sleep(0, link.events >= events))

    first = GatewayLink(settings, prefix=PREFIX)  # the session and its subscriptions
    await connected(first, 0)
    await first.close()
    await publisher.publish(topic, report(10))  # kept for the session, away
    changed = {"event": "LifecycleChanged", "device": MAC, "lifecycle_event": "provision"}
    changed |= {"from_state": "new", "to_state": "pending provisioning", "time": 1}
    await publisher.publish(f"{PREFIX}/meter-1/000d6f000a000001/lifecycle", changed)
    seen: list[Report] = []
    early = GatewayLink(settings, prefix=PREFIX)
    try:
        await connected(early, 2)  # 10 and a lifecycle change came: nobody listens yet
        early.on_report(seen.append)
        assert [r.send for r in seen] == [10]
        # nothing follows lifecycle changes on this link: acknowledged at the next turn, not
        # held for ever (it would take a place of the broker's 20 unacknowledged)
        await asyncio.sleep(0)
        assert early._held == []
        await publisher.publish(topic, report(11))
        await until(lambda: asyncio.sleep(0, len(seen) == 2))
        assert [r.send for r in seen] == [10, 11]
    finally:
        await early.close()
    leaving = GatewayLink(settings, prefix=PREFIX)
    try:
        await connected(leaving, 0)
        await publisher.publish(topic, report(12))
        await until(lambda: asyncio.sleep(0, leaving.events == 1))
    finally:
        await leaving.close()  # 12 held, never handed: not acknowledged
    seen.clear()
    again = GatewayLink(settings, prefix=PREFIX)
    again.on_report(seen.append)
    try:
        await connected(again, 1)
        await until(lambda: asyncio.sleep(0, len(seen) == 1))
        assert [r.send for r in seen] == [12]  # 10 and 11 were acknowledged: not again
        await publisher.publish(topic, report(13))
        await until(lambda: asyncio.sleep(0, len(seen) == 2))
        assert again.events == 2  # 12 and 13: the lifecycle change was acknowledged too
    finally:
        await again.close()
    await publisher.close()


@pytest.mark.parametrize(
    ("options", "client_id"),
    [
        ({"group": "a/b"}, "w"),
        ({"group": "+"}, "w"),
        ({"group": ""}, "w"),
        ({}, "w+1"),
        ({"response_name": "r/#"}, "w"),
        ({"response_name": "load_control"}, "w"),  # a command's default response topic
        ({}, "batch"),
    ],
)
def test_a_bad_group_or_response_topic_is_a_config_error(
    options: dict[str, Any], client_id: str
) -> None:
    settings = parse_settings({"client_id": client_id})
    with pytest.raises(MqttConfigError):
        GatewayLink(settings, prefix=PREFIX, **options)


async def test_the_roster_hands_each_silent_worker_to_one_taker(place: Any) -> None:
    queue = await open_queue(place("roster"))
    try:
        roster = await Roster.open(queue)
        await Roster.open(queue)  # a second worker opening it: nothing changes
        await roster.beat("w1", "s1", now=10.0)
        await roster.beat("w2", "s2", now=20.0)
        await roster.beat("w1", "s1-new", now=30.0)  # the same worker, a new session
        assert await roster.gone(before=25.0, keep="w3") == [("w2", "s2")]
        assert await roster.gone(before=25.0, keep="w3") == []  # taken once
        assert await roster.gone(before=100.0, keep="w1") == []  # not itself
        assert await roster.gone(before=100.0, keep="w3") == [("w1", "s1-new")]
    finally:
        await queue.close()


async def test_a_job_whose_lease_is_ending_is_not_sent(broker: Broker, postgres: Any) -> None:
    """A worker sends a job only while its lease has more than ``SEND_MARGIN`` to run (one
    that stalled that long leaves the job to the worker that takes the lease over, which
    would send it too): here every lease is shorter than the margin, so nothing is published
    and the job waits for its back-off, its key unchanged."""
    observer = Subscriber(broker, "observer")
    await observer.connect()
    queue = await open_queue(postgres.store_url("routing_late"))
    late = worker(queue, broker, "w1", lease=SEND_MARGIN / 2)
    await run(late)
    try:
        await enqueue_lce(queue, 24, [("000D6F0000000001", "m1")])
        (row,) = await settled(queue, {Outcome.OFFLINE})
        assert row.detail == "meter m1: not sent, the worker's lease was ending"
        assert (row.attempts, row.tries) == (0, 0)
        assert not [topic for topic, _, _ in observer.received if "/bridge/request/" in topic]
    finally:
        await stop(late)
        await queue.close()
        await observer.close()


async def test_events_the_link_cannot_use_are_dropped_and_it_goes_on(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """Payloads on the event topics that are not events zse reads (numbers out of range,
    NaN and Infinity, nesting past the recursion limit, not UTF-8) are acknowledged and
    dropped; one its listener fails on is logged and acknowledged; the link goes on (each of
    them ended it before: its task died on the exception, with no reconnection)."""
    publisher = Subscriber(broker, "publisher")
    await publisher.connect()
    settings = parse_settings({"url": broker.url, "client_id": "headend-hostile"})
    base = f"{PREFIX}/meter-1/000d6f000a000001"
    status = '{"event":"ReportReceived","device":"%s","time":1,"report":%s}'
    confirmed = '{"event":"MessageConfirmed","device":"d","message":{"message_id":%s}}'
    hostile = [
        (f"{base}/message", confirmed % "1e999"),
        (f"{base}/message", confirmed % "4294967296"),
        (f"{base}/drlc", status % (MAC, '{"issuer_event_id":1,"event_status":-Infinity}')),
        (f"{base}/drlc", status % (MAC, '{"issuer_event_id":NaN,"event_status":2}')),
        (f"{base}/drlc", status % (MAC, '{"issuer_event_id":true,"event_status":2}')),
        (f"{base}/drlc", status % (MAC, '{"issuer_event_id":1,"event_status":' + "9" * 5000 + "}")),
        (f"{base}/lifecycle", '{"event":"LifecycleChanged","device":"d","lifecycle_event":"x",'
         '"to_state":"new","time":1e999}'),
        (f"{base}/drlc", '{"a":' * 5000),
        (f"{base}/drlc", b"\xff\xfe{}"),
        (f"{PREFIX}/meter-1/bridge/response/headend-hostile", "[" * 5000),
    ]  # fmt: skip
    seen: list[Report] = []
    fail = [True]

    def listener(report: Report) -> None:
        if report.send == 7 and fail.pop():
            raise RuntimeError("a listener's fault")
        seen.append(report)

    def report(send: int) -> str:
        return status % (MAC, f'{{"issuer_event_id":{send},"event_status":2}}')

    link = GatewayLink(settings, prefix=PREFIX)
    link.on_report(listener)
    try:
        await link.start()
        await real(link.connected.wait())
        for topic, payload in hostile:
            await publisher.publish(topic, payload)
        await publisher.publish(f"{base}/drlc", report(7))  # the listener fails on this one
        await publisher.publish(f"{base}/drlc", report(8))
        await until(lambda: asyncio.sleep(0, len(seen) == 1))
        assert [r.send for r in seen] == [8]
        assert link.connected.is_set()
        assert f"a message on {base}/drlc not handled" in caplog.text
    finally:
        await link.close()
    again = GatewayLink(settings, prefix=PREFIX)  # the same session: nothing was left unacked
    again.on_report(seen.append)
    try:
        await again.start()
        await real(again.connected.wait())
        await publisher.publish(f"{base}/drlc", report(9))
        await until(lambda: asyncio.sleep(0, len(seen) == 2))
        assert [r.send for r in seen] == [8, 9]
        assert again.events == 1
    finally:
        await again.close()
        await publisher.close()
