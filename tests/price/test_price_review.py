"""Hostile review of the Price client (SE D.4): what a flood of Publish Price commands does
to what a device keeps, and tshark's reading of the nibble fields zse's core encodes."""

from __future__ import annotations

import dataclasses

import pytest
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect, zcl_frame
from tests.price.test_price_protocol import ASKS_ACK, NOW, decoded, publish_frame
from tests.price.test_price_schedule import price
from zse.price import PriceSchedule
from zse.price.protocol import PriceClientProtocol, PriceServerProtocol, publish_price_payload
from zse.se.ids import PRICE, PriceClientCommand
from zse.zcl.delivery import Destination

#: What a device's client keeps at most, as the inter-PAN client (max_prices) does.
LIMIT = 16
HOUR = 3600


def future(event_id: int, hours_ahead: int, **kw: object) -> object:
    """A 60-minute price starting ``hours_ahead`` hours after NOW: none overlaps another."""
    return price(event_id, start=NOW + hours_ahead * HOUR, minutes=60, **kw)


def test_a_flood_of_future_prices_does_not_grow_what_a_client_keeps() -> None:
    """A device keeps a bounded table (Silicon Labs' certified client: 2 to 255 prices, at
    least two as the spec asks); a sender publishing ever more future prices, each with its
    own issuer event id and none overlapping, must not make it keep them all."""
    client = PriceClientProtocol()
    client.receive(publish_frame(price(1)), decoded(publish_frame(price(1))), NOW)  # in force
    for n in range(1, 200):
        msg = publish_frame(future(100 + n, n))
        client.receive(msg, decoded(msg), NOW)
    assert len(client.schedule) <= LIMIT
    assert client.schedule.current(NOW) == price(1)  # the price in force is never dropped


def test_a_full_client_refuses_a_later_price_but_takes_an_earlier_one() -> None:
    """Full: a price starting after every one kept is refused (INSUFFICIENT_SPACE, ZCL
    2.5.12), not acknowledged; one starting earlier takes the place of the latest (as
    Silicon Labs' price client does)."""
    client = PriceClientProtocol()
    for n in range(LIMIT):
        msg = publish_frame(future(100 + n, 2 * n + 2))
        client.receive(msg, decoded(msg), NOW)
    later = publish_frame(future(999, 2 * LIMIT + 2, **ASKS_ACK))
    step = client.receive(later, decoded(later), NOW)
    assert step.status == foundation.Status.INSUFFICIENT_SPACE
    assert step.sends == ()  # no Price Acknowledgement for a price not kept
    assert len(client.schedule) == LIMIT
    earlier = publish_frame(future(998, 1, **ASKS_ACK))
    step = client.receive(earlier, decoded(earlier), NOW)
    assert (step.status, len(step.sends)) == (None, 1)  # kept and acknowledged
    starts = [e.start_time for e in client.schedule.scheduled(0, 0, NOW)]
    assert starts[0] == NOW + HOUR
    assert NOW + (2 * LIMIT) * HOUR not in starts  # the latest made room
    assert len(client.schedule) == LIMIT


def test_an_older_overlapping_price_on_a_full_client_is_still_a_failure() -> None:
    """The overlap rule answers first: an older price where a newer one is held is FAILURE
    whether or not the table is full."""
    client = PriceClientProtocol()
    for n in range(LIMIT):
        msg = publish_frame(future(100 + n, n + 1))
        client.receive(msg, decoded(msg), NOW)
    older = publish_frame(future(5, LIMIT))  # overlaps the latest kept: it would start last
    assert client.receive(older, decoded(older), NOW).status == foundation.Status.FAILURE


def test_a_server_schedule_is_unbounded_by_default() -> None:
    schedule = PriceSchedule()
    for n in range(1, 40):
        assert schedule.add(future(n, n), NOW)  # type: ignore[arg-type]
    assert len(schedule) == 39


def test_a_limit_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        PriceSchedule(limit=1)


@pytest.mark.oracle
def test_tshark_reads_the_nibbles_the_core_encodes(tmp_path) -> None:
    """Every nibble distinct, so a swap of trailing digit and tier, or of number of tiers and
    register tier, shows (the wire test's 0x33 could not tell)."""
    event = dataclasses.replace(
        price(9, start=NOW, minutes=30, **ASKS_ACK),
        price_trailing_digit=2,
        price_tier=5,
        number_of_price_tiers=6,
        register_tier=4,
    )
    zcl = zcl_frame(
        PriceClientCommand.PUBLISH_PRICE,
        publish_price_payload(event, NOW + 10),
        from_server=True,
        tsn=1,
    )
    [packet] = dissect([air_frame(PRICE, zcl, 1)], tmp_path)
    assert not packet.malformed
    shown = {
        name: int(packet.show(f"zbee_zcl_se.price.{name}")[0], 0)
        for name in ("trailing_digit", "tier", "number_of_price_tiers", "register_tier")
    }
    assert shown == {
        "trailing_digit": 2,
        "tier": 5,
        "number_of_price_tiers": 6,
        "register_tier": 4,
    }


def test_a_server_does_not_send_a_price_it_does_not_keep() -> None:
    """An older price overlapping a newer one published (D.4.4.2) is refused by every
    client (FAILURE) and never answers Get Current Price; sending it anyway would tell the
    HAN a price the ESI itself does not hold. The application hears why."""
    server = PriceServerProtocol()
    to = Destination.device(0x1234, 1)
    server.publish(price(7), NOW, to)
    with pytest.raises(ValueError, match="newer"):
        server.publish(price(5), NOW, to)
    assert [e.issuer_event_id for e in server.schedule.scheduled(0, 0, NOW)] == [7]
    assert len(server.publish(price(7), NOW, to).sends) == 1  # a repeat still goes
