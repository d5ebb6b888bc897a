"""Sleepy end devices on the simulated air (IEEE 802.15.4-2006 7.5.6.3 indirect transmission;
ZB 3.6.2 end devices): an in-home display whose receiver is off when idle joins as an end
device, polls its parent (the ESI) with MAC Data Requests, and gets what the ESI holds for it
at its next poll; a frame not polled within macTransactionPersistenceTime (7.68 s) fails
its sender; the queue is bounded; a sleeping device hears nothing; frames from other nodes
go through the parent. All on the virtual clock."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.exceptions import DeliveryError
from zigpy.zcl import foundation

from tests.interpan.tshark_json import dissect
from tests.oracles import zigbee_key_options
from tests.sim.test_sim_faults_capture import (
    DISPLAY_MESSAGE,
    EPOCH,
    MESSAGING,
    PRICE,
    _se_endpoint,
    esi_send,
    inbox,
)
from zse.installcode import InstallCode
from zse.sim import Air, SimControllerApplication, SimDevice
from zse.sim import _frames as f
from zse.sim._indirect import (
    DEFAULT_POLL_INTERVAL,
    TRANSACTION_PERSISTENCE_TIME,
    Held,
    IndirectQueue,
    PollSchedule,
    QueueFull,
)

BASIC = 0x0000
HA_PROFILE = 0x0104
#: virtual seconds a test may take: a sleepy device polls for ever, so the virtual clock never
#: runs out of timers and a stuck await would hang the test instead of failing it
DEADLINE = 900.0


def bounded(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Fail the test (TimeoutError) past :data:`DEADLINE` virtual seconds."""

    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> None:
        async with asyncio.timeout(DEADLINE):
            await test(*args, **kwargs)

    return run


async def sleepy_han(
    seed: int, *, poll_interval: float = DEFAULT_POLL_INTERVAL, capture: Any = None
) -> tuple[Air, SimControllerApplication, SimDevice, SimDevice]:
    """The ESI, a sleepy in-home display and an always-listening device (a router), joined,
    interviewed by zigpy, and quiet: the display back at its poll interval."""
    air = Air(seed=seed, capture=capture, epoch=EPOCH)
    esi = await air.coordinator(channel=20)
    await esi.add_endpoint(_se_endpoint())
    devices = []
    for i, sleepy in enumerate((True, False), start=1):
        code = InstallCode.generate(rng=air.rng)
        device = air.device(
            f"00:0d:6f:00:0c:00:00:{i:02x}",
            install_code=code,
            channel=20,
            rx_on_when_idle=not sleepy,
            poll_interval=poll_interval,
        )
        device.add_endpoint(
            1, device_type=0x0502, in_clusters=[0x0800], out_clusters=[PRICE, MESSAGING]
        )
        await esi.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)
        await device.join()
        devices.append(device)
    await asyncio.sleep(30)
    ihd, router = devices
    return air, esi, ihd, router


def now() -> float:
    return asyncio.get_running_loop().time()


async def just_after_a_poll(device: SimDevice) -> float:
    """Wait until just after the device's next poll; the time of that poll."""
    assert device.last_poll is not None
    due = device.last_poll + device.poll_interval
    await asyncio.sleep(due - now() + 0.01)
    assert device.last_poll == pytest.approx(due)
    return due


def raw_unicast(sender: SimDevice, dst: int, seq: int) -> bytes:
    """A MAC data frame from ``sender`` to ``dst``, asking for an acknowledgement."""
    assert sender.pan_id is not None
    hdr = f.MacHeader(f.MAC_DATA, seq, sender.pan_id, dst, sender.pan_id, sender.nwk, True)
    return f.encode_mac(hdr, b"\x00" * 8)


