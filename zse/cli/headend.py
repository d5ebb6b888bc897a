"""``zse headend``: the retailer HAN service (issue #18, docs/headend.md).

``zse headend init DIR`` writes a test CA, the server's certificate and key, two retailers'
client certificates and keys (``retailer-a.pem`` / ``retailer-a-key.pem``, ``retailer-b...``)
and ``headend.toml``. ``zse headend serve --config DIR/headend.toml --sim N --port P`` serves
the API (OpenAPI at ``/openapi.json``) and the portal (``/``) over mutual TLS, over ``N``
simulated meters whose HAN devices are printed at start (MAC address and install code, as on
their labels); time on the simulator runs ``--speed`` times the real clock. ``zse headend serve
--config ... --meter ID ... [--database URL] [--broker URL]`` serves meters that are MQTT
gateways through the work queue (docs/headend.md, "Utility scale"). Errors are one line: a
usage or configuration error exits 2, a runtime error 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from zse._files import FileTooLarge, read_text_bounded
from zse._words import counted
from zse.cli._errors import fail, unexpected
from zse.cli._files import OutputError
from zse.cli._types import FiniteFloat, PlainInt, PlainIntRange

if TYPE_CHECKING:
    from zse.headend.pki import HeadendConfig

__all__ = ["headend"]


def _fail(message: str, code: int, fault: BaseException | None = None) -> NoReturn:
    """Say ``message`` in one line and exit ``code``; an unexpected ``fault``'s traceback goes
    to the debug log (``-vv``)."""
    if fault is not None:
        logging.getLogger("zse.cli").debug("the command failed", exc_info=fault)
    fail(message, code)


def _check_database(database: str | None) -> None:
    """A ``--database`` that is a PostgreSQL URL is parsed before anything starts: a malformed
    one is a usage error (exit 2, the URL never repeated: it may hold a password)."""
    from zse.errors import StoreError  # noqa: PLC0415
    from zse.store_engine import is_postgres  # noqa: PLC0415

    if database is None or not is_postgres(database):
        return
    try:
        from zse.store_postgres import parse_url  # noqa: PLC0415
    except ImportError:  # no asyncpg: opening the store says so, in one line
        return
    try:
        parse_url(database)
    except StoreError as exc:
        _fail(f"--database: {exc}", 2)


class _BrokerUnreachable(Exception):
    """The broker not reached within ``--broker-wait`` (said in one line)."""


#: ``--topic-prefix``, of ``serve`` (over gateways) and ``worker``.
_TOPIC_PREFIX = click.option(
    "--topic-prefix",
    default="zse/meters",
    show_default=True,
    help="Meter M is the bridge whose base topic is PREFIX/M.",
)


#: ``--mqtt-config``, of ``serve`` (over gateways) and ``worker``.
_MQTT_CONFIG = click.option(
    "--mqtt-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A TOML file whose [mqtt] table (as `zse mqtt --config` takes) gives the broker's"
    " url, username, password, ca_file, cert_file and key_file; --broker is over its url,"
    " the client id is the worker's.",
)


#: ``--retention-days``, of the workers (``worker``, and ``serve``'s over gateways).
_RETENTION = click.option(
    "--retention-days",
    type=FiniteFloat(min=0),
    default=7.0,
    show_default=True,
    help="Days a finished job is kept after its last change (0: for ever).",
)


def _retention(days: float) -> float | None:
    """The retention in seconds (None: for ever)."""
    return days * 86400 if days else None


@click.group()
def headend() -> None:
    """The retailer HAN service: provisioning API and portal over mutual TLS."""


@headend.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--port",
    type=PlainIntRange(0, 65535),
    default=8443,
    show_default=True,
    help="The [server] port written into headend.toml (0: a free port at each serve).",
)
@click.option("--host", "hosts", multiple=True, help="Another name for the server certificate.")
def init(directory: Path, port: int, hosts: tuple[str, ...]) -> None:
    """Write a test PKI and headend.toml into DIRECTORY (never overwrites)."""
    from zse.headend.pki import HeadendConfigError, init_directory  # noqa: PLC0415

    try:
        written = init_directory(directory, port=port, hosts=hosts)
    except HeadendConfigError as exc:
        _fail(str(exc), 2)
    except OSError as exc:  # the file's name when the system gave it (not a full disk's)
        _fail(f"cannot write {exc.filename or directory}: {exc.strerror or exc}", 2)
    for path in written:
        click.echo(f"wrote {path}")


@headend.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="headend.toml (zse headend init writes one).",
)
@click.option("--sim", "meters", type=PlainIntRange(1, 64), help="Serve N simulated meters.")
@click.option(
    "--esi",
    "esi_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve the ESI of this `zse esi` configuration (its stick) as the one meter.",
)
@click.option(
    "--radio",
    type=click.Choice(["ezsp", "znp", "sim"]),
    help="With --esi: the radio (over [radio] type); sim: `zse esi --radio sim`'s HAN.",
)
@click.option(
    "--port",
    type=PlainIntRange(0, 65535),
    help="Listen on this port instead of headend.toml's [server] port, the signed-request "
    "listener on the next one (0: a free port for each).",
)
@click.option(
    "--speed",
    type=FiniteFloat(min=0.1),
    default=1.0,
    show_default=True,
    help="With --sim: virtual seconds per real second.",
)
@click.option(
    "--seed",
    type=PlainInt,
    default=1,
    show_default=True,
    help="With --sim: same seed, same keys and the same run.",
)
@click.option(
    "--meter",
    "meter_ids",
    multiple=True,
    help="A meter that is an MQTT gateway (its bridge at PREFIX/ID); repeat for each.",
)
@click.option(
    "--meters",
    "meters_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file of gateway meter ids, one a line (# comments).",
)
@click.option(
    "--database",
    help="With gateways: the store, postgresql://user@host:port/db?schema=name or an SQLite "
    "file (over [server] database); the work queue goes beside it.",
)
@click.option(
    "--broker", help="With gateways: run a headend worker here too, on this mqtt:// broker."
)
@_MQTT_CONFIG
@_TOPIC_PREFIX
@click.option(
    "--broker-wait",
    type=FiniteFloat(min=0.1),
    default=10.0,
    show_default=True,
    help="With --broker: seconds to reach it at start before giving up.",
)
@_RETENTION
@click.option(
    "--worker-id",
    help="With --broker: the name of the worker in this process (keep it stable: it names "
    "its MQTT session; default serve-host-pid).",
)
def serve(  # noqa: PLR0917 - click passes options positionally
    config_path: Path,
    meters: int | None,
    esi_path: Path | None,
    radio: str | None,
    port: int | None,
    speed: float,
    seed: int,
    meter_ids: tuple[str, ...],
    meters_file: Path | None,
    database: str | None,
    broker: str | None,
    mqtt_config: Path | None,
    topic_prefix: str,
    broker_wait: float,
    retention_days: float,
    worker_id: str | None,
) -> None:
    """Serve the API and the portal over mutual TLS."""
    from zse.headend.pki import (  # noqa: PLC0415
        HeadendConfigError,
        load_config,
        server_context,
        signed_context,
    )
    from zse.sim import PacedLoop  # noqa: PLC0415

    try:  # the configuration first: a wrong one is the error to show, whatever else is wrong
        config = load_config(config_path)
        server_context(config)  # the TLS files are checked before anything starts
        if config.signed_port is not None:
            signed_context(config)
    except HeadendConfigError as exc:
        _fail(str(exc), 2)
    gateways = _gateway_ids(meter_ids, meters_file)
    given = [
        name
        for name, value in (
            ("--sim", meters is not None),
            ("--esi", esi_path is not None),
            ("--meter", bool(meter_ids)),
            ("--meters", meters_file is not None),
        )
        if value
    ]
    ways = "give --sim N (simulated meters), --esi FILE (the ESI of a zse esi config) or "
    ways += "--meter ID / --meters FILE (meters as MQTT gateways)"
    if [meters is not None, esi_path is not None, bool(gateways)].count(True) != 1:
        if not given:
            _fail(ways, 2)
        named = " and ".join([", ".join(given[:-1]), given[-1]])
        _fail(f"{named} do not go together: {ways}", 2)
    if radio is not None and esi_path is None:
        _fail("--radio goes with --esi", 2)
    if not gateways and (database is not None or broker is not None or mqtt_config is not None):
        _fail(
            "--database and --broker go with --meter / --meters (meters as gateways), and"
            " so does --mqtt-config",
            2,
        )
    if esi_path is not None:
        sys.exit(_over_esi(config, esi_path, radio, port))
    if gateways:
        _check_database(database)
        where = database or str(config.database)
        options = (port, broker_wait, _retention(retention_days), worker_id)
        sys.exit(
            _over_gateways(
                config, gateways, where, broker, topic_prefix, *options, mqtt_config=mqtt_config
            )
        )
    assert meters is not None
    try:
        with asyncio.Runner(loop_factory=lambda: PacedLoop(speed)) as runner:
            runner.run(_serve(config, meters=meters, port=port, seed=seed))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    except OutputError:  # standard output: said as every command says it (exit status 2)
        raise
    except Exception as exc:  # one line, not a traceback (that is at -vv)
        _fail(_said(exc), 1, exc)


def _said(exc: Exception) -> str:
    """``exc`` in words: zse's own errors say what and where (a port in use), another's
    class name tells what it is, and where it was raised (:func:`~zse.cli._errors.
    unexpected`)."""
    from zse.errors import ZseError  # noqa: PLC0415

    return str(exc) if isinstance(exc, ZseError) else unexpected(exc)


async def _serve(cfg: HeadendConfig, *, meters: int, port: int | None, seed: int) -> None:
    from zse.headend.sim import simulated_headend  # noqa: PLC0415

    async with simulated_headend(cfg, meters=meters, seed=seed, port=port) as running:
        click.echo(
            f"serving https://{cfg.host}:{running.port}/ (API: /api/v1, OpenAPI: /openapi.json)"
        )
        if running.signed_port is not None:
            click.echo(f"signed requests (RFC 9421): https://{cfg.host}:{running.signed_port}/")
        click.echo("simulated HAN devices (register them with their install codes):")
        for line in running.meters.labels():
            click.echo(f"  {line}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            click.echo("stopping")


def _gateway_ids(given: tuple[str, ...], path: Path | None) -> list[str]:
    """The gateway meter ids of ``--meter`` and ``--meters FILE`` (one a line, ``#``
    comments), each checked (it is an MQTT topic level)."""
    ids = list(given)
    if path is not None:
        try:
            text = read_text_bounded(path, error=FileTooLarge)
        except OSError as exc:
            _fail(f"{path}: {exc.strerror}", 2)
        except UnicodeDecodeError:
            _fail(f"{path}: not UTF-8 text", 2)
        except FileTooLarge as exc:
            _fail(str(exc), 2)
        ids += [line.split("#", 1)[0].strip() for line in text.splitlines()]
        ids = [i for i in ids if i]
        if not ids:
            _fail(f"{path}: no meter ids", 2)
    for meter in ids:
        if not 0 < len(meter) <= 64 or any(c in meter for c in "/+#") or not meter.isprintable():
            _fail(f"meter {meter[:70]!r}: 1-64 printable characters, no / + #", 2)
    return sorted(set(ids))


def _over_gateways(  # noqa: PLR0917 - the command's options
    cfg: HeadendConfig,
    meters: list[str],
    database: str,
    broker: str | None,
    prefix: str,
    port: int | None,
    wait: float,
    retention: float | None,
    worker_id: str | None,
    *,
    mqtt_config: Path | None = None,
) -> int:
    """The headend over meter gateways through the work queue; returns the exit status."""
    import os  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from zse.errors import StoreError  # noqa: PLC0415

    settings = None
    name = worker_id or f"serve-{socket.gethostname()}-{os.getpid()}"
    if broker is not None or mqtt_config is not None:
        settings = _broker_settings(broker, mqtt_config, name)
    try:
        options = (port, name, wait, retention)
        asyncio.run(_serve_gateways(cfg, meters, database, settings, prefix, *options))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    except (StoreError, _BrokerUnreachable) as exc:
        _fail(str(exc), 1)
    except OutputError:  # standard output: said as every command says it (exit status 2)
        raise
    except Exception as exc:  # one line, not a traceback (that is at -vv)
        _fail(_said(exc), 1, exc)
    return 0


async def _serve_gateways(  # noqa: PLR0917 - the command's options
    cfg: HeadendConfig,
    meters: list[str],
    database: str,
    settings: Any,
    prefix: str,
    port: int | None,
    name: str,
    wait: float,
    retention: float | None,
) -> None:
    from zse.headend.gateway import GatewayLink  # noqa: PLC0415
    from zse.headend.run import start_gateway_headend  # noqa: PLC0415
    from zse.time.service import system_clock  # noqa: PLC0415

    link = None if settings is None else GatewayLink(settings, prefix=prefix)
    if link is not None:
        link.quiet = True  # until the broker is reached: the wait's outcome is said in one line
    running = await start_gateway_headend(
        cfg,
        meters,
        database=database,
        clock=system_clock,
        port=port,
        link=link,
        worker=name,
        retention=retention,
    )
    try:
        if link is not None:
            try:
                async with asyncio.timeout(wait):  # not wait_for (3.11, gh-86296)
                    await link.connected.wait()
            except TimeoutError:
                why = f": {link.last_error}" if link.last_error else ""
                raise _BrokerUnreachable(
                    f"broker {settings.host}:{settings.port} unreachable for {wait:g} s{why}"
                ) from None
            link.quiet = False
        gateways = counted(len(meters), "gateway meter")
        click.echo(f"serving https://{cfg.host}:{running.port}/ ({gateways})")
        if running.signed_port is not None:
            click.echo(f"signed requests (RFC 9421): https://{cfg.host}:{running.signed_port}/")
        queue = running.headend.queue
        assert queue is not None
        click.echo(f"work queue: {queue.where} (for zse headend worker --database)")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        click.echo("stopping")
    finally:
        await running.close()


def _over_esi(cfg: HeadendConfig, path: Path, radio: str | None, port: int | None) -> int:
    """The headend over the ESI of ``zse esi --config path`` (one meter, named by the ESI's
    EUI-64); returns the exit status."""
    from zse.cli._esi_host import run_beside_esi  # noqa: PLC0415
    from zse.config import ConfigError  # noqa: PLC0415
    from zse.headend.run import start_headend  # noqa: PLC0415
    from zse.headend.service import Meter  # noqa: PLC0415
    from zse.zcl.delivery import device_name  # noqa: PLC0415

    async def attach(esi: Any) -> Callable[[], Awaitable[None]]:
        if esi.registry is None:  # pragma: no cover - run_esi always gives one
            raise RuntimeError("the ESI has no registry")
        meter = Meter(device_name(esi.app.state.node_info.ieee), esi, esi.registry)
        running = await start_headend(cfg, [meter], clock=esi.clock, port=port)
        click.echo(f"serving https://{cfg.host}:{running.port}/ (meter {meter.id})")
        if running.signed_port is not None:
            click.echo(f"signed requests (RFC 9421): https://{cfg.host}:{running.signed_port}/")
        return running.close

    try:
        return run_beside_esi(path, radio, attach, out=click.echo, prefix="zse-headend-")
    except ConfigError as exc:
        _fail(str(exc), 2)


@headend.command()
@click.option(
    "--database",
    required=True,
    help="The headend's work queue: its store's PostgreSQL URL"
    " (postgresql://user@host:port/db?schema=name), or the SQLite file beside its store"
    " (NAME-queue.sqlite for NAME.sqlite; not the store's file).",
)
@click.option(
    "--broker",
    help="The meters' broker: mqtt://HOST[:PORT] or mqtts:// (or the url of --mqtt-config).",
)
@_MQTT_CONFIG
@click.option("--id", "worker_id", help="This worker's name (unique; default host-pid).")
@_TOPIC_PREFIX
@click.option(
    "--lease",
    type=FiniteFloat(min=1),
    default=120.0,
    show_default=True,
    help="Seconds a claimed job stays this worker's (longer than --timeout by more than 1).",
)
@click.option(
    "--timeout",
    type=FiniteFloat(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds a meter has to answer.",
)
@click.option(
    "--batch",
    type=PlainIntRange(1, 1000),
    default=16,
    show_default=True,
    help="Deliveries under way at once.",
)
@click.option(
    "--poll",
    type=FiniteFloat(min=0.01),
    default=1.0,
    show_default=True,
    help="Seconds between looks at an empty queue.",
)
@click.option(
    "--linger",
    type=FiniteFloat(0, 10),
    default=0.25,  # zse.headend.worker.LINGER (not imported before the command runs)
    show_default=True,
    help="Seconds answers and reports wait to be recorded together (group commit).",
)
@click.option(
    "--combine/--no-combine",
    default=True,
    show_default=True,
    help="Send a meter's deliveries claimed together as one batch command (the gateways'"
    " bridges must know batches); --no-combine: one command each.",
)
@_RETENTION
def worker(  # noqa: PLR0917 - click passes options positionally
    database: str,
    broker: str | None,
    mqtt_config: Path | None,
    worker_id: str | None,
    topic_prefix: str,
    lease: float,
    timeout: float,
    batch: int,
    poll: float,
    linger: float,
    combine: bool,
    retention_days: float,
) -> None:
    """Deliver the headend's queued sends and commands to meter gateways over MQTT, and
    record their devices' lifecycle (one of N workers)."""
    import os  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from zse.errors import StoreError  # noqa: PLC0415
    from zse.headend.worker import SEND_MARGIN  # noqa: PLC0415

    if lease <= timeout + SEND_MARGIN:
        _fail(
            f"--lease must be longer than --timeout by more than {SEND_MARGIN:g} s (a job's"
            " lease outlives its answer, and none is sent in its last second)",
            2,
        )
    _check_database(database)
    name = worker_id or f"{socket.gethostname()}-{os.getpid()}"
    settings = _broker_settings(broker, mqtt_config, name)
    try:
        retention = _retention(retention_days)
        options = (lease, timeout, batch, poll, linger, combine, retention)
        asyncio.run(_work(database, settings, name, topic_prefix, *options))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    except StoreError as exc:
        _fail(str(exc), 1)
    except OutputError:  # standard output: said as every command says it (exit status 2)
        raise
    except Exception as exc:  # one line, not a traceback (that is at -vv)
        _fail(unexpected(exc), 1, exc)


