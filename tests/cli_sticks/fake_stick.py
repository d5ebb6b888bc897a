"""A whole EmberZNet coordinator behind the fake serial link, enough for bellows' application.

:class:`StickNcp` extends the inter-PAN tests' :class:`FakeNcp` (ASH, the EZSP frame formats,
``version``, ``getValue``/``setValue`` of the passthrough flags, raw sends, received inter-PAN
frames) with the rest of what bellows' ``ControllerApplication`` asks while it connects, starts
the network and admits a device, so ``zse esi`` and ``zse interpan`` run end to end against the
real bellows objects. Only the serial port is fake.

Where :class:`FakeNcp` is written from Silicon Labs' documents to check wire formats, the
commands added here check behaviour, not encoding: their answers are serialized with bellows'
own per-version command tables (a value per response field; zero/empty unless the state below
says otherwise). What they model of an NCP, from UG100: a network that is down after reset and
comes up on ``networkInit`` with a ``stackStatusHandler(NETWORK_UP)`` callback; ``addEndpoint``
refused once the network is up; a coordinator's node id 0x0000, its EUI-64 and network
parameters; ``addTransientLinkKey`` and ``permitJoining`` recorded.
"""

from __future__ import annotations

import importlib
import struct
from typing import Any

import bellows.types as bt
import zigpy.types as zt
from zigpy.zdo import types as zdo_t

from tests.interpan.test_interpan_ezsp_transport import (
    GET_VALUE,
    SEND_RAW,
    SEND_RAW_EXT,
    SET_VALUE,
    VERSION,
    FakeNcp,
)

#: EmberStatus values (UG100).
SUCCESS, INVALID_CALL, NOT_JOINED, NETWORK_UP = 0x00, 0x70, 0x93, 0x90
VALUE_VERSION_INFO, EZSP_ERROR_INVALID_ID = 0x11, 0x36
JOINED_NETWORK, NO_NETWORK = 0x02, 0x00
COORDINATOR = 0x01
NODE_DESC_REQ = 0x0002

NCP_EUI64 = zt.EUI64.convert("00:0d:6f:00:00:00:00:e5")
PAN_ID = 0x1A2B
EXTENDED_PAN_ID = zt.EUI64.convert("00:0d:6f:ff:fe:00:12:34")
CHANNEL = 15


def _default(kind: Any) -> Any:
    """A zero / empty value of a bellows or zigpy wire type."""
    if isinstance(kind, type) and issubclass(kind, zt.Struct):
        return kind(**{f.name: _default(f.type) for f in kind.fields})
    length = getattr(kind, "_length", None)
    if length is not None:  # a fixed-length list type (keys, EUI-64s)
        return kind([_default(kind._item_type)] * length)
    for value in (0, b"", []):
        try:
            return kind(value)
        except (TypeError, ValueError):
            continue
    raise TypeError(f"no default for {kind}")


