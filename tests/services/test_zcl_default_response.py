"""ZCL 2.5.12.2: when the endpoint (zse.zcl.endpoint.ZclEndpointBase) sends a Default Response
after its handlers ran.

The clause sends one only when all of its criteria hold: the command came unicast, is not
itself a Default Response, no other command was sent in response with its TSN, and the Disable
Default Response bit is clear or the status is an error. So:

- a handler that answered with a specific (or global) response owes nothing more, whatever
  status it returns, SUCCESS or an error: a second frame with that TSN would be a second
  answer. Before the fix, a handler that replied and returned SUCCESS drew a Default Response
  too whenever the sender left the bit clear, and one returning an error after its reply drew
  a Default Response with that error;
- with no other answer, an error status gets its Default Response even when the sender set
  Disable Default Response; SUCCESS only when the bit is clear;
- only a reply to that frame counts: a command to the same peer with a new TSN, or a reply to
  another frame, is not its answer.

Other stacks hold the same: Silicon Labs' framework sends a Default Response only through
``emberAfSendDefaultResponse`` (unicast only, SUCCESS not when the bit is set, never to a
Default Response), and a command callback that called ``emberAfSendResponse`` sends none;
zigpy 2.4 (``zigpy/zcl/__init__.py``, ``Cluster.handle_cluster_request``) sends SUCCESS only for
a command no handler took and only when the bit is clear.
"""

from __future__ import annotations

import asyncio

import pytest
from zigpy.zcl import foundation

from tests.services import test_zcl_review as review
from tests.services.test_zcl_review import Bench, answers, default_response, parse
from zse.zcl.frame import ZclMessage

G = foundation.GeneralCommand
S = foundation.Status
#: Price cluster commands: Get Current Price (client to server), Publish Price (its response).
GET_CURRENT_PRICE = 0x00
PUBLISH_PRICE = 0x00
#: Frame control: a cluster command client to server; with Disable Default Response.
CLUSTER, CLUSTER_NO_DEFAULT = 0x01, 0x11


def command(tsn: int = 0x42, *, no_default: bool = False) -> bytes:
    """Get Current Price (a whole ZCL frame) with ``tsn``."""
    return bytes((CLUSTER_NO_DEFAULT if no_default else CLUSTER, tsn, GET_CURRENT_PRICE, 0x00))


def replying(bench: Bench, status: S | None) -> None:
    """A Price handler that answers with Publish Price, then returns ``status``."""

    async def handler(msg: ZclMessage) -> S | None:
        await bench.reply(msg, PUBLISH_PRICE, b"\x01\x02")
        return status

    bench.add_handler(review.PRICE, handler)


def commands(frames: list[bytes]) -> list[tuple[bool, int, int]]:
    """(cluster-specific?, command id, TSN) of each frame the bench sent."""
    return [
        (parse(f)[0].frame_control.is_cluster, parse(f)[0].command_id, parse(f)[0].tsn)
        for f in frames
    ]


@pytest.mark.parametrize("status", [S.SUCCESS, None])
async def test_a_specific_response_is_the_answer_no_default_response_follows(
    status: S | None,
) -> None:
    """Criterion 2: a handler that replied with Publish Price and returned SUCCESS (or
    nothing) owes no Default Response, with the Disable Default Response bit clear. Before,
    SUCCESS drew one after the Publish Price, a second answer with the TSN."""
    bench = Bench()
    replying(bench, status)
    assert commands(await answers(bench, command())) == [(True, PUBLISH_PRICE, 0x42)]


@pytest.mark.parametrize("no_default", [False, True])
async def test_an_error_returned_after_the_response_draws_no_second_answer(
    no_default: bool,
) -> None:
    """Criterion 2 holds for an error too: the sender has its answer (the specific
    response); a Default Response with NOT_FOUND after it would contradict it. Before, the
    error went out as a second frame with the TSN."""
    bench = Bench()
    replying(bench, S.NOT_FOUND)
    sent = await answers(bench, command(no_default=no_default))
    assert commands(sent) == [(True, PUBLISH_PRICE, 0x42)]


