"""A damaged executed-command record at the bridge's start: the store quarantines it, then the
bridge stores its id again (answer unknown). Those were two transactions, and a store failing
between them forgot the id: the record was in the quarantine, the id no longer among the
executed, so the broker's redelivery of that command was carried out a second time. The id
is now taken from the quarantine until it is stored again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mqtt.test_mqtt_store_failure import EXECUTED, FullDisk, Shell, _cmd, _nowhere
from zse.errors import StoreError
from zse.store import Batch


async def test_a_write_back_that_fails_after_the_quarantine_keeps_the_id(tmp_path: Path) -> None:
    store = await FullDisk.open(tmp_path / "bridge.db")
    assert isinstance(store, FullDisk)
    await store.commit(Batch().put(EXECUTED, "c-1", {"n": None}).put(EXECUTED, "c-2", {"n": 1}))
    bridge = Shell(_nowhere(), store=store)
    try:
        store.fail("put")  # the write-back; the quarantine (its own transaction) is done
        with pytest.raises(StoreError, match="disk is full"):
            await bridge.start()
        assert [q.key for q in await store.quarantined(EXECUTED)] == ["c-1"]
        await bridge.start()
        answer = await bridge.handle_command("x", _cmd("c-1"))
        assert (answer["status"], answer["duplicate"], bridge.runs) == ("started", True, [])
        assert "c-1" in await store.load(EXECUTED)  # stored again: kept from now on
        again = await bridge.handle_command("x", _cmd("c-3"))
        assert (again["status"], bridge.runs) == ("ok", ["c-3"])
    finally:
        await bridge.stop()
        await store.close()
