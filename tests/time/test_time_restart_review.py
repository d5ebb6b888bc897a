"""A Time server's stored writes under races and restarts (a review of the store's arrival):
a write racing load(), two frames whose writes interleave, a Master restart between two
non-Master lives, a commit failing after one succeeded, a clock set back while down, two
servers on one device."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from zigpy.zcl import foundation

from tests.time.test_time_restart import DEVICE, HOUR, NAMESPACE, SUCCESS, Han, han, place, postgres
from zse.se.ids import TIME
from zse.se.ids import TimeAttribute as A
from zse.store import Batch, Store
from zse.time.core import INVALID_TIME
from zse.time.service import TimeServer, TimeStatus
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

__all__ = ["han", "place", "postgres"]


def _gated(method: Callable[..., Awaitable[Any]], gate: asyncio.Event) -> Callable[..., Any]:
    """``method`` finishing its work, then waiting for ``gate`` before it returns (a slow
    store: the database done, the answer not yet back)."""

    async def slow(*args: Any) -> Any:
        result = await method(*args)
        await gate.wait()
        return result

    return slow


async def test_a_write_while_load_runs_is_not_undone_by_it(han: Han) -> None:
    """load() reads the record, a write commits and applies meanwhile, then load() applies
    what it read: the write must stand (served and stored alike)."""
    server = await han.boot()
    assert await han.write(A.TIME, han.clock() + 100) == SUCCESS
    store = han.stores[-1]
    gate = asyncio.Event()
    store.load = _gated(store.load, gate)  # type: ignore[method-assign]
    loading = asyncio.ensure_future(server.load())
    await asyncio.sleep(0)
    written = han.clock() + 5000
    writing = asyncio.ensure_future(han.write(A.TIME, written))
    await asyncio.sleep(1)
    gate.set()
    await loading
    assert await writing == SUCCESS
    assert server.core.last_set_time == written
    offset = server.offset
    assert offset in (4999, 5000)  # applied once load() is over, a second later at most
    assert await han.write(A.TIME_STATUS, 0x02) == SUCCESS  # commits the whole record
    await han.kill()
    await han.boot()
    values = await han.read()
    assert (values[A.TIME] - han.clock(), values[A.LAST_SET_TIME]) == (offset, written)


async def _two_frames(han: Han, until: Callable[[int], int]) -> tuple[int, int]:
    """Frame 1 writes Time (its commit slow), frame 2 ValidUntilTime meanwhile; both taken,
    each checked alone (ZCL 2.5.3.3). What is served after both; it is what a restart serves
    (it was not: the endpoint served frame 1's invalid ValidUntilTime, the store frame 2's)."""
    await han.boot()
    store = han.stores[-1]
    gate = asyncio.Event()
    store.commit = _gated(store.commit, gate)  # type: ignore[method-assign]
    new_time = han.clock() + 1000
    first = asyncio.ensure_future(han.write(A.TIME, new_time))
    await asyncio.sleep(1)
    second = asyncio.ensure_future(han.write(A.VALID_UNTIL_TIME, until(new_time)))
    await asyncio.sleep(1)
    gate.set()
    assert (await first, await second) == (SUCCESS, SUCCESS)
    served = (await han.read())[A.VALID_UNTIL_TIME]
    await han.kill()
    await han.boot()
    assert (await han.read())[A.VALID_UNTIL_TIME] == served
    return served, until(new_time)


async def test_a_valid_until_time_racing_a_time_is_served_as_stored(han: Han) -> None:
    served, written = await _two_frames(han, lambda time: time + HOUR)
    assert served == written


async def test_a_time_and_a_valid_until_time_in_one_frame_are_served_as_stored(
    han: Han,
) -> None:
    """One Write Attributes frame, Time then ValidUntilTime: both taken; a restart serves
    what was read."""
    await han.boot()
    new_time = han.clock() + 1000
    payload = struct.pack("<HBI", A.TIME, 0xE2, new_time)
    payload += struct.pack("<HBI", A.VALID_UNTIL_TIME, 0xE2, new_time + HOUR)
    reply = await han.ihd.endpoints[1].request(
        0x0000,
        SE_ENDPOINT_ID,
        TIME,
        foundation.GeneralCommand.Write_Attributes,
        payload,
        cluster_specific=False,
        encrypt=True,
    )
    assert reply.payload == SUCCESS
    served = await han.read()
    assert (served[A.LAST_SET_TIME], served[A.VALID_UNTIL_TIME]) == (new_time, new_time + HOUR)
    await han.kill()
    await han.boot()
    again = await han.read()
    assert (again[A.LAST_SET_TIME], again[A.VALID_UNTIL_TIME]) == (new_time, new_time + HOUR)


async def test_a_master_life_between_two_device_lives_loses_no_written_time(han: Han) -> None:
    """Time written as a device; a restart as a Master (which takes no written Time) whose
    ValidUntilTime is written; a restart as a device: the Time written first is back, as it
    is when the Master wrote nothing."""
    await han.boot()
    assert await han.write(A.TIME, han.clock() + 1000) == SUCCESS
    assert await han.write(A.TIME_ZONE, HOUR) == SUCCESS
    await han.kill()
    await han.boot(TimeStatus())
    assert await han.write(A.VALID_UNTIL_TIME, han.clock() + 3 * HOUR) == SUCCESS
    await han.kill()
    server = await han.boot()
    assert server.offset == 1000
    values = await han.read()
    assert values[A.TIME] - han.clock() == 1000
    assert values[A.TIME_ZONE] == HOUR


async def test_a_commit_failing_after_one_succeeded_keeps_the_first(han: Han) -> None:
    """The store takes the first write and refuses the second: the first is served and
    stored, the second is FAILURE and changes nothing."""
    await han.boot()
    store = han.stores[-1]
    first_time = han.clock() + 100
    commit = store.commit
    calls = 0

    async def second_fails(batch: Batch) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 2:
            await store.close()
        return await commit(batch)

    store.commit = second_fails  # type: ignore[method-assign]
    assert await han.write(A.TIME, first_time) == SUCCESS
    reply = await han.write(A.TIME_ZONE, HOUR)
    assert reply == bytes([foundation.Status.FAILURE]) + struct.pack("<H", A.TIME_ZONE)
    values = await han.read()
    assert (values[A.LAST_SET_TIME], values[A.TIME_ZONE]) == (first_time, 0)
    await asyncio.sleep(HOUR)
    await han.boot()
    values = await han.read()
    assert (values[A.LAST_SET_TIME], values[A.TIME_ZONE]) == (first_time, 0)


async def test_a_clock_set_back_while_down_moves_the_written_time_with_it(han: Han) -> None:
    """Time is kept as an offset from the wall clock: the clock set back two hours while
    the process was down, Time is still 1000 s ahead of it; LastSetTime as written."""
    await han.boot()
    written = han.clock() + 1000
    assert await han.write(A.TIME, written) == SUCCESS
    await han.kill()
    clock = han.clock
    han.clock = lambda: clock() - 2 * HOUR
    await han.boot()
    values = await han.read()
    assert values[A.TIME] - han.clock() == 1000
    assert values[A.LAST_SET_TIME] == written


async def test_two_servers_on_one_device_keep_their_own_writes(han: Han) -> None:
    """Two Time servers of one device, on one store: each its namespace."""
    store = await Store.open(han.place("time.db"))  # type: ignore[arg-type]
    han.stores.append(store)
    one = TimeServer(han.se, clock=han.clock, status=DEVICE, store=store)
    other = TimeServer(han.se, clock=han.clock, status=DEVICE, store=store, namespace="t/2")
    assert one.namespace != other.namespace
    for server in (one, other):
        await server.load()
    assert await one.write_stored(A.TIME_ZONE, HOUR) == foundation.Status.SUCCESS
    assert await other.write_stored(A.TIME_ZONE, -HOUR) == foundation.Status.SUCCESS
    again = [
        TimeServer(han.se, clock=han.clock, status=DEVICE, store=store, namespace=name)
        for name in (one.namespace, other.namespace)
    ]
    for server in again:
        await server.load()
    assert [s.core.values(han.clock()).time_zone for s in again] == [HOUR, -HOUR]


async def test_an_undivided_write_with_one_record_refused_stores_nothing(han: Han) -> None:
    """Write Attributes Undivided, Time valid and TimeZone out of range: nothing is
    written, so nothing is committed either."""
    await han.boot()
    payload = struct.pack("<HBI", A.TIME, 0xE2, han.clock() + 1000)
    payload += struct.pack("<HBi", A.TIME_ZONE, 0x2B, 90_000)
    reply = await han.ihd.endpoints[1].request(
        0x0000,
        SE_ENDPOINT_ID,
        TIME,
        foundation.GeneralCommand.Write_Attributes_Undivided,
        payload,
        cluster_specific=False,
        encrypt=True,
    )
    assert reply.payload[0] != foundation.Status.SUCCESS
    assert await han.stores[-1].load(NAMESPACE) == {}
    assert (await han.read())[A.LAST_SET_TIME] == INVALID_TIME
