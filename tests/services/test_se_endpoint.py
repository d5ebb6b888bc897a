"""The SE endpoint on a zigpy coordinator, driven by simulated HAN devices."""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.services.test_key_establishment_service import read_esi_suite_attribute
from zse.installcode import InstallCode
from zse.price.wire import Price
from zse.sim import Air, SimControllerApplication, SimDevice
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint, ZclMessage

PRICE = 0x0700
MESSAGING = 0x0703
KEY_EST = 0x0800
HA_PROFILE = 0x0104


async def network(
    seed: int, zigpy_saw: list[t.ZigbeePacket] | None = None
) -> tuple[Air, SimControllerApplication, SeEndpoint, SimDevice]:
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    if zigpy_saw is not None:  # record what reaches zigpy's own packet handling
        original = app.packet_received

        def spy(packet: t.ZigbeePacket) -> None:
            zigpy_saw.append(packet)
            original(packet)

        app.packet_received = spy  # type: ignore[method-assign]
    se = SeEndpoint(app, in_clusters=[KEY_EST, PRICE, MESSAGING], out_clusters=[KEY_EST])
    await se.start()
    code = InstallCode.generate(rng=air.rng)
    device = air.device("00:0d:6f:00:0b:00:00:01", install_code=code, channel=15)
    device.add_endpoint(
        1, device_type=0x0502, in_clusters=[KEY_EST], out_clusters=[KEY_EST, PRICE, MESSAGING]
    )
    await app.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)
    await device.join()
    await asyncio.sleep(30)  # zigpy's interview
    return air, app, se, device


def spy_sends(app: SimControllerApplication) -> list[t.ZigbeePacket]:
    """Every packet ``app`` sends from now on (each still goes on the air)."""
    sent: list[t.ZigbeePacket] = []
    original_send = app.send_packet

    async def spy(packet: t.ZigbeePacket) -> None:
        sent.append(packet)
        await original_send(packet)

    app.send_packet = spy  # type: ignore[method-assign]
    return sent


def publish_price_payload() -> bytes:
    schema = Price.ClientCommandDefs.publish_price.schema
    return encode_command(
        schema(
            provider_id=1,
            rate_label=b"BASE",
            issuer_event_id=7,
            current_time=0,
            unit_of_measure=0,
            currency=840,
            price_trailing_digit_and_price_tier=0x21,
            number_of_price_tiers_and_register_tier=0x11,
            start_time=0,
            duration_in_minutes=0xFFFF,
            price=1500,
        )
    )


async def test_device_request_reaches_a_handler_and_gets_the_reply_with_its_tsn():
    _, _, se, device = await network(1)
    seen: list[ZclMessage] = []

    async def get_current_price(msg: ZclMessage) -> None:
        seen.append(msg)
        await se.reply(msg, 0x00, publish_price_payload())

    se.add_handler(PRICE, get_current_price)
    reply = await device.endpoints[1].request(
        0x0000, SE_ENDPOINT_ID, PRICE, 0x00, b"\x01", encrypt=True
    )
    assert len(seen) == 1
    assert seen[0].src_ieee == device.ieee
    assert seen[0].aps_encrypted
    assert not seen[0].from_server
    assert reply.tsn == seen[0].tsn
    assert reply.header.direction == foundation.Direction.Server_to_Client
    assert reply.aps_encrypted
    price, _ = decode_command(Price, reply.command_id, reply.payload, from_server=True)
    assert price.price == 1500


async def test_unencrypted_se_frame_is_dropped_but_key_establishment_is_exempt():
    _, _, se, device = await network(2)
    handled: list[int] = []
    se.add_handler(PRICE, lambda msg: handled.append(msg.cluster_id))
    se.add_handler(KEY_EST, lambda msg: handled.append(msg.cluster_id))
    endpoint = device.endpoints[1]
    await endpoint.send(0x0000, SE_ENDPOINT_ID, PRICE, 0x00, b"\x01", encrypt=False)
    await endpoint.send(0x0000, SE_ENDPOINT_ID, KEY_EST, 0x03, b"\x03\x00\x01\x00")
    await asyncio.sleep(1)
    assert handled == [KEY_EST]
    assert [(d.cluster_id, d.reason) for d in se.dropped] == [
        (PRICE, "not APS-encrypted (SE 5.4.6)")
    ]


