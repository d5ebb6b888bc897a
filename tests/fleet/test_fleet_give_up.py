"""The give-up time over meter gateways (``[sends] give_up_days``): a device its gateway
never reaches was tried by the workers on the back-off for ever, its send never finished (in
process it was given up, ``expired``). Now its job is ended ``expired`` with the reason once
the give-up time has passed, as in process, on both engines, through the API, a worker and a
real Mosquitto."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.fleet.helpers import PREFIX, Gateways, gateways, real, until
from tests.fleet.test_fleet_serve import Api, headend_config, registration
from tests.headend.helpers import LOOK, START, virtually
from tests.mqtt.broker import Broker
from zse.headend.control import Control
from zse.headend.gateway import GatewayLink
from zse.headend.queue import open_queue
from zse.headend.run import queue_location, start_gateway_headend
from zse.headend.worker import Worker
from zse.installcode import canonical_eui64, parse_eui64
from zse.mqtt.core import parse_settings

#: The give-up time here: two hours (tries at 0, 30, 90, 210, 510 s, every 900 s, the last
#: at 7201 s).
GIVE_UP = 7200.0


@asynccontextmanager
async def served(tmp_path: Path, database: Any, broker: Broker) -> AsyncIterator[Api]:
    """The API over ``meter-1`` and one worker, sharing the worker's clock (the database's
    on PostgreSQL), each looking every :data:`LOOK` virtual seconds (the back-off after
    the first try is the same as at a finer pace)."""
    loop = asyncio.get_running_loop()
    holder: list[Worker] = []

    def wall() -> float:
        return holder[0].now()

    running = await start_gateway_headend(
        headend_config(tmp_path),
        ["meter-1"],
        database=database,
        clock=lambda: START + int(loop.time()),
        port=0,
        wall=wall,
        sync=LOOK,
    )
    running.headend.give_up = GIVE_UP
    queue = await open_queue(queue_location(database))
    link = GatewayLink(
        parse_settings({"url": broker.url, "client_id": "headend-w"}), prefix=PREFIX, timeout=2.0
    )
    work = Worker(
        queue,
        link,
        owner="w",
        clock=loop.time,
        poll=LOOK,
        control=await Control.open(queue),
        resync=math.inf,
    )
    holder.append(work)
    await link.start()
    await work.start()
    try:
        await real(link.connected.wait())
        yield Api(tmp_path / "pki", running)
    finally:
        await work.stop()
        await link.close()
        await queue.close()
        await running.close()


async def test_a_device_its_gateway_never_reaches_is_given_up(
    broker: Broker, tmp_path: Path, place: Any
) -> None:
    async with (
        gateways(broker, tmp_path / "meters", meters=1, provisioned=False) as gw,
        served(tmp_path, place("headend"), broker) as service,
    ):
        ihd, thermostat, *others = gw.sims.devices
        for device in (thermostat, *others):  # never joins (the others, never registered,
            gw.sims.air_of(device).silence(parse_eui64(device.mac))  # switched off)
        for index in (0, 1):
            reply = await service.call("POST", "/devices", registration(gw, index))
            assert reply.status == 201, reply
        await asyncio.sleep(60)  # virtual: the IHD joins and runs CBKE

        async def ready() -> bool:
            return await service.state(ihd.mac) == "meter ready"

        await until(ready)
        assert await service.call("POST", "/groups", {"name": "g", "meters": ["meter-1"]})
        sent = await service.call("POST", "/sends/message", {"group": "g", "text": "Hi"})
        assert sent.status == 202, sent
        send, away = sent.body["id"], canonical_eui64(thermostat.mac)

        async def outcomes() -> dict[str, dict[str, Any]]:
            view = (await service.call("GET", f"/sends/{send}")).body
            return {o["mac"]: o for o in view["outcomes"]}

        async def skipped() -> bool:
            return (await outcomes())[away]["outcome"] == "skipped"

        await virtually(skipped)  # the link's waits for the broker follow the real clock
        await asyncio.sleep(GIVE_UP - 120)
        assert (await outcomes())[away]["outcome"] == "skipped"  # tried within the give-up
        await asyncio.sleep(150)

        async def expired() -> bool:
            return (await outcomes())[away]["outcome"] == "expired"

        await virtually(expired)
        found = await outcomes()
        assert found[away]["detail"] == (
            "given up: not reached within 2 hours of the send (last try: pending provisioning)"
        )
        assert found[canonical_eui64(ihd.mac)]["outcome"] == "delivered"
        view = (await service.call("GET", f"/sends/{send}")).body
        assert view["finished"] is True
        tries = _tries(gw, away, send)
        assert tries == 13  # at 0, 30, 90, 210, 510, 1410 ... 6810 and 7201 s
        await asyncio.sleep(3600)
        assert _tries(gw, away, send) == tries  # never tried again
        assert (await outcomes())[away]["outcome"] == "expired"


def _tries(gw: Gateways, device: str, send: int) -> int:
    """How often the meter's ESI was asked to send ``send`` to ``device``."""
    return gw.executed[(device, send)]
