"""At start the headend ends unsent the copies left pending to a device de-provisioned (its
de-provisioning cut short before the headend's records: :meth:`Headend._forsake`), on the copy
as it stands once the other writes of it have landed, on both engines.

Over a work queue, a device's report moves a pending copy on (the job may have been
delivered already); the meters' ESIs tell the reports they hold to the headend's listener at
start, while start writes. The unsent write, worked out from ``pending`` while the write of a
display's confirmation of the copy was under way (the store updates memory once a write is on
disk), landed last: the confirmed copy read ``skipped``, "de-provisioned before it was sent",
and the ESI, which marked the confirmation told, never told it again.

In process nothing races it: a report on a pending copy moves nothing there (the send's answer
is recorded as it comes), and the send's own writes of it come only after start's.

The interleaving is forced through the real code: the ESI's confirmation told once start has
reached the send before, start then going on once the confirmation's write has come, the
writes of the headend's records (their commits carried out as ever) begun in the order the
test picks (:func:`~tests.headend.test_headend_queue_write_order.written_in_order`).
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.helpers import real
from tests.headend.helpers import QueuedHeadend, queued_headend, registration
from tests.headend.test_headend_queue_write_order import _writes, written_in_order
from tests.postgres_server import place, postgres
from zse.headend.core import parse_message
from zse.headend.queue import NOT_SENT_DEPROVISIONED
from zse.headend.service import Headend
from zse.headend.sim import SimDevice
from zse.headend.store import HeadendStore

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

A = "retailer-a"


def _copy(headend: Headend, send_id: int) -> tuple[str, str]:
    (view,) = headend.send(A, send_id)["outcomes"]
    return view["outcome"], view["detail"]


async def ready_display(served: QueuedHeadend) -> SimDevice:
    """The meter's in-home display registered to :data:`A`, in its group ``g``, METER
    READY."""
    headend = served.headend
    display = next(d for d in served.sims.devices if d.device_type == "in-home display")
    await headend.register(A, registration(display))
    await headend.put_group(A, {"name": "g", "meters": [display.meter]})
    await asyncio.sleep(60)  # it joins and runs CBKE
    assert headend.device(A, display.mac)["state"] == "meter ready"
    return display


async def test_a_confirmation_told_at_start_is_not_undone_by_its_unsent_write(
    place: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with queued_headend(tmp_path, place) as running:
        headend = running.headend
        display = await ready_display(running)
        body = {"group": "g", "text": "two", "confirmation_required": True}
        before = (await headend.send_message(A, {"group": "g", "text": "one"}))["id"]
        send_id = (await headend.send_message(A, body))["id"]
        assert _copy(headend, send_id) == ("pending", "")  # no worker yet
        await headend.close()  # the headend stops, and the meter with it
        esi = headend.meters[display.meter].esi
        await esi.stop()
        await esi.start()  # what it hears now is held for its first listener
        # the message's job delivered (the worker's part, by hand) and confirmed on the
        # display; then its de-provisioning, cut short before the headend's records
        await esi.send_message(parse_message(body).message(send_id), device=display.mac)
        assert await display.role.confirm(send_id)
        await esi.deprovision(display.mac)

        # start reaches the earlier send, then the ESI tells the confirmation; start goes on
        # once the confirmation's write has come (under way, not landed)
        tell, telling = asyncio.Event(), esi.messaging.tell_untold

        async def held() -> None:
            await tell.wait()
            await telling()

        monkeypatch.setattr(esi.messaging, "tell_untold", held)
        store = headend.records.store
        confirm_writing = written_in_order(
            monkeypatch,
            store,
            partial(_writes, outcome="confirmed", send=send_id),
            partial(_writes, outcome="skipped", send=send_id),
        )
        enqueue = running.queue.enqueue

        async def enqueued(send: int, *args: Any, **kwargs: Any) -> None:
            if send == before and not tell.is_set():
                tell.set()
                await real(confirm_writing.wait(), 20.0)
            await enqueue(send, *args, **kwargs)

        monkeypatch.setattr(running.queue, "enqueue", enqueued)
        restarted = Headend(
            running.sims.meters,
            await HeadendStore.open(store),
            clock=headend.clock,
            queue=running.queue,
            sync=5.0,
            queue_clock=running.worker.now,
        )
        try:
            await restarted.start()
            assert confirm_writing.is_set()
            # was: ("skipped", NOT_SENT_DEPROVISIONED), worked out from "pending", landed last
            assert _copy(restarted, send_id) == ("confirmed", "")
            assert _copy(restarted, before) == ("skipped", NOT_SENT_DEPROVISIONED)
            await asyncio.sleep(30)  # and stays so
            assert _copy(restarted, send_id) == ("confirmed", "")
        finally:
            await restarted.close()
