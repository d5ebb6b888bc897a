"""Device Management's state and rules (SE 1.2 D.10), sans-IO: what is published, what a
device keeps, and the event configuration both sides hold. No asyncio; fed ``now`` (ZigBee
UTCTime, seconds since 2000-01-01 UTC).

What the ESI publishes (:class:`Published`): the change of tenancy and the change of supplier
in force or pending (one each: a newer issuer event id replaces the one held, an older one is
refused), the site id, the customer id number (CIN) and up to four passwords, one per
password type. Nothing a peer sends adds to it: a peer's Report Event Configuration is told,
not held. So the ESI holds at most 8 records for this cluster, whatever the HAN sends.

What a device keeps (:class:`Kept`): the latest of each, and when a change of tenancy or of
supplier takes effect (its implementation time, 0 = now): :meth:`Kept.next_deadline` /
:meth:`Kept.handle_timeout` say so once, as :class:`TenancyTakesEffect` /
:class:`SupplierTakesEffect`.

The event configuration (:class:`EventConfigurations`): per event id, the log it goes to and
whether it is pushed (D.10.2.4.5); Set Event Configuration changes it by list, event group,
log type or configuration match. Bounded: :data:`MAX_EVENT_CONFIGURATIONS` event ids.

The value types of the cluster's fields (:class:`TenancyChangeControl`,
:class:`EventConfiguration`...) are declared here, in the sans-IO layer, and used by the wire.
The SE 1.2/1.4 text was out of reach; see :mod:`zse.devmgmt.wire` for the sources used.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import zigpy.types as t

from zse.errors import ZseError
from zse.records import STR, U8, U16, U32, Fields, RecordError, check, load_each

__all__ = [
    "DISPLAY_CLEARS",
    "MAX_EVENT_CONFIGURATIONS",
    "START_NOW",
    "ChangeOfSupplier",
    "ChangeOfTenancy",
    "ConfigurationControl",
    "CustomerId",
    "DeviceManagementError",
    "EventConfiguration",
    "EventConfigurations",
    "EventLogging",
    "Kept",
    "Password",
    "PasswordType",
    "Published",
    "SiteId",
    "StaleIssue",
    "SupplierTakesEffect",
    "TenancyChangeControl",
    "TenancyTakesEffect",
    "logged_in",
    "pushed_to_han",
]

#: An implementation time of 0: at once (as SE's other "start now" times).
START_NOW: Final = 0
#: Event ids an :class:`EventConfigurations` holds at most.
MAX_EVENT_CONFIGURATIONS: Final = 512
#: ZCL octet / character strings: 254 octets at most (ZCL 2.6.2.12).
_MAX_STRING = 0xFE


class TenancyChangeControl(t.bitmap32):
    """Proposed Tenancy Change Control (D.10.2.4.1.1.5), bits as Wireshark names them; bits
    11-12 are the meter contactor state (0 off, 1 off/armed, 2 on, 3 unchanged)."""

    Pre_Snapshots = 1 << 0
    Post_Snapshots = 1 << 1
    Reset_Credit_Register = 1 << 2
    Reset_Debit_Register = 1 << 3
    Reset_Billing_Period = 1 << 4
    Clear_Tariff_Plan = 1 << 5
    Clear_Standing_Charge = 1 << 6
    Block_Historical_Load_Profile_Information = 1 << 7
    Clear_Historical_Load_Profile_Information = 1 << 8
    Clear_IHD_Data_Consumer = 1 << 9
    Clear_IHD_Data_Supplier = 1 << 10
    Meter_Contactor_State_Low = 1 << 11
    Meter_Contactor_State_High = 1 << 12
    Clear_Transaction_Log = 1 << 13
    Clear_Prepayment_Data = 1 << 14


class PasswordType(enum.IntEnum):
    """Password type of Request New Password (D.10.2.3.3.1.1): passwords 1-4 (0 reserved)."""

    PASSWORD_1 = 1
    PASSWORD_2 = 2
    PASSWORD_3 = 3
    PASSWORD_4 = 4


class EventLogging(enum.IntEnum):
    """Bits 0-2 of an event configuration: the log an event goes to (D.10.2.4.5.1.3); the
    values are the Events cluster's log ids (D.11)."""

    DO_NOT_LOG = 0
    TAMPER = 1
    FAULT = 2
    GENERAL = 3
    SECURITY = 4
    NETWORK = 5


