"""The simulated household load (zse.metering.load): a ReadingSource whose demand is the sum of
its draws and whose summation is integrated exactly, in the meter's formatting (issue #14.2)."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zse.metering.core import MeterCore, Readings, ReadingSource
from zse.metering.formatting import Formatting, bcd_to_int
from zse.metering.load import DeviceLoad, HouseholdLoad, LoadModelError, set_point_offset
from zse.se.ids import MeteringAttribute as A
from zse.se.types import UNIT_OF_MEASURE_BCD, UnitOfMeasure

T0 = 800_000_000
KWH = Formatting(UnitOfMeasure.KWH, multiplier=1, divisor=1000, summation_formatting=0x33)

formattings = st.builds(
    Formatting,
    unit_of_measure=st.sampled_from([UnitOfMeasure.KWH, UnitOfMeasure.KWH | UNIT_OF_MEASURE_BCD]),
    multiplier=st.integers(0, 1000),
    divisor=st.integers(0, 100_000),
)
#: (seconds after the previous step, device index, what, value)
changes = st.lists(
    st.tuples(
        st.integers(0, 4000),
        st.integers(0, 2),
        st.sampled_from(["duty", "offset", "read"]),
        st.integers(-500, 500),
    ),
    max_size=30,
)
RATED = (3000, 1500, 800)


def household(formatting: Formatting = KWH, **options: object) -> HouseholdLoad:
    model = HouseholdLoad(formatting=formatting, now=T0, **options)  # type: ignore[arg-type]
    for index, rated in enumerate(RATED):
        model.add_device(f"d{index}", rated, T0)
    return model


def stepping(
    model: HouseholdLoad, steps: list[tuple[int, int, str, int]], *, read: bool
) -> Iterator[int]:
    """Apply the changes at their times (reading at every "read" step when ``read``),
    yielding the time after each step."""
    now = T0
    for delay, index, what, value in steps:
        now += delay
        if what == "duty":
            model.set_duty_cycle(f"d{index}", abs(value) % 101, now)
        elif what == "offset":
            model.set_set_point_offset(f"d{index}", value, now)
        elif read:
            model.readings(now)
        yield now


def play(model: HouseholdLoad, steps: list[tuple[int, int, str, int]], *, read: bool) -> int:
    """:func:`stepping` through every step: the time of the last one."""
    return max(stepping(model, steps, read=read), default=T0)


def raw(value: int, formatting: Formatting) -> int:
    bcd = formatting.unit_of_measure & UNIT_OF_MEASURE_BCD
    return bcd_to_int(value) if bcd else value


def test_is_a_reading_source() -> None:
    source: ReadingSource = household()
    assert source.readings(T0) == Readings(summation_delivered=0, instantaneous_demand=5300)


def test_draw_rules() -> None:
    """Duty cycle scales the rated power; each 1 °C of set point offset saves 25 % of it, up to
    100 %; an offset the other way saves nothing."""
    load = DeviceLoad(rated_watts=2000)
    assert load.watts == 2000
    assert DeviceLoad(rated_watts=2000, duty_cycle=40).watts == 800
    assert DeviceLoad(rated_watts=2000, set_point_offset=200).watts == 1000  # +2.00 °C
    assert DeviceLoad(rated_watts=2000, set_point_offset=150).watts == 1260  # 37 % saved
    assert DeviceLoad(rated_watts=2000, set_point_offset=900).watts == 0
    assert DeviceLoad(rated_watts=2000, set_point_offset=-300).watts == 2000
    assert DeviceLoad(rated_watts=2000, set_point_offset=900, max_reduction=60).watts == 800
    capped = DeviceLoad(rated_watts=2000, duty_cycle=50, set_point_offset=100)
    assert capped.watts == 750
    assert set_point_offset(2600, 2400) == 200
    assert set_point_offset(1850, 2000, heating=True) == 150


def test_a_load_control_event_lowers_demand_and_summation_exactly() -> None:
    """A water heater at 40 % for ten minutes: demand drops by 1800 W while it runs, and the
    summation is the exact energy (3 kWh an hour base + devices; Wh resolution)."""
    model = household(base_watts=700)
    assert model.demand_watts(T0) == 6000
    model.set_duty_cycle("d0", 40, T0 + 600)
    assert model.demand(T0 + 600) == 4200  # kW with Divisor 1000
    model.set_duty_cycle("d0", 100, T0 + 1200)
    assert model.readings(T0 + 3600) == Readings(
        summation_delivered=(6000 * 3000 + 4200 * 600) // 3600, instantaneous_demand=6000
    )


def test_summation_in_the_meter_core() -> None:
    """The readings feed a MeterCore as they are: its raw values show as the model's energy."""
    model = household()
    meter: MeterCore[str] = MeterCore(
        formatting={A.UNIT_OF_MEASURE: 0, A.MULTIPLIER: 1, A.DIVISOR: 1000}, now=T0
    )
    for now in range(T0, T0 + 7200, 450):
        meter.update(model.readings(now), now)
    # 5.3 kW for 6,750 s (the last reading)
    assert KWH.summation(meter.read(A.CURRENT_SUMM_DELIVERED) or 0).text == "000009.937"
    assert KWH.demand(meter.read(A.INSTANTANEOUS_DEMAND) or 0).value == Fraction(53, 10)


