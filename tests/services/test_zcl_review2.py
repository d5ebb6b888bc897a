"""Follow-ups of the ZCL foundation review (tests/services/test_zcl_review.py): which frame
answers one of zse's requests, and what a peer gets when a handler, a write check or an
attribute source fails.

- The answer to a request comes from the endpoint it was sent to (any endpoint of the peer
  for the broadcast endpoint 0xFF) and travels the other way (ZCL 2.4.1.1.3: the direction
  bit names the sender's side; a response goes from the side that took the request). zigpy
  2.4 keys its own pending requests the same way (``zigpy.device.ResponseKey``: source
  endpoint, cluster, the request's direction flipped, TSN).
- ZCL 2.5.12.2: a unicast command that draws no other answer gets a Default Response; a
  handler that raised before answering leaves FAILURE (0x01) owed, one that raised after its
  reply owes nothing more (a second frame with that TSN would be a second answer).
- ZCL 2.5.2 / 2.5.5: Read and Write Attributes Responses carry a status per attribute; an
  attribute whose value cannot be had, or whose write check fails, gets FAILURE and the
  others are answered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from zigpy.zcl import foundation

from tests.services.test_se_endpoint import network
from tests.services.test_zcl_review import (
    DRLC,
    PEER,
    PRICE,
    Bench,
    answers,
    default_response,
    message,
    parse,
    read_records,
    settle,
    write_statuses,
)
from zse.zcl.endpoint import ZclEndpointBase
from zse.zcl.frame import ZclMessage

G = foundation.GeneralCommand
S = foundation.Status
KEY_EST = 0x0800
MESSAGING = 0x0703
ENDPOINT_LOGGER = "zse.zcl.endpoint"


# -- The answer to a request: from the endpoint asked, the other way -----------------------------


async def test_a_frame_from_another_endpoint_of_the_peer_is_not_the_answer() -> None:
    """A request to the peer's endpoint 1: a cluster command from its endpoint 2 with the
    TSN and the answer's direction is that endpoint's own command (handed to the handlers),
    not the answer; the frame from endpoint 1 is."""
    bench = Bench()
    seen: list[ZclMessage] = []
    bench.add_handler(PRICE, seen.append)
    request = asyncio.create_task(bench.request(PEER, 1, PRICE, 0x00, tsn=0x70, timeout=5.0))
    await settle()
    bench._accept(message(b"\x11\x70\x00\x02", src_ep=2))
    await settle()
    assert not request.done()
    assert [m.src_ep for m in seen] == [2]
    bench._accept(message(b"\x11\x70\x00\x01", src_ep=1))
    assert (await request).payload == b"\x01"


async def test_a_request_to_every_endpoint_is_answered_from_any() -> None:
    bench = Bench()
    request = asyncio.create_task(bench.request(PEER, 0xFF, PRICE, 0x00, tsn=0x71, timeout=5.0))
    await settle()
    bench._accept(message(b"\x11\x71\x00\x07", src_ep=3))
    assert (await request).src_ep == 3


async def test_a_frame_in_the_request_direction_is_not_the_answer() -> None:
    """The bench's Price server sends a server-to-client command; a server-to-client frame
    from the peer with that TSN (a Price server of its own) is no answer, the client's
    client-to-server frame is. The same for a Default Response and a global response."""
    bench = Bench()
    request = asyncio.create_task(bench.request(PEER, 1, PRICE, 0x00, tsn=0x72, timeout=5.0))
    await settle()
    for same_way in (b"\x19\x72\x00\x02", b"\x18\x72\x0b\x00\x00"):
        bench._accept(message(same_way))
        await settle()
        assert not request.done()
    bench._accept(message(b"\x10\x72\x0b\x00\x00"))
    assert (await request).command_id == G.Default_Response
    read = asyncio.create_task(
        bench.request(
            PEER,
            1,
            PRICE,
            G.Read_Attributes,
            b"\x00\x00",
            tsn=0x73,
            timeout=5.0,
            cluster_specific=False,
        )
    )
    await settle()
    bench._accept(message(b"\x08\x73\x01\x00\x00\x86"))  # server to client: no answer
    await settle()
    assert not read.done()
    bench._accept(message(b"\x00\x73\x01\x00\x00\x86"))
    assert (await read).command_id == G.Read_Attributes_rsp


async def test_a_request_sent_with_a_direction_waits_for_the_other_one() -> None:
    """``direction`` given to ``request`` (a cluster hosted on both sides): the answer is
    expected the other way from the one the request went."""
    bench = Bench()
    request = asyncio.create_task(
        bench.request(
            PEER,
            1,
            DRLC,
            0x00,
            tsn=0x74,
            direction=foundation.Direction.Client_to_Server,
            timeout=5.0,
        )
    )
    await settle()
    assert parse(bench.sent[-1][3])[0].frame_control.direction == 0  # as asked
    bench._accept(message(b"\x11\x74\x00\x01", DRLC))
    await settle()
    assert not request.done()
    bench._accept(message(b"\x19\x74\x00\x02", DRLC))
    assert (await request).payload == b"\x02"


def answer_when_let(endpoint: ZclEndpointBase, cluster_id: int, status: S) -> asyncio.Event:
    """A handler on ``endpoint`` that answers ``status`` once the event returned is set."""
    gate = asyncio.Event()

    async def slow(msg: ZclMessage) -> S:
        await gate.wait()
        return status

    endpoint.add_handler(cluster_id, slow)
    return gate


async def test_on_the_air_another_endpoint_of_the_device_is_not_the_answer() -> None:
    """The ESI asks the device's endpoint 1 (Messaging client) with a Display Message; while
    endpoint 1 takes its time, the device's endpoint 2 (another Messaging client) sends Get
    Last Message with the same TSN. That is endpoint 2's request, for the ESI's handler; the
    answer is endpoint 1's Default Response."""
    _, _, se, device = await network(21)
    assert device.nwk is not None
    second = device.add_endpoint(2, device_type=0x0502, out_clusters=[MESSAGING])
    gate = answer_when_let(device.endpoints[1], MESSAGING, S.SUCCESS)
    esi_saw: list[tuple[int, int]] = []
    se.add_handler(MESSAGING, lambda m: esi_saw.append((m.src_ep, m.command_id)))
    request = asyncio.create_task(
        se.request(device.nwk, 1, MESSAGING, 0x00, b"\x00" * 8, tsn=0x33, timeout=20.0)
    )
    await asyncio.sleep(1)
    await second.send(0x0000, se.endpoint_id, MESSAGING, 0x00, tsn=0x33, encrypt=True)
    await asyncio.sleep(1)
    assert esi_saw == [(2, 0x00)]
    assert not request.done()
    gate.set()
    reply = await request
    assert (reply.src_ep, reply.command_id, reply.payload) == (1, G.Default_Response, b"\x00\x00")


