"""Options the radio commands (``zse esi``, ``zse interpan``) share, in the zigpy tools' ways.

- ``-v`` / ``-vv`` (info / debug, as zigpy-cli's ``-v``) and ``--log-level`` (any case); the
  more verbose of the two wins, counting the same options given before the subcommand
  (``zse -v esi ...``);
- ``--radio``, ``-d/--device``, ``-b/--baudrate``, ``--flow-control`` (zigpy's
  ``flow_control`` device setting) and ``--start-timeout``, each also read from an environment
  variable ``ZSE_RADIO``, ``ZSE_DEVICE``, ``ZSE_BAUDRATE``, ``ZSE_FLOW_CONTROL``,
  ``ZSE_START_TIMEOUT``; with the EZSP radio, bellows' own ``EZSP_DEVICE``, ``EZSP_BAUDRATE``
  and ``EZSP_FLOW_CONTROL`` (as its ``bellows`` command reads them) fill in what is still
  missing. zigpy-znp's tools take the port as an argument and read no variable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

from zse.cli._logging import quiet_secret_loggers, redact_handlers
from zse.cli._types import FiniteFloat, PlainIntRange

__all__ = [
    "DEFAULT_START_TIMEOUT",
    "LOG_LEVELS",
    "bellows_environment",
    "configure_logging",
    "radio_options",
    "verbosity_options",
]

F = TypeVar("F", bound=Callable[..., Any])

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
#: How long a radio may take to start (connect, and form a network if asked) before zse gives
#: up: above zigpy-znp's 60-s commissioning timeout, well above a silent port's failures
#: (bellows about 15 s of resets, zigpy-znp about 10 s of probes).
DEFAULT_START_TIMEOUT = 120.0
_RADIO_HELP = {"ezsp": "bellows", "znp": "zigpy-znp", "sim": "the simulator, no stick"}
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: bellows' environment variables, for what the EZSP radio still lacks.
_BELLOWS = {
    "device": "EZSP_DEVICE",
    "baudrate": "EZSP_BAUDRATE",
    "flow_control": "EZSP_FLOW_CONTROL",
}


#: ``--importance``'s words, the Message Control importance levels (bits 2-3, D.5.2.3.1).
IMPORTANCE = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def importance_option(function: F) -> F:
    """A message's ``--importance`` (one of :data:`IMPORTANCE`, default low)."""
    return click.option(
        "--importance",
        type=click.Choice(list(IMPORTANCE)),
        default="low",
        show_default=True,
        help="The message's importance level (Message Control bits 2-3).",
    )(function)


def verbosity_options(function: F) -> F:
    """``-v/--verbose`` (repeatable) and ``--log-level``."""
    function = click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        help="Log level (any case; default warning).",
    )(function)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        help="More log: -v info, -vv debug (with the radio's frames).",
    )(function)


def _level(verbose: int, log_level: str | None) -> int | None:
    """The level asked for (None: nothing asked)."""
    asked = [getattr(logging, log_level.upper())] if log_level else []
    if verbose:
        asked.append(logging.WARNING - 10 * min(verbose, 2))
    return min(asked, default=None)


def configure_logging(verbose: int, log_level: str | None) -> None:
    """Log to stderr at the level asked here or before the subcommand, the more verbose
    (warning if none was asked)."""
    asked = [_level(verbose, log_level)]
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        root = ctx.find_root()
        if root is not ctx:
            asked.append(_level(root.params.get("verbose", 0), root.params.get("log_level")))
    level = min((a for a in asked if a is not None), default=logging.WARNING)
    logging.basicConfig(level=level, format=_FORMAT, force=True)
    # keys stay out of the log unless ZSE_LOG_SECRETS=1 (#12.23): the loggers that print them
    # at DEBUG are held at INFO, and what gets through (a warning) is redacted
    quiet_secret_loggers()
    redact_handlers(logging.getLogger().handlers)


