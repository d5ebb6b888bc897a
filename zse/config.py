"""The ESI's configuration file (TOML): radio, network, credentials, devices, groups, prices.

``python -m zse esi --config esi.toml`` reads it (with :mod:`tomllib`); command-line options
override the ``[radio]`` values. Everything is checked here, before any radio is opened, and a
problem raises :class:`ConfigError` naming the file, the table and the key::

    [radio]
    type = "ezsp"                    # or "znp"
    device = "/dev/ttyUSB0"
    baudrate = 115200                # optional
    flow_control = "hardware"        # optional: "software" (XON/XOFF) or "none"
    ezsp_key_table_size = 16         # optional, EZSP only: link keys kept by the NCP

    [network]
    form = false                     # true: form a new network (every device joins again)
    channel = 15                     # used only when a network is formed
    pan_id = 0x1A2B
    extended_pan_id = "00:0d:6f:ff:fe:00:12:34"

    [esi]
    credentials = ["esi-suite1.json"]   # `zse cert issue` output, or your CA's
    database = "han.db"                 # the HAN registry (SQLite); relative to this file
    permit_seconds = 254              # joining window per admission (zigpy: at most 254)
    devices_csv = ["devices.csv"]       # header eui64,install_code[,label,groups,link_key]
    interpan = true                     # answer Get Current Price over inter-PAN
    provider_id = 1
    currency = 840                      # ISO 4217 numeric
    time_zone = "Europe/London"         # optional IANA zone: the Time server's TimeZone and DST
    mirrors = 2                         # optional: meter mirrors served (SE D.3.4; default 0)
    keep_alive_minutes = 10             # optional: TC Keep-Alive Base, 1-255 (default 10)
    keep_alive_jitter = 300             # optional: TC Keep-Alive Jitter in seconds, 0-512 (300)
    aps_ack = true                      # optional: unicasts ask for APS acks, resent (default)

    [meter]                          # optional: the ESI hosts the Metering server (SE D.3)
    unit_of_measure = 0              # UnitOfMeasure: 0 kWh (default)
    divisor = 1000                   # Multiplier (default 1) / Divisor (default 1000): raw Wh
    summation_formatting = 0x33      # digits left (bits 3-6) / right (bits 0-2); also demand_,
                                     # historical_consumption_formatting, metering_device_type,
                                     # default_update_period (30 s), fast_poll_update_period (5 s)
    demand = false                   # optional: a meter without InstantaneousDemand (default true)
    supply = true                    # optional: SE 1.2 supply control (Change Supply...; false)
    historical_freeze_time = "06:30" # optional: when the history's local day begins ("00:00")

    [prepayment]                     # optional: a prepay meter (SE 1.2 D.7); none: a credit meter
    initial_credit = 1000            # account units (currency_digits after the point: pence)
    emergency_credit_limit = 500     # and emergency_credit_threshold, low_credit_warning_level,
    emergency_credit_threshold = 100 # max_credit_limit, max_credit_per_top_up, overall_debt_cap,
                                     # cut_off_value, currency_digits (default 2),
                                     # friendly_credit_warning (minutes, default 60),
                                     # currency (ISO 4217: the cost consumption's; default 0)
    friendly_credit = false          # true: no interruption while the friendly_credit
                                     # calendar ([[calendars]]) says friendly credit is on
    [prepayment.codes]               # top-up codes (UTRNs) accepted once, with their amounts
    "12345678901234567890" = 2000

    [[devices]]
    eui64 = "00:0d:6f:00:0a:00:00:01"
    install_code = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"
    label = "kitchen display"
    groups = ["street-7"]

    [groups]
    street-7 = ["00:0d:6f:00:0a:00:00:02"]   # more members, by EUI-64

    [[prices]]
    price = "0.2451"                 # per unit of measure; the decimals give the trailing digit
    rate_label = "Peak"
    group = "street-7"               # or device = "...", zigbee_group = 0x0E01; default broadcast

    [[tariffs]]                      # SE 1.2 tariff: Publish Tariff Information and its parts
    issuer_tariff_id = 1
    label = "Economy 7"              # TariffLabel, up to 24 octets
    prices = ["0.1520", "0.2980"]    # TOU: tier 1, tier 2...; or block_prices (below)
    tier_labels = ["Night", "Day"]   # optional: tier 1, tier 2...
    # block_prices = [["0.10", "0.15", "0.20"]]  # one row: a block tariff; more: tiers 1, 2...
    # block_thresholds = [2000, 5000]            # one fewer than the blocks, every tier's
    # threshold_divisor = 1000       # optional: and threshold_multiplier (default 1)
    standing_charge = "0.2500"       # optional; also tariff_type (0 delivered, 1 received),
                                     # start_time, issuer_event_id, provider_id, currency,
                                     # unit_of_measure and a target as for [[prices]]

    [device_management]              # SE 1.2 D.10: told to devices as they join or ask
    site_id = "1200023305967"        # Update SiteID (GB: the MPAN)
    cin = "CIN-0042"                 # Update CIN (customer id number)
    tenancy_time = 830000000         # Publish Change of Tenancy at this ZigBee time (0: now)
    tenancy_control = ["Clear_IHD_Data_Consumer", "Clear_Tariff_Plan"]  # or an integer
    supplier_provider_id = 9         # Publish Change of Supplier: the new supplier's id,
    supplier_name = "Bright Power"   # its name and contact details,
    supplier_contact = "0800 000 000"
    supplier_time = 830000000        # and when (0: now); also issuer_event_id, provider_id
    [[calendars]]                    # SE 1.2 TOU calendar (Calendar cluster, D.9)
    issuer_calendar_id = 1
    name = "GB TOU"                  # up to 12 octets
    type = "delivered"               # or received, delivered_and_received, friendly_credit,
                                     # auxiliary_load_switch (values: tiers, 0/1, switch bits)
    time_reference = "local"         # or utc, standard (default local: the Time server's zone)
    days.night = { "00:00" = 1 }                             # day profiles: start -> value
    days.weekday = { "00:00" = 1, "07:00" = 2, "16:00" = 3, "19:00" = 2, "23:00" = 1 }
    weeks.winter = ["weekday", "weekday", "weekday", "weekday", "weekday", "night", "night"]
    seasons = [{ start = "10-01", week = "winter" }]         # MM-DD every year, or YYYY-MM-DD
    special_days = [{ date = "12-25", day = "night" }]       # optional
                                     # optional too: start_time, issuer_event_id, provider_id
                                     # and a target as for [[prices]]

Relative paths are relative to the configuration file. Unknown keys are refused (a typo must
not silently drop a setting).
"""

from __future__ import annotations

import dataclasses
import decimal
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date as _dt_date
from pathlib import Path
from typing import Any

