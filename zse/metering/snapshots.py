"""SE 1.2 Metering snapshots and sampling, both sides, sans-IO.

The meter's side is :class:`SnapshotCore`, beside the :class:`~zse.metering.core.MeterCore`
whose values it copies; :class:`~zse.metering.protocol.MeterServerProtocol` hands it the
commands of this group:

- **Take Snapshot** (0x05): a snapshot now, its cause the one asked plus Manually Triggered
  From Client; answered Take Snapshot Response (its id, Accepted).
- **Schedule Snapshot** (0x04): each Snapshot Schedule Payload is a schedule (start time;
  every N days, weeks or months, a month one on the start's day, or the first or last day
  with the wild card), at most :data:`MAX_SCHEDULES`; one with a known id replaces it. The
  answer pairs each id with a confirmation: a payload type the meter cannot build, a
  frequency of 0 or a reserved type, no room. A schedule due takes one snapshot, its cause
  the schedule's plus Scheduled Snapshot; missed ones (the meter was off) are not made up.
- **Get Snapshot** (0x06): the snapshots taken in [earliest, latest] with a cause in the one
  asked (0 or 0xFFFFFFFF: any), newest first, as Prepayment's Get Prepay Snapshot selects
  them; the ``offset``-th is answered with Publish Snapshot, its sub-payload split over
  several commands when it does not fit one frame (only the leading fields repeat); none:
  Default Response NOT_FOUND.
- **Start Sampling** (0x07): a session sampling ``sample_type`` every interval for the
  number of samples (start 0: now; start 0xFFFFFFFF: cancel the session of that Issuer Event
  ID). InstantaneousDemand samples the demand held (a negative one as its 24-bit two's
  complement, the wire type being uint24); Consumption Delivered / Received the summation's
  advance over each interval. At most :data:`MAX_SESSIONS` sessions (a finished one makes
  room), :data:`MAX_SAMPLES` samples each, an interval of at least 1 s: a flood of Start
  Sampling never makes memory or work unbounded. An Issuer Event ID not above the last
  accepted one is refused (the command's field description, zsmartsystems). A refusal is
  answered Sample ID 0xFFFF (zse's choice: the spec text was out of reach).
- **Get Sampled Data** (0x08): the session's samples at or after the earliest time, at most
  the number asked and what one frame holds, in Get Sampled Data Response; none: NOT_FOUND.

The meter's own snapshots of a change the ESI publishes for later (a tariff, a tenancy, a
supplier: Meter Snapshot Causes 0x40, 0x100, 0x200) are planned for the change's
implementation time (:meth:`SnapshotCore.plan`), so that the registers are read when the
change takes effect, not when it was announced (zse's reading of what such a snapshot is for:
the consumption before and after the change; the spec text was out of reach); at most
:data:`MAX_PLANNED`, one per change (the same change published again moves it, a cancelled
tariff's is dropped).

Snapshots are a ring of :data:`MAX_SNAPSHOTS` (newest kept). Each carries the TOU
Information Set "No Billing" sub-payload (zse holds no bill): the summation and the tier
summations the meter holds. Everything is one record (:meth:`SnapshotCore.record`); the shell
stores it before a response that depends on it is sent (``changed``).

The display's side is a few request builders and :func:`published_snapshot` /
:func:`sampled_data`, which read the answers. Sources of every field: :mod:`zse.metering.
snapshot_types`.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from zigpy.zcl import foundation

from zse.errors import InvalidFrame, ZseError
from zse.metering.core import MeterCore, summation_advance
from zse.metering.snapshot_types import (
    FREQUENCY_DAY,
    FREQUENCY_MONTH,
    FREQUENCY_WEEK,
    WILD_END_OF,
    WILD_NOT_USED,
    WILD_START_OF,
    MeterSnapshotCause,
    Samples,
    SampleType,
    ScheduleAnswers,
    ScheduleEntry,
    SnapshotConfirmation,
    SnapshotPayloadType,
    SnapshotScheduleConfirmation,
    SnapshotSchedules,
    TouSnapshot,
)
from zse.metering.wire import Metering
from zse.records import STR, Fields, Int, ListOf, Mismatch, Opt, TupleOf, check
from zse.se.frames import max_zcl_payload
from zse.se.ids import (
    MAX_TIER,
    METERING,
    MeteringClientCommand,
    MeteringServerCommand,
    tier_summation_attribute,
)
from zse.se.ids import MeteringAttribute as A
from zse.zcl.codec import encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage

__all__ = [
    "ANY_CAUSE",
    "COMMANDS",
    "MAX_PLANNED",
    "MAX_SAMPLES",
    "MAX_SCHEDULES",
    "MAX_SESSIONS",
    "MAX_SNAPSHOTS",
    "NO_SAMPLE_ID",
    "RECORD_SHAPE",
    "PublishedSnapshot",
    "SampledData",
    "SamplingSession",
    "Snapshot",
    "SnapshotCore",
    "SnapshotSchedule",
    "SnapshotsFull",
    "get_sampled_data_request",
    "get_snapshot_request",
    "published_snapshot",
    "sampled_data",
    "schedule_snapshot_request",
    "start_sampling_request",
    "take_snapshot_request",
]

S = MeteringServerCommand
C = MeteringClientCommand
#: The commands of this group the meter receives.
COMMANDS: Final = frozenset(
    (S.SCHEDULE_SNAPSHOT, S.TAKE_SNAPSHOT, S.GET_SNAPSHOT, S.START_SAMPLING, S.GET_SAMPLED_DATA)
)
#: Those that change what is kept (and are answered only once it is stored).
CHANGING: Final = frozenset((S.SCHEDULE_SNAPSHOT, S.TAKE_SNAPSHOT, S.START_SAMPLING))
MAX_SNAPSHOTS: Final = 16
MAX_SCHEDULES: Final = 4
#: Snapshots planned for changes published for later (:meth:`SnapshotCore.plan`).
MAX_PLANNED: Final = 16
MAX_SESSIONS: Final = 4
#: The most samples a session keeps (a day of one-minute samples).
MAX_SAMPLES: Final = 1440
#: Start Sampling Response's Sample ID for a refusal (zse's choice).
NO_SAMPLE_ID: Final = 0xFFFF
ANY_CAUSE: Final = 0xFFFFFFFF
CANCEL: Final = 0xFFFFFFFF
_PUBLISH_HEADER = 16  # id 4, time 4, found 1, index 1, total 1, cause 4, type 1
_SAMPLED_HEADER = 11  # id 2, time 4, type 1, interval 2, number 2
_DAY = 86400
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # ZigBee UTCTime (ZCL 2.6.2)
_UINT48 = (1 << 48) - 1
#: A schedule time never reached (the largest :data:`RECORD_SHAPE` keeps).
_NEVER = 1 << 40
_NO_BILLING = {
    SnapshotPayloadType.TOU_Information_Set_Delivered_No_Billing: A.CURRENT_SUMM_DELIVERED,
    SnapshotPayloadType.TOU_Information_Set_Received_No_Billing: A.CURRENT_SUMM_RECEIVED,
}
_TIERS = MAX_TIER  # CurrentTier1..48Summation (D.3.2.2.2, SE 1.2)


class SnapshotsFull(ZseError, ValueError):
    """:data:`MAX_PLANNED` snapshots are planned already: no other is (nothing changed)."""


@dataclass(frozen=True)
class Snapshot:
    """One snapshot as kept: its TOU sub-payload's summation and tiers."""

    snapshot_id: int
    time: int
    cause: int
    payload_type: int
    summation: int
    tiers: tuple[int, ...] = ()

    def sub_payload(self) -> bytes:
        """The TOU Information Set (No Billing) sub-payload."""
        return TouSnapshot(summation=self.summation, tiers=self.tiers).encode()


