"""The ZCL frame header (ZCL 2.4.1) with zigpy's own types, just enough to police inter-PAN.

The vocabulary is zigpy's (:class:`zigpy.zcl.foundation.FrameType`, ``Direction`` and
``ZCLHeader``), and encoding is zigpy's ``ZCLHeader.serialize``. Only *decoding* is done here,
for two reasons measured and tested (``tests/interpan/test_interpan_window.py``): every
received inter-PAN frame, spoofed floods included, is policed before anything else, and
``ZCLHeader.deserialize`` costs about 80 us against about 2 us here; and zigpy accepts the
reserved frame types and reserved frame-control bits without saying where, while inter-PAN
input must be refused with a :class:`~zse.errors.InvalidFrame` naming the field and offset.
A property test checks that both decoders agree on every header this one accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from zigpy.types import uint16_t
from zigpy.zcl.foundation import Direction, FrameControl, FrameType, ZCLHeader

from zse.errors import InvalidFrame

__all__ = ["Direction", "FrameType", "ZclHeader"]

_FRAME_TYPES = (FrameType.GLOBAL_COMMAND, FrameType.CLUSTER_COMMAND)
_DIRECTIONS = (Direction.Client_to_Server, Direction.Server_to_Client)


@dataclass(frozen=True, slots=True)
class ZclHeader:
    """A decoded ZCL header; ``length`` is where the command payload starts."""

    frame_type: FrameType
    direction: Direction
    disable_default_response: bool
    manufacturer_code: int | None
    tsn: int
    command_id: int
    length: int

    @classmethod
    def from_bytes(cls, data: bytes) -> ZclHeader:
        """Decode the header at the start of ``data`` (:class:`InvalidFrame` if malformed)."""
        if not data:
            raise InvalidFrame("empty ZCL frame: no frame control at ZCL byte offset 0")
        fc = data[0]
        frame_type = fc & 0x03
        if frame_type > 1:
            raise InvalidFrame(
                f"ZCL frame control 0x{fc:02X} at ZCL byte offset 0: reserved frame type"
            )
        if fc & 0xE0:
            raise InvalidFrame(
                f"ZCL frame control 0x{fc:02X} at ZCL byte offset 0: reserved bits 5-7 set"
            )
        manufacturer: int | None = None
        offset = 1
        if fc & 0x04:
            if len(data) < 3:
                raise InvalidFrame("truncated ZCL manufacturer code at ZCL byte offset 1")
            manufacturer = data[1] | data[2] << 8
            offset = 3
        if len(data) < offset + 2:
            what = "sequence number" if len(data) == offset else "command identifier"
            raise InvalidFrame(
                f"truncated ZCL {what} at ZCL byte offset {min(len(data), offset + 1)}"
            )
        return cls(
            frame_type=_FRAME_TYPES[frame_type],
            direction=_DIRECTIONS[(fc >> 3) & 1],
            disable_default_response=bool(fc & 0x10),
            manufacturer_code=manufacturer,
            tsn=data[offset],
            command_id=data[offset + 1],
            length=offset + 2,
        )

    @classmethod
    def cluster(
        cls,
        direction: Direction,
        command_id: int,
        tsn: int,
        *,
        manufacturer_code: int | None = None,
        disable_default_response: bool = True,
    ) -> ZclHeader:
        """A cluster-specific command header (default responses off: inter-PAN has none)."""
        return cls(
            frame_type=FrameType.CLUSTER_COMMAND,
            direction=direction,
            disable_default_response=disable_default_response,
            manufacturer_code=manufacturer_code,
            tsn=tsn,
            command_id=command_id,
            length=3 if manufacturer_code is None else 5,
        )

    def to_zigpy(self) -> ZCLHeader:
        """The same header as zigpy's :class:`~zigpy.zcl.foundation.ZCLHeader`."""
        control = FrameControl(
            frame_type=self.frame_type,
            is_manufacturer_specific=self.manufacturer_code is not None,
            direction=self.direction,
            disable_default_response=self.disable_default_response,
            reserved=0,
        )
        return ZCLHeader(
            frame_control=control,
            manufacturer=None
            if self.manufacturer_code is None
            else uint16_t(self.manufacturer_code),
            tsn=self.tsn,
            command_id=self.command_id,
        )

    def to_bytes(self) -> bytes:
        """The header's bytes, serialized by zigpy."""
        return bytes(self.to_zigpy().serialize())
