"""A utility stopped while it spawns its workers stops the ones already started (audit of
asyncio, finding 4): the workers were spawned before the ``try``/``finally`` that signals them,
so a cancellation (Ctrl-C, SIGTERM, a caller's timeout) landing during the spawning left them
running, in their own session, out of reach of Ctrl-C. Real worker processes, a real
Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import settings
from tests.mqtt.test_mqtt_cli import TIMEOUT
from tests.mqtt.test_mqtt_utility_cancel import _utility_workers
from zse.sim.utility import UtilityPlan, run_utility


def test_a_utility_cancelled_while_spawning_stops_the_workers_spawned(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled as its 2nd of 3 workers was spawned, the utility left the 1st and the 2nd
    running; now it stops both before it ends."""
    plan = UtilityPlan(meters=3, devices_per_meter=1, workers=3)
    spawn = asyncio.create_subprocess_exec
    spawned: list[int] = []

    async def main() -> asyncio.Task[None]:
        utility: asyncio.Task[None] | None = None

        async def spawning(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
            worker = await spawn(*args, **kwargs)
            spawned.append(worker.pid)
            if len(spawned) == 2:  # Ctrl-C as the 2nd worker is handed its spec
                assert utility is not None
                utility.cancel()
            return worker

        monkeypatch.setattr(asyncio, "create_subprocess_exec", spawning)
        utility = asyncio.create_task(
            run_utility(plan, settings(broker, client_id="zse-utility"), directory=tmp_path)
        )
        async with asyncio.timeout(TIMEOUT):  # a bound: it ends once the workers have stopped
            await asyncio.wait([utility])
        return utility

    try:
        utility = asyncio.run(main())
        assert utility.cancelled()
        assert len(spawned) == 2
        assert _utility_workers() == []
    finally:  # none left behind by a failing run
        for pid in _utility_workers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
