"""Helpers for the stick CLI tests: application factories (the simulator's, and bellows' real
application over the fake serial link) and an operator typing into a running ``zse esi``."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import zigpy.serial

from tests.cli_sticks.fake_stick import NCP_EUI64, StickNcp
from zse.cbke import SUITE1
from zse.cbke.ca import TestCA
from zse.cbke.service import eui64_bytes
from zse.cli._radio import RadioOptions, open_application
from zse.sim import Air

CA = TestCA.generate(rng=random.Random(7))
SIM_ESI = "00:0d:6f:00:00:00:00:e5"
IHD = "00:0d:6f:00:0a:00:00:01"
IHD_CODE = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"
#: The sim coordinator and the fake NCP share an EUI-64, so one credentials file serves both.
ESI_CREDENTIALS = CA.issue(eui64_bytes(NCP_EUI64), SUITE1, rng=random.Random(1))
assert str(NCP_EUI64) == SIM_ESI


def sim_factory(air: Air, seen: list[RadioOptions] | None = None) -> Callable[..., Any]:
    """An application factory giving the simulator's coordinator (channel 15)."""

    async def factory(options: RadioOptions) -> Any:
        if seen is not None:
            seen.append(options)
        return await air.coordinator(channel=15, ieee=SIM_ESI)

    return factory


def ezsp_factory(ncp: StickNcp, link: Callable[..., None]) -> Callable[..., Any]:
    """The real factory (bellows' application), with the serial port leading to ``ncp``."""

    async def factory(options: RadioOptions) -> Any:
        link(zigpy.serial, "create_serial_connection", ncp)
        quiet = {"use_thread": False, **options.library_config}
        return await open_application(dataclasses.replace(options, library_config=quiet))

    return factory


class Operator:
    """Types commands into a running session and reads what it prints."""

    def __init__(self) -> None:
        self.output: list[str] = []
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()

    def out(self, line: str) -> None:
        self.output.append(line)

    async def lines(self) -> AsyncIterator[str]:
        while (line := await self._queue.get()) is not None:
            yield line

    def type(self, line: str) -> None:
        self._queue.put_nowait(line)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def sees(self, text: str, timeout: float = 120.0) -> str:
        """The first output line containing ``text`` (waits in virtual time)."""
        async with asyncio.timeout(timeout):
            while True:
                for line in self.output:
                    if text in line:
                        return line
                await asyncio.sleep(0.5)

    def text(self) -> str:
        return "\n".join(self.output)


def serving(
    config: Any,
    operator: Operator,
    app_factory: Callable[..., Any],
    clock: Any,
    stop: asyncio.Event,
) -> asyncio.Task[int]:
    """``zse esi`` serving ``config`` (no command lines) until ``stop`` is set."""
    from zse.cli.esi import run_esi  # noqa: PLC0415 - as the tests import it

    return asyncio.get_running_loop().create_task(
        run_esi(
            config,
            credentials=[ESI_CREDENTIALS],
            lines=None,
            out=operator.out,
            app_factory=app_factory,
            clock=clock,
            stop=stop,
        )
    )


def at_the_terminal(
    config: Any, operator: Operator, app_factory: Callable[..., Any], clock: Any
) -> asyncio.Task[int]:
    """``zse esi`` taking ``operator``'s commands as at the terminal: a failing command is
    reported and the ESI goes on."""
    from zse.cli.esi import run_esi  # noqa: PLC0415 - as the tests import it

    return asyncio.get_running_loop().create_task(
        run_esi(
            config,
            credentials=[ESI_CREDENTIALS],
            lines=operator.lines(),
            script=False,
            out=operator.out,
            app_factory=app_factory,
            clock=clock,
        )
    )
