"""A device's Message Confirmation whose commit is cancelled once its transaction has begun
(the caller's task, a stop), which the store carries out (:attr:`zse.store.Batch.landed`):
it is owed, and the timer sends it. It was journaled, the message confirmed on the board,
but not held as owed: sent only after a restart."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path

from tests.events.test_events_store_failure import CommitWaits, FailingStore
from tests.services.test_messaging_restart import MESSAGE, han
from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from zse.messaging.core import BoardEvent, MessageExpired
from zse.messaging.service import STEP_RETRY, MessageConfirmed, MessagingClient, MessagingServer
from zse.store import Store
from zse.zcl.se_endpoint import SE_ENDPOINT_ID


class ConfirmSlow(TransactionSlow):
    key = "confirm"


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
    server.stop()


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
        server.stop()
    async with await Store.open(path) as store:
        again = MessagingServer(se, clock=clock, store=store)
        await again.start()
        assert sorted(again.messages.messages) == served == [0x77, 0x78]
        again.stop()


async def test_an_expiry_whose_write_fails_is_put_back_and_made_later(tmp_path: Path) -> None:
    """A message's end whose write fails: the board is put back as stored (the message still
    held, nothing told) and the end taken again STEP_RETRY seconds later, told once. It was
    made in memory and never told (the next commit stored it; a restart before told it)."""
    se, ep, address, clock, _ = await han(55)
    server = MessagingServer(se, clock=clock)
    await server.start()
    path = tmp_path / "device.db"
    told: list[BoardEvent] = []
    async with await FailingStore.open(path) as store:
        assert isinstance(store, FailingStore)
        client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, store=store)
        client.on_event(told.append)
        await client.start(fetch=False)
        await server.display(MESSAGE, device=address)
        await asyncio.sleep(1)
        store.fail_next = True
        await asyncio.sleep(MESSAGE.duration_in_minutes * 60)  # its end, its write failed
        assert [m.message_id for m in client.board.held()] == [MESSAGE.message_id]
        assert not [e for e in told if isinstance(e, MessageExpired)]
        await asyncio.sleep(STEP_RETRY)
        assert (client.board.held(), [type(e) for e in told][-1:]) == ([], [MessageExpired])
        await client.stop()
    async with await Store.open(path) as store:
        again = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, store=store)
        again.on_event(told.append)
        await again.start(fetch=False)
        assert again.board.held() == []
        await again.stop()
    assert len([e for e in told if isinstance(e, MessageExpired)]) == 1  # once
    server.stop()
