"""The in-process link (:class:`~zse.headend.link.EsiLink`) names the meter of each report:
the ESI's, as the link keys it (the meter id its jobs are delivered to), so the work queue
records it on a job of that meter only, as it does a gateway's report (ADR 0027)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.headend.helpers import queued_headend, registration
from zse.headend.core import Outcome
from zse.headend.link import Report
from zse.installcode import canonical_eui64

RETAILER = "retailer-a"


async def test_an_esis_reports_name_its_meter_and_are_recorded(tmp_path: Path) -> None:
    async with queued_headend(tmp_path, lambda name: tmp_path / name, meters=2) as served:
        headend = served.headend
        second = served.sims.meters[1].id  # not the first: the meter is not a default
        lcd = next(
            d
            for d in served.sims.devices
            if d.device_type == "load control device" and d.meter == second
        )
        await headend.register(RETAILER, registration(lcd))
        await headend.put_group(RETAILER, {"name": "g", "meters": [second]})
        await asyncio.sleep(60)  # it joins and runs CBKE
        heard: list[Report] = []
        served.link.on_report(heard.append)
        await served.start_worker()
        event = {"group": "g", "duration_minutes": 30, "criticality_level": 3, "duty_cycle": 50}
        sent = await headend.send_load_control(RETAILER, event)
        for _ in range(60):  # virtual seconds: delivered, then reported received and started
            (row,) = await served.queue.rows(sent["id"])
            if row.outcome is Outcome.STARTED:
                break
            await asyncio.sleep(5)
        assert (row.device, row.meter, row.outcome) == (
            canonical_eui64(lcd.mac),
            second,
            Outcome.STARTED,
        )
        assert heard
        assert {(canonical_eui64(r.device), r.meter) for r in heard} == {(row.device, second)}
