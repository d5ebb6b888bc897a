"""A device's Message Confirmation whose commit is cancelled once its transaction has begun
(the caller's task, a stop), which the store carries out (:attr:`zse.store.Batch.landed`):
it is owed, and the timer sends it. It was journaled, the message confirmed on the board,
but not held as owed: sent only after a restart."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path

from tests.events.test_events_store_failure import CommitWaits
from tests.services.test_messaging_restart import MESSAGE, han
from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from zse.messaging.service import MessageConfirmed, MessagingClient, MessagingServer
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
