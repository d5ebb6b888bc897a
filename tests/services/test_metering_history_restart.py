"""The meter's Historical Consumption set (SE 1.2 D.3.2.2.5) on a real store: served as it is
at the time of the read (a day that turned with no reading is a new day at 0), written in the
profile's commit (an interval's close, the stop), nothing counted twice when the process is
killed at that commit, and a profile record of a release without the set still loads."""

from __future__ import annotations

import contextlib

import pytest

from tests.services.test_messaging_restart import CrashingStore, Killed
from tests.services.test_metering_tiers_restart import START, Meter
from zse.se.ids import MeteringAttribute as A
from zse.store import Batch, Store

TODAY, YESTERDAY = A.CURRENTDAY_CONSUMPTION_DELIVERED, A.PREVIOUSDAY_CONSUMPTION_DELIVERED
#: The next UTC midnight after START (06:00 UTC): the meter's local day turns (UTC here).
MIDNIGHT = START - START % 86400 + 86400


def served(meter: Meter, attribute: int) -> object:
    """What a Read Attributes of ``attribute`` answers now (the meter's source of it)."""
    return meter.port.sources[attribute]()


async def test_a_day_that_turned_with_no_reading_reads_as_a_new_day(tmp_path) -> None:
    async with await Store.open(tmp_path / "esi.db") as store:
        meter = Meter(store)
        await meter.server.start()
        await meter.read(1000, at=10, tier=0)
        await meter.read(1250, at=600, tier=0)
        assert served(meter, TODAY) == 250
        meter.now = MIDNIGHT + 60  # no reading since
        assert (served(meter, TODAY), served(meter, YESTERDAY)) == (0, 250)
        await meter.server.stop()


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
async def test_killed_at_a_profile_commit_nothing_is_counted_twice(tmp_path, after) -> None:
    """Killed at the commit of the interval's close (before or after it): restarted on the
    same file, today holds what that commit held, and the next reading counts on from the
    register stored with it, so the day ends at what the register advanced, never more."""
    path = tmp_path / f"killed-{after}.db"
    store = await CrashingStore.open(path)
    meter = Meter(store)
    await meter.server.start()
    await meter.read(1000, at=10, tier=0)
    await meter.read(1100, at=1810, tier=0)  # closes an interval: commit 1 (100 today)
    await meter.read(1150, at=1900, tier=0)  # in memory only
    store.crash_at, store.after = 2, after
    with pytest.raises(Killed):
        await meter.read(1180, at=3610, tier=0)  # closes the next: commit 2, killed
    with contextlib.suppress(Killed):
        await meter.server.stop()
    await Store.close(store)
    async with await Store.open(path) as store:
        again = Meter(store)
        again.now = START + 3620
        await again.server.start()
        assert served(again, TODAY) == (180 if after else 100)
        await again.read(1200, at=3700, tier=0)
        assert served(again, TODAY) == 200  # 1200 - 1000: the advance since commit 1 once
        await again.server.stop()


async def test_a_profile_of_a_release_without_the_history_loads(tmp_path) -> None:
    async with await Store.open(tmp_path / "esi.db") as store:
        meter = Meter(store)
        record = meter.server.core.snapshot()
        record["values"] = {str(int(A.CURRENT_SUMM_DELIVERED)): 777}
        del record["history"]
        await store.commit(Batch().put(meter.server.namespace, "profile", record))
        await meter.server.start()
        assert served(meter, TODAY) == 0
        await meter.read(800, at=90, tier=0)
        assert served(meter, TODAY) == 23
        await meter.server.stop()
        assert await store.quarantined() == []
