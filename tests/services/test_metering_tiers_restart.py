"""The meter's tier summations (SE D.3.2.2.2) on a real store: written in the profile's commit
(at an interval's close, at stop), served again after a restart and counted on from there;
a record of a release without tiers loads; damaged tiers quarantine the profile record, and
the meter starts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.services.test_supply_told import MeterPort
from zse.metering.core import Readings
from zse.metering.service import MeteringServer
from zse.se.ids import METERING, tier_summation_attribute
from zse.store import Batch, Store

START = 800_000_000 // 1800 * 1800  # a profile interval's start


class ServingPort(MeterPort):
    """The test port, keeping what the meter serves (Read Attributes' sources)."""

    def __init__(self, endpoint_id: int) -> None:
        super().__init__(endpoint_id)
        self.sources: dict[int, Callable[[], Any]] = {}

    def set_attribute_source(self, cluster_id: int, attribute: int, *args: Any) -> None:
        assert cluster_id == METERING
        self.sources[attribute] = args[-1]


class Meter:
    """A meter on ``store`` whose price tier and clock the test sets."""

    def __init__(self, store: Store) -> None:
        self.now, self.tier = START, 0
        self.port = ServingPort(9)
        self.server = MeteringServer(
            self.port, clock=lambda: self.now, store=store, tier=lambda _: self.tier
        )

    async def read(self, delivered: int, *, at: int, tier: int) -> None:
        self.now, self.tier = START + at, tier
        await self.server.feed(Readings(summation_delivered=delivered))

    def served(self, tier: int) -> Any:
        return self.port.sources[tier_summation_attribute(tier)]()


async def test_the_tiers_survive_a_restart_and_count_on(tmp_path) -> None:
    path = tmp_path / "esi.db"
    async with await Store.open(path) as store:
        meter = Meter(store)
        await meter.server.start()
        await meter.read(1000, at=10, tier=1)  # the register when first read
        await meter.read(1100, at=20, tier=1)
        await meter.read(1250, at=30, tier=2)  # the price changed between readings
        await meter.server.stop()
    async with await Store.open(path) as store:
        again = Meter(store)
        await again.server.start()
        assert again.server.core.tiers() == {1: (100, None), 2: (150, None)}
        assert (again.served(1), again.served(2)) == (100, 150)
        await again.read(1300, at=40, tier=2)
        assert again.served(2) == 200
        await again.server.stop()
        assert await store.quarantined() == []


async def test_the_tiers_are_in_the_commit_of_the_interval_that_closed(tmp_path) -> None:
    """No stop (the process killed): what the store holds is the profile written when an
    interval closed, with the tiers as that reading left them."""
    path = tmp_path / "esi.db"
    store = await Store.open(path)
    meter = Meter(store)
    await meter.server.start()
    await meter.read(1000, at=10, tier=1)
    await meter.read(1100, at=1790, tier=1)
    await meter.read(1180, at=1810, tier=2)  # closes the interval: the profile is written
    await meter.read(1190, at=1820, tier=2)  # not written: lost with the summation
    await store.close()
    async with await Store.open(path) as store:
        again = Meter(store)
        await again.server.start()
        core = again.server.core
        assert core.read(0x0000) == 1180
        assert core.tiers() == {1: (100, None), 2: (80, None)}
        await again.server.stop()


async def test_a_profile_of_a_release_without_tiers_loads(tmp_path) -> None:
    path = tmp_path / "esi.db"
    async with await Store.open(path) as store:
        meter = Meter(store)
        meter.server.core.update(Readings(summation_delivered=777), START + 60)
        record = meter.server.core.snapshot()
        del record["tiers"]
        await store.commit(Batch().put(meter.server.namespace, "profile", record))
        await meter.server.start()
        assert meter.server.core.read(0x0000) == 777
        assert meter.server.core.tiers() == {}
        await meter.read(800, at=90, tier=3)
        assert meter.served(3) == 23
        await meter.server.stop()
        assert await store.quarantined() == []


async def test_damaged_tiers_quarantine_the_profile_and_the_meter_starts(tmp_path) -> None:
    path = tmp_path / "esi.db"
    async with await Store.open(path) as store:
        meter = Meter(store)
        record = meter.server.core.snapshot()
        record["tiers"] = {"49": [5, None]}
        await store.commit(Batch().put(meter.server.namespace, "profile", record))
        seen: list[Any] = []
        store.on_quarantine(seen.append)
        await meter.server.start()
        assert [(q.key, q.reason) for q in seen] == [("profile", ".tiers: 49 is not a tier (1-48)")]
        assert meter.server.core.tiers() == {}
        await meter.read(1000, at=10, tier=1)
        await meter.read(1010, at=20, tier=1)
        assert meter.served(1) == 10
        await meter.server.stop()
