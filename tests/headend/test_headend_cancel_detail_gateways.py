"""How a cancel went, over gateways (found by the lead): a Cancel given up
(:data:`~zse.headend.core.CANCEL_GIVEN_UP`), sent again, acknowledged or refused showed in the
API only as outcome ``cancelled``, its detail kept in the ``headend_control`` table alone,
while the in-process headend says it in the outcome's detail. Now the API reads the cancel
jobs back as it reads the deliveries and shows the in-process headend's words for each case
(:func:`zse.headend.control.cancel_detail`), on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.fleet.helpers import until
from tests.fleet.test_fleet_owed import REGISTRATION, A
from tests.postgres_server import place, postgres
from zse.headend.control import Control, ControlJob, cancel_detail, untold
from zse.headend.core import (
    CANCEL_AGAIN,
    CANCEL_GONE,
    CANCEL_OVER,
    CANCEL_REFUSED,
    CANCEL_TOLD,
    Outcome,
    given_up_detail,
)
from zse.headend.directory import GatewayMeters
from zse.headend.link import Lifecycle
from zse.headend.queue import open_queue
from zse.headend.run import queue_location
from zse.headend.service import Headend
from zse.headend.store import HeadendStore
from zse.provisioning import LifecycleState
from zse.store import Store

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

MAC = "000D6F0000000001"
SPAN = 7200.0
OFFLINE = "offline: no APS acknowledgement from 0x1A2B after 4 attempts"


@asynccontextmanager
async def gateway_api(database: Any, **options: Any) -> AsyncIterator[tuple[Headend, Control]]:
    """The API over gateway ``m1`` given ``options`` (no worker: the test answers the jobs
    as one would): the headend and the control jobs."""
    store = await Store.open(database)
    queue = await open_queue(queue_location(database))
    control = await Control.open(queue)
    loop = asyncio.get_running_loop()
    directory = GatewayMeters(["m1"], control, meter_time=lambda: 100, clock=loop.time)
    records = await HeadendStore.open(store)
    headend = Headend(directory, records, clock=lambda: 100, queue=queue, sync=0.5, **options)
    await headend.start()
    try:
        yield headend, control
    finally:
        await headend.close()
        await queue.close()
        await store.close()


@asynccontextmanager
async def _cancelled(database: Any) -> AsyncIterator[tuple[Headend, Control, int]]:
    """:func:`gateway_api`, an "until changed" message to one device, sent to it once (its
    device offline: a copy never sent needs no Cancel), cancelled: the headend, the control
    jobs and the send's id."""
    async with gateway_api(database, give_up=SPAN) as (headend, control):
        await headend.put_group(A, {"name": "g", "meters": ["m1"]})
        await headend.register(A, REGISTRATION)
        sent = await headend.send_message(
            A, {"group": "g", "text": "cancel me", "duration_minutes": 0xFFFF}
        )
        assert headend.queue is not None
        (delivery,) = await headend.queue.claim("w1", now=0.0, lease=60.0)
        assert await headend.queue.complete(
            delivery, "w1", Outcome.OFFLINE, OFFLINE, now=0.0, answered=True
        )
        await headend.cancel(A, int(sent["id"]))
        yield headend, control, int(sent["id"])


async def _cancel_job(control: Control, now: float) -> ControlJob:
    jobs = [
        j for j in await control.claim("w1", now=now, lease=60.0) if j.kind.value != "provision"
    ]
    (job,) = jobs
    return job


async def _shows(headend: Headend, send_id: int, detail: str) -> None:
    """Wait (bounded) until the API shows ``detail`` for the device's copy."""
    found: list[str] = []

    async def check() -> bool:
        (copy,) = headend.send(A, send_id)["outcomes"]
        found[:] = [copy["outcome"], copy["detail"]]
        return copy["detail"] == detail

    try:
        await until(check, 20.0)
    except TimeoutError:
        raise AssertionError(f"the API shows {found}, not {detail!r}") from None
    assert found[0] == "cancelled"


