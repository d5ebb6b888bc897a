"""SE 1.2 mirror notifications ("two way mirroring"): what a mirror holds for its sleepy meter.

A battery-operated metering device (BOMD: a GB gas meter, GSME) sleeps, so the ESI cannot
send it commands. Once mirrored it configures its mirror (sent by the meter, to the mirror
endpoint, as Silicon Labs' meter-mirror plugin takes them and Espressif's SDK describes them):

- Configure Mirror: issuer event id, reporting interval (uint24), Mirror Notification
  Reporting (bool) and the notification scheme (uint8);
- Configure Notification Scheme: issuer event id, scheme, notification flag order (map32);
- Configure Notification Flag: issuer event id, scheme, the flag attribute, the cluster,
  manufacturer code and command ids that attribute's bits stand for.

The ESI's application raises bits in the notification flag attributes of the mirror (its
Metering client attributes, :data:`FLAG_ATTRIBUTES`). With Mirror Notification Reporting set,
the mirror answers each Report Attributes of its meter with Mirror Report Attribute Response
(scheme, flags) instead of a Default Response: one uint32 for scheme A (Functional
Notification Flags), five for scheme B (Functional, Notification Flags 2-5), as Silicon
Labs' plugin builds it. The meter acts on the bits and sends Get Notified Message (scheme,
flag attribute, flags) to fetch the commands the mirror holds for them; zse clears the bits it
names then (the mirror has told the meter, the meter has asked for what is behind them).

Sources (the SE 1.2 text, 07-5356-19, was out of reach): field order and sizes and the bit
names from Wireshark's ``packet-zbee-zcl-se.c`` (tshark 4.0.17 dissects Configure Mirror, Get
Notified Message and Mirror Report Attribute Response, not Configure Notification Scheme /
Flag); the client attribute ids from Exegin's public ``zcl.meter.h`` (0x0000-0x0007); schemes
A (1) and B (2) and the answer's flags from Silicon Labs' meter-mirror plugin; which side sends
what from Espressif's ``esp_zb_zcl_metering_*_cmd_t`` descriptions. zse's own readings where
those say nothing: the flag order of a scheme other than A or B is read nibble by nibble from
the least significant one, each a NotificationFlags number (1 Functional, 2-8 Notification
Flags 2-8), 0 ending it; a Configure Notification Flag is kept (per scheme and attribute) and
told to the application, which holds the commands it names.

Bounded: :data:`MAX_SCHEMES` schemes and :data:`MAX_FLAG_COMMANDS` flag configurations per
mirror (INSUFFICIENT_SPACE beyond). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any, Final

import zigpy.types as t

from zse.installcode import parse_eui64

__all__ = [
    "DEVICE_MANAGEMENT_FLAGS",
    "FLAG_ATTRIBUTES",
    "FUNCTIONAL_FLAGS",
    "MAX_FLAG_COMMANDS",
    "MAX_SCHEMES",
    "PRICE_FLAGS",
    "CalendarFlag",
    "DeviceManagementFlag",
    "FlagCommands",
    "FunctionalFlag",
    "MirrorConfigured",
    "MirrorNotifications",
    "NotificationFlagsRaised",
    "NotificationScheme",
    "NotifiedMessageRequested",
    "PrepaymentFlag",
    "PriceFlag",
    "flag_attributes",
    "flag_names",
]

#: Metering client attributes (Notification Attribute Set): Functional Notification Flags,
#: Notification Flags 2 (Price), 3 (Calendar), 4 (Prepayment), 5 (Device Management), 6-8;
#: map32 each (Wireshark dissects 0x0000-0x0004 as 32-bit bitmaps; ids as Exegin's).
FUNCTIONAL_FLAGS: Final = 0x0000
PRICE_FLAGS: Final = 0x0001
CALENDAR_FLAGS: Final = 0x0002
PREPAYMENT_FLAGS: Final = 0x0003
DEVICE_MANAGEMENT_FLAGS: Final = 0x0004
FLAG_ATTRIBUTES: Final = tuple(range(8))  # 0x0000-0x0007
MAP32: Final = 0x1B
MAX_SCHEMES: Final = 8
MAX_FLAG_COMMANDS: Final = 16
_UINT32: Final = 0xFFFF_FFFF


class NotificationScheme(IntEnum):
    """Notification schemes (Silicon Labs' meter-mirror plugin): none, predefined A, B."""

    NONE = 0x00
    A = 0x01
    B = 0x02


class FunctionalFlag(IntFlag):
    """Functional Notification Flags bits (Wireshark 4.0.17's names)."""

    NEW_OTA_FIRMWARE = 1 << 0
    CBKE_UPDATE_REQUEST = 1 << 1
    TIME_SYNC = 1 << 2
    STAY_AWAKE_REQUEST_HAN = 1 << 4
    STAY_AWAKE_REQUEST_WAN = 1 << 5
    PUSH_HISTORICAL_METERING_DATA_ATTRIBUTE_SET = 0x7 << 6  # a 3-bit field
    PUSH_HISTORICAL_PREPAYMENT_DATA_ATTRIBUTE_SET = 0x7 << 9  # a 3-bit field
    PUSH_ALL_STATIC_DATA_BASIC_CLUSTER = 1 << 12
    PUSH_ALL_STATIC_DATA_METERING_CLUSTER = 1 << 13
    PUSH_ALL_STATIC_DATA_PREPAYMENT_CLUSTER = 1 << 14
    NETWORK_KEY_ACTIVE = 1 << 15
    DISPLAY_MESSAGE = 1 << 16
    CANCEL_ALL_MESSAGES = 1 << 17
    CHANGE_SUPPLY = 1 << 18
    LOCAL_CHANGE_SUPPLY = 1 << 19
    SET_UNCONTROLLED_FLOW_THRESHOLD = 1 << 20
    TUNNEL_MESSAGE_PENDING = 1 << 21
    GET_SNAPSHOT = 1 << 22
    GET_SAMPLED_DATA = 1 << 23
    NEW_SUB_GHZ_CHANNEL_MASKS_AVAILABLE = 1 << 24
    ENERGY_SCAN_PENDING = 1 << 25
    CHANNEL_CHANGE_PENDING = 1 << 26


class PriceFlag(IntFlag):
    """Notification Flags 2 (Price) bits (Wireshark's names)."""

    PUBLISH_PRICE = 1 << 0
    PUBLISH_BLOCK_PERIOD = 1 << 1
    PUBLISH_TARIFF_INFORMATION = 1 << 2
    PUBLISH_CONVERSION_FACTOR = 1 << 3
    PUBLISH_CALORIFIC_VALUE = 1 << 4
    PUBLISH_CO2_VALUE = 1 << 5
    PUBLISH_BILLING_PERIOD = 1 << 6
    PUBLISH_CONSOLIDATED_BILL = 1 << 7
    PUBLISH_PRICE_MATRIX = 1 << 8
    PUBLISH_BLOCK_THRESHOLDS = 1 << 9
    PUBLISH_CURRENCY_CONVERSION = 1 << 10
    PUBLISH_CREDIT_PAYMENT_INFO = 1 << 12
    PUBLISH_CPP_EVENT = 1 << 13
    PUBLISH_TIER_LABELS = 1 << 14
    CANCEL_TARIFF = 1 << 15


class CalendarFlag(IntFlag):
    """Notification Flags 3 (Calendar) bits (Wireshark's names)."""

    PUBLISH_CALENDAR = 1 << 0
    PUBLISH_SPECIAL_DAYS = 1 << 1
    PUBLISH_SEASONS = 1 << 2
    PUBLISH_WEEK = 1 << 3
    PUBLISH_DAY = 1 << 4
    CANCEL_CALENDAR = 1 << 5


class PrepaymentFlag(IntFlag):
    """Notification Flags 4 (Prepayment) bits (Wireshark's names)."""

    SELECT_AVAILABLE_EMERGENCY_CREDIT = 1 << 0
    CHANGE_DEBT = 1 << 1
    EMERGENCY_CREDIT_SETUP = 1 << 2
    CONSUMER_TOP_UP = 1 << 3
    CREDIT_ADJUSTMENT = 1 << 4
    CHANGE_PAYMENT_MODE = 1 << 5
    GET_PREPAY_SNAPSHOT = 1 << 6
    GET_TOP_UP_LOG = 1 << 7
    SET_LOW_CREDIT_WARNING_LEVEL = 1 << 8
    GET_DEBT_REPAYMENT_LOG = 1 << 9
    SET_MAXIMUM_CREDIT_LIMIT = 1 << 10
    SET_OVERALL_DEBT_CAP = 1 << 11


class DeviceManagementFlag(IntFlag):
    """Notification Flags 5 (Device Management) bits (Wireshark's names)."""

    PUBLISH_CHANGE_OF_TENANCY = 1 << 0
    PUBLISH_CHANGE_OF_SUPPLIER = 1 << 1
    REQUEST_NEW_PASSWORD_1_RESPONSE = 1 << 2
    REQUEST_NEW_PASSWORD_2_RESPONSE = 1 << 3
    REQUEST_NEW_PASSWORD_3_RESPONSE = 1 << 4
    REQUEST_NEW_PASSWORD_4_RESPONSE = 1 << 5
    UPDATE_SITE_ID = 1 << 6
    RESET_BATTERY_COUNTER = 1 << 7
    UPDATE_CIN = 1 << 8


_FLAG_TYPES: Final[Mapping[int, type[IntFlag]]] = {
    FUNCTIONAL_FLAGS: FunctionalFlag,
    PRICE_FLAGS: PriceFlag,
    CALENDAR_FLAGS: CalendarFlag,
    PREPAYMENT_FLAGS: PrepaymentFlag,
    DEVICE_MANAGEMENT_FLAGS: DeviceManagementFlag,
}
_PREDEFINED: Final[Mapping[int, tuple[int, ...]]] = {
    NotificationScheme.A: (FUNCTIONAL_FLAGS,),
    NotificationScheme.B: tuple(range(FUNCTIONAL_FLAGS, DEVICE_MANAGEMENT_FLAGS + 1)),
}


def flag_names(attribute: int, flags: int) -> tuple[str, ...]:
    """The names of the bits set in ``flags`` of flag ``attribute`` (Wireshark's), a bit
    without a name as ``bit<n>``."""
    kind = _FLAG_TYPES.get(attribute)
    names = []
    for bit in range(32):
        if not flags >> bit & 1:
            continue
        member = None
        if kind is not None:
            member = next((m for m in kind.__members__.values() if m.value >> bit & 1), None)
        name = member.name if member is not None and member.name else f"bit{bit}"
        if name not in names:
            names.append(name)
    return tuple(names)


def flag_attributes(scheme: int, order: int | None = None) -> tuple[int, ...]:
    """The flag attributes a Mirror Report Attribute Response carries for ``scheme``: A the
    Functional flags, B the Functional and Notification Flags 2-5; another scheme those its
    flag ``order`` names (zse's reading: nibbles from the least significant, each a
    NotificationFlags number 1-8, 0 ending), none without one."""
    if scheme in _PREDEFINED:
        return _PREDEFINED[scheme]
    out: list[int] = []
    while order:
        number = order & 0xF
        if not 1 <= number <= len(FLAG_ATTRIBUTES):
            break
        out.append(FLAG_ATTRIBUTES[number - 1])
        order >>= 4
    return tuple(out)


@dataclass(frozen=True)
class FlagCommands:
    """What a Configure Notification Flag said one flag attribute's bits stand for."""

    cluster_id: int
    manufacturer_code: int
    command_ids: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class MirrorConfigured:
    """The meter configured its mirror (Configure Mirror / Notification Scheme / Flag:
    ``command_id``); the fields after it are what the mirror holds now."""

    device: t.EUI64
    endpoint: int
    command_id: int
    reporting: bool
    scheme: int
    reporting_interval: int


@dataclass(frozen=True, kw_only=True)
class NotificationFlagsRaised:
    """The application raised (or cleared) bits of a mirror's flag attribute; ``flags`` is
    what it holds now."""

    device: t.EUI64
    endpoint: int
    attribute: int
    flags: int


@dataclass(frozen=True, kw_only=True)
class NotifiedMessageRequested:
    """The meter sent Get Notified Message: it wants the commands behind ``flags`` of flag
    ``attribute`` (those bits are cleared on the mirror). The application sends them."""

    device: t.EUI64
    endpoint: int
    scheme: int
    attribute: int
    flags: int
    commands: FlagCommands | None

    def record(self) -> dict[str, Any]:
        """The request as journalled with the flags it cleared (told once, after a kill too)."""
        commands = self.commands
        return {
            "device": str(self.device),
            "endpoint": self.endpoint,
            "scheme": self.scheme,
            "attribute": self.attribute,
            "flags": self.flags,
            "commands": None
            if commands is None
            else [commands.cluster_id, commands.manufacturer_code, list(commands.command_ids)],
        }

    @classmethod
    def from_record(cls, record: Any) -> NotifiedMessageRequested:
        """Back from :meth:`record`; ``ValueError`` when it is not one."""
        try:
            # zse's parser: zigpy's EUI64.convert asserts the length (AssertionError)
            device = parse_eui64(record["device"])
            commands = record["commands"]
            if commands is not None:
                cluster, manufacturer, ids = commands
                commands = FlagCommands(
                    _int(cluster, 0xFFFF),
                    _int(manufacturer, 0xFFFF),
                    tuple(_int(i, 0xFF) for i in ids),
                )
            return cls(
                device=device,
                endpoint=_int(record["endpoint"], 0xFF),
                scheme=_int(record["scheme"], 0xFF),
                attribute=_flag_attribute(record["attribute"]),
                flags=_int(record["flags"], _UINT32),
                commands=commands,
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a notified message request ({type(exc).__name__})") from None


@dataclass
class MirrorNotifications:
    """One mirror's notification settings (from its meter) and flags (from the ESI)."""

    issuer_event_id: int | None = None
    reporting_interval: int = 0
    reporting: bool = False
    scheme: int = NotificationScheme.NONE
    #: scheme -> flag order (Configure Notification Scheme)
    orders: dict[int, int] = field(default_factory=dict)
    #: (scheme, flag attribute) -> commands (Configure Notification Flag)
    commands: dict[tuple[int, int], FlagCommands] = field(default_factory=dict)
    #: flag attribute -> bits raised
    flags: dict[int, int] = field(default_factory=dict)

    def response_flags(self) -> tuple[int, ...] | None:
        """The flags a Mirror Report Attribute Response carries now, None when the mirror
        sends none (reporting off, or a scheme that names no flag attribute)."""
        if not self.reporting:
            return None
        attributes = flag_attributes(self.scheme, self.orders.get(self.scheme))
        if not attributes:
            return None
        return tuple(self.flags.get(a, 0) for a in attributes)

    def raise_flags(self, attribute: int, flags: int) -> int:
        """Set ``flags`` in ``attribute``; what it holds now."""
        _check_flags(attribute, flags)
        self.flags[attribute] = self.flags.get(attribute, 0) | flags
        return self.flags[attribute]

    def clear_flags(self, attribute: int, flags: int) -> int:
        """Clear ``flags`` in ``attribute``; what it holds now."""
        _check_flags(attribute, flags)
        held = self.flags.get(attribute, 0) & ~flags
        if held:
            self.flags[attribute] = held
        else:
            self.flags.pop(attribute, None)
        return held

    def record(self) -> dict[str, Any]:
        """What persists (with the mirror's record)."""
        return {
            "issuer": self.issuer_event_id,
            "interval": self.reporting_interval,
            "reporting": self.reporting,
            "scheme": self.scheme,
            "orders": {str(s): o for s, o in sorted(self.orders.items())},
            "commands": [
                [s, a, c.cluster_id, c.manufacturer_code, list(c.command_ids)]
                for (s, a), c in sorted(self.commands.items())
            ],
            "flags": {f"{a:04x}": v for a, v in sorted(self.flags.items())},
        }

    @classmethod
    def restore(cls, record: Mapping[str, Any]) -> MirrorNotifications:
        """Back from :meth:`record`; ``ValueError`` when it is not one."""
        try:
            issuer = record["issuer"]
            notes = cls(
                issuer_event_id=None if issuer is None else _int(issuer, _UINT32),
                reporting_interval=_int(record["interval"], 0xFF_FFFF),
                reporting=_bool(record["reporting"]),
                scheme=_int(record["scheme"], 0xFF),
            )
            for scheme, order in record["orders"].items():
                notes.orders[_int(int(scheme), 0xFF)] = _int(order, _UINT32)
            for scheme, attribute, cluster, manufacturer, ids in record["commands"]:
                key = (_int(scheme, 0xFF), _flag_attribute(attribute))
                notes.commands[key] = FlagCommands(
                    _int(cluster, 0xFFFF),
                    _int(manufacturer, 0xFFFF),
                    tuple(_int(i, 0xFF) for i in ids),
                )
            for key, value in record["flags"].items():
                notes.flags[_flag_attribute(int(key, 16))] = _int(value, _UINT32)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a notification record ({type(exc).__name__})") from None
        if len(notes.orders) > MAX_SCHEMES or len(notes.commands) > MAX_FLAG_COMMANDS:
            raise ValueError("not a notification record (too many entries)")
        return notes


def _int(value: Any, top: int) -> int:
    if type(value) is not int or not 0 <= value <= top:
        raise ValueError(f"{value!r} is out of range")
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError(f"{value!r} is not a boolean")
    return value


def _flag_attribute(attribute: Any) -> int:
    if attribute not in FLAG_ATTRIBUTES or type(attribute) is not int:
        raise ValueError(f"{attribute!r} is not a notification flag attribute")
    return int(attribute)


def _check_flags(attribute: int, flags: int) -> None:
    _flag_attribute(attribute)
    _int(int(flags), _UINT32)
