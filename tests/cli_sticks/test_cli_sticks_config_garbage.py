"""Hostile configuration files (#12.19): every bad value or document is one ConfigError naming
the file, the table and the key, never a traceback, an overflow or a hang."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from zse.config import _TABLES, ConfigError, parse_config, parse_price

# Reported on issue #12: a Decimal overflow, a hang, a RecursionError.
HOSTILE_PRICES = {
    '"1e99999999"': "config: [[prices]] #1: price '1e99999999' is too large for the price field",
    '"1e999999"': "config: [[prices]] #1: price '1e999999' is too large for the price field",
    '"1e-999999"': "config: [[prices]] #1: price '1e-999999' has 999999 decimals; at most 15",
    '"5E+9"': "config: [[prices]] #1: price '5E+9' is too large for the price field (Uint32)",
    '"42949672.96"': "config: [[prices]] #1: price '42949672.96' is too large for the price field",
    "1e308": "config: [[prices]] #1: price 1e+308 is too large for the price field",
    "nan": "config: [[prices]] #1: price nan must be a non-negative number",
    '"sNaN"': "config: [[prices]] #1: price 'sNaN' must be a non-negative number",
    "-inf": "config: [[prices]] #1: price -inf must be a non-negative number",
    "0x" + "F" * 5000: "config: [[prices]] #1: price a 20000-bit integer is outside 0..4294967295",
    '"' + "1" * 100_000 + '"': "config: [[prices]] #1: price '111",
}


@pytest.mark.parametrize("value", list(HOSTILE_PRICES), ids=lambda v: v[:16])
def test_hostile_prices_are_one_config_error(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"[[prices]]\nprice = {value}\n")
    assert str(info.value).startswith(HOSTILE_PRICES[value])
    assert len(str(info.value)) < 200  # a value is quoted cut short, never whole


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a = " + "[" * 100_000 + "]" * 100_000, "config: not TOML zse reads: arrays or tables"),
        ("a = " + "{b = " * 100_000 + "1" + "}" * 100_000, "config: not TOML zse reads: arrays"),
        ("[esi]\nprovider_id = " + "9" * 5000, "config: not TOML zse reads: an integer with too"),
        ("[esi]\nprovider_id = 0x" + "F" * 5000, "config: [esi] provider_id: a 20000-bit integer"),
    ],
    ids=["arrays", "inline-tables", "decimal-digits", "hex-digits"],
)
def test_deep_nesting_and_huge_integers_are_one_config_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value).startswith(message)


def test_prices_at_the_limits_of_the_field() -> None:
    assert parse_price("4294967295", issuer_event_id=1).price == 0xFFFFFFFF
    price = parse_price("0.000000000000001", issuer_event_id=1)
    assert (price.price, price.price_trailing_digit) == (1, 15)
    price = parse_price("4.294967295e3", issuer_event_id=1)
    assert (price.price, price.price_trailing_digit) == (4294967295, 6)
    price = parse_price("25E-2", issuer_event_id=1)
    assert (price.price, price.price_trailing_digit) == (25, 2)
    assert parse_price("1e2", issuer_event_id=1).price == 100
    with pytest.raises(ConfigError, match=r"outside 0\.\.4294967295"):
        parse_price(0x1_0000_0000, issuer_event_id=1)
    with pytest.raises(ConfigError, match="16 decimals; at most 15"):
        parse_price("0.0000000000000001", issuer_event_id=1)


# -- property tests: garbage documents and values --------------------------------------------


def toml_value(value: Any) -> str:
    """``value`` written as a TOML value (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return hex(value) if value >= 0 else str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


NUMBERS = [
    "1e99999999",
    "1e999999",
    "-1",
    "0.1",
    "1e-16",
    "12.5",
    "Infinity",
    "sNaN",
    "1_000",
    "00",
    "",
]
SCALARS = (
    st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.integers(min_value=0, max_value=2**20000)
    | st.floats()
    | st.sampled_from(NUMBERS)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = sorted({key for keys in _TABLES.values() for key in keys} | {"type", "other"})


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A configuration with the known tables, known and unknown keys, random values."""
    lines = []
    for table in draw(st.lists(st.sampled_from([*_TABLES, "groups", "junk"]), max_size=4)):
        header = f"[[{table}]]" if table in ("devices", "prices") else f"[{table}]"
        lines.append(header)
        for key in draw(st.lists(st.sampled_from(KEYS), max_size=6, unique=True)):
            lines.append(f"{key} = {toml_value(draw(VALUES))}")
    return "\n".join(lines) + "\n"


@settings(max_examples=400, deadline=None)
@given(documents())
def test_garbage_values_give_only_config_errors(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_garbage_text_gives_only_config_errors(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(text)


@settings(max_examples=300, deadline=None)
@given(SCALARS)
def test_any_price_value_is_a_price_or_a_config_error(value: Any) -> None:
    try:
        price = parse_price(value, issuer_event_id=1)
    except ConfigError:
        return
    assert 0 <= price.price <= 0xFFFFFFFF
    assert 0 <= price.price_trailing_digit <= 15


@settings(max_examples=300, deadline=None)
@given(SCALARS | st.lists(SCALARS, max_size=3))
def test_any_meter_demand_is_a_boolean_or_one_config_error_naming_it(value: Any) -> None:
    """``[meter] demand`` takes true or false; anything else is one line naming the key and
    what it takes."""
    text = f"[meter]\ndemand = {toml_value(value)}\n"
    if isinstance(value, bool):
        assert parse_config(text).meter_demand is value
        return
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    message = str(caught.value)
    # toml_value writes an astral character as JSON's surrogate pair, TOML's refusal
    assume(not message.startswith("config: not TOML: Escaped character"))
    assert message.startswith("config: [meter] demand: expected true or false (false: ")
    assert "\n" not in message


# -- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ['"1e99999999"', '"1e999999"', "[" * 50_000 + "]" * 50_000])
def test_esi_with_a_hostile_config_prints_one_line_and_exits_2(tmp_path: Path, value: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(f"[[prices]]\nprice = {value}\n")
    assert esi_config_error(config).startswith(f"error: {config}: ")


def esi_config_error(config: Path, *more: str) -> str:
    """``zse esi --config config`` (and ``more``): its one line, exit 2, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "zse", "esi", *more, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in result.stderr
    return lines[0]


def test_the_configurations_repr_leaves_install_codes_out() -> None:
    config = parse_config(
        "[[devices]]\n"
        'eui64 = "00:0d:6f:00:0a:00:00:01"\n'
        'install_code = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"\n'
    )
    assert config.devices[0].install_code.startswith("83FE D340")
    shown = repr(config).replace(" ", "").lower()
    assert "83fed3407a939723a5c639b26916d505c3b5" not in shown
    assert "a5c639b2" not in shown
