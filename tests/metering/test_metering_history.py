"""The meter's Historical Consumption set (SE 1.2 D.3.2.2.5) in the sans-IO core: what the
summation advances by, counted in the meter's local day (from the Historical Freeze Time),
week (from Monday) and month (from the 1st), read as it is at the time of the read, reported
when the day turns, kept with the profile record (an old record without it still loads)."""

from __future__ import annotations

import datetime as dt

import pytest

from zse.metering.core import MeterCore, Readings
from zse.records import Mismatch
from zse.se.ids import MeteringAttribute as A
from zse.se.ids import consumption_attribute
from zse.time.core import ZoneYear, to_zigbee
from zse.zcl.reporting import ReportingConfig

HOUR = 3600
DAY = 24 * HOUR
#: The meter's zone: UTC+10 (AEST), no DST.
AEST = ZoneYear(time_zone=10 * HOUR)
#: 23:30 on Saturday 31 January 2026, AEST (13:30 UTC).
SATURDAY_LATE = to_zigbee(dt.datetime(2026, 1, 31, 13, 30, tzinfo=dt.UTC))
TODAY, YESTERDAY = A.CURRENTDAY_CONSUMPTION_DELIVERED, A.PREVIOUSDAY_CONSUMPTION_DELIVERED
WEEK, MONTH = A.CURRENT_WEEK_CONSUMPTION_DELIVERED, A.CURRENT_MONTH_CONSUMPTION_DELIVERED
DISPLAY = "display"


def meter(now: int = SATURDAY_LATE - HOUR, **options: object) -> MeterCore[str]:
    """A meter in AEST, first read at 1000 an hour before ``SATURDAY_LATE``."""
    core: MeterCore[str] = MeterCore(
        formatting={},
        now=now,
        local=AEST.local_time,
        **options,  # type: ignore[arg-type]
    )
    core.begin(Readings(summation_delivered=1000, instantaneous_demand=0), now)
    return core


def days(core: MeterCore[str], now: int, attribute: int = TODAY) -> list[int | None]:
    """The day attributes (current, previous 1-8) at ``now``."""
    received = attribute == A.CURRENTDAY_CONSUMPTION_RECEIVED
    return [core.read_at(consumption_attribute("day", b, received=received), now) for b in range(9)]


def test_consumption_is_counted_by_the_meters_local_day_week_and_month() -> None:
    """Readings either side of local midnight (one UTC day): two local days, one week
    (Saturday and Sunday), two months; read two days later with no reading, each has moved
    back (the day turned reads as a new day at 0), never stale."""
    core = meter()
    core.update(Readings(summation_delivered=1100), SATURDAY_LATE)  # Saturday 23:30 local
    core.update(Readings(summation_delivered=1140), SATURDAY_LATE + HOUR)  # Sunday 00:30
    now = SATURDAY_LATE + HOUR
    assert days(core, now) == [40, 100] + [0] * 7
    assert core.read_at(WEEK, now) == 140
    assert core.read_at(MONTH, now) == 40
    assert core.read_at(A.PREVIOUS_MONTH_CONSUMPTION_DELIVERED, now) == 100
    tuesday = now + 2 * DAY
    assert days(core, tuesday) == [0, 0, 40, 100] + [0] * 5
    assert core.read_at(WEEK, tuesday) == 0  # Monday began a week
    assert core.read_at(A.PREVIOUS_WEEK_CONSUMPTION_DELIVERED, tuesday) == 140
    assert days(core, now + 8 * DAY) == [0] * 8 + [40]
    assert days(core, now + 9 * DAY) == [0] * 9
    # in UTC the same readings are one day (13:30 and 14:30 on Saturday)
    in_utc: MeterCore[str] = MeterCore(formatting={}, now=SATURDAY_LATE - HOUR)
    in_utc.begin(Readings(summation_delivered=1000), SATURDAY_LATE - HOUR)
    in_utc.update(Readings(summation_delivered=1100), SATURDAY_LATE)
    in_utc.update(Readings(summation_delivered=1140), SATURDAY_LATE + HOUR)
    assert days(in_utc, SATURDAY_LATE + HOUR)[:2] == [140, 0]


