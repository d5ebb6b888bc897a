"""A cancelled send over the work queue reads ``finished`` only once its copies' details are
the Cancels' (found by the lead: one clean-clone run saw a send ``finished`` while its copy's
detail was still empty, :data:`~zse.headend.core.CANCEL_TOLD` expected), on both engines:

- the API marked a copy's cancel job over (:attr:`Headend._cancelling
  <zse.headend.service.Headend>`, in memory) before the job's detail was written: while the
  write went to the database, a reader saw the send finished and the copy's old detail; now
  the job is marked over only once its detail is written, so ``finished`` comes last;
- a delivery read back after its Cancel's answer (the API away meanwhile, or its looks at the
  deliveries and at the cancel jobs falling either side of them) replaced the Cancel's detail
  with the delivery's, until the next look at the cancel jobs put it back (or never, for a
  job that look no longer reads: changed before its margin); now a copy its retailer
  cancelled keeps the detail its Cancel gives it.

A reader is an API client or a watcher, reading between two turns of the loop: what it sees
is looked at each time the headend begins a write to its records' store, which the write
then carries out as before (the state at that moment lasts until the write is done)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fleet.helpers import until
from tests.fleet.test_fleet_owed import A
from tests.headend.test_headend_cancel_detail_gateways import _cancel_job, gateway_api
from tests.headend.test_headend_cancel_queue_modes import _sent
from tests.postgres_server import place, postgres
from zse.headend.control import Control
from zse.headend.core import CANCEL_TOLD, Outcome
from zse.headend.queue import open_queue
from zse.headend.run import queue_location
from zse.headend.service import Headend
from zse.store import Batch

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

#: What a reader saw: (the send's ``finished``, its copies' details).
Seen = list[tuple[bool, tuple[str, ...]]]


def _read_at_each_write(monkeypatch: pytest.MonkeyPatch, headend: Headend, send_id: int) -> Seen:
    """The send as a reader sees it each time the headend begins a write of its records
    (each a transaction of its store, carried out as ever after the look), from now on."""
    seen: Seen = []
    store = headend.records.store
    commit = store.commit

    async def looked_at(batch: Batch) -> list[int]:
        view = headend.send(A, send_id)
        seen.append((view["finished"], tuple(c["detail"] for c in view["outcomes"])))
        return await commit(batch)

    monkeypatch.setattr(store, "commit", looked_at)
    return seen


def _copy(headend: Headend, send_id: int) -> dict[str, Any]:
    (copy,) = headend.send(A, send_id)["outcomes"]
    return dict(copy)


async def test_a_cancel_job_over_finishes_the_send_only_with_its_detail(
    place: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with gateway_api(place("headend.sqlite")) as (headend, control):
        send_id = await _sent(headend, duration_minutes=60)
        queue = headend.queue
        assert queue is not None
        (delivery,) = await queue.claim("w1", now=0.0, lease=60.0)
        assert await queue.complete(delivery, "w1", Outcome.DELIVERED, "", now=0.0, answered=True)

        async def delivered() -> bool:  # read back: nothing of the delivery left to read
            return bool(_copy(headend, send_id)["outcome"] == "delivered")

        await until(delivered)
        assert (await headend.cancel(A, send_id))["finished"] is False
        seen = _read_at_each_write(monkeypatch, headend, send_id)
        job = await _cancel_job(control, 1.0)
        assert await control.complete(job, "w1", answered=True, now=1.0)

        async def over() -> bool:
            view = headend.send(A, send_id)
            return bool(view["finished"]) and view["outcomes"][0]["detail"] == CANCEL_TOLD

        await until(over)
        assert seen  # the detail was written (looked at first)
        # was: (True, ("",)) while the detail was being written
        assert all(detail == (CANCEL_TOLD,) for finished, detail in seen if finished), seen


async def test_a_delivery_read_after_its_cancel_keeps_the_cancels_detail(
    place: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy claimed, then cancelled; the API away while the worker sends it, then its
    Cancel (acknowledged): at the next start the API reads the cancel jobs first, then the
    deliveries."""
    database = place("headend.sqlite")
    async with gateway_api(database) as (headend, _):
        send_id = await _sent(headend, duration_minutes=60)
        assert headend.queue is not None
        (delivery,) = await headend.queue.claim("w1", now=0.0, lease=60.0)
        assert (await headend.cancel(A, send_id))["finished"] is False
    queue = await open_queue(queue_location(database))
    try:  # the worker, meanwhile
        control = await Control.open(queue)
        assert await queue.complete(delivery, "w1", Outcome.DELIVERED, "", now=2.0, answered=True)
        job = await _cancel_job(control, 3.0)
        assert await control.complete(job, "w1", answered=True, now=4.0)
    finally:
        await queue.close()
    async with gateway_api(database) as (headend, _):
        # before the API's first look at the deliveries (a task that has not run yet)
        seen = _read_at_each_write(monkeypatch, headend, send_id)
        assert headend.send(A, send_id)["finished"] is True

        async def read_back() -> bool:  # the delivery's try counted: it was read
            copy = _copy(headend, send_id)
            return bool(copy["attempts"] == 1 and copy["detail"] == CANCEL_TOLD)

        await until(read_back)
        assert seen  # the delivery's try was written (looked at first)
        # was: (True, ("",)), the delivery's detail, until the cancel jobs were read again
        assert all(detail == (CANCEL_TOLD,) for _, detail in seen), seen
        assert _copy(headend, send_id)["outcome"] == "cancelled"
