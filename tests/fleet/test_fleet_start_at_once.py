"""The headend's parts start in any order, and at once (docs/headend.md, "Run the whole thing
from the command line"): on an empty PostgreSQL schema, workers (the work queue, the control
jobs, the roster) and the API (the store) starting together each open what they need, and the
schema ends up one zse store with the queue's tables beside it, whichever came first. Found
by the utility benchmark, whose two workers started together and one of them failed on
``CREATE SCHEMA IF NOT EXISTS`` racing the other's store."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.postgres_server import raw_sql
from zse.headend.control import Control
from zse.headend.core import SendKind
from zse.headend.queue import JobQueue, open_queue
from zse.headend.roster import Roster
from zse.store import Store
from zse.store_postgres import QUEUE_TABLES

DEVICES = [("000D6F0000000001", "m1"), ("000D6F0000000002", "m1")]
#: Schemas tried, each with every part starting at once (a race: several chances to lose it).
ROUNDS = 12


async def a_worker(url: str) -> JobQueue:
    """What ``zse headend worker`` opens before its first claim."""
    queue = await open_queue(url)
    await Control.open(queue)
    await Roster.open(queue)
    return queue


async def the_api(url: str) -> Store:
    return await Store.open(url)


async def test_workers_and_the_api_starting_at_once_on_an_empty_schema(pg_place: Any) -> None:
    for number in range(ROUNDS):
        url = pg_place(f"s{number}")
        opened = await asyncio.gather(
            a_worker(url), a_worker(url), the_api(url), a_worker(url), return_exceptions=True
        )
        try:
            assert [x for x in opened if isinstance(x, BaseException)] == []
        finally:
            for each in opened:
                if isinstance(each, JobQueue | Store):
                    await each.close()
        rows = await raw_sql(
            url, ("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()", ())
        )
        assert {row[0] for row in rows} == {
            "meta",
            "records",
            "journal",
            "quarantine",
            *QUEUE_TABLES,
        }
        async with await Store.open(url):  # a zse store, not another application's
            pass


async def test_a_schema_the_workers_made_first_opens_as_a_new_store(pg_place: Any) -> None:
    """Workers alone first (the API started later): the queue's tables are zse's own, the
    store is created beside them, the jobs kept."""
    url = pg_place("workers-first")
    queue = await a_worker(url)
    try:
        rows = await raw_sql(
            url, ("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()", ())
        )
        assert {row[0] for row in rows} == set(QUEUE_TABLES)  # every table a worker makes
        await queue.enqueue(7, SendKind.LOAD_CONTROL, {"issuer_event_id": 7}, DEVICES, now=0.0)
    finally:
        await queue.close()
    async with await Store.open(url) as store:
        assert await store.get("ns", "k") is None
    queue = await open_queue(url)
    try:
        assert [(r.device, r.meter) for r in await queue.rows(7)] == DEVICES
    finally:
        await queue.close()