@bounded
async def test_a_sleepy_device_joins_as_an_end_device_and_zigpy_sees_it_so() -> None:
    air, esi, ihd, router = await sleepy_han(70)
    assert ihd.sleepy
    assert not router.sleepy
    assert ihd.logical_type == zdo_t.LogicalType.EndDevice
    caps = ihd.node_descriptor().mac_capability_flags
    assert not caps & zdo_t.MACCapabilityFlags.RxOnWhenIdle
    assert not caps & zdo_t.MACCapabilityFlags.MainsPowered
    # zigpy interviewed it through the ESI's indirect queue and knows it sleeps
    device = esi.get_device(ihd.ieee)
    assert device.is_initialized
    assert device.node_desc is not None
    assert device.node_desc.is_end_device
    assert not device.node_desc.is_receiver_on_when_idle
    assert esi.get_device(router.ieee).node_desc.is_receiver_on_when_idle
    assert esi.radio.sleepy_children == {ihd.nwk: ihd.ieee}
    # its receiver is on while it scans (an active scan waits for beacons)
    assert [b.source for b in await ihd.scan((20,))] == [0x0000]
    # it polls every poll interval once quiet
    polls = ihd.polls
    await asyncio.sleep(10 * DEFAULT_POLL_INTERVAL + 0.01)
    assert ihd.polls == polls + 10
    with pytest.raises(ValueError, match="only an end device sleeps"):
        air.device(rx_on_when_idle=False, logical_type=zdo_t.LogicalType.Router)
    with pytest.raises(ValueError, match="poll_interval"):
        air.device(rx_on_when_idle=False, poll_interval=0)


@bounded
async def test_a_message_to_a_sleepy_display_arrives_at_its_next_poll() -> None:
    _air, esi, ihd, _ = await sleepy_han(71)
    box = inbox(ihd, MESSAGING)
    polled = await just_after_a_poll(ihd)
    await asyncio.sleep(1.0)
    send = asyncio.create_task(esi_send(esi, ihd, MESSAGING, 0x00, DISPLAY_MESSAGE, 1))
    await asyncio.sleep(DEFAULT_POLL_INTERVAL - 1.5)
    assert not box  # asleep: the ESI holds the message
    assert not send.done()
    assert len(esi.radio.indirect) == 1
    await send  # completes when the display acknowledged it, at its next poll
    assert now() == pytest.approx(polled + DEFAULT_POLL_INTERVAL)
    (msg,) = box
    assert msg.timestamp == pytest.approx(polled + DEFAULT_POLL_INTERVAL)
    assert msg.payload == DISPLAY_MESSAGE
    assert len(esi.radio.indirect) == 0


@bounded
async def test_a_frame_not_polled_within_7_68_s_expires_and_the_send_fails() -> None:
    _air, esi, ihd, _ = await sleepy_han(72, poll_interval=10.0)
    box = inbox(ihd, MESSAGING)
    polled = await just_after_a_poll(ihd)
    start = now()
    with pytest.raises(DeliveryError, match="TRANSACTION_EXPIRED") as failed:
        await esi_send(esi, ihd, MESSAGING, 0x00, DISPLAY_MESSAGE, 2)
    assert failed.value.status == t.MACStatus.MAC_TRANSACTION_EXPIRED
    assert "not polled within macTransactionPersistenceTime (7.68 s)" in str(failed.value)
    assert now() - start == pytest.approx(TRANSACTION_PERSISTENCE_TIME)
    assert pytest.approx(7.68) == TRANSACTION_PERSISTENCE_TIME
    assert esi.radio.stats.indirect_expired == 1
    assert len(esi.radio.indirect) == 0
    # the display's next poll finds nothing: the frame is gone
    await asyncio.sleep(polled + 10.0 - now() + 0.01)
    assert ihd.last_poll == pytest.approx(polled + 10.0)
    assert not box


@bounded
async def test_a_poll_with_nothing_pending_and_a_sleeping_receiver_hears_nothing() -> None:
    air, esi, ihd, router = await sleepy_han(73)
    await just_after_a_poll(ihd)
    assert ihd.nwk is not None
    assert not await ihd.poll()  # the Ack has no frame-pending bit: the receiver goes off
    asleep = air.stats.asleep
    # a MAC unicast straight to the sleeping display is neither heard nor acknowledged
    assert not await router.send_interpan(raw_unicast(router, ihd.nwk, 1))
    assert air.stats.asleep == asleep + 1 + air.mac_retries
    # a broadcast to the devices whose receiver is on when idle (0xFFFD) never reaches it,
    # not even at its next polls; the always-listening router hears it
    ihd_box, router_box = inbox(ihd, MESSAGING), inbox(router, MESSAGING)
    await esi.send_packet(_broadcast(0xFFFD, 3))
    await asyncio.sleep(3 * DEFAULT_POLL_INTERVAL)
    assert [m.tsn for m in router_box] == [3]
    assert not ihd_box


