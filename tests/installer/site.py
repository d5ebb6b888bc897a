"""A GB-style site on the simulator: a hub (zigpy coordinator with an SE endpoint, Tunneling
server, installer hub and inter-PAN with key establishment and handover) and an installer
terminal that never joined (a simulated device with its own install code)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import zigpy.types as t

from zse.cbke import SUITE1
from zse.cbke.ca import TestCA
from zse.cbke.keys import generate_key_pair
from zse.cbke.service import eui64_bytes
from zse.installcode import InstallCode
from zse.installer.core import BackOffice, CommandCode, originators_of
from zse.installer.service import (
    HANDOVER_COMMANDS,
    Handover,
    InstallerHub,
    InstallerTerminal,
    TerminalBootstrap,
    serve_handover,
)
from zse.interpan.fragment import Reassembler
from zse.interpan.ke import InterPanKeyServer
from zse.interpan.secure import InterPanSecurity
from zse.interpan.service import InterPanService
from zse.interpan.transports.sim import SimTransport
from zse.interpan.window import KE_INTERPAN_COMMANDS, CommandWhitelist, InterPanWindow
from zse.se.ids import TUNNELING
from zse.sim import Air
from zse.store import Store
from zse.tunneling.service import TunnelingClient, TunnelingServer
from zse.zcl.delivery import Destination
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

CA = TestCA.generate()
OFFICE = BackOffice(b"GBDCC001", generate_key_pair(SUITE1)[0])
HUB_PAN = 0x1A62
WHITELIST = CommandWhitelist((*KE_INTERPAN_COMMANDS, *HANDOVER_COMMANDS))


@dataclass
class Site:
    air: Air
    app: Any
    endpoint: SeEndpoint
    tunnels: TunnelingServer
    hub: InstallerHub
    interpan: InterPanService
    ke: InterPanKeyServer
    terminal: Any
    terminal_ep: Any
    terminal_ip: InterPanService
    code: InstallCode
    device_log: list[t.EUI64] = field(default_factory=list)
    clock_set: list[int] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def hub_ieee(self) -> t.EUI64:
        return self.app.state.node_info.ieee

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.ke.stop()
        await self.tunnels.stop()
        await self.interpan.close()
        await self.terminal_ip.close()


async def build(seed: int, store: Store | None = None) -> Site:
    air = Air(seed=seed)
    app = await air.coordinator(channel=20, pan_id=HUB_PAN)
    endpoint = SeEndpoint(app, in_clusters=[TUNNELING])
    await endpoint.start()
    tunnels = TunnelingServer(endpoint, close_tunnel_timeout=120)
    clock_set: list[int] = []

    def set_time(body: bytes) -> bytes:
        clock_set.append(int.from_bytes(body, "big"))
        return b""

    hub = InstallerHub(
        tunnels,
        originators_of([OFFICE]),
        {CommandCode.SET_TIME: set_time, CommandCode.READ_STATUS: lambda _: b"hub ok"},
        store=store,
    )
    await hub.start()
    await tunnels.start()
    hub_ieee = app.state.node_info.ieee
    window = InterPanWindow(default_duration=3600, whitelist=WHITELIST)
    window.open(asyncio.get_running_loop().time())
    interpan = InterPanService(
        SimTransport(app),
        ieee=hub_ieee,
        pan_id=HUB_PAN,
        window=window,
        security=InterPanSecurity(),
        reassembler=Reassembler(),
    )
    ke = InterPanKeyServer(interpan, [CA.issue(eui64_bytes(hub_ieee), SUITE1)])
    ke.start()
    code = InstallCode.generate(rng=air.rng)
    terminal = air.device("00:0d:6f:00:0f:00:00:42", install_code=code, channel=20)
    terminal_ep = terminal.add_endpoint(1, device_type=0x0507, out_clusters=[TUNNELING])
    terminal._tune(20)  # a terminal that never joined listens on the hub's channel
    terminal_ip = InterPanService(
        SimTransport(terminal),
        ieee=terminal.ieee,
        pan_id=0xFFFF,
        whitelist=WHITELIST,
        security=InterPanSecurity(),
        reassembler=Reassembler(),
    )
    site = Site(
        air, app, endpoint, tunnels, hub, interpan, ke, terminal, terminal_ep, terminal_ip, code
    )
    site.clock_set = clock_set

    async def on_handover(handover: Handover) -> bool:
        site.device_log.append(handover.terminal)
        await app.permit_with_link_key(
            handover.terminal, t.KeyData(handover.install_code.link_key), 120
        )
        return True

    site.tasks.append(serve_handover(interpan, on_handover))
    return site


def terminal_bootstrap(site: Site) -> TerminalBootstrap:
    return TerminalBootstrap(
        site.terminal_ip,
        [CA.issue(eui64_bytes(site.terminal.ieee), SUITE1)],
        hub=site.hub_ieee,
        hub_pan_id=HUB_PAN,
        hub_suites=SUITE1.id,
        install_code=site.code,
        join=site.terminal.join,
    )


async def bootstrap(site: Site) -> None:
    """Key establishment over inter-PAN, handover, join."""
    await terminal_bootstrap(site).run()


async def terminal_client(site: Site) -> TunnelingClient:
    client = TunnelingClient(site.terminal_ep, Destination.device(0x0000, SE_ENDPOINT_ID))
    await client.start()
    return client


def service_request(first_counter: int = 1) -> list:
    return [
        OFFICE.sign(CommandCode.READ_STATUS, counter=first_counter),
        OFFICE.sign(
            CommandCode.SET_TIME, (820_000_000).to_bytes(4, "big"), counter=first_counter + 1
        ),
        OFFICE.sign(CommandCode.READ_STATUS, counter=first_counter + 2),
    ]


__all__ = [
    "InstallerTerminal",
    "Site",
    "bootstrap",
    "build",
    "service_request",
    "terminal_bootstrap",
    "terminal_client",
]