class EventConfiguration(t.bitmap8):
    """Event Configuration (D.10.2.4.5.1.3): bits 0-2 the log (:class:`EventLogging`), then
    push to the WAN, push to the HAN, raise a ZigBee alarm, raise a physical alarm."""

    Log_Bit0 = 1 << 0
    Log_Bit1 = 1 << 1
    Log_Bit2 = 1 << 2
    Push_Event_To_WAN = 1 << 3
    Push_Event_To_HAN = 1 << 4
    Raise_Alarm_ZigBee = 1 << 5
    Raise_Alarm_Physical = 1 << 6


class ConfigurationControl(enum.IntEnum):
    """Configuration Control of Set Event Configuration (D.10.2.4.5.1.4): which events the
    configuration applies to, and what the payload after it holds."""

    APPLY_BY_LIST = 0  # Number of Events (uint8), that many Event IDs (uint16)
    APPLY_BY_EVENT_GROUP = 1  # Event Group ID (uint16): event ids with its high octet
    APPLY_BY_LOG_TYPE = 2  # Log ID (uint8): the events configured to log there
    APPLY_BY_CONFIGURATION_MATCH = 3  # a configuration value (map8): events configured so


#: The control bits a display acts on at a change of tenancy (what zse's HAN device clears),
#: by name: the rest (snapshots, registers, billing period, contactor, prepayment, transaction
#: log) are the meter's to act on.
DISPLAY_CLEARS: Final = (
    TenancyChangeControl.Clear_Tariff_Plan
    | TenancyChangeControl.Clear_Standing_Charge
    | TenancyChangeControl.Clear_Historical_Load_Profile_Information
    | TenancyChangeControl.Clear_IHD_Data_Consumer
    | TenancyChangeControl.Clear_IHD_Data_Supplier
)


class DeviceManagementError(ZseError, ValueError):
    """A Device Management value out of range (a field too large, a string too long)."""


class StaleIssue(DeviceManagementError):
    """A publication older (a smaller issuer event id) than the one held of its kind."""


def _u(name: str, value: int, bits: int) -> None:
    if not 0 <= value < 1 << bits:
        raise DeviceManagementError(f"{name} {value} is not a {bits}-bit unsigned value")


def _text(name: str, value: str) -> None:
    if len(value.encode("utf-8", "surrogateescape")) > _MAX_STRING:
        raise DeviceManagementError(f"{name} is longer than {_MAX_STRING} octets")


@dataclass(frozen=True, kw_only=True)
class ChangeOfTenancy:
    """Publish Change of Tenancy (D.10.2.4.1): at ``implementation_time`` the premises have a
    new tenant; ``control`` (:class:`~zse.devmgmt.wire.TenancyChangeControl`) says what the
    devices do then (clear the display's data, reset registers...)."""

    provider_id: int
    issuer_event_id: int
    implementation_time: int = START_NOW
    control: int = 0
    tariff_type: int = 0

    def __post_init__(self) -> None:
        _u("provider id", self.provider_id, 32)
        _u("issuer event id", self.issuer_event_id, 32)
        _u("implementation time", self.implementation_time, 32)
        _u("proposed tenancy change control", self.control, 32)
        _u("tariff type", self.tariff_type, 8)

    @property
    def controls(self) -> TenancyChangeControl:
        """The control bits, named."""
        return TenancyChangeControl(self.control)  # type: ignore[no-untyped-call]

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, value: Any) -> ChangeOfTenancy:
        check(value, _TENANCY_SHAPE)
        return cls(**value)


@dataclass(frozen=True, kw_only=True)
class ChangeOfSupplier:
    """Publish Change of Supplier (D.10.2.4.2): from ``implementation_time`` the supplier is
    ``proposed_provider_id`` (named ``provider_name``, reached at ``contact_details``)."""

    current_provider_id: int
    issuer_event_id: int
    proposed_provider_id: int
    implementation_time: int = START_NOW
    control: int = 0
    provider_name: str = ""
    contact_details: str = ""
    tariff_type: int = 0

    def __post_init__(self) -> None:
        _u("current provider id", self.current_provider_id, 32)
        _u("issuer event id", self.issuer_event_id, 32)
        _u("proposed provider id", self.proposed_provider_id, 32)
        _u("implementation time", self.implementation_time, 32)
        _u("provider change control", self.control, 32)
        _u("tariff type", self.tariff_type, 8)
        _text("provider name", self.provider_name)
        _text("contact details", self.contact_details)

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, value: Any) -> ChangeOfSupplier:
        check(value, _SUPPLIER_SHAPE)
        return cls(**value)


