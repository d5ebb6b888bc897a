"""The meter tells each supply control event once: a "told" journal entry is committed with
the supply's record and marked once the listeners have it in hand, so a process killed in
between (the supply turned off by the utility: stored, not yet told) tells it after its
restart, and never twice (as the Prepayment server does, test_prepayment_told.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.events.test_events_store_failure import CommitWaits, FailingStore
from tests.services.test_start_order import Port
from tests.store.helpers import killed_itself
from zse.errors import StoreError
from zse.metering.core import Readings
from zse.metering.service import SNAPSHOTS_RETRY, SUPPLY_RETRY, MeteringServer
from zse.metering.snapshot_types import MeterSnapshotCause
from zse.metering.supply import (
    ARMED,
    OFF,
    ON,
    ChangeOutcome,
    FlowThreshold,
    LoadLimitCounterReset,
    SupplyChanged,
    SupplyStatesSet,
    UncontrolledFlowThresholdSet,
    event_from_record,
    event_record,
)
from zse.records import Mismatch
from zse.se.ids import MeteringAttribute
from zse.store import Batch, Store

START = 800_000_000
NAMESPACE = "metering.server/9"

CHILD = """
import asyncio, sys
from tests.services.test_supply_told import run_until_killed

asyncio.run(run_until_killed(sys.argv[1]))
"""


class MeterPort(Port):
    """The services' test port, with the attribute sources the Metering server sets."""

    def set_attribute_source(self, *args: Any, **kwargs: Any) -> None:
        return None


def meter(store: Store) -> MeteringServer:
    return MeteringServer(MeterPort(9), clock=lambda: START, store=store, supply=True)


def timed_meter(store: Store) -> MeteringServer:
    """:func:`meter` on ZigBee time running with the loop from START (its timer fires)."""
    loop = asyncio.get_running_loop()
    return MeteringServer(
        MeterPort(9), clock=lambda: START + int(loop.time()), store=store, supply=True
    )


