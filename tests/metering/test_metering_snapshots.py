"""SE 1.2 Metering snapshots and sampling at the ZCL frame (zse.metering.snapshots, through
MeterServerProtocol), with no event loop: Take / Schedule / Get Snapshot, Publish Snapshot
split over commands, Start Sampling and Get Sampled Data, their bounds, the stored record;
and the frames as tshark 4.0 dissects them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect
from tests.metering.test_meter_protocol import T0, frame, meter
from zse.errors import InvalidFrame
from zse.metering.core import Readings
from zse.metering.protocol import MeterServerProtocol
from zse.metering.snapshot_types import (
    FREQUENCY_DAY,
    FREQUENCY_MONTH,
    WILD_END_OF,
    MeterSnapshotCause,
    SampleType,
    ScheduleEntry,
    SnapshotScheduleConfirmation,
    TouSnapshot,
    schedule_field,
)
from zse.metering.snapshots import (
    MAX_PLANNED,
    MAX_SAMPLES,
    MAX_SESSIONS,
    MAX_SNAPSHOTS,
    NO_SAMPLE_ID,
    SnapshotCore,
    SnapshotsFull,
    get_sampled_data_request,
    get_snapshot_request,
    published_snapshot,
    sampled_data,
    schedule_snapshot_request,
    start_sampling_request,
    take_snapshot_request,
)
from zse.metering.wire import Metering
from zse.records import Mismatch
from zse.se.ids import METERING, MeteringClientCommand
from zse.zcl.codec import decode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, encode_zcl_header

C = MeteringClientCommand
METER = Destination.device(0x0000, 1)
NOT_FOUND = foundation.Status.NOT_FOUND
MANUAL = MeterSnapshotCause.Manually_Triggered_From_Client
DAY = 86400


def with_snapshots(**kwargs) -> MeterServerProtocol:
    p = meter()
    p.snapshots = SnapshotCore(p.core, **kwargs)
    return p


def ask(p: MeterServerProtocol, send: Send, now: int) -> Step:
    return p.handle(frame(send.command_id, send.payload), now)


def answers(step: Step) -> list:
    return [
        decode_command(Metering, s.command_id, s.payload, from_server=True)[0] for s in step.sends
    ]


def test_take_snapshot_then_get_snapshot_publishes_the_summation() -> None:
    p = with_snapshots()
    p.core.update(Readings(summation_delivered=123_456), T0 + 10)
    (taken,) = answers(ask(p, take_snapshot_request(METER, MeterSnapshotCause.General), T0 + 10))
    assert (int(taken.snapshot_id), int(taken.snapshot_confirmation)) == (1, 0)
    step = ask(p, get_snapshot_request(METER), T0 + 20)
    assert [s.command_id for s in step.sends] == [C.PUBLISH_SNAPSHOT]
    got = published_snapshot(answers(step))
    assert (got.snapshot_id, got.time, got.total_found) == (1, T0 + 10, 1)
    assert got.cause == MeterSnapshotCause.General | MANUAL
    assert got.payload_type == 4  # TOU Information Set Delivered (No Billing)
    assert got.tou == TouSnapshot(summation=123_456)


def test_get_snapshot_selects_by_time_cause_and_offset_or_not_found() -> None:
    p = with_snapshots()
    assert ask(p, get_snapshot_request(METER), T0).status == NOT_FOUND  # none yet
    for minute, cause in enumerate((1, 2, 1)):
        p.snapshots.take(T0 + 60 * minute, cause)  # type: ignore[union-attr]
    newest = published_snapshot(answers(ask(p, get_snapshot_request(METER), T0 + 999)))
    assert (newest.snapshot_id, newest.total_found) == (3, 3)
    second = ask(p, get_snapshot_request(METER, cause=1, offset=1), T0 + 999)
    assert published_snapshot(answers(second)).snapshot_id == 1
    window = ask(p, get_snapshot_request(METER, earliest=T0 + 30, latest=T0 + 90), T0 + 999)
    assert published_snapshot(answers(window)).snapshot_id == 2
    assert ask(p, get_snapshot_request(METER, cause=1, offset=2), T0).status == NOT_FOUND
    assert ask(p, get_snapshot_request(METER, cause=4), T0).status == NOT_FOUND


def test_the_snapshot_ring_keeps_the_newest() -> None:
    p = with_snapshots()
    for second in range(MAX_SNAPSHOTS + 5):
        p.snapshots.take(T0 + second, 1)  # type: ignore[union-attr]
    got = published_snapshot(answers(ask(p, get_snapshot_request(METER), T0 + 99)))
    assert (got.snapshot_id, got.total_found) == (MAX_SNAPSHOTS + 5, MAX_SNAPSHOTS)
    assert len(p.snapshots.snapshots) == MAX_SNAPSHOTS  # type: ignore[union-attr]


def test_a_large_snapshot_is_split_over_commands_and_joined() -> None:
    """15 tier summations (97 octets) do not fit one APS-encrypted frame after the 16
    leading octets (70 - 16 = 54): two commands, only the leading fields repeated."""
    tiers = [0x0102_0304_0500 + i for i in range(15)]
    p = with_snapshots(tiers=lambda delivered: tiers)
    p.core.update(Readings(summation_delivered=77), T0)
    p.snapshots.take(T0, 1)  # type: ignore[union-attr]
    step = ask(p, get_snapshot_request(METER), T0)
    parts = answers(step)
    assert [(int(c.command_index), int(c.total_number_of_commands)) for c in parts] == [
        (0, 2),
        (1, 2),
    ]
    assert all(len(s.payload) <= 70 for s in step.sends)
    got = published_snapshot(list(reversed(parts)))
    assert got.tou == TouSnapshot(summation=77, tiers=tuple(tiers))
    with pytest.raises(InvalidFrame, match="do not make one snapshot"):
        published_snapshot(parts[:1])


def test_schedule_snapshot_takes_snapshots_on_its_schedule() -> None:
    p = with_snapshots()
    core = p.snapshots
    assert core is not None
    every_day = ScheduleEntry(1, T0 + 100, schedule_field(1, FREQUENCY_DAY), 4, 1)
    send = schedule_snapshot_request(METER, 5, [every_day])
    (answer,) = answers(ask(p, send, T0))
    assert (int(answer.issuer_event_id), list(answer.answers)) == (5, [(1, 0)])
    assert core.next_deadline() == T0 + 100
    assert core.handle_timeout(T0 + 100)
    assert core.next_deadline() == T0 + 100 + DAY
    # off for three days: one snapshot, the next one in the future (missed ones not made up)
    assert core.handle_timeout(T0 + 100 + 3 * DAY + 5)
    assert core.next_deadline() == T0 + 100 + 4 * DAY
    assert [s.time for s in core.snapshots] == [T0 + 100 + 3 * DAY + 5, T0 + 100]
    assert all(s.cause == 1 | MeterSnapshotCause.Scheduled_Snapshot for s in core.snapshots)
    # a thousand days off: one snapshot, the next one a day later
    assert core.handle_timeout(T0 + 100 + 1000 * DAY + 7)
    assert core.next_deadline() == T0 + 100 + 1001 * DAY
    assert core.schedules[1].count == 1001


def test_a_month_end_schedule_lands_on_the_last_day() -> None:
    core = with_snapshots().snapshots
    assert core is not None
    jan1 = 8766 * DAY  # 2024-01-01 00:00 UTC in ZigBee time
    entry = ScheduleEntry(2, jan1, schedule_field(1, FREQUENCY_MONTH, WILD_END_OF), 4, 1)
    assert core.schedule(entry, 1, jan1) == SnapshotScheduleConfirmation.Accepted
    core.handle_timeout(core.next_deadline())  # type: ignore[arg-type]
    # 2024 is a leap year: the end of February is the 29th
    assert core.next_deadline() == jan1 + (31 + 28) * DAY
    core.handle_timeout(jan1 + (31 + 28) * DAY)
    assert core.next_deadline() == jan1 + (31 + 29 + 30) * DAY  # March 31st


def test_a_month_schedule_past_utctime_never_stops_the_timer() -> None:
    """A Schedule Snapshot of 2**20 - 1 months (the field's largest) is not an exception at
    the frame nor at its first snapshot: its next time is never, and the sampling beside it
    goes on (the core's one deadline was stuck on it)."""
    p = with_snapshots()
    core = p.snapshots
    assert core is not None
    p.core.update(Readings(instantaneous_demand=5), T0)
    far = schedule_field(0xFFFFF, FREQUENCY_MONTH)
    entries = [ScheduleEntry(1, 1, far, 4, 1), ScheduleEntry(2, T0 + 100, far, 4, 1)]
    (answer,) = answers(ask(p, schedule_snapshot_request(METER, 5, entries), T0))
    assert list(answer.answers) == [(1, 0), (2, 0)]
    assert core.start_sampling(1, start=0, sample_type=4, interval=60, count=5, now=T0) == 1
    assert core.handle_timeout(T0 + 100)
    assert [s.time for s in core.snapshots] == [T0 + 100]
    assert core.next_deadline() == T0 + 120
    core.handle_timeout(T0 + 120)
    assert len(core.sessions[1].samples) == 3
    again = SnapshotCore(meter().core)
    again.restore(core.record())
    assert again.next_deadline() == T0 + 180


def test_schedule_snapshot_refusals() -> None:
    p = with_snapshots(max_schedules=2)
    core = p.snapshots
    assert core is not None
    ok = schedule_field(1, FREQUENCY_DAY)
    entries = [
        ScheduleEntry(1, 0, ok, 0, 1),  # billing type: no bill held
        ScheduleEntry(2, 0, ok, 5, 1),  # received: a delivered-only meter
        ScheduleEntry(3, 0, schedule_field(0, FREQUENCY_DAY), 4, 1),  # frequency 0
        ScheduleEntry(4, 0, schedule_field(1, 3), 4, 1),  # reserved frequency type
        ScheduleEntry(5, 0, ok, 4, 1),
        ScheduleEntry(6, 0, ok, 4, 1),
        ScheduleEntry(7, 0, ok, 4, 1),  # a third: no room
        ScheduleEntry(5, 0, schedule_field(2, FREQUENCY_DAY), 4, 1),  # replaces 5
    ]
    (answer,) = answers(ask(p, schedule_snapshot_request(METER, 1, entries), T0))
    c = SnapshotScheduleConfirmation
    assert list(answer.answers) == [
        (1, c.Snapshot_Type_Not_Supported),
        (2, c.Snapshot_Type_Not_Supported),
        (3, c.Snapshot_Schedule_Not_Currently_Available),
        (4, c.Snapshot_Schedule_Not_Currently_Available),
        (5, c.Accepted),
        (6, c.Accepted),
        (7, c.Insufficient_Space_For_Snapshot_Schedule),
        (5, c.Accepted),
    ]
    assert sorted(core.schedules) == [5, 6]
    assert core.schedules[5].entry.frequency == 2


def test_sampling_demand_every_interval_and_get_sampled_data() -> None:
    p = with_snapshots()
    core = p.snapshots
    assert core is not None
    p.core.update(Readings(summation_delivered=0, instantaneous_demand=1500), T0)
    send = start_sampling_request(METER, 1, interval=60, count=4)
    (answer,) = answers(ask(p, send, T0))
    sid = int(answer.sample_id)
    assert sid == 1
    for k, demand in enumerate((1600, -200, 1700, 9999), start=1):
        p.core.update(Readings(instantaneous_demand=demand), T0 + 60 * k)
        core.handle_timeout(T0 + 60 * k)
    assert core.next_deadline() is None  # 4 samples taken: finished
    step = ask(p, get_sampled_data_request(METER, sid), T0 + 999)
    got = sampled_data(answers(step)[0])
    assert (got.start_time, got.interval) == (T0, 60)
    assert got.values() == (1500, 1600, -200, 1700)
    later = ask(p, get_sampled_data_request(METER, sid, earliest=T0 + 61, count=1), T0 + 999)
    assert sampled_data(answers(later)[0]).values() == (-200,)
    assert ask(p, get_sampled_data_request(METER, sid + 1), T0).status == NOT_FOUND
    other_type = get_sampled_data_request(METER, sid, sample_type=SampleType.Consumption_Delivered)
    assert ask(p, other_type, T0).status == NOT_FOUND


def test_sampling_consumption_is_the_advance_per_interval() -> None:
    p = with_snapshots()
    core = p.snapshots
    assert core is not None
    p.core.update(Readings(summation_delivered=1000), T0)
    sid = core.start_sampling(
        7, start=T0 + 30, sample_type=SampleType.Consumption_Delivered, interval=30, count=3, now=T0
    )
    for k, summation in enumerate((1000, 1010, 1030, 1060, 1100)):
        p.core.update(Readings(summation_delivered=summation), T0 + 30 + 30 * k)
        core.handle_timeout(T0 + 30 + 30 * k)
    step = ask(p, get_sampled_data_request(METER, sid, sample_type=0), T0 + 999)
    got = sampled_data(answers(step)[0])
    assert (got.start_time, got.samples) == (T0 + 30, (10, 20, 30))


def test_a_flood_of_start_sampling_stays_bounded() -> None:
    p = with_snapshots()
    core = p.snapshots
    assert core is not None
    p.core.update(Readings(instantaneous_demand=5), T0)
    ids = [
        int(
            answers(
                ask(p, start_sampling_request(METER, issuer, interval=1, count=MAX_SAMPLES), T0)
            )[0].sample_id
        )
        for issuer in range(1, 1001)
    ]
    assert ids[:MAX_SESSIONS] == list(range(1, MAX_SESSIONS + 1))
    assert set(ids[MAX_SESSIONS:]) == {NO_SAMPLE_ID}
    assert len(core.sessions) == MAX_SESSIONS
    # each session keeps at most its samples; work per tick is one sample per session
    for second in range(1, 3 * MAX_SAMPLES):
        core.handle_timeout(T0 + second)
    assert all(len(s.samples) == MAX_SAMPLES for s in core.sessions.values())
    assert core.next_deadline() is None
    # finished sessions make room; refusals: too many samples, interval 0, old issuer, type
    assert (
        core.start_sampling(2000, start=0, sample_type=4, interval=1, count=MAX_SAMPLES + 1, now=T0)
        == NO_SAMPLE_ID
    )
    assert (
        core.start_sampling(2000, start=0, sample_type=4, interval=0, count=1, now=T0)
        == NO_SAMPLE_ID
    )
    assert (
        core.start_sampling(3, start=0, sample_type=4, interval=1, count=1, now=T0) == NO_SAMPLE_ID
    )
    assert (
        core.start_sampling(2000, start=0, sample_type=2, interval=1, count=1, now=T0)
        == NO_SAMPLE_ID
    )
    assert core.start_sampling(2000, start=0, sample_type=4, interval=1, count=1, now=T0) == 5
    assert len(core.sessions) == MAX_SESSIONS


def test_start_sampling_cancel_by_issuer() -> None:
    core = with_snapshots().snapshots
    assert core is not None
    sid = core.start_sampling(9, start=T0 + 60, sample_type=4, interval=10, count=5, now=T0)
    assert (
        core.start_sampling(9, start=0xFFFFFFFF, sample_type=4, interval=10, count=5, now=T0) == sid
    )
    assert core.sessions == {}
    assert (
        core.start_sampling(9, start=0xFFFFFFFF, sample_type=4, interval=1, count=1, now=T0)
        == NO_SAMPLE_ID
    )


def test_the_record_round_trips_and_a_bad_one_is_refused() -> None:
    p = with_snapshots()
    core = p.snapshots
    assert core is not None
    p.core.update(Readings(summation_delivered=5, instantaneous_demand=-3), T0)
    core.take(T0, 1)
    core.schedule(ScheduleEntry(1, T0 + 10, schedule_field(1, FREQUENCY_DAY), 4, 1), 1, T0)
    core.start_sampling(3, start=0, sample_type=4, interval=5, count=3, now=T0)
    record = core.record()
    again = SnapshotCore(meter().core)
    again.restore(record)
    assert again.record() == record
    assert again.next_deadline() == core.next_deadline()
    record["sessions"][0][9] = [[T0, 1]] * 4  # more samples than its maximum
    with pytest.raises(Mismatch):
        SnapshotCore(meter().core).restore(record)


def test_a_planned_snapshot_is_taken_at_its_time_once_bounded_and_stored() -> None:
    """A snapshot planned for a change's time is taken then (the register as it is then),
    once; planned again under its key it moves; dropped, it is not taken; one for now or the
    past is taken at once; past MAX_PLANNED keys SnapshotsFull changes nothing; the plan is
    in the record (an older record without it loads; a damaged one does not)."""
    p = with_snapshots()
    core = p.snapshots
    assert core is not None
    p.core.update(Readings(summation_delivered=5), T0)
    assert core.plan("tariff/5/7", T0 + 100, 0x40, T0) is None
    assert core.plan("tariff/5/7", T0 + 50, 0x40, T0) is None  # moved
    assert core.plan("tenancy", T0 + 80, 0x100, T0) is None
    assert core.unplan("tenancy")
    assert not core.unplan("tenancy")
    now = core.plan("supplier", T0, 0x200, T0)
    assert now is not None
    assert now.time == T0
    assert core.next_deadline() == T0 + 50
    record = core.record()
    p.core.update(Readings(summation_delivered=9), T0 + 40)
    assert core.handle_timeout(T0 + 49) is False
    assert core.handle_timeout(T0 + 50) is True
    assert [(s.time, s.cause, s.summation) for s in core.snapshots] == [
        (T0 + 50, 0x40, 9),
        (T0, 0x200, 5),
    ]
    assert core.next_deadline() is None
    assert core.handle_timeout(T0 + 100) is False  # once: the move left nothing behind
    again = SnapshotCore(meter().core)
    again.restore(record)
    assert (again.planned, again.record()) == (
        {"tariff/5/7": (T0 + 50, 0x40, "tariff/5/7")},
        record,
    )
    older = {k: v for k, v in record.items() if k != "planned"}
    SnapshotCore(meter().core).restore(older)
    for key in range(MAX_PLANNED - 1):
        core.plan(f"k{key}", T0 + 200, 1, T0 + 100)
    core.plan("last", T0 + 200, 1, T0 + 100)
    with pytest.raises(SnapshotsFull):
        core.plan("one more", T0 + 200, 1, T0 + 100)
    assert "one more" not in core.planned
    core.plan("last", T0 + 300, 1, T0 + 100)  # a key planned already moves
    for damaged in ([["k", T0, 1]], [[1, T0, 1, "k"]], [["k", -1, 1, "k"]], [["k", T0, 1, 2]]):
        with pytest.raises(Mismatch):
            SnapshotCore(meter().core).restore({**record, "planned": damaged})
    too_many = [[f"k{i}", T0, 1, f"k{i}"] for i in range(MAX_PLANNED + 1)]
    with pytest.raises(Mismatch):
        SnapshotCore(meter().core).restore({**record, "planned": too_many})
    with pytest.raises(Mismatch):
        SnapshotCore(meter().core).restore({**record, "taken": [[c, T0] for c, *_ in too_many]})


def test_a_change_published_again_is_snapshot_once() -> None:
    """The same tariff published again (to another device) once its snapshot was taken, now
    or at its time, takes none; the same change at another time, or another change under the
    same key (a newer change of tenancy), does; the changes remembered are bounded and
    stored."""
    p = with_snapshots()
    core = p.snapshots
    assert core is not None
    p.core.update(Readings(summation_delivered=5), T0)
    assert core.plan("tariff/5/7", 0, 0x40, T0) is not None
    assert core.plan("tariff/5/7", 0, 0x40, T0 + 5) is None  # again, to another device
    core.plan("tenancy", T0 + 10, 0x100, T0, "tenancy/5/9")
    core.handle_timeout(T0 + 10)
    assert core.plan("tenancy", T0 + 10, 0x100, T0 + 20, "tenancy/5/9") is None
    assert core.plan("tenancy", 0, 0x100, T0 + 20, "tenancy/5/10") is not None  # a newer one
    assert core.plan("tariff/5/7", T0 + 30, 0x40, T0 + 20) is None  # moved: planned again
    assert core.planned == {"tariff/5/7": (T0 + 30, 0x40, "tariff/5/7")}
    assert [s.cause for s in core.snapshots] == [0x100, 0x100, 0x40]
    again = SnapshotCore(meter().core)
    again.restore(core.record())
    assert again.taken == core.taken
    for n in range(MAX_PLANNED + 2):
        core.plan(f"tariff/1/{n}", 0, 0x40, T0 + 40)
    assert len(core.taken) == MAX_PLANNED
    assert "tariff/1/0" not in core.taken  # the oldest forgotten first


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=40), command_id=st.sampled_from([4, 5, 6, 7, 8]))
def test_garbage_is_a_status_never_an_exception(payload: bytes, command_id: int) -> None:
    p = with_snapshots()
    step = p.handle(frame(command_id, payload), T0)
    assert step.sends or step.status is not None


