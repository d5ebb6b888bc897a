"""A device offline at a message send is retried with what the ESI holds now (SE D.5.2.4.1: the
remaining duration), and not at all once the message is over: its outcome becomes "cancelled"
(final), with the ESI's reason, and the retries stop."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.headend.helpers import Service
from tests.headend.test_headend_cancel import A, _register
from tests.headend.test_headend_story import _until
from zse.installcode import canonical_eui64, parse_eui64


async def _send_with_thermostat_away(service: Service, minutes: int) -> tuple[Any, int]:
    """A message to a group of meter-1's display and thermostat, the thermostat off the air:
    the thermostat's sim device and the send id, once the display has it."""
    ihd, thermostat = [d for d in service.sims.devices if d.meter == "meter-1"][:2]
    await _register(service, [ihd, thermostat])
    reply = await service.call(A, "POST", "/api/v1/groups", {"name": "g", "meters": ["meter-1"]})
    assert reply.status == 201, reply.body
    service.sims.air_of(thermostat).silence(parse_eui64(thermostat.mac))
    body = {"group": "g", "text": "Critical peak", "duration_minutes": minutes}
    sent = await service.call(A, "POST", "/api/v1/sends/message", body)
    assert sent.status == 202, sent.body

    async def settled() -> bool:
        view = service.headend.send(A, sent.body["id"])
        return all(o["outcome"] != "pending" for o in view["outcomes"])

    await _until(service, settled, step=1.0)
    view = service.headend.send(A, sent.body["id"])
    outcomes = {o["mac"]: o["outcome"] for o in view["outcomes"]}
    assert outcomes == {canonical_eui64(ihd.mac): "delivered",
                        canonical_eui64(thermostat.mac): "offline"}  # fmt: skip
    return thermostat, sent.body["id"]


def _outcome(service: Service, send_id: int, mac: str) -> dict[str, Any]:
    return next(
        o for o in service.headend.send(A, send_id)["outcomes"] if o["mac"] == canonical_eui64(mac)
    )


async def test_a_message_over_before_the_device_is_back_is_not_sent_and_not_retried(
    service: Service,
) -> None:
    thermostat, send_id = await _send_with_thermostat_away(service, minutes=3)
    resent: list[object] = []
    esi = service.headend.meters["meter-1"].esi
    real = esi.resend_message

    async def spy(*args: Any, **kw: Any) -> Any:
        result = await real(*args, **kw)
        resent.append(result.outcome.value)
        return result

    esi.resend_message = spy  # type: ignore[method-assign]
    # retries at 30 s, 60 s, 120 s after each attempt: the third comes after the 3 minutes
    await asyncio.sleep(400)
    outcome = _outcome(service, send_id, thermostat.mac)
    assert outcome["outcome"] == "cancelled"
    assert f"message {send_id} is over (its duration ran out): not sent again" in outcome["detail"]
    assert resent[-1] == "ended"
    assert service.headend.retries.pending() == []
    assert service.headend.send(A, send_id)["finished"]
    tries = len(resent)
    service.sims.air_of(thermostat).restore(parse_eui64(thermostat.mac))
    await asyncio.sleep(3600)
    assert len(resent) == tries  # never tried again
    assert thermostat.role.messaging.current() is None  # never shown: it was over


async def test_a_retry_while_the_message_is_live_sends_what_remains_of_it(service: Service) -> None:
    thermostat, send_id = await _send_with_thermostat_away(service, minutes=10)
    stored = service.headend.meters["meter-1"].esi.messaging.stored(send_id)
    assert stored is not None
    await asyncio.sleep(100)
    service.sims.air_of(thermostat).restore(parse_eui64(thermostat.mac))

    async def delivered() -> bool:
        return bool(_outcome(service, send_id, thermostat.mac)["outcome"] == "delivered")

    await _until(service, delivered, step=5.0)
    board = thermostat.role.messaging.board.showing()
    assert board is not None
    assert board.message.message_id == send_id
    # the window the message was sent with, not ten minutes from the retry
    assert stored.sent_at + 600 <= board.ends < stored.sent_at + 600 + 60
