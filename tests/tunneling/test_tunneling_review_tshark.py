"""The frames the Tunneling cores (SE D.6) build in answer to a client, as Wireshark's
Tunneling dissector reads them: a refusal, the Transfer Data Errors and a protocol list paged
at 15 (D.6.2.5.5). The other tests dissect the wire declarations; these dissect the cores."""

from __future__ import annotations

import pytest

from tests.clusters.se_frames import air_frame, dissect, zcl_frame
from tests.tunneling.test_tunneling_protocol import (
    DATA,
    MFR_PROTOCOL,
    OTHER,
    REQUEST,
    frame,
    request,
    server_open,
)
from zse.se.ids import TUNNELING
from zse.tunneling.protocol import TunnelServerProtocol

GET_SUPPORTED = 0x06


@pytest.mark.oracle
def test_the_server_cores_answers_dissect_with_the_same_fields(tmp_path):
    protocols = {(pid, 0xFFFF) for pid in range(16)}
    core = TunnelServerProtocol(protocols | {MFR_PROTOCOL}, max_incoming=80)
    tid = server_open(core)
    tid_le = tid.to_bytes(2, "little")
    sends = [
        # protocol 200 of another manufacturer: refused, tunnel id 0xFFFF (D.6.2.5.1)
        core.receive(*frame(REQUEST, request(protocol=(200, 0x4321))), now=0).sends[0],
        core.receive(*frame(DATA, (tid ^ 1).to_bytes(2, "little") + b"x"), now=1).sends[0],
        core.receive(*frame(DATA, tid_le + b"x", ieee=OTHER, nwk=0x3333), now=1).sends[0],
        core.receive(*frame(DATA, tid_le + bytes(81)), now=1).sends[0],
        core.receive(*frame(DATA, tid_le + bytes(30)), now=1).sends[0],
        core.receive(*frame(GET_SUPPORTED, b"\x00"), now=2).sends[0],
        core.receive(*frame(GET_SUPPORTED, b"\x0f"), now=2).sends[0],
    ]
    frames = [
        air_frame(TUNNELING, zcl_frame(s.command_id, s.payload, from_server=True, tsn=i), i)
        for i, s in enumerate(sends)
    ]
    refused, no_such, wrong, overflow, ack, first, rest = dissect(frames, tmp_path)
    assert not any(p.malformed for p in (refused, no_such, wrong, overflow, ack, first, rest))
    assert refused.show("zbee_zcl_se.tun.tunnel_id") == ["0xffff"]
    assert refused.show("zbee_zcl_se.tun.transfer_status") == ["0x03"]  # Protocol Not Supported
    assert refused.show("zbee_zcl_se.tun.max_in_transfer_size") == ["0x0050"]
    for packet, status in ((no_such, "0x00"), (wrong, "0x01"), (overflow, "0x02")):
        assert packet.show("zbee_zcl_se.tun.transfer_data_status") == [status]
    assert no_such.show("zbee_zcl_se.tun.tunnel_id") == [f"0x{tid ^ 1:04x}"]
    assert wrong.show("zbee_zcl_se.tun.tunnel_id") == [f"0x{tid:04x}"]
    assert ack.show("zbee_zcl_se.tun.octets_left") == ["0x0032"]  # 80 - 30
    # 17 protocols: 15, then the last 2 with the list complete, by protocol id
    assert first.show("zbee_zcl_se.tun.protocol_list_complete") == ["0"]
    assert first.show("zbee_zcl_se.tun.protocol_count") == ["0x0f"]
    assert first.show("zbee_zcl_se.tun.protocol_id") == [f"0x{pid:02x}" for pid in range(15)]
    assert rest.show("zbee_zcl_se.tun.protocol_list_complete") == ["1"]
    assert rest.show("zbee_zcl_se.tun.protocol_id") == ["0x0f", "0xc8"]
    assert rest.show("zbee_zcl_se.tun.manufacturer_code") == ["0xffff", "0x1234"]
