"""``zse esi``: an Energy Service Interface on a real coordinator (EZSP or Z-Stack stick).

``python -m zse esi --radio ezsp|znp --device /dev/ttyUSB0 [--config esi.toml]`` starts the
radio through zigpy (bellows or zigpy-znp, imported only now), runs
:class:`~zse.roles.esi.EnergyServiceInterface` on it with a persisted
:class:`~zse.provisioning.registry.HanRegistry`, applies the configuration file (devices to
provision, CSV imports, groups, prices) and then takes a headend operator's commands, one a
line: from the terminal (a ``zse-esi>`` prompt), from a pipe or ``--commands FILE`` (a script:
the first failing command stops the ESI with status 1), or none with ``--serve`` (run until
Ctrl-C / SIGTERM). Type ``help`` for the commands: ``provision``, ``import``, ``deprovision``,
``devices``, ``groups``, ``price``, ``message``, ``cancel-message``, ``load-control``,
``cancel-load-control``, ``meter`` (and ``meter set``, ``meter snapshot``), ``supply`` (and
``supply off|armed|on``, ``supply cancel``), ``mirrors``, ``wait``, ``sleep``, ``status``,
``quit``.

What happens on the network (joins, CBKE, lifecycle changes, confirmations, load control
reports) is printed as it happens, one line each, with the time.

``--radio sim`` runs the same on the simulator, with simulated HAN devices to provision
(:mod:`zse.cli._sim`). The radio options, their environment variables and ``-v`` /
``--log-level`` are those of :mod:`zse.cli._options`.

Exit status: 0 after ``quit`` / end of input / Ctrl-C; 1 if the radio did not start (at once,
with zigpy's database closed again) or a scripted command failed; 2 for bad options or
configuration (one ``error:`` line, no traceback), including a missing radio library
(``pip install "zigpy-se[ezsp]"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import re
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from zse._files import read_text_file
from zse._words import counted
from zse.cli._errors import fail
from zse.cli._options import (
    IMPORTANCE,
    bellows_environment,
    configure_logging,
    importance_option,
    radio_options,
    verbosity_options,
)
from zse.cli._types import LONGEST_WAIT, FiniteFloat, PlainIntRange, parse_int
from zse.config import (
    RADIOS,
    ConfigError,
    EsiConfig,
    Target,
    load_config,
    parse_price,
)
from zse.metering.notification import flag_names
from zse.metering.snapshot_types import MeterSnapshotCause
from zse.price import MAX_TIER
from zse.se.ids import MeteringAttribute
from zse.se.types import SupplyStatus

__all__ = ["DEFAULT_DATABASE", "Session", "describe_readings", "esi", "run_esi"]

LOGGER = logging.getLogger(__name__)

DEFAULT_DATABASE = "han.db"
#: How long a command waits for ``provision`` before reporting the admission as open:
#: zigpy-znp's permit_with_link_key returns only when the joining window closes.
PROVISION_WAIT = 5.0
PROMPT = "zse-esi> "
#: What ``meter`` and ``mirrors`` show: summation, demand, status (SE D.3.2.2.1.1, D.3.2.2.5.1,
#: D.3.2.2.3).
_SUMMATION = MeteringAttribute.CURRENT_SUMM_DELIVERED
_DEMAND = MeteringAttribute.INSTANTANEOUS_DEMAND
_STATUS = MeteringAttribute.STATUS

Out = Callable[[str], None]
Action = Callable[["Session"], Awaitable[None]]
F = TypeVar("F", bound=Callable[..., Any])


class CommandError(Exception):
    """A command that could not be done (the message says why)."""


#: 8 or more hex digits in a row, perhaps in groups (``83FE D340``, ``5e:c1:2e:70``): what an
#: install code or a key may look like when click repeats a word it did not expect.
_HEX_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f](?:[\s:-]?[0-9A-Fa-f]){7,}(?![0-9A-Za-z])")


def _usage_error(exc: click.ClickException) -> str:
    """click's message for a command line it refused, without the values it would repeat
    that look like an install code or a key: an install code typed with its spaces but no
    quotes spills into "unexpected extra arguments" (all but its first group)."""
    message = exc.format_message()
    if message.startswith("Got unexpected extra argument"):
        ctx = getattr(exc, "ctx", None)
        name = f"{ctx.info_name}: " if ctx is not None and ctx.info_name else ""
        return (
            f"{name}too many arguments (a value with spaces, such as an install code, goes "
            "in quotes)"
        )

    def hide(found: re.Match[str]) -> str:
        # a key's or code's digits: 12 or more, or 8 or more mixing digits and letters (not a
        # word, nor a decimal number such as a limit click states: 31622400)
        run = found.group()
        digits = [c for c in run if c.isalnum()]
        mixed = any(c.isdigit() for c in digits) and not all(c.isdigit() for c in digits)
        long = len(digits) >= 12 and any(c.isdigit() for c in digits)
        return "<hex hidden>" if mixed or long else run

    return _HEX_RUN.sub(hide, message)


# -- the session: one running ESI and its operator ----------------------------------------------


class Session:
    """A running ESI as the operator sees it: commands in, one line per result or event out."""

    def __init__(self, esi: Any, config: EsiConfig, out: Out, clock: Callable[[], int]) -> None:
        self.esi = esi
        self.registry = esi.registry
        self.config = config
        self.out = out
        self.clock = clock
        self.quit = False
        self._changed = asyncio.Event()
        self._last_id = 0
        self._background: set[asyncio.Task[Any]] = set()

    # -- output ------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.out(text)

    def name(self, device: str) -> str:
        """A device as printed, with its registry label."""
        try:
            label = self.registry.get(device).label
        except Exception:
            label = ""
        return f"{device} ({_printable(label)})" if label else device

    def on_event(self, event: Any) -> None:
        """Print one ESI event (and wake ``wait``)."""
        text = describe_event(event, self.name)
        if text:
            self.say(f"[{self.stamp()}] {text}")
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def on_meter_event(self, event: Any) -> None:
        """Print one event of the ESI's meter (a subscription, fast poll)."""
        text = describe_meter_event(self, event)
        if text:
            self.say(f"[{self.stamp()}] {text}")

    def stamp(self, when: int | None = None) -> str:
        """The time of day of ``when`` (ZigBee time; default now by the session's clock, the
        simulator's being virtual)."""
        from zse.time.service import ZIGBEE_EPOCH  # noqa: PLC0415

        when = self.clock() if when is None else when
        return time.strftime("%H:%M:%S", time.localtime(when + ZIGBEE_EPOCH))

    def next_id(self) -> int:
        """A fresh issuer event / message id: ZigBee UTCTime, strictly increasing (SE
        D.2.2.3.1.1.1 recommends time-based ids)."""
        self._last_id = max(self.clock(), self._last_id + 1) & 0xFFFFFFFF
        return self._last_id

    # -- commands ----------------------------------------------------------------------------

    async def execute(self, line: str) -> bool:  # noqa: PLR0911 - one answer per outcome
        """Run one command line; False if it failed (the error is printed)."""
        if len(line) > MAX_LINE:  # shlex's time grows with the square of a line's length
            self.say(f"error: a command line is at most {MAX_LINE} characters")
            return False
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            self.say(f"error: {exc}")
            return False
        if not words:
            return True
        try:
            action = SHELL.main(words, prog_name="", standalone_mode=False)
        except click.exceptions.Exit:
            return True  # --help
        except click.ClickException as exc:
            self.say(f"error: {_usage_error(exc)}")
            return False
        except click.exceptions.Abort:
            return False
        if not callable(action):
            return True
        try:
            await action(self)
        except (CommandError, ValueError, LookupError) as exc:
            self.say(f"error: {exc}")
            return False
        except (OSError, TimeoutError) as exc:  # the radio refused or did not answer
            self.say(f"error: {type(exc).__name__}: {exc}")
            return False
        except Exception as exc:
            # the command's name only: its arguments may be an install code or a key
            LOGGER.debug("command %s failed", words[0][:40], exc_info=True)
            self.say(f"error: {type(exc).__name__}: {exc}")
            return False
        return True

    async def run_commands(self, lines: AsyncIterator[str], *, script: bool) -> int:
        """Run commands until ``quit`` or the end; a script stops at its first failure."""
        async for line in lines:
            ok = await self.execute(line)
            if not ok and script:
                self.say("stopping: a scripted command failed")
                return 1
            if self.quit:
                break
        return 0

    async def wait_until(self, check: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``check()`` holds (re-checked at every ESI event), at most ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed = self._changed
                    await self.esi.settle()
                    if check():
                        return True
                    await changed.wait()
        except TimeoutError:
            return False

    async def provision(
        self, eui64: str, install_code: str | None, *, label: str = "", groups: Iterable[str] = ()
    ) -> None:
        """Admit a device; told as soon as the admission is open."""
        task = asyncio.get_running_loop().create_task(
            self.esi.provision(eui64, install_code, label=label, groups=groups)
        )
        self._background.add(task)  # held from its start: close() ends it if we are cancelled
        try:
            done, _ = await asyncio.wait({task}, timeout=PROVISION_WAIT)
        except BaseException:
            task.add_done_callback(self._provision_done)
            raise
        if not done:  # the radio holds the call while joining is open (zigpy-znp)
            task.add_done_callback(self._provision_done)
        else:
            self._background.discard(task)
            task.result()
        record = self.registry.get(eui64)
        self.say(
            f"provisioned {self.name(str(_ieee(record.eui64)))}: {record.state.value}, "
            f"joining open for {self.config.permit_seconds} s"
        )

    def _provision_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.say(f"error: admission failed: {task.exception()}")

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # -- the configuration file's part --------------------------------------------------------

    async def apply_config(self) -> bool:
        """Provision the configured devices, import the CSVs, set groups, publish prices,
        tariffs and calendars.
        Returns False if something in it could not be done (each problem is printed)."""
        from zse.provisioning import LifecycleState  # noqa: PLC0415

        ok = True
        for path in self.config.devices_csv:
            ok = await self.execute_action(self.import_csv(path)) and ok
        for entry in self.config.devices:
            try:
                record = self.registry.get(entry.eui64)
            except LookupError:
                record = None
            except Exception:
                record = None
            if record is not None and record.state not in (
                LifecycleState.NEW,
                LifecycleState.PENDING_PROVISIONING,
            ):
                self.say(f"{self.name(entry.eui64)}: {record.state.value} (left as it is)")
                continue
            ok = (
                await self.execute_action(
                    self.provision(
                        entry.eui64, entry.install_code, label=entry.label, groups=entry.groups
                    )
                )
                and ok
            )
        for group, members in self.config.groups.items():
            for member in members:
                ok = await self.execute_action(self.add_to_group(member, group)) and ok
        for priced in self.config.prices:
            price = priced.price
            if priced.auto_id:
                price = dataclasses.replace(price, issuer_event_id=self.next_id())
            ok = await self.execute_action(self.publish_price(price, priced.target)) and ok
        for configured in self.config.tariffs:
            tariff, values = configured.tariff, configured.values
            if configured.auto_id:
                tariff = dataclasses.replace(tariff, issuer_event_id=self.next_id())
                values = tuple(
                    dataclasses.replace(value, issuer_event_id=self.next_id()) for value in values
                )
            action = self.publish_tariff(tariff, values, configured.target)
            ok = await self.execute_action(action) and ok
        return await self.apply_device_management() and ok

    async def apply_device_management(self) -> bool:
        """Publish what ``[device_management]`` asks for (numbered now unless it gave an
        issuer_event_id); False if something could not be done."""
        ok = True
        managed = self.config.device_management
        for configured in managed.items:
            item = configured
            if managed.auto_id:
                item = dataclasses.replace(configured, issuer_event_id=self.next_id())
            ok = await self.execute_action(self.publish_device_management(item)) and ok
        return await self.publish_calendars() and ok

    async def publish_calendars(self) -> bool:
        """Publish the configured calendars; False if one could not be."""
        ok = True
        for entry in self.config.calendars:
            calendar = entry.calendar
            if entry.auto_id:
                calendar = dataclasses.replace(calendar, issuer_event_id=self.next_id())
            ok = await self.execute_action(self.publish_calendar(calendar, entry.target)) and ok
        return ok

    async def execute_action(self, action: Awaitable[None]) -> bool:
        try:
            await action
        except Exception as exc:
            self.say(f"error: {exc}")
            return False
        return True

    async def import_csv(self, path: Path) -> None:
        """Register and admit the devices of a devices CSV (:mod:`zse.device_csv`); each bad
        row is one line, and no line shows an install code or a link key. Raises
        :class:`CommandError` for a file that cannot be used, or when some rows were refused."""
        from zse.device_csv import DeviceCsvError, decode_lines  # noqa: PLC0415

        try:
            with path.open("rb") as handle:  # in chunks: a line past its bound ends the read
                chunks = iter(lambda: handle.read(1 << 16), b"")
                report = await self.registry.import_csv(decode_lines(chunks))
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        except DeviceCsvError as exc:
            raise CommandError(f"{path}: {exc}") from None
        for problem in report.errors:
            self.say(f"error: {path}: {problem}")
        self.say(f"{path}: {len(report.registered)} registered, {len(report.errors)} refused")
        for eui64 in report.registered:
            await self.provision(eui64, None)
        if report.errors:
            raise CommandError(f"{path}: some rows were refused")

    async def add_to_group(self, eui64: str, group: str) -> None:
        record = self.registry.get(eui64)
        if group not in record.groups:
            await self.registry.set_groups(eui64, {*record.groups, group})

    async def publish_price(self, price: Any, target: Target) -> None:
        result = await self.esi.publish_price(price, **target.kwargs())
        self.say(describe_result(result, self.name))

    async def publish_device_management(self, item: Any) -> None:
        """Publish a change of tenancy / supplier, site id or CIN (SE 1.2 D.10) for the
        devices as they join or ask."""
        from zse.devmgmt.core import ChangeOfSupplier, ChangeOfTenancy, SiteId  # noqa: PLC0415

        publish = {
            ChangeOfTenancy: self.esi.publish_change_of_tenancy,
            ChangeOfSupplier: self.esi.publish_change_of_supplier,
            SiteId: self.esi.update_site_id,
        }.get(type(item), self.esi.update_cin)
        result = await publish(item)
        self.say(describe_result(result, self.name))

    async def publish_tariff(self, tariff: Any, values: tuple[Any, ...], target: Target) -> None:
        result = await self.esi.publish_tariff(tariff, *values, **target.kwargs())
        self.say(describe_result(result, self.name))

    async def publish_calendar(self, calendar: Any, target: Target) -> None:
        result = await self.esi.publish_calendar(calendar, **target.kwargs())
        self.say(describe_result(result, self.name))


def _ieee(canonical: str) -> Any:
    from zse.installcode import parse_eui64  # noqa: PLC0415

    return parse_eui64(canonical)


def describe_result(result: Any, name: Callable[[str], str] = str) -> str:
    """One line for a :class:`~zse.roles.esi.SendResult`."""
    head = f"{result.what} to {result.target}"
    if result.multicast:
        return f"{head}: sent (one unacknowledged frame)"
    parts = [f"{len(result.delivered)} delivered"]
    for label, outcome in (("offline", result.offline), ("skipped", result.skipped)):
        parts.append(f"{len(outcome)} {label}")
    text = f"{head}: {', '.join(parts)}"
    details = [
        f"{name(o.device)} {o.outcome.value}" + (f" ({o.detail})" if o.detail else "")
        for o in result.outcomes
        if o.outcome.value != "delivered"
    ]
    return text + ("; " + "; ".join(details) if details else "")


def describe_event(  # noqa: PLR0911, PLR0912 - one line per kind of event
    event: Any, name: Callable[[str], str] = str
) -> str | None:
    """One line for an ESI event (None: not worth a line)."""
    kind = type(event).__name__
    if kind == "DeviceJoined":
        return f"{name(event.device)} joined (NWK 0x{event.nwk:04X})"
    if kind == "DeviceLeft":
        return f"{name(event.device)} left the network"
    if kind == "KeyEstablished":
        return f"{name(event.device)} key established (CBKE suite {event.suite})"
    if kind == "KeyEstablishmentEnded":
        why = event.status or "timed out"
        return f"{name(event.device)} key establishment failed: {why}"
    if kind == "LifecycleChanged":
        if event.from_state is event.to_state:
            return None
        return (
            f"{name(event.device)} {event.from_state.value} -> {event.to_state.value} "
            f"({event.event.value.replace('_', ' ')})"
        )
    if kind == "LifecycleRefused":
        state = event.state.value if event.state is not None else "unregistered"
        what = event.event.value.replace("_", " ")
        return f"{name(event.device)} {what} refused in {state}: {event.reason}"
    if kind == "MessageConfirmed":
        return f"{name(event.device)} confirmed message {event.message.message_id}"
    if kind == "ReportReceived":
        from zse.se.types import event_status_text  # noqa: PLC0415

        status = event_status_text(event.report.event_status)
        signed = " (signature verified)" if event.signed else ""
        return (
            f"{name(event.device)} load control event {event.report.issuer_event_id}: "
            f"{status}{signed}"
        )
    if kind in _MIRROR_EVENTS:
        return _MIRROR_EVENTS[kind](event, name(str(event.device)))
    if kind == "PriceAcknowledged":
        source = event.source_ieee or f"0x{event.source_nwk:04X}"
        return f"{source} acknowledged price {event.issuer_event_id}"
    if kind in _SENT_EVENTS:  # the command that sent it prints its result
        return None
    if kind == "SupplyChanged":  # the meter's supply (zse.metering.supply)
        before, after = _supply_name(event.before), _supply_name(event.status)
        return f"supply {before} -> {after} ({event.cause})"
    return f"{kind}: {event}"


#: The ESI's events for its own sends (zse.roles.esi.PriceSent...): not printed again.
_SENT_EVENTS = frozenset(
    {
        "PriceSent",
        "TariffSent",
        "TariffCancelSent",
        "MessageSent",
        "MessageCancelSent",
        "LoadControlSent",
        "LoadControlCancelSent",
    }
)


#: One line per meter mirroring event (SE D.3.4), by the event's class name.
_MIRROR_EVENTS: dict[str, Callable[[Any, str], str]] = {
    "MirrorAdded": lambda e, who: (
        f"{who} mirrored on endpoint {e.endpoint}"
        if e.new
        else f"{who} asked again for its mirror on endpoint {e.endpoint}"
    ),
    "MirrorRemoved": lambda e, who: f"{who} mirror on endpoint {e.endpoint} removed",
    "MirrorUpdated": lambda e, who: (
        f"{who} pushed {len(e.attributes)} values to its mirror on endpoint {e.endpoint}"
    ),
    # SE 1.2 mirror notifications
    "MirrorConfigured": lambda e, who: (
        f"{who} configured its mirror: notification scheme {e.scheme},"
        f" {'notifications on' if e.reporting else 'notifications off'}"
    ),
    "NotificationFlagsRaised": lambda e, who: (
        f"{who} mirror flags 0x{e.attribute:04X} now"
        f" {', '.join(flag_names(e.attribute, e.flags)) or 'none'}"
    ),
    "NotifiedMessageRequested": lambda e, who: (
        f"{who} asked for {', '.join(flag_names(e.attribute, e.flags)) or 'nothing pending'}"
    ),
}


# -- the commands (a click group run inside the session) ----------------------------------------


def _printable(text: str) -> str:
    """A label or group name as the console prints it: as it is, or escaped as a Python
    literal if it holds a control character (a registry written before they were refused
    may; an escape sequence must not reach the operator's terminal)."""
    return text if text.isprintable() else repr(text)


class _IntType(click.ParamType):  # type: ignore[type-arg]
    """An integer written in decimal or hex (``0x0E01``), ASCII digits only
    (:func:`~zse.cli._types.parse_int`)."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        number = parse_int(str(value))
        if number is None:
            self.fail(f"{str(value)[:20]!r} is not an integer (decimal or 0x hex)", param, ctx)
        return number


INT = _IntType()

#: The longest command line the shell reads (its commands are short; a megabyte took shlex
#: 15 s).
MAX_LINE = 4096


def _target_options(*, enrollment: bool = False) -> Callable[[F], F]:
    def decorate(function: F) -> F:
        options = [
            click.option("--device", "-d", help="One device (EUI-64): unicast, APS-encrypted."),
            click.option("--group", "-g", help="A registry group: one unicast per member."),
            click.option("--zigbee-group", type=INT, help="A ZigBee group id (one frame)."),
            click.option("--broadcast", is_flag=True, help="Every rx-on device (one frame)."),
        ]
        if enrollment:
            options.append(
                click.option("--enrollment-group", type=INT, help="Utility enrollment group 1-255.")
            )
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def _target(**given: Any) -> dict[str, Any]:
    chosen = {k: v for k, v in given.items() if v not in (None, False)}
    if len(chosen) != 1:
        raise click.UsageError(
            "give exactly one target: --device, --group, --zigbee-group"
            + (", --enrollment-group" if "enrollment_group" in given else "")
            + " or --broadcast"
        )
    return chosen


class _Shell(click.Group):
    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_text("COMMAND [ARGS]... (help COMMAND for its options)")


@click.group(cls=_Shell, context_settings={"help_option_names": ["-h", "--help"]})
def SHELL() -> None:  # noqa: N802 - a constant: the shell's command table
    """The ESI's commands (one a line)."""


@SHELL.command("help")
@click.argument("command", required=False)
def _help(command: str | None) -> None:
    """List the commands, or show one command's options."""
    with click.Context(SHELL, info_name="") as ctx:
        if command is None:
            click.echo(SHELL.get_help(ctx))
            return
        sub = SHELL.get_command(ctx, command)
        if sub is None:
            raise click.UsageError(f"no command {command!r}")
        with click.Context(sub, info_name=command, parent=ctx) as sub_ctx:
            click.echo(sub.get_help(sub_ctx))


@SHELL.command()
@click.argument("eui64")
@click.argument("install_code", required=False)
@click.option("--label", default="", help="A name for the device.")
@click.option("--group", "groups", multiple=True, help="A registry group (repeatable).")
def provision(eui64: str, install_code: str | None, label: str, groups: tuple[str, ...]) -> Action:
    """Admit a device by MAC address and install code (SE 5.4.8.1); the code may be left
    out for a device already registered."""

    async def run(session: Session) -> None:
        await session.provision(eui64, install_code, label=label, groups=groups)

    return run


@SHELL.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path))
def import_(csv_file: Path) -> Action:
    """Register and provision devices from a devices CSV: a header row naming the columns
    eui64,install_code[,label][,groups][,link_key] (groups separated by ';'; `zse installcode
    --csv` output imports as it is). Bad rows are reported by line and skipped."""

    async def run(session: Session) -> None:
        await session.import_csv(csv_file)

    return run


