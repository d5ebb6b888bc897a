"""The meter's tier summations (SE D.3.2.2.2, MeterCore.set_tier): each reading's advance goes
to the price tier in force when it is taken, served as CurrentTierNSummationDelivered /
Received (tiers 1-48), rolling over at 2^48 as the summations do; nothing goes to a tier while
none is in force; kept with the profile record, old records without tiers load, damaged ones
are a Mismatch (a RecordError once loaded), never another exception."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl.foundation import Status

from tests.metering.test_meter_records import JSON, loaded
from tests.metering.test_metering_client_protocol import (
    FORMAT,
    METER,
    G,
    feed,
    message,
    read_response,
)
from zse.errors import DecodeError
from zse.metering.core import MeterCore, Readings
from zse.metering.protocol import MeteringClientProtocol, TierSummation
from zse.metering.snapshots import SnapshotCore
from zse.records import Mismatch
from zse.se.ids import MAX_TIER, tier_summation_attribute
from zse.se.ids import MeteringAttribute as A
from zse.zcl.reporting import ReportingConfig

T0 = 1800 * 1000
REGISTER = 1 << 48


def meter(delivered: int = 1000, *, two_way: bool = False) -> MeterCore[str]:
    return MeterCore(
        formatting={A.DIVISOR: 1000},
        now=T0,
        delivered_only=not two_way,
        initial=Readings(summation_delivered=delivered, summation_received=0 if two_way else None),
    )


def tier(m: MeterCore[str], n: int, *, received: bool = False) -> int | None:
    return m.read(tier_summation_attribute(n, received=received))


def test_each_advance_goes_to_the_tier_in_force_when_read() -> None:
    m = meter()
    m.set_tier(1)
    m.update(Readings(summation_delivered=1100), T0 + 30)
    m.update(Readings(summation_delivered=1130), T0 + 60)
    m.set_tier(2)  # a price change between readings
    m.update(Readings(summation_delivered=1280), T0 + 90)
    assert (tier(m, 1), tier(m, 2)) == (130, 150)
    m.set_tier(1)
    m.update(Readings(summation_delivered=1300), T0 + 120)
    assert (tier(m, 1), tier(m, 2)) == (150, 150)
    assert m.read(A.CURRENT_SUMM_DELIVERED) == 1300
    assert m.tiers() == {1: (150, None), 2: (150, None)}


def test_a_reading_before_any_tier_counts_in_none() -> None:
    m = meter()
    m.update(Readings(summation_delivered=1100), T0 + 30)
    assert m.tiers() == {}
    assert not m.supports(tier_summation_attribute(1))  # UNSUPPORTED_ATTRIBUTE: none held
    m.set_tier(1)  # held from now, at 0: what was read before is in no tier
    assert tier(m, 1) == 0
    m.update(Readings(summation_delivered=1150), T0 + 60)
    m.set_tier(0)  # the price ended: no tier in force
    m.update(Readings(summation_delivered=1200), T0 + 90)
    assert m.tiers() == {1: (50, None)}


def test_tiers_1_to_the_highest_in_force_are_held() -> None:
    m = meter(two_way=True)
    m.set_tier(3)
    assert m.tiers() == {1: (0, 0), 2: (0, 0), 3: (0, 0)}
    assert not m.supports(tier_summation_attribute(4))
    m.update(Readings(summation_delivered=1004, summation_received=2), T0 + 30)
    m.set_tier(1)
    m.update(Readings(summation_delivered=1005), T0 + 60)
    assert m.tiers() == {1: (1, 0), 2: (0, 0), 3: (4, 2)}


def test_the_first_reading_adds_nothing() -> None:
    m = MeterCore[str](formatting={}, now=T0)
    m.set_tier(3)
    m.begin(Readings(summation_delivered=5000), T0)  # the register when first read
    assert m.tiers()[3] == (0, None)


@pytest.mark.parametrize("n", [1, 15, 16, MAX_TIER])
def test_tiers_1_to_48_are_served_at_their_ids(n: int) -> None:
    m = meter()
    m.set_tier(n)
    m.update(Readings(summation_delivered=1007), T0 + 30)
    assert m.read(0x0100 + 2 * (n - 1)) == 7
    assert m.tier == n
    assert sorted(m.tiers()) == list(range(1, n + 1))


def test_a_snapshot_carries_the_tiers_held() -> None:
    """The TOU No Billing snapshot (SE 1.2, zse.metering.snapshots) takes tiers 1 to the
    highest in force, up to 48."""
    m = meter()
    snapshots = SnapshotCore(m)
    m.set_tier(MAX_TIER)
    m.update(Readings(summation_delivered=1048), T0 + 30)
    m.set_tier(2)
    m.update(Readings(summation_delivered=1050), T0 + 60)
    taken = snapshots.take(T0 + 60, 1)
    assert (taken.summation, taken.tiers) == (1050, (0, 2, *[0] * 45, 48))


@pytest.mark.parametrize("bad", [-1, MAX_TIER + 1, 0xFF])
def test_a_tier_outside_0_to_48_is_refused_and_changes_nothing(bad: int) -> None:
    m = meter()
    m.set_tier(2)
    with pytest.raises(ValueError, match=re.escape(f"price tier {bad} is outside 0-48")):
        m.set_tier(bad)
    m.update(Readings(summation_delivered=1010), T0 + 30)
    assert m.tiers() == {1: (0, None), 2: (10, None)}


def test_received_goes_to_the_tier_too_and_a_register_going_back_adds_nothing() -> None:
    m = meter(two_way=True)
    m.set_tier(1)
    m.update(Readings(summation_delivered=1100, summation_received=40), T0 + 30)
    assert m.tiers() == {1: (100, 40)}
    m.update(Readings(summation_delivered=900, summation_received=45), T0 + 60)  # replaced
    assert m.tiers() == {1: (100, 45)}


def test_the_summation_rolling_over_adds_across_the_wrap_and_the_tier_rolls_over_too() -> None:
    m = meter(REGISTER - 50)
    m.set_tier(1)
    m.update(Readings(summation_delivered=30), T0 + 30)
    assert tier(m, 1) == 80
    record = m.snapshot()
    record["tiers"] = {"1": [REGISTER - 10, None]}
    m.restore(record)
    m.update(Readings(summation_delivered=60), T0 + 60)
    assert tier(m, 1) == 20  # (2^48 - 10 + 30) mod 2^48


def test_a_tier_summation_is_reportable_once_held() -> None:
    m = meter()
    config_attribute = tier_summation_attribute(2)
    config = ReportingConfig(
        attribute=config_attribute, min_interval=0, max_interval=60, reportable_change=1
    )
    assert m.configure_reporting("ihd", config, T0) == Status.UNSUPPORTED_ATTRIBUTE
    m.set_tier(2)
    assert m.configure_reporting("ihd", config, T0) == Status.SUCCESS
    m.update(Readings(summation_delivered=1009), T0 + 30)
    (report,) = m.handle_timeout(T0 + 30)
    assert (report.destination, report.attributes) == ("ihd", ((config_attribute, 9),))


# -- read by a display (MeteringClientProtocol.tier_requests / tier_summations) ---------------


def display() -> MeteringClientProtocol:
    core = MeteringClientProtocol(METER)
    feed(core, read_response(FORMAT))
    return core


def test_a_display_asks_three_tiers_a_read_and_shows_them_as_the_summation() -> None:
    core = display()
    sends = core.tier_requests(range(1, MAX_TIER + 1))
    assert len(sends) == 16
    assert all(s.command_id == G.Read_Attributes and s.to == METER for s in sends)
    asked = [
        [int.from_bytes(s.payload[i : i + 2], "little") for i in range(0, 12, 2)] for s in sends
    ]
    assert asked == [list(range(0x0100 + 6 * n, 0x0106 + 6 * n)) for n in range(16)]
    assert all(len(s.payload) == 12 for s in sends)
    uint48 = dict.fromkeys((0x0100, 0x0102, 0x015E), 0x25)
    answer = read_response({0x0100: 2500, 0x0102: 750}, unsupported=(0x0101, 0x0103), types=uint48)
    late = read_response({0x015E: 1}, types=uint48)
    shown = core.tier_summations((1, 2, 3, 48), [answer, late])
    assert core.formatting is not None
    tier1 = core.formatting.summation(2500)
    assert shown[1] == TierSummation(tier=1, delivered=tier1, received=None)
    assert tier1.text == "2.500"  # FORMAT: divisor 1000, three digits right of the point
    assert (shown[2].delivered, shown[3]) == (
        core.formatting.summation(750),
        TierSummation(tier=3, delivered=None, received=None),
    )
    assert shown[48].delivered == core.formatting.summation(1)
    with pytest.raises(ValueError, match="tier 49 has no summation attribute"):
        core.tier_requests([1, 49])


def test_an_answer_that_is_not_a_read_or_no_formatting_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="formatting is not known"):
        MeteringClientProtocol(METER).tier_summations((1,), [])
    core = display()
    default = message(G.Default_Response, bytes((G.Read_Attributes, 0x81)))
    with pytest.raises(DecodeError, match="answered 0x0B, not a read"):
        core.tier_summations((1,), [default])
    with pytest.raises(DecodeError, match="Metering global command 0x01"):
        core.tier_summations((1,), [message(G.Read_Attributes_rsp, b"\x00\x01\x00\x25\x01")])


# -- kept with the profile --------------------------------------------------------------------


def used(*, two_way: bool = False) -> MeterCore[str]:
    m = meter(two_way=two_way)
    for n, delivered in ((1, 1100), (2, 1250), (48, 1251)):
        m.set_tier(n)
        m.update(
            Readings(summation_delivered=delivered, summation_received=n if two_way else None),
            T0 + 30 * n,
        )
    return m


@pytest.mark.parametrize("two_way", [False, True])
def test_the_tiers_come_back_with_the_profile(two_way: bool) -> None:
    before = used(two_way=two_way)
    after = meter(two_way=two_way)
    after.restore(before.snapshot())
    assert after.tiers() == before.tiers() != {}
    assert after.read(tier_summation_attribute(48)) == 1


def test_a_record_of_a_release_without_tiers_loads() -> None:
    record = used().snapshot()
    del record["tiers"]
    m = meter()
    m.restore(record)
    assert (m.read(A.CURRENT_SUMM_DELIVERED), m.tiers()) == (1251, {})


@pytest.mark.parametrize(
    ("tiers", "reason"),
    [
        ({"0": [5, None]}, ".tiers: 0 is not a tier (1-48)"),
        ({"49": [5, None]}, ".tiers: 49 is not a tier (1-48)"),
        ({"1": [5, 3]}, ".tiers: tier 1's summation received is not this meter's"),
        ({"1": [REGISTER, None]}, "integer outside"),
        ({"1": [-1, None]}, "integer outside"),
        ({"one": [5, None]}, ".tiers"),
        ({"1": [5]}, ".tiers[*]: expected a list of 2 items"),
        ({"1": {"delivered": 5}}, ".tiers[*]: expected a list"),
        ([[1, 5]], ".tiers"),
    ],
)
def test_damaged_tiers_are_refused_and_change_nothing(tiers: Any, reason: str) -> None:
    record = used().snapshot()
    record["tiers"] = tiers
    m = used()
    m.set_tier(5)
    before = m.snapshot()
    with pytest.raises(Mismatch, match=re.escape(reason)):
        m.restore(record)
    assert m.snapshot() == before


def test_a_two_way_meters_tier_needs_its_summation_received() -> None:
    record = used(two_way=True).snapshot()
    record["tiers"]["1"][1] = None
    with pytest.raises(Mismatch, match="tier 1's summation received is not this meter's"):
        meter(two_way=True).restore(record)


TIER_ENTRY = st.tuples(st.integers(), st.none() | st.integers()).map(list)
TIERS = (
    JSON
    | st.dictionaries(st.text(max_size=3), JSON, max_size=3)
    | st.dictionaries(st.text("0123456789 -+_", max_size=3), TIER_ENTRY, max_size=3)
)


@settings(max_examples=300, deadline=None)
@given(tiers=TIERS, two_way=st.booleans())
def test_any_tiers_load_or_are_a_record_error(tiers: object, two_way: bool) -> None:
    """Garbage under ``tiers`` of an otherwise good record: the store's loader turns it into
    a RecordError naming the record (quarantined), or it loads a meter's tiers; nothing
    else is raised."""
    record = used(two_way=two_way).snapshot()
    record["tiers"] = tiers
    m = meter(two_way=two_way)
    if loaded(m, record) is not None:
        assert m.tiers() == {}
    else:
        assert all(1 <= n <= MAX_TIER for n in m.tiers())
        assert all((received is None) != two_way for _, received in m.tiers().values())


@pytest.mark.parametrize(
    ("label", "record"),
    [
        ("a character string", b"\x42\x03abc"),
        ("a float", b"\x39\x00\x00\xc0\x7f"),
        ("an array", b"\x48\x20\x01\x00\x05"),
    ],
)
def test_a_tier_summation_that_is_not_a_number_is_a_decode_error(label: str, record: bytes) -> None:
    core = display()
    answer = message(G.Read_Attributes_rsp, b"\x00\x01\x00" + record)
    with pytest.raises(DecodeError, match="0x0100 is not a number"):
        core.tier_summations((1,), [answer])


@settings(max_examples=300, deadline=None)
@given(st.integers(0x0100, 0x0103), st.integers(0, 0xFF), st.integers(0, 0xFF), st.binary())
def test_any_answer_to_a_tier_read_is_shown_or_a_decode_error(
    attribute: int, status: int, type_id: int, rest: bytes
) -> None:
    core = display()
    payload = attribute.to_bytes(2, "little") + bytes((status, type_id)) + rest
    try:
        shown = core.tier_summations((1, 2), [message(G.Read_Attributes_rsp, payload)])
    except DecodeError:
        return
    assert set(shown) == {1, 2}
