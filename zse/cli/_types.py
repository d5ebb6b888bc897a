"""Click parameter types shared by the commands."""

from __future__ import annotations

import math
from typing import Any

import click

__all__ = ["LONGEST_WAIT", "FiniteFloat", "PanIdType", "PlainInt", "PlainIntRange", "parse_int"]

#: The longest wait a command takes (a year of seconds): past it, a typo, not a wish.
LONGEST_WAIT = 366 * 86400.0


def _plain(text: str) -> bool:
    """Whether ``text`` spells a number as an operator types it: ASCII, no ``_`` (``int()`` and
    ``float()`` also read ``1_000`` and other scripts' digits, Arabic-Indic or full-width)."""
    return text.isascii() and "_" not in text


def parse_int(text: str) -> int | None:
    """An integer in decimal or ``0x`` / ``0o`` / ``0b`` (ASCII only, no ``_``), or None."""
    if not _plain(text):
        return None
    try:
        return int(text.strip(), 0)
    except ValueError:
        return None


class FiniteFloat(click.FloatRange):
    """:class:`click.FloatRange` without NaN or infinity (NaN passes any range: every
    comparison with it is false), in ASCII digits without ``_``."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not _plain(value):
            self.fail(f"{value[:20]!r} is not a number (ASCII digits, no '_')", param, ctx)
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{str(value)[:20]!r} is not a finite number", param, ctx)
        return number

    def _describe_range(self) -> str:
        """No range in --help when there is none: click's own says ``[x<=None]``."""
        if self.min is None and self.max is None:
            return ""
        return super()._describe_range()


def _whole(kind: click.ParamType[Any], value: Any, param: click.Parameter | None, ctx: Any) -> None:
    """Fail unless ``value``, given as text, is a whole number in ASCII digits without ``_``
    (click's own words for ``abc`` were "not a valid integer range")."""
    if isinstance(value, str) and (not _plain(value) or not _integer(value)):
        kind.fail(f"{value[:20]!r} is not a whole number (ASCII digits, no '_')", param, ctx)


def _integer(text: str) -> bool:
    """Whether ``int()`` reads ``text`` (as click's integer types do)."""
    try:
        int(text)
    except ValueError:
        return False
    return True


class PlainIntRange(click.IntRange):
    """:class:`click.IntRange` in ASCII digits without ``_`` (``int()`` also reads ``1_000``
    and other scripts' digits: a port typed in full-width digits was taken as that port)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        _whole(self, value, param, ctx)
        return super().convert(value, param, ctx)


class _PlainInteger(click.types.IntParamType):
    """:data:`PlainInt`'s type: ``type=int`` in ASCII digits without ``_``."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        _whole(self, value, param, ctx)
        return super().convert(value, param, ctx)


#: An integer option of any size, in ASCII digits without ``_`` (for ``type=int``).
PlainInt = _PlainInteger()


class PanIdType(click.ParamType):  # type: ignore[type-arg]
    """A PAN id, decimal or ``0x`` hex, within ``low``..``high`` (IEEE 802.15.4: 16 bits;
    0xFFFF is the broadcast PAN, never a network's own)."""

    name = "pan id"

    def __init__(self, low: int = 0x0000, high: int = 0xFFFE, note: str = "") -> None:
        self.low, self.high, self.note = low, high, note

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        number: int | None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            number = parse_int(str(value))
        if number is None or not self.low <= number <= self.high:
            self.fail(
                f"PAN id must be 0x{self.low:04X} to 0x{self.high:04X}{self.note}, "
                f"not {str(value)[:20]!r}",
                param,
                ctx,
            )
        return number
