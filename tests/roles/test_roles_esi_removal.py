"""Removing a device from the HAN: its admission is withdrawn at the Trust Center at once, a
device being removed is asked to leave until it does (or its time runs out), a removed device
seen on the network is removed again, and a device that never joins is reported."""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t
from zigpy.exceptions import ControllerException

from tests.roles.han_builder import EUIS, build, close, restarted
from zse.cbke.service import KeyEstablishmentFailed, establish_key
from zse.errors import StoreError
from zse.installcode import InstallCode, parse_eui64
from zse.provisioning import LifecycleEvent, LifecycleState
from zse.roles.esi import TIMEOUT_RETRY, EsiEvent, KeyEstablished, LifecycleChanged
from zse.sim import JoinRefused, SimControllerApplication
from zse.store import Batch

S = LifecycleState


async def trail(han, name):
    return [(a.event, a.from_state, a.to_state) for a in await han.registry.audit(EUIS[name])]


async def keyed(han, name):
    """Provision ``name``, start it and let it join and run CBKE."""
    await han.esi.provision(EUIS[name])
    await han.add(name).start()
    await asyncio.sleep(30)
    await han.esi.settle()
    assert han.esi.device(EUIS[name]).state is S.METER_READY


async def test_a_device_withdrawn_before_it_joined_cannot_get_in(tmp_path):
    """De-provisioning a device still pending provisioning left its install-code key at the
    Trust Center and joining open: it joined, ran CBKE and used the HAN. Its keys are erased
    at once now, so its join is refused."""
    han = await build(tmp_path)
    ieee = parse_eui64(EUIS["ihd"])
    await han.esi.provision(EUIS["ihd"])
    record = await han.esi.deprovision(EUIS["ihd"])
    assert record is not None
    assert record.state is S.DEPROVISION_COMPLETE
    assert ieee not in han.app.radio.pending_keys
    role = han.add("ihd")
    with pytest.raises(JoinRefused):
        await role.device.join()
    await asyncio.sleep(120)
    await han.esi.settle()
    assert not role.device.joined
    assert han.app.get_link_key(ieee) is None
    assert not [e for e in han.events if isinstance(e, KeyEstablished)]
    # asked again: the same answer, not a refusal, and nothing more written
    again = await han.esi.deprovision(EUIS["ihd"])
    assert again is not None
    assert again.state is S.DEPROVISION_COMPLETE
    assert [e for e, *_ in await trail(han, "ihd")] == ["register", "provision", "deprovision"]
    await close(han)


async def test_a_removed_device_seen_joining_is_refused_recorded_and_removed_again(tmp_path):
    """A removed device that got in anyway (here: the Trust Center opened behind the
    registry's back) was only logged: it stayed on the HAN and nothing went into the audit
    trail. Its join is recorded as refused now, its keys are erased and it is asked to
    leave."""
    han = await build(tmp_path)
    ieee = parse_eui64(EUIS["thermostat"])
    await han.esi.provision(EUIS["thermostat"])
    await han.esi.deprovision(EUIS["thermostat"])
    code = han.codes["thermostat"]
    await han.app.permit_with_link_key(ieee, t.KeyData(code.link_key), 60)
    role = han.add("thermostat")
    await role.device.join()
    await asyncio.sleep(10)
    await han.esi.settle()
    assert not role.device.joined  # asked to leave
    assert han.app.get_link_key(ieee) is None
    assert ieee not in han.app.radio.pending_keys
    entries = await han.registry.audit(EUIS["thermostat"])
    assert (entries[-1].event, entries[-1].from_state, entries[-1].to_state) == (
        "refused",
        "de-provision complete",
        "de-provision complete",
    )
    assert entries[-1].detail.startswith("joined refused")
    assert han.esi.device(EUIS["thermostat"]).state is S.DEPROVISION_COMPLETE
    await close(han)


async def test_an_offline_device_is_asked_again_and_removed_when_it_is_back(tmp_path):
    """De-provisioning an offline device sent the leave once: it stayed PENDING_DEPROVISIONING
    for good and kept its Trust Center link key. The key is erased at once now, and the leave
    is sent again on a back-off until the device takes it."""
    han = await build(tmp_path)
    await keyed(han, "ihd")
    ihd = han.devices["ihd"]
    ieee = parse_eui64(EUIS["ihd"])
    han.air.silence(ihd.device)
    record = await han.esi.deprovision(EUIS["ihd"])
    assert record is not None
    assert record.state is S.PENDING_DEPROVISIONING
    assert han.app.get_link_key(ieee) is None  # erased at once, not at the leave
    await asyncio.sleep(600)
    await han.esi.settle()
    assert han.esi.device(EUIS["ihd"]).state is S.PENDING_DEPROVISIONING
    han.air.restore(ihd.device)
    await asyncio.sleep(1000)
    await han.esi.settle()
    assert han.esi.device(EUIS["ihd"]).state is S.DEPROVISION_COMPLETE
    assert not ihd.device.joined
    assert (await trail(han, "ihd"))[-1] == (
        "left",
        "pending de-provisioning",
        "de-provision complete",
    )
    await close(han)


