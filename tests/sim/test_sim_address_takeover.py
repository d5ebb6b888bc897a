"""An insider (a joined device holding the network key) claims its neighbour's EUI-64 from
its own or a new short address, by Device_annce (ZB 2.4.3.1.11), address response
(ZB 2.4.4.2.1-2) or a secured Rejoin Request (ZB 3.6.1.4.2): neither the Trust Center nor
zigpy follows it, so the ESI's frames to the victim still go to the victim's address under
the victim's link key; a device that really moved comes back once it proves its link key
(ZB 4.6.3.6)."""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t
import zigpy.zdo.types as zdo_t

from tests.interpan.tshark_json import dissect
from tests.oracles import zigbee_key_options
from tests.sim.test_sim_faults_capture import MESSAGING, PRICE, han, inbox
from tests.sim.test_sim_security import (
    Tap,
    _insider_frame,
    _nwk_command,
    drops,
    encrypted_price,
    nwk_data,
    price_packets,
    zigpy_send,
)
from tests.sim.test_sim_tc_rejoin import OUTSIDER, REJOIN_REQUEST, STRANGER, encrypted
from zse.errors import BadMic
from zse.security import aps_header_length, secure_aps, unsecure_aps, unsecure_nwk
from zse.sim import SimDevice
from zse.sim import _frames as f
from zse.sim._node import eui64_int


async def zdo_broadcast(dev: SimDevice, cluster: zdo_t.ZDOCmd, args: list[object]) -> None:
    """``dev`` broadcasts a ZDO frame (ZDO endpoint 0, any holder of the network key can)."""
    _, types = zdo_t.CLUSTERS[cluster]
    await dev.send_aps(
        dst_mode=t.AddrMode.Broadcast,
        dst_addr=0xFFFD,
        dst_ep=0,
        src_ep=0,
        cluster_id=cluster,
        profile_id=0x0000,
        payload=bytes((0x55,)) + t.serialize(args, types[: len(args)]),
    )
    await asyncio.sleep(0.5)  # broadcasts go out with a jitter: one at a time


async def test_a_forged_device_annce_does_not_hand_a_neighbours_traffic_to_the_insider(tmp_path):
    """The coordinator ignored (and counted) a Device_annce contradicting its join records
    but still passed it up to zigpy, whose ``handle_join`` then recorded the victim at the
    insider's address: the ESI sent the victim's frames there, secured with the insider's
    link key, and the insider read them. Now an announce the radio refused never reaches
    zigpy, nor does an address response (IEEE_addr_rsp, NWK_addr_rsp, which zigpy follows
    the same way) contradicting the Trust Center: zigpy keeps the victim's address, the
    ESI's frames reach the victim, and none is readable with the insider's keys (tshark,
    given only those, decrypts nothing of them; given the victim's link key, it shows them
    sent to the victim's address under that key)."""
    tap = Tap()
    air, esi, (a, b) = await han(47, capture=tap)
    radio = esi.radio
    assert a.nwk is not None
    assert b.nwk is not None
    to_a, to_b = inbox(a, MESSAGING), inbox(b, MESSAGING)
    await zdo_broadcast(a, zdo_t.ZDOCmd.Device_annce, [t.NWK(a.nwk), b.ieee, t.uint8_t(0x8E)])
    for response in (zdo_t.ZDOCmd.IEEE_addr_rsp, zdo_t.ZDOCmd.NWK_addr_rsp):
        await zdo_broadcast(a, response, [zdo_t.Status.SUCCESS, b.ieee, t.NWK(a.nwk)])
    await asyncio.sleep(30)  # time for zigpy to follow (and interview) the "moved" device
    before = len(tap.sent)
    await zigpy_send(esi, b.ieee, 3)
    await asyncio.sleep(0.1)
    assert (to_a, [(m.tsn, m.aps_encrypted) for m in to_b]) == ([], [(3, True)])
    assert esi.get_device(ieee=b.ieee).nwk == b.nwk
    assert esi.get_device(nwk=a.nwk).ieee == a.ieee
    assert (radio.address_map[a.nwk], radio.address_map[b.nwk]) == (a.ieee, b.ieee)
    assert drops(radio.stats) == {"address_conflicts": 3}
    sent = [(hdr, raw) for mac, hdr, raw in nwk_data(tap.sent[before:]) if mac.src == radio.nwk]
    assert [hdr.dst for hdr, _ in sent] == [b.nwk]
    assert a.network_key is not None
    aps = unsecure_nwk(sent[0][1], {a.network_key_seq: a.network_key}).payload
    with pytest.raises(BadMic):
        unsecure_aps(aps, a.link_keys[radio.ieee], source=eui64_int(radio.ieee))

    capture = tmp_path / "forged-annce.pcap"
    capture.write_bytes(tap.buffer.getvalue())
    victim_key = f"install-code link key {b.ieee}"
    keys = [entry.line() for entry in air.keys]
    messages = [
        p for p in dissect(capture, zigbee_key_options(keys)) if "zbee_zcl_se.msg" in str(p)
    ]
    [message] = messages
    # to the victim's address, APS-secured (data key, 0x00) with the victim's link key
    assert message["zbee_nwk.dst"] == [f"0x{b.nwk:04x}"]
    assert (message["zbee_aps.security"], message["zbee.sec.key_id"][-1]) == (["1"], "0x00")
    assert message["zbee.sec.decryption_key"] == [victim_key]
    insider = [line for line in keys if victim_key not in line]  # what a holds, and more
    blind = {p["frame.number"][0]: p for p in dissect(capture, zigbee_key_options(insider))}
    assert not [p for p in blind.values() if "zbee_zcl_se.msg" in str(p)]
    unread = blind[message["frame.number"][0]]
    assert unread["zbee_nwk.dst"] == [f"0x{b.nwk:04x}"]
    assert "zbee_sec.encrypted_payload" in unread


