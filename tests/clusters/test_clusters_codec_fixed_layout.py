"""The codec's one-call path for fixed-layout commands reads and writes exactly what zigpy's
per-field path does (zigpy's ``CommandSchema.deserialize`` / ``serialize`` are the oracle)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.drlc.wire import Drlc
from zse.errors import InvalidFrame
from zse.messaging.wire import Messaging
from zse.price.wire import Price
from zse.zcl.codec import _fixed_layout, decode_command, encode_command

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
