"""Helpers for the stick CLI tests: application factories (the simulator's, and bellows' real
application over the fake serial link), an operator typing into a running ``zse esi``, and a
signal sent to ``zse han`` while it opens a stick that never answers."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
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


#: ``zse`` as a shell starts it in the foreground: SIGINT (Ctrl-C) not ignored, even when the
#: tests run from a background job (which ignores it, and its children inherit that).
AS_TYPED = (
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'zse', *sys.argv[1:]])",
)


def han_signalled(command: str, signum: int, cwd: Path, *more: str) -> tuple[int, str, str]:
    """Run ``zse han COMMAND`` (``more``: its other options) on a stick that is a loopback
    listener accepting and never answering; once it has accepted (the command is opening the
    stick), send ``signum``. Returns the status, the standard output and error, which must
    come within 8 s (bellows gives up a silent stick after about 15: the signal ends it)."""
    with socket.socket() as stick:
        stick.bind(("127.0.0.1", 0))
        stick.listen(8)
        device = f"socket://127.0.0.1:{stick.getsockname()[1]}"
        args = [*AS_TYPED, "han", command, "--device", device, "--install-code", IHD_CODE, *more]
        process = subprocess.Popen(
            args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            stick.settimeout(60)  # real seconds: a command that never opens it is a failure
            connection, _ = stick.accept()
            with connection:
                process.send_signal(signum)
                stdout, stderr = process.communicate(timeout=8)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return process.returncode, stdout, stderr


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
