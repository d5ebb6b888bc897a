"""The prepay account's timed behaviour (SE 1.2 D.7), sans-IO, fed ``now`` only: the
utility's commands wait for their Implementation Date/Time or Start Time (bounded, kept in the
stored account, applied once), and friendly credit keeps the supply on through the Friendly
Credit calendar's periods."""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction

import pytest

from zse.calendar.core import (
    Calendars,
    CalendarSchedule,
    CalendarType,
    DayProfile,
    TimeReference,
    WeekProfile,
    ZclDate,
)
from zse.prepayment.core import (
    CANCEL,
    MAX_PENDING,
    CreditExhausted,
    FriendlyCreditEnded,
    FriendlyCreditStarted,
    PendingFull,
    PrepayAccount,
    PrepayConfig,
    PrepayError,
    Scheduled,
    SupplyInterrupted,
    SupplyRestored,
)
from zse.prepayment.service import friendly_credit_calendar
from zse.records import Mismatch
from zse.time.core import to_zigbee

#: Wednesday 14 January 2026, 20:00 UTC.
EVENING = to_zigbee(dt.datetime(2026, 1, 14, 20, tzinfo=dt.UTC))
HOUR = 3600
PRICE = Fraction(20)  # 20 p per kWh
#: Friendly credit 22:00-07:00 every day (UTC).
NIGHTS = CalendarSchedule(
    provider_id=1,
    issuer_event_id=10,
    issuer_calendar_id=77,
    calendar_type=CalendarType.FRIENDLY_CREDIT,
    calendar_time_reference=TimeReference.UTC,
    days=(DayProfile(1, ((0, 1), (7 * 60, 0), (22 * 60, 1))),),
    weeks=(WeekProfile(1, (1,) * 7),),
    seasons=((ZclDate(month=1, day=1), 1),),
)


def account(*, friendly: bool = False, credit: int = 1000) -> PrepayAccount:
    calendars = Calendars()
    calendars.put(NIGHTS, EVENING - 86400)
    return PrepayAccount(
        PrepayConfig(initial_credit=credit, friendly_credit=friendly),
        friendly_calendar=friendly_credit_calendar(calendars),
    )


def payment_mode(issuer: int, when: int, control: int = 0x0003) -> Scheduled:
    return Scheduled("payment_mode", (control, -100), when, issuer, provider_id=1)


def test_a_utility_command_waits_for_its_time_and_applies_once() -> None:
    acct = account()
    midnight = EVENING + 4 * HOUR
    assert acct.schedule(payment_mode(5, midnight), EVENING) == []
    acct.schedule(Scheduled("max_credit", (5000, 2000), midnight, 6, 1), EVENING)
    acct.schedule(Scheduled("credit_adjustment", (0, 250), midnight + HOUR, 7), EVENING)
    assert (acct.config.payment_control, acct.config.max_credit_limit, acct.credit) == (
        0x0012, 0, 1000)  # fmt: skip
    assert acct.next_deadline() == midnight
    acct.tick(midnight - 1)
    assert acct.config.payment_control == 0x0012  # not early
    acct.consume(Fraction(1, 10), PRICE, midnight)  # a reading at the time applies it
    assert (acct.config.payment_control, acct.config.cut_off_value) == (0x0003, -100)
    assert (acct.config.max_credit_limit, acct.config.max_credit_per_top_up) == (5000, 2000)
    assert acct.credit == 998
    assert acct.next_deadline() == midnight + HOUR
    acct.tick(midnight + 2 * HOUR)
    assert acct.credit == 998 + 250
    acct.tick(midnight + 3 * HOUR)  # applied once
    assert acct.credit == 1248
    assert acct.next_deadline() is None
    # 0 and a time already passed: at once; CANCEL: the pending one of that issue is dropped
    acct.schedule(Scheduled("debt_cap", (300,), 0, 8, 1), midnight + 3 * HOUR)
    assert acct.config.overall_debt_cap == 300
    acct.schedule(Scheduled("debt_cap", (400,), midnight, 9, 1), midnight + 3 * HOUR)
    assert acct.config.overall_debt_cap == 400
    acct.schedule(Scheduled("debt_cap", (500,), midnight + 9 * HOUR, 10, 1), midnight)
    acct.schedule(Scheduled("debt_cap", (0,), CANCEL, 10, 1), midnight)
    assert acct.pending == []
    with pytest.raises(PrepayError):  # checked when received, nothing kept
        acct.schedule(Scheduled("debt_cap", (-1,), midnight + HOUR, 11, 1), midnight)
    assert acct.pending == []


