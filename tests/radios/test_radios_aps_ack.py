"""The ESI's unicasts reach the radio asking for APS acknowledgements and retries (ZB
2.2.8.4.1); its broadcasts and group frames do not. Real bellows and zigpy-znp, over the fake
serial links the other radio tests use; only the port is fake.

- EmberZNet (bellows): ``sendUnicast``'s ``apsFrame.options`` has APS_OPTION_RETRY (UG100:
  "Resend the message using the APS retry mechanism", which sets the frame's ack request);
  ``sendBroadcast`` and ``sendMulticast`` have none.
- Z-Stack (zigpy-znp): ``AF.DataRequestExt``'s Options has ACK_REQUEST (0x10, Z-Stack Monitor
  and Test API); a broadcast's and a group frame's have not.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import bellows.types as bt
import pytest
import zigpy.config
import zigpy.types as zt
import zigpy_znp.commands as c
import zigpy_znp.config as znp_conf
import zigpy_znp.types as znp_t
from zigpy_znp.zigbee.application import ControllerApplication as ZnpApplication

from tests.cli_sticks.fake_stick import StickNcp
from tests.cli_sticks.sticks_helpers import ESI_CREDENTIALS, ezsp_factory
from tests.interpan.test_interpan_znp_transport import AF, AREQ, SRSP, FakeZStack
from tests.radios.test_radios_znp_link_key import connect_znp
from zse.cli._radio import RadioOptions
from zse.config import NetworkSettings, RadioSettings
from zse.messaging import Message
from zse.roles.esi import EnergyServiceInterface
from zse.zcl.delivery import Destination
from zse.zcl.se_endpoint import SeEndpoint

MESSAGING = 0x0703
DEVICE_NWK, DEVICE_EP, GROUP = 0x1A2B, 1, 0x0E01
RETRY = int(bt.EmberApsOption.APS_OPTION_RETRY)
#: Z-Stack's AF transmit options (Z-Stack Monitor and Test API, AF_DATA_REQUEST_EXT Options):
#: an APS acknowledgement asked for, APS security.
ACK_REQUEST, ENABLE_SECURITY = 0x10, 0x40


async def _ezsp_sends(ncp: StickNcp, link: Callable[..., None], **options: Any) -> None:
    """An ESI on bellows' application over the fake serial link to ``ncp`` sends a Display
    Message to a device, to a group and as a broadcast."""
    radio = RadioOptions(
        radio=RadioSettings(radio="ezsp", device="/dev/fake-ncp"), network=NetworkSettings()
    )
    app = await ezsp_factory(ncp, link)(radio)
    esi = EnergyServiceInterface(app, credentials=[ESI_CREDENTIALS], **options)
    await esi.start()
    try:
        message = Message(message_id=7, text="Peak at 5pm", duration_in_minutes=60)
        for to in (
            Destination.device(DEVICE_NWK, DEVICE_EP),
            Destination.group(GROUP),
            Destination.broadcast(),
        ):
            await esi.messaging.send_display(message, to)
    finally:
        await esi.stop()
        await app.shutdown()


def _ezsp_frames(ncp: StickNcp) -> dict[str, list[Any]]:
    """The APS frames of the NCP's send commands, by command, on the Messaging cluster."""
    frames: dict[str, list[Any]] = {}
    for name, request in ncp.requests:
        if name in ("sendUnicast", "sendMulticast", "sendBroadcast"):
            aps = request["apsFrame"]
            if aps.clusterId == MESSAGING:
                frames.setdefault(name, []).append(aps)
    return frames


async def test_an_ezsp_esi_unicast_asks_for_aps_retries(serial_link: Callable[..., None]) -> None:
    ncp = StickNcp(8)
    await _ezsp_sends(ncp, serial_link)
    frames = _ezsp_frames(ncp)
    (unicast,) = frames["sendUnicast"]
    (multicast,) = frames["sendMulticast"]
    (broadcast,) = frames["sendBroadcast"]
    assert int(unicast.options) & RETRY
    assert int(unicast.options) & int(bt.EmberApsOption.APS_OPTION_ENCRYPTION)  # SE 5.4.6
    assert not int(multicast.options) & RETRY
    assert not int(broadcast.options) & RETRY
    assert (unicast.destinationEndpoint, multicast.groupId) == (DEVICE_EP, GROUP)