@SHELL.command()
@click.argument("eui64")
def deprovision(eui64: str) -> Action:
    """Remove a device: the registry moves it on, and the device is asked to leave."""

    async def run(session: Session) -> None:
        record = await session.esi.deprovision(eui64)
        state = record.state.value if record is not None else "removed"
        session.say(f"deprovisioned {session.name(str(_ieee(record.eui64)))}: {state}")

    return run


@SHELL.command()
@click.option("--group", "-g", help="Only this registry group.")
def devices(group: str | None) -> Action:
    """The registry: every device's state, label and groups."""

    async def run(session: Session) -> None:
        records = session.registry.devices(group=group)
        if not records:
            session.say("no devices" + (f" in group {group!r}" if group else ""))
        for record in records:
            groups = ",".join(_printable(g) for g in sorted(record.groups)) or "-"
            joined = "on the network" if record.joined else "not on the network"
            session.say(
                f"{_ieee(record.eui64)!s}  {record.state.value:<24} {joined:<19} "
                f"groups {groups:<16} {_printable(record.label)}"
            )

    return run


@SHELL.command()
@click.argument("eui64")
@click.argument("groups", nargs=-1)
def groups(eui64: str, groups: tuple[str, ...]) -> Action:
    """Set a device's registry groups (none: take it out of every group)."""

    async def run(session: Session) -> None:
        record = await session.registry.set_groups(eui64, groups)
        session.say(f"{session.name(str(_ieee(record.eui64)))}: groups {sorted(record.groups)}")

    return run


