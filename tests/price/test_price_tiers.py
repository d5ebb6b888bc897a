"""Publish Price's SE 1.2 trailers (D.4.2.4.1.1.20-24) carried end to end: Number of
Generation Tiers, Generation Tier, Extended Number of Price Tiers, Extended Price Tier and
Extended Register Tier were decoded by the wire and dropped by ``PriceEvent``, so a received
SE 1.2 price lost them and an ESI could not publish tiers 16-48. Now they are kept, re-encoded
to the same bytes, relayed over MQTT and shown as the tier in force (1-48)."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.price.test_price_ack_any_addressing import ASKS_ACK
from tests.price.test_price_protocol import NOW, decoded, publish_frame, server_command
from tests.price.test_price_schedule import price
from zse.errors import DecodeError
from zse.metering.display import EnergyLedger, TierPrice, energy_screen
from zse.mqtt.core import DeviceView, PublishPrice, parse_command, price_payload
from zse.price import MAX_TIER, PriceEvent, joined_tier, split_tier
from zse.price.protocol import (
    PriceClientProtocol,
    PriceReceived,
    PriceServerProtocol,
    publish_price_payload,
)
from zse.price.wire import Price
from zse.se.ids import IN_HOME_DISPLAY, PriceClientCommand
from zse.zcl.codec import decode_command
from zse.zcl.delivery import Destination

#: The optional fields in wire order with their widths in bytes (D.4.2.4.1).
TRAILERS = (
    ("price_ratio", 1),
    ("generation_price", 4),
    ("generation_price_ratio", 1),
    ("alternate_cost_delivered", 4),
    ("alternate_cost_unit", 1),
    ("alternate_cost_trailing_digit", 1),
    ("number_of_block_thresholds", 1),
    ("price_control", 1),
    ("number_of_generation_tiers", 1),
    ("generation_tier", 1),
    ("extended_number_of_price_tiers", 1),
    ("extended_price_tier", 1),
    ("extended_register_tier", 1),
)
#: Every optional field "not used" up to the SE 1.2 trailers (Price Control 0).
NOT_USED = {**ASKS_ACK, "price_control": 0x00}


def tiered(tier: int, tiers: int = MAX_TIER, register: int | None = None, **kw: Any) -> PriceEvent:
    """A price in ``tier`` of ``tiers`` with every SE 1.2 trailer, split as the wire says."""
    price_tier, extended_tier = split_tier(tier)
    number, extended_number = split_tier(tiers)
    register_tier, extended_register = split_tier(tier if register is None else register)
    fields = {
        **NOT_USED,
        "price_tier": price_tier,
        "number_of_price_tiers": number,
        "register_tier": register_tier,
        "number_of_generation_tiers": 3,
        "generation_tier": 2,
        "extended_number_of_price_tiers": extended_number,
        "extended_price_tier": extended_tier,
        "extended_register_tier": extended_register,
        **kw,
    }
    return price(20, start=NOW - 60, **fields)


@pytest.mark.parametrize("count", range(len(TRAILERS) + 1))
@given(data=st.data())
def test_every_trailer_prefix_round_trips_to_the_same_bytes(count: int, data: Any) -> None:
    """D.4.2.4.1: each prefix of the optional fields (they are positional), any values and
    any 4-bit tiers: encoded, decoded, equal, and encoded again to the very same bytes;
    only the fields given are written."""
    given_fields = {
        name: data.draw(st.integers(0, (1 << (8 * size)) - 1), label=name)
        for name, size in TRAILERS[:count]
    }
    nibbles = {
        name: data.draw(st.integers(0, 15), label=name)
        for name in ("price_tier", "number_of_price_tiers", "register_tier")
    }
    event = price(data.draw(st.integers(0, 2**32 - 1)), **nibbles, **given_fields)
    payload = publish_price_payload(event, NOW)
    short = len(publish_price_payload(price(event.issuer_event_id, **nibbles), NOW))
    assert len(payload) == short + sum(size for _, size in TRAILERS[:count])
    command, rest = decode_command(
        Price, PriceClientCommand.PUBLISH_PRICE, payload, from_server=True
    )
    assert rest == b""
    back = PriceEvent.from_fields(command)
    assert back == event
    assert publish_price_payload(back, NOW) == payload


def test_the_extended_fields_join_the_4_bit_ones() -> None:
    """D.4.2.4.1.1.22-24: 0xF in the 4-bit field defers to the extended one, added to 15
    (0x00: tier 15, 0x01: tier 16 ... 0x21: tier 48); beside 0x0-0xE it does not count."""
    for nibble in range(16):
        for extended in (None, *range(256)):
            expected = 15 + extended if nibble == 15 and extended else nibble
            assert joined_tier(nibble, extended) == expected
    for tier in range(MAX_TIER + 1):
        nibble, extended = split_tier(tier)
        assert nibble < 16
        assert extended < 0x22
        assert joined_tier(nibble, extended) == tier
        event = tiered(tier, tiers=tier, register=tier)
        assert event.effective_price_tier == tier
        assert event.effective_number_of_price_tiers == tier
        assert event.effective_register_tier == tier
        assert event.tier_problem() is None
    assert split_tier(16) == (15, 1)
    assert split_tier(48) == (15, 0x21)
    for wrong in (-1, 49):
        with pytest.raises(ValueError, match="not 0-48"):
            split_tier(wrong)
    assert price(1, price_tier=3).effective_price_tier == 3  # SE 1.0: no trailers


def test_widths_and_positions_of_the_new_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="extended_price_tier must fit in 8 bits"):
        tiered(20, extended_price_tier=256)
    with pytest.raises(ValueError, match="generation_tier must fit in 8 bits"):
        tiered(20, generation_tier=-1)
    with pytest.raises(ValueError, match=r"extended_price_tier is given but .* price_ratio"):
        price(1, extended_price_tier=5)
    with pytest.raises(
        ValueError,
        match=r"extended_register_tier is given but .* number_of_generation_tiers is not",
    ):
        price(1, **NOT_USED, extended_register_tier=5)


def test_a_received_tier_20_price_is_kept_whole_and_answered_with_the_same_bytes() -> None:
    """The client keeps every trailer (it was dropped: ``extended_price_tier`` None, tier
    15); the server answers Get Current Price with the bytes it published."""
    event = tiered(20)
    server = PriceServerProtocol()
    published = server.publish(event, NOW, to=Destination.device(0x1234, 1))
    payload = published.sends[0].payload
    assert payload == publish_price_payload(event, NOW)
    client = PriceClientProtocol()
    msg = publish_frame(event)
    step = client.receive(msg, decoded(msg), NOW)
    (received,) = step.events
    assert isinstance(received, PriceReceived)
    assert received.price == event
    assert received.price.effective_price_tier == 20
    assert received.price.effective_number_of_price_tiers == 48
    assert client.schedule.current(NOW) == event
    asked = server_command("get_current_price", command_options=0)
    answer = server.receive(asked, decoded(asked), NOW)
    assert answer.sends[0].payload == payload


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"price_tier": 3, "extended_price_tier": 5}, "extended_price_tier 5 needs price_tier 15"),
        ({"extended_price_tier": 0x22}, r"price_tier 15 \+ extended_price_tier 34 is 49, above 48"),
        (
            {"extended_number_of_price_tiers": 0xFF},
            r"number_of_price_tiers 15 \+ extended_number_of_price_tiers 255",
        ),
        ({"register_tier": 1, "extended_register_tier": 1}, "needs register_tier 15"),
        ({"generation_tier": 49}, "generation_tier 49 is above 48"),
        ({"number_of_generation_tiers": 0xFF}, "number_of_generation_tiers 255"),
    ],
)
def test_an_esi_refuses_tiers_a_receiver_would_read_otherwise(fields: dict, problem: str) -> None:
    """A server's own price whose tiers would not read back as meant is refused, not sent
    nor kept (ValueError naming the field); a received one is kept as it came."""
    event = tiered(20, **fields)
    server = PriceServerProtocol()
    with pytest.raises(ValueError, match=problem):
        server.publish(event, NOW, to=Destination.device(0x1234, 1))
    assert server.schedule.current(NOW) is None
    client = PriceClientProtocol()
    msg = publish_frame(event)
    assert client.receive(msg, decoded(msg), NOW).events[0].price == event


@given(st.binary(max_size=80))
@example(bytes(4) + bytes([13]) + b"x" * 13 + bytes(23) + b"\x05")  # 13-byte rate label
@example(bytes(4) + b"\x02ab" + bytes(23) + bytes(19))  # every trailer
def test_garbage_publish_price_gives_only_decode_errors(data: bytes) -> None:
    """The decoder (the wire, then ``PriceEvent.from_fields``) raises nothing but the
    DecodeError family; a 13-byte rate label was a bare ValueError."""
    try:
        command, rest = decode_command(
            Price, PriceClientCommand.PUBLISH_PRICE, data, from_server=True
        )
        event = PriceEvent.from_fields(command)
    except DecodeError:
        return
    read = data[: len(data) - len(rest)]
    assert publish_price_payload(event, int(command.current_time)) == read


def test_mqtt_relays_the_trailers_and_the_display_state_shows_the_tier_in_force() -> None:
    """The ESI's sent price and a device's received price carry every trailer by the
    PriceEvent field names; an in-home display's ``price_tier`` is the tier in force (it
    showed 15, the 4-bit field, for tier 20)."""
    event = tiered(20)
    relayed = price_payload(event)
    for name in ("number_of_generation_tiers", "generation_tier", "extended_price_tier"):
        assert relayed[name] == getattr(event, name)
    view = DeviceView(IN_HOME_DISPLAY)
    assert view.update(PriceReceived(source_nwk=0, price=event, new=True))
    assert view.payload["price_tier"] == 20
    assert view.update(PriceReceived(source_nwk=0, price=price(2, price_tier=2), new=True))
    assert view.payload["price_tier"] == 2


def _command(price_fields: dict[str, Any]) -> bytes:
    body = {"correlation_id": "c", "device": "00:0d:6f:00:0a:00:00:01", "price": price_fields}
    return json.dumps(body).encode()


def test_mqtt_publish_price_takes_the_trailers_by_name_and_old_commands_still_parse() -> None:
    """``publish_price`` builds the PriceEvent from its field names, the SE 1.2 ones too; a
    command written before them (no such keys) gives the same price as before."""
    event = tiered(20)
    fields = {**dataclasses.asdict(event), "rate_label": event.rate_label.decode()}
    command = parse_command("publish_price", _command(fields))
    assert isinstance(command, PublishPrice)
    assert command.price == event
    old = price(7)
    old_fields = {
        k: v for k, v in dataclasses.asdict(old).items() if v is not None and k != "rate_label"
    }
    parsed = parse_command("publish_price", _command({**old_fields, "rate_label": "TOU"}))
    assert isinstance(parsed, PublishPrice)
    assert parsed.price == old
    assert parsed.price.extended_price_tier is None
    assert parsed.price.effective_price_tier == old.price_tier


def test_the_display_shows_the_tier_in_force() -> None:
    """An in-home display keeps the price in force in its effective tier and prints it."""
    kept = TierPrice.of(tiered(20))
    assert (kept.tier, kept.price, kept.trailing_digit) == (20, 2000, 3)
    ledger = EnergyLedger()
    ledger.add(Fraction(0), kept)
    assert energy_screen(None, None, ledger, None).tier == "tier 20"
    ledger.add(Fraction(1), TierPrice.of(price(3, price_tier=0)))
    assert energy_screen(None, None, ledger, None).tier is None  # no tier
