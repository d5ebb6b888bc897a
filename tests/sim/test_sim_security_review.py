"""A hostile review of NWK and APS security on the simulated air: outgoing frame counters
that reach 0xFFFFFFFF (ZB 4.3.1.1, 4.4.1.1), a network key used again (no CCM* nonce may
repeat, ZB 4.5.2.2), APS data secured with the key-transport or key-load key (ZB 4.5.3),
and Transport Key commands from a partner other than the Trust Center or without APS
security (ZB 4.6.3.4)."""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t
from zigpy.exceptions import DeliveryError

from tests.sim.test_sim_faults_capture import PRICE, SE_PROFILE, han
from tests.sim.test_sim_security import Tap, drops, inject, nwk_data, price_packets
from zse.security import COUNTER_EXHAUSTED, AuxHeader, KeyId, nwk_header_length, secure_aps
from zse.security import secure_nwk as seal_nwk
from zse.sim import SimDevice
from zse.sim import _frames as f
from zse.sim._node import eui64_int

NEW_KEY = bytes(range(16))
#: Get Current Price, client to server (SE D.4.2.3.1), ZCL sequence number 5
GET_CURRENT_PRICE = bytes((0x01, 5, 0x00))


def from_node(sender: SimDevice, dst: int, aps_frame: bytes, *, counter: int) -> bytes:
    """A MAC frame from ``sender`` to ``dst`` carrying ``aps_frame`` NWK-secured with the
    sender's network key at ``counter``: what the sender (or an insider) could put on the air."""
    assert sender.network_key is not None
    assert sender.nwk is not None
    assert sender.pan_id is not None
    nwk = f.encode_nwk(f.NwkHeader(dst, sender.nwk, 30, counter & 0xFF), b"")
    secured = seal_nwk(
        nwk,
        aps_frame,
        key=sender.network_key,
        key_seq=sender.network_key_seq,
        counter=counter,
        source=eui64_int(sender.ieee),
    )
    mac_dst = 0xFFFF if dst >= 0xFFF8 else dst  # a NWK broadcast is a MAC broadcast
    mac = f.MacHeader(f.MAC_DATA, counter & 0xFF, sender.pan_id, mac_dst, sender.pan_id, sender.nwk)
    return f.encode_mac(mac, secured)


async def test_an_exhausted_nwk_frame_counter_sends_nothing_and_raises_delivery_error():
    """ZB 4.3.1.1 step 1: 0xFFFFFFFE secures the last frame; then the sender sends nothing
    more under the key (no wrap to 0) and says so with a DeliveryError, as a radio does."""
    tap = Tap()
    _, esi, (dev, _) = await han(70, capture=tap)
    got = price_packets(esi)
    dev.nwk_frame_counter = COUNTER_EXHAUSTED - 1
    await dev.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"")
    await asyncio.sleep(0.1)
    assert len(got) == 1  # the last counter is usable
    sent = len(tap.sent)
    for _ in range(2):
        with pytest.raises(DeliveryError, match="frame counter exhausted"):
            await dev.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"")
    await dev.leave()  # a NWK command is refused the same way; the device still leaves
    assert len(tap.sent) == sent
    assert dev.nwk_frame_counter == COUNTER_EXHAUSTED
    assert len(got) == 1
    assert drops(esi.radio.stats) == {}


async def test_an_exhausted_aps_frame_counter_raises_delivery_error():
    """ZB 4.4.1.1: the same for the APS frame counter of a link key."""
    tap = Tap()
    _, esi, (dev, _) = await han(71, capture=tap)
    tc = esi.state.node_info.ieee
    dev._aps_out[tc, dev.link_keys[tc]] = COUNTER_EXHAUSTED
    sent = len(tap.sent)
    with pytest.raises(DeliveryError, match=r"APS frame counter .* exhausted"):
        await dev.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"", encrypt=True)
    assert len(tap.sent) == sent
    assert dev._aps_out[tc, dev.link_keys[tc]] == COUNTER_EXHAUSTED


@pytest.mark.parametrize("key_id", [KeyId.KEY_TRANSPORT, KeyId.KEY_LOAD], ids=lambda k: k.name)
async def test_aps_data_under_the_key_transport_or_key_load_key_is_dropped(key_id):
    """The keys derived from a link key (ZB 4.5.3) secure Transport Key commands only: APS
    data secured with one is dropped and counted, never delivered (as unencrypted data). The
    same frame under the link key itself (data key) is delivered, APS-encrypted."""
    air, esi, (dev, _) = await han(72)
    got = price_packets(esi)
    tc = esi.state.node_info.ieee
    aps = f.encode_aps(f.ApsHeader(f.APS_DATA, 0, 0x33, 9, None, PRICE, SE_PROFILE, 1), b"")
    counter = dev.nwk_frame_counter + 10
    for n, kind in enumerate((key_id, KeyId.DATA)):
        secured = secure_aps(
            aps,
            GET_CURRENT_PRICE,
            link_key=dev.link_keys[tc],
            counter=1000 + n,
            source=eui64_int(dev.ieee),
            key_id=kind,
        )
        await inject(air, from_node(dev, 0x0000, secured, counter=counter + n))
    assert [bytes(p.data.serialize()) for p in got] == [GET_CURRENT_PRICE]
    assert got[0].tx_options & t.TransmitOptions.APS_Encryption
    assert drops(esi.radio.stats) == {"aps_key_misuse": 1}


