"""How a command says it failed: one ``error: ...`` line on standard error, then its status."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

__all__ = ["fail", "say_error"]


def say_error(message: str) -> None:
    """``message`` as the one ``error:`` line on standard error."""
    click.echo(f"error: {message}", err=True)


def fail(message: str, status: int) -> NoReturn:
    """Say ``message`` (:func:`say_error`) and exit with ``status``."""
    say_error(message)
    sys.exit(status)
