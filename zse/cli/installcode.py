"""``zse installcode``: check install codes and derive their link keys, one by one or by file.

Exit status: 0 when every code (or row) is valid, 2 when any is not or when the file cannot be
used (not a devices CSV, not UTF-8, --output is the input) or the output cannot be written; the
reason is printed on one line per bad code or row, without a traceback. 130 / 143 / 129 when
``--csv`` is interrupted (SIGINT / SIGTERM / SIGHUP, a closed terminal) before its last row is
written, the error line saying how many valid rows the output has: the output is never half a
row and ``-o FILE`` never half a file (:class:`_Signals`, :class:`_WholeRows`), unless a second
signal ends a write its reader does not take (a pipe or a FIFO: it would never end). A signal
once the last row is written cuts nothing: the run ends as a complete one, and says so. 1 when
a ``-j N`` worker process fails (killed, by the OOM killer for one). ``-o FILE`` is left as it
was when no row is valid. The workers end on their own once the command is gone, however it
ended (:func:`_work`).
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import queue
import select
import signal
import stat
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing import forkserver, resource_tracker
from multiprocessing.connection import Connection
from types import FrameType
from typing import BinaryIO, TextIO, TypeAlias, TypeVar

import click

from zse._words import counted
from zse.cli._errors import fail, say_error
from zse.cli._files import (
    OutputError,
    atomic_binary_output,
    named_descriptor,
    refuse_input_as_output,
)
from zse.cli._types import PlainIntRange
from zse.device_csv import DeviceCsvError, DeviceReader, decode_lines, is_short_chunk
from zse.errors import DecodeError
from zse.installcode import DeviceLabel, LabelForm, format_eui64, parse_label

if sys.platform != "win32":
    import fcntl

__all__ = ["CsvReport", "installcode", "validate_csv"]

Chunk = TypeVar("Chunk")
Checked = TypeVar("Checked")
_READ_SIZE = 1 << 16


def _describe(label: DeviceLabel) -> dict[str, object]:
    code = label.install_code
    out: dict[str, object] = {
        "code": None if code is None else str(code),
        "bits": None if code is None else code.bits,
        "crc": None if code is None else f"{code.crc:04X}",
        "crc_printed": None if code is None else code.crc_bytes.hex().upper(),
        "link_key": label.link_key.hex().upper(),
    }
    if label.form is not LabelForm.CODE:  # a label or QR string: what it also says
        out["eui64"] = None if label.eui64 is None else format_eui64(label.eui64)
        out["form"] = label.form.value
    return out


@dataclass(frozen=True, kw_only=True, slots=True)
class CsvReport:
    """What :func:`validate_csv` found: row counts and one message per bad row."""

    good: int
    errors: list[str]


def _pool_context() -> multiprocessing.context.BaseContext:
    """How the worker processes start: never by ``fork``, which copies a program's threads'
    locks as they are at that moment (a deadlock when one was held; Python 3.12+ warns, and
    3.14 no longer forks by default): ``forkserver`` where there is one, else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


#: The signals a terminal sends its whole foreground process group, workers included:
#: Ctrl-C's SIGINT, and SIGHUP when it is closed (where there is one).
_FROM_THE_TERMINAL = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGHUP") if hasattr(signal, name)
)


def _leave_ctrl_c_to_the_parent() -> None:
    """A worker ignores SIGINT and SIGHUP (:data:`_FROM_THE_TERMINAL`): a terminal's Ctrl-C,
    and its SIGHUP when it is closed, reach the whole process group, and the parent alone
    ends the run (click's "Aborted!"); each worker printed its own traceback."""
    for signum in _FROM_THE_TERMINAL:
        signal.signal(signum, signal.SIG_IGN)


