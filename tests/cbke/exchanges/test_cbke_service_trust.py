"""Whom the Key Establishment shells trust (SE C.4.2): the initiator takes an answer only
unicast from the partner it addressed, and the server runs an exchange only with a partner
the ESI admits. CBKE between a zigpy ESI and a device on the simulated air."""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from zse.cbke import SUITE1
from zse.cbke.ca import TestCA
from zse.cbke.machine import Established
from zse.cbke.messages import TerminateKeyEstablishment, TerminateStatus
from zse.cbke.service import (
    KeyEstablishmentEvent,
    KeyEstablishmentFailed,
    KeyEstablishmentServer,
    establish_key,
    eui64_bytes,
)
from zse.installcode import InstallCode
from zse.se.ids import KEY_ESTABLISHMENT, KeyEstablishmentServerCommand
from zse.sim import Air, SimControllerApplication, SimDevice
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint, ZclMessage

CA = TestCA.generate()


async def network(seed: int) -> tuple[SimControllerApplication, SeEndpoint, SimDevice]:
    """An ESI endpoint hosting the Key Establishment server (not started) and a joined
    device with a Key Establishment client."""
    air = Air(seed=seed)
    app: SimControllerApplication = await air.coordinator(channel=15)
    se = SeEndpoint(app, in_clusters=[KEY_ESTABLISHMENT], out_clusters=[KEY_ESTABLISHMENT])
    await se.start()
    code = InstallCode.generate(rng=air.rng)
    device: SimDevice = air.device("00:0d:6f:00:0c:00:00:01", install_code=code, channel=15)
    device.add_endpoint(1, device_type=0x0502, out_clusters=[KEY_ESTABLISHMENT])
    await app.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)
    await device.join()
    await asyncio.sleep(30)
    return app, se, device


def server(app: SimControllerApplication, se: SeEndpoint, **options) -> KeyEstablishmentServer:
    esi = eui64_bytes(app.state.node_info.ieee)
    ke = KeyEstablishmentServer(se, CA.issue(esi, SUITE1), install_key=app.set_link_key, **options)
    ke.start()
    return ke


async def initiate(
    app: SimControllerApplication, device: SimDevice, ca: TestCA = CA, **options
) -> Established:
    """``device`` runs key establishment (suite 1, a certificate of ``ca``) with the
    coordinator; ``options`` go to :func:`~zse.cbke.service.establish_key` (``attempts``...)."""
    return await establish_key(
        device.endpoints[1],
        partner_nwk=0x0000,
        partner_endpoint=SE_ENDPOINT_ID,
        partner_eui64=app.state.node_info.ieee,
        credentials=ca.issue(eui64_bytes(device.ieee), SUITE1),
        install_key=device.set_link_key,
        **options,
    )


async def test_the_initiator_ignores_an_answer_sent_by_broadcast():
    """A Terminate Key Establishment broadcast from the partner's address with the
    request's number ended the device's exchange (UNKNOWN_ISSUER, do not retry) before the
    partner's own answer came. Now only a unicast answer counts (SE C.4.2): the broadcast is
    ignored and the exchange completes with the partner's unicast answers."""
    app, se, device = await network(61)
    broadcasts: list[int] = []

    async def broadcast_terminate(msg: ZclMessage) -> None:
        if (
            msg.from_server
            or msg.command_id != KeyEstablishmentServerCommand.INITIATE_KEY_ESTABLISHMENT_REQUEST
        ):
            return
        terminate = TerminateKeyEstablishment(
            status=TerminateStatus.UNKNOWN_ISSUER, wait_time=0, suite=SUITE1.id
        )
        await se.send(
            0xFFFD,
            msg.src_ep,
            KEY_ESTABLISHMENT,
            terminate.command_id,
            terminate.encode(),
            direction=foundation.Direction.Server_to_Client,
            tsn=msg.tsn,
            disable_default_response=True,
            encrypt=False,
            dst_mode=t.AddrMode.Broadcast,
        )
        broadcasts.append(msg.tsn)

    se.add_handler(KEY_ESTABLISHMENT, broadcast_terminate)  # runs before the server's
    server(app, se)
    established = await initiate(app, device)
    assert len(broadcasts) == 1
    assert app.get_link_key(device.ieee) == established.key_data
    assert device.link_keys[app.state.node_info.ieee] == established.key_data


async def test_the_server_refuses_a_partner_the_esi_does_not_admit():
    """The server ran CBKE with any joined partner (the ESI could only undo the key
    afterwards). Now ``admit`` decides up front: a refused partner's commands are dropped
    unanswered, no key is computed or installed for it, and it is served once admitted."""
    app, se, device = await network(62)
    admitted: set[t.EUI64] = set()
    ke = server(app, se, admit=admitted.__contains__)
    events: list[KeyEstablishmentEvent] = []
    ke.on_event(events.append)
    install_code_key = app.get_link_key(device.ieee)
    with pytest.raises(KeyEstablishmentFailed) as info:
        await initiate(app, device)
    assert info.value.terminated.timed_out
    assert app.get_link_key(device.ieee) == install_code_key
    assert events == []
    admitted.add(device.ieee)
    established = await initiate(app, device)
    assert app.get_link_key(device.ieee) == established.key_data
    assert [e.partner for e in events] == [device.ieee]
