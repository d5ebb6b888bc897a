"""Meter mirroring on the ESI (SE 1.1+, D.3.4): the asyncio shell of :mod:`zse.metering.mirror`.

:class:`MirrorServer` registers a fixed pool of mirror endpoints with the radio (each an SE
Metering Device with a Basic and a Metering server), takes Request Mirror and Remove Mirror on
the ESI's SE endpoint (its Metering client) and Report Attributes on each mirror endpoint,
hands them to :class:`~zse.metering.mirror.MirrorProtocol`, and serves each mirror's values to
Read Attributes as the meter would. Allocations and values are written to the
:class:`~zse.store.Store` (namespace ``metering.mirror/<ESI endpoint>``, one record per mirror
endpoint; a damaged one is quarantined at start and that mirror starts free) before the
answer goes out, so a restart, even after kill -9, keeps every mirror the meters were told of.

SE 1.2 notifications (:mod:`zse.metering.notification`): each mirror endpoint also hosts the
Metering client, which takes the meter's Configure Mirror / Notification Scheme / Flag and Get
Notified Message and serves the notification flags as its client attributes (map32, read with
a server-to-client Read Attributes). :meth:`MirrorServer.raise_flags` /
:meth:`MirrorServer.clear_flags` are the application's side; flags and settings persist with
the mirror's record, written before the answer goes out like the rest.

The ESI's Basic cluster carries PhysicalEnvironment (ZCL 3.2.2.2.13) bit 0 set while a mirror
is free ("mirror capacity", as Silicon Labs' meter-mirror plugin shows it). Radios that take
endpoints only before the network is up (EmberZNet) must be given the mirrors' descriptors
at start-up with the ESI's own (:meth:`zse.roles.esi.EnergyServiceInterface.descriptors`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any, Final, cast

import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.application import ControllerApplication
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Basic

from zse.installcode import parse_eui64
from zse.metering.mirror import (
    MirrorAdded,
    MirrorHeld,
    MirrorPool,
    MirrorProtocol,
    MirrorRemoved,
    MirrorUpdated,
)
from zse.metering.notification import (
    FLAG_ATTRIBUTES,
    FUNCTIONAL_FLAGS,
    MAP32,
    MirrorConfigured,
    NotificationFlagsRaised,
    NotifiedMessageRequested,
)
from zse.records import RecordError, load_each
from zse.se.ids import BASIC, METERING, METERING_DEVICE, SE_PROFILE_ID
from zse.store import Batch, Store
from zse.time.service import system_clock
from zse.zcl.endpoint import ZclPort, carry_out
from zse.zcl.events import STOP_WAIT, EventStream, Untold
from zse.zcl.frame import Step, ZclMessage
from zse.zcl.se_endpoint import SecurityPolicy, SeEndpoint

__all__ = [
    "ESI_CLIENT_CLUSTERS",
    "ESI_SERVER_CLUSTERS",
    "MIRROR_NAMESPACE",
    "MirrorAdded",
    "MirrorConfigured",
    "MirrorEndpoint",
    "MirrorRemoved",
    "MirrorServer",
    "MirrorUpdated",
    "NotificationFlagsRaised",
    "NotifiedMessageRequested",
    "mirror_descriptors",
    "mirror_endpoints",
]

LOGGER = logging.getLogger(__name__)

#: The store namespace of the mirrors, ``metering.mirror/<ESI endpoint>``: key = mirror
#: endpoint id, value = owner and values.
MIRROR_NAMESPACE: Final = "metering.mirror"
#: What the ESI's SE endpoint adds when it mirrors: Basic server, Metering client.
ESI_SERVER_CLUSTERS: Final = (BASIC,)
ESI_CLIENT_CLUSTERS: Final = (METERING,)
_MIRROR_CLUSTERS: Final = (BASIC, METERING)
_BASIC = Basic.AttributeDefs
#: PhysicalEnvironment bit 0: the ESI has a mirror free (SE 1.1 D.3.4).
_MIRROR_CAPACITY: Final = 0x01
_ZCL_VERSION: Final = 0x01
#: PowerSource of a mirror: the meters that ask for one run on batteries.
_BATTERY: Final = 0x03
#: PowerSource of the ESI itself.
_MAINS: Final = 0x01

MirrorEvent = (
    MirrorAdded
    | MirrorRemoved
    | MirrorUpdated
    | MirrorConfigured
    | NotificationFlagsRaised
    | NotifiedMessageRequested
)
#: The mirror endpoint's client side: the SE 1.2 notification commands and flags.
_MIRROR_CLIENT_CLUSTERS: Final = (METERING,)


def mirror_endpoints(count: int, after: int) -> tuple[int, ...]:
    """The ids of ``count`` mirror endpoints following the ESI's endpoint ``after``."""
    if count < 0:
        raise ValueError(f"mirror count {count} is negative")
    return tuple(range(after + 1, after + 1 + count))


