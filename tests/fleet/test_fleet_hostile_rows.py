"""Damaged rows in the headend's work queue (a byte of the file changed: the B-trees sound, a
column no longer reads back), on both engines: the damaged job is set aside (state
``damaged``, its ``detail`` naming the column, logged once without its content) and the
others are claimed and delivered; a worker whose claim fails in a way nobody foresaw logs it
at ERROR and keeps going. A foreign SQLite file given as the queue is refused untouched."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.test_fleet_group_commit import Prompt
from tests.postgres_server import raw_sql
from zse.errors import StoreError
from zse.headend.control import Control, ControlKind
from zse.headend.core import Outcome, SendKind
from zse.headend.queue import DAMAGED, JobQueue, open_queue
from zse.headend.worker import Worker

SECRET = "0123456789ABCDEF0123456789ABCDEF1234"  # a payload's content: never logged
PAYLOAD = {"text": SECRET}
DEVICES = [(f"000D6F000A00000{i}", "meter-1") for i in range(1, 6)]


def _damage(column: str, value: str, device: str) -> tuple[str, tuple[Any, ...]]:
    return (f"UPDATE headend_jobs SET {column} = ? WHERE device = ?", (value, device))


async def _damaged_queue(place: Any) -> JobQueue:
    """Five jobs of send 1, the first three damaged: kind, payload, outcome."""
    where = place("queue")
    queue = await open_queue(where)
    await queue.enqueue(1, SendKind.MESSAGE, PAYLOAD, DEVICES, now=1.0)
    await raw_sql(
        where,
        _damage("kind", "messvge", DEVICES[0][0]),
        _damage("payload", '{"text": "01234', DEVICES[1][0]),
        _damage("outcome", "pendinf", DEVICES[2][0]),
    )
    return queue


def _no_payload(caplog: pytest.LogCaptureFixture) -> list[str]:
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(SECRET not in s and "0123456789" not in s for s in said)
    return said


async def test_a_damaged_job_is_set_aside_and_the_others_claimed(
    place: Any, caplog: pytest.LogCaptureFixture
) -> None:
    queue = await _damaged_queue(place)
    try:
        with caplog.at_level(logging.WARNING, logger="zse.headend"):
            jobs = await queue.claim("w", now=2.0, lease=30.0)
            assert [j.device for j in jobs] == [d for d, _ in DEVICES[3:]]
            assert all(j.payload == PAYLOAD for j in jobs)
            # set aside for good: never claimed again, not even once the leases ran out
            again = await queue.claim("w", now=100.0, lease=30.0)
            assert [j.device for j in again] == [j.device for j in jobs]
            jobs = again
            rows = {r.device: r for r in await queue.rows()}
            await queue.rows()  # the unreadable outcome is said once
        said = _no_payload(caplog)
        assert len([s for s in said if "set aside" in s]) == 3
        assert len([s for s in said if "left out" in s]) == 1
        assert all(len(s) < 300 for s in said)
        # the kind and the payload damaged: kept, their outcome as it was, why in the detail
        for device, column in ((DEVICES[0][0], "kind"), (DEVICES[1][0], "payload")):
            assert rows[device].state == DAMAGED
            assert rows[device].outcome is Outcome.PENDING
            assert column in rows[device].detail
        assert DEVICES[2][0] not in rows  # its outcome unreadable: left out of the outcomes
        # the damaged ones are not lost: still in the table, their content as it was
        assert len(await raw_sql(place("queue"), "SELECT 1 FROM headend_jobs")) == 5
        # answers and reports still go through, the damaged rows untouched by them
        assert await queue.complete(jobs[0], "w", Outcome.DELIVERED, "", now=3.0, answered=True)
        moved = await queue.report_many([], now=3.0)
        assert moved == []
        assert not await queue.report(
            1, DEVICES[2][0], SendKind.MESSAGE, Outcome.CONFIRMED, now=3.0
        )
        assert not await queue.report(
            1, DEVICES[0][0], SendKind.MESSAGE, Outcome.CONFIRMED, now=3.0
        )
    finally:
        await queue.close()


async def test_text_that_is_not_utf8_is_set_aside_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite: a byte damaged inside a text column (not UTF-8) would fail the whole read."""
    where = tmp_path / "queue.sqlite"
    queue = await open_queue(where)
    try:
        await queue.enqueue(1, SendKind.MESSAGE, PAYLOAD, DEVICES, now=1.0)
        await raw_sql(
            where,
            f"UPDATE headend_jobs SET meter = CAST(X'6D65FF' AS TEXT) WHERE device = '{DEVICES[0][0]}'",  # noqa: E501
            f"UPDATE headend_jobs SET device = CAST(X'30FE31' AS TEXT) WHERE device = '{DEVICES[1][0]}'",  # noqa: E501
        )
        with caplog.at_level(logging.WARNING, logger="zse.headend"):
            jobs = await queue.claim("w", now=2.0, lease=30.0)
            assert [j.device for j in jobs] == [d for d, _ in DEVICES[2:]]
            again = await queue.claim("w", now=100.0, lease=30.0)
            assert [j.device for j in again] == [j.device for j in jobs]
            rows = await queue.rows()
        _no_payload(caplog)
        assert {r.device for r in rows} == {d for d, _ in DEVICES[2:]}  # the others unreadable
        states = await raw_sql(where, "SELECT state FROM headend_jobs ORDER BY rowid")
        assert [s for (s,) in states] == [DAMAGED, DAMAGED, "leased", "leased", "leased"]
    finally:
        await queue.close()


