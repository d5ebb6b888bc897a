"""The headend's Load Control Event refused by an ESI that holds its issuer event id from
another source with other content (found by a hostile review): the ESI refuses it
(:class:`~zse.drlc.core.EventIdInUse`: devices ignore an id they hold). A gateway's bridge
answers it as an error, recorded ``skipped`` and not tried again; an ESI in process
(:class:`~zse.headend.link.EsiLink`) raised it out of the worker's delivery instead, so the
job stayed leased, was taken again at each lease's end and failed again, for ever, its
outcome ``pending``. Now it is recorded as the bridge's refusal is: ``skipped``, not tried
again, the detail saying the id is in use at the meter by another event."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.headend.helpers import queued_headend, registration, virtually
from zse.drlc import LoadControlEvent
from zse.headend.core import Outcome
from zse.installcode import canonical_eui64

RETAILER = "retailer-a"


async def test_an_event_id_in_use_at_the_esi_is_recorded_refused_once(tmp_path: Path) -> None:
    async with queued_headend(tmp_path, lambda name: tmp_path / name) as served:
        headend = served.headend
        lcd = next(d for d in served.sims.devices if d.device_type == "load control device")
        await headend.register(RETAILER, registration(lcd))
        await headend.put_group(RETAILER, {"name": "g", "meters": [lcd.meter]})
        await asyncio.sleep(60)  # it joins and runs CBKE
        # another source (a Home Assistant user of the same ESI) uses issuer event id 1
        theirs = LoadControlEvent(
            issuer_event_id=1, device_class=0xFFFF, duration_in_minutes=5, criticality_level=1
        )
        await served.link.esis[lcd.meter].send_load_control(theirs, device=lcd.mac)
        await served.start_worker()
        event = {"group": "g", "duration_minutes": 30, "criticality_level": 3, "duty_cycle": 50}
        sent = await headend.send_load_control(RETAILER, event)
        assert sent["id"] == 1

        async def ended() -> bool:
            (row,) = await served.queue.rows(1)
            return row.state == "sent"

        await virtually(ended, within=300.0)
        (row,) = await served.queue.rows(1)
        assert (row.device, row.outcome) == (canonical_eui64(lcd.mac), Outcome.SKIPPED)
        assert row.detail.startswith("refused: issuer_event_id: issuer event id 1 is in use")
        assert "by another event" in row.detail
        await asyncio.sleep(3600)
        assert await served.queue.rows(1) == [row]  # not tried again
