"""The MQTT bridge when its store fails (a full disk, an I/O error: a StoreError), on the
real store made to fail and, where the broker matters, a real Mosquitto: nothing lost, nothing
twice. A command whose record cannot be written is not carried out and its redelivery is; a
command carried out is answered once; an outbox write that fails is tried again in order,
its writer never ends, and what waits for it stays bounded; a failed mark as published does
not end the connection; a command is acknowledged only once its answer is journaled."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait, settings
from tests.services.test_supply_told import TransactionSlow
from zse.errors import StoreError
from zse.mqtt.bridge import BridgeShell
from zse.mqtt.core import MqttSettings, Publication, parse_settings
from zse.store import Batch, Engine, Store

OUTBOX = "mqtt.outbox"
EXECUTED = "mqtt.executed"


class FullDisk(Store):
    """The real store, whose commits of a kind fail as on a full disk: ``fail(kind, times)``
    with kind ``append`` (the outbox's journal), ``put`` (a command's record) or ``mark``
    (entries marked published); ``times`` None: until :meth:`heal`."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._failing: dict[str, int | None] = {}
        self.failures = 0

    def fail(self, kind: str, times: int | None = 1) -> None:
        self._failing[kind] = times

    def heal(self) -> None:
        self._failing.clear()

    async def commit(self, batch: Batch) -> list[int]:
        kinds = {op[0] for op in batch._ops}
        for kind, left in list(self._failing.items()):
            if kind in kinds:
                if left is not None:
                    if left > 1:
                        self._failing[kind] = left - 1
                    else:
                        del self._failing[kind]
                self.failures += 1
                raise StoreError(f"{self.where}: cannot commit: database or disk is full")
        return await super().commit(batch)


@dataclass
class Cmd:
    correlation_id: str
    response_topic: str | None = None


class Shell(BridgeShell):
    """A bridge whose one command ``x`` counts its executions (``during``: called in each)."""

    def __init__(self, settings: MqttSettings, *, store: Store) -> None:
        super().__init__(settings, store=store, clock=lambda: 0)
        self.runs: list[str] = []
        self.ran = asyncio.Event()
        self.during: Any = None

    def _parse(self, name: str, payload: bytes) -> Cmd:
        return Cmd(json.loads(payload)["correlation_id"])

    async def _execute(self, command: Cmd) -> dict[str, Any]:
        self.runs.append(command.correlation_id)
        self.ran.set()
        if self.during is not None:
            self.during()
        return {"done": True}


def _cmd(cid: str) -> bytes:
    return json.dumps({"correlation_id": cid}).encode()


async def _full_disk(tmp_path: Path) -> FullDisk:
    store = await FullDisk.open(tmp_path / "bridge.db")
    assert isinstance(store, FullDisk)
    return store


def _nowhere(**more: Any) -> MqttSettings:
    """Settings of a broker that is not there (refused at once: the bridge retries)."""
    return parse_settings({"url": "mqtt://127.0.0.1:1", **more})


async def _payloads(store: Store) -> list[Any]:
    return [entry.value["payload"] for entry in await store.journal(OUTBOX)]


async def test_a_command_whose_started_record_fails_is_carried_out_once_when_redelivered(
    tmp_path: Path,
) -> None:
    """The record written before a command runs fails: the command is not carried out, its
    id not taken as executed, so the broker's redelivery carries it out, once (before, the
    id was noted in memory before the write failed: the redelivery was answered "started",
    duplicate, and the command never ran)."""
    store = await _full_disk(tmp_path)
    try:
        bridge = Shell(_nowhere(), store=store)
        store.fail("put")
        with pytest.raises(StoreError, match="disk is full"):
            await bridge.handle_command("x", _cmd("c-1"))
        assert bridge.runs == []
        assert bridge.executed.get("c-1") is None
        assert bridge.store_error is not None
        answer = await bridge.handle_command("x", _cmd("c-1"))  # the broker's redelivery
        assert answer == {
            "command": "x",
            "correlation_id": "c-1",
            "status": "ok",
            "result": {"done": True},
        }
        assert bridge.runs == ["c-1"]
        assert bridge.store_error is None
        again = await bridge.handle_command("x", _cmd("c-1"))
        assert again == {**answer, "duplicate": True}
        restarted = Shell(_nowhere(), store=store)  # the record holds across a restart
        restarted.executed.restore(await store.load(EXECUTED))
        assert await restarted.handle_command("x", _cmd("c-1")) == again
        assert bridge.runs == ["c-1"]
        assert restarted.runs == []
    finally:
        await store.close()


