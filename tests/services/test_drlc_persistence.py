"""DRLC client persisted in a zse store: killed and restarted at each state of an event's life,
it loses no accepted event and reports each transition exactly once."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.services.test_drlc_services import han, lce
from zse.drlc import Status
from zse.drlc.service import DrlcClient, DrlcServer, ReportReceived
from zse.store import Store
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

MIN = 60


OPEN: list[Store] = []


@pytest.fixture(autouse=True)
async def close_stores():
    """A failing test must not leave an aiosqlite thread behind (pytest would hang)."""
    yield
    while OPEN:
        await OPEN.pop().close()


async def setup(place, seed):
    _, _, se, nodes, clock = await han(seed, {"lcd": ("00:0d:6f:00:0d:00:00:51", 0x0504, 0x80)})
    server = DrlcServer(se, clock=clock)
    await server.start()
    arrivals: list[ReportReceived] = []
    server.on_event(arrivals.append)
    endpoint = nodes["lcd"].endpoints[1]

    async def boot(rng_seed: int) -> tuple[DrlcClient, Store]:
        store = await Store.open(place("lcd.db"))
        OPEN.append(store)
        client = DrlcClient(
            endpoint,
            server_ep=SE_ENDPOINT_ID,
            device_class=0x80,
            start_randomization_minutes=5,
            duration_randomization_minutes=5,
            clock=clock,
            rng=random.Random(rng_seed),
            store=store,
        )
        await client.start(get_scheduled_events=False)
        return client, store

    async def kill(client: DrlcClient, store: Store) -> None:
        await client.stop()
        await store.close()

    return server, arrivals, nodes["lcd"], clock, boot, kill


SCENARIOS = {
    # name: (kill after this many seconds from publishing, user action before the kill)
    "received": 30,
    "started": 12 * MIN,
    "opted_out": 20 * MIN,
    "superseded_pending": 25 * MIN,
    "cancel_pending": 26 * MIN,
    "completed": 80 * MIN,
}


async def scenario(place, state: str | None, seed: int) -> list[tuple[int, int]]:
    server, arrivals, lcd, clock, boot, kill = await setup(place, seed)
    client, store = await boot(1)
    t0 = clock()
    await server.publish(lce(1, t0 + 60, 45, event_control=0x03), dst=lcd.nwk, dst_ep=1)
    kill_at = SCENARIOS[state] if state else None
    script = [
        (15 * MIN, "opt_out"),
        (22 * MIN, "supersede"),
        (26 * MIN - 30, "cancel"),
    ]
    elapsed = 0
    for at, what in script:
        if kill_at is not None and elapsed <= kill_at < at:
            await asyncio.sleep(kill_at - elapsed)
            elapsed = kill_at
            await kill(client, store)
            await asyncio.sleep(3 * MIN)  # down for a while
            elapsed += 3 * MIN
            client, store = await boot(2)  # another RNG: drawn values come from the store
            kill_at = None
        await asyncio.sleep(max(0, at - elapsed))
        elapsed = max(elapsed, at)
        if what == "opt_out":
            await client.opt_out(1)
        elif what == "supersede":
            await server.publish(lce(2, t0 + 40 * MIN, 30), dst=lcd.nwk, dst_ep=1)
        else:
            await server.cancel(2, cancel_control=0x01, dst=lcd.nwk, dst_ep=1)
    if kill_at is not None:
        await asyncio.sleep(max(0, kill_at - elapsed))
        await kill(client, store)
        await asyncio.sleep(3 * MIN)
        client, store = await boot(2)
    await asyncio.sleep(120 * MIN)
    await kill(client, store)
    assert all(r.new for r in arrivals), "a transition reached the ESI twice"
    return [(r.report.issuer_event_id, r.report.event_status) for r in arrivals]


EXPECTED = [
    (1, Status.RECEIVED),
    (1, Status.STARTED),
    (1, Status.OPTED_OUT),
    (2, Status.RECEIVED),
    (2, Status.CANCELLED),
    (1, Status.PARTIALLY_COMPLETED_OPT_OUT),
]


async def test_the_uninterrupted_run(place):
    assert await scenario(place, None, 70) == EXPECTED


@pytest.mark.parametrize("state", list(SCENARIOS))
async def test_killed_and_restarted(place, state):
    got = await scenario(place, state, 70)
    assert sorted(got) == sorted(EXPECTED)
    assert len(got) == len(set(got))


async def test_a_report_journalled_but_never_sent_is_sent_after_restart(place):
    server, arrivals, lcd, clock, boot, kill = await setup(place, 71)
    client, store = await boot(1)
    endpoint = lcd.endpoints[1]
    real_send = endpoint.send

    async def radio_down(*args, **kwargs):
        raise OSError("no route")

    endpoint.send = radio_down  # type: ignore[method-assign]
    await server.publish(lce(1, clock() + 600, 30), dst=lcd.nwk, dst_ep=1)
    await asyncio.sleep(5)
    assert arrivals == []
    pending = await store.unreported(client.namespace)
    assert [e.value["report"]["event_status"] for e in pending] == [Status.RECEIVED]
    await kill(client, store)
    endpoint.send = real_send  # type: ignore[method-assign]
    client, store = await boot(2)
    await asyncio.sleep(2)
    assert [(r.report.issuer_event_id, r.report.event_status) for r in arrivals] == [
        (1, Status.RECEIVED)
    ]
    assert await store.unreported(client.namespace) == []
    await kill(client, store)


async def test_down_past_the_end_reports_the_end_after_restart(place):
    server, arrivals, lcd, _, boot, kill = await setup(place, 72)
    client, store = await boot(1)
    await server.publish(lce(1, 0, 10), dst=lcd.nwk, dst_ep=1)
    await asyncio.sleep(60)
    await kill(client, store)
    await asyncio.sleep(30 * MIN)
    client, store = await boot(2)
    await asyncio.sleep(2)
    assert [r.report.event_status for r in arrivals] == [
        Status.RECEIVED,
        Status.STARTED,
        Status.COMPLETED,
    ]
    assert len(client.core) == 0
    await kill(client, store)
