"""The Device Management wire (SE 1.2 D.10): ids by name, every command both ways read back by
tshark field by field, garbage decodes only to InvalidFrame, passwords never shown."""

from __future__ import annotations

import pytest
import zigpy.types as t
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect, zcl_frame
from zse.devmgmt.wire import (
    ConfigurationControl,
    DeviceManagement,
    EventConfiguration,
    EventConfigurationRecord,
    PasswordOctets,
    TenancyChangeControl,
    configuration_payload,
    parse_configuration_payload,
)
from zse.errors import DecodeError, InvalidFrame
from zse.se import ids
from zse.zcl.codec import decode_command, encode_command

SERVER = DeviceManagement.ServerCommandDefs
CLIENT = DeviceManagement.ClientCommandDefs
COMMANDS = [
    (definition.id, from_server)
    for from_server, defs in ((False, SERVER), (True, CLIENT))
    for definition in defs
]
P = "zbee_zcl_se.device_management."
CONTROL = TenancyChangeControl.Clear_IHD_Data_Consumer | TenancyChangeControl.Clear_Tariff_Plan


def test_definitions_use_the_ids():
    assert DeviceManagement.cluster_id == ids.DEVICE_MANAGEMENT_CLUSTER == 0x0708
    assert DeviceManagement._skip_registry
    for defs, commands in (
        (SERVER, ids.DeviceManagementServerCommand),
        (CLIENT, ids.DeviceManagementClientCommand),
    ):
        assert {d.name: d.id for d in defs} == {c.name.lower(): c.value for c in commands}
    assert {d.name: d.id for d in DeviceManagement.AttributeDefs} == {
        a.name.lower(): a.value for a in ids.DeviceManagementAttribute
    }


