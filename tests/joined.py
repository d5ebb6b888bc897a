"""A simulated HAN device joined by install code: the setup many tests share."""

from __future__ import annotations

import asyncio

import zigpy.types as t

from zse.installcode import InstallCode
from zse.sim import Air, SimDevice


async def joined_device(
    air: Air,
    app: object,
    ieee: str,
    *,
    device_type: int,
    out_clusters: list[int],
    channel: int = 15,
    settle: float = 30,
) -> SimDevice:
    """A device with endpoint 1 (``device_type``, ``out_clusters``) joined to ``app`` with a
    fresh install code's link key; ``settle`` seconds (virtual) after the join."""
    code = InstallCode.generate(rng=air.rng)
    device = air.device(ieee, install_code=code, channel=channel)
    device.add_endpoint(1, device_type=device_type, out_clusters=out_clusters)
    await app.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)  # type: ignore[attr-defined]
    await device.join()
    if settle:
        await asyncio.sleep(settle)
    return device
