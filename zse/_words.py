"""Words in messages a person reads: counts (``1 meter``, ``2 meters``) and values quoted
in errors."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, the noun's plural (``plural``, else ``noun + "s"``) unless
    ``count`` is 1."""
    return f"{count} {noun if count == 1 else (plural or noun + 's')}"


#: The most characters of a value an error message quotes.
QUOTED_MAX = 40


def quoted(value: object) -> str:
    """``value`` as an error message quotes it: its repr cut short, an integer wider than 64
    bits by its width (a configuration or frame may carry any length, and ``repr`` of an
    integer past 4,300 digits raises ValueError)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit integer"
    shown = repr(value)
    return shown if len(shown) <= QUOTED_MAX else shown[: QUOTED_MAX - 4] + "...'"
