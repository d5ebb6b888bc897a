"""A received ZCL frame and what a sans-IO core hands back for it (issue #13: cores at the
ZCL frame, as h11 and aioquic draw the line).

A feature's protocol core (``zse.<feature>.protocol``) takes a :class:`ZclMessage` (the frame
as received: addressing, ZCL header values, payload) with the command decoded from it and the
time, and returns a :class:`Step`: the frames to send (:class:`Send`), the events for the
application, and the status of the Default Response the received frame is owed (ZCL
2.5.12.2). It exposes ``next_deadline()`` and ``handle_timeout(now)`` (another :class:`Step`)
for the one timer of its shell (:class:`zse.zcl.timer.Timer`). The asyncio shell only
decodes, feeds the core, sends by the one delivery rule (:mod:`zse.zcl.delivery`) and emits.
:func:`decode_frame` decodes a whole frame (header and command) in one call, for captures and
tests.

Nothing here does I/O or imports asyncio.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol

import zigpy.types as t
from zigpy.zcl import Cluster, foundation

from zse.errors import InvalidFrame
from zse.zcl.codec import decode_command
from zse.zcl.delivery import DIRECTIONS, Destination

__all__ = [
    "DecodedFrame",
    "FrameCore",
    "Send",
    "Step",
    "ZclMessage",
    "decode_frame",
    "decode_zcl_header",
    "encode_zcl_header",
]


@dataclass(frozen=True, kw_only=True)
class ZclMessage:
    """A ZCL frame received by an endpoint.

    The header arrives as its four values (ZCL 2.4.1); :attr:`header` rebuilds zigpy's
    :class:`~zigpy.zcl.foundation.ZCLHeader` from them when asked, as building one costs more
    than everything else a frame goes through (``benchmarks/drlc_scale.py``).
    """

    src_nwk: int
    src_ieee: t.EUI64 | None
    src_ep: int
    dst_ep: int
    cluster_id: int
    profile_id: int
    frame_control: int
    manufacturer: int | None
    tsn: int
    command_id: int
    payload: bytes
    aps_encrypted: bool
    group: int | None
    broadcast: bool
    timestamp: float

    @functools.cached_property
    def header(self) -> foundation.ZCLHeader:
        """The header as zigpy's ``ZCLHeader``."""
        header, _ = foundation.ZCLHeader.deserialize(
            encode_zcl_header(self.frame_control, self.manufacturer, self.tsn, self.command_id)
        )
        return header

    @property
    def is_cluster_command(self) -> bool:
        """True for a cluster-specific command, False for a global (profile-wide) one."""
        return self.frame_control & _FRAME_TYPE == _CLUSTER_COMMAND

    @property
    def from_server(self) -> bool:
        """True when a server sent it (ZCL frame control direction bit set)."""
        return bool(self.frame_control & _SERVER_TO_CLIENT)

    @property
    def direction(self) -> foundation.Direction:
        """The ZCL direction of the frame."""
        return DIRECTIONS[self.from_server]

    @property
    def disable_default_response(self) -> bool:
        """The frame control's Disable Default Response bit."""
        return bool(self.frame_control & _DISABLE_DEFAULT_RESPONSE)


# ZCL frame control bits (ZCL 2.4.1.1).
_FRAME_TYPE = 0x03
_CLUSTER_COMMAND = 0x01
_MANUFACTURER_SPECIFIC = 0x04
_SERVER_TO_CLIENT = 0x08
_DISABLE_DEFAULT_RESPONSE = 0x10


def decode_zcl_header(data: bytes) -> tuple[int, int | None, int, int, int]:
    """Frame control, manufacturer code (None if absent), TSN, command id and header length
    of a ZCL frame (ZCL 2.4.1). Reads what zigpy's ``ZCLHeader.deserialize`` reads (a
    property test holds them together) without building its objects;
    :class:`~zse.errors.InvalidFrame` (a ``ValueError``) when ``data`` is too short."""
    if not data:
        raise InvalidFrame("empty ZCL frame: no frame control")
    frame_control = data[0]
    offset = 1
    manufacturer: int | None = None
    if frame_control & _MANUFACTURER_SPECIFIC:
        offset = 3
        if len(data) < offset:
            raise InvalidFrame("ZCL frame too short for its manufacturer code")
        manufacturer = data[1] | data[2] << 8
    if len(data) < offset + 2:
        raise InvalidFrame("ZCL frame too short for its sequence number and command id")
    return frame_control, manufacturer, data[offset], data[offset + 1], offset + 2


