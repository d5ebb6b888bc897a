"""A Trust Center rejoin from a new short address (ZB 3.6.1.4.2, 4.6.3.6; SE 5.4): a device
that both moved (an address conflict, ZB 3.6.1.9) and missed a network key rotation gets the
current key and comes back once it proves its link key; anyone else claiming a device's
EUI-64 from another address gets a key it cannot decrypt, and the Trust Center's records,
the victim's traffic and zigpy's view of it stay as they were. Claims of one address compete
(the device's link key picks its own, whoever claimed first) and stay bounded."""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t

from tests.interpan.tshark_json import dissect
from tests.oracles import zigbee_key_options
from tests.sim.test_sim_faults_capture import (
    DISPLAY_MESSAGE,
    MESSAGING,
    PRICE,
    esi_send,
    han,
    inbox,
)
from tests.sim.test_sim_security import (
    Tap,
    _insider_frame,
    _nwk_command,
    drops,
    encrypted_price,
    inject,
    nwk_data,
    price_packets,
    zigpy_send,
)
from zse.errors import BadMic
from zse.security import (
    AuxHeader,
    KeyId,
    aps_header_length,
    nwk_header_length,
    secure_aps,
    unsecure_aps,
)
from zse.sim import Air, DeliveryError, SimControllerApplication, SimDevice
from zse.sim import _frames as f
from zse.sim._node import APS_MAX_FRAME_RETRIES
from zse.sim._rejoin import REJOIN_CLAIMS_PER_DEVICE, REJOIN_PROOF_WINDOW, RejoinClaims

MOVED = 0x5A5A  # b's new short address
STRANGER = 0x1234  # an address no device has
OUTSIDER = "00:0d:6f:00:0c:00:00:ef"
REJOIN_REQUEST = bytes((f.NWK_CMD_REJOIN_REQUEST, 0x8E))


def tc_rejoin_request(pan_id: int | None, address: int, claim: t.EUI64) -> bytes:
    """A Trust Center rejoin's Rejoin Request (unsecured) from ``address`` claiming ``claim``."""
    assert pan_id is not None
    return _nwk_command(
        pan_id, REJOIN_REQUEST, mac_src=address, nwk_src=address, claim=claim, key_holder=None
    )


def encrypted(packets: list[t.ZigbeePacket]) -> list[tuple[int, bool]]:
    """(NWK source, APS encrypted) of the packets the radio handed zigpy."""
    return [
        (int(p.src.address), bool(p.tx_options & t.TransmitOptions.APS_Encryption))
        for p in packets
        if p.src is not None and isinstance(p.src.address, t.NWK)
    ]


async def moved_and_missed_the_key(
    seed: int, tap: Tap
) -> tuple[Air, SimControllerApplication, SimDevice, SimDevice, int, bytes]:
    """A HAN of two devices where b slept through a key rotation and took a new address:
    (air, esi, a, b, b's old address, the new network key)."""
    air, esi, (a, b) = await han(seed, capture=tap)
    assert b.nwk is not None
    old = b.nwk
    air.silence(b)
    new_key = bytes(range(32, 48))
    await esi.rotate_network_key(new_key)
    air.restore(b)
    b.nwk = t.NWK(MOVED)
    return air, esi, a, b, old, new_key