def test_pending_commands_are_bounded_and_the_newest_issue_wins() -> None:
    acct = account()
    later = EVENING + HOUR
    for issuer in range(1, MAX_PENDING + 1):  # one a minute
        acct.schedule(payment_mode(issuer, later + 60 * issuer), EVENING)
    for issuer in range(MAX_PENDING + 1, MAX_PENDING + 4):  # full: refused, none dropped
        with pytest.raises(PendingFull):
            acct.schedule(payment_mode(issuer, later + 60 * issuer), EVENING)
    assert len(acct.pending) == MAX_PENDING == 8  # 8 per kind (docs/prepayment.md)
    assert [p.issuer_event_id for p in acct.pending] == list(range(1, MAX_PENDING + 1))
    # the same issue again replaces it (a correction), nothing is added
    acct.schedule(payment_mode(6, later + 60 * 6, control=0x0007), EVENING)
    assert len(acct.pending) == MAX_PENDING
    assert [p.values[0] for p in acct.pending if p.issuer_event_id == 6] == [0x0007]
    # a newer issue at once drops the older ones due after it: they would undo it
    acct.schedule(payment_mode(50, 0, control=0x0001), EVENING)
    assert acct.pending == []
    assert acct.config.payment_control == 0x0001
    # credit adjustments add up: a newer one does not drop an older one
    acct.schedule(Scheduled("credit_adjustment", (0, 10), later, 1), EVENING)
    acct.schedule(Scheduled("credit_adjustment", (0, 20), EVENING - 5, 2), EVENING)
    assert len(acct.pending) == 1
    acct.tick(later)
    assert acct.credit == 1000 + 20 + 10


def test_pending_commands_are_stored_with_the_account() -> None:
    acct = account()
    acct.schedule(payment_mode(5, EVENING + HOUR), EVENING)
    stored = json.loads(json.dumps(acct.snapshot()))
    again = account()
    again.restore(stored)
    assert again.pending == acct.pending
    assert again.next_deadline() == EVENING + HOUR
    again.tick(EVENING + HOUR)
    assert again.config.payment_control == 0x0003
    for bad in (["payment_mode", 1, 5, EVENING, [1]], ["nothing", 1, 5, EVENING, [1, 2]],
                ["payment_mode", 1, 5, 0, [3, 0]], ["debt_cap", 1, 5, EVENING, [-7]]):  # fmt: skip
        record = dict(stored, pending=[bad])
        fresh = account()
        before = fresh.snapshot()
        with pytest.raises(Mismatch):
            fresh.restore(record)
        assert fresh.snapshot() == before


def test_friendly_credit_keeps_the_supply_on_through_the_night() -> None:
    """Credit runs out at 23:00 in the friendly night (22:00-07:00): no interruption until
    07:00; then the supply is interrupted, credit still gone."""
    acct = account(friendly=True, credit=100)
    eleven = EVENING + 3 * HOUR
    events = acct.consume(Fraction(6), PRICE, eleven)  # 120 p: 20 p below zero
    assert [type(e) for e in events][-2:] == [CreditExhausted, FriendlyCreditStarted]
    seven = EVENING + 11 * HOUR
    assert events[-1] == FriendlyCreditStarted(eleven, seven)
    assert not acct.interrupted
    assert acct.friendly_in_use
    assert acct.next_deadline() == seven
    acct.consume(Fraction(5), PRICE, seven - HOUR)  # the debt accrues
    assert (acct.credit, acct.interrupted) == (-120, False)
    stored = json.loads(json.dumps(acct.snapshot()))
    events = acct.tick(seven)
    assert events == [FriendlyCreditEnded(seven), SupplyInterrupted(seven)]
    assert acct.interrupted
    assert acct.next_deadline() is None
    again = account(friendly=True)  # a restart in the night: the period's end is kept
    again.restore(stored)
    assert (again.friendly_in_use, again.next_deadline()) == (True, seven)
    # without friendly credit the same night interrupts at once
    plain = account(credit=100)
    events = plain.consume(Fraction(6), PRICE, eleven)
    assert [type(e) for e in events][-2:] == [CreditExhausted, SupplyInterrupted]


