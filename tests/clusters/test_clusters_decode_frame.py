"""decode_frame: a whole ZCL frame (header and command) in one call, the same as the two-call
path, and InvalidFrame only for garbage."""

from __future__ import annotations

import re
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zse.drlc.wire import Drlc
from zse.errors import InvalidFrame
from zse.messaging.wire import Messaging
from zse.price.wire import Price
from zse.zcl.codec import decode_command
from zse.zcl.frame import decode_frame, decode_zcl_header

# SE D.2.2.3.1 Load Control Event from the ESI (frame control 0x09: cluster-specific, server to
# client), TSN 0x12: issuer event id 0x12345678, all device classes, start now, 30 min,
# criticality 4, no offsets or set points, duty cycle 50 %, both randomizations.
LCE_PAYLOAD = struct.pack(
    "<IHBIHBBBhhbBB", 0x12345678, 0x0FFF, 0, 0, 30, 4, 0xFF, 0xFF, -32768, -32768, -128, 50, 3
)
LCE_FRAME = bytes([0x09, 0x12, 0x00]) + LCE_PAYLOAD


def two_calls(cluster: type, frame: bytes) -> tuple[tuple, object, bytes]:
    """The documented two-call path: header, then the command its direction names."""
    fc, mfr, tsn, cmd, length = decode_zcl_header(frame)
    command, rest = decode_command(cluster, cmd, frame[length:], from_server=bool(fc & 0x08))
    return (fc, mfr, tsn, cmd), command, rest


def test_a_load_control_event_frame_decodes_as_the_two_calls_do() -> None:
    decoded = decode_frame(Drlc, LCE_FRAME)
    header, command, rest = two_calls(Drlc, LCE_FRAME)
    assert (decoded.frame_control, decoded.manufacturer, decoded.tsn, decoded.command_id) == header
    assert (decoded.command, decoded.rest) == (command, rest)
    assert rest == b""
    assert decoded.from_server
    assert not decoded.disable_default_response
    assert decoded.command.issuer_event_id == 0x12345678
    assert (decoded.command.duration_in_minutes, decoded.command.duty_cycle) == (30, 50)


def test_trailing_bytes_are_returned() -> None:
    assert decode_frame(Drlc, LCE_FRAME + b"\x01\x02").rest == b"\x01\x02"


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (b"", "empty ZCL frame"),
        (b"\x09\x12", "too short"),
        (bytes([0x08, 0x12, 0x0B]) + b"\x00\x00", "profile-wide (global) command"),
        (bytes([0x0B, 0x12, 0x00]), "reserved frame type 3"),
        (bytes([0x0D, 0x34, 0x12, 0x01, 0x00]), "specific to manufacturer 0x1234"),
        (bytes([0x09, 0x12, 0x7F]), "no command 0x7F sent by the server"),
        (LCE_FRAME[:10], "cannot decode field"),
        ("0912" + LCE_PAYLOAD.hex(), "a ZCL frame is bytes, got str"),
    ],
)
def test_what_is_not_a_command_frame_is_invalid_frame(frame: bytes, words: str) -> None:
    with pytest.raises(InvalidFrame, match=re.escape(words)):
        decode_frame(Drlc, frame)


@pytest.mark.parametrize("cluster", [Drlc, Price, Messaging])
@given(frame=st.binary(max_size=80))
def test_garbage_raises_only_invalid_frame_and_agrees_with_the_two_calls(
    cluster: type, frame: bytes
) -> None:
    error = ""
    try:
        decoded = decode_frame(cluster, frame)
    except InvalidFrame as exc:  # the one error allowed: any other fails the test
        error = str(exc)
    if error:
        assert "\n" not in error
        return
    header, command, rest = two_calls(cluster, frame)
    assert (decoded.frame_control, decoded.manufacturer, decoded.tsn, decoded.command_id) == header
    assert (decoded.command, decoded.rest) == (command, rest)


@pytest.mark.parametrize("cluster", [Drlc, Price, Messaging])
@given(
    direction=st.sampled_from([0x01, 0x09, 0x11, 0x19]),
    tsn=st.integers(0, 255),
    command_id=st.integers(0, 15),
    payload=st.binary(max_size=80),
)
def test_cluster_command_frames_raise_only_invalid_frame(
    cluster: type, direction: int, tsn: int, command_id: int, payload: bytes
) -> None:
    """Garbage behind a well-formed header reaches the command decoder (most random frames
    stop at the header)."""
    frame = bytes([direction, tsn, command_id]) + payload
    try:
        decoded = decode_frame(cluster, frame)
    except InvalidFrame:
        return
    assert decoded.from_server == bool(direction & 0x08)
    assert decoded.disable_default_response == bool(direction & 0x10)
