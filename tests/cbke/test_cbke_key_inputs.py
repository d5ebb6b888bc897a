"""Bad input to the key-agreement entry points: a ValueError subclass naming what, never
another exception, never a silently wrong result (issue 3 item 3; SE C.4.1.3-C.4.1.5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.cbke import (
    SUITE1,
    SUITE2,
    ImplicitCertificate,
    confirmation_macs,
    derive_keys,
    ecmqv,
    public_key_from_private,
    sign,
    verify,
)
from zse.errors import DecodeError, InvalidEui64, InvalidPoint

h = bytes.fromhex
Q1 = public_key_from_private(SUITE1, b"\x01" * 21)
Q2 = public_key_from_private(SUITE2, b"\x01" * 36)
GARBAGE: list[Any] = [None, 5, "00" * 21, 1.5, [1, 2], b"", b"\x02", bytes(23), bytes(40)]


def _entry_points(c5: Any) -> dict[str, Callable[[Any], object]]:
    cert = ImplicitCertificate.from_bytes(h(c5["initiator_U"]["certificate"]))
    return {
        "Z": derive_keys,
        "MacKey": lambda g: confirmation_macs(g, b"U" * 8, b"V" * 8, Q1, Q1),
        "initiator ephemeral": lambda g: confirmation_macs(b"k" * 16, b"U" * 8, b"V" * 8, g, Q1),
        "responder ephemeral": lambda g: confirmation_macs(b"k" * 16, b"U" * 8, b"V" * 8, Q1, g),
        "initiator EUI-64": lambda g: confirmation_macs(b"k" * 16, g, b"V" * 8, Q1, Q1),
        "peer static": lambda g: ecmqv(SUITE1, b"\x01" * 21, b"\x02" * 21, g, Q1),
        "static private": lambda g: ecmqv(SUITE1, g, b"\x02" * 21, Q1, Q1),
        "private": lambda g: public_key_from_private(SUITE1, g),
        "CA public key": cert.reconstruct_public_key,
        "certificate": ImplicitCertificate.from_bytes,
        "ECDSA public key": lambda g: verify(SUITE1, g, b"m", bytes(42)),
        "ECDSA private key": lambda g: sign(SUITE1, g, b"m"),
    }


ENTRY_POINTS = [
    "Z", "MacKey", "initiator ephemeral", "responder ephemeral", "initiator EUI-64",
    "peer static", "static private", "private", "CA public key", "certificate",
    "ECDSA public key", "ECDSA private key",
]  # fmt: skip


@pytest.mark.parametrize("garbage", GARBAGE, ids=repr)
@pytest.mark.parametrize("what", ENTRY_POINTS)
def test_garbage_raises_a_decode_error_only(c5: Any, what: str, garbage: Any) -> None:
    with pytest.raises(DecodeError):
        _entry_points(c5)[what](garbage)


def test_every_entry_point_is_exercised(c5: Any) -> None:
    assert sorted(_entry_points(c5)) == sorted(ENTRY_POINTS)


def test_messages_name_the_input() -> None:
    with pytest.raises(InvalidPoint, match=r"shared secret Z must be 21 or 36 bytes, got 20"):
        derive_keys(bytes(20))
    with pytest.raises(InvalidPoint, match="shared secret Z must be bytes, not int"):
        derive_keys(21)  # type: ignore[arg-type]  # bytes(21) would be 21 zero bytes
    with pytest.raises(InvalidPoint, match="MacKey must be 16 bytes, got 15"):
        confirmation_macs(bytes(15), b"U" * 8, b"V" * 8, Q1, Q1)
    with pytest.raises(InvalidPoint, match="of different suites"):
        confirmation_macs(bytes(16), b"U" * 8, b"V" * 8, Q1, Q2)
    with pytest.raises(InvalidEui64, match="responder EUI-64"):
        confirmation_macs(bytes(16), b"U" * 8, b"V" * 7, Q1, Q1)


def test_both_suites_sizes_are_accepted() -> None:
    for z in (bytes(21), bytes(36)):
        mac_key, key_data = derive_keys(z)
        assert len(mac_key) == len(key_data) == 16
        assert derive_keys(bytearray(z)) == derive_keys(memoryview(z)) == (mac_key, key_data)
    for q in (Q1, Q2):
        macu, macv = confirmation_macs(bytes(16), b"U" * 8, b"V" * 8, q, q)
        assert macu != macv


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=40))
def test_derive_keys_accepts_exactly_the_suite_sizes(data: bytes) -> None:
    if len(data) in (21, 36):
        assert len(derive_keys(data)[1]) == 16
    else:
        with pytest.raises(InvalidPoint):
            derive_keys(data)
