"""The Prepayment server tells each event of the account once: a "told" journal entry is
committed with the account's record and marked once the listeners have it in hand, so a
process killed in between (the supply interrupted, a top-up accepted: stored, not yet told)
tells it after its restart, and never twice."""

from __future__ import annotations

import asyncio
import os
import signal
from fractions import Fraction
from typing import Any

import pytest

from tests.events.test_events_store_failure import CommitWaits, FailingStore
from tests.services.test_start_order import Port, frame
from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from tests.store.helpers import killed_itself
from zse.prepayment.core import (
    CreditExhausted,
    Debt,
    LowCredit,
    PrepayConfig,
    SupplyInterrupted,
    SupplyRestored,
    TopUpAccepted,
    TopUpRefused,
    event_from_record,
    event_record,
)
from zse.prepayment.service import TICK_RETRY, PrepaymentServer
from zse.prepayment.wire import Prepayment, TopUpResult
from zse.records import Mismatch
from zse.se.ids import PREPAYMENT, PrepaymentServerCommand, debt_attribute, top_up_attribute
from zse.se.ids import PrepaymentAttribute as A
from zse.store import Batch, Store
from zse.zcl.codec import encode_command
from zse.zcl.frame import ZclMessage

START = 800_000_000
IHD = "00:0d:6f:00:0e:00:00:01"
CODE = "12345678901234567890"
CONFIG = PrepayConfig(initial_credit=100)
NAMESPACE = "prepayment.server/9"

CHILD = """
import asyncio, os, signal, sys
from tests.services.test_prepayment_told import run_until_killed

asyncio.run(run_until_killed(sys.argv[1], sys.argv[2]))
"""


class PrepayPort(Port):
    """The services' test port, with the attribute sources the Prepayment server sets."""

    def set_attribute_source(self, *args: Any, **kwargs: Any) -> None:
        return None


def top_up_frame(code: str = CODE):
    schema = Prepayment.ServerCommandDefs.consumer_top_up.schema
    payload = encode_command(schema(originating_device=2, top_up_code=code.encode("ascii")))
    return frame(PREPAYMENT, PrepaymentServerCommand.CONSUMER_TOP_UP, payload,
                 from_server=False, ieee=IHD)  # fmt: skip


def server(port: Port, store: Store) -> PrepaymentServer:
    return PrepaymentServer(
        port, config=CONFIG, codes={CODE: 2000}, clock=lambda: START, store=store
    )


