"""Smart Energy enumerations, bitmaps and sentinels, declared once for cores and wire alike.

Values are those of the ZigBee Smart Energy Standard (07-5356); each type cites its clause.
Bitmaps and the enums of cluster fields are zigpy wire types (:mod:`zigpy.types`), used as they
are by the cluster definitions. The two status enums the sans-IO cores decide on
(:class:`EventStatus`, :class:`TerminateStatus`) are strict :class:`enum.IntEnum`: an unknown
value raises ``ValueError``, where zigpy would make up an ``undefined_0x..`` member; the
wire definitions carry them as plain 8-bit fields.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

import zigpy.types as t

__all__ = [
    "ALL_DEVICE_CLASSES",
    "AVERAGE_LOAD_ADJUSTMENT_NOT_USED",
    "DEFAULT_CLOSE_TUNNEL_TIMEOUT",
    "DUTY_CYCLE_NOT_USED",
    "KEY_ESTABLISHMENT_SUITE_TYPE",
    "SET_POINT_NOT_USED",
    "SIGNATURE_SIZE",
    "STANDARD_PROTOCOL_MANUFACTURER",
    "SUMMATION_NON_VALUE",
    "SUPPLY_STATUS_NAMES",
    "TEMPERATURE_OFFSET_NOT_USED",
    "UNIT_OF_MEASURE_BCD",
    "AlternateCostUnit",
    "BlockPeriodControl",
    "BlockPeriodDurationType",
    "CalorificValueUnit",
    "CancelControl",
    "CharacterString",
    "CppAuth",
    "CriticalityLevel",
    "DeviceClass",
    "EventControl",
    "EventStatus",
    "ExtendedMessageControl",
    "GetCurrentPriceOptions",
    "GetProfileStatus",
    "IntervalChannel",
    "KeyEstablishmentSuite",
    "MessageConfirmationControl",
    "MessageControl",
    "MessageImportance",
    "MessageTransmission",
    "PriceAcknowledgementControl",
    "PriceControl",
    "SignatureType",
    "SupplyStatus",
    "TariffResolutionPeriod",
    "TariffType",
    "TerminateStatus",
    "TransferDataStatus",
    "TunnelProtocol",
    "TunnelStatus",
    "UnitOfMeasure",
]


class CharacterString(str):
    """ZCL character string (ZCL 2.6.2.12): a length octet, then that many octets of text.

    Unlike zigpy's, decoding is lossless: text is UTF-8 and any bytes that are not (or NULs)
    survive a decode/encode round trip (``surrogateescape``), so a message relayed or stored
    by zse is the message that was sent. Length 0xFF (the "invalid" string) is refused.
    """

    __slots__ = ()

    def serialize(self) -> bytes:
        """Length octet and text."""
        raw = self.encode("utf-8", "surrogateescape")
        if len(raw) > 0xFE:
            raise ValueError(f"character string of {len(raw)} bytes is longer than 254")
        return bytes((len(raw),)) + raw

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[CharacterString, bytes]:
        """Parse a length-prefixed string from the front of ``data``."""
        if not data:
            raise ValueError("missing the length octet")
        length = data[0]
        if length == 0xFF:
            raise ValueError("length 0xFF (invalid string)")
        if len(data) < 1 + length:
            raise ValueError(f"{length} octets announced, {len(data) - 1} present")
        return cls(data[1 : 1 + length].decode("utf-8", "surrogateescape")), data[1 + length :]


# --- DRLC (SE D.2) -----------------------------------------------------------------------------

#: Cooling / heating temperature offset field not used (D.2.2.3.1.1.7-8, 0.1 °C units).
TEMPERATURE_OFFSET_NOT_USED: Final = 0xFF
#: Cooling / heating temperature set point field not used (D.2.2.3.1.1.9-10, 0.01 °C units).
SET_POINT_NOT_USED: Final = -0x8000
#: Average load adjustment percentage not used (D.2.2.3.1.1.11; 0x80 as int8).
AVERAGE_LOAD_ADJUSTMENT_NOT_USED: Final = -0x80
#: Duty cycle not used (D.2.2.3.1.1.12).
DUTY_CYCLE_NOT_USED: Final = 0xFF
#: Every device class bit, 0-11 (D.2.2.3.1.1.2): a device in all classes.
ALL_DEVICE_CLASSES: Final = 0x0FFF
#: Report Event Status signature length (D.2.3.3.1.1.11): an ECDSA r‖s on sect163k1.
SIGNATURE_SIZE: Final = 42


class DeviceClass(t.bitmap16):
    """Device class of Load Control Event and the DeviceClassValue attribute (D.2.2.3.1.1.2)."""

    HVAC_Compressor_or_Furnace = 1 << 0
    Strip_Heaters_Baseboard_Heaters = 1 << 1
    Water_Heater = 1 << 2
    Pool_Pump_Spa_Jacuzzi = 1 << 3
    Smart_Appliances = 1 << 4
    Irrigation_Pump = 1 << 5
    Managed_Commercial_Industrial_Loads = 1 << 6
    Simple_Misc_Loads = 1 << 7
    Exterior_Lighting = 1 << 8
    Interior_Lighting = 1 << 9
    Electric_Vehicle = 1 << 10
    Generation_Systems = 1 << 11


class CriticalityLevel(t.enum8):
    """Criticality levels (D.2.2.3.1.1.6); 0x0A-0x0F are utility-defined."""

    Reserved = 0x00
    Green = 0x01
    Level_1 = 0x02
    Level_2 = 0x03
    Level_3 = 0x04
    Level_4 = 0x05
    Level_5 = 0x06
    Emergency = 0x07
    Planned_Outage = 0x08
    Service_Disconnect = 0x09
    Utility_Defined_1 = 0x0A
    Utility_Defined_2 = 0x0B
    Utility_Defined_3 = 0x0C
    Utility_Defined_4 = 0x0D
    Utility_Defined_5 = 0x0E
    Utility_Defined_6 = 0x0F


class EventControl(t.bitmap8):
    """Event control of Load Control Event and Report Event Status (D.2.2.3.1.1.13,
    D.2.3.3.1.1.9)."""

    Randomize_Start_Time = 1 << 0
    Randomize_End_Time = 1 << 1


class CancelControl(t.bitmap8):
    """Cancel control (D.2.2.3.2.1.4): bit 0 set = end with the event's randomization."""

    Terminate_With_Randomization = 1 << 0


