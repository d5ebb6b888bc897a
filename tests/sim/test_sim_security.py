"""NWK and APS security on the simulated air (#15.1): an altered, replayed or wrongly keyed
frame is dropped and counted by reason, and the application sees nothing; the Transport Key
never shows the network key; "APS encrypted" means a frame that decrypted with a link key;
the network key can be rotated."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import random

import pytest
import zigpy.types as t
from zigpy.exceptions import DeliveryError

from tests.interpan.tshark_json import dissect
from tests.oracles import zigbee_key_options
from tests.sim.test_sim_faults_capture import (
    DISPLAY_MESSAGE,
    MESSAGING,
    PRICE,
    SE_PROFILE,
    esi_send,
    han,
    inbox,
)
from zse.errors import BadMic
from zse.pcap import PcapWriter
from zse.security import (
    AuxHeader,
    KeyId,
    aps_header_length,
    nwk_header_length,
    secure_aps,
    secure_nwk,
    unsecure_aps,
    unsecure_nwk,
)
from zse.sim import Air, NodeStats, SimControllerApplication, SimDevice
from zse.sim import _frames as f
from zse.sim._node import APS_MAX_FRAME_RETRIES

ATTACKER = "00:0d:6f:00:0c:00:00:ee"


class Tap(PcapWriter):
    """A capture that also keeps every frame (MAC, without FCS) as sent; ``sent`` leaves out
    the MAC acknowledgements (``acks`` has them)."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        super().__init__(self.buffer)
        self.sent: list[bytes] = []
        self.acks: list[bytes] = []

    def write(self, frame: bytes, timestamp: float) -> None:
        is_ack = frame[0] & 0x07 == f.MAC_ACK
        (self.acks if is_ack else self.sent).append(bytes(frame))
        super().write(frame, timestamp)


def last_sent_by(tap: Tap, node: SimDevice) -> bytes:
    """The last frame ``node`` sent (an APS acknowledgement of it may follow it on the air)."""
    return next(data for data in reversed(tap.sent) if f.decode_mac(data)[0].src == node.nwk)


def nwk_data(frames: list[bytes]) -> list[tuple[f.MacHeader, f.NwkHeader, bytes]]:
    """The MAC data frames carrying a NWK frame: MAC header, NWK header, NWK frame."""
    out = []
    for data in frames:
        mac, payload = f.decode_mac(data)
        if mac.frame_type == f.MAC_DATA and payload[:1] and payload[0] & 3 != 3:
            out.append((mac, f.decode_nwk(payload)[0], payload))
    return out


def drops(stats: NodeStats) -> dict[str, int]:
    return {name: value for name, value in vars(stats).items() if value}


async def lost_frame(
    air: Air, esi: SimControllerApplication, dev: SimDevice, tap: Tap, tsn: int
) -> bytes:
    """A Display Message from the ESI the device never heard (its link lost everything)."""
    air.set_link_faults(esi.radio, dev, loss=1.0)
    before = len(tap.sent)
    with pytest.raises(DeliveryError):
        await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, tsn)
    air.set_link_faults(esi.radio, dev)
    attempts = set(tap.sent[before:])
    assert len(attempts) == 1  # the MAC retries send the same bytes
    return attempts.pop()


def rewrap(frame: bytes, payload: bytes, key: bytes, key_seq: int, counter: int) -> bytes:
    """``frame`` (MAC + secured NWK) with its NWK payload replaced by ``payload``, secured
    afresh with ``key`` / ``key_seq`` at ``counter``, as an attacker holding a key would."""
    _, nwk_frame = f.decode_mac(frame)
    length = nwk_header_length(nwk_frame)
    aux, _ = AuxHeader.decode(nwk_frame[length:])
    assert aux.source is not None
    header = bytes((nwk_frame[0], nwk_frame[1] & ~0x02)) + nwk_frame[2:length]
    secured = secure_nwk(
        header, payload, key=key, key_seq=key_seq, counter=counter, source=aux.source
    )
    return frame[: len(frame) - len(nwk_frame)] + secured


def nwk_aux(frame: bytes) -> AuxHeader:
    """The NWK auxiliary header of a MAC frame carrying a secured NWK frame."""
    _, nwk_frame = f.decode_mac(frame)
    return AuxHeader.decode(nwk_frame[nwk_header_length(nwk_frame) :])[0]


def price_packets(esi: SimControllerApplication) -> list[t.ZigbeePacket]:
    """The Price cluster packets the radio hands zigpy from now on."""
    got: list[t.ZigbeePacket] = []
    original = esi.packet_received

    def record(packet: t.ZigbeePacket) -> None:
        if packet.cluster_id == PRICE:
            got.append(packet)
        original(packet)

    esi.packet_received = record  # type: ignore[method-assign]
    return got


