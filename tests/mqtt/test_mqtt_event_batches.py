"""A gateway's devices' events in batches (``[mqtt] event_batches``, ADR 0027): the events
waiting together in the outbox go as one message on ``<base>/bridge/events``, in their order,
each journal entry marked once the broker acknowledged its batch; anything else (retained
state, responses, readings) goes alone, as before."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import real_wait, running
from zse.mqtt import bridge as bridge_module
from zse.mqtt.bridge import OUTBOX
from zse.mqtt.core import (
    MAX_BATCH_BYTES,
    MAX_EVENTS,
    MqttConfigError,
    Publication,
    Topics,
    batched,
    device_event,
    node_id,
    parse_settings,
)

TOPICS = Topics("zse/meters/m1")
DEVICE = "000d6f000a000001"


def event(number: int, kind: str = "drlc", device: str = DEVICE) -> Publication:
    return Publication(f"{TOPICS.base}/{device}/{kind}", {"event": "ReportReceived", "n": number})


def carried(parts: list[tuple[list[int], Publication]]) -> list[tuple[str, Any]]:
    """What ``parts`` publish, flattened: (topic, payload) of each event, in order."""
    out: list[tuple[str, Any]] = []
    for _, publication in parts:
        if publication.topic == TOPICS.events:
            for entry in json.loads(publication.encode())["events"]:
                out.append((f"{TOPICS.base}/{entry['topic']}", entry["payload"]))
        else:
            out.append((publication.topic, publication.payload))
    return out


def test_a_run_of_events_is_one_batch_and_the_rest_goes_alone_in_order() -> None:
    state = Publication(TOPICS.state, "online", retain=True)
    answer = Publication(TOPICS.response("load_control"), {"status": "ok"})
    reading = Publication(f"{TOPICS.base}/{DEVICE}/metering", {"demand": 1}, retain=True)
    entries = [
        (1, event(1)),
        (2, event(2, "message")),
        (3, answer),
        (4, event(3, "lifecycle")),
        (5, state),
        (6, event(4)),
        (7, event(5)),
        (8, reading),
    ]
    parts = batched(TOPICS, entries)
    assert [seqs for seqs, _ in parts] == [[1, 2], [3], [4], [5], [6, 7], [8]]
    assert [p.topic for _, p in parts] == [
        TOPICS.events,
        answer.topic,
        event(3, "lifecycle").topic,  # a run of one goes alone, on its own topic
        TOPICS.state,
        TOPICS.events,
        reading.topic,
    ]
    assert carried(parts) == [
        (p.topic, p.payload) for _, p in entries
    ]  # every entry once, in its order
    first = json.loads(parts[0][1].encode())
    assert first == {
        "events": [
            {"topic": f"{DEVICE}/drlc", "payload": {"event": "ReportReceived", "n": 1}},
            {"topic": f"{DEVICE}/message", "payload": {"event": "ReportReceived", "n": 2}},
        ]
    }
    assert not parts[0][1].retain


@pytest.mark.parametrize(
    "publication",
    [
        Publication(f"{TOPICS.base}/{DEVICE}/drlc", {"a": 1}, retain=True),  # retained
        Publication(f"{TOPICS.base}/{DEVICE}/drlc", "text"),  # not a JSON object
        Publication(f"{TOPICS.base}/bridge/outbox", {"dropped": 1}),  # the bridge's own
        Publication(f"{TOPICS.base}/{DEVICE}/drlc/more", {"a": 1}),  # a level more
        Publication(f"{TOPICS.base}/{DEVICE}/", {"a": 1}),  # no kind
        Publication(f"{TOPICS.base}/{DEVICE}0/drlc", {"a": 1}),  # not an EUI-64
        Publication(f"zse/meters/m2/{DEVICE}/drlc", {"a": 1}),  # another base
        Publication(f"{TOPICS.base}x/{DEVICE}/drlc", {"a": 1}),
    ],
)
def test_what_is_not_a_device_event_is_never_batched(publication: Publication) -> None:
    assert device_event(TOPICS, publication) is None
    parts = batched(TOPICS, [(1, event(1)), (2, publication), (3, event(2))])
    assert [seqs for seqs, _ in parts] == [[1], [2], [3]]
    assert parts[1][1] is publication


def test_a_batch_carries_at_most_its_count_and_its_bytes() -> None:
    many = [(n, event(n)) for n in range(MAX_EVENTS * 2 + 1)]
    parts = batched(TOPICS, many)
    assert [len(seqs) for seqs, _ in parts] == [MAX_EVENTS, MAX_EVENTS, 1]
    big = [
        (n, Publication(f"{TOPICS.base}/{DEVICE}/message", {"text": "x" * 20_000, "n": n}))
        for n in range(7)
    ]
    parts = batched(TOPICS, big)
    assert all(len(p.encode()) <= MAX_BATCH_BYTES for _, p in parts)
    assert [len(seqs) for seqs, _ in parts] == [3, 3, 1]
    assert carried(parts) == [(p.topic, p.payload) for _, p in big]


_KINDS = st.sampled_from(["drlc", "message", "lifecycle", "metering"])
_ENTRY = st.one_of(
    st.builds(
        lambda n, kind, text: Publication(f"{TOPICS.base}/{DEVICE}/{kind}", {"n": n, "t": text}),
        st.integers(0, 10**6),
        _KINDS,
        st.text(max_size=3000),
    ),
    st.builds(
        lambda n, retain: Publication(f"{TOPICS.base}/bridge/response/x", {"n": n}, retain),
        st.integers(0, 10**6),
        st.booleans(),
    ),
    st.builds(lambda text: Publication(TOPICS.state, text, retain=True), st.text(max_size=10)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_ENTRY, max_size=150))
def test_every_entry_is_carried_once_in_order_within_the_bounds(
    publications: list[Publication],
) -> None:
    entries = list(enumerate(publications))
    parts = batched(TOPICS, entries)
    assert [seq for seqs, _ in parts for seq in seqs] == [seq for seq, _ in entries]
    assert carried(parts) == [(p.topic, p.payload) for p in publications]
    for seqs, publication in parts:
        if publication.topic == TOPICS.events:
            assert 2 <= len(seqs) <= MAX_EVENTS
            assert len(publication.encode()) <= MAX_BATCH_BYTES
            assert not publication.retain
        else:
            assert len(seqs) == 1


def test_the_setting_is_off_unless_asked_and_must_be_a_boolean() -> None:
    assert parse_settings({"url": "mqtt://h"}).event_batches is False
    assert parse_settings({"url": "mqtt://h", "event_batches": True}).event_batches is True
    with pytest.raises(MqttConfigError, match=r"mqtt\.event_batches: expected bool"):
        parse_settings({"url": "mqtt://h", "event_batches": "yes"})


async def test_the_devices_reports_come_in_batches_and_their_entries_are_marked(
    broker: Broker, tmp_path: Path
) -> None:
    """A load control event to the simulated HAN's three devices: their reports (Received
    and Started each, once) come on ``zse/bridge/events``, several to a message (a run the
    real-time linger left at one goes on its device's own topic); the command's answer alone
    on its response topic; every outbox entry is marked once published."""
    async with running(broker, tmp_path, event_batches=True, send_events=False) as (
        sim,
        bridge,
        sub,
    ):
        request = {
            "correlation_id": "lc-batched",
            "group": "sim",
            "event": {
                "issuer_event_id": 0x4242,
                "device_class": 0x0FFF,
                "duration_in_minutes": 1,
                "criticality_level": 1,
                "duty_cycle": 50,
            },
        }
        await sub.publish("zse/bridge/request/load_control", request)
        (answer,) = await sub.until(lambda: sub.on("zse/bridge/response/load_control"))
        assert answer["status"] == "ok"
        devices = {node_id(device) for device in sim.devices.values()}

        def reports() -> list[tuple[str, dict[str, Any]]]:
            return [
                (entry["topic"], entry["payload"])
                for batch in sub.on("zse/bridge/events")
                for entry in batch["events"]
            ]

        def alone() -> list[tuple[str, dict[str, Any]]]:
            # a report that came alone (the linger is real time: a loaded machine splits runs)
            return [(t[len("zse/") :], v) for t, v, _ in sub.received if t.endswith("/drlc")]

        def started() -> set[str]:
            found = {
                topic.split("/")[0]
                for topic, value in [*reports(), *alone()]
                if topic.endswith("/drlc") and value.get("status") == "started"
            }
            return found if found >= devices else set()

        assert await sub.until(started) == devices
        batches = sub.on("zse/bridge/events")
        assert max(len(batch["events"]) for batch in batches) >= 2
        assert all(len(batch["events"]) >= 2 for batch in batches)  # one alone: its own topic
        told = sorted((t.split("/")[0], v["status"]) for t, v in [*reports(), *alone()])
        assert told == sorted((d, s) for d in devices for s in ("received", "started"))
        for topic, value in reports():
            assert topic.split("/")[0] in devices
            assert value["device"].replace(":", "").lower() == topic.split("/")[0]
        await real_wait(bridge.drained.wait())  # (no message comes once it is done)
        assert await bridge.store.unreported(OUTBOX) == []


@pytest.mark.parametrize("kind", ["metering", "registry", "state"])
def test_readings_and_states_not_retained_are_never_batched(kind: str) -> None:
    """With ``retain = false`` the meter's readings, a device's registry state and a HAN
    device's state are not retained, yet they are no events: they stay on their own topics
    (docs/mqtt.md), where Home Assistant follows them."""
    state = Publication(f"{TOPICS.base}/{DEVICE}/{kind}", {"time": 1}, retain=False)
    assert device_event(TOPICS, state) is None
    parts = batched(TOPICS, [(1, event(1)), (2, state), (3, state), (4, event(2))])
    assert [seqs for seqs, _ in parts] == [[1], [2], [3], [4]]
    for kind_of_event in ("drlc", "message", "lifecycle", "network", "security", "price"):
        assert device_event(TOPICS, event(1, kind_of_event)) == f"{DEVICE}/{kind_of_event}"


@pytest.mark.parametrize(("limit", "count"), [(10_000, 3 * MAX_EVENTS + 1), (8, 8)])
async def test_a_full_batch_or_a_backlog_goes_without_the_linger(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int, count: int
) -> None:
    """The linger (an hour long here) ends once a full batch waits, or a full outbox
    (``outbox_limit`` below a batch: lingering on would drop the oldest): a busy stream or
    the backlog of a reconnection goes at once, round after round, not a linger each."""
    monkeypatch.setattr(bridge_module, "EVENT_LINGER", 3600.0)
    quiet = {"send_events": False, "reading_interval": 0}  # the outbox holds ours only
    async with running(broker, tmp_path, event_batches=True, outbox_limit=limit, **quiet) as (
        _,
        bridge,
        sub,
    ):
        topics = bridge.topics

        def carried_now() -> list[int]:
            found = [v["n"] for t, v, _ in sub.received if t == topics.device(DEVICE, "drlc")]
            for value in sub.on(topics.events):
                found += [entry["payload"]["n"] for entry in value["events"]]
            return sorted(found)

        # one event lingers, then enough for a full batch (or outbox) come: all go at once
        bridge.publish(Publication(topics.device(DEVICE, "drlc"), {"n": 0}))
        await real_wait(bridge._journaled_future())
        for _ in range(3):
            await asyncio.sleep(0)  # loop turns, no time: the sender lingers
        assert carried_now() == []
        for number in range(1, count):
            bridge.publish(Publication(topics.device(DEVICE, "drlc"), {"n": number}))
        everything = list(range(count))
        assert await sub.until(lambda: carried_now() == everything)
        await real_wait(bridge.drained.wait())


def test_a_round_reads_no_further_than_the_publications_it_takes() -> None:
    """``most``: the bridge's round takes at most its window of publications; the entries
    past them are not encoded for nothing (a backlog of events behind answers)."""
    answer = Publication(TOPICS.response("x"), {"status": "ok"})
    entries = [(1, answer), (2, event(1)), (3, event(2)), (4, answer), (5, event(3))]
    unreadable = Publication(event(9).topic, {"not JSON": {1, 2}})  # encoded: TypeError
    entries += [(6, answer), (7, unreadable), (8, event(5))]
    parts = batched(TOPICS, entries, most=4)
    assert [seqs for seqs, _ in parts] == [[1], [2, 3], [4], [5]]
    assert batched(TOPICS, entries[:6], most=2) == batched(TOPICS, entries[:6])[:2]
    assert len(batched(TOPICS, entries[:6], most=9)) == 5
