"""A frame that arrives while a service's start() is still reading its store: the DRLC
client and the Messaging server take it only once their state is loaded, so it meets the
table (not an empty one) and a confirmation is told once, not by the live path and by the
replay of what was not told."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import zigpy.types as t

from zse.drlc.core import ApplyLoadControl, LoadControlEvent, StopLoadControl
from zse.drlc.protocol import event_payload
from zse.drlc.service import DrlcClient
from zse.messaging import Confirmation, Message
from zse.messaging.protocol import confirmation_payload
from zse.messaging.service import MessageConfirmed, MessagingServer
from zse.se.ids import DRLC, MESSAGING
from zse.store import Store
from zse.zcl.frame import ZclMessage

START = 800_000_000


class GatedStore(Store):
    """A real store whose start-up reads (``load_with``, ``unreported_with``) wait, while
    ``gating``, until the test lets each go (:func:`start_with_a_frame`); meanwhile a mark
    of journal entries waits for the read let go to end (``marking`` says one waits)."""

    gating = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting = asyncio.Event()
        self.go = asyncio.Event()
        self.marking = asyncio.Event()
        self.read = asyncio.Event()
        self.read.set()

    async def _gate(self) -> None:
        if self.gating:
            self.read.clear()
            self.waiting.set()
            await self.go.wait()
            self.go.clear()

    async def load_with(self, *args: Any, **kwargs: Any) -> Any:
        await self._gate()
        try:
            return await super().load_with(*args, **kwargs)
        finally:
            self.read.set()

    async def unreported_with(self, *args: Any, **kwargs: Any) -> Any:
        await self._gate()
        try:
            return await super().unreported_with(*args, **kwargs)
        finally:
            self.read.set()

    async def mark_reported(self, *seqs: int) -> None:
        self.marking.set()
        await self.read.wait()
        await super().mark_reported(*seqs)


class Port:
    """Just enough of a ZclPort: handlers, attributes, and sends recorded."""

    def __init__(self, endpoint_id: int) -> None:
        self.endpoint_id = endpoint_id
        self.handlers: dict[int, Callable[[ZclMessage], Awaitable[Any]]] = {}
        self.sent: list[tuple[int, int, bytes]] = []

    def add_handler(self, cluster_id, handler, **_):
        self.handlers[cluster_id] = handler
        return lambda: self.handlers.pop(cluster_id, None)

    def set_attribute(self, *args, **kwargs) -> None:
        return None

    def set_writable(self, *args, **kwargs) -> None:
        return None

    def set_undivided_commit(self, *args) -> None:
        return None

    async def send(self, dst, dst_ep, cluster_id, command_id, payload=b"", **kwargs) -> int:
        self.sent.append((cluster_id, command_id, bytes(payload)))
        return 0

    async def reply(self, msg, command_id, payload=b"", **kwargs) -> None:
        self.sent.append((msg.cluster_id, command_id, bytes(payload)))


def frame(
    cluster_id: int, command_id: int, payload: bytes, *, from_server: bool, ieee: str
) -> ZclMessage:
    return ZclMessage(
        src_nwk=0x1234,
        src_ieee=t.EUI64.convert(ieee),
        src_ep=9 if from_server else 1,
        dst_ep=1 if from_server else 9,
        cluster_id=cluster_id,
        profile_id=0x0109,
        frame_control=0x09 if from_server else 0x01,
        manufacturer=None,
        tsn=7,
        command_id=command_id,
        payload=payload,
        aps_encrypted=True,
        group=None,
        broadcast=False,
        timestamp=0.0,
    )


async def start_with_a_frame(
    start: Callable[[], Awaitable[None]], store: GatedStore, port: Port, msg: ZclMessage
) -> None:
    """Run ``start()`` with ``msg`` handed to the cluster's handler at the first store read
    it waits on with the handler already registered (else right after the start): the frame
    is taken until it is done or waits to mark a journal entry, then the read goes on."""
    store.gating = True
    task = asyncio.create_task(start())
    handled: asyncio.Task[Any] | None = None
    while not task.done():
        waiting = asyncio.create_task(store.waiting.wait())
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            waiting.cancel()
            continue
        store.waiting.clear()
        if handled is None and msg.cluster_id in port.handlers:
            store.marking.clear()
            handled = asyncio.create_task(port.handlers[msg.cluster_id](msg))
            marking = asyncio.create_task(store.marking.wait())
            await asyncio.wait({handled, marking}, return_when=asyncio.FIRST_COMPLETED)
            marking.cancel()
        store.go.set()
    await task
    store.gating = False
    if handled is None:
        await port.handlers[msg.cluster_id](msg)
    else:
        await handled


async def test_a_finished_event_repeated_while_the_drlc_client_starts_is_not_run_again(
    tmp_path,
) -> None:
    now = [START]
    path = tmp_path / "device.db"
    event = LoadControlEvent(
        issuer_event_id=7,
        start_time=START,
        duration_in_minutes=30,
        device_class=0xFFFF,
        criticality_level=4,
    )
    actions: list[Any] = []

    def client(port: Port, store: Store) -> DrlcClient:
        drlc = DrlcClient(
            port,
            server_ep=9,
            device_class=0x80,
            start_randomization_minutes=0,
            clock=lambda: now[0],
            rng=random.Random(1),
            store=store,
        )
        drlc.on_event(actions.append)
        return drlc

    lce = frame(DRLC, 0x00, event_payload(event), from_server=True, ieee="00:0d:6f:00:00:00:00:01")
    async with await GatedStore.open(path) as store:
        port = Port(1)
        first = client(port, store)
        await first.start(get_scheduled_events=False)
        await port.handlers[DRLC](lce)
        now[0] += 31 * 60
        await first._run(first.protocol.handle_timeout)  # the event ran to its end
        await first.stop()
    assert [type(a) for a in actions] == [ApplyLoadControl, StopLoadControl]
    actions.clear()
    async with await GatedStore.open(path) as store:
        port = Port(1)
        again = client(port, store)
        # the ESI's repeat of event 7 (as republished: start now) arrives during the start
        repeat = frame(
            DRLC,
            0x00,
            event_payload(LoadControlEvent(**{**event.__dict__, "start_time": 0})),
            from_server=True,
            ieee="00:0d:6f:00:00:00:00:01",
        )
        await start_with_a_frame(
            lambda: again.start(get_scheduled_events=False), store, port, repeat
        )
        now[0] += 60
        await again._run(again.protocol.handle_timeout)
        await again.stop()
    # finished before the restart: not applied again, no report sent again
    assert actions == []
    assert port.sent == []


async def test_a_confirmation_arriving_while_the_messaging_server_starts_is_told_once(
    tmp_path,
) -> None:
    path = tmp_path / "esi.db"
    message = Message(message_id=0x77, text="Meter read tomorrow", confirmation_required=True)
    told: list[MessageConfirmed] = []
    ihd, lcd = "00:0d:6f:00:00:00:00:51", "00:0d:6f:00:00:00:00:52"

    def confirm(ieee: str) -> ZclMessage:
        payload = confirmation_payload(Confirmation(message_id=0x77, confirmation_time=START))
        return frame(MESSAGING, 0x01, payload, from_server=False, ieee=ieee)

    class Unmarked(GatedStore):
        """Killed before it marks the first confirmation told."""

        async def mark_reported(self, *seqs: int) -> None:
            raise asyncio.CancelledError

    async with await Unmarked.open(path) as store:
        port = Port(9)
        server = MessagingServer(port, clock=lambda: START, store=store)
        await server.start()
        await server.record(message)
        server.on_event(told.append)
        with contextlib.suppress(asyncio.CancelledError):
            await port.handlers[MESSAGING](confirm(ihd))
        await server.stop()
    assert [c.device for c in told] == [ihd]  # told, never marked: told again at start
    told.clear()
    async with await GatedStore.open(path) as store:
        port = Port(9)
        server = MessagingServer(port, clock=lambda: START, store=store)
        server.on_event(told.append)
        await start_with_a_frame(server.start, store, port, confirm(lcd))
        await server.stop()
        assert await store.unreported(server.namespace) == []
    assert sorted(c.device for c in told) == [ihd, lcd]  # each once