async def test_a_global_response_is_an_answer_too() -> None:
    """Any command sent in response with the TSN counts, a global one (Default Response the
    handler sent itself, say) included: the endpoint sends no other."""
    bench = Bench()

    async def handler(msg: ZclMessage) -> S:
        await bench.default_response(msg, S.NOT_AUTHORIZED)
        return S.SUCCESS

    bench.add_handler(review.PRICE, handler)
    sent = await answers(bench, command())
    assert [default_response(f) for f in sent] == [(GET_CURRENT_PRICE, S.NOT_AUTHORIZED)]


async def test_one_handler_answers_another_returns_success() -> None:
    """Two handlers on the cluster: one replies, the other returns SUCCESS. The frame was
    answered once; no Default Response."""
    bench = Bench()
    replying(bench, None)
    bench.add_handler(review.PRICE, lambda msg: S.SUCCESS)
    assert commands(await answers(bench, command())) == [(True, PUBLISH_PRICE, 0x42)]


@pytest.mark.parametrize(
    ("status", "no_default", "expected"),
    [
        (S.SUCCESS, False, [(GET_CURRENT_PRICE, S.SUCCESS)]),
        (S.SUCCESS, True, []),
        (S.NOT_FOUND, False, [(GET_CURRENT_PRICE, S.NOT_FOUND)]),
        # an error is sent even when the sender disabled the Default Response
        (S.NOT_FOUND, True, [(GET_CURRENT_PRICE, S.NOT_FOUND)]),
        (None, False, []),
    ],
)
async def test_without_another_answer_the_status_decides(
    status: S | None, no_default: bool, expected: list[tuple[int, S]]
) -> None:
    """Criterion 3 when nothing else answered: SUCCESS only with the bit clear, an error
    whatever the bit; a handler returning None owes nothing (it answered or will)."""
    bench = Bench()
    bench.add_handler(review.PRICE, lambda msg: status)
    sent = await answers(bench, command(no_default=no_default))
    assert [default_response(f) for f in sent] == expected


@pytest.mark.parametrize("where", [{"group": 0x0E00}, {"broadcast": True}])
async def test_a_group_or_broadcast_command_gets_no_default_response(
    where: dict[str, object],
) -> None:
    """Criterion 1: never to a group or broadcast, an error included."""
    bench = Bench()
    bench.add_handler(review.PRICE, lambda msg: S.NOT_FOUND)
    assert await answers(bench, command(), **where) == []


async def test_a_new_command_to_the_peer_is_not_the_answer() -> None:
    """A command the handler sends to the same peer with a fresh TSN does not answer the
    frame: the SUCCESS Default Response is still owed and carries the frame's TSN."""
    bench = Bench(first_tsn=0x10)

    async def handler(msg: ZclMessage) -> S:
        await bench.send(review.PEER, msg.src_ep, review.PRICE, PUBLISH_PRICE, b"\x01")
        return S.SUCCESS

    bench.add_handler(review.PRICE, handler)
    sent = await answers(bench, command(0x42))
    assert commands(sent) == [(True, PUBLISH_PRICE, 0x10), (False, G.Default_Response, 0x42)]
    assert default_response(sent[1]) == (GET_CURRENT_PRICE, S.SUCCESS)


async def test_a_reply_to_another_frame_is_not_the_answer() -> None:
    """Two frames from the peer with different TSNs handled at once: the handler replies to
    the first only; the second still gets its SUCCESS Default Response, the first none."""
    bench = Bench()
    release = asyncio.Event()

    async def handler(msg: ZclMessage) -> S:
        await release.wait()
        if msg.tsn == 0x01:
            await bench.reply(msg, PUBLISH_PRICE, b"\x01")
        return S.SUCCESS

    bench.add_handler(review.PRICE, handler)
    bench._accept(review.message(command(0x01)))
    bench._accept(review.message(command(0x02)))
    await review.settle()
    release.set()
    await review.settle()
    sent = [frame for _, _, _, frame in bench.sent]
    assert sorted(commands(sent)) == [
        (False, G.Default_Response, 0x02),
        (True, PUBLISH_PRICE, 0x01),
    ]
