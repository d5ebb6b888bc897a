"""The ESI's servers at their stop (zse.store.write_at_stop, zse.zcl.events.Untold.stop):
the event logs, the Messaging, DRLC and Device Management servers commit what a write that
failed left for their next commit (no commit came: it was dropped at the stop, a DRLC report
never told), a failure logged without the secrets; the DRLC and Messaging servers wait for
the events being told in a task, each marked (cancelled, they were told again after the
restart), for at most STOP_WAIT seconds. Real stores, virtual time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.devmgmt.test_devmgmt_protocol import NOW
from tests.devmgmt.test_devmgmt_start_time import DmPort
from tests.events.test_events_store_failure import FailingStore
from tests.services.test_devmgmt_told import SITE
from tests.services.test_drlc_told import START, report_frame
from tests.services.test_server_records import event
from tests.services.test_start_order import Port
from tests.services.test_supply_told import cancelled_in_its_transaction
from tests.services.test_told_in_hand import (
    IHD,
    Keeping,
    ToldSlow,
    _confirmation,
    _restarted,
    drlc,
)
from zse.devmgmt.core import EventConfigurations, Password
from zse.devmgmt.service import DeviceManagementServer
from zse.drlc.service import DrlcServer, ReportReceived
from zse.errors import StoreError
from zse.events.core import DEFAULT_CONFIGURATION, EventId
from zse.events.service import EventsServer
from zse.messaging import Message
from zse.messaging.service import MESSAGING, MessagingServer
from zse.se.ids import DRLC
from zse.store import Store
from zse.zcl.events import STOP_WAIT

MESSAGE = Message(message_id=0x77, text="Meter read", confirmation_required=True)

#: Each server: built on a store, a change the application makes, what it serves.
SERVERS: dict[str, tuple[Callable[[Store], Any], Callable[[Any], Awaitable[Any]], Any]] = {
    "events": (
        lambda store: EventsServer(
            Port(9),
            clock=lambda: START,
            store=store,
            configurations=EventConfigurations(DEFAULT_CONFIGURATION),
        ),
        lambda server: server.record(EventId.UPDATE_CIN_ACTIONED),
        lambda server: server.log.matching(),
    ),
    "messaging": (
        lambda store: MessagingServer(Port(9), clock=lambda: START, store=store),
        lambda server: server.record(MESSAGE),
        lambda server: sorted(server.messages.messages),
    ),
    "drlc": (
        lambda store: DrlcServer(Port(9), clock=lambda: START, store=store),
        lambda server: server.publish(event(7, START + 60, 30)),
        lambda server: server.core.records(),
    ),
    "device management": (
        lambda store: DeviceManagementServer(DmPort(1), clock=lambda: NOW, store=store),
        lambda server: server.publish(SITE),
        lambda server: server.published.to_records(),
    ),
}


@pytest.mark.parametrize("kind", list(SERVERS))
async def test_a_change_whose_write_failed_is_written_at_the_stop(
    tmp_path: Path, kind: str
) -> None:
    """A change served though its write failed, and no commit after it: the stop writes it,
    and the restart serves what was served (it was dropped)."""
    build, change, served = SERVERS[kind]
    path = tmp_path / "esi.db"
    async with await FailingStore.open(path) as store:
        assert isinstance(store, FailingStore)
        server = build(store)
        await server.start()
        store.fail_next = True
        with pytest.raises(StoreError):
            await change(server)
        before = served(server)
        assert before  # served all the same
        await server.stop()
        await server.stop()  # again: nothing more
    async with await Store.open(path) as store:
        again = build(store)
        await again.start()
        assert served(again) == before
        await again.stop()


async def test_a_report_whose_write_failed_is_journalled_at_the_stop_and_told_once(
    tmp_path: Path,
) -> None:
    """A device's report whose write failed, the ESI stopped before any other commit: the
    stop journals it with its record, and the restart tells it, once (it was lost)."""
    path = tmp_path / "esi.db"
    told: list[ReportReceived] = []
    async with await FailingStore.open(path) as store:
        assert isinstance(store, FailingStore)
        port, server = await drlc(store, told.append)
        store.fail_next = True
        with pytest.raises(StoreError):
            await port.handlers[DRLC](report_frame(0x01))
        await server.stop()
    assert told == []
    again = await _restarted(path, DrlcServer)
    assert [(r.report.event_status, r.new) for r in again] == [(0x01, True)]
    assert await _restarted(path, DrlcServer) == []  # marked: once


async def test_a_password_not_written_at_the_stop_is_logged_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The stop's write fails too: one warning, which names neither the password nor its
    hex (the store keeps it as hex)."""
    secret = b"hunter2-secret"
    password = Password(password_type=1, issuer_event_id=1, value=secret)
    async with await FailingStore.open(tmp_path / "esi.db") as store:
        assert isinstance(store, FailingStore)
        server = DeviceManagementServer(DmPort(1), clock=lambda: NOW, store=store)
        await server.start()
        store.fail_next = True
        with pytest.raises(StoreError):
            await server.set_password(password)
        store.fail_next = True
        with caplog.at_level(logging.WARNING):
            await server.stop()
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "not stored at stop" in warning.getMessage()
    assert secret.hex() not in caplog.text
    assert "hunter2" not in caplog.text


