"""What the DRLC shells cost per device at scale (``benchmarks/drlc_scale.py``), checked by
counting, not timing: a server without a store builds no store records for nothing, and the
client attributes' range checks (D.2.3.2) are one set shared by every client."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import zigpy.types as t
from zigpy.zcl import foundation

from tests.drlc.test_drlc_client_core import MIN, T0, event
from tests.drlc.test_drlc_server_core import report
from tests.drlc.test_drlc_server_reports import esi_and_device
from zse.drlc import Status
from zse.drlc.service import _REPORT_EVENT_STATUS, DRLC, DrlcClient, DrlcServer, _report_payload
from zse.se.ids import DrlcAttribute
from zse.sim import Air, run
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

DEVICE = "00:0d:6f:00:0d:00:00:31"


def test_a_server_without_a_store_builds_no_records() -> None:
    """Reports recorded by an ESI with no store are recorded (the view has them) and the
    core's store records are never built: nothing would keep them."""

    async def main() -> tuple[int, list[int], list[int]]:
        se, node = await esi_and_device(seed=31, device=DEVICE, device_type=0x0504)
        loop = asyncio.get_running_loop()
        server = DrlcServer(se, clock=lambda: T0 + int(loop.time()))
        await server.start()
        built: list[str] = []
        record = server.core._record

        def counted(key: str) -> object:
            built.append(key)
            return record(key)

        server.core._record = counted  # type: ignore[method-assign]
        await server.publish(event(7, T0 + 60 * MIN, 30))
        replies = []
        for status, at in [(Status.RECEIVED, 1), (Status.STARTED, 60 * MIN)]:
            payload = _report_payload(report(7, status, T0 + at), None)
            reply = await node.endpoints[1].request(
                0x0000, SE_ENDPOINT_ID, DRLC, _REPORT_EVENT_STATUS, payload, encrypt=True
            )
            replies.append(reply.payload[1])
        statuses = [s for s, _ in server.core.view(7)[DEVICE].statuses]
        return len(built), statuses, replies

    built, statuses, replies = run(main())
    assert statuses == [Status.RECEIVED, Status.STARTED]
    assert replies == [foundation.Status.SUCCESS] * 2
    assert built == 0


def test_clients_share_the_attribute_range_checks() -> None:
    """A thousand load control devices hold one set of range checks, not a thousand: the
    check each client's endpoint runs on a Write Attributes is the same object for all."""

    async def main() -> list[list[Any]]:
        air = Air(seed=32)
        checks = []
        for i in range(3):
            node = air.device(t.EUI64((0x40 + i).to_bytes(8, "little")), channel=15)
            endpoint = node.add_endpoint(1, device_type=0x0504, out_clusters=[DRLC])
            client = DrlcClient(
                endpoint, server_ep=SE_ENDPOINT_ID, device_class=0x80, rng=random.Random(i)
            )
            await client.start(get_scheduled_events=False)
            checks.append([endpoint._writable[DRLC][int(a)][0] for a in DrlcAttribute])
            await client.stop()
        return checks

    first, *others = run(main())
    assert len(first) == len(DrlcAttribute) == 4
    for checks in others:
        assert all(a is b for a, b in zip(first, checks, strict=True))
    # what they check is unchanged (D.2.3.2): above the attribute's range is INVALID_VALUE
    by_attribute = dict(zip(DrlcAttribute, first, strict=True))
    range_check = by_attribute[DrlcAttribute.START_RANDOMIZATION_MINUTES]
    assert callable(range_check)
    assert range_check(0x3C) is None
    assert range_check(0x3D) == foundation.Status.INVALID_VALUE