async def inject(air: Air, data: bytes) -> None:
    """An attacker on the channel transmits ``data`` (a MAC frame) as it is."""
    try:
        attacker = air.node(ATTACKER)
    except KeyError:
        attacker = air.device(ATTACKER, channel=20)
        attacker.listen()
    await air.transmit(air.frame(attacker, data))
    await asyncio.sleep(0.1)


async def test_every_nwk_frame_after_joining_is_secured_and_the_network_key_never_shows():
    tap = Tap()
    _, esi, (dev, _) = await han(30, capture=tap)
    await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 1)
    await asyncio.sleep(0.1)
    key = dev.network_key
    assert key is not None
    assert not any(key in frame for frame in tap.sent)
    frames = nwk_data(tap.sent)
    clear = [(mac, nwk, raw) for mac, nwk, raw in frames if not nwk.security]
    # Only the Transport Keys to the two joining devices go without NWK security, and their
    # APS command is secured with the key-transport key (ZB 4.6.3.4.1).
    assert len(clear) == 2
    for _, _, raw in clear:
        aps = raw[nwk_header_length(raw) :]
        assert aps[0] & 0x20  # APS security
        aux, _ = AuxHeader.decode(aps[aps_header_length(aps) :])
        assert aux.key_id is KeyId.KEY_TRANSPORT
    secured = [nwk for _, nwk, _ in frames if nwk.security]
    assert len(secured) == len(frames) - 2 > 15
    assert all(drops(node.stats) == {} for node in (esi.radio, dev))


async def test_a_flipped_bit_is_dropped_as_a_bad_mic_and_the_true_frame_then_accepted():
    tap = Tap()
    air, esi, (dev, _) = await han(31, capture=tap)
    box = inbox(dev, MESSAGING)
    frame = await lost_frame(air, esi, dev, tap, 7)
    for position in (len(frame) - 1, len(frame) - 10, 20):  # MIC, payload, NWK header
        flipped = bytearray(frame)
        flipped[position] ^= 0x04
        await inject(air, bytes(flipped))
    assert box == []
    assert drops(dev.stats) == {"nwk_bad_mic": 3}
    await inject(air, frame)  # the frame as sent: its counter was never used, it is accepted
    assert [m.tsn for m in box] == [7]


async def test_a_replayed_frame_is_dropped_as_stale():
    tap = Tap()
    air, esi, (dev, _) = await han(32, capture=tap)
    box = inbox(dev, MESSAGING)
    await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 8)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [8]
    sent = tap.sent[-1]
    await inject(air, sent)
    await inject(air, sent)
    assert [m.tsn for m in box] == [8]
    assert drops(dev.stats) == {"nwk_stale_counter": 2}


async def test_a_frame_under_a_wrong_or_unknown_network_key_is_dropped():
    tap = Tap()
    air, esi, (dev, _) = await han(33, capture=tap)
    box = inbox(dev, MESSAGING)
    frame = await lost_frame(air, esi, dev, tap, 9)
    aux = nwk_aux(frame)
    aps = f.encode_aps(
        f.ApsHeader(f.APS_DATA, 0, 0x42, 1, None, MESSAGING, SE_PROFILE, 9),
        bytes((0x19, 10, 0x00)) + DISPLAY_MESSAGE,
    )
    assert aux.key_seq is not None
    assert dev.network_key is not None
    for key, key_seq in ((bytes(16), aux.key_seq), (dev.network_key, aux.key_seq + 1)):
        await inject(air, rewrap(frame, aps, key, key_seq, aux.counter + 1))
    assert box == []
    assert drops(dev.stats) == {"nwk_bad_mic": 1, "nwk_unknown_key": 1}
    # The same frame under the right key and sequence number is delivered: the key was all.
    await inject(air, rewrap(frame, aps, dev.network_key, aux.key_seq, aux.counter + 2))
    assert [m.tsn for m in box] == [10]


