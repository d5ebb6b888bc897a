"""Prepayment vocabulary (SE 1.2 D.7): the enumerations, bitmaps and small value types the
prepay account, the wire and the shells share, declared once.

The SE 1.2 text was out of reach: values are those Wireshark 4.0's Prepayment dissector
names (``tshark -G fields``: the Payment Control Configuration and Snapshot Cause bits) and,
where tshark 4.0 has no value table (top-up result, originating device, the debt and snapshot
enumerations, Credit Status), zsmartsystems' ``0705_Prepayment.xml`` and DSR ZBOSS's
Prepayment header (which cites SE tables D-131, D-135 and D-136). The Debt/Credit Status
snapshot payload is laid out as Silicon Labs' prepayment snapshot storage writes it.

A top-up code is money: :func:`mask_code` and :class:`TopUpCode` show only its last 4
characters, so a code never shows whole in a log, a repr or an error.
"""

from __future__ import annotations

from typing import Final, NamedTuple, Self

import zigpy.types as t

__all__ = [
    "SHOWN",
    "CreditAdjustmentType",
    "CreditStatus",
    "DebtAmountType",
    "DebtCreditStatus",
    "DebtRecoveryFrequency",
    "DebtRecoveryMethod",
    "DebtType",
    "FriendlyCreditBitmap",
    "OriginatingDevice",
    "PaymentControlConfiguration",
    "PrepaymentAlarmStatus",
    "SnapshotCause",
    "SnapshotPayload",
    "SnapshotPayloadType",
    "TopUpCode",
    "TopUpResult",
    "mask_code",
]

#: How many characters of a top-up code a log, repr or error may show.
SHOWN: Final = 4


def mask_code(code: bytes | str) -> str:
    """A top-up code as logs show it: all but its last 4 characters as ``*``."""
    text = code.decode("ascii", "replace") if isinstance(code, bytes | bytearray) else code
    hidden = max(len(text) - SHOWN, 0)
    return "*" * hidden + text[hidden:]


class TopUpCode(t.LVBytes):
    """A top-up code (UTRN) as typed at a display: an octet string (D.7.2.3.4.1.2). Its repr
    and str show only the last 4 characters."""

    def __repr__(self) -> str:
        return f"TopUpCode({mask_code(bytes(self))!r})"

    __str__ = __repr__


class OriginatingDevice(t.enum8):
    """Originating Device / Source of Top Up (D.7.2.3.1.1.2)."""

    Energy_Service_Interface = 0x00
    Meter = 0x01
    In_Home_Display = 0x02


class TopUpResult(t.enum8):
    """Consumer Top Up Response Result Type (D.7.2.4.3.1.1)."""

    Accepted = 0x00
    Rejected_Invalid_Top_Up = 0x01
    Rejected_Duplicate_Top_Up = 0x02
    Rejected_Error = 0x03
    Rejected_Max_Credit_Reached = 0x04
    Rejected_Keypad_Lock = 0x05
    Rejected_Top_Up_Value_Too_Large = 0x06
    Accepted_Supply_Enabled = 0x10
    Accepted_Supply_Disabled = 0x11
    Accepted_Supply_Armed = 0x12


class CreditStatus(t.bitmap8):
    """The Credit Status attribute (D.7.2.2.1.4, table D-131)."""

    Credit_OK = 1 << 0
    Low_Credit = 1 << 1
    Emergency_Credit_Enabled = 1 << 2
    Emergency_Credit_Available = 1 << 3
    Emergency_Credit_Selected = 1 << 4
    Emergency_Credit_In_Use = 1 << 5
    Credit_Exhausted = 1 << 6


class FriendlyCreditBitmap(t.bitmap8):
    """Change Payment Mode Response's Friendly Credit (D.7.2.4.2.1.1): bit 0, friendly
    credit enabled (zsmartsystems' ``FriendlyCreditBitmap``, Exegin's Prepayment header).
    Credit Status (table D-131) and Payment Control Configuration have no friendly credit
    bit in those sources nor in tshark 4.0."""

    Friendly_Credit_Enabled = 1 << 0


class PrepaymentAlarmStatus(t.bitmap16):
    """Prepayment Alarm Status (D.7.2.2.5.1, table D-138), bits as DSR ZBOSS's Prepayment
    header lists them (tshark 4.0 has no table for them; zsmartsystems' XML only the type)."""

    Low_Credit_Warning = 1 << 0
    Top_Up_Code_Error = 1 << 1
    Top_Up_Code_Already_Used = 1 << 2
    Top_Up_Code_Invalid = 1 << 3
    Friendly_Credit_In_Use = 1 << 4
    Friendly_Credit_Period_End_Warning = 1 << 5
    Emergency_Credit_Available = 1 << 6
    Unauthorised_Energy_Use = 1 << 7
    Disconnected_Supply_Due_To_Credit = 1 << 8
    Disconnected_Supply_Due_To_Tamper = 1 << 9
    Disconnected_Supply_Due_To_HES = 1 << 10
    Physical_Attack = 1 << 11
    Electronic_Attack = 1 << 12
    Manufacturer_Alarm_Code_A = 1 << 13
    Manufacturer_Alarm_Code_B = 1 << 14


