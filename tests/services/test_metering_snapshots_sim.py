"""SE 1.2 Metering snapshots and sampling end to end on the simulated air (virtual clock): a
HAN device's MeteringClient asks the ESI's MeteringServer; what the meter keeps survives a
restart and a SIGKILL."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
from typing import Any

import pytest
from zigpy.zcl.foundation import Status

from tests.events.test_events_store_failure import FailingStore
from tests.services.test_drlc_persistence import OPEN, close_stores
from tests.services.test_metering_server import START, Load, ask, han
from zse.errors import StoreError
from zse.metering.core import Readings
from zse.metering.service import MeteringClient, MeteringServer
from zse.metering.snapshot_client import schedule_snapshot
from zse.metering.snapshot_types import (
    FREQUENCY_DAY,
    MeterSnapshotCause,
    SampleType,
    ScheduleEntry,
    SnapshotConfirmation,
    TouSnapshot,
    schedule_field,
)
from zse.metering.snapshots import (
    schedule_snapshot_request,
    start_sampling_request,
    take_snapshot_request,
)
from zse.metering.wire import Metering
from zse.se.ids import MeteringClientCommand
from zse.store import Store
from zse.zcl.codec import decode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

__all__ = ["close_stores"]  # the autouse fixture that closes what OPEN holds

DAY = 86400
MANUAL = MeterSnapshotCause.Manually_Triggered_From_Client
SCHEDULED = MeterSnapshotCause.Scheduled_Snapshot


def display(endpoint, clock) -> MeteringClient:
    return MeteringClient(endpoint, meter_ep=SE_ENDPOINT_ID, clock=clock)


async def test_take_schedule_and_get_snapshots_over_the_air() -> None:
    server, endpoint, clock = await han(60, source=Load(3600))
    await server.start()
    client = display(endpoint, clock)
    assert await client.get_snapshot() is None  # NOT_FOUND: none taken yet
    await asyncio.sleep(600)
    snapshot_id = await client.take_snapshot(MeterSnapshotCause.General)
    got = await client.get_snapshot()
    assert got is not None
    assert (got.snapshot_id, got.cause) == (snapshot_id, MeterSnapshotCause.General | MANUAL)
    assert got.tou == TouSnapshot(summation=server.core.read(0x0000) or 0)
    assert got.tou.summation >= 600  # 1 Wh a second, read every 30 s
    # a daily schedule: two days later, two more snapshots, caused by the schedule
    entry = ScheduleEntry(1, clock() + 60, schedule_field(1, FREQUENCY_DAY), 4, 1)
    assert await schedule_snapshot(endpoint, client.meter, 1, [entry]) == {1: 0}
    await asyncio.sleep(2 * DAY)
    newest = await client.get_snapshot(cause=SCHEDULED)
    assert newest is not None
    assert (newest.total_found, newest.cause) == (2, 1 | SCHEDULED)
    assert newest.tou is not None
    assert newest.tou.summation > got.tou.summation + DAY
    assert await client.get_snapshot(cause=SCHEDULED, offset=2) is None
    await server.stop()


async def test_a_snapshot_split_over_two_commands_is_joined_by_the_display() -> None:
    server, endpoint, clock = await han(61, source=Load())
    tiers = [0x0102_0304_0500 + i for i in range(15)]
    server.snapshots.tiers = lambda delivered: tiers
    await server.start()
    client = display(endpoint, clock)
    await client.take_snapshot()
    got = await client.get_snapshot()
    assert got is not None
    assert got.tou is not None
    assert got.tou.tiers == tuple(tiers)
    assert len(got.payload) == 6 + 1 + 15 * 6  # more than one frame holds
    await server.stop()


async def test_sampling_the_demand_over_the_air() -> None:
    load = Load(2000)
    server, endpoint, clock = await han(62, source=load, default_update_period=10)
    await server.start()
    client = display(endpoint, clock)
    await asyncio.sleep(20)
    sample_id = await client.start_sampling(clock(), interval=60, count=5)
    assert sample_id == 1
    start = clock()
    await asyncio.sleep(100)
    load.watts = 3000  # from the next reading (every 10 s)
    await asyncio.sleep(500)
    got = await client.get_sampled_data(sample_id)
    assert got is not None
    assert (got.start_time, got.interval, got.sample_type) == (
        start,
        60,
        SampleType.Instantaneous_Demand,
    )
    assert got.values() == (2000, 2000, 3000, 3000, 3000)
    assert await client.get_sampled_data(sample_id + 1) is None
    # a second session with an old Issuer Event ID is refused
    assert await client.start_sampling(1, interval=60, count=5) == 0xFFFF
    await server.stop()


async def test_snapshots_schedules_and_samples_survive_a_restart(tmp_path) -> None:
    path = tmp_path / "esi.db"
    store = await Store.open(path)
    OPEN.append(store)
    server, endpoint, clock = await han(63, source=Load(), store=store)
    await server.start()
    client = display(endpoint, clock)
    await client.take_snapshot()
    entry = ScheduleEntry(1, clock() + DAY, schedule_field(1, FREQUENCY_DAY), 4, 1)
    assert await schedule_snapshot(endpoint, client.meter, 1, [entry]) == {1: 0}
    sample_id = await client.start_sampling(clock(), interval=60, count=10)
    await asyncio.sleep(150)
    # stored before the answers went: nothing more to write at stop
    assert "snapshots" in await store.load(server.namespace)
    await server.stop()
    await store.close()
    OPEN.remove(store)
    store = await Store.open(path)
    OPEN.append(store)
    again = MeteringServer(server.endpoint, clock=clock, source=Load(), store=store)
    await again.start()
    taken = await client.get_snapshot()
    assert taken is not None
    assert taken.snapshot_id == 1
    await asyncio.sleep(DAY)
    scheduled = await client.get_snapshot(cause=SCHEDULED)
    assert scheduled is not None
    assert scheduled.snapshot_id == 2
    got = await client.get_sampled_data(sample_id)
    assert got is not None
    assert len(got.samples) == 10
    await again.stop()


WRITER = """
import asyncio, sys
from zse.metering.core import Readings
from zse.metering.service import MeteringServer
from zse.se.ids import METERING
from zse.sim import Air, run
from zse.store import Store
from zse.zcl.se_endpoint import SeEndpoint

