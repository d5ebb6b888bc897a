"""docs/concepts.md's table of error families says what each error is.

The docs said every decoding or validation failure was a ``DecodeError``; loaders' and
configurations' errors are not (and ``HeadendConfigError`` is not even a ``ValueError``).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from zse.errors import DecodeError, ZseError

#: Its outcome cannot depend on the Python version: the main interpreter only (ADR 0025).
pytestmark = pytest.mark.main_interpreter

PAGE = Path(__file__).resolve().parents[2] / "docs" / "concepts.md"
_ROW = re.compile(r"^\| `(zse\.[\w.]+)`[^|]*\| [^|]+ \| (yes|no) \| (yes|no) \|$", re.MULTILINE)


def _section() -> str:
    text = PAGE.read_text()
    start = text.index("## Errors: one family per kind of input")
    return text[start : text.index("\n## ", start + 1)]


ROWS = _ROW.findall(_section())


def test_the_table_names_the_loaders_errors() -> None:
    """Every named error family is in the table, beside DecodeError."""
    named = {dotted.rsplit(".", 1)[1] for dotted, _, _ in ROWS}
    assert named >= {
        "DecodeError",
        "ConfigError",
        "MqttConfigError",
        "DeviceCsvError",
        "TimeZoneError",
        "HeadendConfigError",
        "StoreError",
    }


@pytest.mark.parametrize(("dotted", "decode", "value"), ROWS, ids=[r[0] for r in ROWS])
def test_each_error_is_what_the_table_says(dotted: str, decode: str, value: str) -> None:
    """The class's bases agree with its row: a ZseError, a DecodeError and a ValueError or not."""
    module, _, name = dotted.rpartition(".")
    error = getattr(importlib.import_module(module), name)
    assert issubclass(error, ZseError)
    assert issubclass(error, DecodeError) == (decode == "yes")
    assert issubclass(error, ValueError) == (value == "yes")
