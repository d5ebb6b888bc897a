"""The DRLC client attributes the ESI writes (SE D.2.3.2) are committed before they change
anything: a Write Attributes whose store commit fails is FAILURE (ZCL 2.5.5), and the core
keeps the value the endpoint serves and the store holds (the core took the new value before
the commit, so the device acted on an enrollment group it served and stored as never
written). A Write Attributes Undivided frame is committed as one record, all or none (ZCL
2.5.4.3): each record was committed alone, so a commit failing left the others written."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from tests.mqtt.test_mqtt_store_failure import FullDisk
from tests.services.test_drlc_client_attributes import (
    GC,
    UINT8,
    S,
    publisher,
    record,
    setup,
    statuses,
)
from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from tests.time.test_time_write_undivided import one_commit_left
from zse.drlc import Status
from zse.store import Store

NAMESPACE = "drlc.client/1"
GROUP, START = 0, 1  # UtilityEnrollmentGroup, StartRandomizationMinutes


@contextlib.asynccontextmanager
async def full_disk(path: Path) -> AsyncIterator[FullDisk]:
    """The store, whose commits fail when told (:class:`FullDisk`); closed at the end."""
    store = await FullDisk.open(path)
    assert isinstance(store, FullDisk)
    try:
        yield store
    finally:
        await store.close()


async def test_a_write_whose_commit_fails_changes_nothing_the_device_does(tmp_path: Path):
    """Group 5 written while the store fails: FAILURE, and the device still acts on an
    event of group 6 (enrolled in group 0, a member of every group), as the endpoint serves
    and the store holds after a restart; it acted on group 5, served and stored as 0."""
    async with full_disk(tmp_path / "lcd.db") as store:
        _, server, lcd, clock, boot, write, read = await setup(80, store=store)
        client = await boot()
        publish = publisher(server, lcd, clock)

        store.fail("put")
        reply = await write(record(GROUP, UINT8, 5))
        assert statuses(reply.payload) == [(S.FAILURE, GROUP)]
        assert await read(GROUP) == {GROUP: 0}
        assert client.core.utility_enrollment_group == 0
        assert await publish(1, 6) == [Status.RECEIVED]
        await client.stop()
        await store.close()
        store2 = await Store.open(tmp_path / "lcd.db")
        try:
            client = await boot(store2)  # constructed with group 0 again
            assert "attributes" not in await store2.load(NAMESPACE)
            assert await read(GROUP) == {GROUP: 0}
            assert await publish(2, 6) == [Status.RECEIVED]
            await client.stop()
        finally:
            await store2.close()


async def test_an_undivided_frame_is_committed_as_one_all_or_none(tmp_path: Path):
    """A frame of UtilityEnrollmentGroup and StartRandomizationMinutes whose commit fails:
    FAILURE for each record, neither applied, served nor stored (the second record was
    committed alone after the first failed, and written). Then, the store taking one more
    commit: the next frame is that one commit, both written, and so after a restart."""
    async with full_disk(tmp_path / "lcd.db") as store:
        _, _, _, _, boot, write, read = await setup(81, store=store)
        client = await boot()
        frame = record(GROUP, UINT8, 5) + record(START, UINT8, 0)
        store.fail("put")
        reply = await write(frame, GC.Write_Attributes_Undivided)
        assert statuses(reply.payload) == [(S.FAILURE, GROUP), (S.FAILURE, START)]
        assert await read(GROUP, START) == {GROUP: 0, START: 30}
        core = client.core
        assert (core.utility_enrollment_group, core.start_randomization_minutes) == (0, 30)
        assert "attributes" not in await store.load(NAMESPACE)

        one_commit_left(store)
        reply = await write(frame, GC.Write_Attributes_Undivided)
        assert statuses(reply.payload) == [(S.SUCCESS, None)]
        assert await read(GROUP, START) == {GROUP: 5, START: 0}
        assert (core.utility_enrollment_group, core.start_randomization_minutes) == (5, 0)
        reply = await write(
            record(START, UINT8, 7) + record(GROUP, UINT8, 6), GC.Write_Attributes_Undivided
        )
        assert statuses(reply.payload) == [(S.FAILURE, START), (S.FAILURE, GROUP)]
        assert await read(GROUP, START) == {GROUP: 5, START: 0}
        await client.stop()
        store2 = await Store.open(tmp_path / "lcd.db")
        try:
            client = await boot(store2)  # constructed with group 0 and 30 minutes again
            assert await read(GROUP, START) == {GROUP: 5, START: 0}
            core = client.core
            assert (core.utility_enrollment_group, core.start_randomization_minutes) == (5, 0)
            await client.stop()
        finally:
            await store2.close()


class AttributesSlow(TransactionSlow):
    key = "attributes"


async def test_a_write_cancelled_during_its_transaction_is_applied_as_stored(tmp_path: Path):
    """Group 5 written, its commit cancelled once its transaction has begun (carried out by
    the store): the device acts on group 5 and serves it, as stored. It kept group 0, and
    its next write, made from that, took the stored 5 back."""
    async with await AttributesSlow.open(tmp_path / "lcd.db") as store:
        assert isinstance(store, AttributesSlow)
        _, _, _, _, boot, write, read = await setup(82, store=store)
        client = await boot()
        await cancelled_in_its_transaction(store, client._written("utility_enrollment_group", 5))
        assert await read(GROUP) == {GROUP: 5}
        assert client.core.utility_enrollment_group == 5
        reply = await write(record(START, UINT8, 0))
        assert statuses(reply.payload) == [(S.SUCCESS, None)]
        await client.stop()
    async with await Store.open(tmp_path / "lcd.db") as store:
        assert (await store.load(NAMESPACE))["attributes"]["utility_enrollment_group"] == 5
