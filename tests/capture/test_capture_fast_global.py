"""The fast path of the commonest global ZCL commands (#15 benchmark: zse capture faster than
tshark) gives exactly what the zigpy path gives: :func:`fast_global_fields` equals
:func:`global_fields` + :func:`named_attributes` whenever it takes a frame, and declines
(None) whenever zigpy fails, on random and on well-formed bodies."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl import foundation

from zse.capture.app import fast_global_fields, global_fields, named_attributes
from zse.errors import InvalidFrame

FAST = (0x00, 0x01, 0x0A, 0x0B)  # Read Attributes (+ response), Report Attributes, Default Rsp
CLUSTERS = (0x0000, 0x0700, 0x0702, 0x0703, 0x0800, 0x7777)  # 0x7777: no such cluster
INT_TYPES = list(range(0x20, 0x30))
ONE_BYTE_TYPES = (0x10, 0x18, 0x30)  # boolean, bitmap8, enum8
OTHER_TYPES = (0x08, 0x19, 0x31, 0x39, 0x41, 0x42, 0xE2, 0xF0, 0x48, 0xFF)


def slow(cluster_id: int, command_id: int, body: bytes) -> tuple[object, bytes] | None:
    """The reference: zigpy's types field by field, then the attribute names."""
    definition = foundation.GENERAL_COMMANDS[foundation.GeneralCommand(command_id)]
    try:
        fields, rest = global_fields(definition.schema, body, definition.name)
    except InvalidFrame:
        return None
    return named_attributes(cluster_id, fields), rest


def check(cluster_id: int, command_id: int, body: bytes) -> bool:
    """Fast equals slow when fast answers; True if it answered."""
    fast = fast_global_fields(cluster_id, command_id, body)
    if fast is None:
        return False
    assert fast == slow(cluster_id, command_id, body)
    return True


@settings(max_examples=500, deadline=None)
@given(
    cluster_id=st.sampled_from(CLUSTERS),
    command_id=st.sampled_from(FAST),
    body=st.binary(max_size=40),
)
def test_fast_global_fields_on_garbage_equal_zigpy(cluster_id, command_id, body):
    check(cluster_id, command_id, body)


def typed_value(type_id: int, raw: bytes) -> bytes:
    size = {0x10: 1, 0x18: 1, 0x30: 1}.get(type_id, 0) or (
        type_id - 0x1F if type_id < 0x28 else type_id - 0x27
    )
    return bytes((type_id,)) + raw[:size].ljust(size, b"\x00")


records = st.lists(
    st.tuples(
        st.integers(0, 0xFFFF),
        st.sampled_from([0x00, 0x00, 0x86, 0x01]),  # SUCCESS, UNSUPPORTED_ATTRIBUTE, FAILURE
        st.sampled_from([*INT_TYPES, *ONE_BYTE_TYPES]),
        st.binary(min_size=8, max_size=8),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(cluster_id=st.sampled_from(CLUSTERS), records=records)
def test_fast_global_fields_on_well_formed_records(cluster_id, records):
    """Well-formed records of integer, boolean, bitmap8 and enum8 values: the fast path
    takes every one, and equals zigpy."""
    report = b"".join(struct.pack("<H", a) + typed_value(t, raw) for a, _, t, raw in records)
    assert check(cluster_id, 0x0A, report)
    response = b"".join(
        struct.pack("<HB", a, s) + (typed_value(t, raw) if s == 0 else b"")
        for a, s, t, raw in records
    )
    assert check(cluster_id, 0x01, response)
    read = b"".join(struct.pack("<H", a) for a, _, _, _ in records)
    assert check(cluster_id, 0x00, read)
    assert check(cluster_id, 0x0B, bytes((len(records), records[0][1] if records else 0x81)))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CLUSTERS), st.sampled_from(OTHER_TYPES), st.binary(max_size=12))
def test_other_types_take_the_zigpy_path(cluster_id, type_id, raw):
    """A value of another data type (strings, arrays, floats, wider bitmaps...) is left to
    zigpy: the fast path declines, and the decoder still gives zigpy's fields."""
    body = struct.pack("<H", 0x0000) + bytes((type_id,)) + raw
    assert fast_global_fields(cluster_id, 0x0A, body) is None
    assert fast_global_fields(cluster_id, 0x01, body[:2] + b"\x00" + body[2:]) is None
