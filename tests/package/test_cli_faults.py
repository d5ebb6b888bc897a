"""The command line on what an independent audit threw at it (2026-12-04): special files as
outputs, a standard output that cannot be written, NaN and out-of-range numbers, EUI-64s of
the wrong length, a database that is not one; each one line and a non-zero status, never a
traceback, a hang or a device node replaced by a file."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.zse_cli import invoke_zse
from tests.zse_cli import run_zse as zse
from zse.capture.output import _value
from zse.cli import main
from zse.cli._errors import unexpected

ROOT = Path(__file__).resolve().parents[2]
CSV = ROOT / "examples" / "devices.csv"
#: Real seconds a subprocess may take (a bound, not a pause).
TIMEOUT = 60


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_an_output_that_is_a_device_is_written_not_replaced() -> None:
    """`-o /dev/null` replaced the device node with a 0600 file of link keys (as root)."""
    before = os.stat("/dev/null")
    result = zse("installcode", "--csv", str(CSV), "-o", "/dev/null")
    assert result.returncode == 0, result.stderr
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_rdev, stat.S_IMODE(after.st_mode)) == (before.st_rdev, 0o666)
    streamed = zse("installcode", "--csv", str(CSV), "-o", "/dev/stdout")  # was "no such file"
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout.startswith("eui64,install_code,label,groups,link_key\n")


def test_a_standard_output_that_cannot_be_written_is_one_line() -> None:
    """Was "error: OSError: No space left on device", exit 1 (tests/package/test_cli_stdout.py)."""
    with open("/dev/full", "w") as full:
        result = zse("installcode", "83FED3407A932B70", stdout=full.fileno())
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        "error: cannot write standard output: No space left on device"
    )


def test_a_queue_that_is_not_a_database_is_one_line_and_the_worker_ends(tmp_path: Path) -> None:
    """The worker printed the error and never exited (the queue's aiosqlite thread, left
    running, is no daemon)."""
    garbage = tmp_path / "queue.db"
    garbage.write_bytes(bytes(range(256)) * 16)
    result = zse("headend", "worker", "--database", str(garbage), "--broker", "mqtt://127.0.0.1:1")
    assert result.returncode == 1
    assert one_line(result.stderr).endswith("cannot open the work queue: file is not a database")


NAN = "is not a finite number"
WORKER = ["headend", "worker", "--database", "q.db", "--broker", "mqtt://h"]
RANGE = "is not in the range"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["interpan", "listen", "--radio", "ezsp", "-d", "/dev/null", "--seconds", "nan"], NAN),
        (["han", "watch", "--radio", "ezsp", "-d", "/dev/null", "--for", "nan"], NAN),
        ([*WORKER, "--lease", "nan"], NAN),
        ([*WORKER, "--poll", "inf"], NAN),
        (["esi", "--radio", "ezsp", "-d", "/dev/null", "--start-timeout", "nan"], NAN),
        (["esi", "--radio", "ezsp", "-d", "/dev/null", "--start-timeout", "0.001"], RANGE),
        (["installcode", "--csv", str(CSV), "--jobs", "65"], RANGE),
        (["interpan", "send", "cancel-message", "--radio", "ezsp", "-d", "/dev/null", "1" * 12],
         "does not fit 32 bits"),
        (["interpan", "send", "message", "--radio", "ezsp", "-d", "/dev/ttyNOPE", "é" * 40],
         "80 bytes of text do not fit one inter-PAN frame (at most 78;"),
    ],
)  # fmt: skip
def test_numbers_out_of_reach_are_usage_errors(args: list[str], said: str) -> None:
    """NaN passed click's ranges (every comparison with it is false); a start timeout of a
    millisecond cut the radio's start short inside bellows and the process never ended; a
    message too long for inter-PAN was found only once the radio had opened (no such port
    here: the error would name it)."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert said in one_line(result.output)


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--extended-pan-id", "00", "error: --extended-pan-id: EUI-64 has 2 hex digits"),
        ("--meter", "0011223344556677889900", "error: --meter: EUI-64 has 22 hex digits"),
        ("--meter", "zz", "error: --meter: EUI-64 has a non-hex character 'z'"),
    ],
)
def test_a_network_s_eui64_of_the_wrong_length_is_one_line(
    option: str, value: str, said: str
) -> None:
    """Two octets for --meter were an AssertionError's traceback in zigpy."""
    args = ["han", "join", "--radio", "ezsp", "-d", "/dev/null"]
    result = invoke_zse(*args, "--install-code", "83FED3407A932B70", option, value)
    assert result.returncode == 2
    assert one_line(result.stdout + result.stderr).startswith(said)


def test_text_from_the_air_stays_on_its_line() -> None:
    """A Display Message's text with terminal escapes and a newline printed raw split the
    frame's line and reached the terminal."""
    assert _value("Peak price from 5 pm") == "Peak price from 5 pm"
    assert _value("\x1b[31mEVIL\x07\nsecond") == '"\\u001b[31mEVIL\\u0007\\nsecond"'


