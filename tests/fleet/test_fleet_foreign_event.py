"""A report on another source's event of the same id moves no job never handed out (found by
a hostile review): the gateway's ESI also holds events and messages from others (a Home
Assistant user over the bridge's commands, ``zse esi``'s configuration) whose ids can equal a
headend send id (sequential from 1). A device's report on such an event ended the headend's
job before any worker had it (``ready`` -> ``sent``): no worker ever claimed it, and the
device never got the headend's event.

A report now never moves a job that no worker has handed to its gateway: ``ready`` with no
answer, try or failure counted (a claim makes it ``leased``; every way back to ``ready``
counts a failure), nor one ended ``skipped`` with nothing counted (its meter refused it at
its first try, e.g. the id in use there by another event). The old rule's reason stands for
a job on a retry's back-off: it was handed out, its gateway's answer lost, and the device
that reports has it (no more delivery). On both engines and both of PostgreSQL's write
paths; logged once per (meter, device)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from zse.headend import queue as queue_module
from zse.headend.core import Outcome, SendKind
from zse.headend.queue import JobQueue, ReportedOutcome, open_queue

ONE, TWO, THREE = "000D6F0000000001", "000D6F0000000002", "000D6F0000000003"
DEVICES = [(ONE, "m1"), (TWO, "m1"), (THREE, "m1")]
QUEUE_LOG = "zse.headend.queue"
LCE = SendKind.LOAD_CONTROL


def _told(device: str, outcome: Outcome, meter: str | None = "m1") -> ReportedOutcome:
    return ReportedOutcome(send=5, device=device, kind=LCE, outcome=outcome, meter=meter)


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the queue said of reports on jobs never handed out."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == QUEUE_LOG and "never handed to its gateway" in r.getMessage()
    ]


async def _never_handed_out_moves_nothing(
    queue: JobQueue, caplog: pytest.LogCaptureFixture
) -> None:
    await queue.enqueue(5, LCE, {"issuer_event_id": 5}, DEVICES, now=0.0)
    (first,) = await queue.claim("w", now=0.0, lease=60.0, limit=1)  # ONE's: handed out
    assert first.device == ONE
    # not reached (the gateway did not answer): back to ready, on the back-off
    assert await queue.complete(first, "w", Outcome.OFFLINE, "no answer", now=1.0, answered=False)
    with caplog.at_level(logging.WARNING, logger=QUEUE_LOG):
        reports = [
            _told(TWO, Outcome.RECEIVED),  # another source's event 5: TWO never had ours
            _told(TWO, Outcome.STARTED),  # said once
            _told(THREE, Outcome.COMPLETED, meter=None),  # the meter not known: the same
            _told(ONE, Outcome.RECEIVED),  # handed out, its answer lost: the device has it
        ]
        assert await queue.report_many(reports, now=2.0) == [False, False, False, True]
        assert await queue.report(5, TWO, LCE, Outcome.OPTED_OUT, now=2.5, meter="m1") is False
        said = _said(caplog)
        assert len(said) == 2  # (m1, TWO) and (None, THREE), each once
        assert all(name in " ".join(said) for name in ("'m1'", f"'{TWO}'", f"'{THREE}'"))
        assert not any(word in " ".join(said) for word in ("received", "started", "completed"))
    rows = {r.device: (r.outcome, r.state) for r in await queue.rows(5)}
    assert rows == {
        ONE: (Outcome.RECEIVED, "sent"),  # nothing more to deliver
        TWO: (Outcome.PENDING, "ready"),
        THREE: (Outcome.PENDING, "ready"),
    }
    # the headend's event 5 is still delivered to the two others
    two, three = await queue.claim("w", now=3.0, lease=60.0)
    assert (two.device, three.device) == (TWO, THREE)
    # handed out now: their reports count (leased: the outcome moves, the lease stays)
    assert await queue.report(5, TWO, LCE, Outcome.RECEIVED, now=4.0, meter="m1")
    assert {r.device: r.state for r in await queue.rows(5)}[TWO] == "leased"
    # THREE's meter refuses it (the id in use there by another event): never reached, so
    # the device's reports on that other event move nothing
    refused = "refused: issuer_event_id: issuer event id 5 is in use at this ESI"
    assert await queue.complete(three, "w", Outcome.SKIPPED, refused, now=5.0, answered=True,
                                retry=False)  # fmt: skip
    assert not await queue.report(5, THREE, LCE, Outcome.COMPLETED, now=6.0, meter="m1")
    (row,) = [r for r in await queue.rows(5) if r.device == THREE]
    assert (row.outcome, row.detail, row.state) == (Outcome.SKIPPED, refused, "sent")


async def test_a_report_moves_no_job_never_handed_out(
    place: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite (one locking transaction) and PostgreSQL (compare and set)."""
    queue = await open_queue(place("queue"))
    try:
        await _never_handed_out_moves_nothing(queue, caplog)
    finally:
        await queue.close()


async def test_postgresqls_locking_write_moves_no_job_never_handed_out(
    pg_place: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No round of compare and set: the rows written in a locking transaction at once."""
    monkeypatch.setattr(queue_module, "SWAP_ROUNDS", 0)
    queue = await open_queue(pg_place("queue"))
    try:
        await _never_handed_out_moves_nothing(queue, caplog)
    finally:
        await queue.close()