async def test_a_moved_device_that_missed_the_key_comes_back_by_trust_center_rejoin(tmp_path):
    """b holds the old network key only (its secure rejoin goes unheard) and a new address:
    the sender binding dropped its Trust Center rejoin (the Trust Center knows b elsewhere),
    so b could never get back. Now it gets the current key in a Transport Key under its link
    key; the Trust Center moves it (and tells zigpy) only when b's first APS-encrypted frame
    arrives from the new address, and b's reports and the ESI's frames flow again. A forged
    claim of another device from b's new address meanwhile does not displace b's."""
    tap = Tap()
    air, esi, a, b, old, new_key = await moved_and_missed_the_key(44, tap)
    radio = esi.radio
    got = price_packets(esi)
    box = inbox(b, MESSAGING)
    assert not await b.rejoin(secure=True)  # the old key: no answer
    assert await b.rejoin(secure=False)
    assert (b.network_key, b.network_key_seq) == (new_key, 1)
    # The unsecured request proved nothing: nothing has moved yet.
    assert radio.children[b.ieee] == old
    assert radio.address_map[old] == b.ieee
    assert esi.get_device(ieee=b.ieee).nwk == old
    assert radio.rejoin_claims.at(MOVED) == (b.ieee,)
    # An attacker's rejoin claiming a from b's new address leaves b's claim in place: the
    # two compete, and the proof decides.
    await inject(air, tc_rejoin_request(radio.pan_id, MOVED, a.ieee))
    await asyncio.sleep(1)
    assert radio.rejoin_claims.at(MOVED) == (b.ieee, a.ieee)
    # b's first frame (Get Current Price, APS-encrypted with its link key) proves it.
    await b.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)
    await asyncio.sleep(0.1)
    assert encrypted(got) == [(MOVED, True)]
    assert radio.children[b.ieee] == MOVED
    assert (radio.address_map.get(old), radio.address_map[MOVED]) == (None, b.ieee)
    assert esi.get_device(nwk=t.NWK(MOVED)).ieee == b.ieee  # zigpy follows (handle_join)
    assert len(radio.rejoin_claims) == 0  # a's claim of that address is void too
    assert radio.children[a.ieee] == a.nwk
    await asyncio.sleep(30)  # zigpy interviews b again at its new address
    await b.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)
    await esi_send(esi, b, MESSAGING, 0x00, DISPLAY_MESSAGE, 5, encrypt=True)
    await asyncio.sleep(0.1)
    assert encrypted(got) == [(MOVED, True), (MOVED, True)]
    assert [(m.tsn, m.aps_encrypted) for m in box] == [(5, True)]
    # the old-key secure rejoin, unheard; nothing else dropped at the Trust Center
    assert drops(radio.stats) == {"nwk_unknown_key": 1}

    capture = tmp_path / "moved-rejoin.pcap"
    capture.write_bytes(tap.buffer.getvalue())
    keys = list(air.keys)
    packets = dissect(capture, zigbee_key_options(entry.line() for entry in keys))
    moved = [
        p
        for p in packets
        if {f"0x{MOVED:04x}"} & set(p.get("zbee_nwk.src", []) + p.get("zbee_nwk.dst", []))
    ]
    commands = [
        (p["zbee_nwk.cmd.id"][0], p.get("zbee_nwk.cmd.rejoin_status", [None])[0])
        for p in moved
        if "zbee_nwk.cmd.id" in p
    ]
    # b's secure request (unheard), its Trust Center rejoin request and the response to it,
    # the attacker's request from b's address and the response to it
    assert commands == [
        ("0x06", None),
        ("0x06", None),
        ("0x07", "0x00"),
        ("0x06", None),
        ("0x07", "0x00"),
    ]
    transports = [p for p in moved if "zbee_aps.cmd.key" in p]
    # b's, and the one the attacker's claim of a drew, under a's key
    assert [p["zbee.sec.decryption_key"] for p in transports] == [
        [f"install-code link key {b.ieee}"],
        [f"install-code link key {a.ieee}"],
    ]
    ours = transports[0]
    assert ours["zbee_aps.cmd.key"] == [":".join(f"{x:02x}" for x in new_key)]
    # NWK-unsecured, APS-secured with the key-transport key (0x02) of b's link key
    assert (ours["zbee_nwk.security"], ours["zbee_aps.security"]) == (["0"], ["1"])
    assert ours["zbee.sec.key_id"] == ["0x02"]
    # Without b's link key tshark shows the Transport Key encrypted.
    network_keys = [entry for entry in keys if "network key" in entry.line()]
    blind = dissect(capture, zigbee_key_options(entry.line() for entry in network_keys))
    assert not any("zbee_aps.cmd.key" in p for p in blind)
    clear_to_moved = [  # NWK-unsecured data to b's new address: the two Transport Keys
        p
        for p in blind
        if f"0x{MOVED:04x}" in p.get("zbee_nwk.dst", [])
        and p.get("zbee_nwk.security") == ["0"]
        and "zbee_nwk.cmd.id" not in p
    ]
    assert len(clear_to_moved) == 2
    assert all("zbee_sec.encrypted_payload" in p for p in clear_to_moved)


