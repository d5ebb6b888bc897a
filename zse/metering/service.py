"""Metering over ZCL (SE D.3): the asyncio shells of :mod:`zse.metering.protocol`.

:class:`MeteringClient` is a HAN device's client: it finds the meter (ZDO Match_Desc_req for a
Metering server on the SE profile, :func:`find_meter`, as a device finds the ESI, SE 5.4.7.1),
or is given its NWK address and endpoint (a mirror endpoint, say); then its core reads the
formatting, asks for reports, and polls when the meter does not report. The shell sends the
core's requests and feeds the answers back, takes the meter's Report Attributes through
``endpoint.add_handler(METERING, ..., general=True)``, and runs the core's deadlines on one
:class:`~zse.zcl.timer.Timer`. ``clock()`` gives ZigBee time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.zcl import foundation

from zse.errors import DecodeError, ZseError
from zse.metering.formatting import Reading
from zse.metering.protocol import (
    MeteringClientConfig,
    MeteringClientProtocol,
    MeterReading,
    Polling,
    decode_global,
)
from zse.se.ids import METERING, SE_PROFILE_ID
from zse.se.ids import MeteringAttribute as A
from zse.time.service import system_clock
from zse.zcl._tasks import keep_task
from zse.zcl.delivery import Destination, delivery
from zse.zcl.endpoint import ZclPort
from zse.zcl.events import EventStream
from zse.zcl.frame import Send, Step, ZclMessage
from zse.zcl.timer import Timer

LOGGER = logging.getLogger(__name__)

# -- the client (SE D.3.3) --------------------------------------------------------------------

__all__ = [
    "METERING",
    "MeterNotFound",
    "MeterReading",
    "MeteringClient",
    "MeteringClientConfig",
    "Polling",
    "find_meter",
]


class MeterNotFound(ZseError):
    """No device answered for a Metering server on the SE profile (Match_Desc_req)."""


class ZdoRequester(Protocol):
    """What :func:`find_meter` needs: a device's ZDO request (the simulator's ``SimDevice``)."""

    async def zdo_request(self, dst_nwk: int, command: zdo_t.ZDOCmd, *args: Any) -> Any: ...


async def find_meter(device: ZdoRequester, nwk: int = 0x0000) -> tuple[int, int]:
    """The (NWK address, endpoint) of the Metering server on the device at ``nwk``, found with
    ZDO Match_Desc_req on the SE profile (SE 5.4.7.1); :class:`MeterNotFound` if none."""
    status, address, endpoints = await device.zdo_request(
        nwk,
        zdo_t.ZDOCmd.Match_Desc_req,
        t.NWK(nwk),
        t.uint16_t(SE_PROFILE_ID),
        t.LVList[t.uint16_t, t.uint8_t]([t.uint16_t(METERING)]),
        t.LVList[t.uint16_t, t.uint8_t]([]),
    )
    if status != zdo_t.Status.SUCCESS or not endpoints:
        raise MeterNotFound(f"no Metering server on 0x{nwk:04X}")
    return int(address), int(endpoints[0])


class MeteringClient:
    """A HAN device's Metering client (SE D.3.3) for the meter at ``meter_nwk`` /
    ``meter_ep``: summation and demand as the meter's formatting shows them.

    :meth:`current` gives the latest :class:`~zse.metering.formatting.Reading` of each;
    ``on_event`` / ``events()`` hear every :class:`MeterReading` and :class:`Polling` change.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        meter_nwk: int = 0x0000,
        meter_ep: int,
        config: MeteringClientConfig | None = None,
        clock: Callable[[], int] = system_clock,
        request_timeout: float = 8.0,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.request_timeout = request_timeout
        self.protocol = MeteringClientProtocol(Destination.device(meter_nwk, meter_ep), config)
        self._stream: EventStream[MeterReading | Polling] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._timer = Timer("metering client", logger=LOGGER, level=logging.WARNING)
        self._timer.add(self.protocol, self._fire, clock=clock)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._remove: Callable[[], None] | None = None

    @property
    def meter(self) -> Destination:
        """The meter's endpoint."""
        return self.protocol.meter

    def start(self) -> None:
        """Take the meter's reports, read the formatting and ask for reports."""
        if self._remove is None:
            self._remove = self.endpoint.add_handler(METERING, self._on_message, general=True)
        step = self.protocol.start(self.clock())
        self._timer.start()
        self._fire(step)

    async def stop(self) -> None:
        """Stop polling and taking reports."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        await self._timer.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def current(self) -> tuple[Reading | None, Reading | None]:
        """The latest summation and demand as shown (None: not known yet)."""
        readings = self.protocol.readings
        summation = readings.get(A.CURRENT_SUMM_DELIVERED)
        demand = readings.get(A.INSTANTANEOUS_DEMAND)
        return (
            None if summation is None else summation.reading,
            None if demand is None else demand.reading,
        )

    def _fire(self, step: Step) -> None:
        """Carry out ``step`` in the background (its requests wait for their answers)."""
        task = asyncio.get_running_loop().create_task(self._carry_out(step))
        keep_task(self._tasks, task, LOGGER, "metering client request failed")

    async def _carry_out(self, step: Step) -> None:
        for event in step.events:
            self._stream.emit(event)
        for send in step.sends:
            await self._request(send)

    async def _request(self, send: Send) -> None:
        """Send one request and give its answer (a response or a Default Response) to the
        core; no answer is the core's business (its deadline)."""
        assert send.to is not None
        rule = delivery(send.to)
        try:
            reply = await self.endpoint.request(
                send.to.address,
                send.to.endpoint,
                send.cluster_id,
                send.command_id,
                send.payload,
                timeout=self.request_timeout,
                cluster_specific=send.cluster_specific,
                encrypt=rule.encrypt,
                disable_default_response=rule.disable_default_response,
            )
        except TimeoutError:
            LOGGER.info("no answer from the meter to global command 0x%02X", send.command_id)
            return
        await self._on_message(reply)

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        if not self.protocol.screen(msg):
            return None
        try:
            command = decode_global(msg)
        except DecodeError as exc:
            LOGGER.warning("bad Metering frame from 0x%04X: %s", msg.src_nwk, exc)
            return foundation.Status.MALFORMED_COMMAND
        step = self.protocol.receive(msg, command, self.clock())
        self._timer.update()
        await self._carry_out(step)
        if msg.command_id == foundation.GeneralCommand.Report_Attributes:
            return foundation.Status.SUCCESS  # the Default Response it is owed (ZCL 2.5.12.2)
        return None
