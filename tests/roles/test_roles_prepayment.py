"""A prepay meter and its display on the simulator (SE 1.2 D.7): the ESI hosts the meter and a
Prepayment server; the meter's readings, priced by the Price cluster in force, run the credit
down; the display (joined, CBKE) is told of low credit and exhaustion, selects emergency
credit and tops up: accepted, then the same code is a duplicate, after the ESI restarts too.
Real components, virtual time."""

from __future__ import annotations

import asyncio

import pytest

from tests.roles.han_builder import EUIS, START, build, close, restarted
from tests.roles.test_roles_esi_registry import price
from zse.calendar.core import (
    CalendarCancellation,
    CalendarSchedule,
    CalendarType,
    DayProfile,
    TimeReference,
    WeekProfile,
    ZclDate,
)
from zse.metering.core import Readings
from zse.metering.protocol import SUMMATION, MeterReading
from zse.prepayment.core import (
    CreditExhausted,
    EmergencyCreditSelected,
    FriendlyCreditEnded,
    FriendlyCreditStarted,
    LowCredit,
    PrepayConfig,
    SupplyInterrupted,
    TopUpAccepted,
    TopUpRefused,
)
from zse.prepayment.service import PrepayStatus
from zse.prepayment.wire import CreditStatus, TopUpResult
from zse.roles.esi import EnergyServiceInterface
from zse.roles.han import PREPAY_READ_SECONDS
from zse.se.ids import PREPAYMENT, MeteringAttribute

CODE = "12345678901234567890"
PREPAY = {
    "config": {"initial_credit": 1000, "low_credit_warning_level": 300,
               "emergency_credit_limit": 500, "emergency_credit_threshold": 100},
    "codes": {CODE: 2000},
}  # fmt: skip
METER = {"formatting": {MeteringAttribute.DIVISOR: 1000}}  # raw Wh


def esi_options() -> dict:
    return {
        "meter": METER,
        "prepayment": {**PREPAY, "config": PrepayConfig(**PREPAY["config"])},
    }


async def test_a_prepay_display_follows_the_credit_and_tops_up_once(tmp_path) -> None:
    han = await build(tmp_path, **esi_options())
    esi = han.esi
    assert PREPAYMENT in EnergyServiceInterface.descriptor(prepayment=True).input_clusters
    assert PREPAYMENT not in EnergyServiceInterface.descriptor().input_clusters
    await esi.provision(EUIS["ihd"])
    ihd = han.add("ihd", prepayment=True)
    await ihd.start()
    await asyncio.sleep(30)
    await esi.settle()
    seen = han.device_events["ihd"]
    assert (await ihd.read_prepay_status()).credit_remaining == 1000
    # 0.250 a kWh (250, 3 trailing digits) is 25 pence a kWh
    await esi.publish_price(price(1), device=EUIS["ihd"])
    assert esi.meter is not None
    await esi.meter.feed(Readings(summation_delivered=0))  # where the charge counts from
    await esi.meter.feed(Readings(summation_delivered=28_000))  # 28 kWh: 700 p, 300 left
    await esi.meter.feed(Readings(summation_delivered=36_000))  # 8 kWh more: 100 left
    status = await ihd.read_prepay_status()
    assert status.credit_remaining == 100
    assert status.credit_status & CreditStatus.Emergency_Credit_Available
    assert any(isinstance(e, LowCredit) for e in seen)
    await esi.meter.feed(Readings(summation_delivered=40_000))  # 4 kWh more: gone
    assert any(isinstance(e, SupplyInterrupted) for e in han.events)
    await ihd.read_prepay_status()
    assert any(isinstance(e, CreditExhausted) for e in seen)
    assert await ihd.select_emergency_credit()
    assert any(isinstance(e, EmergencyCreditSelected) for e in seen)
    await esi.meter.feed(Readings(summation_delivered=44_000))  # 100 p of emergency credit
    assert (await ihd.read_prepay_status()).emergency_credit_remaining == 400
    answer = await ihd.top_up(CODE)
    assert answer.result == TopUpResult.Accepted
    assert answer.credit_remaining == 2000 - 100  # the emergency credit used is paid back
    assert any(isinstance(e, TopUpAccepted) for e in seen)
    assert (await ihd.top_up(CODE)).result == TopUpResult.Rejected_Duplicate_Top_Up
    assert any(isinstance(e, TopUpRefused) for e in seen)
    assert any(isinstance(e, TopUpAccepted) for e in han.events)  # the ESI's application
    # the ESI restarts on the same store: the code is still spent, the credit still there
    again = await restarted(han, **esi_options())
    assert again.prepayment is not None
    assert again.prepayment.account.credit == 1900
    assert (await ihd.top_up(CODE)).result == TopUpResult.Rejected_Duplicate_Top_Up
    assert (await ihd.read_prepay_status()).credit_remaining == 1900
    await close(han)


