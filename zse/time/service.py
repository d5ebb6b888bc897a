"""The Time server on the SE endpoint (ZCL 3.12, as SE 5.4.3 uses it) and ZigBee time.

ZigBee time (UTCTime) counts seconds from 2000-01-01 00:00:00 UTC. SE devices set their clocks
from the ESI's Time cluster, whose TimeStatus says whether that time can be trusted:
Master (bit 0), Synchronized (bit 1), MasterZoneDst (bit 2) and Superseding (bit 3, SE: a
device prefers this server's time over others').
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time as _time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from zigpy.zcl import foundation

from zse.errors import InvalidFrame, StoreError
from zse.records import BOOL, INT, U32, Fields, Int, Mismatch, RecordError, check, load_each
from zse.se.ids import TIME, TimeAttribute
from zse.store import Batch, Store
from zse.time.core import (
    ATTRIBUTE_TYPES,
    INVALID_TIME,
    STATUS_SYNCHRONIZED,
    ZIGBEE_EPOCH,
    FixedZone,
    IanaZone,
    TimeCore,
    TimeZoneError,
    ZoneRule,
    ZoneYear,
    local_time_from_attributes,
    out_of_type,
    write_refusal,
    written_status,
    written_zone,
)
from zse.zcl.endpoint import ZclPort

__all__ = [
    "TIME",
    "ZIGBEE_EPOCH",
    "TimeReading",
    "TimeServer",
    "TimeStatus",
    "read_time",
    "system_clock",
    "time_reading_from_response",
    "zigbee_time",
]

LOGGER = logging.getLogger(__name__)


def zigbee_time(unix_seconds: float) -> int:
    """ZigBee UTCTime for a Unix timestamp."""
    return int(unix_seconds) - ZIGBEE_EPOCH


def system_clock() -> int:
    """The system's wall clock as ZigBee UTCTime."""
    return zigbee_time(_time.time())


@dataclass(frozen=True, kw_only=True)
class TimeStatus:
    """TimeStatus bits (ZCL 3.12.2.2.2); an SE ESI is a time master: Master and Superseding.

    ZCL 3.12.2.2.2: "If the Master bit is 1, the value of [the Synchronized] bit is 0"; a
    status with both set is refused. Synchronized is for a clock set over the network from
    another master.
    """

    master: bool = True
    synchronized: bool = False
    master_zone_dst: bool = False
    superseding: bool = True

    def __post_init__(self) -> None:
        if self.master and self.synchronized:
            raise ValueError("TimeStatus: Synchronized must be 0 when Master is 1 (ZCL 3.12.2.2.2)")

    def bitmap(self) -> int:
        """The attribute's value."""
        return (
            self.master | self.synchronized << 1 | self.master_zone_dst << 2 | self.superseding << 3
        )

    @classmethod
    def from_bitmap(cls, bits: int) -> TimeStatus:
        """The status an attribute value says (Synchronized read as 0 beside Master)."""
        return cls(
            master=bool(bits & 1),
            synchronized=bool(bits & 2) and not bits & 1,
            master_zone_dst=bool(bits & 4),
            superseding=bool(bits & 8),
        )


#: The one record a Time server keeps in its namespace: what Write Attributes set.
_WRITTEN_KEY: Final = "written"
_OFFSET = Int(-86_400, 86_400)  # TimeZone, DstShift (ZCL 3.12.2.2.3, 3.12.2.2.6)
_WRITTEN_SHAPE: Final = Fields(
    {},
    {
        "time": Fields({"time": Int(0, INVALID_TIME - 1), "set_at": INT}),
        "valid_until_time": U32,
        "synchronized": BOOL,
        "zone": Fields(
            {"time_zone": _OFFSET, "dst_start": U32, "dst_end": U32, "dst_shift": _OFFSET}
        ),
    },
)


