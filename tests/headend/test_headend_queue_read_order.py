"""What the headend API reads back from its work queue is taken in so that a copy's detail is
the latest that means something and a cancel job over never counts as under way again, on
both engines:

- a load control copy superseded on its device (Report Event Status 0x07: ``superseded by
  send N``) while its delivery was under way: the delivery's answer, read back after the
  report, only counts a try, but its row's empty detail replaced "superseded by send N";
- a cancel's own read of its cancel jobs (at the API's cancel request), taken before a look
  of the API's loop but taken in after it, marked a cancel job over as under way again: the
  send never read ``finished`` once that job had left the loop's window (a later job read
  more than the clocks' margin after it), and its copy never showed the Cancel's answer;
- a cancel whose copy a look of the API's loop had already taken in ``cancelled`` (the
  queue's row, withdrawn by the cancel) left it with the row's words: a device being
  de-provisioned never showed :data:`~zse.headend.core.CANCEL_GONE`.

Each interleaving is forced through the real code: the worker's part is done by hand (as
the other gateway tests do) at a moment the test picks, a write of the API's records held
open while the API's loop looks at the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.fleet.helpers import until
from tests.fleet.test_fleet_owed import REGISTRATION, A
from tests.headend.test_headend_cancel_detail_gateways import _cancel_job, gateway_api
from tests.postgres_server import place, postgres
from zse.headend.control import CancelJob
from zse.headend.core import CANCEL_GONE, CANCEL_TOLD, Outcome, SendKind
from zse.headend.link import Lifecycle
from zse.headend.service import Headend
from zse.provisioning import LifecycleState
from zse.store import Batch

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

EVENT = {"duty_cycle": 40, "duration_minutes": 30, "criticality_level": 3}
DEVICE = "000D6F0000000001"


def _copy(headend: Headend, send_id: int) -> dict[str, Any]:
    (copy,) = headend.send(A, send_id)["outcomes"]
    return dict(copy)


async def _shows(headend: Headend, send_id: int, **wanted: Any) -> None:
    """Wait (bounded) until the send's one copy shows ``wanted``."""

    async def check() -> bool:
        copy = _copy(headend, send_id)
        return all(copy[name] == value for name, value in wanted.items())

    try:
        await until(check, 20.0)
    except TimeoutError:
        raise AssertionError(f"{_copy(headend, send_id)} never showed {wanted}") from None


async def test_a_superseded_copy_keeps_its_detail_when_its_delivery_is_read_after(
    place: Any,
) -> None:
    """The older event delivered to the gateway, the newer one too; the device reports the
    older superseded before the worker has recorded the older's answer (a leased job: the
    report is recorded, the job stays its worker's); the API reads the report, then the
    answer."""
    async with gateway_api(place("headend.sqlite")) as (headend, _):
        await headend.put_group(A, {"name": "g", "meters": ["m1"]})
        await headend.register(A, REGISTRATION)
        older = (await headend.send_load_control(A, {"group": "g", **EVENT}))["id"]
        newer = (await headend.send_load_control(A, {"group": "g", **EVENT, "duty_cycle": 20}))[
            "id"
        ]
        queue = headend.queue
        assert queue is not None
        first, second = await queue.claim("w1", now=0.0, lease=60.0)
        assert (first.send, second.send) == (older, newer)
        assert await queue.complete(second, "w1", Outcome.DELIVERED, "", now=1.0, answered=True)
        superseded = f"superseded by send {newer}"
        kind = SendKind.LOAD_CONTROL
        assert await queue.report(older, DEVICE, kind, Outcome.CANCELLED, now=2.0, meter="m1")
        await _shows(headend, older, outcome="cancelled", detail=superseded, attempts=0)
        assert await queue.complete(first, "w1", Outcome.DELIVERED, "", now=3.0, answered=True)
        await _shows(headend, older, attempts=1)  # the answer read back: its try counted
        # was: detail "" (the row's), as if the copy had been cancelled by its retailer
        assert _copy(headend, older)["detail"] == superseded
        assert headend.send(A, older)["finished"] is True


Hold = Callable[[], Awaitable[None]]
#: What a reader saw of a send: (its ``finished``, its one copy's detail).
Seen = list[tuple[bool, str]]


def _hold_cancels_read(monkeypatch: pytest.MonkeyPatch, headend: Headend, meanwhile: Hold) -> None:
    """A cancel's read of its cancel jobs (:meth:`MeterDirectory.cancel
    <zse.headend.directory.MeterDirectory.cancel>`, carried out as ever) is taken in by the
    cancel only after ``meanwhile()``: as when its next steps (a write of the records) take
    that long."""
    directory = headend.directory
    cancel = directory.cancel

    async def slow(*args: Any, **kwargs: Any) -> list[CancelJob]:
        jobs = await cancel(*args, **kwargs)
        await meanwhile()
        return jobs

    monkeypatch.setattr(directory, "cancel", slow)


