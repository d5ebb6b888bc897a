"""Raw Metering values as numbers and text, exactly as the Formatting attributes say (sans-IO).

SE D.3.2.2.4 (Formatting): a displayed value is raw * Multiplier / Divisor (D.3.2.2.4.2-3;
either attribute absent, or zero, counts as 1); UnitOfMeasure (D.3.2.2.4.1) names the unit and,
with bit 7 set, says the raw values are BCD; SummationFormatting, DemandFormatting and
HistoricalConsumptionFormatting (D.3.2.2.4.4-6) are bitmaps: bits 0-2 the digits right of the
decimal point, bits 3-6 the digits left of it, bit 7 suppress leading zeros. Digits beyond
those right of the point are cut, never rounded up (a register shows what was used); the
left digits are a width the integer part is padded to with zeros, and a value with more
integer digits is shown whole, never cut. Numbers are exact (:class:`fractions.Fraction`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import NamedTuple

from zse.errors import DecodeError
from zse.se.types import UNIT_OF_MEASURE_BCD, UnitOfMeasure

__all__ = [
    "Formatting",
    "NumberFormat",
    "Reading",
    "bcd_to_int",
    "format_number",
    "scaled",
    "unit_text",
]

_U = UnitOfMeasure
#: (summation / consumption unit, demand unit) per UnitOfMeasure (D.3.2.2.4.1, table D.21).
_UNITS: dict[UnitOfMeasure, tuple[str, str]] = {
    _U.KWH: ("kWh", "kW"),
    _U.CUBIC_METER: ("m³", "m³/h"),
    _U.CUBIC_FEET: ("ft³", "ft³/h"),
    _U.CCF: ("ccf", "ccf/h"),
    _U.US_GALLONS: ("US gal", "US gal/h"),
    _U.IMPERIAL_GALLONS: ("imp gal", "imp gal/h"),
    _U.BTU: ("BTU", "BTU/h"),
    _U.LITERS: ("l", "l/h"),
    _U.KPA_GAUGE: ("kPa (gauge)", "kPa (gauge)"),
    _U.KPA_ABSOLUTE: ("kPa (absolute)", "kPa (absolute)"),
    _U.MCF: ("mcf", "mcf/h"),
    _U.UNITLESS: ("", ""),
    _U.MEGA_JOULE: ("MJ", "MJ/s"),
    _U.KVAR: ("kVArh", "kVAr"),
}


def _unit(unit_of_measure: int) -> UnitOfMeasure:
    try:
        return UnitOfMeasure(unit_of_measure & ~UNIT_OF_MEASURE_BCD)
    except ValueError:
        raise DecodeError(f"UnitOfMeasure 0x{unit_of_measure:02X} is reserved") from None


def unit_text(unit_of_measure: int, *, demand: bool = False) -> str:
    """The unit a value is shown in: the summation unit, or with ``demand`` the rate unit."""
    return _UNITS[_unit(unit_of_measure)][1 if demand else 0]


def bcd_to_int(raw: int) -> int:
    """A BCD-coded raw value (UnitOfMeasure bit 7, D.3.2.2.4.1) as the number it codes."""
    if raw < 0:
        raise DecodeError(f"a BCD value cannot be negative: {raw}")
    value, scale = 0, 1
    while raw:
        nibble = raw & 0xF
        if nibble > 9:
            raise DecodeError(f"0x{raw:X} is not BCD: nibble 0x{nibble:X}")
        value += nibble * scale
        raw >>= 4
        scale *= 10
    return value


def scaled(
    raw: int, *, unit_of_measure: int = 0, multiplier: int = 1, divisor: int = 1
) -> Fraction:
    """raw * multiplier / divisor (D.3.2.2.4.2-3), raw read as BCD when the unit says so."""
    _unit(unit_of_measure)  # a reserved unit is refused
    value = bcd_to_int(raw) if unit_of_measure & UNIT_OF_MEASURE_BCD else raw
    return Fraction(value * (multiplier or 1), divisor or 1)


class NumberFormat(NamedTuple):
    """A formatting bitmap (D.3.2.2.4.4): digits left and right of the point, zero suppression."""

    digits_left: int
    digits_right: int
    suppress_leading_zeros: bool

    @classmethod
    def from_bitmap(cls, bitmap: int) -> NumberFormat:
        """Bits 0-2 right of the point, bits 3-6 left of it, bit 7 suppress leading zeros."""
        if not 0 <= bitmap <= 0xFF:
            raise DecodeError(f"a formatting bitmap is 8 bits, got {bitmap}")
        return cls((bitmap >> 3) & 0x0F, bitmap & 0x07, bool(bitmap & 0x80))


def format_number(value: Fraction, bitmap: int) -> str:
    """``value`` as text under the formatting ``bitmap``: cut (toward zero) to the digits right of
    the point, the integer part zero-padded to the digits left of it unless suppressed; a
    negative value cut to zero is shown without a sign."""
    fmt = NumberFormat.from_bitmap(bitmap)
    scaled_units = abs(value.numerator) * 10**fmt.digits_right // value.denominator
    sign = "-" if value < 0 and scaled_units else ""  # cut to 0: no "-0.00"
    whole, fraction = divmod(scaled_units, 10**fmt.digits_right)
    width = 1 if fmt.suppress_leading_zeros else max(fmt.digits_left, 1)
    text = f"{whole:0{width}d}"
    if fmt.digits_right:
        text += f".{fraction:0{fmt.digits_right}d}"
    return sign + text


class Reading(NamedTuple):
    """A value as a display shows it: the exact number, its text and its unit."""

    value: Fraction
    text: str
    unit: str

    def __str__(self) -> str:
        return f"{self.text} {self.unit}".rstrip()


@dataclass(frozen=True, slots=True)
class Formatting:
    """A meter's Formatting attribute set (D.3.2.2.4), read once by a display.

    Multiplier and Divisor default to 1 (absent); the bitmaps to 0 (no digits right of the
    point, no padding; a demand then takes the summation's digits, :meth:`demand`).
    :meth:`summation`, :meth:`demand` and :meth:`historical` apply them to the attributes each
    governs (D.3.2.2.4.4-6).
    """

    unit_of_measure: int = UnitOfMeasure.KWH
    multiplier: int = 1
    divisor: int = 1
    summation_formatting: int = 0
    demand_formatting: int = 0
    historical_consumption_formatting: int = 0

    @classmethod
    def from_attributes(cls, values: Mapping[str, int]) -> Formatting:
        """The set from a Read Attributes result keyed by the attribute names of
        :class:`zse.metering.wire.Metering` (``unit_of_measure``, ``multiplier``, ...); an
        attribute not given (unsupported by the meter) takes its default."""
        names = [field.name for field in fields(cls)]
        return cls(**{name: int(values[name]) for name in names if name in values})

    def _reading(self, raw: int, bitmap: int, *, demand: bool) -> Reading:
        value = scaled(
            raw,
            unit_of_measure=self.unit_of_measure,
            multiplier=self.multiplier,
            divisor=self.divisor,
        )
        return Reading(
            value, format_number(value, bitmap), unit_text(self.unit_of_measure, demand=demand)
        )

    def summation(self, raw: int) -> Reading:
        """A summation (CurrentSummationDelivered/Received, tier summations, D.3.2.2.4.4)."""
        return self._reading(raw, self.summation_formatting, demand=False)

    def demand(self, raw: int) -> Reading:
        """A demand (InstantaneousDemand, CurrentMaxDemand..., D.3.2.2.4.5). A DemandFormatting
        of 0 (no digit at all: absent, or a GB SMETS2 meter's 0x00 beside a Divisor of 1000,
        tests/vectors/real-meters.json) takes the digits right of the point of the
        SummationFormatting, zse's own choice: 2547 W is shown 2.547 kW, not 2 kW."""
        bitmap = (
            self.demand_formatting
            or NumberFormat.from_bitmap(self.summation_formatting).digits_right
        )
        return self._reading(raw, bitmap, demand=True)

    def historical(self, raw: int) -> Reading:
        """A historical consumption (day / week / month, intervals, D.3.2.2.4.6)."""
        return self._reading(raw, self.historical_consumption_formatting, demand=False)
