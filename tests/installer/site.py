"""The GB-style site of the installer tests: :func:`zse.sim._installer.build_gb_site` with one
CA and one back office for the whole test run."""

from __future__ import annotations

from zse.cbke import SUITE1
from zse.cbke.ca import TestCA, eui64_bytes
from zse.cbke.keys import generate_key_pair
from zse.installer.core import BackOffice, SignedCommand
from zse.installer.service import InstallerTerminal, TerminalBootstrap
from zse.sim import Air
from zse.sim._installer import GbSite, build_gb_site
from zse.sim._installer import service_request as _service_request
from zse.store import Store
from zse.tunneling.service import TunnelingClient

CA = TestCA.generate()
OFFICE = BackOffice(b"GBDCC001", generate_key_pair(SUITE1)[0])
#: The hub the sans-IO tests' commands are signed for (a :class:`HubLedger`'s ``hub``), and
#: another hub of the same back office.
HUB = eui64_bytes("00:0d:6f:00:0f:00:00:01")
OTHER_HUB = eui64_bytes("00:0d:6f:00:0f:00:00:02")
Site = GbSite

__all__ = [
    "HUB",
    "OFFICE",
    "OTHER_HUB",
    "InstallerTerminal",
    "Site",
    "bootstrap",
    "build",
    "establish_key",
    "framed",
    "service_request",
    "terminal_bootstrap",
    "terminal_client",
]


async def build(seed: int, store: Store | None = None) -> GbSite:
    return await build_gb_site(Air(seed=seed), ca=CA, office=OFFICE, store=store)


def terminal_bootstrap(site: GbSite) -> TerminalBootstrap:
    return site.bootstrap()


async def bootstrap(site: GbSite) -> None:
    """Key establishment over inter-PAN, handover, join."""
    await site.bootstrap().run()


async def establish_key(boot: TerminalBootstrap) -> None:
    """The terminal's key establishment over inter-PAN with the hub, the first step of
    :meth:`TerminalBootstrap.run`, done on its own (marked done, as ``run`` marks it)."""
    await boot._establish()
    boot.done = ["key"]


async def terminal_client(site: GbSite) -> TunnelingClient:
    return await site.client()


def framed(message: bytes) -> bytes:
    """``message`` as the installer tunnel frames it: its length (u16, big-endian) first,
    written here apart from the code under test."""
    return len(message).to_bytes(2, "big") + message


def service_request(first_counter: int = 1, *, target: bytes = HUB) -> list[SignedCommand]:
    """:func:`zse.sim._installer.service_request` of :data:`OFFICE` for ``target`` (a site's
    hub: ``site.target``)."""
    return _service_request(OFFICE, target, first_counter)