@given(changes, changes)
def test_summation_does_not_depend_on_how_often_it_is_read(steps, reads) -> None:
    """Exact integration: the same changes with readings in between (or none) give the same
    summation and energy at the end, to the watt-second."""
    quiet, busy = household(base_watts=250), household(base_watts=250)
    end = play(quiet, steps, read=False)
    busy_end = play(busy, steps, read=True)
    assert busy_end == end
    assert busy.watt_seconds(end + 7) == quiet.watt_seconds(end + 7)
    assert busy.readings(end + 7) == quiet.readings(end + 7)


@given(changes, st.integers(0, 10_000), st.integers(0, 100), st.sampled_from([60, 300, 3600]))
def test_varying_base_load_is_deterministic_and_exact(steps, seed, variation, slot) -> None:
    """A daily shape and seeded jitter: the same for a seed and a time however often read."""
    shape = [50 + 10 * hour for hour in range(24)]
    options = {"base_watts": 400, "daily_shape": shape, "variation": variation, "seed": seed}
    one = household(**options, slot_seconds=slot)
    two = household(**options, slot_seconds=slot)
    end = play(one, steps, read=True) + 90_000
    play(two, steps, read=False)
    assert one.readings(end) == two.readings(end)
    for now in range(end, end + 2 * slot, slot // 2):
        assert one.base_load(now) == two.base_load(now)
        assert 0 <= one.base_load(now) <= 400 * 280 * (100 + variation) // 10000


@given(changes, formattings)
def test_summation_never_decreases_and_demand_is_the_sum_of_draws(steps, formatting) -> None:
    model = household(formatting, base_watts=123)
    last = 0
    for now in stepping(model, steps, read=False):
        readings = model.readings(now)
        summation = raw(readings.summation_delivered or 0, formatting)
        assert summation >= last
        last = summation
        draws = [model.device(f"d{i}").watts for i in range(3)]
        assert model.demand_watts(now) == 123 + sum(draws)


@given(changes, formattings)
def test_units_follow_the_formatting(steps, formatting) -> None:
    """What a display shows (raw * Multiplier / Divisor, kWh / kW) is the energy and the demand
    cut to the meter's resolution: within one raw step below the exact value."""
    model = household(formatting, base_watts=77)
    end = play(model, steps, read=True) + 1
    readings = model.readings(end)
    step = Fraction(formatting.multiplier or 1, formatting.divisor or 1)
    shown = formatting.summation(readings.summation_delivered or 0).value
    energy = Fraction(model.watt_seconds(end), 3_600_000)
    assert shown <= energy < shown + step
    demand = formatting.demand(readings.instantaneous_demand or 0).value
    exact = Fraction(model.demand_watts(end), 1000)
    assert demand <= exact < demand + step or (demand == (1 << 23) - 1 and exact > demand)


def test_time_going_back_rewrites_nothing() -> None:
    model = household()
    first = model.readings(T0 + 3600)
    model.set_duty_cycle("d0", 0, T0 + 10)  # stamped in the past: counts from T0 + 3600
    assert model.readings(T0 + 100) == Readings(
        summation_delivered=first.summation_delivered, instantaneous_demand=2300
    )
    assert model.watt_seconds(T0 + 3700) == 5300 * 3600 + 2300 * 100


def test_saturates_at_the_attribute_limits() -> None:
    big = Formatting(UnitOfMeasure.KWH, multiplier=1, divisor=10_000_000)
    model = HouseholdLoad(formatting=big, now=T0, base_watts=10**6, summation=(1 << 48) - 10)
    assert model.readings(T0 + 3600) == Readings(
        summation_delivered=(1 << 48) - 1, instantaneous_demand=(1 << 23) - 1
    )


def test_bcd_units() -> None:
    bcd = Formatting(UnitOfMeasure.KWH | UNIT_OF_MEASURE_BCD, divisor=1000)
    model = HouseholdLoad(formatting=bcd, now=T0, base_watts=1234, summation=99)
    assert model.readings(T0 + 3600) == Readings(
        summation_delivered=0x1333, instantaneous_demand=0x1234
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"formatting": Formatting(UnitOfMeasure.CUBIC_METER)}, "metered in kWh"),
        ({"daily_shape": [100] * 23}, "24 percentages"),
        ({"variation": 101}, "out of range"),
        ({"base_watts": -1}, "out of range"),
        ({"slot_seconds": 7}, "does not divide an hour"),
        ({"formatting": Formatting(divisor=-1)}, "divisor -1 is not a uint24"),
        ({"formatting": Formatting(multiplier=1 << 24)}, "multiplier 16777216 is not a uint24"),
    ],
)
def test_bad_settings_are_named_errors(options, message) -> None:
    with pytest.raises(LoadModelError, match=message):
        HouseholdLoad(**{"formatting": KWH, "now": T0, **options})  # type: ignore[arg-type]


