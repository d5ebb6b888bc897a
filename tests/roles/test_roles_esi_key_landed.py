"""The ESI's key establishment step: the device's key and its registry step in one commit
when the registry keeps to the ESI's store (a kill -9 cannot come between them), and when the
key is written alone (a registry of its own) by a transaction that a stop cancelled once
begun, which the store carries out (:attr:`zse.store.Batch.landed`)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.roles.han_builder import EUIS, build, close
from tests.services.test_supply_told import TransactionSlow
from tests.store.helpers import killed_itself
from zse.provisioning import LifecycleState
from zse.provisioning.registry import HanRegistry
from zse.store import Batch, Store
from zse.zcl.delivery import device_name

IHD = device_name(EUIS["ihd"])
CHILD = """
import asyncio, sys
from pathlib import Path
from tests.roles.test_roles_esi_key_landed import key_until_killed

asyncio.run(key_until_killed(Path(sys.argv[1])))
"""


class KilledOnceKeyed(Store):
    """A store whose process is killed -9 once a commit storing a device's public key
    returned."""

    async def commit(self, batch: Batch) -> list[int]:
        seqs = await super().commit(batch)
        if any(op[1] == "esi.public_keys" for op in batch._ops):
            print("keyed", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return seqs


async def key_until_killed(tmp_path: Path) -> None:
    """The display provisioned, joined and keyed by CBKE on a simulated HAN whose ESI keeps
    to its registry's store: killed -9 once the key is stored."""
    han = await build(tmp_path, store_class=KilledOnceKeyed)
    await han.esi.provision(EUIS["ihd"])
    await han.add("ihd").start()
    await asyncio.sleep(50)
    sys.exit("not keyed")


def test_a_key_stored_then_killed_has_its_registry_step(tmp_path) -> None:
    """Killed -9 once the display's key is stored: after the restart the registry has it
    Meter Ready. The key and the step were two commits: the key stored, the device stayed
    Pending Provisioning for ever (until a re-key)."""
    assert killed_itself(CHILD, str(tmp_path)).strip() == "keyed"

    async def restarted() -> tuple[LifecycleState, object]:
        registry = await HanRegistry.open(tmp_path / "han.db")
        try:
            key = await registry.store.get("esi.public_keys", IHD)
            return registry.get(EUIS["ihd"]).state, key
        finally:
            await registry.close()

    state, key = asyncio.run(restarted())
    assert key is not None
    assert state is LifecycleState.METER_READY


class KeySlow(TransactionSlow):
    """The transaction storing the display's public key waits (a slow disk)."""

    key = IHD


async def test_a_key_stored_by_a_write_its_stop_cancelled_is_established(tmp_path) -> None:
    """CBKE with the display succeeds; the ESI stops while its public key is being written,
    and the store carries the write out: the registry has it Meter Ready, as the key is
    stored (it stayed Pending Provisioning, the key-established step never taken)."""
    store = await KeySlow.open(tmp_path / "esi.db")
    assert isinstance(store, KeySlow)
    han = await build(tmp_path, store=store)
    try:
        store.begun, store.go, store.slow = asyncio.Event(), asyncio.Event(), True
        await han.esi.provision(EUIS["ihd"])
        await han.add("ihd").start()
        async with asyncio.timeout(120):
            await store.begun.wait()
        stopping = asyncio.ensure_future(han.esi.stop())
        await asyncio.sleep(1)  # the stop waits for the key's transaction
        assert not stopping.done()
        store.go.set()
        await stopping
        assert await store.get("esi.public_keys", IHD) is not None
        assert han.registry.get(EUIS["ihd"]).state is LifecycleState.METER_READY
        trail = [a.event for a in await han.registry.audit(EUIS["ihd"])]
        assert trail[-1] == "key_established"
    finally:
        await close(han)
        await store.close()
