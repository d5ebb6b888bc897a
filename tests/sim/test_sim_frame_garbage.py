"""The simulator's MAC, NWK and APS decoders meet garbage with InvalidFrame, never a crash:
a node drops what it cannot read (zse/sim/_node.py catches DecodeError only)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.errors import InvalidFrame
from zse.sim._frames import decode_aps, decode_mac, decode_nwk

DECODERS = [decode_mac, decode_nwk, decode_aps]


@pytest.mark.parametrize("decode", DECODERS, ids=lambda d: d.__name__)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=40))
def test_garbage_gives_invalid_frame_or_a_header(decode, data):
    with contextlib.suppress(InvalidFrame):  # anything else fails the test
        decode(data)


@pytest.mark.parametrize("flags", [0x0800, 0x1000, 0x1800])
def test_nwk_header_cut_inside_an_ieee_address_is_invalid(flags):
    header = flags.to_bytes(2, "little") + bytes(6) + bytes(5)  # 8 bytes + part of an EUI-64
    with pytest.raises(InvalidFrame, match="truncated"):
        decode_nwk(header)