async def test_a_forged_trust_center_rejoin_gets_nothing_usable():
    """An outsider sends an unsecured Rejoin Request claiming b's EUI-64 from an address no
    device has. The sender binding dropped it; now the Trust Center answers as it answers
    any Trust Center rejoin, but the network key goes APS-secured with b's link key, which
    neither the outsider nor the insider a holds; b keeps its entry, its link key and its
    address in the Trust Center and in zigpy, and still gets the ESI's frames. a's frames
    from that address cannot complete the claim: secured with its own link key, or b's own
    frame replayed."""
    tap = Tap()
    air, esi, (a, b) = await han(45, capture=tap)
    radio = esi.radio
    box = inbox(b, MESSAGING)
    got = price_packets(esi)
    assert b.nwk is not None
    assert a.nwk is not None
    _, b_aps = await encrypted_price(b, tap)  # b's own frame, as the insider a reads it
    sent = len(tap.sent)
    # the attacker holds no key and has taken an address no device has (it acknowledges)
    attacker = air.device(OUTSIDER, channel=20)
    attacker.listen()
    attacker.pan_id, attacker.nwk = radio.pan_id, STRANGER
    await air.transmit(air.frame(attacker, tc_rejoin_request(radio.pan_id, STRANGER, b.ieee)))
    await asyncio.sleep(1)
    assert attacker.network_key is None
    assert drops(attacker.stats) == {"aps_unknown_key": 1}  # the Transport Key: unreadable
    answers = [(hdr, raw) for mac, hdr, raw in nwk_data(tap.sent[sent:]) if mac.src == radio.nwk]
    assert [(hdr.dst, hdr.security, hdr.frame_type) for hdr, _ in answers] == [
        (STRANGER, False, f.NWK_COMMAND),  # Rejoin Response
        (STRANGER, False, f.NWK_DATA),  # Transport Key
    ]
    transport = answers[1][1]
    aps = transport[nwk_header_length(transport) :]
    aux, _ = AuxHeader.decode(aps[aps_header_length(aps) :])
    assert aux.key_id == KeyId.KEY_TRANSPORT
    assert radio.network_key is not None
    assert radio.network_key not in transport
    for attempt in (a.link_keys[radio.ieee], a.network_key):  # what the insider holds
        assert attempt is not None
        with pytest.raises(BadMic):
            unsecure_aps(aps, attempt)
    opened = unsecure_aps(aps, radio.link_keys[b.ieee])  # only b's key opens it
    assert radio.network_key in opened.payload
    # The Trust Center forgot nothing and moved nothing; zigpy neither.
    assert radio.children[b.ieee] == b.nwk
    assert b.ieee in radio.link_keys
    assert radio.address_map[b.nwk] == b.ieee
    assert STRANGER not in radio.address_map
    assert esi.get_device(ieee=b.ieee).nwk == b.nwk
    # a tries to complete the claim from that address: a frame secured with its own link
    # key, without the extended nonce (b's key is tried: bad MIC) and with it (a's key
    # opens it, but a is not the claimant), then b's earlier frame replayed (stale).
    template, a_aps = await encrypted_price(a, tap)
    plain_header = bytes((a_aps[0] & ~0x20,)) + a_aps[1 : aps_header_length(a_aps)]
    forgeries = [
        secure_aps(
            plain_header,
            bytes((0x01, 0x70 + n, 0x00)),
            link_key=a.link_keys[radio.ieee],
            counter=1000 + n,
            source=int.from_bytes(bytes(a.ieee), "little"),
            extended_nonce=bool(n),
        )
        for n in range(2)
    ]
    for forged in (*forgeries, b_aps):
        await inject(air, _insider_frame(template, a, forged, STRANGER, src_ieee=None))
    assert encrypted(got) == [(b.nwk, True), (a.nwk, True)]
    assert radio.children[b.ieee] == b.nwk
    assert drops(radio.stats) == {
        "aps_bad_mic": 1,
        "aps_source_mismatch": 1,
        "aps_stale_counter": 1,
    }
    await esi_send(esi, b, MESSAGING, 0x00, DISPLAY_MESSAGE, 6, encrypt=True)
    await asyncio.sleep(0.1)
    assert [(m.tsn, m.aps_encrypted) for m in box] == [(6, True)]
    assert await b.rejoin(secure=True)
    assert await b.rejoin(secure=False)
    assert radio.children[b.ieee] == b.nwk


