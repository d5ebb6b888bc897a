"""Key establishment between real zse ends on the simulated air: what the ESI checks of a
suite-2 certificate at the time of the exchange, and how a HAN device treats a busy meter."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.cbke.exchanges.test_cbke_service_trust import initiate
from tests.interpan.tshark_json import dissect
from tests.oracles import zigbee_key_options
from tests.roles.han_builder import CA, EUIS, START, build, close
from zse.cbke import SUITE1, SUITE2
from zse.cbke.machine import Initiator, Terminated
from zse.cbke.messages import TerminateStatus
from zse.cbke.service import (
    KeyEstablishmentEvent,
    KeyEstablishmentFailed,
    KeyEstablishmentServer,
    establish_key,
    eui64_bytes,
)
from zse.installcode import InstallCode
from zse.roles.han import InHomeDisplay
from zse.sim import Air
from zse.time.service import ZIGBEE_EPOCH
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

KEY_EST = 0x0800
DAY = 86_400


@pytest.mark.parametrize("days", [2, 30], ids=["expired-since-the-esi-started", "valid"])
async def test_the_esi_checks_a_suite2_certificates_validity_at_the_time_of_the_exchange(
    tmp_path, days
):
    """The ESI never checked a suite-2 certificate's validity dates (SE C.4.2.2): its key
    establishment server had no clock, and a ``utc_now`` would have been frozen when it was
    built. Now it reads its own (Time server) clock when the Initiate arrives: a certificate
    valid when the ESI started but expired since is refused INVALID_CERTIFICATE, one still
    valid is accepted."""
    han = await build(tmp_path, suites=(SUITE1, SUITE2))
    try:
        await asyncio.sleep(3 * DAY)  # the ESI has run for days: its clock is not frozen
        await han.esi.provision(EUIS["ihd"])
        sim = han.air.device(EUIS["ihd"], install_code=han.codes["ihd"], channel=15)
        started = START + ZIGBEE_EPOCH  # the ESI's clock when it was built, as Unix seconds
        credentials = CA.issue(
            eui64_bytes(sim.ieee), SUITE2, valid_from=started - DAY, valid_to=days * DAY
        )
        ihd = InHomeDisplay(sim, credentials=credentials, clock=han.clock)
        outcomes: list[KeyEstablishmentEvent] = []
        han.esi.key_establishment.on_event(outcomes.append)
        if days == 2:
            with pytest.raises(KeyEstablishmentFailed) as failed:
                await ihd.start()
            assert failed.value.status is TerminateStatus.INVALID_CERTIFICATE
            assert [getattr(o.result, "status", None) for o in outcomes] == [
                TerminateStatus.INVALID_CERTIFICATE
            ]
        else:
            await ihd.start()
            assert [type(o.result).__name__ for o in outcomes] == ["Established"]
        await ihd.stop()
    finally:
        await close(han)


async def test_a_meter_that_stays_busy_is_tried_three_times_and_the_error_says_busy():
    """A HAN device gave up key establishment at the first Terminate NO_RESOURCES. Now it
    tries again after the wait time the meter sent, three attempts in all (as Silicon Labs'
    registration plugin), then fails saying the meter is busy, not blaming a certificate."""
    air = Air(seed=41)
    app = await air.coordinator(channel=15)
    se = SeEndpoint(app, in_clusters=[KEY_EST], out_clusters=[KEY_EST])
    await se.start()
    esi = app.state.node_info.ieee
    # One session, held by a partner that never goes on and is never evicted in this test.
    server = KeyEstablishmentServer(
        se,
        CA.issue(eui64_bytes(esi), SUITE1),
        install_key=app.set_link_key,
        max_sessions=1,
        stall_after=10_000.0,
        timeout_margin=10_000.0,
    )
    server.start()
    outcomes: list[KeyEstablishmentEvent] = []
    server.on_event(outcomes.append)
    devices = []
    for n in range(2):
        code = InstallCode.generate(rng=random.Random(n))
        device = air.device(f"00:0d:6f:00:0c:00:00:{n + 1:02x}", install_code=code, channel=15)
        device.add_endpoint(1, in_clusters=[KEY_EST], out_clusters=[KEY_EST])
        await app.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)
        await device.join()
        devices.append(device)
    holder, device = devices
    stalled = Initiator(CA.issue(eui64_bytes(holder.ieee), SUITE1), eui64_bytes(esi))
    (initiate,) = stalled.start(0.0).send
    await holder.endpoints[1].send(
        0x0000, SE_ENDPOINT_ID, KEY_EST, initiate.command_id, initiate.encode(), encrypt=False
    )
    await asyncio.sleep(5)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(KeyEstablishmentFailed) as failed:
        await establish_key(
            device.endpoints[1],
            partner_nwk=0x0000,
            partner_endpoint=SE_ENDPOINT_ID,
            partner_eui64=esi,
            credentials=CA.issue(eui64_bytes(device.ieee), SUITE1),
            install_key=device.set_link_key,
            attempts=3,
        )
    busy = [
        o.result for o in outcomes if o.partner == device.ieee and isinstance(o.result, Terminated)
    ]
    assert [r.status for r in busy] == [TerminateStatus.NO_RESOURCES] * 3
    assert failed.value.status is TerminateStatus.NO_RESOURCES
    message = str(failed.value)
    assert "busy" in message
    assert "3 attempts" in message
    assert "certificate" not in message
    assert loop.time() - began >= 2 * busy[0].wait_time  # it waited as told, twice
    air.close()


async def _ke_han(
    seed: int, capture: Path | None = None
) -> tuple[Air, Any, KeyEstablishmentServer, Any]:
    """A coordinator serving Key Establishment (suite 1) and one joined device (the air
    written to ``capture`` when given)."""
    air = Air(seed=seed, capture=capture)
    app = await air.coordinator(channel=15)
    se = SeEndpoint(app, in_clusters=[KEY_EST], out_clusters=[KEY_EST])
    await se.start()
    esi = app.state.node_info.ieee
    server = KeyEstablishmentServer(
        se, CA.issue(eui64_bytes(esi), SUITE1), install_key=app.set_link_key
    )
    server.start()
    code = InstallCode.generate(rng=random.Random(seed))
    device = air.device("00:0d:6f:00:0c:00:00:01", install_code=code, channel=15)
    device.add_endpoint(1, in_clusters=[KEY_EST], out_clusters=[KEY_EST])
    await app.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)
    await device.join()
    await asyncio.sleep(30)
    return air, app, server, device


async def test_an_undefined_key_establishment_command_is_unsup_cluster_command():
    """A client-to-server command id Key Establishment does not define (0x04-0xFF) was taken
    as a failed exchange and answered Terminate BAD_MESSAGE, even with no session. It is now
    a ZCL Default Response UNSUP_CLUSTER_COMMAND (ZCL 2.5.12), as the other SE clusters
    answer, and no session is touched."""
    air, _, server, device = await _ke_han(43)
    outcomes: list[KeyEstablishmentEvent] = []
    server.on_event(outcomes.append)
    for command in (0x04, 0x07, 0xFF):
        reply = await device.endpoints[1].request(
            0x0000, SE_ENDPOINT_ID, KEY_EST, command, b"\x00" * 4, encrypt=False
        )
        assert not reply.is_cluster_command  # a Default Response, not a Terminate
        assert reply.payload[:2] == bytes((command, foundation.Status.UNSUP_CLUSTER_COMMAND))
    assert outcomes == []
    assert server.core.session(eui64_bytes(device.ieee)) is None
    air.close()


async def test_a_key_establishment_command_by_broadcast_or_group_is_ignored():
    """A Key Establishment command sent by broadcast or to a group was served like a unicast
    (a session opened, answers sent). It is now dropped unanswered, as Silicon Labs' Key
    Establishment plugin does; the device's unicast exchange then runs as usual."""
    air, app, server, device = await _ke_han(44)
    await app._subscribe_to_multicast_group(t.Group(0x0A0B), SE_ENDPOINT_ID)
    outcomes: list[KeyEstablishmentEvent] = []
    server.on_event(outcomes.append)
    esi = app.state.node_info.ieee
    credentials = CA.issue(eui64_bytes(device.ieee), SUITE1)
    (initiate,) = Initiator(credentials, eui64_bytes(esi)).start(0.0).send
    heard: list[object] = []
    device.endpoints[1].add_handler(KEY_EST, heard.append)
    for mode, address in ((t.AddrMode.Broadcast, 0xFFFD), (t.AddrMode.Group, 0x0A0B)):
        await device.send_aps(
            dst_mode=mode,
            dst_addr=address,
            dst_ep=0xFF,
            src_ep=1,
            cluster_id=KEY_EST,
            profile_id=0x0109,
            payload=bytes((0x01, 0x42, initiate.command_id)) + initiate.encode(),
        )
        await asyncio.sleep(5)
    assert server.core.session(eui64_bytes(device.ieee)) is None
    assert outcomes == []
    assert heard == []  # nothing answered
    established = await establish_key(
        device.endpoints[1],
        partner_nwk=0x0000,
        partner_endpoint=SE_ENDPOINT_ID,
        partner_eui64=esi,
        credentials=credentials,
        install_key=device.set_link_key,
    )
    assert established.suite == SUITE1
    air.close()


