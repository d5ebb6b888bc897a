"""``zse mqtt``: an ESI on an MQTT broker (issue #17; topics and commands: docs/mqtt.md).

``zse mqtt --broker mqtt://HOST:PORT --sim [--speed 60]`` runs the bridge over a simulated HAN:
the ESI as meter (the demo's household load: a base load, the thermostat's air conditioner and
the water heater) with the simulated in-home display, thermostat and load control device of
``zse esi --radio sim``, provisioned at start by their install codes; time is virtual and runs
``--speed`` times the real clock, so a day of readings takes minutes. ``--role`` chooses what
is bridged: ``esi`` (the default), ``han`` (the HAN devices, :class:`zse.mqtt.han.HanBridge`)
or ``both`` (the devices under ``<base>/han``, client id ``<client id>-han``). ``--broker`` or the
``[mqtt]`` table of ``--config`` names the broker. ``zse mqtt --config esi.toml [--radio
sim]`` bridges the ESI of ``zse esi --config esi.toml --serve`` instead. Errors are one
line; a usage error exits 2, a broker or runtime error 1; SIGTERM and Ctrl-C stop cleanly
(``offline`` is published first).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import logging
import signal
import ssl
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, NoReturn

import click

from zse._files import read_text_file, warn_if_shared
from zse.cli._errors import unexpected
from zse.cli._types import FiniteFloat, PlainInt
from zse.config import ConfigError, read_toml
from zse.errors import ZseError

__all__ = ["SimulatedEsi", "mqtt", "sim_bridges", "simulated_esi"]

#: The registry group of the simulated devices.
SIM_GROUP = "sim"


#: The simulated devices that are loads of the demo's household, by the demo's names.
_LOADS = {"ProgrammableThermostat": "thermostat", "LoadControlDevice": "heater"}
#: Each simulated device's registry label: the ESI's bridge names the Home Assistant device by
#: it, as the HAN devices' bridge does by the device's kind (one device, one name).
_LABELS = {
    "InHomeDisplay": "In-home display",
    "ProgrammableThermostat": "Thermostat",
    "LoadControlDevice": "Load control device",
}
#: Where the simulated household's summation is kept across runs on one ``--state-dir``.
_HOUSEHOLD = "sim.household"


@dataclass
class _Continued:
    """The simulated household's readings as the meter's source, its summation delivered
    raised by ``offset``: started again on a ``--state-dir``, the household counts from 0 but
    the meter restored its summation and refuses one that goes back (``SummationDecreased``:
    a delivered-only meter's register), so the meter goes on from the larger of the summation
    the household reached last time and the one the meter ``held()`` at its first reading."""

    household: Any
    offset: int
    held: Any = None  # () -> the meter's summation delivered, once the ESI exists
    begun: bool = False
    demand: bool = True  # False: no demand in the readings (fed later, or none at all)

    def readings(self, now: int) -> Any:
        readings = self.household.readings(now)
        if not self.demand:
            readings = dataclasses.replace(readings, instantaneous_demand=None)
        summation = readings.summation_delivered
        if summation is None:
            return readings
        if not self.begun and self.held is not None:
            self.offset = max(self.offset, (self.held() or 0) - summation)
            self.begun = True
        return dataclasses.replace(readings, summation_delivered=summation + self.offset)


@dataclass
class SimulatedEsi:
    """The ESI of ``--sim`` and what it runs on (see :func:`simulated_esi`)."""

    esi: Any
    registry: Any
    han: Any
    devices: dict[str, Any] = field(default_factory=dict)

    @property
    def displays(self) -> list[str]:
        return [eui for kind, eui in self.devices.items() if kind == "InHomeDisplay"]


@contextlib.asynccontextmanager
async def simulated_esi(
    directory: Path,
    *,
    seed: int = 1,
    out: Any = None,
    demand: bool | Literal["later"] = True,
    supply: bool = False,
) -> AsyncIterator[SimulatedEsi]:
    """An ESI with a meter on the simulator, its registry in ``directory``, and the simulated
    HAN of ``zse esi --radio sim`` provisioned (each device joins and runs CBKE on its own).
    ``demand=False``: a meter without InstantaneousDemand (SE D.3.2.2.1.1; its Metering
    server answers a read of it and Configure Reporting of it UNSUPPORTED_ATTRIBUTE), its
    summation as ever; ``"later"``: a meter with one not known until it is fed (``meter
    set --demand``: a read of it is UNSUPPORTED_ATTRIBUTE until then, its reporting taken).
    ``supply``: the meter has SE 1.2 supply control (``[meter] supply = true``)."""
    from zse.cli._sim import SIM_HAN, SimulatedHan  # noqa: PLC0415
    from zse.cli.demo import RATED_WATTS, meter_attributes, simulated_household  # noqa: PLC0415
    from zse.provisioning.registry import HanRegistry  # noqa: PLC0415
    from zse.roles.esi import EnergyServiceInterface  # noqa: PLC0415
    from zse.se.ids import MeteringAttribute  # noqa: PLC0415
    from zse.store import Batch  # noqa: PLC0415

    async with contextlib.AsyncExitStack() as cleanup:
        han = SimulatedHan(
            out or (lambda _text: None),
            seed=seed,
            heading="simulated HAN devices (provisioned now with their install codes; each "
            "joins and runs CBKE on its own):",
        )
        cleanup.push_async_callback(han.close)
        formatting = meter_attributes()
        network = SimpleNamespace(channel=None, pan_id=None)
        # with a meter, the simulated display follows it (as with `zse esi --radio sim`)
        app = await han.factory(SimpleNamespace(network=network, meter=formatting))
        cleanup.push_async_callback(app.shutdown)
        registry = await HanRegistry.open(directory / "han.db")
        cleanup.push_async_callback(registry.close)
        household = simulated_household(han.clock)
        kept = await registry.store.get(_HOUSEHOLD, "summation", 0)
        source = _Continued(household, kept, demand=demand is True)
        esi = EnergyServiceInterface(
            app,
            credentials=han.credentials,
            registry=registry,
            clock=han.clock,
            meter={
                "formatting": formatting,
                "source": source,
                "demand": demand is not False,
                "supply": supply,
            },
        )
        meter = esi.meter
        if meter is not None:
            source.held = lambda: meter.core.read(MeteringAttribute.CURRENT_SUMM_DELIVERED)

        async def keep_summation() -> None:
            reached = source.readings(han.clock()).summation_delivered
            await registry.store.commit(Batch().put(_HOUSEHOLD, "summation", reached))

        cleanup.push_async_callback(keep_summation)
        await esi.start()
        cleanup.push_async_callback(esi.stop)
        sim = SimulatedEsi(esi, registry, han)
        for (kind, eui, code), device in zip(SIM_HAN, han.devices, strict=True):
            if await _admissible(registry, eui):
                await esi.provision(eui, code, label=_LABELS[kind], groups=[SIM_GROUP])
            sim.devices[kind] = eui
            load = _LOADS.get(kind)  # the demo's household: its loads' rated power
            if load is not None:
                household.attach(device.role, rated_watts=RATED_WATTS[load])
        yield sim


async def _admissible(registry: Any, eui: str) -> bool:
    """Whether a simulated device is to be provisioned now. A registry kept from an earlier
    run (``--state-dir``) knows it: METER_READY there, it left that run's network (the
    simulated network starts anew), so it is admitted again; one de-provisioned stays out."""
    from zse.provisioning import LifecycleEvent, LifecycleState  # noqa: PLC0415
    from zse.provisioning.registry import RegistryError  # noqa: PLC0415

    try:
        state = registry.get(eui).state
    except RegistryError:
        return True
    if state is LifecycleState.METER_READY:
        await registry.transition(eui, LifecycleEvent.LEFT, "a new simulated network")
        return True
    return state in (LifecycleState.NEW, LifecycleState.PENDING_PROVISIONING)


def _settings(broker: str | None, config: Path | None, **given: Any) -> Any:
    """The [mqtt] settings: ``--config``'s table, ``--broker`` and the options over it."""
    try:
        return mqtt_settings(broker, config, table_optional=True, **given)
    except ConfigError as exc:
        _usage(str(exc))


