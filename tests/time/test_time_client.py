"""F7: a HAN display sets its clock only from a time it may trust: not Time 0xFFFFFFFF (the
invalid UTCTime), not a server with neither Master nor Synchronized (ZCL 3.12.2.2.2, as
EmberZNet's smart-energy-registration.c applies it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.han_stick.stick_builder import meter_and_stick
from tests.han_stick.test_han_stick_cli import options
from tests.roles.han_builder import START, close
from tests.roles.test_roles_ihd_energy import serve_meter
from zse.cli.han import run_han
from zse.roles.han_stick import MeterClock
from zse.se.ids import TimeAttribute
from zse.time.core import INVALID_TIME
from zse.time.service import TimeReading, TimeStatus

A = TimeAttribute
HOST = 800_000_000


def reading(time: int, status: int | None) -> TimeReading:
    values = {A.TIME: time} if status is None else {A.TIME: time, A.TIME_STATUS: status}
    return TimeReading(values=values, local_time=time)


@pytest.mark.parametrize(
    ("time", "status", "why"),
    [
        (INVALID_TIME, 0b1001, "0xFFFFFFFF"),  # even from a Master
        (HOST + 7200, 0b0000, "neither Master nor Synchronized"),
        (123, 0b1100, "neither Master nor Synchronized"),  # Superseding alone is not enough
        (HOST + 7200, None, "no TimeStatus"),
    ],
)
def test_an_untrusted_time_leaves_the_clock_as_it_was(time, status, why, caplog):
    clock = MeterClock(lambda: HOST)
    clock.set(HOST + 60)  # an earlier, trusted reading
    with caplog.at_level(logging.WARNING, logger="zse.roles.han_stick"):
        assert clock.adopt(reading(time, status)) is None
    assert (clock(), clock.offset, clock.synced) == (HOST + 60, 60, True)
    (line,) = caplog.messages
    assert why in line


@pytest.mark.parametrize("status", [0b0001, 0b0010, 0b1101, 0b0011])
def test_a_master_or_synchronized_server_sets_the_clock(status, caplog):
    clock = MeterClock(lambda: HOST)
    with caplog.at_level(logging.WARNING):
        assert clock.adopt(reading(HOST + 3600, status)) == 3600
    assert (clock(), clock.synced, caplog.messages) == (HOST + 3600, True, [])


@pytest.mark.parametrize("fault", ["not a master", "invalid time"])
async def test_han_watch_keeps_the_hosts_clock_when_the_meters_time_is_untrusted(
    tmp_path: Path,
    serial_link: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    """``zse han join --watch``: no "time" line, one warning, and the display goes on."""
    sh = await meter_and_stick(tmp_path, serial_link)
    serve_meter(sh.han, 1_000_000, 1500)
    if fault == "not a master":
        sh.han.esi.time.status = TimeStatus(master=False, superseding=False)
    else:
        sh.han.esi.time.clock = lambda: INVALID_TIME
    lines: list[str] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    watching = asyncio.ensure_future(
        run_han(
            options(tmp_path, sh),
            watch=True,
            out=lines.append,
            stop=stop,
            clock=lambda: START - 3600 + int(loop.time()),
        )
    )
    try:
        with caplog.at_level(logging.WARNING):
            await asyncio.sleep(20)
            stop.set()
            assert await watching == 0
        assert [line.split()[0] for line in lines][:2] == ["joined", "keep_alive"]
        told = [m for m in caplog.messages if "time" in m]
        assert len(told) == 1
        assert "not adopted" in told[0]
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)
