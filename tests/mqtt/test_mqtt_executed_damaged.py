"""Damaged records of the MQTT bridge at its start (audit: persistence #5): an executed
command's record of the wrong shape was deleted without a word, so a redelivery of that
command was carried out a second time; an outbox entry that was not one was marked published
silently. Both are now quarantined and logged by the store, and the command's id is kept as
carried out, its answer unknown (``started``), also across the next start."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.mqtt.test_mqtt_store_failure import (
    EXECUTED,
    OUTBOX,
    FullDisk,
    Shell,
    _cmd,
    _nowhere,
)
from zse.errors import StoreError
from zse.mqtt.core import Publication
from zse.store import Batch, Store


async def _started(store: Store) -> Shell:
    shell = Shell(_nowhere(), store=store)
    await shell.start()
    return shell


async def test_a_damaged_executed_record_is_quarantined_and_its_command_not_run_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(tmp_path / "bridge.db")
    try:
        damaged = {"response": {"status": "ok", "secret": "s3cr3t"}, "n": "7"}
        await store.commit(
            Batch()
            .put(EXECUTED, "c-1", damaged)
            .append(OUTBOX, "publication", {"topic": 5})
            .append(OUTBOX, "publication", {"topic": "t", "payload": "p", "retain": False})
        )
        with caplog.at_level(logging.WARNING, logger="zse"):
            shell = await _started(store)
            await shell.stop()
        quarantined = await store.quarantined()
        assert sorted(q.origin for q in quarantined) == ["journal", "record"]
        said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert any(EXECUTED in s and "c-1" in s for s in said)
        assert any(OUTBOX in s for s in said)
        assert not any("s3cr3t" in s for s in said)
        assert len(shell.outbox) == 1  # the good entry is still to publish
        # the id is kept as carried out, in the store too: a restart keeps it
        shell = await _started(store)
        try:
            answer = await shell.handle_command("x", _cmd("c-1"))
            assert shell.runs == []
            assert answer["status"] == "started"
            assert answer["duplicate"] is True
            assert answer["command"] == "x"
            again = await shell.handle_command("x", _cmd("c-2"))
            assert (again["status"], shell.runs) == ("ok", ["c-2"])
        finally:
            await shell.stop()
    finally:
        await store.close()


async def test_a_start_whose_write_fails_takes_nothing_in(tmp_path: Path) -> None:
    """The damaged record's id stored again fails (a full disk): the start raises and takes
    nothing in; a start again publishes each outbox entry once."""
    store = await FullDisk.open(tmp_path / "bridge.db")
    assert isinstance(store, FullDisk)
    record = Publication("zse/test/out", {"n": 1}).to_record()
    await store.commit(Batch().append(OUTBOX, "publish", record).put(EXECUTED, "c-1", {"n": None}))
    bridge = Shell(_nowhere(), store=store)
    try:
        store.fail("put")
        with pytest.raises(StoreError, match="disk is full"):
            await bridge.start()
        assert len(bridge.outbox) == 0
        await bridge.start()
        assert [p.payload for _, p in bridge.outbox.first(10)] == [{"n": 1}]
    finally:
        await bridge.stop()
        await store.close()
