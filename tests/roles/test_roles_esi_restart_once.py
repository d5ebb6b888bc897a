"""An ESI stopped and started again (the same object: the operator shell's restart, the
tests' own) tells each event of its services once: every start gave the services' event
streams another listener, so after a restart a confirmation, a report or a price answer
reached the ESI's stream (and MQTT, the headend) twice."""

from __future__ import annotations

import asyncio

from tests.roles.han_builder import EUIS, close
from tests.roles.test_roles_esi_registry import joined_han
from zse.messaging import Message
from zse.messaging.protocol import MessageConfirmed


async def test_a_confirmation_after_a_restart_of_the_esi_is_told_once(tmp_path) -> None:
    han = await joined_han(tmp_path, names=("ihd",))
    esi, ihd = han.esi, han.devices["ihd"]
    await esi.stop()
    await esi.start()
    message = Message(message_id=9, text="meter reading due", confirmation_required=True)
    result = await esi.send_message(message, device=EUIS["ihd"])
    assert result.delivered == [EUIS["ihd"]]
    await asyncio.sleep(2)
    assert await ihd.confirm(9)
    await asyncio.sleep(5)
    confirmed = [e for e in han.events if isinstance(e, MessageConfirmed)]
    assert [e.message.message_id for e in confirmed] == [9]
    await close(han)