async def test_an_ezsp_esi_without_aps_acks_asks_for_no_retries(
    serial_link: Callable[..., None],
) -> None:
    ncp = StickNcp(8)
    await _ezsp_sends(ncp, serial_link, aps_ack=False)
    (unicast,) = _ezsp_frames(ncp)["sendUnicast"]
    assert not int(unicast.options) & RETRY


class DataZStack(FakeZStack):
    """The fake Z-Stack, delivering every AF.DataRequestExt (not only inter-PAN ones): an SRSP
    of SUCCESS, then AF.DataConfirm SUCCESS with the request's endpoint and TSN."""

    def _data_request_ext(self, data: bytes) -> None:
        mode = data[0]
        dst_ep, _dst_pan, src_ep, cluster, tsn, options, _radius, length = struct.unpack_from(
            "<BHBHBBBH", data, 9
        )
        self.data_requests.append(
            {
                "mode": mode,
                "address": int.from_bytes(data[1:3], "little"),
                "dst_ep": dst_ep,
                "cluster": cluster,
                "options": options,
                "payload": data[20 : 20 + length],
            }
        )
        self._send(SRSP | AF, 0x02, b"\x00")
        self._send(AREQ | AF, 0x80, bytes([0x00, src_ep, tsn]))


@pytest.mark.parametrize("aps_ack", [True, False], ids=["aps-ack", "no-aps-ack"])
async def test_a_zstack_esi_unicast_asks_for_an_aps_ack(
    serial_link: Callable[..., None], aps_ack: bool
) -> None:
    radio = DataZStack()
    api = await connect_znp(serial_link, radio)
    app = ZnpApplication(
        {
            zigpy.config.CONF_DEVICE: {zigpy.config.CONF_DEVICE_PATH: "/dev/fake-zstack"},
            znp_conf.CONF_ZNP_CONFIG: {znp_conf.CONF_PREFER_ENDPOINT_1: False},
        }
    )
    # what zigpy-znp's start sets on a running application: the link, the firmware's version
    app._znp = api
    app._version_rsp = c.SYS.Version.Rsp(
        TransportRev=2, ProductId=1, MajorRel=2, MinorRel=7, MaintRel=1, CodeRevision=20230507
    )
    ieee = zt.EUI64.convert("00:12:4b:00:00:00:00:01")
    app.state.node_info = app.state.node_info.replace(ieee=ieee, nwk=zt.NWK(0x0000))
    app.add_device(ieee, 0x0000)
    se = SeEndpoint(app, in_clusters=[MESSAGING], aps_ack=aps_ack)
    try:
        await se.send(DEVICE_NWK, DEVICE_EP, MESSAGING, 0x00, b"\x07")
        await se.send(0xFFFD, 0xFF, MESSAGING, 0x00, b"\x07", dst_mode=zt.AddrMode.Broadcast)
        await se.send(GROUP, 0xFF, MESSAGING, 0x00, b"\x07", dst_mode=zt.AddrMode.Group)
    finally:
        api.close()
    unicast, broadcast, group = radio.data_requests
    assert (unicast["mode"], unicast["address"]) == (int(znp_t.AddrMode.NWK), DEVICE_NWK)
    assert bool(unicast["options"] & ACK_REQUEST) is aps_ack
    assert unicast["options"] & ENABLE_SECURITY  # SE 5.4.6
    assert broadcast["mode"] == int(znp_t.AddrMode.Broadcast)
    assert group["mode"] == int(znp_t.AddrMode.Group)
    assert not broadcast["options"] & ACK_REQUEST
    assert not group["options"] & ACK_REQUEST