async def test_a_network_key_used_again_never_repeats_a_nonce():
    """A Trust Center rotating back to a key it used before (K1, K2, K1): every sender goes
    on counting under K1 where it stopped, so no (source, frame counter) pair, the CCM*
    nonce (ZB 4.5.2.2), secures two frames under one key; and nothing is dropped."""
    tap = Tap()
    _, esi, (a, b) = await han(73, capture=tap)
    first = a.network_key
    assert first is not None
    keys = {0: first, 1: NEW_KEY, 2: first}
    for key in (NEW_KEY, first):
        await esi.rotate_network_key(key)
        await asyncio.sleep(5)
        for device in (a, b):
            await device.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"")
    assert (a.network_key_seq, esi.radio.network_key) == (2, first)
    nonces: dict[tuple[int | None, int, bytes], bytes] = {}
    for _, nwk, frame in nwk_data(tap.sent):
        if not nwk.security:
            continue
        aux, _ = AuxHeader.decode(frame[nwk_header_length(frame) :])
        assert aux.key_seq is not None
        nonce = (aux.source, aux.counter, keys[aux.key_seq])
        assert nonces.setdefault(nonce, frame) == frame, f"nonce reused: {aux!r}"
    assert drops(esi.radio.stats) == drops(a.stats) == drops(b.stats) == {}


async def test_a_transport_key_from_a_partner_other_than_the_trust_center_is_ignored():
    """A joined device takes the next network key only from its Trust Center (ZB 4.6.3.4):
    a Transport Key from a device it shares a link key with, secured with that key's
    key-transport key, is ignored; the Trust Center's is kept until Switch Key."""
    air, esi, (a, b) = await han(74)
    shared = bytes(range(16, 32))
    a.set_link_key(b.ieee, shared)
    b.set_link_key(a.ieee, shared)
    await b.announce()  # a holds a key for b: it learns b's address (ZB 2.4.3.1.11.2)
    assert a.nwk is not None
    command = f.transport_key_payload(bytes(16), 9, a.ieee, b.ieee)
    aps = f.encode_aps(f.ApsHeader(f.APS_COMMAND, f.APS_DELIVERY_UNICAST, 0x21), b"")
    secured = secure_aps(
        aps,
        command,
        link_key=shared,
        counter=0,
        source=eui64_int(b.ieee),
        key_id=KeyId.KEY_TRANSPORT,
    )
    await inject(air, from_node(b, a.nwk, secured, counter=b.nwk_frame_counter + 10))
    assert a.alternate_network_key is None
    assert drops(a.stats) == {}  # it decrypted: the sender is what was refused
    await esi.radio._transport_key(a.ieee, a.nwk, network_key=(NEW_KEY, 9))
    await asyncio.sleep(0.1)
    assert a.alternate_network_key == (9, NEW_KEY)


async def test_a_transport_key_without_aps_security_is_ignored():
    """A Transport Key that is only NWK-secured (any holder of the network key can send
    one, with the Trust Center's addresses and EUI-64) brings no key (ZB 4.6.3.4.1)."""
    air, esi, (a, b) = await han(75)
    assert a.nwk is not None
    assert b.network_key is not None
    assert b.pan_id is not None
    tc = esi.state.node_info.ieee
    command = f.transport_key_payload(NEW_KEY, 9, a.ieee, tc)
    aps = f.encode_aps(f.ApsHeader(f.APS_COMMAND, f.APS_DELIVERY_UNICAST, 0x22), command)
    nwk = f.encode_nwk(f.NwkHeader(a.nwk, 0x0000, 30, 1, src_ieee=tc), b"")
    secured = seal_nwk(
        nwk,
        aps,
        key=b.network_key,
        key_seq=b.network_key_seq,
        counter=COUNTER_EXHAUSTED - 1,  # above anything the Trust Center sent
        source=eui64_int(tc),
    )
    mac = f.MacHeader(f.MAC_DATA, 1, b.pan_id, a.nwk, b.pan_id, 0x0000)
    await inject(air, f.encode_mac(mac, secured))
    assert a.alternate_network_key is None
    assert drops(a.stats) == {}


async def test_a_frame_zigpy_cannot_parse_is_dropped_at_the_radio_and_reaches_every_node():
    """Any holder of the network key can broadcast a ZDO frame zigpy cannot parse (here a
    Simple_Desc_req with no payload at all). The simulated radio drops it with a warning, as
    bellows and zigpy-znp do with an exception in their callbacks: the exception does not
    escape into the air, which would stop the frame reaching the nodes after the coordinator."""
    errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
    air, esi, (a, b) = await han(76)
    aps = f.encode_aps(f.ApsHeader(f.APS_DATA, 2, 0x44, 0xFF, None, 0x0004, 0x0000, 0), b"")
    counter = b.nwk_frame_counter
    b.nwk_frame_counter += 1  # b itself sends it
    await inject(air, from_node(b, 0xFFFD, aps, counter=counter))
    assert errors == []
    assert a._nwk_in[a.network_key_seq].expected(eui64_int(b.ieee)) == counter + 1
    # the radio still works
    got = price_packets(esi)
    await b.endpoints[1].send(0x0000, 9, PRICE, 0x00, b"")
    await asyncio.sleep(0.1)
    assert len(got) == 1
