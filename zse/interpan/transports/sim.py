"""Inter-PAN on the simulator's air (:mod:`zse.sim`).

Any simulated node (a :class:`~zse.sim.SimDevice`, or a :class:`~zse.sim.SimControllerApplication`
such as a hand-held terminal that formed its own PAN) puts whole MAC frames on the air with
``send_interpan`` and hears them with ``on_interpan``; this transport encodes and decodes them
with the Annex B codec, exactly as the EZSP transport does with a real NCP.
"""

from __future__ import annotations

from typing import Any, Protocol

from zse.errors import ZseError
from zse.interpan._codec import DeliveryMode, InterPanFrame
from zse.interpan.transports._base import ReceiveQueue

__all__ = ["NoAcknowledgement", "SimTransport"]


class _RawRadio(Protocol):
    async def send_interpan(self, mac_frame: bytes) -> bool: ...

    def on_interpan(self, callback: Any) -> Any: ...


class NoAcknowledgement(ZseError, OSError):
    """A unicast inter-PAN frame was not acknowledged by the destination's MAC."""


class SimTransport(ReceiveQueue):
    """Inter-PAN frames through a simulated node's radio."""

    def __init__(self, node: _RawRadio, *, maxsize: int = 64) -> None:
        super().__init__(maxsize)
        self._node = node
        self._unsubscribe: Any = node.on_interpan(self._on_raw)

    async def send(self, frame: InterPanFrame) -> None:
        """Transmit; a unicast that no MAC acknowledged raises :class:`NoAcknowledgement`."""
        acked = await self._node.send_interpan(frame.to_bytes())
        if frame.delivery_mode is DeliveryMode.UNICAST and not acked:
            raise NoAcknowledgement(f"no MAC acknowledgement from {frame.dst_address}")

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await super().close()

    def _on_raw(self, raw: Any) -> None:
        self.deliver_bytes(raw.data)
