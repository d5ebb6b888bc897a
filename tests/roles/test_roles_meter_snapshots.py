"""The ESI's meter takes a snapshot (SE 1.2 Metering) of a tariff, a change of tenancy or a
change of supplier the ESI publishes, at the change's implementation time (now for one that
takes effect now), and a display reads it over the air with Get Snapshot. Real components,
virtual time."""

from __future__ import annotations

import asyncio

import pytest

from tests.price.test_price_tariffs import information
from tests.roles.han_builder import EUIS, close, restarted
from tests.roles.test_roles_esi_meter import joined
from zse.devmgmt.core import ChangeOfSupplier, ChangeOfTenancy
from zse.metering.core import Readings
from zse.metering.service import MeteringClient
from zse.metering.snapshot_types import MeterSnapshotCause, TouSnapshot
from zse.metering.snapshots import MAX_PLANNED, SnapshotsFull
from zse.price import TariffCancellation
from zse.roles.esi import TargetError
from zse.se.ids import MeteringAttribute as A
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

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


async def test_a_change_for_later_is_snapshot_when_it_takes_effect_across_a_restart(
    tmp_path,
) -> None:
    """A tariff starting in an hour and a change of tenancy in two: each snapshot is taken at
    its start, with the register as it is then (before, at publication: the consumption
    before the change counted after it); the ESI restarts in between (the plan is stored);
    a cancelled tariff's start is never snapshot; the same tariff published again moves its
    snapshot."""
    meter = {"formatting": {A.DIVISOR: 1000}}
    han = await joined(tmp_path, meter=meter)
    try:
        esi = han.esi
        assert esi.meter is not None
        now = han.clock()
        await esi.meter.feed(Readings(summation_delivered=1000))
        await esi.publish_tariff(information(start_time=now + 3600), device=EUIS["ihd"])
        await esi.publish_tariff(information(start_time=now + 1800), device=EUIS["ihd"])
        await esi.publish_tariff(information(tariff_id=8, start_time=now + 600), device=EUIS["ihd"])
        await esi.cancel_tariff(
            TariffCancellation(provider_id=5, issuer_tariff_id=8), device=EUIS["ihd"]
        )
        tenancy = ChangeOfTenancy(provider_id=5, issuer_event_id=9, implementation_time=now + 7200)
        await esi.publish_change_of_tenancy(tenancy)
        assert esi.meter.snapshots.snapshots == []
        await asyncio.sleep(1200)
        await esi.meter.feed(Readings(summation_delivered=2000))
        again = await restarted(han, meter=meter)
        assert again.meter is not None
        await asyncio.sleep(600)  # the tariff starts
        await again.meter.feed(Readings(summation_delivered=3000))
        await asyncio.sleep(5400)  # the tenancy changes
        taken = [(s.cause, s.time - now, s.summation) for s in again.meter.snapshots.snapshots]
        assert taken == [
            (CAUSE.Change_Of_Tenancy, 7200, 3000),
            (CAUSE.Change_Of_Tariff_Information, 1800, 2000),
        ]
    finally:
        await close(han)


async def test_a_change_refused_for_its_target_is_not_snapshot(tmp_path) -> None:
    """A change of tenancy or supplier refused for its target before anything is published
    (two targets, a group no device is in) leaves the meter's snapshots as they were: none
    taken now, none planned (before, the snapshot came first: one for a change never
    published, and another when it was then sent right)."""
    han = await joined(tmp_path, meter={"formatting": {A.DIVISOR: 1000}})
    try:
        esi = han.esi
        assert esi.meter is not None
        now = han.clock()
        changes = (
            ChangeOfTenancy(provider_id=5, issuer_event_id=9),
            ChangeOfTenancy(provider_id=5, issuer_event_id=9, implementation_time=now + 60),
        )
        for change in changes:
            with pytest.raises(TargetError):
                await esi.publish_change_of_tenancy(change, device=EUIS["ihd"], broadcast=True)
        supplier = ChangeOfSupplier(
            current_provider_id=5, issuer_event_id=10, proposed_provider_id=6
        )
        with pytest.raises(TargetError):
            await esi.publish_change_of_supplier(supplier, group="no such group")
        assert (esi.meter.snapshots.snapshots, esi.meter.snapshots.planned) == ([], {})
    finally:
        await close(han)


async def test_a_tariff_whose_snapshot_cannot_be_planned_is_refused_before_it_is_kept(
    tmp_path,
) -> None:
    """MAX_PLANNED snapshots wait already: a tariff for later is refused (SnapshotsFull) with
    nothing changed, neither kept nor stored by the Price server (before, it was stored and
    then refused, never sent to its target, and a retry found it a repeat, refused again)."""
    han = await joined(tmp_path, meter={"formatting": {A.DIVISOR: 1000}})
    try:
        esi = han.esi
        assert esi.meter is not None
        later = han.clock() + 3600
        for n in range(MAX_PLANNED):
            await esi.meter.plan_snapshot(f"other/{n}", later, CAUSE.General)
        with pytest.raises(SnapshotsFull):
            await esi.publish_tariff(information(start_time=later), device=EUIS["ihd"])
        assert esi.price.protocol.tariffs.held(han.clock()) == []
        assert esi.store is not None
        assert not [k for k in await esi.store.load(esi.price.namespace) if "tariff" in k]
        await esi.publish_tariff(information(), device=EUIS["ihd"])  # one for now: taken now
        assert [s.cause for s in esi.meter.snapshots.snapshots] == [
            CAUSE.Change_Of_Tariff_Information
        ]
    finally:
        await close(han)


async def test_a_tariff_published_again_is_snapshot_once(tmp_path) -> None:
    """The same tariff published to one device, then again (to another, or after a failed
    send): each publication took a snapshot, so a tariff sent device by device filled the
    ring of 16 with copies and pushed real snapshots out. One now; a newer tariff takes its
    own; a newer change of tenancy too."""
    han = await joined(tmp_path, meter={"formatting": {A.DIVISOR: 1000}})
    try:
        esi = han.esi
        assert esi.meter is not None
        await esi.meter.feed(Readings(summation_delivered=4242))
        for _ in range(3):
            await esi.publish_tariff(information(), device=EUIS["ihd"])
        await esi.publish_tariff(information(tariff_id=8, event_id=101), device=EUIS["ihd"])
        for event in (9, 9, 10):
            await esi.publish_change_of_tenancy(
                ChangeOfTenancy(provider_id=5, issuer_event_id=event)
            )
        causes = [s.cause for s in esi.meter.snapshots.snapshots]
        assert causes == [
            CAUSE.Change_Of_Tenancy,
            CAUSE.Change_Of_Tenancy,
            CAUSE.Change_Of_Tariff_Information,
            CAUSE.Change_Of_Tariff_Information,
        ]
    finally:
        await close(han)