# --- tshark -------------------------------------------------------------------------------

P = "zbee_zcl_se.met."


@pytest.mark.oracle
def test_tshark_reads_the_meters_answers(tmp_path) -> None:
    """The Publish Snapshot parts and the Get Sampled Data Response the core sends, as
    tshark 4.0 dissects them: the same leading fields, the sub-payload octets, the samples."""
    tiers = list(range(1, 16))
    p = with_snapshots(tiers=lambda delivered: tiers)
    p.core.update(Readings(summation_delivered=0x0A0B0C, instantaneous_demand=-2), T0)
    p.snapshots.take(T0, 1)  # type: ignore[union-attr]
    p.snapshots.start_sampling(1, start=0, sample_type=4, interval=60, count=2, now=T0)  # type: ignore[union-attr]
    sends = [
        *ask(p, get_snapshot_request(METER), T0).sends,
        *ask(p, get_sampled_data_request(METER, 1), T0).sends,
    ]
    frames = [
        air_frame(METERING, encode_zcl_header(0x19, None, seq, s.command_id) + s.payload, seq)
        for seq, s in enumerate(sends)
    ]
    first, second, sampled = dissect(frames, tmp_path)
    for packet in (first, second, sampled):
        assert not packet.malformed
    joined = b""
    for index, packet in enumerate((first, second)):
        assert [int(v) for v in packet.show(P + "publish_snapshot.command_index")] == [index]
        assert [int(v) for v in packet.show(P + "publish_snapshot.total_commands")] == [2]
        assert [int(v) for v in packet.show(P + "publish_snapshot.payload_type")] == [4]
        joined += bytes.fromhex(packet.raw(P + "publish_snapshot.sub_payload")[0])
    assert TouSnapshot.decode(4, joined) == TouSnapshot(summation=0x0A0B0C, tiers=tuple(tiers))
    assert [int(v) for v in sampled.show(P + "get_sampled_data_rsp.samples")] == [0xFFFFFE]
    assert [int(v) for v in sampled.show(P + "get_sampled_data_rsp.number_of_samples")] == [1]
