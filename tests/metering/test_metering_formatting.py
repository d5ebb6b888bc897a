"""#14.4 (formatting half): raw Metering values as numbers and text under the Formatting
attributes (SE D.3.2.2.4).

Second, independent source: Home Assistant's ZHA metering cluster handler
(``homeassistant/components/zha/core/cluster_handlers/smartenergy.py``, ``get_formatting`` and
``_formatter_function``) reads the same bitmap the same way: bits 0-2 digits right of the point,
bits 3-6 digits left of it (the zero-padded width), bit 7 suppress leading zeros, and a
Multiplier or Divisor of 0 (or absent) counts as 1. :func:`zha_text` below restates that rule
(written here, not copied) and zse must agree with it wherever both are defined: ZHA rounds
where zse cuts, so the values compared are exact at the digits shown, and ZHA pads to 15 digits
when bits 3-6 are 0 where zse pads to none, so that case is left out; and Python's padded
width counts a minus sign, which is not a digit (zse: ``-01`` for -1 at 2 left digits), so the
values compared are not negative.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl.clusters.smartenergy import MeteringUnitofMeasure, NumberFormatting

from zse.errors import DecodeError
from zse.metering import Formatting, NumberFormat, bcd_to_int, format_number, scaled, unit_text
from zse.se.types import UNIT_OF_MEASURE_BCD, UnitOfMeasure


def zha_text(value: float, bitmap: int) -> str:
    """ZHA's rule (see the module docstring): width = left + right (+1 for the point)."""
    right, left = bitmap & 0x07, (bitmap >> 3) & 0x0F
    width = right + left + (1 if right else 0)
    pad = " " if bitmap & 0x80 else "0"
    return format(value, f"{pad}{width}.{right}f").lstrip()


# (unit, multiplier, divisor, summation formatting, raw) -> text, worked by hand
WORKED = [
    # 1 Wh resolution shown as kWh with 3 decimals, 6 digits left, zeros kept: 0x33
    (UnitOfMeasure.KWH, 1, 1000, 0x33, 123456, "000123.456 kWh"),
    # the same with bit 7 (suppress leading zeros): 0xB3
    (UnitOfMeasure.KWH, 1, 1000, 0xB3, 123456, "123.456 kWh"),
    # digits beyond the right ones are cut, not rounded: 1.2349 kWh at 3 decimals
    (UnitOfMeasure.KWH, 1, 10000, 0xB3, 12349, "1.234 kWh"),
    # 0 right digits: no decimal point; 0x28 = 5 left, 0 right
    (UnitOfMeasure.CUBIC_METER, 1, 1, 0x28, 42, "00042 m³"),
    # a multiplier scales before the divisor: 7 * 25 / 10 = 17.5 ft³
    (UnitOfMeasure.CUBIC_FEET, 25, 10, 0x91, 7, "17.5 ft³"),
    # a value wider than the left digits is shown whole
    (UnitOfMeasure.KWH, 1, 1, 0x10, 1234567, "1234567 kWh"),
    # BCD (UnitOfMeasure 0x80): raw 0x00012345 codes 12345, 2 decimals
    (UnitOfMeasure.KWH | UNIT_OF_MEASURE_BCD, 1, 100, 0xB2, 0x12345, "123.45 kWh"),
    # BCD gas in m³ (0x81), 4 left digits kept
    (UnitOfMeasure.CUBIC_METER | UNIT_OF_MEASURE_BCD, 1, 10, 0x21, 0x0999, "0099.9 m³"),
    # zero Multiplier / Divisor count as 1 (as absent)
    (UnitOfMeasure.US_GALLONS, 0, 0, 0x80, 31, "31 US gal"),
    (UnitOfMeasure.UNITLESS, 1, 1, 0x80, 5, "5"),
]


@pytest.mark.parametrize(("unit", "multiplier", "divisor", "bitmap", "raw", "shown"), WORKED)
def test_worked_summations(unit, multiplier, divisor, bitmap, raw, shown):
    formatting = Formatting(unit, multiplier, divisor, summation_formatting=bitmap)
    assert str(formatting.summation(raw)) == shown


