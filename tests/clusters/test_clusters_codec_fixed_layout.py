"""The codec's one-call path for fixed-layout commands reads and writes exactly what zigpy's
per-field path does (zigpy's ``CommandSchema.deserialize`` / ``serialize`` are the oracle)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.types import FixedList

from zse.drlc.wire import Drlc
from zse.errors import InvalidFrame
from zse.messaging.wire import Messaging
from zse.price.wire import Price
from zse.zcl.codec import _fixed_layout, decode_command, encode_command, encode_fields

COMMANDS = [
    (cluster, command_id, from_server)
    for cluster in (Drlc, Price, Messaging)
    for from_server, table in ((True, cluster.client_commands), (False, cluster.server_commands))
    for command_id, definition in table.items()
    if _fixed_layout(definition.schema) is not None
]


def test_the_hot_commands_take_the_fixed_path():
    names = {
        (c.__name__, c.client_commands[i].name if s else c.server_commands[i].name)
        for c, i, s in COMMANDS
    }
    assert {
        ("Drlc", "load_control_event"),
        ("Drlc", "report_event_status"),
        ("Drlc", "cancel_load_control_event"),
        ("Price", "get_current_price"),
    } <= names


@pytest.mark.parametrize(("cluster", "command_id", "from_server"), COMMANDS)
@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=80))
def test_fixed_path_agrees_with_zigpy(cluster, command_id, from_server, data):
    table = cluster.client_commands if from_server else cluster.server_commands
    schema = table[command_id].schema
    try:
        theirs, their_rest = schema.deserialize(data)
    except (ValueError, KeyError, IndexError):
        with pytest.raises(InvalidFrame):
            decode_command(cluster, command_id, data, from_server=from_server)
        return
    ours, rest = decode_command(cluster, command_id, data, from_server=from_server)
    assert ours == theirs
    assert rest == their_rest
    assert [type(getattr(ours, f.name)) for f in schema.fields] == [
        type(getattr(theirs, f.name)) for f in schema.fields
    ]
    assert encode_command(ours) == bytes(theirs.serialize()) == data[: len(data) - len(rest)]


def _field_values(schema):
    """Each field's value: an int across and beyond its range, or octets of right and wrong
    length (as bytes or a list, some beyond a byte), or a value of another kind."""
    fields = {}
    for f in schema.fields:
        if issubclass(f.type, FixedList):
            octets = st.binary(min_size=f.type._length - 1, max_size=f.type._length + 1)
            fields[f.name] = st.one_of(
                octets,
                octets.map(list),
                st.lists(st.integers(-1, 256), min_size=f.type._length, max_size=f.type._length),
                st.integers(0, 3),
            )
        else:
            bits = 8 * f.type._size
            fields[f.name] = st.one_of(
                st.integers(-(2**bits), 2 ** (bits + 1)), st.booleans(), st.just("1")
            )
    return st.fixed_dictionaries(fields)


@pytest.mark.parametrize(("cluster", "command_id", "from_server"), COMMANDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_encoding_fields_agrees_with_zigpys_constructor(cluster, command_id, from_server, data):
    """``encode_fields(schema, **values)`` and ``encode_command(schema(**values))`` write what
    zigpy's ``schema(**values).serialize()`` does, or raise its error, whatever the values
    (octets of the wrong length were once padded or cut by the one-call path)."""
    table = cluster.client_commands if from_server else cluster.server_commands
    schema = table[command_id].schema
    values = data.draw(_field_values(schema))
    try:
        theirs = bytes(schema(**values).serialize())
    except Exception as exc:  # zigpy's own error, whichever it is
        with pytest.raises(type(exc)):
            encode_fields(schema, **values)
        with pytest.raises(type(exc)):
            encode_command(schema(**values))
        return
    assert encode_fields(schema, **values) == theirs
    assert encode_command(schema(**values)) == theirs
