"""The headend's records (:mod:`zse.headend.store`) hold a change whose commit was cancelled
once its transaction had begun (a request's task cancelled, a stop), which the store carries
out (:attr:`zse.store.Batch.landed`): as stored. A send so stored was not held, and its id,
stored, was given to the next send (ids are message ids and issuer event ids on the air)."""

from __future__ import annotations

from pathlib import Path

from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from zse.headend.core import SendKind
from zse.headend.store import HeadendStore, SendRecord


class SendSlow(TransactionSlow):
    key = "1"


async def test_a_send_cancelled_during_its_transaction_is_held_as_stored(tmp_path: Path) -> None:
    async with await SendSlow.open(tmp_path / "headend.db") as store:
        assert isinstance(store, SendSlow)
        records = await HeadendStore.open(store)
        send = SendRecord(
            id=records.next_send_id(),
            retailer="r",
            kind=SendKind.MESSAGE,
            group="g",
            request={"text": "Hi"},
            created=0,
        )
        await cancelled_in_its_transaction(store, records.put_send(send))
        assert records.sends == {1: send}
        assert records.next_send_id() == 2
        assert (await HeadendStore.open(store)).sends == records.sends
