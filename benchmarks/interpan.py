"""Inter-PAN frame codec: zse against scapy in the same run.

Usage: .venv/bin/python benchmarks/interpan.py [--repeat R] [--sources N]

One "round" encodes a frame to its MAC bytes and decodes those bytes back to fields, for 60
frames mixing unicast, broadcast and group delivery with Price and Messaging payloads:

- zse: ``InterPanFrame.to_bytes()`` then ``InterPanFrame.from_bytes()``;
- scapy: building ``Dot15d4 / Dot15d4Data / ZigbeeNWKStub / ZigbeeAppDataPayloadStub`` and
  ``bytes()`` of it, then ``Dot15d4(data)`` and reading the same fields.

Prints microseconds per round for each and the ratio (goal: zse >= 20x faster).

Second, the ZCL header decoding that polices every received frame (the window's whitelist check,
spoofed floods included): ``zse.interpan._zcl.ZclHeader.from_bytes`` against zigpy's
``ZCLHeader.deserialize`` on the same payloads (docs/interpan.md says why zse keeps its own).

Third (issue #12.21), a flood of Publish Price from ``--sources`` (3,000) spoofed sources,
each a price scheduled for later (nothing supersedes it): the microseconds
``InterPanSeClient.handle`` takes per frame over the first and the last 200 frames (half the
flood if smaller), for the bounded client (``max_prices=16``, the default) and, as the
reference in the same run, the same client without a bound (what zse did before: every price
kept). Goal: the bounded client's last frames cost what its first do. And the ESI's reply
limiter (``reply_limiter()``) deciding on as many spoofed requesters: cost per decision with
an empty and with a full table.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
import timeit
from typing import Any

from scapy.config import conf
from scapy.layers.dot15d4 import Dot15d4, Dot15d4Data
from scapy.layers.zigbee import ZigbeeAppDataPayloadStub, ZigbeeNWKStub
from zigpy.types import EUI64
from zigpy.zcl import foundation

from zse.config import parse_price
from zse.interpan import BROADCAST_ADDRESS, DeliveryMode, InterPanFrame
from zse.interpan._zcl import ZclHeader
from zse.interpan.se import PRICE, InterPanSeClient, encode_se, reply_limiter
from zse.interpan.service import InterPanService
from zse.interpan.transports.sim import SimTransport
from zse.price.wire import Price
from zse.sim import Air, run

conf.dot15d4_protocol = "zigbee"


def make_frames(count: int = 60) -> list[InterPanFrame]:
    rng = random.Random(1)
    modes = list(DeliveryMode)
    frames = []
    for i in range(count):
        mode = modes[i % 3]
        frames.append(
            InterPanFrame(
                src_pan_id=rng.randrange(0xFFFF),
                src_ieee=EUI64(rng.randbytes(8)),
                dst_pan_id=0xFFFF,
                dst_address=EUI64(rng.randbytes(8))
                if mode is DeliveryMode.UNICAST
                else BROADCAST_ADDRESS,
                delivery_mode=mode,
                group_id=rng.randrange(0xFFFF) if mode is DeliveryMode.GROUP else None,
                cluster_id=rng.choice([0x0700, 0x0703]),
                payload=bytes([0x09, i & 0xFF, 0x00]) + rng.randbytes(rng.randrange(1, 60)),
                sequence=i & 0xFF,
            )
        )
    return frames


def zse_round(frame: InterPanFrame) -> tuple[Any, ...]:
    decoded = InterPanFrame.from_bytes(frame.to_bytes())
    return (decoded.src_ieee, decoded.dst_pan_id, decoded.cluster_id, decoded.payload)


def scapy_round(frame: InterPanFrame) -> tuple[Any, ...]:
    unicast = frame.delivery_mode is DeliveryMode.UNICAST
    aps: dict[str, Any] = {}
    if frame.delivery_mode is DeliveryMode.GROUP:
        aps["group_addr"] = frame.group_id
    dst = (
        int.from_bytes(frame.dst_address.serialize(), "little")
        if isinstance(frame.dst_address, EUI64)
        else 0xFFFF
    )
    packet = (
        Dot15d4(
            fcf_frametype=1,
            fcf_ackreq=int(unicast),
            fcf_panidcompress=0,
            fcf_destaddrmode=3 if unicast else 2,
            fcf_srcaddrmode=3,
            seqnum=frame.sequence,
        )
        / Dot15d4Data(
            dest_panid=frame.dst_pan_id,
            dest_addr=dst,
            src_panid=frame.src_pan_id,
            src_addr=int.from_bytes(frame.src_ieee.serialize(), "little"),
        )
        / ZigbeeNWKStub()
        / ZigbeeAppDataPayloadStub(
            delivery_mode=int(frame.delivery_mode),
            cluster=frame.cluster_id,
            profile=frame.profile_id,
            data=frame.payload,
            **aps,
        )
    )
    parsed = Dot15d4(bytes(packet))
    stub = parsed[ZigbeeAppDataPayloadStub]
    return (parsed[Dot15d4Data].src_addr, parsed[Dot15d4Data].dest_panid, stub.cluster, stub.data)


def us_per_round(function: Any, frames: list[InterPanFrame], loops: int, repeat: int) -> float:
    timer = timeit.Timer(lambda: [function(f) for f in frames])
    return min(timer.repeat(repeat=repeat, number=loops)) / (loops * len(frames)) * 1e6


def us_per_call(function: Any, items: list[bytes], loops: int, repeat: int) -> float:
    timer = timeit.Timer(lambda: [function(i) for i in items])
    return min(timer.repeat(repeat=repeat, number=loops)) / (loops * len(items)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sources", type=int, default=SPOOFED, help="spoofed (the flood)")
    args = parser.parse_args()
    if args.sources < 2:
        parser.error("--sources: at least 2 (the first and the last frames are timed)")
    frames = make_frames()
    for f in frames:  # both sides see the same frames, and agree on them
        ours, theirs = zse_round(f), scapy_round(f)
        assert ours[2:] == theirs[2:], (ours, theirs)
    zse_us = us_per_round(zse_round, frames, 200, args.repeat)
    scapy_us = us_per_round(scapy_round, frames, 5, args.repeat)
    print(f"zse    encode+decode: {zse_us:8.2f} us/frame")
    print(f"scapy  encode+decode: {scapy_us:8.2f} us/frame")
    ratio = scapy_us / zse_us
    print(f"ratio: zse is {ratio:.1f}x faster than scapy (goal >= 20x)")

    payloads = [f.payload for f in frames]
    for data in payloads:  # the same header either way
        assert ZclHeader.from_bytes(data).to_zigpy() == foundation.ZCLHeader.deserialize(data)[0]
    ours_us = us_per_call(ZclHeader.from_bytes, payloads, 500, args.repeat)
    zigpy_us = us_per_call(foundation.ZCLHeader.deserialize, payloads, 20, args.repeat)
    print(f"zse    ZCL header decode: {ours_us:8.2f} us/frame")
    print(f"zigpy  ZCL header decode: {zigpy_us:8.2f} us/frame")
    print(f"ratio: zse is {zigpy_us / ours_us:.1f}x faster than zigpy's ZCLHeader.deserialize")

    flood(args.repeat, args.sources)


SPOOFED = 3000
NOW = 800_000_000


def spoofed_prices(sources: int = SPOOFED) -> list[InterPanFrame]:
    """Publish Price from ``sources`` made-up addresses, each a price scheduled for later."""
    rng = random.Random(3)
    broadcast = next(f for f in make_frames(3) if f.delivery_mode is DeliveryMode.BROADCAST)
    frames = []
    for i in range(sources):
        event = parse_price(
            "0.2457",
            rate_label="PEAK",
            issuer_event_id=1000 + i,
            provider_id=i,
            start_time=NOW + 3600 + 60 * i,
            duration_in_minutes=30,
        )
        payload = encode_se(
            Price.ClientCommandDefs.publish_price,
            event.to_fields(NOW),
            tsn=i & 0xFF,
            from_server=True,
        )
        frames.append(
            dataclasses.replace(
                broadcast,
                src_ieee=EUI64(rng.randbytes(8)),
                cluster_id=PRICE,
                payload=payload,
                sequence=i & 0xFF,
            )
        )
    return frames


async def client_us_per_frame(frames: list[InterPanFrame], max_prices: int) -> tuple[float, float]:
    """Microseconds per frame of ``handle`` over the first and the last :func:`window`."""
    air = Air(seed=1)
    node = air.device("00:0d:6f:00:00:00:99:01", channel=15)
    node.listen()
    service = InterPanService(SimTransport(node), ieee=node.ieee, pan_id=0xFFFF)
    client = InterPanSeClient(service, clock=lambda: NOW, max_prices=max_prices)
    times = []
    for frame in frames:
        begin = time.perf_counter()
        client.handle(frame)
        times.append(time.perf_counter() - begin)
    await service.close()
    return first_and_last(times)


def window(count: int) -> int:
    """Frames at each end that are timed: 200, or half of a smaller flood (a smoke run)."""
    return min(200, count // 2)


def first_and_last(times: list[float]) -> tuple[float, float]:
    """Mean microseconds over the first and over the last :func:`window` of ``times``."""
    n = window(len(times))
    return sum(times[:n]) / n * 1e6, sum(times[-n:]) / n * 1e6


def limiter_us_per_decision(count: int = SPOOFED) -> tuple[float, float]:
    """Microseconds per reply-limiter decision for ``count`` new sources: table empty, then
    full (once ``count`` passes the table's 1,024)."""
    rng = random.Random(4)
    sources = [EUI64(rng.randbytes(8)) for _ in range(count)]
    limiter = reply_limiter()
    times = []
    for i, source in enumerate(sources):
        begin = time.perf_counter()
        limiter.allow(source, i / 100)
        times.append(time.perf_counter() - begin)
    return first_and_last(times)


def flood(repeat: int, sources: int = SPOOFED) -> None:
    frames = spoofed_prices(sources)
    n = window(sources)
    assert {f.cluster_id for f in frames} == {PRICE}

    def best(max_prices: int) -> tuple[float, float]:
        runs = [run(client_us_per_frame(frames, max_prices)) for _ in range(repeat)]
        return min(r[0] for r in runs), min(r[1] for r in runs)

    bounded = best(16)
    unbounded = best(10**9)
    print(f"spoofed Publish Price, {sources} sources, us/frame (first {n} -> last {n}):")
    print(f"zse    max_prices=16:  {bounded[0]:8.1f} -> {bounded[1]:8.1f}")
    print(f"no bound (reference):  {unbounded[0]:8.1f} -> {unbounded[1]:8.1f}")
    print(
        f"ratio last/first: bounded {bounded[1] / bounded[0]:.2f}x, "
        f"unbounded {unbounded[1] / unbounded[0]:.1f}x; last frames: unbounded costs "
        f"{unbounded[1] / bounded[1]:.1f}x the bounded (goal: bounded last/first <= 1.5x)"
    )
    runs = (limiter_us_per_decision(sources) for _ in range(repeat))
    empty, full = min(runs, key=lambda r: r[1])
    print(
        f"ESI reply limiter, {sources} new sources: {empty:.2f} us/decision (table filling) -> "
        f"{full:.2f} us/decision (last {n}; the table is full past 1,024): {full / empty:.2f}x"
    )


if __name__ == "__main__":
    main()
