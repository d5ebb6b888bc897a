"""A copy's outcome and its detail agree, as the retailer sees them (the API's send view, which
the portal shows, and the event stream's), however the copy moved on, in process and over a
work queue, on both engines: once the device confirmed (or reported on) a copy it had not
acknowledged, the copy no longer says "no APS acknowledgement ..." (why it was not reached
holds no longer: the detail is cleared, as a given-up copy's "given up" always was), and an
answer to a try that the device's confirmation overtook only counts the try (the copy keeps
its own detail).

Before, a confirmed copy read "no MAC acknowledgement from 0x...": its offline detail kept by
the device's confirmation (in process, and the headend's own listener over a queue), set again
by an offline answer that landed after the confirmation (in process, the work queue's row, and
the API's reading of a row behind the copy), and a load control event cancelled on its device
(Report Event Status 0x06) kept it over a queue too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.helpers import real, until
from tests.fleet.test_fleet_owed import REGISTRATION
from tests.headend.helpers import queued_headend, virtually
from tests.headend.test_headend_cancel_detail_gateways import gateway_api
from tests.headend.test_headend_in_process_write_order import A, InProcess, in_process
from tests.headend.test_headend_start_write_order import ready_display
from tests.postgres_server import place, postgres
from zse.headend.core import Outcome, SendKind, parse_message
from zse.headend.service import Headend
from zse.installcode import canonical_eui64, parse_eui64
from zse.roles.esi import EsiEvent, MessageConfirmed
from zse.se.types import EventStatus
from zse.store import Batch

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

DEVICE = "000D6F0000000001"
#: What a gateway answers for a device that did not acknowledge its unicast.
UNACKNOWLEDGED = "no APS acknowledgement from 0x1A2B after 4 attempts"
CONFIRMED = {"group": "g", "text": "hi", "confirmation_required": True}


def _copy(headend: Headend, send_id: int, mac: str = DEVICE) -> tuple[str, str]:
    """The device's copy of the send as the API shows it: (outcome, detail)."""
    key = canonical_eui64(mac)
    (view,) = [o for o in headend.send(A, send_id)["outcomes"] if o["mac"] == key]
    return view["outcome"], view["detail"]


@contextlib.asynccontextmanager
async def _watched(headend: Headend, send_id: int) -> AsyncIterator[list[dict[str, Any]]]:
    """What the send's event stream (``GET /api/v1/sends/{id}/events``) sends meanwhile."""
    seen: list[dict[str, Any]] = []

    async def follow() -> None:
        async for view in headend.watch(A, send_id):
            seen.append(view)

    task = asyncio.ensure_future(follow())
    await asyncio.sleep(0)
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _unacknowledged(running: InProcess, *bodies: dict[str, Any]) -> list[int]:
    """The messages ``bodies`` sent to the display away (silenced): each copy ``offline``,
    "no APS acknowledgement ..."; the display is back. Returns the sends' ids."""
    (display,) = running.devices
    air = running.sims.air_of(display)
    air.silence(parse_eui64(display.mac))
    ids = [int((await running.headend.send_message(A, body))["id"]) for body in bodies]

    async def offline() -> bool:
        return all(running.copy(i, display)[0] == "offline" for i in ids)

    await virtually(offline, 25.0)  # before the first retry, 30 s on
    for send_id in ids:
        assert "no APS acknowledgement" in running.copy(send_id, display)[1]
    air.restore(parse_eui64(display.mac))
    return ids


async def test_a_display_that_confirmed_is_not_shown_unacknowledged(
    place: Any, tmp_path: Path
) -> None:
    async with in_process(place, tmp_path, "in-home display") as running:
        (display,) = running.devices
        (send_id,) = await _unacknowledged(running, CONFIRMED)
        async with _watched(running.headend, send_id) as seen:
            await display.role.messaging.fetch()  # back, it fetches the message
            assert await display.role.confirm(send_id)
            await asyncio.sleep(1)
        # was: ("confirmed", "no APS acknowledgement from 0x...")
        assert running.copy(send_id, display) == ("confirmed", "")
        assert (seen[-1]["outcome"], seen[-1]["detail"]) == ("confirmed", "")
        assert running.headend.send(A, send_id)["finished"]


