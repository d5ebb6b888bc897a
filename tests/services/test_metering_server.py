"""#14.2: the meter's Metering server (zse.metering.service.MeteringServer) between a zigpy ESI
and a simulated HAN device, on the virtual clock: Configure Reporting and the reports at the
right virtual times, Read Attributes, Get Profile over the air, fast poll, a polled reading
source, and the profile and reporting records kept across a restart."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.events.test_events_store_failure import FailingStore
from tests.metering.test_meter_protocol import INT24, UINT48, record
from tests.services.test_drlc_persistence import OPEN, close_stores
from zse.installcode import InstallCode
from zse.metering.core import Readings
from zse.metering.service import FastPollGranted, MeteringClient, MeteringServer, ProfileRefused
from zse.metering.wire import Metering
from zse.se.ids import METERING, MeteringServerCommand
from zse.se.types import GetProfileStatus, IntervalChannel
from zse.sim import Air
from zse.store import Batch, Store
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

__all__ = ["close_stores"]  # the autouse fixture that closes what OPEN holds

START = 1800 * 450_000  # ZigBee time of the simulation's start, on a 30-minute boundary
G = foundation.GeneralCommand


@dataclass
class Load:
    """A reading source: 2 kW steady, the summation in Wh counted from START."""

    watts: int = 2000
    asked: list[int] = field(default_factory=list)

    def readings(self, now: int) -> Readings:
        self.asked.append(now - START)
        return Readings(
            summation_delivered=(now - START) * self.watts // 3600, instantaneous_demand=self.watts
        )


async def han(seed: int, **meter: object):
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()
    base = loop.time()

    def clock() -> int:
        return START + int(loop.time() - base)

    se = SeEndpoint(app, in_clusters=[METERING])
    await se.start()
    server = MeteringServer(se, clock=clock, **meter)  # type: ignore[arg-type]
    code = InstallCode.generate(rng=air.rng)
    ihd = air.device("00:0d:6f:00:0d:00:00:02", install_code=code, channel=15)
    endpoint = ihd.add_endpoint(1, device_type=0x0502, out_clusters=[METERING])
    await app.permit_with_link_key(ihd.ieee, t.KeyData(code.link_key), 60)
    await ihd.join()
    await asyncio.sleep(30)
    return server, endpoint, clock


def reports_to(endpoint, clock) -> list[tuple[int, dict[int, int]]]:
    """(ZigBee time, attribute -> value) of each Report Attributes the device receives."""
    got: list[tuple[int, dict[int, int]]] = []
    schema = foundation.GENERAL_COMMANDS[G.Report_Attributes].schema

    def on_report(msg) -> None:
        if msg.command_id == G.Report_Attributes:
            command, _ = schema.deserialize(msg.payload)
            values = {int(a.attrid): int(a.value.value) for a in command.attribute_reports}
            got.append((clock(), values))

    endpoint.add_handler(METERING, on_report, general=True)
    return got


async def ask(endpoint, command_id: int, payload: bytes, *, cluster: bool = True):
    return await endpoint.request(
        0x0000,
        SE_ENDPOINT_ID,
        METERING,
        command_id,
        payload,
        cluster_specific=cluster,
        encrypt=True,
    )


async def request_fast_poll(endpoint, period: int, minutes: int):
    """Request Fast Poll Mode (D.3.3.3.1.4) over the air: the meter's decoded response."""
    schema = Metering.ServerCommandDefs.request_fast_poll_mode.schema
    reply = await ask(
        endpoint,
        MeteringServerCommand.REQUEST_FAST_POLL_MODE,
        encode_command(schema(fast_poll_update_period=period, duration=minutes)),
    )
    answer, _ = decode_command(Metering, reply.command_id, reply.payload, from_server=True)
    return answer


def read_values(reply) -> dict[int, tuple[int, object]]:
    schema = foundation.GENERAL_COMMANDS[G.Read_Attributes_rsp].schema
    records, _ = schema.deserialize(reply.payload)
    return {
        r.attrid: (r.status, r.value.value if r.value else None) for r in records.status_records
    }


