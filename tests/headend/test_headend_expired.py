"""An ``expired`` copy means the headend stopped trying, not that the send was withdrawn: the
ESI still holds it (SE D.5.2.4.1 Get Last Message, D.2.2.4.1 Get Scheduled Events). It was
final at the headend: a device that fetched it later and confirmed it (or reported the event)
stayed ``expired``, and a cancel of it was refused 409, so the retailer could not withdraw
what the meter went on serving."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.headend.helpers import Service
from tests.headend.test_headend_cancel import A, _register
from tests.headend.test_headend_story import _until
from zse.headend.core import CANCEL_TOLD, RANK, Outcome, advance
from zse.installcode import canonical_eui64, parse_eui64

HOUR = 3600.0
#: What a device may still report of a copy the headend has given up.
_REPORTS = [o for o in Outcome if RANK[o] > RANK[Outcome.OFFLINE] and o is not Outcome.EXPIRED]


@pytest.mark.parametrize("reported", _REPORTS, ids=lambda o: o.value)
def test_a_late_report_replaces_expired(reported: Outcome) -> None:
    """EXPIRED ranked with CANCELLED, above every report, so a late one was ignored."""
    assert advance(Outcome.EXPIRED, reported) is reported


@pytest.mark.parametrize(
    "tried", [Outcome.PENDING, Outcome.SKIPPED, Outcome.OFFLINE], ids=lambda o: o.value
)
def test_an_expired_copy_is_not_tried_again(tried: Outcome) -> None:
    """A retry's outcome never replaces EXPIRED (it stays final for retries)."""
    assert advance(Outcome.EXPIRED, tried) is None
    assert advance(tried, Outcome.EXPIRED) is Outcome.EXPIRED


async def _expire(service: Service, device: Any, path: str, body: dict[str, Any]) -> int:
    """Send ``body`` to ``device`` alone (its meter's group), silenced, until it expires."""
    service.headend.give_up = 2 * HOUR
    await _register(service, [device])
    reply = await service.call(A, "POST", "/api/v1/groups", {"name": "g", "meters": [device.meter]})
    assert reply.status == 201, reply.body
    service.sims.air_of(device).silence(parse_eui64(device.mac))
    sent = await service.call(A, "POST", path, {"group": "g", **body})
    assert sent.status == 202, sent.body
    send_id = int(sent.body["id"])
    await asyncio.sleep(2 * HOUR + 120)
    assert _outcome(service, send_id, device)["outcome"] == "expired"
    return send_id


def _outcome(service: Service, send_id: int, device: Any) -> dict[str, Any]:
    mac = canonical_eui64(device.mac)
    return next(o for o in service.headend.send(A, send_id)["outcomes"] if o["mac"] == mac)


def _first(service: Service, device_type: str) -> Any:
    return next(d for d in service.sims.devices if d.device_type == device_type)


async def test_an_expired_message_confirmed_later_is_confirmed(service: Service) -> None:
    """The display, back after the give-up time, fetches the message the ESI still holds and
    confirms it: its outcome was left ``expired``."""
    ihd = _first(service, "in-home display")
    body = {"text": "Hi", "confirmation_required": True}
    send_id = await _expire(service, ihd, "/api/v1/sends/message", body)
    service.sims.air_of(ihd).restore(parse_eui64(ihd.mac))
    await ihd.role.messaging.fetch()
    shown = ihd.role.showing()
    assert shown is not None
    assert shown.text == "Hi"
    assert await ihd.role.confirm(shown.message_id)

    async def confirmed() -> bool:
        return _outcome(service, send_id, ihd)["outcome"] == "confirmed"

    await _until(service, confirmed, step=1.0)
    assert _outcome(service, send_id, ihd)["detail"] == ""  # no longer "given up: ..."


async def test_an_expired_load_control_event_reported_later_moves_on(service: Service) -> None:
    """The device, back before its event starts, gets it with Get Scheduled Events and
    reports it received, then started: its outcome was left ``expired``."""
    lcd = _first(service, "load control device")
    event = {"duty_cycle": 40, "duration_minutes": 30, "criticality_level": 3}
    body = {**event, "start_delay_minutes": 180}
    send_id = await _expire(service, lcd, "/api/v1/sends/load-control", body)
    service.sims.air_of(lcd).restore(parse_eui64(lcd.mac))
    await lcd.role.drlc.get_scheduled_events()

    async def received() -> bool:
        return _outcome(service, send_id, lcd)["outcome"] == "received"

    await _until(service, received, step=1.0)

    async def started() -> bool:
        return _outcome(service, send_id, lcd)["outcome"] == "started"

    await _until(service, started, limit=HOUR, step=60.0)


async def test_a_cancel_withdraws_an_expired_message(service: Service) -> None:
    """A cancel of a send whose only copy expired was refused 409 and the display, back,
    still fetched the message; now the copy is cancelled, the ESI no longer serves it, and
    the Cancel reaches the display when it is back."""
    ihd = _first(service, "in-home display")
    send_id = await _expire(service, ihd, "/api/v1/sends/message", {"text": "Hi"})
    cancel = await service.call(A, "POST", f"/api/v1/sends/{send_id}/cancel")
    assert cancel.status == 202, cancel.body
    first = _outcome(service, send_id, ihd)
    assert first["outcome"] == "cancelled"
    assert str(first["detail"]).startswith("cancel not acknowledged by the device (")
    service.sims.air_of(ihd).restore(parse_eui64(ihd.mac))
    await ihd.role.messaging.fetch()
    assert ihd.role.showing() is None  # the ESI no longer answers it

    async def told() -> bool:
        return _outcome(service, send_id, ihd)["detail"] == CANCEL_TOLD

    await _until(service, told, limit=HOUR, step=60.0)
    assert service.headend.send(A, send_id)["finished"] is True
    again = await service.call(A, "POST", f"/api/v1/sends/{send_id}/cancel")
    assert again.status == 409
    assert again.body["error"]["message"] == f"send {send_id} is already cancelled"


async def test_a_cancel_withdraws_an_expired_load_control_event(service: Service) -> None:
    """The event of an expired copy could not be cancelled (409); now the ESI cancels it, so
    the device, back, is not given it by Get Scheduled Events."""
    lcd = _first(service, "load control device")
    event = {"duty_cycle": 40, "duration_minutes": 30, "criticality_level": 3}
    body = {**event, "start_delay_minutes": 180}
    send_id = await _expire(service, lcd, "/api/v1/sends/load-control", body)
    cancel = await service.call(A, "POST", f"/api/v1/sends/{send_id}/cancel")
    assert cancel.status == 202, cancel.body
    assert _outcome(service, send_id, lcd)["outcome"] == "cancelled"
    service.sims.air_of(lcd).restore(parse_eui64(lcd.mac))
    await lcd.role.drlc.get_scheduled_events()
    await asyncio.sleep(5.0)
    assert lcd.role.drlc.core.events() == []
    assert _outcome(service, send_id, lcd)["outcome"] == "cancelled"