async def test_an_unproven_trust_center_rejoin_lapses():
    """The claim waits :data:`REJOIN_PROOF_WINDOW` for the device's proof: after that a
    frame from the new address under its link key proves nothing (no key is tried for an
    address nobody has) and the device stays where it was; a new Trust Center rejoin, then
    a frame, bring it back."""
    tap = Tap()
    _air, esi, _a, b, old, _ = await moved_and_missed_the_key(46, tap)
    radio = esi.radio
    got = price_packets(esi)
    assert await b.rejoin(secure=False)
    await asyncio.sleep(REJOIN_PROOF_WINDOW)
    with pytest.raises(DeliveryError, match="no APS acknowledgement"):  # unread, unacknowledged
        await b.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)
    await asyncio.sleep(0.1)
    assert got == []
    assert radio.children[b.ieee] == old
    assert drops(radio.stats) == {"aps_unknown_key": 1 + APS_MAX_FRAME_RETRIES}
    assert await b.rejoin(secure=False)
    await b.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)
    await asyncio.sleep(0.1)
    assert encrypted(got) == [(MOVED, True)]
    assert radio.children[b.ieee] == MOVED


async def claim_from(second: SimDevice, address: int, claim: t.EUI64) -> None:
    """The insider's second radio takes ``address`` (so it acknowledges the Trust Center's
    answers there) and sends a Trust Center rejoin claiming ``claim`` from it."""
    assert second.pan_id is not None
    second.nwk = t.NWK(address)
    await second.air.transmit(
        second.air.frame(second, tc_rejoin_request(second.pan_id, address, claim))
    )
    await asyncio.sleep(1)


async def move_and_prove(
    air: Air, second: SimDevice, dev: SimDevice, got: list[t.ZigbeePacket]
) -> None:
    """The insider's second radio goes; ``dev`` takes :data:`MOVED` (an address conflict moved
    it), rejoins through the Trust Center and sends Get Current Price APS-encrypted, which
    the radio hands zigpy from there."""
    air.silence(second)
    dev.nwk = t.NWK(MOVED)
    assert await dev.rejoin(secure=False)
    await dev.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)
    await asyncio.sleep(0.1)
    assert encrypted(got) == [(MOVED, True)]


def second_radio(air: Air, esi: SimControllerApplication) -> SimDevice:
    """The insider's second radio on the HAN's channel (it holds no key; it need not)."""
    second = air.device(OUTSIDER, channel=20)
    second.listen()
    second.pan_id = esi.radio.pan_id
    return second


@pytest.mark.parametrize("claims", ["insider", "victim", "insider, victim", "victim, insider"])
async def test_an_insider_claiming_the_new_address_first_does_not_hold_the_device_off(claims):
    """The first claim of an address held for :data:`REJOIN_PROOF_WINDOW`: an insider that
    claimed b's next address first, as itself, kept b's own claim out, and b's frames from
    there were tried with the insider's link key (bad MIC), so b was off the network for
    600 s. Now the claims of an address compete, whoever came first (the insider as itself,
    as b, or both): b's rejoin and first APS-encrypted frame move it at once, its link key
    picking its claim, and every other claim of that address is dropped. Meanwhile b's own
    earlier frame replayed from there is a replay (a stale counter under b's key), whichever
    claimant's key is tried first."""
    tap = Tap()
    air, esi, (a, b) = await han(49, capture=tap)
    radio = esi.radio
    box = inbox(b, MESSAGING)
    assert a.nwk is not None
    old = b.nwk
    template, b_aps = await encrypted_price(b, tap)  # b's frame, as the insider reads it
    got = price_packets(esi)
    second = second_radio(air, esi)
    claimed = [{"insider": a, "victim": b}[who].ieee for who in claims.split(", ")]
    for ieee in claimed:
        await claim_from(second, MOVED, ieee)
    assert radio.rejoin_claims.at(MOVED) == tuple(claimed)
    await inject(air, _insider_frame(template, a, b_aps, MOVED, src_ieee=None))
    replay = "aps_stale_counter" if b.ieee in claimed else "aps_bad_mic"
    assert drops(radio.stats) == {replay: 1}
    assert radio.children[b.ieee] == old
    await move_and_prove(air, second, b, got)
    assert radio.children[b.ieee] == MOVED
    assert (radio.address_map.get(old), radio.address_map[MOVED]) == (None, b.ieee)
    assert esi.get_device(ieee=b.ieee).nwk == MOVED
    assert len(radio.rejoin_claims) == 0
    assert radio.children[a.ieee] == a.nwk
    assert drops(radio.stats) == {replay: 1}  # the insider's key tried on b's frame: no drop
    await asyncio.sleep(30)  # zigpy interviews b again at its new address
    await zigpy_send(esi, b.ieee, 7)
    await asyncio.sleep(0.1)
    assert [(m.tsn, m.aps_encrypted) for m in box] == [(7, True)]


