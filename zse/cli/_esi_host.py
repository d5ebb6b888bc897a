"""Run a service beside the ESI of a ``zse esi`` configuration (its radio or the simulator of
``zse esi --radio sim``), as ``zse esi --config FILE --serve`` runs it, until SIGINT/SIGTERM.

``zse headend serve --esi esi.toml`` uses it; a service is attached through ``run_esi``'s
``attach(esi)`` hook and detached before the ESI stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["Attach", "run_beside_esi"]

#: ``attach(esi)`` starts the service and returns what to await to stop it.
Attach = Callable[[Any], Awaitable[Callable[[], Awaitable[None]]]]


def run_beside_esi(
    path: Path, radio: str | None, attach: Attach, *, out: Callable[[str], None], prefix: str
) -> int:
    """Start the ESI of ``path`` (``radio`` over its ``[radio] type``; ``sim``: the simulated
    HAN, whose devices join once provisioned), attach the service, serve until a signal.
    Returns the exit status; a configuration error raises :class:`zse.config.ConfigError`.
    On the simulator without a ``database`` the ESI's files go to a temporary directory
    (``prefix``), a fresh HAN each time."""
    from zse.cli.esi import load_credentials, run_esi  # noqa: PLC0415
    from zse.config import ConfigError, load_config  # noqa: PLC0415

    sim: Any = None
    config = load_config(path).override(radio=radio)
    if config.radio.radio == "sim":
        from zse.cli._sim import SimulatedHan  # noqa: PLC0415

        sim = SimulatedHan(out)
        factory, credentials = sim.factory, [sim.credentials]
    else:
        if config.radio.radio is None or config.radio.device is None:
            raise ConfigError(f"{path}: [radio] needs type and device (or --radio sim)")
        from zse.cli._radio import application_class  # noqa: PLC0415

        application_class(config.radio.radio)  # a missing radio extra fails here
        factory, credentials = None, load_credentials(config.credentials)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        real_time = getattr(loop, "real_time", None)  # the simulator runs as a stick would
        try:
            with real_time() if real_time is not None else contextlib.nullcontext():
                return await run_esi(
                    config,
                    credentials=credentials,
                    lines=None,
                    out=out,
                    app_factory=factory,
                    stop=stop,
                    clock=sim.clock if sim is not None else None,
                    attach=attach,
                )
        finally:
            if sim is not None:
                await sim.close()

    if sim is None:
        return asyncio.run(main())
    from zse.sim import run  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        if config.database is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix))
            config = dataclasses.replace(config, database=Path(directory) / "zse-esi.db")
        return run(main())