async def test_an_unacknowledged_answer_after_a_confirmation_keeps_the_confirmation(
    place: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both messages tried again at a restart, the first's answer's write held: the display
    confirms the second meanwhile (its write waits for the first's), which is tried again
    from ``offline`` as the confirmation is written, the display away again."""
    async with in_process(place, tmp_path, "in-home display") as running:
        (display,) = running.devices
        first, second = await _unacknowledged(running, {"group": "g", "text": "one"}, CONFIRMED)
        store, commit = running.store, running.store.commit
        first_answered, go = asyncio.Event(), asyncio.Event()

        async def held(batch: Batch) -> list[int]:
            if _writes_send(batch, first) and not first_answered.is_set():
                first_answered.set()
                await go.wait()
            return await commit(batch)

        monkeypatch.setattr(store, "commit", held)
        await running.restart()  # both tried again at once, the first first
        await real(first_answered.wait(), 20.0)
        esi = running.headend.meters[display.meter].esi
        told = asyncio.Event()

        def confirmed(event: EsiEvent) -> None:
            if isinstance(event, MessageConfirmed):
                told.set()

        esi.on_event(confirmed)
        await display.role.messaging.fetch()  # the last message: the second
        confirming = asyncio.ensure_future(display.role.confirm(second))
        await real(told.wait(), 20.0)
        await asyncio.sleep(1)  # the confirmation waits for the first's write
        running.sims.air_of(display).silence(parse_eui64(display.mac))  # away again
        go.set()
        await asyncio.sleep(60)
        confirming.cancel()
        outcome, detail = running.copy(second, display)
        assert outcome == "confirmed"
        # was: "no APS acknowledgement from 0x...", the resend's answer, landed after
        assert detail == "", detail
        assert running.headend.records.outcomes[second][canonical_eui64(display.mac)].attempts == 2


def _writes_send(batch: Batch, send_id: int) -> bool:
    """Whether ``batch`` writes a copy of the send ``send_id``."""
    return any(
        op == "put" and namespace == "headend.outcomes" and key.startswith(f"{send_id}/")
        for op, namespace, key, _ in batch._ops
    )


async def test_a_display_that_confirmed_over_a_queue_is_not_shown_unacknowledged(
    place: Any, tmp_path: Path
) -> None:
    async with queued_headend(tmp_path, place) as served:
        headend = served.headend
        display = await ready_display(served)
        air = served.sims.air_of(display)
        air.silence(parse_eui64(display.mac))
        await served.start_worker()
        send_id = int((await headend.send_message(A, CONFIRMED))["id"])

        async def offline() -> bool:
            return _copy(headend, send_id, display.mac)[0] == "offline"

        # the worker tried it (6.4 s), the API read it back: at its worker's notification, or
        # at its fallback look, which a notification late in real time leaves it to (the
        # virtual clock does not wait for one: under load it ran past a 25 s wait)
        await virtually(offline, headend.fallback + 15.0)
        assert "no APS acknowledgement" in _copy(headend, send_id, display.mac)[1]
        air.restore(parse_eui64(display.mac))
        async with _watched(headend, send_id) as seen:
            await display.role.messaging.fetch()
            assert await display.role.confirm(send_id)
            await asyncio.sleep(10)  # the API's next look at the queue too
        # was: ("confirmed", "no APS acknowledgement from 0x...")
        assert _copy(headend, send_id, display.mac) == ("confirmed", "")
        assert (seen[-1]["outcome"], seen[-1]["detail"]) == ("confirmed", "")


async def test_an_unacknowledged_row_behind_a_confirmation_keeps_the_confirmation(
    place: Any, tmp_path: Path
) -> None:
    """Over a queue with in-process meters, the worker's part by hand: the delivery claimed
    and sent; the display confirms (the API's listener hears it); the delivery's answer is
    "no APS acknowledgement" (the display's acknowledgement lost)."""
    async with queued_headend(tmp_path, place) as served:
        headend = served.headend
        display = await ready_display(served)
        send_id = int((await headend.send_message(A, CONFIRMED))["id"])
        (delivery,) = await served.queue.claim("w1", now=served.worker.now(), lease=600.0)
        esi = headend.meters[display.meter].esi
        await esi.send_message(parse_message(CONFIRMED).message(send_id), device=display.mac)
        assert await display.role.confirm(send_id)
        await asyncio.sleep(1)
        assert _copy(headend, send_id, display.mac) == ("confirmed", "")
        assert await served.queue.complete(
            delivery, "w1", Outcome.OFFLINE, UNACKNOWLEDGED, now=served.worker.now(), answered=True
        )

        async def counted() -> bool:
            return bool(headend.send(A, send_id)["outcomes"][0]["attempts"] == 1)

        # read back at the queue's notification, or at the API's fallback look at the latest
        # (the virtual clock does not wait for a notification: under load it came too late)
        await virtually(counted, headend.fallback + 10.0)
        # was: ("confirmed", UNACKNOWLEDGED), the row's detail on the confirmed copy
        assert _copy(headend, send_id, display.mac) == ("confirmed", "")


async def test_an_unacknowledged_answer_after_a_gateways_confirmation(place: Any) -> None:
    """Over gateways: the device's confirmation comes while its delivery is under way, then
    the delivery's answer, "no APS acknowledgement"."""
    async with gateway_api(place("headend.sqlite")) as (headend, _):
        await headend.put_group(A, {"name": "g", "meters": ["m1"]})
        await headend.register(A, REGISTRATION)
        send_id = int((await headend.send_message(A, CONFIRMED))["id"])
        queue = headend.queue
        assert queue is not None
        (delivery,) = await queue.claim("w1", now=0.0, lease=60.0)
        assert await queue.report(
            send_id, DEVICE, SendKind.MESSAGE, Outcome.CONFIRMED, now=1.0, meter="m1"
        )
        assert await queue.complete(
            delivery, "w1", Outcome.OFFLINE, UNACKNOWLEDGED, now=2.0, answered=True
        )
        (row,) = await queue.rows(send_id)
        # was: (CONFIRMED, UNACKNOWLEDGED), and so the API's copy
        assert (row.outcome, row.detail, row.attempts) == (Outcome.CONFIRMED, "", 1)

        async def counted() -> bool:
            return bool(headend.send(A, send_id)["outcomes"][0]["attempts"] == 1)

        await until(counted, 20.0)
        assert _copy(headend, send_id) == ("confirmed", "")


async def test_an_event_cancelled_on_its_device_is_not_shown_unacknowledged(place: Any) -> None:
    """Over gateways: a load control event's copy offline, then the device reports it
    cancelled (Report Event Status 0x06: it had the event after all)."""
    async with gateway_api(place("headend.sqlite")) as (headend, _):
        await headend.put_group(A, {"name": "g", "meters": ["m1"]})
        await headend.register(A, REGISTRATION)
        event = {"group": "g", "duty_cycle": 40, "duration_minutes": 30, "criticality_level": 3}
        send_id = int((await headend.send_load_control(A, event))["id"])
        queue = headend.queue
        assert queue is not None
        (delivery,) = await queue.claim("w1", now=0.0, lease=60.0)
        assert await queue.complete(
            delivery, "w1", Outcome.OFFLINE, UNACKNOWLEDGED, now=1.0, answered=True
        )

        async def offline() -> bool:
            return _copy(headend, send_id) == ("offline", UNACKNOWLEDGED)

        await until(offline, 20.0)
        assert await queue.report(
            send_id, DEVICE, SendKind.LOAD_CONTROL, Outcome.CANCELLED, now=2.0, meter="m1",
            event_status=EventStatus.CANCELLED,
        )  # fmt: skip

        async def cancelled() -> bool:
            return _copy(headend, send_id)[0] == "cancelled"

        await until(cancelled, 20.0)
        # was: UNACKNOWLEDGED, kept as the copy's own detail
        assert _copy(headend, send_id) == ("cancelled", "")