async def test_reports_at_the_configured_times_and_read_attributes() -> None:
    load = Load()
    server, endpoint, clock = await han(40, source=load, formatting={0x0302: 1000})
    await server.start()
    t0 = clock()
    got = reports_to(endpoint, clock)
    configure = record(0x0000, UINT48, 10, 120, 500) + record(0x0400, INT24, 5, 600, 500)
    reply = await ask(endpoint, G.Configure_Reporting, configure, cluster=False)
    assert (reply.command_id, reply.payload) == (G.Configure_Reporting_rsp, b"\x00")
    configured = clock()
    await asyncio.sleep(400)
    # the source is polled every DefaultUpdatePeriod (30 s): +16 Wh a poll, far below 500 Wh, so the
    # summation goes at its maximum interval (120 s); the demand never changes
    assert load.asked[:4] == [t0 - START + n * 30 for n in range(4)]
    assert [(when - configured, sorted(values)) for when, values in got] == [
        (120, [0x0000]),
        (240, [0x0000]),
        (360, [0x0000]),
    ]
    assert [values[0] for _, values in got] == [(when - START) * 2000 // 3600 for when, _ in got]
    reply = await ask(endpoint, G.Read_Attributes, bytes.fromhex("0000000402030100"), cluster=False)
    values = read_values(reply)
    assert values[0x0400] == (foundation.Status.SUCCESS, 2000)
    assert values[0x0302] == (foundation.Status.SUCCESS, 1000)
    assert values[0x0001] == (foundation.Status.UNSUPPORTED_ATTRIBUTE, None)
    await server.stop()


def get_profile(channel: int, end_time: int, periods: int) -> bytes:
    schema = Metering.ServerCommandDefs.get_profile.schema
    return encode_command(
        schema(interval_channel=channel, end_time=end_time, number_of_periods=periods)
    )


async def profile(endpoint, periods: int = 4):
    reply = await ask(
        endpoint,
        MeteringServerCommand.GET_PROFILE,
        get_profile(IntervalChannel.Consumption_Delivered, 0, periods),
    )
    answer, _ = decode_command(Metering, reply.command_id, reply.payload, from_server=True)
    return answer


async def test_get_profile_over_the_air() -> None:
    server, endpoint, _clock = await han(41, source=Load(3600), profile_period=3)  # 15 minutes
    await server.start()
    await asyncio.sleep(3 * 900)
    answer = await profile(endpoint)
    assert answer.status == GetProfileStatus.Success
    assert answer.end_time == START + 2700
    assert answer.profile_interval_period == 3
    # 1 Wh a second, read every 30 s: the first interval holds what was read from the first
    # poll (at 30 s) to the last one in it (at 870 s), the next ones 900 Wh each
    assert list(answer.intervals) == [900, 900, 840]
    await server.stop()


async def test_a_profile_whose_write_fails_is_written_with_the_next_poll(tmp_path) -> None:
    """Intervals closed by a poll whose write fails are written with the next poll (30 s
    later). They waited in memory for the next interval to close (15 minutes here): a
    kill -9 meanwhile lost them."""
    async with await FailingStore.open(tmp_path / "meter.db") as store:
        assert isinstance(store, FailingStore)
        server, _, _ = await han(44, source=Load(3600), profile_period=3, store=store)
        await server.start()
        await asyncio.sleep(900 - 30 - 1)  # the poll before the first interval closes
        store.fail_next = True
        await asyncio.sleep(30)  # the poll that closes it: its write failed
        assert store.fail_next is False
        assert await store.get(server.namespace, "profile") != server.core.snapshot()
        await asyncio.sleep(30)
        assert await store.get(server.namespace, "profile") == server.core.snapshot()
        await server.stop()


async def test_fast_poll_polls_faster_until_its_end() -> None:
    load = Load()
    server, endpoint, clock = await han(42, source=load, fast_poll_update_period=5)
    granted: list[FastPollGranted] = []
    server.on_event(granted.append)
    await server.start()
    await asyncio.sleep(5)
    answer = await request_fast_poll(endpoint, 2, 30)
    asked_at = clock()
    assert answer.applied_update_period == 5  # never faster than FastPollUpdatePeriod
    assert answer.fast_poll_mode_end_time == asked_at + 15 * 60  # at most 15 minutes
    await asyncio.sleep(1200)
    assert [(g.period, g.end_time, g.new) for g in granted] == [(5, asked_at + 900, True)]
    polls = [when + START for when in load.asked]
    during = [b - a for a, b in itertools.pairwise(polls) if asked_at <= a and b <= asked_at + 900]
    after = [b - a for a, b in itertools.pairwise(polls) if b > asked_at + 905]
    assert set(during) == {5}
    assert len(during) >= 170
    assert set(after) == {30}
    await server.stop()


async def test_profile_and_reporting_survive_a_restart(tmp_path) -> None:
    path = tmp_path / "esi.db"
    store = await Store.open(path)
    OPEN.append(store)
    server, endpoint, clock = await han(43, source=Load(3600), profile_period=3, store=store)
    await server.start()
    got = reports_to(endpoint, clock)
    configure = record(0x0000, UINT48, 10, 600, 0xFFFFFF)
    reply = await ask(endpoint, G.Configure_Reporting, configure, cluster=False)
    assert reply.payload == b"\x00"
    # written before it was answered (a kill -9 after the response loses nothing)
    assert [k for k in await store.load(server.namespace) if k.startswith("report/")]
    await asyncio.sleep(2 * 900)
    before = await profile(endpoint)
    await server.stop()
    await store.close()
    OPEN.remove(store)
    # a new server on the same endpoint and file, as after a restart
    store = await Store.open(path)
    OPEN.append(store)
    keys = sorted(await store.load(server.namespace))
    assert keys[0] == "profile"
    assert re.fullmatch(r"report/[0-9a-f]{4}/01/0000", keys[1])
    again = MeteringServer(server.endpoint, clock=clock, profile_period=3, store=store)
    await again.start()
    after = await profile(endpoint)
    assert (after.end_time, list(after.intervals)) == (before.end_time, list(before.intervals))
    # the readings as held when it stopped (stored then), not as at the last interval's close
    # (1 Wh a second: 1800), which a restart showed until the next poll
    assert again.core.read(0x0000) == server.core.read(0x0000) > 1800
    got.clear()
    await asyncio.sleep(700)
    assert [when - clock() + 700 for when, _ in got][:1] == [600]  # the stored record reports
    await again.stop()


def statuses(reply) -> list[tuple[int, int]]:
    """(status, attribute id) of each record of a Configure Reporting Response or a Read
    Reporting Configuration Response (a lone SUCCESS: none)."""
    if reply.payload == b"\x00":
        return []
    schema = foundation.GENERAL_COMMANDS[foundation.GeneralCommand(reply.command_id)].schema
    answer, rest = schema.deserialize(reply.payload)
    assert rest == b""
    if reply.command_id == G.Configure_Reporting_rsp:
        return [(int(r.status), int(r.attrid)) for r in answer.status_records]
    return [(int(r.status), int(r.config.attrid)) for r in answer.attribute_configs]


async def test_a_meter_without_demand_refuses_its_reporting() -> None:
    """A meter built without InstantaneousDemand (optional, SE D.3.2.2.1.1), and a
    Multiplier not configured: Read Attributes, Configure Reporting and Read Reporting
    Configuration answer them UNSUPPORTED_ATTRIBUTE (ZCL 2.5.2.1, 2.5.7.3, 2.5.9.3); a
    reading with a demand is refused."""
    server, endpoint, _clock = await han(46, demand=False)
    await server.start()
    await server.feed(Readings(summation_delivered=10))
    unsupported = int(foundation.Status.UNSUPPORTED_ATTRIBUTE)
    reply = await ask(endpoint, G.Read_Attributes, bytes.fromhex("00040103"), cluster=False)
    assert read_values(reply) == {
        0x0400: (unsupported, None),
        0x0301: (unsupported, None),
    }
    readings = record(0x0000, UINT48, 10, 120, 5) + record(0x0400, INT24, 5, 600, 500)
    configure = readings + record(0x0301, 0x22, 5, 600, 1)  # Multiplier, uint24
    reply = await ask(endpoint, G.Configure_Reporting, configure, cluster=False)
    assert statuses(reply) == [(unsupported, 0x0400), (unsupported, 0x0301)]
    assert [c.attribute for _, c in server.core.reporting.configurations()] == [0x0000]
    ask_demand = bytes.fromhex("000004")
    reply = await ask(endpoint, G.Read_Reporting_Configuration, ask_demand, cluster=False)
    assert statuses(reply) == [(unsupported, 0x0400)]
    with pytest.raises(ValueError, match="without InstantaneousDemand"):
        await server.feed(Readings(instantaneous_demand=1500))
    await server.stop()


async def test_a_display_configuring_once_gets_the_demand_from_its_first_reading() -> None:
    """A meter with InstantaneousDemand not known yet (``zse esi`` before the operator's
    first ``meter set --demand``) and a display that configures reporting once when it joins
    (third-party displays do, and never again): 0df1343 refused the demand
    UNSUPPORTED_ATTRIBUTE, so that display never got a demand. It is configured (SUCCESS) and
    read back now (ZCL 2.5.7, 2.5.9), and reported once the first reading of it comes; a
    read of it is UNSUPPORTED_ATTRIBUTE until then."""
    server, endpoint, clock = await han(49)
    await server.start()
    await server.feed(Readings(summation_delivered=10))
    unsupported = int(foundation.Status.UNSUPPORTED_ATTRIBUTE)
    reply = await ask(endpoint, G.Read_Attributes, bytes.fromhex("0004"), cluster=False)
    assert read_values(reply) == {0x0400: (unsupported, None)}
    configure = record(0x0000, UINT48, 10, 600, 5) + record(0x0400, INT24, 5, 600, 500)
    reply = await ask(endpoint, G.Configure_Reporting, configure, cluster=False)
    assert statuses(reply) == []  # SUCCESS: summation and demand
    reply = await ask(
        endpoint, G.Read_Reporting_Configuration, bytes.fromhex("000004"), cluster=False
    )
    assert statuses(reply) == [(int(foundation.Status.SUCCESS), 0x0400)]
    got = reports_to(endpoint, clock)
    await asyncio.sleep(60)
    assert got == []  # nothing to report yet
    await server.feed(Readings(instantaneous_demand=1500))
    await asyncio.sleep(5)  # the minimum interval
    assert [values for _, values in got] == [{0x0400: 1500}]
    await server.stop()


async def demand_record_kept(tmp_path, seed: int):
    """A meter (``han(seed)``, with a store) that took a device's record of the demand while
    it held one, stopped before its readings were stored (a crash: the profile is stored when
    an interval closes): (the stopped server, the device's endpoint, clock, store)."""
    store = await Store.open(tmp_path / "esi.db")
    OPEN.append(store)
    server, endpoint, clock = await han(seed, store=store)
    await server.start()
    await server.feed(Readings(summation_delivered=10, instantaneous_demand=1500))
    configure = record(0x0400, INT24, 5, 600, 500)
    reply = await ask(endpoint, G.Configure_Reporting, configure, cluster=False)
    assert reply.payload == b"\x00"
    await server.stop()
    await store.commit(Batch().delete(server.namespace, "profile"))  # as if never stored
    return server, endpoint, clock, store


async def test_a_stored_record_waits_for_its_attribute_after_a_restart(tmp_path) -> None:
    """A record of the demand configured while the meter held one, and a restart before the
    readings were stored (a crash: the profile is stored when an interval closes): the
    demand has no value when the records load, but the record is kept (not quarantined as
    unsupported) and reports once the demand comes."""
    server, endpoint, clock, store = await demand_record_kept(tmp_path, 47)
    seen = []
    store.on_quarantine(seen.append)
    again = MeteringServer(server.endpoint, clock=clock, store=store)
    await again.start()
    assert seen == []
    assert again.core.read(0x0400) is None
    got = reports_to(endpoint, clock)
    await again.feed(Readings(summation_delivered=11, instantaneous_demand=1600))
    await asyncio.sleep(10)
    assert [values for _, values in got] == [{0x0400: 1600}]
    await again.stop()


async def test_a_stored_record_waiting_for_its_attribute_can_be_stopped(tmp_path) -> None:
    """A record kept from before a restart whose attribute has no value yet (the demand's,
    the readings not stored): its device's Configure Reporting with maximum 0xFFFF removes it
    (ZCL 2.5.7.1.6), SUCCESS. It was refused UNSUPPORTED_ATTRIBUTE and kept, in the store
    too, so the device was sent the reports it had stopped once the demand came."""
    server, endpoint, clock, store = await demand_record_kept(tmp_path, 48)
    again = MeteringServer(server.endpoint, clock=clock, store=store)
    await again.start()
    assert again.core.read(0x0400) is None
    stop = record(0x0400, INT24, 0, 0xFFFF, 0)
    reply = await ask(endpoint, G.Configure_Reporting, stop, cluster=False)
    assert statuses(reply) == []  # SUCCESS
    got = reports_to(endpoint, clock)
    await again.feed(Readings(summation_delivered=11, instantaneous_demand=1600))
    await asyncio.sleep(700)
    assert got == []
    assert again.core.reporting.configurations() == ()
    await again.stop()
    third = MeteringServer(server.endpoint, clock=clock, store=store)
    await third.start()
    assert third.core.reporting.configurations() == ()  # removed from the store too
    await third.stop()


async def test_a_stored_demand_record_of_a_meter_now_without_demand_is_set_aside(
    tmp_path,
) -> None:
    """A demand record stored while the meter had InstantaneousDemand, the meter started
    again without it: the record is quarantined (the demand is not supported), the meter
    serves on."""
    server, _endpoint, clock, store = await demand_record_kept(tmp_path, 50)
    seen = []
    store.on_quarantine(seen.append)
    again = MeteringServer(server.endpoint, clock=clock, store=store, demand=False)
    await again.start()
    assert [q.reason for q in seen] == ["attribute 0x0400 is not reportable here"]
    assert again.core.reporting.configurations() == ()
    await again.stop()


async def test_foreign_and_damaged_records_are_quarantined_not_a_crash(tmp_path) -> None:
    store = await Store.open(tmp_path / "esi.db")
    OPEN.append(store)
    server, endpoint, clock = await han(44, store=store, profile_period=3)
    other = MeteringServer(server.endpoint, clock=clock, profile_period=1)  # another meter's
    await store.commit(
        Batch()
        .put(server.namespace, "profile", other.core.snapshot())
        .put(server.namespace, "report/1234/01/0000", {"nwk": "0x1234"})
        .put(
            server.namespace,
            "report/0001/01/0000",
            {"nwk": 2, "endpoint": 1, "attribute": 0, "min": 1, "max": 2, "change": 0},
        )
        .put(server.namespace, "what", 1)
    )
    seen = []
    store.on_quarantine(seen.append)
    await server.start()
    assert sorted((q.key, q.reason) for q in seen) == [
        ("profile", ".period: 1, this meter's is 3"),
        ("report/0001/01/0000", "the key does not match the record"),
        ("report/1234/01/0000", "value: missing attribute, change, endpoint, max, min"),
        ("what", "value: expected an object, got int"),
    ]
    assert len(await store.quarantined(server.namespace)) == 4
    # the meter serves, from an empty profile
    answer = await profile(endpoint)
    assert answer.status == GetProfileStatus.No_Intervals_Available_For_The_Requested_Time
    await server.stop()


@dataclass
class Faulty:
    """A source that fails once and goes back once: the meter logs each and keeps polling."""

    asked: list[int] = field(default_factory=list)

    def readings(self, now: int) -> Readings:
        self.asked.append(now - START)
        if len(self.asked) == 2:
            raise OSError("register not readable")
        if len(self.asked) == 3:
            return Readings(summation_delivered=1)  # below 50: refused
        return Readings(summation_delivered=50 + len(self.asked))


async def test_a_failing_source_is_logged_and_polled_again(caplog) -> None:
    source = Faulty()
    server, _, _ = await han(45, source=source)
    await server.start()
    await asyncio.sleep(100)
    assert [b - a for a, b in itertools.pairwise(source.asked)] == [30, 30, 30]
    assert server.core.read(0x0000) == 54
    assert "Metering server timer: register not readable" in caplog.text
    assert "Metering server timer: summation delivered 1 is below 51" in caplog.text
    await server.stop()


WRITER = """
import asyncio, sys
from zse.metering.core import Readings
from zse.metering.service import MeteringServer
from zse.se.ids import METERING
from zse.sim import Air, run
from zse.store import Store
from zse.zcl.se_endpoint import SeEndpoint

async def main(path, start):
    store = await Store.open(path)
    app = await Air(seed=1).coordinator(channel=15)
    se = SeEndpoint(app, in_clusters=[METERING])
    await se.start()
    loop = asyncio.get_running_loop()
    clock = lambda: start + int(loop.time())
    meter = MeteringServer(se, clock=clock, store=store, profile_period=3)
    await meter.start()
    summation = meter.core.read(0) or 0
    while True:
        await asyncio.sleep(900)
        summation += 7
        await meter.feed(Readings(summation_delivered=summation))
        print(clock(), summation, flush=True)

run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_sigkill_loses_no_interval_it_stored(tmp_path) -> None:
    """A meter killed (SIGKILL) while it feeds readings: every interval stored before a
    reading was acknowledged is there after a restart, and nothing is quarantined."""
    path = tmp_path / "meter.db"
    start = START
    for _ in range(3):  # kill, restart on the same file later on, kill again
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(start)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        assert proc.stdout is not None
        lines = [proc.stdout.readline().split() for _ in range(30)]
        assert all(lines), "the writer died"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        acknowledged, summation = map(int, lines[-1])
        async with await Store.open(path) as store:
            records = await store.load("metering.server/9")
            assert await store.quarantined() == []
        profile = records["profile"]
        # the interval closed by the last acknowledged reading (or a later one) is stored
        assert profile["interval_end"] >= acknowledged
        assert profile["values"]["0"] >= summation
        intervals = profile["channels"]["0"]["intervals"]
        assert [end for end, _ in intervals] == sorted({end for end, _ in intervals})
        start = profile["interval_end"]  # the next run's clock goes on from there


async def test_a_display_asks_for_the_load_profile_with_the_metering_client() -> None:
    """MeteringClient.get_profile (D.3.3.3.1.1) over the air: the same intervals the meter
    answers a hand-built Get Profile with; a Default Response instead is ProfileRefused."""
    server, endpoint, _clock = await han(43, source=Load(3600), profile_period=3)
    await server.start()
    await asyncio.sleep(3 * 900)
    client = MeteringClient(endpoint, meter_ep=SE_ENDPOINT_ID)
    answer = await client.get_profile(IntervalChannel.Consumption_Delivered, number_of_periods=2)
    assert answer.status == GetProfileStatus.Success
    assert (answer.end_time, answer.intervals) == (START + 2700, (900, 900))
    older = await client.get_profile(end_time=START + 1800, number_of_periods=5)
    assert (older.end_time, older.intervals) == (START + 1800, (900, 840))
    refused = await client.get_profile(IntervalChannel.Consumption_Received)
    assert refused.status == GetProfileStatus.Interval_Channel_Not_Supported
    assert refused.intervals == ()
    elsewhere = MeteringClient(endpoint, meter_ep=SE_ENDPOINT_ID + 1)
    with pytest.raises(TimeoutError):  # no such endpoint: no answer
        await elsewhere.get_profile()
    await server.stop()  # the endpoint still lists Metering, and no longer serves it
    with pytest.raises(ProfileRefused, match="UNSUP_CLUSTER_COMMAND"):
        await client.get_profile()