#: ``price``'s ``--tier`` and ``--tiers``: 0-48, default 1.
_TIER: dict[str, Any] = {"type": PlainIntRange(0, MAX_TIER), "default": 1, "show_default": True}


@SHELL.command()
@click.argument("amount")
@click.option("--label", default="", help="Rate label (up to 12 bytes).")
@click.option(
    "--tier", **_TIER, help="The price tier this price is for (0-48; above 15: SE 1.2's extended)."
)
@click.option("--tiers", **_TIER, help="How many tiers the tariff has (Number of Price Tiers).")
@click.option("--id", "issuer_event_id", type=INT, help="Issuer event id (default: from time).")
@click.option("--start", type=INT, default=0, help="ZigBee UTCTime start (0: now).")
@click.option("--duration", type=INT, default=0xFFFF, help="Minutes (default: until changed).")
@_target_options()
def price(  # noqa: PLR0917 - click passes options positionally
    amount: str,
    label: str,
    tier: int,
    tiers: int,
    issuer_event_id: int | None,
    start: int,
    duration: int,
    **target: Any,
) -> Action:
    """Publish a price (D.4.2.4.1): ``price 0.2451 --label Peak --broadcast``, say; the
    decimals give the trailing digit, the currency and provider come from the configuration."""
    where = _target(**target)

    async def run(session: Session) -> None:
        event = parse_price(
            amount,
            rate_label=label,
            issuer_event_id=issuer_event_id if issuer_event_id is not None else session.next_id(),
            provider_id=session.config.provider_id,
            currency=session.config.currency,
            price_tier=tier,
            number_of_price_tiers=tiers,
            register_tier=tier,
            start_time=start,
            duration_in_minutes=duration,
        )
        result = await session.esi.publish_price(event, **where)
        session.say(describe_result(result, session.name))

    return run


