"""A repeated Publish Price is not acknowledged again.

The client acknowledged every Publish Price whose Price Control asks for it, a repeat of a
price it already held too; since acknowledgements go however a price is addressed, every
device answered every re-broadcast of the same price at once (audit today, finding 5).
As Silicon Labs' price client (price-client.c) does, a price held already (the same issuer
event id and content) now gets a Default Response DUPLICATE_EXISTS instead, which is never
sent to a group or broadcast, and an older price not taken gets FAILURE; only a price taken
is acknowledged.
"""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.price.test_price_ack_any_addressing import ASKS_ACK, GROUP, price_han
from tests.price.test_price_protocol import NOW, ack_to_sender, decoded, publish_frame
from tests.price.test_price_schedule import price
from zse.price.protocol import PriceClientProtocol, PriceReceived
from zse.zcl.frame import Step

PRICE = 0x0700
T0 = 800_000_000


@pytest.mark.parametrize(
    "where", [{}, {"group": GROUP}, {"broadcast": True}], ids=["unicast", "group", "broadcast"]
)
def test_a_price_held_already_is_not_acknowledged_again(where: dict[str, object]) -> None:
    client = PriceClientProtocol()
    event = price(8, **ASKS_ACK)
    msg = publish_frame(event, **where)  # type: ignore[arg-type]
    assert client.receive(msg, decoded(msg), NOW).sends == (ack_to_sender(event),)
    again = client.receive(msg, decoded(msg), NOW + 60)
    assert again == Step(
        events=(PriceReceived(source_nwk=0x1234, price=event, new=False),),
        status=foundation.Status.DUPLICATE_EXISTS,
    )


def test_an_older_price_not_taken_is_not_acknowledged() -> None:
    """An older issuer event id overlapping a newer price held is refused (FAILURE), as
    Silicon Labs' client does, not acknowledged."""
    client = PriceClientProtocol()
    newer = publish_frame(price(9, start=NOW, minutes=60, **ASKS_ACK))
    client.receive(newer, decoded(newer), NOW)
    older = publish_frame(price(8, start=NOW + 60, minutes=60, **ASKS_ACK))
    step = client.receive(older, decoded(older), NOW)
    assert (step.sends, step.status) == ((), foundation.Status.FAILURE)


async def test_a_re_broadcast_price_is_acknowledged_once_per_device() -> None:
    """On the simulator: the same price broadcast three times to three displays brings three
    acknowledgements, one per display, not nine."""
    server, acks, displays = await price_han(34, 3)
    for _ in range(3):
        await server.publish(price(8, **ASKS_ACK), dst=0xFFFD, dst_mode=t.AddrMode.Broadcast)
        await asyncio.sleep(10)
    assert sorted(str(a.source_ieee) for a in acks) == sorted(str(d.ieee) for d, _ in displays)
