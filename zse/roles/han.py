"""HAN device roles for the simulator: in-home display, programmable thermostat, load control.

Each role drives one :class:`~zse.sim.SimDevice` (created with its install code, so it holds the
install-code link key) through what an SE device does:

1. **join** the ESI's network with its install code (SE 5.4.8.1);
2. **find the ESI**: ZDO Match_Desc_req for a Key Establishment server on the SE profile
   (SE 5.4.7.1);
3. **CBKE** with :func:`~zse.cbke.service.establish_key`; the new key replaces
   the install-code key on both sides (SE 5.4.7.2);
4. **resync** (SE 5.7.3 start-up): Get Current Price, Get Message Cancellation and Get Last
   Message, Get Scheduled Events — at start-up *and after every rejoin*, which the DRLC
   client leaves to the application;
5. then **display** messages, **apply** load control and **report** (Report Event Status, signed
   with the device's suite-1 key), with opt-out hooks.

Events (frozen keyword-only dataclasses) come through ``on_event`` and ``events()``: the role's
own (:class:`Joined`, :class:`KeyEstablished`, :class:`Resynced`, :class:`Left`), the clients'
(:class:`~zse.price.service.PriceReceived`, :class:`~zse.price.service.PriceValueReceived`,
the SE 1.2 tariffs' :class:`~zse.price.service.TariffReceived` and
:class:`~zse.price.service.TariffCancelled`,
:mod:`zse.messaging` board events, :class:`~zse.drlc.ApplyLoadControl` /
:class:`~zse.drlc.StopLoadControl`, each Report Event Status sent,
:class:`~zse.drlc.service.ReportSent`), the display's :class:`ConfirmationSent` and each role's
device state (:class:`ThermostatChanged`, :class:`LoadChanged`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Final, Literal

import zigpy.zdo.types as zdo_t
from zigpy.exceptions import DeliveryError
from zigpy.zcl import foundation

from zse.calendar.core import CalendarReading
from zse.calendar.service import CALENDAR, CalendarClient
from zse.cbke.credentials import Credentials, HeldCredentials
from zse.cbke.service import KEY_ESTABLISHMENT, KEY_ESTABLISHMENT_ATTEMPTS, establish_key
from zse.devmgmt.core import (
    DISPLAY_CLEARS,
    ChangeOfTenancy,
    SupplierTakesEffect,
    TenancyTakesEffect,
)
from zse.devmgmt.service import DEVICE_MANAGEMENT_CLUSTER, DeviceManagementClient
from zse.devmgmt.wire import TenancyChangeControl
from zse.drlc import (
    LOAD_FIELDS,
    MANDATORY_LEVELS,
    TEMPERATURE_FIELDS,
    Abilities,
    ApplyLoadControl,
    LoadControlEvent,
    StopLoadControl,
)
from zse.drlc.service import DRLC, DrlcClient
from zse.errors import DecodeError, ZseError
from zse.events.service import EVENTS, EventsClient
from zse.messaging import BoardEvent, Message
from zse.messaging.service import MESSAGING, MessagingClient
from zse.metering.display import (
    EnergyLedger,
    EnergyScreen,
    TierPrice,
    block_attribute_ids,
    block_attributes,
    energy_screen,
    priced_units,
    tariff_of,
)
from zse.metering.formatting import Reading
from zse.metering.protocol import SUMMATION, MeteringClientConfig, MeterReading
from zse.metering.service import METERING, ClientEvent, MeteringClient, find_meter
from zse.prepayment.protocol import TopUpAnswered
from zse.prepayment.service import PREPAYMENT, PrepaymentClient, PrepayStatus
from zse.price.core import (
    BlockPeriod,
    BlockThresholds,
    PriceAttributes,
    PriceMatrix,
    Tariff,
    TariffInformation,
    TierLabels,
)
from zse.price.service import PRICE, PriceClient, PriceReceived, PriceValueReceived
from zse.se.ids import (
    IN_HOME_DISPLAY,
    LOAD_CONTROL_DEVICE,
    PROGRAMMABLE_THERMOSTAT,
    PriceAttribute,
)
from zse.se.ids import SE_PROFILE_ID as SE_PROFILE
from zse.se.types import ALL_DEVICE_CLASSES, DeviceClass, UnitOfMeasure
from zse.store import Store
from zse.time.core import zone_from_attributes
from zse.time.service import TIME, TimeReading, read_time, system_clock
from zse.zcl._tasks import keep_task
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import APPLICATION_ENDPOINTS, Matched, match_descriptors, match_servers
from zse.zcl.events import EventStream

__all__ = [
    "IF_SERVED",
    "ConfirmationSent",
    "EsiNotFound",
    "HanDevice",
    "HanEvent",
    "InHomeDisplay",
    "Joined",
    "KeyEstablished",
    "Left",
    "LoadChanged",
    "LoadControlDevice",
    "Note",
    "ProgrammableThermostat",
    "Resynced",
    "TenancyChangeApplied",
    "ThermostatChanged",
]

LOGGER = logging.getLogger(__name__)

#: Match_Desc_req attempts a HAN device makes when the coordinator does not answer, and the
#: seconds between them: as Silicon Labs' Smart Energy Registration plugin (gecko_sdk
#: smart-energy-registration.c), which counts a Key Establishment discovery that found
#: nothing as an error, tries again after ``..._REGISTRATION_DELAY_RETRY``
#: (``MILLISECOND_TICKS_PER_SECOND << 5``, about 32 s) and aborts at its error limit (3).
ESI_DISCOVERY_ATTEMPTS = 3
ESI_DISCOVERY_RETRY_DELAY = 32

#: DRLC device class bits (SE D.2.2.3.1.1.2).
HVAC = int(DeviceClass.HVAC_Compressor_or_Furnace)
WATER_HEATER = int(DeviceClass.Water_Heater)


class EsiNotFound(ZseError):
    """No ESI on the network answered for a Key Establishment server (Match_Desc_req)."""


@dataclass(frozen=True, kw_only=True)
class Joined:
    """The device joined (or rejoined) the ESI's network."""

    device: str
    nwk: int
    esi_endpoint: int


@dataclass(frozen=True, kw_only=True)
class KeyEstablished:
    """CBKE succeeded with the ESI: SE traffic is now secured with the new link key."""

    device: str
    suite: int


