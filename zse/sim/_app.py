"""A zigpy ``ControllerApplication`` whose radio is a node on the simulated air.

The radio plays the part of the coordinator's firmware: it forms the network, sends beacons,
admits devices as a Trust Center (ZB 4.6.3.2), answers the ZDO descriptor requests itself
(as NCP firmware does) and hands everything else to zigpy through ``packet_received``.
"""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import zigpy.application
import zigpy.config as conf
import zigpy.device
import zigpy.exceptions
import zigpy.profiles.zha
import zigpy.profiles.zll
import zigpy.state
import zigpy.types as t
import zigpy.zdo.types as zdo_t

from zse.errors import DecodeError
from zse.security import KeyId
from zse.sim import _frames as f
from zse.sim._air import Medium, Transmission
from zse.sim._node import ApsIndication, RawFrame
from zse.sim._parent import ParentNode
from zse.sim._rejoin import RejoinClaims

__all__ = ["CoordinatorNode", "SimControllerApplication"]

LOGGER = logging.getLogger(__name__)

# The ZigBee Alliance's well-known default TC link key "ZigBeeAlliance09" (ZB 4.6.3.2.2.1).
DEFAULT_TC_LINK_KEY = b"ZigBeeAlliance09"
TRANSPORT_KEY_DELAY = 0.005
#: the MAC capability bit "receiver on when idle" (802.15.4-2006 7.3.1.2)
_RX_ON = int(zdo_t.MACCapabilityFlags.RxOnWhenIdle)


@dataclasses.dataclass
class _PendingKey:
    key: bytes = dataclasses.field(repr=False)  # no key in a repr
    expires: float = 0.0