async def test_aps_encryption_is_real_and_a_replayed_aps_frame_is_stale():
    """A frame sent "APS encrypted" carries an APS auxiliary header (data key) and reaches
    zigpy flagged encrypted; an insider (holding the network key) who wraps the captured APS
    frame in a fresh NWK frame is stopped by the APS frame counter (ZB 4.4.1.2)."""
    tap = Tap()
    air, esi, (dev, _) = await han(34, capture=tap)
    got = price_packets(esi)
    await dev.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)
    await asyncio.sleep(0.1)
    assert [bool(p.tx_options & t.TransmitOptions.APS_Encryption) for p in got] == [True]
    frame = last_sent_by(tap, dev)
    _, nwk_frame = f.decode_mac(frame)
    assert f.decode_nwk(nwk_frame)[0].security
    await inject(air, frame)  # replayed as it is: stale at the NWK layer
    assert drops(esi.radio.stats) == {"nwk_stale_counter": 1}
    # The insider opens the NWK layer and wraps the APS frame in a fresh NWK frame.
    assert dev.network_key is not None
    inner = unsecure_nwk(nwk_frame, {dev.network_key_seq: dev.network_key}).payload
    assert inner[0] & 0x20  # APS security bit
    inner_aux, _ = AuxHeader.decode(inner[aps_header_length(inner) :])
    assert inner_aux.key_id is KeyId.DATA
    counter = nwk_aux(frame).counter + 100
    await inject(air, rewrap(frame, inner, dev.network_key, dev.network_key_seq, counter))
    assert len(got) == 1
    assert drops(esi.radio.stats) == {"nwk_stale_counter": 1, "aps_stale_counter": 1}


async def test_network_key_rotation_transport_key_then_switch_key(tmp_path):
    tap = Tap()
    air, esi, (a, b) = await han(35, capture=tap)
    box = inbox(a, MESSAGING)
    old = a.network_key
    await esi_send(esi, a, MESSAGING, 0x00, DISPLAY_MESSAGE, 1)
    old_frame = tap.sent[-1]
    air.silence(b)  # b misses the new key
    new = bytes(range(16))
    seq = await esi.rotate_network_key(new)
    air.restore(b)
    assert seq == 1
    assert (a.network_key, a.network_key_seq) == (new, 1)
    assert (esi.radio.network_key, esi.radio.network_key_seq) == (new, 1)
    assert (b.network_key, b.network_key_seq) == (old, 0)
    assert esi.state.network_info.network_key.seq == 1
    assert bytes(esi.state.network_info.network_key.key) == new
    assert not any(new in frame for frame in tap.sent)
    await esi_send(esi, a, MESSAGING, 0x00, DISPLAY_MESSAGE, 2)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [1, 2]
    # The old key is gone: a frame under it is dropped as of an unknown key.
    await inject(air, old_frame)
    assert a.stats.nwk_unknown_key == 1
    # b, which missed the Transport Key, is no longer heard by the ESI.
    with pytest.raises(asyncio.TimeoutError):
        await b.zdo_request(0x0000, 0x0002, t.NWK(0x0000), timeout=1)  # Node_Desc_req
    assert esi.radio.stats.nwk_unknown_key >= 1
    assert "network key 1" in [entry.label for entry in air.keys]
    # Wireshark, given the keys, decrypts every frame, before and after the switch.
    capture = tmp_path / "rotation.pcap"
    capture.write_bytes(tap.buffer.getvalue())
    packets = dissect(capture, zigbee_key_options(entry.line() for entry in air.keys))
    assert not any("zbee_sec.encrypted_payload" in p for p in packets)
    assert {p["zbee.sec.key_seqno"][0] for p in packets if "zbee.sec.key_seqno" in p} == {"0", "1"}
    commands = [p["zbee_aps.cmd.id"][0] for p in packets if "zbee_aps.cmd.id" in p]
    # Transport Key at each join; the new key to a, then to the silent b (four MAC attempts);
    # Switch Key.
    assert commands == ["0x05"] * 2 + ["0x05"] + ["0x05"] * 4 + ["0x09"]
    new_hex = ":".join(f"{b:02x}" for b in new)
    carried = [p["zbee_aps.cmd.key"][0] for p in packets if "zbee_aps.cmd.key" in p]
    assert carried[-1] == new_hex


async def test_no_key_in_logs_or_reprs(caplog):
    caplog.set_level(logging.DEBUG)
    tap = Tap()
    air, esi, (dev, _) = await han(36, capture=tap)
    dev.set_link_key(esi.state.node_info.ieee, bytes(range(16)))  # the ESI disagrees
    with pytest.raises(DeliveryError, match="no APS acknowledgement"):  # nor acknowledges
        await dev.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)
    await asyncio.sleep(0.1)
    assert esi.radio.stats.aps_bad_mic == 1 + APS_MAX_FRAME_RETRIES
    keys = [entry.key for entry in air.keys]
    assert len(keys) == 4  # network key, two install-code keys, and the one just installed
    text = caplog.text + repr(air.keys) + repr(dev) + repr(esi.radio) + repr(dev.stats)
    for key in keys:
        for form in (key.hex(), key.hex().upper(), repr(key), str(list(key))):
            assert form not in text