from zse._files import read_text_file
from zse._words import quoted
from zse.calendar import (
    MAX_CALENDAR_NAME,
    CalendarSchedule,
    CalendarType,
    DayProfile,
    TimeReference,
    WeekProfile,
    ZclDate,
)
from zse.devmgmt.core import (
    ChangeOfSupplier,
    ChangeOfTenancy,
    CustomerId,
    DeviceManagementError,
    SiteId,
    TenancyChangeControl,
)
from zse.errors import DecodeError, ZseError
from zse.installcode import InstallCode, parse_eui64
from zse.metering.history import freeze_seconds
from zse.prepayment.core import PrepayConfig, PrepayError, RegisteredCodes
from zse.price import (
    DURATION_UNTIL_CHANGED,
    MAX_TARIFF_LABEL,
    MAX_TIER,
    MAX_TIER_LABEL,
    STANDING_CHARGE_NOT_USED,
    START_NOW,
    TIER_BLOCK_MODE_NOT_USED,
    TRAILERS_NOT_USED,
    BlockThresholds,
    PriceEvent,
    PriceMatrix,
    TariffInformation,
    TariffValue,
    TierLabels,
    split_tier,
)
from zse.provisioning.lifecycle import han_name_problem
from zse.se.ids import MeteringAttribute
from zse.se.prepay import mask_code
from zse.se.types import UNIT_OF_MEASURE_BCD, UnitOfMeasure
from zse.time.core import IanaZone, TimeZoneError

__all__ = [
    "FLOW_CONTROLS",
    "RADIOS",
    "CalendarEntry",
    "ConfigError",
    "DeviceEntry",
    "EsiConfig",
    "NetworkSettings",
    "PriceEntry",
    "RadioSettings",
    "Target",
    "TariffEntry",
    "load_config",
    "parse_config",
    "parse_price",
    "read_toml",
]

#: The radios ``--radio`` accepts, and the extra that installs each one's library.
RADIOS: dict[str, str] = {"ezsp": "bellows", "znp": "zigpy-znp"}
#: Serial flow control, as zigpy's ``flow_control`` device setting takes it ("none": None).
FLOW_CONTROLS = ("hardware", "software", "none")
#: zigpy's permit() takes at most 254 s (a ZDO Mgmt_Permit_Joining_req limit, 0xFF = forever).
DEFAULT_PERMIT_SECONDS = 254
DEFAULT_CURRENCY = 840
DEFAULT_PROVIDER_ID = 1
_CHANNELS = range(11, 27)
#: Mirror endpoints follow the ESI's SE endpoint (9) up to the last application endpoint, 240.
MAX_MIRRORS = 240 - 9


class ConfigError(ZseError, ValueError):
    """A configuration file or option that cannot be used; the message says where."""


@dataclass(frozen=True, kw_only=True)
class RadioSettings:
    """Which coordinator to open: ``radio`` ("ezsp" or "znp") on serial port ``device``."""

    radio: str | None = None
    device: str | None = None
    baudrate: int | None = None
    #: "hardware" (RTS/CTS), "software" (XON/XOFF), "none"; None: the radio library's default.
    flow_control: str | None = None
    ezsp_key_table_size: int | None = None
    #: Seconds the radio may take to start (None: only the radio library's own timeouts).
    start_timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class NetworkSettings:
    """Use the stick's network, or ``form`` a new one (with these values where given)."""

    form: bool = False
    channel: int | None = None
    pan_id: int | None = None
    extended_pan_id: str | None = None


@dataclass(frozen=True)
class Target:
    """Where a send goes: one of the facade's targets (``kind`` is its keyword)."""

    kind: str  # device | group | zigbee_group | enrollment_group | broadcast
    value: Any = True

    def kwargs(self) -> dict[str, Any]:
        """The keyword argument of the facade's send methods."""
        return {self.kind: self.value}

    def __str__(self) -> str:
        if self.kind == "broadcast":
            return "broadcast"
        if self.kind == "zigbee_group":
            return f"ZigBee group 0x{self.value:04X}"
        return f"{self.kind.replace('_', ' ')} {self.value}"


BROADCAST = Target("broadcast")


@dataclass(frozen=True, kw_only=True)
class DeviceEntry:
    """A device to provision: MAC address (as zigpy prints it), install code, label, groups."""

    eui64: str
    install_code: str = field(repr=False)  # a secret: never in reprs (#12.23)
    label: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PriceEntry:
    """A price to publish at start, and where to."""

    price: PriceEvent
    target: Target = BROADCAST
    #: No issuer_event_id was given: the ESI numbers it when it publishes (from the time).
    auto_id: bool = False


@dataclass(frozen=True, kw_only=True)
class TariffEntry:
    """An SE 1.2 tariff to publish at start (its information, matrix, thresholds and tier
    labels), and where to."""

    tariff: TariffInformation
    values: tuple[TariffValue, ...] = ()
    target: Target = BROADCAST
    #: No issuer_event_id was given: the ESI numbers each part when it publishes.
    auto_id: bool = False


@dataclass(frozen=True, kw_only=True)
class DeviceManagementEntry:
    """``[device_management]``: what the ESI publishes at start (SE 1.2 D.10)."""

    items: tuple[ChangeOfTenancy | ChangeOfSupplier | SiteId | CustomerId, ...] = ()
    #: No issuer_event_id was given: the ESI numbers each when it publishes.
    auto_id: bool = False


@dataclass(frozen=True, kw_only=True)
class CalendarEntry:
    """An SE 1.2 calendar to publish at start (Calendar cluster, D.9), and where to."""

    calendar: CalendarSchedule
    target: Target = BROADCAST
    #: No issuer_event_id was given: the ESI numbers it when it publishes.
    auto_id: bool = False


