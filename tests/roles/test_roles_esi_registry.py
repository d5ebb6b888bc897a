"""The ESI facade and its registry: the lifecycle follows the network, and by-group sends report
an outcome per device, with nothing lost for devices that were offline."""

from __future__ import annotations

import asyncio
import random
import signal

import pytest
import zigpy.types as t

from tests.roles.han_builder import CA, EUIS, build, close, restarted
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.drlc import LoadControlEvent, Status
from zse.installcode import InstallCode
from zse.messaging import Message, MessageDisplayed
from zse.price import PriceEvent
from zse.provisioning import IllegalTransition, LifecycleEvent, LifecycleState
from zse.provisioning.registry import AlreadyRegistered
from zse.roles.esi import (
    MAX_PERMIT_SECONDS,
    DeviceJoined,
    DeviceLeft,
    LifecycleChanged,
    LifecycleRefused,
    MessageConfirmed,
    Outcome,
    ReportReceived,
    SettleTimeout,
    TargetError,
)
from zse.roles.han import Resynced
from zse.store import Batch
from zse.zcl.delivery import device_name

S = LifecycleState
SPARE = "00:0d:6f:00:0e:00:00:09"


def price(issuer_event_id: int) -> PriceEvent:
    return PriceEvent(
        provider_id=7,
        rate_label=b"DAY",
        issuer_event_id=issuer_event_id,
        unit_of_measure=0,
        currency=978,
        price_trailing_digit=3,
        price_tier=1,
        number_of_price_tiers=1,
        register_tier=1,
        start_time=0,
        duration_in_minutes=0xFFFF,
        price=250,
    )


async def joined_han(tmp_path, names=("ihd", "thermostat", "lcd"), **build_options):
    han = await build(tmp_path, **build_options)
    for name in names:
        await han.esi.provision(EUIS[name])
        await han.add(name).start()
    await asyncio.sleep(30)  # zigpy interviews the devices
    await han.esi.settle()
    return han


def transitions(han, name):
    return [
        (e.event.value, e.to_state.value)
        for e in han.events
        if isinstance(e, LifecycleChanged) and e.device == EUIS[name]
    ]


async def test_lifecycle_follows_join_cbke_leave_rejoin_and_deprovision(tmp_path):
    han = await joined_han(tmp_path, names=("ihd",))
    esi, ihd = han.esi, han.devices["ihd"]
    assert transitions(han, "ihd") == [
        ("provision", "pending provisioning"),
        ("joined", "pending provisioning"),
        ("key_established", "meter ready"),
    ]
    assert [type(e) for e in han.events[:2]] == [LifecycleChanged, DeviceJoined]
    # The ESI learnt the device's public key from the CBKE exchange itself.
    assert esi.public_key(ihd.device.ieee) == ihd.drlc.credentials.public_key

    # The device leaves on its own: back to pending, and re-admitted so it can come back.
    await ihd.leave()
    await asyncio.sleep(1)
    await esi.settle()
    assert esi.device(EUIS["ihd"]).state is S.PENDING_PROVISIONING
    assert any(isinstance(e, DeviceLeft) for e in han.events)
    # While it is away the ESI sends it a message: stored, the device is offline.
    sent = await esi.send_message(Message(message_id=5, text="hello"), device=EUIS["ihd"])
    assert [(o.outcome, o.detail) for o in sent.outcomes] == [
        (Outcome.SKIPPED, "pending provisioning")
    ]
    # It rejoins: CBKE again, and the resync brings the message it missed.
    await ihd.rejoin()
    await asyncio.sleep(1)
    await esi.settle()
    assert esi.device(EUIS["ihd"]).state is S.METER_READY
    assert ihd.showing() is not None
    assert ihd.showing().message_id == 5
    resyncs = [e for e in han.device_events["ihd"] if isinstance(e, Resynced)]
    assert len(resyncs) == 2
    assert resyncs[1].message_id == 5

    # De-provisioning: pending until the device is seen leaving, then complete.
    record = await esi.deprovision(EUIS["ihd"])
    assert record.state is S.PENDING_DEPROVISIONING
    await asyncio.sleep(2)
    await esi.settle()
    assert esi.device(EUIS["ihd"]).state is S.DEPROVISION_COMPLETE
    assert not ihd.device.joined
    assert esi.public_key(ihd.device.ieee) is None
    trail = [(a.event, a.to_state) for a in await han.registry.audit(EUIS["ihd"])]
    assert trail == [
        ("register", "new"),
        ("provision", "pending provisioning"),
        ("joined", "pending provisioning"),
        ("key_established", "meter ready"),
        ("left", "pending provisioning"),
        ("joined", "pending provisioning"),
        ("key_established", "meter ready"),
        ("deprovision", "pending de-provisioning"),
        ("left", "de-provision complete"),
    ]
    # A removal asked for again is not refused (a repeated request), and nothing is written.
    again = await esi.deprovision(EUIS["ihd"])
    assert again is not None
    assert again.state is S.DEPROVISION_COMPLETE
    # What the lifecycle does not allow is refused with a clear error, and nothing is written.
    with pytest.raises(IllegalTransition, match="'provision' is allowed only from"):
        await esi.provision(EUIS["ihd"])
    assert len(await han.registry.audit(EUIS["ihd"])) == len(trail)
    await close(han)


