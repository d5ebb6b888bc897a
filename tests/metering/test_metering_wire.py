"""#14.1: the Metering wire (SE D.3): ids by name, zigpy's definitions where right, garbage
decodes only to InvalidFrame, and every command and attribute zse encodes dissects in tshark
with the same field values and no malformed packet."""

from __future__ import annotations

import subprocess

import pytest
import zigpy.types as t
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation
from zigpy.zcl.clusters.smartenergy import Metering as ZigpyMetering

from tests.clusters.se_frames import air_frame, dissect, tshark, zcl_frame
from zse.errors import DecodeError, InvalidFrame
from zse.metering.snapshot_types import ScheduleEntry, SnapshotSchedules, schedule_field
from zse.metering.wire import Metering
from zse.se import ids
from zse.se.types import GetProfileStatus, IntervalChannel
from zse.zcl.codec import decode_command, encode_command

SERVER = Metering.ServerCommandDefs
CLIENT = Metering.ClientCommandDefs
COMMANDS = [
    (definition.id, from_server)
    for from_server, defs in ((False, SERVER), (True, CLIENT))
    for definition in defs
]
#: attributes zse declares that zigpy 2.x lacks (docs/metering.md), all the SE 1.2
#: day / week / month consumption of D.3.2.2.5
NOT_IN_ZIGPY = {
    a.name.lower()
    for a in ids.MeteringAttribute
    if (
        a.name.startswith(("PREVIOUS_DAY", "CURRENT_WEEK", "PREVIOUS_WEEK", "CURRENT_MONTH"))
        and not a.name.endswith("MAX_DEMAND")
    )  # zigpy's (0x040D, 0x040E)
    or a.name.startswith(("PREVIOUS_MONTH", "HISTORICAL_FREEZE"))
} | {  # the SE 1.2 supply control attributes but Supply Status (zse.metering.supply)
    a.name.lower() for a in ids.MeteringAttribute if 0x0605 <= a <= 0x0B15
}
#: SE 1.2's tier summations above tier 15 (D.3.2.2.2), by name -> id (zigpy has 1-15)
TIERS_ABOVE_15 = {
    f"current_tier{tier}_summ_{way}": ids.tier_summation_attribute(tier, received=way == "received")
    for tier in range(16, ids.MAX_TIER + 1)
    for way in ("delivered", "received")
}
NOT_IN_ZIGPY |= set(TIERS_ABOVE_15)


def test_definitions_use_the_ids():
    assert Metering.cluster_id == ids.METERING == 0x0702
    assert Metering._skip_registry
    for defs, commands in (
        (SERVER, ids.MeteringServerCommand),
        (CLIENT, ids.MeteringClientCommand),
    ):
        assert {d.name: d.id for d in defs} == {c.name.lower(): c.value for c in commands}
    assert {d.name: d.id for d in Metering.AttributeDefs} == {
        **{a.name.lower(): a.value for a in ids.MeteringAttribute},
        **TIERS_ABOVE_15,
    }


def test_tier_summation_ids_are_two_a_tier_from_0x0100():
    assert ids.tier_summation_attribute(1) == ids.MeteringAttribute.CURRENT_TIER1_SUMM_DELIVERED
    assert ids.tier_summation_attribute(15, received=True) == 0x011D
    assert ids.tier_summation_attribute(16) == 0x011E
    assert ids.tier_summation_attribute(48, received=True) == 0x015F
    for tier in (0, 49):
        with pytest.raises(ValueError, match=f"tier {tier} has no summation attribute"):
            ids.tier_summation_attribute(tier)


@pytest.mark.oracle
def test_wireshark_names_each_tier_summation_id():
    """Wireshark's value strings for Metering attribute ids (packet-zbee-zcl-se.c) name
    CurrentTierNSummationDelivered / Received, N 1-48, at zse's ids."""
    out = subprocess.run(
        [tshark(), "-G", "values"], capture_output=True, text=True, check=True
    ).stdout
    names = {
        int(row[2]): row[3]
        for line in out.splitlines()
        if (row := line.split("\t"))[:2] == ["V", "zbee_zcl_se.met.attr_id"]
    }
    for tier in range(1, ids.MAX_TIER + 1):
        for way, received in (("Delivered", False), ("Received", True)):
            attribute = ids.tier_summation_attribute(tier, received=received)
            assert names[attribute] == f"Current Tier {tier} Summation {way}"