async def test_a_flood_of_rejoin_claims_stays_bounded():
    """Every claim was kept until it lapsed, one per address: an insider claiming from
    address after address grew the Trust Center's records by one each, for 600 s, up to
    every short address. Now a device is claimed at :data:`REJOIN_CLAIMS_PER_DEVICE`
    addresses at most, its oldest claim dropped, and only a device the Trust Center holds a
    link key for is claimed at all (an outsider's EUI-64 is refused and nothing kept): at
    most that many claims per device. b's real claim, after the flood, moves it at once; the
    lapsed claims go with the next claim."""
    air, esi, (a, b) = await han(50)
    radio = esi.radio
    got = price_packets(esi)
    second = second_radio(air, esi)
    flooded = range(0x6000, 0x6000 + 3 * REJOIN_CLAIMS_PER_DEVICE)
    for address in flooded:
        for ieee in (a.ieee, b.ieee, t.EUI64.convert(OUTSIDER)):
            await claim_from(second, address, ieee)
    assert len(radio.rejoin_claims) == 2 * REJOIN_CLAIMS_PER_DEVICE
    kept = flooded[-REJOIN_CLAIMS_PER_DEVICE:]
    assert {address: radio.rejoin_claims.at(address) for address in flooded} == {
        address: (a.ieee, b.ieee) if address in kept else () for address in flooded
    }
    await move_and_prove(air, second, b, got)
    assert radio.children[b.ieee] == MOVED
    # b's claims are void once it proved one; a's stand until they lapse.
    assert [radio.rejoin_claims.at(address) for address in kept] == [(a.ieee,)] * len(kept)
    assert len(radio.rejoin_claims) == REJOIN_CLAIMS_PER_DEVICE
    await asyncio.sleep(REJOIN_PROOF_WINDOW)
    air.restore(second)
    await claim_from(second, STRANGER, a.ieee)
    assert len(radio.rejoin_claims) == 1


def test_rejoin_claims_compete_lapse_and_stay_bounded():
    """:class:`RejoinClaims` on its own (time is an argument)."""
    a, b = t.EUI64.convert("00:0d:6f:00:0c:00:00:01"), t.EUI64.convert("00:0d:6f:00:0c:00:00:02")
    claims = RejoinClaims(window=10.0, per_device=3)
    claims.note(MOVED, a, 0.0)
    claims.note(MOVED, b, 1.0)
    assert claims.claimants(MOVED, 5.0) == (a, b)
    assert claims.claimants(MOVED, 10.5) == (b,)  # a's claim lapsed
    claims.note(MOVED, a, 2.0)  # renewed: now the newest
    assert claims.at(MOVED) == (b, a)
    claims.note(0x0001, a, 3.0)  # a second address for a: both kept
    assert (claims.at(MOVED), claims.at(0x0001), len(claims)) == ((b, a), (a,), 3)
    for address in (0x0002, 0x0003):  # a fourth: a's oldest claim goes
        claims.note(address, a, 3.0)
    assert [claims.at(n) for n in (MOVED, 0x0001, 0x0002, 0x0003)] == [(b,), (a,), (a,), (a,)]
    claims.note(0x0001, b, 4.0)
    claims.settle(0x0001, b)  # b proved it at 0x0001: its other claims, and a's there, void
    assert (len(claims), claims.at(0x0002), claims.at(0x0003)) == (2, (a,), (a,))
    claims.note(0x0004, b, 4.0)
    claims.forget(a)
    assert (len(claims), claims.at(0x0004)) == (1, (b,))
    claims.note(0x0005, a, 20.0)  # b's claim at 0x0004 has lapsed: dropped now
    assert (len(claims), claims.at(0x0005)) == (1, (a,))
    assert repr(claims) == "RejoinClaims(1 claims)"
    claims.clear()
    assert len(claims) == 0
    with pytest.raises(ValueError, match="per_device"):
        RejoinClaims(per_device=0)
