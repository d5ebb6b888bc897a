"""The one delivery rule of zse's services: how a ZCL frame is addressed and protected.

Every service sends a command with :func:`deliver` and a :class:`Destination`;
:func:`delivery` decides the rest, in one place:

- a **unicast** command is APS-encrypted with the partner's link key (SE 5.4.6) and asks for a
  Default Response unless the sender relies on the APS acknowledgement (ZCL 2.4.1.1.4);
- a **group or broadcast** command is protected by the network key only (APS encryption needs
  a unicast destination, ZB 4.4.1.1) and never asks for a Default Response (ZCL 2.5.12.2:
  none is sent to a group or broadcast frame);
- a **response** goes back to its request's sender, encrypted as the request was, and asks
  for no Default Response (:func:`response_delivery`).

Retries are not a per-frame matter: a frame the radio could not deliver raises, and the
services that owe one (Report Event Status, Message Confirmation) keep it in their outbox.

Devices are named once, by :func:`device_name`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import zigpy.types as t
from zigpy.zcl.foundation import Direction

from zse.errors import InvalidEui64
from zse.installcode import parse_eui64

__all__ = [
    "BROADCAST_RX_ON",
    "Delivery",
    "Destination",
    "Sender",
    "deliver",
    "delivery",
    "device_name",
    "device_names",
    "response_delivery",
]

#: Broadcast to every device whose receiver is on when idle (ZB 3.6.5, Table 3.54).
BROADCAST_RX_ON = 0xFFFD
#: Every endpoint of the destination device (ZB 2.2.4.1.1).
ALL_ENDPOINTS = 0xFF


@dataclass(frozen=True, kw_only=True)
class Destination:
    """Where a frame goes: one device's endpoint, a ZigBee group, or a broadcast."""

    mode: t.AddrMode
    address: int
    endpoint: int = ALL_ENDPOINTS

    @classmethod
    def device(cls, nwk: int, endpoint: int = ALL_ENDPOINTS) -> Destination:
        """A unicast to ``endpoint`` (every SE endpoint: 0xFF) of the device at ``nwk``."""
        return cls(mode=t.AddrMode.NWK, address=nwk, endpoint=endpoint)

    @classmethod
    def group(cls, group_id: int) -> Destination:
        """A ZigBee group (every member's endpoints)."""
        return cls(mode=t.AddrMode.Group, address=group_id)

    @classmethod
    def broadcast(cls, address: int = BROADCAST_RX_ON) -> Destination:
        """A broadcast, to the rx-on-when-idle devices unless ``address`` says otherwise."""
        return cls(mode=t.AddrMode.Broadcast, address=address)

    @classmethod
    def of(
        cls, dst: int, dst_ep: int = ALL_ENDPOINTS, dst_mode: t.AddrMode = t.AddrMode.NWK
    ) -> Destination:
        """From the ``dst`` / ``dst_ep`` / ``dst_mode`` arguments the services take."""
        return cls(mode=dst_mode, address=dst, endpoint=dst_ep)

    @property
    def unicast(self) -> bool:
        """True for one device, False for a group or broadcast."""
        return self.mode not in (t.AddrMode.Group, t.AddrMode.Broadcast)


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """How one frame is sent: APS encryption and the Disable Default Response bit."""

    encrypt: bool
    disable_default_response: bool


#: ZCL frame direction indexed by "sent by a server" (ZCL 2.4.1.1.3).
DIRECTIONS = (Direction.Client_to_Server, Direction.Server_to_Client)


def delivery(destination: Destination, *, default_response: bool = True) -> Delivery:
    """The delivery of a command to ``destination`` (the rule in this module's docstring).
    ``default_response=False``: a unicast relies on the APS acknowledgement instead."""
    if destination.unicast:
        return Delivery(encrypt=True, disable_default_response=not default_response)
    return Delivery(encrypt=False, disable_default_response=True)


def response_delivery(request_encrypted: bool) -> Delivery:
    """The delivery of a response to a request that arrived APS-encrypted or not."""
    return Delivery(encrypt=request_encrypted, disable_default_response=True)


class Sender(Protocol):
    """What :func:`deliver` needs: the ``send`` of a ZCL endpoint
    (:class:`~zse.zcl.endpoint.ZclPort`). Its keywords are named, as the endpoints' are:
    with ``**kwargs`` here, mypy would refuse a :class:`~zse.zcl.se_endpoint.SeEndpoint`
    passed to a service in user code (zse's own choice)."""

    async def send(
        self,
        dst: int,
        dst_ep: int,
        cluster_id: int,
        command_id: int,
        payload: bytes = b"",
        *,
        cluster_specific: bool = True,
        direction: Direction | None = None,
        tsn: int | None = None,
        manufacturer: int | None = None,
        disable_default_response: bool = False,
        encrypt: bool | None = None,
        dst_mode: t.AddrMode = t.AddrMode.NWK,
    ) -> int: ...


async def deliver(
    endpoint: Sender,
    destination: Destination,
    cluster_id: int,
    command_id: int,
    payload: bytes = b"",
    *,
    default_response: bool = True,
    cluster_specific: bool = True,
    from_server: bool | None = None,
) -> int:
    """Send a command from ``endpoint`` to ``destination`` by :func:`delivery` (a global
    command such as Report Attributes with ``cluster_specific=False``; ``from_server`` the
    side sending it, None: the endpoint's choice); returns its TSN."""
    rule = delivery(destination, default_response=default_response)
    side: dict[str, Any] = {}
    if from_server is not None:
        side["direction"] = DIRECTIONS[from_server]
    return await endpoint.send(
        destination.address,
        destination.endpoint,
        cluster_id,
        command_id,
        payload,
        dst_mode=destination.mode,
        cluster_specific=cluster_specific,
        encrypt=rule.encrypt,
        disable_default_response=rule.disable_default_response,
        **side,
    )


def device_name(ieee: Any, nwk: int | None = None) -> str:
    """How zse names a device in its events and persisted records: zigpy's printed EUI-64
    (``00:0d:6f:00:0a:00:00:01``), or ``nwk:0x1A2B`` when only its NWK address is known.

    ``ieee`` may be a :class:`zigpy.types.EUI64` or any printed spelling (parsed as
    :func:`zse.installcode.parse_eui64` does); None falls back on ``nwk``.
    """
    if ieee is None:
        if nwk is None:
            raise ValueError("a device needs an EUI-64 or a NWK address to be named")
        return f"nwk:0x{nwk:04X}"
    if isinstance(ieee, t.EUI64):
        return str(ieee)
    return str(parse_eui64(ieee))  # text only: an int is refused, never read as its digits


def device_names(devices: Iterable[object]) -> list[str]:
    """Devices given as zigpy EUI64s or printed EUI-64s in any spelling, named as the server
    names them (:func:`device_name`: ``00:0d:6f:00:0a:00:00:01``); a name
    the server gave a device known only by its NWK address (``nwk:0x1A2B``) is kept as it is.
    A bare string (one device where a list is expected), an int or bytes raises
    :class:`~zse.errors.InvalidEui64`, never read as digits or as one device per character."""
    if isinstance(devices, (str, bytes, bytearray)):
        raise InvalidEui64(
            f"devices must be a list of EUI-64s, not a single {type(devices).__name__}: "
            f"write [{devices!r}]"
        )
    names = []
    for device in devices:
        if isinstance(device, str) and device.startswith("nwk:"):
            names.append(device)
        elif isinstance(device, (str, t.EUI64)):
            names.append(device_name(device))
        else:
            raise InvalidEui64(
                f"EUI-64 must be given as text or a zigpy EUI64, not {type(device).__name__}"
            )
    return names
