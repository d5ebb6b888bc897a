"""CBKE through the Key Establishment cluster between a zigpy ESI and a simulated device."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from zse.cbke import SUITE1, SUITE2
from zse.cbke.ca import TestCA
from zse.cbke.machine import Established
from zse.cbke.messages import TerminateStatus
from zse.cbke.service import (
    KeyEstablishmentEvent,
    KeyEstablishmentFailed,
    KeyEstablishmentServer,
    establish_key,
    eui64_bytes,
)
from zse.installcode import InstallCode
from zse.sim import Air, SimControllerApplication, SimDevice
from zse.zcl.delivery import DIRECTIONS
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint, ZclMessage

KEY_EST = 0x0800
PRICE = 0x0700
CA = TestCA.generate()


async def han(seed: int, esi_suites=(SUITE1, SUITE2), ca: TestCA = CA):
    air = Air(seed=seed)
    app: SimControllerApplication = await air.coordinator(channel=15)
    se = SeEndpoint(app, in_clusters=[KEY_EST, PRICE], out_clusters=[KEY_EST])
    await se.start()
    esi_ieee = app.state.node_info.ieee
    server = KeyEstablishmentServer(
        se,
        [ca.issue(eui64_bytes(esi_ieee), suite) for suite in esi_suites],
        install_key=app.set_link_key,
    )
    server.start()
    code = InstallCode.generate(rng=air.rng)
    device: SimDevice = air.device("00:0d:6f:00:0c:00:00:01", install_code=code, channel=15)
    device.add_endpoint(1, device_type=0x0502, in_clusters=[KEY_EST], out_clusters=[KEY_EST, PRICE])
    await app.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)
    await device.join()
    await asyncio.sleep(30)
    return air, app, se, server, device


def install_on_device(device: SimDevice):
    return device.set_link_key


@pytest.mark.parametrize("suite", [SUITE1, SUITE2], ids=["suite1", "suite2"])
async def test_cbke_replaces_the_install_code_key_on_both_sides(suite):
    _, app, se, server, device = await han(10 + suite.id)
    events: list[KeyEstablishmentEvent] = []
    server.on_event(events.append)
    esi_ieee = app.state.node_info.ieee
    install_code_key = app.get_link_key(device.ieee)
    established = await establish_key(
        device.endpoints[1],
        partner_nwk=0x0000,
        partner_endpoint=SE_ENDPOINT_ID,
        partner_eui64=esi_ieee,
        credentials=[CA.issue(eui64_bytes(device.ieee), s) for s in {SUITE1, suite}],
        install_key=install_on_device(device),
    )
    assert established.suite == suite  # the highest suite both sides have
    key = established.key_data
    assert len(key) == 16
    assert key != install_code_key
    assert app.get_link_key(device.ieee) == key
    assert device.link_keys[esi_ieee] == key
    assert [e.partner for e in events] == [device.ieee]
    assert events[0].result.key_data == key  # type: ignore[union-attr]

    # SE traffic is now APS-encrypted with KeyData, and still gets through
    received: list[ZclMessage] = []
    se.add_handler(PRICE, received.append)
    await device.endpoints[1].send(0x0000, SE_ENDPOINT_ID, PRICE, 0x00, b"\x01", encrypt=True)
    await asyncio.sleep(1)
    assert len(received) == 1
    assert received[0].aps_encrypted


async def test_unknown_issuer_ends_with_the_right_status_on_both_sides():
    _, app, _, server, device = await han(20)
    events: list[KeyEstablishmentEvent] = []
    server.on_event(events.append)
    other_ca = TestCA.generate(issuer=bytes.fromhex("0102030405060708"))
    with pytest.raises(KeyEstablishmentFailed) as info:
        await establish_key(
            device.endpoints[1],
            partner_nwk=0x0000,
            partner_endpoint=SE_ENDPOINT_ID,
            partner_eui64=app.state.node_info.ieee,
            credentials=other_ca.issue(eui64_bytes(device.ieee), SUITE1),
        )
    # The ESI refuses the device's certificate (issuer it does not trust) ...
    assert info.value.status == TerminateStatus.UNKNOWN_ISSUER
    assert info.value.terminated.by_peer
    assert not info.value.terminated.may_retry
    assert "do not retry" in str(info.value)
    # ... and says so in its own outcome; the install-code key stays in place.
    assert events[0].result.status == TerminateStatus.UNKNOWN_ISSUER  # type: ignore[union-attr]
    assert not events[0].result.by_peer  # type: ignore[union-attr]


async def test_unsupported_suite():
    _, app, _, _, device = await han(21, esi_suites=(SUITE1,))
    with pytest.raises(KeyEstablishmentFailed) as info:
        await establish_key(
            device.endpoints[1],
            partner_nwk=0x0000,
            partner_endpoint=SE_ENDPOINT_ID,
            partner_eui64=app.state.node_info.ieee,
            credentials=CA.issue(eui64_bytes(device.ieee), SUITE2),
        )
    assert info.value.status == TerminateStatus.UNSUPPORTED_SUITE


async def test_no_key_establishment_server_is_a_clear_failure():
    _, app, _, server, device = await han(22)
    server.stop()  # the ESI endpoint now answers KE commands with a Default Response
    with pytest.raises(KeyEstablishmentFailed) as info:
        await establish_key(
            device.endpoints[1],
            partner_nwk=0x0000,
            partner_endpoint=SE_ENDPOINT_ID,
            partner_eui64=app.state.node_info.ieee,
            credentials=CA.issue(eui64_bytes(device.ieee), SUITE1),
        )
    assert "Default Response UNSUP_CLUSTER_COMMAND" in str(info.value)
    assert not info.value.terminated.may_retry


async def test_lost_confirm_key_response_times_out_then_a_retry_agrees():
    air, app, _, server, device = await han(23)
    events: list[KeyEstablishmentEvent] = []
    server.on_event(events.append)

    def lose_replies_after_ephemeral_data(msg: ZclMessage) -> None:
        # runs after the server has answered the Ephemeral Data Request: from now on the
        # ESI's frames to the device are lost, so its Confirm Key Data Response never arrives
        if msg.command_id == 0x01:
            air.set_link_faults(app.radio, device, both_ways=False, loss=1.0)

    remove_fault = server.endpoint.add_handler(KEY_EST, lose_replies_after_ephemeral_data)
    # the device's Confirm Key request must end sent for its response alone to be lost: an APS
    # ack from the ESI would be lost with the response (the device giving up after 6.4 s), the
    # MAC acknowledgement of its own working link is not
    device.aps_ack = False
    loop = asyncio.get_running_loop()
    credentials = CA.issue(eui64_bytes(device.ieee), SUITE1)
    started = loop.time()
    with pytest.raises(KeyEstablishmentFailed) as info:
        await establish_key(
            device.endpoints[1],
            partner_nwk=0x0000,
            partner_endpoint=SE_ENDPOINT_ID,
            partner_eui64=app.state.node_info.ieee,
            credentials=credentials,
        )
    assert info.value.terminated.timed_out
    assert info.value.terminated.may_retry
    # the ESI advertised 5 s to confirm the key; zse waits that plus its 10 s margin
    assert 15 <= loop.time() - started < 20
    assert isinstance(events[-1].result, Established)  # the ESI finished and switched keys

    remove_fault()
    air.set_link_faults(app.radio, device)  # the link recovers; the device simply retries
    established = await establish_key(
        device.endpoints[1],
        partner_nwk=0x0000,
        partner_endpoint=SE_ENDPOINT_ID,
        partner_eui64=app.state.node_info.ieee,
        credentials=credentials,
        install_key=install_on_device(device),
    )
    assert app.get_link_key(device.ieee) == established.key_data
    assert device.link_keys[app.state.node_info.ieee] == established.key_data


async def add_device(air, app, eui: str) -> SimDevice:
    code = InstallCode.generate(rng=air.rng)
    device = air.device(eui, install_code=code, channel=15)
    device.add_endpoint(1, device_type=0x0502, in_clusters=[KEY_EST], out_clusters=[KEY_EST])
    await app.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)
    await device.join()
    return device


def attempt(app, device: SimDevice):
    return establish_key(
        device.endpoints[1],
        partner_nwk=0x0000,
        partner_endpoint=SE_ENDPOINT_ID,
        partner_eui64=app.state.node_info.ieee,
        credentials=CA.issue(eui64_bytes(device.ieee), SUITE2),
        install_key=install_on_device(device),
    )


async def test_concurrent_exchanges_with_several_devices():
    air, app, _, _, first = await han(24)
    others = [await add_device(air, app, f"00:0d:6f:00:0c:00:01:0{i}") for i in range(3)]
    await asyncio.sleep(30)
    devices = [first, *others]
    results = await asyncio.gather(*(attempt(app, d) for d in devices))
    keys = [r.key_data for r in results]
    assert len(set(keys)) == 4  # every partner its own key
    for device, key in zip(devices, keys, strict=True):
        assert app.get_link_key(device.ieee) == key
        assert device.link_keys[app.state.node_info.ieee] == key


async def test_busy_server_answers_no_resources_and_the_device_retries_after_the_wait():
    air, app, se, server, first = await han(25)
    server.stop()
    busy = KeyEstablishmentServer(
        se,
        [CA.issue(eui64_bytes(app.state.node_info.ieee), SUITE2)],
        install_key=app.set_link_key,
        max_sessions=1,
        busy_wait_time=20,
    )
    busy.start()
    second = await add_device(air, app, "00:0d:6f:00:0c:00:02:01")
    await asyncio.sleep(30)
    outcomes = await asyncio.gather(
        attempt(app, first), attempt(app, second), return_exceptions=True
    )
    failed = [o for o in outcomes if isinstance(o, KeyEstablishmentFailed)]
    assert len(failed) == 1
    assert failed[0].status == TerminateStatus.NO_RESOURCES
    assert failed[0].wait_time == 20
    loser = second if isinstance(outcomes[1], KeyEstablishmentFailed) else first
    await asyncio.sleep(failed[0].wait_time)
    established = await attempt(app, loser)
    assert app.get_link_key(loser.ieee) == established.key_data


async def read_esi_suite_attribute(endpoint: Any, **options: Any) -> Any:
    """A device's ``endpoint`` reads the ESI's (coordinator, SE endpoint) server
    KeyEstablishmentSuite attribute; ``options``: the request's (``encrypt``)."""
    return await endpoint.request(
        0x0000,
        SE_ENDPOINT_ID,
        KEY_EST,
        foundation.GeneralCommand.Read_Attributes,
        b"\x00\x00",
        cluster_specific=False,
        **options,
    )