async def test_on_the_air_a_crossing_request_is_not_the_answer() -> None:
    """Key Establishment, whose client and server both sides host (SE C.3.1): the ESI sends
    Initiate Key Establishment Request to the device as the device sends its own, with the
    same TSN, the same direction (client to server) and the same command id as the answer the
    ESI waits for. The device's request reaches the ESI's handler; the answer is the
    device's."""
    _, _, se, device = await network(22)
    assert device.nwk is not None
    gate = answer_when_let(device.endpoints[1], KEY_EST, S.FAILURE)
    esi_saw: list[tuple[bool, int]] = []
    se.add_handler(KEY_EST, lambda m: esi_saw.append((m.from_server, m.command_id)))
    request = asyncio.create_task(
        se.request(device.nwk, 1, KEY_EST, 0x00, b"\x01" * 4, tsn=0x44, encrypt=False)
    )
    await asyncio.sleep(1)
    await device.endpoints[1].send(
        0x0000,
        se.endpoint_id,
        KEY_EST,
        0x00,
        b"\x02" * 4,
        tsn=0x44,
        direction=foundation.Direction.Client_to_Server,
    )
    await asyncio.sleep(1)
    assert esi_saw == [(False, 0x00)]
    assert not request.done()
    gate.set()
    reply = await request
    assert (reply.from_server, reply.command_id, reply.payload) == (
        True,
        G.Default_Response,
        b"\x00\x01",
    )


