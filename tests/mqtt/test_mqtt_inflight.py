"""The bridge's messages in flight against a real Mosquitto with its default
``max_inflight_messages`` (20): at QoS 2 the bridge had up to 100 publications awaiting their
PUBCOMP, and Mosquitto, which over MQTT 3.1.1 cannot refuse one, answered PUBREC to those past
its bound and dropped them (published, acknowledged, never delivered); a command that could not
be answered (the store failing) was left unacknowledged, so after 20 of them Mosquitto sent the
bridge no command at all until it reconnected."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait, settings
from tests.mqtt.test_mqtt_store_failure import FullDisk, Shell, _cmd
from zse.mqtt.core import Publication
from zse.store import Batch, Store

#: More than Mosquitto's default window of 20.
COUNT = 50


async def test_at_qos_2_every_publication_reaches_the_subscriber(
    broker: Broker, tmp_path: Path
) -> None:
    """50 publications at QoS 2 at once: all delivered, in order (before, 20)."""
    store = await Store.open(tmp_path / "bridge.db")
    sub = Subscriber(broker)
    await sub.connect()
    shell = Shell(settings(broker, qos=2), store=store)
    await shell.start()
    try:
        await real_wait(shell.connected.wait())
        for n in range(COUNT):
            shell.publish(Publication("zse/test/out", {"n": n}))
        await real_wait(shell.drained.wait())
        await sub.until(lambda: len(sub.on("zse/test/out")) >= COUNT, seconds=5)
        assert [p["n"] for p in sub.on("zse/test/out")] == list(range(COUNT))
    finally:
        await shell.stop()
        await sub.close()
        await store.close()


class Failing(FullDisk):
    """:class:`FullDisk` that says when a commit failed (:attr:`failed`)."""

    failed: asyncio.Event

    async def commit(self, batch: Batch) -> list[int]:
        try:
            return await super().commit(batch)
        except Exception:
            self.failed.set()
            raise


async def test_commands_unanswered_while_the_store_fails_do_not_stop_the_next(
    broker: Broker, tmp_path: Path
) -> None:
    """The store refuses the first 20 command records: the first command is tried again until
    its record is written, and every command is carried out and answered once, in order
    (before, the 20 were left unacknowledged and Mosquitto sent no other command)."""
    store = await Failing.open(tmp_path / "bridge.db")
    assert isinstance(store, Failing)
    store.failed = asyncio.Event()
    store.fail("put", 20)
    sub = Subscriber(broker)
    await sub.connect()
    shell = Shell(settings(broker), store=store)
    await shell.start()
    ids = [f"c-{n}" for n in range(25)]
    try:
        await real_wait(shell.connected.wait())
        for cid in ids:
            await sub.publish("zse/bridge/request/x", _cmd(cid))
        await real_wait(store.failed.wait())
        await asyncio.sleep(500)  # virtual: the tries again, 1 s doubling to 30 s
        answers = "zse/bridge/response/x"
        await sub.until(lambda: len(sub.on(answers)) >= len(ids), seconds=10)
        assert [a["correlation_id"] for a in sub.on(answers)] == ids
        assert {a["status"] for a in sub.on(answers)} == {"ok"}
        assert shell.runs == ids
        assert store.failures == 20
    finally:
        await shell.stop()
        await sub.close()
        await store.close()
