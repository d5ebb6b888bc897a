"""The headend's workers on gateways that send their devices' events in batches (``[mqtt]
event_batches``, ADR 0027), on a real Mosquitto: a batch's events are each recorded as if
they had come alone, the batch acknowledged once all are (one not recorded: the whole batch
comes again); an entry that is not a device event of that meter is dropped alone, never an
exception out of the link."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fleet.helpers import PREFIX, enqueue_lce, gateways, real, settled, until
from tests.fleet.test_fleet_gateway_garbage import _VALUES
from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber
from zse.errors import StoreError
from zse.headend.core import Outcome, SendKind
from zse.headend.gateway import GatewayLink
from zse.headend.link import Lifecycle, Report
from zse.headend.queue import open_queue
from zse.headend.worker import Worker
from zse.mqtt.core import MAX_EVENTS, parse_settings

MAC = "00:0d:6f:00:0a:00:00:01"
NODE = "000d6f000a000001"
BATCH = f"{PREFIX}/meter-1/bridge/events"


def report(send: int, status: int = 2, device: str = MAC) -> dict[str, Any]:
    """A bridge's ``ReportReceived`` payload (docs/mqtt.md)."""
    told = {"issuer_event_id": send, "event_status": status}
    return {"event": "ReportReceived", "device": device, "time": 1, "report": told}


def batch(*entries: tuple[str, Any]) -> dict[str, Any]:
    return {"events": [{"topic": topic, "payload": payload} for topic, payload in entries]}


def made_link(settings_: Any = None, *, timeout: float = 30.0) -> tuple[GatewayLink, list[Any]]:
    """A link (not connected) whose listeners record what they are handed, at once."""
    settings_ = settings_ or parse_settings({"url": "mqtt://127.0.0.1", "client_id": "w1"})
    link = GatewayLink(settings_, prefix=PREFIX, timeout=timeout)
    seen: list[Any] = []

    def recorded(what: Any) -> asyncio.Future[None]:
        seen.append(what)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    link.on_report(recorded)
    link.on_lifecycle(recorded)
    return link, seen


async def test_each_event_of_a_batch_is_handed_on_and_what_is_not_one_is_dropped() -> None:
    link, seen = made_link()
    changed: dict[str, Any] = {"event": "LifecycleChanged", "device": MAC}
    changed |= {"lifecycle_event": "provision"}
    changed |= {"from_state": "new", "to_state": "pending provisioning", "time": 5}
    confirmed = {"event": "MessageConfirmed", "device": MAC, "message": {"message_id": 9}}
    good = batch(
        (f"{NODE}/drlc", report(1)),
        (f"{NODE}/drlc", {"event": "ReportReceived"}),  # fields missing: dropped alone
        (f"{NODE}/lifecycle", changed),
        (f"{NODE}/metering", report(2)),  # not a kind the headend records
        ("bridge/state", report(3)),  # the bridge's own level
        (f"../meter-2/{NODE}/drlc", report(4)),  # another meter's
        (f"{NODE}/drlc/x", report(5)),
        (f"{NODE}0/drlc", report(6)),
        (f"{NODE}/drlc", "not an object"),
        (f"{NODE}/message", confirmed),
    )
    good["events"] += [7, None, {"topic": 1, "payload": {}}, {"payload": report(8)}]
    waits = link._handle(BATCH, json.dumps(good).encode())
    assert len(waits) == 3  # one per event handed on: the batch's acknowledgement waits on them
    assert [type(s) for s in seen] == [Report, Lifecycle, Report]
    assert [(r.send, r.kind, r.outcome) for r in seen if isinstance(r, Report)] == [
        (1, SendKind.LOAD_CONTROL, Outcome.STARTED),
        (9, SendKind.MESSAGE, Outcome.CONFIRMED),
    ]
    (lifecycle,) = [c for c in seen if isinstance(c, Lifecycle)]
    assert lifecycle.meter == "meter-1"  # the meter of the batch's topic
    assert link.events == 1  # one message read
    seen.clear()
    for topic in (f"{PREFIX}/a/b/bridge/events", f"{PREFIX}/meter-1/bridge/events/x"):
        assert link._handle(topic, json.dumps(good).encode()) == []
    assert link._handle(BATCH, b'{"events": {"a": 1}}') == []
    many = batch(*[(f"{NODE}/drlc", report(n)) for n in range(MAX_EVENTS + 5)])
    assert len(link._handle(BATCH, json.dumps(many).encode())) == MAX_EVENTS
    assert [s.send for s in seen] == list(range(MAX_EVENTS))
    await link.close()


