"""Prepayment cluster, 0x0705 (SE 1.2 D.7): every command both ways, and the attributes a
display reads.

The SE 1.2/1.4 text (07-5356-19/-21) was out of reach. Command ids, field order, sizes and
signedness are those Wireshark 4.0's Prepayment dissector reads (``zbee_zcl_se.pp.*``, the
oracle of ``tests/prepayment``); the value tables tshark 4.0 does not carry (top-up result,
originating device, debt and snapshot enumerations, Credit Status bits) are from
zsmartsystems' ``0705_Prepayment.xml`` and DSR ZBOSS's Prepayment header (which cites SE
tables D-131, D-135, D-136). Facts only; nothing copied.

Repeating payloads: Publish Top Up Log carries :class:`TopUpLogEntries` (Top Up Code, an
octet string; Top Up Amount, int32; Top Up Time, UTCTime) and Publish Debt Log
:class:`DebtLogEntries` (Collection Time, Amount Collected int32, Debt Type, Outstanding
Debt uint32: 13 octets), each to the end of the payload. Publish Prepay Snapshot's Snapshot
Payload is the rest of the frame (:class:`SnapshotPayload`); type 0 (Debt/Credit Status) is
six 32-bit values (:class:`DebtCreditStatus`), as Silicon Labs' prepayment snapshot storage
lays it out.

The enumerations, bitmaps and value types are declared in :mod:`zse.se.prepay` (the sans-IO
account uses them too) and re-exported here. A top-up code is money: :class:`TopUpCode` shows
only its last 4 characters in reprs, so a decoded command logged or put in an error never
carries a code whole.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, Final, Self

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import BaseAttributeDefs, BaseCommandDefs, ZCLAttributeDef

from zse.se.ids import (
    COST_CONSUMPTION_PERIODS,
    PREPAYMENT,
    PrepaymentAttribute,
    PrepaymentClientCommand,
    PrepaymentServerCommand,
    cost_consumption_attribute,
    debt_attribute,
    top_up_attribute,
)
from zse.se.prepay import (
    CreditAdjustmentType,
    CreditStatus,
    DebtAmountType,
    DebtCreditStatus,
    DebtRecoveryFrequency,
    DebtRecoveryMethod,
    DebtType,
    FriendlyCreditBitmap,
    OriginatingDevice,
    PaymentControlConfiguration,
    PrepaymentAlarmStatus,
    SnapshotCause,
    SnapshotPayload,
    SnapshotPayloadType,
    TopUpCode,
    TopUpResult,
    mask_code,
)
from zse.zcl._defs import attribute, cluster_id, command

__all__ = [
    "PREPAYMENT_ATTRIBUTES",
    "CreditAdjustmentType",
    "CreditStatus",
    "DebtAmountType",
    "DebtCreditStatus",
    "DebtLogEntries",
    "DebtRecoveryFrequency",
    "DebtRecoveryMethod",
    "DebtType",
    "FriendlyCreditBitmap",
    "OriginatingDevice",
    "PaymentControlConfiguration",
    "Prepayment",
    "PrepaymentAlarmStatus",
    "SnapshotCause",
    "SnapshotPayload",
    "SnapshotPayloadType",
    "TopUpCode",
    "TopUpLogEntries",
    "TopUpResult",
    "mask_code",
]

_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_DEBT_ENTRY = struct.Struct("<IiBI")


class TopUpLogEntries(tuple[tuple[bytes, int, int], ...]):
    """Publish Top Up Log's records (D.7.2.4.4.1.3): (Top Up Code, Top Up Amount, Top Up
    Time), to the end of the payload. The repr masks the codes."""

    #: each record's fields, by position (``zse capture`` names them)
    ENTRY_FIELDS: ClassVar[tuple[str, ...]] = ("top_up_code", "top_up_amount", "top_up_time")

    def __new__(cls, entries: Any = ()) -> Self:
        parsed = tuple((bytes(code), int(amount), int(when)) for code, amount, when in entries)
        for code, amount, when in parsed:
            if len(code) > 0xFE or not -(1 << 31) <= amount < 1 << 31 or not 0 <= when < 1 << 32:
                raise ValueError(
                    f"top-up record ({mask_code(code)}, {amount}, {when}) does not fit"
                )
        return super().__new__(cls, parsed)

    def __repr__(self) -> str:
        shown = ", ".join(f"({mask_code(c)!r}, {a}, {w})" for c, a, w in self)
        return f"TopUpLogEntries([{shown}])"

    def serialize(self) -> bytes:
        """Each record: the code (length octet first), the amount, the time."""
        return b"".join(
            bytes((len(code),)) + code + _I32.pack(amount) + _U32.pack(when)
            for code, amount, when in self
        )

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        """Every record to the end; ValueError for one cut short."""
        entries: list[tuple[bytes, int, int]] = []
        at = 0
        while at < len(data):
            length = data[at]
            end = at + 1 + length + 8
            if length == 0xFF or end > len(data):
                raise ValueError(f"the top-up record at offset {at} is cut short")
            code = data[at + 1 : at + 1 + length]
            (amount,) = _I32.unpack_from(data, at + 1 + length)
            (when,) = _U32.unpack_from(data, at + 5 + length)
            entries.append((code, amount, when))
            at = end
        return cls(entries), b""


class DebtLogEntries(tuple[tuple[int, int, int, int], ...]):
    """Publish Debt Log's records (D.7.2.4.5.1.3): (Collection Time, Amount Collected, Debt
    Type, Outstanding Debt), 13 octets each, to the end of the payload."""

    #: each record's fields, by position (``zse capture`` names them)
    ENTRY_FIELDS: ClassVar[tuple[str, ...]] = (
        "collection_time",
        "amount_collected",
        "debt_type",
        "outstanding_debt",
    )

    def __new__(cls, entries: Any = ()) -> Self:
        parsed = tuple(tuple(int(v) for v in entry) for entry in entries)
        for entry in parsed:
            try:
                _DEBT_ENTRY.pack(*entry)
            except struct.error:
                raise ValueError(f"debt log record {entry} does not fit") from None
        return super().__new__(cls, parsed)  # type: ignore[arg-type]

    def serialize(self) -> bytes:
        """Each record in wire order."""
        return b"".join(_DEBT_ENTRY.pack(*entry) for entry in self)

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        """Every record to the end; ValueError if the octets are not whole records."""
        if len(data) % _DEBT_ENTRY.size:
            raise ValueError(
                f"{len(data)} octets is not a whole number of {_DEBT_ENTRY.size}-octet "
                "debt log records"
            )
        return cls(tuple(_DEBT_ENTRY.iter_unpack(data))), b""


def _attributes() -> dict[str, ZCLAttributeDef]:
    """The Prepayment server attributes zse serves (D.7.2.2), by zigpy-style name."""
    a = PrepaymentAttribute
    defs: dict[str, ZCLAttributeDef] = {
        "payment_control_configuration": attribute(
            a.PAYMENT_CONTROL_CONFIGURATION, PaymentControlConfiguration, "r"
        ),
        "credit_remaining": attribute(a.CREDIT_REMAINING, t.int32s, "r"),
        "emergency_credit_remaining": attribute(a.EMERGENCY_CREDIT_REMAINING, t.int32s, "r"),
        "credit_status": attribute(a.CREDIT_STATUS, CreditStatus, "r"),
        "credit_remaining_timestamp": attribute(a.CREDIT_REMAINING_TIMESTAMP, t.UTCTime, "r"),
        "accumulated_debt": attribute(a.ACCUMULATED_DEBT, t.int32s, "r"),
        "overall_debt_cap": attribute(a.OVERALL_DEBT_CAP, t.int32s, "r"),
        "emergency_credit_limit": attribute(a.EMERGENCY_CREDIT_LIMIT, t.uint32_t, "r"),
        "emergency_credit_threshold": attribute(a.EMERGENCY_CREDIT_THRESHOLD, t.uint32_t, "r"),
        "total_credit_added": attribute(a.TOTAL_CREDIT_ADDED, t.uint48_t, "r"),
        "max_credit_limit": attribute(a.MAX_CREDIT_LIMIT, t.uint32_t, "r"),
        "max_credit_per_top_up": attribute(a.MAX_CREDIT_PER_TOP_UP, t.uint32_t, "r"),
        "friendly_credit_warning": attribute(a.FRIENDLY_CREDIT_WARNING, t.uint8_t, "r"),
        "low_credit_warning_level": attribute(a.LOW_CREDIT_WARNING_LEVEL, t.uint32_t, "r"),
        "ihd_low_credit_warning_level": attribute(a.IHD_LOW_CREDIT_WARNING_LEVEL, t.uint32_t, "rw"),
        "interrupt_suspend_time": attribute(a.INTERRUPT_SUSPEND_TIME, t.uint8_t, "r"),
        "cut_off_value": attribute(a.CUT_OFF_VALUE, t.int32s, "r"),
        "remaining_friendly_credit_time": attribute(
            a.REMAINING_FRIENDLY_CREDIT_TIME, t.uint16_t, "r"
        ),
        "next_friendly_credit_period": attribute(a.NEXT_FRIENDLY_CREDIT_PERIOD, t.UTCTime, "r"),
        # the Alarms set (D.7.2.2.5): the masks writable, as zsmartsystems' XML marks them
        "prepayment_alarm_status": attribute(a.PREPAYMENT_ALARM_STATUS, PrepaymentAlarmStatus, "r"),
        "prepay_generic_alarm_mask": attribute(a.PREPAY_GENERIC_ALARM_MASK, t.bitmap16, "rw"),
        "prepay_switch_alarm_mask": attribute(a.PREPAY_SWITCH_ALARM_MASK, t.bitmap16, "rw"),
        "prepay_event_alarm_mask": attribute(a.PREPAY_EVENT_ALARM_MASK, t.bitmap16, "rw"),
        # the Historical Cost Consumption set (D.7.2.2.6)
        "historical_cost_consumption_formatting": attribute(
            a.HISTORICAL_COST_CONSUMPTION_FORMATTING, t.bitmap8, "r"
        ),
        "consumption_unit_of_measurement": attribute(
            a.CONSUMPTION_UNIT_OF_MEASUREMENT, t.enum8, "r"
        ),
        "currency_scaling_factor": attribute(a.CURRENCY_SCALING_FACTOR, t.enum8, "r"),
        "currency": attribute(a.CURRENCY, t.uint16_t, "r"),
        "historical_freeze_time": attribute(a.HISTORICAL_FREEZE_TIME, t.uint16_t, "r"),
    }
    for period, most in COST_CONSUMPTION_PERIODS.items():
        for back in range(most + 1):
            name = f"current_{period}" if back == 0 else f"previous_{period}_{back}"
            for received, way in ((False, "delivered"), (True, "received")):
                defs[f"{name}_cost_consumption_{way}"] = attribute(
                    cost_consumption_attribute(period, back, received=received), t.uint48_t, "r"
                )
    for record in range(1, 6):
        defs[f"top_up_date_time_{record}"] = attribute(
            top_up_attribute(a.TOP_UP_DATE_TIME_1, record), t.UTCTime, "r"
        )
        defs[f"top_up_amount_{record}"] = attribute(
            top_up_attribute(a.TOP_UP_AMOUNT_1, record), t.int32s, "r"
        )
        defs[f"top_up_originating_device_{record}"] = attribute(
            top_up_attribute(a.TOP_UP_ORIGINATING_DEVICE_1, record), OriginatingDevice, "r"
        )
        defs[f"top_up_code_{record}"] = attribute(
            top_up_attribute(a.TOP_UP_CODE_1, record), t.LVBytes, "r"
        )
    for debt in range(1, 4):
        defs[f"debt_label_{debt}"] = attribute(debt_attribute(a.DEBT_LABEL_1, debt), t.LVBytes, "r")
        defs[f"debt_amount_{debt}"] = attribute(
            debt_attribute(a.DEBT_AMOUNT_1, debt), t.uint32_t, "r"
        )
        defs[f"debt_recovery_method_{debt}"] = attribute(
            debt_attribute(a.DEBT_RECOVERY_METHOD_1, debt), DebtRecoveryMethod, "r"
        )
        defs[f"debt_recovery_start_time_{debt}"] = attribute(
            debt_attribute(a.DEBT_RECOVERY_START_TIME_1, debt), t.UTCTime, "r"
        )
        defs[f"debt_recovery_collection_time_{debt}"] = attribute(
            debt_attribute(a.DEBT_RECOVERY_COLLECTION_TIME_1, debt), t.uint16_t, "r"
        )
        defs[f"debt_recovery_frequency_{debt}"] = attribute(
            debt_attribute(a.DEBT_RECOVERY_FREQUENCY_1, debt), DebtRecoveryFrequency, "r"
        )
        defs[f"debt_recovery_amount_{debt}"] = attribute(
            debt_attribute(a.DEBT_RECOVERY_AMOUNT_1, debt), t.uint32_t, "r"
        )
        defs[f"debt_recovery_top_up_percentage_{debt}"] = attribute(
            debt_attribute(a.DEBT_RECOVERY_TOP_UP_PERCENTAGE_1, debt), t.uint16_t, "r"
        )
    return defs


#: Every Prepayment server attribute definition zse knows, by name (D.7.2.2).
PREPAYMENT_ATTRIBUTES: Final = _attributes()

S = PrepaymentServerCommand
C = PrepaymentClientCommand


class Prepayment(Cluster):
    """Prepayment (SE 1.2 D.7); attach explicitly, it is not in zigpy's registry."""

    cluster_id = cluster_id(PREPAYMENT)
    name = "Prepayment"
    ep_attribute = "smartenergy_prepayment"
    _skip_registry = True

    #: The server attributes (D.7.2.2), built from :data:`PREPAYMENT_ATTRIBUTES`.
    AttributeDefs = type("AttributeDefs", (BaseAttributeDefs,), dict(PREPAYMENT_ATTRIBUTES))  # type: ignore[assignment]

    class ServerCommandDefs(BaseCommandDefs):
        """Commands the meter receives (D.7.2.3)."""

        select_available_emergency_credit: Final = command(
            S.SELECT_AVAILABLE_EMERGENCY_CREDIT,
            {"command_issue_date_time": t.UTCTime, "originating_device": OriginatingDevice},
        )
        change_debt: Final = command(
            S.CHANGE_DEBT,
            {
                "issuer_event_id": t.uint32_t,
                "debt_label": t.LVBytes,
                "debt_amount": t.int32s,
                "debt_recovery_method": DebtRecoveryMethod,
                "debt_amount_type": DebtAmountType,
                "debt_recovery_start_time": t.UTCTime,
                "debt_recovery_collection_time": t.uint16_t,
                "debt_recovery_frequency": DebtRecoveryFrequency,
                "debt_recovery_amount": t.int32s,
                "debt_recovery_balance_percentage": t.uint16_t,
            },
        )
        emergency_credit_setup: Final = command(
            S.EMERGENCY_CREDIT_SETUP,
            {
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "emergency_credit_limit": t.uint32_t,
                "emergency_credit_threshold": t.uint32_t,
            },
        )
        consumer_top_up: Final = command(
            S.CONSUMER_TOP_UP,
            {"originating_device": OriginatingDevice, "top_up_code": TopUpCode},
        )
        credit_adjustment: Final = command(
            S.CREDIT_ADJUSTMENT,
            {
                "issuer_event_id": t.uint32_t,
                "start_time": t.UTCTime,
                "credit_adjustment_type": CreditAdjustmentType,
                "credit_adjustment_value": t.int32s,
            },
        )
        change_payment_mode: Final = command(
            S.CHANGE_PAYMENT_MODE,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "implementation_date_time": t.UTCTime,
                "proposed_payment_control_configuration": PaymentControlConfiguration,
                "cut_off_value": t.int32s,
            },
        )
        get_prepay_snapshot: Final = command(
            S.GET_PREPAY_SNAPSHOT,
            {
                "earliest_start_time": t.UTCTime,
                "latest_end_time": t.UTCTime,
                "snapshot_offset": t.uint8_t,
                "snapshot_cause": SnapshotCause,
            },
        )
        get_top_up_log: Final = command(
            S.GET_TOP_UP_LOG, {"latest_end_time": t.UTCTime, "number_of_records": t.uint8_t}
        )
        set_low_credit_warning_level: Final = command(
            S.SET_LOW_CREDIT_WARNING_LEVEL, {"low_credit_warning_level": t.uint32_t}
        )
        get_debt_repayment_log: Final = command(
            S.GET_DEBT_REPAYMENT_LOG,
            {
                "latest_end_time": t.UTCTime,
                "number_of_records": t.uint8_t,
                "debt_type": DebtType,
            },
        )
        set_maximum_credit_limit: Final = command(
            S.SET_MAXIMUM_CREDIT_LIMIT,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "implementation_date_time": t.UTCTime,
                "maximum_credit_level": t.uint32_t,
                "maximum_credit_per_top_up": t.uint32_t,
            },
        )
        set_overall_debt_cap: Final = command(
            S.SET_OVERALL_DEBT_CAP,
            {
                "provider_id": t.uint32_t,
                "issuer_event_id": t.uint32_t,
                "implementation_date_time": t.UTCTime,
                "overall_debt_cap": t.int32s,
            },
        )

    class ClientCommandDefs(BaseCommandDefs):
        """Commands the meter sends (D.7.2.4)."""

        publish_prepay_snapshot: Final = command(
            C.PUBLISH_PREPAY_SNAPSHOT,
            {
                "snapshot_id": t.uint32_t,
                "snapshot_time": t.UTCTime,
                "total_snapshots_found": t.uint8_t,
                "command_index": t.uint8_t,
                "total_number_of_commands": t.uint8_t,
                "snapshot_cause": SnapshotCause,
                "snapshot_payload_type": SnapshotPayloadType,
                "snapshot_payload": SnapshotPayload,
            },
        )
        change_payment_mode_response: Final = command(
            C.CHANGE_PAYMENT_MODE_RESPONSE,
            {
                "friendly_credit": t.bitmap8,
                "friendly_credit_calendar_id": t.uint32_t,
                "emergency_credit_limit": t.uint32_t,
                "emergency_credit_threshold": t.uint32_t,
            },
        )
        consumer_top_up_response: Final = command(
            C.CONSUMER_TOP_UP_RESPONSE,
            {
                "result_type": TopUpResult,
                "top_up_value": t.int32s,
                "source_of_top_up": OriginatingDevice,
                "credit_remaining": t.int32s,
            },
        )
        publish_top_up_log: Final = command(
            C.PUBLISH_TOP_UP_LOG,
            {
                "command_index": t.uint8_t,
                "total_number_of_commands": t.uint8_t,
                "entries": TopUpLogEntries,
            },
        )
        publish_debt_log: Final = command(
            C.PUBLISH_DEBT_LOG,
            {
                "command_index": t.uint8_t,
                "total_number_of_commands": t.uint8_t,
                "entries": DebtLogEntries,
            },
        )