async def test_a_command_whose_response_record_fails_is_answered_once_not_run_again(
    tmp_path: Path,
) -> None:
    """The command ran, then the write of its response failed: it is answered all the same
    (before, the StoreError left it unanswered), and its record stays what the store holds,
    "started": a repeat is told so, never carried out again."""
    store = await _full_disk(tmp_path)
    try:
        bridge = Shell(_nowhere(), store=store)
        bridge.during = lambda: store.fail("put")
        answer = await bridge.handle_command("x", _cmd("c-2"))
        assert answer["status"] == "ok"
        assert [p.payload for p in bridge._intake] == [answer]  # queued for the outbox
        bridge.during = None
        repeat = await bridge.handle_command("x", _cmd("c-2"))
        assert repeat == {
            "command": "x",
            "correlation_id": "c-2",
            "status": "started",
            "duplicate": True,
        }
        assert (await store.load(EXECUTED))["c-2"]["response"]["status"] == "started"
        assert bridge.runs == ["c-2"]
    finally:
        await store.close()


async def test_a_failed_outbox_write_is_tried_again_in_order_and_nothing_is_lost(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The outbox's journal cannot be written for a while: what was queued waits, in order,
    the writer tries again on a bounded back-off (the loop's seconds), the error is logged
    once (no payloads) and :attr:`store_error` says so; once the store writes again, all is
    journaled and published in order (before, the first failure ended the writer for good:
    nothing was journaled or published again until a restart)."""
    store = await _full_disk(tmp_path)
    subscriber = Subscriber(broker)
    await subscriber.connect()
    bridge = Shell(settings(broker), store=store)
    await bridge.start()
    try:
        await real_wait(bridge.connected.wait())
        store.fail("append", None)
        for n in (1, 2, 3):
            bridge.publish(Publication("zse/test/out", {"n": n, "secret": "s3cret"}))
        await asyncio.sleep(20)  # virtual: tries after 1, 2, 4, 8 s
        assert await _payloads(store) == []
        assert [p.payload["n"] for p in bridge._intake] == [1, 2, 3]
        assert isinstance(bridge.store_error, StoreError)
        assert store.failures >= 4
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert "disk is full" in errors[0].getMessage()
        assert "s3cret" not in caplog.text
        assert not any(task.done() for task in bridge._tasks)
        bridge.publish(Publication("zse/test/out", {"n": 4}))
        store.heal()
        await asyncio.sleep(30)  # virtual: past the longest wait
        await real_wait(bridge.drained.wait())
        assert [p["n"] for p in await _payloads(store)] == [1, 2, 3, 4]
        assert bridge.store_error is None
        got = await subscriber.until(lambda: len(subscriber.on("zse/test/out")) >= 4)
        assert got
        assert [p["n"] for p in subscriber.on("zse/test/out")] == [1, 2, 3, 4]
    finally:
        await bridge.stop()
        await subscriber.close()
        await store.close()


async def test_what_waits_for_a_failing_store_is_bounded_by_the_outbox_limit(
    tmp_path: Path,
) -> None:
    """The store failing for good does not hoard memory: past ``outbox_limit`` waiting, the
    oldest are dropped and counted as the outbox's are; the newest are journaled, in order,
    once the store writes again (before, the writer was gone and everything piled up)."""
    store = await _full_disk(tmp_path)
    bridge = Shell(_nowhere(outbox_limit=3), store=store)
    await bridge.start()
    try:
        store.fail("append", None)
        for n in range(1, 6):
            bridge.publish(Publication("zse/test/out", {"n": n}))
            await asyncio.sleep(2)  # virtual
        await asyncio.sleep(40)
        assert [p.payload["n"] for p in bridge._intake] == [3, 4, 5]
        assert bridge.outbox.dropped == 2
        store.heal()
        await asyncio.sleep(40)  # virtual: past the longest wait
        assert bridge._intake == []
        assert [p["n"] for p in await _payloads(store)] == [3, 4, 5]
    finally:
        await bridge.stop()
        await store.close()


class JournalSlow(TransactionSlow):
    key = "publish"


async def test_a_journal_write_cancelled_during_its_transaction_is_not_journaled_again(
    tmp_path: Path,
) -> None:
    """The loop ending cancels the bridge's outbox write during its transaction, which the
    store carries out; a stop then flushes what waits. The publications went back to the
    intake as for a failed write, so the stop journaled them again: published twice."""
    async with await JournalSlow.open(tmp_path / "bridge.db") as store:
        bridge = Shell(_nowhere(), store=store)
        await bridge.start()
        try:
            store.begun, store.go = asyncio.Event(), asyncio.Event()
            store.slow = True
            bridge.publish(Publication("zse/test/out", {"n": 1}))
            await store.begun.wait()
            writes = list(bridge._writes)
            for write in writes:  # as asyncio.run's end does
                write.cancel()
            store.go.set()
            await asyncio.gather(*writes, return_exceptions=True)
        finally:
            await bridge.stop()
        assert [p["n"] for p in await _payloads(store)] == [1]


async def test_a_failed_mark_as_published_does_not_end_the_connection(
    broker: Broker, tmp_path: Path
) -> None:
    """Entries the broker acknowledged cannot be marked published: they stay unreported in
    the journal (sent again after a restart: at least once) and publishing goes on (before,
    the StoreError ended the connection's task for good: nothing more was published)."""
    store = await _full_disk(tmp_path)
    subscriber = Subscriber(broker)
    await subscriber.connect()
    bridge = Shell(settings(broker), store=store)
    await bridge.start()
    try:
        await real_wait(bridge.connected.wait())
        store.fail("mark")
        bridge.publish(Publication("zse/test/out", {"n": 1}))
        await subscriber.until(lambda: subscriber.on("zse/test/out"))
        await asyncio.sleep(5)  # virtual
        bridge.publish(Publication("zse/test/out", {"n": 2}))
        await subscriber.until(lambda: len(subscriber.on("zse/test/out")) >= 2)
        await real_wait(bridge.drained.wait())
        assert [p["n"] for p in subscriber.on("zse/test/out")] == [1, 2]
        assert bridge.connections == 1
        assert bridge.connected.is_set()
        unreported = [e.value["payload"]["n"] for e in await store.unreported(OUTBOX)]
        assert unreported == [1]
    finally:
        await bridge.stop()
        await subscriber.close()
        await store.close()


async def test_a_command_is_acknowledged_only_once_its_answer_is_journaled(
    broker: Broker, tmp_path: Path
) -> None:
    """A command carried out while the outbox cannot be written is not acknowledged: the
    bridge stopping with its answer unjournaled, the broker sends it again at the next start,
    which answers it from its record, not carrying it out again (before, it was acknowledged
    with its answer in memory only: the answer was lost)."""
    store = await _full_disk(tmp_path)
    subscriber = Subscriber(broker)
    await subscriber.connect()
    first = Shell(settings(broker), store=store)
    await first.start()
    try:
        await real_wait(first.connected.wait())
        store.fail("append", None)
        await subscriber.publish("zse/bridge/request/x", {"correlation_id": "c-3"})
        await real_wait(first.ran.wait())
        await asyncio.sleep(10)  # virtual: the answer's journal write fails, again
        assert first.runs == ["c-3"]
    finally:
        await first.stop()  # the answer was never journaled
    store.heal()
    second = Shell(settings(broker), store=store)
    await second.start()
    try:
        answers = await subscriber.until(lambda: subscriber.on("zse/bridge/response/x"))
        assert answers == [
            {
                "command": "x",
                "correlation_id": "c-3",
                "status": "ok",
                "result": {"done": True},
                "duplicate": True,
            }
        ]
        assert second.runs == []
    finally:
        await second.stop()
        await subscriber.close()
        await store.close()
