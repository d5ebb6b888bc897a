"""The ESI's unicasts are APS-acknowledged and resent (ZB 2.2.8.4.1), as a Silicon Labs SE
ESI's are (EmberZNet's ZCL framework: EMBER_AF_DEFAULT_APS_OPTIONS has APS_OPTION_RETRY).

A Display Message or Load Control Event whose APS acknowledgement is lost is resent 1.6 s
later (apsAckWaitDuration) and delivered: the device's application sees it once, its stack
acknowledges the duplicate again. A device switched off fails after four attempts, 6.4 s,
with "no APS acknowledgement", which is what the ESI's result and the headend's copy say.
Lost MAC acknowledgements no longer fail a delivered command. ``aps_ack=False`` gives the
old behaviour: done at the first hop's MAC acknowledgement. Time is virtual.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.headend.helpers import start_service
from tests.headend.test_headend_cancel import A, _register
from tests.headend.test_headend_story import _until
from tests.roles.han_builder import EUIS, Han, close
from tests.roles.test_roles_ack_loss import of
from tests.roles.test_roles_esi_registry import joined_han
from zse.drlc import LoadControlEvent
from zse.drlc.core import ApplyLoadControl
from zse.installcode import parse_eui64
from zse.messaging import Message, MessageDisplayed
from zse.roles.esi import Outcome

#: apsAckWaitDuration (ZB Table 2.24) and the attempts of apscMaxFrameRetries 3 (Table 2.23).
ACK_WAIT, ATTEMPTS = 1.6, 4
APS_FAILURE = r"no APS acknowledgement from 0x[0-9A-F]{4} after 4 attempts"


def message(message_id: int) -> Message:
    return Message(message_id=message_id, text="Peak at 5pm", duration_in_minutes=60)


def lose_from(han: Han, name: str) -> None:
    """Every frame ``name`` sends the ESI is lost (its APS acknowledgements among them)."""
    han.air.set_link_faults(han.devices[name].device, han.app.radio, loss=1.0, both_ways=False)


def heal_from(han: Han, name: str) -> None:
    han.air.set_link_faults(han.devices[name].device, han.app.radio, both_ways=False)


async def _lost_ack_then_resent(han: Han, name: str, send: Any) -> Any:
    """``send`` (a coroutine) with ``name``'s APS acknowledgement lost: after 1 s it has
    arrived but the ESI's send is still waiting; the loss ends; the resend at 1.6 s is
    acknowledged. Returns the send's result."""
    loop = asyncio.get_running_loop()
    lose_from(han, name)
    began = loop.time()
    sending = loop.create_task(send)
    await asyncio.sleep(1.0)
    assert not sending.done()  # no acknowledgement yet
    heal_from(han, name)
    result = await sending
    assert loop.time() - began == pytest.approx(ACK_WAIT, abs=0.1)  # the resend's ack
    return result


async def test_a_display_message_whose_aps_ack_is_lost_is_resent_and_shown_once(
    tmp_path,
) -> None:
    han = await joined_han(tmp_path, names=("ihd",))
    ihd = han.devices["ihd"]
    result = await _lost_ack_then_resent(
        han, "ihd", han.esi.send_message(message(51), device=EUIS["ihd"])
    )
    assert result.delivered == [EUIS["ihd"]]
    await asyncio.sleep(5)
    assert [e.message.message_id for e in of(han, "ihd", MessageDisplayed)] == [51]
    # the resend: acknowledged again by the display's stack, not handed up again
    assert ihd.device.stats.aps_duplicates == 1
    await close(han)


async def test_a_load_control_event_whose_aps_ack_is_lost_is_resent_and_run_once(
    tmp_path,
) -> None:
    han = await joined_han(tmp_path, names=("lcd",))
    event = LoadControlEvent(
        issuer_event_id=81, device_class=0x0FFF, duration_in_minutes=30, criticality_level=3,
        duty_cycle=40,
    )  # fmt: skip
    result = await _lost_ack_then_resent(
        han, "lcd", han.esi.send_load_control(event, device=EUIS["lcd"])
    )
    assert result.delivered == [EUIS["lcd"]]
    await asyncio.sleep(60)
    assert [a.issuer_event_id for a in of(han, "lcd", ApplyLoadControl)] == [81]
    assert han.devices["lcd"].device.stats.aps_duplicates == 1
    await close(han)