class EventStatus(IntEnum):
    """Event status values of Report Event Status (D.2.3.3.1.1.2)."""

    RECEIVED = 0x01
    STARTED = 0x02
    COMPLETED = 0x03
    OPTED_OUT = 0x04
    OPTED_IN = 0x05
    CANCELLED = 0x06
    SUPERSEDED = 0x07
    PARTIALLY_COMPLETED_OPT_OUT = 0x08
    PARTIALLY_COMPLETED_OPT_IN = 0x09
    COMPLETED_NO_PARTICIPATION = 0x0A
    REJECTED_INVALID_CANCEL = 0xF8
    REJECTED_INVALID_EFFECTIVE_TIME = 0xF9
    REJECTED_EXPIRED = 0xFB
    REJECTED_UNDEFINED_EVENT = 0xFD
    REJECTED = 0xFE


def event_status_text(code: int) -> str:
    """An Event Status (D.2.3.3.1.1.2) in words, ``opted out``; a value the table leaves
    undefined, as a device may send, is ``status 0xNN``."""
    try:
        return EventStatus(code).name.lower().replace("_", " ")
    except ValueError:
        return f"status 0x{code:02X}"


class SignatureType(t.enum8):
    """Signature type of Report Event Status (D.2.3.3.1.1.10)."""

    No_Signature = 0x00
    ECDSA = 0x01


# --- Messaging (SE D.5) ------------------------------------------------------------------------


class MessageTransmission(t.enum2):
    """Message control bits 0-1 (D.5.2.3.1.1.2)."""

    Normal = 0b00
    Normal_and_Anonymous_InterPAN = 0b01
    Anonymous_InterPAN_Only = 0b10
    Reserved = 0b11


class MessageImportance(t.enum2):
    """Message control bits 2-3 (D.5.2.3.1.1.2)."""

    Low = 0b00
    Medium = 0b01
    High = 0b10
    Critical = 0b11


class MessageControl(t.Struct):
    """Message control field (D.5.2.3.1.1.2), bit fields least significant first."""

    transmission: MessageTransmission
    importance: MessageImportance
    reserved: t.uint1_t
    enhanced_confirmation_required: t.uint1_t
    reserved2: t.uint1_t
    confirmation_required: t.uint1_t


class ExtendedMessageControl(t.bitmap8):
    """Extended message control (D.5.2.3.1.1.6, SE 1.2)."""

    Message_Confirmed = 1 << 0


class MessageConfirmationControl(t.bitmap8):
    """Message confirmation control of Message Confirmation (D.5.2.4.2.1.3, SE 1.2)."""

    No_Returned = 1 << 0
    Yes_Returned = 1 << 1


# --- Price (SE D.4) ----------------------------------------------------------------------------


