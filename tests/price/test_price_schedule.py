"""The Price core: what applies now, what is scheduled, and the overlap rule (SE D.4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zse.price import DURATION_UNTIL_CHANGED, PriceEvent, PriceSchedule
from zse.price.wire import Price
from zse.zcl.codec import decode_command, encode_command


def price(event_id: int, start: int = 0, minutes: int = DURATION_UNTIL_CHANGED, **kw) -> PriceEvent:
    fields = {
        "provider_id": 1,
        "rate_label": b"TOU",
        "issuer_event_id": event_id,
        "unit_of_measure": 0,
        "currency": 840,
        "price_trailing_digit": 3,
        "price_tier": 1,
        "number_of_price_tiers": 3,
        "register_tier": 1,
        "start_time": start,
        "duration_in_minutes": minutes,
        "price": 100 * (event_id % 1000),
    }
    fields.update(kw)
    return PriceEvent(**fields)


def test_start_now_and_until_changed():
    schedule = PriceSchedule()
    assert schedule.current(1000) is None
    assert schedule.add(price(1), now=1000)
    assert schedule.current(1000) == price(1)
    assert schedule.current(10**9) == price(1)


def test_newer_issuer_event_id_wins_an_overlap():
    """D.4.4: nested and overlapping prices are not kept side by side. An older price was
    kept, and came back when the newer one over it ended (a 0xFFFF price "until changed"
    after a one-hour price, a four-hour price after one nested in it); as certified price
    clients do, the newer one replaces it, or cuts the one in force at its own start."""
    schedule = PriceSchedule()
    assert schedule.add(price(5, start=1000, minutes=60), now=0)
    assert not schedule.add(price(4, start=1600, minutes=60), now=0)  # older id: not taken
    assert schedule.current(4700) is None
    assert schedule.add(price(9, start=2000, minutes=10), now=0)  # nested, 5 not yet begun
    assert schedule.current(2100).issuer_event_id == 9
    assert schedule.current(2700) is None  # 5 is gone, not resumed

    in_force = PriceSchedule()
    in_force.add(price(1, price=2000), now=0)  # until changed
    in_force.add(price(2, start=3600, minutes=60), now=1800)
    assert in_force.current(3000).issuer_event_id == 1
    assert in_force.current(3700).issuer_event_id == 2
    assert in_force.current(7300) is None  # the old price ended when the newer one began
    assert [p.issuer_event_id for p in in_force.scheduled(0, 0, now=1800)] == [1, 2]


def test_repeat_is_not_new_and_a_changed_repeat_replaces():
    schedule = PriceSchedule()
    assert schedule.add(price(1), now=0)
    assert not schedule.add(price(1), now=10)
    assert len(schedule) == 1
    assert schedule.add(price(1, price=7), now=20)
    assert schedule.current(20).price == 7
    assert len(schedule) == 1


def test_scheduled_prices_by_start_time_and_count():
    schedule = PriceSchedule()
    schedule.add(price(1), now=0)
    schedule.add(price(3, start=7200, minutes=60), now=0)
    schedule.add(price(2, start=3600, minutes=60), now=0)
    assert [p.issuer_event_id for p in schedule.scheduled(0, 0, now=100)] == [1, 2, 3]
    assert [p.issuer_event_id for p in schedule.scheduled(0, 2, now=100)] == [1, 2]
    # start time = the minimum end time of what is resent: price 2 ends at 7200, price 1
    # (until changed) ended when the newer price 2 began
    assert [p.issuer_event_id for p in schedule.scheduled(7200, 0, now=100)] == [3]
    assert [p.issuer_event_id for p in schedule.scheduled(7199, 0, now=100)] == [2, 3]
    assert [p.issuer_event_id for p in schedule.scheduled(3599, 0, now=100)] == [1, 2, 3]
    # ended prices are forgotten
    assert [p.issuer_event_id for p in schedule.scheduled(0, 0, now=8000)] == [3]
    assert [p.issuer_event_id for p in schedule.scheduled(0, 0, now=11000)] == []


def test_superseded_open_ended_price_is_dropped():
    schedule = PriceSchedule()
    schedule.add(price(1), now=0)
    schedule.add(price(2), now=50)
    assert schedule.current(60).issuer_event_id == 2
    assert [p.issuer_event_id for p in schedule.scheduled(0, 0, now=60)] == [2]


def test_field_checks():
    with pytest.raises(ValueError, match="rate label is 13 bytes"):
        price(1, rate_label=b"x" * 13)
    with pytest.raises(ValueError, match="price_tier must fit in 4 bits"):
        price(1, price_tier=16)
    with pytest.raises(ValueError, match="price must fit in 32 bits"):
        price(1, price=2**32)
    with pytest.raises(ValueError, match="price_control must fit in 8 bits"):
        price(1, price_control=256)


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 15),
    st.integers(0, 15),
    st.one_of(st.none(), st.integers(0, 255)),
)
def test_wire_round_trip(event_id, tier, tiers, control):
    event = price(
        event_id,
        price_tier=tier,
        number_of_price_tiers=tiers,
        **(
            {}
            if control is None
            else {
                "price_ratio": 0xFF,
                "generation_price": 0xFFFFFFFF,
                "generation_price_ratio": 0xFF,
                "alternate_cost_delivered": 0xFFFFFFFF,
                "alternate_cost_unit": 1,
                "alternate_cost_trailing_digit": 0,
                "number_of_block_thresholds": 0,
                "price_control": control,
            }
        ),
    )
    schema = Price.ClientCommandDefs.publish_price.schema
    payload = encode_command(schema(**event.to_fields(current_time=123)))
    command, rest = decode_command(Price, 0x00, payload, from_server=True)
    assert rest == b""
    assert PriceEvent.from_fields(command) == event
    assert event.acknowledgement_required == bool((control or 0) & 1)


def test_a_later_optional_field_without_the_earlier_ones_is_refused_when_built():
    """D.4.2.4.1: the optional fields are positional. ``price_control`` alone was accepted,
    stored by the server, and then made every Get Current Price raise instead of being
    answered; it is refused when built, naming the first missing field."""
    with pytest.raises(ValueError, match=r"price_control is given but .* price_ratio is not"):
        price(1, price_control=0x01)
    with pytest.raises(ValueError, match="generation_price_ratio"):
        price(1, price_ratio=0xFF, generation_price=0xFFFFFFFF, alternate_cost_delivered=1)
    assert price(1, price_ratio=0xFF).price_control is None  # a prefix is fine


def prices_built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, the issuer event id of every :class:`PriceEvent` built or copied (its
    field checks run each time), in order."""
    made: list[int] = []
    checks = PriceEvent.__post_init__

    def counted(self: PriceEvent) -> None:
        made.append(self.issuer_event_id)
        checks(self)

    monkeypatch.setattr(PriceEvent, "__post_init__", counted)
    return made


