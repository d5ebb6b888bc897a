"""The ESI keeps its Time server's ValidUntilTime, written over the air (ZCL 3.12.2.2.10),
in its store (the registry's): a restart serves it again. Before, it reverted to
0xFFFFFFFF."""

from __future__ import annotations

import asyncio
import struct

from zigpy.zcl import foundation

from tests.roles.han_builder import CA, EUIS, START, build, close
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.provisioning.registry import HanRegistry
from zse.roles.esi import EnergyServiceInterface
from zse.se.ids import TIME, TimeAttribute
from zse.sim import Air
from zse.time.core import ATTRIBUTE_TYPES, INVALID_TIME

A = TimeAttribute


async def test_the_esis_valid_until_time_survives_a_restart(tmp_path):
    han = await build(tmp_path)
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd")
    await ihd.start()
    await asyncio.sleep(30)
    await han.esi.settle()
    until = han.clock() + 86_400
    assert ihd.esi_endpoint is not None
    reply = await ihd.endpoint.request(
        0x0000,
        ihd.esi_endpoint,
        TIME,
        foundation.GeneralCommand.Write_Attributes,
        struct.pack("<HBI", A.VALID_UNTIL_TIME, ATTRIBUTE_TYPES[A.VALID_UNTIL_TIME], until),
        cluster_specific=False,
        encrypt=True,
    )
    assert reply.payload == bytes([foundation.Status.SUCCESS])
    assert (await ihd.read_time()).values[A.VALID_UNTIL_TIME] == until
    await close(han)
    # the ESI's process again, on the same registry file (the ESI's store)
    registry = await HanRegistry.open(tmp_path / "han.db")
    air = Air(seed=2)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()
    esi = EnergyServiceInterface(
        app,
        credentials=[CA.issue(eui64_bytes(app.state.node_info.ieee), SUITE1)],
        registry=registry,
        clock=lambda: START + int(loop.time()),
    )
    try:
        await esi.start()
        served = esi.endpoint.attribute_value(TIME, A.VALID_UNTIL_TIME)
        assert served is not None
        assert (int(served.value), esi.time.core.last_set_time) == (until, INVALID_TIME)
    finally:
        await esi.stop()
        await registry.close()
        air.close()
