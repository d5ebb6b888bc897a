"""#13.2: the contract of cores at the ZCL frame (zse.zcl.frame) and the shell's carry_out."""

from __future__ import annotations

import dataclasses

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.services.test_delivery import REQUEST, Recorder
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import ZclMessage, carry_out
from zse.zcl.frame import Send, Step


def test_a_send_goes_to_a_destination_or_in_reply_never_both_or_neither() -> None:
    with pytest.raises(ValueError, match="either"):
        Send(cluster_id=1, command_id=0)
    with pytest.raises(ValueError, match="either"):
        Send(cluster_id=1, command_id=0, to=Destination.device(1), reply_to=REQUEST)


async def test_carry_out_sends_in_order_by_the_delivery_rule_then_emits() -> None:
    """On a real endpoint: the reply goes back with the request's TSN, encrypted as it was;
    the group command goes out with the network key only and no Default Response asked."""
    radio = Recorder()
    emitted: list[object] = []
    step = Step(
        sends=(
            Send(cluster_id=0x0700, command_id=0x00, payload=b"\x01", reply_to=REQUEST),
            Send(cluster_id=0x0700, command_id=0x00, payload=b"\x02", to=Destination.group(5)),
        ),
        events=("done",),
        status=foundation.Status.SUCCESS,
    )
    status = await carry_out(radio, step, emitted.append)
    assert status is foundation.Status.SUCCESS
    reply, group = radio.sent
    assert (reply["dst"], reply["encrypt"]) == (REQUEST.src_nwk, True)
    assert reply["data"] == bytes((0x01 | 0x08 | 0x10, REQUEST.tsn, 0x00, 0x01))
    assert (group["dst_mode"], group["dst"], group["encrypt"]) == (t.AddrMode.Group, 5, False)
    assert group["data"][0] == 0x01 | 0x08 | 0x10  # from the Price server, no Default Response
    assert group["data"][2:] == b"\x00\x02"
    assert emitted == ["done"]


async def test_carry_out_sends_global_commands_as_global_frames() -> None:
    """A core's Report Attributes and Configure Reporting Response leave with frame type 00
    (ZCL 2.4.1.1.1), to a destination and in reply, by the same delivery rule."""
    radio = Recorder()
    report = foundation.GeneralCommand.Report_Attributes
    response = foundation.GeneralCommand.Configure_Reporting_rsp
    step = Step(
        sends=(
            Send(
                cluster_id=0x0700,
                command_id=report,
                payload=b"\x03",
                to=Destination.device(0x1A2B, 1),
                cluster_specific=False,
            ),
            Send(
                cluster_id=0x0700,
                command_id=response,
                payload=b"\x00",
                reply_to=REQUEST,
                cluster_specific=False,
            ),
        )
    )
    await carry_out(radio, step, lambda event: None)
    sent, reply = radio.sent
    assert (sent["dst"], sent["encrypt"]) == (0x1A2B, True)
    assert sent["data"][0] & 0x03 == 0x00
    assert sent["data"][2:] == bytes((report, 0x03))
    assert reply["data"] == bytes((0x08 | 0x10, REQUEST.tsn, response, 0x00))


def _global(command: int) -> ZclMessage:
    return dataclasses.replace(REQUEST, frame_control=0x00, command_id=command, tsn=9)


@pytest.mark.parametrize(
    ("general", "command", "handled"),
    [
        (True, foundation.GeneralCommand.Configure_Reporting, True),
        (True, foundation.GeneralCommand.Report_Attributes, True),
        (True, foundation.GeneralCommand.Read_Attributes, False),
        (True, foundation.GeneralCommand.Write_Attributes, False),
        (False, foundation.GeneralCommand.Configure_Reporting, False),
    ],
)
async def test_a_general_handler_takes_the_clusters_global_commands(
    general: bool, command: int, handled: bool
) -> None:
    """Configure Reporting or Report Attributes go to a handler added with ``general=True``;
    Read and Write Attributes stay the endpoint's; a cluster handler never sees globals."""
    radio = Recorder()
    seen: list[int] = []

    def handler(msg: ZclMessage) -> foundation.Status:
        seen.append(msg.command_id)
        return foundation.Status.INVALID_VALUE

    radio.add_handler(0x0700, handler, general=general)
    await radio._dispatch(_global(command))
    assert seen == ([command] if handled else [])
    if handled:  # the handler's status goes back as a Default Response
        (frame,) = radio.sent
        assert frame["data"][2:] == bytes(
            (foundation.GeneralCommand.Default_Response, command, 0x87)
        )


async def test_a_general_handler_can_be_removed() -> None:
    radio = Recorder()
    seen: list[int] = []
    remove = radio.add_handler(0x0700, lambda msg: seen.append(msg.command_id), general=True)
    remove()
    await radio._dispatch(_global(foundation.GeneralCommand.Configure_Reporting))
    assert seen == []
