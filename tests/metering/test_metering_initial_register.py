"""The load profile counts from the register a meter starts with (SE D.3.2.3.1.1.5: an
interval holds the change since the previous one). Before, a new MeterCore counted its first
interval from 0, so a meter starting at 123456 Wh put all of it into that interval."""

from __future__ import annotations

from zse.metering.core import INTERVAL_NOT_CAPTURED, MeterCore, Readings
from zse.metering.service import MeteringServer
from zse.se.ids import METERING
from zse.se.ids import MeteringAttribute as A
from zse.sim import Air

T0 = 1800 * 1000  # on a 30-minute boundary
FORMATTING = {A.UNIT_OF_MEASURE: 0, A.MULTIPLIER: 1, A.DIVISOR: 1000, A.SUMMATION_FORMATTING: 0x33}


def test_the_first_interval_counts_from_the_initial_register() -> None:
    m = MeterCore[str](
        formatting=FORMATTING,
        now=T0 + 60,
        delivered_only=False,
        initial=Readings(summation_delivered=123_456, summation_received=7_000, status=0),
    )
    assert m.read(A.CURRENT_SUMM_DELIVERED) == 123_456
    m.update(Readings(summation_delivered=123_500, summation_received=7_010), T0 + 1799)
    m.update(Readings(), T0 + 1800)
    assert m.get_profile(0, 0, 1, T0 + 1800).intervals == (44,)
    assert m.get_profile(1, 0, 1, T0 + 1800).intervals == (10,)


def test_an_initial_register_near_the_top_is_not_a_decrease() -> None:
    """A register past 2^47 is where the meter starts, not a step back from 0."""
    top = (1 << 48) - 10
    m = MeterCore[str](formatting=FORMATTING, now=T0, initial=Readings(summation_delivered=top))
    m.update(Readings(summation_delivered=5), T0 + 1799)  # rolled over: 15 Wh
    m.update(Readings(), T0 + 1800)
    assert m.get_profile(0, 0, 1, T0 + 1800).intervals == (15,)


async def test_a_metering_server_counts_its_profile_from_the_first_reading() -> None:
    """The ESI's meter fed (or polled) a real meter's readings: the first is its register."""
    air = Air(seed=7)
    endpoint = air.device("00:0d:6f:00:0d:00:00:09", channel=15).add_endpoint(
        9, device_type=0x0501, in_clusters=[METERING]
    )
    now = [T0 + 5]
    server = MeteringServer(endpoint, clock=lambda: now[0], profile_period=3)
    await server.feed(Readings(instantaneous_demand=100))  # no register yet
    await server.feed(Readings(summation_delivered=123_456))
    now[0] = T0 + 899
    await server.feed(Readings(summation_delivered=123_500))
    now[0] = T0 + 900
    await server.feed(Readings())
    assert server.core.get_profile(0, 0, 1, T0 + 900).intervals == (44,)


def test_first_readings_after_a_boundary_leave_the_intervals_before_not_captured() -> None:
    m = MeterCore[str](formatting=FORMATTING, now=T0)
    m.begin(Readings(summation_delivered=500), T0 + 1800 + 10)
    m.update(Readings(summation_delivered=530), T0 + 3599)
    m.update(Readings(), T0 + 3600)
    assert m.get_profile(0, 0, 2, T0 + 3600).intervals == (30, INTERVAL_NOT_CAPTURED)
