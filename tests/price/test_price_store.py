"""The ESI's Price server keeps what it publishes in its store (docs/persistence.md): prices,
block pricing and SE 1.2 values, tariffs with their matrix, thresholds and labels and the last
Cancel Tariff come back after a restart (a normal stop or SIGKILL right after a publish
returned); what ended, was superseded or cancelled is neither served nor kept; a damaged
record is quarantined with a warning and the rest served; a commit that fails changes nothing.
Real stores, virtual time."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.price.test_price_block import calorific, factor, period
from tests.price.test_price_schedule import price
from tests.price.test_price_se12_values import bill, billing, co2, conversion, cpp, payment
from tests.price.test_price_tariffs import get, information, labels, matrix, thresholds
from tests.services.test_supply_told import MeterPort, TransactionSlow, cancelled_in_its_transaction
from tests.store.helpers import killed_itself
from tests.store.test_loader_shapes import JSON, PROPERTY
from zse.errors import StoreError
from zse.price import PriceMatrix, TariffCancellation, TierLabels
from zse.price.service import PriceServer, _step
from zse.records import RecordError
from zse.store import Batch, Store

START = 800_000_000
NAMESPACE = "price.server/9"

CHILD = """
import asyncio, sys
from tests.price.test_price_store import publish_then_killed

asyncio.run(publish_then_killed(sys.argv[1]))
"""


class Clock:
    """ZigBee time the test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


async def started(store: Store, clock: Any = lambda: START) -> PriceServer:
    server = PriceServer(MeterPort(9), clock=clock, store=store)
    await server.load()
    server.start()
    return server


async def publish_everything(server: PriceServer) -> None:
    """A price in force (start "now") and one to come, a value of every kind, a tariff whole."""
    await server.publish(price(1))
    await server.publish(price(2, start=START + 3600, minutes=60))
    for value in (
        period(3), factor(4), calorific(5), co2(), billing(), bill(), cpp(), payment(),
        conversion(),
    ):  # fmt: skip
        await server.publish(value)
    await server.publish_tariff(information(), matrix(), thresholds(), labels())


def answer(server: PriceServer, name: str, **fields: Any) -> Any:
    """The Step a display's Get command gets."""
    return _step(server.protocol, get(name, **fields), server.clock)


async def test_everything_published_is_answered_alike_after_a_restart(tmp_path) -> None:
    path = tmp_path / "esi.db"
    async with await Store.open(path) as store:
        before = await started(store)
        await publish_everything(before)
        held = before.protocol.records(START)
        assert sorted(held) == sorted(await store.load(NAMESPACE))
    async with await Store.open(path) as store:
        after = await started(store)
    assert after.protocol.records(START) == held
    assert after.schedule.current(START) == price(1)
    asks = [
        ("get_current_price", {"command_options": 0}),
        ("get_scheduled_prices", {"start_time": 0, "number_of_events": 0}),
        ("get_tariff_information", {"earliest_start_time": 0, "min_issuer_event_id": 0xFFFFFFFF,
                                    "number_of_commands": 0, "tariff_type": 0}),
        ("get_price_matrix", {"issuer_tariff_id": 7}),
        ("get_tier_labels", {"issuer_tariff_id": 7}),
        ("get_credit_payment", {"latest_end_time": 0xFFFFFFFF, "number_of_records": 0}),
        ("get_currency_conversion", {}),
    ]  # fmt: skip
    for name, fields in asks:
        got = answer(after, name, **fields)
        assert got.sends, name
        assert got.sends == answer(before, name, **fields).sends, name
    values = after.protocol.attribute_values(START)
    assert values == before.protocol.attribute_values(START)


