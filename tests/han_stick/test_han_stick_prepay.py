"""``zse han watch`` on a prepay meter (SE 1.2 D.7): the stick asks the meter once whether it
serves Prepayment (ZDO Match_Desc_req, SE 5.4.7.1), then prints the credit, low credit and
the TOU calendar's tier (SE 1.2 D.9), and puts the credit on a real Mosquitto; a Match_Desc
that is not answered is a warning and watching goes on. Bellows' real EZSP/ASH code over the
fake NCP, the simulated meter, virtual time."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zigpy.zdo.types as zdo_t

from tests.calendar.tou import tou_calendar
from tests.han_stick.stick_builder import STICK, match_descs, meter_and_stick, zcl_sent
from tests.han_stick.test_han_stick_cli import options, watched
from tests.mqtt.broker import Broker, running_broker
from tests.mqtt.helpers import Subscriber, settings
from tests.price.test_price_tariffs import information, labels
from tests.roles.han_builder import START, Han, close
from tests.roles.test_roles_esi_registry import price
from tests.roles.test_roles_prepayment import METER, esi_options
from zse.calendar.core import CalendarReading
from zse.calendar.protocol import CalendarChanged
from zse.cli.han import HanOptions, _show, run_han
from zse.metering.core import Readings
from zse.mqtt.core import node_id
from zse.prepayment.service import PrepayStatus
from zse.roles.han import InHomeDisplay
from zse.se.ids import METERING, PREPAYMENT
from zse.se.prepay import CreditStatus
from zse.sim import Air

broker = pytest.fixture(running_broker, name="broker")


def unanswered_match_desc(
    monkeypatch: pytest.MonkeyPatch,
    han: Han,
    cluster: int,
    asked_at: dict[int, float] | None = None,
) -> None:
    """The coordinator never answers a Match_Desc_req for ``cluster``; others as before.
    ``asked_at``: when (the loop's time) each cluster was first asked for."""
    node = han.app.radio
    serve = node._zdo_serve
    loop = asyncio.get_running_loop()

    def silent(ind: Any) -> bool:
        asked = ind.payload[6:8] if ind.payload[5:6] == b"\x01" else b""
        if ind.cluster_id == zdo_t.ZDOCmd.Match_Desc_req and asked_at is not None and asked:
            asked_at.setdefault(int.from_bytes(asked, "little"), loop.time())
        if ind.cluster_id == zdo_t.ZDOCmd.Match_Desc_req and asked == cluster.to_bytes(2, "little"):
            return True
        return bool(serve(ind))

    monkeypatch.setattr(node, "_zdo_serve", silent)


def records(lines: list[str], kind: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, lines) if r["type"] == kind]


async def test_watch_prints_a_prepay_meter_s_credit_and_tier_and_puts_the_credit_on_mqtt(
    tmp_path: Path, serial_link: Callable[..., None], broker: Broker
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link, **esi_options())  # 1000 pence of credit
    esi = sh.han.esi
    await esi.price.publish(price(1))  # EUR, 0.250 a kWh: Get Current Price answers it
    subscriber = Subscriber(broker)
    await subscriber.connect()
    lines: list[str] = []
    state = f"zse/{node_id(STICK)}/state"
    mqtt = settings(broker, client_id="zse-han-t")
    try:
        async with watched(tmp_path, sh, lines, mqtt=mqtt) as stop:
            await asyncio.sleep(20)  # virtual: joined, keyed, resynced (the credit read)
            assert records(lines, "credit") == [
                {
                    "type": "credit",
                    "credit": 10.0,
                    "emergency_credit": 0.0,
                    "currency": "EUR",
                    "status": ["credit_ok", "emergency_credit_enabled"],
                }
            ]
            got = await subscriber.until(
                lambda: (s := subscriber.on(state)) and s[-1]["credit_remaining"] and s[-1]
            )
            assert (got["credit_remaining"], got["currency"]) == (10.0, 978)
            # the tariff names the tiers (Publish Tier Labels): 1 Night, 2 Day
            await esi.publish_tariff(information(), labels(), device=str(STICK))
            # a TOU calendar: night (tier 1) until 07:00 UTC, then day (tier 2)
            await esi.publish_calendar(tou_calendar(calendar_time_reference=0), device=str(STICK))
            # 28 kWh at 0.250: 700 pence, 300 left, the low credit warning level
            assert esi.meter is not None
            await esi.meter.feed(Readings(summation_delivered=0))
            await asyncio.sleep(61)  # virtual: the display reads the credit again with a reading
            await esi.meter.feed(Readings(summation_delivered=28_000))
            await asyncio.sleep(40)  # virtual: the meter reports, the display reads the credit
            assert records(lines, "tier") == [
                {
                    "type": "tier",
                    "tier": 1,
                    "label": "Night",
                    "next_tier": 2,
                    "changes_at": "2025-05-08T07:00:00+00:00",
                }
            ]
            assert records(lines, "low_credit") == [
                {"type": "low_credit", "credit": 3.0, "level": 3.0}
            ]
            assert records(lines, "credit")[-1]["credit"] == 3.0
            got = await subscriber.until(
                lambda: (s := subscriber.on(state)) and s[-1]["credit_remaining"] == 3.0 and s[-1]
            )
            assert (got["calendar_tier"], got["calendar_tier_label"]) == (1, "Night")
            assert match_descs(sh)[PREPAYMENT] == 1  # asked once
            assert await stop() == 0
    finally:
        await subscriber.close()


