"""A Time server checks a Write Attributes frame's records, when it arrives, in the frame's
order, each as if the records before it were written (ZCL 2.5.3.3), in both the divided and
the Undivided form. A Time earlier than LastSetTime, then a ValidUntilTime later than that
Time but not than the LastSetTime before the frame: the ValidUntilTime is "a time, later
than LastSetTime" once the Time is written (ZCL 3.12.2.2.10). It was refused INVALID_VALUE,
checked against the state before its frame."""

from __future__ import annotations

import pytest
from zigpy.zcl import foundation

from tests.time.test_time_restart import SUCCESS, Han, han, place, postgres
from tests.time.test_time_write_race import refused, stored
from tests.time.test_time_write_undivided import records
from zse.se.ids import TIME
from zse.se.ids import TimeAttribute as A
from zse.time.core import INVALID_TIME
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

__all__ = ["han", "place", "postgres"]

FRAMES = pytest.mark.parametrize(
    "command",
    [
        foundation.GeneralCommand.Write_Attributes,
        foundation.GeneralCommand.Write_Attributes_Undivided,
    ],
)


async def frame(han: Han, command: foundation.GeneralCommand, *written: tuple[A, int]) -> bytes:
    """One Write Attributes frame of ``command`` from the display; the response's payload."""
    reply = await han.ihd.endpoints[1].request(
        0x0000,
        SE_ENDPOINT_ID,
        TIME,
        command,
        records(*written),
        cluster_specific=False,
        encrypt=True,
    )
    assert reply.command_id == foundation.GeneralCommand.Write_Attributes_rsp
    return bytes(reply.payload)


@FRAMES
async def test_a_valid_until_time_valid_after_an_earlier_time_of_its_frame_is_taken(
    han: Han, command: foundation.GeneralCommand
) -> None:
    """LastSetTime T0; a frame of Time T1 = T0 - 1000, then ValidUntilTime T1 + 10 (later
    than T1, not than T0): both written, stored and served (the ValidUntilTime was refused
    INVALID_VALUE when its frame arrived, checked against T0)."""
    await han.boot()
    first = han.clock() + 5000
    assert await han.write(A.TIME, first) == SUCCESS
    earlier = first - 1000
    frame_written = ((A.TIME, earlier), (A.VALID_UNTIL_TIME, earlier + 10))
    assert await frame(han, command, *frame_written) == SUCCESS
    values = await han.read()
    assert (values[A.LAST_SET_TIME], values[A.VALID_UNTIL_TIME]) == (earlier, earlier + 10)
    assert (await stored(han))["valid_until_time"] == earlier + 10


async def test_an_undivided_frame_answers_a_valid_until_time_its_time_makes_invalid(
    han: Han,
) -> None:
    """An Undivided frame of Time T1 = T0 + 1000, ValidUntilTime T0 + 500 (later than the
    LastSetTime before the frame, not than T1) and LastSetTime (read-only): the response has a
    record for each that cannot be written (ZCL 2.5.4.3), INVALID_VALUE for the
    ValidUntilTime as well as READ_ONLY (it had only READ_ONLY: the ValidUntilTime, checked
    against T0, reached no commit to be held to T1); nothing written."""
    await han.boot()
    first = han.clock() + 5000
    assert await han.write(A.TIME, first) == SUCCESS
    written = ((A.TIME, first + 1000), (A.VALID_UNTIL_TIME, first + 500), (A.LAST_SET_TIME, 0))
    reply = await frame(han, foundation.GeneralCommand.Write_Attributes_Undivided, *written)
    assert reply == refused(foundation.Status.INVALID_VALUE, A.VALID_UNTIL_TIME) + refused(
        foundation.Status.READ_ONLY, A.LAST_SET_TIME
    )
    values = await han.read()
    assert (values[A.LAST_SET_TIME], values[A.VALID_UNTIL_TIME]) == (first, INVALID_TIME)