@dataclass(frozen=True, kw_only=True)
class _Written:
    """What Write Attributes set on a Time server, as it is stored (record ``written``).

    ``time`` is the Time written and ``clock()`` when it was (the offset is their
    difference, so the written Time keeps running with the clock while the process is
    down); LastSetTime is that Time (ZCL 3.12.2.2.9). None: never written.
    """

    time: tuple[int, int] | None = None
    valid_until_time: int | None = None
    synchronized: bool | None = None
    zone: ZoneYear | None = None

    def record(self) -> dict[str, Any]:
        """The stored form (JSON)."""
        out: dict[str, Any] = {}
        if self.time is not None:
            out["time"] = {"time": self.time[0], "set_at": self.time[1]}
        if self.valid_until_time is not None:
            out["valid_until_time"] = self.valid_until_time
        if self.synchronized is not None:
            out["synchronized"] = self.synchronized
        if self.zone is not None:
            out["zone"] = dataclasses.asdict(self.zone)
        return out

    @classmethod
    def from_record(cls, value: Any) -> _Written:
        """The stored form back; :class:`~zse.records.Mismatch` for a wrong shape."""
        check(value, _WRITTEN_SHAPE)
        time = value.get("time")
        zone = value.get("zone")
        return cls(
            time=None if time is None else (time["time"], time["set_at"]),
            valid_until_time=value.get("valid_until_time"),
            synchronized=value.get("synchronized"),
            zone=None if zone is None else ZoneYear(**zone),
        )


