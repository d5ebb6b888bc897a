"""``zse esi`` and ``zse interpan`` end to end on bellows' real application, over the fake
serial link to a fake coordinator NCP (tests/cli_sticks/fake_stick.py): start-up to "ESI
running", the SE endpoint registered before the network is up, a provisioning call reaching the
NCP as a transient link key and an open joining window, and inter-PAN frames both ways."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as zt

from tests.cli_sticks.fake_stick import NCP_EUI64, PAN_ID, StickNcp
from tests.cli_sticks.sticks_helpers import (
    CA,
    ESI_CREDENTIALS,
    IHD,
    IHD_CODE,
    Operator,
    ezsp_factory,
)
from tests.interpan.test_interpan_ezsp_transport import VALUE_MAC_PASSTHROUGH_FLAGS
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.cli._radio import esi_descriptor
from zse.cli.esi import run_esi
from zse.cli.interpan import StickOptions, run_listen, run_send
from zse.config import EsiConfig, RadioSettings
from zse.installcode import InstallCode
from zse.interpan import BROADCAST_ADDRESS, DeliveryMode, InterPanFrame
from zse.interpan.se import decode_se, encode_se
from zse.price.wire import Price

RADIO = RadioSettings(radio="ezsp", device="/dev/fake-ncp")


def config(tmp_path: Path, **changes: Any) -> EsiConfig:
    return EsiConfig(radio=RADIO, database=tmp_path / "han.db", **changes)


async def test_esi_starts_and_provisions_on_bellows(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    ncp = StickNcp(8)
    operator = Operator()
    for line in (
        f"provision {IHD} '{IHD_CODE}' --label 'kitchen display' --group street-7",
        "devices",
        "status",
        "quit",
    ):
        operator.type(line)
    status = await run_esi(
        config(tmp_path),
        credentials=[ESI_CREDENTIALS],
        lines=operator.lines(),
        out=operator.out,
        app_factory=ezsp_factory(ncp, serial_link),
    )
    text = operator.text()
    assert status == 0, text
    assert f"coordinator {NCP_EUI64} (NWK 0x0000)" in text
    assert f"PAN 0x{PAN_ID:04X}" in text
    assert "ESI running" in text
    # the SE endpoint was registered with the NCP before its network came up, as the facade
    # describes it (an NCP refuses addEndpoint afterwards)
    registered = ncp.endpoints[9]
    descriptor = esi_descriptor()
    assert registered == {
        "profile": 0x0109,
        "device": 0x0500,
        "in": descriptor.input_clusters,
        "out": descriptor.output_clusters,
    }
    # provisioning: registry, then the install code's key as a transient key, joining open
    assert (
        f"provisioned {IHD} (kitchen display): pending provisioning, joining open for 254 s" in text
    )
    ihd_key = (zt.EUI64.convert(IHD), InstallCode.parse(IHD_CODE).link_key)
    assert ihd_key in ncp.transient_keys
    # only the install code's key: bellows' permit() (zigpy calls permit(0) at start-up) would
    # also add the well-known key for every device; zse.radios.ezsp.se_application does not
    assert set(ncp.transient_keys) == {ihd_key}
    assert ncp.permit_joining[-1] == 254
    assert f"{IHD}  pending provisioning" in text
    assert "registry: 1 pending provisioning" in text
    assert text.endswith("ESI stopped")


async def test_credentials_of_another_device_are_refused(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    ncp = StickNcp(8)
    operator = Operator()
    other = CA.issue(eui64_bytes(zt.EUI64.convert(IHD)), SUITE1)
    errors: list[str] = []
    status = await run_esi(
        config(tmp_path),
        credentials=[other],
        lines=operator.lines(),
        out=operator.out,
        err=errors.append,
        app_factory=ezsp_factory(ncp, serial_link),
    )
    assert status == 2
    assert errors == [
        f"error: the suite 1 credentials are for {IHD} but this radio is {NCP_EUI64}: "
        f"issue credentials for it (zse cert issue --eui64 {NCP_EUI64})"
    ]
    assert not (tmp_path / "han.db").exists()  # nothing was started


async def test_a_stick_without_network_is_reported(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    ncp = StickNcp(8, formed=False)
    operator = Operator()
    options = StickOptions(radio=RADIO, app_factory=ezsp_factory(ncp, serial_link))
    errors: list[str] = []
    status = await run_listen(options, count=1, out=operator.out, err=errors.append)
    assert status == 1
    assert errors == [
        "error: ezsp radio on /dev/fake-ncp has no network: form one with --form "
        "(or [network] form = true)"
    ]


def get_price_frame(seq: int) -> InterPanFrame:
    payload = encode_se(
        Price.ServerCommandDefs.get_current_price,
        {"command_options": 1},
        tsn=seq,
        from_server=False,
    )
    return InterPanFrame(
        src_pan_id=0xFFFF,
        src_ieee=zt.EUI64.convert("00:0d:6f:00:0a:bc:de:f0"),
        dst_pan_id=0xFFFF,
        dst_address=BROADCAST_ADDRESS,
        delivery_mode=DeliveryMode.BROADCAST,
        cluster_id=0x0700,
        payload=payload,
        sequence=seq,
    )


async def test_interpan_listen_prints_decoded_frames(
    serial_link: Callable[..., None],
) -> None:
    ncp = StickNcp(8)
    operator = Operator()
    options = StickOptions(radio=RADIO, app_factory=ezsp_factory(ncp, serial_link))
    listening = asyncio.get_running_loop().create_task(
        run_listen(options, count=2, as_json=False, out=operator.out)
    )
    await operator.sees("listening")
    assert ncp.values[VALUE_MAC_PASSTHROUGH_FLAGS] & 0x01  # SE inter-PAN passthrough on
    ncp.hear(get_price_frame(5).to_bytes())
    not_se = InterPanFrame(
        src_pan_id=0x1234,
        src_ieee=zt.EUI64.convert("00:0d:6f:00:0a:bc:de:f1"),
        dst_pan_id=0xFFFF,
        dst_address=BROADCAST_ADDRESS,
        delivery_mode=DeliveryMode.BROADCAST,
        cluster_id=0x0702,
        payload=b"\x01\x09\x00",
    )
    ncp.hear(not_se.to_bytes())
    assert await asyncio.wait_for(listening, 30) == 0
    heard = [line for line in operator.output if "PAN 0x" in line and "->" in line]
    assert heard[0].endswith(
        "00:0d:6f:00:0a:bc:de:f0 PAN 0xFFFF -> broadcast PAN 0xFFFF Price "
        "get_current_price tsn 5: command_options=Requestor_Rx_On_When_Idle"
    )
    assert (
        "cluster 0x0702: inter-PAN frame from 00:0d:6f:00:0a:bc:de:f1 (PAN 0x1234): "
        "cluster 0x0702 is not Price or Messaging [010900]" in heard[1]
    )
    assert operator.output[-1] == "2 frames"


async def test_interpan_send_message_and_unanswered_get_price(
    serial_link: Callable[..., None],
) -> None:
    ncp = StickNcp(8)
    operator = Operator()
    options = StickOptions(radio=RADIO, app_factory=ezsp_factory(ncp, serial_link))
    status = await run_send(
        options,
        "message",
        text="Peak from 17:00",
        message_id=7,
        to=IHD,
        pan=0x2222,
        out=operator.out,
    )
    assert status == 0, operator.text()
    ((_frame_id, raw),) = ncp.sent_raw
    sent = InterPanFrame.from_bytes(raw)
    assert (sent.src_ieee, sent.src_pan_id) == (NCP_EUI64, PAN_ID)
    assert (sent.dst_address, sent.dst_pan_id) == (zt.EUI64.convert(IHD), 0x2222)
    command = decode_se(sent)
    assert command.name == "display_message"
    assert (command.fields.message_id, command.fields.message) == (7, "Peak from 17:00")
    assert operator.output[-1] == f"Display Message 7 sent to {IHD} (PAN 0x2222): 'Peak from 17:00'"

    ncp2 = StickNcp(8)
    operator2 = Operator()
    options2 = StickOptions(radio=RADIO, app_factory=ezsp_factory(ncp2, serial_link))
    status = await run_send(options2, "get-price", wait=2.0, out=operator2.out)
    assert status == 1
    assert operator2.output[-1] == "no Publish Price within 2 s"
    assert decode_se(InterPanFrame.from_bytes(ncp2.sent_raw[0][1])).name == "get_current_price"


@pytest.mark.parametrize("channel", [20])
async def test_interpan_channel_needs_zstack(
    serial_link: Callable[..., None], channel: int
) -> None:
    ncp = StickNcp(8)
    operator = Operator()
    options = StickOptions(radio=RADIO, channel=channel, app_factory=ezsp_factory(ncp, serial_link))
    errors: list[str] = []
    assert await run_listen(options, count=1, out=operator.out, err=errors.append) == 2
    assert len(errors) == 1
    assert errors[0].startswith("error: --channel needs Z-Stack (InterPanCtl)")
