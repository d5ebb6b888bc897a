"""A GB-style installer site on the simulated air (issue #20): a hub (the coordinator with an SE
endpoint, a Tunneling server, the installer hub, and inter-PAN with its acceptance window, key
establishment and handover) and an installer terminal that never joined (a simulated device
with its own install code). The demo, the tests and ``benchmarks/interpan_flood.py`` build it
with :func:`build_gb_site`."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, cast

import zigpy.types as t

from zse.cbke import SUITE1
from zse.cbke.ca import TestCA
from zse.cbke.service import eui64_bytes
from zse.installcode import InstallCode
from zse.installer.core import (
    BackOffice,
    CommandCode,
    CommandResponse,
    SignedCommand,
    originators_of,
)
from zse.installer.service import (
    HANDOVER_COMMANDS,
    Handover,
    InstallerHub,
    TerminalBootstrap,
    serve_handover,
)
from zse.interpan.acceptance import AcceptancePolicy, JoinAdmission
from zse.interpan.fragment import Reassembler
from zse.interpan.ke import InterPanKeyServer
from zse.interpan.secure import InterPanSecurity
from zse.interpan.service import InterPanService
from zse.interpan.transports.sim import SimTransport
from zse.interpan.window import (
    KE_INTERPAN_COMMANDS,
    CommandWhitelist,
    InterPanWindow,
)
from zse.se.ids import DEVICE_MANAGEMENT, TUNNELING
from zse.sim._app import SimControllerApplication
from zse.sim._han import Air
from zse.store import Store
from zse.tunneling.service import TunnelingClient, TunnelingServer
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import ZclPort
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

__all__ = ["HUB_PAN", "GbSite", "build_gb_site", "service_request"]

HUB_PAN = 0x1A62
WHITELIST = CommandWhitelist((*KE_INTERPAN_COMMANDS, *HANDOVER_COMMANDS))
TERMINAL_EUI64 = "00:0d:6f:00:0f:00:00:42"


@dataclass
class GbSite:
    """The hub's pieces and the terminal's; :meth:`bootstrap` is the terminal's."""

    air: Air
    ca: TestCA
    office: BackOffice
    policy: AcceptancePolicy
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
    joins: JoinAdmission = field(default_factory=JoinAdmission)
    device_log: list[t.EUI64] = field(default_factory=list)
    clock_set: list[int] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    pan_id: int = HUB_PAN
    rng: random.Random | None = None
    executor: Executor | None = None

    @property
    def hub_ieee(self) -> t.EUI64:
        ieee: t.EUI64 = self.app.state.node_info.ieee
        return ieee

    @property
    def target(self) -> bytes:
        """The hub's EUI-64 as a signed command names it (:func:`eui64_bytes`)."""
        return eui64_bytes(self.hub_ieee)

    def bootstrap(self, **options: Any) -> TerminalBootstrap:
        """The terminal's bootstrap towards this hub."""
        seeded: dict[str, Any] = {} if self.rng is None else {"rng": self.rng}
        return TerminalBootstrap(
            self.terminal_ip,
            [self.ca.issue(eui64_bytes(self.terminal.ieee), SUITE1, **seeded)],
            hub=self.hub_ieee,
            hub_pan_id=self.pan_id,
            hub_suites=SUITE1.id,
            install_code=self.code,
            join=self.terminal.join,
            executor=self.executor,
            **{**seeded, **options},
        )

    async def client(self) -> TunnelingClient:
        """The terminal's Tunneling client towards the hub (once joined)."""
        hub = Destination.device(0x0000, self.endpoint.endpoint_id)
        client = TunnelingClient(self.terminal_ep, hub)
        await client.start()
        return client

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.ke.stop()
        await self.tunnels.stop()
        await self.interpan.close()
        await self.terminal_ip.close()


