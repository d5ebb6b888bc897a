"""``zse sim utility``'s worker processes end with it, however it ends, and a worker that dies
is one ``error:`` line and status 1, the other workers stopped. Real processes, a real
Mosquitto; waits are bounded (a process is waited on by its pidfd), never pauses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.test_mqtt_cli import ROOT, TIMEOUT, sub
from tests.mqtt.test_mqtt_utility import UP_WITHIN, UTILITY, _children, _Stream
from tests.zse_cli import still_running
from zse.sim.utility import meter_topic

#: Real seconds a worker has to end once its parent is gone (a bound, not a pause).
ENDS_WITHIN = 30


def worker_process(stdin: int) -> subprocess.Popen[str]:
    """A utility's worker run alone (``python -m zse.sim.utility``), its spec to come on
    ``stdin``, its standard output and error piped (text)."""
    return subprocess.Popen(
        [sys.executable, "-m", "zse.sim.utility"],
        cwd=ROOT,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def utility(broker: Broker) -> Iterator[subprocess.Popen[str]]:
    """``zse sim utility``, 2 meters of 1 device on 2 workers, at a hundredth of real time
    (a worker's timers, a poll of its own among them, hardly move), once it is ready."""
    argv = [*UTILITY, "--meters", "2", "--devices-per-meter", "1", "--workers", "2"]
    process = subprocess.Popen(
        [*argv, "--speed", "0.01", "--broker", broker.url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    workers: list[int] = []
    try:
        state = _Stream(broker, "zse/utility/state")
        try:
            state.until(lambda lines: any('"ready"' in x for x in lines), UP_WITHIN)
        finally:
            state.close()
        workers += _children(process.pid)
        assert len(workers) == 2
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=TIMEOUT)
        for pid in still_running(workers, 0):  # none left behind by a failing test
            os.kill(pid, signal.SIGKILL)


def test_a_killed_utility_leaves_no_worker_running(
    broker: Broker, utility: subprocess.Popen[str]
) -> None:
    """SIGKILL to the utility alone (``kill -9``, the OOM killer): its workers, in sessions of
    their own, noticed by polling their parent once a virtual second (100 real seconds at
    --speed 0.01, for ever when the parent died before the worker first looked); they watch
    a pipe from it now, and end at once, their bridges saying offline."""
    workers = _children(utility.pid)
    utility.kill()
    utility.wait(TIMEOUT)
    assert still_running(workers, ENDS_WITHIN) == []
    assert sorted(sub(broker, "zse/+/bridge/state", 2)) == [
        f"{meter_topic('zse', i)}/bridge/state offline" for i in range(2)
    ]


def test_a_killed_worker_is_one_error_line_and_the_others_stop(
    utility: subprocess.Popen[str],
) -> None:
    """A worker killed (the OOM killer's SIGKILL): the utility said "worker N ended (status
    -9)"; it now says the worker was killed by SIGKILL, stops the other, and ends with 1."""
    killed, other = _children(utility.pid)
    os.kill(killed, signal.SIGKILL)
    _, err = utility.communicate(timeout=TIMEOUT)
    assert (utility.returncode, err) == (1, f"error: worker {killed} was killed by SIGKILL\n")
    assert still_running([other], 0) == []


@pytest.mark.parametrize("read", [True, False], ids=["read", "closed"])
def test_a_worker_whose_parent_died_before_its_spec_says_so_in_one_line(read: bool) -> None:
    """A worker whose standard input ends before its spec (the utility killed as it spawned
    it) printed a JSONDecodeError traceback on the standard error it shares; it now says
    ``error`` on its standard output, as for any failure, and ends with 1; with no one to read
    it (the pipe closed), it says nothing (no BrokenPipeError traceback)."""
    worker = worker_process(subprocess.DEVNULL)
    assert worker.stdout is not None
    if not read:
        worker.stdout.close()
    out, err = worker.communicate(timeout=TIMEOUT)
    said = "error no spec on standard input (the utility is gone?)\n" if read else ""
    assert (worker.returncode, out or "", err) == (1, said, "")
