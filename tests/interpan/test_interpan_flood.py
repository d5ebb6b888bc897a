"""#12.21: inter-PAN floods of spoofed sources, on the simulator's air (virtual time).

The ESI answers Get Current Price within its reply limiter's bounds while a legitimate display
among 3,000 spoofed requesters still gets its price; a display that hears Publish Price from
3,000 spoofed sources keeps a bounded schedule, and the price it asked for."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Any

import pytest
from zigpy.types import EUI64

from tests.interpan.test_interpan_se import PRICE_7, START
from zse.interpan import InterPanFrame
from zse.interpan._codec import BROADCAST_ADDRESS, DeliveryMode
from zse.interpan.se import (
    PRICE,
    InterPanEsi,
    InterPanPriceReceived,
    InterPanSeClient,
    PriceRequested,
    encode_se,
    reply_limiter,
)
from zse.interpan.service import InterPanService
from zse.interpan.transports.sim import SimTransport
from zse.price import PriceEvent, PriceSchedule
from zse.price.wire import Price
from zse.se.types import GetCurrentPriceOptions
from zse.sim import Air, run

ESI_PAN = 0x1A2B
SPOOFED = 3000
FLOOD_RATE = 100  # spoofed frames per second (a radio puts a few hundred on the air)


def spoofed(rng: random.Random, payload: bytes, index: int) -> bytes:
    """A broadcast inter-PAN frame from a made-up address, as the attacker's radio sends it."""
    return InterPanFrame(
        src_pan_id=rng.randrange(0xFFFF),
        src_ieee=EUI64(rng.randbytes(8)),
        dst_pan_id=0xFFFF,
        dst_address=BROADCAST_ADDRESS,
        delivery_mode=DeliveryMode.BROADCAST,
        group_id=None,
        cluster_id=PRICE,
        payload=payload,
        sequence=index & 0xFF,
    ).to_bytes()


class Scene:
    """An ESI serving the price as ``ZseEsi.serve_interpan`` does by default (no receiving
    window), a display that never joined, and an attacker's radio, on one channel."""

    def __init__(self, air: Air, schedule: PriceSchedule) -> None:
        self.air = air
        self.schedule = schedule
        self.clock = lambda: START + int(asyncio.get_running_loop().time())

    async def start(self, **client_options: Any) -> InterPanSeClient:
        app = await self.air.coordinator(channel=15, pan_id=ESI_PAN)
        self.esi_ieee = app.state.node_info.ieee
        service = InterPanService(SimTransport(app), ieee=self.esi_ieee, pan_id=ESI_PAN)
        self.esi = InterPanEsi(service, schedule=self.schedule, clock=self.clock)
        self.serving = asyncio.get_running_loop().create_task(self.esi.serve())
        self.display = self.air.device("00:0d:6f:00:00:00:99:01", channel=15)
        self.display.listen()
        self.attacker = self.air.device("00:0d:6f:00:00:00:66:66", channel=15)
        self.attacker.listen()
        display = InterPanService(SimTransport(self.display), ieee=self.display.ieee, pan_id=0xFFFF)
        return InterPanSeClient(display, clock=self.clock, **client_options)

    async def stop(self) -> None:
        await self.esi.service.close()
        await self.serving


async def flood(attacker: Any, frames: list[bytes]) -> None:
    loop = asyncio.get_running_loop()
    begin = loop.time()
    for index, frame in enumerate(frames):
        await asyncio.sleep(max(0.0, begin + index / FLOOD_RATE - loop.time()))
        await attacker.send_interpan(frame)