async def build_gb_site(
    air: Air,
    *,
    ca: TestCA,
    office: BackOffice,
    store: Store | None = None,
    pin: str | None = None,
    max_sessions: int = 2,
    app: SimControllerApplication | None = None,
    endpoint_id: int = SE_ENDPOINT_ID,
    rng: random.Random | None = None,
    executor: Executor | None = None,
    on_executed: Callable[[SignedCommand, CommandResponse], None] | None = None,
) -> GbSite:
    """The hub (powered up: inter-PAN accepted for 60 minutes) and the terminal on ``air``.

    ``app``: the hub is that coordinator (an ESI already on the air), its installer endpoint
    ``endpoint_id``; else a new coordinator on channel 20. ``rng`` and ``executor`` make a run
    repeatable (the demo's seed): key establishment's ephemeral keys and certificates come from
    ``rng``, its arithmetic runs where ``executor`` says."""
    if app is None:
        app = await air.coordinator(channel=20, pan_id=HUB_PAN)
    channel = int(app.state.network_info.channel)
    pan_id = int(app.state.network_info.pan_id)
    endpoint = SeEndpoint(
        app,
        endpoint_id=endpoint_id,
        in_clusters=[TUNNELING],
        first_tsn=None if rng is None else rng.randrange(256),
    )
    await endpoint.start()
    tunnels = TunnelingServer(cast(ZclPort, endpoint), close_tunnel_timeout=120, rng=rng)
    clock_set: list[int] = []

    def set_time(body: bytes) -> bytes:
        clock_set.append(int.from_bytes(body, "big"))
        return b""

    hub = InstallerHub(
        tunnels,
        originators_of([office]),
        {CommandCode.SET_TIME: set_time, CommandCode.READ_STATUS: lambda _: b"hub ok"},
        hub=eui64_bytes(app.state.node_info.ieee),
        store=store,
        on_executed=on_executed,
        executor=executor,
    )
    await hub.start()
    await tunnels.start()
    window = InterPanWindow(whitelist=WHITELIST)
    policy = AcceptancePolicy(window, pin=pin)
    policy.power_up(asyncio.get_running_loop().time())
    hub_ieee: t.EUI64 = app.state.node_info.ieee
    code = InstallCode.generate(rng=air.rng)
    terminal = air.device(TERMINAL_EUI64, install_code=code, channel=channel)

    def learn(partner: t.EUI64, key: bytes) -> None:  # the capture's key table
        air._learn_key(key, f"inter-PAN link key {hub_ieee} {terminal.ieee}")

    interpan = InterPanService(
        SimTransport(app),
        ieee=hub_ieee,
        pan_id=pan_id,
        window=window,
        security=InterPanSecurity(on_key=learn),
        reassembler=Reassembler(),
    )
    options: dict[str, Any] = {} if rng is None else {"rng": rng}
    ke = InterPanKeyServer(
        interpan,
        [ca.issue(eui64_bytes(hub_ieee), SUITE1, **options)],
        max_sessions=max_sessions,
        executor=executor,
        **options,
    )
    ke.start()
    terminal_ep = terminal.add_endpoint(1, device_type=DEVICE_MANAGEMENT, out_clusters=[TUNNELING])
    terminal.listen(channel)  # a terminal that never joined listens on the hub's channel
    terminal_ip = InterPanService(
        SimTransport(terminal),
        ieee=terminal.ieee,
        pan_id=0xFFFF,
        whitelist=WHITELIST,
        security=InterPanSecurity(),
        reassembler=Reassembler(),
    )
    site = GbSite(
        air,
        ca,
        office,
        policy,
        app,
        endpoint,
        tunnels,
        hub,
        interpan,
        ke,
        terminal,
        terminal_ep,
        terminal_ip,
        code,
    )
    site.clock_set = clock_set
    site.pan_id = pan_id
    site.rng = rng
    site.executor = executor

    async def on_handover(handover: Handover) -> bool:
        site.device_log.append(handover.terminal)
        await app.permit_with_link_key(
            handover.terminal, t.KeyData(handover.install_code.link_key), 120
        )
        return True

    class _Joins:  # zigpy's listener: a terminal that joined ends its join permit
        def device_joined(self, device: Any) -> None:
            site.joins.joined(device.ieee)

    app.add_listener(_Joins())
    site.tasks.append(serve_handover(interpan, on_handover, admission=site.joins))
    return site


def service_request(
    office: BackOffice, target: bytes, first_counter: int = 1
) -> list[SignedCommand]:
    """A service request the back office signed for the hub ``target`` (its EUI-64,
    :func:`~zse.cbke.ca.eui64_bytes`): read the status, set the time, read again."""
    return [
        office.sign(CommandCode.READ_STATUS, target=target, counter=first_counter),
        office.sign(
            CommandCode.SET_TIME,
            (820_000_000).to_bytes(4, "big"),
            target=target,
            counter=first_counter + 1,
        ),
        office.sign(CommandCode.READ_STATUS, target=target, counter=first_counter + 2),
    ]
