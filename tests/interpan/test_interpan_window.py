"""The inter-PAN window, command whitelist and spoofed-source rate limiting, on a virtual clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.types import EUI64
from zigpy.zcl import foundation

from zse.errors import InvalidFrame
from zse.interpan import BROADCAST_ADDRESS, DeliveryMode, InterPanFrame
from zse.interpan._zcl import Direction, FrameType, ZclHeader
from zse.interpan.window import (
    SE_INTERPAN_COMMANDS,
    AllowedCommand,
    CommandWhitelist,
    InterPanWindow,
    SourceLimiter,
    Verdict,
)

HHT = EUI64.convert("00:0d:6f:00:0a:bc:de:f0")
GET_CURRENT_PRICE = bytes([0x01, 0x10, 0x00, 0x00])
PUBLISH_PRICE_HEAD = bytes([0x09, 0x10, 0x00])
DISPLAY_MESSAGE = bytes([0x09, 0x11, 0x00]) + bytes(12)
CANCEL_MESSAGE = bytes([0x09, 0x12, 0x01]) + bytes(5)


def frame(payload: bytes, cluster: int = 0x0700, src: EUI64 = HHT) -> InterPanFrame:
    return InterPanFrame(
        src_pan_id=0x1234,
        src_ieee=src,
        dst_pan_id=0xFFFF,
        dst_address=BROADCAST_ADDRESS,
        delivery_mode=DeliveryMode.BROADCAST,
        cluster_id=cluster,
        payload=payload,
    )


def test_whitelist_is_data_and_matches_direction_and_command() -> None:
    names = [c.name for c in SE_INTERPAN_COMMANDS]
    assert names == [
        "price.get_current_price",
        "price.get_scheduled_prices",
        "price.publish_price",
        "messaging.display_message",
        "messaging.cancel_message",
    ]
    wl = CommandWhitelist()
    assert wl.check(frame(GET_CURRENT_PRICE)).name == "price.get_current_price"
    get_scheduled = frame(bytes([0x01, 0x10, 0x01, 0, 0, 0, 0, 0]))  # start now, all
    assert wl.check(get_scheduled).name == "price.get_scheduled_prices"
    assert wl.check(frame(PUBLISH_PRICE_HEAD)).name == "price.publish_price"
    assert wl.check(frame(DISPLAY_MESSAGE, 0x0703)).name == "messaging.display_message"
    assert wl.check(frame(CANCEL_MESSAGE, 0x0703)).name == "messaging.cancel_message"
    refused = [
        frame(bytes([0x09, 0x10, 0x01, 0x00])),  # Get Scheduled Prices, server to client
        frame(bytes([0x01, 0x10, 0x00]), 0x0703),  # Get Last Message (client to server)
        frame(bytes([0x00, 0x10, 0x00, 0x00, 0x00])),  # global Read Attributes on Price
        frame(GET_CURRENT_PRICE, 0x0701),  # DRLC
        frame(bytes([0x05, 0x34, 0x12, 0x10, 0x00])),  # manufacturer-specific command 0
        frame(b""),
        frame(b"\x01"),
    ]
    for f in refused:
        assert wl.match(f) is None
        with pytest.raises(PermissionError, match="not whitelisted for inter-PAN"):
            wl.check(f)
    extra = AllowedCommand(0xFC00, Direction.Client_to_Server, 0x00, "x", manufacturer_code=0x1234)
    wider = CommandWhitelist([*wl.commands, extra])
    assert wider.match(frame(bytes([0x05, 0x34, 0x12, 0x10, 0x00]), 0xFC00)) == extra
    assert wl.match(frame(bytes([0x05, 0x34, 0x12, 0x10, 0x00]), 0xFC00)) is None


def test_zcl_header() -> None:
    h = ZclHeader.from_bytes(bytes([0x1D, 0x34, 0x12, 0x07, 0x42, 0xAA]))
    assert h.frame_type is FrameType.CLUSTER_COMMAND
    assert h.direction is Direction.Server_to_Client
    assert h.disable_default_response
    assert (h.manufacturer_code, h.tsn, h.command_id, h.length) == (0x1234, 7, 0x42, 5)
    assert h.to_bytes() == bytes([0x1D, 0x34, 0x12, 0x07, 0x42])
    for data, message in [
        (b"", "no frame control at ZCL byte offset 0"),
        (b"\x02\x00\x00", "reserved frame type"),
        (b"\x21\x00\x00", "reserved bits 5-7"),
        (b"\x05\x34", "manufacturer code at ZCL byte offset 1"),
        (b"\x01", "sequence number at ZCL byte offset 1"),
        (b"\x01\x00", "command identifier at ZCL byte offset 2"),
        (b"\x05\x34\x12\x00", "command identifier at ZCL byte offset 4"),
    ]:
        with pytest.raises(InvalidFrame, match=message):
            ZclHeader.from_bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=8))
def test_zcl_header_garbage_raises_only_invalid_frame(data: bytes) -> None:
    try:
        h = ZclHeader.from_bytes(data)
    except InvalidFrame:
        return
    assert data.startswith(h.to_bytes()[:1]) or data[0] & 0x04


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=8))
def test_zcl_header_decodes_as_zigpy_does(data: bytes) -> None:
    """zigpy's ZCLHeader is the oracle: every header we accept, zigpy reads the same way, and
    our encoding is zigpy's serialization of it."""
    try:
        ours = ZclHeader.from_bytes(data)
    except InvalidFrame:
        assert data[0] & 0xE2 or len(data) < (5 if data[0] & 0x04 else 3)
        return
    theirs, rest = foundation.ZCLHeader.deserialize(data)
    assert ours.to_zigpy() == theirs
    assert rest == data[ours.length :]
    assert ours.frame_type is theirs.frame_control.frame_type
    assert ours.direction is theirs.direction
    assert ours.disable_default_response == bool(theirs.frame_control.disable_default_response)
    assert ours.manufacturer_code == theirs.manufacturer
    assert (ours.tsn, ours.command_id) == (theirs.tsn, theirs.command_id)
    assert ours.to_bytes() == data[: ours.length]