async def test_garbage_behind_a_secured_nwk_header_is_dropped_and_counted():
    """Random bytes after a valid NWK header with the security bit set, and random APS
    frames inside a correctly secured NWK frame (an insider): every one is counted as a
    security failure or malformed, none reaches the application, nothing crashes."""
    tap = Tap()
    air, esi, (dev, _) = await han(37, capture=tap)
    box = inbox(dev, MESSAGING)
    frame = await lost_frame(air, esi, dev, tap, 11)
    _, nwk_frame = f.decode_mac(frame)
    mac_header = frame[: len(frame) - len(nwk_frame)]
    header = nwk_frame[: nwk_header_length(nwk_frame)]
    aux = nwk_aux(frame)
    assert dev.network_key is not None
    rng = random.Random(37)
    sent = 200
    for n in range(sent // 2):
        await inject(air, mac_header + header + rng.randbytes(rng.randrange(30)))
        aps = bytes((rng.choice((0x20, 0x21, 0x28, 0x61)),)) + rng.randbytes(rng.randrange(25))
        fresh = aux.counter + 1 + n
        await inject(air, rewrap(frame, aps, dev.network_key, aux.key_seq or 0, fresh))
    assert box == []
    counted = drops(dev.stats)
    assert sum(counted.values()) == sent, counted
    assert set(counted) <= {
        "nwk_bad_mic",
        "nwk_stale_counter",
        "nwk_unknown_key",
        "malformed",
        "aps_bad_mic",
        "aps_unknown_key",
        "aps_stale_counter",
    }


async def test_an_aps_frame_again_in_a_fresh_nwk_frame_is_an_aps_duplicate():
    """APS duplicate rejection (ZB 2.2.8.4.2) still stands behind NWK replay protection: the
    same APS frame (source, APS counter) in a new NWK frame, as a relay's retransmission
    would carry it, is dropped as a duplicate."""
    tap = Tap()
    air, esi, (dev, _) = await han(38, capture=tap)
    box = inbox(dev, MESSAGING)
    await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 12)
    await asyncio.sleep(0.1)
    frame = tap.sent[-1]
    _, nwk_frame = f.decode_mac(frame)
    assert dev.network_key is not None
    inner = unsecure_nwk(nwk_frame, {dev.network_key_seq: dev.network_key}).payload
    counter = nwk_aux(frame).counter + 1
    await inject(air, rewrap(frame, inner, dev.network_key, dev.network_key_seq, counter))
    assert [m.tsn for m in box] == [12]
    assert drops(dev.stats) == {"aps_duplicates": 1}


async def test_frame_counters_survive_leave_and_rejoin_with_the_same_keys():
    """Frame counters belong to a key: a device that leaves and rejoins with the same network
    and link keys goes on counting (its receivers remember), and one that had moved to a new
    link key (CBKE) is keyed again from the install code's counters, so nothing is stale."""
    _, esi, (dev, _) = await han(39)
    got = price_packets(esi)
    tc = esi.state.node_info.ieee
    install_key = dev.preconfigured_key
    assert install_key is not None
    for rejoin in range(3):
        cbke = bytes((rejoin,)) * 16
        await dev.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)  # install key
        esi.set_link_key(dev.ieee, cbke)
        dev.set_link_key(tc, cbke)
        await dev.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)  # CBKE key
        await dev.leave()
        await asyncio.sleep(1)
        await esi.permit_with_link_key(dev.ieee, t.KeyData(install_key), 60)
        await dev.join()
        await asyncio.sleep(1)
    assert len(got) == 6
    assert all(p.tx_options & t.TransmitOptions.APS_Encryption for p in got)
    assert drops(esi.radio.stats) == {}
    assert drops(dev.stats) == {}


