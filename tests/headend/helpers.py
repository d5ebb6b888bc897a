"""A running headend for the tests, and an HTTPS client with a retailer's certificate."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from zse.headend.core import RateLimiter
from zse.headend.link import EsiLink
from zse.headend.pki import (
    HeadendConfig,
    init_directory,
    load_config,
    server_context,
    server_names,
    signed_context,
)
from zse.headend.queue import JobQueue, open_queue
from zse.headend.service import Headend
from zse.headend.sim import SimDevice, SimMeters
from zse.headend.store import HeadendStore
from zse.headend.web import HeadendApp, serve
from zse.headend.worker import Worker
from zse.sim import VirtualClockLoop
from zse.store import Store, hold_virtual_clock

START = 800_000_000
#: Seconds between a worker's looks at the queue and a headend's reads of it in the give-up
#: tests (a sixth of the database round trips of every 5 s over hours of virtual time): the
#: first try waits for a look, the back-off after it is the same (the thermostat asked 30,
#: 60, 120, 241, 541, 1441 ... 6843 and 7203 s after the send; at 5 s: 5, 35, 95 ... 6818
#: and 7203).
LOOK = 30.0
#: The header :func:`request` marks its requests with: it holds the virtual clock meanwhile.
HELD = "X-Test-Virtual-Clock"


def client_context(directory: Path, name: str | None) -> ssl.SSLContext:
    """A TLS client trusting the test CA, presenting ``name``'s certificate (None: none)."""
    context = ssl.create_default_context(cafile=directory / "ca.pem")
    if name is not None:
        context.load_cert_chain(directory / f"{name}.pem", directory / f"{name}-key.pem")
    return context


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


