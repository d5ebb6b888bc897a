"""A battery-powered gas meter that the ESI mirrors (SE 1.1+, D.3.4), for the simulator.

:class:`GasMeter` is a :class:`~zse.roles.han.HanDevice` (join, CBKE, resync) hosting a
Metering server whose values a :class:`~zse.metering.core.MeterCore` holds. Once keyed it
sends Request Mirror to the ESI's SE endpoint (its Metering client) and keeps the endpoint the
ESI answers with; on each :meth:`GasMeter.wake_up` it takes new readings and pushes its
summation, status, Formatting set and device type to the mirror with Report Attributes
(ZCL 2.5.11), so displays read the mirror while the meter sleeps. :meth:`GasMeter.decommission`
sends Remove Mirror before the meter leaves. Opt-in: the demo has no gas meter yet.

SE 1.2 notifications (``notifications=`` a scheme, :mod:`zse.metering.notification`): once
mirrored the meter sends Configure Mirror to its mirror (Mirror Notification Reporting on), so
the mirror answers each report with Mirror Report Attribute Response carrying the flags the
ESI raised. The meter acts on those it can (Time Sync: read the ESI's Time; Stay Awake Request
HAN: :attr:`GasMeter.awake_until`, the application keeps polling fast until then; Display
Message: Get Last Message; Publish Price: Get Current Price), sends Get Notified Message for
each flag attribute with bits set (the mirror clears them and the ESI's application sends
what it holds) and tells the application (:class:`NotificationsReceived`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from zigpy.zcl import foundation

from zse.errors import InvalidFrame, ZseError
from zse.metering.core import MeterCore, Readings
from zse.metering.mirror import MIRRORED_ATTRIBUTES, mirror_endpoint, mirror_report_payload
from zse.metering.notification import (
    FUNCTIONAL_FLAGS,
    PRICE_FLAGS,
    FunctionalFlag,
    PriceFlag,
    flag_attributes,
    flag_names,
)
from zse.metering.wire import Metering
from zse.roles.han import EsiNotFound, HanDevice
from zse.se.ids import METERING, METERING_DEVICE, MeteringClientCommand, MeteringServerCommand
from zse.se.ids import MeteringAttribute as A
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.delivery import Destination, delivery

__all__ = [
    "GAS_FORMATTING",
    "STAY_AWAKE_SECONDS",
    "GasMeter",
    "MirrorAssigned",
    "MirrorRefused",
    "MirrorReleased",
    "NotificationsReceived",
]

#: How long a Stay Awake Request HAN keeps the meter polling fast (zse's choice: the SE 1.2
#: text, out of reach, was not read; a GSME's fast poll lasts minutes, not hours).
STAY_AWAKE_SECONDS = 300
_MRAR = MeteringServerCommand.MIRROR_REPORT_ATTRIBUTE_RESPONSE

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


@dataclass(frozen=True, kw_only=True)
class NotificationsReceived:
    """The mirror's answer to a report carried notification flags: ``flags`` (flag attribute
    id -> bits, those set), their Wireshark names, and what the meter did (``actions``)."""

    device: str
    scheme: int
    flags: Mapping[int, int]
    names: tuple[str, ...]
    actions: tuple[str, ...]


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
        notifications: int | None = None,
        reporting_interval: int = 1800,
        **options: Any,
    ) -> None:
        super().__init__(device, **options)
        self.meter: MeterCore[Any] = MeterCore(
            formatting=GAS_FORMATTING if formatting is None else formatting, now=self.clock()
        )
        self.mirror: int | None = None
        self._ask_mirror = mirror
        #: SE 1.2: the notification scheme asked for with Configure Mirror (None: SE 1.1).
        self.notifications = notifications
        self.reporting_interval = reporting_interval
        #: Stay Awake Request HAN: poll fast until then (UTC seconds), None when not asked.
        self.awake_until: int | None = None
        self._issuer_event_id = 0
        #: Readings were taken: the load profile counts from the first (MeterCore.begin).
        self._begun = False

    async def start(self) -> None:
        """Join, CBKE and resync (:meth:`HanDevice.start`), then ask for a mirror."""
        await super().start()
        if self._ask_mirror and self.mirror is None:
            await self.request_mirror()
        if self.mirror is not None and self.notifications is not None:
            await self.configure_mirror(self.notifications)

    async def request_mirror(self) -> int:
        """Send Request Mirror (D.3.2.3.1.2) and keep the endpoint the ESI answers with;
        :class:`MirrorRefused` when it has none (0xFFFF)."""
        endpoint = await self._mirror_command(MeteringClientCommand.REQUEST_MIRROR)
        if endpoint is None:
            raise MirrorRefused(f"{self.name}: the ESI has no mirror free")
        self.mirror = endpoint
        self._stream.emit(MirrorAssigned(device=self.name, endpoint=endpoint))
        return endpoint

    async def configure_mirror(self, scheme: int, *, reporting: bool = True) -> foundation.Status:
        """Send Configure Mirror (SE 1.2) to the mirror: ``scheme`` and Mirror Notification
        Reporting (``reporting``), the meter's reporting interval; the mirror's Default
        Response status."""
        self._issuer_event_id += 1
        definition = Metering.ClientCommandDefs.configure_mirror
        payload = encode_command(
            definition.schema(
                issuer_event_id=self._issuer_event_id,
                reporting_interval=self.reporting_interval,
                mirror_notification_reporting=reporting,
                notification_scheme=scheme,
            )
        )
        return await self._to_mirror(definition.id, payload)

    async def get_notified_message(
        self, scheme: int, attribute: int, flags: int
    ) -> foundation.Status:
        """Send Get Notified Message (SE 1.2) to the mirror for ``flags`` of flag ``attribute``:
        the mirror clears them and hands what it holds for them to the ESI's application."""
        definition = Metering.ClientCommandDefs.get_notified_message
        payload = encode_command(
            definition.schema(
                notification_scheme=scheme,
                notification_flag_attribute_id=attribute,
                notification_flags=flags,
            )
        )
        return await self._to_mirror(definition.id, payload)

    async def _to_mirror(self, command_id: int, payload: bytes) -> foundation.Status:
        if self.mirror is None:
            raise MirrorRefused(f"{self.name}: no mirror to configure")
        reply = await self._request(self.mirror, command_id, payload)
        return _default_response_status(self.name, reply)

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
            answers=frozenset({_MRAR}),
        )
        if reply.is_cluster_command and reply.command_id == _MRAR:
            await self._notified(reply.payload)
            return foundation.Status.SUCCESS
        return _default_response_status(self.name, reply)

    async def _notified(self, payload: bytes) -> None:
        """Act on a Mirror Report Attribute Response (SE 1.2); :class:`InvalidFrame` when it
        does not decode or carries other flags than its scheme's."""
        response, _ = decode_command(Metering, _MRAR, payload, from_server=False)
        scheme = int(response.notification_scheme)
        attributes = flag_attributes(scheme)
        carried = [int(f) for f in response.notification_flags]
        if attributes and len(carried) != len(attributes):
            raise InvalidFrame(
                f"{self.name}: scheme {scheme} carries {len(attributes)} flags, not {len(carried)}"
            )
        flags = {a: f for a, f in zip(attributes, carried, strict=False) if f}
        if not flags:
            return
        actions = await self._act(flags)
        for attribute, bits in flags.items():
            await self.get_notified_message(scheme, attribute, bits)
        names = tuple(n for a, f in flags.items() for n in flag_names(a, f))
        event = NotificationsReceived(
            device=self.name, scheme=scheme, flags=flags, names=names, actions=actions
        )
        self._stream.emit(event)

    async def _act(self, flags: Mapping[int, int]) -> tuple[str, ...]:
        """Do what zse's meter can for the flags raised; the names of what it did."""
        functional = flags.get(FUNCTIONAL_FLAGS, 0)
        actions = []
        if functional & FunctionalFlag.TIME_SYNC:
            await self.read_time()
            actions.append("time_sync")
        if functional & FunctionalFlag.STAY_AWAKE_REQUEST_HAN:
            self.awake_until = self.clock() + STAY_AWAKE_SECONDS
            actions.append("stay_awake")
        if functional & FunctionalFlag.DISPLAY_MESSAGE:
            await self.messaging.fetch()
            actions.append("get_last_message")
        if flags.get(PRICE_FLAGS, 0) & PriceFlag.PUBLISH_PRICE:
            await self.price.get_current_price()
            actions.append("get_current_price")
        return tuple(actions)

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
        self,
        endpoint: int,
        command_id: int,
        payload: bytes,
        *,
        cluster_specific: bool = True,
        answers: frozenset[int] | None = None,
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
            answers=answers,
        )


def _default_response_status(name: str, reply: Any) -> foundation.Status:
    """The status of the Default Response ``reply``; :class:`InvalidFrame` for another."""
    if reply.is_cluster_command or reply.command_id != foundation.GeneralCommand.Default_Response:
        raise InvalidFrame(f"{name}: the mirror answered with {reply.command_id}")
    try:
        return foundation.Status(reply.payload[1])
    except (IndexError, ValueError):
        raise InvalidFrame(f"{name}: the mirror's Default Response is malformed") from None