def test_zigpy_definitions_are_used_where_zigpy_has_them():
    zigpy_defs = {d.name: d for d in ZigpyMetering.AttributeDefs}
    for definition in Metering.AttributeDefs:
        if definition.name in NOT_IN_ZIGPY:
            assert definition.name not in zigpy_defs  # when zigpy adds them, use zigpy's
            continue
        assert definition == zigpy_defs[definition.name]
    # the commands zse keeps from zigpy are its wire, field for field
    for ours, theirs in (
        (SERVER.request_mirror_response, ZigpyMetering.ServerCommandDefs.request_mirror_response),
        (SERVER.mirror_removed, ZigpyMetering.ServerCommandDefs.mirror_removed),
        (SERVER.request_fast_poll_mode, ZigpyMetering.ServerCommandDefs.request_fast_poll_mode),
        (
            CLIENT.request_fast_poll_mode_response,
            ZigpyMetering.ClientCommandDefs.request_fast_poll_mode_response,
        ),
    ):
        assert [(f.name, f.type) for f in ours.schema.fields] == [
            (f.name, f.type) for f in theirs.schema.fields
        ]


def test_week_and_month_consumption_types():
    """D.3.2.2.5: day and week consumption are uint24, month consumption uint32."""
    a = Metering.AttributeDefs
    assert a.previous_day8_consumption_received.id == 0x042D
    assert a.current_week_consumption_delivered.type is t.uint24_t
    assert a.previous_week5_consumption_received.id == 0x043B
    assert a.current_month_consumption_delivered.type is t.uint32_t
    assert a.previous_month13_consumption_received.id == 0x045B


def test_get_profile_response_intervals_are_counted():
    """zigpy's list would read the trailing bytes as intervals; zse stops at the count."""
    response = CLIENT.get_profile_response.schema(
        end_time=0x2F000000,
        status=GetProfileStatus.Success,
        profile_interval_period=3,
        number_of_periods_delivered=2,
        intervals=[0x000102, 0xFFFFFF],
    )
    wire = encode_command(response)
    decoded, rest = decode_command(Metering, 0x00, wire + b"\x09", from_server=True)
    assert decoded.intervals == [0x000102, 0xFFFFFF]
    assert rest == b"\x09"
    with pytest.raises(InvalidFrame, match="intervals at byte offset 7"):
        decode_command(Metering, 0x00, wire[:-2], from_server=True)
    with pytest.raises(ValueError, match="length"):
        encode_command(response.replace(number_of_periods_delivered=3))


@pytest.mark.parametrize(("command_id", "from_server"), COMMANDS)
@given(payload=st.binary(max_size=80))
def test_garbage_decodes_only_to_decode_error(command_id, from_server, payload):
    try:
        command, rest = decode_command(Metering, command_id, payload, from_server=from_server)
    except DecodeError as exc:
        error = exc
    else:
        assert encode_command(command) == payload[: len(payload) - len(rest)]
        return
    assert isinstance(error, InvalidFrame)
    assert "Metering" in str(error)


# --- tshark -------------------------------------------------------------------------------------

