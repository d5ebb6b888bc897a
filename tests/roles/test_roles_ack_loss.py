"""At most once at the HAN level when acknowledgements are lost. A command the device received
whose acknowledgements were all lost reaches the ESI as OFFLINE; the ESI then sends it again
(its own retry paths). The device must act once (show the message once, run the event once,
take the price once, cancel once) and report each status once, and the ESI must record each
report once.

The ESI's unicasts ask for an APS acknowledgement (ZB 2.2.8.4.1), so lost MAC
acknowledgements (the air's ``ack_loss``, IEEE 802.15.4-2006 7.5.6.4.3) no longer make a
delivered command look undelivered: its APS acknowledgement comes all the same
(:func:`test_lost_mac_acknowledgements_no_longer_fail_a_delivered_command`). What does is the
device's APS acknowledgements lost, every one of the four attempts': here, everything the
device sends the ESI is lost while the ESI's frames reach it."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from tests.headend.helpers import start_service
from tests.headend.test_headend_cancel import A, _register
from tests.headend.test_headend_story import _until
from tests.roles.han_builder import EUIS, Han, close
from tests.roles.test_roles_esi_registry import joined_han, price
from zse.drlc import LoadControlEvent, Status
from zse.drlc.core import ApplyLoadControl, StopLoadControl
from zse.drlc.service import ReportSent
from zse.installcode import canonical_eui64, parse_eui64
from zse.messaging import Message, MessageDisplayed
from zse.messaging.core import MessageCancelled
from zse.price.protocol import PriceReceived
from zse.roles.esi import Outcome, ReportReceived


def lose_acks(han: Han, name: str) -> None:
    """Every APS acknowledgement ``name`` sends the ESI is lost: every frame it sends the ESI
    is (its reports too), while the ESI's frames reach it."""
    han.air.set_link_faults(han.devices[name].device, han.app.radio, loss=1.0, both_ways=False)


def heal(han: Han, name: str) -> None:
    han.air.set_link_faults(han.devices[name].device, han.app.radio, both_ways=False)


def of(han: Han, name: str, kind: type) -> list[Any]:
    return [e for e in han.device_events[name] if isinstance(e, kind)]


def reports(han: Han, name: str, event_id: int) -> Counter[int]:
    """How many Report Event Status of each status the ESI took as new for the event."""
    return Counter(
        int(e.report.event_status)
        for e in han.events
        if isinstance(e, ReportReceived)
        and e.device == EUIS[name]
        and e.report.issuer_event_id == event_id
        and e.new
    )


async def test_display_message_and_cancel_resent_after_lost_acks_act_once(tmp_path) -> None:
    """A Display Message the display got, with every acknowledgement lost, is OFFLINE at the
    ESI; resent (resend_message) it is DELIVERED and shown once. The same for its Cancel."""
    han = await joined_han(tmp_path, names=("ihd",))
    esi, ihd = han.esi, han.devices["ihd"]
    message = Message(message_id=41, text="Peak at 5pm", duration_in_minutes=60)
    lose_acks(han, "ihd")
    first = await esi.send_message(message, device=EUIS["ihd"])
    assert first.offline == [EUIS["ihd"]]
    await asyncio.sleep(1)
    assert [e.message.message_id for e in of(han, "ihd", MessageDisplayed)] == [41]
    heal(han, "ihd")
    again = await esi.resend_message(message, EUIS["ihd"])
    assert again.outcome is Outcome.DELIVERED
    await asyncio.sleep(1)
    assert [e.message.message_id for e in of(han, "ihd", MessageDisplayed)] == [41]
    # the Display Message's three APS resends reached the display: each acknowledged again
    # (lost too), none handed up again (ZB 2.2.8.4.2)
    assert ihd.device.stats.aps_duplicates == 3

    lose_acks(han, "ihd")
    cancelled = await esi.cancel_message(41, device=EUIS["ihd"])
    assert cancelled.offline == [EUIS["ihd"]]
    await asyncio.sleep(1)
    heal(han, "ihd")
    assert (await esi.cancel_message(41, device=EUIS["ihd"])).delivered == [EUIS["ihd"]]
    await asyncio.sleep(1)
    assert [e.message.message_id for e in of(han, "ihd", MessageCancelled)] == [41]
    assert [e.message.message_id for e in of(han, "ihd", MessageDisplayed)] == [41]
    await close(han)


async def test_publish_price_resent_after_lost_acks_is_taken_once(tmp_path) -> None:
    """A Publish Price the display got with every acknowledgement lost is OFFLINE at the ESI;
    published again it is DELIVERED, and the display takes the price once (a repeat of the
    issuer event id, D.4.4.2)."""
    han = await joined_han(tmp_path, names=("ihd",))
    esi = han.esi
    before = len(of(han, "ihd", PriceReceived))
    lose_acks(han, "ihd")
    assert (await esi.publish_price(price(61), device=EUIS["ihd"])).offline == [EUIS["ihd"]]
    await asyncio.sleep(1)
    heal(han, "ihd")
    assert (await esi.publish_price(price(61), device=EUIS["ihd"])).delivered == [EUIS["ihd"]]
    await asyncio.sleep(1)
    taken = [(e.price.issuer_event_id, e.new) for e in of(han, "ihd", PriceReceived)[before:]]
    assert taken == [(61, True), (61, False)]  # the copy is taken as a repeat
    await close(han)