def _broadcast(address: int, tsn: int) -> t.ZigbeePacket:
    """The ESI's Display Message to every endpoint of every device at ``address``."""
    return t.ZigbeePacket(
        src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=0x0000),
        src_ep=9,
        dst=t.AddrModeAddress(addr_mode=t.AddrMode.Broadcast, address=address),
        dst_ep=0xFF,
        profile_id=0x0109,
        cluster_id=MESSAGING,
        data=t.SerializableBytes(bytes((0x19, tsn, 0x00)) + DISPLAY_MESSAGE),
        radius=30,
    )


@bounded
async def test_a_broadcast_to_all_devices_is_held_for_a_sleepy_child() -> None:
    """ZB 3.6.5: a broadcast to 0xFFFF reaches sleepy end devices through their parent."""
    _air, esi, ihd, router = await sleepy_han(74)
    ihd_box = inbox(ihd, MESSAGING)
    polled = await just_after_a_poll(ihd)
    await esi.send_packet(_broadcast(0xFFFF, 4))  # the ESI's own
    await router.endpoints[1].send(  # and another device's, which the parent relays
        0xFFFF,
        0xFF,
        MESSAGING,
        0x00,
        DISPLAY_MESSAGE,
        direction=foundation.Direction.Server_to_Client,
        tsn=5,
        dst_mode=t.AddrMode.Broadcast,
    )
    await asyncio.sleep(1.0)
    assert not ihd_box
    await asyncio.sleep(polled + DEFAULT_POLL_INTERVAL - now() + 0.01)
    assert [(m.tsn, m.broadcast) for m in ihd_box] == [(4, True), (5, True)]
    assert [m.timestamp for m in ihd_box] == [pytest.approx(polled + DEFAULT_POLL_INTERVAL)] * 2


@bounded
async def test_a_unicast_from_another_device_goes_through_the_parent(tmp_path: Path) -> None:
    path = tmp_path / "relay.pcap"
    air, esi, ihd, router = await sleepy_han(75, capture=str(path))
    box = inbox(ihd, MESSAGING)
    polled = await just_after_a_poll(ihd)
    start = air.stats.frames
    assert ihd.nwk is not None
    # without an APS acknowledgement asked for (the router is not the display's parent: a
    # 1.6 s APS ack wait would run out before the display polls, as in EmberZNet without an
    # extended timeout), the MAC acknowledgement of the parent ends the send
    router.aps_ack = False
    await router.endpoints[1].send(
        ihd.nwk,
        1,
        MESSAGING,
        0x00,
        DISPLAY_MESSAGE,
        direction=foundation.Direction.Server_to_Client,
        tsn=6,
    )
    # the router's send ends at the parent's MAC acknowledgement; the display gets the
    # message, from the router's address, at its next poll
    assert not box
    await asyncio.sleep(polled + DEFAULT_POLL_INTERVAL - now() + 0.01)
    (msg,) = box
    assert (msg.tsn, msg.src_nwk) == (6, router.nwk)
    air.close()
    packets = dissect(path)[start:]
    data = [p for p in packets if p.get("zbee_nwk.src") == [f"0x{router.nwk:04x}"]]
    sent, relayed = data
    assert sent["wpan.dst16"] == ["0x0000"]  # to the parent, the NWK destination the display
    assert sent["zbee_nwk.dst"] == relayed["zbee_nwk.dst"] == [f"0x{ihd.nwk:04x}"]
    assert relayed["wpan.src16"] == ["0x0000"]
    assert int(relayed["zbee_nwk.radius"][0]) == int(sent["zbee_nwk.radius"][0]) - 1
    # NWK security is hop by hop: the parent secured the relayed frame with its own counter
    assert relayed["zbee.sec.src64"] == [str(esi.radio.ieee)]
    assert sent["zbee.sec.src64"] == [str(router.ieee)]


