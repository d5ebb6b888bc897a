"""A price's Currency (ISO 4217 numeric, SE D.4.2.4.1.1.6, D.4.2.2.2) as the HAN bridge's
price sensor shows it: the table knew 19 currencies and a price in any other (Swiss francs
aside, most of the world) had a price sensor without a unit. It is ISO 4217's list one now,
with each code's minor unit, and a code not in it is shown as its number."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zse.mqtt.core import ISO_4217, currency_text, price_unit


def test_the_table_is_iso_4217_list_one() -> None:
    assert len(ISO_4217) == 179
    assert all(len(code) == 3 and code.isupper() for code, _ in ISO_4217.values())
    assert len({code for code, _ in ISO_4217.values()}) == len(ISO_4217)
    assert {minor for _, minor in ISO_4217.values()} == {0, 2, 3, 4, None}
    samples = {8: ("ALL", 2), 48: ("BHD", 3), 392: ("JPY", 0), 532: ("XCG", 2),
               826: ("GBP", 2), 924: ("ZWG", 2), 959: ("XAU", None), 978: ("EUR", 2),
               990: ("CLF", 4)}  # fmt: skip
    assert {n: ISO_4217[n] for n in samples} == samples
    assert 932 not in ISO_4217  # ZWL, withdrawn for ZWG


def test_a_price_in_any_currency_has_a_unit() -> None:
    assert price_unit(752, 0) == "SEK/kWh"
    assert price_unit(8, 1) == "ALL/m³"  # unknown before: no unit
    assert price_unit(998, 0) == "998/kWh"
    assert price_unit(999, 0) == "XXX/kWh"  # ISO 4217: no currency
    assert price_unit(1, 0) == "001/kWh"


@given(st.integers(0, 0xFFFF))
def test_every_currency_code_is_shown(currency: int) -> None:
    """Whatever the 16-bit Currency, the price has a unit: its code or its number."""
    text = currency_text(currency)
    assert price_unit(currency, 0) == f"{text}/kWh"
    assert text == ISO_4217[currency][0] if currency in ISO_4217 else int(text) == currency
