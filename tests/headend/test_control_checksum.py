"""A control job's row (provision, de-provision, cancel) under a checksum (audit:
persistence #4). ``headend_control`` had none: a byte of the file changed in a provision's
install code was sent to the meter as it read, one changed in ``tries`` sent the command
again under another correlation id (carried out twice), and one changed in an answered
job's ``updated`` purged it early (queued again, carried out twice), all without an error.
Bytes of a real SQLite file are changed here, behind zse's back."""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.postgres_server import place, postgres, raw_sql
from zse.headend.control import UNTIL, Control, ControlKind, control_key, control_sum
from zse.headend.queue import DAMAGED, open_queue

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

DEVICES = ("000D6F000A000001", "000D6F000A000002")
CODES = ("83FED3407A939723A5C639B26916D505C3B5", "83FED3407A939723A5C639B26916D505C3B6")
#: When the answer to a cancel is recorded (its row's ``updated``).
DONE = 1234.5678
#: A purge's cut-off: after what was written, before the changed ``updated``.
BEFORE = 1000.0


def _cancels() -> list[tuple[str, ControlKind, str, str, dict[str, Any]]]:
    kind = ControlKind.CANCEL_MESSAGE
    return [
        (control_key(kind, 7, d), kind, "meter-1", d, {"device": d, "message_id": 7})
        for d in DEVICES
    ]


def _flip(path: Path, found: bytes, at: int, bit: int) -> None:
    """Byte ``at`` of ``found`` (once in the file) XOR ``bit``, in the file."""
    data = bytearray(path.read_bytes())
    assert data.count(found) == 1
    data[data.index(found) + at] ^= bit
    path.write_bytes(bytes(data))


