"""The ESI's stop (simulator, virtual clock) waits for the events its services are telling for
at most one :data:`zse.zcl.events.STOP_WAIT` in all: each service's wait is given what is left
of it, so listeners that never finish hold the stop up once, not once per service (~7 x 60 s,
past systemd's default TimeoutStopSec of 90 s). A stop called while the start is under way
waits for it, then stops all it started."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.roles.han_builder import CA, START, build, close
from tests.roles.test_roles_gas_meter_mirror_landed import get_notified_message, mirrored
from tests.roles.test_roles_gas_meter_notified_told import restarted
from tests.services.test_servers_stop import MESSAGE
from tests.services.test_supply_told import cancelled_in_its_transaction
from tests.services.test_told_in_hand import IHD, Keeping, ToldSlow, _confirmation, _restarted
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.messaging.service import MessageConfirmed, MessagingServer
from zse.metering.notification import NotifiedMessageRequested
from zse.roles.esi import EnergyServiceInterface
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


class SlowReads(Store):
    """A store whose reads take a second each once :attr:`slow` (a slow disk): a start takes
    a few seconds, between its steps."""

    slow = False

    async def load(self, namespace: str) -> dict[str, Any]:
        if self.slow:
            await asyncio.sleep(1)
        return await super().load(namespace)


def started_parts(esi: EnergyServiceInterface) -> list[str]:
    """What of ``esi`` serves or follows events: the SE endpoint's packet handling, zigpy's
    device events, the pending devices' timer, the services' clusters."""
    parts = {
        "endpoint": esi.endpoint._original is not None,
        "device events": esi._listener_id is not None,
        "timer": esi._timer.deadline is not None or esi._timer._running,
        "services' events": bool(esi._unfollow),
    }
    for name in ("messaging", "drlc", "device_management", "event_logs"):
        parts[name] = getattr(esi, name)._remove is not None
    return [part for part, on in parts.items() if on]


@pytest.mark.parametrize("after", [0.5, 2.5, 4.5, 6.5])
async def test_a_stop_while_the_start_is_under_way_leaves_nothing_running(
    tmp_path: Path, after: float
) -> None:
    """The stop, ``after`` seconds into the start (its reads a second each), waits for it
    to end and stops all of it; neither raises. It stopped what had started so far, and the
    start went on: zigpy's device events, the timer and the services from that point on were
    left running on a stopped ESI."""
    han = await build(tmp_path, store_class=SlowReads)
    await han.esi.stop()
    store = han.registry.store
    assert isinstance(store, SlowReads)
    store.slow = True
    loop = asyncio.get_running_loop()
    han.esi = EnergyServiceInterface(
        han.app,
        credentials=[CA.issue(eui64_bytes(han.app.state.node_info.ieee), SUITE1)],
        registry=han.registry,
        clock=lambda: START + int(loop.time()),
    )
    try:
        starting = asyncio.ensure_future(han.esi.start())
        await asyncio.sleep(after)
        assert not starting.done()
        async with asyncio.timeout(STOP_WAIT):  # a hang: TimeoutError
            await han.esi.stop()
        ended_first = not starting.done()
        await starting
        assert started_parts(han.esi) == []
        assert not ended_first  # the stop ended after the start
    finally:
        await close(han)
