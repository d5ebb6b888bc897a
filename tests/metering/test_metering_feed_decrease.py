"""MeteringServer.feed on a delivered-only meter (the default) refuses a summation that goes
down (SE D.3.2.2.1.1: CurrentSummationDelivered only grows, save a 48-bit rollover): it raises
SummationDecreased and the attribute a HAN device reads over the air stays what it was.

tests/metering runs on the ordinary loop; the HAN here runs on the simulator's virtual clock
(``VirtualClockLoop``), as tests/services does, so the joins take no real time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.services.test_metering_server import G, ask, han, read_values
from zse.metering.core import Readings, SummationDecreased
from zse.se.ids import MeteringAttribute as A
from zse.sim import VirtualClockLoop

SUCCESS = foundation.Status.SUCCESS
READ_SUMMATION_AND_DEMAND = t.List[t.uint16_t]([A.CURRENT_SUMM_DELIVERED, A.INSTANTANEOUS_DEMAND])


async def read(endpoint: object) -> dict[int, tuple[int, object]]:
    payload = READ_SUMMATION_AND_DEMAND.serialize()
    return read_values(await ask(endpoint, G.Read_Attributes, payload, cluster=False))


def virtual(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        runner.run(scenario())


def test_feed_refuses_a_decreasing_summation_and_keeps_the_attribute() -> None:
    virtual(_refused)


async def _refused() -> None:
    server, endpoint, _ = await han(81)
    await server.feed(Readings(summation_delivered=5_000, instantaneous_demand=300))
    assert await read(endpoint) == {
        A.CURRENT_SUMM_DELIVERED: (SUCCESS, 5_000),
        A.INSTANTANEOUS_DEMAND: (SUCCESS, 300),
    }
    with pytest.raises(SummationDecreased, match="4999 is below 5000"):
        await server.feed(Readings(summation_delivered=4_999, instantaneous_demand=900))
    # nothing of the refused readings was taken, the demand that came with it included
    assert await read(endpoint) == {
        A.CURRENT_SUMM_DELIVERED: (SUCCESS, 5_000),
        A.INSTANTANEOUS_DEMAND: (SUCCESS, 300),
    }
    assert server.core.read(A.CURRENT_SUMM_DELIVERED) == 5_000
    await server.feed(Readings(summation_delivered=5_000))  # the same value is no decrease
    await server.feed(Readings(summation_delivered=5_250))  # and the meter goes on
    assert (await read(endpoint))[A.CURRENT_SUMM_DELIVERED] == (SUCCESS, 5_250)


def test_a_meter_that_also_exports_takes_any_delivered_summation() -> None:
    """``delivered_only=False`` (an import/export meter) is not held to a growing register."""
    virtual(_import_export)


async def _import_export() -> None:
    server, endpoint, _ = await han(82, delivered_only=False)
    await server.feed(Readings(summation_delivered=5_000, summation_received=10))
    await server.feed(Readings(summation_delivered=4_999))
    assert (await read(endpoint))[A.CURRENT_SUMM_DELIVERED] == (SUCCESS, 4_999)