@dataclass(frozen=True, kw_only=True)
class Resynced:
    """The device asked the ESI for what it may have missed: the price and the message it
    got back; the scheduled load control events arrive afterwards as Load Control Events
    (Get Scheduled Events is answered with one command per event)."""

    device: str
    price_issuer_event_id: int | None
    message_id: int | None


@dataclass(frozen=True, kw_only=True)
class Left:
    """The device left the network (on its own or asked to)."""

    device: str


@dataclass(frozen=True, kw_only=True)
class ThermostatChanged:
    """The thermostat's effective set points (0.01 °C) after a load control change."""

    device: str
    cooling_set_point: int
    heating_set_point: int
    issuer_event_id: int | None


@dataclass(frozen=True, kw_only=True)
class LoadChanged:
    """The load control device's output: ``duty_cycle`` % (100 = normal, 0 = off)."""

    device: str
    on: bool
    duty_cycle: int
    issuer_event_id: int | None


@dataclass(frozen=True, kw_only=True)
class TenancyChangeApplied:
    """A change of tenancy took effect on this device (SE 1.2 D.10.2.4.1): ``cleared`` names
    what it dropped of the previous tenant's as the control bits asked (``"messages"``: the
    messages received before the implementation time; ``"prices"``: prices, block pricing
    values and tariffs; ``"consumption history"``: a display's energy ledger); ``for_the_meter``
    names the control bits that are the meter's to act on (snapshots, registers, contactor...)."""

    device: str
    change: ChangeOfTenancy
    cleared: tuple[str, ...]
    for_the_meter: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ConfirmationSent:
    """The display's user confirmed a message (Message Confirmation, SE D.5.2.4.2);
    ``acknowledged``: the ESI answered (else the confirmation is retried)."""

    device: str
    message_id: int
    answer: bool | None
    response: str | None
    acknowledged: bool


HanEvent = Any  # any of the dataclasses above, the clients' events and the board's