def _broker_settings(broker: str | None, mqtt_config: Path | None, name: str) -> Any:
    """The MQTT settings of worker ``name``: ``--mqtt-config``'s ``[mqtt]`` table (the
    broker's user, password and TLS files: never on the command line) with ``--broker`` over
    its url, parsed and checked as ``zse mqtt`` does; the client id is the worker's (its
    session). A wrong one exits 2, naming the key."""
    from zse.cli.mqtt import mqtt_settings  # noqa: PLC0415
    from zse.config import ConfigError  # noqa: PLC0415

    try:
        return mqtt_settings(
            broker,
            mqtt_config,
            config_option="--mqtt-config",
            client_id=f"zse-headend-{name}"[:64],
        )
    except ConfigError as exc:
        _fail(str(exc), 2)


async def _work(  # noqa: PLR0917 - the worker's options
    database: str,
    settings: Any,
    name: str,
    prefix: str,
    lease: float,
    timeout: float,
    batch: int,
    poll: float,
    linger: float,
    combine: bool,
    retention: float | None,
) -> None:
    from zse.headend.control import Control  # noqa: PLC0415
    from zse.headend.gateway import GatewayLink  # noqa: PLC0415
    from zse.headend.queue import open_queue  # noqa: PLC0415
    from zse.headend.roster import Roster  # noqa: PLC0415
    from zse.headend.worker import Worker  # noqa: PLC0415
    from zse.store_engine import is_postgres  # noqa: PLC0415

    made = not is_postgres(database) and not Path(database).exists()
    queue = await open_queue(database)
    if made:  # a mistyped path would otherwise be a queue of its own, silently
        click.echo(
            f"worker {name}: no work queue at {queue.where}: made a new, empty one (zse headend"
            " serve makes NAME-queue.sqlite beside its store NAME.sqlite)",
            err=True,
        )
    try:
        control = await Control.open(queue)
    except BaseException:
        await queue.close()
        raise
    try:
        roster = await Roster.open(queue)
    except BaseException:
        await queue.close()
        raise
    link = GatewayLink(settings, prefix=prefix, timeout=timeout, combine=combine)
    work = Worker(
        queue,
        link,
        owner=name,
        lease=lease,
        batch=batch,
        poll=poll,
        control=control,
        retention=retention,
        roster=roster,
        linger=linger,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await link.start()
    await work.start()
    try:
        await _first(link.connected.wait(), stop.wait())
        if link.connected.is_set():
            click.echo(f"worker {name}: queue {queue.where}, meters at {prefix}/<meter>")
        await stop.wait()
    finally:
        await work.stop()
        await link.close()
        await queue.close()
        click.echo(
            f"worker {name}: received {link.responses} responses, {link.events} events;"
            f" recorded {work.writes()}; sent {link.commands} commands in"
            f" {link.publications} publications"
        )


async def _first(*waits: Awaitable[Any]) -> None:
    """Wait until one of ``waits`` is done; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
