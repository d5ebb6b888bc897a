"""What a HAN role applies is what it reports (issue 13 item 3): the thermostat and the load
control device apply the DRLC core's decision, and the Report Event Status the ESI receives
(decoded from the frame the device sent, signature checked) carries the same values."""

from __future__ import annotations

import asyncio

import pytest

from tests.roles.han_builder import EUIS, build, close
from zse.drlc import (
    AVERAGE_LOAD_ADJUSTMENT_NOT_USED,
    DUTY_CYCLE_NOT_USED,
    SET_POINT_NOT_USED,
    LoadControlEvent,
    StatusReport,
)
from zse.roles.esi import ReportReceived
from zse.roles.han import LoadControlDevice, ProgrammableThermostat

HVAC = 0x0001
WATER_HEATER = 0x0004
STARTED = 0x02


async def started_report(han, name: str, event: LoadControlEvent) -> StatusReport:
    """Send ``event`` to one device and return its Report Event Status 0x02 (Started) as the
    ESI decoded it from the air."""
    received: list[ReportReceived] = []
    han.esi.on_event(lambda e: received.append(e) if isinstance(e, ReportReceived) else None)
    await han.esi.send_load_control(event, device=EUIS[name])
    await asyncio.sleep(5)
    reports = [
        r
        for r in received
        if r.device == EUIS[name]
        and r.report.issuer_event_id == event.issuer_event_id
        and r.report.event_status == STARTED
    ]
    assert len(reports) == 1
    assert reports[0].signed  # the device's own signed frame, verified by the ESI
    return reports[0].report


def lce(issuer_event_id: int, device_class: int, **fields: int) -> LoadControlEvent:
    """A ten-minute Load Control Event starting now."""
    return LoadControlEvent(
        issuer_event_id=issuer_event_id,
        device_class=device_class,
        duration_in_minutes=10,
        criticality_level=0x03,
        **fields,
    )


async def joined(tmp_path, name: str, **options):
    han = await build(tmp_path)
    await han.esi.provision(EUIS[name])
    role = han.add(name, **options)
    await role.start()
    await asyncio.sleep(30)
    await han.esi.settle()
    return han, role


async def test_thermostat_cooling_offset_to_26_degrees_is_reported_as_the_set_point(tmp_path):
    """The defect: a 2.0 °C cooling offset on a 24.00 °C set point made the thermostat run at
    26.00 °C while its Report Event Status said "set point not used" (0x8000)."""
    han, thermostat = await joined(tmp_path, "thermostat")
    assert isinstance(thermostat, ProgrammableThermostat)
    event = lce(0x1300_0001, HVAC, cooling_temperature_offset=20)  # +2.0 °C
    report = await started_report(han, "thermostat", event)
    assert thermostat.cooling_set_point == 2600
    assert report.cooling_temperature_set_point_applied == 2600
    assert thermostat.heating_set_point == 2000  # the user's: nothing applied
    assert report.heating_temperature_set_point_applied == SET_POINT_NOT_USED
    assert report.duty_cycle_applied == DUTY_CYCLE_NOT_USED
    await close(han)


@pytest.mark.parametrize(
    ("fields", "cooling", "heating"),
    [
        ({"cooling_temperature_set_point": 2700}, 2700, None),
        ({"heating_temperature_offset": 15, "duty_cycle": 40}, None, 1850),
        ({"cooling_temperature_set_point": 2550, "cooling_temperature_offset": 40}, 2550, None),
        ({"average_load_adjustment_percentage": -30}, None, None),
    ],
)
async def test_thermostat_applies_what_it_reports(tmp_path, fields, cooling, heating):
    han, thermostat = await joined(tmp_path, "thermostat")
    report = await started_report(han, "thermostat", lce(0x1300_0002, HVAC, **fields))
    assert (thermostat.cooling_set_point, thermostat.heating_set_point) == (
        2400 if cooling is None else cooling,
        2000 if heating is None else heating,
    )
    assert report.cooling_temperature_set_point_applied == (
        SET_POINT_NOT_USED if cooling is None else cooling
    )
    assert report.heating_temperature_set_point_applied == (
        SET_POINT_NOT_USED if heating is None else heating
    )
    assert report.duty_cycle_applied == DUTY_CYCLE_NOT_USED  # a thermostat has no duty cycle
    assert report.average_load_adjustment_percentage_applied == AVERAGE_LOAD_ADJUSTMENT_NOT_USED
    await close(han)


@pytest.mark.parametrize(
    ("fields", "duty", "load", "output"),
    [
        ({"duty_cycle": 40}, 40, None, 40),
        ({"average_load_adjustment_percentage": -60}, None, -60, 40),
        ({"duty_cycle": 70, "average_load_adjustment_percentage": -50}, 70, -50, 50),
        ({"cooling_temperature_set_point": 2600}, None, None, 100),
    ],
)
async def test_load_control_device_applies_what_it_reports(tmp_path, fields, duty, load, output):
    han, lcd = await joined(tmp_path, "lcd")
    assert isinstance(lcd, LoadControlDevice)
    report = await started_report(han, "lcd", lce(0x1300_0003, WATER_HEATER, **fields))
    assert report.duty_cycle_applied == (DUTY_CYCLE_NOT_USED if duty is None else duty)
    assert report.average_load_adjustment_percentage_applied == (
        AVERAGE_LOAD_ADJUSTMENT_NOT_USED if load is None else load
    )
    assert report.cooling_temperature_set_point_applied == SET_POINT_NOT_USED
    assert lcd.duty_cycle == output
    assert lcd.on == (output > 0)
    await close(han)


async def test_thermostat_offsets_count_from_the_users_set_point_of_now(tmp_path):
    """The user's set points are the core's normal ones: an offset event after a change moves
    the new one, and the report says so."""
    han, thermostat = await joined(tmp_path, "thermostat", heating_set_point=1900)
    thermostat.user_cooling_set_point = 2500
    event = lce(0x1300_0004, HVAC, cooling_temperature_offset=10, heating_temperature_offset=5)
    report = await started_report(han, "thermostat", event)
    assert (thermostat.cooling_set_point, thermostat.heating_set_point) == (2600, 1850)
    assert report.cooling_temperature_set_point_applied == 2600
    assert report.heating_temperature_set_point_applied == 1850
    assert report.criticality_level_applied == 0x03
    await close(han)