async def main(path, start):
    store = await Store.open(path)
    app = await Air(seed=1).coordinator(channel=15)
    se = SeEndpoint(app, in_clusters=[METERING])
    await se.start()
    loop = asyncio.get_running_loop()
    clock = lambda: start + int(loop.time())
    meter = MeteringServer(se, clock=clock, store=store, snapshot_capacity=64)
    await meter.start()
    while True:
        await asyncio.sleep(60)
        taken = await meter.take_snapshot(1)
        print(taken.snapshot_id, flush=True)

run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_sigkill_loses_no_snapshot_it_stored(tmp_path) -> None:
    """A meter killed (SIGKILL) while it takes snapshots: every snapshot it reported taken is
    there after a restart, ids go on from the last one, and nothing is quarantined."""
    path = tmp_path / "meter.db"
    reported: list[int] = []
    for _ in range(3):  # kill, restart on the same file, kill again
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(START)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        assert proc.stdout is not None
        lines = [proc.stdout.readline().split() for _ in range(10)]
        assert all(lines), "the writer died"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        reported += [int(line[0]) for line in lines]
    # ids went on after each restart: never reused, each run from the last one stored (a
    # snapshot stored after the last line read, before the kill, takes its id: it is kept)
    assert reported == sorted(set(reported))
    store = await Store.open(path)
    OPEN.append(store)
    seen: list[object] = []
    store.on_quarantine(seen.append)
    record = (await store.load(f"metering.server/{SE_ENDPOINT_ID}"))["snapshots"]
    kept = {snapshot[0] for snapshot in record["snapshots"]}
    assert set(reported) <= kept
    assert set(range(1, max(reported) + 1)) <= kept  # no id skipped: each was stored
    assert seen == []


METER = Destination.device(0x0000, SE_ENDPOINT_ID)


async def _answered_failure(
    endpoint: Any, store: FailingStore, send: Send, *, let_through: int = 0
) -> None:
    """Ask the meter ``send`` with the store's next commit but ``let_through`` failing: the
    answer is FAILURE."""
    store.fail_next, store.let_through = True, let_through
    reply = await ask(endpoint, send.command_id, send.payload)
    assert (reply.payload[0], reply.payload[1]) == (send.command_id, Status.FAILURE)


