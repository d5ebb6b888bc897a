"""The ESI's Price server deletes the record of what ends at its end, with no publish or
restart in between (a meter whose application publishes rarely): a price at its start plus
duration (D.4.2.4.1.1.9-10) or where a newer price cut it short (D.4.4.2), a timeline value
or tariff, with its matrix, when the next of its kind starts (D.4.2.4.2-5); what ends at one
time goes in one commit; a commit that fails is logged and tried again. Real SQLite store,
virtual time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from tests.events.test_events_store_failure import FailingStore
from tests.price.test_price_block import factor
from tests.price.test_price_schedule import price
from tests.price.test_price_store import NAMESPACE, START, started
from tests.price.test_price_tariffs import information, matrix
from tests.roles.han_builder import build, close, restarted
from tests.store.test_loader_shapes import PROPERTY
from zse.price import DURATION_UNTIL_CHANGED
from zse.price.protocol import PriceServerProtocol
from zse.price.service import EXPIRY_RETRY
from zse.store import Batch, Store


class CountingStore(Store):
    """A SQLite store that counts its commits."""

    commits = 0

    async def commit(self, batch: Batch) -> list[int]:
        self.commits += 1
        return await super().commit(batch)


def loop_clock() -> Callable[[], int]:
    """ZigBee time that runs with the (virtual) loop from START."""
    loop = asyncio.get_running_loop()
    base = loop.time()
    return lambda: START + int(loop.time() - base)


def publish_what_ends(protocol: PriceServerProtocol) -> None:
    protocol.publish(price(1), START)  # until changed: cut where price 2 starts
    protocol.publish(price(2, start=START + 600, minutes=60), START)  # ends at START + 4200
    protocol.publish_value(factor(3), START)
    protocol.publish_value(factor(4, start=START + 1800), START)  # factor 3 over then
    protocol.publish_tariff(information(), START, values=(matrix(),))
    protocol.publish_tariff(information(tariff_id=8, event_id=110, start_time=START + 3000), START)


def test_the_server_core_says_when_what_it_holds_next_ends() -> None:
    protocol = PriceServerProtocol()
    assert protocol.next_deadline() is None
    publish_what_ends(protocol)
    gone = []
    while (deadline := protocol.next_deadline()) is not None:
        before = protocol.records(deadline - 1)
        protocol.handle_timeout(deadline)
        after = protocol.records(deadline)
        gone.append((deadline - START, sorted(before.keys() - after.keys())))
        assert protocol.next_deadline() != deadline  # never due again for the same
    assert gone == [
        (600, ["price/1/1"]),
        (1800, ["conversion_factor/0/3"]),
        (3000, ["matrix/5/7", "tariff/0/100"]),
        (4200, ["price/1/2"]),
    ]
    assert sorted(protocol.records(START + 10**6)) == ["conversion_factor/0/4", "tariff/0/110"]


def test_prices_until_changed_restored_side_by_side_end_when_the_newer_starts() -> None:
    """Two prices "until changed" as a store gave them back: the older is over once the
    newer (a larger issuer event id) has started, the deadline says when (D.4.4.2)."""
    protocol = PriceServerProtocol()
    protocol.schedule.restore(price(1, start=START), START)
    protocol.schedule.restore(price(3, start=START + 100), START)
    protocol.schedule.restore(price(2, start=START + 50), START)
    assert protocol.next_deadline() == START + 50  # 1 is over when 2 starts
    protocol.handle_timeout(START + 50)
    assert sorted(protocol.records(START + 50)) == ["price/1/2", "price/1/3"]
    assert protocol.next_deadline() == START + 100  # and 2 when 3 starts
    protocol.handle_timeout(START + 100)
    assert sorted(protocol.records(START + 100)) == ["price/1/3"]
    assert protocol.next_deadline() is None


PUBLISHED = st.lists(
    st.tuples(
        st.sampled_from(["price", "factor", "tariff"]),
        st.integers(1, 6),  # issuer event id (a tariff's too)
        st.sampled_from([0, 1, 300, 301, 900]),  # start: 0 is now, else seconds after START
        st.sampled_from([1, 5, 15, DURATION_UNTIL_CHANGED]),  # a price's minutes
        st.integers(0, 900),  # when it is published, seconds after START
    ),
    max_size=8,
)


@PROPERTY
@given(PUBLISHED)
def test_the_deadline_is_exactly_when_the_records_next_change(published) -> None:
    """Whatever is published when: nothing leaves :meth:`records` before the deadline, and
    something does at it (so the timer neither misses an end nor fires for nothing)."""
    protocol = PriceServerProtocol()
    for kind, event_id, start, minutes, at in sorted(published, key=lambda p: p[-1]):
        begins = 0 if start == 0 else START + start
        try:
            if kind == "price":
                protocol.publish(price(event_id, start=begins, minutes=minutes), START + at)
            elif kind == "factor":
                protocol.publish_value(factor(event_id, start=begins), START + at)
            else:
                tariff = information(tariff_id=event_id, event_id=event_id, start_time=begins)
                protocol.publish_tariff(tariff, START + at)
        except ValueError:
            pass  # an older price overlapping a newer one: refused, nothing held changes
    now = START + 900
    held = protocol.records(now).keys()
    while (deadline := protocol.next_deadline()) is not None:
        assert deadline > now  # once what is over is forgotten: never past (no busy timer)
        assert protocol.records(deadline - 1).keys() == held
        now, before = deadline, held
        held = protocol.records(now).keys()
        assert held < before
    assert protocol.records(now + 10**6).keys() == held  # nothing ends after the last


async def test_what_ends_is_deleted_at_its_end_in_one_commit_across_a_restart(tmp_path) -> None:
    path = tmp_path / "esi.db"
    clock = loop_clock()
    async with await CountingStore.open(path) as store:
        server = await started(store, clock)
        publish_what_ends(server.protocol)  # the core's, then one commit of it all
        await server.publish(price(9, start=START + 10**6))
        everything = sorted(await store.load(NAMESPACE))
        assert "price/1/1" in everything
        await asyncio.sleep(599.5)  # half a second before its end, then half after
        assert sorted(await store.load(NAMESPACE)) == everything
        await asyncio.sleep(1)
        assert "price/1/1" not in await store.load(NAMESPACE)
        await asyncio.sleep(1200)
        assert "conversion_factor/0/3" not in await store.load(NAMESPACE)
        await server.stop()
    await asyncio.sleep(0.5)
    async with await CountingStore.open(path) as store:
        server = await started(store, clock)  # at START + 1801: nothing more to delete
        assert store.commits == 0
        await asyncio.sleep(1198.5)
        held = await store.load(NAMESPACE)
        assert {"tariff/0/100", "matrix/5/7"} <= held.keys()
        await asyncio.sleep(1)
        assert (await store.load(NAMESPACE)).keys() == held.keys() - {"tariff/0/100", "matrix/5/7"}
        assert store.commits == 1  # the tariff and its matrix together
        await asyncio.sleep(1200)
        assert sorted(await store.load(NAMESPACE)) == [
            "conversion_factor/0/4", "price/1/9", "tariff/0/110"
        ]  # fmt: skip
        assert store.commits == 2
        await server.stop()


async def test_a_deletion_whose_commit_fails_is_logged_and_tried_again(tmp_path, caplog) -> None:
    clock = loop_clock()
    store = await FailingStore.open(tmp_path / "esi.db")
    try:
        server = await started(store, clock)
        await server.publish(price(1, start=START, minutes=10))
        store.fail_next = True
        with caplog.at_level(logging.WARNING, logger="zse.price.service"):
            await asyncio.sleep(600.5)
        assert "Price server: what ended not deleted: disk full" in caplog.text
        assert "price/1/1" in await store.load(NAMESPACE)
        await asyncio.sleep(EXPIRY_RETRY - 1)
        assert "price/1/1" in await store.load(NAMESPACE)
        await asyncio.sleep(1)
        assert await store.load(NAMESPACE) == {}
        await server.stop()
    finally:
        await store.close()


async def test_a_stopped_esi_deletes_nothing(tmp_path) -> None:
    """The ESI's stop ends its Price server's timer: what ends afterwards is not deleted by
    a process that stopped (its store may be closed or another's by then), but by the next
    start's load."""
    han = await build(tmp_path)
    try:
        await han.esi.publish_price(price(1, start=han.clock(), minutes=10), broadcast=True)
        store, namespace = han.esi.store, han.esi.price.namespace
        assert store is not None
        stored = await store.load(namespace)
        assert "price/1/1" in stored
        await han.esi.stop()
        await asyncio.sleep(700)
        assert await store.load(namespace) == stored
        await restarted(han)
        assert "price/1/1" not in await store.load(namespace)
    finally:
        await close(han)
