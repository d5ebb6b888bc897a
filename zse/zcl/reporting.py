"""Attribute reporting (ZCL 2.5.7-2.5.11) as a sans-IO engine any server cluster can reuse.

Configure Reporting (ZCL 2.5.7) leaves one record per (destination, attribute): a minimum
and a maximum reporting interval and, for an analog attribute, a reportable change. The
engine is told each attribute's value with :meth:`ReportingEngine.update` and decides when
Report Attributes (ZCL 2.5.11) go out: a change of at least the reportable change (any
change for a discrete attribute) is reported once the minimum interval since the last report
has passed; with no such change the value is reported when the maximum interval has passed.
A maximum of 0 means no periodic report (change-based reporting only); 0xFFFF means the
attribute is not reported to that destination and the record is removed (ZCL 2.5.7.1.6).
Configuring sets the baseline: the value then current counts as reported at that time.
The attributes the engine is built with are those the server supports: any other is refused
UNSUPPORTED_ATTRIBUTE (ZCL 2.5.7.3, 2.5.9.3). A supported attribute without a value yet (a
meter's demand before its first reading) is configured all the same: its records wait for
the value, which is due at their minimum interval once it comes.
Attributes due together for a destination leave as one report. Time is whole seconds, an
argument; nothing here does I/O.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from zigpy.zcl.foundation import DataType, DataTypeId, Status

__all__ = ["NO_REPORTING", "Report", "ReportingConfig", "ReportingEngine", "report_payload"]

#: Maximum reporting interval meaning "do not report this attribute" (ZCL 2.5.7.1.6).
NO_REPORTING = 0xFFFF

D = TypeVar("D", bound=Hashable)


@dataclass(frozen=True, kw_only=True)
class ReportingConfig:
    """One Configure Reporting record (ZCL 2.5.7.1), direction "reported by this server"."""

    attribute: int
    min_interval: int
    max_interval: int
    #: The smallest change reported before the maximum interval (analog attributes only).
    reportable_change: int | None = None


@dataclass(frozen=True)
class Report(Generic[D]):
    """One Report Attributes command (ZCL 2.5.11) to send: (attribute, value) by id."""

    destination: D
    attributes: tuple[tuple[int, int], ...]


@dataclass(eq=False, slots=True)
class _Entry(Generic[D]):
    """One reporting record and what was last reported under it."""

    key: tuple[D, int]
    config: ReportingConfig
    last_value: int | None
    last_time: int
    #: Position among the records (kept when reconfigured): the order reports are listed in.
    seq: int
    #: Bumped whenever last_time or the config changes: older timer items are stale.
    version: int = 0
    #: A change item with the current version is in the timer heap.
    change_queued: bool = False
    cohort: _Cohort[D] | None = None


@dataclass(eq=False, slots=True)
class _Cohort(Generic[D]):
    """The records of one attribute with the same last reported value and reportable change:
    they all see the same change, so an update tests each cohort once, not each record."""

    last_value: int | None
    step: int
    changed: bool
    entries: dict[tuple[D, int], _Entry[D]]


#: Timer item kinds: the maximum interval ran out, or a reportable change waits out the minimum.
_MAX, _CHANGE = 0, 1


class ReportingEngine(Generic[D]):
    """Reporting records, values and due reports of one server cluster.

    ``attributes`` maps each attribute the cluster has to whether it is analog (a reportable
    change applies) or discrete; ``reportable`` names those that may be reported (default
    all of them).

    Scales with the number of records: due times sit in a heap (stale items dropped when they
    surface), and the records of an attribute are grouped by last reported value, so an
    update, :meth:`next_deadline` and each due report cost O(log n) or the records they touch.
    """

    def __init__(
        self, attributes: Mapping[int, bool], reportable: Iterable[int] | None = None
    ) -> None:
        self._analog = dict(attributes)
        self._reportable = frozenset(self._analog if reportable is None else reportable)
        self._values: dict[int, int] = {}
        self._entries: dict[tuple[D, int], _Entry[D]] = {}
        self._cohorts: dict[int, dict[tuple[int | None, int], _Cohort[D]]] = {}
        # (due, seq, kind, version, key): seq is unique per record, so keys never compare.
        self._timer: list[tuple[int, int, int, int, tuple[D, int]]] = []
        self._seq = itertools.count()
        self._version = itertools.count(1)

    def configure(self, destination: D, config: ReportingConfig, now: int) -> Status:
        """Apply one Configure Reporting record; the status of its response record (2.5.8):
        UNSUPPORTED_ATTRIBUTE for an attribute not supported (:meth:`supports`; ZCL
        2.5.7.3). One without a value yet is configured: due once its value comes."""
        if not self.supports(config.attribute):
            return Status.UNSUPPORTED_ATTRIBUTE
        if config.attribute not in self._reportable:
            return Status.UNREPORTABLE_ATTRIBUTE
        key = (destination, config.attribute)
        if config.max_interval == NO_REPORTING:
            removed = self._entries.pop(key, None)
            if removed is not None:
                self._leave_cohort(removed)
            return Status.SUCCESS
        periodic = config.max_interval != 0
        if (
            not 0 <= config.min_interval <= 0xFFFF
            or not 0 <= config.max_interval <= 0xFFFF
            or (periodic and config.min_interval > config.max_interval)
            or (config.reportable_change is not None and config.reportable_change < 0)
        ):
            return Status.INVALID_VALUE
        if not self._analog[config.attribute]:
            config = ReportingConfig(
                attribute=config.attribute,
                min_interval=config.min_interval,
                max_interval=config.max_interval,
            )
        entry = self._entries.get(key)
        if entry is None:
            entry = _Entry(key, config, None, now, next(self._seq))
            self._entries[key] = entry
        else:
            self._leave_cohort(entry)
            entry.config = config
        self._restart(entry, self._values.get(config.attribute), now)
        self._compact()
        return Status.SUCCESS

    def read_configuration(
        self, destination: D, attribute: int
    ) -> tuple[Status, ReportingConfig | None]:
        """Read Reporting Configuration (ZCL 2.5.9): the status of the response record
        (2.5.10) and the record, when there is one; UNSUPPORTED_ATTRIBUTE for an attribute
        not supported (:meth:`supports`; ZCL 2.5.9.3), with a value or not."""
        if not self.supports(attribute):
            return Status.UNSUPPORTED_ATTRIBUTE, None
        if attribute not in self._reportable:
            return Status.UNREPORTABLE_ATTRIBUTE, None
        entry = self._entries.get((destination, attribute))
        if entry is None:
            return Status.NOT_FOUND, None
        return Status.SUCCESS, entry.config

    def configurations(self) -> tuple[tuple[D, ReportingConfig], ...]:
        """Every reporting record held, as (destination, record), in the order configured."""
        entries = sorted(self._entries.values(), key=lambda entry: entry.seq)
        return tuple((entry.key[0], entry.config) for entry in entries)

    def update(self, attribute: int, value: int) -> None:
        """The attribute's value is now ``value``; :meth:`next_deadline` says when to report."""
        previous = self._values.get(attribute)
        self._values[attribute] = value
        if previous == value:
            return
        for cohort in self._cohorts.get(attribute, {}).values():
            changed = _changed(cohort.last_value, cohort.step, value)
            if changed and not cohort.changed:
                for entry in cohort.entries.values():
                    self._queue_change(entry)
            cohort.changed = changed

    def supports(self, attribute: int) -> bool:
        """Whether the server supports the attribute (it was built with it or
        :meth:`add_attribute` added it), with a value yet or not."""
        return attribute in self._analog

    def add_attribute(self, attribute: int, *, analog: bool) -> None:
        """Support one more attribute from now on, reportable (a feature the server gained
        after the engine was built: a meter's supply control); its value comes with
        :meth:`update`. An attribute supported already is left as it is."""
        if attribute in self._analog:
            return
        self._analog[attribute] = analog
        self._reportable = self._reportable | {attribute}

    def value(self, attribute: int) -> int | None:
        """The attribute's current value, None when never set."""
        return self._values.get(attribute)

    def next_deadline(self) -> int | None:
        """When :meth:`handle_timeout` next has a report to send, None when never."""
        timer = self._timer
        while timer:
            if self._live(timer[0]):
                return timer[0][0]
            heapq.heappop(timer)
        return None

    def handle_timeout(self, now: int) -> tuple[Report[D], ...]:
        """The reports due at ``now``, one per destination, attributes in id order."""
        timer = self._timer
        due: dict[tuple[D, int], _Entry[D]] = {}
        while timer and timer[0][0] <= now:
            item = heapq.heappop(timer)
            if self._live(item):
                due[item[4]] = self._entries[item[4]]
        # Listed as a scan of the records in attribute order (then record order) would list them.
        ordered = sorted(due.values(), key=lambda entry: (entry.key[1], entry.seq))
        out: dict[D, list[tuple[int, int]]] = {}
        for entry in ordered:
            destination, attribute = entry.key
            value = self._values[attribute]
            self._leave_cohort(entry)
            self._restart(entry, value, now)
            out.setdefault(destination, []).append((attribute, value))
        self._compact()
        return tuple(Report(destination, tuple(pairs)) for destination, pairs in out.items())

    def _restart(self, entry: _Entry[D], last_value: int | None, now: int) -> None:
        """``last_value`` counts as reported at ``now``: a new baseline and new timer items."""
        entry.last_value, entry.last_time = last_value, now
        entry.version = next(self._version)
        entry.change_queued = False
        attribute = entry.key[1]
        step = entry.config.reportable_change or 0
        cohorts = self._cohorts.setdefault(attribute, {})
        cohort = cohorts.get((last_value, step))
        current = self._values.get(attribute)
        if cohort is None:
            changed = current is not None and _changed(last_value, step, current)
            cohort = cohorts[(last_value, step)] = _Cohort(last_value, step, changed, {})
        cohort.entries[entry.key] = entry
        entry.cohort = cohort
        # Without a value nothing is due; the first value makes every such record changed
        # (no baseline), due at its minimum interval, which comes before its maximum.
        if current is not None:
            self._queue_max(entry)
            if cohort.changed:
                self._queue_change(entry)

    def _leave_cohort(self, entry: _Entry[D]) -> None:
        cohort = entry.cohort
        if cohort is None:
            return
        del cohort.entries[entry.key]
        if not cohort.entries:
            del self._cohorts[entry.key[1]][(cohort.last_value, cohort.step)]
        entry.cohort = None

    def _queue_max(self, entry: _Entry[D]) -> None:
        if entry.config.max_interval:
            due = entry.last_time + entry.config.max_interval
            heapq.heappush(self._timer, (due, entry.seq, _MAX, entry.version, entry.key))

    def _queue_change(self, entry: _Entry[D]) -> None:
        if not entry.change_queued:
            entry.change_queued = True
            due = entry.last_time + entry.config.min_interval
            heapq.heappush(self._timer, (due, entry.seq, _CHANGE, entry.version, entry.key))

    def _live(self, item: tuple[int, int, int, int, tuple[D, int]]) -> bool:
        """Whether a timer item still stands for its record's due time (stale: the record
        was reported, reconfigured or removed since, or its change went back)."""
        _, _, kind, version, key = item
        entry = self._entries.get(key)
        if entry is None or entry.version != version:
            return False
        if kind == _MAX:
            return True
        assert entry.cohort is not None
        if entry.cohort.changed:
            return True
        entry.change_queued = False  # dropped: queued again if the change comes back
        return False

    def _compact(self) -> None:
        """Rebuild the heap when stale items outnumber live ones (bounded memory)."""
        if len(self._timer) <= 4 * len(self._entries) + 64:
            return
        self._timer = [item for item in self._timer if self._live(item)]
        heapq.heapify(self._timer)


def _changed(last_value: int | None, step: int, current: int) -> bool:
    """A reportable change since ``last_value`` (any change when ``step`` is 0)."""
    if last_value is None:
        return True
    if not step:
        return current != last_value
    return abs(current - last_value) >= step


def report_payload(attributes: Iterable[tuple[int, int]], type_ids: Mapping[int, int]) -> bytes:
    """The payload of Report Attributes (ZCL 2.5.11.1): for each (attribute, value) its id,
    its ZCL data type (``type_ids[attribute]``) and the value in that type."""
    out = bytearray()
    for attribute, value in attributes:
        type_id = DataTypeId(type_ids[attribute])
        python_type = DataType.from_type_id(type_id).python_type
        out += attribute.to_bytes(2, "little")
        out.append(type_id)
        out += python_type(value).serialize()
    return bytes(out)
