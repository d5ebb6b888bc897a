"""#13.2: the sans-IO core of the inter-PAN service (``InterPanLink``: admission, addressing)
and of the terminal's retries (``TerminalExchange``), with no event loop."""

from __future__ import annotations

from dataclasses import replace

import pytest
from zigpy.types import EUI64

from tests.interpan.test_interpan_window import frame as window_frame
from zse.interpan import BROADCAST_ADDRESS, DeliveryMode, InterPanFrame
from zse.interpan.hht import (
    CARRIER_CLUSTER_ID,
    SET_TIME,
    Command,
    HhtMeter,
    HhtTerminal,
    MemoryLog,
    Status,
    carrier_whitelist,
    set_time_body,
)
from zse.interpan.link import InterPanLink, LinkLost, TerminalExchange
from zse.interpan.window import CommandWhitelist, InterPanWindow, Verdict

LOCAL = EUI64.convert("00:0d:6f:00:00:00:00:01")
METER = EUI64.convert("00:0d:6f:00:00:00:00:02")
STRANGER = EUI64.convert("00:0d:6f:00:00:00:00:03")
GET_CURRENT_PRICE = b"\x01\x05\x00\x01"  # ZCL: cluster-specific, client to server, tsn 5
DISPLAY_MESSAGE = b"\x19\x05\x00"  # server to client, command 0x00
GET_LAST_MESSAGE = b"\x11\x05\x00"  # client to server, command 0x00: not whitelisted


def received(payload: bytes, *, cluster: int = 0x0700, src: EUI64 = STRANGER) -> InterPanFrame:
    return window_frame(payload, cluster, src)


@pytest.mark.parametrize(
    ("window", "frame", "admitted"),
    [
        # without a window: the whitelist decides (SE B.5)
        (None, received(GET_CURRENT_PRICE), True),
        (None, received(GET_CURRENT_PRICE, cluster=0x0702), False),
        (None, received(GET_LAST_MESSAGE, cluster=0x0703), False),
        # with a window: closed admits nothing, open admits what its whitelist allows
        ("closed", received(GET_CURRENT_PRICE), False),
        ("open", received(GET_CURRENT_PRICE), True),
        ("open", received(GET_CURRENT_PRICE, cluster=0x0702), False),
        ("expired", received(GET_CURRENT_PRICE), False),
    ],
)
def test_link_admits_by_window_else_whitelist(
    window: str | None, frame: InterPanFrame, admitted: bool
) -> None:
    policing = None if window is None else InterPanWindow(default_duration=60)
    if window in ("open", "expired"):
        assert policing is not None
        policing.open(0.0)
    link = InterPanLink(ieee=LOCAL, pan_id=0x1A2B, window=policing)
    assert link.admits(frame, 61.0 if window == "expired" else 1.0) is admitted


def test_link_takes_only_frames_addressed_to_it() -> None:
    """A sniffing radio passes on every inter-PAN frame it hears (an independent audit fed
    these through the EZSP transport: each was answered): a unicast to another node, a frame
    for another PAN or another profile, one "from" this node's own address are dropped;
    broadcasts to every PAN or ours and unicasts to us are taken."""
    link = InterPanLink(ieee=LOCAL, pan_id=0x1A2B, window=None)
    good = received(GET_CURRENT_PRICE)
    to_us = replace(good, delivery_mode=DeliveryMode.UNICAST, dst_address=LOCAL)
    taken = [good, replace(good, dst_pan_id=0x1A2B), to_us, replace(to_us, dst_pan_id=0x1A2B)]
    for frame in taken:
        assert link.misaddressed(frame) is None
        assert link.admits(frame, 1.0)
    for frame, why in [
        (replace(to_us, dst_address=METER), f"for {METER}"),
        (replace(good, dst_pan_id=0x9999), "for PAN 0x9999"),
        (replace(to_us, dst_pan_id=0x9999), "for PAN 0x9999"),
        (replace(good, profile_id=0x0104), "for profile 0x0104"),
        (replace(good, src_ieee=LOCAL), "from this node's own address"),
    ]:
        assert link.misaddressed(frame) == why
        assert not link.admits(frame, 1.0)
    window = InterPanWindow(default_duration=60)
    window.open(0.0)
    policed = InterPanLink(ieee=LOCAL, pan_id=0x1A2B, window=window)
    assert not policed.admits(replace(good, dst_pan_id=0x9999), 1.0)
    assert window.counts[Verdict.ACCEPTED] == 0  # dropped before the window counts it