P = "zbee_zcl_se.met."
CASES = [
    (
        SERVER.get_profile,
        {
            "interval_channel": IntervalChannel.Consumption_Received,
            "end_time": 0x2F000000,
            "number_of_periods": 24,
        },
        {
            P + "cmd.srv_rx.id": 0x00,
            P + "get_profile.interval_channel": 1,
            P + "get_profile.number_of_periods": 24,
        },
        {P + "get_profile.end_time": "0000002f"},
    ),
    (
        SERVER.request_mirror_response,
        {"endpoint_id": 0x0005},
        {P + "cmd.srv_rx.id": 0x01, P + "request_mirror_rsp.endpoint_id": 5},
        {},
    ),
    (
        SERVER.mirror_removed,
        {"removed_endpoint_id": 0xFFFF},
        {P + "cmd.srv_rx.id": 0x02, P + "mirror_removed.removed_endpoint_id": 0xFFFF},
        {},
    ),
    (
        SERVER.request_fast_poll_mode,
        {"fast_poll_update_period": 2, "duration": 15},
        {
            P + "cmd.srv_rx.id": 0x03,
            P + "request_fast_poll_mode.fast_poll_update_period": 2,
            P + "request_fast_poll_mode.duration": 15,
        },
        {},
    ),
    (
        CLIENT.get_profile_response,
        {
            "end_time": 0x2F000E10,
            "status": GetProfileStatus.Success,
            "profile_interval_period": 3,
            "number_of_periods_delivered": 3,
            "intervals": [0x000102, 0xFFFFFF, 7],
        },
        {
            P + "cmd.srv_tx.id": 0x00,
            P + "get_profile_response.status": 0,
            P + "get_profile_response.profile_interval_period": 3,
            P + "get_profile_response.number_of_periods_delivered": 3,
        },
        {P + "get_profile_response.end_time": "100e002f"},
    ),
    (
        CLIENT.get_profile_response,
        {
            "end_time": 0,
            "status": GetProfileStatus.No_Intervals_Available_For_The_Requested_Time,
            "profile_interval_period": 1,
            "number_of_periods_delivered": 0,
            "intervals": [],
        },
        {
            P + "get_profile_response.status": 5,
            P + "get_profile_response.number_of_periods_delivered": 0,
        },
        {},
    ),
    (CLIENT.request_mirror, {}, {P + "cmd.srv_tx.id": 0x01}, {}),
    (CLIENT.remove_mirror, {}, {P + "cmd.srv_tx.id": 0x02}, {}),
    (
        CLIENT.request_fast_poll_mode_response,
        {"applied_update_period": 3, "fast_poll_mode_end_time": 0x2F000384},
        {
            P + "cmd.srv_tx.id": 0x03,
            P + "request_fast_poll_mode_response.applied_update_period": 3,
        },
        {P + "request_fast_poll_mode_response.fast_poll_mode_end_time": "8403002f"},
    ),
    # SE 1.2 mirror notifications; Wireshark 4.0 dissects all but Configure Notification
    # Scheme / Flag (their command id only)
    (
        CLIENT.configure_mirror,
        {
            "issuer_event_id": 0x01020304,
            "reporting_interval": 1800,
            "mirror_notification_reporting": True,
            "notification_scheme": 2,
        },
        {
            P + "cmd.srv_tx.id": 0x08,
            P + "configure_mirror.issuer_event_id": 0x01020304,
            P + "configure_mirror.reporting_interval": 1800,
            P + "configure_mirror.notification_scheme": 2,
        },
        {P + "configure_mirror.mirror_notification_reporting": "01"},
    ),
    (
        CLIENT.configure_notification_scheme,
        {"issuer_event_id": 7, "notification_scheme": 3, "notification_flag_order": 0x43210},
        {P + "cmd.srv_tx.id": 0x09},
        {},
    ),
    (
        CLIENT.configure_notification_flag,
        {
            "issuer_event_id": 8,
            "notification_scheme": 3,
            "notification_flag_attribute_id": 0x0001,
            "cluster_id": 0x0700,
            "manufacturer_code": 0,
            "number_of_commands": 2,
            "command_ids": [0x00, 0x01],
        },
        {P + "cmd.srv_tx.id": 0x0A},
        {},
    ),
    (
        CLIENT.get_notified_message,
        {
            "notification_scheme": 1,
            "notification_flag_attribute_id": 0x0000,
            "notification_flags": 0x00010004,
        },
        {
            P + "cmd.srv_tx.id": 0x0B,
            P + "get_notified_msg.notification_scheme": 1,
            P + "get_notified_msg.notification_flag_attribute_id": 0,
            # Wireshark 4.0.17 shows the flags as the Functional Notification Flags bitmap
            P + "attr.func_noti_flag": 0x00010004,
            P + "attr.func_noti_flag.time_sync": 1,
            P + "attr.func_noti_flag.display_message": 1,
        },
        {},
    ),
    (
        SERVER.mirror_report_attribute_response,
        {"notification_scheme": 2, "notification_flags": [0x14, 0x1, 0, 0, 0x80]},
        {
            P + "cmd.srv_rx.id": 0x09,
            P + "mirror_report_attribute_response.notification_scheme": 2,
        },
        {},
    ),
    # SE 1.2 supply control (zse.metering.supply): every field as Wireshark 4.0 dissects it
    (
        SERVER.reset_load_limit_counter,
        {"provider_id": 7, "issuer_event_id": 9},
        {
            P + "cmd.srv_rx.id": 0x0A,
            P + "reset_load_limit_counter.provider_id": 7,
            P + "reset_load_limit_counter.issuer_event_id": 9,
        },
        {},
    ),
    (
        SERVER.change_supply,
        {
            "provider_id": 7,
            "issuer_event_id": 9,
            "request_date_time": 0x2F000000,
            "implementation_date_time": 0x2F000E10,
            "proposed_supply_status": 1,
            "supply_control_bits": 1,
        },
        {
            P + "cmd.srv_rx.id": 0x0B,
            P + "change_supply.provider_id": 7,
            P + "change_supply.issuer_event_id": 9,
            P + "change_supply.proposed_supply_status": 1,
            P + "change_supply.supply_control_bits": 1,
        },
        {
            P + "change_supply.request_date_time": "0000002f",
            P + "change_supply.implementation_date_time": "100e002f",
        },
    ),
    (
        SERVER.local_change_supply,
        {"proposed_supply_status": 2},
        {P + "cmd.srv_rx.id": 0x0C, P + "local_change_supply.proposed_supply_status": 2},
        {},
    ),
    (
        SERVER.set_supply_status,
        {
            "issuer_event_id": 9,
            "supply_tamper_state": 0,
            "supply_depletion_state": 1,
            "supply_uncontrolled_flow_state": 3,
            "load_limit_supply_state": 2,
        },
        {
            P + "cmd.srv_rx.id": 0x0D,
            P + "set_supply_status.issuer_event_id": 9,
            P + "set_supply_status.supply_tamper_state": 0,
            P + "set_supply_status.supply_depletion_state": 1,
            P + "set_supply_status.supply_uncontrolled_flow_state": 3,
            P + "set_supply_status.load_limit_supply_state": 2,
        },
        {},
    ),
    (
        SERVER.set_uncontrolled_flow_threshold,
        {
            "provider_id": 7,
            "issuer_event_id": 9,
            "uncontrolled_flow_threshold": 250,
            "unit_of_measure": 1,
            "multiplier": 3,
            "divisor": 10,
            "stabilisation_period": 20,
            "measurement_period": 30,
        },
        {
            P + "cmd.srv_rx.id": 0x0E,
            P + "set_uncontrolled_flow_threshold.provider_id": 7,
            P + "set_uncontrolled_flow_threshold.issuer_event_id": 9,
            P + "set_uncontrolled_flow_threshold.uncontrolled_flow_threshold": 250,
            P + "set_uncontrolled_flow_threshold.unit_of_measure": 1,
            P + "set_uncontrolled_flow_threshold.multiplier": 3,
            P + "set_uncontrolled_flow_threshold.divisor": 10,
            P + "set_uncontrolled_flow_threshold.stabilisation_period": 20,
            P + "set_uncontrolled_flow_threshold.measurement_period": 30,
        },
        {},
    ),
    (
        CLIENT.supply_status_response,
        {
            "provider_id": 7,
            "issuer_event_id": 9,
            "implementation_date_time": 0x2F000E10,
            "supply_status": 2,
        },
        {
            P + "cmd.srv_tx.id": 0x0C,
            P + "supply_status_response.provider_id": 7,
            P + "supply_status_response.issuer_event_id": 9,
            P + "supply_status_response.supply_status_after_implementation": 2,
        },
        {P + "supply_status_response.implementation_date_time": "100e002f"},
    ),
    # SE 1.2 snapshots and sampling (tests/metering/test_metering_snapshots.py has the rest)
    (
        SERVER.schedule_snapshot,
        {
            "issuer_event_id": 0x01020304,
            "command_index": 0,
            "total_number_of_commands": 1,
            "schedules": SnapshotSchedules(
                [ScheduleEntry(7, 0x2F000000, schedule_field(3, 1), 4, 0x00010001)]
            ),
        },
        {
            P + "cmd.srv_rx.id": 0x04,
            P + "schedule_snapshot.issuer_event_id": 0x01020304,
            P + "schedule_snapshot.total_number_of_commands": 1,
            P + "schedule_snapshot.snapshot_schedule_payload.snapshot_schedule_id": 7,
            P + "snapshot_schedule.frequency": 3,
            P + "snapshot_schedule.frequency_type": 1,
            P + "snapshot_schedule.frequency_wild_card": 2,
            P + "schedule_snapshot.snapshot_schedule_payload.snapshot_payload_type": 4,
            P + "schedule_snapshot.snapshot_schedule_payload.snapshot_cause": 0x00010001,
        },
        {P + "schedule_snapshot.snapshot_schedule_payload.snapshot_start_time": "0000002f"},
    ),
    (
        SERVER.take_snapshot,
        {"snapshot_cause": 0x400},
        {P + "cmd.srv_rx.id": 0x05, P + "take_snapshot.snapshot_cause": 0x400},
        {},
    ),
    (
        SERVER.get_snapshot,
        {
            "earliest_start_time": 0x2F000000,
            "latest_end_time": 0x2F001000,
            "snapshot_offset": 2,
            "snapshot_cause": 0xFFFFFFFF,
        },
        {
            P + "cmd.srv_rx.id": 0x06,
            P + "get_snapshot.snapshot_offset": 2,
            P + "get_snapshot.snapshot_cause": 0xFFFFFFFF,
        },
        {P + "get_snapshot.start_time": "0000002f", P + "get_snapshot.end_time": "0010002f"},
    ),
    (
        SERVER.start_sampling,
        {
            "issuer_event_id": 9,
            "start_sampling_time": 0x2F000000,
            "sample_type": 4,
            "sample_request_interval": 60,
            "max_number_of_samples": 300,
        },
        {
            P + "cmd.srv_rx.id": 0x07,
            P + "start_sampling.issuer_event_id": 9,
            P + "start_sampling.sample_type": 4,
            P + "start_sampling.sample_request_interval": 60,
            P + "start_sampling.max_number_of_samples": 300,
        },
        {P + "start_sampling.start_sampling_time": "0000002f"},
    ),
    (
        SERVER.get_sampled_data,
        {
            "sample_id": 0x0102,
            "earliest_sample_time": 0x2F000000,
            "sample_type": 0,
            "number_of_samples": 19,
        },
        {
            P + "cmd.srv_rx.id": 0x08,
            P + "get_sampled_data.sample_id": 0x0102,
            P + "get_sampled_data.sample_type": 0,
            P + "get_sampled_data.number_of_samples": 19,
        },
        {P + "get_sampled_data.sample_start_time": "0000002f"},
    ),
    (
        CLIENT.schedule_snapshot_response,
        {"issuer_event_id": 0x01020304, "answers": [(7, 0), (8, 5)]},
        {
            P + "cmd.srv_tx.id": 0x04,
            P + "schedule_snapshot_response.issuer_event_id": 0x01020304,
            P + "schedule_snapshot_response.response_snapshot_schedule_id": 7,
            P + "schedule_snapshot_response.snapshot_schedule_confirmation": 0,
        },
        {},
    ),
    (
        CLIENT.take_snapshot_response,
        {"snapshot_id": 0x01020304, "snapshot_confirmation": 0},
        {
            P + "cmd.srv_tx.id": 0x05,
            P + "take_snapshot_response.snapshot_id": 0x01020304,
            P + "take_snapshot_response.snapshot_confirmation": 0,
        },
        {},
    ),
    (
        CLIENT.publish_snapshot,
        {
            "snapshot_id": 0x01020304,
            "snapshot_time": 0x2F000E10,
            "total_snapshots_found": 3,
            "command_index": 1,
            "total_number_of_commands": 2,
            "snapshot_cause": 0x10400,
            "snapshot_payload_type": 4,
            "snapshot_sub_payload": bytes.fromhex("0605040302010100ff00000000"),
        },
        {
            P + "cmd.srv_tx.id": 0x06,
            P + "publish_snapshot.snapshot_id": 0x01020304,
            P + "publish_snapshot.snapshots_found": 3,
            P + "publish_snapshot.command_index": 1,
            P + "publish_snapshot.total_commands": 2,
            P + "publish_snapshot.snapshot_cause": 0x10400,
            P + "publish_snapshot.payload_type": 4,
        },
        {
            P + "publish_snapshot.snapshot_time": "100e002f",
            P + "publish_snapshot.sub_payload": "0605040302010100ff00000000",
        },
    ),
    (
        CLIENT.get_sampled_data_response,
        {
            "sample_id": 0x0102,
            "sample_start_time": 0x2F000E10,
            "sample_type": 4,
            "sample_request_interval": 60,
            "number_of_samples": 3,
            "samples": [1, 0xFFFFFF, 0x123456],
        },
        {
            P + "cmd.srv_tx.id": 0x07,
            P + "get_sampled_data_rsp.sample_id": 0x0102,
            P + "get_sampled_data_rsp.sample_type": 4,
            P + "get_sampled_data_rsp.sample_request_interval": 60,
            P + "get_sampled_data_rsp.number_of_samples": 3,
        },
        {P + "get_sampled_data_rsp.sample_start_time": "100e002f"},
    ),
    (
        CLIENT.start_sampling_response,
        {"sample_id": 0xFFFF},
        {P + "cmd.srv_tx.id": 0x0D, P + "start_sampling_response.sample_id": 0xFFFF},
        {},
    ),
]
ATTRIBUTES = list(Metering.AttributeDefs)


