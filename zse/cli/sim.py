"""``zse sim``: the simulator at scale. ``zse sim utility`` runs a simulated utility (issue
#19 item 3, :mod:`zse.sim.utility`): N meters, each an ESI with K HAN devices on its own
simulated air and the MQTT bridge as its gateway, over worker processes, until SIGTERM or
Ctrl-C. Errors are one line: a usage error (a bad count, a bad broker URL) exits 2, a broker
that cannot be reached or a worker that fails exits 1."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from zse._words import counted
from zse.cli._logging import SECRET_LOGGERS, KeyRedactor, reveal_asked
from zse.cli._options import _FORMAT
from zse.cli._types import PlainInt
from zse.config import ConfigError

__all__ = ["sim"]


@click.group()
def sim() -> None:
    """The simulator at scale (docs/simulator.md)."""


@sim.command()
@click.option("--meters", type=PlainInt, required=True, help="How many meters (HANs), 1-100000.")
@click.option(
    "--devices-per-meter",
    type=PlainInt,
    default=3,
    show_default=True,
    help="HAN devices per meter, 1-32.",
)
@click.option("--workers", type=PlainInt, help="Worker processes, 1 or more (default: the cores).")
@click.option(
    "--broker",
    help="The MQTT broker the meters connect to, mqtt://HOST[:PORT] or mqtts://HOST[:PORT].",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A TOML file whose [mqtt] table names the broker (as zse mqtt's).",
)
@click.option("--base-topic", help="The base topic (default zse): meters under <base>/<meter>.")
@click.option("--client-id", help="Client ids <client id>-<meter> (default zse-utility).")
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Virtual seconds per real one, once the meters are up (they come up as fast as the "
    "CPU goes).",
)
@click.option("--seed", type=PlainInt, default=1, show_default=True, help="Same seed, same meters.")
@click.option(
    "--send-events/--no-send-events",
    default=None,
    help="The meters publish their ESI's own sends (LoadControlSent...) (over "
    "mqtt.send_events; default on). Off when only a headend listens (ADR 0023).",
)
@click.option(
    "--event-batches/--no-event-batches",
    default=None,
    help="The meters publish their devices' events in batches on "
    "<base>/<meter>/bridge/events (over mqtt.event_batches; default off). On when only a "
    "headend listens (ADR 0027).",
)
def utility(  # noqa: PLR0917 - click passes options positionally
    meters: int,
    devices_per_meter: int,
    workers: int | None,
    broker: str | None,
    config: Path | None,
    base_topic: str | None,
    client_id: str | None,
    speed: float,
    seed: int,
    send_events: bool | None,
    event_batches: bool | None,
) -> None:
    """Run N simulated meters, each a gateway on an MQTT broker (docs/simulator.md)."""
    if importlib.util.find_spec("aiomqtt") is None:
        click.echo('error: zse sim utility needs the mqtt extra: pip install "zigpy-se[mqtt]"')
        sys.exit(1)
    from zse.cli.mqtt import mqtt_settings  # noqa: PLC0415
    from zse.sim.utility import UtilityError, UtilityPlan, run_utility  # noqa: PLC0415

    try:
        if workers is not None and workers < 1:  # 0 is not "the cores": that is no --workers
            raise UtilityError(f"--workers must be 1 or more, not {workers}")
        settings = mqtt_settings(
            broker,
            config,
            default_client_id="zse-utility",
            base_topic=base_topic,
            client_id=client_id,
            send_events=send_events,
            event_batches=event_batches,
        )
        plan = UtilityPlan(
            meters=meters,
            devices_per_meter=devices_per_meter,
            workers=0 if workers is None else workers,  # 0: the plan takes the cores
            speed=speed,
            seed=seed,
        ).checked()
    except (ConfigError, UtilityError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):  # SIGINT even where it was ignored
            loop.add_signal_handler(signum, task.cancel)
        click.echo(
            f"starting {counted(plan.meters, 'meter')} x "
            f"{counted(plan.devices_per_meter, 'device')} on {counted(plan.workers, 'worker')}, "
            f"broker {settings.host}:{settings.port}"
        )
        await run_utility(plan, settings, on_ready=click.echo, worker_logging=_worker_logging())

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        click.echo("stopped")
    except UtilityError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def _worker_logging() -> dict[str, Any]:
    """The workers' logging (:func:`logging.config.dictConfig`) as this command's: the level
    it was given (``-v``, ``-vv``, ``--log-level``, before or after ``sim utility``; warning
    by default), to standard error, keys hidden and the loggers that print them held at INFO
    unless ``ZSE_LOG_SECRETS`` asks for them (:mod:`zse.cli._logging`)."""
    level = logging.getLogger().getEffectiveLevel()
    reveal = reveal_asked()
    handler: dict[str, Any] = {"class": "logging.StreamHandler", "formatter": "line"}
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"format": _FORMAT}},
        "handlers": {"stderr": handler},
        "root": {"level": level, "handlers": ["stderr"]},
    }
    if not reveal:
        redactor = KeyRedactor  # the line formatted, then its keys hidden
        config["formatters"]["line"] = {
            "()": f"{redactor.__module__}.{redactor.__qualname__}",
            "fmt": _FORMAT,
        }
        if level < logging.INFO:
            config["loggers"] = {name: {"level": logging.INFO} for name in SECRET_LOGGERS}
    return config