def test_esi_bounds_its_replies_and_still_serves_a_display() -> None:
    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        schedule = PriceSchedule()
        scene = Scene(Air(seed=121), schedule)
        added = scene.clock()
        schedule.add(PRICE_7, added)
        client = await scene.start()
        esi = scene.esi
        requests: list[PriceRequested] = []
        esi.on_event(requests.append)
        rng = random.Random(5)
        ask = encode_se(
            Price.ServerCommandDefs.get_current_price,
            {"command_options": GetCurrentPriceOptions.Requestor_Rx_On_When_Idle},
            tsn=1,
            from_server=False,
        )
        frames = [spoofed(rng, ask, i) for i in range(SPOOFED)]
        attack = loop.create_task(flood(scene.attacker, frames))
        await asyncio.sleep(5)  # the flood is on
        answers = []  # a display polling the price every 2 s during the flood
        for _poll in range(10):
            asked_at = loop.time()
            answers.append(await client.get_current_price(timeout=2.0))
            await asyncio.sleep(max(0.0, asked_at + 2.0 - loop.time()))
        await attack
        flood_time = loop.time()
        await asyncio.sleep(5)
        await scene.stop()
        return {
            "answers": answers,
            "requests": requests,
            "throttled": esi.throttled,
            "flood_time": flood_time,
            "table": len(esi.limiter),
            "display": scene.display.ieee,
            "added": added,
        }

    out = run(main())
    requests: list[PriceRequested] = out["requests"]
    legit = [r for r in requests if r.source_ieee == out["display"]]
    flood_requests = [r for r in requests if r.source_ieee != out["display"]]
    assert len(flood_requests) == SPOOFED  # every spoofed request reached the ESI
    # the display is served within a bounded time: every poll from its third on (it is then
    # established, with its own budget), whatever the flood does
    answered = dataclasses.replace(PRICE_7, start_time=out["added"])  # "now": when it started
    assert all(answer == answered for answer in out["answers"][2:]), out["answers"]
    assert len(legit) == 10
    # replies: spoofed addresses never establish, so they share the newcomer budget, and
    # everything together stays under the global cap
    limiter = reply_limiter()
    duration = out["flood_time"]
    sent = [r for r in requests if not r.throttled]
    spoof_sent = [r for r in flood_requests if not r.throttled]
    assert len(spoof_sent) <= limiter.newcomer_burst + limiter.newcomer_rate * duration
    assert limiter.total_rate is not None
    assert len(sent) <= limiter.total_burst + limiter.total_rate * duration
    assert out["throttled"] == len(requests) - len(sent) >= SPOOFED - len(spoof_sent)
    assert out["table"] <= limiter.max_sources  # bounded memory


def publish(event: PriceEvent, tsn: int) -> bytes:
    return encode_se(
        Price.ClientCommandDefs.publish_price, event.to_fields(START), tsn=tsn, from_server=True
    )


def future_price(i: int) -> PriceEvent:
    """A spoofed price scheduled for later: nothing supersedes it, so every one is kept
    (without a bound)."""
    return dataclasses.replace(
        PRICE_7,
        provider_id=i,
        issuer_event_id=1000 + i,
        start_time=START + 3600 + 60 * i,
        duration_in_minutes=30,
    )


def test_display_keeps_a_bounded_schedule_under_spoofed_prices() -> None:
    async def main() -> dict[str, Any]:
        schedule = PriceSchedule()
        scene = Scene(Air(seed=122), schedule)
        added = scene.clock()
        schedule.add(PRICE_7, added)
        client = await scene.start()
        client.start()
        heard: list[Any] = []
        client.on_event(heard.append)
        asked = await client.get_current_price(dst=scene.esi_ieee, dst_pan_id=ESI_PAN)
        sizes = []
        rng = random.Random(6)
        frames = [
            spoofed(
                rng,
                publish(future_price(i), i & 0xFF),
                i,
            )
            for i in range(SPOOFED)
        ]
        for chunk in range(0, SPOOFED, 500):
            await flood(scene.attacker, frames[chunk : chunk + 500])
            await asyncio.sleep(1)
            sizes.append(len(client.schedule))
        await scene.stop()
        kept = client.schedule.forget(PRICE_7.provider_id, PRICE_7.issuer_event_id)
        return {"asked": asked, "sizes": sizes, "heard": heard, "kept": kept, "added": added}

    out = run(main())
    assert out["asked"] == dataclasses.replace(PRICE_7, start_time=out["added"])
    prices = [e for e in out["heard"] if isinstance(e, InterPanPriceReceived)]
    assert len(prices) == 1 + SPOOFED  # every one heard, and reported
    assert out["sizes"] == [16] * 6  # bounded: max_prices, whatever the number of sources
    assert out["kept"]  # the price it asked for survived the flood


def test_the_answer_a_display_asked_for_outlasts_unsolicited_prices() -> None:
    """The eviction order of ``max_prices``: unsolicited prices go, least recently heard first;
    the answer to the display's own request stays."""

    async def main() -> tuple[PriceEvent | None, list[list[int]]]:
        schedule = PriceSchedule()
        scene = Scene(Air(seed=123), schedule)
        schedule.add(dataclasses.replace(PRICE_7, provider_id=0), scene.clock())
        client = await scene.start(max_prices=3)
        answer = await client.get_current_price()  # the ESI's answer: provider 0
        rng = random.Random(7)
        kept = []
        for i in (1, 2, 3, 2, 4):  # price 2 heard again: it becomes the most recent
            client.handle(InterPanFrame.from_bytes(spoofed(rng, publish(future_price(i), i), i)))
            now = scene.clock()
            kept.append(sorted({e.provider_id for e in client.schedule.scheduled(0, 0, now)}))
        await scene.stop()
        return answer, kept

    answer, kept = run(main())
    assert answer is not None
    assert answer.provider_id == 0
    assert kept == [[0, 1], [0, 1, 2], [0, 2, 3], [0, 2, 3], [0, 2, 4]]
    with pytest.raises(ValueError, match="max_prices"):
        run(Scene(Air(seed=1), PriceSchedule()).start(max_prices=0))
