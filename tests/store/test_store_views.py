"""zse.store views (``Store.view``): many owners in one store, each its own namespaces, one
group commit; on both engines."""

from __future__ import annotations

import asyncio

import pytest

from tests.postgres_server import raw_sql
from tests.store.helpers import UNDER_WAY, count_transactions, one_transaction_busy
from zse.records import RecordError
from zse.store import Batch, Quarantined, Store


async def test_views_keep_to_their_own_namespaces(place):
    path = place("shared.db")
    async with await Store.open(path) as store:
        one, two = store.view("meter-1/"), store.view("meter-2/")
        await one.commit(Batch().put("drlc", "e", 1).append("outbox", "send", "a"))
        await two.commit(Batch().put("drlc", "e", 2).append("outbox", "send", "b"))
        assert (await one.load("drlc"), await two.load("drlc")) == ({"e": 1}, {"e": 2})
        assert await one.get("drlc", "e") == 1
        (mine,) = await one.unreported("outbox")
        assert (mine.namespace, mine.value) == ("outbox", "a")
        await one.mark_reported(mine.seq)
        assert await one.unreported("outbox") == []
        assert [e.value for e in await two.unreported("outbox")] == ["b"]
        assert [e.reported for e in await one.journal("outbox")] == [True]
        assert await one.prune("outbox") == 1
        assert [e.value for e in await two.journal("outbox")] == ["b"]
        await one.commit(Batch().replace("drlc", {"f": 3}))
        assert (await one.load("drlc"), await two.load("drlc")) == ({"f": 3}, {"e": 2})
        assert await one.namespaces() == ["drlc"]
        assert await two.namespaces() == ["drlc", "outbox"]
        assert await store.namespaces() == ["meter-1/drlc", "meter-2/drlc", "meter-2/outbox"]
        await one.close()  # closes nothing
        assert await two.load("drlc") == {"e": 2}
    async with await Store.open(path) as again:  # durable as the store is
        assert await again.view("meter-2/").load("drlc") == {"e": 2}


async def test_a_view_prefix_may_not_overlap_another(place):
    async with await Store.open(place("shared.db")) as store:
        view = store.view("m1/")
        for taken in ("m1/", "m1/x/", "m", ""):
            with pytest.raises(ValueError, match="overlaps"):
                store.view(taken)
        with pytest.raises(ValueError, match="no views of its own"):
            view.view("x/")
        assert repr(view).endswith("[m1/]>")


@UNDER_WAY
async def test_many_views_commit_in_one_transaction(place):
    """The point of views: owners' commits waiting together share the store's next
    transaction (one sync to disk), as one owner's do."""
    async with await Store.open(place("shared.db")) as store:
        transactions = count_transactions(store)
        views = [store.view(f"meter-{n}/") for n in range(20)]
        busy = await one_transaction_busy(store)
        results = await asyncio.gather(
            *(v.commit(Batch().put("s", "k", n).append("j", "x", n)) for n, v in enumerate(views))
        )
        await busy
        assert transactions == [2]
        assert len({seq for (seq,) in results}) == 20
        assert [await v.get("s", "k") for v in views] == list(range(20))


async def test_a_view_quarantines_in_its_own_namespace(place):
    """A loader's rejection through a view sets the store's record aside (prefixed), and the
    view lists and tells it in its own terms; other views hear nothing."""
    location = place("shared.db")
    async with await Store.open(location) as store:
        one, two = store.view("m1/"), store.view("m2/")
        told: list[Quarantined] = []
        other: list[Quarantined] = []
        one.on_quarantine(told.append)
        two.on_quarantine(other.append)
        await one.commit(Batch().put("reg", "good", 1).put("reg", "bad", "x").append("j", "k", 5))
        await two.commit(Batch().put("reg", "bad", "x"))

        def build(records, on_bad):
            kept = {}
            for key, value in records.items():
                if isinstance(value, int):
                    kept[key] = value
                else:
                    on_bad(RecordError("reg", key, "not a number"))
            return kept

        assert await one.load_with("reg", build) == {"good": 1}

        def refuse(value):
            raise ValueError("no")

        assert await one.unreported_with("j", refuse) == []
        assert sorted((q.origin, q.namespace) for q in told) == [
            ("journal", "j"),
            ("record", "reg"),
        ]
        assert other == []
        assert sorted(q.namespace for q in await one.quarantined()) == ["j", "reg"]
        assert [q.key for q in await one.quarantined("reg")] == ["bad"]
        assert await two.quarantined() == []
        assert await two.load("reg") == {"bad": "x"}  # another view's record untouched
        names = {q.namespace for q in await store.quarantined()}
        assert names == {"m1/reg", "m1/j"}
    rows = await raw_sql(location, "SELECT namespace, key FROM records ORDER BY 1, 2")
    assert [tuple(r) for r in rows] == [("m1/reg", "good"), ("m2/reg", "bad")]