def sample(definition: foundation.ZCLAttributeDef, index: int):
    """A distinctive value of the attribute's type (negative for the signed demand)."""
    if definition.type is t.int24s:
        return definition.type(-1500 - index)
    if definition.type is t.uint48_t:
        return definition.type(0x0102_0304_0500 + index)
    return definition.type(index % 100 + 1)


@pytest.fixture(scope="module")
def dissected(tmp_path_factory):
    frames = []
    for seq, (definition, kwargs, _, _) in enumerate(CASES):
        from_server = definition in CLIENT
        payload = encode_command(definition.schema(**kwargs))
        zcl = zcl_frame(definition.id, payload, from_server=from_server, tsn=seq)
        frames.append(air_frame(Metering.cluster_id, zcl, seq))
    for index, definition in enumerate(ATTRIBUTES):
        record = foundation.Attribute(
            definition.id,
            foundation.TypeValue(type=definition.zcl_type, value=sample(definition, index)),
        )
        report = bytes((0x18, index & 0xFF, foundation.GeneralCommand.Report_Attributes))
        frames.append(air_frame(Metering.cluster_id, report + record.serialize(), len(frames)))
    return dissect(frames, tmp_path_factory.mktemp("tshark"))


def test_every_command_is_covered():
    assert {definition.name for definition, *_ in CASES} == {
        d.name for defs in (SERVER, CLIENT) for d in defs
    }