def mqtt_settings(
    broker: str | None,
    config: Path | None,
    *,
    default_client_id: str | None = None,
    config_option: str = "--config",
    table_optional: bool = False,
    **given: Any,
) -> Any:
    """The ``[mqtt]`` table of the TOML file ``config``, ``broker`` (a URL) over its url and
    ``given`` over the rest, checked: :class:`~zse.config.ConfigError` names what is wrong
    (``config_option``: the command's option naming ``config``, which the user, password
    and TLS files go in: never on the command line). ``table_optional``: ``config`` is not
    the broker's file alone (an ESI's configuration), so with ``broker`` it needs no table."""
    from zse.mqtt.core import MqttConfigError, parse_settings, parse_url  # noqa: PLC0415

    table: dict[str, Any] = {}
    if config is not None:
        document = read_toml(read_text_file(config, error=ConfigError), str(config))
        table = document.get("mqtt", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{config}: mqtt is not a table ([mqtt])")
        if "mqtt" not in document and not (table_optional and broker is not None):
            also = ", or give --broker mqtt://HOST:PORT" if table_optional else ""
            raise ConfigError(f"{config}: no [mqtt] table{also}")
    if broker is not None:
        where = f"username and password in the [mqtt] table of {config_option} FILE"
        try:
            parse_url(broker, user=where)
        except MqttConfigError as exc:
            raise ConfigError(str(exc)) from None
        table = {**table, "url": broker}
    table.update({k: v for k, v in given.items() if v is not None})
    if default_client_id is not None:
        table.setdefault("client_id", default_client_id)
    if "url" not in table:
        raise ConfigError("give --broker mqtt://HOST:PORT or a config with mqtt.url")
    try:
        settings = parse_settings(table)
    except MqttConfigError as exc:
        raise ConfigError(str(exc)) from None
    _check_tls_files(settings)
    return settings


def _check_tls_files(settings: Any) -> None:
    """The TLS files loaded once now, so that a missing or wrong one is a
    :class:`~zse.config.ConfigError` naming it, not a connection retried for ever with the
    broker blamed."""
    if not settings.tls:
        return
    from zse.mqtt.core import MqttConfigError, refuse_encrypted_key  # noqa: PLC0415

    context = ssl.create_default_context()
    if settings.ca_file is not None:
        with _tls_file("ca_file", settings.ca_file):
            context.load_verify_locations(cafile=settings.ca_file)
    if settings.cert_file is not None:
        with _tls_file("cert_file", settings.cert_file):
            refuse = refuse_encrypted_key(settings.key_file or settings.cert_file)
            try:
                context.load_cert_chain(settings.cert_file, settings.key_file, password=refuse)
            except MqttConfigError as exc:  # encrypted
                raise ConfigError(str(exc)) from None
    if settings.key_file is not None:
        warn_if_shared(settings.key_file, "mqtt.key_file", logging.getLogger(__name__))


@contextlib.contextmanager
def _tls_file(key: str, path: str) -> Iterator[None]:
    """A :class:`~zse.config.ConfigError` naming ``mqtt.<key>`` for a file that cannot be
    loaded."""
    try:
        yield
    except ssl.SSLError as exc:  # an OSError too: first
        raise ConfigError(f"mqtt.{key}: {path}: not usable ({exc.reason or exc})") from None
    except OSError as exc:
        raise ConfigError(f"mqtt.{key}: {exc.filename or path}: {exc.strerror or exc}") from None


def _usage(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def sim_bridges(sim: SimulatedEsi, settings: Any, role: str) -> list[Any]:
    """The bridges of ``zse mqtt --sim --role ROLE`` over ``sim`` (not started): the ESI's,
    the HAN devices' (:class:`zse.mqtt.han.HanBridge`) or both, the devices' then under
    ``<base>/han`` with the client id ``<client id>-han``."""
    from zse.mqtt.bridge import MqttBridge, meter_formatting  # noqa: PLC0415
    from zse.mqtt.han import HanBridge  # noqa: PLC0415

    store = sim.registry.store
    bridges: list[Any] = []
    # both bridges describe each device alike in Home Assistant: by its kind, through the meter
    kinds = {device.role.name: device.role.device_type for device in sim.han.devices}
    if role in ("esi", "both"):
        bridges.append(MqttBridge(sim.esi, settings, store=store, kinds=kinds))
    if role in ("han", "both"):
        if role == "both":
            settings = dataclasses.replace(
                settings,
                base_topic=f"{settings.base_topic}/han",
                client_id=f"{settings.client_id}-han",
            )
        meter = sim.esi.meter
        unit = meter_formatting(meter.core.read).unit_of_measure if meter is not None else None
        roles = [device.role for device in sim.han.devices]
        # through the meter when its bridge announces it (else Home Assistant would make an
        # empty device of it)
        via = str(sim.esi.app.state.node_info.ieee) if role == "both" else None
        bridges.append(HanBridge(roles, settings, store=store, unit_of_measure=unit, meter=via))
    return bridges


async def _serve(settings: Any, seed: int, directory: Path, role: str = "esi") -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)

    def say(text: str) -> None:
        click.echo(text)

    async with simulated_esi(directory, seed=seed, out=say) as sim:
        bridges = sim_bridges(sim, settings, role)
        for bridge in bridges:
            await bridge.start()
        try:
            where = " and ".join(f"{b.topics.base}/" for b in bridges)
            say(f"bridge to mqtt://{settings.host}:{settings.port} under {where} (Ctrl-C stops)")
            await asyncio.Event().wait()
        finally:
            for bridge in reversed(bridges):
                await bridge.stop()


def _over_radio(settings: Any, path: Path, radio: str | None, shell: bool = False) -> int:
    """The bridge on the ESI of ``zse esi --config path --serve`` (its radio, its registry);
    ``radio`` overrides ``[radio] type``: ``sim`` is the simulator of ``zse esi --radio sim``,
    whose devices join once provisioned (by an MQTT ``provision`` command, say). With
    ``shell``, the commands of ``zse esi``'s shell are read from stdin until its end (or
    ``quit``), and what they send reaches the broker too. Returns the exit status."""
    from zse.cli.esi import _stdin_lines, load_credentials, run_esi  # noqa: PLC0415
    from zse.config import ConfigError, load_config  # noqa: PLC0415
    from zse.mqtt.bridge import MqttBridge  # noqa: PLC0415

    sim: Any = None
    try:
        config = load_config(path).override(radio=radio)
        if config.radio.radio == "sim":
            from zse.cli._sim import SimulatedHan  # noqa: PLC0415

            sim = SimulatedHan(click.echo)
            factory, credentials = sim.factory, [sim.credentials]
        else:
            if config.radio.radio is None or config.radio.device is None:
                raise ConfigError(f"{path}: [radio] needs type and device (or --radio sim)")
            from zse.cli._radio import application_class  # noqa: PLC0415

            application_class(config.radio.radio)  # a missing radio extra fails here
            factory, credentials = None, load_credentials(config.credentials)
    except ConfigError as exc:
        _usage(str(exc))

    async def attach(esi: Any) -> Any:
        bridge = MqttBridge(esi, settings, store=esi.registry.store)
        await bridge.start()
        return bridge.stop

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):  # the shell waits on stdin: cancelled
            loop.add_signal_handler(sig, task.cancel if shell else stop.set)
        real_time = getattr(loop, "real_time", None)  # the simulator: as on a stick
        try:
            with real_time() if real_time is not None else contextlib.nullcontext():
                return await run_esi(
                    config,
                    credentials=credentials,
                    lines=_stdin_lines(interactive=False) if shell else None,
                    script=False,
                    out=click.echo,
                    err=lambda line: click.echo(line, err=True),
                    app_factory=factory,
                    stop=stop,
                    clock=sim.clock if sim is not None else None,
                    attach=attach,
                )
        except asyncio.CancelledError:  # SIGINT / SIGTERM with --shell: stopped cleanly
            return 0
        finally:
            if sim is not None:
                await sim.close()

    with contextlib.ExitStack() as stack:
        if sim is not None and config.database is None:  # a fresh HAN each time
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="zse-mqtt-"))
            config = dataclasses.replace(config, database=Path(directory) / "zse-esi.db")
        if sim is None:
            return asyncio.run(main())
        from zse.sim import run  # noqa: PLC0415

        return run(main())


