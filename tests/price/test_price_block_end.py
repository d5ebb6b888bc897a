"""A block period ends when its duration is over (SE D.4.2.4.2.1.4-6): start plus Block
Period Duration in the timebase of its Duration Type, calendar months in UTC; a repeating one
(Block Period Control bit 1) starts again at its end. Past its end the period is not in
force: not the server's StartOfBlockPeriod / BlockPeriodDuration, not answered to Get Block
Periods (D.4.2.3.4: its Start Time is the minimum end), not the client's current period.
Was: the latest started period stayed in force until the next one started, for ever."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import zse.price.core
from tests.price.test_price_block import (
    GET_BLOCK_PERIODS,
    NOT_FOUND,
    NOW,
    PUBLISH_BLOCK_PERIOD,
    period,
    reply,
)
from tests.price.test_price_protocol import decoded, frame
from zse.price import BLOCK_DURATION_UNTIL_CHANGED, BlockPeriod, add_timebase
from zse.price.protocol import PriceClientProtocol, PriceServerProtocol, publish_payload
from zse.se.ids import PriceAttribute
from zse.se.types import BlockPeriodControl, BlockPeriodDurationType
from zse.time.core import to_zigbee
from zse.zcl.delivery import Destination
from zse.zcl.frame import Step

DAY = 86_400
MONTHS = BlockPeriodDurationType.Months
END_OF_MONTHS = MONTHS | BlockPeriodDurationType.End_Of_Timebase
#: The attributes that follow the block period in force (D.4.2.2.3, SE 1.2 D.4.2.2.7).
PERIOD_ATTRIBUTES = {
    PriceAttribute.START_OF_BLOCK_PERIOD,
    PriceAttribute.BLOCK_PERIOD_DURATION,
    PriceAttribute.BLOCK_PERIOD_DURATION_TYPE,
    PriceAttribute.TARIFF_RESOLUTION_PERIOD,
}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """The ZigBee UTCTime of a UTC date and time."""
    return to_zigbee(dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC))


@pytest.mark.parametrize(
    ("start", "count", "duration_type", "end"),
    [
        (NOW, 90, 0, NOW + 90 * 60),  # minutes
        (NOW, 3, BlockPeriodDurationType.Days, NOW + 3 * DAY),
        (NOW, 2, BlockPeriodDurationType.Weeks, NOW + 14 * DAY),
        (utc(2024, 1, 15), 1, MONTHS, utc(2024, 2, 15)),  # the same day of the next month
        (utc(2024, 1, 31), 1, MONTHS, utc(2024, 2, 29)),  # its last day when shorter
        (utc(2023, 11, 30), 3, MONTHS, utc(2024, 2, 29)),  # across a year
        (utc(2024, 1, 15), 12, MONTHS, utc(2025, 1, 15)),
        # end of timebase: a start on a month's last day runs to the last day of the month
        (utc(2024, 2, 29, 23, 59, 59), 1, END_OF_MONTHS, utc(2024, 3, 31, 23, 59, 59)),
        (utc(2024, 2, 10, 23, 59, 59), 1, END_OF_MONTHS, utc(2024, 3, 10, 23, 59, 59)),
        (NOW, 1, 0x04, None),  # a reserved timebase: no end zse can tell
        (NOW, 0xFFFFFE, MONTHS, None),  # past the last UTCTime (2136)
        (0xFFFF0000, 0xFFFFFE, 0, None),
    ],
)
def test_a_duration_adds_its_timebase(
    start: int, count: int, duration_type: int, end: int | None
) -> None:
    assert add_timebase(start, count, duration_type) == end


def served_to_a_client(*values: Any) -> tuple[PriceServerProtocol, PriceClientProtocol]:
    """A server that published ``values`` at NOW to a client that received them."""
    server, client = PriceServerProtocol(), PriceClientProtocol()
    for value in values:
        for send in server.publish_value(value, NOW, Destination.device(0x1234, 1)).sends:
            msg = frame(send.command_id, send.payload, from_server=True)
            client.receive(msg, decoded(msg), NOW)
    return server, client


def get_block_periods(server: PriceServerProtocol, now: int) -> Step:
    return server.receive(GET_BLOCK_PERIODS, decoded(GET_BLOCK_PERIODS), now)


def test_a_block_period_is_over_at_its_end_on_both_sides() -> None:
    """A one-day period: in force for its last second, over at start + 1440 minutes. Its
    attributes are left out (as before any was published), Get Block Periods answers
    NOT_FOUND, the client holds no current period, and the server's deadline is the end
    (its store then deletes the period)."""
    one_day = period(1, minutes=24 * 60)
    server, client = served_to_a_client(one_day)
    end = NOW + DAY
    assert server.next_deadline() == end
    assert server.block_periods.current(end - 1) == one_day
    assert set(server.attribute_values(end - 1)) >= PERIOD_ATTRIBUTES
    assert client.block_periods.current(end - 1) == one_day
    assert server.block_periods.current(end) is None
    assert not PERIOD_ATTRIBUTES & set(server.attribute_values(end))
    assert get_block_periods(server, end) == Step(status=NOT_FOUND)
    assert client.block_periods.current(end) is None
    server.handle_timeout(end)
    assert len(server.block_periods) == 0  # forgotten, its record left out
    assert server.next_deadline() is None


def test_between_an_ended_period_and_the_next_none_is_in_force() -> None:
    """An hour's period, then one two hours later: nothing in force in the gap; Get Block
    Periods in the gap answers only the next one; the next is in force from its start."""
    first, second = period(1, minutes=60), period(2, start=NOW + 7200, minutes=60)
    server, client = served_to_a_client(first, second)
    gap = NOW + 3600
    assert server.next_deadline() == gap
    assert server.block_periods.current(gap) is None
    assert client.block_periods.current(gap) is None
    assert get_block_periods(server, gap) == Step(
        sends=(reply(GET_BLOCK_PERIODS, PUBLISH_BLOCK_PERIOD, publish_payload(second)),)
    )
    assert server.block_periods.current(NOW + 7200) == second
    assert server.attribute_values(NOW + 7200)[PriceAttribute.START_OF_BLOCK_PERIOD][1] == (
        NOW + 7200
    )


def test_a_repeating_period_starts_again_at_its_end() -> None:
    """A month from 31 January 2024, Repeating Block set: its repetitions start a whole
    number of months from that start (29 February, 31 March, 30 April), each the period in
    force: StartOfBlockPeriod, the Get Block Periods answer (the same period from the
    repetition's start) and the client's current period. It does not end by itself; a
    later period takes over at its start."""
    start = utc(2024, 1, 31)
    monthly = period(
        7,
        start=start,
        minutes=1,
        block_period_duration_type=MONTHS,
        block_period_control=BlockPeriodControl.Repeating_Block,
    )
    server, client = served_to_a_client(monthly)
    assert server.next_deadline() is None
    for now, repetition in (
        (utc(2024, 2, 28, 23, 59, 59), start),
        (utc(2024, 3, 5), utc(2024, 2, 29)),
        (utc(2024, 3, 31), utc(2024, 3, 31)),
        (utc(2024, 5, 29, 12), utc(2024, 4, 30)),
    ):
        assert server.attribute_values(now)[PriceAttribute.START_OF_BLOCK_PERIOD][1] == repetition
        assert get_block_periods(server, now) == Step(
            sends=(
                reply(
                    GET_BLOCK_PERIODS,
                    PUBLISH_BLOCK_PERIOD,
                    publish_payload(monthly.with_start(repetition)),
                ),
            )
        )
        assert client.block_periods.current(now, absolute=True) == monthly.with_start(repetition)
    later = period(8, start=utc(2024, 6, 10), minutes=BLOCK_DURATION_UNTIL_CHANGED)
    server.publish_value(later, utc(2024, 6, 1))
    assert server.block_periods.current(utc(2024, 6, 10)) == later


def test_a_period_until_changed_or_of_an_unknown_timebase_does_not_end() -> None:
    """Duration 0xFFFFFF is "until changed" (D.4.2.4.2.1.4); a reserved timebase (4-15) has
    no end zse can tell, so the period stays in force until the next (zse's own reading)."""
    until_changed = period(1, minutes=BLOCK_DURATION_UNTIL_CHANGED)
    unknown = period(2, minutes=1, tariff_type=1, block_period_duration_type=0x05)
    server, _ = served_to_a_client(until_changed, unknown)
    ten_years = NOW + 3650 * DAY
    assert server.block_periods.current(ten_years) == until_changed
    assert server.block_periods.current(ten_years, tariff_type=1) == unknown
    assert server.next_deadline() is None


def repeating(start: int, count: int, duration_type: int) -> BlockPeriod:
    """A period with Repeating Block set, of ``count`` units of its timebase."""
    return period(
        1,
        start=start,
        minutes=count,
        block_period_duration_type=duration_type,
        block_period_control=BlockPeriodControl.Repeating_Block,
    )


def repetition_by_stepping(item: BlockPeriod, start: int, now: int) -> tuple[int, int | None]:
    """The oracle: the repetitions of a repeating period walked one by one from its start."""
    duration, kind = item.block_period_duration, item.block_period_duration_type
    k = 0
    while (after := add_timebase(start, (k + 1) * duration, kind)) is not None and after <= now:
        k += 1
    begin = add_timebase(start, k * duration, kind)
    assert begin is not None
    return begin, after


@settings(max_examples=300)
@given(
    start=st.integers(0, utc(2040, 1, 1)),
    span=st.integers(0, 40 * 366 * DAY),
    duration=st.integers(1, 50),
    duration_type=st.sampled_from([0, 1, 2, MONTHS, END_OF_MONTHS]),
)
def test_the_repetition_in_force_is_the_one_found_by_walking_them(
    start: int, span: int, duration: int, duration_type: int
) -> None:
    """Months of every length, leap days, month ends: the repetition :meth:`occurrence`
    works out is the one walking every repetition from the start reaches."""
    minutes = duration * (60 if duration_type == 0 else 1)  # minutes: at least an hour
    item = repeating(start, minutes, duration_type)
    now = min(start + span, 0xFFFFFFFE)
    assert item.occurrence(start, now) == repetition_by_stepping(item, start, now)


def test_a_repeating_period_a_century_old_is_placed_in_a_few_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A monthly repeating period started in February 2000, read in 2136: the repetition in
    force is worked out from the months between, with at most 3 month additions (the real
    ones, counted). Was: a guess from February's 28 days, then a step back one month at a
    time: 85 additions, more the longer the span."""
    calls = 0

    def counted(start: int, count: int, duration_type: int) -> int | None:
        nonlocal calls
        calls += 1
        return add_timebase(start, count, duration_type)

    monkeypatch.setattr(zse.price.core, "add_timebase", counted)
    start = utc(2000, 2, 1)
    monthly = repeating(start, 1, MONTHS)
    assert monthly.occurrence(start, 0xFFFFFFF0) == (utc(2136, 2, 1), None)
    assert calls <= 3
