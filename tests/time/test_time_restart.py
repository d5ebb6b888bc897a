"""A Time server's written attributes survive a restart (ZCL 3.12.2.2): with a store, what
Write Attributes set (Time, as an offset from the clock, with LastSetTime; ValidUntilTime;
TimeStatus's Synchronized bit; TimeZone, DstStart, DstEnd and DstShift) is committed before
the Write Attributes Response, and loaded back at the next start. Before, all of it was lost
with the process: a device's clock set over the air jumped back, ValidUntilTime reverted."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from zigpy.zcl import foundation

from tests.postgres_server import place, postgres, raw_sql, wait_released
from tests.time.test_time_service import esi_and_display, write
from zse.errors import StoreError
from zse.se.ids import TIME, TimeAttribute
from zse.sim import Air, SimDevice
from zse.store import Batch, Quarantined, Store
from zse.time.core import ATTRIBUTE_TYPES, INVALID_TIME
from zse.time.service import TimeServer, TimeStatus, read_time
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

__all__ = ["place", "postgres"]  # fixtures: each test runs on SQLite and on PostgreSQL

A = TimeAttribute
START = 800_000_000
HOUR = 3600
DEVICE = TimeStatus(master=False, superseding=False)
NAMESPACE = f"time.server/{SE_ENDPOINT_ID}"
SUCCESS = bytes([foundation.Status.SUCCESS])


@dataclass
class Han:
    se: SeEndpoint
    ihd: SimDevice
    clock: Callable[[], int]
    place: Callable[[str], object]
    stores: list[Store]

    async def boot(
        self, status: TimeStatus = DEVICE, opener: type[Store] = Store, **kwargs: object
    ) -> TimeServer:
        """A new process: the store opened again (as ``opener``), a new server loaded from it."""
        store = await opener.open(self.place("time.db"))  # type: ignore[arg-type]
        self.stores.append(store)
        server = TimeServer(self.se, clock=self.clock, status=status, store=store, **kwargs)  # type: ignore[arg-type]
        await server.load()
        server.start()
        return server

    async def kill(self) -> None:
        """The process ends (the server holds nothing unstored: closing is all a kill
        leaves out) and stays down for an hour."""
        await self.stores[-1].close()
        await asyncio.sleep(HOUR)

    async def write(self, attribute: A, value: int) -> bytes:
        """Write Attributes from the display, over the air; the response's payload."""
        fmt = {A.TIME_ZONE: "<i", A.DST_SHIFT: "<i", A.TIME_STATUS: "<B"}.get(attribute, "<I")
        return bytes(
            await write(self.ihd, attribute, ATTRIBUTE_TYPES[attribute], struct.pack(fmt, value))
        )

    async def read(self) -> dict[A, int]:
        reading = await read_time(self.ihd.endpoints[1], 0x0000, SE_ENDPOINT_ID, encrypt=True)
        return dict(reading.values)


@pytest.fixture
async def han(place):
    se, ihd, clock = await esi_and_display(63)
    sim = Han(se, ihd, clock, place, [])
    yield sim
    for store in sim.stores:
        await store.close()


async def test_a_written_time_keeps_running_across_a_restart(han: Han) -> None:
    """ZCL 3.12.2.2.1, 3.12.2.2.9: Time written (1000 s ahead of the clock) is served, an
    hour's downtime later, 1000 s ahead still; LastSetTime is the value written."""
    await han.boot()
    written = han.clock() + 1000
    assert await han.write(A.TIME, written) == SUCCESS
    await han.kill()
    await han.boot()
    values = await han.read()
    assert values[A.TIME] - han.clock() == 1000
    assert values[A.LAST_SET_TIME] == written


async def test_a_written_valid_until_time_survives_a_restart(han: Han) -> None:
    """ZCL 3.12.2.2.10, on a Master (an ESI's status): only ValidUntilTime is writable."""
    await han.boot(TimeStatus())
    until = han.clock() + 7 * 24 * HOUR
    assert await han.write(A.VALID_UNTIL_TIME, until) == SUCCESS
    await han.kill()
    await han.boot(TimeStatus())
    assert (await han.read())[A.VALID_UNTIL_TIME] == until