# -- ZCL 2.5.12.2: a handler that raises ----------------------------------------------------------


def failing_bench(*, reply_first: bool) -> Bench:
    """A bench whose Price handler raises, after replying when ``reply_first``."""
    bench = Bench()

    async def handler(msg: ZclMessage) -> S:
        if reply_first:
            await bench.reply(msg, 0x00, b"\x01")
        raise RuntimeError("the handler's store is gone")

    bench.add_handler(PRICE, handler)
    return bench


@pytest.mark.parametrize("frame_control", [0x01, 0x11], ids=["ddr_clear", "ddr_set"])
async def test_a_handler_raising_before_answering_leaves_failure(
    frame_control: int, caplog: pytest.LogCaptureFixture
) -> None:
    """FAILURE whether or not the sender disabled Default Responses (that bit silences
    SUCCESS only); the failure is logged once, nothing escapes."""
    bench = failing_bench(reply_first=False)
    with caplog.at_level(logging.ERROR, ENDPOINT_LOGGER):
        sent = await answers(bench, bytes((frame_control, 0x21, 0x00)))
    assert [default_response(frame) for frame in sent] == [(0x00, S.FAILURE)]
    assert parse(sent[0])[0].tsn == 0x21
    assert len(caplog.records) == 1
    assert bench.escaped == []


async def test_a_handler_raising_after_its_reply_sends_nothing_more() -> None:
    bench = failing_bench(reply_first=True)
    sent = await answers(bench, b"\x01\x22\x00")
    assert [parse(frame)[0].command_id for frame in sent] == [0x00]
    assert parse(sent[0])[0].frame_control.is_cluster


async def test_a_handler_raising_on_a_broadcast_sends_nothing() -> None:
    bench = failing_bench(reply_first=False)
    assert await answers(bench, b"\x01\x23\x00", broadcast=True) == []
    assert await answers(bench, b"\x01\x24\x00", group=0x0E01) == []


async def test_a_raising_handler_replying_to_another_frame_still_owes_failure() -> None:
    """What counts is a reply to the frame that failed: one sent to another frame (another
    TSN) in the meantime does not stand for it."""
    bench = Bench()
    earlier = message(b"\x01\x25\x00")

    async def handler(msg: ZclMessage) -> S:
        await bench.reply(earlier, 0x00, b"\x01")
        raise RuntimeError("failed")

    bench.add_handler(PRICE, handler)
    sent = await answers(bench, b"\x01\x26\x00")
    assert [parse(frame)[0].tsn for frame in sent] == [0x25, 0x26]
    assert default_response(sent[1]) == (0x00, S.FAILURE)


async def test_a_working_handler_still_answers_as_before() -> None:
    bench = Bench()
    bench.add_handler(PRICE, lambda m: S.SUCCESS)
    assert await answers(bench, b"\x11\x27\x00") == []
    sent = await answers(bench, b"\x01\x28\x00")
    assert [default_response(frame) for frame in sent] == [(0x00, S.SUCCESS)]


# -- ZCL 2.5.2-2.5.5: a write check or an attribute source that raises -----------------------------


def stored(bench: Bench, attr_id: int) -> Any:
    value = bench.attribute_value(PRICE, attr_id)
    assert value is not None
    return value.value