_ENTRY = st.fixed_dictionaries(
    {
        "topic": st.sampled_from([f"{NODE}/drlc", f"{NODE}/message", f"{NODE}/lifecycle"])
        | st.text(max_size=30),
        "payload": _VALUES,
    }
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.fixed_dictionaries({"events": st.lists(_ENTRY | _VALUES, max_size=8)})
    | _VALUES
    | st.binary(max_size=64)
)
def test_any_batch_is_handled_or_dropped(data: Any) -> None:
    async def handled() -> None:
        link, seen = made_link()
        payload = data if isinstance(data, bytes) else json.dumps(data, allow_nan=True).encode()
        waits = link._handle(BATCH, payload)
        assert isinstance(waits, list)
        assert len(waits) == len(seen)
        for item in seen:
            assert isinstance(item, Report | Lifecycle)
            if isinstance(item, Report):
                assert 0 <= item.send <= 0xFFFFFFFF
        await link.close()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(handled())
    finally:
        loop.close()


async def test_a_batch_not_recorded_whole_comes_again_whole(broker: Broker) -> None:
    """One event of a batch not recorded (the database away): the batch is not acknowledged,
    so the session's next connection gets it again, every event of it (recording them twice
    changes nothing: an outcome only moves forward); once all are recorded it is not sent
    again."""
    publisher = Subscriber(broker, "publisher")
    await publisher.connect()
    settings_ = parse_settings({"url": broker.url, "client_id": "headend-batches"})
    loop = asyncio.get_running_loop()

    async def session(listener: Any, sends: list[int], got: list[Report], count: int) -> None:
        link = GatewayLink(settings_, prefix=PREFIX)
        link.on_report(listener)
        await link.start()
        try:
            await real(link.connected.wait())
            if sends:
                entries = [(f"{NODE}/drlc", report(send)) for send in sends]
                await publisher.publish(BATCH, batch(*entries))
            await until(lambda: asyncio.sleep(0, len(got) >= count))
        finally:
            await link.close()

    seen: list[Report] = []

    def second_fails(got: Report) -> Any:
        seen.append(got)
        done: asyncio.Future[None] = loop.create_future()
        if got.send == 2:
            done.set_exception(StoreError("the database is away"))
        else:
            done.set_result(None)
        return done

    await session(second_fails, [1, 2, 3], seen, 3)
    assert [r.send for r in seen] == [1, 2, 3]
    seen.clear()
    await session(seen.append, [], seen, 3)  # the whole batch again
    assert [r.send for r in seen] == [1, 2, 3]
    seen.clear()
    await session(seen.append, [4, 5], seen, 2)  # acknowledged once recorded: not again
    assert [r.send for r in seen] == [4, 5]
    await publisher.close()