async def test_policy_can_be_relaxed_for_a_bench():
    _, _, se, device = await network(3)
    se.security.require_aps_encryption = False
    handled: list[ZclMessage] = []
    se.add_handler(PRICE, handled.append)
    await device.endpoints[1].send(0x0000, SE_ENDPOINT_ID, PRICE, 0x00, b"\x01")
    await asyncio.sleep(1)
    assert len(handled) == 1
    assert not handled[0].aps_encrypted


async def test_unknown_command_gets_a_default_response_and_read_attributes_is_answered():
    _, _, se, device = await network(4)
    se.set_attribute(KEY_EST, 0x0000, 0x0001, type_id=0x31)  # KeyEstablishmentSuite, enum16
    endpoint = device.endpoints[1]
    reply = await endpoint.request(0x0000, SE_ENDPOINT_ID, MESSAGING, 0x00, encrypt=True)
    assert reply.command_id == foundation.GeneralCommand.Default_Response
    assert reply.payload == bytes((0x00, foundation.Status.UNSUP_CLUSTER_COMMAND))
    reply = await read_esi_suite_attribute(endpoint)
    records, _ = foundation.GENERAL_COMMANDS[
        foundation.GeneralCommand.Read_Attributes_rsp
    ].schema.deserialize(reply.payload)
    assert records.status_records[0].value.value == 0x0001


async def test_esi_sends_to_a_device_and_to_a_group():
    _, _, se, device = await network(5)
    endpoint = device.endpoints[1]
    endpoint.add_group(0x0E01)
    received: list[ZclMessage] = []
    endpoint.add_handler(PRICE, received.append)
    nwk = device.nwk
    assert nwk is not None
    await se.send(nwk, 1, PRICE, 0x00, publish_price_payload(), disable_default_response=True)
    await se.send(0x0E01, 0, PRICE, 0x00, publish_price_payload(), dst_mode=t.AddrMode.Group)
    await asyncio.sleep(1)
    assert [m.group for m in received] == [None, 0x0E01]
    assert received[0].aps_encrypted  # unicast SE traffic is APS-encrypted by policy
    assert not received[1].aps_encrypted  # group frames carry only network-layer security


async def test_other_profiles_still_reach_zigpy_and_stop_gives_se_frames_back():
    zigpy_saw: list[t.ZigbeePacket] = []
    _, _, se, device = await network(6, zigpy_saw)
    zigpy_saw.clear()
    handled: list[ZclMessage] = []
    se.add_handler(PRICE, handled.append)

    async def send(profile: int, dst_ep: int, cluster: int) -> None:
        await device.send_aps(
            dst_mode=t.AddrMode.NWK,
            dst_addr=0x0000,
            dst_ep=dst_ep,
            src_ep=1,
            cluster_id=cluster,
            profile_id=profile,
            payload=b"\x01\x01\x00",
            encrypt=True,
        )
        await asyncio.sleep(1)

    await send(HA_PROFILE, 1, 0x0006)
    await send(0x0109, SE_ENDPOINT_ID, PRICE)
    assert [int(p.profile_id) for p in zigpy_saw] == [HA_PROFILE]
    assert len(handled) == 1
    se.stop()
    await send(0x0109, SE_ENDPOINT_ID, PRICE)
    assert [int(p.profile_id) for p in zigpy_saw] == [HA_PROFILE, 0x0109]
    assert len(handled) == 1


@pytest.mark.parametrize("garbage", [b"", b"\x19", b"\x01\x02"])
async def test_malformed_zcl_header_is_dropped(garbage):
    _, _, se, device = await network(7)
    await device.send_aps(
        dst_mode=t.AddrMode.NWK,
        dst_addr=0x0000,
        dst_ep=SE_ENDPOINT_ID,
        src_ep=1,
        cluster_id=PRICE,
        profile_id=0x0109,
        payload=garbage,
        encrypt=True,
    )
    await asyncio.sleep(1)
    assert len(se.dropped) == 1
    assert se.dropped[0].reason.startswith("malformed ZCL header")


def match_desc_request(tsn: int, profile: int, in_clusters: list[int], out: list[int]) -> bytes:
    data = bytes((tsn,)) + (0xFFFD).to_bytes(2, "little") + profile.to_bytes(2, "little")
    data += bytes((len(in_clusters),)) + b"".join(c.to_bytes(2, "little") for c in in_clusters)
    return data + bytes((len(out),)) + b"".join(c.to_bytes(2, "little") for c in out)


