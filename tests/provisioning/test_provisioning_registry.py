"""The registry refuses what would give one device two install codes or one install code two
devices: concurrent registrations of one MAC, and one code for two MACs."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from zse.installcode import InstallCode
from zse.provisioning import LifecycleEvent
from zse.provisioning.registry import (
    AlreadyRegistered,
    HanRegistry,
    InstallCodeInUse,
    RegistryError,
)

CODE = "83FED3407A939723A5C639B26916D505C3B5"
OTHER_CODE = str(InstallCode.generate(rng=random.Random(3)))
MAC = "00:1B:C5:00:70:00:05:2B"
SECOND_MAC = "00:1B:C5:00:70:00:05:2C"
E = LifecycleEvent


async def test_two_registrations_of_one_mac_at_once_the_second_is_refused(registry):
    """Both used to succeed (each read "no record" before either wrote), and the last install
    code won silently; now the second is refused and the first code stays."""
    results = await asyncio.gather(
        registry.register(MAC, CODE),
        registry.register(MAC, OTHER_CODE),
        return_exceptions=True,
    )
    assert results[0].install_code == CODE
    assert isinstance(results[1], AlreadyRegistered)
    assert isinstance(results[1], RegistryError)
    assert registry.get(MAC).install_code == CODE
    assert [a.event for a in await registry.audit(MAC)] == ["register"]


async def test_one_install_code_for_two_macs_is_refused(registry):
    """The same install code was accepted for a second MAC (two devices sharing one
    preconfigured link key, and the second waiting for ever); now it is refused with a named
    error that does not show the code, until the first device is de-provisioned."""
    await registry.register(MAC, CODE)
    with pytest.raises(InstallCodeInUse, match="already given for device 001BC5007000052B") as info:
        await registry.register(SECOND_MAC, CODE.lower())
    assert CODE not in str(info.value).upper()
    assert [r.eui64 for r in registry.devices()] == ["001BC5007000052B"]
    report = await registry.import_csv(["eui64,install_code", f"{SECOND_MAC},{CODE}"])
    assert report.registered == []
    assert "already given for device" in report.errors[0]
    # once the first is de-provisioned, its code may go to another device
    await registry.apply(MAC, E.PROVISION)
    await registry.apply(MAC, E.DEPROVISION)
    record = await registry.register(SECOND_MAC, CODE)
    assert record.install_code == CODE


async def test_concurrent_changes_of_one_device_are_written_in_order(registry):
    """Changes of one device are read, decided and written one at a time."""
    await registry.register(MAC, CODE)
    await asyncio.gather(
        registry.transition(MAC, E.PROVISION),
        registry.set_groups(MAC, ["street"]),
        registry.transition(MAC, E.DEPROVISION),
    )
    record = registry.get(MAC)
    assert record.groups == frozenset({"street"})
    trail = [(a.event, a.from_state, a.to_state) for a in await registry.audit(MAC)]
    assert trail[1:] == [
        ("provision", "new", "pending provisioning"),
        ("groups", "pending provisioning", "pending provisioning"),
        ("deprovision", "pending provisioning", "de-provision complete"),
    ]


class DeviceSlow(TransactionSlow):
    key = "001BC5007000052B"


async def test_a_registration_cancelled_during_its_transaction_is_held_as_stored(tmp_path):
    """A registration whose commit is cancelled once its transaction has begun, which the
    store carries out: the registry has the device, as stored (it had not, until a restart:
    registering it again was taken, and written a second time)."""
    store = await DeviceSlow.open(tmp_path / "han.db")
    assert isinstance(store, DeviceSlow)
    registry = await HanRegistry.attach(store)
    try:
        await cancelled_in_its_transaction(store, registry.register(MAC, CODE))
        assert registry.get(MAC).install_code == CODE
        with pytest.raises(AlreadyRegistered):
            await registry.register(MAC, CODE)
        assert [a.event for a in await registry.audit(MAC)] == ["register"]
    finally:
        await registry.close()