async def test_a_device_that_missed_the_key_rejoins_through_the_trust_center(tmp_path):
    """ZB 3.6.1.4.2 / 4.6.3.6 on the air: b missed the rotation; its secure Rejoin Request
    (old key) is dropped by the coordinator, its unsecured one (Trust Center rejoin) answered
    by an unsecured Rejoin Response and the new key in a Transport Key under b's link key."""
    tap = Tap()
    air, esi, (_a, b) = await han(36, capture=tap)
    air.silence(b)
    new = bytes(range(16, 32))
    await esi.rotate_network_key(new)
    air.restore(b)
    dropped = esi.radio.stats.nwk_unknown_key
    assert not await b.rejoin(secure=True)  # the old key: no answer
    assert esi.radio.stats.nwk_unknown_key == dropped + 1
    assert await b.rejoin(secure=False)
    assert (b.network_key, b.network_key_seq) == (new, 1)
    await b.zdo_request(0x0000, 0x0002, t.NWK(0x0000), timeout=1)  # heard again
    assert await b.rejoin(secure=True)  # with the current key, a secure rejoin works
    # a device the Trust Center shares no link key with is refused
    esi.radio.link_keys.pop(b.ieee)
    assert not await b.rejoin(secure=False)
    capture = tmp_path / "rejoin.pcap"
    capture.write_bytes(tap.buffer.getvalue())
    packets = dissect(capture, zigbee_key_options(entry.line() for entry in air.keys))
    assert not any("zbee_sec.encrypted_payload" in p for p in packets)
    nwk_commands = [p["zbee_nwk.cmd.id"][0] for p in packets if "zbee_nwk.cmd.id" in p]
    # secure request (unanswered), TC rejoin request + response, secure request + response,
    # refused TC rejoin request + response
    assert nwk_commands == ["0x06", "0x06", "0x07", "0x06", "0x07", "0x06", "0x07"]
    statuses = [
        p["zbee_nwk.cmd.rejoin_status"][0] for p in packets if "zbee_nwk.cmd.rejoin_status" in p
    ]
    assert [int(s, 0) for s in statuses] == [0, 0, 2]
    carried = [p["zbee_aps.cmd.key"][0] for p in packets if "zbee_aps.cmd.key" in p]
    assert carried[-1] == ":".join(f"{x:02x}" for x in new)


async def test_garbage_rejoin_frames_in_clear_admit_no_one_and_reach_no_one():
    """Unsecured NWK command frames from strangers: Rejoin Requests (with random tails) are
    answered "refused" (no link key) and admit no one; anything else in clear, and a Rejoin
    Response to a device that is not rejoining, is dropped and counted as unsecured."""
    air, esi, (dev, _) = await han(38)
    radio = esi.radio
    children = dict(radio.children)
    rng = random.Random(38)
    pan = radio.pan_id
    assert dev.nwk is not None
    unsecured_at_coordinator = radio.stats.nwk_unsecured
    others = 0
    for n in range(60):
        stranger = t.EUI64(rng.randbytes(8))
        command = rng.choice((f.NWK_CMD_REJOIN_REQUEST, f.NWK_CMD_REJOIN_RESPONSE, 0x04, 0x00))
        others += command != f.NWK_CMD_REJOIN_REQUEST
        payload = bytes((command,)) + rng.randbytes(rng.randrange(6))
        for dst in (0x0000, dev.nwk):
            hdr = f.NwkHeader(
                dst, 0x1000 + n, 1, n, frame_type=f.NWK_COMMAND, discover_route=0, src_ieee=stranger
            )
            mac = f.MacHeader(f.MAC_DATA, n, pan, dst, pan, 0x1000 + n, False)
            await inject(air, f.encode_mac(mac, f.encode_nwk(hdr, payload)))
    await asyncio.sleep(5)
    assert radio.children == children
    assert radio.stats.nwk_unsecured - unsecured_at_coordinator == others
    assert dev.stats.nwk_unsecured == 60
    assert dev.joined
    assert dev.network_key == radio.network_key


async def encrypted_price(dev: SimDevice, tap: Tap) -> tuple[bytes, bytes]:
    """``dev`` sends Get Current Price APS-encrypted: its MAC frame as sent, and the NWK
    payload (the secured APS frame) that any holder of the network key reads."""
    await dev.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)
    await asyncio.sleep(0.1)
    frame = last_sent_by(tap, dev)
    _, nwk_frame = f.decode_mac(frame)
    assert dev.network_key is not None
    return frame, unsecure_nwk(nwk_frame, {dev.network_key_seq: dev.network_key}).payload


async def zigpy_send(esi: SimControllerApplication, ieee: t.EUI64, tsn: int) -> None:
    """The ESI's Display Message to ``ieee``, APS-encrypted, sent as zigpy sends: to the
    address zigpy records for the device."""
    data = bytes((0x19, tsn, 0x00)) + DISPLAY_MESSAGE  # server to client, no Default Response
    await esi.request(
        esi.get_device(ieee=ieee),
        SE_PROFILE,
        MESSAGING,
        9,
        1,
        tsn,
        data,
        expect_reply=False,
        aps_encryption=True,
    )


def _insider_frame(template: bytes, sender: SimDevice, aps: bytes, nwk_src: int, **nwk) -> bytes:
    """``template`` (a MAC frame ``sender`` sent) carrying ``aps`` in a NWK frame from
    ``nwk_src`` (fields ``nwk`` replaced too), secured with the network key ``sender`` holds
    at its next frame counter, with its EUI-64 in the NWK auxiliary header: what a joined
    device can forge."""
    mac, nwk_frame = f.decode_mac(template)
    header, _ = f.decode_nwk(nwk_frame)
    assert sender.network_key is not None
    spoofed = dataclasses.replace(header, src=nwk_src, security=False, **nwk)
    counter = sender.nwk_frame_counter
    sender.nwk_frame_counter += 1
    secured = secure_nwk(
        f.encode_nwk(spoofed, b""),
        aps,
        key=sender.network_key,
        key_seq=sender.network_key_seq,
        counter=counter,
        source=int.from_bytes(bytes(sender.ieee), "little"),
    )
    return f.encode_mac(mac, b"") + secured