@SHELL.command()
@click.argument("text")
@click.option("--id", "message_id", type=INT, help="Message id (default: from time).")
@click.option("--duration", type=INT, default=0xFFFF, help="Minutes (default: until changed).")
@click.option("--start", type=INT, default=0, help="ZigBee UTCTime start (0: now).")
@importance_option
@click.option("--confirm", is_flag=True, help="Ask the user to confirm it.")
@_target_options()
def message(  # noqa: PLR0917 - click passes options positionally
    text: str,
    message_id: int | None,
    duration: int,
    start: int,
    importance: str,
    confirm: bool,
    **target: Any,
) -> Action:
    """Display a message (D.5.2.3.1); confirmations are printed as they arrive."""
    where = _target(**target)

    async def run(session: Session) -> None:
        from zse.messaging import Message  # noqa: PLC0415

        msg = Message(
            message_id=message_id if message_id is not None else session.next_id(),
            text=text,
            start_time=start,
            duration_in_minutes=duration,
            importance=IMPORTANCE[importance],
            confirmation_required=confirm,
        )
        result = await session.esi.send_message(msg, **where)
        session.say(describe_result(result, session.name))

    return run


@SHELL.command("cancel-message")
@click.argument("message_id", type=INT)
@_target_options()
def cancel_message(message_id: int, **target: Any) -> Action:
    """Cancel a message (D.5.2.3.2)."""
    where = _target(**target)

    async def run(session: Session) -> None:
        result = await session.esi.cancel_message(message_id, **where)
        session.say(describe_result(result, session.name))

    return run


@SHELL.command("load-control")
@click.option(
    "--duration", type=INT, required=True, help="How long the event runs, minutes (1-1440)."
)
@click.option("--id", "issuer_event_id", type=INT, help="Issuer event id (default: from time).")
@click.option(
    "--device-class",
    type=INT,
    default=0x0FFF,
    show_default=True,
    help="The device classes it is for, a bitmap (0x0FFF: every class; D.2.2.3.1.1).",
)
@click.option(
    "--criticality",
    type=INT,
    default=1,
    show_default=True,
    help="The criticality level, 1-15 (D.2.2.3.1.1).",
)
@click.option("--start", type=INT, default=0, help="ZigBee UTCTime start (0: now).")
@click.option("--duty-cycle", type=INT, help="The duty cycle asked for, percent (0-100).")
@click.option("--load-adjustment", type=INT, help="Average load adjustment, percent.")
@click.option("--cooling-offset", type=FiniteFloat(), help="Cooling temperature offset, degrees C.")
@click.option("--heating-offset", type=FiniteFloat(), help="Heating temperature offset, degrees C.")
@click.option(
    "--randomize-start", is_flag=True, help="Devices randomize their start (Event Control bit 0)."
)
@click.option(
    "--randomize-end", is_flag=True, help="Devices randomize their end (Event Control bit 1)."
)
@_target_options(enrollment=True)
def load_control(  # noqa: PLR0917 - click passes options positionally
    duration: int,
    issuer_event_id: int | None,
    device_class: int,
    criticality: int,
    start: int,
    duty_cycle: int | None,
    load_adjustment: int | None,
    cooling_offset: float | None,
    heating_offset: float | None,
    randomize_start: bool,
    randomize_end: bool,
    **target: Any,
) -> Action:
    """Send a Load Control Event (D.2.2.3.1); status reports are printed as they arrive."""
    where = _target(**target)

    async def run(session: Session) -> None:
        from zse.drlc import LoadControlEvent  # noqa: PLC0415

        options: dict[str, int] = {}
        if duty_cycle is not None:
            options["duty_cycle"] = duty_cycle
        if load_adjustment is not None:
            options["average_load_adjustment_percentage"] = load_adjustment
        if cooling_offset is not None:
            options["cooling_temperature_offset"] = round(cooling_offset * 10)
        if heating_offset is not None:
            options["heating_temperature_offset"] = round(heating_offset * 10)
        event = LoadControlEvent(
            issuer_event_id=issuer_event_id if issuer_event_id is not None else session.next_id(),
            device_class=device_class,
            start_time=start,
            duration_in_minutes=duration,
            criticality_level=criticality,
            event_control=int(randomize_start) | int(randomize_end) << 1,
            **options,
        )
        problems = event.problems()
        if problems:
            raise CommandError("load control event: " + "; ".join(problems))
        result = await session.esi.send_load_control(event, **where)
        session.say(describe_result(result, session.name))

    return run