class CoordinatorNode(ParentNode):
    """The coordinator / Trust Center node under :class:`SimControllerApplication`, the
    parent of every device (sleepy ones poll it, :mod:`zse.sim._parent`)."""

    is_coordinator = True

    def __init__(self, air: Medium, ieee: t.EUI64, app: SimControllerApplication) -> None:
        super().__init__(air, ieee, logical_type=zdo_t.LogicalType.Coordinator)
        self.app = app
        self.permit_until = 0.0
        self.require_install_code = True
        self.pending_keys: dict[t.EUI64, _PendingKey] = {}
        self.children: dict[t.EUI64, int] = {}
        #: rejoins from a new short address awaiting the device's proof (:meth:`_rejoin`)
        self.rejoin_claims = RejoinClaims()
        # the address and MAC capability of each device's latest rejoin from a new address:
        # a sleepy claimant's frames there are held (one entry per device with a link key)
        self._claim_caps: dict[t.EUI64, tuple[int, int]] = {}
        self.nwk_update_id = 0

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    @property
    def permitting(self) -> bool:
        """Whether the association permit is on (joining open)."""
        return self._now() < self.permit_until

    def _permit_request(self, seconds: int) -> None:
        self.permit_until = self._now() + seconds

    def _mac_command(self, tx: Transmission) -> None:
        if not self.joined or not tx.payload:
            return
        command = tx.payload[0]
        if command == f.MAC_CMD_BEACON_REQUEST:
            self._spawn(self._send_beacon())
        elif command == f.MAC_CMD_ASSOCIATION_REQUEST and isinstance(tx.mac.src, t.EUI64):
            self._spawn(
                self._associate(tx.mac.src, tx.payload[1] if len(tx.payload) > 1 else _RX_ON)
            )
        else:
            super()._mac_command(tx)

    async def _send_beacon(self) -> None:
        assert self.extended_pan_id is not None
        fields, zigbee = f.beacon_payload(
            self.extended_pan_id, permit=self.permitting, update_id=self.nwk_update_id
        )
        hdr = f.MacHeader(f.MAC_BEACON, next(self._mac_seq), None, None, self.pan_id, self.nwk)
        await self.air.transmit(self.air.frame(self, f.encode_mac(hdr, fields + zigbee)))

    def _key_for(self, ieee: t.EUI64) -> bytes | None:
        pending = self.pending_keys.get(ieee)
        if pending is not None and pending.expires > self._now():
            return pending.key
        if not self.require_install_code:
            return bytes(self.app.state.network_info.tc_link_key.key) or DEFAULT_TC_LINK_KEY
        return None

    async def _associate(self, ieee: t.EUI64, capability: int = _RX_ON) -> None:
        """Association (802.15.4-2006 7.5.3.1) decided by the Trust Center policy: a device is
        admitted only while joining is permitted and with a link key registered for it. Its
        capability (7.3.1.2) says whether it sleeps: its frames are then held for its polls
        (the Association Response goes at once: a joining device's receiver is on)."""
        key = self._key_for(ieee) if self.permitting else None
        if key is None:
            status, nwk = f.ASSOC_PAN_ACCESS_DENIED, 0xFFFF
            LOGGER.info(
                "refusing %s: %s", ieee, "no link key" if self.permitting else "not permitting"
            )
        else:
            status, nwk = f.ASSOC_SUCCESS, self._allocate(ieee)
        hdr = f.MacHeader(
            f.MAC_COMMAND, next(self._mac_seq), self.pan_id, ieee, self.pan_id, self.ieee, True
        )
        payload = (
            bytes((f.MAC_CMD_ASSOCIATION_RESPONSE,)) + nwk.to_bytes(2, "little") + bytes((status,))
        )
        if not await self.air.transmit(self.air.frame(self, f.encode_mac(hdr, payload))):
            return
        if key is None:
            return
        self.children[ieee] = nwk
        self._learn_address(nwk, ieee)
        self._adopt(ieee, capability)
        await asyncio.sleep(TRANSPORT_KEY_DELAY)
        await self._transport_key(ieee, nwk, key)

    def _aps_command(
        self, nwk: f.NwkHeader, key_id: KeyId | None, source: t.EUI64 | None, payload: bytes
    ) -> None:
        """APS Update Device (ZB 4.4.3) of an unsecured join, from a router the Trust Center
        admitted at that address, APS-secured with its link key: the device joined through
        it (:meth:`_admit_through`)."""
        if (
            payload[:1] != bytes((f.APS_CMD_UPDATE_DEVICE,))
            or key_id != KeyId.DATA
            or not nwk.security
            or source is None
            or self.children.get(source) != nwk.src
        ):
            return
        try:
            ieee, child, status = f.decode_update_device(payload)
        except DecodeError:
            self.stats.malformed += 1
            return
        if status == f.UPDATE_DEVICE_UNSECURED_JOIN and child < 0xFFF8:
            self._spawn(self._admit_through(ieee, child, nwk.src))

    async def _admit_through(self, ieee: t.EUI64, nwk: int, parent: int) -> None:
        """A device joined router ``parent`` at ``nwk`` (ZB 4.6.3.2.2): admitted as a device
        associating with the coordinator is (joining permitted, its link key registered), its
        Transport Key (APS-secured with the key-transport key of that link key, ZB 4.6.3.4.1)
        sent in an APS Tunnel command (ZB 4.4.3) to the router, which passes it on. Refused,
        nothing is sent (the spec's Remove Device to the router is not modelled): the device
        gives up waiting for its key.

        The status says how the device came (ZB Table 4.40; ZBOSS's and Wireshark's names):
        "standard device unsecured join" is a MAC association, a new join; a rejoin through
        a router says "secured rejoin" or "unsecured rejoin". So an unsecured join of a
        device already on the network is refused, counted in ``address_conflicts``, whatever
        the address: any router could otherwise move a device (with
        ``require_install_code=False``) or swap its link key for the well-known one. A device
        that was removed or left joins again as any other; rejoins through a router are not
        modelled (a device here rejoins with the coordinator)."""
        assert self.network_key is not None
        assert self.nwk is not None
        ieee = f.eui64(ieee)
        if ieee in self.children:
            self.stats.address_conflicts += 1
            LOGGER.info("refusing %s joining through 0x%04X: already on the network", ieee, parent)
            return
        key = self._key_for(ieee) if self.permitting else None
        if key is None or self._joined_as(nwk) not in (None, ieee):
            LOGGER.info("refusing %s joining through 0x%04X", ieee, parent)
            return
        self.children[ieee] = nwk
        self._learn_address(nwk, ieee)
        self._adopt(ieee, _RX_ON)
        self.set_link_key(ieee, key)
        await asyncio.sleep(TRANSPORT_KEY_DELAY)
        aps = f.ApsHeader(f.APS_COMMAND, f.APS_DELIVERY_UNICAST, next(self._aps_counter) & 0xFF)
        cmd = f.transport_key_payload(self.network_key, self.network_key_seq, ieee, self.ieee)
        try:
            secured = self._secure_aps(aps, cmd, ieee, KeyId.KEY_TRANSPORT)
        except zigpy.exceptions.DeliveryError:
            LOGGER.warning("no Transport Key to %s: its link key's APS counter is exhausted", ieee)
            return
        tunnel = f.ApsHeader(f.APS_COMMAND, f.APS_DELIVERY_UNICAST, next(self._aps_counter) & 0xFF)
        hdr = f.NwkHeader(parent, self.nwk, 30, next(self._nwk_seq) & 0xFF)
        await self._send_quietly(hdr, f.encode_aps(tunnel, f.tunnel_payload(ieee, secured)))

    def _allocate(self, ieee: t.EUI64) -> int:
        """Stochastic address assignment (ZB 3.6.1.7): random, unique, below 0xFFF8."""
        if ieee in self.children:
            return self.children[ieee]
        used = set(self.children.values()) | {0x0000}
        while True:
            nwk = self.air.rng.randrange(0x0001, 0xFFF8)
            if nwk not in used:
                return nwk

    async def _transport_key(
        self,
        ieee: t.EUI64,
        nwk: int,
        key: bytes | None = None,
        network_key: tuple[bytes, int] | None = None,
        *,
        rejoining: bool = False,
    ) -> bool:
        """APS Transport Key of a network key (the active one unless ``network_key`` names
        another), APS-secured with the key-transport key of the link key shared with the
        device (ZB 4.6.3.4.1); ``key`` installs that link key first. To a joining device
        (``key`` given) or one in a Trust Center rejoin (``rejoining``) the NWK frame is
        sent unsecured: it holds no network key, or not the current one."""
        assert self.network_key is not None
        assert self.nwk is not None
        joining = key is not None or rejoining
        if key is not None:
            self.set_link_key(ieee, key)
        new_key, seq = network_key or (self.network_key, self.network_key_seq)
        aps = f.ApsHeader(f.APS_COMMAND, f.APS_DELIVERY_UNICAST, next(self._aps_counter) & 0xFF)
        cmd = f.transport_key_payload(new_key, seq, ieee, self.ieee)
        nwk_hdr = f.NwkHeader(
            nwk,
            self.nwk,
            1 if joining else 30,
            next(self._nwk_seq) & 0xFF,
            discover_route=0,
            src_ieee=None if joining else self.ieee,
        )
        try:
            secured = self._secure_aps(aps, cmd, ieee, KeyId.KEY_TRANSPORT)
        except zigpy.exceptions.DeliveryError:
            LOGGER.warning("no Transport Key to %s: its link key's APS counter is exhausted", ieee)
            return False
        return await self._send_quietly(nwk_hdr, secured, secure=not joining)

    async def _send_quietly(self, hdr: f.NwkHeader, payload: bytes, *, secure: bool = True) -> bool:
        """:meth:`_send_nwk` of a frame of the Trust Center's own (a key, a Rejoin Response,
        a Leave): False, logged, when a sleepy device's frame was not delivered."""
        try:
            return await self._send_nwk(hdr, payload, secure=secure)
        except zigpy.exceptions.DeliveryError as failed:
            LOGGER.info("%r: NWK frame to 0x%04X not delivered: %s", self, hdr.dst, failed)
            return False

    async def rotate_network_key(self, key: bytes, *, switch_delay: float = 1.0) -> int:
        """Network key rotation (ZB 4.6.3.5): a Transport Key of ``key`` to every device the
        Trust Center holds a link key for, then, ``switch_delay`` seconds later, a Switch Key
        broadcast to all devices (0xFFFF, as the ZigBee PRO R22 certification test
        TP/SEC/BV-24-I expects), so a sleepy child gets it at its next poll; every node (this
        one included) then uses ``key``, and frames secured with the old key are dropped. A
        sleepy child's Transport Key waits for its poll. Returns the new key sequence number."""
        assert self.network_key is not None
        assert self.nwk is not None
        key = bytes(key)
        if len(key) != 16:
            raise ValueError(f"a network key is 16 bytes, got {len(key)}")
        seq = (self.network_key_seq + 1) & 0xFF
        self.alternate_network_key = (seq, key)
        self.air._learn_key(key, f"network key {seq}")
        for ieee, nwk in sorted(self.children.items()):
            if ieee in self.link_keys:
                await self._transport_key(ieee, nwk, network_key=(key, seq))
        await asyncio.sleep(switch_delay)
        aps = f.ApsHeader(f.APS_COMMAND, f.APS_DELIVERY_BROADCAST, next(self._aps_counter) & 0xFF)
        hdr = f.NwkHeader(
            0xFFFF, self.nwk, 30, next(self._nwk_seq) & 0xFF, discover_route=0, src_ieee=self.ieee
        )
        await self._send_nwk(hdr, f.encode_aps(aps, f.switch_key_payload(seq)))
        self.use_network_key(key, seq)
        return seq

    def _joined_as(self, nwk: int) -> t.EUI64 | None:
        ieee = self.address_map.get(nwk)
        if ieee is not None and self.children.get(ieee) == nwk:
            return ieee  # a device the Trust Center admitted at that address
        return super()._joined_as(nwk)

    def _joined_at(self, ieee: t.EUI64) -> int | None:
        nwk = self.children.get(ieee)
        return nwk if nwk is not None else super()._joined_at(ieee)

    def _sleepy_child(self, nwk: int) -> bool:
        """Frames for ``nwk`` are held for a sleepy device there, or, at an address the Trust
        Center knows no device at, for a sleepy device whose rejoin claims it (its Rejoin
        Response and key must wait for its poll)."""
        if super()._sleepy_child(nwk):
            return True
        if not self._claim_caps or nwk in self.address_map:
            return False
        return any(
            address == nwk and not capability & _RX_ON
            for address, capability in self._claim_caps.values()
        )

    def _rejoin_unsecured(self, nwk: f.NwkHeader, payload: bytes) -> bool:
        """An unsecured Rejoin Request with the device's address (a Trust Center rejoin,
        ZB 4.6.3.6): the Trust Center decides on it."""
        return (
            nwk.frame_type == f.NWK_COMMAND
            and payload[:1] == bytes((f.NWK_CMD_REJOIN_REQUEST,))
            and nwk.src_ieee is not None
        )

    async def _rejoin(
        self, ieee: t.EUI64, nwk: int, *, secured: bool, capability: int = _RX_ON
    ) -> None:
        """Answer a Rejoin Request (ZB 3.6.1.4.2), the address kept. Secured with the current
        network key: a secured Rejoin Response. Unsecured (Trust Center rejoin, ZB 4.6.3.6):
        admitted only for a device the Trust Center shares a link key with; an unsecured
        Rejoin Response, then the current network key in a Transport Key APS-secured with
        that link key (the key-transport key, ZB 4.6.3.4.1; SE 5.4.x).

        Neither request proves who sent it (an unsecured one nothing at all, a secured one
        only that its sender holds the network key, as every insider does), so from an
        address other than the one the Trust Center records for the device it moves nothing:
        the device keeps its entry and its traffic its recorded address until a frame its link
        key secures arrives from the new address (:meth:`_claim`, :meth:`_rejoin_proven`,
        within :data:`~zse.sim._rejoin.REJOIN_PROOF_WINDOW`). Anyone else claiming the device
        gets a key it cannot decrypt, or none.

        An EUI-64 the Trust Center holds no link key for (in Smart Energy every admitted
        device has one, from its install code, SE 5.4.8.1; a removed device's is erased) can
        prove nothing, so its rejoin, secured or not, is refused: a Rejoin Response (ZB 3.4.7)
        with the MAC association status PAN access denied (802.15.4-2006 7.3.2.3); nothing
        moved, no claim settled, no record added, nothing told to zigpy. Only a secured rejoin
        from the very address the Trust Center records for it is answered, and changes
        nothing. The request's MAC capability (ZB 3.4.6.3.1) says whether the device sleeps:
        its Rejoin Response and key are then held for its poll (:mod:`zse.sim._parent`)."""
        assert self.nwk is not None
        known = ieee in self.link_keys
        in_place = self.children.get(ieee) == nwk
        admitted = known or (secured and in_place)
        if admitted and in_place:
            self._adopt(ieee, capability)
        elif admitted:
            self._claim_caps[f.eui64(ieee)] = (nwk, capability)
        status = f.ASSOC_SUCCESS if admitted else f.ASSOC_PAN_ACCESS_DENIED
        hdr = f.NwkHeader(
            nwk,
            self.nwk,
            1,
            next(self._nwk_seq) & 0xFF,
            frame_type=f.NWK_COMMAND,
            discover_route=0,
            src_ieee=self.ieee,
        )
        response = bytes((f.NWK_CMD_REJOIN_RESPONSE,)) + nwk.to_bytes(2, "little")
        if not await self._send_quietly(hdr, response + bytes((status,)), secure=secured):
            return
        if not admitted:
            LOGGER.info("refusing the rejoin of %s from 0x%04X: no link key", ieee, nwk)
            return
        if not known:
            return  # in place, without a link key: nothing to record
        if in_place:
            self._moved(ieee, nwk)
        else:
            self._claim(ieee, nwk)
        if not secured:
            await self._transport_key(ieee, nwk, rejoining=True)

    def _moved(self, ieee: t.EUI64, nwk: int) -> None:
        """Record ``ieee`` at ``nwk`` (every other claim of that address or that device void);
        if that is a new address, tell zigpy, as a radio reports a rejoin (``handle_join``:
        zigpy then follows the device's address)."""
        moved = self.children.get(ieee) != nwk
        self.rejoin_claims.settle(nwk, ieee)
        claimed = self._claim_caps.pop(ieee, None)
        if claimed is not None and claimed[0] == nwk:
            self._adopt(ieee, claimed[1])
        self.children[ieee] = nwk
        self._learn_address(nwk, ieee)
        if moved:
            self.app.handle_join(t.NWK(nwk), ieee, t.NWK(self.nwk or 0))

    def _claim(self, ieee: t.EUI64, nwk: int) -> None:
        """Note a rejoin of ``ieee`` from the new address ``nwk``, pending its proof. Claims
        of one address compete, whoever came first: an insider claiming the address (as
        itself or as its victim) does not keep the real device's claim out, and the device's
        proof decides (:meth:`_rejoin_proven`). Bounded (:class:`RejoinClaims`)."""
        self.rejoin_claims.note(nwk, ieee, self._now())

    def _rejoin_claimants(self, nwk: int) -> tuple[t.EUI64, ...]:
        return tuple(
            ieee
            for ieee in self.rejoin_claims.claimants(nwk, self._now())
            if ieee in self.link_keys
        )

    def _rejoin_proven(self, nwk: int, ieee: t.EUI64) -> None:
        """A frame from ``nwk`` secured with the link key of a device whose rejoin from there
        was pending: it holds the key, so it is the device; move it (the other claims of
        that address are dropped)."""
        LOGGER.info("%s proved its rejoin from 0x%04X", ieee, nwk)
        self._moved(ieee, nwk)

    def _nwk_command(self, nwk: f.NwkHeader, payload: bytes) -> None:
        """NWK Leave (ZB 3.4.4) from a device the Trust Center admitted at that address: forget
        it and tell zigpy; a Rejoin Request (ZB 3.4.6): answer it. Their sender is bound to
        the address first (:meth:`Node._sender_bound`)."""
        if payload[:1] == bytes((f.NWK_CMD_REJOIN_REQUEST,)) and nwk.src_ieee is not None:
            capability = payload[1] if len(payload) > 1 else _RX_ON
            self._spawn(
                self._rejoin(nwk.src_ieee, nwk.src, secured=nwk.security, capability=capability)
            )
            return
        if payload[:1] != b"\x04" or nwk.src_ieee is None:
            return
        if self._joined_as(nwk.src) != nwk.src_ieee:
            return  # not a device the Trust Center admitted there: nothing to forget
        self.children.pop(nwk.src_ieee, None)
        self._claim_caps.pop(nwk.src_ieee, None)
        self._orphan(nwk.src_ieee, nwk.src)
        self.link_keys.pop(nwk.src_ieee, None)
        self.rejoin_claims.forget(nwk.src_ieee)
        self.app.handle_leave(t.NWK(nwk.src), nwk.src_ieee)

    async def send_leave(self, ieee: t.EUI64, nwk: int) -> None:
        """NWK Leave command asking a child to leave (request bit set, ZB 3.4.4.3.1)."""
        assert self.nwk is not None
        hdr = f.NwkHeader(
            nwk,
            self.nwk,
            1,
            next(self._nwk_seq) & 0xFF,
            frame_type=1,
            discover_route=0,
            src_ieee=self.ieee,
        )
        await self._send_quietly(hdr, bytes((0x04, 0x40)))
        self._orphan(ieee, nwk)

    def _deliver_app(self, ind: ApsIndication) -> None:
        if ind.dst_mode == t.AddrMode.Group and not self.groups.get(ind.dst_addr):
            return  # not in the radio's multicast table
        self.app._indication(ind)

    def _zdo_up(self, ind: ApsIndication) -> None:
        """ZDO frames the radio does not consume, to zigpy; but an address response
        (NWK_addr_rsp, IEEE_addr_rsp, ZB 2.4.4.2.1-2) contradicting the Trust Center's join
        records is dropped (``address_conflicts``), as a conflicting Device_annce is: zigpy
        follows either (``handle_join``), and would send the device's traffic to the address
        it names, secured with the link key of whoever the Trust Center has there."""
        payload = ind.payload
        if (
            ind.cluster_id in (zdo_t.ZDOCmd.NWK_addr_rsp, zdo_t.ZDOCmd.IEEE_addr_rsp)
            and len(payload) >= 12
            and payload[1] == zdo_t.Status.SUCCESS
            and self._contradicts(
                int.from_bytes(payload[10:12], "little"), t.EUI64(payload[2:10]), "address response"
            )
        ):
            return
        self.app._indication(ind)