@bounded
async def test_the_indirect_queue_is_bounded_per_child_and_in_all() -> None:
    _air, esi, ihd, _ = await sleepy_han(76)
    await just_after_a_poll(ihd)
    queue = esi.radio.indirect
    assert (queue.per_child, queue.total) == (3, 16)
    sends = [
        asyncio.create_task(esi_send(esi, ihd, MESSAGING, 0x00, DISPLAY_MESSAGE, tsn))
        for tsn in range(3)
    ]
    await asyncio.sleep(0.1)
    assert queue.held_for(ihd.nwk or 0) == 3
    start = now()
    with pytest.raises(DeliveryError, match="TRANSACTION_OVERFLOW") as full:
        await esi_send(esi, ihd, MESSAGING, 0x00, DISPLAY_MESSAGE, 3)
    assert now() == start  # refused at once
    assert full.value.status == t.MACStatus.MAC_TRANSACTION_OVERFLOW
    assert "3 frames held for" in str(full.value)
    assert esi.radio.stats.indirect_overflow == 1
    # the total bound refuses the next frame for any child
    queue.per_child, queue.total = 10, 3
    with pytest.raises(DeliveryError, match="3 frames held in all, at most 3"):
        await esi_send(esi, ihd, MESSAGING, 0x00, DISPLAY_MESSAGE, 4)
    assert esi.radio.stats.indirect_overflow == 2
    # the held three reach the display at its next poll, one after the other
    box = inbox(ihd, MESSAGING)
    await asyncio.gather(*sends)
    assert [m.tsn for m in box] == [0, 1, 2]
    assert len(queue) == 0


@bounded
async def test_a_sleepy_device_leaving_drops_its_queue() -> None:
    _air, esi, ihd, _ = await sleepy_han(77)
    await just_after_a_poll(ihd)
    sends = [
        asyncio.create_task(esi_send(esi, ihd, MESSAGING, 0x00, DISPLAY_MESSAGE, tsn))
        for tsn in range(2)
    ]
    await asyncio.sleep(0.1)
    assert len(esi.radio.indirect) == 2
    nwk = ihd.nwk
    start = now()
    await ihd.leave()
    results = await asyncio.gather(*sends, return_exceptions=True)
    assert now() == pytest.approx(start)  # failed at once, not after 7.68 s
    assert [str(r) for r in results] == [
        f"0x{nwk:04X} left the network: the frame held for it was dropped"
    ] * 2
    assert all(isinstance(r, DeliveryError) for r in results)
    assert len(esi.radio.indirect) == 0
    assert esi.radio.stats.indirect_dropped == 2
    assert esi.radio.sleepy_children == {}
    assert not ihd.sleepy


@bounded
async def test_zigpy_reads_an_attribute_of_a_sleepy_device() -> None:
    """A request through zigpy waits in the ESI's queue for the device's poll, then its
    answer comes at once; a poll interval below 7.68 s always makes it."""
    air = Air(seed=78, epoch=EPOCH)
    esi = await air.coordinator(channel=20)
    code = InstallCode.generate(rng=air.rng)
    ihd = air.device(install_code=code, channel=20, rx_on_when_idle=False, poll_interval=7.5)
    ihd.add_endpoint(2, profile_id=HA_PROFILE, device_type=0x0007, in_clusters=[BASIC])
    ihd.endpoints[2].set_attribute(BASIC, 0x0004, "zse", type_id=0x42)  # ManufacturerName
    await esi.permit_with_link_key(ihd.ieee, t.KeyData(code.link_key), 60)
    await ihd.join()
    await asyncio.sleep(60)
    device = esi.get_device(ihd.ieee)
    polled = await just_after_a_poll(ihd)
    success, failure = await device.endpoints[2].basic.read_attributes(["manufacturer"])
    assert (success, failure) == ({"manufacturer": "zse"}, {})
    assert now() == pytest.approx(polled + 7.5)  # at the display's next poll


@bounded
async def test_a_sleepy_device_rejoins_through_its_polls() -> None:
    _air, esi, ihd, _ = await sleepy_han(79)
    assert await ihd.rejoin(secure=True)
    assert await ihd.rejoin(secure=False)  # Trust Center rejoin: the key held too
    box = inbox(ihd, MESSAGING)
    await esi_send(esi, ihd, MESSAGING, 0x00, DISPLAY_MESSAGE, 7)
    assert [m.tsn for m in box] == [7]