async def test_a_device_being_removed_is_asked_to_leave_when_it_is_heard_from(tmp_path):
    """A device being removed that is heard from again (here: it rejoins with the network key
    and announces itself) is asked to leave at once, without waiting for the back-off."""
    han = await build(tmp_path)
    await keyed(han, "ihd")
    ihd = han.devices["ihd"]
    han.air.silence(ihd.device)
    await han.esi.deprovision(EUIS["ihd"])
    # asked again (missed) 30 s on; the back-off's next try is 60 s after that (at 90 s)
    await asyncio.sleep(65)  # more than 30 s (the shortest gap) after the last request
    han.air.restore(ihd.device)
    assert await ihd.device.rejoin(secure=True)
    await ihd.device.announce()
    await asyncio.sleep(5)
    await han.esi.settle()
    assert not ihd.device.joined
    assert han.esi.device(EUIS["ihd"]).state is S.DEPROVISION_COMPLETE
    await close(han)


async def test_a_device_never_seen_leaving_is_recorded_removed_and_can_be_registered_again(
    tmp_path,
):
    """A device that never came back stayed PENDING_DEPROVISIONING for ever, and its MAC could
    not be registered again. Its keys are erased, so when its time is up it is recorded
    removed (``timed_out``, saying why), and it can be registered again."""
    han = await build(tmp_path, deprovision_timeout=3600)
    await keyed(han, "ihd")
    han.air.silence(han.devices["ihd"].device)
    await han.esi.deprovision(EUIS["ihd"])
    await asyncio.sleep(3700)
    await han.esi.settle()
    assert han.esi.device(EUIS["ihd"]).state is S.DEPROVISION_COMPLETE
    last = (await han.registry.audit(EUIS["ihd"]))[-1]
    assert (last.event, last.to_state) == ("timed_out", "de-provision complete")
    assert "not seen leaving within 3600 s" in last.detail
    assert "keys were erased" in last.detail
    record = await han.esi.provision(EUIS["ihd"], str(InstallCode.generate()))
    assert record is not None
    assert record.state is S.PENDING_PROVISIONING
    await close(han)


async def test_a_time_out_whose_write_fails_is_taken_again(tmp_path, monkeypatch):
    """A device never seen leaving whose time-out cannot be written (the registry's store
    fails once) is timed out again TIMEOUT_RETRY seconds later. Taken from the watch, it
    stayed being removed until a restart."""
    han = await build(tmp_path, deprovision_timeout=3600)
    await keyed(han, "ihd")
    han.air.silence(han.devices["ihd"].device)
    await han.esi.deprovision(EUIS["ihd"])
    store = han.registry.store
    commit, refused = store.commit, []

    async def failing(batch: Batch) -> list[int]:
        if not refused and "timed_out" in repr(batch._ops):
            refused.append(batch)
            raise StoreError("the disk is full (on purpose)")
        return await commit(batch)

    monkeypatch.setattr(store, "commit", failing)
    await asyncio.sleep(3600 + 10)  # timed out, its write failed
    assert refused
    assert han.esi.device(EUIS["ihd"]).state is S.PENDING_DEPROVISIONING
    await asyncio.sleep(TIMEOUT_RETRY)
    await han.esi.settle()
    assert han.esi.device(EUIS["ihd"]).state is S.DEPROVISION_COMPLETE
    assert [e for e, *_ in await trail(han, "ihd")].count("timed_out") == 1
    await close(han)


async def test_a_device_that_never_joins_is_reported_and_can_be_admitted_again(tmp_path):
    """A device registered long before it was switched on stayed pending provisioning
    silently after its 254 s window. It is reported when its pending time is up
    (``timed_out``, state unchanged), and admitting it again opens a new window it joins in."""
    han = await build(tmp_path, provision_timeout=600)
    await han.esi.provision(EUIS["lcd"])
    await asyncio.sleep(700)
    await han.esi.settle()
    assert han.esi.device(EUIS["lcd"]).state is S.PENDING_PROVISIONING
    last = (await han.registry.audit(EUIS["lcd"]))[-1]
    assert (last.event, last.from_state, last.to_state) == (
        "timed_out",
        "pending provisioning",
        "pending provisioning",
    )
    assert last.detail == "not joined within 600 s of its admission"
    told = [
        e
        for e in han.events
        if isinstance(e, LifecycleChanged) and e.event is LifecycleEvent.TIMED_OUT
    ]
    assert [e.device for e in told] == [EUIS["lcd"]]
    await asyncio.sleep(1200)  # told once per admission
    await han.esi.settle()
    assert [e for e, *_ in await trail(han, "lcd")].count("timed_out") == 1
    # the retailer admits it again: a new window, and it gets in
    await han.esi.provision(EUIS["lcd"])
    await han.add("lcd").start()
    await asyncio.sleep(30)
    await han.esi.settle()
    assert han.esi.device(EUIS["lcd"]).state is S.METER_READY
    await close(han)


