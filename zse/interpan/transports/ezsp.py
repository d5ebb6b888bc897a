"""Inter-PAN over a Silicon Labs EmberZNet NCP through bellows (extra ``ezsp``).

bellows passes no inter-PAN frames to zigpy, so this transport talks to the NCP itself:

- :meth:`EzspTransport.start` sets the ``MAC_PASSTHROUGH_SE_INTERPAN`` bit of the NCP's
  ``VALUE_MAC_PASSTHROUGH_FLAGS`` (EZSP ``getValue`` / ``setValue``, keeping the other bits), so
  the stack hands received inter-PAN frames to the host instead of dropping them;
- received frames arrive as ``macPassthroughMessageHandler`` (message type SE inter-PAN) or,
  when the application configured MAC filters, as ``macFilterMatchMessageHandler``; their
  argument shapes differ by version (v4-v13: ``lastHopLqi``/``lastHopRssi``; v14+:
  ``packetInfo``; v18+: a 16-bit filter value) but the MAC frame is always the last argument;
- frames are sent whole, MAC header included, with ``sendRawMessage`` (EZSP < 14) or
  ``sendRawMessageExtended`` (EZSP >= 14, where 0x0051 took over the name).

This module is the only one in zse that touches bellows' EZSP object.
"""

from __future__ import annotations

import logging
from typing import Any

import bellows.types as t
from bellows.ezsp import EZSP

from zse.interpan._codec import InterPanFrame
from zse.interpan.transports._base import ReceiveQueue

__all__ = ["EzspError", "EzspTransport"]

LOGGER = logging.getLogger(__name__)

SE_INTERPAN = int(t.EmberMacPassthroughType.MAC_PASSTHROUGH_SE_INTERPAN)
#: ``EMBER_MAC_TRANSMIT_PRIORITY_NORMAL`` / ``SL_802154_TRANSMIT_PRIORITY_NORMAL``.
TRANSMIT_PRIORITY_NORMAL = 1
FIRST_EXTENDED_VERSION = 14


class EzspError(OSError):
    """The NCP refused a request; ``status`` is its EmberStatus / EzspStatus / sl_Status."""

    def __init__(self, what: str, status: int) -> None:
        super().__init__(f"{what} failed with status 0x{int(status):02X}")
        self.status = int(status)


class EzspTransport(ReceiveQueue):
    """Inter-PAN frames through a connected bellows :class:`~bellows.ezsp.EZSP`."""

    def __init__(self, ezsp: EZSP, *, maxsize: int = 64) -> None:
        super().__init__(maxsize)
        self._ezsp: Any = ezsp  # bellows is untyped; commands are resolved at run time
        self._callback_id: int | None = None

    @classmethod
    def from_application(cls, app: Any, *, maxsize: int = 64) -> EzspTransport:
        """The transport of a running bellows ``ControllerApplication``."""
        return cls(app._ezsp, maxsize=maxsize)

    @property
    def ezsp_version(self) -> int:
        return int(self._ezsp.ezsp_version)

    async def start(self) -> None:
        """Subscribe to the NCP's callbacks and enable SE inter-PAN passthrough."""
        if self._callback_id is None:
            self._callback_id = self._ezsp.add_callback(self._on_callback)
        flags = 0
        status, *rest = await self._ezsp.getValue(valueId=t.EzspValueId.VALUE_MAC_PASSTHROUGH_FLAGS)
        if int(status) == 0 and rest and rest[0]:
            flags = rest[0][0]
        (status,) = await self._ezsp.setValue(
            valueId=t.EzspValueId.VALUE_MAC_PASSTHROUGH_FLAGS,
            value=bytes([flags | SE_INTERPAN]),
        )
        if int(status) != 0:
            raise EzspError("setValue(VALUE_MAC_PASSTHROUGH_FLAGS)", status)

    async def send(self, frame: InterPanFrame) -> None:
        """Send the whole MAC frame (the NCP appends the FCS)."""
        data = frame.to_bytes()
        if self.ezsp_version >= FIRST_EXTENDED_VERSION:
            (status,) = await self._ezsp.sendRawMessageExtended(
                message=data, priority=TRANSMIT_PRIORITY_NORMAL, useCca=True
            )
            what = "sendRawMessageExtended"
        else:
            (status,) = await self._ezsp.sendRawMessage(messageContents=data)
            what = "sendRawMessage"
        if int(status) != 0:
            raise EzspError(what, status)

    async def close(self) -> None:
        if self._callback_id is not None:
            self._ezsp.remove_callback(self._callback_id)
            self._callback_id = None
        await super().close()

    def _on_callback(self, frame_name: str, args: list[Any]) -> None:
        if frame_name == "macPassthroughMessageHandler":
            # (messageType, lastHopLqi, lastHopRssi | packetInfo, messageContents)
            if not int(args[0]) & SE_INTERPAN:
                LOGGER.debug("ignoring a MAC passthrough message of type 0x%02X", int(args[0]))
                return
        elif frame_name != "macFilterMatchMessageHandler":
            return
        # a filter match may carry any raw frame: the decoder decides (non-inter-PAN is counted)
        self.deliver_bytes(bytes(args[-1]))
