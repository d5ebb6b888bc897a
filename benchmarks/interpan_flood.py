"""A flood of spoofed inter-PAN key establishment against the hub while a legitimate installer
terminal bootstraps (issue #20.5).

Usage: .venv/bin/python benchmarks/interpan_flood.py [--sources N] [--rate R]

On the simulated air (virtual time), the GB installer site of ``zse.sim._installer``: the hub
accepts inter-PAN after power-up, the installer enters the PIN on the hub naming the terminal,
and the terminal runs its bootstrap (key establishment over inter-PAN, APS-secured handover,
join) and a signed service request of three commands over a tunnel.

- reference (same run): no flood;
- flood: an attacker's radio sends ``--sources`` (10,000) Initiate Key Establishment Requests,
  each from another spoofed EUI-64, at ``--rate`` frames a second, unicast to the hub. Each
  carries a certificate of the hub's CA with its subject patched to the spoofed address, so a
  request that gets through costs the hub the certificate's key reconstruction and holds a key
  establishment session until it stalls.

A third run floods without the PIN: the terminal is a newcomer like the spoofed sources until
its key is established (the window then trusts it). The window shares the newcomers' budget
fairly by source: the terminal's first Initiate is a first contact and is lost in the flood, its
second (after its 15 s response timeout) is a returning source's and is admitted, and its
session's next messages are vouched for (issue #20.4).

Prints, for each: the terminal's completion time (virtual seconds from the PIN to the last
command's answer), the wall-clock seconds the run took, and the peak memory traced
(``tracemalloc``) while it ran; then the ratios flood / reference, and what the hub did with
the flood (window verdicts, key establishment sessions ended).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import tracemalloc
from typing import Any

from zigpy.types import EUI64

from zse.cbke import SUITE1
from zse.cbke.ca import TestCA
from zse.cbke.keys import generate_key_pair
from zse.cbke.messages import InitiateKeyEstablishmentRequest
from zse.installer.core import BackOffice, Outcome
from zse.installer.service import InstallerTerminal
from zse.interpan._codec import DeliveryMode, InterPanFrame
from zse.se.ids import KEY_ESTABLISHMENT
from zse.sim import Air, run
from zse.sim._installer import HUB_PAN, build_gb_site, service_request

PIN = "482916"


async def attacker_flood(air: Air, hub: EUI64, ca: TestCA, sources: int, rate: float) -> int:
    """Send ``sources`` spoofed Initiate requests at ``rate`` per second; how many went out."""
    attacker = air.device("00:0d:6f:00:0e:ee:ee:ee", channel=20)
    attacker.listen(20)
    template = ca.issue(bytes(8), SUITE1).certificate.data
    sent = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(sources):
        source = (0x5A00_0000_0000_0000 + i).to_bytes(8, "big")
        certificate = template[:22] + source + template[30:]
        request = InitiateKeyEstablishmentRequest(
            suite=1,
            ephemeral_data_generate_time=5,
            confirm_key_generate_time=5,
            identity=certificate,
        )
        frame = InterPanFrame(
            src_pan_id=0xFFFF,
            src_ieee=EUI64(source[::-1]),
            dst_pan_id=HUB_PAN,
            dst_address=hub,
            delivery_mode=DeliveryMode.UNICAST,
            cluster_id=KEY_ESTABLISHMENT,
            payload=bytes((0x11, i & 0xFF, 0x00)) + request.encode(),
        )
        await attacker.send_interpan(frame.to_bytes())
        sent += 1
        delay = start + (i + 1) / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
    return sent


async def scenario(flood: bool, sources: int, rate: float, pin: bool = True) -> dict[str, Any]:
    air = Air(seed=2020)
    ca = TestCA.generate()
    office = BackOffice(b"GBDCC001", generate_key_pair(SUITE1)[0])
    site = await build_gb_site(air, ca=ca, office=office, pin=PIN)
    loop = asyncio.get_running_loop()
    flooding: asyncio.Task[int] | None = None
    if flood:
        flooding = loop.create_task(attacker_flood(air, site.hub_ieee, ca, sources, rate))
        await asyncio.sleep(5)  # the flood is under way before the installer arrives
    started = loop.time()
    if pin:
        assert site.policy.enter_pin(PIN, started, terminal=site.terminal.ieee)
    await site.bootstrap(key_attempts=20).run()
    client = await site.client()
    responses = await InstallerTerminal(client, service_request(office, site.target)).run()
    completed = loop.time() - started
    assert [r.status for r in responses] == [Outcome.EXECUTED] * 3
    sent = 0
    if flooding is not None:
        sent = await flooding
    window = site.interpan.window
    assert window is not None
    out = {
        "completed": completed,
        "sent": sent,
        "verdicts": {v.name: n for v, n in window.counts.items() if n},
        "ke_terminated": site.ke.terminated,
        "ke_unreachable": site.ke.unreachable,
        "ke_established": site.ke.established,
    }
    await client.stop()
    await site.stop()
    return out


def measure(flood: bool, sources: int, rate: float, pin: bool = True) -> dict[str, Any]:
    tracemalloc.start()
    wall = time.perf_counter()
    out = run(scenario(flood, sources, rate, pin))
    out["wall"] = time.perf_counter() - wall
    out["peak"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    run(scenario(False, args.sources, args.rate))  # warm-up: imports and caches, not measured
    reference = measure(False, args.sources, args.rate)
    flood = measure(True, args.sources, args.rate)
    no_pin = measure(True, args.sources, args.rate, pin=False)
    for name, out in (
        ("reference (no flood)", reference),
        ("flood", flood),
        ("flood, no PIN", no_pin),
    ):
        print(
            f"{name:22} terminal done in {out['completed']:7.1f} s virtual, "
            f"{out['wall']:6.1f} s wall, peak {out['peak'] / 1e6:6.1f} MB traced"
        )
    print(
        f"flood / reference: completion x{flood['completed'] / reference['completed']:.2f}, "
        f"wall x{flood['wall'] / reference['wall']:.2f}, "
        f"peak memory x{flood['peak'] / reference['peak']:.2f}"
    )
    print(
        f"flood, no PIN / reference: completion x{no_pin['completed'] / reference['completed']:.2f}"
    )
    print(
        f"flood: {flood['sent']} spoofed requests from {args.sources} sources at "
        f"{args.rate:.0f}/s; window {flood['verdicts']}; key establishment: "
        f"{flood['ke_terminated']} terminated, {flood['ke_unreachable']} ended unanswerable, "
        f"{flood['ke_established']} key established"
    )


if __name__ == "__main__":
    main()
