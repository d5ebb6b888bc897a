"""A Time server's writes checked again when they are committed, in the order the writes
commit (ZCL 3.12.2.2.10: ValidUntilTime is "a time, later than LastSetTime"; ZCL 2.5.3.3: a
value refused answers INVALID_VALUE). A record is checked when its frame arrives; a write of
another frame committed meanwhile (a Time, setting LastSetTime) could make it wrong, and it
was stored and served all the same."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable
from typing import Any

import pytest
from zigpy.zcl import foundation

from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from tests.time.test_time_restart import HOUR, NAMESPACE, SUCCESS, Han, han, place, postgres
from tests.time.test_time_service import write
from zse.se.ids import TimeAttribute as A
from zse.store import Batch
from zse.time.core import INVALID_TIME
from zse.time.service import TimeStatus

__all__ = ["han", "place", "postgres"]


def refused(status: foundation.Status, attribute: A) -> bytes:
    """A Write Attributes Response refusing one record (ZCL 2.5.5)."""
    return struct.pack("<BH", status, attribute)


def hold_commits(han: Han) -> tuple[asyncio.Event, asyncio.Event]:
    """The latest store's commits wait for the first event returned (set it to let them
    through) once the second is set: a slow database, the first commit under way."""
    store = han.stores[-1]
    commit = store.commit
    release, entered = asyncio.Event(), asyncio.Event()

    async def slow(batch: Batch) -> list[int]:
        entered.set()
        await release.wait()
        return await commit(batch)

    store.commit = slow  # type: ignore[method-assign]
    return release, entered


async def stored(han: Han) -> dict[str, Any]:
    """The server's record in the store."""
    return dict((await han.stores[-1].load(NAMESPACE))["written"])


async def test_a_valid_until_time_not_later_than_a_racing_time_is_refused(han: Han) -> None:
    """Frame 1 sets Time (LastSetTime T1), its commit slow; frame 2's ValidUntilTime, later
    than the LastSetTime T0 it is checked against when it arrives but not than T1, waits for
    frame 1's commit: it is refused INVALID_VALUE then, nothing of it stored or served (it
    was stored and served, before LastSetTime)."""
    await han.boot()
    first_set = han.clock() + 100
    assert await han.write(A.TIME, first_set) == SUCCESS
    release, entered = hold_commits(han)
    new_time = first_set + 1000
    time_write = asyncio.ensure_future(han.write(A.TIME, new_time))
    await entered.wait()
    until_write = asyncio.ensure_future(han.write(A.VALID_UNTIL_TIME, first_set + 500))
    await asyncio.sleep(1)  # virtual time: frame 2 reached the ESI and was checked
    assert not until_write.done()
    release.set()
    assert await time_write == SUCCESS
    assert await until_write == refused(foundation.Status.INVALID_VALUE, A.VALID_UNTIL_TIME)
    values = await han.read()
    assert (values[A.LAST_SET_TIME], values[A.VALID_UNTIL_TIME]) == (new_time, INVALID_TIME)
    assert (await stored(han))["valid_until_time"] == INVALID_TIME
    await han.kill()
    await han.boot()
    values = await han.read()
    assert (values[A.LAST_SET_TIME], values[A.VALID_UNTIL_TIME]) == (new_time, INVALID_TIME)


async def test_write_stored_checks_a_valid_until_time_after_a_racing_time(han: Han) -> None:
    """The API alike: write_stored() of a ValidUntilTime while a Time's is being committed
    answers INVALID_VALUE when the new LastSetTime makes it wrong."""
    server = await han.boot()
    first_set = han.clock() + 100
    assert await server.write_stored(A.TIME, first_set) == foundation.Status.SUCCESS
    release, entered = hold_commits(han)
    writes: list[Awaitable[foundation.Status]] = [
        asyncio.ensure_future(server.write_stored(A.TIME, first_set + 1000))
    ]
    await entered.wait()
    writes.append(asyncio.ensure_future(server.write_stored(A.VALID_UNTIL_TIME, first_set + 1)))
    release.set()
    assert [await write for write in writes] == [
        foundation.Status.SUCCESS,
        foundation.Status.INVALID_VALUE,
    ]
    assert server.core.valid_until_time == INVALID_TIME
    assert (await stored(han))["valid_until_time"] == INVALID_TIME


async def test_a_time_checked_before_the_server_became_a_master_is_refused(han: Han) -> None:
    """ZCL 3.12.2.2.1: a Master's Time is not written over the network. A Time checked while
    the server was not one, committed after the application made it a Master (its upstream
    time back), is refused READ_ONLY, the Master's clock untouched."""
    server = await han.boot()
    release, entered = hold_commits(han)
    zone_write = asyncio.ensure_future(han.write(A.TIME_ZONE, HOUR))
    await entered.wait()
    time_write = asyncio.ensure_future(han.write(A.TIME, han.clock() + 1000))
    await asyncio.sleep(1)
    server.status = TimeStatus()
    release.set()
    assert await zone_write == SUCCESS
    assert await time_write == refused(foundation.Status.READ_ONLY, A.TIME)
    assert (server.offset, server.core.last_set_time) == (0, INVALID_TIME)
    assert "time" not in await stored(han)


async def test_a_valid_until_time_after_a_time_in_one_frame_is_held_to_it(han: Han) -> None:
    """One Write Attributes frame, Time T1 then a ValidUntilTime not later than T1: the
    records are written in turn (ZCL 2.5.3.3), so the ValidUntilTime is refused against the
    LastSetTime the Time record set (it was taken, checked against the one before)."""
    await han.boot()
    new_time = han.clock() + 1000
    second = struct.pack("<HBI", A.VALID_UNTIL_TIME, 0xE2, new_time - 10)
    reply = await write(han.ihd, A.TIME, 0xE2, struct.pack("<I", new_time) + second)
    assert reply == refused(foundation.Status.INVALID_VALUE, A.VALID_UNTIL_TIME)
    values = await han.read()
    assert (values[A.LAST_SET_TIME], values[A.VALID_UNTIL_TIME]) == (new_time, INVALID_TIME)


class WrittenSlow(TransactionSlow):
    key = "written"


@pytest.mark.parametrize("frame", [False, True], ids=["write", "undivided"])
async def test_a_write_cancelled_during_its_transaction_is_served_as_stored(
    han: Han, frame: bool
) -> None:
    """A write (or an Undivided frame) whose commit is cancelled once its transaction has
    begun, which the store carries out: the server serves it, as stored. It served the old
    Time, and its next write, made from that, took the stored one back: the restart found
    what had been served neither before nor after."""
    server = await han.boot(opener=WrittenSlow)
    store = han.stores[-1]
    assert isinstance(store, WrittenSlow)
    new_time = han.clock() + 1000
    if frame:
        change = server._commit_undivided([(A.TIME, new_time), (A.TIME_ZONE, HOUR)])
    else:
        change = server.write_stored(A.TIME, new_time)
    await cancelled_in_its_transaction(store, change)
    assert (await han.read())[A.LAST_SET_TIME] == new_time
    assert await han.write(A.TIME_STATUS, 0x02) == SUCCESS
    await han.kill()
    await han.boot()
    assert (await han.read())[A.LAST_SET_TIME] == new_time
