"""The give-up time for in-process meters served over the work queue (``Headend(queue=...)``
with :class:`~zse.headend.link.EsiLink` workers): their jobs had no give-up time (the
in-process directory knew no queue time), so a device never reached was tried every 900 s for
ever and its send never finished. Now the jobs carry it as the gateways' do, on the workers'
clock, and the copy ends ``expired``, on both engines."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.headend.helpers import LOOK, queued_headend, registration, virtually
from tests.postgres_server import place, postgres
from zse.installcode import canonical_eui64, parse_eui64

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

RETAILER = "retailer-a"
#: The give-up time here: two hours (tries at 0, 30, 90, 210, 510 s, every 900 s, the last
#: just after 7200 s).
GIVE_UP = 7200.0


async def test_a_device_an_esi_worker_never_reaches_expires(tmp_path: Path, place: Any) -> None:
    async with queued_headend(tmp_path, place, give_up=GIVE_UP, sync=LOOK) as served:
        served.worker.poll = LOOK  # before it starts (the helper's worker looks every 5 s)
        headend = served.headend
        ihd, thermostat, *others = served.sims.devices
        for device in (thermostat, *others):  # never joins (the others, never registered,
            served.sims.air_of(device).silence(parse_eui64(device.mac))  # switched off)
        for device in (ihd, thermostat):
            await headend.register(RETAILER, registration(device))
        await headend.put_group(RETAILER, {"name": "g", "meters": [ihd.meter]})
        await asyncio.sleep(60)  # the IHD joins and runs CBKE
        await served.start_worker()
        sent = await headend.send_message(RETAILER, {"group": "g", "text": "Hi"})

        def copies() -> dict[str, dict[str, Any]]:
            return {o["mac"]: o for o in headend.send(RETAILER, sent["id"])["outcomes"]}

        away = canonical_eui64(thermostat.mac)

        async def skipped() -> bool:
            return bool(copies()[away]["outcome"] == "skipped")

        await virtually(skipped)
        await asyncio.sleep(GIVE_UP - 120)
        assert copies()[away]["outcome"] == "skipped"  # tried within the give-up time
        await asyncio.sleep(150)

        async def expired() -> bool:
            return bool(copies()[away]["outcome"] == "expired")

        await virtually(expired)
        assert copies()[away]["detail"] == (
            "given up: not reached within 2 hours of the send (last try: pending provisioning)"
        )
        assert copies()[canonical_eui64(ihd.mac)]["outcome"] == "delivered"
        assert headend.send(RETAILER, sent["id"])["finished"] is True
        # delivered at 0, 30, 90, 210, 510, 1410 ... 6810 and 7201 s: each but the last a
        # new try (its key's number)
        (row,) = [r for r in await served.queue.rows(sent["id"]) if r.device == away]
        assert (row.state, row.tries) == ("sent", 12)
        ended = copies()
        await asyncio.sleep(3600)
        assert copies() == ended  # never tried again
