"""The keys a capture is decrypted with, and Wireshark's ZigBee key table as a file.

A :class:`KeyRing` holds 16-byte keys, each with a label; as in Wireshark, every key is tried
as a network key (NWK security) and as a link key (APS security, and the key-transport and
key-load keys derived from it, ZB 4.5.3). The key that opened a NWK frame of a key sequence
number is tried first for the next one, so a capture costs one decryption per frame once its
keys are known. Keys come from the command line, from install codes (the link key is the
code's MMO hash, :mod:`zse.installcode`), from a key file, and from Transport Key commands
seen decrypted in the capture (:meth:`KeyRing.learn`).

The key file is Wireshark's ZigBee key table (``zigbee_pc_keys``), one key a line::

    "00112233445566778899AABBCCDDEEFF","Normal","network key"

the key in hex (``:``, ``-`` or spaces between bytes allowed), its byte order (``Normal``, or
``Reverse`` for a key written last byte first) and a label; blank lines and ``#`` comments are
skipped. A bad line raises :class:`KeyFileError` naming the line and what is wrong, never the
key. Key material never appears in a repr, a log or an error message.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from zse.errors import DecodeError, InvalidInstallCode
from zse.installcode import InstallCode

__all__ = ["LEARNED_LIMIT", "Key", "KeyFileError", "KeyRing", "parse_key", "read_key_file"]

KEY_LENGTH = 16


class KeyFileError(DecodeError):
    """A key file line (or a key given as an option) that is not a usable key; the
    message names the line and the problem, never the key."""


@dataclass(frozen=True, slots=True)
class Key:
    """A 16-byte key and where it came from (the label printed instead of the key)."""

    key: bytes = field(repr=False)
    label: str

    def __repr__(self) -> str:
        return f"Key(label={self.label!r})"


def parse_key(text: str, where: str = "key") -> bytes:
    """A 16-byte key from hex, bytes optionally separated by ``:``, ``-`` or spaces."""
    digits = text.strip()
    for separator in (":", "-", " "):
        digits = digits.replace(separator, "")
    if digits.lower().startswith("0x"):
        digits = digits[2:]
    if len(digits) != 2 * KEY_LENGTH:
        raise KeyFileError(f"{where}: a key is 32 hex digits, got {len(digits)} characters")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise KeyFileError(f"{where}: a key is hex digits only") from None


def _said(cell: str) -> str:
    """A byte-order cell as an error shows it: a short word as it is (``'Normall'``), anything
    else by its length only, since it may be a key in the wrong column."""
    word = cell.strip()
    if re.fullmatch(r"[A-Za-z]{1,10}", word) and not re.fullmatch(r"[0-9A-Fa-f]{8,}", word):
        return repr(word)
    return f"a value of {len(cell)} characters"


def read_key_file(lines: Iterable[str], name: str = "key file") -> Iterator[Key]:
    """The keys of a Wireshark ZigBee key table (see the module); :class:`KeyFileError`
    names the first bad line."""
    for number, line in enumerate(lines, 1):
        where = f"{name} line {number}"
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            cells = next(csv.reader([text], skipinitialspace=True))
        except csv.Error:
            raise KeyFileError(f"{where}: not a CSV line of quoted fields") from None
        if len(cells) != 3:
            raise KeyFileError(
                f'{where}: {len(cells)} fields; a line is "KEY","Normal"|"Reverse","label"'
            )
        key_text, order, label = cells
        key = parse_key(key_text, where)
        if order.strip().lower() == "reverse":
            key = key[::-1]
        elif order.strip().lower() != "normal":
            raise KeyFileError(f"{where}: byte order must be Normal or Reverse, not {_said(order)}")
        yield Key(key, label.strip() or f"line {number}")


LEARNED_LIMIT = 64  #: keys learned from Transport Keys a capture keeps (oldest dropped)


class KeyRing:
    """Every key to try, and the network key found for each key sequence number.

    Keys given (command line, key file, install codes) are always tried. Keys learned from
    Transport Keys are bounded: at most :data:`LEARNED_LIMIT` are kept (the oldest dropped and
    counted in :attr:`dropped`), and a learned network key is tried only for NWK frames of its
    key sequence number, so a capture full of Transport Keys costs a bounded number of
    decryptions a frame (hostile-input audit D2)."""

    __slots__ = ("_by_seq", "_known", "_learned", "_limit", "dropped", "given", "keys")

    def __init__(self, keys: Iterable[Key] = (), *, learned_limit: int = LEARNED_LIMIT) -> None:
        self.keys: list[Key] = []  #: the keys held: those given, then those learned
        self._known: set[bytes] = set()
        self._by_seq: dict[int, Key] = {}
        #: learned key -> the key sequence number it was sent with (None: a link key)
        self._learned: dict[Key, int | None] = {}
        self._limit = learned_limit
        self.given = 0  #: how many of :attr:`keys` were given (the rest were learned)
        self.dropped = 0  #: learned keys dropped to keep at most ``learned_limit``
        for key in keys:
            self.add(key)

    def add(self, key: Key) -> bool:
        """Add ``key`` unless already held (under any label); True if it is new."""
        if len(key.key) != KEY_LENGTH:
            raise KeyFileError(f"{key.label}: a key is 16 bytes, got {len(key.key)}")
        if key.key in self._known:
            return False
        self._known.add(key.key)
        self.keys.insert(self.given, key)
        self.given += 1
        return True

    @property
    def learned(self) -> list[Key]:
        """The learned keys still held, oldest first."""
        return self.keys[self.given :]

    def add_install_code(self, code: str, label: str | None = None) -> Key:
        """Add the link key of an install code (its MMO hash, ZB 4.6.3.4) and return it."""
        try:
            parsed = InstallCode.parse(code)
        except InvalidInstallCode as exc:
            raise KeyFileError(f"{label or 'install code'}: {exc}") from None
        key = Key(parsed.link_key, label or "install code")
        self.add(key)
        return key

    def network_keys(self, key_seq: int) -> list[Key]:
        """The keys to try for a NWK frame of ``key_seq``: the one that opened that
        sequence number before, then those given, then the learned keys that apply (the
        network keys sent with ``key_seq`` and the learned link keys)."""
        first = self._by_seq.get(key_seq)
        keys = [
            key
            for index, key in enumerate(self.keys)
            if key is not first
            and (index < self.given or self._learned.get(key, key_seq) in (None, key_seq))
        ]
        return keys if first is None else [first, *keys]

    def link_keys(self) -> list[Key]:
        """The keys to try for an APS frame: all held (the learned ones are bounded)."""
        return self.keys

    def opened(self, key_seq: int, key: Key) -> None:
        """Remember that ``key`` decrypted a NWK frame of ``key_seq``."""
        self._by_seq[key_seq] = key

    def learn(self, key: bytes, label: str, key_seq: int | None = None) -> Key | None:
        """Add a key seen in a decrypted Transport Key; returns it if it was new. Beyond
        the limit the oldest learned key is dropped (and counted in :attr:`dropped`)."""
        if key in self._known:
            return None
        learned = Key(bytes(key), label)
        if len(learned.key) != KEY_LENGTH:
            raise KeyFileError(f"{label}: a key is 16 bytes, got {len(learned.key)}")
        if self._limit <= 0:
            self.dropped += 1
            return None
        if len(self.keys) - self.given >= self._limit:
            oldest = self.keys.pop(self.given)
            self._known.discard(oldest.key)
            self._learned.pop(oldest, None)
            for seq, held in list(self._by_seq.items()):
                if held is oldest:
                    del self._by_seq[seq]
            self.dropped += 1
        self._known.add(learned.key)
        self.keys.append(learned)
        self._learned[learned] = key_seq
        if key_seq is not None:
            self._by_seq.setdefault(key_seq, learned)
        return learned

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"KeyRing({len(self.keys)} keys: {', '.join(k.label for k in self.keys)})"
