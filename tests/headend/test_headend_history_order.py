"""A device's history over gateways reads in the order things happened (found walking
docs/headend.md): the headend's ``register`` was stamped a second after the simulated
gateway's ``provision`` it caused. The headend stamps by the wall clock (``meter_time``:
``system_clock``, whole seconds down); the simulated gateway by its virtual clock, which,
following the real one, does not move while the loop works (CBKE's arithmetic), so it fell
behind the wall clock. It now never is behind it. Gateways on other machines are only as
ordered as their clocks agree (NTP): the history keeps the order entries arrived in."""

from __future__ import annotations

import asyncio
from pathlib import Path

from zse.cli._sim import SimulatedHan
from zse.headend.control import Control
from zse.headend.directory import GatewayMeters
from zse.headend.link import Lifecycle
from zse.headend.queue import open_queue
from zse.headend.store import DeviceOwner
from zse.provisioning import LifecycleState
from zse.sim import run
from zse.time.service import zigbee_time

DEVICE = "000D6F000A000001"
CODE = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"
#: The wall clock at start: 0.7 s into a second.
START = 1_765_000_000.7


def test_a_gateway_s_provision_is_not_stamped_before_the_headend_s_register(
    tmp_path: Path,
) -> None:
    wall = [START]  # the wall clock, which the test moves (the real one, in use)

    async def main() -> list[dict[str, object]]:
        loop = asyncio.get_running_loop()
        gateway = SimulatedHan(lambda _line: None, wall=lambda: wall[0])
        gateway.clock()  # the gateway starts: its clock set from the wall clock
        # the gateway's loop works for 1.6 s (CBKE): the wall clock moves, the loop's does not
        wall[0] += 1.6
        assert loop.time() == 0.0
        queue = await open_queue(tmp_path / "queue.sqlite")
        try:
            control = await Control.open(queue)
            headend = GatewayMeters(
                ["meter-1"],
                control,
                meter_time=lambda: zigbee_time(wall[0]),  # the headend's system_clock
                clock=lambda: wall[0],
            )
            owner = DeviceOwner(
                eui64=DEVICE, retailer="r", meter="meter-1", device_type="in-home display"
            )
            await headend.register(owner, CODE, frozenset(), None)
            # the provision job reaches the gateway, which records it on its own clock
            provisioned = Lifecycle(
                meter="meter-1",
                device=DEVICE,
                event="provision",
                from_state=LifecycleState.NEW,
                to_state=LifecycleState.PENDING_PROVISIONING,
                detail="",
                time=gateway.clock(),
            )
            assert await control.record(provisioned, now=wall[0])
            return await headend.history(owner)
        finally:
            await queue.close()

    history = run(main())
    assert [entry["event"] for entry in history] == ["register", "provision"]
    times = [float(str(entry["time"])) for entry in history]
    assert times == sorted(times), history  # was: provision a second before register
