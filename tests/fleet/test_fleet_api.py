"""The headend's API over the work queue (issue #19): a by-group send fans out as one job
per device; a worker (here in-process, over the meters' ESIs: :class:`EsiLink`) drains it,
and the API reads the outcomes back, on both engines; a cancel of the finished send is
refused."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from zse.headend.core import HeadendError, Outcome
from zse.headend.link import EsiLink
from zse.headend.queue import open_queue
from zse.headend.service import Headend
from zse.headend.sim import SimMeters
from zse.headend.store import HeadendStore
from zse.headend.worker import Worker
from zse.installcode import canonical_eui64
from zse.roles.esi import LoadControlCancelSent, LoadControlSent
from zse.store import Store

RETAILER = "retailer-a"


async def test_a_load_control_event_by_group_fans_out_through_the_queue(
    tmp_path: Path, place: Any
) -> None:
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return 800_000_000 + int(loop.time())

    sims = SimMeters(2, tmp_path / "meters", clock=clock)
    meters = await sims.start()
    executed: Counter[tuple[str, int]] = Counter()

    def count(event: Any) -> None:
        if isinstance(event, LoadControlSent):
            for o in event.result.outcomes:
                executed[(canonical_eui64(o.device), event.event.issuer_event_id)] += 1

    cancels: list[Any] = []

    def count_cancels(event: Any) -> None:
        if isinstance(event, LoadControlCancelSent):
            cancels.append(event)

    for meter in meters:
        meter.esi.on_event(count)
        meter.esi.on_event(count_cancels)
    store = await Store.open(place("headend.sqlite"))
    queue = await open_queue(place("queue.sqlite"))
    headend = Headend(meters, await HeadendStore.open(store), clock=clock, queue=queue)
    await headend.start()
    link = EsiLink({m.id: m.esi for m in meters})
    worker = Worker(queue, link, owner="w1", clock=loop.time)
    try:
        for d in sims.devices:
            body = {
                "mac": d.mac,
                "install_code": d.install_code,
                "meter": d.meter,
                "device_type": d.device_type,
            }
            await headend.register(RETAILER, body)
        await headend.put_group(RETAILER, {"name": "all", "meters": ["meter-1", "meter-2"]})
        await asyncio.sleep(60)  # the devices join and run CBKE
        sent = await headend.send_load_control(
            RETAILER,
            {"group": "all", "duty_cycle": 50, "duration_minutes": 1, "criticality_level": 3},
        )
        assert {o["outcome"] for o in sent["outcomes"]} == {"pending"}
        assert len(await queue.rows(sent["id"])) == 6  # one job per device
        await asyncio.sleep(30)
        assert executed == {}  # nothing is sent until a worker takes the jobs
        await link.start()
        await worker.start()
        await asyncio.sleep(120)  # delivered, then the event's minute
        view = headend.send(RETAILER, sent["id"])
        assert view["finished"]
        assert {o["outcome"] for o in view["outcomes"]} == {"completed"}
        assert {o["attempts"] for o in view["outcomes"]} == {1}
        devices = {canonical_eui64(d.mac) for d in sims.devices}
        assert executed == {(device, sent["id"]): 1 for device in devices}
        assert worker.recorded == 6
        # finished: a cancel is refused, and neither the queue nor a device is touched
        with pytest.raises(HeadendError, match="has finished") as refused:
            await headend.cancel(RETAILER, sent["id"])
        assert (refused.value.status, refused.value.field) == (409, "id")
        assert {r.outcome for r in await queue.rows(sent["id"])} == {Outcome.COMPLETED}
        await asyncio.sleep(10)
        assert headend.send(RETAILER, sent["id"]) == view
        assert cancels == []
    finally:
        await worker.stop()
        await link.close()
        await headend.close()
        await queue.close()
        await store.close()
        await sims.close()
