"""Every option of every command says in its --help what it does: ``zse han watch --for``
said only "Seconds.", and a dozen options (``headend serve --speed``, ``headend worker
--lease``, ``interpan send message --duration``...) said nothing at all."""

from __future__ import annotations

import re

import click

from zse.cli import main

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


def test_every_option_says_what_it_does() -> None:
    vague = [
        f"{path} {param.opts[0]}: {param.help!r}"
        for path, param in _options(main, "zse")
        if not param.help or UNIT_ONLY.fullmatch(param.help.strip()) or len(param.help.split()) < 4
    ]
    assert vague == []


def test_watch_for_says_when_it_stops() -> None:
    (watch_for,) = [
        p for path, p in _options(main, "zse") if path == "zse han watch" and "--for" in p.opts
    ]
    assert watch_for.help is not None
    assert "Stop watching after this many seconds" in watch_for.help