def _read_at_each_write(monkeypatch: pytest.MonkeyPatch, headend: Headend, send_id: int) -> Seen:
    """The send as a reader sees it, cancelled, each time the headend begins a write of its
    records."""
    seen: Seen = []
    store = headend.records.store
    commit = store.commit

    async def looked_at(batch: Batch) -> list[int]:
        view = headend.send(A, send_id)
        if view["cancelled"]:
            seen.append((view["finished"], view["outcomes"][0]["detail"]))
        return await commit(batch)

    monkeypatch.setattr(store, "commit", looked_at)
    return seen


async def _message(headend: Headend, text: str) -> int:
    """A message to the one device, delivered (read back): its send id."""
    sent = await headend.send_message(A, {"group": "g", "text": text, "duration_minutes": 60})
    assert headend.queue is not None
    (delivery,) = await headend.queue.claim("w1", now=0.0, lease=60.0)
    assert await headend.queue.complete(
        delivery, "w1", Outcome.DELIVERED, "", now=0.0, answered=True
    )
    send_id = int(sent["id"])
    await _shows(headend, send_id, outcome="delivered")
    return send_id


async def test_a_cancel_job_over_is_not_under_way_again_after_the_cancels_own_read(
    place: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two messages to one device, delivered; the second cancelled, its Cancel taken by a
    worker. The first cancelled: the cancel reads the send's cancel jobs (its own, not
    tried yet); before it takes them in, the worker has the device acknowledge that Cancel
    and, 11 s on, the second's, and the API's loop looks at the queue a few times."""
    async with gateway_api(place("headend.sqlite")) as (headend, control):
        await headend.put_group(A, {"name": "g", "meters": ["m1"]})
        await headend.register(A, REGISTRATION)
        first = await _message(headend, "first")
        second = await _message(headend, "second")
        await headend.cancel(A, second)
        later = await _cancel_job(control, 0.0)
        loop = asyncio.get_running_loop()
        looks = 3 * headend.fallback  # a few looks of the API's loop, whichever engine

        async def meanwhile() -> None:
            job = await _cancel_job(control, loop.time())
            assert job.payload["message_id"] == first
            assert await control.complete(job, "w1", answered=True, now=loop.time())
            await asyncio.sleep(11.0)
            assert await control.complete(later, "w1", answered=True, now=loop.time())
            await asyncio.sleep(looks)

        _hold_cancels_read(monkeypatch, headend, meanwhile)
        seen = _read_at_each_write(monkeypatch, headend, first)
        await headend.cancel(A, first)
        await asyncio.sleep(looks)  # the loop's looks after the cancel
        assert headend.send(A, second)["finished"] is True
        # was: False for good (the job marked under way again by the cancel's read, taken
        # in last, and no look read it again: it was older than the margin)
        assert headend.send(A, first)["finished"] is True, seen
        assert _copy(headend, first)["detail"] == CANCEL_TOLD
        assert seen  # the copy's detail was written (looked at first)
        ended = [i for i, (finished, _) in enumerate(seen) if finished] or [len(seen)]
        # was: [..., (True, CANCEL_TOLD), (False, CANCEL_TOLD)] (SQLite)
        assert all(finished for finished, _ in seen[ended[0] :]), seen  # never under way again
        assert all(detail == CANCEL_TOLD for finished, detail in seen if finished), seen


async def test_a_copy_of_a_device_being_deprovisioned_shows_gone_if_a_look_comes_first(
    place: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message delivered, its device's de-provisioning asked for, the message cancelled:
    the cancel withdraws the copy from the queue, then (its cancel jobs read) writes it
    cancelled, never told; the API's loop looks at the queue in between."""
    async with gateway_api(place("headend.sqlite")) as (headend, control):
        await headend.put_group(A, {"name": "g", "meters": ["m1"]})
        await headend.register(A, REGISTRATION)
        send_id = await _message(headend, "gone")
        for before, after in (
            (LifecycleState.NEW, LifecycleState.PENDING_PROVISIONING),
            (LifecycleState.PENDING_PROVISIONING, LifecycleState.PENDING_DEPROVISIONING),
        ):  # as its gateway says: leaving (the device's de-provisioning asked for there)
            change = Lifecycle(
                meter="m1", device=DEVICE, event="x", from_state=before, to_state=after,
                detail="", time=100,
            )  # fmt: skip
            assert await control.record(change, now=1.0)

        async def leaving() -> bool:
            return bool(headend.device(A, DEVICE)["state"] == "pending de-provisioning")

        await until(leaving, 20.0)
        looks = 3 * headend.fallback

        async def meanwhile() -> None:
            await asyncio.sleep(looks)

        _hold_cancels_read(monkeypatch, headend, meanwhile)
        await headend.cancel(A, send_id)
        await asyncio.sleep(looks)
        assert _copy(headend, send_id)["outcome"] == "cancelled"
        assert _copy(headend, send_id)["detail"] == CANCEL_GONE
