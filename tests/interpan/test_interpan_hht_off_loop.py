"""The HHT meter's durable log written off the event loop (the asyncio audit's open defect):
an fsync that takes long leaves the loop running other callbacks, while the command still runs
only once its ``BEGIN`` is on disk and is answered only once its ``DONE`` is, at most once, in
order, across cancellations and a kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.interpan.test_interpan_carrier_paths import (
    METER_PAN,
    over_inter_pan,
    shut_down,
)
from zse.errors import StoreError
from zse.interpan.hht import (
    DEFAULT_MANUFACTURER_CODE,
    Command,
    Execute,
    FileLog,
    HhtMeter,
    HhtTerminal,
    MemoryLog,
    Result,
    Status,
    decode,
    encode,
)
from zse.interpan.service import answer_carrier, run_terminal, serve_meter
from zse.sim import Air, run

MFR = DEFAULT_MANUFACTURER_CODE
READ = 0x02
#: Real seconds a held write waits for the test before it gives up: reached only when the
#: event loop is blocked (the defect), never when the test passes.
LIMIT = 10.0


class SlowLog(FileLog):
    """A FileLog whose appends block, in whatever thread makes them, until :attr:`release`
    is set: a disk whose fsync takes long. It counts appends that gave up (the loop that
    should release them never ran) and appends in progress at once."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.in_flight = threading.Event()
        self.release = threading.Event()
        self.gave_up = 0
        self.busy = 0
        self.overlapped = 0
        self._count = threading.Lock()

    def _append(self, record: bytes) -> None:
        with self._count:
            self.busy += 1
            self.overlapped += self.busy > 1
        try:
            self.in_flight.set()
            if not self.release.wait(LIMIT):
                self.gave_up += 1
                raise StoreError("the write was never released: the event loop was blocked")
            super()._append(record)
        finally:
            with self._count:
                self.busy -= 1


def recording(runs: list[bytes], result: bytes) -> Callable[[bytes], bytes]:
    """A command handler that records each body it runs and returns ``result``."""

    def handler(body: bytes) -> bytes:
        runs.append(body)
        return result

    return handler


def execute(txid: int, request: int = 1) -> bytes:
    return encode(Execute(request, 0, 1, Command(txid, READ)), tsn=1, manufacturer_code=MFR)


def result_of(frame: bytes) -> Result:
    _, message = decode(frame, manufacturer_code=MFR)
    assert isinstance(message, Result)
    return message


async def in_flight(log: SlowLog) -> None:
    """Until an append is blocked in its thread (a real wait, with the virtual clock held)."""
    assert await asyncio.get_running_loop().run_in_executor(None, log.in_flight.wait, LIMIT)


def test_a_slow_fsync_leaves_the_event_loop_running(tmp_path: Path) -> None:
    """Over inter-PAN (``serve_meter``): while the BEGIN of a command is being written, the
    event loop runs other callbacks (here the one that lets the write finish: with the write
    on the loop it would never run); the command has not run, and runs once its BEGIN is on
    disk; the answer leaves once the DONE is. (The simulator's loop asks for I/O on its own
    thread, ``inline_io``, so the shell is given a thread of its own here.)"""
    path = tmp_path / "hht.log"
    log = SlowLog(path)
    sizes_when_run: list[int] = []

    def read(body: bytes) -> bytes:
        sizes_when_run.append(path.stat().st_size)
        return b"\x2a"

    meter = HhtMeter(log, {READ: read})

    async def main() -> dict[str, Any]:
        air = Air(seed=5)
        app = await air.coordinator(channel=15, pan_id=METER_PAN)
        meter_svc, hht_svc = over_inter_pan(air, app)
        serving = asyncio.get_running_loop().create_task(
            serve_meter(meter_svc, meter, executor=writer)
        )
        terminal = asyncio.get_running_loop().create_task(
            run_terminal(
                hht_svc,
                HhtTerminal(1, [Command(0xB001, READ)]),
                meter=app.state.node_info.ieee,
                meter_pan_id=METER_PAN,
            )
        )
        await in_flight(log)
        meanwhile: list[tuple[int, int, bool]] = []

        def on_the_loop() -> None:  # runs while BEGIN is in flight, then lets it finish
            meanwhile.append((path.stat().st_size, len(sizes_when_run), terminal.done()))
            log.release.set()

        asyncio.get_running_loop().call_soon(on_the_loop)
        results = await terminal
        out = {"results": results, "meanwhile": meanwhile, "size": path.stat().st_size}
        await shut_down(app, serving, hht_svc, meter_svc)
        return out

    with ThreadPoolExecutor(1) as writer:
        out = run(main())
    log.close()
    assert log.gave_up == 0  # the loop ran while the write was blocked
    assert out["meanwhile"] == [(0, 0, False)]  # nothing on disk, nothing run, not answered
    begin = 1 + 9 + 4  # length, BEGIN record, CRC
    assert sizes_when_run == [begin]  # ran once, with its BEGIN on disk
    assert out["results"] == {0xB001: Result(0xB001, Status.EXECUTED, b"\x2a")}
    assert out["size"] == begin + 1 + 8 + 4  # and its DONE before the answer
    assert FileLog(path).get(0xB001) is not None


