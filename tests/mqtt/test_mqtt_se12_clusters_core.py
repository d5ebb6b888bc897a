"""The SE 1.2 clusters' ESI events on MQTT (ADR 0030's rule for a later cluster): the prepay
account's events on ``<base>/<meter>/prepayment`` with a top-up's code masked, Device
Management and Events requests on the device's topic, calendar and Device Management sends on
the meter's topic."""

from __future__ import annotations

import json

from zse.calendar import CalendarCancellation
from zse.devmgmt.core import SiteId
from zse.devmgmt.protocol import PasswordRequested
from zse.mqtt.core import (
    Topics,
    event_publication,
    meter_event_publication,
    sent_publication,
)
from zse.prepayment.core import PrepayAccount, PrepayConfig
from zse.roles.esi import CalendarCancelSent, DeviceManagementSent, SendResult

NOW = 800_000_000
CODE = "12345678901234567890"
METER = "00:0d:6f:00:00:00:00:01"
TOPICS = Topics("zse")


def test_a_top_up_reaches_the_meters_prepayment_topic_with_its_code_masked() -> None:
    account = PrepayAccount(PrepayConfig(initial_credit=1000))
    account.registered.register(CODE, 2000)
    events = (
        account.top_up(CODE.encode(), 2, NOW).events + account.top_up(CODE.encode(), 2, NOW).events
    )
    published = [meter_event_publication(TOPICS, METER, e, NOW) for e in events]
    assert all(p is not None for p in published)
    assert {p.topic for p in published if p} == {TOPICS.device(METER, "prepayment")}
    texts = [p.encode().decode() for p in published if p]
    assert all(CODE not in text and CODE[:16] not in text for text in texts)
    first, again = (json.loads(text) for text in (texts[0], texts[-1]))
    assert (first["event"], first["amount"], first["credit_remaining"]) == (
        "TopUpAccepted",
        2000,
        3000,
    )
    assert first["code"].endswith("7890")
    assert again["event"] == "TopUpRefused"
    assert not any(p.retain for p in published if p)
    assert meter_event_publication(TOPICS, METER, object(), NOW) is None


def test_device_management_and_events_requests_go_on_the_devices_topic() -> None:
    ieee = "00:0d:6f:00:0a:00:00:01"
    asked = PasswordRequested(source_nwk=0x1234, source_ieee=ieee, password_type=1, answered=True)
    publication = event_publication(TOPICS, asked, NOW)
    assert publication is not None
    assert publication.topic == TOPICS.device(ieee, "device_management")
    assert publication.payload["event"] == "PasswordRequested"
    assert publication.payload["answered"] is True


def test_calendar_and_device_management_sends_go_on_the_meters_topic() -> None:
    result = SendResult(what="x", target="broadcast", outcomes=())
    cancel = CalendarCancelSent(
        cancellation=CalendarCancellation(provider_id=1, issuer_calendar_id=7, calendar_type=0),
        result=result,
    )
    site = DeviceManagementSent(
        item=SiteId(issuer_event_id=1, provider_id=2, site_id="SITE-1"), result=result
    )
    for event, kind in ((cancel, "calendar"), (site, "device_management")):
        publication = sent_publication(TOPICS, METER, event, NOW)
        assert publication is not None
        assert publication.topic == TOPICS.device(METER, kind)
        assert publication.payload["event"] == type(event).__name__