class TimeServer:
    """Serve Time (0x000A) from an endpoint: every attribute of ZCL 3.12.2.2.

    ``clock()`` is ZigBee UTCTime (inject the simulator's virtual clock in simulations);
    ``status`` can be replaced at any time, e.g. clearing ``master`` when the ESI loses its
    upstream time source. ``zone`` (a :class:`~zse.time.core.ZoneRule`, an IANA name such as
    ``"Europe/London"``) gives TimeZone, DstStart, DstEnd and DstShift; with a zone the
    default status adds MasterZoneDst (ZCL 3.12.2.2.2: the master sets them). ``time_zone``
    alone is a fixed standard offset in seconds with no DST.

    Time has no protocol core at the ZCL frame: it serves attributes only, computed when read
    from :class:`~zse.time.core.TimeCore`, and the endpoint runtime answers Read Attributes
    (ZCL 2.5.1) from them, all from one clock reading per response.

    Write Attributes (ZCL 2.5.3): ValidUntilTime is read/write (ZCL 3.12.2.2.10), refused
    with INVALID_VALUE when not later than LastSetTime. Time and TimeStatus are read/write on
    a server that is not a Master (a HAN device's, ZCL 3.12.2.2.1-2): a written Time sets this
    server's clock (:attr:`offset` from ``clock()``, :meth:`now`) and LastSetTime, and of
    TimeStatus only Synchronized is taken; TimeZone, DstStart, DstEnd and DstShift are
    written only without MasterZoneDst either, and then served as written (a fixed zone). On
    a Master, an ESI, which takes its time and zone from upstream and its configuration and
    never from a HAN device, they answer READ_ONLY, as StandardTime, LocalTime and LastSetTime
    always do (:func:`~zse.time.core.write_refusal`). A written Time 0xFFFFFFFF (invalid),
    or a Time, TimeZone or DST value that would put Time, StandardTime or LocalTime out of
    0-0xFFFFFFFE with the zone in force, answers INVALID_VALUE
    (:meth:`~zse.time.core.TimeCore.range_refusal`); a value that leaves its type later (the
    clock running on) is served as the invalid value 0xFFFFFFFF, with a warning, so no read
    fails. A record is checked when its frame arrives, against what the records before it
    in its frame would write (ZCL 2.5.3.3: a ValidUntilTime after an earlier Time of its
    frame is held to that Time), and again when it is committed, in the order the writes
    commit: a ValidUntilTime no longer later than the LastSetTime a Time
    written meanwhile set (by another frame, or an earlier record of its own) answers
    INVALID_VALUE, a Time, TimeStatus or zone committed after the server was made a Master
    READ_ONLY, and nothing of it is stored or served. A Write Attributes Undivided frame is
    checked again whole, each record against what the records before it would write, and
    committed as one: one record refused, or the commit failing, and none is written (ZCL
    2.5.4.3).

    ``store``: what Write Attributes set (Time, LastSetTime, ValidUntilTime, Synchronized, the
    zone) survives a restart, kept under ``namespace`` (default ``time.server/<endpoint
    id>``): each write is committed before its Write Attributes Response (a commit that fails
    answers FAILURE and changes nothing), and :meth:`load`, awaited before :meth:`start`,
    brings it back. Time is kept as the value written and ``clock()`` then, so it has kept
    running with the clock while the process was down (``clock`` must be a wall clock, as
    :func:`system_clock` is). Time, Synchronized and the zone are taken back only where this
    server's status at start would take the same write (:func:`~zse.time.core.write_refusal`:
    a Master's clock and a MasterZoneDst zone are its own; what is not taken stays stored for
    a later start that would). What the application sets
    (``status``, ``time_zone``, ``core``) is configuration, not stored.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        clock: Callable[[], int] = system_clock,
        status: TimeStatus | None = None,
        time_zone: int = 0,
        zone: ZoneRule | str | None = None,
        store: Store | None = None,
        namespace: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.store = store
        self.namespace = namespace or f"time.server/{endpoint.endpoint_id}"
        #: What Write Attributes set, as stored (the store's record, also without a store).
        self._record = _Written()
        self._loaded = False
        self._lock = asyncio.Lock()  # one write's commit and apply at a time
        if isinstance(zone, str):
            zone = IanaZone(zone)
        self._started = False
        #: Seconds a written Time (on a server that is not a Master) put this server's Time
        #: ahead of ``clock()``.
        self.offset = 0
        self._snapshot: dict[TimeAttribute, int] | None = None
        self.core = TimeCore(
            zone or FixedZone(ZoneYear(time_zone=time_zone)), on_set=self._time_set
        )
        self.core.values(clock())  # a zone the attributes cannot express fails here
        self.status = status or TimeStatus(master_zone_dst=zone is not None)

    @property
    def time_zone(self) -> int:
        """TimeZone now (ZCL 3.12.2.2.3); setting it serves that fixed offset without DST."""
        return self.core.values(self.now()).time_zone

    @time_zone.setter
    def time_zone(self, seconds: int) -> None:
        self._fix_zone(ZoneYear(time_zone=seconds))

    def zone_at(self, time: int) -> ZoneYear | None:
        """TimeZone and DST at ``time`` (ZCL 3.12.2.2.3-6) by the zone served, to read a
        calendar on standard or local time (SE 1.2 D.9); None when the rule cannot say."""
        try:
            return self.core.rule.values_at(time)
        except TimeZoneError:
            return None

    def now(self) -> int:
        """This server's Time: ``clock()``, moved by a written Time (:attr:`offset`)."""
        return self.clock() + self.offset

    def _fix_zone(self, values: ZoneYear) -> None:
        """Serve ``values`` whatever the time."""
        self.core = TimeCore(
            FixedZone(values),
            last_set_time=self.core.last_set_time,
            valid_until_time=self.core.valid_until_time,
            on_set=self._time_set,
        )
        self._snapshot = None

    async def load(self) -> None:
        """Take back what Write Attributes set before a restart, from the store (nothing
        without one); await it before :meth:`start`. A stored record that fails its checksum
        or its shape is quarantined by the store (logged, named, listed by
        :meth:`Store.quarantined <zse.store.Store.quarantined>`) and the server starts as one
        never written. Writes wait while it runs (what it read would undo them)."""
        if self.store is not None:
            async with self._lock:
                await self.store.load_with(self.namespace, self._load)
                if self._started:
                    self._publish_valid_until()
        self._loaded = True

    def _load(self, records: dict[str, Any], on_bad: Callable[[RecordError], None]) -> None:
        def load(key: str, value: Any) -> None:
            if key != _WRITTEN_KEY:
                raise Mismatch("not a record of the Time server")
            self._restore(_Written.from_record(value))

        load_each(sorted(records.items()), load, namespace=self.namespace, on_bad=on_bad)

    def _restore(self, written: _Written) -> None:
        """Apply a stored record: ValidUntilTime always, Time (with LastSetTime),
        Synchronized and the zone where the status now lets them be written."""
        status = self.status.bitmap()
        kept: dict[str, Any] = {}
        if written.valid_until_time is not None:
            self.core.valid_until_time = kept["valid_until_time"] = written.valid_until_time
        if written.time is not None:
            if write_refusal(TimeAttribute.TIME, written.time[0], status) is None:
                self.offset = written.time[0] - written.time[1]
                self.core.last_set_time, kept["time"] = written.time[0], written.time
            else:
                LOGGER.info("Time: the Time written before the restart is not taken by a Master")
        if written.synchronized is not None:
            if write_refusal(TimeAttribute.TIME_STATUS, 0, status) is None:
                bits = STATUS_SYNCHRONIZED if written.synchronized else 0
                self.status = TimeStatus.from_bitmap(written_status(status, bits))
                kept["synchronized"] = written.synchronized
            else:
                LOGGER.info("Time: the TimeStatus written before the restart is not taken")
        if written.zone is not None:
            if write_refusal(TimeAttribute.TIME_ZONE, 0, status) is None:
                self._fix_zone(written.zone)
                kept["zone"] = written.zone
            else:
                LOGGER.info("Time: the zone written before the restart is not taken")
        self._record = written  # what is not taken stays stored for a later start
        self._snapshot = None
        LOGGER.debug("Time: taken back from the store: %s", ", ".join(kept) or "nothing")

    def start(self) -> None:
        """Publish the attributes; they are computed whenever they are read, but for
        ValidUntilTime, kept as written (ZCL 3.12.2.2.10). With a store, :meth:`load`
        first (:class:`~zse.errors.StoreError` otherwise: the writes before a restart would
        be served no longer, then overwritten)."""
        if self.store is not None and not self._loaded:
            raise StoreError(
                f"{self.store.where}: a Time server with a store: await load() before start()"
            )
        for attribute, type_id in ATTRIBUTE_TYPES.items():
            if attribute != TimeAttribute.VALID_UNTIL_TIME:
                self.endpoint.set_attribute_source(
                    TIME, attribute, type_id, self._source(attribute)
                )
        self._started = True
        self._publish_valid_until()
        for attribute in (TimeAttribute.VALID_UNTIL_TIME, *_WRITABLE):
            self.endpoint.set_writable(
                TIME,
                attribute,
                on_write=functools.partial(self._store_written, attribute),
            )
        self.endpoint.set_frame_check(TIME, self._check_frame)
        self.endpoint.set_undivided_commit(TIME, self._commit_undivided)

    def write(self, attribute: TimeAttribute, value: int) -> foundation.Status:
        """Write ``value`` to ``attribute`` as Write Attributes does (ZCL 2.5.3, the rules
        above): SUCCESS once written, else the status it is refused with. A server with a
        store: :meth:`write_stored` (:class:`~zse.errors.StoreError` here, as nothing
        unstored is written)."""
        if self.store is not None:
            raise StoreError(
                f"{self.store.where}: a Time server with a store: await write_stored()"
            )
        refused = self._write_refusal(attribute, value)
        if refused is None:
            self._apply(attribute, self._after(attribute, int(value)))
        return refused or foundation.Status.SUCCESS

    async def write_stored(self, attribute: TimeAttribute, value: int) -> foundation.Status:
        """:meth:`write`, the value committed to the store (if any) before SUCCESS is
        returned (and checked again once the writes before it are, :meth:`_store_written`);
        a commit that fails raises its :class:`~zse.errors.StoreError`, nothing written."""
        refused = self._write_refusal(attribute, value)
        return refused or await self._store_written(attribute, value) or foundation.Status.SUCCESS

    def _write_refusal(self, attribute: TimeAttribute, value: Any) -> foundation.Status | None:
        """Why ``value`` may not be written to ``attribute`` (the rules above), None when it
        may: the check of a write before it is committed."""
        return self._check_frame([(attribute, value)])[0]

    def _check_frame(self, records: Sequence[tuple[int, Any]]) -> list[foundation.Status | None]:
        """Write Attributes' frame check when a frame arrives: each record's refusal (the
        rules above), in the frame's order, as if the records before it were written (ZCL
        2.5.3.3: a ValidUntilTime after a Time of its frame is held to that Time)."""
        return self._frame_refusals(
            [(TimeAttribute(attr_id), int(value)) for attr_id, value in records], ranges=True
        )

    def _frame_refusals(
        self, frame: Sequence[tuple[TimeAttribute, int]], *, ranges: bool = False
    ) -> list[foundation.Status | None]:
        """Each record's refusal (:meth:`_commit_refusal`, with ``ranges`` also
        :meth:`~zse.time.core.TimeCore.range_refusal`) against what the records of ``frame``
        before it that are not refused would write: the LastSetTime a Time sets, the status
        a TimeStatus makes."""
        last_set, bits = self.core.last_set_time, self.status.bitmap()
        statuses: list[foundation.Status | None] = []
        for attribute, value in frame:
            refused = self._commit_refusal(attribute, value, last_set=last_set, status=bits)
            if refused is None and ranges:
                status = self.core.range_refusal(attribute, value, self.now())
                refused = None if status is None else foundation.Status(status)
            statuses.append(refused)
            if refused is None and attribute == TimeAttribute.TIME:
                last_set = value
            elif refused is None and attribute == TimeAttribute.TIME_STATUS:
                bits = written_status(bits, value)
        return statuses

    def _commit_refusal(
        self,
        attribute: TimeAttribute,
        value: Any,
        *,
        last_set: int | None = None,
        status: int | None = None,
    ) -> foundation.Status | None:
        """What a write committed since ``value`` was checked may have changed, checked
        again under the lock: ValidUntilTime against LastSetTime (a Time of another frame,
        ZCL 3.12.2.2.10), Time, TimeStatus and the zone against a status made a Master
        meanwhile (ZCL 3.12.2.2.1-2); ``last_set`` and ``status`` in place of the server's
        (an Undivided frame's earlier records). Not the ranges of Time, StandardTime and
        LocalTime: each record is held to them alone, as in one Undivided frame (a value
        that leaves them later is served invalid)."""
        if attribute == TimeAttribute.VALID_UNTIL_TIME:
            return self._check_valid_until(value, last_set)
        bits = self.status.bitmap() if status is None else status
        refused = write_refusal(attribute, int(value), bits)
        return None if refused is None else foundation.Status(refused)

    async def _commit_undivided(
        self, records: Sequence[tuple[int, Any]]
    ) -> list[foundation.Status | None]:
        """Write Attributes Undivided's commit, all of the frame or none (ZCL 2.5.4.3): under
        the lock, each record checked again (:meth:`_commit_refusal`) against what the
        records before it would write, in the frame's order (a ValidUntilTime after a Time
        is held to its LastSetTime); one refused and nothing is committed or applied, else
        the frame is committed as one record, then applied in order. A commit that fails
        raises (FAILURE for each record), nothing applied."""
        frame = [(TimeAttribute(attr_id), int(value)) for attr_id, value in records]
        async with self._lock:
            statuses = self._frame_refusals(frame)
            if any(refused is not None for refused in statuses):
                LOGGER.info(
                    "Time: Write Attributes Undivided refused, nothing written: %s",
                    ", ".join(
                        f"0x{attribute:04X} 0x{refused:02X}"
                        for (attribute, _), refused in zip(frame, statuses, strict=True)
                        if refused is not None
                    ),
                )
                return statuses
            steps = self._frame_after(frame)
            if self.store is not None:  # a failed commit: FAILURE, nothing applied
                record = steps[-1][1].record()
                await self._commit(record, steps)
            for attribute, written in steps:
                self._apply(attribute, written)
        return statuses

    def _frame_after(
        self, frame: list[tuple[TimeAttribute, int]]
    ) -> list[tuple[TimeAttribute, _Written]]:
        """The record after each write of ``frame`` in turn (all taken), as :meth:`_after`
        makes it once the writes before it are applied: a Time moves the server's Time, a
        zone written is the zone in force."""
        record, now, zone = self._record, self.now(), None
        steps = []
        for attribute, value in frame:
            record = self._after(attribute, value, record=record, now=now, zone=zone)
            steps.append((attribute, record))
            if attribute == TimeAttribute.TIME:
                now = value
            elif attribute not in (TimeAttribute.VALID_UNTIL_TIME, TimeAttribute.TIME_STATUS):
                zone = record.zone  # a zone attribute: that zone is fixed (_fix_zone)
        return steps

    async def _store_written(
        self, attribute: TimeAttribute, value: Any
    ) -> foundation.Status | None:
        """Write Attributes' ``on_write``: under the lock that orders the writes, check again
        what a write committed since the value was checked may have changed, then commit the
        record this write makes and apply it. The status refusing it (nothing committed or
        applied) or None (the endpoint answers SUCCESS; FAILURE if this raises)."""
        async with self._lock:
            refused = self._commit_refusal(attribute, value)
            if refused is not None:
                LOGGER.info(
                    "Time: attribute 0x%04X refused (0x%02X): a write committed since it was "
                    "checked changed what it is checked against",
                    attribute,
                    refused,
                )
                return refused
            written = self._after(attribute, int(value))
            if self.store is not None:  # a failed commit: FAILURE, the endpoint keeps its value
                await self._commit(written.record(), [(attribute, written)])
            self._apply(attribute, written)
        return None

    async def _commit(
        self, record: dict[str, Any], steps: Sequence[tuple[TimeAttribute, _Written]]
    ) -> None:
        """Commit ``record``, the one ``steps`` end with; a commit cancelled during its
        transaction, which the store carries out (:attr:`Batch.landed
        <zse.store.Batch.landed>`), has them applied before it raises, as stored (else the
        server served the old values, and its next write, made from them, undid the stored
        one)."""
        assert self.store is not None
        batch = Batch().put(self.namespace, _WRITTEN_KEY, record)
        try:
            await self.store.commit(batch)
        except BaseException:
            if batch.landed is not None:
                for attribute, written in steps:
                    self._apply(attribute, written)
            raise

    def _after(
        self,
        attribute: TimeAttribute,
        value: int,
        *,
        record: _Written | None = None,
        now: int | None = None,
        zone: ZoneYear | None = None,
    ) -> _Written:
        """The record once ``value`` is written to ``attribute`` (the checks passed); after
        ``record``, at this server's Time ``now``, with ``zone`` in force when given (an
        Undivided frame's earlier records; default: the server's)."""
        record = self._record if record is None else record
        if attribute == TimeAttribute.TIME:  # set_time: ValidUntilTime invalid again
            return dataclasses.replace(
                record, time=(value, self.clock()), valid_until_time=INVALID_TIME
            )
        if attribute == TimeAttribute.VALID_UNTIL_TIME:
            return dataclasses.replace(record, valid_until_time=value)
        if attribute == TimeAttribute.TIME_STATUS:
            return dataclasses.replace(record, synchronized=bool(value & STATUS_SYNCHRONIZED))
        if zone is None:
            zone = self.core.values(self.now() if now is None else now)
        return dataclasses.replace(record, zone=written_zone(zone, attribute, value))

    def _apply(self, attribute: TimeAttribute, written: _Written) -> None:
        """Serve what :meth:`_after` made of a write to ``attribute``."""
        self._record = written
        if attribute == TimeAttribute.TIME:
            assert written.time is not None
            value, set_at = written.time
            self.offset = value - set_at
            self.core.set_time(value)
            LOGGER.info("Time: Time written: %d", value)
        elif attribute == TimeAttribute.VALID_UNTIL_TIME:
            vut = written.valid_until_time  # 0 is a time (2000-01-01), not "not written"
            self.core.valid_until_time = INVALID_TIME if vut is None else vut
            if self._started:  # an earlier write may have replaced what the endpoint holds
                self._publish_valid_until()
            LOGGER.info("Time: ValidUntilTime written: %d", self.core.valid_until_time)
        elif attribute == TimeAttribute.TIME_STATUS:
            bits = STATUS_SYNCHRONIZED if written.synchronized else 0
            self.status = TimeStatus.from_bitmap(written_status(self.status.bitmap(), bits))
            LOGGER.info("Time: TimeStatus written: 0x%02X", self.status.bitmap())
        else:
            assert written.zone is not None
            self._fix_zone(written.zone)
            LOGGER.info("Time: attribute 0x%04X written", attribute)
        self._snapshot = None

    def _source(self, attribute: TimeAttribute) -> Callable[[], int]:
        if attribute == TimeAttribute.TIME_STATUS:
            return lambda: self.status.bitmap()  # noqa: PLW0108 -- status may be replaced
        return functools.partial(self._served, attribute)

    def _served(self, attribute: TimeAttribute) -> int:
        """``attribute`` as Read Attributes answers it: a value its type cannot hold (the
        clock run past 0xFFFFFFFE, or a zone pushing StandardTime out of uint32) is served
        as the invalid value rather than failing the whole read."""
        value = self._attributes()[attribute]
        invalid = out_of_type(attribute, value)
        if invalid is None:
            return value
        LOGGER.warning(
            "Time: attribute 0x%04X is %d, out of its type's range: served as 0x%X",
            attribute,
            value,
            invalid & 0xFFFFFFFF,
        )
        return invalid

    def _attributes(self) -> dict[TimeAttribute, int]:
        """The attributes at one clock reading for a whole Read Attributes Response: the
        endpoint reads every attribute of a response in one pass of the event loop, so the
        values computed first are kept until the loop's next pass."""
        if self._snapshot is None:
            snapshot = self.core.attributes(self.now())
            try:
                asyncio.get_running_loop().call_soon(self._forget_snapshot)
            except RuntimeError:  # no loop running: nothing to share the reading with
                return snapshot
            self._snapshot = snapshot
        return self._snapshot

    def _forget_snapshot(self) -> None:
        self._snapshot = None

    def _time_set(self) -> None:
        self._snapshot = None
        if self._started:
            self._publish_valid_until()

    def _publish_valid_until(self) -> None:
        self.endpoint.set_attribute(
            TIME,
            TimeAttribute.VALID_UNTIL_TIME,
            self.core.valid_until_time,
            ATTRIBUTE_TYPES[TimeAttribute.VALID_UNTIL_TIME],
        )

    def _check_valid_until(
        self, value: Any, last_set: int | None = None
    ) -> foundation.Status | None:
        """ZCL 3.12.2.2.10: "a time, later than LastSetTime" (or the invalid value);
        ``last_set`` in place of the server's."""
        last_set = self.core.last_set_time if last_set is None else last_set
        if int(value) == INVALID_TIME or last_set == INVALID_TIME or int(value) > last_set:
            return None
        return foundation.Status.INVALID_VALUE


