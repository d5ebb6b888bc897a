"""Prepayment's open attribute sets (SE 1.2 D.7.2.2.1, D.7.2.2.5, D.7.2.2.6): the friendly
credit attributes read from the Friendly Credit calendar at ``now``, the Alarms set from the
account's state (its masks written and kept), and the Historical Cost Consumption set counted
by the meter's local day, week and month, stored with the account's commit (once after a
kill -9 at it). Over the simulated air a display reads them and tshark names each attribute
and its data type as Wireshark 4.0 does. Real components, virtual time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import subprocess
from fractions import Fraction

import pytest
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect, tshark
from tests.prepayment.test_prepayment_service import CODE, CONFIG, NIGHTS, han, serve
from tests.services.test_messaging_restart import CrashingStore, Killed
from zse.calendar.core import Calendars
from zse.prepayment.core import PrepayAccount, PrepayConfig
from zse.prepayment.protocol import PrepaymentServerProtocol
from zse.prepayment.service import (
    FriendlyCreditTimes,
    PrepaymentServer,
    friendly_credit_calendar,
)
from zse.prepayment.wire import PrepaymentAlarmStatus as Alarm
from zse.prepayment.wire import TopUpResult
from zse.se.ids import PREPAYMENT, cost_consumption_attribute
from zse.se.ids import PrepaymentAttribute as A
from zse.store import Store
from zse.time.core import ZoneYear, to_zigbee
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

HOUR = 3600
#: The meter's zone: UTC+10 (AEST), no DST.
AEST = ZoneYear(time_zone=10 * HOUR)
#: 23:30 on Saturday 31 January 2026, AEST (13:30 UTC).
SATURDAY_LATE = to_zigbee(dt.datetime(2026, 1, 31, 13, 30, tzinfo=dt.UTC))


def utc(*when: int) -> int:
    return to_zigbee(dt.datetime(*when, tzinfo=dt.UTC))  # type: ignore[misc]


def charge(account: PrepayAccount, pence: int, now: int) -> None:
    """Charge ``pence`` of consumption (1 kWh at that price)."""
    account.consume(Fraction(1), Fraction(pence), now)


def test_cost_consumption_is_counted_by_the_meters_local_day_week_and_month() -> None:
    """Two charges an hour apart, either side of local midnight (one UTC day): two local
    days, one week (Saturday and Sunday), two months; read later with nothing charged, each
    has moved back, never stale; a day past the eighth previous one is gone."""
    account = PrepayAccount(PrepayConfig(initial_credit=100_000), local=AEST.local_time)
    charge(account, 100, SATURDAY_LATE)  # Saturday 31 January, 23:30 local
    charge(account, 40, SATURDAY_LATE + HOUR)  # Sunday 1 February, 00:30 local
    cost = account.cost_consumption(SATURDAY_LATE + HOUR)
    assert cost["day"] == [40, 100] + [0] * 7
    assert cost["week"] == [140] + [0] * 5
    assert cost["month"] == [40, 100] + [0] * 12
    later = account.cost_consumption(SATURDAY_LATE + HOUR + 2 * 24 * HOUR)  # Tuesday
    assert later["day"] == [0, 0, 40, 100] + [0] * 5
    assert later["week"] == [0, 140] + [0] * 4  # Monday began a week
    assert later["month"] == [40, 100] + [0] * 12
    assert account.cost_consumption(SATURDAY_LATE + 9 * 24 * HOUR)["day"] == [0] * 8 + [40]
    # the same charges in UTC: one day (13:30 and 14:30 on Saturday)
    in_utc = PrepayAccount(PrepayConfig(initial_credit=100_000))
    charge(in_utc, 100, SATURDAY_LATE)
    charge(in_utc, 40, SATURDAY_LATE + HOUR)
    assert in_utc.cost_consumption(SATURDAY_LATE + HOUR)["day"][:2] == [140, 0]


def test_a_clock_set_ahead_then_back_does_not_stop_the_cost_counting() -> None:
    """The meter's clock set a year ahead for nine days (a wrong time from the ESI), then
    corrected: the newest nine keys of each period were kept, by rank, so the nine future
    days outranked every real one and each charge made after the correction was dropped as it
    was counted: the current day read 0 for a year. Periods are kept by their distance from
    the one charged now (within the periods served, either side): the future ones go."""
    account = PrepayAccount(PrepayConfig(initial_credit=100_000), local=AEST.local_time)
    ahead = SATURDAY_LATE + 365 * 24 * HOUR
    for day in range(9):
        charge(account, 7, ahead + day * 24 * HOUR)
    charge(account, 40, SATURDAY_LATE)  # corrected
    cost = account.cost_consumption(SATURDAY_LATE)
    assert (cost["day"][0], cost["week"][0], cost["month"][0]) == (40, 40, 40)
    assert account.cost_consumption(ahead)["day"] == [0] * 9  # the wrong year's are gone


def test_the_cost_set_is_served_with_its_formatting_unit_and_currency() -> None:
    config = PrepayConfig(initial_credit=100_000, currency=826)
    account = PrepayAccount(config, local=AEST.local_time)
    charge(account, 1234, SATURDAY_LATE)
    values = PrepaymentServerProtocol(account).attribute_values(SATURDAY_LATE + HOUR)
    assert values[A.HISTORICAL_COST_CONSUMPTION_FORMATTING] == (0x18, 0xC2)  # 8.2, no zeros
    assert values[A.CONSUMPTION_UNIT_OF_MEASUREMENT] == (0x30, 0x00)  # kWh
    assert values[A.CURRENCY_SCALING_FACTOR] == (0x30, 0x04)  # x0.01: pence
    assert values[A.CURRENCY] == (0x21, 826)
    assert values[cost_consumption_attribute("day", 1)] == (0x25, 1234)
    assert values[cost_consumption_attribute("month", 1)] == (0x25, 1234)
    assert cost_consumption_attribute("day", 0, received=True) not in values
    assert A.CURRENCY not in PrepaymentServerProtocol(
        PrepayAccount(PrepayConfig())
    ).attribute_values(0)


def friendly_account(**config: int) -> tuple[PrepayAccount, int]:
    """An account taking friendly credit from 22:00-07:00 nights, credit gone at 23:00."""
    eleven = utc(2026, 1, 14, 23)
    calendars = Calendars()
    calendars.put(NIGHTS, eleven - 86400)
    settings = dataclasses.replace(CONFIG, emergency_credit_limit=0, friendly_credit=True, **config)
    account = PrepayAccount(settings, friendly_calendar=friendly_credit_calendar(calendars))
    return account, eleven


def test_the_friendly_credit_attributes_are_read_from_the_calendar_at_now() -> None:
    account, eleven = friendly_account()
    assert account.friendly_times(eleven - 3 * HOUR) == (0, eleven - HOUR)  # 20:00: at 22:00
    assert account.friendly_times(eleven) == (8 * 60, eleven + 23 * HOUR)  # 23:00: 8 h left
    assert account.friendly_times(eleven + 7 * HOUR + 1830) == (30, eleven + 23 * HOUR)  # 29.5
    values = PrepaymentServerProtocol(account).attribute_values(eleven + 7 * HOUR)
    assert values[A.REMAINING_FRIENDLY_CREDIT_TIME] == (0x21, 60)
    assert values[A.NEXT_FRIENDLY_CREDIT_PERIOD] == (0xE2, eleven + 23 * HOUR)
    assert values[A.FRIENDLY_CREDIT_WARNING] == (0x20, 60)
    off = PrepaymentServerProtocol(PrepayAccount(CONFIG)).attribute_values(eleven)
    assert A.REMAINING_FRIENDLY_CREDIT_TIME not in off  # no friendly credit taken
    no_calendar = PrepayAccount(dataclasses.replace(CONFIG, friendly_credit=True))
    assert no_calendar.friendly_times(eleven) == (0, 0xFFFFFFFF)


def test_the_alarm_status_follows_the_account() -> None:
    """Low Credit Warning, Emergency Credit Available, Friendly Credit In Use and its end
    warning within Friendly Credit Warning minutes, Disconnected Supply Due To Credit."""
    account, eleven = friendly_account(friendly_credit_warning=45)
    assert account.alarm_status(eleven) == 0
    charge(account, 800, eleven - HOUR)  # 200 left: low
    assert account.alarm_status(eleven) == Alarm.Low_Credit_Warning
    charge(account, 300, eleven)  # gone at 23:00, in the friendly night
    in_use = Alarm.Low_Credit_Warning | Alarm.Friendly_Credit_In_Use
    assert account.alarm_status(eleven) == in_use
    assert account.alarm_status(eleven + 8 * HOUR - 46 * 60) == in_use
    warned = in_use | Alarm.Friendly_Credit_Period_End_Warning
    assert account.alarm_status(eleven + 8 * HOUR - 45 * 60) == warned  # 06:15
    account.tick(eleven + 8 * HOUR)  # 07:00: the night is over
    assert account.alarm_status(eleven + 8 * HOUR) == (
        Alarm.Low_Credit_Warning | Alarm.Disconnected_Supply_Due_To_Credit
    )
    offered = PrepayAccount(dataclasses.replace(CONFIG, initial_credit=50))
    assert offered.alarm_status(0) == Alarm.Low_Credit_Warning | Alarm.Emergency_Credit_Available


def test_a_refused_top_up_sets_its_code_alarm_until_one_is_accepted() -> None:
    account = PrepayAccount(dataclasses.replace(CONFIG, initial_credit=5000))
    account.registered.register(CODE, 100)
    assert account.top_up(b"1" * 41, 2, 10).result == TopUpResult.Rejected_Invalid_Top_Up
    assert account.alarm_status(10) == Alarm.Top_Up_Code_Error  # too long
    assert account.top_up(b"11111111", 2, 11).result == TopUpResult.Rejected_Invalid_Top_Up
    assert account.alarm_status(11) == Alarm.Top_Up_Code_Invalid
    assert account.top_up(CODE.encode(), 2, 12).accepted
    assert account.alarm_status(12) == 0
    account.top_up(CODE.encode(), 2, 13)
    assert account.alarm_status(13) == Alarm.Top_Up_Code_Already_Used
    stored = PrepayAccount(CONFIG)
    stored.restore(account.snapshot())
    assert stored.alarm_status(14) == Alarm.Top_Up_Code_Already_Used


READ_RSP = foundation.GeneralCommand.Read_Attributes_rsp
#: What tshark 4.0 names each attribute read, the ZCL data type it reads for it on the air (as
#: zsmartsystems' XML declares it) and the field it shows the value in (tshark 4.0 has no
#: enum8 field: an enum8 shows as a uint8).
SHOWN = {
    A.FRIENDLY_CREDIT_WARNING: ("Friendly Credit Warning", 0x20, "uint8"),
    A.REMAINING_FRIENDLY_CREDIT_TIME: ("Remaining Friendly Credit Time", 0x21, "uint16"),
    A.NEXT_FRIENDLY_CREDIT_PERIOD: ("Next Friendly Credit Period", 0xE2, "utc"),
    A.PREPAYMENT_ALARM_STATUS: ("Prepayment Alarm Status", 0x19, "bitmap16"),
    A.PREPAY_GENERIC_ALARM_MASK: ("Prepay Generic Alarm Mask", 0x19, "bitmap16"),
    A.PREPAY_SWITCH_ALARM_MASK: ("Prepay Switch Alarm Mask", 0x19, "bitmap16"),
    A.PREPAY_EVENT_ALARM_MASK: ("Prepay Event Alarm Mask", 0x19, "bitmap16"),
    A.HISTORICAL_COST_CONSUMPTION_FORMATTING: (
        "Historical Cost Consumption Formatting", 0x18, "bitmap8",
    ),
    A.CONSUMPTION_UNIT_OF_MEASUREMENT: ("Consumption Unit of Measurement", 0x30, "uint8"),
    A.CURRENCY_SCALING_FACTOR: ("Currency Scaling Factor", 0x30, "uint8"),
    A.CURRENCY: ("Currency", 0x21, "uint16"),
    A.HISTORICAL_FREEZE_TIME: ("Historical Freeze Time", 0x21, "uint16"),
    cost_consumption_attribute("day", 0): (
        "Current Day Cost Consumption Delivered", 0x25, "uint48",
    ),
    cost_consumption_attribute("day", 8): (
        "Previous Day 8 Cost Consumption Delivered", 0x25, "uint48",
    ),
    cost_consumption_attribute("week", 5): (
        "Previous Week 5 Cost Consumption Delivered", 0x25, "uint48",
    ),
    cost_consumption_attribute("month", 13): (
        "Previous Month 13 Cost Consumption Delivered", 0x25, "uint48",
    ),
}  # fmt: skip

#: tshark's fields of a Read Attributes record that are not its value.
_NOT_VALUES = {"zbee_zcl.attr.status", "zbee_zcl.attr.data.type"}


async def read_raw(client, ids: list[int]) -> bytes:
    reply = await client.endpoint.request(
        0x0000, SE_ENDPOINT_ID, PREPAYMENT, foundation.GeneralCommand.Read_Attributes,
        b"".join(int(a).to_bytes(2, "little") for a in ids), cluster_specific=False,
        encrypt=True,
    )  # fmt: skip
    return reply.payload


async def write(client, attr: int, value: int) -> bytes:
    """Write Attributes of one bitmap16 (0x19) value; the response's payload."""
    record = int(attr).to_bytes(2, "little") + b"\x19" + value.to_bytes(2, "little")
    reply = await client.endpoint.request(
        0x0000, SE_ENDPOINT_ID, PREPAYMENT, foundation.GeneralCommand.Write_Attributes,
        record, cluster_specific=False, encrypt=True,
    )  # fmt: skip
    return reply.payload