async def test_a_device_admitted_behind_the_registrys_back_is_refused_not_moved(tmp_path):
    han = await build(tmp_path)
    # Someone opens the Trust Center for the thermostat without provisioning it.
    code = han.codes["thermostat"]
    await han.app.permit_with_link_key(
        t.EUI64.convert(EUIS["thermostat"]), t.KeyData(code.link_key), 60
    )
    role = han.add("thermostat")
    await role.device.join()
    await asyncio.sleep(1)
    await han.esi.settle()
    refused = [e for e in han.events if isinstance(e, LifecycleRefused)]
    assert [(e.device, e.event, e.state) for e in refused] == [
        (EUIS["thermostat"], LifecycleEvent.JOINED, S.NEW)
    ]
    assert "'joined' is allowed only from" in refused[0].reason
    assert han.esi.device(EUIS["thermostat"]).state is S.NEW
    # the refusal is in the audit trail; the record is not moved
    trail = await han.registry.audit(EUIS["thermostat"])
    assert [(a.event, a.from_state, a.to_state) for a in trail] == [
        ("register", None, "new"),
        ("refused", "new", "new"),
    ]
    assert trail[1].detail.startswith("joined refused")
    await close(han)


async def test_by_group_sends_report_each_device_and_offline_devices_lose_nothing(tmp_path):
    han = await joined_han(tmp_path)
    esi = han.esi
    await han.registry.register(SPARE, str(InstallCode.generate()), groups=["street"])
    await han.registry.set_groups(EUIS["lcd"], ["other-street"])
    thermostat = han.devices["thermostat"]
    han.air.silence(thermostat.device)  # out of range for a while

    begin = han.clock() + 120
    lce = LoadControlEvent(
        issuer_event_id=77,
        device_class=0x0FFF,
        start_time=begin,
        duration_in_minutes=10,
        criticality_level=3,
        cooling_temperature_set_point=2650,
    )
    outcomes = {}
    for sent in (
        await esi.publish_price(price(31), group="street"),
        await esi.send_message(
            Message(message_id=9, text="Street works", confirmation_required=True), group="street"
        ),
        await esi.send_load_control(lce, group="street"),
    ):
        assert not sent.multicast
        outcomes[sent.what] = {o.device: o.outcome for o in sent.outcomes}
    expected = {
        EUIS["ihd"]: Outcome.DELIVERED,
        EUIS["thermostat"]: Outcome.OFFLINE,
        SPARE: Outcome.SKIPPED,
    }
    assert outcomes == {
        "price 31": expected,
        "message 9": expected,
        "load control event 77": expected,
    }
    assert sent.offline == [EUIS["thermostat"]]
    assert sent.skipped == [SPARE]
    assert sent.delivered == [EUIS["ihd"]]
    assert esi.drlc.never_answered(77) == [EUIS["thermostat"]]

    # Back in range a few minutes into the event: the resync brings everything it missed.
    await asyncio.sleep(200)
    han.air.restore(thermostat.device)
    resynced = await thermostat.resync()
    assert resynced.price_issuer_event_id == 31
    assert resynced.message_id == 9
    await asyncio.sleep(1)
    assert [e.issuer_event_id for e in thermostat.drlc.core.events()] == [77]
    await thermostat.messaging.confirm(9)
    await asyncio.sleep(15 * 60)
    view = esi.drlc.core.view(77)
    assert [s for s, _ in view[EUIS["thermostat"]].statuses] == [
        Status.RECEIVED,
        Status.STARTED,
        Status.COMPLETED,
    ]
    assert [s for s, _ in view[EUIS["ihd"]].statuses] == [
        Status.RECEIVED,
        Status.STARTED,
        Status.COMPLETED,
    ]
    assert EUIS["lcd"] not in view  # not in the group: not sent, and it expects nothing
    assert thermostat.cooling_set_point == 2400  # set to 26.5 C during the event, then back
    reports = [e for e in han.events if isinstance(e, ReportReceived)]
    assert reports
    assert all(r.signed for r in reports)
    confirmed = [e.device for e in han.events if isinstance(e, MessageConfirmed)]
    assert confirmed == [EUIS["thermostat"]]
    # The group's message is the group's: a device outside it does not get it on resync.
    lcd = han.devices["lcd"]
    assert (await lcd.resync()).message_id is None
    assert [
        e.message.message_id for e in han.device_events["ihd"] if isinstance(e, MessageDisplayed)
    ] == [9]
    await close(han)


