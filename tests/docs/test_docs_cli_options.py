"""Every ``zse SUBCOMMAND ... --option`` the docs and README show is an option of that command.

A command is read from ``zse`` (or ``python -m zse``) to the end of its code span, table cell
or line: its subcommand words as far as they name ``zse``'s commands, then every ``--option``
after them, each of which that (sub)command must take (``--help`` always). A command that
lost or renamed an option, or a subcommand left out (``zse headend --sim`` for ``zse headend
serve --sim``), is then a reader's "No such option".
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from zse.cli import main

#: Its outcome cannot depend on the Python version: the main interpreter only (ADR 0025).
pytestmark = pytest.mark.main_interpreter

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
#: ``zse`` then its words, to the end of the code span, table cell or line.
_COMMAND = re.compile(r"\bzse ((?:[a-z][a-z-]* ?){1,3})([^`\n|]*)")
_OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def command_of(words: list[str]) -> tuple[click.Command, list[str]]:
    """The (sub)command ``words`` name, as far as they do, and those words."""
    command: click.Command = main
    used: list[str] = []
    for word in words:
        if not isinstance(command, click.Group):
            break
        sub = command.get_command(click.Context(command), word)
        if sub is None:
            break
        command, used = sub, [*used, word]
    return command, used


def options_of(command: click.Command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names |= {*param.opts, *param.secondary_opts}
    return names


def unknown_options(text: str) -> list[str]:
    """``zse WORDS --option`` for each option ``text`` shows a command that lacks it."""
    found = []
    for match in _COMMAND.finditer(text):
        command, used = command_of(match.group(1).split())
        if not used:
            continue  # "zse is ...": prose, not a command
        shown = set(_OPTION.findall(match.group(1) + match.group(2)))
        found += [f"zse {' '.join(used)} {o}" for o in sorted(shown - options_of(command))]
    return found


def test_the_check_catches_an_option_a_command_lacks() -> None:
    assert unknown_options("run `zse headend --sim 2` or `zse headend serve --sim 2`") == [
        "zse headend --sim"
    ]
    assert unknown_options("| `zse installcode --csv f --jsn` | `zse han watch --for 3` |") == [
        "zse installcode --jsn"
    ]
    assert unknown_options("zse is a stack; `python -m zse demo --seed 7`") == []


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_option_shown_is_the_commands(page: Path) -> None:
    assert unknown_options(page.read_text()) == []


def undocumented_options(command: click.Command, path: str, text: str) -> list[str]:
    """``path --option`` for every option of ``command`` (and its subcommands) that ``text``
    never names, by any of its names (``-v`` names ``--verbose``; an ``--x/--no-x`` pair is
    named by ``--x``; hidden options are for tests)."""
    found = []
    for param in command.params:
        named = any(re.search(rf"(?<![\w-]){o}(?![\w-])", text) for o in param.opts)
        if isinstance(param, click.Option) and not param.hidden and not named:
            found.append(f"{path} {param.opts[-1]}")
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            found += undocumented_options(sub, f"{path} {name}", text)
    return found


def test_every_option_is_named_in_the_docs() -> None:
    """The reverse of the check above: an option only --help knows of (``zse interpan send
    get-price --wait``, the shell's ``price --tiers``) is one a reader of the docs never finds.
    The shell's commands are documented in docs/sticks.md."""
    from zse.cli.esi import SHELL  # noqa: PLC0415 - the CLI's modules load lazily

    everything = "\n".join(page.read_text() for page in PAGES)
    assert undocumented_options(main, "zse", everything) == []
    sticks = (ROOT / "docs" / "sticks.md").read_text()
    assert undocumented_options(SHELL, "zse-esi>", sticks) == []
    assert undocumented_options(main, "zse", "zse --help") != []  # the check can fail
