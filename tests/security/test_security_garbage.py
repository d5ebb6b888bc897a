"""Garbage to the auxiliary header decoder and to unsecure (#15.1): a header or
InvalidSecurityHeader; for whole frames only InvalidFrame or a named SecurityFailure."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from zse.errors import InvalidFrame, InvalidSecurityHeader, SecurityFailure
from zse.security import (
    AuxHeader,
    IncomingCounters,
    KeyId,
    secure_aps,
    secure_nwk,
    unsecure_aps,
    unsecure_nwk,
)

KEY = bytes(range(16))
NWK_HEADER = bytes.fromhex("0800341200001e01")
APS_HEADER = bytes.fromhex("0001000709010105")


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=24))
def test_aux_header_decoder_meets_garbage(data):
    try:
        header, rest = AuxHeader.decode(data)
    except InvalidSecurityHeader:
        return
    assert header.encode(header.level) + rest == data


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=60), source=st.none() | st.integers(0, (1 << 64) - 1))
def test_unsecure_meets_garbage(data, source):
    counters = IncomingCounters()
    with contextlib.suppress(InvalidFrame, SecurityFailure):
        unsecure_nwk(data, {0: KEY, 1: KEY}, counters=counters)
    with contextlib.suppress(InvalidFrame, SecurityFailure):
        unsecure_aps(data, KEY, source=source, counters=counters)
    assert len(counters) == 0  # nothing forged got through


@settings(max_examples=200, deadline=None)
@given(
    payload=st.binary(max_size=40),
    counter=st.integers(0, 0xFFFFFFFE),
    source=st.integers(0, (1 << 64) - 1),
    position=st.integers(0, 10_000),
    value=st.integers(1, 255),
    key_id=st.sampled_from([KeyId.DATA, KeyId.KEY_TRANSPORT, KeyId.KEY_LOAD]),
)
def test_secured_frames_round_trip_and_any_altered_byte_is_refused(
    payload, counter, source, position, value, key_id
):
    nwk = secure_nwk(NWK_HEADER, payload, key=KEY, key_seq=1, counter=counter, source=source)
    aps = secure_aps(
        APS_HEADER, payload, link_key=KEY, counter=counter, source=source, key_id=key_id
    )
    assert unsecure_nwk(nwk, {1: KEY}).payload == payload
    assert unsecure_aps(aps, KEY).payload == payload
    for frame, unsecure, level_byte in (
        (nwk, lambda f: unsecure_nwk(f, {1: KEY}), len(NWK_HEADER)),
        (aps, lambda f: unsecure_aps(f, KEY), len(APS_HEADER)),
    ):
        at = position % len(frame)
        if at == level_byte and not value & 0xF8:
            continue  # only the level bits: the receiver overwrites them (ZB 4.3.1.2)
        altered = bytearray(frame)
        altered[at] ^= value
        try:
            unsecure(bytes(altered))
        except (InvalidFrame, SecurityFailure):
            continue
        raise AssertionError(f"byte {at} xor {value:#x} accepted")
