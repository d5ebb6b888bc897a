"""ZCL attribute reporting (ZCL 2.5.7-2.5.11) as a sans-IO engine, at exact times."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from zse.zcl.reporting import (
    NO_REPORTING,
    Report,
    ReportingConfig,
    ReportingEngine,
    report_payload,
)

SUMM, STATUS = 0x0000, 0x0200


def engine() -> ReportingEngine[str]:
    e: ReportingEngine[str] = ReportingEngine({SUMM: True, STATUS: False})
    e.update(SUMM, 1000)
    e.update(STATUS, 0)
    return e


def cfg(attr: int = SUMM, lo: int = 10, hi: int = 60, change: int | None = 5) -> ReportingConfig:
    return ReportingConfig(
        attribute=attr, min_interval=lo, max_interval=hi, reportable_change=change
    )


# (description, config, [(time, new value)], expected [(time, reported value)] up to t=130)
CASES = [
    ("small change waits for the maximum interval", cfg(), [(5, 1003)], [(60, 1003), (120, 1003)]),
    (
        "big change, no earlier than the minimum interval",
        cfg(),
        [(2, 1010)],
        [(10, 1010), (70, 1010), (130, 1010)],
    ),
    (
        "big change after the minimum interval goes at once",
        cfg(),
        [(25, 1006)],
        [(25, 1006), (85, 1006)],
    ),
    ("periodic only", cfg(), [], [(60, 1000), (120, 1000)]),
    ("max 0: change-based only", cfg(hi=0), [(3, 1001), (40, 1020)], [(40, 1020)]),
    ("max 0, min 0: change at once", cfg(lo=0, hi=0), [(3, 1030)], [(3, 1030)]),
    ("reportable change 0: any change", cfg(change=0, hi=0), [(7, 1001)], [(10, 1001)]),
    ("change equal to the reportable change", cfg(hi=0), [(12, 1005)], [(12, 1005)]),
    ("change accumulates past the step", cfg(hi=0), [(12, 1003), (20, 1006)], [(20, 1006)]),
]


def run(
    config: ReportingConfig, changes: list[tuple[int, int]], until: int = 130
) -> list[tuple[int, int]]:
    e = engine()
    assert e.configure("d", config, 0) == foundation.Status.SUCCESS
    pending = list(changes)
    seen: list[tuple[int, int]] = []
    now = 0
    while True:
        deadline = e.next_deadline()
        next_change = pending[0][0] if pending else None
        candidates = [x for x in (deadline, next_change) if x is not None]
        if not candidates or min(candidates) > until:
            return seen
        now = max(now, min(candidates))
        if next_change == now and (deadline is None or next_change <= deadline):
            e.update(config.attribute, pending.pop(0)[1])
            continue
        for report in e.handle_timeout(now):
            assert report.destination == "d"
            seen.extend((now, value) for _, value in report.attributes)


@pytest.mark.parametrize(
    ("name", "config", "changes", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_reporting_times(
    name: str,
    config: ReportingConfig,
    changes: list[tuple[int, int]],
    expected: list[tuple[int, int]],
) -> None:
    assert run(config, changes) == expected


def test_discrete_attribute_reports_any_change_after_min() -> None:
    e = engine()
    e.configure("d", cfg(STATUS, lo=4, hi=0, change=99), 0)
    e.update(STATUS, 1)
    assert e.next_deadline() == 4
    assert e.handle_timeout(3) == ()
    assert e.handle_timeout(4) == (Report("d", ((STATUS, 1),)),)
    assert e.next_deadline() is None


def test_due_together_coalesce_per_destination() -> None:
    e = engine()
    e.configure("a", cfg(SUMM, hi=30), 0)
    e.configure("a", cfg(STATUS, hi=30), 0)
    e.configure("b", cfg(SUMM, hi=30), 0)
    assert e.handle_timeout(30) == (
        Report("a", ((SUMM, 1000), (STATUS, 0))),
        Report("b", ((SUMM, 1000),)),
    )
    assert e.next_deadline() == 60


def test_reconfiguration_replaces_and_0xffff_stops() -> None:
    e = engine()
    e.configure("d", cfg(hi=60), 0)
    assert e.next_deadline() == 60
    e.configure("d", cfg(hi=20), 5)
    assert e.next_deadline() == 25
    assert e.read_configuration("d", SUMM) == (foundation.Status.SUCCESS, cfg(hi=20))
    e.configure("d", cfg(hi=NO_REPORTING), 6)
    assert e.next_deadline() is None
    assert e.read_configuration("d", SUMM) == (foundation.Status.NOT_FOUND, None)


@pytest.mark.parametrize(
    ("config", "status"),
    [
        (cfg(attr=0x0999), foundation.Status.UNSUPPORTED_ATTRIBUTE),
        (cfg(lo=61, hi=60), foundation.Status.INVALID_VALUE),
        (cfg(change=-1), foundation.Status.INVALID_VALUE),
        (cfg(lo=61, hi=0), foundation.Status.SUCCESS),
    ],
)
def test_configure_statuses(config: ReportingConfig, status: foundation.Status) -> None:
    assert engine().configure("d", config, 0) == status


def test_read_configuration_statuses() -> None:
    e: ReportingEngine[str] = ReportingEngine({SUMM: True, STATUS: False}, reportable=[SUMM])
    e.update(SUMM, 1000)
    e.update(STATUS, 0)
    assert e.read_configuration("d", 0x0999)[0] == foundation.Status.UNSUPPORTED_ATTRIBUTE
    assert e.read_configuration("d", STATUS)[0] == foundation.Status.UNREPORTABLE_ATTRIBUTE
    assert e.configure("d", cfg(STATUS), 0) == foundation.Status.UNREPORTABLE_ATTRIBUTE
    e.configure("d", cfg(), 0)
    assert e.read_configuration("d", SUMM) == (foundation.Status.SUCCESS, cfg())
    assert e.read_configuration("other", SUMM)[0] == foundation.Status.NOT_FOUND


def test_discrete_config_drops_reportable_change() -> None:
    e = engine()
    e.configure("d", cfg(STATUS, change=7), 0)
    assert e.read_configuration("d", STATUS) == (
        foundation.Status.SUCCESS,
        cfg(STATUS, change=None),
    )


def test_never_set_value_is_not_due() -> None:
    e: ReportingEngine[str] = ReportingEngine({SUMM: True})
    assert e.configure("d", cfg(), 0) == foundation.Status.SUCCESS
    assert e.next_deadline() is None
    e.update(SUMM, 1000)  # the first value: no baseline, due at the minimum interval
    assert e.next_deadline() == 10


def test_a_supported_attribute_without_a_value_is_configured() -> None:
    """Support is the attributes the engine is built with, not having a value: one without
    a value yet (a meter's demand before its first reading) was refused
    UNSUPPORTED_ATTRIBUTE (0df1343), so a device that configures reporting once when it
    joins never got its reports. It is configured and read back now, due once the value
    comes; an attribute not supported is refused (ZCL 2.5.7.3, 2.5.9.3)."""
    e: ReportingEngine[str] = ReportingEngine({SUMM: True, STATUS: False}, reportable=[SUMM])
    assert e.supports(SUMM)
    assert e.configure("d", cfg(), 0) == foundation.Status.SUCCESS
    assert e.read_configuration("d", SUMM) == (foundation.Status.SUCCESS, cfg())
    assert e.configure("d", cfg(STATUS), 0) == foundation.Status.UNREPORTABLE_ATTRIBUTE
    assert e.next_deadline() is None
    e.update(SUMM, 1000)
    assert e.next_deadline() == 10
    unsupported = foundation.Status.UNSUPPORTED_ATTRIBUTE
    assert not e.supports(0x0400)
    assert e.configure("d", cfg(0x0400), 0) == unsupported
    assert e.configure("d", cfg(0x0400, hi=NO_REPORTING), 0) == unsupported
    assert e.read_configuration("d", 0x0400) == (unsupported, None)


_TYPES = {SUMM: 0x25, 0x0400: 0x2A, STATUS: 0x18}  # uint48, int24, map8
_RECORD = st.one_of(
    st.tuples(st.just(SUMM), st.integers(0, (1 << 48) - 1)),
    st.tuples(st.just(0x0400), st.integers(-(1 << 23), (1 << 23) - 1)),
    st.tuples(st.just(STATUS), st.integers(0, 0xFF)),
)


@given(st.lists(_RECORD, max_size=5))
def test_report_payload_is_zigpys_report_attributes(pairs: list[tuple[int, int]]) -> None:
    """Report Attributes' payload (ZCL 2.5.11.1) is what zigpy serializes for the same
    records: id, data type, value in that type."""
    expected = b"".join(
        foundation.Attribute(
            attr,
            foundation.TypeValue(
                type=foundation.DataTypeId(_TYPES[attr]),
                value=foundation.DataType.from_type_id(
                    foundation.DataTypeId(_TYPES[attr])
                ).python_type(value),
            ),
        ).serialize()
        for attr, value in pairs
    )
    assert report_payload(pairs, _TYPES) == expected


# -- the records held, for an operator to see (#14, `zse esi` meter) -----------------------------


def test_configurations_lists_the_records_in_the_order_configured() -> None:
    e = engine()
    assert e.configurations() == ()
    e.configure("ihd", cfg(), 0)
    e.configure("thermostat", cfg(STATUS, 1, 30, None), 0)
    e.configure("ihd", cfg(lo=20, hi=120, change=7), 5)  # reconfigured: keeps its place
    e.configure("thermostat", cfg(SUMM), 6)
    assert e.configurations() == (
        ("ihd", cfg(lo=20, hi=120, change=7)),
        ("thermostat", ReportingConfig(attribute=STATUS, min_interval=1, max_interval=30)),
        ("thermostat", cfg(SUMM)),
    )
    e.configure("ihd", cfg(hi=NO_REPORTING), 8)  # 0xFFFF: reporting stops, the record goes
    assert [(who, c.attribute) for who, c in e.configurations()] == [
        ("thermostat", STATUS),
        ("thermostat", SUMM),
    ]