def test_the_historical_freeze_time_moves_the_day_s_start() -> None:
    """With HistoricalFreezeTime 06:30 (0x061E), a reading at 00:30 and one at 06:00 local
    count in the day that began at 06:30 the day before; one at 07:00 in a new one."""
    core = meter(freeze_time=0x061E)
    assert core.read_at(A.HISTORICAL_FREEZE_TIME, SATURDAY_LATE) == 0x061E
    core.update(Readings(summation_delivered=1010), SATURDAY_LATE + HOUR)  # 00:30
    core.update(Readings(summation_delivered=1030), SATURDAY_LATE + 6 * HOUR + HOUR // 2)
    assert days(core, SATURDAY_LATE + 7 * HOUR)[:2] == [0, 30]
    core.update(Readings(summation_delivered=1035), SATURDAY_LATE + 7 * HOUR + HOUR // 2)
    assert days(core, SATURDAY_LATE + 8 * HOUR)[:2] == [5, 30]
    with pytest.raises(ValueError, match="HistoricalFreezeTime 0x1800"):
        meter(freeze_time=0x1800)  # 24:00
    with pytest.raises(ValueError, match="HistoricalFreezeTime 0x003C"):
        meter(freeze_time=0x003C)  # 00:60


def test_a_two_way_meter_counts_received_and_a_delivered_only_one_serves_none() -> None:
    two_way = meter(delivered_only=False)
    two_way.update(Readings(summation_delivered=1020, summation_received=7), SATURDAY_LATE)
    assert days(two_way, SATURDAY_LATE, A.CURRENTDAY_CONSUMPTION_RECEIVED)[0] == 7
    assert days(two_way, SATURDAY_LATE)[0] == 20
    one_way = meter()
    assert one_way.read_at(A.CURRENTDAY_CONSUMPTION_RECEIVED, SATURDAY_LATE) is None
    assert not one_way.supports(A.CURRENT_MONTH_CONSUMPTION_RECEIVED)
    assert one_way.supports(A.PREVIOUS_MONTH13_CONSUMPTION_DELIVERED)


def test_the_first_reading_and_a_register_going_back_count_nothing() -> None:
    """Counted from the register when first read; a two-way meter's delivered register going
    back counts nothing (the tiers' rule), nor does a rollover count more than it advanced."""
    core = meter(delivered_only=False)
    assert days(core, SATURDAY_LATE)[0] == 0
    core.update(Readings(summation_delivered=900), SATURDAY_LATE)
    core.update(Readings(summation_delivered=950), SATURDAY_LATE + 60)
    assert days(core, SATURDAY_LATE + 60)[0] == 50
    wrap = meter()
    near_the_top = {str(int(A.CURRENT_SUMM_DELIVERED)): (1 << 48) - 10}
    wrap.restore({**wrap.snapshot(), "values": near_the_top})
    wrap.update(Readings(summation_delivered=5), SATURDAY_LATE)  # rolled over: 15
    assert days(wrap, SATURDAY_LATE)[0] == 15


def test_a_count_stays_below_its_types_non_value() -> None:
    """Days and weeks are uint24, months uint32: a count beyond stays one below all ones."""
    core = meter()
    core.update(Readings(summation_delivered=1000 + (1 << 33)), SATURDAY_LATE)
    assert days(core, SATURDAY_LATE)[0] == 0xFFFFFE
    assert core.read_at(WEEK, SATURDAY_LATE) == 0xFFFFFE
    assert core.read_at(MONTH, SATURDAY_LATE) == 0xFFFFFFFE


def test_the_days_highest_demand_is_the_day_s() -> None:
    core = meter()
    for at, demand in ((0, 1500), (60, 2400), (120, 900)):
        core.update(Readings(instantaneous_demand=demand), SATURDAY_LATE + at)
    assert core.read_at(A.CURRENT_DAY_MAX_DEMAND, SATURDAY_LATE + 120) == 2400
    sunday = SATURDAY_LATE + HOUR
    assert core.read_at(A.CURRENT_DAY_MAX_DEMAND, sunday) == 0  # none fed yet today
    assert core.read_at(A.PREVIOUS_DAY_MAX_DEMAND, sunday) == 2400
    core.update(Readings(instantaneous_demand=300), sunday)
    assert core.read_at(A.CURRENT_DAY_MAX_DEMAND, sunday) == 300
    without: MeterCore[str] = MeterCore(formatting={}, now=sunday, demand=False)
    assert not without.supports(A.CURRENT_DAY_MAX_DEMAND)


def test_a_day_turning_with_no_reading_is_reported_where_reporting_is_configured() -> None:
    """No reporting on the set: no deadline for it. CurrentDayConsumptionDelivered reported
    to a display: at local midnight, with no reading, it is reported at 0."""
    core = meter()
    core.update(Readings(summation_delivered=1100), SATURDAY_LATE)
    assert core.next_deadline() is None
    config = ReportingConfig(attribute=TODAY, min_interval=0, max_interval=0, reportable_change=1)
    assert core.configure_reporting(DISPLAY, config, SATURDAY_LATE) == 0
    assert core.handle_timeout(SATURDAY_LATE) == ()  # 100, as configured: no change yet
    midnight = SATURDAY_LATE + HOUR // 2
    assert core.next_deadline() == midnight
    (turned,) = core.handle_timeout(midnight)
    assert turned.attributes == ((TODAY, 0),)
    assert core.next_deadline() == midnight + DAY
    stop = ReportingConfig(attribute=TODAY, min_interval=0, max_interval=0xFFFF)
    core.configure_reporting(DISPLAY, stop, midnight)
    assert core.next_deadline() is None


def test_the_counts_come_back_with_the_profile_and_an_old_record_loads() -> None:
    core = meter()
    core.update(Readings(summation_delivered=1100, instantaneous_demand=2000), SATURDAY_LATE)
    record = core.snapshot()
    again = meter()
    again.restore(record, SATURDAY_LATE + 60)
    assert days(again, SATURDAY_LATE + 60)[0] == 100
    assert again.read_at(A.CURRENT_DAY_MAX_DEMAND, SATURDAY_LATE + 60) == 2000
    again.update(Readings(summation_delivered=1130), SATURDAY_LATE + 120)
    assert days(again, SATURDAY_LATE + 120)[0] == 130  # counted on from the stored register
    old = {key: value for key, value in record.items() if key != "history"}
    fresh = meter()
    fresh.restore(old)  # a release without the set: counted from here
    fresh.update(Readings(summation_delivered=1150), SATURDAY_LATE + 120)
    assert days(fresh, SATURDAY_LATE + 120)[0] == 50


@pytest.mark.parametrize(
    "history",
    [
        {"delivered": {"day": [], "week": [], "month": []}, "max_demand": [], "received": None},
        {"delivered": {"day": [[1, -5]], "week": [], "month": []}, "max_demand": []},
        {"delivered": {"day": [], "week": []}, "max_demand": []},
        {
            "delivered": {"day": [], "week": [], "month": []},
            "received": {"day": [], "week": [], "month": []},  # not a two-way meter
            "max_demand": [],
        },
        "garbage",
    ],
)
def test_damaged_history_is_refused_and_changes_nothing(history: object) -> None:
    core = meter()
    core.update(Readings(summation_delivered=1100), SATURDAY_LATE)
    record = {**core.snapshot(), "history": history}
    before = core.snapshot()
    with pytest.raises(Mismatch):
        core.restore(record)
    assert core.snapshot() == before


def test_the_day_turns_at_local_midnight_across_a_daylight_saving_change() -> None:
    """DST starting at 23:00 UTC (local 00:00 then, UTC+1 after): the day turns at 23:00 UTC,
    not at UTC midnight, and the deadline of a reported attribute says so."""
    evening = to_zigbee(dt.datetime(2026, 3, 28, 22, 0, tzinfo=dt.UTC))
    zone = ZoneYear(time_zone=0, dst_start=evening + HOUR, dst_end=evening + 200 * DAY,
                    dst_shift=HOUR)  # fmt: skip
    core: MeterCore[str] = MeterCore(formatting={}, now=evening, local=zone.local_time)
    core.begin(Readings(summation_delivered=1000), evening)
    core.update(Readings(summation_delivered=1060), evening + 60)
    config = ReportingConfig(attribute=TODAY, min_interval=0, max_interval=0, reportable_change=1)
    core.configure_reporting(DISPLAY, config, evening + 60)
    assert core.next_deadline() == evening + HOUR
    (turned,) = core.handle_timeout(evening + HOUR)
    assert turned.attributes == ((TODAY, 0),)
    assert days(core, evening + HOUR)[:2] == [0, 60]
    assert core.next_deadline() == evening + HOUR + DAY  # the next local midnight, in DST


def test_a_clock_set_ahead_then_back_does_not_stop_the_counting() -> None:
    """The meter's clock set a year ahead for nine days of readings, then corrected: the
    days were kept by rank (the newest 9), so the year-ahead days outranked every real one and
    each later count was dropped as it was made (today read 0 for a year). They are kept by
    their distance from the day counted (the prepay account's cost consumption had the same
    fault, found in review)."""
    core = meter()
    summation = 1000
    ahead = SATURDAY_LATE + 365 * DAY
    for day in range(9):
        summation += 10
        core.update(Readings(summation_delivered=summation), ahead + day * DAY)
    now = SATURDAY_LATE + HOUR
    summation += 40
    core.update(Readings(summation_delivered=summation), now)  # the clock corrected
    assert days(core, now)[0] == 40
