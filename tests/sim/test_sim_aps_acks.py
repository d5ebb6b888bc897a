"""APS acknowledgements on the simulated air (ZB 2.2.9, 2.2.8.4; the ack frame ZB 2.2.5.2.2).

A unicast was "delivered" once the MAC acknowledged its one hop. Now a unicast can ask for an
APS acknowledgement (zigpy's ``TransmitOptions.ACK``; a SimDevice's ZCL unicasts by default):
the receiver answers with an APS ack frame (secured as the frame was), a duplicate too, and
the sender resends the same APS frame after apsAckWaitDuration (1.6 s) up to
apscMaxFrameRetries (3) times, then fails with no APS acknowledgement. An ack counts only
from the destination, with the frame's APS counter, cluster, profile and endpoints, secured
as the frame was: anything else is dropped and counted. tshark reads every ack frame.

The spec's figures are written out here, not imported, so that the tests hold the code to
them.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest
import zigpy.types as t
import zigpy.zdo.types as zdo_t
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from zigpy.exceptions import DeliveryError

from tests.interpan.tshark_json import dissect
from tests.oracles import zigbee_key_options
from tests.sim.test_sim_faults_capture import (
    DISPLAY_MESSAGE,
    MESSAGING,
    PRICE,
    SE_PROFILE,
    han,
    inbox,
)
from tests.sim.test_sim_security import Tap, drops
from zse.errors import InvalidFrame
from zse.security import (
    AuxHeader,
    KeyId,
    aps_header_length,
    secure_aps,
    secure_nwk,
    unsecure_nwk,
)
from zse.sim import Air, SimControllerApplication, SimDevice
from zse.sim import _frames as f

#: apsAckWaitDuration: 0.05 x (2 x nwkcMaxDepth 15) + 0.1 s security delay (ZB Table 2.24)
ACK_WAIT = 1.6
#: apscMaxFrameRetries (ZB Table 2.23): the frame and three resends
ATTEMPTS = 1 + 3
ESI_EP, DEVICE_EP = 9, 1


async def esi_acked(
    esi: SimControllerApplication,
    nwk: int,
    tsn: int,
    *,
    encrypt: bool = False,
    expect_reply: bool = False,
) -> None:
    """The ESI's Display Message to ``nwk`` through zigpy's ``request``: without a reply
    expected, zigpy puts ``TransmitOptions.ACK`` in the packet (as for bellows)."""
    device = esi.get_device(nwk=t.NWK(nwk))
    await esi.request(
        device,
        SE_PROFILE,
        MESSAGING,
        ESI_EP,
        DEVICE_EP,
        tsn,
        bytes((0x19, tsn, 0x00)) + DISPLAY_MESSAGE,
        expect_reply=expect_reply,
        aps_encryption=encrypt,
    )


def aps_frames(tap: Tap, key: bytes, since: int) -> list[tuple[f.MacHeader, f.NwkHeader, bytes]]:
    """Every NWK-secured data frame on the air from ``tap.sent[since]`` on, its NWK layer
    opened with ``key``: MAC header, NWK header, APS frame (as sent: APS-secured or not)."""
    out = []
    for data in tap.sent[since:]:
        mac, nwk_frame = f.decode_mac(data)
        if mac.frame_type != f.MAC_DATA or not nwk_frame[:1] or nwk_frame[0] & 3:
            continue
        nwk, _ = f.decode_nwk(nwk_frame)
        if nwk.security:
            out.append((mac, nwk, unsecure_nwk(nwk_frame, {0: key}).payload))
    return out


def aps_mic_verifies(aps: bytes, link_key: bytes, sender: t.EUI64) -> bool:
    """The APS MIC checked by hand (ZB 4.4.1.2, 4.5.2.2; not with zse.security): CCM* with
    the nonce (sender's EUI-64, frame counter, security control with level 5) and ``a`` (APS
    header, auxiliary header with level 5) laid out here, ``cryptography``'s AES-CCM."""
    length = aps_header_length(aps)
    control = (aps[length] & ~0x07) | 0x05
    aux_length = 5 + 8 * bool(aps[length] & 0x20)
    counter = aps[length + 1 : length + 5]
    nonce = bytes(sender)[:8] + counter + bytes((control,))
    a = aps[:length] + bytes((control,)) + aps[length + 1 : length + aux_length]
    try:
        AESCCM(link_key, tag_length=4).decrypt(nonce, aps[length + aux_length :], a)
    except InvalidTag:
        return False
    return True


