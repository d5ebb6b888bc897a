"""The simulated household (issue #14.2): the HAN roles' loads add up in the load model, and a
Load Control Event sent by the real ESI lowers the household's demand while it runs, to the
second, on the simulator's virtual time."""

from __future__ import annotations

import asyncio

import pytest

from tests.roles.han_builder import EUIS, START, Han, build, close
from zse.drlc import LoadControlEvent
from zse.metering.core import MeterCore, Readings
from zse.metering.formatting import Formatting
from zse.metering.load import HouseholdLoad, LoadModelError
from zse.roles.han import LoadControlDevice, ProgrammableThermostat
from zse.se.ids import MeteringAttribute as A
from zse.se.types import UnitOfMeasure
from zse.sim import Household

HVAC = 0x0001
WATER_HEATER = 0x0004
KWH = Formatting(UnitOfMeasure.KWH, multiplier=1, divisor=1000)
BASE, WATER, COOLING = 400, 3000, 2000
NORMAL = BASE + WATER + COOLING


async def at(han: Han, zigbee_time: int) -> None:
    """Run the simulation until the middle of ZigBee second ``zigbee_time``."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(zigbee_time - START + 0.5 - loop.time())
    assert han.clock() == zigbee_time


async def household(tmp_path, *, heating: bool = False, **lcd_options):
    """The ESI, a water heater switch and a thermostat joined and keyed; their loads in a
    household of 400 W base load from now on."""
    han = await build(tmp_path)
    for name in ("lcd", "thermostat"):
        await han.esi.provision(EUIS[name])
        await han.add(name, **(lcd_options if name == "lcd" else {})).start()
    await asyncio.sleep(30)
    await han.esi.settle()
    lcd, thermostat = han.devices["lcd"], han.devices["thermostat"]
    assert isinstance(lcd, LoadControlDevice)
    assert isinstance(thermostat, ProgrammableThermostat)
    t0 = han.clock()
    house = Household(HouseholdLoad(formatting=KWH, now=t0, base_watts=BASE), clock=han.clock)
    house.attach(lcd, rated_watts=WATER)
    house.attach(thermostat, rated_watts=COOLING, heating=heating)
    return han, house, t0


def lce(issuer_event_id: int, device_class: int, start: int, **fields: int) -> LoadControlEvent:
    """A two-minute Load Control Event (criticality 3: the user may opt out) from ``start``."""
    return LoadControlEvent(
        issuer_event_id=issuer_event_id,
        device_class=device_class,
        start_time=start,
        duration_in_minutes=2,
        criticality_level=0x03,
        **fields,
    )


async def test_a_load_control_event_lowers_demand_while_it_runs(tmp_path) -> None:
    """The water heater at 40 % (3000 -> 1200 W) and the thermostat 2 °C up (2000 -> 1000 W,
    25 % per °C) from the event's start second to its end second; the summation is the exact
    energy of that."""
    han, house, t0 = await household(tmp_path)
    start = t0 + 60
    end = start + 120
    reduced = BASE + 1200 + 1000
    await han.esi.send_load_control(
        lce(0x1400_0001, WATER_HEATER, start, duty_cycle=40), device=EUIS["lcd"]
    )
    await han.esi.send_load_control(
        lce(0x1400_0002, HVAC, start, cooling_temperature_offset=20), device=EUIS["thermostat"]
    )
    meter: MeterCore[str] = MeterCore(
        formatting={A.UNIT_OF_MEASURE: 0, A.MULTIPLIER: 1, A.DIVISOR: 1000}, now=t0
    )

    def demand_read(now: int) -> int | None:
        """The meter core polls the household: its InstantaneousDemand (W, Divisor 1000)."""
        meter.update(house.readings(now), now)
        return meter.read(A.INSTANTANEOUS_DEMAND)

    await at(han, start - 1)
    assert demand_read(start - 1) == NORMAL
    await at(han, start + 1)
    assert demand_read(start + 1) == reduced
    assert house.model.watt_seconds(start + 1) == NORMAL * (start - t0) + reduced * 1
    assert house.model.device(han.devices["thermostat"].name).set_point_offset == 200
    await at(han, end - 1)
    assert house.model.demand_watts(end - 1) == reduced
    await at(han, end + 1)
    assert demand_read(end + 1) == NORMAL
    energy = NORMAL * (start - t0) + reduced * (end - start) + NORMAL * 1
    assert house.model.watt_seconds(end + 1) == energy
    assert house.readings(end + 3600) == Readings(
        summation_delivered=(energy + NORMAL * 3599) // 3600, instantaneous_demand=NORMAL
    )
    await close(han)


async def test_opting_out_keeps_the_load(tmp_path) -> None:
    """Opted out before the start, the water heater keeps its full load; the thermostat, which
    no event names, draws its normal load throughout."""
    han, house, t0 = await household(tmp_path)
    start = t0 + 60
    await han.esi.send_load_control(
        lce(0x1400_0003, WATER_HEATER, start, duty_cycle=0), device=EUIS["lcd"]
    )
    await asyncio.sleep(5)
    await han.devices["lcd"].opt_out(0x1400_0003)
    await at(han, start + 60)
    assert house.model.demand_watts(start + 60) == NORMAL
    assert house.model.watt_seconds(start + 200) == NORMAL * (start + 200 - t0)
    await close(han)


async def test_opting_out_while_it_runs_restores_the_load_from_that_second(tmp_path) -> None:
    han, house, t0 = await household(tmp_path)
    start = t0 + 60
    await han.esi.send_load_control(
        lce(0x1400_0004, WATER_HEATER, start, duty_cycle=0), device=EUIS["lcd"]
    )
    await at(han, start + 30)
    assert house.model.demand_watts(start + 30) == NORMAL - WATER
    await han.devices["lcd"].opt_out(0x1400_0004)
    assert han.clock() == start + 30
    assert house.model.demand_watts(start + 30) == NORMAL
    energy = NORMAL * (start - t0) + (NORMAL - WATER) * 30 + NORMAL * 600
    assert house.model.watt_seconds(start + 630) == energy
    await close(han)


async def test_the_opt_out_policy_keeps_the_load(tmp_path) -> None:
    """A device whose user policy opts out of every event applies it and stops in the same
    second: the household's energy is as if no event came."""
    han, house, t0 = await household(tmp_path, opt_out=lambda event: True)
    start = t0 + 60
    await han.esi.send_load_control(
        lce(0x1400_0005, WATER_HEATER, start, duty_cycle=0), device=EUIS["lcd"]
    )
    await at(han, start + 10)
    assert house.model.demand_watts(start + 10) == NORMAL
    assert house.model.watt_seconds(start + 10) == NORMAL * (start + 10 - t0)
    await close(han)


async def test_a_heating_thermostat_saves_when_its_set_point_goes_down(tmp_path) -> None:
    han, house, t0 = await household(tmp_path, heating=True)
    start = t0 + 60
    event = lce(
        0x1400_0006, HVAC, start, heating_temperature_offset=10, cooling_temperature_offset=30
    )
    await han.esi.send_load_control(event, device=EUIS["thermostat"])
    await at(han, start + 1)
    assert house.model.demand_watts(start + 1) == NORMAL - COOLING // 4  # 1 °C down: 25 %
    await at(han, start + 121)
    assert house.model.demand_watts(start + 121) == NORMAL
    await close(han)


async def test_only_devices_with_a_load_are_attached(tmp_path) -> None:
    han = await build(tmp_path)
    house = Household(HouseholdLoad(formatting=KWH, now=START), clock=han.clock)
    with pytest.raises(LoadModelError, match=r"InHomeDisplay .* has no load"):
        house.attach(han.add("ihd"), rated_watts=10)
    lcd = han.add("lcd")
    house.attach(lcd, rated_watts=WATER)
    assert house.model.demand_watts(START) == WATER
    house.detach(lcd)
    assert house.model.demand_watts(START) == 0
    await close(han)
