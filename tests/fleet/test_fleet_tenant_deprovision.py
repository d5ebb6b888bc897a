"""Over meter gateways a send made just after a de-provisioning request queued a delivery for
the device (found by the tenant-boundary review): the headend's record of the device changed
only with the gateway's lifecycle event, so until then a by-group send still chose it, and
its job, nothing ending it, could be retried (the device offline) once the device was
another retailer's. Now the request marks the device's registration in ``headend_lifecycle``
(:attr:`zse.headend.control.DeviceLifecycle.leaving`) with its ``deprovision`` job: a send
made after it leaves the device out (``skipped``, "de-provisioned before it was sent"), as in
process, after a restart of the API too; a new registration (another retailer's) is sent its
retailer's sends, and a de-provisioning the gateway refuses leaves the device as it was."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.fleet.test_fleet_owed import MAC, REGISTRATION, A
from tests.headend.test_headend_cancel_detail_gateways import gateway_api
from tests.postgres_server import raw_sql
from zse.headend.control import Control
from zse.headend.core import Outcome
from zse.headend.link import Lifecycle
from zse.headend.queue import NOT_SENT_DEPROVISIONED
from zse.headend.run import queue_location
from zse.headend.service import Headend
from zse.provisioning import LifecycleState as S

B = "retailer-b"
#: The gateway's events of a device that joins and runs CBKE (METER READY).
READY = (
    ("provision", S.NEW, S.PENDING_PROVISIONING),
    ("key_established", S.PENDING_PROVISIONING, S.METER_READY),
)
#: The gateway's events of a device de-provisioned, which then leaves.
LEFT = (
    ("deprovision", S.METER_READY, S.PENDING_DEPROVISIONING),
    ("left", S.PENDING_DEPROVISIONING, S.DEPROVISION_COMPLETE),
)


async def _events(
    headend: Headend, control: Control, events: tuple[tuple[str, S, S], ...], time: int
) -> None:
    """The gateway's lifecycle ``events`` of the device, recorded as the workers do and read
    by the API (its regular look)."""
    now = asyncio.get_running_loop().time()
    for n, (event, before, after) in enumerate(events):
        change = Lifecycle(
            meter="m1", device=MAC, event=event, from_state=before, to_state=after, detail="",
            time=time + n,
        )  # fmt: skip
        assert await control.record(change, now=now)
    await headend.directory.refresh()


async def _ready(headend: Headend, control: Control, retailer: str, time: int = 101) -> None:
    """The device registered by ``retailer`` (its group ``g``: meter m1), METER READY from
    meter time ``time``."""
    await headend.put_group(retailer, {"name": "g", "meters": ["m1"]})
    await headend.register(retailer, {**REGISTRATION, "label": retailer})
    await _events(headend, control, READY, time)


async def _queued(headend: Headend, retailer: str, text: str) -> list[tuple[str, str]]:
    """Send ``text`` to ``retailer``'s group: the (device, state) of the jobs it queued."""
    sent = await headend.send_message(retailer, {"group": "g", "text": text})
    assert headend.queue is not None
    return [(r.device, r.state) for r in await headend.queue.rows(int(sent["id"]))]


def _copies(headend: Headend, retailer: str) -> list[tuple[str, str]]:
    """The (outcome, detail) of the device's copy of ``retailer``'s last send."""
    last = headend.sends(retailer)[-1]
    return [(c["outcome"], c["detail"]) for c in headend.send(retailer, last["id"])["outcomes"]]


@asynccontextmanager
async def _asked(place: Any) -> AsyncIterator[tuple[Headend, Control]]:
    """:func:`gateway_api` with retailer A's device METER READY, its de-provisioning asked
    for (the gateway has not acted on it yet)."""
    async with gateway_api(place("headend.sqlite")) as (headend, control):
        await _ready(headend, control, A)
        await headend.deprovision(A, MAC)
        yield headend, control


async def test_a_send_after_a_deprovisioning_request_queues_nothing_for_the_device(
    place: Any,
) -> None:
    async with _asked(place) as (headend, _):
        assert headend.device(A, MAC)["state"] == S.METER_READY.value  # its gateway says so
        # was: a job ready for the device, tried again while it is offline, whoever's it is
        assert await _queued(headend, A, "after") == []
        assert _copies(headend, A) == [(Outcome.SKIPPED.value, NOT_SENT_DEPROVISIONED)]


async def test_the_deprovisioning_request_outlives_a_restart_of_the_api(place: Any) -> None:
    database = place("headend.sqlite")
    async with gateway_api(database) as (headend, control):
        await _ready(headend, control, A)
        await headend.deprovision(A, MAC)
    async with gateway_api(database) as (headend, control):  # read from the database
        assert await _queued(headend, A, "after a restart") == []
        assert _copies(headend, A) == [(Outcome.SKIPPED.value, NOT_SENT_DEPROVISIONED)]
        kinds = [key.split(":")[1] for key, _, _ in await control.jobs()]
        assert kinds == ["deprovision", "provision"]  # asked once


async def test_the_device_registered_again_by_another_retailer_is_sent_its_sends(
    place: Any,
) -> None:
    async with _asked(place) as (headend, control):
        await _events(headend, control, LEFT, 103)
        await _ready(headend, control, B, 105)  # a new registration: the request was the old one's
        assert await _queued(headend, B, "B's") == [(MAC, "ready")]
        assert _copies(headend, B) == [(Outcome.PENDING.value, "")]
        assert await _queued(headend, A, "A's") == []  # A's group has no device now


async def test_a_deprovisioning_its_gateway_refuses_leaves_the_device_sent_again(
    place: Any,
) -> None:
    async with _asked(place) as (headend, control):
        now = asyncio.get_running_loop().time()
        (provision,) = await control.claim("w1", now=now, lease=60.0)
        assert await control.complete(provision, "w1", answered=True, now=now)
        (deprovision,) = await control.claim("w1", now=now, lease=60.0)
        why = "mac: not this gateway's device"
        assert await control.complete(deprovision, "w1", answered=True, refused=why, now=now)
        await headend.directory.refresh()
        assert headend.device(A, MAC)["detail"] == f"deprovision refused: {why}"
        assert await _queued(headend, A, "still A's") == [(MAC, "ready")]


async def test_a_device_recorded_before_the_mark_is_read_and_marked(place: Any) -> None:
    """A ``headend_lifecycle`` table made by an earlier version (no ``deprovision_asked``)
    gets the column when the API opens it: its records read, as not asked."""
    database = place("headend.sqlite")
    async with gateway_api(database) as (headend, control):
        await _ready(headend, control, A)
    where = queue_location(database)  # a file (a Path to raw_sql) beside a SQLite store
    queue = where if isinstance(database, str) else Path(where)
    await raw_sql(queue, "ALTER TABLE headend_lifecycle DROP COLUMN deprovision_asked")
    async with gateway_api(database) as (headend, control):
        assert headend.device(A, MAC)["state"] == S.METER_READY.value
        assert await _queued(headend, A, "before") == [(MAC, "ready")]
        await headend.deprovision(A, MAC)
        assert await _queued(headend, A, "after") == []
