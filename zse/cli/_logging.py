"""Keep secrets out of the command line's logs (issue #12.23).

zse never logs a key or an install code itself. Some libraries under it do, at DEBUG: aiosqlite
logs every statement with its parameters (the HAN registry's rows carry install codes),
zigpy's ``zigpy.application`` logs the network information (network key and Trust Center link
key) at start and ``zigpy.backups`` every network backup (the same keys), and the radio
libraries log each frame they exchange with the stick (link keys as they are installed).

:func:`quiet_secret_loggers` holds those loggers at INFO, whatever level the rest of the
logging runs at, unless the user asks for them: ``reveal=True`` (a command-line option) or the
environment variable ``ZSE_LOG_SECRETS=1``.

Holding a logger at INFO leaves its warnings through, and bellows warns with a whole
``zigpy.state.Key`` (the link key) when the stick refuses one while zigpy restores a network
backup ("Couldn't add Key(key=...) key: ..."), at any log level. :class:`KeyRedactor`, on the
command line's handlers as their formatter (:func:`redact_handlers`), hides the keys in the
text each record is printed as (the record itself is left alone for other handlers): every key
of a zigpy object among the record's arguments or in its exception (``KeyData``, ``Key``,
``NetworkInfo``, ``NetworkBackup``: their keys and key table, in any spelling: hex in either
case and byte order, with or without separators, a ``bytes`` repr, base64) and any run of 16
colon-separated octets, which is how zigpy prints a key. A handler sees only the records its
loggers let through, so above DEBUG the redaction costs nothing for the debug lines that are
not printed.

The radio libraries also log a frame's raw bytes above DEBUG: zigpy-znp a frame it cannot
parse whole ("Received an exception while passing frame to API", ERROR, its parser's exception
quoting the frame again) or does not know ("Received an unknown frame", ERROR); bellows a frame
it does not know or cannot parse ("Unknown application frame", "Failed to parse frame",
WARNING). A key such a frame carries (a Z-Stack's answer to the host's read of the network key,
say) is not a zigpy key object there, only bytes. So in the records of :data:`FRAME_LOGGERS`
every ``bytes`` repr (``b'\\x5E\\xC1...'``, ``b'5ec1...'``) is printed as ``<N bytes
hidden>``; the rest of the line (which frame, which command, the error) is kept.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import dataclasses
import functools
import itertools
import logging
import os
import re
from collections.abc import Iterable
from typing import Literal

__all__ = [
    "FRAME_LOGGERS",
    "HIDDEN",
    "REVEAL_VARIABLE",
    "SECRET_LOGGERS",
    "KeyRedactor",
    "quiet_secret_loggers",
    "redact_handlers",
    "reveal_asked",
]

#: What a hidden key is replaced with.
HIDDEN = "<key hidden>"

#: The environment variable that lets the loggers below print at DEBUG (``1``, ``yes``, ``true``).
REVEAL_VARIABLE = "ZSE_LOG_SECRETS"

#: Third-party loggers that print secrets at DEBUG, and what they print.
SECRET_LOGGERS: dict[str, str] = {
    "aiosqlite": "SQL parameters: registry rows with install codes",
    "zigpy.application": "the network information: network key, Trust Center link key",
    "zigpy.backups": "network backups: network key, Trust Center link key",
    "zigpy.appdb": "an event's arguments when SQLite fails on it: network backups, their keys",
    "bellows": "EZSP and ASH frames: link keys as they are installed",
    "zigpy_znp": "Z-Stack frames: link keys as they are installed",
}


#: The loggers (and their children) whose records print frames' raw bytes above DEBUG.
FRAME_LOGGERS = ("bellows", "zigpy_znp")


def quiet_secret_loggers(*, reveal: bool | None = None) -> bool:
    """Hold :data:`SECRET_LOGGERS` at INFO or above; returns True if it did.

    ``reveal`` None reads :data:`REVEAL_VARIABLE`; a logger that would log at INFO or above
    anyway (its own level, or the one it inherits: warning by default) is left as it is, so
    that holding it never makes it louder. Call it after the logging level is chosen (``-v``,
    ``--log-level``).
    """
    if reveal is None:
        reveal = reveal_asked()
    if reveal:
        return False
    for name in SECRET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:  # DEBUG, its own or inherited
            logger.setLevel(logging.INFO)
    return True


def reveal_asked() -> bool:
    """Whether :data:`REVEAL_VARIABLE` asks for the secrets in the log."""
    return os.environ.get(REVEAL_VARIABLE, "").strip().lower() in ("1", "yes", "true")


#: zigpy's ``KeyData`` as it prints: 16 colon-separated octets (an EUI-64 has 8).
_ZIGPY_KEY = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){15}(?![0-9A-Fa-f:])")
#: Separators a key's octets are printed with.
_SEPARATOR = r"[\s:\-_.,]?"
#: How deep :func:`_keys_in` looks into a record's arguments, and how many items of each
#: list or dict (a debug line listing thousands of devices costs no more than one of 64).
_DEPTH = 6
_ITEMS = 64


def _keys_in(value: object, found: set[bytes], depth: int = _DEPTH) -> None:
    """Add to ``found`` the keys held by ``value``: a zigpy ``KeyData``, or one inside a
    dataclass (zigpy's ``Key``, ``NetworkInfo``, ``NetworkBackup``), a list, tuple, set, dict
    or exception; a dict's hex string under a name with ``key`` or ``tclk`` in it (the
    ``hashed_tclk`` of bellows' stack-specific network information) too."""
    import zigpy.types as t  # noqa: PLC0415 - only once a record is handed over

    if depth == 0 or value is None or isinstance(value, int | float | bool):
        return
    if isinstance(value, t.KeyData):
        found.add(bytes(value))
    elif isinstance(value, dict):
        for name, item in itertools.islice(value.items(), _ITEMS):
            if isinstance(item, str) and re.search("key|tclk", str(name), re.I):
                with contextlib.suppress(ValueError):  # not hex: not a key
                    found.add(bytes.fromhex(item))
            _keys_in(item, found, depth - 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in itertools.islice(value, _ITEMS):
            _keys_in(item, found, depth - 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            _keys_in(getattr(value, field.name, None), found, depth - 1)
    elif isinstance(value, BaseException):
        _keys_in(value.args, found, depth - 1)
        _keys_in(vars(value), found, depth - 1)
        _keys_in(value.__cause__ or value.__context__, found, depth - 1)


@functools.lru_cache(maxsize=64)
def _spellings(key: bytes) -> tuple[re.Pattern[str], ...]:
    """Patterns for ``key`` in either byte order: hex in any case with or without separators,
    a ``bytes`` repr (printable octets as characters, or every octet ``\\xNN``), base64."""
    patterns = [re.compile(re.escape(base64.b64encode(key).decode().rstrip("=")))]
    for octets in (key, key[::-1]):
        patterns.append(re.compile(_SEPARATOR.join(f"{b:02x}" for b in octets), re.I))
        patterns.append(re.compile(re.escape(repr(octets)[2:-1])))
        patterns.append(re.compile(re.escape("".join(f"\\x{b:02x}" for b in octets)), re.I))
    return tuple(patterns)


#: A Python ``bytes`` repr, as ``%s`` / ``%r`` print one (zigpy-znp's ``Bytes`` prints every
#: octet ``\xNN``; bellows logs ``binascii.hexlify``'s bytes), not inside a word or string.
_BYTES_REPR = re.compile(r"""(?<![\w'"])b(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")""")


def _hide_bytes(match: re.Match[str]) -> str:
    try:
        size = len(ast.literal_eval(match.group()))
    except (ValueError, SyntaxError, TypeError):
        return "<bytes hidden>"
    return f"<{size} bytes hidden>"


def _from_frame_logger(name: str) -> bool:
    return any(name == logger or name.startswith(f"{logger}.") for logger in FRAME_LOGGERS)


def _redact(text: str, keys: set[bytes]) -> str:
    for key in keys:
        for pattern in _spellings(key):
            text = pattern.sub(HIDDEN, text)
    return _ZIGPY_KEY.sub(HIDDEN, text)


class KeyRedactor(logging.Formatter):
    """A handler's formatter that hides keys in the text it prints (see the module notes):
    the record formatted by ``inner`` (the handler's own formatter; by default one of
    ``fmt``, ``datefmt`` and ``style``), message, traceback and stack alike, then the keys
    replaced by :data:`HIDDEN` (and, in a radio library's record, every ``bytes`` repr by
    ``<N bytes hidden>``). The record itself is left as it was: another handler of the
    same logger (an embedding program's) gets it unchanged, as without zse."""

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        *,
        inner: logging.Formatter | None = None,
    ) -> None:
        super().__init__(fmt, datefmt, style)
        self.inner = inner if inner is not None else logging.Formatter(fmt, datefmt, style)

    def format(self, record: logging.LogRecord) -> str:
        keys: set[bytes] = set()
        _keys_in(record.args, keys)
        exc = record.exc_info[1] if record.exc_info else None
        _keys_in(exc, keys)
        keys = {k for k in keys if len(k) >= 8 and any(k)}  # an unset key hides nothing
        text = self.inner.format(record)
        if _from_frame_logger(record.name):  # a frame's bytes may hold a key, unnamed
            text = _BYTES_REPR.sub(_hide_bytes, text)
        return _redact(text, keys)


def redact_handlers(handlers: Iterable[logging.Handler], *, reveal: bool | None = None) -> bool:
    """Wrap the formatter of each of ``handlers`` in a :class:`KeyRedactor` (once); returns
    True if it did. ``reveal`` None reads :data:`REVEAL_VARIABLE`, as
    :func:`quiet_secret_loggers` does."""
    if reveal is None:
        reveal = reveal_asked()
    if reveal:
        return False
    for handler in handlers:
        if not isinstance(handler.formatter, KeyRedactor):
            handler.setFormatter(KeyRedactor(inner=handler.formatter))
    return True