async def test_a_device_being_removed_gets_no_new_key_by_cbke(tmp_path):
    """The ESI's Key Establishment server ran CBKE with any device still on the network: a
    device being removed (its link key already erased) got a new one, undone only after the
    fact. The ESI no longer runs an exchange with it (SE C.3.1): nothing is established."""
    han = await build(tmp_path)
    await keyed(han, "ihd")
    role = han.devices["ihd"]
    ieee = parse_eui64(EUIS["ihd"])
    han.air.silence(role.device)  # the leave that comes with the request is missed
    await han.esi.deprovision(EUIS["ihd"])
    assert han.app.get_link_key(ieee) is None
    han.air.restore(role.device)
    before = len([e for e in han.events if isinstance(e, KeyEstablished)])
    with pytest.raises(KeyEstablishmentFailed):
        await establish_key(
            role.endpoint,
            partner_nwk=0x0000,
            partner_endpoint=role.esi_endpoint,
            partner_eui64=role.device.tc_ieee,
            credentials=role.credentials,
            install_key=role.device.set_link_key,
        )
    await han.esi.settle()
    assert len([e for e in han.events if isinstance(e, KeyEstablished)]) == before
    assert han.app.get_link_key(ieee) is None
    await close(han)


async def deprovision_cut_short(han, name):
    """De-provision keyed ``name``, its task cancelled as the registry's write is told (a
    stop, or a crash, at that point): the erase at the Trust Center never runs."""
    ieee = parse_eui64(EUIS[name])
    task = asyncio.get_running_loop().create_task(han.esi.deprovision(EUIS[name]))

    def cut(event: EsiEvent) -> None:
        if isinstance(event, LifecycleChanged) and event.event is LifecycleEvent.DEPROVISION:
            task.cancel()

    han.esi.on_event(cut)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert han.esi.device(EUIS[name]).state is S.PENDING_DEPROVISIONING
    assert han.app.get_link_key(ieee) is not None  # as the cut left it
    return ieee


async def test_a_key_left_at_the_trust_center_by_a_deprovision_cut_short_is_erased_at_start(
    tmp_path,
):
    """De-provisioning writes the registry, then erases the device's link keys at the Trust
    Center; a stop or a crash in between left the key there until the device was next seen
    joining or its de-provision timed out, and it could Trust-Center-rejoin with it. The
    start erases the keys of every device being or de-provisioned."""
    han = await build(tmp_path)
    await keyed(han, "ihd")
    ieee = await deprovision_cut_short(han, "ihd")
    await restarted(han)
    assert han.app.get_link_key(ieee) is None
    assert ieee not in han.app.radio.pending_keys
    assert not await han.devices["ihd"].device.rejoin(secure=False)  # refused: no key
    await close(han)


class EraseFails(SimControllerApplication):
    """The simulator's coordinator with a radio that fails every erase, its library's
    message quoting the key (as zigpy-znp's quotes the request)."""

    def remove_link_key(self, partner: t.EUI64) -> bool:
        key = self.get_link_key(partner)
        raise ControllerException(f"erase failed for key {key.hex() if key else None}")


async def test_an_erase_that_fails_at_start_is_logged_and_tried_at_the_next(tmp_path, caplog):
    """The start's erase on a radio that fails is logged, naming the device and the radio's
    error and no key, and the start goes on; the next start erases."""
    han = await build(tmp_path)
    await keyed(han, "ihd")
    ieee = await deprovision_cut_short(han, "ihd")
    key = han.app.get_link_key(ieee)
    han.app.__class__ = EraseFails
    again = await restarted(han)
    failed = [r.getMessage() for r in caplog.records if "erasing the link keys" in r.getMessage()]
    assert failed == [
        f"erasing the link keys of {EUIS['ihd']} failed (tried again at the next start): the "
        f"simulator's remove_link_key for {EUIS['ihd']} failed: ControllerException (the "
        "radio library's message is not shown: it may quote the key)"
    ]
    assert key.hex() not in caplog.text
    assert again.device(EUIS["ihd"]).state is S.PENDING_DEPROVISIONING  # started
    han.app.__class__ = SimControllerApplication
    assert han.app.get_link_key(ieee) == key
    await restarted(han)
    assert han.app.get_link_key(ieee) is None
    await close(han)


async def test_a_deprovision_whose_erase_failed_is_erased_at_the_next_start(tmp_path):
    """A radio that failed the de-provision's erase left the key at the Trust Center until
    the device was next seen joining (a device that left stays away: never): a restart with
    the radio working erases it."""
    han = await build(tmp_path)
    await keyed(han, "ihd")
    ieee = parse_eui64(EUIS["ihd"])
    han.app.__class__ = EraseFails
    await han.esi.deprovision(EUIS["ihd"])
    await han.esi.settle()
    han.app.__class__ = SimControllerApplication
    assert han.app.get_link_key(ieee) is not None
    await restarted(han)
    assert han.app.get_link_key(ieee) is None
    await close(han)
