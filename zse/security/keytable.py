"""Wireshark's ZigBee key table: one key a line, as ``zigbee_pc_keys`` reads it.

A line is ``"00112233445566778899AABBCCDDEEFF","Normal","label"``: the 16-byte key in hex
(most significant byte first, as the key is written; "Normal" byte order), then a label.
tshark takes each line as ``-o uat:zigbee_pc_keys:LINE``; Wireshark reads the same lines from
its ``zigbee_pc_keys`` file. An entry's repr never shows the key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["KeyTableEntry", "format_key_table"]


@dataclass(frozen=True, slots=True)
class KeyTableEntry:
    """One key of the table: 16 bytes and a label (what the key is, e.g. "network key 0")."""

    key: bytes
    label: str

    def __post_init__(self) -> None:
        if len(self.key) != 16:
            raise ValueError(f"a ZigBee key is 16 bytes, got {len(self.key)}")
        if '"' in self.label or "\n" in self.label or "\r" in self.label:
            raise ValueError("a key table label has no quote or line break")

    def line(self) -> str:
        """The entry as a line of the key table (without the line break)."""
        return f'"{self.key.hex().upper()}","Normal","{self.label}"'

    def __repr__(self) -> str:
        return f"KeyTableEntry(label={self.label!r})"


def format_key_table(entries: Iterable[KeyTableEntry]) -> str:
    """The key table file: one line per entry, each ending with a line break."""
    return "".join(entry.line() + "\n" for entry in entries)
