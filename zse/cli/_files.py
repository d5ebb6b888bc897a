"""Output files for the commands with ``-o``: never over an input, never left half-written.

An output is written to a temporary file in its own directory (mode 0600: the outputs hold keys)
and renamed over the target only when complete (``os.replace``, the file and then its directory
fsynced), so a failure, Ctrl-C or a power cut leaves the previous file as it was. A target
that is one of the inputs — the same file by device and inode, so also through a hard link
or a symlink — is refused before anything is opened for writing. A target that exists and is
not a regular file (``/dev/stdout``, a FIFO, a terminal, ``/dev/null``) is written in place:
it is not replaced by a file, nor its mode changed. Problems are :class:`OutputError` (a usage
error: the commands exit 2), naming the file, also when a write fails halfway (a full disk):
:func:`named_output`.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any, BinaryIO, TextIO, cast

from zse._files import sync_directory

__all__ = [
    "OutputError",
    "atomic_binary_output",
    "atomic_output",
    "named_descriptor",
    "named_output",
    "named_stdout",
    "refuse_input_as_output",
]


class OutputError(Exception):
    """An output file that cannot be written; the message names it and says why."""


def _identity(target: str | int) -> tuple[int, int] | None:
    try:
        info = os.fstat(target) if isinstance(target, int) else os.stat(target)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def refuse_input_as_output(output: str, inputs: Iterable[str | int], option: str) -> None:
    """:class:`OutputError` if ``output`` is the same file as one of ``inputs`` (paths or open
    file descriptors, e.g. standard input)."""
    target = _identity(output)
    if target is None:
        return
    for source in inputs:
        if _identity(source) == target:
            raise OutputError(
                f"{option} {output} is the input file: writing it would destroy the input; "
                "choose another name"
            )


@contextlib.contextmanager
def atomic_output(path: str, option: str) -> Iterator[TextIO]:
    """A text file that replaces ``path`` when the block ends without an exception (the file
    a symlink points to, when ``path`` is one); a special file is written in place."""
    with _atomic(path, option, binary=False) as handle:
        yield cast(TextIO, handle)


@contextlib.contextmanager
def atomic_binary_output(path: str, option: str) -> Iterator[BinaryIO]:
    """:func:`atomic_output` for bytes (a pcap)."""
    with _atomic(path, option, binary=True) as handle:
        yield cast(BinaryIO, handle)


class _Named(io.FileIO):
    """A file open for writing whose failed writes are :class:`OutputError` naming it: the
    operating system's error (``ENOSPC``) names no file, and a buffered write fails wherever
    the buffer happens to be flushed. ``pipe``: a reader gone (``EPIPE``) stays
    :class:`BrokenPipeError`, for the caller to end quietly."""

    def __init__(self, file: int | str, said: str, *, closefd: bool = True, pipe: bool = False):
        super().__init__(file, "w", closefd=closefd)
        self._said = said
        self._pipe = pipe

    def write(self, data: Any, /) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            if self._pipe and isinstance(exc, BrokenPipeError):
                raise
            raise OutputError(f"cannot write {self._said}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def named_stdout() -> Iterator[None]:
    """Within the block, a write to the process's standard output that fails (a full disk,
    ``/dev/full``) is :class:`OutputError` "cannot write standard output: why", whenever the
    buffer is flushed; a reader gone stays :class:`BrokenPipeError`. A standard output
    already replaced (click's test runner, pytest's capture) is left as it is."""
    given = sys.stdout
    if given is not sys.__stdout__ or not isinstance(given, io.TextIOWrapper):
        yield
        return
    try:
        given.flush()
        fd = given.fileno()
    except (OSError, ValueError):  # no descriptor: nothing to name
        yield
        return
    raw = _Named(fd, "standard output", closefd=False, pipe=True)
    buffered = isinstance(given.buffer, io.BufferedWriter)  # not under python -u
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(raw) if buffered else raw,
        encoding=given.encoding,
        errors=given.errors,
        line_buffering=given.line_buffering,
        write_through=given.write_through,
    )
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # said already, when it matters
            sys.stdout.flush()
        # what could not be written is dropped: with the raw file closed (not descriptor 1,
        # ``closefd=False``) the wrapper counts as closed and its finalizer, run as soon as
        # standard output is given back (its last reference), writes nothing (Python 3.13
        # said "Exception ignored ... BrokenPipeError" for a reader gone)
        raw.close()
        sys.stdout = given


def named_descriptor(fd: int, said: str, *, pipe: bool = False) -> io.RawIOBase:
    """The open descriptor ``fd`` for writing, unbuffered and left open when this is closed:
    each write is one system call, which returns how much of it was written; a failed one
    is :class:`OutputError` "cannot write ``said``: why" (``pipe``: a reader gone stays
    :class:`BrokenPipeError`)."""
    return _Named(fd, said, closefd=False, pipe=pipe)


def named_output(path: str, said: str | None = None) -> BinaryIO:
    """``path`` opened for writing in place (created, or truncated), buffered; a write that
    fails, when it is done or flushed, is :class:`OutputError` "cannot write ``said``: why"
    (``said``: the path by default). Opening it raises :class:`OSError` as :func:`open`."""
    return cast(BinaryIO, io.BufferedWriter(_Named(path, path if said is None else said)))


def _opened(fd_or_path: int | str, binary: bool, said: str) -> IO[Any]:
    raw = _Named(fd_or_path, said)
    if binary:
        return io.BufferedWriter(raw)
    text = io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8", newline="")
    text.reconfigure(line_buffering=raw.isatty())  # as open() does, for a terminal
    return text


@contextlib.contextmanager
def _atomic(path: str, option: str, *, binary: bool) -> Iterator[IO[Any]]:
    if _special(path):
        with _in_place(path, option, binary) as handle:
            yield handle
        return
    target = os.path.realpath(path) if os.path.islink(path) else path
    directory = os.path.dirname(target) or "."
    if not os.path.isdir(directory):
        raise OutputError(f"cannot write {option} {path}: no such directory {directory}")
    if os.path.isdir(path):
        raise OutputError(f"cannot write {option} {path}: it is a directory")
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".zse-", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {option} {path}: {exc.strerror}") from None
    try:
        with _opened(fd, binary, f"{option} {path}") as handle:
            yield handle
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:
                raise OutputError(f"cannot write {option} {path}: {exc.strerror}") from None
        try:
            os.replace(temporary, target)
        except OSError as exc:
            raise OutputError(f"cannot write {option} {path}: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    sync_directory(directory)


def _special(path: str) -> bool:
    """Whether ``path`` exists and is neither a regular file nor a directory."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextlib.contextmanager
def _in_place(path: str, option: str, binary: bool) -> Iterator[IO[Any]]:
    """``path``, a device, FIFO or socket, opened for writing as it is."""
    try:
        handle = _opened(path, binary, f"{option} {path}")
    except OSError as exc:
        raise OutputError(f"cannot write {option} {path}: {exc.strerror}") from None
    try:
        yield handle
        try:
            handle.flush()
        except OSError as exc:
            raise OutputError(f"cannot write {option} {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError, OutputError):  # what is left fails as it did
            handle.close()