@click.command()
@click.option("--broker", metavar="URL", help="mqtt://HOST[:PORT] or mqtts:// (over mqtt.url).")
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A TOML config with an [mqtt] table (the `zse esi` config plus [mqtt]).",
)
@click.option("--sim", is_flag=True, help="Run the bridge over the demo's simulated HAN.")
@click.option(
    "--radio",
    type=click.Choice(["ezsp", "znp", "sim"]),
    help="With --config: the radio (over [radio] type); sim: the simulated HAN of "
    "`zse esi --radio sim`.",
)
@click.option(
    "--speed",
    type=FiniteFloat(0.1, 10_000),
    default=1.0,
    show_default=True,
    help="With --sim: virtual seconds per real second.",
)
@click.option(
    "--seed", type=PlainInt, default=1, show_default=True, help="With --sim: the HAN's seed."
)
@click.option(
    "--role",
    type=click.Choice(["esi", "han", "both"]),
    default="esi",
    show_default=True,
    help="With --sim: bridge the ESI, the HAN devices, or both (the devices under <base>/han).",
)
@click.option(
    "--shell",
    is_flag=True,
    help="With --config: also read `zse esi` shell commands from stdin (until its end or quit).",
)
@click.option("--client-id", help="The MQTT client id (over mqtt.client_id; default zse).")
@click.option("--base-topic", help="The base topic (over mqtt.base_topic; default zse).")
@click.option(
    "--send-events/--no-send-events",
    default=None,
    help="Publish the ESI's own sends (LoadControlSent...) on the meter's topics (over "
    "mqtt.send_events; default on). Off for a gateway that serves only a headend.",
)
@click.option(
    "--event-batches/--no-event-batches",
    default=None,
    help="Publish the devices' events waiting together as one message on "
    "<base>/bridge/events (over mqtt.event_batches; default off). On for a gateway that "
    "serves only a headend (ADR 0027).",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="With --sim: keep the registry, outbox and executed commands here (default: a "
    "temporary directory).",
)
def mqtt(  # noqa: PLR0917 - click passes options positionally
    broker: str | None,
    config: Path | None,
    sim: bool,
    radio: str | None,
    speed: float,
    seed: int,
    role: str,
    shell: bool,
    client_id: str | None,
    base_topic: str | None,
    send_events: bool | None,
    event_batches: bool | None,
    state_dir: Path | None,
) -> None:
    """Bridge an ESI to an MQTT broker: readings and events out, Home Assistant discovery,
    commands in (docs/mqtt.md)."""
    if importlib.util.find_spec("aiomqtt") is None:
        click.echo('error: zse mqtt needs the mqtt extra: pip install "zigpy-se[mqtt]"', err=True)
        sys.exit(1)
    settings = _settings(
        broker,
        config,
        client_id=client_id,
        base_topic=base_topic,
        send_events=send_events,
        event_batches=event_batches,
    )
    if sim and shell:
        _usage("--shell goes with --config (the ESI of `zse esi`), not --sim")
    if not sim:
        if role != "esi":
            _usage("--role han/both needs --sim (the HAN device role of a stick is `zse han`)")
        if config is None:
            _usage("give --sim, or --config FILE: the `zse esi` configuration with [mqtt]")
        sys.exit(_over_radio(settings, config, radio, shell))
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zse-mqtt-")))
        else:
            try:
                state_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                _usage(f"cannot use {state_dir}: {exc.strerror}")
            directory = state_dir
        try:
            from zse.sim import PacedLoop  # noqa: PLC0415

            with asyncio.Runner(loop_factory=lambda: PacedLoop(speed)) as runner:
                runner.run(_serve(settings, seed, directory, role))
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass
        except Exception as exc:  # one line, not a traceback (that is at -vv)
            logging.getLogger("zse.cli").debug("the command failed", exc_info=exc)
            # zse's own errors say what went wrong; another's class name tells what it is,
            # and where it was raised (a CI log of one line once said only "KeyError: 1")
            said = str(exc) if isinstance(exc, ZseError) else unexpected(exc)
            click.echo(f"error: {said}", err=True)
            sys.exit(1)