def test_window_closed_by_default_opens_and_closes_by_itself() -> None:
    window = InterPanWindow(default_duration=60)
    f = frame(GET_CURRENT_PRICE)
    assert window.deadline is None
    assert window.admit(f, now=0.0) is Verdict.CLOSED
    assert window.open(now=10.0) == 70.0
    assert window.is_open(10.0)
    assert window.admit(f, now=10.0) is Verdict.ACCEPTED
    assert window.admit(frame(b"\x01\x10\x07\x00"), now=11.0) is Verdict.NOT_WHITELISTED
    assert not window.handle_timeout(69.9)
    assert window.admit(f, now=69.99) is Verdict.ACCEPTED
    assert window.admit(f, now=70.0) is Verdict.CLOSED  # admit notices the deadline itself
    assert window.deadline is None
    window.open(now=100.0, duration=5)
    assert window.open(now=101.0, duration=2) == 105.0  # opening again never shortens it
    assert window.open(now=102.0, duration=10) == 112.0
    assert window.handle_timeout(112.0)
    assert not window.is_open(112.0)
    window.open(now=200.0)
    window.close()
    assert window.admit(f, now=200.5) is Verdict.CLOSED
    assert window.counts[Verdict.ACCEPTED] == 2
    assert window.counts[Verdict.CLOSED] == 3
    with pytest.raises(ValueError, match="duration must be positive"):
        window.open(now=0.0, duration=0)


def test_one_source_is_limited_to_its_rate() -> None:
    limiter = SourceLimiter(rate=2.0, burst=4.0, newcomer_rate=1.0, newcomer_burst=1.0)
    window = InterPanWindow(default_duration=1000, limiter=limiter)
    window.open(now=0.0)
    f = frame(GET_CURRENT_PRICE)
    # 50 frames per second for 20 virtual seconds from one address
    verdicts = [window.admit(f, now=i / 50) for i in range(1000)]
    accepted = verdicts.count(Verdict.ACCEPTED)
    # rate x time + burst: 2/s x 20 s + 4 (the newcomer allowance is spent inside the burst)
    assert accepted == 2 * 20 + 4
    assert verdicts.count(Verdict.RATE_LIMITED) == 1000 - accepted