_READ_ATTRIBUTES_RSP = foundation.GeneralCommand.Read_Attributes_rsp
#: What Write Attributes may write on a server that is not a Master (:func:`write_refusal`).
_WRITABLE = (
    TimeAttribute.TIME,
    TimeAttribute.TIME_STATUS,
    TimeAttribute.TIME_ZONE,
    TimeAttribute.DST_START,
    TimeAttribute.DST_END,
    TimeAttribute.DST_SHIFT,
)


@dataclass(frozen=True, kw_only=True)
class TimeReading:
    """What a device read from a time server, and the local time it computes from it
    (:func:`zse.time.core.local_time`, the rule the server uses)."""

    values: Mapping[TimeAttribute, int]
    local_time: int

    @property
    def status(self) -> TimeStatus | None:
        """The server's TimeStatus, if it answered it (a master's status is trusted)."""
        bits = self.values.get(TimeAttribute.TIME_STATUS)
        return None if bits is None else TimeStatus.from_bitmap(bits)

    @property
    def untrusted(self) -> str | None:
        """Why a client must not set its clock from this reading, or None when it may: Time
        is 0xFFFFFFFF, the invalid UTCTime, or past ValidUntilTime, "up to which the Time
        attribute MAY be trusted" (ZCL 3.12.2.2.10; 0xFFFFFFFF or absent: no bound), or
        TimeStatus has neither Master nor Synchronized, a server not to be chosen (ZCL
        3.12.2.2.2)."""
        time = self.values.get(TimeAttribute.TIME, INVALID_TIME)
        if time == INVALID_TIME:
            return "Time is 0xFFFFFFFF (invalid)"
        valid_until = self.values.get(TimeAttribute.VALID_UNTIL_TIME, INVALID_TIME)
        if time > valid_until:
            return f"Time {time} is past ValidUntilTime {valid_until} (ZCL 3.12.2.2.10)"
        bits = self.values.get(TimeAttribute.TIME_STATUS)
        if bits is None:
            return "no TimeStatus"
        if not bits & 0b11:
            return f"TimeStatus 0x{bits:02X}: neither Master nor Synchronized (ZCL 3.12.2.2.2)"
        return None


