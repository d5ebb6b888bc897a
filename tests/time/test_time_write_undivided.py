"""A Time server's Write Attributes Undivided frame is all or nothing also when its records
are committed (ZCL 2.5.4.3: if any attribute cannot be written, none is, and the response
has a status record for each that could not be; ZCL 2.5.5: none for the others). Its records
are checked again together, in the frame's order, under the lock that orders the writes,
and committed as one. Before, each was committed alone: a record refused at commit (a
ValidUntilTime not later than the LastSetTime an earlier Time record set, ZCL 3.12.2.2.10)
or a commit failing left the frame's earlier records written, stored and served."""

from __future__ import annotations

import struct

from zigpy.zcl import foundation

from tests.time.test_time_restart import HOUR, NAMESPACE, Han, han, place, postgres
from tests.time.test_time_write_race import refused, stored
from zse.se.ids import TIME
from zse.se.ids import TimeAttribute as A
from zse.store import Batch, Store
from zse.time.core import ATTRIBUTE_TYPES, INVALID_TIME
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

__all__ = ["han", "place", "postgres"]


def records(*written: tuple[A, int]) -> bytes:
    """Write attribute records (ZCL 2.5.3.1) of Time attributes, each of its own type."""
    formats = {A.TIME_ZONE: "<i", A.DST_SHIFT: "<i", A.TIME_STATUS: "<B"}
    return b"".join(
        struct.pack("<HB", attribute, ATTRIBUTE_TYPES[attribute])
        + struct.pack(formats.get(attribute, "<I"), value)
        for attribute, value in written
    )


async def undivided(han: Han, *written: tuple[A, int]) -> bytes:
    """Write Attributes Undivided from the display, over the air; the response's payload."""
    reply = await han.ihd.endpoints[1].request(
        0x0000,
        SE_ENDPOINT_ID,
        TIME,
        foundation.GeneralCommand.Write_Attributes_Undivided,
        records(*written),
        cluster_specific=False,
        encrypt=True,
    )
    assert reply.command_id == foundation.GeneralCommand.Write_Attributes_rsp
    return bytes(reply.payload)


async def test_a_record_refused_at_commit_leaves_the_frame_unwritten(han: Han) -> None:
    """Time T1, then a ValidUntilTime later than LastSetTime when the frame arrives but not
    than T1: the ValidUntilTime is refused INVALID_VALUE once the Time record before it is
    taken into account, and the Time, which could have been written, is not either (no
    record for it in the response); nothing stored or served (the Time was)."""
    await han.boot()
    new_time = han.clock() + 1000
    reply = await undivided(han, (A.TIME, new_time), (A.VALID_UNTIL_TIME, new_time - 10))
    assert reply == refused(foundation.Status.INVALID_VALUE, A.VALID_UNTIL_TIME)
    values = await han.read()
    assert values[A.TIME] == han.clock()
    assert (values[A.LAST_SET_TIME], values[A.VALID_UNTIL_TIME]) == (INVALID_TIME, INVALID_TIME)
    assert await han.stores[-1].load(NAMESPACE) == {}


def one_commit_left(store: Store) -> None:
    """``store`` takes one more commit; the next closes it first, so it fails."""
    commit = store.commit

    async def closing(batch: Batch) -> list[int]:
        await store.close()
        return await commit(batch)

    async def once(batch: Batch) -> list[int]:
        store.commit = closing  # type: ignore[method-assign]
        return await commit(batch)

    store.commit = once  # type: ignore[method-assign]


async def test_a_frame_is_committed_as_one(han: Han) -> None:
    """The store takes one commit, then is closed: a frame of ValidUntilTime, Time and
    TimeZone is that one commit, written whole, in the frame's order (the Time resets the
    ValidUntilTime before it, ZCL 3.12.2.2.10), and so served after a restart (each record
    was committed alone: the ValidUntilTime written, the Time and TimeZone FAILURE). The next
    frame's commit fails: FAILURE for each of its records, none applied."""
    await han.boot()
    one_commit_left(han.stores[-1])
    new_time = han.clock() + 1000
    frame = ((A.VALID_UNTIL_TIME, new_time + HOUR), (A.TIME, new_time), (A.TIME_ZONE, HOUR))
    assert await undivided(han, *frame) == bytes([foundation.Status.SUCCESS])
    assert (await stored(han))["valid_until_time"] == INVALID_TIME
    reply = await undivided(han, (A.TIME_ZONE, -HOUR), (A.TIME, new_time + 5000))
    assert reply == refused(foundation.Status.FAILURE, A.TIME_ZONE) + refused(
        foundation.Status.FAILURE, A.TIME
    )
    for _ in range(2):
        values = await han.read()
        assert values[A.TIME] - han.clock() == 1000
        assert (values[A.LAST_SET_TIME], values[A.TIME_ZONE]) == (new_time, HOUR)
        assert values[A.VALID_UNTIL_TIME] == INVALID_TIME
        await han.kill()
        await han.boot()