async def test_an_unanswered_match_desc_for_prepayment_is_a_warning_and_watch_goes_on(
    tmp_path: Path,
    serial_link: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link, **esi_options())
    await sh.han.esi.price.publish(price(1))
    assert sh.han.esi.meter is not None
    await sh.han.esi.meter.feed(Readings(summation_delivered=1000))
    unanswered_match_desc(monkeypatch, sh.han, PREPAYMENT)
    lines: list[str] = []
    errors: list[str] = []
    caplog.set_level(logging.WARNING, logger="zse.roles.han")
    try:
        status = await run_han(
            options(tmp_path, sh, as_json=True, duration=30),
            watch=True,
            out=lines.append,
            err=errors.append,
        )
        assert (status, errors) == (0, [])
        warned = [r.getMessage() for r in caplog.records if r.name == "zse.roles.han"]
        assert len(warned) == 1, warned
        assert "did not say whether it serves Prepayment" in warned[0]
        kinds = [json.loads(line)["type"] for line in lines]
        assert {"reading", "price"} <= set(kinds)
        assert "credit" not in kinds
        assert zcl_sent(sh, PREPAYMENT) == 0
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)


async def test_an_unanswered_prepayment_question_does_not_hold_the_meter_search_back(
    tmp_path: Path, serial_link: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Match_Desc_req for Prepayment and the one for the meter's Metering server go out
    together (SE 5.4.7.1): a meter that never answers the first (the stick's ZDO request
    times out after some seconds) costs the meter search no wait."""
    sh = await meter_and_stick(tmp_path, serial_link, **esi_options())
    await sh.han.esi.price.publish(price(1))
    assert sh.han.esi.meter is not None
    await sh.han.esi.meter.feed(Readings(summation_delivered=1000))
    asked_at: dict[int, float] = {}
    unanswered_match_desc(monkeypatch, sh.han, PREPAYMENT, asked_at)
    lines: list[str] = []
    try:
        status = await run_han(
            options(tmp_path, sh, as_json=True, duration=30), watch=True, out=lines.append
        )
        assert status == 0
        assert {PREPAYMENT, METERING} <= set(asked_at), asked_at
        assert asked_at[METERING] - asked_at[PREPAYMENT] < 1, asked_at
        assert "reading" in [json.loads(line)["type"] for line in lines]
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)


async def test_the_credit_line_in_text_names_the_status_bits_and_nothing_read_says_so() -> None:
    """The text line of a credit read without a price known: two digits after the point (as
    on MQTT), the Credit Status bits by name, comma-separated; a read that got nothing (a
    meter without Prepayment, ``--prepayment``) says the meter does not serve Prepayment."""
    ihd = InHomeDisplay(Air().device(str(STICK)), credentials=[], prepayment=True)
    lines: list[str] = []
    shown: dict[str, Any] = {}
    text = HanOptions(device="/dev/null")
    status = int(CreditStatus.Low_Credit | CreditStatus.Emergency_Credit_Available)
    await _show(ihd, PrepayStatus(250, 500, status, 300), text, lines.append, shown)
    await _show(ihd, PrepayStatus(None, None, None, None), text, lines.append, shown)
    assert lines == [
        "credit        credit=2.5  emergency_credit=5.0"
        "  status=low_credit,emergency_credit_available",
        "prepayment    served=False",
    ]


async def test_the_tier_line_names_the_tier_by_the_tariff_s_tier_label() -> None:
    """The ``tier`` line carries the tier's label: the delivered tariff's Publish Tier Labels
    (SE 1.2 D.4.2.4.9) when the display holds them, else ``Tier N`` (as
    ``calendar_tier_label`` on MQTT); no label for no tier."""
    ihd = InHomeDisplay(Air().device(str(STICK)), credentials=[], clock=lambda: START)
    text = HanOptions(device="/dev/null")
    lines: list[str] = []

    async def show(tier: int) -> None:
        reading = CalendarReading(calendar_type=0, value=tier, changes_at=None, next_value=None)
        await _show(ihd, CalendarChanged(at=START, reading=reading), text, lines.append, {})

    await show(1)
    ihd.price.tariffs.add(information(), START)
    ihd.price.tariffs.put(labels(), START)
    await show(1)
    await show(2)
    await show(0)
    assert lines == [
        "tier          tier=1  label=Tier 1",
        "tier          tier=1  label=Night",
        "tier          tier=2  label=Day",
        "tier          tier=0",
    ]


async def test_a_forced_prepayment_on_a_credit_meter_says_so_and_announces_no_credit(
    tmp_path: Path, serial_link: Callable[..., None], broker: Broker
) -> None:
    """``zse han watch --prepayment --broker`` on a meter without Prepayment: one
    ``prepayment served=False`` line, no credit line, and no credit sensor announced to
    Home Assistant (it would stay empty)."""
    sh = await meter_and_stick(tmp_path, serial_link, meter=METER)  # no Prepayment server
    await sh.han.esi.price.publish(price(1))
    assert sh.han.esi.meter is not None
    await sh.han.esi.meter.feed(Readings(summation_delivered=1000))
    subscriber = Subscriber(broker)
    await subscriber.connect()
    lines: list[str] = []
    mqtt = settings(broker, client_id="zse-han-forced")
    try:
        status = await run_han(
            options(tmp_path, sh, as_json=True, prepayment=True, mqtt=mqtt, duration=90),
            watch=True,
            out=lines.append,
        )
        assert status == 0
        assert records(lines, "prepayment") == [{"type": "prepayment", "served": False}]
        assert records(lines, "credit") == []
        node = node_id(STICK)
        await subscriber.until(lambda: subscriber.on(f"zse/{node}/state"))
        topics = {t for t, _, _ in subscriber.received}
        assert f"homeassistant/sensor/{node}/energy/config" in topics
        assert not {t for t in topics if t.startswith(f"homeassistant/sensor/{node}/credit")}
        assert not {t for t in topics if "emergency_credit" in t}
    finally:
        await subscriber.close()
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)
