"""#14.6: a HAN device reads the ESI's Time attributes and computes the ESI's local time."""

from __future__ import annotations

import asyncio
import zoneinfo

from tests.roles.han_builder import EUIS, build, close
from zse.se.ids import TimeAttribute
from zse.time.core import FixedZone, ZoneYear, from_zigbee
from zse.time.service import TimeStatus

A = TimeAttribute


async def joined(tmp_path, **esi_options):
    han = await build(tmp_path, **esi_options)
    await han.esi.provision(EUIS["ihd"])
    await han.add("ihd").start()
    await asyncio.sleep(30)
    await han.esi.settle()
    return han


async def test_a_device_computes_the_esis_local_time_in_london_summer(tmp_path):
    han = await joined(tmp_path, time_zone="Europe/London")
    try:
        reading = await han.devices["ihd"].read_time()
        now = han.clock()
        served = han.esi.time.core.attributes(reading.values[A.TIME])
        assert reading.values == {A.TIME_STATUS: 0b1101, **served}  # all ten, one read
        assert reading.status == TimeStatus(master_zone_dst=True)
        assert reading.values[A.TIME] == now
        assert reading.local_time == served[A.LOCAL_TIME] == now + 3600  # BST in May 2025
        london = from_zigbee(now).astimezone(zoneinfo.ZoneInfo("Europe/London"))
        assert from_zigbee(reading.local_time).replace(tzinfo=None) == london.replace(tzinfo=None)
    finally:
        await close(han)


async def test_a_device_sees_dst_end_as_the_esi_does(tmp_path):
    """The ESI's DST ends 100 s after the device joined: both sides drop the shift together."""
    start = 800_000_000 + 200  # past the 30 s interview and the joins
    zone = FixedZone(ZoneYear(time_zone=-18000, dst_start=0, dst_end=start, dst_shift=3600))
    han = await joined(tmp_path, time_zone=zone)
    try:
        ihd = han.devices["ihd"]
        before = await ihd.read_time()
        assert before.values[A.TIME] < start
        assert before.local_time - before.values[A.TIME] == -18000 + 3600
        await asyncio.sleep(start - han.clock() + 1)
        after = await ihd.read_time()
        assert after.values[A.TIME] >= start
        assert after.local_time - after.values[A.TIME] == -18000
        assert after.local_time == han.esi.time.core.attributes(after.values[A.TIME])[A.LOCAL_TIME]
    finally:
        await close(han)


async def test_without_a_zone_the_esi_keeps_its_old_status(tmp_path):
    han = await joined(tmp_path)
    try:
        reading = await han.devices["ihd"].read_time()
        assert reading.values[A.TIME_STATUS] == 0b1001  # Master | Superseding
        assert reading.local_time == reading.values[A.TIME]
    finally:
        await close(han)
