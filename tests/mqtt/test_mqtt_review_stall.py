"""The MQTT bridge's send loop never stalls on one publication, on a real Mosquitto over the
simulated HAN: a publication no client may publish (a wildcard or a NUL in its topic, a topic
or a packet longer than MQTT allows) is refused at :meth:`~zse.mqtt.bridge.BridgeShell.publish`,
or taken out of the outbox unpublished, logged and counted; what follows it goes out in order.
Before, it stayed at the outbox's head: paho refused it (a wildcard, a long topic) or Mosquitto
ended the connection on it (a NUL), at every reconnection, and nothing after it was published."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import real_wait, running
from zse.mqtt.bridge import OUTBOX
from zse.mqtt.core import (
    MAX_REMAINING_LENGTH,
    MAX_TOPIC_BYTES,
    Outbox,
    Publication,
    unpublishable,
)
from zse.store import Batch

#: Topics no client may publish on (MQTT 3.1.1 sections 1.5.3, 4.7.1, 4.7.3), and why.
BAD_TOPICS = {
    "zse/a+b": "wildcard",
    "zse/#": "wildcard",
    "zse/a\0b": "NUL",
    "": "0 bytes",
    "zse/" + "x" * MAX_TOPIC_BYTES: "65539 bytes",
    "zse/\ud800": "not UTF-8",
}


async def test_publish_refuses_a_topic_no_client_may_publish_and_the_rest_goes_out(
    broker: Broker, tmp_path: Path
) -> None:
    """``publish`` raises :class:`ValueError` saying why (the topic cut), nothing is queued,
    and the publications after it arrive in order, on the same connection."""
    async with running(broker, tmp_path, reading_interval=0) as (_sim, bridge, sub):
        refused = []
        for topic, why in BAD_TOPICS.items():
            try:
                bridge.publish(Publication(topic, {"n": 0}))
            except ValueError as exc:
                refused.append((why, str(exc)))
        bridge.publish(Publication("zse/after", {"n": 1}))
        bridge.publish(Publication("zse/after", {"n": 2}))
        assert await sub.until(lambda: len(sub.on("zse/after")) == 2)
        assert sub.on("zse/after") == [{"n": 1}, {"n": 2}]
        assert bridge.connections == 1
    assert [why for why, _ in refused] == list(BAD_TOPICS.values())
    for why, text in refused:
        assert why in text, text
        assert len(text) < 400, "the topic is cut"


async def test_an_outbox_entry_no_client_may_publish_is_taken_out_logged_and_counted(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry already in the outbox (journaled) whose topic no client may publish on: the
    send loop takes it out unpublished, marked reported in the journal, logs it once with
    its topic and why, counts it on ``<base>/bridge/outbox`` (``refused``, retained), and
    publishes the entries after it in order, without ending the connection."""
    async with running(broker, tmp_path, reading_interval=0) as (_sim, bridge, sub):
        bad = [Publication("zse/a+b", {"n": 0}), Publication("zse/a\0b", {"n": 0})]
        batch = Batch()
        for publication in bad:
            batch.append(OUTBOX, "publish", publication.to_record())
        for seq, publication in zip(await bridge.store.commit(batch), bad, strict=True):
            bridge.outbox.add(seq, publication)
        bridge.publish(Publication("zse/after", {"n": 1}))
        assert await sub.until(lambda: sub.on("zse/after")) == [{"n": 1}]
        said = await sub.until(lambda: sub.on("zse/bridge/outbox"))
        assert said[-1] == {"dropped": 0, "limit": bridge.outbox.limit, "refused": 2}
        assert bridge.outbox.refused == 2
        assert bridge.connections == 1
        # the journal marks a run reported once the broker acknowledged all of it: a moment
        # after the subscriber has the last (it failed under load, the check came first)
        await real_wait(bridge.drained.wait())
        assert await bridge.store.unreported_with(OUTBOX, lambda value: value["topic"]) == []
    warned = [r.getMessage() for r in caplog.records if "never publishable" in r.getMessage()]
    assert len(warned) == len(bad), warned
    assert "'zse/a+b'" in warned[0]
    assert "wildcard" in warned[0]
    assert "'zse/a\\x00b'" in warned[1]
    assert "NUL" in warned[1]


def test_a_packet_longer_than_mqtt_allows_is_unpublishable() -> None:
    """A PUBLISH's topic (2 + its bytes), packet identifier (2) and payload together are at
    most 268,435,455 bytes (MQTT 3.1.1 section 2.2.3): paho checks the payload alone, so a
    payload just under its bound on a long topic made a packet no broker reads."""
    topic = "zse/t"
    most = MAX_REMAINING_LENGTH - 2 - len(topic) - 2
    assert unpublishable(topic, most) is None
    why = unpublishable(topic, most + 1)
    assert why is not None
    assert str(MAX_REMAINING_LENGTH) in why
    assert unpublishable("zse/t", 0) is None


def test_the_outbox_report_counts_refused_entries_only_once_there_are_some() -> None:
    outbox = Outbox(5)
    assert outbox.report() == {"dropped": 0, "limit": 5}
    outbox.refused += 1
    assert outbox.report() == {"dropped": 0, "limit": 5, "refused": 1}


def test_an_entry_refused_again_after_a_lost_connection_is_counted_once() -> None:
    """A connection lost after an entry was refused but before the batch was marked reported
    has the send loop refuse it again at the next connection: it was counted (and logged)
    twice, ``refused`` on ``<base>/bridge/outbox`` saying two for one."""
    outbox = Outbox(5)
    assert outbox.refuse([7]) is True
    assert outbox.refuse([7]) is False  # the next connection's send loop
    assert outbox.report() == {"dropped": 0, "limit": 5, "refused": 1}
    outbox.done(7)
    assert outbox.refuse([8, 9]) is True  # a batch of events: one publication, two entries
    assert outbox.refuse([8, 9]) is False
    assert outbox.refused == 2


async def test_the_send_loop_refusing_an_entry_twice_counts_and_logs_it_once(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What the send loop does at the next connection when the first ended between its
    refusal and its journal mark: the same outbox entries taken out again."""
    async with running(broker, tmp_path, reading_interval=0) as (_sim, bridge, _sub):
        parts = [([1_000_001], Publication("zse/a+b", {"n": 0}))]
        assert bridge._publishable(parts) == []
        assert bridge._publishable(parts) == []
        assert bridge.outbox.refused == 1
    warned = [r for r in caplog.records if "never publishable" in r.getMessage()]
    assert len(warned) == 1
