from __future__ import annotations

import asyncio

from zse.provisioning import LifecycleState
from tests.roles.han_builder import EUIS, build, close


async def test_smoke(tmp_path):
    han = await build(tmp_path)
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd")
    await ihd.start()
    await asyncio.sleep(5)
    await han.esi.settle()
    print(han.events)
    print(han.device_events["ihd"])
    assert han.esi.device(EUIS["ihd"]).state is LifecycleState.METER_READY
    await close(han)