@dataclass(frozen=True, kw_only=True)
class EsiConfig:
    """Everything ``zse esi`` needs besides the radio itself."""

    source: str = "command line"
    radio: RadioSettings = field(default_factory=RadioSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    credentials: tuple[Path, ...] = ()
    database: Path | None = None
    permit_seconds: int = DEFAULT_PERMIT_SECONDS
    devices: tuple[DeviceEntry, ...] = ()
    devices_csv: tuple[Path, ...] = ()
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    prices: tuple[PriceEntry, ...] = ()
    tariffs: tuple[TariffEntry, ...] = ()
    #: ``[device_management]``: tenancy, supplier, site id, CIN to publish at start.
    device_management: DeviceManagementEntry = field(default_factory=DeviceManagementEntry)
    calendars: tuple[CalendarEntry, ...] = ()
    interpan: bool = False
    provider_id: int = DEFAULT_PROVIDER_ID
    currency: int = DEFAULT_CURRENCY
    time_zone: str | None = None
    #: ``[meter]``: the Metering server's attributes by id (None: the ESI hosts no meter).
    meter: Mapping[int, int] | None = None
    #: ``[meter] demand``: whether the meter has InstantaneousDemand (optional, SE
    #: D.3.2.2.1.1); False: Read Attributes and Configure Reporting of it are refused
    #: UNSUPPORTED_ATTRIBUTE, and a reading of it (``meter set --demand``) too.
    meter_demand: bool = True
    #: ``[meter] supply``: the meter has SE 1.2 supply control (zse.metering.supply): Supply
    #: Status served, Local Change Supply from displays, the utility's commands from the ESI.
    meter_supply: bool = False
    #: ``[meter] historical_freeze_time``: the HistoricalFreezeTime (hours << 8 | minutes),
    #: when the Historical Consumption set's local day begins (SE 1.2 D.3.2.2.5).
    meter_freeze_time: int = 0
    #: ``[esi] mirrors``: how many meter mirror endpoints the ESI serves (SE D.3.4).
    mirrors: int = 0
    #: ``[esi] keep_alive_minutes`` / ``keep_alive_jitter``: the Trust Center Keep-Alive
    #: server's Base (minutes) and Jitter (seconds), SE 1.2 5.4.2.2.3.4.
    keep_alive: tuple[int, int] = (10, 300)
    #: ``[esi] aps_ack``: the ESI's unicasts ask for an APS acknowledgement and the radio
    #: resends them without one (ZB 2.2.8.4.1; default true); false: done at the first hop's
    #: MAC acknowledgement.
    aps_ack: bool = True
    #: ``[prepayment]``: the prepay account's settings (None: a credit meter, no Prepayment
    #: server), and ``[prepayment.codes]``, the top-up codes accepted once with their amounts.
    prepayment: PrepayConfig | None = None
    prepayment_codes: Mapping[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        demand = int(MeteringAttribute.INSTANTANEOUS_DEMAND)
        if not self.meter_demand and self.meter is not None and demand in self.meter:
            raise ConfigError(
                f"{self.source}: [meter] demand: false, yet an InstantaneousDemand value"
                f" (attribute 0x{demand:04X}) is given"
            )

    def override(self, **changes: Any) -> EsiConfig:
        """A copy with command-line values applied (``None`` or ``()`` means "not given")."""
        given = {k: v for k, v in changes.items() if v is not None and v != ()}
        radio = dataclasses.replace(
            self.radio,
            **{
                k: given.pop(k)
                for k in ("radio", "device", "baudrate", "flow_control", "start_timeout")
                if k in given
            },
        )
        network = self.network
        if given.pop("form", False):
            network = dataclasses.replace(network, form=True)
        return dataclasses.replace(self, radio=radio, network=network, **given)


# -- parsing --------------------------------------------------------------------------------

_TABLES = {
    "radio": {"type", "device", "baudrate", "flow_control", "ezsp_key_table_size"},
    "network": {"form", "channel", "pan_id", "extended_pan_id"},
    "esi": {
        "credentials",
        "database",
        "permit_seconds",
        "devices_csv",
        "interpan",
        "provider_id",
        "currency",
        "time_zone",
        "mirrors",
        "keep_alive_minutes",
        "keep_alive_jitter",
        "aps_ack",
    },
    "meter": {
        "unit_of_measure",
        "multiplier",
        "divisor",
        "summation_formatting",
        "demand_formatting",
        "historical_consumption_formatting",
        "metering_device_type",
        "default_update_period",
        "fast_poll_update_period",
        "demand",
        "supply",
        "historical_freeze_time",
    },
    "prepayment": {
        "initial_credit",
        "low_credit_warning_level",
        "emergency_credit_limit",
        "emergency_credit_threshold",
        "max_credit_limit",
        "max_credit_per_top_up",
        "overall_debt_cap",
        "cut_off_value",
        "currency_digits",
        "friendly_credit",
        "friendly_credit_warning",
        "currency",
        "codes",
    },
    "devices": {"eui64", "install_code", "label", "groups"},
    "device_management": {
        "site_id",
        "cin",
        "tenancy_time",
        "tenancy_control",
        "supplier_provider_id",
        "supplier_name",
        "supplier_contact",
        "supplier_time",
        "issuer_event_id",
        "provider_id",
    },
    "prices": {
        "price",
        "rate_label",
        "issuer_event_id",
        "provider_id",
        "currency",
        "unit_of_measure",
        "price_tier",
        "number_of_price_tiers",
        "register_tier",
        "start_time",
        "duration_in_minutes",
        "device",
        "group",
        "zigbee_group",
        "broadcast",
    },
    "calendars": {
        "issuer_calendar_id",
        "issuer_event_id",
        "provider_id",
        "name",
        "type",
        "time_reference",
        "start_time",
        "days",
        "weeks",
        "seasons",
        "special_days",
        "device",
        "group",
        "zigbee_group",
        "broadcast",
    },
    "tariffs": {
        "issuer_tariff_id",
        "issuer_event_id",
        "provider_id",
        "currency",
        "unit_of_measure",
        "tariff_type",
        "start_time",
        "label",
        "prices",
        "block_prices",
        "block_thresholds",
        "threshold_multiplier",
        "threshold_divisor",
        "standing_charge",
        "tier_labels",
        "device",
        "group",
        "zigbee_group",
        "broadcast",
    },
}


class _Reader:
    """Typed access to one table, with errors naming the file, table and key."""

    def __init__(self, source: str, where: str, table: Any, allowed: set[str]) -> None:
        self.source = source
        self.where = where
        if not isinstance(table, dict):
            self.fail(f"must be a table, got {type(table).__name__}")
        unknown = sorted(set(table) - allowed)
        if unknown:
            self.fail(f"unknown key {_shown(unknown[0])} (known: {', '.join(sorted(allowed))})")
        self.table: dict[str, Any] = table

    def fail(self, message: str, key: str | None = None) -> None:
        place = self.where if key is None else f"{self.where} {key}"
        raise ConfigError(f"{self.source}: {place}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = self.table.get(key, default)
        if value is default:
            return value
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(f"expected {kinds[0].__name__}, got a boolean", key)
        if not isinstance(value, kinds):
            self.fail(f"expected {kinds[0].__name__}, got {type(value).__name__}", key)
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int | None:
        value = self.get(key, int, default)
        if value is not None and not low <= value <= high:
            self.fail(f"{_shown(value)} is outside {low}..{high}", key)
        return value  # type: ignore[no-any-return]

    def number(self, key: str, low: int, high: int, default: int) -> int:
        value = self.integer(key, low, high, default)
        assert value is not None
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key, (list, str), [])
        items = [value] if isinstance(value, str) else value
        if not all(isinstance(item, str) and item for item in items):
            self.fail("expected a list of non-empty strings", key)
        return tuple(items)

    def eui64(self, key: str, text: Any) -> str:
        if not isinstance(text, str):
            self.fail(f"expected an EUI-64 string, got {type(text).__name__}", key)
        try:
            return str(parse_eui64(text))
        except DecodeError as exc:
            self.fail(str(exc), key)
            raise  # fail() raised


def _flow_control(radio: _Reader) -> str | None:
    value = radio.get("flow_control", str)
    if value is not None and value.lower() not in FLOW_CONTROLS:
        radio.fail(f"{value!r} is not one of {', '.join(FLOW_CONTROLS)}", "flow_control")
    return None if value is None else str(value).lower()


def parse_price(
    text: str | int | float,
    *,
    rate_label: str = "",
    issuer_event_id: int,
    provider_id: int = DEFAULT_PROVIDER_ID,
    currency: int = DEFAULT_CURRENCY,
    unit_of_measure: int = 0,
    price_tier: int = 1,
    number_of_price_tiers: int = 1,
    register_tier: int = 1,
    start_time: int = START_NOW,
    duration_in_minutes: int = DURATION_UNTIL_CHANGED,
) -> PriceEvent:
    """A :class:`~zse.price.PriceEvent` from a decimal price as people write it ("0.2451"):
    the digits after the point become the Price Trailing Digit (D.4.2.4.1.1.7). Tiers (and
    the number of tiers) 0-48: one above 15 goes as SE 1.2 sends it, the 4-bit field 0xF and
    the extended field (:func:`~zse.price.split_tier`), the optional fields before them "not
    used" (:data:`~zse.price.TRAILERS_NOT_USED`). Raises :class:`ConfigError` for what does not fit
    the Publish Price fields."""
    digits, value = _price_digits(text)
    label = rate_label.encode("utf-8")
    try:
        extended = _extended_tiers(price_tier, number_of_price_tiers, register_tier)
        if extended:
            price_tier, extended["extended_price_tier"] = split_tier(price_tier)
            number_of_price_tiers, extended["extended_number_of_price_tiers"] = split_tier(
                number_of_price_tiers
            )
            register_tier, extended["extended_register_tier"] = split_tier(register_tier)
        return PriceEvent(
            provider_id=provider_id,
            rate_label=label,
            issuer_event_id=issuer_event_id,
            unit_of_measure=unit_of_measure,
            currency=currency,
            price_trailing_digit=digits,
            price_tier=price_tier,
            number_of_price_tiers=number_of_price_tiers,
            register_tier=register_tier,
            start_time=start_time,
            duration_in_minutes=duration_in_minutes,
            price=value,
            **extended,
        )
    except ValueError as exc:
        raise ConfigError(f"price {_shown(text)}: {exc}") from None


def _extended_tiers(*tiers: int) -> dict[str, int]:
    """The optional fields a price needs when one of ``tiers`` is above 15 (none otherwise:
    tiers 0-15 fit the 4-bit fields, as SE 1.0 and 1.1 receivers read them)."""
    return dict(TRAILERS_NOT_USED) if any(tier > _NIBBLE_TIER for tier in tiers) else {}


#: The highest tier a 4-bit field carries alone (D.4.2.4.1.1.7-8).
_NIBBLE_TIER = 15


#: Publish Price's Price is a Uint32 and its Price Trailing Digit 4 bits (D.4.2.4.1.1.11, .7).
_PRICE_MAX = 0xFFFFFFFF
_TRAILING_MAX = 15
#: Longer text cannot be a price that fits those fields (checked before any conversion).
_PRICE_TEXT_MAX = 40


_shown = quoted  # a value for an error message, cut short (a config value may be any length)


def _price_digits(text: str | int | float) -> tuple[int, int]:
    """(Price Trailing Digit, Price) of a decimal price. Length, exponent and range are
    checked on the decimal's parts before any arithmetic: ``Decimal("1e999999")`` is cheap,
    but scaling it or making it an int takes minutes (or overflows the context)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if not 0 <= text <= _PRICE_MAX:
            raise ConfigError(f"price {_shown(text)} is outside 0..{_PRICE_MAX}")
        return 0, text
    if not isinstance(text, str | float):
        raise ConfigError(f"price {_shown(text)} is not a decimal number")
    raw = str(text).strip()
    if len(raw) > _PRICE_TEXT_MAX:
        raise ConfigError(f"price {_shown(text)} is longer than any price the field carries")
    if not raw.isascii() or "_" in raw:  # Decimal() also reads "1_000" and other scripts' digits
        raise ConfigError(f"price {_shown(text)} is not a decimal number (ASCII digits, no '_')")
    try:
        amount = decimal.Decimal(raw)
    except decimal.InvalidOperation:
        raise ConfigError(f"price {_shown(text)} is not a decimal number") from None
    if not amount.is_finite() or (amount.is_signed() and not amount.is_zero()):
        raise ConfigError(f"price {_shown(text)} must be a non-negative number")
    _, coefficient, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite
    digits = max(0, -exponent)
    if digits > _TRAILING_MAX:
        raise ConfigError(f"price {_shown(text)} has {digits} decimals; at most {_TRAILING_MAX}")
    if amount.adjusted() >= 10:  # 10 integer digits or more: above any Uint32 price
        raise ConfigError(f"price {_shown(text)} is too large for the price field (Uint32)")
    value = int("".join(map(str, coefficient)) or "0") * 10 ** (exponent + digits)
    if value > _PRICE_MAX:
        raise ConfigError(
            f"price {_shown(text)} is too large for the price field (Uint32) with {digits} decimals"
        )
    return digits, value


def _target(reader: _Reader) -> Target:
    chosen = [k for k in ("device", "group", "zigbee_group", "broadcast") if k in reader.table]
    if len(chosen) > 1:
        reader.fail(f"give at most one target, got {' and '.join(chosen)}")
    if not chosen:
        return BROADCAST
    kind = chosen[0]
    if kind == "device":
        return Target("device", reader.eui64("device", reader.table["device"]))
    if kind == "group":
        return Target("group", reader.get("group", str))
    if kind == "zigbee_group":
        return Target("zigbee_group", reader.integer("zigbee_group", 0x0001, 0xFFF7))
    if reader.get("broadcast", bool) is not True:
        reader.fail("broadcast = false: give a device, group or zigbee_group instead")
    return BROADCAST


def _path(base: Path, text: str) -> Path:
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else base / path


_UNREADABLE = "not TOML zse reads"


def read_toml(text: str, source: str) -> dict[str, Any]:
    """The TOML document ``text`` (from ``source``); :class:`ConfigError` naming ``source``
    if it is not TOML, or TOML no program can use (an integer of more digits than the
    interpreter converts, nesting past its recursion limit: tomllib's ValueError and
    RecursionError, which would be tracebacks)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not TOML: {exc}") from None
    except ValueError:  # tomllib converts integers with int(): too many digits raise this
        raise ConfigError(
            f"{source}: not TOML zse reads: an integer with too many digits"
        ) from None
    except RecursionError:
        raise ConfigError(
            f"{source}: not TOML zse reads: arrays or tables nested too deep"
        ) from None


def parse_config(text: str, *, source: str = "config", base: Path | None = None) -> EsiConfig:
    """Parse and check a configuration (TOML text); paths are relative to ``base``."""
    base = base if base is not None else Path.cwd()
    document = read_toml(text, source)
    # [mqtt] is read by `zse mqtt` (zse.mqtt.core.parse_settings, #17) and ignored here
    unknown = sorted(set(document) - {*_TABLES, "groups", "mqtt"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown table or key {unknown[0]!r} "
            f"(known: {', '.join(sorted({*_TABLES, 'groups'}))})"
        )
    radio = _Reader(source, "[radio]", document.get("radio", {}), _TABLES["radio"])
    kind = radio.get("type", str)
    if kind is not None and kind not in RADIOS:
        radio.fail(f"{kind!r} is not a radio zse drives (use {' or '.join(RADIOS)})", "type")
    radio_settings = RadioSettings(
        radio=kind,
        device=radio.get("device", str),
        baudrate=radio.integer("baudrate", 1200, 4_000_000),
        flow_control=_flow_control(radio),
        ezsp_key_table_size=radio.integer("ezsp_key_table_size", 1, 127),
    )
    network = _Reader(source, "[network]", document.get("network", {}), _TABLES["network"])
    channel = network.integer("channel", _CHANNELS.start, _CHANNELS.stop - 1)
    extended = network.get("extended_pan_id", str)
    if extended is not None:
        extended = network.eui64("extended_pan_id", extended)
    network_settings = NetworkSettings(
        form=network.get("form", bool, False),
        channel=channel,
        pan_id=network.integer("pan_id", 0x0001, 0xFFFE),
        extended_pan_id=extended,
    )
    esi = _Reader(source, "[esi]", document.get("esi", {}), _TABLES["esi"])
    database = esi.get("database", str)
    provider_id = esi.number("provider_id", 0, 0xFFFFFFFF, DEFAULT_PROVIDER_ID)
    currency = esi.number("currency", 0, 0xFFFF, DEFAULT_CURRENCY)
    time_zone = esi.get("time_zone", str)
    if time_zone is not None:
        try:
            IanaZone(time_zone)
        except TimeZoneError as exc:
            esi.fail(str(exc), "time_zone")
    devices = _devices(source, document.get("devices", []))
    meter, meter_demand, meter_supply, meter_freeze_time = (
        (None, True, False, 0) if "meter" not in document else _meter(source, document["meter"])
    )
    prepayment, prepayment_codes = (
        (None, {}) if "prepayment" not in document else _prepayment(source, document["prepayment"])
    )
    groups = _groups(source, document.get("groups", {}))
    prices = _prices(source, document.get("prices", []), provider_id, currency)
    tariffs = _tariffs(source, document.get("tariffs", []), provider_id, currency)
    device_management = _device_management(
        source, document.get("device_management", {}), provider_id
    )
    calendars = _calendars(source, document.get("calendars", []), provider_id)
    return EsiConfig(
        source=source,
        radio=radio_settings,
        network=network_settings,
        credentials=tuple(_path(base, p) for p in esi.strings("credentials")),
        database=None if database is None else _path(base, database),
        permit_seconds=esi.number("permit_seconds", 1, 254, DEFAULT_PERMIT_SECONDS),
        devices=devices,
        devices_csv=tuple(_path(base, p) for p in esi.strings("devices_csv")),
        groups=groups,
        prices=prices,
        tariffs=tariffs,
        device_management=device_management,
        calendars=calendars,
        interpan=esi.get("interpan", bool, False),
        provider_id=provider_id,
        currency=currency,
        time_zone=time_zone,
        meter=meter,
        meter_demand=meter_demand,
        meter_supply=meter_supply,
        meter_freeze_time=meter_freeze_time,
        mirrors=esi.number("mirrors", 0, MAX_MIRRORS, 0),
        keep_alive=(
            esi.number("keep_alive_minutes", 1, 255, 10),
            esi.number("keep_alive_jitter", 0, 512, 300),
        ),
        aps_ack=esi.get("aps_ack", bool, True),
        prepayment=prepayment,
        prepayment_codes=prepayment_codes,
    )


def _prepayment(source: str, table: Any) -> tuple[PrepayConfig, dict[str, int]]:
    """``[prepayment]``: the prepay account's settings, and ``[prepayment.codes]`` (code ->
    amount, account units). A code is never shown whole in an error."""
    reader = _Reader(source, "[prepayment]", table, _TABLES["prepayment"])
    settings: dict[str, Any] = {
        key: value
        for key in _TABLES["prepayment"] - {"codes", "friendly_credit"}
        if (value := reader.get(key, int)) is not None
    }
    friendly = reader.get("friendly_credit", bool)
    if friendly is not None:
        settings["friendly_credit"] = friendly
    try:
        config = PrepayConfig(**settings)
    except PrepayError as exc:
        raise ConfigError(f"{source}: [prepayment]: {exc}") from None
    codes = reader.get("codes", dict, {})
    checked = RegisteredCodes()
    for code, amount in codes.items():
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ConfigError(
                f"{source}: [prepayment.codes] {mask_code(code)}: the amount is an integer"
                " (account units)"
            )
        try:
            before = len(checked)
            checked.register(code, amount)
            if len(checked) == before:  # the same code as one listed already (spaces, dashes)
                raise ConfigError(
                    f"{source}: [prepayment.codes]: {mask_code(code)}: the same code as one "
                    "listed already (spelled another way)"
                )
        except (PrepayError, UnicodeEncodeError) as exc:
            raise ConfigError(
                f"{source}: [prepayment.codes]: {mask_code(code)}: {type(exc).__name__}"
            ) from None
    return config, dict(codes)


#: ``[meter]`` key -> (attribute, smallest value, largest value, default) (SE D.3.2.2.1,
#: D.3.2.2.4; FastPollUpdatePeriod at least 1 s, as the meter takes it).
_METER = {
    "unit_of_measure": (MeteringAttribute.UNIT_OF_MEASURE, 0, 0xFF, 0),
    # 0 refused (zse's choice): a display divides by the Divisor (D.3.2.2.4.3; zse's own treats
    # 0 as 1, another may not), and a Multiplier of 0 shows every value as 0 (a slip)
    "multiplier": (MeteringAttribute.MULTIPLIER, 1, 0xFFFFFF, 1),
    "divisor": (MeteringAttribute.DIVISOR, 1, 0xFFFFFF, 1000),
    "summation_formatting": (MeteringAttribute.SUMMATION_FORMATTING, 0, 0xFF, 0x33),
    "demand_formatting": (MeteringAttribute.DEMAND_FORMATTING, 0, 0xFF, 0x33),
    "historical_consumption_formatting": (
        MeteringAttribute.HISTORICAL_CONSUMPTION_FORMATTING,
        0,
        0xFF,
        0x33,
    ),
    "metering_device_type": (MeteringAttribute.METERING_DEVICE_TYPE, 0, 0xFF, 0),
    "default_update_period": (MeteringAttribute.DEFAULT_UPDATE_PERIOD, 0, 0xFF, 30),
    "fast_poll_update_period": (MeteringAttribute.FAST_POLL_UPDATE_PERIOD, 1, 0xFF, 5),
}


def _meter(source: str, table: Any) -> tuple[dict[int, int], bool, bool, int]:
    """``[meter]``: the meter's Formatting attributes and update periods, defaults filled in,
    whether it has InstantaneousDemand (``demand``, a boolean; default true) and SE 1.2 supply
    control (``supply``, a boolean; default false), and its HistoricalFreezeTime
    (``historical_freeze_time``, "HH:MM" local time; default "00:00")."""
    reader = _Reader(source, "[meter]", table, _TABLES["meter"])
    demand = reader.table.get("demand", True)
    if not isinstance(demand, bool):
        reader.fail(
            f"expected true or false (false: a meter without InstantaneousDemand),"
            f" got {type(demand).__name__}",
            "demand",
        )
    supply = reader.table.get("supply", False)
    if not isinstance(supply, bool):
        reader.fail(f"expected true or false, got {type(supply).__name__}", "supply")
    found = {
        int(attribute): reader.number(key, low, high, default)
        for key, (attribute, low, high, default) in _METER.items()
    }
    unit = found[MeteringAttribute.UNIT_OF_MEASURE]
    if unit & ~UNIT_OF_MEASURE_BCD not in set(UnitOfMeasure):  # SE D.3.2.2.4.1, table D.21
        reader.fail(
            f"0x{unit:02X} is reserved (0x00-0x0D, or 0x80-0x8D for BCD: 0 kWh, 1 m³, 2 ft³,"
            " 3 ccf, 4 US gal, 5 imp gal, 6 BTU, 7 l, 8-9 kPa, 10 mcf, 11 unitless, 12 MJ,"
            " 13 kVAr)",
            "unit_of_measure",
        )
    return found, demand, supply, _freeze_time(reader)


def _freeze_time(reader: _Reader) -> int:
    """``[meter] historical_freeze_time``: "HH:MM" (00:00-23:59) as the attribute holds it,
    hours in the high octet and minutes in the low one."""
    text = reader.get("historical_freeze_time", str, "00:00")
    hours, _, minutes = text.partition(":")
    try:
        if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
            raise ValueError
        value = int(hours) << 8 | int(minutes)
        freeze_seconds(value)
    except ValueError:
        reader.fail(f"expected a local time HH:MM from 00:00 to 23:59, got {quoted(text)}",
                    "historical_freeze_time")  # fmt: skip
    return value


def _devices(source: str, items: Any) -> tuple[DeviceEntry, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{source}: devices must be an array of tables ([[devices]])")
    found: list[DeviceEntry] = []
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        reader = _Reader(source, f"[[devices]] #{number}", item, _TABLES["devices"])
        if "eui64" not in item or "install_code" not in item:
            reader.fail("needs eui64 and install_code")
        eui64 = reader.eui64("eui64", item["eui64"])
        if eui64 in seen:
            reader.fail(f"{eui64} is listed twice", "eui64")
        seen.add(eui64)
        code = reader.get("install_code", str)
        try:
            InstallCode.parse(code)
        except DecodeError as exc:
            reader.fail(str(exc), "install_code")
        label = reader.get("label", str, "")
        groups = reader.strings("groups")
        for key, name, group in (("label", label, False), *(("groups", g, True) for g in groups)):
            problem = han_name_problem(name, group=group)  # the registry's rule
            if problem is not None:
                reader.fail(f"{_shown(name)} {problem}", key)
        found.append(DeviceEntry(eui64=eui64, install_code=code, label=label, groups=groups))
    return tuple(found)


def _groups(source: str, table: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [groups] must be a table of name = [EUI-64, ...]")
    reader = _Reader(source, "[groups]", table, set(table))
    groups: dict[str, tuple[str, ...]] = {}
    for name in table:
        problem = han_name_problem(name, group=True)  # the registry's rule
        if problem is not None:
            reader.fail(f"group name {_shown(name)} {problem}")
        members = reader.get(name, list)
        groups[name] = tuple(reader.eui64(name, member) for member in members)
    return groups


def _device_management(source: str, table: Any, provider_id: int) -> DeviceManagementEntry:
    """``[device_management]`` (SE 1.2 D.10): the publications it asks for, checked."""
    reader = _Reader(source, "[device_management]", table, _TABLES["device_management"])
    issue = reader.integer("issuer_event_id", 0, 0xFFFFFFFF, 0) or 0
    provider = reader.number("provider_id", 0, 0xFFFFFFFF, provider_id)
    items: list[ChangeOfTenancy | ChangeOfSupplier | SiteId | CustomerId] = []
    try:
        if "tenancy_time" in table or "tenancy_control" in table:
            items.append(
                ChangeOfTenancy(
                    provider_id=provider,
                    issuer_event_id=issue,
                    implementation_time=reader.number("tenancy_time", 0, 0xFFFFFFFF, 0),
                    control=_tenancy_control(reader),
                )
            )
        if "supplier_provider_id" in table:
            items.append(
                ChangeOfSupplier(
                    current_provider_id=provider,
                    issuer_event_id=issue,
                    proposed_provider_id=reader.number("supplier_provider_id", 0, 0xFFFFFFFF, 0),
                    implementation_time=reader.number("supplier_time", 0, 0xFFFFFFFF, 0),
                    provider_name=reader.get("supplier_name", str, ""),
                    contact_details=reader.get("supplier_contact", str, ""),
                )
            )
        elif any(k in table for k in ("supplier_name", "supplier_contact", "supplier_time")):
            reader.fail("a change of supplier needs supplier_provider_id")
        if "site_id" in table:
            site = reader.get("site_id", str)
            items.append(SiteId(issuer_event_id=issue, provider_id=provider, site_id=site))
        if "cin" in table:
            cin = reader.get("cin", str)
            items.append(CustomerId(issuer_event_id=issue, provider_id=provider, cin=cin))
    except DeviceManagementError as exc:
        reader.fail(str(exc))
    return DeviceManagementEntry(items=tuple(items), auto_id="issuer_event_id" not in table)


def _tenancy_control(reader: _Reader) -> int:
    """``tenancy_control``: an integer, or the names of TenancyChangeControl's bits."""
    value = reader.get("tenancy_control", (int, list), 0)
    if isinstance(value, int):
        if not 0 <= value <= 0xFFFFFFFF:
            reader.fail(f"{value} is outside 0..0xFFFFFFFF", "tenancy_control")
        return value
    bits = 0
    for name in value:
        member = TenancyChangeControl.__members__.get(name) if isinstance(name, str) else None
        if member is None:
            known = ", ".join(TenancyChangeControl.__members__)
            reader.fail(f"{_shown(name)} is not a control bit (known: {known})", "tenancy_control")
        else:
            bits |= int(member)
    return bits


def _prices(source: str, items: Any, provider_id: int, currency: int) -> tuple[PriceEntry, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{source}: prices must be an array of tables ([[prices]])")
    found: list[PriceEntry] = []
    for number, item in enumerate(items, start=1):
        reader = _Reader(source, f"[[prices]] #{number}", item, _TABLES["prices"])
        if "price" not in item:
            reader.fail('needs price (e.g. price = "0.2451")')
        amount = reader.get("price", (str, int, float))
        options: dict[str, Any] = {
            "rate_label": reader.get("rate_label", str, ""),
            "issuer_event_id": reader.integer("issuer_event_id", 0, 0xFFFFFFFF, 0),
            "provider_id": reader.integer("provider_id", 0, 0xFFFFFFFF, provider_id),
            "currency": reader.integer("currency", 0, 0xFFFF, currency),
        }
        for key, high, default in (
            ("unit_of_measure", 0xFF, 0),
            ("price_tier", MAX_TIER, 1),
            ("number_of_price_tiers", MAX_TIER, 1),
            ("register_tier", MAX_TIER, 1),
            ("start_time", 0xFFFFFFFF, START_NOW),
            ("duration_in_minutes", 0xFFFF, DURATION_UNTIL_CHANGED),
        ):
            options[key] = reader.integer(key, 0, high, default)
        try:
            price = parse_price(amount, **options)
        except ConfigError as exc:
            reader.fail(str(exc))
            raise
        found.append(
            PriceEntry(price=price, target=_target(reader), auto_id="issuer_event_id" not in item)
        )
    return tuple(found)


def _tariffs(source: str, items: Any, provider_id: int, currency: int) -> tuple[TariffEntry, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{source}: tariffs must be an array of tables ([[tariffs]])")
    found: list[TariffEntry] = []
    for number, item in enumerate(items, start=1):
        reader = _Reader(source, f"[[tariffs]] #{number}", item, _TABLES["tariffs"])
        try:
            tariff, values = _tariff(reader, provider_id, currency)
        except ConfigError:
            raise
        except ValueError as exc:  # a value the tariff's fields cannot carry
            reader.fail(str(exc))
            raise
        found.append(
            TariffEntry(
                tariff=tariff,
                values=values,
                target=_target(reader),
                auto_id="issuer_event_id" not in item,
            )
        )
    return tuple(found)


_CALENDAR_TYPES = {kind.name.lower(): kind for kind in CalendarType}
_TIME_REFERENCES = {reference.name.lower(): reference for reference in TimeReference}
_WEEKDAYS = 7


def _calendars(source: str, items: Any, provider_id: int) -> tuple[CalendarEntry, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{source}: calendars must be an array of tables ([[calendars]])")
    found: list[CalendarEntry] = []
    for number, item in enumerate(items, start=1):
        reader = _Reader(source, f"[[calendars]] #{number}", item, _TABLES["calendars"])
        found.append(
            CalendarEntry(
                calendar=_calendar(reader, provider_id),
                target=_target(reader),
                auto_id="issuer_event_id" not in item,
            )
        )
    return tuple(found)


def _calendar(reader: _Reader, provider_id: int) -> CalendarSchedule:
    """One ``[[calendars]]`` table: named day profiles ("HH:MM" = value), named week profiles
    (seven day names, Monday first), seasons and special days by date; the names become the
    ids 1, 2... in the order given."""
    for key in ("issuer_calendar_id", "days", "weeks", "seasons"):
        if key not in reader.table:
            reader.fail(f"needs {key}")
    name = reader.get("name", str, "").encode()
    if len(name) > MAX_CALENDAR_NAME:
        reader.fail(f"is longer than {MAX_CALENDAR_NAME} octets", "name")
    kind = _choice(reader, "type", _CALENDAR_TYPES, "delivered")
    reference = _choice(reader, "time_reference", _TIME_REFERENCES, "local")
    days = _named(reader, "days", dict)
    day_ids = {day: number for number, day in enumerate(days, start=1)}
    profiles = tuple(_day(reader, day_ids[day], day, entries) for day, entries in days.items())
    weeks = _named(reader, "weeks", list)
    week_ids = {week: number for number, week in enumerate(weeks, start=1)}
    week_profiles = []
    for week, names in weeks.items():
        if len(names) != _WEEKDAYS:
            reader.fail(f"needs 7 day names (Monday to Sunday), got {len(names)}", f"weeks.{week}")
        ids = tuple(_ref(reader, f"weeks.{week}", day_ids, day, "day") for day in names)
        week_profiles.append(WeekProfile(week_ids[week], ids))  # type: ignore[arg-type]
    seasons = tuple(
        (
            _date(reader, "seasons", entry, "start"),
            _ref(reader, "seasons", week_ids, entry.get("week"), "week"),
        )
        for entry in _entries(reader, "seasons", {"start", "week"})
    )
    special = tuple(
        (
            _date(reader, "special_days", entry, "date"),
            _ref(reader, "special_days", day_ids, entry.get("day"), "day"),
        )
        for entry in _entries(reader, "special_days", {"date", "day"})
    )
    try:
        return CalendarSchedule(
            provider_id=reader.number("provider_id", 0, 0xFFFFFFFF, provider_id),
            issuer_event_id=reader.number("issuer_event_id", 0, 0xFFFFFFFF, 0),
            issuer_calendar_id=reader.number("issuer_calendar_id", 0, 0xFFFFFFFF, 0),
            start_time=reader.number("start_time", 0, 0xFFFFFFFE, START_NOW),
            calendar_type=kind,
            calendar_time_reference=reference,
            calendar_name=name,
            seasons=seasons,
            weeks=tuple(week_profiles),
            days=profiles,
            special_days=special,
        )
    except ValueError as exc:
        reader.fail(str(exc))
        raise  # fail() raised


def _choice(reader: _Reader, key: str, choices: Mapping[str, int], default: str) -> int:
    text = reader.get(key, str, default)
    if text not in choices:
        reader.fail(f"{_shown(text)} is not one of {', '.join(choices)}", key)
    return choices[text]


def _named(reader: _Reader, key: str, kind: type) -> dict[str, Any]:
    table = reader.get(key, dict)
    if not table or len(table) > 0xFF:
        reader.fail("needs 1-255 named entries", key)
    for name, value in table.items():
        if not isinstance(value, kind):
            reader.fail(f"expected {'a table' if kind is dict else 'a list'}", f"{key}.{name}")
    return dict(table)


def _day(reader: _Reader, day_id: int, name: str, entries: dict[str, Any]) -> DayProfile:
    where = f"days.{name}"
    parsed = []
    for start, value in entries.items():
        hours, _, minutes = start.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
            reader.fail(f"{_shown(start)} is not a time HH:MM", where)
        if int(hours) > 23 or int(minutes) > 59:
            reader.fail(f"{_shown(start)} is not a time of day (00:00-23:59)", where)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
            reader.fail(f"the value at {start} must be an integer 0-255", where)
        parsed.append((int(hours) * 60 + int(minutes), value))
    if not parsed:
        reader.fail("needs at least one start time", where)
    try:
        return DayProfile(day_id, tuple(sorted(parsed)))
    except ValueError as exc:
        reader.fail(str(exc), where)
        raise  # fail() raised


def _ref(reader: _Reader, where: str, ids: Mapping[str, int], name: Any, what: str) -> int:
    if not isinstance(name, str) or name not in ids:
        reader.fail(f"{_shown(name)} is not one of the {what}s given ({', '.join(ids)})", where)
    return ids[name]


def _entries(reader: _Reader, key: str, keys: set[str]) -> list[dict[str, Any]]:
    items = reader.get(key, list, [])
    for item in items:
        if not isinstance(item, dict) or set(item) != keys:
            reader.fail(f"each entry is a table of {' and '.join(sorted(keys))}", key)
    return list(items)


def _date(reader: _Reader, key: str, entry: dict[str, Any], field_name: str) -> ZclDate:
    """ "MM-DD" (every year) or "YYYY-MM-DD"."""
    text = entry[field_name]
    parts = text.split("-") if isinstance(text, str) else []
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        reader.fail(f"{_shown(text)} is not a date MM-DD or YYYY-MM-DD", key)
    numbers = [int(p) for p in parts]
    year = numbers[0] if len(numbers) == 3 else 2000  # a leap year: 02-29 is a date
    try:
        parsed = _dt_date(year, numbers[-2], numbers[-1])
    except ValueError:
        reader.fail(f"{_shown(text)} is not a date", key)
        raise
    if len(numbers) == 2:
        return ZclDate(month=parsed.month, day=parsed.day)
    if not 1900 <= year <= 2154:
        reader.fail(f"{_shown(text)}: a year 1900-2154", key)
    return ZclDate.of(parsed)


def _tariff(
    reader: _Reader, provider_id: int, currency: int
) -> tuple[TariffInformation, tuple[TariffValue, ...]]:
    """One ``[[tariffs]]`` table: a TOU tariff (``prices``, a price per tier from tier 1) or a
    block tariff (``block_prices``: one row, no tier; more rows, tiers 1, 2... with
    ``block_thresholds`` common to them), its tier labels and standing charge. Every price is
    scaled to the most decimals given: that is the Price Trailing Digit."""
    if "issuer_tariff_id" not in reader.table:
        reader.fail("needs issuer_tariff_id (the tariff's number, 0-4294967295)")
    if ("prices" in reader.table) == ("block_prices" in reader.table):
        reader.fail("give prices (a TOU tariff) or block_prices (a block tariff), one of them")
    tariff_id = reader.integer("issuer_tariff_id", 0, 0xFFFFFFFF) or 0
    event_id = reader.integer("issuer_event_id", 0, 0xFFFFFFFF, 0) or 0
    provider = reader.number("provider_id", 0, 0xFFFFFFFF, provider_id)
    texts = _price_texts(reader)
    standing = reader.get("standing_charge", (str, int, float))
    key = "prices" if "prices" in reader.table else "block_prices"
    scaled = [_located(reader, key, _price_digits, text) for text in texts]
    if standing is not None:
        scaled.append(_located(reader, "standing_charge", _price_digits, standing))
    digits = max(d for d, _ in scaled)
    values = [
        _located(reader, key, _rescaled, text, d, v, digits)
        for text, (d, v) in zip(texts, scaled, strict=False)
    ]
    standing_charge = (
        STANDING_CHARGE_NOT_USED
        if standing is None
        else _located(reader, "standing_charge", _rescaled, standing, *scaled[-1], digits)
    )
    thresholds = _thresholds(reader)
    if "prices" in reader.table:
        if thresholds:
            reader.fail("block_thresholds go with block_prices, not with TOU prices")
        tiers, scheme, mode = len(values), 0, TIER_BLOCK_MODE_NOT_USED
        prices = {(tier, 1): price for tier, price in enumerate(values, start=1)}
        matrix = PriceMatrix(
            provider_id=provider,
            issuer_event_id=event_id + 1,
            issuer_tariff_id=tariff_id,
            prices=prices,
            tou=True,
        )
    else:
        rows = reader.table["block_prices"]
        width = len(thresholds) + 1
        if any(len(row) != width for row in rows):
            reader.fail(
                f"each block_prices row needs {width} prices: one per block", "block_prices"
            )
        tiers = len(rows)
        first = 0 if tiers == 1 else 1  # one row: no tier (a block tariff)
        scheme, mode = (1, TIER_BLOCK_MODE_NOT_USED) if tiers == 1 else (2, 1)
        prices = {
            (first + row, block + 1): values[row * width + block]
            for row in range(tiers)
            for block in range(width)
        }
        matrix = PriceMatrix(
            provider_id=provider,
            issuer_event_id=event_id + 1,
            issuer_tariff_id=tariff_id,
            prices=prices,
        )
    parts: list[TariffValue] = [matrix]
    if thresholds:
        parts.append(
            BlockThresholds(
                provider_id=provider,
                issuer_event_id=event_id + 2,
                issuer_tariff_id=tariff_id,
                thresholds={0: thresholds},
            )
        )
    labels = _tier_labels(reader)
    if labels:
        parts.append(
            TierLabels(
                provider_id=provider,
                issuer_event_id=event_id + 3,
                issuer_tariff_id=tariff_id,
                labels=labels,
            )
        )
    label = reader.get("label", str, "").encode("utf-8")
    if len(label) > MAX_TARIFF_LABEL:
        reader.fail(f"is {len(label)} octets in UTF-8; at most {MAX_TARIFF_LABEL}", "label")
    tariff = TariffInformation(
        issuer_event_id=event_id,
        start_time=reader.integer("start_time", 0, 0xFFFFFFFF, START_NOW) or 0,
        tariff_type_charging_scheme=(scheme << 4)
        | (reader.integer("tariff_type", 0, 0x0F, 0) or 0),
        tariff_label=label,
        number_of_price_tiers_in_use=tiers,
        number_of_block_thresholds_in_use=len(thresholds),
        unit_of_measure=reader.integer("unit_of_measure", 0, 0xFF, 0) or 0,
        currency=reader.number("currency", 0, 0xFFFF, currency),
        price_trailing_digit=digits << 4,
        standing_charge=standing_charge,
        tier_block_mode=mode,
        block_threshold_multiplier=reader.integer("threshold_multiplier", 1, 0xFFFFFF, 1) or 1,
        block_threshold_divisor=reader.integer("threshold_divisor", 1, 0xFFFFFF, 1) or 1,
        provider_id=provider,
        issuer_tariff_id=tariff_id,
    )
    return tariff, tuple(parts)


def _price_texts(reader: _Reader) -> list[Any]:
    """The prices of ``prices`` (a list) or ``block_prices`` (a list of rows), in order."""
    if "prices" in reader.table:
        prices = reader.get("prices", list)
        if not 1 <= len(prices) <= MAX_TIER:
            reader.fail(f"give 1 to {MAX_TIER} prices, one per tier", "prices")
        return list(prices)
    rows = reader.get("block_prices", list)
    if not 1 <= len(rows) <= 15 or not all(isinstance(row, list) for row in rows):
        reader.fail("give 1 to 15 rows of prices, one per tier", "block_prices")
    return [price for row in rows for price in row]


def _thresholds(reader: _Reader) -> tuple[int, ...]:
    thresholds = reader.get("block_thresholds", list, [])
    if len(thresholds) > 15 or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 48 for v in thresholds
    ):
        reader.fail("give up to 15 whole numbers, each below 2**48", "block_thresholds")
    if list(thresholds) != sorted(thresholds):
        reader.fail("must not decrease", "block_thresholds")
    if "block_prices" in reader.table and not thresholds:
        reader.fail("a block tariff needs block_thresholds", "block_prices")
    return tuple(thresholds)


def _tier_labels(reader: _Reader) -> dict[int, bytes]:
    labels = reader.get("tier_labels", list, [])
    if len(labels) > MAX_TIER or not all(isinstance(label, str) for label in labels):
        reader.fail(f"give up to {MAX_TIER} strings, one per tier", "tier_labels")
    encoded = {tier: label.encode("utf-8") for tier, label in enumerate(labels, start=1)}
    for tier, label in encoded.items():
        if len(label) > MAX_TIER_LABEL:
            reader.fail(
                f"tier {tier} is {len(label)} octets; at most {MAX_TIER_LABEL}", "tier_labels"
            )
    return encoded


def _located(reader: _Reader, key: str, parse: Any, *args: Any) -> Any:
    """``parse(*args)``, a ConfigError from it placed at ``key`` of the table."""
    try:
        return parse(*args)
    except ConfigError as exc:
        reader.fail(str(exc), key)
        raise


def _rescaled(text: Any, digits: int, value: int, to: int) -> int:
    """``value`` (with ``digits`` decimals) with ``to`` decimals; ConfigError past Uint32."""
    scaled = int(value * 10 ** (to - digits))
    if scaled > _PRICE_MAX:
        raise ConfigError(f"price {_shown(text)} with {to} decimals is too large (Uint32)")
    return scaled


def load_config(path: str | os.PathLike[str]) -> EsiConfig:
    """Read and check a configuration file (:class:`ConfigError` if unreadable or wrong)."""
    file = Path(path)
    text = read_text_file(file, error=ConfigError)
    return parse_config(text, source=str(file), base=file.parent)
