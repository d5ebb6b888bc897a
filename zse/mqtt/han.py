"""The MQTT bridge of the HAN-device role (issue #17.1): what HAN devices see and do on the
broker, and the commands a device takes.

:class:`HanBridge` bridges one or more HAN device roles, each seen through :class:`HanRole`
(what :class:`zse.roles.han.HanDevice` offers on the simulator; ``zse han`` on a stick offers
the same to plug in), on the connection, outbox and at-most-once rules of
:class:`~zse.mqtt.bridge.BridgeShell`. Per device, under the same topic conventions as the
ESI's bridge (docs/mqtt.md):

- ``<base>/<device>/metering``: the meter's readings as the device shows them (a display
  following the meter), retained when ``retain`` is;
- ``<base>/<device>/price``, ``message``, ``drlc``, ``load``, ``network``, ``security``: each
  event of the device (:func:`zse.mqtt.core.han_event_publication`): prices with tiers,
  block periods and SE 1.2's values and tariffs, messages displayed / cancelled / expired /
  confirmed, load control events applied and stopped and every Report Event Status the
  device sent;
- ``<base>/<device>/state``: the device's state (:class:`zse.mqtt.core.DeviceView`),
  retained, which Home Assistant's sensors read (:func:`zse.mqtt.core.han_discovery`);
- ``<base>/<device>/price/tariff``: the SE 1.2 tariff it was last given, whole, retained
  (ADR 0030); published with the state at each connection (at start the tariff the device
  holds, ``{}`` for none), so that an earlier run's never disagrees with the state;
- ``<base>/<device>/calendar``, ``prepayment``, ``device_management``: what a display learns
  of SE 1.2's Calendar, Prepayment and Device Management (ADR 0034), read only; the state
  has the tier the calendar says now (moved at the calendar's change time, when the
  device's Calendar client tells it), the credit, the supplier and the site id;
- ``<base>/<device>/supply``: each new Supply Status (SE 1.2) a display following its
  meter's supply heard (:class:`~zse.metering.protocol.SupplyStatusChanged`), and the
  state's ``supply_status`` (``On``, ``Off``, ``Off/Armed``), an enum sensor announced once
  one is heard.

Commands (``<base>/bridge/request/<command>``, answered on ``<base>/bridge/response/...``):
``confirm_message`` (a display), ``opt_out`` and ``opt_in`` (a load control event),
``respond_cpp_event`` (CPP Event Response, SE D.4.2.3.14).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol, runtime_checkable

from zse.metering.protocol import DEMAND, SUMMATION
from zse.mqtt.bridge import BridgeShell
from zse.mqtt.core import (
    CO2_UNITS,
    HAN_COMMANDS,
    CommandError,
    ConfirmMessage,
    DeviceView,
    HanCommand,
    MqttSettings,
    OptOut,
    Publication,
    RespondCppEvent,
    currency_text,
    han_discovery,
    han_event_publication,
    node_id,
    parse_han_command,
    price_unit,
    shown_publication,
    unit_of_text,
)
from zse.price.core import BillingPeriod, Co2Value, ConsolidatedBill, CppEvent
from zse.se.ids import IN_HOME_DISPLAY
from zse.store import Store

__all__ = ["Calendared", "CppResponder", "Display", "HanBridge", "HanRole", "TariffHolder"]


@runtime_checkable
class HanRole(Protocol):
    """What the bridge needs of a HAN device: its name (EUI-64 as zigpy prints it), its SE
    device id (0x0502 display, 0x0503 thermostat, 0x0504 load control...), its clock (ZigBee
    UTCTime), its events (:data:`zse.roles.han.HanEvent`: ``on_event`` returns the function
    that stops them) and the user's DRLC choices (SE D.2.3.3.1.1.2)."""

    name: str

    @property
    def device_type(self) -> int: ...

    def clock(self) -> int: ...

    def on_event(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...

    async def opt_out(self, issuer_event_id: int) -> None: ...

    async def opt_in(self, issuer_event_id: int) -> None: ...


@runtime_checkable
class CppResponder(HanRole, Protocol):
    """A HAN device whose user answers a CPP event (CPP Event Response, SE D.4.2.3.14):
    :class:`zse.roles.han.HanDevice` is one."""

    async def respond_cpp_event(self, issuer_event_id: int, accepted: bool) -> None: ...


@runtime_checkable
class Calendared(HanRole, Protocol):
    """A HAN device that reads the ESI's calendars (SE 1.2 D.9): what the delivered TOU
    calendar says at an instant (:meth:`zse.roles.han.HanDevice.calendar_at`)."""

    def calendar_at(self, utc: int | None = None, calendar_type: int = 0) -> Any: ...


@runtime_checkable
class TariffHolder(HanRole, Protocol):
    """A HAN device that holds SE 1.2 tariffs (SE 1.2 D.4.2.4.5-9): the delivered tariff in
    force with its values (:meth:`zse.roles.han.HanDevice.tariff_held`), or None."""

    def tariff_held(self, utc: int | None = None) -> Any: ...


@runtime_checkable
class Display(HanRole, Protocol):
    """A HAN device whose user confirms messages (SE D.5.2.4.2): a display."""

    async def confirm(
        self, message_id: int, *, answer: bool | None = None, response: str | None = None
    ) -> bool: ...


#: A display's SE 1.2 sensors withheld until a value says them (ADR 0030), by the kind of
#: value (``PriceValueReceived``) that announces each; ``tariff`` by ``TariffReceived``.
_SE12_SENSORS: Final = {
    "TariffInformation": "tariff",
    Co2Value.__name__: "co2",
    BillingPeriod.__name__: "billing",
    ConsolidatedBill.__name__: "bill",
    CppEvent.__name__: "cpp",
}
#: A display's SE 1.2 Prepayment and Calendar sensors (ADR 0034), withheld until the display
#: read a prepay status (``credit``) or heard of a calendar (``calendar``), and its meter's
#: supply until it heard a Supply Status (``supply``): a meter without these costs no
#: discovery message.
_CLUSTER_SENSORS: Final = {
    "credit": ("credit", "emergency_credit"),
    "calendar": ("calendar_tier", "tier_change"),
    "supply": ("supply",),
}
#: A prepay status's values (SE 1.2 D.7.2.2.1): one read announces the credit sensors.
_PREPAY_READ: Final = (
    "credit_remaining",
    "emergency_credit_remaining",
    "credit_status",
    "low_credit_warning_level",
)
#: The calendar events after which the bridge asks the device what is in force now (a change
#: of tenancy may have dropped the calendars: ``TenancyChangeApplied``).
_CALENDAR_EVENTS: Final = (
    "CalendarReceived",
    "CalendarCancelled",
    "CalendarChanged",
    "TenancyChangeApplied",
)


class HanBridge(BridgeShell):
    """The HAN devices ``roles`` on the broker of ``settings``; ``store`` keeps the outbox and
    the executed commands (a store of its own, or the ESI's when both run in one process)."""

    commands = tuple(HAN_COMMANDS)
    outbox_namespace = "mqtt.han.outbox"
    executed_namespace = "mqtt.han.executed"

    def __init__(
        self,
        roles: Iterable[HanRole],
        settings: MqttSettings,
        *,
        store: Store,
        unit_of_measure: int | None = None,
        meter: str | None = None,
    ) -> None:
        self.roles = {role.name: role for role in roles}
        #: The meter whose HAN the devices joined, when known: each device's ``via_device``
        #: (as the ESI's bridge gives it, so that the two describe the device alike).
        self.meter = meter
        if not self.roles:
            raise ValueError("a HAN bridge needs at least one device")
        first = next(iter(self.roles.values()))
        super().__init__(settings, store=store, clock=first.clock)
        #: Each device's UnitOfMeasure of the meter it shows (SE D.3.2.2.4.1): the one given
        #: until its own readings say (None: not one Home Assistant has a class for).
        self.units: dict[str, int | None] = dict.fromkeys(self.roles, unit_of_measure)
        #: Each display's price unit (``GBP/kWh``...) once a price said it.
        self.price_units: dict[str, str] = {}
        #: What each device has not said yet (``meter``: the unit of its readings, unless
        #: one was given; ``price``: a price's currency and unit; ``demand``: a demand, which
        #: a meter without InstantaneousDemand never gives), its sensors not announced
        #: until it does: announced without a unit, they would replace the retained config
        #: announced in it before (the last run's) until it is known again, and Home
        #: Assistant takes a unit only from a discovery message; announced without a
        #: demand to come, the power sensor would stay ``unknown`` for ever.
        unknown = {"price", "demand", *_SE12_SENSORS.values(), *_CLUSTER_SENSORS} | (
            {"meter"} if unit_of_measure is None else set()
        )
        self._unknown: dict[str, set[str]] = {
            name: set(unknown) if role.device_type == IN_HOME_DISPLAY else set()
            for name, role in self.roles.items()
        }
        #: The displays whose meter refuses InstantaneousDemand (it answered a read of it
        #: UNSUPPORTED_ATTRIBUTE, :class:`~zse.metering.protocol.AttributeUnsupported`):
        #: their power sensor is removed, a config retained from an earlier run too, until a
        #: demand comes.
        self._no_demand: set[str] = set()
        #: Each display's units of its SE 1.2 sensors (``co2``, ``bill``) once a value said.
        self.value_units: dict[str, dict[str, str]] = {name: {} for name in self.roles}
        self.views = {name: DeviceView(role.device_type) for name, role in self.roles.items()}
        self._shown: dict[str, dict[int, Any]] = {name: {} for name in self.roles}
        self._dirty: dict[tuple[str, str], None] = {}  # (device, kind) to publish, in order

    def _follow(self) -> list[Callable[[], None]]:
        return [
            role.on_event(functools.partial(self._on_event, name))
            for name, role in self.roles.items()
        ]

    async def start(self) -> None:
        """As :meth:`BridgeShell.start`; each display's view starts from the tariff the
        device holds already (none: its retained ``price/tariff`` is cleared at connection,
        :meth:`_discovery`)."""
        for name, role in self.roles.items():
            held = role.tariff_held() if isinstance(role, TariffHolder) else None
            if held is not None and not self.views[name].tariff:
                self.views[name].hold_tariff(*held)
                self._unknown[name].discard("tariff")
        await super().start()

    def _discovery(self) -> list[Publication]:
        found = [p for name in self.roles for p in self._announce(name)]
        # each device's state as it is now, so that the sensors have a value at once, and a
        # display's tariff with it (``{}`` for none): the retained one of an earlier run
        # would disagree with the state
        tariffs = [
            self._tariff(name)
            for name, role in self.roles.items()
            if role.device_type == IN_HOME_DISPLAY
        ]
        return found + [self._state(name) for name in self.roles] + tariffs

    def _announce(self, name: str) -> list[Publication]:
        """Device ``name``'s discovery, in the units it shows, its sensors whose unit is
        not known yet left out."""
        unknown = self._unknown[name]
        withheld = (
            (("energy", "power") if "meter" in unknown else ())
            + (("power",) if "demand" in unknown else ())
            + (("price",) if "price" in unknown else ())
            + (("tier",) if {"price", "tariff"} <= unknown else ())
            + tuple(sorted(unknown & set(_SE12_SENSORS.values())))
            + tuple(
                s for key in sorted(unknown & set(_CLUSTER_SENSORS)) for s in _CLUSTER_SENSORS[key]
            )
        )
        return han_discovery(
            self.topics,
            [(name, self.roles[name].device_type)],
            unit_of_measure=self.units[name],
            price_units=self.price_units,
            withheld=withheld,
            removed=("power",) if self._refused(name) else (),
            meter=self.meter,
            value_units=self.value_units,
        )

    def _refused(self, name: str) -> bool:
        """Whether device ``name`` is a display whose meter refuses InstantaneousDemand."""
        return name in self._no_demand and self.roles[name].device_type == IN_HOME_DISPLAY

    def _learn(self, name: str, event: Any) -> None:
        """A reading's unit or a price's currency that changes what device ``name`` was
        announced in, or announces a sensor first, or a meter refusing the demand, which
        removes the power sensor: announced (again)."""
        unknown = self._unknown[name]
        units = self.value_units[name]
        before = (
            self.units[name],
            self.price_units.get(name),
            set(unknown),
            self._refused(name),
            dict(units),
        )
        kind = type(event).__name__
        if kind == "MeterReading":
            unit = unit_of_text(event.reading.unit, demand=event.attribute == DEMAND)
            if unit is not None:
                self.units[name] = unit
            unknown.discard("meter")
            if event.attribute == DEMAND:
                unknown.discard("demand")
                self._no_demand.discard(name)
        elif kind == "AttributeUnsupported" and event.attribute == DEMAND:
            self._no_demand.add(name)
        elif kind == "PriceReceived":
            found = price_unit(event.price.currency, event.price.unit_of_measure)
            if found is not None:
                self.price_units[name] = found
            else:
                self.price_units.pop(name, None)
            unknown.discard("price")
            if "credit" not in unknown:  # the credit is in the price's currency
                units["credit"] = currency_text(event.price.currency)
        elif kind in ("TariffReceived", "PriceValueReceived"):
            self._learn_value(name, event)
        else:
            self._learn_cluster(name, event)
        after = (
            self.units[name],
            self.price_units.get(name),
            unknown,
            self._refused(name),
            units,
        )
        if after != before:
            for publication in self._announce(name):
                self.publish(publication)

    def _learn_cluster(self, name: str, event: Any) -> None:
        """A prepay status with a credit read or a calendar that announces a display's
        sensors first (ADR 0034); the credit in the currency of the price held, when one
        came. A status that read nothing (a meter without Prepayment, the display told it
        is a prepay one) announces nothing: its sensors would stay empty."""
        unknown = self._unknown[name]
        kind = type(event).__name__
        read = kind == "PrepayStatus" and any(
            getattr(event, key, None) is not None for key in _PREPAY_READ
        )
        if read and "credit" in unknown:
            unknown.discard("credit")
            currency = self.views[name].state.get("currency")
            if currency is not None:
                self.value_units[name]["credit"] = currency_text(currency)
        elif kind in ("CalendarReceived", "CalendarChanged"):
            unknown.discard("calendar")
        elif kind == "SupplyStatusChanged":  # the meter has supply control
            unknown.discard("supply")

    def _learn_value(self, name: str, event: Any) -> None:
        """An SE 1.2 value that announces a display's sensor first, or says its unit."""
        value = getattr(event, "value", None)
        if type(event).__name__ == "TariffReceived":
            self._unknown[name].discard("tariff")
            return
        units = self.value_units[name]
        if isinstance(value, Co2Value) and value.co2_value_unit in CO2_UNITS:
            units["co2"] = CO2_UNITS[value.co2_value_unit]
        elif isinstance(value, ConsolidatedBill):
            units["bill"] = currency_text(value.currency)
        sensor = _SE12_SENSORS.get(type(value).__name__)
        if sensor is not None:
            self._unknown[name].discard(sensor)

    def _tariff(self, name: str) -> Publication:
        """The tariff device ``name`` was last given, whole, or ``{}`` (ADR 0030)."""
        topic = self.topics.device(name, "price/tariff")
        return Publication(topic, self.views[name].tariff, self.settings.retain)

    def _state(self, name: str) -> Publication:
        state = self.views[name].payload
        return Publication(self.topics.device(name, "state"), state, self.settings.retain)

    def _on_event(self, name: str, event: Any) -> None:
        """One event of device ``name``: its publication now; its readings and its state
        once the events of this moment are in (a report of summation and demand, a load
        control event and the set points it moved: one publication each)."""
        self._learn(name, event)
        if type(event).__name__ == "MeterReading":
            if event.attribute in (SUMMATION, DEMAND):
                self._shown[name][event.attribute] = event
                self._later(name, "metering")
            return
        now = self.roles[name].clock()
        publication = han_event_publication(self.topics, name, event, now)
        if publication is not None:
            self.publish(publication)
        view = self.views[name]
        held = view.tariff
        changed = view.update(event, now)
        role = self.roles[name]
        if type(event).__name__ in _CALENDAR_EVENTS and isinstance(role, Calendared):
            changed = view.calendar(role.calendar_at()) or changed  # what is in force now
        if changed:
            self._later(name, "state")
        if view.tariff != held:
            self.publish(self._tariff(name))

    async def stop(self) -> None:
        """As :meth:`BridgeShell.stop`, what was about to be published queued first."""
        self._publish_dirty()
        await super().stop()

    def _later(self, name: str, kind: str) -> None:
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self._publish_dirty)
        self._dirty[name, kind] = None

    def _publish_dirty(self) -> None:
        dirty, self._dirty = self._dirty, {}
        for name, kind in dirty:
            if kind == "state":
                self.publish(self._state(name))
                continue
            shown = self._shown[name]
            self.publish(
                shown_publication(
                    self.topics,
                    name,
                    summation=shown.get(SUMMATION),
                    demand=shown.get(DEMAND),
                    now=self.roles[name].clock(),
                    retain=self.settings.retain,
                )
            )

    def _parse(self, name: str, payload: bytes) -> HanCommand:
        return parse_han_command(name, payload)

    def _failure_field(self, command: Any, exc: Exception) -> str:
        return "message_id" if isinstance(command, ConfirmMessage) else "issuer_event_id"

    async def _execute(self, command: HanCommand) -> dict[str, Any]:
        role = self.roles.get(command.device)
        if role is None:
            known = ", ".join(sorted(self.roles))
            raise CommandError("device", f"not a device of this bridge (these are: {known})")
        if isinstance(command, ConfirmMessage):
            if not isinstance(role, Display):
                raise CommandError("device", f"{node_id(role.name)} does not show messages")
            acknowledged = await role.confirm(
                command.message_id, answer=command.answer, response=command.response
            )
            return {
                "device": role.name,
                "message_id": command.message_id,
                "acknowledged": acknowledged,
            }
        if isinstance(command, RespondCppEvent):
            if not isinstance(role, CppResponder):
                raise CommandError("device", f"{node_id(role.name)} does not answer CPP events")
            await role.respond_cpp_event(command.issuer_event_id, command.accept)
            if self.views[role.name].responded(command.issuer_event_id, command.accept):
                self.publish(self._state(role.name))
            return {
                "device": role.name,
                "issuer_event_id": command.issuer_event_id,
                "accepted": command.accept,
            }
        if isinstance(command, OptOut):
            await role.opt_out(command.issuer_event_id)
        else:
            await role.opt_in(command.issuer_event_id)
        return {"device": role.name, "issuer_event_id": command.issuer_event_id}