def broken_bench() -> Bench:
    """Price attributes 0x0000 (a fine uint8), 0x0001 (its check raises), 0x0002 (its source
    raises), 0x0003 (its on_write raises)."""
    bench = Bench()
    bench.set_attribute(PRICE, 0x0000, 5, type_id=0x20)
    bench.set_writable(PRICE, 0x0000)
    bench.set_attribute(PRICE, 0x0001, 6, type_id=0x20)

    def check(value: Any) -> S | None:
        raise ValueError(f"cannot judge {value}")

    bench.set_writable(PRICE, 0x0001, check=check)

    def source() -> int:
        raise OSError("meter unreachable")

    bench.set_attribute_source(PRICE, 0x0002, 0x20, source)
    bench.set_writable(PRICE, 0x0002)
    bench.set_attribute(PRICE, 0x0003, 7, type_id=0x20)

    def on_write(value: Any) -> None:
        raise RuntimeError("store refused")

    bench.set_writable(PRICE, 0x0003, on_write=on_write)
    return bench


async def test_a_write_check_or_source_that_raises_is_failure_for_that_attribute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bench = broken_bench()
    records = b"".join(
        attr.to_bytes(2, "little") + b"\x20" + bytes((value,))
        for attr, value in ((0x0000, 9), (0x0001, 9), (0x0002, 9))
    )
    with caplog.at_level(logging.ERROR, ENDPOINT_LOGGER):
        sent = await answers(bench, b"\x00\x30\x02" + records)
    assert [write_statuses(frame) for frame in sent] == [[(S.FAILURE, 0x0001), (S.FAILURE, 0x0002)]]
    assert stored(bench, 0x0000) == 9
    assert stored(bench, 0x0001) == 6
    assert len(caplog.records) == 2  # one line for each failing attribute
    assert bench.escaped == []


async def test_an_undivided_write_with_a_raising_check_writes_nothing() -> None:
    bench = broken_bench()
    records = b"\x00\x00\x20\x09" + b"\x01\x00\x20\x09"
    sent = await answers(bench, b"\x00\x31\x03" + records)
    assert [write_statuses(frame) for frame in sent] == [[(S.FAILURE, 0x0001)]]
    assert stored(bench, 0x0000) == 5


async def test_an_on_write_that_raises_is_failure_for_that_attribute() -> None:
    """``on_write`` failing: the value may not have reached its owner, so FAILURE for that
    record, the rest answered; the refused value is not kept (a read gives the old one)."""
    bench = broken_bench()
    records = b"\x03\x00\x20\x09" + b"\x00\x00\x20\x08"
    sent = await answers(bench, b"\x00\x32\x02" + records)
    assert [write_statuses(frame) for frame in sent] == [[(S.FAILURE, 0x0003)]]
    assert stored(bench, 0x0000) == 8
    assert stored(bench, 0x0003) == 7
    assert bench.escaped == []


async def test_a_source_that_raises_is_failure_in_read_attributes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bench = broken_bench()
    with caplog.at_level(logging.ERROR, ENDPOINT_LOGGER):
        sent = await answers(bench, b"\x00\x33\x00\x02\x00\x00\x00\x09\x00")
    assert [read_records(frame) for frame in sent] == [
        [(0x0002, S.FAILURE, None), (0x0000, S.SUCCESS, 5), (0x0009, S.UNSUPPORTED_ATTRIBUTE, None)]
    ]
    assert len(caplog.records) == 1
    assert bench.escaped == []


async def test_a_source_that_raises_is_still_an_attribute_for_reporting() -> None:
    """Configure Reporting names an attribute served from a failing source: it exists, so
    UNREPORTABLE_ATTRIBUTE as for the others (never UNSUPPORTED_ATTRIBUTE)."""
    bench = broken_bench()
    sent = await answers(bench, b"\x00\x34\x06\x00\x02\x00\x20\x01\x00\x3c\x00\x01")
    assert len(sent) == 1
    header, payload = parse(sent[0])
    assert header.command_id == G.Configure_Reporting_rsp
    assert payload == bytes((S.UNREPORTABLE_ATTRIBUTE, 0x00, 0x02, 0x00))
    assert bench.escaped == []