async def test_multicast_targets_and_the_enrollment_group(tmp_path):
    han = await build(tmp_path)
    await han.esi.provision(EUIS["lcd"])
    lcd = han.add("lcd", utility_enrollment_group=3, zigbee_groups=[0x0E01])
    await lcd.start()
    await han.esi.provision(EUIS["thermostat"])
    thermostat = han.add("thermostat", utility_enrollment_group=4)
    await thermostat.start()
    await asyncio.sleep(30)
    esi = han.esi
    event = LoadControlEvent(
        issuer_event_id=300, device_class=0x0FFF, duration_in_minutes=5, criticality_level=2,
        duty_cycle=30,
    )  # fmt: skip
    sent = await esi.send_load_control(event, enrollment_group=3)
    assert (sent.multicast, sent.outcomes, sent.target) == (True, (), "utility enrollment group 3")
    await asyncio.sleep(2)
    assert lcd.duty_cycle == 30  # in enrollment group 3
    assert thermostat.active_event is None  # in enrollment group 4: the event is not for it
    assert esi.drlc.core.event(300).utility_enrollment_group == 3
    sent = await esi.send_message(Message(message_id=1, text="group"), zigbee_group=0x0E01)
    await asyncio.sleep(1)
    assert sent.multicast
    assert sent.target == "ZigBee group 0x0E01"
    assert lcd.messaging.current().message_id == 1
    assert thermostat.messaging.current() is None
    for wrong in ({}, {"device": EUIS["lcd"], "broadcast": True}, {"zigbee_group": 0xFFF8}):
        with pytest.raises(TargetError):
            await esi.send_message(Message(message_id=2, text="x"), **wrong)
    await close(han)


async def test_cbke_public_key_from_the_machine_matches_the_certificate(tmp_path):
    """The ESI verifies signed reports with the key CBKE reconstructed: the same key the CA's
    certificate implies (zse.cbke reconstruct_public_key), not one handed over separately."""
    han = await joined_han(tmp_path, names=("lcd",))
    lcd = han.devices["lcd"]
    credentials = CA.issue(eui64_bytes(lcd.device.ieee), SUITE1)  # another certificate
    key = han.esi.public_key(lcd.device.ieee)
    certificate = lcd.drlc.credentials.certificate
    assert key == certificate.reconstruct_public_key(CA.authority(SUITE1).public_key)
    assert key != credentials.public_key
    await close(han)


async def test_the_esi_serves_time_to_its_devices(tmp_path):
    han = await joined_han(tmp_path, names=("thermostat",))
    role = han.devices["thermostat"]
    reply = await role.endpoint.request(
        0x0000,
        role.esi_endpoint,
        0x000A,
        0x00,
        b"\x00\x00\x01\x00",
        cluster_specific=False,
        encrypt=True,
    )  # fmt: skip  (Read Attributes: Time, TimeStatus)
    # Read Attributes Response records: id, status 0, type 0xE2 UTCTime + value; 0x18 bitmap8.
    assert reply.payload[:4] == b"\x00\x00\x00\xe2"
    assert int.from_bytes(reply.payload[4:8], "little") == han.clock()
    assert reply.payload[8:12] == b"\x01\x00\x00\x18"
    assert reply.payload[12] == 0b1001  # Master and Superseding; never Synchronized with Master
    assert reply.aps_encrypted  # with the CBKE key, like all SE traffic after key establishment
    await close(han)


async def test_admission_window_is_bounded_and_does_not_block_on_slow_radios(tmp_path):
    """zigpy allows at most 254 s; zigpy-znp holds permit_with_link_key for the whole window."""
    han = await build(tmp_path)
    esi = han.esi
    try:
        assert esi.permit_seconds == MAX_PERMIT_SECONDS == 254
        with pytest.raises(ValueError, match="1 to 254 s, not 300"):
            await esi.provision(EUIS["ihd"], permit_seconds=300)
        opened: list[float] = []

        async def slow_permit(ieee, key, time_s):  # as zigpy-znp behaves
            opened.append(asyncio.get_running_loop().time())
            await asyncio.sleep(time_s)

        esi.app.permit_with_link_key = slow_permit  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        started = loop.time()
        await esi.provision(EUIS["thermostat"])
        assert opened
        assert loop.time() - started < 10  # provision returned; the window stays open
    finally:
        await close(han)


