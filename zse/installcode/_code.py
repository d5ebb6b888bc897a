"""Install codes and EUI-64 addresses as people type them (ZigBee spec 05-3474 §4.6.3.4.1).

An install code is 6, 8, 12 or 16 random bytes followed by their CRC-16/X-25, least
significant octet first. It is printed as hex on the device label and typed into utility
portals with whatever separators the label or the person used. The Trust Center link key a
device joins with is the AES-MMO hash of the code including its CRC.
"""

from __future__ import annotations

import binascii
import hashlib
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Protocol

import zigpy.types as t

from zse.errors import InvalidEui64, InvalidInstallCode
from zse.installcode._mmo import mmo_hash

__all__ = [
    "DATA_LENGTHS",
    "InstallCode",
    "RandomBytes",
    "canonical_eui64",
    "crc16",
    "format_eui64",
    "oui",
    "parse_eui64",
]

#: Data lengths in bytes of the four install-code sizes (48, 64, 96 and 128 bits).
DATA_LENGTHS = (6, 8, 12, 16)
_CRC_LENGTH = 2
_BITS = tuple(n * 8 for n in DATA_LENGTHS)
#: Hex digits of a printed code with its CRC, and of its data alone.
_PRINTED_DIGITS = tuple((n + _CRC_LENGTH) * 2 for n in DATA_LENGTHS)
_DATA_DIGITS = tuple(n * 2 for n in DATA_LENGTHS)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_SEPARATORS = frozenset("-:.")
# Bit reversal of every byte value, and of a 16-bit value in two lookups.
_ALL_ZERO = bytes(8)
_ALL_ONES = b"\xff" * 8
_REVERSE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X-25 of ``data``: poly 0x1021 reflected, init 0xFFFF, final xor 0xFFFF.

    This is the install-code CRC of ZigBee spec §4.6.3.4.1.1 (also known as CRC-16/IBM-SDLC).
    It is computed with the C-speed CCITT CRC of :mod:`binascii` on bit-reversed input: a
    reflected CRC is the unreflected one of the reversed bits, reversed.
    """
    crc = binascii.crc_hqx(bytes(data).translate(_REVERSE), 0xFFFF)
    return ((_REVERSE[crc & 0xFF] << 8) | _REVERSE[crc >> 8]) ^ 0xFFFF


class RandomBytes(Protocol):
    """Anything with ``randbytes(n)``: :class:`random.Random`, :class:`secrets.SystemRandom`."""

    def randbytes(self, n: int, /) -> bytes: ...


def _hex_payload(text: object, what: str, error: type[ValueError]) -> str:
    """The hex digits of ``text`` with separators removed, or ``error`` saying what is wrong.

    Accepted separators: any whitespace (including no-break spaces copied from PDFs), ``-``,
    ``:`` and ``.``; an optional ``0x`` prefix. Positions in messages are 1-based columns of
    the original text.
    """
    if not isinstance(text, str):
        raise error(f"{what} must be given as text, not {type(text).__name__}")
    if text and _HEX_DIGITS.issuperset(text):
        return text  # the common case, as exported by manufacturers: bare hex
    stripped = text.strip()
    offset = text.index(stripped[0]) if stripped else 0
    if stripped[:2] in ("0x", "0X"):
        stripped, offset = stripped[2:], offset + 2
    if not stripped:
        raise error(f"{what} is empty")
    digits: list[str] = []
    for index, char in enumerate(stripped):
        if char in _HEX_DIGITS:
            digits.append(char)
        elif _ESCAPED_BYTES[0] <= char <= _ESCAPED_BYTES[1]:
            raise error(
                f"{what} has a byte that is not UTF-8 text (0x{ord(char) - 0xDC00:02X}) at "
                f"position {index + offset + 1}"
            )
        elif not (char.isspace() or char in _SEPARATORS):
            raise error(
                f"{what} has a non-hex character {char!r} at position {index + offset + 1}"
                f"{_unicode_name(char)}"
            )
    return "".join(digits)


#: The lone surrogates Python's ``surrogateescape`` makes of bytes 0x80-0xFF that are not
#: UTF-8 (PEP 383): how a byte of a command-line argument in another encoding arrives.
_ESCAPED_BYTES = ("\udc80", "\udcff")


def _unicode_name(char: str) -> str:
    """For a character outside ASCII, its code point and name, e.g. `` (U+0410 CYRILLIC
    CAPITAL LETTER A)``: a lookalike (a full-width digit, a Cyrillic letter) or an invisible
    mark (a zero-width space, a right-to-left mark) looks like nothing wrong when quoted."""
    if char.isascii():
        return ""
    name = unicodedata.name(char, "")
    return f" (U+{ord(char):04X}{' ' + name if name else ''}: not an ASCII hex digit)"


@dataclass(frozen=True, slots=True)
class InstallCode:
    """A validated install code: its data bytes and CRC.

    ``str(code)`` is the canonical printed form, upper-case hex of the data followed by the CRC
    least significant octet first, e.g. ``83FED3407A932B70``.
    """

    data: bytes
    crc: int = field(compare=False)

    def __post_init__(self) -> None:
        if len(self.data) not in DATA_LENGTHS:
            raise InvalidInstallCode(
                f"install code data must be 6, 8, 12 or 16 bytes (48, 64, 96 or 128 bits), "
                f"got {len(self.data)} bytes"
            )
        if self.crc != crc16(self.data):
            # no digit of either CRC: each is 16 bits of the secret code
            raise InvalidInstallCode("install code CRC does not match its data")

    @classmethod
    def parse(cls, text: str) -> InstallCode:
        """Parse a code as printed or typed: hex with its CRC, any case and separators.

        Raises :class:`~zse.errors.InvalidInstallCode` saying what is wrong: the length (with
        the allowed ones), the first non-hex character and its position, or a CRC mismatch
        with its likely cause; never a digit of the code (it gives the device's link key).
        """
        digits = _hex_payload(text, "install code", InvalidInstallCode)
        count = len(digits)
        if count not in _PRINTED_DIGITS:
            hint = ""
            if count in _DATA_DIGITS:
                hint = " (is the 4-digit CRC missing?)"
            raise InvalidInstallCode(
                f"install code has {count} hex digits; a code is 12, 16, 24 or 32 digits of "
                f"data followed by a 4-digit CRC, so 16, 20, 28 or 36 digits in all{hint}"
            )
        return cls.from_bytes(bytes.fromhex(digits))

    @classmethod
    def from_bytes(cls, raw: bytes | bytearray | memoryview) -> InstallCode:
        """Validate raw code bytes with the CRC at the end (least significant octet first)."""
        raw = bytes(raw)
        if len(raw) - _CRC_LENGTH not in DATA_LENGTHS:
            raise InvalidInstallCode(
                f"install code is {len(raw)} bytes; with its 2-byte CRC it must be "
                "8, 10, 14 or 18 bytes"
            )
        data, received = raw[:-_CRC_LENGTH], raw[-_CRC_LENGTH:]
        expected = crc16(data)
        if int.from_bytes(received, "little") != expected:
            # No digit of the code, not even a CRC: the code is a secret (it gives the device's
            # link key), the typed CRC may be digits of its data (a 64-bit code without its
            # CRC) and the data's CRC is the real code's last four digits.
            if int.from_bytes(received, "big") == expected:
                why = "the CRC's two octets look swapped: it is printed least significant first"
            else:
                why = "a digit is mistyped, or the code was read from the wrong label"
            if len(raw) == 8:
                # 16 digits are also the data of a 64-bit code, its CRC left out
                why += "; or is it a 64-bit code typed without its 4-digit CRC?"
            raise InvalidInstallCode(
                "install code CRC mismatch: the last 4 digits are not the CRC of the digits "
                f"before them ({why})"
            )
        code = object.__new__(cls)
        object.__setattr__(code, "data", data)
        object.__setattr__(code, "crc", expected)
        return code

    @classmethod
    def from_data(cls, data: bytes | bytearray | memoryview) -> InstallCode:
        """The install code for ``data`` (6, 8, 12 or 16 bytes), with its CRC computed."""
        data = bytes(data)
        if len(data) not in DATA_LENGTHS:
            raise InvalidInstallCode(
                f"install code data must be 6, 8, 12 or 16 bytes (48, 64, 96 or 128 bits), "
                f"got {len(data)} bytes"
            )
        return cls(data, crc16(data))

    @classmethod
    def generate(cls, bits: int = 128, rng: RandomBytes | None = None) -> InstallCode:
        """A new random code of ``bits`` (48, 64, 96 or 128), for manufacturers.

        ``rng`` defaults to the operating system's CSPRNG; pass a seeded
        :class:`random.Random` only for reproducible test data, never for real devices.
        """
        if bits not in _BITS:
            raise InvalidInstallCode(f"install codes are 48, 64, 96 or 128 bits, not {bits}")
        source: RandomBytes = rng if rng is not None else secrets.SystemRandom()
        return cls.from_data(source.randbytes(bits // 8))

    @property
    def bits(self) -> int:
        """Size of the code without its CRC: 48, 64, 96 or 128."""
        return len(self.data) * 8

    @property
    def crc_bytes(self) -> bytes:
        """The CRC as it follows the data on the wire and on the label."""
        return self.crc.to_bytes(_CRC_LENGTH, "little")

    def __bytes__(self) -> bytes:
        return self.data + self.crc_bytes

    @property
    def link_key(self) -> bytes:
        """The preconfigured Trust Center link key: AES-MMO of code and CRC (§4.6.3.4.1)."""
        return mmo_hash(bytes(self))

    def __str__(self) -> str:
        return bytes(self).hex().upper()

    def grouped(self, size: int = 4, separator: str = " ") -> str:
        """The printed form in groups, e.g. ``83FE D340 7A93 2B70`` as on many labels."""
        text = str(self)
        return separator.join(text[i : i + size] for i in range(0, len(text), size))

    @property
    def fingerprint(self) -> str:
        """4 hex digits telling codes apart in logs and reprs without revealing them (the
        start of SHA-256 over the code: 16 bits, not enough to recover a code).

        They do tell something: anyone who reads a repr or a log can check a guessed code
        against them, which rules out all but 1 in 65,536 wrong guesses (the CRC rules out
        none: a guess's CRC is computed from its data). Never an identity (two codes share a
        fingerprint 1 time in 65,536), and not for logs readable by those who must not narrow
        down a code."""
        return hashlib.sha256(b"zse install code " + bytes(self)).hexdigest()[:4]

    def __repr__(self) -> str:
        # Never the code itself: it is the device's link key in all but name (SE 5.4.8.1).
        return f"<InstallCode {self.bits}-bit, fingerprint {self.fingerprint}>"


def _eui64_octets(text: str) -> bytes:
    """The eight octets of a printed EUI-64, most significant first, validated."""
    digits = _hex_payload(text, "EUI-64", InvalidEui64)
    if len(digits) != 16:
        raise InvalidEui64(f"EUI-64 has {len(digits)} hex digits; it must have 16 (8 octets)")
    raw = bytes.fromhex(digits)
    if raw == _ALL_ZERO:
        raise InvalidEui64("EUI-64 00:00:00:00:00:00:00:00 is all zeros: not a device address")
    if raw == _ALL_ONES:
        raise InvalidEui64(
            "EUI-64 FF:FF:FF:FF:FF:FF:FF:FF is all ones (the unassigned/broadcast value): "
            "not a device address"
        )
    return raw


def parse_eui64(text: str) -> t.EUI64:
    """Parse an EUI-64 (IEEE MAC address) as printed: most significant octet first.

    Accepts any case and ``:``/``-``/``.``/space separators, as in ``001BC5007000052B`` or
    ``00:1b:c5:00:70:00:05:2b``. The all-zero and all-FF addresses are refused: no device has
    them. Raises :class:`~zse.errors.InvalidEui64`.
    """
    return t.EUI64(_eui64_octets(text)[::-1])


def canonical_eui64(text: str) -> str:
    """Validate a printed EUI-64 and give it back as 16 upper-case hex digits."""
    return _eui64_octets(text).hex().upper()


def format_eui64(eui64: t.EUI64, separator: str = "") -> str:
    """The printed form of ``eui64`` in upper case, e.g. ``001BC5007000052B``."""
    raw = bytes(eui64)[::-1]
    return (raw.hex(separator) if separator else raw.hex()).upper()


def oui(eui64: t.EUI64) -> str:
    """The organisationally unique identifier (first three printed octets), e.g. ``00-1B-C5``."""
    return format_eui64(eui64, "-")[:8]
