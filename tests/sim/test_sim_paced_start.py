"""The simulated coordinator starts on a :class:`~zse.sim.PacedLoop` however busy the machine
(``zse mqtt --sim --speed 600`` failed at start with ``error: KeyError: 1`` in CI).

A paced clock runs on while the loop works. zigpy interviewed the coordinator by ZDO requests
to itself (loopback, answered a loop turn later), each with a timeout on that clock: under
load they timed out, the interview failed without a word, and zigpy's start-up then read the
coordinator's endpoint 1 (``KeyError: 1``). A pace of a billion is a machine slow enough that
every loop turn outlasts every timeout: the losing order every time, with no sleep.
"""

from __future__ import annotations

import asyncio

import zigpy.profiles.zha

from zse.sim import Air, PacedLoop

#: Virtual seconds per real second: any loop turn outlasts any of zigpy's request timeouts.
LOSING_PACE = 1e9


def test_the_coordinator_starts_when_every_request_would_time_out() -> None:
    async def main() -> tuple[bool, list[int], int | None, str]:
        air = Air(seed=1)
        app = await air.coordinator(channel=15, ieee="00:0d:6f:00:00:00:00:e5")
        try:
            device = app._device
            endpoint = device.endpoints[1]
            return (
                device.is_initialized,
                sorted(ep.endpoint_id for ep in device.non_zdo_endpoints),
                endpoint.profile_id,
                device.model,
            )
        finally:
            await app.shutdown()
            air.close()

    with asyncio.Runner(loop_factory=lambda: PacedLoop(LOSING_PACE)) as runner:
        initialized, endpoints, profile, model = runner.run(main())
    assert initialized
    assert endpoints == [1, 2, 242]  # zigpy's own endpoints, as its ZDO describes them
    assert profile == zigpy.profiles.zha.PROFILE_ID
    assert model == "Simulated coordinator"
