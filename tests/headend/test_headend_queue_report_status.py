"""A load control event reported cancelled on its device (Report Event Status 0x06, SE
D.2.3.3.1.1.2 Table D-5) by a send its retailer did not cancel reads over the work queue as
in process: cancelled, with the copy's own detail; only 0x07 is "superseded by send N".
Rows reported by a zse that kept no status (no detail) still load and read as they did."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fleet.helpers import until
from tests.fleet.test_fleet_owed import REGISTRATION, A
from tests.headend.test_headend_cancel_detail_gateways import gateway_api
from tests.postgres_server import place, postgres
from zse.headend.core import Outcome, SendKind
from zse.headend.gateway import _report
from zse.headend.queue import REPORTED_CANCELLED
from zse.se.types import EventStatus

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

EVENT = {"duty_cycle": 40, "duration_minutes": 30, "criticality_level": 3}
DEVICE = "000D6F0000000001"


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (EventStatus.CANCELLED, ""),  # was: "superseded by send 2"
        (EventStatus.SUPERSEDED, "superseded by send 2"),
        (None, "superseded by send 2"),  # a row of a zse that kept no status: as it read
    ],
)
async def test_a_report_over_the_queue_says_what_it_says_in_process(
    place: Any, status: int | None, shown: str
) -> None:
    async with gateway_api(place("headend.sqlite")) as (headend, _):
        await headend.put_group(A, {"name": "g", "meters": ["m1"]})
        await headend.register(A, REGISTRATION)
        older = (await headend.send_load_control(A, {"group": "g", **EVENT}))["id"]
        await headend.send_load_control(A, {"group": "g", **EVENT, "duty_cycle": 20})
        queue = headend.queue
        assert queue is not None
        first, _ = await queue.claim("w1", now=0.0, lease=60.0)
        assert await queue.complete(first, "w1", Outcome.DELIVERED, "", now=1.0, answered=True)
        assert await queue.report(
            older, DEVICE, SendKind.LOAD_CONTROL, Outcome.CANCELLED, now=2.0, meter="m1",
            event_status=status,
        )  # fmt: skip
        (row,) = await queue.rows(older)
        assert row.detail == (REPORTED_CANCELLED if status == EventStatus.CANCELLED else "")

        async def cancelled() -> bool:
            (copy,) = headend.send(A, older)["outcomes"]
            return bool(copy["outcome"] == "cancelled")

        await until(cancelled, 20.0)
        (copy,) = headend.send(A, older)["outcomes"]
        assert copy["detail"] == shown


@pytest.mark.parametrize("status", [0x06, 0x07])
def test_a_gateways_report_carries_its_status(status: int) -> None:
    """The status of a gateway's ReportReceived event (docs/mqtt.md) reaches the queue."""
    data = {
        "event": "ReportReceived",
        "device": DEVICE,
        "report": {"issuer_event_id": 7, "event_status": status},
    }
    report = _report(data, "m1")
    assert report is not None
    assert (report.outcome, report.event_status) == (Outcome.CANCELLED, status)