async def test_an_insider_cannot_pass_off_its_aps_frame_as_another_devices():
    """A joined device secured an APS frame with its own link key inside a NWK frame from
    its neighbour's address: the simulator chose the key by the APS auxiliary header but
    told zigpy the NWK source sent it, APS-encrypted. Now the frame is dropped
    (``aps_source_mismatch``): the key that opens it must be the NWK source's."""
    tap = Tap()
    air, esi, (a, b) = await han(34, capture=tap)
    got = price_packets(esi)
    template, inner = await encrypted_price(a, tap)
    assert [p.src.address for p in got if p.src is not None] == [a.nwk]
    aux, _ = AuxHeader.decode(inner[aps_header_length(inner) :])
    plain_header = bytes((inner[0] & ~0x20,)) + inner[1 : aps_header_length(inner)]
    radio = esi.radio
    assert b.nwk is not None
    for n, src_ieee in enumerate((b.ieee, None)):
        aps = secure_aps(
            plain_header,
            bytes((0x01, 0x70 + n, 0x00)),
            link_key=a.link_keys[radio.ieee],
            counter=aux.counter + 1 + n,
            source=int.from_bytes(bytes(a.ieee), "little"),
        )
        await inject(air, _insider_frame(template, a, aps, b.nwk, src_ieee=src_ieee))
    assert [p.src.address for p in got if p.src is not None] == [a.nwk]
    assert drops(radio.stats) == {"aps_source_mismatch": 2}


async def test_an_insider_frame_does_not_remap_a_neighbours_address():
    """Every NWK frame that decrypted rewrote the short address -> EUI-64 map with the
    sender's claim, so one frame from A with B's short address made the ESI secure B's
    traffic with A's link key. Now only joins, rejoins and Device_annce teach addresses,
    and an announce contradicting the Trust Center's join records is ignored
    (``address_conflicts``): B still gets, and A cannot read, the ESI's frames to B."""
    tap = Tap()
    air, esi, (a, b) = await han(36, capture=tap)
    radio = esi.radio
    box = inbox(b, MESSAGING)
    assert a.nwk is not None
    assert b.nwk is not None
    template, inner = await encrypted_price(a, tap)
    await inject(air, _insider_frame(template, a, inner, b.nwk, src_ieee=None))
    # A's Device_annce claiming B's address, and B's own address for A, are refused too.
    for nwk in (b.nwk, a.nwk):
        payload = bytes((0x55,)) + t.serialize(
            [t.NWK(nwk), a.ieee if nwk == b.nwk else b.ieee, t.uint8_t(0x8E)],
            [t.NWK, t.EUI64, t.uint8_t],
        )
        await a.send_aps(
            dst_mode=t.AddrMode.Broadcast,
            dst_addr=0xFFFD,
            dst_ep=0,
            src_ep=0,
            cluster_id=0x0013,  # Device_annce
            profile_id=0x0000,
            payload=payload,
        )
        await asyncio.sleep(0.5)  # broadcasts go out with a jitter: one at a time
    assert radio.address_map[b.nwk] == b.ieee
    assert radio.address_map[a.nwk] == a.ieee
    assert radio.stats.address_conflicts == 2
    before = len(tap.sent)
    await esi_send(esi, b, MESSAGING, 0x00, DISPLAY_MESSAGE, 2, encrypt=True)
    await asyncio.sleep(0.2)
    assert [m.tsn for m in box] == [2]
    assert [m.aps_encrypted for m in box] == [True]
    assert drops(b.stats) == {"address_conflicts": 2}  # both contradict B's own address
    for frame in tap.sent[before:]:
        _, sent = f.decode_mac(frame)
        if sent[:1] and sent[0] & 3 == 0:  # NWK data
            aps = unsecure_nwk(sent, {a.network_key_seq: a.network_key}).payload
            with pytest.raises(BadMic):
                unsecure_aps(
                    aps,
                    a.link_keys[radio.ieee],
                    source=int.from_bytes(bytes(radio.ieee), "little"),
                )