def _work(connection: Connection, check: Callable[[Chunk], Checked]) -> None:
    """A worker process: checks each chunk ``connection`` brings and sends back what
    :func:`_checked` says of it, until the parent closes its end or is gone (end of file; a
    send to a parent gone fails: SIGKILL and the OOM killer included, the kernel closes its
    descriptors). The chunks are taken as they come by a thread of their own
    (:func:`_take`), so that the parent's sends never wait for this worker's answers (both
    sides blocked on a full socket). Ctrl-C is left to the parent, and standard error is
    silent: the parent says a worker's failure in one line (:class:`_WorkerFailed`). Anything
    that fails outside the check (out of memory taking a chunk, or midway through sending an
    answer) ends the process at once: its connection is its own, so the parent reads the end
    of it, never half a message followed by another (a worker of ``concurrent.futures`` out of
    memory midway through its answer left the pool's one shared result pipe half a message for
    ever, and the command hung)."""
    _leave_ctrl_c_to_the_parent()
    # The descriptor too, not only Python's object: an interpreter out of memory writes what it
    # still can of a traceback straight to descriptor 2 (one "Traceback" line was seen).
    silent = os.open(os.devnull, os.O_WRONLY)
    os.dup2(silent, 2)
    os.close(silent)
    sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - the worker's for life
    code = 0
    try:
        chunks: queue.SimpleQueue[Chunk | None] = queue.SimpleQueue()
        threading.Thread(
            target=_take, args=(connection, chunks), name="zse-chunks", daemon=True
        ).start()
        while (chunk := chunks.get()) is not None:
            connection.send(_checked(check, chunk))
    except BaseException:  # whatever it is, the parent reads the end and says it
        code = 1
    os._exit(code)  # nothing of the interpreter's exit to run: nothing to flush, no lock to free


def _take(connection: Connection, chunks: queue.SimpleQueue[Chunk | None]) -> None:
    """A worker's thread taking the chunks from ``connection`` into ``chunks``, then ``None``
    at its end; a failure (out of memory) ends the worker (:func:`_work`)."""
    try:
        while True:
            chunks.put(connection.recv())
    except EOFError:  # no more chunks: the parent is done, or gone
        chunks.put(None)
    except BaseException:  # the parent reads the end and says it
        os._exit(1)


def _checked(check: Callable[[Chunk], Checked], chunk: Chunk) -> tuple[str, object]:
    """What a worker says of ``chunk``: ``("checked", rows)``; ``("refused", error)`` for the
    file's own problem (:class:`~zse.device_csv.DeviceCsvError`, said as in one process); or
    ``("failed", "Name: message")`` for whatever else the check raised (MemoryError for one)."""
    try:
        return "checked", check(chunk)
    except DeviceCsvError as exc:
        return "refused", exc
    except Exception as exc:  # said in one line, without the traceback
        said = " ".join(str(exc).split())
        name = type(exc).__name__
        return "failed", f"{name}: {said}" if said else name


@contextlib.contextmanager
def _ctrl_c_blocked(*more: int) -> Iterator[None]:
    """SIGINT and SIGHUP (:data:`_FROM_THE_TERMINAL`), and ``more``, blocked in this thread for the
    block, then delivered: a process started in it (a worker, the forkserver its workers are
    forked from, multiprocessing's resource tracker) starts with them blocked, inherited through
    fork and exec, so it cannot be interrupted before :func:`_leave_ctrl_c_to_the_parent` runs
    (a Ctrl-C then printed a worker's traceback), and the resource tracker, which ignores SIGINT
    and SIGTERM only, outlives a closed terminal's SIGHUP (it was killed by it: the parent
    warned "resource_tracker: process died unexpectedly", its successor printed a KeyError
    traceback for each of the pool's semaphores)."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not on POSIX
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {*_FROM_THE_TERMINAL, *more})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


class _WorkerFailed(Exception):
    """A worker process failed: killed (the OOM killer), or its check raised (said in one
    line, without the traceback)."""


#: Chunks a worker holds at a time: the one it checks, and the next, so that it never waits
#: for this process (writing the rows, reading the file) between two.
_HELD = 2

#: A worker gone: its connection ended (killed, or failed outside its check).
_WORKER_GONE = "a worker process ended abruptly (killed, out of memory?)"


@dataclass(frozen=True, slots=True)
class _Worker:
    """A worker process (:func:`_work`) and this process's end of its connection."""

    process: multiprocessing.process.BaseProcess
    connection: Connection

    def send(self, chunk: object) -> None:
        """Hands the worker a chunk to check; a worker gone is :class:`_WorkerFailed`."""
        try:
            self.connection.send(chunk)
        except OSError:  # BrokenPipeError, ConnectionResetError: nobody reads the other end
            raise _WorkerFailed(_WORKER_GONE) from None

    def receive(self) -> object:
        """The worker's answer for the chunk it was handed; its failure is
        :class:`_WorkerFailed`, the file's own problem its
        :class:`~zse.device_csv.DeviceCsvError`."""
        try:
            kind, said = self.connection.recv()
        except (EOFError, OSError):  # ended, midway through an answer or before it
            raise _WorkerFailed(_WORKER_GONE) from None
        if kind == "refused":
            raise said
        if kind == "failed":
            raise _WorkerFailed(f"a worker process failed: {said}")
        return said