async def test_an_insider_secured_rejoin_as_its_neighbour_moves_nothing():
    """An insider secured a Rejoin Request with the network key, naming its neighbour in the
    NWK and auxiliary headers at a frame counter above the neighbour's, from a new address
    (its second radio, there): the Trust Center moved the neighbour's entry (and zigpy's)
    to that address at once, and the ESI's frames to the victim went to the insider. Now the
    Trust Center answers and notes the claim, as for a Trust Center rejoin in clear; the
    insider's frames, under its own link key or not, cannot prove it, and the victim keeps
    its address, its traffic and its own rejoins."""
    tap = Tap()
    air, esi, (a, b) = await han(48, capture=tap)
    radio = esi.radio
    got = price_packets(esi)
    to_b = inbox(b, MESSAGING)
    assert a.nwk is not None
    assert b.nwk is not None
    second = air.device(OUTSIDER, channel=20)  # the insider's second radio, at a new address
    second.listen()
    second.pan_id, second.nwk = radio.pan_id, STRANGER
    forged = _nwk_command(
        radio.pan_id,
        REJOIN_REQUEST,
        mac_src=STRANGER,
        nwk_src=STRANGER,
        claim=b.ieee,
        key_holder=a,
        source=b.ieee,
        counter=b.nwk_frame_counter,  # above every counter b used: not stale
    )
    sent = len(tap.sent)
    await air.transmit(air.frame(second, forged))
    await asyncio.sleep(1)
    answers = [hdr for mac, hdr, _ in nwk_data(tap.sent[sent:]) if mac.src == radio.nwk]
    assert [(h.dst, h.security, h.frame_type) for h in answers] == [
        (STRANGER, True, f.NWK_COMMAND)  # the Rejoin Response; no key, nothing moved
    ]
    assert radio.rejoin_claims.at(STRANGER) == (b.ieee,)
    assert radio.children[b.ieee] == b.nwk
    assert (radio.address_map[b.nwk], STRANGER in radio.address_map) == (b.ieee, False)
    assert esi.get_device(ieee=b.ieee).nwk == b.nwk
    # The insider's frames from there cannot prove the claim: under its own link key (the
    # claimant's key is tried: bad MIC; with its EUI-64 in the nonce: not the claimant).
    template, a_aps = await encrypted_price(a, tap)
    plain_header = bytes((a_aps[0] & ~0x20,)) + a_aps[1 : aps_header_length(a_aps)]
    for extended in (False, True):
        aps = secure_aps(
            plain_header,
            bytes((0x01, 0x70 + extended, 0x00)),
            link_key=a.link_keys[radio.ieee],
            counter=1000 + extended,
            source=int.from_bytes(bytes(a.ieee), "little"),
            extended_nonce=extended,
        )
        await air.transmit(air.frame(second, _insider_frame(template, a, aps, STRANGER)))
        await asyncio.sleep(0.1)
    assert encrypted(got) == [(a.nwk, True)]
    assert radio.children[b.ieee] == b.nwk
    assert drops(radio.stats) == {"aps_bad_mic": 1, "aps_source_mismatch": 1}
    await zigpy_send(esi, b.ieee, 4)
    await asyncio.sleep(0.1)
    assert [(m.tsn, m.aps_encrypted) for m in to_b] == [(4, True)]
    # b's next NWK frame carries the counter the insider used: stale (with a shared network
    # key the two cannot be told apart), so not acknowledged; b's APS resend, in the next
    # NWK frame, is heard, and so is b from then on.
    for _ in range(2):
        await b.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)
        await asyncio.sleep(0.1)
    assert encrypted(got) == [(a.nwk, True), (b.nwk, True), (b.nwk, True)]
    assert await b.rejoin(secure=True)
    assert radio.children[b.ieee] == b.nwk
    assert esi.get_device(ieee=b.ieee).nwk == b.nwk
    assert drops(radio.stats) == {
        "aps_bad_mic": 1,
        "aps_source_mismatch": 1,
        "nwk_stale_counter": 1,
    }