def test_kept_gives_ids_starts_and_ends_and_copies_no_price(monkeypatch):
    """What a receiver checks on every frame: each kept price's ids, absolute start (a start
    "now" at when it was received) and end (a price cut short ends when the newer one
    starts), what is over forgotten first; no price is copied on the way (each copy runs
    every field check: that was most of an inter-PAN display's time per frame)."""
    schedule = PriceSchedule()
    schedule.add(price(1), now=1000)  # from now, until changed
    schedule.add(price(2, start=3600, minutes=60), now=1800)  # cuts 1 short at 3600
    schedule.add(price(3, start=0, minutes=1, provider_id=2), now=1800)
    made = prices_built(monkeypatch)
    assert sorted(schedule.kept(1800)) == [
        ((1, 1), 1000, 3600),
        ((1, 2), 3600, 7200),
        ((2, 3), 1800, 1860),
    ]
    assert sorted(schedule.kept(1860)) == [((1, 1), 1000, 3600), ((1, 2), 3600, 7200)]
    assert len(schedule) == 2  # 3 ended, and was forgotten
    assert schedule.kept(3600) == [((1, 2), 3600, 7200)]
    assert schedule.kept(7200) == []
    assert made == []


@given(
    st.lists(
        st.tuples(
            st.integers(1, 3),  # provider
            st.integers(1, 12),  # issuer event id
            st.sampled_from([0, 600, 1800, 4000]),  # start (0: now)
            st.sampled_from([0, 10, 60, DURATION_UNTIL_CHANGED]),  # minutes
            st.integers(0, 900),  # seconds since the previous add
            st.booleans(),  # forget it again at once
        ),
        max_size=12,
    ),
    st.integers(0, 8000),
)
def test_kept_is_what_scheduled_resends(adds, later):
    """:meth:`PriceSchedule.kept` and :meth:`~PriceSchedule.scheduled` agree on what is kept
    and when each starts; an end is never after the price's own (a cut only shortens it)."""
    schedule, now = PriceSchedule(limit=4), 0
    for provider, event_id, start, minutes, step, forget in adds:
        now += step
        schedule.add(price(event_id, start, minutes, provider_id=provider), now=now)
        if forget:
            schedule.forget(provider, event_id)
    for at in (now, now + later):
        kept = {key: (start, end) for key, start, end in schedule.kept(at)}
        resent = schedule.scheduled(0, 0, at)
        assert len(kept) == len(resent)
        for event in resent:
            start, end = kept[(event.provider_id, event.issuer_event_id)]
            own = event.ends(event.start_time)
            assert start == event.start_time
            assert end is None or end > at
            assert own is None or (end is not None and end <= own)
