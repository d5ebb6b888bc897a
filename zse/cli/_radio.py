"""Opening a real coordinator for the command line: bellows or zigpy-znp, imported lazily.

:func:`open_application` builds the radio library's zigpy ``ControllerApplication`` from
:class:`~zse.config.RadioSettings` and :class:`~zse.config.NetworkSettings` and starts it: the
stick's own network is used if it has one, else (or with ``form``) a network is formed with the
configured channel / PAN id / extended PAN id (zigpy picks what is not given).

Nothing here is particular to one radio: what a radio library needs for Smart Energy (its
application class, given the ESI's SE and mirror endpoints, :func:`esi_descriptors`, which an
EmberZNet NCP takes only before its network is up; its own configuration keys; its inter-PAN
transport) is asked of that radio's module, a :class:`zse.radios.CoordinatorRadio`
(:mod:`zse.radios.ezsp`, :mod:`zse.radios.znp`).

:func:`transport_for` gives the inter-PAN transport of a running application (EZSP, Z-Stack or
the simulator's). Tests inject an application factory instead of :func:`open_application`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zigpy.application import ControllerApplication

from zse.config import RADIOS, ConfigError, NetworkSettings, RadioSettings
from zse.radios import coordinator_radio, coordinator_radio_of
from zse.store_sqlite import create_owner_only

__all__ = [
    "AppFactory",
    "MissingExtra",
    "RadioOptions",
    "RadioStartError",
    "esi_descriptor",
    "esi_descriptors",
    "not_a_serial_port",
    "open_application",
    "port_problem",
    "transport_for",
]

LOGGER = logging.getLogger(__name__)


class MissingExtra(ConfigError):
    """The radio library for ``--radio`` is not installed."""


class RadioStartError(RuntimeError):
    """The radio did not start (port, firmware, network); the message says what it said."""


@dataclass(frozen=True, kw_only=True)
class RadioOptions:
    """What an application factory is given."""

    radio: RadioSettings
    network: NetworkSettings
    #: zigpy's own device database (addresses, endpoints); None: in memory only.
    zigpy_database: str | None = None
    #: Give the radio the ESI's SE endpoint at start-up (an EmberZNet NCP needs it then).
    se_endpoint: bool = True
    #: Form a network when the stick has none (``zse interpan`` does not, unless asked).
    auto_form: bool = True
    #: More settings for the radio library's configuration (e.g. bellows' ``use_thread``).
    library_config: Mapping[str, Any] = field(default_factory=dict)
    #: The SE endpoint serves Metering too (``[meter]``): its descriptor says so.
    meter: bool = False
    #: Meter mirror endpoints to register after the SE endpoint (``[esi] mirrors``).
    mirrors: int = 0
    #: The SE endpoint serves Prepayment too (``[prepayment]``): its descriptor says so.
    prepayment: bool = False


#: ``async factory(options) -> running ControllerApplication``.
AppFactory = Callable[[RadioOptions], Awaitable[ControllerApplication]]


def esi_descriptor(*, meter: bool = False) -> Any:
    """The simple descriptor of the ESI's SE endpoint, as the facade registers it."""
    from zse.roles.esi import EnergyServiceInterface  # noqa: PLC0415

    return EnergyServiceInterface.descriptor(meter=meter)


def esi_descriptors(
    *, meter: bool = False, mirrors: int = 0, prepayment: bool = False
) -> list[Any]:
    """Every simple descriptor the ESI registers: its SE endpoint's and its mirrors'."""
    from zse.roles.esi import EnergyServiceInterface  # noqa: PLC0415

    return EnergyServiceInterface.descriptors(meter=meter, mirrors=mirrors, prepayment=prepayment)


def application_class(radio: str, descriptors: Sequence[Any] = ()) -> type[ControllerApplication]:
    """The radio library's ``ControllerApplication`` for an ESI with the endpoints
    ``descriptors`` (:class:`MissingExtra` if the library is absent)."""
    if radio not in RADIOS:
        raise ConfigError(f"{radio!r} is not a radio zse drives (use {' or '.join(RADIOS)})")
    try:
        cls: type[ControllerApplication] = coordinator_radio(radio).coordinator_class(descriptors)
    except ImportError:
        raise MissingExtra(
            f"--radio {radio} needs {RADIOS[radio]}, which is not installed: "
            f'pip install "zigpy-se[{radio}]"'
        ) from None
    return cls


def zigpy_config(options: RadioOptions) -> dict[str, Any]:
    """The zigpy configuration for ``options`` (validated by the library's schema later)."""
    radio = options.radio
    device: dict[str, Any] = {"path": radio.device}
    if radio.baudrate is not None:
        device["baudrate"] = radio.baudrate
    if radio.flow_control is not None:
        device["flow_control"] = None if radio.flow_control == "none" else radio.flow_control
    network: dict[str, Any] = {}
    settings = options.network
    if settings.channel is not None:
        network["channel"] = settings.channel
    if settings.pan_id is not None:
        network["pan_id"] = settings.pan_id
    if settings.extended_pan_id is not None:
        network["extended_pan_id"] = settings.extended_pan_id
    config: dict[str, Any] = {
        "device": device,
        "network": network,
        "database_path": options.zigpy_database,
    }
    if radio.radio in RADIOS:  # what the radio library itself needs for SE (its module's)
        config.update(coordinator_radio(radio.radio).library_config(radio))
    config.update(options.library_config)
    return config