class HanDevice:
    """A simulated SE HAN device: join, CBKE, resync, then price, messages and load control.

    ``device``: a :class:`~zse.sim.SimDevice` made with its install code
    (``air.device(eui, install_code=code, channel=...)``). ``credentials``: its CBKE
    credentials. ``clock()``: ZigBee UTCTime. ``rng``: the DRLC randomization draw (and, with
    ``cbke_rng``, seeded CBKE ephemeral keys for repeatable simulations). ``store``: persists
    the message board and the DRLC table. ``opt_out(event)``: the user's policy, asked at each
    event start; True opts the device out (SE D.2.3.3.1.1.2 status 0x04). It is not asked about
    a mandatory criticality level, which cannot be opted out of (D.2.2.3.1.1.6).
    """

    device_type: ClassVar[int] = 0x0000
    default_device_class: ClassVar[int] = ALL_DEVICE_CLASSES
    #: The Load Control Event fields the role acts on (what the DRLC core decides from).
    applies: ClassVar[frozenset[str]] = frozenset()
    #: Server clusters the role hosts besides Key Establishment (a meter's Metering).
    server_clusters: ClassVar[tuple[int, ...]] = ()

    def __init__(
        self,
        device: Any,
        *,
        credentials: Credentials | HeldCredentials | Iterable[Credentials | HeldCredentials],
        clock: Callable[[], int] = system_clock,
        endpoint_id: int = 1,
        device_class: int | None = None,
        utility_enrollment_group: int = 0,
        start_randomization_minutes: int = 0,
        duration_randomization_minutes: int = 0,
        rng: random.Random | None = None,
        cbke_rng: random.Random | None = None,
        executor: Executor | None = None,
        store: Store | None = None,
        opt_out: Callable[[LoadControlEvent], bool] | None = None,
        zigbee_groups: Iterable[int] = (),
    ) -> None:
        self.device = device
        self.name = str(device.ieee)
        self.credentials = credentials
        self.clock = clock
        self.executor = executor
        self.cbke_rng = cbke_rng
        self.opt_out_policy = opt_out
        self.endpoint = device.add_endpoint(
            endpoint_id,
            profile_id=SE_PROFILE,
            device_type=self.device_type,
            in_clusters=[KEY_ESTABLISHMENT, *self.server_clusters],
            out_clusters=[
                KEY_ESTABLISHMENT,
                TIME,
                PRICE,
                DRLC,
                MESSAGING,
                DEVICE_MANAGEMENT_CLUSTER,
                EVENTS,
                CALENDAR,
                *self.more_clients(),
            ],
        )
        for group in zigbee_groups:
            self.endpoint.add_group(group)
        self.esi_endpoint: int | None = None
        self.price = PriceClient(self.endpoint, server_ep=0, clock=clock)
        self.messaging = MessagingClient(self.endpoint, server_ep=0, clock=clock, store=store)
        #: Device Management (SE 1.2 D.10): tenancy, supplier, site id, CIN.
        self.device_management = DeviceManagementClient(
            self.endpoint, server_ep=0, clock=clock, store=store
        )
        #: Events (SE 1.2 D.11): reads and clears the ESI's event logs, hears Publish Event.
        self.event_log = EventsClient(self.endpoint, server_ep=0, clock=clock)
        #: The Calendar client (SE 1.2 D.9): the ESI's TOU calendars, put together.
        self.calendar = CalendarClient(self.endpoint, server_ep=0, clock=clock)
        items = _items(credentials)
        suite1 = _suite1(items)
        # a radio holding its own suite-1 key signs the reports itself (han_stick, mode b)
        signer = getattr(device, "held_signer", None) if _held_suite1(items) else None
        self.drlc = DrlcClient(
            self.endpoint,
            server_ep=0,
            device_class=self.default_device_class if device_class is None else device_class,
            utility_enrollment_group=utility_enrollment_group,
            start_randomization_minutes=start_randomization_minutes,
            duration_randomization_minutes=duration_randomization_minutes,
            abilities=self.abilities(),
            clock=clock,
            rng=rng,
            credentials=suite1,
            signer=signer,
            store=store,
        )
        self._stream: EventStream[HanEvent] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._started = False
        self.price.on_event(self._on_price)
        self.price.on_value(self._stream.emit)
        self.price.on_tariff(self._stream.emit)  # SE 1.2 tariffs: TariffReceived, TariffCancelled
        # calendars: CalendarReceived, CalendarCancelled, CalendarChanged (a new tier...)
        self.calendar.on_event(self._stream.emit)
        self.messaging.on_event(self._on_board)
        self.drlc.on_event(self._on_load_control)
        self.drlc.on_report(self._stream.emit)
        self.device_management.on_event(self._on_device_management)
        self.event_log.on_event(self._stream.emit)
        device.on_left(self._on_left)
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Changes of tenancy being acted on (resync waits for them).
        self._changing: set[asyncio.Task[Any]] = set()
        self._changing_cleared_prices = False

    # -- the life of a device ----------------------------------------------------------------

    async def start(self) -> None:
        """Join, find the ESI, run CBKE, start the clients and resync."""
        await self._join_and_key()
        if not self._started:
            self._started = True
            self.price.start()
            self.calendar.start()
            await self.messaging.start(fetch=False)
            await self.drlc.start(get_scheduled_events=False)
            await self.device_management.start()
            self.event_log.start()
            await self.start_more()
        await self.resync()

    def more_clients(self) -> list[int]:
        """Client clusters a role adds to its endpoint (none by default)."""
        return []

    async def start_more(self) -> None:
        """Start the clients a role adds, once keyed (nothing by default)."""

    async def rejoin(self) -> None:
        """After leaving (or losing the network): join again, run CBKE again, resync
        (SE 5.7.3; the DRLC client leaves Get Scheduled Events after a rejoin to us)."""
        await self.start()

    async def leave(self) -> None:
        """Leave the network (NWK Leave)."""
        await self.device.leave()

    async def stop(self) -> None:
        """Stop the clients (the store, if any, keeps their state)."""
        await self.messaging.stop()
        await self.drlc.stop()
        await self.device_management.stop()
        self.event_log.stop()
        await self.calendar.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def resync(self) -> Resynced:
        """Ask the ESI for the current price, cancellations and the last message, and the
        scheduled load control events: what a device does when it starts or rejoins."""
        price = await self._safely(self.price.get_current_price())
        await self._safely(self.calendar.sync())  # the parts missing are asked as they settle
        await self._safely(self.messaging.fetch())
        await self._safely(self.drlc.get_scheduled_events())
        # a change of tenancy that took effect while the device was away is acted on now
        await self._safely(self.device_management.fetch())
        await asyncio.gather(*self._changing)
        if self._changing_cleared_prices:
            self._changing_cleared_prices = False
            price = self.price.current()
        current = self.messaging.current()
        event = Resynced(
            device=self.name,
            price_issuer_event_id=None if price is None else price.issuer_event_id,
            message_id=None if current is None else current.message_id,
        )
        self._stream.emit(event)
        return event

    async def opt_out(self, issuer_event_id: int) -> None:
        """The user opts out of a load control event (Report Event Status 0x04)."""
        await self.drlc.opt_out(issuer_event_id)

    async def opt_in(self, issuer_event_id: int) -> None:
        """The user opts back in (0x05)."""
        await self.drlc.opt_in(issuer_event_id)

    async def respond_cpp_event(self, issuer_event_id: int, accepted: bool) -> None:
        """The user accepts or rejects a CPP event asking for it (CPP Event Response, SE
        D.4.2.3.14): :meth:`zse.price.service.PriceClient.respond_cpp_event`."""
        await self.price.respond_cpp_event(issuer_event_id, accepted)

    def calendar_at(self, utc: int | None = None, calendar_type: int = 0) -> CalendarReading | None:
        """What the ESI's calendar of ``calendar_type`` (0: delivered TOU) says at ``utc``
        (default now): the tier (or Friendly Credit, aux switches) in force and when it next
        changes; None without a calendar. Local time: :meth:`use_time` sets the zone."""
        return self.calendar.at(utc, calendar_type)

    def tier_label(self, tier: int | None, utc: int | None = None) -> str | None:
        """The label of price tier ``tier`` (1-48) in the delivered tariff in force at
        ``utc`` (default now): its Publish Tier Labels (SE 1.2 D.4.2.4.9), else ``Tier N``,
        as on MQTT (:class:`zse.mqtt.core.DeviceView`); None for no tier (0 or None,
        D.4.2.4.1.1.8)."""
        if not tier:
            return None
        held = self.tariff_held(utc)
        labels = next((v for v in held[1] if isinstance(v, TierLabels)), None) if held else None
        label = None if labels is None else labels.labels.get(tier)
        return f"Tier {tier}" if not label else bytes(label).decode("utf-8", "replace")

    def tariff_held(
        self, utc: int | None = None
    ) -> tuple[TariffInformation, tuple[Any, ...]] | None:
        """The delivered tariff (tariff type 0, SE 1.2 D.4.2.4.5.1.5) in force at ``utc``
        (default now) with its price matrix, block thresholds and tier labels held whole
        (D.4.2.4.6-7, 9), or None."""
        now = self.clock() if utc is None else utc
        tariffs = self.price.tariffs
        held = tariffs.current(now, 0)
        if held is None:
            return None
        values = (
            tariffs.value(kind, held.issuer_tariff_id, now, held.provider_id)
            for kind in (PriceMatrix, BlockThresholds, TierLabels)
        )
        return held, tuple(value for value in values if value is not None)

    def use_time(self, reading: TimeReading) -> None:
        """Read calendars on standard or local time with the TimeZone and DST of a Time
        reading (:meth:`read_time`)."""
        self.calendar.zone = zone_from_attributes(reading.values)

    async def read_time(self) -> TimeReading:
        """Read the ESI's Time attributes in one Read Attributes (ZCL 3.12.2.2) and compute
        local time from TimeZone and DST the way the ESI does (:func:`zse.time.service.
        read_time`). Only on demand: a device's start does not read the time. The ESI is the
        one time server read, so ZCL 3.12.2.2.2's ranking of servers has nothing to choose;
        before setting a clock from the reading, check :attr:`~zse.time.service.TimeReading.
        untrusted` (Time 0xFFFFFFFF, neither Master nor Synchronized), as
        :meth:`zse.roles.han_stick.MeterClock.adopt` does."""
        if self.esi_endpoint is None:
            raise EsiNotFound(f"{self.name}: not joined to an ESI yet")
        return await read_time(self.endpoint, 0x0000, self.esi_endpoint, encrypt=True)

    # -- internals ---------------------------------------------------------------------------

    async def _join_and_key(self) -> None:
        device = self.device
        await device.join()
        esi_ep = await self._find_esi()
        self.esi_endpoint = esi_ep
        clients = (self.price, self.messaging, self.drlc, self.device_management, self.event_log)
        for client in clients:
            client.server_nwk = 0x0000
            client.server_ep = esi_ep
        self.calendar.server = Destination.device(0x0000, esi_ep)
        self._stream.emit(Joined(device=self.name, nwk=int(device.nwk), esi_endpoint=esi_ep))
        options: dict[str, Any] = {} if self.cbke_rng is None else {"rng": self.cbke_rng}
        established = await establish_key(
            self.endpoint,
            partner_nwk=0x0000,
            partner_endpoint=esi_ep,
            partner_eui64=device.tc_ieee,
            credentials=self.credentials,
            install_key=device.set_link_key,
            executor=self.executor,
            # a radio holding its own CBKE credentials does their arithmetic (han_stick)
            holder=getattr(device, "cbke_holder", None),
            # a busy meter, a lost, late or garbled frame: tried again (not a refused certificate)
            attempts=KEY_ESTABLISHMENT_ATTEMPTS,
            **options,
        )
        self._stream.emit(KeyEstablished(device=self.name, suite=established.suite.id))

    async def _find_esi(self) -> int:
        """The ESI's endpoint: ZDO Match_Desc_req to the coordinator for a Key Establishment
        server on the SE profile (SE 5.4.7.1). Several endpoints listed: the first, in the
        coordinator's order (the CBKE key is the device's, not an endpoint's; the Price,
        Messaging and DRLC clients use the same endpoint). No endpoint, an error status or a
        response that does not decode: :class:`EsiNotFound` saying which. No answer (a lost
        request or response): asked again, :data:`ESI_DISCOVERY_ATTEMPTS` times in all,
        :data:`ESI_DISCOVERY_RETRY_DELAY` seconds apart; then ``TimeoutError`` saying so."""
        try:
            matched = await self._match_esi()
        except DecodeError as exc:
            raise EsiNotFound(
                f"{self.name}: the coordinator's Match_Desc_rsp does not decode ({exc})"
            ) from exc
        if matched.status != zdo_t.Status.SUCCESS:
            raise EsiNotFound(
                f"{self.name}: the coordinator answered Match_Desc_req with status "
                f"{_zdo_status(matched.status)}"
            )
        endpoints = [ep for ep in matched.endpoints if ep in APPLICATION_ENDPOINTS]
        if not endpoints:
            odd = f" (it listed {matched.endpoints})" if matched.endpoints else ""
            raise EsiNotFound(f"{self.name}: no Key Establishment server on the coordinator{odd}")
        if len(endpoints) > 1:
            LOGGER.info(
                "%s: Key Establishment server on endpoints %s: the first, %d, is the ESI's",
                self.name,
                endpoints,
                endpoints[0],
            )
        return endpoints[0]

    async def _match_esi(self) -> Matched:
        """The coordinator's Match_Desc_rsp for a Key Establishment server, asked again after
        no answer (Silicon Labs' registration plugin does so, see ESI_DISCOVERY_ATTEMPTS)."""
        why: list[str] = []
        while True:
            try:
                return await match_descriptors(self.device, KEY_ESTABLISHMENT)
            except (TimeoutError, DeliveryError) as exc:
                why.append(
                    "no answer in time" if isinstance(exc, TimeoutError) else f"not sent ({exc})"
                )
            if len(why) == ESI_DISCOVERY_ATTEMPTS:
                tried = "; ".join(f"attempt {n}: {w}" for n, w in enumerate(why, 1))
                raise TimeoutError(
                    f"{self.name}: the coordinator did not answer Match_Desc_req for the Key"
                    f" Establishment server in {len(why)} attempts ({tried})"
                )
            LOGGER.warning(
                "%s: Match_Desc_req for the ESI, attempt %d of %d: %s; asking again in %d s",
                self.name,
                len(why),
                ESI_DISCOVERY_ATTEMPTS,
                why[-1],
                ESI_DISCOVERY_RETRY_DELAY,
            )
            await asyncio.sleep(ESI_DISCOVERY_RETRY_DELAY)

    async def _safely(self, request: Any) -> Any:
        try:
            return await request
        except (TimeoutError, OSError, DeliveryError) as exc:  # offline ESI: keep what we have
            self._stream.emit(_note(self.name, f"resync request failed: {exc}"))
            return None

    def _on_left(self) -> None:
        self._stream.emit(Left(device=self.name))

    def _on_price(self, event: PriceReceived) -> None:
        self._stream.emit(event)

    def _on_board(self, event: BoardEvent) -> None:
        self._stream.emit(event)

    def _on_device_management(self, event: Any) -> None:
        """Tell the application; a change of tenancy taking effect is acted on first."""
        self._stream.emit(event)
        if isinstance(event, TenancyTakesEffect):
            task = asyncio.get_running_loop().create_task(self.change_of_tenancy(event.change))
            keep_task(self._tasks, task, LOGGER, f"{self.name}: change of tenancy failed")
            self._changing.add(task)
            task.add_done_callback(self._changing.discard)
        elif isinstance(event, SupplierTakesEffect):
            LOGGER.info("%s: supplier %d from now on", self.name, event.change.proposed_provider_id)

    async def change_of_tenancy(self, change: ChangeOfTenancy) -> TenancyChangeApplied:
        """Do what a change of tenancy's control bits ask of a HAN device (SE 1.2
        D.10.2.4.1.1.5): Clear IHD Data (Consumer) drops the messages received before the
        implementation time, the event log last read and the consumption history; Clear IHD
        Data (Supplier), Clear Tariff Plan and Clear Standing Charge drop the prices, block
        pricing values and tariffs held, then ask the ESI for the price in force now (Get
        Current Price); Clear IHD Data (Supplier) and Clear Tariff Plan also drop the
        calendars (the tariff's time-of-use switching, SE 1.2 D.9), then ask the ESI for
        those it holds now (Get Calendar). The other bits are the meter's. Told as
        :class:`TenancyChangeApplied`."""
        control = TenancyChangeControl(change.control)  # type: ignore[no-untyped-call]
        cleared: list[str] = []
        if control & TenancyChangeControl.Clear_IHD_Data_Consumer:
            await self.messaging.clear_before(change.implementation_time or self.clock())
            cleared.append("messages")
            if self.event_log.forget():
                cleared.append("event log read")
        if control & (
            TenancyChangeControl.Clear_IHD_Data_Supplier
            | TenancyChangeControl.Clear_Tariff_Plan
            | TenancyChangeControl.Clear_Standing_Charge
        ):
            self.price.clear()
            cleared.append("prices")
            self._changing_cleared_prices = True
            if self.esi_endpoint is not None:  # the price in force now: the new tenant's
                await self._safely(self.price.get_current_price())
        if control & (
            TenancyChangeControl.Clear_IHD_Data_Supplier | TenancyChangeControl.Clear_Tariff_Plan
        ):
            self.calendar.clear()
            cleared.append("calendars")
            if self.esi_endpoint is not None:  # the calendars the ESI holds now
                await self._safely(self.calendar.sync())
        cleared.extend(self.clear_history(control))
        for_the_meter = tuple(
            bit.name or ""
            for bit in TenancyChangeControl
            if control & bit and not bit & DISPLAY_CLEARS
        )
        applied = TenancyChangeApplied(
            device=self.name, change=change, cleared=tuple(cleared), for_the_meter=for_the_meter
        )
        self._stream.emit(applied)
        return applied

    def clear_history(self, control: int) -> list[str]:
        """Drop the consumption history a role keeps (none by default), as ``control``
        asks; returns what it cleared."""
        return []

    def _on_load_control(self, action: ApplyLoadControl | StopLoadControl) -> None:
        self._stream.emit(action)
        if isinstance(action, ApplyLoadControl):
            self.apply(action)
            policy = self.opt_out_policy
            if (
                policy is not None
                and not action.resumed
                and action.event.criticality_level not in MANDATORY_LEVELS
                and policy(action.event)
            ):
                task = asyncio.get_running_loop().create_task(
                    self._opt_out_by_policy(action.issuer_event_id)
                )
                keep_task(self._tasks, task, LOGGER, f"{self.name}: opting out failed")
        else:
            self.restore(action)

    async def _opt_out_by_policy(self, issuer_event_id: int) -> None:
        """The policy's opt-out; a refusal or an unreachable ESI is told as a note."""
        try:
            await self.drlc.opt_out(issuer_event_id)
        except (ZseError, LookupError, TimeoutError, OSError) as exc:
            self._stream.emit(_note(self.name, f"opting out of event {issuer_event_id}: {exc}"))

    def abilities(self) -> Abilities:
        """What the device does with a Load Control Event, for the DRLC core (overridden by
        a role with normal set points)."""
        return Abilities(applies=self.applies)

    def apply(self, action: ApplyLoadControl) -> None:
        """Apply ``action.applied``, the core's decision, to the device (overridden by each
        role); the device's Report Event Status carries the same values."""

    def restore(self, action: StopLoadControl) -> None:
        """Go back to normal operation (overridden by each role)."""


