"""#13.2: the one timer driver of a shell (:class:`zse.zcl.timer.Timer`), on virtual time.

The cores here are real sans-IO objects with deadlines, as small as the driver's contract:
``next_deadline()`` in their own time base and ``handle_timeout(now)`` returning what is due.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.services.test_drlc_report_delay import RecordingEndpoint, client_of, event_frame
from zse.drlc import Status
from zse.zcl.timer import Timer

START = 800_000_000


class Alarms:
    """A core of alarms in its own time base: each fires once, at or after its time."""

    def __init__(self, *times: float) -> None:
        self.times = sorted(times)
        self.calls: list[float] = []

    def set(self, *times: float) -> None:
        self.times = sorted(times)

    def next_deadline(self) -> float | None:
        return self.times[0] if self.times else None

    def handle_timeout(self, now: float) -> list[float]:
        self.calls.append(now)
        due = [t for t in self.times if t <= now]
        self.times = [t for t in self.times if t > now]
        return due


def utc_clock() -> int:
    """ZigBee time in whole seconds on the loop's clock (as the simulator's shells use)."""
    return START + int(asyncio.get_running_loop().time())


def recorder(fired: list[tuple[float, list[float]]]):
    def on_timeout(due: list[float]) -> None:
        fired.append((asyncio.get_running_loop().time(), due))

    return on_timeout


def started(core: Alarms) -> Timer:
    """A started "test timer" on ``core`` (loop time), whose results nobody looks at."""
    timer = Timer("test timer")
    timer.add(core, recorder([]))
    timer.start()
    return timer


async def test_fires_at_the_loop_time_deadline_and_re_arms_for_the_next():
    loop = asyncio.get_running_loop()
    core = Alarms(loop.time() + 10, loop.time() + 25)
    fired: list[tuple[float, list[float]]] = []
    timer = Timer("test")
    timer.add(core, recorder(fired))
    timer.start()
    t0 = loop.time()
    assert timer.deadline == t0 + 10
    await asyncio.sleep(30)
    assert fired == [(t0 + 10, [t0 + 10]), (t0 + 25, [t0 + 25])]
    assert timer.deadline is None
    await timer.stop()


async def test_no_deadline_arms_nothing_and_never_calls_the_core():
    core = Alarms()
    timer = Timer("test")
    timer.add(core, recorder([]))
    timer.start()
    assert timer.deadline is None
    await asyncio.sleep(3600)
    assert core.calls == []
    await timer.stop()


async def test_update_re_arms_earlier_and_later():
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    core = Alarms(t0 + 100)
    fired: list[tuple[float, list[float]]] = []
    timer = Timer("test")
    timer.add(core, recorder(fired))
    timer.start()
    core.set(t0 + 5)  # an input moved it earlier
    timer.update()
    assert timer.deadline == t0 + 5
    await asyncio.sleep(6)
    assert fired == [(t0 + 5, [t0 + 5])]
    core.set(t0 + 20)
    timer.update()
    core.set(t0 + 40)  # and later again, before the first one is due
    timer.update()
    await asyncio.sleep(30)
    assert len(fired) == 1  # nothing at t0 + 20
    await asyncio.sleep(10)
    assert fired[1:] == [(t0 + 40, [t0 + 40])]
    await timer.stop()


async def test_a_deadline_in_the_past_fires_at_once():
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    core = Alarms(t0 - 50)
    fired: list[tuple[float, list[float]]] = []
    timer = Timer("test")
    timer.add(core, recorder(fired))
    timer.start()
    await asyncio.sleep(1)
    assert fired == [(t0, [t0 - 50])]  # at t0, not a second later
    await timer.stop()


async def test_stop_disarms_and_cancels_a_running_timeout_and_start_arms_again():
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    core = Alarms(t0 + 10)
    finished: list[float] = []

    async def slow(_: list[float]) -> None:
        await asyncio.sleep(100)
        finished.append(loop.time())

    timer = Timer("test")
    timer.add(core, slow)
    timer.start()
    timer.close()
    assert timer.deadline is None
    await asyncio.sleep(20)
    assert core.calls == []  # disarmed: never fired
    core.set(t0 + 30)
    timer.start()
    await asyncio.sleep(15)  # the timeout runs (t0 + 30) and is stopped mid-way
    assert core.calls == [t0 + 30]
    await timer.stop()
    await asyncio.sleep(200)
    assert finished == []
    assert timer.deadline is None


async def test_a_core_on_zigbee_time_is_converted_to_loop_time():
    """UTCTime deadlines (whole seconds from the shell's clock) fire when that clock reaches
    them, converted to loop time in the driver."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(3.25)  # the loop's clock between two ticks of the ZigBee clock
    core = Alarms(utc_clock() + 60)
    fired: list[tuple[float, list[float]]] = []
    timer = Timer("test")
    timer.add(core, recorder(fired), clock=utc_clock)
    timer.start()
    assert timer.deadline == loop.time() + 60
    await asyncio.sleep(61)
    assert fired == [(pytest.approx(63.25), [START + 63])]
    assert core.calls == [START + 63]  # ``now`` is in the core's own time base
    await timer.stop()


async def test_a_clock_lagging_the_loop_is_not_asked_early():
    """If the shell's clock has not reached the deadline when the loop's timer fires, the core
    is not called; the timer re-arms for the rest."""
    loop = asyncio.get_running_loop()
    lag = [5]

    def late_clock() -> int:
        return START + int(loop.time()) - lag[0]

    core = Alarms(START + 10)
    timer = Timer("test")
    timer.add(core, recorder([]), clock=late_clock)
    lag[0] = 0
    timer.start()  # converted at t=0 to loop time 10
    lag[0] = 5
    await asyncio.sleep(12)
    assert core.calls == []  # at 10 the clock read START + 5
    await asyncio.sleep(5)
    assert core.calls == [START + 10]  # re-armed, due at 15
    await timer.stop()


async def test_two_time_bases_one_armed_timer_and_a_firing_does_not_move_the_other():
    """A shell with a ZigBee-time core and a loop-time queue arms one timer at the earlier;
    when the queue fires, the core's converted deadline stays where it was."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.5)
    zigbee = Alarms(utc_clock() + 60)
    queue = Alarms(loop.time() + 0.75)
    fired: list[tuple[float, list[float]]] = []
    timer = Timer("test")
    timer.add(zigbee, recorder(fired), clock=utc_clock)
    timer.add(queue, recorder(fired))
    timer.start()
    assert timer.deadline == 1.25
    await asyncio.sleep(1)
    assert timer.deadline == 60.5  # not 1.25 + 60
    await asyncio.sleep(60)
    assert [at for at, _ in fired] == [1.25, 60.5]
    await timer.stop()


async def test_a_callback_error_is_logged_and_the_timer_keeps_working(caplog):
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    core = Alarms(t0 + 1, t0 + 2)
    fired: list[list[float]] = []

    async def on_timeout(due: list[float]) -> None:
        if not fired:
            fired.append(due)
            raise RuntimeError("display went away")
        fired.append(due)

    timer = Timer("test timer", logger=logging.getLogger("zse.test"))
    timer.add(core, on_timeout)
    timer.start()
    with caplog.at_level(logging.ERROR, logger="zse.test"):
        await asyncio.sleep(5)
    assert fired == [[t0 + 1], [t0 + 2]]
    assert [r.getMessage() for r in caplog.records] == ["test timer: display went away"]
    await timer.stop()


async def test_a_core_that_raises_is_not_asked_again_until_the_next_input(caplog):
    """No busy loop: a deadline whose handling raised waits for :meth:`Timer.update`."""
    t0 = asyncio.get_running_loop().time()
    calls: list[float] = []

    class Broken(Alarms):
        def handle_timeout(self, now: float) -> list[float]:
            calls.append(now)
            raise ValueError("corrupt table")

    core = Broken(t0 + 1)
    timer = started(core)
    with caplog.at_level(logging.ERROR, logger="zse.zcl.timer"):
        await asyncio.sleep(10)
    assert calls == [t0 + 1]
    assert timer.deadline is None
    timer.update()  # an input: try again
    await asyncio.sleep(1)
    assert calls == [t0 + 1, t0 + 10]
    assert "test timer: corrupt table" in caplog.text
    await timer.stop()


async def test_a_source_with_retry_is_tried_again_that_much_later(caplog):
    """A deadline whose callback failed (a store write), the core put back as it was, is tried
    again ``retry`` seconds later, then every ``retry`` seconds while it fails, and no sooner;
    another source's deadline meanwhile is not held back; on ZigBee time too."""
    loop = asyncio.get_running_loop()
    t0 = utc_clock()
    tries: list[float] = []
    other_at = loop.time() + 40
    other = Alarms(other_at)
    fired: list[tuple[float, list[float]]] = []

    class PutBack(Alarms):
        def handle_timeout(self, now: float) -> list[float]:
            tries.append(loop.time())
            if len(tries) < 3:
                raise OSError("disk full")  # nothing applied: still due
            return super().handle_timeout(now)

    core = PutBack(t0 + 5)
    timer = Timer("test timer")
    timer.add(core, recorder(fired), clock=utc_clock, retry=30)
    timer.add(other, recorder(fired))
    timer.start()
    with caplog.at_level(logging.ERROR, logger="zse.zcl.timer"):
        await asyncio.sleep(100)
    assert [round(t) for t in tries] == [5, 35, 65]
    assert [(round(at), due) for at, due in fired] == [(40, [other_at]), (65, [t0 + 5])]
    assert caplog.text.count("test timer: disk full") == 2
    assert timer.deadline is None
    await timer.stop()


async def test_the_timeout_takes_the_shells_lock_and_one_runs_at_a_time():
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    core = Alarms(t0 + 1, t0 + 2)
    lock = asyncio.Lock()
    log: list[tuple[str, float]] = []

    async def on_timeout(due: list[float]) -> None:
        log.append(("timeout", loop.time()))
        await asyncio.sleep(3)  # still running when the next deadline comes
        log.append(("done", loop.time()))

    timer = Timer("test")
    timer.add(core, on_timeout, lock=lock)
    timer.start()
    async with lock:
        await asyncio.sleep(1.5)  # an input holds the lock past the first deadline
        log.append(("input", loop.time()))
    await asyncio.sleep(10)
    assert log == [
        ("input", t0 + 1.5),
        ("timeout", t0 + 1.5),  # waited for the lock
        ("done", t0 + 4.5),
        ("timeout", t0 + 4.5),  # the second deadline waited for the first timeout to end
        ("done", t0 + 7.5),
    ]
    assert core.calls == [t0 + 1.5, t0 + 4.5]
    await timer.stop()


async def test_a_started_drlc_client_keeps_no_task_of_its_own():
    """The DRLC client's two loops are gone: after start it holds one armed timer, which still
    sends Completed at the event's end and a held-back report after its delay."""
    endpoint = RecordingEndpoint()
    client = client_of(endpoint, utc_clock, 3, 2.0)
    before = asyncio.all_tasks()
    await client.start(get_scheduled_events=False)
    await endpoint.handlers[0](event_frame(1, 1))
    assert asyncio.all_tasks() == before
    await asyncio.sleep(120)
    statuses = [payload[4] for _, command, payload in endpoint.sent if command == 0x00]
    assert statuses == [Status.RECEIVED, Status.STARTED, Status.COMPLETED]
    assert 60 <= endpoint.sent[-1][0] - endpoint.sent[0][0] <= 62
    await client.stop()
    assert asyncio.all_tasks() == before


async def test_a_core_whose_deadline_fails_is_logged_not_left_to_asyncio(caplog):
    """A core that cannot say its next deadline after a timeout: one line in the log, nothing
    for asyncio's "exception was never retrieved", and the next input arms the timer again."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    unhandled: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))

    class Flaky(Alarms):
        broken = False

        def next_deadline(self) -> float | None:
            if self.broken:
                raise ValueError("table unreadable")
            return super().next_deadline()

        def handle_timeout(self, now: float) -> list[float]:
            self.broken = True
            return super().handle_timeout(now)

    core = Flaky(t0 + 1)
    timer = started(core)
    with caplog.at_level(logging.ERROR, logger="zse.zcl.timer"):
        await asyncio.sleep(5)
    assert caplog.messages == ["test timer: not re-armed: table unreadable"]
    core.broken = False
    core.set(t0 + 8)
    timer.update()
    await asyncio.sleep(5)
    assert core.calls == [t0 + 1, t0 + 8]
    await timer.stop()
    assert unhandled == []


async def test_stop_passes_on_the_callers_own_cancellation():
    """stop() swallows the cancelled timeout's CancelledError, never its caller's: a shutdown
    that cancels the task waiting in stop() while the timeout cleans up must end that task."""
    loop = asyncio.get_running_loop()
    core = Alarms(loop.time() + 1)

    async def cleans_up_slowly(_: list[float]) -> None:
        try:
            await asyncio.sleep(100)
        finally:
            await asyncio.sleep(10)  # cleanup that outlasts the caller's patience

    timer = Timer("test")
    timer.add(core, cleans_up_slowly)
    timer.start()
    await asyncio.sleep(2)  # the timeout is running
    after_stop: list[float] = []

    async def shutdown() -> None:
        await timer.stop()
        after_stop.append(loop.time())

    task = asyncio.create_task(shutdown())
    await asyncio.sleep(1)  # waiting in stop() for the cleanup
    task.cancel()
    await asyncio.wait({task})
    assert task.cancelled()
    assert after_stop == []


async def test_stop_returns_normally_when_only_the_timeout_was_cancelled():
    loop = asyncio.get_running_loop()
    core = Alarms(loop.time() + 1)

    async def slow(_: list[float]) -> None:
        await asyncio.sleep(100)

    timer = Timer("test")
    timer.add(core, slow)
    timer.start()
    await asyncio.sleep(2)
    await timer.stop()  # raises nothing: the CancelledError was the timeout's
    assert asyncio.current_task().cancelling() == 0


async def test_afterwards_run_with_the_lock_let_go_and_stop_lets_them_finish():
    """An ``on_timeout`` that gives back work for afterwards: it runs once the source's lock is
    let go (so it may take the lock: a listener of what the timeout did, which uses the shell),
    before the next source; a stop that comes meanwhile lets it finish and stops the rest of
    that timeout (what it tells was stored: cancelling it would leave it untold)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    lock = asyncio.Lock()
    log: list[tuple[str, float]] = []

    async def telling(due: list[float]) -> None:
        async with lock:  # taken again: the timer let it go
            log.append(("told", loop.time()))
        await asyncio.sleep(5)  # a stop comes meanwhile
        log.append(("told all", loop.time()))

    def on_timeout(due: list[float]):
        assert lock.locked()
        log.append(("timeout", loop.time()))
        return lambda: telling(due)

    def second(due: list[float]) -> None:
        log.append(("second", loop.time()))

    timer = Timer("test")
    timer.add(Alarms(t0 + 1), on_timeout, lock=lock)
    timer.add(Alarms(t0 + 1), second, lock=lock)
    timer.start()
    await asyncio.sleep(2)
    await timer.stop()
    assert log == [("timeout", t0 + 1), ("told", t0 + 1), ("told all", t0 + 6)]
    assert timer.deadline is None
    timer.start()  # the second source, not reached, is due again
    await asyncio.sleep(1)
    assert log[-1] == ("second", t0 + 6)
    await timer.stop()