def test_the_indirect_queue_and_the_poll_schedule_sans_io() -> None:
    queue = IndirectQueue(per_child=2, total=3)
    a, b, c = Held(b"a", 1.0), Held(b"b", 2.0), Held(b"c", 3.0)
    queue.hold(0x1234, a)
    queue.hold(0x1234, b)
    with pytest.raises(QueueFull, match="2 frames held for 0x1234, at most 2"):
        queue.hold(0x1234, c)
    queue.hold(0x5678, c)
    with pytest.raises(QueueFull, match="3 frames held in all"):
        queue.hold(0x9ABC, Held(b"d", 4.0))
    assert queue.first(0x1234) is a
    assert queue.more_after(0x1234, a)
    assert not queue.more_after(0x5678, c)
    assert queue.remove(0x1234, a)
    assert not queue.remove(0x1234, a)
    assert queue.drop(0x1234) == [b]
    assert (len(queue), queue.children()) == (1, [0x5678])
    with pytest.raises(ValueError, match="at least 1"):
        IndirectQueue(per_child=0)
    schedule = PollSchedule(100.0, interval=5.0, fast_interval=0.5, fast_timeout=3.0)
    assert schedule.next_at == 105.0
    schedule.sent(101.0)  # fast poll for 3 s
    assert schedule.next_at == 101.5
    schedule.polled(101.5)
    assert schedule.next_at == 102.0
    schedule.more(101.7)
    assert schedule.next_at == 101.7
    schedule.polled(104.5)  # the fast poll is over
    assert schedule.next_at == 109.5


def _kind(packet: dict[str, list[str]]) -> str:
    kind = {"0x0001": "data", "0x0002": "ack", "0x0003": "cmd"}.get(packet["wpan.frame_type"][0])
    if kind == "cmd" and packet.get("wpan.cmd") == ["0x04"]:
        return "poll"
    return kind or "other"


@bounded
async def test_tshark_reads_the_polls_and_frame_pending_bits(
    tmp_path: Path, tshark_malformed: Any
) -> None:
    """The oracle: tshark dissects the Data Requests (``wpan.cmd == 0x04``) and the
    frame-pending bits (``wpan.pending``) of acknowledgements and held frames, nothing
    malformed: a poll with nothing held, then two held frames fetched by two polls."""
    path = tmp_path / "polls.pcap"
    air, esi, ihd, _ = await sleepy_han(80, capture=str(path))
    box = inbox(ihd, MESSAGING)
    await just_after_a_poll(ihd)
    start = air.stats.frames
    assert not await ihd.poll()
    sends = [
        asyncio.create_task(esi_send(esi, ihd, MESSAGING, 0x00, DISPLAY_MESSAGE, tsn))
        for tsn in (8, 9)
    ]
    await asyncio.gather(*sends)
    assert [m.tsn for m in box] == [8, 9]
    air.close()
    assert tshark_malformed(path) == ""
    packets = dissect(path)[start:]
    seen = [(_kind(p), p.get("wpan.pending", ["-"])[0]) for p in packets]
    assert seen == [
        ("poll", "0"),
        ("ack", "0"),  # nothing held: the receiver goes off
        ("poll", "0"),
        ("ack", "1"),  # a frame is held
        ("data", "1"),  # and another after it
        ("ack", "0"),
        ("poll", "0"),  # so the display polls again at once
        ("ack", "1"),
        ("data", "0"),  # the last one
        ("ack", "0"),
    ]
    polls = [p for p in packets if _kind(p) == "poll"]
    ihd_nwk = f"0x{ihd.nwk:04x}"
    assert {(p["wpan.src16"][0], p["wpan.dst16"][0]) for p in polls} == {(ihd_nwk, "0x0000")}
    assert all(p["wpan.ack_request"] == ["1"] for p in polls)
    data = [p for p in packets if _kind(p) == "data"]
    assert {p["wpan.dst16"][0] for p in data} == {ihd_nwk}
    assert ihd.polls >= 3


@bounded
async def test_an_aps_acknowledged_send_to_a_sleepy_child_waits_for_the_poll_not_resent(
    tmp_path: Path,
) -> None:
    """ZB 2.2.8.4.1 with indirect transmission: the parent's APS ack wait starts once its
    sleepy child took the frame at its poll, so an acknowledged, APS-encrypted unicast is
    neither resent nor failed while the child sleeps; the child's APS ack (sent straight to
    the parent, which listens) ends the send."""
    path = tmp_path / "acked.pcap"
    air, esi, ihd, _router = await sleepy_han(78, capture=str(path))
    box = inbox(ihd, MESSAGING)
    polled = await just_after_a_poll(ihd)
    start = air.stats.frames
    assert ihd.nwk is not None
    await esi_send(esi, ihd, MESSAGING, 0x00, DISPLAY_MESSAGE, 7, encrypt=True, ack=True)
    (msg,) = box
    assert msg.tsn == 7
    assert msg.aps_encrypted
    assert msg.timestamp == pytest.approx(polled + DEFAULT_POLL_INTERVAL, abs=0.05)
    air.close()
    keys = [entry.line() for entry in air.keys]
    packets = dissect(path, zigbee_key_options(keys))[start:]
    aps = [p for p in packets if p.get("zbee_aps.type")]
    kinds = [(p["zbee_nwk.src"][0], p["zbee_aps.type"][0]) for p in aps]
    # one data frame from the ESI, one APS ack from the display: nothing resent
    assert kinds == [("0x0000", "0x00"), (f"0x{ihd.nwk:04x}", "0x02")]