def forged(air: Air, insider: SimDevice, nwk_src: int, aps: bytes, *, dst: int = 0x0000) -> bytes:
    """A MAC frame from ``nwk_src`` carrying ``aps`` in a NWK frame the insider secures with
    the network key at its next frame counter: what any joined device can put on the air."""
    assert insider.network_key is not None
    assert insider.pan_id is not None
    counter = insider.nwk_frame_counter
    insider.nwk_frame_counter += 1
    nwk = secure_nwk(
        struct.pack("<HHHBB", 0x0008, dst, nwk_src, 30, counter & 0xFF),
        aps,
        key=insider.network_key,
        key_seq=insider.network_key_seq,
        counter=counter,
        source=int.from_bytes(bytes(insider.ieee), "little"),
    )
    mac = struct.pack("<HBHHH", 0x8861, counter & 0xFF, insider.pan_id, dst, nwk_src)
    return mac + nwk


def ack_bytes(dst_ep: int, cluster: int, profile: int, src_ep: int, counter: int) -> bytes:
    """An APS ack of a data frame, unsecured, laid out by hand (ZB 2.2.5.2.2, Figure 2.11)."""
    return struct.pack("<BBHHBB", 0x02, dst_ep, cluster, profile, src_ep, counter)


def test_the_ack_frame_format() -> None:
    """An ack echoes the data frame's counter, cluster and profile, its endpoints swapped
    (ZB 2.2.5.2.2); secured as the data frame was; a command's ack carries the counter only
    (ack format bit); a truncated one is an InvalidFrame, not a crash."""
    data = f.ApsHeader(f.APS_DATA, 0, 0x44, 1, None, MESSAGING, SE_PROFILE, 9, ack_request=True)
    ack = f.aps_ack(data)
    assert f.encode_aps(ack, b"") == ack_bytes(9, MESSAGING, SE_PROFILE, 1, 0x44)
    assert f.decode_aps(ack_bytes(9, MESSAGING, SE_PROFILE, 1, 0x44)) == (ack, b"")
    secured = f.aps_ack(f.ApsHeader(f.APS_DATA, 0, 7, 1, None, PRICE, SE_PROFILE, 9, True, True))
    assert f.encode_aps(secured, b"")[0] == 0x22
    command_ack, rest = f.decode_aps(bytes((0x12, 0x99)))
    assert (command_ack.frame_type, command_ack.command_ack, command_ack.counter) == (2, True, 0x99)
    assert rest == b""
    assert f.encode_aps(command_ack, b"") == bytes((0x12, 0x99))
    for short in range(1, 8):
        with pytest.raises(InvalidFrame, match="truncated"):
            f.decode_aps(ack_bytes(9, MESSAGING, SE_PROFILE, 1, 0x44)[:short])


