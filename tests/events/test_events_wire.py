"""The Events wire (SE 1.2 D.11): ids by name, every command both ways read back by tshark
field by field, garbage decodes only to InvalidFrame."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.clusters.se_frames import air_frame, dissect, zcl_frame
from zse.errors import DecodeError, InvalidFrame
from zse.events.wire import ClearedLogs, Events, LoggedEvent
from zse.se import ids
from zse.zcl.codec import decode_command, encode_command

SERVER = Events.ServerCommandDefs
CLIENT = Events.ClientCommandDefs
COMMANDS = [
    (definition.id, from_server)
    for from_server, defs in ((False, SERVER), (True, CLIENT))
    for definition in defs
]
P = "zbee_zcl_se.events."


def test_definitions_use_the_ids():
    assert Events.cluster_id == ids.EVENTS == 0x0709
    for defs, commands in (
        (SERVER, ids.EventsServerCommand),
        (CLIENT, ids.EventsClientCommand),
    ):
        assert {d.name: d.id for d in defs} == {c.name.lower(): c.value for c in commands}


CASES = [
    (
        SERVER.get_event_log,
        {
            "event_control_log_id": 0x13,
            "event_id": 0x06C1,
            "start_time": 0x2F000000,
            "end_time": 0xFFFFFFFF,
            "number_of_events": 5,
            "event_offset": 2,
        },
        {
            P + "cmd.srv_rx.id": 0x00,
            P + "get_event_log.event_control_log_id": 0x13,
            P + "get_event_log.event_id": 0x06C1,
            P + "get_event_log.number_of_events": 5,
            P + "get_event_log.event_offset": 2,
        },
        {P + "get_event_log.start_time": "0000002f", P + "get_event_log.end_time": "ffffffff"},
    ),
    (
        SERVER.clear_event_log_request,
        {"log_id": 3},
        {P + "cmd.srv_rx.id": 0x01, P + "clear_event_log_request.log_id": 3},
        {},
    ),
    (
        CLIENT.publish_event,
        {
            "log_id": 3,
            "event_id": 0x06C1,
            "event_time": 0x2F000010,
            "event_control": 0,
            "event_data": b"\x4d\x00\x00\x00",
        },
        {
            P + "cmd.srv_tx.id": 0x00,
            P + "publish_event.log_id": 3,
            P + "publish_event.event_id": 0x06C1,
            P + "publish_event.event_control": 0,
        },
        {P + "publish_event.event_time": "1000002f", P + "publish_event.event_data": "044d000000"},
    ),
    (
        CLIENT.publish_event_log,
        {
            "total_number_of_matching_events": 7,
            "command_index": 0,
            "total_commands": 2,
            "number_of_events_log_payload_control": 0x20,
            "events": [
                LoggedEvent(log_id=3, event_id=0x06C1, event_time=0x2F000010, event_data=b"\x01"),
                LoggedEvent(log_id=4, event_id=0x06C9, event_time=0x2F000000, event_data=b""),
            ],
        },
        {
            P + "cmd.srv_tx.id": 0x01,
            # tshark 4.0 names Total Number of Matching Events publish_event_log.event_id
            P + "publish_event_log.command_index": 0,
            P + "publish_event_log.total_commands": 2,
            P + "publish_event_log.number_of_events_log_payload_control": 0x20,
        },
        {},
    ),
    (
        CLIENT.clear_event_log_response,
        {"cleared_event_logs": ClearedLogs.General_Event_Log | ClearedLogs.Fault_Log},
        {P + "cmd.srv_tx.id": 0x02, P + "clear_event_log_response.cleared_event_logs": 0x0C},
        {},
    ),
]


@pytest.fixture(scope="module")
def dissected(tmp_path_factory):
    frames = []
    for seq, (definition, kwargs, _, _) in enumerate(CASES):
        from_server = definition in CLIENT
        payload = encode_command(definition.schema(**kwargs))
        zcl = zcl_frame(definition.id, payload, from_server=from_server, tsn=seq)
        frames.append(air_frame(Events.cluster_id, zcl, seq))
    return dissect(frames, tmp_path_factory.mktemp("tshark"))


def test_every_command_is_covered():
    assert {definition.name for definition, *_ in CASES} == {
        d.name for defs in (SERVER, CLIENT) for d in defs
    }


@pytest.mark.oracle
@pytest.mark.parametrize("index", range(len(CASES)), ids=lambda i: CASES[i][0].name)
def test_tshark_reads_the_same_command_fields(dissected, index):
    definition, _, show, raw = CASES[index]
    packet = dissected[index]
    assert not packet.malformed, [f for f in packet.fields if f[0].startswith("_ws")]
    for name, expected in show.items():
        assert [int(v, 0) for v in packet.show(name)][:1] == [expected], name
    for name, expected in raw.items():
        assert packet.raw(name)[:1] == [expected], name
    if definition is CLIENT.publish_event_log:
        log = P + "publish_event_log."
        # the first event_id is the total of matching events (tshark 4.0's field name)
        assert [int(v, 0) for v in packet.show(log + "event_id")] == [7, 0x06C1, 0x06C9]
        assert [int(v, 0) for v in packet.show(log + "log_id")] == [3, 4]
        assert packet.raw(log + "event_time") == ["1000002f", "0000002f"]
        assert packet.raw(log + "event_data") == ["0101", "00"]


@pytest.mark.parametrize(("command_id", "from_server"), COMMANDS)
@given(payload=st.binary(max_size=80))
def test_garbage_decodes_only_to_decode_error(command_id, from_server, payload):
    try:
        command, rest = decode_command(Events, command_id, payload, from_server=from_server)
    except DecodeError as exc:
        error = exc
    else:
        assert encode_command(command) == payload[: len(payload) - len(rest)]
        return
    assert isinstance(error, InvalidFrame)
    assert "Events" in str(error)
