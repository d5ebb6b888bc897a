"""Hostile review: every inter-PAN decoder, fed truncated, over-long and random bytes (and
random bytes after a valid prefix), raises the DecodeError family or answers, never anything
else; the secured-frame path and the reassembler never raise at all."""

from __future__ import annotations

import contextlib
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.interpan.test_interpan_secure_fragment import HHT, KEY, frame
from zse.errors import DecodeError
from zse.interpan._codec import DeliveryMode, InterPanFrame
from zse.interpan._zcl import ZclHeader
from zse.interpan.fragment import (
    FRAGMENT_OVERHEAD,
    FragmentSender,
    Reassembler,
    is_fragment,
    is_fragment_response,
)
from zse.interpan.hht import DEFAULT_MANUFACTURER_CODE, HhtMeter, MemoryLog, decode
from zse.interpan.se import decode_se
from zse.interpan.secure import InterPanSecurity, open_frame, seal_frame
from zse.se.ids import MESSAGING, PRICE

MANY = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _unicast(payload: bytes, cluster: int = PRICE) -> InterPanFrame:
    return replace(frame(payload), cluster_id=cluster)


_VALID = (
    _unicast(b"\x01\x07\x00\x00\x00\x00\x00").to_bytes(),
    seal_frame(_unicast(b"\x01\x07\x00\x00\x00\x00\x00"), link_key=KEY, counter=3).to_bytes(),
    replace(
        _unicast(b"\x09\x01\x00" + bytes(20), MESSAGING),
        dst_address=0xFFFF,
        delivery_mode=DeliveryMode.GROUP,
        group_id=7,
    ).to_bytes(),
)


def _mutated() -> st.SearchStrategy[bytes]:
    """A valid frame cut, extended, or with random bytes in place (the likely hostile ones)."""
    return st.builds(
        lambda base, cut, tail, flips: _flip(base[:cut] + tail, flips),
        st.sampled_from(_VALID),
        st.integers(0, 130),
        st.binary(max_size=110),
        st.lists(st.tuples(st.integers(0, 130), st.integers(0, 255)), max_size=3),
    )


def _flip(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for at, value in flips:
        if at < len(out):
            out[at] = value
    return bytes(out)


@MANY
@given(st.one_of(st.binary(max_size=140), _mutated()))
def test_frame_decoder_raises_decode_errors_only(data):
    try:
        frame = InterPanFrame.from_bytes(data)
    except DecodeError:
        return
    assert frame.to_bytes() == data  # what decodes is what was on the air


@MANY
@given(st.binary(max_size=120))
def test_zcl_header_hht_and_se_decoders_raise_decode_errors_only(payload):
    for decoder in (
        ZclHeader.from_bytes,
        lambda p: decode(p, manufacturer_code=DEFAULT_MANUFACTURER_CODE),
        lambda p: HhtMeter(MemoryLog(), {}).receive(p),
        lambda p: decode_se(_unicast(p[:95], PRICE)),
        lambda p: decode_se(_unicast(p[:95], MESSAGING)),
    ):
        with contextlib.suppress(DecodeError):
            decoder(payload)


@MANY
@given(st.binary(max_size=95), st.booleans())
def test_secured_frame_parser_raises_decode_errors_and_security_drops(payload, known):
    garbage = replace(_unicast(b"\x01\x00\x00"), aps_security=True, payload=payload)
    with contextlib.suppress(DecodeError):
        open_frame(garbage, link_key=KEY)
    security = InterPanSecurity()
    if known:
        security.add_key(HHT, KEY)
    assert security.open(garbage) is None
    assert sum(security.dropped.values()) == 1


@settings(max_examples=800, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 9),  # source
            st.integers(0, 5),  # index
            st.integers(0, 6),  # count
            st.binary(max_size=91),
            st.floats(0, 3),  # time step
        ),
        max_size=80,
    )
)
def test_reassembler_under_random_fragments_is_bounded_and_answers_each(fragments):
    receiver = Reassembler(max_partners=3, max_length=300, timeout=2.0)
    now = 0.0
    for source, index, count, chunk, step in fragments:
        now += step
        fragment = bytes((0, index, count, len(chunk))) + chunk
        assert is_fragment(fragment)
        response, whole = receiver.receive(bytes((source,)), fragment, now)
        assert is_fragment_response(response)
        assert response[1] == index
        assert whole is None or len(whole) <= 300
        assert len(receiver) <= 3
        assert len(receiver._completed) <= 3
        assert all(len(p.data) <= 300 for p in receiver._partials.values())


@MANY
@given(st.lists(st.binary(min_size=3, max_size=3), max_size=20))
def test_fragment_sender_takes_random_responses(responses):
    sender = FragmentSender(bytes(300), size=91 - FRAGMENT_OVERHEAD)
    sender.start(0.0)
    for drawn in responses:
        with contextlib.suppress(OSError):
            sender.receive(b"\x80" + drawn[1:], 0.0)
