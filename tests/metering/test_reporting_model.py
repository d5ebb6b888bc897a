"""The indexed :class:`ReportingEngine` against a plain model of ZCL 2.5.7-2.5.11.

:class:`ScanEngine` below re-derives every record's due time from scratch on every question
(the rules as the spec states them, no index); random configurations, updates and times must
give exactly the same statuses, deadlines and reports, in the same order, from both. The
benchmark ``benchmarks/meter_reports.py`` times it as the "scan" reference.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl.foundation import Status

from zse.zcl.reporting import NO_REPORTING, Report, ReportingConfig, ReportingEngine

D = TypeVar("D", bound=Hashable)


@dataclass
class _Record:
    config: ReportingConfig
    baseline: int | None  # the value last reported (or current when configured)
    since: int  # when it was last reported (or configured)


class ScanEngine(Generic[D]):
    """Reporting as the spec says it, recomputed over every record each time."""

    def __init__(self, attributes: Mapping[int, bool]) -> None:
        self.analog = dict(attributes)
        self.values: dict[int, int] = {}
        self.records: dict[tuple[D, int], _Record] = {}  # in configuration order

    def configure(self, destination: D, config: ReportingConfig, now: int) -> Status:
        # an attribute not supported; one without a value yet is configured and waits for it
        if config.attribute not in self.analog:
            return Status.UNSUPPORTED_ATTRIBUTE
        if config.max_interval == NO_REPORTING:
            self.records.pop((destination, config.attribute), None)
            return Status.SUCCESS
        lo, hi, change = config.min_interval, config.max_interval, config.reportable_change
        if lo < 0 or hi < 0 or lo > 0xFFFF or (hi and lo > hi) or (change or 0) < 0:
            return Status.INVALID_VALUE
        if not self.analog[config.attribute]:
            config = ReportingConfig(attribute=config.attribute, min_interval=lo, max_interval=hi)
        record = _Record(config, self.values.get(config.attribute), now)
        self.records[(destination, config.attribute)] = record
        return Status.SUCCESS

    def read_configuration(self, destination: D, attribute: int) -> ReportingConfig | None:
        record = self.records.get((destination, attribute))
        return None if record is None else record.config

    def update(self, attribute: int, value: int) -> None:
        self.values[attribute] = value

    def value(self, attribute: int) -> int | None:
        return self.values.get(attribute)

    def due(self, record: _Record) -> int | None:
        value = self.values.get(record.config.attribute)
        if value is None:
            return None
        candidates = []
        if record.config.max_interval != 0:
            candidates.append(record.since + record.config.max_interval)
        step = record.config.reportable_change or 0
        if record.baseline is None:
            moved = True
        elif step == 0:
            moved = value != record.baseline
        else:
            moved = abs(value - record.baseline) >= step
        if moved:
            candidates.append(record.since + record.config.min_interval)
        return min(candidates) if candidates else None

    def next_deadline(self) -> int | None:
        times = [self.due(r) for r in self.records.values()]
        known = [t for t in times if t is not None]
        return min(known) if known else None

    def handle_timeout(self, now: int) -> tuple[Report[D], ...]:
        firing = []
        for (destination, attribute), record in self.records.items():
            when = self.due(record)
            if when is not None and when <= now:
                firing.append((attribute, destination, record))
        firing.sort(key=lambda item: item[0])  # stable: record order within an attribute
        grouped: dict[D, list[tuple[int, int]]] = {}
        for attribute, destination, record in firing:
            value = self.values[attribute]
            record.baseline, record.since = value, now
            grouped.setdefault(destination, []).append((attribute, value))
        return tuple(Report(d, tuple(pairs)) for d, pairs in grouped.items())


ANALOG_A, ANALOG_B, DISCRETE, UNKNOWN = 0x0000, 0x0400, 0x0200, 0x0999
ATTRIBUTES = {ANALOG_A: True, ANALOG_B: True, DISCRETE: False}

configs = st.builds(
    lambda attribute, lo, hi, change: ReportingConfig(
        attribute=attribute, min_interval=lo, max_interval=hi, reportable_change=change
    ),
    st.sampled_from([ANALOG_A, ANALOG_B, DISCRETE, UNKNOWN]),
    st.integers(0, 40),
    st.sampled_from([0, 5, 10, 30, 60, NO_REPORTING]) | st.integers(-1, 70),
    st.none() | st.integers(-1, 6),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("configure"), st.integers(0, 4), configs),
        st.tuples(st.just("update"), st.sampled_from(sorted(ATTRIBUTES)), st.integers(0, 20)),
        st.tuples(st.just("late"), st.integers(0, 45)),  # handle_timeout some time later
        st.tuples(st.just("deadlines"), st.integers(0, 90)),  # every deadline up to then
    ),
    max_size=60,
)


@settings(max_examples=400)
@given(operations)
def test_indexed_engine_matches_the_scan_model(ops: list[tuple[Any, ...]]) -> None:
    fast: ReportingEngine[int] = ReportingEngine(ATTRIBUTES)
    model: ScanEngine[int] = ScanEngine(ATTRIBUTES)
    now = 0
    for op in ops:
        if op[0] == "configure":
            _, destination, config = op
            status = fast.configure(destination, config, now)
            assert status == model.configure(destination, config, now)
            for attribute in ATTRIBUTES:
                record = model.read_configuration(destination, attribute)
                found = fast.read_configuration(destination, attribute)
                assert found == ((Status.NOT_FOUND, None) if record is None else (0, record))
        elif op[0] == "update":
            fast.update(op[1], op[2])
            model.update(op[1], op[2])
        elif op[0] == "late":
            now += op[1]
            assert fast.handle_timeout(now) == model.handle_timeout(now)
        else:
            until = now + op[1]
            while (deadline := model.next_deadline()) is not None and deadline <= until:
                assert fast.next_deadline() == deadline
                now = max(now, deadline)
                reports = model.handle_timeout(now)
                assert reports  # a deadline always has something to send
                assert fast.handle_timeout(now) == reports
            now = until
        assert fast.next_deadline() == model.next_deadline()


def test_the_index_stays_bounded_under_reconfiguration() -> None:
    """Records reconfigured over and over leave stale timer items behind; they are swept."""
    engine: ReportingEngine[int] = ReportingEngine(ATTRIBUTES)
    engine.update(ANALOG_A, 0)
    for round_ in range(200):
        for destination in range(10):
            config = ReportingConfig(
                attribute=ANALOG_A, min_interval=1, max_interval=1000 + round_, reportable_change=1
            )
            engine.configure(destination, config, round_)
        engine.update(ANALOG_A, round_ % 3)
    assert len(engine._timer) <= 4 * 10 + 64
    assert engine.next_deadline() == 200  # value 1 against the baseline 0: due after min 1


def test_a_change_that_goes_back_and_returns_is_still_reported_at_the_minimum() -> None:
    """A change withdrawn before its minimum interval (its timer item dropped as stale) and
    made again is due at the minimum interval, not only at the maximum."""
    engine: ReportingEngine[str] = ReportingEngine(ATTRIBUTES)
    engine.update(ANALOG_A, 100)
    config = ReportingConfig(
        attribute=ANALOG_A, min_interval=10, max_interval=600, reportable_change=5
    )
    engine.configure("display", config, 0)
    engine.update(ANALOG_A, 110)
    assert engine.next_deadline() == 10
    engine.update(ANALOG_A, 101)
    assert engine.next_deadline() == 600
    engine.update(ANALOG_A, 120)
    assert engine.next_deadline() == 10
    assert engine.handle_timeout(10) == (Report("display", ((ANALOG_A, 120),)),)