async def test_a_prepay_display_following_the_meter_reads_the_credit_at_most_every_minute(
    tmp_path,
) -> None:
    han = await build(tmp_path, **esi_options())
    esi = han.esi
    await esi.provision(EUIS["ihd"])
    ihd = han.add("ihd", prepayment=True, metering=True)
    await ihd.start()
    await asyncio.sleep(30)
    await esi.settle()
    await esi.publish_price(price(1), device=EUIS["ihd"])
    assert esi.meter is not None
    seen = han.device_events["ihd"]
    statuses = [e for e in seen if isinstance(e, PrepayStatus)]
    assert [s.credit_remaining for s in statuses] == [1000]  # read at the resync
    start = len(seen)
    for step in range(1, 31):  # 10 s apart: each reading uses 0.4 kWh, 10 p
        await esi.meter.feed(Readings(summation_delivered=step * 400))
        await asyncio.sleep(10)
    after = seen[start:]
    readings = [e for e in after if isinstance(e, MeterReading) and e.attribute == SUMMATION]
    credits = [e.credit_remaining for e in after if isinstance(e, PrepayStatus)]
    assert len(readings) >= 20  # the display follows the meter
    # the credit falls without the application reading it, at most one read a minute
    assert 3 <= len(credits) <= 300 // PREPAY_READ_SECONDS + 1, credits
    assert credits == sorted(credits, reverse=True)
    assert credits[-1] < 1000
    await close(han)


async def test_a_prepay_displays_credit_reads_go_on_after_its_clock_jumps_back(tmp_path) -> None:
    """The display's clock is set back an hour after a credit read (a time correction): it
    still reads the credit with the readings, at most once a minute (it stopped reading for
    the hour: the last read seemed to be in the future)."""
    han = await build(tmp_path, **esi_options())
    esi = han.esi
    shift = [0]
    loop = asyncio.get_running_loop()
    han.clock = lambda: START + int(loop.time()) + shift[0]  # type: ignore[method-assign]
    await esi.provision(EUIS["ihd"])
    ihd = han.add("ihd", prepayment=True, metering=True)
    await ihd.start()
    await asyncio.sleep(30)
    await esi.settle()
    await esi.publish_price(price(1), device=EUIS["ihd"])
    assert esi.meter is not None
    seen = han.device_events["ihd"]
    assert [e.credit_remaining for e in seen if isinstance(e, PrepayStatus)] == [1000]
    shift[0] = -3600  # the display's clock goes back an hour
    start = len(seen)
    for step in range(1, 31):  # 10 s apart, 10 p each
        await esi.meter.feed(Readings(summation_delivered=step * 400))
        await asyncio.sleep(10)
    credits = [e.credit_remaining for e in seen[start:] if isinstance(e, PrepayStatus)]
    assert 3 <= len(credits) <= 300 // PREPAY_READ_SECONDS + 1, credits
    await close(han)


