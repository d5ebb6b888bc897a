"""Whole-number options read ASCII digits only (the CLI's rule for numbers, as FiniteFloat
and the PAN id already keep it): ``int()`` also reads other scripts' digits and ``_``, so a
port or a count typed in full-width or Arabic-Indic digits was taken as that number."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from zse.cli import main

#: (command line before the number, the option): one of each kind of option (bounded,
#: unbounded, a count, a port) in several commands; each would accept its number in ASCII.
OPTIONS = [
    (["headend", "serve", "--port"], "--port"),
    (["headend", "serve", "--seed"], "--seed"),
    (["sim", "utility", "--meters"], "--meters"),
    (["installcode", "--jobs"], "--jobs"),
    (["mqtt", "--seed"], "--seed"),
]


@pytest.mark.parametrize(("argv", "option"), OPTIONS)
@pytest.mark.parametrize("number", ["\uff18\uff14", "\u0668\u0664", "8_4", "\u00b2"])
def test_a_number_in_other_digits_is_refused_by_its_option(
    argv: list[str], option: str, number: str
) -> None:
    result = CliRunner().invoke(main, [*argv, number])
    assert result.exit_code == 2, result.output
    assert "Invalid value for " in result.output
    assert f"'{option}'" in result.output
    assert "is not a whole number (ASCII digits, no '_')" in result.output


@pytest.mark.parametrize(
    "argv", [["sim", "utility"], ["headend", "serve"], ["mqtt"], ["cert", "issue"]]
)
def test_help_shows_an_unbounded_number_as_an_integer_with_no_range(argv: list[str]) -> None:
    """An unbounded whole-number option was first an IntRange of no bounds: ``--help`` said
    ``INTEGER RANGE`` and ``x<=None``."""
    result = CliRunner().invoke(main, [*argv, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "None]" not in result.output
    assert "x<=None" not in result.output