async def request(
    base: str,
    context: ssl.SSLContext,
    method: str,
    path: str,
    body: object = None,
    *,
    text: str | None = None,
    form: dict[str, Any] | None = None,
    origin: str | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Reply:
    """One request to the headend at ``base`` over TLS ``context`` (``raw``: the body's bytes
    as they are; ``headers`` added); the virtual clock stands still while the real socket is
    waited on."""
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs["json"] = body
    if text is not None:
        kwargs["data"] = text.encode()
    if form is not None:
        kwargs["data"] = form
    if raw is not None:
        kwargs["data"] = raw
    sent = dict(headers or {}) | {HELD: "held"}
    if origin is not None:
        sent["Origin"] = origin
    kwargs["headers"] = sent
    with hold_virtual_clock():
        connector = aiohttp.TCPConnector(ssl=context, force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.request(method, base + path, allow_redirects=False, **kwargs) as response,
        ):
            raw = await response.read()
            kind = response.headers.get("Content-Type", "")
            value: Any = raw.decode()
            if kind.startswith("application/json"):
                value = json.loads(raw)
            return Reply(response.status, value, dict(response.headers))


@web.middleware
async def lend_the_clock(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """:func:`request` holds the virtual clock while it waits on the real socket. Once the
    request is in (its body read), what it waits for is this loop's own work, which may need
    virtual time (an in-process cancel's Cancel to a switched-off device: the ESI resends it
    for want of an APS acknowledgement, 6.4 s): the client's hold is lent back meanwhile,
    and taken again before the answer goes out."""
    loop = asyncio.get_running_loop()
    if request.headers.get(HELD) is None or not isinstance(loop, VirtualClockLoop):
        return await handler(request)
    await request.read()
    with loop.external_work_lent():  # the client's hold, lent back
        return await handler(request)


@dataclass
class Service:
    directory: Path
    config: HeadendConfig
    sims: SimMeters
    store: Store
    headend: Headend
    app: HeadendApp
    runner: Any
    port: int
    signed_port: int

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def call(
        self,
        who: str | ssl.SSLContext | None,
        method: str,
        path: str,
        body: object = None,
        *,
        text: str | None = None,
        form: dict[str, Any] | None = None,
        origin: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        """One request as ``who`` (a retailer's name or a TLS context); the virtual clock
        stands still while the real socket is waited on."""
        context = who if isinstance(who, ssl.SSLContext) else client_context(self.directory, who)
        return await request(
            self.base,
            context,
            method,
            path,
            body,
            text=text,
            form=form,
            origin=origin,
            headers=headers,
            raw=raw,
        )

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.headend.close()
        await self.sims.close()
        await self.store.close()


async def start_service(
    tmp_path: Path, *, meters: int = 2, rate: float | None = None, store_at: Any = None
) -> Service:
    """The headend served over ``meters`` simulated meters, its store ``store_at`` (a
    :func:`tests.postgres_server.place`'s; default: ``headend.sqlite`` in ``tmp_path``)."""
    directory = tmp_path / "pki"
    init_directory(directory, port=0)
    config = load_config(directory / "headend.toml")
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    sims = SimMeters(meters, tmp_path / "meters", seed=3, clock=clock)
    started = await sims.start()
    store = await Store.open(tmp_path / "headend.sqlite" if store_at is None else store_at)
    headend = Headend(started, await HeadendStore.open(store), clock=clock)
    await headend.start()
    limiter = RateLimiter(rate or config.rate, config.burst if rate is None else 3)
    app = HeadendApp(headend, config.retailers, limiter=limiter, hosts=server_names(config))
    app.app.middlewares.append(lend_the_clock)
    runner, ports = await serve(
        app,
        server_context(config),
        host="127.0.0.1",
        port=0,
        signed=(signed_context(config), 0),
    )
    return Service(directory, config, sims, store, headend, app, runner, ports[0], ports[1])


def registration(device: SimDevice) -> dict[str, str]:
    """The body registering ``device`` (``POST /api/v1/devices``, :meth:`Headend.register`)."""
    return {
        "mac": device.mac,
        "install_code": device.install_code,
        "meter": device.meter,
        "device_type": device.device_type,
    }


@dataclass
class QueuedHeadend:
    """A headend over in-process meters served through the work queue by one
    :class:`~zse.headend.link.EsiLink` worker (started by the test: :meth:`start_worker`)."""

    sims: SimMeters
    headend: Headend
    queue: JobQueue
    link: EsiLink
    worker: Worker

    async def start_worker(self) -> None:
        await self.link.start()
        await self.worker.start()


@contextlib.asynccontextmanager
async def queued_headend(
    directory: Path, place: Any, *, meters: int = 1, **options: Any
) -> AsyncIterator[QueuedHeadend]:
    """:class:`QueuedHeadend` on ``place``'s engine (its files in ``directory``), the headend
    given ``options``; the worker looks every 5 virtual seconds, on the database's clock read
    once on PostgreSQL (virtual time runs ahead of it), which is the headend's queue clock."""
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    sims = SimMeters(meters, directory / "meters", clock=clock)
    started = await sims.start()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(sims.close)
        store = await Store.open(place("headend.sqlite"))
        stack.push_async_callback(store.close)
        queue = await open_queue(place("queue.sqlite"))
        stack.push_async_callback(queue.close)
        link = EsiLink({m.id: m.esi for m in started})
        stack.push_async_callback(link.close)
        worker = Worker(queue, link, owner="w1", clock=loop.time, poll=5.0, resync=math.inf)
        stack.push_async_callback(worker.stop)
        records = await HeadendStore.open(store)
        options = {"sync": 5.0, "queue_clock": worker.now, **options}
        headend = Headend(started, records, clock=clock, queue=queue, **options)
        await headend.start()
        stack.push_async_callback(headend.close)
        yield QueuedHeadend(sims, headend, queue, link, worker)


async def virtually(check: Callable[[], Awaitable[bool]], within: float = 600.0) -> None:
    """Wait until ``check()`` is true, looking every 5 virtual seconds, at most ``within``
    of them (:class:`TimeoutError`). For work that needs no real time meanwhile: on the
    virtual-time loop a database call holds the clock, and a meter link's wait for a broker
    follows the real one (:func:`zse.mqtt.bridge.broker_time`)."""
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(5.0)