async def test_a_written_synchronized_bit_survives_a_restart(han: Han) -> None:
    """ZCL 3.12.2.2.2: of a written TimeStatus only Synchronized is taken, and kept."""
    await han.boot()
    assert await han.write(A.TIME_STATUS, 0x02) == SUCCESS
    await han.kill()
    server = await han.boot()
    assert server.status == TimeStatus(master=False, synchronized=True, superseding=False)
    assert (await han.read())[A.TIME_STATUS] == 0x02


async def test_a_written_zone_survives_a_restart(han: Han) -> None:
    """ZCL 3.12.2.2.3-3.12.2.2.6: TimeZone, DstStart, DstEnd and DstShift as written."""
    await han.boot(zone="Europe/London")
    now = han.clock()
    zone = {A.TIME_ZONE: -5 * HOUR, A.DST_START: now - HOUR, A.DST_END: now + 9 * HOUR}
    for attribute, value in {**zone, A.DST_SHIFT: 1800}.items():
        assert await han.write(attribute, value) == SUCCESS
    await han.kill()
    await han.boot(zone="Europe/London")  # what was written, not the configured zone
    values = await han.read()
    assert {a: values[a] for a in (*zone, A.DST_SHIFT)} == {**zone, A.DST_SHIFT: 1800}
    assert values[A.LOCAL_TIME] == values[A.TIME] - 5 * HOUR + 1800


async def test_a_write_is_stored_before_it_is_acknowledged(han: Han) -> None:
    """The Write Attributes Response's SUCCESS comes after the commit: the record is in the
    database when the writer reads it."""
    await han.boot()
    assert await han.write(A.TIME, han.clock() + 50) == SUCCESS
    rows = await raw_sql(
        han.place("time.db"), ("SELECT key FROM records WHERE namespace = ?", (NAMESPACE,))
    )
    assert rows == [("written",)]


async def test_a_write_the_store_refuses_answers_failure_and_changes_nothing(
    han: Han, caplog: pytest.LogCaptureFixture
) -> None:
    """A commit that fails (here: the store was closed) is FAILURE for that attribute (ZCL
    2.5.5), and the server serves what it served before: nothing unstored is applied."""
    await han.boot()
    await han.stores[-1].close()
    with caplog.at_level(logging.ERROR):
        for attribute, value in [(A.TIME, han.clock() + 50), (A.VALID_UNTIL_TIME, START + HOUR)]:
            reply = await han.write(attribute, value)
            assert reply == bytes([foundation.Status.FAILURE]) + struct.pack("<H", attribute)
    values = await han.read()
    assert values[A.TIME] == han.clock()
    assert values[A.LAST_SET_TIME] == values[A.VALID_UNTIL_TIME] == INVALID_TIME
    assert "store is closed (cannot commit)" in caplog.text


async def test_a_master_at_start_takes_no_written_time(han: Han) -> None:
    """A Master's clock is its own (ZCL 3.12.2.2.1): a Time written while this server was
    not one is not applied when it starts as one; ValidUntilTime still is."""
    await han.boot()
    assert await han.write(A.TIME, han.clock() + 1000) == SUCCESS
    until = han.clock() + 1000 + HOUR
    assert await han.write(A.VALID_UNTIL_TIME, until) == SUCCESS
    await han.kill()
    server = await han.boot(TimeStatus())
    values = await han.read()
    assert (server.offset, values[A.TIME]) == (0, han.clock())
    assert values[A.LAST_SET_TIME] == INVALID_TIME
    assert values[A.VALID_UNTIL_TIME] == until


