"""The Prepayment wire (SE 1.2 D.7): every command both ways round-trips, Wireshark 4.0 reads
each as zse encodes it field by field, garbage gives only the DecodeError family, and a
top-up code never shows whole in a repr."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.clusters.se_frames import air_frame, dissect, zcl_frame
from zse.errors import DecodeError
from zse.prepayment.wire import (
    DebtCreditStatus,
    DebtLogEntries,
    Prepayment,
    SnapshotPayload,
    TopUpCode,
    TopUpLogEntries,
    mask_code,
)
from zse.se.ids import PREPAYMENT, PrepaymentClientCommand, PrepaymentServerCommand
from zse.zcl.codec import decode_command, encode_command

S, C = PrepaymentServerCommand, PrepaymentClientCommand
CODE = b"12345678901234567890"
WHEN = 800_000_000
#: (command id, sent by the server, fields, {tshark field: shown value}).
COMMANDS: list[tuple[int, bool, dict[str, Any], dict[str, str]]] = [
    (S.SELECT_AVAILABLE_EMERGENCY_CREDIT, False,
     {"command_issue_date_time": WHEN, "originating_device": 2},
     {"select_available_emc.originating_device": "2"}),
    (S.CHANGE_DEBT, False,
     {"issuer_event_id": 9, "debt_label": b"Gas", "debt_amount": -5000,
      "debt_recovery_method": 1, "debt_amount_type": 3, "debt_recovery_start_time": WHEN,
      "debt_recovery_collection_time": 120, "debt_recovery_frequency": 1,
      "debt_recovery_amount": 75, "debt_recovery_balance_percentage": 25},
     {"change_debt.issuer_event_id": "9", "change_debt.debt_amount": "-5000",
      "change_debt.recovery_method": "1", "change_debt.amount_type": "3",
      "change_debt.recovery_collection_time": "120", "change_debt.recovery_frequency": "1",
      "change_debt.recovery_amount": "75", "change_debt.recovery_balance_percentage": "25"}),
    (S.EMERGENCY_CREDIT_SETUP, False,
     {"issuer_event_id": 3, "start_time": WHEN, "emergency_credit_limit": 1500,
      "emergency_credit_threshold": 200},
     {"emc_setup.issuer_event_id": "3", "emc_setup.emc_limit": "1500",
      "emc_setup.emc_threshold": "200"}),
    (S.CONSUMER_TOP_UP, False, {"originating_device": 2, "top_up_code": CODE},
     {"consumer_top_up.originating_device": "2"}),
    (S.CREDIT_ADJUSTMENT, False,
     {"issuer_event_id": 4, "start_time": WHEN, "credit_adjustment_type": 0,
      "credit_adjustment_value": -250},
     {"credit_adjustment.issuer_event_id": "4",
      "credit_adjustment.credit_adjustment_type": "0",
      "credit_adjustment.credit_adjustment_value": "-250"}),
    (S.CHANGE_PAYMENT_MODE, False,
     {"provider_id": 5, "issuer_event_id": 6, "implementation_date_time": WHEN,
      "proposed_payment_control_configuration": 0x0012, "cut_off_value": -100},
     {"change_payment_mode.provider_id": "5", "change_payment_mode.issuer_event_id": "6",
      "change_payment_mode.payment_control_configuration": "0x0012",
      "change_payment_mode.cut_off_value": "-100"}),
    (S.GET_PREPAY_SNAPSHOT, False,
     {"earliest_start_time": 0, "latest_end_time": WHEN, "snapshot_offset": 1,
      "snapshot_cause": 0x00040000},
     {"get_prepay_snapshot.snapshot_offset": "1",
      "get_prepay_snapshot.snapshot_cause": "0x00040000"}),
    (S.GET_TOP_UP_LOG, False, {"latest_end_time": WHEN, "number_of_records": 5},
     {"get_top_up_log.number_of_records": "5"}),
    (S.SET_LOW_CREDIT_WARNING_LEVEL, False, {"low_credit_warning_level": 300},
     {"set_low_credit_warning_level.low_credit_warning_level": "300"}),
    (S.GET_DEBT_REPAYMENT_LOG, False,
     {"latest_end_time": WHEN, "number_of_records": 3, "debt_type": 0xFF},
     {"get_debt_repayment_log.number_of_records": "3",
      "get_debt_repayment_log.debt_type": "255"}),
    (S.SET_MAXIMUM_CREDIT_LIMIT, False,
     {"provider_id": 5, "issuer_event_id": 7, "implementation_date_time": WHEN,
      "maximum_credit_level": 100000, "maximum_credit_per_top_up": 20000},
     {"set_maximum_credit_limit.max_credit_level": "100000",
      "set_maximum_credit_limit.max_credit_per_top_up": "20000"}),
    (S.SET_OVERALL_DEBT_CAP, False,
     {"provider_id": 5, "issuer_event_id": 8, "implementation_date_time": WHEN,
      "overall_debt_cap": -9000},
     {"set_overall_debt_cap_limit.overall_debt_cap": "-9000"}),
    (C.PUBLISH_PREPAY_SNAPSHOT, True,
     {"snapshot_id": 11, "snapshot_time": WHEN, "total_snapshots_found": 1,
      "command_index": 0, "total_number_of_commands": 1, "snapshot_cause": 0x00040000,
      "snapshot_payload_type": 0,
      "snapshot_payload": DebtCreditStatus(0, 0, 0, 0, 1500, -20).encode()},
     {"publish_prepay_snapshot.snapshot_id": "11",
      "publish_prepay_snapshot.snapshot_cause": "0x00040000",
      "publish_prepay_snapshot.snapshot_payload_type": "0"}),
    (C.CHANGE_PAYMENT_MODE_RESPONSE, True,
     {"friendly_credit": 1, "friendly_credit_calendar_id": 2, "emergency_credit_limit": 1500,
      "emergency_credit_threshold": 200},
     {"change_payment_mode_response.friendly_credit_calendar_id": "2",
      "change_payment_mode_response.emc_limit": "1500",
      "change_payment_mode_response.emc_threshold": "200"}),
    (C.CONSUMER_TOP_UP_RESPONSE, True,
     {"result_type": 0x02, "top_up_value": 2000, "source_of_top_up": 2,
      "credit_remaining": -120},
     {"consumer_top_up_response.result_type": "2", "consumer_top_up_response.top_up_value": "2000",
      "consumer_top_up_response.source_of_top_up": "2",
      "consumer_top_up_response.credit_remaining": "-120"}),
    (C.PUBLISH_TOP_UP_LOG, True,
     {"command_index": 0, "total_number_of_commands": 1,
      "entries": TopUpLogEntries([(b"7890", 2000, WHEN), (b"1234", -5, WHEN - 60)])},
     {"publish_top_up_log.top_up_amount": "2000"}),
    (C.PUBLISH_DEBT_LOG, True,
     {"command_index": 0, "total_number_of_commands": 1,
      "entries": DebtLogEntries([(WHEN, 100, 0, 4900), (WHEN + 3600, 100, 1, 4800)])},
     {"publish_debt_log.amount_collected": "100", "publish_debt_log.outstanding_debt": "4900"}),
]  # fmt: skip


def _schema(command_id: int, from_server: bool) -> Any:
    table = Prepayment.client_commands if from_server else Prepayment.server_commands
    return table[command_id].schema


def encoded(command_id: int, from_server: bool, fields: dict[str, Any]) -> bytes:
    return encode_command(_schema(command_id, from_server)(**fields))


@pytest.mark.parametrize(("command_id", "from_server", "fields", "_shown"), COMMANDS)
def test_every_command_round_trips(command_id, from_server, fields, _shown) -> None:
    payload = encoded(command_id, from_server, fields)
    decoded, rest = decode_command(Prepayment, command_id, payload, from_server=from_server)
    assert rest == b""
    for name, value in fields.items():
        assert getattr(decoded, name) == value, name
    assert encode_command(decoded) == payload


def test_tshark_reads_every_command_field_by_field(tmp_path: Path) -> None:
    """Wireshark 4.0's Prepayment dissector reads each command zse encodes: the command id in
    its direction's table, every field checked, nothing malformed."""
    frames = [
        air_frame(
            PREPAYMENT,
            zcl_frame(
                command_id, encoded(command_id, from_server, fields), from_server=from_server, tsn=i
            ),
            i,
        )
        for i, (command_id, from_server, fields, _) in enumerate(COMMANDS)
    ]
    packets = dissect(frames, tmp_path)
    assert len(packets) == len(COMMANDS)
    for packet, (command_id, from_server, _fields, shown) in zip(packets, COMMANDS, strict=True):
        assert not packet.malformed, hex(command_id)
        side = "srv_tx" if from_server else "srv_rx"
        assert packet.raw(f"zbee_zcl_se.pp.cmd.{side}.id") == [f"{command_id:02x}"]
        for field, value in shown.items():
            assert value in packet.show(f"zbee_zcl_se.pp.{field}"), (hex(command_id), field)
    top_up, log, snapshot = packets[3], packets[15], packets[12]
    assert top_up.raw("zbee_zcl_se.pp.consumer_top_up.top_up_code") == ["14" + CODE.hex()]
    assert log.raw("zbee_zcl_se.pp.publish_top_up_log.top_up_code") == ["0437383930", "0431323334"]
    assert log.show("zbee_zcl_se.pp.publish_top_up_log.top_up_amount") == ["2000", "-5"]
    assert snapshot.raw("zbee_zcl_se.pp.publish_prepay_snapshot.snapshot_payload") == [
        DebtCreditStatus(0, 0, 0, 0, 1500, -20).encode().hex()
    ]


