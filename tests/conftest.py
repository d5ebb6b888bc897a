"""Shared fixtures: the spec's vectors, copied from ../shared/vectors."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import gc
import itertools
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

VECTORS = Path(__file__).parent / "vectors"

# Property tests judge what the code does, never how fast: on a loaded 2-core CI machine
# (the other interpreters' shares run side by side) a draw or an example can take seconds,
# which Hypothesis's deadline and "too slow" health check took for failures
# (tests/metering/test_metering_mirror.py, 2026-12-06). Performance is measured in
# benchmarks/. A test's own @settings still overrides the rest.
settings.register_profile("zse", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("zse")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--interpreter-share",
        metavar="K/N",
        help="run only the K-th of N shares of the selected tests, dealt in turn in collection "
        "order (the other interpreters split the suite between them: docs/adr/0026)",
    )


def interpreter_share(text: str) -> tuple[int, int]:
    """``K/N`` as (K, N), 1 <= K <= N; a :class:`pytest.UsageError` naming the value if not."""
    match = re.fullmatch(r"([0-9]+)/([0-9]+)", text)  # ASCII digits ("²".isdigit() is true)
    if match and 1 <= int(match[1]) <= int(match[2]):
        return int(match[1]), int(match[2])
    raise pytest.UsageError(f"--interpreter-share {text!r}: expected K/N with 1 <= K <= N")


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected theirs
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--interpreter-share K/N``: every N-th test from the K-th on, so that N runs side by
    side (one per interpreter) each take a like share of every file, slow ones included,
    and together run each test once."""
    text = config.getoption("--interpreter-share")
    if text is None:
        return
    k, n = interpreter_share(text)
    kept = [item for i, item in enumerate(items) if i % n == k - 1]
    left = [item for i, item in enumerate(items) if i % n != k - 1]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


#: Real seconds a test may take before it is taken as hung (the slowest take about a minute on
#: the 2-vCPU CI machine); ``ZSE_TEST_HUNG_AFTER`` sets it (the guard's own test).
HUNG_AFTER = float(os.environ.get("ZSE_TEST_HUNG_AFTER", "300"))
#: The xdist workers' input naming the directory of the run's hung-test reports, made by the
#: controller (:func:`pytest_configure_node`): one file per worker, with the test it runs. An
#: input, not the environment: a pytest that a test runs would write into it too.
HUNG_DIR = "zse_hung_dir"
_hung: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # tests may run here: where a hang is said
        # a copy of standard error as it is now, before pytest captures it around each test
        _hung["stderr"] = open(os.dup(2), "w", encoding="utf-8")  # noqa: SIM115 - the run's