async def test_an_asked_unicast_is_answered_with_an_aps_ack_tshark_reads(tmp_path: Path) -> None:
    """zigpy's request expecting no reply asks (ACK option), in clear and APS-encrypted; the
    device's ZCL unicast asks by default: each is answered by one APS ack (type 2) from its
    destination with its counter, cluster and profile, endpoints swapped, NWK-secured, and
    APS-secured with the link key when the frame was. tshark reads them all, none malformed;
    it does not check the MIC of a frame without payload, so the secured acks' MIC is checked
    here with AES-CCM laid out by hand, and that check passes the data frames tshark
    decrypts and fails a broken MIC."""
    tap = Tap()
    air, esi, (dev, _) = await han(61, capture=tap)
    box = inbox(dev, MESSAGING)
    start = len(tap.sent)
    await esi_acked(esi, dev.nwk or 0, 1)
    await esi_acked(esi, dev.nwk or 0, 2, encrypt=True)
    await dev.endpoints[1].send(0x0000, ESI_EP, PRICE, 0x00, b"", encrypt=True)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [1, 2]
    assert drops(dev.stats) == drops(esi.radio.stats) == {}
    assert esi.radio.network_key is not None
    frames = aps_frames(tap, esi.radio.network_key, start)
    exchange = [(n.src, n.dst, f.decode_aps(aps)[0], aps) for _, n, aps in frames]
    data = [(s, d, h, aps) for s, d, h, aps in exchange if h.frame_type == f.APS_DATA]
    acks = [(s, d, h, aps) for s, d, h, aps in exchange if h.frame_type == 2]
    assert len(data) == len(acks) == 3
    for (src, dst, frame, frame_aps), (ack_src, ack_dst, ack, ack_aps) in zip(
        data, acks, strict=True
    ):
        assert frame.ack_request
        assert (ack_src, ack_dst) == (dst, src)
        assert (ack.counter, ack.cluster, ack.profile) == (frame.counter, frame.cluster, 0x0109)
        assert (ack.dst_ep, ack.src_ep) == (frame.src_ep, frame.dst_ep)
        assert ack.security == frame.security
        if frame.security:
            sender, receiver = (dev, esi.radio) if src == dev.nwk else (esi.radio, dev)
            link_key = dev.link_keys[esi.radio.ieee]
            assert aps_mic_verifies(frame_aps, link_key, sender.ieee)
            assert aps_mic_verifies(ack_aps, link_key, receiver.ieee)
            broken = ack_aps[:-1] + bytes((ack_aps[-1] ^ 1,))
            assert not aps_mic_verifies(broken, link_key, receiver.ieee)
    capture = tmp_path / "aps-acks.pcap"
    capture.write_bytes(tap.buffer.getvalue())
    keys = [entry.line() for entry in air.keys]
    packets = dissect(capture, zigbee_key_options(keys))  # fails on any malformed packet
    shown = [p for p in packets if p.get("zbee_aps.type") == ["0x02"]]
    assert len(shown) == 3
    asked = [p for p in packets if p.get("zbee_aps.ack_req") == ["1"]]
    for p, ack in zip(asked[-3:], shown, strict=True):
        assert ack["zbee_aps.counter"] == p["zbee_aps.counter"]
        assert (ack["zbee_aps.dst"], ack["zbee_aps.src"]) == (p["zbee_aps.src"], p["zbee_aps.dst"])
        assert ack["zbee_aps.cluster"] == p["zbee_aps.cluster"]
        assert ack["zbee_nwk.src"] == p["zbee_nwk.dst"]
        assert ack["zbee_nwk.security"] == ["1"]
        assert ack["zbee_aps.security"] == p["zbee_aps.security"]
        assert "zbee.sec.decryption_key" in p or p["zbee_aps.security"] == ["0"]


@pytest.mark.parametrize("encrypt", [False, True], ids=["clear", "aps-encrypted"])
async def test_a_lost_aps_ack_brings_a_resend_acked_again_and_delivered_once(
    encrypt: bool,
) -> None:
    """The device's ack is lost (its link to the ESI drops every frame for a second): the
    ESI resends after 1.6 s, the same APS counter in a new NWK frame (and, APS-encrypted,
    under the link key's next frame counter); the device rejects the duplicate but acks it
    again; the send succeeds; the application saw the frame once."""
    tap = Tap()
    air, esi, (dev, _) = await han(62 + encrypt, capture=tap)
    box = inbox(dev, MESSAGING)
    loop = asyncio.get_running_loop()
    start, sent = loop.time(), len(tap.sent)
    air.set_link_faults(dev, esi.radio, loss=1.0, both_ways=False)
    send = loop.create_task(esi_acked(esi, dev.nwk or 0, 7, encrypt=encrypt))
    await asyncio.sleep(1.0)
    assert [m.tsn for m in box] == [7]  # it arrived; its ack did not
    assert not send.done()
    air.set_link_faults(dev, esi.radio, both_ways=False)
    await send
    assert loop.time() - start == pytest.approx(ACK_WAIT)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [7]
    assert drops(dev.stats) == {"aps_duplicates": 1}
    assert drops(esi.radio.stats) == {}
    assert esi.radio.network_key is not None
    frames = aps_frames(tap, esi.radio.network_key, sent)
    from_esi = [(n, aps) for m, n, aps in frames if m.src == 0x0000]
    from_dev = [f.decode_aps(aps)[0] for m, n, aps in frames if m.src == dev.nwk]
    assert len(from_esi) == 2  # the frame and one resend (each MAC-acknowledged at once)
    (first, first_aps), (second, second_aps) = from_esi
    assert f.decode_aps(first_aps)[0] == f.decode_aps(second_aps)[0]  # the same APS frame
    assert first.seq != second.seq
    if encrypt:  # secured again with the next APS frame counter
        counters = [AuxHeader.decode(a[aps_header_length(a) :])[0].counter for _, a in from_esi]
        assert counters[1] == counters[0] + 1
    # the ack, 4 MAC attempts lost, then the duplicate's ack
    acks = [h for h in from_dev if h.frame_type == 2]
    assert len(acks) == 1 + ATTEMPTS
    assert {h.counter for h in acks} == {f.decode_aps(first_aps)[0].counter}