async def open_application(options: RadioOptions) -> ControllerApplication:
    """Start the coordinator: :class:`MissingExtra` / :class:`~zse.config.ConfigError` for
    what the operator must fix, :class:`RadioStartError` when the radio does not come up."""
    radio = options.radio
    if radio.radio is None or radio.device is None:
        raise ConfigError("give the radio and its serial port: --radio ezsp|znp --device PATH")
    descriptors = (
        esi_descriptors(meter=options.meter, mirrors=options.mirrors, prepayment=options.prepayment)
        if options.se_endpoint
        else []
    )
    cls = application_class(radio.radio, descriptors)
    config = zigpy_config(options)
    import voluptuous  # noqa: PLC0415 - zigpy's config schemas

    try:
        app = cls(config)
    except voluptuous.Invalid as exc:
        raise ConfigError(f"the {radio.radio} radio library refused the settings: {exc}") from None
    created = _database_files(options.zigpy_database, missing=True)
    if created:  # zigpy's database holds the network's keys: its owner's alone, as zse's stores
        with contextlib.suppress(OSError):  # a directory that is not there: zigpy says so
            create_owner_only(created[0])
    bound = asyncio.timeout(radio.start_timeout)
    try:
        await app._load_db()
        async with bound:
            await app.connect()
            if options.network.form:
                await app.form_network()
            await app.initialize(auto_form=options.auto_form)
    except BaseException as exc:  # Ctrl-C or cancellation too: nothing may stay open
        await _abandon(app, created)
        if not isinstance(exc, Exception):
            raise
        if bound.expired():
            raise RadioStartError(
                f"{radio.radio} radio on {radio.device} did not start within "
                f"{radio.start_timeout:g} s (wrong port, baud rate or firmware? "
                "--start-timeout waits longer)"
            ) from exc
        raise RadioStartError(_describe_start_error(radio, exc)) from exc
    return app


#: What SQLite may put beside a database file.
_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def _database_files(database: str | None, *, missing: bool) -> list[Path]:
    """zigpy's database and its side files (``missing``: only those that do not exist yet,
    i.e. what opening it now creates). None for an in-memory database."""
    if database is None or database == ":memory:":
        return []
    main = Path(database)
    if missing and main.exists():
        return []  # an existing database is the operator's: never removed
    return [main.with_name(main.name + side) for side in _SQLITE_SIDE_FILES]


async def _abandon(app: ControllerApplication, created: list[Path]) -> None:
    """Undo a failed start: close the radio and zigpy's database (its aiosqlite thread is not
    a daemon, so leaving it open keeps the process alive for good) and remove the database
    files this start created."""
    _quiet_leftover_tasks(asyncio.get_running_loop())
    with contextlib.suppress(Exception):  # already failing: report the first error
        await app.shutdown(db=True)
    for path in created:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _quiet_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """After a failed start the radio library may leave tasks of its own that then fail
    ("Coordinator is disconnected"); nobody awaits them, so asyncio would print their
    tracebacks when they are collected. The start's error is what the operator needs: log
    those at debug instead, and pass every other loop error on as before."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == "Task exception was never retrieved":
            LOGGER.debug(
                "after the failed start, a radio task failed: %r", context.get("exception")
            )
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def _describe_start_error(radio: RadioSettings, exc: BaseException) -> str:
    import zigpy.exceptions  # noqa: PLC0415

    where = f"{radio.radio} radio on {radio.device}"
    if isinstance(exc, zigpy.exceptions.NetworkNotFormed):
        return f"{where} has no network: form one with --form (or [network] form = true)"
    problem = port_problem(exc)
    if problem is not None:
        return f"{where}: {problem}"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where}: connection refused"
    if isinstance(exc, TimeoutError):
        return f"{where} did not answer (wrong port, baud rate or firmware?)"
    text = str(exc) or type(exc).__name__
    return f"{where} did not start: {text}"


def not_a_serial_port(exc: BaseException) -> str | None:
    """``not a serial port (...)`` when opening a port failed because the path is no serial
    port at all (``/dev/null``, a regular file: pyserial's termios calls fail with ENOTTY; a
    directory), else None."""
    if isinstance(exc, OSError) and exc.errno in {errno.ENOTTY, errno.EISDIR}:
        return f"not a serial port ({exc.strerror or exc})"
    return None


def port_problem(exc: BaseException) -> str | None:
    """What opening a serial port failed with, as an operator reads it (None: not a port
    error): a path that is not there or not allowed, or one that is no serial port."""
    if isinstance(exc, FileNotFoundError | PermissionError):
        return f"cannot open the port ({exc.strerror or exc})"
    return not_a_serial_port(exc)


async def transport_for(app: Any, *, endpoint: int, register: bool) -> Any:
    """The started inter-PAN transport of a running application (``register``: Z-Stack's
    endpoint is not registered yet, so register it with AF first)."""
    radio = coordinator_radio_of(app)
    if radio is not None:
        return await radio.start_transport(app, endpoint=endpoint, register=register)
    from zse.interpan.transports.sim import SimTransport  # noqa: PLC0415

    return SimTransport(app)