async def test_snapshot_commands_whose_write_fails_keep_nothing(tmp_path) -> None:
    """The store write of a Take Snapshot, a Schedule Snapshot or a Start Sampling fails (a
    full disk): the display is answered FAILURE and nothing is kept (the snapshot, schedule or
    session stayed in memory, served to Get Snapshot and written with the next commit, while
    the display was told the command failed); nor is the ESI's own snapshot whose write fails.
    The hostile review of the SE 1.2 Metering work found it."""
    store = await FailingStore.open(tmp_path / "meter.db")
    OPEN.append(store)
    server, endpoint, clock = await han(83, store=store)
    failed = functools.partial(_answered_failure, endpoint, store)
    await server.start()
    await server.feed(Readings(summation_delivered=10))
    kept = await server.take_snapshot(MeterSnapshotCause.General)  # stored: the one to keep
    stored = server.snapshots.record()
    await failed(take_snapshot_request(METER))
    entry = ScheduleEntry(1, clock() + 60, schedule_field(1, FREQUENCY_DAY), 4, 1)
    await failed(schedule_snapshot_request(METER, 5, [entry]))
    await failed(start_sampling_request(METER, 6, sample_type=SampleType.Consumption_Delivered))
    store.fail_next = True
    with pytest.raises(StoreError):
        await server.take_snapshot(MeterSnapshotCause.Change_Of_Tenancy)
    assert server.snapshots.record() == stored
    assert not server.snapshots.changed
    # the next write does not carry them either: the store holds the snapshots taken
    await server.take_snapshot(MeterSnapshotCause.General)
    record = (await store.load(server.namespace))["snapshots"]
    assert [s[0] for s in record["snapshots"]] == [kept.snapshot_id + 1, kept.snapshot_id]
    assert (record["schedules"], record["sessions"]) == ([], [])
    await server.stop()


async def test_a_command_and_what_it_changed_are_stored_in_one_commit(tmp_path) -> None:
    """A Take Snapshot on a meter with supply control whose supply change is not yet stored
    (made on the core itself: a change made at its time whose write fails is no longer kept
    unstored) stores the snapshot and the supply together: with its snapshot committed on its
    own, then the supply in a commit that failed (a store failing now and then), the display
    was answered FAILURE and the snapshot put back in memory, but the store kept it, and a
    restart brought it back. The hostile review of the snapshot put-back found it. Its next
    commit failing, the command keeps nothing, in memory or in the store."""
    store = await FailingStore.open(tmp_path / "meter.db")
    OPEN.append(store)
    server, endpoint, _ = await han(84, store=store, supply=True)
    await server.start()
    await server.feed(Readings(summation_delivered=10))
    await server.take_snapshot(MeterSnapshotCause.General)
    stored = server.snapshots.record()
    assert server.supply is not None
    server.supply.count_load_limit()  # on the core: changed in memory, to be stored
    assert server.supply.changed
    store.fail_next = True
    await _answered_failure(endpoint, store, take_snapshot_request(METER))
    assert server.snapshots.record() == stored
    assert (await store.load(server.namespace))["snapshots"] == stored
    store.fail_next, store.let_through = True, 1  # the commit after the command's fails
    send = take_snapshot_request(METER)
    reply = await ask(endpoint, send.command_id, send.payload)
    response = (True, MeteringClientCommand.TAKE_SNAPSHOT_RESPONSE)
    assert (reply.is_cluster_command, reply.command_id) == response, reply.payload.hex()
    answer, _ = decode_command(Metering, reply.command_id, reply.payload, from_server=True)
    assert answer.snapshot_confirmation == SnapshotConfirmation.Accepted
    record = await store.load(server.namespace)
    assert record["snapshots"] == server.snapshots.record()
    assert record["snapshots"]["snapshots"][0][0] == answer.snapshot_id
    assert record["supply"] == server.supply.snapshot()  # type: ignore[union-attr]
    await server.stop()


async def test_a_scheduled_snapshot_whose_write_failed_is_stored_at_stop(tmp_path) -> None:
    """A snapshot the schedule took, its write failing (a full disk for a moment), was kept in
    memory for the next write, and lost if a clean stop came first: the stop stores it (with
    the profile it already stored)."""
    store = await FailingStore.open(tmp_path / "esi.db")
    OPEN.append(store)
    server, endpoint, clock = await han(64, source=Load(), store=store)
    await server.start()
    client = display(endpoint, clock)
    entry = ScheduleEntry(1, clock() + 60, schedule_field(1, FREQUENCY_DAY), 4, 1)
    assert await schedule_snapshot(endpoint, client.meter, 1, [entry]) == {1: 0}
    store.fail_next = True
    await asyncio.sleep(61)  # taken at its time, its write failing (logged)
    assert [s.cause for s in server.snapshots.snapshots] == [1 | SCHEDULED]
    assert (await store.load(server.namespace))["snapshots"]["snapshots"] == []
    await server.stop()
    stored = (await store.load(server.namespace))["snapshots"]
    assert stored == server.snapshots.record()
    assert [s[2] for s in stored["snapshots"]] == [1 | SCHEDULED]
