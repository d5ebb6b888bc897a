"""A HAN device on a real radio: zse's HAN roles on a USB stick that joins a meter (issue #16).

:class:`StickDevice` gives :class:`zse.roles.han.HanDevice` (and so the in-home display, the
thermostat and the load control device) the same device as the simulator's
:class:`~zse.sim.SimDevice`, on a :class:`zse.radios.han.HanRadio` (an EmberZNet NCP through
bellows: :class:`zse.radios.ezsp.EzspHanRadio`):

- **join** (SE 5.4.8.1): endpoints registered with the radio first (an NCP takes them only
  before its network is up); the network the radio's tokens hold is resumed when it is the one
  chosen; otherwise an active scan, the chosen PAN (:class:`NetworkChoice`: extended PAN id,
  channel mask, the meter's EUI-64 as Trust Center), and a join with the install-code link key;
- **CBKE's key** (SE 5.4.7.2): ``set_link_key`` installs the key zse's own CBKE computed in the
  host (mode (a)) as the radio's Trust Center link key (a radio that cannot is refused by
  :func:`choose_credentials` before joining);
- **ZDO** requests and **ZCL** endpoints over the radio's APS data service, with the APS
  encryption flag of every received frame kept (the SE clients refuse unencrypted commands);
- **rejoin** (ZB 3.6.1.4.2) when the radio reports the network down: a secure rejoin with the
  current network key, then a Trust Center rejoin; ``on_left`` listeners are told when both fail.

What was chosen and joined is kept in a :class:`~zse.store.Store` (namespace ``han.stick``) so
a restart rejoins the same meter (the radio keeps its own network state; see docs/han-device.md).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import zigpy.types as t
import zigpy.zdo.types as zdo_t

from zse.cbke.certificate import ImplicitCertificate
from zse.cbke.credentials import Credentials, HeldCredentials
from zse.cbke.machine import (
    CertificateChecked,
    ComputeFailed,
    ComputeResult,
    GenerateEphemeral,
    HeldWork,
    KeysComputed,
)
from zse.cbke.messages import TerminateStatus
from zse.cbke.suites import SUITES
from zse.errors import DecodeError, ZseError
from zse.installcode import parse_eui64
from zse.radios.han import FoundNetwork, HanRadio, Incoming, JoinFailed, NetworkState
from zse.se.ids import SE_PROFILE_ID, TimeAttribute
from zse.store import Batch, Store
from zse.time.service import TimeReading
from zse.zcl._tasks import keep_task
from zse.zcl.endpoint import ZclEndpointBase, ZclMessage, decode_zcl_header, simple_descriptor

__all__ = [
    "MeterClock",
    "NetworkChoice",
    "NoCredentials",
    "StickDevice",
    "StickEndpoint",
    "StickStateError",
    "choose_credentials",
]

LOGGER = logging.getLogger(__name__)

ALL_CHANNELS = tuple(range(11, 27))
ZDO_PROFILE = 0x0000
NAMESPACE = "han.stick"


@dataclass(frozen=True, kw_only=True)
class NetworkChoice:
    """Which network to join: any of the given fields that is set must match."""

    extended_pan_id: t.ExtendedPanId | None = None
    channels: tuple[int, ...] = ALL_CHANNELS
    meter: t.EUI64 | None = None

    def accepts(self, network: FoundNetwork) -> bool:
        """Whether a scanned network may be the meter's (the meter's EUI-64 is checked once
        joined: a beacon does not carry the Trust Center's address)."""
        return (
            network.permit_joining
            and network.channel in self.channels
            and (self.extended_pan_id is None or network.extended_pan_id == self.extended_pan_id)
        )

    def keeps(self, state: NetworkState) -> bool:
        """Whether the network the radio is on is still the chosen one."""
        return (
            state.channel in self.channels
            and (self.extended_pan_id is None or state.extended_pan_id == self.extended_pan_id)
            and (self.meter is None or state.trust_center == self.meter)
        )