class PaymentControlConfiguration(t.bitmap16):
    """Payment Control Configuration (D.7.2.2.1.1), as tshark 4.0 names its bits."""

    Disconnection_Enabled = 1 << 0
    Prepayment_Enabled = 1 << 1
    Credit_Management_Enabled = 1 << 2
    Credit_Display_Enabled = 1 << 4
    Account_Base = 1 << 6
    Contactor_Fitted = 1 << 7
    Standing_Charge_Configuration = 1 << 8
    Emergency_Standing_Charge_Configuration = 1 << 9
    Debt_Configuration = 1 << 10
    Emergency_Debt_Configuration = 1 << 11


class SnapshotCause(t.bitmap32):
    """Prepay Snapshot Payload Cause (D.7.2.4.1.1.6), as tshark 4.0 names its bits."""

    General = 1 << 0
    End_Of_Billing_Period = 1 << 1
    Change_Of_Tariff_Information = 1 << 3
    Change_Of_Price_Matrix = 1 << 4
    Manually_Triggered_From_Client = 1 << 10
    Change_Of_Tenancy = 1 << 12
    Change_Of_Supplier = 1 << 13
    Change_Of_Meter_Mode = 1 << 14
    Top_Up_Addition = 1 << 18
    Debt_Credit_Addition = 1 << 19


class SnapshotPayloadType(t.enum8):
    """Snapshot Payload Type (D.7.2.4.1.1.7)."""

    Debt_Credit_Status = 0x00
    Not_Used = 0xFF


class CreditAdjustmentType(t.enum8):
    """Credit Adjustment Type (D.7.2.3.5.1.3)."""

    Incremental = 0x00
    Absolute = 0x01


class DebtAmountType(t.enum8):
    """Debt Amount Type of Change Debt (D.7.2.3.2.1.5): the debt (1-3) and whether the
    amount replaces it (absolute) or adds to it (incremental)."""

    Type_1_Absolute = 0x00
    Type_1_Incremental = 0x01
    Type_2_Absolute = 0x02
    Type_2_Incremental = 0x03
    Type_3_Absolute = 0x04
    Type_3_Incremental = 0x05


class DebtRecoveryMethod(t.enum8):
    """Debt Recovery Method (table D-135)."""

    Time_Based = 0x00
    Percentage_Based = 0x01
    Catch_Up_Based = 0x02


class DebtRecoveryFrequency(t.enum8):
    """Debt Recovery Frequency (table D-136)."""

    Per_Hour = 0x00
    Per_Day = 0x01
    Per_Week = 0x02
    Per_Month = 0x03
    Per_Quarter = 0x04


class DebtType(t.enum8):
    """Debt Type of Get Debt Repayment Log and Publish Debt Log (D.7.2.3.10.1.3)."""

    Debt_1 = 0x00
    Debt_2 = 0x01
    Debt_3 = 0x02
    All_Debts = 0xFF


class SnapshotPayload(bytes):
    """Publish Prepay Snapshot's Snapshot Payload: the rest of the frame, read by its Snapshot
    Payload Type (:class:`DebtCreditStatus` for type 0)."""

    def serialize(self) -> bytes:
        """The octets as they are."""
        return bytes(self)

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        """Everything left."""
        return cls(data), b""


#: Each Debt/Credit Status value's signedness, in payload order (4 octets each).
_SIGNED = (True, False, False, False, True, True)
_STATUS_SIZE = 4 * len(_SIGNED)


class DebtCreditStatus(NamedTuple):
    """The Debt/Credit Status snapshot payload (type 0, D.7.2.4.1.1.8): 24 octets, Accumulated
    Debt (int32), Type 1-3 Debt Remaining (uint32), Emergency Credit Remaining and Credit
    Remaining (int32)."""

    accumulated_debt: int = 0
    type1_debt_remaining: int = 0
    type2_debt_remaining: int = 0
    type3_debt_remaining: int = 0
    emergency_credit_remaining: int = 0
    credit_remaining: int = 0

    def encode(self) -> SnapshotPayload:
        """The payload's octets; ValueError for a value that does not fit."""
        try:
            return SnapshotPayload(
                b"".join(
                    value.to_bytes(4, "little", signed=signed)
                    for value, signed in zip(self, _SIGNED, strict=True)
                )
            )
        except OverflowError as exc:
            raise ValueError(f"a Debt/Credit Status value does not fit: {exc}") from None

    @classmethod
    def decode(cls, payload: bytes) -> DebtCreditStatus:
        """Read a type-0 payload; ValueError when it is not 24 octets or more."""
        if len(payload) < _STATUS_SIZE:
            raise ValueError(f"a Debt/Credit Status payload is 24 octets, got {len(payload)}")
        return cls(
            *(
                int.from_bytes(payload[4 * i : 4 * i + 4], "little", signed=signed)
                for i, signed in enumerate(_SIGNED)
            )
        )
