"""SE 1.2 Metering snapshots and sampling: the enumerations, bitmaps and payloads on the wire.

The SE 1.2 text (07-5356-19) was out of reach. Field order, sizes and values are from
Wireshark 4.0's Metering dissector (``packet-zbee-zcl-se.c``, checked with this machine's
tshark 4.0: its field and value tables), zsmartsystems' ``0702_Metering.xml`` (command fields,
Snapshot Confirmation), Silicon Labs' public meter-snapshot plugin documentation (Snapshot
Schedule Confirmation 0x03 "Snapshot Schedule Not Currently Available", which Wireshark 4.0
names as 0x02 again) and the Sample Type values of DSR ZBOSS's public Metering header (as
Espressif's zigbee SDK headers carry them). Facts only; nothing copied. Clauses: ZBOSS's
header cites SE D.3.3.3.1.7 for Get Snapshot; the others are taken to follow the commands'
order (client D.3.3.3.1.5-9, server D.3.2.3.1.5-8), not checked against the text.

The TOU Information Set snapshot sub-payloads (:class:`TouSnapshot`) are laid out as ZBOSS's
public Metering header parses them: CurrentSummation (uint48), then for the billing types
BillToDate (uint32), its time stamp (UTCTime), ProjectedBill (uint32), its time stamp and the
trailing digit (bitmap8), then NumberOfTiersInUse (uint8) and that many tier summations
(uint48 each). The Block Tier payload types are named but not built or parsed here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Self

import zigpy.types as t

from zse.errors import InvalidFrame

__all__ = [
    "MeterSnapshotCause",
    "SampleType",
    "Samples",
    "ScheduleAnswers",
    "ScheduleEntry",
    "SnapshotConfirmation",
    "SnapshotPayloadType",
    "SnapshotScheduleConfirmation",
    "SnapshotSchedules",
    "SnapshotSubPayload",
    "TouSnapshot",
]


class MeterSnapshotCause(t.bitmap32):
    """Metering Snapshot Cause (32 bits), as tshark 4.0 names its bits (0-17). Prepayment's
    :class:`zse.se.prepay.SnapshotCause` uses the same positions for the bits both have."""

    General = 1 << 0
    End_Of_Billing_Period = 1 << 1
    End_Of_Block_Period = 1 << 2
    Change_Of_Tariff_Information = 1 << 3
    Change_Of_Price_Matrix = 1 << 4
    Change_Of_Block_Thresholds = 1 << 5
    Change_Of_CV = 1 << 6
    Change_Of_CF = 1 << 7
    Change_Of_Calendar = 1 << 8
    Critical_Peak_Pricing = 1 << 9
    Manually_Triggered_From_Client = 1 << 10
    End_Of_Resolve_Period = 1 << 11
    Change_Of_Tenancy = 1 << 12
    Change_Of_Supplier = 1 << 13
    Change_Of_Meter_Mode = 1 << 14
    Debt_Payment = 1 << 15
    Scheduled_Snapshot = 1 << 16
    OTA_Firmware_Download = 1 << 17


class SnapshotPayloadType(t.enum8):
    """Snapshot Payload Type (tshark 4.0's names)."""

    TOU_Information_Set_Delivered_Registers = 0x00
    TOU_Information_Set_Received_Registers = 0x01
    Block_Tier_Information_Set_Delivered = 0x02
    Block_Tier_Information_Set_Received = 0x03
    TOU_Information_Set_Delivered_No_Billing = 0x04
    TOU_Information_Set_Received_No_Billing = 0x05
    Block_Tier_Information_Set_Delivered_No_Billing = 0x06
    Block_Tier_Information_Set_Received_No_Billing = 0x07
    Data_Unavailable = 0x80


class SnapshotScheduleConfirmation(t.enum8):
    """Snapshot Schedule Confirmation of Schedule Snapshot Response."""

    Accepted = 0x00
    Snapshot_Type_Not_Supported = 0x01
    Snapshot_Cause_Not_Supported = 0x02
    Snapshot_Schedule_Not_Currently_Available = 0x03
    Snapshot_Schedules_Not_Supported_By_Device = 0x04
    Insufficient_Space_For_Snapshot_Schedule = 0x05


class SnapshotConfirmation(t.enum8):
    """Snapshot Confirmation of Take Snapshot Response (zsmartsystems)."""

    Accepted = 0x00
    Snapshot_Cause_Not_Supported = 0x01


class SampleType(t.enum8):
    """Sample Type of Start Sampling / Get Sampled Data (ZBOSS's values)."""

    Consumption_Delivered = 0x00
    Consumption_Received = 0x01
    Reactive_Consumption_Delivered = 0x02
    Reactive_Consumption_Received = 0x03
    Instantaneous_Demand = 0x04


#: Snapshot Schedule (uint24): frequency in bits 0-19, frequency type in 20-21 (0 day,
#: 1 week, 2 month), wild card in 22-23 (0 start of, 1 end of, 2 not used; tshark 4.0).
FREQUENCY_MASK = 0x0FFFFF
FREQUENCY_DAY, FREQUENCY_WEEK, FREQUENCY_MONTH = 0, 1, 2
WILD_START_OF, WILD_END_OF, WILD_NOT_USED = 0, 1, 2


def schedule_field(frequency: int, frequency_type: int, wild_card: int = WILD_NOT_USED) -> int:
    """The Snapshot Schedule uint24 of its three parts."""
    return (frequency & FREQUENCY_MASK) | (frequency_type & 3) << 20 | (wild_card & 3) << 22


_SCHEDULE = struct.Struct("<BI3sBI")
_ANSWER = struct.Struct("<BB")


@dataclass(frozen=True)
class ScheduleEntry:
    """One Snapshot Schedule Payload: id, start time, schedule (uint24), payload type, cause."""

    schedule_id: int
    start_time: int
    schedule: int
    payload_type: int
    cause: int

    @property
    def frequency(self) -> int:
        return self.schedule & FREQUENCY_MASK

    @property
    def frequency_type(self) -> int:
        return self.schedule >> 20 & 3

    @property
    def wild_card(self) -> int:
        return self.schedule >> 22 & 3


class SnapshotSchedules(tuple[ScheduleEntry, ...]):
    """Schedule Snapshot's Snapshot Schedule Payloads, 13 octets each, to the end of the
    frame (at least one)."""

    def serialize(self) -> bytes:
        """The payloads in order."""
        return b"".join(
            _SCHEDULE.pack(
                e.schedule_id,
                e.start_time,
                e.schedule.to_bytes(3, "little"),
                e.payload_type,
                e.cause,
            )
            for e in self
        )

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        """Every payload left; :class:`InvalidFrame` for none or a partial one."""
        if not data or len(data) % _SCHEDULE.size:
            raise InvalidFrame(f"snapshot schedule payloads: {len(data)} octets is not 13 x N")
        entries = []
        for offset in range(0, len(data), _SCHEDULE.size):
            sid, start, sched, ptype, cause = _SCHEDULE.unpack_from(data, offset)
            entries.append(ScheduleEntry(sid, start, int.from_bytes(sched, "little"), ptype, cause))
        return cls(entries), b""


class ScheduleAnswers(tuple[tuple[int, int], ...]):
    """Schedule Snapshot Response's (Snapshot Schedule ID, Confirmation) pairs, to the end."""

    def serialize(self) -> bytes:
        return b"".join(_ANSWER.pack(sid, confirmation) for sid, confirmation in self)

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        if len(data) % _ANSWER.size:
            raise InvalidFrame(f"snapshot schedule answers: {len(data)} octets is odd")
        return cls(_ANSWER.iter_unpack(data)), b""


class SnapshotSubPayload(bytes):
    """Publish Snapshot's Snapshot Sub-Payload (or this command's part of it): the rest of the
    frame, read by the Snapshot Payload Type once every command's part is in."""

    def serialize(self) -> bytes:
        return bytes(self)

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        return cls(data), b""


class Samples(tuple[int, ...]):
    """Get Sampled Data Response's samples: uint24 each, to the end of the frame."""

    def serialize(self) -> bytes:
        return b"".join((value & 0xFFFFFF).to_bytes(3, "little") for value in self)

    @classmethod
    def deserialize(cls, data: bytes) -> tuple[Self, bytes]:
        if len(data) % 3:
            raise InvalidFrame(f"samples: {len(data)} octets is not 3 x N")
        return cls(int.from_bytes(data[i : i + 3], "little") for i in range(0, len(data), 3)), b""


_U48 = 6
_BILLING = struct.Struct("<IIIIB")
_TOU_TYPES = {0: (True, True), 1: (False, True), 4: (True, False), 5: (False, False)}


@dataclass(frozen=True, kw_only=True)
class TouSnapshot:
    """A TOU Information Set snapshot sub-payload (payload types 0, 1, 4, 5): the summation
    and the tier summations; the bill fields for types 0 and 1 (None for 4 and 5)."""

    summation: int
    tiers: tuple[int, ...] = ()
    billing: tuple[int, int, int, int, int] | None = None

    def encode(self) -> bytes:
        """The sub-payload octets."""
        out = self.summation.to_bytes(_U48, "little")
        if self.billing is not None:
            out += _BILLING.pack(*self.billing)
        out += bytes((len(self.tiers),))
        return out + b"".join(tier.to_bytes(_U48, "little") for tier in self.tiers)

    @classmethod
    def decode(cls, payload_type: int, data: bytes) -> TouSnapshot:
        """Read a TOU sub-payload of ``payload_type``; :class:`InvalidFrame` when it is not a
        TOU type or the octets do not fit (tiers announced and carried differ)."""
        if payload_type not in _TOU_TYPES:
            raise InvalidFrame(f"snapshot payload type {payload_type} is not a TOU set")
        billing = _TOU_TYPES[payload_type][1]
        fixed = _U48 + (_BILLING.size if billing else 0) + 1
        if len(data) < fixed:
            raise InvalidFrame(f"TOU snapshot: {len(data)} octets, at least {fixed} needed")
        summation = int.from_bytes(data[:_U48], "little")
        bill = _BILLING.unpack_from(data, _U48) if billing else None
        count = data[fixed - 1]
        if len(data) != fixed + count * _U48:
            raise InvalidFrame(
                f"TOU snapshot: {count} tiers announced, {len(data) - fixed} octets carried"
            )
        tiers = tuple(
            int.from_bytes(data[fixed + i * _U48 : fixed + (i + 1) * _U48], "little")
            for i in range(count)
        )
        return cls(summation=summation, tiers=tiers, billing=bill)