async def test_a_worker_delivers_the_others_past_a_damaged_job(place: Any) -> None:
    queue = await _damaged_queue(place)
    link = Prompt()
    clock = asyncio.get_running_loop().time
    worker = Worker(queue, link, owner="w", clock=clock, poll=0.1)
    try:
        await worker.start()
        for _ in range(200):  # virtual time: bounded
            delivered = [r for r in await queue.rows() if r.outcome is Outcome.DELIVERED]
            if len(delivered) == 2:
                break
            await asyncio.sleep(0.05)
        assert {r.device for r in delivered} == {d for d, _ in DEVICES[3:]}
        assert worker._task is not None
        assert not worker._task.done()
    finally:
        await worker.stop()
        await queue.close()


async def test_an_unforeseen_error_is_logged_once_and_the_worker_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = await open_queue(tmp_path / "queue.sqlite")
    await queue.enqueue(1, SendKind.MESSAGE, PAYLOAD, DEVICES[:2], now=1.0)
    claim = queue.claim
    failures = [ValueError("no good")] * 5

    async def failing(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await claim(*args, **kwargs)

    monkeypatch.setattr(queue, "claim", failing)
    worker = Worker(queue, Prompt(), owner="w", clock=asyncio.get_running_loop().time, poll=0.1)
    try:
        with caplog.at_level(logging.WARNING, logger="zse.headend"):
            await worker.start()
            for _ in range(200):  # virtual time: bounded
                rows = await queue.rows()
                if all(r.outcome is Outcome.DELIVERED for r in rows):
                    break
                await asyncio.sleep(0.05)
        assert {r.outcome for r in rows} == {Outcome.DELIVERED}
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1  # five times the same: said once
        assert "ValueError" in errors[0].getMessage()
    finally:
        await worker.stop()
        await queue.close()


async def test_a_damaged_control_job_is_set_aside_and_the_others_claimed(
    place: Any, caplog: pytest.LogCaptureFixture
) -> None:
    where = place("queue")
    queue = await open_queue(where)
    try:
        control = await Control.open(queue)
        secret = {"install_code": SECRET}
        jobs = [
            (f"k{i}", ControlKind.PROVISION, "meter-1", device, secret)
            for i, (device, _) in enumerate(DEVICES[:4])
        ]
        await control.enqueue(jobs, now=1.0)
        for device in DEVICES[:3]:
            await control.register(device[0], "meter-1", secret, time=1, now=1.0)
        await raw_sql(
            where,
            ("UPDATE headend_control SET kind = 'provisi0n' WHERE key = ?", ("k0",)),
            ("UPDATE headend_control SET payload = '{' WHERE key = ?", ("k1",)),
            ("UPDATE headend_lifecycle SET history = '[' WHERE device = ?", (DEVICES[0][0],)),
            ("UPDATE headend_lifecycle SET state = 'X' WHERE device = ?", (DEVICES[1][0],)),
        )
        with caplog.at_level(logging.WARNING, logger="zse.headend"):
            claimed = await control.claim("w", now=2.0, lease=30.0, limit=20)
            again = await control.claim("w", now=100.0, lease=30.0, limit=20)
            assert {j.key for j in again} == {j.key for j in claimed}
            devices = await control.devices()
            await control.devices()
        said = _no_payload(caplog)
        assert {j.key for j in claimed} >= {"k2", "k3"}
        assert not {"k0", "k1"} & {j.key for j in claimed}
        states = {k: s for k, s, _ in await control.jobs()}
        assert (states["k0"], states["k1"]) == (DAMAGED, DAMAGED)
        assert [d.device for d in devices] == [DEVICES[2][0]]
        assert len([s for s in said if "left out" in s]) == 2  # once each
        with pytest.raises(StoreError, match="damaged lifecycle record") as raised:
            await control.register(DEVICES[0][0], "meter-1", secret, time=2, now=3.0)
        assert SECRET not in str(raised.value)
    finally:
        await queue.close()


async def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    where = tmp_path / "photos.db"
    raw = sqlite3.connect(where)
    raw.execute("CREATE TABLE photos (id INTEGER)")
    raw.commit()
    raw.close()
    before = where.read_bytes()
    with pytest.raises(StoreError, match="not a headend database"):
        await open_queue(where)
    assert where.read_bytes() == before  # not switched to WAL (header bytes 18-19)
    raw = sqlite3.connect(where)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        raw.close()


async def test_a_changed_payload_that_still_reads_is_set_aside(
    place: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A flipped bit inside a payload's text (still JSON), or in its meter, was delivered as
    changed: each job's row has a checksum of what its delivery depends on, checked when it
    is claimed (audit: persistence #4)."""
    where = place("queue")
    queue = await open_queue(where)
    try:
        await queue.enqueue(1, SendKind.MESSAGE, PAYLOAD, DEVICES, now=1.0)
        changed = '{"text": "0123456789ABCDEF0123456789ABCDEF1235"}'
        await raw_sql(
            where,
            _damage("payload", changed, DEVICES[0][0]),
            _damage("meter", "meter-3", DEVICES[1][0]),
        )
        with caplog.at_level(logging.WARNING, logger="zse.headend"):
            jobs = await queue.claim("w", now=2.0, lease=30.0)
        assert [j.device for j in jobs] == [d for d, _ in DEVICES[2:]]
        assert all(j.payload == PAYLOAD for j in jobs)
        said = _no_payload(caplog)
        assert len([s for s in said if "set aside" in s]) == 2
        rows = {r.device: r for r in await queue.rows()}
        for device, _ in DEVICES[:2]:
            assert rows[device].state == DAMAGED
            assert "checksum" in rows[device].detail
    finally:
        await queue.close()


async def test_a_job_written_before_the_checksum_is_delivered(place: Any) -> None:
    """A queue made by an earlier version (no ``checksum`` column) gets the column at open;
    its jobs (no checksum) are delivered, the new ones are checked."""
    where = place("queue")
    queue = await open_queue(where)
    await queue.close()
    await raw_sql(
        where,
        "ALTER TABLE headend_jobs DROP COLUMN checksum",
        "INSERT INTO headend_jobs (send, device, meter, kind, payload, state, outcome,"
        " not_before, updated) VALUES (1, '000D6F0000000009', 'meter-1', 'message',"
        " '{\"text\": \"old\"}', 'ready', 'pending', 0, 0)",
    )
    queue = await open_queue(where)
    try:
        await queue.enqueue(2, SendKind.MESSAGE, PAYLOAD, DEVICES[:1], now=1.0)
        await raw_sql(where, _damage("payload", '{"text": "changed"}', DEVICES[0][0]))
        jobs = await queue.claim("w", now=2.0, lease=30.0)
        assert [(j.send, j.payload) for j in jobs] == [(1, {"text": "old"})]
        (row,) = await queue.rows(2)
        assert row.state == DAMAGED
    finally:
        await queue.close()