@dataclass(frozen=True, kw_only=True)
class Note:
    """Something the role wants the application to know (e.g. a resync request failed)."""

    device: str
    text: str


async def servers_on(device: Any, cluster: int, nwk: int = 0x0000) -> list[int]:
    """The endpoints of ``nwk`` serving ``cluster`` on the SE profile (Match_Desc_req)."""
    _address, endpoints = await match_servers(device, cluster, nwk)
    return endpoints


def _zdo_status(status: int) -> str:
    """A ZDO status (ZB 2.4.5) by name, or in hex when it is none of them."""
    name = zdo_t.Status(status).name  # zigpy names an unknown value undefined_0x..
    return f"0x{status:02X}" if name.startswith("undefined") else f"{name} (0x{status:02X})"


def _note(device: str, text: str) -> Note:
    return Note(device=device, text=text)


def _items(
    credentials: Credentials | HeldCredentials | Iterable[Credentials | HeldCredentials],
) -> list[Credentials | HeldCredentials]:
    if isinstance(credentials, Credentials | HeldCredentials):
        return [credentials]
    return list(credentials)


def _suite1(items: list[Credentials | HeldCredentials]) -> Credentials | None:
    """The suite-1 credentials, which sign DRLC reports (SE D.2.3.3.1.1.10), when the host
    holds their private key."""
    for item in items:
        if item.suite.id == 1 and isinstance(item, Credentials):
            return item
    return None


