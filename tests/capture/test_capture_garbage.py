"""Garbage to zse capture (#15.3): the reader raises only CaptureError, the frame decoders
only InvalidFrame, the whole decoder keeps a malformed frame's error in the frame (never an
exception), and the key-file loader raises only KeyFileError, never showing a key."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.capture import scapy_air as air
from zse.capture import (
    CaptureDecoder,
    CaptureError,
    CaptureReader,
    KeyFileError,
    KeyRing,
    read_key_file,
)
from zse.capture.app import global_fields, plain
from zse.capture.frames import (
    decode_aps,
    decode_aps_command,
    decode_gp,
    decode_mac,
    decode_mac_payload,
    decode_nwk,
    is_gp,
)
from zse.capture.reader import Record
from zse.errors import InvalidFrame

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 195)
PCAPNG_START = bytes.fromhex("0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c000000")


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from([b"", PCAP_HEADER, PCAPNG_START]),
    data=st.binary(max_size=200),
    chunk=st.integers(1, 64),
)
def test_reader_meets_garbage(prefix, data, chunk):
    content = prefix + data
    reader = CaptureReader()
    message = ""
    try:
        for start in range(0, len(content), chunk):
            for record in reader.feed(content[start : start + chunk]):
                assert record.number >= 1
        reader.close()
    except CaptureError as exc:
        message = str(exc)
    assert "\n" not in message


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=60), inter_pan=st.booleans())
def test_frame_decoders_meet_garbage(data, inter_pan):
    for decode in (decode_mac, decode_nwk, decode_aps_command):
        with contextlib.suppress(InvalidFrame):
            decode(data)
    with contextlib.suppress(InvalidFrame):
        decode_aps(data, inter_pan=inter_pan)
    try:
        mac, payload = decode_mac(data)
        decode_mac_payload(mac, payload)
    except InvalidFrame:
        pass


KEYS = KeyRing()
KEYS.add_install_code(air.INSTALL_CODE)


@settings(max_examples=300, deadline=None)
@given(
    frame=st.binary(max_size=80)
    | st.builds(
        lambda base, position, byte: base[:position] + bytes((byte,)) + base[position + 1 :],
        st.sampled_from([bytes(f)[:-2] for f in air.frames()]),
        st.integers(0, 110),
        st.integers(0, 255),
    ),
    linktype=st.sampled_from([195, 230, 283]),
)
def test_decoder_keeps_malformed_frames_as_errors(frame, linktype):
    """Bytes flipped in real secured frames, and random bytes: a decoded frame (perhaps with
    an error naming the layer) or, for a broken link layer only, a CaptureError."""
    decoder = CaptureDecoder(KEYS)
    try:
        decoded = decoder.decode(Record(1, 0, linktype, frame, len(frame)))
    except CaptureError:
        decoded = None
    if decoded is None:
        assert linktype != 230  # without FCS or TAP header, any bytes are a frame
        return
    assert decoded.error is None or "\n" not in decoded.error


KEY_LINE = st.builds(
    ",".join,
    st.lists(
        st.one_of(
            st.just('"00112233445566778899AABBCCDDEEFF"'),
            st.just('"Normal"'),
            st.just('"Reverse"'),
            st.text(max_size=40),
        ),
        max_size=4,
    ),
)


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(KEY_LINE | st.text(max_size=60), max_size=5))
def test_key_file_loader_meets_garbage(lines):
    try:
        keys = list(read_key_file(lines))
    except KeyFileError as exc:
        message = str(exc)
        assert message.startswith("key file line ")
        assert "00112233445566778899" not in message.upper()
        return
    assert all(len(key.key) == 16 for key in keys)
    assert all(repr(key) == f"Key(label={key.label!r})" for key in keys)  # the label only


@settings(max_examples=300, deadline=None)
@given(
    command=st.sampled_from(sorted(foundation.GENERAL_COMMANDS)),
    body=st.binary(max_size=40),
)
def test_global_fields_decode_as_zigpy_does(command, body):
    """The field-by-field decoding of global commands equals zigpy's schema decoding: the
    same values, the same bytes left, and a failure exactly when zigpy fails."""
    definition = foundation.GENERAL_COMMANDS[command]
    assert all(
        not f.optional and f.requires is None and f.length is None for f in definition.schema.fields
    )
    try:
        theirs, their_rest = definition.schema.deserialize(body)
    except Exception:
        theirs = None
    try:
        ours, our_rest = global_fields(definition.schema, body, definition.name)
    except InvalidFrame:
        assert theirs is None
        return
    assert theirs is not None
    assert ours == plain(theirs)
    assert our_rest == their_rest


@settings(max_examples=300)
@given(
    fc=st.integers(0, 255).map(lambda b: (b & ~0x3C) | 0x0C),  # protocol version 3: GP
    rest=st.binary(max_size=30),
)
def test_green_power_decoder_meets_garbage(fc, rest):
    data = bytes((fc,)) + rest
    assert is_gp(data)
    try:
        gp = decode_gp(data)
    except InvalidFrame:
        return
    assert gp.fields()["type"]


@settings(max_examples=200, deadline=None)
@given(
    blocks=st.lists(
        st.tuples(
            st.integers(0, 3),  # fragmentation, 0b11 reserved
            st.integers(0, 255),  # block number octet
            st.binary(max_size=40),
            st.integers(0, 2),  # APS counter: a few transfers
            st.integers(0, 120),  # a byte to flip (past the end: none)
            st.integers(0, 255),
        ),
        max_size=30,
    )
)
def test_fragmented_frames_meet_garbage(blocks):
    """Blocks of fragmented transfers (ZB 2.2.8.4.5) with any fragmentation value, block
    number and payload, a byte flipped anywhere, through one decoder: each a decoded frame,
    an error without a newline at most; a reassembled payload is made of the blocks seen,
    and what is held stays bounded."""
    decoder = CaptureDecoder()
    seen = b""
    for number, (fragmentation, block, payload, counter, where, byte) in enumerate(blocks, 1):
        frame = struct.pack("<HBHHH", 0x8861, number & 0xFF, 0x1A62, 0x1234, 0x0000)
        frame += struct.pack("<HHHBB", 0x0008, 0x1234, 0x0000, 30, number & 0xFF)
        frame += struct.pack("<BBHHBBBB", 0xC0, 1, 0x0703, 0x0109, 9, counter, fragmentation, block)
        frame += payload
        frame = frame[:where] + bytes((byte,)) + frame[where + 1 :]
        decoded = decoder.decode(Record(number, number, 230, frame, len(frame)))
        assert decoded.error is None or "\n" not in decoded.error
        seen += frame
        if decoded.reassembled is not None:
            assert len(decoded.reassembled.payload) <= len(seen)
        assert len(decoder.reassembly) <= 64