@dataclass
class SnapshotSchedule:
    """A schedule set by Schedule Snapshot: its next snapshot at ``next_time``."""

    entry: ScheduleEntry
    issuer_event_id: int
    start: int
    next_time: int
    count: int = 0


@dataclass
class SamplingSession:
    """A Start Sampling session: ``samples`` (time, value), ``taken`` so far."""

    sample_id: int
    issuer_event_id: int
    sample_type: int
    interval: int
    max_samples: int
    start: int
    next_time: int | None
    taken: int = 0
    baseline: int | None = None
    samples: list[tuple[int, int]] = field(default_factory=list)


def _to_time(value: dt.datetime) -> int:
    return int((value - _EPOCH).total_seconds())


def _occurrence(entry: ScheduleEntry, start: int, k: int) -> int:
    """The ``k``-th time of a schedule from ``start`` (ZigBee time); :data:`_NEVER` past
    what the record holds (a frequency of up to 2**20 - 1 months ends after year 9999)."""
    n = entry.frequency
    if entry.frequency_type == FREQUENCY_DAY:
        return min(start + k * n * _DAY, _NEVER)
    if entry.frequency_type == FREQUENCY_WEEK:
        return min(start + k * n * 7 * _DAY, _NEVER)
    base = _EPOCH + dt.timedelta(seconds=start)
    months = base.month - 1 + k * n
    year, month = base.year + months // 12, months % 12 + 1
    if year > _EPOCH.year + 136:  # after UTCTime's end (2136): never due
        return _NEVER
    last = calendar.monthrange(year, month)[1]
    day = {WILD_START_OF: 1, WILD_END_OF: last}.get(entry.wild_card, min(base.day, last))
    return _to_time(base.replace(year=year, month=month, day=day))


