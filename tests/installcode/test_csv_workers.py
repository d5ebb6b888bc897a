"""``zse installcode --csv -j N`` and its worker processes, with real processes throughout: the
workers end with the command, however it ends (SIGKILL too); a worker killed (as the kernel's
OOM killer does) is one ``error:`` line and status 1, never a traceback; a signal that comes
once every row is written cuts nothing, and the run says so; a run with no valid row leaves
``-o FILE`` as it was. Waits are bounded, never pauses (a process is waited on by its pidfd)."""

from __future__ import annotations

import fcntl
import functools
import os
import re
import resource
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.installcode.csv_runs import CHUNK_ROWS, ROWS, Start, device_rows
from tests.zse_cli import TIMEOUT, descendants, run_zse, still_running

#: Real seconds a worker has to end once its parent is gone (a bound, not a pause).
ENDS_WITHIN = 20
PREVIOUS = "eui64,install_code,link_key\nthe previous file\n"


def _working(process: subprocess.Popen[bytes]) -> bytes:
    """The first 64 KiB of the run's output: read once its workers have checked a chunk (the
    backlog of chunks submitted, the rest waiting behind a full pipe)."""
    assert process.stdout is not None
    first = process.stdout.read(1 << 16)
    assert len(first) == 1 << 16
    return first


def _workers(process: subprocess.Popen[bytes]) -> list[int]:
    """The worker processes of a run: the children of its forkserver."""
    (server,) = (  # its workers, forked from it, have the same command line
        pid
        for pid in _children(process.pid)
        if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    )
    return _children(server)


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_killed_command_leaves_no_worker_running(start: Start, devices: Path) -> None:
    """SIGKILL to the command alone (an OOM kill, ``kill -9``, a supervisor's timeout): its
    workers lived on, blocked for ever on the task queue they hold both ends of (the forkserver
    and the resource tracker end on their own); each now ends once its parent is gone."""
    process = start("installcode", "--csv", str(devices), "-j", "2")
    _working(process)
    below = descendants(process.pid)
    assert len(_workers(process)) == 2
    process.kill()
    process.wait(TIMEOUT)
    assert still_running(below, ENDS_WITHIN) == []