async def test_a_garbled_answer_is_tried_again_after_the_wait_time_zse_told():
    """The ESI's first Ephemeral Data Response comes garbled (cut short) ahead of its real one:
    the device ends that exchange with Terminate BAD_MESSAGE, which now reaches the ESI (it
    was never sent: the ESI's session stayed open until its timeout, and an Initiate meanwhile
    ended BAD_MESSAGE), waits the wait time it told (10 s, SE C.3.1.3.4) and a second more,
    tries again and gets its key. A HAN device gave up at the first garbled frame."""
    air, app, server, device = await _ke_han(45)
    outcomes: list[KeyEstablishmentEvent] = []
    server.on_event(outcomes.append)
    garble_the_first_ephemeral_data_response(server)
    loop = asyncio.get_running_loop()
    began = loop.time()
    established = await initiate(app, device, CA, attempts=2)
    assert loop.time() - began >= 11
    first, second = (o.result for o in outcomes)
    assert first == Terminated(status=TerminateStatus.BAD_MESSAGE, wait_time=10, by_peer=True)
    assert type(second).__name__ == "Established"
    assert app.get_link_key(device.ieee) == established.key_data
    air.close()


def garble_the_first_ephemeral_data_response(server: KeyEstablishmentServer) -> None:
    """``server``'s first Ephemeral Data Response goes out garbled (cut short), ahead of its
    real one."""

    async def garble_once(msg: Any) -> None:
        if msg.command_id == 0x01 and not msg.from_server:  # the first Ephemeral Data Request
            remove()
            await server.endpoint.reply(msg, 0x01, b"\x02\x01", encrypt=False)

    server.stop()
    remove = server.endpoint.add_handler(KEY_EST, garble_once)  # ahead of the server's
    server.start()


