"""A Rejoin Request (ZB 3.4.6, 3.6.1.4.2) naming an EUI-64 the Trust Center holds no link key
for: in Smart Energy every admitted device holds one (SE 5.4.8.1), so such a rejoin can prove
nothing and is refused (Rejoin Response status 0x02, PAN access denied, ZB 3.4.7), secured or
not: it moves no one, settles no pending claim, adds no record and reaches no zigpy device
table. An insider (network key only) could otherwise void a moved device's claim of its new
address, squat that address, and grow the Trust Center's records without bound."""

from __future__ import annotations

import asyncio

import zigpy.types as t

from tests.sim.test_sim_faults_capture import PRICE, han
from tests.sim.test_sim_security import Tap, _nwk_command, drops, nwk_data, price_packets
from tests.sim.test_sim_tc_rejoin import MOVED, REJOIN_REQUEST, encrypted, second_radio
from zse.security import unsecure_nwk
from zse.sim import SimControllerApplication, SimDevice
from zse.sim import _frames as f


def made_up(i: int) -> t.EUI64:
    """An EUI-64 no device has and the Trust Center holds no key for."""
    return t.EUI64.convert(f"de:ad:be:ef:00:00:{i >> 8:02x}:{i & 0xFF:02x}")


def rejoin_statuses(esi: SimControllerApplication, frames: list[bytes]) -> list[tuple[int, int]]:
    """The Rejoin Responses the coordinator sent among ``frames`` (secured with its network
    key): (destination, status)."""
    radio = esi.radio
    assert radio.network_key is not None
    out = []
    for mac, hdr, raw in nwk_data(frames):
        if mac.src != radio.nwk or hdr.frame_type != f.NWK_COMMAND:
            continue
        if hdr.security:
            payload = unsecure_nwk(raw, {radio.network_key_seq: radio.network_key}).payload
        else:
            payload = f.decode_nwk(raw)[1]
        if payload[:1] == bytes((f.NWK_CMD_REJOIN_RESPONSE,)):
            out.append((hdr.dst, payload[3]))
    return out


async def forge_rejoin(
    esi: SimControllerApplication,
    insider: SimDevice,
    sender: SimDevice,
    address: int,
    claim: t.EUI64,
) -> None:
    """``sender`` (the insider's second radio) sends, from ``address``, a Rejoin Request naming
    ``claim``, NWK-secured with the network key ``insider`` holds."""
    forged = _nwk_command(
        esi.radio.pan_id,
        REJOIN_REQUEST,
        mac_src=address,
        nwk_src=address,
        claim=claim,
        key_holder=insider,
        source=claim,
    )
    await sender.air.transmit(sender.air.frame(sender, forged))


async def test_a_secured_rejoin_of_a_made_up_eui_does_not_void_a_moved_devices_claim():
    """b took :data:`MOVED` (an address conflict) and rejoined through the Trust Center: a
    claim, pending its proof. An insider's secured Rejoin Request from MOVED naming an EUI-64
    the Trust Center holds no key for moved that EUI-64 there at once, voided b's claim, and
    told zigpy: b's proof (its first APS-encrypted frame from MOVED) was tried with the
    made-up device's (absent) key and dropped, and b's next Trust Center rejoin from there
    was a source mismatch. Now the forged rejoin is refused (status 0x02) and changes
    nothing: b's claim stands and its proof moves it."""
    tap = Tap()
    air, esi, (a, b) = await han(49, capture=tap)
    radio = esi.radio
    got = price_packets(esi)
    second = second_radio(air, esi)
    old = b.nwk
    b.nwk = t.NWK(MOVED)
    assert await b.rejoin(secure=False)
    assert radio.rejoin_claims.at(MOVED) == (b.ieee,)
    devices = len(esi.devices)
    sent = len(tap.sent)
    await forge_rejoin(esi, a, second, MOVED, made_up(1))
    await asyncio.sleep(1)
    assert radio.rejoin_claims.at(MOVED) == (b.ieee,)
    assert rejoin_statuses(esi, tap.sent[sent:]) == [(MOVED, f.ASSOC_PAN_ACCESS_DENIED)]
    assert (made_up(1) in radio.children, MOVED in radio.address_map) == (False, False)
    assert len(esi.devices) == devices
    assert radio.children[b.ieee] == old
    await b.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)
    await asyncio.sleep(0.1)
    assert encrypted(got) == [(MOVED, True)]
    assert radio.children[b.ieee] == MOVED
    assert radio.address_map[MOVED] == b.ieee
    assert esi.get_device(ieee=b.ieee).nwk == MOVED
    assert drops(radio.stats) == {}


async def test_a_flood_of_secured_rejoins_of_made_up_euis_adds_no_record():
    """Each secured rejoin naming a fresh EUI-64 from a fresh address added a Trust Center
    child and a zigpy device for good (150 forgeries: 150 of each). Now every one is refused
    and nothing is kept: no child, no address, no claim, no zigpy device."""
    tap = Tap()
    air, esi, (a, _b) = await han(50, capture=tap)
    radio = esi.radio
    second = second_radio(air, esi)
    children, addresses, devices = dict(radio.children), dict(radio.address_map), len(esi.devices)
    sent = len(tap.sent)
    flood = range(150)
    for i in flood:
        second.nwk = t.NWK(0x6000 + i)  # it acknowledges the answer there
        await forge_rejoin(esi, a, second, 0x6000 + i, made_up(i))
        await asyncio.sleep(0.05)
    await asyncio.sleep(1)
    assert radio.children == children
    assert radio.address_map == addresses
    assert len(radio.rejoin_claims) == 0
    assert len(esi.devices) == devices
    assert rejoin_statuses(esi, tap.sent[sent:]) == [
        (0x6000 + i, f.ASSOC_PAN_ACCESS_DENIED) for i in flood
    ]


async def test_a_device_whose_key_was_erased_rejoins_in_place_but_moves_nowhere():
    """A device whose link key the Trust Center erased (removed, SE 5.4.8.1) may still hold
    the network key: its secured rejoin from the address the Trust Center records for it is
    answered and changes nothing (the ESI then asks it to leave), but from any other address
    it was moved there at once; now that is refused, and neither its record nor zigpy's
    moves. Its Trust Center rejoin is refused as before."""
    tap = Tap()
    _air, esi, (_a, b) = await han(51, capture=tap)
    radio = esi.radio
    old = b.nwk
    assert old is not None
    assert esi.remove_link_key(b.ieee)
    assert await b.rejoin(secure=True)
    assert radio.children[b.ieee] == old
    sent = len(tap.sent)
    b.nwk = t.NWK(MOVED)
    assert not await b.rejoin(secure=True)
    assert not await b.rejoin(secure=False)
    assert rejoin_statuses(esi, tap.sent[sent:]) == [(MOVED, f.ASSOC_PAN_ACCESS_DENIED)] * 2
    assert radio.children[b.ieee] == old
    assert (radio.address_map[old], MOVED in radio.address_map) == (b.ieee, False)
    assert len(radio.rejoin_claims) == 0
    await asyncio.sleep(30)
    assert esi.get_device(ieee=b.ieee).nwk == old
