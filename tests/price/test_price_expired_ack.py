"""A Publish Price that ended before it arrived is refused, not acknowledged.

The client kept and acknowledged (Price Control bit 0) a price whose start plus duration was
already past when it was received, and reported it as new. Silicon Labs' certified price
client (price-client.c, emberAfPriceClusterPublishPriceCallback: "If the price has already
expired, don't bother with it") answers such a price with a Default Response FAILURE and
neither stores nor acknowledges it; zse's client now does the same. The server side is
unchanged: it still keeps and publishes what it is given.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import zigpy.types as t
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.price.test_price_ack_any_addressing import ASKS_ACK, GROUP, T0, price_han
from tests.price.test_price_protocol import NOW, ack_to_sender, decoded, publish_frame
from tests.price.test_price_schedule import price
from zse.price import PriceEvent
from zse.price.core import DURATION_UNTIL_CHANGED
from zse.price.protocol import PriceClientProtocol, PriceReceived, PriceServerProtocol
from zse.zcl.delivery import Destination
from zse.zcl.frame import Step

FAILURE = foundation.Status.FAILURE
#: An hour-long price that ended an hour before NOW.
ENDED = price(8, start=NOW - 7200, minutes=60, **ASKS_ACK)


@pytest.mark.parametrize(
    "where", [{}, {"group": GROUP}, {"broadcast": True}], ids=["unicast", "group", "broadcast"]
)
def test_a_price_ended_before_it_arrived_is_refused_not_acknowledged(
    where: dict[str, Any],
) -> None:
    """Acknowledged and reported new before; now FAILURE, no acknowledgement, not kept."""
    client = PriceClientProtocol()
    msg = publish_frame(ENDED, **where)
    step = client.receive(msg, decoded(msg), NOW)
    assert step == Step(
        events=(PriceReceived(source_nwk=0x1234, price=ENDED, new=False),), status=FAILURE
    )
    assert client.schedule.scheduled(0, 0, NOW) == []


@pytest.mark.parametrize(
    ("start", "minutes", "over"),
    [
        (NOW - 3600, 60, True),  # ends exactly at NOW: over (the end is exclusive)
        (NOW - 3600, 61, False),  # a minute of it left: taken
        (0, 0, True),  # start "now", no duration: over on arrival
        (NOW - 10**6, DURATION_UNTIL_CHANGED, False),  # until changed never ends
    ],
    ids=["ends-now", "minute-left", "now-for-nothing", "until-changed"],
)
def test_the_end_of_a_price_decides_at_the_boundary(start: int, minutes: int, over: bool) -> None:
    """Silicon Labs' rule: refused when start + duration <= now (start 0 = now)."""
    event = price(8, start=start, minutes=minutes, **ASKS_ACK)
    msg = publish_frame(event)
    step = PriceClientProtocol().receive(msg, decoded(msg), NOW)
    if over:
        assert (step.sends, step.status) == ((), FAILURE)
    else:
        assert (step.sends, step.status) == ((ack_to_sender(event),), None)


@given(st.integers(0, 2 * 86_400), st.integers(0, 0xFFFE))
def test_a_price_is_acknowledged_exactly_when_it_has_not_ended(ago: int, minutes: int) -> None:
    """For any start in the past and any finite duration: acknowledged and kept iff
    start + duration is after the time it is received."""
    event = price(8, start=NOW - ago, minutes=minutes, **ASKS_ACK)
    msg = publish_frame(event)
    client = PriceClientProtocol()
    step = client.receive(msg, decoded(msg), NOW)
    live = NOW - ago + 60 * minutes > NOW
    assert bool(step.sends) is live
    assert (client.schedule.current(NOW) == event) is live
    assert step.events == (PriceReceived(source_nwk=0x1234, price=event, new=live),)


def test_the_server_still_publishes_a_price_that_ended() -> None:
    """Only the client refuses: the ESI's server sends what the application publishes."""
    step = PriceServerProtocol().publish(ENDED, NOW, Destination.broadcast())
    assert len(step.sends) == 1


async def test_a_broadcast_price_that_ended_brings_no_acknowledgement() -> None:
    """On the simulator: an ended price broadcast to two displays brings no acknowledgement;
    a live one after it brings one from each."""
    server, acks, displays = await price_han(35, 2)
    ended = price(8, start=T0 - 7200, minutes=60, **ASKS_ACK)
    await server.publish(ended, dst=0xFFFD, dst_mode=t.AddrMode.Broadcast)
    await asyncio.sleep(10)
    assert acks == []
    live: PriceEvent = price(9, **ASKS_ACK)
    await server.publish(live, dst=0xFFFD, dst_mode=t.AddrMode.Broadcast)
    await asyncio.sleep(10)
    assert sorted(str(a.source_ieee) for a in acks) == sorted(str(d.ieee) for d, _ in displays)
    assert {a.issuer_event_id for a in acks} == {9}
