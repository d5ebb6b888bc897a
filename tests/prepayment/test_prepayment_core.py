"""The prepay account (SE 1.2 D.7), sans-IO: credit runs down with priced consumption,
emergency credit is offered and selected, the supply state follows, top-ups apply at most
once, logs are bounded, debts are recovered, and a stored account comes back whole."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zse.prepayment.core import (
    MAX_TOP_UP_LOG,
    CreditExhausted,
    Debt,
    DebtCollected,
    EmergencyCreditAvailable,
    EmergencyCreditSelected,
    LowCredit,
    PrepayAccount,
    PrepayConfig,
    PrepayError,
    SupplyInterrupted,
    SupplyRestored,
    TopUpAccepted,
    TopUpRefused,
)
from zse.prepayment.wire import CreditStatus, DebtRecoveryMethod, TopUpResult
from zse.records import Mismatch

NOW = 800_000_000
CODE = b"12345678901234567890"
IHD = 2
CS = CreditStatus
#: 24.5 p per kWh, in pence.
PRICE = Fraction(245, 10)


def pence(amount: int) -> Fraction:
    """The energy that costs ``amount`` pence at :data:`PRICE`."""
    return Fraction(amount) / PRICE


def account(**settings: int) -> PrepayAccount:
    config = {
        "initial_credit": 1000,
        "low_credit_warning_level": 300,
        "emergency_credit_limit": 500,
        "emergency_credit_threshold": 100,
        **settings,
    }
    return PrepayAccount(PrepayConfig(**config))


def test_credit_runs_down_with_priced_consumption_without_drift() -> None:
    acct = account()
    for second in range(100):  # 0.01 kWh a step: 0.245 p each, 24.5 p in all
        acct.consume(Fraction(1, 100), PRICE, NOW + second)
    assert acct.credit == 1000 - 24
    acct.consume(Fraction(1, 100) * 2, PRICE, NOW + 100)  # 0.49 p more: 24.99 p in all
    assert acct.credit == 1000 - 24
    acct.consume(Fraction(1, 1000), PRICE, NOW + 101)  # 0.0245 more: past 25 p
    assert acct.credit == 1000 - 25
    assert acct.credit_time == NOW + 101


def test_low_credit_emergency_credit_exhaustion_and_a_top_up_that_restores() -> None:
    acct = account()
    assert acct.credit_status == CS.Credit_OK | CS.Emergency_Credit_Enabled
    events = acct.consume(pence(710), PRICE, NOW)  # 710 p: 290 left
    assert events == [LowCredit(290, 300)]
    assert acct.credit_status == CS.Low_Credit | CS.Emergency_Credit_Enabled
    ok, none = acct.select_emergency_credit(NOW, IHD)
    assert (ok, none) == (False, [])  # not under the threshold yet
    events = acct.consume(pence(200), PRICE, NOW + 60)  # 90 left: under 100
    assert events == [EmergencyCreditAvailable(90)]
    assert CS.Emergency_Credit_Available in acct.credit_status
    events = acct.consume(pence(90), PRICE, NOW + 120)  # 0 left
    assert events == [CreditExhausted(0), SupplyInterrupted(NOW + 120)]
    assert acct.interrupted
    assert acct.credit_status == (
        CS.Credit_Exhausted | CS.Emergency_Credit_Enabled | CS.Emergency_Credit_Available
    )
    ok, events = acct.select_emergency_credit(NOW + 130, IHD)
    assert ok
    assert events == [EmergencyCreditSelected(500, IHD), SupplyRestored(NOW + 130)]
    assert acct.credit_status == (
        CS.Low_Credit
        | CS.Emergency_Credit_Enabled
        | CS.Emergency_Credit_Selected
        | CS.Emergency_Credit_In_Use
    )
    acct.consume(pence(200), PRICE, NOW + 200)
    assert (acct.credit, acct.emergency_remaining) == (0, 300)
    assert acct.select_emergency_credit(NOW + 201, IHD) == (False, [])  # selected already
    acct.consume(pence(350), PRICE, NOW + 300)  # 300 of emergency credit, 50 more
    assert (acct.credit, acct.emergency_remaining) == (-50, 0)
    assert acct.interrupted
    acct.registered.register(CODE, 2000)
    outcome = acct.top_up(CODE, IHD, NOW + 400)
    # the 50 used while interrupted, then the 500 of emergency credit, are paid back first
    assert outcome.result == TopUpResult.Accepted_Supply_Enabled
    assert (outcome.value, outcome.credit_remaining) == (2000, 1450)
    assert not acct.selected
    assert not acct.interrupted
    assert SupplyRestored(NOW + 400) in outcome.events
    assert acct.credit_status == CS.Credit_OK | CS.Emergency_Credit_Enabled


@pytest.mark.parametrize("stored", [False, True])
@pytest.mark.parametrize("new_limit", [2000, 200])
def test_emergency_credit_set_up_again_while_selected_pays_back_only_what_was_used(
    new_limit: int, stored: bool
) -> None:
    """Emergency Credit Setup (D.7.2.3.3) while emergency credit is selected changes the
    limit, not what was given: a top-up pays back the emergency credit used (300 of the 500
    given), whatever the new limit, before and after a restart; it took a raised limit's
    difference out of the top-up (money lost), gave a lowered one's as credit (money made)."""
    acct = account(initial_credit=100)
    assert acct.select_emergency_credit(NOW, IHD)[0]  # 500 given
    acct.consume(pence(400), PRICE, NOW + 60)  # 100 of credit, then 300 of emergency credit
    assert (acct.credit, acct.emergency_remaining) == (0, 200)
    acct.setup_emergency_credit(new_limit, 100, NOW + 120)
    if stored:
        record = json.loads(json.dumps(acct.snapshot()))
        acct = account()
        acct.restore(record)
    acct.registered.register(CODE, 1000)
    outcome = acct.top_up(CODE, IHD, NOW + 180)
    assert (outcome.value, outcome.credit_remaining) == (1000, 700)
    assert (acct.selected, acct.emergency_remaining) == (False, 0)


