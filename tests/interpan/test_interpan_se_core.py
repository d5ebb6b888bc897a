"""#13.2: the sans-IO cores of SE over inter-PAN (``EsiCore``, ``SeClientCore``), fed decoded
frames and the time, with no event loop: what is answered, what is sent, what is kept, and the
#12.21 flood bounds (reply rate limiting, bounded price memory) at the core level."""

from __future__ import annotations

import dataclasses
import logging
import random
from dataclasses import replace
from typing import Any

import pytest
from zigpy.types import EUI64

from tests.interpan.test_interpan_se import PRICE_7, START
from tests.price.test_price_schedule import prices_built
from zse.errors import InvalidFrame
from zse.interpan import DeliveryMode, InterPanFrame
from zse.interpan._codec import BROADCAST_ADDRESS
from zse.interpan.se import decode_se, encode_se, message_control
from zse.interpan.se_core import (
    MESSAGING,
    PRICE,
    EsiCore,
    InterPanMessage,
    InterPanMessageCancelled,
    InterPanPriceReceived,
    PriceRequested,
    SeClientCore,
    SeCommand,
    SeSend,
    reply_limiter,
)
from zse.interpan.window import SourceLimiter
from zse.messaging import MessageCancelled, MessageDisplayed, MessageExpired, MessageScheduled
from zse.messaging.wire import Messaging
from zse.price import PriceEvent, PriceSchedule
from zse.price.wire import Price
from zse.se.types import MessageTransmission

ESI = EUI64.convert("00:0d:6f:00:00:00:00:01")
DISPLAY = EUI64.convert("00:0d:6f:00:00:00:99:01")
OTHER_ESI = EUI64.convert("00:0d:6f:00:00:00:00:02")
GET_CURRENT_PRICE = Price.ServerCommandDefs.get_current_price
PUBLISH_PRICE = Price.ClientCommandDefs.publish_price
DISPLAY_MESSAGE = Messaging.ClientCommandDefs.display_message
CANCEL_MESSAGE = Messaging.ClientCommandDefs.cancel_message


def raw(
    payload: bytes, *, cluster: int, src: EUI64 = ESI, dst: EUI64 | None = None
) -> InterPanFrame:
    """An inter-PAN frame carrying ``payload`` (a ZCL frame) from ``src``, as it is."""
    return InterPanFrame(
        src_pan_id=0x1A2B,
        src_ieee=src,
        dst_pan_id=0xFFFF,
        dst_address=BROADCAST_ADDRESS if dst is None else dst,
        delivery_mode=DeliveryMode.BROADCAST if dst is None else DeliveryMode.UNICAST,
        group_id=None,
        cluster_id=cluster,
        payload=payload,
        sequence=0,
    )


def carried(payload: bytes, *, cluster: int, src: EUI64, dst: EUI64 | None = None) -> SeCommand:
    """The decoded command a core is fed."""
    return decode_se(raw(payload, cluster=cluster, src=src, dst=dst))


def heard(
    definition: Any,
    fields: dict[str, Any],
    *,
    src: EUI64 = ESI,
    tsn: int = 0,
    from_server: bool = True,
    cluster: int = PRICE,
) -> SeCommand:
    """The decoded command ``definition`` with ``fields``, from ``src``."""
    payload = encode_se(definition, fields, tsn=tsn, from_server=from_server)
    return carried(payload, cluster=cluster, src=src)


def request(src: EUI64 = DISPLAY, tsn: int = 5) -> SeCommand:
    return heard(GET_CURRENT_PRICE, {"command_options": 1}, src=src, tsn=tsn, from_server=False)


def publish(event: PriceEvent, *, src: EUI64 = ESI, tsn: int = 0) -> SeCommand:
    return heard(PUBLISH_PRICE, event.to_fields(START), src=src, tsn=tsn)


def display(message_id: int, transmission: MessageTransmission, minutes: int = 1) -> SeCommand:
    fields = {
        "message_id": message_id,
        "message_control": message_control(transmission),
        "start_time": 0,
        "duration_in_minutes": minutes,
        "message": "hello",
    }
    return heard(DISPLAY_MESSAGE, fields, cluster=MESSAGING)


def encoded(send: SeSend, src: EUI64 = ESI) -> SeCommand:
    """What the shell puts on the air for ``send`` (its ZCL frame), decoded again."""
    cluster = Price if send.cluster_id == PRICE else Messaging
    table = cluster.client_commands if send.from_server else cluster.server_commands
    definition = table[send.command_id]
    payload = encode_se(definition, send.fields, tsn=send.tsn, from_server=send.from_server)
    return carried(payload, cluster=send.cluster_id, src=src, dst=send.dst)


def future_price(i: int) -> PriceEvent:
    return dataclasses.replace(
        PRICE_7, provider_id=i, issuer_event_id=1000 + i, start_time=START + 3600 + 60 * i
    )


