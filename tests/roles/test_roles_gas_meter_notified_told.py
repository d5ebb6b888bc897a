"""SE 1.2 mirror notifications: the meter's Get Notified Message clears its flags in the store
and asks the ESI's application for what is behind them (NotifiedMessageRequested). The request
is journalled with the cleared flags and told once: an ESI killed -9 once the flags are
cleared, before its application had the request, tells it after its restart (the flags are
gone: the meter never asks again), and a request told is not told twice."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import zigpy.types as t

from tests.roles.han_builder import build
from tests.roles.test_roles_gas_meter_mirror import GAS_EUI, NAMESPACE, meter
from tests.services.test_prepayment_told import PrepayPort
from tests.store.helpers import killed_itself
from zse.metering.mirroring import MirrorServer
from zse.metering.notification import FUNCTIONAL_FLAGS, FunctionalFlag, NotifiedMessageRequested
from zse.sim import Air
from zse.store import Store

WANTED = int(FunctionalFlag.DISPLAY_MESSAGE)
CHILD = """
import asyncio, sys
from pathlib import Path
from tests.roles.test_roles_gas_meter_notified_told import ask_until_killed

asyncio.run(ask_until_killed(Path(sys.argv[1])))
"""


async def ask_until_killed(tmp_path: Path) -> None:
    """A meter's Get Notified Message on a simulated HAN: killed -9 once the ESI tells it."""
    han = await build(tmp_path, mirrors=1)
    gas = await meter(han, GAS_EUI, notifications=1)

    def told(event: object) -> None:
        if isinstance(event, NotifiedMessageRequested):  # committed: nobody has it yet
            print("told", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    han.esi.on_event(told)
    assert han.esi.mirrors is not None
    await han.esi.mirrors.raise_flags(GAS_EUI, WANTED)
    await gas.get_notified_message(1, FUNCTIONAL_FLAGS, WANTED)


async def restarted(path: Path) -> list[object]:
    """The ESI's mirrors started again on the store at ``path``: what they tell."""
    air = Air(seed=2)
    app = await air.coordinator(channel=15)
    told: list[object] = []
    async with await Store.open(path) as store:
        mirrors = MirrorServer(app, PrepayPort(9), endpoints=[10], store=store)
        mirrors.on_event(told.append)
        await mirrors.start()
        assert mirrors.pool.notifications(10).flags == {}  # cleared, as the meter was told
        assert await store.unreported(NAMESPACE) == []
        await mirrors.stop()
    air.close()
    return told


def test_a_request_stored_then_killed_is_told_after_the_restart(tmp_path) -> None:
    assert killed_itself(CHILD, str(tmp_path)).strip() == "told"
    told = asyncio.run(restarted(tmp_path / "han.db"))
    gas = t.EUI64.convert(GAS_EUI)
    assert [(type(e), e.device, e.attribute, e.flags) for e in told] == [  # type: ignore[attr-defined]
        (NotifiedMessageRequested, gas, FUNCTIONAL_FLAGS, WANTED)
    ]
    assert asyncio.run(restarted(tmp_path / "han.db")) == []  # told before: not told again