class AlternateCostUnit(t.enum8):
    """Alternate cost unit (D.4.2.4.1.1.16)."""

    Kg_CO2_per_Unit = 0x01


class PriceControl(t.bitmap8):
    """Price control (D.4.2.4.1.1.19)."""

    Price_Acknowledgement_Required = 1 << 0
    Total_Tiers_Exceeds_15 = 1 << 1


class GetCurrentPriceOptions(t.bitmap8):
    """Command options of Get Current Price (D.4.2.3.1.1)."""

    Requestor_Rx_On_When_Idle = 1 << 0


class PriceAcknowledgementControl(t.bitmap8):
    """Control field of Price Acknowledgement (D.4.2.3.3.1): which command is acknowledged."""

    Price_Acknowledgement = 1 << 0
    Block_Period = 1 << 1
    Conversion_Factor = 1 << 2
    Calorific_Value = 1 << 3
    Tariff_Information = 1 << 4
    Price_Matrix = 1 << 5
    Block_Thresholds = 1 << 6


# --- Metering (SE D.3) -------------------------------------------------------------------------

#: UnitOfMeasure bit 7: the values are BCD rather than binary (D.3.2.2.4.1).
UNIT_OF_MEASURE_BCD: Final = 0x80

#: A summation (uint48) of all ones: the type's non-value (ZCL data types, table 2-10,
#: "invalid number"). Real meters send it for a summation they do not know now or a tier they
#: do not count (tests/vectors/real-meters.json): a display shows it as unknown.
SUMMATION_NON_VALUE: Final = 0xFFFF_FFFF_FFFF


class UnitOfMeasure(IntEnum):
    """UnitOfMeasure attribute (D.3.2.2.4.1, table D.21): the binary forms; ``| 0x80`` is BCD.

    Strict, as the formatting core decides on it (zigpy's ``MeteringUnitofMeasure`` has the
    same values with both forms spelt out).
    """

    KWH = 0x00
    CUBIC_METER = 0x01
    CUBIC_FEET = 0x02
    CCF = 0x03
    US_GALLONS = 0x04
    IMPERIAL_GALLONS = 0x05
    BTU = 0x06
    LITERS = 0x07
    KPA_GAUGE = 0x08
    KPA_ABSOLUTE = 0x09
    MCF = 0x0A
    UNITLESS = 0x0B
    MEGA_JOULE = 0x0C
    KVAR = 0x0D


class IntervalChannel(t.enum8):
    """Interval channel of Get Profile (D.3.3.3.1.1.1)."""

    Consumption_Delivered = 0x00
    Consumption_Received = 0x01


class GetProfileStatus(t.enum8):
    """Status of Get Profile Response (D.3.2.3.1.1.2)."""

    Success = 0x00
    Undefined_Interval_Channel_Requested = 0x01
    Interval_Channel_Not_Supported = 0x02
    Invalid_End_Time = 0x03
    More_Periods_Requested_Than_Can_Be_Returned = 0x04
    No_Intervals_Available_For_The_Requested_Time = 0x05


class BlockPeriodControl(t.bitmap8):
    """Block period control of Publish Block Period (D.4.2.4.2.1.5)."""

    Price_Acknowledgement_Required = 1 << 0
    Repeating_Block = 1 << 1


class BlockPeriodDurationType(t.bitmap8):
    """Block period duration type (D.4.2.4.2.1.6, SE 1.2): the timebase of the duration in
    bits 0-3 (0 minutes, 1 days, 2 weeks, 3 months), its control in bits 4-7 (0 start of
    timebase, 1 end of timebase, 2 not specified)."""

    Days = 0x01
    Weeks = 0x02
    Months = 0x03
    End_Of_Timebase = 0x10
    Not_Specified = 0x20


class TariffType(t.bitmap8):
    """Tariff type (D.4.2.4.2.1.7, SE 1.2): bits 0-3, 0 delivered, 1 received, 2 both."""

    Received = 0x01
    Delivered_And_Received = 0x02


class TariffResolutionPeriod(t.enum8):
    """Tariff resolution period (D.4.2.4.2.1.8, SE 1.2)."""

    Not_Defined = 0x00
    Block_Period = 0x01
    One_Day = 0x02


class CppAuth(t.enum8):
    """CPP Auth of Publish CPP Event and CPP Event Response (D.4.2.4.12.1.7, D.4.2.3.14.1.2,
    SE 1.2): the server's Pending or Forced; the client's Accepted or Rejected."""

    Pending = 0x00
    Accepted = 0x01
    Rejected = 0x02
    Forced = 0x03


class CalorificValueUnit(t.enum8):
    """Calorific value unit (D.4.2.4.4.1.4): MJ/m³ or MJ/kg."""

    MJ_per_m3 = 0x01
    MJ_per_kg = 0x02