def test_credit_status_bits_at_their_boundaries() -> None:
    """Low Credit at the low credit warning level, emergency credit offered (and selected)
    at its threshold: both "at or under" (D.7.2.2.1.4, table D-131); emergency credit
    selected with credit still left is Selected, not In Use."""
    acct = account()
    assert acct.consume(pence(700), PRICE, NOW) == [LowCredit(300, 300)]  # at the level
    assert acct.credit_status == CS.Low_Credit | CS.Emergency_Credit_Enabled
    assert acct.consume(pence(200), PRICE, NOW + 60) == [EmergencyCreditAvailable(100)]
    assert acct.credit_status == (
        CS.Low_Credit | CS.Emergency_Credit_Enabled | CS.Emergency_Credit_Available
    )
    ok, events = acct.select_emergency_credit(NOW + 120, IHD)  # at the threshold
    assert (ok, events) == (True, [EmergencyCreditSelected(500, IHD)])
    assert acct.credit_status == (
        CS.Low_Credit | CS.Emergency_Credit_Enabled | CS.Emergency_Credit_Selected
    )  # 100 of credit left: the emergency credit is not in use yet


def test_a_code_applies_at_most_once_and_refusals_say_why() -> None:
    acct = account(max_credit_per_top_up=5000, max_credit_limit=10_000)
    acct.registered.register(CODE, 2000)
    acct.registered.register("99999999999999999999", 6000)
    acct.registered.register("88888888888888888888", 4000)
    first = acct.top_up(CODE, IHD, NOW)
    assert first.result == TopUpResult.Accepted
    assert first.accepted
    assert first.events[0] == TopUpAccepted(2000, 3000, IHD, "*" * 16 + "7890", first.result)
    again = acct.top_up(CODE, IHD, NOW + 1)
    assert again.result == TopUpResult.Rejected_Duplicate_Top_Up
    assert (again.value, again.credit_remaining) == (0, 3000)
    assert again.events == (TopUpRefused(again.result, IHD, "*" * 16 + "7890"),)
    unknown = acct.top_up(b"11111111111111111111", IHD, NOW)
    assert unknown.result == TopUpResult.Rejected_Invalid_Top_Up
    assert acct.top_up(b"", IHD, NOW).result == TopUpResult.Rejected_Invalid_Top_Up
    too_large = acct.top_up(b"99999999999999999999", IHD, NOW)
    assert too_large.result == TopUpResult.Rejected_Top_Up_Value_Too_Large
    assert acct.top_up(b"88888888888888888888", IHD, NOW).accepted  # 7000
    acct.registered.register("77777777777777777777", 4000)
    over = acct.top_up(b"77777777777777777777", IHD, NOW)
    assert over.result == TopUpResult.Rejected_Max_Credit_Reached
    assert acct.credit == 7000
    assert acct.total_added == 6000