@dataclass(frozen=True, kw_only=True)
class SiteId:
    """Update SiteID (D.10.2.4.4): the premises' site id (in GB, the MPAN / MPRN) from
    ``time`` (0 = now)."""

    issuer_event_id: int
    provider_id: int
    site_id: str
    time: int = START_NOW

    def __post_init__(self) -> None:
        _u("issuer event id", self.issuer_event_id, 32)
        _u("provider id", self.provider_id, 32)
        _u("site id time", self.time, 32)
        _text("site id", self.site_id)

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, value: Any) -> SiteId:
        check(value, _SITE_SHAPE)
        return cls(**value)


@dataclass(frozen=True, kw_only=True)
class CustomerId:
    """Update CIN (D.10.2.4.7): the customer id number from ``time`` (0 = now)."""

    issuer_event_id: int
    provider_id: int
    cin: str
    time: int = START_NOW

    def __post_init__(self) -> None:
        _u("issuer event id", self.issuer_event_id, 32)
        _u("provider id", self.provider_id, 32)
        _u("CIN implementation time", self.time, 32)
        _text("customer id number", self.cin)

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, value: Any) -> CustomerId:
        check(value, _CIN_SHAPE)
        return cls(**value)


@dataclass(frozen=True, kw_only=True)
class Password:
    """A password of Request New Password Response (D.10.2.4.3): a SECRET. Its repr names
    the type and length only; it is stored as the store keeps keys (hex in a record whose
    errors never show the content)."""

    password_type: int
    issuer_event_id: int
    value: bytes = field(repr=False)
    implementation_time: int = START_NOW
    duration_in_minutes: int = 0

    def __post_init__(self) -> None:
        if self.password_type not in tuple(PasswordType):
            raise DeviceManagementError(f"password type {self.password_type} is not 1-4")
        _u("issuer event id", self.issuer_event_id, 32)
        _u("implementation time", self.implementation_time, 32)
        _u("duration in minutes", self.duration_in_minutes, 16)
        if len(self.value) > _MAX_STRING:
            raise DeviceManagementError(f"a password is at most {_MAX_STRING} octets")

    def __repr__(self) -> str:
        return (
            f"Password(password_type={self.password_type}, issuer_event_id="
            f"{self.issuer_event_id}, value=<{len(self.value)} octets>)"
        )

    __str__ = __repr__

    def to_record(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["value"] = self.value.hex()
        return record

    @classmethod
    def from_record(cls, value: Any) -> Password:
        check(value, _PASSWORD_SHAPE)
        try:
            octets = bytes.fromhex(value["value"])
        except ValueError:
            raise DeviceManagementError("the stored password is not hex") from None
        return cls(**{**value, "value": octets})


_TENANCY_SHAPE = Fields(
    {
        "provider_id": U32,
        "issuer_event_id": U32,
        "implementation_time": U32,
        "control": U32,
        "tariff_type": U8,
    }
)
_SUPPLIER_SHAPE = Fields(
    {
        "current_provider_id": U32,
        "issuer_event_id": U32,
        "proposed_provider_id": U32,
        "implementation_time": U32,
        "control": U32,
        "provider_name": STR,
        "contact_details": STR,
        "tariff_type": U8,
    }
)
_SITE_SHAPE = Fields({"issuer_event_id": U32, "provider_id": U32, "site_id": STR, "time": U32})
_CIN_SHAPE = Fields({"issuer_event_id": U32, "provider_id": U32, "cin": STR, "time": U32})
_PASSWORD_SHAPE = Fields(
    {
        "password_type": U8,
        "issuer_event_id": U32,
        "value": STR,
        "implementation_time": U32,
        "duration_in_minutes": U16,
    }
)

Item = ChangeOfTenancy | ChangeOfSupplier | SiteId | CustomerId
#: Each kind's record key and loader.
_KINDS: dict[str, Callable[[Any], Any]] = {
    "tenancy": ChangeOfTenancy.from_record,
    "supplier": ChangeOfSupplier.from_record,
    "site_id": SiteId.from_record,
    "cin": CustomerId.from_record,
}
_KEY_OF: dict[type, str] = {
    ChangeOfTenancy: "tenancy",
    ChangeOfSupplier: "supplier",
    SiteId: "site_id",
    CustomerId: "cin",
}


def _password_key(password_type: int) -> str:
    return f"password/{password_type}"


class Published:
    """What the ESI publishes (the server side): one of each kind and a password per type.

    :meth:`publish` refuses an issue older than the one held (:class:`StaleIssue`); the same
    issuer event id again replaces it (a correction). :meth:`changes` gives the records to
    write since the last call; :meth:`from_records` loads them back (a damaged record is
    handed to ``on_bad`` and not served)."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.passwords: dict[int, Password] = {}
        self._changed: set[str] = set()

    @property
    def tenancy(self) -> ChangeOfTenancy | None:
        item = self.items.get("tenancy")
        return item if isinstance(item, ChangeOfTenancy) else None

    @property
    def supplier(self) -> ChangeOfSupplier | None:
        item = self.items.get("supplier")
        return item if isinstance(item, ChangeOfSupplier) else None

    @property
    def site_id(self) -> SiteId | None:
        item = self.items.get("site_id")
        return item if isinstance(item, SiteId) else None

    @property
    def cin(self) -> CustomerId | None:
        item = self.items.get("cin")
        return item if isinstance(item, CustomerId) else None

    def publish(self, item: Item) -> None:
        key = _KEY_OF[type(item)]
        held = self.items.get(key)
        if held is not None and item.issuer_event_id < held.issuer_event_id:
            raise StaleIssue(
                f"{key} issue {item.issuer_event_id} is older than issue "
                f"{held.issuer_event_id} published before"
            )
        self.items[key] = item
        self._changed.add(key)

    def set_password(self, password: Password) -> None:
        held = self.passwords.get(password.password_type)
        if held is not None and password.issuer_event_id < held.issuer_event_id:
            raise StaleIssue(
                f"password {password.password_type} issue {password.issuer_event_id} is older "
                f"than issue {held.issuer_event_id} held"
            )
        self.passwords[password.password_type] = password
        self._changed.add(_password_key(password.password_type))

    def changes(self) -> dict[str, Any]:
        """The records changed since the last call (key -> record)."""
        out: dict[str, Any] = {}
        for key in sorted(self._changed):
            if key.startswith("password/"):
                out[key] = self.passwords[int(key.split("/", 1)[1])].to_record()
            else:
                out[key] = self.items[key].to_record()
        self._changed.clear()
        return out

    def unsaved(self, changes: Mapping[str, Any]) -> None:
        """``changes`` (from :meth:`changes`) could not be written: the next call gives those
        records again (as they are then)."""
        self._changed.update(changes)

    def to_records(self) -> dict[str, Any]:
        records: dict[str, Any] = {k: v.to_record() for k, v in self.items.items()}
        records.update({_password_key(k): p.to_record() for k, p in self.passwords.items()})
        return records

    @classmethod
    def from_records(
        cls,
        records: Mapping[str, Any],
        *,
        namespace: str,
        on_bad: Callable[[RecordError], None] | None = None,
    ) -> Published:
        published = cls()

        def load(key: str, value: Any) -> None:
            if key.startswith("password/"):
                password = Password.from_record(value)
                if key != _password_key(password.password_type):
                    raise DeviceManagementError("a password stored under another type")
                published.passwords[password.password_type] = password
            elif key in _KINDS:
                published.items[key] = _KINDS[key](value)
            else:
                raise DeviceManagementError("not a Device Management record")

        load_each(records.items(), load, namespace=namespace, on_bad=on_bad)
        return published


@dataclass(frozen=True, kw_only=True)
class TenancyTakesEffect:
    """A change of tenancy a device kept reached its implementation time."""

    change: ChangeOfTenancy


@dataclass(frozen=True, kw_only=True)
class SupplierTakesEffect:
    """A change of supplier a device kept reached its implementation time."""

    change: ChangeOfSupplier


class Kept:
    """What a HAN device keeps of Device Management (the client side): the latest of each
    kind, and the changes of tenancy / supplier not yet in effect.

    :meth:`take` returns whether the item is new (a repeat or an older issue is not);
    :meth:`next_deadline` / :meth:`handle_timeout` say when a change takes effect, once per
    issue. ``applied`` names the issues already in effect (a display that restarts and is
    told again does not clear twice: the shell persists it)."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.applied: dict[str, int] = {}

    @property
    def tenancy(self) -> ChangeOfTenancy | None:
        item = self.items.get("tenancy")
        return item if isinstance(item, ChangeOfTenancy) else None

    @property
    def supplier(self) -> ChangeOfSupplier | None:
        item = self.items.get("supplier")
        return item if isinstance(item, ChangeOfSupplier) else None

    @property
    def site_id(self) -> SiteId | None:
        item = self.items.get("site_id")
        return item if isinstance(item, SiteId) else None

    @property
    def cin(self) -> CustomerId | None:
        item = self.items.get("cin")
        return item if isinstance(item, CustomerId) else None

    def take(self, item: Item) -> bool:
        key = _KEY_OF[type(item)]
        held = self.items.get(key)
        if held is not None and (item.issuer_event_id < held.issuer_event_id or item == held):
            return False
        self.items[key] = item
        return True

    def _pending(self) -> list[ChangeOfTenancy | ChangeOfSupplier]:
        pending: list[ChangeOfTenancy | ChangeOfSupplier] = []
        for key in ("tenancy", "supplier"):
            item = self.items.get(key)
            if (
                isinstance(item, ChangeOfTenancy | ChangeOfSupplier)
                and self.applied.get(key) != item.issuer_event_id
            ):
                pending.append(item)
        return pending

    def next_deadline(self) -> int | None:
        times = [item.implementation_time for item in self._pending()]
        return min(times) if times else None

    def handle_timeout(self, now: int) -> list[TenancyTakesEffect | SupplierTakesEffect]:
        due: list[TenancyTakesEffect | SupplierTakesEffect] = []
        for item in self._pending():
            if item.implementation_time <= now:
                self.applied[_KEY_OF[type(item)]] = item.issuer_event_id
                due.append(
                    TenancyTakesEffect(change=item)
                    if isinstance(item, ChangeOfTenancy)
                    else SupplierTakesEffect(change=item)
                )
        return due


def logged_in(configuration: int) -> EventLogging | None:
    """The log an event configuration sends the event to (bits 0-2), None for "do not log"
    or a value no log has."""
    try:
        log = EventLogging(configuration & 0x07)
    except ValueError:
        return None
    return None if log is EventLogging.DO_NOT_LOG else log


def pushed_to_han(configuration: int) -> bool:
    """Whether the configuration pushes the event to the HAN (Publish Event)."""
    return bool(configuration & EventConfiguration.Push_Event_To_HAN)


class EventConfigurations:
    """Per event id, its configuration (D.10.2.4.5.1.3): the log it goes to, push to WAN /
    HAN, alarms. ``defaults`` seeds the event ids the holder knows; Set Event Configuration
    applies to known ids only, except "apply by list", which adds the ids listed (up to
    :data:`MAX_EVENT_CONFIGURATIONS`; further ones are refused)."""

    def __init__(self, defaults: Mapping[int, int] | None = None) -> None:
        self.table: dict[int, int] = {}
        for event_id, configuration in (defaults or {}).items():
            self.set(event_id, configuration)

    def __len__(self) -> int:
        return len(self.table)

    def get(self, event_id: int) -> int | None:
        return self.table.get(event_id)

    def set(self, event_id: int, configuration: int) -> None:
        _u("event id", event_id, 16)
        _u("event configuration", configuration, 8)
        if event_id not in self.table and len(self.table) >= MAX_EVENT_CONFIGURATIONS:
            raise DeviceManagementError(
                f"at most {MAX_EVENT_CONFIGURATIONS} event ids have a configuration"
            )
        self.table[event_id] = configuration

    def apply(self, control: ConfigurationControl, value: Any, configuration: int) -> list[int]:
        """Set Event Configuration: the event ids it changed, in order."""
        if control is ConfigurationControl.APPLY_BY_LIST:
            ids: Iterable[int] = list(dict.fromkeys(int(i) for i in value))
            if len(set(ids) - set(self.table)) + len(self.table) > MAX_EVENT_CONFIGURATIONS:
                raise DeviceManagementError(
                    f"at most {MAX_EVENT_CONFIGURATIONS} event ids have a configuration"
                )
        elif control is ConfigurationControl.APPLY_BY_EVENT_GROUP:
            # the group is the Event Group ID's high octet, as an event id's (0x0300: 0x03xx),
            # as Silicon Labs' device-management-client.c (the side that takes the command) reads it
            ids = [i for i in self.table if i >> 8 == int(value) >> 8]
        elif control is ConfigurationControl.APPLY_BY_LOG_TYPE:
            ids = [i for i, c in self.table.items() if c & 0x07 == int(value)]
        else:
            ids = [i for i, c in self.table.items() if c == int(value)]
        changed = list(ids)
        for event_id in changed:
            self.set(event_id, configuration)
        return changed

    def records(self, event_id: int | None = None) -> list[tuple[int, int]]:
        """(event id, configuration) pairs: one, or all (``None``), by event id."""
        if event_id is not None:
            held = self.table.get(event_id)
            return [] if held is None else [(event_id, held)]
        return sorted(self.table.items())