async def test_a_changed_install_code_on_disk_is_set_aside_not_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Was: the provision was claimed with the changed install code (still JSON)."""
    path = tmp_path / "h-queue.sqlite"
    queue = await open_queue(path)
    control = await Control.open(queue)
    jobs = [
        (f"k{i}", ControlKind.PROVISION, "meter-1", d, {"mac": d, "install_code": c})
        for i, (d, c) in enumerate(zip(DEVICES, CODES, strict=True))
    ]
    await control.enqueue(jobs, now=1.0)
    await queue.close()
    _flip(path, CODES[0].encode(), 3, 0x01)  # a digit for another: "83FE" -> "83FD"
    queue = await open_queue(path)  # the file's structure is sound: opened
    try:
        control = await Control.open(queue)
        with caplog.at_level(logging.WARNING, logger="zse.headend"):
            (job,) = await control.claim("w", now=2.0, lease=30.0)
        assert job.payload["install_code"] == CODES[1]
        states = {k: (s, d) for k, s, d in await control.jobs()}
        assert states["k0"][0] == DAMAGED
        assert "checksum" in states["k0"][1]
        said = [r.getMessage() for r in caplog.records]
        assert any("k0" in s and "checksum" in s for s in said)
        assert not any(c[4:] in s for s in said for c in CODES)  # never the install code
    finally:
        await queue.close()


async def test_an_answered_job_changed_on_disk_is_set_aside_not_purged_early(
    tmp_path: Path,
) -> None:
    """Was: the purge deleted the answered cancel (its ``updated`` now before the cut-off),
    and the same cancel queued again was carried out a second time."""
    path = tmp_path / "h-queue.sqlite"
    queue = await open_queue(path)
    control = await Control.open(queue)
    await control.enqueue(_cancels()[:1], now=1.0)
    (job,) = await control.claim("w", now=2.0, lease=30.0)
    assert await control.complete(job, "w", answered=True, now=DONE)
    await queue.close()
    _flip(path, struct.pack(">d", DONE), 0, 0x40)  # its exponent: tiny
    queue = await open_queue(path)
    try:
        control = await Control.open(queue)
        assert await control.purge(before=BEFORE) == 0
        ((key, state, detail),) = await control.jobs()
        assert (key, state) == (job.key, DAMAGED)
        assert "checksum" in detail
        await control.enqueue(_cancels()[:1], now=3.0)  # the API queues it again: kept
        assert await control.claim("w", now=4.0, lease=30.0) == []
    finally:
        await queue.close()


async def test_a_changed_try_count_is_set_aside_at_its_claim(place: Any) -> None:
    """Was: a cancel in its back-off whose ``tries`` changed was sent under another
    correlation id (the gateway would carry it out again)."""
    where = place("queue")
    queue = await open_queue(where)
    try:
        control = await Control.open(queue)
        await control.enqueue(_cancels(), now=1.0)
        for job in await control.claim("w", now=2.0, lease=30.0):  # not answered: back off
            assert await control.complete(job, "w", answered=False, now=3.0)
        first, second = (key for key, *_ in _cancels())
        await raw_sql(
            where, ("UPDATE headend_control SET tries = tries + 1 WHERE key = ?", (first,))
        )
        (job,) = await control.claim("w", now=10_000.0, lease=30.0)
        assert (job.key, job.correlation_id) == (second, second)
        states = {k: (s, d) for k, s, d in await control.jobs()}
        assert states[first][0] == DAMAGED
        assert "checksum" in states[first][1]
    finally:
        await queue.close()


async def test_a_leased_job_changed_is_set_aside_at_its_answer(place: Any) -> None:
    """Was: the answer was recorded on the changed row (its back-off from a changed count)."""
    where = place("queue")
    queue = await open_queue(where)
    try:
        control = await Control.open(queue)
        await control.enqueue(_cancels()[:1], now=1.0)
        (job,) = await control.claim("w", now=2.0, lease=30.0)
        await raw_sql(where, ("UPDATE headend_control SET failures = 9 WHERE key = ?", (job.key,)))
        assert not await control.complete(job, "w", answered=False, now=3.0)
        ((_, state, detail),) = await control.jobs()
        assert state == DAMAGED
        assert "checksum" in detail
        assert await control.claim("w", now=10_000.0, lease=30.0) == []
    finally:
        await queue.close()


async def test_every_change_writes_the_sum(place: Any) -> None:
    """Each write of a control job (queued, registered, retried, cut short, a cancel not
    acknowledged, refused, done) stores its row's sum: nothing is set aside, and the purge
    deletes the answered jobs."""
    where = place("queue")
    queue = await open_queue(where)
    try:
        control = await Control.open(queue)
        await control.register(DEVICES[0], "meter-1", {"install_code": CODES[0]}, time=1, now=1.0)
        cancel = _cancels()[1]
        await control.enqueue([(*cancel[:4], {**cancel[4], UNTIL: 50_000.0})], now=1.0)
        answers: dict[str, list[dict[str, Any]]] = {
            "provision": [
                {"answered": False},
                {"answered": True, "cut_short": True},
                {"answered": True, "refused": "install_code: refused"},
            ],
            "cancel_message": [
                {"answered": False},
                {"answered": True, "cut_short": True},
                {"answered": True, "untold": "offline: not reached"},
                {"answered": True},
            ],
        }
        now = 10.0
        while jobs := await control.claim("w", now=now, lease=30.0):
            for job in jobs:
                answer = answers[job.kind.value].pop(0)
                assert await control.complete(job, "w", now=now, **answer)
            now += 10_000.0
        assert answers == {"provision": [], "cancel_message": []}
        rows = await raw_sql(
            where,
            "SELECT key, kind, meter, device, payload, send, state, detail, failures, tries,"
            " not_before, updated, checksum FROM headend_control ORDER BY key",
        )
        assert sorted(r[6] for r in rows) == ["done", "failed"]
        assert all(r[12] == control_sum(r[:12]) for r in rows)
        assert await control.purge(before=now + 1.0) == 2
    finally:
        await queue.close()


async def test_a_control_table_written_before_the_checksum_works_and_gets_it(
    place: Any,
) -> None:
    """A queue of the version before (no ``checksum`` column in ``headend_control``): the
    column is added at open, its jobs are claimed, answered and purged unchecked, and each
    gets its sum at its next change."""
    where = place("queue")
    queue = await open_queue(where)
    await (await Control.open(queue)).enqueue(_cancels(), now=1.0)
    await queue.close()
    await raw_sql(where, "ALTER TABLE headend_control DROP COLUMN checksum")
    queue = await open_queue(where)
    try:
        control = await Control.open(queue)
        first, second = sorted(await control.claim("w", now=2.0, lease=30.0), key=lambda j: j.key)
        assert await control.complete(first, "w", answered=True, now=3.0)
        sums = await raw_sql(where, "SELECT checksum FROM headend_control ORDER BY key")
        assert sums[0][0] is not None  # written with its change
        assert sums[1][0] is None  # leased: the claim writes no sum
        assert await control.complete(second, "w", answered=False, now=3.0)
        (again,) = await control.claim("w", now=10_000.0, lease=30.0)
        assert again.key == second.key
        assert await control.complete(again, "w", answered=True, now=10_001.0)
        assert await control.purge(before=20_000.0) == 2
    finally:
        await queue.close()
