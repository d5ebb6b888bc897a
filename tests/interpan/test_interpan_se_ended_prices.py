"""The inter-PAN SE client and prices that end (SE D.4.2.4.1.1.9-10), as the network's price
client treats them (``zse.price.protocol``): a price heard after its end is not stored, touches
nothing stored and answers no request for the current price; a stored price is forgotten when
it ends (at the core's deadline, with no further input), so it takes no room from live ones."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from tests.interpan.test_interpan_se import PRICE_7, START
from tests.interpan.test_interpan_se_core import ESI, publish
from zse.interpan.se import InterPanEsi, InterPanPriceReceived, InterPanSeClient
from zse.interpan.se_core import SeClientCore
from zse.interpan.service import InterPanService
from zse.interpan.transports.sim import SimTransport
from zse.price import PriceEvent, PriceSchedule
from zse.sim import Air, run

PROVIDER = PRICE_7.provider_id


def price(issuer_event_id: int, start: int, minutes: int) -> PriceEvent:
    return dataclasses.replace(
        PRICE_7, issuer_event_id=issuer_event_id, start_time=start, duration_in_minutes=minutes
    )


#: In force at START: started 10 minutes before, for an hour.
CURRENT = price(5, START - 600, 60)
#: A newer price that had ended (5 minutes, 10 minutes ago) when it is heard at START.
ENDED = price(9, START - 600, 5)


def held(core: SeClientCore, utc: int) -> list[int]:
    return [e.issuer_event_id for e in core.schedule.scheduled(0, 0, utc)]


def test_a_price_heard_after_its_end_is_not_stored_and_spoils_nothing() -> None:
    core = SeClientCore()
    assert core.receive(publish(CURRENT), utc=START).events[0].new  # type: ignore[union-attr]
    send = core.request_price()
    step = core.receive(publish(ENDED, tsn=send.tsn), utc=START)
    (heard,) = step.events
    assert isinstance(heard, InterPanPriceReceived)
    assert (heard.price, heard.new) == (ENDED, False)
    assert step.answers == ((send.tsn, None),)  # no current price in that answer
    assert core.schedule.current(START) == CURRENT  # the newer, ended one replaced nothing
    assert held(core, START) == [5]
    assert not core.schedule.forget(PROVIDER, 9)
    # a price for "now" of no duration has ended as it arrives, too
    assert not core.receive(publish(price(10, 0, 0)), utc=START).events[0].new  # type: ignore[union-attr]
    assert held(core, START) == [5]


def test_a_stored_price_is_forgotten_when_it_ends() -> None:
    """At its end (the core's deadline), with nothing else heard: neither current nor kept."""
    core = SeClientCore()
    core.receive(publish(CURRENT), utc=START)
    end = START - 600 + 3600
    assert core.next_deadline() == end
    assert core.handle_timeout(end - 1) == ()
    assert held(core, end - 1) == [5]
    core.handle_timeout(end)
    assert len(core.schedule) == 0
    assert core.schedule.current(end) is None
    assert core.next_deadline() is None


def test_a_price_cut_short_by_a_newer_one_is_forgotten_when_that_starts() -> None:
    core = SeClientCore()
    core.receive(publish(price(5, START - 600, 0xFFFF)), utc=START)  # until changed
    later = price(6, START + 600, 30)
    core.receive(publish(later), utc=START)
    assert core.next_deadline() == START + 600  # where the first is cut
    core.handle_timeout(START + 600)
    assert held(core, START + 600) == [6]
    assert core.next_deadline() == START + 600 + 1800


def test_a_price_cut_short_ends_at_the_cut_when_the_newer_one_is_forgotten() -> None:
    """The newer price that cut a kept one short is forgotten (``max_prices``): the kept one
    still ends at the cut (the schedule's rule), and the core's deadline is that end, not the
    price's own end or the next start."""
    core = SeClientCore(max_prices=2)
    send = core.request_price()
    core.receive(publish(price(5, START - 600, 0xFFFF), tsn=send.tsn), utc=START)  # answered
    core.receive(publish(price(6, START + 600, 30)), utc=START)  # cuts 5 at START + 600
    other = dataclasses.replace(price(7, START + 1200, 30), provider_id=PROVIDER + 1)
    core.receive(publish(other), utc=START)  # a third: 6, unsolicited, is forgotten
    assert held(core, START) == [5, 7]
    assert core.next_deadline() == START + 600
    core.handle_timeout(START + 600)
    assert held(core, START + 600) == [7]
    assert len(core.schedule) == 1
    assert core.next_deadline() == START + 1200


def test_ended_prices_take_no_room_from_live_ones() -> None:
    """``max_prices`` counts the prices kept: one that ended (an answer to this device's
    request, which the bound spares longest) no longer counts, so no live price is forgotten
    for it."""
    core = SeClientCore(max_prices=2)
    send = core.request_price()
    core.receive(publish(price(5, 0, 1), tsn=send.tsn), utc=START)  # answered, ends in 60 s
    later = START + 120
    first, second = price(6, later + 600, 30), price(7, later + 3600, 30)
    core.receive(publish(dataclasses.replace(first, provider_id=1)), utc=later)
    core.receive(publish(dataclasses.replace(second, provider_id=2)), utc=later)
    kept = {(e.provider_id, e.issuer_event_id) for e in core.schedule.scheduled(0, 0, later)}
    assert kept == {(1, 6), (2, 7)}


def test_the_client_shell_forgets_ended_prices() -> None:
    """On the simulator: an ESI whose clock is behind answers Get Current Price with a price
    that has ended by the display's clock (None, nothing kept); a price heard is forgotten at
    its end by the display's timer, with nothing else heard."""

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        air = Air(seed=31)
        esi_node = air.device(str(ESI), channel=11)
        esi_node.listen()
        ihd = air.device("00:0d:6f:00:00:00:99:01", channel=11)
        ihd.listen()
        esi_svc = InterPanService(SimTransport(esi_node), ieee=esi_node.ieee, pan_id=0x1A2B)
        ihd_svc = InterPanService(SimTransport(ihd), ieee=ihd.ieee, pan_id=0xFFFF)
        schedule = PriceSchedule()
        schedule.add(CURRENT, START)
        esi = InterPanEsi(esi_svc, schedule=schedule, clock=lambda: START + int(loop.time()))
        serving = loop.create_task(esi.serve())
        skew = [7200]  # the display's clock is two hours ahead of the ESI's
        client = InterPanSeClient(ihd_svc, clock=lambda: START + skew[0] + int(loop.time()))
        heard: list[Any] = []
        client.on_event(heard.append)
        out: dict[str, Any] = {"answer": await client.get_current_price()}
        out["after_answer"] = (client.current(), len(client.schedule))
        skew[0] = 0
        await esi.publish_price(price(8, 0, 1))  # for a minute, from now
        await asyncio.sleep(1)
        out["heard_live"] = (client.current() is not None, len(client.schedule))
        await asyncio.sleep(60)
        out["after_end"] = (client.current(), len(client.schedule), client.core.next_deadline())
        out["heard"] = [(e.price.issuer_event_id, e.new) for e in heard]
        await client.close()
        await esi_svc.close()
        await ihd_svc.close()
        await serving
        return out

    out = run(main())
    assert out["answer"] is None
    assert out["after_answer"] == (None, 0)
    assert out["heard_live"] == (True, 1)
    assert out["after_end"] == (None, 0, None)
    assert out["heard"] == [(5, False), (8, True)]
