"""A copy ``skipped`` (its device not METER READY) when its send is cancelled: the ESI had
recorded the send for the device anyway (SE D.5.2.3.1, D.2.2.3.1: stored first), and was not
told of the cancel, so the device, once METER READY, still fetched the cancelled message with
Get Last Message (D.5.2.4.1) or the cancelled event with Get Scheduled Events (D.2.2.4.1)."""

from __future__ import annotations

import asyncio

from tests.headend.helpers import Service
from tests.headend.test_headend_cancel import A
from tests.headend.test_headend_give_up import silent_and_skipped
from zse.headend.sim import SimDevice
from zse.installcode import parse_eui64
from zse.zcl.delivery import device_name

LCE = {"duty_cycle": 40, "duration_minutes": 60, "criticality_level": 3, "start_delay_minutes": 30}


async def _skipped_then_cancelled(
    service: Service, kind: str, body: dict[str, object]
) -> tuple[SimDevice, int]:
    """The thermostat registered but silent (pending provisioning), the only device of
    meter-1, a send of ``kind`` to meter-1's group, its copy skipped, the send cancelled (no
    copy sent on the meter: no Cancel to another device withdraws it there either)."""
    thermostat = [d for d in service.sims.devices if d.meter == "meter-1"][1]
    send_id, _, outcome = await silent_and_skipped(service, thermostat, kind, body)
    cancel = await service.call(A, "POST", f"/api/v1/sends/{send_id}/cancel")
    assert cancel.status == 202, cancel.body
    assert outcome()["outcome"] == "cancelled"
    assert outcome()["detail"] == "cancelled before it was sent"
    await asyncio.sleep(600)
    assert outcome()["outcome"] == "cancelled"  # final: nothing more sent
    assert service.headend.send(A, send_id)["finished"]
    return thermostat, send_id


async def test_a_skipped_copy_cancelled_is_not_fetched_with_get_last_message(
    service: Service,
) -> None:
    """The ESI answered the thermostat's Get Last Message (once METER READY: the ESI's
    answer does not depend on its state) with the cancelled message."""
    thermostat, _ = await _skipped_then_cancelled(
        service, "message", {"text": "Hi", "duration_minutes": 0xFFFF}
    )
    esi = service.headend.meters[thermostat.meter].esi
    name = device_name(parse_eui64(thermostat.mac))
    assert esi.messaging.messages.last_message(name, service.headend.clock()) is None


async def test_a_skipped_event_cancelled_is_not_fetched_with_get_scheduled_events(
    service: Service,
) -> None:
    """The ESI answered the thermostat's Get Scheduled Events with the cancelled event."""
    thermostat, _ = await _skipped_then_cancelled(service, "load-control", LCE)
    esi = service.headend.meters[thermostat.meter].esi
    name = device_name(parse_eui64(thermostat.mac))
    events = esi.drlc.core.scheduled(
        start_time=0, number_of_events=0, now=service.headend.clock(), device=name
    )
    assert [e.issuer_event_id for e in events] == []