async def test_a_sleepy_device_follows_a_network_key_rotation() -> None:
    """ZB 4.6.3.5: the Transport Key waits for the display's poll, and the Switch Key is
    broadcast to all devices (0xFFFF), so the parent holds it for the display too."""
    _air, esi, ihd, router = await sleepy_han(81)
    new = bytes(range(16, 32))
    seq = await esi.rotate_network_key(new)
    await asyncio.sleep(DEFAULT_POLL_INTERVAL + 0.01)
    assert (ihd.network_key, ihd.network_key_seq) == (new, seq)
    assert (router.network_key, router.network_key_seq) == (new, seq)
    box = inbox(ihd, MESSAGING)
    await esi_send(esi, ihd, MESSAGING, 0x00, DISPLAY_MESSAGE, 10)
    assert [m.tsn for m in box] == [10]
    reply = await ihd.zdo_request(0x0000, zdo_t.ZDOCmd.Node_Desc_req, t.NWK(0x0000))
    assert reply[0] == zdo_t.Status.SUCCESS


@bounded
async def test_the_esi_removing_a_sleepy_display_waits_for_its_poll() -> None:
    _air, esi, ihd, _ = await sleepy_han(82)
    polled = await just_after_a_poll(ihd)
    await esi.force_remove(esi.get_device(ihd.ieee))  # the Leave request is held
    assert now() == pytest.approx(polled + DEFAULT_POLL_INTERVAL)
    await asyncio.sleep(0.1)
    assert not ihd.joined
    assert not ihd.sleepy
    assert esi.radio.sleepy_children == {}
    assert len(esi.radio.indirect) == 0


@bounded
async def test_a_fragmented_send_to_a_sleepy_child_arrives_whole_block_by_block() -> None:
    """ZB 2.2.8.4.5 with indirect transmission: each block of an APS-encrypted frame too long
    for one frame waits in the parent's queue for a poll (window 1: the next block once the
    child acknowledged the one before, which makes it poll fast), and the child gets the
    frame once, whole."""
    _air, esi, ihd, _router = await sleepy_han(79)
    box = inbox(ihd, MESSAGING)
    await just_after_a_poll(ihd)
    assert ihd.nwk is not None
    body = DISPLAY_MESSAGE + bytes(range(200))  # past one APS-encrypted frame
    polls = ihd.polls
    await esi_send(esi, ihd, MESSAGING, 0x00, body, 8, encrypt=True, ack=True)
    (msg,) = box
    assert (msg.tsn, msg.payload, msg.aps_encrypted) == (8, body, True)
    assert ihd.polls - polls >= 4  # a poll for each block
    assert esi.radio.stats.indirect_expired == esi.radio.stats.indirect_overflow == 0


@bounded
async def test_a_frame_too_long_for_a_sleepy_child_is_refused_at_once() -> None:
    """802.15.4-2006 7.1.1.1.3 (FRAME_TOO_LONG): an unacknowledged unicast too long for one
    frame is refused when sent to a sleepy child as to any device, not held until a poll
    the parent could not answer (its queue then stuck and the send never done)."""
    air, esi, ihd, router = await sleepy_han(83)
    box = inbox(ihd, MESSAGING)
    too_long = DISPLAY_MESSAGE + bytes(range(200))
    for device in (router, ihd):
        with pytest.raises(DeliveryError, match="exceeds aMaxPHYPacketSize") as refused:
            await esi_send(esi, device, MESSAGING, 0x00, too_long, 11)
        assert refused.value.status == t.MACStatus.MAC_FRAME_TOO_LONG
    assert air.stats.too_long == 2
    assert len(esi.radio.indirect) == 0
    # the display's queue still works
    await esi_send(esi, ihd, MESSAGING, 0x00, DISPLAY_MESSAGE, 12)
    assert [m.tsn for m in box] == [12]