def _cannot_start(exc: OSError) -> str:
    return f"cannot start a worker process: {exc.strerror or exc}"


def _start_worker(
    context: multiprocessing.context.BaseContext, check: Callable[[Chunk], Checked], name: str
) -> _Worker:
    """A worker process started with its own connection (a pipe each: no lock, no queue or
    pipe shared with another worker), this process keeping only its own end. One that
    cannot be started (no usable temporary directory for the forkserver's socket, no
    descriptor or process left) is :class:`_WorkerFailed`, said as such."""
    try:
        here, there = context.Pipe()
    except OSError as exc:
        raise _WorkerFailed(_cannot_start(exc)) from None
    process = context.Process(target=_work, args=(there, check), name=name, daemon=True)  # type: ignore[attr-defined]
    forked = context.get_start_method() == "forkserver"
    try:
        # The resource tracker first, in a block of its own: the forkserver's start starts it,
        # and it unblocks SIGINT and SIGTERM once it runs (not the mask it found), so the
        # forkserver, and every worker after it, started with Ctrl-C let in.
        with _ctrl_c_blocked():
            resource_tracker.ensure_running()
        if forked:  # then the forkserver, in a block of its own too (see below)
            with _ctrl_c_blocked():
                forkserver.ensure_running()
        # SIGTERM too, when the worker is forked by the forkserver (it has the forkserver's
        # mask, not this one): one that came between the fork and the worker's data, which
        # the worker then never had, had it print multiprocessing's traceback ("EOFError:
        # Ran out of input") beside the one error line.
        with _ctrl_c_blocked(*((signal.SIGTERM,) if forked else ())):
            process.start()
    except OSError as exc:
        here.close()
        raise _WorkerFailed(_cannot_start(exc)) from None
    except BaseException:
        here.close()
        raise
    finally:
        there.close()  # the worker's alone: its end is this process's end of file
    return _Worker(process, here)


def _pool_map(
    jobs: int,
) -> Callable[[Callable[[Chunk], Checked], Iterable[Chunk]], Iterator[Checked]]:
    """An ordered map over up to ``jobs`` worker processes (:func:`_work`): chunks are handed
    round the workers in turn, :data:`_HELD` at a time each, and their answers taken in the
    same order. A worker's failure is :class:`_WorkerFailed`; the workers end with the map
    (their connections closed, and killed), or on their own once this process is gone,
    however it ended."""

    def chunk_map(check: Callable[[Chunk], Checked], chunks: Iterable[Chunk]) -> Iterator[Checked]:
        context = _pool_context()
        workers: list[_Worker] = []
        try:
            todo = iter(chunks)
            turns: deque[_Worker] = deque()  # a worker for each chunk handed, in their order
            for handed, chunk in enumerate(todo):
                if handed < jobs:
                    workers.append(_start_worker(context, check, f"zse-installcode-{handed + 1}"))
                worker = workers[handed % jobs]
                worker.send(chunk)
                turns.append(worker)
                if handed + 1 == jobs * _HELD:
                    break
            while turns:
                worker = turns.popleft()
                checked = worker.receive()
                for chunk in todo:  # the next chunk, if any, before this one is written
                    worker.send(chunk)
                    turns.append(worker)
                    break
                yield checked  # type: ignore[misc]
        finally:
            for worker in workers:
                worker.connection.close()  # end of file: an idle worker ends
                # and killed: a chunk it still checks is not wanted, and one with nothing
                # left to do may not end on its own (stopped by SIGSTOP: waited for ever)
                worker.process.kill()
            for worker in workers:
                worker.process.join()

    return chunk_map


