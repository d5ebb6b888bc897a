"""``zse han watch`` on a meter with supply control (SE 1.2 Supply Status): the display asks
the meter to report it and prints the supply when it changes, the utility's Change Supply
heard without a read. Bellows' real EZSP/ASH code over the fake NCP, the simulated meter,
virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.han_stick.stick_builder import STICK, meter_and_stick
from tests.han_stick.test_han_stick_cli import watched
from tests.han_stick.test_han_stick_prepay import records
from tests.roles.han_builder import START
from tests.roles.test_roles_supply import esi_options
from zse.cli.han import HanOptions, _show
from zse.metering.protocol import SupplyStatusChanged
from zse.metering.supply import ARMED, OFF, ON
from zse.roles.han import InHomeDisplay
from zse.sim import Air


async def test_watch_prints_the_supply_the_utility_turns_off(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link, **esi_options())
    lines: list[str] = []
    async with watched(tmp_path, sh, lines) as stop:
        await asyncio.sleep(20)  # virtual: joined, keyed, the supply read
        assert records(lines, "supply") == [{"type": "supply", "status": "On", "before": None}]
        meter = sh.han.esi.meter
        assert meter is not None
        await meter.change_supply(OFF)
        await asyncio.sleep(3)  # virtual: reported
        assert records(lines, "supply")[1:] == [{"type": "supply", "status": "Off", "before": "On"}]
        assert await stop() == 0


async def test_the_supply_line_in_text_names_the_status() -> None:
    ihd = InHomeDisplay(Air().device(str(STICK)), credentials=[])
    lines: list[str] = []
    text = HanOptions(device="/dev/null")
    shown: dict[str, Any] = {}
    for status, before in ((ON, None), (ARMED, ON), (9, ARMED)):
        event = SupplyStatusChanged(status=status, before=before, reported=True, at=START)
        await _show(ihd, event, text, lines.append, shown)
    assert lines == [
        "supply        status=On",
        "supply        status=Off/Armed  before=On",
        "supply        status=status 9  before=Off/Armed",
    ]
