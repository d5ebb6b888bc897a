"""A job's progress (state, outcome, counts, times) under a checksum of its own (audit:
persistence #4, left open for the columns that change). The job's checksum covered only what
never changes once enqueued, so a byte of the file changed in a finished job's ``updated``
made the purge delete it before the headend's API had read its outcome (the API then
enqueues it again at its next start: delivered twice), with no error. Bytes of a real SQLite
file are changed here, behind zse's back."""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.postgres_server import place, postgres, raw_sql
from zse.headend.core import Outcome, SendKind
from zse.headend.queue import DAMAGED, open_queue

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

DEVICES = [("000D6F000A000001", "meter-1"), ("000D6F000A000002", "meter-1")]
#: When each device's delivery is recorded (its job's ``not_before`` and ``updated``).
DONE = (1234.5678, 2345.6789)
#: How far the API has read the outcomes: neither job is read yet.
SINCE = 1000.0


async def _delivered(path: Path) -> None:
    """Two jobs delivered at :data:`DONE`, the API's reader at :data:`SINCE`; closed (the
    log checkpointed into the file)."""
    queue = await open_queue(path)
    try:
        await queue.enqueue(1, SendKind.MESSAGE, {"text": "hi"}, DEVICES, now=1.0)
        jobs = await queue.claim("w", now=2.0, lease=30.0)
        for job, now in zip(jobs, DONE, strict=True):
            assert await queue.complete(job, "w", Outcome.DELIVERED, "", now=now, answered=True)
        await queue.mark_read("api", SINCE)
    finally:
        await queue.close()


def _flip_updated(path: Path) -> None:
    """The first job's ``updated`` made tiny (a bit of its exponent cleared): in the table's
    row it follows ``not_before`` (the NULL lease between them takes no bytes)."""
    data = bytearray(path.read_bytes())
    done = struct.pack(">d", DONE[0])
    at = data.index(done + done) + 8
    data[at] ^= 0x40
    assert struct.unpack(">d", data[at : at + 8])[0] < SINCE
    path.write_bytes(bytes(data))


async def test_a_finished_job_changed_on_disk_is_set_aside_not_purged_unread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Was: the purge deleted the first job (its ``updated`` now before what the API read),
    its outcome never read."""
    path = tmp_path / "h-queue.sqlite"
    await _delivered(path)
    _flip_updated(path)
    queue = await open_queue(path)  # the file's structure is sound: opened
    try:
        with caplog.at_level(logging.WARNING, logger="zse.headend"):
            assert await queue.purge(before=10_000.0) == 0
        rows = {r.device: r for r in await queue.rows()}
        assert rows[DEVICES[0][0]].state == DAMAGED
        assert "checksum" in rows[DEVICES[0][0]].detail
        assert rows[DEVICES[1][0]].state == "sent"  # the other as it was
        said = [r.getMessage() for r in caplog.records]
        assert any("damaged job row" in s and DEVICES[0][0] in s for s in said)
    finally:
        await queue.close()


async def test_a_changed_outcome_is_never_read_as_the_jobs(tmp_path: Path) -> None:
    """Was: the changed row read back as the job's outcome, unchecked."""
    path = tmp_path / "h-queue.sqlite"
    await _delivered(path)
    _flip_updated(path)
    queue = await open_queue(path)
    try:
        (row,) = await queue.rows(since=0.0)  # the damaged one left out, said once
        assert row.device == DEVICES[1][0]
    finally:
        await queue.close()


async def test_a_queue_written_before_the_state_checksum_works_and_gets_it(
    tmp_path: Path,
) -> None:
    """A queue of the version before (no ``state_sum`` column): its jobs are read, claimed and
    purged as before, and each gets its sum at its next change."""
    path = tmp_path / "h-queue.sqlite"
    queue = await open_queue(path)
    await queue.enqueue(1, SendKind.MESSAGE, {"text": "hi"}, DEVICES, now=1.0)
    await queue.close()
    await raw_sql(path, "ALTER TABLE headend_jobs DROP COLUMN state_sum")
    queue = await open_queue(path)
    try:
        assert [r.state for r in await queue.rows()] == ["ready", "ready"]
        job, other = await queue.claim("w", now=2.0, lease=30.0)
        assert await queue.complete(job, "w", Outcome.DELIVERED, "", now=3.0, answered=True)
        sums = await raw_sql(path, "SELECT state_sum FROM headend_jobs ORDER BY device")
        assert sums[0][0] is not None  # written with its change
        assert sums[1][0] is None  # leased: the claim writes no sum
        assert await queue.complete(other, "w", Outcome.DELIVERED, "", now=3.0, answered=True)
        assert await queue.purge(before=10.0) == 2
    finally:
        await queue.close()


async def test_a_cancel_and_a_forsake_keep_the_sums(place: Any) -> None:
    """The cancel and the de-provisioning write each job's sum with its change: the jobs
    read back as theirs, nothing set aside."""
    queue = await open_queue(place("queue"))
    try:
        await queue.enqueue(1, SendKind.MESSAGE, {"text": "hi"}, DEVICES, now=1.0)
        await queue.enqueue(2, SendKind.MESSAGE, {"text": "ho"}, DEVICES, now=1.0)
        (leased,) = await queue.claim("w", now=2.0, lease=30.0, limit=1)
        await queue.cancel(1, now=3.0)
        await queue.forsake(DEVICES[0][0], now=4.0)
        rows = {(r.send, r.device): r for r in await queue.rows()}
        assert len(rows) == 4
        assert DAMAGED not in {r.state for r in rows.values()}
        assert rows[1, leased.device].outcome is Outcome.CANCELLED
        assert rows[1, leased.device].state == "leased"
        assert rows[2, DEVICES[0][0]].outcome is Outcome.SKIPPED
        # the leased, cancelled job's answer is still recorded (its row is its worker's)
        assert await queue.complete(leased, "w", Outcome.DELIVERED, "", now=5.0, answered=True)
    finally:
        await queue.close()


async def test_a_changed_try_count_is_set_aside_at_its_claim(place: Any) -> None:
    """Was: a job in a retry's back-off whose ``tries`` changed was delivered under another
    idempotency key (the gateway would carry it out again)."""
    where = place("queue")
    queue = await open_queue(where)
    try:
        await queue.enqueue(1, SendKind.MESSAGE, {"text": "hi"}, DEVICES, now=1.0)
        for job in await queue.claim("w", now=2.0, lease=30.0):  # not reached: back off
            assert await queue.complete(job, "w", Outcome.OFFLINE, "", now=3.0, answered=True)
        update = "UPDATE headend_jobs SET tries = tries + 1 WHERE device = ?"
        await raw_sql(where, (update, (DEVICES[0][0],)))
        (job,) = await queue.claim("w", now=10_000.0, lease=30.0)
        assert (job.device, job.tries) == (DEVICES[1][0], 1)
        rows = {r.device: r for r in await queue.rows()}
        assert rows[DEVICES[0][0]].state == DAMAGED
        assert "checksum" in rows[DEVICES[0][0]].detail
    finally:
        await queue.close()