async def test_acks_lost_at_random_are_recovered_by_resends() -> None:
    """60 % of the device's frames to the ESI lost (seeded): every acknowledged send
    succeeds, some after a resend, and the device's application takes each frame once."""
    air, esi, (dev, _) = await han(64)
    box = inbox(dev, MESSAGING)
    air.set_link_faults(dev, esi.radio, loss=0.6, both_ways=False)
    for tsn in range(20):
        await esi_acked(esi, dev.nwk or 0, tsn)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == list(range(20))
    assert dev.stats.aps_duplicates > 0  # Air(seed=64): some acks lost, their frames resent
    assert esi.radio.stats.aps_acks_unmatched == 0


async def test_a_destination_gone_fails_after_the_resends_with_the_aps_text() -> None:
    """A device powered off, and one that left: the send fails after the frame and three
    resends, 1.6 s apart, with no APS acknowledgement (zigpy's DeliveryError, APS_NO_ACK),
    each attempt on the air with its MAC retries."""
    air, esi, (off, gone) = await han(65)
    loop = asyncio.get_running_loop()
    air.silence(off)
    address = gone.nwk or 0
    await gone.leave()
    await asyncio.sleep(1)
    for nwk in (off.nwk or 0, address):
        start, frames = loop.time(), air.stats.transmitted
        with pytest.raises(DeliveryError) as failed:
            await esi_acked(esi, nwk, 9)
        assert str(failed.value) == f"no APS acknowledgement from 0x{nwk:04X} after 4 attempts"
        assert failed.value.status == t.APSStatus.APS_NO_ACK
        assert loop.time() - start == pytest.approx(ATTEMPTS * ACK_WAIT)
        assert air.stats.transmitted - frames == ATTEMPTS * (1 + air.mac_retries)


