"""The ZigBee auxiliary security header and the CCM* nonce (ZB 4.5.1, 4.5.2.2).

The auxiliary header follows the NWK header (NWK security) or the APS header (APS security)::

    security control (1) | frame counter (4) | [source address (8)] | [key sequence number (1)]

Security control: bits 0-2 security level, bits 3-4 key identifier, bit 5 extended nonce,
bits 6-7 reserved. The source address is present when the extended nonce bit is set, the key
sequence number when the key identifier is the network key. Multi-byte fields are little-endian;
an EUI-64 is an ``int`` here (``0x0011223344556677``: the printed form, sent 77 66 ... 00).

ZigBee sends the security level subfield as ``000`` (ZB 4.3.1.1 step 7, 4.4.1.1 step 8): the
sender computes the MIC with the real level and then clears it, and the receiver patches its
own level back in (ZB 4.3.1.2 step 2) before computing the nonce and checking the MIC. So
:meth:`AuxHeader.encode` takes the level to write, and :func:`nonce` always uses the real one.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from zse.errors import InvalidSecurityHeader

__all__ = [
    "ENC_MIC_32",
    "MIC_LENGTH",
    "NONCE_LENGTH",
    "AuxHeader",
    "KeyId",
    "nonce",
]

#: Security level 5, ENC-MIC-32 (ZB Table 4.29): encrypted, 4-byte MIC; what ZigBee PRO uses.
ENC_MIC_32 = 5
#: The MIC length of ENC-MIC-32 in bytes.
MIC_LENGTH = 4
#: CCM* nonce length (ZB 4.5.2.2): source address, frame counter, security control.
NONCE_LENGTH = 13

_LEVEL = 0b0000_0111
_KEY_ID_SHIFT = 3
_EXTENDED_NONCE = 0b0010_0000
_RESERVED = 0b1100_0000
_FIXED = struct.Struct("<BI")


class KeyId(enum.IntEnum):
    """The key identifier subfield (ZB 4.5.1.1.2, Table 4.30)."""

    DATA = 0  #: a link key
    NETWORK = 1  #: the network key (key sequence number follows)
    KEY_TRANSPORT = 2  #: HMAC-MMO(link key, 0x00) (ZB 4.5.3)
    KEY_LOAD = 3  #: HMAC-MMO(link key, 0x02) (ZB 4.5.3)


_KEY_IDS = tuple(KeyId)  # by value: 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class AuxHeader:
    """An auxiliary security header (ZB 4.5.1).

    ``source`` is the EUI-64 the header carries (extended nonce set) or ``None``;
    ``key_seq`` is present exactly when ``key_id`` is :attr:`KeyId.NETWORK`.
    """

    key_id: KeyId
    counter: int
    source: int | None = None
    key_seq: int | None = None
    level: int = 0
    reserved: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.counter <= 0xFFFF_FFFF:
            raise ValueError(f"frame counter {self.counter} is not a 32-bit value")
        if self.source is not None and not 0 <= self.source < 1 << 64:
            raise ValueError("source address is not a 64-bit value")
        if (self.key_seq is not None) != (self.key_id == KeyId.NETWORK):
            raise ValueError("a key sequence number goes with the network key, and only with it")
        if self.key_seq is not None and not 0 <= self.key_seq <= 0xFF:
            raise ValueError(f"key sequence number {self.key_seq} is not one byte")
        if not 0 <= self.level <= 7 or not 0 <= self.reserved <= 3:
            raise ValueError("security level is 3 bits, reserved bits 2")

    @property
    def length(self) -> int:
        """The encoded length in bytes (5, 6, 13 or 14)."""
        return 5 + 8 * (self.source is not None) + (self.key_seq is not None)

    def control(self, level: int | None = None) -> int:
        """The security control byte, with ``level`` in place of :attr:`level` if given."""
        return (
            (self.level if level is None else level)
            | (self.key_id << _KEY_ID_SHIFT)
            | (_EXTENDED_NONCE if self.source is not None else 0)
            | (self.reserved << 6)
        )

    def encode(self, level: int | None = None) -> bytes:
        """The header as sent; ``level`` overrides the security level written (see module)."""
        out = _FIXED.pack(self.control(level), self.counter)
        if self.source is not None:
            out += self.source.to_bytes(8, "little")
        if self.key_seq is not None:
            out += bytes((self.key_seq,))
        return out

    @classmethod
    def decode(cls, data: bytes) -> tuple[AuxHeader, bytes]:
        """Decode the header at the start of ``data``; return it and the bytes after it.

        Raises :class:`~zse.errors.InvalidSecurityHeader` naming the field and offset.
        """
        if len(data) < _FIXED.size:
            raise InvalidSecurityHeader(
                f"auxiliary security header at offset 0: needs 5 bytes, got {len(data)}"
            )
        control, counter = _FIXED.unpack_from(data)
        key_id = _KEY_IDS[(control >> _KEY_ID_SHIFT) & 0b11]
        pos = _FIXED.size
        source = None
        if control & _EXTENDED_NONCE:
            if len(data) < pos + 8:
                raise InvalidSecurityHeader(
                    f"auxiliary security header: source address at offset {pos} truncated "
                    f"({len(data)} bytes)"
                )
            source = int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
        key_seq = None
        if key_id == KeyId.NETWORK:
            if len(data) <= pos:
                raise InvalidSecurityHeader(
                    f"auxiliary security header: key sequence number at offset {pos} missing"
                )
            key_seq = data[pos]
            pos += 1
        header = cls(key_id, counter, source, key_seq, control & _LEVEL, control >> 6)
        return header, data[pos:]

    def with_level(self, level: int) -> AuxHeader:
        """This header with another security level (the receiver's patch, ZB 4.3.1.2)."""
        # the constructor, not dataclasses.replace: this runs for every frame received
        return AuxHeader(self.key_id, self.counter, self.source, self.key_seq, level, self.reserved)

    def __repr__(self) -> str:
        source = "None" if self.source is None else f"{self.source:016x}"
        return (
            f"AuxHeader(key_id={self.key_id.name}, counter={self.counter}, source={source}, "
            f"key_seq={self.key_seq}, level={self.level})"
        )


def nonce(header: AuxHeader, source: int, level: int = ENC_MIC_32) -> bytes:
    """The 13-byte CCM* nonce (ZB 4.5.2.2, Figure 4.21): the sender's EUI-64 and the frame
    counter, little-endian, then the security control byte with the real ``level``."""
    return (
        source.to_bytes(8, "little")
        + header.counter.to_bytes(4, "little")
        + bytes((header.control(level),))
    )