async def read_suite_attribute(se: SeEndpoint, device: SimDevice, *, client: bool) -> bytes:
    """The ESI reads attribute 0x0000 of the device's Key Establishment: the client's
    attribute with a Read Attributes sent server to client, else the server's (ZCL 2.4.1.1.3)."""
    reply = await se.request(
        int(device.nwk),
        1,
        KEY_EST,
        foundation.GeneralCommand.Read_Attributes,
        b"\x00\x00",
        cluster_specific=False,
        direction=DIRECTIONS[client],
        encrypt=False,
    )
    assert reply.command_id == foundation.GeneralCommand.Read_Attributes_rsp
    return bytes(reply.payload)


async def test_the_initiator_serves_its_client_key_establishment_suite_attribute():
    # SE C.3.2.1.1: the Key Establishment client has a KeyEstablishmentSuite attribute too
    _, app, se, _, device = await han(26)
    await establish_key(
        device.endpoints[1],
        partner_nwk=0x0000,
        partner_endpoint=SE_ENDPOINT_ID,
        partner_eui64=app.state.node_info.ieee,
        credentials=[CA.issue(eui64_bytes(device.ieee), s) for s in (SUITE1, SUITE2)],
        install_key=install_on_device(device),
    )
    # attribute 0x0000, SUCCESS, enum16 (0x31, as the XML, ZBOSS and Silicon Labs type it:
    # tests/se/test_se_zsmartsystems_xml.py), suites 1 and 2 (bits 0 and 1)
    assert await read_suite_attribute(se, device, client=True) == bytes.fromhex("000000310300")
    # and the ESI's server attribute, as the device reads it
    server = await read_esi_suite_attribute(device.endpoints[1], encrypt=False)
    assert bytes(server.payload) == bytes.fromhex("000000310300")
    # the device runs no Key Establishment server: it has no server attribute to answer
    assert await read_suite_attribute(se, device, client=False) == bytes.fromhex("000086")
    # a client attribute is read-only (ZCL 2.5.3.3)
    write = await se.request(
        int(device.nwk),
        1,
        KEY_EST,
        foundation.GeneralCommand.Write_Attributes,
        bytes.fromhex("0000310100"),  # attribute 0x0000, enum16, 1
        cluster_specific=False,
        direction=DIRECTIONS[True],
        encrypt=False,
    )
    assert write.payload == bytes.fromhex("880000")  # READ_ONLY, attribute 0x0000
