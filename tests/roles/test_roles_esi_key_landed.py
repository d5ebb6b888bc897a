"""The ESI's key establishment step when the device's key is written by a transaction that a
stop cancelled once begun, which the store carries out (:attr:`zse.store.Batch.landed`)."""

from __future__ import annotations

import asyncio

from tests.roles.han_builder import EUIS, build, close
from tests.services.test_supply_told import TransactionSlow
from zse.provisioning import LifecycleState
from zse.zcl.delivery import device_name

IHD = device_name(EUIS["ihd"])


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
