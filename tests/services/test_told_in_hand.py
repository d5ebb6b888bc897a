"""The ESI's DRLC and Messaging servers mark a report or a confirmation told only once their
listeners have it in hand: a listener may return an awaitable of what it still does with the
event (journal it, record it in a database), and the "told" entry is marked once that
finished; one that failed leaves the event to be told again after the next start
(zse.zcl.events)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.services.test_drlc_told import LCD, START, held_then_live, report_frame
from tests.services.test_server_records import event
from tests.services.test_start_order import Port, frame
from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from zse.drlc.service import DrlcServer, ReportReceived
from zse.messaging import Message
from zse.messaging.protocol import confirmation_payload
from zse.messaging.service import MESSAGING, Confirmation, MessageConfirmed, MessagingServer
from zse.se.ids import DRLC
from zse.store import Store
from zse.zcl.events import EventStream, Untold

IHD = "00:0d:6f:00:00:00:00:61"


class Keeping:
    """A listener that keeps each event and returns a future of what it still does with it,
    left for the test to finish (or fail)."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.futures: list[asyncio.Future[None]] = []

    def __call__(self, event: Any) -> asyncio.Future[None]:
        self.events.append(event)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


async def drlc(
    store: Store, keeping: Callable[[Any], Any], *, tell: bool = True
) -> tuple[Port, DrlcServer]:
    """A DRLC server listened to by ``keeping``, with event 7 published."""
    port = Port(9)
    server = DrlcServer(port, clock=lambda: START, store=store)
    server.on_event(keeping)
    await (server.start() if tell else server.start(tell=False))
    await server.publish(event(7, START + 60, 30))
    return port, server


async def _restarted(path: Any, server_class: Any) -> list[Any]:
    """A server of ``server_class`` started again on the store at ``path``: what it told (all
    marked told then)."""
    told: list[Any] = []
    async with await Store.open(path) as store:
        server = server_class(Port(9), clock=lambda: START, store=store)
        server.on_event(told.append)
        await server.start()
        assert await store.unreported(server.namespace) == []
        if isinstance(server, MessagingServer):
            await server.stop()
    return told


async def _until(condition: Callable[[], Any]) -> None:
    while not condition():
        await asyncio.sleep(0)


async def test_a_report_is_marked_told_once_the_listener_finished_with_it(tmp_path) -> None:
    async with await Store.open(tmp_path / "esi.db") as store:
        keeping = Keeping()
        port, server = await drlc(store, keeping)
        handling = asyncio.create_task(port.handlers[DRLC](report_frame(0x01)))
        await _until(lambda: keeping.futures)
        assert [r.report.event_status for r in keeping.events] == [0x01]
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(await store.unreported(server.namespace)) == 1  # not in hand yet
        assert not handling.done()
        keeping.futures[0].set_result(None)
        await handling
        assert await store.unreported(server.namespace) == []


async def test_a_report_whose_listener_failed_is_told_again_after_the_restart(tmp_path) -> None:
    path = tmp_path / "esi.db"
    async with await Store.open(path) as store:
        keeping = Keeping()
        port, server = await drlc(store, keeping)
        handling = asyncio.create_task(port.handlers[DRLC](report_frame(0x01)))
        await _until(lambda: keeping.futures)
        keeping.futures[0].set_exception(RuntimeError("the journal is gone"))
        await handling  # the device's answer is not held up by the listener's failure
        assert len(await store.unreported(server.namespace)) == 1
    told: list[ReportReceived] = await _restarted(path, DrlcServer)
    assert [(r.device, r.report.event_status, r.new) for r in told] == [(LCD, 0x01, True)]


async def test_held_reports_are_marked_each_once_its_listener_finished(tmp_path) -> None:
    """``tell_untold``: the reports held since the start are told in order, each marked
    once its own listener's work is done; a failed one stays for the next start."""
    async with await Store.open(tmp_path / "esi.db") as store:
        keeping = Keeping()
        port, server = await drlc(store, keeping, tell=False)
        await port.handlers[DRLC](report_frame(0x01))
        await port.handlers[DRLC](report_frame(0x02))
        telling = asyncio.create_task(server.tell_untold())
        await _until(lambda: len(keeping.futures) == 2)
        assert [r.report.event_status for r in keeping.events] == [0x01, 0x02]
        keeping.futures[1].set_result(None)
        keeping.futures[0].set_exception(RuntimeError("the journal is gone"))
        await telling
        (left,) = await store.unreported(server.namespace)
        assert left.value["report"]["event_status"] == 0x01


