"""A reader of an inter-PAN inbox cancelled in the loop turn a frame arrives is cancelled.

``Inbox.receive`` waited with ``asyncio.wait_for``, which on Python 3.11 returns the frame
instead of raising when the cancel lands after the frame came but before the reader resumed
(CPython gh-86296): the cancel was lost, and a reader loop cancelled at close went on."""

from __future__ import annotations

from zigpy.types import EUI64

from tests.cancel_race import cancel_as_it_completes
from zse.interpan import SE_PROFILE_ID, DeliveryMode, InterPanFrame
from zse.interpan.service import Inbox
from zse.sim import run


def test_a_cancel_as_a_frame_arrives_is_not_lost() -> None:
    async def main() -> None:
        inbox = Inbox(None)
        frame = InterPanFrame(
            delivery_mode=DeliveryMode.UNICAST,
            dst_pan_id=0x1234,
            dst_address=EUI64.convert("00:0d:6f:00:00:00:00:01"),
            src_pan_id=0x1234,
            src_ieee=EUI64.convert("00:0d:6f:00:00:00:00:02"),
            cluster_id=0x0700,
            profile_id=SE_PROFILE_ID,
            payload=b"\x01\x00\x00",
        )
        accepted, cancelled = await cancel_as_it_completes(
            inbox.receive(timeout=5), lambda: inbox._offer(frame)
        )
        assert cancelled or not accepted

    run(main())
