"""The ESI's stop waits for the events its services are telling for at most one
:data:`zse.zcl.events.STOP_WAIT` in all (simulator, virtual clock): each service's wait is
given what is left of it, so listeners that never finish hold the stop up once, not once per
service (~7 x 60 s, past systemd's default TimeoutStopSec of 90 s)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.roles.han_builder import close
from tests.roles.test_roles_gas_meter_mirror_landed import get_notified_message, mirrored
from tests.roles.test_roles_gas_meter_notified_told import restarted
from tests.services.test_servers_stop import MESSAGE
from tests.services.test_supply_told import cancelled_in_its_transaction
from tests.services.test_told_in_hand import IHD, Keeping, ToldSlow, _confirmation, _restarted
from zse.messaging.service import MessageConfirmed, MessagingServer
from zse.metering.notification import NotifiedMessageRequested
from zse.store import Store
from zse.zcl.events import STOP_WAIT


async def test_listeners_of_several_services_that_never_finish_hold_the_stop_once(
    tmp_path: Path,
) -> None:
    """A Message Confirmation stored after its handler was cancelled (told in the Messaging
    server's task) and a meter's Get Notified Message (told in the mirrors' task), to a
    listener that never finishes with either: the ESI's stop ends STOP_WAIT after it began
    (it took 2 x STOP_WAIT, one per service), and both are told again after the restart."""
    han, mirrors, mirror_store = await mirrored(tmp_path)
    messaging_store = await ToldSlow.open(tmp_path / "messaging.db")
    assert isinstance(messaging_store, ToldSlow)
    messaging_store.key = "confirmed"
    messaging = han.esi.messaging
    messaging.store = messaging_store
    keeping = Keeping()
    han.esi.on_event(keeping)
    try:
        await messaging.record(MESSAGE)
        confirmed = messaging._on_message(_confirmation(IHD))
        await cancelled_in_its_transaction(messaging_store, confirmed)
        await mirrors._on_configure(get_notified_message())
        await asyncio.sleep(1)
        assert [type(e) for e in keeping.events] == [MessageConfirmed, NotifiedMessageRequested]
        loop = asyncio.get_running_loop()
        began = loop.time()
        async with asyncio.timeout(10 * STOP_WAIT):  # a hang: TimeoutError
            await han.esi.stop()
        assert STOP_WAIT <= loop.time() - began < STOP_WAIT + 1
    finally:
        await Store.close(mirror_store)
        await Store.close(messaging_store)
        await close(han)
    assert len(await _restarted(tmp_path / "messaging.db", MessagingServer)) == 1
    assert len(await restarted(tmp_path / "mirrors.db")) == 1
