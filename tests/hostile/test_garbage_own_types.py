"""Garbage to the wire types zse declares itself (zigpy ``deserialize`` of its own list and
octet-string types) and to the sub-payload and simulator NWK/APS command decoders no other
property test reached: valid encodings mutated (cut short, lengths and counts changed, bytes
flipped) give the documented error only (``ValueError`` for zigpy's ``deserialize``, which
``zse.zcl.codec.decode_command`` turns into InvalidFrame; InvalidFrame for the decoders that
say so), never another exception, and what decodes re-encodes to the same bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import zigpy.types as t
from hypothesis import given, settings

from tests.garbage import garbage
from zse.calendar.wire import ScheduleEntries, SeasonEntries, SpecialDayEntries
from zse.devmgmt.wire import PasswordOctets
from zse.errors import InvalidFrame
from zse.metering.snapshot_types import (
    Samples,
    ScheduleAnswers,
    ScheduleEntry,
    SnapshotSchedules,
    TouSnapshot,
)
from zse.prepayment.wire import DebtLogEntries, TopUpLogEntries
from zse.price.wire import BlockThresholdSets, PriceMatrixEntries
from zse.se.prepay import DebtCreditStatus
from zse.sim import _frames as f

#: zse's own zigpy types: type -> valid values (their encodings seed the garbage).
OWN_TYPES: dict[type[Any], list[Any]] = {
    PriceMatrixEntries: [PriceMatrixEntries([(0x11, 1250), (0x12, 0xFFFFFFFF)])],
    BlockThresholdSets: [
        BlockThresholdSets([(0, (100, 200, 1 << 47)), (3, ())]),
        BlockThresholdSets([(15, tuple(range(15)))]),
    ],
    ScheduleEntries: [ScheduleEntries([(0, 1), (420, 2), (1439, 0xFF)])],
    SeasonEntries: [SeasonEntries([((124, 1, 1, 0xFF), 1), ((0xFF, 6, 21, 0xFF), 2)])],
    SpecialDayEntries: [SpecialDayEntries([((124, 12, 25, 0xFF), 3)])],
    PasswordOctets: [PasswordOctets(b"secret"), PasswordOctets(b"")],
    TopUpLogEntries: [TopUpLogEntries([(b"12345678901234567890", -5, 800_000_000), (b"", 1, 0)])],
    DebtLogEntries: [DebtLogEntries([(800_000_000, -100, 1, 5000), (1, 2, 3, 4)])],
    SnapshotSchedules: [
        SnapshotSchedules([ScheduleEntry(1, 800_000_000, 0x0C0001, 0, 1)]),
        SnapshotSchedules([ScheduleEntry(2, 0, 0, 1, 0), ScheduleEntry(3, 1, 0xFFFFFF, 5, 2)]),
    ],
    ScheduleAnswers: [ScheduleAnswers([(1, 0), (2, 1)])],
    Samples: [Samples([0, 1, 0xFFFFFF])],
}


@pytest.mark.parametrize("kind", OWN_TYPES, ids=lambda kind: kind.__name__)
def test_the_seeds_round_trip(kind: type[Any]) -> None:
    for value in OWN_TYPES[kind]:
        assert kind.deserialize(value.serialize()) == (value, b"")


@settings(max_examples=60, deadline=None)
@given(data=garbage([v.serialize() for values in OWN_TYPES.values() for v in values]))
def test_own_types_decode_losslessly_or_raise_value_error(data: bytes) -> None:
    for kind in OWN_TYPES:
        try:
            value, rest = kind.deserialize(data)
        except ValueError:
            continue
        assert value.serialize() + rest == data, kind.__name__


TOU = [
    TouSnapshot(summation=123456, tiers=(1, 2, 3), billing=(1, 2, 3, 4, 5)),
    TouSnapshot(summation=(1 << 48) - 1, tiers=()),
    TouSnapshot(summation=0, tiers=tuple(range(48))),
]


@settings(max_examples=80, deadline=None)
@given(data=garbage([s.encode() for s in TOU], max_size=320))
def test_tou_snapshots_decode_losslessly_or_raise_invalid_frame(data: bytes) -> None:
    for payload_type in range(8):
        try:
            snapshot = TouSnapshot.decode(payload_type, data)
        except InvalidFrame:
            continue
        assert snapshot.encode() == data


@settings(max_examples=80, deadline=None)
@given(data=garbage([DebtCreditStatus(-5, 1, 2, 3, -(1 << 31), (1 << 31) - 1).encode()]))
def test_debt_credit_status_decodes_its_24_octets_or_raises_value_error(data: bytes) -> None:
    try:
        status = DebtCreditStatus.decode(data)
    except ValueError:  # the documented error, which the prepayment client answers MALFORMED
        return
    assert status.encode() == data[:24]


IEEE = t.EUI64.convert("00:0d:6f:00:0a:00:00:01")
#: The simulator's NWK routing commands and APS Update Device: (decode, re-encode, seeds).
SIM_COMMANDS: list[tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = [
    (f.RouteRequest.decode, lambda c: c.encode()),
    (f.RouteReply.decode, lambda c: c.encode()),
    (f.NetworkStatus.decode, lambda c: c.encode()),
    (f.decode_update_device, lambda c: f.update_device_payload(*c)),
]
SIM_SEEDS = [
    f.RouteRequest(request_id=7, dst=0x1234, cost=3, options=0x08).encode(),
    f.RouteReply(request_id=7, originator=1, responder=0xFFFD, cost=0xFF).encode(),
    f.NetworkStatus(status=f.NWK_STATUS_NON_TREE_LINK_FAILURE, dst=0xABCD).encode(),
    f.update_device_payload(IEEE, 0x1234, f.UPDATE_DEVICE_UNSECURED_JOIN),
]


@settings(max_examples=80, deadline=None)
@given(data=garbage(SIM_SEEDS, max_size=16))
def test_simulator_commands_decode_their_octets_or_raise_invalid_frame(data: bytes) -> None:
    """A node drops what it cannot read (zse/sim/_route.py and _app.py catch DecodeError
    only); what decodes is the command's octets, whatever follows them."""
    for decode, encode in SIM_COMMANDS:
        try:
            command = decode(data)
        except InvalidFrame:
            continue
        encoded = encode(command)
        assert data.startswith(encoded)