# -- the ESI ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "has_price", "sends", "events"),
    [
        # Get Current Price with a price in force: one Publish Price back, reported on delivery
        (request(), True, 1, []),
        # no price in force: silent (no Default Response over inter-PAN), reported at once
        (
            request(),
            False,
            0,
            [PriceRequested(source_ieee=DISPLAY, source_pan_id=0x1A2B, answered=False)],
        ),
        # another ESI's Publish Price, a message: not the ESI's business
        (publish(PRICE_7), True, 0, []),
        (display(1, MessageTransmission.Anonymous_InterPAN_Only), True, 0, []),
    ],
    ids=["request answered", "request without a price", "publish price", "display message"],
)
def test_esi_core_answers_only_get_current_price(
    command: SeCommand, has_price: bool, sends: int, events: list[PriceRequested]
) -> None:
    schedule = PriceSchedule()
    if has_price:
        schedule.add(PRICE_7, START)
    core = EsiCore(schedule=schedule)
    send, got = core.receive(command, now=0.0, utc=START)
    assert len(send) == sends
    assert list(got) == events
    assert (core.throttled, core.malformed) == (0, 0)


def test_esi_core_answer_is_a_unicast_publish_price_reported_on_delivery() -> None:
    schedule = PriceSchedule()
    schedule.add(PRICE_7, START)
    core = EsiCore(schedule=schedule)
    (answer,), events = core.receive(request(tsn=0x42), now=0.0, utc=START + 60)
    assert events == ()
    assert (answer.dst, answer.dst_pan_id, answer.tsn) == (DISPLAY, 0x1A2B, 0x42)
    on_air = encoded(answer)
    assert on_air.definition is PUBLISH_PRICE
    assert on_air.from_server
    # a price for "now" goes out with the time it started (SE D.4.2.4.1)
    assert PriceEvent.from_fields(on_air.fields) == replace(PRICE_7, start_time=START)
    assert on_air.fields.current_time == START + 60
    report = PriceRequested(source_ieee=DISPLAY, source_pan_id=0x1A2B, answered=True)
    assert core.delivered(answer, ok=True) == (report,)
    assert core.delivered(answer, ok=False) == (dataclasses.replace(report, answered=False),)
    unsolicited = core.publish_price(PRICE_7, utc=START)
    assert core.delivered(unsolicited, ok=True) == ()


def test_esi_core_answers_get_scheduled_prices_within_the_reply_budget() -> None:
    """Get Scheduled Prices, which Silicon Labs' inter-PAN plugin takes with Get Current
    Price: a Publish Price per price from the start time, up to the count, unicast with the
    request's sequence number; each answer takes a reply-limiter token (here 3 in all)."""
    schedule = PriceSchedule()
    schedule.add(PRICE_7, START)
    for i in range(1, 6):
        schedule.add(future_price(i), START)
    budget = SourceLimiter(newcomer_burst=3, newcomer_rate=0.01, first_contact_reserve=0)
    core = EsiCore(schedule=schedule, limiter=budget)
    ask = Price.ServerCommandDefs.get_scheduled_prices
    some = heard(
        ask, {"start_time": 0, "number_of_events": 2}, src=DISPLAY, tsn=9, from_server=False
    )
    sends, events = core.receive(some, now=0.0, utc=START + 60)
    assert events == ()
    assert [(s.dst, s.dst_pan_id, s.tsn, s.request) for s in sends] == [
        (DISPLAY, 0x1A2B, 9, None)
    ] * 2
    prices = [PriceEvent.from_fields(encoded(s).fields) for s in sends]
    assert prices == [replace(PRICE_7, start_time=START), future_price(1)]
    everything = heard(
        ask, {"start_time": 0, "number_of_events": 0}, src=OTHER_ESI, tsn=3, from_server=False
    )
    sends, _ = core.receive(everything, now=0.0, utc=START + 60)
    assert len(sends) == 1  # what is left of the budget; the other 5 prices are not sent
    assert core.throttled == 1