def validate_csv(lines: Iterable[str], out: TextIO, jobs: int = 1) -> CsvReport:
    """Validate a devices CSV (:mod:`zse.device_csv`) and write the good rows with their link
    keys to ``out``.

    Each bad row gives one message with its line number: a wrong cell count, an invalid EUI-64
    or install code, a stated link key that is not the code's, or an EUI-64 already on an
    earlier line (one device, one code). Good rows are written in file order and canonical
    form, with the input's columns and ``link_key``. With ``jobs`` > 1 the rows are checked in
    that many processes. A file that is not a devices CSV at all (no header, no device row, a
    CSV syntax error) raises :class:`~zse.device_csv.DeviceCsvError`.
    """
    return _validate(lines, out.write, jobs)


@dataclass
class _Progress:
    """How far :func:`_validate` is: the valid rows written in full, and whether they are all
    there will be (:attr:`complete`)."""

    rows: int = 0
    #: chunks of rows handed to be checked, and written
    handed: int = 0
    written: int = 0
    #: no chunk comes after those handed
    last_handed: bool = False

    @property
    def complete(self) -> bool:
        """Every chunk is written: the output has every valid row."""
        return self.last_handed and self.written == self.handed

    def tracked(
        self, chunk_map: Callable[..., Iterable[Checked]]
    ) -> Callable[..., Iterable[Checked]]:
        """``chunk_map`` counting the chunks it is handed, and knowing the last as it is
        handed: a short one (:func:`~zse.device_csv.is_short_chunk`), or a full one that
        nothing follows (the next chunk is read before a full one is handed: ``map``, with
        ``-j 1``, asks for the next only once this one is written, and a full last chunk
        was not known as the last while it was written)."""

        def tracked_map(
            check: Callable[[Chunk], Checked], chunks: Iterable[Chunk]
        ) -> Iterable[Checked]:
            def handed() -> Iterator[Chunk]:
                todo = iter(chunks)
                following = next(todo, None)
                while following is not None:
                    chunk = following
                    short = is_short_chunk(chunk)  # type: ignore[arg-type]
                    following = None if short else next(todo, None)
                    self.handed += 1
                    self.last_handed = following is None
                    yield chunk

            return chunk_map(check, handed())

        return tracked_map


def _validate(
    lines: Iterable[str],
    write: Callable[[str], object],
    jobs: int,
    progress: _Progress | None = None,
    settle: Callable[[bool], None] | None = None,
) -> CsvReport:
    """:func:`validate_csv`, each chunk of rows given to ``write``, then ``progress`` told and
    ``settle`` called with whether the output is complete; stopped by an exception, the
    reading ends there (the workers too) before it goes on."""
    progress = progress or _Progress()
    chunk_map = progress.tracked(_pool_map(jobs) if jobs > 1 else map)
    reader = DeviceReader(lines, chunk_map=chunk_map)
    errors: list[str] = []
    good = 0
    with contextlib.closing(reader.written()) as written:
        for text, taken, refused in written:
            write(text)
            progress.rows += taken
            progress.written += 1
            good += taken
            errors.extend(map(str, refused))
            if settle is not None:
                settle(progress.complete)
    return CsvReport(good=good, errors=errors)