#: ZCL data types (ZCL 2.6.2, Table 2-10) whose values are integers: map8-64, uint8-64,
#: int8-64, enum8-16 and UTCTime. A Time attribute's record of another integer type than ZCL
#: 3.12.2.2 declares is read (some meters send Time as uint32); one of a string, float,
#: boolean, raw data or composite type is not an integer to set a clock from.
_INTEGER_TYPES = frozenset((*range(0x18, 0x32), 0xE2))


def time_reading_from_response(payload: bytes) -> TimeReading:
    """Decode a Time cluster Read Attributes Response (ZCL 2.5.2) into a :class:`TimeReading`;
    :class:`~zse.errors.InvalidFrame` if it does not decode, lacks Time, answers an
    attribute twice (two values: which would be the clock?), has a record whose
    data type is not an integer one (a Time sent as the text "700000000" is not read as
    that number), a value its attribute's type cannot hold (whatever integer type its record
    says: a negative Time would set a clock UTCTime cannot hold) or a TimeZone or DstShift
    out of +-86400 s. Attributes the server does not support are left out: only Time and
    TimeStatus are mandatory (ZCL 3.12.2.2), and without TimeZone local time is UTC, without
    the DST ones there is no DST."""
    schema = foundation.GENERAL_COMMANDS[_READ_ATTRIBUTES_RSP].schema
    try:
        records, rest = schema.deserialize(payload)
        ids = [int(record.attrid) for record in records.status_records]  # type: ignore[attr-defined]
        twice = sorted({attr for attr in ids if ids.count(attr) > 1})
        if twice:
            raise InvalidFrame(
                f"Time Read Attributes Response: attribute {twice[0]:#06x} answered twice"
            )
        read = [
            record
            for record in records.status_records  # type: ignore[attr-defined]
            if record.status == foundation.Status.SUCCESS and record.attrid in ATTRIBUTE_TYPES
        ]
        for record in read:
            if int(record.value.type) not in _INTEGER_TYPES:
                raise InvalidFrame(
                    f"Time Read Attributes Response: attribute {int(record.attrid):#06x} has "
                    f"data type {int(record.value.type):#04x}, not an integer (ZCL 3.12.2.2, "
                    f"data type {ATTRIBUTE_TYPES[TimeAttribute(record.attrid)]:#04x})"
                )
        values = {TimeAttribute(record.attrid): int(record.value.value) for record in read}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise InvalidFrame(f"Time Read Attributes Response does not decode: {exc}") from None
    if rest:
        raise InvalidFrame(f"Time Read Attributes Response: {len(rest)} bytes left over")
    for attribute, value in values.items():  # whatever data type the record said
        if out_of_type(attribute, value) is not None:
            raise InvalidFrame(
                f"Time Read Attributes Response: attribute {attribute:#06x} is {value}, out "
                f"of its type's range (ZCL 3.12.2.2, data type {ATTRIBUTE_TYPES[attribute]:#04x})"
            )
    try:
        local = local_time_from_attributes(values)
    except TimeZoneError as exc:
        raise InvalidFrame(f"Time Read Attributes Response: {exc}") from None
    if TimeAttribute.TIME_ZONE not in values:
        LOGGER.info("the time server has no TimeZone: its local time is taken as UTC")
    return TimeReading(values=values, local_time=local)


