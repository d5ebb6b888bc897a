"""A battery-powered gas meter that the ESI mirrors (SE 1.1+, D.3.4), for the simulator.

:class:`GasMeter` is a :class:`~zse.roles.han.HanDevice` (join, CBKE, resync) hosting a
Metering server whose values a :class:`~zse.metering.core.MeterCore` holds. Once keyed it
sends Request Mirror to the ESI's SE endpoint (its Metering client) and keeps the endpoint the
ESI answers with; on each :meth:`GasMeter.wake_up` it takes new readings and pushes its
summation, status, Formatting set and device type to the mirror with Report Attributes
(ZCL 2.5.11), so displays read the mirror while the meter sleeps. :meth:`GasMeter.decommission`
sends Remove Mirror before the meter leaves. Opt-in: the demo has no gas meter yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from zigpy.zcl import foundation

from zse.errors import InvalidFrame, ZseError
from zse.metering.core import MeterCore, Readings
from zse.metering.mirror import MIRRORED_ATTRIBUTES, mirror_endpoint, mirror_report_payload
from zse.roles.han import EsiNotFound, HanDevice
from zse.se.ids import METERING, METERING_DEVICE, MeteringClientCommand
from zse.se.ids import MeteringAttribute as A
from zse.zcl.delivery import Destination, delivery

__all__ = ["GAS_FORMATTING", "GasMeter", "MirrorAssigned", "MirrorRefused", "MirrorReleased"]

#: A gas meter's Formatting (D.3.2.2.4): m³ (UnitOfMeasure 0x01), summation in litres shown as
#: m³ with 5 digits left and 3 right of the point, leading zeros suppressed; device type Gas.
GAS_FORMATTING: Mapping[int, int] = {
    A.UNIT_OF_MEASURE: 0x01,
    A.MULTIPLIER: 1,
    A.DIVISOR: 1000,
    A.SUMMATION_FORMATTING: 0b1_0101_011,
    A.DEMAND_FORMATTING: 0b1_0101_011,
    A.HISTORICAL_CONSUMPTION_FORMATTING: 0b1_0101_011,
    A.METERING_DEVICE_TYPE: 0x01,
}


class MirrorRefused(ZseError):
    """The ESI answered Request Mirror with 0xFFFF, or never answered."""


@dataclass(frozen=True, kw_only=True)
class MirrorAssigned:
    """The ESI mirrors the meter at ``endpoint``."""

    device: str
    endpoint: int


@dataclass(frozen=True, kw_only=True)
class MirrorReleased:
    """The ESI freed the meter's mirror (``endpoint`` None: it had none)."""

    device: str
    endpoint: int | None


class GasMeter(HanDevice):
    """A battery-powered gas meter mirrored on the ESI (SE Metering Device, D.3.4).

    ``formatting`` defaults to :data:`GAS_FORMATTING`; ``mirror`` False leaves Request Mirror
    to the application (:meth:`request_mirror`). Other options: :class:`HanDevice`'s."""

    device_type: ClassVar[int] = METERING_DEVICE
    server_clusters: ClassVar[tuple[int, ...]] = (METERING,)

    def __init__(
        self,
        device: Any,
        *,
        formatting: Mapping[int, int] | None = None,
        mirror: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(device, **options)
        self.meter: MeterCore[Any] = MeterCore(
            formatting=GAS_FORMATTING if formatting is None else formatting, now=self.clock()
        )
        self.mirror: int | None = None
        self._ask_mirror = mirror
        #: Readings were taken: the load profile counts from the first (MeterCore.begin).
        self._begun = False

    async def start(self) -> None:
        """Join, CBKE and resync (:meth:`HanDevice.start`), then ask for a mirror."""
        await super().start()
        if self._ask_mirror and self.mirror is None:
            await self.request_mirror()

    async def request_mirror(self) -> int:
        """Send Request Mirror (D.3.2.3.1.2) and keep the endpoint the ESI answers with;
        :class:`MirrorRefused` when it has none (0xFFFF)."""
        endpoint = await self._mirror_command(MeteringClientCommand.REQUEST_MIRROR)
        if endpoint is None:
            raise MirrorRefused(f"{self.name}: the ESI has no mirror free")
        self.mirror = endpoint
        self._stream.emit(MirrorAssigned(device=self.name, endpoint=endpoint))
        return endpoint

    async def remove_mirror(self) -> int | None:
        """Send Remove Mirror (D.3.2.3.1.3); the endpoint freed (None: there was none)."""
        endpoint = await self._mirror_command(MeteringClientCommand.REMOVE_MIRROR)
        self.mirror = None
        self._stream.emit(MirrorReleased(device=self.name, endpoint=endpoint))
        return endpoint

    async def wake_up(self, readings: Readings | None = None) -> foundation.Status:
        """Take ``readings`` (if any) and push the mirrored attributes to the mirror with one
        Report Attributes; the status of the ESI's Default Response."""
        if self.mirror is None or self.esi_endpoint is None:
            raise MirrorRefused(f"{self.name}: no mirror to push to")
        now = self.clock()
        if readings is not None and not self._begun:  # the meter's register when first read
            self.meter.begin(readings, now)
            self._begun = True
        elif readings is not None:
            self.meter.update(readings, now)
        values = {int(a): v for a in MIRRORED_ATTRIBUTES if (v := self.meter.read(a)) is not None}
        reply = await self._request(
            self.mirror,
            foundation.GeneralCommand.Report_Attributes,
            mirror_report_payload(values),
            cluster_specific=False,
        )
        if (
            reply.is_cluster_command
            or reply.command_id != foundation.GeneralCommand.Default_Response
        ):
            raise InvalidFrame(f"{self.name}: the mirror answered a report with {reply.command_id}")
        try:
            return foundation.Status(reply.payload[1])
        except (IndexError, ValueError):
            raise InvalidFrame(f"{self.name}: the mirror's Default Response is malformed") from None

    async def decommission(self) -> None:
        """Remove the mirror, then leave the network."""
        if self.mirror is not None:
            await self.remove_mirror()
        await self.leave()

    async def _mirror_command(self, command_id: int) -> int | None:
        if self.esi_endpoint is None:
            raise EsiNotFound(f"{self.name}: not joined to an ESI yet")
        reply = await self._request(self.esi_endpoint, command_id, b"")
        if not reply.is_cluster_command:
            raise MirrorRefused(f"{self.name}: the ESI refused the mirror command")
        return mirror_endpoint(reply.command_id, reply.payload)

    async def _request(
        self, endpoint: int, command_id: int, payload: bytes, *, cluster_specific: bool = True
    ) -> Any:
        rule = delivery(Destination.device(0x0000, endpoint))
        return await self.endpoint.request(
            0x0000,
            endpoint,
            METERING,
            command_id,
            payload,
            cluster_specific=cluster_specific,
            encrypt=rule.encrypt,
            disable_default_response=rule.disable_default_response,
        )