class _RadioChoice(click.Choice):  # type: ignore[type-arg] # generic in click 8.2 only
    """The radios offered; one of ``refused`` (a radio zse drives, not for this command) is
    a usage error that says why, rather than click's bare "not one of"."""

    def __init__(self, radios: Sequence[str], refused: Mapping[str, str]) -> None:
        super().__init__(list(radios), case_sensitive=False)
        self.refused = {name.lower(): why for name, why in refused.items()}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        why = self.refused.get(str(value).lower())
        if why is not None:
            self.fail(f"{value!r}: {why}", param, ctx)
        return super().convert(value, param, ctx)


def radio_options(
    radios: Sequence[str], *, required: bool, refused: Mapping[str, str] | None = None
) -> Callable[[F], F]:
    """The radio, its port and how to talk to it (see the module notes). ``refused``: radios
    not offered (not in the choices), each with why, which its help and its usage error say."""
    # zse.config (its prepay, calendar and price checks, zigpy.zcl) only for the radio commands
    from zse.config import FLOW_CONTROLS  # noqa: PLC0415

    refused = refused or {}
    offered = ", ".join(f"{r} ({_RADIO_HELP[r]})" for r in radios)
    not_offered = "".join(f"; not {r}: {why}" for r, why in refused.items())

    def decorate(function: F) -> F:
        for option in reversed(
            [
                click.option(
                    "--radio",
                    type=_RadioChoice(radios, refused),
                    required=required,
                    envvar="ZSE_RADIO",
                    help=f"{offered}{not_offered} [env ZSE_RADIO].",
                ),
                click.option(
                    "-d",
                    "--device",
                    envvar="ZSE_DEVICE",
                    help="The stick's serial port, e.g. /dev/ttyUSB0, or socket://HOST:PORT "
                    "[env ZSE_DEVICE; EZSP_DEVICE for ezsp].",
                ),
                click.option(
                    "-b",
                    "--baudrate",
                    type=PlainIntRange(1200, 4_000_000),
                    envvar="ZSE_BAUDRATE",
                    help="Serial speed (default: the radio library's) "
                    "[env ZSE_BAUDRATE; EZSP_BAUDRATE for ezsp].",
                ),
                click.option(
                    "--flow-control",
                    type=click.Choice(FLOW_CONTROLS, case_sensitive=False),
                    envvar="ZSE_FLOW_CONTROL",
                    help="hardware (RTS/CTS), software (XON/XOFF) or none (default: the radio "
                    "library's) [env ZSE_FLOW_CONTROL; EZSP_FLOW_CONTROL for ezsp].",
                ),
                click.option(
                    "--start-timeout",
                    # a tenth of a second at least: no stick starts sooner, and a start cut short
                    # within bellows' serial connect (0.001 s) left a process that never exited
                    type=FiniteFloat(0.1, 3600),
                    default=DEFAULT_START_TIMEOUT,
                    show_default=True,
                    envvar="ZSE_START_TIMEOUT",
                    help="Seconds the radio may take to start [env ZSE_START_TIMEOUT].",
                ),
            ]
        ):
            function = option(function)
        return function

    return decorate


def bellows_environment(radio: str | None, **given: Any) -> dict[str, Any]:
    """``given`` (device, baudrate, flow_control), with bellows' variables filling in what is
    None when ``radio`` is ezsp; :class:`ConfigError` for a value that is not one."""
    from zse.config import FLOW_CONTROLS, ConfigError  # noqa: PLC0415

    if radio != "ezsp":
        return given
    found = dict(given)
    for key, variable in _BELLOWS.items():
        text = os.environ.get(variable)
        if found.get(key) is not None or not text:
            continue
        if key == "baudrate":
            if not text.strip().isdigit() or not 1200 <= int(text) <= 4_000_000:
                raise ConfigError(f"{variable}={text!r} is not a baud rate (1200..4000000)")
            found[key] = int(text)
        elif key == "flow_control":
            if text.lower() not in FLOW_CONTROLS:
                raise ConfigError(f"{variable}={text!r} is not one of {', '.join(FLOW_CONTROLS)}")
            found[key] = text.lower()
        else:
            found[key] = text
    return found