class _Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP (``signum``) ended ``installcode --csv`` (:class:`_Signals`)."""

    def __init__(self, signum: int, *, midway: bool = False) -> None:
        super().__init__(signum)
        self.signum = signum
        #: Ended by a second signal within a chunk's write, which may have stopped midway.
        self.midway = midway


#: The signals that end ``--csv`` cleanly: Ctrl-C, ``kill``, and a terminal closed under it
#: (SIGHUP, where there is one), which left the temporary file of ``-o FILE``, link keys and all.
_ENDING = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

#: A signal's handler, as :func:`signal.signal` gives it back.
_Handler: TypeAlias = Callable[[int, FrameType | None], object] | int | None


class _Signals:
    """SIGINT, SIGTERM and SIGHUP (:data:`_ENDING`) while ``--csv`` runs are
    :class:`_Interrupted` where the program is (reading, checking rows, waiting for a
    worker), except while a chunk of rows is written
    (:meth:`held`): then once it is written in full (:meth:`settle`), so that the output
    stops at a row boundary, and not at all if it was the last (:attr:`late`); a second signal
    then ends it where it is (a write the reader does not take, a stalled pipe, never ends; a
    regular file is cut back to the rows before it). The first signal ends the run; one after
    it waits (the workers are being stopped, the temporary file removed). A signal the program
    was started with ignored (``nohup``, a background job's SIGINT) stays ignored; away from
    the main thread (where there are no handlers) nothing changes."""

    def __init__(self) -> None:
        self._saved: dict[int, _Handler] = {}
        self._holding = False
        self._writing = False  # within held(): a chunk being written
        self._pending = 0
        self._ended = False

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for signum in _ENDING:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._saved[signum] = signal.signal(signum, self._received)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)

    def _received(self, signum: int, _frame: FrameType | None) -> None:
        if self._writing and self._pending and not self._ended:  # the write never ends
            self._ended = True
            raise _Interrupted(self._pending, midway=True)
        if self._holding or self._ended:
            self._pending = self._pending or signum
            return
        self._ended = True
        raise _Interrupted(signum)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A signal within the block waits for :meth:`settle` (none is said when the block
        raises: its exception is the one said)."""
        self._holding = self._writing = True
        try:
            yield
        finally:
            self._writing = False
            self._holding = bool(self._pending)  # until settled

    def settle(self, complete: bool) -> None:
        """A chunk is written in full: a signal that came meanwhile is :class:`_Interrupted`
        now, unless the output is ``complete`` (then it ends nothing: :meth:`hold`)."""
        if complete:
            self.hold()
            return
        self._holding = False
        if self._pending and not self._ended:
            self._ended = True
            raise _Interrupted(self._pending)

    def hold(self) -> None:
        """From here on a signal waits, and is then let go (:attr:`late`): the output is
        complete, and what is left (the workers' end, the rename of ``-o FILE`` over the old
        one) is not to be stopped halfway."""
        self._holding = True

    @property
    def late(self) -> int:
        """The signal that came once the output was complete, and ended nothing (0: none)."""
        return 0 if self._ended else self._pending


class _WholeRows:
    """Chunks of whole rows written to ``out``, each in full or not at all: a signal while
    one is written waits for its end (:meth:`_Signals.held`), and one whose write fails
    midway on a regular file (a full disk) is cut off it again, so the file ends with a whole
    row (a pipe's reader that went away, or a device that took nothing, is left as it is)."""

    def __init__(
        self, out: BinaryIO | io.RawIOBase, encoding: str, errors: str, signals: _Signals
    ) -> None:
        self._out = out
        self._fd = out.fileno()
        self._encoding = encoding
        self._errors = errors
        self._signals = signals
        self.regular = stat.S_ISREG(os.fstat(self._fd).st_mode)
        self._appending = self.regular and _appending(self._fd)

    def write(self, text: str) -> None:
        data = memoryview(text.encode(self._encoding, self._errors))
        with self._signals.held():
            start = self._end() if self.regular else None
            try:
                while data:
                    written = self._out.write(data)
                    if written is None:  # a non-blocking descriptor, full
                        select.select([], [self._fd], [])
                        continue
                    data = data[written:]
                self._out.flush()
            except BaseException as exc:
                if start is not None:
                    with contextlib.suppress(OSError):
                        os.ftruncate(self._fd, start)
                        if isinstance(exc, _Interrupted):
                            exc.midway = False  # cut back to the rows before it
                raise

    def _end(self) -> int:
        """Where the next write lands: the end of a file open for appending (``>>``)."""
        if self._appending:
            return os.fstat(self._fd).st_size
        return os.lseek(self._fd, 0, os.SEEK_CUR)


def _appending(fd: int) -> bool:
    if sys.platform == "win32":
        return False
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)


