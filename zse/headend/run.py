"""The headend assembled and served: its store, the operations over the given meters, and the
HTTPS listeners (``zse headend serve`` over simulated meters, over the ESI of a ``zse esi``
configuration, or over meter gateways through the work queue: :func:`start_gateway_headend`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from zse.headend.control import Control
from zse.headend.core import RateLimiter
from zse.headend.directory import GatewayMeters, MeterDirectory
from zse.headend.link import MeterLink
from zse.headend.pki import HeadendConfig, server_context, server_names, signed_context
from zse.headend.queue import JobQueue, open_queue
from zse.headend.roster import Roster
from zse.headend.service import Headend, Meter
from zse.headend.store import HeadendStore
from zse.headend.web import HeadendApp, serve
from zse.headend.worker import Worker
from zse.store import Store, close_keeping
from zse.store_engine import is_postgres

__all__ = [
    "RunningHeadend",
    "queue_location",
    "start_gateway_headend",
    "start_headend",
]


@dataclass
class RunningHeadend:
    """A served headend: its store, operations, application and listeners."""

    config: HeadendConfig
    store: Store
    headend: Headend
    app: HeadendApp
    runner: web.AppRunner
    port: int
    signed_port: int | None
    #: What else was started with it and stops with it (a queue, a link, a worker).
    closers: list[Callable[[], Any]] = field(default_factory=list)

    async def close(self) -> None:
        """Stop listening, stop the operations, close the store (the meters stay)."""
        await self.runner.cleanup()
        await self.headend.close()
        for close in reversed(self.closers):
            await close()
        await self.store.close()


def queue_location(database: str | Path) -> str:
    """Where the work queue of the headend whose store is ``database`` lives: the same
    PostgreSQL database and schema, or the SQLite file beside it (``NAME-queue.sqlite``)."""
    text = str(database)
    if is_postgres(text):  # a URL of another scheme: a StoreError, not a file of that name
        return text
    path = Path(text)
    return str(path.with_name(f"{path.stem}-queue.sqlite"))


async def start_headend(
    config: HeadendConfig,
    meters: Iterable[Meter] | MeterDirectory,
    *,
    clock: Callable[[], int],
    port: int | None = None,
    database: str | Path | None = None,
    queue: JobQueue | None = None,
    sync: float = 1.0,
    store: Store | None = None,
) -> RunningHeadend:
    """Open ``database`` (default ``config.database``), start the operations over ``meters``
    (``clock()``: ZigBee UTCTime; ``queue``: sends fan out through it) and serve them on
    ``config.host``: mutual TLS at ``port`` (default the configured one; 0: a free port) and,
    when ``signed_port`` is configured, signed requests next to it (a free port too when
    ``port`` is 0); ``store``: the store already open (it is closed with the headend)."""
    if store is None:
        store = await Store.open(config.database if database is None else database)
    try:
        records = await HeadendStore.open(store)
        headend = Headend(
            meters, records, clock=clock, queue=queue, sync=sync, give_up=config.give_up
        )
        await headend.start()
    except BaseException:
        await close_keeping(store.close, store.where)
        raise
    try:
        app = HeadendApp(
            headend,
            config.retailers,
            limiter=RateLimiter(config.rate, config.burst),
            hosts=server_names(config),
        )
        chosen = config.port if port is None else port
        signed = None
        if config.signed_port is not None:
            second = config.signed_port if port is None or not config.signed_port else port + 1
            signed = (signed_context(config), 0 if chosen == 0 else second)
        runner, ports = await serve(
            app, server_context(config), host=config.host, port=chosen, signed=signed
        )
    except BaseException:
        await close_keeping(headend.close, f"{store.where}: headend")
        await close_keeping(store.close, store.where)
        raise
    return RunningHeadend(
        config=config,
        store=store,
        headend=headend,
        app=app,
        runner=runner,
        port=ports[0],
        signed_port=ports[1] if len(ports) > 1 else None,
    )


async def start_gateway_headend(
    config: HeadendConfig,
    meters: Iterable[str],
    *,
    database: str | Path,
    clock: Callable[[], int],
    port: int | None = None,
    link: MeterLink | None = None,
    worker: str = "serve",
    wall: Callable[[], float] = time.time,
    sync: float = 1.0,
    retention: float | None = None,
) -> RunningHeadend:
    """The headend over meter gateways (docs/adr/0020): its store in ``database``, its work
    queue, control jobs and device records beside it (:func:`queue_location`), the
    ``meters`` (ids) as gateways; with a ``link`` (to the gateways' broker) a headend worker
    named ``worker`` runs in this process too (more run as ``zse headend worker``).
    ``wall()``: the seconds the workers share (wall-clock time); ``retention``: the
    worker's (:class:`~zse.headend.worker.Worker`)."""
    store = await Store.open(database)  # first: a new schema becomes a store, then the queue's
    closers: list[Callable[[], Any]] = []
    try:
        queue = await open_queue(queue_location(database))
        closers.append(queue.close)
        control = await Control.open(queue)
        directory = GatewayMeters(meters, control, meter_time=clock, clock=wall)
        if link is not None:
            roster = await Roster.open(queue)
            work = Worker(
                queue,
                link,
                owner=worker,
                clock=wall,
                control=control,
                retention=retention,
                roster=roster,
            )
            await link.start()
            closers.append(link.close)
            await work.start()
            closers.append(work.stop)
        running = await start_headend(
            config, directory, clock=clock, port=port, store=store, queue=queue, sync=sync
        )
    except BaseException:
        for close in reversed(closers):
            await close_keeping(close, f"{store.where}: work queue, link or worker")
        await close_keeping(store.close, store.where)  # closed already if start_headend failed
        raise
    running.closers = closers
    return running
