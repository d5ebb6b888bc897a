"""How a command says it failed: one ``error: ...`` line on standard error, then its status."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import NoReturn

import click

__all__ = ["INTERRUPTED", "fail", "say_error", "unexpected"]

#: The exit status of a command that Ctrl-C ended (128 + SIGINT, as a shell reports it).
INTERRUPTED = 130


def say_error(message: str) -> None:
    """``message`` as the one ``error:`` line on standard error."""
    click.echo(f"error: {message}", err=True)


def fail(message: str, status: int) -> NoReturn:
    """Say ``message`` (:func:`say_error`) and exit with ``status``."""
    say_error(message)
    sys.exit(status)


def unexpected(exc: BaseException) -> str:
    """An error zse did not foresee (not a :class:`~zse.errors.ZseError`), said in one line:
    its class, its message and where it was raised, so that a report of that line alone (a
    CI log without ``-vv``) says where to look; ``-vv`` logs the whole traceback. "Where" is
    the innermost frame's module, line and function: names only, never a value."""
    name = type(exc).__name__  # and its message, if it has one ("error: MemoryError:" had not)
    said = " ".join(f"{name}: {exc}".split()) if str(exc).strip() else name  # one line
    where = _origin(exc.__traceback__)
    return f"{said} (raised in {where}; -vv logs the traceback)" if where else said


def _origin(tb: TracebackType | None) -> str | None:
    """``module:line in function`` of a traceback's innermost frame (None: no traceback)."""
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    frame = tb.tb_frame
    return f"{frame.f_globals.get('__name__', '?')}:{tb.tb_lineno} in {frame.f_code.co_name}"
