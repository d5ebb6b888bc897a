"""An EmberZNet NCP running as a HAN device, whose radio is a node on the simulator's air.

:class:`HanNcp` extends the coordinator stick of ``tests/cli_sticks/fake_stick.py`` (ASH, the
EZSP frame formats, answers serialized with bellows' own per-version command tables) with the
commands a *joining* device uses, and turns them into what a simulated node does on
:class:`zse.sim.Air`: the node (:class:`NcpNode`, a :class:`~zse.sim.SimDevice`) scans, joins
with the preconfigured key, secures NWK/APS frames with real keys, answers ZDO itself, and
passes application frames and ZDO responses up as ``incomingMessageHandler``. What it models
of an NCP (UG100): ``joinNetwork`` / ``findAndRejoinNetwork`` answer at once and report the
outcome as ``stackStatusHandler``; ``startScan`` reports ``networkFoundHandler`` per beacon then
``scanCompleteHandler``; ``sendUnicast`` answers then ``messageSentHandler``; the network state
survives a host restart (``networkInit``) as the NCP's tokens do; with CBKE data in its tokens
(and the CBKE library, ``getLibraryStatus``) it runs CBKE and signs (``dsaSign``) with zse's
own arithmetic as its firmware.

Keys as EmberZNet keeps them: the Trust Center link key, the one the node's APS frames with
the meter use, apart from the key table ("The Trust Center Link Key is stored separately from
this table", ``ember-configuration-defaults.h``). Only ``importKey`` with the TC_LINK key type
(EZSP 12+) and ``clearTemporaryDataMaybeStoreLinkKey(True)`` change it; the key table
(``addOrUpdateKeyTableEntry``, ``importLinkKey``; emptied by ``clearKeyTable``) is
:attr:`HanNcp.app_keys`, which the node never uses with the Trust Center. Configuration as the
firmware's defaults after a reset (stack profile 0, no key table, 8 multicast entries) until
``setConfigurationValue``; a stack-profile-0 node finds no ZigBee PRO network to join. A
command the firmware was built without (:attr:`HanNcp.lacks`) is answered ``invalidCommand``.

Only the serial port and the radio's firmware are fake: the host side is bellows' real EZSP
and ASH code, the far side zse's simulated meter.
"""

from __future__ import annotations

import asyncio
from typing import Any

import bellows.types as bt
import zigpy.types as zt
import zigpy.zdo.types as zdo_t

from tests.cli_sticks.fake_stick import SUCCESS, StickNcp
from tests.interpan.test_interpan_ezsp_transport import GET_VALUE, SET_VALUE
from zse.cbke.certificate import ImplicitCertificate
from zse.cbke.credentials import Credentials
from zse.cbke.ecdsa import sign as ecdsa_sign
from zse.cbke.keys import confirmation_macs, derive_keys, ecmqv, generate_key_pair
from zse.sim import ApsIndication, JoinRefused, SimDevice
from zse.sim._air import Medium

