"""The ESI's Events server (SE 1.2 D.11.2.3.2) and Clear Event Log Request: a clear whose
store write fails clears nothing (answered FAILURE, the logs served as the store holds them),
and each clear asked is journalled with the cleared logs and told once, after a restart if the
process was killed before its listeners had it."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from zigpy.zcl import foundation

from tests.events.test_events_store_failure import FailingStore
from tests.services.test_start_order import Port, frame
from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from tests.store.helpers import killed_itself
from zse.devmgmt.core import EventConfigurations
from zse.errors import StoreError
from zse.events.core import DEFAULT_CONFIGURATION, EventId, LogId
from zse.events.protocol import EventLogClearRequested
from zse.events.service import EventsServer
from zse.events.wire import Events
from zse.se.ids import EVENTS, EventsServerCommand
from zse.store import Store
from zse.zcl.codec import encode_command

START = 800_000_000
IHD = "00:0d:6f:00:0e:00:00:01"

CHILD = """
import asyncio, sys
from tests.services.test_events_told import clear_until_killed

asyncio.run(clear_until_killed(sys.argv[1]))
"""


def clear_frame(log_id: int = LogId.GENERAL):
    payload = encode_command(Events.ServerCommandDefs.clear_event_log_request.schema(log_id=log_id))
    return frame(
        EVENTS, EventsServerCommand.CLEAR_EVENT_LOG_REQUEST, payload, from_server=False, ieee=IHD
    )


def server(port: Port, store: Store) -> EventsServer:
    configured = EventConfigurations(DEFAULT_CONFIGURATION)
    return EventsServer(port, clock=lambda: START, store=store, configurations=configured)


async def clear_until_killed(path: str) -> None:
    """A logged event, then a device's Clear Event Log Request: killed -9 once it is told."""
    port = Port(9)
    store = await Store.open(path)
    events = server(port, store)

    def told(event: object) -> None:
        if isinstance(event, EventLogClearRequested):  # committed: nobody downstream has it
            print("told", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    events.on_event(told)
    await events.start()
    await events.record(EventId.UPDATE_SITE_ID_ACTIONED)  # general event log
    await port.handlers[EVENTS](clear_frame())


async def restarted(path: Any) -> tuple[EventsServer, list[object]]:
    told: list[object] = []
    async with await Store.open(path) as store:
        events = server(Port(9), store)
        events.on_event(told.append)
        await events.start()
        assert await store.unreported(events.namespace) == []
        await events.stop()
    return events, told


def test_a_clear_stored_then_killed_is_told_after_the_restart(tmp_path) -> None:
    path = tmp_path / "esi.db"
    assert killed_itself(CHILD, str(path)) == "told\n"
    events, told = asyncio.run(restarted(path))
    assert [e.event_id for e in events.log.matching()] == [EventId.EVENT_LOG_CLEARED]
    assert [(type(e), e.log_id, e.cleared, str(e.source_ieee)) for e in told] == [
        (EventLogClearRequested, LogId.GENERAL, 1 << LogId.GENERAL, IHD)
    ]
    _, again = asyncio.run(restarted(path))
    assert again == []  # told before: not told again


async def test_a_clear_whose_write_fails_clears_nothing(tmp_path) -> None:
    port = Port(9)
    store = await FailingStore.open(tmp_path / "esi.db")
    try:
        events = server(port, store)
        told: list[object] = []
        events.on_event(told.append)
        await events.start()
        await events.record(EventId.UPDATE_SITE_ID_ACTIONED)
        before = events.log.matching()
        store.fail_next = True
        try:
            status = await port.handlers[EVENTS](clear_frame())
        except StoreError:  # the endpoint answers a handler that raised FAILURE
            status = foundation.Status.FAILURE
        assert status == foundation.Status.FAILURE
        assert port.sent == []  # no Clear Event Log Response
        assert told == []
        assert events.log.matching() == before  # still served, as the store holds it
        again = server(Port(9), store)
        await again.start()
        assert again.log.matching() == before
        assert await port.handlers[EVENTS](clear_frame()) is None  # the device asks again
        assert [e.event_id for e in events.log.matching()] == [EventId.EVENT_LOG_CLEARED]
        assert [type(e) for e in told] == [EventLogClearRequested]
    finally:
        await Store.close(store)


class ClearSlow(TransactionSlow):
    """The transaction journalling a clear (its ``told`` entry) waits."""

    key = "told"


async def test_a_clear_stored_after_its_handler_was_cancelled_is_told_at_once(tmp_path) -> None:
    """A Clear Event Log Request whose handler is cancelled once its write's transaction has
    begun, which the store carries out: the clear is made, and told at once, while the
    server runs on, and marked: not again after the restart (it was told only then)."""
    path = tmp_path / "esi.db"
    async with await ClearSlow.open(path) as store:
        assert isinstance(store, ClearSlow)
        port = Port(9)
        events = server(port, store)
        told: list[object] = []
        events.on_event(told.append)
        await events.start()
        await events.record(EventId.UPDATE_SITE_ID_ACTIONED)
        await cancelled_in_its_transaction(store, port.handlers[EVENTS](clear_frame()))
        await asyncio.sleep(1)  # the server runs on
        assert [type(e) for e in told if isinstance(e, EventLogClearRequested)] == [
            EventLogClearRequested
        ]
        await events.stop()
    _, after = await restarted(path)
    assert after == []  # told once