class SnapshotCore:
    """The meter's snapshots, snapshot schedules and sampling sessions (sans-IO), of the
    values ``meter`` holds at ``now``; at most ``capacity`` snapshots, ``max_schedules``
    schedules and ``max_sessions`` sampling sessions."""

    def __init__(
        self,
        meter: MeterCore[Any],
        *,
        capacity: int = MAX_SNAPSHOTS,
        max_schedules: int = MAX_SCHEDULES,
        max_sessions: int = MAX_SESSIONS,
        tiers: Callable[[bool], Sequence[int]] | None = None,
    ) -> None:
        if capacity < 1 or max_schedules < 0 or max_sessions < 0:
            raise ValueError("snapshot capacity of at least 1, schedules and sessions >= 0")
        self.meter = meter
        #: The tier summations (delivered ones when given True) of a meter that keeps them
        #: outside ``meter`` (a TOU register bank); None: the CurrentTierN values it holds.
        self.tiers = tiers
        self.capacity = capacity
        self.max_schedules = max_schedules
        self.max_sessions = max_sessions
        #: Snapshots, newest first.
        self.snapshots: list[Snapshot] = []
        self.schedules: dict[int, SnapshotSchedule] = {}
        self.sessions: dict[int, SamplingSession] = {}
        #: Snapshots planned for a change's implementation time: key -> (time, cause, change).
        self.planned: dict[str, tuple[int, int, str]] = {}
        #: The changes whose snapshot was taken: change -> its implementation time (the newest
        #: :data:`MAX_PLANNED`), so that one published again is not snapshot again.
        self.taken: dict[str, int] = {}
        self._next_snapshot = 1
        self._next_sample = 1
        self._last_issuer = 0
        #: Something to store changed since the shell last stored (it clears this).
        self.changed = False

    # -- snapshots ---------------------------------------------------------------------------

    def payload_types(self) -> frozenset[int]:
        """The payload types this meter builds: TOU No Billing of what it meters."""
        return frozenset(t for t, attr in _NO_BILLING.items() if self.meter.supports(attr))

    def take(
        self,
        now: int,
        cause: int,
        payload_type: int = SnapshotPayloadType.TOU_Information_Set_Delivered_No_Billing,
    ) -> Snapshot:
        """Take a snapshot now of the registers the meter holds (the summation and the tier
        summations it has a value for; an unknown summation reads 0)."""
        delivered = payload_type == SnapshotPayloadType.TOU_Information_Set_Delivered_No_Billing
        attr = A.CURRENT_SUMM_DELIVERED if delivered else A.CURRENT_SUMM_RECEIVED
        tiers: list[int] = []
        for index in range(1, _TIERS + 1):
            value = self.meter.read(tier_summation_attribute(index, received=not delivered))
            if value is None:
                break
            tiers.append(value)
        if self.tiers is not None:
            tiers = list(self.tiers(delivered))[:_TIERS]
        tiers = [value & _UINT48 for value in tiers]
        summation = self.meter.read(attr) or 0
        snapshot = Snapshot(
            self._next_snapshot, now, cause & 0xFFFFFFFF, payload_type, summation, tuple(tiers)
        )
        self.snapshots.insert(0, snapshot)
        del self.snapshots[self.capacity :]
        self._next_snapshot = self._next_snapshot % 0xFFFFFFFF + 1
        self.changed = True
        return snapshot

    def plan(
        self, key: str, at: int, cause: int, now: int, change: str | None = None
    ) -> Snapshot | None:
        """A snapshot for ``cause`` at ``at``, the implementation time of ``change`` (e.g.
        ``"tariff/<provider>/<issuer tariff id>"``; default ``key``), planned under ``key``
        (one a key: a newer change of tenancy replaces the one planned): taken now (and
        returned) when ``at`` is not after ``now``, else planned. A change whose snapshot was
        taken for the same time already (the same tariff published again, to another device)
        is not snapshot again (None, nothing changed). :class:`SnapshotsFull` (nothing
        changed) past :data:`MAX_PLANNED`."""
        change = key if change is None else change
        if self.taken.get(change) == at:
            return None
        if at <= now:
            self.planned.pop(key, None)
            self._taken(change, at)
            return self.take(now, cause)
        self.room(key, at, now)
        self.planned[key] = (at, cause & 0xFFFFFFFF, change)
        self.changed = True
        return None

    def _taken(self, change: str, at: int) -> None:
        self.taken.pop(change, None)
        self.taken[change] = at
        while len(self.taken) > MAX_PLANNED:
            del self.taken[next(iter(self.taken))]

    def room(self, key: str, at: int, now: int) -> None:
        """:class:`SnapshotsFull` when :meth:`plan` would refuse ``key`` at ``at`` (a snapshot
        for later, a key not planned yet, :data:`MAX_PLANNED` planned): for a caller to refuse
        what the snapshot is of before it changes anything."""
        if now < at and key not in self.planned and len(self.planned) >= MAX_PLANNED:
            raise SnapshotsFull(f"{MAX_PLANNED} snapshots are planned already")

    def unplan(self, key: str) -> bool:
        """Drop the snapshot ``key`` planned (its change cancelled); whether there was one."""
        if self.planned.pop(key, None) is None:
            return False
        self.changed = True
        return True

    def find(self, earliest: int, latest: int, cause: int) -> list[Snapshot]:
        """Snapshots taken in [earliest, latest] with a cause in ``cause`` (0 or 0xFFFFFFFF:
        any), newest first."""
        every = cause in (0, ANY_CAUSE)
        return [
            s for s in self.snapshots if earliest <= s.time <= latest and (every or s.cause & cause)
        ]

    def schedule(self, entry: ScheduleEntry, issuer: int, now: int) -> int:
        """Set one schedule; its :class:`SnapshotScheduleConfirmation`."""
        confirm = SnapshotScheduleConfirmation
        if entry.payload_type not in self.payload_types():
            return confirm.Snapshot_Type_Not_Supported
        if (
            not entry.frequency
            or entry.frequency_type not in (FREQUENCY_DAY, FREQUENCY_WEEK, FREQUENCY_MONTH)
            or entry.wild_card not in (WILD_START_OF, WILD_END_OF, WILD_NOT_USED)
        ):
            return confirm.Snapshot_Schedule_Not_Currently_Available
        if entry.schedule_id not in self.schedules and len(self.schedules) >= self.max_schedules:
            return confirm.Insufficient_Space_For_Snapshot_Schedule
        start = entry.start_time or now
        kept = SnapshotSchedule(entry, issuer, start, start)
        self._skip_past(kept, now)
        self.schedules[entry.schedule_id] = kept
        self.changed = True
        return confirm.Accepted

    @staticmethod
    def _skip_past(schedule: SnapshotSchedule, now: int) -> None:
        """Move ``schedule`` to its first time at or after ``now``: in one step for days and
        weeks, month by month otherwise (at most 12 a year of UTCTime)."""
        entry = schedule.entry
        if schedule.next_time < now and entry.frequency_type != FREQUENCY_MONTH:
            period = entry.frequency * (
                7 * _DAY if entry.frequency_type == FREQUENCY_WEEK else _DAY
            )
            schedule.count = max(schedule.count, -(-(now - schedule.start) // period))
            schedule.next_time = _occurrence(entry, schedule.start, schedule.count)
        while schedule.next_time < now:
            schedule.count += 1
            schedule.next_time = _occurrence(entry, schedule.start, schedule.count)

    # -- sampling ----------------------------------------------------------------------------

    def sample_types(self) -> frozenset[int]:
        """The sample types this meter takes."""
        wanted = {
            SampleType.Consumption_Delivered: A.CURRENT_SUMM_DELIVERED,
            SampleType.Consumption_Received: A.CURRENT_SUMM_RECEIVED,
            SampleType.Instantaneous_Demand: A.INSTANTANEOUS_DEMAND,
        }
        return frozenset(t for t, attr in wanted.items() if self.meter.supports(attr))

    def start_sampling(
        self, issuer: int, *, start: int, sample_type: int, interval: int, count: int, now: int
    ) -> int:
        """Start (or cancel, ``start`` 0xFFFFFFFF) a session; its Sample ID, or
        :data:`NO_SAMPLE_ID` when refused."""
        if start == CANCEL:
            for sid, session in list(self.sessions.items()):
                if session.issuer_event_id == issuer:
                    del self.sessions[sid]
                    self.changed = True
                    return sid
            return NO_SAMPLE_ID
        if (
            issuer <= self._last_issuer
            or sample_type not in self.sample_types()
            or interval < 1
            or not 1 <= count <= MAX_SAMPLES
        ):
            return NO_SAMPLE_ID
        if len(self.sessions) >= self.max_sessions:
            finished = [s for s in self.sessions.values() if s.next_time is None]
            if not finished:
                return NO_SAMPLE_ID
            del self.sessions[min(finished, key=lambda s: s.start).sample_id]
        sid = self._next_sample
        while sid in self.sessions:
            sid = sid % 0xFFFE + 1
        self._next_sample = sid % 0xFFFE + 1
        start = max(start, now) if start else now
        self.sessions[sid] = SamplingSession(
            sid, issuer, sample_type, interval, count, start, start
        )
        self._last_issuer = issuer
        self.changed = True
        if start == now:
            self._sample_due(now)
        return sid

    def sampled(
        self, sample_id: int, earliest: int, sample_type: int, count: int, room: int
    ) -> tuple[SamplingSession, list[tuple[int, int]]] | None:
        """The session's samples at or after ``earliest``, at most ``count`` and ``room``."""
        session = self.sessions.get(sample_id)
        if session is None or session.sample_type != sample_type:
            return None
        found = [s for s in session.samples if s[0] >= earliest][: min(count, room)]
        return (session, found) if found else None

    def _value(self, session: SamplingSession) -> int | None:
        if session.sample_type == SampleType.Instantaneous_Demand:
            return self.meter.read(A.INSTANTANEOUS_DEMAND)
        attr = (
            A.CURRENT_SUMM_DELIVERED
            if session.sample_type == SampleType.Consumption_Delivered
            else A.CURRENT_SUMM_RECEIVED
        )
        return self.meter.read(attr)

    def _sample_due(self, now: int) -> None:
        """Take the samples due. A consumption session's first tick (its start) reads the
        baseline only; each later one the advance over the interval before it."""
        for session in self.sessions.values():
            due = session.next_time
            if due is None or due > now:
                continue
            value = self._value(session)
            if session.sample_type == SampleType.Instantaneous_Demand:
                if value is not None:
                    session.samples.append((due, value & 0xFFFFFF))
                session.taken += 1
            elif session.baseline is None:
                session.baseline = value
            else:
                if value is not None:
                    used = max(0, summation_advance(session.baseline, value))
                    session.samples.append((due - session.interval, min(used, 0xFFFFFF)))
                    session.baseline = value
                session.taken += 1
            late = (now - due) // session.interval + 1  # missed ticks are not made up
            session.next_time = due + late * session.interval
            if session.taken >= session.max_samples:
                session.next_time = None
            self.changed = True

    # -- time --------------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """The next scheduled or planned snapshot, or sample."""
        times = [s.next_time for s in self.schedules.values()]
        times += [at for at, _, _ in self.planned.values()]
        times += [s.next_time for s in self.sessions.values() if s.next_time is not None]
        return min(times, default=None)

    def handle_timeout(self, now: int) -> bool:
        """Take the snapshots and samples due; True when something changed."""
        before = self.changed
        self.changed = False
        for schedule in self.schedules.values():
            if schedule.next_time <= now:
                cause = schedule.entry.cause | MeterSnapshotCause.Scheduled_Snapshot
                self.take(now, cause, schedule.entry.payload_type)
                schedule.count += 1
                schedule.next_time = _occurrence(schedule.entry, schedule.start, schedule.count)
                self._skip_past(schedule, now + 1)
        for key, (at, planned, change) in sorted(self.planned.items(), key=lambda kv: kv[1]):
            if at <= now:
                del self.planned[key]
                self._taken(change, at)
                self.take(now, planned)
        self._sample_due(now)
        changed = self.changed
        self.changed = before or changed
        return changed

    # -- frames ------------------------------------------------------------------------------

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Answer one command of the group (:data:`COMMANDS`)."""
        cid = msg.command_id
        if cid == S.TAKE_SNAPSHOT:
            cause = int(command.snapshot_cause) | MeterSnapshotCause.Manually_Triggered_From_Client
            taken = self.take(now, cause)
            schema = Metering.ClientCommandDefs.take_snapshot_response.schema
            payload = encode_command(
                schema(
                    snapshot_id=taken.snapshot_id,
                    snapshot_confirmation=SnapshotConfirmation.Accepted,
                )
            )
            return _reply(msg, C.TAKE_SNAPSHOT_RESPONSE, payload)
        if cid == S.SCHEDULE_SNAPSHOT:
            issuer = int(command.issuer_event_id)
            answers = ScheduleAnswers(
                (entry.schedule_id, self.schedule(entry, issuer, now))
                for entry in command.schedules
            )
            schema = Metering.ClientCommandDefs.schedule_snapshot_response.schema
            payload = encode_command(schema(issuer_event_id=issuer, answers=answers))
            return _reply(msg, C.SCHEDULE_SNAPSHOT_RESPONSE, payload)
        if cid == S.GET_SNAPSHOT:
            return self._get_snapshot(msg, command)
        if cid == S.START_SAMPLING:
            sid = self.start_sampling(
                int(command.issuer_event_id),
                start=int(command.start_sampling_time),
                sample_type=int(command.sample_type),
                interval=int(command.sample_request_interval),
                count=int(command.max_number_of_samples),
                now=now,
            )
            schema = Metering.ClientCommandDefs.start_sampling_response.schema
            return _reply(msg, C.START_SAMPLING_RESPONSE, encode_command(schema(sample_id=sid)))
        return self._get_sampled(msg, command)

    def _get_snapshot(self, msg: ZclMessage, command: Any) -> Step:
        found = self.find(
            int(command.earliest_start_time),
            int(command.latest_end_time),
            int(command.snapshot_cause),
        )
        offset = int(command.snapshot_offset)
        if offset >= len(found):
            return Step(status=foundation.Status.NOT_FOUND)
        snapshot = found[offset]
        room = max_zcl_payload(group=False, aps_encrypted=msg.aps_encrypted) - _PUBLISH_HEADER
        sub = snapshot.sub_payload()
        parts = [sub[i : i + room] for i in range(0, len(sub), room)] or [b""]
        schema = Metering.ClientCommandDefs.publish_snapshot.schema
        sends = tuple(
            Send(
                cluster_id=METERING,
                command_id=C.PUBLISH_SNAPSHOT,
                payload=encode_command(
                    schema(
                        snapshot_id=snapshot.snapshot_id,
                        snapshot_time=snapshot.time,
                        total_snapshots_found=min(len(found), 0xFF),
                        command_index=index,
                        total_number_of_commands=len(parts),
                        snapshot_cause=snapshot.cause,
                        snapshot_payload_type=snapshot.payload_type,
                        snapshot_sub_payload=part,
                    )
                ),
                reply_to=msg,
            )
            for index, part in enumerate(parts)
        )
        return Step(sends=sends)

    def _get_sampled(self, msg: ZclMessage, command: Any) -> Step:
        room = (
            max_zcl_payload(group=False, aps_encrypted=msg.aps_encrypted) - _SAMPLED_HEADER
        ) // 3
        answer = self.sampled(
            int(command.sample_id),
            int(command.earliest_sample_time),
            int(command.sample_type),
            int(command.number_of_samples),
            room,
        )
        if answer is None:
            return Step(status=foundation.Status.NOT_FOUND)
        session, found = answer
        schema = Metering.ClientCommandDefs.get_sampled_data_response.schema
        payload = encode_command(
            schema(
                sample_id=session.sample_id,
                sample_start_time=found[0][0],
                sample_type=session.sample_type,
                sample_request_interval=session.interval,
                number_of_samples=len(found),
                samples=Samples(value for _, value in found),
            )
        )
        return _reply(msg, C.GET_SAMPLED_DATA_RESPONSE, payload)

    # -- persistence -------------------------------------------------------------------------

    def record(self) -> dict[str, Any]:
        """Everything kept, as stored (:data:`RECORD_SHAPE`)."""
        return {
            "snapshots": [
                [s.snapshot_id, s.time, s.cause, s.payload_type, s.summation, list(s.tiers)]
                for s in self.snapshots
            ],
            "next_snapshot": self._next_snapshot,
            "schedules": [
                [
                    s.entry.schedule_id,
                    s.entry.start_time,
                    s.entry.schedule,
                    s.entry.payload_type,
                    s.entry.cause,
                    s.issuer_event_id,
                    s.start,
                    s.next_time,
                    s.count,
                ]
                for s in self.schedules.values()
            ],
            "sessions": [
                [
                    s.sample_id,
                    s.issuer_event_id,
                    s.sample_type,
                    s.interval,
                    s.max_samples,
                    s.start,
                    s.next_time,
                    s.taken,
                    s.baseline,
                    [list(sample) for sample in s.samples],
                ]
                for s in self.sessions.values()
            ],
            "last_issuer": self._last_issuer,
            "next_sample": self._next_sample,
            "planned": [[key, *planned] for key, planned in self.planned.items()],
            "taken": [[change, at] for change, at in self.taken.items()],
        }

    def restore(self, record: Any) -> None:
        """Take a stored :meth:`record` back; :class:`~zse.records.Mismatch` (nothing
        changed) when it does not fit."""
        check(record, RECORD_SHAPE)
        if (
            len(record["schedules"]) > self.max_schedules
            or len(record["sessions"]) > self.max_sessions
        ):
            raise Mismatch("more schedules or sessions than this meter keeps")
        snapshots = [
            Snapshot(i, w, c, p, v, tuple(tiers)) for i, w, c, p, v, tiers in record["snapshots"]
        ]
        schedules = {}
        for sid, start_time, sched, ptype, cause, issuer, start, nxt, count in record["schedules"]:
            entry = ScheduleEntry(sid, start_time, sched, ptype, cause)
            schedules[sid] = SnapshotSchedule(entry, issuer, start, nxt, count)
        sessions = {}
        for sid, issuer, stype, interval, most, start, nxt, taken, base, got in record["sessions"]:
            if len(got) > most or interval < 1:
                raise Mismatch(f"sampling session {sid} does not fit its own limits")
            sessions[sid] = SamplingSession(
                sid, issuer, stype, interval, most, start, nxt, taken, base, [tuple(g) for g in got]
            )
        self.snapshots = snapshots[: self.capacity]
        self.schedules = schedules
        self.sessions = sessions
        planned = {key: (at, why, change) for key, at, why, change in record.get("planned", [])}
        done: dict[str, int] = dict(record.get("taken", []))
        if len(planned) > MAX_PLANNED or len(done) > MAX_PLANNED:
            raise Mismatch("more planned or taken snapshots than a meter keeps")
        self.planned = planned
        self.taken = done
        self._next_snapshot = record["next_snapshot"]
        self._last_issuer = record["last_issuer"]
        self._next_sample = record["next_sample"]


_U32 = Int(0, 0xFFFFFFFF)
RECORD_SHAPE = Fields(
    {
        "snapshots": ListOf(
            TupleOf(_U32, _U32, _U32, Int(0, 0xFF), Int(0, _UINT48), ListOf(Int(0, _UINT48)))
        ),
        "next_snapshot": Int(1, 0xFFFFFFFF),
        "schedules": ListOf(
            TupleOf(
                Int(0, 0xFF),
                _U32,
                Int(0, 0xFFFFFF),
                Int(0, 0xFF),
                _U32,
                _U32,
                _U32,
                Int(0, _NEVER),
                Int(0, 1 << 32),
            )
        ),
        "sessions": ListOf(
            TupleOf(
                Int(1, 0xFFFE),
                _U32,
                Int(0, 0xFF),
                Int(1, 0xFFFF),
                Int(1, MAX_SAMPLES),
                _U32,
                Opt(Int(0, 1 << 40)),
                Int(0, 0xFFFF),
                Opt(Int(-(1 << 23), _UINT48)),
                ListOf(TupleOf(Int(0, 1 << 40), Int(0, 0xFFFFFF))),
            )
        ),
        "last_issuer": _U32,
        "next_sample": Int(1, 0xFFFE),
    },
    {  # since 2026-12-07
        "planned": ListOf(TupleOf(STR, _U32, _U32, STR)),
        "taken": ListOf(TupleOf(STR, _U32)),
    },
)


def _reply(msg: ZclMessage, command_id: int, payload: bytes) -> Step:
    return Step(
        sends=(Send(cluster_id=METERING, command_id=command_id, payload=payload, reply_to=msg),)
    )


# -- the display's side -----------------------------------------------------------------------


def _request(meter: Destination, command_id: int, answers: Iterable[int], payload: bytes) -> Send:
    return Send(
        cluster_id=METERING,
        command_id=command_id,
        payload=payload,
        to=meter,
        from_server=False,
        answers=frozenset(answers),
    )


def take_snapshot_request(meter: Destination, cause: int = MeterSnapshotCause.General) -> Send:
    """Take Snapshot: the meter snapshots now (its answer: Take Snapshot Response)."""
    schema = Metering.ServerCommandDefs.take_snapshot.schema
    payload = encode_command(schema(snapshot_cause=cause))
    return _request(meter, S.TAKE_SNAPSHOT, (C.TAKE_SNAPSHOT_RESPONSE,), payload)


def schedule_snapshot_request(
    meter: Destination, issuer_event_id: int, schedules: Sequence[ScheduleEntry]
) -> Send:
    """Schedule Snapshot of ``schedules`` in one command."""
    schema = Metering.ServerCommandDefs.schedule_snapshot.schema
    payload = encode_command(
        schema(
            issuer_event_id=issuer_event_id,
            command_index=0,
            total_number_of_commands=1,
            schedules=SnapshotSchedules(schedules),
        )
    )
    return _request(meter, S.SCHEDULE_SNAPSHOT, (C.SCHEDULE_SNAPSHOT_RESPONSE,), payload)


def get_snapshot_request(
    meter: Destination,
    *,
    earliest: int = 0,
    latest: int = 0xFFFFFFFF,
    offset: int = 0,
    cause: int = ANY_CAUSE,
) -> Send:
    """Get Snapshot: the ``offset``-th newest snapshot in [earliest, latest] of ``cause``."""
    schema = Metering.ServerCommandDefs.get_snapshot.schema
    payload = encode_command(
        schema(
            earliest_start_time=earliest,
            latest_end_time=latest,
            snapshot_offset=offset,
            snapshot_cause=cause,
        )
    )
    return _request(meter, S.GET_SNAPSHOT, (C.PUBLISH_SNAPSHOT,), payload)


def start_sampling_request(
    meter: Destination,
    issuer_event_id: int,
    *,
    sample_type: int = SampleType.Instantaneous_Demand,
    interval: int = 60,
    count: int = 10,
    start: int = 0,
) -> Send:
    """Start Sampling (``start`` 0: now; 0xFFFFFFFF: cancel ``issuer_event_id``'s)."""
    schema = Metering.ServerCommandDefs.start_sampling.schema
    payload = encode_command(
        schema(
            issuer_event_id=issuer_event_id,
            start_sampling_time=start,
            sample_type=sample_type,
            sample_request_interval=interval,
            max_number_of_samples=count,
        )
    )
    return _request(meter, S.START_SAMPLING, (C.START_SAMPLING_RESPONSE,), payload)


def get_sampled_data_request(
    meter: Destination,
    sample_id: int,
    *,
    earliest: int = 0,
    sample_type: int = SampleType.Instantaneous_Demand,
    count: int = 19,
) -> Send:
    """Get Sampled Data: up to ``count`` samples of session ``sample_id`` from ``earliest``."""
    schema = Metering.ServerCommandDefs.get_sampled_data.schema
    payload = encode_command(
        schema(
            sample_id=sample_id,
            earliest_sample_time=earliest,
            sample_type=sample_type,
            number_of_samples=count,
        )
    )
    return _request(meter, S.GET_SAMPLED_DATA, (C.GET_SAMPLED_DATA_RESPONSE,), payload)


@dataclass(frozen=True)
class PublishedSnapshot:
    """A snapshot as the meter published it (every command's part joined): ``tou`` is the
    TOU sub-payload read (None for another payload type, whose octets are ``payload``)."""

    snapshot_id: int
    time: int
    total_found: int
    cause: int
    payload_type: int
    payload: bytes
    tou: TouSnapshot | None


def published_snapshot(commands: Sequence[Any]) -> PublishedSnapshot:
    """Join the decoded Publish Snapshot ``commands`` of one snapshot (any order);
    :class:`InvalidFrame` when they are not all of it, disagree, or the TOU part does not
    read."""
    if not commands:
        raise InvalidFrame("Publish Snapshot: no command")
    first = commands[0]
    total = int(first.total_number_of_commands)
    heads = {(int(c.snapshot_id), int(c.snapshot_time), int(c.snapshot_cause)) for c in commands}
    parts = {int(c.command_index): bytes(c.snapshot_sub_payload) for c in commands}
    if len(heads) != 1 or set(parts) != set(range(total)) or len(commands) != total:
        raise InvalidFrame(
            f"Publish Snapshot: commands {sorted(parts)} of {total} do not make one snapshot"
        )
    payload = b"".join(parts[i] for i in range(total))
    ptype = int(first.snapshot_payload_type)
    tou = TouSnapshot.decode(ptype, payload) if ptype in (0, 1, 4, 5) else None
    return PublishedSnapshot(
        int(first.snapshot_id),
        int(first.snapshot_time),
        int(first.total_snapshots_found),
        int(first.snapshot_cause),
        ptype,
        payload,
        tou,
    )


@dataclass(frozen=True)
class SampledData:
    """A Get Sampled Data Response: samples from ``start_time``, every ``interval`` s."""

    sample_id: int
    start_time: int
    sample_type: int
    interval: int
    samples: tuple[int, ...]

    def values(self) -> tuple[int, ...]:
        """The samples as numbers: InstantaneousDemand ones signed (24-bit two's complement)."""
        if self.sample_type != SampleType.Instantaneous_Demand:
            return self.samples
        return tuple(v - (1 << 24) if v & 0x800000 else v for v in self.samples)


def sampled_data(command: Any) -> SampledData:
    """A decoded Get Sampled Data Response; :class:`InvalidFrame` when its count is not the
    samples it carries."""
    samples = tuple(command.samples)
    if int(command.number_of_samples) != len(samples):
        raise InvalidFrame(
            f"Get Sampled Data Response: {int(command.number_of_samples)} samples announced, "
            f"{len(samples)} carried"
        )
    return SampledData(
        int(command.sample_id),
        int(command.sample_start_time),
        int(command.sample_type),
        int(command.sample_request_interval),
        samples,
    )
