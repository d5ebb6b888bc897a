"""Prepayment over the simulated air (SE 1.2 D.7): a display tops up (accepted, then the same
code: duplicate, after a restart and after a kill at the commit too), selects emergency
credit, reads the log and a snapshot; the utility's commands are refused from the HAN; bad
frames get their ZCL status; no code shows in the logs. Real components, virtual time."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from fractions import Fraction

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.services.test_messaging_restart import CrashingStore, Killed
from zse.calendar.core import (
    Calendars,
    CalendarSchedule,
    CalendarType,
    DayProfile,
    TimeReference,
    WeekProfile,
    ZclDate,
)
from zse.installcode import InstallCode
from zse.prepayment.core import (
    CreditExhausted,
    EmergencyCreditSelected,
    FriendlyCreditEnded,
    FriendlyCreditStarted,
    LowCredit,
    PrepayConfig,
    SupplyInterrupted,
    TopUpAccepted,
    TopUpRefused,
)
from zse.prepayment.protocol import SnapshotReceived, TopUpLogReceived
from zse.prepayment.service import (
    PREPAYMENT,
    PrepaymentClient,
    PrepaymentServer,
    TopUpFailed,
    friendly_credit_calendar,
)
from zse.prepayment.wire import CreditStatus, Prepayment, TopUpResult
from zse.se.ids import PrepaymentAttribute as A
from zse.se.ids import PrepaymentServerCommand
from zse.sim import Air
from zse.store import Batch, Store
from zse.time.core import to_zigbee
from zse.zcl.codec import encode_command
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

START = 800_000_000
CODE = "12345678901234567890"
OTHER = "98765432109876543210"
CONFIG = PrepayConfig(
    initial_credit=1000,
    low_credit_warning_level=300,
    emergency_credit_limit=500,
    emergency_credit_threshold=100,
)
PRICE = Fraction(245, 10)  # 24.5 p per kWh


async def han(seed: int):
    """A zigpy ESI's SE endpoint and a display joined to it with a Prepayment client."""
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    se = SeEndpoint(app, in_clusters=[PREPAYMENT])
    await se.start()
    code = InstallCode.generate(rng=air.rng)
    dev = air.device("00:0d:6f:00:0e:00:00:01", install_code=code, channel=15)
    ep = dev.add_endpoint(1, device_type=0x0502, out_clusters=[PREPAYMENT])
    await app.permit_with_link_key(dev.ieee, t.KeyData(code.link_key), 60)
    await dev.join()
    await asyncio.sleep(30)
    client = PrepaymentClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock)
    client.start()
    seen: list[object] = []
    client.on_event(seen.append)
    return se, client, clock, seen


async def serve(se, clock, store=None) -> tuple[PrepaymentServer, list[object]]:
    server = PrepaymentServer(se, config=CONFIG, codes={CODE: 2000, OTHER: 700}, clock=clock,
                              store=store)  # fmt: skip
    told: list[object] = []
    server.on_event(told.append)
    await server.start()
    return server, told