# (definition, fields, tshark shows, tshark raw octets)
CASES = [
    (SERVER.get_change_of_tenancy, {}, {P + "cmd.srv_rx.id": 0x00}, {}),
    (SERVER.get_change_of_supplier, {}, {P + "cmd.srv_rx.id": 0x01}, {}),
    (
        SERVER.request_new_password,
        {"password_type": 2},
        {P + "cmd.srv_rx.id": 0x02, P + "password_type": 2},
        {},
    ),
    (SERVER.get_site_id, {}, {P + "cmd.srv_rx.id": 0x03}, {}),
    (
        SERVER.report_event_configuration,
        {
            "command_index": 0,
            "total_commands": 1,
            "event_configurations": [
                EventConfigurationRecord(event_id=0x06C1, configuration=0x13),
                EventConfigurationRecord(event_id=0x0300, configuration=0x03),
            ],
        },
        {P + "cmd.srv_rx.id": 0x04, P + "command_index": 0, P + "total_commands": 1},
        {},
    ),
    (SERVER.get_cin, {}, {P + "cmd.srv_rx.id": 0x05}, {}),
    (
        CLIENT.publish_change_of_tenancy,
        {
            "provider_id": 0x01020304,
            "issuer_event_id": 0x0A0B0C0D,
            "tariff_type": 0,
            "implementation_date_time": 0x2F000000,
            "proposed_tenancy_change_control": CONTROL,
        },
        {
            P + "cmd.srv_tx.id": 0x00,
            P + "publish_change_of_tenancy.provider_id": 0x01020304,
            P + "publish_change_of_tenancy.issuer_event_id": 0x0A0B0C0D,
            P + "publish_change_of_tenancy.tariff_type": 0,
        },
        {
            P + "publish_change_of_tenancy.implementation_date": "0000002f",
            # tshark 4.0 reads this map32 big-endian; zse sends it little-endian (ZCL 2.6.1)
            P + "publish_change_of_tenancy.proposed_tenancy_change_control": "20020000",
        },
    ),
    (
        CLIENT.publish_change_of_supplier,
        {
            "current_provider_id": 7,
            "issuer_event_id": 8,
            "tariff_type": 2,
            "proposed_provider_id": 9,
            "provider_change_implementation_time": 0x2F000E10,
            "provider_change_control": 0x00000003,
            "proposed_provider_name": "Bright Power",
            "proposed_provider_contact_details": "0800 000 000",
        },
        {
            P + "cmd.srv_tx.id": 0x01,
            P + "publish_change_of_supplier.current_provider_id": 7,
            P + "publish_change_of_supplier.issuer_event_id": 8,
            P + "publish_change_of_supplier.tariff_type": 2,
            P + "publish_change_of_supplier.proposed_provider_id": 9,
            P + "publish_change_of_supplier.provider_change_control": 3,
        },
        {P + "publish_change_of_supplier.provider_change_implementation_time": "100e002f"},
    ),
    (
        CLIENT.request_new_password_response,
        {
            "issuer_event_id": 0x11,
            "implementation_date_time": 0x2F000000,
            "duration_in_minutes": 0x0102,
            "password_type": 1,
            "password": PasswordOctets(b"pw-12345"),
        },
        {
            P + "cmd.srv_tx.id": 0x02,
            P + "request_new_password.issuer_event_id": 0x11,
            P + "password_type": 1,
        },
        # tshark 4.0 reads the duration big-endian: the raw octets are zse's little-endian
        {P + "request_new_password.duration_in_minutes": "0201"},
    ),
    (
        CLIENT.update_site_id,
        {
            "issuer_event_id": 0x21,
            "site_id_time": 0x2F000000,
            "provider_id": 5,
            "site_id": "SITE-0042",
        },
        {
            P + "cmd.srv_tx.id": 0x03,
            P + "update_site_id.issuer_event_id": 0x21,
            P + "update_site_id.provider_id": 5,
        },
        {P + "update_site_id.site_id_time": "0000002f"},
    ),
    (
        CLIENT.set_event_configuration,
        {
            "issuer_event_id": 0x31,
            "start_date_time": 0,
            "event_configuration": EventConfiguration(0x13),
            "configuration_control": ConfigurationControl.APPLY_BY_LIST,
            "event_configuration_payload": configuration_payload(
                ConfigurationControl.APPLY_BY_LIST, [0x06C1, 0x0300]
            ),
        },
        {
            P + "cmd.srv_tx.id": 0x04,
            P + "set_event_configuration.issuer_event_id": 0x31,
            P + "event_configuration": 0x13,
            P + "event_configuration.logging": 3,
            P + "set_event_configuration.configuration_control": 0,
            P + "set_event_configuration.event_configuration.number_of_events": 2,
            P + "set_event_configuration.event_configuration.event_id": 0x06C1,
        },
        {},
    ),
    (
        CLIENT.get_event_configuration,
        {"event_id": 0x06C1},
        {P + "cmd.srv_tx.id": 0x05, P + "get_event_configuration.event_id": 0x06C1},
        {},
    ),
    (
        CLIENT.update_cin,
        {
            "issuer_event_id": 0x41,
            "cin_implementation_time": 0x2F000000,
            "provider_id": 6,
            "customer_id_number": "CIN-77",
        },
        {
            P + "cmd.srv_tx.id": 0x06,
            P + "update_cin.issuer_event_id": 0x41,
            P + "update_cin.provider_id": 6,
        },
        {P + "update_cin.cin_implementation_time": "0000002f"},
    ),
]
STRINGS = {
    CLIENT.publish_change_of_supplier.name: (
        (P + "publish_change_of_supplier.provider_proposed_provider_name", "Bright Power"),
        (
            P + "publish_change_of_supplier.provider_proposed_provider_contact_details",
            "0800 000 000",
        ),
    ),
    CLIENT.update_site_id.name: ((P + "update_site_id.site_id", "SITE-0042"),),
    CLIENT.update_cin.name: ((P + "update_cin.customerid_number", "CIN-77"),),
    CLIENT.request_new_password_response.name: ((P + "request_new_password.password", "pw-12345"),),
}


ATTRIBUTES = list(DeviceManagement.AttributeDefs)


def sample(definition: foundation.ZCLAttributeDef, index: int):
    """A distinctive value of the attribute's type."""
    if definition.type is t.LVBytes:
        return t.LVBytes(f"name {index}".encode())
    if definition.type is t.enum8:
        return t.enum8(index)
    return definition.type(0x2F000000 + index)