def test_link_addresses_and_numbers_its_frames_and_polices_what_it_sends() -> None:
    link = InterPanLink(ieee=LOCAL, pan_id=0x1A2B)
    frames = [
        link.frame(cluster_id=0x0700, payload=GET_CURRENT_PRICE),
        link.frame(cluster_id=0x0700, payload=GET_CURRENT_PRICE, group_id=0x0001),
        link.frame(cluster_id=0x0700, payload=GET_CURRENT_PRICE, dst=METER, dst_pan_id=0x2222),
        link.reply(received(GET_CURRENT_PRICE), cluster_id=0x0700, payload=DISPLAY_MESSAGE),
    ]
    assert [(f.delivery_mode, f.dst_address, f.dst_pan_id) for f in frames] == [
        (DeliveryMode.BROADCAST, BROADCAST_ADDRESS, 0xFFFF),
        (DeliveryMode.GROUP, BROADCAST_ADDRESS, 0xFFFF),
        (DeliveryMode.UNICAST, METER, 0x2222),
        (DeliveryMode.UNICAST, STRANGER, 0x1234),
    ]
    assert [f.sequence for f in frames] == [0, 1, 2, 3]
    assert {(f.src_ieee, f.src_pan_id) for f in frames} == {(LOCAL, 0x1A2B)}
    for _ in range(252):
        last = link.frame(cluster_id=0x0700, payload=GET_CURRENT_PRICE)
    assert last.sequence == 255
    assert link.frame(cluster_id=0x0700, payload=GET_CURRENT_PRICE).sequence == 0
    link.check_outgoing(frames[0])
    with pytest.raises(PermissionError, match="not whitelisted for inter-PAN"):
        link.check_outgoing(link.frame(cluster_id=0x0702, payload=GET_CURRENT_PRICE))
    # a window brings its whitelist, for receiving and sending alike
    carrier = InterPanWindow(whitelist=carrier_whitelist())
    assert InterPanLink(ieee=LOCAL, pan_id=1, window=carrier).whitelist is carrier.whitelist
    strict = CommandWhitelist([])
    assert InterPanLink(ieee=LOCAL, pan_id=1, window=carrier, whitelist=strict).whitelist is strict


def commands() -> list[Command]:
    return [Command(0x10 + i, SET_TIME, set_time_body(0x2B00_0000 + i)) for i in range(3)]


def answer(meter: HhtMeter, frame: bytes, *, src: EUI64 = METER) -> InterPanFrame:
    return received(meter.receive(frame), cluster=CARRIER_CLUSTER_ID, src=src)


@pytest.mark.parametrize(
    ("lost", "attempts", "outcome"),
    [
        # which sends go unanswered (by send number) -> sends made, and the end
        ((), 3, (3, "done")),
        ((0, 1), 3, (5, "done")),  # the first command needs its third attempt
        ((0, 1, 2), 3, (3, "lost at 0")),
        ((2, 3, 4), 3, (5, "lost at 2")),  # two commands answered, then the link goes
        ((0,), 1, (1, "lost at 0")),
        ((), 0, (0, "lost at 0")),
    ],
)
def test_terminal_exchange_resends_then_gives_up(
    lost: tuple[int, ...], attempts: int, outcome: tuple[int, str]
) -> None:
    meter = HhtMeter(MemoryLog(), {SET_TIME: lambda body: b""})
    terminal = HhtTerminal(request_id=7, commands=commands(), timeout=2.0)
    run = TerminalExchange(terminal, meter=METER, attempts=attempts)
    now, sends = 0.0, 0
    try:
        frame = run.start(now)
        while frame is not None:
            sends += 1
            if sends - 1 in lost:
                deadline = run.next_deadline()
                assert deadline == now + 2.0
                now = deadline
                frame = run.handle_timeout(now)
            else:
                assert run.receive(answer(meter, frame, src=STRANGER), now) is None  # not the meter
                frame = run.receive(answer(meter, frame), now)
        end = "done"
    except LinkLost as exc:
        end = f"lost at {exc.position}"
    assert (sends, end) == outcome
    assert run.done is (end == "done")
    assert meter.executions == len(terminal.results)  # at most once: resends are DUPLICATE


def test_terminal_exchange_resumes_where_the_meter_stands() -> None:
    meter = HhtMeter(MemoryLog(), {SET_TIME: lambda body: b""})
    first = HhtTerminal(request_id=7, commands=commands())
    run = TerminalExchange(first, meter=METER)
    frame = run.start(0.0)
    assert frame is not None
    run.receive(answer(meter, frame), 0.0)  # command 0 executed, then the link breaks
    again = HhtTerminal(request_id=7, commands=commands())
    resumed = TerminalExchange(again, meter=METER)
    frame = resumed.start(10.0, resume=True)
    while frame is not None:
        frame = resumed.receive(answer(meter, frame), 10.0)
    statuses = [result.status for result in again.results.values()]
    assert (again.resumed_at, statuses, resumed.done) == (1, [Status.EXECUTED] * 2, True)
    assert meter.executions == 3


def test_a_terminal_takes_its_meter_s_answers_from_the_meter_s_pan_only() -> None:
    """An answer from the meter's EUI-64 on another PAN was taken (found by an independent
    audit); with the PAN unknown (0xFFFF) any PAN's answer is the meter's."""
    for pan, taken in ((0x1234, {0x1234}), (0xFFFF, {0x1234, 0x9999})):
        for source in (0x1234, 0x9999):
            meter = HhtMeter(MemoryLog(), {SET_TIME: lambda body: b""})
            run = TerminalExchange(
                HhtTerminal(request_id=7, commands=commands()), meter=METER, meter_pan_id=pan
            )
            first = run.start(0.0)
            assert first is not None
            frame = replace(answer(meter, first), src_pan_id=source)
            assert (run.receive(frame, 0.5) is not None) is (source in taken), (pan, source)