class MeterClock:
    """The display's clock (ZigBee UTCTime), set from the meter's Time cluster (ZCL 3.12): the
    host's clock ``base`` plus the offset last adopted, so prices, messages and load control
    events run on the meter's time even when the host's is wrong."""

    def __init__(self, base: Callable[[], int]) -> None:
        self.base = base
        self.offset = 0
        self.synced = False

    def __call__(self) -> int:
        return self.base() + self.offset

    def set(self, meter_utc: int) -> int:
        """Follow the meter's ``meter_utc`` (its Time attribute) from now on; the offset.
        :meth:`adopt` checks a reading first."""
        self.offset = int(meter_utc) - self.base()
        self.synced = True
        return self.offset

    def adopt(self, reading: TimeReading) -> int | None:
        """Follow the time a reading of the ESI's Time cluster gives, unless it is not to be
        trusted (:attr:`~zse.time.service.TimeReading.untrusted`: Time 0xFFFFFFFF or past
        ValidUntilTime, ZCL 3.12.2.2.10, or a TimeStatus with neither Master nor
        Synchronized, ZCL 3.12.2.2.2): then the clock stays
        as it is, one line is logged, and None is returned; else the offset. The display
        reads one time server, the ESI it joined (at 0x0000, the Trust Center), so there is no
        choice between servers to make (ZCL 3.12.2.2.2's ranking: Superseding, Master, the
        lower short address)."""
        reason = reading.untrusted
        if reason is not None:
            LOGGER.warning("the meter's time is not adopted (%s): the clock is kept", reason)
            return None
        return self.set(reading.values[TimeAttribute.TIME])


class StickStateError(ZseError):
    """The stored network state (namespace ``han.stick``) is not one this module wrote."""


class NoCredentials(ZseError):
    """Neither the radio nor a credentials file holds a CBKE certificate."""


async def choose_credentials(
    radio: HanRadio, host: Credentials | Iterable[Credentials] | None
) -> tuple[list[Credentials | HeldCredentials], str]:
    """The CBKE credentials to use and how (SE 5.4.7): the radio's own certificates when it
    holds any (mode b, "in the radio"), else ``host`` (mode a, "in the host", from a file);
    :class:`NoCredentials` when neither can be used (no certificate, or a radio that cannot
    install the host's key, :meth:`~zse.radios.han.HanRadio.host_cbke_problem`)."""
    held = await radio.certificates()
    LOGGER.info(
        "%s holds %s",
        radio.name,
        ", ".join(f"a suite-{c.suite} certificate" for c in held) or "no CBKE certificate",
    )
    if held:
        chosen: list[Credentials | HeldCredentials] = [
            HeldCredentials(ImplicitCertificate.from_bytes(c.certificate, SUITES[c.suite]))
            for c in held
        ]
        suites = ", ".join(str(c.suite) for c in held)
        return chosen, f"in the radio (its own certificate, suite {suites})"
    problem = radio.host_cbke_problem()
    if problem is not None:  # the key CBKE computes in the host could not be installed
        raise NoCredentials(f"{radio.name} holds no usable CBKE certificate, and {problem}")
    if host is None:
        raise NoCredentials(
            f"{radio.name} holds no CBKE certificate: give a credentials file (--credentials)"
        )
    items = [host] if isinstance(host, Credentials) else list(host)
    return list(items), "in the host (credentials file)"


class StickEndpoint(ZclEndpointBase):
    """An application endpoint of the stick: ZCL over the radio's APS data service."""

    def __init__(self, device: StickDevice, descriptor: zdo_t.SimpleDescriptor) -> None:
        super().__init__(descriptor, device.first_tsn)
        self.device = device

    def add_group(self, group_id: int) -> None:
        """Join a ZigBee group: an entry of the radio's multicast table, written at the next
        :meth:`StickDevice.join` (or at once when on the network)."""
        self.device.groups.setdefault(group_id, set()).add(self.endpoint_id)

    async def _transmit(
        self,
        *,
        dst_mode: t.AddrMode,
        dst: int,
        dst_ep: int,
        cluster_id: int,
        tsn: int,
        data: bytes,
        encrypt: bool | None,
    ) -> None:
        if dst_mode != t.AddrMode.NWK:
            raise OSError(f"{self.device.name}: a HAN device sends unicasts only, not {dst_mode}")
        await self.device.radio.send(
            dst_nwk=dst,
            profile_id=self.profile_id,
            cluster_id=cluster_id,
            src_ep=self.endpoint_id,
            dst_ep=dst_ep,
            payload=data,
            encrypt=bool(encrypt),
        )

    def _receive(self, incoming: Incoming) -> None:
        try:
            frame_control, manufacturer, tsn, command_id, length = decode_zcl_header(
                incoming.payload
            )
        except ValueError:
            self.device.malformed += 1
            return
        self._accept(
            ZclMessage(
                src_nwk=incoming.src_nwk,
                src_ieee=self.device.address_of(incoming.src_nwk),
                src_ep=incoming.src_ep,
                dst_ep=self.endpoint_id,
                cluster_id=incoming.cluster_id,
                profile_id=incoming.profile_id,
                frame_control=frame_control,
                manufacturer=manufacturer,
                tsn=tsn,
                command_id=command_id,
                payload=bytes(incoming.payload[length:]),
                aps_encrypted=incoming.aps_encrypted,
                group=incoming.group,
                broadcast=incoming.broadcast,
                timestamp=asyncio.get_running_loop().time(),
            )
        )