@pytest.fixture(scope="module")
def many_chunks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 chunks: more than the 8 two workers are given at first, so the run needs the pool
    again after its first write."""
    return device_rows(tmp_path_factory.mktemp("many") / "devices.csv", 11 * CHUNK_ROWS + 100)


def _valid_rows(output: bytes) -> int:
    """The rows of a whole output (its header aside), each checked for its 4 cells."""
    assert output.endswith(b"\n"), output[-80:]
    lines = output.decode().splitlines()
    assert lines[0] == "eui64,install_code,label,link_key"
    assert all(len(line.split(",")) == 4 for line in lines[1:])
    return len(lines) - 1


def test_a_killed_worker_is_one_error_line_and_status_1(start: Start, many_chunks: Path) -> None:
    """A worker killed midway (as by the OOM killer) printed the pool's BrokenProcessPool
    traceback; it is now one line saying what happened and where the output ends."""
    process = start("installcode", "--csv", str(many_chunks), "-j", "2")
    first = _working(process)
    worker = _workers(process)[0]
    os.kill(worker, signal.SIGKILL)
    rest, errors = process.communicate(timeout=TIMEOUT)
    rows = _valid_rows(first + rest)
    assert rows < 11 * CHUNK_ROWS + 100
    said = (
        "error: a worker process ended abruptly (killed, out of memory?): standard output "
        f"ends early, after {rows} valid rows, at a row boundary\n"
    )
    assert (process.returncode, errors.decode()) == (1, said)


def _until(seconds: float, condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds within ``seconds`` real seconds (a bound, checked every 20
    ms: a process's state in ``/proc`` can only be polled)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        select.select([], [], [], 0.02)
    return True


def _sending(pid: int) -> bool:
    """Whether ``pid`` is blocked writing to a full Unix socket (Linux's ``wchan``)."""
    return Path(f"/proc/{pid}/wchan").read_text() == "sock_alloc_send_pskb"


def _at_work(pid: int) -> bool:
    """Whether the worker ``pid`` is past its start: its standard error is silenced. Before
    that it is still Python's multiprocessing starting it, which prints its own traceback
    when it fails (out of memory importing zse, for one)."""
    return os.readlink(f"/proc/{pid}/fd/2") == os.devnull


def test_a_worker_killed_midway_through_its_answer_is_one_error_line(
    start: Start, many_chunks: Path
) -> None:
    """The command's output not read, every worker ends up blocked sending its answer (a
    chunk's rows are more than a socket holds); one killed there leaves half an answer behind.
    With ``concurrent.futures`` the workers shared one result pipe, where half a message was
    waited on for ever (the hang a worker out of memory midway through its answer caused, once
    in some runs of the test above); each worker's connection is now its own, whose end says
    the worker is gone."""
    process = start("installcode", "--csv", str(many_chunks), "-j", "2")
    first = _working(process)  # then not read: the command blocks writing the next rows
    workers = _workers(process)
    assert all(_until(TIMEOUT, functools.partial(_sending, worker)) for worker in workers)
    os.kill(workers[-1], signal.SIGKILL)
    rest, errors = process.communicate(timeout=TIMEOUT)
    rows = _valid_rows(first + rest)
    said = (
        "error: a worker process ended abruptly (killed, out of memory?): standard output "
        f"ends early, after {rows} valid rows, at a row boundary\n"
    )
    assert (process.returncode, errors.decode()) == (1, said)


def test_a_worker_out_of_memory_is_one_error_line_and_status_1(
    start: Start, many_chunks: Path
) -> None:
    """Workers out of memory (their address space capped at its size, by prlimit, as a
    cgroup's limit does): MemoryError in a worker's check is said in one line, and one
    raised as the worker takes its next chunk, or midway through its answer, ends it (said in
    one line too; the command hung in some runs: see the test above); the dying worker printed
    its traceback ("Process ForkServerProcess-2: ... MemoryError") beside the error line.
    The workers are capped once at work: one still starting is multiprocessing's, which says
    its own failures."""
    process = start("installcode", "--csv", str(many_chunks), "-j", "2")
    first = _working(process)
    for worker in _workers(process):
        assert _until(TIMEOUT, functools.partial(_at_work, worker))
        status = Path(f"/proc/{worker}/status").read_text()
        size = int(re.search(r"VmSize:\s+(\d+) kB", status)[1]) * 1024  # type: ignore[index]
        resource.prlimit(worker, resource.RLIMIT_AS, (size, size))
    rest, errors = process.communicate(timeout=TIMEOUT)
    rows = _valid_rows(first + rest)
    said = re.fullmatch(
        r"error: a worker process (ended abruptly \(killed, out of memory\?\)|failed: "
        r"MemoryError): standard output ends early, after (\d+) valid rows, at a row boundary\n",
        errors.decode(),
    )
    assert said, errors.decode()
    assert (process.returncode, int(said[2])) == (1, rows)


#: A file whose last chunk is full (8 chunks of 4096 rows): known to be the last only once the
#: next is asked for, and found to be none.
FULL_CHUNKS = 8 * CHUNK_ROWS


@pytest.fixture(scope="module")
def full_chunks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return device_rows(tmp_path_factory.mktemp("full") / "devices.csv", FULL_CHUNKS)


@pytest.fixture(scope="module", params=[ROWS, FULL_CHUNKS], ids=["short-last", "full-last"])
def last_chunk(
    request: pytest.FixtureRequest, devices: Path, complete: bytes, full_chunks: Path
) -> tuple[int, Path, bytes]:
    """A file of :data:`ROWS` rows (its last chunk short) or of :data:`FULL_CHUNKS`: its row
    count, path and complete output."""
    if request.param == ROWS:
        return ROWS, devices, complete
    done = run_zse("installcode", "--csv", str(full_chunks), "-j", "1")
    assert done.returncode == 0, done.stderr
    return FULL_CHUNKS, full_chunks, done.stdout.encode()


def _up_to_the_last_chunk(process: subprocess.Popen[bytes], rows: int, complete: bytes) -> bytes:
    """The output read up to the first byte of its last chunk of rows, which is then being
    written (the rest held up in a full pipe)."""
    assert process.stdout is not None
    lines = complete.splitlines(keepends=True)
    last = len(b"".join(lines[: 1 + (rows - 1) // CHUNK_ROWS * CHUNK_ROWS]))  # where it starts
    pipe = fcntl.fcntl(process.stdout, fcntl.F_GETPIPE_SZ)
    assert len(complete) - last > pipe + 1  # the last write cannot end before it is read
    first = b""  # read unbuffered: communicate() reads the descriptor, not a buffer
    while len(first) <= last:
        first += os.read(process.stdout.fileno(), last + 1 - len(first))
    return first


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_last_write_cuts_nothing(
    start: Start, last_chunk: tuple[int, Path, bytes], jobs: str, signum: int
) -> None:
    """Signalled while the last chunk of rows is written: the output is whole, and the run
    said "interrupted: standard output ends early" with 128 + the signal; now it ends as a
    complete run, and says it was signalled after the last row. A last chunk that is full
    was not known as the last while it was written with -j 1 (the next was asked for only
    afterwards): the hostile review of the pool found it."""
    rows, devices, complete = last_chunk
    process = start("installcode", "--csv", str(devices), "-j", jobs)
    first = _up_to_the_last_chunk(process, rows, complete)
    process.send_signal(signum)
    rest, errors = process.communicate(timeout=TIMEOUT)
    name = signal.Signals(signum).name
    said = (
        f"{rows} rows: {rows} valid, 0 invalid\n"
        f"{name} came once every row was written: the output is complete\n"
    )
    assert first + rest == complete
    assert (process.returncode, errors.decode()) == (0, said)


def test_workers_stopped_after_their_last_answer_do_not_hang_the_run(
    start: Start, devices: Path, complete: bytes
) -> None:
    """Every answer in (the last chunk being written), the workers are stopped (SIGSTOP, a
    debugger, a frozen cgroup): the run waited for them to end on their own for ever, and
    SIGINT and SIGTERM, which once every row is written end nothing, did not end it either;
    workers with nothing left to do are now killed, stopped or not."""
    process = start("installcode", "--csv", str(devices), "-j", "2")
    first = _up_to_the_last_chunk(process, ROWS, complete)
    workers = _workers(process)
    assert len(workers) == 2
    for worker in workers:
        os.kill(worker, signal.SIGSTOP)
    rest, errors = process.communicate(timeout=TIMEOUT)
    assert first + rest == complete
    assert (process.returncode, errors.decode()) == (0, f"{ROWS} rows: {ROWS} valid, 0 invalid\n")


def _one_device(tmp_path: Path, code: str) -> tuple[Path, Path]:
    """A devices CSV of one device with install code ``code``, and where its keys go."""
    source = tmp_path / "devices.csv"
    source.write_text(f"eui64,install_code\n001BC50000000001,{code}\n")
    return source, tmp_path / "keys.csv"


def test_no_valid_row_leaves_the_output_file_as_it_was(tmp_path: Path) -> None:
    """Every row invalid (a wrong file, a misprinted batch): ``-o keys.csv`` was replaced by an
    empty file, the previous run's link keys lost for nothing; it is kept now, and said so."""
    source, out = _one_device(tmp_path, "83FED3407A932B71")  # its CRC wrong
    out.write_text(PREVIOUS)
    done = run_zse("installcode", "--csv", str(source), "-o", str(out))
    assert out.read_text() == PREVIOUS
    assert sorted(path.name for path in tmp_path.iterdir()) == ["devices.csv", "keys.csv"]
    assert done.returncode == 2
    assert re.fullmatch(
        r"line 2: .*\n1 row: 0 valid, 1 invalid\n"
        rf"--output {re.escape(str(out))} left as it was: no valid row to write\n",
        done.stderr,
    ), done.stderr


def test_workers_that_cannot_start_are_one_error_line(tmp_path: Path) -> None:
    """No file may be written (a file size limit of 0, as on a full disk), so the forkserver
    finds no usable temporary directory for its socket: the run was "error:
    FileNotFoundError: No usable temporary directory ...", the exception's name as for a fault
    of zse's own. It is said as a worker that cannot start, the output left as it was."""
    source, out = _one_device(tmp_path, "83FED3407A932B70")
    done = run_zse("installcode", "--csv", str(source), "-j", "2", "-o", str(out), limit=0)
    assert done.returncode == 1
    assert re.fullmatch(
        r"error: cannot start a worker process: No usable temporary directory found in .*: "
        rf"--output {re.escape(str(out))} left as it was\n",
        done.stderr,
    ), done.stderr
    assert not out.exists()
