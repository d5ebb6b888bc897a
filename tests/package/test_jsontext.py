"""zse.jsontext: JSON from outside held to RFC 8259 (UTF-8, numbers, surrogates), bounded
errors only, never the text itself in them."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zse.errors import DecodeError, InvalidJson
from zse.jsontext import loads

SECRET = "5eCr3tKey0123456789"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (b"\xff{}", "not UTF-8 text (byte 1)"),
        (b'{"a": "\xed\xa0\x80"}', "not UTF-8 text (byte 8)"),  # a surrogate, UTF-8-encoded
        ("{", "Expecting property name"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ("[Infinity]", "Infinity is not a JSON number"),
        ("-Infinity", "-Infinity is not a JSON number"),
        ("1e999", "too large for a float"),
        ("[" * 100_000, "nested too deep"),
        ('{"a":' * 100_000, "nested too deep"),
        ("9" * 5000, "too many digits"),
        ('"\\ud800"', "unpaired surrogate"),
        ('["\\udc00\\ud800"]', "unpaired surrogate"),  # low then high: no pair
        ('{"\\uDBFF": 1}', "unpaired surrogate"),
        (b'["\\uDC00"]', "unpaired surrogate"),  # a low one alone, from bytes
        ('"\ud800"', "unpaired surrogate"),  # given as a string, the surrogate itself
        ('{"group": "a", "group": "b"}', "the name 'group' twice in one object"),
        ('[{"a": {"x": 1, "y": 2, "x": 1}}]', "the name 'x' twice in one object"),
    ],
)
def test_what_is_not_json_zse_reads_is_one_error(text: str | bytes, why: str) -> None:
    with pytest.raises(InvalidJson, match=re.escape(why)) as error:
        loads(text)
    assert isinstance(error.value, DecodeError)
    assert isinstance(error.value, ValueError)  # callers catching ValueError keep working


def test_json_is_read_as_json_does() -> None:
    for text in ('{"a": [1, 2.5, -0.0, 1e308, null, true, "x"]}', '"\\ud83d\\ude00"', "[]", "0"):
        assert loads(text) == json.loads(text)
        assert loads(text.encode()) == json.loads(text)
    assert loads('"\\ud83d\\ude00 \\u00e9"') == "\U0001f600 é"  # a pair is one character
    assert loads(bytearray(b"[1]")) == [1]
    assert loads(memoryview(b"[1]")) == [1]


def test_the_error_never_repeats_the_text() -> None:
    for text in (f'{{"key": "{SECRET}"', f'{{"key": "{SECRET}", "n": NaN}}', f'"{SECRET}\\ud800"'):
        with pytest.raises(InvalidJson) as error:
            loads(text)
        assert SECRET not in str(error.value)


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_garbage_is_a_document_or_invalid_json(data: bytes | str) -> None:
    try:
        document = loads(data)
    except InvalidJson:
        return
    json.dumps(document, allow_nan=False, ensure_ascii=False).encode("utf-8")  # usable as-is


_NUMBERS = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
_VALUES = st.recursive(
    st.none() | st.booleans() | _NUMBERS | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(_VALUES)
def test_every_document_json_writes_is_read_back(value: object) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        assert loads(text) == value
        assert loads(text.encode()) == value


def test_numbers_stay_numbers() -> None:
    assert math.isfinite(loads("1.7976931348623157e308"))
    assert loads("-0") == 0
    assert loads("1" * 4000) == int("1" * 4000)  # within the interpreter's digit limit