async def _stored_while_cancelled(path: Path, server_class: Any, listener: Keeping) -> Any:
    """A ``server_class`` server on a ToldSlow store at ``path``, heard by ``listener``: a
    report (DRLC) or a confirmation (Messaging) whose handler was cancelled during its
    write's transaction, told in a task that waits for ``listener``'s work."""
    store = await ToldSlow.open(path)
    assert isinstance(store, ToldSlow)
    port = Port(9)
    server = server_class(port, clock=lambda: START, store=store)
    server.on_event(listener)
    await server.start()
    if server_class is DrlcServer:
        await server.publish(event(7, START + 60, 30))
        store.key, cluster, taken = "told", DRLC, report_frame(0x01)
    else:
        await server.record(MESSAGE)
        store.key, cluster, taken = "confirmed", MESSAGING, _confirmation(IHD)
    await cancelled_in_its_transaction(store, port.handlers[cluster](taken))
    await asyncio.sleep(1)
    assert len(listener.events) == 1  # told, not in hand yet
    return store, server


@pytest.mark.parametrize("server_class", [DrlcServer, MessagingServer])
async def test_the_stop_waits_for_what_is_being_told(tmp_path: Path, server_class: Any) -> None:
    """The stop waits for the listener to have the event in hand, and it is marked: not told
    again after the restart (the stop cancelled the telling: told twice)."""
    keeping = Keeping()
    store, server = await _stored_while_cancelled(tmp_path / "esi.db", server_class, keeping)
    try:
        stopping = asyncio.ensure_future(server.stop())
        await asyncio.sleep(1)
        assert not stopping.done()  # waits for the listener
        keeping.futures[0].set_result(None)
        await stopping
        assert await store.unreported(server.namespace) == []
    finally:
        await store.close()
    assert await _restarted(tmp_path / "esi.db", server_class) == []


@pytest.mark.parametrize("server_class", [DrlcServer, MessagingServer])
async def test_a_listener_that_never_finishes_does_not_hang_the_stop(
    tmp_path: Path, server_class: Any
) -> None:
    """The stop gives up after STOP_WAIT seconds: the event, not marked, is told after the
    restart."""
    keeping = Keeping()
    store, server = await _stored_while_cancelled(tmp_path / "esi.db", server_class, keeping)
    try:
        loop = asyncio.get_running_loop()
        began = loop.time()
        async with asyncio.timeout(STOP_WAIT + 60):  # a hang: TimeoutError
            await server.stop()
        assert STOP_WAIT <= loop.time() - began < STOP_WAIT + 1
    finally:
        await store.close()
    assert len(await _restarted(tmp_path / "esi.db", server_class)) == 1
