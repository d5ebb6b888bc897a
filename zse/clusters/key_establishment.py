"""Key Establishment cluster, 0x0800 (SE C.3).

The identity (certificate), ephemeral data (public point) and MAC run to the end of the frame:
their length depends on the suite negotiated (48/74-byte certificates, 22/37-byte points,
16-byte MACs), which the key establishment core in :mod:`zse.cbke` checks exactly.
"""

from __future__ import annotations

from typing import Final

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import BaseAttributeDefs, BaseCommandDefs

from zse.clusters._defs import attribute, cluster_id, command
from zse.clusters.types import KeyEstablishmentSuite, TerminateStatus

__all__ = ["KeyEstablishment"]

_INITIATE = {
    "key_establishment_suite": KeyEstablishmentSuite,
    "ephemeral_data_generate_time": t.uint8_t,
    "confirm_key_generate_time": t.uint8_t,
    "identity": t.Bytes,
}
_TERMINATE = {
    "status_code": TerminateStatus,
    "wait_time": t.uint8_t,
    "key_establishment_suite": KeyEstablishmentSuite,
}


class KeyEstablishment(Cluster):
    """Key Establishment (SE C.3); attach explicitly, it is not in zigpy's registry."""

    cluster_id = cluster_id(0x0800)
    name = "Key Establishment"
    ep_attribute = "key_establishment"
    _skip_registry = True

    class AttributeDefs(BaseAttributeDefs):
        """KeyEstablishmentSuite, on both sides (C.3.1.1.1, C.3.2.1.1)."""

        key_establishment_suite: Final = attribute(0x0000, KeyEstablishmentSuite, "r")

    class ServerCommandDefs(BaseCommandDefs):
        """Commands the responder (server) receives from the initiator (C.3.1.3)."""

        initiate_key_establishment_request: Final = command(0x00, _INITIATE)
        ephemeral_data_request: Final = command(0x01, {"ephemeral_data": t.Bytes})
        confirm_key_data_request: Final = command(
            0x02, {"secure_message_authentication_code": t.Bytes}
        )
        terminate_key_establishment: Final = command(0x03, _TERMINATE)

    class ClientCommandDefs(BaseCommandDefs):
        """Commands the responder (server) sends to the initiator (C.3.1.4)."""

        initiate_key_establishment_response: Final = command(0x00, dict(_INITIATE))
        ephemeral_data_response: Final = command(0x01, {"ephemeral_data": t.Bytes})
        confirm_key_data_response: Final = command(
            0x02, {"secure_message_authentication_code": t.Bytes}
        )
        terminate_key_establishment: Final = command(0x03, dict(_TERMINATE))
