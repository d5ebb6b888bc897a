"""What a HAN device needs from its radio when it joins someone else's network (issue #16).

zigpy's radio libraries run coordinators; a HAN device on a USB stick (an in-home display
joining a utility meter) needs the other half of the stack: scan, join with a preconfigured
(install-code) link key, send and receive APS data, install the CBKE link key, rejoin.
:class:`HanRadio` is that half, radio-neutral; :class:`zse.radios.ezsp.EzspHanRadio` implements
it on a Silicon Labs EmberZNet NCP through bellows' EZSP layer, and
:class:`zse.roles.han_stick.StickDevice` runs zse's HAN roles on it.

Network state (node id, PAN, channel, keys) lives in the NCP's own non-volatile tokens, as on
every EmberZNet device: :meth:`HanRadio.resume` brings the network back up after a restart
(``networkInit``); the host keeps only what it chose (:class:`NetworkChoice`), to rejoin the
same PAN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import zigpy.types as t
import zigpy.zdo.types as zdo_t

from zse.errors import ZseError

__all__ = [
    "FoundNetwork",
    "HanRadio",
    "Incoming",
    "JoinFailed",
    "NetworkState",
    "RadioGone",
    "StickCertificate",
]


class JoinFailed(ZseError, OSError):
    """The radio could not join (or rejoin) the network; ``status`` is the radio's code."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RadioGone(ZseError, OSError):
    """The serial link to the radio was lost (stick unplugged, NCP reset)."""


@dataclass(frozen=True, kw_only=True)
class FoundNetwork:
    """A network heard in an active scan (ZB 3.2.2.1, from its beacon)."""

    channel: int
    pan_id: int
    extended_pan_id: t.ExtendedPanId
    permit_joining: bool
    lqi: int
    rssi: int


@dataclass(frozen=True, kw_only=True)
class NetworkState:
    """Where the radio is on the network once it is up."""

    nwk: int
    pan_id: int
    extended_pan_id: t.ExtendedPanId
    channel: int
    trust_center: t.EUI64


@dataclass(frozen=True, kw_only=True)
class Incoming:
    """An APS data frame the radio received (APSDE-DATA.indication, ZB 2.2.4.1.3)."""

    src_nwk: int
    src_ep: int
    dst_ep: int
    cluster_id: int
    profile_id: int
    payload: bytes
    aps_encrypted: bool
    broadcast: bool
    group: int | None
    lqi: int
    rssi: int


@dataclass(frozen=True, kw_only=True)
class StickCertificate:
    """An implicit certificate held by the radio itself (manufacturing tokens), with the
    CBKE suite it belongs to (1: sect163k1, 48 bytes; 2: sect283k1, 74 bytes)."""

    suite: int
    certificate: bytes


class HanRadio(Protocol):
    """A radio that joins a network as a router or end device (see the module docstring)."""

    @property
    def eui64(self) -> t.EUI64: ...

    @property
    def name(self) -> str: ...

    async def register_endpoint(self, descriptor: zdo_t.SimpleDescriptor) -> None: ...

    async def resume(self) -> NetworkState | None: ...

    async def scan(self, channels: tuple[int, ...]) -> list[FoundNetwork]: ...

    async def join(
        self, network: FoundNetwork, *, link_key: bytes, router: bool
    ) -> NetworkState: ...

    async def rejoin(
        self, *, have_network_key: bool, channels: tuple[int, ...]
    ) -> NetworkState: ...

    async def leave(self) -> None: ...

    async def send(
        self,
        *,
        dst_nwk: int,
        profile_id: int,
        cluster_id: int,
        src_ep: int,
        dst_ep: int,
        payload: bytes,
        encrypt: bool,
    ) -> None: ...

    async def install_link_key(self, partner: t.EUI64, key: bytes) -> None: ...

    def host_cbke_problem(self) -> str | None:
        """Why a key computed in the host cannot be installed (None: it can)."""

    async def add_group(self, index: int, group_id: int, endpoint: int) -> None: ...

    async def certificates(self) -> list[StickCertificate]: ...

    async def cbke_generate(self, suite: int) -> bytes: ...

    async def cbke_smacs(
        self, suite: int, *, initiator: bool, partner_certificate: bytes, partner_ephemeral: bytes
    ) -> tuple[int, bytes, bytes]: ...

    async def cbke_finish(self, suite: int, *, store: bool) -> None: ...

    async def dsa_sign(self, message: bytes) -> bytes: ...

    def on_incoming(self, callback: Callable[[Incoming], None]) -> Callable[[], None]: ...

    def on_network_down(self, callback: Callable[[], None]) -> Callable[[], None]: ...

    def on_lost(self, callback: Callable[[Exception | None], None]) -> Callable[[], None]: ...

    async def close(self) -> None: ...


def subscribe(listeners: list[Any], callback: Any) -> Callable[[], None]:
    """Add ``callback`` to ``listeners``; returns the function that removes it."""
    listeners.append(callback)
    return lambda: listeners.remove(callback) if callback in listeners else None
