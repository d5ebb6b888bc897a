"""The ESI's retry of a device that missed a Load Control Event (``resend_load_control``, what
the headend does for an offline device): an event issued for "now" went out again as start 0
with its whole duration, so the device ran it from its own now, past the ESI's end, and even
after the event was over at the ESI (D.2.2.3.1.1.4)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.roles.han_builder import EUIS, close
from tests.roles.test_roles_load_control_applied import HVAC, joined, lce
from zse.roles.esi import Outcome

MIN = 60


async def test_a_start_now_event_resent_later_keeps_the_esis_window_and_is_not_sent_once_over(
    tmp_path,
):
    han, thermostat = await joined(tmp_path, "thermostat")
    try:
        await _resend(han, thermostat)
    finally:
        await close(han)


async def _resend(han: Any, thermostat: Any) -> None:
    device = EUIS["thermostat"]
    event = lce(0x1400_0001, HVAC, cooling_temperature_offset=20)  # ten minutes from now
    await han.esi.drlc.publish(event, expected=[device])  # stored only: the device missed it
    issued = han.esi.clock()
    await asyncio.sleep(4 * MIN)
    got = await han.esi.resend_load_control(event.issuer_event_id, device)
    assert got.outcome is Outcome.DELIVERED
    await asyncio.sleep(5)
    assert thermostat.drlc.core.window(event.issuer_event_id) == (issued, issued + 10 * MIN)

    over = lce(0x1400_0002, HVAC, cooling_temperature_offset=20)
    await han.esi.drlc.publish(over, expected=[device])
    await asyncio.sleep(11 * MIN)
    got = await han.esi.resend_load_control(over.issuer_event_id, device)
    assert got.outcome is Outcome.ENDED
    assert "is over" in got.detail
    await asyncio.sleep(5)
    assert over.issuer_event_id not in thermostat.drlc.core