async def test_a_forged_or_mismatched_ack_is_dropped_and_counted() -> None:
    """While the ESI awaits the ack of a silent device ``a``, an insider (``b``, holding the
    network key) sends acks: from its own address, with another counter, cluster or
    endpoints, an APS command's ack; for an APS-encrypted frame, one in clear and one under
    its own link key. None ends the wait (each counted: unmatched, or a bad MIC) and the
    sends fail. The insider's perfect forgery of a frame not APS-secured is taken: only APS
    security proves who acknowledged."""
    tap = Tap()
    air, esi, (a, b) = await han(66, capture=tap)
    radio = esi.radio
    assert radio.network_key is not None
    air.silence(a)
    a_nwk, b_nwk = a.nwk or 0, b.nwk or 0

    async def awaiting(encrypt: bool) -> tuple[asyncio.Task[None], f.ApsHeader]:
        sent = len(tap.sent)
        task = asyncio.get_running_loop().create_task(esi_acked(esi, a_nwk, 3, encrypt=encrypt))
        await asyncio.sleep(0.1)
        _, _, aps = aps_frames(tap, radio.network_key or b"", sent)[0]
        return task, f.decode_aps(aps)[0]

    send, data = await awaiting(False)
    n = data.counter
    mismatched = [
        (b_nwk, ack_bytes(ESI_EP, MESSAGING, SE_PROFILE, DEVICE_EP, n)),  # not from a
        (a_nwk, ack_bytes(ESI_EP, MESSAGING, SE_PROFILE, DEVICE_EP, (n + 1) & 0xFF)),
        (a_nwk, ack_bytes(ESI_EP, PRICE, SE_PROFILE, DEVICE_EP, n)),
        (a_nwk, ack_bytes(DEVICE_EP, MESSAGING, SE_PROFILE, ESI_EP, n)),  # not swapped
        (a_nwk, bytes((0x12, n))),  # an APS command's ack
    ]
    for src, aps in mismatched:
        await air.transmit(air.frame(b, forged(air, b, src, aps)))
        await asyncio.sleep(0.1)
        assert not send.done()
    assert drops(radio.stats) == {"aps_acks_unmatched": len(mismatched)}
    with pytest.raises(DeliveryError, match="no APS acknowledgement"):
        await send

    send, data = await awaiting(True)
    n = data.counter
    clear = ack_bytes(ESI_EP, MESSAGING, SE_PROFILE, DEVICE_EP, n)
    under_b = secure_aps(  # b's own link key with the Trust Center, not a's
        clear,
        b"",
        link_key=b.link_keys[radio.ieee],
        counter=5000,
        source=int.from_bytes(bytes(b.ieee), "little"),
        key_id=KeyId.DATA,
        extended_nonce=False,
    )
    for aps in (clear, under_b):
        await air.transmit(air.frame(b, forged(air, b, a_nwk, aps)))
        await asyncio.sleep(0.1)
        assert not send.done()
    assert drops(radio.stats) == {"aps_acks_unmatched": len(mismatched) + 1, "aps_bad_mic": 1}
    with pytest.raises(DeliveryError, match="no APS acknowledgement"):
        await send

    send, data = await awaiting(False)
    perfect = ack_bytes(ESI_EP, MESSAGING, SE_PROFILE, DEVICE_EP, data.counter)
    await air.transmit(air.frame(b, forged(air, b, a_nwk, perfect)))
    await send  # the network key alone vouches for it


async def test_broadcasts_groups_zdo_and_unasked_sends_do_not_ask() -> None:
    """Only unicasts asked for carry the ack request bit: not zigpy's request expecting a
    reply, a group or broadcast frame (even with the ACK option), a ZDO request or answer, nor
    a device's ZCL unicast with ``aps_ack`` off; its ZCL unicast with it on (the default) does."""
    tap = Tap()
    _air, esi, (dev, _) = await han(67, capture=tap)
    radio = esi.radio
    assert radio.network_key is not None
    inbox(dev, MESSAGING)  # handled: no Default Response
    dev.aps_ack = False
    start = len(tap.sent)
    await esi_acked(esi, dev.nwk or 0, 1, expect_reply=True)
    for mode, address in ((t.AddrMode.Group, t.Group(0x1234)), (t.AddrMode.Broadcast, 0xFFFD)):
        await esi.send_packet(
            t.ZigbeePacket(
                src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=0x0000),
                src_ep=ESI_EP,
                dst=t.AddrModeAddress(addr_mode=mode, address=address),
                dst_ep=DEVICE_EP,
                profile_id=SE_PROFILE,
                cluster_id=MESSAGING,
                data=t.SerializableBytes(bytes((0x19, 2, 0x00)) + DISPLAY_MESSAGE),
                tx_options=t.TransmitOptions.ACK,
            )
        )
    await dev.zdo_request(0x0000, zdo_t.ZDOCmd.Node_Desc_req, t.NWK(0x0000))
    ep = dev.endpoints[1]
    await ep.send(0xFFFD, ESI_EP, PRICE, 0x00, b"", dst_mode=t.AddrMode.Broadcast)
    await ep.send(0x0000, ESI_EP, PRICE, 0x00, b"")
    await asyncio.sleep(1)
    frames = aps_frames(tap, radio.network_key, start)
    headers = [f.decode_aps(aps)[0] for _, _, aps in frames]
    assert [h for h in headers if h.ack_request or h.frame_type == 2] == []
    dev.aps_ack = True
    start = len(tap.sent)
    await ep.send(0x0000, ESI_EP, PRICE, 0x00, b"")
    await asyncio.sleep(0.1)
    last = [f.decode_aps(aps)[0] for _, _, aps in aps_frames(tap, radio.network_key, start)]
    assert [(h.frame_type, h.ack_request) for h in last] == [(f.APS_DATA, True), (2, False)]
