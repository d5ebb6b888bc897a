"""The in-process headend (no work queue) writes a de-provisioning's ``skipped`` only on a
copy as it stands once the other writes of it have landed, on both engines: a device's
delivery answered, its write under way (the copy still ``pending`` in memory, which the store
updates once the write is on disk), the device's de-provisioning worked out its pending copies
meanwhile and wrote ``skipped``, "de-provisioned before it was sent", which landed last: the
delivered copy read ``skipped``. The interleaving is forced through the real code, the
writes begun in the order the test picks (their commits carried out as ever)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.headend.helpers import START, registration
from tests.headend.test_headend_queue_write_order import delivered_then_skipped
from tests.postgres_server import place, postgres
from zse.headend.service import Headend
from zse.headend.sim import SimMeters
from zse.headend.store import HeadendStore
from zse.installcode import canonical_eui64
from zse.store import Store

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

A = "retailer-a"


async def test_a_delivered_copy_is_not_skipped_by_a_deprovisioning_write_in_process(
    place: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    sims = SimMeters(1, tmp_path / "meters", clock=clock)
    await sims.start()
    store = await Store.open(place("headend.sqlite"))
    headend = Headend(sims.meters, await HeadendStore.open(store), clock=clock)
    try:
        await headend.start()
        display = next(d for d in sims.devices if d.device_type == "in-home display")
        await headend.register(A, registration(display))
        await headend.put_group(A, {"name": "g", "meters": [display.meter]})
        await asyncio.sleep(60)  # it joins and runs CBKE
        assert headend.device(A, display.mac)["state"] == "meter ready"
        answer_writing = delivered_then_skipped(monkeypatch, store)
        sent = await headend.send_message(A, {"group": "g", "text": "hi", "duration_minutes": 60})
        await answer_writing.wait()  # the ESI answered: delivered, its write under way
        await headend.deprovision(A, display.mac)  # both writes landed: the copy as they left it
        (copy,) = headend.send(A, sent["id"])["outcomes"]
        assert copy["mac"] == canonical_eui64(display.mac)
        # was: skipped, "de-provisioned before it was sent" (worked out from "pending")
        assert (copy["outcome"], copy["detail"]) == ("delivered", ""), copy
        await asyncio.sleep(60)  # and stays so
        (copy,) = headend.send(A, sent["id"])["outcomes"]
        assert (copy["outcome"], copy["detail"]) == ("delivered", ""), copy
    finally:
        await headend.close()
        await store.close()
        await sims.close()