async def run_until_killed(path: str) -> None:
    """The utility turns the supply off; kill -9 once it is stored, before anyone has it."""
    store = await Store.open(path)
    server = meter(store)

    def told(event: object) -> None:
        if isinstance(event, SupplyChanged):
            print("told", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    server.on_event(told)
    await server.start()
    await server.change_supply(OFF, provider_id=7, issuer_event_id=1)


async def restarted(path: Any) -> tuple[MeteringServer, list[object]]:
    """The meter started again on the store at ``path``: what it told (all marked told)."""
    told: list[object] = []
    async with await Store.open(path) as store:
        server = meter(store)
        server.on_event(told.append)
        await server.start()
        assert await store.unreported(server.namespace) == []
        await server.stop()
    return server, told


def test_a_supply_turned_off_stored_then_killed_is_told_after_the_restart(tmp_path) -> None:
    path = tmp_path / "esi.db"
    assert killed_itself(CHILD, str(path)) == "told\n"
    server, told = asyncio.run(restarted(path))
    assert server.supply is not None
    assert server.supply.status == OFF  # stored before the kill
    assert told == [SupplyChanged(status=OFF, before=ON, cause="change supply", time=START)]
    _, again = asyncio.run(restarted(path))
    assert again == []  # told before: not told again


async def test_held_until_told_and_a_listener_that_fails_hears_it_again(tmp_path) -> None:
    path = tmp_path / "esi.db"

    def failing(event: object) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_exception(OSError("the journal is full"))
        return future

    async with await Store.open(path) as store:
        server = meter(store)
        told: list[object] = []
        server.on_event(told.append)
        await server.start(tell=False)
        await server.change_supply(ARMED)
        await server.set_credit_interrupted(True)
        assert told == []
        await server.tell_untold()
        assert [(e.before, e.status) for e in told if isinstance(e, SupplyChanged)] == [
            (ON, ARMED),
            (ARMED, OFF),
        ]
        assert await store.unreported(server.namespace) == []
        server.on_event(failing)
        await server.set_credit_interrupted(False)
        await server.stop()
    _, again = await restarted(path)
    assert again == [SupplyChanged(status=ARMED, before=OFF, cause="credit", time=START)]
    _, after = await restarted(path)
    assert after == []


async def test_a_credit_interruption_whose_write_fails_is_not_made(tmp_path) -> None:
    """The account's interruption cannot be stored (a full disk): StoreError (the ESI leaves
    the account's event untold: it is told again after a restart), the supply as it was and
    nothing told; the next time it is stored and told once, and a restart tells nothing."""
    path = tmp_path / "esi.db"
    async with await FailingStore.open(path) as store:
        server = meter(store)
        told: list[object] = []
        server.on_event(told.append)
        await server.start()
        store.fail_next = True
        with pytest.raises(StoreError):
            await server.set_credit_interrupted(True)
        assert server.supply is not None
        assert (server.supply.status, server.supply.changed, told) == (ON, False, [])
        await server.set_credit_interrupted(True)
        assert told == [SupplyChanged(status=OFF, before=ON, cause="credit", time=START)]
        await server.stop()
    again, after = await restarted(path)
    assert again.supply is not None
    assert (again.supply.status, after) == (OFF, [])


async def test_a_change_at_its_time_whose_write_fails_is_tried_again_and_told_once(
    tmp_path,
) -> None:
    """The utility's Change Supply to Off for later is stored; at its time the store write
    fails (a full disk): the supply stays On, the change still waiting, nothing told (before,
    the supply went Off in memory and its SupplyChanged was never journalled nor told). It is
    tried again SUPPLY_RETRY seconds later: Off, told once, and not again after a restart."""
    loop = asyncio.get_running_loop()
    path = tmp_path / "esi.db"
    async with await FailingStore.open(path) as store:
        server = timed_meter(store)
        told: list[object] = []
        server.on_event(told.append)
        await server.start()
        begun = START + int(loop.time())
        await server.change_supply(OFF, at=begun + 60, provider_id=7, issuer_event_id=1)
        store.fail_next = True
        await asyncio.sleep(61)
        assert server.supply is not None
        assert (server.supply.status, len(server.supply.pending), told) == (ON, 1, [])
        await asyncio.sleep(SUPPLY_RETRY)
        assert server.supply.status == OFF
        assert told == [
            SupplyChanged(status=OFF, before=ON, cause="change supply", time=begun + 90)
        ]
        await server.stop()
    again, after = await restarted(path)
    assert again.supply is not None
    assert (again.supply.status, again.supply.pending, after) == (OFF, [], [])


class SupplyCommitWaits(CommitWaits):
    """A store whose next commit of the supply record waits (a slow disk, other writers
    ahead of it) until the caller gives up: it is never begun."""

    def waits(self, batch: Batch) -> bool:
        return any(op[0] == "put" and op[2] == "supply" for op in batch._ops)


async def test_a_change_at_its_time_cut_short_by_a_stop_is_made_and_told_after_the_restart(
    tmp_path,
) -> None:
    """The utility's Change Supply to Off for later falls due while the store is slow: the
    meter is stopped before its write begins. The change is not lost nor kept untold: after
    the restart it is applied and its SupplyChanged told, once (before, the stop stored the
    supply as applied in memory without its journal entry: Off, never told)."""
    loop = asyncio.get_running_loop()
    path = tmp_path / "esi.db"
    async with await SupplyCommitWaits.open(path) as store:
        server = timed_meter(store)
        await server.start()
        begun = START + int(loop.time())
        await server.change_supply(OFF, at=begun + 60, provider_id=7, issuer_event_id=1)
        store.wait_next = True
        await asyncio.sleep(61)
        await server.stop()
    told: list[object] = []
    async with await Store.open(path) as store:
        again = timed_meter(store)
        again.on_event(told.append)
        await again.start()
        await asyncio.sleep(1)
        assert again.supply is not None
        assert again.supply.status == OFF
        await again.stop()
    assert [(e.status, e.cause) for e in told if isinstance(e, SupplyChanged)] == [
        (OFF, "change supply")
    ]
    _, after = await restarted(path)
    assert after == []  # told once


async def test_an_applications_change_cancelled_during_its_write_is_not_kept(tmp_path) -> None:
    """The application's Change Supply is cancelled (its task, a shutdown) while its write
    waits: the supply is as it was, nothing told, and the change is not stored with the next
    write (before, it stayed Off in memory and the stop stored it: Off after the restart,
    never told)."""
    loop = asyncio.get_running_loop()
    path = tmp_path / "esi.db"
    async with await SupplyCommitWaits.open(path) as store:
        server = timed_meter(store)
        told: list[object] = []
        server.on_event(told.append)
        await server.start()
        store.wait_next = True
        change = loop.create_task(server.change_supply(OFF, provider_id=7, issuer_event_id=1))
        await asyncio.sleep(1)
        change.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await change
        assert server.supply is not None
        assert (server.supply.status, server.supply.changed, told) == (ON, False, [])
        await server.stop()
    again, after = await restarted(path)
    assert again.supply is not None
    assert (again.supply.status, after) == (ON, [])


class TransactionSlow(Store):
    """A store whose next transaction writing the record (or journal entry kind) ``key``,
    once begun, waits for ``go`` (a slow sync to disk): a caller cancelled meanwhile is
    cancelled during it."""

    key = "supply"
    slow = False

    async def _commit_batches(self, batches: list[Batch]) -> list[list[int]]:
        if self.slow and any(op[2] == self.key for b in batches for op in b._ops):
            self.slow = False
            self.begun.set()
            await self.go.wait()
        return await super()._commit_batches(batches)


def off(server: MeteringServer) -> Awaitable[ChangeOutcome]:
    """The application's Change Supply to Off, now."""
    return server.change_supply(OFF, provider_id=7, issuer_event_id=1)


async def cancelled_in_its_transaction(store: TransactionSlow, call: Awaitable[Any]) -> None:
    """``call`` (a change written to ``store``), cancelled once its transaction has begun:
    it ends, cancelled, once the transaction has."""
    store.begun, store.go = asyncio.Event(), asyncio.Event()
    store.slow = True
    change = asyncio.ensure_future(call)
    await store.begun.wait()
    change.cancel()
    try:
        await asyncio.sleep(1)  # the cancelled call waits for its transaction
        assert not change.done()
    finally:
        store.go.set()
    with pytest.raises(asyncio.CancelledError):
        await change


def slow_next(store: TransactionSlow) -> None:
    """``store``'s next transaction writing its ``key`` waits, once begun, for ``go``."""
    store.begun, store.go = asyncio.Event(), asyncio.Event()
    store.slow = True


async def stopped_in_its_transaction(
    store: TransactionSlow, stop: Callable[[], Awaitable[None]], *, armed: bool = False
) -> None:
    """A service's own write to ``store`` (a timed step; ``armed``: :func:`slow_next` was
    called already), its transaction begun, and ``stop`` called meanwhile: the stop, which
    cancels it, ends only once the transaction has."""
    if not armed:
        slow_next(store)
    await store.begun.wait()
    stopping = asyncio.ensure_future(stop())
    await asyncio.sleep(1)  # the stop cancelled it: it waits for its transaction
    assert not stopping.done()
    store.go.set()
    await stopping


async def test_a_change_cancelled_during_its_transaction_is_kept_as_stored(tmp_path) -> None:
    """The application's Change Supply is cancelled once its transaction has begun, which
    the store carries out: the meter keeps the change as stored (before, it was put back:
    On in memory and served, Off in the store), and its SupplyChanged is told at once, while
    the meter runs on, and marked: not again after the restart (it was told only then)."""
    path = tmp_path / "esi.db"
    async with await TransactionSlow.open(path) as store:
        server = timed_meter(store)
        told: list[object] = []
        server.on_event(told.append)
        await server.start()
        await cancelled_in_its_transaction(store, off(server))
        await asyncio.sleep(1)  # the meter runs on
        assert server.supply is not None
        assert (server.supply.status, server.supply.changed) == (OFF, False)
        assert [(e.status, e.cause) for e in told if isinstance(e, SupplyChanged)] == [
            (OFF, "change supply")
        ]
        await server.stop()
    again, after = await restarted(path)
    assert again.supply is not None
    assert again.supply.status == OFF
    assert after == []  # told once


async def test_a_change_at_its_time_cancelled_during_its_transaction_is_made_then(
    tmp_path,
) -> None:
    """A Change Supply for later, cancelled during its transaction (carried out, so kept):
    the meter serves it as proposed and makes it at its time. The timer was not told of it,
    so it waited, stored and in memory, for some other input to the meter (here: for ever)."""
    async with await TransactionSlow.open(tmp_path / "esi.db") as store:
        server = timed_meter(store)
        await server.start()
        at = server.clock() + 60
        later = server.change_supply(OFF, at=at, provider_id=7, issuer_event_id=1)
        await cancelled_in_its_transaction(store, later)
        assert MeteringAttribute.PROPOSED_CHANGE_SUPPLY_STATUS in server._served
        await asyncio.sleep(120)
        assert server.supply is not None
        assert (server.supply.status, server.supply.pending) == (OFF, [])
        await server.stop()


class SnapshotFailsSupplySlow(FailingStore, TransactionSlow):
    """:class:`FailingStore` and :class:`TransactionSlow` in one."""


async def test_a_supply_change_cancelled_during_its_transaction_leaves_a_snapshot_to_store(
    tmp_path,
) -> None:
    """A snapshot taken at its time whose write failed is kept, to be stored with the next
    write of the snapshots (at the latest, the stop's). A Change Supply cancelled during its
    transaction (carried out) marked the snapshots stored too, though its commit held the
    supply alone: the stop did not store the snapshot, and the restart had it still planned."""
    path = tmp_path / "esi.db"
    async with await SnapshotFailsSupplySlow.open(path) as store:
        server = timed_meter(store)
        await server.start()
        now = server.clock()
        await server.plan_snapshot("tariff/1", now + 60, MeterSnapshotCause.General)
        store.fail_next = True  # the snapshot's write at its time
        await asyncio.sleep(61)
        assert store.fail_next is False
        taken = server.snapshots.record()
        await cancelled_in_its_transaction(store, off(server))
        await server.stop()
    again, _ = await restarted(path)
    assert again.snapshots.record() == taken


async def test_a_snapshot_at_its_time_whose_write_fails_is_written_a_while_later(
    tmp_path,
) -> None:
    """A planned snapshot taken at its time whose write fails stays due: written again
    SNAPSHOTS_RETRY seconds later. It waited in memory for the next write of the snapshots
    (the next snapshot, a command, the stop): a kill -9 meanwhile lost it."""
    async with await FailingStore.open(tmp_path / "esi.db") as store:
        assert isinstance(store, FailingStore)
        server = timed_meter(store)
        await server.start()
        await server.plan_snapshot("tariff/1", server.clock() + 60, MeterSnapshotCause.General)
        store.fail_next = True  # the snapshot's write at its time
        await asyncio.sleep(61)
        assert store.fail_next is False
        taken = server.snapshots.record()
        assert await store.get(server.namespace, "snapshots") != taken
        await asyncio.sleep(SNAPSHOTS_RETRY)
        assert await store.get(server.namespace, "snapshots") == taken
        assert not server.snapshots.changed
        await server.stop()


def test_each_supply_event_goes_to_the_journal_and_back() -> None:
    events = [
        SupplyChanged(status=OFF, before=ON, cause="credit", time=START),
        SupplyStatesSet(states={"supply_tamper_state": OFF}, issuer_event_id=3),
        UncontrolledFlowThresholdSet(
            threshold=FlowThreshold(
                threshold=10,
                unit_of_measure=0,
                multiplier=1,
                divisor=1,
                stabilisation_period=5,
                measurement_period=60,
                provider_id=7,
                issuer_event_id=4,
            )
        ),
        LoadLimitCounterReset(before=3, provider_id=7, issuer_event_id=5),
    ]
    assert [event_from_record(event_record(e)) for e in events] == events
    for bad in (
        {"event": "Spent", "fields": {}},
        {
            "event": "SupplyChanged",
            "fields": {"status": 3, "before": 2, "cause": "credit", "time": 0},
        },
        {"event": "SupplyChanged", "fields": {"status": 0, "before": 2, "cause": "x", "time": 0}},
        {"event": "SupplyStatesSet", "fields": {"states": {"nope": 0}, "issuer_event_id": 1}},
    ):
        with pytest.raises(Mismatch):
            event_from_record(bad)


async def test_a_damaged_supply_journal_entry_is_quarantined_not_told(tmp_path) -> None:
    path = tmp_path / "esi.db"
    async with await Store.open(path) as store:
        await store.commit(Batch().append(NAMESPACE, "told", {"event": "Spent", "fields": {}}))
    _, told = await restarted(path)
    assert told == []
    async with await Store.open(path) as store:
        assert [q.namespace for q in await store.quarantined()] == [NAMESPACE]


async def test_a_listener_may_use_the_meter_when_a_change_applies_at_its_time(tmp_path) -> None:
    """The timer applies a change under the meter's lock: its events are told outside it, so
    a listener whose work uses the meter (its lock) does not hang the meter."""
    now = [START]
    async with await Store.open(tmp_path / "esi.db") as store:
        server = MeteringServer(MeterPort(9), clock=lambda: now[0], store=store, supply=True)
        counted = asyncio.Event()

        async def count() -> None:
            await server.count_load_limit()
            counted.set()

        server.on_event(lambda event: count() if isinstance(event, SupplyChanged) else None)
        await server.start()
        await server.change_supply(ARMED, at=START + 60, issuer_event_id=1)
        now[0] = START + 60
        server._timer.update()  # due now by the meter's clock
        await asyncio.wait_for(counted.wait(), 10)
        assert server.supply is not None
        assert (server.supply.status, server.supply.load_limit_counter) == (ARMED, 1)
        await server.stop()
        assert await store.unreported(server.namespace) == []


class Register:
    """A reading source: the register as last set (a real meter's, also fed)."""

    def __init__(self) -> None:
        self.value = 10

    def readings(self, now: int) -> Readings:
        return Readings(summation_delivered=self.value)


async def test_a_readings_listener_may_use_the_meter(tmp_path) -> None:
    """The readings listeners (a prepay account charging each reading, whose credit running
    out turns the supply off) are told with the meter's lock let go, fed or polled, one
    reading at a time in order: one that used the meter waited for ever for the lock its own
    reading held (the ESI worked around it with a task of its own)."""
    now = [START]
    async with await Store.open(tmp_path / "esi.db") as store:
        register = Register()
        server = MeteringServer(
            MeterPort(9), clock=lambda: now[0], store=store, supply=True, source=register,
            default_update_period=30,
        )  # fmt: skip
        told: list[tuple[str, int, int]] = []

        async def charge(at: int) -> None:
            register.value += 5
            told.append(("charging", at, register.value))
            await server.set_credit_interrupted(at >= START + 30)  # the meter's lock
            told.append(("charged", at, register.value))

        server.on_readings(charge)
        await server.start()
        await asyncio.sleep(1)  # polled at once
        await asyncio.wait_for(server.feed(Readings(summation_delivered=register.value)), 10)
        now[0] = START + 30
        server._timer.update()
        await asyncio.sleep(1)  # polled again
        await asyncio.wait_for(server.feed(Readings(summation_delivered=register.value)), 10)
        await server.stop()
        assert server.supply is not None
        assert server.supply.status == OFF
        assert told == [
            ("charging", START, 15), ("charged", START, 15),  # polled at start
            ("charging", START, 20), ("charged", START, 20),  # fed
            ("charging", START + 30, 25), ("charged", START + 30, 25),  # polled
            ("charging", START + 30, 30), ("charged", START + 30, 30),  # fed
        ]  # fmt: skip