def test_esi_core_reply_rate_is_bounded_under_a_spoofed_flood() -> None:
    """#12.21 at the core: 3,000 spoofed requesters over 30 s get at most the reply limiter's
    total budget (10/s, burst 20), and a display asking every 2 s is answered every time
    from its fourth request on: its decayed score (half-life 10 s) is then
    1 + 2^-0.2 + 2^-0.4 + 2^-0.6 = 3.29 >= 3, so it is established, with its own budget that
    the flood cannot drain (at the third it is 2.63)."""
    schedule = PriceSchedule()
    schedule.add(PRICE_7, START)
    core = EsiCore(schedule=schedule)
    rng = random.Random(13)
    answered = {"display": 0, "spoofed": 0}
    asked = {"display": 0, "spoofed": 0}
    display_answered = []
    for tick in range(3000):
        now = tick / 100  # 100 spoofed requests per second
        who = EUI64(rng.randbytes(8))
        sends, _ = core.receive(request(src=who), now=now, utc=START)
        asked["spoofed"] += 1
        answered["spoofed"] += len(sends)
        if tick % 200 == 0:  # the display, every 2 s
            sends, _ = core.receive(request(), now=now, utc=START)
            asked["display"] += 1
            answered["display"] += len(sends)
            display_answered.append(bool(sends))
    limiter = reply_limiter()
    assert limiter.total_rate is not None
    total = answered["display"] + answered["spoofed"]
    assert total <= limiter.total_burst + limiter.total_rate * 30
    assert answered["spoofed"] <= limiter.newcomer_burst + limiter.newcomer_rate * 30
    assert core.throttled == asked["display"] + asked["spoofed"] - total
    assert display_answered[3:] == [True] * 12
    assert len(core.limiter) <= limiter.max_sources


@pytest.mark.parametrize(
    ("transmission", "text", "error"),
    [
        (MessageTransmission.Normal, "hi", "does not allow inter-PAN"),
        (MessageTransmission.Anonymous_InterPAN_Only, "x" * 79, "do not fit one inter-PAN frame"),
        (MessageTransmission.Anonymous_InterPAN_Only, "x" * 78, None),
        (MessageTransmission.Normal_and_Anonymous_InterPAN, "hi", None),
    ],
)
def test_esi_core_display_message_checks_control_and_size(
    transmission: MessageTransmission, text: str, error: str | None
) -> None:
    core = EsiCore(schedule=PriceSchedule())
    control = message_control(transmission)
    if error is not None:
        with pytest.raises(ValueError, match=error):
            core.display_message(1, text, control=control)
        return
    first = core.display_message(1, text, control=control, dst=DISPLAY, dst_pan_id=0x1A2B)
    second = core.cancel_message(1, control=control)
    assert (first.tsn, second.tsn) == (0, 1)  # unsolicited frames are numbered in turn
    on_air = encoded(first)
    assert (on_air.definition, str(on_air.fields.message)) == (DISPLAY_MESSAGE, text)
    assert encoded(second).definition is CANCEL_MESSAGE


# -- the device -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "answers", "answered"),
    [
        (None, [(ESI, 0)], [True]),  # any ESI may answer a broadcast request
        (ESI, [(OTHER_ESI, 0), (ESI, 0)], [False, True]),  # only the ESI asked answers
        (None, [(ESI, 0), (OTHER_ESI, 0)], [True, False]),  # once
        (ESI, [(ESI, 1)], [False]),  # another sequence number: just a price heard
    ],
)
def test_client_core_matches_answers_to_its_request(
    asked: EUI64 | None, answers: list[tuple[EUI64, int]], answered: list[bool]
) -> None:
    core = SeClientCore()
    send = core.request_price(dst=asked, dst_pan_id=0x1A2B)
    assert (send.tsn, send.dst, send.from_server) == (0, asked, False)
    assert encoded(send, src=DISPLAY).definition is GET_CURRENT_PRICE
    got = []
    for src, tsn in answers:
        step = core.receive(publish(PRICE_7, src=src, tsn=tsn), utc=START)
        assert [type(e) for e in step.events] == [InterPanPriceReceived]
        got.append(step.answers == ((0, PRICE_7),))
    assert got == answered
    core.forget_request(send.tsn)
    assert core.receive(publish(PRICE_7, tsn=0), utc=START).answers == ()


def test_client_core_takes_an_answer_only_from_the_pan_it_asked() -> None:
    """The ESI's answer from another PAN was taken as the answer (found by an independent
    audit); a request to every PAN (0xFFFF) takes any PAN's."""
    cases = ((0x1A2B, 0x1A2B, True), (0x1A2B, 0x9999, False), (0xFFFF, 0x9999, True))
    for pan, source, taken in cases:
        core = SeClientCore()
        send = core.request_price(dst=ESI, dst_pan_id=pan)
        command = publish(PRICE_7, tsn=send.tsn)
        command = replace(command, frame=replace(command.frame, src_pan_id=source))
        assert bool(core.receive(command, utc=START).answers) is taken, (pan, source)


