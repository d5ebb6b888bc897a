"""The check the secrets tests share (#12.23: no secrets in logs, reprs or error messages):
:func:`assert_hidden` fails if any 8 hex digits in a row of a secret show in a text, in any of
the spellings a key is printed in. Its own tests show it catches each spelling, so a secrets
test cannot pass by looking for the wrong one."""

from __future__ import annotations

import re

import pytest

#: Separators a key is printed with between its bytes or groups (zigpy: ``5e:c1:...``,
#: labels: ``83FE D340``, some tools ``5E-C1``).
_SEPARATORS = re.compile(r"[\s:\-_.,]")
WINDOW = 4  # bytes: 8 hex digits


def _windows(secret: bytes) -> list[bytes]:
    if len(secret) <= WINDOW:
        return [secret]
    return [secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1)]


def leaks(secret: bytes | str, text: str) -> list[str]:
    """The spellings of 8-hex-digit runs of ``secret`` (bytes, or its hex digits with any
    separators) found in ``text``: hex in either case, with or without separators, in either
    byte order, or inside a Python ``bytes`` repr or zigpy's (``b'\\x5E\\xC1...'``)."""
    if isinstance(secret, str):
        secret = bytes.fromhex(_SEPARATORS.sub("", secret))
    plain = _SEPARATORS.sub("", text).lower()
    found = []
    for forward in _windows(secret):
        for window in (forward, forward[::-1]):
            if window.hex() in plain:
                found.append(window.hex())
            if repr(window)[2:-1] in text:
                found.append(repr(window))
            if "".join(f"\\x{b:02x}" for b in window) in text.lower():  # zigpy's Bytes repr
                found.append(f"\\x{window.hex()}")
    return found


def assert_hidden(secret: bytes | str, text: str) -> None:
    """No 8 hex digits in a row of ``secret`` in ``text`` (see :func:`leaks`)."""
    found = leaks(secret, text)
    assert not found, f"secret shown in {text!r}: {found[:3]}"


KEY = bytes.fromhex("5EC12E7000112233445566778899AABB")


@pytest.mark.parametrize(
    "text",
    [
        f"LinkKeyData={KEY.hex(':')}",
        f"key {KEY.hex().upper()}",
        f"part {KEY[3:7].hex()}",
        f"reversed {KEY[::-1].hex()}",
        f"InstallCode={KEY!r}",
        "InstallCode=b'" + "".join(f"\\x{b:02X}" for b in KEY) + "'",
        f"grouped {' '.join(KEY.hex()[i : i + 4] for i in range(0, 32, 4))}",
        f"dashed {KEY.hex('-')}",
    ],
)
def test_every_spelling_of_a_run_of_the_secret_is_caught(text: str) -> None:
    with pytest.raises(AssertionError, match="secret shown"):
        assert_hidden(KEY, text)


def test_other_hex_and_short_runs_pass() -> None:
    assert_hidden(KEY, f"status 0x11, EUI 00:0d:6f:00:01:02:03:04, fingerprint {KEY.hex()[:4]}")
    assert_hidden(KEY.hex(" "), "nothing of it here")
