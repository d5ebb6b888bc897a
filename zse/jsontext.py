"""JSON text from outside: MQTT payloads, HTTP request bodies, credential and CA files.

:func:`loads` is :func:`json.loads` held to RFC 8259 and to what the rest of zse can use:
UTF-8 only (section 8.1), numbers that are numbers (no ``NaN`` or ``Infinity``, which section 6
leaves out, and no float that overflows to infinity), strings without an unpaired surrogate
(section 8.2: software receiving them behaves unpredictably; Python's would fail later, when
the string is encoded), nesting within the interpreter's recursion limit and integers within
its digit limit, and no name twice in one object (section 4: names SHOULD be unique; readers
disagree on which value counts, so that a check made by one, a proxy's say, can be defeated
by another's choice). Every failure is one :class:`~zse.errors.InvalidJson` saying why and where,
never echoing the text (it may hold keys).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from zse.errors import InvalidJson

__all__ = ["loads"]

#: A surrogate, escaped (``\\uD800``-``\\uDFFF``) or as such (text given as a string): only
#: then can the document hold an unpaired one.
_SURROGATE = re.compile(r"\\u[dD][89abcdefABCDEF]|[\ud800-\udfff]")


def _constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not a JSON number (RFC 8259 section 6)")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJson("a number too large for a float")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):  # rare: find the name
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise InvalidJson(f"the name {name[:40]!r} twice in one object (RFC 8259 4)")
            seen.add(name)
    return document


#: One decoder (``json.loads`` with hooks builds a new one per call: half its time on the
#: headend's small payloads, benchmarks/jsontext.py).
_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_float, object_pairs_hook=_object)


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """The JSON document ``data`` (UTF-8 if bytes); :class:`~zse.errors.InvalidJson` if it
    is not one zse reads (module docstring)."""
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJson(f"not UTF-8 text (byte {exc.start + 1})") from None
    else:
        text = data
    try:
        document = _DECODER.decode(text)
    except InvalidJson:
        raise
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"{exc.msg}: line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidJson("arrays or objects nested too deep") from None
    except ValueError:  # int() of an integer with more digits than the interpreter converts
        raise InvalidJson("an integer with too many digits") from None
    # rare: a pair is fine, a lone one is not; from bytes only an escape can make one ("\\u"
    # first: a scan in C that most texts fail), text given as a string may hold one as such
    if ("\\u" in text or text is data) and _SURROGATE.search(text):
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidJson("a string with an unpaired surrogate (RFC 8259 8.2)") from None
    return document