@pytest.mark.parametrize(
    ("reference", "zone", "end_utc"),
    [(TimeReference.UTC, None, 14), (TimeReference.LOCAL, "Europe/London", 13)],
    ids=["utc", "local-bst"],
)
async def test_the_esis_friendly_credit_calendar_keeps_the_supply_on_until_it_ends(
    tmp_path, reference, zone, end_utc
) -> None:
    """The ESI's Calendar store holds a Friendly Credit calendar (on 06:00-14:00, UTC or
    local time: London in May is UTC+1): credit runs out at 06:13 UTC in it, the supply stays
    on, and at the end (14:00 or 13:00 UTC) it is interrupted (the ESI's events tell both)."""
    config = PrepayConfig(initial_credit=100, friendly_credit=True)
    han = await build(tmp_path, meter=METER, prepayment={"config": config}, time_zone=zone)
    esi = han.esi
    days = CalendarSchedule(
        provider_id=1, issuer_event_id=10, issuer_calendar_id=77,
        calendar_type=CalendarType.FRIENDLY_CREDIT, calendar_time_reference=reference,
        days=(DayProfile(1, ((0, 0), (6 * 60, 1), (14 * 60, 0))),),
        weeks=(WeekProfile(1, (1,) * 7),), seasons=((ZclDate(month=1, day=1), 1),),
    )  # fmt: skip
    await esi.calendar.publish(days)  # recorded in the Calendar store, sent to no one
    await esi.publish_price(price(1), broadcast=True)  # 25 p a kWh
    assert esi.meter is not None
    assert esi.prepayment is not None
    await esi.meter.feed(Readings(summation_delivered=0))
    await esi.meter.feed(Readings(summation_delivered=8_000))  # 200 p: 100 p below zero
    started = [e for e in han.events if isinstance(e, FriendlyCreditStarted)]
    end = START - START % 86400 + end_utc * 3600
    assert [e.until for e in started] == [end]
    assert not esi.prepayment.account.interrupted
    await asyncio.sleep(end - esi.clock() - 60)
    assert not any(isinstance(e, SupplyInterrupted) for e in han.events)
    await asyncio.sleep(120)
    assert any(isinstance(e, FriendlyCreditEnded) for e in han.events)
    assert any(isinstance(e, SupplyInterrupted) for e in han.events)
    await close(han)


async def test_a_friendly_period_that_ended_while_the_esi_was_down_interrupts_at_start(
    tmp_path,
) -> None:
    """Credit runs out in the friendly period (06:00-14:00 UTC); the ESI stops and comes
    back at 15:00 on the same store: the supply is interrupted at start, and told."""
    config = PrepayConfig(initial_credit=100, friendly_credit=True)
    options = {"meter": METER, "prepayment": {"config": config}}
    han = await build(tmp_path, **options)
    esi = han.esi
    days = CalendarSchedule(
        provider_id=1, issuer_event_id=10, issuer_calendar_id=77,
        calendar_type=CalendarType.FRIENDLY_CREDIT, calendar_time_reference=TimeReference.UTC,
        days=(DayProfile(1, ((0, 0), (6 * 60, 1), (14 * 60, 0))),),
        weeks=(WeekProfile(1, (1,) * 7),), seasons=((ZclDate(month=1, day=1), 1),),
    )  # fmt: skip
    await esi.calendar.publish(days)  # stored with the ESI's calendars
    await esi.publish_price(price(1), broadcast=True)
    assert esi.meter is not None
    await esi.meter.feed(Readings(summation_delivered=0))
    await esi.meter.feed(Readings(summation_delivered=8_000))
    assert any(isinstance(e, FriendlyCreditStarted) for e in han.events)
    three_pm = START - START % 86400 + 15 * 3600
    told: list[object] = []
    again = await restarted(han, down_until=three_pm, listener=told.append, **options)
    await again.settle()  # the events stored at the start are told by a task, journalled
    assert again.prepayment is not None
    assert again.prepayment.account.interrupted
    assert [type(e) for e in told if isinstance(e, FriendlyCreditEnded | SupplyInterrupted)] == [
        FriendlyCreditEnded,
        SupplyInterrupted,
    ]
    await close(han)


