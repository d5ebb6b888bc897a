"""An ESI's report reaches its MQTT bridge's journal before the ESI marks it told: a report
the bridge could not journal (its store failing, then the bridge stopped or the process
killed) is told again after the ESI's restart, and published then. Before, the ESI marked a
report told as soon as the bridge's listener had queued it in memory, so a kill before the
bridge's writer ran lost it for good (the device does not repeat it)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from zse.cli.mqtt import simulated_esi
from zse.errors import StoreError
from zse.mqtt.bridge import OUTBOX, BridgeStopped, MqttBridge
from zse.mqtt.core import MqttSettings, parse_settings
from zse.store import Batch, Store

LOAD_CONTROL = {
    "correlation_id": "lc-told",
    "group": "sim",
    "event": {
        "issuer_event_id": 0x4321,
        "device_class": 0x0FFF,
        "duration_in_minutes": 30,
        "criticality_level": 1,
        "duty_cycle": 50,
    },
}


def _nowhere() -> MqttSettings:
    """A broker that is not there: the bridge journals its outbox all the same."""
    return parse_settings({"url": "mqtt://127.0.0.1:1"})


def _outbox_fails(store: Store) -> None:
    """The store's commits that journal the bridge's outbox fail (a full disk), the ESI's
    own commits go through."""
    commit = store.commit

    async def failing(batch: Batch) -> list[int]:
        if any(op[0] == "append" and op[1] == OUTBOX for op in batch._ops):
            raise StoreError("bridge.db: cannot commit: database or disk is full")
        return await commit(batch)

    store.commit = failing  # type: ignore[method-assign]


async def _reports_published(store: Store) -> list[dict[str, Any]]:
    return [
        entry.value["payload"]
        for entry in await store.journal(OUTBOX)
        if isinstance(entry.value["payload"], dict)  # not a removed config ("")
        and entry.value["payload"].get("event") == "ReportReceived"
    ]


async def test_a_report_the_bridge_could_not_journal_is_told_again_after_the_restart(
    tmp_path: Path,
) -> None:
    async with simulated_esi(tmp_path) as sim:
        await asyncio.sleep(30)  # virtual: the devices join and run CBKE
        store = sim.registry.store
        bridge = MqttBridge(sim.esi, _nowhere(), store=store, displays=sim.displays)
        await bridge.start()
        _outbox_fails(store)
        answer = await bridge.handle_command("load_control", _payload())
        assert answer["status"] == "ok"
        await asyncio.sleep(5)  # virtual: each device reports "received", then "started"
        namespace = sim.esi.drlc.namespace
        untold = await store.unreported(namespace)
        # every report waits for the bridge's journal
        assert len(untold) == 2 * len(sim.devices)
        journaled = _waiting(bridge)
        await bridge.stop()  # still failing: the reports never reached the journal
        with pytest.raises(BridgeStopped):
            await journaled
        await asyncio.sleep(1)
        assert [e.seq for e in await store.unreported(namespace)] == [e.seq for e in untold]
        assert await _reports_published(store) == []

    async with simulated_esi(tmp_path) as sim:  # the ESI again, the store writing again
        store = sim.registry.store
        bridge = MqttBridge(sim.esi, _nowhere(), store=store, displays=sim.displays)
        await bridge.start()
        try:
            await asyncio.sleep(1)  # virtual: the held reports are told to the bridge
            # told again first, in the order they came (the devices, joining the new
            # network on its clock, report the running event too: after these)
            published = [
                (p["device"], p["report"]) for p in await _reports_published(store) if p["new"]
            ]
            assert published[: len(untold)] == [
                (e.value["device"], e.value["report"]) for e in untold
            ]
            assert await store.unreported(sim.esi.drlc.namespace) == []  # told, once
        finally:
            await bridge.stop()


def _payload() -> bytes:
    return json.dumps(LOAD_CONTROL).encode()


def _waiting(bridge: MqttBridge) -> asyncio.Future[None]:
    """What the ESI waits for: the journal of what the bridge holds now."""
    return bridge._journaled_future()
