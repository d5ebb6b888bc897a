"""By-group sends on a lossy air (#12.20; 60% loss: the 40% of the report rarely loses all
four MAC attempts of a reply in a run this short): every device gets an outcome, and no delivery
failure is left to asyncio ("Task exception was never retrieved")."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from tests.roles.test_roles_esi_registry import joined_han, price
from zse.messaging import Message
from zse.roles.esi import Outcome


async def test_group_sends_at_sixty_percent_loss_report_every_device(tmp_path) -> None:
    loop = asyncio.get_running_loop()
    unretrieved: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: unretrieved.append(context))
    han = await joined_han(tmp_path)
    members = sorted(
        d.device for d in (await han.esi.publish_price(price(1), group="street")).outcomes
    )
    assert len(members) == 3
    han.air.set_faults(loss=0.6)
    results = []
    for n in range(2, 12):
        results.append(await han.esi.publish_price(price(n), group="street"))
        results.append(
            await han.esi.send_message(Message(message_id=n, text="hello"), group="street")
        )
        await asyncio.sleep(30)
    for result in results:
        assert sorted(o.device for o in result.outcomes) == members
        assert {o.outcome for o in result.outcomes} <= {Outcome.DELIVERED, Outcome.OFFLINE}
    han.air.set_faults(loss=0.0)
    await asyncio.sleep(120)
    for role in han.devices.values():
        await role.stop()
    await han.esi.stop()
    await han.registry.close()
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert [c.get("message") for c in unretrieved] == []