def flood(
    limiter: SourceLimiter, *, seconds: int, spoof_rate: int, legit_rate: int, legit_from: float
) -> tuple[list[tuple[float, bool]], int, int]:
    rng = random.Random(7)
    spoofers = [EUI64(rng.randbytes(8)) for _ in range(1000)]
    arrivals = [
        ((i + rng.random()) / spoof_rate, spoofers[i % 1000]) for i in range(spoof_rate * seconds)
    ]
    arrivals += [
        (legit_from + (i + rng.random()) / legit_rate, HHT)
        for i in range(int((seconds - legit_from) * legit_rate))
    ]
    arrivals.sort(key=lambda a: a[0])
    legit: list[tuple[float, bool]] = []
    spoof_ok = 0
    largest_table = 0
    for now, source in arrivals:
        ok = limiter.allow(source, now)
        largest_table = max(largest_table, len(limiter))
        if source == HHT:
            legit.append((now, ok))
        else:
            spoof_ok += ok
    return legit, spoof_ok, largest_table


@pytest.mark.parametrize("legit_from", [0.0, 30.0])
def test_a_thousand_spoofed_sources_cannot_starve_a_terminal(legit_from: float) -> None:
    """200 frames/s (about what one radio can put on the air) spread over 1,000 spoofed
    addresses, and a terminal sending 2 frames/s that starts before or during the flood."""
    limiter = SourceLimiter(max_sources=128)
    legit, spoof_ok, largest = flood(
        limiter, seconds=120, spoof_rate=200, legit_rate=2, legit_from=legit_from
    )
    assert largest == 128  # bounded memory
    settled = [ok for t, ok in legit if t > legit_from + 10]
    assert all(settled), f"{settled.count(False)} terminal frames refused after it settled"
    # refused only until it won a table slot (churn is bounded by min_age) and established
    assert sum(ok for _, ok in legit) >= len(legit) - 20
    # every spoofed frame admitted came out of the shared newcomer budget (1/s + burst 3)
    assert spoof_ok <= 120 * 1 + 3


def test_without_the_limiter_the_flood_would_win() -> None:
    """The same flood against a limiter that has no per-source state for the terminal (table
    of one slot): the terminal gets only the shared newcomer budget, as the flood does."""
    limiter = SourceLimiter(max_sources=1, min_age=1e9)
    legit, _, largest = flood(limiter, seconds=60, spoof_rate=200, legit_rate=2, legit_from=5)
    assert largest == 1
    assert sum(ok for _, ok in legit) < len(legit) / 10


def test_trusted_sources_keep_their_budget_even_in_a_full_table() -> None:
    limiter = SourceLimiter(max_sources=4, min_age=1.0)
    window = InterPanWindow(default_duration=600, limiter=limiter)
    attackers = [EUI64(bytes([i]) * 8) for i in range(1, 5)]
    window.open(now=0.0)
    # four addresses at 4 frames/s each establish themselves and fill the table
    for step in range(40):
        for a in attackers:
            window.admit(frame(GET_CURRENT_PRICE, src=a), now=step / 4)
    assert len(limiter) == 4
    assert all(limiter.established(a, 9.9) for a in attackers)
    window.open(now=10.0, trusted=[HHT])
    assert len(limiter) == 4
    assert limiter.established(HHT, 10.0)
    assert sum(limiter.established(a, 10.0) for a in attackers) == 3  # one made room
    verdicts = []
    for step in range(40, 120):
        now = step / 4
        for a in attackers:
            window.admit(frame(GET_CURRENT_PRICE, src=a), now=now)
        verdicts.append(window.admit(frame(GET_CURRENT_PRICE), now=now))
    assert verdicts.count(Verdict.ACCEPTED) == len(verdicts)
    small = SourceLimiter(max_sources=1)
    small.trust(HHT, 0.0)
    with pytest.raises(ValueError, match="more than max_sources=1 trusted"):
        small.trust(attackers[0], 0.0)


def test_total_rate_caps_what_is_admitted_in_all() -> None:
    """#12.21: four trusted sources at 10 frames/s each, and a flood of new ones, against a
    total of 2/s (burst 2): the total is what is admitted, whoever sends."""
    limiter = SourceLimiter(rate=10.0, burst=10.0, total_rate=2.0, total_burst=2.0)
    trusted = [EUI64(bytes([i]) * 8) for i in range(1, 5)]
    for source in trusted:
        limiter.trust(source, 0.0)
    rng = random.Random(3)
    admitted = 0
    for step in range(100):
        now = step / 10
        admitted += sum(limiter.allow(source, now) for source in trusted)
        admitted += limiter.allow(EUI64(rng.randbytes(8)), now)
    assert admitted == 2 + 19  # the burst, then 2/s over the 9.9 s from first frame to last
    # a frame refused by the total does not spend the source's own budget
    quiet = SourceLimiter(rate=1.0, burst=1.0, total_rate=1.0, total_burst=1.0)
    quiet.trust(HHT, 0.0)
    other = EUI64(bytes(8))
    quiet.trust(other, 0.0)
    assert quiet.allow(other, 0.0)
    assert not quiet.allow(HHT, 0.0)  # the total is spent
    assert quiet.allow(HHT, 1.0)  # its own token was kept for it
    with pytest.raises(ValueError, match="total_rate"):
        SourceLimiter(total_rate=0.0)