async def test_a_load_control_by_group_is_recorded_from_the_gateways_batches(
    broker: Broker, tmp_path: Path, place: Any
) -> None:
    """The issue's path with batching gateways: every device's outcome recorded once,
    each device's send carried out once, and the reports came to the worker in batches."""
    observer = Subscriber(broker, "observer")
    await observer.connect()
    queue = await open_queue(place("queue"))
    async with gateways(broker, tmp_path / "meters", event_batches=True) as gw:
        loop = asyncio.get_running_loop()
        link = GatewayLink(
            parse_settings({"url": broker.url, "client_id": "headend-w1"}),
            prefix=PREFIX,
            timeout=2.0,
        )
        one = Worker(queue, link, owner="w1", clock=loop.time, poll=0.1)
        await link.start()
        await one.start()
        try:
            await real(link.connected.wait())
            await enqueue_lce(queue, 11, gw.devices())
            rows = await settled(queue, {Outcome.STARTED, Outcome.COMPLETED})
        finally:
            await one.stop()
            await link.close()
        assert {(r.device, r.meter) for r in rows} == set(gw.devices())
        assert all(r.attempts == 1 and r.state == "sent" for r in rows)
        assert gw.executed == {(device, 11): 1 for device, _ in gw.devices()}
    await queue.close()
    batches = [value for topic, value, _ in observer.received if topic.endswith("/bridge/events")]
    assert batches, "no batch published"
    assert max(len(b["events"]) for b in batches) >= 2
    reports = [
        entry["payload"]
        for b in batches
        for entry in b["events"]
        if entry["payload"].get("event") == "ReportReceived"
    ]
    assert {r["report"]["issuer_event_id"] for r in reports} == {11}
    await observer.close()


async def test_a_listener_failing_on_one_event_leaves_the_others_of_its_batch_handed_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener that raises (a fault of the headend's code) on one event of a batch: that
    event is logged and dropped alone, as it would be on its own topic; the batch's other
    events are still handed on, and its acknowledgement still waits for them."""
    link = GatewayLink(
        parse_settings({"url": "mqtt://127.0.0.1", "client_id": "w1"}), prefix=PREFIX
    )
    loop = asyncio.get_running_loop()
    seen: list[int] = []
    pending: asyncio.Future[None] = loop.create_future()

    def listener(got: Report) -> asyncio.Future[None]:
        if got.send == 2:
            raise RuntimeError("a bug of the listener")
        seen.append(got.send)
        return pending

    link.on_report(listener)
    entries = [(f"{NODE}/drlc", report(send)) for send in (1, 2, 3)]
    with caplog.at_level(logging.ERROR, logger="zse.headend.gateway"):
        waits = link._handle(BATCH, json.dumps(batch(*entries)).encode())
    assert seen == [1, 3]
    assert waits == [pending, pending]  # the acknowledgement waits for events 1 and 3
    (record,) = caplog.records
    assert BATCH in record.getMessage()
    assert "ReportReceived" not in record.getMessage()
    pending.set_result(None)
    await link.close()


async def test_a_batch_past_its_bound_says_what_it_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A batch of more than MAX_EVENTS events (no gateway of this version sends one): the
    first MAX_EVENTS are handed on, and the rest, acknowledged with the batch, are not lost
    without a word."""
    link, seen = made_link()
    many = batch(*[(f"{NODE}/drlc", report(n)) for n in range(MAX_EVENTS + 5)])
    with caplog.at_level(logging.WARNING, logger="zse.headend.gateway"):
        assert len(link._handle(BATCH, json.dumps(many).encode())) == MAX_EVENTS
    assert [s.send for s in seen] == list(range(MAX_EVENTS))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert f"{MAX_EVENTS + 5} events" in record.getMessage()
    assert "5 dropped" in record.getMessage()
    await link.close()


async def test_a_dead_workers_session_is_taken_over_with_its_batches(broker: Broker) -> None:
    """:meth:`GatewayLink.adopt` of a session with a batch waiting in it: every event of
    the batch handed on, and counted as events, not as one message."""
    publisher = Subscriber(broker, "publisher")
    await publisher.connect()
    dead = GatewayLink(parse_settings({"url": broker.url, "client_id": "w-dead"}), prefix=PREFIX)
    await dead.start()
    await real(dead.connected.wait())
    await dead.close()  # its session stays at the broker, its share with it
    entries = [(f"{NODE}/drlc", report(send)) for send in (1, 2, 3)]
    await publisher.publish(BATCH, batch(*entries))
    await publisher.publish(f"{PREFIX}/meter-1/{NODE}/drlc", report(4))
    live, got = made_link(parse_settings({"url": broker.url, "client_id": "w-live"}), timeout=5)
    assert await real(live.adopt("w-dead")) == 4
    assert sorted(r.send for r in got) == [1, 2, 3, 4]
    await live.close()
    await publisher.close()
