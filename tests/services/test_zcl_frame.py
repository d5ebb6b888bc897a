"""#13.2: the contract of cores at the ZCL frame (zse.zcl.frame) and the shell's carry_out."""

from __future__ import annotations

from typing import Any

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from zse.zcl.delivery import Destination
from zse.zcl.endpoint import carry_out
from zse.zcl.frame import Send, Step, ZclMessage

REQUEST = ZclMessage(
    src_nwk=0x1234,
    src_ieee=t.EUI64.convert("00:0d:6f:00:0a:00:00:01"),
    src_ep=1,
    dst_ep=9,
    cluster_id=0x0700,
    profile_id=0x0109,
    frame_control=0x01,
    manufacturer=None,
    tsn=7,
    command_id=0x00,
    payload=b"",
    aps_encrypted=True,
    group=None,
    broadcast=False,
    timestamp=0.0,
)


class RecordingPort:
    """An endpoint that records what it is asked to send (the shell's side of the contract)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def send(self, dst: int, dst_ep: int, cluster_id: int, command_id: int,
                   payload: bytes = b"", **kwargs: Any) -> int:  # fmt: skip
        self.calls.append(("send", dst, dst_ep, cluster_id, command_id, payload, kwargs))
        return 1

    async def reply(self, msg: ZclMessage, command_id: int, payload: bytes = b"", **_: Any) -> None:
        self.calls.append(("reply", msg.tsn, command_id, payload))


def test_a_send_goes_to_a_destination_or_in_reply_never_both_or_neither() -> None:
    with pytest.raises(ValueError, match="either"):
        Send(cluster_id=1, command_id=0)
    with pytest.raises(ValueError, match="either"):
        Send(cluster_id=1, command_id=0, to=Destination.device(1), reply_to=REQUEST)


def test_steps_add_up_in_order_and_the_later_status_wins() -> None:
    first = Step(sends=(Send(cluster_id=1, command_id=0, reply_to=REQUEST),), events=("a",))
    second = Step(events=("b",), status=foundation.Status.NOT_FOUND)
    total = first + second
    assert total.events == ("a", "b")
    assert total.sends == first.sends
    assert total.status is foundation.Status.NOT_FOUND
    assert (total + Step()).status is foundation.Status.NOT_FOUND


async def test_carry_out_sends_in_order_by_the_delivery_rule_then_emits() -> None:
    port = RecordingPort()
    emitted: list[Any] = []
    step = Step(
        sends=(
            Send(cluster_id=0x0700, command_id=0x00, payload=b"\x01", reply_to=REQUEST),
            Send(cluster_id=0x0700, command_id=0x00, payload=b"\x02", to=Destination.group(5)),
        ),
        events=("done",),
        status=foundation.Status.SUCCESS,
    )
    status = await carry_out(port, step, emitted.append)
    assert status is foundation.Status.SUCCESS
    assert port.calls[0] == ("reply", 7, 0x00, b"\x01")
    kind, dst, _, _, _, payload, kwargs = port.calls[1]
    assert (kind, dst, payload) == ("send", 5, b"\x02")
    assert kwargs["dst_mode"] == t.AddrMode.Group
    assert kwargs["encrypt"] is False  # a group frame: network key only
    assert kwargs["disable_default_response"] is True
    assert emitted == ["done"]
