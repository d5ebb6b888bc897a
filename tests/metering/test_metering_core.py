"""The meter core (SE D.3 server): values, reporting of summation, Get Profile (D.3.2.3.1.1)."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zse.metering.core import (
    INTERVAL_NOT_CAPTURED as NOT_CAPTURED,
)
from zse.metering.core import (
    MAX_PERIODS_DELIVERED,
    MeterCore,
    Readings,
    SummationDecreased,
    summation_advance,
)
from zse.se.ids import MeteringAttribute as A
from zse.se.types import GetProfileStatus as S
from zse.zcl.reporting import ReportingConfig

T0 = 1800 * 1000  # on a 30-minute boundary
FORMATTING = {A.UNIT_OF_MEASURE: 0, A.MULTIPLIER: 1, A.DIVISOR: 1000, A.SUMMATION_FORMATTING: 0x33}


def meter(**kwargs: int | bool) -> MeterCore[str]:
    return MeterCore(formatting=FORMATTING, now=T0, **kwargs)  # type: ignore[arg-type]


def test_values_held() -> None:
    m = meter()
    m.update(Readings(summation_delivered=5, instantaneous_demand=-3, status=1), T0 + 1)
    assert (m.read(A.CURRENT_SUMM_DELIVERED), m.read(A.INSTANTANEOUS_DEMAND)) == (5, -3)
    assert (m.read(A.STATUS), m.read(A.DIVISOR), m.read(A.CURRENT_SUMM_RECEIVED)) == (1, 1000, None)


def test_delivered_only_refuses_a_decrease() -> None:
    m = meter()
    m.update(Readings(summation_delivered=50), T0 + 1)
    with pytest.raises(SummationDecreased, match="49 is below 50"):
        m.update(Readings(summation_delivered=49, instantaneous_demand=7), T0 + 2)
    assert m.read(A.CURRENT_SUMM_DELIVERED) == 50
    assert m.read(A.INSTANTANEOUS_DEMAND) is None


TOP = 1 << 48  # CurrentSummationDelivered is uint48 (D.3.2.2.1.1)


def test_a_summation_register_rolling_over_is_not_a_decrease() -> None:
    # a 48-bit register wraps to 0 in the field; the interval counts the consumption across
    m = meter(max_periods=3)
    m.update(Readings(summation_delivered=TOP - 5), T0 + 1)
    m.update(Readings(summation_delivered=3), T0 + 1801)
    assert m.read(A.CURRENT_SUMM_DELIVERED) == 3
    m.update(Readings(summation_delivered=TOP + 10), T0 + 1802)  # a source counting on
    assert m.read(A.CURRENT_SUMM_DELIVERED) == 10  # modulo 2^48
    m.update(Readings(summation_delivered=20), T0 + 3601)
    m.update(Readings(), T0 + 5400)
    # intervals ending T0+5400, T0+3600: 10, then 15 across the wrap (5 to the top, 10 after)
    assert m.get_profile(0, 0, 2, T0 + 5400).intervals == (10, 15)
    # a genuine decrease, near the top or not, is still refused; nothing changes
    for held, fed in ((TOP - 5, TOP - 6), ((1 << 47) + 10, 10), (TOP - 5, TOP - 6 + TOP)):
        fresh = meter()
        fresh.update(Readings(summation_delivered=held), T0 + 1)
        with pytest.raises(SummationDecreased, match=f"{fed % TOP} is below {held}"):
            fresh.update(Readings(summation_delivered=fed), T0 + 2)
        assert fresh.read(A.CURRENT_SUMM_DELIVERED) == held


def test_summation_advance_across_the_top() -> None:
    assert summation_advance(TOP - 5, 3) == 8
    assert summation_advance(3, TOP - 5) == TOP - 8  # going up is never a rollover
    assert summation_advance(50, 49) == -1
    # half the register decides (serial number arithmetic, RFC 1982 section 3.2)
    half = 1 << 47
    assert summation_advance(half + 10, 9) == half - 1
    assert summation_advance(half + 10, 10) == -half


def test_bidirectional_meter_may_go_down() -> None:
    m = meter(delivered_only=False)
    m.update(Readings(summation_delivered=50, summation_received=3), T0 + 1)
    m.update(Readings(summation_delivered=40), T0 + 2)
    assert m.read(A.CURRENT_SUMM_DELIVERED) == 40


@pytest.mark.parametrize(
    ("readings", "error"),
    [
        (Readings(summation_delivered=-1), "summation delivered -1 out of range"),
        (Readings(instantaneous_demand=1 << 23), "instantaneous demand"),
        (Readings(status=256), "status 256"),
        (Readings(summation_received=1), "no summation received"),
    ],
)
def test_bad_readings_are_refused(readings: Readings, error: str) -> None:
    m = meter(delivered_only=readings.summation_received is not None)
    with pytest.raises(ValueError, match=error):
        m.update(readings, T0)


@given(st.lists(st.tuples(st.integers(-50, 200), st.integers(0, 120)), max_size=40))
def test_reported_summation_never_decreases(steps: list[tuple[int, int]]) -> None:
    m = meter()
    now, summation = T0, 0
    assert (
        m.configure_reporting(
            "ihd",
            ReportingConfig(
                attribute=A.CURRENT_SUMM_DELIVERED,
                min_interval=0,
                max_interval=0,
                reportable_change=1,
            ),
            now,
        )
        == 0
    )
    reported: list[int] = []
    for delta, wait in steps:
        now += wait
        try:
            m.update(Readings(summation_delivered=max(0, summation + delta)), now)
            summation = max(0, summation + delta)
        except SummationDecreased:
            assert summation + delta < summation
        deadline = m.next_deadline()
        if deadline is not None and deadline <= now:
            for report in m.handle_timeout(now):
                reported.extend(value for _, value in report.attributes)
    assert reported == sorted(reported)
    assert all(b > a for a, b in pairwise(reported))


def profiled() -> MeterCore[str]:
    m = meter(max_periods=3, profile_capacity=4)
    for i, summation in enumerate((10, 30, 60, 100, 150, 210), start=1):
        m.update(Readings(summation_delivered=summation), T0 + 1800 * i - 1)
    m.update(Readings(), T0 + 1800 * 6)
    return m  # intervals ending T0+1800..T0+10800: 10, 20, 30, 40, 50, 60; the ring keeps 4


def test_get_profile_most_recent_first() -> None:
    answer = profiled().get_profile(0, 0, 3, T0 + 1800 * 6 + 5)
    assert answer.status == S.Success
    assert (answer.end_time, answer.intervals) == (T0 + 10800, (60, 50, 40))
    assert answer.number_of_periods_delivered == 3
    assert answer.profile_interval_period == 2


def test_get_profile_earlier_end_time_and_ring_bound() -> None:
    answer = profiled().get_profile(0, T0 + 1800 * 4 + 100, 3, T0 + 10800)
    assert (answer.status, answer.end_time, answer.intervals) == (S.Success, T0 + 7200, (40, 30))


@pytest.mark.parametrize(
    ("channel", "end", "periods", "status", "intervals"),
    [
        (2, 0, 1, S.Undefined_Interval_Channel_Requested, ()),
        (1, 0, 1, S.Interval_Channel_Not_Supported, ()),
        (0, T0 + 99999, 1, S.Invalid_End_Time, ()),
        (0, T0 + 10801, 1, S.Invalid_End_Time, ()),  # a second after now: later than now
        (0, T0 + 10800, 1, S.Success, (60,)),  # now itself is not later than now
        (0, 0, 5, S.More_Periods_Requested_Than_Can_Be_Returned, (60, 50, 40)),
        (0, 0, 4, S.More_Periods_Requested_Than_Can_Be_Returned, (60, 50, 40)),  # one over
        (0, 0, 3, S.Success, (60, 50, 40)),  # MaxNumberOfPeriodsDelivered itself
        (0, T0 + 1000, 1, S.No_Intervals_Available_For_The_Requested_Time, ()),
    ],
)
def test_get_profile_status(
    channel: int, end: int, periods: int, status: S, intervals: tuple[int, ...]
) -> None:
    answer = profiled().get_profile(channel, end, periods, T0 + 10800)
    assert (answer.status, answer.intervals) == (status, intervals)


def test_no_intervals_yet() -> None:
    assert (
        meter().get_profile(0, 0, 1, T0 + 5).status
        == S.No_Intervals_Available_For_The_Requested_Time
    )


def test_received_channel_of_a_bidirectional_meter() -> None:
    m = meter(delivered_only=False)
    m.update(Readings(summation_received=7), T0 + 10)
    m.update(Readings(), T0 + 1800)
    assert m.get_profile(1, 0, 1, T0 + 1800).intervals == (7,)


def test_a_long_gap_closes_only_what_the_ring_keeps() -> None:
    """Ten years without a reading: the ring holds its last intervals, not captured, at once;
    the interval the readings come back in is not captured either (it holds the gap's use)."""
    m = meter(max_periods=3, profile_capacity=4)
    m.update(Readings(summation_delivered=40), T0 + 10)
    later = T0 + 10 * 365 * 86400
    m.update(Readings(summation_delivered=90), later)
    answer = m.get_profile(0, 0, 3, later)
    assert answer.end_time == later // 1800 * 1800
    assert answer.intervals == (NOT_CAPTURED,) * 3
    m.update(Readings(summation_delivered=95), answer.end_time + 1800)
    assert m.get_profile(0, 0, 1, answer.end_time + 1800).intervals == (NOT_CAPTURED,)
    m.update(Readings(summation_delivered=99), answer.end_time + 3600)
    assert m.get_profile(0, 0, 1, answer.end_time + 3600).intervals == (5,)


def test_intervals_without_a_reading_are_not_captured() -> None:
    """D.3.2.3.1.1.5: an interval without a reading is marked 0xFFFFFF, and so is the one the
    readings come back in. Before, the gap's intervals read 0 and all its consumption was
    counted in the interval the readings came back in, with status SUCCESS."""
    m = meter()
    m.update(Readings(summation_delivered=40), T0 + 10)
    m.update(Readings(summation_delivered=6045), T0 + 1800 * 3 + 5)
    assert m.get_profile(0, 0, 3, T0 + 5400 + 5).intervals == (NOT_CAPTURED, NOT_CAPTURED, 40)
    m.update(Readings(summation_delivered=6050), T0 + 7200 - 1)
    m.update(Readings(summation_delivered=6052), T0 + 7200 + 1)  # back on time: counted
    m.update(Readings(), T0 + 9000)
    assert m.get_profile(0, 0, 2, T0 + 9000).intervals == (2, NOT_CAPTURED)


def test_a_restarted_meter_marks_its_outage_not_captured() -> None:
    """A service restored from its snapshot three hours later: the outage's intervals and the
    one readings resume in are not captured, in memory and in a snapshot taken then. Before,
    they read 0 and the next held the outage's 6000."""
    m = meter()
    m.update(Readings(summation_delivered=1000), T0 + 60)
    m.update(Readings(summation_delivered=1100), T0 + 1790)
    later = T0 + 1790 + 3 * 3600
    restarted = MeterCore[str](formatting=FORMATTING, now=later)
    restarted.restore(m.snapshot())
    restarted.update(Readings(summation_delivered=7100), later)
    again = MeterCore[str](formatting=FORMATTING, now=later)
    again.restore(json.loads(json.dumps(restarted.snapshot())))
    again.update(Readings(summation_delivered=7110), T0 + 12600 + 5)
    assert again.get_profile(0, 0, 7, T0 + 12600 + 10).intervals == (NOT_CAPTURED,) * 6 + (1100,)


@pytest.mark.parametrize("periods", [0, 22, 40, 300])
def test_max_number_of_periods_delivered_is_bounded(periods: int) -> None:
    """D.3.2.2.6: MaxNumberOfPeriodsDelivered is a uint8 and a Get Profile Response of that
    many intervals must fit one frame: zse does no APS fragmentation, so 21 intervals, what an
    APS-encrypted unicast frame holds (tests/services/test_metering_small.py), not the 39 of
    the 128-octet fragmentation ASDU. Before, any number was taken (300 could not even be
    read over the air), then up to 39."""
    with pytest.raises(ValueError, match="MaxNumberOfPeriodsDelivered"):
        meter(max_periods=periods)
    assert meter(max_periods=MAX_PERIODS_DELIVERED).read(A.MAX_NUMBER_OF_PERIODS_DELIVERED) == 21


def test_a_one_minute_profile_interval_is_a_period_of_its_own() -> None:
    """ProfileIntervalPeriod 8 is one minute (zigpy's ``ProfileIntervalPeriod.Minutes_1``,
    from a later SE revision than 0-7): a meter may keep such a profile, and its record
    (kept across restarts) says so."""
    m = meter(profile_period=8)
    m.update(Readings(summation_delivered=100), T0 + 1)
    m.update(Readings(summation_delivered=160), T0 + 61)
    m.update(Readings(summation_delivered=190), T0 + 121)
    answer = m.get_profile(0, 0, 2, T0 + 121)
    assert (answer.status, answer.profile_interval_period) == (S.Success, 8)
    assert answer.end_time == T0 + 120
    assert len(answer.intervals) == 2  # two whole minutes, newest first
    again = meter(profile_period=8)
    again.restore(json.loads(json.dumps(m.snapshot())))
    assert again.get_profile(0, 0, 2, T0 + 121) == answer