NETWORK_UP, NETWORK_DOWN, JOIN_FAILED, NOT_JOINED = 0x90, 0x91, 0x94, 0x93
DELIVERY_FAILED, INVALID_CALL = 0x66, 0x70
APS_ENCRYPTION = 0x0020
UNICAST, BROADCAST, MULTICAST = 0x00, 0x04, 0x02
END_DEVICE = 0x03
#: EMBER_LIBRARY_NOT_PRESENT (no CBKE library / data), and a handler status for bad partner data
LIBRARY_NOT_PRESENT, BAD_PARTNER = 0xB5, 0x3A
#: what an EZSP 14+ NCP answers instead of LIBRARY_NOT_PRESENT (bellows' status table,
#: ``SL_STATUS_MAP``: EmberStatus.LIBRARY_NOT_PRESENT is sl_status_t NOT_AVAILABLE)
SL_NOT_AVAILABLE = int(bt.sl_Status.NOT_AVAILABLE)
SL_NOT_FOUND = int(bt.sl_Status.NOT_FOUND)
#: what ``dsaSign``, ``generateCbkeKeys`` and ``calculateSmacs`` answer before their handler
#: (EmberStatus; sl_status_t from EZSP 14)
OPERATION_IN_PROGRESS, IN_PROGRESS_V14 = 0xBA, int(bt.sl_Status.IN_PROGRESS)
#: EmberStatus -> sl_status_t of the stack status callback (UG600, EZSP 14+), as bellows'
#: ``sl_Status.from_ember_status`` has them (CANNOT_JOIN_AS_ROUTER: NOT_JOINED), with the
#: other join failures Silicon Labs' framework handles (``emAfStackStatusHandler``).
SL_STACK_STATUS = {
    int(status): int(bt.sl_Status.from_ember_status(status))
    for status in (
        bt.EmberStatus.NETWORK_UP,
        bt.EmberStatus.NETWORK_DOWN,
        bt.EmberStatus.JOIN_FAILED,
        bt.EmberStatus.CANNOT_JOIN_AS_ROUTER,
        bt.EmberStatus.NO_BEACONS,
        bt.EmberStatus.RECEIVED_KEY_IN_THE_CLEAR,
        bt.EmberStatus.NO_NETWORK_KEY_RECEIVED,
        bt.EmberStatus.NO_LINK_KEY_RECEIVED,
        bt.EmberStatus.PRECONFIGURED_KEY_REQUIRED,
    )
}
CANNOT_JOIN_AS_ROUTER = 0x98
VALUE_EXTENDED_SECURITY_BITMASK = int(bt.EzspValueId.VALUE_EXTENDED_SECURITY_BITMASK)
#: ``invalidCommand`` and its reason for a frame id the firmware lacks: an EzspStatus, an
#: sl_status_t from EZSP 14 (bellows' command tables)
INVALID_COMMAND = 0x58
INVALID_FRAME_ID = int(bt.EzspStatus.ERROR_INVALID_FRAME_ID)
INVALID_FRAME_ID_V14 = int(bt.sl_Status.COMMAND_IS_INVALID)
#: ``ember-configuration-defaults.h``: what the NCP has until the host sets otherwise.
FIRMWARE_CONFIG = {
    bt.EzspConfigId.CONFIG_STACK_PROFILE: 0,
    bt.EzspConfigId.CONFIG_SECURITY_LEVEL: 5,
    bt.EzspConfigId.CONFIG_KEY_TABLE_SIZE: 0,
    bt.EzspConfigId.CONFIG_MULTICAST_TABLE_SIZE: 8,
}
STACK_PROFILE = bt.EzspConfigId.CONFIG_STACK_PROFILE
#: ``EmberLibraryId`` of the CBKE library per suite; ``getLibraryStatus``'s "present" bit
CBKE_LIBRARY = {0x06: 1, 0x0D: 2}
LIBRARY_PRESENT = 0x81
CERTIFICATE = {"getCertificate": 1, "getCertificate283k1": 2}
GENERATE = {"generateCbkeKeys": 1, "generateCbkeKeys283k1": 2}
SMACS = {"calculateSmacs": 1, "calculateSmacs283k1": 2}
CLEAR = {"clearTemporaryDataMaybeStoreLinkKey": 1, "clearTemporaryDataMaybeStoreLinkKey283k1": 2}


class NcpNode(SimDevice):
    """The NCP's own stack on the air: what it receives goes to its NCP, not to endpoints."""

    ncp: HanNcp

    def _deliver_app(self, ind: ApsIndication) -> None:
        if ind.dst_mode == zt.AddrMode.Group and ind.dst_addr not in self.ncp.multicast:
            return  # not in the multicast table: the stack drops it
        self.ncp.incoming(ind)

    def _zdo_up(self, ind: ApsIndication) -> None:
        if ind.cluster_id & 0x8000:  # responses to the host's requests
            self.ncp.incoming(ind)