@pytest.mark.oracle
async def test_the_initiators_own_terminate_on_the_air_as_tshark_reads_it(tmp_path):
    """The Terminate Key Establishment a HAN device now sends after a garbled frame, as
    Wireshark's dissector reads it: client to server, to the partner's Key Establishment
    endpoint, without APS security (SE 5.4.6: Key Establishment is exempt, and the partner
    may not hold the key), status BAD_MESSAGE, the wait time and the suite, nothing
    malformed."""
    path = tmp_path / "ke.pcap"
    air, app, server, device = await _ke_han(46, capture=path)
    garble_the_first_ephemeral_data_response(server)
    await initiate(app, device, CA, attempts=2)
    air.close()
    packets = dissect(path, zigbee_key_options(entry.line() for entry in air.keys))
    [terminate] = [p for p in packets if "zbee_zcl_se.ke.terminate.status" in p]
    assert {k: terminate[k] for k in TERMINATE_FIELDS} == {
        "zbee_aps.security": ["0"],
        "zbee_aps.src": ["1"],
        "zbee_aps.dst": [str(SE_ENDPOINT_ID)],
        "zbee_aps.cluster": ["0x0800"],
        "zbee_zcl.dir": ["0"],  # client to server
        "zbee_zcl_se.ke.cmd.srv_rx.id": ["0x03"],
        "zbee_zcl_se.ke.terminate.status": [f"0x{TerminateStatus.BAD_MESSAGE:02x}"],
        "zbee_zcl_se.ke.terminate.wait.time": ["10"],
        "zbee_zcl_se.ke.attr.suite": ["0x0001"],
    }


TERMINATE_FIELDS = (
    "zbee_aps.security",
    "zbee_aps.src",
    "zbee_aps.dst",
    "zbee_aps.cluster",
    "zbee_zcl.dir",
    "zbee_zcl_se.ke.cmd.srv_rx.id",
    "zbee_zcl_se.ke.terminate.status",
    "zbee_zcl_se.ke.terminate.wait.time",
    "zbee_zcl_se.ke.attr.suite",
)