def test_a_top_up_past_what_credit_remaining_holds_is_refused_and_not_spent() -> None:
    """With no maximum credit limit, a top-up taking credit past Credit Remaining's int32
    (D.7.2.2.1.2) is Rejected - Max Credit Reached, its code not spent; it was accepted and
    the credit read back clamped, less than the account held."""
    acct = account(initial_credit=(1 << 31) - 100)
    acct.registered.register(CODE, 200)
    assert acct.top_up(CODE, IHD, NOW).result == TopUpResult.Rejected_Max_Credit_Reached
    assert acct.credit == (1 << 31) - 100
    acct.consume(pence(150), PRICE, NOW + 60)
    assert acct.top_up(CODE, IHD, NOW + 120).accepted  # not spent: taken once there is room
    assert acct.status().credit_remaining == acct.credit == (1 << 31) - 50


def test_the_application_validator_decides() -> None:
    def validator(code: bytes) -> int | TopUpResult:
        if code.startswith(b"0"):
            raise RuntimeError("the vending system is down")
        if code.startswith(b"5"):
            return TopUpResult.Rejected_Keypad_Lock
        if code.startswith(b"6"):
            return TopUpResult.Accepted  # not a refusal: an error
        return int(code[-4:])

    acct = PrepayAccount(PrepayConfig(), validator=validator)
    assert acct.top_up(b"0000", IHD, NOW).result == TopUpResult.Rejected_Error
    assert acct.top_up(b"5000", IHD, NOW).result == TopUpResult.Rejected_Keypad_Lock
    assert acct.top_up(b"6000", IHD, NOW).result == TopUpResult.Rejected_Error
    assert acct.top_up(b"10001234", IHD, NOW).value == 1234
    assert acct.top_up(b"10001234", IHD, NOW).result == TopUpResult.Rejected_Duplicate_Top_Up
    assert acct.top_up(b"10000000", IHD, NOW).result == TopUpResult.Rejected_Error  # 0


def test_the_same_code_typed_with_spaces_dashes_or_leading_zeros_applies_once() -> None:
    """A display may send a UTRN as printed ("1234 5678 ...", "1234-5678-...") or without its
    leading zeros; a vending system's validator reads the digits. Each is the same code: the
    account applies it once."""

    def utrn(code: bytes) -> int | TopUpResult:  # the digits, as a vending system reads them
        digits = bytes(c for c in code if chr(c).isdigit())
        return 1500 if int(digits) == 12345678901234567890 else TopUpResult.Rejected_Invalid_Top_Up

    acct = PrepayAccount(PrepayConfig(), validator=utrn)
    assert acct.top_up(b"1234 5678 9012 3456 7890", IHD, NOW).accepted
    for again in (CODE, b"1234-5678-9012-3456-7890", b"12345678 90123456\t7890"):
        outcome = acct.top_up(again, IHD, NOW + 1)
        assert outcome.result == TopUpResult.Rejected_Duplicate_Top_Up, again
    assert acct.credit == 1500

    def number(code: bytes) -> int | TopUpResult:
        return 700 if int(code) == 42424242 else TopUpResult.Rejected_Invalid_Top_Up

    acct = PrepayAccount(PrepayConfig(), validator=number)
    assert acct.top_up(b"0042424242", IHD, NOW).accepted
    assert acct.top_up(b"42424242", IHD, NOW).result == TopUpResult.Rejected_Duplicate_Top_Up
    assert acct.top_up(b"00042424242", IHD, NOW).result == TopUpResult.Rejected_Duplicate_Top_Up
    assert acct.credit == 700
    # a registered code is the same code however it is typed, and is spent once
    acct = account()
    acct.registered.register("1234-5678-9012-3456-7890", 2000)
    assert acct.top_up(CODE, IHD, NOW).accepted
    spaced = acct.top_up(b"1234 5678 9012 3456 7890", IHD, NOW)
    assert spaced.result == TopUpResult.Rejected_Duplicate_Top_Up
    assert acct.top_up(b"- -", IHD, NOW).result == TopUpResult.Rejected_Invalid_Top_Up
    assert acct.credit == 3000


