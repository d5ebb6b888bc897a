"""The headend API's loop over its work queue writes a copy's delivery (read back from the
queue) only on the copy as it stands once the other writes of that copy have landed, on both
engines:

- a cancel's write of a copy ``cancelled``, under way while the loop worked out the copy's
  delivery from the copy in memory (the write not landed: still ``pending`` there), was
  overwritten by the loop's write, which landed last: the copy read ``delivered`` again;
- a de-provisioning's write of a pending copy ``skipped`` (never sent), worked out while the
  loop's write of its delivery was under way, landed last: a delivered copy read
  ``skipped``, "de-provisioned before it was sent".

Each interleaving is forced through the real code: the worker's part is done by hand (as the
other gateway tests do), the loop's read of the queue held until the test lets it go, and
the writes of the API's records (their commits, carried out as ever) begun in the order the
test picks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.fleet.helpers import real, until
from tests.fleet.test_fleet_owed import REGISTRATION, A
from tests.headend.test_headend_cancel_detail_gateways import gateway_api
from tests.postgres_server import place, postgres
from zse.headend.core import Outcome
from zse.headend.link import Lifecycle
from zse.headend.queue import JobRow
from zse.headend.service import Headend
from zse.provisioning import LifecycleState
from zse.store import Batch

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

DEVICE = "000D6F0000000001"
#: Real seconds (PostgreSQL answers in real time) a hook waits for a step that a fixed
#: headend never takes (it waits for the write under way instead): bounded, so that the
#: fixed code is not held for good.
PATIENCE = 3.0


def _copy(headend: Headend, send_id: int) -> dict[str, Any]:
    (copy,) = headend.send(A, send_id)["outcomes"]
    return dict(copy)


def _writes(batch: Batch, outcome: str, send: int | None = None, detail: str = "") -> bool:
    """Whether ``batch`` writes a copy with ``outcome`` (of ``send``: any send when None;
    with a detail beginning with ``detail``)."""
    return any(
        op == "put"
        and namespace == "headend.outcomes"
        and json.loads(value)["outcome"] == outcome
        and send in (None, json.loads(value)["send"])
        and json.loads(value)["detail"].startswith(detail)
        for op, namespace, _, value in batch._ops
    )


async def _within(event: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await real(event.wait(), PATIENCE)


def _hold_the_loops_read(
    monkeypatch: pytest.MonkeyPatch, headend: Headend, send_id: int
) -> tuple[asyncio.Event, asyncio.Event]:
    """The loop's first read of the queue that finds the send's delivery answered is held
    (the read done) until the second event is set; the first is set when it is."""
    queue = headend.queue
    assert queue is not None
    rows = queue.rows
    read, go = asyncio.Event(), asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> list[JobRow]:
        found = await rows(*args, **kwargs)
        answered = any(r.send == send_id and r.outcome is Outcome.DELIVERED for r in found)
        if answered and not read.is_set():
            read.set()
            await go.wait()
        return found

    monkeypatch.setattr(queue, "rows", held)
    return read, go


async def _message(headend: Headend) -> int:
    await headend.put_group(A, {"name": "g", "meters": ["m1"]})
    await headend.register(A, REGISTRATION)
    sent = await headend.send_message(A, {"group": "g", "text": "hi", "duration_minutes": 60})
    return int(sent["id"])


async def _answer(headend: Headend) -> None:
    """The worker's part: the delivery claimed and answered (the device has it)."""
    assert headend.queue is not None
    (delivery,) = await headend.queue.claim("w1", now=0.0, lease=60.0)
    assert await headend.queue.complete(
        delivery, "w1", Outcome.DELIVERED, "", now=0.0, answered=True
    )


Commit = Callable[[Batch], Awaitable[list[int]]]


def delivered_then_skipped(monkeypatch: pytest.MonkeyPatch, store: Any) -> asyncio.Event:
    """``store``'s first write of a ``delivered`` copy waits for a write of a ``skipped`` one
    to come, begins first, and the ``skipped`` write lands after it (:func:`written_in_order`);
    the event returned is set once the ``delivered`` write has come."""
    return written_in_order(
        monkeypatch, store, lambda b: _writes(b, "delivered"), lambda b: _writes(b, "skipped")
    )