def mirror_descriptors(endpoints: Iterable[int]) -> list[zdo_t.SimpleDescriptor]:
    """The simple descriptors of the mirror endpoints, as they are registered."""
    return [
        SeEndpoint.simple_descriptor(ep, METERING_DEVICE, _MIRROR_CLUSTERS, _MIRROR_CLIENT_CLUSTERS)
        for ep in endpoints
    ]


class MirrorEndpoint(SeEndpoint):
    """A mirror endpoint: it takes only the frames unicast to it. Broadcasts, groups and
    Match_Desc_req stay with the ESI's SE endpoint."""

    def _ours(self, packet: t.ZigbeePacket) -> bool:
        assert packet.dst is not None
        return (
            packet.profile_id == SE_PROFILE_ID
            and packet.src_ep != 0
            and packet.dst.addr_mode in (t.AddrMode.NWK, t.AddrMode.IEEE)
            and packet.dst_ep == self.endpoint_id
        )

    def _se_match_descriptor(self, packet: t.ZigbeePacket) -> bool:
        return False


class MirrorServer:
    """The ESI's meter mirrors: a pool of endpoints, requests on ``client`` (the ESI's SE
    endpoint, with the Metering client), values persisted in ``store`` when given.
    ``aps_ack``: the mirror endpoints' unicasts ask for an APS acknowledgement, as the SE
    endpoint's (:class:`~zse.zcl.se_endpoint.SeEndpoint`)."""

    def __init__(
        self,
        app: ControllerApplication,
        client: ZclPort,
        *,
        endpoints: Iterable[int],
        store: Store | None = None,
        security: SecurityPolicy | None = None,
        clock: Callable[[], int] = system_clock,
        first_tsn: int | None = None,
        aps_ack: bool = True,
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock
        self.pool = MirrorPool(endpoints)
        self.namespace = f"{MIRROR_NAMESPACE}/{client.endpoint_id}"
        self.protocol = MirrorProtocol(self.pool)
        self.endpoints = {
            ep: MirrorEndpoint(
                app,
                endpoint_id=ep,
                device_type=METERING_DEVICE,
                in_clusters=_MIRROR_CLUSTERS,
                out_clusters=_MIRROR_CLIENT_CLUSTERS,
                security=security,
                first_tsn=first_tsn,
                aps_ack=aps_ack,
            )
            for ep in self.pool.endpoints
        }
        self._stream: EventStream[MirrorEvent] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._removers: list[Callable[[], None]] = []
        #: Get Notified Message requests: journalled with the flags they clear, told once.
        self._untold: Untold[MirrorEvent] = Untold(self._stream, self._mark_told)
        #: One change at a time, from its step to its write's end: a change whose write does
        #: not land puts the mirrors back as they were before it, which must not undo another
        #: change made while its write was waiting.
        self._lock = asyncio.Lock()

    async def start(self, *, tell: bool = True) -> None:
        """Load the mirrors kept in the store, register the endpoints and serve them. The
        meters' Get Notified Message requests stored but not told before a restart are told
        (:meth:`tell_untold`; ``tell=False`` holds them and those to come until then)."""
        untold: list[tuple[int, NotifiedMessageRequested]] = []
        if self.store is not None:
            await self.store.load_with(self.namespace, self._restore)
            await self.store.prune(self.namespace)  # the requests told before
            untold = await self.store.unreported_with(
                self.namespace, NotifiedMessageRequested.from_record
            )
        self._untold.hold(untold)
        # the ESI's Basic server exists for mirroring: its mandatory attributes (ZCL 3.2.2.2)
        self.client.set_attribute(BASIC, int(_BASIC.zcl_version.id), _ZCL_VERSION, 0x20)
        self.client.set_attribute(BASIC, int(_BASIC.power_source.id), _MAINS, 0x30)
        self.client.set_attribute_source(
            BASIC,
            int(_BASIC.physical_env.id),
            int(foundation.DataTypeId.enum8),
            lambda: _MIRROR_CAPACITY if self.pool.free else 0,
        )
        for ep, endpoint in self.endpoints.items():
            await endpoint.start()
            endpoint.set_attribute(BASIC, int(_BASIC.zcl_version.id), _ZCL_VERSION, 0x20)
            endpoint.set_attribute(BASIC, int(_BASIC.power_source.id), _BATTERY, 0x30)
            self._serve(ep)
            self._removers.append(endpoint.add_handler(METERING, self._on_report, general=True))
            self._removers.append(endpoint.add_handler(METERING, self._on_configure))
        self._removers.append(self.client.add_handler(METERING, self._on_command))
        if tell:
            await self.tell_untold()

    def hold_untold(self) -> None:
        """Hold the events from now on until :meth:`tell_untold` (:meth:`Untold.pause
        <zse.zcl.events.Untold.pause>`: the ESI has no listener, or stops)."""
        self._untold.pause()

    async def tell_untold(self) -> None:
        """Tell the Get Notified Message requests stored but not told, oldest first, each
        marked told once the listeners have it in hand (:mod:`zse.zcl.events`); from then on
        each is told as it comes."""
        await self._untold.tell_untold()

    async def _mark_told(self, *seqs: int) -> None:
        if self.store is not None:
            await self.store.mark_reported(*seqs)

    async def stop(self, *, bound: float = STOP_WAIT) -> None:
        """Stop serving; the endpoints give the radio's packet handling back, newest first.
        The requests being told are waited for (:meth:`Untold.stop
        <zse.zcl.events.Untold.stop>`: each marked, not told again after the restart).
        Again: nothing more.
        ``bound``: the longest wait for them (the ESI's stop shares one STOP_WAIT)."""
        for remove in self._removers:
            remove()
        self._removers.clear()
        self._untold.close()
        for endpoint in reversed(list(self.endpoints.values())):
            endpoint.stop()
        await self._untold.stop(bound)

    def _restore(self, records: dict[str, Any], on_bad: Callable[[RecordError], None]) -> None:
        def load(key: str, value: Any) -> None:
            if not isinstance(value, dict):
                raise ValueError("not a mirror record")
            self.pool.restore(int(key), value)

        load_each(records.items(), load, namespace=self.namespace, on_bad=on_bad)

    def _serve(self, ep: int) -> None:
        """Answer Read Attributes on mirror ``ep`` from what it holds now."""
        endpoint = self.endpoints[ep]
        endpoint.attributes[METERING] = {}
        for attr_id, (type_id, value) in self.pool.values(ep).items():
            endpoint.set_attribute(METERING, attr_id, value, type_id)
        # the notification flags, client attributes of an owned mirror (all 0 at first)
        endpoint.client_attributes[METERING] = {}
        if self.pool.owner(ep) is not None:
            flags = self.pool.notifications(ep).flags
            for attr_id in FLAG_ATTRIBUTES[:5]:
                endpoint.set_attribute(METERING, attr_id, flags.get(attr_id, 0), MAP32, client=True)
            for attr_id, value in flags.items():
                endpoint.set_attribute(METERING, attr_id, value, MAP32, client=True)

    def _before(self, endpoints: Iterable[int]) -> dict[int, MirrorHeld]:
        """The mirrors ``endpoints`` before a change to them (:meth:`_keep` puts them back
        when its write does not land)."""
        return {ep: self.pool.hold(ep) for ep in endpoints}

    async def _keep(
        self, events: Iterable[Any], before: dict[int, MirrorHeld]
    ) -> list[tuple[int | None, MirrorEvent]]:
        """Write what the events changed, then serve it (before any answer is sent); each
        :class:`NotifiedMessageRequested` is journalled in the same commit: returned with its
        journal seq (None without a store), to be told once. A write that raises:
        :meth:`_not_kept`."""
        events = list(events)
        changed = {e.endpoint for e in events if isinstance(e, MirrorEvent)}
        told: list[tuple[int | None, MirrorEvent]] = []
        if not changed:
            return told
        requests = [e for e in events if isinstance(e, NotifiedMessageRequested)]
        seqs: list[int | None] = [None] * len(requests)
        if self.store is not None:
            batch = Batch()
            for ep in sorted(changed):
                record = self.pool.record(ep)
                if record is None:
                    batch.delete(self.namespace, str(ep))
                else:
                    batch.put(self.namespace, str(ep), record)
            for request in requests:
                batch.append(self.namespace, "notified", request.record())
            try:
                seqs = list(await self.store.commit(batch))
            except BaseException:
                self._not_kept(batch, events, before)
                raise
        for ep in changed:
            self._serve(ep)
        return list(zip(seqs, requests, strict=True))

    def _not_kept(self, batch: Batch, events: list[Any], before: dict[int, MirrorHeld]) -> None:
        """A change whose write raised. Failed (:class:`~zse.errors.StoreError`) or cancelled
        before its transaction: the mirrors are put back as ``before`` holds them. Cancelled
        during its transaction, which the store carries out (:attr:`Batch.landed
        <zse.store.Batch.landed>`): served and told as stored, a journalled request in a
        task (:meth:`Untold.tell_soon <zse.zcl.events.Untold.tell_soon>`; it was told only
        after the next restart). (Either way the change was left in memory, and served and
        told only with the mirror's next change, if ever.)"""
        if batch.landed is None:
            for ep, held in before.items():
                self.pool.put_back(ep, held)
            return
        for ep in {e.endpoint for e in events if isinstance(e, MirrorEvent)}:
            self._serve(ep)
        requests = [e for e in events if isinstance(e, NotifiedMessageRequested)]
        for event in events:
            if not isinstance(event, NotifiedMessageRequested):
                self._stream.emit(event)
        self._untold.tell_soon(zip(batch.landed, requests, strict=True))

    async def _on_command(self, msg: ZclMessage) -> foundation.Status | None:
        if not msg.from_server and METERING in getattr(self.client, "in_clusters", ()):
            return None  # a command to the ESI's own meter (its Metering server): not ours
        async with self._lock:
            before = self._before(self.pool.endpoints)  # Request Mirror: the first free one
            step = self.protocol.receive(msg, None, self.clock())
            told = await self._keep(step.events, before)
        return await self._carry_out(self.client, step, told)

    async def raise_flags(
        self, device: t.EUI64 | str, flags: int, attribute: int = FUNCTIONAL_FLAGS
    ) -> NotificationFlagsRaised:
        """Raise ``flags`` (e.g. :class:`~zse.metering.notification.FunctionalFlag`) in the
        notification flag ``attribute`` of ``device``'s mirror, persisted before this returns;
        the meter learns them from its next Mirror Report Attribute Response. ``KeyError``:
        the device has no mirror; ``ValueError``: a bad attribute or flags, or a device
        given as text that is no EUI-64 (:class:`~zse.errors.InvalidEui64`)."""
        return await self._flags(device, attribute, flags, clear=False)

    async def clear_flags(
        self, device: t.EUI64 | str, flags: int, attribute: int = FUNCTIONAL_FLAGS
    ) -> NotificationFlagsRaised:
        """Clear ``flags`` the application no longer wants the meter to act on (those the
        meter fetched with Get Notified Message are cleared already)."""
        return await self._flags(device, attribute, flags, clear=True)

    async def _flags(
        self, device: t.EUI64 | str, attribute: int, flags: int, *, clear: bool
    ) -> NotificationFlagsRaised:
        """Raise or clear ``flags`` and store them (:meth:`_keep`: a write that fails changes
        nothing, :class:`~zse.errors.StoreError` raised), then tell."""
        eui = parse_eui64(device) if isinstance(device, str) else device  # InvalidEui64
        async with self._lock:
            endpoint = self.pool.endpoint_of(eui)
            before = self._before(() if endpoint is None else (endpoint,))
            event = self.protocol.notify(eui, attribute, flags, clear=clear)
            await self._keep((event,), before)
        self._stream.emit(event)
        return event

    async def _on_configure(self, msg: ZclMessage) -> foundation.Status | None:
        """The meter's notification commands: a store write that fails changes nothing (the
        handler raises: answered FAILURE; a Get Notified Message's flags stay raised, so the
        meter's next one still hands the application what is behind them)."""
        async with self._lock:
            before = self._before((msg.dst_ep,))
            step = self.protocol.configure(msg, self.clock())
            told = await self._keep(step.events, before)
        return await self._carry_out(cast(ZclPort, self.endpoints[msg.dst_ep]), step, told)

    async def _on_report(self, msg: ZclMessage) -> foundation.Status | None:
        async with self._lock:
            before = self._before((msg.dst_ep,))
            step = self.protocol.report(msg, self.clock())
            told = await self._keep(step.events, before)
        return await self._carry_out(cast(ZclPort, self.endpoints[msg.dst_ep]), step, told)

    async def _carry_out(
        self, port: ZclPort, step: Step, told: list[tuple[int | None, MirrorEvent]]
    ) -> foundation.Status | None:
        """Tell the application what ``step`` changed, kept (:meth:`_keep`: ``told``, its
        journalled requests), then answer (a journalled request is told and marked in a task:
        the answer does not wait for the listeners)."""
        for event in step.events:
            if not isinstance(event, NotifiedMessageRequested):
                self._stream.emit(event)
        self._untold.tell_soon(told)
        return await carry_out(port, dataclasses.replace(step, events=()), self._stream.emit)
