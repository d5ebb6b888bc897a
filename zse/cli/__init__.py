"""The ``zse`` command line (``python -m zse``), built with click as bellows and zigpy-cli are.

Subcommands live in their own modules and are imported only when used, so ``zse installcode``
does not pay for the simulator or the radio libraries.
"""

from __future__ import annotations

import importlib

import click

from zse import __version__

__all__ = ["main"]

#: Subcommand name -> "module:attribute" of its click command. Add new commands here.
COMMANDS: dict[str, str] = {
    "capture": "zse.cli.capture:capture",
    "cert": "zse.cli.cert:cert",
    "demo": "zse.cli.demo:demo",
    "esi": "zse.cli.esi:esi",
    "han": "zse.cli.han:han",
    "headend": "zse.cli.headend:headend",
    "installcode": "zse.cli.installcode:installcode",
    "interpan": "zse.cli.interpan:interpan",
    "mqtt": "zse.cli.mqtt:mqtt",
    "sim": "zse.cli.sim:sim",
}


class _LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zse")
@click.option("-v", "--verbose", count=True, help="More log: -v info, -vv debug.")
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"], case_sensitive=False),
    help="Log level (any case; default warning).",
)
def main(verbose: int, log_level: str | None) -> None:
    """zse: ZigBee Smart Energy tools (install codes, CBKE, simulated HAN)."""
    if verbose or log_level:
        from zse.cli._options import configure_logging  # noqa: PLC0415

        configure_logging(verbose, log_level)