@pytest.mark.oracle
@pytest.mark.parametrize("index", range(len(CASES)), ids=lambda i: CASES[i][0].name)
def test_tshark_reads_the_same_command_fields(dissected, index):
    definition, kwargs, show, raw = CASES[index]
    packet = dissected[index]
    assert not packet.malformed, [f for f in packet.fields if f[0].startswith("_ws")]
    for name, expected in {**show}.items():
        assert [int(v, 0) for v in packet.show(name)][:1] == [expected], name
    for name, expected in raw.items():
        assert packet.raw(name)[:1] == [expected], name
    if definition is SERVER.mirror_report_attribute_response:
        # scheme B: Functional Notification Flags, then Notification Flags 2-5, each named
        bitmaps = ("func_noti_flag", "noti_flag_2", "noti_flag_3", "noti_flag_4", "noti_flag_5")
        flags = [int(v, 0) for name in bitmaps for v in packet.show(P + "attr." + name)]
        assert flags == kwargs["notification_flags"]
        assert packet.show(P + "attr.noti_flag_5.reset_battery_counter") == ["1"]
    if definition is CLIENT.get_profile_response:
        intervals = [int(v) for v in packet.show(P + "get_profile_response.intervals")]
        assert intervals == kwargs["intervals"]
    if definition is CLIENT.get_sampled_data_response:
        samples = [int(v) for v in packet.show(P + "get_sampled_data_rsp.samples")]
        assert samples == kwargs["samples"]
    if definition is CLIENT.schedule_snapshot_response:
        confirmations = packet.show(P + "schedule_snapshot_response.snapshot_schedule_confirmation")
        assert [int(v, 0) for v in confirmations] == [0, 5]


@pytest.mark.oracle
@pytest.mark.parametrize(
    "index", range(len(ATTRIBUTES)), ids=lambda i: f"0x{ATTRIBUTES[i].id:04X}-{ATTRIBUTES[i].name}"
)
def test_tshark_reads_the_same_attribute_report(dissected, index):
    """Report Attributes (ZCL 2.5.11) of each attribute: Wireshark names it a Metering
    attribute with zse's id, data type and value bytes."""
    definition = ATTRIBUTES[index]
    packet = dissected[len(CASES) + index]
    assert not packet.malformed, [f for f in packet.fields if f[0].startswith("_ws")]
    assert packet.show(P + "attr_id") == [f"0x{definition.id:04x}"]
    assert packet.show("zbee_zcl.attr.data.type") == [f"0x{definition.zcl_type:02x}"]
    names = [name for name, _, _ in packet.fields]
    value_field = packet.fields[names.index("zbee_zcl.attr.data.type") + 1]
    assert value_field[2] == sample(definition, index).serialize().hex()
    if definition.type is t.int24s:
        assert int(value_field[1]) == -1500 - index
