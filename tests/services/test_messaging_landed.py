"""A device's Message Confirmation whose commit is cancelled once its transaction has begun
(the caller's task, a stop), which the store carries out (:attr:`zse.store.Batch.landed`):
it is owed, and the timer sends it. It was journaled, the message confirmed on the board,
but not held as owed: sent only after a restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from tests.events.test_events_store_failure import CommitWaits, FailingStore
from tests.services.test_messaging_restart import MESSAGE, han
from tests.services.test_supply_told import (
    TransactionSlow,
    cancelled_in_its_transaction,
    stopped_in_its_transaction,
)
from zse.messaging.core import BoardEvent, MessageExpired
from zse.messaging.service import STEP_RETRY, MessageConfirmed, MessagingClient, MessagingServer
from zse.store import Store
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

S = TypeVar("S", bound=Store)


class ConfirmSlow(TransactionSlow):
    key = "confirm"


class BoardSlow(TransactionSlow):
    key = "board"


async def test_a_confirmation_cancelled_during_its_transaction_is_sent(tmp_path: Path) -> None:
    se, ep, address, clock, _ = await han(53)
    server = MessagingServer(se, clock=clock)
    await server.start()
    told: list[MessageConfirmed] = []
    server.on_event(told.append)
    async with await ConfirmSlow.open(tmp_path / "device.db") as store:
        assert isinstance(store, ConfirmSlow)
        client = MessagingClient(
            ep, server_ep=SE_ENDPOINT_ID, clock=clock, store=store, retry_interval=60
        )
        await client.start()
        await server.display(MESSAGE, device=address)
        await asyncio.sleep(1)
        await cancelled_in_its_transaction(store, client.confirm(MESSAGE.message_id))
        await asyncio.sleep(120)
        assert [e.message.message_id for e in told] == [MESSAGE.message_id]
        assert await store.unreported(client.namespace) == []
        await client.stop()
    await server.stop()


async def test_a_message_whose_write_was_cancelled_is_written_with_the_next_commit(
    tmp_path: Path,
) -> None:
    """The ESI's display, its write cancelled before it began (the caller's task, a stop):
    the message is held and served, so it is written with the next commit (it was left out
    of every later one: a restart lost it), as for a write that fails."""
    se, _, address, clock, _ = await han(54)
    path = tmp_path / "esi.db"
    async with await CommitWaits.open(path) as store:
        assert isinstance(store, CommitWaits)
        server = MessagingServer(se, clock=clock, store=store)
        await server.start()
        store.wait_next = True
        display = asyncio.ensure_future(server.display(MESSAGE, device=address))
        await asyncio.sleep(1)
        display.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await display
        await server.display(replace(MESSAGE, message_id=0x78), device=address)
        served = sorted(server.messages.messages)
        await server.stop()
    async with await Store.open(path) as store:
        again = MessagingServer(se, clock=clock, store=store)
        await again.start()
        assert sorted(again.messages.messages) == served == [0x77, 0x78]
        await again.stop()


async def expired_once(
    tmp_path: Path,
    seed: int,
    kind: type[S],
    at_end: Callable[[MessagingClient, S, list[BoardEvent]], Awaitable[None]],
) -> None:
    """A message shown by a device's client on a ``kind`` store, then ``at_end`` (its end,
    as the store writes it; the client stopped): restarted, the client holds nothing, and
    its MessageExpired was told once."""
    se, ep, address, clock, _ = await han(seed)
    server = MessagingServer(se, clock=clock)
    await server.start()
    path = tmp_path / "device.db"
    told: list[BoardEvent] = []
    async with await kind.open(path) as store:
        assert isinstance(store, kind)
        client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, store=store)
        client.on_event(told.append)
        await client.start(fetch=False)
        await server.display(MESSAGE, device=address)
        await asyncio.sleep(1)
        await at_end(client, store, told)
    async with await Store.open(path) as store:
        again = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, store=store)
        again.on_event(told.append)
        await again.start(fetch=False)
        assert again.board.held() == []
        await again.stop()
    assert len([e for e in told if isinstance(e, MessageExpired)]) == 1  # once
    await server.stop()


async def test_an_expiry_whose_write_fails_is_put_back_and_made_later(tmp_path: Path) -> None:
    """A message's end whose write fails: the board is put back as stored (the message still
    held, nothing told) and the end taken again STEP_RETRY seconds later, told once. It was
    made in memory and never told (the next commit stored it; a restart before told it)."""

    async def fails(client: MessagingClient, store: FailingStore, told: list[BoardEvent]) -> None:
        store.fail_next = True
        await asyncio.sleep(MESSAGE.duration_in_minutes * 60)  # its end, its write failed
        assert [m.message_id for m in client.board.held()] == [MESSAGE.message_id]
        assert not [e for e in told if isinstance(e, MessageExpired)]
        await asyncio.sleep(STEP_RETRY)
        assert (client.board.held(), [type(e) for e in told][-1:]) == ([], [MessageExpired])
        await client.stop()

    await expired_once(tmp_path, 55, FailingStore, fails)


async def test_an_expiry_whose_write_a_stop_cancelled_during_its_transaction_is_told(
    tmp_path: Path,
) -> None:
    """A message's end whose write a stop cancels once its transaction has begun, which the
    store carries out (:attr:`zse.store.Batch.landed`): its MessageExpired is told before
    the stop ends, and not again after the restart. It was stored as ended and never told,
    before or after the restart (the restart tells only what is shown)."""

    async def stopped(client: MessagingClient, store: BoardSlow, told: list[BoardEvent]) -> None:
        await stopped_in_its_transaction(store, client.stop)  # at the message's end
        assert [type(e) for e in told][-1:] == [MessageExpired]

    await expired_once(tmp_path, 56, BoardSlow, stopped)