@given(
    st.builds(
        Formatting,
        unit_of_measure=st.integers(-1, 0x100),
        multiplier=st.integers(-(2**30), 2**30),
        divisor=st.integers(-(2**30), 2**30),
    ),
    st.fixed_dictionaries(
        {
            "summation": st.integers(-5, 2**50),
            "base_watts": st.integers(-(2**40), 2**40),
            "daily_shape": st.lists(st.integers(-5, 500), max_size=30),
            "variation": st.integers(-5, 200),
            "slot_seconds": st.integers(-5, 4000),
        }
    ),
)
def test_any_settings_make_a_model_or_a_named_error(formatting, options) -> None:
    """Garbage settings raise LoadModelError; what is accepted gives readings within the
    attributes' ranges."""
    try:
        model = HouseholdLoad(formatting=formatting, now=T0, **options)
    except LoadModelError:
        return
    readings = model.readings(T0 + 86_400)
    assert 0 <= raw(readings.summation_delivered or 0, formatting) < 1 << 48
    assert 0 <= raw(readings.instantaneous_demand or 0, formatting) < 1 << 23


def test_bad_device_changes_are_named_errors() -> None:
    model = household()
    with pytest.raises(LoadModelError, match="no device 'x'"):
        model.set_duty_cycle("x", 10, T0)
    with pytest.raises(LoadModelError, match="already"):
        model.add_device("d0", 1, T0)
    with pytest.raises(LoadModelError, match=r"outside 0\.\.100"):
        model.set_duty_cycle("d0", 101, T0)
    with pytest.raises(LoadModelError, match="negative"):
        model.add_device("y", -5, T0)
    model.remove_device("d1", T0 + 10)
    assert model.demand_watts(T0 + 10) == 3800
    assert model.watt_seconds(T0 + 20) == 53000 + 38000
    assert list(model.devices) == ["d0", "d2"]


def test_readings_at_ever_later_times_only_grow() -> None:
    model = household(base_watts=1, variation=30, daily_shape=[100] * 24, seed=3)
    values = [model.readings(now).summation_delivered or 0 for now in range(T0, T0 + 9000, 61)]
    assert all(a <= b for a, b in pairwise(values))
    assert values[-1] > values[0]
