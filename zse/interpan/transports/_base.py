"""The transport interface and the bounded receive queue every transport shares."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import ClassVar, Protocol, runtime_checkable

from zse.errors import InvalidFrame, ZseError
from zse.interpan._codec import InterPanFrame

__all__ = ["InterPanTransport", "ReceiveQueue", "SecuredInterPanUnsupported"]

LOGGER = logging.getLogger(__name__)


class SecuredInterPanUnsupported(ZseError, ValueError):
    """The transport cannot carry APS-secured inter-PAN frames (docs/interpan.md, "Secured
    inter-PAN"): raised before anything is sent. Z-Stack's stub APS refuses APS security on
    an inter-PAN send and drops every secured inter-PAN frame it receives (TI ``stub_aps.c``,
    ``StubAPS_BuildFrameControl`` and ``INTERP_DataIndication``); a raw-MAC transport (EZSP's
    :class:`~zse.radios.ezsp.EzspTransport`, the simulator's
    :class:`~zse.interpan.transports.sim.SimTransport`) carries them, zse securing them on the
    host."""


@runtime_checkable
class InterPanTransport(Protocol):
    """Send inter-PAN frames and async-iterate the received ones."""

    async def send(self, frame: InterPanFrame) -> None:
        """Transmit one frame; raise :class:`OSError`/radio error if the radio refuses it."""

    def __aiter__(self) -> AsyncIterator[InterPanFrame]:
        """Yield received frames until :meth:`close`."""
        ...

    async def close(self) -> None:
        """Stop receiving; pending iterations end."""


class ReceiveQueue:
    """A bounded queue of received frames; a full queue drops the newest frame (and counts it).

    Radio callbacks call :meth:`deliver_bytes` (a raw MAC frame) or :meth:`deliver`; frames that
    do not decode are counted in :attr:`invalid` and logged, never raised into the radio
    library's callback loop.
    """

    #: Whether APS-secured frames go out and come in as such (False: the radio's firmware
    #: builds and filters the stub APS header itself, as Z-Stack's does).
    carries_aps_security: ClassVar[bool] = True

    def __init__(self, maxsize: int = 64) -> None:
        self._queue: asyncio.Queue[InterPanFrame | None] = asyncio.Queue(maxsize)
        self._closed = False
        self.dropped = 0
        self.invalid = 0

    def deliver_bytes(self, data: bytes) -> None:
        try:
            frame = InterPanFrame.from_bytes(data)
        except InvalidFrame as exc:
            self.invalid += 1
            LOGGER.debug("ignoring a frame that is not inter-PAN: %s", exc)
            return
        self.deliver(frame)

    def deliver(self, frame: InterPanFrame) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1

    def _close_queue(self) -> None:
        if not self._closed:
            self._closed = True
            while True:
                try:
                    self._queue.put_nowait(None)
                    break
                except asyncio.QueueFull:
                    self._queue.get_nowait()
                    self.dropped += 1

    async def close(self) -> None:
        self._close_queue()

    async def receive(self) -> InterPanFrame | None:
        """The next received frame, or ``None`` once closed."""
        frame = await self._queue.get()
        if frame is None:
            self._queue.put_nowait(None)  # wake every other reader too
        return frame

    async def __aiter__(self) -> AsyncIterator[InterPanFrame]:
        while (frame := await self.receive()) is not None:
            yield frame