@SHELL.command("cancel-load-control")
@click.argument("issuer_event_id", type=INT)
@_target_options(enrollment=True)
def cancel_load_control(issuer_event_id: int, **target: Any) -> Action:
    """Cancel a Load Control Event (D.2.2.3.2)."""
    where = _target(**target)

    async def run(session: Session) -> None:
        result = await session.esi.cancel_load_control(issuer_event_id, **where)
        session.say(describe_result(result, session.name))

    return run


# -- Metering (#14, SE D.3): the ESI's meter and its mirrors ----------------------------------


_NO_METER = "no meter (add a [meter] table)"


@SHELL.group(invoke_without_command=True)
@click.pass_context
def meter(ctx: click.Context) -> Action | None:
    """The meter's readings as a display shows them, who receives its reports, and fast
    poll; ``meter set`` feeds it a reading."""
    if ctx.invoked_subcommand is not None:
        return None

    async def run(session: Session) -> None:
        server = session.esi.meter
        if server is None:
            session.say(_NO_METER)
            return
        core = server.core
        session.say(f"meter: {describe_readings(core.read, demand=core.demand)}")
        configured = core.reporting.configurations()
        if not configured:
            session.say("reporting: nobody subscribed")
        for destination, config in configured:
            who = _peer(session, destination.address, destination.endpoint)
            session.say(f"reporting to {who}: {_subscription(config)}")
        fast_poll = server.protocol.fast_poll
        if fast_poll is not None and session.clock() < fast_poll[1]:
            session.say(f"fast poll: every {fast_poll[0]} s until {session.stamp(fast_poll[1])}")
        else:
            session.say("fast poll: off")

    return run


@meter.command("set")
@click.option("--summation", type=INT, help="The meter's CurrentSummationDelivered, raw (Uint48).")
@click.option("--demand", type=INT, help="The meter's InstantaneousDemand, raw (Int24).")
@click.option("--status", "status_bits", type=INT, help="The meter's Status bitmap (8 bits).")
def meter_set(summation: int | None, demand: int | None, status_bits: int | None) -> Action:
    """Feed the meter a reading (a bench, or a gateway told the register): raw values, as
    the [meter] formatting turns them into the numbers shown."""
    if summation is None and demand is None and status_bits is None:
        raise click.UsageError("give --summation, --demand or --status")

    async def run(session: Session) -> None:
        from zse.metering.core import Readings  # noqa: PLC0415

        server = session.esi.meter
        if server is None:
            raise CommandError(_NO_METER)
        if demand is not None and not server.core.demand:
            raise CommandError(
                "the meter has no InstantaneousDemand ([meter] demand = false): --demand refused"
            )
        await server.feed(
            Readings(
                summation_delivered=summation,
                instantaneous_demand=demand,
                status=status_bits,
            )
        )
        session.say(f"meter: {describe_readings(server.core.read, demand=server.core.demand)}")

    return run


#: Metering Snapshot Cause names as ``meter snapshot --cause`` takes them (any case).
_SNAPSHOT_CAUSES = {name.lower(): name for name in MeterSnapshotCause.__members__}


@meter.command("snapshot")
@click.option(
    "--cause",
    type=click.Choice(list(_SNAPSHOT_CAUSES), case_sensitive=False),
    default="General",
    show_default=True,
    help="Metering Snapshot Cause (as tshark names its bits).",
)
def meter_snapshot(cause: str) -> Action:
    """Take a snapshot of the meter's registers now (SE 1.2 Metering snapshots): kept with
    the others, what a display's Get Snapshot reads."""

    async def run(session: Session) -> None:
        server = session.esi.meter
        if server is None:
            raise CommandError(_NO_METER)
        name = _SNAPSHOT_CAUSES[cause.lower()]
        taken = await server.take_snapshot(int(MeterSnapshotCause[name]))
        read = server.core.read
        shown = describe_readings(
            lambda attribute: taken.summation if attribute == _SUMMATION else read(attribute),
            demand=False,
        ).split(", status")[0]
        session.say(
            f"snapshot {taken.snapshot_id} taken at {session.stamp(taken.time)}: {name}, {shown}"
        )

    return run


# -- supply control (SE 1.2 Metering, zse.metering.supply): the utility's side -----------------


_NO_SUPPLY = "the meter has no supply control (set [meter] supply = true)"


def _supply_of(session: Session) -> tuple[Any, Any]:
    """The ESI's meter and its supply control; :class:`CommandError` when it has none."""
    server = session.esi.meter
    if server is None:
        raise CommandError(_NO_METER)
    if server.supply is None:
        raise CommandError(_NO_SUPPLY)
    return server, server.supply


def _supply_name(status: int) -> str:
    """A Supply Status as SE names it: Off, Off/Armed, On."""
    return _SUPPLY_NAMES.get(status, "On")


_SUPPLY_NAMES: dict[int, str] = {SupplyStatus.OFF: "Off", SupplyStatus.ARMED: "Off/Armed"}


def _waiting_line(session: Session, change: Any) -> str:
    """One Change Supply waiting for its time, as ``supply`` lists it."""
    return (
        f"waiting: {_supply_name(change.status)} at {session.stamp(change.when)} "
        f"({change.when}), provider {change.provider_id}, issuer event {change.issuer_event_id}"
    )


@SHELL.group(invoke_without_command=True)
@click.pass_context
def supply(ctx: click.Context) -> Action | None:
    """The meter's supply (SE 1.2 supply control): Supply Status, the utility's state, the
    prepay credit's interruption and the changes waiting; ``supply off|armed|on`` changes it
    (Change Supply), ``supply cancel`` drops a change waiting."""
    if ctx.invoked_subcommand is not None:
        return None

    async def run(session: Session) -> None:
        _, control = _supply_of(session)
        credit = "yes" if control.credit_interrupted else "no"
        session.say(
            f"supply: {_supply_name(control.status)} (utility: {_supply_name(control.utility)}, "
            f"credit interruption: {credit})"
        )
        if not control.pending:
            session.say("waiting: none")
        for change in control.pending:
            session.say(_waiting_line(session, change))

    return run


