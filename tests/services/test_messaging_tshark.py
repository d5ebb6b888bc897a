"""The Messaging services' frames as captured on the simulator, read back by Wireshark."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from tests.oracles import require, zigbee_key_options
from tests.services.test_messaging_service import han
from zse.messaging import Message
from zse.messaging.service import DeviceAddress, MessagingClient
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

FIELDS = [
    "zbee_zcl_se.msg.cmd.srv_tx.id",
    "zbee_zcl_se.msg.cmd.srv_rx.id",
    "zbee_zcl_se.msg.message.id",
    "zbee_zcl_se.msg.message.duration",
    "zbee_zcl_se.msg.message",
    "zbee_zcl_se.msg.message.ext.ctrl.status",
]


def tshark(path, *args: str) -> str:
    return subprocess.run(
        [require("tshark"), "-r", str(path), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


@pytest.mark.oracle
async def test_display_confirm_get_last_cancel_as_wireshark_reads_them(tmp_path):
    capture = tmp_path / "messaging.pcap"
    air, _, _, server, [(dev, ep)], clock = await han(60, capture=capture)
    client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock)
    await client.start()  # Get Message Cancellation, Get Last Message: NOT_FOUND for both
    address = DeviceAddress(nwk=dev.nwk, ieee=dev.ieee, endpoint=1)
    # 57 octets, the unicast maximum (ASCII: tshark 4.0 shows ZCL strings as ASCII)
    text = "Critical peak 17:00-19:00, please reduce use. " + "x" * 11
    await server.display(
        Message(message_id=0x0A0B0C0D, text=text, duration_in_minutes=90,
                confirmation_required=True),
        device=address,
    )  # fmt: skip
    await asyncio.sleep(1)
    await client.confirm(0x0A0B0C0D)
    await asyncio.sleep(120)
    await client.fetch()  # Get Last Message: start now, 88 minutes left, confirmed
    await server.cancel(0x0A0B0C0D, device=address)
    await asyncio.sleep(1)
    await client.stop()
    air.close()
    keys = zigbee_key_options(entry.line() for entry in air.keys)  # NWK/APS security (#15.1)

    assert tshark(capture, *keys, "-Y", "zbee_zcl and (_ws.malformed or _ws.expert)") == ""
    rows = [
        line.split("\t")
        for line in tshark(
            capture,
            *keys,
            "-Y",
            "zbee_aps.cluster == 0x0703 and zbee_zcl.type == 1",  # Messaging commands
            "-T",
            "fields",
            *[x for f in FIELDS for x in ("-e", f)],
        ).splitlines()
    ]
    assert rows == [
        ["", "0x02", "", "", "", ""],  # Get Message Cancellation
        ["", "0x00", "", "", "", ""],  # Get Last Message
        ["0x00", "", "0x0a0b0c0d", "90", text, ""],  # Display Message (no extended control)
        ["", "0x01", "0x0a0b0c0d", "", "", ""],  # Message Confirmation
        ["", "0x02", "", "", "", ""],  # Get Message Cancellation
        ["", "0x00", "", "", "", ""],  # Get Last Message
        ["0x00", "", "0x0a0b0c0d", "88", text, "1"],  # the answer: remaining time, confirmed
        ["0x01", "", "0x0a0b0c0d", "", "", ""],  # Cancel Message (control 0x00)
    ]
