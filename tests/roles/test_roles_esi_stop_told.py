"""What a service's own stop carries out (a write its stop cancelled during its transaction,
which the store carries out: :attr:`zse.store.Batch.landed`) reaches the ESI's application
once, after the next start: never told at that stop, when the ESI has let its listeners go
(and the application, as ``zse esi --mqtt`` its bridge, may have detached first), then
marked told to no one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.roles.han_builder import build, close, restarted
from tests.roles.test_roles_prepayment import METER
from tests.services.test_supply_told import TransactionSlow
from zse.metering.supply import OFF, SupplyChanged
from zse.store import Store


@pytest.mark.parametrize("detached", [False, True], ids=["listening", "detached-first"])
async def test_a_change_at_its_time_whose_write_the_stop_cancels_is_told_once(
    tmp_path, detached: bool
) -> None:
    """A Change Supply for later falls due and its write begins; the ESI stops meanwhile (the
    meter's timer cancelled, the write carried out): the SupplyChanged reaches the
    application once, after the restart (it was told at the meter's stop, to no one)."""
    store = await TransactionSlow.open(tmp_path / "esi.db")
    assert isinstance(store, TransactionSlow)
    options: dict[str, Any] = {"store": store, "meter": {**METER, "supply": True}}
    han = await build(tmp_path, **options)
    try:
        heard: list[object] = []
        detach = han.esi.on_event(heard.append)
        meter = han.esi.meter
        assert meter is not None
        await meter.change_supply(OFF, at=meter.clock() + 60, provider_id=7, issuer_event_id=1)
        store.begun, store.go, store.slow = asyncio.Event(), asyncio.Event(), True
        async with asyncio.timeout(120):
            await store.begun.wait()  # at its time, the change's write under way
        if detached:
            detach()
        stopping = asyncio.ensure_future(han.esi.stop())
        await asyncio.sleep(1)  # the stop waits for the change's transaction
        assert not stopping.done()
        store.go.set()
        await stopping
        await restarted(han, listener=heard.append, **options)
        await han.esi.settle()
        told = [e for e in heard if isinstance(e, SupplyChanged)]
        assert [(e.status, e.cause) for e in told] == [(OFF, "change supply")]
    finally:
        await close(han)
        await store.close()


async def test_an_event_while_no_listener_is_attached_is_held_for_the_next(tmp_path) -> None:
    """The application lets its last listener go (``zse esi --mqtt`` its bridge, before the
    ESI's stop) and the meter's supply changes meanwhile: the SupplyChanged is held, told to
    the next listener attached, once (not again after a restart). It was told to no one
    and marked told: lost."""
    store = await Store.open(tmp_path / "esi.db")
    options: dict[str, Any] = {"store": store, "meter": {**METER, "supply": True}}
    han = await build(tmp_path, **options)
    try:
        await restarted(han, **options)  # the builder's listener gone: only the test's
        heard: list[object] = []
        han.esi.on_event(heard.append)()  # attached, then let go
        meter = han.esi.meter
        assert meter is not None
        await meter.change_supply(OFF, provider_id=7, issuer_event_id=1)
        await han.esi.settle()
        assert heard == []
        han.esi.on_event(heard.append)
        await asyncio.sleep(1)  # the held events are told in a task
        await restarted(han, listener=heard.append, **options)
        await han.esi.settle()
        told = [e for e in heard if isinstance(e, SupplyChanged)]
        assert [e.status for e in told] == [OFF]
    finally:
        await close(han)
        await store.close()