def _change_supply_command(word: str) -> click.Command:
    """``supply off``, ``supply armed`` or ``supply on``: Change Supply from the ESI."""

    @click.option("--at", type=INT, default=0, help="ZigBee UTCTime to make it (0: now).")
    @click.option("--provider", type=INT, help="Provider id (default: [esi] provider_id).")
    @click.option("--issuer", type=INT, help="Issuer event id (default: from time).")
    def change(at: int, provider: int | None, issuer: int | None) -> Action:
        _uint32(at, "--at", 0xFFFFFFFE, " (to cancel: supply cancel)")
        _uint32(provider, "--provider")
        _uint32(issuer, "--issuer")

        async def run(session: Session) -> None:
            server, control = _supply_of(session)
            provider_id = session.config.provider_id if provider is None else provider
            issuer_event_id = session.next_id() if issuer is None else issuer
            outcome = await server.change_supply(
                SupplyStatus[word.upper()],
                at=at,
                provider_id=provider_id,
                issuer_event_id=issuer_event_id,
            )
            what = (
                f"Change Supply to {_supply_name(SupplyStatus[word.upper()])} "
                f"(provider {provider_id}, issuer event {issuer_event_id})"
            )
            session.say(f"{what}: {outcome.value}; supply {_supply_name(control.status)}")

        return run

    return click.command(word, help=f"Change Supply: the supply {word}, now or --at a time.")(
        change
    )


def _uint32(value: int | None, option: str, high: int = 0xFFFFFFFF, hint: str = "") -> None:
    """A Change Supply field (uint32) given to ``option``, else a usage error."""
    if value is not None and not 0 <= value <= high:
        raise click.BadParameter(f"{value} is outside 0..{high}{hint}", param_hint=f"'{option}'")


for _word in ("off", "armed", "on"):
    supply.add_command(_change_supply_command(_word))


@supply.command("cancel")
@click.option("--provider", type=INT, required=True, help="Provider id of the change.")
@click.option("--issuer", type=INT, required=True, help="Issuer event id of the change.")
def supply_cancel(provider: int, issuer: int) -> Action:
    """Cancel the Change Supply of that provider and issuer event id that waits for its
    time (Implementation Date/Time 0xFFFFFFFF)."""
    _uint32(provider, "--provider")
    _uint32(issuer, "--issuer")

    async def run(session: Session) -> None:
        from zse.schedule import CANCEL  # noqa: PLC0415

        server, control = _supply_of(session)
        outcome = await server.change_supply(
            SupplyStatus.ON, at=CANCEL, provider_id=provider, issuer_event_id=issuer
        )
        session.say(
            f"cancel of provider {provider}, issuer event {issuer}: {outcome.value}; "
            f"{counted(len(control.pending), 'change')} waiting"
        )

    return run


@SHELL.command()
def mirrors() -> Action:
    """The meter mirror endpoints (SE D.3.4): owner and the last summation mirrored."""

    async def run(session: Session) -> None:
        from zse.metering.mirror import MirrorPool  # noqa: PLC0415

        server = session.esi.mirrors
        pool = MirrorPool(()) if server is None else server.pool
        if not pool.endpoints:
            session.say("mirrors: none (set [esi] mirrors = N to serve some)")
        for endpoint in pool.endpoints:
            owner = pool.owner(endpoint)
            if owner is None:
                session.say(f"mirror endpoint {endpoint}: free")
                continue
            values = {attribute: value for attribute, (_, value) in pool.values(endpoint).items()}
            shown = describe_readings(values.get, demand=False)
            if values.get(_SUMMATION) is None:
                shown = "nothing mirrored yet"
            session.say(f"mirror endpoint {endpoint}: {session.name(str(owner))}, {shown}")

    return run


def _peer(session: Session, nwk: int, endpoint: int | None = None) -> str:
    """A device by NWK address, with its EUI-64 and label when the network knows it."""
    who = f"0x{nwk:04X}"
    for ieee, device in getattr(session.esi.app, "devices", {}).items():
        if device.nwk == nwk:
            who = session.name(str(ieee))
            break
    return who if endpoint is None else f"{who} endpoint {endpoint}"


def _subscription(config: Any) -> str:
    """One reporting record (ZCL 2.5.7.1) as the operator reads it."""
    change = config.reportable_change
    return (
        f"{_attribute_name(config.attribute)} every {config.min_interval}..{config.max_interval} s"
        + (f", change {change}" if change else "")
    )


def describe_meter_event(session: Session, event: Any) -> str | None:
    """One line for an event of the ESI's meter: a report configured or stopped (ZCL 2.5.7),
    fast poll granted (D.3.2.3.1.4); None for a fast poll asked again while it runs."""
    from zse.zcl.reporting import NO_REPORTING  # noqa: PLC0415

    if type(event).__name__ == "ReportingConfigured":
        destination, config = event.destination, event.config
        who = _peer(session, destination.address, destination.endpoint)
        if config.max_interval == NO_REPORTING:
            return f"{who} stopped reports of {_attribute_name(config.attribute)}"
        return f"{who} subscribed to {_subscription(config)}"
    if type(event).__name__ == "FastPollGranted" and event.new:
        return (
            f"{_peer(session, event.source_nwk)} granted fast poll: every {event.period} s "
            f"until {session.stamp(event.end_time)}"
        )
    return None


def _attribute_name(attribute: int) -> str:
    from zse.metering.wire import Metering  # noqa: PLC0415

    definition = Metering.attributes.get(attribute)
    return definition.name if definition is not None else f"0x{attribute:04X}"


def describe_readings(read: Callable[[int], int | None], *, demand: bool = True) -> str:
    """A meter's summation (and demand, status) as a display shows them, from ``read``
    (attribute id -> raw value or None) under the Formatting attributes it gives (D.3.2.2.4)."""
    from zse.errors import DecodeError  # noqa: PLC0415
    from zse.metering.formatting import Formatting  # noqa: PLC0415
    from zse.metering.protocol import FORMATTING_ATTRIBUTES  # noqa: PLC0415

    names = {
        _attribute_name(attribute): value
        for attribute in FORMATTING_ATTRIBUTES
        if (value := read(attribute)) is not None
    }
    formatting = Formatting.from_attributes(names)
    parts = []
    for label, attribute, show in (
        ("summation delivered", _SUMMATION, formatting.summation),
        *((("demand", _DEMAND, formatting.demand),) if demand else ()),
    ):
        raw = read(attribute)
        if raw is None:
            parts.append(f"{label} not known")
            continue
        try:
            parts.append(f"{label} {show(raw)}")
        except DecodeError as exc:
            parts.append(f"{label} raw {raw} ({exc})")
    status = read(_STATUS)
    if status is not None:
        parts.append(f"status 0x{status:02X}")
    return ", ".join(parts)


_STATES = {
    "joined": "is on the network",
    "ready": "is meter ready",
    "gone": "is de-provisioned",
}