async def read_time(endpoint: ZclPort, dst: int, dst_ep: int, **kwargs: Any) -> TimeReading:
    """Read every Time attribute from a time server with Read Attributes (ZCL 2.5.1) and
    compute local time as the server does; a server that has only the mandatory Time and
    TimeStatus (the rest UNSUPPORTED_ATTRIBUTE) is read too, its local time then UTC.
    The ten answers do not fit one frame: a server answers "only as many read attribute
    status records as will fit" (ZCL 2.5.2) and the rest is asked for again, Time first.
    ``kwargs`` go to ``endpoint.request`` (e.g. ``encrypt=True``). The reading is returned
    whatever its TimeStatus: see :attr:`TimeReading.untrusted` before setting a clock."""
    wanted = [int(attr) for attr in ATTRIBUTE_TYPES]
    answered = b""
    while wanted:
        reply = await endpoint.request(
            dst,
            dst_ep,
            TIME,
            foundation.GeneralCommand.Read_Attributes,
            b"".join(attr.to_bytes(2, "little") for attr in wanted),
            cluster_specific=False,
            **kwargs,
        )
        if reply.is_cluster_command or reply.command_id != _READ_ATTRIBUTES_RSP:
            raise InvalidFrame(f"Time read answered with command {reply.command_id:#04x}")
        ids = _record_ids(reply.payload)
        if not ids or ids != wanted[: len(ids)]:
            raise InvalidFrame("Time Read Attributes Response does not answer what was asked")
        answered += reply.payload
        wanted = wanted[len(ids) :]
    return time_reading_from_response(answered)


def _record_ids(payload: bytes) -> list[int]:
    """The attribute ids of a Read Attributes Response's records, in order."""
    schema = foundation.GENERAL_COMMANDS[_READ_ATTRIBUTES_RSP].schema
    try:
        records, _ = schema.deserialize(payload)
        return [int(record.attrid) for record in records.status_records]  # type: ignore[attr-defined]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise InvalidFrame(f"Time Read Attributes Response does not decode: {exc}") from None