def friendly(calendar_id: int, event_id: int, until_hour: int) -> CalendarSchedule:
    """A Friendly Credit calendar (UTC): on from 06:00 to ``until_hour``:00 every day (never
    on for an hour up to 6)."""
    periods = ((0, 0), (6 * 60, 1), (until_hour * 60, 0)) if until_hour > 6 else ((0, 0),)
    return CalendarSchedule(
        provider_id=1, issuer_event_id=event_id, issuer_calendar_id=calendar_id,
        calendar_type=CalendarType.FRIENDLY_CREDIT, calendar_time_reference=TimeReference.UTC,
        days=(DayProfile(1, periods),),
        weeks=(WeekProfile(1, (1,) * 7),), seasons=((ZclDate(month=1, day=1), 1),),
    )  # fmt: skip


async def in_a_friendly_period(tmp_path):
    """Credit runs out at 06:13 UTC in the ESI's friendly period (06:00-14:00): supply on."""
    config = PrepayConfig(initial_credit=100, friendly_credit=True)
    han = await build(tmp_path, meter=METER, prepayment={"config": config})
    esi = han.esi
    await esi.calendar.publish(friendly(77, 10, 14))
    await esi.publish_price(price(1), broadcast=True)  # 25 p a kWh
    assert esi.meter is not None
    await esi.meter.feed(Readings(summation_delivered=0))
    await esi.meter.feed(Readings(summation_delivered=8_000))  # 200 p: 100 p below zero
    await esi.settle()
    assert [type(e) for e in han.events if isinstance(e, FriendlyCreditStarted)] == [
        FriendlyCreditStarted
    ]
    assert esi.prepayment is not None
    assert not esi.prepayment.account.interrupted
    return han


async def test_a_friendly_calendar_cancelled_mid_period_interrupts_at_once(tmp_path) -> None:
    """The utility cancels the Friendly Credit calendar at 06:13: credit is still gone, so
    the supply is interrupted then, not at the next reading nor at 14:00."""
    han = await in_a_friendly_period(tmp_path)
    esi = han.esi
    await esi.calendar.cancel(
        CalendarCancellation(
            provider_id=1, issuer_calendar_id=77, calendar_type=CalendarType.FRIENDLY_CREDIT
        )
    )
    assert esi.prepayment is not None
    assert esi.prepayment.account.interrupted
    await esi.settle()
    ended = [e for e in han.events if isinstance(e, FriendlyCreditEnded | SupplyInterrupted)]
    assert [type(e) for e in ended] == [FriendlyCreditEnded, SupplyInterrupted]
    assert ended[1].time == esi.clock()
    await close(han)


async def test_a_friendly_period_shortened_ends_at_the_new_end(tmp_path) -> None:
    """A new Friendly Credit calendar (06:00-07:00) replaces the one in force at 06:13: the
    supply is interrupted at 07:00, not at the old end (14:00); one that leaves no friendly
    period now (06:00-06:00) interrupts at once."""
    han = await in_a_friendly_period(tmp_path)
    esi = han.esi
    assert esi.prepayment is not None
    await esi.calendar.publish(friendly(78, 11, 7))
    seven = START - START % 86400 + 7 * 3600
    assert esi.prepayment.account.friendly_until == seven
    await asyncio.sleep(seven - esi.clock() - 60)
    assert not esi.prepayment.account.interrupted
    await asyncio.sleep(120)
    assert esi.prepayment.account.interrupted
    await esi.settle()
    interrupted = [e for e in han.events if isinstance(e, SupplyInterrupted)]
    assert [e.time for e in interrupted] == [seven]
    await close(han)


async def test_a_friendly_calendar_that_ends_the_period_now_interrupts_at_once(tmp_path) -> None:
    han = await in_a_friendly_period(tmp_path)
    esi = han.esi
    assert esi.prepayment is not None
    await esi.calendar.publish(friendly(78, 11, 6))  # friendly credit off all day
    assert esi.prepayment.account.interrupted
    await close(han)