def test_the_top_up_log_is_bounded_newest_first() -> None:
    acct = PrepayAccount(PrepayConfig(), validator=lambda code: 10)
    for i in range(MAX_TOP_UP_LOG + 5):
        assert acct.top_up(f"{i:020d}".encode(), IHD, NOW + i).accepted
    assert len(acct.top_ups) == MAX_TOP_UP_LOG == 30  # docs/conformance.md says 30
    assert acct.top_ups[0].time == NOW + MAX_TOP_UP_LOG + 4
    assert [u.time for u in acct.top_up_log(NOW + 10, 3)] == [NOW + 10, NOW + 9, NOW + 8]
    assert f"{7:020d}" not in repr(acct.top_ups)


def test_debt_recovered_by_time_and_by_percentage_within_the_cap() -> None:
    acct = account(initial_credit=5000, overall_debt_cap=3000)
    daily = Debt(amount=250, method=DebtRecoveryMethod.Time_Based, frequency=1,
                 recovery_amount=100)  # fmt: skip
    acct.change_debt(0, daily, incremental=False, now=NOW)
    events = acct.tick(NOW + 2 * 86400)  # due at NOW, +1 day, +2 days: 100, 100, 50
    assert [e for e in events if isinstance(e, DebtCollected)] == [
        DebtCollected(NOW, 100, 0, 150),
        DebtCollected(NOW + 86400, 100, 0, 50),
        DebtCollected(NOW + 2 * 86400, 50, 0, 0),
    ]
    assert acct.credit == 4750
    assert acct.accumulated_debt == 0
    share = Debt(amount=1000, method=DebtRecoveryMethod.Percentage_Based, percentage=25)
    acct.change_debt(1, share, incremental=False, now=NOW)
    acct.registered.register(CODE, 2000)
    assert acct.top_up(CODE, IHD, NOW + 3 * 86400).credit_remaining == 4750 + 1500
    assert acct.debts[1].amount == 500
    with pytest.raises(PrepayError):  # 500 + 2600 > 3000
        acct.change_debt(2, Debt(amount=2600), incremental=False, now=NOW)
    with pytest.raises(PrepayError):
        acct.change_debt(2, Debt(amount=1, method=DebtRecoveryMethod.Catch_Up_Based),
                         incremental=False, now=NOW)  # fmt: skip
    assert [c.debt_type for c in acct.debt_repayments(NOW + 10**6, 0, 0xFF)] == [1, 0, 0, 0]
    assert len(acct.debt_repayments(NOW + 10**6, 2, 0)) == 2


@pytest.mark.parametrize(
    ("frequency", "days"), [(0, 1 / 24), (1, 1), (2, 7), (3, 30), (4, 91)],
    ids=["hour", "day", "week", "month", "quarter"],
)  # fmt: skip
def test_each_recovery_frequency_collects_once_a_period(frequency: int, days: float) -> None:
    """Table D-136: per hour, day, week, month (30 days) and quarter (91 days, zse's
    reading): a collection at the start, then one each period, none a second early."""
    acct = account(initial_credit=5000, overall_debt_cap=3000)
    debt = Debt(amount=1000, method=DebtRecoveryMethod.Time_Based, frequency=frequency,
                recovery_amount=10)  # fmt: skip
    acct.change_debt(0, debt, incremental=False, now=NOW)
    period = round(days * 86400)
    collected = [e for e in acct.tick(NOW + 2 * period - 1) if isinstance(e, DebtCollected)]
    assert [c.time for c in collected] == [NOW, NOW + period]
    assert [e.time for e in acct.tick(NOW + 2 * period) if isinstance(e, DebtCollected)] == [
        NOW + 2 * period
    ]
    assert acct.debts[0].amount == 1000 - 30