@dataclass(frozen=True, kw_only=True)
class DecodedFrame:
    """A whole ZCL frame as :func:`decode_frame` reads it: the header's values (ZCL 2.4.1),
    the command and the bytes after its last known field (``rest``)."""

    frame_control: int
    manufacturer: int | None
    tsn: int
    command_id: int
    command: Any
    rest: bytes

    @property
    def from_server(self) -> bool:
        """The direction bit (ZCL 2.4.1.1.3): sent by the cluster's server."""
        return bool(self.frame_control & _SERVER_TO_CLIENT)

    @property
    def disable_default_response(self) -> bool:
        """The Disable Default Response bit (ZCL 2.4.1.1.4)."""
        return bool(self.frame_control & _DISABLE_DEFAULT_RESPONSE)


def decode_frame(cluster: type[Cluster], frame: bytes) -> DecodedFrame:
    """Decode a whole cluster-specific ZCL frame of ``cluster``: header (ZCL 2.4.1), then the
    command its direction bit names, as :func:`~zse.zcl.codec.decode_command` does.

    :class:`~zse.errors.InvalidFrame` for a short header, a profile-wide (global) or
    reserved frame type, a manufacturer-specific command (not the cluster's own), an unknown
    command or a payload that does not fit.
    """
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise InvalidFrame(f"a ZCL frame is bytes, got {type(frame).__name__}")
    data = bytes(frame)
    frame_control, manufacturer, tsn, command_id, length = decode_zcl_header(data)
    kind = frame_control & _FRAME_TYPE
    if kind != _CLUSTER_COMMAND:
        what = "a profile-wide (global) command" if kind == 0 else f"reserved frame type {kind}"
        raise InvalidFrame(
            f"{cluster.__name__}: frame control 0x{frame_control:02X} is {what}, "
            "not a cluster-specific command"
        )
    if manufacturer is not None:
        raise InvalidFrame(
            f"{cluster.__name__}: command 0x{command_id:02X} is specific to manufacturer "
            f"0x{manufacturer:04X}, not one of the cluster's own"
        )
    from_server = bool(frame_control & _SERVER_TO_CLIENT)
    command, rest = decode_command(cluster, command_id, data[length:], from_server=from_server)
    return DecodedFrame(
        frame_control=frame_control,
        manufacturer=manufacturer,
        tsn=tsn,
        command_id=command_id,
        command=command,
        rest=rest,
    )


def encode_zcl_header(
    frame_control: int, manufacturer: int | None, tsn: int, command_id: int
) -> bytes:
    """A ZCL header's bytes (ZCL 2.4.1); the manufacturer-specific bit follows
    ``manufacturer``."""
    if manufacturer is None:
        return bytes((frame_control & ~_MANUFACTURER_SPECIFIC, tsn, command_id))
    return bytes(
        (
            frame_control | _MANUFACTURER_SPECIFIC,
            manufacturer & 0xFF,
            manufacturer >> 8,
            tsn,
            command_id,
        )
    )


@dataclass(frozen=True, kw_only=True)
class Send:
    """A frame a core wants sent: a cluster command to ``to`` by the delivery rule, or, with
    ``reply_to``, a response to that received frame (its sender, its TSN, the opposite
    direction, encrypted as it was: :func:`zse.zcl.delivery.response_delivery`)."""

    cluster_id: int
    command_id: int
    payload: bytes = b""
    to: Destination | None = None
    reply_to: ZclMessage | None = None
    #: For a unicast command: ask for a Default Response (False: rely on the APS ack).
    default_response: bool = True
    #: False for a global (profile-wide) command such as Report Attributes (ZCL 2.4.1.1.1).
    cluster_specific: bool = True
    #: The side that sends a command to ``to`` (ZCL 2.4.1.1.3): True a server (Report
    #: Attributes from a meter), False a client; None lets the endpoint decide from its
    #: clusters, which it cannot when it has both sides of the cluster (an ESI that hosts the
    #: meter and mirrors other meters has Metering server and client on one endpoint).
    from_server: bool | None = None
    #: For a request (:func:`zse.zcl.endpoint.request`): the cluster commands that answer it
    #: (its response's id). None: any cluster command from the peer with its TSN, though TSNs
    #: are each sender's own (ZCL 2.4.1.3) and the peer's own command may carry the same one.
    answers: frozenset[int] | None = None

    def __post_init__(self) -> None:
        if (self.to is None) == (self.reply_to is None):
            raise ValueError("a Send goes either to a destination or in reply to a frame")


@dataclass(frozen=True, kw_only=True)
class Step:
    """What a core decided: frames to send (in order), events, and the Default Response
    status owed to the frame it received (None: the ZCL default, SUCCESS unless a response
    was sent or the frame asked for none)."""

    sends: tuple[Send, ...] = ()
    events: tuple[Any, ...] = ()
    status: foundation.Status | None = None


class FrameCore(Protocol):
    """A sans-IO protocol core at the ZCL frame."""

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Act on a received frame whose payload decoded to ``command``."""

    def next_deadline(self) -> int | None:
        """When :meth:`handle_timeout` next has something to do (the core's time base)."""

    def handle_timeout(self, now: int) -> Step:
        """Do what is due at ``now``."""