async def test_a_display_tops_up_once_even_across_a_restart(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    se, client, clock, seen = await han(70)
    store = await Store.open(tmp_path / "esi.db")
    server, told = await serve(se, clock, store)
    answer = await client.top_up(CODE)
    assert answer.result == TopUpResult.Accepted
    assert (answer.value, answer.credit_remaining) == (2000, 3000)
    assert TopUpAccepted(2000, 3000, 2, "*" * 16 + "7890", TopUpResult.Accepted) in seen
    assert any(isinstance(e, TopUpAccepted) for e in told)
    assert client.status.credit_remaining == 3000
    again = await client.top_up(CODE)
    assert again.result == TopUpResult.Rejected_Duplicate_Top_Up
    assert TopUpRefused(again.result, 2, "*" * 16 + "7890") in seen
    invalid = await client.top_up("11111111111111111111")
    assert invalid.result == TopUpResult.Rejected_Invalid_Top_Up
    # the Top-up set (D.7.2.2.2): record #1 is the newest top-up
    top_up_set = [A.TOP_UP_DATE_TIME_1, A.TOP_UP_AMOUNT_1, A.TOP_UP_ORIGINATING_DEVICE_1,
                  A.TOP_UP_CODE_1]  # fmt: skip
    reply = await client.endpoint.request(
        0x0000, SE_ENDPOINT_ID, PREPAYMENT, foundation.GeneralCommand.Read_Attributes,
        b"".join(int(a).to_bytes(2, "little") for a in top_up_set), cluster_specific=False,
        encrypt=True,
    )  # fmt: skip
    schema = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Read_Attributes_rsp].schema
    records, _ = schema.deserialize(reply.payload)
    assert [r.value.value for r in records.status_records][1:] == [2000, 2, CODE.encode()]
    # the ESI restarts: the credit and the codes used are where they were
    await server.stop()
    await store.close()
    store = await Store.open(tmp_path / "esi.db")
    server, told = await serve(se, clock, store)
    assert server.account.credit == 3000
    assert (await client.top_up(CODE)).result == TopUpResult.Rejected_Duplicate_Top_Up
    assert (await client.top_up(OTHER)).credit_remaining == 3700
    assert (await client.read_status()).credit_remaining == 3700
    await store.close()
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert CODE not in logged
    assert OTHER not in logged
    assert CODE[:16] not in logged


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
async def test_killed_at_the_top_up_commit_the_code_applies_once(tmp_path, after) -> None:
    """The ESI is killed (SIGKILL-like: nothing after the commit runs) at the top-up's commit,
    before or after it; restarted on the same file, the display tries the code again: it is
    applied exactly once in all."""
    se, client, clock, _ = await han(71)
    path = tmp_path / f"killed-{after}.db"
    store = await CrashingStore.open(path)
    server, _ = await serve(se, clock, store)
    store.crash_at, store.after = 1, after
    with pytest.raises((TimeoutError, Killed)):  # no answer: the process died
        await client.top_up(CODE)
    assert store.dead
    await server.stop()
    await Store.close(store)
    store = await CrashingStore.open(path)
    server, _ = await serve(se, clock, store)
    retry = await client.top_up(CODE)
    if after:  # applied before the kill: the retry is a duplicate, the credit is there
        assert retry.result == TopUpResult.Rejected_Duplicate_Top_Up
    else:  # never stored: applied now
        assert retry.result == TopUpResult.Accepted
    assert retry.credit_remaining == 3000
    assert server.account.total_added == 2000
    await Store.close(store)


async def test_credit_runs_down_and_emergency_credit_is_selected_from_the_display() -> None:
    se, client, clock, seen = await han(72)
    server, told = await serve(se, clock)
    assert await client.select_emergency_credit() is False  # 1000 left: not offered yet
    await server.consume(Fraction(800) / PRICE, PRICE)  # 200 left: low
    await server.consume(Fraction(150) / PRICE, PRICE)  # 50 left: under the threshold
    status = await client.read_status()
    assert status.credit_remaining == 50
    assert status.credit_status & CreditStatus.Emergency_Credit_Available
    assert any(isinstance(e, LowCredit) for e in seen)
    await server.consume(Fraction(60) / PRICE, PRICE)  # gone: the supply is interrupted
    assert [type(e) for e in told[-2:]] == [CreditExhausted, SupplyInterrupted]
    await client.read_status()
    assert any(isinstance(e, CreditExhausted) for e in seen)
    assert await client.select_emergency_credit() is True
    assert client.status.emergency_credit_remaining == 500
    assert any(isinstance(e, EmergencyCreditSelected) for e in seen)
    assert not server.account.interrupted
    answer = await client.top_up(CODE)  # pays back the 10 taken while exhausted
    assert answer.result == TopUpResult.Accepted  # the supply was back already
    assert answer.credit_remaining == 2000 - 10
    assert not server.account.selected  # none of it was used: emergency credit is off
    snapshot = await client.get_prepay_snapshot()
    assert isinstance(snapshot, SnapshotReceived)
    assert snapshot.status.credit_remaining == 1990
    await client.ask_top_up_log()
    await asyncio.sleep(2)
    logs = [e for e in seen if isinstance(e, TopUpLogReceived)]
    assert [list(log.entries) for log in logs] == [[(CODE.encode(), 2000, answer_time(server))]]


def answer_time(server: PrepaymentServer) -> int:
    return server.account.top_ups[0].time


async def test_a_credit_meter_answers_a_top_up_unsupported() -> None:
    _, client, _, _ = await han(73)
    with pytest.raises(TopUpFailed) as caught:
        await client.top_up(CODE)  # no Prepayment server on the ESI's endpoint
    assert CODE not in str(caught.value)


