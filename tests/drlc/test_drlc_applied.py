"""Load-control field meaning in the DRLC client core (issue 13 item 3): the core decides what
an event asks a device to apply (:func:`zse.drlc.decide`), hands that to the application and
puts the same values in the Report Event Status (SE D.2.2.3.1.1.6-12, D.2.3.3.1.1.4-8)."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.drlc import (
    AVERAGE_LOAD_ADJUSTMENT_NOT_USED,
    DUTY_CYCLE_NOT_USED,
    LOAD_FIELDS,
    SET_POINT_NOT_USED,
    TEMPERATURE_FIELDS,
    TEMPERATURE_OFFSET_NOT_USED,
    Abilities,
    Applied,
    ApplyLoadControl,
    DrlcClientCore,
    LoadControlEvent,
    Status,
    Step,
    decide,
)
from zse.drlc.core import APPLIABLE  # not in zse.drlc's __all__
from zse.records import RecordError

HVAC = 0x0001
WATER_HEATER = 0x0004
T0 = 800_000_000
MIN = 60
#: Statuses whose report says what the device applies (not an opt-out, not a rejection).
APPLYING = {
    Status.RECEIVED,
    Status.STARTED,
    Status.OPTED_IN,
    Status.COMPLETED,
    Status.CANCELLED,
    Status.SUPERSEDED,
    Status.PARTIALLY_COMPLETED_OPT_OUT,
    Status.PARTIALLY_COMPLETED_OPT_IN,
}


def run(core: DrlcClientCore, until: int) -> Step:
    step = Step()
    while (deadline := core.next_deadline()) is not None and deadline <= until:
        step.extend(core.handle_timeout(deadline))
    return step


# -- the device, as the HAN roles run it, and what the spec says it should run at ---------------


@dataclasses.dataclass(frozen=True)
class Device:
    """A device's state under an event: set points (0.01 °C) and the share of on-time (%)."""

    cooling: int
    heating: int
    on_percent: int


def running(applied: Applied, abilities: Abilities) -> Device:
    """What a role runs at when handed ``applied`` (zse.roles.han: thermostat, load control)."""
    return Device(
        applied.cooling_set_point(abilities.normal_cooling_set_point),
        applied.heating_set_point(abilities.normal_heating_set_point),
        applied.on_percent,
    )


def spec(event: LoadControlEvent, abilities: Abilities) -> Device:
    """The oracle, written from the field definitions: a set point replaces the normal one and
    overrides the offset; a cooling offset (0.1 °C) raises the normal cooling set point, a
    heating offset lowers the heating one; a duty cycle caps the on-time; a load adjustment
    caps it at 100 % plus the adjustment; 0xFF / 0x8000 / 0x80 mean "not used"; a field the
    device does not act on changes nothing."""
    cooling, heating, share = (
        abilities.normal_cooling_set_point,
        abilities.normal_heating_set_point,
        100,
    )
    acts = abilities.applies
    if "cooling_temperature_set_point" in acts:
        if event.cooling_temperature_set_point != -0x8000:
            cooling = event.cooling_temperature_set_point
        elif event.cooling_temperature_offset != 0xFF and cooling != -0x8000:
            cooling = min(0x7FFF, cooling + 10 * event.cooling_temperature_offset)
    if "heating_temperature_set_point" in acts:
        if event.heating_temperature_set_point != -0x8000:
            heating = event.heating_temperature_set_point
        elif event.heating_temperature_offset != 0xFF and heating != -0x8000:
            heating = max(-27315, heating - 10 * event.heating_temperature_offset)
    if "duty_cycle" in acts and event.duty_cycle != 0xFF:
        share = event.duty_cycle
    load = event.average_load_adjustment_percentage
    if "average_load_adjustment_percentage" in acts and load != -0x80:
        share = max(0, min(share, 100 + load))
    return Device(cooling, heating, share)


