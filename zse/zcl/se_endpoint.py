"""The Smart Energy endpoint on a zigpy coordinator: SE frames in and out of zigpy.

zigpy 2.4 parses ZCL only on the HA and ZLL profiles and drops frames on the SE profile
(0x0109), replies to its own requests included, and it has no server-side cluster objects on
the coordinator. :class:`SeEndpoint` fills that gap for one application object: it registers
an SE endpoint with the radio, takes the SE-profile frames addressed to it before zigpy drops
them (every other frame goes to zigpy unchanged), enforces the SE APS security policy
(SE 5.4.6), answers requests through handlers with the request's TSN, and matches replies to
its own requests. It works on any zigpy radio and on :mod:`zse.sim`.

The API mirrors the simulator's device endpoint (``send``, ``request``, ``reply``,
``add_handler``, ``set_attribute``, ``messages``), so a service runs on either side.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.application import ControllerApplication

from zse.se.ids import ESI_DEVICE_ID, KEY_ESTABLISHMENT, SE_PROFILE_ID
from zse.zcl.delivery import ALL_ENDPOINTS
from zse.zcl.endpoint import ZclEndpointBase, ZclMessage, decode_zcl_header

__all__ = [
    "ESI_DEVICE_ID",
    "SE_ENDPOINT_ID",
    "SE_PROFILE",
    "DroppedFrame",
    "SeEndpoint",
    "SecurityPolicy",
]

LOGGER = logging.getLogger(__name__)

#: The Smart Energy application profile (SE 5.1); the name this module has exported.
SE_PROFILE = SE_PROFILE_ID
#: Default SE endpoint on a zigpy coordinator: zigpy itself owns endpoint 1 (HA profile).
SE_ENDPOINT_ID = 9
#: ZDO Match_Desc_req (ZB 2.4.3.1.7); the response is 0x8006.
_MATCH_DESC_REQ = 0x0006
#: NWK addresses from here on are broadcast (0xFFFC-0xFFFF) or reserved (ZB 3.6.5).
_BROADCASTS = 0xFFF8


@dataclass(frozen=True, kw_only=True)
class DroppedFrame:
    """A frame the endpoint refused, and why (logged, counted and offered to listeners)."""

    reason: str
    src_nwk: int
    cluster_id: int
    payload: bytes


@dataclass
class SecurityPolicy:
    """Which SE frames must arrive APS-encrypted (SE 5.4.6).

    SE application clusters require APS encryption with the partner's link key; Key
    Establishment (which creates that key) is exempt. ``require_aps_encryption=False`` turns
    the check off, e.g. for a bench with devices that do not encrypt.
    """

    require_aps_encryption: bool = True
    exempt_clusters: frozenset[int] = field(default_factory=lambda: frozenset({KEY_ESTABLISHMENT}))

    def admits(self, cluster_id: int, aps_encrypted: bool) -> bool:
        """Whether a received frame on ``cluster_id`` is acceptable."""
        return (
            aps_encrypted or not self.require_aps_encryption or cluster_id in self.exempt_clusters
        )

    def encrypts(self, cluster_id: int) -> bool:
        """Whether zse APS-encrypts unicast frames it sends on ``cluster_id``."""
        return self.require_aps_encryption and cluster_id not in self.exempt_clusters


class SeEndpoint(ZclEndpointBase):
    """An SE endpoint of a zigpy ``ControllerApplication`` (the ESI side of a HAN).

    Create it, then ``await start()`` once the application is running. ``in_clusters`` are
    the server clusters the ESI hosts, ``out_clusters`` the client ones. ``aps_ack``: its
    unicasts ask for an APS acknowledgement (ZB 2.2.8.4.1), as an EmberZNet SE ESI's do
    (EMBER_AF_DEFAULT_APS_OPTIONS has APS_OPTION_RETRY); a send then returns once the
    destination acknowledged it, and fails once the radio gave up resending it.
    """

    def __init__(
        self,
        app: ControllerApplication,
        *,
        endpoint_id: int = SE_ENDPOINT_ID,
        device_type: int = ESI_DEVICE_ID,
        in_clusters: Iterable[int] = (),
        out_clusters: Iterable[int] = (),
        security: SecurityPolicy | None = None,
        first_tsn: int | None = None,
        aps_ack: bool = True,
    ) -> None:
        descriptor = self.simple_descriptor(endpoint_id, device_type, in_clusters, out_clusters)
        super().__init__(descriptor, secrets.randbelow(256) if first_tsn is None else first_tsn)
        self.app = app
        self.security = security or SecurityPolicy()
        #: Whether unicasts ask for an APS acknowledgement and are resent without one (ZB
        #: 2.2.8.4.1): zigpy's ``TransmitOptions.ACK``, which bellows turns into EmberZNet's
        #: APS_OPTION_RETRY and zigpy-znp into Z-Stack's ACK_REQUEST. Broadcasts and group
        #: frames never ask. Read at each send, so it can be changed at any time.
        self.aps_ack = aps_ack
        self.dropped: list[DroppedFrame] = []
        self._drop_listeners: list[Callable[[DroppedFrame], None]] = []
        self._original: Callable[[t.ZigbeePacket], None] | None = None
        self._ieee_by_nwk: dict[int, t.EUI64] = {}

    @staticmethod
    def simple_descriptor(
        endpoint_id: int, device_type: int, in_clusters: Iterable[int], out_clusters: Iterable[int]
    ) -> zdo_t.SimpleDescriptor:
        """The endpoint's simple descriptor on the SE profile, as it is registered."""
        return zdo_t.SimpleDescriptor(
            endpoint=endpoint_id,
            profile=SE_PROFILE,
            device_type=device_type,
            device_version=0,
            input_clusters=list(in_clusters),
            output_clusters=list(out_clusters),
        )

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Register the endpoint with the radio and take SE frames addressed to it."""
        if self._original is not None:
            return
        await self.app.add_endpoint(self.descriptor)
        self._original = self.app.packet_received
        self.app.packet_received = self._packet_received  # type: ignore[method-assign]

    def stop(self) -> None:
        """Give the application's packet handling back to zigpy."""
        if self._original is not None:
            self.app.packet_received = self._original  # type: ignore[method-assign,assignment]
            self._original = None
        for task in self._tasks:
            task.cancel()

    def on_dropped(self, listener: Callable[[DroppedFrame], None]) -> Callable[[], None]:
        """Be told of every frame refused (by the security policy or as malformed)."""
        self._drop_listeners.append(listener)
        return lambda: self._drop_listeners.remove(listener)

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
        """Send through zigpy. Unicast frames are APS-encrypted as the security policy says
        unless ``encrypt`` decides, and ask for an APS acknowledgement when :attr:`aps_ack`
        (ZB 2.2.8.4.1); group and broadcast frames are protected by the network key only and
        never acknowledged, as ZigBee defines."""
        nwk = self.app.state.node_info.nwk
        tx_options = t.TransmitOptions.NONE
        if dst_mode == t.AddrMode.Group:
            address: t.NWK | t.Group | t.BroadcastAddress = t.Group(dst)
        elif dst_mode == t.AddrMode.Broadcast:
            address = t.BroadcastAddress(dst)
        else:
            address = t.NWK(dst)
            if encrypt if encrypt is not None else self.security.encrypts(cluster_id):
                tx_options |= t.TransmitOptions.APS_Encryption
            if self.aps_ack and dst < _BROADCASTS:
                tx_options |= t.TransmitOptions.ACK
        await self.app.send_packet(
            t.ZigbeePacket(
                src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=nwk),
                src_ep=t.uint8_t(self.endpoint_id),
                dst=t.AddrModeAddress(addr_mode=dst_mode, address=address),
                dst_ep=t.uint8_t(dst_ep),
                tsn=t.uint8_t(tsn),
                profile_id=t.uint16_t(SE_PROFILE),
                cluster_id=t.uint16_t(cluster_id),
                data=t.SerializableBytes(data),
                tx_options=tx_options,
                radius=t.uint8_t(0),
            )
        )

    # -- receiving -------------------------------------------------------------------------------

    def _ours(self, packet: t.ZigbeePacket) -> bool:
        if packet.profile_id != SE_PROFILE or packet.src_ep == 0:
            return False
        assert packet.dst is not None
        if packet.dst.addr_mode == t.AddrMode.Group:
            return True
        return packet.dst_ep in (self.endpoint_id, ALL_ENDPOINTS)

    def _packet_received(self, packet: t.ZigbeePacket) -> None:
        if self._se_match_descriptor(packet):
            return
        if not self._ours(packet):
            assert self._original is not None
            self._original(packet)
            return
        assert packet.src is not None
        assert packet.dst is not None
        src_nwk, src_ieee = self._source(packet)
        data = packet.data.serialize()
        encrypted = bool(packet.tx_options & t.TransmitOptions.APS_Encryption)
        if not self.security.admits(int(packet.cluster_id), encrypted):
            self._drop("not APS-encrypted (SE 5.4.6)", src_nwk, int(packet.cluster_id), data)
            return
        try:
            frame_control, manufacturer, tsn, command_id, length = decode_zcl_header(data)
        except ValueError as exc:
            self._drop(f"malformed ZCL header: {exc}", src_nwk, int(packet.cluster_id), data)
            return
        if packet.dst_ep == ALL_ENDPOINTS and not self.takes_all_endpoints_frame(
            int(packet.cluster_id), data
        ):
            return
        msg = ZclMessage(
            src_nwk=src_nwk,
            src_ieee=src_ieee,
            src_ep=int(packet.src_ep or 0),
            dst_ep=self.endpoint_id,
            cluster_id=int(packet.cluster_id),
            profile_id=SE_PROFILE,
            frame_control=frame_control,
            manufacturer=manufacturer,
            tsn=tsn,
            command_id=command_id,
            payload=data[length:],
            aps_encrypted=encrypted,
            group=(
                int(cast(t.Group, packet.dst.address))
                if packet.dst.addr_mode == t.AddrMode.Group
                else None
            ),
            broadcast=packet.dst.addr_mode == t.AddrMode.Broadcast,
            timestamp=asyncio.get_running_loop().time(),
        )
        self._accept(msg)

    def _se_match_descriptor(self, packet: t.ZigbeePacket) -> bool:
        """Answer a ZDO Match_Desc_req for the SE profile (ZB 2.4.3.1.7) from this endpoint.

        zigpy answers every Match_Desc_req that is not for the HA profile with an empty list,
        which would hide the ESI's Key Establishment server from a HAN device looking for it
        (on radios whose firmware passes ZDO requests up). Returns True when handled here.

        The answer, a unicast to the requester, asks for an APS acknowledgement when
        :attr:`aps_ack`, as zigpy's own ZDO answers do (``ZDO.reply`` sends expecting no
        reply, so with ``TransmitOptions.ACK``) and as Z-Stack sends Match_Desc_rsp
        (``ZDP_EPRsp``: AF_MSG_ACK_REQUEST for Match_Desc_rsp only).
        """
        if packet.profile_id != 0 or packet.cluster_id != _MATCH_DESC_REQ or packet.dst_ep != 0:
            return False
        data = packet.data.serialize()
        try:
            tsn, _nwk_of_interest, profile = struct.unpack_from("<BHH", data)
            offset = 5
            in_count = data[offset]
            in_clusters = struct.unpack_from(f"<{in_count}H", data, offset + 1)
            offset += 1 + 2 * in_count
            out_count = data[offset]
            out_clusters = struct.unpack_from(f"<{out_count}H", data, offset + 1)
        except (struct.error, IndexError):
            return False  # malformed: zigpy's ZDO layer reports it as it does for any request
        if profile != SE_PROFILE:
            return False
        match = bool(set(in_clusters) & set(self.in_clusters)) or bool(
            set(out_clusters) & set(self.out_clusters)
        )
        assert packet.dst is not None
        if not match and packet.dst.addr_mode == t.AddrMode.Broadcast:
            return True  # only devices that match answer a broadcast (Match_Desc_rsp, ZB 2.4.4)
        endpoints = [self.endpoint_id] if match else []
        own_nwk = int(self.app.state.node_info.nwk)
        answer = struct.pack("<BBHB", tsn, 0x00, own_nwk, len(endpoints)) + bytes(endpoints)
        assert packet.src is not None
        task = asyncio.get_running_loop().create_task(
            self.app.send_packet(
                t.ZigbeePacket(
                    src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=t.NWK(own_nwk)),
                    src_ep=t.uint8_t(0),
                    dst=packet.src,
                    dst_ep=t.uint8_t(0),
                    tsn=t.uint8_t(tsn),
                    profile_id=t.uint16_t(0),
                    cluster_id=t.uint16_t(_MATCH_DESC_REQ | 0x8000),
                    data=t.SerializableBytes(answer),
                    tx_options=t.TransmitOptions.ACK if self.aps_ack else t.TransmitOptions.NONE,
                    radius=t.uint8_t(0),
                )
            )
        )
        self._track(task)
        return True

    def _source(self, packet: t.ZigbeePacket) -> tuple[int, t.EUI64 | None]:
        assert packet.src is not None
        if packet.src.addr_mode == t.AddrMode.IEEE:
            assert isinstance(packet.src.address, t.EUI64)
            ieee = packet.src.address
            try:
                return int(self.app.get_device(ieee=ieee).nwk), ieee
            except KeyError:
                return 0xFFFE, ieee
        nwk = int(packet.src.address)  # type: ignore[arg-type]
        # zigpy's get_device(nwk=) scans every device; remember the answer and check it
        # against zigpy's table (a dict by EUI-64) each time, so a changed address is noticed.
        cached = self._ieee_by_nwk.get(nwk)
        if cached is not None:
            known = self.app.devices.get(cached)
            if known is not None and known.nwk == nwk:
                return nwk, cached
        # A miss: rebuild the whole map in one pass over zigpy's devices (one scan for all of
        # them rather than one per device).
        self._ieee_by_nwk = {int(d.nwk): ieee for ieee, d in self.app.devices.items()}
        found = self._ieee_by_nwk.get(nwk)
        return nwk, found

    def _drop(self, reason: str, src_nwk: int, cluster_id: int, payload: bytes) -> None:
        frame = DroppedFrame(reason=reason, src_nwk=src_nwk, cluster_id=cluster_id, payload=payload)
        LOGGER.warning(
            "SE endpoint %d dropped a frame from 0x%04X on cluster 0x%04X: %s",
            self.endpoint_id,
            src_nwk,
            cluster_id,
            reason,
        )
        self.dropped.append(frame)
        for listener in list(self._drop_listeners):
            listener(frame)