def test_topped_up_in_the_friendly_night_the_supply_is_never_interrupted() -> None:
    acct = account(friendly=True, credit=100)
    eleven = EVENING + 3 * HOUR
    acct.consume(Fraction(6), PRICE, eleven)
    acct.registered.register("12345678901234567890", 2000)
    outcome = acct.top_up(b"12345678901234567890", 2, eleven + 2 * HOUR)
    assert FriendlyCreditEnded(eleven + 2 * HOUR) in outcome.events
    assert not any(isinstance(e, SupplyRestored) for e in outcome.events)
    assert acct.credit == 2000 - 20
    assert acct.next_deadline() is None
    assert acct.tick(EVENING + 11 * HOUR) == []
    assert not acct.interrupted


def test_a_credit_adjustment_repeated_after_it_applied_is_not_applied_again() -> None:
    """The utility sends a Credit Adjustment again (it missed the answer): once its Start Time
    passed, or for now, the repeat (same provider and issuer event id) adds nothing, across
    a restart too."""
    acct = account()
    midnight = EVENING + 4 * HOUR
    adjustment = Scheduled("credit_adjustment", (0, 250), midnight, 7, 1)
    acct.schedule(adjustment, EVENING)
    acct.tick(midnight)
    assert acct.credit == 1250
    assert acct.schedule(adjustment, midnight + 60) == []
    assert acct.credit == 1250
    at_once = Scheduled("credit_adjustment", (0, 100), 0, 8, 1)
    acct.schedule(at_once, midnight)
    acct.schedule(at_once, midnight + 5)
    assert acct.credit == 1350
    again = account()
    again.restore(json.loads(json.dumps(acct.snapshot())))
    again.schedule(adjustment, midnight + HOUR)
    again.schedule(at_once, midnight + HOUR)
    assert again.credit == 1350
    # another issue of the same value is another adjustment
    again.schedule(Scheduled("credit_adjustment", (0, 100), 0, 9, 1), midnight + HOUR)
    assert again.credit == 1450


def test_the_32_newest_credit_adjustments_applied_are_remembered() -> None:
    """The issues of the credit adjustments applied are kept, the 32 newest (zse's bound): a
    repeat of the 32nd newest adds nothing; one of the 33rd (forgotten), or of any issuer
    event id at or below it, cannot be told from a replay: refused, across a restart too
    (it was applied again: a replayed frame made money). A newer issue applies."""
    acct = account()

    def adjust(issuer: int, provider: int = 1) -> None:
        acct.schedule(Scheduled("credit_adjustment", (0, 1), 0, issuer, provider), EVENING)

    for issuer in range(100, 133):  # 33 applied, at once
        adjust(issuer)
    assert acct.credit == 1000 + 33
    adjust(101)  # the oldest of the 32 kept: a repeat
    assert acct.credit == 1033
    with pytest.raises(PrepayError):
        adjust(100)  # forgotten: a replay, maybe
    assert acct.credit == 1033
    stored = json.loads(json.dumps(acct.snapshot()))
    acct = account()
    acct.restore(stored)
    with pytest.raises(PrepayError):
        adjust(99)
    adjust(7, provider=2)  # another provider's issues are its own
    adjust(133)
    assert acct.credit == 1035


def test_an_older_setting_arriving_late_does_not_undo_a_newer_one_waiting() -> None:
    """Issue 7 (for 21:00) waits; a late copy of issue 5 (for 22:00) arrives: applied at
    22:00 it would undo issue 7, so it is not kept (the newest issue wins, as when issue 7
    arrives after issue 5)."""
    acct = account()
    acct.schedule(payment_mode(7, EVENING + HOUR, control=0x0001), EVENING)
    assert acct.schedule(payment_mode(5, EVENING + 2 * HOUR, control=0x0003), EVENING) == []
    assert [p.issuer_event_id for p in acct.pending] == [7]
    acct.tick(EVENING + 2 * HOUR)
    assert acct.config.payment_control == 0x0001
    # an older issue due before the newer one still applies first, then the newer one
    acct.schedule(payment_mode(9, EVENING + 4 * HOUR, control=0x0007), EVENING + 2 * HOUR)
    acct.schedule(payment_mode(8, EVENING + 3 * HOUR, control=0x0003), EVENING + 2 * HOUR)
    acct.tick(EVENING + 3 * HOUR)
    assert acct.config.payment_control == 0x0003
    acct.tick(EVENING + 4 * HOUR)
    assert acct.config.payment_control == 0x0007