class StickNcp(FakeNcp):
    """A coordinator NCP for bellows' application (see the module docstring)."""

    HANDLED_BY_BASE = frozenset({VERSION, GET_VALUE, SET_VALUE, SEND_RAW, SEND_RAW_EXT})

    def __init__(self, version: int = 8, *, formed: bool = True) -> None:
        super().__init__(version)
        module = importlib.import_module(f"bellows.ezsp.v{version}")
        protocol = getattr(module, f"EZSPv{version}")
        self.commands: dict[int, tuple[str, Any, Any]] = {
            frame_id: (name, request, response)
            for name, (frame_id, request, response) in protocol.COMMANDS.items()
        }
        self.formed = formed
        self.network_up = False
        self.endpoints: dict[int, dict[str, Any]] = {}
        self.transient_keys: list[tuple[zt.EUI64, bytes]] = []
        self.permit_joining: list[int] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.unicasts: list[dict[str, Any]] = []

    def answers(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        """The response fields that differ from zero / empty for command ``name``."""
        if name == "networkState":
            return {"status": JOINED_NETWORK if self.network_up else NO_NETWORK}
        if name == "networkInit":
            if not self.formed:
                return {"status": NOT_JOINED}
            self.network_up = True
            return {"status": SUCCESS}
        if name == "addEndpoint":
            if self.network_up:
                return {"status": INVALID_CALL}
            # the two cluster lists follow their counts without length prefixes
            clusters = [int(c) for c in request["inputClusterList"]]
            inputs = int(request["inputClusterCount"])
            self.endpoints[int(request["endpoint"])] = {
                "profile": int(request["profileId"]),
                "device": int(request["deviceId"]),
                "in": clusters[:inputs],
                "out": clusters[inputs : inputs + int(request["outputClusterCount"])],
            }
            return {"status": SUCCESS}
        if name == "getNetworkParameters":
            return {
                "nodeType": COORDINATOR,
                "parameters": {
                    "extendedPanId": EXTENDED_PAN_ID,
                    "panId": PAN_ID,
                    "radioTxPower": 8,
                    "radioChannel": CHANNEL,
                    "joinMethod": 0,
                    "nwkManagerId": 0,
                    "nwkUpdateId": 0,
                    "channels": 1 << CHANNEL,
                },
            }
        if name == "getEui64":
            return {"eui64": NCP_EUI64}
        if name == "getConfigurationValue":
            return {
                "value": 5 if request["configId"] == bt.EzspConfigId.CONFIG_SECURITY_LEVEL else 4
            }
        if name == "addTransientLinkKey":
            self.transient_keys.append((request["partner"], bytes(request["transientKey"])))
        if name == "permitJoining":
            self.permit_joining.append(int(request["duration"]))
        if name == "getMfgToken":
            return {"tokenData": b"\xff" * 16}
        return {}

    def _ezsp(self, frame: bytes) -> None:
        seq, frame_id, params = self._parse(frame)
        known = self.commands.get(frame_id)
        if frame_id == GET_VALUE and params[0] not in self.values:
            self._seq = seq
            if params[0] == VALUE_VERSION_INFO:  # build, major, minor, patch, special, type
                info = struct.pack("<HBBBBB", 123, 6, 10, 3, 0, 0xAA)
                self._respond(seq, GET_VALUE, self._status(SUCCESS) + bytes([len(info)]) + info)
            else:
                self._respond(seq, GET_VALUE, self._status(EZSP_ERROR_INVALID_ID) + b"\x00")
            return
        if frame_id in self.HANDLED_BY_BASE or known is None:
            super()._ezsp(frame)
            return
        self._seq = seq
        self.frames_seen.append(frame_id)
        name, request_schema, response_schema = known
        request, _rest = bt.deserialize_dict(params, request_schema)
        self.requests.append((name, request))
        fields = self.answers(name, request)
        self._respond(seq, frame_id, self._encode(response_schema, fields))
        self.after(name, request)

    def after(self, name: str, request: dict[str, Any]) -> None:
        """What the NCP does once it has answered ``name``: callbacks that follow."""
        if name == "networkInit" and self.network_up:
            self._stack_status(NETWORK_UP)
        elif name == "sendUnicast":  # the MAC/APS outcome: delivered
            self.unicasts.append(request)
            self._handler("messageSentHandler", {**request, "status": SUCCESS})
            if request["indexOrDestination"] == 0x0000:
                self._own_zdo(request["apsFrame"], bytes(request["messageContents"]))

    def _encode(self, schema: Any, fields: dict[str, Any]) -> bytes:
        out = b""
        for field, kind in schema.items():
            value = fields.get(field)
            if value is None:
                out += _default(kind).serialize()
            elif isinstance(value, dict):
                out += kind(**value).serialize()
            elif isinstance(value, kind):
                out += value.serialize()
            else:
                out += kind(value).serialize()
        return out

    def _own_zdo(self, aps: Any, contents: bytes) -> None:
        """The NCP answers ZDO requests to itself (zigpy asks its own node descriptor)."""
        if aps.profileId != 0 or aps.clusterId != NODE_DESC_REQ:
            return
        descriptor = zdo_t.NodeDescriptor(
            logical_type=zdo_t.LogicalType.Coordinator,
            complex_descriptor_available=0,
            user_descriptor_available=0,
            reserved=0,
            aps_flags=0,
            frequency_band=zdo_t.NodeDescriptor.FrequencyBand.Freq2400MHz,
            mac_capability_flags=0x8F,
            manufacturer_code=0x1049,
            maximum_buffer_size=82,
            maximum_incoming_transfer_size=128,
            server_mask=0x2C41,
            maximum_outgoing_transfer_size=128,
            descriptor_capability_field=0,
        )
        answer = bytes([contents[0], SUCCESS]) + b"\x00\x00" + descriptor.serialize()
        frame = bt.EmberApsFrame(
            profileId=0,
            clusterId=NODE_DESC_REQ | 0x8000,
            sourceEndpoint=0,
            destinationEndpoint=0,
            options=bt.EmberApsOption.APS_OPTION_NONE,
            groupId=0,
            sequence=aps.sequence,
        )
        self._handler(
            "incomingMessageHandler",
            {"type": 0, "apsFrame": frame, "lastHopLqi": 255, "messageContents": answer},
        )

    def _stack_status(self, status: int) -> None:
        self._handler("stackStatusHandler", {"status": status})

    def _handler(self, wanted: str, fields: dict[str, Any]) -> None:
        """Send the callback ``wanted`` with ``fields`` (the others zero)."""
        for frame_id, (name, _request, response) in self.commands.items():
            if name == wanted:
                self.callback(frame_id, self._encode(response, fields))
                return
        raise AssertionError(f"no {wanted} in EZSP v{self.version}")