class StickDevice:
    """The device :class:`zse.roles.han.HanDevice` drives, on a real radio (see the module
    docstring). ``link_key``: the install-code-derived preconfigured key
    (``InstallCode.link_key``; None when only resuming); ``router``: join as a router (else
    an end device)."""

    def __init__(
        self,
        radio: HanRadio,
        *,
        link_key: bytes | None,
        choice: NetworkChoice | None = None,
        router: bool = False,
        store: Store | None = None,
        first_tsn: int = 0,
    ) -> None:
        self.radio = radio
        self._link_key = None if link_key is None else bytes(link_key)
        self.choice = choice or NetworkChoice()
        self.router = router
        self.store = store
        self.first_tsn = first_tsn
        self.endpoints: dict[int, StickEndpoint] = {}
        self.groups: dict[int, set[int]] = {}
        self.state: NetworkState | None = None
        self.malformed = 0
        self.rejoins: list[str] = []
        #: where the last CBKE ran: "in the host" (mode a) or "in the radio (suite N)" (b)
        self.cbke_mode: str | None = None
        self._held_suite: int | None = None
        self._registered: set[int] = set()
        self._left: list[Callable[[], None]] = []
        self._zdo_tsn = itertools.count(first_tsn + 0x40)
        self._zdo_waiters: dict[tuple[int, int, int], asyncio.Future[list[Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe = [
            radio.on_incoming(self._incoming),
            radio.on_network_down(self._network_down),
        ]

    def __repr__(self) -> str:
        return f"<StickDevice {self.radio.name}>"

    @property
    def name(self) -> str:
        return self.radio.name

    @property
    def ieee(self) -> t.EUI64:
        return self.radio.eui64

    @property
    def joined(self) -> bool:
        return self.state is not None

    @property
    def nwk(self) -> int | None:
        return None if self.state is None else self.state.nwk

    @property
    def tc_ieee(self) -> t.EUI64 | None:
        return None if self.state is None else self.state.trust_center

    def address_of(self, nwk: int) -> t.EUI64 | None:
        """The EUI-64 of a sender the device knows (the Trust Center, at 0x0000)."""
        return self.tc_ieee if nwk == 0x0000 else None

    def add_endpoint(
        self,
        endpoint_id: int,
        *,
        profile_id: int = SE_PROFILE_ID,
        device_type: int = 0,
        device_version: int = 0,
        in_clusters: list[int] | tuple[int, ...] = (),
        out_clusters: list[int] | tuple[int, ...] = (),
    ) -> StickEndpoint:
        """An application endpoint, registered with the radio at the next :meth:`join`."""
        descriptor = simple_descriptor(
            endpoint_id,
            self.endpoints,
            profile_id=profile_id,
            device_type=device_type,
            device_version=device_version,
            in_clusters=in_clusters,
            out_clusters=out_clusters,
        )
        endpoint = StickEndpoint(self, descriptor)
        self.endpoints[endpoint_id] = endpoint
        return endpoint

    def on_left(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` when the device is off the network and could not rejoin."""
        self._left.append(callback)
        return lambda: self._left.remove(callback)

    # -- joining --------------------------------------------------------------------------------

    async def join(self) -> None:
        """Be on the chosen network: resumed from the radio, or scanned for and joined with
        the install-code key. Raises :class:`~zse.radios.han.JoinFailed` saying what to check."""
        if self.state is not None:
            return
        for endpoint_id, endpoint in sorted(self.endpoints.items()):
            if endpoint_id not in self._registered:
                await self.radio.register_endpoint(endpoint.descriptor)
                self._registered.add(endpoint_id)
        resumed = await self.radio.resume()
        if resumed is not None and self.choice.keeps(resumed):
            await self._joined(resumed, how="resumed")
            return
        if resumed is not None:
            await self.radio.leave()
        networks = await self.radio.scan(self.choice.channels)
        candidates = [network for network in networks if self.choice.accepts(network)]
        if not candidates:
            heard = ", ".join(
                f"PAN 0x{n.pan_id:04X} on {n.channel}{'' if n.permit_joining else ' (closed)'}"
                for n in networks
            )
            raise JoinFailed(
                f"{self.name}: no network permitting joins on channels "
                f"{list(self.choice.channels)} (heard: {heard or 'none'}); is the meter "
                "permitting joining for this stick's EUI-64 and install code?"
            )
        if self._link_key is None:
            raise JoinFailed(
                f"{self.name} is not on the meter's network yet: give its install code"
            )
        failure: JoinFailed | None = None
        for network in sorted(candidates, key=lambda n: -n.lqi):
            try:
                state = await self.radio.join(network, link_key=self._link_key, router=self.router)
            except JoinFailed as exc:
                failure = exc
                continue
            if self.choice.meter is not None and state.trust_center != self.choice.meter:
                await self.radio.leave()
                failure = JoinFailed(
                    f"{self.name}: PAN 0x{network.pan_id:04X} is run by {state.trust_center}, "
                    f"not the meter {self.choice.meter}"
                )
                continue
            await self._joined(state, how="joined")
            return
        assert failure is not None
        raise failure

    async def _joined(self, state: NetworkState, *, how: str) -> None:
        self.state = state
        entries = [(g, ep) for g, eps in sorted(self.groups.items()) for ep in sorted(eps)]
        for index, (group, endpoint) in enumerate(entries):
            await self.radio.add_group(index, group, endpoint)
        LOGGER.info(
            "%s: %s PAN 0x%04X (extended %s) on channel %d as 0x%04X; Trust Center %s",
            self.name,
            how,
            state.pan_id,
            state.extended_pan_id,
            state.channel,
            state.nwk,
            state.trust_center,
        )
        if self.store is not None:
            await self.store.commit(
                Batch().put(
                    NAMESPACE,
                    "network",
                    {
                        "extended_pan_id": str(state.extended_pan_id),
                        "channel": state.channel,
                        "trust_center": str(state.trust_center),
                    },
                )
            )

    @staticmethod
    async def remembered(store: Store) -> NetworkChoice | None:
        """The network a previous run joined, to rejoin that one meter only; None if none.
        :class:`StickStateError` for a record of another shape."""
        saved = await store.get(NAMESPACE, "network")
        if saved is None:
            return None
        try:
            if not isinstance(saved, dict) or not 11 <= int(saved["channel"]) <= 26:
                raise ValueError("not a network record")
            # zse's parser (InvalidEui64): zigpy's EUI64.convert asserts the length
            return NetworkChoice(
                extended_pan_id=t.ExtendedPanId(parse_eui64(str(saved["extended_pan_id"]))),
                channels=(int(saved["channel"]),),
                meter=parse_eui64(str(saved["trust_center"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StickStateError(
                f"the stored network ({NAMESPACE}) is not valid: {exc}; delete the state file "
                "to scan and join again"
            ) from None

    async def set_link_key(self, partner: t.EUI64, key: bytes) -> None:
        """Install the link key CBKE established with ``partner`` in the radio: the key the
        host computed (mode a), or, when the radio computed it (mode b, ``key`` empty), tell
        the radio to store its own."""
        if not key and self._held_suite is not None:
            suite, self._held_suite = self._held_suite, None
            await self.radio.cbke_finish(suite, store=True)
            self.cbke_mode = f"in the radio (suite {suite})"
            LOGGER.info(
                "%s: CBKE ran in the radio, suite %d; link key stored there", self.name, suite
            )
            return
        await self.radio.install_link_key(partner, key)
        self.cbke_mode = "in the host"
        LOGGER.info("%s: CBKE ran in the host; link key installed in the radio", self.name)

    async def cbke_holder(self, work: HeldWork) -> ComputeResult:
        """Do the CBKE arithmetic with the radio's own certificate and key (mode b)."""
        suite = work.suite.id
        if isinstance(work, GenerateEphemeral):
            if self._held_suite is not None:  # an earlier exchange that did not finish
                await self.radio.cbke_finish(self._held_suite, store=False)
            self._held_suite = suite
            public = await self.radio.cbke_generate(suite)
            return CertificateChecked(
                peer_static_public=b"",
                peer_static_point=None,
                ephemeral_private=b"",
                ephemeral_public=public,
            )
        status, macu, macv = await self.radio.cbke_smacs(
            suite,
            initiator=work.initiator,
            partner_certificate=work.partner_certificate,
            partner_ephemeral=work.partner_ephemeral,
        )
        if status != 0:
            await self.radio.cbke_finish(suite, store=False)
            self._held_suite = None
            return ComputeFailed(
                status=TerminateStatus.INVALID_CERTIFICATE
                if suite == 2
                else TerminateStatus.BAD_MESSAGE,
                reason=f"the radio refused the partner's data (status 0x{status:02X})",
            )
        return KeysComputed(mac_key=b"", key_data=b"", macu=macu, macv=macv)

    async def held_signer(self, message: bytes) -> bytes:
        """ECDSA signature of ``message`` by the radio's own suite-1 private key (mode b), for
        the DRLC client's Report Event Status (SE D.2.3.3.1.1.11)."""
        return await self.radio.dsa_sign(message)

    async def leave(self) -> None:
        """Leave the network (NWK Leave, by the radio)."""
        if self.state is None:
            return
        self.state = None
        await self.radio.leave()
        for callback in list(self._left):
            callback()

    async def close(self) -> None:
        """Stop using the radio (which stays open: its owner closes it): its frames and
        network-down reports no longer reach this device, and a rejoin under way is
        cancelled. Without it a device given up kept rejoining whenever the radio's network
        went down, under the device that replaced it."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- rejoin (ZB 3.6.1.4.2) ------------------------------------------------------------------

    def _network_down(self) -> None:
        if self.state is None:
            return
        keep_task(
            self._tasks,
            asyncio.get_running_loop().create_task(self.rejoin()),
            LOGGER,
            f"{self.name}: rejoin",
        )

    async def rejoin(self) -> bool:
        """A secure rejoin, then a Trust Center rejoin; True when back on the network."""
        previous, self.state = self.state, None  # off the network until back (no 2nd rejoin)
        channels = (previous.channel,) if previous is not None else self.choice.channels
        for secure in (True, False):
            kind = "secure rejoin" if secure else "Trust Center rejoin"
            try:
                state = await self.radio.rejoin(have_network_key=secure, channels=channels)
            except (JoinFailed, OSError) as exc:
                LOGGER.warning("%s: %s failed: %s", self.name, kind, exc)
                self.rejoins.append(f"{kind} failed")
                continue
            self.rejoins.append(kind)
            await self._joined(state, how=f"back after a {kind} on")
            return True
        self.state = None
        for callback in list(self._left):
            callback()
        return False

    # -- ZDO ------------------------------------------------------------------------------------

    async def zdo_request(
        self, dst_nwk: int, command: zdo_t.ZDOCmd, *args: Any, timeout: float = 5.0
    ) -> list[Any]:
        """Send a ZDO request to ``dst_nwk`` and return the response's fields."""
        _, types = zdo_t.CLUSTERS[command]
        tsn = next(self._zdo_tsn) & 0xFF
        payload = bytes((tsn,)) + t.serialize(args, types)
        key = (dst_nwk, int(command) | 0x8000, tsn)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._zdo_waiters[key] = future
        try:
            await self.radio.send(
                dst_nwk=dst_nwk,
                profile_id=ZDO_PROFILE,
                cluster_id=int(command),
                src_ep=0,
                dst_ep=0,
                payload=payload,
                encrypt=False,
            )
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._zdo_waiters.pop(key, None)

    def _incoming(self, incoming: Incoming) -> None:
        if incoming.profile_id == ZDO_PROFILE and incoming.dst_ep == 0:
            self._zdo(incoming)
            return
        if incoming.group is not None:
            targets = sorted(self.groups.get(incoming.group, ()))
        elif incoming.dst_ep == 0xFF:
            targets = [
                endpoint_id
                for endpoint_id, endpoint in sorted(self.endpoints.items())
                if endpoint.takes_all_endpoints_frame(incoming.cluster_id, incoming.payload)
            ]
        else:
            targets = [incoming.dst_ep]
        for endpoint_id in targets:
            endpoint = self.endpoints.get(endpoint_id)
            if endpoint is not None and endpoint.profile_id == incoming.profile_id:
                endpoint._receive(incoming)

    def _zdo(self, incoming: Incoming) -> None:
        if not incoming.payload or not incoming.cluster_id & 0x8000:
            return  # requests: the radio's own ZDO answers them
        key = (incoming.src_nwk, incoming.cluster_id, incoming.payload[0])
        future = self._zdo_waiters.get(key)
        if future is None or future.done():
            return
        try:
            _, types = zdo_t.CLUSTERS[zdo_t.ZDOCmd(incoming.cluster_id)]
            args, _ = t.deserialize(incoming.payload[1:], types)
        except (ValueError, KeyError) as exc:
            self.malformed += 1  # the meter's answer, not the stick, is at fault
            future.set_exception(DecodeError(f"bad ZDO response: {exc}"))
            return
        future.set_result(list(args))