async def test_the_utilitys_commands_are_refused_from_the_han_and_garbage_gets_a_status() -> None:
    se, client, clock, _ = await han(74)
    server, _ = await serve(se, clock)
    endpoint = client.endpoint

    async def send(command_id: int, payload: bytes) -> int:
        reply = await endpoint.request(
            0x0000, SE_ENDPOINT_ID, PREPAYMENT, command_id, payload, encrypt=True
        )
        assert not reply.is_cluster_command
        return reply.payload[1]

    adjust = (1).to_bytes(4, "little") + START.to_bytes(4, "little") + b"\x00"
    adjust += (10**6).to_bytes(4, "little")
    status = await send(PrepaymentServerCommand.CREDIT_ADJUSTMENT, adjust)
    assert status == foundation.Status.NOT_AUTHORIZED
    assert server.account.credit == 1000
    status = await send(PrepaymentServerCommand.CONSUMER_TOP_UP, b"\x02\x14123")
    assert status == foundation.Status.MALFORMED_COMMAND
    assert await send(0x0D, b"") == foundation.Status.UNSUP_CLUSTER_COMMAND
    top_up_log = START.to_bytes(4, "little") + b"\x00"
    assert await send(PrepaymentServerCommand.GET_TOP_UP_LOG, top_up_log) == (
        foundation.Status.NOT_FOUND
    )


async def test_a_damaged_stored_account_is_quarantined_not_served(tmp_path) -> None:
    """A damaged account record is quarantined (the account starts from its configuration);
    the codes applied, each a record of its own, stay refused."""
    se, client, clock, _ = await han(75)
    store = await Store.open(tmp_path / "esi.db")
    server, _ = await serve(se, clock, store)
    assert (await client.top_up(CODE)).result == TopUpResult.Accepted
    record = server.account.snapshot()
    await server.stop()
    record["credit"] = "a lot"
    await store.commit(Batch().put(server.namespace, "account", record)
                       .put(server.namespace, "other", {}))  # fmt: skip
    quarantined: list[object] = []
    store.on_quarantine(quarantined.append)
    server, _ = await serve(se, clock, store)
    assert len(quarantined) == 2
    assert server.account.credit == CONFIG.initial_credit  # from the configuration
    assert (await client.read_status()).credit_remaining == CONFIG.initial_credit
    assert all(CODE not in repr(q) for q in quarantined)
    # the code applied is a record of its own: still refused
    assert (await client.top_up(CODE)).result == TopUpResult.Rejected_Duplicate_Top_Up
    await store.close()


HOUR = 3600


async def utility(se, clock, store=None, **options) -> tuple[PrepaymentServer, list[object]]:
    """A Prepayment server that takes the utility's commands from the display's address (a
    stand-in for the utility's authorized sender)."""
    server = PrepaymentServer(se, config=CONFIG, codes={CODE: 2000}, clock=clock, store=store,
                              authorize=lambda msg: True, **options)  # fmt: skip
    told: list[object] = []
    server.on_event(told.append)
    await server.start()
    return server, told


async def send_utility(client: PrepaymentClient, name: str, **fields) -> int:
    definition = getattr(Prepayment.ServerCommandDefs, name)
    reply = await client.endpoint.request(
        0x0000, SE_ENDPOINT_ID, PREPAYMENT, definition.id,
        encode_command(definition.schema(**fields)), encrypt=True,
    )  # fmt: skip
    return reply.payload[1]


async def reopened(path, server: PrepaymentServer, store: Store) -> Store:
    await server.stop()
    await store.close()
    return await Store.open(path)