def _held_suite1(items: list[Credentials | HeldCredentials]) -> bool:
    """Whether the suite-1 key is held by the radio (which then signs DRLC reports)."""
    return any(item.suite.id == 1 and isinstance(item, HeldCredentials) for item in items)


class InHomeDisplay(HanDevice):
    """An in-home display (SE device 0x0502, In-Premise Display): shows the price and
    messages and lets the user confirm them; it follows load control events of every device
    class, for display only (it applies nothing).

    With ``metering=True`` (off by default) it also shows energy (#14.4-5): it finds the meter
    (a Metering server on the ESI, or the endpoint ``meter`` = (NWK address, endpoint), e.g. a
    mirror), follows summation and demand with a :class:`~zse.metering.service.MeteringClient`,
    reads the Price server's block tariff attributes, and prices the consumption it sees
    (:meth:`showing_energy`).

    With ``prepayment=True`` (off by default) it is a prepay meter's display (SE 1.2 D.7): a
    :class:`~zse.prepayment.service.PrepaymentClient` of the ESI's Prepayment server reads the
    credit (:meth:`read_prepay_status`), tops up (:meth:`top_up`) and selects emergency credit
    (:meth:`select_emergency_credit`); its events (top-up accepted or refused, low credit,
    credit exhausted, emergency credit selected, the snapshots and logs the meter sends) come
    through ``on_event``. It reads the credit at each resync and, following the meter
    (``metering=True``), with a summation reading at most every :data:`PREPAY_READ_SECONDS`:
    the :class:`~zse.prepayment.service.PrepayStatus` read comes as an event when it
    changed.

    With ``prepayment="if served"`` the display lists the Prepayment client and asks the
    ESI once, when it starts, whether it serves Prepayment (one ZDO Match_Desc_req on the SE
    profile, SE 5.4.7.1, as for the meter): if its endpoint does, it is a prepay display as
    with ``prepayment=True``; if not, or if the ESI's answer does not come or does not
    decode (logged as a warning), it reads no credit."""

    device_type = IN_HOME_DISPLAY
    default_device_class = ALL_DEVICE_CLASSES
    applies = frozenset()

    def __init__(
        self,
        device: Any,
        *,
        metering: bool = False,
        meter: tuple[int, int] | None = None,
        metering_config: MeteringClientConfig | None = None,
        prepayment: bool | Literal["if served"] = False,
        **options: Any,
    ) -> None:
        if prepayment not in (True, False, IF_SERVED):
            raise ValueError(f"prepayment: True, False or {IF_SERVED!r}, not {prepayment!r}")
        self._metering = metering
        self._prepayment = prepayment
        super().__init__(device, **options)
        #: The Prepayment client (a prepay display), of the ESI's endpoint once found.
        self.prepayment: PrepaymentClient | None = None
        #: When the credit was last read (ZigBee UTCTime), and the read under way.
        self._prepay_read_at: int | None = None
        self._prepay_reading: asyncio.Task[Any] | None = None
        #: The question whether the ESI serves Prepayment, while it is asked.
        self._serving: asyncio.Task[bool] | None = None
        if prepayment is True:
            self._add_prepayment()
        self._meter = meter
        self._metering_config = metering_config
        self.metering: MeteringClient | None = None
        self.ledger = EnergyLedger()
        #: The Price server's block tariff (D.4.2.2.3-5), read when metering.
        self.blocks: PriceAttributes | None = None

    def more_clients(self) -> list[int]:
        return [
            *((METERING,) if self._metering else ()),
            *((PREPAYMENT,) if self._prepayment else ()),
        ]

    def _add_prepayment(self) -> None:
        self.prepayment = PrepaymentClient(self.endpoint, server_ep=0, clock=self.clock)
        self.prepayment.on_event(self._stream.emit)

    async def _esi_serves_prepayment(self) -> bool:
        """Whether the ESI's endpoint serves Prepayment: one Match_Desc_req on the SE
        profile to the coordinator (SE 5.4.7.1). An error status: no (as no server listed);
        no answer, no acknowledgement or an answer that does not decode: no, with a warning."""
        try:
            _address, endpoints = await match_servers(self.device, PREPAYMENT, 0x0000)
        except (TimeoutError, OSError, DecodeError, DeliveryError) as exc:
            LOGGER.warning(
                "%s: the meter did not say whether it serves Prepayment (Match_Desc_req: %s):"
                " no credit is read",
                self.name,
                str(exc) or type(exc).__name__,
            )
            return False
        if endpoints and self.esi_endpoint not in endpoints:
            LOGGER.warning(
                "%s: Prepayment is served on endpoint(s) %s, not on the ESI's (%s): no credit"
                " is read",
                self.name,
                endpoints,
                self.esi_endpoint,
            )
        return self.esi_endpoint in endpoints

    async def start_more(self) -> None:
        """Ask whether the ESI serves Prepayment (``prepayment="if served"``), and meanwhile
        find the meter and follow it (``metering=True``): a meter that does not answer the
        first question holds neither the meter search nor the resync back. A prepay
        display's Prepayment client starts once known (its credit is read at the resync
        that follows, :meth:`resync`)."""
        if self._prepayment == IF_SERVED and self.prepayment is None and self._serving is None:
            self._serving = asyncio.get_running_loop().create_task(self._esi_serves_prepayment())
        self._start_prepayment()
        if not self._metering:
            return
        try:
            nwk, ep = self._meter if self._meter is not None else await find_meter(self.device)
        except BaseException:
            if self._serving is not None:  # no start: nobody waits for the answer
                self._serving.cancel()
                self._serving = None
            raise
        self.metering = MeteringClient(
            self.endpoint,
            meter_nwk=nwk,
            meter_ep=ep,
            config=self._metering_config,
            clock=self.clock,
        )
        self.metering.on_event(self._on_metering)
        self.price.on_value(self._on_price_value)
        self.price.on_event(self._on_new_tier)
        self.metering.start()
        await self._safely(self.read_block_tariff())

    def _start_prepayment(self) -> None:
        if self.prepayment is not None:
            self.prepayment.server_ep = 0 if self.esi_endpoint is None else self.esi_endpoint
            self.prepayment.start()

    async def resync(self) -> Resynced:
        """As :meth:`HanDevice.resync`; a prepay display reads the credit too (SE 1.2
        D.7.2.2.1), at each start and rejoin (``prepayment="if served"``: once the ESI
        said whether it serves Prepayment, asked while the rest went on)."""
        event = await super().resync()
        serving, self._serving = self._serving, None
        if serving is not None and await serving:
            self._add_prepayment()
            self._start_prepayment()
        if self.prepayment is not None:
            await self._safely(self._read_prepay())
        return event

    async def _read_prepay(self) -> PrepayStatus:
        self._prepay_read_at = self.clock()
        return await self._prepay().read_status()

    def _follow_credit(self) -> None:
        """With a summation reading: read the credit again, at most every
        :data:`PREPAY_READ_SECONDS` and one read at a time (a display without Prepayment,
        ``prepayment=False``, reads nothing). A last read that seems to come later than now
        (the clock was set back) does not hold the next one back."""
        if self.prepayment is None or self._prepay_reading is not None:
            return
        last = self._prepay_read_at
        if last is not None and 0 <= self.clock() - last < PREPAY_READ_SECONDS:
            return
        task = asyncio.get_running_loop().create_task(self._safely(self._read_prepay()))
        self._prepay_reading = task
        keep_task(self._tasks, task, LOGGER, f"{self.name}: reading the credit failed")

        def done(_finished: asyncio.Task[Any]) -> None:
            self._prepay_reading = None

        task.add_done_callback(done)

    async def stop(self) -> None:
        if self._serving is not None:
            self._serving.cancel()
            self._serving = None
        if self.metering is not None:
            await self.metering.stop()
        if self.prepayment is not None:
            self.prepayment.stop()
        await super().stop()

    def _prepay(self) -> PrepaymentClient:
        if self.prepayment is None:
            raise ZseError(f"{self.name}: not a prepay display (prepayment=True)")
        if self.esi_endpoint is not None:  # the ESI's endpoint as last found (a rejoin)
            self.prepayment.server_ep = self.esi_endpoint
        return self.prepayment

    async def top_up(self, code: str | bytes) -> TopUpAnswered:
        """Type a top-up code (UTRN) at the display: Consumer Top Up (SE 1.2 D.7.2.3.4);
        the meter's answer (:class:`~zse.prepayment.protocol.TopUpAnswered`: accepted, or
        why not, and the credit). The code shows masked in events and logs."""
        return await self._prepay().top_up(code)

    async def select_emergency_credit(self) -> bool:
        """Select Available Emergency Credit (SE 1.2 D.7.2.3.1): True when the meter took
        it, False when none was available."""
        return await self._prepay().select_emergency_credit()

    async def read_prepay_status(self) -> PrepayStatus:
        """Read the credit, emergency credit and Credit Status (SE 1.2 D.7.2.2.1)."""
        return await self._prepay().read_status()

    def _metering_client(self) -> MeteringClient:
        if self.metering is None:
            raise ZseError(f"{self.name}: does not follow the meter (metering=True)")
        return self.metering

    async def local_change_supply(self) -> foundation.Status:
        """The consumer restores the meter's armed supply (Local Change Supply, SE 1.2):
        SUCCESS when the supply is on, NOT_AUTHORIZED when it is off and not armed, or
        interrupted for credit (:meth:`MeteringClient.local_change_supply
        <zse.metering.service.MeteringClient.local_change_supply>`)."""
        return await self._metering_client().local_change_supply()

    async def read_supply_status(self) -> int:
        """The meter's Supply Status (SE 1.2, 0x0014: Off 0, Off/Armed 1, On 2)."""
        return await self._metering_client().read_supply_status()

    async def read_block_tariff(self) -> PriceAttributes:
        """Read the block thresholds and block prices from the ESI's Price server (Read
        Attributes, D.4.2.2.3-5): no thresholds served means no block tariff."""
        esi = 0 if self.esi_endpoint is None else self.esi_endpoint
        scale = await self._read_price(
            [
                PriceAttribute.BLOCK_THRESHOLD_COUNT,
                PriceAttribute.THRESHOLD_MULTIPLIER,
                PriceAttribute.THRESHOLD_DIVISOR,
            ],
            esi,
        )
        count = min(int(scale.get(PriceAttribute.BLOCK_THRESHOLD_COUNT, 0)), 15)
        # Block Price attributes number tiers 0-15 only (D.4.2.2.5): a price in tier 16-48
        # has no block prices to read
        seen = {tier for tier in self.ledger.tier_prices if 0 < tier <= _BLOCK_TIERS}
        price = self.price.current()
        if price is not None and 0 < price.effective_price_tier <= _BLOCK_TIERS:
            seen.add(price.effective_price_tier)  # the tier in force, before any reading
        tiers = (0, *sorted(seen))
        values = dict(scale)
        ids = block_attribute_ids(count, tiers) if count else []
        for first in range(0, len(ids), _READ_CHUNK):
            values.update(await self._read_price(ids[first : first + _READ_CHUNK], esi))
        self.blocks = block_attributes(values)
        return self.blocks

    async def _read_price(self, ids: list[int], esi: int) -> dict[int, int]:
        reply = await self.endpoint.request(
            0x0000,
            esi,
            PRICE,
            foundation.GeneralCommand.Read_Attributes,
            b"".join(attr.to_bytes(2, "little") for attr in ids),
            cluster_specific=False,
            encrypt=True,
        )
        if reply.is_cluster_command or reply.command_id != _READ_ATTRIBUTES_RSP:
            return {}
        schema = foundation.GENERAL_COMMANDS[_READ_ATTRIBUTES_RSP].schema
        records: Any
        try:
            records, _ = schema.deserialize(reply.payload)
        except (ValueError, KeyError) as exc:
            self._stream.emit(_note(self.name, f"bad Price attributes: {exc}"))
            return {}
        return {
            int(r.attrid): int(r.value.value)
            for r in records.status_records
            if r.status == foundation.Status.SUCCESS and isinstance(r.value.value, int)
        }

    def clear_history(self, control: int) -> list[str]:
        """The display's energy ledger (the consumption it priced), for Clear IHD Data
        (Consumer) or Clear Historical Load Profile Information."""
        if control & (
            TenancyChangeControl.Clear_IHD_Data_Consumer
            | TenancyChangeControl.Clear_Historical_Load_Profile_Information
        ):
            self.ledger = EnergyLedger()
            return ["consumption history"]
        return []

    def _on_metering(self, event: ClientEvent) -> None:
        self._stream.emit(event)
        if isinstance(event, MeterReading) and event.attribute == SUMMATION:
            self._follow_credit()
            # the period in force, with its (repetition's) start: a period over counts none
            period = self.price.block_periods.current(self.clock(), absolute=True)
            price = self.price.current()
            tier = None if price is None else TierPrice.of(price)  # its tier in force, 0-48
            self.ledger.thresholds = self._block_thresholds()
            self.ledger.add(
                event.reading.value,
                tier,
                None if period is None else (period.issuer_event_id, period.start_time),
            )

    def _on_price_value(self, event: PriceValueReceived) -> None:
        """A new block period may come with new thresholds: read them again."""
        if event.new and isinstance(event.value, BlockPeriod):
            self._reread_block_tariff()

    def _on_new_tier(self, event: PriceReceived) -> None:
        """A price in a tier whose block prices the display has not read: read them."""
        blocks = self.blocks
        if (
            event.new
            and blocks is not None
            and blocks.block_thresholds
            and 0 < event.price.effective_price_tier <= _BLOCK_TIERS
            and not any(tier == event.price.effective_price_tier for tier, _ in blocks.block_prices)
        ):
            self._reread_block_tariff()

    def _reread_block_tariff(self) -> None:
        task = asyncio.get_running_loop().create_task(self._safely(self.read_block_tariff()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _block_thresholds(self) -> list[Fraction]:
        """The block thresholds the display prices with, in metered units (none: no block
        prices read, or thresholds that do not make a tariff): where its ledger keeps the
        order of use when it folds (:class:`~zse.metering.display.EnergyLedger`)."""
        blocks = self.blocks
        if blocks is None or not blocks.block_prices:
            return []
        try:
            return Tariff.from_attributes(blocks, 0, self._metering_scale()).thresholds()
        except ValueError:
            return []

    def _metering_scale(self) -> Fraction:
        """One raw unit of the meter in metered units: its Multiplier / Divisor
        (D.3.2.2.4.2-3; 0 is taken as 1)."""
        formatting = None if self.metering is None else self.metering.protocol.formatting
        if formatting is None:
            return Fraction(1)
        return Fraction(formatting.multiplier or 1, formatting.divisor or 1)

    def showing_energy(self) -> EnergyScreen:
        """The energy page: summation and demand as the meter formats them, what was used in
        the block period (or since the display started), the price and its cost."""
        summation, demand = (None, None) if self.metering is None else self.metering.current()
        formatting = None if self.metering is None else self.metering.protocol.formatting
        meter_unit = UnitOfMeasure.KWH if formatting is None else formatting.unit_of_measure
        tariff = tariff_of(self.ledger, self.blocks, self._metering_scale())
        per_unit: Fraction | None = Fraction(1)
        current = self.ledger.current
        if current is not None:
            now = self.clock()
            try:
                per_unit = priced_units(
                    meter_unit,
                    current.unit_of_measure,
                    self.price.conversion_factors.current(now),
                    self.price.calorific_values.current(now),
                )
            except ValueError:
                per_unit = None  # cannot be priced (yet): no cost shown
        return energy_screen(
            summation,
            demand,
            self.ledger,
            None if per_unit is None else tariff,
            meter_unit=meter_unit,
            priced_per_unit=per_unit or Fraction(1),
        )

    def showing_today(self) -> Reading | None:
        """What the meter says was used today (CurrentDayConsumptionDelivered, SE 1.2
        D.3.2.2.5) as shown, next to the summation; None when not known: not followed
        (``MeteringClientConfig(today=True)``) or not served by the meter."""
        return None if self.metering is None else self.metering.today

    def showing(self) -> Message | None:
        """The message on the screen now."""
        return self.messaging.current()

    async def confirm(
        self, message_id: int, *, answer: bool | None = None, response: str | None = None
    ) -> bool:
        """The user confirms a message (Message Confirmation, SE D.5.2.4.2); True once the ESI
        answered it (else it is retried). Told as :class:`ConfirmationSent`."""
        acknowledged = await self.messaging.confirm(message_id, answer=answer, response=response)
        self._stream.emit(
            ConfirmationSent(
                device=self.name,
                message_id=message_id,
                answer=answer,
                response=response,
                acknowledged=acknowledged,
            )
        )
        return acknowledged


#: A prepay display reads the credit again with a summation reading at most this often (s).
PREPAY_READ_SECONDS = 60
#: ``InHomeDisplay(prepayment=IF_SERVED)``: a prepay display if the ESI serves Prepayment.
IF_SERVED: Final[Literal["if served"]] = "if served"
#: Price attributes read per Read Attributes (keeps each frame small).
_READ_CHUNK = 8
#: Tiers with Block Price attributes (D.4.2.2.5: no tier and tiers 1-15).
_BLOCK_TIERS = 15
_READ_ATTRIBUTES_RSP = foundation.GeneralCommand.Read_Attributes_rsp


class ProgrammableThermostat(HanDevice):
    """A programmable communicating thermostat (SE device 0x0503, DRLC device class HVAC).

    ``cooling_set_point`` / ``heating_set_point`` are the user's (0.01 °C), the normal set
    points of the DRLC core's :class:`~zse.drlc.Abilities`. The thermostat runs at the set
    points the core decides for an event (:class:`~zse.drlc.Applied`: the event's set point,
    or the user's moved by its offset, SE D.2.2.3.1.1.7-10), which its reports carry, and at
    the user's where the event applies none.
    """

    device_type = PROGRAMMABLE_THERMOSTAT
    default_device_class = HVAC
    applies = TEMPERATURE_FIELDS

    def __init__(
        self,
        device: Any,
        *,
        cooling_set_point: int = 2400,
        heating_set_point: int = 2000,
        **options: Any,
    ) -> None:
        self._user = (cooling_set_point, heating_set_point)
        super().__init__(device, **options)
        self.cooling_set_point = cooling_set_point
        self.heating_set_point = heating_set_point
        self.active_event: int | None = None

    @property
    def user_cooling_set_point(self) -> int:
        """The user's cooling set point (0.01 °C)."""
        return self._user[0]

    @user_cooling_set_point.setter
    def user_cooling_set_point(self, value: int) -> None:
        self._set_user(value, self._user[1])

    @property
    def user_heating_set_point(self) -> int:
        """The user's heating set point (0.01 °C)."""
        return self._user[1]

    @user_heating_set_point.setter
    def user_heating_set_point(self, value: int) -> None:
        self._set_user(self._user[0], value)

    def _set_user(self, cooling: int, heating: int) -> None:
        """The user changes a set point: events that start from now on count from it."""
        self._user = (cooling, heating)
        self.drlc.core.abilities = self.abilities()

    def abilities(self) -> Abilities:
        cooling, heating = self._user
        return Abilities(
            applies=self.applies, normal_cooling_set_point=cooling, normal_heating_set_point=heating
        )

    def apply(self, action: ApplyLoadControl) -> None:
        applied = action.applied
        self._set(
            applied.cooling_set_point(self.user_cooling_set_point),
            applied.heating_set_point(self.user_heating_set_point),
            action.issuer_event_id,
        )

    def restore(self, action: StopLoadControl) -> None:
        if self.active_event in (None, action.issuer_event_id):
            self._set(self.user_cooling_set_point, self.user_heating_set_point, None)

    def _set(self, cooling: int, heating: int, event_id: int | None) -> None:
        self.cooling_set_point, self.heating_set_point = cooling, heating
        self.active_event = event_id
        self._stream.emit(
            ThermostatChanged(
                device=self.name,
                cooling_set_point=cooling,
                heating_set_point=heating,
                issuer_event_id=event_id,
            )
        )


class LoadControlDevice(HanDevice):
    """A load control device (SE device 0x0504), e.g. a water heater switch: it runs the
    share of time the DRLC core decides for an event (:attr:`zse.drlc.Applied.on_percent`,
    from the duty cycle and the average load adjustment it reports, SE D.2.2.3.1.1.11-12);
    0 % switches it off."""

    device_type = LOAD_CONTROL_DEVICE
    default_device_class = WATER_HEATER
    applies = LOAD_FIELDS

    def __init__(self, device: Any, **options: Any) -> None:
        super().__init__(device, **options)
        self.on = True
        self.duty_cycle = 100
        self.active_event: int | None = None

    def apply(self, action: ApplyLoadControl) -> None:
        self._set(action.applied.on_percent, action.issuer_event_id)

    def restore(self, action: StopLoadControl) -> None:
        if self.active_event in (None, action.issuer_event_id):
            self._set(100, None)

    def _set(self, duty: int, event_id: int | None) -> None:
        self.duty_cycle, self.on, self.active_event = duty, duty > 0, event_id
        self._stream.emit(
            LoadChanged(device=self.name, on=self.on, duty_cycle=duty, issuer_event_id=event_id)
        )
