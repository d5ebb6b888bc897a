"""The ZCL frame header (ZCL 2.4.1), just enough to police inter-PAN commands; sans-IO."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from zse.errors import InvalidFrame

__all__ = ["Direction", "FrameType", "ZclHeader"]


class FrameType(enum.IntEnum):
    """ZCL frame type (frame control bits 0-1)."""

    GLOBAL = 0b00
    CLUSTER = 0b01


class Direction(enum.IntEnum):
    """ZCL direction (frame control bit 3)."""

    CLIENT_TO_SERVER = 0
    SERVER_TO_CLIENT = 1


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
            frame_type=FrameType(frame_type),
            direction=Direction((fc >> 3) & 1),
            disable_default_response=bool(fc & 0x10),
            manufacturer_code=manufacturer,
            tsn=data[offset],
            command_id=data[offset + 1],
            length=offset + 2,
        )

    def to_bytes(self) -> bytes:
        fc = int(self.frame_type) | int(self.direction) << 3
        if self.disable_default_response:
            fc |= 0x10
        head = bytes([fc])
        if self.manufacturer_code is not None:
            head = bytes([fc | 0x04]) + self.manufacturer_code.to_bytes(2, "little")
        return head + bytes([self.tsn, self.command_id])
