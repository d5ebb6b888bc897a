"""A load control event superseded on the devices by a newer one, over the work queue (found
by an audit): its outcomes read ``cancelled`` with no detail, as if the retailer had
cancelled it; now ``superseded by send N`` (both engines)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.fleet.helpers import until
from zse.headend.link import EsiLink
from zse.headend.queue import open_queue
from zse.headend.service import Headend
from zse.headend.sim import SimMeters
from zse.headend.store import HeadendStore
from zse.headend.worker import Worker
from zse.store import Store

RETAILER = "retailer-a"


async def test_a_superseded_event_says_by_which_send(tmp_path: Path, place: Any) -> None:
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return 800_000_000 + int(loop.time())

    sims = SimMeters(1, tmp_path / "meters", clock=clock)
    meters = await sims.start()
    store = await Store.open(place("headend.sqlite"))
    queue = await open_queue(place("queue.sqlite"))
    headend = Headend(meters, await HeadendStore.open(store), clock=clock, queue=queue)
    await headend.start()
    link = EsiLink({m.id: m.esi for m in meters})
    worker = Worker(queue, link, owner="w1", clock=loop.time)
    try:
        lcd = next(d for d in sims.devices if d.device_type == "load control device")
        body = {
            "mac": lcd.mac,
            "install_code": lcd.install_code,
            "meter": lcd.meter,
            "device_type": lcd.device_type,
        }
        await headend.register(RETAILER, body)
        await headend.put_group(RETAILER, {"name": "g", "meters": [lcd.meter]})
        await asyncio.sleep(60)  # it joins and runs CBKE
        await link.start()
        await worker.start()
        event = {"group": "g", "duration_minutes": 30, "criticality_level": 3}
        older = await headend.send_load_control(RETAILER, {**event, "duty_cycle": 50})
        await asyncio.sleep(60)
        newer = await headend.send_load_control(RETAILER, {**event, "duty_cycle": 20})
        await asyncio.sleep(60)

        async def superseded() -> bool:  # the queue's worker records it on its own threads
            (copy,) = headend.send(RETAILER, older["id"])["outcomes"]
            return bool(copy["outcome"] == "cancelled")

        await until(superseded)
        ((outcome, detail),) = [
            (o["outcome"], o["detail"]) for o in headend.send(RETAILER, older["id"])["outcomes"]
        ]
        assert (outcome, detail) == ("cancelled", f"superseded by send {newer['id']}")
    finally:
        await worker.stop()
        await link.close()
        await headend.close()
        await queue.close()
        await store.close()
        await sims.close()