class SimControllerApplication(zigpy.application.ControllerApplication):
    """zigpy's coordinator on the simulated air (``device.path`` is informative only).

    Construct it with the :class:`~zse.sim.Air` it transmits on, or use
    :meth:`zse.sim.Air.coordinator` which also forms the network and starts zigpy.
    """

    DISPLAY_NAME = "zse simulator"
    DESCRIPTION = "Simulated 802.15.4 radio (zse.sim)"

    def __init__(self, config: dict[str, Any], *, air: Medium, ieee: t.EUI64 | None = None) -> None:
        super().__init__(config)
        self.air = air
        self._ieee = ieee if ieee is not None else t.EUI64(air.rng.randbytes(8))
        self.node: CoordinatorNode | None = None
        self._nvram: tuple[zigpy.state.NetworkInfo, zigpy.state.NodeInfo] | None = None

    # -- radio connection ----------------------------------------------------------------------

    @property
    def radio(self) -> CoordinatorNode:
        """The coordinator node (the "radio")."""
        if self.node is None:
            raise zigpy.exceptions.ControllerException("simulated radio is not connected")
        return self.node

    async def connect(self) -> None:
        """Attach the radio to the air (idempotent)."""
        if self.node is None:
            try:
                existing = self.air.node(self._ieee)
            except KeyError:
                self.node = CoordinatorNode(self.air, self._ieee, self)
            else:
                if not isinstance(existing, CoordinatorNode):
                    raise zigpy.exceptions.ControllerException(f"{self._ieee} is not a coordinator")
                existing.app = self
                self.node = existing

    async def disconnect(self) -> None:
        """Take the radio off the air; its stored network settings survive (as in NVRAM)."""
        if self.node is not None:
            self.node._tune(None)
            self.node = None

    # -- network settings ----------------------------------------------------------------------

    async def write_network_info(
        self, *, network_info: zigpy.state.NetworkInfo, node_info: zigpy.state.NodeInfo
    ) -> None:
        """Store network and node settings in the radio's (simulated) non-volatile memory."""
        node = self.radio
        unknown = t.EUI64.convert("ff:ff:ff:ff:ff:ff:ff:ff")
        if node_info.ieee not in (None, unknown) and node_info.ieee != node.ieee:
            raise zigpy.exceptions.CannotWriteNetworkSettings(
                "the simulated radio's EUI-64 is fixed when it is created"
            )
        node_info = node_info.replace(ieee=node.ieee, nwk=t.NWK(0x0000))
        self._nvram = (network_info, node_info)
        node.link_keys.clear()
        for key in network_info.key_table:
            node.set_link_key(key.partner_ieee, bytes(key.key))
        node.children = {
            ieee: int(nwk)
            for ieee, nwk in network_info.nwk_addresses.items()
            if ieee in network_info.children
        }
        for ieee, nwk in network_info.nwk_addresses.items():
            node._learn_address(int(nwk), ieee)  # the Trust Center's own address table

    async def load_network_info(self, *, load_devices: bool = False) -> None:
        """Read the settings back from the radio into ``self.state``."""
        if self._nvram is None:
            raise zigpy.exceptions.NetworkNotFormed("the simulated radio has no network")
        network_info, node_info = self._nvram
        node = self.radio
        if node.network_key is not None:
            network_info = network_info.replace(
                network_key=network_info.network_key.replace(
                    key=t.KeyData(node.network_key),
                    seq=t.uint8_t(node.network_key_seq),
                    tx_counter=t.uint32_t(node.nwk_frame_counter),
                )
            )
        if load_devices:
            network_info = network_info.replace(
                children=sorted(node.children),
                nwk_addresses={ieee: t.NWK(nwk) for ieee, nwk in node.children.items()},
                key_table=[
                    zigpy.state.Key(
                        key=t.KeyData(key),
                        partner_ieee=ieee,
                        tx_counter=t.uint32_t(0),
                        rx_counter=t.uint32_t(0),
                        seq=t.uint8_t(0),
                    )
                    for ieee, key in sorted(node.link_keys.items())
                ],
            )
        self.state.network_info = network_info
        self.state.node_info = node_info

    async def reset_network_info(self) -> None:
        """Leave the network and erase the stored settings."""
        node = self.radio
        self._nvram = None
        node.nwk = None
        node._forget_keys()
        node.children.clear()
        node.rejoin_claims.clear()
        node._orphan_all()
        node._tune(None)

    async def start_network(self) -> None:
        """Bring the formed network up on the air and initialise the coordinator device."""
        await self.load_network_info(load_devices=False)
        info, node_info = self.state.network_info, self.state.node_info
        node = self.radio
        node.pan_id = int(info.pan_id)
        node.extended_pan_id = info.extended_pan_id
        key, seq = bytes(info.network_key.key), int(info.network_key.seq)
        if (node.network_key, node.network_key_seq) != (key, seq):
            node.use_network_key(key, seq)
        # the outgoing frame counter never goes back (ZB 4.3.1.1): the radio's, or zigpy's
        node.nwk_frame_counter = max(node.nwk_frame_counter, int(info.network_key.tx_counter))
        node.nwk_update_id = int(info.nwk_update_id)
        node.nwk = int(node_info.nwk)
        node.tc_ieee = node.ieee
        node._tune(int(info.channel))
        node._learn_address(node.nwk, node.ieee)
        coordinator = _SimCoordinatorDevice(self, node.ieee, t.NWK(node.nwk))
        self.devices[node.ieee] = coordinator
        await self.register_endpoints()
        task = coordinator.schedule_initialize()
        if task is not None:
            await task

    # -- the radio's abstract operations ---------------------------------------------------------

    async def add_endpoint(self, descriptor: zdo_t.SimpleDescriptor) -> None:
        """Register an endpoint with the radio so its ZDO describes and matches it."""
        self.radio.descriptors[int(descriptor.endpoint)] = descriptor

    async def permit_ncp(self, time_s: int = 60) -> None:
        """Open (or with 0 close) joining on the coordinator for ``time_s`` seconds."""
        self.radio._permit_request(time_s)

    async def permit_with_link_key(
        self, node: t.EUI64, link_key: t.KeyData, time_s: int = 60
    ) -> None:
        """Admit ``node`` with ``link_key`` (its install-code key) during the next ``time_s``
        seconds, and open joining for that long."""
        radio = self.radio
        radio.pending_keys[node] = _PendingKey(bytes(link_key), radio._now() + time_s)
        self.air._learn_key(bytes(link_key), f"install-code link key {node}")
        await self.permit_ncp(time_s)

    async def force_remove(self, dev: zigpy.device.ZigbeeDevice) -> None:
        """Ask the device to leave with a NWK Leave command, and forget its keys."""
        radio = self.radio
        radio.children.pop(dev.ieee, None)
        radio.pending_keys.pop(dev.ieee, None)
        await radio.send_leave(dev.ieee, int(dev.nwk))
        radio.link_keys.pop(dev.ieee, None)

    async def send_packet(self, packet: t.ZigbeePacket) -> None:
        """Send a zigpy packet; a unicast that is not acknowledged raises ``DeliveryError``.

        A unicast whose ``tx_options`` has ``TransmitOptions.ACK`` (zigpy sets it for a
        request expecting no reply, or ``ask_for_ack=True``) asks for an APS acknowledgement
        and is resent without one (ZB 2.2.8.4.1), as bellows has EmberZNet do
        (EMBER_APS_OPTION_RETRY), and is fragmented when too long for one frame (ZB
        2.2.8.4.5); without it, the MAC acknowledgement ends the send, and a frame too long
        for one frame is refused (``MAC_FRAME_TOO_LONG``)."""
        radio = self.radio
        assert packet.dst is not None
        assert packet.src_ep is not None
        mode = packet.dst.addr_mode
        address: int | t.EUI64
        if mode == t.AddrMode.IEEE:
            assert isinstance(packet.dst.address, t.EUI64)
            ieee = packet.dst.address
            if ieee == radio.ieee:
                nwk: int | None = radio.nwk or 0
            else:
                nwk = radio.children.get(ieee)
                if nwk is None:
                    nwk = radio._nwk_of(ieee)
            if nwk is None:
                raise zigpy.exceptions.DeliveryError(f"unknown device {ieee}")
            mode, address = t.AddrMode.NWK, nwk
        else:
            assert packet.dst.address is not None
            assert not isinstance(packet.dst.address, t.EUI64)
            address = int(packet.dst.address)
        async with self._limit_concurrency(priority=packet.priority):
            await radio.send_aps(
                dst_mode=mode,
                dst_addr=address,
                dst_ep=None if packet.dst_ep is None else int(packet.dst_ep),
                src_ep=int(packet.src_ep),
                cluster_id=int(packet.cluster_id),
                profile_id=int(packet.profile_id),
                payload=packet.data.serialize(),
                encrypt=bool(packet.tx_options & t.TransmitOptions.APS_Encryption),
                radius=int(packet.radius),
                ack=bool(packet.tx_options & t.TransmitOptions.ACK),
            )

    async def _subscribe_to_multicast_group(self, group_id: t.Group, endpoint_id: int) -> None:
        self.radio.groups.setdefault(int(group_id), set()).add(endpoint_id)

    async def _unsubscribe_from_multicast_group(self, group_id: t.Group, endpoint_id: int) -> None:
        self.radio.groups.get(int(group_id), set()).discard(endpoint_id)

    # -- zse extras ----------------------------------------------------------------------------

    def set_link_key(self, partner: t.EUI64, key: bytes) -> None:
        """Install or replace the APS link key shared with ``partner`` (e.g. the CBKE key)."""
        self.radio.set_link_key(partner, key)

    async def rotate_network_key(self, key: bytes | None = None) -> int:
        """Replace the network key (ZB 4.6.3.5): Transport Key of ``key`` (default: drawn from
        the air's seeded RNG) to every device, then Switch Key; returns the new key sequence
        number. The radio's stored settings and ``state.network_info`` follow."""
        new_key = bytes(key) if key is not None else self.air.rng.randbytes(16)
        seq = await self.radio.rotate_network_key(new_key)
        if self._nvram is not None:
            network_info, node_info = self._nvram
            network_info = network_info.replace(
                network_key=network_info.network_key.replace(
                    key=t.KeyData(new_key), seq=t.uint8_t(seq), tx_counter=t.uint32_t(0)
                )
            )
            self._nvram = (network_info, node_info)
            self.state.network_info = network_info
        return seq

    def remove_link_key(self, partner: t.EUI64) -> bool:
        """Erase the link key and the pending install-code key the Trust Center holds for
        ``partner`` (:func:`zse.radios.remove_link_key`); True if it held one. The device can
        then neither join nor Trust-Center-rejoin."""
        radio = self.radio
        held = radio.link_keys.pop(partner, None) is not None
        return radio.pending_keys.pop(partner, None) is not None or held

    def get_link_key(self, partner: t.EUI64) -> bytes | None:
        """The APS link key the coordinator shares with ``partner``, if any."""
        return self.radio.link_keys.get(partner)

    @property
    def require_install_code(self) -> bool:
        """Trust Center policy: only devices with a registered link key join (default)."""
        return self.radio.require_install_code

    @require_install_code.setter
    def require_install_code(self, value: bool) -> None:
        self.radio.require_install_code = value

    async def send_interpan(self, mac_frame: bytes) -> bool:
        """Transmit a raw MAC frame (without FCS), e.g. inter-PAN, on the network's channel."""
        return await self.radio.send_interpan(mac_frame)

    def on_interpan(self, callback: Callable[[RawFrame], None]) -> Callable[[], None]:
        """Register a callback for raw frames the radio's MAC accepts."""
        return self.radio.on_interpan(callback)

    def interpan_frames(self) -> AsyncIterator[RawFrame]:
        """Async-iterate raw frames the radio's MAC accepts."""
        return self.radio.interpan_frames()

    def _indication(self, ind: ApsIndication) -> None:
        """APSDE-DATA.indication to zigpy, as a radio library reports it; an exception zigpy
        raises on a frame (a malformed ZDO frame any holder of the network key can send) is
        logged and the frame dropped, as bellows and zigpy-znp do with their callbacks: it
        never escapes into the air, where it would stop the frame reaching other nodes."""
        try:
            self._packet_received(ind)
        except (zigpy.exceptions.ParsingError, ValueError):
            LOGGER.warning(
                "malformed frame from 0x%04X (profile 0x%04X, cluster 0x%04X) refused by zigpy",
                ind.src_nwk,
                ind.profile_id,
                ind.cluster_id,
            )
        except Exception:
            LOGGER.exception("zigpy failed on a frame from 0x%04X; dropped", ind.src_nwk)

    def _packet_received(self, ind: ApsIndication) -> None:
        if ind.dst_mode == t.AddrMode.Group:
            dst = t.AddrModeAddress(addr_mode=t.AddrMode.Group, address=t.Group(ind.dst_addr))
        elif ind.dst_mode == t.AddrMode.Broadcast:
            dst = t.AddrModeAddress(
                addr_mode=t.AddrMode.Broadcast, address=t.BroadcastAddress(ind.dst_addr)
            )
        else:
            dst = t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=t.NWK(ind.dst_addr))
        self.packet_received(
            t.ZigbeePacket(
                src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=t.NWK(ind.src_nwk)),
                src_ep=t.uint8_t(ind.src_ep),
                dst=dst,
                dst_ep=t.uint8_t(ind.dst_ep if ind.dst_ep is not None else 0xFF),
                tsn=t.uint8_t(ind.payload[0] if ind.profile_id == 0 and ind.payload else 0),
                profile_id=t.uint16_t(ind.profile_id),
                cluster_id=t.uint16_t(ind.cluster_id),
                data=t.SerializableBytes(ind.payload),
                tx_options=(
                    t.TransmitOptions.APS_Encryption
                    if ind.aps_encrypted
                    else t.TransmitOptions.NONE
                ),
                lqi=t.uint8_t(ind.lqi),
                rssi=t.int8s(ind.rssi),
            )
        )