async def test_a_confirmation_whose_listener_failed_is_told_again_after_the_restart(
    tmp_path,
) -> None:
    path = tmp_path / "esi.db"
    message = Message(message_id=0x77, text="Meter read tomorrow", confirmation_required=True)
    payload = confirmation_payload(Confirmation(message_id=0x77, confirmation_time=START))
    confirm = frame(MESSAGING, 0x01, payload, from_server=False, ieee=IHD)
    async with await Store.open(path) as store:
        port = Port(9)
        server = MessagingServer(port, clock=lambda: START, store=store)
        keeping = Keeping()
        server.on_event(keeping)
        await server.start()
        await server.record(message)
        handling = asyncio.create_task(port.handlers[MESSAGING](confirm))
        await _until(lambda: keeping.futures)
        assert len(await store.unreported(server.namespace)) == 1  # not in hand yet
        keeping.futures[0].set_exception(RuntimeError("the database is gone"))
        await handling
        assert len(await store.unreported(server.namespace)) == 1
        await server.stop()
    told: list[MessageConfirmed] = await _restarted(path, MessagingServer)
    assert [c.device for c in told] == [IHD]


def _confirmation(ieee: str) -> Any:
    """``ieee``'s Message Confirmation of message 0x77."""
    payload = confirmation_payload(Confirmation(message_id=0x77, confirmation_time=START))
    return frame(MESSAGING, 0x01, payload, from_server=False, ieee=ieee)


async def test_held_confirmations_are_told_before_live_ones_each_once(tmp_path) -> None:
    """Messaging on ``zse.zcl.events.Untold``: a confirmation stored and never told (the ESI
    killed before it told anyone), then one taken after a start that holds them, are told by
    ``tell_untold`` in that order, then one taken afterwards as it comes; each once, and
    none again after a restart. (Making the server tell instead of hold left the suite
    passing: the DRLC server alone was tested.)"""
    path = tmp_path / "esi.db"
    devices = ["00:0d:6f:00:00:00:00:6" + str(n) for n in range(1, 4)]
    message = Message(message_id=0x77, text="Meter read tomorrow", confirmation_required=True)
    async with await Store.open(path) as store:
        port = Port(9)
        server = MessagingServer(port, clock=lambda: START, store=store)
        await server.start(tell=False)
        await server.record(message)
        await port.handlers[MESSAGING](_confirmation(devices[0]))  # stored, held: never told
        await server.stop()
    held, live = _confirmation(devices[1]), _confirmation(devices[2])
    told = await held_then_live(path, MessagingServer, MESSAGING, held, live)
    assert [c.device for c in told] == devices
    assert await _restarted(path, MessagingServer) == []


async def test_events_held_without_a_store_are_kept_across_a_restart() -> None:
    """A service without a store, started not telling, stopped and started again before any
    listener came: what it held was replaced by the (empty) store's read, so lost; kept now,
    while what a store keeps is read back from it, not held twice."""
    stream: EventStream[str] = EventStream()
    marked: list[int] = []

    async def mark(*seqs: int) -> None:
        marked.extend(seqs)

    untold: Untold[str] = Untold(stream, mark)
    untold.hold([])
    await untold.tell([(None, "no store"), (4, "stored")])
    untold.hold([(4, "stored")])  # the restart: the store still has its entry untold
    told: list[str] = []
    stream.on_event(told.append)
    await untold.tell_untold()
    assert (told, marked) == (["no store", "stored"], [4])


class ToldSlow(TransactionSlow):
    """The transaction journalling a report or a confirmation (its ``told`` or
    ``confirmed`` entry) waits."""


@pytest.mark.parametrize("server_class", [DrlcServer, MessagingServer])
async def test_one_stored_after_its_handler_was_cancelled_is_told_at_once(
    tmp_path, server_class: Any
) -> None:
    """A report (DRLC) or a confirmation (Messaging) whose handler is cancelled once its
    write's transaction has begun, which the store carries out: told at once, while the
    server runs on, and marked: not again after the restart (it was told only then)."""
    path = tmp_path / "esi.db"
    told: list[Any] = []
    async with await ToldSlow.open(path) as store:
        assert isinstance(store, ToldSlow)
        port = Port(9)
        server = server_class(port, clock=lambda: START, store=store)
        server.on_event(told.append)
        await server.start()
        if server_class is DrlcServer:
            await server.publish(event(7, START + 60, 30))
            store.key, cluster, taken = "told", DRLC, report_frame(0x01)
        else:
            message = Message(message_id=0x77, text="Meter read", confirmation_required=True)
            await server.record(message)
            store.key, cluster, taken = "confirmed", MESSAGING, _confirmation(IHD)
        await cancelled_in_its_transaction(store, port.handlers[cluster](taken))
        await asyncio.sleep(1)  # the server runs on
        assert len(told) == 1
        await server.stop()
    assert await _restarted(path, server_class) == []
