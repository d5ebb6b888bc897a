"""``zse han watch`` shows "today" (the meter's CurrentDayConsumptionDelivered, SE 1.2
D.3.2.2.5, in its HistoricalConsumptionFormatting) next to the summation when the meter serves
it; a meter that does not is shown without it (test_han_stick_cli)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from tests.han_stick.stick_builder import meter_and_stick
from tests.han_stick.test_han_stick_cli import watched
from tests.roles.test_roles_ihd_energy import FLAT, serve, serve_meter
from zse.se.ids import MeteringAttribute as A

UINT24, BITMAP8 = 0x22, 0x18


async def test_watch_shows_today_next_to_the_summation(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    serve_meter(sh.han, 1_000_000, 1500)
    serve(
        sh.han,
        {
            A.HISTORICAL_CONSUMPTION_FORMATTING: (BITMAP8, 0x02),  # two digits right
            A.CURRENTDAY_CONSUMPTION_DELIVERED: (UINT24, 7_250),  # Wh: 7.25 kWh today
        },
    )
    await sh.han.esi.price.publish(FLAT)
    lines: list[str] = []
    async with watched(tmp_path, sh, lines) as stop:
        await asyncio.sleep(30)
        assert await stop() == 0
    readings = [json.loads(line) for line in lines if '"type": "reading"' in line]
    assert readings[-1]["consumption"] == "1000.000 kWh"
    assert readings[-1]["today"] == "7.25 kWh"
