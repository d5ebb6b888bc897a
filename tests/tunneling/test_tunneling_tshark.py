"""Every Tunneling command (SE D.6) encoded from ``zse.tunneling.wire`` and from the cores, as
Wireshark's Tunneling dissector reads it: the same field values, no malformed packet."""

from __future__ import annotations

import zigpy.types as t

from tests.clusters.se_frames import air_frame, dissect, zcl_frame
from zse.tunneling.wire import SupportedProtocol, SupportedProtocolList, Tunneling
from zse.zcl.codec import encode_command

TUNNELING = 0x0704
S = Tunneling.ServerCommandDefs
C = Tunneling.ClientCommandDefs

#: (definition, sent by the server, fields, tshark field -> show)
CASES = [
    (
        S.request_tunnel,
        False,
        {
            "protocol_id": 200,
            "manufacturer_code": 0x1234,
            "flow_control_support": t.Bool.true,
            "maximum_incoming_transfer_size": 1500,
        },
        {
            "protocol_id": "0xc8",
            "manufacturer_code": "0x1234",
            "flow_control_supported": "1",
            "max_in_transfer_size": "0x05dc",
        },
    ),
    (S.close_tunnel, False, {"tunnel_id": 7}, {"tunnel_id": "0x0007"}),
    (
        S.transfer_data,
        False,
        {"tunnel_id": 7, "data": t.Bytes(b"\x01\x02abc")},
        {"tunnel_id": "0x0007"},
    ),
    (
        S.transfer_data_error,
        False,
        {"tunnel_id": 7, "transfer_data_status": 2},
        {"tunnel_id": "0x0007", "transfer_data_status": "0x02"},
    ),
    (
        S.ack_transfer_data,
        False,
        {"tunnel_id": 7, "number_of_bytes_left": 300},
        {"tunnel_id": "0x0007", "octets_left": "0x012c"},
    ),
    (
        S.ready_data,
        False,
        {"tunnel_id": 7, "number_of_bytes_left": 0},
        {"tunnel_id": "0x0007", "octets_left": "0x0000"},
    ),
    (
        C.request_tunnel_response,
        True,
        {"tunnel_id": 7, "tunnel_status": 3, "maximum_incoming_transfer_size": 80},
        {"tunnel_id": "0x0007", "transfer_status": "0x03", "max_in_transfer_size": "0x0050"},
    ),
    (C.transfer_data, True, {"tunnel_id": 7, "data": t.Bytes(b"reply")}, {"tunnel_id": "0x0007"}),
    (
        C.transfer_data_error,
        True,
        {"tunnel_id": 7, "transfer_data_status": 1},
        {"tunnel_id": "0x0007", "transfer_data_status": "0x01"},
    ),
    (
        C.ack_transfer_data,
        True,
        {"tunnel_id": 7, "number_of_bytes_left": 5},
        {"tunnel_id": "0x0007", "octets_left": "0x0005"},
    ),
    (
        C.ready_data,
        True,
        {"tunnel_id": 7, "number_of_bytes_left": 64},
        {"tunnel_id": "0x0007", "octets_left": "0x0040"},
    ),
    (C.tunnel_closure_notification, True, {"tunnel_id": 7}, {"tunnel_id": "0x0007"}),
    (S.get_supported_tunnel_protocols, False, {"protocol_offset": 3}, {"protocol_offset": "0x03"}),
    (
        C.supported_tunnel_protocols_response,
        True,
        {
            "protocol_list_complete": t.Bool.true,
            "protocol_count": 2,
            "protocol_list": SupportedProtocolList(
                [
                    SupportedProtocol(manufacturer_code=0xFFFF, protocol_id=2),
                    SupportedProtocol(manufacturer_code=0xFFF1, protocol_id=200),
                ]
            ),
        },
        {"protocol_list_complete": "1", "protocol_count": "0x02"},
    ),
]


def test_every_tunneling_command_dissects(tmp_path):
    frames = [
        air_frame(
            TUNNELING,
            zcl_frame(
                int(definition.id),
                encode_command(definition.schema(**fields)),
                from_server=from_server,
                tsn=index,
            ),
            index,
        )
        for index, (definition, from_server, fields, _) in enumerate(CASES)
    ]
    packets = dissect(frames, tmp_path)
    assert len(packets) == len(CASES)
    for packet, (definition, from_server, _, show) in zip(packets, CASES, strict=True):
        assert not packet.malformed, definition.name
        side = "srv_tx" if from_server else "srv_rx"
        assert packet.show(f"zbee_zcl_se.tun.cmd.{side}.id") == [f"0x{int(definition.id):02x}"]
        for name, value in show.items():
            assert packet.show(f"zbee_zcl_se.tun.{name}") == [value], (definition.name, name)
    # Wireshark 4 hands Transfer Data to its GBCS tunnel dissector (GB Companion Specification
    # tunnel commands), which reads the first data octet as the command
    assert packets[2].show("gbcs_tunnel.command") == ["0x01"]
    # the protocol list of Supported Tunnel Protocols Response, pair by pair
    response = packets[-1]
    assert response.show("zbee_zcl_se.tun.protocol_id") == ["0x02", "0xc8"]
    assert response.raw("zbee_zcl_se.tun.manufacturer_code")[1:] == ["f1ff"]