async def test_a_switched_off_display_fails_with_no_aps_acknowledgement(tmp_path) -> None:
    """Four attempts, each waiting 1.6 s, then OFFLINE with the APS text as its detail."""
    han = await joined_han(tmp_path, names=("ihd",))
    han.air.silence(han.devices["ihd"].device)
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await han.esi.send_message(message(52), device=EUIS["ihd"])
    (outcome,) = result.outcomes
    assert outcome.outcome is Outcome.OFFLINE
    assert re.fullmatch(APS_FAILURE, outcome.detail), outcome.detail
    assert loop.time() - began == pytest.approx(ATTEMPTS * ACK_WAIT, abs=0.1)
    await close(han)


async def test_lost_mac_acknowledgements_no_longer_fail_a_delivered_command(tmp_path) -> None:
    """Every MAC acknowledgement between the ESI and the display lost, both ways: the
    Display Message arrives at its first attempt and so does the display's APS
    acknowledgement (the ESI's MAC took it although its own Ack was lost): DELIVERED, with
    no resend. Before, the send read OFFLINE ("no MAC acknowledgement")."""
    han = await joined_han(tmp_path, names=("ihd",))
    han.air.set_link_faults(han.app.radio, han.devices["ihd"].device, ack_loss=1.0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await han.esi.send_message(message(53), device=EUIS["ihd"])
    assert result.delivered == [EUIS["ihd"]]
    assert loop.time() - began < ACK_WAIT
    await asyncio.sleep(1)
    assert [e.message.message_id for e in of(han, "ihd", MessageDisplayed)] == [53]
    assert han.devices["ihd"].device.stats.aps_duplicates == 0
    await close(han)


async def test_aps_acks_off_the_send_ends_at_the_mac_acknowledgement(tmp_path) -> None:
    """``aps_ack=False``: a lost MAC acknowledgement is the send's failure (OFFLINE, "no MAC
    acknowledgement") although the display shows the message."""
    han = await joined_han(tmp_path, names=("ihd",), aps_ack=False)
    han.air.set_link_faults(han.app.radio, han.devices["ihd"].device, ack_loss=1.0)
    result = await han.esi.send_message(message(54), device=EUIS["ihd"])
    (outcome,) = result.outcomes
    assert outcome.outcome is Outcome.OFFLINE
    assert outcome.detail.startswith("no MAC acknowledgement from 0x"), outcome.detail
    await asyncio.sleep(1)
    assert [e.message.message_id for e in of(han, "ihd", MessageDisplayed)] == [54]
    await close(han)


async def test_the_headend_shows_the_aps_failure_of_a_switched_off_display(tmp_path) -> None:
    """Through the headend (in process): the copy of a message to a switched-off display is
    ``offline``, its detail the ESI's "no APS acknowledgement ... after 4 attempts"."""
    service = await start_service(tmp_path)
    try:
        ihd = next(d for d in service.sims.devices if d.meter == "meter-1")
        await _register(service, [ihd])
        reply = await service.call(
            A, "POST", "/api/v1/groups", {"name": "g", "meters": ["meter-1"]}
        )
        assert reply.status == 201, reply.body
        service.sims.air_of(ihd).silence(parse_eui64(ihd.mac))
        body = {"group": "g", "text": "Critical peak", "duration_minutes": 30}
        sent = await service.call(A, "POST", "/api/v1/sends/message", body)
        assert sent.status == 202, sent.body

        async def offline() -> bool:
            (copy,) = service.headend.send(A, sent.body["id"])["outcomes"]
            return bool(copy["outcome"] == "offline")

        await _until(service, offline, step=1.0)
        (copy,) = service.headend.send(A, sent.body["id"])["outcomes"]
        assert re.fullmatch(APS_FAILURE, copy["detail"]), copy["detail"]
    finally:
        await service.close()