def _stdout_rows(signals: _Signals) -> Callable[[str], None]:
    """Where ``--csv`` writes to standard output: :class:`_WholeRows` on its descriptor, in its
    encoding (``sys.stdout``'s buffer empty before); a stream without one (a test's) as it is."""
    stream = sys.stdout
    stream.flush()
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        fd = -1
    if fd < 0 or os.name != "posix":  # elsewhere the stream's newline translation applies

        def write(text: str) -> None:
            with signals.held():
                stream.write(text)
                stream.flush()

        return write
    raw = named_descriptor(fd, "standard output", pipe=True)
    return _WholeRows(raw, stream.encoding, stream.errors or "strict", signals).write


def _with_progress(chunks: Iterable[bytes], total: int) -> Iterator[bytes]:
    """Yield ``chunks``, showing a progress bar on a terminal for large files."""
    if total < 1 << 20 or not sys.stderr.isatty():
        yield from chunks
        return
    with click.progressbar(length=total, label="validating", file=sys.stderr) as bar:
        for chunk in chunks:
            bar.update(len(chunk))
            yield chunk


@click.command()
@click.argument("codes", nargs=-1, metavar="[CODE]...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Validate a devices CSV (header eui64,install_code[,label,groups]; '-' for stdin).",
)
@click.option(
    "-j",
    "--jobs",
    type=PlainIntRange(1, 64),
    help="Processes for --csv, 1-64 (default: one per CPU for files over 1 MiB).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    show_default=True,
    help=(
        "Where --csv writes good rows with their link keys (mode 0600, written atomically; "
        "a file is left as it was when no row is valid)."
    ),
)
def installcode(
    codes: tuple[str, ...],
    as_json: bool,
    csv_file: str | None,
    jobs: int | None,
    output: str,
) -> None:
    """Check install codes and print their bits, CRC and link key.

    CODE is a code as printed on a device label, with its CRC at the end (least significant
    octet first), in any case and with spaces, dashes or colons: 83FED3407A932B70 or
    "83FE D340 7A93 2B70". Quote a code that contains spaces. A label or QR string carrying
    the EUI-64 too is read as well (Z:<eui64>$I:<code>, <eui64>|<code>, Aqara, Hue, Bosch;
    docs/installcode.md), and its EUI-64 is shown. Quote it: it contains '$' or '|'.

    With --csv, every bad row of the file is reported with its line number on stderr, and the
    good rows are written with their link keys to --output. The file format (a header row
    naming the columns) is the one `zse esi` imports: see docs/installcode.md.
    """
    if csv_file is not None:
        if codes:
            raise click.UsageError("give either CODE arguments or --csv, not both")
        _run_csv(csv_file, output, jobs)
        return
    if not codes:
        raise click.UsageError("give at least one CODE, or --csv FILE")
    # CODE arguments are printed: an --output or --jobs would be ignored, the keys not where
    # the user asked (status 0 all the same), so they are refused instead
    for given, name in ((output != "-", "-o/--output"), (jobs is not None, "-j/--jobs")):
        if given:
            raise click.UsageError(f"{name} goes with --csv; CODE arguments are printed")
    results: list[dict[str, object]] = []
    failed = False
    for number, text in enumerate(codes, 1):
        try:
            results.append(_describe(parse_label(text)))
        except DecodeError as exc:  # the code itself is never echoed: it is a secret
            say_error(f"CODE #{number}: {exc}")
            failed = True
    if as_json:
        click.echo(json.dumps(results, indent=2))
    elif results:
        labelled = any("eui64" in r for r in results)
        header = f"{'install code':<36}  bits  crc   link key"
        click.echo(f"{header:<86}eui64" if labelled else header)
        for r in results:
            code, bits, crc = r["code"] or "-", r["bits"] or "-", r["crc_printed"] or "-"
            line = f"{code:<36}  {bits:>4}  {crc:<4}  {r['link_key']}"
            if labelled:
                line += f"  {r.get('eui64') or '-'}"
            click.echo(line)
    if failed:
        sys.exit(2)


