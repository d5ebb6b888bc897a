"""#13.2: the contract of cores at the ZCL frame (zse.zcl.frame) and the shell's carry_out."""

from __future__ import annotations

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.services.test_delivery import REQUEST, Recorder
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import carry_out
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
