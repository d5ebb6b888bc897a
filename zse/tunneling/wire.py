"""Tunneling cluster, 0x0704 (SE 1.2 D.6), declared once on zigpy's ZCL.

A client (a HAN device, or an installer's terminal) asks the server (the ESI or hub) for a
tunnel of one protocol; both sides then move opaque octets with Transfer Data, acknowledge them
when flow control is on (Ack Transfer Data carries the receive window left), restart a stopped
flow with Ready Data, and report a Transfer Data that cannot be taken (Transfer Data Error).
Field layouts were checked against Wireshark's ``packet-zbee-zcl-se.c`` Tunneling dissector
(the SE 1.2 text itself was out of reach); the tests dissect every command with tshark.
Get Supported Tunnel Protocols (D.6.2.4.7, server 0x06) carries a one-octet protocol offset,
as zsmartsystems' SE command definitions (generated from the SE text) give it; Wireshark's
dissector asks for two octets of an 8-bit field and shows the one there (tested). Its response
(D.6.2.5.5, client 0x05): the list complete flag, the count and as many (manufacturer code,
protocol id) pairs.
"""

from __future__ import annotations

from typing import Final

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import BaseAttributeDefs, BaseCommandDefs, ZCLAttributeDef

from zse.se.ids import (
    TUNNELING,
    TunnelingAttribute,
    TunnelingClientCommand,
    TunnelingServerCommand,
)
from zse.zcl._defs import attribute, cluster_id, command

__all__ = ["SupportedProtocol", "SupportedProtocolList", "Tunneling"]

_ID = {"tunnel_id": t.uint16_t}
_DATA = {"tunnel_id": t.uint16_t, "data": t.Bytes}
_ERROR = {"tunnel_id": t.uint16_t, "transfer_data_status": t.uint8_t}
_WINDOW = {"tunnel_id": t.uint16_t, "number_of_bytes_left": t.uint16_t}


class SupportedProtocol(t.Struct):
    """One protocol of Supported Tunnel Protocols Response (D.6.2.5.5): manufacturer code
    (0xFFFF: a standard protocol) and protocol id."""

    manufacturer_code: t.uint16_t
    protocol_id: t.uint8_t


class SupportedProtocolList(t.List[SupportedProtocol]):
    """The protocol list, to the end of the frame (as many as the protocol count says)."""


class Tunneling(Cluster):
    """Tunneling (SE D.6); attach explicitly, it is not in zigpy's registry."""

    cluster_id = cluster_id(TUNNELING)
    name = "Tunneling"
    ep_attribute = "smartenergy_tunneling"
    _skip_registry = True

    class AttributeDefs(BaseAttributeDefs):
        """Server attributes (D.6.2.2)."""

        close_tunnel_timeout: Final[ZCLAttributeDef] = attribute(
            TunnelingAttribute.CLOSE_TUNNEL_TIMEOUT, t.uint16_t, "r"
        )

    class ServerCommandDefs(BaseCommandDefs):
        """Commands the server receives (D.6.2.4)."""

        request_tunnel: Final = command(
            TunnelingServerCommand.REQUEST_TUNNEL,
            {
                "protocol_id": t.uint8_t,
                "manufacturer_code": t.uint16_t,
                "flow_control_support": t.Bool,
                "maximum_incoming_transfer_size": t.uint16_t,
            },
        )
        close_tunnel: Final = command(TunnelingServerCommand.CLOSE_TUNNEL, _ID)
        transfer_data: Final = command(TunnelingServerCommand.TRANSFER_DATA, _DATA)
        transfer_data_error: Final = command(TunnelingServerCommand.TRANSFER_DATA_ERROR, _ERROR)
        ack_transfer_data: Final = command(TunnelingServerCommand.ACK_TRANSFER_DATA, _WINDOW)
        ready_data: Final = command(TunnelingServerCommand.READY_DATA, _WINDOW)
        get_supported_tunnel_protocols: Final = command(
            TunnelingServerCommand.GET_SUPPORTED_TUNNEL_PROTOCOLS, {"protocol_offset": t.uint8_t}
        )

    class ClientCommandDefs(BaseCommandDefs):
        """Commands the server sends (D.6.2.5)."""

        request_tunnel_response: Final = command(
            TunnelingClientCommand.REQUEST_TUNNEL_RESPONSE,
            {
                "tunnel_id": t.uint16_t,
                "tunnel_status": t.uint8_t,
                "maximum_incoming_transfer_size": t.uint16_t,
            },
        )
        transfer_data: Final = command(TunnelingClientCommand.TRANSFER_DATA, _DATA)
        transfer_data_error: Final = command(TunnelingClientCommand.TRANSFER_DATA_ERROR, _ERROR)
        ack_transfer_data: Final = command(TunnelingClientCommand.ACK_TRANSFER_DATA, _WINDOW)
        ready_data: Final = command(TunnelingClientCommand.READY_DATA, _WINDOW)
        supported_tunnel_protocols_response: Final = command(
            TunnelingClientCommand.SUPPORTED_TUNNEL_PROTOCOLS_RESPONSE,
            {
                "protocol_list_complete": t.Bool,
                "protocol_count": t.uint8_t,
                "protocol_list": SupportedProtocolList,
            },
        )
        tunnel_closure_notification: Final = command(
            TunnelingClientCommand.TUNNEL_CLOSURE_NOTIFICATION, _ID
        )