@given(st.integers(0, 0x10), st.booleans(), st.binary(max_size=80))
def test_garbage_prepayment_commands_give_only_decode_errors(
    command_id: int, from_server: bool, data: bytes
) -> None:
    """Any payload for any id, either way: a command or the DecodeError family, never
    anything else; a decoded command encodes again."""
    try:
        command, _ = decode_command(Prepayment, command_id, data, from_server=from_server)
    except DecodeError:
        return
    encode_command(command)


@given(st.binary(max_size=80))
def test_garbage_repeating_payloads_give_only_value_errors(data: bytes) -> None:
    for kind in (TopUpLogEntries, DebtLogEntries, SnapshotPayload):
        try:
            value, rest = kind.deserialize(data)
        except ValueError:
            continue
        assert rest == b""
        assert value.serialize() == data
    with contextlib.suppress(ValueError):
        DebtCreditStatus.decode(data)


def test_a_top_up_code_shows_only_its_last_four_digits() -> None:
    payload = encoded(S.CONSUMER_TOP_UP, False, {"originating_device": 2, "top_up_code": CODE})
    command, _ = decode_command(Prepayment, S.CONSUMER_TOP_UP, payload, from_server=False)
    assert isinstance(command.top_up_code, TopUpCode)
    assert command.top_up_code == CODE
    for text in (repr(command), str(command), repr(command.top_up_code)):
        assert CODE.decode() not in text
        assert "1234567890123456" not in text
    assert "7890" in repr(command.top_up_code)
    assert mask_code("12345678901234567890") == "*" * 16 + "7890"
    log = TopUpLogEntries([(CODE, 1, 2)])
    assert CODE.decode() not in repr(log)
