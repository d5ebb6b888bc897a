"""The ``zse`` command line (``python -m zse``), built with click as bellows and zigpy-cli are.

Subcommands live in their own modules and are imported only when used, so ``zse installcode``
does not pay for the simulator or the radio libraries.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from zse import __version__
from zse.cli._errors import INTERRUPTED, say_error
from zse.errors import ZseError

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


#: click 8.2's usage error that is the help (a group run with no command): shown as it is.
_NO_ARGS_IS_HELP: tuple[type[click.UsageError], ...] = tuple(
    getattr(click.exceptions, name)
    for name in ("NoArgsIsHelpError",)
    if hasattr(click.exceptions, name)
)


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
        return _with_verbosity(command)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """click's main, with a usage error said in one line (click's is four: usage, a
        hint, a blank line and the error) and exit status 2, as a standard output that cannot
        be written (the help, the version, a command's output)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        from zse.cli._files import OutputError, named_stdout  # noqa: PLC0415

        try:
            with named_stdout():
                result = super().main(args, prog_name, complete_var, False, **extra)
        except OutputError as exc:  # "cannot write standard output: why"
            _fail_quietly(str(exc), 2)
        except _NO_ARGS_IS_HELP as exc:  # the help itself, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see {exc.ctx.command_path} -h)" if exc.ctx is not None else ""
            line = " ".join(_from_environment(exc).format_message().split())
            click.echo(f"error: {line}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt):  # Ctrl-C while click parsed
                _fail_quietly("interrupted", INTERRUPTED)
            click.echo("Aborted!", err=True)  # end of input at a prompt
            sys.exit(1)
        sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        """The subcommand; an exception it lets out (a fault the command did not turn into
        its own one-line error) is still one line and exit status 1, its traceback in the
        debug log (``-vv``); an output that cannot be written (standard output too) is said
        so, exit status 2; a Ctrl-C it lets out is ``error: interrupted``, status 130."""
        from zse.cli._files import OutputError  # noqa: PLC0415

        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # here, not at exit, where a failure is a traceback
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:  # Ctrl-C the command left to us (click said "Aborted!", 1)
            _fail_quietly("interrupted", INTERRUPTED)
        except OutputError as exc:
            _fail_quietly(str(exc), 2)
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise  # click's: the reader went away (``| head``)
            _fault(exc)
        except Exception as exc:
            _fault(exc)
        return result


def _with_verbosity(command: click.Command) -> click.Command:
    """``command`` (each command of a group) taking ``-v`` / ``--log-level`` after its name as
    well as before it (``zse demo -vv`` as ``zse -vv demo``), unless it has its own."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_verbosity(sub)
        return command
    if any(param.name == "verbose" for param in command.params) or command.callback is None:
        return command
    from zse.cli._options import configure_logging, verbosity_options  # noqa: PLC0415

    callback = command.callback

    def run(*args: Any, verbose: int = 0, log_level: str | None = None, **kwargs: Any) -> Any:
        if verbose or log_level:
            configure_logging(verbose, log_level)
        return callback(*args, **kwargs)

    probe = verbosity_options(click.Command("probe"))  # the options, declared once
    command.params.extend(probe.params)
    command.callback = run
    return command


def _fault(exc: BaseException) -> None:
    """Say ``exc`` in one line on standard error and exit 1."""
    logging.getLogger("zse.cli").debug("the command failed", exc_info=exc)
    message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
    name = type(exc).__name__
    said = message if isinstance(exc, ZseError) else f"{name}: {message}" if message else name
    line = " ".join(f"{said}{where}".split())  # zse's errors say what and where already
    _fail_quietly(line[:500], 1)


def _from_environment(exc: click.UsageError) -> click.UsageError:
    """``exc``, naming the environment variable its bad value came from (click names the
    option only, which the operator may not have typed: ``ZSE_BAUDRATE=abc``)."""
    param, ctx = getattr(exc, "param", None), exc.ctx
    if not isinstance(exc, click.BadParameter) or param is None or ctx is None:
        return exc
    source = None if param.name is None else ctx.get_parameter_source(param.name)
    if source is not ParameterSource.ENVIRONMENT:
        return exc
    names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
    given = next((name for name in names if os.environ.get(name)), None)
    if given is None or exc.param_hint is not None:
        return exc
    hint = f"{param.get_error_hint(ctx)} (from {given})"
    return click.BadParameter(exc.message, ctx=ctx, param=param, param_hint=hint)


def _fail_quietly(message: str, status: int) -> NoReturn:
    """Say ``message`` (one ``error:`` line) and exit ``status``; what standard output still
    buffers and cannot write (``/dev/full``) goes nowhere, not to a traceback at exit."""
    from zse.cli._files import OutputError  # noqa: PLC0415

    say_error(message)
    try:
        sys.stdout.flush()
    except (OSError, OutputError):
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise SystemExit(status)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zse")
@click.option("-v", "--verbose", count=True, help="More log: -v info, -vv debug.")
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"], case_sensitive=False),
    help="Log level (any case; default warning).",
)
def main(verbose: int, log_level: str | None) -> None:
    """zse: ZigBee Smart Energy tools. Try `zse demo` first: a simulated HAN, no stick needed.

    Install codes, CBKE certificates, an ESI or an in-home display on a USB stick (or the
    simulator), inter-PAN, sniffer captures, an MQTT bridge and a retailer headend. Each
    command's --help says more, and the guide:
    https://github.com/zse-project/zse/blob/main/docs/index.md
    """
    from zse.cli._logging import redact_handlers  # noqa: PLC0415

    # a library's warning printed before (or without) configure_logging goes to Python's
    # last-resort handler: keys hidden there too (#12.23)
    redact_handlers([logging.lastResort] if logging.lastResort is not None else [])
    if verbose or log_level:
        from zse.cli._options import configure_logging  # noqa: PLC0415

        configure_logging(verbose, log_level)