# --- Key Establishment (SE C.3) ----------------------------------------------------------------


class KeyEstablishmentSuite(t.bitmap16):
    """Key establishment suites (C.3.1.1.1, C.3.2.1.1): the suites supported, one bit each
    (values table C-4, as DSR ZBOSS's ``KEC_CS1``/``KEC_CS2`` and Silicon Labs' plugin use
    it). The attribute that holds it is typed enum16 on the air:
    :data:`KEY_ESTABLISHMENT_SUITE_TYPE`."""

    CBKE_ECMQV_163k1 = 1 << 0
    CBKE_ECMQV_283k1 = 1 << 1


#: The ZCL data type of the KeyEstablishmentSuite attribute (both sides): enum16 (0x31), as
#: zsmartsystems' XML (ENUMERATION_16_BIT), DSR ZBOSS's zboss_api_zse.h
#: (``ZB_ZCL_ATTR_TYPE_16BIT_ENUM``, '16-bit Enumeration', citing SE C.3.1.2.2.1) and Silicon
#: Labs' key-establishment.c (``ZCL_ENUM16_ATTRIBUTE_TYPE``) declare it, though its value is a
#: mask of suites. Earlier zse releases served map16 (0x19).
KEY_ESTABLISHMENT_SUITE_TYPE: Final = 0x31


class TerminateStatus(IntEnum):
    """Terminate Key Establishment status (C.3.1.3.4; INVALID_CERTIFICATE from SE 1.2)."""

    UNKNOWN_ISSUER = 0x01
    BAD_KEY_CONFIRM = 0x02
    BAD_MESSAGE = 0x03
    NO_RESOURCES = 0x04
    UNSUPPORTED_SUITE = 0x05
    INVALID_CERTIFICATE = 0x06


# --- Tunneling (SE D.6) ------------------------------------------------------------------------

#: The manufacturer code of a standard (not manufacturer-defined) tunnel protocol (D.6.2.4.1.2).
STANDARD_PROTOCOL_MANUFACTURER: Final = 0xFFFF
#: CloseTunnelTimeout's default, seconds (D.6.2.2.1): 0xFFFF.
DEFAULT_CLOSE_TUNNEL_TIMEOUT: Final = 0xFFFF


class TunnelProtocol(IntEnum):
    """Tunnel protocol ids (D.6.2.4.1.1): 200-254 are manufacturer-defined (with a
    manufacturer code); names as Wireshark's Tunneling dissector lists them."""

    DLMS_COSEM = 0
    IEC_61107 = 1
    ANSI_C12 = 2
    M_BUS = 3
    SML = 4
    CLIMATE_TALK = 5
    GB_HRGP = 6
    IPV6 = 7
    IPV4 = 8
    NULL = 9
    TEST = 199
    MANUFACTURER_FIRST = 200
    MANUFACTURER_LAST = 254


class TunnelStatus(IntEnum):
    """Request Tunnel Response status (D.6.2.5.1.1.2)."""

    SUCCESS = 0x00
    BUSY = 0x01
    NO_MORE_TUNNEL_IDS = 0x02
    PROTOCOL_NOT_SUPPORTED = 0x03
    FLOW_CONTROL_NOT_SUPPORTED = 0x04


class TransferDataStatus(IntEnum):
    """Transfer Data Error status (D.6.2.4.4.1.2)."""

    NO_SUCH_TUNNEL = 0x00
    WRONG_DEVICE = 0x01
    DATA_OVERFLOW = 0x02


class SupplyStatus(IntEnum):
    """Supply Status (Metering attribute 0x0014, SE 1.2; Change Supply's Proposed Supply
    Status): values as Wireshark's ``packet-zbee-zcl-se.c`` and zigpy's Metering
    ``SupplyStatus`` give them. Its members' names lowercased are the words of the
    operator's commands (``zse esi``'s ``supply off|armed|on``, MQTT's ``change_supply``;
    zse's own)."""

    OFF = 0
    ARMED = 1  # Off/Armed
    ON = 2


#: Supply Status (Metering 0x0014, SE 1.2) by value, as shown: Supply OFF, OFF/ARMED, ON;
#: 0x03-0xFF reserved (SE 1.4 table D-13 as DSR ZBOSS's zb_zcl_metering.h and Exegin's meter
#: header quote it).
SUPPLY_STATUS_NAMES: Final[dict[int, str]] = {
    SupplyStatus.OFF: "Off",
    SupplyStatus.ARMED: "Off/Armed",
    SupplyStatus.ON: "On",
}