def test_client_core_fails_a_request_with_a_malformed_answer() -> None:
    core = SeClientCore()
    send = core.request_price()
    # decodes, but a 13-byte rate label is not a price (D.4.2.4.1: at most 12)
    fields = {**PRICE_7.to_fields(START), "rate_label": b"X" * 13}
    step = core.receive(heard(PUBLISH_PRICE, fields, tsn=send.tsn), utc=START)
    ((tsn, error),) = step.answers
    assert (tsn, type(error), core.malformed) == (send.tsn, InvalidFrame, 1)
    assert "Publish Price: rate label is 13 bytes" in str(error)
    # does not decode at all: the shell hands the core the frame and its decoding error
    again = core.request_price()
    cases = ((0x0702, 0x19, False), (PRICE, 0x11, False), (PRICE, 0x19, True))
    for cluster, frame_control, failed in cases:  # 0x11: client to server, not an answer
        error = InvalidFrame("truncated")
        truncated = raw(bytes([frame_control, again.tsn, 0x00]), cluster=cluster)
        answers = core.malformed_frame(truncated, error).answers
        assert answers == (((again.tsn, error),) if failed else ())
    assert core.malformed == 4


def test_client_core_price_memory_is_bounded_under_a_spoofed_flood() -> None:
    """#12.21 at the core: 3,000 spoofed prices leave ``max_prices`` kept, the asked one
    among them."""
    core = SeClientCore(max_prices=16)
    send = core.request_price()
    assert core.receive(publish(PRICE_7, tsn=send.tsn), utc=START).answers
    rng = random.Random(21)
    sizes = set()
    for i in range(3000):
        step = core.receive(publish(future_price(i), src=EUI64(rng.randbytes(8))), utc=START)
        assert step.answers == ()
        sizes.add(len(core.schedule))
    assert max(sizes) == 16
    assert core.schedule.forget(PRICE_7.provider_id, PRICE_7.issuer_event_id)


def test_client_core_copies_no_kept_price_per_frame(monkeypatch) -> None:
    """#12.21's cost per frame: a price heard is built once from its fields; checking what
    is kept (ended prices forgotten, the next deadline) copies none of the 16 kept prices.
    It copied each of them two or three times a frame (``PriceSchedule.scheduled``), about
    50 copies, each running every field check: 10 times the frame's cost."""
    core = SeClientCore(max_prices=16)
    rng = random.Random(22)
    frames = [publish(future_price(i), src=EUI64(rng.randbytes(8))) for i in range(60)]
    made = prices_built(monkeypatch)
    for frame in frames:
        core.receive(frame, utc=START)
    assert len(core.schedule) == 16
    assert sorted(made) == [1000 + i for i in range(60)]  # each heard price built once


@pytest.mark.parametrize(
    ("transmission", "refused"),
    [
        (MessageTransmission.Normal, True),
        (MessageTransmission.Normal_and_Anonymous_InterPAN, False),
        (MessageTransmission.Anonymous_InterPAN_Only, False),
    ],
)
def test_client_core_messages_follow_the_transmission_bits_and_the_board(
    transmission: MessageTransmission, refused: bool
) -> None:
    core = SeClientCore()
    step = core.receive(display(9, transmission, minutes=2), utc=START)
    if refused:
        assert (step.events, step.board, core.refused) == ((), False, 1)
        assert core.next_deadline() is None
        return
    assert [type(e) for e in step.events] == [InterPanMessage, MessageDisplayed]
    assert step.board
    assert core.next_deadline() == START + 120
    assert core.handle_timeout(START + 119) == ()
    assert [type(e) for e in core.handle_timeout(START + 120)] == [MessageExpired]
    assert core.next_deadline() is None


def test_client_core_schedules_and_cancels_like_a_joined_device() -> None:
    core = SeClientCore()
    later = heard(
        DISPLAY_MESSAGE,
        {
            "message_id": 3,
            "message_control": message_control(),
            "start_time": START + 600,
            "duration_in_minutes": 1,
            "message": "later",
        },
        cluster=MESSAGING,
    )
    assert [type(e) for e in core.receive(later, utc=START).events] == [
        InterPanMessage,
        MessageScheduled,
    ]
    assert core.next_deadline() == START + 600
    cancel = heard(
        CANCEL_MESSAGE, {"message_id": 3, "message_control": message_control()}, cluster=MESSAGING
    )
    step = core.receive(cancel, utc=START + 1)
    assert [type(e) for e in step.events] == [InterPanMessageCancelled, MessageCancelled]
    assert core.next_deadline() is None
    # a request from another device is not the device's business
    assert core.receive(request(), utc=START) == type(step)()


def test_a_flood_of_malformed_frames_costs_a_few_warnings(caplog) -> None:
    """Anyone in radio range can send garbage: 2,000 malformed frames give 4 WARNING lines
    (the 1st, 10th, 100th and 1,000th, with the count), the rest go to DEBUG."""
    core = EsiCore(schedule=PriceSchedule())
    with caplog.at_level(logging.DEBUG, logger="zse.interpan.se_core"):
        for _ in range(2000):
            core.malformed_frame(InvalidFrame("garbage"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"ignoring garbage ({n} malformed inter-PAN frames so far)" for n in (1, 10, 100, 1000)
    ]
    assert core.malformed == 2000
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 1996