def _run_csv(csv_file: str, output: str, jobs: int | None) -> None:
    with _Signals() as signals:
        report, kept = _csv_report(csv_file, output, jobs, signals)
        late = signals.late
    for message in report.errors:
        click.echo(message, err=True)
    click.echo(
        f"{counted(report.good + len(report.errors), 'row')}: {report.good} valid, "
        f"{len(report.errors)} invalid",
        err=True,
    )
    if kept:
        click.echo(f"--output {output} left as it was: no valid row to write", err=True)
    if late:
        name = signal.Signals(late).name
        click.echo(f"{name} came once every row was written: the output is complete", err=True)
    if report.errors:
        sys.exit(2)


class _NothingValid(Exception):
    """No row is valid: ``-o FILE`` is left as it was (the temporary file removed)."""

    def __init__(self, report: CsvReport) -> None:
        super().__init__()
        self.report = report


def _csv_report(
    csv_file: str, output: str, jobs: int | None, signals: _Signals
) -> tuple[CsvReport, bool]:
    """Validate ``csv_file`` into ``output``, and say whether ``-o FILE`` was kept as it was
    (no valid row); a failure or a signal is said and exited on."""
    rows: _WholeRows | None = None  # --output's, once open
    progress = _Progress()
    try:
        try:
            source = click.open_file(csv_file, "rb")  # a FIFO's waits for a writer
        except OSError as exc:
            fail(f"cannot read {csv_file}: {exc.strerror}", 2)
        with source:
            inputs: list[str | int] = [] if csv_file == "-" else [csv_file]
            total = 0
            try:
                inputs.append(source.fileno())
                total = os.fstat(source.fileno()).st_size
            except (OSError, ValueError):  # an in-memory stream under test has no descriptor
                pass
            if output != "-":  # before anything is opened for writing
                refuse_input_as_output(output, inputs, "--output")
            if jobs is None:
                jobs = (os.cpu_count() or 1) if total > 1 << 20 else 1
            chunks = _with_progress(iter(lambda: source.read(_READ_SIZE), b""), total)
            lines = decode_lines(chunks)
            if output == "-":
                write = _stdout_rows(signals)
                return _validate(lines, write, jobs, progress, signals.settle), False
            # a temporary file renamed over the target once complete (fsynced first); a
            # special file (/dev/stdout, a FIFO) is written in place
            try:
                with atomic_binary_output(output, "--output") as handle:
                    rows = _WholeRows(handle, "utf-8", "strict", signals)
                    report = _validate(lines, rows.write, jobs, progress, signals.settle)
                    signals.hold()
                    if not report.good and rows.regular:  # the previous file is worth more
                        raise _NothingValid(report)
            except _NothingValid as nothing:
                return nothing.report, True
            return report, False
    except DeviceCsvError as exc:
        fail(f"{'standard input' if csv_file == '-' else csv_file}: {exc}", 2)
    except OutputError as exc:
        fail(str(exc), 2)
    except _WorkerFailed as exc:
        fail(f"{exc}: {_cut(output, rows, progress, midway=False)}", 1)
    except _Interrupted as exc:
        fail(f"interrupted: {_cut(output, rows, progress, midway=exc.midway)}", 128 + exc.signum)


def _cut(output: str, rows: _WholeRows | None, progress: _Progress, *, midway: bool) -> str:
    """Where a run stopped early leaves its output: ``-o FILE`` as it was, else how many
    valid rows it has (whole rows), or that it ends midway through one."""
    if output != "-" and (rows is None or rows.regular):
        return f"--output {output} left as it was"
    if midway:  # some rows of the chunk are out, and part of one
        where = "midway through a row (signalled again)"
    else:
        where = f"after {counted(progress.rows, 'valid row')}, at a row boundary"
    return f"{'standard output' if output == '-' else f'--output {output}'} ends early, {where}"
