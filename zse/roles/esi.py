"""The Energy Service Interface role: an SE meter/ESI and Trust Center on any zigpy application.

:class:`EnergyServiceInterface` composes the features' services (``zse.<feature>.service``) on one
:class:`~zse.zcl.se_endpoint.SeEndpoint` and keeps a headend's
:class:`~zse.provisioning.registry.HanRegistry` in step with what happens on the network:

- **admission** by install code + EUI-64 (:meth:`~EnergyServiceInterface.provision`: registry
  PROVISION, then ``app.permit_with_link_key``), CBKE (SE 5.4.7, Annex C) served by
  :class:`~zse.cbke.service.KeyEstablishmentServer`, the new link key installed on
  the radio with :func:`zse.radios.link_key_installer`;
- **the lifecycle driven by events**: zigpy's ``device_joined`` / ``device_left`` -> JOINED /
  LEFT, Key Establishment success -> KEY_ESTABLISHED, :meth:`~EnergyServiceInterface.deprovision`
  -> DEPROVISION and a ZDO Mgmt_Leave_req asking the device to leave;
- **price, messages and load control** (SE D.4, D.5, D.2) to one device, a ZigBee group, a utility
  enrollment group (DRLC), every device (broadcast) or a registry group, with an outcome per
  device for registry groups (see :class:`SendResult`);
- **time** (the Time cluster, SE 5.4.3) and **inter-PAN** price for devices that never joined.

Everything that happens is offered as one stream of frozen, keyword-only dataclasses
(:data:`EsiEvent`) through ``on_event(callback)`` and ``async for event in esi.events()``, each
send included (:class:`PriceSent`, :class:`MessageSent`... with its :class:`SendResult`), whoever
asked for it.
Devices are named as zigpy prints EUI-64s (``00:0d:6f:00:0a:00:00:01``); any printed spelling is
accepted as input.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Final, cast

import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.application import ControllerApplication
from zigpy.device import Device as ZigbeeDevice
from zigpy.exceptions import DeliveryError

from zse.calendar import CalendarCancellation, CalendarSchedule
from zse.calendar.service import CALENDAR, CalendarServer
from zse.cbke.credentials import Credentials
from zse.cbke.machine import Established, Terminated
from zse.cbke.service import (
    KEY_ESTABLISHMENT,
    KeyEstablishmentEvent,
    KeyEstablishmentServer,
)
from zse.devmgmt.core import (
    ChangeOfSupplier,
    ChangeOfTenancy,
    CustomerId,
    EventConfigurations,
    Password,
    SiteId,
)
from zse.devmgmt.protocol import EventConfigurationReported, PasswordRequested
from zse.devmgmt.service import DEVICE_MANAGEMENT_CLUSTER, DeviceManagementServer
from zse.devmgmt.wire import TenancyChangeControl
from zse.drlc import LoadControlEvent
from zse.drlc.service import DRLC, DrlcServer, ReportReceived
from zse.errors import InvalidEui64, InvalidInstallCode, ZseError
from zse.events.core import DEFAULT_CONFIGURATION, EventId, Recorded
from zse.events.protocol import EventLogClearRequested
from zse.events.service import EVENTS, EventsServer
from zse.installcode import InstallCode, parse_eui64
from zse.messaging import Message
from zse.messaging.service import MESSAGING, MessageConfirmed, MessagingServer
from zse.metering.mirroring import (
    ESI_CLIENT_CLUSTERS,
    ESI_SERVER_CLUSTERS,
    MirrorAdded,
    MirrorConfigured,
    MirrorRemoved,
    MirrorServer,
    MirrorUpdated,
    NotificationFlagsRaised,
    NotifiedMessageRequested,
    mirror_descriptors,
    mirror_endpoints,
)
from zse.metering.service import METERING, MeteringServer
from zse.metering.snapshot_types import MeterSnapshotCause
from zse.metering.supply import SUPPLY_EVENTS, SupplyEvent
from zse.prepayment.core import PrepayEvent, SupplyInterrupted, SupplyRestored, unit_price
from zse.prepayment.service import PREPAYMENT, PrepaymentServer, friendly_credit_calendar
from zse.price import PriceEvent
from zse.price.core import (
    BillingPeriod,
    BlockPeriod,
    CalorificValue,
    Co2Value,
    ConsolidatedBill,
    ConversionFactor,
    CppEvent,
    CreditPayment,
    CurrencyConversion,
    TariffCancellation,
    TariffInformation,
    TariffValue,
)
from zse.price.service import (
    PRICE,
    CppEventResponded,
    PriceAcknowledged,
    PriceServer,
    PriceValue,
)
from zse.provisioning import (
    DEPROVISION_TIMEOUT,
    PROVISION_TIMEOUT,
    DeviceRecord,
    Due,
    IllegalTransition,
    LifecycleAction,
    LifecycleEvent,
    LifecycleState,
    OpenJoining,
    PendingWatch,
    RemoveKeys,
    SendLeave,
    Transition,
    decide,
    refusal,
)
from zse.provisioning.registry import AlreadyRegistered, HanRegistry, RegistryError, group_names
from zse.radios import (
    LinkKeyInstallError,
    UnsupportedRadio,
    install_failure,
    link_key_installer,
    remove_link_key,
)
from zse.records import Mismatch, RecordError, load_each
from zse.roles.keepalive import DEFAULT_BASE as DEFAULT_KEEP_ALIVE_BASE
from zse.roles.keepalive import DEFAULT_JITTER as DEFAULT_KEEP_ALIVE_JITTER
from zse.roles.keepalive import KeepAliveServer
from zse.se.ids import KEEP_ALIVE, SE_PROFILE_ID, MeteringAttribute
from zse.store import Batch, Store
from zse.time.core import ZoneRule
from zse.time.service import TIME, ZIGBEE_EPOCH, TimeServer, system_clock
from zse.zcl._tasks import keep_task
from zse.zcl.delivery import Destination, device_name
from zse.zcl.endpoint import ZclPort
from zse.zcl.events import STOP_WAIT, EventStream, finish_telling
from zse.zcl.se_endpoint import ESI_DEVICE_ID, SE_ENDPOINT_ID, SecurityPolicy, SeEndpoint
from zse.zcl.timer import Timer

__all__ = [
    "MAX_PERMIT_SECONDS",
    "TIMEOUT_RETRY",
    "CalendarCancelSent",
    "CalendarSent",
    "DeviceJoined",
    "DeviceLeft",
    "DeviceOutcome",
    "DeviceRemoved",
    "EnergyServiceInterface",
    "EsiEvent",
    "EsiStopped",
    "KeyEstablished",
    "KeyEstablishmentEnded",
    "LifecycleChanged",
    "LifecycleRefused",
    "LoadControlCancelSent",
    "LoadControlSent",
    "MessageCancelSent",
    "MessageConfirmed",
    "MessageSent",
    "Outcome",
    "PriceAcknowledged",
    "PriceSent",
    "ReportReceived",
    "SendResult",
    "SettleTimeout",
    "TargetError",
    "TariffCancelSent",
    "TariffSent",
]

#: zigpy's limit for one joining window (802.15.4 / ZigBee permit duration, 0xFE seconds).
MAX_PERMIT_SECONDS = 254
#: How long provision() waits for the radio to confirm that joining is open.
_PERMIT_RETURN_WAIT = 5.0
#: How long settle() waits, by default, for the network events seen so far (seconds; virtual
#: on the simulator). A step runs a registry write and at most one radio request (a permit, a
#: ZDO leave), each bounded by its own timeout well below this.
SETTLE_TIMEOUT = 300.0
#: Seconds after which a pending device's time-out whose registry write failed is taken again
#: (zse's choice, as the meter's SUPPLY_RETRY).
TIMEOUT_RETRY: Final = 30

LOGGER = logging.getLogger(__name__)

_KEYS_NAMESPACE = "esi.public_keys"
#: Each device's NWK address as the meter's reporting records follow it (EUI-64 -> address).
_ADDRESSES_NAMESPACE = "esi.addresses"


def _public_keys(
    records: dict[str, Any], on_bad: Callable[[RecordError], None]
) -> dict[t.EUI64, bytes]:
    """The partners' CBKE public keys as stored (EUI-64 -> hex of the key); a damaged record is
    handed to ``on_bad`` (quarantined by the store) and the others load (#12.16)."""
    keys: dict[t.EUI64, bytes] = {}

    def load(name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise Mismatch(f"expected a hex string, got {type(value).__name__}")
        keys[parse_eui64(name)] = bytes.fromhex(value)

    load_each(records.items(), load, namespace=_KEYS_NAMESPACE, on_bad=on_bad)
    return keys


def _stored_addresses(
    records: dict[str, Any], on_bad: Callable[[RecordError], None]
) -> dict[t.EUI64, int]:
    """The devices' NWK addresses as stored (EUI-64 -> address); a damaged record is handed to
    ``on_bad`` (quarantined by the store) and the others load."""
    addresses: dict[t.EUI64, int] = {}

    def load(name: str, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
            raise Mismatch(f"expected a NWK address, got {value!r}")
        addresses[parse_eui64(name)] = value

    load_each(records.items(), load, namespace=_ADDRESSES_NAMESPACE, on_bad=on_bad)
    return addresses


class TargetError(ZseError, ValueError):
    """A send was given no target, several targets, a registry group no device is registered
    in, or a target that needs a registry."""


class DeviceRemoved(TargetError):
    """A message or load control event sent to one device the registry records as being
    removed or removed (PENDING DE-PROVISIONING, DE-PROVISION COMPLETE; SE 5.4.8.1): refused
    before anything is recorded, for whoever registers the device next would be answered it
    (Get Last Message D.5.2.4.1, Get Scheduled Events D.2.2.4.1). ``field``: the send's
    keyword that named the device."""

    field = "device"


class EsiStopped(ZseError, RuntimeError):
    """A send, an admission or a removal asked of an ESI after :meth:`~EnergyServiceInterface.
    stop` (nothing is recorded or sent; ``start()`` again first)."""


class SettleTimeout(ZseError, TimeoutError):
    """:meth:`EnergyServiceInterface.settle` gave up: steps of following the network (a
    registry write, a permit, a leave request) were still running when its time ran out."""


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DeviceJoined:
    """zigpy reported a device joining (or rejoining with a new address)."""

    device: str
    nwk: int


@dataclass(frozen=True, kw_only=True)
class DeviceLeft:
    """zigpy reported a device leaving the network."""

    device: str


@dataclass(frozen=True, kw_only=True)
class KeyEstablished:
    """CBKE succeeded (SE C.3): the device now shares a fresh link key with the ESI."""

    device: str
    suite: int


@dataclass(frozen=True, kw_only=True)
class KeyEstablishmentEnded:
    """CBKE ended without a key: ``status`` is the Terminate status name (None: timed out)."""

    device: str
    status: str | None
    wait_time: int
    by_peer: bool


@dataclass(frozen=True, kw_only=True)
class LifecycleChanged:
    """The registry moved a device (``from_state`` may equal ``to_state``, e.g. a rejoin)."""

    device: str
    event: LifecycleEvent
    from_state: LifecycleState
    to_state: LifecycleState
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class LifecycleRefused:
    """Something happened that the device's lifecycle state does not allow (nothing written)."""

    device: str
    event: LifecycleEvent
    state: LifecycleState | None
    reason: str


@dataclass(frozen=True, kw_only=True)
class PriceSent:
    """A price (SE D.4.2.4.1) or block period, conversion factor or calorific value (D.4.2.4.2-4)
    was published by :meth:`EnergyServiceInterface.publish_price`; ``result``: where it went."""

    price: PriceEvent | PriceValue
    result: SendResult


@dataclass(frozen=True, kw_only=True)
class TariffSent:
    """An SE 1.2 tariff (Publish Tariff Information, D.4.2.4.5) and its price matrix, block
    thresholds and tier labels (D.4.2.4.6-7, 9) were published by
    :meth:`EnergyServiceInterface.publish_tariff`; ``result``: where they went."""

    tariff: TariffInformation
    values: tuple[TariffValue, ...]
    result: SendResult


@dataclass(frozen=True, kw_only=True)
class TariffCancelSent:
    """Cancel Tariff (D.4.2.4.15) was sent by :meth:`EnergyServiceInterface.cancel_tariff`."""

    cancellation: TariffCancellation
    result: SendResult


@dataclass(frozen=True, kw_only=True)
class CalendarSent:
    """A calendar (Publish Calendar and its parts, SE 1.2 D.9.2.4.1-5) was published by
    :meth:`EnergyServiceInterface.publish_calendar`; ``result``: where it went."""

    calendar: CalendarSchedule
    result: SendResult


@dataclass(frozen=True, kw_only=True)
class CalendarCancelSent:
    """Cancel Calendar (D.9.2.4.6) was sent by :meth:`EnergyServiceInterface.cancel_calendar`."""

    cancellation: CalendarCancellation
    result: SendResult


@dataclass(frozen=True, kw_only=True)
class MessageSent:
    """A Display Message (SE D.5.2.3.1) was sent by :meth:`EnergyServiceInterface.send_message`."""

    message: Message
    result: SendResult


@dataclass(frozen=True, kw_only=True)
class MessageCancelSent:
    """A Cancel Message (SE D.5.2.3.2) was sent by :meth:`EnergyServiceInterface.cancel_message`."""

    message_id: int
    result: SendResult


@dataclass(frozen=True, kw_only=True)
class LoadControlSent:
    """A Load Control Event (SE D.2.2.3.1) was sent by
    :meth:`EnergyServiceInterface.send_load_control` (``event`` as sent: an enrollment group
    target sets its Utility Enrollment Group)."""

    event: LoadControlEvent
    result: SendResult


@dataclass(frozen=True, kw_only=True)
class LoadControlCancelSent:
    """A Cancel Load Control Event (SE D.2.2.3.2) was sent by
    :meth:`EnergyServiceInterface.cancel_load_control`."""

    issuer_event_id: int
    cancel_control: int
    effective_time: int
    result: SendResult


@dataclass(frozen=True, kw_only=True)
class DeviceManagementSent:
    """A change of tenancy / supplier, site id or CIN published (SE 1.2 D.10.2.4) and sent."""

    item: ChangeOfTenancy | ChangeOfSupplier | SiteId | CustomerId
    result: SendResult


#: The event logged when each Device Management publication is made (Wireshark's names).
_ACTIONED: dict[type, EventId] = {
    ChangeOfTenancy: EventId.PUBLISH_COT_ACTIONED,
    ChangeOfSupplier: EventId.PUBLISH_COS_ACTIONED,
    SiteId: EventId.UPDATE_SITE_ID_ACTIONED,
    CustomerId: EventId.UPDATE_CIN_ACTIONED,
}

#: Everything :class:`EnergyServiceInterface` reports.
EsiEvent = (
    DeviceJoined
    | DeviceLeft
    | KeyEstablished
    | KeyEstablishmentEnded
    | LifecycleChanged
    | LifecycleRefused
    | MessageConfirmed
    | ReportReceived
    | PriceAcknowledged
    | CppEventResponded
    | MirrorAdded
    | MirrorRemoved
    | MirrorUpdated
    | MirrorConfigured
    | NotificationFlagsRaised
    | NotifiedMessageRequested
    | PriceSent
    | TariffSent
    | TariffCancelSent
    | CalendarSent
    | CalendarCancelSent
    | MessageSent
    | MessageCancelSent
    | LoadControlSent
    | LoadControlCancelSent
    | DeviceManagementSent
    | PasswordRequested
    | EventConfigurationReported
    | EventLogClearRequested
    | PrepayEvent
    | SupplyEvent
)


# -- per-device outcomes ------------------------------------------------------------------------


class Outcome(enum.Enum):
    """What became of one device's copy of a send."""

    #: Unicast and acknowledged by the device: its APS acknowledgement (ZB 2.2.8.4.1; with
    #: ``aps_ack=False``, the first hop's MAC acknowledgement).
    DELIVERED = "delivered"
    #: Not acknowledged: the device is offline. The ESI keeps what was sent (price schedule,
    #: message store, load control events) and the device gets it when it resyncs (Get Current
    #: Price, Get Last Message, Get Scheduled Events): nothing is lost.
    OFFLINE = "offline"
    #: Not sent: the device is not METER_READY (``detail`` says its state).
    SKIPPED = "skipped"
    #: Not sent again: what was to be sent once more is over (a message whose duration ran out
    #: or that was cancelled, ``detail`` says which); there is nothing left to catch up on.
    ENDED = "ended"


@dataclass(frozen=True, kw_only=True)
class DeviceOutcome:
    """One device's outcome of a send."""

    device: str
    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class SendResult:
    """The result of a send: ``target`` as text and, for unicast targets (a device or a
    registry group), one :class:`DeviceOutcome` per device. A ZigBee group, enrollment group
    or broadcast is one unacknowledged frame: ``multicast`` True and no per-device outcomes."""

    what: str
    target: str
    multicast: bool = False
    outcomes: tuple[DeviceOutcome, ...] = ()

    def devices(self, outcome: Outcome) -> list[str]:
        """The devices with this outcome."""
        return [o.device for o in self.outcomes if o.outcome is outcome]

    @property
    def delivered(self) -> list[str]:
        """Devices that acknowledged."""
        return self.devices(Outcome.DELIVERED)

    @property
    def offline(self) -> list[str]:
        """Devices that did not (they get it when they resync)."""
        return self.devices(Outcome.OFFLINE)

    @property
    def skipped(self) -> list[str]:
        """Devices not sent to (not METER_READY)."""
        return self.devices(Outcome.SKIPPED)


@dataclass(frozen=True)
class _Target:
    kind: str  # device | group | zigbee_group | enrollment_group | broadcast
    value: Any = None

    def describe(self) -> str:
        if self.kind == "device":
            return f"device {self.value}"
        if self.kind == "group":
            return f"registry group {self.value!r}"
        if self.kind == "zigbee_group":
            return f"ZigBee group 0x{self.value:04X}"
        if self.kind == "enrollment_group":
            return f"utility enrollment group {self.value}"
        return "broadcast"


def _tariff_key(provider_id: int, issuer_tariff_id: int) -> str:
    """The meter's planned snapshot of one tariff's start (:meth:`MeteringServer.plan_snapshot
    <zse.metering.service.MeteringServer.plan_snapshot>`)."""
    return f"tariff/{provider_id}/{issuer_tariff_id}"


def _ieee(eui64: object) -> t.EUI64:
    """A device's EUI-64 given as zigpy's :class:`zigpy.types.EUI64` or as printed text (any
    spelling); anything else (an int, bytes) is refused with
    :class:`~zse.errors.InvalidEui64`, never turned into text and read as digits."""
    if isinstance(eui64, t.EUI64):
        return eui64
    if not isinstance(eui64, str):
        raise InvalidEui64(
            f"EUI-64 must be given as text or a zigpy EUI64, not {type(eui64).__name__}"
        )
    return parse_eui64(eui64)


def _name(eui64: object) -> str:
    """How the ESI names the device ``eui64`` (:func:`_ieee`): zigpy's printed EUI-64."""
    return device_name(_ieee(eui64))


def _code_text(install_code: object) -> str:
    """An install code given as an :class:`InstallCode` or as printed text, as text; anything
    else is refused with :class:`~zse.errors.InvalidInstallCode` (never its ``str()``)."""
    if isinstance(install_code, InstallCode):
        return str(install_code)
    if not isinstance(install_code, str):
        raise InvalidInstallCode(
            f"install code must be given as text or an InstallCode, "
            f"not {type(install_code).__name__}"
        )
    return install_code


def _target(
    *,
    device: t.EUI64 | str | None,
    group: str | None,
    zigbee_group: int | None,
    broadcast: bool,
    enrollment_group: int | None = None,
) -> _Target:
    chosen = [
        _Target(kind, value)
        for kind, value in (
            ("device", device),
            ("group", group),
            ("zigbee_group", zigbee_group),
            ("enrollment_group", enrollment_group),
        )
        if value is not None
    ]
    if broadcast:
        chosen.append(_Target("broadcast"))
    if len(chosen) != 1:
        raise TargetError(
            "give exactly one target: device=, group= (registry), zigbee_group=, "
            "enrollment_group= (load control only) or broadcast=True"
        )
    found = chosen[0]
    if found.kind == "device":
        return _Target("device", _name(found.value))
    if found.kind in ("zigbee_group",) and not 0x0001 <= found.value <= 0xFFF7:
        shown = f"0x{found.value:04X}" if found.value >= 0 else str(found.value)
        raise TargetError(f"ZigBee group id {shown} is outside 0x0001-0xFFF7")
    if found.kind == "enrollment_group" and not 1 <= found.value <= 0xFF:
        raise TargetError(f"utility enrollment group {found.value} is outside 1-255")
    return found


def _registered_otherwise(record: DeviceRecord, code_text: str) -> bool:
    """Whether ``record``, not de-provisioned, holds an install code other than ``code_text``
    (SE 5.4.8.1: the code derives the device's preconfigured link key)."""
    if record.state is LifecycleState.DEPROVISION_COMPLETE:
        return False
    return InstallCode.parse(record.install_code) != InstallCode.parse(code_text)


def _admitted_with(record: DeviceRecord, install_code: InstallCode | str | None) -> bool:
    """Whether ``record`` is a device already METER_READY with ``install_code`` (a
    provision repeated: nothing left to do)."""
    if record.state is not LifecycleState.METER_READY or install_code is None:
        return False
    given = InstallCode.parse(_code_text(install_code))
    return InstallCode.parse(record.install_code) == given


#: EUI-64s no device has (all zeros, all ones): a network event naming one is ignored.
_NOT_A_DEVICE: Final = frozenset({bytes(8), b"\xff" * 8})
#: Registry states in which the ESI runs no CBKE with the device (it is being removed).
_REMOVED_STATES: Final = frozenset(
    {LifecycleState.PENDING_DEPROVISIONING, LifecycleState.DEPROVISION_COMPLETE}
)


class _Listener:
    """zigpy's listener protocol, kept off the facade's public surface."""

    def __init__(self, esi: EnergyServiceInterface) -> None:
        self._esi = esi

    def device_joined(self, device: Any) -> None:
        self._esi._network_event(device.ieee, LifecycleEvent.JOINED, nwk=int(device.nwk))

    def device_left(self, device: Any) -> None:
        self._esi._network_event(device.ieee, LifecycleEvent.LEFT)

    def handle_message(self, device: Any, *_args: Any) -> None:
        self._esi._heard(device.ieee)


# -- the role -----------------------------------------------------------------------------------


#: The clusters the ESI serves and the one it is a client of, on its SE endpoint.
_SERVER_CLUSTERS = (
    TIME,
    KEEP_ALIVE,
    PRICE,
    DRLC,
    MESSAGING,
    CALENDAR,
    KEY_ESTABLISHMENT,
    DEVICE_MANAGEMENT_CLUSTER,
    EVENTS,
)
_CLIENT_CLUSTERS = (KEY_ESTABLISHMENT,)


def _server_clusters(meter: bool, mirrors: int = 0, prepayment: bool = False) -> tuple[int, ...]:
    """The SE endpoint's server clusters: Metering when the ESI hosts the meter, Basic when it
    serves mirrors (SE D.3.4), Prepayment when it runs a prepay account (SE 1.2 D.7)."""
    return (
        *_SERVER_CLUSTERS,
        *((METERING,) if meter else ()),
        *(ESI_SERVER_CLUSTERS if mirrors else ()),
        *((PREPAYMENT,) if prepayment else ()),
    )


#: How a published block pricing value is named in logs and results.
_VALUE_NAMES: dict[type[Any], str] = {
    BlockPeriod: "block period",
    ConversionFactor: "conversion factor",
    CalorificValue: "calorific value",
    Co2Value: "CO2 value",
    BillingPeriod: "billing period",
    ConsolidatedBill: "consolidated bill",
    CppEvent: "CPP event",
    CreditPayment: "credit payment",
    CurrencyConversion: "currency conversion",
}


def _client_clusters(mirrors: int = 0) -> tuple[int, ...]:
    """The SE endpoint's client clusters: Metering's too when it serves mirrors."""
    return (*_CLIENT_CLUSTERS, *(ESI_CLIENT_CLUSTERS if mirrors else ()))


class EnergyServiceInterface:
    """An ESI (meter, Trust Center) on a zigpy ``ControllerApplication``.

    ``credentials``: the ESI's CBKE credentials (one per suite). ``registry``: a
    :class:`~zse.provisioning.registry.HanRegistry` to track each device's lifecycle (required for
    registry-group sends); without one, :meth:`provision` only admits the device. ``store``:
    persistence for the Messaging and DRLC servers, the Time server's written attributes
    (ValidUntilTime, ZCL 3.12.2.2.10) and the devices' public keys (default: the registry's
    store). ``clock()``: ZigBee UTCTime. ``permit_seconds``: how long an admission
    stays open. ``readmit``: re-open admission for a METER_READY device that left on its own,
    so it can rejoin and run CBKE again. ``rng`` / ``first_tsn`` / ``executor`` make simulations
    repeatable (seeded ephemeral keys, fixed ZCL sequence numbers, inline computation).
    ``time_zone``: the Time server's zone (an IANA name such as ``"Europe/London"`` or a
    :class:`~zse.time.core.ZoneRule`); it then serves TimeZone and DST with MasterZoneDst
    (default: UTC, no DST). ``meter``: host the Metering server (SE D.3) on the SE endpoint,
    :attr:`meter` (off by default): True, or the keyword arguments of
    :class:`~zse.metering.service.MeteringServer` (``formatting``, ``source``...); it
    persists in ``store``. ``mirrors``: how many meter mirrors to serve (SE D.3.4), on the
    endpoints after ``endpoint_id`` (:mod:`zse.metering.mirroring`; default none).
    ``keep_alive``: TC Keep-Alive Base (minutes) and Jitter (seconds) served on the Keep-Alive
    cluster (SE 1.2 5.4.2.2.3.4; default 10 minutes, 300 s), which joined devices read to
    notice a Trust Center that is gone. ``provision_timeout``: seconds after its admission that
    a device still PENDING_PROVISIONING and not joined is reported (a ``timed_out`` audit entry
    and :class:`LifecycleChanged`, state unchanged; None: never); ``deprovision_timeout``:
    seconds after DEPROVISION that a device never seen leaving is recorded DEPROVISION_COMPLETE
    (``timed_out``; its keys were erased at DEPROVISION). Both count in the event loop's
    seconds from the later of the change and the ESI's start. ``aps_ack``: the ESI's unicasts
    ask for an APS acknowledgement and the radio resends them without one (ZB 2.2.8.4.1), as
    an EmberZNet SE ESI's do (default); False: a unicast is done once its first hop's MAC
    acknowledged it (:class:`~zse.zcl.se_endpoint.SeEndpoint`).

    Call ``await start()`` once the application is running, ``await stop()`` at the end.
    """

    def __init__(
        self,
        app: ControllerApplication,
        *,
        credentials: Credentials | Iterable[Credentials],
        registry: HanRegistry | None = None,
        clock: Callable[[], int] = system_clock,
        store: Store | None = None,
        endpoint_id: int = SE_ENDPOINT_ID,
        security: SecurityPolicy | None = None,
        permit_seconds: int = MAX_PERMIT_SECONDS,
        readmit: bool = True,
        executor: Executor | None = None,
        rng: random.Random | None = None,
        first_tsn: int | None = None,
        time_zone: ZoneRule | str | None = None,
        mirrors: int = 0,
        meter: bool | Mapping[str, Any] = False,
        keep_alive: tuple[int, int] = (DEFAULT_KEEP_ALIVE_BASE, DEFAULT_KEEP_ALIVE_JITTER),
        provision_timeout: float | None = PROVISION_TIMEOUT,
        deprovision_timeout: float = DEPROVISION_TIMEOUT,
        aps_ack: bool = True,
        prepayment: bool | Mapping[str, Any] = False,
    ) -> None:
        self.app = app
        self.registry = registry
        self.clock = clock
        self.store = store if store is not None else (registry.store if registry else None)
        self.permit_seconds = permit_seconds
        self.readmit = readmit
        self._permits: set[asyncio.Task[None]] = set()
        self.endpoint = SeEndpoint(
            app,
            endpoint_id=endpoint_id,
            in_clusters=_server_clusters(bool(meter), mirrors, bool(prepayment)),
            out_clusters=_client_clusters(mirrors),
            security=security,
            first_tsn=first_tsn,
            aps_ack=aps_ack,
        )
        port = cast(ZclPort, self.endpoint)
        ke_options: dict[str, Any] = {} if rng is None else {"rng": rng}
        self.time: TimeServer  # set below; key establishment reads its status
        self.key_establishment = KeyEstablishmentServer(
            port,
            credentials,
            install_key=link_key_installer(app),
            admit=self._admits_key_establishment,
            executor=executor,
            # suite-2 certificate validity (SE C.4.2.2) at the time this ESI serves, when known:
            # its Time (ZCL 3.12.2.2.1), the HAN's time, which a written Time moves off clock()
            utc_now=lambda: (
                self.time.now() + ZIGBEE_EPOCH
                if self.time.status.master or self.time.status.synchronized
                else None
            ),
            **ke_options,
        )
        #: The Price server (SE D.4.2): what it publishes kept in ``store`` across restarts.
        self.price = PriceServer(port, clock=clock, store=self.store)
        #: The Calendar server (SE 1.2 D.9): TOU calendars, kept in ``store`` across restarts.
        self.calendar = CalendarServer(port, clock=clock, store=self.store)
        self.time = TimeServer(port, clock=clock, zone=time_zone, store=self.store)
        self.keep_alive = KeepAliveServer(
            port, base_minutes=keep_alive[0], jitter_seconds=keep_alive[1]
        )
        self.messaging = MessagingServer(port, clock=clock, store=self.store)
        self.drlc = DrlcServer(port, clock=clock, public_key=self.public_key, store=self.store)
        #: Device Management (SE 1.2 D.10): tenancy, supplier, site id, CIN, passwords.
        self.device_management = DeviceManagementServer(port, clock=clock, store=self.store)
        #: Events (SE 1.2 D.11): the ESI's event logs; what goes where is
        #: :attr:`event_configuration` (Device Management's event configuration, D.10.2.4.5).
        self.event_configuration = EventConfigurations(DEFAULT_CONFIGURATION)
        self.event_logs = EventsServer(
            port, clock=clock, store=self.store, configurations=self.event_configuration
        )
        #: The Metering server (SE D.3), when ``meter`` asked for one.
        self.meter: MeteringServer | None = None
        #: The Prepayment server (SE 1.2 D.7), when ``prepayment`` asked for one.
        self.prepayment: PrepaymentServer | None = None
        self._serve_meter(port, clock, meter, prepayment)
        self._stream: EventStream[EsiEvent] = EventStream()
        #: Listeners attached (:meth:`on_event`), and whether the reports and confirmations
        #: recorded but not yet told wait for one (set by :meth:`start`).
        self._listening = 0
        self._untold = False
        # -- meter mirroring (#14.3, SE D.3.4), opt-in: ``mirrors`` endpoints after this one --
        self.mirrors: MirrorServer | None = None
        if mirrors:
            self.mirrors = MirrorServer(
                app,
                port,
                endpoints=mirror_endpoints(mirrors, endpoint_id),
                store=self.store,
                security=security,
                clock=clock,
                first_tsn=first_tsn,
                aps_ack=aps_ack,
            )
        self.events = self._stream.events
        self._public_keys: dict[t.EUI64, bytes] = {}
        self._codes: dict[t.EUI64, InstallCode] = {}  # admissions without a registry
        #: Each device's NWK address as last seen, so that per-address state (the meter's
        #: reporting records) follows a device that rejoins with a new one.
        self._addresses: dict[t.EUI64, int] = {}
        #: One address change followed at a time (:meth:`_addressed`).
        self._addressing = asyncio.Lock()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        #: :meth:`_told`'s tasks (in ``_tasks`` too): the stop waits for them, not cancels.
        self._telling: set[asyncio.Task[Any]] = set()
        self._listener = _Listener(self)
        self._listener_id: int | None = None
        #: what removes each listener start() gave the services (stop() calls them, so a
        #: restarted ESI tells each event once)
        self._unfollow: list[Callable[[], None]] = []
        self._interpan: list[Any] = []
        self._serving: set[asyncio.Task[None]] = set()
        self._stopped = False
        #: Held by :meth:`start` and :meth:`stop` throughout: a stop called while a start is
        #: under way waits for it, so nothing it starts afterwards is left running.
        self._lifecycle = asyncio.Lock()
        #: The deadlines of pending devices (leave again, timed out), on one timer.
        self._watch = PendingWatch(
            provision_timeout=provision_timeout, deprovision_timeout=deprovision_timeout
        )
        self._timer = Timer("provisioning deadlines", logger=LOGGER)
        self._timer.add(self._watch, self._due)

    def _serve_meter(
        self,
        port: ZclPort,
        clock: Callable[[], int],
        meter: bool | Mapping[str, Any],
        prepayment: bool | Mapping[str, Any],
    ) -> None:
        """Set up the Metering server (SE D.3) and the Prepayment server (SE 1.2 D.7) when
        asked for; a prepay account is charged at each of the meter's readings."""
        if meter:
            # the tier in force at each reading: its tier summations (D.3.2.2.2)
            options = {"tier": self._tier_in_force, **({} if meter is True else dict(meter))}
            options.setdefault("zone", self.time.zone_at)  # the history's local days
            self.meter = MeteringServer(port, clock=clock, store=self.store, **options)
        if prepayment:
            options = {} if prepayment is True else dict(prepayment)
            options.setdefault(
                "friendly_calendar",
                friendly_credit_calendar(self.calendar.calendars, self.time.zone_at),
            )
            options.setdefault("zone", self.time.zone_at)
            self.prepayment = PrepaymentServer(port, clock=clock, store=self.store, **options)
            if self.meter is not None:
                self.meter.on_readings(self._charge_prepayment)
            if self.meter is not None and self.meter.supply is not None:
                # one supply state: the account's interruption is told to supply control
                self.prepayment.on_event(self._credit_supply)

    @staticmethod
    def descriptor(
        endpoint_id: int = SE_ENDPOINT_ID,
        *,
        meter: bool = False,
        mirrors: int = 0,
        prepayment: bool = False,
    ) -> zdo_t.SimpleDescriptor:
        """The simple descriptor of the ESI's SE endpoint: what a radio that accepts endpoints
        only before its network is up must be given at start-up (EmberZNet:
        :func:`zse.radios.ezsp.se_application`)."""
        return SeEndpoint.simple_descriptor(
            endpoint_id,
            ESI_DEVICE_ID,
            _server_clusters(meter, mirrors, prepayment),
            _client_clusters(mirrors),
        )

    @staticmethod
    def descriptors(
        endpoint_id: int = SE_ENDPOINT_ID,
        *,
        meter: bool = False,
        mirrors: int = 0,
        prepayment: bool = False,
    ) -> list[zdo_t.SimpleDescriptor]:
        """Every simple descriptor the ESI registers: its SE endpoint's and, with ``mirrors``,
        the mirror endpoints' (#14.3) — what :func:`zse.radios.ezsp.se_application` must be
        given for such an ESI."""
        own = EnergyServiceInterface.descriptor(
            endpoint_id, meter=meter, mirrors=mirrors, prepayment=prepayment
        )
        return [own, *mirror_descriptors(mirror_endpoints(mirrors, endpoint_id))]

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Register the SE endpoint, serve every cluster, follow zigpy's device events.

        What a de-provision cut short by a stop or a crash after its registry write left is
        ended first, for every device being or de-provisioned: its load control events and
        messages, its public key record, and its link keys at the Trust Center (erased again:
        one radio call per device, a key already gone is no error, a failure is logged and
        tried again at the next start, and the start goes on).

        A :meth:`stop` called meanwhile waits for the start to end, then stops all it
        started (it stopped what had started so far, and the start went on: the listener,
        the timer and the services after that point were left running)."""
        async with self._lifecycle:
            await self._start()

    async def _start(self) -> None:
        self._stopped = False
        await self.endpoint.start()
        self.key_establishment.start()
        self._unfollow.append(self.key_establishment.on_event(self._key_establishment_event))
        await self.price.load()  # what was published before a restart
        self.price.start()
        self._unfollow.append(self.price.on_event(self._stream.emit))
        await self.calendar.start()
        await self.time.load()  # ValidUntilTime written before a restart (ZCL 3.12.2.2.10)
        self.time.start()
        self.keep_alive.start()
        # Confirmations and reports recorded but never told (a restart) and those received
        # until a listener is attached are held: told to the first listener (on_event).
        await self.messaging.start(tell=False)
        self._unfollow.append(self.messaging.on_event(self._stream.emit))
        await self.drlc.start(tell=False)
        self._unfollow.append(self.drlc.on_event(self._stream.emit))
        await self.device_management.start()
        self._unfollow.append(self.device_management.on_event(self._stream.emit))
        await self.event_logs.start(tell=False)
        self._unfollow.append(self.event_logs.on_event(self._stream.emit))
        self._unfollow.append(self.messaging.on_event(self._log_confirmation))
        removed: list[t.EUI64] = []
        if self.registry is not None:  # a drop cut short by a crash after the registry's write
            for record in self.registry.devices():
                if record.state in _REMOVED_STATES:
                    removed.append(parse_eui64(record.eui64))
                    await self._forget(removed[-1])
                    await self._remove_keys(removed[-1], retried="at the next start")
        self._untold = True
        if self.meter is not None:
            await self.meter.start(tell=False)
            if self.meter.supply is not None:  # the meter's supply control: its events told
                self._unfollow.append(self.meter.on_event(self._supply_event))
        if self.prepayment is not None:  # held like the reports: start applies what fell due
            self._unfollow.append(self.prepayment.on_event(self._stream.emit))
            await self.prepayment.start(tell=False)
            # a Friendly Credit calendar cancelled or changed is read again at once
            self._unfollow.append(self.calendar.on_event(self.prepayment.calendar_changed))
        if self.meter is not None and self.meter.supply is not None:  # as the account is
            # (stored with the supply: told only if it differs); no account, no interruption
            await self._supply_follows_account()
        await self._load_public_keys(removed)
        if self.mirrors is not None:  # the meters' Get Notified Message held like the reports
            await self.mirrors.start(tell=False)
            self._unfollow.append(self.mirrors.on_event(self._stream.emit))
        await self._load_addresses()
        self._listener_id = self.app.add_listener(self._listener)
        if self.registry is not None:
            now = asyncio.get_running_loop().time()
            for record in self.registry.devices():
                self._watch.watch(record, now)
        self._timer.start()
        self._tell_untold()

    async def _load_public_keys(self, removed: list[t.EUI64]) -> None:
        """The devices' public keys CBKE stored, less those of the ``removed`` devices (being
        or de-provisioned: their key's delete, after the registry's write, was cut short by a
        stop or a crash), whose records are deleted now."""
        if self.store is None:
            return
        self._public_keys.update(await self.store.load_with(_KEYS_NAMESPACE, _public_keys))
        gone = [ieee for ieee in removed if self._public_keys.pop(ieee, None) is not None]
        if gone:
            batch = Batch()
            for ieee in gone:
                batch.delete(_KEYS_NAMESPACE, device_name(ieee))
            await self.store.commit(batch)

    async def _load_addresses(self) -> None:
        """Each device's NWK address, as zigpy has it. With a meter and a store, as stored
        with the meter's reporting records (:meth:`_addressed`): a device zigpy has at
        another one (its records' move failed, or was cut short by a stop or a kill -9) is
        followed there now (in a task, :meth:`_spawn`); one not stored yet is stored."""
        current = {t.EUI64(ieee): int(device.nwk) for ieee, device in self.app.devices.items()}
        if self.meter is None or self.store is None:
            self._addresses.update(current)
            return
        stored = await self.store.load_with(_ADDRESSES_NAMESPACE, _stored_addresses)
        self._addresses.update(stored)
        new = {ieee: nwk for ieee, nwk in current.items() if ieee not in stored}
        batch = Batch()
        for ieee, nwk in new.items():
            batch.put(_ADDRESSES_NAMESPACE, device_name(ieee), nwk)
        await self.store.commit(batch)
        self._addresses.update(new)
        for ieee, nwk in current.items():
            if stored.get(ieee, nwk) != nwk:
                self._spawn(self._addressed(ieee, nwk))

    def on_event(self, listener: Callable[[EsiEvent], Awaitable[Any] | None]) -> Callable[[], None]:
        """Call ``listener`` with every event; returns a function that removes it.

        The Message Confirmations, Report Event Status, Clear Event Log requests, prepay
        account events (supply interrupted, top-ups...), the meter's supply events
        (``SupplyChanged``...) and the meters' Get Notified Message requests recorded but never
        told (the ESI stopped or killed before it told them) and those that came since
        :meth:`start` are held until a listener is attached, then told (in a task, in the
        order they came); so are those that come while no listener is attached (the last one
        let go: detach) or once :meth:`stop` began, told to the next listener or after the
        next start. Each is marked told in the store once the listeners have it in hand:
        a listener that keeps events (a journal, a database) returns an awaitable of that
        work, and an event whose work failed, or that a kill interrupted, is told again after
        the next start (:mod:`zse.zcl.events`). Attach every listener before the loop runs
        again after the first, or before :meth:`start`. ``events()`` iterators do not count as
        listeners."""
        remove = self._stream.on_event(listener)
        self._listening += 1
        self._tell_untold()
        attached = True

        def detach() -> None:
            nonlocal attached
            if attached:
                attached = False
                self._listening -= 1
                remove()
                if not self._listening:
                    self._hold_untold()

        return detach

    def _tell_untold(self) -> None:
        """Once started and listened to: tell what the Messaging, DRLC, Events and
        Prepayment servers, the meter and the mirrors hold."""
        if self._untold and self._listening and not self._stopped:
            self._untold = False
            task = self._spawn(self._told())
            self._telling.add(task)
            task.add_done_callback(self._telling.discard)

    def _hold_untold(self) -> None:
        """No one to tell (the last listener let go, or the ESI stops): the services hold
        their events from now on, unmarked, until a listener is attached again
        (:meth:`_tell_untold`), or after the next start. (Told to no one, they were marked
        told: lost.)"""
        if self._untold:
            return  # holding already (not told since the start)
        self._untold = True
        self.messaging.hold_untold()
        self.drlc.hold_untold()
        self.event_logs.hold_untold()
        if self.prepayment is not None:
            self.prepayment.hold_untold()
        if self.mirrors is not None:
            self.mirrors.hold_untold()
        if self.meter is not None:
            self.meter.hold_untold()

    async def _told(self) -> None:
        services: list[Any] = [self.messaging, self.drlc, self.event_logs]
        services += [s for s in (self.prepayment, self.mirrors, self.meter) if s is not None]
        for service in services:
            if self._untold:  # the last listener let go meanwhile: the rest stay held
                return
            await service.tell_untold()

    async def stop(self) -> None:
        """Stop serving and following events (the registry and the store stay open). Sends,
        :meth:`provision` and :meth:`deprovision` then raise :class:`EsiStopped`.

        The waits for the events being told (the ESI's own telling, then each service's, in
        turn) share one :data:`~zse.zcl.events.STOP_WAIT` from the stop's beginning, each
        given what is left (:func:`~zse.zcl.events.finish_telling`): the tellings all run
        meanwhile, so one wait after another ends as one wait for all would, and a listener
        that never finishes holds the stop up once, not once per service (~7 x 60 s, past
        systemd's TimeoutStopSec of 90 s); what is left then is cancelled, logged, and told
        after the next start. The stores' writes at the stop are bounded by the store.

        Called while :meth:`start` is under way, it waits for the start to end (its steps,
        store reads and radio calls, are bounded by the store and the radio), then stops."""
        async with self._lifecycle:
            await self._stop()

    async def _stop(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_WAIT

        def left() -> float:
            return max(0.0, deadline - loop.time())

        self._stopped = True
        self._hold_untold()  # what the stop carries out is told after the next start
        await self._timer.stop()
        for unfollow in self._unfollow:
            unfollow()
        self._unfollow.clear()
        if self._listener_id is not None:
            self.app.remove_listener(self._listener)
            self._listener_id = None
        for service in self._interpan:
            await service.close()
        self._interpan.clear()
        await asyncio.gather(*self._serving, return_exceptions=True)
        self._serving.clear()
        # held since the stop began: a telling under way ends with what it emitted, marked
        await finish_telling(self._telling, left())
        for task in [*self._tasks, *self._permits]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._permits, return_exceptions=True)
        self.key_establishment.stop()
        await self.price.stop()
        await self.messaging.stop(bound=left())
        await self.drlc.stop(bound=left())
        await self.device_management.stop()
        await self.event_logs.stop(bound=left())
        if self.mirrors is not None:
            await self.mirrors.stop(bound=left())
        if self.meter is not None:
            await self.meter.stop(bound=left())
        if self.prepayment is not None:
            await self.prepayment.stop(bound=left())
        self.endpoint.stop()

    async def settle(self, timeout: float | None = SETTLE_TIMEOUT) -> None:
        """Wait until every network event seen so far has reached the registry, for at most
        ``timeout`` seconds (None: no limit); then raise :class:`SettleTimeout`, so that a step
        that never ends (a frame lost for good, a radio that does not answer) is an error
        and never a wait that spins on while (virtual) time runs.

        A task that has ended leaves ``_tasks`` only when its done callback runs, one loop
        step later: such a task is not waited for again. (Gathering it would not yield on
        Python 3.13, whose ``gather`` completes at once for futures already done, so the loop
        would spin without ever running the callback.)
        """
        try:
            async with asyncio.timeout(timeout):
                while running := [task for task in self._tasks if not task.done()]:
                    await asyncio.wait(running)
        except TimeoutError:
            pending = [task for task in self._tasks if not task.done()]
            if not pending:
                return
            raise SettleTimeout(
                f"{len(pending)} step(s) of following the network still running after {timeout:g} s"
            ) from None

    # -- admission and removal ---------------------------------------------------------------

    async def provision(
        self,
        eui64: t.EUI64 | str,
        install_code: InstallCode | str | None = None,
        *,
        label: str = "",
        groups: Iterable[str] = (),
        permit_seconds: int | None = None,
        again: bool = False,
    ) -> DeviceRecord | None:
        """Admit a device by EUI-64 and install code (SE 5.4.8.1).

        With a registry: an unregistered device is registered first (``install_code`` needed),
        a de-provisioned one registered again when ``install_code`` is given; then PROVISION
        moves it NEW -> PENDING_PROVISIONING (a device already pending just gets a new
        admission window); other states raise
        :class:`~zse.provisioning.IllegalTransition`. A device registered and not
        de-provisioned keeps its label and groups (``HanRegistry.set_groups`` changes them);
        ``install_code`` other than its registered one raises
        :class:`~zse.provisioning.registry.AlreadyRegistered` (nothing written). Then the
        Trust Center is given the install code's link key for the device and joining opens
        for ``permit_seconds``.
        Returns the device's record (None without a registry).

        ``again``: the same admission asked for once more (a command repeated after a crash):
        a device already METER_READY with this install code is left as it is and its record
        returned, instead of the transition being refused.

        ``eui64`` is a zigpy EUI64 or printed text (an int raises
        :class:`~zse.errors.InvalidEui64`); ``groups`` a list of group names (a bare string
        raises :class:`~zse.provisioning.registry.InvalidGroups`); after :meth:`stop`,
        :class:`EsiStopped`.
        """
        self._running()
        ieee = _ieee(eui64)
        names = group_names(groups)
        code_text = None if install_code is None else _code_text(install_code)
        record: DeviceRecord | None = None
        if self.registry is not None:
            key = device_name(ieee)
            try:
                record = self.registry.get(key)
            except RegistryError:
                if code_text is None:
                    raise
                record = await self.registry.register(key, code_text, label=label, groups=names)
                self._changed(key, LifecycleEvent.REREGISTER, None, record, "registered")
            else:
                if again and _admitted_with(record, install_code):
                    return record
                if code_text is not None and _registered_otherwise(record, code_text):
                    # the Trust Center would be given the registered code's link key: a
                    # device holding this code could never join (codes are secrets: unnamed)
                    raise AlreadyRegistered(
                        f"device {key} is registered ({record.state.value}) with another "
                        "install code; de-provision it before registering it with this one"
                    )
                if record.state is LifecycleState.DEPROVISION_COMPLETE and code_text is not None:
                    before = record
                    record = await self.registry.register(key, code_text, label=label, groups=names)
                    self._changed(
                        key, LifecycleEvent.REREGISTER, before, record, "registered again"
                    )
            step = await self._transition(key, LifecycleEvent.PROVISION, "install code admitted")
            assert step.after is not None
            record = step.after
            code = InstallCode.parse(record.install_code)
        else:
            if install_code is None or code_text is None:
                raise TargetError("without a registry, provision() needs the install code")
            code = (
                install_code
                if isinstance(install_code, InstallCode)
                else InstallCode.parse(code_text)
            )
            self._codes[ieee] = code
            step = decide(None, LifecycleEvent.PROVISION)
        await self._carry_out(ieee, step, code=code, seconds=permit_seconds)
        return record

    async def _permit(self, ieee: t.EUI64, code: InstallCode, seconds: int | None) -> None:
        """Open joining for ``ieee`` with its install-code key.

        Radios differ: bellows returns at once, zigpy-znp only when the window closes. The
        call is given a few seconds to fail (a refused key, a radio error, raised here); past
        that, it finishes in the background, and a late failure is logged. The task is held
        from its start, so a caller cancelled during those seconds leaves it to :meth:`stop`
        (which cancels it) and its failure to the log.
        """
        duration = self.permit_seconds if seconds is None else seconds
        if not 0 < duration <= MAX_PERMIT_SECONDS:
            raise ValueError(
                f"joining can be opened for 1 to {MAX_PERMIT_SECONDS} s, not {duration}"
            )
        task = asyncio.get_running_loop().create_task(self._open_joining(ieee, code, duration))
        self._permits.add(task)
        try:
            done, _ = await asyncio.wait({task}, timeout=_PERMIT_RETURN_WAIT)
        except BaseException:  # the caller was cancelled: the task goes on in the background
            task.add_done_callback(self._permit_done)
            raise
        if done:
            self._permits.discard(task)
            task.result()
            return
        task.add_done_callback(self._permit_done)

    async def _open_joining(self, ieee: t.EUI64, code: InstallCode, duration: int) -> None:
        """The radio's ``permit_with_link_key``; its failure is a :class:`~zse.radios.
        LinkKeyInstallError` naming the exception's type only (zigpy-znp's message repeats
        the request, the install-code key included)."""
        try:
            await self.app.permit_with_link_key(ieee, t.KeyData(code.link_key), duration)
        except Exception as exc:
            raise install_failure(
                f"opening joining for {device_name(ieee)} with its install-code key",
                exc,
                command="permit_with_link_key",
            ) from None

    def _permit_done(self, task: asyncio.Task[None]) -> None:
        self._permits.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOGGER.error("opening joining failed: %s", task.exception())

    async def deprovision(self, eui64: t.EUI64 | str) -> DeviceRecord | None:
        """Remove a device: DEPROVISION in the registry, erase its link keys at the Trust
        Center at once (its install-code key and the key CBKE gave it:
        :func:`zse.radios.remove_link_key`), so it can neither join nor rejoin, then ask it to
        leave (ZDO Mgmt_Leave_req). The registry reaches DEPROVISION_COMPLETE when the leave
        is seen (zigpy's ``device_left``); a device that does not take it stays
        PENDING_DEPROVISIONING and is asked again whenever it is heard from (a frame, a
        rejoin, a Device_annce) and on a back-off (``LEAVE_RETRY_DELAYS``), and is recorded
        DEPROVISION_COMPLETE (``timed_out``) after ``deprovision_timeout``. A device never
        joined (PENDING_PROVISIONING) is de-provisioned at once. The device is dropped from
        the load control events and messages held for it (SE 5.4.8.1): whoever registers
        it next is not answered them (Get Scheduled Events, Get Last Message).

        Asked again for a device already PENDING_DEPROVISIONING or DEPROVISION_COMPLETE (a
        repeated request), it is not refused: the keys are erased again and, still pending,
        the device is asked to leave again."""
        self._running()
        ieee = _ieee(eui64)
        name = device_name(ieee)
        if self.registry is not None:
            step = await self._transition(name, LifecycleEvent.DEPROVISION, "requested by headend")
        else:
            step = decide(None, LifecycleEvent.DEPROVISION)
            await self._forget(ieee)
        self._codes.pop(ieee, None)
        self._public_keys.pop(ieee, None)
        if self.store is not None:
            await self.store.commit(Batch().delete(_KEYS_NAMESPACE, name))
        address = self._addresses.get(ieee)
        if address is not None and self.meter is not None:
            await self.meter.forget(address)  # nothing more is reported to that address
            if self.store is not None:
                await self.store.commit(Batch().delete(_ADDRESSES_NAMESPACE, name))
        self._addresses.pop(ieee, None)
        await self._carry_out(ieee, step)
        return step.after

    async def _forget(self, ieee: t.EUI64) -> None:
        """End what the ESI holds for a device being removed (SE 5.4.8.1): it is dropped
        from the recipients of every load control event (Get Scheduled Events, D.2.2.4.1)
        and every message (Get Last Message, D.5.2.4.1) held, each drop committed. Done from
        PENDING DE-PROVISIONING on, when the utility's relationship with the device ends
        (its keys are erased then; whoever registers it next must not get the sends held
        for it), and again on DEPROVISION COMPLETE for a send made in between."""
        await self.drlc.forget(ieee)
        await self.messaging.forget(ieee)

    async def _remove_keys(
        self, ieee: t.EUI64, *, retried: str = "at the next refusal or start"
    ) -> None:
        """Erase the device's link keys at the Trust Center (none held: nothing to do); a
        radio that refuses is logged, naming the device and the radio's error, never a key
        (the removal is recorded all the same, and tried again as ``retried`` says: at the
        next refusal and at every start while the device is being or de-provisioned)."""
        self._codes.pop(ieee, None)
        try:
            await remove_link_key(self.app, ieee)
        except (LinkKeyInstallError, UnsupportedRadio) as exc:
            LOGGER.error(
                "erasing the link keys of %s failed (tried again %s): %s",
                device_name(ieee),
                retried,
                exc,
            )

    async def _leave(self, ieee: t.EUI64) -> None:
        """Ask a device to leave for good (ZDO Mgmt_Leave_req), if zigpy knows it."""
        try:
            device = cast(ZigbeeDevice, self.app.get_device(ieee=ieee))
        except KeyError:
            return
        try:
            await device.zdo.leave(remove_children=False, rejoin=False)
        except (DeliveryError, TimeoutError) as exc:
            LOGGER.warning(
                "%s did not take the leave request (%s); it stays pending", device_name(ieee), exc
            )

    async def _carry_out(
        self,
        ieee: t.EUI64,
        step: Transition,
        *,
        code: InstallCode | None = None,
        seconds: int | None = None,
    ) -> None:
        """Carry out the actions the provisioning core decided (:func:`zse.provisioning.
        decide`): open joining with the device's install code, erase its keys, or ask it to
        leave."""
        await self._act(ieee, step.actions, step.after, code=code, seconds=seconds)

    async def _act(
        self,
        ieee: t.EUI64,
        actions: tuple[LifecycleAction, ...],
        record: DeviceRecord | None,
        *,
        code: InstallCode | None = None,
        seconds: int | None = None,
    ) -> None:
        for action in actions:
            if isinstance(action, OpenJoining):
                if code is None:
                    assert record is not None
                    code = InstallCode.parse(record.install_code)
                await self._permit(ieee, code, seconds)
                if record is not None:  # a new admission window: its pending time restarts
                    self._watch.admitted(record.eui64, asyncio.get_running_loop().time())
                    self._timer.update()
            elif isinstance(action, RemoveKeys):
                await self._remove_keys(ieee)
            elif isinstance(action, SendLeave):
                await self._leave(ieee)

    # -- queries -----------------------------------------------------------------------------

    def public_key(self, eui64: t.EUI64 | str) -> bytes | None:
        """A device's static public key, learnt from its certificate during CBKE."""
        return self._public_keys.get(_ieee(eui64))

    def device(self, eui64: t.EUI64 | str) -> DeviceRecord:
        """The registry's record of a device (:class:`RegistryError` if none)."""
        return self._need_registry().get(_name(eui64))

    def members(self, group: str) -> list[str]:
        """The devices of a registry group, by name (none for a group no device is in)."""
        return [device_name(r.eui64) for r in self._need_registry().devices(group=group)]

    def _staying(self, group: str) -> list[str]:
        """The devices of a registry group not being removed: those a message or a load
        control event to the group is held for, whether METER READY or not yet (NEW, PENDING
        PROVISIONING: they ask when they join); none when every member is being removed (a
        de-provisioned device keeps its groups in the registry until it is registered again,
        perhaps by someone else)."""
        registry = self._need_registry()
        return [
            device_name(r.eui64)
            for r in registry.devices(group=group)
            if r.state not in _REMOVED_STATES
        ]

    def _not_removed(self, target: _Target) -> None:
        """Refuse a send held for one device being removed or removed (:class:`DeviceRemoved`):
        a plain caller may make it before someone registers the device again."""
        if target.kind != "device" or self.registry is None:
            return
        try:
            state = self.registry.get(target.value).state
        except RegistryError:
            return
        if state in _REMOVED_STATES:
            raise DeviceRemoved(
                f"device {target.value} is {state.value}: not sent, and not held for "
                "whoever registers it next"
            )

    def _running(self) -> None:
        if self._stopped:
            raise EsiStopped("the ESI is stopped: start() it again before sending or admitting")

    def _resolve(
        self,
        *,
        device: t.EUI64 | str | None,
        group: str | None,
        zigbee_group: int | None,
        broadcast: bool,
        enrollment_group: int | None = None,
    ) -> _Target:
        """The one target of a send, checked before anything is recorded or sent: the ESI
        is running, and a registry group has at least one registered device."""
        self._running()
        target = _target(
            device=device,
            group=group,
            zigbee_group=zigbee_group,
            broadcast=broadcast,
            enrollment_group=enrollment_group,
        )
        if target.kind == "group":
            if not isinstance(target.value, str):
                raise TargetError(
                    f"a registry group is named by text, not {type(target.value).__name__}"
                )
            if not self._need_registry().devices(group=target.value):
                raise TargetError(f"no registry group {target.value!r}: no device is in it")
        return target

    # -- price -------------------------------------------------------------------------------

    async def publish_price(
        self,
        price: PriceEvent | PriceValue,
        *,
        device: t.EUI64 | str | None = None,
        group: str | None = None,
        zigbee_group: int | None = None,
        broadcast: bool = False,
    ) -> SendResult:
        """Publish a price (Publish Price, SE D.4.2.4.1) or a block period, conversion factor
        or calorific value (Publish Block Period / Conversion Factor / Calorific Value, SE
        D.4.2.4.2-4), or an SE 1.2 CO2 value, billing period, consolidated bill, CPP event,
        credit payment or currency conversion (D.4.2.4.8, 10-14). It is recorded first, so a
        device that misses it gets it when it asks (Get Current Price, Get Block Periods...)."""
        target = self._resolve(
            device=device, group=group, zigbee_group=zigbee_group, broadcast=broadcast
        )
        await self.price.publish(price)

        async def send(to: Destination) -> None:
            await self.price.publish(price, dst=to.address, dst_ep=to.endpoint, dst_mode=to.mode)

        what = "price" if isinstance(price, PriceEvent) else _VALUE_NAMES[type(price)]
        result = await self._deliver(f"{what} {price.issuer_event_id}", target, PRICE, send)
        self._stream.emit(PriceSent(price=price, result=result))
        return result

    async def publish_tariff(
        self,
        tariff: TariffInformation,
        *values: TariffValue,
        device: t.EUI64 | str | None = None,
        group: str | None = None,
        zigbee_group: int | None = None,
        broadcast: bool = False,
    ) -> SendResult:
        """Publish an SE 1.2 tariff: Publish Tariff Information (D.4.2.4.5), then its price
        matrix, block thresholds and tier labels (``values``: :class:`~zse.price.PriceMatrix`,
        :class:`~zse.price.BlockThresholds`, :class:`~zse.price.TierLabels`), each in as many
        commands as one frame takes (D.4.2.4.6-7, 9). It is recorded first, so a device that
        misses it gets it when it asks (Get Tariff Information, Get Price Matrix...). The
        ESI's meter snapshots it at its start (:meth:`_meter_snapshot`);
        :class:`~zse.metering.snapshots.SnapshotsFull` (nothing recorded nor sent) when that
        snapshot, for later, cannot be planned."""
        target = self._resolve(
            device=device, group=group, zigbee_group=zigbee_group, broadcast=broadcast
        )
        key = _tariff_key(tariff.provider_id, tariff.issuer_tariff_id)
        if self.meter is not None:  # refused before it is kept: not kept, then not sent
            self.meter.snapshot_room(key, tariff.start_time)
        await self.price.publish_tariff(tariff, *values)
        await self._meter_snapshot(
            MeterSnapshotCause.Change_Of_Tariff_Information, key, tariff.start_time
        )

        async def send(to: Destination) -> None:
            await self.price.publish_tariff(
                tariff, *values, dst=to.address, dst_ep=to.endpoint, dst_mode=to.mode
            )

        result = await self._deliver(f"tariff {tariff.issuer_tariff_id}", target, PRICE, send)
        self._stream.emit(TariffSent(tariff=tariff, values=values, result=result))
        return result

    async def cancel_tariff(
        self,
        cancellation: TariffCancellation,
        *,
        device: t.EUI64 | str | None = None,
        group: str | None = None,
        zigbee_group: int | None = None,
        broadcast: bool = False,
    ) -> SendResult:
        """Cancel an SE 1.2 tariff (Cancel Tariff, D.4.2.4.15): forgotten here, and every
        device it goes to discards the tariff and its matrix, thresholds and labels."""
        target = self._resolve(
            device=device, group=group, zigbee_group=zigbee_group, broadcast=broadcast
        )
        await self.price.cancel_tariff(cancellation)
        if self.meter is not None:  # its snapshot is not taken when it would have started
            await self.meter.unplan_snapshot(
                _tariff_key(cancellation.provider_id, cancellation.issuer_tariff_id)
            )

        async def send(to: Destination) -> None:
            await self.price.cancel_tariff(
                cancellation, dst=to.address, dst_ep=to.endpoint, dst_mode=to.mode
            )

        what = f"tariff {cancellation.issuer_tariff_id} cancellation"
        result = await self._deliver(what, target, PRICE, send)
        self._stream.emit(TariffCancelSent(cancellation=cancellation, result=result))
        return result

    # -- device management (SE 1.2 D.10) -----------------------------------------------------

    async def publish_change_of_tenancy(self, change: ChangeOfTenancy, **target: Any) -> SendResult:
        """Publish a change of tenancy at its implementation time (D.10.2.4.1): stored first
        (a restart keeps it), told to each device that joins or asks (Get Change of Tenancy),
        and sent to ``device`` / ``group`` / ``zigbee_group`` / ``broadcast`` when given."""
        snapshot = (
            MeterSnapshotCause.Change_Of_Tenancy,
            "tenancy",
            change.implementation_time,
            f"tenancy/{change.provider_id}/{change.issuer_event_id}",
        )
        return await self._publish_device_management(change, "change of tenancy", target, snapshot)

    async def publish_change_of_supplier(
        self, change: ChangeOfSupplier, **target: Any
    ) -> SendResult:
        """Publish a change of supplier (D.10.2.4.2), as :meth:`publish_change_of_tenancy`."""
        snapshot = (
            MeterSnapshotCause.Change_Of_Supplier,
            "supplier",
            change.implementation_time,
            f"supplier/{change.current_provider_id}/{change.issuer_event_id}",
        )
        return await self._publish_device_management(change, "change of supplier", target, snapshot)

    async def _meter_snapshot(
        self, cause: int, key: str, at: int, change: str | None = None
    ) -> None:
        """The meter's snapshot (SE 1.2 Metering) of a change of tariff, tenancy or supplier
        (``change``, planned under ``key``: one tenancy and one supplier change at a time, the
        newer replacing the older), if the ESI hosts a meter: taken at the change's
        implementation time ``at`` (now when it is 0 or past), once: the same change published
        again (to another device) moves it, or is not snapshot again once taken."""
        if self.meter is not None:
            await self.meter.plan_snapshot(key, at, cause, change)

    async def update_site_id(self, site: SiteId, **target: Any) -> SendResult:
        """Publish the site id (Update SiteID, D.10.2.4.4), as :meth:`publish_change_of_tenancy`."""
        return await self._publish_device_management(site, "site id", target)

    async def update_cin(self, customer: CustomerId, **target: Any) -> SendResult:
        """Publish the customer id number (Update CIN, D.10.2.4.7), likewise."""
        return await self._publish_device_management(customer, "CIN", target)

    async def set_password(self, password: Password) -> None:
        """Hold a password for Request New Password (D.10.2.3.3): a secret, stored as the
        store keeps keys and never logged (the event log notes its type only)."""
        self._running()
        await self.device_management.set_password(password)
        await self.log_event(EventId.CHANGE_PASSWORD_ACTIONED, bytes((password.password_type,)))

    # -- events (SE 1.2 D.11) ----------------------------------------------------------------

    async def log_event(self, event_id: int, data: bytes = b"") -> Recorded:
        """Log an event in the ESI's event logs as :attr:`event_configuration` says (the
        hook for events zse does not log itself: a device joining, a load control event
        starting, a top-up...); one configured "push to HAN" also goes as Publish Event to
        each registered device on the network (a broadcast without a registry)."""
        targets: list[Destination] = []
        configuration = self.event_configuration.get(event_id)
        if configuration is not None and configuration & 0x10:
            targets = self._event_targets()
        return await self.event_logs.record(event_id, data, push_to=targets)

    def _event_targets(self) -> list[Destination]:
        if self.registry is None:
            return [Destination.broadcast()]
        targets = []
        for record in self.registry.devices():
            if record.state is not LifecycleState.METER_READY:
                continue
            address = self._address(record.eui64, EVENTS)
            if address is not None:
                targets.append(Destination.device(*address))
        return targets

    def _log_confirmation(self, event: object) -> None:
        """A Message Confirmation (D.5.2.4.2) logged with its message id."""
        if isinstance(event, MessageConfirmed):
            data = int(event.message.message_id).to_bytes(4, "little")
            self._spawn(self.log_event(EventId.MESSAGE_CONFIRMATION_SENT, data))

    async def _publish_device_management(
        self,
        item: ChangeOfTenancy | ChangeOfSupplier | SiteId | CustomerId,
        what: str,
        target: dict[str, Any],
        snapshot: tuple[int, str, int, str] | None = None,
    ) -> SendResult:
        """Publish ``item`` (to ``target``, or to devices as they join or ask); the meter's
        ``snapshot`` of it (:meth:`_meter_snapshot`'s cause, key and time) once the target
        is known to be one: a change refused for its target leaves no snapshot."""
        server = self.device_management
        if not any(target.get(k) for k in ("device", "group", "zigbee_group", "broadcast")):
            self._running()
            if snapshot is not None:
                await self._meter_snapshot(*snapshot)
            await server.publish(item)
            await self._tenancy_messages(item)
            result = SendResult(what=what, target="devices as they join or ask")
        else:
            resolved = self._resolve(
                device=target.get("device"),
                group=target.get("group"),
                zigbee_group=target.get("zigbee_group"),
                broadcast=bool(target.get("broadcast")),
            )
            if snapshot is not None:
                await self._meter_snapshot(*snapshot)
            await server.publish(item)
            await self._tenancy_messages(item)
            result = await self._deliver(
                what,
                resolved,
                DEVICE_MANAGEMENT_CLUSTER,
                lambda to: server.send(item, to),
            )
        self._stream.emit(DeviceManagementSent(item=item, result=result))
        await self.log_event(_ACTIONED[type(item)], item.issuer_event_id.to_bytes(4, "little"))
        return result

    async def _tenancy_messages(self, item: object) -> None:
        """A change of tenancy that clears the display's consumer data also ends the ESI's
        messages at its implementation time (a Cancel All Messages recorded, D.5.2.3.4): a
        display asking later is not given the previous tenant's messages again."""
        if isinstance(item, ChangeOfTenancy) and (
            item.control & TenancyChangeControl.Clear_IHD_Data_Consumer
        ):
            await self.messaging.cancel_all(item.implementation_time)

    async def _tell_device_management(self, name: str) -> None:
        """A device keyed: send it the tenancy, supplier, site id and CIN held (it also asks
        at its resync; a device whose client is not up yet misses this and asks)."""
        if not self.device_management.protocol.held():
            return

        async def tell(to: Destination) -> None:
            await self.device_management.tell(to)

        outcome = await self._unicast(name, DEVICE_MANAGEMENT_CLUSTER, tell)
        LOGGER.debug("%s: Device Management held told: %s", name, outcome.outcome.value)

    # -- calendar ----------------------------------------------------------------------------

    async def publish_calendar(
        self,
        calendar: CalendarSchedule,
        *,
        device: t.EUI64 | str | None = None,
        group: str | None = None,
        zigbee_group: int | None = None,
        broadcast: bool = False,
    ) -> SendResult:
        """Publish a time-of-use calendar (SE 1.2 D.9): Publish Calendar, then its day
        profiles, week profiles, special days and seasons, each command within one frame.
        It is recorded (and stored) first, so a device that misses it gets it when it asks
        (Get Calendar, Get Day Profiles...). :class:`ValueError`, nothing sent, for an older
        issue of a calendar held or one a newer calendar of its type overlaps."""
        target = self._resolve(
            device=device, group=group, zigbee_group=zigbee_group, broadcast=broadcast
        )
        await self.calendar.publish(calendar)
        held = self.calendar.calendars.calendar(
            calendar.provider_id, calendar.issuer_calendar_id, self.clock()
        )
        sent = calendar if held is None else held

        async def send(to: Destination) -> None:
            await self.calendar.publish(sent, dst=to.address, dst_ep=to.endpoint, dst_mode=to.mode)

        what = f"calendar {calendar.issuer_calendar_id}"
        result = await self._deliver(what, target, CALENDAR, send)
        self._stream.emit(CalendarSent(calendar=sent, result=result))
        return result

    async def cancel_calendar(
        self,
        cancellation: CalendarCancellation,
        *,
        device: t.EUI64 | str | None = None,
        group: str | None = None,
        zigbee_group: int | None = None,
        broadcast: bool = False,
    ) -> SendResult:
        """Cancel a calendar (Cancel Calendar, D.9.2.4.6): forgotten here (and in the store),
        and every device it goes to discards it."""
        target = self._resolve(
            device=device, group=group, zigbee_group=zigbee_group, broadcast=broadcast
        )
        await self.calendar.cancel(cancellation)

        async def send(to: Destination) -> None:
            await self.calendar.cancel(
                cancellation, dst=to.address, dst_ep=to.endpoint, dst_mode=to.mode
            )

        what = f"calendar {cancellation.issuer_calendar_id} cancellation"
        result = await self._deliver(what, target, CALENDAR, send)
        self._stream.emit(CalendarCancelSent(cancellation=cancellation, result=result))
        return result

    # -- messaging ---------------------------------------------------------------------------

    async def send_message(
        self,
        message: Message,
        *,
        device: t.EUI64 | str | None = None,
        group: str | None = None,
        zigbee_group: int | None = None,
        broadcast: bool = False,
    ) -> SendResult:
        """Send a display message (SE D.5.2.3.1). It is stored first; a device that misses it
        gets it with Get Last Message. Confirmations arrive as :class:`MessageConfirmed`.

        The same message (id and content) sent again while it is live, e.g. to one device after
        another, reaches each of them with Get Last Message, in the window it was first sent
        with: each copy goes as Get Last Message answers it then (D.5.2.4.1: the remaining
        duration). One device being removed or removed is refused (:class:`DeviceRemoved`)."""
        target = self._resolve(
            device=device, group=group, zigbee_group=zigbee_group, broadcast=broadcast
        )
        self._not_removed(target)
        server = self.messaging
        names = self.members(target.value) if target.kind == "group" else None
        if target.kind == "device":
            await server.record(message, device=target.value)
        elif target.kind == "group":
            # for its members as they are now, by device (D.5.2.4.1): a later change of the
            # group moves no message already sent; with every member being removed, no one
            members = self._staying(target.value)
            if members:
                await server.record(message, devices=members)
        elif target.kind == "zigbee_group":
            await server.record(message, group=target.value)
        else:
            await server.record(message)
        result = await self._deliver(
            f"message {message.message_id}",
            target,
            MESSAGING,
            lambda to: server.send_display(server.retimed(message.message_id) or message, to),
            names=names,
        )
        self._stream.emit(MessageSent(message=message, result=result))
        return result

    async def cancel_message(
        self,
        message_id: int,
        *,
        device: t.EUI64 | str | None = None,
        group: str | None = None,
        zigbee_group: int | None = None,
        broadcast: bool = False,
    ) -> SendResult:
        """Cancel a message (SE D.5.2.3.2) where it was sent; recorded first, so Get Last
        Message no longer returns it."""
        target = self._resolve(
            device=device, group=group, zigbee_group=zigbee_group, broadcast=broadcast
        )
        server = self.messaging
        await server.cancel(message_id)  # recorded; sent below
        stored = server.stored(message_id)
        result = await self._deliver(
            f"cancel message {message_id}",
            target,
            MESSAGING,
            lambda to: server.send_cancel(message_id, to),
            also=() if stored is None else sorted(stored.devices),
        )
        self._stream.emit(MessageCancelSent(message_id=message_id, result=result))
        return result

    # -- demand response and load control ----------------------------------------------------

    async def send_load_control(
        self,
        event: LoadControlEvent,
        *,
        device: t.EUI64 | str | None = None,
        group: str | None = None,
        zigbee_group: int | None = None,
        enrollment_group: int | None = None,
        broadcast: bool = False,
    ) -> SendResult:
        """Send a Load Control Event (SE D.2.2.3.1). It is stored first: a device that misses
        it gets it with Get Scheduled Events. ``enrollment_group`` sets the event's Utility
        Enrollment Group and broadcasts it (only devices of that group act on it). Reports
        arrive as :class:`ReportReceived`; ``esi.drlc.started(id)`` etc. give the ESI's view.
        Sent to a registry group, it is held for the group's members not being removed (METER
        READY or not yet) and no one else (D.2.2.4.1); a report is expected of the METER READY
        ones. One device being removed or removed is refused (:class:`DeviceRemoved`)."""
        target = self._resolve(
            device=device,
            group=group,
            zigbee_group=zigbee_group,
            broadcast=broadcast,
            enrollment_group=enrollment_group,
        )
        self._not_removed(target)
        if target.kind == "enrollment_group":
            event = dataclasses.replace(event, utility_enrollment_group=target.value)
        expected = self._expected(target)
        # a registry group's: for its members ready or not, no one else (D.2.2.4.1); sent
        # to the members it is recorded for, whatever the group becomes meanwhile
        names = self.members(target.value) if target.kind == "group" else None
        members = self._staying(target.value) if target.kind == "group" else None
        await self.drlc.publish(event, expected=expected, recipients=members)  # not sent
        event_id = event.issuer_event_id
        result = await self._deliver(
            f"load control event {event_id}",
            target,
            DRLC,
            lambda to: self.drlc.send_event(event_id, to),
            names=names,
        )
        self._stream.emit(LoadControlSent(event=event, result=result))
        return result

    async def cancel_load_control(
        self,
        issuer_event_id: int,
        *,
        cancel_control: int = 0,
        effective_time: int = 0,
        device: t.EUI64 | str | None = None,
        group: str | None = None,
        zigbee_group: int | None = None,
        enrollment_group: int | None = None,
        broadcast: bool = False,
    ) -> SendResult:
        """Cancel a Load Control Event (SE D.2.2.3.2) where it was sent."""
        target = self._resolve(
            device=device,
            group=group,
            zigbee_group=zigbee_group,
            broadcast=broadcast,
            enrollment_group=enrollment_group,
        )
        # recorded for the devices it is sent to (a device, a registry group's members and
        # the event's recipients); by broadcast or group address, for everyone
        names = None
        if target.kind == "device":
            names = [target.value]
        elif target.kind == "group":
            also = self.drlc.recipients(issuer_event_id) or ()
            names = list(dict.fromkeys([*self.members(target.value), *also]))
        await self.drlc.cancel(
            issuer_event_id,
            cancel_control=cancel_control,
            effective_time=effective_time,
            devices=names,
        )
        result = await self._deliver(
            f"cancel load control event {issuer_event_id}",
            target,
            DRLC,
            lambda to: self.drlc.send_cancel(
                issuer_event_id, to, cancel_control=cancel_control, effective_time=effective_time
            ),
            names=names,
        )
        self._stream.emit(
            LoadControlCancelSent(
                issuer_event_id=issuer_event_id,
                cancel_control=cancel_control,
                effective_time=effective_time,
                result=result,
            )
        )
        return result

    async def resend_message(self, message: Message, device: t.EUI64 | str) -> DeviceOutcome:
        """Send a message already sent (and stored) once more to one device, e.g. one that was
        offline at a registry-group send, without recording it again (SE D.5.2.3.1).

        What goes is what Get Last Message answers for the stored message now (D.5.2.4.1): a
        started one as start time 0 with its remaining minutes, a future start as it is. Once
        it is over (its duration ran out, or it was cancelled) nothing is sent and the outcome
        is :attr:`Outcome.ENDED`. A message this ESI does not hold under that id goes as given.
        """
        self._running()
        name = _name(device)
        stored = self.messaging.stored(message.message_id)
        if stored is None:
            current = message
        else:
            retimed = self.messaging.retimed(message.message_id)
            if retimed is None:
                why = "cancelled" if stored.cancelled_at == stored.ends else "its duration ran out"
                detail = f"message {message.message_id} is over ({why}): not sent again"
                return DeviceOutcome(device=name, outcome=Outcome.ENDED, detail=detail)
            current = retimed
        return await self._unicast(
            name, MESSAGING, lambda to: self.messaging.send_display(current, to)
        )

    async def resend_load_control(
        self, issuer_event_id: int, device: t.EUI64 | str
    ) -> DeviceOutcome:
        """Send a stored Load Control Event once more to one device (SE D.2.2.3.1), e.g. one
        that was offline when it was sent to its group.

        What goes is what Get Scheduled Events answers for it now: an event issued for "now"
        with the absolute start it was given (sent as 0 it would run its whole duration from
        the device's now), and a cancellation effective later after it. Once it is over at
        the ESI (its duration ran out, or it was cancelled) nothing is sent and the outcome
        is :attr:`Outcome.ENDED`."""
        self._running()
        name = _name(device)
        if self.drlc.resent(issuer_event_id, device=name) is None:
            detail = f"load control event {issuer_event_id} is over: not sent again"
            return DeviceOutcome(device=name, outcome=Outcome.ENDED, detail=detail)

        async def send(to: Destination) -> None:
            await self.drlc.resend_event(issuer_event_id, to, device=name)

        return await self._unicast(name, DRLC, send)

    def _expected(self, target: _Target) -> list[str]:
        if target.kind == "device":
            return [target.value]
        if target.kind == "group":
            return [
                device_name(r.eui64)
                for r in self._need_registry().devices(group=target.value)
                if r.state is LifecycleState.METER_READY
            ]
        return []

    # -- inter-PAN ---------------------------------------------------------------------------

    async def serve_interpan(self, transport: Any, *, window: Any = None) -> Any:
        """Answer Get Current Price over inter-PAN (SE Annex B) from this ESI's prices, for
        devices that never joined. ``transport``: a :mod:`zse.interpan.transports` transport
        of this ESI's radio; ``window``: an optional
        :class:`~zse.interpan.window.InterPanWindow`. Returns the
        :class:`~zse.interpan.se.InterPanEsi` (its events: ``PriceRequested``)."""
        from zse.interpan.se import InterPanEsi  # noqa: PLC0415 - optional part
        from zse.interpan.service import InterPanService  # noqa: PLC0415

        self._running()
        info = self.app.state
        service = InterPanService(
            transport,
            ieee=info.node_info.ieee,
            pan_id=int(info.network_info.pan_id),
            window=window,
        )
        esi = InterPanEsi(service, schedule=self.price.schedule, clock=self.clock)
        self._interpan.append(service)
        self._serving.add(asyncio.get_running_loop().create_task(esi.serve()))
        return esi

    # -- internals: delivery -----------------------------------------------------------------

    async def _deliver(
        self,
        what: str,
        target: _Target,
        cluster: int,
        send: Callable[[Destination], Awaitable[None]],
        *,
        names: list[str] | None = None,
        also: Iterable[str] = (),
    ) -> SendResult:
        """Send through a service to ``target``: one group or broadcast frame, or one unicast
        per device (the service's delivery rule decides encryption and Default Response).
        ``names``: a registry group's members as the send recorded them (default: its
        members now). ``also``: for a registry group, the other devices a cancellation is
        recorded for (sent the event or message before they left the group, or by another
        send): the cancel is the ESI's for all of them (D.2.2.3.2, D.5.2.3.2), each told
        once."""
        if target.kind == "zigbee_group":
            await send(Destination.group(target.value))
            return SendResult(what=what, target=target.describe(), multicast=True)
        if target.kind in ("broadcast", "enrollment_group"):
            await send(Destination.broadcast())
            return SendResult(what=what, target=target.describe(), multicast=True)
        if target.kind == "device":
            names = [target.value]
        else:
            names = self.members(target.value) if names is None else names
            names = [*names, *(n for n in dict.fromkeys(also) if n not in names)]
        outcomes = [await self._unicast(name, cluster, send) for name in names]
        return SendResult(what=what, target=target.describe(), outcomes=tuple(outcomes))

    async def _unicast(
        self, name: str, cluster: int, send: Callable[[Destination], Awaitable[None]]
    ) -> DeviceOutcome:
        if self.registry is not None:
            try:
                state = self.registry.get(name).state
            except RegistryError:
                state = None
            if state is not LifecycleState.METER_READY:
                why = "not registered" if state is None else state.value
                return DeviceOutcome(device=name, outcome=Outcome.SKIPPED, detail=why)
        address = self._address(name, cluster)
        if address is None:
            return DeviceOutcome(device=name, outcome=Outcome.OFFLINE, detail="not on the network")
        try:
            await send(Destination.device(*address))
        except (DeliveryError, TimeoutError) as exc:
            return DeviceOutcome(device=name, outcome=Outcome.OFFLINE, detail=str(exc))
        return DeviceOutcome(device=name, outcome=Outcome.DELIVERED)

    def _address(self, name: str, cluster: int) -> tuple[int, int] | None:
        """The device's NWK address and the endpoint hosting ``cluster``'s client."""
        try:
            device = self.app.get_device(ieee=parse_eui64(name))
        except KeyError:
            return None
        for ep_id, endpoint in sorted(getattr(device, "endpoints", {}).items()):
            if ep_id == 0:
                continue
            if getattr(endpoint, "profile_id", None) == SE_PROFILE_ID and cluster in getattr(
                endpoint, "out_clusters", {}
            ):
                return int(device.nwk), int(ep_id)
        return int(device.nwk), 0xFF  # not interviewed yet: every SE endpoint of the device

    def _need_registry(self) -> HanRegistry:
        if self.registry is None:
            raise TargetError("registry groups and lifecycle states need a HanRegistry")
        return self.registry

    # -- internals: lifecycle ----------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a step of following the network; its failure (e.g. a re-admission whose
        permit could not be sent) is logged, never left to asyncio (#12.20)."""
        task = asyncio.get_running_loop().create_task(coro)
        keep_task(self._tasks, task, LOGGER, "following the network failed", logging.ERROR)
        return task

    def _network_event(self, ieee: t.EUI64, event: LifecycleEvent, *, nwk: int = 0) -> None:
        if bytes(ieee) in _NOT_A_DEVICE:  # a spoofed or broken Device_annce: no device has it
            LOGGER.debug("%s of EUI-64 %s (not a device address) ignored", event.value, ieee)
            return
        name = device_name(ieee)
        if event is LifecycleEvent.JOINED:
            self._stream.emit(DeviceJoined(device=name, nwk=nwk))
            self._spawn(self._addressed(t.EUI64(ieee), nwk))
        elif event is LifecycleEvent.LEFT:
            self._stream.emit(DeviceLeft(device=name))
        self._spawn(self._follow(name, event))

    def _heard(self, ieee: t.EUI64) -> None:
        """A frame from ``ieee``: a device being removed is asked to leave again (at most once
        per ``LEAVE_RETRY_DELAYS[0]`` seconds)."""
        if self.registry is None or self._stopped or bytes(ieee) in _NOT_A_DEVICE:
            return
        try:
            key = self.registry.get(t.EUI64(ieee)).eui64
        except RegistryError:
            return
        if self._watch.heard(key, asyncio.get_running_loop().time()):
            self._timer.update()
            self._spawn(self._leave(t.EUI64(ieee)))

    async def _due(self, due: list[Due]) -> None:
        """The deadlines of pending devices: ask a device being removed to leave again, or
        apply TIMED_OUT (recorded removed, or reported still pending)."""
        for item in due:
            if item.event is None:
                self._spawn(self._leave(parse_eui64(item.eui64)))
            else:
                self._spawn(self._timed_out(item))

    async def _timed_out(self, item: Due) -> None:
        """A pending device's time is up (TIMED_OUT). A registry write that fails leaves it
        due again :data:`TIMEOUT_RETRY` seconds later (taken from the watch, it waited for
        a restart: a device never seen leaving stayed being removed meanwhile)."""
        assert item.event is not None
        name = device_name(parse_eui64(item.eui64))
        try:
            await self._follow(name, item.event, item.detail)
        except Exception:
            registry = self._need_registry()
            with contextlib.suppress(RegistryError):
                state = registry.get(name).state  # as stored
                at = asyncio.get_running_loop().time() + TIMEOUT_RETRY
                self._watch.again(item.eui64, state, at)
                self._timer.update()
            raise

    async def _addressed(self, ieee: t.EUI64, nwk: int) -> None:
        """``ieee`` is at ``nwk`` now: the meter's reporting records follow a device whose
        address changed, and those of a device whose old address another one took are dropped
        (they would report to the newcomer). The address map changes once they have, stored
        with a meter and a store (zse's order): a write that fails or is cancelled leaves
        the device at its old address in the map and in the records, followed from there at
        its next address change or the next start (:meth:`_load_addresses`; zigpy tells no
        join for an announce at the address it has). (The map changed first: the records
        stayed at the old address, reported to whichever device took it, and nothing tried
        again.)"""
        async with self._addressing:
            old = self._addresses.get(ieee)
            others = [o for o, address in self._addresses.items() if address == nwk and o != ieee]
            if old == nwk and not others:
                return
            if self.meter is not None:
                if others:
                    await self.meter.forget(nwk)
                if old is not None:
                    await self.meter.readdress(old, nwk)
            if self.meter is not None and self.store is not None:
                batch = Batch().put(_ADDRESSES_NAMESPACE, device_name(ieee), nwk)
                for other in others:
                    batch.delete(_ADDRESSES_NAMESPACE, device_name(other))
                try:
                    await self.store.commit(batch)
                except BaseException:
                    if batch.landed is not None:  # cancelled during its transaction: stored
                        self._mapped(ieee, nwk, others)
                    raise
            self._mapped(ieee, nwk, others)

    def _mapped(self, ieee: t.EUI64, nwk: int, others: list[t.EUI64]) -> None:
        """The address map has ``ieee`` at ``nwk``, and ``others`` (there before) nowhere."""
        for other in others:
            self._addresses.pop(other, None)
        self._addresses[ieee] = nwk

    def _admits_key_establishment(self, partner: t.EUI64) -> bool:
        """Whether CBKE is run with ``partner`` (SE C.3.1): not with a device being removed
        or removed (its keys are erased; a key established with it would let it back on the
        HAN). Devices the registry does not know, and every device without a registry, are
        admitted as before."""
        if self.registry is None:
            return True
        try:
            state = self.registry.get(t.EUI64(partner)).state
        except (RegistryError, InvalidEui64):
            return True
        return state not in _REMOVED_STATES

    def _key_establishment_event(self, event: KeyEstablishmentEvent) -> None:
        name = device_name(event.partner)
        result = event.result
        if isinstance(result, Established):
            if result.partner_public_key:
                self._public_keys[t.EUI64(event.partner)] = result.partner_public_key
            self._stream.emit(KeyEstablished(device=name, suite=result.suite.id))
            self._spawn(self._key_established(name, result))
        else:
            assert isinstance(result, Terminated)
            self._stream.emit(
                KeyEstablishmentEnded(
                    device=name,
                    status=None if result.status is None else result.status.name,
                    wait_time=result.wait_time,
                    by_peer=result.by_peer,
                )
            )

    def _supply_event(self, event: object) -> asyncio.Future[Any] | None:
        """The meter's supply control events (SupplyChanged...) to the application: what its
        listeners still do with one, for the meter to mark it told (:mod:`zse.zcl.events`)."""
        if isinstance(event, SUPPLY_EVENTS):
            return self._stream.emit(event)
        return None

    def _credit_supply(self, event: object) -> Awaitable[None] | None:
        """The prepay account interrupted or gave back the supply (SE 1.2 D.7): the meter's
        supply control takes the account's state as it now is (Off wins,
        :mod:`zse.metering.supply`), the account's event in hand once it has
        (:mod:`zse.zcl.events`: one the process lost before is told again after the restart,
        and the supply is also made to follow the stored account at start). The state, not
        the event's kind: an old SupplyInterrupted told again after a top-up would otherwise
        cut off a supply the account no longer interrupts. The meter tells the reading that
        charged the account with its lock let go
        (:meth:`~zse.metering.service.MeteringServer.on_readings`), so the change can wait for
        the lock here."""
        if self.meter is None or not isinstance(event, SupplyInterrupted | SupplyRestored):
            return None
        return self._supply_follows_account()

    def _supply_follows_account(self) -> Awaitable[None]:
        """The meter's supply control told the prepay account's state as it now is (no
        account: nothing interrupts the supply for credit); a no-op, nothing stored, when it
        has it already."""
        assert self.meter is not None
        interrupted = self.prepayment is not None and self.prepayment.account.interrupted
        return self.meter.set_credit_interrupted(interrupted)

    def _price_in_force(self, now: int) -> PriceEvent | None:
        """The price in force at ``now`` (Publish Price, SE D.4.2.4.1): the newest of those
        published and active (started, not ended, not superseded), as a restart loads them."""
        return self.price.schedule.current(now)

    def _tier_in_force(self, now: int) -> int:
        """The price tier in force at ``now`` for the meter's tier summations (D.3.2.2.2): the
        price in force's Price Tier with its Extended Price Tier (1-48, D.4.2.4.1), 0 when no
        price is in force or it has no tier. The meter asks at each reading, so a price
        published, superseded, ended or loaded at a restart counts from the next reading on,
        without waiting on the Price server's timer (which only deletes the records of what
        ended, :class:`~zse.price.service.PriceServer`)."""
        price = self._price_in_force(now)
        return 0 if price is None else price.effective_price_tier

    async def _charge_prepayment(self, now: int) -> None:
        """A reading of the meter: charge the prepay account what was used since the last,
        at the price in force (Publish Price, SE D.4.2.4.1; none in force: not charged, the
        next reading counts from this one). A store that fails is logged: the account is
        unchanged and the next reading charges the whole difference. The meter's supply then
        follows the account (nothing to do, nothing stored, when it does already)."""
        assert self.meter is not None
        assert self.prepayment is not None
        core = self.meter.core
        summation = core.read(MeteringAttribute.CURRENT_SUMM_DELIVERED)
        if summation is None:
            return
        price = self._price_in_force(now)
        digits = self.prepayment.account.config.currency_digits
        try:
            await self.prepayment.consume_reading(
                summation,
                price=(
                    None
                    if price is None
                    else unit_price(price.price, price.price_trailing_digit, digits)
                ),
                multiplier=core.read(MeteringAttribute.MULTIPLIER) or 1,
                divisor=core.read(MeteringAttribute.DIVISOR) or 1,
                unit_of_measure=core.read(MeteringAttribute.UNIT_OF_MEASURE) or 0,
            )
        except ZseError as exc:
            LOGGER.warning("the prepay account was not charged: %s", exc)
        if self.meter.supply is not None:  # as the account is: one the meter could not
            try:  # store when the account changed (a full disk then) is made now
                await self._supply_follows_account()
            except ZseError as exc:
                LOGGER.warning("the supply does not follow the prepay account yet: %s", exc)

    async def _key_established(self, name: str, result: Established) -> None:
        """The device's public key stored and its registry step taken. In one commit when
        the registry keeps the device in the ESI's store (its default): two, key then step,
        left the key stored and the device Pending Provisioning for ever (until a re-key)
        when a kill -9 came between them; a start cannot tell that device from one that left
        (its key kept) and take the step. With a registry in a store of its own, the key is
        written first, then the step; a key write cancelled (a stop) during its transaction,
        which the store carries out (:attr:`Batch.landed <zse.store.Batch.landed>`), has the
        step taken before it raises (the device stayed Pending Provisioning)."""
        key = None
        if self.store is not None and result.partner_public_key:
            key = Batch().put(_KEYS_NAMESPACE, name, result.partner_public_key.hex())
        if key is not None and self.store is not None and not self._registry_keeps(name):
            try:
                await self.store.commit(key)
            except asyncio.CancelledError:
                if key.landed is not None:
                    await self._follow(name, LifecycleEvent.KEY_ESTABLISHED)
                raise
            key = None
        await self._follow(name, LifecycleEvent.KEY_ESTABLISHED, batch=key)
        await self._tell_device_management(name)

    def _registry_keeps(self, name: str) -> bool:
        """Whether the registry keeps device ``name`` in the ESI's store: a change of the
        ESI's for it can be written with its registry step (:meth:`_follow`'s ``batch``)."""
        if self.registry is None or self.registry.store is not self.store:
            return False
        try:
            self.registry.get(name)
        except (RegistryError, InvalidEui64):
            return False
        return True

    async def _follow(
        self,
        name: str,
        event: LifecycleEvent,
        detail: str = "seen on the network",
        *,
        batch: Batch | None = None,
    ) -> None:
        """Apply a network event to the registry (devices it does not know are ignored). One
        refused (:class:`LifecycleRefused`) is written to the audit trail as ``refused``; a
        device being removed or removed seen joining or keyed gets its keys erased and is
        asked to leave again (:func:`zse.provisioning.refusal`). ``batch``: changes of the
        ESI's to the registry's store (:meth:`_registry_keeps`), written with the step or
        the refusal."""
        if self.registry is None:
            return
        try:
            before = self.registry.get(name).state
        except RegistryError:
            LOGGER.info("%s: %s for a device not in the registry", name, event.value)
            return
        except InvalidEui64:  # all zeros or all ones: not a device's, so never in the registry
            LOGGER.debug("%s: %s for no device address, ignored", name, event.value)
            return
        try:
            step = await self._transition(name, event, detail, batch)
        except IllegalTransition as exc:
            LOGGER.warning("%s", exc)
            self._stream.emit(
                LifecycleRefused(device=name, event=event, state=before, reason=str(exc))
            )
            actions = refusal(before, event)
            done = "; its keys are erased and it is asked to leave" if actions else ""
            await self._need_registry().refused(name, event, f"{detail}{done}", batch=batch)
            await self._act(parse_eui64(name), actions, None)
            return
        await self._carry_out(parse_eui64(name), step)

    async def _transition(
        self, name: str, event: LifecycleEvent, detail: str, batch: Batch | None = None
    ) -> Transition:
        """Move a device in the registry as the provisioning core decides (``batch``: written
        in the same commit, :meth:`~zse.provisioning.registry.HanRegistry.transition`); a
        change written is reported (:class:`LifecycleChanged`)."""
        registry = self._need_registry()
        async with self._lock:
            step = await registry.transition(name, event, detail, readmit=self.readmit, batch=batch)
        if step.write and step.after is not None:
            self._changed(name, event, step.before, step.after, detail)
            self._watch.watch(step.after, asyncio.get_running_loop().time())
            self._timer.update()
        if step.after is not None and step.after.state in _REMOVED_STATES:
            await self._forget(parse_eui64(name))
        return step

    def _changed(
        self,
        name: str,
        event: LifecycleEvent,
        before: DeviceRecord | None,
        record: DeviceRecord,
        detail: str,
    ) -> None:
        self._stream.emit(
            LifecycleChanged(
                device=name,
                event=event,
                from_state=before.state if before is not None else record.state,
                to_state=record.state,
                detail=detail,
            )
        )
