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

from tests.headend.test_headend_in_process_write_order import A, in_process
from tests.headend.test_headend_queue_write_order import delivered_then_skipped
from tests.postgres_server import place, postgres

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines


async def test_a_delivered_copy_is_not_skipped_by_a_deprovisioning_write_in_process(
    place: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with in_process(place, tmp_path, "in-home display") as running:
        (display,) = running.devices
        answer_writing = delivered_then_skipped(monkeypatch, running.store)
        body = {"group": "g", "text": "hi", "duration_minutes": 60}
        sent = await running.headend.send_message(A, body)
        await answer_writing.wait()  # the ESI answered: delivered, its write under way
        await running.headend.deprovision(A, display.mac)  # both landed: the copy as they left it
        # was: skipped, "de-provisioned before it was sent" (worked out from "pending")
        assert running.copy(sent["id"], display) == ("delivered", "")
        await asyncio.sleep(60)  # and stays so
        assert running.copy(sent["id"], display) == ("delivered", "")