async def lce_run_once(tmp_path) -> Han:
    """A Load Control Event the device got with every acknowledgement lost (both ways: its
    reports' too) is OFFLINE at the ESI; resent (resend_load_control) it is DELIVERED. The
    device runs it once, reports Received and Started once each, the ESI records each once."""
    han = await joined_han(tmp_path, names=("lcd",))
    esi = han.esi
    event = LoadControlEvent(
        issuer_event_id=71, device_class=0x0FFF, duration_in_minutes=30, criticality_level=3,
        duty_cycle=40,
    )  # fmt: skip
    lose_acks(han, "lcd")
    assert (await esi.send_load_control(event, device=EUIS["lcd"])).offline == [EUIS["lcd"]]
    await asyncio.sleep(5)
    heal(han, "lcd")
    again = await esi.resend_load_control(71, EUIS["lcd"])
    assert again.outcome is Outcome.DELIVERED
    await asyncio.sleep(60)
    assert [a.issuer_event_id for a in of(han, "lcd", ApplyLoadControl)] == [71]
    assert han.devices["lcd"].duty_cycle == 40
    sent = Counter(int(r.report.event_status) for r in of(han, "lcd", ReportSent))
    assert (sent[Status.RECEIVED], sent[Status.STARTED]) == (1, 1)
    assert reports(han, "lcd", 71) == {Status.RECEIVED: 1, Status.STARTED: 1}
    view = han.esi.drlc.core.view(71)[EUIS["lcd"]]
    assert [s for s, _ in view.statuses] == [Status.RECEIVED, Status.STARTED]
    return han


async def test_load_control_resent_after_lost_acks_runs_and_reports_once(tmp_path) -> None:
    """See :func:`lce_run_once`."""
    await close(await lce_run_once(tmp_path))


async def test_load_control_cancel_resent_after_lost_acks_is_reported_once(tmp_path) -> None:
    """The event's cancellation, sent with every acknowledgement lost and resent, stops the
    event once and is reported once: the ESI's record of the event is Received, Started,
    Cancelled, nothing after. The device answered the resent cancel of an event it had
    already ended with Rejected - Undefined Event (0xFD), which the ESI recorded as a new
    status of the event."""
    han = await lce_run_once(tmp_path)
    esi = han.esi
    lose_acks(han, "lcd")
    assert (await esi.cancel_load_control(71, device=EUIS["lcd"])).offline == [EUIS["lcd"]]
    await asyncio.sleep(5)
    heal(han, "lcd")
    assert (await esi.cancel_load_control(71, device=EUIS["lcd"])).delivered == [EUIS["lcd"]]
    await asyncio.sleep(60)
    assert [s.issuer_event_id for s in of(han, "lcd", StopLoadControl)] == [71]
    assert han.devices["lcd"].duty_cycle == 100
    view = esi.drlc.core.view(71)[EUIS["lcd"]]
    statuses = [s for s, _ in view.statuses]
    await close(han)
    assert statuses == [Status.RECEIVED, Status.STARTED, Status.CANCELLED]
    assert reports(han, "lcd", 71) == {
        Status.RECEIVED: 1,
        Status.STARTED: 1,
        Status.CANCELLED: 1,
    }


async def test_headend_message_retried_after_lost_acks_is_shown_once(tmp_path) -> None:
    """Through the headend: the display got the message but every APS acknowledgement was lost,
    so the send's outcome is offline; the headend's retry (the ESI's resend_message) is
    delivered, the send records that one outcome for the device, and the message is shown
    once."""
    service = await start_service(tmp_path)
    try:
        ihd = next(d for d in service.sims.devices if d.meter == "meter-1")
        await _register(service, [ihd])
        reply = await service.call(
            A, "POST", "/api/v1/groups", {"name": "g", "meters": ["meter-1"]}
        )
        assert reply.status == 201, reply.body
        shown: list[Any] = []
        ihd.role.on_event(lambda e: shown.append(e) if isinstance(e, MessageDisplayed) else None)
        air = service.sims.air_of(ihd)
        radio = next(node for node in air.nodes if node.is_coordinator)
        display = parse_eui64(ihd.mac)
        air.set_link_faults(display, radio, loss=1.0, both_ways=False)  # its APS acks lost
        body = {"group": "g", "text": "Critical peak", "duration_minutes": 30}
        sent = await service.call(A, "POST", "/api/v1/sends/message", body)
        assert sent.status == 202, sent.body
        send_id = sent.body["id"]

        async def outcome_is(wanted: str) -> bool:
            outcomes = service.headend.send(A, send_id)["outcomes"]
            return [o["outcome"] for o in outcomes] == [wanted]

        await _until(service, lambda: outcome_is("offline"), step=1.0)
        assert [e.message.message_id for e in shown] == [send_id]  # it got there all the same
        air.set_link_faults(display, radio, both_ways=False)
        await _until(service, lambda: outcome_is("delivered"), step=5.0)
        await asyncio.sleep(60)
        view = service.headend.send(A, send_id)
        assert [(o["mac"], o["outcome"]) for o in view["outcomes"]] == [
            (canonical_eui64(ihd.mac), "delivered")
        ]
        assert [e.message.message_id for e in shown] == [send_id]
        assert service.headend.retries.pending() == []
    finally:
        await service.close()