class _SimCoordinatorDevice(zigpy.device.ZigbeeDevice):
    """The coordinator as a zigpy device, described from the radio's own tables: its node
    descriptor and the simple descriptors registered with it, what its ZDO answers
    Node_Desc_req, Active_EP_req and Simple_Desc_req with (ZB 2.4.3.1.3, 2.4.3.1.6,
    2.4.3.1.5). zigpy then asks it nothing.

    Asked over loopback ZDO instead, each request had a timeout on the loop's clock, and the
    answer came a loop turn later. A :class:`~zse.sim.PacedLoop`'s clock ran on at full
    speed while the loop worked, so on a busy machine (``zse mqtt --sim --speed 600``) the
    requests timed out, the interview failed without a word, and zigpy's start-up failed on
    the missing endpoint 1 with a bare ``KeyError: 1``."""

    async def _initialize(self) -> None:
        self.manufacturer = "zse"
        self.model = "Simulated coordinator"
        radio = cast(SimControllerApplication, self._application).radio
        if self.node_desc is None:
            self.node_desc = radio.node_descriptor()
        for endpoint_id, descriptor in sorted(radio.descriptors.items()):
            if endpoint_id == 0 or endpoint_id in self.endpoints:
                continue
            endpoint = self.add_endpoint(endpoint_id)
            endpoint.profile_id = int(descriptor.profile)
            device_type: Any = int(descriptor.device_type)
            for profile in (zigpy.profiles.zha, zigpy.profiles.zll):  # as zigpy types it
                if endpoint.profile_id == profile.PROFILE_ID:
                    device_type = profile.DeviceType(device_type)
            endpoint.device_type = device_type
            for cluster_id in descriptor.input_clusters:
                endpoint.add_input_cluster(cluster_id)
            for cluster_id in descriptor.output_clusters:
                endpoint.add_output_cluster(cluster_id)
        # each endpoint's profile is known: zigpy's interview sends no request
        await super()._initialize()


def default_config(
    *,
    channel: int,
    pan_id: int,
    extended_pan_id: t.ExtendedPanId,
    network_key: bytes,
) -> dict[str, Any]:
    """A zigpy configuration for a quiet simulated coordinator (no DB, no periodic jobs)."""
    return {
        conf.CONF_DEVICE: {conf.CONF_DEVICE_PATH: "sim://air"},
        conf.CONF_DATABASE: None,
        conf.CONF_NWK: {
            conf.CONF_NWK_CHANNEL: channel,
            conf.CONF_NWK_PAN_ID: pan_id,
            conf.CONF_NWK_EXTENDED_PAN_ID: str(extended_pan_id),
            conf.CONF_NWK_KEY: list(network_key),
        },
        conf.CONF_NWK_BACKUP_ENABLED: False,
        conf.CONF_OTA: {conf.CONF_OTA_ENABLED: False},
        conf.CONF_TOPO_SCAN_ENABLED: False,
        conf.CONF_WATCHDOG_ENABLED: False,
        conf.CONF_STARTUP_ENERGY_SCAN: False,
    }