def written_in_order(
    monkeypatch: pytest.MonkeyPatch,
    store: Any,
    first: Callable[[Batch], bool],
    then: Callable[[Batch], bool],
) -> asyncio.Event:
    """``store``'s first write that ``first`` picks waits (at most :data:`PATIENCE` real
    seconds) for a write that ``then`` picks to come, begins first, and that write lands
    after it (each commit carried out as ever): a write under way while another is worked
    out. The event returned is set once the first write has come."""
    commit: Commit = store.commit
    first_writing, then_writing, first_begun = (asyncio.Event() for _ in range(3))

    async def ordered(batch: Batch) -> list[int]:
        if first(batch) and not first_writing.is_set():
            first_writing.set()
            await _within(then_writing)
            landing = asyncio.ensure_future(commit(batch))
            await asyncio.sleep(0)  # begun: queued before the other
            first_begun.set()
            return await landing
        if then(batch):
            then_writing.set()
            await _within(first_begun)
        return await commit(batch)

    monkeypatch.setattr(store, "commit", ordered)
    return first_writing


async def test_a_cancelled_copy_is_not_delivered_again_by_the_loops_write(
    place: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message's delivery answered; the loop reads it, and before it takes it in the
    message is cancelled: the cancel's write of the copy begins (not landed), then the loop
    works out the delivery and writes it."""
    async with gateway_api(place("headend.sqlite")) as (headend, _):
        send_id = await _message(headend)
        read, go = _hold_the_loops_read(monkeypatch, headend, send_id)
        await _answer(headend)
        await real(read.wait(), 20.0)
        store = headend.records.store
        commit: Commit = store.commit
        loop_writing, cancel_begun = asyncio.Event(), asyncio.Event()
        seen: list[str] = []

        def _outcome() -> str:
            return str(_copy(headend, send_id)["outcome"])

        async def ordered(batch: Batch) -> list[int]:
            if _writes(batch, "cancelled") and not cancel_begun.is_set():
                go.set()  # the loop works out the delivery now
                await _within(loop_writing)
                landing = asyncio.ensure_future(commit(batch))
                await asyncio.sleep(0)  # begun: queued before the loop's
                cancel_begun.set()
                return await landing
            if _writes(batch, "delivered"):
                loop_writing.set()
                await _within(cancel_begun)
                result = await commit(batch)
                # as the copy reads once this write has landed (in memory too)
                asyncio.get_running_loop().call_soon(lambda: seen.append(_outcome()))
                return result
            return await commit(batch)

        monkeypatch.setattr(store, "commit", ordered)
        await headend.cancel(A, send_id)

        async def looked() -> bool:
            return bool(seen) or _copy(headend, send_id)["attempts"] == 1

        await until(looked, 20.0)
        # was: ["delivered"] (the cancel's write overwritten by the loop's, which landed
        # last; the next look, reading the queue's row again, cancelled it again)
        assert seen in ([], ["cancelled"]), seen
        assert _outcome() == "cancelled"
        assert _copy(headend, send_id)["attempts"] == 1  # the delivery's try counted


async def test_a_delivered_copy_is_not_skipped_by_a_deprovisioning_write(
    place: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message's delivery answered; the loop reads it and begins its write; the device's
    de-provisioning works out its pending copies meanwhile."""
    async with gateway_api(place("headend.sqlite")) as (headend, control):
        send_id = await _message(headend)
        joining = Lifecycle(
            meter="m1", device=DEVICE, event="x", from_state=LifecycleState.NEW,
            to_state=LifecycleState.PENDING_PROVISIONING, detail="", time=100,
        )  # fmt: skip
        assert await control.record(joining, now=1.0)  # as its gateway says

        async def joined() -> bool:
            return bool(headend.device(A, DEVICE)["state"] == "pending provisioning")

        await until(joined, 20.0)
        read, go = _hold_the_loops_read(monkeypatch, headend, send_id)
        await _answer(headend)
        await real(read.wait(), 20.0)
        loop_writing = delivered_then_skipped(monkeypatch, headend.records.store)
        go.set()  # the loop works out the delivery and begins its write
        await _within(loop_writing)
        assert loop_writing.is_set()
        await headend.deprovision(A, DEVICE)  # both writes landed: the copy as they left it
        copy = _copy(headend, send_id)
        # was: skipped, "de-provisioned before it was sent" (worked out from "pending"),
        # until the next look read the queue's row again
        assert (copy["outcome"], copy["detail"]) == ("delivered", ""), copy
        await asyncio.sleep(1.0)  # and stays so
        copy = _copy(headend, send_id)
        assert (copy["outcome"], copy["detail"]) == ("delivered", ""), copy