def tshark_names(tmp_path) -> list[str]:
    """The attribute names tshark shows in the capture :func:`dissect` wrote."""
    text = subprocess.run(
        [tshark(), "-r", str(tmp_path / "frames.pcap"), "-V"],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    return re.findall(r"^\s*Attribute: (.+) \(0x[0-9a-f]{4}\)$", text, re.MULTILINE)


@pytest.mark.oracle
async def test_a_display_reads_the_three_sets_as_wireshark_names_them(tmp_path) -> None:
    """Over the air: a display reads the friendly credit attributes, the Alarms set and the
    cost consumption; writes a mask (kept across a restart), not the status (READ_ONLY);
    tshark names every attribute read and shows its value in the data type expected."""
    se, client, clock, _ = await han(81)
    store = await Store.open(tmp_path / "esi.db")
    calendars = Calendars()
    calendars.put(NIGHTS, clock() - 86400)
    config = dataclasses.replace(CONFIG, friendly_credit=True, currency=826)
    server = PrepaymentServer(se, config=config, clock=clock, store=store,
                              friendly_calendar=friendly_credit_calendar(calendars))  # fmt: skip
    await server.start()
    await server.consume(Fraction(3), Fraction(250))  # 750 p: 250 left, low credit
    before = FriendlyCreditTimes(60, *server.account.friendly_times(clock()))
    friendly = await client.read_friendly_credit()
    assert friendly in {before, FriendlyCreditTimes(60, *server.account.friendly_times(clock()))}
    assert 0 < (friendly.remaining_minutes or 0) < 0xFFFF  # in the night, its end known
    alarms = await client.read_alarms()
    assert alarms.status == Alarm.Low_Credit_Warning
    assert (alarms.generic_mask, alarms.switch_mask, alarms.event_mask) == (0xFFFF,) * 3
    cost = await client.read_cost_consumption()
    assert (cost.formatting, cost.currency_scaling_factor, cost.currency) == (0xC2, 4, 826)
    assert cost.days == (750,) + (0,) * 8
    assert (cost.weeks[0], cost.months[0]) == (750, 750)
    assert await write(client, A.PREPAY_SWITCH_ALARM_MASK, 0x0005) == b"\x00"
    refused = await write(client, A.PREPAYMENT_ALARM_STATUS, 0)
    assert refused == b"\x88" + A.PREPAYMENT_ALARM_STATUS.to_bytes(2, "little")  # READ_ONLY
    await server.stop()
    await store.close()
    store = await Store.open(tmp_path / "esi.db")
    server = PrepaymentServer(se, config=config, clock=clock, store=store)
    await server.start()
    assert (await client.read_alarms()).switch_mask == 0x0005
    assert (await client.read_cost_consumption()).days[0] == 750
    asked = list(SHOWN)
    payloads = [await read_raw(client, asked[i : i + 6]) for i in range(0, len(asked), 6)]
    frames = [
        air_frame(PREPAYMENT, bytes((0x18, n, READ_RSP)) + p, n) for n, p in enumerate(payloads)
    ]
    packets = dissect(frames, tmp_path)
    assert not any(packet.malformed for packet in packets)
    ids = [int(v, 0) for packet in packets for v in packet.show("zbee_zcl_se.pp.attr_id")]
    assert ids == asked
    assert tshark_names(tmp_path) == [name for name, _, _ in SHOWN.values()]
    types = [int(v, 0) for packet in packets for v in packet.show("zbee_zcl.attr.data.type")]
    assert types == [type_id for _, type_id, _ in SHOWN.values()]
    shown = [
        field
        for packet in packets
        for field, _, _ in packet.fields
        if field.startswith("zbee_zcl.attr.") and field not in _NOT_VALUES
    ]
    assert shown == [f"zbee_zcl.attr.{field}" for _, _, field in SHOWN.values()]
    await server.stop()
    await store.close()


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
async def test_killed_at_a_charges_commit_its_cost_counts_once(tmp_path, after) -> None:
    """The ESI is killed at the commit of a charge (before or after it): restarted on the
    same file, the day's cost holds the charge exactly when the credit does."""
    se, client, clock, _ = await han(82)
    path = tmp_path / f"killed-{after}.db"
    store = await CrashingStore.open(path)
    server, _ = await serve(se, clock, store)
    await server.consume(Fraction(1), Fraction(100))  # 100 p, stored
    store.crash_at, store.after = 2, after
    with pytest.raises(Killed):
        await server.consume(Fraction(1), Fraction(30))
    await server.stop()
    await Store.close(store)
    store = await CrashingStore.open(path)
    server, _ = await serve(se, clock, store)
    charged = 1000 - server.account.credit
    assert charged == (130 if after else 100)
    assert (await client.read_cost_consumption()).days[0] == charged
    await server.stop()
    await Store.close(store)
