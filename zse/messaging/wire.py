"""Messaging cluster, 0x0703 (SE D.5).

The ESI (server) sends display and cancel commands; a HAN device (client) asks for the last
message, confirms messages and asks for cancellations. Optional trailers added by later SE
revisions are declared with a ``?`` suffix: present if bytes remain, and kept.
"""

from __future__ import annotations

from typing import Final

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import BaseCommandDefs

from zse.se.ids import MESSAGING, MessagingClientCommand, MessagingServerCommand
from zse.se.types import (
    CharacterString,
    ExtendedMessageControl,
    MessageConfirmationControl,
    MessageControl,
)
from zse.zcl._defs import cluster_id, command

__all__ = ["MESSAGE_CONFIRMATION_RESPONSE_MAX", "Messaging"]

#: Longest Message Confirmation Response text (D.5.2.4.2.1.4).
MESSAGE_CONFIRMATION_RESPONSE_MAX: Final = 20

_DISPLAY = {
    "message_id": t.uint32_t,
    "message_control": MessageControl,
    "start_time": t.UTCTime,
    "duration_in_minutes": t.uint16_t,
    "message": CharacterString,
    "extended_message_control?": ExtendedMessageControl,
}


class Messaging(Cluster):
    """Messaging (SE D.5); attach explicitly, it is not in zigpy's registry."""

    cluster_id = cluster_id(MESSAGING)
    name = "Messaging"
    ep_attribute = "smartenergy_messaging"
    _skip_registry = True

    class ServerCommandDefs(BaseCommandDefs):
        """Commands the ESI receives (D.5.2.4)."""

        get_last_message: Final = command(MessagingServerCommand.GET_LAST_MESSAGE, {})
        message_confirmation: Final = command(
            MessagingServerCommand.MESSAGE_CONFIRMATION,
            {
                "message_id": t.uint32_t,
                "confirmation_time": t.UTCTime,
                "message_confirmation_control?": MessageConfirmationControl,
                "message_confirmation_response?": t.LVBytes,
            },
        )
        get_message_cancellation: Final = command(
            MessagingServerCommand.GET_MESSAGE_CANCELLATION,
            {"earliest_implementation_time": t.UTCTime},
        )

    class ClientCommandDefs(BaseCommandDefs):
        """Commands the ESI sends (D.5.2.3)."""

        display_message: Final = command(MessagingClientCommand.DISPLAY_MESSAGE, _DISPLAY)
        cancel_message: Final = command(
            MessagingClientCommand.CANCEL_MESSAGE,
            {"message_id": t.uint32_t, "message_control": MessageControl},
        )
        display_protected_message: Final = command(
            MessagingClientCommand.DISPLAY_PROTECTED_MESSAGE, dict(_DISPLAY)
        )
        cancel_all_messages: Final = command(
            MessagingClientCommand.CANCEL_ALL_MESSAGES, {"implementation_date_time": t.UTCTime}
        )
