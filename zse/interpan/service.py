"""Asyncio shells for inter-PAN: ZCL over a transport, the window, and the HHT carrier.

:class:`InterPanService` binds a transport (EZSP, Z-Stack or simulator) to the sans-IO pieces:
it refuses to send a command the whitelist does not allow (SE Annex B.5: only the commands the
application chose may cross inter-PAN), numbers outgoing MAC sequence numbers, and yields only
the received frames the window admits (or, without a window, the whitelisted ones).
:func:`serve_meter` and :func:`run_terminal` run the HHT command carrier on top of it; the
clock is the event loop's, so on the simulator's virtual-time loop nothing waits for real.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterable

from zigpy.types import EUI64
from zigpy.zcl import foundation

from zse.errors import InvalidFrame
from zse.interpan._codec import BROADCAST_ADDRESS, DeliveryMode, InterPanFrame
from zse.interpan._zcl import ZclHeader
from zse.interpan.hht import CARRIER_CLUSTER_ID, HhtMeter, HhtTerminal, Result
from zse.interpan.transports._base import InterPanTransport
from zse.interpan.window import CommandWhitelist, InterPanWindow, Verdict
from zse.zcl.endpoint import ZclMessage, ZclPort

__all__ = [
    "Inbox",
    "InterPanService",
    "LinkLost",
    "run_terminal",
    "serve_carrier_on_endpoint",
    "serve_meter",
]

LOGGER = logging.getLogger(__name__)


class LinkLost(TimeoutError):
    """The terminal got no answer after its retries; ``position`` is the command it was on."""

    def __init__(self, position: int) -> None:
        super().__init__(f"no answer from the meter for command {position}")
        self.position = position


class InterPanService:
    """ZCL over inter-PAN for one local node (``ieee`` on ``pan_id``)."""

    def __init__(
        self,
        transport: InterPanTransport,
        *,
        ieee: EUI64,
        pan_id: int,
        window: InterPanWindow | None = None,
        whitelist: CommandWhitelist | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.transport = transport
        self.ieee = ieee
        self.pan_id = pan_id
        self.window = window
        self.whitelist = whitelist or (window.whitelist if window else CommandWhitelist())
        self._clock = clock
        self._sequence = itertools.count()
        self._inboxes: list[Inbox] = []
        self._default: Inbox | None = None
        self._pump: asyncio.Task[None] | None = None
        self._closed = False

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def frame(
        self,
        *,
        cluster_id: int,
        payload: bytes,
        dst_pan_id: int = 0xFFFF,
        dst: EUI64 | None = None,
        group_id: int | None = None,
    ) -> InterPanFrame:
        """A frame from this node: unicast to ``dst``, group ``group_id``, else broadcast."""
        address: EUI64 | int
        if dst is not None:
            mode, address = DeliveryMode.UNICAST, dst
        else:
            mode = DeliveryMode.GROUP if group_id is not None else DeliveryMode.BROADCAST
            address = BROADCAST_ADDRESS
        return InterPanFrame(
            src_pan_id=self.pan_id,
            src_ieee=self.ieee,
            dst_pan_id=dst_pan_id,
            dst_address=address,
            delivery_mode=mode,
            group_id=group_id,
            cluster_id=cluster_id,
            payload=payload,
            sequence=next(self._sequence) & 0xFF,
        )

    async def send(self, frame: InterPanFrame) -> None:
        """Send a whitelisted frame (:class:`PermissionError` for any other command)."""
        self.whitelist.check(frame)
        await self.transport.send(frame)

    async def reply(self, to: InterPanFrame, *, cluster_id: int, payload: bytes) -> None:
        """Unicast an answer back to the sender of ``to``."""
        await self.send(
            self.frame(
                cluster_id=cluster_id, payload=payload, dst_pan_id=to.src_pan_id, dst=to.src_ieee
            )
        )

    def _admits(self, frame: InterPanFrame) -> bool:
        if self.window is not None:
            verdict = self.window.admit(frame, self.now())
            if verdict is not Verdict.ACCEPTED:
                LOGGER.debug("inter-PAN frame from %s: %s", frame.src_ieee, verdict.value)
                return False
            return True
        return self.whitelist.match(frame) is not None

    def subscribe(self, clusters: Iterable[int] | None = None, *, maxsize: int = 64) -> Inbox:
        """A new :class:`Inbox` of the admitted frames of ``clusters`` (all if ``None``).

        Every inbox whose clusters match gets each admitted frame, so the SE commands and the
        HHT carrier can share one service. Frames admitted before it exists are not in it.
        """
        inbox = Inbox(None if clusters is None else frozenset(clusters), maxsize)
        if self._closed:
            inbox._close()
            return inbox
        self._inboxes.append(inbox)
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())
        return inbox

    def unsubscribe(self, inbox: Inbox) -> None:
        """Stop filling ``inbox``; its readers get ``None``."""
        if inbox in self._inboxes:
            self._inboxes.remove(inbox)
        inbox._close()

    async def _run_pump(self) -> None:
        try:
            async for frame in self.transport:
                if self._admits(frame):
                    for inbox in self._inboxes:
                        inbox._offer(frame)
        finally:
            self._closed = True
            for inbox in self._inboxes:
                inbox._close()

    async def receive(self, timeout: float | None = None) -> InterPanFrame | None:
        """The next admitted frame of any cluster; ``None`` on timeout or once closed."""
        if self._default is None:
            self._default = self.subscribe()
        return await self._default.receive(timeout)

    async def received(self) -> AsyncIterator[InterPanFrame]:
        """The received frames the window admits (without a window: the whitelisted ones)."""
        while (frame := await self.receive()) is not None:
            yield frame

    async def close(self) -> None:
        """Close the transport and stop receiving."""
        await self.transport.close()
        if self._pump is not None:
            await self._pump
        self._closed = True
        for inbox in self._inboxes:
            inbox._close()


class Inbox:
    """Admitted frames for one reader: bounded, a full inbox drops the newest (counted)."""

    def __init__(self, clusters: frozenset[int] | None, maxsize: int = 64) -> None:
        self.clusters = clusters
        self.dropped = 0
        self._queue: asyncio.Queue[InterPanFrame | None] = asyncio.Queue(maxsize)
        self._closed = False

    def _offer(self, frame: InterPanFrame) -> None:
        if self._closed or (self.clusters is not None and frame.cluster_id not in self.clusters):
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()
                self.dropped += 1

    async def receive(self, timeout: float | None = None) -> InterPanFrame | None:
        """The next frame; ``None`` on timeout or once closed."""
        try:
            frame = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if frame is None:
            self._queue.put_nowait(None)  # every later reader sees the end too
        return frame

    async def __aiter__(self) -> AsyncIterator[InterPanFrame]:
        while (frame := await self.receive()) is not None:
            yield frame


async def serve_meter(service: InterPanService, meter: HhtMeter) -> None:
    """Answer HHT carrier requests arriving over inter-PAN until the transport closes."""
    async for frame in service.subscribe([CARRIER_CLUSTER_ID]):
        try:
            answer = meter.receive(frame.payload)
        except InvalidFrame as exc:
            LOGGER.debug("ignoring a carrier frame from %s: %s", frame.src_ieee, exc)
            continue
        except Exception:  # a handler's bug: its BEGIN is logged, a retry gets INTERRUPTED
            LOGGER.exception("carrier command from %s failed", frame.src_ieee)
            continue
        try:
            await service.reply(frame, cluster_id=CARRIER_CLUSTER_ID, payload=answer)
        except OSError as exc:  # e.g. no MAC acknowledgement: the terminal will retry
            LOGGER.debug("answer to %s not delivered: %s", frame.src_ieee, exc)


def serve_carrier_on_endpoint(endpoint: ZclPort, meter: HhtMeter) -> Callable[[], None]:
    """Answer HHT carrier requests arriving over the network on a ZCL ``endpoint`` (e.g. the
    meter's :class:`~zse.zcl.se_endpoint.SeEndpoint`) with the same :class:`HhtMeter` that
    :func:`serve_meter` runs over inter-PAN, so a transaction executed on one path is answered
    ``DUPLICATE`` on the other. Returns a function that stops serving."""

    async def on_message(msg: ZclMessage) -> foundation.Status | None:
        try:
            answer = meter.receive(bytes(msg.header.serialize()) + msg.payload)
        except InvalidFrame as exc:
            LOGGER.debug("bad carrier frame from 0x%04X: %s", msg.src_nwk, exc)
            return foundation.Status.MALFORMED_COMMAND
        header = ZclHeader.from_bytes(answer)
        await endpoint.reply(msg, header.command_id, answer[header.length :])
        return None

    return endpoint.add_handler(CARRIER_CLUSTER_ID, on_message)


async def run_terminal(
    service: InterPanService,
    terminal: HhtTerminal,
    *,
    meter: EUI64,
    meter_pan_id: int,
    attempts: int = 3,
    resume: bool = False,
) -> dict[int, Result]:
    """Run ``terminal``'s service request against ``meter``; with ``resume``, first ask the
    meter where it stands. Raises :class:`LinkLost` after ``attempts`` unanswered sends."""

    async def exchange(frame: bytes) -> None:
        for _ in range(attempts):
            try:
                await service.send(
                    service.frame(
                        cluster_id=CARRIER_CLUSTER_ID,
                        payload=frame,
                        dst_pan_id=meter_pan_id,
                        dst=meter,
                    )
                )
            except OSError as exc:
                LOGGER.debug("send failed: %s", exc)
            while terminal.deadline is not None:
                got = await service.receive(max(0.0, terminal.deadline - service.now()))
                if got is None:
                    break
                if got.src_ieee == meter and got.cluster_id == CARRIER_CLUSTER_ID:
                    try:
                        if terminal.receive(got.payload, service.now()) is not None:
                            return
                    except InvalidFrame:
                        continue
            retry = terminal.handle_timeout(service.now())
            if retry is not None:
                frame = retry
        raise LinkLost(terminal.position)

    if resume:
        await exchange(terminal.resume(service.now()))
    while (frame := terminal.next_frame(service.now())) is not None:
        await exchange(frame)
    return terminal.results
