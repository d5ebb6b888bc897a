"""Deprecated zigpy view of Key Establishment (SE C.3); the wire is :mod:`zse.cbke.messages`.

zse sends and receives Key Establishment through :mod:`zse.cbke.messages` (the single KE wire);
no zigpy cluster object is needed. This view, built from the ids and types of :mod:`zse.se`,
stays importable (``zse.clusters.KeyEstablishment``) with a DeprecationWarning for one release.

The identity (certificate), ephemeral data (public point) and MAC run to the end of the frame:
their length depends on the suite negotiated (48/74-byte certificates, 22/37-byte points,
16-byte MACs), which the key establishment core in :mod:`zse.cbke` checks exactly.
"""

from __future__ import annotations

import warnings
from typing import Final

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import BaseAttributeDefs, BaseCommandDefs

from zse.se.ids import (
    KE_SUITE_ATTRIBUTE,
    KEY_ESTABLISHMENT,
    KeyEstablishmentClientCommand,
    KeyEstablishmentServerCommand,
)
from zse.se.types import KEY_ESTABLISHMENT_SUITE_TYPE, KeyEstablishmentSuite
from zse.zcl._defs import attribute, cluster_id, command

__all__ = ["KeyEstablishment"]  # noqa: F822 (module __getattr__, deprecated)


def __getattr__(name: str) -> type[Cluster]:
    """``KeyEstablishment``, with a DeprecationWarning (the wire is zse.cbke.messages)."""
    if name == "KeyEstablishment":
        warnings.warn(
            "zse.clusters.KeyEstablishment is deprecated: the Key Establishment wire is "
            "zse.cbke.messages",
            DeprecationWarning,
            stacklevel=2,
        )
        return _KeyEstablishment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_INITIATE = {
    "key_establishment_suite": KeyEstablishmentSuite,
    "ephemeral_data_generate_time": t.uint8_t,
    "confirm_key_generate_time": t.uint8_t,
    "identity": t.Bytes,
}
_TERMINATE = {
    "status_code": t.uint8_t,  # a TerminateStatus (zse.se.types)
    "wait_time": t.uint8_t,
    "key_establishment_suite": KeyEstablishmentSuite,
}


class _KeyEstablishment(Cluster):
    """Key Establishment (SE C.3); attach explicitly, it is not in zigpy's registry."""

    cluster_id = cluster_id(KEY_ESTABLISHMENT)
    name = "Key Establishment"
    ep_attribute = "key_establishment"
    _skip_registry = True

    class AttributeDefs(BaseAttributeDefs):
        """KeyEstablishmentSuite, on both sides (C.3.1.1.1, C.3.2.1.1): enum16 on the air."""

        key_establishment_suite: Final = attribute(
            KE_SUITE_ATTRIBUTE, KeyEstablishmentSuite, "r", KEY_ESTABLISHMENT_SUITE_TYPE
        )

    class ServerCommandDefs(BaseCommandDefs):
        """Commands the responder (server) receives from the initiator (C.3.1.3)."""

        initiate_key_establishment_request: Final = command(
            KeyEstablishmentServerCommand.INITIATE_KEY_ESTABLISHMENT_REQUEST, _INITIATE
        )
        ephemeral_data_request: Final = command(
            KeyEstablishmentServerCommand.EPHEMERAL_DATA_REQUEST, {"ephemeral_data": t.Bytes}
        )
        confirm_key_data_request: Final = command(
            KeyEstablishmentServerCommand.CONFIRM_KEY_DATA_REQUEST,
            {"secure_message_authentication_code": t.Bytes},
        )
        terminate_key_establishment: Final = command(
            KeyEstablishmentServerCommand.TERMINATE_KEY_ESTABLISHMENT, _TERMINATE
        )

    class ClientCommandDefs(BaseCommandDefs):
        """Commands the responder (server) sends to the initiator (C.3.1.4)."""

        initiate_key_establishment_response: Final = command(
            KeyEstablishmentClientCommand.INITIATE_KEY_ESTABLISHMENT_RESPONSE, dict(_INITIATE)
        )
        ephemeral_data_response: Final = command(
            KeyEstablishmentClientCommand.EPHEMERAL_DATA_RESPONSE, {"ephemeral_data": t.Bytes}
        )
        confirm_key_data_response: Final = command(
            KeyEstablishmentClientCommand.CONFIRM_KEY_DATA_RESPONSE,
            {"secure_message_authentication_code": t.Bytes},
        )
        terminate_key_establishment: Final = command(
            KeyEstablishmentClientCommand.TERMINATE_KEY_ESTABLISHMENT, dict(_TERMINATE)
        )