async def test_an_altered_record_is_quarantined_and_named(
    han: Han, caplog: pytest.LogCaptureFixture
) -> None:
    """A record changed behind the store's back fails its checksum: the store sets it aside
    and names it (StoreError family); the server starts as one never written."""
    await han.boot()
    assert await han.write(A.TIME, han.clock() + 1000) == SUCCESS
    await han.kill()
    await raw_sql(
        han.place("time.db"),
        (
            "UPDATE records SET value = REPLACE(value, '\"set_at\"', '\"set_at\" ') "
            "WHERE namespace = ?",
            (NAMESPACE,),
        ),
    )
    with caplog.at_level(logging.WARNING, logger="zse.store"):
        await han.boot()
    assert [(q.namespace, q.key) for q in await han.stores[-1].quarantined()] == [
        (NAMESPACE, "written")
    ]
    assert f"record {NAMESPACE}/written quarantined: checksum mismatch" in caplog.text
    values = await han.read()
    assert (values[A.TIME], values[A.LAST_SET_TIME]) == (han.clock(), INVALID_TIME)


async def test_a_wrong_shaped_record_is_quarantined_with_its_path(han: Han) -> None:
    """A record of the wrong shape (its checksum valid: another version, a hand) is a
    RecordError naming the namespace, key and field, quarantined; the others' writes work."""
    store = await Store.open(han.place("time.db"))  # type: ignore[arg-type]
    await store.commit(Batch().put(NAMESPACE, "written", {"zone": {"time_zone": 90_000}}))
    await store.close()
    seen: list[Quarantined] = []
    han.stores.append(await Store.open(han.place("time.db")))  # type: ignore[arg-type]
    han.stores[-1].on_quarantine(seen.append)
    server = TimeServer(han.se, clock=han.clock, status=DEVICE, store=han.stores[-1])
    await server.load()
    server.start()
    assert [(q.where, q.reason) for q in seen] == [
        (f"record {NAMESPACE}/written", ".zone: missing dst_end, dst_shift, dst_start")
    ]
    assert await han.write(A.TIME_ZONE, HOUR) == SUCCESS
    assert (await han.read())[A.TIME_ZONE] == HOUR


async def test_a_server_with_a_store_is_loaded_and_written_through_it(han: Han) -> None:
    """start() before load() and the synchronous write() would lose what they change at the
    next restart: both are refused with a StoreError saying what to call."""
    han.stores.append(await Store.open(han.place("time.db")))  # type: ignore[arg-type]
    server = TimeServer(han.se, clock=han.clock, status=DEVICE, store=han.stores[-1])
    with pytest.raises(StoreError, match=r"await load\(\) before start\(\)"):
        server.start()
    await server.load()
    server.start()
    with pytest.raises(StoreError, match=r"await write_stored\(\)"):
        server.write(A.TIME, START)
    assert await server.write_stored(A.TIME, START + 10) == foundation.Status.SUCCESS
    assert await server.write_stored(A.TIME, INVALID_TIME) == foundation.Status.INVALID_VALUE
    assert server.now() == START + 10  # no virtual time passed since the write


KILLED = """
import asyncio, sys
from zse.se.ids import TIME, TimeAttribute
from zse.sim import Air
from zse.store import Store
from zse.time.service import TimeServer, TimeStatus

async def main(location):
    store = await Store.open(location)
    endpoint = Air(seed=64).device("00:0d:6f:00:0d:00:00:0b", channel=15).add_endpoint(
        1, device_type=0x0502, in_clusters=[TIME])
    server = TimeServer(endpoint, clock=lambda: 800_000_000,
                        status=TimeStatus(master=False, superseding=False), store=store)
    await server.load()
    server.start()
    status = await server.write_stored(TimeAttribute.TIME, 800_001_000)
    print(int(status), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1]))
"""


async def test_a_written_time_survives_sigkill(place) -> None:
    """kill -9 right after the write was acknowledged: the next process serves it."""
    location = place("killed.db")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(location)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "0\n"  # SUCCESS
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    await wait_released(location)
    endpoint = (
        Air(seed=65)
        .device("00:0d:6f:00:0d:00:00:0c", channel=15)
        .add_endpoint(1, device_type=0x0502, in_clusters=[TIME])
    )
    async with await Store.open(location) as store:
        server = TimeServer(endpoint, clock=lambda: 800_000_000 + HOUR, status=DEVICE, store=store)  # type: ignore[arg-type]
        await server.load()
    assert (server.now(), server.core.last_set_time) == (800_001_000 + HOUR, 800_001_000)