def _nwk_command(
    pan: int,
    command: bytes,
    *,
    mac_src: int,
    nwk_src: int,
    claim: t.EUI64,
    key_holder: SimDevice | None,
    source: t.EUI64 | None = None,
    counter: int | None = None,
) -> bytes:
    """A NWK command to the coordinator from ``nwk_src`` (MAC source ``mac_src``) whose NWK
    extended source claims ``claim``: secured with the network key ``key_holder`` holds, the
    auxiliary header naming ``source`` (default: the key holder) at ``counter`` (default: the
    key holder's next), or in clear without a key holder (a Trust Center rejoin's form)."""
    hdr = f.NwkHeader(
        0x0000, nwk_src, 1, 0x42, frame_type=f.NWK_COMMAND, discover_route=0, src_ieee=claim
    )
    mac = f.encode_mac(f.MacHeader(f.MAC_DATA, 0x42, pan, 0x0000, pan, mac_src, True), b"")
    if key_holder is None:
        return mac + f.encode_nwk(hdr, command)
    assert key_holder.network_key is not None
    if counter is None:
        counter = key_holder.nwk_frame_counter
        key_holder.nwk_frame_counter += 1
    return mac + secure_nwk(
        f.encode_nwk(hdr, b""),
        command,
        key=key_holder.network_key,
        key_seq=key_holder.network_key_seq,
        counter=counter,
        source=int.from_bytes(bytes(source or key_holder.ieee), "little"),
    )


async def test_an_insider_cannot_forge_its_neighbours_leave():
    """The coordinator believed the EUI-64 a NWK Leave claims: a joined device A sending one
    with B's EUI-64 made the Trust Center forget B and its link key. Now a NWK command's
    claimed sender must be the device the coordinator knows at its NWK source, in both the
    NWK and the auxiliary header, and the MAC source must be the NWK source: each forgery is
    dropped (``nwk_source_mismatch``), B stays and still gets the ESI's encrypted frames."""
    air, esi, (a, b) = await han(41)
    radio = esi.radio
    box = inbox(b, MESSAGING)
    assert a.nwk is not None
    assert b.nwk is not None
    leave = bytes((0x04, 0x00))  # NWK Leave (ZB 3.4.4.3.1), no request, no rejoin
    ahead = b.nwk_frame_counter + 10  # above B's counter: only the binding can refuse it
    for mac_src, nwk_src, source, counter in (
        (a.nwk, a.nwk, None, None),  # from A's address
        (a.nwk, b.nwk, None, None),  # from B's address, A's auxiliary header
        (a.nwk, b.nwk, b.ieee, ahead),  # all B's but the MAC source
    ):
        frame = _nwk_command(
            radio.pan_id,
            leave,
            mac_src=mac_src,
            nwk_src=nwk_src,
            claim=b.ieee,
            key_holder=a,
            source=source,
            counter=counter,
        )
        await inject(air, frame)
    assert radio.children[b.ieee] == b.nwk
    assert b.ieee in radio.link_keys
    assert drops(radio.stats) == {"nwk_source_mismatch": 3}
    await esi_send(esi, b, MESSAGING, 0x00, DISPLAY_MESSAGE, 7, encrypt=True)
    await asyncio.sleep(0.1)
    assert [(m.tsn, m.aps_encrypted) for m in box] == [(7, True)]
    await a.leave()  # a device's own Leave still counts
    await asyncio.sleep(0.1)
    assert a.ieee not in radio.children
    assert a.ieee not in radio.link_keys


async def test_an_insider_cannot_have_the_coordinator_relay_a_leave_from_itself():
    """A joined device sends the coordinator a NWK Leave (request bit set) for its neighbour
    B whose NWK source is the coordinator's own address: relayed, secured again by the
    coordinator, it reached B from the coordinator's MAC address with the coordinator's
    auxiliary header, bound as a Leave from its parent, and B left. A router relays no frame
    whose NWK source is its own address (counted): B stays, as on the air before routing."""
    _, esi, (a, b) = await han(41)
    radio = esi.radio
    assert b.nwk is not None
    hdr = f.NwkHeader(b.nwk, 0x0000, 5, 0x42, frame_type=f.NWK_COMMAND, discover_route=0)
    frame = a._nwk_frame(hdr, bytes((0x04, 0x40)))  # Leave, request: "from the coordinator"
    assert frame is not None
    assert await a._mac_send(b.nwk, frame, hop=0x0000)  # the coordinator's MAC took it
    await asyncio.sleep(1)
    assert b.joined
    assert radio.children[b.ieee] == b.nwk
    assert radio.route_stats.relayed == 0
    assert drops(radio.stats) == {"nwk_source_mismatch": 1}