set_points = st.one_of(st.just(SET_POINT_NOT_USED), st.integers(-27315, 0x7FFF))
offsets = st.one_of(st.just(TEMPERATURE_OFFSET_NOT_USED), st.integers(0, 254))
events = st.builds(
    LoadControlEvent,
    issuer_event_id=st.integers(1, 0xFFFFFFFE),
    device_class=st.sampled_from([HVAC, WATER_HEATER, HVAC | WATER_HEATER, 0x0FFF, 0x0002]),
    start_time=st.integers(0, 20 * MIN).map(lambda s: 0 if s == 0 else T0 + s),
    duration_in_minutes=st.integers(1, 120),
    criticality_level=st.integers(1, 0x0F),
    cooling_temperature_offset=offsets,
    heating_temperature_offset=offsets,
    cooling_temperature_set_point=set_points,
    heating_temperature_set_point=set_points,
    average_load_adjustment_percentage=st.one_of(
        st.just(AVERAGE_LOAD_ADJUSTMENT_NOT_USED), st.integers(-100, 100)
    ),
    duty_cycle=st.one_of(st.just(DUTY_CYCLE_NOT_USED), st.integers(0, 100)),
    event_control=st.integers(0, 3),
)
devices = st.one_of(
    # the thermostat role: HVAC, set points with the user's normal ones
    st.builds(
        lambda cooling, heating: (
            HVAC,
            Abilities(
                applies=TEMPERATURE_FIELDS,
                normal_cooling_set_point=cooling,
                normal_heating_set_point=heating,
            ),
        ),
        st.integers(-27315, 0x7FFF),
        st.integers(-27315, 0x7FFF),
    ),
    # the load control device role: a water heater switch
    st.just((WATER_HEATER, Abilities(applies=LOAD_FIELDS))),
    # any other device: any classes, any fields, maybe no normal set points
    st.builds(
        lambda device_class, applies, cooling, heating: (
            device_class,
            Abilities(
                applies=applies, normal_cooling_set_point=cooling, normal_heating_set_point=heating
            ),
        ),
        st.integers(1, 0x0FFF),
        st.frozensets(st.sampled_from(sorted(APPLIABLE))),
        set_points,
        set_points,
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    event=events,
    device=devices,
    opt_out_at=st.one_of(st.none(), st.integers(0, 150 * MIN)),
    opt_in_at=st.one_of(st.none(), st.integers(0, 150 * MIN)),
    seed=st.integers(0, 100),
)
def test_what_a_device_applies_is_what_it_reports(event, device, opt_out_at, opt_in_at, seed):
    """For any Load Control Event and any thermostat, load control device or other device: each
    ApplyLoadControl carries the values of the device's reports, the device runs at what the
    field definitions say, and a report never says "not used" for a field the device acts on."""
    device_class, abilities = device
    core = DrlcClientCore(
        device_class=device_class,
        abilities=abilities,
        start_randomization_minutes=5,
        duration_randomization_minutes=5,
        rng=random.Random(seed),
    )
    step = core.receive_event(event, esi="esi", now=T0)
    for at, opted_out in sorted(
        (at, out) for at, out in ((opt_out_at, True), (opt_in_at, False)) if at is not None
    ):
        step.extend(run(core, T0 + at))
        if event.issuer_event_id in core:
            if opted_out and event.criticality_level not in (7, 8, 9):
                step.extend(core.opt_out(event.issuer_event_id, now=T0 + at))
            elif not opted_out:
                step.extend(core.opt_in(event.issuer_event_id, now=T0 + at))
    step.extend(run(core, T0 + 200 * MIN))
    if not core.targets_me(event.device_class, event.utility_enrollment_group):
        assert not step
        return
    applies = [a for a in step.actions if isinstance(a, ApplyLoadControl)]
    reported = [
        Applied.from_report(o.report) for o in step.reports if o.report.event_status in APPLYING
    ]
    assert reported  # received, at least
    expected = spec(event, abilities)
    for applied in reported:  # one decision, whatever the status
        assert applied == reported[0]
        assert running(applied, abilities) == expected
    for action in applies:
        assert action.applied == reported[0]
        assert running(action.applied, abilities) == expected
    for o in step.reports:
        if o.report.event_status in (Status.OPTED_OUT, Status.COMPLETED_NO_PARTICIPATION):
            assert Applied.from_report(o.report) == Applied(
                criticality_level=event.criticality_level
            )  # nothing applied
        assert o.report.criticality_level_applied == event.criticality_level


# -- the 26.00 °C defect, on the core -------------------------------------------------------------


def thermostat(cooling: int = 2400, heating: int = 2000) -> DrlcClientCore:
    return DrlcClientCore(
        device_class=HVAC,
        start_randomization_minutes=0,
        abilities=Abilities(
            applies=TEMPERATURE_FIELDS,
            normal_cooling_set_point=cooling,
            normal_heating_set_point=heating,
        ),
    )


def offset_event(issuer_event_id: int = 1, **fields: int) -> LoadControlEvent:
    return LoadControlEvent(
        issuer_event_id=issuer_event_id,
        device_class=HVAC,
        duration_in_minutes=30,
        criticality_level=3,
        **fields,
    )


def test_a_cooling_offset_is_applied_and_reported_as_the_set_point_it_makes():
    """Regression: 24.00 °C + 2.0 °C ran the thermostat at 26.00 °C while its report said
    "set point not used" (0x8000)."""
    got = thermostat().receive_event(offset_event(cooling_temperature_offset=20), esi="a", now=T0)
    (action,) = got.actions
    assert action.applied.cooling_temperature_set_point == 2600
    assert action.applied.heating_temperature_set_point == SET_POINT_NOT_USED
    started = got.reports[1].report
    assert started.event_status == Status.STARTED
    assert started.cooling_temperature_set_point_applied == 2600
    assert started.heating_temperature_set_point_applied == SET_POINT_NOT_USED


def test_an_offset_counts_from_the_normal_set_point_at_the_start():
    """D.2.2.3.1.1.7: the offset applies to the normal set point at the start of the event; a
    change of the user's set point while the event runs does not move it."""
    core = thermostat()
    core.receive_event(
        offset_event(start_time=T0 + MIN, heating_temperature_offset=15), esi="a", now=T0
    )
    core.abilities = dataclasses.replace(core.abilities, normal_heating_set_point=2100)
    started = core.handle_timeout(T0 + MIN)
    assert started.actions[0].applied.heating_temperature_set_point == 1950  # 21.00 - 1.5
    core.abilities = dataclasses.replace(core.abilities, normal_heating_set_point=1800)
    ended = run(core, T0 + 40 * MIN)
    assert ended.reports[0].report.event_status == Status.COMPLETED
    assert ended.reports[0].report.heating_temperature_set_point_applied == 1950


def test_the_start_decision_survives_a_restart():
    core = thermostat()
    core.receive_event(offset_event(cooling_temperature_offset=5), esi="a", now=T0)
    snapshot = core.snapshot()
    again = thermostat(cooling=2000)  # the user changed it while the device was down
    again.restore(snapshot)
    (resumed,) = again.resume()
    assert resumed.applied.cooling_temperature_set_point == 2450
    # A table stored before the decision was kept decides again from the abilities of now.
    del snapshot["entries"]["1"]["applied"]
    again.restore(snapshot)
    assert again.resume()[0].applied.cooling_temperature_set_point == 2050


def test_a_stored_decision_of_the_wrong_shape_is_a_record_error():
    core = thermostat()
    core.receive_event(offset_event(cooling_temperature_offset=5), esi="a", now=T0)
    snapshot = core.snapshot()
    snapshot["entries"]["1"]["applied"]["duty_cycle"] = 300
    with pytest.raises(RecordError, match="duty_cycle"):
        thermostat().restore(snapshot)


@pytest.mark.parametrize(
    ("fields", "cooling", "heating"),
    [
        ({}, SET_POINT_NOT_USED, SET_POINT_NOT_USED),
        ({"cooling_temperature_set_point": 2550, "cooling_temperature_offset": 40}, 2550, None),
        ({"heating_temperature_offset": 0}, None, 2000),  # a zero offset keeps the normal one
        ({"cooling_temperature_offset": 254}, 2400 + 2540, None),
        (
            {"heating_temperature_set_point": -0x8000, "heating_temperature_offset": 0xFF},
            None,
            None,
        ),
    ],
)
def test_set_point_or_offset(fields, cooling, heating):
    applied = decide(offset_event(**fields), thermostat().abilities)
    assert applied.cooling_temperature_set_point == (
        SET_POINT_NOT_USED if cooling is None else cooling
    )
    assert applied.heating_temperature_set_point == (
        SET_POINT_NOT_USED if heating is None else heating
    )


def test_offsets_stay_within_what_a_report_can_carry():
    hot = Abilities(applies=TEMPERATURE_FIELDS, normal_cooling_set_point=0x7F00)
    cold = Abilities(applies=TEMPERATURE_FIELDS, normal_heating_set_point=-27000)
    event = offset_event(cooling_temperature_offset=254, heating_temperature_offset=254)
    assert decide(event, hot).cooling_temperature_set_point == 0x7FFF
    assert decide(event, cold).heating_temperature_set_point == -27315
    # Without a normal set point an offset cannot be applied, and is reported "not used".
    assert decide(event, Abilities()).cooling_temperature_set_point == SET_POINT_NOT_USED


def test_fields_a_device_does_not_act_on_are_not_applied():
    event = offset_event(cooling_temperature_set_point=2600, duty_cycle=40)
    assert decide(event, Abilities(applies=LOAD_FIELDS)) == Applied(
        criticality_level=3, duty_cycle=40
    )
    assert decide(event, thermostat().abilities) == Applied(
        criticality_level=3, cooling_temperature_set_point=2600
    )


def test_load_control_share_of_on_time():
    assert Applied(criticality_level=1).on_percent == 100
    assert Applied(criticality_level=1, duty_cycle=0).on_percent == 0
    assert Applied(criticality_level=1, average_load_adjustment_percentage=-100).on_percent == 0
    assert Applied(criticality_level=1, average_load_adjustment_percentage=20).on_percent == 100
    both = Applied(criticality_level=1, duty_cycle=70, average_load_adjustment_percentage=-50)
    assert both.on_percent == 50


def test_abilities_are_checked():
    with pytest.raises(ValueError, match="unknown applied fields"):
        Abilities(applies=frozenset({"price"}))
    with pytest.raises(ValueError, match="normal_cooling_set_point -30000 is outside"):
        Abilities(normal_cooling_set_point=-30000)
    with pytest.raises(ValueError, match="not both"):
        DrlcClientCore(device_class=HVAC, applies=LOAD_FIELDS, abilities=Abilities())
    assert DrlcClientCore(device_class=HVAC, applies=["duty_cycle"]).applies == {"duty_cycle"}
