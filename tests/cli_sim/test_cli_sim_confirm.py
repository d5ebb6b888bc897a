"""The simulated user of ``zse esi --radio sim`` / ``zse mqtt --sim`` confirms a message that
asks for it after CONFIRM_AFTER s; confirmed before that (over MQTT, by the application), its
own confirmation raised MessageError in a task nobody awaited ("Task exception was never
retrieved" on stderr). It says why it does not confirm instead."""

from __future__ import annotations

import asyncio
from pathlib import Path

from zse.cli._sim import CONFIRM_AFTER
from zse.cli.mqtt import simulated_esi
from zse.messaging import Message
from zse.sim import run


def test_a_message_confirmed_before_the_simulated_user_does_is_not_confirmed_twice(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    failed: list[BaseException] = []

    async def scene() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: failed.append(context.get("exception")))
        async with simulated_esi(tmp_path, out=lines.append) as sim:
            await asyncio.sleep(30)  # virtual: the HAN joins
            (display,) = sim.displays
            message = Message(message_id=7, text="Peak from 17:00", confirmation_required=True)
            await sim.esi.send_message(message, device=display)
            await asyncio.sleep(1)  # displayed
            (device,) = [d for d in sim.han.devices if str(d.role.device.ieee) == display]
            assert await device.role.confirm(7)  # the application, before the user
            await asyncio.sleep(CONFIRM_AFTER + 5)

    run(scene())  # the simulator's virtual clock
    assert failed == []
    assert any("does not confirm message 7" in line for line in lines), lines