def test_the_debt_log_keeps_the_30_newest_collections() -> None:
    """Get Debt Repayment Log (D.7.2.3.10): the debt log is bounded, the 30 newest kept."""
    acct = account(initial_credit=5000, overall_debt_cap=3000)
    hourly = Debt(amount=1000, method=DebtRecoveryMethod.Time_Based, frequency=0,
                  recovery_amount=1)  # fmt: skip
    acct.change_debt(0, hourly, incremental=False, now=NOW)
    acct.tick(NOW + 34 * 3600)  # 35 collections
    assert [c.time for c in acct.debt_repayments(NOW + 99 * 3600, 0, 0xFF)] == [
        NOW + hour * 3600 for hour in range(34, 4, -1)
    ]


def test_snapshots_are_taken_at_top_ups_and_found_by_time_and_cause() -> None:
    acct = PrepayAccount(PrepayConfig(), validator=lambda code: 100)
    acct.top_up(b"1", IHD, NOW)
    acct.adjust_credit(-30, absolute=False, now=NOW + 10)
    found = acct.find_snapshots(0, NOW + 100, 0xFFFFFFFF)
    assert [s.status.credit_remaining for s in found] == [70, 100]
    assert [s.snapshot_id for s in acct.find_snapshots(0, NOW + 5, 0xFFFFFFFF)] == [1]
    assert acct.find_snapshots(NOW + 11, NOW + 100, 0xFFFFFFFF) == []


def test_a_stored_account_comes_back_whole_through_json() -> None:
    acct = account()
    acct.registered.register(CODE, 2000)
    acct.registered.register("55555555555555555555", 700)
    acct.consume(Fraction(1234, 1000), PRICE, NOW)
    acct.top_up(CODE, IHD, NOW + 5)
    acct.change_debt(0, Debt(amount=90, frequency=0, recovery_amount=40), incremental=False,
                     now=NOW)  # fmt: skip
    acct.tick(NOW + 3600)
    stored = json.loads(json.dumps(acct.snapshot()))
    used, registered = acct.used_digests(), acct.registered.digests()
    text = json.dumps([stored, sorted(used), registered])
    assert "55555555555555555555" not in text  # codes registered: digests only
    assert CODE.decode() not in text  # the top-up log holds the spent code hex-coded
    again = account()
    again.restore(stored)
    for digest in used:
        again.mark_used(digest)
    again.registered.restore(registered)
    assert again.snapshot() == acct.snapshot()
    assert again.top_up(CODE, IHD, NOW + 9).result == TopUpResult.Rejected_Duplicate_Top_Up
    assert again.top_up(b"55555555555555555555", IHD, NOW + 9).value == 700
    with pytest.raises(Mismatch):
        again.mark_used("not a digest")
    with pytest.raises(Mismatch):
        again.registered.restore({"00" * 32: -5})


JSON = st.recursive(
    st.none() | st.integers() | st.text(max_size=5) | st.booleans(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(JSON)
def test_garbage_stored_accounts_are_mismatches_and_change_nothing(record: object) -> None:
    acct = account()
    before = acct.snapshot()
    try:
        acct.restore(record)
    except Mismatch:
        assert acct.snapshot() == before


def test_settings_out_of_range_are_refused() -> None:
    with pytest.raises(PrepayError):
        PrepayConfig(emergency_credit_limit=-1)
    with pytest.raises(PrepayError):
        PrepayConfig(initial_credit=1 << 31)
    with pytest.raises(PrepayError) as caught:
        account().registered.register(CODE, 0)
    assert CODE.decode() not in str(caught.value)