async def test_no_one_rejoins_as_another_device():
    """The Trust Center believed the EUI-64 a Rejoin Request claims: from its own address a
    joined device (secured) or anyone at all (a Trust Center rejoin in clear) moved B's entry
    to that address, so the ESI's frames to B no longer reached B. Now a Rejoin Request whose
    claimed EUI-64 is not the device known at its NWK and MAC source is dropped unanswered
    (``nwk_source_mismatch``); a fully forged one is checked against B's own frame counter
    (a counter B used is stale); B's own rejoins still work. (A Trust Center rejoin in clear
    from an address no device has is answered, uselessly to anyone but B, and moves nothing:
    ``tests/sim/test_sim_tc_rejoin.py``.)"""
    tap = Tap()
    air, esi, (a, b) = await han(42, capture=tap)
    radio = esi.radio
    box = inbox(b, MESSAGING)
    assert a.nwk is not None
    assert b.nwk is not None
    request = bytes((f.NWK_CMD_REJOIN_REQUEST, 0x8E))
    sent = len(tap.sent)
    for mac_src, nwk_src, key_holder in (
        (a.nwk, a.nwk, a),  # secured, from A's address
        (a.nwk, b.nwk, a),  # secured, from B's address, A's auxiliary header
        (a.nwk, a.nwk, None),  # Trust Center rejoin from A's address
    ):
        frame = _nwk_command(
            radio.pan_id,
            request,
            mac_src=mac_src,
            nwk_src=nwk_src,
            claim=b.ieee,
            key_holder=key_holder,
        )
        await inject(air, frame)
    await inject(  # all B's, at a frame counter B already used
        air,
        _nwk_command(
            radio.pan_id,
            request,
            mac_src=b.nwk,
            nwk_src=b.nwk,
            claim=b.ieee,
            key_holder=a,
            source=b.ieee,
            counter=0,
        ),
    )
    await asyncio.sleep(1)
    assert not [mac for mac, _, _ in nwk_data(tap.sent[sent:]) if mac.src == radio.nwk]
    assert radio.children[b.ieee] == b.nwk
    assert (radio.address_map[a.nwk], radio.address_map[b.nwk]) == (a.ieee, b.ieee)
    assert drops(radio.stats) == {"nwk_source_mismatch": 3, "nwk_stale_counter": 1}
    await esi_send(esi, b, MESSAGING, 0x00, DISPLAY_MESSAGE, 8, encrypt=True)
    await asyncio.sleep(0.1)
    assert [(m.tsn, m.aps_encrypted) for m in box] == [(8, True)]
    assert await b.rejoin(secure=True)
    assert await b.rejoin(secure=False)


async def test_a_device_that_moved_rejoins_from_its_new_address():
    """A device that took a new short address (an address conflict, ZB 3.6.1.9) rejoins from
    it (ZB 3.6.1.4.2). The sender binding for NWK commands dropped that secured Rejoin
    Request (the Trust Center knows the device at its old address), so the device never got
    back on. A secured request whose auxiliary header names the device (its own frame
    counter checked) is taken from a new address, but, as a Trust Center rejoin in clear,
    moves the device only once it proves its link key
    (``tests/sim/test_sim_tc_rejoin.py``): any insider can secure a request naming its
    neighbour (``tests/sim/test_sim_address_takeover.py``). Its announce from the new address
    moves nothing either, at the Trust Center or in zigpy. Its first APS-encrypted frame
    proves it: the Trust Center and zigpy follow it, and the ESI's frames reach it."""
    _air, esi, (_a, b) = await han(43)
    radio = esi.radio
    got = price_packets(esi)
    box = inbox(b, MESSAGING)
    old = b.nwk
    b.nwk = t.NWK(0x5A5A)
    await b.announce()  # a conflict for the coordinator, which keeps the old address
    await asyncio.sleep(2)
    assert await b.rejoin(secure=True)
    await asyncio.sleep(1)
    assert radio.children[b.ieee] == old
    assert esi.get_device(ieee=b.ieee).nwk == old
    assert radio.rejoin_claims.at(0x5A5A) == (b.ieee,)
    await b.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)
    await asyncio.sleep(0.1)
    assert [(p.src.address, p.tx_options) for p in got if p.src is not None] == [
        (0x5A5A, t.TransmitOptions.APS_Encryption)
    ]
    assert radio.children[b.ieee] == b.nwk == 0x5A5A
    assert esi.get_device(ieee=b.ieee).nwk == 0x5A5A  # zigpy follows (handle_join)
    await asyncio.sleep(30)  # zigpy interviews b again at its new address
    await zigpy_send(esi, b.ieee, 9)
    await asyncio.sleep(0.1)
    assert [(m.tsn, m.aps_encrypted) for m in box] == [(9, True)]
    assert drops(radio.stats) == {"address_conflicts": 1}