async def test_a_cancel_its_device_never_takes_shows_sent_again_then_given_up(
    place: Any,
) -> None:
    async with _cancelled(place("headend.sqlite")) as (headend, control, send_id):
        start = asyncio.get_running_loop().time()
        job = await _cancel_job(control, start)
        assert await control.complete(job, "w1", answered=True, untold=OFFLINE, now=start)
        await _shows(headend, send_id, CANCEL_AGAIN.format(why=OFFLINE))  # as in process
        late = start + SPAN + 1
        job = await _cancel_job(control, late)
        assert await control.complete(job, "w1", answered=True, untold=OFFLINE, now=late)
        # was: "cancelled" with no detail; the in-process headend's words
        await _shows(headend, send_id, given_up_detail(SPAN, OFFLINE, cancel=True))


async def test_a_cancel_its_gateway_never_answers_shows_given_up(place: Any) -> None:
    async with _cancelled(place("headend.sqlite")) as (headend, control, send_id):
        start = asyncio.get_running_loop().time()
        job = await _cancel_job(control, start)
        why = "meter m1 did not answer"
        assert await control.complete(job, "w1", answered=False, refused=why, now=start)
        await _shows(headend, send_id, CANCEL_AGAIN.format(why=why))
        late = start + SPAN + 1
        job = await _cancel_job(control, late)
        assert await control.complete(job, "w1", answered=False, refused=why, now=late)
        assert [s for _, s, _ in await control.jobs() if "cancel" in _] == ["failed"]
        await _shows(headend, send_id, given_up_detail(SPAN, why, cancel=True))


async def test_a_cancel_acknowledged_shows_told(place: Any) -> None:
    async with _cancelled(place("headend.sqlite")) as (headend, control, send_id):
        now = asyncio.get_running_loop().time()
        job = await _cancel_job(control, now)
        assert await control.complete(job, "w1", answered=True, now=now)
        await _shows(headend, send_id, CANCEL_TOLD)


async def test_a_cancel_to_a_device_being_deprovisioned_shows_gone(place: Any) -> None:
    """The gateway answers ``ok``, the device ``skipped`` while de-provisioning: never told,
    as in process (:data:`~zse.headend.core.CANCEL_GONE`), not acknowledged."""
    async with _cancelled(place("headend.sqlite")) as (headend, control, send_id):
        for before, after in (
            (LifecycleState.NEW, LifecycleState.PENDING_PROVISIONING),
            (LifecycleState.PENDING_PROVISIONING, LifecycleState.PENDING_DEPROVISIONING),
        ):
            change = Lifecycle(
                meter="m1",
                device=REGISTRATION["mac"],
                event="x",
                from_state=before,
                to_state=after,
                detail="",
                time=100,
            )
            assert await control.record(change, now=1.0)
        now = asyncio.get_running_loop().time()
        job = await _cancel_job(control, now)
        answer = {"device": MAC, "outcome": "skipped", "detail": "pending de-provisioning"}
        never = untold({"status": "ok", "result": {"outcomes": [answer]}})
        assert await control.complete(job, "w1", answered=True, untold=never, now=now)
        await _shows(headend, send_id, CANCEL_GONE)


@pytest.mark.parametrize(
    ("state", "detail", "shown"),
    [
        ("ready", "", None),  # not tried yet: the copy keeps its detail
        ("ready", CANCEL_AGAIN.format(why=OFFLINE), CANCEL_AGAIN.format(why=OFFLINE)),
        ("ready", "meter m1 did not answer", CANCEL_AGAIN.format(why="meter m1 did not answer")),
        ("leased", "x", CANCEL_AGAIN.format(why="x")),
        ("done", "", CANCEL_TOLD),
        (
            "done",
            f"not told before the send was over ({OFFLINE})",
            CANCEL_OVER.format(why=OFFLINE),
        ),
        (
            "done",
            given_up_detail(60, OFFLINE, cancel=True),
            given_up_detail(60, OFFLINE, cancel=True),
        ),
        ("failed", given_up_detail(60, "m1", cancel=True), given_up_detail(60, "m1", cancel=True)),
        (
            "failed",
            "message_id: no such message",
            CANCEL_REFUSED.format(why="message_id: no such message"),
        ),
    ],
)
def test_each_cancel_job_reads_as_the_in_process_words(
    state: str, detail: str, shown: str | None
) -> None:
    assert cancel_detail(state, detail) == shown