def test_a_full_table_costs_a_bounded_sweep_per_new_source() -> None:
    """Each new source looks at a few entries for a slot, not the whole table: a table of
    4,096 spoofed sources turns over, and an active source keeps its slot throughout."""
    limiter = SourceLimiter(max_sources=4096, min_age=1.0, establish_score=3.0)
    rng = random.Random(9)
    seen_established = []
    for i in range(20_000):
        now = i / 1000  # 1,000 new addresses per second
        limiter.allow(EUI64(rng.randbytes(8)), now)
        if i % 500 == 0:  # the terminal, twice a second
            limiter.allow(HHT, now)
            seen_established.append(limiter.established(HHT, now))
    assert len(limiter) == 4096
    assert all(seen_established[3:])  # established by its fourth frame, never evicted


def test_a_vouched_source_has_its_own_budget_until_the_vouch_ends() -> None:
    limiter = SourceLimiter(max_sources=4)
    partner = EUI64.convert("00:0d:6f:00:0f:00:00:42")
    spoofed = [EUI64((0x30_0000 + i).to_bytes(8, "little")) for i in range(40)]
    for i, source in enumerate(spoofed):  # the newcomers' bucket is drained, the table full
        limiter.allow(source, 10.0 + i * 0.01)
    assert not limiter.allow(partner, 10.5)
    limiter.vouch(partner, 10.5, until=20.0)
    assert limiter.established(partner, 10.6)
    assert [limiter.allow(partner, 10.6 + i * 0.3) for i in range(10)] == [True] * 10
    for i, source in enumerate(spoofed):  # a vouched source is not evicted
        limiter.allow(source, 16.0 + i * 0.01)
    assert limiter.allow(partner, 17.0)
    assert not limiter.established(partner, 30.0)  # the vouch expired
    limiter.vouch(partner, 30.0, until=40.0)
    limiter.unvouch(partner)
    assert not limiter.established(partner, 30.1)


def test_recall_forgets_a_source_after_recall_seconds() -> None:
    limiter = SourceLimiter(recall=10.0, newcomer_burst=2.0, newcomer_rate=0.001)
    source = EUI64.convert("00:0d:6f:00:0f:00:00:42")
    other = EUI64.convert("00:0d:6f:00:0f:00:00:43")
    # burst 2, reserve 1: a first contact takes a token only while 2 are left
    assert limiter.allow(other, 0.0)  # first contact: 2 tokens, takes one
    assert not limiter.allow(source, 1.0)  # first contact: 1 token left, reserved
    assert limiter.allow(source, 5.0)  # returning within 10 s: takes the reserved token
    limiter = SourceLimiter(recall=10.0, newcomer_burst=2.0, newcomer_rate=0.001)
    assert limiter.allow(other, 0.0)
    assert not limiter.allow(source, 1.0)
    assert not limiter.allow(source, 12.0)  # 11 s later: a first contact again


def test_recall_forgets_only_after_recall_slots_other_sources() -> None:
    """Least recently seen forgotten first: a source stays returning while fewer than
    ``recall_slots`` other sources were seen since its last frame, whatever their addresses."""
    source = EUI64.convert("00:0d:6f:00:0f:00:00:42")

    def returning_after(others: int) -> bool:
        limiter = SourceLimiter(recall_slots=64, newcomer_burst=2.0, newcomer_rate=0.001)
        limiter.allow(source, 0.0)  # first contact: takes one of the 2 tokens
        for i in range(others):
            limiter.allow(EUI64((0x10_0000 + i).to_bytes(8, "little")), 1.0 + i * 0.001)
        return limiter.allow(source, 2.0)  # 1 token left: only a returning source may take it

    assert returning_after(63)
    assert not returning_after(64)


def test_limiter_refuses_bad_recall_settings() -> None:
    with pytest.raises(ValueError, match="recall_slots"):
        SourceLimiter(recall_slots=0)
    with pytest.raises(ValueError, match="first_contact_reserve"):
        SourceLimiter(first_contact_reserve=-1)