def test_click_s_usage_errors_are_one_line_too(tmp_path: Path) -> None:
    """click says a usage error in four lines (usage, hint, blank, error): now one, status 2,
    naming the command's help; a group run without a command still shows its help."""
    for args, said in [
        (["installcode", "--csv", str(tmp_path)], "error: Invalid value for '--csv': File "),
        (["installcode", "--nope"], "error: No such option '--nope'."),
        (["nope"], "error: No such command 'nope'."),
        (["headend", "worker"], "error: Missing option '--database'."),
    ]:
        result = zse(*args)
        assert result.returncode == 2
        line = one_line(result.stderr)
        assert line.startswith(said), line
        assert line.endswith(" -h)")
    shown = zse()
    assert shown.returncode == 2
    assert "Commands:" in shown.stdout + shown.stderr


def test_the_demo_s_outputs_are_checked_before_the_story(tmp_path: Path) -> None:
    """--pcap and --keys on one file wrote keys over the capture (exit 0); a capture on a
    full device failed mid-run as a refused join, then as "OSError: No space left on device"
    (naming no file: now "cannot write PATH", exit 2 as the outputs' other errors); the key
    table's chmod changed a device's mode. Said before the story: in this process."""
    same = tmp_path / "same.out"
    result = invoke_zse("demo", "--pcap", str(same), "--keys", str(same))
    assert result.returncode == 2
    assert (
        one_line(result.stderr)
        == f"error: --keys and --pcap both name {same}: give each its own file"
    )
    if not os.path.exists("/dev/full"):
        return
    full = invoke_zse("demo", "--pcap", "/dev/full")
    assert full.returncode == 2
    assert one_line(full.stderr) == "error: cannot write /dev/full: No space left on device"
    mode = os.stat("/dev/full").st_mode
    keys = invoke_zse("demo", "--keys", "/dev/full")
    assert keys.returncode == 2
    assert one_line(keys.stderr) == "error: cannot write /dev/full: No space left on device"
    assert os.stat("/dev/full").st_mode == mode


def test_the_headend_s_configuration_is_the_first_error_said(tmp_path: Path) -> None:
    """`serve --config` naming no file said "give --sim N ..." (the meters' options were
    checked first)."""
    missing = tmp_path / "headend.toml"
    result = zse("headend", "serve", "--config", str(missing))
    assert result.returncode == 2
    assert one_line(result.stderr) == f"error: {missing}: No such file or directory"


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ('ca_file = "{d}/none.pem"', "error: mqtt.ca_file: {d}/none.pem: No such file"),
        ('ca_file = "{d}/junk.pem"', "error: mqtt.ca_file: {d}/junk.pem: not usable"),
        (
            'cert_file = "{d}/junk.pem"\nkey_file = "{d}/junk.pem"',
            "error: mqtt.cert_file: {d}/junk.pem: not usable",
        ),
    ],
)
def test_mqtt_tls_files_are_checked_before_connecting(
    tmp_path: Path, table: str, said: str
) -> None:
    """A missing or garbage TLS file ran for ever, each retry blaming the broker."""
    (tmp_path / "junk.pem").write_bytes(bytes(range(256)))
    config = tmp_path / "mqtt.toml"
    config.write_text(f'[mqtt]\nurl = "mqtts://127.0.0.1:1"\n{table.format(d=tmp_path)}\n')
    result = invoke_zse("mqtt", "--config", str(config), "--sim")
    assert result.returncode == 2
    assert one_line(result.stdout + result.stderr).startswith(said.format(d=tmp_path))


def test_the_worker_leaves_another_application_s_database_alone(tmp_path: Path) -> None:
    """It added its tables to any SQLite file given."""
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        db.commit()
    result = zse("headend", "worker", "--database", str(other), "--broker", "mqtt://127.0.0.1:1")
    assert result.returncode == 1
    assert "an SQLite database of another application" in one_line(result.stderr)
    with contextlib.closing(sqlite3.connect(other)) as db:
        names = [row[0] for row in db.execute("SELECT name FROM sqlite_master")]
    assert names == ["invoices"]


def test_every_command_takes_the_log_options_after_its_name() -> None:
    """`zse demo -vv` was "No such option '-v'": only some commands took -v after their name,
    every one took it before (`zse -vv demo`)."""
    import click  # noqa: PLC0415

    from zse.cli import COMMANDS  # noqa: PLC0415

    def leaves(command: click.Command) -> list[click.Command]:
        if isinstance(command, click.Group):
            return [leaf for sub in command.commands.values() for leaf in leaves(sub)]
        return [command]

    context = click.Context(main)
    found = [
        leaf
        for name in COMMANDS
        for leaf in leaves(main.get_command(context, name))  # type: ignore[arg-type]
    ]
    assert len(found) > len(COMMANDS)
    for leaf in found:
        assert {"verbose", "log_level"} <= {p.name for p in leaf.params}, leaf.name
    result = zse("demo", "-vv", "--seed", "3")
    assert result.returncode == 0, result.stderr[-300:]
    assert " DEBUG " in result.stderr


