"""The ESI's meter takes a snapshot (SE 1.2 Metering) when the ESI publishes a tariff, a change
of tenancy or a change of supplier, and a display reads it over the air with Get Snapshot.
Real components, virtual time."""

from __future__ import annotations

from tests.price.test_price_tariffs import information
from tests.roles.han_builder import EUIS, close
from tests.roles.test_roles_esi_meter import joined
from zse.devmgmt.core import ChangeOfSupplier, ChangeOfTenancy
from zse.metering.core import Readings
from zse.metering.service import MeteringClient
from zse.metering.snapshot_types import MeterSnapshotCause, TouSnapshot
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