def test_demand_and_historical_use_their_own_bitmaps_and_units():
    formatting = Formatting(
        UnitOfMeasure.KWH,
        multiplier=1,
        divisor=1000,
        summation_formatting=0x33,
        demand_formatting=0xAB,  # 5 left (suppressed), 3 right
        historical_consumption_formatting=0x99,  # 3 left (suppressed), 1 right
    )
    demand = formatting.demand(-1500)  # InstantaneousDemand is signed (int24)
    assert demand.value == Fraction(-3, 2)
    assert str(demand) == "-1.500 kW"
    assert str(formatting.historical(24_680)) == "24.6 kWh"
    assert unit_text(UnitOfMeasure.KVAR, demand=True) == "kVAr"
    assert unit_text(UnitOfMeasure.KVAR | UNIT_OF_MEASURE_BCD) == "kVArh"


def test_bitmap_fields():
    assert NumberFormat.from_bitmap(0xB3) == NumberFormat(6, 3, True)
    assert NumberFormat.from_bitmap(0x7F) == NumberFormat(15, 7, False)
    with pytest.raises(DecodeError):
        NumberFormat.from_bitmap(0x100)


def test_bad_values_are_decode_errors():
    with pytest.raises(DecodeError, match="not BCD"):
        Formatting(UnitOfMeasure.KWH | UNIT_OF_MEASURE_BCD).summation(0x1A)
    with pytest.raises(DecodeError, match="reserved"):
        Formatting(0x0E).summation(1)
    with pytest.raises(DecodeError, match="reserved"):
        unit_text(0xFF)


@given(
    raw=st.integers(0, 2**48 - 1),
    multiplier=st.integers(0, 2**24 - 1),
    divisor=st.integers(0, 2**24 - 1),
    bitmap=st.integers(0, 0xFF),
)
def test_shown_value_is_multiplier_times_raw_over_divisor(raw, multiplier, divisor, bitmap):
    """What the display shows is raw * multiplier / divisor, cut to the digits the bitmap
    keeps (SE D.3.2.2.4), and never more than the exact value."""
    reading = Formatting(1, multiplier, divisor, summation_formatting=bitmap).summation(raw)
    exact = Fraction(raw * (multiplier or 1), divisor or 1)
    assert reading.value == exact
    right = bitmap & 0x07
    shown = Fraction(Decimal(reading.text))
    assert shown <= exact < shown + Fraction(1, 10**right)
    whole, _, fraction = reading.text.partition(".")
    assert len(fraction) == right
    if not bitmap & 0x80:
        assert len(whole) >= (bitmap >> 3) & 0x0F
    else:
        assert whole == "0" or not whole.startswith("0")


@given(
    units=st.integers(0, 2**24 - 1),
    bitmap=st.integers(0, 0xFF).filter(lambda b: b & 0x78),  # left digits 1..15
)
def test_agrees_with_the_second_source(units, bitmap):
    """Values exact at the digits shown: zse's text is ZHA's (module docstring)."""
    right = bitmap & 0x07
    value = Fraction(units, 10**right)
    expected = zha_text(float(Decimal(units).scaleb(-right)), bitmap)
    assert format_number(value, bitmap) == expected


@given(digits=st.lists(st.integers(0, 9), max_size=12))
def test_bcd_round_trip(digits):
    number = int("".join(map(str, digits)) or "0")
    raw = int("".join(map(str, digits)) or "0", 16)
    assert bcd_to_int(raw) == number
    assert scaled(raw, unit_of_measure=UNIT_OF_MEASURE_BCD) == number


def test_takes_the_attribute_values_as_the_wire_decodes_them():
    """A display feeds the Formatting attributes as zigpy decodes them (enum, bitmap struct)."""
    formatting = Formatting(MeteringUnitofMeasure.Kwh_and_Kwh_bcd, 1, 100, NumberFormatting(0xB2))
    assert str(formatting.summation(0x12345)) == "123.45 kWh"


def test_from_a_read_attributes_result():
    """Attributes the meter does not support keep their defaults (Multiplier, Divisor 1)."""
    formatting = Formatting.from_attributes(
        {
            "unit_of_measure": MeteringUnitofMeasure.Cubic_Meter_and_Cubic_Meter_per_Hour_binary,
            "summation_formatting": NumberFormatting(0x8A),
            "ignored": 7,
        }
    )
    assert formatting == Formatting(UnitOfMeasure.CUBIC_METER, 1, 1, summation_formatting=0x8A)
    assert str(formatting.summation(1234)) == "1234.00 m³"