async def test_a_command_for_later_applies_on_time_without_a_reading_and_across_restarts(
    tmp_path,
) -> None:
    """Set Maximum Credit Limit for an hour ahead: not before, then at its time by the
    timer alone (no reading); a Credit Adjustment pending over a restart applies at its time
    after it, and one whose time passed while the ESI was down applies once at start."""
    se, client, clock, _ = await han(76)
    path = tmp_path / "esi.db"
    store = await Store.open(path)
    server, _ = await utility(se, clock, store)
    at = clock() + HOUR
    status = await send_utility(client, "set_maximum_credit_limit", provider_id=1,
                                issuer_event_id=1, implementation_date_time=at,
                                maximum_credit_level=5000,
                                maximum_credit_per_top_up=3000)  # fmt: skip
    assert status == foundation.Status.SUCCESS  # accepted when received, as before
    await asyncio.sleep(HOUR - 60)
    assert server.account.config.max_credit_limit == 0
    await asyncio.sleep(120)
    assert server.account.config.max_credit_limit == 5000  # the timer, no reading
    assert server.account.pending == []
    # pending over a restart: kept in the store, applied at its time after it
    at = clock() + HOUR
    await send_utility(client, "credit_adjustment", issuer_event_id=2, start_time=at,
                       credit_adjustment_type=0, credit_adjustment_value=250)  # fmt: skip
    store = await reopened(path, server, store)
    server, _ = await utility(se, clock, store)
    assert server.account.config.max_credit_limit == 5000
    assert [p.issuer_event_id for p in server.account.pending] == [2]
    assert server.account.credit == 1000
    await asyncio.sleep(HOUR + 60)
    assert server.account.credit == 1250
    # its time passes while the ESI is down: applied once, at start
    at = clock() + HOUR
    await send_utility(client, "credit_adjustment", issuer_event_id=3, start_time=at,
                       credit_adjustment_type=0, credit_adjustment_value=100)  # fmt: skip
    await server.stop()
    await store.close()
    await asyncio.sleep(2 * HOUR)
    store = await Store.open(path)
    server, _ = await utility(se, clock, store)
    assert server.account.credit == 1350
    assert server.account.pending == []
    store = await reopened(path, server, store)
    server, _ = await utility(se, clock, store)
    assert server.account.credit == 1350  # not twice
    await store.close()


#: Friendly credit 22:00-07:00 every day (UTC), the ESI's Friendly Credit calendar.
NIGHTS = CalendarSchedule(
    provider_id=1, issuer_event_id=10, issuer_calendar_id=77,
    calendar_type=CalendarType.FRIENDLY_CREDIT, calendar_time_reference=TimeReference.UTC,
    days=(DayProfile(1, ((0, 1), (7 * 60, 0), (22 * 60, 1))),),
    weeks=(WeekProfile(1, (1,) * 7),), seasons=((ZclDate(month=1, day=1), 1),),
)  # fmt: skip


@pytest.mark.parametrize("top_up", [False, True], ids=["runs-out", "topped-up"])
async def test_credit_out_at_23_00_in_a_friendly_night_is_interrupted_at_07_00(top_up) -> None:
    """Credit runs out at 23:00 in the friendly night: the supply stays on until 07:00, then
    it is interrupted (the timer, no reading); topped up at 03:00, it never is."""
    se, client, _, _ = await han(77)
    loop = asyncio.get_running_loop()
    eleven = to_zigbee(dt.datetime(2026, 1, 14, 23, tzinfo=dt.UTC))
    offset = eleven - int(loop.time())

    def night_clock() -> int:
        return offset + int(loop.time())

    calendars = Calendars()
    calendars.put(NIGHTS, eleven - 86400)
    config = dataclasses.replace(CONFIG, emergency_credit_limit=0, friendly_credit=True)
    server = PrepaymentServer(se, config=config, codes={CODE: 2000}, clock=night_clock,
                              friendly_calendar=friendly_credit_calendar(calendars))  # fmt: skip
    told: list[object] = []
    server.on_event(told.append)
    await server.start()
    await server.consume(Fraction(1100) / PRICE, PRICE)  # 23:00: 100 p below zero
    assert FriendlyCreditStarted(eleven, eleven + 8 * HOUR) in told
    assert any(isinstance(e, CreditExhausted) for e in told)
    assert not server.account.interrupted
    await asyncio.sleep(4 * HOUR)  # 03:00
    if top_up:
        assert (await client.top_up(CODE)).result == TopUpResult.Accepted
        assert any(isinstance(e, FriendlyCreditEnded) for e in told)
    await asyncio.sleep(4 * HOUR - 60)  # 06:59
    assert not server.account.interrupted
    assert not any(isinstance(e, SupplyInterrupted) for e in told)
    await asyncio.sleep(120)  # 07:01
    assert server.account.interrupted is not top_up
    assert any(isinstance(e, SupplyInterrupted) for e in told) is not top_up
    await server.stop()
