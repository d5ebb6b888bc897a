"""Group commit in the headend worker (issue #19, the ≤ 1 ms per device goal): the meters'
answers and the devices' reports that arrive within ``linger`` seconds are recorded in one
transaction, not one each; a lone one waits the linger and no longer; enough of them (half
the batch's answers, :data:`~zse.headend.worker.REPORTS_AT_ONCE` reports) are written at
once. Both engines, on the virtual clock (the database's time holds it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from click.testing import CliRunner

from zse.cli import main
from zse.errors import StoreError
from zse.headend.core import Outcome, SendKind
from zse.headend.link import Answer, Delivery, MeterLink, Report
from zse.headend.queue import JobQueue, open_queue
from zse.headend.worker import LINGER, REPORTS_AT_ONCE, Worker

LCE = {"issuer_event_id": 7}


def devices(count: int) -> list[tuple[str, str]]:
    return [(f"000D6F00000{i:05X}", f"m{i // 3}") for i in range(count)]


class Prompt(MeterLink):
    """Meters that answer every delivery at once (DELIVERED)."""

    async def deliver(self, delivery: Delivery) -> Answer:
        return Answer(outcome=Outcome.DELIVERED)

    async def report(self, *devices: str, outcome: Outcome = Outcome.STARTED) -> None:
        """The devices' reports on send 7, handed to the worker together; back once
        recorded."""
        waits = [
            wait
            for device in devices
            for wait in self._reported(
                Report(device=device, send=7, kind=SendKind.LOAD_CONTROL, outcome=outcome)
            )
        ]
        await asyncio.gather(*waits)


@contextlib.asynccontextmanager
async def delivered(
    place: Any, count: int, *, linger: float = LINGER, batch: int = 64
) -> AsyncIterator[tuple[JobQueue, Worker, Prompt]]:
    """``count`` jobs of send 7 delivered by a worker (its link a :class:`Prompt`), each
    answer recorded."""
    queue = await open_queue(place("queue"))
    link = Prompt()
    clock = asyncio.get_running_loop().time
    worker = Worker(queue, link, owner="w", clock=clock, batch=batch, linger=linger)
    try:
        await queue.enqueue(7, SendKind.LOAD_CONTROL, LCE, devices(count), now=0.0)
        await worker.start()
        while [r for r in await queue.rows(7) if r.outcome is not Outcome.DELIVERED]:
            await asyncio.sleep(0.05)
        yield queue, worker, link
    finally:
        await worker.stop()
        await queue.close()


async def test_answers_and_reports_together_are_recorded_in_one_transaction(place: Any) -> None:
    async with delivered(place, 30) as (queue, worker, link):
        assert worker.writes() == "30 answers in 1 transactions, 0 reports in 0"
        await link.report(*(device for device, _ in devices(30)))
        rows = await queue.rows(7)
        assert {r.outcome for r in rows} == {Outcome.STARTED}
        assert worker.writes() == "30 answers in 1 transactions, 30 reports in 1"


async def test_a_lone_report_waits_the_linger_and_no_longer(place: Any) -> None:
    async with delivered(place, 1) as (queue, _, link):
        loop = asyncio.get_running_loop()
        start = loop.time()
        await link.report(devices(1)[0][0])
        # the database's own time holds the clock: the linger, to the float's last bits
        assert loop.time() - start == pytest.approx(LINGER, abs=1e-9)
        (row,) = await queue.rows(7)
        assert row.outcome is Outcome.STARTED


async def test_enough_reports_are_written_without_waiting(place: Any) -> None:
    async with delivered(place, REPORTS_AT_ONCE) as (_, worker, link):
        loop = asyncio.get_running_loop()
        start = loop.time()
        await link.report(*(device for device, _ in devices(REPORTS_AT_ONCE)))
        assert loop.time() == start
        assert worker.writes().endswith(f"{REPORTS_AT_ONCE} reports in 1")


async def test_no_linger_writes_at_once(place: Any) -> None:
    async with delivered(place, 1, linger=0.0) as (queue, _, link):
        loop = asyncio.get_running_loop()
        start = loop.time()
        await link.report(devices(1)[0][0])
        assert loop.time() == start
        (row,) = await queue.rows(7)
        assert row.outcome is Outcome.STARTED


async def refuse_updates(url: str) -> None:
    """Make the database refuse every update of the jobs (a trigger), until it is dropped."""
    from tests.postgres_server import raw_sql  # noqa: PLC0415

    await raw_sql(
        url,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'the database refuses'; END $$",
        "CREATE TRIGGER refuse BEFORE UPDATE ON headend_jobs"
        " FOR EACH ROW EXECUTE FUNCTION refuse()",
    )


async def refused(caplog: pytest.LogCaptureFixture, said: str, reported: Any) -> None:
    """Wait (a minute of the loop's time at most) until the worker said ``said``, the report
    not handled meanwhile."""
    for _ in range(600):
        if said in caplog.text:
            return
        assert not reported.done()  # not handled while not recorded
        await asyncio.sleep(0.1)
    pytest.fail(f"the worker never said {said!r}")


def test_the_worker_command_says_its_linger() -> None:
    result = CliRunner().invoke(main, ["headend", "worker", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--linger FLOAT RANGE" in result.output
    assert f"[default: {LINGER}; 0<=x<=10]" in result.output


async def test_a_report_the_database_refused_is_recorded_once_it_is_back(
    pg_place: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The database refuses the report's write (a trigger raising on every update of the
    jobs, until dropped): the worker tries it again on its back-off, and the report counts
    as handled (a link acknowledges it to the broker then) only once it is recorded."""
    from tests.postgres_server import raw_sql  # noqa: PLC0415

    async with delivered(pg_place, 1) as (queue, _, link):
        url = pg_place("queue")
        await refuse_updates(url)
        with caplog.at_level("WARNING", logger="zse.headend.worker"):
            reported = asyncio.ensure_future(link.report(devices(1)[0][0]))
            await refused(caplog, "(again in 1 s)", reported)
            await raw_sql(url, "DROP TRIGGER refuse ON headend_jobs")
            await reported
        (row,) = await queue.rows(7)
        assert row.outcome is Outcome.STARTED
        assert "the database refuses" in caplog.text


async def test_a_report_still_refused_when_the_worker_stops_is_not_handled(
    pg_place: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The database refuses the report's write until the worker stops: the stop writes it
    once more, and the report is then not handled (its StoreError: a link leaves it
    unacknowledged, for the broker to send again), logged as not recorded, never as a
    future whose exception nobody retrieved."""
    async with delivered(pg_place, 1) as (queue, worker, link):
        await refuse_updates(pg_place("queue"))
        with caplog.at_level("WARNING", logger="zse.headend.worker"):
            reported = asyncio.ensure_future(link.report(devices(1)[0][0]))
            await refused(caplog, "(again in 2 s)", reported)  # refused twice
            await worker.stop()
            with pytest.raises(StoreError, match="the database refuses"):
                await reported
        (row,) = await queue.rows(7)
        assert row.outcome is Outcome.DELIVERED  # the report not recorded
        last = caplog.records[-1].getMessage()
        assert "w: 1 reports not recorded: " in last
        assert "the database refuses" in last
        assert "again in" not in last  # the stop's write, the last
        assert "never retrieved" not in caplog.text