class HanNcp(StickNcp):
    """A HAN-device NCP (see the module docstring); ``node`` is its radio on ``air``."""

    def __init__(
        self,
        air: Medium,
        ieee: zt.EUI64,
        *,
        version: int = 8,
        tokens: list[Credentials] = (),  # type: ignore[assignment]
        smacs_status: int = SUCCESS,
        libraries: set[int] | None = None,
    ) -> None:
        super().__init__(version, formed=False)
        #: the manufacturing tokens' CBKE data (CA public key, certificate, private key)
        self.tokens = {c.suite.id: c for c in tokens}
        #: the suites whose CBKE library the firmware has (default: those of the tokens)
        self.libraries = set(self.tokens) if libraries is None else libraries
        self.config = dict(FIRMWARE_CONFIG)
        self.extended_security = 0
        #: the configuration and extended security bitmask when joinNetwork was asked
        self.at_join: dict[str, int] | None = None
        #: the key table (EUI-64 -> key); the Trust Center link key is the node's own
        self.app_keys: dict[zt.EUI64, bytes] = {}
        #: the meter refuses routers (EmberZNet's CANNOT_JOIN_AS_ROUTER)
        self.refuse_routers = False
        #: the stack profile the meter's beacons carry (2: ZigBee PRO)
        self.beacon_stack_profile = 2
        self.smacs_status = smacs_status
        #: the dsaSignHandler status (SUCCESS: the signature is made) and, to break the
        #: firmware, a signing key other than the tokens' (None: the tokens')
        self.dsa_status = SUCCESS
        self.dsa_key: bytes | None = None
        #: to break it further: what dsaSignHandler returns instead of the signed message
        self.dsa_reply: bytes | None = None
        self.cbke_log: list[str] = []
        self.stored_keys: list[int] = []
        self._cbke: dict[str, Any] = {}
        self.node = NcpNode(air, ieee)
        self.node.ncp = self
        self.node.on_left(self._left)
        self.security_bitmask: int | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.unplugged = False
        self.joined_epid: zt.ExtendedPanId | None = None
        self.rejoin_requests: list[bool] = []
        self.key_table: dict[zt.EUI64, int] = {}
        self.multicast: dict[int, int] = {}  # group id -> endpoint
        #: report NETWORK_DOWN when a send fails and the parent is silent (an end device's
        #: parent loss); off, the network stays "up" and only the application notices
        self.report_parent_loss = True
        #: the stack status a refused join or rejoin ends in: JOIN_FAILED, or another join
        #: failure EmberZNet reports (NO_BEACONS, NO_NETWORK_KEY_RECEIVED, ...)
        self.join_failure = JOIN_FAILED
        #: commands the firmware was built without: answered ``invalidCommand``
        self.lacks: set[str] = set()
        #: commands answered ``invalidCommand`` for another reason (an EzspStatus before
        #: EZSP 14, an sl_status_t from it: a frame read as truncated, a call out of place)
        self.refuses: dict[str, int] = {}

    # -- commands answered at once -----------------------------------------------------------

    def answers(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        node = self.node
        if name == "networkInit":
            self.network_up = node.joined
            return {"status": SUCCESS if node.joined else NOT_JOINED}
        if name == "addEndpoint":
            answer = super().answers(name, request)
            if answer["status"] == SUCCESS:
                entry = self.endpoints[int(request["endpoint"])]
                node.descriptors[int(request["endpoint"])] = zdo_t.SimpleDescriptor(
                    endpoint=int(request["endpoint"]),
                    profile=entry["profile"],
                    device_type=entry["device"],
                    device_version=0,
                    input_clusters=entry["in"],
                    output_clusters=entry["out"],
                )
            return answer
        if name == "getEui64":
            return {"eui64": node.ieee}
        if name == "getNodeId":
            return {"nodeId": node.nwk if node.nwk is not None else 0xFFFE}
        if name == "getNetworkParameters":
            if not node.joined:
                return {"status": NOT_JOINED}
            assert node.channel is not None
            assert node.pan_id is not None
            return {
                "nodeType": 2 if node.logical_type == zdo_t.LogicalType.Router else END_DEVICE,
                "parameters": {
                    "extendedPanId": zt.EUI64(bytes(self._epid())),
                    "panId": node.pan_id,
                    "radioTxPower": 8,
                    "radioChannel": node.channel,
                    "joinMethod": 0,
                    "nwkManagerId": 0,
                    "nwkUpdateId": 0,
                    "channels": 1 << node.channel,
                },
            }
        if name == "getCurrentSecurityState":
            if node.tc_ieee is None:
                return {"status": NOT_JOINED}
            return {"state": {"bitmask": 0x0010, "trustCenterLongAddress": node.tc_ieee}}
        if name == "setInitialSecurityState":
            state = request["state"]
            self.security_bitmask = int(state.bitmask)
            node.preconfigured_key = bytes(state.preconfiguredKey)
            node.air._learn_key(node.preconfigured_key, f"install-code link key {node.ieee}")
            return {"status": SUCCESS}
        if name == "joinNetwork" and node.joined:
            return {"status": INVALID_CALL}
        if name in ("startScan", "joinNetwork", "leaveNetwork", "findAndRejoinNetwork"):
            return {"status": SUCCESS}
        if name == "setMulticastTableEntry":
            entry = request["value"]
            self.multicast[int(entry.multicastId)] = int(entry.endpoint)
            return {"status": SUCCESS}
        if name == "setConfigurationValue":
            self.config[bt.EzspConfigId(request["configId"])] = int(request["value"])
            return {"status": SUCCESS}
        if name == "getConfigurationValue" and request["configId"] in self.config:
            return {"value": self.config[request["configId"]]}
        if name == "getLibraryStatus":
            suite = CBKE_LIBRARY.get(int(request["libraryId"]))
            return {"status": LIBRARY_PRESENT if suite in self.libraries else 0x00}
        if name == "clearKeyTable":  # every key table entry; the TC link key is not in it
            self.app_keys.clear()
            self.key_table.clear()
            return {"status": SUCCESS}
        if name == "addOrUpdateKeyTableEntry":  # EZSP < 13: the key table, not the TC key
            self.app_keys[request["address"]] = bytes(request["keyData"])
            return {"status": SUCCESS}
        if name == "importKey":  # EZSP 12+: the security manager, by key type
            context = request["context"]
            if context.core_key_type == bt.SecurityManagerKeyType.TC_LINK:
                if node.tc_ieee is None:
                    return {"status": int(bt.sl_Status.INVALID_STATE)}
                node.set_link_key(node.tc_ieee, bytes(request["key"]))
            else:
                self.app_keys[context.eui64] = bytes(request["key"])
            return {"status": SUCCESS}
        # EZSP 13's security manager: a key table of KEY_TABLE_SIZE entries by index
        if name == "findKeyTableEntry":
            entry = self.key_table.get(request["address"])
            return {"index": 0xFF if entry is None else entry}
        if name == "exportLinkKeyByIndex":
            used = int(request["index"]) in self.key_table.values()
            return {"status": SUCCESS if used else SL_NOT_FOUND}
        if name == "importLinkKey":  # the key table (APP_LINK), not the TC key
            self.key_table[request["address"]] = int(request["index"])
            self.app_keys[request["address"]] = bytes(request["key"])
            return {"status": SUCCESS}
        if name == "sendUnicast":
            return {"status": SUCCESS if node.joined else NOT_JOINED, "sequence": 0}
        if name in CERTIFICATE:
            held = self.tokens.get(CERTIFICATE[name])
            size = 48 if CERTIFICATE[name] == 1 else 74
            return {"localCert": held.certificate.data if held else b"\xff" * size}
        if name == "dsaSign":  # queued; the signature comes in dsaSignHandler
            self.cbke_log.append(name)
            queued = IN_PROGRESS_V14 if self.version >= 14 else OPERATION_IN_PROGRESS
            return {"status": queued if 1 in self.tokens else self._no_library()}
        if name in GENERATE or name in SMACS or name in CLEAR:
            self.cbke_log.append(name)
            suite = {**GENERATE, **SMACS, **CLEAR}[name]
            if suite not in self.tokens or suite not in self.libraries:
                return {"status": self._no_library()}
            if name in CLEAR:
                self._clear(suite, bool(request["storeLinkKey"]))
                return {"status": SUCCESS}
            # started; the result comes in the handler (EmberZNet answers "in progress" here,
            # and Silicon Labs' key establishment plugin takes anything else for a failure)
            return {"status": IN_PROGRESS_V14 if self.version >= 14 else OPERATION_IN_PROGRESS}
        return super().answers(name, request)

    def _no_library(self) -> int:
        """LIBRARY_NOT_PRESENT, an sl_status_t (NOT_AVAILABLE) from EZSP 14."""
        return SL_NOT_AVAILABLE if self.version >= 14 else LIBRARY_NOT_PRESENT

    # -- CBKE in the NCP: the firmware's arithmetic is zse's hazmat code ----------------------

    def _generate(self, suite: int) -> None:
        own = self.tokens[suite]
        private, public = generate_key_pair(own.suite)
        self._cbke = {"suite": suite, "private": private, "public": public}
        name = "generateCbkeKeysHandler" if suite == 1 else "generateCbkeKeysHandler283k1"
        self._handler(name, {"status": SUCCESS, "ephemeralPublicKey": public})

    def _smacs(self, suite: int, request: dict[str, Any]) -> None:
        own = self.tokens[suite]
        name = "calculateSmacsHandler" if suite == 1 else "calculateSmacsHandler283k1"
        zeros = {"initiatorSmac": bytes(16), "responderSmac": bytes(16)}
        status = self.smacs_status
        partner = bytes(request["partnerCertificate"])
        theirs = bytes(request["partnerEphemeralPublicKey"])
        try:
            certificate = ImplicitCertificate.from_bytes(partner, own.suite)
            static = certificate.reconstruct_public_key(own.ca_public_key)
            z = ecmqv(own.suite, own.private_key, self._cbke["private"], static, theirs)
        except (ValueError, KeyError):
            status = status or BAD_PARTNER
        if status != SUCCESS:
            self._handler(name, {"status": status, **zeros})
            return
        mac_key, key = derive_keys(z)
        mine = self._cbke["public"]
        if bool(request["amInitiator"]):
            macs = confirmation_macs(mac_key, own.eui64, certificate.subject, mine, theirs)
        else:
            macs = confirmation_macs(mac_key, certificate.subject, own.eui64, theirs, mine)
        self._cbke.update(key=key, partner=zt.EUI64(certificate.subject[::-1]))
        self._handler(name, {"status": SUCCESS, "initiatorSmac": macs[0], "responderSmac": macs[1]})

    def _dsa_sign(self, contents: bytes) -> None:
        """``dsaSign`` as ezsp.h describes it: the last byte is the index of the first byte
        to sign; it is replaced by the signature type 0x01, the bytes from that index on
        (the 0x01 included) are signed with the suite-1 private key (ECDSA, AES-MMO, SE C.2)
        and the message comes back with the 42-byte signature appended."""
        own = self.tokens[1]
        message = contents[:-1] + b"\x01"
        start = contents[-1] if contents else 0
        if self.dsa_status != SUCCESS or start >= len(message):
            self._handler(
                "dsaSignHandler",
                {"status": self.dsa_status or INVALID_CALL, "messageContents": b""},
            )
            return
        key = own.private_key if self.dsa_key is None else self.dsa_key
        signature = ecdsa_sign(own.suite, key, message[start:])
        reply = message + signature if self.dsa_reply is None else self.dsa_reply
        self._handler("dsaSignHandler", {"status": SUCCESS, "messageContents": reply})

    def _clear(self, suite: int, store: bool) -> None:
        if store and "key" in self._cbke and self._cbke["suite"] == suite:
            self.node.set_link_key(self._cbke["partner"], self._cbke["key"])
            self.stored_keys.append(suite)
        self._cbke = {}

    def _epid(self) -> zt.ExtendedPanId:
        assert self.joined_epid is not None
        return self.joined_epid

    # -- what follows the answer ---------------------------------------------------------------

    def after(self, name: str, request: dict[str, Any]) -> None:
        if name == "networkInit" and self.network_up:
            self._stack_status(NETWORK_UP)
        elif name == "startScan":
            mask = int(request["channelMask"])
            self._spawn(self._scan(tuple(c for c in range(11, 27) if mask >> c & 1)))
        elif name == "joinNetwork" and not self.node.joined:
            self.at_join = {
                **{config.name: value for config, value in self.config.items()},
                "extended_security": self.extended_security,
            }
            self._spawn(self._join(request["nodeType"], request["parameters"]))
        elif name == "leaveNetwork":
            self._spawn(self.node.leave())
        elif name == "sendUnicast" and self.node.joined:
            self._spawn(self._send(request))
        elif name == "dsaSign" and 1 in self.tokens:
            self._dsa_sign(bytes(request["messageContents"]))
        elif name in GENERATE and GENERATE[name] in self.tokens.keys() & self.libraries:
            self._generate(GENERATE[name])
        elif name in SMACS and SMACS[name] in self.tokens.keys() & self.libraries:
            self._smacs(SMACS[name], request)
        elif name == "findAndRejoinNetwork":
            if self.network_up:  # a rejoin while joined: the network goes down first
                self.network_up = False
                self._stack_status(NETWORK_DOWN)
            self._spawn(self._rejoin(bool(request["haveCurrentNetworkKey"])))

    async def _scan(self, channels: tuple[int, ...]) -> None:
        for beacon in await self.node.scan(channels):
            self._handler(
                "networkFoundHandler",
                {
                    "networkFound": {
                        "channel": beacon.channel,
                        "panId": beacon.pan_id,
                        "extendedPanId": zt.EUI64(bytes(beacon.extended_pan_id)),
                        "allowingJoin": beacon.permit_joining,
                        "stackProfile": self.beacon_stack_profile,
                        "nwkUpdateId": 0,
                    },
                    "lastHopLqi": beacon.lqi,
                    "lastHopRssi": beacon.rssi,
                },
            )
        self._handler("scanCompleteHandler", {"channel": 0xFF, "status": SUCCESS})

    async def _join(self, node_type: Any, parameters: Any) -> None:
        node = self.node
        node.channels = (int(parameters.radioChannel),)
        node.logical_type = (
            zdo_t.LogicalType.Router if int(node_type) == 2 else zdo_t.LogicalType.EndDevice
        )
        epid = zt.ExtendedPanId(bytes(parameters.extendedPanId.serialize()))
        if self.config[STACK_PROFILE] != self.beacon_stack_profile:
            self._stack_status(JOIN_FAILED)  # no network of its own stack profile
            return
        if self.refuse_routers and int(node_type) == 2:
            self._stack_status(CANNOT_JOIN_AS_ROUTER)
            return
        try:
            await node.join(pan_id=int(parameters.panId), extended_pan_id=epid)
        except JoinRefused:
            self._stack_status(self.join_failure)
            return
        self.joined_epid = epid
        self.parent = node.tc_ieee or node.ieee
        self.network_up = True
        self._stack_status(NETWORK_UP)

    async def _send(self, request: dict[str, Any]) -> None:
        new = self.version >= 14  # EZSP 14 renamed the fields
        aps = request["aps_frame" if new else "apsFrame"]
        status = SUCCESS
        try:
            await self.node.send_aps(
                dst_mode=zt.AddrMode.NWK,
                dst_addr=int(request["nwk" if new else "indexOrDestination"]),
                dst_ep=int(aps.destinationEndpoint),
                src_ep=int(aps.sourceEndpoint),
                cluster_id=int(aps.clusterId),
                profile_id=int(aps.profileId),
                payload=bytes(request["message" if new else "messageContents"]),
                encrypt=bool(int(aps.options) & APS_ENCRYPTION),
            )
        except Exception:
            status = DELIVERY_FAILED
        self._handler("messageSentHandler", {**request, "status": status})
        if (
            status != SUCCESS
            and self.report_parent_loss
            and self.node.nwk is not None
            and not self._parent_heard()
        ):
            # the parent is gone (no MAC acknowledgement, no beacon): the network is down
            self.network_up = False
            self._stack_status(NETWORK_DOWN)

    def _parent_heard(self) -> bool:
        return not self.node.air.is_silent(self.parent)

    parent: zt.EUI64

    async def _rejoin(self, have_key: bool) -> None:
        """``findAndRejoinNetwork`` as ezsp.h describes it: an active scan for the network
        (same PAN) on its channel, then the NWK rejoin on the air (ZB 3.6.1.4.2, by the
        simulator's node): a Rejoin Request secured with the network key the NCP holds
        (``haveCurrentNetworkKey``), or unsecured, when the Trust Center sends the current
        network key APS-secured with the link key it shares with the device (ZB 4.6.3.6).
        The outcome is a ``stackStatusHandler``: NETWORK_UP or JOIN_FAILED."""
        node = self.node
        self.rejoin_requests.append(have_key)
        beacons = await node.scan((node.channel,) if node.channel else node.channels)
        found = any(b.pan_id == node.pan_id for b in beacons)
        if found and await node.rejoin(secure=have_key):
            self.network_up = True
            self._stack_status(NETWORK_UP)
        else:
            self._stack_status(self.join_failure)

    def _stack_status(self, status: int) -> None:
        """``stackStatusHandler``: an EmberStatus, an sl_status_t from EZSP 14."""
        if self.version >= 14:
            status = SL_STACK_STATUS.get(status, status)
        super()._stack_status(status)

    def _left(self) -> None:
        if self.network_up:
            self.network_up = False
            self._stack_status(NETWORK_DOWN)

    # -- the radio hears ------------------------------------------------------------------------

    def incoming(self, ind: ApsIndication) -> None:
        """An APS frame for the host: ``incomingMessageHandler``."""
        if self.unplugged:
            return
        kind = {zt.AddrMode.Group: MULTICAST, zt.AddrMode.Broadcast: BROADCAST}.get(
            ind.dst_mode, UNICAST
        )
        frame = bt.EmberApsFrame(
            profileId=ind.profile_id,
            clusterId=ind.cluster_id,
            sourceEndpoint=ind.src_ep,
            destinationEndpoint=ind.dst_ep if ind.dst_ep is not None else 0xFF,
            options=bt.EmberApsOption(APS_ENCRYPTION if ind.aps_encrypted else 0),
            groupId=ind.dst_addr if kind == MULTICAST else 0,
            sequence=0,
        )
        if self.version >= 14:
            fields = {
                "message_type": kind,
                "aps_frame": frame,
                "nwk": ind.src_nwk,
                "lqi": ind.lqi,
                "rssi": ind.rssi,
                "message": ind.payload,
            }
        else:
            fields = {
                "type": kind,
                "apsFrame": frame,
                "lastHopLqi": ind.lqi,
                "lastHopRssi": ind.rssi,
                "sender": ind.src_nwk,
                "messageContents": ind.payload,
            }
        self._handler("incomingMessageHandler", fields)

    def _ezsp(self, frame: bytes) -> None:
        """``getValue`` / ``setValue`` of the 16-bit extended security bitmask; the rest as
        the coordinator stick's."""
        seq, frame_id, params = self._parse(frame)
        name = self.commands.get(frame_id, ("",))[0]
        if name in self.lacks or name in self.refuses:  # EmberZNet's invalidCommand
            self._seq = seq
            self.frames_seen.append(frame_id)
            self.cbke_log.append(f"invalid {name}")
            reason = INVALID_FRAME_ID_V14 if self.version >= 14 else INVALID_FRAME_ID
            self._respond(seq, INVALID_COMMAND, self._status(self.refuses.get(name, reason)))
            return
        if frame_id in (GET_VALUE, SET_VALUE) and params[:1] == bytes(
            [VALUE_EXTENDED_SECURITY_BITMASK]
        ):
            self._seq = seq
            if frame_id == SET_VALUE:
                self.extended_security = int.from_bytes(params[2 : 2 + params[1]], "little")
                self._respond(seq, SET_VALUE, self._status(SUCCESS))
            else:
                value = self.extended_security.to_bytes(2, "little")
                self._respond(seq, GET_VALUE, self._status(SUCCESS) + bytes([2]) + value)
            return
        super()._ezsp(frame)

    def _frame(self, frame: bytes) -> None:
        if frame[:1] == b"\xc0":  # ASH RST: the NCP reboots; its network stays in its tokens
            self.network_up = False
            self.endpoints.clear()
            self.config = dict(FIRMWARE_CONFIG)  # configuration is volatile
            self.extended_security = 0
            self.host_format = 4  # the host starts again with the v4 frame format
        super()._frame(frame)

    def unplug(self) -> None:
        """The stick is pulled out: the port closes under the host."""
        self.unplugged = True
        self.port.close()

    port: Any  # the fake serial port, given by tests/han_stick/conftest.py

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
