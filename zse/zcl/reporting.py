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
Attributes due together for a destination leave as one report. Time is whole seconds, an
argument; nothing here does I/O.
"""

from __future__ import annotations

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


@dataclass
class _Entry:
    config: ReportingConfig
    last_value: int | None
    last_time: int


class ReportingEngine(Generic[D]):
    """Reporting records, values and due reports of one server cluster.

    ``attributes`` maps each attribute the cluster has to whether it is analog (a reportable
    change applies) or discrete; ``reportable`` names those that may be reported (default
    all of them).
    """

    def __init__(
        self, attributes: Mapping[int, bool], reportable: Iterable[int] | None = None
    ) -> None:
        self._analog = dict(attributes)
        self._reportable = frozenset(self._analog if reportable is None else reportable)
        self._values: dict[int, int] = {}
        self._entries: dict[tuple[D, int], _Entry] = {}

    def configure(self, destination: D, config: ReportingConfig, now: int) -> Status:
        """Apply one Configure Reporting record; the status of its response record (2.5.8)."""
        if config.attribute not in self._analog:
            return Status.UNSUPPORTED_ATTRIBUTE
        if config.attribute not in self._reportable:
            return Status.UNREPORTABLE_ATTRIBUTE
        key = (destination, config.attribute)
        if config.max_interval == NO_REPORTING:
            self._entries.pop(key, None)
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
        self._entries[key] = _Entry(config, self._values.get(config.attribute), now)
        return Status.SUCCESS

    def read_configuration(
        self, destination: D, attribute: int
    ) -> tuple[Status, ReportingConfig | None]:
        """Read Reporting Configuration (ZCL 2.5.9): the status of the response record
        (2.5.10) and the record, when there is one."""
        if attribute not in self._analog:
            return Status.UNSUPPORTED_ATTRIBUTE, None
        if attribute not in self._reportable:
            return Status.UNREPORTABLE_ATTRIBUTE, None
        entry = self._entries.get((destination, attribute))
        if entry is None:
            return Status.NOT_FOUND, None
        return Status.SUCCESS, entry.config

    def update(self, attribute: int, value: int) -> None:
        """The attribute's value is now ``value``; :meth:`next_deadline` says when to report."""
        self._values[attribute] = value

    def value(self, attribute: int) -> int | None:
        """The attribute's current value, None when never set."""
        return self._values.get(attribute)

    def _due(self, entry: _Entry) -> int | None:
        config = entry.config
        current = self._values.get(config.attribute)
        if current is None:
            return None
        due: int | None = None
        if config.max_interval:
            due = entry.last_time + config.max_interval
        if self._changed(entry, current):
            change_due = entry.last_time + config.min_interval
            due = change_due if due is None else min(due, change_due)
        return due

    @staticmethod
    def _changed(entry: _Entry, current: int) -> bool:
        if entry.last_value is None:
            return True
        step = entry.config.reportable_change
        if not step:
            return current != entry.last_value
        return abs(current - entry.last_value) >= step

    def next_deadline(self) -> int | None:
        """When :meth:`handle_timeout` next has a report to send, None when never."""
        dues = [due for entry in self._entries.values() if (due := self._due(entry)) is not None]
        return min(dues, default=None)

    def handle_timeout(self, now: int) -> tuple[Report[D], ...]:
        """The reports due at ``now``, one per destination, attributes in id order."""
        due: dict[D, list[tuple[int, int]]] = {}
        for (destination, attribute), entry in sorted(
            self._entries.items(), key=lambda item: item[0][1]
        ):
            when = self._due(entry)
            value = self._values.get(attribute)
            if when is None or when > now or value is None:
                continue
            entry.last_value, entry.last_time = value, now
            due.setdefault(destination, []).append((attribute, value))
        return tuple(Report(destination, tuple(pairs)) for destination, pairs in due.items())


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