def test_the_worker_refuses_the_headend_s_store_for_its_queue(tmp_path: Path) -> None:
    """Given the API's store (a zse store) instead of NAME-queue.sqlite, a worker added its
    tables to it, bypassing the store's single-writer lock, and polled an empty queue for
    ever."""
    store = tmp_path / "state.db"
    import asyncio  # noqa: PLC0415

    from zse.store import Store  # noqa: PLC0415

    async def make() -> None:
        async with await Store.open(store):
            pass

    asyncio.run(make())
    before = store.read_bytes()
    result = zse("headend", "worker", "--database", str(store), "--broker", "mqtt://127.0.0.1:1")
    assert result.returncode == 1
    assert one_line(result.stderr).endswith(
        f"{store}: not a work queue: a zse store (the headend's work queue is the file beside "
        "its store, state-queue.sqlite for state.db); give the queue's file"
    )
    assert store.read_bytes() == before


@pytest.fixture
def logging_as_it_was() -> Iterator[None]:
    """The logging set-up (root level and handlers, loggers' levels) put back afterwards: an
    in-process ``-vv`` configures the root logger at DEBUG for every later test otherwise."""
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    levels = {
        name: logger.level
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))


@pytest.mark.usefixtures("logging_as_it_was")
@pytest.mark.parametrize(
    ("target", "args"),
    [
        ("zse.cli.headend._work", [*WORKER, "-vv"]),
        ("zse.cli.mqtt._serve", ["mqtt", "--sim", "--broker", "mqtt://127.0.0.1:1", "-vv"]),
    ],
)
def test_an_unexpected_fault_keeps_its_traceback_for_the_debug_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, target: str, args: list[str]
) -> None:
    """`zse mqtt --sim` once said only `error: KeyError: 1` (a loaded CI machine) and nothing
    could say where: the one line stays, naming where the error was raised, and at -vv the
    debug log has the traceback."""

    async def fault(*_args: object, **_kwargs: object) -> None:
        raise KeyError(1)

    monkeypatch.setattr(target, fault)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    line = fault.__code__.co_firstlineno + 1
    said = f"error: KeyError: 1 (raised in {__name__}:{line} in fault; -vv logs the traceback)"
    assert lines[-1] == said
    assert "the command failed" in result.stderr
    assert "Traceback" in result.stderr
    assert ", in fault\n    raise KeyError(1)" in result.stderr
    quiet = CliRunner().invoke(main, [arg for arg in args if arg != "-vv"])
    assert quiet.stderr.strip() == said


def test_an_unexpected_error_is_one_line_naming_where_it_was_raised() -> None:
    """The line names the innermost frame (module, line, function), not the caller's; a
    message of several lines is still one line; an error never raised names no place."""

    def deep() -> None:
        raise ValueError("first\nsecond")

    def shallow() -> None:
        deep()

    try:
        shallow()
    except ValueError as exc:
        said = unexpected(exc)
    line = deep.__code__.co_firstlineno + 1
    assert said == (
        f"ValueError: first second (raised in {__name__}:{line} in deep; -vv logs the traceback)"
    )
    assert unexpected(KeyError(1)) == "KeyError: 1"
    # an error with no message is its name alone ("error: MemoryError:" for a parent out of
    # memory, its colon left hanging)
    assert (unexpected(MemoryError()), unexpected(ValueError(" "))) == ("MemoryError", "ValueError")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://zse:s3cret@127.0.0.1:99999/zse", "a bad port"),
        ("postgresql://zse:s3cret@127.0.0.1/zse?schema=Bad-Schema", "schema"),
    ],
)
def test_a_malformed_postgresql_url_is_a_usage_error(url: str, said: str) -> None:
    """It exited 1 after the worker started, as if the database were away; it is the command
    line's fault (exit 2), said before anything starts, the password never repeated."""
    args = ["headend", "worker", "--database", url, "--broker", "mqtt://127.0.0.1:1"]
    result = invoke_zse(*args)
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert line.startswith("error: --database: invalid PostgreSQL URL: ")
    assert said in line
    assert "s3cret" not in result.stderr + result.stdout


def test_a_worker_says_when_its_sqlite_queue_is_new(tmp_path: Path) -> None:
    """The parts start in any order, so a worker makes a queue that is not there yet; a
    mistyped path was a queue of its own, silently (its session took a share of the events).
    It is said in one line, before the worker waits for its broker."""
    queue = tmp_path / "nosuch-queue.sqlite"
    command = [sys.executable, "-m", "zse", "headend", "worker", "--database", str(queue)]
    command += ["--broker", "mqtt://127.0.0.1:1", "--id", "w-new", "--log-level", "error"]
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        try:
            first = process.stderr.readline()
        finally:
            process.terminate()
            process.wait(TIMEOUT)
    assert first == (
        f"worker w-new: no work queue at {queue}: made a new, empty one (zse headend serve makes"
        " NAME-queue.sqlite beside its store NAME.sqlite)\n"
    )
    assert queue.exists()