async def run_until_killed(path: str, what: str) -> None:
    """Run the account at ``path`` until the event ``what`` names is told: then kill -9."""
    kind = {"interrupted": SupplyInterrupted, "top-up": TopUpAccepted}[what]
    port = PrepayPort(9)
    store = await Store.open(path)
    prepay = server(port, store)

    def told(event: object) -> None:
        if isinstance(event, kind):  # the account is committed: killed before anyone has it
            print("told", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    prepay.on_event(told)
    await prepay.start()
    if what == "interrupted":
        await prepay.consume(Fraction(10), Fraction(20))  # 200 charged: 100 below zero
    else:
        await port.handlers[PREPAYMENT](top_up_frame())


def killed(path: Any, what: str) -> None:
    assert killed_itself(CHILD, str(path), what) == "told\n"


async def restarted(path: Any) -> tuple[PrepaymentServer, list[object]]:
    """The account started again on the store at ``path``: what it told (all marked told)."""
    told: list[object] = []
    async with await Store.open(path) as store:
        prepay = server(PrepayPort(9), store)
        prepay.on_event(told.append)
        await prepay.start()
        assert await store.unreported(prepay.namespace) == []
        await prepay.stop()
    return prepay, told


def test_a_supply_interrupted_stored_then_killed_is_told_after_the_restart(tmp_path) -> None:
    path = tmp_path / "esi.db"
    killed(path, "interrupted")
    prepay, told = asyncio.run(restarted(path))
    assert prepay.account.interrupted  # stored before the kill
    assert told == [LowCredit(-100, 0), CreditExhausted(-100), SupplyInterrupted(START)]
    _, again = asyncio.run(restarted(path))
    assert again == []  # told before: not told again


def test_a_top_up_stored_then_killed_is_told_after_the_restart(tmp_path) -> None:
    path = tmp_path / "esi.db"
    killed(path, "top-up")
    prepay, told = asyncio.run(restarted(path))
    assert prepay.account.credit == 2100
    assert [type(e) for e in told] == [TopUpAccepted]
    assert told[0].amount == 2000
    assert "3456" not in told[0].code  # masked, as told live
    _, again = asyncio.run(restarted(path))
    assert again == []


async def test_held_until_told_and_a_listener_that_fails_hears_it_again(tmp_path) -> None:
    """``start(tell=False)`` holds the events until ``tell_untold()``; an event whose
    listener's work failed is not marked told: the next start tells it again, once."""
    path = tmp_path / "esi.db"
    failed: list[object] = []

    def failing(event: object) -> asyncio.Future[None]:
        failed.append(event)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_exception(OSError("the journal is full"))
        return future

    async with await Store.open(path) as store:
        port = PrepayPort(9)
        prepay = server(port, store)
        told: list[object] = []
        prepay.on_event(told.append)
        await prepay.start(tell=False)
        await prepay.consume(Fraction(10), Fraction(20))
        await port.handlers[PREPAYMENT](top_up_frame("00000000000000000000"))  # refused
        assert told == []
        await prepay.tell_untold()
        assert [type(e) for e in told] == [
            LowCredit,
            CreditExhausted,
            SupplyInterrupted,
            TopUpRefused,
        ]
        assert await store.unreported(prepay.namespace) == []
        prepay.on_event(failing)
        await port.handlers[PREPAYMENT](top_up_frame())
        assert [type(e) for e in failed] == [TopUpAccepted, SupplyRestored]
        await prepay.stop()
    prepay, again = await restarted(path)
    assert [type(e) for e in again] == [TopUpAccepted, SupplyRestored]
    _, after = await restarted(path)
    assert after == []


@pytest.mark.parametrize("change", ["charge", "top-up"])
async def test_a_change_cancelled_while_its_write_waits_is_undone(tmp_path, change) -> None:
    """A charge (the application's) or a top-up (a HAN device's) cancelled (its task, a
    stop) while its write waits: the account is as it was, nothing told. It stayed changed
    in memory, and the next commit (here a credit adjustment) stored it without its events
    (the supply interrupted, or the code used up, after the restart: never told)."""
    path = tmp_path / "esi.db"
    async with await CommitWaits.open(path) as store:
        port = PrepayPort(9)
        prepay = server(port, store)
        told: list[object] = []
        prepay.on_event(told.append)
        await prepay.start()
        store.wait_next = True
        if change == "charge":
            made = asyncio.ensure_future(prepay.consume(Fraction(10), Fraction(20)))
        else:
            made = asyncio.ensure_future(port.handlers[PREPAYMENT](top_up_frame()))
        await asyncio.sleep(1)
        made.cancel()
        with pytest.raises(asyncio.CancelledError):
            await made
        await prepay.adjust_credit(0)  # another commit of the account
        assert (prepay.account.credit, prepay.account.used_digests(), told) == (100, set(), [])
        await prepay.stop()
    again, after = await restarted(path)
    assert (again.account.credit, again.account.used_digests(), after) == (100, set(), [])


class AccountTransactionSlow(TransactionSlow):
    key = "account"


async def test_a_charge_cancelled_during_its_transaction_is_kept_as_stored(tmp_path) -> None:
    """Cancelled once its transaction has begun, which the store carries out: the charge
    stays, as stored, its events told at once, while the account runs on, and marked: not
    again after the restart (they were told only then)."""
    path = tmp_path / "esi.db"
    async with await AccountTransactionSlow.open(path) as store:
        prepay = server(PrepayPort(9), store)
        told: list[object] = []
        prepay.on_event(told.append)
        await prepay.start()
        await cancelled_in_its_transaction(store, prepay.consume(Fraction(10), Fraction(20)))
        await asyncio.sleep(1)  # the account runs on
        assert prepay.account.credit == -100
        assert [type(e) for e in told] == [LowCredit, CreditExhausted, SupplyInterrupted]
        await prepay.stop()
    again, after = await restarted(path)
    assert again.account.credit == -100
    assert after == []  # told once


@pytest.mark.parametrize("change", ["debt", "top-up"])
async def test_a_change_cancelled_during_its_transaction_serves_its_new_attributes(
    tmp_path, change
) -> None:
    """A debt set by the operator (the application's) or a top-up (a HAN device's),
    cancelled once its transaction began, which the store carries out: kept as stored, the
    attributes it gave a value serve it (Debt Label 1, Top Up Amount 1). They were
    answered UNSUPPORTED_ATTRIBUTE until the account's next change."""
    async with await AccountTransactionSlow.open(tmp_path / "esi.db") as store:
        port = PrepayPort(9)
        prepay = server(port, store)
        await prepay.start()
        if change == "debt":
            made = prepay.change_debt(0, Debt(label=b"gas", amount=500))
            attribute = debt_attribute(A.DEBT_LABEL_1, 1)
        else:
            made = port.handlers[PREPAYMENT](top_up_frame())
            attribute = top_up_attribute(A.TOP_UP_AMOUNT_1, 1)
        assert attribute not in prepay._served
        await cancelled_in_its_transaction(store, made)
        assert attribute in prepay._served
        await prepay.stop()


def test_each_event_goes_to_the_journal_and_back() -> None:
    events = [
        TopUpAccepted(2000, 2100, 2, "1234************7890", TopUpResult.Accepted),
        TopUpRefused(TopUpResult.Rejected_Duplicate_Top_Up, 2, "1234************7890"),
        SupplyInterrupted(START),
    ]
    assert [event_from_record(event_record(e)) for e in events] == events
    for bad in (
        {"event": "Spent", "fields": {}},  # no such event
        {"event": "SupplyInterrupted", "fields": {"time": True}},
        {"event": "TopUpRefused", "fields": {"result": 0x100, "origin": 2, "code": "x"}},
    ):
        with pytest.raises((Mismatch, ValueError)):
            event_from_record(bad)


async def test_a_damaged_journal_entry_is_quarantined_not_told(tmp_path) -> None:
    path = tmp_path / "esi.db"
    async with await Store.open(path) as store:
        await store.commit(Batch().append(NAMESPACE, "told", {"event": "Spent", "fields": {}}))
    _, told = await restarted(path)
    assert told == []
    async with await Store.open(path) as store:
        assert [q.namespace for q in await store.quarantined()] == [NAMESPACE]


def utility_commanded(port: Port, store: Store) -> PrepaymentServer:
    """An account on the loop's clock whose utility commands (a Set Overall Debt Cap, a
    Credit Adjustment) are authorised."""
    loop = asyncio.get_running_loop()
    return PrepaymentServer(
        port,
        config=CONFIG,
        clock=lambda: START + int(loop.time()),
        store=store,
        authorize=lambda msg: True,
    )


async def test_a_command_for_later_cancelled_during_its_transaction_is_made_at_its_time(
    tmp_path,
) -> None:
    """The utility's Set Overall Debt Cap for a minute later, its write cancelled during its
    transaction (carried out, so kept): the cap is set at its time. The timer was not told of
    it, so it waited, stored, for some other input to the account (here: for ever)."""
    async with await AccountTransactionSlow.open(tmp_path / "esi.db") as store:
        assert isinstance(store, AccountTransactionSlow)
        prepay, port, cap = await debt_cap_for_later(store)
        await cancelled_in_its_transaction(store, port.handlers[PREPAYMENT](cap))
        assert len(prepay.account.pending) == 1
        await asyncio.sleep(120)
        assert (prepay.account.config.overall_debt_cap, prepay.account.pending) == (300, [])
        await prepay.stop()


async def debt_cap_for_later(store: Store) -> tuple[PrepaymentServer, PrepayPort, ZclMessage]:
    """A started account on ``store``, on the loop's clock, and the utility's Set Overall
    Debt Cap (300) taking effect a minute from now, not yet received."""
    port = PrepayPort(9)
    prepay = utility_commanded(port, store)
    await prepay.start()
    schema = Prepayment.ServerCommandDefs.set_overall_debt_cap.schema
    payload = encode_command(
        schema(
            provider_id=1,
            issuer_event_id=3,
            implementation_date_time=prepay.clock() + 60,
            overall_debt_cap=300,
        )
    )
    cap = frame(PREPAYMENT, PrepaymentServerCommand.SET_OVERALL_DEBT_CAP, payload,
                from_server=False, ieee=IHD)  # fmt: skip
    return prepay, port, cap


async def test_a_command_due_whose_write_fails_is_made_a_while_later(tmp_path) -> None:
    """The Set Overall Debt Cap falls due and its write fails: the account is undone (as
    stored) and the change taken again TICK_RETRY seconds later. Undone without a retry, it
    waited for the account's next input (a reading, a command), which may never come."""
    async with await FailingStore.open(tmp_path / "esi.db") as store:
        assert isinstance(store, FailingStore)
        prepay, port, cap = await debt_cap_for_later(store)
        await port.handlers[PREPAYMENT](cap)
        store.fail_next = True
        await asyncio.sleep(61)  # due, its write failed
        assert len(prepay.account.pending) == 1
        assert prepay.account.config.overall_debt_cap != 300
        await asyncio.sleep(TICK_RETRY)
        assert (prepay.account.config.overall_debt_cap, prepay.account.pending) == (300, [])
        await prepay.stop()
    async with await Store.open(tmp_path / "esi.db") as store:
        prepay, _, _ = await debt_cap_for_later(store)  # as stored: made once
        assert (prepay.account.config.overall_debt_cap, prepay.account.pending) == (300, [])
        await prepay.stop()


async def test_a_command_at_its_time_whose_write_the_stop_cancels_is_told_after_restart(
    tmp_path,
) -> None:
    """The utility's Credit Adjustment for a minute later (credit set to -100: the supply
    interrupted) falls due and its write begins; the account stops meanwhile (its timer
    cancelled, the write carried out), its listener let go first, as the ESI's stop does:
    the events are told after the restart. Told at that stop, to no one, they were marked
    told: never heard."""
    path = tmp_path / "esi.db"
    async with await AccountTransactionSlow.open(path) as store:
        assert isinstance(store, AccountTransactionSlow)
        port = PrepayPort(9)
        prepay = utility_commanded(port, store)
        detach = prepay.on_event(lambda event: None)
        await prepay.start()
        schema = Prepayment.ServerCommandDefs.credit_adjustment.schema
        payload = encode_command(
            schema(
                issuer_event_id=4,
                start_time=prepay.clock() + 60,
                credit_adjustment_type=1,  # absolute
                credit_adjustment_value=-100,
            )
        )
        adjust = frame(PREPAYMENT, PrepaymentServerCommand.CREDIT_ADJUSTMENT, payload,
                       from_server=False, ieee=IHD)  # fmt: skip
        await port.handlers[PREPAYMENT](adjust)
        store.begun, store.go, store.slow = asyncio.Event(), asyncio.Event(), True
        async with asyncio.timeout(120):
            await store.begun.wait()  # at its time, the adjustment's write under way
        detach()
        stopping = asyncio.ensure_future(prepay.stop())
        await asyncio.sleep(1)  # the stop waits for the adjustment's transaction
        assert not stopping.done()
        store.go.set()
        await stopping
    again, after = await restarted(path)
    assert again.account.credit == -100
    assert SupplyInterrupted in [type(e) for e in after]