async def publish_then_killed(path: str) -> None:
    """Publish a price and a tariff; SIGKILL as soon as the publish returned."""
    store = await Store.open(path)
    server = await started(store)
    await server.publish(price(1))
    await server.publish_tariff(information(), labels())
    print("published", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_price_published_then_killed_is_kept(tmp_path) -> None:
    path = tmp_path / "esi.db"
    assert killed_itself(CHILD, str(path)) == "published\n"

    async def restarted() -> None:
        async with await Store.open(path) as store:
            server = await started(store)
            assert server.schedule.current(START + 60) == price(1)
            assert server.protocol.tariffs.current(START) == information()
            assert server.protocol.tariffs.value(TierLabels, 7, START) == labels()

    asyncio.run(restarted())


async def test_what_ended_was_superseded_or_cancelled_is_not_served_nor_kept(tmp_path) -> None:
    path = tmp_path / "esi.db"
    clock = Clock()
    async with await Store.open(path) as store:
        server = await started(store, clock)
        await server.publish(price(1))  # until changed: superseded by 3 below
        await server.publish(price(2, start=START, minutes=60))  # ends at START + 3600
        await server.publish(price(3, start=START + 600))
        await server.publish_tariff(information(), matrix(), labels())
        await server.publish_tariff(information(tariff_id=8, event_id=110, start_time=START))
        cancellation = TariffCancellation(provider_id=5, issuer_tariff_id=7)
        await server.cancel_tariff(cancellation)
        kept = sorted(await store.load(NAMESPACE))
        assert kept == ["cancellation", "price/1/2", "price/1/3", "tariff/0/110"]
    clock.now = START + 3600  # price 2 ended while the ESI was down
    async with await Store.open(path) as store:
        server = await started(store, clock)
        assert sorted(await store.load(NAMESPACE)) == ["cancellation", "price/1/3", "tariff/0/110"]
    assert [p.issuer_event_id for p in server.schedule.scheduled(0, 0, clock.now)] == [3]
    assert server.schedule.current(START + 300) is None  # 2 is over, not served for then
    assert answer(server, "get_price_matrix", issuer_tariff_id=7).status == (
        foundation.Status.NOT_FOUND
    )
    assert server.protocol.tariffs.tariff(7, clock.now) is None
    assert server.protocol.last_cancellation == cancellation  # Get Tariff Cancellation's
    assert len(answer(server, "get_tariff_cancellation").sends) == 1


async def test_a_damaged_record_is_skipped_with_a_warning(tmp_path, caplog) -> None:
    path = tmp_path / "esi.db"
    async with await Store.open(path) as store:
        await publish_everything(await started(store))
        good = await store.load(NAMESPACE)
        damaged = {
            "price/1/9": {"price": {"provider_id": 1}, "received_at": START, "cut": None},
            "price/1/1": {**good["price/1/1"], "received_at": "then"},
            "tariff/0/999": good["tariff/0/100"],  # another tariff's record
            "labels/5/7": {"value": {**good["labels/5/7"]["value"], "labels": [[0, b"No"]]}},
            "someone/else": 1,
        }
        await store.commit(Batch().replace(NAMESPACE, {**good, **damaged}))
    async with await Store.open(path) as store:
        with caplog.at_level(logging.WARNING, logger="zse.store"):
            server = await started(store)
        bad = sorted(q.key for q in await store.quarantined(NAMESPACE))
        assert bad == sorted(damaged)
        left = await store.load(NAMESPACE)
    assert f"record {NAMESPACE}/price/1/9 quarantined: .price: missing" in caplog.text
    assert f"record {NAMESPACE}/price/1/1 quarantined: .received_at: expected int" in caplog.text
    assert f"record {NAMESPACE}/tariff/0/999 quarantined: stored under another" in caplog.text
    assert server.schedule.current(START + 3600) == price(2, start=START + 3600, minutes=60)
    assert server.schedule.current(START) is None  # price 1's record was damaged
    assert server.protocol.tariffs.value(TierLabels, 7, START) is None
    assert server.protocol.tariffs.value(PriceMatrix, 7, START) == matrix()
    assert sorted(left) == sorted(set(good) - set(damaged))


async def test_a_commit_that_fails_changes_nothing_held(tmp_path) -> None:
    store = await Store.open(tmp_path / "esi.db")
    server = await started(store)
    await store.close()
    with pytest.raises(StoreError):
        await server.publish(price(1))
    with pytest.raises(StoreError):
        await server.publish_tariff(information())
    assert server.schedule.current(START) is None
    assert server.protocol.tariffs.held(START) == []
    assert answer(server, "get_current_price", command_options=0).status == (
        foundation.Status.NOT_FOUND
    )


def valid_records() -> dict[str, Any]:
    """The records of a server that published everything (:func:`publish_everything`)."""

    async def published() -> dict[str, Any]:
        server = PriceServer(MeterPort(9), clock=lambda: START)
        await publish_everything(server)
        return server.protocol.records(START)

    return asyncio.run(published())


VALID = valid_records()


@PROPERTY
@given(
    st.dictionaries(st.sampled_from(sorted(VALID)) | st.text(max_size=12), JSON, max_size=4),
    st.dictionaries(st.sampled_from(sorted(VALID)), st.sampled_from(["value", "price", "start"])),
)
def test_any_record_loads_or_is_reported_never_a_crash(changed, emptied) -> None:
    """Arbitrary JSON under any key, or a record with a field taken away: each loads or is
    handed to on_bad (a RecordError naming it), the others load; nothing else is raised."""
    records = {**VALID, **changed}
    for key, name in emptied.items():
        if isinstance(records[key], dict) and name in records[key]:
            records[key] = {k: v for k, v in records[key].items() if k != name}
    bad: list[RecordError] = []
    protocol = PriceServer(MeterPort(9), clock=lambda: START).protocol
    protocol.restore(records, START, namespace=NAMESPACE, on_bad=bad.append)
    assert all(e.namespace == NAMESPACE and e.key in records for e in bad)
    untouched = set(VALID) - set(changed) - set(emptied)
    kept = protocol.records(START)
    tariff_values = ("matrix/", "thresholds/", "labels/")  # go with their tariff's record
    assert {k for k in untouched if not k.startswith(tariff_values)} <= set(kept)


class PriceTransactionSlow(TransactionSlow):
    key = "price/1/1"


async def test_a_publish_cancelled_during_its_transaction_is_made_as_stored(tmp_path) -> None:
    """A publish whose commit is cancelled once its transaction has begun, which the store
    carries out: the server has it too (before, the store had a price the server did not
    serve, and a later change, written against what it thought stored, never deleted it:
    after the restart a price nobody was told of came back)."""
    path = tmp_path / "esi.db"
    async with await PriceTransactionSlow.open(path) as store:
        server = await started(store)
        await cancelled_in_its_transaction(store, server.publish(price(1)))
        assert server.schedule.current(START) is not None
        assert answer(server, "get_current_price", command_options=0).status is None
        await server.publish(period(3))
        served = server.protocol.records(START)
    async with await Store.open(path) as store:
        assert await store.load(NAMESPACE) == served