async def test_a_repeat_while_the_begin_is_written_waits_and_is_a_duplicate(
    tmp_path: Path,
) -> None:
    """The terminal's resend (or the same transaction over the network) arriving while the
    first's BEGIN is still being written takes its turn: it runs nothing, answered DUPLICATE."""
    log = SlowLog(tmp_path / "hht.log")
    runs: list[bytes] = []
    meter = HhtMeter(log, {READ: recording(runs, b"once")})
    first = asyncio.create_task(answer_carrier(meter, execute(0xC001)))
    await in_flight(log)
    repeat = asyncio.create_task(answer_carrier(meter, execute(0xC001)))
    await asyncio.sleep(0)
    assert not first.done()
    assert not repeat.done()
    assert runs == []
    log.release.set()
    assert result_of(await first) == Result(0xC001, Status.EXECUTED, b"once")
    assert result_of(await repeat) == Result(0xC001, Status.DUPLICATE, b"once")
    assert (runs, meter.executions, log.overlapped) == ([b""], 1, 0)
    log.close()


async def test_a_frame_cancelled_mid_write_leaves_the_write_to_finish_first(
    tmp_path: Path,
) -> None:
    """A frame cancelled while its BEGIN is being written (the serving task stopped): the
    write finishes in its thread, the next frame waits for it (the log's writes never
    overlap), and the command, begun but never run, is answered INTERRUPTED: never run."""
    log = SlowLog(tmp_path / "hht.log")
    runs: list[bytes] = []
    meter = HhtMeter(log, {READ: recording(runs, b"ran")})
    cancelled = asyncio.create_task(answer_carrier(meter, execute(0xD001)))
    await in_flight(log)
    cancelled.cancel()
    await asyncio.wait((cancelled,))
    assert cancelled.cancelled()
    again = asyncio.create_task(answer_carrier(meter, execute(0xD001)))
    other = asyncio.create_task(answer_carrier(meter, execute(0xD002, request=2)))
    await asyncio.sleep(0)
    assert not again.done()
    assert not other.done()
    log.release.set()
    assert result_of(await again) == Result(0xD001, Status.INTERRUPTED)
    assert result_of(await other) == Result(0xD002, Status.EXECUTED, b"ran")
    assert (runs, meter.executions, log.overlapped, log.gave_up) == ([b""], 1, 0, 0)
    log.close()


class NoThreads(Executor):
    """An executor that refuses work: a log that does no I/O must not need one."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        raise AssertionError("a MemoryLog was written off the loop")


async def test_a_memory_log_is_written_on_the_loop() -> None:
    meter = HhtMeter(MemoryLog(), {READ: lambda body: b"mem"})
    answer = await answer_carrier(meter, execute(0xE001), executor=NoThreads())
    assert result_of(answer) == Result(0xE001, Status.EXECUTED, b"mem")
    again = await answer_carrier(meter, execute(0xE001), executor=NoThreads())
    assert result_of(again) == Result(0xE001, Status.DUPLICATE, b"mem")


async def test_a_failed_write_off_the_loop_raises_and_runs_nothing(tmp_path: Path) -> None:
    """A write that fails in the executor raises StoreError from the shell, as in place:
    the command does not run."""
    log = SlowLog(tmp_path / "hht.log")
    log.release.set()
    runs: list[bytes] = []
    meter = HhtMeter(log, {READ: recording(runs, b"")})
    log.close()  # every append now fails
    with pytest.raises(StoreError, match=r"the HHT log is closed$"):
        await answer_carrier(meter, execute(0xF001))
    assert runs == []
    assert meter.executions == 0


CHILD = textwrap.dedent(
    """
    import asyncio, sys, threading
    from zse.interpan.hht import HhtMeter, FileLog
    from zse.interpan.service import answer_carrier

    def read(body):
        print("running", flush=True)
        threading.Event().wait()  # killed here, mid-command
        return b""

    meter = HhtMeter(FileLog(sys.argv[1]), {0x02: read})
    asyncio.run(answer_carrier(meter, bytes.fromhex(sys.argv[2])))
    """
)


def test_kill_9_mid_command_through_the_shell_never_runs_it_again(tmp_path: Path) -> None:
    """A meter process killed (SIGKILL) while a command runs, its BEGIN written off the loop:
    after the restart the command is answered INTERRUPTED and never run again."""
    path = tmp_path / "hht.log"
    frame = execute(0xA0A0)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), frame.hex()],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "running\n"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(LIMIT)
        assert child.stdout is not None
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    runs: list[bytes] = []
    meter = HhtMeter(FileLog(path), {READ: recording(runs, b"again")})
    assert result_of(meter.receive(frame)) == Result(0xA0A0, Status.INTERRUPTED)
    assert runs == []
    assert meter.executions == 0


def test_on_the_simulators_loop_the_log_is_written_on_its_thread(tmp_path: Path) -> None:
    """With no executor given, a loop that asks for its I/O on its own thread (``inline_io``,
    :class:`zse.sim.VirtualClockLoop` by default) gets the log written there: a simulation's
    order of events, and so its capture, depends on the program alone, not on a thread."""
    log = FileLog(tmp_path / "hht.log")
    threads: list[int] = []
    meter = HhtMeter(log, {READ: recording([], b"here")})
    original = log._append

    def append(record: bytes) -> None:
        threads.append(threading.get_ident())
        original(record)

    log._append = append  # type: ignore[method-assign]

    async def main() -> bytes:
        return await answer_carrier(meter, execute(0xE001))

    answer = run(main())
    log.close()
    assert result_of(answer) == Result(0xE001, Status.EXECUTED, b"here")
    assert threads == [threading.get_ident()] * 2  # BEGIN and DONE, on the loop's thread