@pytest.hookimpl(optionalhook=True)  # an xdist hook, absent with -p no:xdist
def pytest_configure_node(node: Any) -> None:
    """The xdist controller: its workers' hung-test reports in a directory of the run's."""
    if "made" not in _hung:
        _hung["made"] = tempfile.mkdtemp(prefix="zse-hung-")
    node.workerinput[HUNG_DIR] = _hung["made"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The stacks of the tests that hung in the workers (:func:`hung_test_ends`), after the
    failures."""
    made = _hung.get("made")
    if made is None:
        return
    for report in sorted(Path(made).glob("*.txt")):
        text = report.read_text(errors="replace")
        if text:
            terminalreporter.section("hung test", sep="=")
            terminalreporter.write(text)


def pytest_unconfigure(config: pytest.Config) -> None:
    """The reports' directory removed however the run ended (``--markers`` has no summary),
    the files the hung-test reports go to closed."""
    made = _hung.pop("made", None)
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)
    for opened in ("stderr", "file"):  # a worker's report file too (a ResourceWarning)
        handle = _hung.pop(opened, None)
        if handle is not None:
            handle.close()


def _hung_file(config: pytest.Config) -> Any:
    """Where this process says a hung test (faulthandler writes it from C): its report in the
    controller's directory for an xdist worker, opened once; else standard error."""
    made = getattr(config, "workerinput", {}).get(HUNG_DIR)
    if made is None:
        return _hung["stderr"]
    if "file" not in _hung:
        path = Path(made) / f"{os.getpid()}.txt"
        _hung["file"] = path.open("w", encoding="utf-8")  # the process's, for its life
    return _hung["file"]


@pytest.fixture(autouse=True)
def hung_test_ends(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test still running after :data:`HUNG_AFTER` real seconds ends its process, every
    thread's stack written first: a test on the virtual clock awaiting what never comes ran
    virtual time on for ever (it never failed on its own), and CI stopped at its own limit,
    saying nothing of where. Under xdist the stacks go, under the test's name, to the run's
    summary; the test is reported failed ("worker crashed while running") and a new worker
    runs the rest. In one process (``-p no:xdist``, ``-n 0``) they go to standard error (the
    test is their innermost frame) as the run ends, with status 1."""
    report = _hung_file(request.config)
    named = report is not _hung.get("stderr")
    if named:
        report.seek(0)
        report.truncate()
        report.write(f"{request.node.nodeid}: still running after {HUNG_AFTER:g} s\n")
        report.flush()
    faulthandler.dump_traceback_later(HUNG_AFTER, exit=True, file=report)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        if named:
            report.seek(0)
            report.truncate()


def load_vectors(name: str) -> Any:
    """A vector file from tests/vectors/."""
    return json.loads((VECTORS / name).read_text())


@pytest.fixture(scope="session")
def installcode_vectors() -> Any:
    return load_vectors("installcode.json")


@pytest.fixture(scope="session")
def mmo_vectors() -> Any:
    return load_vectors("mmo.json")


def _store_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


def _database_files() -> set[tuple[str, str]]:
    """This process's open descriptors on ``*.db`` files: (descriptor, path). An SQLite store
    holds its file's single-writer lock on one of its own until closed; none is lost to the
    collector, so a store left open shows here even when it runs on the loop's thread (the
    virtual-time loop's, which starts no aiosqlite thread). Empty where /proc is not."""
    found = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.endswith(".db"):
                    found.add((fd, target))
    return found


@pytest.fixture(autouse=True)
def no_store_left_open() -> Iterator[None]:
    """Every test closes the stores it opens: aiosqlite's worker thread is not a daemon, and one
    left running keeps the interpreter from exiting (a hang at Ctrl-C or at the end of a run);
    a store on the loop's thread would keep its descriptors and its lock."""
    before = set(_store_threads())
    files = _database_files()
    yield
    left = [t for t in _store_threads() if t not in before]
    for thread in left:
        thread.join(timeout=5)  # a close may still be finishing on its thread
    still = [t.name for t in left if t.is_alive()]
    assert not still, f"a store was left open ({len(still)} aiosqlite thread(s) still running)"
    if _database_files() - files:  # garbage not yet collected (a cancelled aiosqlite open's
        gc.collect()  # connection, in a cycle) is not a store left open: collected only then
    open_files = sorted({Path(path).name for _, path in _database_files() - files})
    assert not open_files, f"a store was left open (its file still open: {', '.join(open_files)})"


@pytest.fixture
async def registry(tmp_path: Path) -> Any:
    """A HAN registry in a fresh file, its clock counting seconds from 2023-11-14."""
    from zse.provisioning.registry import HanRegistry  # noqa: PLC0415

    clock = itertools.count(1_700_000_000)
    han = await HanRegistry.open(tmp_path / "han.db", clock=lambda: float(next(clock)))
    yield han
    await han.close()


@pytest.fixture
async def unretrieved() -> AsyncIterator[list[dict[str, Any]]]:
    """What reaches asyncio's exception handler during the test ("Task exception was never
    retrieved" and the like); checked empty after the test, once collected tasks reported."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: seen.append(context))
    yield seen
    gc.collect()  # an unretrieved task exception is reported when the task is collected
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert [c.get("message") for c in seen] == []
