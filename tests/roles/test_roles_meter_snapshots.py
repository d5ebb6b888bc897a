"""The ESI's meter takes a snapshot (SE 1.2 Metering) when the ESI publishes a tariff, a change
of tenancy or a change of supplier, and a display reads it over the air with Get Snapshot.
Real components, virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.events.test_events_store_failure import FailingStore
from tests.price.test_price_tariffs import information
from tests.roles.han_builder import EUIS, START, close
from tests.roles.test_roles_esi_meter import joined
from zse.devmgmt.core import ChangeOfSupplier, ChangeOfTenancy
from zse.errors import StoreError
from zse.installcode import InstallCode
from zse.metering.core import Readings
from zse.metering.service import MeteringClient, MeteringServer
from zse.metering.snapshot_types import (
    FREQUENCY_DAY,
    MeterSnapshotCause,
    SampleType,
    ScheduleEntry,
    TouSnapshot,
    schedule_field,
)
from zse.metering.snapshots import (
    schedule_snapshot_request,
    start_sampling_request,
    take_snapshot_request,
)
from zse.se.ids import METERING
from zse.se.ids import MeteringAttribute as A
from zse.se.ids import MeteringServerCommand as S
from zse.sim import Air
from zse.store import Store
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

CAUSE = MeterSnapshotCause


async def test_tariff_tenancy_and_supplier_changes_are_snapshot(tmp_path) -> None:
    han = await joined(tmp_path, meter={"formatting": {A.DIVISOR: 1000}})
    try:
        esi = han.esi
        assert esi.meter is not None
        await esi.meter.feed(Readings(summation_delivered=4242))
        await esi.publish_tariff(information(), device=EUIS["ihd"])
        await esi.publish_change_of_tenancy(ChangeOfTenancy(provider_id=5, issuer_event_id=9))
        supplier = ChangeOfSupplier(
            current_provider_id=5, issuer_event_id=10, proposed_provider_id=6
        )
        await esi.publish_change_of_supplier(supplier)
        causes = [s.cause for s in esi.meter.snapshots.snapshots]
        assert causes == [
            CAUSE.Change_Of_Supplier,
            CAUSE.Change_Of_Tenancy,
            CAUSE.Change_Of_Tariff_Information,
        ]
        ihd = han.devices["ihd"]
        client = MeteringClient(ihd.endpoint, meter_ep=SE_ENDPOINT_ID, clock=han.clock)
        got = await client.get_snapshot(cause=CAUSE.Change_Of_Tenancy)
        assert got is not None
        assert (got.cause, got.tou) == (CAUSE.Change_Of_Tenancy, TouSnapshot(summation=4242))
    finally:
        await close(han)


async def test_snapshot_commands_whose_write_fails_keep_nothing(tmp_path) -> None:
    """The store write of a Take Snapshot, a Schedule Snapshot or a Start Sampling fails (a
    full disk): the display is answered FAILURE and nothing is kept (the snapshot, schedule or
    session stayed in memory, served to Get Snapshot and written with the next commit, while
    the display was told the command failed); nor is the ESI's own snapshot whose write fails.
    The hostile review of the SE 1.2 Metering work found it."""
    air = Air(seed=83)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    se = SeEndpoint(app, in_clusters=[METERING])
    await se.start()
    code = InstallCode.generate(rng=air.rng)
    dev = air.device("00:0d:6f:00:0e:00:00:02", install_code=code, channel=15)
    ep = dev.add_endpoint(1, device_type=0x0502, out_clusters=[METERING])
    await app.permit_with_link_key(dev.ieee, t.KeyData(code.link_key), 60)
    await dev.join()
    await asyncio.sleep(30)
    store = await FailingStore.open(tmp_path / "meter.db")
    meter = MeteringServer(se, store=store, clock=clock)

    async def failed(command_id: int, payload: bytes) -> None:
        store.fail_next = True
        reply = await ep.request(
            0x0000, SE_ENDPOINT_ID, METERING, command_id, payload, encrypt=True
        )
        assert (reply.payload[0], reply.payload[1]) == (command_id, foundation.Status.FAILURE)

    try:
        await meter.start()
        await meter.feed(Readings(summation_delivered=10))
        kept = await meter.take_snapshot(CAUSE.General)  # stored: the one to keep
        stored = meter.snapshots.record()
        await failed(S.TAKE_SNAPSHOT, request_payload(take_snapshot_request, CAUSE.General))
        entry = ScheduleEntry(1, clock() + 60, schedule_field(1, FREQUENCY_DAY), 4, CAUSE.General)
        await failed(S.SCHEDULE_SNAPSHOT, request_payload(schedule_snapshot_request, 5, [entry]))
        sampling = start_sampling_request(
            Destination.device(0x0000, SE_ENDPOINT_ID),
            6,
            sample_type=SampleType.Consumption_Delivered,
        )
        await failed(S.START_SAMPLING, sampling.payload)
        store.fail_next = True
        with pytest.raises(StoreError):
            await meter.take_snapshot(CAUSE.Change_Of_Tenancy)
        assert meter.snapshots.record() == stored
        assert [s.snapshot_id for s in meter.snapshots.snapshots] == [kept.snapshot_id]
        assert not meter.snapshots.changed
        # the next write does not carry them either: the store holds the one snapshot
        await meter.take_snapshot(CAUSE.General)
        record = (await store.load(meter.namespace))["snapshots"]
        assert [s[0] for s in record["snapshots"]] == [kept.snapshot_id + 1, kept.snapshot_id]
        assert (record["schedules"], record["sessions"]) == ([], [])
    finally:
        await meter.stop()
        await Store.close(store)
        air.close()


def request_payload(build: Callable[..., Send], *args: object) -> bytes:
    """The payload of a request the display's calls would send."""
    return build(Destination.device(0x0000, SE_ENDPOINT_ID), *args).payload