@pytest.fixture(scope="module")
def dissected(tmp_path_factory):
    frames = []
    for seq, (definition, kwargs, _, _) in enumerate(CASES):
        from_server = definition in CLIENT
        payload = encode_command(definition.schema(**kwargs))
        zcl = zcl_frame(definition.id, payload, from_server=from_server, tsn=seq)
        frames.append(air_frame(DeviceManagement.cluster_id, zcl, seq))
    for index, definition in enumerate(ATTRIBUTES):
        record = foundation.Attribute(
            definition.id,
            foundation.TypeValue(type=definition.zcl_type, value=sample(definition, index)),
        )
        report = bytes((0x18, index & 0xFF, foundation.GeneralCommand.Report_Attributes))
        frames.append(air_frame(DeviceManagement.cluster_id, report + record.serialize(), 99))
    return dissect(frames, tmp_path_factory.mktemp("tshark"))


@pytest.mark.oracle
@pytest.mark.parametrize(
    "index",
    range(len(ATTRIBUTES)),
    ids=lambda i: f"0x{ATTRIBUTES[i].id:04X}-{ATTRIBUTES[i].name}",
)
def test_tshark_reads_the_same_attribute_report(dissected, index):
    """Report Attributes (ZCL 2.5.11) of each attribute a display reads: Wireshark names it a
    Device Management attribute with zse's id, data type and value bytes."""
    definition = ATTRIBUTES[index]
    packet = dissected[len(CASES) + index]
    assert not packet.malformed, [f for f in packet.fields if f[0].startswith("_ws")]
    assert [int(v, 0) for v in packet.show(P + "attr_id")] == [definition.id]
    assert packet.show("zbee_zcl.attr.data.type") == [f"0x{definition.zcl_type:02x}"]
    names = [name for name, _, _ in packet.fields]
    value_field = packet.fields[names.index("zbee_zcl.attr.data.type") + 1]
    assert sample(definition, index).serialize().hex().endswith(value_field[2])


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
    for name, text in STRINGS.get(definition.name, ()):
        assert packet.show(name) == [text], name
    if definition is SERVER.report_event_configuration:
        assert [int(v, 0) for v in packet.show(P + "event_id")] == [0x06C1, 0x0300]
        assert [int(v, 0) for v in packet.show(P + "event_configuration")] == [0x13, 0x03]


@pytest.mark.parametrize(("command_id", "from_server"), COMMANDS)
@given(payload=st.binary(max_size=80))
def test_garbage_decodes_only_to_decode_error(command_id, from_server, payload):
    try:
        command, rest = decode_command(
            DeviceManagement, command_id, payload, from_server=from_server
        )
    except DecodeError as exc:
        error = exc
    else:
        assert encode_command(command) == payload[: len(payload) - len(rest)]
        return
    assert isinstance(error, InvalidFrame)
    assert "Device Management" in str(error)


@given(control=st.integers(0, 255), payload=st.binary(max_size=40))
def test_garbage_configuration_payload_decodes_only_to_invalid_frame(control, payload):
    try:
        kind, value = parse_configuration_payload(control, payload)
    except InvalidFrame:
        return
    assert configuration_payload(kind, value) == payload[: len(configuration_payload(kind, value))]


def test_configuration_payload_round_trips():
    for control, value in (
        (ConfigurationControl.APPLY_BY_LIST, [1, 0xFFFF]),
        (ConfigurationControl.APPLY_BY_EVENT_GROUP, 0x06),
        (ConfigurationControl.APPLY_BY_LOG_TYPE, 3),
        (ConfigurationControl.APPLY_BY_CONFIGURATION_MATCH, 0x13),
    ):
        assert parse_configuration_payload(control, configuration_payload(control, value)) == (
            control,
            value,
        )
    with pytest.raises(InvalidFrame, match="configuration control 4"):
        parse_configuration_payload(4, b"\x00")
    with pytest.raises(InvalidFrame, match="list does not fit"):
        parse_configuration_payload(0, b"\x02\x01\x00")


def test_a_password_is_never_shown():
    secret = b"correct horse"
    command = CLIENT.request_new_password_response.schema(
        issuer_event_id=1,
        implementation_date_time=0,
        duration_in_minutes=0,
        password_type=1,
        password=PasswordOctets(secret),
    )
    wire = encode_command(command)
    decoded, _ = decode_command(DeviceManagement, 0x02, wire, from_server=True)
    for text in (repr(command), str(command), repr(decoded), str(decoded.password)):
        assert "correct" not in text
        assert "horse" not in text
        assert "13 octets" in text
    assert bytes(decoded.password) == secret
    with pytest.raises(InvalidFrame) as refused:
        decode_command(DeviceManagement, 0x02, wire[:-1], from_server=True)
    assert "correct" not in str(refused.value)
