"""SE 1.2 Prepayment, Calendar and Device Management on a HAN device's MQTT topics, read only
(ADR 0034): a prepay display's credit (in the price's currency) and the tier its TOU calendar
says, moved at the calendar's change time, on its retained ``state``; the supplier and the
site id, never the CIN; each event on ``calendar``, ``prepayment``, ``device_management``;
Home Assistant's sensors of them. Against a real Mosquitto over the simulated HAN, on the
virtual clock; and a meter with none of these clusters, which costs the bridge nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

from tests.calendar.tou import tou_calendar, utc
from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber, real_wait
from tests.mqtt.test_mqtt_bridge import HA_DEVICE_KEYS, HA_SENSOR_KEYS, TEMPLATE
from tests.mqtt.test_mqtt_han_supply import bridged
from tests.price.test_price_tariffs import information, labels
from tests.roles.han_builder import EUIS
from tests.roles.test_roles_esi_registry import price
from tests.roles.test_roles_prepayment import CODE, METER, esi_options
from zse.calendar.core import CalendarCancellation, CalendarReading
from zse.calendar.protocol import CalendarCancelled, CalendarChanged, CalendarReceived
from zse.devmgmt.core import (
    ChangeOfSupplier,
    ChangeOfTenancy,
    CustomerId,
    SiteId,
    SupplierTakesEffect,
    TenancyTakesEffect,
)
from zse.devmgmt.protocol import (
    CinUpdated,
    EventConfigurationChanged,
    PasswordReceived,
    SiteIdUpdated,
    SupplierChanged,
    TenancyChanged,
)
from zse.devmgmt.wire import TenancyChangeControl
from zse.drlc import ApplyLoadControl, StopLoadControl
from zse.drlc.service import ReportSent
from zse.events.protocol import EventLogCleared, EventLogRead, EventPublished
from zse.messaging.core import BoardEvent
from zse.metering import service as metering_service
from zse.mqtt.core import (
    HAN_EVENT_KINDS,
    HAN_UNPUBLISHED,
    DeviceView,
    Topics,
    han_discovery,
    han_event_publication,
    node_id,
)
from zse.prepayment import service as prepayment_service
from zse.prepayment.service import PrepayStatus
from zse.price.service import PriceReceived, PriceValueReceived, TariffCancelled, TariffReceived
from zse.roles import han as han_roles
from zse.se.ids import IN_HOME_DISPLAY
from zse.se.prepay import CreditStatus

IHD = "00:0d:6f:00:0a:00:00:01"
NOW = utc(2025, 5, 8, 6, 13, 20)
CIN = "CIN-0042-7788"
#: Credit Status of an account in credit, emergency credit enabled (D.7.2.2.1.4).
IN_CREDIT = CreditStatus.Credit_OK | CreditStatus.Emergency_Credit_Enabled
#: The display's SE 1.2 cluster sensors (ADR 0034).
SENSORS = ("credit", "emergency_credit", "calendar_tier", "tier_change")


def _status(credit: int, status: int = IN_CREDIT) -> PrepayStatus:
    return PrepayStatus(credit, 500, int(status), 300)


def test_every_event_of_a_han_device_has_a_topic_or_a_reason() -> None:
    """Each kind of event a HAN device emits (:data:`zse.roles.han.HanEvent`: the role's own
    and its clients') is published on a device topic (:data:`HAN_EVENT_KINDS`) or left out
    for a reason (:data:`HAN_UNPUBLISHED`): the Calendar, Prepayment and Device Management
    events were dropped without a word. A kind added later fails here until it has one."""
    own = {
        value
        for value in vars(han_roles).values()
        if isinstance(value, type)
        and dataclasses.is_dataclass(value)
        and value.__module__ == han_roles.__name__
    }
    clients = {
        *typing.get_args(BoardEvent),
        *typing.get_args(prepayment_service.ClientEvent),
        PriceReceived,
        PriceValueReceived,
        TariffReceived,
        TariffCancelled,
        ApplyLoadControl,
        StopLoadControl,
        ReportSent,
        *typing.get_args(metering_service.ClientEvent),
        CalendarReceived,
        CalendarCancelled,
        CalendarChanged,
        TenancyChanged,
        TenancyTakesEffect,
        SupplierChanged,
        SupplierTakesEffect,
        SiteIdUpdated,
        CinUpdated,
        PasswordReceived,
        EventConfigurationChanged,
        EventPublished,
        EventLogRead,
        EventLogCleared,
    }
    names = {cls.__name__ for cls in own | clients}
    assert len(own) >= 9  # Joined ... Note: the role's own
    assert not set(HAN_EVENT_KINDS) & HAN_UNPUBLISHED
    assert names - set(HAN_EVENT_KINDS) - HAN_UNPUBLISHED == set()


def test_a_display_shows_the_credit_the_calendar_tier_and_the_supplier() -> None:
    view = DeviceView(IN_HOME_DISPLAY)
    keys = ("credit_remaining", "calendar_tier", "supplier", "site_id")
    assert all(key in view.payload and view.payload[key] is None for key in keys)
    assert view.update(_status(1234), NOW)
    state = view.payload
    assert (state["credit_remaining"], state["emergency_credit_remaining"]) == (12.34, 5.0)
    assert state["credit_status"] == ["credit_ok", "emergency_credit_enabled"]
    assert state["low_credit_warning_level"] == 3.0
    yen = dataclasses.replace(price(1), currency=392)  # JPY: no minor unit
    assert view.update(PriceReceived(source_nwk=0, price=yen, new=True), NOW)
    assert view.payload["credit_remaining"] == 1234
    # the calendar's tier, its label from the tariff's tier labels, when it changes
    reading = CalendarReading(0, 1, utc(2025, 5, 8, 7), 2)
    assert view.update(CalendarChanged(at=NOW, reading=reading), NOW)
    assert (view.payload["calendar_tier"], view.payload["calendar_tier_label"]) == (1, "Tier 1")
    assert view.payload["calendar_next_tier"] == 2
    assert view.payload["calendar_tier_changes_at"] == "2025-05-08T07:00:00+00:00"
    view.update(TariffReceived(source_nwk=0, value=information(), new=True))
    assert view.update(TariffReceived(source_nwk=0, value=labels(), new=True))
    assert view.payload["calendar_tier_label"] == "Night"
    other = CalendarChanged(at=NOW, reading=CalendarReading(2, 1, None, None))
    assert not view.update(other, NOW)  # not the delivered calendar (type 0)
    assert view.calendar(None)  # no calendar any more
    assert view.payload["calendar_tier"] is view.payload["calendar_tier_changes_at"] is None
    # Device Management: a change of supplier shown once it takes effect; never the CIN
    change = ChangeOfSupplier(
        current_provider_id=1,
        issuer_event_id=9,
        proposed_provider_id=2,
        implementation_time=NOW + 3600,
        provider_name="Octo",
    )
    assert not view.update(SupplierChanged(change=change), NOW)
    assert view.update(SupplierTakesEffect(change=change), NOW + 3600)
    assert (view.payload["supplier"], view.payload["supplier_id"]) == ("Octo", 2)
    site = SiteId(issuer_event_id=3, provider_id=2, site_id="1900001234567")
    assert view.update(SiteIdUpdated(site=site), NOW)
    assert view.payload["site_id"] == "1900001234567"
    customer = CustomerId(issuer_event_id=4, provider_id=2, cin=CIN)
    assert not view.update(CinUpdated(customer=customer), NOW)
    assert CIN not in json.dumps(view.payload)


def test_the_clusters_events_go_on_their_topics_without_the_cin() -> None:
    topics = Topics()
    customer = CustomerId(issuer_event_id=4, provider_id=2, cin=CIN)
    cin = han_event_publication(topics, IHD, CinUpdated(customer=customer), NOW)
    assert cin is not None
    assert cin.topic == "zse/000d6f000a000001/device_management"
    assert not cin.retain
    assert CIN not in cin.encode().decode()
    assert cin.payload["customer"] == {"issuer_event_id": 4, "provider_id": 2, "time": 0}
    status = han_event_publication(topics, IHD, _status(1234), NOW)
    assert status is not None
    assert status.topic == "zse/000d6f000a000001/prepayment"
    assert status.payload["credit_status"] == ["credit_ok", "emergency_credit_enabled"]
    received = han_event_publication(topics, IHD, CalendarReceived(0, tou_calendar()), NOW)
    assert received is not None
    assert received.topic == "zse/000d6f000a000001/calendar"
    assert received.payload["calendar"]["calendar_name"] == "GB TOU"
    assert "days" not in received.payload["calendar"]  # the header, not the profiles
    json.dumps(received.payload)


def test_the_display_s_credit_and_tier_sensors_are_home_assistant_s_schema() -> None:
    configs = {
        p.topic.split("/")[-2]: p.payload
        for p in han_discovery(
            Topics(), [(IHD, IN_HOME_DISPLAY)], value_units={IHD: {"credit": "GBP"}}
        )
    }
    for what in SENSORS:
        config = configs[what]
        assert set(config) <= HA_SENSOR_KEYS, set(config) - HA_SENSOR_KEYS
        assert set(config["device"]) <= HA_DEVICE_KEYS
        assert TEMPLATE.fullmatch(config["value_template"]), config["value_template"]
        assert config["state_topic"] == "zse/000d6f000a000001/state"
    assert (configs["credit"]["device_class"], configs["credit"]["unit_of_measurement"]) == (
        "monetary",
        "GBP",
    )
    assert "state_class" not in configs["credit"]  # monetary takes only total
    assert configs["emergency_credit"]["unit_of_measurement"] == "GBP"
    assert configs["calendar_tier"]["value_template"] == "{{ value_json.calendar_tier_label }}"
    assert configs["tier_change"]["device_class"] == "timestamp"


def _state(sub: Subscriber, topic: str, done: Any) -> Any:
    return (got := sub.on(topic)) and done(got[-1]) and got[-1]


async def test_a_prepay_display_s_credit_and_calendar_tier_on_mqtt(
    broker: Broker, tmp_path: Path
) -> None:
    # the credit read at the resync: 1000 pence
    async with bridged(broker, tmp_path, esi_options(), prepayment=True) as (han, ihd, sub, bridge):
        esi = han.esi
        node = node_id(ihd.name)
        state = f"zse/{node}/state"
        await asyncio.sleep(30)  # virtual
        await esi.settle()
        got = await sub.until(lambda: _state(sub, state, lambda s: s["credit_remaining"]))
        assert (got["credit_remaining"], got["emergency_credit_remaining"]) == (10.0, 0.0)
        assert "credit_ok" in got["credit_status"]
        await esi.publish_price(price(1), device=EUIS["ihd"])  # EUR
        # a TOU calendar: night (tier 1) until 07:00 UTC this Thursday, then day (tier 2)
        await esi.publish_calendar(tou_calendar(calendar_time_reference=0), device=EUIS["ihd"])
        site = SiteId(issuer_event_id=3, provider_id=7, site_id="1900001234567")
        await esi.update_site_id(site, device=EUIS["ihd"])
        await esi.update_cin(
            CustomerId(issuer_event_id=4, provider_id=7, cin=CIN), device=EUIS["ihd"]
        )
        await asyncio.sleep(5)  # virtual
        got = await sub.until(
            lambda: _state(sub, state, lambda s: s["calendar_tier"] == 1 and s["site_id"])
        )
        assert (got["calendar_next_tier"], got["calendar_tier_label"]) == (2, "Tier 1")
        assert got["calendar_tier_changes_at"] == "2025-05-08T07:00:00+00:00"
        # a top-up through the library: the credit rises
        assert (await ihd.top_up(CODE)).credit_remaining == 3000
        await sub.until(lambda: _state(sub, state, lambda s: s["credit_remaining"] == 30.0))
        # at the calendar's change time, the tier moves
        await asyncio.sleep(utc(2025, 5, 8, 7) - han.clock() + 1)  # virtual
        got = await sub.until(lambda: _state(sub, state, lambda s: s["calendar_tier"] == 2))
        assert got["calendar_tier_changes_at"] == "2025-05-08T23:00:00+00:00"
        assert got["calendar_next_tier"] == 1
        # a change of tenancy clearing the tariff plan, the ESI holding no calendar now (it
        # forgot it without telling the display): the display's tier is gone from the state
        await esi.calendar.cancel(
            CalendarCancellation(provider_id=5, issuer_calendar_id=40, calendar_type=0)
        )
        control = int(TenancyChangeControl.Clear_Tariff_Plan)
        change = ChangeOfTenancy(provider_id=5, issuer_event_id=80, control=control)
        await esi.publish_change_of_tenancy(change, device=EUIS["ihd"])
        await asyncio.sleep(10)  # virtual
        got = await sub.until(lambda: _state(sub, state, lambda s: s["calendar_tier"] is None))
        assert got["calendar_tier_changes_at"] is None
        # Home Assistant's sensors: the credit in the price's currency
        configs = {
            what: await sub.until(lambda w=what: sub.on(f"homeassistant/sensor/{node}/{w}/config"))
            for what in SENSORS
        }
        assert configs["credit"][-1]["unit_of_measurement"] == "EUR"
        assert configs["tier_change"][-1]["device_class"] == "timestamp"
        # the events on their topics; the CIN nowhere
        await real_wait(bridge.drained.wait())
        events = {
            kind: [v["event"] for v in sub.on(f"zse/{node}/{kind}")]
            for kind in ("calendar", "prepayment", "device_management")
        }
        assert {"CalendarReceived", "CalendarChanged"} <= set(events["calendar"])
        assert {"PrepayStatus", "TopUpAnswered", "TopUpAccepted"} <= set(events["prepayment"])
        assert {"SiteIdUpdated", "CinUpdated"} <= set(events["device_management"])
        assert not any(CIN in json.dumps(v) for _, v, _ in sub.received)


async def test_a_meter_without_these_clusters_costs_the_bridge_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    esi = {"meter": METER}  # no Prepayment server, no calendar
    async with bridged(broker, tmp_path, esi, metering=True) as (han, ihd, sub, bridge):
        node = node_id(ihd.name)
        await han.esi.publish_price(price(1), device=EUIS["ihd"])
        await asyncio.sleep(330)  # virtual: the display's readings
        await real_wait(bridge.drained.wait())
        got = await sub.until(lambda: _state(sub, f"zse/{node}/state", lambda s: s["currency"]))
        new = (
            "credit_remaining",
            "emergency_credit_remaining",
            "credit_status",
            "low_credit_warning_level",
            "calendar_tier",
            "calendar_tier_label",
            "calendar_next_tier",
            "calendar_tier_changes_at",
            "supplier",
            "supplier_id",
            "site_id",
        )
        assert {key: got[key] for key in new} == dict.fromkeys(new)
        topics = {t for t, _, _ in sub.received}
        kinds = ("calendar", "prepayment", "device_management")
        assert not {f"zse/{node}/{kind}" for kind in kinds} & topics
        assert not {f"homeassistant/sensor/{node}/{what}/config" for what in SENSORS} & topics
        assert ihd.prepayment is None
        assert not [e for e in han.device_events["ihd"] if type(e).__name__ == "Note"]


async def test_a_forced_prepay_display_on_a_credit_meter_announces_no_credit_sensors(
    broker: Broker, tmp_path: Path
) -> None:
    """``prepayment=True`` (``zse han watch --prepayment``) on a meter without Prepayment:
    the credit read gets nothing (a status all None), so the credit sensors stay withheld,
    as when the display does not ask (ADR 0034); none is announced empty."""
    esi = {"meter": METER}  # no Prepayment server
    async with bridged(broker, tmp_path, esi, metering=True, prepayment=True) as (
        han, ihd, sub, bridge
    ):  # fmt: skip
        node = node_id(ihd.name)
        await han.esi.publish_price(price(1), device=EUIS["ihd"])
        await asyncio.sleep(90)  # virtual: readings, the credit read again
        await real_wait(bridge.drained.wait())
        got = await sub.until(lambda: _state(sub, f"zse/{node}/state", lambda s: s["currency"]))
        assert got["credit_remaining"] is None
        statuses = [e for e in han.device_events["ihd"] if isinstance(e, PrepayStatus)]
        assert statuses == [PrepayStatus(None, None, None, None)]  # read, nothing served
        topics = {t for t, _, _ in sub.received}
        credit = {
            f"homeassistant/sensor/{node}/{what}/config" for what in SENSORS if "credit" in what
        }
        assert credit, SENSORS
        assert not credit & topics