@pytest.mark.parametrize(
    ("profile", "in_clusters", "unicast", "answered", "endpoints"),
    [
        (0x0109, [KEY_EST], False, True, [SE_ENDPOINT_ID]),  # looking for the KE server
        (0x0109, [0x0702], False, False, []),  # no such server here: a broadcast gets silence
        (0x0109, [0x0702], True, True, []),  # ... a unicast gets an empty match list
        (HA_PROFILE, [0x0006], False, False, None),  # not SE: left to zigpy
    ],
)
async def test_se_match_descriptor_is_answered_from_the_se_endpoint(
    profile, in_clusters, unicast, answered, endpoints
):
    zigpy_saw: list[t.ZigbeePacket] = []
    _, app, se, device = await network(8, zigpy_saw)
    sent = spy_sends(app)
    zigpy_saw.clear()
    assert device.nwk is not None
    se._packet_received(
        t.ZigbeePacket(
            src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=t.NWK(device.nwk)),
            src_ep=0,
            dst=(
                t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=t.NWK(0x0000))
                if unicast
                else t.AddrModeAddress(addr_mode=t.AddrMode.Broadcast, address=0xFFFD)
            ),
            dst_ep=0,
            tsn=0x42,
            profile_id=0,
            cluster_id=0x0006,
            data=t.SerializableBytes(match_desc_request(0x42, profile, in_clusters, [])),
        )
    )
    await asyncio.sleep(1)
    ours = [p for p in sent if p.cluster_id == 0x8006 and p.data.serialize()[0] == 0x42]
    if answered:
        assert len(ours) == 1
        payload = ours[0].data.serialize()
        assert payload[1] == 0x00  # SUCCESS
        assert list(payload[5 : 5 + payload[4]]) == endpoints
        assert not zigpy_saw  # zigpy's empty answer is not sent
        # APS-acknowledged, as zigpy's own ZDO answers are (below) and Z-Stack's
        # Match_Desc_rsp (ZB 2.2.8.4.1)
        assert ours[0].tx_options == t.TransmitOptions.ACK
    elif profile == 0x0109:  # no match for a broadcast: silence, from zse and from zigpy
        assert not ours
        assert not zigpy_saw
    else:  # zigpy got the request and answered it itself (its HA endpoint 1)
        assert len(zigpy_saw) == 1
        assert [list(p.data.serialize()[5:]) for p in ours] == [[1]]
        assert [p.tx_options for p in ours] == [t.TransmitOptions.ACK]  # zigpy's ZDO.reply


@pytest.mark.parametrize(
    ("cluster", "frame_control", "delivered"),
    [
        (0x0006, 0x00, False),  # On/Off: no side of it here
        (PRICE, 0x08, False),  # a Read Attributes for a Price client: the ESI is Price's server
        (PRICE, 0x00, True),  # a Read Attributes for the Price server: answered
    ],
)
async def test_the_broadcast_endpoint_reaches_only_an_endpoint_with_that_side(
    cluster: int, frame_control: int, delivered: bool
) -> None:
    """ZCL r8 2.3.2.1: a frame for the broadcast endpoint (0xFF) goes only to the endpoints
    supporting the cluster, and draws no error answer from the others: the ESI does not
    answer UNSUPPORTED_CLUSTER (or read the wrong side's attributes) for a cluster side it
    lacks, though a frame for its own endpoint id still gets that answer."""
    _, app, se, device = await network(9)
    se.security.require_aps_encryption = False
    sent = spy_sends(app)

    async def read(dst_ep: int) -> list[t.ZigbeePacket]:
        sent.clear()
        await device.send_aps(
            dst_mode=t.AddrMode.NWK,
            dst_addr=0x0000,
            dst_ep=dst_ep,
            src_ep=1,
            cluster_id=cluster,
            profile_id=0x0109,
            payload=bytes((frame_control, 0x61, 0x00, 0x00, 0x00)),
            encrypt=False,
        )
        await asyncio.sleep(1)
        return [p for p in sent if int(p.profile_id) == 0x0109]

    answers = await read(0xFF)
    assert len(answers) == int(delivered)
    assert len(await read(SE_ENDPOINT_ID)) == 1