@SHELL.command()
@click.argument("what", type=click.Choice(list(_STATES)))
@click.argument("eui64")
@click.option(
    "--timeout",
    type=FiniteFloat(0, LONGEST_WAIT),
    default=300.0,
    show_default=True,
    help="Give up after this many seconds (the command then fails).",
)
def wait(what: str, eui64: str, timeout: float) -> Action:
    """Wait until a device joined, is METER_READY (CBKE done) or de-provisioned."""

    async def run(session: Session) -> None:
        from zse.provisioning import LifecycleState  # noqa: PLC0415

        session.registry.get(eui64)  # unknown devices fail now

        def check() -> bool:
            record = session.registry.get(eui64)
            if what == "joined":
                return bool(record.joined)
            if what == "ready":
                return record.state is LifecycleState.METER_READY
            return record.state is LifecycleState.DEPROVISION_COMPLETE

        if not await session.wait_until(check, timeout):
            raise CommandError(f"{eui64} still not {what} after {timeout:g} s")
        session.say(
            f"{session.name(str(_ieee(session.registry.get(eui64).eui64)))} {_STATES[what]}"
        )

    return run


@SHELL.command()
@click.argument("seconds", type=FiniteFloat(0, LONGEST_WAIT))
def sleep(seconds: float) -> Action:
    """Let the ESI run for a while (scripts)."""

    async def run(session: Session) -> None:
        await asyncio.sleep(seconds)

    return run


