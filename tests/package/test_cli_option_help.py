"""Every option of every command says in its --help what it does: ``zse han watch --for``
said only "Seconds.", and a dozen options (``headend serve --speed``, ``headend worker
--lease``, ``interpan send message --duration``...) said nothing at all. So does every option
of ``zse esi``'s shell (``help price``): ``price --tiers`` and ``message --importance`` said
nothing, ``load-control --device-class`` "Bitmap.", ``wait --timeout`` "Seconds."; and a
command's line in ``help`` is a whole phrase (``price`` was cut to "Publish a price
(D.4.2.4.1), e.g.")."""

from __future__ import annotations

import re

import click
import pytest

from zse.cli import main
from zse.cli.esi import SHELL

#: What is a unit or a type, not what an option does.
UNIT_ONLY = re.compile(r"(seconds|minutes|bytes|z-stack only|an? \w+)\.?", re.IGNORECASE)


def _options(command: click.Command, path: str) -> list[tuple[str, click.Option]]:
    found = [
        (path, param)
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden
    ]
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            found += _options(sub, f"{path} {name}")
    return found


@pytest.mark.parametrize(("command", "path"), [(main, "zse"), (SHELL, "zse-esi>")])
def test_every_option_says_what_it_does(command: click.Command, path: str) -> None:
    vague = [
        f"{path} {param.opts[0]}: {param.help!r}"
        for path, param in _options(command, path)
        if not param.help or UNIT_ONLY.fullmatch(param.help.strip()) or len(param.help.split()) < 4
    ]
    assert vague == []


def test_watch_for_says_when_it_stops() -> None:
    (watch_for,) = [
        p for path, p in _options(main, "zse") if path == "zse han watch" and "--for" in p.opts
    ]
    assert watch_for.help is not None
    assert "Stop watching after this many seconds" in watch_for.help


def test_every_shell_command_is_summed_up_in_a_whole_phrase() -> None:
    ctx = click.Context(SHELL)
    cut = []
    for name in SHELL.list_commands(ctx):
        command = SHELL.get_command(ctx, name)
        assert command is not None
        if command.get_short_help_str(limit=45).endswith(("e.g.", "i.e.")):
            cut.append(name)
    assert cut == []


@pytest.mark.parametrize(("command", "path"), [(main, "zse"), (SHELL, "zse-esi>")])
def test_no_help_shows_a_range_of_none(command: click.Command, path: str) -> None:
    """An unbounded FiniteFloat (``load-control --cooling-offset``) showed ``[x<=None]``."""
    ctx = click.Context(command)
    shown = [
        f"{where} {param.opts[0]}: {record[1]!r}"
        for where, param in _options(command, path)
        if (record := param.get_help_record(ctx)) is not None and "None" in record[1]
    ]
    assert shown == []
