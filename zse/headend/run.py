"""The headend assembled and served: its store, the operations over the given meters, and the
HTTPS listeners (``zse headend serve`` over simulated meters or over the ESI of a ``zse esi``
configuration)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from zse.headend.core import RateLimiter
from zse.headend.pki import HeadendConfig, server_context, signed_context
from zse.headend.service import Headend, Meter
from zse.headend.store import HeadendStore
from zse.headend.web import HeadendApp, serve
from zse.store import Store

__all__ = ["RunningHeadend", "start_headend"]


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

    async def close(self) -> None:
        """Stop listening, stop the operations, close the store (the meters stay)."""
        await self.runner.cleanup()
        await self.headend.close()
        await self.store.close()


async def start_headend(
    config: HeadendConfig,
    meters: Iterable[Meter],
    *,
    clock: Callable[[], int],
    port: int | None = None,
) -> RunningHeadend:
    """Open ``config.database``, start the operations over ``meters`` (``clock()``: ZigBee
    UTCTime) and serve them on ``config.host``: mutual TLS at ``port`` (default the
    configured one; 0: a free port) and, when ``signed_port`` is configured, signed requests
    next to it (a free port too when ``port`` is 0)."""
    store = await Store.open(config.database)
    try:
        headend = Headend(meters, await HeadendStore.open(store), clock=clock)
        await headend.start()
    except BaseException:
        await store.close()
        raise
    try:
        app = HeadendApp(headend, config.retailers, limiter=RateLimiter(config.rate, config.burst))
        chosen = config.port if port is None else port
        signed = None
        if config.signed_port is not None:
            second = config.signed_port if port is None or not config.signed_port else port + 1
            signed = (signed_context(config), 0 if chosen == 0 else second)
        runner, ports = await serve(
            app, server_context(config), host=config.host, port=chosen, signed=signed
        )
    except BaseException:
        await headend.close()
        await store.close()
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