@SHELL.command()
def status() -> Action:
    """The radio, the network and the registry in one glance."""

    async def run(session: Session) -> None:
        for line in describe_network(session.esi.app):
            session.say(line)
        counts: dict[str, int] = {}
        for record in session.registry.devices():
            counts[record.state.value] = counts.get(record.state.value, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "empty"
        session.say(f"registry: {summary}")

    return run


@SHELL.command(name="quit")
def quit_() -> Action:
    """Stop the ESI and exit."""

    async def run(session: Session) -> None:
        session.quit = True

    return run


SHELL.add_command(quit_, "exit")


def describe_network(app: Any) -> list[str]:
    """The coordinator and network, as the status line and the start banner print them."""
    node, network = app.state.node_info, app.state.network_info
    return [
        f"coordinator {node.ieee} (NWK 0x{int(node.nwk):04X})",
        f"network: PAN 0x{int(network.pan_id):04X}, extended PAN {network.extended_pan_id}, "
        f"channel {network.channel}",
    ]


# -- running ------------------------------------------------------------------------------------


async def run_esi(  # noqa: PLR0912, PLR0915 - start, run and stop, in order
    config: EsiConfig,
    *,
    credentials: Sequence[Any],
    lines: AsyncIterator[str] | None,
    script: bool = True,
    out: Out = print,
    err: Out | None = None,
    app_factory: Any = None,
    library_config: dict[str, Any] | None = None,
    clock: Callable[[], int] | None = None,
    stop: asyncio.Event | None = None,
    attach: Callable[[Any], Awaitable[Callable[[], Awaitable[None]]]] | None = None,
) -> int:
    """Start the radio and the ESI, apply ``config``, then run ``lines`` (or, with
    ``lines=None``, serve until ``stop`` is set); returns the exit status. ``attach(esi)``
    (``zse mqtt``, #17) runs once the ESI started, before the configuration's devices and
    prices are applied (so that it sees their events), and returns what to await on the way
    out, before the ESI stops. An error that ends the run is one ``error:`` line to ``err``
    (standard error by default)."""
    from zse.cli._radio import (  # noqa: PLC0415
        RadioOptions,
        RadioStartError,
        open_application,
        transport_for,
    )
    from zse.provisioning.registry import HanRegistry  # noqa: PLC0415
    from zse.roles.esi import EnergyServiceInterface  # noqa: PLC0415
    from zse.time.service import system_clock  # noqa: PLC0415
    from zse.zcl.se_endpoint import SE_ENDPOINT_ID  # noqa: PLC0415

    fail = err or _stderr
    factory = app_factory or open_application
    database = config.database or Path(DEFAULT_DATABASE)
    options = RadioOptions(
        radio=config.radio,
        network=config.network,
        zigpy_database=str(database.with_name(database.stem + "-zigpy.db")),
        library_config=library_config or {},
        meter=config.meter is not None,
        mirrors=config.mirrors,
        prepayment=config.prepayment is not None,
    )
    radio = config.radio.radio or "radio"
    where = "the simulated air" if radio == "sim" else config.radio.device or "the factory"
    out(f"starting the {radio} on {where}...")
    try:
        app = await factory(options)
    except ConfigError as exc:
        fail(f"error: {exc}")
        return 2
    except RadioStartError as exc:
        fail(f"error: {exc}")
        return 1
    clock = clock or system_clock
    registry = None
    esi = None
    session = None
    detach: Callable[[], Awaitable[None]] | None = None
    try:
        mismatch = _credentials_mismatch(credentials, app.state.node_info.ieee)
        if mismatch:
            fail(f"error: {mismatch}")
            return 2
        registry = await HanRegistry.open(database)
        esi = EnergyServiceInterface(
            app,
            credentials=credentials,
            registry=registry,
            clock=clock,
            permit_seconds=config.permit_seconds,
            time_zone=config.time_zone,
            meter=(
                False
                if config.meter is None
                else {
                    "formatting": config.meter,
                    "demand": config.meter_demand,
                    "supply": config.meter_supply,
                    "freeze_time": config.meter_freeze_time,
                }
            ),
            mirrors=config.mirrors,
            keep_alive=config.keep_alive,
            aps_ack=config.aps_ack,
            prepayment=(
                False
                if config.prepayment is None
                else {"config": config.prepayment, "codes": config.prepayment_codes}
            ),
        )
        await esi.start()
        session = Session(esi, config, out, clock)
        if attach is not None:
            # first, before the config (its sends reach what is attached) and before any
            # other listener: the reports and confirmations the ESI recorded and never told
            # (it was killed) are told to the listeners there when the first one comes
            detach = await attach(esi)
        esi.on_event(session.on_event)
        if esi.meter is not None:
            esi.meter.on_event(session.on_meter_event)
        for line in describe_network(app):
            out(line)
        out(f"registry: {database} ({counted(len(registry.devices()), 'device')})")
        if config.interpan:
            transport = await transport_for(app, endpoint=SE_ENDPOINT_ID, register=False)
            await esi.serve_interpan(transport)
            out("inter-PAN: answering Get Current Price")
        configured = await session.apply_config()
        out("ESI running" + ("" if lines is None else " (type help for the commands)"))
        if not configured and script and lines is not None:
            out("stopping: the configuration could not be applied in full")
            return 1
        if lines is None:
            await (stop or asyncio.Event()).wait()
            return 0
        return await session.run_commands(lines, script=script)
    finally:
        if detach is not None:
            await detach()
        if session is not None:
            await session.close()
        if esi is not None:
            await esi.stop()
        if registry is not None:
            await registry.close()
        with contextlib.suppress(Exception):
            await app.shutdown()
        out("ESI stopped")


def _credentials_mismatch(credentials: Sequence[Any], ieee: Any) -> str | None:
    """Why the credentials cannot serve this radio (their subject must be its EUI-64)."""
    own = bytes(ieee)[::-1]
    for creds in credentials:
        if creds.eui64 != own:
            subject = ":".join(f"{b:02x}" for b in creds.eui64)
            return (
                f"the suite {creds.suite.id} credentials are for {subject} but this radio is "
                f"{ieee}: issue credentials for it (zse cert issue --eui64 {ieee})"
            )
    return None


def load_credentials(paths: Iterable[Path]) -> list[Any]:
    """The ESI's CBKE credentials; :class:`ConfigError` for a missing, unreadable or invalid
    file, or two files for one suite."""
    from zse.cbke.credentials import Credentials  # noqa: PLC0415
    from zse.errors import DecodeError  # noqa: PLC0415

    found: list[Any] = []
    for path in paths:
        try:
            creds = Credentials.load(path)
        except DecodeError as exc:
            raise ConfigError(f"credentials {path}: {exc}") from None
        if any(c.suite.id == creds.suite.id for c in found):
            raise ConfigError(f"credentials {path}: a second file for suite {creds.suite.id}")
        found.append(creds)
    if not found:
        raise ConfigError(
            "the ESI needs CBKE credentials: --credentials FILE (from your CA, or "
            "`zse cert issue` for test devices) or [esi] credentials in the configuration"
        )
    return found


async def _stdin_lines(interactive: bool) -> AsyncIterator[str]:
    """Lines from stdin, read by a daemon thread (so a pending read never blocks exit). On a
    terminal the thread prompts only once the line before has been run and answered (it
    prompted at once: the prompt came before the answer)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    wanted = threading.Semaphore(0)  # released each time the next line is asked for

    def post(line: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        except RuntimeError:  # the loop is closed: the run ended (a script's failure), no one reads
            return False
        return True

    def reader() -> None:
        while True:
            try:
                if interactive:
                    wanted.acquire()
                line = input(PROMPT) if interactive else sys.stdin.readline()
            except (EOFError, KeyboardInterrupt, OSError, ValueError):
                line = ""
            if not interactive and line == "":
                post(None)
                return
            if not post(line):
                return

    thread = threading.Thread(target=reader, name="zse-esi-stdin", daemon=True)
    thread.start()
    while True:
        wanted.release()
        with _operator_time():
            line = await queue.get()
        if line is None:
            return
        yield line


async def _file_lines(lines: list[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _echo_err(line: str) -> None:
    click.echo(line, err=True)


def _fail(message: str) -> NoReturn:
    fail(message, 2)


def _factory(spec: str | None) -> Any:
    if spec is None:
        return None
    module, _, attribute = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        _fail(f"--app-factory {spec}: {exc}")


def _operator_time() -> contextlib.AbstractContextManager[None]:
    """While waiting for the operator: on the simulator's virtual clock, real time passes
    (devices join, events arrive, as on a stick); elsewhere nothing changes."""
    real_time = getattr(asyncio.get_running_loop(), "real_time", None)
    return real_time() if real_time is not None else contextlib.nullcontext()


@click.command()
@radio_options([*RADIOS, "sim"], required=False)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="The ESI's TOML file: [radio], [network], [esi], devices, groups, prices "
    "(examples/esi.toml; the options given here win).",
)
@click.option(
    "--database",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"The HAN registry (SQLite; default {DEFAULT_DATABASE}; with --radio sim a "
    "temporary one).",
)
@click.option(
    "--credentials",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The ESI's CBKE credentials JSON (repeat for suites 1 and 2).",
)
@click.option("--form", is_flag=True, help="Form a new network (every device must join again).")
@click.option(
    "--commands",
    "commands_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Run the commands of this file (a script), then stop.",
)
@click.option("--serve", is_flag=True, help="Read no commands; run until Ctrl-C or SIGTERM.")
@verbosity_options
@click.option("--app-factory", hidden=True, help="MODULE:ATTR of an async application factory.")
def esi(  # noqa: PLR0917 - click passes options positionally
    radio: str | None,
    device: str | None,
    baudrate: int | None,
    flow_control: str | None,
    start_timeout: float,
    config_path: Path | None,
    database: Path | None,
    credentials: tuple[Path, ...],
    form: bool,
    commands_path: Path | None,
    serve: bool,
    verbose: int,
    log_level: str | None,
    app_factory: str | None,
) -> None:
    """Run an ESI (meter, Trust Center) on a real EZSP or Z-Stack coordinator, or with
    --radio sim on the simulator with three simulated HAN devices (no stick needed).

    Environment: ZSE_RADIO, ZSE_DEVICE, ZSE_BAUDRATE, ZSE_FLOW_CONTROL, ZSE_START_TIMEOUT
    (and bellows' EZSP_DEVICE, EZSP_BAUDRATE, EZSP_FLOW_CONTROL with --radio ezsp); the command
    line wins over them, and they over the configuration file.
    """
    sim = None
    try:
        config = load_config(config_path) if config_path is not None else EsiConfig()
        radio = radio or config.radio.radio
        config = config.override(
            radio=radio,
            database=database,
            credentials=credentials,
            form=form or None,
            start_timeout=start_timeout,
            **bellows_environment(
                radio, device=device, baudrate=baudrate, flow_control=flow_control
            ),
        )
        factory = _factory(app_factory)
        if radio == "sim":
            from zse.cli._sim import SimulatedHan  # noqa: PLC0415

            sim = SimulatedHan(click.echo)
            factory = factory or sim.factory
        elif factory is None:
            if config.radio.radio is None or config.radio.device is None:
                raise ConfigError(
                    "give the radio and its serial port: --radio ezsp|znp --device PATH "
                    "(or [radio] type and device in the configuration; or --radio sim)"
                )
            from zse.cli._radio import application_class  # noqa: PLC0415

            application_class(config.radio.radio)  # a missing extra fails here, not later
        if sim is not None and config.credentials:
            # the simulator certifies its devices with its own CA and brings the ESI's
            # credentials, but a credentials file given is checked, not silently ignored
            load_credentials(config.credentials)
        creds = [sim.credentials] if sim is not None else load_credentials(config.credentials)
        for path in config.devices_csv:
            if not path.is_file():
                raise ConfigError(f"devices_csv {path}: no such file")
        if serve and commands_path is not None:
            raise ConfigError("--serve and --commands exclude each other")
        script_lines: list[str] | None = None
        if commands_path is not None:
            script_lines = read_text_file(commands_path, error=ConfigError).splitlines()
    except ConfigError as exc:
        _fail(str(exc))
    configure_logging(verbose, log_level)
    sys.exit(_session(config, creds, factory, sim, script_lines=script_lines, serve=serve))


def _session(
    config: EsiConfig,
    credentials: list[Any],
    factory: Any,
    sim: Any,
    *,
    script_lines: list[str] | None,
    serve: bool,
) -> int:
    """Run the ESI session of the command line; returns the exit status."""
    interactive = script_lines is None and not serve and sys.stdin.isatty()
    workdir = None
    if sim is not None and config.database is None:  # a fresh HAN each time: a temporary one
        workdir = tempfile.TemporaryDirectory(prefix="zse-esi-sim-")
        config = dataclasses.replace(config, database=Path(workdir.name) / DEFAULT_DATABASE)

    async def main() -> int:
        lines: AsyncIterator[str] | None
        if serve:
            lines = None
        elif script_lines is not None:
            lines = _file_lines(script_lines)
        else:
            lines = _stdin_lines(interactive)
        stop = asyncio.Event()
        if serve:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
        try:
            with _operator_time() if serve else contextlib.nullcontext():  # all of it: real time
                return await run_esi(
                    config,
                    credentials=credentials,
                    lines=lines,
                    script=not interactive,
                    out=click.echo,
                    err=_echo_err,
                    app_factory=factory,
                    stop=stop,
                    clock=sim.clock if sim is not None else None,
                )
        finally:
            if sim is not None:
                await sim.close()

    try:
        if sim is None:
            return asyncio.run(main())
        from zse.sim import run  # noqa: PLC0415

        return run(main())
    except KeyboardInterrupt:
        return 0
    finally:
        if workdir is not None:
            workdir.cleanup()