async def test_settle_does_not_wait_again_for_a_task_that_has_ended(tmp_path):
    """A CI hang on 3.13: a network task had ended but its done callback (which takes it out of
    the ESI's tasks) had not run yet; settle() gathered it again and again, and 3.13's gather
    completes at once for a future already done, so the loop never ran that callback."""
    han = await build(tmp_path)
    try:

        async def nothing() -> None:
            return None

        ended = asyncio.get_running_loop().create_task(nothing())
        await ended
        han.esi._tasks.add(ended)  # as keep_task holds it until its callback runs

        def stuck(signum, frame):
            raise TimeoutError("settle() spins on a task that has ended")

        previous = signal.signal(signal.SIGALRM, stuck)
        signal.setitimer(signal.ITIMER_REAL, 10)  # a watchdog on a spinning loop, not a sleep
        try:
            await han.esi.settle()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        han.esi._tasks.discard(ended)
    finally:
        await close(han)


async def test_settle_gives_up_on_a_step_that_never_ends(tmp_path):
    """A step of following the network that never ends (as one waiting for a frame lost for
    good would) makes settle() fail with SettleTimeout after its timeout, never wait on."""
    han = await build(tmp_path)
    try:
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()

        async def waiting() -> None:
            await lost

        han.esi._spawn(waiting())
        started = loop.time()
        with pytest.raises(SettleTimeout, match=r"^1 step\(s\) of following the network .* 60 s$"):
            await han.esi.settle(timeout=60)
        assert loop.time() - started == pytest.approx(60)
        assert isinstance(SettleTimeout("x"), TimeoutError)
        lost.set_result(None)  # the frame comes after all: settle() returns
        await han.esi.settle(timeout=60)
        assert loop.time() - started == pytest.approx(60)
    finally:
        await close(han)


@pytest.mark.parametrize("seed", range(20))
async def test_the_smallest_han_settles_whatever_the_seed(tmp_path, seed):
    """Stress (#19): the smallest HAN (an ESI and one display) joined, keyed and settled with
    20 seeds — NWK addresses, sequence numbers, frame counters and the order of same-instant
    events all differ — and settle() always returns, well within its bound."""
    han = await build(tmp_path, seed=seed)
    try:
        await han.esi.provision(EUIS["ihd"])
        await han.add("ihd").start()
        await han.esi.settle(timeout=120)
        assert han.registry.get(EUIS["ihd"]).state is S.METER_READY
    finally:
        await close(han)


async def test_provisioning_a_registered_device_with_another_install_code_is_refused(tmp_path):
    """A device registered (NEW, e.g. by a devices CSV) provisioned with another install code:
    the Trust Center was given the registered code's link key and the device, holding the new
    code, could never join, with no error anywhere. Refused now, naming neither code (secrets),
    nothing written; the registered code still provisions."""
    han = await build(tmp_path)
    try:
        other = InstallCode.generate(rng=random.Random("another label"))
        assert other != han.codes["ihd"]
        audit = await han.registry.audit(EUIS["ihd"])
        with pytest.raises(AlreadyRegistered, match="with another install code") as refused:
            await han.esi.provision(EUIS["ihd"], str(other))
        assert str(other) not in str(refused.value)
        assert str(han.codes["ihd"]) not in str(refused.value)
        assert han.registry.get(EUIS["ihd"]).state is S.NEW
        assert await han.registry.audit(EUIS["ihd"]) == audit
        record = await han.esi.provision(EUIS["ihd"], str(han.codes["ihd"]))
        assert record is not None
        assert record.state is S.PENDING_PROVISIONING
        with pytest.raises(AlreadyRegistered, match="with another install code"):
            await han.esi.provision(EUIS["ihd"], str(other))  # pending: the same
    finally:
        await close(han)


async def test_a_key_left_by_a_deprovision_cut_short_is_not_loaded_again(tmp_path):
    """De-provisioning writes the registry, then deletes the device's public key record; a
    stop or a crash in between left the key stored, and a restart loaded it for a device
    being removed. The restart drops it and deletes its record, as it ends the rest a
    de-provision cut short (its load control events and messages)."""
    han = await joined_han(tmp_path, names=("lcd",))
    ieee = han.devices["lcd"].device.ieee
    key = han.esi.public_key(ieee)
    assert key is not None
    await han.esi.deprovision(ieee)
    store = han.esi.store
    assert store is not None
    namespace, name = "esi.public_keys", device_name(ieee)
    await store.commit(Batch().put(namespace, name, key.hex()))  # as the stop left it
    again = await restarted(han)
    assert again.public_key(ieee) is None
    assert await store.load(namespace) == {}
    await close(han)
